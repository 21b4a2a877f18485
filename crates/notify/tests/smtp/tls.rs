//! STARTTLS and SMTPS against the sink, with a CA made for the test.

use rekey_core::notify::{Mailer, NotifyError};
use rekey_notify::SmtpMailer;
use rekey_notify::testing::SmtpSink;

use super::{WAIT, email};

#[tokio::test]
async fn starttls_delivers_with_the_configured_ca() {
    let sink = SmtpSink::start_starttls();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    mailer
        .send(&email("ivan@corp.example.com", "über TLS", "code 314159 ✓"))
        .await
        .unwrap();
    let mail = sink.wait_for("ivan@corp.example.com", WAIT).await;
    assert_eq!(mail.subject, "über TLS");
    assert_eq!(mail.body.trim_end(), "code 314159 ✓");
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let sink = SmtpSink::start_smtps();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    mailer
        .send(&email("judy@corp.example.com", "smtps", "code 161803"))
        .await
        .unwrap();
    assert!(
        sink.wait_for("judy@corp.example.com", WAIT)
            .await
            .body
            .contains("161803")
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_unavailable_and_nothing_is_sent() {
    let sink = SmtpSink::start_starttls();
    let other = SmtpSink::start_starttls();
    let mut config = sink.mailer_config();
    config.ca_file = other.ca_file().map(Into::into);
    let mailer = SmtpMailer::new(&config).unwrap();
    match mailer.send(&email("ken@corp.example.com", "x", "x")).await {
        Err(NotifyError::Unavailable(why)) => assert!(
            why.contains("tls") || why.contains("TLS") || why.contains("certificate"),
            "{why}"
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn a_relay_without_starttls_is_unavailable_not_a_downgrade() {
    let plain = SmtpSink::start();
    let tls_sink = SmtpSink::start_starttls();
    let mut config = tls_sink.mailer_config();
    config.port = Some(plain.port());
    let mailer = SmtpMailer::new(&config).unwrap();
    match mailer.send(&email("leo@corp.example.com", "x", "x")).await {
        Err(NotifyError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(plain.messages().is_empty());
}

#[tokio::test]
async fn the_ca_file_must_hold_a_certificate() {
    let sink = SmtpSink::start_starttls();
    let mut config = sink.mailer_config();
    let empty = sink.maildir().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    config.ca_file = Some(empty);
    let err = SmtpMailer::new(&config).unwrap_err().to_string();
    assert!(err.contains("smtp.ca_file"), "{err}");
    config.ca_file = Some("/nonexistent/ca.pem".into());
    let err = SmtpMailer::new(&config).unwrap_err().to_string();
    assert!(
        err.contains("smtp.ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn smtp_auth_after_starttls_logs_in_and_a_wrong_login_is_refused() {
    let sink = SmtpSink::start_starttls_with_login("svc-rekey", "correct horse");
    let file = sink.maildir().with_file_name("smtp.pass");
    let mut config = sink.mailer_config();
    config.username = Some("svc-rekey".into());
    config.password_file = Some(file.clone());

    std::fs::write(&file, "correct horse\n").unwrap();
    let mailer = SmtpMailer::new(&config).unwrap();
    mailer.probe().await.unwrap();
    mailer
        .send(&email("mallory@corp.example.com", "auth", "code 141421"))
        .await
        .unwrap();
    assert_eq!(
        sink.wait_for("mallory@corp.example.com", WAIT)
            .await
            .subject,
        "auth"
    );

    std::fs::write(&file, "wrong horse\n").unwrap();
    let mailer = SmtpMailer::new(&config).unwrap();
    match mailer.probe().await {
        Err(NotifyError::Refused(why)) => assert!(why.contains("535"), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    match mailer.send(&email("niaj@corp.example.com", "x", "x")).await {
        Err(NotifyError::Refused(why)) => assert!(why.contains("535"), "{why}"),
        other => panic!("expected Refused, got {other:?}"),
    }
    // Without a login the relay takes no mail either.
    config.username = None;
    config.password_file = None;
    let mailer = SmtpMailer::new(&config).unwrap();
    assert!(matches!(
        mailer
            .send(&email("olivia@corp.example.com", "x", "x"))
            .await,
        Err(NotifyError::Refused(_))
    ));
    assert_eq!(sink.messages().len(), 1);
}
