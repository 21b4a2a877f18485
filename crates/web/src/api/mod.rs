//! The JSON API for integrations (chat bots, ticketing): the same engine calls as the pages, the
//! same gates, budgets and fixed deadlines (invariants 9, 14, 35); CSRF does not apply, a bearer
//! token per integration does.
//!
//! - `auth`: `Authorization: Bearer <token>`; the token's SHA-256 is compared in constant time
//!   with every configured client's (`ApiClient::token_sha256`); no or an unknown token → 401
//!   with `WWW-Authenticate: Bearer`, a scope the client lacks → 403. The integration is the
//!   audit actor (`api:<name>`, `actor`).
//! - `body`: JSON bodies of scalar fields only (`deny_unknown_fields`; an array where a string
//!   is expected, a duplicate key, bad UTF-8 → 400), under the portal's body cap (413).
//! - `error`: every error is `{"code", "message", "support_id"}`; every success carries the
//!   support id too.
//! - `self_service` / `helpdesk`: one engine call per request; the helpdesk's acts need a caller
//!   verification of the same integration for the same user (`Engine::helpdesk_api_*`).
//!
//! API boundary: the document `openapi()` (OpenAPI 3.1, derived from these types by utoipa) is
//! served at `/api/v1/openapi.json` and checked in as `docs/openapi.json` (a test holds them
//! equal; `REKEY_TEST_BLESS=1` rewrites the file).

mod auth;
mod body;
mod error;
mod helpdesk;
mod self_service;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_helpdesk;
mod views;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

pub use error::problems;

/// What an integration may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The self-service flows on behalf of an end user who passes the gates: reset, unlock,
    /// change.
    SelfService,
    /// The helpdesk under the console's rules: look a user up, verify the caller with a code
    /// sent to the user's enrolled method, then unlock, issue a helpdesk code or require a
    /// change at next logon; sensitive users' acts wait for an approver.
    Helpdesk,
}

impl Scope {
    /// Every scope, in the order the documentation lists them.
    pub const ALL: [Self; 2] = [Self::SelfService, Self::Helpdesk];

    /// The name in the configuration and the OpenAPI document.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfService => "self_service",
            Self::Helpdesk => "helpdesk",
        }
    }

    /// The scope with this name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One integration allowed to call the API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// Its name: the audit actor is `api:<name>`. See [`valid_client_name`].
    pub name: String,
    /// SHA-256 of its bearer token (the token itself is never stored).
    pub token_sha256: [u8; 32],
    /// What it may call.
    pub scopes: Vec<Scope>,
}

/// A client name: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit (it appears in audit
/// records and log lines, so nothing that needs escaping).
#[must_use]
pub fn valid_client_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// The SHA-256 of a bearer token, as `ApiClient::token_sha256` holds it.
#[must_use]
pub fn token_sha256(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// The prefix of every token `rekey admin api-token` makes (it lets secret scanners find a
/// leaked one); the server accepts any token whose hash is configured.
pub const TOKEN_PREFIX: &str = "rkapi_";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rekey API",
        version = "1",
        description = "Self-service password reset, unlock and change for Active Directory, \
                       and helpdesk actions, for integrations (chat bots, ticketing). \
                       Every request needs `Authorization: Bearer <token>`; every answer \
                       carries a support id; errors are `{code, message, support_id}`. \
                       See docs/api.md.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        self_service::reset_identify,
        self_service::unlock_identify,
        self_service::flow_code,
        self_service::flow_choices,
        self_service::flow_choose,
        self_service::flow_questions,
        self_service::reset_policy,
        self_service::reset_password,
        self_service::unlock_confirm,
        self_service::change,
        self_service::result,
        helpdesk::lookup,
        helpdesk::verify_start,
        helpdesk::verify,
        helpdesk::unlock,
        helpdesk::code,
        helpdesk::must_change,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&Bearer),
    tags(
        (name = "self-service", description = "The end user passes the gates (scope `self_service`)."),
        (name = "helpdesk", description = "Helpdesk acts after the caller read back a code sent to the user's enrolled method; sensitive users wait for an approver (scope `helpdesk`)."),
    ),
)]
struct ApiDoc;

/// Adds the bearer security scheme every operation names.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            auth::SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `rekey admin api-token`; its scopes are listed per operation.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 document of this API, as served and checked in (`docs/openapi.json`).
#[must_use]
pub fn openapi_json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

async fn openapi_document() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(openapi_json).clone();
    let mut res = doc.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

pub(crate) fn routes() -> Router<AppState> {
    use helpdesk as hd;
    use self_service as ss;
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_document))
        .route("/api/v1/reset/identify", post(ss::reset_identify))
        .route("/api/v1/unlock/identify", post(ss::unlock_identify))
        .route("/api/v1/flow/code", post(ss::flow_code))
        .route("/api/v1/flow/choices", post(ss::flow_choices))
        .route("/api/v1/flow/choose", post(ss::flow_choose))
        .route("/api/v1/flow/questions", post(ss::flow_questions))
        .route("/api/v1/reset/policy", post(ss::reset_policy))
        .route("/api/v1/reset/password", post(ss::reset_password))
        .route("/api/v1/unlock/confirm", post(ss::unlock_confirm))
        .route("/api/v1/change", post(ss::change))
        .route("/api/v1/result", post(ss::result))
        .route("/api/v1/helpdesk/lookup", post(hd::lookup))
        .route("/api/v1/helpdesk/verify/start", post(hd::verify_start))
        .route("/api/v1/helpdesk/verify", post(hd::verify))
        .route("/api/v1/helpdesk/unlock", post(hd::unlock))
        .route("/api/v1/helpdesk/code", post(hd::code))
        .route("/api/v1/helpdesk/must-change", post(hd::must_change))
}
