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
    /// A second, small form under the first (the code page's "use a passkey instead").
    pub alt: Option<Alt>,
    /// A link under the form (back to the methods page, start over).
    pub link: Option<(&'static str, &'static str)>,
}

/// A form of one button (and the CSRF token): a different way to go on.
pub struct Alt {
    pub lead: &'static str,
    pub action: &'static str,
    pub button: &'static str,
}

/// The next gate to choose: one radio button per method.
#[derive(Template)]
#[template(path = "choices.html")]
pub struct Choices {
    pub c: Common,
    pub lead: &'static str,
    pub action: &'static str,
    pub rows: Vec<ChoiceRow>,
    pub error: Option<String>,
}

pub struct ChoiceRow {
    /// The method's form value (`email_otp`, `passkey`, …).
    pub value: &'static str,
    pub name: &'static str,
    /// Masked (`j***@e***.com`); empty where a method has nothing to show.
    pub hint: String,
    /// The strength class (`possession`, …) for styling and tests, and in words.
    pub strength: &'static str,
    pub strength_text: &'static str,
}

/// The passkey page: `navigator.credentials.get()` (a gate) or `.create()` (enrollment), run by
/// `/static/passkey.js` from the options in a JSON data block.
#[derive(Template)]
#[template(path = "passkey.html")]
pub struct PasskeyPage {
    pub c: Common,
    pub lead: &'static str,
    pub alert: Option<String>,
    /// The ceremony's options, escaped with `json_for_script` (printed unescaped).
    pub options: String,
    /// `get` or `create`.
    pub mode: &'static str,
    pub action: &'static str,
    /// Ask for a label (registration).
    pub label: bool,
    pub button: &'static str,
    /// Where to go without a passkey (the other methods, or start over), and its link text.
    pub other: &'static str,
    pub other_text: &'static str,
}

/// The security questions to answer (`answer1`…`answer5`).
#[derive(Template)]
#[template(path = "questions.html")]
pub struct QuestionsPage {
    pub c: Common,
    pub action: &'static str,
    pub questions: Vec<String>,
    pub alert: Option<String>,
    pub other: &'static str,
}

/// The methods page of enrollment.
#[derive(Template)]
#[template(path = "methods.html")]
pub struct MethodsPage {
    pub c: Common,
    pub rows: Vec<MethodRow>,
    /// Reminders: fewer methods than needed, a passkey missing.
    pub reminders: Vec<String>,
    /// Changes waiting for an approver (privileged tier), in words.
    pub pending: Vec<String>,
    pub add: Vec<AddAction>,
}

/// A privileged user's method change was filed for approval: what, the request id, the expiry.
#[derive(Template)]
#[template(path = "enroll_pending.html")]
pub struct ApprovalPendingPage {
    pub c: Common,
    pub message: String,
    pub id: String,
    pub support_id: String,
}

pub struct MethodRow {
    /// The kind's form value (`email`, `sms`, `totp`, `passkey`, `questions`).
    pub kind: &'static str,
    pub name: &'static str,
    pub hint: String,
    pub strength: &'static str,
    pub strength_text: &'static str,
    pub enrolled: String,
    pub last_used: String,
    pub usable_from: String,
}

/// A way to add a method: a link to its form, or (when starting it changes state) a button.
pub struct AddAction {
    pub label: &'static str,
    pub href: &'static str,
    pub post: bool,
}

/// Setting up an authenticator app: the QR code, the key, the first code.
#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage {
    pub c: Common,
    /// Inline SVG markup from `qr_svg` (printed unescaped: built here, not from input).
    pub qr: String,
    /// The base32 key in groups of four.
    pub key: String,
    pub error: Option<String>,
}

/// Choosing security questions: three rows of question and answer.
#[derive(Template)]
#[template(path = "enroll_questions.html")]
pub struct EnrollQuestionsPage {
    pub c: Common,
    /// The admin's questions (a `<select>`); empty: each row has a text input.
    pub list: Vec<String>,
    pub rows: Vec<usize>,
    pub error: Option<String>,
}

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` become `\u003c`,
/// `\u003e` and `\u0026`, so nothing in it can close the element or open a comment. Valid JSON
/// stays valid (these characters can only occur inside strings, where the escapes mean the same).
pub fn json_for_script(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for ch in json.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// An `otpauth://` URI as an inline SVG QR code (no XML declaration: it sits in HTML).
pub fn qr_svg(uri: &str) -> Option<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(uri, qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// `secret` in groups of four (`ABCD EFGH …`), easier to type.
pub fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `YYYY-MM-DD HH:MM` in UTC, from Unix seconds (civil-from-days, no calendar crate needed).
pub fn utc(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    let (y, m, d) = rekey_core::clock::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// `YYYY-MM-DD HH:MM UTC`: a date on a page.
pub fn utc_label(ts: i64) -> String {
    format!("{} UTC", utc(ts))
}

/// Identify under attack: the proof-of-work puzzle (solved by `/static/pow.js`, or answered
/// `wait` after the delay without JavaScript), with the user name as typed.
#[derive(Template)]
#[template(path = "pow.html")]
pub struct PowPage {
    pub c: Common,
    pub action: &'static str,
    pub challenge: String,
    pub bits: u8,
    pub wait: String,
    pub username: String,
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

/// A script file, served as JavaScript (with `nosniff`, only such a response can run).
fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Runs the passkey ceremony on the passkey pages (written by the passkey engineers).
pub async fn passkey_js() -> Response {
    script(include_str!("../static/passkey.js"))
}

/// Solves identify's proof of work (written by the proof-of-work engineers).
pub async fn pow_js() -> Response {
    script(include_str!("../static/pow.js"))
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_formatting() {
        assert_eq!(super::utc(0), "1970-01-01 00:00");
        assert_eq!(super::utc(1_800_000_000), "2027-01-15 08:00");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(super::utc(-1), "1969-12-31 23:59");
        assert_eq!(super::utc_label(1_900_000_000), "2030-03-17 17:46 UTC");
    }

    #[test]
    fn json_in_a_script_block_cannot_close_it() {
        let json = "{\"a\":\"</script><!--x&y\",\"b\":\"\u{2028}\"}";
        let safe = super::json_for_script(json);
        assert!(
            !safe.contains('<') && !safe.contains('>') && !safe.contains('&'),
            "{safe}"
        );
        assert_eq!(
            safe,
            r#"{"a":"\u003c/script\u003e\u003c!--x\u0026y","b":"\u2028"}"#
        );
    }

    #[test]
    fn qr_code_is_inline_svg_without_declaration() {
        let svg = super::qr_svg("otpauth://totp/Rekey:jane?secret=JBSWY3DPEHPK3PXP&issuer=Rekey")
            .unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("<?xml") && !svg.contains("<script"));
        assert_eq!(super::grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
    }
}
