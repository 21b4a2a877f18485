//! Configuration: defaults → `rekey.toml` → `REKEY_*` environment (`__` separates levels, e.g.
//! `REKEY_DIRECTORY__POOL_SIZE=4`). Parsed once into a validated `Config`; errors name the key.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use rekey_directory::AdConfig;
use serde::Deserialize;

/// The config file format this build reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file; must be 1.
    pub version: u32,
    pub directory: AdConfig,
    #[serde(default)]
    pub tier: TierConfig,
    /// The portal (`rekey serve`); not needed by the admin commands.
    #[serde(default)]
    pub server: Option<ServerConfig>,
    #[serde(default)]
    pub store: Option<StoreConfig>,
    #[serde(default)]
    pub smtp: Option<rekey_notify::SmtpConfig>,
    #[serde(default)]
    pub scope: ScopeConfig,
    #[serde(default)]
    pub engine: EngineTunables,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080` (put TLS in front, or a reverse proxy).
    pub listen: String,
    /// The portal's public URL, used in mail links (never the request's Host header).
    pub public_base_url: String,
    #[serde(default = "default_org")]
    pub organisation: String,
    /// Reverse proxies whose X-Forwarded-For is trusted.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// File with 64 hex characters (32 bytes): the key that binds one-time codes. The same on
    /// every replica; never in the database.
    pub secret_key_file: std::path::PathBuf,
    #[serde(default = "default_deadline")]
    pub identify_deadline_ms: u64,
}

fn default_org() -> String {
    "Rekey".into()
}

fn default_deadline() -> u64 {
    400
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite:///var/lib/rekey/rekey.db` (default kind) or `postgres://user@host/db`.
    pub url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    /// DNs of groups whose (transitive) members may use self-service. Empty: everyone.
    #[serde(default)]
    pub groups: Vec<String>,
    /// While set, only (transitive) members of this group may use self-service.
    #[serde(default)]
    pub pilot_group: Option<String>,
    #[serde(default)]
    pub allow_ous: Vec<String>,
    #[serde(default)]
    pub deny_ous: Vec<String>,
}

/// Optional engine tunables; defaults follow DESIGN.md's invariants.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineTunables {
    /// Seconds before a newly enrolled method may be used for a reset (default 86400).
    #[serde(default)]
    pub enroll_cooldown_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierConfig {
    /// DNs of groups whose (transitive) members count as privileged, on top of the built-in
    /// protected groups (Domain Admins, Enterprise Admins, Administrators, operators, …).
    #[serde(default)]
    pub protected_groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("RK-CFG-003: config file {0} not found (pass --config or set REKEY_CONFIG)")]
    Missing(String),
    #[error("RK-CFG-001: {0}")]
    Invalid(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing(path.display().to_string()));
        }
        Self::from_figment(Figment::new().merge(Toml::file_exact(path)))
    }

    fn from_figment(base: Figment) -> Result<Self, ConfigError> {
        // Only nested keys (REKEY_SECTION__KEY) and `version` are config; other REKEY_* variables
        // (REKEY_CONFIG, REKEY_LOG, the dev domain's REKEY_DEV_*) are not.
        let env = Env::prefixed("REKEY_")
            .split("__")
            .filter(|k| k.as_str().contains('.') || k.as_str() == "version");
        let config: Self = base
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if config.version != VERSION {
            return Err(ConfigError::Invalid(format!(
                "version: this Rekey reads config version {VERSION}, the file says {}",
                config.version
            )));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse inside figment's jail: the process environment is shared by parallel tests, and
    /// the jail serialises them and restores the environment afterwards.
    #[allow(clippy::result_large_err)] // figment's Jail API
    fn parse(toml: &str) -> Result<Config, ConfigError> {
        let mut out = None;
        figment::Jail::expect_with(|_| {
            out = Some(parse_here(toml));
            Ok(())
        });
        out.unwrap()
    }

    fn parse_here(toml: &str) -> Result<Config, ConfigError> {
        Config::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    const GOOD: &str = r#"
        version = 1
        [directory]
        urls = ["ldaps://dc1.corp.example.com"]
        ca_file = "/etc/rekey/ca.pem"
        bind_dn = "CN=svc-rekey,OU=Service,DC=corp,DC=example,DC=com"
        bind_password_file = "/etc/rekey/svc.pass"
    "#;

    #[test]
    fn good_file_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.directory.pool_size, 2);
        assert!(c.directory.history_on_reset);
        assert!(c.tier.protected_groups.is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        let typo = GOOD
            .replace("pool_size", "x")
            .replace("bind_dn", "bind_dnn");
        let err = parse(&typo).unwrap_err().to_string();
        assert!(err.contains("bind_dnn"), "{err}");
        let wrong_type = format!("{GOOD}\npool_size = \"many\"");
        let err = parse(&wrong_type).unwrap_err().to_string();
        assert!(err.contains("pool_size"), "{err}");
        let err = parse(&GOOD.replace("version = 1", "version = 7"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("version"), "{err}");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API
    fn environment_overrides_nested_keys_only() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REKEY_DIRECTORY__POOL_SIZE", "5");
            jail.set_env("REKEY_DEV_DIR", "/tmp/ignored");
            let c = parse_here(GOOD).map_err(|e| e.to_string())?;
            assert_eq!(c.directory.pool_size, 5);
            Ok(())
        });
    }
}
