//! Enrolled methods: what counts for a tier, their secrets sealed at rest, the masked list a
//! user or an admin sees, and the codes of any kind a gate accepts.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::{Engine, EngineError, EngineResult};
use crate::account::{Account, Guid};
use crate::mask::{mask_email, mask_phone};
use crate::method::{GateRule, Method, Strength};
use crate::passkey::PasskeyCredential;
use crate::store::{Enrollment, MethodKind};
use crate::tier::Tier;

/// One enrolled method as a page or a report shows it: never the secret, the address masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodView {
    pub kind: MethodKind,
    /// `j***@e***.com`, `+** *** ** 67`, or how many passkeys / questions.
    pub hint: String,
    pub strength: Strength,
    pub enrolled_at: i64,
    pub last_used_at: Option<i64>,
    /// It serves a reset from this time on (the cool-down after enrollment).
    pub usable_from: i64,
}

/// A line of the enrollment report: a user with fewer methods than their tier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub sam_account_name: String,
    pub privileged: bool,
    pub methods: Vec<MethodKind>,
    pub needed: usize,
}

impl Engine {
    /// The id of the key new secrets are sealed under (stored with each record so a rotation
    /// can find what is sealed under an older key).
    pub(crate) fn method_key_id(&self) -> String {
        self.inner.keys.current().id
    }

    /// Seal a method's secret for `user` (an envelope: a fresh AES-256-GCM data key wrapped by
    /// the current key, the data bound to user and method). Returns the key id and the value.
    pub(crate) fn seal_method(
        &self,
        user: &Guid,
        kind: MethodKind,
        plain: &[u8],
    ) -> (String, Vec<u8>) {
        let kek = self.inner.keys.current();
        let sealed = crate::keyring::seal(
            &kek,
            self.inner.random.as_ref(),
            &crate::keyring::method_binding(user, kind),
            plain,
        );
        (kek.id, sealed)
    }

    /// Open what `seal_method` sealed (or a value from before envelopes, under `key_id`). A
    /// record under a key that is not loaded is an error the operator must see (never silently
    /// treated as "not enrolled").
    pub(crate) fn open_method(
        &self,
        user: &Guid,
        kind: MethodKind,
        key_id: &str,
        data: &[u8],
    ) -> EngineResult<Zeroizing<Vec<u8>>> {
        crate::keyring::open(
            self.inner.keys.as_ref(),
            key_id,
            &crate::keyring::method_binding(user, kind),
            data,
        )
        .map_err(|e| {
            let id = match e {
                crate::keyring::SealError::MissingKey(id) => id,
                crate::keyring::SealError::Damaged => key_id.to_owned(),
            };
            EngineError::SealedKey(id)
        })
    }

    /// The gate rule of the account's tier; `None`: its tier may not use self-service.
    pub(crate) fn rule_for(&self, account: &Account) -> Option<&GateRule> {
        match self.inner.protected.classify(account) {
            Tier::Normal => Some(&self.inner.config.gates.standard),
            Tier::Privileged { .. } => self.inner.config.gates.privileged.as_ref(),
        }
    }

    /// Does this server offer passkeys (the first gate's "use a passkey instead")?
    #[must_use]
    pub fn passkeys_enabled(&self) -> bool {
        self.inner.passkeys.is_some()
    }

    /// Is the method configured on this server at all?
    pub(crate) fn method_configured(&self, kind: MethodKind) -> bool {
        match kind {
            MethodKind::Email => true,
            MethodKind::Sms => {
                self.inner.sms.is_some() && !self.inner.config.sms_countries.is_empty()
            }
            MethodKind::Totp => true,
            MethodKind::Passkey => self.inner.passkeys.is_some(),
            MethodKind::Questions => self.inner.config.questions_enabled,
        }
    }

    /// May this account hold (and prove itself with) this method? Configured, and counted by
    /// its tier's rule — a privileged user never adds SMS or questions, nor proves with them.
    pub(crate) fn enrollable(&self, account: &Account, kind: MethodKind) -> bool {
        self.method_configured(kind)
            && self
                .rule_for(account)
                .is_none_or(|r| r.allows(Method::of(kind)))
    }

    /// The user's methods that may serve a reset now: configured, counted by the tier's rule,
    /// and past the cool-down.
    pub(crate) async fn usable(
        &self,
        user: &Guid,
        rule: &GateRule,
    ) -> EngineResult<Vec<Enrollment>> {
        let now = self.now();
        let cooldown = self.inner.config.enroll_cooldown;
        Ok(self
            .inner
            .store
            .enrollments(user)
            .await?
            .into_iter()
            .filter(|e| self.method_configured(e.method))
            .filter(|e| rule.allows(Method::of(e.method)))
            .filter(|e| e.verified_at + cooldown <= now)
            .collect())
    }

    /// A masked view of each enrolled method.
    pub(crate) fn view(&self, e: &Enrollment) -> MethodView {
        let hint = match e.method {
            MethodKind::Email => mask_email(&e.value),
            MethodKind::Sms => mask_phone(&e.value),
            MethodKind::Totp | MethodKind::Passkey | MethodKind::Questions => e.value.clone(),
        };
        MethodView {
            kind: e.method,
            hint,
            strength: Method::of(e.method).strength(),
            enrolled_at: e.verified_at,
            last_used_at: e.last_used_at,
            usable_from: e.verified_at + self.inner.config.enroll_cooldown,
        }
    }

    /// The passkeys stored in an enrollment (public data, not sealed).
    pub(crate) fn passkeys_of(e: &Enrollment) -> Vec<PasskeyCredential> {
        serde_json::from_slice(&e.data).unwrap_or_default()
    }

    /// Users with fewer usable-for-reset methods than their tier needs, among those who have
    /// enrolled anything, plus every name given in `names` (e.g. the scoped users an operator
    /// lists): `rekey admin enrollment-report`.
    pub async fn enrollment_report(&self, names: &[String]) -> EngineResult<Vec<ReportRow>> {
        // One read of the store for everyone; then the directory, once per account.
        let mut enrolled: BTreeMap<Guid, Vec<MethodKind>> = BTreeMap::new();
        for e in self.inner.store.all_enrollments().await? {
            enrolled.entry(e.user).or_default().push(e.method);
        }
        let mut accounts: Vec<Account> = Vec::new();
        for g in enrolled.keys() {
            if let Some(a) = self.inner.directory.by_guid(g).await? {
                accounts.push(a);
            }
        }
        for n in names {
            let Some(id) = crate::account::Identifier::parse(n) else {
                continue;
            };
            if let Some(a) = self.inner.directory.find(&id).await?
                && !accounts.iter().any(|x| x.guid == a.guid)
            {
                accounts.push(a);
            }
        }
        let mut rows = Vec::new();
        for a in accounts {
            if self.inner.scope.check(&a, &self.inner.protected).is_err() {
                continue;
            }
            let Some(rule) = self.rule_for(&a) else {
                continue;
            };
            let privileged = matches!(self.inner.protected.classify(&a), Tier::Privileged { .. });
            let methods: Vec<MethodKind> = enrolled
                .get(&a.guid)
                .into_iter()
                .flatten()
                .copied()
                .filter(|k| self.method_configured(*k) && rule.allows(Method::of(*k)))
                .collect();
            let needed = usize::from(rule.gates);
            let passkey_missing =
                rule.phishing_resistant && !methods.contains(&MethodKind::Passkey);
            if methods.len() < needed || passkey_missing {
                rows.push(ReportRow {
                    sam_account_name: a.sam_account_name.clone(),
                    privileged,
                    methods,
                    needed,
                });
            }
        }
        rows.sort_by(|a, b| a.sam_account_name.cmp(&b.sam_account_name));
        Ok(rows)
    }
}
