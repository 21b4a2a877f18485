//! Reading typed values out of LDAP entries (AD attribute names are case-insensitive).

use ldap3::{ResultEntry, SearchEntry};
use rekey_core::{Account, AccountState, Guid, Sid};

/// Entries of a search result, skipping continuation references.
pub(crate) fn entries(raw: Vec<ResultEntry>) -> Vec<SearchEntry> {
    raw.into_iter()
        .filter(|e| !e.is_ref())
        .map(SearchEntry::construct)
        .collect()
}

pub(crate) fn str_values<'a>(e: &'a SearchEntry, attr: &str) -> &'a [String] {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .map_or(&[], |(_, v)| v.as_slice())
}

pub(crate) fn first_str<'a>(e: &'a SearchEntry, attr: &str) -> Option<&'a str> {
    str_values(e, attr).first().map(String::as_str)
}

pub(crate) fn first_i64(e: &SearchEntry, attr: &str) -> Option<i64> {
    first_str(e, attr)?.trim().parse().ok()
}

pub(crate) fn first_bool(e: &SearchEntry, attr: &str) -> Option<bool> {
    first_str(e, attr).map(|v| v.eq_ignore_ascii_case("TRUE"))
}

/// Values of a binary attribute. ldap3 files a value under `attrs` when it happens to be valid
/// UTF-8, so both maps are consulted.
pub(crate) fn bin_values(e: &SearchEntry, attr: &str) -> Vec<Vec<u8>> {
    let bin = e
        .bin_attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter().cloned());
    let text = str_values(e, attr).iter().map(|s| s.as_bytes().to_vec());
    bin.chain(text).collect()
}

/// Attributes read for an account (one base-scope search: the constructed ones need it).
pub(crate) const ACCOUNT_ATTRS: &[&str] = &[
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "objectSid",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "displayName",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "pwdLastSet",
    "lockoutTime",
    "badPwdCount",
    "tokenGroups",
    "msDS-ResultantPSO",
];

pub(crate) fn account(e: &SearchEntry) -> Option<Account> {
    let guid = Guid::from_bytes(bin_values(e, "objectGUID").first()?)?;
    let sid = Sid::from_bytes(bin_values(e, "objectSid").first()?)?;
    let uac = u32::try_from(first_i64(e, "userAccountControl")?).ok()?;
    let computed =
        first_i64(e, "msDS-User-Account-Control-Computed").and_then(|v| u32::try_from(v).ok());
    let state = AccountState::from_attributes(
        uac,
        computed,
        first_i64(e, "pwdLastSet"),
        first_i64(e, "lockoutTime"),
        first_i64(e, "badPwdCount")
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
    );
    Some(Account {
        dn: e.dn.clone(),
        guid,
        consistency_guid: bin_values(e, "mS-DS-ConsistencyGuid")
            .first()
            .and_then(|b| Guid::from_bytes(b)),
        sid,
        sam_account_name: first_str(e, "sAMAccountName")?.to_owned(),
        user_principal_name: first_str(e, "userPrincipalName").map(str::to_owned),
        mail: first_str(e, "mail").map(str::to_owned),
        display_name: first_str(e, "displayName").map(str::to_owned),
        state,
        groups: bin_values(e, "tokenGroups")
            .iter()
            .filter_map(|b| Sid::from_bytes(b))
            .collect(),
        policy_ref: first_str(e, "msDS-ResultantPSO").map(str::to_owned),
        read_from: None,
    })
}
