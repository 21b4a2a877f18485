# shellcheck shell=bash
# dev/lib/ldap.sh — small LDAP helpers over LDAPS (OpenLDAP clients, CA pinned to the dev CA).

# ldap_as BIND_DN PASSWORD_FILE TOOL ARGS... (against DC1 unless LDAP_HOST is set)
ldap_as() {
  local dn=$1 pwfile=$2 tool=$3; shift 3
  LDAPTLS_CACERT=$CA_PEM LDAPTLS_REQCERT=demand timeout 60 "$tool" -o nettimeout=10 \
    -H "ldaps://${LDAP_HOST:-127.0.0.1}" -x -D "$dn" -y "$pwfile" "$@"
}
ldap_admin() { ldap_as "$ADMIN_DN" "$ADMIN_PASS_FILE" "$@"; }

# ldap_get DN ATTR — the attribute's values (base64 values decoded), one per line.
ldap_get() {
  ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "$1" -s base "(objectClass=*)" "$2" |
    ldif_values "$2"
}

# ldif_values ATTR — extract ATTR's values from LDIF on stdin.
ldif_values() {
  local attr=${1,,} line
  while IFS= read -r line; do
    case ${line,,} in
      "$attr:: "*) printf '%s\n' "$(base64 -d <<<"${line#*:: }")" ;;
      "$attr: "*) printf '%s\n' "${line#*: }" ;;
    esac
  done
}

# ldif_apply DESCRIPTION [BIND_DN PWFILE] < LDIF — ldapmodify as Administrator (or the given
# account); on failure print the server's answer and exit.
ldif_apply() {
  local desc=$1 dn=${2:-$ADMIN_DN} pw=${3:-$ADMIN_PASS_FILE} ldif out rc=0
  ldif=$(cat)
  [[ -n $ldif ]] || return 0
  out=$(ldap_as "$dn" "$pw" ldapmodify <<<"$ldif" 2>&1) || rc=$?
  if ((rc != 0)); then
    printf 'dev/domain: error: %s failed (ldapmodify exit %s):\n' "$desc" "$rc" >&2
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    exit 1
  fi
}

# ldif_try BIND_DN PWFILE < LDIF — ldapmodify; prints "rc<TAB>message", never fails.
ldif_try() {
  local out rc=0
  out=$(ldap_as "$1" "$2" ldapmodify 2>&1) || rc=$?
  printf '%s\t%s\n' "$rc" "$(tr '\n' ' ' <<<"$out")"
}

# unicodePwd value: base64 of the UTF-16LE encoding of the password in double quotes.
unicode_pwd_b64() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }

# All DNs under the base of the object classes the fixture creates, lowercased.
existing_dns() {
  ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "$BASE_DN" \
    "(|(objectClass=organizationalUnit)(objectClass=user)(objectClass=group)(objectClass=msDS-PasswordSettings))" 1.1 |
    ldif_values dn | tr '[:upper:]' '[:lower:]'
}

# GUID string from a base64 objectGUID (little-endian first three fields).
guid_from_b64() {
  local h
  h=$(base64 -d <<<"$1" | od -An -tx1 | tr -d ' \n')
  printf '%s%s%s%s-%s%s-%s%s-%s-%s\n' \
    "${h:6:2}" "${h:4:2}" "${h:2:2}" "${h:0:2}" "${h:10:2}" "${h:8:2}" "${h:14:2}" "${h:12:2}" \
    "${h:16:4}" "${h:20:12}"
}
