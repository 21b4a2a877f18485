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

/// A text message. The body may carry a one-time code: implementations never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sms {
    /// E.164: `+` and 8–15 digits, checked against the country allow-list before it gets here.
    pub to: String,
    pub body: String,
}

impl std::fmt::Debug for Sms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("to", &crate::mask::mask_phone(&self.to))
            .field("body", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway could not be reached, timed out, or failed (5xx): nothing is known to have
    /// been sent; worth retrying.
    #[error("RK-SMS-001: SMS gateway unavailable: {0}")]
    Unavailable(String),
    /// The gateway asks us to slow down (HTTP 429); worth retrying later.
    #[error("RK-SMS-003: SMS gateway throttled: {0}")]
    Throttled(String),
    /// The gateway refused this message or number for good (4xx other than 429).
    #[error("RK-SMS-002: SMS refused: {0}")]
    Refused(String),
}

/// The SMS port. API boundary: `rekey-sms` implements it over a Twilio-style HTTP messages API.
pub trait SmsSender: Send + Sync {
    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<(), SmsError>>;
}
