//! Feature `ad`: the on-prem side over LDAPS against a real DC — [`PasswordOracle`] by a simple
//! bind as the user, [`ChangeSource`] by reading `pwdLastSet` as a service account. TLS trusts
//! only the configured CA file; there is no "accept any certificate" switch.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::sync::{BoxFuture, ChangeSource, OnPremUser, PasswordOracle};

/// Where the DC is and how the double reads from it.
#[derive(Clone, Debug)]
pub struct AdConfig {
    /// `ldaps://dc.example.com:636`.
    pub url: String,
    /// PEM of the CA that issued the DC's certificate.
    pub ca_file: PathBuf,
    /// Service account DN for searches and `pwdLastSet` reads.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Search base for sAMAccountName lookups.
    pub base_dn: String,
}

/// The LDAPS on-prem side.
pub struct LdapOnPrem {
    config: AdConfig,
    settings: LdapConnSettings,
}

impl LdapOnPrem {
    /// Builds the TLS configuration from the CA file.
    pub fn new(config: AdConfig) -> Result<Self, String> {
        let path = &config.ca_file;
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let settings = LdapConnSettings::new()
            .set_conn_timeout(Duration::from_secs(5))
            .set_config(Arc::new(tls));
        Ok(Self { config, settings })
    }

    async fn connect(&self) -> Result<Ldap, String> {
        let (conn, ldap) = LdapConnAsync::with_settings(self.settings.clone(), &self.config.url)
            .await
            .map_err(|e| format!("connect {}: {e}", self.config.url))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn service(&self) -> Result<Ldap, String> {
        let mut ldap = self.connect().await?;
        ldap.simple_bind(&self.config.bind_dn, &self.config.bind_password)
            .await
            .and_then(ldap3::LdapResult::success)
            .map_err(|e| format!("service bind: {e}"))?;
        Ok(ldap)
    }

    /// The user's DN and `pwdLastSet`.
    async fn lookup(&self, user: &OnPremUser) -> Result<Option<(String, i64)>, String> {
        let mut ldap = self.service().await?;
        let (base, scope, filter) = match (&user.distinguished_name, &user.sam_account_name) {
            (Some(dn), _) => (dn.clone(), Scope::Base, "(objectClass=user)".to_owned()),
            (None, Some(sam)) => (
                self.config.base_dn.clone(),
                Scope::Subtree,
                format!(
                    "(&(objectClass=user)(sAMAccountName={}))",
                    ldap3::ldap_escape(sam)
                ),
            ),
            (None, None) => return Ok(None),
        };
        let (entries, _) = ldap
            .search(&base, scope, &filter, vec!["pwdLastSet"])
            .await
            .and_then(ldap3::SearchResult::success)
            .map_err(|e| format!("search: {e}"))?;
        let _ = ldap.unbind().await;
        let [entry] = entries.as_slice() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(entry.clone());
        let pwd_last_set = entry
            .attrs
            .get("pwdLastSet")
            .and_then(|v| v.first())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(Some((entry.dn, pwd_last_set)))
    }
}

/// FILETIME (100 ns since 1601) → `SystemTime`; 0 and -1 mean "no time".
fn filetime(ft: i64) -> Option<SystemTime> {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let ft = u64::try_from(ft).ok().filter(|f| *f > 0)?;
    let secs = (ft / 10_000_000).checked_sub(EPOCH_DIFF_SECS)?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos((ft % 10_000_000) * 100))
}

impl PasswordOracle for LdapOnPrem {
    fn check<'a>(
        &'a self,
        user: &'a OnPremUser,
        password: &'a str,
    ) -> BoxFuture<'a, Result<bool, String>> {
        Box::pin(async move {
            // An empty password would be an unauthenticated bind, which "succeeds".
            if password.is_empty() {
                return Ok(false);
            }
            let Some((dn, _)) = self.lookup(user).await? else {
                return Ok(false);
            };
            let mut ldap = self.connect().await?;
            let res = ldap
                .simple_bind(&dn, password)
                .await
                .map_err(|e| format!("bind: {e}"))?;
            let _ = ldap.unbind().await;
            match res.rc {
                0 => Ok(true),
                49 => Ok(false),
                rc => Err(format!("bind: rc {rc}: {}", res.text)),
            }
        })
    }
}

impl ChangeSource for LdapOnPrem {
    fn last_change<'a>(
        &'a self,
        user: &'a OnPremUser,
    ) -> BoxFuture<'a, Result<Option<SystemTime>, String>> {
        Box::pin(async move { Ok(self.lookup(user).await?.and_then(|(_, ft)| filetime(ft))) })
    }
}

#[cfg(test)]
mod tests {
    use super::filetime;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn filetime_converts() {
        assert_eq!(filetime(0), None);
        assert_eq!(filetime(-1), None);
        assert_eq!(
            filetime(116_444_736_000_000_000 + 10_000_000),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
    }
}
