//! The mailer's own connection pool: one connection for mails in a row (in every TLS mode), a
//! timeout retires every pooled connection, a connection from a runtime that is gone is replaced.
//! The sink's `X-Peer` header (the client's address and port) tells connections apart.

use std::collections::HashSet;

use rekey_core::notify::{Mailer, NotifyError};
use rekey_notify::SmtpMailer;
use rekey_notify::testing::SmtpSink;

use super::{WAIT, email};

async fn peer_of(sink: &SmtpSink, to: &str) -> String {
    let mail = sink.wait_for(to, WAIT).await;
    mail.header("X-Peer").unwrap().to_owned()
}

#[tokio::test]
async fn sequential_mails_reuse_one_connection() {
    for (mode, sink) in [
        ("plain", SmtpSink::start()),
        ("starttls", SmtpSink::start_starttls()),
        ("tls", SmtpSink::start_smtps()),
    ] {
        let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
        let mut peers = HashSet::new();
        for i in 0..3 {
            let to = format!("pooled{i}@corp.example.com");
            mailer.send(&email(&to, "pooled", "x")).await.unwrap();
            peers.insert(peer_of(&sink, &to).await);
        }
        assert_eq!(
            peers.len(),
            1,
            "{mode}: one client port expected: {peers:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_retires_every_pooled_connection() {
    let sink = SmtpSink::start();
    let mut config = sink.mailer_config();
    config.timeout_ms = 1_500;
    let mailer = SmtpMailer::new(&config).unwrap();
    // Two mails at once, each recipient answered after 300 ms: two connections, both parked.
    let (a, b) = (
        email("slow300-a@corp.example.com", "a", "x"),
        email("slow300-b@corp.example.com", "b", "x"),
    );
    let (a, b) = tokio::join!(mailer.send(&a), mailer.send(&b));
    a.unwrap();
    b.unwrap();
    let parked: HashSet<String> = [
        peer_of(&sink, "slow300-a@corp.example.com").await,
        peer_of(&sink, "slow300-b@corp.example.com").await,
    ]
    .into();
    assert_eq!(parked.len(), 2, "two connections expected: {parked:?}");

    match mailer
        .send(&email("slow4000-c@corp.example.com", "c", "x"))
        .await
    {
        Err(NotifyError::Unavailable(why)) => assert!(why.contains("1500 ms"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Neither the timed-out connection nor the one that idled meanwhile is used again.
    mailer
        .send(&email("after@corp.example.com", "after", "x"))
        .await
        .unwrap();
    let after = peer_of(&sink, "after@corp.example.com").await;
    assert!(!parked.contains(&after), "{after} was retired: {parked:?}");
    // And the fresh connection is pooled in its turn.
    mailer
        .send(&email("again@corp.example.com", "again", "x"))
        .await
        .unwrap();
    assert_eq!(peer_of(&sink, "again@corp.example.com").await, after);
    assert_eq!(
        sink.messages().len(),
        4,
        "the timed-out mail was not accepted"
    );
}

#[test]
fn a_mailer_outlives_the_runtime_of_its_connections() {
    let sink = SmtpSink::start();
    let mailer = SmtpMailer::new(&sink.mailer_config()).unwrap();
    let mut peers = Vec::new();
    for round in 0..2 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let to = format!("round{round}@corp.example.com");
        runtime.block_on(async {
            mailer.send(&email(&to, "x", "x")).await.unwrap();
            peers.push(peer_of(&sink, &to).await);
        });
        drop(runtime);
    }
    // The connection parked by the first runtime is dead in the second: replaced, not an error.
    assert_ne!(peers[0], peers[1]);
    drop(mailer);
}
