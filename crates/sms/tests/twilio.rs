//! `TwilioSms` against the Twilio test double (`rekey-sms-double`), in process: what is sent, how
//! every kind of failure maps to the port, and that no error or log line shows the body, the
//! token or the full number.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code panics by design

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rekey_core::notify::{Sms, SmsError, SmsSender};
use rekey_sms::{DEFAULT_TIMEOUT, SetupError, SmsConfig, TwilioSms};
use rekey_sms_double::{Config, Failure, Handle};
use zeroize::Zeroizing;

const ACCOUNT: &str = "AC5ef872f6da5a21de157d80997a64bd33";
const TOKEN: &str = "tok-9d2f61c04b";
const KEY_SID: &str = "SK2a0747eba6abf96b7e3c3ff0b4530f6e";
const KEY_TOKEN: &str = "key-5b8e33f1a7";
const FROM: &str = "+15005550006";
const SERVICE: &str = "MG9752274e9e519418a7406176694466fa";
const TO: &str = "+4917012345678";
const CODE: &str = "735201";
const BODY: &str = "Your Rekey code is 735201. It is valid for 10 minutes.";

async fn double() -> Handle {
    rekey_sms_double::start(Config::new(ACCOUNT, TOKEN).api_key(KEY_SID, KEY_TOKEN))
        .await
        .unwrap()
}

fn config(base_url: &str) -> SmsConfig {
    SmsConfig::new(
        base_url,
        ACCOUNT,
        Zeroizing::new(TOKEN.to_owned()),
        Some(FROM.to_owned()),
        None,
    )
    .unwrap()
}

fn sender(config: &SmsConfig) -> TwilioSms {
    TwilioSms::new(config).unwrap()
}

fn sms(to: &str) -> Sms {
    Sms {
        to: to.to_owned(),
        body: BODY.to_owned(),
    }
}

/// Neither face of the error shows the body, the code in it, the full number or the token.
fn assert_clean(e: &SmsError, sms: &Sms) {
    let digits = sms.to.trim_start_matches('+');
    for shown in [e.to_string(), format!("{e:?}")] {
        for leak in [BODY, CODE, "valid for 10", digits, TOKEN, KEY_TOKEN] {
            if leak.is_empty() {
                continue;
            }
            assert!(!shown.contains(leak), "{leak:?} in {shown}");
        }
    }
}

async fn refused(s: &TwilioSms, sms: &Sms) -> String {
    match s.send(sms).await {
        Err(e @ SmsError::Refused(_)) => {
            assert_clean(&e, sms);
            assert!(e.to_string().starts_with("RK-SMS-002: "), "{e}");
            e.to_string()
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

async fn unavailable(s: &TwilioSms, sms: &Sms) -> String {
    match s.send(sms).await {
        Err(e @ SmsError::Unavailable(_)) => {
            assert_clean(&e, sms);
            assert!(e.to_string().starts_with("RK-SMS-001: "), "{e}");
            e.to_string()
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn sends_from_a_number() {
    let d = double().await;
    let c = config(d.url());
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    assert_eq!(DEFAULT_TIMEOUT, Duration::from_secs(10));
    let s = sender(&c);
    s.send(&sms(TO)).await.unwrap();
    let sent = d.messages();
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.to, TO);
    assert_eq!(m.body, BODY);
    assert_eq!(m.from.as_deref(), Some(FROM));
    assert_eq!(m.messaging_service_sid, None);
    assert!(m.sid.starts_with("SM") && m.sid.len() == 34, "{}", m.sid);
    // A second message reuses the client (and its pooled connection).
    s.send(&sms("+15005550010")).await.unwrap();
    assert_eq!(d.messages_to("+15005550010").len(), 1);
    assert_eq!(d.requests(), 2);
}

#[tokio::test]
async fn sends_through_a_messaging_service() {
    let d = double().await;
    let c = SmsConfig::new(
        d.url(),
        ACCOUNT,
        Zeroizing::new(TOKEN.to_owned()),
        None,
        Some(SERVICE.to_owned()),
    )
    .unwrap();
    sender(&c).send(&sms(TO)).await.unwrap();
    let sent = d.messages_to(TO);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].messaging_service_sid.as_deref(), Some(SERVICE));
    assert_eq!(sent[0].from, None, "From must not be sent with a service");
    assert_eq!(sent[0].body, BODY);
}

#[tokio::test]
async fn an_api_key_logs_in_with_the_account_in_the_path() {
    let d = double().await;
    let mut c = config(d.url());
    c.username = Some(KEY_SID.to_owned());
    c.auth_token = Zeroizing::new(KEY_TOKEN.to_owned());
    sender(&c).send(&sms(TO)).await.unwrap();
    assert_eq!(d.messages().len(), 1);

    // The key's secret is not the account's token, and the reverse.
    c.auth_token = Zeroizing::new(TOKEN.to_owned());
    let e = refused(&sender(&c), &sms(TO)).await;
    assert!(e.contains("HTTP 401, Twilio code 20003"), "{e}");
    assert_eq!(d.messages().len(), 1);
}

#[tokio::test]
async fn wrong_credentials_are_refused() {
    let d = double().await;
    let mut c = config(d.url());
    c.auth_token = Zeroizing::new("not-the-token".to_owned());
    let e = refused(&sender(&c), &sms(TO)).await;
    assert_eq!(
        e,
        "RK-SMS-002: SMS refused: HTTP 401, Twilio code 20003: Authenticate"
    );
    // Right token, another account in the path.
    let mut c = config(d.url());
    c.account_sid = "AC00000000000000000000000000000000".into();
    c.username = Some(ACCOUNT.into());
    let e = refused(&sender(&c), &sms(TO)).await;
    assert!(e.contains("HTTP 404, Twilio code 20404"), "{e}");
    assert!(d.messages().is_empty());
    assert_eq!(d.requests(), 2);
}

#[tokio::test]
async fn invalid_and_unsubscribed_numbers_are_refused() {
    let d = double().await;
    let s = sender(&config(d.url()));
    // Twilio's magic test number for "invalid": its message quotes the number.
    let e = refused(&s, &sms("+15005550001")).await;
    assert_eq!(
        e,
        "RK-SMS-002: SMS refused: HTTP 400, Twilio code 21211: Invalid 'To' Phone Number: +** *** ** 01"
    );
    let e = refused(&s, &sms("+15005550004")).await;
    assert!(e.contains("HTTP 400, Twilio code 21610: "), "{e}");
    assert!(d.messages().is_empty());
    assert_eq!(d.requests(), 2);
}

#[tokio::test]
async fn what_is_not_e164_never_leaves() {
    let d = double().await;
    let s = sender(&config(d.url()));
    for to in [
        "0170 1234567",
        "+49 170 1234567",
        "4917012345678",
        "",
        "+1234567",
    ] {
        let e = refused(&s, &sms(to)).await;
        assert!(e.contains("is not an E.164 number"), "{e}");
    }
    let empty = Sms {
        to: TO.into(),
        body: "  ".into(),
    };
    assert!(matches!(s.send(&empty).await, Err(SmsError::Refused(_))));
    assert_eq!(d.requests(), 0);
}

#[tokio::test]
async fn throttling_is_throttled_and_passes() {
    let d = double().await;
    let s = sender(&config(d.url()));
    d.fail(Failure::new(429).times(1)).unwrap();
    match s.send(&sms(TO)).await {
        Err(e @ SmsError::Throttled(_)) => {
            assert_clean(&e, &sms(TO));
            assert_eq!(
                e.to_string(),
                "RK-SMS-003: SMS gateway throttled: HTTP 429, Twilio code 20429: Too Many Requests"
            );
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(d.messages().is_empty());
    s.send(&sms(TO)).await.unwrap();
    assert_eq!(d.messages().len(), 1);
}

#[tokio::test]
async fn server_errors_are_unavailable() {
    let d = double().await;
    let s = sender(&config(d.url()));
    d.fail(Failure::new(500).code(30008).times(1)).unwrap();
    let e = unavailable(&s, &sms(TO)).await;
    assert_eq!(
        e,
        "RK-SMS-001: SMS gateway unavailable: HTTP 500, Twilio code 30008: Internal Server Error"
    );
    // Until reset.
    d.fail(Failure::new(503)).unwrap();
    for _ in 0..2 {
        let e = unavailable(&s, &sms(TO)).await;
        assert!(e.contains("HTTP 503, Twilio code 20503"), "{e}");
    }
    assert!(d.messages().is_empty());
    d.reset();
    s.send(&sms(TO)).await.unwrap();
    assert_eq!(d.messages().len(), 1);
}

#[tokio::test]
async fn a_slow_gateway_times_out() {
    let d = double().await;
    let mut c = config(d.url());
    c.timeout = Duration::from_millis(300);
    let s = sender(&c);
    d.slow(Duration::from_secs(2));
    let started = Instant::now();
    let e = unavailable(&s, &sms(TO)).await;
    let took = started.elapsed();
    assert!(e.contains("timed out"), "{e}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    d.slow(Duration::ZERO);
    s.send(&sms(TO)).await.unwrap();
}

#[tokio::test]
async fn no_gateway_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = sender(&config(&format!("http://127.0.0.1:{port}")));
    let e = unavailable(&s, &sms(TO)).await;
    assert!(
        e.contains(&format!("127.0.0.1:{port}: connect failed")),
        "{e}"
    );

    // A double that was stopped.
    let d = double().await;
    let url = d.url().to_owned();
    d.stop().await;
    unavailable(&sender(&config(&url)), &sms(TO)).await;
}

#[test]
fn setup_errors_name_the_key() {
    let key = |r: Result<TwilioSms, SetupError>| match r {
        Err(SetupError::Config { key, .. }) => key,
        Err(other) => panic!("{other}"),
        Ok(_) => "ok",
    };
    let mut c = config("https://api.twilio.com");
    assert_eq!(key(TwilioSms::new(&c)), "ok");
    c.ca_file = Some("/nonexistent/ca.pem".into());
    assert_eq!(key(TwilioSms::new(&c)), "sms.ca_file");
    let mut c = config("https://api.twilio.com");
    c.base_url = "http://api.twilio.com".into();
    assert_eq!(key(TwilioSms::new(&c)), "sms.base_url");
    let mut c = config("https://api.twilio.com");
    c.messaging_service_sid = Some(SERVICE.into());
    assert_eq!(key(TwilioSms::new(&c)), "sms.from");
    // Not shown by Debug, of the config or of the sender.
    let c = config("https://api.twilio.com");
    for shown in [format!("{c:?}"), format!("{:?}", sender(&c))] {
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains(ACCOUNT), "{shown}");
    }
}

/// Log lines written while the guard lives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_show_masked_numbers_only() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let d = double().await;
    let s = sender(&config(d.url()));
    s.send(&sms(TO)).await.unwrap();
    refused(&s, &sms("+15005550001")).await;
    d.fail(Failure::new(429).times(1)).unwrap();
    assert!(s.send(&sms(TO)).await.is_err());
    d.fail(Failure::new(500).times(1)).unwrap();
    assert!(s.send(&sms(TO)).await.is_err());

    // Every line, the HTTP stack's (hyper-util traces its pool) included, is free of leaks.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for leak in [BODY, CODE, "4917012345678", "15005550001", TOKEN] {
        assert!(!text.contains(leak), "{leak:?} in {text}");
    }
    let ours: Vec<&str> = text.lines().filter(|l| l.contains(" rekey_sms")).collect();
    assert_eq!(ours.len(), 4, "{text}");
    let ours = ours.join("\n");
    assert!(ours.contains("sms: accepted by the gateway"), "{ours}");
    assert!(ours.contains("to=+** *** ** 78"), "{ours}");
    assert!(ours.contains("to=+** *** ** 01"), "{ours}");
    let words: Vec<String> = ours
        .split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .collect();
    for banned in ["password", "secret", "otp", "answer"] {
        assert!(!words.iter().any(|w| w == banned), "{banned} in {ours}");
    }
}
