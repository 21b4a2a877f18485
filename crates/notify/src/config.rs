//! Settings of the mail relay (the `[smtp]` table of `rekey.toml`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::SetupError;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext. Meant for a relay on the same host; Rekey warns when the host is not loopback
    /// and refuses to send credentials over it.
    None,
    /// Plaintext greeting, then `STARTTLS` is required (port 587 by default). A relay that does
    /// not offer it is an error, never a silent downgrade.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465 by default).
    Tls,
}

impl TlsMode {
    /// The usual port for this mode: 25, 587 or 465.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::None => 25,
            Self::Starttls => 587,
            Self::Tls => 465,
        }
    }
}

/// The mail relay Rekey submits to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host name (checked against its certificate) or IP address.
    pub host: String,
    /// Relay port; by default 25, 587 or 465 according to `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `"none"`, `"starttls"` (default) or `"tls"`.
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM file with the CA(s) to trust for the relay's certificate. When absent, the system's
    /// trust store is used.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user name; needs `password_file`.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the SMTP AUTH password (one line).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The sender, e.g. `"Rekey <rekey@corp.example.com>"`; its domain also names Message-IDs.
    pub from: String,
    /// Upper bound for one send, from connecting to the relay's final answer.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// The validated, loaded settings the mailer is built from.
pub(crate) struct Checked {
    pub from: Mailbox,
    pub port: u16,
    pub timeout: Duration,
    pub credentials: Option<(String, String)>,
}

impl SmtpConfig {
    /// A config with defaults for everything but the essentials.
    #[must_use]
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: None,
            tls: TlsMode::default(),
            ca_file: None,
            username: None,
            password_file: None,
            from: from.into(),
            timeout_ms: default_timeout_ms(),
        }
    }

    /// The port in use: `port`, else the default of the TLS mode.
    #[must_use]
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    /// Whether `host` is this machine (`localhost` or a loopback address).
    #[must_use]
    pub fn host_is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// Check the settings and load the password.
    pub(crate) fn check(&self) -> Result<Checked, SetupError> {
        let bad = |key: &'static str, why: String| SetupError::Config { key, why };
        let host = self.host.trim();
        if host.is_empty() || host.contains(['/', ' ', '@']) || host.contains("://") {
            return Err(bad(
                "smtp.host",
                format!("{:?} is not a host name or IP address", self.host),
            ));
        }
        if self.port == Some(0) {
            return Err(bad("smtp.port", "must be between 1 and 65535".into()));
        }
        if self.timeout_ms == 0 || self.timeout_ms > 300_000 {
            return Err(bad(
                "smtp.timeout_ms",
                "must be between 1 and 300000 (5 minutes)".into(),
            ));
        }
        let from: Mailbox = self.from.parse().map_err(|e| {
            bad(
                "smtp.from",
                format!(
                    "{:?} is not a mailbox like \"Rekey <rekey@corp.example.com>\": {e}",
                    self.from
                ),
            )
        })?;
        let credentials = match (&self.username, &self.password_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "smtp.password_file",
                    "smtp.username is set, so the password file is needed too".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "smtp.username",
                    "smtp.password_file is set, so the user name is needed too".into(),
                ));
            }
            (Some(user), Some(path)) => {
                if user.trim().is_empty() {
                    return Err(bad("smtp.username", "must not be empty".into()));
                }
                let raw = std::fs::read_to_string(path)
                    .map_err(|e| bad("smtp.password_file", format!("{}: {e}", path.display())))?;
                let password = raw.trim_end_matches(['\r', '\n']).to_owned();
                if password.is_empty() {
                    return Err(bad(
                        "smtp.password_file",
                        format!("{}: the file is empty", path.display()),
                    ));
                }
                Some((user.clone(), password))
            }
        };
        if credentials.is_some() && self.tls == TlsMode::None && !self.host_is_loopback() {
            return Err(bad(
                "smtp.tls",
                format!(
                    "\"none\" would send the SMTP password in clear text to {host}; use \"starttls\" or \"tls\""
                ),
            ));
        }
        Ok(Checked {
            from,
            port: self.effective_port(),
            timeout: Duration::from_millis(self.timeout_ms),
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> Result<SmtpConfig, String> {
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    fn key_of(err: &SetupError) -> &'static str {
        match err {
            SetupError::Config { key, .. } => key,
            SetupError::Tls(_) => "tls",
        }
    }

    #[test]
    fn defaults_are_starttls_on_587_with_ten_seconds() {
        let c = parse(json!({
            "host": "smtp.corp.example.com",
            "from": "Rekey <rekey@corp.example.com>",
        }))
        .unwrap();
        assert_eq!(c.tls, TlsMode::Starttls);
        assert_eq!(c.effective_port(), 587);
        assert_eq!(c.timeout_ms, 10_000);
        let checked = c.check().unwrap();
        assert_eq!(checked.from.email.domain(), "corp.example.com");
        assert!(checked.credentials.is_none());
    }

    #[test]
    fn tls_modes_and_ports() {
        for (mode, port) in [("none", 25), ("starttls", 587), ("tls", 465)] {
            let c =
                parse(json!({"host": "localhost", "from": "rekey@corp.example.com", "tls": mode}))
                    .unwrap();
            assert_eq!(c.effective_port(), port, "{mode}");
        }
        let err =
            parse(json!({"host": "localhost", "from": "rekey@corp.example.com", "tls": "ssl"}))
                .unwrap_err();
        assert!(err.contains("unknown variant"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = parse(json!({
            "host": "localhost",
            "from": "rekey@corp.example.com",
            "passwrd_file": "/x",
        }))
        .unwrap_err();
        assert!(err.contains("unknown field `passwrd_file`"), "{err}");
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = SmtpConfig::new("smtp.corp.example.com", "not a mailbox");
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.from");
        c.from = "rekey@corp.example.com".into();
        c.host = "smtp://relay".into();
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.host");
        c.host = "relay".into();
        c.timeout_ms = 0;
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.timeout_ms");
        c.timeout_ms = 1_000;
        c.port = Some(0);
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.port");
        c.port = None;
        c.username = Some("svc-rekey".into());
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.password_file");
        c.password_file = Some("/nonexistent/rekey-smtp.pass".into());
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.password_file");
        c.username = None;
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.username");
    }

    #[test]
    fn password_file_is_read_and_plaintext_auth_to_a_remote_host_refused() {
        let path = std::env::temp_dir().join(format!("rekey-notify-pass-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut c = SmtpConfig::new("relay.corp.example.com", "rekey@corp.example.com");
        c.username = Some("svc-rekey".into());
        c.password_file = Some(path.clone());
        let creds = c.check().unwrap().credentials.unwrap();
        assert_eq!(creds, ("svc-rekey".to_owned(), "s3cret".to_owned()));
        c.tls = TlsMode::None;
        assert_eq!(key_of(&c.check().err().unwrap()), "smtp.tls");
        c.host = "127.0.0.1".into();
        assert!(
            c.check().is_ok(),
            "a loopback relay may take AUTH in plaintext"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
        ] {
            assert!(SmtpConfig::new(host, "a@b.c").host_is_loopback(), "{host}");
        }
        for host in [
            "relay.corp.example.com",
            "10.0.0.1",
            "localhost.evil.example",
        ] {
            assert!(!SmtpConfig::new(host, "a@b.c").host_is_loopback(), "{host}");
        }
    }
}
