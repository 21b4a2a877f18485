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
