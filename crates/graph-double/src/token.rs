//! `POST /{tenant}/oauth2/v2.0/token`: client credentials (secret, HTTP Basic or a certificate
//! assertion) and ROPC (`grant_type=password`), as the identity platform documents them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::Shared;
use crate::jwt::{AssertionError, parse_certs, verify_assertion};
use crate::model::{Issued, random_hex};
use crate::reply::token_error;

/// The one scope the double serves.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn bad_request(code: u32, text: &str) -> Response {
    token_error(StatusCode::BAD_REQUEST, "invalid_request", code, text)
}

fn invalid_client(code: u32, text: &str) -> Response {
    token_error(StatusCode::UNAUTHORIZED, "invalid_client", code, text)
}

fn missing(name: &str) -> Response {
    bad_request(
        900_144,
        &format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// HTTP Basic credentials (client_id:client_secret, each form-urlencoded per RFC 6749 §2.3.1).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let text = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| form_decode(s);
    Some((dec(id), dec(secret)))
}

fn form_decode(s: &str) -> String {
    crate::graph::percent_decode(&s.replace('+', " "))
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(grant) = form.get("grant_type") else {
        return missing("grant_type");
    };
    match grant.as_str() {
        "client_credentials" => client_credentials(&shared, &tenant, &headers, &form),
        "password" => ropc(&shared, &form).await,
        _ => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

fn client_credentials(
    shared: &Shared,
    tenant: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Response {
    let basic = basic(headers);
    let Some(client_id) = form
        .get("client_id")
        .cloned()
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
    else {
        return missing("client_id");
    };
    match form.get("scope") {
        None => return missing("scope"),
        Some(s) if s != GRAPH_DEFAULT_SCOPE => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1_002_012,
                &format!(
                    "The provided value for scope {s} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            );
        }
        Some(_) => {}
    }
    let Some(app) = shared.state().apps.get(&client_id).cloned() else {
        return token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        );
    };
    let secret = form
        .get("client_secret")
        .cloned()
        .or_else(|| basic.map(|(_, s)| s));
    if let Some(secret) = secret {
        if app.client_secret.as_deref() != Some(secret.as_str()) {
            return invalid_client(
                7_000_215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
            );
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(ASSERTION_TYPE) {
            return bad_request(
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
            );
        }
        let certs = match app.certificate_pem.as_deref().map(parse_certs) {
            Some(Ok(c)) => c,
            _ => {
                return invalid_client(
                    700_027,
                    "The certificate with identifier used to sign the client assertion is not registered on application.",
                );
            }
        };
        let aud = format!("{}/{tenant}/oauth2/v2.0/token", shared.base);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        match verify_assertion(assertion, &client_id, &certs, &aud, now) {
            Ok(v) => {
                if !shared.state().seen_jti.insert(v.jti) {
                    // Microsoft documents jti uniqueness but no error code for a replay [U].
                    return invalid_client(
                        700_027,
                        "Client assertion contains a jti that was already used.",
                    );
                }
            }
            Err(e) => return assertion_error(&e),
        }
    } else {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    issue(shared, &client_id)
}

fn assertion_error(e: &AssertionError) -> Response {
    match e {
        AssertionError::Malformed(why) => bad_request(
            50_027,
            &format!("JWT token is invalid or is malformed: {why}."),
        ),
        AssertionError::UnknownCertificate => invalid_client(
            700_027,
            "The certificate with identifier used to sign the client assertion is not registered on application.",
        ),
        AssertionError::BadSignature => {
            invalid_client(700_027, "Client assertion failed signature validation.")
        }
        AssertionError::Audience => invalid_client(
            700_023,
            "Client assertion audience claim does not match Realm issuer.",
        ),
        AssertionError::IssuerSubject => invalid_client(
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ),
        AssertionError::TimeRange => invalid_client(
            700_024,
            "Client assertion is not within its valid time range.",
        ),
    }
}

fn issue(shared: &Shared, client_id: &str) -> Response {
    let token = random_hex(32);
    let mut st = shared.state();
    let expires_in = st.expires_in;
    st.tokens.insert(
        token.clone(),
        Issued {
            client_id: client_id.to_owned(),
            expires: SystemTime::now() + Duration::from_secs(expires_in),
        },
    );
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": token,
    }))
    .into_response()
}

/// ROPC: proves a user's password works in the cloud. The token it returns is delegated and not
/// accepted by the double's Graph endpoints (which model app-only access).
async fn ropc(shared: &Shared, form: &HashMap<String, String>) -> Response {
    for name in ["client_id", "scope", "username", "password"] {
        if !form.contains_key(name) {
            return missing(name);
        }
    }
    let (upn, password) = (&form["username"], &form["password"]);
    let invalid_grant =
        |code: u32, text: &str| token_error(StatusCode::BAD_REQUEST, "invalid_grant", code, text);
    let found = {
        let st = shared.state();
        st.user_key(upn).and_then(|k| {
            st.users.get(&k).map(|u| {
                (
                    k.clone(),
                    u.spec.account_enabled,
                    u.spec.on_premises_sync_enabled,
                    u.spec.password.clone(),
                )
            })
        })
    };
    let Some((key, enabled, synced, cloud_password)) = found else {
        return invalid_grant(
            50_034,
            "The user account {EUII Hidden} does not exist in the directory. To sign into this application, the account must be added to the directory.",
        );
    };
    let ok = if synced {
        crate::sync::synced_password_ok(shared, &key, password).await
    } else {
        cloud_password.as_deref() == Some(password.as_str())
    };
    if !ok {
        return invalid_grant(
            50_126,
            "Error validating credentials due to invalid username or password.",
        );
    }
    if !enabled {
        return invalid_grant(50_057, "The user account is disabled.");
    }
    axum::Json(json!({
        "token_type": "Bearer",
        "scope": form["scope"],
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": random_hex(32),
    }))
    .into_response()
}
