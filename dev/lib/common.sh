# shellcheck shell=bash
# dev/lib/common.sh — logging, failure reporting and waiting for dev/domain.
# Sourced by dev/domain; expects the constants defined there.

# Progress lines go to stderr only with -v / REKEY_DEV_VERBOSE=1; errors always.
info() {
  if [[ ${REKEY_DEV_VERBOSE:-0} == 1 ]]; then printf 'dev/domain: [%3ss] %s\n' "$SECONDS" "$*" >&2; fi
}
warn() { printf 'dev/domain: warning: %s\n' "$*" >&2; }
die()  { printf 'dev/domain: error: %s\n' "$*" >&2; exit 1; }

# The samba log of a DC (dc1|dc2) — shown whenever something fails.
dc_log() { printf '%s/%s/log/samba.log' "$STATE" "$1"; }

show_tail() { # FILE [LINES] — print the end of a log file to stderr, indented.
  local file=$1 lines=${2:-40}
  if [[ -s $file ]]; then
    printf 'dev/domain: --- last %s lines of %s ---\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" | sed 's/^/    /' >&2
    printf 'dev/domain: ---\n' >&2
  fi
}

# run_quiet DESCRIPTION CMD... — run CMD with its output captured; on failure print the
# description, the exit code, the captured output and the DC logs, then exit.
run_quiet() {
  local desc=$1; shift
  local out rc=0
  out=$(mktemp "${TMPDIR:-/tmp}/rekey-dev.XXXXXX")
  "$@" >"$out" 2>&1 || rc=$?
  if ((rc != 0)); then
    printf 'dev/domain: error: %s failed (exit %s): %s\n' "$desc" "$rc" "$*" >&2
    show_tail "$out" 60
    rm -f "$out"
    show_dc_logs
    exit 1
  fi
  rm -f "$out"
}

show_dc_logs() {
  local dc
  for dc in dc1 dc2; do
    [[ -s $(dc_log "$dc") ]] && show_tail "$(dc_log "$dc")" 30
  done
  return 0
}

# wait_for TIMEOUT_S DESCRIPTION CMD... — poll CMD (quietly) every 0.5 s until it succeeds;
# on timeout print the description, the last output of CMD and the DC logs, then exit.
wait_for() {
  local timeout=$1 desc=$2; shift 2
  local deadline=$((SECONDS + timeout)) out
  out=$(mktemp "${TMPDIR:-/tmp}/rekey-dev.XXXXXX")
  while true; do
    if "$@" >"$out" 2>&1; then rm -f "$out"; return 0; fi
    if ((SECONDS >= deadline)); then
      printf 'dev/domain: error: timed out after %ss waiting for %s\n' "$timeout" "$desc" >&2
      show_tail "$out" 20
      rm -f "$out"
      show_dc_logs
      exit 1
    fi
    sleep 0.5
  done
}

# env_line KEY VALUE — one KEY=VALUE line; double-quoted only when the value needs it
# (a space), which both `source` and dotenv parsers accept.
env_line() {
  if [[ $2 =~ ^[A-Za-z0-9_./:,=@+%-]*$ ]]; then
    printf '%s=%s\n' "$1" "$2"
  else
    printf '%s="%s"\n' "$1" "$2"
  fi
}

# Random secret that satisfies AD complexity (upper, lower, digit, symbol), no shell specials.
random_password() { printf 'Rk-%s-9Z' "$(openssl rand -hex 14)"; }

write_secret() { # FILE VALUE — mode 600, no trailing newline (works with ldapsearch -y).
  (umask 077; printf '%s' "$2" >"$1")
  chmod 600 "$1"
}
