//! The audit model: one event per operation, hash-chained (invariant 31).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// The end user (self-service), identified only by what the target is.
    #[default]
    User,
    /// An operator of the helpdesk console, by sAMAccountName.
    Helpdesk(String),
    /// An operator of the CLI, by OS user name.
    Admin(String),
    /// An integration of the JSON API (chat bot, ticketing), by its `[api]` client name.
    Api(String),
    System,
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Identify,
    Verify,
    Reset,
    Unlock,
    Change,
    Enroll,
    MethodRemoved,
    /// An operator issued a helpdesk one-time code to a caller they verified.
    HelpdeskCode,
    /// A notification (code or notice) the outbox could not deliver.
    Notify,
    /// The proof that a password written in one zone arrived in another by synchronisation
    /// (Entra password hash sync), or that it did not within the deadline.
    SyncProof,
    /// The writeback canary reset its dedicated account (the landing is proven per DC after).
    Canary,
    /// A password expiry reminder was mailed.
    Reminder,
    /// An operator signed in to the helpdesk console (password, then a second factor).
    HelpdeskSignIn,
    /// "User must change password at next logon" was set (`pwdLastSet = 0`).
    MustChange,
    /// A helpdesk action on a sensitive account was requested, approved or rejected.
    Approval,
    /// An integration of the JSON API looked a user up for the helpdesk (state, masked
    /// methods, recent events). The console's look-ups are not recorded.
    Lookup,
}

impl Operation {
    /// Its serialised name (`reset`, `method_removed`, …): the metric label and the export's.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identify => "identify",
            Self::Verify => "verify",
            Self::Reset => "reset",
            Self::Unlock => "unlock",
            Self::Change => "change",
            Self::Enroll => "enroll",
            Self::MethodRemoved => "method_removed",
            Self::HelpdeskCode => "helpdesk_code",
            Self::Notify => "notify",
            Self::SyncProof => "sync_proof",
            Self::Canary => "canary",
            Self::Reminder => "reminder",
            Self::HelpdeskSignIn => "helpdesk_sign_in",
            Self::MustChange => "must_change",
            Self::Approval => "approval",
            Self::Lookup => "lookup",
        }
    }
}

/// One landing zone's result for an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneResult {
    pub zone: String,
    /// `engine::ZoneState::as_str`: `landed`, `rejected`, `failed` or `indeterminate`; for a
    /// later zone also `absent` (no account there), `queued` (retried from the outbox),
    /// `pending` (arrives by sync), `synced` and `not_synced`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A few words more (e.g. `synced after 94 s`, `sessions revoked`, `outbox retry 2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the audit remembers of an operation. Never a password, code, answer or token (30).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The id the user saw on the page.
    pub support_id: String,
    pub actor: Actor,
    pub operation: Operation,
    /// `ok`, `failed`, `partial` (some landing zones only) or `decoy` (identify for an account
    /// that gets no code, invariant 9).
    pub result: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub target_guid: Option<String>,
    pub target_sam: Option<String>,
    pub methods: Vec<String>,
    pub zones: Vec<ZoneResult>,
    pub error_code: Option<String>,
    /// Why, in a word or two (`unknown`, `budget`, `decoy:not_enrolled`, `code_sent`): never a
    /// secret. Absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    /// The canonical bytes that are hashed: JSON with fields in declaration order.
    #[must_use]
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    /// `AuditEvent::canonical()` as stored.
    pub body: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// `SHA-256(prev_hash || seq as 8 bytes big-endian || body)`.
#[must_use]
pub fn chain_hash(prev: &[u8; 32], seq: i64, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body.as_bytes());
    h.finalize().into()
}

/// Where a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("record {seq}: sequence gap (expected {expected})")]
    Gap { seq: i64, expected: i64 },
    #[error("record {seq}: previous-hash link broken")]
    Link { seq: i64 },
    #[error("record {seq}: content does not match its hash (edited)")]
    Edited { seq: i64 },
}

/// Verify records in order, continuing from `(prev_seq, prev_hash)` (`(0, GENESIS)` at the start).
/// Returns the last `(seq, hash)` to continue from.
pub fn verify<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    mut prev: (i64, [u8; 32]),
) -> Result<(i64, [u8; 32]), ChainBreak> {
    for r in records {
        if r.seq != prev.0 + 1 {
            return Err(ChainBreak::Gap {
                seq: r.seq,
                expected: prev.0 + 1,
            });
        }
        if r.prev_hash != prev.1 {
            return Err(ChainBreak::Link { seq: r.seq });
        }
        if chain_hash(&r.prev_hash, r.seq, &r.body) != r.hash {
            return Err(ChainBreak::Edited { seq: r.seq });
        }
        prev = (r.seq, r.hash);
    }
    Ok(prev)
}

/// A valid chain of `n` records whose bodies are `body(seq)` (tests).
#[cfg(test)]
pub(crate) fn test_chain(n: i64, body: impl Fn(i64) -> String) -> Vec<AuditRecord> {
    let mut prev = GENESIS;
    (1..=n)
        .map(|seq| {
            let body = body(seq);
            let hash = chain_hash(&prev, seq, &body);
            let r = AuditRecord {
                seq,
                body,
                prev_hash: prev,
                hash,
            };
            prev = hash;
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        test_chain(n, |seq| format!("{{\"n\":{seq}}}"))
    }

    #[test]
    fn verify_detects_edits_gaps_and_relinks() {
        let good = chain(5);
        assert_eq!(verify(&good, (0, GENESIS)).unwrap().0, 5);
        let mut edited = good.clone();
        edited[2].body = "{\"n\":99}".into();
        assert_eq!(
            verify(&edited, (0, GENESIS)),
            Err(ChainBreak::Edited { seq: 3 })
        );
        let mut gap = good.clone();
        gap.remove(1);
        assert_eq!(
            verify(&gap, (0, GENESIS)),
            Err(ChainBreak::Gap {
                seq: 3,
                expected: 2
            })
        );
        // Re-hashing an edited record without fixing the next link is still caught.
        let mut relinked = good.clone();
        relinked[2].body = "{\"n\":99}".into();
        relinked[2].hash = chain_hash(&relinked[2].prev_hash, 3, &relinked[2].body);
        assert_eq!(
            verify(&relinked, (0, GENESIS)),
            Err(ChainBreak::Link { seq: 4 })
        );
    }
}
