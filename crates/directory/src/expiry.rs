//! Passwords about to expire, for the reminder job: every enabled user whose password can
//! expire, with `msDS-UserPasswordExpiryTimeComputed` (the DC's own computation: domain policy
//! or the PSO that applies, so fine-grained policies are honoured). The attribute is constructed
//! and cannot be filtered on, so the DC returns every candidate in pages and the window is
//! applied here.

use std::time::{Duration, SystemTime};

use ldap3::adapters::{EntriesOnly, PagedResults};
use ldap3::{Scope, SearchEntry};
use rekey_core::account::FileTime;
use rekey_core::{Diagnostic, DirectoryError, Guid};

use crate::ad::ActiveDirectory;
use crate::entry::{bin_values, first_i64, first_str};

/// Entries per page (AD's MaxPageSize is 1000 by default).
const PAGE: i32 = 500;

/// Enabled users, not "password never expires", not "must change now".
const FILTER: &str = "(&(objectCategory=person)(objectClass=user)\
    (!(userAccountControl:1.2.840.113556.1.4.803:=2))\
    (!(userAccountControl:1.2.840.113556.1.4.803:=65536))\
    (!(pwdLastSet=0)))";

/// A password that expires inside the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub dn: String,
    pub guid: Guid,
    pub sam_account_name: String,
    /// When it expires.
    pub expires_at: SystemTime,
}

impl ActiveDirectory {
    /// Users whose password expires after `now` and no later than `now + within`.
    ///
    /// # Errors
    /// `DirectoryError::Unavailable` when no DC answers, `Protocol` for a refused search.
    pub async fn expiring_passwords(
        &self,
        now: SystemTime,
        within: Duration,
    ) -> Result<Vec<Expiring>, DirectoryError> {
        let until = now + within;
        let mut last = None;
        for idx in self.pool.order() {
            let url = self.pool.servers[idx].url.clone();
            let mut ldap = match self.pool.connect_bound(idx).await {
                Ok(l) => l,
                Err(e) => {
                    last = Some(Diagnostic::new(Some(&url), e.to_string()));
                    continue;
                }
            };
            let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(PAGE)),
            ];
            let attrs = vec![
                "objectGUID",
                "sAMAccountName",
                "msDS-UserPasswordExpiryTimeComputed",
            ];
            let mut stream = match ldap
                .streaming_search_with(adapters, self.base_dn(), Scope::Subtree, FILTER, attrs)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    last = Some(Diagnostic::new(Some(&url), e.to_string()));
                    continue;
                }
            };
            let mut out = Vec::new();
            loop {
                match stream.next().await {
                    Ok(Some(raw)) => {
                        let e = SearchEntry::construct(raw);
                        if let Some(x) = expiring(&e, now, until) {
                            out.push(x);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(DirectoryError::Unavailable(Diagnostic::new(
                            Some(&url),
                            e.to_string(),
                        )));
                    }
                }
            }
            let res = stream.finish().await;
            let _ = ldap.unbind().await;
            return match res.rc {
                0 => Ok(out),
                _ => Err(DirectoryError::Protocol(Diagnostic::new(
                    Some(&url),
                    res.to_string(),
                ))),
            };
        }
        Err(DirectoryError::Unavailable(last.unwrap_or_else(|| {
            Diagnostic::new(None, "no DC configured")
        })))
    }
}

fn expiring(e: &SearchEntry, now: SystemTime, until: SystemTime) -> Option<Expiring> {
    let at = FileTime(first_i64(e, "msDS-UserPasswordExpiryTimeComputed")?).to_system_time()?;
    if at <= now || at > until {
        return None;
    }
    Some(Expiring {
        dn: e.dn.clone(),
        guid: Guid::from_bytes(bin_values(e, "objectGUID").first()?)?,
        sam_account_name: first_str(e, "sAMAccountName")?.to_owned(),
        expires_at: at,
    })
}
