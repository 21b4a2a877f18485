//! Change: user name, current and new password, one engine call.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rekey_core::Password;
use rekey_core::engine::EngineError;
use serde::Deserialize;

use super::{Ctx, ScalarForm};
use crate::AppState;
use crate::views::{Field, Form};

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
        alt: None,
        link: None,
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
    let start = tokio::time::Instant::now();
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
    let work = s.engine.change(&ctx.req, &f.username, &old, &new);
    match crate::at_deadline(start, s.cfg.password_deadline, work).await {
        Ok(out) => super::reset::outcome(&ctx, ctx.t.change_done, &out),
        Err(EngineError::TooSoon { allowed_at }) => {
            let e = EngineError::TooSoon { allowed_at };
            let mut msg = ctx.say(&e);
            if let Some(at) = allowed_at {
                msg = format!(
                    "{msg} {}",
                    ctx.t.allowed_at.replace("{}", &crate::views::utc(at))
                );
            }
            ctx.render(
                StatusCode::OK,
                &change_form(&ctx, Some(msg), &f.username, None),
            )
        }
        Err(
            e @ (EngineError::ChangeRefused
            | EngineError::Banned
            | EngineError::Breached
            | EngineError::Landing(_)),
        ) => {
            let msg = ctx.say(&e);
            ctx.render(
                StatusCode::OK,
                &change_form(&ctx, Some(msg), &f.username, None),
            )
        }
        Err(e) => ctx.error(&e, "/change"),
    }
}
