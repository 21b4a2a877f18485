//! Enrollment of an authenticator app (QR code and key), a passkey (`/static/passkey.js`) and
//! security questions. Starting a setup is a POST (it changes the flow); its page is a GET; the
//! confirming POST ends on the methods page.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rekey_core::engine::{EngineError, EnrollStep};
use serde::Deserialize;

use super::enroll::{METHODS, Setup, setup_done, setup_get};
use super::gates::CodeForm;
use super::{CsrfOnly, Ctx, FlowCookie, ScalarForm};
use crate::AppState;
use crate::views::{EnrollQuestionsPage, PasskeyPage, TotpPage, grouped, json_for_script, qr_svg};

/// How many questions the form asks for (the engine takes 3–5).
const QUESTION_ROWS: usize = 3;

pub async fn enroll_totp_begin(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_totp_begin(&ctx.req, &flow).await {
        Ok(()) => ctx.redirect("/enroll/totp", FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub(super) async fn totp_page(
    s: &AppState,
    ctx: &Ctx,
    flow: &str,
    error: Option<String>,
) -> Response {
    match s.engine.enroll_step(flow).await {
        Ok(EnrollStep::Totp { uri, secret }) => {
            let Some(qr) = qr_svg(&uri) else {
                return ctx.error(&EngineError::MethodUnavailable, METHODS);
            };
            let page = TotpPage {
                c: ctx.common(ctx.t.totp_title),
                qr,
                key: grouped(&secret),
                error,
            };
            ctx.render(StatusCode::OK, &page)
        }
        Ok(_) => ctx.redirect(METHODS, FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub async fn enroll_totp(State(s): State<AppState>, ctx: Ctx) -> Response {
    setup_get(&s, &ctx, Setup::App).await
}

pub async fn enroll_totp_confirm(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CodeForm>,
) -> Response {
    super::enroll::setup_post(&s, &ctx, f, Setup::App).await
}

pub async fn enroll_passkey_begin(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_passkey_begin(&ctx.req, &flow).await {
        Ok(()) => ctx.redirect("/enroll/passkey", FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub(super) async fn register_page(
    s: &AppState,
    ctx: &Ctx,
    flow: &str,
    alert: Option<String>,
) -> Response {
    match s.engine.enroll_step(flow).await {
        Ok(EnrollStep::Passkey { options }) => {
            let page = PasskeyPage {
                c: ctx.common(ctx.t.passkey_register_title),
                lead: ctx.t.passkey_register_lead,
                alert,
                options: json_for_script(&options),
                mode: "create",
                action: "/enroll/passkey/finish",
                label: true,
                button: ctx.t.passkey_create_button,
                other: "/enroll",
                other_text: ctx.t.start_over,
            };
            ctx.render_scripted(StatusCode::OK, &page)
        }
        Ok(_) => ctx.redirect(METHODS, FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub async fn enroll_passkey(State(s): State<AppState>, ctx: Ctx) -> Response {
    setup_get(&s, &ctx, Setup::Passkey).await
}

#[derive(Deserialize)]
pub struct RegisterForm {
    csrf: String,
    /// The browser's `create()` answer (JSON), filled in by `/static/passkey.js`.
    credential: String,
    #[serde(default)]
    label: String,
}

pub async fn enroll_passkey_finish(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<RegisterForm>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let result = s
        .engine
        .enroll_passkey_finish(&ctx.req, &flow, &f.credential, &f.label)
        .await;
    setup_done(&s, &ctx, &flow, Setup::Passkey, result).await
}

/// The questions form, with the admin's list (if any) from the methods page's step.
pub(super) async fn questions_page(
    s: &AppState,
    ctx: &Ctx,
    flow: &str,
    error: Option<String>,
) -> Response {
    match s.engine.enroll_step(flow).await {
        Ok(EnrollStep::Manage { questions, .. }) => {
            let page = EnrollQuestionsPage {
                c: ctx.common(ctx.t.enroll_questions_title),
                list: questions,
                rows: (1..=QUESTION_ROWS).collect(),
                error,
            };
            ctx.render(StatusCode::OK, &page)
        }
        Ok(_) => ctx.redirect(METHODS, FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub async fn enroll_questions(State(s): State<AppState>, ctx: Ctx) -> Response {
    setup_get(&s, &ctx, Setup::Questions).await
}

#[derive(Deserialize)]
pub struct QuestionsForm {
    csrf: String,
    question1: String,
    answer1: String,
    question2: String,
    answer2: String,
    question3: String,
    answer3: String,
}

pub async fn enroll_questions_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<QuestionsForm>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pairs = [
        (f.question1, f.answer1),
        (f.question2, f.answer2),
        (f.question3, f.answer3),
    ];
    let result = s.engine.enroll_questions(&ctx.req, &flow, &pairs).await;
    setup_done(&s, &ctx, &flow, Setup::Questions, result).await
}
