//! App-only access tokens by the client-credentials grant (§A1): a client secret or a signed
//! client assertion. One token is cached and shared; one fetch at a time (single flight).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::assertion::AssertionSigner;
use crate::config::AssertionAlg;
use crate::http::{Transport, read_capped, transport_error};
use crate::util::{self, percent_encode};
use crate::{EntraError, TokenKind};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the app authenticates.
pub(crate) enum TokenCredential {
    Secret(Zeroizing<String>),
    Assertion(Box<AssertionSigner>),
}

/// A bearer token. Never printed.
#[derive(Clone)]
pub(crate) struct AccessToken(Arc<Zeroizing<String>>);

impl AccessToken {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
    fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Why no token could be had. Details never carry the secret, the assertion or a token.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The token endpoint could not be reached or did not answer.
    Transport(Transport),
    /// The token endpoint answered with an OAuth error.
    Refused(String),
    /// An answer we could not read.
    Protocol(String),
    /// Signing or the random generator failed here.
    Local(EntraError),
}

impl TokenError {
    pub(crate) fn into_entra(self) -> EntraError {
        match self {
            Self::Transport(t) => EntraError::Unreachable(t.detail),
            Self::Refused(d) => EntraError::TokenRefused(d),
            Self::Protocol(d) => EntraError::Protocol(d),
            Self::Local(e) => e,
        }
    }
}

struct Cached {
    token: AccessToken,
    refresh_at: Instant,
}

pub(crate) struct Tokens {
    url: String,
    client_id: String,
    scope: String,
    credential: TokenCredential,
    cache: Mutex<Option<Cached>>,
}

#[derive(Deserialize)]
struct Issued {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl Tokens {
    pub(crate) fn new(
        url: String,
        client_id: String,
        scope: String,
        credential: TokenCredential,
    ) -> Self {
        Self {
            url,
            client_id,
            scope,
            credential,
            cache: Mutex::new(None),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn kind(&self) -> TokenKind {
        match &self.credential {
            TokenCredential::Secret(_) => TokenKind::Secret,
            TokenCredential::Assertion(s) => match s.alg() {
                AssertionAlg::Ps256 => TokenKind::CertificatePs256,
                AssertionAlg::Rs256 => TokenKind::CertificateRs256,
            },
        }
    }

    /// The cached token, or a fresh one. Concurrent callers wait for the one fetch under way.
    pub(crate) async fn get(&self, http: &reqwest::Client) -> Result<AccessToken, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let started = Instant::now();
        let (token, expires_in) = self.fetch(http).await?;
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: started + cache_for(expires_in),
        });
        Ok(token)
    }

    /// Drops `used` from the cache (Graph answered 401 to it); a newer token is kept.
    pub(crate) async fn invalidate(&self, used: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.token.same(used)) {
            *cache = None;
        }
    }

    async fn fetch(&self, http: &reqwest::Client) -> Result<(AccessToken, Duration), TokenError> {
        let mut form = Zeroizing::new(String::with_capacity(4096));
        let mut put = |k: &str, v: &str| {
            if !form.is_empty() {
                form.push('&');
            }
            form.push_str(k);
            form.push('=');
            form.push_str(&Zeroizing::new(percent_encode(v)));
        };
        put("grant_type", "client_credentials");
        put("client_id", &self.client_id);
        put("scope", &self.scope);
        match &self.credential {
            TokenCredential::Secret(s) => put("client_secret", s),
            TokenCredential::Assertion(signer) => {
                let jwt = signer
                    .sign(&self.client_id, &self.url, util::now_unix())
                    .map_err(TokenError::Local)?;
                put("client_assertion_type", ASSERTION_TYPE);
                put("client_assertion", &jwt);
            }
        }
        let resp = http
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form.as_bytes().to_vec())
            .send()
            .await
            .map_err(|e| TokenError::Transport(transport_error(&e, "token endpoint")))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp)
            .await
            .map_err(|e| TokenError::Transport(transport_error(&e, "token endpoint")))?;
        if status == 200 {
            let issued: Issued = serde_json::from_slice(&body).map_err(|_| {
                TokenError::Protocol("token endpoint: HTTP 200 without an access_token".into())
            })?;
            let secs = match issued.expires_in {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .unwrap_or(300);
            tracing::debug!(kind = ?self.kind(), expires_in = secs, "entra: access token issued");
            return Ok((
                AccessToken(Arc::new(Zeroizing::new(issued.access_token))),
                Duration::from_secs(secs),
            ));
        }
        let detail = refusal(status, &body, &self.credential);
        tracing::warn!(%detail, "entra: token endpoint refused");
        Err(TokenError::Refused(detail))
    }
}

/// Until 5 minutes before expiry, or half the lifetime for tokens living 10 minutes or less.
fn cache_for(expires_in: Duration) -> Duration {
    if expires_in > Duration::from_secs(600) {
        expires_in - Duration::from_secs(300)
    } else {
        expires_in / 2
    }
}

/// The OAuth error (`error`, AADSTS codes, the description up to its trace ids, trace and
/// correlation ids): enough to fix the app registration, nothing we sent.
fn refusal(status: u16, body: &[u8], credential: &TokenCredential) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let codes: Vec<String> = v["error_codes"]
        .as_array()
        .map(|a| a.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let mut description = s("error_description");
    if let Some(cut) = description.find(" Trace ID:") {
        description.truncate(cut);
    }
    if description.len() > 400 {
        let mut end = 400;
        while !description.is_char_boundary(end) {
            end -= 1;
        }
        description.truncate(end);
    }
    let mut out = format!(
        "HTTP {status} {} [{}] {description} (trace_id {}, correlation_id {})",
        s("error"),
        codes.join(","),
        s("trace_id"),
        s("correlation_id")
    );
    // Belt and braces: an endpoint that echoed the secret must not get it into a log.
    if let TokenCredential::Secret(secret) = credential
        && !secret.is_empty()
        && out.contains(secret.as_str())
    {
        out = out.replace(secret.as_str(), "<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_lifetimes() {
        assert_eq!(
            cache_for(Duration::from_secs(3599)),
            Duration::from_secs(3299)
        );
        assert_eq!(
            cache_for(Duration::from_secs(600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            cache_for(Duration::from_secs(5)),
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn refusal_keeps_codes_drops_secret() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided: hunter2. Trace ID: t Correlation ID: c Timestamp: x","error_codes":[7000215],"trace_id":"t-1","correlation_id":"c-1"}"#;
        let d = refusal(
            401,
            body,
            &TokenCredential::Secret(Zeroizing::new("hunter2".into())),
        );
        assert!(
            d.contains("HTTP 401 invalid_client [7000215] AADSTS7000215"),
            "{d}"
        );
        assert!(d.contains("trace_id t-1, correlation_id c-1"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(!d.contains("Timestamp"), "{d}");
    }
}
