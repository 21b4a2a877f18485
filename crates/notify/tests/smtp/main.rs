//! `SmtpMailer` against a real SMTP server (aiosmtpd, see `rekey_notify::testing`): what the relay
//! stores is read back from its Maildir.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic by design

mod pool;
mod relay;
mod tls;

use std::time::{Duration, Instant};

use rekey_core::notify::{Email, Mailer, NotifyError};
use rekey_notify::testing::SmtpSink;
use rekey_notify::{SmtpConfig, SmtpMailer, TlsMode};

const WAIT: Duration = Duration::from_secs(10);

fn email(to: &str, subject: &str, body: &str) -> Email {
    Email {
        to: to.into(),
        subject: subject.into(),
        body: body.into(),
    }
}

/// A plaintext mailer for a port on 127.0.0.1 where nothing (or a silent fake) listens.
fn mailer_for_port(port: u16, timeout_ms: u64) -> SmtpMailer {
    let mut config = SmtpConfig::new("127.0.0.1", "Rekey <rekey@corp.example.com>");
    config.tls = TlsMode::None;
    config.port = Some(port);
    config.timeout_ms = timeout_ms;
    SmtpMailer::new(&config).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn delivers_utf8_text_with_the_headers() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    let body = "Grüße – ✓\n\nYour Rekey code: 493817\nIt expires in 10 minutes.\n";
    mailer
        .send(&email(
            "alice.adams@corp.example.com",
            "Ihr Code – Grüße ✓",
            body,
        ))
        .await
        .unwrap();

    let mail = sink.wait_for("alice.adams@corp.example.com", WAIT).await;
    assert_eq!(mail.subject, "Ihr Code – Grüße ✓");
    assert_eq!(mail.body.trim_end(), body.trim_end());
    assert!(mail.body.contains("493817"));
    assert_eq!(mail.to, "alice.adams@corp.example.com");
    assert_eq!(mail.envelope_to, ["alice.adams@corp.example.com"]);
    assert_eq!(mail.from, "rekey@corp.example.com");
    assert_eq!(mail.header("From"), Some("Rekey <rekey@corp.example.com>"));
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(mail.header("X-Auto-Response-Suppress"), Some("All"));
    assert_eq!(
        mail.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(mail.header("MIME-Version"), Some("1.0"));
    let date = mail.header("Date").unwrap();
    assert!(date.ends_with("+0000"), "{date}");
    let id = mail.header("Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with(".rekey@corp.example.com>"),
        "{id}"
    );
    // Non-ASCII travels encoded; the subject as an RFC 2047 word.
    assert!(mail.raw.is_ascii(), "{}", mail.raw);
    assert!(!mail.raw.contains("Grüße"));
}

#[tokio::test]
async fn long_lines_keep_the_code_intact() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    // Quoted-printable breaks lines at 76 characters: the code straddles such a break.
    let body = format!("{}é 271828 {}\n", "x".repeat(70), "ü".repeat(200));
    mailer
        .send(&email("bob.baker@corp.example.com", "Code", &body))
        .await
        .unwrap();
    let mail = sink.wait_for("bob.baker@corp.example.com", WAIT).await;
    assert_eq!(mail.body.trim_end(), body.trim_end());
    assert!(mail.body.contains("é 271828 ü"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_mails_reuse_the_pool_and_all_arrive() {
    let sink = SmtpSink::start();
    let mailer = std::sync::Arc::new(SmtpMailer::new(&sink.mailer_config()).unwrap());
    for i in 0..3 {
        let to = format!("seq{i}@corp.example.com");
        mailer
            .send(&email(&to, &format!("seq {i}"), "x"))
            .await
            .unwrap();
    }
    let sends = (0..8).map(|i| {
        let mailer = std::sync::Arc::clone(&mailer);
        tokio::spawn(async move {
            let to = format!("user{i}@corp.example.com");
            mailer.send(&email(&to, &format!("hello {i}"), "x")).await
        })
    });
    for send in sends.collect::<Vec<_>>() {
        send.await.unwrap().unwrap();
    }
    for i in 0..3 {
        let mail = sink
            .wait_for(&format!("seq{i}@corp.example.com"), WAIT)
            .await;
        assert_eq!(mail.subject, format!("seq {i}"));
    }
    for i in 0..8 {
        let mail = sink
            .wait_for(&format!("user{i}@corp.example.com"), WAIT)
            .await;
        assert_eq!(mail.subject, format!("hello {i}"));
    }
    assert_eq!(sink.messages().len(), 11);
}

#[tokio::test]
async fn wait_for_returns_each_mail_once() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    let to = "carol@corp.example.com";
    mailer.send(&email(to, "first", "1")).await.unwrap();
    mailer.send(&email(to, "second", "2")).await.unwrap();
    let first = sink.wait_for(to, WAIT).await;
    let second = sink.wait_for(to, WAIT).await;
    assert_eq!(
        (first.subject.as_str(), second.subject.as_str()),
        ("first", "second")
    );
    assert_ne!(first.id, second.id);
    // Recipients compare case-insensitively.
    mailer
        .send(&email("Carol@Corp.Example.com", "third", "3"))
        .await
        .unwrap();
    assert_eq!(sink.wait_for(to, WAIT).await.subject, "third");
}

#[tokio::test]
async fn rejected_recipient_is_refused_and_the_next_mail_still_goes() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    match mailer
        .send(&email("reject-me@corp.example.com", "x", "x"))
        .await
    {
        Err(NotifyError::Refused(why)) => assert!(why.contains("550"), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    mailer
        .send(&email("dave@corp.example.com", "after", "x"))
        .await
        .unwrap();
    assert_eq!(
        sink.wait_for("dave@corp.example.com", WAIT).await.subject,
        "after"
    );
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn temporary_failure_is_unavailable() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    match mailer
        .send(&email("tempfail-x@corp.example.com", "x", "x"))
        .await
    {
        Err(NotifyError::Unavailable(why)) => assert!(why.contains("451"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn relay_down_is_unavailable() {
    let mailer = mailer_for_port(free_port(), 2_000);
    let started = Instant::now();
    match mailer.send(&email("erin@corp.example.com", "x", "x")).await {
        Err(NotifyError::Unavailable(why)) => {
            assert!(why.to_lowercase().contains("connect"), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn silent_relay_hits_the_deadline_as_unavailable() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mailer = mailer_for_port(port, 400);
    for _ in 0..2 {
        let started = Instant::now();
        match mailer
            .send(&email("frank@corp.example.com", "x", "x"))
            .await
        {
            Err(NotifyError::Unavailable(why)) => assert!(why.contains("400 ms"), "{why}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }
}

#[tokio::test]
async fn bad_address_fails_before_any_connection() {
    let mailer = mailer_for_port(free_port(), 2_000);
    for to in [
        "",
        "not-an-address",
        "a@b.example, c@d.example",
        "x@y.example\r\nBcc: e@f.example",
    ] {
        match mailer.send(&email(to, "x", "x")).await {
            Err(NotifyError::Address(_)) => {}
            other => panic!("{to:?}: expected Address, got {other:?}"),
        }
    }
}

#[test]
fn mailer_outlives_its_runtime_without_panicking() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(mailer.send(&email("grace@corp.example.com", "x", "x")))
        .unwrap();
    drop(runtime);
    // The pool's drop spawns onto a runtime that is gone: must not panic.
    drop(mailer);
    assert_eq!(
        sink.wait_for_blocking("grace@corp.example.com", WAIT)
            .subject,
        "x"
    );
}

#[test]
fn send_outside_a_runtime_is_unavailable() {
    let mailer = mailer_for_port(free_port(), 1_000);
    let mail = email("heidi@corp.example.com", "x", "x");
    let mut send = mailer.send(&mail);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match send.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(NotifyError::Unavailable(why))) => {
            assert!(why.contains("Tokio"), "{why}");
        }
        other => panic!("expected Unavailable at once, got {other:?}"),
    }
}
