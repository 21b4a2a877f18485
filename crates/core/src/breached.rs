//! Known-breached passwords: a port, so the engine can refuse a password that appears in breach
//! corpora (an HIBP-style k-anonymity range API, or a local sorted SHA-1 file) before any zone
//! is written. Adapters hash; the engine only asks.

use crate::landing::BoxFuture;
use crate::secret::Password;

/// Why a breach lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreachError {
    /// The source could not be asked (range API down or slow, file unreadable): no verdict.
    #[error("RK-BREACH-001: breached-password source unavailable: {0}")]
    Unavailable(String),
}

/// A corpus of breached passwords.
pub trait BreachedPasswords: Send + Sync {
    /// How often `password` was seen in breaches: `Ok(Some(n))` (n ≥ 1; sources without counts
    /// say 1), `Ok(None)` if never. Only a hash prefix may leave the process (k-anonymity).
    fn times_seen<'a>(
        &'a self,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<u64>, BreachError>>;
}
