# shellcheck shell=bash
# dev/lib/seed.sh — the demo fixture: password policy, OUs, users, groups, PSOs, the
# service account and its delegation, the special-state users. Idempotent: existing objects
# are kept (passwords are written only when a user is created); memberships and the
# non-password states (disabled, smartcard, must-change, locked) are re-asserted.

STAFF_OU="OU=Staff,$BASE_DN"
CONTRACTORS_OU="OU=Contractors,$BASE_DN"
SERVICE_OU="OU=Service,$BASE_DN"
ADMINS_OU="OU=Admins,$BASE_DN"
GROUPS_OU="OU=Groups,$BASE_DN"
PSC_DN="CN=Password Settings Container,CN=System,$BASE_DN"
SVC_SAM=svc-rekey
SVC_DN="CN=$SVC_SAM,$SERVICE_OU"
SSPR_GROUP_DN="CN=SSPR-Users,$GROUPS_OU"
STAFF_ALL_GROUP_DN="CN=Staff-All,$GROUPS_OU"
PILOT_GROUP_DN="CN=SSPR-Pilot,$GROUPS_OU"
IT_ADMINS_GROUP_DN="CN=IT-Admins,$GROUPS_OU"
STRICT_GROUP_DN="CN=PSO-Strict,$GROUPS_OU"
DOMAIN_ADMINS_DN="CN=Domain Admins,CN=Users,$BASE_DN"
PSO_STRICT_DN="CN=PSO-Strict,$PSC_DN"
PSO_EXPIRY_DN="CN=PSO-Expiry,$PSC_DN"

STAFF_USERS=(alice.adams bob.baker carol.chen dave.diaz erin.evans frank.finance grace.green
             heidi.hill ivan.admin judy.jones karl.king lena.lopez mallory.moore nina.nguyen
             oscar.ortiz peggy.patel quinn.quade rita.reyes steve.smith trent.turner
             dan.disabled lou.locked mike.mustchange eve.expired sam.smartcard
             pat.shared kim.shared)
CONTRACTOR_USERS=(uma.underwood victor.vance wendy.wu)
ADMINS_OU_USERS=(adam.outside)
PILOT_USERS=(alice.adams bob.baker carol.chen)
STRICT_USERS=(frank.finance grace.green)
DEPARTMENTS=(Finance Sales Engineering Support Marketing HR Operations Legal)
# Two in-scope staff users with the same mail: finding that address yields two accounts.
SHARED_MAIL_USERS=(pat.shared kim.shared)
AMBIGUOUS_MAIL="shared.mailbox@$DNS_DOMAIN"

UF_ACCOUNTDISABLE=2; UF_NORMAL_ACCOUNT=512; UF_DONT_EXPIRE_PASSWD=65536
UF_SMARTCARD_REQUIRED=262144; UF_LOCKOUT=16; UF_PASSWORD_EXPIRED=8388608
USER_CLASS_GUID=bf967aba-0de6-11d0-a285-00aa003049e2
GROUP_GLOBAL_SECURITY=-2147483646
# 100-ns intervals, negative as AD stores them.
T_DAY=864000000000; T_MIN=600000000

user_dn() { # SAM — fixture user DN
  local sam=$1 g s
  g=${sam%%.*}; s=${sam#*.}
  [[ $sam == "$SVC_SAM" ]] && { printf '%s' "$SVC_DN"; return; }
  local cn="${g^} ${s^}" ou=$STAFF_OU
  [[ " ${CONTRACTOR_USERS[*]} " == *" $sam "* ]] && ou=$CONTRACTORS_OU
  [[ " ${ADMINS_OU_USERS[*]} " == *" $sam "* ]] && ou=$ADMINS_OU
  printf 'CN=%s,%s' "$cn" "$ou"
}

has_dn() { grep -qxF "${1,,}" <<<"$EXISTING"; }

user_mail() { # SAM — the fixture user's mail (shared by SHARED_MAIL_USERS)
  if [[ " ${SHARED_MAIL_USERS[*]} " == *" $1 "* ]]; then
    printf '%s' "$AMBIGUOUS_MAIL"
  else
    printf '%s@%s' "$1" "$DNS_DOMAIN"
  fi
}

seed_policy() {
  ldif_apply "setting the domain password policy" <<EOF
dn: $BASE_DN
changetype: modify
replace: pwdProperties
pwdProperties: 1
-
replace: minPwdLength
minPwdLength: 7
-
replace: pwdHistoryLength
pwdHistoryLength: 24
-
replace: minPwdAge
minPwdAge: 0
-
replace: maxPwdAge
maxPwdAge: -$((42 * T_DAY))
-
replace: lockoutThreshold
lockoutThreshold: 5
-
replace: lockoutDuration
lockoutDuration: -$((30 * T_MIN))
-
replace: lockOutObservationWindow
lockOutObservationWindow: -$((30 * T_MIN))
EOF
}

seed_ous() {
  local ou ldif=""
  for ou in Staff Contractors Service Admins Groups; do
    has_dn "OU=$ou,$BASE_DN" && continue
    ldif+="dn: OU=$ou,$BASE_DN
changetype: add
objectClass: organizationalUnit
description: Rekey dev fixture

"
  done
  ldif_apply "creating the OUs" <<<"$ldif"
}

# user_ldif SAM UAC PASSWORD INDEX — an add record for a fixture user.
user_ldif() {
  local sam=$1 uac=$2 pw=$3 i=$4 dn g s
  dn=$(user_dn "$sam")
  if [[ $sam == "$SVC_SAM" ]]; then
    cat <<EOF
dn: $dn
changetype: add
objectClass: user
sAMAccountName: $sam
userPrincipalName: $sam@$DNS_DOMAIN
displayName: Rekey service account
description: Rekey SSPR service account (delegated reset on OU=Staff and OU=Contractors)
userAccountControl: $uac
unicodePwd:: $(unicode_pwd_b64 "$pw")

EOF
    return
  fi
  g=${sam%%.*}; s=${sam#*.}
  local dept=${DEPARTMENTS[i % ${#DEPARTMENTS[@]}]}
  [[ $dn == *",$CONTRACTORS_OU" ]] && dept=Contractors
  [[ $dn == *",$ADMINS_OU" ]] && dept=IT
  cat <<EOF
dn: $dn
changetype: add
objectClass: user
sAMAccountName: $sam
userPrincipalName: $sam@$DNS_DOMAIN
givenName: ${g^}
sn: ${s^}
displayName: ${g^} ${s^}
mail: $(user_mail "$sam")
mobile: +1555010$(printf '%02d' "$i")
department: $dept
title: ${dept} staff
userAccountControl: $uac
unicodePwd:: $(unicode_pwd_b64 "$pw")

EOF
}

seed_service_account() {
  has_dn "$SVC_DN" && [[ -s $SVC_PASS_FILE ]] && return 0
  if has_dn "$SVC_DN"; then
    die "$SVC_DN exists but $SVC_PASS_FILE is missing; run 'dev/domain reset'"
  fi
  write_secret "$SVC_PASS_FILE" "$(random_password)"
  user_ldif "$SVC_SAM" $((UF_NORMAL_ACCOUNT | UF_DONT_EXPIRE_PASSWD)) "$(cat "$SVC_PASS_FILE")" 0 |
    ldif_apply "creating $SVC_SAM"
  SVC_CREATED=1
}

seed_users() {
  info "creating missing demo users"
  local all=("${STAFF_USERS[@]}" "${CONTRACTOR_USERS[@]}" "${ADMINS_OU_USERS[@]}")
  local i sam uac ldif=""
  for i in "${!all[@]}"; do
    sam=${all[i]}
    has_dn "$(user_dn "$sam")" && continue
    uac=$UF_NORMAL_ACCOUNT
    [[ $sam == dan.disabled ]] && uac=$((uac | UF_ACCOUNTDISABLE))
    [[ $sam == sam.smartcard ]] && uac=$((uac | UF_SMARTCARD_REQUIRED))
    ldif+=$(user_ldif "$sam" "$uac" "$DEMO_PASSWORD" "$((i + 1))")$'\n\n'
  done
  ldif_apply "creating the demo users" <<<"$ldif"
}

# ensure_members GROUP_DN MEMBER_DN... — add the members the group lacks.
ensure_members() {
  local group=$1; shift
  local have m ldif=""
  have=$(ldap_get "$group" member | tr '[:upper:]' '[:lower:]')
  for m in "$@"; do
    grep -qxF "${m,,}" <<<"$have" && continue
    ldif+="member: $m"$'\n'
  done
  [[ -z $ldif ]] && return 0
  ldif_apply "adding members to $group" <<EOF
dn: $group
changetype: modify
add: member
${ldif}-
EOF
}

seed_group() { # DN SAM DESCRIPTION MEMBER_DN...
  local dn=$1 sam=$2 desc=$3; shift 3
  if ! has_dn "$dn"; then
    ldif_apply "creating group $sam" <<EOF
dn: $dn
changetype: add
objectClass: group
sAMAccountName: $sam
groupType: $GROUP_GLOBAL_SECURITY
description: $desc
EOF
  fi
  (($# == 0)) || ensure_members "$dn" "$@"
}

seed_groups() {
  local staff=() pilot=() strict=() u
  for u in "${STAFF_USERS[@]}"; do staff+=("$(user_dn "$u")"); done
  for u in "${PILOT_USERS[@]}"; do pilot+=("$(user_dn "$u")"); done
  for u in "${STRICT_USERS[@]}"; do strict+=("$(user_dn "$u")"); done
  seed_group "$STAFF_ALL_GROUP_DN" Staff-All "All staff (nested in SSPR-Users)" "${staff[@]}"
  seed_group "$SSPR_GROUP_DN" SSPR-Users "Users allowed to use Rekey" "$STAFF_ALL_GROUP_DN" \
    "$(user_dn uma.underwood)" "$(user_dn victor.vance)" "$(user_dn adam.outside)"
  seed_group "$PILOT_GROUP_DN" SSPR-Pilot "Rekey pilot users" "${pilot[@]}"
  seed_group "$IT_ADMINS_GROUP_DN" IT-Admins "IT administrators (member of Domain Admins)" \
    "$(user_dn ivan.admin)"
  seed_group "$STRICT_GROUP_DN" PSO-Strict "Members get the PSO-Strict password policy" "${strict[@]}"
  ensure_members "$DOMAIN_ADMINS_DN" "$IT_ADMINS_GROUP_DN"
}

seed_pso() { # DN PRECEDENCE MINLEN MINAGE MAXAGE LOCKOUT APPLIES_TO
  has_dn "$1" && return 0
  ldif_apply "creating PSO $1" <<EOF
dn: $1
changetype: add
objectClass: msDS-PasswordSettings
msDS-PasswordSettingsPrecedence: $2
msDS-PasswordReversibleEncryptionEnabled: FALSE
msDS-PasswordHistoryLength: 24
msDS-PasswordComplexityEnabled: TRUE
msDS-MinimumPasswordLength: $3
msDS-MinimumPasswordAge: $4
msDS-MaximumPasswordAge: $5
msDS-LockoutThreshold: $6
msDS-LockoutObservationWindow: -$((30 * T_MIN))
msDS-LockoutDuration: -$((30 * T_MIN))
msDS-PSOAppliesTo: $7
EOF
}

seed_psos() {
  seed_pso "$PSO_STRICT_DN" 10 12 -$T_DAY -$((42 * T_DAY)) 3 "$STRICT_GROUP_DN"
  # Applied to eve directly. Samba treats a maximum age shorter than one day as "never
  # expires", so it is 2 days and eve's pwdLastSet is backdated (expire_eve).
  seed_pso "$PSO_EXPIRY_DN" 20 7 0 -$((2 * T_DAY)) 5 "$(user_dn eve.expired)"
}

# SID string from a base64 objectSid.
sid_from_b64() {
  local -a b
  read -r -a b <<<"$(base64 -d <<<"$1" | od -An -v -tu1 | tr '\n' ' ')"
  local auth=0 i sid n
  for i in 2 3 4 5 6 7; do auth=$((auth * 256 + b[i])); done
  sid="S-${b[0]}-$auth"
  n=${b[1]}
  for ((i = 0; i < n; i++)); do
    local o=$((8 + 4 * i))
    sid+="-$((b[o] + b[o + 1] * 256 + b[o + 2] * 65536 + b[o + 3] * 16777216))"
  done
  printf '%s' "$sid"
}

user_ace() { printf '(OA;CIIO;%s;%s;%s;%s)' "$1" "$2" "$USER_CLASS_GUID" "$3"; }

seed_acls() {
  info "delegating to $SVC_SAM (samba-tool dsacl set)"
  local sid_b64 sid aces
  sid_b64=$(ldap_admin ldapsearch -LLL -o ldif-wrap=no -b "$SVC_DN" -s base "(objectClass=*)" objectSid |
    sed -n 's/^objectSid:: //p')
  [[ -n $sid_b64 ]] || die "cannot read the objectSid of $SVC_DN"
  sid=$(sid_from_b64 "$sid_b64")
  # Inherit-only ACEs that apply to user objects below the OU: Reset Password, Change
  # Password, write lockoutTime, write pwdLastSet.
  aces=$(user_ace CR 00299570-246d-11d0-a768-00aa006e0529 "$sid")
  aces+=$(user_ace CR ab721a53-1e2f-11d0-9819-00aa0040529b "$sid")
  aces+=$(user_ace WP 28630ebf-41d5-11d1-a9c1-0000f80367c1 "$sid")
  aces+=$(user_ace WP bf967a0a-0de6-11d0-a285-00aa003049e2 "$sid")
  local ldb
  ldb=$(dc_dir dc1)/private/sam.ldb
  run_quiet "delegating to $SVC_SAM on OU=Staff" samba-tool dsacl set -H "$ldb" --objectdn="$STAFF_OU" --sddl="$aces"
  run_quiet "delegating to $SVC_SAM on OU=Contractors" samba-tool dsacl set -H "$ldb" --objectdn="$CONTRACTORS_OU" --sddl="$aces"
  run_quiet "granting Unexpire Password on the domain to $SVC_SAM" samba-tool dsacl set -H "$ldb" \
    --objectdn="$BASE_DN" --sddl="(OA;;CR;ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501;;$sid)"
  run_quiet "granting $SVC_SAM read on the Password Settings Container" samba-tool dsacl set -H "$ldb" \
    --objectdn="$PSC_DN" --sddl="(A;CI;RPLCLORC;;;$sid)"
}

uac_of() { ldap_get "$(user_dn "$1")" userAccountControl; }
computed_uac_of() { ldap_get "$(user_dn "$1")" msDS-User-Account-Control-Computed; }

ensure_uac_bits() { # SAM BITS
  local uac
  uac=$(uac_of "$1")
  (((uac & $2) == $2)) && return 0
  ldif_apply "setting userAccountControl of $1" <<EOF
dn: $(user_dn "$1")
changetype: modify
replace: userAccountControl
userAccountControl: $((uac | $2))
EOF
}

# lou.locked: wrong simple binds over LDAPS until the DC reports the lockout (threshold 5).
lock_lou() {
  local c i wrong
  c=$(computed_uac_of lou.locked)
  (((c & UF_LOCKOUT) != 0)) && return 0
  info "locking lou.locked out (wrong binds)"
  wrong=$(mktemp "${TMPDIR:-/tmp}/rekey-dev.XXXXXX")
  printf 'Wrong-Passw0rd-%s' "$RANDOM" >"$wrong"
  for ((i = 0; i < 8; i++)); do
    ldap_as "lou.locked@$DNS_DOMAIN" "$wrong" ldapsearch -b "" -s base 1.1 >/dev/null 2>&1 || true
    c=$(computed_uac_of lou.locked)
    (((c & UF_LOCKOUT) != 0)) && break
  done
  rm -f "$wrong"
  (((c & UF_LOCKOUT) != 0)) || die "lou.locked is not locked out after $i wrong binds"
  [[ $(ldap_get "$(user_dn lou.locked)" lockoutTime) != 0 ]] || die "lou.locked: lockoutTime is 0"
}

seed_states() {
  ensure_uac_bits dan.disabled $UF_ACCOUNTDISABLE
  ensure_uac_bits sam.smartcard $UF_SMARTCARD_REQUIRED
  # Must-change, written by the service account (proves its pwdLastSet delegation).
  if [[ $(ldap_get "$(user_dn mike.mustchange)" pwdLastSet) != 0 ]]; then
    ldif_apply "setting pwdLastSet=0 on mike.mustchange as $SVC_SAM" "$SVC_DN" "$SVC_PASS_FILE" <<EOF
dn: $(user_dn mike.mustchange)
changetype: modify
replace: pwdLastSet
pwdLastSet: 0
EOF
  fi
  lock_lou
  expire_eve
  share_mail
}

# pat.shared and kim.shared: the same mail on both (re-asserted if a test changed it).
share_mail() {
  local sam
  for sam in "${SHARED_MAIL_USERS[@]}"; do
    [[ $(ldap_get "$(user_dn "$sam")" mail) == "$AMBIGUOUS_MAIL" ]] && continue
    ldif_apply "setting the shared mail of $sam" <<EOF
dn: $(user_dn "$sam")
changetype: modify
replace: mail
mail: $AMBIGUOUS_MAIL
EOF
  done
}

# backdate_pwdlastset DN DAYS — pwdLastSet can only be 0 or -1 over LDAP; Samba's private
# "bypass last set" control (1.3.6.1.4.1.7165.4.3.20, local ldb only) writes a literal value
# without touching the password.
backdate_pwdlastset() {
  run_quiet "backdating pwdLastSet of $1" /usr/bin/python3 -c "$BACKDATE_PY" "$(dc_conf dc1)" "$1" "$2"
}
BACKDATE_PY='
import sys, time
import ldb
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
conf, dn, days = sys.argv[1], sys.argv[2], float(sys.argv[3])
lp = LoadParm()
lp.load(conf)
db = SamDB(url=lp.samdb_url(), session_info=system_session(lp), lp=lp)
nttime = int((time.time() - days * 86400 + 11644473600) * 10**7)
m = ldb.Message()
m.dn = ldb.Dn(db, dn)
m["pwdLastSet"] = ldb.MessageElement(str(nttime), ldb.FLAG_MOD_REPLACE, "pwdLastSet")
db.modify(m, controls=["local_oid:1.3.6.1.4.1.7165.4.3.20:0"])
'

# eve.expired: password last set 3 days ago under PSO-Expiry (max age 2 days).
expire_eve() {
  local c
  c=$(computed_uac_of eve.expired)
  (((c & UF_PASSWORD_EXPIRED) != 0)) && return 0
  backdate_pwdlastset "$(user_dn eve.expired)" 3
  c=$(computed_uac_of eve.expired)
  (((c & UF_PASSWORD_EXPIRED) != 0)) ||
    die "eve.expired: msDS-User-Account-Control-Computed=$c lacks 0x800000 after backdating pwdLastSet"
}

# svc_reset WANT DESCRIPTION USER: as the service account, set USER's password to $pw_b64
# (the caller's base64 unicodePwd value) and expect LDAP result code WANT.
svc_reset() {
  expect_rc "$1" "$2" "$SVC_DN" "$SVC_PASS_FILE" <<EOF
dn: $(user_dn "$3")
changetype: modify
replace: unicodePwd
unicodePwd:: $pw_b64
-
EOF
}

# expect_rc WANT DESCRIPTION BIND_DN PWFILE < LDIF
expect_rc() {
  local want=$1 desc=$2 res rc
  res=$(ldif_try "$3" "$4")
  rc=${res%%$'\t'*}
  [[ $rc == "$want" ]] || die "delegation check failed: $desc: expected ldapmodify exit $want, got $rc: ${res#*$'\t'}"
}

verify_delegation() { # FULL(0|1) — 1 also performs password writes (first seed only)
  info "verifying the delegation as $SVC_SAM"
  local pw_b64 v
  if [[ $1 == 1 ]]; then
    pw_b64=$(unicode_pwd_b64 "$DEMO_PASSWORD")
    svc_reset 0 "$SVC_SAM resets alice.adams (OU=Staff)" alice.adams
    expect_rc 0 "$SVC_SAM unexpires alice.adams (pwdLastSet=-1) and clears lockoutTime" "$SVC_DN" "$SVC_PASS_FILE" <<EOF
dn: $(user_dn alice.adams)
changetype: modify
replace: pwdLastSet
pwdLastSet: -1
-
replace: lockoutTime
lockoutTime: 0
-
EOF
    svc_reset 0 "$SVC_SAM resets uma.underwood (OU=Contractors)" uma.underwood
    svc_reset 50 "$SVC_SAM must not reset adam.outside (OU=Admins)" adam.outside
    expect_rc 50 "$SVC_SAM must not write pwdLastSet of adam.outside (OU=Admins)" "$SVC_DN" "$SVC_PASS_FILE" <<EOF
dn: $(user_dn adam.outside)
changetype: modify
replace: pwdLastSet
pwdLastSet: 0
-
EOF
  fi
  v=$(ldap_as "$SVC_DN" "$SVC_PASS_FILE" ldapsearch -LLL -o ldif-wrap=no -b "$(user_dn frank.finance)" \
        -s base "(objectClass=*)" msDS-ResultantPSO | ldif_values msDS-ResultantPSO)
  [[ ${v,,} == "${PSO_STRICT_DN,,}" ]] ||
    die "delegation check failed: $SVC_SAM reads msDS-ResultantPSO of frank.finance as '$v', want $PSO_STRICT_DN"
  v=$(ldap_as "$SVC_DN" "$SVC_PASS_FILE" ldapsearch -LLL -o ldif-wrap=no -b "$PSO_STRICT_DN" \
        -s base "(objectClass=*)" msDS-MinimumPasswordLength | ldif_values msDS-MinimumPasswordLength)
  [[ $v == 12 ]] ||
    die "delegation check failed: $SVC_SAM reads msDS-MinimumPasswordLength of PSO-Strict as '$v', want 12"
}

seed() {
  local first=0
  [[ -e $SEED_MARKER ]] || first=1
  ((first)) && info "seeding the fixture"
  EXISTING=$(existing_dns)
  ((first)) && seed_policy
  seed_ous
  EXISTING=$(existing_dns)
  SVC_CREATED=0
  seed_service_account
  ((first || SVC_CREATED)) && seed_acls
  seed_users
  EXISTING=$(existing_dns)
  seed_groups
  seed_psos
  seed_states
  verify_delegation "$first"
  ((first)) && date -u +%FT%TZ >"$SEED_MARKER"
  return 0
}
