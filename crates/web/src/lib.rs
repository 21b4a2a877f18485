//! Rekey's portal: server-rendered pages over the core engine. No JavaScript, except the two
//! static files the passkey pages and the proof of work load (never inline script, invariant 15).
//!
//! API boundary: `router(engine, config)` — the binary serves it. Architecture invariant: handlers
//! are thin (parse → one engine call → view); flow state lives server-side, the browser holds only
//! the opaque flow id in a `__Host-` cookie (invariant 12).

pub mod api;
mod catalog;
mod handlers;
mod helpdesk;
mod i18n;
mod security;
mod views;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rekey_core::engine::Engine;

/// Portal settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    pub organisation: String,
    /// Proxies whose X-Forwarded-For is believed (invariant 17).
    pub trusted_proxies: Vec<IpAddr>,
    /// Every identify answer is released at this fixed delay after the request arrived, so the
    /// response time does not depend on the account (invariant 9).
    pub identify_deadline: Duration,
    /// Gate posts (codes, the choice of a further gate, passkey answers, security answers) answer
    /// at this fixed delay: real flows do more work than decoys (invariant 9).
    pub answer_deadline: Duration,
    /// `/change` and the enrollment sign-in answer at this fixed delay: an unknown name is
    /// refused at once, a real one after a DC round trip (invariant 9). Keep it above the
    /// DC's change latency under load.
    pub password_deadline: Duration,
    /// Request bodies above this are refused with 413 (invariant 18).
    pub body_limit: usize,
    /// The integrations that may call the JSON API; empty: none can.
    pub api_clients: Vec<api::ApiClient>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            organisation: "Rekey".into(),
            trusted_proxies: Vec::new(),
            identify_deadline: Duration::from_millis(400),
            answer_deadline: Duration::from_millis(400),
            password_deadline: Duration::from_millis(1500),
            body_limit: 16 * 1024,
            api_clients: Vec::new(),
        }
    }
}

/// Await `work`, then answer no earlier than `deadline` after `start`: the time of an answer
/// that depends on the account says nothing about the account (invariant 9).
pub(crate) async fn at_deadline<T>(
    start: tokio::time::Instant,
    deadline: Duration,
    work: impl std::future::Future<Output = T>,
) -> T {
    let out = work.await;
    tokio::time::sleep_until(start + deadline).await;
    out
}

/// Runs the engine's after-answer work (notices) on the Tokio runtime.
pub struct TokioSpawn;

impl rekey_core::clock::Spawn for TokioSpawn {
    fn spawn(&self, work: rekey_core::BoxFuture<'static, ()>) {
        tokio::spawn(work);
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub cfg: Arc<WebConfig>,
}

/// The portal's routes with all middleware applied.
pub fn router(engine: Engine, cfg: WebConfig) -> Router {
    use handlers as h;
    let limit = cfg.body_limit;
    let state = AppState {
        engine,
        cfg: Arc::new(cfg),
    };
    Router::new()
        .route("/", get(h::start))
        .route("/static/app.css", get(h::css))
        .route("/static/passkey.js", get(views::passkey_js))
        .route("/static/pow.js", get(views::pow_js))
        .route("/favicon.ico", get(views::favicon))
        .route("/static/favicon.svg", get(views::favicon))
        .route(
            "/reset",
            get(h::reset_identify).post(h::reset_identify_post),
        )
        .route(
            "/unlock",
            get(h::unlock_identify).post(h::unlock_identify_post),
        )
        .merge(h::gate_routes(&h::RESET))
        .merge(h::gate_routes(&h::UNLOCK))
        .merge(h::gate_routes(&h::ENROLL))
        .route("/reset/password", get(h::password).post(h::password_post))
        .route("/reset/done", get(h::done))
        .route(
            "/unlock/confirm",
            get(h::unlock_confirm).post(h::unlock_confirm_post),
        )
        .route("/change", get(h::change).post(h::change_post))
        .route("/enroll", get(h::enroll).post(h::enroll_post))
        .route("/enroll/methods", get(h::enroll_methods))
        .route(
            "/enroll/email",
            get(h::enroll_email).post(h::enroll_email_post),
        )
        .route(
            "/enroll/phone",
            get(h::enroll_phone).post(h::enroll_phone_post),
        )
        .route(
            "/enroll/code",
            get(h::enroll_code).post(h::enroll_code_post),
        )
        .route("/enroll/remove", post(h::enroll_remove))
        .route("/enroll/cancel", post(h::enroll_cancel))
        .route(
            "/enroll/totp",
            get(h::enroll_totp).post(h::enroll_totp_begin),
        )
        .route("/enroll/totp/confirm", post(h::enroll_totp_confirm))
        .route(
            "/enroll/passkey",
            get(h::enroll_passkey).post(h::enroll_passkey_begin),
        )
        .route("/enroll/passkey/finish", post(h::enroll_passkey_finish))
        .route(
            "/enroll/questions",
            get(h::enroll_questions).post(h::enroll_questions_post),
        )
        .merge(helpdesk::routes())
        .merge(api::routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::from_fn(api::problems))
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trace::span,
        ))
        .with_state(state)
}

mod trace;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_enroll;
#[cfg(test)]
mod tests_gates;
#[cfg(test)]
mod tests_i18n;
