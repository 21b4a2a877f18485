//! The peer model: what typical self-service portals do for a "change", per request — a new TLS
//! connection, bind as the service account, subtree search for the user, bind as the user with the
//! old credential (the "check"), re-bind as the service account, and REPLACE `unicodePwd` (a reset,
//! not a change). The bench measures it (`peer-change`) and `tests/peer_model.rs` records what the
//! shortcut skips on the dev domain.

use std::collections::HashSet;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Mod, Scope, SearchEntry};
use rekey_e2e::dev::{Dev, unicode_pwd};

use crate::dc::{self, BenchResult};

/// The step of the peer model that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    ServiceBind,
    Search,
    UserBind,
    Rebind,
    Replace,
}

/// Where and how the peer model stopped: the step, the LDAP result code and the DC's text
/// (`80090308: … data 773` for a user who must change, …). Never carries a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub step: Step,
    pub rc: u32,
    pub text: String,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peer model {:?}: rc {} {}",
            self.step, self.rc, self.text
        )
    }
}

/// What every peer-model request needs; built once (the TLS settings are cloned per connection,
/// the handshake is not reused).
#[derive(Clone)]
pub struct Peer {
    settings: LdapConnSettings,
    url: String,
    base_dn: String,
    svc_dn: String,
    svc_pw: String,
}

impl Peer {
    /// The dev domain's DC1, base DN and service account (`REKEY_DEV_SVC_*`).
    pub fn from_dev(dev: &Dev) -> BenchResult<Self> {
        let file = dev.get("REKEY_DEV_SVC_PASSWORD_FILE");
        let svc_pw = std::fs::read_to_string(file)
            .map(|s| s.trim_end().to_owned())
            .map_err(|e| format!("{file}: {e}"))?;
        Ok(Self {
            settings: dc::tls(dev)?,
            url: dev.dc1_url(),
            base_dn: dev.get("REKEY_DEV_BASE_DN").to_owned(),
            svc_dn: dev.get("REKEY_DEV_SVC_DN").to_owned(),
            svc_pw,
        })
    }

    /// One peer-model "change" of `sam` from `old` to `new`, every step of it; `Ok` when the
    /// replace landed.
    pub async fn change(&self, sam: &str, old: &str, new: &str) -> Result<(), Stopped> {
        let mut ldap = self.connect().await?;
        let r = self.steps(&mut ldap, sam, old, new).await;
        let _ = ldap.unbind().await;
        r
    }

    async fn connect(&self) -> Result<Ldap, Stopped> {
        let (conn, ldap) = LdapConnAsync::with_settings(self.settings.clone(), &self.url)
            .await
            .map_err(|e| stopped(Step::Connect, 0, e.to_string()))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn steps(&self, ldap: &mut Ldap, sam: &str, old: &str, new: &str) -> Result<(), Stopped> {
        bind(ldap, Step::ServiceBind, &self.svc_dn, &self.svc_pw).await?;
        let dn = self.find(ldap, sam).await?;
        bind(ldap, Step::UserBind, &dn, old).await?;
        bind(ldap, Step::Rebind, &self.svc_dn, &self.svc_pw).await?;
        let m = vec![Mod::Replace(
            b"unicodePwd".to_vec(),
            HashSet::from([unicode_pwd(new)]),
        )];
        let r = ldap
            .modify(&dn, m)
            .await
            .map_err(|e| stopped(Step::Replace, 0, e.to_string()))?;
        if r.rc != 0 {
            return Err(stopped(Step::Replace, r.rc, r.text));
        }
        Ok(())
    }

    /// The user's DN: subtree search from the base DN by `sAMAccountName`, exactly one hit.
    async fn find(&self, ldap: &mut Ldap, sam: &str) -> Result<String, Stopped> {
        let filter = format!("(sAMAccountName={})", ldap3::ldap_escape(sam));
        let r = ldap
            .search(&self.base_dn, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .map_err(|e| stopped(Step::Search, 0, e.to_string()))?;
        let (found, res) = (r.0, r.1);
        if res.rc != 0 {
            return Err(stopped(Step::Search, res.rc, res.text));
        }
        let mut dns: Vec<String> = found
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(|e| SearchEntry::construct(e).dn)
            .collect();
        match (dns.pop(), dns.is_empty()) {
            (Some(dn), true) => Ok(dn),
            (None, _) => Err(stopped(Step::Search, 0, format!("{sam}: not found"))),
            (Some(_), false) => Err(stopped(Step::Search, 0, format!("{sam}: ambiguous"))),
        }
    }
}

fn stopped(step: Step, rc: u32, text: String) -> Stopped {
    Stopped { step, rc, text }
}

async fn bind(ldap: &mut Ldap, step: Step, dn: &str, pw: &str) -> Result<(), Stopped> {
    let r = ldap
        .simple_bind(dn, pw)
        .await
        .map_err(|e| stopped(step, 0, e.to_string()))?;
    if r.rc != 0 {
        return Err(stopped(step, r.rc, r.text));
    }
    Ok(())
}
