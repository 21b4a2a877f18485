//! Every page, refusal and outcome in the chosen language, over the in-memory fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use rekey_core::fakes::world;

use crate::tests::{
    CSRF, app, flow_cookie, get, identify, post, send, set_password, verified_cookies,
};

/// The text a person sees: tags dropped, entities left as they are.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// English words that must not show on a German page (tags and attribute values excluded).
fn assert_german(what: &str, html: &str) {
    assert!(html.contains("<html lang=\"de\">"), "{what}: {html}");
    let text = visible_text(html).to_lowercase();
    for word in [
        "password",
        " the ",
        "your ",
        "enter ",
        "please",
        "landed",
        "rejected",
        "failed",
        "characters",
        "not ",
        "too ",
        "≤",
    ] {
        assert!(!text.contains(word), "{what}: English {word:?} in {text}");
    }
}

/// Through the reset flow with German chosen: every page, every refusal and the outcome are
/// German; an empty or too long password gets its own text (not "not the same").
#[tokio::test]
async fn german_reset_pages_have_no_english() {
    let w = world(5);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}; __Host-rekey-lang=de");
    for path in ["/", "/reset", "/unlock", "/change", "/enroll"] {
        let (_, page) = send(&app, get(path, &base)).await;
        assert_german(path, &page);
    }
    let (res, _) = identify(&app, "normal", &base).await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/reset/code", &cookies)).await;
    assert_german("/reset/code", &page);
    let (_, page) = send(
        &app,
        post("/reset/code", &format!("csrf={CSRF}&code=000000"), &cookies),
    )
    .await;
    assert_german("wrong code", &page);
    assert!(page.contains("Dieser Code ist falsch"), "{page}");
    let cookies = verified_cookies(&app, &w, &base).await;
    let (_, page) = send(&app, get("/reset/password", &cookies)).await;
    assert_german("/reset/password", &page);
    let set = |pw: &str| set_password(&cookies, pw);
    let (_, page) = send(&app, set("")).await;
    assert_german("empty password", &page);
    assert!(page.contains("Geben Sie ein neues Passwort ein."), "{page}");
    assert!(!page.contains("stimmen nicht"), "empty is not a mismatch");
    let (_, page) = send(&app, set(&format!("Ab-1{}", "x".repeat(300)))).await;
    assert_german("too long", &page);
    assert!(page.contains("Höchstens 256 Zeichen."), "{page}");
    let (_, page) = send(
        &app,
        post(
            "/reset/password",
            &format!("csrf={CSRF}&new_password=Plum-Tree-4711x&confirm_password=Plum-Tree-4711y"),
            &cookies,
        ),
    )
    .await;
    assert_german("mismatch", &page);
    *w.zone.refuse.lock().unwrap() = Some(rekey_core::Rejection::History);
    let (_, page) = send(&app, set("Plum-Tree-4711x")).await;
    assert_german("refused by the zone", &page);
    assert!(page.contains("schon einmal verwendet"), "{page}");
    *w.zone.refuse.lock().unwrap() = None;
    let (_, page) = send(&app, set("Plum-Tree-4711x")).await;
    assert_german("done", &page);
    assert!(
        page.contains("data-state=\"ok\"") && page.contains("<td>erledigt</td>"),
        "{page}"
    );
}

#[tokio::test]
async fn empty_and_too_long_passwords_are_named_in_english() {
    let w = world(5);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}; __Host-rekey-lang=en");
    let cookies = verified_cookies(&app, &w, &base).await;
    let set = |pw: &str| set_password(&cookies, pw);
    let (_, page) = send(&app, set("")).await;
    assert!(page.contains("Enter a new password."), "{page}");
    assert!(!page.contains("not the same"), "empty is not a mismatch");
    let (_, page) = send(&app, set(&format!("Ab-1{}", "x".repeat(300)))).await;
    assert!(page.contains("At most 256 characters."), "{page}");
    assert!(!page.contains("≤"), "{page}");
}

/// Error pages and the other flows' refusals speak German too, code and support id beside.
#[tokio::test]
async fn german_error_pages_and_refusals() {
    use std::sync::atomic::Ordering;
    let w = world(5);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}; __Host-rekey-lang=de");
    w.dir.down.store(true, Ordering::Relaxed);
    let (res, page) = identify(&app, "normal", &base).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_german("directory down", &page);
    assert!(
        page.contains("Verzeichnisdienst") && page.contains("RK-DIR-010"),
        "{page}"
    );
    w.dir.down.store(false, Ordering::Relaxed);
    let (res, page) = send(
        &app,
        get(
            "/reset/password",
            &format!("{base}; __Host-rekey-flow={CSRF}"),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_german("expired flow", &page);
    let (_, page) = send(
        &app,
        post(
            "/enroll",
            &format!("csrf={CSRF}&username=normal&password=wrong"),
            &base,
        ),
    )
    .await;
    assert_german("enroll sign-in", &page);
    assert!(page.contains("Die Anmeldung ist fehlgeschlagen."), "{page}");
    let (_, page) = send(
        &app,
        post(
            "/change",
            &format!(
                "csrf={CSRF}&username=normal&current_password=wrong&new_password=Plum-Tree-4711x&confirm_password=Plum-Tree-4711x"
            ),
            &base,
        ),
    )
    .await;
    assert_german("change refused", &page);
    assert!(
        page.contains("Das Passwort konnte nicht geändert werden."),
        "{page}"
    );
}

/// The gate pages and the enrollment pages speak German too.
#[tokio::test]
async fn german_gate_and_enrollment_pages_have_no_english() {
    use rekey_core::engine::EngineConfig;
    let mut config = EngineConfig {
        questions_enabled: true,
        sms_countries: vec!["49".into()],
        ..EngineConfig::default()
    };
    config.gates.standard.gates = 2;
    let w = rekey_core::fakes::world_with(config)
        .passkeys()
        .sms()
        .build();
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}; __Host-rekey-lang=de");
    let (res, _) = identify(&app, "normal", &base).await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/reset/code", &cookies)).await;
    assert_german("/reset/code", &page);
    assert!(page.contains("Stattdessen Passkey verwenden"), "{page}");
    let (res, _) = send(
        &app,
        post(
            "/reset/code",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &cookies,
        ),
    )
    .await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/reset/more", &cookies)).await;
    assert_german("/reset/more", &page);
    let (res, _) = send(
        &app,
        post("/reset/passkey/start", &format!("csrf={CSRF}"), &base),
    )
    .await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/reset/passkey", &cookies)).await;
    assert_german("/reset/passkey", &page);
    assert!(page.contains("Passkeys brauchen JavaScript"), "{page}");
    let (res, _) = send(
        &app,
        post(
            "/enroll",
            &format!("csrf={CSRF}&username=normal&password=Old-Password-1"),
            &base,
        ),
    )
    .await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/enroll/stepup", &cookies)).await;
    assert_german("/enroll/stepup", &page);
    assert!(page.contains("etwas, das Sie besitzen"), "{page}");
    let cookies = crate::tests_enroll::methods_cookies(&app, &w, &base, "normal").await;
    for path in ["/enroll/methods", "/enroll/phone", "/enroll/questions"] {
        let (_, page) = send(&app, get(path, &cookies)).await;
        assert_german(path, &page);
    }
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert!(page.contains("mindestens 2 Bestätigungsmethode"), "{page}");
    for (begin, page_path) in [
        ("/enroll/totp", "/enroll/totp"),
        ("/enroll/passkey", "/enroll/passkey"),
    ] {
        send(&app, post(begin, &format!("csrf={CSRF}"), &cookies)).await;
        let (_, page) = send(&app, get(page_path, &cookies)).await;
        assert_german(page_path, &page);
    }
}
