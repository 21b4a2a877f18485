//! `RangeApi` against a local HTTP server that serves scripted answers and records what it saw.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code panics by design

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rekey_breach::{RangeApi, RangeOptions, SetupError};
use rekey_core::breached::{BreachError, BreachedPasswords};
use rekey_core::secret::Password;
use tokio::net::TcpListener;

const PASSWORD: &str = "P@ssw0rd";
/// SHA-1 of `PASSWORD`, upper case.
const HASH: &str = "21BD12DC183F740EE76F27B78EB39C8AD972A757";
const PREFIX: &str = "21BD1";
const SUFFIX: &str = "2DC183F740EE76F27B78EB39C8AD972A757";

/// What the server answers.
#[derive(Clone)]
enum Script {
    Body(String),
    Status(u16),
    Hang,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path_and_query: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Server {
    script: Script,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn answer(State(s): State<Server>, req: Request) -> Response {
    let seen = Seen {
        path_and_query: req
            .uri()
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("<binary>").to_owned()))
            .collect(),
    };
    s.seen.lock().unwrap().push(seen);
    match s.script {
        Script::Body(body) => (StatusCode::OK, body).into_response(),
        Script::Status(code) => (StatusCode::from_u16(code).unwrap(), "oops").into_response(),
        Script::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, format!("{SUFFIX}:1\n")).into_response()
        }
    }
}

/// Starts a server on 127.0.0.1:0; returns its base URL and the requests it saw.
async fn serve(script: Script) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new().fallback(answer).with_state(Server {
        script,
        seen: Arc::clone(&seen),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn api(base: &str, timeout: Duration) -> RangeApi {
    RangeApi::new(&RangeOptions {
        base_url: base.to_owned(),
        timeout,
        ca_file: None,
    })
    .unwrap()
}

/// A realistic padded answer around `middle` lines (HIBP's format: upper case, `:COUNT`).
fn body(middle: &[&str], eol: &str) -> String {
    let mut lines = vec![
        "0018A45C4D1DEF81644B54AB7F969B88D65:10".to_owned(),
        "00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2".to_owned(),
        "011053FD0102E94D6AE2F8B83D76FAF94F6:1".to_owned(),
    ];
    lines.extend(middle.iter().map(|s| (*s).to_owned()));
    lines.push("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:0".to_owned());
    let mut out = lines.join(eol);
    out.push_str(eol);
    out
}

async fn ask(api: &RangeApi, password: &str) -> Result<Option<u64>, BreachError> {
    api.times_seen(&Password::from(password)).await
}

/// No trace of the password or its hash beyond the prefix.
fn assert_discreet(e: &BreachError) {
    let text = format!("{e} {e:?}");
    for secret in [PASSWORD, HASH, &HASH.to_lowercase(), SUFFIX, &SUFFIX[..10]] {
        assert!(!text.contains(secret), "leaks {secret}: {text}");
    }
    assert!(text.starts_with("RK-BREACH-001"), "{text}");
}

#[tokio::test]
async fn known_password_is_found_with_the_served_count() {
    let (base, seen) = serve(Script::Body(body(&[&format!("{SUFFIX}:52579")], "\n"))).await;
    assert_eq!(
        ask(&api(&base, Duration::from_secs(2)), PASSWORD).await,
        Ok(Some(52579))
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path_and_query, format!("/range/{PREFIX}"));
    assert_eq!(seen[0].header("add-padding"), Some("true"));
    assert!(
        seen[0]
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("rekey-breach")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn only_the_five_digit_prefix_leaves_the_process() {
    let (base, seen) = serve(Script::Body(body(&[], "\n"))).await;
    let api = api(&base, Duration::from_secs(2));
    let passwords = [
        PASSWORD,
        "correct horse battery staple",
        "",
        "\u{e9}t\u{e9}",
    ];
    for p in passwords {
        assert_eq!(ask(&api, p).await, Ok(None), "{p}");
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), passwords.len());
    for s in &seen {
        let prefix = s.path_and_query.strip_prefix("/range/").unwrap();
        assert_eq!(prefix.len(), 5, "{s:?}");
        assert!(
            prefix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "{s:?}"
        );
        assert_eq!(s.header("add-padding"), Some("true"));
        let everything = format!("{s:?}");
        for secret in [PASSWORD, HASH, SUFFIX, "correct horse"] {
            assert!(!everything.contains(secret), "{everything}");
        }
    }
    assert_eq!(seen[0].path_and_query, format!("/range/{PREFIX}"));
}

#[tokio::test]
async fn a_password_not_in_the_answer_is_not_seen() {
    let other = "2DC183F740EE76F27B78EB39C8AD972A758:99";
    let (base, _) = serve(Script::Body(body(&[other], "\n"))).await;
    assert_eq!(
        ask(&api(&base, Duration::from_secs(2)), PASSWORD).await,
        Ok(None)
    );
}

#[tokio::test]
async fn padding_lines_with_count_zero_are_ignored() {
    let (base, _) = serve(Script::Body(body(&[&format!("{SUFFIX}:0")], "\n"))).await;
    assert_eq!(
        ask(&api(&base, Duration::from_secs(2)), PASSWORD).await,
        Ok(None)
    );
}

#[tokio::test]
async fn crlf_and_lower_case_answers_work() {
    let (base, _) = serve(Script::Body(body(&[&format!("{SUFFIX}:7")], "\r\n"))).await;
    assert_eq!(
        ask(&api(&base, Duration::from_secs(2)), PASSWORD).await,
        Ok(Some(7))
    );

    let lower = format!("{}:8", SUFFIX.to_lowercase());
    let (base, _) = serve(Script::Body(body(&[&lower], "\r\n"))).await;
    assert_eq!(
        ask(&api(&base, Duration::from_secs(2)), PASSWORD).await,
        Ok(Some(8))
    );
}

#[tokio::test]
async fn a_server_error_is_unavailable() {
    let (base, _) = serve(Script::Status(500)).await;
    let e = ask(&api(&base, Duration::from_secs(2)), PASSWORD)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 500"), "{e}");
    assert_discreet(&e);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (base, seen) = serve(Script::Status(302)).await;
    let e = ask(&api(&base, Duration::from_secs(2)), PASSWORD)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("HTTP 302"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unparsable_answer_is_unavailable() {
    // The password's own suffix in a broken line must not be quoted back.
    for served in [
        "<html>maintenance</html>".to_owned(),
        String::new(),
        format!("{SUFFIX}:lots\n"),
        format!("{SUFFIX}\n"),
        format!("{HASH}:3\n"),
    ] {
        let (base, _) = serve(Script::Body(served.clone())).await;
        let e = ask(&api(&base, Duration::from_secs(2)), PASSWORD)
            .await
            .unwrap_err();
        assert_discreet(&e);
        assert!(e.to_string().contains(PREFIX), "{served:?}: {e}");
    }
}

#[tokio::test]
async fn a_slow_server_is_unavailable_within_the_timeout() {
    let (base, seen) = serve(Script::Hang).await;
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let e = ask(&api(&base, timeout), PASSWORD).await.unwrap_err();
    let took = started.elapsed();
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_millis(700), "{took:?}");
    assert!(e.to_string().contains("timed out"), "{e}");
    assert_discreet(&e);
    assert_eq!(seen.lock().unwrap().len(), 1, "the server was reached");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let started = Instant::now();
    let e = ask(
        &api(&format!("http://{addr}"), Duration::from_secs(2)),
        PASSWORD,
    )
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(e.to_string().contains("connect failed"), "{e}");
    assert_discreet(&e);
}

#[test]
fn plain_http_is_refused_except_to_loopback() {
    let with = |base_url: &str| {
        RangeApi::new(&RangeOptions {
            base_url: base_url.to_owned(),
            ..RangeOptions::default()
        })
    };
    for refused in [
        "http://example.com",
        "http://api.pwnedpasswords.com",
        "http://192.168.1.1",
    ] {
        let e = with(refused).unwrap_err();
        assert!(
            matches!(
                e,
                SetupError::Config {
                    key: "breach.base_url",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().starts_with("RK-BREACH-101"), "{e}");
    }
    for accepted in [
        "https://api.pwnedpasswords.com",
        "https://example.com/",
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        assert!(with(accepted).is_ok(), "{accepted}");
    }
    let d = RangeOptions::default();
    assert_eq!(d.base_url, "https://api.pwnedpasswords.com");
    assert_eq!(d.timeout, Duration::from_secs(2));
}
