//! Rekey's SMS sender: [`TwilioSms`] implements [`rekey_core::notify::SmsSender`] over Twilio's
//! documented Programmable Messaging REST API, which other vendors reuse:
//!
//! `POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, a form with `To`, `Body`
//! and `From` or `MessagingServiceSid`, HTTP Basic auth `AccountSid:AuthToken` (or an API key
//! `KeySid:KeySecret`, the account SID staying in the path). 2xx with a message resource
//! (`sid`, `status`) is success; the error envelope `{code, message, more_info, status}` is
//! mapped to [`SmsError`](rekey_core::notify::SmsError):
//!
//! | answer | error |
//! | --- | --- |
//! | 429 (Twilio code 20429) | `Throttled` |
//! | 5xx, no connection, timeout, a 2xx without a message resource | `Unavailable` |
//! | any other 4xx (21211 invalid `To`, 21610 unsubscribed, 20003 auth …) | `Refused` |
//!
//! Errors say "HTTP status, Twilio code: Twilio message", with the recipient masked and long
//! digit runs blanked out of the message.
//!
//! Architecture invariant: a message body (it carries a one-time code), the auth token and an
//! unmasked phone number never reach a log line or an error; numbers appear as
//! [`rekey_core::mask::mask_phone`] makes them. The token lives in a buffer zeroed on drop until
//! the Basic auth header (marked sensitive) is built.
//!
//! Architecture invariant: TLS is rustls with ring only (no OpenSSL, no aws-lc), through
//! `rekey-https`: Mozilla's roots plus an optional CA file; plain `http://` only to a loopback
//! host (the test double, `rekey-sms-double`). Nothing is retried here: the caller's outbox
//! decides.
//!
//! API boundary: [`SmsConfig`], [`TwilioSms::new`], [`SetupError`]; everything else is the core
//! port.

mod config;
mod twilio;

pub use config::{DEFAULT_BASE_URL, DEFAULT_TIMEOUT, SmsConfig};
pub use twilio::TwilioSms;

/// Why the sender could not be built. Found at start-up, never while sending.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is unusable (`key` names it, e.g. `sms.from`).
    #[error("RK-SMS-101: {key}: {why}")]
    Config { key: &'static str, why: String },
    /// The TLS or HTTP client could not be built.
    #[error("RK-SMS-102: TLS setup: {0}")]
    Tls(String),
}

impl SetupError {
    /// The stable code (`RK-SMS-10N`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "RK-SMS-101",
            Self::Tls(_) => "RK-SMS-102",
        }
    }
}
