//! `RangeApi`: an HIBP-style k-anonymity range endpoint (Pwned Passwords API v3).
//!
//! `GET {base}/range/{first five hex digits of the uppercase SHA-1}` answers lines
//! `SUFFIX35:COUNT` (LF or CRLF). We always ask for padding (`Add-Padding: true`): the server adds
//! lines with count 0 so the answer's size says nothing about the prefix; those lines are ignored.

use std::path::PathBuf;
use std::time::Duration;

use rekey_core::breached::{BreachError, BreachedPasswords};
use rekey_core::landing::BoxFuture;
use rekey_core::secret::Password;
use reqwest::StatusCode;

use crate::SetupError;
use crate::hash::{self, HEX_LEN, PREFIX_LEN, Sha1Hex};

/// Have I Been Pwned's Pwned Passwords API.
pub const DEFAULT_BASE_URL: &str = "https://api.pwnedpasswords.com";
/// Per look-up, connection included: a reset never waits longer for this check.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A real answer is 30–40 KB (padded: at most ~1,000 lines of ≤ 60 bytes); anything far larger
/// is not the range API.
const MAX_BODY: usize = 1 << 20;
const SUFFIX_LEN: usize = HEX_LEN - PREFIX_LEN;

/// How to reach the range API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeOptions {
    /// `https://host[/path]`, without `/range`; plain `http://` only for a loopback host.
    pub base_url: String,
    /// Whole look-up (connect, request, body). Not zero.
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), beside Mozilla's roots (a TLS-inspecting proxy, a
    /// mirror with a private CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for RangeOptions {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            ca_file: None,
        }
    }
}

/// The range API as a [`BreachedPasswords`] source.
#[derive(Debug, Clone)]
pub struct RangeApi {
    http: reqwest::Client,
    /// Checked base URL, no trailing slash.
    base: String,
    timeout: Duration,
}

impl RangeApi {
    /// Checks the options and builds the HTTP client (rustls with ring, Mozilla's roots and
    /// `ca_file`, no redirects). Nothing is sent yet.
    ///
    /// # Errors
    /// [`SetupError::Config`] for a bad URL (not https, http to a non-loopback host, query…), a
    /// zero timeout or an unusable `ca_file`; [`SetupError::Tls`] if the client cannot be built.
    pub fn new(opts: &RangeOptions) -> Result<Self, SetupError> {
        let base = rekey_https::base(&opts.base_url).map_err(|e| SetupError::Config {
            key: "breach.base_url",
            why: e.to_string(),
        })?;
        if opts.timeout.is_zero() {
            return Err(SetupError::Config {
                key: "breach.timeout",
                why: "must be more than zero".into(),
            });
        }
        let http = rekey_https::client(&rekey_https::ClientOptions {
            ca_file: opts.ca_file.as_deref(),
            timeout: opts.timeout,
            user_agent: concat!("rekey-breach/", env!("CARGO_PKG_VERSION")),
            loopback_only: base.loopback,
        })
        .map_err(|e| match e {
            rekey_https::Error::CaFile(why) => SetupError::Config {
                key: "breach.ca_file",
                why,
            },
            other => SetupError::Tls(other.to_string()),
        })?;
        Ok(Self {
            http,
            base: base.url,
            timeout: opts.timeout,
        })
    }

    /// The one request. Errors carry the prefix at most.
    async fn lookup(&self, hash: &Sha1Hex) -> Result<Option<u64>, String> {
        let prefix = hash.prefix();
        let resp = self
            .http
            .get(format!("{}/range/{prefix}", self.base))
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(|e| transport_error(&e, prefix))?;
        let status = resp.status();
        if status != StatusCode::OK {
            return Err(format!("range {prefix}: HTTP {}", status.as_u16()));
        }
        let body = read_capped(resp)
            .await
            .map_err(|e| transport_error(&e, prefix))?
            .ok_or_else(|| format!("range {prefix}: answer larger than {MAX_BODY} bytes"))?;
        find(&body, hash.suffix()).map_err(|why| format!("range {prefix}: {why}"))
    }
}

impl BreachedPasswords for RangeApi {
    fn times_seen<'a>(
        &'a self,
        password: &'a Password,
    ) -> BoxFuture<'a, Result<Option<u64>, BreachError>> {
        Box::pin(async move {
            let hash = Sha1Hex::of(password);
            // reqwest's timeout covers the body too; this one also bounds what is ours.
            match tokio::time::timeout(self.timeout, self.lookup(&hash)).await {
                Ok(Ok(seen)) => Ok(seen),
                Ok(Err(why)) => Err(BreachError::Unavailable(why)),
                Err(_) => Err(BreachError::Unavailable(format!(
                    "range {}: timed out",
                    hash.prefix()
                ))),
            }
        })
    }
}

/// The count for `suffix` in a range answer: `Some(n)` for a line with n ≥ 1, `None` if absent
/// or padding (count 0). The whole body must parse. Errors never quote a line: one of them may be
/// the password's own suffix.
fn find(body: &[u8], suffix: &[u8]) -> Result<Option<u64>, String> {
    let mut seen = None;
    let mut lines = 0usize;
    for (n, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let bad = || format!("line {} is not SUFFIX:COUNT", n + 1);
        let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let (hex, count) = (&line[..colon], &line[colon + 1..]);
        if hex.len() != SUFFIX_LEN || !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let count = hash::count(count).ok_or_else(bad)?;
        lines += 1;
        if count > 0 && seen.is_none() && hash::hex_eq(hex, suffix) {
            seen = Some(count);
        }
    }
    if lines == 0 {
        // Every prefix has entries (and padding): an empty 200 is not the range API.
        return Err("empty answer".into());
    }
    Ok(seen)
}

/// A short cause without the URL (which holds the prefix only, but we say it ourselves).
fn transport_error(e: &reqwest::Error, prefix: &str) -> String {
    rekey_https::describe(e, &format!("range {prefix}"))
}

/// The body, or `None` past `MAX_BODY`.
async fn read_capped(mut resp: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUFFIX: &[u8] = b"2DC183F740EE76F27B78EB39C8AD972A757";

    fn url(base_url: &str) -> RangeOptions {
        RangeOptions {
            base_url: base_url.into(),
            ..RangeOptions::default()
        }
    }

    #[test]
    fn base_urls() {
        for ok in [
            "https://api.pwnedpasswords.com",
            "https://api.pwnedpasswords.com/",
            "https://mirror.example/hibp",
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(RangeApi::new(&url(ok)).is_ok(), "{ok}");
        }
        assert_eq!(
            RangeApi::new(&url("https://x.example/p/")).unwrap().base,
            "https://x.example/p"
        );
        for bad in [
            "http://example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "https://x.example/?a=b",
            "https://u@x.example",
            "not a url",
        ] {
            let e = RangeApi::new(&url(bad)).unwrap_err();
            assert_eq!(e.code(), "RK-BREACH-101", "{bad}");
        }
    }

    #[test]
    fn zero_timeout_and_missing_ca_file_are_config_errors() {
        let zero = RangeOptions {
            timeout: Duration::ZERO,
            ..RangeOptions::default()
        };
        assert!(matches!(
            RangeApi::new(&zero),
            Err(SetupError::Config {
                key: "breach.timeout",
                ..
            })
        ));
        let ca = RangeOptions {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..RangeOptions::default()
        };
        assert!(matches!(
            RangeApi::new(&ca),
            Err(SetupError::Config {
                key: "breach.ca_file",
                ..
            })
        ));
        assert!(RangeApi::new(&RangeOptions::default()).is_ok());
    }

    #[test]
    fn bodies() {
        let line = |s: &str| s.as_bytes().to_vec();
        let hit =
            line("0000000000000000000000000000000000A:3\n2dc183f740ee76f27b78eb39c8ad972a757:7\n");
        assert_eq!(find(&hit, SUFFIX), Ok(Some(7)));
        let padded = line("2DC183F740EE76F27B78EB39C8AD972A757:0\r\n");
        assert_eq!(find(&padded, SUFFIX), Ok(None));
        for bad in [
            "",
            "\r\n",
            "<html>",
            "2DC183F740EE76F27B78EB39C8AD972A75:1",
            "2DC183F740EE76F27B78EB39C8AD972A757",
            "2DC183F740EE76F27B78EB39C8AD972A757:",
            "2DC183F740EE76F27B78EB39C8AD972A757:-1",
            "2DC183F740EE76F27B78EB39C8AD972A75Z:1",
        ] {
            let e = find(&line(bad), SUFFIX).unwrap_err();
            assert!(!e.contains("2DC183"), "{e}");
        }
    }
}
