//! Typed views: one struct per template. Handlers build these; templates only display.

use askama::Template;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::i18n::Texts;

/// What every page shows: language, organisation, heading, and the CSRF token.
pub struct Common {
    pub t: &'static Texts,
    pub org: String,
    pub heading: &'static str,
    pub csrf: String,
    /// Seconds after which the page loads this URL by itself (a `<meta>` refresh: no
    /// JavaScript). A page answering a POST must name the GET to load, or it reloads the POST.
    pub refresh: Option<(u32, &'static str)>,
}

#[derive(Template)]
#[template(path = "start.html")]
pub struct Start {
    pub c: Common,
}

/// One labelled input; `error` is tied to it with aria-describedby.
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub autocomplete: &'static str,
    pub hint: Option<&'static str>,
    pub error: Option<String>,
    pub value: String,
}

impl Field {
    pub fn new(
        name: &'static str,
        label: &'static str,
        kind: &'static str,
        autocomplete: &'static str,
    ) -> Self {
        Self {
            name,
            label,
            kind,
            autocomplete,
            hint: None,
            error: None,
            value: String::new(),
        }
    }

    #[must_use]
    pub fn hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
}

#[derive(Template)]
#[template(path = "form.html")]
pub struct Form {
    pub c: Common,
    pub lead: Option<String>,
    pub alert: Option<String>,
    pub support_id: Option<String>,
    pub rules: Vec<String>,
    pub action: &'static str,
    pub fields: Vec<Field>,
    pub button: &'static str,
}

#[derive(Template)]
#[template(path = "result.html")]
pub struct Outcome {
    pub c: Common,
    pub ok: bool,
    pub message: String,
    pub zones: Vec<ZoneRow>,
    pub support_id: String,
    /// A zone is still moving: say so, and offer the link the refresh follows.
    pub moving: bool,
}

/// One landing zone on the result page.
pub struct ZoneRow {
    pub name: &'static str,
    /// The engine's state word (`landed`, `pending`, …), for tests and styling.
    pub state: &'static str,
    /// The state in the page's language, with its number filled in.
    pub text: String,
    /// More: the reason of a refusal, or sessions signed out.
    pub detail: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub c: Common,
    pub message: String,
    pub code: String,
    pub support_id: String,
    pub again: &'static str,
}

/// The icon (a key), at `/favicon.ico` (browsers ask there by default) and at the URL the pages
/// link. SVG without script or style, so it loads under the CSP's `img-src 'self'`.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=31536000"),
        ],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}
