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

    fn parse(toml: &str) -> Result<Config, ConfigError> {
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
            let c = parse(GOOD).map_err(|e| e.to_string())?;
            assert_eq!(c.directory.pool_size, 5);
            Ok(())
        });
    }
}
