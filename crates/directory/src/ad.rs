//! `ActiveDirectory`: the directory reader and the AD landing zone over the pool.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ldap3::{LdapError, Scope, SearchEntry};
use rekey_core::{
    Account, BoxFuture, Diagnostic, Directory, DirectoryError, Guid, Identifier, PasswordPolicy,
    PolicySource, Sid,
};
use rekey_core::{Password, ProtectedGroups};

use crate::entry::{self, first_bool, first_i64, first_str};
use crate::escape::{eq, ldap_escape};
use crate::pool::Pool;
use crate::{AdConfig, SetupError};

/// How long the domain-wide policy is cached (PSOs are read per request).
const DOMAIN_POLICY_TTL: Duration = Duration::from_secs(60);

/// How long a sAMAccountName → objectGUID resolution is remembered, and how many at most. Only
/// the NAME is remembered: every find still reads the account live by GUID and checks that it
/// still has that name, so a rename or a deletion is seen at once (see `find_account`).
const NAME_TTL: Duration = Duration::from_secs(600);
const NAME_CAP: usize = 10_000;

/// The find's filter: people, not computers (which are `objectClass=user` too).
const PERSON: &str = "(&(objectCategory=person)(objectClass=user))";

/// The ActiveDirectory landing zone and directory reader.
pub struct ActiveDirectory {
    pub(crate) pool: Pool,
    base_dn: String,
    domain_sid: Sid,
    pub(crate) history_on_reset: bool,
    domain_policy: Mutex<Option<(Instant, PasswordPolicy)>>,
    pso_cache: Mutex<std::collections::HashMap<String, (Instant, PasswordPolicy)>>,
    /// Lower-cased sAMAccountName → objectGUID, from earlier finds (`NAME_TTL`, `NAME_CAP`).
    names: Mutex<std::collections::HashMap<String, (Instant, Guid)>>,
}

fn unavailable(server: Option<&str>, e: &LdapError) -> Diagnostic {
    Diagnostic::new(server, e.to_string())
}

impl ActiveDirectory {
    /// Validate the config, connect to every configured DC once (learning which one is the PDC
    /// emulator) and read the domain's identity. Fails only if no DC answers.
    pub async fn connect(config: &AdConfig) -> Result<Self, SetupError> {
        let password = config.validate()?;
        let pool = Pool::new(config, password)?;
        let mut first_error = None;
        for idx in 0..pool.servers.len() {
            if let Err(e) = pool.lease(idx).await {
                let url = &pool.servers[idx].url;
                tracing::warn!(%url, error = %e, "DC not reachable at start; will retry on use");
                first_error.get_or_insert_with(|| setup_error(url, &e));
            }
        }
        if pool.servers.iter().all(|s| s.service_name().is_none()) {
            return Err(first_error.unwrap_or(SetupError::Config {
                key: "directory.urls",
                why: "no DC answered".into(),
            }));
        }
        let mut ad = Self {
            pool,
            base_dn: String::new(),
            domain_sid: Sid::builtin(),
            history_on_reset: config.history_on_reset,
            domain_policy: Mutex::new(None),
            pso_cache: Mutex::new(std::collections::HashMap::new()),
            names: Mutex::new(std::collections::HashMap::new()),
        };
        ad.base_dn = match &config.base_dn {
            Some(b) => b.clone(),
            None => {
                let root = ad
                    .read_one("", "(objectClass=*)", &["defaultNamingContext"])
                    .await;
                root.ok()
                    .flatten()
                    .and_then(|e| first_str(&e, "defaultNamingContext").map(str::to_owned))
                    .ok_or(SetupError::Config {
                        key: "directory.base_dn",
                        why: "the DC did not say its defaultNamingContext; set base_dn".into(),
                    })?
            }
        };
        let head = ad
            .read_one(
                &ad.base_dn,
                "(objectClass=domain)",
                &["objectSid", "fSMORoleOwner"],
            )
            .await
            .map_err(|e| SetupError::Directory(e.to_string()))?
            .ok_or_else(|| SetupError::Config {
                key: "directory.base_dn",
                why: format!("{} is not a domain head", ad.base_dn),
            })?;
        ad.domain_sid = entry::bin_values(&head, "objectSid")
            .first()
            .and_then(|b| Sid::from_bytes(b))
            .ok_or_else(|| SetupError::Directory("the domain head has no objectSid".into()))?;
        ad.pool
            .set_pdc(first_str(&head, "fSMORoleOwner").map(str::to_owned));
        match ad.pdc_url() {
            Some(url) => tracing::info!(%url, "PDC emulator found; writes go there first"),
            None => tracing::warn!(
                "the PDC emulator is not among directory.urls (or not reachable); writes use the configured order"
            ),
        }
        Ok(ad)
    }

    #[must_use]
    pub fn base_dn(&self) -> &str {
        &self.base_dn
    }

    #[must_use]
    pub fn domain_sid(&self) -> &Sid {
        &self.domain_sid
    }

    /// The protected groups of this domain plus the operator's extra ones.
    #[must_use]
    pub fn protected_groups(
        &self,
        extra: impl IntoIterator<Item = (Sid, String)>,
    ) -> ProtectedGroups {
        ProtectedGroups::new(&self.domain_sid, extra)
    }

    /// The configured URL of the PDC emulator, when it is one of the configured DCs.
    #[must_use]
    pub fn pdc_url(&self) -> Option<&str> {
        self.pool
            .pdc_index()
            .map(|i| self.pool.servers[i].url.as_str())
    }

    /// TLS connections opened since start (each paid one handshake and one bind).
    #[must_use]
    pub fn connections_opened(&self) -> u64 {
        self.pool.connections_opened()
    }

    /// A search with failover: each DC in order until one answers.
    pub(crate) async fn read(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        Ok(self.read_at(base, scope, filter, attrs).await?.0)
    }

    /// [`read`](Self::read), also naming the DC that answered (its configured URL).
    async fn read_at(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<(Vec<SearchEntry>, &str), DirectoryError> {
        let mut last = None;
        for idx in self.pool.order() {
            let url = self.pool.servers[idx].url.as_str();
            let mut lease = match self.pool.lease(idx).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(%url, error = %e, "DC unreachable; trying the next");
                    last = Some(unavailable(Some(url), &e));
                    continue;
                }
            };
            let started = Instant::now();
            let result = lease
                .ldap
                .with_timeout(self.pool.op_timeout)
                .search(base, scope, filter, attrs.to_vec())
                .await;
            crate::telemetry::operation(url, "search", started.elapsed(), result.is_ok());
            match result {
                Ok(ldap3::SearchResult(found, res)) => match res.rc {
                    0 => return Ok((entry::entries(found), url)),
                    32 => return Ok((Vec::new(), url)),
                    51 | 52 => last = Some(Diagnostic::new(Some(url), res.to_string())),
                    _ => {
                        return Err(DirectoryError::Protocol(Diagnostic::new(
                            Some(url),
                            res.to_string(),
                        )));
                    }
                },
                Err(e) => {
                    self.pool.discard(&lease).await;
                    tracing::warn!(%url, error = %e, "read failed; trying the next DC");
                    last = Some(unavailable(Some(url), &e));
                }
            }
        }
        Err(DirectoryError::Unavailable(last.unwrap_or_else(|| {
            Diagnostic::new(None, "no DC configured")
        })))
    }

    async fn read_one(
        &self,
        dn: &str,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Option<SearchEntry>, DirectoryError> {
        Ok(self
            .read(dn, Scope::Base, filter, attrs)
            .await?
            .into_iter()
            .next())
    }

    /// Read an account by DN: identity, live state and transitive groups, in one round trip.
    pub async fn account_by_dn(&self, dn: &str) -> Result<Option<Account>, DirectoryError> {
        self.read_account(dn, "(objectClass=user)").await
    }

    /// One base search for an account, remembering which DC answered (`Account::read_from`).
    async fn read_account(
        &self,
        dn: &str,
        filter: &str,
    ) -> Result<Option<Account>, DirectoryError> {
        let (found, url) = self
            .read_at(dn, Scope::Base, filter, entry::ACCOUNT_ATTRS)
            .await?;
        Ok(found.first().and_then(entry::account).map(|mut a| {
            a.read_from = Some(url.to_owned());
            a
        }))
    }

    /// Re-read an account by its objectGUID (survives renames and moves).
    pub async fn account_by_guid(&self, guid: &Guid) -> Result<Option<Account>, DirectoryError> {
        self.account_by_dn(&format!("<GUID={guid}>")).await
    }

    /// Whether `user_dn` is a member of `group_dn` at any nesting depth, in one query
    /// (LDAP_MATCHING_RULE_IN_CHAIN, 1.2.840.113556.1.4.1941).
    pub async fn is_transitive_member(
        &self,
        user_dn: &str,
        group_dn: &str,
    ) -> Result<bool, DirectoryError> {
        let filter = format!(
            "(memberOf:1.2.840.113556.1.4.1941:={})",
            ldap_escape(group_dn)
        );
        Ok(self.read_one(user_dn, &filter, &["1.1"]).await?.is_some())
    }

    /// The objectSid of a group, to match it against accounts' `tokenGroups`.
    pub async fn group_sid(&self, group_dn: &str) -> Result<Option<Sid>, DirectoryError> {
        let found = self
            .read_one(group_dn, "(objectClass=group)", &["objectSid"])
            .await?;
        Ok(found.and_then(|e| Sid::from_bytes(entry::bin_values(&e, "objectSid").first()?)))
    }

    /// Check a user's password with a simple bind on a fresh connection. A blank password is
    /// refused without contacting the DC: it would be an anonymous bind that "succeeds".
    pub async fn authenticate(
        &self,
        dn: &str,
        password: &Password,
    ) -> Result<bool, DirectoryError> {
        let mut last = None;
        for idx in self.pool.order() {
            match self.bind_on(idx, dn, password).await {
                Ok(bound) => return Ok(bound),
                Err(crate::canary::BindError::NotConnected(d)) => last = Some(d),
                // The bind may have reached the DC (and counted in badPwdCount if wrong): never
                // repeat it on another DC, or one attempt could count twice (invariant 35).
                Err(crate::canary::BindError::Failed(e)) => return Err(e),
            }
        }
        Err(DirectoryError::Unavailable(last.unwrap_or_else(|| {
            Diagnostic::new(None, "no DC configured")
        })))
    }

    /// Find a person by what they typed. A sAMAccountName resolved before (the DC keeps it
    /// unique in the domain) costs ONE base search by GUID, which reads the live account and
    /// proves the name still belongs to it; anything else, and any doubt, costs the subtree
    /// search that resolves the name (and detects ambiguity), then the base search by DN.
    async fn find_account(&self, id: &Identifier) -> Result<Option<Account>, DirectoryError> {
        let sam_key = match id {
            Identifier::SamAccountName(s) => Some(s.to_lowercase()),
            Identifier::Principal(_) => None,
        };
        if let Some(key) = &sam_key
            && let Some(guid) = self.resolved(key)
        {
            match self.read_account(&format!("<GUID={guid}>"), PERSON).await? {
                Some(a) if a.sam_account_name.to_lowercase() == *key => return Ok(Some(a)),
                // Renamed, deleted or no longer a person: resolve the name afresh.
                _ => self.forget(key),
            }
        }
        let who = match id {
            Identifier::SamAccountName(s) => eq("sAMAccountName", s),
            Identifier::Principal(p) => {
                format!("(|{}{})", eq("userPrincipalName", p), eq("mail", p))
            }
        };
        let filter = format!("(&(objectCategory=person)(objectClass=user){who})");
        let found = self
            .read(&self.base_dn, Scope::Subtree, &filter, &["1.1"])
            .await?;
        let account = match found.as_slice() {
            [] => return Ok(None),
            [one] => self.account_by_dn(&one.dn).await?,
            _ => return Err(DirectoryError::Ambiguous),
        };
        if let (Some(key), Some(a)) = (sam_key, &account)
            && a.sam_account_name.to_lowercase() == key
        {
            self.remember(key, a.guid);
        }
        Ok(account)
    }

    fn resolved(&self, key: &str) -> Option<Guid> {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .filter(|(at, _)| at.elapsed() < NAME_TTL)
            .map(|(_, g)| *g)
    }

    fn remember(&self, key: String, guid: Guid) {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if names.len() >= NAME_CAP {
            names.retain(|_, (at, _)| at.elapsed() < NAME_TTL);
            if names.len() >= NAME_CAP {
                names.clear();
            }
        }
        names.insert(key, (Instant::now(), guid));
    }

    fn forget(&self, key: &str) {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// The effective policy from the PSO reference read with the account (no extra round trip);
    /// PSOs are cached for a minute like the domain policy.
    async fn policy_of(&self, account: &Account) -> Result<PasswordPolicy, DirectoryError> {
        let Some(dn) = account.policy_ref.as_deref() else {
            return self.domain_policy().await;
        };
        let cached = self
            .pso_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(dn)
            .filter(|(at, _)| at.elapsed() < DOMAIN_POLICY_TTL)
            .map(|(_, p)| p.clone());
        if let Some(p) = cached {
            return Ok(p);
        }
        let pso = self
            .read_one(dn, "(objectClass=msDS-PasswordSettings)", PSO_ATTRS)
            .await?;
        // A PSO the service account cannot read must not silently become "domain policy".
        let policy = pso.as_ref().and_then(pso_policy).ok_or_else(|| {
            DirectoryError::Protocol(Diagnostic::new(
                None,
                format!("PSO {dn} applies but is not readable by the service account"),
            ))
        })?;
        self.pso_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(dn.to_owned(), (Instant::now(), policy.clone()));
        Ok(policy)
    }

    /// The domain-wide policy (domain head), cached for a minute.
    pub async fn domain_policy(&self) -> Result<PasswordPolicy, DirectoryError> {
        let cached = self
            .domain_policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((at, p)) = cached
            && at.elapsed() < DOMAIN_POLICY_TTL
        {
            return Ok(p);
        }
        let head = self
            .read_one(&self.base_dn, "(objectClass=domain)", DOMAIN_ATTRS)
            .await?;
        let policy = head.as_ref().and_then(domain_policy).ok_or_else(|| {
            DirectoryError::Protocol(Diagnostic::new(
                None,
                "domain head lacks password policy attributes",
            ))
        })?;
        *self
            .domain_policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), policy.clone()));
        Ok(policy)
    }
}

fn setup_error(url: &str, e: &LdapError) -> SetupError {
    match e {
        LdapError::LdapResult { result } if result.rc == 49 => SetupError::Bind(format!(
            "{url}: the service account's bind was refused (check directory.bind_dn and its password)"
        )),
        _ => SetupError::Directory(format!("{url}: {e}")),
    }
}

const PSO_ATTRS: &[&str] = &[
    "cn",
    "msDS-MinimumPasswordLength",
    "msDS-PasswordComplexityEnabled",
    "msDS-PasswordHistoryLength",
    "msDS-MinimumPasswordAge",
    "msDS-MaximumPasswordAge",
    "msDS-LockoutThreshold",
    "msDS-LockoutDuration",
    "msDS-LockoutObservationWindow",
];

const DOMAIN_ATTRS: &[&str] = &[
    "minPwdLength",
    "pwdProperties",
    "pwdHistoryLength",
    "minPwdAge",
    "maxPwdAge",
    "lockoutThreshold",
    "lockoutDuration",
    "lockOutObservationWindow",
];

/// 0 and `i64::MIN` both mean "never" for a maximum age.
fn max_age(raw: Option<i64>) -> Option<Duration> {
    raw.filter(|&v| v != 0).and_then(PasswordPolicy::interval)
}

fn interval(raw: Option<i64>) -> Duration {
    raw.and_then(PasswordPolicy::interval).unwrap_or_default()
}

fn count(e: &SearchEntry, attr: &str) -> u32 {
    first_i64(e, attr)
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

fn pso_policy(e: &SearchEntry) -> Option<PasswordPolicy> {
    Some(PasswordPolicy {
        source: PolicySource::Pso {
            name: first_str(e, "cn")?.to_owned(),
            dn: e.dn.clone(),
        },
        min_length: u32::try_from(first_i64(e, "msDS-MinimumPasswordLength")?).ok()?,
        complexity: first_bool(e, "msDS-PasswordComplexityEnabled")?,
        history_length: count(e, "msDS-PasswordHistoryLength"),
        min_age: interval(first_i64(e, "msDS-MinimumPasswordAge")),
        max_age: max_age(first_i64(e, "msDS-MaximumPasswordAge")),
        lockout_threshold: count(e, "msDS-LockoutThreshold"),
        lockout_duration: interval(first_i64(e, "msDS-LockoutDuration")),
        lockout_window: interval(first_i64(e, "msDS-LockoutObservationWindow")),
        entra_rules: false,
    })
}

fn domain_policy(e: &SearchEntry) -> Option<PasswordPolicy> {
    Some(PasswordPolicy {
        source: PolicySource::Domain,
        min_length: u32::try_from(first_i64(e, "minPwdLength")?).ok()?,
        complexity: first_i64(e, "pwdProperties")? & 1 != 0,
        history_length: count(e, "pwdHistoryLength"),
        min_age: interval(first_i64(e, "minPwdAge")),
        max_age: max_age(first_i64(e, "maxPwdAge")),
        lockout_threshold: count(e, "lockoutThreshold"),
        lockout_duration: interval(first_i64(e, "lockoutDuration")),
        lockout_window: interval(first_i64(e, "lockOutObservationWindow")),
        entra_rules: false,
    })
}

impl Directory for ActiveDirectory {
    fn find<'a>(
        &'a self,
        id: &'a Identifier,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>> {
        Box::pin(self.find_account(id))
    }

    fn by_guid<'a>(
        &'a self,
        guid: &'a Guid,
    ) -> BoxFuture<'a, Result<Option<Account>, DirectoryError>> {
        Box::pin(self.account_by_guid(guid))
    }

    fn authenticate<'a>(
        &'a self,
        account: &'a Account,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        Box::pin(ActiveDirectory::authenticate(self, &account.dn, password))
    }

    fn effective_policy<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<PasswordPolicy, DirectoryError>> {
        Box::pin(self.policy_of(account))
    }
}
