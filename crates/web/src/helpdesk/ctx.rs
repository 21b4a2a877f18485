//! The console's request context: language, CSRF (double submit, the portal's cookie), the
//! console session cookie (`__Host-rekey-console`: only the opaque id), the audit context.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use rekey_core::UserFacing;
use rekey_core::engine::{EngineError, RequestContext};

use super::texts::{self, Hd};
use crate::AppState;
use crate::i18n::{self, Texts};
use crate::security;
use crate::views::{Common, ErrorPage};

/// The console session's cookie: a different name from the portal's flow cookie, so a console
/// session and a self-service flow in the same browser never replace each other.
pub const CONSOLE_COOKIE: &str = "__Host-rekey-console";

pub struct HdCtx {
    pub t: &'static Texts,
    pub h: &'static Hd,
    csrf: String,
    new_csrf: bool,
    set_lang: Option<&'static str>,
    pub session: Option<String>,
    pub req: RequestContext,
    org: String,
    session_ttl: i64,
}

impl FromRequestParts<AppState> for HdCtx {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let b = crate::handlers::basics(parts, state);
        let session = security::cookie(&parts.headers, CONSOLE_COOKIE)
            .filter(|c| crate::handlers::opaque(c))
            .map(str::to_owned);
        Ok(Self {
            t: b.t,
            h: texts::of(b.t),
            csrf: b.csrf,
            new_csrf: b.new_csrf,
            set_lang: b.set_lang,
            session,
            req: b.req,
            org: state.cfg.organisation.clone(),
            session_ttl: state.engine.config().helpdesk.session_ttl,
        })
    }
}

/// What a response does with the session cookie.
pub enum Cookie {
    Keep,
    Set(String),
    Clear,
}

impl HdCtx {
    pub fn common(&self, heading: &'static str) -> Common {
        Common {
            t: self.t,
            org: self.org.clone(),
            heading,
            csrf: self.csrf.clone(),
            refresh: None,
        }
    }

    fn finish(&self, mut res: Response, cookie: Cookie) -> Response {
        let h = res.headers_mut();
        crate::handlers::page_cookies(h, &self.csrf, self.new_csrf, self.set_lang);
        match cookie {
            Cookie::Keep => {}
            Cookie::Set(id) => {
                h.append(
                    header::SET_COOKIE,
                    security::host_cookie(CONSOLE_COOKIE, &id, Some(self.session_ttl)),
                );
            }
            Cookie::Clear => {
                h.append(header::SET_COOKIE, security::clear_cookie(CONSOLE_COOKIE));
            }
        }
        res
    }

    pub fn render(&self, status: StatusCode, page: &impl Template) -> Response {
        match page.render() {
            Ok(html) => self.finish((status, Html(html)).into_response(), Cookie::Keep),
            Err(e) => {
                tracing::error!(support_id = %self.req.support_id, error = %e, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    pub fn redirect(&self, to: &str, cookie: Cookie) -> Response {
        self.finish(Redirect::to(to).into_response(), cookie)
    }

    pub fn csrf_ok(&self, token: &str) -> bool {
        !self.new_csrf && security::csrf_ok_token(&self.csrf, token)
    }

    /// The plain message of an engine error, in the page's language.
    pub fn say(&self, e: &EngineError) -> String {
        i18n::message(self.t, e.code(), e.message()).to_owned()
    }

    /// The session id of a state-changing post: the CSRF token must match, the cookie exist.
    #[allow(clippy::result_large_err)] // axum's Response is the natural error here
    pub fn posted(&self, csrf: &str) -> Result<String, Response> {
        if !self.csrf_ok(csrf) {
            return Err(self.forbidden());
        }
        self.session_or_sign_in()
    }

    #[allow(clippy::result_large_err)] // axum's Response is the natural error here
    pub fn session_or_sign_in(&self) -> Result<String, Response> {
        self.session
            .clone()
            .ok_or_else(|| self.redirect("/helpdesk", Cookie::Keep))
    }

    pub fn forbidden(&self) -> Response {
        let mut res = self.error(&EngineError::WrongStep);
        *res.status_mut() = StatusCode::FORBIDDEN;
        res
    }

    pub fn error(&self, e: &EngineError) -> Response {
        let status = match e {
            EngineError::FlowExpired | EngineError::WrongStep => StatusCode::BAD_REQUEST,
            EngineError::RateLimited | EngineError::TooManyAttempts => {
                StatusCode::TOO_MANY_REQUESTS
            }
            EngineError::NotAllowed | EngineError::SelfApproval => StatusCode::FORBIDDEN,
            EngineError::Store(_)
            | EngineError::Directory(_)
            | EngineError::Mail
            | EngineError::SealedKey(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        };
        tracing::warn!(support_id = %self.req.support_id, code = e.code(), error = ?e, "helpdesk request failed");
        let expired = matches!(e, EngineError::FlowExpired);
        let page = ErrorPage {
            c: self.common(self.t.error_title),
            message: self.say(e),
            code: e.code().to_owned(),
            support_id: self.req.support_id.clone(),
            again: if expired {
                "/helpdesk"
            } else {
                "/helpdesk/console"
            },
        };
        match page.render() {
            Ok(html) => {
                let cookie = if expired { Cookie::Clear } else { Cookie::Keep };
                self.finish((status, Html(html)).into_response(), cookie)
            }
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        }
    }
}
