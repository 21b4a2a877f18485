//! The portal over the in-memory fakes, through the router (tower `oneshot`): headers, cookies,
//! CSRF, form parsing, body caps and equal answers. The same pages run against the real DC,
//! store and SMTP server in the browser tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use rekey_core::fakes::{World, world};
use tower::ServiceExt;

use crate::{WebConfig, router};

pub(crate) fn app(w: &World) -> axum::Router {
    router(
        w.engine.clone(),
        WebConfig {
            identify_deadline: Duration::from_millis(20),
            answer_deadline: Duration::from_millis(20),
            password_deadline: Duration::from_millis(20),
            ..WebConfig::default()
        },
    )
}

pub(crate) async fn send(app: &axum::Router, req: Request<Body>) -> (Response<Body>, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, Body::empty()),
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

pub(crate) const CSRF: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

pub(crate) fn post(path: &str, body: &str, cookies: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub(crate) fn get(path: &str, cookies: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookies)
        .body(Body::empty())
        .unwrap()
}

pub(crate) fn set_cookies(res: &Response<Body>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_page_has_the_security_headers_and_no_inline_script() {
    let w = world(5);
    let app = app(&w);
    for path in ["/", "/reset", "/unlock", "/change", "/enroll", "/nope"] {
        let (res, body) = send(&app, get(path, "")).await;
        let h = res.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert!(h.get("strict-transport-security").is_some());
        assert!(h.get("permissions-policy").is_some());
        assert!(!body.contains("<script"), "{path}: no JavaScript at all");
    }
}

#[tokio::test]
async fn cookies_are_host_prefixed_secure_httponly_strict() {
    let w = world(5);
    let (res, _) = send(&app(&w), get("/reset", "")).await;
    let c = set_cookies(&res);
    let csrf = c
        .iter()
        .find(|c| c.starts_with("__Host-rekey-csrf="))
        .expect("csrf cookie");
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(csrf.contains(attr), "{csrf}");
    }
    assert!(!csrf.contains("Domain"), "{csrf}");
}

#[tokio::test]
async fn state_changing_posts_need_the_csrf_token() {
    let w = world(5);
    let app = app(&w);
    let cookies = format!("__Host-rekey-csrf={CSRF}");
    let (res, _) = send(&app, post("/reset", "csrf=wrong&username=normal", &cookies)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (res, _) = send(
        &app,
        post("/reset", &format!("csrf={CSRF}&username=normal"), ""),
    )
    .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no cookie, no post");
    for path in [
        "/change",
        "/enroll",
        "/reset/code",
        "/reset/password",
        "/unlock/confirm",
        "/enroll/email",
    ] {
        let (res, _) = send(&app, post(path, "csrf=x&username=a&code=1&email=a&password=b&current_password=c&new_password=d&confirm_password=d", &cookies)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(w.mails(), 0, "nothing happened");
}

#[tokio::test]
async fn only_scalar_utf8_forms_within_the_cap() {
    let w = world(5);
    let app = app(&w);
    let cookies = format!("__Host-rekey-csrf={CSRF}");
    let (res, _) = send(
        &app,
        post(
            "/reset",
            &format!("csrf={CSRF}&username=a&username=b"),
            &cookies,
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "an array where a string is expected"
    );
    let (res, _) = send(
        &app,
        post("/reset", &format!("csrf={CSRF}&username=%FF%FE"), &cookies),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "not UTF-8");
    let (res, _) = send(&app, post("/reset", &format!("csrf={CSRF}"), &cookies)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "missing field");
    let big = format!("csrf={CSRF}&username={}", "a".repeat(20 * 1024));
    let (res, _) = send(&app, post("/reset", &big, &cookies)).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(w.mails(), 0);
}

/// Identify, the first gate's code page and its answer to a wrong code are byte-for-byte alike
/// for unknown, disabled, out of scope, privileged, unenrolled, locked and normal accounts; the
/// flow lives server-side (invariants 9, 12).
#[tokio::test]
async fn identify_is_identical_for_the_seven_classes() {
    let w = rekey_core::fakes::world_with(rekey_core::engine::EngineConfig::default())
        .passkeys()
        .build();
    let app = app(&w);
    let cookies = format!("__Host-rekey-csrf={CSRF}");
    let mut pages = Vec::new();
    for who in [
        "nobody",
        "disabled",
        "outside",
        "admin",
        "unenrolled",
        "locked",
        "normal",
    ] {
        let (res, body) = identify(&app, who, &cookies).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{who}");
        assert_eq!(res.headers().get(header::LOCATION).unwrap(), "/reset/code");
        let flow = set_cookies(&res)
            .into_iter()
            .find(|c| c.starts_with("__Host-rekey-flow="))
            .unwrap();
        let id = flow
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("__Host-rekey-flow=")
            .to_owned();
        assert_eq!(id.len(), 64);
        let (page_res, page) = send(
            &app,
            get("/reset/code", &format!("{cookies}; __Host-rekey-flow={id}")),
        )
        .await;
        assert_eq!(page_res.status(), StatusCode::OK);
        assert!(
            !page.contains(who) && !page.contains(&id),
            "{who}: no name or flow id in the page"
        );
        assert!(
            page.contains("Enter the code from your authenticator app")
                && page.contains(r#"action="/reset/passkey/start""#),
            "{who}: the one first gate, with the passkey alternative: {page}"
        );
        // A wrong code: one answer for all, too.
        let (wrong_res, wrong) = send(
            &app,
            post(
                "/reset/code",
                &format!("csrf={CSRF}&code=000000"),
                &format!("{cookies}; __Host-rekey-flow={id}"),
            ),
        )
        .await;
        assert_eq!(wrong_res.status(), StatusCode::OK, "{who}");
        let headers: Vec<String> = res
            .headers()
            .iter()
            .filter(|(k, _)| *k != header::SET_COOKIE && *k != header::DATE)
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap()))
            .collect();
        pages.push((body, headers, page, wrong));
    }
    assert!(
        pages.windows(2).all(|p| p[0] == p[1]),
        "all seven answers are identical"
    );
}

#[tokio::test]
async fn reset_through_the_pages_with_rotating_flow_cookie() {
    let w = world(5);
    let app = app(&w);
    let mut cookies = format!("__Host-rekey-csrf={CSRF}");
    let flow_of = |res: &Response<Body>| {
        set_cookies(res)
            .into_iter()
            .find(|c| c.starts_with("__Host-rekey-flow=") && !c.contains("Max-Age=0"))
            .map(|c| c.split(';').next().unwrap().to_owned())
    };
    let (res, _) = identify(&app, "normal", &cookies).await;
    let first = flow_of(&res).unwrap();
    let with_first = format!("{cookies}; {first}");
    let (res, _) = send(
        &app,
        post(
            "/reset/code",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &with_first,
        ),
    )
    .await;
    assert_eq!(
        res.headers().get(header::LOCATION).unwrap(),
        "/reset/password"
    );
    let second = flow_of(&res).unwrap();
    assert_ne!(
        first, second,
        "the flow id rotates when the code is accepted"
    );
    cookies = format!("{cookies}; {second}");
    let (_, page) = send(&app, get("/reset/password", &cookies)).await;
    assert!(
        page.contains("At least 7 characters"),
        "the policy is shown"
    );
    let (_, page) = send(
        &app,
        post(
            "/reset/password",
            &format!("csrf={CSRF}&new_password=Plum-Tree-4711x&confirm_password=Plum-Tree-4711y"),
            &cookies,
        ),
    )
    .await;
    assert!(page.contains("not the same"));
    let body = format!("csrf={CSRF}&new_password=Plum-Tree-4711x&confirm_password=Plum-Tree-4711x");
    let (res, page) = send(&app, post("/reset/password", &body, &cookies)).await;
    assert!(
        page.contains("data-state=\"ok\"") && page.contains("landed"),
        "{page}"
    );
    assert!(
        set_cookies(&res)
            .iter()
            .any(|c| c.starts_with("__Host-rekey-flow=;")),
        "flow cookie cleared"
    );
    // The old cookie is dead.
    let (res, _) = send(&app, post("/reset/password", &body, &cookies)).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // The notice links to the configured public URL, whatever Host the request carried.
    let notice = w.last_mail().body.clone();
    assert!(
        notice.contains("https://localhost") && notice.contains("Not you?"),
        "{notice}"
    );
}

#[tokio::test]
async fn language_follows_the_browser_and_the_switch() {
    let w = world(5);
    let app = app(&w);
    let req = Request::get("/")
        .header(header::ACCEPT_LANGUAGE, "de-DE,de;q=0.9,en;q=0.5")
        .body(Body::empty())
        .unwrap();
    let (_, page) = send(&app, req).await;
    assert!(page.contains("lang=\"de\"") && page.contains("Passwort vergessen"));
    let (res, page) = send(&app, get("/?lang=en", "")).await;
    assert!(page.contains("lang=\"en\""));
    let lang = set_cookies(&res)
        .into_iter()
        .find(|c| c.starts_with("__Host-rekey-lang=en;"))
        .expect("language cookie");
    for attr in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=31536000",
    ] {
        assert!(lang.contains(attr), "{lang}");
    }
    assert!(!lang.contains("Domain"), "{lang}");
    // The cookie is read back, and wins over the browser's preference.
    let req = Request::get("/")
        .header(header::ACCEPT_LANGUAGE, "en")
        .header(header::COOKIE, "__Host-rekey-lang=de")
        .body(Body::empty())
        .unwrap();
    let (res, page) = send(&app, req).await;
    assert!(page.contains("lang=\"de\""), "{page}");
    assert!(
        !set_cookies(&res)
            .iter()
            .any(|c| c.starts_with("__Host-rekey-lang=")),
        "set only when chosen"
    );
}

/// Directory or mail relay down: a clear error page with a code and a support id, and the
/// failure audited — never a half-done flow (invariant 34).
#[tokio::test]
async fn failures_close_with_a_clear_page() {
    use std::sync::atomic::Ordering;
    let w = world(5);
    let app = app(&w);
    let cookies = format!("__Host-rekey-csrf={CSRF}");
    w.dir.down.store(true, Ordering::Relaxed);
    let (res, page) = identify(&app, "normal", &cookies).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.contains("RK-DIR-010") && page.contains("support-id"),
        "{page}"
    );
    assert!(
        !page.contains("no DC answered"),
        "the cause stays in the log"
    );
    assert!(
        !set_cookies(&res)
            .iter()
            .any(|c| c.starts_with("__Host-rekey-flow=") && !c.contains("Max-Age=0"))
    );
    w.dir.down.store(false, Ordering::Relaxed);
    // A relay that is down changes nothing in the answer (invariant 9): the code waits in the
    // outbox, and an unknown name gets the very same redirect.
    w.mail.1.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for who in ["normal", "nobody"] {
        let (res, page) = identify(&app, who, &cookies).await;
        answers.push((res.status(), res.headers().get("location").cloned(), page));
    }
    assert_eq!(answers[0].0, StatusCode::SEE_OTHER);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(w.mails(), 0);
    assert_eq!(
        w.store.with(|m| m.outbox.len()),
        1,
        "the code is queued, not lost"
    );
}

#[tokio::test]
async fn favicon_is_served_linked_and_allowed_by_the_csp() {
    let w = world(5);
    let app = app(&w);
    let (_, page) = send(&app, get("/", "")).await;
    assert!(
        page.contains(r#"<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">"#),
        "{page}"
    );
    for path in ["/favicon.ico", "/static/favicon.svg"] {
        let (res, body) = send(&app, get(path, "")).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = res.headers();
        assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "image/svg+xml");
        let cache = h.get(header::CACHE_CONTROL).unwrap().to_str().unwrap();
        assert!(
            cache.contains("public") && cache.contains("max-age=31536000"),
            "{cache}"
        );
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("img-src 'self'"), "{csp}");
        assert!(body.starts_with("<svg") && body.trim_end().ends_with("</svg>"));
        assert!(
            !body.contains("<script") && !body.contains("<style") && !body.contains("href"),
            "a plain image: nothing the CSP would have to block"
        );
        assert!(
            set_cookies(&res).is_empty(),
            "{path}: no cookies on the icon"
        );
    }
}

/// The flow cookie a response sets (`name=value`).
pub(crate) fn flow_cookie(res: &Response<Body>) -> String {
    set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with("__Host-rekey-flow=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("flow cookie")
}

/// POST /reset for `who` with the CSRF token and `cookies`.
pub(crate) async fn identify(
    app: &axum::Router,
    who: &str,
    cookies: &str,
) -> (Response<Body>, String) {
    send(
        app,
        post("/reset", &format!("csrf={CSRF}&username={who}"), cookies),
    )
    .await
}

/// Identify `normal` and pass the code gate; the cookies (`base` + flow) of the verified flow.
pub(crate) async fn verified_cookies(app: &axum::Router, w: &World, base: &str) -> String {
    let (res, _) = identify(app, "normal", base).await;
    let cookies = format!("{base}; {}", flow_cookie(&res));
    let (res, _) = send(
        app,
        post(
            "/reset/code",
            &format!("csrf={CSRF}&code={}", w.last_code()),
            &cookies,
        ),
    )
    .await;
    format!("{base}; {}", flow_cookie(&res))
}

/// The new-password post with `pw` typed twice.
pub(crate) fn set_password(cookies: &str, pw: &str) -> Request<Body> {
    post(
        "/reset/password",
        &format!("csrf={CSRF}&new_password={pw}&confirm_password={pw}"),
        cookies,
    )
}

/// A synced user's result page: AD landed, Microsoft 365 pending with a `<meta>` refresh and the
/// receipt in the flow cookie; once the outbox saw the arrival, `/reset/done` shows "synced
/// after N s" and stops refreshing. A cloud-only account's rules are on the password page.
#[tokio::test]
async fn the_result_page_follows_each_zone_until_it_is_final() {
    use rekey_core::landing::Plan;
    let (w, cloud) = rekey_core::fakes::cloud_world(5);
    let app = app(&w);
    let base = format!("__Host-rekey-csrf={CSRF}");
    cloud.plan(
        "normal",
        Ok(Plan::Sync {
            handle: "obj-1".into(),
        }),
    );
    let cookies = verified_cookies(&app, &w, &base).await;
    let (res, body) = send(&app, set_password(&cookies, "Brand-New-Pass-1")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        body.contains(r#"<tr data-state="landed"><td>Active Directory"#),
        "{body}"
    );
    assert!(body.contains(r#"<tr data-state="pending"><td>Microsoft 365 (Entra ID)"#));
    assert!(body.contains(r#"<meta http-equiv="refresh" content="5; url=/reset/done">"#));
    assert!(body.contains(r#"href="/reset/done""#));
    let receipt = format!("{base}; {}", flow_cookie(&res));
    // Still pending: the same page again.
    let (_, body) = send(&app, get("/reset/done", &receipt)).await;
    assert!(body.contains(r#"data-state="pending""#));
    // The hash sync ran 94 s after the write; the worker proves it.
    cloud
        .arrivals
        .lock()
        .unwrap()
        .insert("obj-1".into(), rekey_core::fakes::T0 + 94);
    w.clock
        .0
        .fetch_add(100, std::sync::atomic::Ordering::Relaxed);
    w.engine.deliver_outbox().await.unwrap();
    let (res, body) = send(&app, get("/reset/done", &receipt)).await;
    assert!(body.contains("synced after 100\u{a0}s"), "{body}");
    assert!(
        !body.contains("http-equiv=\"refresh\""),
        "final: no more refreshing"
    );
    assert!(
        set_cookies(&res)
            .iter()
            .any(|c| c.starts_with("__Host-rekey-flow=;")
                || (c.starts_with("__Host-rekey-flow=") && c.contains("Max-Age=0")))
    );
    // Without a receipt there is nothing to show but a fresh start.
    let (res, _) = send(&app, get("/reset/done", &base)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    // A cloud-only account: Entra's rules are shown before submitting.
    let (w, cloud) = rekey_core::fakes::cloud_world(5);
    let app = self::app(&w);
    cloud.write("normal");
    let cookies = verified_cookies(&app, &w, &base).await;
    let (_, body) = send(&app, get("/reset/password", &cookies)).await;
    assert!(body.contains("Microsoft 365 also needs"), "{body}");
}

/// A log writer the test can read back.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_support_id_finds_the_page_the_audit_record_and_the_log_lines() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    // Global, not `set_default`: a thread-local subscriber can miss events when other tests
    // run callsites at the same time (tracing caches callsite interest process-wide). Only this
    // test installs one; the lines are picked out by this request's support id.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let w = world(5);
    let app = app(&w);
    let cookies = format!("__Host-rekey-csrf={CSRF}");
    let form = format!(
        "csrf={CSRF}&username=normal&current_password=Not-The-One-1&new_password=Whatever-New-42&confirm_password=Whatever-New-42"
    );
    let (_, body) = send(&app, post("/change", &form, &cookies)).await;
    let id = body
        .split("Support id: ")
        .nth(1)
        .or_else(|| body.split("support id: ").nth(1))
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no support id on the page: {body}"))
        .to_owned();
    let audit = w.store.with(|m| m.audit.clone());
    let record = audit.last().unwrap();
    assert!(
        record.body.contains(&format!("\"support_id\":\"{id}\"")),
        "{}",
        record.body
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&id)).collect();
    assert!(
        lines.iter().any(|l| l.contains("\"request done\"")),
        "the request's log lines carry its support id: {text}"
    );
    assert!(
        !text.contains("Not-The-One-1") && !text.contains("Whatever-New-42"),
        "{text}"
    );
}
