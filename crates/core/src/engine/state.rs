//! Flow state as stored (JSON in `FlowRecord::state`).

use serde::{Deserialize, Serialize};

use super::{Engine, EngineError, EngineResult};
use crate::account::Guid;
use crate::method::Method;
use crate::store::{FlowKind, FlowRecord, MethodKind};

/// The opaque id the browser holds (in a cookie, never in the URL or a form).
pub type FlowId = String;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(crate) enum Step {
    /// Reset/unlock, first gate: one code page for everyone, decoys included. `accept`: the
    /// codes this account's gate takes (the one sent by email or SMS, its app's, a helpdesk
    /// code), decided at identify; empty for a decoy.
    AwaitCode {
        attempts: u32,
        #[serde(default)]
        accept: Vec<Method>,
    },
    /// Reset/unlock, first gate by a discoverable passkey: no user name, so no user yet.
    PasskeyFirst {
        ceremony: Ceremony,
        #[serde(default)]
        attempts: u32,
    },
    /// Reset/unlock after a gate passed and another is needed, or enrollment's step-up (a
    /// method the user already has proves it is them): `pending` is the chosen method.
    Gate {
        passed: Vec<Method>,
        #[serde(default)]
        pending: Option<Pending>,
        attempts: u32,
        /// Enrollment only: when the directory sign-in happened.
        #[serde(default)]
        signed_in: Option<i64>,
    },
    /// Reset/unlock: the gates passed with these methods.
    Verified { methods: Vec<String> },
    /// Reset: a landing is in progress (claimed atomically; a second submit finds this).
    Landing,
    /// Enroll: signed in with directory credentials at `at` (and proved an existing method
    /// where one exists): the methods page.
    SignedIn { at: i64 },
    /// Enroll: a code was sent to `address` (email or phone) to confirm it.
    AwaitEnrollCode {
        at: i64,
        address: String,
        attempts: u32,
        #[serde(default = "email_kind")]
        kind: MethodKind,
    },
    /// Enroll: an authenticator app is being set up; the seed is sealed.
    TotpSetup {
        at: i64,
        sealed_seed: Vec<u8>,
        attempts: u32,
    },
    /// Enroll: a passkey is being registered for the user handle `handle` (hex).
    PasskeySetup {
        at: i64,
        ceremony: Ceremony,
        handle: String,
    },
    /// Helpdesk console: the operator (the flow's user) signed in at `at` and passed the second
    /// factor; `caller` is the user on the phone, once looked up.
    Console {
        at: i64,
        operator: String,
        #[serde(default)]
        caller: Option<Caller>,
    },
    /// Helpdesk over the JSON API: integration `client` (its `[api]` name) is verifying
    /// `caller` (the flow's user). Stored as a `FlowKind::Console` record — the helpdesk's kind —
    /// whose step tells it from a console session: neither takes the other's id. It ends
    /// when the code does, or `caller_ttl` after the caller was verified.
    Verification { client: String, caller: Caller },
}

/// The user a console session is working on: a code went to their enrolled address or phone;
/// the acts are open only from `verified_at` for `HelpdeskRules::caller_ttl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Caller {
    pub user: [u8; 16],
    pub sam: String,
    #[serde(default)]
    pub verified_at: Option<i64>,
    #[serde(default)]
    pub attempts: u32,
}

fn email_kind() -> MethodKind {
    MethodKind::Email
}

/// A ceremony kept in the flow: the options the page shows, the state only the server sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ceremony {
    pub options: String,
    pub state: String,
}

/// The method a gate waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Pending {
    /// A code was sent (email, SMS) or is read from the app (TOTP).
    Code {
        method: Method,
    },
    Passkey {
        ceremony: Ceremony,
    },
    Questions,
}

pub(crate) struct Loaded {
    pub record: FlowRecord,
    pub step: Step,
}

impl Loaded {
    pub fn user(&self) -> Option<&Guid> {
        self.record.user.as_ref()
    }
}

impl Engine {
    /// The store's key for a flow id: HMAC-SHA-256 under the server key. The id the cookie
    /// carries never reaches the database, so a database reader cannot take over a flow.
    pub(crate) fn flow_key(&self, id: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.inner.otp_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"rekey flow id v1\0");
        mac.update(id.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Create a flow; returns the id for the cookie (the store keeps only its `flow_key`).
    pub(crate) async fn new_flow(
        &self,
        kind: FlowKind,
        user: Option<Guid>,
        step: &Step,
    ) -> EngineResult<FlowId> {
        // A console session lives as long as the helpdesk rules say (short, never renewed).
        let ttl = match kind {
            FlowKind::Console => self.inner.config.helpdesk.session_ttl,
            _ => self.inner.config.flow_ttl,
        };
        self.new_flow_until(kind, user, step, self.now() + ttl)
            .await
    }

    /// Create a flow that ends at `expires_at` (Unix seconds).
    pub(crate) async fn new_flow_until(
        &self,
        kind: FlowKind,
        user: Option<Guid>,
        step: &Step,
        expires_at: i64,
    ) -> EngineResult<FlowId> {
        let now = self.now();
        let id = crate::clock::token(self.inner.random.as_ref(), 32);
        let record = FlowRecord {
            id: self.flow_key(&id),
            kind,
            user,
            state: serde_json::to_string(step).unwrap_or_default(),
            version: 0,
            created_at: now,
            expires_at,
        };
        self.inner.store.insert_flow(&record).await?;
        Ok(id)
    }

    /// Delete a flow by the id the browser holds. `true` for exactly one concurrent caller.
    pub(crate) async fn forget(&self, id: &str) -> EngineResult<bool> {
        Ok(self.inner.store.delete_flow(&self.flow_key(id)).await?)
    }

    pub(crate) async fn load(&self, id: &str, kinds: &[FlowKind]) -> EngineResult<Loaded> {
        let record = self
            .inner
            .store
            .flow(&self.flow_key(id), self.now())
            .await?
            .ok_or(EngineError::FlowExpired)?;
        if !kinds.contains(&record.kind) {
            return Err(EngineError::WrongStep);
        }
        let step = serde_json::from_str(&record.state).map_err(|_| EngineError::FlowExpired)?;
        Ok(Loaded { record, step })
    }

    /// Move a flow to `step` iff nobody else moved it since it was loaded.
    pub(crate) async fn advance(&self, loaded: &Loaded, step: &Step) -> EngineResult<()> {
        let mut record = loaded.record.clone();
        record.state = serde_json::to_string(step).unwrap_or_default();
        if self.inner.store.update_flow(&record).await? {
            Ok(())
        } else {
            Err(EngineError::WrongStep)
        }
    }
}
