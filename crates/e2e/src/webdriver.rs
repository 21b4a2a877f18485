//! Raw WebDriver commands that fantoccini has no method for (cookies with all attributes,
//! the W3C WebAuthn virtual authenticator).

use serde_json::Value;

/// `method /session/{id}/{path}` with an optional JSON body.
#[derive(Debug)]
pub(crate) struct SessionCmd {
    pub method: http::Method,
    pub path: String,
    pub body: Option<Value>,
}

impl SessionCmd {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: http::Method::GET,
            path: path.into(),
            body: None,
        }
    }
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self {
            method: http::Method::POST,
            path: path.into(),
            body: Some(body),
        }
    }
    pub fn delete(path: impl Into<String>) -> Self {
        Self {
            method: http::Method::DELETE,
            path: path.into(),
            body: None,
        }
    }
}

impl fantoccini::wd::WebDriverCompatibleCommand for SessionCmd {
    fn endpoint(&self, base: &url::Url, sid: Option<&str>) -> Result<url::Url, url::ParseError> {
        // fantoccini only issues commands once the session exists, so `sid` is set.
        base.join(&format!(
            "session/{}/{}",
            sid.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// A cookie as WebDriver's `GET /session/{id}/cookie` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    /// `Path` attribute (`"/"` when the server set none for a top-level page).
    pub path: String,
    /// The cookie's domain; a host-only cookie (no `Domain` attribute) reports the host.
    pub domain: String,
    pub secure: bool,
    pub http_only: bool,
    /// `"Strict"`, `"Lax"` or `"None"` (Chromium reports `"Lax"` when none was set).
    pub same_site: Option<String>,
    /// Expiry as Unix seconds; `None` for a session cookie.
    pub expiry: Option<u64>,
}

impl Cookie {
    pub(crate) fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        Some(Self {
            name: s("name")?,
            value: s("value")?,
            path: s("path").unwrap_or_default(),
            domain: s("domain").unwrap_or_default(),
            secure: b("secure"),
            http_only: b("httpOnly"),
            same_site: s("sameSite"),
            expiry: v.get("expiry").and_then(Value::as_u64),
        })
    }
}
