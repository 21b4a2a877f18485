//! Feature `ad`: the on-prem side over LDAPS against a real DC — [`PasswordOracle`] by a simple
//! bind as the user, [`ChangeSource`] by reading `pwdLastSet` as a service account. TLS trusts
//! only the configured CA file; there is no "accept any certificate" switch, and plain `ldap://`
//! is refused (the oracle sends passwords).
//!
//! Like password hash sync, the oracle remembers a digest of each password it saw work for an
//! account (salted per process, keyed by DN and the `pwdLastSet` it worked under):
//! - while `pwdLastSet` stays the same it answers from that digest, so a wrong password at the
//!   double's ROPC endpoint does not become a wrong bind on the DC (no `badPwdCount`, no AD
//!   lockout);
//! - a password it saw work under an *earlier* `pwdLastSet` is refused without a bind. Samba
//!   accepts the previous password on LDAP simple binds for 60 minutes after a change or reset
//!   (`old password allowed period`, observed on the dev DC; Kerberos refuses it), so a bind
//!   alone would let the old password into the cloud after the sync. This only works for an old
//!   password the oracle saw work: sign in once before the change (the e2e harness does this
//!   when it registers a synced user).
//!
//! Before a password has been seen to work, or after the on-prem password changed, it binds.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

use crate::sync::{BoxFuture, ChangeSource, OnPremUser, PasswordOracle};

/// How long one connect, bind or search may take before the DC counts as unreachable.
const OP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many verified passwords per account the oracle remembers.
const HISTORY: usize = 8;
/// What a lookup reads.
const ATTRS: &[&str] = &[
    "pwdLastSet",
    "objectGUID",
    "mS-DS-ConsistencyGuid",
    "sAMAccountName",
    "userPrincipalName",
];

/// Where the DC is and how the double reads from it.
#[derive(Clone, Debug)]
pub struct AdConfig {
    /// `ldaps://dc.example.com:636` (the host must be a name or address in the DC's certificate).
    pub url: String,
    /// PEM of the CA that issued the DC's certificate (the only trust anchor).
    pub ca_file: PathBuf,
    /// Service account DN for searches and `pwdLastSet` reads.
    pub bind_dn: String,
    /// Its password.
    pub bind_password: String,
    /// Search base for sAMAccountName lookups.
    pub base_dn: String,
}

/// An on-prem account as the service account reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdAccount {
    /// Its DN.
    pub dn: String,
    /// sAMAccountName.
    pub sam_account_name: Option<String>,
    /// userPrincipalName (AD's; may be absent).
    pub user_principal_name: Option<String>,
    /// The 16 raw bytes of objectGUID.
    pub object_guid: Vec<u8>,
    /// The raw bytes of mS-DS-ConsistencyGuid, if set.
    pub consistency_guid: Option<Vec<u8>>,
    /// `pwdLastSet` as stored (FILETIME; 0 = must change).
    pub pwd_last_set: i64,
}

impl AdAccount {
    /// The immutableId Entra Connect would give it: base64 of mS-DS-ConsistencyGuid if set,
    /// else of objectGUID (reference §A4).
    pub fn immutable_id(&self) -> String {
        crate::immutable_id(
            self.consistency_guid
                .as_deref()
                .unwrap_or(&self.object_guid),
        )
    }
    /// `pwdLastSet` as a time (`None` for 0 / must change).
    pub fn password_last_set(&self) -> Option<SystemTime> {
        filetime(self.pwd_last_set)
    }
}

/// Lowercased DN → the passwords that bound: (`pwdLastSet` then, salted digest).
type Verified = HashMap<String, Vec<(i64, [u8; 32])>>;

/// The LDAPS on-prem side.
pub struct LdapOnPrem {
    config: AdConfig,
    settings: LdapConnSettings,
    /// One service connection, reused (ldap3 multiplexes operations on a handle's clones).
    service: tokio::sync::Mutex<Option<Ldap>>,
    /// Lowercased DN → (`pwdLastSet`, salted digest of the password that bound under it),
    /// newest last.
    verified: std::sync::Mutex<Verified>,
    salt: [u8; 16],
}

impl LdapOnPrem {
    /// Builds the TLS configuration from the CA file. Connects lazily.
    pub fn new(config: AdConfig) -> Result<Self, String> {
        if !config.url.to_ascii_lowercase().starts_with("ldaps://") {
            return Err(format!(
                "{}: only ldaps:// is supported (the oracle sends passwords)",
                config.url
            ));
        }
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
            .set_conn_timeout(OP_TIMEOUT)
            .set_config(Arc::new(tls));
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| format!("OS RNG: {e}"))?;
        Ok(Self {
            config,
            settings,
            service: tokio::sync::Mutex::new(None),
            verified: std::sync::Mutex::new(HashMap::new()),
            salt,
        })
    }

    async fn connect(&self) -> Result<Ldap, String> {
        let (conn, ldap) = LdapConnAsync::with_settings(self.settings.clone(), &self.config.url)
            .await
            .map_err(|e| format!("connect {}: {e}", self.config.url))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// The shared service connection (a fresh one if `fresh` or none yet).
    async fn service(&self, fresh: bool) -> Result<Ldap, String> {
        let mut slot = self.service.lock().await;
        if let (false, Some(ldap)) = (fresh, slot.as_ref()) {
            return Ok(ldap.clone());
        }
        if let Some(mut old) = slot.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), old.unbind()).await;
        }
        let mut ldap = tokio::time::timeout(OP_TIMEOUT, self.connect())
            .await
            .map_err(|_| format!("connect {}: timed out", self.config.url))??;
        tokio::time::timeout(
            OP_TIMEOUT,
            ldap.simple_bind(&self.config.bind_dn, &self.config.bind_password),
        )
        .await
        .map_err(|_| "service bind: timed out".to_owned())?
        .and_then(ldap3::LdapResult::success)
        .map_err(|e| format!("service bind as {}: {e}", self.config.bind_dn))?;
        *slot = Some(ldap.clone());
        Ok(ldap)
    }

    /// A search as the service account; a broken connection is replaced once.
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<Vec<SearchEntry>, String> {
        let mut last = String::new();
        for attempt in 0..2 {
            let mut ldap = self.service(attempt > 0).await?;
            match tokio::time::timeout(OP_TIMEOUT, ldap.search(base, scope, filter, ATTRS)).await {
                // noSuchObject (a base search on a DN that is gone) is an empty answer.
                Ok(Ok(res)) if res.1.rc == 32 => return Ok(Vec::new()),
                Ok(Ok(res)) => {
                    let (entries, _) =
                        res.success().map_err(|e| format!("search {filter}: {e}"))?;
                    return Ok(entries.into_iter().map(SearchEntry::construct).collect());
                }
                Ok(Err(e)) => last = format!("search {filter}: {e}"),
                Err(_) => last = format!("search {filter}: timed out"),
            }
        }
        Err(last)
    }

    /// Reads an account by sAMAccountName (below the configured base).
    pub async fn account(&self, sam: &str) -> Result<Option<AdAccount>, String> {
        self.lookup(&OnPremUser {
            sam_account_name: Some(sam.to_owned()),
            distinguished_name: None,
            user_principal_name: String::new(),
        })
        .await
    }

    /// The account behind a synced user: by its on-prem DN if known, else by sAMAccountName.
    /// `None` if it does not exist or is ambiguous.
    pub async fn lookup(&self, user: &OnPremUser) -> Result<Option<AdAccount>, String> {
        let entries = match (&user.distinguished_name, &user.sam_account_name) {
            (Some(dn), _) => self.search(dn, Scope::Base, "(objectClass=user)").await?,
            (None, Some(sam)) => {
                let filter = format!(
                    "(&(objectClass=user)(sAMAccountName={}))",
                    ldap3::ldap_escape(sam)
                );
                self.search(&self.config.base_dn, Scope::Subtree, &filter)
                    .await?
            }
            (None, None) => return Ok(None),
        };
        let [entry] = entries.as_slice() else {
            return Ok(None);
        };
        Ok(Some(account_of(entry)))
    }

    fn digest(&self, dn: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(dn.to_ascii_lowercase().as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// A simple bind as `dn` on a fresh connection: `Ok(true)` on success, `Ok(false)` on 49.
    async fn bind_as(&self, dn: &str, password: &str) -> Result<bool, String> {
        let mut ldap = tokio::time::timeout(OP_TIMEOUT, self.connect())
            .await
            .map_err(|_| format!("connect {}: timed out", self.config.url))??;
        let res = tokio::time::timeout(OP_TIMEOUT, ldap.simple_bind(dn, password))
            .await
            .map_err(|_| "bind: timed out".to_owned())?
            .map_err(|e| format!("bind: {e}"))?;
        let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
        match res.rc {
            0 => Ok(true),
            // 49 covers wrong password and the 52x/53x/77x sub-codes (disabled, expired, must
            // change, locked): none of them is a password the cloud would accept after sync.
            49 => Ok(false),
            rc => Err(format!("bind: rc {rc}: {}", res.text)),
        }
    }
}

fn first_bin(entry: &SearchEntry, name: &str) -> Option<Vec<u8>> {
    entry
        .bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

fn first_str(entry: &SearchEntry, name: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

fn account_of(entry: &SearchEntry) -> AdAccount {
    AdAccount {
        dn: entry.dn.clone(),
        sam_account_name: first_str(entry, "sAMAccountName"),
        user_principal_name: first_str(entry, "userPrincipalName"),
        object_guid: first_bin(entry, "objectGUID").unwrap_or_default(),
        consistency_guid: first_bin(entry, "mS-DS-ConsistencyGuid"),
        pwd_last_set: first_str(entry, "pwdLastSet")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
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
            let Some(acct) = self.lookup(user).await? else {
                return Ok(false);
            };
            let key = acct.dn.to_ascii_lowercase();
            let digest = self.digest(&acct.dn, password);
            let known = self
                .verified
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned()
                .unwrap_or_default();
            if let Some((_, good)) = known.iter().find(|(set, _)| *set == acct.pwd_last_set) {
                return Ok(*good == digest);
            }
            if known.iter().any(|(_, d)| *d == digest) {
                // A previous password: Samba may still accept it on a bind; the cloud must not.
                return Ok(false);
            }
            let ok = self.bind_as(&acct.dn, password).await?;
            if ok {
                let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                let history = verified.entry(key).or_default();
                history.push((acct.pwd_last_set, digest));
                if history.len() > HISTORY {
                    history.remove(0);
                }
            }
            Ok(ok)
        })
    }
}

impl ChangeSource for LdapOnPrem {
    fn last_change<'a>(
        &'a self,
        user: &'a OnPremUser,
    ) -> BoxFuture<'a, Result<Option<SystemTime>, String>> {
        Box::pin(async move { Ok(self.lookup(user).await?.and_then(|a| a.password_last_set())) })
    }
}

#[cfg(test)]
mod tests {
    use super::{AdConfig, LdapOnPrem, filetime};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn filetime_converts() {
        assert_eq!(filetime(0), None);
        assert_eq!(filetime(-1), None);
        assert_eq!(
            filetime(116_444_736_000_000_000 + 10_000_000),
            Some(UNIX_EPOCH + Duration::from_secs(1))
        );
        assert_eq!(
            filetime(116_444_736_000_000_000 + 10_000_000 + 1234),
            Some(UNIX_EPOCH + Duration::from_secs(1) + Duration::from_nanos(123_400))
        );
    }

    #[test]
    fn plain_ldap_and_missing_ca_are_refused() {
        let config = |url: &str, ca: &str| AdConfig {
            url: url.to_owned(),
            ca_file: ca.into(),
            bind_dn: "CN=x".into(),
            bind_password: "x".into(),
            base_dn: "DC=x".into(),
        };
        let e = LdapOnPrem::new(config("ldap://dc:389", "/dev/null")).err();
        assert!(e.is_some_and(|e| e.contains("only ldaps://")));
        let e = LdapOnPrem::new(config("ldaps://dc:636", "/dev/null")).err();
        assert!(e.is_some_and(|e| e.contains("no PEM certificate")));
    }
}
