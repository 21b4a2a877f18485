//! Settings of the ActiveDirectory landing zone (the `[directory]` table of `rekey.toml`).

use std::path::PathBuf;
use std::time::Duration;

use rekey_core::Password;
use serde::Deserialize;

use crate::SetupError;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdConfig {
    /// DCs in order of preference, e.g. `["ldaps://dc1.corp.example.com"]`. Writes go to the PDC
    /// emulator first when it is one of them.
    pub urls: Vec<String>,
    /// PEM file with the CA(s) that issued the DCs' certificates. Required: AD's certificates come
    /// from an internal CA, and there is no "accept any certificate".
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The service account Rekey binds as (delegated Reset/Change Password, lockoutTime, pwdLastSet).
    pub bind_dn: String,
    /// File holding the service account's password (preferred: keeps it out of the environment).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// The password itself, e.g. from `REKEY_DIRECTORY__BIND_PASSWORD`.
    #[serde(default)]
    pub bind_password: Option<String>,
    /// Search base; by default the DC's `defaultNamingContext`.
    #[serde(default)]
    pub base_dn: Option<String>,
    /// Persistent connections per DC (each multiplexes many operations).
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "defaults::op_timeout_ms")]
    pub op_timeout_ms: u64,
    /// Lab only: allow `ldap://` without TLS. Rekey warns at every start.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Ask the DC to enforce password history on resets too (policy-hints control, sent
    /// non-critical: Windows Server 2012+ honours it, Samba ignores it).
    #[serde(default = "defaults::yes")]
    pub history_on_reset: bool,
}

/// Like the derived `Debug`, but the bind password is never printed (invariant 30).
impl std::fmt::Debug for AdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdConfig")
            .field("urls", &self.urls)
            .field("ca_file", &self.ca_file)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password_file", &self.bind_password_file)
            .field(
                "bind_password",
                &self.bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("base_dn", &self.base_dn)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("op_timeout_ms", &self.op_timeout_ms)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("history_on_reset", &self.history_on_reset)
            .finish()
    }
}

mod defaults {
    pub fn pool_size() -> usize {
        2
    }
    pub fn connect_timeout_ms() -> u64 {
        3_000
    }
    pub fn op_timeout_ms() -> u64 {
        15_000
    }
    pub fn yes() -> bool {
        true
    }
}

impl AdConfig {
    /// A config with defaults for everything but the essentials.
    #[must_use]
    pub fn new(urls: Vec<String>, bind_dn: impl Into<String>) -> Self {
        Self {
            urls,
            ca_file: None,
            bind_dn: bind_dn.into(),
            bind_password_file: None,
            bind_password: None,
            base_dn: None,
            pool_size: defaults::pool_size(),
            connect_timeout_ms: defaults::connect_timeout_ms(),
            op_timeout_ms: defaults::op_timeout_ms(),
            allow_plaintext: false,
            history_on_reset: true,
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.op_timeout_ms)
    }

    /// Check the settings and load the service account's password.
    pub(crate) fn validate(&self) -> Result<Password, SetupError> {
        let bad = |key: &'static str, why: String| SetupError::Config { key, why };
        if self.urls.is_empty() {
            return Err(bad("directory.urls", "list at least one DC".into()));
        }
        for url in &self.urls {
            match url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
                Some(s) if s == "ldaps" => {}
                Some(s) if s == "ldap" && self.allow_plaintext => {}
                Some(s) if s == "ldap" => {
                    return Err(bad(
                        "directory.urls",
                        format!(
                            "{url} is plaintext LDAP; use ldaps:// (or set directory.allow_plaintext = true in a lab)"
                        ),
                    ));
                }
                _ => {
                    return Err(bad(
                        "directory.urls",
                        format!("{url} is not an ldaps:// URL"),
                    ));
                }
            }
        }
        if self.pool_size == 0 || self.pool_size > 64 {
            return Err(bad(
                "directory.pool_size",
                "must be between 1 and 64".into(),
            ));
        }
        if self.bind_dn.trim().is_empty() {
            return Err(bad(
                "directory.bind_dn",
                "must name the service account".into(),
            ));
        }
        let password = match (&self.bind_password, &self.bind_password_file) {
            (Some(p), None) => Password::new(p.clone()),
            (None, Some(path)) => {
                let raw = std::fs::read_to_string(path).map_err(|e| {
                    bad(
                        "directory.bind_password_file",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                Password::new(raw.trim_end_matches(['\r', '\n']).to_owned())
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "directory.bind_password",
                    "set bind_password or bind_password_file, not both".into(),
                ));
            }
            (None, None) => {
                return Err(bad(
                    "directory.bind_password_file",
                    "the service account needs a password (bind_password_file or bind_password)"
                        .into(),
                ));
            }
        };
        // An empty simple bind is an anonymous bind that "succeeds" (invariant 22).
        if password.is_blank() {
            return Err(bad("directory.bind_password", "is empty".into()));
        }
        Ok(password)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_bind_password() {
        let mut c = super::AdConfig::new(vec!["ldaps://dc1".into()], "CN=svc");
        c.bind_password = Some("Sup3r-Secret!".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("Sup3r-Secret!"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("CN=svc"),
            "{shown}"
        );
    }
}
