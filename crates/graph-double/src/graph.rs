//! Graph v1.0: list/get/PATCH users, revokeSignInSessions, (transitive)memberOf — app-only
//! access with a Bearer token from the double's token endpoint.
#![allow(
    clippy::result_large_err,
    reason = "the early-return helpers hand back the finished error response"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::Shared;
use crate::model::{AppSpec, USER_ADMIN_MAY_RESET, User, iso8601};
use crate::reply::{INSUFFICIENT, SYNCED_OBJECT, WEAK_PASSWORD, cloud_password_ok, graph_error};

const READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const REVOKE: &[&str] = &[
    "User.RevokeSessions.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const PASSWORD_PERMISSION: &str = "User-PasswordProfile.ReadWrite.All";
const RESET_ROLES: &[&str] = &[
    "User Administrator",
    "Privileged Authentication Administrator",
    "Global Administrator",
];
const PRIVILEGED_RESET_ROLES: &[&str] = &[
    "Privileged Authentication Administrator",
    "Global Administrator",
];
/// Returned by GET without `$select` (G `api/user-get.md`: the default set).
const DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Percent-decodes a string (invalid escapes are kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The calling app, from `Authorization: Bearer …`.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<AppSpec, Response> {
    let unauth = |msg: &str| {
        graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            msg,
            headers,
        )
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauth("Access token is empty."));
    };
    let st = shared.state();
    let Some(issued) = st.tokens.get(token) else {
        return Err(unauth("Access token validation failure. Invalid audience."));
    };
    if issued.expires <= SystemTime::now() {
        return Err(unauth("Lifetime validation failed, the token is expired."));
    }
    st.apps
        .get(&issued.client_id)
        .cloned()
        .ok_or_else(|| unauth("Access token validation failure. Invalid audience."))
}

fn has_any(have: &[String], want: &[&str]) -> bool {
    have.iter().any(|h| want.contains(&h.as_str()))
}

fn denied(headers: &HeaderMap) -> Response {
    graph_error(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        INSUFFICIENT,
        headers,
    )
}

fn not_found(id: &str, headers: &HeaderMap) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
        headers,
    )
}

fn bad_request(code: &str, msg: &str, headers: &HeaderMap) -> Response {
    graph_error(StatusCode::BAD_REQUEST, code, msg, headers)
}

fn full(u: &User) -> Map<String, Value> {
    let s = &u.spec;
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("businessPhones", json!([]));
    put("displayName", json!(s.display_name));
    for k in [
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
    ] {
        put(k, Value::Null);
    }
    put("preferredLanguage", Value::Null);
    put("surname", Value::Null);
    put("userPrincipalName", json!(s.user_principal_name));
    put("id", json!(s.id));
    put("accountEnabled", json!(s.account_enabled));
    put(
        "onPremisesSyncEnabled",
        if s.on_premises_sync_enabled {
            json!(true)
        } else {
            Value::Null
        },
    );
    put("onPremisesImmutableId", json!(s.on_premises_immutable_id));
    put(
        "onPremisesSamAccountName",
        json!(s.on_premises_sam_account_name),
    );
    put(
        "onPremisesDistinguishedName",
        json!(s.on_premises_distinguished_name),
    );
    put(
        "lastPasswordChangeDateTime",
        json!(iso8601(u.last_password_change)),
    );
    put(
        "signInSessionsValidFromDateTime",
        json!(iso8601(u.sessions_valid_from)),
    );
    m
}

/// Projects a user onto `$select` (or the default set).
fn project(u: &User, select: Option<&[String]>) -> Value {
    let all = full(u);
    let keys: Vec<&str> = match select {
        Some(sel) => sel.iter().map(String::as_str).collect(),
        None => DEFAULT_PROPS.to_vec(),
    };
    let mut out = Map::new();
    for k in keys {
        if let Some(v) = all.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

fn parse_select(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Option<Vec<String>>, Response> {
    let Some(sel) = q.get("$select") else {
        return Ok(None);
    };
    let probe = full(&User {
        spec: crate::UserSpec::default(),
        last_password_change: SystemTime::UNIX_EPOCH,
        sessions_valid_from: SystemTime::UNIX_EPOCH,
        force_change: false,
        synced_change: None,
        pending: None,
    });
    let mut out = Vec::new();
    for p in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, _)) = probe.iter().find(|(k, _)| k.eq_ignore_ascii_case(p)) else {
            return Err(bad_request(
                "BadRequest",
                &format!("Could not find a property named '{p}' on type 'microsoft.graph.user'."),
                headers,
            ));
        };
        out.push(k.clone());
    }
    Ok(Some(out))
}

/// `prop eq 'value'` (OData: `''` is a quote) or `onPremisesSyncEnabled eq true|false`.
fn parse_filter(f: &str) -> Option<(String, Value)> {
    let (prop, rest) = f.trim().split_once(' ')?;
    let rest = rest.trim_start().strip_prefix("eq ")?.trim();
    let value = if let Some(inner) = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        json!(inner.replace("''", "'"))
    } else {
        match rest {
            "true" => json!(true),
            "false" => json!(false),
            _ => return None,
        }
    };
    let props = [
        "id",
        "userPrincipalName",
        "onPremisesImmutableId",
        "onPremisesSamAccountName",
        "onPremisesSyncEnabled",
        "displayName",
        "accountEnabled",
    ];
    let prop = props.iter().find(|p| p.eq_ignore_ascii_case(prop))?;
    Some(((*prop).to_owned(), value))
}

fn matches(u: &User, prop: &str, want: &Value) -> bool {
    let have = &full(u)[prop];
    match (have, want) {
        // Graph compares these case-insensitively; the immutable id is base64 and exact.
        (Value::String(h), Value::String(w)) if prop != "onPremisesImmutableId" => {
            h.eq_ignore_ascii_case(w)
        }
        (Value::Null, Value::Bool(false)) => prop == "onPremisesSyncEnabled",
        (h, w) => h == w,
    }
}

/// A read: a valid token with a read permission, then the `$select` list (if any).
#[allow(clippy::result_large_err)] // axum's Response is the natural error here
fn read_access(
    shared: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<Option<Vec<String>>, Response> {
    let app = authenticate(shared, headers)?;
    if !has_any(&app.permissions, READ) {
        return Err(denied(headers));
    }
    parse_select(q, headers)
}

pub(crate) async fn list_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let select = match read_access(&shared, &headers, &q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let filter = match q.get("$filter") {
        None => None,
        Some(f) => match parse_filter(f) {
            Some(f) => Some(f),
            None => return bad_request("Request_UnsupportedQuery", "Unsupported Query.", &headers),
        },
    };
    let st = shared.state();
    let value: Vec<Value> = st
        .users
        .values()
        .filter(|u| filter.as_ref().is_none_or(|(p, v)| matches(u, p, v)))
        .map(|u| project(u, select.as_deref()))
        .collect();
    let context = match &select {
        Some(sel) => format!("{}/v1.0/$metadata#users({})", shared.base, sel.join(",")),
        None => format!("{}/v1.0/$metadata#users", shared.base),
    };
    Json(json!({"@odata.context": context, "value": value})).into_response()
}

pub(crate) async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let select = match read_access(&shared, &headers, &q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let st = shared.state();
    let Some(u) = st.user_key(&id).and_then(|k| st.users.get(&k)) else {
        return not_found(&id, &headers);
    };
    let mut v = project(u, select.as_deref());
    if let Value::Object(m) = &mut v {
        m.insert(
            "@odata.context".into(),
            json!(format!("{}/v1.0/$metadata#users/$entity", shared.base)),
        );
    }
    Json(v).into_response()
}

pub(crate) async fn patch_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let app = match authenticate(&shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            &headers,
        );
    };
    let Some(profile) = body.get("passwordProfile") else {
        return bad_request(
            "Request_BadRequest",
            "This test double supports only passwordProfile in PATCH /users.",
            &headers,
        );
    };
    let mut st = shared.state();
    let Some(key) = st.user_key(&id) else {
        return not_found(&id, &headers);
    };
    if !app.permissions.iter().any(|p| p == PASSWORD_PERMISSION)
        || !has_any(&app.roles, RESET_ROLES)
    {
        return denied(&headers);
    }
    let Some(user) = st.users.get_mut(&key) else {
        return not_found(&id, &headers);
    };
    let privileged_target = user
        .spec
        .directory_roles
        .iter()
        .any(|r| !USER_ADMIN_MAY_RESET.contains(&r.as_str()));
    if privileged_target && !has_any(&app.roles, PRIVILEGED_RESET_ROLES) {
        return denied(&headers);
    }
    if user.spec.on_premises_sync_enabled {
        return bad_request("Request_BadRequest", SYNCED_OBJECT, &headers);
    }
    let Some(password) = profile.get("password").and_then(Value::as_str) else {
        return bad_request(
            "Request_BadRequest",
            "Invalid value specified for property 'passwordProfile' of resource 'User'.",
            &headers,
        );
    };
    if !cloud_password_ok(password) {
        return bad_request("Request_BadRequest", WEAK_PASSWORD, &headers);
    }
    user.spec.password = Some(password.to_owned());
    user.last_password_change = SystemTime::now();
    user.force_change = profile
        .get("forceChangePasswordNextSignIn")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let app = match authenticate(&shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut st = shared.state();
    let Some(key) = st.user_key(&id) else {
        return not_found(&id, &headers);
    };
    if !has_any(&app.permissions, REVOKE) {
        return denied(&headers);
    }
    if let Some(u) = st.users.get_mut(&key) {
        u.sessions_valid_from = SystemTime::now();
    }
    Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#Edm.Boolean", shared.base),
        "value": true,
    }))
    .into_response()
}

/// Well-known role template ids (G `resources/directoryrole.md` / Entra built-in roles).
fn role_template(name: &str) -> String {
    let known = [
        (
            "Global Administrator",
            "62e90394-69f5-4237-9190-012177145e10",
        ),
        ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1"),
        (
            "Privileged Authentication Administrator",
            "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        ),
        (
            "Helpdesk Administrator",
            "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        ),
        (
            "Password Administrator",
            "966707d0-3269-4727-9be2-8c3a10f19b9d",
        ),
    ];
    known
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or_else(|| guid_of(name), |(_, id)| (*id).to_owned())
}

fn guid_of(seed: &str) -> String {
    let h: String = Sha256::digest(seed.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    crate::model::guid_shape(&h)
}

pub(crate) async fn member_of(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let app = match authenticate(&shared, &headers) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !has_any(&app.permissions, READ) {
        return denied(&headers);
    }
    let st = shared.state();
    let Some(u) = st.user_key(&id).and_then(|k| st.users.get(&k)) else {
        return not_found(&id, &headers);
    };
    let value: Vec<Value> = u
        .spec
        .directory_roles
        .iter()
        .map(|r| {
            json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": guid_of(&format!("role:{r}")),
                "deletedDateTime": null,
                "description": null,
                "displayName": r,
                "roleTemplateId": role_template(r),
            })
        })
        .collect();
    Json(json!({
        "@odata.context": format!("{}/v1.0/$metadata#directoryObjects", shared.base),
        "value": value,
    }))
    .into_response()
}
