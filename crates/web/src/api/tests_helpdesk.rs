//! The helpdesk over the JSON API on the fakes: no act without a passed caller verification of
//! the same integration for the same user, expiry, privileged users refused, sensitive users'
//! acts pending for an approver (202), and ONE audit record per call naming `api:<name>`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use rekey_core::engine::EngineConfig;
use rekey_core::engine::helpdesk::HelpdeskRules;
use rekey_core::engine::{ConsoleStart, RequestContext};
use rekey_core::fakes::{DOMAIN, T0, World, world_with};
use rekey_core::method::Method;
use rekey_core::{Password, Sid};
use serde_json::Value;

use super::tests::{BOT, DESK, DESK2, app, check, one, post_as, verified};

/// `world(5)` with helpdesk rules: `appr` (approver, enrolled, password `Pw-appr-1`) and
/// `vip` (sensitive, enrolled).
fn hd_world() -> World {
    let sid = |rid| DOMAIN.parse::<Sid>().unwrap().with_rid(rid);
    let w = world_with(EngineConfig {
        helpdesk: HelpdeskRules {
            operator_groups: vec![sid(3000)],
            approver_groups: vec![sid(3001)],
            sensitive_groups: vec![sid(3002)],
            ..HelpdeskRules::default()
        },
        ..EngineConfig::default()
    })
    .build();
    w.person(22, "appr", &[3001], true);
    w.person(24, "vip", &[2000, 3002], true);
    w
}

/// `one` with the body `{"username": who}`.
async fn named(w: &World, app: &axum::Router, path: &str, who: &str) -> (StatusCode, Value, Value) {
    one(w, app, path, DESK, &serde_json::json!({ "username": who })).await
}

/// `one` with an act's body: verification `id`, user `who`.
async fn acted(
    w: &World,
    app: &axum::Router,
    path: &str,
    token: &str,
    id: &str,
    who: &str,
) -> (StatusCode, Value, Value) {
    let body = serde_json::json!({ "verification_id": id, "username": who });
    one(w, app, path, token, &body).await
}

#[tokio::test]
async fn acts_need_a_passed_verification_of_this_integration_for_this_user() {
    let w = hd_world();
    let app = app(&w);
    // No verification at all: an id nobody issued, or no id.
    let (status, v, rec) = acted(
        &w,
        &app,
        "/api/v1/helpdesk/unlock",
        DESK,
        &"a".repeat(64),
        "locked",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "RK-FLOW-001");
    assert_eq!(rec["actor"], serde_json::json!({ "api": "desk" }));
    let (res, text) = post_as(
        &app,
        "/api/v1/helpdesk/unlock",
        DESK,
        r#"{"username":"locked"}"#,
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{text}");

    // Started, not passed.
    let (status, started, rec) = named(&w, &app, "/api/v1/helpdesk/verify/start", "locked").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(w.last_mail().to, "u6@home.example");
    assert_eq!(started["expires_in_secs"], 600);
    let sent_to = started["sent_to"].as_str().unwrap();
    assert!(
        sent_to.contains('*') && !sent_to.contains("u6@home"),
        "{sent_to}"
    );
    assert_eq!(
        (rec["operation"].as_str(), rec["result"].as_str()),
        (Some("verify"), Some("ok"))
    );
    let first = started["verification_id"].as_str().unwrap().to_owned();
    let (status, v, _) = acted(&w, &app, "/api/v1/helpdesk/unlock", DESK, &first, "locked").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "RK-HD-003");
    // A wrong code, then the right one: a new id, the old one dead.
    let code = w.last_code();
    let (status, v, _) = check(&w, &app, DESK, &first, "000000").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "RK-VERIFY-001");
    let (status, passed, rec) = check(&w, &app, DESK, &first, &code).await;
    assert_eq!(status, StatusCode::OK, "{passed}");
    assert_eq!(rec["detail"], "caller_verified");
    assert_eq!(passed["expires_in_secs"], 600);
    assert_eq!(passed["verified_until"], T0 + 600);
    let id = passed["verification_id"].as_str().unwrap().to_owned();
    assert_ne!(id, first);
    let (status, _, _) = acted(&w, &app, "/api/v1/helpdesk/unlock", DESK, &first, "locked").await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Another integration with the same id; the same integration naming another user.
    let (status, v, rec) = acted(&w, &app, "/api/v1/helpdesk/unlock", DESK2, &id, "locked").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "RK-HD-009");
    assert_eq!(rec["actor"], serde_json::json!({ "api": "desk2" }));
    let (status, v, rec) = acted(&w, &app, "/api/v1/helpdesk/unlock", DESK, &id, "normal").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "RK-HD-009");
    assert_eq!(rec["detail"], "verification_of_another_user");
    assert!(w.zone.writes.lock().unwrap().is_empty(), "nothing written");

    // The act, with the integration named in the record and the mail.
    let (status, v, rec) = acted(&w, &app, "/api/v1/helpdesk/unlock", DESK, &id, "locked").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["unlock locked".to_owned()]
    );
    assert_eq!(
        (
            rec["operation"].as_str(),
            rec["result"].as_str(),
            rec["target_sam"].as_str()
        ),
        (Some("unlock"), Some("ok"), Some("locked"))
    );
    assert_eq!(rec["actor"], serde_json::json!({ "api": "desk" }));
    assert!(w.last_mail().body.contains("helpdesk integration desk"));
    let (status, v, _) = acted(
        &w,
        &app,
        "/api/v1/helpdesk/must-change",
        DESK,
        &id,
        "locked",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    // Expired: refused like a missing verification.
    w.advance(601);
    let (status, v, _) = acted(&w, &app, "/api/v1/helpdesk/code", DESK, &id, "locked").await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "RK-FLOW-001");
    // A self-service token may not call any of it.
    let (res, text) = post_as(
        &app,
        "/api/v1/helpdesk/lookup",
        BOT,
        r#"{"username":"locked"}"#,
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{text}");
    w.audit_ok();
}

#[tokio::test]
async fn a_lookup_shows_state_and_masked_methods_only() {
    let w = hd_world();
    let app = app(&w);
    let (status, v, rec) = named(&w, &app, "/api/v1/helpdesk/lookup", "locked").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["username"], "locked");
    assert_eq!(
        (v["locked"].as_bool(), v["privileged"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(v["methods"][0]["kind"], "email");
    assert!(!v.to_string().contains("u6@home.example"), "masked: {v}");
    assert_eq!(v["code_to"], v["methods"][0]["hint"]);
    assert_eq!(
        (rec["operation"].as_str(), rec["actor"].clone()),
        (Some("lookup"), serde_json::json!({ "api": "desk" }))
    );
    let (status, v, _) = named(&w, &app, "/api/v1/helpdesk/lookup", "outside").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["ineligible"]["code"], "RK-SCOPE-001");
    let (status, v, _) = named(&w, &app, "/api/v1/helpdesk/lookup", "nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["code"], "RK-DIR-002");
}

#[tokio::test]
async fn privileged_users_are_refused() {
    let w = hd_world();
    let app = app(&w);
    let mails = w.mails();
    let (status, v, rec) = named(&w, &app, "/api/v1/helpdesk/verify/start", "admin").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "RK-TIER-001");
    assert_eq!(rec["detail"], "privileged");
    assert_eq!(w.mails(), mails, "no code went out");
    let (status, v, _) = named(&w, &app, "/api/v1/helpdesk/verify/start", "unenrolled").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "RK-HD-004");
}

#[tokio::test]
async fn a_sensitive_user_waits_for_an_approver_in_the_console() {
    let w = hd_world();
    let app = app(&w);
    let id = verified(&w, &app, DESK, "vip").await;
    let (status, v, rec) = acted(&w, &app, "/api/v1/helpdesk/unlock", DESK, &id, "vip").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let request = v["request_id"].as_str().unwrap().to_owned();
    assert_eq!(v["expires_in_secs"], 3600);
    assert_eq!(v["expires_at"], T0 + 3600);
    assert!(v["message"].as_str().unwrap().contains(&request));
    assert_eq!(
        (rec["operation"].as_str(), rec["detail"].as_str()),
        (Some("approval"), Some("requested:unlock"))
    );
    assert!(w.zone.writes.lock().unwrap().is_empty());

    // An approver (any person: the requester is the integration) decides it in the console.
    let ctx = RequestContext::default();
    let ConsoleStart::SecondFactor(flow) = w
        .engine
        .helpdesk_sign_in(&ctx, "appr", &Password::new("Pw-appr-1".into()))
        .await
        .unwrap()
    else {
        panic!("second factor")
    };
    w.engine
        .helpdesk_choose_factor(&ctx, &flow, Method::EmailOtp)
        .await
        .unwrap();
    let flow = w
        .engine
        .helpdesk_verify_factor(&ctx, &flow, &w.last_code())
        .await
        .unwrap()
        .into_id();
    let list = w.engine.helpdesk_approvals(&flow).await.unwrap();
    assert_eq!((list.len(), list[0].requester.as_str()), (1, "api:desk"));
    w.engine
        .helpdesk_decide(&ctx, &flow, &request, true)
        .await
        .unwrap();
    assert_eq!(
        *w.zone.writes.lock().unwrap(),
        vec!["unlock vip".to_owned()]
    );
    w.audit_ok();
}
