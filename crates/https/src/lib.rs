//! The HTTPS client Rekey's HTTP adapters share (`rekey-entra`, `rekey-breach`): one way to
//! check a configured base URL and one way to build the client, so both trust the same roots
//! and follow the same rules.
//!
//! - A base URL is `https://…`; plain `http://` only to a loopback host (the local test doubles).
//! - TLS is rustls with ring and Mozilla's roots (webpki-roots: no system probing), plus the
//!   certificates of an optional CA file (a TLS-inspecting proxy, a private mirror). There is no
//!   "accept any certificate" switch.
//! - No redirects are followed; a loopback-only client ignores proxy variables.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why a base URL or a client cannot be used. The caller names the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The base URL is unusable.
    #[error("{0}")]
    Url(String),
    /// The CA file is unusable.
    #[error("{0}")]
    CaFile(String),
    /// The TLS or HTTP client could not be built.
    #[error("{0}")]
    Client(String),
}

/// A checked base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// `scheme://authority[/path]` without a trailing slash.
    pub url: String,
    /// `host[:port]`, for diagnostics.
    pub host: String,
    /// The host is loopback (127.0.0.0/8, ::1, localhost).
    pub loopback: bool,
}

/// Check a configured base URL: https anywhere, http to a loopback host only; no query,
/// fragment or user name.
///
/// # Errors
/// `Error::Url` saying what is wrong.
pub fn base(value: &str) -> Result<Base, Error> {
    let trimmed = value.trim().trim_end_matches('/');
    let bad = |why: &str| Error::Url(format!("'{trimmed}': {why}"));
    let url = reqwest::Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("a base URL has no query, fragment or user name"));
    }
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad("no host"));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "plain http is accepted only for a loopback host (tests); use https",
            ));
        }
        other => return Err(bad(&format!("unsupported scheme '{other}'"))),
    }
    Ok(Base {
        url: trimmed.to_owned(),
        host: match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        },
        loopback,
    })
}

/// How to build a client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions<'a> {
    /// Extra trusted CA certificates (PEM), beside Mozilla's roots.
    pub ca_file: Option<&'a Path>,
    /// Whole request, and connecting.
    pub timeout: Duration,
    pub user_agent: &'static str,
    /// Every host the client talks to is loopback: ignore proxy variables.
    pub loopback_only: bool,
}

/// reqwest with rustls (ring), Mozilla's roots and the CA file; no redirects.
///
/// # Errors
/// `Error::CaFile` for an unreadable or empty CA file, `Error::Client` if the client cannot be
/// built.
pub fn client(opts: &ClientOptions<'_>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls_config(opts.ca_file)?)
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(opts.user_agent)
        .pool_idle_timeout(Duration::from_secs(60));
    if opts.loopback_only {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| Error::Client(format!("HTTP client: {e}")))
}

/// A transport failure in a few words, its error chain included, without the URL: `{what}:
/// timed out`, `connect failed` or `no response`.
#[must_use]
pub fn describe(e: &reqwest::Error, what: &str) -> String {
    use std::error::Error as _;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connect failed"
    } else {
        "no response"
    };
    let mut detail = format!("{what}: {kind}");
    let mut source = e.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let bad = |why: String| Error::CaFile(format!("{}: {why}", path.display()));
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Client(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn base_urls() {
        let b = base("https://graph.microsoft.us/").unwrap();
        assert_eq!(
            (b.url.as_str(), b.host.as_str(), b.loopback),
            ("https://graph.microsoft.us", "graph.microsoft.us", false)
        );
        for ok in [
            "http://127.0.0.1:8089",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.1.2.3",
        ] {
            assert!(base(ok).unwrap().loopback, "{ok}");
        }
        assert_eq!(
            base("http://127.0.0.1:8089").unwrap().host,
            "127.0.0.1:8089"
        );
        for bad in [
            "http://example.com",
            "http://192.168.1.1",
            "ftp://x",
            "https://x/?a=1",
            "https://u@x",
            "https://x/#f",
            "not a url",
        ] {
            assert!(base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_files() {
        let opts = |ca_file| ClientOptions {
            ca_file,
            timeout: Duration::from_secs(1),
            user_agent: "t",
            loopback_only: false,
        };
        assert!(client(&opts(None)).is_ok());
        let e = client(&opts(Some(Path::new("/nonexistent/ca.pem")))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let empty =
            std::env::temp_dir().join(format!("rekey-https-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "nothing here\n").unwrap();
        let e = client(&opts(Some(&empty))).unwrap_err();
        let _ = std::fs::remove_file(&empty);
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
    }
}
