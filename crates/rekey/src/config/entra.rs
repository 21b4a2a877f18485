//! `[entra]`: Entra ID (Microsoft 365) as a second landing zone after AD. Absent: AD only.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::ConfigError;

/// The app registration Rekey signs in as (client credentials) and how it matches users.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSection {
    /// Land passwords in Entra ID too (default false: AD only).
    #[serde(default)]
    pub enabled: bool,
    /// The tenant: its id (GUID) or a verified domain (`contoso.onmicrosoft.com`).
    #[serde(default)]
    pub tenant: Option<String>,
    /// The app registration's application (client) id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A file holding a client secret. Use this or `certificate_file` + `private_key_file`.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The certificate registered with the app (PEM); Rekey signs client assertions with its key.
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// The certificate's private key (PEM, PKCS#8).
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `PS256` (with `x5t#S256`, Microsoft's current recipe) or `RS256` (with `x5t`).
    #[serde(default = "default_alg")]
    pub assertion: String,
    /// The identity platform's base URL (national clouds differ).
    #[serde(default = "default_login")]
    pub login_base_url: String,
    /// Microsoft Graph's base URL (national clouds differ).
    #[serde(default = "default_graph")]
    pub graph_base_url: String,
    /// A CA file to trust besides Mozilla's roots (webpki-roots; e.g. a TLS-inspecting proxy).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The source anchor Entra Connect uses: `consistency_guid` (its default:
    /// mS-DS-ConsistencyGuid, objectGUID where that is empty) or `object_guid` (older installs).
    #[serde(default = "default_anchor")]
    pub anchor: String,
    /// Find cloud-only accounts by the AD account's userPrincipalName (default true).
    #[serde(default = "yes")]
    pub match_by_upn: bool,
    /// Refuse users holding an Entra directory role (default true: privileged, like AD's
    /// protected groups).
    #[serde(default = "yes")]
    pub refuse_directory_roles: bool,
    /// After a cloud write, sign the user out of existing sessions (`revokeSignInSessions`).
    #[serde(default)]
    pub revoke_sessions: bool,
    /// How long to wait for password hash sync to carry an AD reset to a synced user before
    /// reporting "not synced" (default 1800).
    #[serde(default)]
    pub sync_deadline_secs: Option<i64>,
    /// How often to look (default 10).
    #[serde(default)]
    pub sync_poll_secs: Option<i64>,
    /// How long a failed cloud write is retried from the outbox (default 3600). The new
    /// password stays sealed in the store at most this long.
    #[serde(default)]
    pub retry_window_secs: Option<i64>,
    /// Per request (default 10000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for EntraSection {
    /// What an `[entra]` section with no keys means (disabled).
    fn default() -> Self {
        Self {
            enabled: false,
            tenant: None,
            client_id: None,
            client_secret_file: None,
            certificate_file: None,
            private_key_file: None,
            assertion: default_alg(),
            login_base_url: default_login(),
            graph_base_url: default_graph(),
            ca_file: None,
            anchor: default_anchor(),
            match_by_upn: true,
            refuse_directory_roles: true,
            revoke_sessions: false,
            sync_deadline_secs: None,
            sync_poll_secs: None,
            retry_window_secs: None,
            timeout_ms: None,
        }
    }
}
fn default_alg() -> String {
    "PS256".into()
}
fn default_login() -> String {
    "https://login.microsoftonline.com".into()
}
fn default_graph() -> String {
    "https://graph.microsoft.com".into()
}
fn default_anchor() -> String {
    "consistency_guid".into()
}

fn key(key: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key,
        why: why.into(),
    }
}

fn read(k: &'static str, path: &std::path::Path) -> Result<Zeroizing<String>, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| key(k, format!("{}: {e}", path.display())))?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

impl EntraSection {
    /// The zone's configuration, with its credential read from disk.
    ///
    /// # Errors
    /// `ConfigError::Key` naming the `entra.*` key that cannot work.
    pub fn zone_config(&self) -> Result<rekey_entra::EntraConfig, ConfigError> {
        use rekey_entra::{Anchor, AssertionAlg, Credential};
        fn set(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        let tenant = set(self.tenant.as_deref())
            .ok_or_else(|| key("entra.tenant", "set the tenant id or domain"))?;
        let client_id = set(self.client_id.as_deref())
            .ok_or_else(|| key("entra.client_id", "set the app registration's client id"))?;
        let credential = match (
            &self.client_secret_file,
            &self.certificate_file,
            &self.private_key_file,
        ) {
            (Some(secret), None, None) => {
                let s = read("entra.client_secret_file", secret)?;
                if s.is_empty() {
                    return Err(key("entra.client_secret_file", "the file is empty"));
                }
                Credential::Secret(s)
            }
            (None, Some(cert), Some(private)) => Credential::Certificate {
                cert_pem: read("entra.certificate_file", cert)?.to_string(),
                key_pem: read("entra.private_key_file", private)?,
                alg: match self.assertion.as_str() {
                    "PS256" => AssertionAlg::Ps256,
                    "RS256" => AssertionAlg::Rs256,
                    other => {
                        return Err(key(
                            "entra.assertion",
                            format!("{other:?}: use PS256 or RS256"),
                        ));
                    }
                },
            },
            _ => {
                return Err(key(
                    "entra.client_secret_file",
                    "set client_secret_file, or certificate_file and private_key_file (not both)",
                ));
            }
        };
        let mut c = rekey_entra::EntraConfig::new(tenant, client_id, credential);
        c.login_base_url.clone_from(&self.login_base_url);
        c.graph_base_url.clone_from(&self.graph_base_url);
        c.ca_file.clone_from(&self.ca_file);
        c.anchor = match self.anchor.as_str() {
            "consistency_guid" => Anchor::ConsistencyGuid,
            "object_guid" => Anchor::ObjectGuid,
            other => {
                return Err(key(
                    "entra.anchor",
                    format!("{other:?}: use consistency_guid or object_guid"),
                ));
            }
        };
        c.match_by_upn = self.match_by_upn;
        c.refuse_directory_roles = self.refuse_directory_roles;
        c.revoke_sessions = self.revoke_sessions;
        if let Some(ms) = self.timeout_ms {
            c.timeout = Duration::from_millis(ms);
        }
        Ok(c)
    }

    /// The engine's timing for this zone's outbox work.
    ///
    /// # Errors
    /// `ConfigError::Key` for a non-positive duration.
    pub fn apply(&self, c: &mut rekey_core::engine::EngineConfig) -> Result<(), ConfigError> {
        for (k, v, field) in [
            (
                "entra.sync_deadline_secs",
                self.sync_deadline_secs,
                &mut c.sync_deadline,
            ),
            (
                "entra.sync_poll_secs",
                self.sync_poll_secs,
                &mut c.sync_poll,
            ),
            (
                "entra.retry_window_secs",
                self.retry_window_secs,
                &mut c.zone_retry_window,
            ),
        ] {
            match v {
                Some(v) if v < 1 => return Err(key(k, "must be positive")),
                Some(v) => *field = v,
                None => {}
            }
        }
        Ok(())
    }
}
