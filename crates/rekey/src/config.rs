//! Configuration: defaults → `rekey.toml` → `REKEY_*` environment (`__` separates levels, e.g.
//! `REKEY_DIRECTORY__POOL_SIZE=4`). Parsed once into a `Config`; errors name the key.
//!
//! Parsing checks types and names only (unknown keys and unknown `REKEY_*` variables are errors),
//! so that `rekey config check` (`crate::check`) can report every section's values at once:
//! `EngineTunables::validate`, `read_secret_key`, `check::server`.

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
    #[serde(default)]
    pub passwords: PasswordsConfig,
    /// Entra ID (Microsoft 365) as a second landing zone; absent or not enabled: AD only.
    #[serde(default)]
    pub entra: Option<EntraSection>,
    /// How many gates each tier passes and which methods count.
    #[serde(default)]
    pub gates: methods::GatesSection,
    /// Passkeys (WebAuthn); absent: not offered.
    #[serde(default)]
    pub passkeys: Option<methods::PasskeysSection>,
    /// SMS codes through a Twilio-style API; absent: not offered.
    #[serde(default)]
    pub sms: Option<methods::SmsSection>,
    #[serde(default)]
    pub questions: methods::QuestionsSection,
    #[serde(default)]
    pub abuse: methods::AbuseSection,
    #[serde(default)]
    pub log: ops::LogSection,
    /// The writeback canary; absent or not enabled: none runs.
    #[serde(default)]
    pub canary: ops::CanarySection,
    /// Password expiry reminders; absent or not enabled: none are sent.
    #[serde(default)]
    pub reminders: ops::RemindersSection,
    #[serde(default)]
    pub doctor: ops::DoctorSection,
    /// Signed checkpoints of the audit chain.
    #[serde(default)]
    pub audit: audit::AuditSection,
    /// Bearer tokens of the integrations that may use the JSON API.
    #[serde(default)]
    pub api: api::ApiSection,
    /// The helpdesk console and approvals.
    #[serde(default)]
    pub helpdesk: helpdesk::HelpdeskSection,
    /// The keys that seal the secrets the store holds.
    #[serde(default)]
    pub secrets: SecretsSection,
}

/// `[secrets]`: the key-encryption keys of the secrets the store holds (TOTP seeds, question
/// hashes, queued messages), outside the database (invariant 29).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// A directory of key files, `<id>.key`, each 64 hex digits (mode 0600): the file whose id
    /// sorts last seals new secrets, every file opens what it sealed. `rekey admin rotate-key`
    /// adds a key (named by UTC time) and re-seals everything under it while the server runs;
    /// running servers pick new files up within seconds. The same files on every replica.
    /// Unset: secrets are sealed under a key derived from `server.secret_key_file`.
    #[serde(default)]
    pub key_dir: Option<std::path::PathBuf>,
}

impl Config {
    /// The `[entra]` section if it is enabled.
    #[must_use]
    pub fn entra(&self) -> Option<&EntraSection> {
        self.entra.as_ref().filter(|e| e.enabled)
    }
}

/// Passwords Rekey refuses in every landing zone, before any is written: evaluated like Entra's
/// banned-password check (normalised, one edit away, the user's and organisation's names; a
/// password needs 5 points).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordsConfig {
    /// Rekey's shipped list of banned base terms (password, welcome, seasons, keyboard walks, …).
    #[serde(default = "yes")]
    pub global_banned_list: bool,
    /// Your own banned terms (company, products, city): variants are caught by the evaluation,
    /// so list base words only. Terms shorter than 4 characters are ignored.
    #[serde(default)]
    pub banned_terms: Vec<String>,
    /// A file with more terms, one per line (`#` starts a comment).
    #[serde(default)]
    pub banned_terms_file: Option<std::path::PathBuf>,
    /// Refuse passwords seen in data breaches, asked of an HIBP-style k-anonymity range API at
    /// this base URL (only a 5-character SHA-1 prefix leaves the server), e.g.
    /// `https://api.pwnedpasswords.com`. Or use `breached_sha1_file`.
    #[serde(default)]
    pub breached_range_url: Option<String>,
    /// A local file of SHA-1 hashes sorted by hash (`HASH:COUNT` lines, HIBP's downloadable
    /// "ordered by hash" format): nothing leaves the server.
    #[serde(default)]
    pub breached_sha1_file: Option<std::path::PathBuf>,
    /// Refuse a password seen at least this often (default 1).
    #[serde(default)]
    pub breached_min_count: Option<u64>,
    /// When the source does not answer: refuse the password (true) or let it through with a
    /// note in the audit record (false, default).
    #[serde(default)]
    pub breached_fail_closed: bool,
    /// How long one range look-up may take (milliseconds, default 2000).
    #[serde(default)]
    pub breached_timeout_ms: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for PasswordsConfig {
    fn default() -> Self {
        Self {
            global_banned_list: true,
            banned_terms: Vec::new(),
            banned_terms_file: None,
            breached_range_url: None,
            breached_sha1_file: None,
            breached_min_count: None,
            breached_fail_closed: false,
            breached_timeout_ms: None,
        }
    }
}

impl PasswordsConfig {
    /// The banned list this section describes.
    ///
    /// # Errors
    /// `ConfigError::Key` when `banned_terms_file` cannot be read.
    pub fn banned_list(&self) -> Result<rekey_core::banned::BannedList, ConfigError> {
        let mut extra = self.banned_terms.clone();
        if let Some(path) = &self.banned_terms_file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Key {
                key: "passwords.banned_terms_file",
                why: format!("{}: {e}", path.display()),
            })?;
            extra.extend(
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
                    .filter(|l| !l.is_empty()),
            );
        }
        let base = if self.global_banned_list {
            rekey_core::banned::BannedList::global()
        } else {
            rekey_core::banned::BannedList::default()
        };
        Ok(base.with_custom(extra))
    }

    /// The breached-password source this section configures, if any.
    ///
    /// # Errors
    /// `ConfigError::Key` for both sources at once, or one that cannot be set up (a bad URL, a
    /// missing or malformed file).
    pub fn breached(
        &self,
    ) -> Result<Option<std::sync::Arc<dyn rekey_core::breached::BreachedPasswords>>, ConfigError>
    {
        let bad = |key: &'static str, why: String| ConfigError::Key { key, why };
        match (&self.breached_range_url, &self.breached_sha1_file) {
            (Some(_), Some(_)) => Err(bad(
                "passwords.breached_sha1_file",
                "set breached_range_url or breached_sha1_file, not both".into(),
            )),
            (Some(url), None) => {
                let mut opts = rekey_breach::RangeOptions {
                    base_url: url.clone(),
                    ..rekey_breach::RangeOptions::default()
                };
                if let Some(ms) = self.breached_timeout_ms {
                    opts.timeout = std::time::Duration::from_millis(ms);
                }
                let api = rekey_breach::RangeApi::new(&opts)
                    .map_err(|e| bad("passwords.breached_range_url", e.to_string()))?;
                Ok(Some(std::sync::Arc::new(api)))
            }
            (None, Some(path)) => {
                let file = rekey_breach::Sha1File::open(path)
                    .map_err(|e| bad("passwords.breached_sha1_file", e.to_string()))?;
                Ok(Some(std::sync::Arc::new(file)))
            }
            (None, None) => Ok(None),
        }
    }

    /// The engine's breach settings.
    pub fn apply(&self, c: &mut rekey_core::engine::EngineConfig) {
        if let Some(n) = self.breached_min_count {
            c.breached_min_count = n.max(1);
        }
        c.breached_fail_closed = self.breached_fail_closed;
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// IP address and port to listen on, e.g. `127.0.0.1:8080` (TLS in front: a reverse proxy).
    pub listen: String,
    /// The portal's public URL (`https://…`), used in mail links (never the request's Host header,
    /// invariant 16). `http://` only for localhost.
    pub public_base_url: String,
    /// The organisation's name on the pages and in mail.
    #[serde(default = "default_org")]
    pub organisation: String,
    /// Reverse proxies whose X-Forwarded-For is trusted.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// File with 64 hex characters (32 bytes): the key that binds one-time codes. The same on
    /// every replica; never in the database. Read it with [`read_secret_key`].
    pub secret_key_file: std::path::PathBuf,
    /// Every identify answer (`/reset`, `/unlock`) is released this long after the request
    /// arrived, whatever the account: unknown, out of scope, privileged, unenrolled or normal
    /// users get the same page at the same time (invariant 9). Must exceed the slowest directory
    /// look-up plus the code mail, or the slow path shows.
    #[serde(default = "default_identify_deadline")]
    pub identify_deadline_ms: u64,
    /// Every code post (`/…/code`) is answered at this fixed delay: a right code, a wrong one and
    /// a code for a locked flow take equally long (invariant 9).
    #[serde(default = "default_answer_deadline")]
    pub answer_deadline_ms: u64,
    /// `/change` and the enrollment sign-in are answered at this fixed delay: they bind to a DC,
    /// which takes longer for a real account than for an unknown one, so the answer waits for
    /// the slower case (invariant 9). Above a DC's usual bind/modify time under load.
    #[serde(default = "default_password_deadline")]
    pub password_deadline_ms: u64,
    /// PEM certificate chain: with `tls_key_file`, `rekey serve` speaks HTTPS itself (rustls),
    /// re-reading both files on SIGHUP or when they change.
    #[serde(default)]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key for `tls_cert_file` (mode 0600).
    #[serde(default)]
    pub tls_key_file: Option<std::path::PathBuf>,
    /// A second address for `/metrics`, `/healthz` and `/readyz` (e.g. `127.0.0.1:9464`), kept
    /// off the public listener. Unset: they are served on `listen`.
    #[serde(default)]
    pub ops_listen: Option<String>,
}

impl ServerConfig {
    /// Both TLS files, if `rekey serve` terminates TLS itself.
    ///
    /// # Errors
    /// `ConfigError::Key` when only one of the two is set.
    pub fn tls(&self) -> Result<Option<ops::TlsFiles>, ConfigError> {
        match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Ok(Some(ops::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::Key {
                key: "server.tls_key_file",
                why: "tls_cert_file is set: name its private key too".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Key {
                key: "server.tls_cert_file",
                why: "tls_key_file is set: name its certificate chain too".into(),
            }),
        }
    }
}

fn default_org() -> String {
    "Rekey".into()
}

fn default_identify_deadline() -> u64 {
    400
}

fn default_answer_deadline() -> u64 {
    400
}

fn default_password_deadline() -> u64 {
    1_500
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
    /// DN suffixes an account must be under (empty: anywhere).
    #[serde(default)]
    pub allow_ous: Vec<String>,
    /// DN suffixes whose accounts are excluded.
    #[serde(default)]
    pub deny_ous: Vec<String>,
}

/// Optional engine tunables; `None` keeps the engine's default
/// (`rekey_core::engine::EngineConfig::default()`, which follows DESIGN.md's invariants).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineTunables {
    /// How long a reset/unlock/enrollment flow lives without finishing (default 900).
    #[serde(default)]
    pub flow_ttl_secs: Option<i64>,
    /// How long a one-time code is valid (default 600; at most 600, invariant 2).
    #[serde(default)]
    pub code_ttl_secs: Option<i64>,
    /// Wrong answers per code before it is void (default 5; at most 5, invariant 3).
    #[serde(default)]
    pub max_code_attempts: Option<u32>,
    /// Failed verifications per user per hour before self-service locks (default 5; at most 5).
    #[serde(default)]
    pub max_failures_per_hour: Option<u32>,
    /// How long self-service stays locked for a user after that (default 86400: 24 h).
    #[serde(default)]
    pub lock_secs: Option<i64>,
    /// Seconds before a newly enrolled method may be used for a reset (default 86400).
    #[serde(default)]
    pub enroll_cooldown_secs: Option<i64>,
    /// How recent the enrollment sign-in must be to add a method (default 300).
    #[serde(default)]
    pub enroll_signin_ttl_secs: Option<i64>,
    /// Rekey's own budget of anonymous password attempts (change, enrollment sign-in) per
    /// account per lockout window, reserved before the DC is asked (default 3, invariant 35).
    #[serde(default)]
    pub change_failure_budget: Option<u32>,
    /// Rekey stops anonymous password attempts while the account's badPwdCount would pass the
    /// lockout threshold minus this margin (default 2; at least 1): the real user keeps two
    /// typos before AD locks them out, even right after an attack (invariant 35).
    #[serde(default)]
    pub lockout_margin: Option<u32>,
    /// Change / sign-in attempts per client IP per hour (default 30).
    #[serde(default)]
    pub per_ip_attempts_per_hour: Option<u32>,
    /// Emails per user per hour, codes and notices together (default 10).
    #[serde(default)]
    pub emails_per_user_per_hour: Option<u32>,
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
    /// A value that parsed but cannot work, naming its key (`server.secret_key_file`).
    #[error("RK-CFG-001: {key}: {why}")]
    Key { key: &'static str, why: String },
    /// `REKEY_*` variables that are no config key (one message per variable, `; `-separated).
    #[error("RK-CFG-004: {0}")]
    UnknownEnv(String),
    /// Stored secrets and key files do not match (`[secrets]`, `rekey admin rotate-key`).
    #[error("RK-KEY-001: {0}")]
    Keys(String),
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing(path.display().to_string()));
        }
        Self::from_figment(Figment::new().merge(Toml::file_exact(path)))
    }

    fn from_figment(base: Figment) -> Result<Self, ConfigError> {
        let names = std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned());
        check_environment(names)?;
        // What is left after the check above is config (or REKEY_CONFIG, REKEY_LOG, the dev
        // domain's REKEY_DEV_*, the tests' REKEY_TEST_*: not config, filtered out here).
        let env = Env::prefixed("REKEY_")
            .filter(|k| !env::not_config(&k.as_str().to_ascii_lowercase()))
            .split("__");
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

/// Every key of `rekey.toml` as a dotted path (`directory.pool_size`), tables included, read
/// from the config types themselves.
///
/// # Errors
/// Only if a config type cannot be traced (a custom `Deserialize` that needs real input); the
/// unit tests trace `Config`, so a build that passed them cannot fail here.
pub fn config_keys() -> Result<Vec<String>, ConfigError> {
    keys::trace::<Config>().map_err(|e| ConfigError::Invalid(format!("config keys: {e}")))
}

/// Refuse `REKEY_*` variables that would be silently ignored: a single `_` where `__` was meant,
/// a section or key that does not exist. Never prints a value (it may be a password).
fn check_environment(names: impl Iterator<Item = String>) -> Result<(), ConfigError> {
    let known = config_keys()?;
    let problems: Vec<String> = names
        .filter_map(|name| env::problem(&name, &known))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::UnknownEnv(problems.join("; ")))
    }
}

/// The key that binds one-time codes: exactly 64 hex digits (32 bytes) in `path`; surrounding
/// whitespace (a trailing newline) is ignored, nothing else is. Make one with
/// `openssl rand -hex 32 > /etc/rekey/otp.key`. Errors never echo the file's content.
///
/// # Errors
/// `ConfigError::Key` naming `server.secret_key_file` and the path.
pub fn read_secret_key(path: &Path) -> Result<[u8; 32], ConfigError> {
    let bad = |why: String| ConfigError::Key {
        key: "server.secret_key_file",
        why: format!("{}: {why}", path.display()),
    };
    let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
    let digits = raw.trim_ascii();
    let mut key = [0_u8; 32];
    if digits.is_empty() {
        return Err(bad(
            "the file is empty; it must hold 64 hex digits (32 random bytes), \
             e.g. from `openssl rand -hex 32`"
                .into(),
        ));
    }
    if digits.len() != 64 {
        return Err(bad(format!(
            "holds {} characters; it must hold exactly 64 hex digits (32 random bytes) and \
             nothing else, e.g. from `openssl rand -hex 32`",
            digits.len()
        )));
    }
    // hex's own error names the offending character; a key's characters are not for the log.
    hex::decode_to_slice(digits, &mut key).map_err(|_| {
        bad(
            "holds a character that is not a hex digit (0-9, a-f); it must hold exactly 64 \
             hex digits and nothing else, e.g. from `openssl rand -hex 32`"
                .into(),
        )
    })?;
    Ok(key)
}

impl EngineTunables {
    /// Set every configured tunable on the engine's config; `None` keeps the engine's default.
    pub fn apply(&self, c: &mut rekey_core::engine::EngineConfig) {
        let Self {
            flow_ttl_secs,
            code_ttl_secs,
            max_code_attempts,
            max_failures_per_hour,
            lock_secs,
            enroll_cooldown_secs,
            enroll_signin_ttl_secs,
            change_failure_budget,
            lockout_margin,
            per_ip_attempts_per_hour,
            emails_per_user_per_hour,
        } = *self;
        set(&mut c.flow_ttl, flow_ttl_secs);
        set(&mut c.code_ttl, code_ttl_secs);
        set(&mut c.max_code_attempts, max_code_attempts);
        set(&mut c.max_failures_per_hour, max_failures_per_hour);
        set(&mut c.lock_secs, lock_secs);
        set(&mut c.enroll_cooldown, enroll_cooldown_secs);
        set(&mut c.enroll_signin_ttl, enroll_signin_ttl_secs);
        set(&mut c.change_failure_budget, change_failure_budget);
        set(&mut c.lockout_margin, lockout_margin);
        set(&mut c.per_ip_attempts_per_hour, per_ip_attempts_per_hour);
        set(&mut c.emails_per_user_per_hour, emails_per_user_per_hour);
    }

    /// The bounds DESIGN.md sets (invariants 2, 3, 35) and the ones without which a flow cannot
    /// finish, checked on the effective values (configured or default).
    ///
    /// # Errors
    /// `ConfigError::Key` naming the first `engine.*` key out of bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut c = rekey_core::engine::EngineConfig::default();
        self.apply(&mut c);
        let bad = |key: &'static str, why: &str| {
            Err(ConfigError::Key {
                key,
                why: why.into(),
            })
        };
        if !(1..=600).contains(&c.code_ttl) {
            return bad(
                "engine.code_ttl_secs",
                "must be between 1 and 600: a code is valid 10 minutes at most (invariant 2)",
            );
        }
        if c.flow_ttl < c.code_ttl {
            return bad(
                "engine.flow_ttl_secs",
                "must be at least engine.code_ttl_secs: the flow must outlive its code",
            );
        }
        if !(1..=5).contains(&c.max_code_attempts) {
            return bad(
                "engine.max_code_attempts",
                "must be between 1 and 5 (invariant 3)",
            );
        }
        if !(1..=5).contains(&c.max_failures_per_hour) {
            return bad(
                "engine.max_failures_per_hour",
                "must be between 1 and 5 (invariant 3)",
            );
        }
        if c.lock_secs < 1 {
            return bad(
                "engine.lock_secs",
                "must be positive (the design says 86400)",
            );
        }
        if c.enroll_cooldown < 0 {
            return bad("engine.enroll_cooldown_secs", "must not be negative");
        }
        if c.enroll_signin_ttl < 1 {
            return bad("engine.enroll_signin_ttl_secs", "must be positive");
        }
        if c.change_failure_budget < 1 {
            return bad(
                "engine.change_failure_budget",
                "must be at least 1, or no one could change a password",
            );
        }
        if c.lockout_margin < 1 {
            return bad(
                "engine.lockout_margin",
                "must be at least 1: with 0 the portal's last attempt would lock the account \
                 (invariant 35)",
            );
        }
        if c.per_ip_attempts_per_hour < 1 {
            return bad("engine.per_ip_attempts_per_hour", "must be at least 1");
        }
        if c.emails_per_user_per_hour < 1 {
            return bad(
                "engine.emails_per_user_per_hour",
                "must be at least 1: codes go out by mail",
            );
        }
        Ok(())
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

pub mod api;
pub mod audit;
mod entra;
mod env;
pub mod helpdesk;
pub mod methods;
pub mod ops;

pub use entra::EntraSection;

mod keys;

#[cfg(test)]
mod tests;
