//! Web security: headers (15), cookies (13), CSRF (14), scalar-only forms (18), client IP (17).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

pub const FLOW_COOKIE: &str = "__Host-rekey-flow";
pub const CSRF_COOKIE: &str = "__Host-rekey-csrf";
pub const LANG_COOKIE: &str = "__Host-rekey-lang";
/// The language choice lasts a year.
pub const LANG_MAX_AGE: i64 = 365 * 24 * 60 * 60;

/// The policy of every page: no script at all.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The policy of a page that loads one of our two scripts (`/static/passkey.js`,
/// `/static/pow.js`): same-origin script files only, never inline code or `eval`. With
/// `nosniff`, a browser runs a same-origin response only when it is served as JavaScript, and
/// only those two files are.
pub const CSP_SCRIPTS: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A response extension: this page loads one of our script files (`CSP_SCRIPTS`).
#[derive(Debug, Clone, Copy)]
pub struct RunsScripts;

/// Add the security headers to every response (invariant 15).
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let scripts = res.extensions().get::<RunsScripts>().is_some();
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        if scripts { CSP_SCRIPTS } else { CSP },
    );
    set(
        h,
        "strict-transport-security",
        "max-age=63072000; includeSubDomains",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), publickey-credentials-get=(self), publickey-credentials-create=(self)",
    );
    set(h, "cross-origin-opener-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    res
}

/// A cookie value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a `__Host-` cookie: Secure, HttpOnly, SameSite=Strict, Path=/, no Domain.
pub fn host_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Delete a cookie.
pub fn clear_cookie(name: &str) -> HeaderValue {
    host_cookie(name, "", Some(0))
}

/// The double-submit CSRF check: the form's token equals the cookie's, in constant time.
pub fn csrf_ok_token(cookie_token: &str, form_token: &str) -> bool {
    cookie_token.len() >= 32 && bool::from(cookie_token.as_bytes().ct_eq(form_token.as_bytes()))
}

/// The client's address: the peer, or — only when the peer is a trusted proxy — the last
/// address in X-Forwarded-For that is not itself a trusted proxy.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .unwrap_or(peer),
    )
}

/// A urlencoded form of scalar fields only: a repeated field (an array where a string is
/// expected), bad UTF-8 or a missing field is a 400, never a 422 or a panic (invariant 18).
pub struct ScalarForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ScalarForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("application/x-www-form-urlencoded") {
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "form expected").into_response());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                let status = e.status();
                (status, "request body refused").into_response()
            })?;
        if !utf8_form(&bytes) {
            return Err((StatusCode::BAD_REQUEST, "invalid encoding").into_response());
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(ScalarForm)
            .map_err(|_| (StatusCode::BAD_REQUEST, "invalid form").into_response())
    }
}

/// Every key and value, once percent-decoded, is valid UTF-8 (a lossy decode would silently
/// change a password).
fn utf8_form(body: &[u8]) -> bool {
    body.split(|&b| b == b'&').all(|pair| {
        let mut out = Vec::with_capacity(pair.len());
        let mut i = 0;
        while i < pair.len() {
            match pair[i] {
                b'%' => {
                    let hex = pair
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => out.push(b),
                        None => return false,
                    }
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out.split(|&b| b == b'=')
            .all(|part| std::str::from_utf8(part).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_utf8_validation() {
        assert!(utf8_form(b"a=b&c=%C3%A9+x"));
        assert!(!utf8_form(b"a=%FF%FE"));
        assert!(!utf8_form(b"a=%G1"));
        assert!(!utf8_form(b"a=%C3"));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 10.0.0.5"),
        );
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let lb: SocketAddr = "10.0.0.5:443".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        assert_eq!(
            client_ip(&h, Some(stranger), &[proxy]),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(
            client_ip(&h, Some(lb), &[proxy]),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&h, Some(lb), &[]),
            Some("10.0.0.5".parse().unwrap())
        );
    }
}
