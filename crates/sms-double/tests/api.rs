//! The double over HTTP, as any client sees it: Twilio's Messages endpoint and the control routes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code panics by design

use std::time::{Duration, Instant};

use rekey_sms_double::{Config, Failure, Handle};
use serde_json::{Value, json};

const ACCOUNT: &str = "AC0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";
const TOKEN: &str = "tok-77a1";
const KEY_SID: &str = "SK0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e";
const KEY_TOKEN: &str = "key-81c3";
const TO: &str = "+4917012345678";

struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

fn client() -> reqwest::Client {
    rekey_https::client(&rekey_https::ClientOptions {
        ca_file: None,
        timeout: Duration::from_secs(10),
        user_agent: "rekey-sms-double-tests",
        loopback_only: true,
    })
    .unwrap()
}

async fn start() -> Handle {
    rekey_sms_double::start(Config::new(ACCOUNT, TOKEN).api_key(KEY_SID, KEY_TOKEN))
        .await
        .unwrap()
}

async fn reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let www_authenticate = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    Reply {
        status,
        www_authenticate,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// POSTs a form to the account's Messages endpoint (or `account`'s).
async fn create(d: &Handle, auth: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
    let mut req = client().post(d.messages_url()).form(form);
    if let Some((user, pass)) = auth {
        req = req.basic_auth(user, Some(pass));
    }
    reply(req.send().await.unwrap()).await
}

async fn control(d: &Handle, path: &str, body: Option<Value>) -> Reply {
    let url = format!("{}/_control/{path}", d.url());
    let req = match body {
        Some(b) => client()
            .post(url)
            .header("content-type", "application/json")
            .body(b.to_string()),
        None if path == "reset" => client().post(url),
        None => client().get(url),
    };
    reply(req.send().await.unwrap()).await
}

const AS_ACCOUNT: Option<(&str, &str)> = Some((ACCOUNT, TOKEN));

fn message(to: &str) -> Vec<(&str, &str)> {
    vec![
        ("To", to),
        ("From", "+15005550006"),
        ("Body", "code 123456"),
    ]
}

fn assert_twilio_error(r: &Reply, status: u16, code: u64) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["status"], status, "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert_eq!(
        r.body["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn creates_a_message_resource() {
    let d = start().await;
    let r = create(&d, AS_ACCOUNT, &message(TO)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let b = &r.body;
    let sid = b["sid"].as_str().unwrap();
    assert!(
        sid.len() == 34 && sid.starts_with("SM") && sid[2..].bytes().all(|c| c.is_ascii_hexdigit()),
        "{sid}"
    );
    assert_eq!(b["account_sid"], ACCOUNT);
    assert_eq!(b["to"], TO);
    assert_eq!(b["from"], "+15005550006");
    assert_eq!(b["body"], "code 123456");
    assert_eq!(b["status"], "queued");
    assert_eq!(b["direction"], "outbound-api");
    assert_eq!(b["num_segments"], "1");
    assert_eq!(b["error_code"], Value::Null);
    assert_eq!(
        b["uri"],
        format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json")
    );
    let date = b["date_created"].as_str().unwrap();
    assert!(date.ends_with(" +0000") && date.len() == 31, "{date}");

    // Through a Messaging Service: no From, status accepted; and as an API key.
    let service = [("To", TO), ("MessagingServiceSid", "MG01"), ("Body", "hi")];
    let r = create(&d, Some((KEY_SID, KEY_TOKEN)), &service).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["from"], Value::Null);
    assert_eq!(r.body["messaging_service_sid"], "MG01");
    assert_eq!(r.body["status"], "accepted");

    let sent = d.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].sid, sid);
    assert_eq!(sent[0].body, "code 123456");
    assert_eq!(sent[1].from, None);
    assert_eq!(d.requests(), 2);
}

#[tokio::test]
async fn basic_auth_is_required() {
    let d = start().await;
    for auth in [
        None,
        Some((ACCOUNT, "wrong")),
        Some((KEY_SID, TOKEN)),
        Some(("AC-other", TOKEN)),
    ] {
        let r = create(&d, auth, &message(TO)).await;
        assert_twilio_error(&r, 401, 20003);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some("Basic realm=\"Twilio API\"")
        );
    }
    // A valid login on another account's path.
    let url = d.messages_url().replace(ACCOUNT, "AC-other");
    let r = reply(
        client()
            .post(url)
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(&message(TO))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_twilio_error(&r, 404, 20404);
    assert!(d.messages().is_empty());
}

#[tokio::test]
async fn parameters_are_checked() {
    let d = start().await;
    let cases: &[(&[(&str, &str)], u64)] = &[
        (&[("From", "+15005550006"), ("Body", "x")], 21604),
        (&[("To", TO), ("Body", "x")], 21603),
        (&[("To", TO), ("From", "+15005550006")], 21602),
        (&[("To", TO), ("From", "+15005550006"), ("Body", "")], 21602),
        (
            &[("To", "017012345678"), ("From", "+1"), ("Body", "x")],
            21211,
        ),
        (&[("To", "+1234567"), ("From", "+1"), ("Body", "x")], 21211),
        (
            &[("To", "+15005550001"), ("From", "+1"), ("Body", "x")],
            21211,
        ),
        (
            &[("To", "+15005550002"), ("From", "+1"), ("Body", "x")],
            21612,
        ),
        (
            &[("To", "+15005550003"), ("From", "+1"), ("Body", "x")],
            21408,
        ),
        (
            &[("To", "+15005550004"), ("From", "+1"), ("Body", "x")],
            21610,
        ),
        (
            &[("To", "+15005550009"), ("From", "+1"), ("Body", "x")],
            21614,
        ),
    ];
    for (form, code) in cases {
        let r = create(&d, AS_ACCOUNT, form).await;
        assert_twilio_error(&r, 400, *code);
    }
    let long = "x".repeat(1601);
    let r = create(
        &d,
        AS_ACCOUNT,
        &[("To", TO), ("From", "+1"), ("Body", &long)],
    )
    .await;
    assert_twilio_error(&r, 400, 21617);
    // Like Twilio's, the 21211 message quotes the number (the client must not).
    let r = create(&d, AS_ACCOUNT, &message("+15005550001")).await;
    assert!(r.body["message"].as_str().unwrap().contains("+15005550001"));
    // Not a form.
    let r = reply(
        client()
            .post(d.messages_url())
            .basic_auth(ACCOUNT, Some(TOKEN))
            .header("content-type", "application/json")
            .body(r#"{"To":"+4917012345678"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(d.messages().is_empty());
    assert_eq!(d.requests(), 14);
}

#[tokio::test]
async fn failures_are_injected_and_counted() {
    let d = start().await;
    let r = control(
        &d,
        "fail",
        Some(json!({"status": 429, "code": 20429, "count": 2})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    for _ in 0..2 {
        // Before auth, like a gateway in front of the API.
        let r = create(&d, None, &message(TO)).await;
        assert_twilio_error(&r, 429, 20429);
        assert_eq!(r.body["message"], "Too Many Requests");
    }
    assert_eq!(create(&d, AS_ACCOUNT, &message(TO)).await.status, 201);

    // Without a count: until reset; the default code is 20000 + status.
    let r = control(&d, "fail", Some(json!({"status": 503}))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    for _ in 0..3 {
        assert_twilio_error(&create(&d, AS_ACCOUNT, &message(TO)).await, 503, 20503);
    }
    assert_eq!(control(&d, "reset", None).await.status, 204);
    assert_eq!(create(&d, AS_ACCOUNT, &message(TO)).await.status, 201);
    // Reset forgot the first message too.
    assert_eq!(d.messages().len(), 1);

    // Not an error status.
    let r = control(&d, "fail", Some(json!({"status": 200}))).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(d.fail(Failure::new(302)).is_err());
    d.fail(Failure::new(500).code(30008).times(1)).unwrap();
    assert_twilio_error(&create(&d, AS_ACCOUNT, &message(TO)).await, 500, 30008);
    assert_eq!(create(&d, AS_ACCOUNT, &message(TO)).await.status, 201);
}

#[tokio::test]
async fn messages_are_listed_and_filtered() {
    let d = start().await;
    for to in [TO, "+15005550010", TO] {
        assert_eq!(create(&d, AS_ACCOUNT, &message(to)).await.status, 201);
    }
    let all = control(&d, "messages", None).await;
    assert_eq!(all.status, 200);
    let all = all.body.as_array().unwrap().clone();
    assert_eq!(all.len(), 3);
    assert_eq!(all[1]["to"], "+15005550010");
    assert_eq!(all[0]["body"], "code 123456");
    assert_eq!(all[0]["from"], "+15005550006");
    assert!(all[0]["sid"].as_str().unwrap().starts_with("SM"));
    assert!(all[0]["at"].as_str().unwrap().ends_with('Z'));
    let url = format!("{}/_control/messages?to=%2B4917012345678", d.url());
    let mine = reply(client().get(url).send().await.unwrap()).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 2, "{}", mine.body);
    assert_eq!(d.messages_to(TO).len(), 2);
}

#[tokio::test]
async fn slowness_delays_the_api_only() {
    let d = start().await;
    let r = control(&d, "slow", Some(json!({"ms": 400}))).await;
    assert_eq!(r.status, 204, "{}", r.body);
    let started = Instant::now();
    assert_eq!(create(&d, AS_ACCOUNT, &message(TO)).await.status, 201);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    assert_eq!(control(&d, "messages", None).await.status, 200);
    assert!(started.elapsed() < Duration::from_millis(400));
    d.reset();
    let started = Instant::now();
    assert_eq!(create(&d, AS_ACCOUNT, &message(TO)).await.status, 201);
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[tokio::test]
async fn stopping_closes_the_port() {
    let d = start().await;
    let addr = d.addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    d.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
