//! Who may use self-service: scope (groups, OUs, pilot) and account state, then tier.

use crate::account::{Account, Sid};
use crate::tier::{ProtectedGroups, Tier};

/// Who is in scope. Group SIDs are resolved from configured DNs at start.
#[derive(Debug, Clone, Default)]
pub struct ScopeRules {
    /// Members (transitively) of any of these may use SSPR. Empty: everyone (subject to OUs).
    pub groups: Vec<Sid>,
    /// While set, only (transitive) members of this group may use SSPR.
    pub pilot: Option<Sid>,
    /// DN suffixes an account must be under (empty: anywhere). Case-insensitive.
    pub allow_ous: Vec<String>,
    /// DN suffixes that exclude an account.
    pub deny_ous: Vec<String>,
    /// Privileged accounts are excluded (the default, invariant 1).
    pub exclude_privileged: bool,
}

/// Why an account may not use self-service. Never shown to the user (invariant 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    Disabled,
    SmartcardRequired,
    OutOfScope,
    NotInPilot,
    PrivilegedExcluded,
}

impl Ineligible {
    /// The stable code, for operator paths (CLI, helpdesk) only: the portal never tells.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Disabled => "RK-ACC-002",
            Self::SmartcardRequired => "RK-ACC-003",
            Self::OutOfScope | Self::NotInPilot => "RK-SCOPE-001",
            Self::PrivilegedExcluded => "RK-TIER-001",
        }
    }

    /// Plain words for an operator.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::Disabled => "The account is disabled.",
            Self::SmartcardRequired => {
                "The account requires a smartcard for interactive logon; it has no password to reset."
            }
            Self::OutOfScope => "The account is outside the self-service scope (groups / OUs).",
            Self::NotInPilot => "The account is not in the pilot group.",
            Self::PrivilegedExcluded => {
                "The account is privileged (member of a protected group); Rekey does not reset or \
                 unlock privileged accounts: use your tier-0 procedure."
            }
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::SmartcardRequired => "smartcard_required",
            Self::OutOfScope => "out_of_scope",
            Self::NotInPilot => "not_in_pilot",
            Self::PrivilegedExcluded => "privileged_excluded",
        }
    }
}

fn under(dn: &str, suffix: &str) -> bool {
    let (dn, suffix) = (dn.to_ascii_lowercase(), suffix.to_ascii_lowercase());
    dn.ends_with(&format!(",{suffix}")) || dn == suffix
}

impl ScopeRules {
    /// Decide from live account data (re-read before every write, invariant 23).
    pub fn check(
        &self,
        account: &Account,
        protected: &ProtectedGroups,
    ) -> Result<Tier, Ineligible> {
        if !account.state.enabled {
            return Err(Ineligible::Disabled);
        }
        if account.state.smartcard_required {
            return Err(Ineligible::SmartcardRequired);
        }
        if self.deny_ous.iter().any(|ou| under(&account.dn, ou))
            || (!self.allow_ous.is_empty()
                && !self.allow_ous.iter().any(|ou| under(&account.dn, ou)))
            || (!self.groups.is_empty() && !self.groups.iter().any(|g| account.is_member(g)))
        {
            return Err(Ineligible::OutOfScope);
        }
        if self.pilot.as_ref().is_some_and(|p| !account.is_member(p)) {
            return Err(Ineligible::NotInPilot);
        }
        let tier = protected.classify(account);
        if self.exclude_privileged && matches!(tier, Tier::Privileged { .. }) {
            return Err(Ineligible::PrivilegedExcluded);
        }
        Ok(tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountState, Guid};

    fn account(dn: &str, groups: Vec<Sid>) -> Account {
        Account {
            dn: dn.into(),
            guid: Guid([0; 16]),
            consistency_guid: None,
            sid: "S-1-5-21-1-2-3-1111".parse().unwrap(),
            sam_account_name: "x".into(),
            user_principal_name: None,
            mail: None,
            display_name: None,
            state: AccountState {
                enabled: true,
                ..AccountState::default()
            },
            groups,
            policy_ref: None,
            read_from: None,
        }
    }

    #[test]
    fn scope_rules() {
        let domain: Sid = "S-1-5-21-1-2-3".parse().unwrap();
        let protected = ProtectedGroups::new(&domain, []);
        let (sspr, pilot) = (domain.with_rid(2000), domain.with_rid(2001));
        let rules = ScopeRules {
            groups: vec![sspr.clone()],
            pilot: Some(pilot.clone()),
            allow_ous: vec!["OU=Staff,DC=corp".into()],
            deny_ous: vec!["OU=Frozen,OU=Staff,DC=corp".into()],
            exclude_privileged: true,
        };
        let ok = account("CN=a,OU=Staff,DC=corp", vec![sspr.clone(), pilot.clone()]);
        assert_eq!(rules.check(&ok, &protected), Ok(Tier::Normal));
        let nested_ou = account(
            "CN=a,OU=Sales,OU=Staff,DC=CORP",
            vec![sspr.clone(), pilot.clone()],
        );
        assert_eq!(
            rules.check(&nested_ou, &protected),
            Ok(Tier::Normal),
            "OUs match case-insensitively, at any depth"
        );
        let denied = account(
            "CN=a,OU=Frozen,OU=Staff,DC=corp",
            vec![sspr.clone(), pilot.clone()],
        );
        assert_eq!(
            rules.check(&denied, &protected),
            Err(Ineligible::OutOfScope)
        );
        let elsewhere = account("CN=a,OU=Other,DC=corp", vec![sspr.clone(), pilot.clone()]);
        assert_eq!(
            rules.check(&elsewhere, &protected),
            Err(Ineligible::OutOfScope)
        );
        let lookalike = account(
            "CN=a,OU=NotStaff,DC=corp",
            vec![sspr.clone(), pilot.clone()],
        );
        assert_eq!(
            rules.check(&lookalike, &protected),
            Err(Ineligible::OutOfScope),
            "suffix match is per RDN"
        );
        let no_group = account("CN=a,OU=Staff,DC=corp", vec![pilot.clone()]);
        assert_eq!(
            rules.check(&no_group, &protected),
            Err(Ineligible::OutOfScope)
        );
        let no_pilot = account("CN=a,OU=Staff,DC=corp", vec![sspr.clone()]);
        assert_eq!(
            rules.check(&no_pilot, &protected),
            Err(Ineligible::NotInPilot)
        );
        let mut disabled = ok.clone();
        disabled.state.enabled = false;
        assert_eq!(
            rules.check(&disabled, &protected),
            Err(Ineligible::Disabled)
        );
        let mut smartcard = ok.clone();
        smartcard.state.smartcard_required = true;
        assert_eq!(
            rules.check(&smartcard, &protected),
            Err(Ineligible::SmartcardRequired)
        );
        let mut admin = ok.clone();
        admin.groups.push(domain.with_rid(512));
        assert_eq!(
            rules.check(&admin, &protected),
            Err(Ineligible::PrivilegedExcluded)
        );
        let lax = ScopeRules {
            exclude_privileged: false,
            ..rules.clone()
        };
        assert!(matches!(
            lax.check(&admin, &protected),
            Ok(Tier::Privileged { .. })
        ));
        // Locked accounts stay eligible: a reset may unlock them.
        let mut locked = ok.clone();
        locked.state.locked = true;
        assert_eq!(rules.check(&locked, &protected), Ok(Tier::Normal));
    }
}
