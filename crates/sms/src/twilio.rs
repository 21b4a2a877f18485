//! `TwilioSms`: one form POST per message; the answer mapped to `SmsError` without quoting the
//! body, the token or the full number.

use std::time::Duration;

use rekey_core::BoxFuture;
use rekey_core::mask::mask_phone;
use rekey_core::notify::{Sms, SmsError, SmsSender};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::SetupError;
use crate::config::{Sender, SmsConfig};

/// A message resource or an error envelope is a few KB; the rest is not read.
const MAX_BODY: usize = 64 * 1024;
/// How much of the gateway's error message an error keeps.
const MAX_MESSAGE_CHARS: usize = 300;
/// Digit runs this long in a gateway message are blanked (numbers, codes).
const MIN_DIGIT_RUN: usize = 6;

/// Sends text messages through a Twilio-style Messages endpoint. Build it once and share it:
/// connections are pooled.
pub struct TwilioSms {
    http: reqwest::Client,
    messages_url: reqwest::Url,
    /// `host[:port]`, for errors and logs.
    host: String,
    account_sid: String,
    /// `Basic …`, marked sensitive.
    auth: HeaderValue,
    sender: Sender,
    timeout: Duration,
}

impl std::fmt::Debug for TwilioSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSms")
            .field("host", &self.host)
            .field("account_sid", &self.account_sid)
            .field("sender", &self.sender)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The gateway took the message.
struct Accepted {
    sid: String,
    status: String,
}

impl TwilioSms {
    /// Checks the settings and builds the HTTP client (rustls with ring, Mozilla's roots and
    /// `ca_file`, no redirects). Nothing is sent yet: the gateway may be down at start.
    ///
    /// # Errors
    /// [`SetupError::Config`] naming the unusable `sms.*` key (an unreadable `ca_file`
    /// included); [`SetupError::Tls`] if the client cannot be built.
    pub fn new(config: &SmsConfig) -> Result<Self, SetupError> {
        let checked = config.check()?;
        let http = rekey_https::client(&rekey_https::ClientOptions {
            ca_file: config.ca_file.as_deref(),
            timeout: config.timeout,
            user_agent: concat!("rekey-sms/", env!("CARGO_PKG_VERSION")),
            loopback_only: checked.base.loopback,
        })
        .map_err(|e| match e {
            rekey_https::Error::CaFile(why) => SetupError::Config {
                key: "sms.ca_file",
                why,
            },
            other => SetupError::Tls(other.to_string()),
        })?;
        Ok(Self {
            http,
            messages_url: checked.messages_url,
            host: checked.base.host,
            account_sid: config.account_sid.clone(),
            auth: basic_auth(&checked.username, &config.auth_token)?,
            sender: checked.sender,
            timeout: config.timeout,
        })
    }

    /// The one request.
    async fn post(&self, sms: &Sms) -> Result<Accepted, SmsError> {
        let (field, value) = self.sender.field();
        let form = [
            ("To", sms.to.as_str()),
            (field, value),
            ("Body", sms.body.as_str()),
        ];
        let resp = self
            .http
            .post(self.messages_url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| SmsError::Unavailable(rekey_https::describe(&e, &self.host)))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= 40)
            .map(|v| v.trim().to_owned());
        let body = read_capped(resp)
            .await
            .map_err(|e| SmsError::Unavailable(rekey_https::describe(&e, &self.host)))?;
        outcome(status, &body, retry_after.as_deref(), sms)
    }
}

impl SmsSender for TwilioSms {
    fn send<'a>(&'a self, sms: &'a Sms) -> BoxFuture<'a, Result<(), SmsError>> {
        Box::pin(async move {
            let to = mask_phone(&sms.to);
            let result = if !is_e164(&sms.to) {
                Err(SmsError::Refused(format!(
                    "recipient {to} is not an E.164 number ('+' and 8 to 15 digits)"
                )))
            } else if sms.body.trim().is_empty() {
                Err(SmsError::Refused("the message is empty".into()))
            } else {
                // reqwest's timeout covers the body too; this one also bounds what is ours.
                tokio::time::timeout(self.timeout, self.post(sms))
                    .await
                    .unwrap_or_else(|_| {
                        Err(SmsError::Unavailable(format!(
                            "{}: timed out after {} ms",
                            self.host,
                            self.timeout.as_millis()
                        )))
                    })
            };
            match result {
                Ok(accepted) => {
                    tracing::info!(
                        to = %to,
                        sid = %accepted.sid,
                        status = %accepted.status,
                        "sms: accepted by the gateway"
                    );
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(to = %to, error = %e, "sms: not sent");
                    Err(e)
                }
            }
        })
    }
}

/// `Basic base64(user:token)`, built in buffers zeroed on drop, marked sensitive.
fn basic_auth(user: &str, token: &str) -> Result<HeaderValue, SetupError> {
    use base64::Engine as _;
    let mut pair = Zeroizing::new(String::with_capacity(user.len() + 1 + token.len()));
    pair.push_str(user);
    pair.push(':');
    pair.push_str(token);
    let mut header = Zeroizing::new(String::with_capacity(6 + pair.len().div_ceil(3) * 4));
    header.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(pair.as_bytes(), &mut header);
    let mut value = HeaderValue::from_str(&header).map_err(|_| SetupError::Config {
        key: "sms.auth_token",
        why: "cannot be sent in a Basic auth header".into(),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// `+` then 8–15 digits.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The body up to `MAX_BODY`; the rest is dropped unread.
async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() == MAX_BODY {
            break;
        }
    }
    Ok(out)
}

/// The answer as the port's result.
fn outcome(
    status: u16,
    body: &[u8],
    retry_after: Option<&str>,
    sms: &Sms,
) -> Result<Accepted, SmsError> {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return match json["sid"].as_str().map(token) {
            Some(sid) if !sid.is_empty() => Ok(Accepted {
                sid,
                status: json["status"].as_str().map_or_else(|| "-".into(), token),
            }),
            // Not the Messages API (a proxy, a portal): nothing is known to have been sent.
            _ => Err(SmsError::Unavailable(format!(
                "HTTP {status} without a message resource"
            ))),
        };
    }
    let code = match &json["code"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let mut detail = match (code, json["message"].as_str()) {
        (Some(code), Some(message)) => {
            format!("HTTP {status}, Twilio code {code}: {}", scrub(message, sms))
        }
        (Some(code), None) => format!("HTTP {status}, Twilio code {code}"),
        (None, Some(message)) => format!("HTTP {status}: {}", scrub(message, sms)),
        (None, None) => format!("HTTP {status} without a Twilio error"),
    };
    if status == 429 || code == Some(20429) {
        if let Some(after) = retry_after {
            detail.push_str(", Retry-After ");
            detail.push_str(&token(after));
        }
        return Err(SmsError::Throttled(detail));
    }
    Err(match status {
        400..=499 => SmsError::Refused(detail),
        300..=399 => SmsError::Unavailable(format!("{detail} (redirects are not followed)")),
        _ => SmsError::Unavailable(detail),
    })
}

/// A SID, a status or a header value: letters, digits and a few separators, at most 64.
fn token(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | ' ' | ','))
        .take(64)
        .collect()
}

/// A gateway message fit for an error: the recipient masked, the body and long digit runs
/// blanked, control characters flattened, at most `MAX_MESSAGE_CHARS`.
fn scrub(message: &str, sms: &Sms) -> String {
    let mut text: String = message
        .chars()
        .take(4 * MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let body = sms.body.trim();
    if body.chars().count() >= 4 {
        text = text.replace(body, "<message>");
    }
    let masked = mask_phone(&sms.to);
    let digits = sms.to.trim().trim_start_matches('+');
    if digits.len() >= MIN_DIGIT_RUN {
        // `+` and all, then the bare digits.
        text = text
            .replace(sms.to.trim(), &masked)
            .replace(digits, &masked);
    }
    blank_digit_runs(&text)
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

/// Runs of `MIN_DIGIT_RUN` or more ASCII digits become `***`.
fn blank_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= MIN_DIGIT_RUN {
            out.push_str("***");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const TO: &str = "+4917012345678";
    const BODY: &str = "Your Rekey code is 481516. It expires in 10 minutes.";

    fn sms() -> Sms {
        Sms {
            to: TO.into(),
            body: BODY.into(),
        }
    }

    fn err(status: u16, body: &str, retry_after: Option<&str>) -> SmsError {
        match outcome(status, body.as_bytes(), retry_after, &sms()) {
            Ok(_) => panic!("HTTP {status} succeeded"),
            Err(e) => e,
        }
    }

    fn twilio(status: u16, code: u32, message: &str) -> String {
        serde_json::json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        })
        .to_string()
    }

    #[test]
    fn a_message_resource_is_success() {
        let ok = outcome(
            201,
            br#"{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}"#,
            None,
            &sms(),
        )
        .ok()
        .unwrap();
        assert_eq!(ok.sid, "SM0123456789abcdef0123456789abcdef");
        assert_eq!(ok.status, "queued");
        for body in ["<html>ok</html>", "{}", r#"{"sid":""}"#, ""] {
            let e = err(200, body, None);
            assert!(matches!(e, SmsError::Unavailable(_)), "{body}: {e:?}");
        }
    }

    #[test]
    fn statuses_map_to_the_port() {
        let e = err(429, &twilio(429, 20429, "Too Many Requests"), Some("3"));
        match e {
            SmsError::Throttled(d) => assert_eq!(
                d,
                "HTTP 429, Twilio code 20429: Too Many Requests, Retry-After 3"
            ),
            other => panic!("{other:?}"),
        }
        let e = err(503, &twilio(503, 20503, "Service Unavailable"), None);
        assert!(matches!(e, SmsError::Unavailable(_)), "{e:?}");
        let e = err(502, "<html>bad gateway</html>", None);
        match e {
            SmsError::Unavailable(d) => assert_eq!(d, "HTTP 502 without a Twilio error"),
            other => panic!("{other:?}"),
        }
        let e = err(401, &twilio(401, 20003, "Authenticate"), None);
        match e {
            SmsError::Refused(d) => assert_eq!(d, "HTTP 401, Twilio code 20003: Authenticate"),
            other => panic!("{other:?}"),
        }
        let e = err(301, "", None);
        assert!(matches!(e, SmsError::Unavailable(_)), "{e:?}");
        // A vendor that writes the code as a string.
        let e = err(400, r#"{"code":"21610","message":"unsubscribed"}"#, None);
        match e {
            SmsError::Refused(d) => assert_eq!(d, "HTTP 400, Twilio code 21610: unsubscribed"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_keep_neither_number_nor_body() {
        for message in [
            format!("Invalid 'To' Phone Number: {TO}"),
            "Invalid 'To' Phone Number: 4917012345678".to_owned(),
            format!("The message '{BODY}' was filtered"),
            "Code 481516 looks like spam\r\nsecond line".to_owned(),
        ] {
            let e = err(400, &twilio(400, 21211, &message), None);
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(shown.starts_with("RK-SMS-002") || shown.starts_with("Refused"));
                assert!(!shown.contains("4917012345678"), "{shown}");
                assert!(!shown.contains("481516"), "{shown}");
                assert!(!shown.contains("expires in"), "{shown}");
                assert!(!shown.contains('\n'), "{shown}");
            }
        }
        let e = err(
            400,
            &twilio(400, 21211, &format!("Invalid number {TO}")),
            None,
        );
        assert_eq!(
            e.to_string(),
            "RK-SMS-002: SMS refused: HTTP 400, Twilio code 21211: Invalid number +** *** ** 78"
        );
        let long = "x".repeat(5000);
        let e = err(400, &twilio(400, 21211, &long), None);
        assert!(e.to_string().len() < 400, "{e}");
    }

    #[test]
    fn digit_runs_and_numbers() {
        assert_eq!(blank_digit_runs("a 12345 b 123456 c"), "a 12345 b *** c");
        assert_eq!(blank_digit_runs("20429"), "20429");
        assert!(is_e164("+12345678"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("+49 170 1234567"));
        assert!(!is_e164("004917012345678"));
    }

    #[test]
    fn the_auth_header_is_sensitive() {
        // "AC1:tok" in base64.
        let v = basic_auth("AC1", "tok").unwrap();
        assert!(v.is_sensitive());
        assert_eq!(v.to_str().unwrap(), "Basic QUMxOnRvaw==");
        assert!(!format!("{v:?}").contains("QUMx"));
    }
}
