//! The storage port: flows, enrollments, challenges, rate-limit counters, the audit chain.
//!
//! API boundary: `rekey-store` implements `Store` on SQLite and PostgreSQL with identical
//! behaviour; replicas share one database, so every counter and every consumption is atomic in
//! the database, never in process memory. Times are Unix seconds supplied by the caller.
//!
//! Expiry boundary, for every record with an `expires_at`: it is live while `now < expires_at`
//! and gone from `now == expires_at` on. The in-memory fake (`fakes::MemStore`) and the SQL store
//! pass one contract suite (`rekey-store`'s tests), so they cannot drift.

use serde::{Deserialize, Serialize};

use crate::account::Guid;
use crate::audit::{AuditEvent, AuditRecord};
use crate::landing::BoxFuture;

/// Seconds since the Unix epoch (the engine's clock, passed in).
pub type UnixTime = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowKind {
    Reset,
    Unlock,
    Change,
    Enroll,
    /// Not a flow but what one left: the per-zone result page of a finished reset, updated by
    /// the outbox worker while a zone is pending or queued.
    Receipt,
    /// Not a flow either: holds a helpdesk one-time code for its user until used or expired.
    Helpdesk,
    /// A helpdesk console session (an operator signed in).
    Console,
    /// A pending helpdesk approval (and the index of pending approvals).
    Approval,
}

impl FlowKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Unlock => "unlock",
            Self::Change => "change",
            Self::Enroll => "enroll",
            Self::Receipt => "receipt",
            Self::Helpdesk => "helpdesk",
            Self::Console => "console",
            Self::Approval => "approval",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Reset,
            Self::Unlock,
            Self::Change,
            Self::Enroll,
            Self::Receipt,
            Self::Helpdesk,
            Self::Console,
            Self::Approval,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A server-side flow. The browser holds only `id` (in a cookie); everything else lives here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// Opaque, 256-bit random, URL-safe.
    pub id: String,
    pub kind: FlowKind,
    /// `None` for a decoy flow (unknown or ineligible account: same pages, nothing behind them).
    pub user: Option<Guid>,
    /// The engine's state, serialized (JSON). The store does not interpret it.
    pub state: String,
    /// Incremented by every update; an update succeeds only from the version it read.
    pub version: i64,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A verification method a user enrolled. Helpdesk codes are issued, not enrolled, so they are
/// not here (see `crate::method::Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    Email,
    Sms,
    Totp,
    Passkey,
    Questions,
}

impl MethodKind {
    pub const ALL: [Self; 5] = [
        Self::Email,
        Self::Sms,
        Self::Totp,
        Self::Passkey,
        Self::Questions,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Totp => "totp",
            Self::Passkey => "passkey",
            Self::Questions => "questions",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An enrolled method, keyed by the account's objectGUID (names change; GUIDs do not) and the
/// method: one enrollment per method and user (several passkeys live in one enrollment's data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    pub user: Guid,
    pub method: MethodKind,
    /// What may be shown, masked: the email address, the phone number (E.164); a label for
    /// the others.
    pub value: String,
    /// The method's material: sealed (AES-256-GCM) when `key_id` is not empty — a TOTP seed,
    /// the questions' Argon2id hashes — or public data (passkey credentials). Empty for email
    /// and SMS.
    pub data: Vec<u8>,
    /// The id of the key `data` is sealed under; empty when it is not sealed.
    pub key_id: String,
    /// A second key to find the enrollment by, unique per method: a passkey's user handle (a
    /// discoverable credential names its user by it, not by a user name).
    pub lookup: Option<String>,
    /// When the method was confirmed. It serves a reset only after the cool-down.
    pub verified_at: UnixTime,
    /// When it last served as proof (reset, unlock, enrollment step-up).
    pub last_used_at: Option<UnixTime>,
}

impl Enrollment {
    /// A confirmed method with nothing sealed and no lookup key (email, SMS).
    #[must_use]
    pub fn contact(user: Guid, method: MethodKind, value: &str, verified_at: UnixTime) -> Self {
        Self {
            user,
            method,
            value: value.to_owned(),
            data: Vec::new(),
            key_id: String::new(),
            lookup: None,
            verified_at,
            last_used_at: None,
        }
    }
}

/// An outstanding one-time code. Only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    pub flow_id: String,
    pub user: Guid,
    /// What the code is for (e.g. `reset:email`, `enroll:email`): a code is valid for one purpose.
    pub purpose: String,
    /// HMAC-SHA-256 of the code bound to flow, user and purpose.
    pub code_hash: Vec<u8>,
    pub expires_at: UnixTime,
    pub failed_attempts: u32,
}

/// What an outbox item carries (the payload's format is the engine's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxKind {
    /// An email (one-time code or notice), sealed with AES-256-GCM by the engine.
    Mail,
    /// A later landing zone's write that failed after the first zone landed, retried until it
    /// lands or its window closes (sealed: it carries the new password).
    Landing,
    /// Watching for a password to arrive in a zone by synchronisation (no secret inside).
    Proof,
}

impl OutboxKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Landing => "landing",
            Self::Proof => "proof",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Mail, Self::Landing, Self::Proof]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Work that must survive the request that created it (and a restart): sent by a worker, with
/// retries, never inside the request (invariant 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Opaque, random.
    pub id: String,
    pub kind: OutboxKind,
    /// Opaque to the store (the engine seals secrets such as codes before they get here).
    pub payload: Vec<u8>,
    /// The account the work is for, if any (for the audit of a permanent failure).
    pub user: Option<Guid>,
    /// Not to be attempted before this time (a claim moves it forward by the lease).
    pub not_before: UnixTime,
    /// Given up after this time (a code that has expired is not worth sending).
    pub expires_at: UnixTime,
    /// Attempts started so far (a claim adds one).
    pub attempts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RK-STORE-001: database unavailable: {0}")]
    Unavailable(String),
    #[error("RK-STORE-002: database error: {0}")]
    Database(String),
    #[error("RK-STORE-003: stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence for the reset authority. Every method is atomic on its own.
pub trait Store: Send + Sync {
    /// Insert a new flow (`version` as given, normally 0).
    fn insert_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<()>>;
    /// The flow, unless missing or expired at `now`.
    fn flow<'a>(
        &'a self,
        id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<FlowRecord>>>;
    /// Store `flow.state`/`expires_at` with `version = flow.version + 1` iff the stored version is
    /// still `flow.version`. `false`: someone else moved the flow first (nothing written).
    fn update_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<bool>>;
    /// Delete a flow. `true` for exactly one of any number of concurrent callers.
    fn delete_flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>>;
    /// Delete every flow of a user (after a reset, invariant 8). Returns how many.
    fn delete_user_flows<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<u64>>;

    fn enrollments<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<Vec<Enrollment>>>;
    /// Insert or replace the user's enrollment of that method (every field as given). A `lookup`
    /// already used by another user's enrollment of the same method is a `Database` error.
    fn upsert_enrollment<'a>(
        &'a self,
        enrollment: &'a Enrollment,
    ) -> BoxFuture<'a, StoreResult<()>>;
    /// The enrollment of `method` whose `lookup` is `lookup`, if any.
    fn enrollment_by_lookup<'a>(
        &'a self,
        method: MethodKind,
        lookup: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<Enrollment>>>;
    /// Set `last_used_at` of the user's enrollment of `method`. `false` if there is none.
    fn touch_enrollment<'a>(
        &'a self,
        user: &'a Guid,
        method: MethodKind,
        at: UnixTime,
    ) -> BoxFuture<'a, StoreResult<bool>>;
    /// Every enrollment, ordered by user then method (for the enrollment report).
    fn all_enrollments(&self) -> BoxFuture<'_, StoreResult<Vec<Enrollment>>>;
    fn delete_enrollment<'a>(
        &'a self,
        user: &'a Guid,
        method: MethodKind,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Store a challenge, replacing any earlier one of the same flow and purpose (a new code
    /// invalidates the old one, invariant 2).
    fn put_challenge<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, StoreResult<()>>;
    /// The live challenge of a flow for a purpose, unless expired at `now`.
    fn challenge<'a>(
        &'a self,
        flow_id: &'a str,
        purpose: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<Challenge>>>;
    /// Add one failed attempt atomically; returns the new count, or `None` if the challenge is
    /// gone (consumed, replaced or deleted with its flow).
    fn fail_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<u32>>>;
    /// Delete the challenge. `true` for exactly one of any number of concurrent callers
    /// (invariant 7).
    fn consume_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>>;

    /// Record one event under `key` at `now`; return how many events of `key` fall in
    /// `(now - window, now]`, this one included. Atomic across replicas.
    fn hit<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>>;
    /// Count events of `key` in `(now - window, now]` without recording one.
    fn hits<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>>;
    /// Reserve one unit of a budget BEFORE the action it pays for (invariant 35): record one event
    /// under `key` at `now` iff fewer than `limit` events of `key` fall in `(now - window, now]`.
    /// `Some(id)`: reserved (the event counts like any `hit`); `None`: the budget is spent and
    /// nothing was recorded. Atomic across replicas: of 30 concurrent callers with `limit` 3,
    /// exactly 3 get `Some`.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Option<i64>>>;
    /// Give a reserved unit back (the action it paid for turned out harmless). `true` if the
    /// reservation `id` of `key` existed and is now removed.
    fn release<'a>(&'a self, key: &'a str, id: i64) -> BoxFuture<'a, StoreResult<bool>>;
    /// Lock `key` until `until` (keeps the later of an existing lock and this one).
    fn lock<'a>(&'a self, key: &'a str, until: UnixTime) -> BoxFuture<'a, StoreResult<()>>;
    /// When the lock on `key` ends, if it is locked at `now`.
    fn locked_until<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<UnixTime>>>;

    /// Append an event to the audit chain: the store assigns the next `seq` and the hash
    /// (`audit::chain_hash` over the previous record's hash) in one transaction, so concurrent
    /// appends from several replicas still form one unbroken chain.
    fn append_audit<'a>(&'a self, event: &'a AuditEvent)
    -> BoxFuture<'a, StoreResult<AuditRecord>>;
    /// Queue an item (its `attempts` as given, normally 0).
    fn enqueue<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, StoreResult<()>>;
    /// Claim up to `limit` items with `not_before <= now`, oldest first (in enqueue order): each claimed item's
    /// `not_before` moves to `now + lease` and `attempts` grows by one, atomically, so another
    /// worker or replica does not take it while this one works on it. Returns the claimed items
    /// as updated. Expired items are claimed too (the caller gives them up and records why).
    fn claim<'a>(
        &'a self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<OutboxItem>>>;
    /// Remove a claimed item (done, or given up) iff it still carries the `attempts` of the
    /// claim: a worker whose lease ran out (another claimed the item since) changes nothing, so
    /// a mail is never handled twice. `true` for exactly one of concurrent callers.
    fn finish<'a>(&'a self, id: &'a str, attempts: u32) -> BoxFuture<'a, StoreResult<bool>>;
    /// Schedule the next attempt of a claimed item at `at`, fenced like `finish`. `true` if done.
    fn retry<'a>(
        &'a self,
        id: &'a str,
        attempts: u32,
        at: UnixTime,
    ) -> BoxFuture<'a, StoreResult<bool>>;

    /// Records with `seq > after`, in order, at most `limit`.
    fn audit_after<'a>(
        &'a self,
        after: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<AuditRecord>>>;

    /// The newest `limit` events whose target is `target_guid` (as the events hold it) with
    /// `at_ms >= since_ms`, newest first: what the helpdesk console shows of a user. The default
    /// walks the chain in pages; an adapter with an index should answer it with one query.
    fn recent_audit_of<'a>(
        &'a self,
        target_guid: &'a str,
        since_ms: i64,
        limit: usize,
    ) -> BoxFuture<'a, StoreResult<Vec<AuditEvent>>> {
        Box::pin(async move {
            let mut found = std::collections::VecDeque::new();
            let mut after = 0;
            loop {
                let page = self.audit_after(after, 1000).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in &page {
                    if let Some(e) = crate::audit_export::decode(r)
                        && e.target_guid.as_deref() == Some(target_guid)
                        && e.at_ms >= since_ms
                    {
                        found.push_back(e);
                        if found.len() > limit {
                            found.pop_front();
                        }
                    }
                }
            }
            Ok(found.into_iter().rev().collect())
        })
    }
}
