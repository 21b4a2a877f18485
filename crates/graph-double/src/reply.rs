//! Error envelopes as documented: Graph (`concepts/errors.md`, `concepts/throttling.md`) and the
//! identity platform's token endpoint (`v2-oauth2-client-creds-grant-flow.md`).

use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::model::{iso8601, random_guid};

/// The documented password-complexity refusal.
pub(crate) const WEAK_PASSWORD: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";
/// The reported refusal for PATCH on a synced user (microsoft-graph-docs #7301).
pub(crate) const SYNCED_OBJECT: &str = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";
/// 403 text.
pub(crate) const INSUFFICIENT: &str = "Insufficient privileges to complete the operation.";

fn client_request_id(headers: &HeaderMap) -> String {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(random_guid, str::to_owned)
}

/// `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
pub(crate) fn graph_error(
    status: StatusCode,
    code: &str,
    message: &str,
    headers: &HeaderMap,
) -> Response {
    let request_id = random_guid();
    let crid = client_request_id(headers);
    let body = json!({"error": {
        "code": code,
        "message": message,
        "innerError": {
            "date": iso8601(SystemTime::now()),
            "request-id": request_id,
            "client-request-id": crid,
        }
    }});
    let mut resp = (status, axum::Json(body)).into_response();
    for (name, value) in [("request-id", request_id), ("client-request-id", crid)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    resp
}

/// 429 with `Retry-After` and the documented `TooManyRequests` body.
pub(crate) fn throttled(retry_after: &str, headers: &HeaderMap) -> Response {
    let request_id = random_guid();
    let body = json!({"error": {
        "code": "TooManyRequests",
        "message": "Please retry after",
        "innerError": {
            "code": "429",
            "date": iso8601(SystemTime::now()),
            "message": "Please retry after",
            "request-id": request_id,
            "status": "429",
            "client-request-id": client_request_id(headers),
        }
    }});
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(retry_after) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The identity platform's OAuth error body.
pub(crate) fn token_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = random_guid();
    let corr = random_guid();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} Timestamp: {}",
            iso8601(SystemTime::now())
        ),
        "error_codes": [code],
        "timestamp": iso8601(SystemTime::now()).replace('T', " ").replace('Z', ""),
        "trace_id": trace,
        "correlation_id": corr,
    });
    (status, axum::Json(body)).into_response()
}

/// Entra's cloud password rules (E `concept-sspr-policy.md`): 8–256 characters, three of
/// lower/upper/digit/symbol, only the listed ASCII symbols and space, no other Unicode.
pub fn cloud_password_ok(password: &str) -> bool {
    const SYMBOLS: &str = "@#$%^&*-_!+=[]{}|\\:',.?/`~\"();<> ";
    let n = password.chars().count();
    if !(8..=256).contains(&n) {
        return false;
    }
    let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
    for c in password.chars() {
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            c if SYMBOLS.contains(c) => symbol = true,
            _ => return false,
        }
    }
    [lower, upper, digit, symbol].iter().filter(|b| **b).count() >= 3
}

#[cfg(test)]
mod tests {
    use super::cloud_password_ok;

    #[test]
    fn cloud_rules() {
        assert!(cloud_password_ok("Passw0rd"));
        assert!(cloud_password_ok("pass word1"));
        assert!(!cloud_password_ok("Pa1"));
        assert!(!cloud_password_ok("password"));
        assert!(!cloud_password_ok("Pässw0rd!"));
        assert!(!cloud_password_ok(&"aA1".repeat(90)));
    }
}
