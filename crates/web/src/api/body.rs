//! JSON request bodies: `application/json`, within the portal's body cap (413), valid UTF-8, one
//! object of the documented scalar fields (`deny_unknown_fields` on every body type; an array
//! or object where a string is expected, a duplicate key, a missing field → 400, invariant 18).
//! Strings are taken byte-exact (a password is never trimmed). The parser's message is not
//! echoed: it may quote the value it choked on.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::{ApiError, support_id};
use crate::AppState;

/// A JSON body of type `T`.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let sid = support_id(req.extensions(), state);
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::api(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "RK-API-004",
                "Send the body as `Content-Type: application/json`.",
                &sid,
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::api(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "RK-API-005",
                        "The request body is too large.",
                        &sid,
                    )
                } else {
                    bad(&sid, "the body could not be read")
                }
            })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            use serde_json::error::Category;
            let what = match e.classify() {
                Category::Io | Category::Eof => "the body ends too early",
                Category::Syntax => "the body is not valid JSON (or not UTF-8)",
                Category::Data => {
                    "the body is not an object of the documented fields with string values"
                }
            };
            bad(&sid, what)
        })
    }
}

/// An id an earlier answer gave (a flow id, a receipt, a verification id): exactly 64 lowercase
/// hex digits, else `400 RK-API-003` naming the field (never echoing the value).
pub(crate) fn hex_id<'a>(
    support_id: &str,
    field: &str,
    value: &'a str,
) -> Result<&'a str, ApiError> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(value)
    } else {
        Err(ApiError::api(
            StatusCode::BAD_REQUEST,
            "RK-API-003",
            &format!("Invalid request: `{field}` must be the 64 hex digits an answer gave."),
            support_id,
        ))
    }
}

fn bad(support_id: &str, what: &str) -> ApiError {
    ApiError::api(
        StatusCode::BAD_REQUEST,
        "RK-API-003",
        &format!("Invalid request: {what} (see the OpenAPI document)."),
        support_id,
    )
}
