//! The JSON API end to end: the real portal (`rekey::portal::build_portal`) on the dev domain, a
//! real SMTP server and SQLite. A reset through the API lands in AD (proven by an LDAPS bind with
//! the new password); the helpdesk verifies a caller with the mailed code and unlocks a locked-out
//! account (lockoutTime, bind), and its helpdesk code is redeemed through self-service; and
//! schemathesis (PyPI) fuzzes every operation from the served OpenAPI document with the
//! bearer token, failing on any 5xx or any answer that breaks the document's schema.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rekey::config::Config;
use rekey::config::api::{ApiClientConfig, ApiSection};
use rekey_directory::{ActiveDirectory, AdConfig};
use rekey_e2e::dev::{Dev, User, dev};
use rekey_e2e::http::{Answer, request};
use rekey_e2e::portal::Portal;
use rekey_notify::testing::SmtpSink;
use serde_json::Value;

const TOKEN: &str = "rkapi_e2e-test-token-0123456789abcdef0123456789abcdef";

/// One integration with both scopes, by the token's hash only (as `rekey admin api-token`
/// prints it).
fn with_api(c: &mut Config) {
    let hash: String = rekey_web::api::token_sha256(TOKEN)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    c.api = ApiSection {
        clients: vec![ApiClientConfig {
            name: "e2e-bot".into(),
            token_sha256: hash,
            scopes: vec!["self_service".into(), "helpdesk".into()],
        }],
    };
}

async fn post(port: u16, path: &str, body: &Value) -> (Answer, Value) {
    let body = body.to_string();
    let a = request(
        port,
        format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    let v = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", a.body));
    (a, v)
}

async fn ad(d: &Dev) -> ActiveDirectory {
    let mut cfg = AdConfig::new(d.urls(), d.get("REKEY_DEV_SVC_DN"));
    cfg.ca_file = Some(d.get("REKEY_DEV_CA_FILE").into());
    cfg.bind_password_file = Some(d.get("REKEY_DEV_SVC_PASSWORD_FILE").into());
    ActiveDirectory::connect(&cfg).await.unwrap()
}

fn code_in(body: &str) -> Option<String> {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .map(str::to_owned)
}

/// `post`, whose answer must have `status`: its JSON.
async fn answer(port: u16, path: &str, body: &Value, status: u16) -> Value {
    let (a, v) = post(port, path, body).await;
    assert_eq!(a.status, status, "{path}: {}", a.body);
    v
}

/// The portal with the API on the dev domain, mailing through `sink`, and a fresh staff user
/// `name` enrolled with a recovery address: the portal, the user, the address.
async fn portal_and_user(d: &Dev, sink: &SmtpSink, name: &str) -> (Portal, User, String) {
    let portal = rekey_e2e::portal::start(d, &sink.mailer_config(), with_api)
        .await
        .unwrap();
    let ad = ad(d).await;
    let u = d.staff_user(name).await;
    let address = rekey_e2e::portal::enroll(&portal, &ad, &u).await;
    (portal, u, address)
}

#[tokio::test]
async fn a_reset_through_the_api_lands_in_ad() {
    let d = dev();
    let sink = SmtpSink::start();
    let (portal, u, address) = portal_and_user(&d, &sink, "apireset").await;
    let port = portal.port;

    // Identify: a flow id at the fixed deadline, the same shape as for an unknown name.
    let (a, v) = post(
        port,
        "/api/v1/reset/identify",
        &serde_json::json!({ "username": u.sam }),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.took >= Duration::from_millis(400), "{:?}", a.took);
    assert_eq!(v["next"], "code");
    let flow = v["flow_id"].as_str().unwrap().to_owned();
    let nobody = serde_json::json!({ "username": "no-such-user-anywhere" });
    let nv = answer(port, "/api/v1/reset/identify", &nobody, 200).await;
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&nv), keys(&v));

    let mail = sink.wait_for(&address, Duration::from_secs(15)).await;
    let code = code_in(&mail.body).expect("a code in the mail");
    let typed = serde_json::json!({ "flow_id": flow, "code": code });
    let v = answer(port, "/api/v1/flow/code", &typed, 200).await;
    assert_eq!(v["next"], "verified");
    let flow = v["flow_id"].as_str().unwrap().to_owned();

    // The DC's rules, as codes and plain words (never the DC's own text).
    let password = |p: &str| serde_json::json!({ "flow_id": flow, "new_password": p });
    let (a, v) = post(port, "/api/v1/reset/password", &password("abc")).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert_eq!(v["code"], "RK-PWD-010");
    assert!(v["support_id"].as_str().unwrap().starts_with("RK-"));
    assert!(!a.body.contains("0000052D"), "{}", a.body);

    let new = "Api-Reset-Pw-7351!";
    let v = answer(port, "/api/v1/reset/password", &password(new), 200).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["zones"][0]["zone"], "active_directory");
    assert_eq!(v["zones"][0]["state"], "landed");
    assert_eq!(d.bind(&u.dn, new).await.0, 0, "the new password binds");
}

/// The helpdesk over the API: look the user up, verify the caller with the code the user got by
/// mail (read from the SMTP server), unlock the really locked-out account (lockoutTime cleared,
/// the password binds), then issue a helpdesk code with the same verification that the
/// self-service calls accept.
#[tokio::test]
async fn the_helpdesk_verifies_the_caller_then_unlocks_through_the_api() {
    let d = dev();
    let sink = SmtpSink::start();
    let (portal, u, address) = portal_and_user(&d, &sink, "apiunlock").await;
    let port = portal.port;
    let threshold = d.lockout_threshold(&u.dn).await;
    d.lock_out(&u.dn, threshold).await;
    assert!(d.lockout(&u.dn).await.locked, "locked before");

    let user = serde_json::json!({ "username": u.sam });
    let (a, v) = post(port, "/api/v1/helpdesk/lookup", &user).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(v["locked"], true, "{}", a.body);
    assert_eq!(v["privileged"], false);
    assert!(!a.body.contains(&address), "masked: {}", a.body);

    // No act on the caller's word.
    let act = |id: &str| serde_json::json!({ "verification_id": id, "username": u.sam });
    let v = answer(port, "/api/v1/helpdesk/unlock", &act(&"0".repeat(64)), 409).await;
    assert_eq!(v["code"], "RK-FLOW-001");

    let v = answer(port, "/api/v1/helpdesk/verify/start", &user, 200).await;
    assert!(v["sent_to"].as_str().unwrap().contains('*'), "{v}");
    let started = v["verification_id"].as_str().unwrap().to_owned();
    let v = answer(port, "/api/v1/helpdesk/unlock", &act(&started), 422).await;
    assert_eq!(v["code"], "RK-HD-003");
    let mail = sink.wait_for(&address, Duration::from_secs(15)).await;
    assert!(mail.body.contains("helpdesk"), "{}", mail.body);
    let code = code_in(&mail.body).expect("a code in the mail");
    let typed = serde_json::json!({ "verification_id": started, "code": code });
    let v = answer(port, "/api/v1/helpdesk/verify", &typed, 200).await;
    let id = v["verification_id"].as_str().unwrap().to_owned();
    assert_ne!(id, started);
    assert!(v["expires_in_secs"].as_i64().unwrap() > 0, "{v}");

    let v = answer(port, "/api/v1/helpdesk/unlock", &act(&id), 200).await;
    assert_eq!(v["ok"], true, "{v}");
    let after = d.lockout(&u.dn).await;
    assert!(
        !after.locked && after.lockout_time == 0,
        "unlocked in AD: {}",
        after.lockout_time
    );
    assert_eq!(d.bind(&u.dn, &u.password).await.0, 0, "it binds again");
    let notice = sink.wait_for(&address, Duration::from_secs(15)).await;
    assert!(
        notice.body.contains("helpdesk integration e2e-bot"),
        "{}",
        notice.body
    );

    // The user's recent events name the integration.
    let v = answer(port, "/api/v1/helpdesk/lookup", &user, 200).await;
    assert_eq!(v["locked"], false);
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operation"] == "unlock" && e["actor"] == "api:e2e-bot"),
        "{v}"
    );

    // A helpdesk code with the same verification, redeemed through self-service.
    let v = answer(port, "/api/v1/helpdesk/code", &act(&id), 200).await;
    let code = v["code"].as_str().unwrap().to_owned();
    let (_, v) = post(port, "/api/v1/reset/identify", &user).await;
    let flow = v["flow_id"].as_str().unwrap().to_owned();
    let typed = serde_json::json!({ "flow_id": flow, "code": code });
    let v = answer(port, "/api/v1/flow/code", &typed, 200).await;
    assert_eq!(v["next"], "verified", "{v}");
}

/// The schemathesis binary: `$REKEY_TEST_SCHEMATHESIS` (dev/test sets it), else the venv dev/test
/// installs. Missing is a failure, never a skip.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("REKEY_TEST_SCHEMATHESIS").map_or_else(
        || rekey_e2e::dev::repo().join(".dev/schemathesis/bin/schemathesis"),
        PathBuf::from,
    );
    let works = Command::new(&path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "schemathesis is missing at {} (set REKEY_TEST_SCHEMATHESIS): install it with \
         `python3 -m venv .dev/schemathesis && .dev/schemathesis/bin/pip install \
         schemathesis==4.32.5` in the repository (dev/test does this)",
        path.display()
    );
    path
}

/// Every operation, positive and negative data, from the served document with the bearer
/// token: no answer may be a 5xx, every answer must match the document's schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let bin = schemathesis();
    let d = dev();
    let sink = SmtpSink::start();
    let portal = rekey_e2e::portal::start(&d, &sink.mailer_config(), |c| {
        with_api(c);
        // Short deadlines keep the run within about a minute; they are equal for every
        // account all the same.
        let s = c.server.as_mut().unwrap();
        s.identify_deadline_ms = 40;
        s.answer_deadline_ms = 40;
        s.password_deadline_ms = 150;
    })
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}", portal.port);
    let seed = std::env::var("REKEY_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| {
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            % 1_000_000)
            .to_string()
    });
    let report = std::env::temp_dir().join(format!("rekey-schemathesis-{}", std::process::id()));
    let args: Vec<String> = vec![
        "run".into(),
        format!("{base}/api/v1/openapi.json"),
        "--url".into(),
        base.clone(),
        "--header".into(),
        format!("Authorization: Bearer {TOKEN}"),
        "--checks".into(),
        "not_a_server_error,response_schema_conformance".into(),
        "--phases".into(),
        "examples,coverage,fuzzing".into(),
        "--max-examples".into(),
        "100".into(),
        "--workers".into(),
        "2".into(),
        "--seed".into(),
        seed.clone(),
        "--request-timeout".into(),
        "20".into(),
        "--suppress-health-check".into(),
        "too_slow".into(),
        "--report-dir".into(),
        report.display().to_string(),
    ];
    // schemathesis keeps a cache (`.schemathesis/`) in its working directory: not the checkout.
    std::fs::create_dir_all(&report).unwrap();
    let cwd = report.clone();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&bin)
            .args(&args)
            .current_dir(&cwd)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&report);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "schemathesis (seed {seed}, {:?}):\n{text}",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "schemathesis failed (exit {:?}, seed {seed}; rerun with REKEY_TEST_SCHEMATHESIS_SEED={seed}):\n{text}",
        out.status.code()
    );
    assert!(
        !text.contains("No operations") && text.contains("passed"),
        "schemathesis tested nothing:\n{text}"
    );
}
