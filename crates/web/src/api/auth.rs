//! Bearer authentication and the request context of an API call.
//!
//! The presented token is hashed (SHA-256) and compared with EVERY configured client's hash in
//! constant time (`subtle`), so neither the answer nor its time says how much of a token was
//! right or which client came close. The token is never logged; a refusal logs the reason only.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use rekey_core::audit::Actor;
use rekey_core::engine::RequestContext;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::error::ApiError;
use super::{ApiClient, Scope};
use crate::AppState;
use crate::i18n::{self, Texts};

/// The name of the security scheme in the OpenAPI document.
pub(super) const SCHEME: &str = "bearer";

/// A scope an extractor demands, as a type (`Call<SelfService>`).
pub(crate) trait Needs {
    const SCOPE: Scope;
}

/// Scope `self_service`.
pub(crate) struct SelfService;
impl Needs for SelfService {
    const SCOPE: Scope = Scope::SelfService;
}

/// Scope `helpdesk`.
pub(crate) struct Helpdesk;
impl Needs for Helpdesk {
    const SCOPE: Scope = Scope::Helpdesk;
}

/// An authenticated call by a client holding scope `S`: what the engine and the answer need.
pub(crate) struct Call<S> {
    /// The audit's view: client IP, user agent, support id, the integration as actor.
    pub req: RequestContext,
    /// The answer's language (`Accept-Language`: English or German).
    pub t: &'static Texts,
    _scope: PhantomData<S>,
}

impl<S> Call<S> {
    /// An error answer for this call.
    pub(crate) fn fail(&self, e: &rekey_core::engine::EngineError) -> ApiError {
        ApiError::engine(e, self.t, &self.req.support_id)
    }
}

/// The audit actor of an integration: `api:<name>`. The engine's helpdesk calls also take the
/// integration a caller verification is bound to from it.
pub(crate) fn actor(client: &ApiClient) -> Actor {
    Actor::Api(client.name.clone())
}

/// The client whose token hash equals `presented`'s, checking every client whatever matched.
pub(crate) fn find_client<'a>(clients: &'a [ApiClient], presented: &str) -> Option<&'a ApiClient> {
    let hash = super::token_sha256(presented);
    let mut found = subtle::Choice::from(0);
    let mut index = 0_u64;
    for (i, c) in (0_u64..).zip(clients) {
        let same = c.token_sha256.ct_eq(&hash);
        index.conditional_assign(&i, same);
        found |= same;
    }
    if bool::from(found) {
        clients.get(usize::try_from(index).ok()?)
    } else {
        None
    }
}

/// The token after `Bearer ` (the scheme in any case), if the header holds one.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 512)
        .then_some(token)
}

impl<S: Needs + Send + Sync> FromRequestParts<AppState> for Call<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let support_id = super::error::support_id(&parts.extensions, state);
        let t = i18n::choose(
            None,
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let Some(client) = bearer(parts).and_then(|tok| find_client(&state.cfg.api_clients, tok))
        else {
            let why = if bearer(parts).is_some() {
                "unknown token"
            } else {
                "no bearer token"
            };
            tracing::info!(why, "api call refused");
            return Err(ApiError::api(
                StatusCode::UNAUTHORIZED,
                "RK-API-001",
                "Authentication required: send `Authorization: Bearer <token>` with a token \
                 issued for this integration.",
                &support_id,
            ));
        };
        if !client.scopes.contains(&S::SCOPE) {
            tracing::info!(client = %client.name, scope = S::SCOPE.as_str(), "api call refused: scope");
            return Err(ApiError::api(
                StatusCode::FORBIDDEN,
                "RK-API-002",
                "This integration may not call this operation (missing scope).",
                &support_id,
            ));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let ip = crate::security::client_ip(&parts.headers, peer, &state.cfg.trusted_proxies);
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        tracing::info!(client = %client.name, "api call");
        Ok(Self {
            req: RequestContext {
                client_ip: ip.map(|i| i.to_string()),
                user_agent: ua,
                support_id,
                actor: actor(client),
            },
            t,
            _scope: PhantomData,
        })
    }
}
