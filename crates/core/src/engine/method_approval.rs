//! Method changes of privileged-tier users wait for an approver (issue 12).
//!
//! When `[gates.privileged]` lets privileged accounts use self-service, whoever can add a method
//! to such an account can reset a tier-0 password. So a privileged user's add or removal does not
//! take effect at once: the enrollment is proven first (code, app code, passkey ceremony), then
//! kept — the TOTP seed sealed as `seal_method` sealed it, the new passkey credential (public),
//! the confirmed address — inside an approval request (`helpdesk_acts`: the same record, list
//! and decision as the helpdesk's). An approver who is not the user applies it; a rejection or
//! expiry leaves the methods as they were. Without approver groups such a change is refused
//! (fail closed; the binary refuses the configuration at start).

use serde::{Deserialize, Serialize};

use super::enroll::method_words;
use super::helpdesk::Agent;
use super::helpdesk_acts::Requested;
use super::state::{Loaded, Step};
use super::trail::Trail;
use super::{Engine, EngineError, EngineResult};
use crate::account::Account;
use crate::audit::Operation;
use crate::mask::{mask_email, mask_phone};
use crate::passkey::PasskeyCredential;
use crate::store::{Enrollment, MethodKind};

/// What a method change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// The method was added or removed; the user was mailed.
    Applied,
    /// The account is privileged: the change (adding or removing `kind`) waits for an
    /// approver under this id until `expires_at` (Unix seconds). Nothing changed yet.
    Pending {
        id: String,
        expires_at: i64,
        kind: MethodKind,
        remove: bool,
    },
}

/// A change waiting for approval, as the user's methods page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub id: String,
    pub remove: bool,
    pub kind: MethodKind,
    pub expires_at: i64,
}

/// A proven method change, kept in the approval request until it is decided. `hint` is what an
/// approver sees (masked); the rest is the enrollment to store: sealed data stays sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MethodChange {
    pub remove: bool,
    pub kind: MethodKind,
    pub hint: String,
    #[serde(default)]
    pub value: String,
    /// Sealed (TOTP seed) when `key_id` is set; for a passkey the ONE new credential (public).
    #[serde(default)]
    pub data: Vec<u8>,
    #[serde(default)]
    pub key_id: String,
    #[serde(default)]
    pub lookup: Option<String>,
}

impl MethodChange {
    /// An add, from the enrollment that would have been stored.
    pub fn add(e: &Enrollment) -> Self {
        let hint = match e.method {
            MethodKind::Email => mask_email(&e.value),
            MethodKind::Sms => mask_phone(&e.value),
            _ => e.value.clone(),
        };
        Self {
            remove: false,
            kind: e.method,
            hint,
            value: e.value.clone(),
            data: e.data.clone(),
            key_id: e.key_id.clone(),
            lookup: e.lookup.clone(),
        }
    }

    /// A new passkey credential for the user handle `handle`.
    pub fn passkey(cred: &PasskeyCredential, handle: &str) -> Self {
        Self {
            remove: false,
            kind: MethodKind::Passkey,
            hint: format!("passkey \"{}\"", cred.label),
            value: String::new(),
            data: serde_json::to_vec(&[cred]).unwrap_or_default(),
            key_id: String::new(),
            lookup: Some(handle.to_owned()),
        }
    }

    pub fn remove(e: &Enrollment, hint: String) -> Self {
        Self {
            remove: true,
            kind: e.method,
            hint,
            value: String::new(),
            data: Vec::new(),
            key_id: String::new(),
            lookup: None,
        }
    }

    /// `add:totp`, `remove:email`: the audit's word for it (never a value).
    pub fn word(&self) -> String {
        let op = if self.remove { "remove" } else { "add" };
        format!("{op}:{}", self.kind.as_str())
    }
}

fn passkey_count(n: usize) -> String {
    if n == 1 {
        "1 passkey".to_owned()
    } else {
        format!("{n} passkeys")
    }
}

impl Engine {
    /// Does a method change of this (live) account wait for an approver? Privileged accounts,
    /// when their tier is served at all.
    pub(crate) fn needs_approval(&self, account: &Account) -> bool {
        self.inner.config.gates.privileged.is_some() && self.privileged(account)
    }

    /// File a proven method change for approval instead of applying it: the enrollment flow goes
    /// back to the methods page (a replayed submit loses the optimistic move and files nothing),
    /// the request is stored with the user as requester, the user's addresses are told. The
    /// entry point's ONE audit record becomes `approval` (`requested:add:totp; request:<id>`).
    pub(crate) async fn hold_method_change(
        &self,
        trail: &mut Trail,
        loaded: &Loaded,
        at: i64,
        account: &Account,
        change: MethodChange,
    ) -> EngineResult<EnrollOutcome> {
        let mut t = Trail::new(Operation::Approval);
        t.methods(&[change.kind.as_str()]);
        t.target(account);
        *trail = t;
        if self.inner.config.helpdesk.approver_groups.is_empty() {
            trail.note("no_approvers");
            return Err(EngineError::NoApprovers);
        }
        self.advance(loaded, &Step::SignedIn { at }).await?;
        let before = self.inner.store.enrollments(&account.guid).await?;
        let word = change.word();
        let (kind, remove) = (change.kind, change.remove);
        let what = format!(
            "a request to {} {} (request id {{id}}) waits for approval by your security team; \
             nothing changes until it is approved",
            if change.remove { "remove" } else { "add" },
            method_words(change.kind),
        );
        let (id, expires_at) = self
            .request_approval(
                &Agent::Operator(account),
                account,
                Requested::Method { change },
            )
            .await?;
        trail.note(&format!("requested:{word}; request:{id}"));
        let what = what.replace("{id}", &id);
        self.notify_method_change(&account.guid, Some(account), &before, &what, None)
            .await;
        Ok(EnrollOutcome::Pending {
            id,
            expires_at,
            kind,
            remove,
        })
    }

    /// Apply an approved change to the live account: an add is stored (its cool-down starts
    /// now), a removal deletes the method; the user is mailed at every address, naming the
    /// approver. Refused when the method may no longer be held or is gone already.
    pub(crate) async fn apply_method_change(
        &self,
        trail: &mut Trail,
        account: &Account,
        change: &MethodChange,
        approver: &str,
    ) -> EngineResult<()> {
        let user = account.guid;
        trail.methods(&[change.kind.as_str()]);
        let store = &self.inner.store;
        let before = store.enrollments(&user).await?;
        let words = method_words(change.kind);
        if change.remove {
            if !store.delete_enrollment(&user, change.kind).await? {
                trail.note("method_gone");
                return Err(EngineError::MethodUnavailable);
            }
            let what = format!("{words} was removed (approved by {approver})");
            self.notify_method_change(&user, Some(account), &before, &what, None)
                .await;
            return Ok(());
        }
        if !self.enrollable(account, change.kind) {
            trail.note("not_enrollable");
            return Err(EngineError::MethodUnavailable);
        }
        let mut e = Enrollment::contact(user, change.kind, &change.value, self.now());
        e.key_id.clone_from(&change.key_id);
        e.data.clone_from(&change.data);
        e.lookup.clone_from(&change.lookup);
        if change.kind == MethodKind::Passkey {
            let existing = before.iter().find(|e| e.method == MethodKind::Passkey);
            // The credential was made for this user handle; another one since cannot take it.
            if let (Some(have), Some(want)) =
                (existing.and_then(|x| x.lookup.as_ref()), &change.lookup)
                && have != want
            {
                trail.note("passkey_handle_changed");
                return Err(EngineError::MethodUnavailable);
            }
            let new: Vec<PasskeyCredential> =
                serde_json::from_slice(&change.data).unwrap_or_default();
            let mut creds = existing.map(Self::passkeys_of).unwrap_or_default();
            for c in new {
                creds.retain(|x| x.id != c.id);
                creds.push(c);
            }
            e.value = passkey_count(creds.len());
            e.data = serde_json::to_vec(&creds).unwrap_or_default();
        }
        store.upsert_enrollment(&e).await?;
        let what = format!("{words} was added (approved by {approver})");
        let to_new = (change.kind == MethodKind::Email).then_some(change.value.as_str());
        self.notify_method_change(&user, Some(account), &before, &what, to_new)
            .await;
        Ok(())
    }
}
