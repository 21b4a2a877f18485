# shellcheck shell=bash
# dev/lib/dc2.sh — the optional second DC (DC2 at 127.0.0.2), /etc/hosts entries it needs
# for replication without DNS, and a replication check (DESIGN.md §4, second-DC recipe).

HOSTS_FILE=${REKEY_DEV_HOSTS_FILE:-/etc/hosts}
HOSTS_BEGIN="# BEGIN rekey dev/domain (generated; removed by 'dev/domain reset')"
HOSTS_END="# END rekey dev/domain"

# 127.0.0.0/8 routes to lo, but samba's "interfaces = 127.0.0.2" needs the address on an
# interface (otherwise: "WARNING: no network interfaces found" and nothing listens).
ip_ensure() {
  if command -v ip >/dev/null; then
    ip -4 addr show dev lo 2>/dev/null | grep -q 'inet 127\.0\.0\.2/' && return 0
    ip addr add 127.0.0.2/32 dev lo 2>/dev/null && return 0
  fi
  die "DC2 needs 127.0.0.2 assigned to an interface and 'ip addr add 127.0.0.2/32 dev lo' failed
(no iproute2, or no CAP_NET_ADMIN in this container); add it yourself, or use dev/domain without --dc2"
}

hosts_remove() {
  [[ -w $HOSTS_FILE ]] || return 0
  grep -qF "$HOSTS_BEGIN" "$HOSTS_FILE" 2>/dev/null || return 0
  local rest
  rest=$(awk -v b="$HOSTS_BEGIN" -v e="$HOSTS_END" '$0 == b {skip=1; next} $0 == e {skip=0; next} !skip' "$HOSTS_FILE")
  # Write in place: /etc/hosts is often a bind mount that cannot be replaced.
  printf '%s\n' "$rest" >"$HOSTS_FILE"
}

# hosts_write — the DCs' FQDNs and <NTDS Settings objectGUID>._msdcs names.
hosts_write() {
  local block dn guid
  block="$HOSTS_BEGIN"$'\n'"127.0.0.1 ${DC1_NAME,,}.$DNS_DOMAIN ${DC1_NAME,,}"
  block+=$'\n'"127.0.0.2 ${DC2_NAME,,}.$DNS_DOMAIN ${DC2_NAME,,}"
  while IFS=$'\t' read -r dn guid; do
    case ${dn^^} in
      "CN=NTDS SETTINGS,CN=${DC1_NAME},"*) block+=$'\n'"127.0.0.1 $guid._msdcs.$DNS_DOMAIN" ;;
      "CN=NTDS SETTINGS,CN=${DC2_NAME},"*) block+=$'\n'"127.0.0.2 $guid._msdcs.$DNS_DOMAIN" ;;
    esac
  done < <(ntds_guids)
  block+=$'\n'"$HOSTS_END"
  local current
  current=$(awk -v b="$HOSTS_BEGIN" -v e="$HOSTS_END" '$0 == b {on=1} on {print} $0 == e {on=0}' "$HOSTS_FILE" 2>/dev/null || true)
  [[ $current == "$block" ]] && return 0
  [[ -w $HOSTS_FILE ]] || die "$HOSTS_FILE is not writable; DC2 needs these lines there:
$block"
  hosts_remove
  printf '%s\n' "$block" >>"$HOSTS_FILE"
}

ntds_guids() { # "DN<TAB>GUID" for every nTDSDSA object
  ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "CN=Sites,CN=Configuration,$BASE_DN" \
    "(objectClass=nTDSDSA)" objectGUID |
    awk '/^dn: / {dn = substr($0, 5)} /^objectGUID:: / {print dn "\t" substr($0, 14)}' |
    while IFS=$'\t' read -r dn b64; do printf '%s\t%s\n' "$dn" "$(guid_from_b64 "$b64")"; done
}

dc2_join() {
  dc_provisioned dc2 && return 0
  local dir opts=() o
  dir=$(dc_dir dc2)
  rm -rf "$dir"
  mkdir -p "$dir/run" "$dir/log"
  ip_ensure
  hosts_write
  info "joining DC2 (127.0.0.2) to $DNS_DOMAIN"
  while IFS= read -r o; do opts+=("--option=$o"); done < <(dc_options dc2)
  run_quiet "samba-tool domain join (DC2)" env KRB5_CONFIG="$KRB5_CONF" \
    samba-tool domain join "$DNS_DOMAIN" DC -s /dev/null --server=127.0.0.1 \
    --targetdir="$dir" --dns-backend=NONE --option="netbios name=$DC2_NAME" "${opts[@]}" \
    -U Administrator --password="$(cat "$ADMIN_PASS_FILE")"
  DC2_JUST_JOINED=1
}

# A change on one DC must become visible on the other (force with drs replicate if slow).
replication_check() { # FROM_DC TO_DC
  local from=$1 to=$2 stamp value deadline forced=0
  info "checking replication $from -> $to"
  stamp="replication check $(date -u +%FT%TZ) $RANDOM"
  LDAP_HOST=$(dc_ip "$from") ldif_apply "writing the replication probe on $from" <<EOF
dn: $SERVICE_OU
changetype: modify
replace: description
description: Rekey dev fixture ($stamp)
EOF
  local start=$SECONDS
  deadline=$((SECONDS + 45))
  while true; do
    value=$(LDAP_HOST=$(dc_ip "$to") ldap_get "$SERVICE_OU" description 2>/dev/null || true)
    if [[ $value == *"$stamp"* ]]; then
      local how=" by notification"
      ((forced)) && how=" after a forced drs replicate"
      REPL_INFO+=("$from -> $to in $((SECONDS - start)) s$how")
      return 0
    fi
    ((SECONDS < deadline)) || break
    # Give the DRS change notification 3 s (none yet right after the join), then force a
    # pull once.
    if ((!forced && (SECONDS - start >= 3 || DC2_JUST_JOINED))); then
      forced=1
      local src dst
      src=$([[ $from == dc1 ]] && echo "$DC1_NAME" || echo "$DC2_NAME")
      dst=$([[ $to == dc1 ]] && echo "$DC1_NAME" || echo "$DC2_NAME")
      env KRB5_CONFIG="$KRB5_CONF" samba-tool drs replicate "${dst,,}.$DNS_DOMAIN" "${src,,}.$DNS_DOMAIN" \
        "$BASE_DN" -U Administrator --password="$(cat "$ADMIN_PASS_FILE")" >/dev/null 2>&1 ||
        warn "samba-tool drs replicate ${dst} ${src} failed"
    fi
    sleep 0.5
  done
  show_dc_logs
  die "a change written on $from did not reach $to within 45 s"
}
