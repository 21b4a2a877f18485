//! `[log]`, `[canary]`, `[reminders]`, `[doctor]`: running Rekey in production.

use std::path::PathBuf;

use serde::Deserialize;

/// How log lines are written (stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for a log shipper (journald, Vector, Fluent Bit).
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` (default) or `json`.
    #[serde(default)]
    pub format: LogFormat,
}

/// The writeback canary: a dedicated account reset on a schedule, each landing proven on every
/// DC by an LDAPS bind and a Kerberos AS exchange with the new password.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanarySection {
    #[serde(default)]
    pub enabled: bool,
    /// sAMAccountName of the canary account (in scope of the service account's delegation, in
    /// no privileged group, used for nothing else).
    #[serde(default)]
    pub user: Option<String>,
    /// Seconds between runs (default 300).
    #[serde(default = "default_canary_every")]
    pub every_secs: u64,
    /// Kerberos realm; default: the domain's DNS name from the base DN, upper-cased.
    #[serde(default)]
    pub realm: Option<String>,
    /// KDC port on every DC (default 88).
    #[serde(default = "default_kdc_port")]
    pub kdc_port: u16,
    /// How long one check (bind, AS exchange) may take, in milliseconds (default 10000).
    #[serde(default = "default_canary_timeout")]
    pub timeout_ms: u64,
    /// How long to wait for the new password to replicate to each other DC (default 300).
    #[serde(default = "default_replication_wait")]
    pub replication_wait_secs: u64,
}

fn default_canary_every() -> u64 {
    300
}
fn default_kdc_port() -> u16 {
    88
}
fn default_canary_timeout() -> u64 {
    10_000
}
fn default_replication_wait() -> u64 {
    300
}

impl Default for CanarySection {
    fn default() -> Self {
        Self {
            enabled: false,
            user: None,
            every_secs: default_canary_every(),
            realm: None,
            kdc_port: default_kdc_port(),
            timeout_ms: default_canary_timeout(),
            replication_wait_secs: default_replication_wait(),
        }
    }
}

/// Password expiry reminders by mail, with a link to the change page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersSection {
    #[serde(default)]
    pub enabled: bool,
    /// Mail users whose password expires within this many days (default 14).
    #[serde(default = "default_remind_days")]
    pub within_days: u32,
    /// Seconds between runs of the job in `rekey serve` (default 86400).
    #[serde(default = "default_remind_every")]
    pub every_secs: u64,
}

fn default_remind_days() -> u32 {
    14
}
fn default_remind_every() -> u64 {
    86_400
}

impl Default for RemindersSection {
    fn default() -> Self {
        Self {
            enabled: false,
            within_days: default_remind_days(),
            every_secs: default_remind_every(),
        }
    }
}

/// Another system that resets passwords in some of the same OUs (e.g. Entra SSPR with password
/// writeback): two reset authorities split policy and audit (the seed's pattern C).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherAuthority {
    /// What it is, e.g. "Entra SSPR writeback".
    pub name: String,
    /// The OUs (DNs) whose accounts it can reset.
    #[serde(default)]
    pub ous: Vec<String>,
    /// The stated boundary between the two (who uses which, and where its audit goes). Set, the
    /// doctor reports the overlap as known instead of warning.
    #[serde(default)]
    pub boundary: Option<String>,
}

/// What `rekey doctor` checks against.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorSection {
    /// Warn when a DC's certificate expires within this many days (default 30).
    #[serde(default = "default_cert_warn_days")]
    pub cert_warn_days: u32,
    /// Warn above this clock difference to a DC in seconds (default 60); Kerberos fails at 300.
    #[serde(default = "default_skew_warn")]
    pub clock_skew_warn_secs: u64,
    /// Other systems resetting passwords in the same OUs.
    #[serde(default)]
    pub other_reset_authorities: Vec<OtherAuthority>,
}

fn default_cert_warn_days() -> u32 {
    30
}
fn default_skew_warn() -> u64 {
    60
}

impl Default for DoctorSection {
    fn default() -> Self {
        Self {
            cert_warn_days: default_cert_warn_days(),
            clock_skew_warn_secs: default_skew_warn(),
            other_reset_authorities: Vec::new(),
        }
    }
}

/// TLS served by `rekey serve` itself (`[server] tls_cert_file` / `tls_key_file`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}
