//! `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, as documented for Twilio's
//! Programmable Messaging API (Message resource, error envelope, test-credential magic numbers).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::time::rfc2822;
use crate::{Failure, Message, Shared};

const API_VERSION: &str = "2010-04-01";
/// The documented limit of a (concatenated) message body.
const MAX_BODY_CHARS: usize = 1600;

/// Twilio's error envelope: `{"code", "message", "more_info", "status"}`.
pub(crate) fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    });
    (status, axum::Json(body)).into_response()
}

fn injected(failure: Failure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = failure
        .code
        .unwrap_or_else(|| 20_000 + u32::from(failure.status));
    let message = status
        .canonical_reason()
        .unwrap_or("Injected failure (rekey-sms-double)");
    twilio_error(status, code, message)
}

/// Takes one injected failure, if one is armed.
fn take_failure(shared: &Shared) -> Option<Failure> {
    let mut st = shared.state();
    let failure = st.failure?;
    match failure.count {
        None => Some(failure),
        Some(0) => {
            st.failure = None;
            None
        }
        Some(n) => {
            st.failure = (n > 1).then_some(Failure {
                count: Some(n - 1),
                ..failure
            });
            Some(failure)
        }
    }
}

/// The Basic auth pair, if the header holds one.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

fn authenticated(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some((user, pass)) = basic_auth(headers) else {
        return false;
    };
    let config = &shared.config;
    (user == config.account_sid && pass == config.auth_token)
        || config
            .api_keys
            .iter()
            .any(|(k, s)| *k == user && *s == pass)
}

/// `+` then 8–15 digits.
pub(crate) fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The documented magic `To` numbers of Twilio's test credentials.
fn magic_to(to: &str) -> Option<(u32, String)> {
    Some(match to {
        "+15005550001" => (21211, format!("Invalid 'To' Phone Number: {to}")),
        "+15005550002" => (
            21612,
            format!("The 'To' phone number: {to}, is not currently reachable via SMS."),
        ),
        "+15005550003" => (
            21408,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
            ),
        ),
        "+15005550004" => (
            21610,
            "Attempt to send to unsubscribed recipient".to_owned(),
        ),
        "+15005550009" => (
            21614,
            format!("'To' number {to} is not a valid mobile number"),
        ),
        _ => return None,
    })
}

/// Segments as documented: GSM-7 160 characters (153 when concatenated), UCS-2 70 (67). ASCII
/// stands in for GSM-7 (a guess close enough for a double).
fn segments(body: &str) -> usize {
    let n = body.chars().count();
    let (single, part) = if body.is_ascii() {
        (160, 153)
    } else {
        (70, 67)
    };
    if n <= single { 1 } else { n.div_ceil(part) }
}

/// The first value of a form field; an empty value counts as absent.
fn field<'f>(form: &'f [(String, String)], name: &str) -> Option<&'f str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn random_sid(prefix: &str) -> String {
    let mut buf = [0u8; 16];
    if getrandom::getrandom(&mut buf).is_err() {
        // The OS RNG failing is not something a test double can recover from; fall back to time.
        let ns = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            .to_le_bytes();
        buf.copy_from_slice(&ns);
    }
    let mut sid = String::with_capacity(prefix.len() + 2 * buf.len());
    sid.push_str(prefix);
    for b in buf {
        let _ = write!(sid, "{b:02x}");
    }
    sid
}

pub(crate) async fn create_message(
    State(shared): State<Arc<Shared>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let delay = {
        let mut st = shared.state();
        st.requests += 1;
        st.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = take_failure(&shared) {
        return injected(failure);
    }
    if !authenticated(&shared, &headers) {
        let mut resp = twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"Twilio API\""),
        );
        return resp;
    }
    if account_sid != shared.config.account_sid {
        return twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            &format!(
                "The requested resource /{API_VERSION}/Accounts/{account_sid}/Messages.json was not found"
            ),
        );
    }
    let form = match form {
        Ok(Form(form)) => form,
        // A guess: Twilio's answer to a body that is not a form is not documented.
        Err(e) => return twilio_error(StatusCode::BAD_REQUEST, 20001, &e.body_text()),
    };
    let bad = |code, message: &str| twilio_error(StatusCode::BAD_REQUEST, code, message);
    let Some(to) = field(&form, "To") else {
        return bad(21604, "A 'To' phone number is required.");
    };
    let from = field(&form, "From");
    let service = field(&form, "MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return bad(
            21603,
            "A 'From' phone number or a 'MessagingServiceSid' is required.",
        );
    }
    let Some(body) = field(&form, "Body") else {
        return bad(21602, "Message body is required.");
    };
    if body.chars().count() > MAX_BODY_CHARS {
        return bad(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    if !is_e164(to) {
        return bad(21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    if let Some((code, message)) = magic_to(to) {
        return bad(code, &message);
    }
    let message = Message {
        sid: random_sid("SM"),
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: service.map(str::to_owned),
        body: body.to_owned(),
        at: SystemTime::now(),
    };
    let resource = resource(&account_sid, &message);
    shared.state().messages.push(message);
    (StatusCode::CREATED, axum::Json(resource)).into_response()
}

/// The Message resource as created: `queued`, or `accepted` through a Messaging Service.
fn resource(account_sid: &str, m: &Message) -> serde_json::Value {
    let date = rfc2822(m.at);
    let uri = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{}", m.sid);
    json!({
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": m.body,
        "date_created": date,
        "date_sent": null,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": m.from,
        "messaging_service_sid": m.messaging_service_sid,
        "num_media": "0",
        "num_segments": segments(&m.body).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": m.sid,
        "status": if m.messaging_service_sid.is_some() { "accepted" } else { "queued" },
        "subresource_uris": {"media": format!("{uri}/Media.json")},
        "to": m.to,
        "uri": format!("{uri}.json"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_segments() {
        assert!(is_e164("+4917012345678"));
        assert!(is_e164("+12345678"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("4917012345678"));
        assert!(!is_e164("+49 170 1234567"));
        assert_eq!(segments("x"), 1);
        assert_eq!(segments(&"x".repeat(160)), 1);
        assert_eq!(segments(&"x".repeat(161)), 2);
        assert_eq!(segments(&"é".repeat(70)), 1);
        assert_eq!(segments(&"é".repeat(71)), 2);
    }

    #[test]
    fn sids_look_like_twilio_s() {
        let sid = random_sid("SM");
        assert_eq!(sid.len(), 34);
        assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{sid}");
        assert_ne!(sid, random_sid("SM"));
    }

    #[test]
    fn basic_auth_pairs() {
        let mut h = HeaderMap::new();
        assert_eq!(basic_auth(&h), None);
        // "AC1:tok:en" — the password may hold a colon.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic QUMxOnRvazplbg=="),
        );
        assert_eq!(
            basic_auth(&h),
            Some(("AC1".to_owned(), "tok:en".to_owned()))
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer QUMxOnRvazplbg=="),
        );
        assert_eq!(basic_auth(&h), None);
    }
}
