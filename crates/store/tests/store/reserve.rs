//! Budgets reserved before the action they pay for (invariant 35).

use rekey_store::RATE_EVENT_RETENTION;

use crate::race;
use crate::support::{self, NOW, TestDb};

contract!(
    reserve_is_atomic_across_replicas,
    reserve_counts_the_window,
    release_gives_back_only_its_own_unit,
);

async fn reserve_is_atomic_across_replicas(db: TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    let results = race(30, |i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.reserve("pw:alice", NOW, 3600, 3).await.unwrap() }
    })
    .await;
    let mut ids: Vec<i64> = results.iter().flatten().copied().collect();
    assert_eq!(ids.len(), 3, "{results:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "reservation ids are distinct");
    assert_eq!(a.hits("pw:alice", NOW, 3600).await.unwrap(), 3);
    assert_eq!(b.hits("pw:alice", NOW, 3600).await.unwrap(), 3);
    assert_eq!(a.reserve("pw:alice", NOW, 3600, 3).await.unwrap(), None);

    // A unit given back (on the other replica) can be reserved again, once.
    assert!(b.release("pw:alice", ids[1]).await.unwrap());
    assert_eq!(a.hits("pw:alice", NOW, 3600).await.unwrap(), 2);
    let again = race(10, |i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.reserve("pw:alice", NOW, 3600, 3).await.unwrap() }
    })
    .await;
    assert_eq!(again.iter().flatten().count(), 1, "{again:?}");
    assert_eq!(a.hits("pw:alice", NOW, 3600).await.unwrap(), 3);
}

async fn reserve_counts_the_window(db: TestDb) {
    let s = db.store().await;
    // Limit 0: never, and nothing is recorded.
    assert_eq!(s.reserve("k", NOW, 60, 0).await.unwrap(), None);
    assert_eq!(s.hits("k", NOW, 60).await.unwrap(), 0);

    // A `hit` and a reservation count alike, both ways.
    assert_eq!(s.hit("k", NOW, 60).await.unwrap(), 1);
    assert!(s.reserve("k", NOW, 60, 2).await.unwrap().is_some());
    assert_eq!(s.hits("k", NOW, 60).await.unwrap(), 2);
    assert_eq!(s.reserve("k", NOW + 30, 60, 2).await.unwrap(), None);
    // (now - window, now]: the events at NOW are still in at NOW + 59, out at NOW + 60.
    assert_eq!(s.reserve("k", NOW + 59, 60, 2).await.unwrap(), None);
    assert!(s.reserve("k", NOW + 60, 60, 2).await.unwrap().is_some());
    assert!(s.reserve("k", NOW + 60, 60, 2).await.unwrap().is_some());
    assert_eq!(s.reserve("k", NOW + 60, 60, 2).await.unwrap(), None);
    assert_eq!(s.hit("k", NOW + 60, 60).await.unwrap(), 3);
    // Refused reservations recorded nothing: 2 at NOW, 2 reserved + 1 hit at NOW + 60.
    assert_eq!(s.hits("k", NOW + 60, 3600).await.unwrap(), 5);

    // Keys are separate; events after `now` are not in its window.
    assert!(
        s.reserve("other", NOW + 100, 60, 1)
            .await
            .unwrap()
            .is_some()
    );
    assert!(s.reserve("other", NOW + 50, 60, 1).await.unwrap().is_some());
    assert_eq!(s.reserve("other", NOW + 100, 60, 1).await.unwrap(), None);
    assert_eq!(s.hits("k", NOW + 60, 3600).await.unwrap(), 5);
}

async fn release_gives_back_only_its_own_unit(db: TestDb) {
    let s = db.store().await;
    let first = s.reserve("k", NOW, 60, 5).await.unwrap().unwrap();
    let second = s.reserve("k", NOW, 60, 5).await.unwrap().unwrap();
    assert_ne!(first, second);
    // Unknown ids and another key's ids release nothing.
    assert!(!s.release("k", first.max(second) + 1000).await.unwrap());
    assert!(!s.release("other", first).await.unwrap());
    assert_eq!(s.hits("k", NOW, 60).await.unwrap(), 2);

    // Of 30 concurrent releases of one unit, one succeeds.
    let results = race(30, |_| {
        let s = s.clone();
        async move { s.release("k", first).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&done| done).count(), 1);
    assert_eq!(s.hits("k", NOW, 60).await.unwrap(), 1);
    assert!(!s.release("k", first).await.unwrap());

    // Ids are never reused: a new reservation does not revive a released id.
    let third = s.reserve("k", NOW, 60, 5).await.unwrap().unwrap();
    assert!(third != first && third != second);
    assert!(!s.release("k", first).await.unwrap());

    // A reservation pruned with its key's old events (like `hit` prunes) is gone.
    let later = NOW + RATE_EVENT_RETENTION + 1;
    assert!(s.reserve("k", later, 60, 5).await.unwrap().is_some());
    assert!(!s.release("k", second).await.unwrap());
    assert!(!s.release("k", third).await.unwrap());
    assert_eq!(
        s.hits("k", later, 2 * RATE_EVENT_RETENTION).await.unwrap(),
        1
    );
}
