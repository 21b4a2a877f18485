//! Rekey's EntraId landing zone: Microsoft Graph v1.0 with app-only tokens.
//!
//! - Matching (§A4): a user whose `onPremisesImmutableId` is the AD account's source anchor
//!   (`immutable_id`) is the account's synced twin: Entra receives the password by password
//!   hash sync (`Plan::Sync`), never by a PATCH. Without one, a cloud-only user with the AD
//!   account's UPN is written (`Plan::Write`). Anything else that could be the person (two
//!   anchors, a UPN that names another object's synced twin) is `Plan::Ambiguous`: never a guess.
//! - Holders of Entra directory roles are refused (`Rejection::Privileged`) by default.
//! - Writes: `PATCH /users/{id}` `passwordProfile` (§A2); optionally `revokeSignInSessions` (§A3).
//!
//! Architecture invariant: no password, client secret, assertion or access token reaches a log,
//! an error or a `Diagnostic`; diagnostics carry HTTP status, Graph's error code, `request-id`
//! and our `client-request-id`, never a request body or Graph's free-text message.
//!
//! Architecture invariant: TLS is rustls with ring only (no OpenSSL, no aws-lc); plain `http://`
//! is accepted for loopback hosts alone (the Graph test double).

mod assertion;
mod config;
mod http;
mod token;
mod util;
mod zone;

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rekey_core::Account;

pub use config::{
    Anchor, AssertionAlg, Credential, DEFAULT_GRAPH_BASE, DEFAULT_LOGIN_BASE, EntraConfig,
};
pub use zone::EntraId;

/// Configuration, credential and transport problems of the zone itself (not an account's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    #[error("RK-ENTRA-001: {key}: {why}")]
    Config { key: &'static str, why: String },
    #[error("RK-ENTRA-002: credential: {0}")]
    Credential(String),
    #[error("RK-ENTRA-003: TLS setup: {0}")]
    Tls(String),
    #[error("RK-ENTRA-004: the token endpoint refused the app: {0}")]
    TokenRefused(String),
    #[error("RK-ENTRA-005: unreachable: {0}")]
    Unreachable(String),
    #[error("RK-ENTRA-006: Graph refused the request: {0}")]
    Graph(String),
    #[error("RK-ENTRA-007: Graph is throttling: {0}")]
    Throttled(String),
    #[error("RK-ENTRA-008: unexpected answer: {0}")]
    Protocol(String),
    #[error("RK-ENTRA-009: {0}")]
    Random(String),
}

impl EntraError {
    /// The stable code (`RK-ENTRA-00N`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config { .. } => "RK-ENTRA-001",
            Self::Credential(_) => "RK-ENTRA-002",
            Self::Tls(_) => "RK-ENTRA-003",
            Self::TokenRefused(_) => "RK-ENTRA-004",
            Self::Unreachable(_) => "RK-ENTRA-005",
            Self::Graph(_) => "RK-ENTRA-006",
            Self::Throttled(_) => "RK-ENTRA-007",
            Self::Protocol(_) => "RK-ENTRA-008",
            Self::Random(_) => "RK-ENTRA-009",
        }
    }
}

/// How the zone got its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Secret,
    CertificatePs256,
    CertificateRs256,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Secret => "client secret",
            Self::CertificatePs256 => "certificate assertion (PS256, x5t#S256)",
            Self::CertificateRs256 => "certificate assertion (RS256, x5t)",
        })
    }
}

/// What `EntraId::check` proved: a token, and one Graph read with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub token: TokenKind,
    pub token_url: String,
    /// `host[:port]` of Graph.
    pub graph_host: String,
    /// Token (from the cache, or fetched) plus the Graph read.
    pub elapsed: Duration,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token by {} from {}; GET /v1.0/users at {} answered; {} ms",
            self.token,
            self.token_url,
            self.graph_host,
            self.elapsed.as_millis()
        )
    }
}

/// The `onPremisesImmutableId` Entra Connect gives `account` under `anchor`: standard base64 of
/// the anchor's 16 raw bytes (`[Convert]::ToBase64String($guid.ToByteArray())`, §A4).
#[must_use]
pub fn immutable_id(account: &Account, anchor: Anchor) -> String {
    let guid = match anchor {
        Anchor::ConsistencyGuid => account.consistency_guid.unwrap_or(account.guid),
        Anchor::ObjectGuid => account.guid,
    };
    STANDARD.encode(guid.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rekey_core::Guid;

    #[test]
    fn immutable_id_is_base64_of_raw_bytes() {
        // objectGUID {00112233-4455-6677-8899-aabbccddeeff} as AD stores it (mixed endian).
        let mut a = rekey_core::fakes::account(1, "ann", &[]);
        a.guid = Guid([
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        assert_eq!(
            immutable_id(&a, Anchor::ObjectGuid),
            "MyIRAFVEd2aImaq7zN3u/w=="
        );
        assert_eq!(
            immutable_id(&a, Anchor::ConsistencyGuid),
            "MyIRAFVEd2aImaq7zN3u/w==",
            "empty consistency guid: objectGUID"
        );
        a.consistency_guid = Some(Guid([0xfb; 16]));
        assert_eq!(
            immutable_id(&a, Anchor::ConsistencyGuid),
            "+/v7+/v7+/v7+/v7+/v7+w=="
        );
        assert_eq!(
            immutable_id(&a, Anchor::ObjectGuid),
            "MyIRAFVEd2aImaq7zN3u/w=="
        );
    }

    #[test]
    fn codes_match_messages() {
        let e = EntraError::Config {
            key: "entra.graph_base_url",
            why: "x".into(),
        };
        assert!(e.to_string().starts_with(e.code()));
        let e = EntraError::TokenRefused("x".into());
        assert!(e.to_string().starts_with(e.code()));
    }
}
