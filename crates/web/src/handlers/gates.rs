//! Gates: the code page (the first gate: one page for every account, decoys included), the
//! choice of a further gate, the passkey page and the security questions. Reset, unlock and
//! enrollment's step-up share these handlers; each passes its own routes (`GateRoutes`), which
//! is also how a handler knows where a passed gate leads.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rekey_core::engine::{Choice, Chosen, EngineError, Progress};
use rekey_core::method::Method;
use rekey_core::store::FlowKind;
use serde::Deserialize;

use super::{CsrfOnly, Ctx, FlowCookie, ScalarForm};
use crate::AppState;
use crate::views::{Alt, ChoiceRow, Choices, Field, Form, PasskeyPage, QuestionsPage};

/// Where one kind of flow keeps its gate pages.
pub struct GateRoutes {
    pub kind: FlowKind,
    /// Where the flow starts (identify, sign-in): "start again".
    pub start: &'static str,
    pub code: &'static str,
    /// The choice of a further gate (GET lists, POST chooses).
    pub more: &'static str,
    pub passkey: &'static str,
    pub questions: &'static str,
    /// Starts the flow with a passkey, without a user name (reset and unlock only).
    pub passkey_start: Option<&'static str>,
    /// Where the flow goes once every gate passed.
    pub verified: &'static str,
    /// Where a GET goes when the flow is at no gate that page shows.
    pub elsewhere: &'static str,
}

pub static RESET: GateRoutes = GateRoutes {
    kind: FlowKind::Reset,
    start: "/reset",
    code: "/reset/code",
    more: "/reset/more",
    passkey: "/reset/passkey",
    questions: "/reset/questions",
    passkey_start: Some("/reset/passkey/start"),
    verified: "/reset/password",
    elsewhere: "/reset",
};

pub static UNLOCK: GateRoutes = GateRoutes {
    kind: FlowKind::Unlock,
    start: "/unlock",
    code: "/unlock/code",
    more: "/unlock/more",
    passkey: "/unlock/passkey",
    questions: "/unlock/questions",
    passkey_start: Some("/unlock/passkey/start"),
    verified: "/unlock/confirm",
    elsewhere: "/unlock",
};

/// Enrollment's step-up: a method the user already has proves it is them.
pub static ENROLL: GateRoutes = GateRoutes {
    kind: FlowKind::Enroll,
    start: "/enroll",
    code: "/enroll/verify",
    more: "/enroll/stepup",
    passkey: "/enroll/stepup/passkey",
    questions: "/enroll/stepup/questions",
    passkey_start: None,
    verified: "/enroll/methods",
    elsewhere: "/enroll/methods",
};

/// The gate pages of one kind of flow.
pub fn routes(g: &'static GateRoutes) -> Router<AppState> {
    let r = Router::new()
        .route(
            g.code,
            get(move |State(s): State<AppState>, c: Ctx| async move {
                gate_page(&s, &c, g, g.code).await
            })
            .post(move |s: State<AppState>, c: Ctx, f: ScalarForm<CodeForm>| code_post(s, c, f, g)),
        )
        .route(
            g.more,
            get(move |s: State<AppState>, c: Ctx| more_page(s, c, g)).post(
                move |s: State<AppState>, c: Ctx, f: ScalarForm<ChooseForm>| more_post(s, c, f, g),
            ),
        )
        .route(
            g.passkey,
            get(move |State(s): State<AppState>, c: Ctx| async move {
                gate_page(&s, &c, g, g.passkey).await
            })
            .post(
                move |s: State<AppState>, c: Ctx, f: ScalarForm<PasskeyForm>| {
                    passkey_post(s, c, f, g)
                },
            ),
        )
        .route(
            g.questions,
            get(move |State(s): State<AppState>, c: Ctx| async move {
                gate_page(&s, &c, g, g.questions).await
            })
            .post(
                move |s: State<AppState>, c: Ctx, f: ScalarForm<AnswersForm>| {
                    questions_post(s, c, f, g)
                },
            ),
        );
    match g.passkey_start {
        Some(path) => r.route(
            path,
            post(move |s: State<AppState>, c: Ctx, f: ScalarForm<CsrfOnly>| {
                passkey_start(s, c, f, g)
            }),
        ),
        None => r,
    }
}

/// The page that shows a chosen gate.
pub(super) fn page_of(chosen: &Chosen, g: &GateRoutes) -> &'static str {
    match chosen {
        Chosen::Code(_) => g.code,
        Chosen::Passkey { .. } => g.passkey,
        Chosen::Questions { .. } => g.questions,
    }
}

/// A passed gate: on to the next step, under the flow's new id (invariant 13).
fn progressed(ctx: &Ctx, p: Progress, g: &GateRoutes) -> Response {
    match p {
        Progress::Verified(id) => ctx.redirect(g.verified, FlowCookie::Set(id)),
        Progress::More(id) => ctx.redirect(g.more, FlowCookie::Set(id)),
    }
}

/// A GET of a gate page the flow is not at goes where the flow can go on; anything else is an
/// error page.
fn get_failed(ctx: &Ctx, e: &EngineError, g: &GateRoutes) -> Response {
    match e {
        EngineError::WrongStep => ctx.redirect(g.elsewhere, FlowCookie::Keep),
        e => ctx.error(e, g.start),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    pub(super) csrf: String,
    pub(super) code: String,
}

/// The code page's lead. The first gate's is one text for every account (invariant 9): the
/// engine reports it as an email code whoever the account is, so an email code chosen later
/// reads the same; an SMS or app code chosen as a further gate is named.
fn code_lead(ctx: &Ctx, g: &GateRoutes, method: Method) -> &'static str {
    match (g.kind, method) {
        (FlowKind::Enroll, Method::EmailOtp) => ctx.t.code_lead_email,
        (_, Method::SmsOtp) => ctx.t.code_lead_sms,
        (_, Method::Totp) => ctx.t.code_lead_totp,
        _ => ctx.t.code_lead,
    }
}

/// The code page. `passkeys`: the server offers passkeys, so the first gate offers "use a
/// passkey instead" (the same for every account: it depends on the configuration only).
pub(super) fn code_form(
    ctx: &Ctx,
    g: &GateRoutes,
    method: Method,
    error: Option<String>,
    passkeys: bool,
) -> Form {
    let mut field = Field::new("code", ctx.t.code_label, "text", "one-time-code");
    field.error = error;
    let first = g.kind != FlowKind::Enroll && method == Method::EmailOtp;
    Form {
        c: ctx.common(ctx.t.code_title),
        lead: Some(code_lead(ctx, g, method).into()),
        alert: None,
        support_id: None,
        rules: vec![],
        action: g.code,
        fields: vec![field],
        button: ctx.t.verify,
        alt: g
            .passkey_start
            .filter(|_| first && passkeys)
            .map(|action| Alt {
                lead: ctx.t.passkey_instead_lead,
                action,
                button: ctx.t.passkey_instead,
            }),
        link: (!first).then_some((g.more, ctx.t.other_methods)),
    }
}

/// The page of the gate the flow waits for (with `alert` after a wrong answer); a flow that
/// waits for another gate than the page `here` is sent to that gate's page.
async fn pending_page(
    s: &AppState,
    ctx: &Ctx,
    g: &'static GateRoutes,
    flow: &str,
    here: &str,
    alert: Option<String>,
) -> Response {
    let chosen = match s.engine.pending_gate(flow).await {
        Ok(c) => c,
        Err(e) => return get_failed(ctx, &e, g),
    };
    let page = page_of(&chosen, g);
    if page != here {
        return ctx.redirect(page, FlowCookie::Keep);
    }
    match chosen {
        Chosen::Code(m) => {
            let form = code_form(ctx, g, m, alert, s.engine.passkeys_enabled());
            ctx.render(StatusCode::OK, &form)
        }
        Chosen::Passkey { options } => {
            let view = passkey_page_view(ctx, g, &options, alert);
            ctx.render_scripted(StatusCode::OK, &view)
        }
        Chosen::Questions { questions } => {
            ctx.render(StatusCode::OK, &questions_view(ctx, g, questions, alert))
        }
    }
}

/// GET of a gate page (code, passkey, questions).
async fn gate_page(s: &AppState, ctx: &Ctx, g: &'static GateRoutes, here: &str) -> Response {
    match ctx.flow_or_restart(g.start) {
        Ok(flow) => pending_page(s, ctx, g, &flow, here, None).await,
        Err(r) => r,
    }
}

/// The answer to a gate's POST: on to the next step, or the same page saying what was wrong
/// (the same bytes for every account), or an error page.
async fn answered(
    s: &AppState,
    ctx: &Ctx,
    g: &'static GateRoutes,
    flow: &str,
    here: &str,
    result: Result<Progress, EngineError>,
) -> Response {
    match result {
        Ok(p) => progressed(ctx, p, g),
        Err(
            e @ (EngineError::WrongCode | EngineError::PasskeyRefused | EngineError::WrongAnswers),
        ) => pending_page(s, ctx, g, flow, here, Some(ctx.say(&e))).await,
        Err(e) => ctx.error(&e, g.start),
    }
}

/// Same answer, same time, whatever the account (invariant 9).
async fn code_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CodeForm>,
    g: &'static GateRoutes,
) -> Response {
    let start = tokio::time::Instant::now();
    let flow = match ctx.posted_flow(&f.csrf, g.start) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let deadline = s.cfg.answer_deadline;
    let result = if g.kind == FlowKind::Enroll {
        let work = s.engine.enroll_verify_code(&ctx.req, &flow, &f.code);
        crate::at_deadline(start, deadline, work).await
    } else {
        let work = s.engine.verify_reset_code(&ctx.req, &flow, &f.code);
        crate::at_deadline(start, deadline, work).await
    };
    answered(&s, &ctx, g, &flow, g.code, result).await
}

fn choices_page(ctx: &Ctx, g: &GateRoutes, choices: &[Choice], error: Option<String>) -> Choices {
    let (heading, lead) = if g.kind == FlowKind::Enroll {
        (ctx.t.stepup_title, ctx.t.stepup_lead)
    } else {
        (ctx.t.more_title, ctx.t.more_lead)
    };
    Choices {
        c: ctx.common(heading),
        lead,
        action: g.more,
        rows: choices
            .iter()
            .map(|c| ChoiceRow {
                value: c.method.as_str(),
                name: ctx.t.method_name(c.method),
                hint: c.hint.clone(),
                strength: c.strength.as_str(),
                strength_text: ctx.t.strength_name(c.strength),
            })
            .collect(),
        error,
    }
}

async fn more_page(State(s): State<AppState>, ctx: Ctx, g: &'static GateRoutes) -> Response {
    let flow = match ctx.flow_or_restart(g.start) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.gate_choices(&flow).await {
        Ok(choices) => ctx.render(StatusCode::OK, &choices_page(&ctx, g, &choices, None)),
        Err(e) => get_failed(&ctx, &e, g),
    }
}

#[derive(Deserialize)]
pub struct ChooseForm {
    csrf: String,
    /// Absent when no radio button was selected.
    method: Option<String>,
}

async fn more_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<ChooseForm>,
    g: &'static GateRoutes,
) -> Response {
    let start = tokio::time::Instant::now();
    let flow = match ctx.posted_flow(&f.csrf, g.start) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(method) = f.method.as_deref().and_then(Method::parse) else {
        return match s.engine.gate_choices(&flow).await {
            Ok(choices) => {
                let error = Some(ctx.t.choose_error.to_owned());
                ctx.render(StatusCode::OK, &choices_page(&ctx, g, &choices, error))
            }
            Err(e) => ctx.error(&e, g.start),
        };
    };
    // A code goes out (or not, over a budget) behind the same answer at the same time.
    let work = s.engine.choose_gate(&ctx.req, &flow, method);
    match crate::at_deadline(start, s.cfg.answer_deadline, work).await {
        Ok(chosen) => ctx.redirect(page_of(&chosen, g), FlowCookie::Keep),
        Err(e) => ctx.error(&e, g.start),
    }
}

/// "Use a passkey instead": a new flow without a user name (a discoverable credential names its
/// user), the same for everyone.
async fn passkey_start(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
    g: &'static GateRoutes,
) -> Response {
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    match s.engine.start_passkey(&ctx.req, g.kind).await {
        Ok(flow) => ctx.redirect(g.passkey, FlowCookie::Set(flow)),
        Err(e) => ctx.error(&e, g.start),
    }
}

fn passkey_page_view(
    ctx: &Ctx,
    g: &GateRoutes,
    options: &str,
    alert: Option<String>,
) -> PasskeyPage {
    PasskeyPage {
        c: ctx.common(ctx.t.passkey_title),
        lead: ctx.t.passkey_lead,
        alert,
        options: crate::views::json_for_script(options),
        mode: "get",
        action: g.passkey,
        label: false,
        button: ctx.t.passkey_button,
        other: g.more,
        other_text: ctx.t.other_methods,
    }
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    pub(super) csrf: String,
    /// The browser's answer (JSON), filled in by `/static/passkey.js`.
    pub(super) credential: String,
}

async fn passkey_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<PasskeyForm>,
    g: &'static GateRoutes,
) -> Response {
    let start = tokio::time::Instant::now();
    let flow = match ctx.posted_flow(&f.csrf, g.start) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let work = s.engine.verify_passkey(&ctx.req, &flow, &f.credential);
    let result = crate::at_deadline(start, s.cfg.answer_deadline, work).await;
    answered(&s, &ctx, g, &flow, g.passkey, result).await
}

fn questions_view(
    ctx: &Ctx,
    g: &GateRoutes,
    questions: Vec<String>,
    alert: Option<String>,
) -> QuestionsPage {
    QuestionsPage {
        c: ctx.common(ctx.t.questions_title),
        action: g.questions,
        questions,
        alert,
        other: g.more,
    }
}

/// Up to five answers, in the order the questions were shown.
#[derive(Deserialize)]
pub struct AnswersForm {
    csrf: String,
    answer1: Option<String>,
    answer2: Option<String>,
    answer3: Option<String>,
    answer4: Option<String>,
    answer5: Option<String>,
}

async fn questions_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<AnswersForm>,
    g: &'static GateRoutes,
) -> Response {
    let start = tokio::time::Instant::now();
    let flow = match ctx.posted_flow(&f.csrf, g.start) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let answers: Vec<String> = [f.answer1, f.answer2, f.answer3, f.answer4, f.answer5]
        .into_iter()
        .flatten()
        .collect();
    let work = s.engine.verify_questions(&ctx.req, &flow, &answers);
    let result = crate::at_deadline(start, s.cfg.answer_deadline, work).await;
    answered(&s, &ctx, g, &flow, g.questions, result).await
}
