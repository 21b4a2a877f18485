//! Settings of the SMS gateway (the `[sms]` table of `rekey.toml`, once the binary loads it).

use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::SetupError;

/// Twilio's REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";
/// Per message, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longer than this and the outbox would rather retry.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Twilio's API version, the first path segment.
const API_VERSION: &str = "2010-04-01";

/// How to reach the gateway and whom to send as. Build it with [`SmsConfig::new`]; fields
/// changed afterwards are checked again by [`crate::TwilioSms::new`].
#[derive(Clone)]
pub struct SmsConfig {
    /// `https://host[/path]` (Twilio: [`DEFAULT_BASE_URL`]); plain `http://` only for a loopback
    /// host.
    pub base_url: String,
    /// The account SID, in the path (Twilio's look like `AC` + 32 hex; any value other vendors
    /// use is accepted).
    pub account_sid: String,
    /// The Basic auth user name when it is not the account SID (an API key SID, `SK…`).
    pub username: Option<String>,
    /// The Basic auth password: the account's auth token or the API key's secret.
    pub auth_token: Zeroizing<String>,
    /// The sender number or alphanumeric sender ID (`From`); exactly one of this and
    /// `messaging_service_sid`.
    pub from: Option<String>,
    /// The Messaging Service that picks the sender (`MessagingServiceSid`, `MG…`).
    pub messaging_service_sid: Option<String>,
    /// The whole request, connecting included. Not zero, at most 5 minutes.
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), beside Mozilla's roots.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Whom a message is sent as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sender {
    From(String),
    Service(String),
}

impl Sender {
    /// The form field and its value.
    pub(crate) fn field(&self) -> (&'static str, &str) {
        match self {
            Self::From(v) => ("From", v),
            Self::Service(v) => ("MessagingServiceSid", v),
        }
    }
}

/// The checked settings the sender is built from.
pub(crate) struct Checked {
    pub(crate) base: rekey_https::Base,
    /// `{base}/2010-04-01/Accounts/{AccountSid}/Messages.json`.
    pub(crate) messages_url: reqwest::Url,
    pub(crate) username: String,
    pub(crate) sender: Sender,
}

fn bad(key: &'static str, why: impl Into<String>) -> SetupError {
    SetupError::Config {
        key,
        why: why.into(),
    }
}

/// Non-empty, no surrounding blanks, no control characters. Never quotes the value.
fn plain(key: &'static str, value: &str) -> Result<(), SetupError> {
    if value.is_empty() {
        return Err(bad(key, "is empty"));
    }
    if value.trim() != value {
        return Err(bad(key, "starts or ends with a blank"));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(key, "holds a control character"));
    }
    Ok(())
}

impl SmsConfig {
    /// Settings with the default timeout and no CA file, the account SID as user name; checked.
    ///
    /// # Errors
    /// [`SetupError::Config`] naming the first unusable `sms.*` key.
    pub fn new(
        base_url: impl Into<String>,
        account_sid: impl Into<String>,
        auth_token: Zeroizing<String>,
        from: Option<String>,
        messaging_service_sid: Option<String>,
    ) -> Result<Self, SetupError> {
        let config = Self {
            base_url: base_url.into(),
            account_sid: account_sid.into(),
            username: None,
            auth_token,
            from,
            messaging_service_sid,
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting but the CA file (read when the client is built).
    ///
    /// # Errors
    /// [`SetupError::Config`] naming the first unusable `sms.*` key.
    pub fn validate(&self) -> Result<(), SetupError> {
        self.check().map(|_| ())
    }

    pub(crate) fn check(&self) -> Result<Checked, SetupError> {
        let parsed = reqwest::Url::parse(self.base_url.trim())
            .map_err(|e| bad("sms.base_url", format!("not a URL: {e}")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Not quoted: the URL holds credentials.
            return Err(bad(
                "sms.base_url",
                "holds credentials: set sms.username and sms.auth_token instead",
            ));
        }
        let base =
            rekey_https::base(&self.base_url).map_err(|e| bad("sms.base_url", e.to_string()))?;

        plain("sms.account_sid", &self.account_sid)?;
        if self.account_sid.contains(['/', ' ']) {
            return Err(bad("sms.account_sid", "holds a '/' or a blank"));
        }
        let username = match &self.username {
            Some(user) => {
                plain("sms.username", user)?;
                if user.contains(':') {
                    return Err(bad(
                        "sms.username",
                        "holds a ':' (Basic auth cannot carry it)",
                    ));
                }
                user.clone()
            }
            None if self.account_sid.contains(':') => {
                return Err(bad(
                    "sms.account_sid",
                    "holds a ':', which Basic auth cannot carry: set sms.username",
                ));
            }
            None => self.account_sid.clone(),
        };
        if self.auth_token.is_empty() {
            return Err(bad("sms.auth_token", "is empty"));
        }
        if self.auth_token.chars().any(char::is_control) {
            return Err(bad("sms.auth_token", "holds a control character"));
        }

        let sender = match (&self.from, &self.messaging_service_sid) {
            (Some(from), None) => {
                plain("sms.from", from)?;
                Sender::From(from.clone())
            }
            (None, Some(service)) => {
                plain("sms.messaging_service_sid", service)?;
                Sender::Service(service.clone())
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "sms.from",
                    "set sms.from or sms.messaging_service_sid, not both",
                ));
            }
            (None, None) => {
                return Err(bad(
                    "sms.from",
                    "one of sms.from and sms.messaging_service_sid is required",
                ));
            }
        };

        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            return Err(bad(
                "sms.timeout",
                "must be more than zero and at most 5 minutes",
            ));
        }

        let mut messages_url = reqwest::Url::parse(&base.url)
            .map_err(|e| bad("sms.base_url", format!("not a URL: {e}")))?;
        messages_url
            .path_segments_mut()
            .map_err(|()| bad("sms.base_url", "cannot hold a path"))?
            .pop_if_empty()
            .extend([API_VERSION, "Accounts", &self.account_sid, "Messages.json"]);
        Ok(Checked {
            base,
            messages_url,
            username,
            sender,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const TOKEN: &str = "tok-4f1c9a";

    fn config(from: Option<&str>, service: Option<&str>) -> Result<SmsConfig, SetupError> {
        SmsConfig::new(
            "https://api.twilio.com/",
            "AC0123",
            Zeroizing::new(TOKEN.to_owned()),
            from.map(str::to_owned),
            service.map(str::to_owned),
        )
    }

    fn key(r: Result<impl Sized, SetupError>) -> &'static str {
        match r {
            Err(SetupError::Config { key, .. }) => key,
            Err(other) => panic!("{other}"),
            Ok(_) => "ok",
        }
    }

    #[test]
    fn exactly_one_sender() {
        let c = config(Some("+15005550006"), None).unwrap();
        assert_eq!(
            c.check().unwrap().sender,
            Sender::From("+15005550006".into())
        );
        let c = config(None, Some("MG0001")).unwrap();
        assert_eq!(c.check().unwrap().sender, Sender::Service("MG0001".into()));
        assert_eq!(key(config(Some("+1"), Some("MG0001"))), "sms.from");
        assert_eq!(key(config(None, None)), "sms.from");
        assert_eq!(key(config(Some(""), None)), "sms.from");
        assert_eq!(
            key(config(None, Some(" MG0001"))),
            "sms.messaging_service_sid"
        );
    }

    #[test]
    fn the_messages_url_and_the_user_name() {
        let mut c = config(Some("Rekey"), None).unwrap();
        let checked = c.check().unwrap();
        assert_eq!(
            checked.messages_url.as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123/Messages.json"
        );
        assert_eq!(checked.username, "AC0123");
        assert!(!checked.base.loopback);
        c.base_url = "http://127.0.0.1:8089/vendor/api/".into();
        c.username = Some("SK77".into());
        let checked = c.check().unwrap();
        assert_eq!(
            checked.messages_url.as_str(),
            "http://127.0.0.1:8089/vendor/api/2010-04-01/Accounts/AC0123/Messages.json"
        );
        assert_eq!(checked.username, "SK77");
        assert!(checked.base.loopback);
    }

    #[test]
    fn bad_settings_name_their_key() {
        let good = config(Some("Rekey"), None).unwrap();
        let with = |f: fn(&mut SmsConfig)| {
            let mut c = good.clone();
            f(&mut c);
            key(c.validate())
        };
        assert_eq!(with(|_| {}), "ok");
        assert_eq!(
            with(|c| c.base_url = "http://api.twilio.com".into()),
            "sms.base_url"
        );
        assert_eq!(with(|c| c.base_url = "not a url".into()), "sms.base_url");
        assert_eq!(with(|c| c.account_sid = String::new()), "sms.account_sid");
        assert_eq!(with(|c| c.account_sid = "AC/1".into()), "sms.account_sid");
        assert_eq!(with(|c| c.account_sid = "AC:1".into()), "sms.account_sid");
        assert_eq!(with(|c| c.username = Some("SK:1".into())), "sms.username");
        assert_eq!(with(|c| c.username = Some(String::new())), "sms.username");
        assert_eq!(
            with(|c| c.auth_token = Zeroizing::new(String::new())),
            "sms.auth_token"
        );
        assert_eq!(
            with(|c| c.auth_token = Zeroizing::new("a\r\nb".into())),
            "sms.auth_token"
        );
        assert_eq!(with(|c| c.timeout = Duration::ZERO), "sms.timeout");
        assert_eq!(
            with(|c| c.timeout = Duration::from_secs(301)),
            "sms.timeout"
        );
    }

    #[test]
    fn credentials_are_never_echoed() {
        let mut c = config(Some("Rekey"), None).unwrap();
        c.base_url = format!("https://AC0123:{TOKEN}@api.twilio.com");
        let e = c.validate().unwrap_err();
        assert_eq!(e.code(), "RK-SMS-101");
        assert!(!e.to_string().contains(TOKEN), "{e}");
        c.base_url = DEFAULT_BASE_URL.into();
        c.auth_token = Zeroizing::new(format!("{TOKEN}\n"));
        let e = c.validate().unwrap_err();
        assert!(!e.to_string().contains(TOKEN), "{e}");
        let shown = format!("{c:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
