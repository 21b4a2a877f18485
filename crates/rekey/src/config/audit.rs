//! `[audit]`: signed checkpoints of the audit chain (`crate::audit_chain`).

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

/// `[audit.forward]`: the continuous forwarder (`crate::forward`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// host:port of the RFC 5424 receiver.
    pub target: String,
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

fn default_checkpoint_every() -> u64 {
    3600
}
