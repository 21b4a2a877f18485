//! The console over the fakes: headers, `__Host-` session cookie rotated at each privilege step,
//! CSRF on every post, refusals as pages with codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{StatusCode, header};
use rekey_core::engine::EngineConfig;
use rekey_core::engine::helpdesk::HelpdeskRules;
use rekey_core::fakes::{DOMAIN, T0, World, account, world_with};
use rekey_core::store::{Enrollment, MethodKind};
use rekey_core::{Guid, Sid};

use super::CONSOLE_COOKIE;
use crate::tests::{CSRF, app, get, post, send, set_cookies};

fn hd_world() -> World {
    let ops = DOMAIN.parse::<Sid>().unwrap().with_rid(3000);
    let w = world_with(EngineConfig {
        helpdesk: HelpdeskRules {
            operator_groups: vec![ops],
            ..HelpdeskRules::default()
        },
        ..EngineConfig::default()
    })
    .build();
    w.dir
        .accounts
        .lock()
        .unwrap()
        .push(account(20, "op", &[3000]));
    w.dir
        .passwords
        .lock()
        .unwrap()
        .insert("op".into(), "Op-Password-1".into());
    w.store.with(|m| {
        m.enrollments.push(Enrollment::contact(
            Guid([20; 16]),
            MethodKind::Email,
            "op@home.example",
            T0 - 86_400 * 2,
        ));
    });
    w
}

fn console_cookie(res: &axum::http::Response<axum::body::Body>) -> String {
    let set = set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with(CONSOLE_COOKIE))
        .expect("console cookie set");
    assert!(
        set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(set.contains("Path=/") && !set.contains("Domain"), "{set}");
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

fn cookies(session: &str) -> String {
    format!("__Host-rekey-csrf={CSRF}; {CONSOLE_COOKIE}={session}")
}

#[tokio::test]
async fn sign_in_rotates_the_session_and_every_post_needs_csrf() {
    let w = hd_world();
    let app = app(&w);
    let (res, body) = send(&app, get("/helpdesk", "")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.contains("action=\"/helpdesk\""));
    assert!(res.headers().get("content-security-policy").is_some());

    let creds = format!("csrf={CSRF}&username=op&password=Op-Password-1");
    // No CSRF cookie (or a wrong token): refused, nothing happens.
    let (res, _) = send(&app, post("/helpdesk", &creds, "")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let bad = "csrf=nope&username=op&password=Op-Password-1";
    let (res, _) = send(
        &app,
        post("/helpdesk", bad, &format!("__Host-rekey-csrf={CSRF}")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let (res, _) = send(
        &app,
        post("/helpdesk", &creds, &format!("__Host-rekey-csrf={CSRF}")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/helpdesk/factor");
    let first = console_cookie(&res);

    let (res, body) = send(&app, get("/helpdesk/factor", &cookies(&first))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.contains("email_otp"), "{body}");
    let (res, _) = send(
        &app,
        post(
            "/helpdesk/factor",
            &format!("csrf={CSRF}&method=email_otp"),
            &cookies(&first),
        ),
    )
    .await;
    assert_eq!(res.headers()[header::LOCATION], "/helpdesk/factor/code");
    let code = w.last_code();
    let (res, _) = send(
        &app,
        post(
            "/helpdesk/factor/code",
            &format!("csrf={CSRF}&code={code}"),
            &cookies(&first),
        ),
    )
    .await;
    assert_eq!(res.headers()[header::LOCATION], "/helpdesk/console");
    let second = console_cookie(&res);
    assert_ne!(
        first, second,
        "the id rotates when the second factor passes"
    );

    let (res, body) = send(&app, get("/helpdesk/console", &cookies(&second))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.contains("<strong>op</strong>"), "{body}");
    // The old id is dead: a clear page and the cookie deleted.
    let (res, _) = send(&app, get("/helpdesk/console", &cookies(&first))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&res).iter().any(|c| c.contains("Max-Age=0")));

    // Every state-changing post checks the token.
    for (path, form) in [
        ("/helpdesk/lookup", "who=locked"),
        ("/helpdesk/verify/send", ""),
        ("/helpdesk/verify", "code=123456"),
        ("/helpdesk/act", "act=unlock"),
        ("/helpdesk/approvals", "id=x&decision=approve"),
        ("/helpdesk/sign-out", ""),
    ] {
        let body = format!("csrf=wrong&{form}");
        let (res, _) = send(&app, post(path, &body, &cookies(&second))).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(w.zone.writes.lock().unwrap().is_empty());

    // An act before the caller was verified: refused with its code on the console.
    let (res, _) = send(
        &app,
        post(
            "/helpdesk/lookup",
            &format!("csrf={CSRF}&who=locked"),
            &cookies(&second),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, body) = send(
        &app,
        post(
            "/helpdesk/act",
            &format!("csrf={CSRF}&act=unlock"),
            &cookies(&second),
        ),
    )
    .await;
    assert!(
        body.contains("id=\"alert\"") && body.contains("Verify the caller first"),
        "{body}"
    );
    assert!(w.zone.writes.lock().unwrap().is_empty());

    // Sign out ends the session.
    let (res, _) = send(
        &app,
        post(
            "/helpdesk/sign-out",
            &format!("csrf={CSRF}"),
            &cookies(&second),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (res, _) = send(&app, get("/helpdesk/console", &cookies(&second))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn someone_outside_the_group_gets_the_sign_in_page_again() {
    let w = hd_world();
    let app = app(&w);
    let (res, body) = send(
        &app,
        post(
            "/helpdesk",
            &format!("csrf={CSRF}&username=normal&password=Old-Password-1"),
            &format!("__Host-rekey-csrf={CSRF}"),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(body.contains("id=\"alert\""), "{body}");
    assert!(
        !set_cookies(&res)
            .iter()
            .any(|c| c.starts_with(CONSOLE_COOKIE))
    );
}
