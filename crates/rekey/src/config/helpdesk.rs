//! `[helpdesk]`: the console's operator group, the approvers and the sensitive groups.

use rekey_core::engine::helpdesk::HelpdeskRules;
use rekey_directory::ActiveDirectory;
use serde::Deserialize;

use crate::admin::CliError;

/// The helpdesk console (`/helpdesk`): off while `operator_groups` is empty.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpdeskSection {
    /// DNs of the groups whose (transitive) members may sign in and act.
    #[serde(default)]
    pub operator_groups: Vec<String>,
    /// DNs of the groups whose members approve requests on sensitive accounts and method changes
    /// of privileged users (never their own).
    #[serde(default)]
    pub approver_groups: Vec<String>,
    /// DNs of groups whose members' accounts need an approval before the helpdesk acts.
    #[serde(default)]
    pub sensitive_groups: Vec<String>,
    /// Operators must pass a second factor (an enrolled email, phone or authenticator app).
    #[serde(default = "yes")]
    pub require_second_factor: bool,
    /// How long a console session lives from its sign-in (seconds, never extended).
    #[serde(default = "default_session")]
    pub session_secs: i64,
    /// How long the acts stay open after a caller was verified (seconds).
    #[serde(default = "default_caller")]
    pub caller_secs: i64,
    /// How long a request waits for an approver (seconds).
    #[serde(default = "default_approval")]
    pub approval_secs: i64,
}

fn yes() -> bool {
    true
}
fn default_session() -> i64 {
    HelpdeskRules::default().session_ttl
}
fn default_caller() -> i64 {
    HelpdeskRules::default().caller_ttl
}
fn default_approval() -> i64 {
    HelpdeskRules::default().approval_ttl
}

impl Default for HelpdeskSection {
    fn default() -> Self {
        Self {
            operator_groups: Vec::new(),
            approver_groups: Vec::new(),
            sensitive_groups: Vec::new(),
            require_second_factor: true,
            session_secs: default_session(),
            caller_secs: default_caller(),
            approval_secs: default_approval(),
        }
    }
}

impl HelpdeskSection {
    /// The engine's rules, with the groups resolved to SIDs.
    ///
    /// # Errors
    /// A group that does not exist (naming the key), a directory error, or a time out of range.
    pub async fn rules(&self, ad: &ActiveDirectory) -> Result<HelpdeskRules, CliError> {
        self.validate()?;
        let sids = |key, dns| crate::portal::sids(ad, key, dns);
        Ok(HelpdeskRules {
            operator_groups: sids("helpdesk.operator_groups", &self.operator_groups).await?,
            approver_groups: sids("helpdesk.approver_groups", &self.approver_groups).await?,
            sensitive_groups: sids("helpdesk.sensitive_groups", &self.sensitive_groups).await?,
            require_second_factor: self.require_second_factor,
            session_ttl: self.session_secs,
            caller_ttl: self.caller_secs,
            approval_ttl: self.approval_secs,
            ..HelpdeskRules::default()
        })
    }

    /// The offline checks (`rekey config check` and the start).
    ///
    /// # Errors
    /// The first key out of range, or sensitive groups without anyone to approve.
    pub fn validate(&self) -> Result<(), CliError> {
        let range = |key: &'static str, v: i64, lo: i64, hi: i64| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(crate::portal::missing(
                    key,
                    &format!("must be between {lo} and {hi} seconds"),
                ))
            }
        };
        range("helpdesk.session_secs", self.session_secs, 60, 8 * 3600)?;
        range("helpdesk.caller_secs", self.caller_secs, 60, 3600)?;
        range("helpdesk.approval_secs", self.approval_secs, 60, 7 * 86_400)?;
        if !self.sensitive_groups.is_empty() && self.approver_groups.is_empty() {
            return Err(crate::portal::missing(
                "helpdesk.approver_groups",
                "sensitive_groups need approvers: nobody could approve a request",
            ));
        }
        Ok(())
    }

    /// With `[gates.privileged]` (privileged users served by self-service) every method change
    /// of a privileged user waits for an approver, so approvers must exist.
    ///
    /// # Errors
    /// `helpdesk.approver_groups` named when the privileged tier is served without approvers.
    pub fn validate_for_privileged(&self, privileged_served: bool) -> Result<(), CliError> {
        if privileged_served && self.approver_groups.is_empty() {
            return Err(crate::portal::missing(
                "helpdesk.approver_groups",
                "[gates.privileged] is set: a privileged user's method change waits for an \
                 approver, and nobody could approve one",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ranges() {
        let s = HelpdeskSection::default();
        assert!(s.require_second_factor);
        assert!(s.validate().is_ok());
        let bad = HelpdeskSection {
            caller_secs: 5,
            ..HelpdeskSection::default()
        };
        assert!(bad.validate().is_err());
        let no_approvers = HelpdeskSection {
            sensitive_groups: vec!["CN=VIP,DC=corp".into()],
            ..HelpdeskSection::default()
        };
        assert!(no_approvers.validate().is_err());
        // Privileged users served: their method changes need approvers.
        assert!(s.validate_for_privileged(false).is_ok());
        assert!(s.validate_for_privileged(true).is_err());
        let with = HelpdeskSection {
            approver_groups: vec!["CN=Approvers,DC=corp".into()],
            ..HelpdeskSection::default()
        };
        assert!(with.validate_for_privileged(true).is_ok());
    }
}
