//! The control API for tests, under `/_double/…` (JSON), mirroring the `Double` methods:
//! - `POST /_double/apps` — an [`AppSpec`]; `POST /_double/users` — a [`UserSpec`]
//! - `POST /_double/throttle` — `{"count": N, "retryAfter": "1.5"}`
//! - `POST /_double/sync` — [`crate::SyncSettings`] `{"paused": bool, "delayMs": N}`
//! - `POST /_double/token-lifetime` — `{"expiresIn": N}`
//! - `GET /_double/sync` — the current sync settings
//! - `GET /_double/requests` — the request log; `GET /_double/users` — every user's full view;
//!   `GET /_double/users/{id|upn}` — one user's
//! - `POST /_double/users/{id|upn}/roles` — `{"roles": ["Global Administrator"]}` adds
//!   directory roles to an existing user

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{AppSpec, SyncSettings, User, UserSpec, iso8601};
use crate::{Shared, jwt};

pub(crate) fn add_app(shared: &Shared, app: AppSpec) -> Result<(), String> {
    if app.client_id.is_empty() {
        return Err("clientId is required".into());
    }
    if let Some(pem) = &app.certificate_pem {
        jwt::parse_certs(pem)?;
    }
    shared.state().apps.insert(app.client_id.clone(), app);
    Ok(())
}

pub(crate) fn user_view(shared: &Shared, id: &str) -> Option<Value> {
    let st = shared.state();
    st.user_key(id).and_then(|k| st.users.get(&k)).map(view)
}

pub(crate) fn all_users(shared: &Shared) -> Vec<Value> {
    shared.state().users.values().map(view).collect()
}

pub(crate) fn grant_roles(shared: &Shared, id: &str, roles: &[String]) -> bool {
    let mut st = shared.state();
    let Some(u) = st.user_key(id).and_then(|k| st.users.get_mut(&k)) else {
        return false;
    };
    for r in roles {
        if !u
            .spec
            .directory_roles
            .iter()
            .any(|h| h.eq_ignore_ascii_case(r))
        {
            u.spec.directory_roles.push(r.clone());
        }
    }
    true
}

fn view(u: &User) -> Value {
    let s = &u.spec;
    json!({
        "id": s.id,
        "userPrincipalName": s.user_principal_name,
        "displayName": s.display_name,
        "accountEnabled": s.account_enabled,
        "onPremisesSyncEnabled": s.on_premises_sync_enabled,
        "onPremisesImmutableId": s.on_premises_immutable_id,
        "onPremisesSamAccountName": s.on_premises_sam_account_name,
        "onPremisesDistinguishedName": s.on_premises_distinguished_name,
        "directoryRoles": s.directory_roles,
        "lastPasswordChangeDateTime": iso8601(u.last_password_change),
        "signInSessionsValidFromDateTime": iso8601(u.sessions_valid_from),
        "forceChangePasswordNextSignIn": u.force_change,
        "syncPending": u.pending.is_some(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleBody {
    count: u32,
    retry_after: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RolesBody {
    roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LifetimeBody {
    expires_in: u64,
}

async fn post_app(State(shared): State<Arc<Shared>>, Json(app): Json<AppSpec>) -> Response {
    match add_app(&shared, app) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
    }
}

async fn post_user(State(shared): State<Arc<Shared>>, Json(user): Json<UserSpec>) -> Response {
    if user.id.is_empty() || user.user_principal_name.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "id and userPrincipalName are required"})),
        )
            .into_response();
    }
    shared.state().add_user(user, SystemTime::now());
    StatusCode::CREATED.into_response()
}

async fn post_throttle(
    State(shared): State<Arc<Shared>>,
    Json(t): Json<ThrottleBody>,
) -> StatusCode {
    let mut st = shared.state();
    st.throttle.remaining = t.count;
    st.throttle.retry_after = t.retry_after;
    StatusCode::NO_CONTENT
}

async fn post_sync(State(shared): State<Arc<Shared>>, Json(s): Json<SyncSettings>) -> StatusCode {
    shared.state().sync = s;
    StatusCode::NO_CONTENT
}

async fn post_lifetime(
    State(shared): State<Arc<Shared>>,
    Json(l): Json<LifetimeBody>,
) -> StatusCode {
    shared.state().expires_in = l.expires_in;
    StatusCode::NO_CONTENT
}

async fn get_requests(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.state().log.clone()).into_response()
}

async fn get_users(State(shared): State<Arc<Shared>>) -> Response {
    Json(all_users(&shared)).into_response()
}

async fn post_roles(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(body): Json<RolesBody>,
) -> StatusCode {
    if grant_roles(&shared, &id, &body.roles) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn get_sync(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.state().sync).into_response()
}

async fn get_user(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match user_view(&shared, &id) {
        Some(v) => Json(v).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_double/apps", post(post_app))
        .route("/_double/users", post(post_user).get(get_users))
        .route("/_double/users/{id}", get(get_user))
        .route("/_double/users/{id}/roles", post(post_roles))
        .route("/_double/throttle", post(post_throttle))
        .route("/_double/sync", post(post_sync).get(get_sync))
        .route("/_double/token-lifetime", post(post_lifetime))
        .route("/_double/requests", get(get_requests))
}
