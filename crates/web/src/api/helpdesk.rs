//! The helpdesk for a ticketing or chat integration (scope `helpdesk`), under the console's
//! rules: look the user up, verify the caller with a code sent to the user's enrolled email or
//! phone (the caller reads it back), then act — unlock, a one-time reset code, change at next
//! logon — with that verification. Privileged users are refused; an act on a sensitive user
//! becomes a request an approver decides in the console (`202`). One engine call per request
//! (`Engine::helpdesk_api_*`, the console's code without its session), one audit record each,
//! actor `api:<name>`. The code check answers at `answer_deadline`, right or wrong.
//!
//! The verification id is opaque, travels in the body, is bound to this integration and the
//! user, and changes when the caller is verified: send the `verification_id` of the last answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rekey_core::engine::{Act, ActOutcome, CallerCode, CallerVerified, UserCard};
use rekey_core::store::MethodKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Call, Helpdesk};
use super::body::{ApiJson, hex_id};
use super::error::{ApiError, Errors};
use crate::AppState;
use crate::helpdesk::texts;

type Answer<T> = Result<Json<T>, ApiError>;

// ---- bodies ---------------------------------------------------------------------------------

/// The account an operator names.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountRequest {
    /// User name, UPN or email address.
    username: String,
}

/// The code the caller read out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyRequest {
    /// The `verification_id` of `verify/start`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    verification_id: String,
    code: String,
}

/// An act on the user of a passed verification.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActRequest {
    /// The `verification_id` of the passed `verify`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    verification_id: String,
    /// The user to act on: the verified caller's account (user name, UPN or email address).
    username: String,
}

// ---- answers --------------------------------------------------------------------------------

/// A kind of recovery method.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MethodName {
    Email,
    Sms,
    Totp,
    Passkey,
    Questions,
}

/// An enrolled method, masked.
#[derive(Serialize, ToSchema)]
pub(crate) struct MethodInfo {
    kind: MethodName,
    /// `j***@e***.com`, `+** *** ** 67`, or how many passkeys / questions.
    hint: String,
    /// `knowledge`, `possession` or `phishing_resistant`.
    strength: &'static str,
    /// Unix seconds.
    enrolled_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<i64>,
    /// It serves a reset (and a caller code) from this time on (the enrollment cool-down).
    usable_from: i64,
}

/// One of the user's recent audit events.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventInfo {
    /// Milliseconds since the Unix epoch.
    at_ms: i64,
    /// `reset`, `unlock`, `verify`, `helpdesk_code`, …
    operation: &'static str,
    /// `ok`, `failed`, `partial` or `decoy`.
    result: String,
    /// `user`, `helpdesk:<sam>`, `admin:<name>`, `api:<name>` or `system`.
    actor: String,
}

/// Why self-service does not serve the account.
#[derive(Serialize, ToSchema)]
pub(crate) struct Refusal {
    code: &'static str,
    message: String,
}

/// What the helpdesk sees of a user: state, tier, masked methods, recent events. Never a secret.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserView {
    username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    enabled: bool,
    locked: bool,
    password_expired: bool,
    must_change: bool,
    /// A member of a protected group: the helpdesk never acts on it.
    privileged: bool,
    /// Acts on this user wait for an approver (`202`).
    sensitive: bool,
    /// Why self-service (and so the helpdesk) does not serve the account, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    ineligible: Option<Refusal>,
    methods: Vec<MethodInfo>,
    /// Where `verify/start` would send the caller code (masked); absent: the caller cannot be
    /// verified here.
    #[serde(skip_serializing_if = "Option::is_none")]
    code_to: Option<String>,
    events: Vec<EventInfo>,
    support_id: String,
}

/// A caller code on its way to the user.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerificationStarted {
    /// Send it with the code (64 hex digits). Keep it like a session cookie.
    verification_id: String,
    /// Where the code went, masked: tell the caller to look there.
    sent_to: String,
    /// Seconds until the code expires.
    expires_in_secs: i64,
    support_id: String,
}

/// The caller is verified: the acts are open.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerificationPassed {
    /// The verification's NEW id (the old one is dead): send it with every act.
    verification_id: String,
    /// The acts are open until this time (Unix seconds) …
    verified_until: i64,
    /// … that is, for this many seconds.
    expires_in_secs: i64,
    support_id: String,
}

/// An act was carried out; the user was mailed.
#[derive(Serialize, ToSchema)]
pub(crate) struct ActDone {
    ok: bool,
    message: String,
    support_id: String,
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

/// The user is sensitive: the act waits for an approver (in the console's approvals list).
#[derive(Serialize, ToSchema)]
pub(crate) struct PendingApproval {
    /// The request's id, as the approvers see it.
    request_id: String,
    /// The request expires unapproved at this time (Unix seconds).
    expires_at: i64,
    expires_in_secs: i64,
    message: String,
    support_id: String,
}

// ---- operations -----------------------------------------------------------------------------

/// Look a user up.
///
/// Account state, tier, whether acts need an approver, the enrolled methods (masked) and the
/// recent events. Never a secret. Audited (`lookup`).
#[utoipa::path(post, path = "/api/v1/helpdesk/lookup", tag = "helpdesk",
    request_body = AccountRequest,
    responses((status = 200, description = "The user.", body = UserView), Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn lookup(
    State(s): State<AppState>,
    call: Call<Helpdesk>,
    ApiJson(f): ApiJson<AccountRequest>,
) -> Answer<UserView> {
    match s.engine.helpdesk_api_lookup(&call.req, &f.username).await {
        Ok(card) => Ok(Json(user_view(&call, card))),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Start verifying the caller.
///
/// A 6-digit code goes to the user's enrolled email address (else phone), older than the
/// enrollment cool-down; the caller reads it back (`verify`). Privileged, out-of-scope and
/// unenrolled users are refused.
#[utoipa::path(post, path = "/api/v1/helpdesk/verify/start", tag = "helpdesk",
    request_body = AccountRequest,
    responses((status = 200, description = "The code is on its way.", body = VerificationStarted), Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn verify_start(
    State(s): State<AppState>,
    call: Call<Helpdesk>,
    ApiJson(f): ApiJson<AccountRequest>,
) -> Answer<VerificationStarted> {
    match s
        .engine
        .helpdesk_api_verify_start(&call.req, &f.username)
        .await
    {
        Ok(CallerCode {
            id,
            sent_to,
            expires_at,
        }) => Ok(Json(VerificationStarted {
            verification_id: id,
            sent_to,
            expires_in_secs: expires_at - s.engine.unix_now(),
            support_id: call.req.support_id.clone(),
        })),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Check the code the caller read out.
///
/// Right: the acts are open for this user, with the verification's NEW id, for the configured
/// time (`[helpdesk] caller_secs`). Wrong: `422 RK-VERIFY-001`; the fifth wrong code voids it
/// (`429 RK-VERIFY-002`). Answers at the fixed answer deadline either way.
#[utoipa::path(post, path = "/api/v1/helpdesk/verify", tag = "helpdesk",
    request_body = VerifyRequest,
    responses((status = 200, description = "The caller is verified.", body = VerificationPassed), Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn verify(
    State(s): State<AppState>,
    call: Call<Helpdesk>,
    ApiJson(f): ApiJson<VerifyRequest>,
) -> Answer<VerificationPassed> {
    let start = tokio::time::Instant::now();
    let id = hex_id(&call.req.support_id, "verification_id", &f.verification_id)?;
    let work = s.engine.helpdesk_api_verify(&call.req, id, &f.code);
    match crate::at_deadline(start, s.cfg.answer_deadline, work).await {
        Ok(CallerVerified { id, until }) => Ok(Json(VerificationPassed {
            verification_id: id,
            verified_until: until,
            expires_in_secs: until - s.engine.unix_now(),
            support_id: call.req.support_id.clone(),
        })),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Unlock the verified caller's account.
///
/// Clears the lockout (no password change) and mails the user. On a sensitive user: `202`, the
/// request waits for an approver.
#[utoipa::path(post, path = "/api/v1/helpdesk/unlock", tag = "helpdesk",
    request_body = ActRequest,
    responses(
        (status = 200, description = "Unlocked.", body = ActDone),
        (status = 202, description = "Waits for an approver.", body = PendingApproval),
        Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn unlock(
    s: State<AppState>,
    call: Call<Helpdesk>,
    body: ApiJson<ActRequest>,
) -> Result<Response, ApiError> {
    act(s, call, body, Act::Unlock).await
}

/// Require a password change at next sign-in.
///
/// For the verified caller's account (`pwdLastSet = 0`); mails the user. On a sensitive user:
/// `202`, the request waits for an approver.
#[utoipa::path(post, path = "/api/v1/helpdesk/must-change", tag = "helpdesk",
    request_body = ActRequest,
    responses(
        (status = 200, description = "Set.", body = ActDone),
        (status = 202, description = "Waits for an approver.", body = PendingApproval),
        Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn must_change(
    s: State<AppState>,
    call: Call<Helpdesk>,
    body: ApiJson<ActRequest>,
) -> Result<Response, ApiError> {
    act(s, call, body, Act::MustChange).await
}

/// Issue a helpdesk code.
///
/// A one-time code for the verified caller, where the user's tier counts helpdesk codes; a new
/// code replaces the previous one. The user types it at the first gate. On a sensitive user:
/// `202`, and the approver reads the code out once approved.
#[utoipa::path(post, path = "/api/v1/helpdesk/code", tag = "helpdesk",
    request_body = ActRequest,
    responses(
        (status = 200, description = "The code.", body = HelpdeskCode),
        (status = 202, description = "Waits for an approver.", body = PendingApproval),
        Errors),
    security(("bearer" = ["helpdesk"])))]
pub(crate) async fn code(
    s: State<AppState>,
    call: Call<Helpdesk>,
    body: ApiJson<ActRequest>,
) -> Result<Response, ApiError> {
    act(s, call, body, Act::ResetCode).await
}

// ---- helpers --------------------------------------------------------------------------------

async fn act(
    State(s): State<AppState>,
    call: Call<Helpdesk>,
    ApiJson(f): ApiJson<ActRequest>,
    act: Act,
) -> Result<Response, ApiError> {
    let id = hex_id(&call.req.support_id, "verification_id", &f.verification_id)?;
    let outcome = s
        .engine
        .helpdesk_api_act(&call.req, id, &f.username, act)
        .await
        .map_err(|e| call.fail(&e))?;
    let h = texts::of(call.t);
    let support_id = call.req.support_id.clone();
    Ok(match outcome {
        ActOutcome::Done => Json(ActDone {
            ok: true,
            message: match act {
                Act::MustChange => h.done_must_change,
                _ => h.done_unlock,
            }
            .to_owned(),
            support_id,
        })
        .into_response(),
        ActOutcome::Code(code) => Json(HelpdeskCode {
            code,
            expires_in_secs: s.engine.config().helpdesk_code_ttl.clamp(60, 3600),
            support_id,
        })
        .into_response(),
        ActOutcome::Pending { id, expires_at } => (
            StatusCode::ACCEPTED,
            Json(PendingApproval {
                message: format!("{} {id}", h.pending),
                request_id: id,
                expires_at,
                expires_in_secs: expires_at - s.engine.unix_now(),
                support_id,
            }),
        )
            .into_response(),
    })
}

fn user_view(call: &Call<Helpdesk>, card: UserCard) -> UserView {
    UserView {
        username: card.sam,
        display_name: card.display_name,
        enabled: card.enabled,
        locked: card.locked,
        password_expired: card.password_expired,
        must_change: card.must_change,
        privileged: card.privileged,
        sensitive: card.sensitive,
        ineligible: card.ineligible.map(|why| Refusal {
            code: why.code(),
            message: crate::i18n::message(call.t, why.code(), why.message()).to_owned(),
        }),
        methods: card
            .methods
            .into_iter()
            .map(|m| MethodInfo {
                kind: match m.kind {
                    MethodKind::Email => MethodName::Email,
                    MethodKind::Sms => MethodName::Sms,
                    MethodKind::Totp => MethodName::Totp,
                    MethodKind::Passkey => MethodName::Passkey,
                    MethodKind::Questions => MethodName::Questions,
                },
                hint: m.hint,
                strength: m.strength.as_str(),
                enrolled_at: m.enrolled_at,
                last_used_at: m.last_used_at,
                usable_from: m.usable_from,
            })
            .collect(),
        code_to: card.code_to,
        events: card
            .events
            .into_iter()
            .map(|e| EventInfo {
                at_ms: e.at_ms,
                operation: e.operation,
                result: e.result,
                actor: e.actor,
            })
            .collect(),
        support_id: call.req.support_id.clone(),
    }
}
