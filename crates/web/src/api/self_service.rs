//! Self-service for a chat bot (scope `self_service`): reset and unlock (identify → the code the
//! user got → further gates if the tier asks → new password / confirm), change, and the result
//! of a reset whose zones are still moving. One engine call per request, the pages' fixed
//! deadlines (invariant 9): identify answers the same — a flow id — for every account, at
//! `identify_deadline`; gate answers at `answer_deadline`; change at `password_deadline`.
//!
//! The flow id travels in the JSON body, never in the URL (invariant 12), and changes whenever a
//! gate passes (invariant 13): always send the `flow_id` of the last answer.

use axum::Json;
use axum::extract::State;
use rekey_core::Password;
use rekey_core::engine::{Chosen, EngineError, Progress};
use rekey_core::method::Method;
use rekey_core::policy::PolicySource;
use rekey_core::store::FlowKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Call, SelfService};
use super::body::{ApiJson, hex_id};
use super::error::{ApiError, Errors};
use super::views::{Outcome, outcome};
use crate::AppState;

type Answer<T> = Result<Json<T>, ApiError>;

// ---- bodies ---------------------------------------------------------------------------------

/// Start a reset or unlock for the account a user named.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentifyRequest {
    /// What the user typed: user name, UPN or email address.
    username: String,
    /// After a `RK-RATE-002` answer: its `proof_of_work.challenge` ...
    #[serde(default)]
    pow_challenge: Option<String>,
    /// ... and the solution (the counter, or `wait` after `wait_secs`).
    #[serde(default)]
    pow: Option<String>,
}

/// A flow and nothing else.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowRequest {
    /// The `flow_id` of the previous answer.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    flow_id: String,
}

/// The code the user received (email, SMS), read from their authenticator app, or got from the
/// helpdesk.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeRequest {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    flow_id: String,
    code: String,
}

/// A method the API can pass (passkeys need a browser: use the portal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiMethod {
    EmailOtp,
    SmsOtp,
    Totp,
    Questions,
    HelpdeskCode,
}

impl ApiMethod {
    fn of(m: Method) -> Option<Self> {
        match m {
            Method::EmailOtp => Some(Self::EmailOtp),
            Method::SmsOtp => Some(Self::SmsOtp),
            Method::Totp => Some(Self::Totp),
            Method::Questions => Some(Self::Questions),
            Method::HelpdeskCode => Some(Self::HelpdeskCode),
            Method::Passkey => None,
        }
    }

    fn method(self) -> Method {
        match self {
            Self::EmailOtp => Method::EmailOtp,
            Self::SmsOtp => Method::SmsOtp,
            Self::Totp => Method::Totp,
            Self::Questions => Method::Questions,
            Self::HelpdeskCode => Method::HelpdeskCode,
        }
    }
}

/// The next gate, from `choices`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChooseRequest {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    flow_id: String,
    method: ApiMethod,
}

/// The answers to the questions of `next = questions`, in their order (3 to 5).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuestionsRequest {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    flow_id: String,
    #[serde(default)]
    answer1: Option<String>,
    #[serde(default)]
    answer2: Option<String>,
    #[serde(default)]
    answer3: Option<String>,
    #[serde(default)]
    answer4: Option<String>,
    #[serde(default)]
    answer5: Option<String>,
}

/// The new password of a verified reset flow (byte-exact: never trimmed).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordRequest {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    flow_id: String,
    new_password: String,
}

/// Change a password knowing the current one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeRequest {
    username: String,
    current_password: String,
    new_password: String,
}

/// The receipt of an outcome whose zones were still moving.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultRequest {
    #[schema(pattern = "^[0-9a-f]{64}$")]
    receipt: String,
}

// ---- answers --------------------------------------------------------------------------------

/// What the flow needs next.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Next {
    /// Send the code the user has (`/api/v1/flow/code`).
    Code,
    /// Another gate is needed: list them (`/api/v1/flow/choices`), choose one (`/flow/choose`).
    ChooseMethod,
    /// Send the answers to `questions` (`/api/v1/flow/questions`).
    Questions,
    /// Every gate passed: set the new password (`/api/v1/reset/password`) or confirm the
    /// unlock (`/api/v1/unlock/confirm`), whichever flow this is.
    Verified,
}

/// A flow's step.
#[derive(Serialize, ToSchema)]
pub(crate) struct FlowStep {
    /// The flow's id from now on (64 hex digits); it changes when a gate passes. Keep it like a
    /// session cookie: it is the user's proof so far.
    flow_id: String,
    next: Next,
    /// `next = questions`: the questions, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    questions: Option<Vec<String>>,
    support_id: String,
}

/// A method offered as the next gate.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChoiceView {
    method: ApiMethod,
    /// A masked hint (`j***@e***.com`, `+** *** ** 12`), empty for methods without one.
    hint: String,
    /// `knowledge`, `possession` or `phishing_resistant`.
    strength: &'static str,
}

/// The further gates this flow may use.
#[derive(Serialize, ToSchema)]
pub(crate) struct Choices {
    choices: Vec<ChoiceView>,
    support_id: String,
}

/// The password rules the new password must meet (shown before asking for it).
#[derive(Serialize, ToSchema)]
pub(crate) struct PolicyView {
    min_length: u32,
    /// Three of: upper-case, lower-case, digits, symbols; not the user's name.
    complexity: bool,
    /// How many previous passwords cannot be reused.
    history_length: u32,
    /// Entra ID's rules apply too (printable ASCII, at least 8).
    entra_rules: bool,
    /// The rules, in plain words.
    rules: Vec<String>,
    support_id: String,
}

// ---- helpers --------------------------------------------------------------------------------

/// A flow id or receipt of this call's body (`body::hex_id`).
fn id<'a, S>(call: &Call<S>, field: &str, value: &'a str) -> Result<&'a str, ApiError> {
    hex_id(&call.req.support_id, field, value)
}

fn step(call: &Call<SelfService>, flow_id: String, next: Next) -> Json<FlowStep> {
    Json(FlowStep {
        flow_id,
        next,
        questions: None,
        support_id: call.req.support_id.clone(),
    })
}

fn progressed(call: &Call<SelfService>, p: Progress) -> Json<FlowStep> {
    match p {
        Progress::Verified(id) => step(call, id, Next::Verified),
        Progress::More(id) => step(call, id, Next::ChooseMethod),
    }
}

// ---- operations -----------------------------------------------------------------------------

/// Start a reset.
///
/// The answer is the same for every account — unknown, ambiguous, disabled, out of scope,
/// privileged, unenrolled, locked or normal — and comes at the same fixed deadline: a flow id
/// and `next = code`. Only an eligible, enrolled user gets a code.
#[utoipa::path(post, path = "/api/v1/reset/identify", tag = "self-service",
    request_body = IdentifyRequest,
    responses((status = 200, description = "A flow; the user now needs the code they got.", body = FlowStep), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn reset_identify(
    s: State<AppState>,
    call: Call<SelfService>,
    body: ApiJson<IdentifyRequest>,
) -> Answer<FlowStep> {
    identify(s, call, body, FlowKind::Reset).await
}

/// Start an unlock.
///
/// No password change; the same answer for every account at the same deadline, as for a reset.
#[utoipa::path(post, path = "/api/v1/unlock/identify", tag = "self-service",
    request_body = IdentifyRequest,
    responses((status = 200, description = "A flow; the user now needs the code they got.", body = FlowStep), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn unlock_identify(
    s: State<AppState>,
    call: Call<SelfService>,
    body: ApiJson<IdentifyRequest>,
) -> Answer<FlowStep> {
    identify(s, call, body, FlowKind::Unlock).await
}

async fn identify(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<IdentifyRequest>,
    kind: FlowKind,
) -> Answer<FlowStep> {
    let start = tokio::time::Instant::now();
    let pow = f.pow_challenge.as_deref().zip(f.pow.as_deref());
    let work = s.engine.start_reset_pow(&call.req, kind, &f.username, pow);
    match crate::at_deadline(start, s.cfg.identify_deadline, work).await {
        Ok(flow) => Ok(step(&call, flow, Next::Code)),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Check the code the user has.
///
/// The first gate's (sent by email or SMS, from the authenticator app, or from the helpdesk),
/// or a chosen gate's. A wrong code reads the same for every account.
#[utoipa::path(post, path = "/api/v1/flow/code", tag = "self-service",
    request_body = CodeRequest,
    responses((status = 200, description = "The gate passed: the flow's NEW id and what comes next.", body = FlowStep), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn flow_code(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<CodeRequest>,
) -> Answer<FlowStep> {
    let start = tokio::time::Instant::now();
    let flow = id(&call, "flow_id", &f.flow_id)?;
    let work = s.engine.verify_reset_code(&call.req, flow, &f.code);
    match crate::at_deadline(start, s.cfg.answer_deadline, work).await {
        Ok(p) => Ok(progressed(&call, p)),
        Err(e) => Err(call.fail(&e)),
    }
}

/// List the further gates.
///
/// After `next = choose_method`: the methods this user may pass next, with masked hints.
/// Passkeys are not offered here: they need a browser.
#[utoipa::path(post, path = "/api/v1/flow/choices", tag = "self-service",
    request_body = FlowRequest,
    responses((status = 200, description = "The methods to choose from.", body = Choices), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn flow_choices(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<FlowRequest>,
) -> Answer<Choices> {
    let flow = id(&call, "flow_id", &f.flow_id)?;
    match s.engine.gate_choices(flow).await {
        Ok(list) => Ok(Json(Choices {
            choices: list
                .into_iter()
                .filter_map(|c| {
                    Some(ChoiceView {
                        method: ApiMethod::of(c.method)?,
                        hint: c.hint,
                        strength: c.strength.as_str(),
                    })
                })
                .collect(),
            support_id: call.req.support_id.clone(),
        })),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Choose the next gate.
///
/// A code is sent (email, SMS) or expected (app, helpdesk), or the questions are asked.
#[utoipa::path(post, path = "/api/v1/flow/choose", tag = "self-service",
    request_body = ChooseRequest,
    responses((status = 200, description = "What the chosen gate needs (the flow id is unchanged).", body = FlowStep), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn flow_choose(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<ChooseRequest>,
) -> Answer<FlowStep> {
    let start = tokio::time::Instant::now();
    let flow = id(&call, "flow_id", &f.flow_id)?.to_owned();
    let work = s.engine.choose_gate(&call.req, &flow, f.method.method());
    match crate::at_deadline(start, s.cfg.answer_deadline, work).await {
        Ok(Chosen::Code(_)) => Ok(step(&call, flow, Next::Code)),
        Ok(Chosen::Questions { questions }) => {
            let mut out = step(&call, flow, Next::Questions);
            out.questions = Some(questions);
            Ok(out)
        }
        // Not reachable: `ApiMethod` has no passkey.
        Ok(Chosen::Passkey { .. }) => Err(call.fail(&EngineError::MethodUnavailable)),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Check the security questions.
///
/// The answers to the questions of `next = questions`, in their order.
#[utoipa::path(post, path = "/api/v1/flow/questions", tag = "self-service",
    request_body = QuestionsRequest,
    responses((status = 200, description = "The gate passed: the flow's NEW id and what comes next.", body = FlowStep), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn flow_questions(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<QuestionsRequest>,
) -> Answer<FlowStep> {
    let start = tokio::time::Instant::now();
    let flow = id(&call, "flow_id", &f.flow_id)?.to_owned();
    let given: Vec<String> = [f.answer1, f.answer2, f.answer3, f.answer4, f.answer5]
        .into_iter()
        .flatten()
        .collect();
    let work = s.engine.verify_questions(&call.req, &flow, &given);
    match crate::at_deadline(start, s.cfg.answer_deadline, work).await {
        Ok(p) => Ok(progressed(&call, p)),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Read the password rules.
///
/// The rules for this user (a verified reset flow), to show before asking for the new one.
#[utoipa::path(post, path = "/api/v1/reset/policy", tag = "self-service",
    request_body = FlowRequest,
    responses((status = 200, description = "The effective rules.", body = PolicyView), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn reset_policy(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<FlowRequest>,
) -> Answer<PolicyView> {
    let flow = id(&call, "flow_id", &f.flow_id)?;
    let p = s
        .engine
        .reset_policy(flow)
        .await
        .map_err(|e| call.fail(&e))?;
    let t = call.t;
    let mut rules = vec![t.policy_min_length.replace("{}", &p.min_length.to_string())];
    if p.complexity {
        rules.push(t.policy_complexity.into());
    }
    if p.history_length > 0 {
        rules.push(
            t.policy_history
                .replace("{}", &p.history_length.to_string()),
        );
    }
    rules.push(t.policy_banned.into());
    if p.entra_rules {
        rules.push(t.policy_entra.into());
    }
    if matches!(p.source, PolicySource::Pso { .. }) {
        rules.push(t.policy_source_pso.into());
    }
    Ok(Json(PolicyView {
        min_length: p.min_length,
        complexity: p.complexity,
        history_length: p.history_length,
        entra_rules: p.entra_rules,
        rules,
        support_id: call.req.support_id.clone(),
    }))
}

/// Set the new password.
///
/// In every zone of a verified reset flow, Active Directory first. A refused password (`422`:
/// `RK-PWD-010` with `violations` for the local rules, another `RK-PWD-…` code for the
/// directory's) leaves the flow where it was: send another.
#[utoipa::path(post, path = "/api/v1/reset/password", tag = "self-service",
    request_body = PasswordRequest,
    responses((status = 200, description = "The outcome per zone; the flow is over.", body = Outcome), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn reset_password(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<PasswordRequest>,
) -> Answer<Outcome> {
    let flow = id(&call, "flow_id", &f.flow_id)?.to_owned();
    let new = Password::new(f.new_password);
    match s.engine.complete_reset(&call.req, &flow, &new).await {
        Ok(out) => Ok(Json(outcome(call.t, call.t.reset_done, &out))),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Confirm the unlock.
///
/// Clears the lockout of a verified unlock flow (no password change).
#[utoipa::path(post, path = "/api/v1/unlock/confirm", tag = "self-service",
    request_body = FlowRequest,
    responses((status = 200, description = "The outcome; the flow is over.", body = Outcome), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn unlock_confirm(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<FlowRequest>,
) -> Answer<Outcome> {
    let flow = id(&call, "flow_id", &f.flow_id)?;
    match s.engine.complete_unlock(&call.req, flow).await {
        Ok(out) => Ok(Json(outcome(call.t, call.t.unlock_done, &out))),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Change a password with the current one.
///
/// One directory operation; Rekey's own attempt budget is reserved first, so callers can never
/// lock the account. Every failure that could tell whether the account exists reads the same
/// (`RK-CHANGE-001`), at the same fixed deadline.
#[utoipa::path(post, path = "/api/v1/change", tag = "self-service",
    request_body = ChangeRequest,
    responses((status = 200, description = "The outcome per zone.", body = Outcome), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn change(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<ChangeRequest>,
) -> Answer<Outcome> {
    let start = tokio::time::Instant::now();
    let (old, new) = (
        Password::new(f.current_password),
        Password::new(f.new_password),
    );
    let work = s.engine.change(&call.req, &f.username, &old, &new);
    match crate::at_deadline(start, s.cfg.password_deadline, work).await {
        Ok(out) => Ok(Json(outcome(call.t, call.t.change_done, &out))),
        Err(e) => Err(call.fail(&e)),
    }
}

/// Read an outcome again.
///
/// The outcome of a reset, unlock or change whose zones were still moving (its `receipt`).
#[utoipa::path(post, path = "/api/v1/result", tag = "self-service",
    request_body = ResultRequest,
    responses((status = 200, description = "The outcome per zone now.", body = Outcome), Errors),
    security(("bearer" = ["self_service"])))]
pub(crate) async fn result(
    State(s): State<AppState>,
    call: Call<SelfService>,
    ApiJson(f): ApiJson<ResultRequest>,
) -> Answer<Outcome> {
    let receipt = id(&call, "receipt", &f.receipt)?;
    match s.engine.receipt(receipt).await {
        Ok(out) => Ok(Json(outcome(call.t, call.t.reset_done, &out))),
        Err(e) => Err(call.fail(&e)),
    }
}
