//! Enrollment: directory sign-in, the step-up (in `gates`), the methods page, email and phone
//! with their confirmation code, removal. Authenticator app, passkey and questions are in
//! `enroll_add`. Every change ends in a redirect to the methods page (Post/Redirect/Get).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rekey_core::Password;
use rekey_core::engine::{EngineError, EnrollOutcome, EnrollStep, MethodView, PendingChange};
use rekey_core::store::MethodKind;
use serde::Deserialize;

use super::gates::{CodeForm, ENROLL, page_of};
use super::{CsrfOnly, Ctx, FlowCookie, ScalarForm};
use crate::AppState;
use crate::views::{
    AddAction, ApprovalPendingPage, Field, Form, MethodRow, MethodsPage, utc_label,
};

pub(super) const METHODS: &str = "/enroll/methods";

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    username: String,
    password: String,
}

fn sign_in_form(ctx: &Ctx, alert: Option<String>) -> Form {
    Form {
        c: ctx.common(ctx.t.enroll_title),
        lead: Some(ctx.t.enroll_lead.into()),
        support_id: alert.as_ref().map(|_| ctx.req.support_id.clone()),
        alert,
        rules: vec![],
        action: "/enroll",
        fields: vec![
            Field::new("username", ctx.t.username, "text", "username").hint(ctx.t.username_hint),
            Field::new("password", ctx.t.password, "password", "current-password"),
        ],
        button: ctx.t.sign_in,
        alt: None,
        link: None,
    }
}

pub async fn enroll(ctx: Ctx) -> Response {
    ctx.render(StatusCode::OK, &sign_in_form(&ctx, None))
}

pub async fn enroll_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<SignInForm>,
) -> Response {
    let start = tokio::time::Instant::now();
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let password = Password::new(f.password);
    let work = s.engine.enroll_sign_in(&ctx.req, &f.username, &password);
    match crate::at_deadline(start, s.cfg.password_deadline, work).await {
        Ok(flow) => ctx.redirect(METHODS, FlowCookie::Set(flow)),
        Err(e @ (EngineError::SignInFailed | EngineError::RateLimited)) => {
            let msg = ctx.say(&e);
            ctx.render(StatusCode::OK, &sign_in_form(&ctx, Some(msg)))
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

/// The page the enrollment flow is at: the step-up, the methods page, or the method being set
/// up. Every other enrollment page sends the browser here when the flow is elsewhere.
pub async fn enroll_methods(State(s): State<AppState>, ctx: Ctx) -> Response {
    let flow = match ctx.flow_or_restart("/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let to = match s.engine.enroll_step(&flow).await {
        Ok(EnrollStep::Manage {
            methods,
            addable,
            needed,
            passkey_missing,
            pending,
            ..
        }) => {
            let mut page = methods_page(&ctx, &methods, &addable, needed, passkey_missing);
            page.pending = pending.iter().map(|p| pending_words(&ctx, p)).collect();
            return ctx.render(StatusCode::OK, &page);
        }
        Ok(EnrollStep::StepUp(_)) => ENROLL.more,
        Ok(EnrollStep::StepUpGate(chosen)) => page_of(&chosen, &ENROLL),
        Ok(EnrollStep::AwaitCode { .. }) => "/enroll/code",
        Ok(EnrollStep::Totp { .. }) => "/enroll/totp",
        Ok(EnrollStep::Passkey { .. }) => "/enroll/passkey",
        Err(e) => return ctx.error(&e, "/enroll"),
    };
    ctx.redirect(to, FlowCookie::Keep)
}

fn methods_page(
    ctx: &Ctx,
    methods: &[MethodView],
    addable: &[MethodKind],
    needed: usize,
    passkey_missing: bool,
) -> MethodsPage {
    let t = ctx.t;
    let mut reminders = Vec::new();
    if methods.len() < needed {
        reminders.push(t.reminder_few.replace("{}", &needed.to_string()));
    }
    if passkey_missing {
        reminders.push(t.reminder_passkey.to_owned());
    }
    MethodsPage {
        c: ctx.common(t.methods_title),
        rows: methods
            .iter()
            .map(|m| MethodRow {
                kind: m.kind.as_str(),
                name: t.kind_name(m.kind),
                hint: m.hint.clone(),
                strength: m.strength.as_str(),
                strength_text: t.strength_name(m.strength),
                enrolled: utc_label(m.enrolled_at),
                last_used: m.last_used_at.map_or_else(|| t.never.to_owned(), utc_label),
                // The engine's clock is not the portal's to read: every method shows the date
                // it serves a reset from (past for most).
                usable_from: utc_label(m.usable_from),
            })
            .collect(),
        reminders,
        pending: Vec::new(),
        add: addable
            .iter()
            .map(|k| {
                let (label, href, post) = match k {
                    MethodKind::Email => (t.add_email, "/enroll/email", false),
                    MethodKind::Sms => (t.add_phone, "/enroll/phone", false),
                    MethodKind::Totp => (t.add_totp, "/enroll/totp", true),
                    MethodKind::Passkey => (t.add_passkey, "/enroll/passkey", true),
                    MethodKind::Questions => (t.add_questions, "/enroll/questions", false),
                };
                AddAction { label, href, post }
            })
            .collect(),
    }
}

/// A change waiting for approval, in words: what, the request id, the expiry.
fn pending_words(ctx: &Ctx, p: &PendingChange) -> String {
    fill(
        ctx,
        ctx.t.approval_pending,
        p.remove,
        p.kind,
        &p.id,
        p.expires_at,
    )
}

fn fill(ctx: &Ctx, text: &str, remove: bool, kind: MethodKind, id: &str, expires: i64) -> String {
    let what = if remove {
        ctx.t.approval_remove
    } else {
        ctx.t.approval_add
    }
    .replace("{}", ctx.t.kind_name(kind));
    text.replace("{what}", &what)
        .replace("{id}", id)
        .replace("{expires}", &utc_label(expires))
}

/// The end of a method change: the methods page, or (privileged tier) the page saying it
/// waits for approval, with the request id and its expiry.
pub(super) fn changed(ctx: &Ctx, outcome: EnrollOutcome) -> Response {
    match outcome {
        EnrollOutcome::Applied => ctx.redirect(METHODS, FlowCookie::Keep),
        EnrollOutcome::Pending {
            id,
            expires_at,
            kind,
            remove,
        } => {
            let page = ApprovalPendingPage {
                c: ctx.common(ctx.t.approval_title),
                message: fill(ctx, ctx.t.approval_lead, remove, kind, &id, expires_at),
                id,
                support_id: ctx.req.support_id.clone(),
            };
            ctx.render(StatusCode::OK, &page)
        }
    }
}

/// The form of an email address or a phone number.
fn contact_form(ctx: &Ctx, kind: MethodKind, error: Option<String>) -> Form {
    let (heading, mut field, action) = match kind {
        MethodKind::Sms => (
            ctx.t.phone_title,
            Field::new("phone", ctx.t.phone_label, "tel", "tel").hint(ctx.t.phone_hint),
            "/enroll/phone",
        ),
        _ => (
            ctx.t.email_title,
            Field::new("email", ctx.t.email_label, "email", "email"),
            "/enroll/email",
        ),
    };
    field.error = error;
    Form {
        c: ctx.common(heading),
        lead: None,
        alert: None,
        support_id: None,
        rules: vec![],
        action,
        fields: vec![field],
        button: ctx.t.send_code,
        alt: None,
        link: Some((METHODS, ctx.t.back_to_methods)),
    }
}

/// The email or phone form, for a signed-in flow on the methods page (or waiting for a code:
/// another address may be given).
async fn contact_page(s: &AppState, ctx: &Ctx, kind: MethodKind) -> Response {
    let flow = match ctx.flow_or_restart("/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_step(&flow).await {
        Ok(EnrollStep::Manage { .. } | EnrollStep::AwaitCode { .. }) => {
            ctx.render(StatusCode::OK, &contact_form(ctx, kind, None))
        }
        Ok(_) => ctx.redirect(METHODS, FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub async fn enroll_email(State(s): State<AppState>, ctx: Ctx) -> Response {
    contact_page(&s, &ctx, MethodKind::Email).await
}

pub async fn enroll_phone(State(s): State<AppState>, ctx: Ctx) -> Response {
    contact_page(&s, &ctx, MethodKind::Sms).await
}

#[derive(Deserialize)]
pub struct EmailForm {
    csrf: String,
    email: String,
}

pub async fn enroll_email_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<EmailForm>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_email(&ctx.req, &flow, &f.email).await {
        Ok(()) => ctx.redirect("/enroll/code", FlowCookie::Keep),
        Err(e @ EngineError::BadAddress) => {
            let msg = ctx.say(&e);
            ctx.render(
                StatusCode::OK,
                &contact_form(&ctx, MethodKind::Email, Some(msg)),
            )
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

#[derive(Deserialize)]
pub struct PhoneForm {
    csrf: String,
    phone: String,
}

pub async fn enroll_phone_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<PhoneForm>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_phone(&ctx.req, &flow, &f.phone).await {
        Ok(()) => ctx.redirect("/enroll/code", FlowCookie::Keep),
        Err(e @ EngineError::BadPhone) => {
            let msg = ctx.say(&e);
            ctx.render(
                StatusCode::OK,
                &contact_form(&ctx, MethodKind::Sms, Some(msg)),
            )
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

/// The confirmation code form, naming the (masked) address or number the code went to.
fn confirm_form(ctx: &Ctx, masked: &str, error: Option<String>) -> Form {
    let mut field = Field::new("code", ctx.t.code_label, "text", "one-time-code");
    field.error = error;
    Form {
        c: ctx.common(ctx.t.code_title),
        lead: Some(ctx.t.enroll_code_lead.replace("{}", masked)),
        alert: None,
        support_id: None,
        rules: vec![],
        action: "/enroll/code",
        fields: vec![field],
        button: ctx.t.verify,
        alt: Some(crate::views::Alt {
            lead: "",
            action: "/enroll/cancel",
            button: ctx.t.back_to_methods,
        }),
        link: None,
    }
}

/// The code page while a code is on its way; elsewhere the methods page.
async fn confirm_page(s: &AppState, ctx: &Ctx, flow: &str, error: Option<String>) -> Response {
    match s.engine.enroll_step(flow).await {
        Ok(EnrollStep::AwaitCode { masked, .. }) => {
            ctx.render(StatusCode::OK, &confirm_form(ctx, &masked, error))
        }
        Ok(_) => ctx.redirect(METHODS, FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

/// A setup in progress: an address or number (confirmed by the code sent to it), an
/// authenticator app (its first code), a passkey (the browser's answer) or questions.
#[derive(Clone, Copy)]
pub(super) enum Setup {
    Contact,
    App,
    Passkey,
    Questions,
}

/// The page of the setup in progress, with an error after a wrong answer.
async fn setup_page(
    s: &AppState,
    ctx: &Ctx,
    flow: &str,
    error: Option<String>,
    what: Setup,
) -> Response {
    use super::enroll_add::{questions_page, register_page, totp_page};
    match what {
        Setup::Contact => confirm_page(s, ctx, flow, error).await,
        Setup::App => totp_page(s, ctx, flow, error).await,
        Setup::Passkey => register_page(s, ctx, flow, error).await,
        Setup::Questions => questions_page(s, ctx, flow, error).await,
    }
}

pub(super) async fn setup_get(s: &AppState, ctx: &Ctx, what: Setup) -> Response {
    match ctx.flow_or_restart("/enroll") {
        Ok(flow) => setup_page(s, ctx, &flow, None, what).await,
        Err(r) => r,
    }
}

/// The end of a setup's POST: back to the methods page, or the same page saying what was
/// wrong, or an error page.
pub(super) async fn setup_done(
    s: &AppState,
    ctx: &Ctx,
    flow: &str,
    what: Setup,
    result: Result<EnrollOutcome, EngineError>,
) -> Response {
    match result {
        Ok(outcome) => changed(ctx, outcome),
        Err(
            e @ (EngineError::WrongCode | EngineError::PasskeyRefused | EngineError::Questions(_)),
        ) => setup_page(s, ctx, flow, Some(ctx.say(&e)), what).await,
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

/// Confirm a contact or an app with its code.
pub(super) async fn setup_post(s: &AppState, ctx: &Ctx, f: CodeForm, what: Setup) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let result = match what {
        Setup::App => s.engine.enroll_totp_confirm(&ctx.req, &flow, &f.code).await,
        _ => s.engine.enroll_confirm(&ctx.req, &flow, &f.code).await,
    };
    setup_done(s, ctx, &flow, what, result).await
}

/// Leave an unfinished setup for the methods page.
pub async fn enroll_cancel(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_cancel(&ctx.req, &flow).await {
        Ok(()) => ctx.redirect(METHODS, FlowCookie::Keep),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub async fn enroll_code(State(s): State<AppState>, ctx: Ctx) -> Response {
    setup_get(&s, &ctx, Setup::Contact).await
}

pub async fn enroll_code_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CodeForm>,
) -> Response {
    setup_post(&s, &ctx, f, Setup::Contact).await
}

#[derive(Deserialize)]
pub struct RemoveForm {
    csrf: String,
    /// The method kind (`email`, `sms`, `totp`, `passkey`, `questions`).
    method: String,
}

pub async fn enroll_remove(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<RemoveForm>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(kind) = MethodKind::parse(&f.method) else {
        return ctx.error(&EngineError::MethodUnavailable, METHODS);
    };
    match s.engine.enroll_remove(&ctx.req, &flow, kind).await {
        Ok(outcome) => changed(&ctx, outcome),
        Err(e) => ctx.error(&e, "/enroll"),
    }
}
