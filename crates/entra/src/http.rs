//! Graph over HTTPS: bearer tokens (a 401 refreshes once), `client-request-id` on every call,
//! 429 waited out inline when short, everything else handed back typed.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER,
};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::EntraError;
use crate::token::{TokenError, Tokens};
use crate::util::{self, retry_after};

/// Answers larger than this are not Graph's (a page is 100 objects).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// Inline retries after a 429 with a short enough `Retry-After`.
const MAX_INLINE_RETRIES: u32 = 2;
/// Backoff when a 429 carries no `Retry-After` (doubled per retry).
const BACKOFF: Duration = Duration::from_millis(250);

/// A request that got no (complete) answer.
#[derive(Debug)]
pub(crate) struct Transport {
    /// `false`: it certainly never reached the server (connect failed).
    pub sent: bool,
    pub detail: String,
}

/// The error chain of a reqwest error, without its URL.
pub(crate) fn transport_error(e: &reqwest::Error, what: &str) -> Transport {
    Transport {
        sent: !(e.is_connect() || e.is_builder()),
        detail: rekey_https::describe(e, what),
    }
}

/// Reads a body up to `MAX_BODY`.
pub(crate) async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > MAX_BODY {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Graph's error envelope, as far as we keep it. `message` is for matching, never for logs.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub client_request_id: String,
}

impl Fault {
    /// Status, Graph's code and the ids Microsoft support asks for.
    pub(crate) fn detail(&self) -> String {
        format!(
            "HTTP {} {} (request-id {}, client-request-id {})",
            self.status, self.code, self.request_id, self.client_request_id
        )
    }
}

/// Why a Graph call did not succeed.
#[derive(Debug)]
pub(crate) enum CallError {
    Token(TokenError),
    Transport(Transport),
    Throttled {
        retry_after: Option<Duration>,
        detail: String,
    },
    Status(Fault),
    /// A 2xx we could not read.
    Protocol(String),
}

impl CallError {
    pub(crate) fn into_entra(self) -> EntraError {
        match self {
            Self::Token(t) => t.into_entra(),
            Self::Transport(t) => EntraError::Unreachable(t.detail),
            Self::Throttled { detail, .. } => EntraError::Throttled(detail),
            Self::Status(f) => EntraError::Graph(f.detail()),
            Self::Protocol(d) => EntraError::Protocol(d),
        }
    }
}

/// A successful answer.
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub client_request_id: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Result<Value, CallError> {
        serde_json::from_slice(&self.body).map_err(|_| {
            CallError::Protocol(format!(
                "HTTP {} with a body that is not JSON (client-request-id {})",
                self.status, self.client_request_id
            ))
        })
    }
}

pub(crate) enum Verb {
    Get,
    Post,
    /// A JSON body that may hold a password.
    Patch(Zeroizing<String>),
}

impl Verb {
    fn name(&self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Patch(_) => "PATCH",
        }
    }
}

pub(crate) struct Graph {
    pub(crate) http: reqwest::Client,
    /// `{graph_base_url}/v1.0`.
    pub(crate) root: String,
    pub(crate) host: String,
    pub(crate) tokens: Arc<Tokens>,
    pub(crate) max_inline_wait: Duration,
}

impl Graph {
    /// `root` + `path_and_query` (which starts with `/`).
    pub(crate) fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.root)
    }

    /// Whether `url` (an `@odata.nextLink`) is on this Graph: a token goes nowhere else.
    pub(crate) fn owns(&self, url: &str) -> bool {
        url.strip_prefix(&self.root)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
    }

    /// One logical call: token, a retry with a fresh token after a 401, inline waits for short
    /// 429s. `Ok` only for 2xx.
    pub(crate) async fn call(&self, verb: &Verb, url: &str) -> Result<Reply, CallError> {
        let mut refreshed = false;
        let mut throttled = 0u32;
        loop {
            let token = self
                .tokens
                .get(&self.http)
                .await
                .map_err(CallError::Token)?;
            let crid = util::random_guid().map_err(|e| {
                CallError::Transport(Transport {
                    sent: false,
                    detail: e.to_string(),
                })
            })?;
            let mut auth =
                HeaderValue::from_str(&Zeroizing::new(format!("Bearer {}", token.expose())))
                    .map_err(|_| {
                        CallError::Protocol("the access token is not a header value".into())
                    })?;
            auth.set_sensitive(true);
            let mut req = match verb {
                Verb::Get => self.http.get(url),
                // No body, but a length: some Microsoft front ends answer 411 without one.
                Verb::Post => self.http.post(url).header(CONTENT_LENGTH, "0"),
                Verb::Patch(body) => self
                    .http
                    .patch(url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.as_bytes().to_vec()),
            };
            req = req
                .header(AUTHORIZATION, auth)
                .header(ACCEPT, "application/json")
                .header("client-request-id", &crid);
            let path = url
                .strip_prefix(&self.root)
                .unwrap_or(url)
                .split('?')
                .next()
                .unwrap_or("");
            let resp = req.send().await.map_err(|e| {
                let t = transport_error(&e, &format!("{} {path}", verb.name()));
                tracing::warn!(detail = %t.detail, client_request_id = %crid, "entra: graph call failed");
                CallError::Transport(t)
            })?;
            let status = resp.status().as_u16();
            let header = |name| {
                resp.headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let request_id = header(reqwest::header::HeaderName::from_static("request-id"));
            let after = header(RETRY_AFTER);
            tracing::debug!(
                verb = verb.name(),
                path,
                status,
                request_id = request_id.as_deref().unwrap_or(""),
                client_request_id = %crid,
                "entra: graph"
            );
            if status == 401 && !refreshed {
                self.tokens.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            if status == 429 {
                let given = after.as_deref().and_then(retry_after);
                let wait = given.unwrap_or(BACKOFF * 2u32.pow(throttled));
                if throttled < MAX_INLINE_RETRIES && wait <= self.max_inline_wait {
                    throttled += 1;
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(CallError::Throttled {
                    retry_after: given,
                    detail: format!(
                        "HTTP 429 TooManyRequests on {} {path}, Retry-After {} (request-id {}, client-request-id {crid})",
                        verb.name(),
                        after.as_deref().unwrap_or("absent"),
                        request_id.as_deref().unwrap_or("-"),
                    ),
                });
            }
            let body = match read_capped(resp).await {
                Ok(b) => b,
                // The status is the answer for writes; a lost body only matters to readers.
                Err(_) if (200..300).contains(&status) && !matches!(verb, Verb::Get) => Vec::new(),
                Err(e) => {
                    return Err(CallError::Transport(transport_error(
                        &e,
                        &format!("{} {path}", verb.name()),
                    )));
                }
            };
            if (200..300).contains(&status) {
                return Ok(Reply {
                    status,
                    body,
                    client_request_id: crid,
                });
            }
            return Err(CallError::Status(fault(status, &body, request_id, crid)));
        }
    }
}

fn fault(status: u16, body: &[u8], request_id: Option<String>, crid: String) -> Fault {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let e = &v["error"];
    let text = |x: &Value| x.as_str().map(str::to_owned);
    Fault {
        status,
        code: text(&e["code"]).unwrap_or_else(|| "-".into()),
        message: text(&e["message"]).unwrap_or_default(),
        request_id: request_id
            .or_else(|| text(&e["innerError"]["request-id"]))
            .unwrap_or_else(|| "-".into()),
        client_request_id: crid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_keep_code_and_ids() {
        let body = br#"{"error":{"code":"Request_BadRequest","message":"m","innerError":{"request-id":"r-1"}}}"#;
        let f = fault(400, body, None, "c-1".into());
        assert_eq!(f.code, "Request_BadRequest");
        assert_eq!(f.message, "m");
        assert_eq!(
            f.detail(),
            "HTTP 400 Request_BadRequest (request-id r-1, client-request-id c-1)"
        );
        let f = fault(502, b"<html>", Some("h-1".into()), "c-2".into());
        assert_eq!(
            f.detail(),
            "HTTP 502 - (request-id h-1, client-request-id c-2)"
        );
    }
}
