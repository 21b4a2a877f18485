//! What the zone is configured with, and the checks `EntraId::new` runs on it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::EntraError;

/// Microsoft's public cloud (national clouds have their own hosts).
pub const DEFAULT_LOGIN_BASE: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GRAPH_BASE: &str = "https://graph.microsoft.com";

/// How the app proves who it is at the token endpoint (§A1).
#[derive(Clone)]
pub enum Credential {
    /// A client secret.
    Secret(Zeroizing<String>),
    /// A certificate registered on the app and its RSA private key (PKCS#8 or PKCS#1 PEM, not
    /// encrypted): the app signs a client assertion per token request.
    Certificate {
        cert_pem: String,
        key_pem: Zeroizing<String>,
        alg: AssertionAlg,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret(<redacted>)"),
            Self::Certificate { alg, .. } => {
                write!(f, "Certificate {{ alg: {alg:?}, key: <redacted> }}")
            }
        }
    }
}

/// The client assertion's signature and certificate thumbprint header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssertionAlg {
    /// RSA-PSS with SHA-256 and `x5t#S256` (SHA-256 thumbprint): what Microsoft documents today.
    #[default]
    Ps256,
    /// RSA PKCS#1 v1.5 with SHA-256 and `x5t` (SHA-1 thumbprint): older documentation.
    Rs256,
}

/// Which AD value Entra Connect uses as the source anchor (`onPremisesImmutableId`, §A4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Anchor {
    /// `ms-DS-ConsistencyGuid`, and `objectGUID` while it is empty (Entra Connect ≥ 1.1.524).
    #[default]
    ConsistencyGuid,
    /// `objectGUID` (DirSync and older Connect installations).
    ObjectGuid,
}

/// Everything the EntraId zone needs. `EntraConfig::new` fills in the defaults.
#[derive(Debug, Clone)]
pub struct EntraConfig {
    /// Tenant id (GUID) or a verified domain name.
    pub tenant: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    pub credential: Credential,
    /// Token URL = `{login_base_url}/{tenant}/oauth2/v2.0/token` (also the assertion's `aud`).
    pub login_base_url: String,
    /// Graph calls go to `{graph_base_url}/v1.0/…`.
    pub graph_base_url: String,
    /// An extra trusted CA (PEM), beside Mozilla's roots.
    pub ca_file: Option<PathBuf>,
    pub anchor: Anchor,
    /// Find cloud-only accounts by the AD account's UPN.
    pub match_by_upn: bool,
    /// Refuse accounts holding an Entra directory role (`Rejection::Privileged`).
    pub refuse_directory_roles: bool,
    /// After a password landed: end the user's sign-in sessions (`revokeSignInSessions`).
    pub revoke_sessions: bool,
    /// Per HTTP request (connect included).
    pub timeout: Duration,
    /// The longest `Retry-After` waited out inside one call; a longer one is `Throttled`.
    pub max_inline_wait: Duration,
}

impl EntraConfig {
    /// The public cloud, `ConsistencyGuid` anchor, UPN matching on, roles refused, no session
    /// revocation, 10 s per request, 2 s of inline throttling wait.
    #[must_use]
    pub fn new(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            client_id: client_id.into(),
            credential,
            login_base_url: DEFAULT_LOGIN_BASE.to_owned(),
            graph_base_url: DEFAULT_GRAPH_BASE.to_owned(),
            ca_file: None,
            anchor: Anchor::default(),
            match_by_upn: true,
            refuse_directory_roles: true,
            revoke_sessions: false,
            timeout: Duration::from_secs(10),
            max_inline_wait: Duration::from_secs(2),
        }
    }
}

pub(crate) use rekey_https::Base;

/// A checked base URL (`rekey_https::base`), errors naming `key`.
pub(crate) fn base(key: &'static str, value: &str) -> Result<Base, EntraError> {
    rekey_https::base(value).map_err(|e| EntraError::Config {
        key,
        why: e.to_string(),
    })
}

/// The client-credentials scope: Graph's public-cloud resource, unless `graph_base_url` names
/// another (national) cloud. A loopback Graph (the test double) stands in for the public one.
pub(crate) fn scope(graph: &Base) -> String {
    if graph.loopback || graph.url.eq_ignore_ascii_case(DEFAULT_GRAPH_BASE) {
        format!("{DEFAULT_GRAPH_BASE}/.default")
    } else {
        format!("{}/.default", graph.url)
    }
}

/// A tenant is a GUID or a domain name: nothing that could change the token URL's path.
pub(crate) fn tenant(value: &str) -> Result<&str, EntraError> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if ok {
        Ok(value)
    } else {
        Err(EntraError::Config {
            key: "entra.tenant",
            why: "a tenant id (GUID) or domain name: letters, digits, '-', '.', '_'".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        for ok in [
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/",
            "http://127.0.0.1:8399",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            assert!(base("k", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://graph.microsoft.com",
            "http://10.0.0.1",
            "http://[::2]",
            "ftp://127.0.0.1",
            "https://x/?a=b",
            "not a url",
            "http://localhost.evil.example",
        ] {
            assert!(base("k", bad).is_err(), "{bad}");
        }
        let b = base("k", "https://graph.microsoft.us/").unwrap();
        assert_eq!(b.url, "https://graph.microsoft.us");
        assert_eq!(b.host, "graph.microsoft.us");
        assert_eq!(scope(&b), "https://graph.microsoft.us/.default");
        let b = base("k", "http://127.0.0.1:8399").unwrap();
        assert_eq!(b.host, "127.0.0.1:8399");
        assert_eq!(scope(&b), "https://graph.microsoft.com/.default");
    }

    #[test]
    fn tenants() {
        assert!(tenant("contoso.onmicrosoft.com").is_ok());
        assert!(tenant("0b1c2d3e-0000-4000-8000-000000000000").is_ok());
        for bad in ["", "a/b", "a?b", "a b", "..%2f"] {
            assert!(tenant(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_are_not_printed() {
        let c = Credential::Secret(Zeroizing::new("hunter2-secret".into()));
        assert!(!format!("{c:?}").contains("hunter2"));
        let cfg = EntraConfig::new("t", "c", c);
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }
}
