//! Errors of the JSON API: one body for every refusal, `{"code", "message", "support_id"}`, the
//! engine's stable codes and plain messages (never a directory's raw text, invariant 10), and
//! HTTP statuses by kind. The cause goes to the log under the support id.

use std::collections::BTreeMap;

use axum::extract::Request;
use axum::http::{Extensions, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rekey_core::UserFacing;
use rekey_core::engine::EngineError;
use rekey_core::landing::LandingError;
use rekey_core::policy::Violation;
use serde::Serialize;
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

use crate::AppState;
use crate::i18n::{self, Texts};

/// Every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// A stable code, e.g. `RK-VERIFY-001` (see the portal's error catalog and docs/api.md).
    pub code: String,
    /// A plain message for the end user or operator (English or German by
    /// `Accept-Language`). Never a directory's raw text.
    pub message: String,
    /// The request's support id (`RK-XXXX-XXXX`): it finds the audit record and log lines.
    pub support_id: String,
    /// `RK-PWD-010`: which rules the new password broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<ViolationView>>,
    /// `RK-PWD-004`: when a change becomes possible (Unix seconds), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_at: Option<i64>,
    /// `RK-RATE-002`: a proof of work to solve before identify is tried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof_of_work: Option<PowView>,
}

/// One broken password rule.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ViolationView {
    /// `empty`, `too_short`, `too_few_categories`, `contains_name`, `too_long`, `banned`,
    /// `cloud_characters` or `breached`.
    pub rule: &'static str,
    /// The rule in plain words.
    pub message: String,
}

/// A proof-of-work puzzle (see docs/api.md): find a decimal counter `n` such that SHA-256 of
/// `challenge ":" n` starts with `bits` zero bits, or send `wait` after `wait_secs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PowView {
    pub challenge: String,
    pub bits: u8,
    pub wait_secs: i64,
}

/// An error answer, ready to send.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub body: Box<ErrorBody>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error of the API layer itself (authentication, the body), with its own code.
    pub(crate) fn api(
        status: StatusCode,
        code: &'static str,
        message: &str,
        support_id: &str,
    ) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                code: code.into(),
                message: message.into(),
                support_id: support_id.into(),
                violations: None,
                allowed_at: None,
                proof_of_work: None,
            }),
            retry_after: None,
        }
    }

    /// An engine error: its code, its message in `t`'s language, a status by kind. The cause is
    /// logged (never a password: `EngineError` holds none).
    pub(crate) fn engine(e: &EngineError, t: &'static Texts, support_id: &str) -> Self {
        tracing::warn!(support_id, code = e.code(), error = ?e, "api request failed");
        let mut out = Self::api(status_of(e), e.code(), "", support_id);
        out.body.message = i18n::message(t, e.code(), e.message()).to_owned();
        match e {
            EngineError::Policy { violations, .. } => {
                out.body.violations = Some(violations.iter().map(|v| violation(t, v)).collect());
            }
            EngineError::TooSoon { allowed_at } => out.body.allowed_at = *allowed_at,
            EngineError::ProofOfWork {
                challenge,
                bits,
                wait_secs,
            } => {
                out.body.proof_of_work = Some(PowView {
                    challenge: challenge.clone(),
                    bits: *bits,
                    wait_secs: *wait_secs,
                });
                out.retry_after = u64::try_from(*wait_secs).ok();
            }
            EngineError::Landing(LandingError::Throttled { retry_after_ms, .. }) => {
                out.retry_after = retry_after_ms.map(|ms| ms.div_ceil(1000));
            }
            _ => {}
        }
        out
    }
}

/// The HTTP status of an engine error: 409 the flow cannot take this step, 422 refused by a
/// rule (wrong code, password policy, not eligible), 404 no such account (operator calls only),
/// 429 a budget or rate, 503 something Rekey depends on failed (nothing was changed, or — for
/// `RK-DIR-011` — it cannot tell).
pub(crate) fn status_of(e: &EngineError) -> StatusCode {
    match e {
        EngineError::FlowExpired | EngineError::WrongStep => StatusCode::CONFLICT,
        EngineError::RateLimited
        | EngineError::TooManyAttempts
        | EngineError::ProofOfWork { .. }
        | EngineError::Landing(LandingError::Throttled { .. }) => StatusCode::TOO_MANY_REQUESTS,
        EngineError::Store(_)
        | EngineError::Directory(_)
        | EngineError::Mail
        | EngineError::SealedKey(_)
        | EngineError::BreachCheck
        | EngineError::Landing(
            LandingError::Unavailable { .. } | LandingError::Indeterminate { .. },
        ) => StatusCode::SERVICE_UNAVAILABLE,
        EngineError::NoSuchAccount => StatusCode::NOT_FOUND,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

fn violation(t: &Texts, v: &Violation) -> ViolationView {
    let (rule, message) = match v {
        Violation::Empty => ("empty", t.violation_empty.to_owned()),
        Violation::TooShort { min, .. } => (
            "too_short",
            t.policy_min_length.replace("{}", &min.to_string()),
        ),
        Violation::TooFewCategories { .. } => {
            ("too_few_categories", t.policy_complexity.to_owned())
        }
        Violation::ContainsName => ("contains_name", t.policy_complexity.to_owned()),
        Violation::TooLong => ("too_long", t.violation_too_long.to_owned()),
        Violation::Banned => ("banned", t.violation_banned.to_owned()),
        Violation::CloudCharacters => ("cloud_characters", t.violation_cloud_characters.to_owned()),
        Violation::Breached => ("breached", t.violation_breached.to_owned()),
    };
    ViolationView { rule, message }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, axum::Json(&*self.body)).into_response();
        let h = res.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="rekey""#),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// The request's support id (made by the trace layer before any handler).
pub(crate) fn support_id(ext: &Extensions, state: &AppState) -> String {
    ext.get::<crate::trace::SupportId>()
        .map_or_else(|| state.engine.support_id(), |s| s.0.clone())
}

/// Middleware for the router (outside the body cap): under `/api/`, an answer that is not JSON —
/// the body cap's 413, an unknown path's 404, a wrong method's 405 — becomes the JSON error
/// body with the request's support id, so integrations parse one shape.
pub async fn problems(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let support_id = req
        .extensions()
        .get::<crate::trace::SupportId>()
        .map(|s| s.0.clone())
        .unwrap_or_default();
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = res.status();
    if json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ("RK-API-005", "The request body is too large."),
        StatusCode::NOT_FOUND => ("RK-API-006", "No such operation."),
        StatusCode::METHOD_NOT_ALLOWED => ("RK-API-007", "This operation takes another method."),
        _ => ("RK-API-008", "The request was refused."),
    };
    let mut out = ApiError::api(status, code, message, &support_id).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = res.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// The error answers every operation may give, for the OpenAPI document.
pub(crate) struct Errors;

impl IntoResponses for Errors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                                "ErrorBody",
                            ))))
                            .build(),
                    )
                    .build(),
            )
        };
        [
            ("400", "The body is not a JSON object of the documented scalar fields (`RK-API-003`)."),
            ("401", "No or an unknown bearer token (`RK-API-001`); `WWW-Authenticate: Bearer`."),
            ("403", "The token lacks the operation's scope (`RK-API-002`)."),
            ("404", "No such account (helpdesk operations only, `RK-DIR-002`)."),
            ("409", "The flow is missing, expired, or not at this step: start again (`RK-FLOW-001`, `RK-FLOW-002`)."),
            ("413", "The body is larger than the portal's cap (`RK-API-005`)."),
            ("415", "The body is not `application/json` (`RK-API-004`)."),
            ("422", "Refused by a rule: a wrong code, the password policy (`violations`), not eligible."),
            ("429", "A budget or rate was reached (`RK-RATE-001`, `RK-VERIFY-002`; `RK-RATE-002` with `proof_of_work`); `Retry-After` where known."),
            ("503", "The directory, store or mail relay failed; nothing was changed (`RK-DIR-011`: cannot tell)."),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), error(description)))
        .collect()
    }
}
