//! The outbox: claimed by one worker per lease, retried, finished once (invariant 9).

use std::collections::BTreeMap;

use rekey_core::store::{OutboxItem, StoreError};

use crate::race;
use crate::support::{self, NOW, TestDb, guid, outbox_item};

contract!(
    claims_never_overlap_across_replicas,
    claim_takes_the_oldest_due_items,
    retry_moves_the_next_attempt,
    finish_succeeds_exactly_once,
    expired_items_are_still_claimed,
    a_stale_claim_changes_nothing,
    items_round_trip_exactly,
);

const LEASE: i64 = 60;

async fn claims_never_overlap_across_replicas(db: TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    for n in 0..10 {
        a.enqueue(&outbox_item(&format!("o{n}"), NOW - n))
            .await
            .unwrap();
    }
    let claimed = race(2, |i| {
        let s = if i == 0 { a.clone() } else { b.clone() };
        async move { s.claim(NOW, LEASE, 10).await.unwrap() }
    })
    .await;
    let mut seen = BTreeMap::new();
    for item in claimed.into_iter().flatten() {
        assert_eq!((item.attempts, item.not_before), (1, NOW + LEASE));
        assert!(
            seen.insert(item.id.clone(), item).is_none(),
            "claimed twice"
        );
    }
    assert_eq!(seen.len(), 10);

    // Within the lease nobody gets them; at its end they are due again.
    assert_eq!(b.claim(NOW + LEASE - 1, LEASE, 10).await.unwrap(), vec![]);
    let again = a.claim(NOW + LEASE, LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 10);
    for item in &again {
        assert_eq!((item.attempts, item.not_before), (2, NOW + 2 * LEASE));
    }

    // Many claimers with small limits: still every item exactly once.
    let claimed = race(8, |i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.claim(NOW + 2 * LEASE, LEASE, 2).await.unwrap() }
    })
    .await;
    let mut ids: Vec<String> = claimed.into_iter().flatten().map(|i| i.id).collect();
    ids.sort_unstable();
    let all: Vec<String> = seen.into_keys().collect();
    assert_eq!(ids, all);
}

async fn claim_takes_the_oldest_due_items(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.claim(NOW, LEASE, 10).await.unwrap(), vec![]);
    // Oldest = enqueued first, whatever `not_before` says (among the due ones).
    let a = outbox_item("a", NOW);
    let b = outbox_item("b", NOW - 10);
    let c = outbox_item("c", NOW + 5);
    let d = outbox_item("d", NOW - 20);
    for item in [&a, &b, &c, &d] {
        s.enqueue(item).await.unwrap();
    }
    assert_eq!(s.claim(NOW, LEASE, 0).await.unwrap(), vec![]);
    let ids = |items: Vec<OutboxItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(s.claim(NOW, LEASE, 2).await.unwrap()), ["a", "b"]);
    assert_eq!(ids(s.claim(NOW, LEASE, 10).await.unwrap()), ["d"]);
    assert_eq!(ids(s.claim(NOW + 4, LEASE, 10).await.unwrap()), [""; 0]);
    assert_eq!(ids(s.claim(NOW + 5, LEASE, 10).await.unwrap()), ["c"]);
    // At the leases' end: back in enqueue order.
    assert_eq!(
        ids(s.claim(NOW + 5 + LEASE, LEASE, 10).await.unwrap()),
        ["a", "b", "c", "d"]
    );
}

async fn retry_moves_the_next_attempt(db: TestDb) {
    let s = db.store().await;
    s.enqueue(&outbox_item("o1", NOW)).await.unwrap();
    s.enqueue(&outbox_item("o2", NOW)).await.unwrap();
    assert_eq!(s.claim(NOW, LEASE, 10).await.unwrap().len(), 2);
    // Later than the lease, and earlier than it.
    assert!(s.retry("o1", 1, NOW + 300).await.unwrap());
    assert!(s.retry("o2", 1, NOW + 10).await.unwrap());
    // Unknown ids change nothing.
    assert!(!s.retry("missing", 1, NOW).await.unwrap());

    let o2 = s.claim(NOW + 10, LEASE, 10).await.unwrap();
    assert_eq!(o2.len(), 1);
    assert_eq!((o2[0].id.as_str(), o2[0].attempts), ("o2", 2));
    assert!(s.finish("o2", 2).await.unwrap());
    assert_eq!(s.claim(NOW + 299, LEASE, 10).await.unwrap(), vec![]);
    let o1 = s.claim(NOW + 300, LEASE, 10).await.unwrap();
    assert_eq!(o1.len(), 1);
    assert_eq!(
        (o1[0].id.as_str(), o1[0].attempts, o1[0].not_before),
        ("o1", 2, NOW + 300 + LEASE)
    );
    // A retry may also bring an item forward.
    assert!(s.retry("o1", 2, NOW).await.unwrap());
    assert_eq!(s.claim(NOW, LEASE, 10).await.unwrap().len(), 1);
}

async fn finish_succeeds_exactly_once(db: TestDb) {
    let s = db.store().await;
    s.enqueue(&outbox_item("o1", NOW)).await.unwrap();
    s.enqueue(&outbox_item("o2", NOW)).await.unwrap();
    assert_eq!(s.claim(NOW, LEASE, 10).await.unwrap().len(), 2);
    let results = race(30, |_| {
        let s = s.clone();
        async move { s.finish("o1", 1).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&done| done).count(), 1);
    assert!(!s.finish("o1", 1).await.unwrap());
    assert!(!s.finish("missing", 1).await.unwrap());
    // Only o2 comes back; a finished id may be queued again.
    let left = s.claim(NOW + LEASE, LEASE, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["o2"]
    );
    s.enqueue(&outbox_item("o1", NOW)).await.unwrap();
}

async fn expired_items_are_still_claimed(db: TestDb) {
    let s = db.store().await;
    let mut item = outbox_item("o1", NOW - 700);
    item.expires_at = NOW - 1;
    s.enqueue(&item).await.unwrap();
    let mut boundary = outbox_item("o2", NOW - 700);
    boundary.expires_at = NOW;
    s.enqueue(&boundary).await.unwrap();
    let claimed = s.claim(NOW, LEASE, 10).await.unwrap();
    // The caller sees the expiry and gives them up.
    item.not_before = NOW + LEASE;
    item.attempts = 1;
    boundary.not_before = NOW + LEASE;
    boundary.attempts = 1;
    assert_eq!(claimed, vec![item, boundary]);
    assert!(s.finish("o1", 1).await.unwrap());
    assert!(s.finish("o2", 1).await.unwrap());
}

/// A worker whose lease ran out while it worked cannot finish or reschedule the item another
/// worker claimed since: the mail is never handled twice.
async fn a_stale_claim_changes_nothing(db: TestDb) {
    let s = db.store().await;
    s.enqueue(&outbox_item("o1", NOW)).await.unwrap();
    let first = s.claim(NOW, LEASE, 10).await.unwrap();
    let second = s.claim(NOW + LEASE, LEASE, 10).await.unwrap();
    assert_eq!((first[0].attempts, second[0].attempts), (1, 2));
    assert!(!s.retry("o1", first[0].attempts, NOW).await.unwrap());
    assert!(!s.finish("o1", first[0].attempts).await.unwrap());
    assert!(s.finish("o1", second[0].attempts).await.unwrap());
}

async fn items_round_trip_exactly(db: TestDb) {
    let s = db.store().await;
    // Every byte value, NUL and invalid UTF-8 included; an empty payload; no user.
    let mut binary = outbox_item("bin", NOW);
    binary.payload = (0..=255u8).chain([0, 0xff, 0xc3]).collect();
    binary.user = Some(guid(0xab));
    binary.attempts = 3;
    // Every kind comes back as itself.
    binary.kind = rekey_core::store::OutboxKind::Landing;
    let mut empty = outbox_item("empty", NOW);
    empty.payload = Vec::new();
    empty.user = None;
    empty.kind = rekey_core::store::OutboxKind::Proof;
    s.enqueue(&binary).await.unwrap();
    s.enqueue(&empty).await.unwrap();

    // Ids are unique; the error names no id and the queued item is untouched.
    let mut dup = outbox_item("bin", NOW - 100);
    dup.payload = b"other".to_vec();
    match s.enqueue(&dup).await {
        Err(StoreError::Database(text)) => assert!(!text.contains("bin"), "{text}"),
        other => panic!("expected a database error, got {other:?}"),
    }

    let claimed = s.claim(NOW, LEASE, 10).await.unwrap();
    for item in [&mut binary, &mut empty] {
        item.not_before = NOW + LEASE;
        item.attempts += 1;
    }
    assert_eq!(claimed, vec![binary, empty]);
}
