//! The ActiveDirectory landing zone and directory reader.
//!
//! API boundary: `ActiveDirectory` implements `rekey_core::{Directory, LandingZone}`. Only this
//! crate knows LDAP. Architecture invariant: no "accept any certificate" option exists; plaintext
//! LDAP needs `allow_plaintext` and logs a warning at every start.

pub mod acl;
mod ad;
mod canary;
mod config;
mod entry;
pub mod escape;
mod expiry;
mod mapping;
mod pool;
pub mod probe;
mod telemetry;
mod tls;
mod write;

pub use ad::ActiveDirectory;
pub use config::AdConfig;
pub use expiry::Expiring;

/// Why the landing zone could not be set up. Each names the config key or the DC concerned.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("RK-CFG-001: {key}: {why}")]
    Config { key: &'static str, why: String },
    #[error("RK-CFG-002: TLS setup failed: {0}")]
    Tls(String),
    #[error("RK-DIR-020: {0}")]
    Bind(String),
    #[error("RK-DIR-010: no DC reachable: {0}")]
    Directory(String),
}
