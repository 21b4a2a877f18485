//! Enrollment over the in-memory fakes: sign-in, step-up, the methods page (masked hints,
//! dates, remove, reminders), adding email, phone, authenticator app, passkey and questions,
//! and the CSRF token on every state-changing post.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use rekey_core::engine::EngineConfig;
use rekey_core::fakes::{FakeAuthenticator, World, world, world_with};
use rekey_core::store::MethodKind;

use crate::tests::{CSRF, app, flow_cookie, get, post, send};
use crate::tests_gates::{form, location, options_of};

/// The password each test account signs in with.
const PASSWORD: &str = "Old-Password-1";

/// Sign in as `who` (given `PASSWORD` if it has none) and pass the step-up with the code mailed
/// to its enrolled address, if it has one; the cookies of the flow on the methods page.
pub(crate) async fn methods_cookies(
    app: &axum::Router,
    w: &World,
    base: &str,
    who: &str,
) -> String {
    w.dir
        .passwords
        .lock()
        .unwrap()
        .entry(who.to_owned())
        .or_insert_with(|| PASSWORD.to_owned());
    let body = form(&[("csrf", CSRF), ("username", who), ("password", PASSWORD)]);
    let (res, _) = send(app, post("/enroll", &body, base)).await;
    assert_eq!(location(&res), "/enroll/methods", "{who} signed in");
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (res, _) = send(app, get("/enroll/methods", &cookies)).await;
    if res.status() == StatusCode::OK {
        return cookies;
    }
    assert_eq!(location(&res), "/enroll/stepup");
    let (_, page) = send(app, get("/enroll/stepup", &cookies)).await;
    assert!(page.contains("value=\"email_otp\""), "{page}");
    let (res, _) = send(
        app,
        post(
            "/enroll/stepup",
            &format!("csrf={CSRF}&method=email_otp"),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/verify");
    let (_, page) = send(app, get("/enroll/verify", &cookies)).await;
    assert!(page.contains(r#"id="code""#), "{page}");
    let (res, _) = send(
        app,
        post(
            "/enroll/verify",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/methods");
    format!("{base}; {}", flow_cookie(&res))
}

/// Register `key` as a passkey of `who` through the pages; the methods-page cookies.
pub(crate) async fn add_passkey(
    app: &axum::Router,
    w: &World,
    base: &str,
    who: &str,
    key: &mut FakeAuthenticator,
) -> String {
    let cookies = methods_cookies(app, w, base, who).await;
    let (res, _) = send(
        app,
        post("/enroll/passkey", &format!("csrf={CSRF}"), &cookies),
    )
    .await;
    assert_eq!(location(&res), "/enroll/passkey");
    let (_, page) = send(app, get("/enroll/passkey", &cookies)).await;
    assert!(page.contains(r#"action="/enroll/passkey/finish" data-mode="create""#));
    let answer = key.create(&options_of(&page));
    let body = form(&[("csrf", CSRF), ("credential", &answer), ("label", "Laptop")]);
    let (res, _) = send(app, post("/enroll/passkey/finish", &body, &cookies)).await;
    assert_eq!(location(&res), "/enroll/methods", "registered");
    cookies
}

/// One `<tr>` of the methods table per method: name, masked hint, strength in words, dates,
/// and a Remove form with the CSRF token; removing one leaves the other.
#[tokio::test]
async fn the_methods_page_masks_hints_and_offers_remove_per_method() {
    let w = world_with(EngineConfig::default()).passkeys().build();
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let mut key = FakeAuthenticator::new("cred-1");
    let cookies = add_passkey(&app, &w, &base, "normal", &mut key).await;
    let (res, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rows: Vec<&str> = page.split("<tr data-kind=").skip(1).collect();
    assert_eq!(rows.len(), 2, "{page}");
    let email = rows.iter().find(|r| r.starts_with("\"email\"")).unwrap();
    assert!(
        email.contains("<span class=\"hint\">u***@h***.example</span>"),
        "{email}"
    );
    assert!(email.contains("something you have"), "{email}");
    assert!(
        email.contains("<td class=\"date\">2030-03-15 17:46 UTC<br>"),
        "enrolled: {email}"
    );
    assert!(
        email.contains("<td class=\"date\">2030-03-17 17:46 UTC</td>"),
        "last used by the step-up"
    );
    let passkey = rows.iter().find(|r| r.starts_with("\"passkey\"")).unwrap();
    assert!(
        passkey.contains("<span class=\"hint\">1 passkey</span>"),
        "{passkey}"
    );
    assert!(
        passkey.contains("phishing-resistant") && passkey.contains("<td class=\"date\">never</td>")
    );
    assert!(
        passkey.contains("Usable for reset from: 2030-03-18 17:46 UTC"),
        "usable after the cool-down"
    );
    for (row, kind) in [(email, "email"), (passkey, "passkey")] {
        assert!(
            row.contains(r#"<form method="post" action="/enroll/remove">"#)
                && row.contains(&format!(
                    r#"<input type="hidden" name="csrf" value="{CSRF}">"#
                ))
                && row.contains(&format!(r#"name="method" value="{kind}""#))
                && row.contains(">Remove</button>"),
            "{row}"
        );
    }
    assert!(!page.contains("u1@home.example"), "never the address");
    assert!(!page.contains("data-reminder"), "one method is enough here");
    let mails = w.mails();
    let (res, _) = send(
        &app,
        post(
            "/enroll/remove",
            &format!("csrf={CSRF}&method=passkey"),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/methods");
    assert!(w.mails() > mails, "the user is told");
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert_eq!(page.matches("<tr data-kind=").count(), 1, "{page}");
    assert!(page.contains(r#"<tr data-kind="email""#));
}

/// The reminder shows when the user has fewer methods than the tier needs, or no passkey where
/// one is needed, and not otherwise.
#[tokio::test]
async fn the_reminder_shows_when_methods_are_fewer_than_needed() {
    let w = world(5);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let cookies = methods_cookies(&app, &w, &base, "unenrolled").await;
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert!(
        page.contains("data-reminder>Your account needs at least 1 verification method"),
        "{page}"
    );
    assert!(page.contains("You have no verification method yet."));
    assert!(
        page.contains(r#"<a href="/enroll/email">Email address</a>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"<form method="post" action="/enroll/totp">"#),
        "starting an app setup is a post: {page}"
    );
    let cookies = methods_cookies(&app, &w, &base, "normal").await;
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert!(!page.contains("data-reminder"), "{page}");
    let mut config = EngineConfig::default();
    config.gates.standard.gates = 2;
    let w = rekey_core::fakes::world_config(5, config);
    let app = crate::tests::app(&w);
    let cookies = methods_cookies(&app, &w, &base, "normal").await;
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert!(
        page.contains("needs at least 2 verification method"),
        "{page}"
    );
}

/// Email: the code page names the masked address, a wrong code says so, the right one leads
/// to the methods page. Phone: a number that is not E.164 is refused on its form.
#[tokio::test]
async fn contacts_are_confirmed_by_code_and_land_on_the_methods_page() {
    let config = EngineConfig {
        sms_countries: vec!["49".into()],
        ..EngineConfig::default()
    };
    let w = world_with(config).sms().build();
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let cookies = methods_cookies(&app, &w, &base, "unenrolled").await;
    let (_, page) = send(&app, get("/enroll/email", &cookies)).await;
    assert!(page.contains(r#"id="email""#), "{page}");
    let (res, _) = send(
        &app,
        post(
            "/enroll/email",
            &form(&[("csrf", CSRF), ("email", "jane@home.example")]),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/code");
    let (_, page) = send(&app, get("/enroll/code", &cookies)).await;
    assert!(
        page.contains("We sent a 6-digit code to j***@h***.example."),
        "{page}"
    );
    let (_, page) = send(
        &app,
        post(
            "/enroll/code",
            &format!("csrf={CSRF}&code=000000"),
            &cookies,
        ),
    )
    .await;
    assert!(page.contains("That code is not correct"), "{page}");
    let (res, _) = send(
        &app,
        post(
            "/enroll/code",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/methods");
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert!(page.contains(r#"<tr data-kind="email""#), "{page}");
    let (_, page) = send(&app, get("/enroll/phone", &cookies)).await;
    assert!(page.contains(r#"type="tel""#), "{page}");
    let (_, page) = send(
        &app,
        post(
            "/enroll/phone",
            &form(&[("csrf", CSRF), ("phone", "0170 123")]),
            &cookies,
        ),
    )
    .await;
    assert!(page.contains("That phone number is not accepted"), "{page}");
    let (res, _) = send(
        &app,
        post(
            "/enroll/phone",
            &form(&[("csrf", CSRF), ("phone", "+49 170 1234567")]),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/code");
    let (_, page) = send(&app, get("/enroll/code", &cookies)).await;
    assert!(page.contains("+** *** ** 67"), "{page}");
}

/// The authenticator app's page: the QR code as inline SVG, the key in groups of four, a code
/// field; a wrong code is named there.
#[tokio::test]
async fn the_authenticator_app_page_shows_qr_code_and_key() {
    let w = world(5);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let cookies = methods_cookies(&app, &w, &base, "normal").await;
    let (res, _) = send(
        &app,
        post("/enroll/totp", &format!("csrf={CSRF}"), &cookies),
    )
    .await;
    assert_eq!(location(&res), "/enroll/totp");
    let (res, _) = send(&app, get("/enroll/methods", &cookies)).await;
    assert_eq!(
        location(&res),
        "/enroll/totp",
        "the setup in progress is where it goes"
    );
    let (res, page) = send(&app, get("/enroll/totp", &cookies)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        page.contains(r#"role="img""#) && page.contains("<svg xmlns"),
        "{page}"
    );
    assert!(!page.contains("<?xml") && !page.contains("<script"));
    assert!(
        !page.contains("otpauth://"),
        "the URI is only in the QR code"
    );
    let key = page
        .split(r#"<code class="secret" id="secret">"#)
        .nth(1)
        .and_then(|r| r.split("</code>").next())
        .unwrap();
    assert!(
        key.split(' ').all(|g| g.len() <= 4 && !g.is_empty()) && key.len() >= 19,
        "{key}"
    );
    let (_, page) = send(
        &app,
        post(
            "/enroll/totp/confirm",
            &format!("csrf={CSRF}&code=000000"),
            &cookies,
        ),
    )
    .await;
    assert!(
        page.contains("That code is not correct") && page.contains("<svg"),
        "{page}"
    );
    // Back to the methods page without finishing: nothing was added.
    assert!(page.contains(r#"action="/enroll/cancel""#), "{page}");
    let (res, _) = send(
        &app,
        post("/enroll/cancel", &format!("csrf={CSRF}"), &cookies),
    )
    .await;
    assert_eq!(location(&res), "/enroll/methods");
    let (res, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the methods page, no redirect"
    );
    assert!(!page.contains("data-kind=\"totp\""), "{page}");
}

/// Security questions: three rows (text inputs without an admin list, a select with one), then
/// the methods page lists them.
#[tokio::test]
async fn security_questions_are_enrolled_from_three_rows() {
    let config = EngineConfig {
        questions_enabled: true,
        ..EngineConfig::default()
    };
    let w = world_config_of(config);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let cookies = methods_cookies(&app, &w, &base, "normal").await;
    let (_, page) = send(&app, get("/enroll/questions", &cookies)).await;
    for n in 1..=3 {
        assert!(
            page.contains(&format!(
                r#"<input id="question{n}" name="question{n}" type="text""#
            )) && page.contains(&format!(
                r#"<input id="answer{n}" name="answer{n}" type="text" autocomplete="off""#
            )),
            "{page}"
        );
    }
    let pairs = [
        ("csrf", CSRF),
        ("question1", "First pet?"),
        ("answer1", "Rex the dog"),
        ("question2", "First school?"),
        ("answer2", "Hill Road"),
        ("question3", "First car?"),
        ("answer3", "Blue Beetle"),
    ];
    let (res, _) = send(&app, post("/enroll/questions", &form(&pairs), &cookies)).await;
    assert_eq!(location(&res), "/enroll/methods");
    let (_, page) = send(&app, get("/enroll/methods", &cookies)).await;
    assert!(page.contains(r#"<tr data-kind="questions""#), "{page}");
    assert!(!page.contains("Rex the dog"), "answers are never shown");
    let config = EngineConfig {
        questions_enabled: true,
        question_list: vec![
            "Where was <b>your</b> first job?".into(),
            "Q2".into(),
            "Q3".into(),
        ],
        ..EngineConfig::default()
    };
    let w = world_config_of(config);
    let app = crate::tests::app(&w);
    let cookies = methods_cookies(&app, &w, &base, "normal").await;
    let (_, page) = send(&app, get("/enroll/questions", &cookies)).await;
    assert!(
        page.contains(r#"<select id="question1" name="question1" required>"#),
        "{page}"
    );
    assert!(
        page.contains("Where was &#60;b&#62;your&#60;/b&#62; first job?"),
        "{page}"
    );
    let same = [
        ("csrf", CSRF),
        ("question1", "Q2"),
        ("answer1", "abc"),
        ("question2", "Q2"),
        ("answer2", "def"),
        ("question3", "Q3"),
        ("answer3", "ghi"),
    ];
    let (_, page) = send(&app, post("/enroll/questions", &form(&same), &cookies)).await;
    assert!(page.contains("Choose 3 to 5 different questions"), "{page}");
}

fn world_config_of(config: EngineConfig) -> World {
    rekey_core::fakes::world_config(5, config)
}

/// Every new state-changing post refuses a wrong or missing CSRF token, with a live flow
/// behind it, and changes nothing (invariant 14).
#[tokio::test]
async fn every_new_post_needs_the_csrf_token() {
    let config = EngineConfig {
        questions_enabled: true,
        sms_countries: vec!["49".into()],
        ..EngineConfig::default()
    };
    let w = world_with(config).passkeys().sms().build();
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let enroll = methods_cookies(&app, &w, &base, "normal").await;
    let (res, _) = crate::tests::identify(&app, "normal", &base).await;
    let reset = format!("{base}; {}", flow_cookie(&res));
    let body = "csrf=wrong&method=email&code=123456&credential=x&label=x&phone=%2B4917012345678\
        &email=jane%40home.example&question1=a1&answer1=aaa&question2=b2&answer2=bbb\
        &question3=c3&answer3=ccc&answer4=d&answer5=e";
    let enrollments = || w.store.with(|m| m.enrollments.len());
    let (before, mails, texts) = (enrollments(), w.mails(), w.sms.count());
    let reset_posts = [
        "/reset/more",
        "/unlock/more",
        "/reset/passkey",
        "/unlock/passkey",
        "/reset/passkey/start",
        "/unlock/passkey/start",
        "/reset/questions",
        "/unlock/questions",
    ];
    let enroll_posts = [
        "/enroll/stepup",
        "/enroll/verify",
        "/enroll/stepup/passkey",
        "/enroll/stepup/questions",
        "/enroll/email",
        "/enroll/phone",
        "/enroll/code",
        "/enroll/remove",
        "/enroll/cancel",
        "/enroll/totp",
        "/enroll/totp/confirm",
        "/enroll/passkey",
        "/enroll/passkey/finish",
        "/enroll/questions",
    ];
    for (paths, cookies) in [(&reset_posts[..], &reset), (&enroll_posts[..], &enroll)] {
        for path in paths {
            let (res, _) = send(&app, post(path, body, cookies)).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}: wrong token");
            let right = body.replacen("csrf=wrong", &format!("csrf={CSRF}"), 1);
            let no_cookie = cookies.replace(&format!("__Host-rekey-csrf={CSRF}"), "");
            let (res, _) = send(&app, post(path, &right, &no_cookie)).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}: no cookie");
        }
    }
    assert_eq!(enrollments(), before, "nothing enrolled or removed");
    assert_eq!((w.mails(), w.sms.count()), (mails, texts), "nothing sent");
    // The flow is still where it was: the token was all that was missing.
    let (res, _) = send(
        &app,
        post(
            "/enroll/remove",
            &format!("csrf={CSRF}&method=email"),
            &enroll,
        ),
    )
    .await;
    assert_eq!(location(&res), "/enroll/methods");
    assert_eq!(enrollments(), before - 1);
    assert!(w.store.with(|m| {
        !m.enrollments
            .iter()
            .any(|e| e.method == MethodKind::Email && e.user == rekey_core::Guid([1; 16]))
    }));
}
