//! The notification port: email now, SMS later.
//!
//! API boundary: `rekey-notify` implements `Mailer` over SMTP (lettre).

use crate::landing::BoxFuture;

/// A plain-text email. Bodies may carry a one-time code: implementations never log them.
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("body", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The relay could not be reached or refused us temporarily: nothing was sent.
    #[error("RK-MAIL-001: mail relay unavailable: {0}")]
    Unavailable(String),
    /// The relay refused this message or recipient permanently.
    #[error("RK-MAIL-002: mail refused: {0}")]
    Refused(String),
    #[error("RK-MAIL-003: invalid address: {0}")]
    Address(String),
}

pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, mail: &'a Email) -> BoxFuture<'a, Result<(), NotifyError>>;
}
