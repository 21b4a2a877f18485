//! The JSON API over the in-memory fakes: the checked-in OpenAPI document, bearer
//! authentication and scopes, scalar-only bodies, the body cap, and identify's equal answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use rekey_core::fakes::{World, world};
use serde_json::Value;

use super::{ApiClient, Scope, token_sha256};
use crate::tests::send;
use crate::{WebConfig, router};

pub(super) const BOT: &str = "rkapi_bot-token-for-tests";
pub(super) const DESK: &str = "rkapi_desk-token-for-tests";
pub(super) const DESK2: &str = "rkapi_desk2-token-for-tests";

pub(super) fn clients() -> Vec<ApiClient> {
    vec![
        ApiClient {
            name: "bot".into(),
            token_sha256: token_sha256(BOT),
            scopes: vec![Scope::SelfService],
        },
        ApiClient {
            name: "desk".into(),
            token_sha256: token_sha256(DESK),
            scopes: vec![Scope::Helpdesk],
        },
        ApiClient {
            name: "desk2".into(),
            token_sha256: token_sha256(DESK2),
            scopes: vec![Scope::Helpdesk],
        },
    ]
}

pub(super) fn app(w: &World) -> axum::Router {
    router(
        w.engine.clone(),
        WebConfig {
            identify_deadline: Duration::from_millis(20),
            answer_deadline: Duration::from_millis(20),
            password_deadline: Duration::from_millis(20),
            api_clients: clients(),
            ..WebConfig::default()
        },
    )
}

/// A JSON POST with `token` (if any).
pub(super) fn call(path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut r = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

/// POST `body` (JSON) to `path` with `token`: the answer and its text.
pub(super) async fn post_as(
    app: &axum::Router,
    path: &str,
    token: &str,
    body: &str,
) -> (Response<Body>, String) {
    send(app, call(path, Some(token), body)).await
}

/// POST `body` to `path` with `token`: status, answer, and the ONE audit record it wrote.
pub(super) async fn one(
    w: &World,
    app: &axum::Router,
    path: &str,
    token: &str,
    body: &Value,
) -> (StatusCode, Value, Value) {
    let before = w.store.with(|m| m.audit.len());
    let (res, text) = post_as(app, path, token, &body.to_string()).await;
    let records: Vec<Value> = w.store.with(|m| {
        m.audit[before..]
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    });
    assert_eq!(
        records.len(),
        1,
        "{path}: one audit record per call: {records:#?}"
    );
    (
        res.status(),
        json(&text),
        records.into_iter().next().unwrap(),
    )
}

/// `one` checking the code the caller read out for verification `id` with `token`.
pub(super) async fn check(
    w: &World,
    app: &axum::Router,
    token: &str,
    id: &str,
    code: &str,
) -> (StatusCode, Value, Value) {
    let body = serde_json::json!({ "verification_id": id, "code": code });
    one(w, app, "/api/v1/helpdesk/verify", token, &body).await
}

/// Start and pass a verification of `who` with `token`: the passed verification's id.
pub(super) async fn verified(w: &World, app: &axum::Router, token: &str, who: &str) -> String {
    let start = serde_json::json!({ "username": who });
    let (status, v, _) = one(w, app, "/api/v1/helpdesk/verify/start", token, &start).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let id = v["verification_id"].as_str().unwrap().to_owned();
    let (status, v, _) = check(w, app, token, &id, &w.last_code()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["verification_id"].as_str().unwrap().to_owned()
}

pub(super) fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// An error answer: the three fields, the support id in its shape.
pub(super) fn error_code(body: &str) -> String {
    let v = json(body);
    let sid = v["support_id"].as_str().unwrap();
    assert!(sid.starts_with("RK-") && sid.len() == 12, "{body}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    v["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let w = world(5);
    let (res, served) = send(
        &app(&w),
        Request::get("/api/v1/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "served without a token");
    assert_eq!(
        res.headers().get(header::CONTENT_TYPE).unwrap(),
        "application/json"
    );
    let doc = json(&served);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/reset/identify"]["post"].is_object());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("REKEY_TEST_BLESS").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == served,
        "docs/openapi.json differs from the document the API serves; regenerate it with \
         `REKEY_TEST_BLESS=1 cargo test -p rekey-web api::tests::the_served_document` and commit it"
    );
}

#[tokio::test]
async fn no_or_an_unknown_token_is_401_with_www_authenticate() {
    let w = world(5);
    let app = app(&w);
    let body = r#"{"username":"normal"}"#;
    let hash_hex: String = token_sha256(BOT)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    for (what, req) in [
        ("none", call("/api/v1/reset/identify", None, body)),
        (
            "unknown",
            call("/api/v1/reset/identify", Some("rkapi_nope"), body),
        ),
        (
            "the hash is not the token",
            call("/api/v1/reset/identify", Some(&hash_hex), body),
        ),
        ("empty", call("/api/v1/reset/identify", Some(""), body)),
        (
            "a prefix",
            call("/api/v1/reset/identify", Some(&BOT[..10]), body),
        ),
        (
            "basic",
            Request::post("/api/v1/reset/identify")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Basic {BOT}"))
                .body(Body::from(body))
                .unwrap(),
        ),
    ] {
        let (res, text) = send(&app, req).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}: {text}");
        assert!(
            res.headers()
                .get(header::WWW_AUTHENTICATE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{what}"
        );
        assert_eq!(error_code(&text), "RK-API-001", "{what}");
    }
    // Authentication comes before the body: a bad body without a token is still a 401.
    let (res, _) = send(&app, call("/api/v1/change", None, "[1,2]")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(w.mails(), 0, "nothing happened");
    let audit = w.store.with(|m| m.audit.len());
    assert_eq!(audit, 0, "a refused call reaches no engine entry point");
}

#[tokio::test]
async fn the_token_is_found_by_its_hash_and_the_scheme_in_any_case() {
    let w = world(5);
    let app = app(&w);
    let req = Request::post("/api/v1/reset/identify")
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(header::AUTHORIZATION, format!("bearer {BOT}"))
        .body(Body::from(r#"{"username":"normal"}"#))
        .unwrap();
    let (res, text) = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    // Two clients, each found by its own token only.
    let c = clients();
    assert_eq!(super::auth::find_client(&c, BOT).unwrap().name, "bot");
    assert_eq!(super::auth::find_client(&c, DESK).unwrap().name, "desk");
    assert!(super::auth::find_client(&c, "rkapi_bot-token-for-test").is_none());
    assert!(super::auth::find_client(&[], BOT).is_none());
}

#[tokio::test]
async fn a_scope_the_client_lacks_is_403() {
    let w = world(5);
    let app = app(&w);
    let (res, text) = post_as(
        &app,
        "/api/v1/helpdesk/code",
        BOT,
        r#"{"username":"normal"}"#,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{text}");
    assert_eq!(error_code(&text), "RK-API-002");
    let (res, text) = post_as(
        &app,
        "/api/v1/reset/identify",
        DESK,
        r#"{"username":"normal"}"#,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{text}");
    assert_eq!(w.mails(), 0, "no code went out");
    assert_eq!(w.store.with(|m| m.audit.len()), 0);
}

#[tokio::test]
async fn bodies_are_json_objects_of_scalar_fields_only() {
    let w = world(5);
    let app = app(&w);
    let flow = "0".repeat(64);
    for (what, path, body) in [
        (
            "an array where a string is expected",
            "/api/v1/reset/identify",
            r#"{"username":["normal","admin"]}"#.to_owned(),
        ),
        (
            "an object where a string is expected",
            "/api/v1/reset/identify",
            r#"{"username":{"a":"normal"}}"#.to_owned(),
        ),
        (
            "a number where a string is expected",
            "/api/v1/reset/identify",
            r#"{"username":1}"#.to_owned(),
        ),
        (
            "a repeated key",
            "/api/v1/reset/identify",
            r#"{"username":"normal","username":"admin"}"#.to_owned(),
        ),
        (
            "an unknown field",
            "/api/v1/reset/identify",
            r#"{"username":"normal","csrf":"x"}"#.to_owned(),
        ),
        ("a missing field", "/api/v1/reset/identify", "{}".to_owned()),
        (
            "not an object",
            "/api/v1/reset/identify",
            r#""normal""#.to_owned(),
        ),
        (
            "not JSON",
            "/api/v1/reset/identify",
            "username=normal".to_owned(),
        ),
        ("empty", "/api/v1/reset/identify", String::new()),
        (
            "an unknown method",
            "/api/v1/flow/choose",
            format!(r#"{{"flow_id":"{flow}","method":"passkey"}}"#),
        ),
        (
            "a flow id that is no flow id",
            "/api/v1/flow/code",
            r#"{"flow_id":"../etc","code":"123456"}"#.to_owned(),
        ),
        (
            "an array of passwords",
            "/api/v1/reset/password",
            format!(r#"{{"flow_id":"{flow}","new_password":["a","b"]}}"#),
        ),
    ] {
        let (res, text) = post_as(&app, path, BOT, &body).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}: {text}");
        assert_eq!(error_code(&text), "RK-API-003", "{what}");
        assert!(
            !text.contains("normal"),
            "{what}: the value is not echoed: {text}"
        );
    }
    // Not UTF-8.
    let req = Request::post("/api/v1/reset/identify")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {BOT}"))
        .body(Body::from(&b"{\"username\":\"\xff\xfe\"}"[..]))
        .unwrap();
    let (res, text) = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{text}");
    // Not JSON at all.
    let req = Request::post("/api/v1/reset/identify")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("Bearer {BOT}"))
        .body(Body::from("username=normal"))
        .unwrap();
    let (res, text) = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert_eq!(error_code(&text), "RK-API-004");
    assert_eq!(w.mails(), 0);
    assert_eq!(w.store.with(|m| m.audit.len()), 0, "no engine call");
}

#[tokio::test]
async fn bodies_over_the_cap_are_413() {
    let w = world(5);
    let app = app(&w);
    let big = format!(r#"{{"username":"{}"}}"#, "a".repeat(20 * 1024));
    // Announced by Content-Length: the portal's body cap answers before any handler.
    let req = Request::post("/api/v1/reset/identify")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {BOT}"))
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let (res, _) = send(&app, req).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length: the body extractor stops at the cap, with the JSON error.
    let (res, text) = post_as(&app, "/api/v1/reset/identify", BOT, &big).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&text), "RK-API-005");
    assert_eq!(w.mails(), 0);
}

/// `problems` (for the router, outside the body cap): the cap's own 413, an unknown path's 404
/// and a wrong method's 405 under `/api/` become the JSON error; other paths are untouched.
#[tokio::test]
async fn non_json_errors_under_api_become_json() {
    use axum::routing::post;
    let app = axum::Router::new()
        .route("/api/v1/x", post(|| async { "ok" }))
        .route("/page", post(|| async { "ok" }))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(16))
        .layer(axum::middleware::from_fn(super::problems));
    let big = |path: &str| {
        Request::post(path)
            .header(header::CONTENT_LENGTH, 100)
            .body(Body::from("x".repeat(100)))
            .unwrap()
    };
    let (res, text) = send(&app, big("/api/v1/x")).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json(&text)["code"], "RK-API-005");
    let (res, text) = send(&app, big("/page")).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "pages keep theirs"
    );
    let (res, text) = send(
        &app,
        Request::get("/api/v1/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(&text)["code"], "RK-API-006");
    let (res, text) = send(&app, Request::get("/api/v1/x").body(Body::empty()).unwrap()).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json(&text)["code"], "RK-API-007");
    assert!(res.headers().get(header::ALLOW).is_some());
}

/// The answer without what differs per request by design (the flow id, the support id).
fn normalised(text: &str) -> String {
    let mut v = json(text);
    for k in ["flow_id", "support_id"] {
        if v.get(k).is_some() {
            v[k] = Value::String(k.into());
        }
    }
    v.to_string()
}

/// Identify and a wrong code answer byte-for-byte alike (but for the ids) for unknown,
/// disabled, out of scope, privileged, unenrolled, locked and normal accounts, with the same
/// headers (invariant 9); only the eligible, enrolled accounts (normal, locked) got a code.
#[tokio::test]
async fn identify_answers_the_same_for_every_account() {
    let w = world(5);
    let app = app(&w);
    let mut seen = Vec::new();
    for who in [
        "nobody",
        "disabled",
        "outside",
        "admin",
        "unenrolled",
        "locked",
        "normal",
    ] {
        for path in ["/api/v1/reset/identify", "/api/v1/unlock/identify"] {
            let body = format!(r#"{{"username":"{who}"}}"#);
            let (res, text) = post_as(&app, path, BOT, &body).await;
            assert_eq!(res.status(), StatusCode::OK, "{who}: {text}");
            let v = json(&text);
            let flow = v["flow_id"].as_str().unwrap().to_owned();
            assert_eq!(flow.len(), 64);
            assert!(!text.contains(who), "{who}: the name is not echoed");
            let headers: Vec<String> = res
                .headers()
                .iter()
                .filter(|(k, _)| *k != header::DATE)
                .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
                .collect();
            let (wrong_res, wrong) = post_as(
                &app,
                "/api/v1/flow/code",
                BOT,
                &format!(r#"{{"flow_id":"{flow}","code":"000000"}}"#),
            )
            .await;
            assert_eq!(
                wrong_res.status(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "{who}: {wrong}"
            );
            assert_eq!(error_code(&wrong), "RK-VERIFY-001", "{who}");
            seen.push((normalised(&text), headers, normalised(&wrong)));
        }
    }
    assert!(
        seen.windows(2).all(|p| p[0] == p[1]),
        "every answer is the same: {seen:#?}"
    );
    assert_eq!(
        w.mails(),
        4,
        "codes for normal and locked (reset and unlock) only"
    );
}

/// Identify waits for the fixed deadline, whatever the account.
#[tokio::test]
async fn identify_answers_at_the_deadline() {
    let w = world(5);
    let app = router(
        w.engine.clone(),
        WebConfig {
            identify_deadline: Duration::from_millis(150),
            api_clients: clients(),
            ..WebConfig::default()
        },
    );
    for who in ["nobody", "normal"] {
        let started = std::time::Instant::now();
        let body = format!(r#"{{"username":"{who}"}}"#);
        let (res, _) = post_as(&app, "/api/v1/reset/identify", BOT, &body).await;
        assert_eq!(res.status(), StatusCode::OK);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(150), "{who}: {took:?}");
    }
}

#[test]
fn scopes_and_names() {
    for s in Scope::ALL {
        assert_eq!(Scope::parse(s.as_str()), Some(s));
    }
    assert_eq!(Scope::parse("admin"), None);
    assert!(super::valid_client_name("chat-bot_1.prod"));
    for bad in ["", "Bot", "-bot", "bot bot", "bot:1", &"a".repeat(65)] {
        assert!(!super::valid_client_name(bad), "{bad:?}");
    }
}
