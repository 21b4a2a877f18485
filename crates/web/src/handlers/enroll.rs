//! Enrollment: directory sign-in, recovery address, confirmation code.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rekey_core::Password;
use rekey_core::engine::EngineError;
use serde::Deserialize;

use super::{Ctx, FlowCookie, ScalarForm};
use crate::AppState;
use crate::views::{Field, Form, Outcome};
use axum::http::header;
use rekey_core::engine::EnrollStep;

use super::reset::{CodeForm, code_form};
use crate::security::{self, FLOW_COOKIE};

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
        Ok(flow) => ctx.redirect("/enroll/email", FlowCookie::Set(flow)),
        Err(e @ (EngineError::SignInFailed | EngineError::RateLimited)) => {
            let msg = ctx.say(&e);
            ctx.render(StatusCode::OK, &sign_in_form(&ctx, Some(msg)))
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

#[derive(Deserialize)]
pub struct EmailForm {
    csrf: String,
    email: String,
}

fn email_form(ctx: &Ctx, current: Option<String>, error: Option<String>) -> Form {
    let mut field = Field::new("email", ctx.t.email_label, "email", "email");
    field.error = error;
    Form {
        c: ctx.common(ctx.t.email_title),
        lead: current.map(|c| format!("{} {c}", ctx.t.email_current)),
        alert: None,
        support_id: None,
        rules: vec![],
        action: "/enroll/email",
        fields: vec![field],
        button: ctx.t.send_code,
    }
}

pub async fn enroll_email(State(s): State<AppState>, ctx: Ctx) -> Response {
    let flow = match ctx.flow_or_restart("/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_step(&flow).await {
        Ok(EnrollStep::SignedIn { current }) => {
            ctx.render(StatusCode::OK, &email_form(&ctx, current, None))
        }
        Ok(EnrollStep::AwaitCode { .. }) => {
            ctx.render(StatusCode::OK, &email_form(&ctx, None, None))
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
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
            ctx.render(StatusCode::OK, &email_form(&ctx, None, Some(msg)))
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

pub async fn enroll_code(ctx: Ctx) -> Response {
    match ctx.flow_or_restart("/enroll") {
        Ok(_) => ctx.render(
            StatusCode::OK,
            &code_form(&ctx, "/enroll/code", ctx.t.enroll_code_lead, None),
        ),
        Err(r) => r,
    }
}

pub async fn enroll_code_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CodeForm>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_confirm(&ctx.req, &flow, &f.code).await {
        Ok(()) => {
            let page = Outcome {
                c: ctx.common(ctx.t.done_title),
                ok: true,
                message: ctx.t.enrolled.into(),
                zones: vec![],
                moving: false,
                support_id: ctx.req.support_id.clone(),
            };
            let mut res = ctx.render(StatusCode::OK, &page);
            res.headers_mut()
                .append(header::SET_COOKIE, security::clear_cookie(FLOW_COOKIE));
            res
        }
        Err(e @ EngineError::WrongCode) => {
            let msg = ctx.say(&e);
            ctx.render(
                StatusCode::OK,
                &code_form(&ctx, "/enroll/code", ctx.t.enroll_code_lead, Some(msg)),
            )
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}
