//! Proves the harness against a tiny axum app served in-process (the portal does not exist yet).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step should panic

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Form;
use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use rekey_e2e::{Browser, E2eError, Options};
use serde_json::json;

const SECS_5: Duration = Duration::from_secs(5);

#[derive(serde::Deserialize)]
struct Login {
    user: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Rekey e2e</title>\
         <style>body{{font:18px sans-serif;margin:2em}}</style></head><body>{body}</body></html>"
    ))
}

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async {
                page(
                    "<h1>Reset your password</h1>\
                     <form method=post action=/>\
                     <label for=user>Username</label> <input id=user name=user autocomplete=off> \
                     <button type=submit id=go>Continue</button> <button type=button id=plain>Plain</button>\
                     </form>",
                )
            })
            .post(|Form(login): Form<Login>| async move {
                (
                    [(
                        header::SET_COOKIE,
                        "__Host-rekey=token-123; Path=/; Secure; HttpOnly; SameSite=Strict",
                    )],
                    page(&format!(
                        "<h1>Done</h1><p id=result>Hello, {}</p>",
                        escape(&login.user)
                    )),
                )
                    .into_response()
            }),
        )
        .route(
            "/lang",
            get(|headers: HeaderMap| async move {
                let al = headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                page(&format!("<p id=al>{}</p>", escape(&al)))
            }),
        )
}

/// Serve [`app`] on 127.0.0.1:0 and return the base URL, opened as `localhost` (a secure context).
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    format!("http://localhost:{port}")
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap();
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&png[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Submit the form as `user` and check the result page.
async fn sign_in(b: &Browser, base: &str, user: &str) {
    b.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(b.text("label[for=user]").await.unwrap(), "Username");
    b.fill("#user", user).await.unwrap();
    b.submit("#go").await.unwrap();
    b.wait_for("#result", SECS_5).await.unwrap();
    assert_eq!(b.text("#result").await.unwrap(), format!("Hello, {user}"));
    assert_eq!(b.current_url().await.unwrap().path(), "/");
}

#[test]
fn browser_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Browser>();
    check::<E2eError>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_cookie_and_screenshot() {
    let base = serve().await;
    let b = Browser::start().await;
    b.goto(&format!("{base}/")).await.unwrap();
    b.fill("#user", "typed text").await.unwrap();
    let (w, _) = png_size(&b.screenshot("harness-form-filled").await.unwrap());
    assert_eq!(w, 1024);
    sign_in(&b, &base, "alice <admin>").await;
    assert!(
        b.page_source()
            .await
            .unwrap()
            .contains("Hello, alice &lt;admin&gt;")
    );

    let cookies = b.cookies().await.unwrap();
    let c = cookies.iter().find(|c| c.name == "__Host-rekey").unwrap();
    assert_eq!(c.value, "token-123");
    assert!(c.secure && c.http_only, "{c:?}");
    assert_eq!(c.same_site.as_deref(), Some("Strict"));
    assert_eq!(c.path, "/");
    assert_eq!(c.domain, "localhost");
    assert_eq!(c.expiry, None);

    let path = b.screenshot("harness form result").await.unwrap();
    assert!(
        path.ends_with("harness_form_result.png"),
        "{}",
        path.display()
    );
    let (w, h) = png_size(&path);
    assert_eq!(w, 1024);
    assert!(h > 500 && h <= 768, "height {h}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_selector_url_and_page_text() {
    let base = serve().await;
    let b = Browser::start_with(Options {
        timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    b.goto(&format!("{base}/")).await.unwrap();

    let e = b.wait_for("#nope", Duration::from_millis(200)).await;
    let msg = e.unwrap_err().to_string();
    assert!(msg.contains("`#nope`"), "{msg}");
    assert!(msg.contains(&format!("{base}/")), "{msg}");
    assert!(msg.contains("Reset your password"), "{msg}");

    // Helpers wait `Options::timeout` for their element.
    let msg = b.click("#missing").await.unwrap_err().to_string();
    assert!(
        msg.contains("timed out after 300ms waiting for `#missing`"),
        "{msg}"
    );

    let e = b.submit("#plain").await.unwrap_err();
    assert!(matches!(e, E2eError::Unexpected { .. }), "{e}");
    assert!(e.to_string().contains("`#plain`"), "{e}");

    let e = b.text("##bad").await.unwrap_err().to_string();
    assert!(e.contains("`##bad`"), "{e}");
    assert!(!b.exists("#nope").await.unwrap());
    assert!(b.exists("#go").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_and_window_size() {
    let base = serve().await;
    let b = Browser::start_with(Options {
        lang: "de-DE",
        width: 320,
        ..Options::default()
    })
    .await;
    b.goto(&format!("{base}/lang")).await.unwrap();
    let al = b.text("#al").await.unwrap();
    assert!(al.starts_with("de-DE"), "Accept-Language: {al}");
    let c = b.client();
    let nav = c
        .execute("return navigator.language", vec![])
        .await
        .unwrap();
    assert_eq!(nav, json!("de-DE"));
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(320));
    let (w, h) = png_size(&b.screenshot("harness-phone").await.unwrap());
    assert_eq!((w, h), (320, 768));
    // The emulated width stays across navigations.
    b.goto(&format!("{base}/")).await.unwrap();
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(320));

    b.set_window_size(800, 600).await.unwrap();
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(800));
    b.set_window_size(360, 640).await.unwrap();
    let width = c.execute("return window.innerWidth", vec![]).await.unwrap();
    assert_eq!(width, json!(360));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_in_parallel() {
    let base = serve().await;
    let (a, b) = tokio::join!(Browser::start(), Browser::start());
    assert_ne!(a.pgid(), b.pgid());
    assert_ne!(a.temp_dir(), b.temp_dir());
    tokio::join!(sign_in(&a, &base, "alice"), sign_in(&b, &base, "bob"));
    // Separate profiles: each has only its own cookie jar.
    assert_eq!(a.cookies().await.unwrap().len(), 1);
    assert_eq!(b.text("#result").await.unwrap(), "Hello, bob");
}

/// Processes that are really running (zombies excluded) and belong to process group `pgid`
/// or mention `needle` on their command line.
fn live_processes(pgid: u32, needle: &Path) -> Vec<String> {
    let needle = needle.to_str().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After "pid (comm)": state, ppid, pgrp, ...
        if fields.len() < 3 || fields[0] == "Z" || fields[0] == "X" {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if fields[2] == pgid.to_string() || cmdline.contains(needle) {
            found.push(format!("{head}) {} {cmdline}", fields[0]));
        }
    }
    found
}

#[test]
fn panicking_test_leaves_no_chromium() {
    let (tx, rx) = std::sync::mpsc::channel::<(u32, PathBuf, usize)>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let base = serve().await;
            let b = Browser::start().await;
            b.goto(&format!("{base}/")).await.unwrap();
            let running = live_processes(b.pgid(), b.temp_dir()).len();
            tx.send((b.pgid(), b.temp_dir().to_owned(), running))
                .unwrap();
            panic!("deliberate panic with a live browser");
        })
    });
    assert!(thread.join().is_err(), "the thread should have panicked");
    let (pgid, tmp, running) = rx.recv().unwrap();
    // chromedriver + several Chromium processes were running before the panic.
    assert!(running >= 3, "only {running} processes before the panic");

    // Drop ran during unwinding: the group is SIGKILLed (zombies may linger until reaped).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live_processes(pgid, &tmp);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leaked processes:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!tmp.exists(), "{} left behind", tmp.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_authenticator_creates_a_passkey() {
    let base = serve().await;
    let b = Browser::start().await;
    let aid = b.add_virtual_authenticator().await.unwrap();
    b.goto(&format!("{base}/")).await.unwrap();
    let create = r#"
        const done = arguments[arguments.length - 1];
        navigator.credentials.create({ publicKey: {
            rp: { id: 'localhost', name: 'Rekey' },
            user: { id: new Uint8Array([1, 2, 3, 4]), name: 'alice', displayName: 'Alice' },
            challenge: new Uint8Array(32),
            pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
            authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
            extensions: { credProps: true },
            timeout: 3000,
        }}).then(c => done({ ok: true, rk: c.getClientExtensionResults().credProps.rk }),
                 e => done({ ok: false, error: e.name + ': ' + e.message }));
    "#;
    let r = b.client().execute_async(create, vec![]).await.unwrap();
    assert_eq!(r, json!({ "ok": true, "rk": true }));

    let creds = b.authenticator_credentials(&aid).await.unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["rpId"], json!("localhost"));
    assert_eq!(creds[0]["isResidentCredential"], json!(true));

    // Failing user verification rejects at once.
    b.set_user_verified(&aid, false).await.unwrap();
    let get = r#"
        const done = arguments[arguments.length - 1];
        navigator.credentials.get({ publicKey: {
            challenge: new Uint8Array(32), rpId: 'localhost',
            userVerification: 'required', timeout: 3000,
        }}).then(() => done('ok'), e => done(e.name));
    "#;
    let started = Instant::now();
    let r = b.client().execute_async(get, vec![]).await.unwrap();
    assert_eq!(r, json!("NotAllowedError"));
    assert!(started.elapsed() < Duration::from_secs(2));
    b.remove_virtual_authenticator(&aid).await.unwrap();
}
