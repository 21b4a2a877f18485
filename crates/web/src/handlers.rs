//! Thin handlers: parse, one engine call, a typed view.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rekey_core::engine::{EngineError, EnrollStep, RequestContext, ResetOutcome};
use rekey_core::policy::{PasswordPolicy, PolicySource, Violation};
use rekey_core::store::FlowKind;
use rekey_core::{Password, UserFacing};
use serde::Deserialize;

use crate::AppState;
use crate::i18n::{self, Texts};
use crate::security::{self, CSRF_COOKIE, FLOW_COOKIE, LANG_COOKIE, ScalarForm};
use crate::views::{Common, ErrorPage, Field, Form, Outcome, Start};

/// Per-request context: language, CSRF token, flow cookie, and what the audit needs.
pub struct Ctx {
    t: &'static Texts,
    csrf: String,
    new_csrf: bool,
    set_lang: Option<&'static str>,
    flow: Option<String>,
    req: RequestContext,
    org: String,
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let h = &parts.headers;
        let chosen = Query::<LangQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.lang)
            .and_then(|l| match l.as_str() {
                "en" => Some("en"),
                "de" => Some("de"),
                _ => None,
            });
        let t = i18n::choose(
            chosen.or_else(|| security::cookie(h, LANG_COOKIE)),
            h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
        );
        let existing = security::cookie(h, CSRF_COOKIE)
            .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()));
        let (csrf, new_csrf) = match existing {
            Some(c) => (c.to_owned(), false),
            None => (state.engine.token(), true),
        };
        let flow = security::cookie(h, FLOW_COOKIE)
            .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_owned);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ip = security::client_ip(h, peer, &state.cfg.trusted_proxies);
        let ua = h
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        Ok(Self {
            t,
            csrf,
            new_csrf,
            set_lang: chosen,
            flow,
            req: RequestContext {
                client_ip: ip.map(|i| i.to_string()),
                user_agent: ua,
                support_id: state.engine.support_id(),
            },
            org: state.cfg.organisation.clone(),
        })
    }
}

impl Ctx {
    fn common(&self, heading: &'static str) -> Common {
        Common {
            t: self.t,
            org: self.org.clone(),
            heading,
            csrf: self.csrf.clone(),
        }
    }

    /// Attach the cookies this request must set.
    fn finish(&self, mut res: Response) -> Response {
        let h = res.headers_mut();
        if self.new_csrf {
            h.append(
                header::SET_COOKIE,
                security::host_cookie(CSRF_COOKIE, &self.csrf, None),
            );
        }
        if let Some(lang) = self.set_lang {
            let v = format!("{LANG_COOKIE}={lang}; Path=/; Secure; SameSite=Lax; Max-Age=31536000");
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.append(header::SET_COOKIE, v);
            }
        }
        res
    }

    fn render(&self, status: StatusCode, page: &impl Template) -> Response {
        match page.render() {
            Ok(html) => self.finish((status, Html(html)).into_response()),
            Err(e) => {
                tracing::error!(support_id = %self.req.support_id, error = %e, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    /// 303 to `to`, optionally replacing (or clearing) the flow cookie.
    fn redirect(&self, to: &str, flow: FlowCookie) -> Response {
        let mut res = Redirect::to(to).into_response();
        match flow {
            FlowCookie::Keep => {}
            FlowCookie::Set(id) => {
                res.headers_mut().append(
                    header::SET_COOKIE,
                    security::host_cookie(FLOW_COOKIE, &id, Some(900)),
                );
            }
        }
        self.finish(res)
    }

    fn csrf_ok(&self, token: &str) -> bool {
        !self.new_csrf && security::csrf_ok_token(&self.csrf, token)
    }

    fn error(&self, e: &EngineError, again: &'static str) -> Response {
        let status = match e {
            EngineError::FlowExpired | EngineError::WrongStep => StatusCode::BAD_REQUEST,
            EngineError::RateLimited | EngineError::TooManyAttempts => {
                StatusCode::TOO_MANY_REQUESTS
            }
            EngineError::Store(_) | EngineError::Directory(_) | EngineError::Mail => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::OK,
        };
        tracing::warn!(support_id = %self.req.support_id, code = e.code(), error = ?e, "request failed");
        let page = ErrorPage {
            c: self.common(self.t.error_title),
            message: i18n::message(self.t, e.code(), e.message()).to_owned(),
            code: e.code().to_owned(),
            support_id: self.req.support_id.clone(),
            again,
        };
        let mut res = self.render(status, &page);
        if matches!(
            e,
            EngineError::FlowExpired | EngineError::WrongStep | EngineError::TooManyAttempts
        ) {
            res.headers_mut()
                .append(header::SET_COOKIE, security::clear_cookie(FLOW_COOKIE));
        }
        res
    }

    fn forbidden(&self) -> Response {
        let e = EngineError::WrongStep;
        let mut res = self.error(&e, "/");
        *res.status_mut() = StatusCode::FORBIDDEN;
        res
    }

    #[allow(clippy::result_large_err)] // axum's Response is the natural error here
    fn flow_or_restart(&self, again: &'static str) -> Result<String, Response> {
        self.flow
            .clone()
            .ok_or_else(|| self.finish(Redirect::to(again).into_response()))
    }
}

enum FlowCookie {
    Keep,
    Set(String),
}

// ---- start, static -------------------------------------------------------------------------

pub async fn start(ctx: Ctx) -> Response {
    ctx.render(
        StatusCode::OK,
        &Start {
            c: ctx.common(ctx.t.title),
        },
    )
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.css"),
    )
        .into_response()
}

// ---- identify ------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct IdentifyForm {
    csrf: String,
    username: String,
}

fn identify_form(ctx: &Ctx, kind: FlowKind) -> Form {
    let (heading, action) = match kind {
        FlowKind::Unlock => (ctx.t.unlock_title, "/unlock"),
        _ => (ctx.t.reset_title, "/reset"),
    };
    Form {
        c: ctx.common(heading),
        lead: Some(ctx.t.identify_lead.into()),
        alert: None,
        support_id: None,
        rules: vec![],
        action,
        fields: vec![
            Field::new("username", ctx.t.username, "text", "username").hint(ctx.t.username_hint),
        ],
        button: ctx.t.continue_,
    }
}

pub async fn reset_identify(ctx: Ctx) -> Response {
    ctx.render(StatusCode::OK, &identify_form(&ctx, FlowKind::Reset))
}

pub async fn unlock_identify(ctx: Ctx) -> Response {
    ctx.render(StatusCode::OK, &identify_form(&ctx, FlowKind::Unlock))
}

pub async fn reset_identify_post(
    s: State<AppState>,
    ctx: Ctx,
    f: ScalarForm<IdentifyForm>,
) -> Response {
    identify_post(s, ctx, f, FlowKind::Reset, "/reset/code").await
}

pub async fn unlock_identify_post(
    s: State<AppState>,
    ctx: Ctx,
    f: ScalarForm<IdentifyForm>,
) -> Response {
    identify_post(s, ctx, f, FlowKind::Unlock, "/unlock/code").await
}

/// Same answer, same time, whatever the account (invariant 9).
async fn identify_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<IdentifyForm>,
    kind: FlowKind,
    next: &str,
) -> Response {
    let deadline = tokio::time::Instant::now() + s.cfg.identify_deadline;
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let result = s.engine.start_reset(&ctx.req, kind, &f.username).await;
    tokio::time::sleep_until(deadline).await;
    match result {
        Ok(flow) => ctx.redirect(next, FlowCookie::Set(flow)),
        Err(e) => ctx.error(
            &e,
            if kind == FlowKind::Unlock {
                "/unlock"
            } else {
                "/reset"
            },
        ),
    }
}

// ---- code ----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    code: String,
}

fn code_form(ctx: &Ctx, action: &'static str, lead: &'static str, error: Option<String>) -> Form {
    let mut field = Field::new("code", ctx.t.code_label, "text", "one-time-code");
    field.error = error;
    Form {
        c: ctx.common(ctx.t.code_title),
        lead: Some(lead.into()),
        alert: None,
        support_id: None,
        rules: vec![],
        action,
        fields: vec![field],
        button: ctx.t.verify,
    }
}

pub async fn reset_code(ctx: Ctx) -> Response {
    match ctx.flow_or_restart("/reset") {
        Ok(_) => ctx.render(
            StatusCode::OK,
            &code_form(&ctx, "/reset/code", ctx.t.code_lead, None),
        ),
        Err(r) => r,
    }
}

pub async fn unlock_code(ctx: Ctx) -> Response {
    match ctx.flow_or_restart("/unlock") {
        Ok(_) => ctx.render(
            StatusCode::OK,
            &code_form(&ctx, "/unlock/code", ctx.t.code_lead, None),
        ),
        Err(r) => r,
    }
}

pub async fn reset_code_post(s: State<AppState>, ctx: Ctx, f: ScalarForm<CodeForm>) -> Response {
    code_post(s, ctx, f, "/reset", "/reset/code", "/reset/password").await
}

pub async fn unlock_code_post(s: State<AppState>, ctx: Ctx, f: ScalarForm<CodeForm>) -> Response {
    code_post(s, ctx, f, "/unlock", "/unlock/code", "/unlock/confirm").await
}

async fn code_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CodeForm>,
    again: &'static str,
    here: &'static str,
    next: &str,
) -> Response {
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let flow = match ctx.flow_or_restart(again) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.verify_reset_code(&ctx.req, &flow, &f.code).await {
        Ok(rotated) => ctx.redirect(next, FlowCookie::Set(rotated)),
        Err(e @ EngineError::WrongCode) => {
            let msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
            ctx.render(
                StatusCode::OK,
                &code_form(&ctx, here, ctx.t.code_lead, Some(msg)),
            )
        }
        Err(e) => ctx.error(&e, again),
    }
}

// ---- new password --------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    new_password: String,
    confirm_password: String,
}

fn rules(t: &Texts, p: &PasswordPolicy) -> Vec<String> {
    let mut out = vec![t.policy_min_length.replace("{}", &p.min_length.to_string())];
    if p.complexity {
        out.push(t.policy_complexity.into());
    }
    if p.history_length > 0 {
        out.push(
            t.policy_history
                .replace("{}", &p.history_length.to_string()),
        );
    }
    if matches!(p.source, PolicySource::Pso { .. }) {
        out.push(t.policy_source_pso.into());
    }
    out
}

fn violation_text(t: &Texts, v: &Violation) -> String {
    match v {
        Violation::TooShort { min, .. } => t.policy_min_length.replace("{}", &min.to_string()),
        Violation::TooFewCategories { .. } | Violation::ContainsName => t.policy_complexity.into(),
        Violation::TooLong => "≤ 256".into(),
        Violation::Empty => t.mismatch.into(),
    }
}

fn password_form(
    ctx: &Ctx,
    policy: Option<&PasswordPolicy>,
    alert: Option<String>,
    errors: (Option<String>, Option<String>),
) -> Form {
    let mut new = Field::new(
        "new_password",
        ctx.t.new_password,
        "password",
        "new-password",
    );
    new.error = errors.0;
    let mut confirm = Field::new(
        "confirm_password",
        ctx.t.confirm_password,
        "password",
        "new-password",
    );
    confirm.error = errors.1;
    Form {
        c: ctx.common(ctx.t.new_password_title),
        lead: None,
        support_id: alert.as_ref().map(|_| ctx.req.support_id.clone()),
        alert,
        rules: policy.map(|p| rules(ctx.t, p)).unwrap_or_default(),
        action: "/reset/password",
        fields: vec![new, confirm],
        button: ctx.t.set_password,
    }
}

pub async fn password(State(s): State<AppState>, ctx: Ctx) -> Response {
    let flow = match ctx.flow_or_restart("/reset") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.reset_policy(&flow).await {
        Ok(p) => ctx.render(
            StatusCode::OK,
            &password_form(&ctx, Some(&p), None, (None, None)),
        ),
        Err(e) => ctx.error(&e, "/reset"),
    }
}

pub async fn password_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<PasswordForm>,
) -> Response {
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let flow = match ctx.flow_or_restart("/reset") {
        Ok(f) => f,
        Err(r) => return r,
    };
    // The policy is read again only to re-render the form after a refusal (the happy path costs
    // no extra directory round trips).
    let again = |alert: Option<String>, errors: (Option<String>, Option<String>)| {
        let (s, ctx, flow) = (&s, &ctx, &flow);
        async move {
            match s.engine.reset_policy(flow).await {
                Ok(p) => ctx.render(StatusCode::OK, &password_form(ctx, Some(&p), alert, errors)),
                Err(e) => ctx.error(&e, "/reset"),
            }
        }
    };
    if f.new_password != f.confirm_password {
        return again(None, (None, Some(ctx.t.mismatch.into()))).await;
    }
    let new = Password::new(f.new_password);
    match s.engine.complete_reset(&ctx.req, &flow, &new).await {
        Ok(out) => outcome(&ctx, ctx.t.reset_done, &out),
        Err(EngineError::Policy { violations, .. }) => {
            let msg = violations
                .iter()
                .map(|v| violation_text(ctx.t, v))
                .collect::<Vec<_>>()
                .join(" · ");
            again(None, (Some(msg), None)).await
        }
        Err(e @ EngineError::Landing(_)) => {
            let msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
            again(Some(msg), (None, None)).await
        }
        Err(e) => ctx.error(&e, "/reset"),
    }
}

fn outcome(ctx: &Ctx, done: &'static str, out: &ResetOutcome) -> Response {
    let ok = out.landed_everywhere();
    let message = if ok {
        done.to_owned()
    } else {
        out.zones
            .iter()
            .find_map(|z| {
                z.message
                    .map(|m| i18n::message(ctx.t, z.code.unwrap_or(""), m).to_owned())
            })
            .unwrap_or_default()
    };
    let page = Outcome {
        c: ctx.common(ctx.t.done_title),
        ok,
        message,
        zones: out
            .zones
            .iter()
            .map(|z| (z.zone.to_string(), z.outcome.to_owned()))
            .collect(),
        support_id: out.support_id.clone(),
    };
    let mut res = ctx.render(StatusCode::OK, &page);
    res.headers_mut()
        .append(header::SET_COOKIE, security::clear_cookie(FLOW_COOKIE));
    res
}

// ---- unlock --------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

pub async fn unlock_confirm(ctx: Ctx) -> Response {
    if let Err(r) = ctx.flow_or_restart("/unlock") {
        return r;
    }
    let form = Form {
        c: ctx.common(ctx.t.unlock_title),
        lead: Some(ctx.t.unlock_lead.into()),
        alert: None,
        support_id: None,
        rules: vec![],
        action: "/unlock/confirm",
        fields: vec![],
        button: ctx.t.unlock_button,
    };
    ctx.render(StatusCode::OK, &form)
}

pub async fn unlock_confirm_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Response {
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let flow = match ctx.flow_or_restart("/unlock") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.complete_unlock(&ctx.req, &flow).await {
        Ok(out) => outcome(&ctx, ctx.t.unlock_done, &out),
        Err(e) => ctx.error(&e, "/unlock"),
    }
}

// ---- change --------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ChangeForm {
    csrf: String,
    username: String,
    current_password: String,
    new_password: String,
    confirm_password: String,
}

fn change_form(
    ctx: &Ctx,
    alert: Option<String>,
    username: &str,
    confirm_error: Option<String>,
) -> Form {
    let mut user =
        Field::new("username", ctx.t.username, "text", "username").hint(ctx.t.username_hint);
    user.value = username.to_owned();
    let mut confirm = Field::new(
        "confirm_password",
        ctx.t.confirm_password,
        "password",
        "new-password",
    );
    confirm.error = confirm_error;
    Form {
        c: ctx.common(ctx.t.change_title),
        lead: None,
        support_id: alert.as_ref().map(|_| ctx.req.support_id.clone()),
        alert,
        rules: vec![],
        action: "/change",
        fields: vec![
            user,
            Field::new(
                "current_password",
                ctx.t.current_password,
                "password",
                "current-password",
            ),
            Field::new(
                "new_password",
                ctx.t.new_password,
                "password",
                "new-password",
            ),
            confirm,
        ],
        button: ctx.t.change_button,
    }
}

pub async fn change(ctx: Ctx) -> Response {
    ctx.render(StatusCode::OK, &change_form(&ctx, None, "", None))
}

pub async fn change_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<ChangeForm>,
) -> Response {
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    if f.new_password != f.confirm_password {
        return ctx.render(
            StatusCode::OK,
            &change_form(&ctx, None, &f.username, Some(ctx.t.mismatch.into())),
        );
    }
    let (old, new) = (
        Password::new(f.current_password),
        Password::new(f.new_password),
    );
    match s.engine.change(&ctx.req, &f.username, &old, &new).await {
        Ok(out) => {
            let page = Outcome {
                c: ctx.common(ctx.t.done_title),
                ok: true,
                message: ctx.t.change_done.into(),
                zones: vec![],
                support_id: out.support_id,
            };
            ctx.render(StatusCode::OK, &page)
        }
        Err(EngineError::TooSoon { allowed_at }) => {
            let e = EngineError::TooSoon { allowed_at };
            let mut msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
            if let Some(at) = allowed_at {
                msg = format!("{msg} {}", ctx.t.allowed_at.replace("{}", &utc(at)));
            }
            ctx.render(
                StatusCode::OK,
                &change_form(&ctx, Some(msg), &f.username, None),
            )
        }
        Err(e @ (EngineError::ChangeRefused | EngineError::Landing(_))) => {
            let msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
            ctx.render(
                StatusCode::OK,
                &change_form(&ctx, Some(msg), &f.username, None),
            )
        }
        Err(e) => ctx.error(&e, "/change"),
    }
}

/// `YYYY-MM-DD HH:MM` in UTC, from Unix seconds (civil-from-days, no calendar crate needed).
fn utc(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

// ---- enrollment ----------------------------------------------------------------------------

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
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let password = Password::new(f.password);
    match s
        .engine
        .enroll_sign_in(&ctx.req, &f.username, &password)
        .await
    {
        Ok(flow) => ctx.redirect("/enroll/email", FlowCookie::Set(flow)),
        Err(e @ (EngineError::SignInFailed | EngineError::RateLimited)) => {
            let msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
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
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let flow = match ctx.flow_or_restart("/enroll") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.enroll_email(&ctx.req, &flow, &f.email).await {
        Ok(()) => ctx.redirect("/enroll/code", FlowCookie::Keep),
        Err(e @ EngineError::BadAddress) => {
            let msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
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
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let flow = match ctx.flow_or_restart("/enroll") {
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
                support_id: ctx.req.support_id.clone(),
            };
            let mut res = ctx.render(StatusCode::OK, &page);
            res.headers_mut()
                .append(header::SET_COOKIE, security::clear_cookie(FLOW_COOKIE));
            res
        }
        Err(e @ EngineError::WrongCode) => {
            let msg = i18n::message(ctx.t, e.code(), e.message()).to_owned();
            ctx.render(
                StatusCode::OK,
                &code_form(&ctx, "/enroll/code", ctx.t.enroll_code_lead, Some(msg)),
            )
        }
        Err(e) => ctx.error(&e, "/enroll"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formatting() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(1_800_000_000), "2027-01-15 08:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00");
    }
}
