//! Reset and unlock: identify, new password, unlock confirmation, outcome. The gates between
//! identify and the new password are in `gates`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rekey_core::engine::EngineError;
use rekey_core::{LandingError, Password, Rejection};
use serde::Deserialize;

use super::{CsrfOnly, Ctx, FlowCookie, ScalarForm};
use crate::AppState;
use crate::views::{Field, Form, Outcome, ZoneRow};
use axum::http::header;
use rekey_core::engine::{ResetOutcome, ZoneReport, ZoneState};
use rekey_core::policy::{PasswordPolicy, PolicySource, Violation};
use rekey_core::store::FlowKind;

use crate::i18n::Texts;
use crate::security::{self, FLOW_COOKIE};

#[derive(Deserialize)]
pub struct IdentifyForm {
    csrf: String,
    username: String,
    /// The proof-of-work challenge and its answer, when identify asked for one.
    #[serde(default)]
    pow_challenge: Option<String>,
    #[serde(default)]
    pow: Option<String>,
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
        alt: None,
        link: None,
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
    let start = tokio::time::Instant::now();
    if !ctx.csrf_ok(&f.csrf) {
        return ctx.forbidden();
    }
    let pow = f.pow_challenge.as_deref().zip(f.pow.as_deref());
    let work = s.engine.start_reset_pow(&ctx.req, kind, &f.username, pow);
    match crate::at_deadline(start, s.cfg.identify_deadline, work).await {
        Ok(flow) => ctx.redirect(next, FlowCookie::Set(flow)),
        Err(EngineError::ProofOfWork {
            challenge,
            bits,
            wait_secs,
        }) => {
            let page = crate::views::PowPage {
                c: ctx.common(if kind == FlowKind::Unlock {
                    ctx.t.unlock_title
                } else {
                    ctx.t.reset_title
                }),
                action: if kind == FlowKind::Unlock {
                    "/unlock"
                } else {
                    "/reset"
                },
                challenge,
                bits,
                wait: ctx.t.pow_wait.replace("{}", &wait_secs.to_string()),
                username: f.username.chars().take(256).collect(),
            };
            ctx.render_scripted(StatusCode::TOO_MANY_REQUESTS, &page)
        }
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
    out.push(t.policy_banned.into());
    if p.entra_rules {
        out.push(t.policy_entra.into());
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
        Violation::TooLong => t.violation_too_long.into(),
        Violation::Empty => t.violation_empty.into(),
        Violation::Banned => t.violation_banned.into(),
        Violation::Breached => t.violation_breached.into(),
        Violation::CloudCharacters => t.violation_cloud_characters.into(),
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
        alt: None,
        link: None,
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
    let flow = match ctx.posted_flow(&f.csrf, "/reset") {
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
        // A zone refused the account itself (privileged there): no other password helps.
        Err(
            e @ EngineError::Landing(LandingError::Rejected {
                reason: Rejection::Privileged,
                ..
            }),
        ) => ctx.error(&e, "/"),
        Err(e @ EngineError::Landing(_)) => {
            let msg = ctx.say(&e);
            again(Some(msg), (None, None)).await
        }
        Err(e) => ctx.error(&e, "/reset"),
    }
}

/// The result page of a reset, unlock or change: each zone's state; while a zone is moving, the
/// receipt in the flow cookie and a refresh to `/reset/done`.
pub(super) fn outcome(ctx: &Ctx, done: &'static str, out: &ResetOutcome) -> Response {
    let ok = out.landed_everywhere();
    let first_landed = out
        .zones
        .first()
        .is_some_and(|z| z.state == ZoneState::Landed);
    let message = if ok {
        done.to_owned()
    } else if first_landed {
        // The judge took it; a later zone did not (yet): its row says why.
        ctx.t.partly_done.to_owned()
    } else {
        out.zones
            .iter()
            .find_map(|z| zone_message(ctx.t, z))
            .unwrap_or_else(|| done.to_owned())
    };
    let mut c = ctx.common(ctx.t.done_title);
    if out.receipt.is_some() {
        c.refresh = Some((REFRESH_SECS, "/reset/done"));
    }
    let page = Outcome {
        c,
        ok,
        message,
        zones: out.zones.iter().map(|z| zone_row(ctx, z)).collect(),
        support_id: out.support_id.clone(),
        moving: out.receipt.is_some(),
    };
    let mut res = ctx.render(StatusCode::OK, &page);
    // While a zone is still moving the flow cookie holds the receipt (the result page's id);
    // otherwise the flow is over and the cookie goes.
    let cookie = match &out.receipt {
        Some(id) => security::host_cookie(FLOW_COOKIE, id, None),
        None => security::clear_cookie(FLOW_COOKIE),
    };
    res.headers_mut().append(header::SET_COOKIE, cookie);
    res
}

/// A refusal's or failure's message in the page's language.
fn zone_message(t: &Texts, z: &ZoneReport) -> Option<String> {
    let english = z.message.as_deref()?;
    Some(crate::catalog::zone_text(
        t.lang,
        z.code.as_deref().unwrap_or(""),
        english,
    ))
}

/// How often a result page with a zone still moving reloads itself (seconds).
const REFRESH_SECS: u32 = 5;

fn zone_row(ctx: &Ctx, z: &ZoneReport) -> ZoneRow {
    let t = ctx.t;
    let state = z.state.as_str();
    let text = match (z.state, z.secs) {
        (ZoneState::Synced, Some(s)) => t.zone_synced.replace("{}", &s.to_string()),
        (ZoneState::NotSynced, Some(s)) => t
            .zone_not_synced
            .replace("{}", &rekey_core::engine::minutes(s).to_string()),
        _ => t.zone_outcome(state).to_owned(),
    };
    let detail = match (z.state, z.sessions_revoked) {
        (ZoneState::Rejected | ZoneState::Failed | ZoneState::Indeterminate, _) => {
            zone_message(t, z)
        }
        (_, Some(true)) => Some(t.sessions_revoked.to_owned()),
        (_, Some(false)) => Some(t.sessions_not_revoked.to_owned()),
        _ => None,
    };
    ZoneRow {
        name: t.zone_name(z.zone),
        state,
        text,
        detail,
    }
}

/// The result page of a reset whose zones were still moving; it reloads itself until every
/// zone is final. Without a receipt (expired, or never one) it starts over.
pub async fn done(State(s): State<AppState>, ctx: Ctx) -> Response {
    let receipt = match ctx.flow_or_restart("/") {
        Ok(r) => r,
        Err(r) => return r,
    };
    match s.engine.receipt(&receipt).await {
        Ok(out) => outcome(&ctx, ctx.t.reset_done, &out),
        Err(e) => ctx.error(&e, "/"),
    }
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
        alt: None,
        link: None,
    };
    ctx.render(StatusCode::OK, &form)
}

pub async fn unlock_confirm_post(
    State(s): State<AppState>,
    ctx: Ctx,
    ScalarForm(f): ScalarForm<CsrfOnly>,
) -> Response {
    let flow = match ctx.posted_flow(&f.csrf, "/unlock") {
        Ok(f) => f,
        Err(r) => return r,
    };
    match s.engine.complete_unlock(&ctx.req, &flow).await {
        Ok(out) => outcome(&ctx, ctx.t.unlock_done, &out),
        Err(e) => ctx.error(&e, "/unlock"),
    }
}
