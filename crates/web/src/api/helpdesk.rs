//! Helpdesk actions for a ticketing or chat integration (scope `helpdesk`): the operator entry
//! points the CLI uses — no gate, the integration has verified the caller and is named in the
//! audit (`api:<name>`) — with the same scope, tier and state checks and one audit record each
//! (invariant 34). Privileged accounts are refused like in the console.
//!
//! Each action is one request type, one engine call and one answer type; a new action (the
//! console's caller verification, an account look-up) is one more function here plus its line
//! in `routes()` and `ApiDoc`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Call, Helpdesk};
use super::body::ApiJson;
use super::error::{ApiError, Errors};
use super::views::{Outcome, outcome};
use crate::AppState;

/// The account an operator names.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountRequest {
    /// User name, UPN or email address.
    username: String,
}

/// A helpdesk one-time code, to be read out to the caller.
#[derive(Serialize, ToSchema)]
pub(crate) struct HelpdeskCode {
    /// 8 digits, single use; the user types it in the portal's (or the API's) first gate. Show
    /// it to the operator only; do not store or log it.
    code: String,
    /// Seconds until it expires.
    expires_in_secs: i64,
    support_id: String,
}

/// Unlock an account.
///
/// Clears the lockout (no password change); the integration verified the caller.
#[utoipa::path(post, path = "/api/v1/helpdesk/unlock", tag = "helpdesk",
    request_body = AccountRequest,
    responses((status = 200, description = "The outcome.", body = Outcome), Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn unlock(
    State(s): State<AppState>,
    call: Call<Helpdesk>,
    ApiJson(f): ApiJson<AccountRequest>,
) -> Result<Json<Outcome>, ApiError> {
    match s.engine.admin_unlock(&call.req, &f.username).await {
        Ok(out) => Ok(Json(outcome(call.t, call.t.unlock_done, &out))),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Issue a helpdesk code.
///
/// A one-time code for a caller the integration verified, where the user's tier counts
/// helpdesk codes; a new code replaces the previous one. The user types it at the first gate.
#[utoipa::path(post, path = "/api/v1/helpdesk/code", tag = "helpdesk",
    request_body = AccountRequest,
    responses((status = 200, description = "The code.", body = HelpdeskCode), Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn code(
    State(s): State<AppState>,
    call: Call<Helpdesk>,
    ApiJson(f): ApiJson<AccountRequest>,
) -> Result<Json<HelpdeskCode>, ApiError> {
    match s.engine.helpdesk_code(&call.req, &f.username).await {
        Ok(code) => Ok(Json(HelpdeskCode {
            code,
            expires_in_secs: s.engine.config().helpdesk_code_ttl.clamp(60, 3600),
            support_id: call.req.support_id.clone(),
        })),
        Err(e) => Err(call.fail(&e)),
    }
}
