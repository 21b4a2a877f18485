//! What the writeback canary asks of each DC on its own (no failover: the point is to see every
//! DC): its replica's `pwdLastSet` of an account, and a simple bind with the new password.

use std::time::Instant;

use ldap3::{Scope, SearchEntry};
use rekey_core::{Diagnostic, DirectoryError, Password};

use crate::ad::ActiveDirectory;
use crate::entry::{self, first_i64};

impl ActiveDirectory {
    /// The configured DC URLs, in config order (the index is the `idx` of the `*_at` calls).
    #[must_use]
    pub fn dc_urls(&self) -> Vec<String> {
        self.pool.servers.iter().map(|s| s.url.clone()).collect()
    }

    /// The configured URL the writes of [`Landed::server`](rekey_core::Landed) name, as an
    /// index into [`dc_urls`](Self::dc_urls).
    #[must_use]
    pub fn dc_index(&self, url: &str) -> Option<usize> {
        self.pool.servers.iter().position(|s| s.url == url)
    }

    /// Whether any DC answers (a rootDSE read, with failover): the portal's readiness.
    ///
    /// # Errors
    /// `DirectoryError::Unavailable` when none does.
    pub async fn ping(&self) -> Result<(), DirectoryError> {
        self.read("", Scope::Base, "(objectClass=*)", &["currentTime"])
            .await
            .map(drop)
    }

    /// One base search on DC `idx` alone (pooled connection; dropped if it failed).
    async fn base_search_at(
        &self,
        idx: usize,
        dn: &str,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let url = self.pool.servers[idx].url.as_str();
        let down = |e: &dyn std::fmt::Display| {
            DirectoryError::Unavailable(Diagnostic::new(Some(url), e.to_string()))
        };
        let mut lease = self.pool.lease(idx).await.map_err(|e| down(&e))?;
        let started = Instant::now();
        let result = lease
            .ldap
            .with_timeout(self.pool.op_timeout)
            .search(dn, Scope::Base, filter, attrs)
            .await;
        crate::telemetry::operation(url, "search", started.elapsed(), result.is_ok());
        match result {
            Ok(ldap3::SearchResult(found, res)) if res.rc == 0 || res.rc == 32 => {
                Ok(entry::entries(found))
            }
            Ok(ldap3::SearchResult(_, res)) => Err(DirectoryError::Protocol(Diagnostic::new(
                Some(url),
                res.to_string(),
            ))),
            Err(e) => {
                self.pool.discard(&lease).await;
                Err(down(&e))
            }
        }
    }

    /// Whether DC `idx` itself answers a rootDSE read (its `rekey_dc_up` is updated).
    ///
    /// # Errors
    /// `DirectoryError::Unavailable` when it does not.
    pub async fn ping_at(&self, idx: usize) -> Result<(), DirectoryError> {
        self.base_search_at(idx, "", "(objectClass=*)", vec!["currentTime"])
            .await
            .map(drop)
    }

    /// `pwdLastSet` of `dn` in DC `idx`'s own replica, read as the service account.
    ///
    /// # Errors
    /// `DirectoryError::Unavailable` when that DC does not answer.
    pub async fn pwd_last_set_at(
        &self,
        idx: usize,
        dn: &str,
    ) -> Result<Option<i64>, DirectoryError> {
        let found = self
            .base_search_at(idx, dn, "(objectClass=user)", vec!["pwdLastSet"])
            .await?;
        Ok(found.first().and_then(|e| first_i64(e, "pwdLastSet")))
    }

    /// A simple bind as `dn` with `password` on DC `idx` alone, over a fresh connection:
    /// `Ok(true)` bound, `Ok(false)` refused (49: wrong password, or a must-change/expired
    /// account). Only call it once the password is known to be on that DC: a wrong password
    /// counts in the account's badPwdCount.
    ///
    /// # Errors
    /// `DirectoryError::Unavailable` when the DC does not answer, `Protocol` for another result.
    pub async fn bind_at(
        &self,
        idx: usize,
        dn: &str,
        password: &Password,
    ) -> Result<bool, DirectoryError> {
        self.bind_on(idx, dn, password).await.map_err(|e| match e {
            BindError::NotConnected(d) => DirectoryError::Unavailable(d),
            BindError::Failed(e) => e,
        })
    }

    /// The bind of [`bind_at`](Self::bind_at) and `authenticate`: `NotConnected` means the
    /// password never left this process (another DC may be tried); after that, never.
    pub(crate) async fn bind_on(
        &self,
        idx: usize,
        dn: &str,
        password: &Password,
    ) -> Result<bool, BindError> {
        if password.is_blank() {
            return Ok(false);
        }
        let url = self.pool.servers[idx].url.as_str();
        let mut ldap = self
            .pool
            .connect_unpooled(idx)
            .await
            .map_err(|e| BindError::NotConnected(Diagnostic::new(Some(url), e.to_string())))?;
        let started = Instant::now();
        let res = ldap
            .with_timeout(self.pool.op_timeout)
            .simple_bind(dn, password.expose())
            .await;
        crate::telemetry::operation(url, "bind", started.elapsed(), res.is_ok());
        let _ = ldap.unbind().await;
        match res {
            Ok(r) if r.rc == 0 => Ok(true),
            Ok(r) if r.rc == 49 => Ok(false),
            Ok(r) => Err(BindError::Failed(DirectoryError::Protocol(
                Diagnostic::new(Some(url), r.to_string()),
            ))),
            Err(e) => Err(BindError::Failed(DirectoryError::Unavailable(
                Diagnostic::new(Some(url), e.to_string()),
            ))),
        }
    }
}

/// Why a bind on one DC gave no answer.
pub(crate) enum BindError {
    /// No connection: nothing was sent.
    NotConnected(Diagnostic),
    /// The bind may have reached the DC.
    Failed(DirectoryError),
}
