//! The checks beside the directory: the mail relay, the SMS gateway, the store, and other reset
//! authorities.
//!
//! Codes: RK-DOC-063 the portal's own TLS pair unusable or expired · 064 it expires within
//! `cert_warn_days` · RK-DOC-060 relay unreachable/refused · 061 SMS gateway unreachable · 062 no `[smtp]` ·
//! 070 store unreachable · 071 migrations pending · 072 store newer than this Rekey · 073 no
//! `[store]` · 080 another reset authority overlaps the scope · 081 `[entra]` hint.
//!
//! The SMS gateway check is a TCP connect to the host and port of `sms.base_url` within
//! `sms.timeout_ms` (default 5 s): no request is sent, so no credential is used and nothing is
//! billed; a wrong auth token shows only when a code is sent.

use std::time::Duration;

use rekey_core::store::StoreError;

use super::Finding;
use super::directory::Domain;
use crate::config::Config;

pub(super) async fn check(config: &Config, domain: Option<&Domain>, out: &mut Vec<Finding>) {
    portal_tls(config, out);
    smtp(config, out).await;
    sms(config, out).await;
    store(config, out).await;
    authorities(config, domain, out);
}

/// The portal's own certificate when `rekey serve` terminates TLS: the pair loads (key matches)
/// and how long it has left (RK-DOC-063 unusable or expired, 064 inside `cert_warn_days`).
fn portal_tls(config: &Config, out: &mut Vec<Finding>) {
    let Some(Ok(Some(files))) = config.server.as_ref().map(crate::config::ServerConfig::tls) else {
        return;
    };
    let target = files.cert.display().to_string();
    let fix = "install a valid certificate chain and its key in [server] tls_cert_file / \
               tls_key_file; rekey serve picks new files up without a restart";
    let loaded = crate::tls::Tls::load(&files).map_err(|e| e.to_string());
    let info = loaded.and_then(|tls| {
        let der = tls.certificate().ok_or("no certificate in the chain")?;
        rekey_directory::probe::cert_info(der.as_ref()).map_err(|e| e.to_string())
    });
    let finding = match info {
        Err(e) => Finding::fail("portal.tls", "RK-DOC-063", format!("unusable: {e}")).fix(fix),
        Ok(cert) => {
            let left = (cert.not_after - rekey_core::clock::unix(std::time::SystemTime::now()))
                .div_euclid(86_400);
            let what = format!("valid for {left} more day(s), subject {}", cert.subject);
            if left < 0 {
                Finding::fail("portal.tls", "RK-DOC-063", format!("expired: {what}")).fix(fix)
            } else if left < i64::from(config.doctor.cert_warn_days) {
                Finding::warn("portal.tls", "RK-DOC-064", what).fix(fix)
            } else {
                Finding::pass("portal.tls", what)
            }
        }
    };
    out.push(finding.on(target));
}

async fn smtp(config: &Config, out: &mut Vec<Finding>) {
    let Some(smtp) = &config.smtp else {
        out.push(
            Finding::warn(
                "smtp",
                "RK-DOC-062",
                "no [smtp]: codes and notices cannot be mailed",
            )
            .fix("configure [smtp] (rekey serve needs it)"),
        );
        return;
    };
    let relay = format!("{}:{}", smtp.host, smtp.effective_port());
    let mailer = match rekey_notify::SmtpMailer::new(smtp) {
        Ok(m) => m,
        Err(e) => {
            // Already a config failure; say it here too so the relay line is not missing.
            out.push(Finding::fail("smtp", "RK-DOC-060", format!("not checked: {e}")).on(relay));
            return;
        }
    };
    let tls = format!("{:?}", smtp.tls).to_ascii_lowercase();
    out.push(
        match mailer.probe().await {
            Ok(()) => Finding::pass(
                "smtp",
                format!("relay answered (tls = {tls}); no mail was sent"),
            ),
            Err(e) => Finding::fail(
                "smtp",
                "RK-DOC-060",
                format!("relay check failed (tls = {tls}): {e}"),
            )
            .fix(
                "check smtp.host/port/tls, the firewall, smtp.ca_file and the relay's credentials",
            ),
        }
        .on(relay),
    );
}

async fn sms(config: &Config, out: &mut Vec<Finding>) {
    let Some(sms) = config.sms.as_ref().filter(|s| s.enabled) else {
        return;
    };
    let target = sms.base_url.clone();
    let parsed = url::Url::parse(&sms.base_url).ok().and_then(|u| {
        let host = u
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some((host, u.port_or_known_default()?))
    });
    let Some((host, port)) = parsed else {
        out.push(
            Finding::fail(
                "sms",
                "RK-DOC-061",
                "sms.base_url is not an http(s) URL with a host",
            )
            .on(target),
        );
        return;
    };
    let timeout = Duration::from_millis(sms.timeout_ms.unwrap_or(5_000));
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    out.push(
        match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(_)) => Finding::pass(
                "sms",
                format!("gateway reachable ({host}:{port}, TCP; credentials not tried)"),
            ),
            Ok(Err(e)) => Finding::fail(
                "sms",
                "RK-DOC-061",
                format!("gateway unreachable: {host}:{port}: {e}"),
            )
            .fix("check sms.base_url, DNS and the outbound firewall"),
            Err(_) => Finding::fail(
                "sms",
                "RK-DOC-061",
                format!(
                    "gateway unreachable: {host}:{port}: no answer within {} ms",
                    timeout.as_millis()
                ),
            )
            .fix("check sms.base_url, DNS and the outbound firewall"),
        }
        .on(target),
    );
}

async fn store(config: &Config, out: &mut Vec<Finding>) {
    let Some(store) = &config.store else {
        out.push(
            Finding::warn("store", "RK-DOC-073", "no [store]")
                .fix("configure [store] (rekey serve needs it)"),
        );
        return;
    };
    // Never print the URL: a PostgreSQL URL may carry a password.
    let kind = if store.url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    out.push(match rekey_store::status(&store.url).await {
        Ok(st) if !st.unknown.is_empty() => Finding::fail(
            "store",
            "RK-DOC-072",
            format!(
                "the database has migrations this Rekey does not know: {:?}",
                st.unknown
            ),
        )
        .fix("run the Rekey version that migrated it (or newer)"),
        Ok(st) if !st.pending.is_empty() => {
            let pending: Vec<String> = st.pending.iter().map(|(v, d)| format!("{v} {d}")).collect();
            Finding::warn(
                "store",
                "RK-DOC-071",
                format!(
                    "{kind} reachable; {} migration(s) not applied",
                    pending.len()
                ),
            )
            .details(pending)
            .fix("`rekey serve` applies them at start (as a role allowed to run DDL)")
        }
        Ok(st) => Finding::pass(
            "store",
            format!(
                "{kind} reachable, {} migration(s) applied, none pending",
                st.applied.len()
            ),
        ),
        Err(e @ StoreError::Unavailable(_)) | Err(e) => Finding::fail(
            "store",
            "RK-DOC-070",
            format!("{kind} store unreachable: {e}"),
        )
        .fix("check store.url, that the database exists and this user may open it"),
    });
}

fn norm(dn: &str) -> String {
    dn.split(',')
        .map(|r| r.trim().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

/// One OU contains the other (or they are the same).
fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (norm(a), norm(b));
    a == b || a.ends_with(&format!(",{b}")) || b.ends_with(&format!(",{a}"))
}

fn authorities(config: &Config, domain: Option<&Domain>, out: &mut Vec<Finding>) {
    let scoped: Vec<String> = match domain {
        Some(d) => d.scoped_ous.clone(),
        None => config.scope.allow_ous.clone(),
    };
    for other in &config.doctor.other_reset_authorities {
        let shared: Vec<String> = other
            .ous
            .iter()
            .filter(|o| scoped.iter().any(|s| overlaps(o, s)))
            .cloned()
            .collect();
        let f = if shared.is_empty() {
            Finding::pass("authorities", "no overlap with Rekey's scope")
        } else if let Some(boundary) = &other.boundary {
            Finding::pass(
                "authorities",
                format!("overlap known, boundary: {boundary}"),
            )
            .details(shared)
        } else {
            Finding::warn(
                "authorities",
                "RK-DOC-080",
                "two reset authorities for the same accounts: policy and audit are split",
            )
            .details(shared)
            .fix(
                "narrow one of them so the OUs do not overlap, or state who uses which and where \
                 its audit goes in doctor.other_reset_authorities.boundary",
            )
        };
        out.push(f.on(other.name.clone()));
    }
    if config.entra().is_some()
        && !config
            .doctor
            .other_reset_authorities
            .iter()
            .any(|o| o.name.to_ascii_lowercase().contains("entra"))
    {
        out.push(
            Finding::pass(
                "authorities",
                "[entra] is on: Rekey writes cloud-only passwords and lets sync carry synced ones",
            )
            .detail(
                "if Entra SSPR with password writeback is also on in this tenant, declare it in \
                 doctor.other_reset_authorities (its OUs, and the boundary)",
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ou_overlap() {
        assert!(super::overlaps("OU=Staff,DC=x", "ou=staff, dc=x"));
        assert!(super::overlaps("OU=A,OU=Staff,DC=x", "OU=Staff,DC=x"));
        assert!(super::overlaps("DC=x", "OU=Staff,DC=x"));
        assert!(!super::overlaps("OU=Staff2,DC=x", "OU=Staff,DC=x"));
    }
}
