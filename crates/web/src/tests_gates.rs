//! The gate pages over the in-memory fakes: the first gate's code page, "use a passkey
//! instead", the choice of a further gate, the passkey page (its script and its JSON), the
//! static scripts and the CSP that lets exactly them run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Response, StatusCode, header};
use rekey_core::engine::EngineConfig;
use rekey_core::fakes::{FakeAuthenticator, World, world, world_with};

use crate::tests::{CSRF, app, flow_cookie, get, identify, post, send};
use crate::tests_enroll::{add_passkey, methods_cookies};

pub(crate) fn location(res: &Response<Body>) -> String {
    res.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn csp(res: &Response<Body>) -> String {
    res.headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// The ceremony options in a passkey page's JSON block (as the script reads them).
pub(crate) fn options_of(page: &str) -> String {
    let open = r#"<script type="application/json" id="passkey-options">"#;
    let start = page.find(open).expect("options block") + open.len();
    let len = page[start..].find("</script>").unwrap();
    page[start..start + len].to_owned()
}

/// A form body from pairs, percent-encoded.
pub(crate) fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// A world whose engine has passkeys and whose standard tier needs `gates` gates.
fn passkey_world(gates: u8) -> World {
    let mut config = EngineConfig::default();
    config.gates.standard.gates = gates;
    world_with(config).passkeys().build()
}

/// The first gate's page is one page for every account, decoys included, with the generic lead
/// and the passkey alternative; a wrong code gets one answer for all too (invariant 9).
#[tokio::test]
async fn the_first_gate_is_the_same_page_for_every_account() {
    let w = world_with(EngineConfig::default()).passkeys().build();
    let without = world(5);
    let plain = app(&without);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let mut pages = Vec::new();
    // Without passkeys on the server, the page does not offer them (to anyone).
    let (res, _) = identify(&plain, "normal", &base).await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&plain, get("/reset/code", &cookies)).await;
    assert!(page.contains("Enter the code from your authenticator app"));
    assert!(!page.contains("/reset/passkey/start"), "{page}");
    for who in ["nobody", "unenrolled", "normal"] {
        let (res, _) = identify(&app, who, &base).await;
        let cookies = format!("{base}; {}", flow_cookie(&res));
        let (res, page) = send(&app, get("/reset/code", &cookies)).await;
        assert_eq!(res.status(), StatusCode::OK, "{who}");
        assert!(
            page.contains("Enter the code from your authenticator app, or the code we sent"),
            "{who}: {page}"
        );
        assert!(page.contains(r#"action="/reset/passkey/start""#), "{who}");
        assert!(
            !page.contains("<script"),
            "{who}: the code page runs no script"
        );
        let (res, wrong) = send(
            &app,
            post("/reset/code", &format!("csrf={CSRF}&code=000000"), &cookies),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{who}");
        assert!(wrong.contains("That code is not correct"), "{who}: {wrong}");
        pages.push((page, wrong));
    }
    assert!(
        pages.windows(2).all(|p| p[0] == p[1]),
        "byte-identical for unknown, unenrolled and real accounts"
    );
    // The unlock flow's code page offers its own passkey start.
    let (res, _) = send(
        &app,
        post("/unlock", &format!("csrf={CSRF}&username=normal"), &base),
    )
    .await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/unlock/code", &cookies)).await;
    assert!(page.contains(r#"action="/unlock/passkey/start""#), "{page}");
}

/// "Use a passkey instead" needs no user name: the passkey page with its data block, the
/// script file and a way on without JavaScript; its CSP allows same-origin scripts only there.
#[tokio::test]
async fn the_passkey_page_has_no_inline_script() {
    let w = passkey_world(1);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let (res, _) = send(
        &app,
        post("/reset/passkey/start", &format!("csrf={CSRF}"), &base),
    )
    .await;
    assert_eq!(location(&res), "/reset/passkey");
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (res, page) = send(&app, get("/reset/passkey", &cookies)).await;
    assert_eq!(res.status(), StatusCode::OK);
    for part in [
        r#"<form id="passkey-form" method="post" action="/reset/passkey" data-mode="get">"#,
        r#"<input type="hidden" name="credential" id="credential" value="">"#,
        &format!(r#"<input type="hidden" name="csrf" value="{CSRF}">"#),
        r#"<button type="button" id="passkey-start">"#,
        r#"<p class="error" id="passkey-error" role="alert""#,
        r#"<p id="passkey-unsupported" hidden>"#,
        "<noscript><p id=\"passkey-noscript\">Passkeys need JavaScript",
        r#"<a href="/reset/more">"#,
        r#"<script src="/static/passkey.js" defer></script>"#,
    ] {
        assert!(page.contains(part), "{part} in {page}");
    }
    assert_eq!(
        page.matches("<script").count(),
        2,
        "the data block and the file"
    );
    for tag in page.split("<script").skip(1) {
        assert!(
            tag.starts_with(r#" type="application/json""#) || tag.starts_with(r#" src="/static/"#),
            "no inline script: <script{tag}"
        );
    }
    let options: serde_json::Value = serde_json::from_str(&options_of(&page)).unwrap();
    assert!(options["publicKey"]["challenge"].is_string(), "{options}");
    let policy = csp(&res);
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    // Pages without a script keep a policy without any script source.
    let (res, _) = send(&app, get("/reset", &base)).await;
    assert!(!csp(&res).contains("script-src"), "{}", csp(&res));
}

/// The options are data inside HTML: nothing in them can close the `<script>` element.
#[tokio::test]
async fn passkey_options_cannot_break_out_of_their_script_block() {
    let w = passkey_world(1);
    w.dir.set("normal", |a| {
        a.display_name = Some("</script><script>alert(1)</script><!--".into());
    });
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let cookies = methods_cookies(&app, &w, &base, "normal").await;
    let (res, _) = send(
        &app,
        post("/enroll/passkey", &format!("csrf={CSRF}"), &cookies),
    )
    .await;
    assert_eq!(location(&res), "/enroll/passkey");
    let (_, page) = send(&app, get("/enroll/passkey", &cookies)).await;
    assert!(page.contains(r#"data-mode="create""#), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("</script><!--"), "{page}");
    let block = options_of(&page);
    assert!(
        block.contains(r"\u003c/script\u003e\u003cscript\u003ealert(1)"),
        "{block}"
    );
    // Still the same JSON for the script.
    let options: serde_json::Value = serde_json::from_str(&block).unwrap();
    assert_eq!(
        options["publicKey"]["user"]["displayName"],
        "</script><script>alert(1)</script><!--"
    );
    assert_eq!(page.matches("<script").count(), 2);
}

#[tokio::test]
async fn the_scripts_are_served_as_javascript() {
    let w = world(5);
    let app = app(&w);
    for (path, body) in [
        ("/static/passkey.js", include_str!("../static/passkey.js")),
        ("/static/pow.js", include_str!("../static/pow.js")),
    ] {
        let (res, served) = send(&app, get(path, "")).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(
            res.headers().get(header::CONTENT_TYPE).unwrap(),
            "text/javascript; charset=utf-8",
            "{path}"
        );
        assert_eq!(
            res.headers().get("x-content-type-options").unwrap(),
            "nosniff"
        );
        assert_eq!(served, body, "{path}");
    }
}

/// A first gate by passkey, then one more: the choice lists the email with its masked hint and
/// its strength in words; its code finishes the gates.
#[tokio::test]
async fn a_second_gate_is_chosen_from_masked_methods() {
    let w = passkey_world(2);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let mut key = FakeAuthenticator::new("cred-1");
    add_passkey(&app, &w, &base, "normal", &mut key).await;
    w.clock
        .0
        .fetch_add(2 * 86_400, std::sync::atomic::Ordering::Relaxed);
    let (res, _) = send(
        &app,
        post("/reset/passkey/start", &format!("csrf={CSRF}"), &base),
    )
    .await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/reset/passkey", &cookies)).await;
    let answer = key.get(&options_of(&page));
    let body = form(&[("csrf", CSRF), ("credential", &answer)]);
    let (res, _) = send(&app, post("/reset/passkey", &body, &cookies)).await;
    assert_eq!(location(&res), "/reset/more", "one more gate is needed");
    let first = flow_cookie(&res);
    assert_ne!(cookies, format!("{base}; {first}"), "the flow id rotated");
    let cookies = format!("{base}; {first}");
    let (res, page) = send(&app, get("/reset/more", &cookies)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        page.contains(
            r#"<input type="radio" id="method-email_otp" name="method" value="email_otp" checked>"#
        ),
        "{page}"
    );
    assert!(page.contains("u***@h***.example"), "masked: {page}");
    assert!(!page.contains("u1@home.example"), "never the address");
    assert!(page.contains("(something you have)"), "{page}");
    assert!(
        !page.contains("value=\"passkey\""),
        "a passed gate is not offered again"
    );
    let (res, _) = send(
        &app,
        post(
            "/reset/more",
            &format!("csrf={CSRF}&method=email_otp"),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/reset/code");
    let (_, page) = send(&app, get("/reset/code", &cookies)).await;
    assert!(page.contains(r#"id="code""#), "{page}");
    let (res, _) = send(
        &app,
        post(
            "/reset/code",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/reset/password");
    // No radio chosen: the same list again, with a word about it.
    let (res, _) = identify(&app, "normal", &base).await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (res, _) = send(
        &app,
        post(
            "/reset/code",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &cookies,
        ),
    )
    .await;
    assert_eq!(location(&res), "/reset/more");
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (res, page) = send(&app, post("/reset/more", &format!("csrf={CSRF}"), &cookies)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        page.contains("Choose one of the ways.") && page.contains("value=\"passkey\""),
        "{page}"
    );
}

/// A passkey alone opens a one-gate reset; a refused answer shows the page again.
#[tokio::test]
async fn a_passkey_alone_passes_the_first_gate() {
    let w = passkey_world(1);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    let mut key = FakeAuthenticator::new("cred-9");
    add_passkey(&app, &w, &base, "normal", &mut key).await;
    w.clock
        .0
        .fetch_add(2 * 86_400, std::sync::atomic::Ordering::Relaxed);
    let (res, _) = send(
        &app,
        post("/unlock/passkey/start", &format!("csrf={CSRF}"), &base),
    )
    .await;
    assert_eq!(location(&res), "/unlock/passkey");
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (_, page) = send(&app, get("/unlock/passkey", &cookies)).await;
    let options = options_of(&page);
    let mut stranger = FakeAuthenticator::new("cred-unknown");
    stranger.handle = Some("00".repeat(16));
    let body = form(&[("csrf", CSRF), ("credential", &stranger.get(&options))]);
    let (res, page) = send(&app, post("/unlock/passkey", &body, &cookies)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(page.contains("The passkey was not accepted"), "{page}");
    assert!(csp(&res).contains("script-src 'self'"));
    let body = form(&[("csrf", CSRF), ("credential", &key.get(&options))]);
    let (res, _) = send(&app, post("/unlock/passkey", &body, &cookies)).await;
    assert_eq!(location(&res), "/unlock/confirm");
}
