use rekey_core::store::Store;

use crate::race;
use crate::support::{self, NOW, TestDb, challenge, flow, guid};

both!(
    put_challenge_replaces_the_old_code,
    challenge_expires,
    fail_challenge_counts_atomically,
    consume_challenge_succeeds_exactly_once,
);

async fn put_challenge_replaces_the_old_code(db: TestDb) {
    let s = db.store().await;
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    let old = challenge("c-old", "f1", "reset:email", NOW + 300);
    s.put_challenge(&old).await.unwrap();
    assert_eq!(s.fail_challenge("c-old").await.unwrap(), 1);

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
    assert_eq!(s.fail_challenge("c-old").await.unwrap(), u32::MAX);
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
        async move { s.fail_challenge("c1").await.unwrap() }
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
    // A challenge that is gone counts as exhausted.
    assert_eq!(s.fail_challenge("missing").await.unwrap(), u32::MAX);
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
