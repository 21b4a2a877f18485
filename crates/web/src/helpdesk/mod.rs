//! The helpdesk console: operators sign in (directory password + a second factor), look a user
//! up, verify the caller with a code sent to the user's enrolled method, then act; approvers
//! decide requests on sensitive accounts. Same rules as the portal: thin handlers (one engine
//! call each), `__Host-` cookies holding only an opaque id (rotated at every privilege step),
//! CSRF on every form, no script, the sign-in answered at a fixed deadline.

mod ctx;
mod pages;
#[cfg(test)]
mod tests;
pub(crate) mod texts;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use rekey_core::Password;
use rekey_core::engine::{Act, ConsoleStart, ConsoleStep, EngineError, Progress};
use rekey_core::method::Method;
use serde::Deserialize;

use crate::AppState;
use crate::security::ScalarForm;
use crate::views::{ChoiceRow, Choices, Field, Form};
use ctx::{Cookie, HdCtx};

#[cfg(test)]
use ctx::CONSOLE_COOKIE;

const CONSOLE: &str = "/helpdesk/console";

/// A page's answer; `Err` is one given early (a refused CSRF token, no session, an error page):
/// `?` passes it on.
type Answer = Result<Response, Response>;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/helpdesk", get(sign_in).post(sign_in_post))
        .route("/helpdesk/factor", get(factor).post(factor_post))
        .route(
            "/helpdesk/factor/code",
            get(factor_code).post(factor_code_post),
        )
        .route("/helpdesk/console", get(console))
        .route("/helpdesk/lookup", post(lookup_post))
        .route("/helpdesk/verify/send", post(send_post))
        .route("/helpdesk/verify", post(verify_post))
        .route("/helpdesk/act", post(act_post))
        .route("/helpdesk/approvals", get(approvals).post(decide_post))
        .route("/helpdesk/sign-out", post(sign_out_post))
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

#[derive(Deserialize)]
pub struct MethodForm {
    csrf: String,
    method: String,
}

#[derive(Deserialize)]
pub struct LookupForm {
    csrf: String,
    who: String,
}

#[derive(Deserialize)]
pub struct ActForm {
    csrf: String,
    act: String,
}

#[derive(Deserialize)]
pub struct DecideForm {
    csrf: String,
    id: String,
    decision: String,
}

fn sign_in_form(ctx: &HdCtx, alert: Option<String>) -> Form {
    Form {
        c: ctx.common(ctx.h.title),
        lead: Some(ctx.h.sign_in_lead.into()),
        support_id: alert.as_ref().map(|_| ctx.req.support_id.clone()),
        alert,
        rules: vec![],
        action: "/helpdesk",
        fields: vec![
            Field::new("username", ctx.t.username, "text", "username"),
            Field::new("password", ctx.t.password, "password", "current-password"),
        ],
        button: ctx.t.sign_in,
        alt: None,
        link: None,
    }
}

/// The sign-in page, or the page the session is at.
async fn sign_in(State(s): State<AppState>, ctx: HdCtx) -> Response {
    if let Some(flow) = &ctx.session
        && s.engine.helpdesk_console(flow).await.is_ok()
    {
        return ctx.redirect(CONSOLE, Cookie::Keep);
    }
    ctx.render(StatusCode::OK, &sign_in_form(&ctx, None))
}

async fn sign_in_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<SignInForm>,
) -> Response {
    let start = tokio::time::Instant::now();
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let password = Password::new(f.password);
    let work = s.engine.helpdesk_sign_in(&ctx.req, &f.username, &password);
    match crate::at_deadline(start, s.cfg.password_deadline, work).await {
        Ok(ConsoleStart::SecondFactor(id)) => ctx.redirect("/helpdesk/factor", Cookie::Set(id)),
        Ok(ConsoleStart::Ready(id)) => ctx.redirect(CONSOLE, Cookie::Set(id)),
        Err(
            e @ (EngineError::SignInFailed
            | EngineError::RateLimited
            | EngineError::OperatorNeedsFactor),
        ) => {
            let msg = ctx.say(&e);
            ctx.render(StatusCode::OK, &sign_in_form(&ctx, Some(msg)))
        }
        Err(e) => ctx.error(&e),
    }
}

/// Send the browser to the page its session is at.
async fn where_now(s: &AppState, ctx: &HdCtx, flow: &str) -> Response {
    match s.engine.helpdesk_console(flow).await {
        Ok(ConsoleStep::Factor(_)) => ctx.redirect("/helpdesk/factor", Cookie::Keep),
        Ok(ConsoleStep::FactorCode(_)) => ctx.redirect("/helpdesk/factor/code", Cookie::Keep),
        Ok(ConsoleStep::Ready(_)) => ctx.redirect(CONSOLE, Cookie::Keep),
        Err(e) => ctx.error(&e),
    }
}

async fn factor(State(s): State<AppState>, ctx: HdCtx) -> Answer {
    let flow = ctx.session_or_sign_in()?;
    Ok(match s.engine.helpdesk_console(&flow).await {
        Ok(ConsoleStep::Factor(choices)) => {
            let page = Choices {
                c: ctx.common(ctx.h.factor_title),
                lead: ctx.h.factor_lead,
                action: "/helpdesk/factor",
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
                error: None,
            };
            ctx.render(StatusCode::OK, &page)
        }
        Ok(_) => where_now(&s, &ctx, &flow).await,
        Err(e) => ctx.error(&e),
    })
}

async fn factor_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<MethodForm>,
) -> Answer {
    let start = tokio::time::Instant::now();
    let flow = ctx.posted(&f.csrf)?;
    let method =
        Method::parse(&f.method).ok_or_else(|| ctx.error(&EngineError::MethodUnavailable))?;
    let work = s.engine.helpdesk_choose_factor(&ctx.req, &flow, method);
    let done = crate::at_deadline(start, s.cfg.answer_deadline, work).await;
    Ok(match done {
        Ok(()) => ctx.redirect("/helpdesk/factor/code", Cookie::Keep),
        Err(e) => ctx.error(&e),
    })
}

fn factor_form(ctx: &HdCtx, error: Option<String>) -> Form {
    let mut field = Field::new("code", ctx.t.code_label, "text", "one-time-code");
    field.error = error;
    Form {
        c: ctx.common(ctx.h.factor_title),
        lead: Some(ctx.h.factor_code_lead.into()),
        alert: None,
        support_id: None,
        rules: vec![],
        action: "/helpdesk/factor/code",
        fields: vec![field],
        button: ctx.t.verify,
        alt: None,
        link: None,
    }
}

async fn factor_code(State(s): State<AppState>, ctx: HdCtx) -> Answer {
    let flow = ctx.session_or_sign_in()?;
    Ok(match s.engine.helpdesk_console(&flow).await {
        Ok(ConsoleStep::FactorCode(_)) => ctx.render(StatusCode::OK, &factor_form(&ctx, None)),
        Ok(_) => where_now(&s, &ctx, &flow).await,
        Err(e) => ctx.error(&e),
    })
}

async fn factor_code_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<CodeForm>,
) -> Answer {
    let start = tokio::time::Instant::now();
    let flow = ctx.posted(&f.csrf)?;
    let work = s.engine.helpdesk_verify_factor(&ctx.req, &flow, &f.code);
    let done = crate::at_deadline(start, s.cfg.answer_deadline, work).await;
    Ok(match done {
        // A passed factor gives the session a new id (invariant 13).
        Ok(Progress::Verified(id) | Progress::More(id)) => ctx.redirect(CONSOLE, Cookie::Set(id)),
        Err(e @ EngineError::WrongCode) => {
            let msg = ctx.say(&e);
            ctx.render(StatusCode::OK, &factor_form(&ctx, Some(msg)))
        }
        Err(e) => ctx.error(&e),
    })
}

/// The console: the lookup form and the session caller's card.
async fn console(State(s): State<AppState>, ctx: HdCtx) -> Answer {
    render_console(&s, &ctx, None).await
}

async fn render_console(s: &AppState, ctx: &HdCtx, alert: Option<String>) -> Answer {
    let flow = ctx.session_or_sign_in()?;
    let console = match s.engine.helpdesk_console(&flow).await {
        Ok(ConsoleStep::Ready(c)) => c,
        Ok(_) => return Err(where_now(s, ctx, &flow).await),
        Err(e) => return Err(ctx.error(&e)),
    };
    let card = match &console.caller {
        Some(_) if console.roles.operator => Some(
            s.engine
                .helpdesk_user(&flow)
                .await
                .map_err(|e| ctx.error(&e))?,
        ),
        _ => None,
    };
    let page = pages::console_page(ctx, &console, card.as_ref(), alert);
    Ok(ctx.render(StatusCode::OK, &page))
}

async fn lookup_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<LookupForm>,
) -> Answer {
    let flow = ctx.posted(&f.csrf)?;
    match s.engine.helpdesk_lookup(&ctx.req, &flow, &f.who).await {
        Ok(_) => Ok(ctx.redirect(CONSOLE, Cookie::Keep)),
        Err(e @ (EngineError::NoSuchAccount | EngineError::Directory(_))) => {
            let msg = ctx.say(&e);
            render_console(&s, &ctx, Some(msg)).await
        }
        Err(e) => Err(ctx.error(&e)),
    }
}

async fn send_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Answer {
    let flow = ctx.posted(&f.csrf)?;
    match s.engine.helpdesk_send_caller_code(&ctx.req, &flow).await {
        Ok(_) => Ok(ctx.redirect(CONSOLE, Cookie::Keep)),
        Err(e) => act_refused(&s, &ctx, &e).await,
    }
}

/// A refusal the operator can go on from: the console with the reason on top.
async fn act_refused(s: &AppState, ctx: &HdCtx, e: &EngineError) -> Answer {
    match e {
        EngineError::Ineligible(_)
        | EngineError::OwnAccount
        | EngineError::NoCallerMethod
        | EngineError::CallerNotVerified
        | EngineError::WrongCode
        | EngineError::MethodUnavailable
        | EngineError::Landing(_) => render_console(s, ctx, Some(ctx.say(e))).await,
        _ => Err(ctx.error(e)),
    }
}

async fn verify_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<CodeForm>,
) -> Answer {
    let start = tokio::time::Instant::now();
    let flow = ctx.posted(&f.csrf)?;
    let work = s.engine.helpdesk_check_caller(&ctx.req, &flow, &f.code);
    match crate::at_deadline(start, s.cfg.answer_deadline, work).await {
        Ok(id) => Ok(ctx.redirect(CONSOLE, Cookie::Set(id))),
        Err(e) => act_refused(&s, &ctx, &e).await,
    }
}

async fn act_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<ActForm>,
) -> Answer {
    let flow = ctx.posted(&f.csrf)?;
    let act = Act::parse(&f.act).ok_or_else(|| ctx.error(&EngineError::WrongStep))?;
    match s.engine.helpdesk_act(&ctx.req, &flow, act).await {
        Ok(outcome) => Ok(ctx.render(StatusCode::OK, &pages::outcome(&ctx, act, outcome))),
        Err(e) => act_refused(&s, &ctx, &e).await,
    }
}

async fn approvals(State(s): State<AppState>, ctx: HdCtx) -> Answer {
    let flow = ctx.session_or_sign_in()?;
    let rows = s
        .engine
        .helpdesk_approvals(&flow)
        .await
        .map_err(|e| ctx.error(&e))?;
    Ok(ctx.render(StatusCode::OK, &pages::approvals(&ctx, &rows)))
}

async fn decide_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<DecideForm>,
) -> Answer {
    let flow = ctx.posted(&f.csrf)?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(ctx.error(&EngineError::WrongStep)),
    };
    let outcome = s
        .engine
        .helpdesk_decide(&ctx.req, &flow, &f.id, approve)
        .await
        .map_err(|e| ctx.error(&e))?;
    Ok(ctx.render(StatusCode::OK, &pages::decided(&ctx, approve, outcome)))
}

async fn sign_out_post(
    State(s): State<AppState>,
    ctx: HdCtx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Response {
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    if let Some(flow) = &ctx.session {
        let _ = s.engine.helpdesk_sign_out(flow).await;
    }
    ctx.redirect("/helpdesk", Cookie::Clear)
}
