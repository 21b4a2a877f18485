//! Signed checkpoints of the audit chain, and a verifier that names the first thing wrong.
//!
//! The hash chain (`audit.rs`) proves that no record inside it was edited, removed or moved, but
//! not that records were not cut off its end: a chain with its tail deleted is still a valid
//! chain. A *checkpoint* closes that hole: an Ed25519 signature by a key that never enters the
//! database over
//!
//! ```text
//! rekey-audit-checkpoint-v1\n{seq}\n{hash as 64 lower-case hex digits}\n{at_ms}
//! ```
//!
//! (no trailing newline; `seq` and `at_ms` in decimal), where `hash` is the stored hash of record
//! `seq` and `at_ms` the signing time in milliseconds since the Unix epoch. A verifier that holds
//! the public key knows the chain reached `seq` with that hash at that time: a shorter chain was
//! truncated, another hash at `seq` means the chain was rewritten.
//!
//! Key id = the first 8 bytes of SHA-256 of the 32-byte public key, in hex.
//!
//! Pure: no I/O. The binary reads key files and walks the store (`rekey::audit_chain`).

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::audit::{AuditRecord, GENESIS, chain_hash};

mod time;
pub use time::{date_ms, utc};

/// The first line of the signed message (its version).
pub const DOMAIN: &str = "rekey-audit-checkpoint-v1";

/// How far from its position a moved record's original sequence number is looked for.
const MOVED_WINDOW: i64 = 1024;

/// A signed statement "record `seq` had hash `hash` at `at_ms`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: [u8; 32],
    pub at_ms: i64,
    /// [`key_id`] of the signing key.
    pub key_id: String,
    pub signature: [u8; 64],
}

/// The canonical byte string a checkpoint signs (see the module docs).
#[must_use]
pub fn message(seq: i64, hash: &[u8; 32], at_ms: i64) -> String {
    format!("{DOMAIN}\n{seq}\n{}\n{at_ms}", to_hex(hash))
}

/// First 8 bytes of SHA-256 of the public key, hex (16 digits).
#[must_use]
pub fn key_id(public: &[u8; 32]) -> String {
    let digest: [u8; 32] = Sha256::digest(public).into();
    to_hex(&digest[..8])
}

/// Lower-case hex.
#[must_use]
pub fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Exactly 64 hex digits (surrounding whitespace ignored) → 32 bytes.
#[must_use]
pub fn from_hex32(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let digit = |c: u8| char::from(c).to_digit(16);
        let (hi, lo) = (digit(pair[0])?, digit(pair[1])?);
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// A key file's content or a public key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("expected exactly 64 hex digits")]
    NotHex,
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
}

/// The private checkpoint key (an Ed25519 seed). Its `Debug` shows the key id only; the seed is
/// zeroed on drop.
pub struct CheckpointKey(SigningKey);

impl CheckpointKey {
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// A key file's content: the seed as 64 hex digits.
    ///
    /// # Errors
    /// `NotHex` for anything else.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut seed = from_hex32(text).ok_or(KeyError::NotHex)?;
        let key = Self::from_seed(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(key)
    }

    #[must_use]
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Sign "record `seq` has hash `hash`" at `at_ms`.
    #[must_use]
    pub fn sign(&self, seq: i64, hash: [u8; 32], at_ms: i64) -> Checkpoint {
        let signature = self
            .0
            .sign(message(seq, &hash, at_ms).as_bytes())
            .to_bytes();
        Checkpoint {
            seq,
            hash,
            at_ms,
            key_id: self.public().key_id(),
            signature,
        }
    }
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("key_id", &self.public().key_id())
            .finish_non_exhaustive()
    }
}

/// A public checkpoint key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// 64 hex digits (what `rekey audit keygen` prints).
    ///
    /// # Errors
    /// `NotHex`, or `BadPublicKey` for bytes that are not a curve point.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = from_hex32(text).ok_or(KeyError::NotHex)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| KeyError::BadPublicKey)
    }

    #[must_use]
    pub fn to_hex(&self) -> String {
        to_hex(self.0.as_bytes())
    }

    #[must_use]
    pub fn key_id(&self) -> String {
        key_id(self.0.as_bytes())
    }

    /// Whether `cp` carries this key's valid (strict) signature over its fields.
    #[must_use]
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let sig = Signature::from_bytes(&cp.signature);
        let msg = message(cp.seq, &cp.hash, cp.at_ms);
        self.0.verify_strict(msg.as_bytes(), &sig).is_ok()
    }
}

/// The first thing wrong with an audit chain or its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Records `first..=last` are absent: the chain jumps to `next`.
    Missing {
        first: i64,
        last: i64,
        next: i64,
        next_support_id: Option<String>,
    },
    /// The body no longer matches the record's own hash.
    Edited {
        seq: i64,
        support_id: Option<String>,
    },
    /// The record's hash was computed for position `written_as`: records were reordered, or
    /// removed / inserted before it and the rest renumbered.
    Moved {
        seq: i64,
        written_as: i64,
        support_id: Option<String>,
    },
    /// Record `seq` is well formed and links to its predecessor, but the record after it was
    /// written at `seq`: `seq` was inserted.
    Inserted {
        seq: i64,
        support_id: Option<String>,
    },
    /// Well formed, but its previous-hash link does not name record `seq - 1` as stored: that
    /// record was replaced and re-hashed, or this one was inserted.
    Relinked {
        seq: i64,
        support_id: Option<String>,
    },
    /// Neither its hash nor its link fits anywhere near: replaced by a forged record.
    Forged {
        seq: i64,
        support_id: Option<String>,
    },
    /// A valid checkpoint says record `seq` had another hash: the chain was rewritten.
    CheckpointMismatch {
        seq: i64,
        support_id: Option<String>,
        checkpoint_id: i64,
        checkpoint_at_ms: i64,
    },
    /// The chain ends at `head` (0: empty) before the newest valid checkpoint's record.
    Truncated {
        head: i64,
        checkpoint_seq: i64,
        checkpoint_id: i64,
        checkpoint_at_ms: i64,
    },
    /// A checkpoint names a trusted key but its signature does not verify.
    BadSignature {
        checkpoint_id: i64,
        seq: i64,
        key_id: String,
    },
    /// A checkpoint names a key that is not trusted here.
    UnknownKey {
        checkpoint_id: i64,
        seq: i64,
        key_id: String,
    },
}

impl Problem {
    /// The record the problem concerns (for ordering).
    #[must_use]
    pub fn seq(&self) -> i64 {
        match self {
            Self::Missing { first: seq, .. }
            | Self::Edited { seq, .. }
            | Self::Moved { seq, .. }
            | Self::Inserted { seq, .. }
            | Self::Relinked { seq, .. }
            | Self::Forged { seq, .. }
            | Self::CheckpointMismatch { seq, .. }
            | Self::BadSignature { seq, .. }
            | Self::UnknownKey { seq, .. } => *seq,
            Self::Truncated { head, .. } => head + 1,
        }
    }
}

struct Sid<'a>(&'a Option<String>);

impl fmt::Display for Sid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, " (support id {id})"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing {
                first,
                last,
                next,
                next_support_id,
            } => {
                let what = if first == last {
                    format!("record {first} is missing")
                } else {
                    format!("records {first}..{last} are missing")
                };
                write!(
                    f,
                    "{what} (deleted): the chain jumps to record {next}{}",
                    Sid(next_support_id)
                )
            }
            Self::Edited { seq, support_id } => write!(
                f,
                "record {seq}{}: content does not match its hash (edited)",
                Sid(support_id)
            ),
            Self::Moved {
                seq,
                written_as,
                support_id,
            } => {
                let why = if written_as > seq {
                    "records were reordered, or a record before it was removed and the rest renumbered"
                } else {
                    "records were reordered, or a record was inserted before it"
                };
                write!(
                    f,
                    "record {seq}{} is out of place: it was written as record {written_as} ({why})",
                    Sid(support_id)
                )
            }
            Self::Inserted { seq, support_id } => write!(
                f,
                "record {seq}{} was inserted: the record after it was written as record {seq}",
                Sid(support_id)
            ),
            Self::Relinked { seq, support_id } => write!(
                f,
                "record {seq}{}: previous-hash link broken (record {} was replaced and re-hashed, \
                 or this record was inserted)",
                Sid(support_id),
                seq - 1
            ),
            Self::Forged { seq, support_id } => write!(
                f,
                "record {seq}{}: matches neither its hash nor its link (replaced or forged)",
                Sid(support_id)
            ),
            Self::CheckpointMismatch {
                seq,
                support_id,
                checkpoint_id,
                checkpoint_at_ms,
            } => write!(
                f,
                "record {seq}{}: differs from signed checkpoint #{checkpoint_id} of {} \
                 (the chain was rewritten)",
                Sid(support_id),
                utc(*checkpoint_at_ms)
            ),
            Self::Truncated {
                head,
                checkpoint_seq,
                checkpoint_id,
                checkpoint_at_ms,
            } => write!(
                f,
                "tail truncated: the chain ends at record {head} but signed checkpoint \
                 #{checkpoint_id} of {} covers record {checkpoint_seq} (records {}..{checkpoint_seq} \
                 were removed)",
                utc(*checkpoint_at_ms),
                head + 1
            ),
            Self::BadSignature {
                checkpoint_id,
                seq,
                key_id,
            } => write!(
                f,
                "checkpoint #{checkpoint_id} (record {seq}, key id {key_id}): bad signature \
                 (forged or altered)"
            ),
            Self::UnknownKey {
                checkpoint_id,
                seq,
                key_id,
            } => write!(
                f,
                "checkpoint #{checkpoint_id} (record {seq}): signed by untrusted key id {key_id} \
                 (forged, or verify with that key's --public-key)"
            ),
        }
    }
}

/// `support_id` of a record body, if it parses.
#[must_use]
pub fn support_id(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("support_id")?
        .as_str()
        .map(str::to_owned)
}

/// Checkpoints whose signature verifies under one of `keys` (by id), and the problems of the
/// others. `checkpoints` are `(id, checkpoint)` as stored.
#[must_use]
pub fn check_signatures(
    checkpoints: &[(i64, Checkpoint)],
    keys: &[PublicKey],
) -> (Vec<(i64, Checkpoint)>, Vec<Problem>) {
    let mut valid = Vec::new();
    let mut problems = Vec::new();
    for (id, cp) in checkpoints {
        match keys.iter().find(|k| k.key_id() == cp.key_id) {
            Some(k) if k.verifies(cp) => valid.push((*id, cp.clone())),
            Some(_) => problems.push(Problem::BadSignature {
                checkpoint_id: *id,
                seq: cp.seq,
                key_id: cp.key_id.clone(),
            }),
            None => problems.push(Problem::UnknownKey {
                checkpoint_id: *id,
                seq: cp.seq,
                key_id: cp.key_id.clone(),
            }),
        }
    }
    (valid, problems)
}

/// Walks a chain page by page (records in `seq` order) against valid checkpoints; stops at the
/// first break.
#[derive(Debug)]
pub struct Walker {
    prev: (i64, [u8; 32]),
    /// Support id of the last accepted record.
    last_support_id: Option<String>,
    /// Walking from genesis and no record seen yet: the first record may start after a pruned
    /// head if a valid checkpoint vouches for its predecessor.
    may_start_pruned: bool,
    /// Valid checkpoints by record: `(id, hash, at_ms)`.
    checkpoints: BTreeMap<i64, Vec<(i64, [u8; 32], i64)>>,
    problem: Option<Problem>,
}

impl Walker {
    /// From genesis, against `valid` checkpoints (see [`check_signatures`]). A chain whose
    /// first records were pruned (`rekey audit prune`) starts at record `k > 1`: accepted when a
    /// valid checkpoint of record `k - 1` has the first record's previous hash (the anchor
    /// `prune` signs), else records `1..k-1` are missing.
    #[must_use]
    pub fn new(valid: &[(i64, Checkpoint)]) -> Self {
        let mut w = Self::resume((0, GENESIS), valid);
        w.may_start_pruned = true;
        w
    }

    /// From a known `(seq, hash)` (a checkpoint's record, already checked).
    #[must_use]
    pub fn resume(prev: (i64, [u8; 32]), valid: &[(i64, Checkpoint)]) -> Self {
        let mut checkpoints: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        for (id, cp) in valid {
            checkpoints
                .entry(cp.seq)
                .or_default()
                .push((*id, cp.hash, cp.at_ms));
        }
        Self {
            prev,
            last_support_id: None,
            may_start_pruned: false,
            checkpoints,
            problem: None,
        }
    }

    /// The last accepted `(seq, hash)`.
    #[must_use]
    pub fn head(&self) -> (i64, [u8; 32]) {
        self.prev
    }

    /// Feed the next page. `Err` (and nothing more is accepted) at the first break.
    ///
    /// # Errors
    /// The problem found.
    pub fn page(&mut self, records: &[AuditRecord]) -> Result<(), Problem> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        for r in records {
            if let Err(p) = self.record(r) {
                self.problem = Some(p.clone());
                return Err(p);
            }
        }
        Ok(())
    }

    fn record(&mut self, r: &AuditRecord) -> Result<(), Problem> {
        if std::mem::take(&mut self.may_start_pruned)
            && r.seq > 1
            && self
                .checkpoints
                .get(&(r.seq - 1))
                .is_some_and(|cps| cps.iter().any(|(_, h, _)| *h == r.prev_hash))
        {
            self.prev = (r.seq - 1, r.prev_hash);
        }
        let (prev_seq, prev_hash) = self.prev;
        let sid = || support_id(&r.body);
        if r.seq != prev_seq + 1 {
            if r.seq <= prev_seq {
                return Err(Problem::Moved {
                    seq: r.seq,
                    written_as: r.seq,
                    support_id: sid(),
                });
            }
            return Err(Problem::Missing {
                first: prev_seq + 1,
                last: r.seq - 1,
                next: r.seq,
                next_support_id: sid(),
            });
        }
        let self_consistent = chain_hash(&r.prev_hash, r.seq, &r.body) == r.hash;
        if r.prev_hash != prev_hash {
            if self_consistent {
                return Err(Problem::Relinked {
                    seq: r.seq,
                    support_id: sid(),
                });
            }
            let lo = (r.seq - MOVED_WINDOW).max(1);
            let written_as = (lo..=r.seq + MOVED_WINDOW)
                .find(|&k| chain_hash(&r.prev_hash, k, &r.body) == r.hash);
            return Err(match written_as {
                Some(k) if k == prev_seq && prev_seq > 0 => Problem::Inserted {
                    seq: prev_seq,
                    support_id: self.last_support_id.clone(),
                },
                Some(k) => Problem::Moved {
                    seq: r.seq,
                    written_as: k,
                    support_id: sid(),
                },
                None => Problem::Forged {
                    seq: r.seq,
                    support_id: sid(),
                },
            });
        }
        if !self_consistent {
            return Err(Problem::Edited {
                seq: r.seq,
                support_id: sid(),
            });
        }
        if let Some(cps) = self.checkpoints.get(&r.seq)
            && let Some(&(id, _, at_ms)) = cps.iter().find(|(_, h, _)| *h != r.hash)
        {
            return Err(Problem::CheckpointMismatch {
                seq: r.seq,
                support_id: sid(),
                checkpoint_id: id,
                checkpoint_at_ms: at_ms,
            });
        }
        self.prev = (r.seq, r.hash);
        self.last_support_id = sid();
        Ok(())
    }

    /// After the last page: the newest valid checkpoint must not lie beyond the head.
    ///
    /// # Errors
    /// The break found earlier, or `Truncated`.
    pub fn finish(&self) -> Result<(i64, [u8; 32]), Problem> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        let head = self.prev.0;
        if let Some((&seq, cps)) = self.checkpoints.last_key_value()
            && seq > head
            && let Some(&(id, _, at_ms)) = cps.first()
        {
            return Err(Problem::Truncated {
                head,
                checkpoint_seq: seq,
                checkpoint_id: id,
                checkpoint_at_ms: at_ms,
            });
        }
        Ok(self.prev)
    }
}

#[cfg(test)]
mod tests;
