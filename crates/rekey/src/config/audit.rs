//! `[audit]`: signed checkpoints of the audit chain (`crate::audit_chain`) and `[audit.forward]`,
//! the continuous forwarder to a syslog receiver (`crate::forward`).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The Ed25519 checkpoint key: its 32-byte seed as 64 hex digits, readable by the service
    /// only (`rekey audit keygen PATH` makes one). Without it no checkpoints are written, and a
    /// truncated tail of the chain cannot be detected.
    #[serde(default)]
    pub checkpoint_key_file: Option<PathBuf>,
    /// Seconds between checkpoints of the chain's head written by `rekey serve` (default 3600).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every_secs: u64,
    /// Forward every record to a syslog receiver as it is written.
    #[serde(default)]
    pub forward: Option<ForwardSection>,
}

/// How the forwarder reaches its receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TLS (RFC 5425 style: octet-counted messages in a TLS stream), the receiver's certificate
    /// checked against `ca_file` and `server_name`. The default.
    #[default]
    Tls,
    /// Plain TCP (RFC 6587 octet counting): only on a network nobody else can read or write.
    Tcp,
}

/// What each forwarded message's MSG part holds (the structured data is the same for both).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardFormat {
    /// RFC 5424 with every field in the `rekey@32473` structured data, MSG a short summary.
    #[default]
    Syslog,
    /// The same, with the record's ArcSight CEF line as MSG.
    Cef,
}

/// `[audit.forward]`: the continuous forwarder (`crate::forward`). It runs when `target` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// `host:port` of the RFC 5424 receiver (`[v6]:port` for an IPv6 address). Unset: no
    /// forwarding.
    #[serde(default)]
    pub target: Option<String>,
    /// `tls` (default) or `tcp`.
    #[serde(default)]
    pub transport: Transport,
    /// PEM file with the CA certificate(s) the receiver's certificate must chain to (required for
    /// `tls`; there is no "accept any certificate").
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The name the receiver's certificate must carry (default: the host of `target`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Mutual TLS: this client's certificate chain (PEM), with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// Mutual TLS: the private key (PEM) of `client_cert_file`, readable by the service only.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
    /// `syslog` (default) or `cef` (the CEF line as MSG).
    #[serde(default)]
    pub format: ForwardFormat,
    /// Syslog facility by name (default `authpriv`): `auth`, `authpriv`, `daemon`, `user`,
    /// `local0` … `local7`.
    #[serde(default = "default_facility")]
    pub facility: String,
    /// The APP-NAME of every message (default `rekey`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// The HOSTNAME of every message (default: this machine's host name). Also names this
    /// instance when several replicas share a database: one of them forwards at a time.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The name the cursor is stored under (default: `target`). Change `target` but keep the
    /// name to move to a new address of the same receiver without sending everything again.
    #[serde(default)]
    pub name: Option<String>,
    /// How often to look for new records, in milliseconds (default 1000).
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
    /// At most this many records per write (default 200).
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// The longest wait between reconnection attempts, in seconds (default 60; the wait starts
    /// at 1 s and doubles).
    #[serde(default = "default_retry_max")]
    pub retry_max_secs: u64,
    /// Connecting, the TLS handshake and each write must finish within this many seconds
    /// (default 10).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            checkpoint_key_file: None,
            checkpoint_every_secs: default_checkpoint_every(),
            forward: None,
        }
    }
}

impl ForwardSection {
    /// A section sending to `target` with every other key at its default.
    #[must_use]
    pub fn to(target: &str) -> Self {
        Self {
            target: Some(target.to_owned()),
            transport: Transport::default(),
            ca_file: None,
            server_name: None,
            client_cert_file: None,
            client_key_file: None,
            format: ForwardFormat::default(),
            facility: default_facility(),
            app_name: default_app_name(),
            hostname: None,
            name: None,
            poll_ms: default_poll_ms(),
            batch: default_batch(),
            retry_max_secs: default_retry_max(),
            timeout_secs: default_timeout(),
        }
    }
}

fn default_checkpoint_every() -> u64 {
    3600
}

fn default_facility() -> String {
    "authpriv".into()
}

fn default_app_name() -> String {
    "rekey".into()
}

fn default_poll_ms() -> u64 {
    1000
}

fn default_batch() -> u32 {
    200
}

fn default_retry_max() -> u64 {
    60
}

fn default_timeout() -> u64 {
    10
}
