//! Rekey's notifier: plain-text mail to users over SMTP.
//!
//! API boundary: [`SmtpMailer`] implements `rekey_core::notify::Mailer`; nothing else in Rekey
//! knows SMTP. [`mask_email`] makes the masked contact hints a page may show (`j***@e***.com`).
//!
//! Architecture invariant: message bodies carry one-time codes and are never logged, not even at
//! trace level (lettre's own `tracing` feature stays off: it logs every line sent to the relay).
//! Recipients appear in logs by domain only.
//!
//! With the `test-support` feature, [`testing`] offers a real SMTP server (Debian's
//! `python3-aiosmtpd`) that other crates' tests can send to and read back from.

mod config;
mod smtp;
#[cfg(feature = "test-support")]
pub mod testing;

pub use config::{SmtpConfig, TlsMode};
pub use rekey_core::mask::mask_email;
pub use smtp::SmtpMailer;

/// A setting that keeps the mailer from being built; names the config key.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is missing or wrong: `key` is its path in `rekey.toml` (e.g. `smtp.from`).
    #[error("RK-CFG-001: {key}: {why}")]
    Config {
        /// The config key, e.g. `smtp.ca_file`.
        key: &'static str,
        /// What is wrong with it, for the operator.
        why: String,
    },
    /// The TLS client could not be set up.
    #[error("RK-CFG-002: TLS setup failed: {0}")]
    Tls(String),
}
