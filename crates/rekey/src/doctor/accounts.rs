//! Accounts in scope: those the OU delegation cannot reach on Windows (adminCount=1, blocked
//! inheritance), privileged ones (with the group path), and the canary.

use std::collections::BTreeMap;

use rekey_directory::acl;
use rekey_directory::probe::{Entry, Session, parent_dn, rdn_value};

use super::Finding;
use super::directory::{LIST_CAP, ScopedOu, USER_SCAN_LIMIT, denied};
use crate::config::Config;

fn capped(names: &[String]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().take(LIST_CAP).cloned().collect();
    if names.len() > LIST_CAP {
        v.push(format!("… and {} more", names.len() - LIST_CAP));
    }
    v
}

fn sam_or_dn(e: &Entry) -> String {
    e.first("sAMAccountName")
        .map_or_else(|| e.dn.clone(), |s| format!("{s} ({})", e.dn))
}

/// Accounts in scope the OU delegation does not reach on Windows.
pub(super) async fn unreachable_users(
    config: &Config,
    s: &mut Session,
    scan: &[(String, Vec<String>)],
    out: &mut Vec<Finding>,
) -> Vec<(String, String)> {
    let mut administrators = Vec::new();
    let mut admin_count = Vec::new();
    let mut protected = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut partial = Vec::new();
    for (ou, groups) in scan {
        let users = s
            .users(
                ou,
                groups,
                &[
                    "sAMAccountName",
                    "adminCount",
                    "objectSid",
                    "nTSecurityDescriptor",
                ],
                true,
                USER_SCAN_LIMIT,
            )
            .await;
        match users {
            Ok(users) => {
                if s.truncated() {
                    partial.push(format!(
                        "{ou}: only the first {} users were scanned (size limit)",
                        users.len()
                    ));
                }
                for u in users.iter().filter(|u| !denied(config, &u.dn)) {
                    if !seen.insert(u.dn.to_ascii_lowercase()) {
                        continue;
                    }
                    let rid_500 = u
                        .bin("objectSid")
                        .first()
                        .and_then(|b| acl::sid_string(b).ok())
                        .is_some_and(|sid| sid.starts_with("S-1-5-21-") && sid.ends_with("-500"));
                    if rid_500 {
                        let name = u.first("sAMAccountName").unwrap_or(&u.dn).to_owned();
                        administrators.push((u.dn.clone(), name));
                    }
                    if u.first("adminCount").is_some_and(|v| v.trim() == "1") {
                        admin_count.push(sam_or_dn(u));
                    }
                    if u.security_descriptor()
                        .is_some_and(|sd| sd.dacl_protected())
                    {
                        protected.push(sam_or_dn(u));
                    }
                }
            }
            Err(e) => out.push(
                Finding::warn(
                    "adminsdholder",
                    "RK-DOC-023",
                    format!("users not scanned: {e}"),
                )
                .on(ou.clone()),
            ),
        }
    }
    if !partial.is_empty() {
        out.push(
            Finding::warn(
                "adminsdholder",
                "RK-DOC-032",
                "the scan of accounts in scope is partial: the lists below may be incomplete",
            )
            .details(partial)
            .fix("narrow scope.allow_ous, or check the remaining accounts with dsquery/Get-ADUser"),
        );
    }
    out.push(if admin_count.is_empty() {
        Finding::pass("adminsdholder", "no account in scope has adminCount=1")
    } else {
        Finding::warn(
            "adminsdholder",
            "RK-DOC-030",
            format!(
                "{} account(s) in scope have adminCount=1: on Windows SDProp gives them \
                 AdminSDHolder's ACL, so resets and unlocks by the service account fail",
                admin_count.len()
            ),
        )
        .details(capped(&admin_count))
        .fix(
            "privileged accounts: take them out of scope (scope.deny_ous) or reset them by hand; \
             accounts no longer in a protected group: clear adminCount and re-enable inheritance \
             on their security descriptor",
        )
    });
    out.push(if protected.is_empty() {
        Finding::pass("inheritance", "no account in scope blocks inheritance")
    } else {
        Finding::warn(
            "inheritance",
            "RK-DOC-031",
            format!(
                "{} account(s) in scope block inheritance (protected DACL): the OU delegation \
                 does not reach them, so writes fail",
                protected.len()
            ),
        )
        .details(capped(&protected))
        .fix("enable inheritance on these accounts (Security → Advanced → Enable inheritance), unless they are protected on purpose")
    });
    administrators
}

/// Protected groups (DN, name): the built-in ones of the domain and `tier.protected_groups`.
pub(super) async fn protected_groups(
    config: &Config,
    s: &mut Session,
    base: &str,
    head: &Entry,
) -> Vec<String> {
    let domain_sid = head
        .bin("objectSid")
        .first()
        .and_then(|b| acl::sid_string(b).ok())
        .unwrap_or_default();
    let mut sids: Vec<String> = [512u32, 518, 519, 520]
        .iter()
        .map(|rid| format!("{domain_sid}-{rid}"))
        .collect();
    sids.extend(
        [544u32, 548, 549, 550, 551]
            .iter()
            .map(|rid| format!("S-1-5-32-{rid}")),
    );
    let mut dns = Vec::new();
    for sid in sids {
        if let Ok(Some(dn)) = s.group_by_sid(base, &sid).await {
            dns.push(dn);
        }
    }
    dns.extend(config.tier.protected_groups.iter().cloned());
    dns
}

pub(super) async fn privileged(
    config: &Config,
    s: &mut Session,
    scan: &[(String, Vec<String>)],
    protected: &[String],
    administrators: Vec<(String, String)>,
    out: &mut Vec<Finding>,
) {
    let mut found: BTreeMap<String, String> = administrators
        .into_iter()
        .map(|(dn, name)| (dn, format!("{name}: the built-in Administrator (RID 500)")))
        .collect();
    for group in protected {
        for (ou, groups) in scan {
            let Ok(users) = s.members_in_scope(ou, groups, group, USER_SCAN_LIMIT).await else {
                continue;
            };
            for u in users.iter().filter(|u| !denied(config, &u.dn)) {
                if found.contains_key(&u.dn) {
                    continue;
                }
                let path = s
                    .group_path(&u.dn, group)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| vec![rdn_value(group).to_owned()]);
                let name = u.first("sAMAccountName").unwrap_or(&u.dn).to_owned();
                found.insert(u.dn.clone(), format!("{name}: {}", path.join(" → ")));
            }
        }
    }
    let lines: Vec<String> = found.into_values().collect();
    out.push(if lines.is_empty() {
        Finding::pass("privileged", "no privileged account is reachable by scope")
    } else if config.gates.privileged.is_some() {
        Finding::pass(
            "privileged",
            format!(
                "{} privileged account(s) in scope, served by [gates.privileged]",
                lines.len()
            ),
        )
        .details(capped(&lines))
    } else {
        Finding::warn(
            "privileged",
            "RK-DOC-040",
            format!(
                "{} privileged account(s) are reachable by scope; without [gates.privileged] \
                 Rekey refuses them (and on Windows AdminSDHolder blocks the writes)",
                lines.len()
            ),
        )
        .details(capped(&lines))
        .fix(
            "take them out of scope (remove them from the scope groups, or scope.deny_ous), or \
             configure [gates.privileged] if they should reset here",
        )
    });
}

pub(super) async fn canary(
    config: &Config,
    s: &mut Session,
    base: &str,
    ous: &[ScopedOu],
    protected: &[String],
    out: &mut Vec<Finding>,
) {
    if !config.canary.enabled {
        return;
    }
    let Some(sam) = &config.canary.user else {
        out.push(
            Finding::fail(
                "canary",
                "RK-DOC-090",
                "canary.enabled but canary.user is not set",
            )
            .fix("set canary.user"),
        );
        return;
    };
    let user = match s.user_by_sam(base, sam).await {
        Ok(Some(u)) => u,
        Ok(None) => {
            out.push(
                Finding::fail(
                    "canary",
                    "RK-DOC-090",
                    format!("the canary account {sam} does not exist"),
                )
                .fix("create it in a scoped OU, in no privileged group, used for nothing else"),
            );
            return;
        }
        Err(e) => {
            out.push(Finding::fail(
                "canary",
                "RK-DOC-090",
                format!("not checked: {e}"),
            ));
            return;
        }
    };
    let parent = parent_dn(&user.dn).to_ascii_lowercase();
    let in_ou = ous.iter().any(|o| {
        let o = o.dn.to_ascii_lowercase();
        parent == o || parent.ends_with(&format!(",{o}"))
    }) && !denied(config, &user.dn);
    let in_groups = config.scope.groups.is_empty()
        || s.users(&user.dn, &config.scope.groups, &["1.1"], false, 1)
            .await
            .is_ok_and(|v| !v.is_empty());
    let privileged = s
        .users(&user.dn, protected, &["1.1"], false, 1)
        .await
        .is_ok_and(|v| !v.is_empty());
    out.push(if !(in_ou && in_groups) {
        Finding::fail(
            "canary",
            "RK-DOC-090",
            format!("the canary {sam} is not in scope"),
        )
        .fix("move it into a scoped OU and a scope group")
    } else if privileged {
        Finding::fail(
            "canary",
            "RK-DOC-090",
            format!("the canary {sam} is privileged"),
        )
        .fix("take it out of every protected group")
    } else {
        Finding::pass(
            "canary",
            format!("{sam} exists, is in scope and not privileged"),
        )
    });
}
