//! Rekey's breached-password sources: the two adapters of
//! [`rekey_core::breached::BreachedPasswords`].
//!
//! - [`RangeApi`]: an HIBP-style k-anonymity range endpoint (Pwned Passwords API v3,
//!   `GET {base}/range/{5 hex}`), always with `Add-Padding: true`; padding lines (count 0) are
//!   ignored.
//! - [`Sha1File`]: a local file in HIBP's downloadable "ordered by hash" format
//!   (`HEX40[:COUNT]` per line), searched by binary search over byte offsets on the blocking pool;
//!   never loaded into memory, reopened for every look-up (so a replaced file is picked up and a
//!   vanished one answers `Unavailable`).
//!
//! Both hash the password's UTF-8 bytes with SHA-1 (uppercase hex) in a buffer zeroed on drop.
//!
//! Architecture invariant: only the first five hex digits of a password's SHA-1 leave the process;
//! neither the password nor its full hash reaches a log, an error or a request (errors carry the
//! prefix at most; this crate logs nothing).
//!
//! Architecture invariant: TLS is rustls with ring only (no OpenSSL, no aws-lc); plain `http://`
//! is accepted for loopback hosts alone (tests).
//!
//! API boundary: [`RangeApi::new`], [`Sha1File::open`], [`SetupError`]; everything else is the
//! core port.

mod file;
mod hash;
mod range;

use std::path::PathBuf;

pub use file::Sha1File;
pub use range::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, RangeApi, RangeOptions};

/// Why a source could not be built. Found at start-up, never during a reset.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is unusable (`key` names it).
    #[error("RK-BREACH-101: {key}: {why}")]
    Config { key: &'static str, why: String },
    /// The TLS or HTTP client could not be built.
    #[error("RK-BREACH-102: TLS setup: {0}")]
    Tls(String),
    /// The breached-password file is missing, unreadable or not in the expected format.
    #[error("RK-BREACH-103: breached-password file {}: {why}", .path.display())]
    File { path: PathBuf, why: String },
}

impl SetupError {
    /// The stable code (`RK-BREACH-10N`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "RK-BREACH-101",
            Self::Tls(_) => "RK-BREACH-102",
            Self::File { .. } => "RK-BREACH-103",
        }
    }
}
