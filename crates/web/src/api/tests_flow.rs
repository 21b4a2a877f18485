//! Whole flows through the JSON API over the fakes: reset (identify → code → policy → new
//! password), policy refusals as codes, a helpdesk code redeemed by the bot, unlock, change;
//! the integration named in every audit record next to the end user.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use rekey_core::fakes::world;

use super::tests::{BOT, DESK, app, error_code, json, post_as, verified};

/// The record names integration `name` as its actor (`{"api":"<name>"}`).
fn names(body: &str, name: &str) -> bool {
    body.contains(&format!("\"actor\":{{\"api\":\"{name}\"}}"))
}

fn audit_bodies(w: &rekey_core::fakes::World) -> Vec<String> {
    w.store
        .with(|m| m.audit.iter().map(|r| r.body.clone()).collect())
}

#[tokio::test]
async fn a_reset_through_the_api_names_the_integration_in_the_audit() {
    let w = world(5);
    let app = app(&w);
    let (_, text) = post_as(
        &app,
        "/api/v1/reset/identify",
        BOT,
        r#"{"username":"normal"}"#,
    )
    .await;
    let first = json(&text);
    assert_eq!(first["next"], "code");
    let flow = first["flow_id"].as_str().unwrap();
    let body = format!(r#"{{"flow_id":"{flow}","code":"{}"}}"#, w.last_code());
    let (res, text) = post_as(&app, "/api/v1/flow/code", BOT, &body).await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let verified = json(&text);
    assert_eq!(verified["next"], "verified");
    let flow2 = verified["flow_id"].as_str().unwrap().to_owned();
    assert_ne!(flow, flow2, "the flow id rotates when the gate passes");
    // The old id is dead.
    let (res, text) = post_as(&app, "/api/v1/flow/code", BOT, &body).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "{text}");
    assert_eq!(error_code(&text), "RK-FLOW-001");

    let (res, text) = post_as(
        &app,
        "/api/v1/reset/policy",
        BOT,
        &format!(r#"{{"flow_id":"{flow2}"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(json(&text)["min_length"], 7);

    // A password the local rules refuse: stable rule names and plain messages, the flow stays.
    let (res, text) = post_as(
        &app,
        "/api/v1/reset/password",
        BOT,
        &format!(r#"{{"flow_id":"{flow2}","new_password":"short"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!(error_code(&text), "RK-PWD-010");
    let v = json(&text);
    assert!(
        v["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["rule"] == "too_short"),
        "{text}"
    );

    let (res, text) = post_as(
        &app,
        "/api/v1/reset/password",
        BOT,
        &format!(r#"{{"flow_id":"{flow2}","new_password":"Plum-Tree-4711x"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let out = json(&text);
    assert_eq!(out["ok"], true, "{text}");
    assert_eq!(out["zones"][0]["zone"], "active_directory");
    assert_eq!(out["zones"][0]["state"], "landed");
    let sid = out["support_id"].as_str().unwrap();
    // The flow is over.
    let (res, _) = post_as(
        &app,
        "/api/v1/reset/password",
        BOT,
        &format!(r#"{{"flow_id":"{flow2}","new_password":"Plum-Tree-4711y"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);

    let audit = audit_bodies(&w);
    let reset = audit
        .iter()
        .find(|b| b.contains(sid))
        .expect("the reset's record carries the answer's support id");
    assert!(
        names(reset, "bot") && reset.contains("normal") && reset.contains("\"reset\""),
        "{reset}"
    );
    assert!(
        audit.iter().all(|b| names(b, "bot")),
        "every record names the integration: {audit:#?}"
    );
    assert!(
        audit.iter().all(|b| !b.contains("Plum-Tree")),
        "no password in the audit"
    );
    w.audit_ok();
}

/// The helpdesk verifies the caller, issues a code for the bot to redeem (unlocking through
/// self-service), then unlocks another verified caller itself.
#[tokio::test]
async fn a_helpdesk_code_is_redeemed_by_the_bot_and_the_helpdesk_unlocks() {
    let w = world(5);
    let app = app(&w);
    let id = verified(&w, &app, DESK, "normal").await;
    let (res, text) = post_as(
        &app,
        "/api/v1/helpdesk/code",
        DESK,
        &format!(r#"{{"verification_id":"{id}","username":"normal"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let v = json(&text);
    let code = v["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8);
    assert!(v["expires_in_secs"].as_i64().unwrap() >= 60);

    let (_, text) = post_as(
        &app,
        "/api/v1/unlock/identify",
        BOT,
        r#"{"username":"normal"}"#,
    )
    .await;
    let flow = json(&text)["flow_id"].as_str().unwrap().to_owned();
    let (res, text) = post_as(
        &app,
        "/api/v1/flow/code",
        BOT,
        &format!(r#"{{"flow_id":"{flow}","code":"{code}"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    let flow = json(&text)["flow_id"].as_str().unwrap().to_owned();
    let (res, text) = post_as(
        &app,
        "/api/v1/unlock/confirm",
        BOT,
        &format!(r#"{{"flow_id":"{flow}"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(json(&text)["ok"], true);

    let id = verified(&w, &app, DESK, "locked").await;
    let (res, text) = post_as(
        &app,
        "/api/v1/helpdesk/unlock",
        DESK,
        &format!(r#"{{"verification_id":"{id}","username":"locked"}}"#),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(json(&text)["ok"], true);
    // Helpdesk calls may say that an account does not exist (the scope is trusted).
    let (res, text) = post_as(
        &app,
        "/api/v1/helpdesk/verify/start",
        DESK,
        r#"{"username":"nobody"}"#,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "{text}");
    assert_eq!(error_code(&text), "RK-DIR-002");
    let audit = audit_bodies(&w);
    assert!(
        audit
            .iter()
            .any(|b| names(b, "desk") && b.contains("helpdesk_code"))
    );
    assert!(
        audit.iter().all(|b| !b.contains(&code)),
        "no code in the audit"
    );
    w.audit_ok();
}

#[tokio::test]
async fn change_through_the_api() {
    let w = world(5);
    let app = app(&w);
    let change = |who: &str, current: &str| {
        let new = "Plum-Tree-4711x";
        format!(r#"{{"username":"{who}","current_password":"{current}","new_password":"{new}"}}"#)
    };
    let (res, text) = post_as(&app, "/api/v1/change", BOT, &change("normal", "wrong")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!(error_code(&text), "RK-CHANGE-001");
    let (res, unknown) = post_as(&app, "/api/v1/change", BOT, &change("nobody", "wrong")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        json(&unknown)["message"],
        json(&text)["message"],
        "an unknown name reads like a wrong password"
    );
    let (res, text) = post_as(
        &app,
        "/api/v1/change",
        BOT,
        &change("normal", "Old-Password-1"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "{text}");
    assert_eq!(json(&text)["ok"], true);
}

#[tokio::test]
async fn every_answer_carries_the_support_id_of_its_request() {
    let w = world(5);
    let app = app(&w);
    let (_, text) = post_as(
        &app,
        "/api/v1/reset/identify",
        BOT,
        r#"{"username":"normal"}"#,
    )
    .await;
    let sid = json(&text)["support_id"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("RK-"));
    assert!(
        audit_bodies(&w).iter().any(|b| b.contains(&sid)),
        "the identify record has the answer's support id"
    );
    let (_, text) = post_as(
        &app,
        "/api/v1/result",
        BOT,
        &format!(r#"{{"receipt":"{}"}}"#, "a".repeat(64)),
    )
    .await;
    assert_eq!(error_code(&text), "RK-FLOW-001");
}
