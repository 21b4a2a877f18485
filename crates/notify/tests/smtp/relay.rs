//! The sink as a relay in trouble (`Relay`): slow answers, every recipient failing for a while or
//! for good — what the outbox and the equal-answer tests run against.

use std::time::{Duration, Instant};

use rekey_core::notify::{Mailer, NotifyError};
use rekey_notify::SmtpMailer;
use rekey_notify::testing::{Relay, SmtpSink};

use super::{WAIT, email};

#[tokio::test]
async fn slow_relay_answers_each_message_late_and_still_delivers() {
    let delay = Duration::from_millis(1_500);
    let sink = SmtpSink::start_slow(delay);
    assert_eq!(sink.relay(), Relay::SlowData(delay));
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    for i in 0..2 {
        let to = format!("slow{i}@corp.example.com");
        let started = Instant::now();
        mailer.send(&email(&to, "slow", "x")).await.unwrap();
        let took = started.elapsed();
        println!("slow relay: send {i} took {took:?}");
        assert!(
            took >= delay && took < delay + Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(sink.wait_for(&to, WAIT).await.subject, "slow");
    }
}

#[tokio::test]
async fn slow_recipient_answers_delay_the_send() {
    let delay = Duration::from_millis(800);
    let sink = SmtpSink::start_relay(Relay::SlowRcpt(delay));
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    let started = Instant::now();
    mailer
        .send(&email("rcpt@corp.example.com", "late rcpt", "x"))
        .await
        .unwrap();
    let took = started.elapsed();
    println!("slow RCPT: send took {took:?}");
    assert!(
        took >= delay && took < delay + Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        sink.wait_for("rcpt@corp.example.com", WAIT).await.subject,
        "late rcpt"
    );
}

#[tokio::test]
async fn relay_slower_than_the_mailer_timeout_is_unavailable() {
    let sink = SmtpSink::start_slow(Duration::from_secs(3));
    let mut config = sink.mailer_config();
    config.timeout_ms = 500;
    let mailer = SmtpMailer::new(&config).unwrap();
    let started = Instant::now();
    match mailer.send(&email("late@corp.example.com", "x", "x")).await {
        Err(NotifyError::Unavailable(why)) => assert!(why.contains("500 ms"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn tempfail_relay_refuses_every_recipient_for_now() {
    let sink = SmtpSink::start_tempfail();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    for to in ["alice@corp.example.com", "bob@home.example"] {
        match mailer.send(&email(to, "x", "x")).await {
            Err(NotifyError::Unavailable(why)) => {
                assert!(why.contains("451") && why.contains("4.3.0"), "{why}");
            }
            other => panic!("{to}: expected Unavailable, got {other:?}"),
        }
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn permfail_relay_refuses_every_recipient_for_good() {
    let sink = SmtpSink::start_permfail();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    for to in ["alice@corp.example.com", "bob@home.example"] {
        match mailer.send(&email(to, "x", "x")).await {
            Err(NotifyError::Refused(why)) => {
                assert!(why.contains("554") && why.contains("5.7.1"), "{why}");
            }
            other => panic!("{to}: expected Refused, got {other:?}"),
        }
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn the_default_relay_is_healthy() {
    let sink = SmtpSink::start();
    assert_eq!(sink.relay(), Relay::Healthy);
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    let started = Instant::now();
    mailer
        .send(&email("quick@corp.example.com", "quick", "x"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        sink.wait_for("quick@corp.example.com", WAIT).await.subject,
        "quick"
    );
}
