//! The directory checks: each DC (TLS certificate, bind, clock), the PDC emulator, the service
//! account's rights on every scoped OU and the domain head, accounts that the delegation cannot
//! reach (adminCount, blocked inheritance), privileged accounts in scope, password policies and
//! the canary account.
//!
//! Codes: RK-DOC-010 DC unreachable · 011 certificate untrusted/expired · 012 certificate
//! expires soon · 013 bind refused · 014 PDC emulator not configured · 015/016 clock skew
//! warn/fail · 020 rights missing on an OU of scope.allow_ous · 021 rights missing on an OU where
//! scope.groups members live · 022 Unexpire Password missing · 023 rights not readable ·
//! 030 adminCount=1 · 031 protected DACL · 032 scan partial · 040 privileged in scope · 050 policy unreadable ·
//! 051 PSO attributes unreadable · 090 canary.

use std::collections::BTreeMap;

use rekey_directory::acl::{
    self, AdGuid, CHANGE_PASSWORD, Decision, LOCKOUT_TIME, PWD_LAST_SET, RESET_PASSWORD, Right,
    Target, UNEXPIRE_PASSWORD, USER_CLASS,
};
use rekey_directory::probe::{self, Entry, ProbeError, Session, parent_dn, rdn_value};

use super::accounts::{canary, privileged, protected_groups, unreachable_users};
use super::policy::policy;
use super::{Finding, Status, cert_status, date, skew_status};
use crate::config::Config;

/// How many accounts a finding lists before "and N more".
pub(super) const LIST_CAP: usize = 10;
/// Users read per OU for the adminCount / protected-DACL scan.
pub(super) const USER_SCAN_LIMIT: i32 = 5_000;

/// What the directory checks learnt that later checks use.
pub(super) struct Domain {
    /// The OUs (containers) in scope, lower-cased comparison left to the caller.
    pub scoped_ous: Vec<String>,
}

/// Where the users in scope live and why.
pub(super) struct ScopedOu {
    pub(super) dn: String,
    /// From `scope.allow_ous` (a missing right fails) rather than found from group members
    /// (a missing right warns: only those members are affected).
    explicit: bool,
    /// Users in scope found there (for derived OUs).
    members: usize,
}

pub(super) async fn check(config: &Config, now: i64, out: &mut Vec<Finding>) -> Option<Domain> {
    let dir = &config.directory;
    let mut sessions: Vec<(Session, probe::RootDse)> = Vec::new();
    for url in &dir.urls {
        let plaintext = url.to_ascii_lowercase().starts_with("ldap:");
        if plaintext {
            out.push(
                Finding::warn(
                    "dc.certificate",
                    "RK-DOC-011",
                    "plaintext LDAP: no certificate, passwords cross the network in clear text",
                )
                .on(url)
                .fix("use ldaps:// (lab only: directory.allow_plaintext)"),
            );
        }
        let cert = if plaintext {
            None
        } else {
            Some(probe::peer_certificate(dir, url).await)
        };
        match cert {
            None => {}
            Some(cert) => match cert {
            Ok(cert) => {
                let left = (cert.not_after - now).div_euclid(86_400);
                let warn_days = config.doctor.cert_warn_days;
                let line = format!(
                    "certificate valid until {} ({left} days left), subject {}, issuer {}",
                    date(cert.not_after),
                    cert.subject,
                    cert.issuer
                );
                out.push(match cert_status(cert.not_after, now, warn_days) {
                    Status::Pass => Finding::pass("dc.certificate", line),
                    Status::Warn => Finding::warn("dc.certificate", "RK-DOC-012", line).fix(format!(
                        "renew the DC's LDAPS certificate (doctor.cert_warn_days = {warn_days})"
                    )),
                    Status::Fail => Finding::fail("dc.certificate", "RK-DOC-011", line)
                        .fix("renew the DC's LDAPS certificate now: clients refuse it"),
                }
                .on(url));
            }
            Err(ProbeError::Untrusted(why)) => out.push(
                Finding::fail(
                    "dc.certificate",
                    "RK-DOC-011",
                    format!("the DC's certificate is not trusted: {why}"),
                )
                .on(url)
                .fix(
                    "set directory.ca_file to the PEM of the CA that issued the DC's certificate, \
                     and make sure the certificate names this host and has not expired",
                ),
            ),
            Err(ProbeError::Config(why)) => out.push(
                Finding::fail("dc.certificate", "RK-DOC-011", why)
                    .on(url)
                    .fix("correct directory.ca_file / directory.urls"),
            ),
            Err(e) => out.push(
                Finding::fail(
                    "dc.reachable",
                    "RK-DOC-010",
                    format!("no TLS connection: {e}"),
                )
                .on(url)
                .fix("check the URL, DNS, the firewall (TCP 636) and that the DC runs"),
            ),
        },
        }
        match Session::open(dir, url).await {
            Ok(mut s) => {
                out.push(Finding::pass("dc.bind", format!("bound as {}", dir.bind_dn)).on(url));
                match s.root_dse().await {
                    Ok(root) => {
                        clock(config, url, root.current_time, super::unix_now(), out);
                        sessions.push((s, root));
                    }
                    Err(e) => out.push(
                        Finding::fail("dc.bind", "RK-DOC-010", format!("rootDSE unreadable: {e}"))
                            .on(url),
                    ),
                }
            }
            Err(ProbeError::Bind(why)) => out.push(
                Finding::fail(
                    "dc.bind",
                    "RK-DOC-013",
                    format!("the service account's bind was refused: {why}"),
                )
                .on(url)
                .fix(
                    "check directory.bind_dn and the password in directory.bind_password_file; \
                     the account must be enabled, not locked and its password not expired",
                ),
            ),
            Err(e @ (ProbeError::Untrusted(_) | ProbeError::Config(_))) => {
                out.push(Finding::fail("dc.bind", "RK-DOC-013", format!("not bound: {e}")).on(url))
            }
            Err(e) => out.push(
                Finding::fail(
                    "dc.reachable",
                    "RK-DOC-010",
                    format!("no LDAP connection: {e}"),
                )
                .on(url)
                .fix("check the URL, DNS, the firewall (TCP 636) and that the DC runs"),
            ),
        }
    }
    if sessions.is_empty() {
        out.push(
            Finding::fail(
                "directory",
                "RK-DOC-010",
                "no DC could be bound: rights, scope, policy and canary were not checked",
            )
            .fix("fix the DC findings above first"),
        );
        return None;
    }
    let base = match &dir.base_dn {
        Some(b) => b.clone(),
        None => sessions
            .iter()
            .find_map(|(_, r)| r.default_naming_context.clone())
            .unwrap_or_default(),
    };
    let schema_nc = sessions
        .iter()
        .find_map(|(_, r)| r.schema_naming_context.clone())
        .unwrap_or_default();
    let head = sessions[0].0.domain_head(&base).await;
    let head = match head {
        Ok(Some(h)) => h,
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                _ => format!("{base} not found"),
            };
            out.push(
                Finding::fail(
                    "directory",
                    "RK-DOC-050",
                    format!("the domain head is unreadable: {why}"),
                )
                .fix("check directory.base_dn"),
            );
            return None;
        }
    };
    // Prefer the PDC emulator's session for the domain-wide reads.
    let pdc = head.first("fSMORoleOwner").map(str::to_owned);
    let pdc_idx = pdc.as_ref().and_then(|p| {
        sessions.iter().position(|(_, r)| {
            r.ds_service_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(p))
        })
    });
    pdc_finding(
        pdc.as_deref(),
        pdc_idx.map(|i| sessions[i].0.url.clone()),
        out,
    );
    let idx = pdc_idx.unwrap_or(0);
    let mut others: Vec<Session> = Vec::new();
    let mut session = None;
    for (i, (s, _)) in sessions.into_iter().enumerate() {
        if i == idx {
            session = Some(s);
        } else {
            others.push(s);
        }
    }
    for s in others {
        s.close().await;
    }
    let mut s = session?;
    let domain = domain_checks(config, &mut s, &base, &schema_nc, &head, out).await;
    s.close().await;
    Some(domain)
}

fn clock(config: &Config, url: &str, dc_time: Option<i64>, now: i64, out: &mut Vec<Finding>) {
    let Some(dc) = dc_time else {
        out.push(
            Finding::warn(
                "dc.clock",
                "RK-DOC-015",
                "the DC did not say its currentTime",
            )
            .on(url),
        );
        return;
    };
    let skew = dc - now;
    let warn = config.doctor.clock_skew_warn_secs;
    let line =
        format!("clock differs by {skew} s (warn above {warn} s, Kerberos fails above 300 s)");
    out.push(
        match skew_status(skew, warn) {
            Status::Pass => Finding::pass("dc.clock", line),
            Status::Warn => Finding::warn("dc.clock", "RK-DOC-015", line)
                .fix("synchronise this host and the DCs with NTP (the PDC emulator is the domain's source)"),
            Status::Fail => Finding::fail("dc.clock", "RK-DOC-016", line)
                .fix("synchronise this host and the DCs with NTP now: Kerberos refuses this skew"),
        }
        .on(url),
    );
}

fn pdc_finding(pdc: Option<&str>, url: Option<String>, out: &mut Vec<Finding>) {
    let server = pdc.map(|p| rdn_value(parent_dn(p)).to_owned());
    out.push(match (url, server) {
        (Some(url), Some(server)) => Finding::pass(
            "pdc",
            format!("PDC emulator {server} is {url}: writes go there first"),
        ),
        (None, Some(server)) => Finding::warn(
            "pdc",
            "RK-DOC-014",
            format!(
                "the PDC emulator ({server}) is not among the reachable directory.urls: writes \
                 won't go to the PDC"
            ),
        )
        .detail(format!("fSMORoleOwner: {}", pdc.unwrap_or_default()))
        .fix(format!(
            "add the PDC emulator {server} to directory.urls (lockout and password changes \
             are authoritative there)"
        )),
        (_, None) => Finding::warn("pdc", "RK-DOC-014", "the domain head names no PDC emulator"),
    });
}

async fn domain_checks(
    config: &Config,
    s: &mut Session,
    base: &str,
    schema_nc: &str,
    head: &Entry,
    out: &mut Vec<Finding>,
) -> Domain {
    let ous = scoped_ous(config, s, base, out).await;
    rights(config, s, base, schema_nc, &ous, out).await;
    let scan: Vec<(String, Vec<String>)> = ous
        .iter()
        .map(|o| (o.dn.clone(), config.scope.groups.clone()))
        .collect();
    let administrators = unreachable_users(config, s, &scan, out).await;
    let protected = protected_groups(config, s, base, head).await;
    privileged(config, s, &scan, &protected, administrators, out).await;
    policy(s, base, head, out).await;
    canary(config, s, base, &ous, &protected, out).await;
    Domain {
        scoped_ous: ous.into_iter().map(|o| o.dn).collect(),
    }
}

pub(super) fn denied(config: &Config, dn: &str) -> bool {
    let dn = dn.to_ascii_lowercase();
    config.scope.deny_ous.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        dn == d || dn.ends_with(&format!(",{d}"))
    })
}

/// `scope.allow_ous`, or where the users of `scope.groups` (all users when empty) live.
async fn scoped_ous(
    config: &Config,
    s: &mut Session,
    base: &str,
    out: &mut Vec<Finding>,
) -> Vec<ScopedOu> {
    if !config.scope.allow_ous.is_empty() {
        return config
            .scope
            .allow_ous
            .iter()
            .map(|dn| ScopedOu {
                dn: dn.clone(),
                explicit: true,
                members: 0,
            })
            .collect();
    }
    let mut by_ou: BTreeMap<String, (String, usize)> = BTreeMap::new();
    match s
        .users(base, &config.scope.groups, &["1.1"], false, USER_SCAN_LIMIT)
        .await
    {
        Ok(users) => {
            for u in users.iter().filter(|u| !denied(config, &u.dn)) {
                let ou = parent_dn(&u.dn);
                by_ou
                    .entry(ou.to_ascii_lowercase())
                    .or_insert_with(|| (ou.to_owned(), 0))
                    .1 += 1;
            }
        }
        Err(e) => out.push(
            Finding::fail(
                "scope",
                "RK-DOC-023",
                format!("the users in scope could not be listed: {e}"),
            )
            .fix("check scope.groups and the service account's read access"),
        ),
    }
    by_ou
        .into_values()
        .map(|(dn, members)| ScopedOu {
            dn,
            explicit: false,
            members,
        })
        .collect()
}

const USER_RIGHTS: [(&str, &str); 4] = [
    ("Reset Password", "00299570-246d-11d0-a768-00aa006e0529"),
    ("Change Password", "ab721a53-1e2f-11d0-9819-00aa0040529b"),
    ("Write lockoutTime", "28630ebf-41d5-11d1-a9c1-0000f80367c1"),
    ("Write pwdLastSet", "bf967a0a-0de6-11d0-a285-00aa003049e2"),
];

async fn rights(
    config: &Config,
    s: &mut Session,
    base: &str,
    schema_nc: &str,
    ous: &[ScopedOu],
    out: &mut Vec<Finding>,
) {
    let account = &config.directory.bind_dn;
    let token = match s.token(account).await {
        Ok(t) => t,
        Err(e) => {
            out.push(
                Finding::fail(
                    "rights",
                    "RK-DOC-023",
                    format!("the service account's groups are unreadable: {e}"),
                )
                .on(account.clone()),
            );
            return;
        }
    };
    // Property sets from the schema (Windows puts pwdLastSet in User-Account-Restrictions).
    let set_of = |r: Result<Option<AdGuid>, ProbeError>| r.ok().flatten();
    let lockout_set = set_of(s.property_set(schema_nc, "lockoutTime").await);
    let pwd_set =
        set_of(s.property_set(schema_nc, "pwdLastSet").await).or(Some(acl::ACCOUNT_RESTRICTIONS));
    let wanted = [
        Right::Control(RESET_PASSWORD),
        Right::Control(CHANGE_PASSWORD),
        Right::WriteProperty {
            attribute: LOCKOUT_TIME,
            property_set: lockout_set,
        },
        Right::WriteProperty {
            attribute: PWD_LAST_SET,
            property_set: pwd_set,
        },
    ];
    if ous.is_empty() {
        out.push(Finding::warn(
            "rights",
            "RK-DOC-021",
            "no user is in scope: no OU to check",
        ));
    }
    for ou in ous {
        let sd = match s.security_descriptor(&ou.dn).await {
            Ok(sd) => sd,
            Err(e) => {
                out.push(
                    Finding::fail("rights", "RK-DOC-023", format!("the OU's security descriptor is unreadable: {e}"))
                        .on(ou.dn.clone())
                        .fix("the service account needs Read Permissions on the OU (granted to Authenticated Users by default)"),
                );
                continue;
            }
        };
        let mut missing = Vec::new();
        let mut names_missing = Vec::new();
        for ((name, guid), right) in USER_RIGHTS.iter().zip(wanted) {
            match acl::evaluate(&sd, &token, Target::Children(USER_CLASS), right) {
                Decision::Allowed => continue,
                Decision::Denied(sid) => missing.push(format!("{name} ({guid}) denied to {sid}")),
                Decision::NotGranted => missing.push(format!("{name} ({guid})")),
            }
            names_missing.push(*name);
        }
        let names: Vec<&str> = USER_RIGHTS.iter().map(|(n, _)| *n).collect();
        out.push(if missing.is_empty() {
            Finding::pass(
                "rights",
                format!("{} on user objects (inherited)", names.join(", ")),
            )
            .on(ou.dn.clone())
        } else {
            let fix = format!(
                "delegate to {account} on {}: {}, applied to descendant user objects (Delegate \
                 Control in Active Directory Users and Computers, or dsacls); remove any deny \
                 entry named above",
                ou.dn,
                names_missing.join(", ")
            );
            let summary = format!("missing: {}", missing.join(", "));
            if ou.explicit {
                Finding::fail("rights", "RK-DOC-020", summary)
            } else {
                Finding::warn("rights", "RK-DOC-021", summary).detail(format!(
                    "{} user(s) in scope live here: their resets and unlocks will fail",
                    ou.members
                ))
            }
            .on(ou.dn.clone())
            .fix(fix)
        });
    }
    match s.security_descriptor(base).await {
        Ok(sd) => match acl::evaluate(&sd, &token, Target::Object, Right::Control(UNEXPIRE_PASSWORD)) {
            Decision::Allowed => out.push(
                Finding::pass("rights", "Unexpire Password (ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501) on the domain head")
                    .on(base.to_owned()),
            ),
            _ => out.push(
                Finding::fail(
                    "rights",
                    "RK-DOC-022",
                    "missing: Unexpire Password (ccc2dc7d-a6ad-4a7a-8846-c04e3cc53501) on the domain head",
                )
                .on(base.to_owned())
                .detail("on Windows every password Rekey writes would be expired at once (pwdLastSet = 0)")
                .fix(format!("grant {account} Unexpire Password on {base} (this object only)")),
            ),
        },
        Err(e) => out.push(
            Finding::fail("rights", "RK-DOC-023", format!("the domain head's security descriptor is unreadable: {e}"))
                .on(base.to_owned()),
        ),
    }
}
