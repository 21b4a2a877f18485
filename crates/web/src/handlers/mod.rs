//! Thin handlers: parse, one engine call, a typed view.

mod change;
mod enroll;
mod enroll_add;
mod gates;
mod reset;

pub use change::*;
pub use enroll::*;
pub use enroll_add::*;
pub use gates::{ENROLL, RESET, UNLOCK, routes as gate_routes};
pub use reset::*;

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rekey_core::UserFacing;
use rekey_core::engine::{EngineError, RequestContext};
use serde::Deserialize;

use crate::AppState;
use crate::i18n::{self, Texts};
use crate::security::{self, CSRF_COOKIE, FLOW_COOKIE, LANG_COOKIE, ScalarForm};
use crate::views::{Common, ErrorPage, Start};

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

/// What every page request carries, read the same way for the portal's and the console's
/// context: the language, the CSRF token (a new one when the cookie is missing or malformed) and
/// the audit's view of the request.
pub(crate) struct Basics {
    pub t: &'static Texts,
    /// `?lang=` named a language: the response sets the language cookie.
    pub set_lang: Option<&'static str>,
    pub csrf: String,
    pub new_csrf: bool,
    pub req: RequestContext,
}

/// A cookie value as Rekey makes them (64 hex digits); anything else is ignored.
pub(crate) fn opaque(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cookies every page answer may set: a new CSRF token, the language `?lang=` chose.
pub(crate) fn page_cookies(
    h: &mut axum::http::HeaderMap,
    csrf: &str,
    new_csrf: bool,
    set_lang: Option<&str>,
) {
    if new_csrf {
        h.append(
            header::SET_COOKIE,
            security::host_cookie(CSRF_COOKIE, csrf, None),
        );
    }
    if let Some(lang) = set_lang {
        h.append(
            header::SET_COOKIE,
            security::host_cookie(LANG_COOKIE, lang, Some(security::LANG_MAX_AGE)),
        );
    }
}

pub(crate) fn basics(parts: &Parts, state: &AppState) -> Basics {
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
    let (csrf, new_csrf) = match security::cookie(h, CSRF_COOKIE).filter(|c| opaque(c)) {
        Some(c) => (c.to_owned(), false),
        None => (state.engine.token(), true),
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = security::client_ip(h, peer, &state.cfg.trusted_proxies);
    let ua = h
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    Basics {
        t,
        set_lang: chosen,
        csrf,
        new_csrf,
        req: RequestContext {
            client_ip: ip.map(|i| i.to_string()),
            user_agent: ua,
            support_id: parts
                .extensions
                .get::<crate::trace::SupportId>()
                .map_or_else(|| state.engine.support_id(), |s| s.0.clone()),
            actor: rekey_core::audit::Actor::User,
        },
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let b = basics(parts, state);
        let flow = security::cookie(&parts.headers, FLOW_COOKIE)
            .filter(|c| opaque(c))
            .map(str::to_owned);
        Ok(Self {
            t: b.t,
            csrf: b.csrf,
            new_csrf: b.new_csrf,
            set_lang: b.set_lang,
            flow,
            req: b.req,
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
            refresh: None,
        }
    }

    /// Attach the cookies this request must set.
    fn finish(&self, mut res: Response) -> Response {
        page_cookies(res.headers_mut(), &self.csrf, self.new_csrf, self.set_lang);
        res
    }

    /// A page that loads one of our script files: its CSP allows same-origin scripts.
    fn render_scripted(&self, status: StatusCode, page: &impl Template) -> Response {
        let mut res = self.render(status, page);
        res.extensions_mut().insert(security::RunsScripts);
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

    /// A state-changing post within a flow: the CSRF token must match and the flow cookie exist.
    #[allow(clippy::result_large_err)] // axum's Response is the natural error here
    fn posted_flow(&self, csrf: &str, again: &'static str) -> Result<String, Response> {
        if !self.csrf_ok(csrf) {
            return Err(self.forbidden());
        }
        self.flow_or_restart(again)
    }

    /// The plain message of an engine error, in the page's language.
    fn say(&self, e: &EngineError) -> String {
        i18n::message(self.t, e.code(), e.message()).to_owned()
    }

    fn csrf_ok(&self, token: &str) -> bool {
        !self.new_csrf && security::csrf_ok_token(&self.csrf, token)
    }

    fn error(&self, e: &EngineError, again: &'static str) -> Response {
        let status = match e {
            EngineError::FlowExpired | EngineError::WrongStep => StatusCode::BAD_REQUEST,
            EngineError::RateLimited
            | EngineError::TooManyAttempts
            | EngineError::ProofOfWork { .. } => StatusCode::TOO_MANY_REQUESTS,
            EngineError::Store(_)
            | EngineError::Directory(_)
            | EngineError::Mail
            | EngineError::SealedKey(_) => StatusCode::SERVICE_UNAVAILABLE,
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

/// A post that carries nothing but the CSRF token.
#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

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
        include_str!("../../static/app.css"),
    )
        .into_response()
}
