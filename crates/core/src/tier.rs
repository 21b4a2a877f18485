//! Tiers: who is privileged. Privileged = transitive member of a protected group (invariant 24),
//! judged from the account's `tokenGroups`, never from `adminCount` (which is stale by design).

use crate::account::{Account, Sid};

/// How strictly an account is treated by the reset authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tier {
    Normal,
    /// With the protected groups that made it so (for the admin view and the audit).
    Privileged {
        via: Vec<Sid>,
    },
}

/// Domain-relative RIDs of protected groups.
const DOMAIN_RIDS: &[(u32, &str)] = &[
    (512, "Domain Admins"),
    (518, "Schema Admins"),
    (519, "Enterprise Admins"),
    (520, "Group Policy Creator Owners"),
];
/// `S-1-5-32-*` builtin groups.
const BUILTIN_RIDS: &[(u32, &str)] = &[
    (544, "Administrators"),
    (548, "Account Operators"),
    (549, "Server Operators"),
    (550, "Print Operators"),
    (551, "Backup Operators"),
];
/// The built-in Administrator account is privileged even if someone removed it from every group.
const ADMINISTRATOR_RID: u32 = 500;

/// The set of protected group SIDs for one domain, plus groups the operator added.
#[derive(Debug, Clone)]
pub struct ProtectedGroups {
    domain: Sid,
    groups: Vec<(Sid, String)>,
}

impl ProtectedGroups {
    #[must_use]
    pub fn new(domain: &Sid, extra: impl IntoIterator<Item = (Sid, String)>) -> Self {
        let builtin = Sid::builtin();
        let mut groups: Vec<(Sid, String)> = DOMAIN_RIDS
            .iter()
            .map(|&(rid, name)| (domain.with_rid(rid), name.to_owned()))
            .chain(
                BUILTIN_RIDS
                    .iter()
                    .map(|&(rid, name)| (builtin.with_rid(rid), format!("BUILTIN\\{name}"))),
            )
            .collect();
        groups.extend(extra);
        Self {
            domain: domain.clone(),
            groups,
        }
    }

    /// Name of a protected group SID, for display.
    #[must_use]
    pub fn name_of(&self, sid: &Sid) -> Option<&str> {
        self.groups
            .iter()
            .find(|(s, _)| s == sid)
            .map(|(_, n)| n.as_str())
    }

    #[must_use]
    pub fn classify(&self, account: &Account) -> Tier {
        let via: Vec<Sid> = self
            .groups
            .iter()
            .filter(|(sid, _)| account.is_member(sid))
            .map(|(sid, _)| sid.clone())
            .collect();
        if via.is_empty() && account.sid != self.domain.with_rid(ADMINISTRATOR_RID) {
            Tier::Normal
        } else {
            Tier::Privileged { via }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountState, Guid};

    fn account(sid: &Sid, groups: Vec<Sid>) -> Account {
        Account {
            dn: "CN=x".into(),
            guid: Guid([0; 16]),
            consistency_guid: None,
            sid: sid.clone(),
            sam_account_name: "x".into(),
            user_principal_name: None,
            mail: None,
            display_name: None,
            state: AccountState::default(),
            groups,
            policy_ref: None,
            read_from: None,
        }
    }

    #[test]
    fn classification() {
        let domain: Sid = "S-1-5-21-1-2-3".parse().unwrap();
        let extra: Sid = "S-1-5-21-1-2-3-1500".parse().unwrap();
        let p = ProtectedGroups::new(&domain, [(extra.clone(), "Tier0".to_owned())]);
        let user = domain.with_rid(1200);
        let users = domain.with_rid(513);
        assert_eq!(
            p.classify(&account(&user, vec![users.clone()])),
            Tier::Normal
        );
        let da = domain.with_rid(512);
        assert_eq!(
            p.classify(&account(&user, vec![users.clone(), da.clone()])),
            Tier::Privileged {
                via: vec![da.clone()]
            }
        );
        let backup: Sid = "S-1-5-32-551".parse().unwrap();
        assert_eq!(
            p.classify(&account(&user, vec![backup.clone()])),
            Tier::Privileged {
                via: vec![backup.clone()]
            }
        );
        assert_eq!(p.name_of(&backup), Some("BUILTIN\\Backup Operators"));
        assert_eq!(
            p.classify(&account(&user, vec![extra.clone()])),
            Tier::Privileged { via: vec![extra] }
        );
        // RID 500 with no groups at all is still privileged.
        assert_eq!(
            p.classify(&account(&domain.with_rid(500), vec![])),
            Tier::Privileged { via: vec![] }
        );
    }
}
