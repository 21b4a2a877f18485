use rekey_core::fakes::MemStore;
use rekey_core::store::Store;
use rekey_store::RATE_EVENT_RETENTION;

use crate::race;
use crate::support::{self, NOW, TestDb, challenge, flow, guid, outbox_item};

contract!(
    hit_counts_events_in_the_window,
    hit_is_atomic_across_replicas,
    hit_prunes_old_events_of_its_key,
    lock_keeps_the_later_until,
);
both!(purge_expired_removes_only_the_dead);

async fn hit_counts_events_in_the_window(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.hits("ip:1", NOW, 60).await.unwrap(), 0);
    assert_eq!(s.hit("ip:1", NOW, 60).await.unwrap(), 1);
    assert_eq!(s.hit("ip:1", NOW, 60).await.unwrap(), 2);
    assert_eq!(s.hit("ip:1", NOW + 30, 60).await.unwrap(), 3);
    assert_eq!(s.hit("ip:2", NOW + 30, 60).await.unwrap(), 1);
    // (now - window, now]: the events at NOW leave the window at NOW + 60.
    assert_eq!(s.hits("ip:1", NOW + 59, 60).await.unwrap(), 3);
    assert_eq!(s.hits("ip:1", NOW + 60, 60).await.unwrap(), 1);
    assert_eq!(s.hit("ip:1", NOW + 60, 60).await.unwrap(), 2);
    // Events after `now` are not counted; `hits` records nothing.
    assert_eq!(s.hits("ip:1", NOW + 29, 60).await.unwrap(), 2);
    assert_eq!(s.hits("ip:1", NOW + 60, 3600).await.unwrap(), 4);
    assert_eq!(s.hits("ip:1", NOW + 60, 3600).await.unwrap(), 4);
}

async fn hit_is_atomic_across_replicas(db: TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    let mut counts = race(30, |i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.hit("user:alice", NOW, 300).await.unwrap() }
    })
    .await;
    counts.sort_unstable();
    // Every caller saw a different count: no two could both pass a limit of n.
    assert_eq!(counts, (1..=30).collect::<Vec<u32>>());
    assert_eq!(a.hits("user:alice", NOW, 300).await.unwrap(), 30);
    assert_eq!(b.hits("user:alice", NOW, 300).await.unwrap(), 30);
}

async fn hit_prunes_old_events_of_its_key(db: TestDb) {
    assert_eq!(MemStore::RATE_EVENT_RETENTION, RATE_EVENT_RETENTION);
    let s = db.store().await;
    s.hit("k", NOW, 60).await.unwrap();
    s.hit("other", NOW, 60).await.unwrap();
    let later = NOW + RATE_EVENT_RETENTION + 1;
    let forever = 2 * RATE_EVENT_RETENTION;
    assert_eq!(s.hits("k", later, forever).await.unwrap(), 1);
    assert_eq!(s.hit("k", later, 60).await.unwrap(), 1);
    // The old event of "k" is gone; "other" was not touched.
    assert_eq!(s.hits("k", later, forever).await.unwrap(), 1);
    assert_eq!(s.hits("other", later, forever).await.unwrap(), 1);
    // A window longer than the retention keeps its events.
    s.hit("long", NOW, forever).await.unwrap();
    assert_eq!(s.hit("long", later, forever).await.unwrap(), 2);
}

async fn lock_keeps_the_later_until(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.locked_until("user:alice", NOW).await.unwrap(), None);
    s.lock("user:alice", NOW + 900).await.unwrap();
    assert_eq!(
        s.locked_until("user:alice", NOW).await.unwrap(),
        Some(NOW + 900)
    );
    s.lock("user:alice", NOW + 300).await.unwrap();
    assert_eq!(
        s.locked_until("user:alice", NOW).await.unwrap(),
        Some(NOW + 900)
    );
    s.lock("user:alice", NOW + 1200).await.unwrap();
    assert_eq!(
        s.locked_until("user:alice", NOW + 1199).await.unwrap(),
        Some(NOW + 1200)
    );
    assert_eq!(
        s.locked_until("user:alice", NOW + 1200).await.unwrap(),
        None
    );
    assert_eq!(s.locked_until("user:bob", NOW).await.unwrap(), None);
    // Seen by another replica too.
    let other = db.store().await;
    assert_eq!(
        other.locked_until("user:alice", NOW).await.unwrap(),
        Some(NOW + 1200)
    );
}

async fn purge_expired_removes_only_the_dead(db: TestDb) {
    let s = db.sql().await;
    s.insert_flow(&flow("dead", Some(guid(1)), NOW))
        .await
        .unwrap();
    s.insert_flow(&flow("live", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    s.put_challenge(&challenge("c-dead-flow", "dead", "reset:email", NOW + 300))
        .await
        .unwrap();
    s.put_challenge(&challenge("c-dead", "live", "reset:email", NOW))
        .await
        .unwrap();
    s.put_challenge(&challenge("c-live", "live", "enroll:email", NOW + 300))
        .await
        .unwrap();
    s.lock("dead", NOW).await.unwrap();
    s.lock("live", NOW + 1).await.unwrap();
    s.hit("old", NOW - RATE_EVENT_RETENTION, 60).await.unwrap();
    s.hit("recent", NOW - 1, 60).await.unwrap();
    let mut expired = outbox_item("o-expired", NOW - 700);
    expired.expires_at = NOW - 1;
    s.enqueue(&expired).await.unwrap();

    // flow "dead" (+ its challenge by cascade, not counted), challenge "c-dead", lock "dead",
    // event "old".
    assert_eq!(s.purge_expired(NOW).await.unwrap(), 4);
    assert!(!s.consume_challenge("c-dead-flow").await.unwrap());
    assert!(!s.consume_challenge("c-dead").await.unwrap());
    assert!(s.flow("live", NOW).await.unwrap().is_some());
    assert!(
        s.challenge("live", "enroll:email", NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.locked_until("live", NOW).await.unwrap(), Some(NOW + 1));
    let forever = 4 * RATE_EVENT_RETENTION;
    assert_eq!(s.hits("old", NOW, forever).await.unwrap(), 0);
    assert_eq!(s.hits("recent", NOW, forever).await.unwrap(), 1);
    // Expired outbox items stay for the worker to give up (and audit).
    assert_eq!(s.claim(NOW, 60, 10).await.unwrap().len(), 1);
}
