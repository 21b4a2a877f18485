# shellcheck shell=bash
# dev/lib/dc.sh — packages, provisioning, starting and stopping the Samba DC(s), krb5.conf.

APT_PACKAGES=(samba samba-dsdb-modules samba-vfs-modules winbind krb5-user ldap-utils smbclient
              samba-ad-provision samba-ad-dc openssl)

packages_ensure() {
  local missing=() b
  for b in samba samba-tool ldapsearch ldapmodify kinit kdestroy openssl; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
  done
  # The DC also needs the dsdb modules and provisioning data, which have no binary.
  [[ -d /usr/share/samba/setup ]] || missing+=(samba-ad-provision)
  ((${#missing[@]} == 0)) && return 0
  info "installing packages (missing: ${missing[*]})"
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  # Keep the packages' init scripts from starting smbd/nmbd/samba-ad-dc on ports we need.
  local policy_rc=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy_rc ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy_rc"; chmod 755 "$policy_rc"; added_policy=1
  fi
  local rc=0
  (export DEBIAN_FRONTEND=noninteractive
   run_quiet "apt-get update" apt-get update
   run_quiet "apt-get install" apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}") || rc=$?
  ((added_policy)) && rm -f "$policy_rc"
  ((rc == 0)) || exit "$rc"
  stop_system_samba
}

# Stop the distribution's own samba services if they run (they would hold 88/389/445...).
stop_system_samba() {
  local svc
  for svc in samba-ad-dc smbd nmbd winbind; do
    if [[ -x /etc/init.d/$svc ]] && command -v service >/dev/null; then
      service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
}

# ---- processes and ports -----------------------------------------------------------------

dc_dir() { printf '%s/%s' "$STATE" "$1"; }
dc_ip()  { [[ $1 == dc1 ]] && printf '127.0.0.1' || printf '127.0.0.2'; }
dc_conf() { printf '%s/etc/smb.conf' "$(dc_dir "$1")"; }
dc_pidfile() { printf '%s/run/samba.pid' "$(dc_dir "$1")"; }

dc_pid() { # prints the pid of the DC's master samba process if it runs
  local pidfile pid
  pidfile=$(dc_pidfile "$1")
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid && -r /proc/$pid/comm && $(cat "/proc/$pid/comm" 2>/dev/null) == samba ]] || return 1
  printf '%s' "$pid"
}

dc_running() { dc_pid "$1" >/dev/null; }
dc_provisioned() { [[ -s $(dc_dir "$1")/private/sam.ldb && -s $(dc_conf "$1") ]]; }

# Listeners on IP (or the wildcard) for the DC ports, as "port pid program" lines (program
# from /proc/PID/exe: samba renames its workers, e.g. "ldap(3").
port_holders() {
  local ip=$1 port pid
  command -v ss >/dev/null || return 0
  ss -Hltnup 2>/dev/null | awk -v ip="$ip" '
    { split($5, a, ":"); port = a[length(a)]; addr = substr($5, 1, length($5) - length(port) - 1)
      if (addr != ip && addr != "0.0.0.0" && addr != "*" && addr != "[::]") next
      if (port !~ /^(88|389|636|445|135|464|3268|3269)$/) next
      pid = "?"
      if (match($0, /pid=[0-9]+/)) pid = substr($0, RSTART + 4, RLENGTH - 4)
      print port, pid }' | sort -u |
    while read -r port pid; do
      printf '%s %s %s\n' "$port" "$pid" "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || echo '?')")"
    done
}

ports_free_for() { [[ -z $(port_holders "$1") ]]; }

is_samba_prog() { [[ $1 =~ ^(samba|smbd|nmbd|winbindd|samba-dcerpcd|rpcd_[a-z_]+)$ ]]; }

# The top of PID's chain of samba-family ancestors (the master that restarts workers).
samba_master_of() {
  local pid=$1 ppid prog
  while true; do
    ppid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ') || break
    [[ -n $ppid && $ppid != 1 && $ppid != 0 ]] || break
    prog=$(basename "$(readlink "/proc/$ppid/exe" 2>/dev/null || echo '?')")
    is_samba_prog "$prog" || break
    pid=$ppid
  done
  printf '%s' "$pid"
}

# Stop samba processes that hold DC ports on IP: the distribution's services, or a DC left
# over from a wiped state directory.
stop_samba_holders() { # IP
  local ip=$1 port pid prog master killed=""
  port_holders "$ip" | awk '{print $3}' | grep -qE '^(samba|smbd|nmbd|winbindd|samba-dcerpcd|rpcd_.*)$' || return 0
  info "stopping samba processes that hold DC ports on $ip"
  stop_system_samba
  while read -r port pid prog; do
    if [[ ! $pid =~ ^[0-9]+$ ]] || ! is_samba_prog "$prog"; then continue; fi
    master=$(samba_master_of "$pid")
    [[ " $killed " == *" $master "* ]] && continue
    info "stopping leftover samba pid $master (holds port $port)"
    kill -TERM "$master" 2>/dev/null || true
    killed+=" $master"
  done <<<"$(port_holders "$ip")"
  local deadline=$((SECONDS + 20))
  while ! ports_free_for "$ip" && ((SECONDS < deadline)); do sleep 0.5; done
}

# Make sure nobody else holds the DC ports before starting a DC.
ports_ensure_free() {
  local dc=$1 ip holders
  ip=$(dc_ip "$dc")
  stop_samba_holders "$ip"
  holders=$(port_holders "$ip")
  [[ -z $holders ]] && return 0
  die "ports needed by the DC on $ip are in use (port pid process):
$holders"
}

# ---- krb5.conf ---------------------------------------------------------------------------

krb5_write() { # WITH_DC2(0|1)
  local kdcs="        kdc = 127.0.0.1"
  [[ $1 == 1 ]] && kdcs+=$'\n'"        kdc = 127.0.0.2"
  cat >"$KRB5_CONF.tmp" <<EOF
[libdefaults]
    default_realm = ${REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = 1

[realms]
    ${REALM} = {
${kdcs}
        admin_server = 127.0.0.1
        kpasswd_server = 127.0.0.1
    }

[domain_realm]
    .${DNS_DOMAIN} = ${REALM}
    ${DNS_DOMAIN} = ${REALM}
EOF
  chmod 644 "$KRB5_CONF.tmp"
  mv -f "$KRB5_CONF.tmp" "$KRB5_CONF"
}

krb5_check() { # PRINCIPAL PASSWORD_FILE
  local cc out rc=0
  cc=$(mktemp "${TMPDIR:-/tmp}/rekey-dev-cc.XXXXXX")
  out=$(KRB5_CONFIG=$KRB5_CONF KRB5CCNAME=FILE:$cc timeout 20 kinit "$1" <"$2" 2>&1) || rc=$?
  KRB5_CONFIG=$KRB5_CONF KRB5CCNAME=FILE:$cc kdestroy >/dev/null 2>&1 || true
  rm -f "$cc"
  if ((rc != 0)); then
    printf '%s\n' "$out" >&2
    show_dc_logs
    die "kinit $1 with $KRB5_CONF failed"
  fi
}

# ---- provisioning ------------------------------------------------------------------------

# smb.conf options every DC gets: its own sockets and pid files (so two DCs coexist),
# its own log, and the dev certificate.
dc_options() { # DC
  local dc=$1 dir ip
  dir=$(dc_dir "$dc"); ip=$(dc_ip "$dc")
  printf '%s\n' \
    "interfaces=$ip" \
    "bind interfaces only=yes" \
    "pid directory=$dir/run" \
    "ncalrpc dir=$dir/run/ncalrpc" \
    "winbindd socket directory=$dir/run/winbindd" \
    "ntp signd socket directory=$dir/run/ntp_signd" \
    "log file=$dir/log/samba.log" \
    "max log size=10000" \
    "tls enabled=yes" \
    "tls keyfile=$SERVER_KEY" \
    "tls certfile=$SERVER_PEM" \
    "tls cafile=$CA_PEM"
}

dc1_provision() {
  local dir opts=() o
  dir=$(dc_dir dc1)
  dc_provisioned dc1 && return 0
  info "provisioning ${REALM} (DC ${DC1_NAME}) in $dir"
  rm -rf "$dir" "$STATE/seed.done" "$STATE/dc2"
  mkdir -p "$dir/run" "$dir/log" "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  [[ -s $ADMIN_PASS_FILE ]] || write_secret "$ADMIN_PASS_FILE" "$(random_password)"
  while IFS= read -r o; do opts+=("--option=$o"); done < <(dc_options dc1)
  run_quiet "samba-tool domain provision" samba-tool domain provision -s /dev/null \
    --targetdir="$dir" --realm="$REALM" --domain="$DOMAIN" --server-role=dc \
    --dns-backend=NONE --use-rfc2307 --host-name="${DC1_NAME,,}" \
    --adminpass="$(cat "$ADMIN_PASS_FILE")" \
    --option="netbios name=$DC1_NAME" "${opts[@]}"
}

# ---- start / stop ------------------------------------------------------------------------

ldaps_answers() { # IP — an authenticated base search over LDAPS
  LDAPTLS_CACERT=$CA_PEM LDAPTLS_REQCERT=demand timeout 5 ldapsearch -LLL -o nettimeout=3 \
    -H "ldaps://$1" -x -D "$ADMIN_DN" -y "$ADMIN_PASS_FILE" -b "" -s base dsServiceName
}

dc_start() { # DC
  local dc=$1 ip
  ip=$(dc_ip "$dc")
  dc_running "$dc" && return 0
  ports_ensure_free "$dc"
  mkdir -p "$(dc_dir "$dc")/run" "$(dc_dir "$dc")/log"
  info "starting $dc on $ip"
  run_quiet "starting samba ($dc)" env KRB5_CONFIG="$KRB5_CONF" samba -s "$(dc_conf "$dc")" -D
  wait_for 60 "samba ($dc) to write its pid file" dc_running "$dc"
  wait_for 60 "LDAPS on $ip:636 to accept an Administrator bind" ldaps_answers "$ip"
  STARTED_DCS+=("$dc")
}

dc_stop() { # DC
  local dc=$1 pid ip
  ip=$(dc_ip "$dc")
  pid=$(dc_pid "$dc") || { rm -f "$(dc_pidfile "$dc")"; return 0; }
  info "stopping $dc (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$dc (pid $pid) did not stop within 30 s; killing its process group"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # The children (smbd, winbindd, ...) follow the master; wait for the ports to close.
  deadline=$((SECONDS + 30))
  while ! ports_free_for "$ip" && ((SECONDS < deadline)); do sleep 0.2; done
  ports_free_for "$ip" || warn "ports on $ip still busy after stopping $dc:
$(port_holders "$ip")"
  rm -f "$(dc_pidfile "$dc")"
}
