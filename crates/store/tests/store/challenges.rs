use rekey_core::store::StoreError;

use crate::race;
use crate::support::{self, NOW, TestDb, challenge, flow, guid};

contract!(
    put_challenge_replaces_the_old_code,
    put_challenge_needs_its_flow_and_a_fresh_id,
    challenge_expires,
    fail_challenge_counts_atomically,
    gone_challenge_fails_as_none,
    consume_challenge_succeeds_exactly_once,
);

async fn put_challenge_replaces_the_old_code(db: TestDb) {
    let s = db.store().await;
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    let old = challenge("c-old", "f1", "reset:email", NOW + 300);
    s.put_challenge(&old).await.unwrap();
    assert_eq!(s.fail_challenge("c-old").await.unwrap(), Some(1));

    // Another purpose of the same flow is a separate challenge.
    let enroll = challenge("c-enroll", "f1", "enroll:email", NOW + 300);
    s.put_challenge(&enroll).await.unwrap();

    let new = challenge("c-new", "f1", "reset:email", NOW + 400);
    s.put_challenge(&new).await.unwrap();
    assert_eq!(
        s.challenge("f1", "reset:email", NOW).await.unwrap(),
        Some(new.clone())
    );
    // The old code stops working: its id neither fails nor consumes anything.
    assert_eq!(s.fail_challenge("c-old").await.unwrap(), None);
    assert!(!s.consume_challenge("c-old").await.unwrap());
    assert_eq!(
        s.challenge("f1", "reset:email", NOW).await.unwrap(),
        Some(new)
    );
    assert_eq!(
        s.challenge("f1", "enroll:email", NOW).await.unwrap(),
        Some(enroll)
    );
}

async fn challenge_expires(db: TestDb) {
    let s = db.store().await;
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    let c = challenge("c1", "f1", "reset:email", NOW + 300);
    s.put_challenge(&c).await.unwrap();
    assert_eq!(
        s.challenge("f1", "reset:email", NOW + 299).await.unwrap(),
        Some(c)
    );
    assert_eq!(
        s.challenge("f1", "reset:email", NOW + 300).await.unwrap(),
        None
    );
    assert_eq!(s.challenge("f1", "other", NOW).await.unwrap(), None);
    assert_eq!(s.challenge("f2", "reset:email", NOW).await.unwrap(), None);
    // Expired is not gone: a failure still counts until the challenge is consumed or purged.
    assert_eq!(s.fail_challenge("c1").await.unwrap(), Some(1));
    assert!(s.consume_challenge("c1").await.unwrap());
}

async fn fail_challenge_counts_atomically(db: TestDb) {
    let s = db.store().await;
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    s.put_challenge(&challenge("c1", "f1", "reset:email", NOW + 300))
        .await
        .unwrap();
    let mut counts = race(30, |_| {
        let s = s.clone();
        async move { s.fail_challenge("c1").await.unwrap().unwrap() }
    })
    .await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=30).collect::<Vec<u32>>());
    let stored = s
        .challenge("f1", "reset:email", NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.failed_attempts, 30);
}

/// A gone challenge (never there, consumed, replaced, deleted with its flow) fails as `None` on
/// every store; the fake used to count on.
async fn gone_challenge_fails_as_none(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.fail_challenge("missing").await.unwrap(), None);
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    s.put_challenge(&challenge("c1", "f1", "reset:email", NOW + 300))
        .await
        .unwrap();
    assert!(s.consume_challenge("c1").await.unwrap());
    assert_eq!(s.fail_challenge("c1").await.unwrap(), None);

    s.put_challenge(&challenge("c2", "f1", "reset:email", NOW + 300))
        .await
        .unwrap();
    assert!(s.delete_flow("f1").await.unwrap());
    assert_eq!(s.fail_challenge("c2").await.unwrap(), None);
    assert!(!s.consume_challenge("c2").await.unwrap());
}

async fn put_challenge_needs_its_flow_and_a_fresh_id(db: TestDb) {
    let s = db.store().await;
    let orphan = s
        .put_challenge(&challenge("c1", "no-flow", "reset:email", NOW + 300))
        .await;
    assert!(matches!(orphan, Err(StoreError::Database(_))), "{orphan:?}");

    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    s.insert_flow(&flow("f2", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    let c1 = challenge("c1", "f1", "reset:email", NOW + 300);
    s.put_challenge(&c1).await.unwrap();
    // The same id for another flow or purpose is refused and changes nothing.
    for (flow_id, purpose) in [("f2", "reset:email"), ("f1", "enroll:email")] {
        let taken = s
            .put_challenge(&challenge("c1", flow_id, purpose, NOW + 300))
            .await;
        assert!(matches!(taken, Err(StoreError::Database(_))), "{taken:?}");
        assert_eq!(s.challenge(flow_id, purpose, NOW).await.unwrap(), None);
    }
    // The same id for the same flow and purpose replaces it (a resend may keep the id).
    let mut again = c1.clone();
    again.code_hash = b"new".to_vec();
    s.put_challenge(&again).await.unwrap();
    assert_eq!(
        s.challenge("f1", "reset:email", NOW).await.unwrap(),
        Some(again)
    );
}

async fn consume_challenge_succeeds_exactly_once(db: TestDb) {
    let s = db.store().await;
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    s.put_challenge(&challenge("c1", "f1", "reset:email", NOW + 300))
        .await
        .unwrap();
    let results = race(30, |_| {
        let s = s.clone();
        async move { s.consume_challenge("c1").await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&won| won).count(), 1);
    assert_eq!(s.challenge("f1", "reset:email", NOW).await.unwrap(), None);
}
