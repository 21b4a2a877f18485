use rekey_core::store::{Enrollment, FlowKind, MethodKind, StoreError};

use crate::race;
use crate::support::{self, NOW, TestDb, challenge, flow, guid};

contract!(
    flow_round_trip_and_expiry,
    update_flow_is_optimistic,
    delete_flow_succeeds_exactly_once,
    delete_user_flows_takes_their_challenges,
    enrollments_upsert_and_delete,
);

async fn flow_round_trip_and_expiry(db: TestDb) {
    let s = db.store().await;
    let mut real = flow("f-real", Some(guid(1)), NOW + 600);
    real.kind = FlowKind::Change;
    let decoy = flow("f-decoy", None, NOW + 600);
    let mut receipt = flow("f-receipt", Some(guid(1)), NOW + 600);
    receipt.kind = FlowKind::Receipt;
    s.insert_flow(&receipt).await.unwrap();
    assert_eq!(s.flow("f-receipt", NOW).await.unwrap(), Some(receipt));
    s.insert_flow(&real).await.unwrap();
    s.insert_flow(&decoy).await.unwrap();

    assert_eq!(s.flow("f-real", NOW).await.unwrap(), Some(real.clone()));
    assert_eq!(s.flow("f-decoy", NOW).await.unwrap(), Some(decoy));
    assert_eq!(
        s.flow("f-real", NOW + 599).await.unwrap(),
        Some(real.clone())
    );
    // Expired at `expires_at` itself.
    assert_eq!(s.flow("f-real", NOW + 600).await.unwrap(), None);
    assert_eq!(s.flow("missing", NOW).await.unwrap(), None);

    // Ids are unique, also of an expired flow; the error names no id and changes nothing.
    let again = s.insert_flow(&flow("f-real", None, NOW + 1)).await;
    match again {
        Err(StoreError::Database(text)) => assert!(!text.contains("f-real"), "{text}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    assert_eq!(s.flow("f-real", NOW).await.unwrap(), Some(real));
    s.insert_flow(&flow("f-gone", None, NOW)).await.unwrap();
    assert_eq!(s.flow("f-gone", NOW).await.unwrap(), None);
    let expired = s.insert_flow(&flow("f-gone", None, NOW + 600)).await;
    assert!(
        matches!(expired, Err(StoreError::Database(_))),
        "{expired:?}"
    );
}

async fn update_flow_is_optimistic(db: TestDb) {
    let s = db.store().await;
    let mut f = flow("f1", Some(guid(1)), NOW + 600);
    s.insert_flow(&f).await.unwrap();

    f.state = r#"{"step":"verify"}"#.into();
    f.expires_at = NOW + 900;
    assert!(s.update_flow(&f).await.unwrap());
    let stored = s.flow("f1", NOW).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.expires_at), (1, NOW + 900));
    assert_eq!(stored.state, f.state);

    // A writer still holding version 0 loses and writes nothing.
    let mut stale = f.clone();
    stale.state = "stale".into();
    assert!(!s.update_flow(&stale).await.unwrap());
    assert_eq!(s.flow("f1", NOW).await.unwrap().unwrap(), stored);

    // 30 writers from the same version: exactly one wins.
    let results = race(30, |i| {
        let (s, mut f) = (s.clone(), stored.clone());
        f.state = format!("writer {i}");
        async move { s.update_flow(&f).await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&won| won).count(), 1);
    let after = s.flow("f1", NOW).await.unwrap().unwrap();
    assert_eq!(after.version, 2);
    let winner = results.iter().position(|&won| won).unwrap();
    assert_eq!(after.state, format!("writer {winner}"));
}

async fn delete_flow_succeeds_exactly_once(db: TestDb) {
    let s = db.store().await;
    s.insert_flow(&flow("f1", Some(guid(1)), NOW + 600))
        .await
        .unwrap();
    s.put_challenge(&challenge("c1", "f1", "reset:email", NOW + 300))
        .await
        .unwrap();
    let results = race(30, |_| {
        let s = s.clone();
        async move { s.delete_flow("f1").await.unwrap() }
    })
    .await;
    assert_eq!(results.iter().filter(|&&won| won).count(), 1);
    assert_eq!(s.flow("f1", NOW).await.unwrap(), None);
    assert!(!s.delete_flow("f1").await.unwrap());
    // Its challenge went with it.
    assert_eq!(s.challenge("f1", "reset:email", NOW).await.unwrap(), None);
    assert_eq!(s.fail_challenge("c1").await.unwrap(), None);
    // The id is free again.
    s.insert_flow(&flow("f1", None, NOW + 600)).await.unwrap();
    assert_eq!(s.challenge("f1", "reset:email", NOW).await.unwrap(), None);
}

async fn delete_user_flows_takes_their_challenges(db: TestDb) {
    let s = db.store().await;
    for (id, user) in [
        ("a1", Some(guid(1))),
        ("a2", Some(guid(1))),
        ("b1", Some(guid(2))),
        ("decoy", None),
    ] {
        s.insert_flow(&flow(id, user, NOW + 600)).await.unwrap();
    }
    s.put_challenge(&challenge("c-a1", "a1", "reset:email", NOW + 300))
        .await
        .unwrap();
    s.put_challenge(&challenge("c-b1", "b1", "reset:email", NOW + 300))
        .await
        .unwrap();

    assert_eq!(s.delete_user_flows(&guid(1)).await.unwrap(), 2);
    assert_eq!(s.flow("a1", NOW).await.unwrap(), None);
    assert_eq!(s.flow("a2", NOW).await.unwrap(), None);
    // The code of a deleted flow is dead too (invariant 8).
    assert_eq!(s.challenge("a1", "reset:email", NOW).await.unwrap(), None);
    assert!(!s.consume_challenge("c-a1").await.unwrap());
    assert_eq!(s.fail_challenge("c-a1").await.unwrap(), None);

    assert!(s.flow("b1", NOW).await.unwrap().is_some());
    assert!(s.flow("decoy", NOW).await.unwrap().is_some());
    assert!(
        s.challenge("b1", "reset:email", NOW)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.delete_user_flows(&guid(1)).await.unwrap(), 0);
}

async fn enrollments_upsert_and_delete(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.enrollments(&guid(1)).await.unwrap(), vec![]);
    let mut e = Enrollment::contact(guid(1), MethodKind::Email, "alice@example.org", NOW);
    s.upsert_enrollment(&e).await.unwrap();
    e.value = "alice@example.net".into();
    e.verified_at = NOW + 10;
    s.upsert_enrollment(&e).await.unwrap();
    assert_eq!(s.enrollments(&guid(1)).await.unwrap(), vec![e.clone()]);
    assert_eq!(s.enrollments(&guid(2)).await.unwrap(), vec![]);

    assert!(
        !s.delete_enrollment(&guid(2), MethodKind::Email)
            .await
            .unwrap()
    );
    assert!(
        s.delete_enrollment(&guid(1), MethodKind::Email)
            .await
            .unwrap()
    );
    assert!(
        !s.delete_enrollment(&guid(1), MethodKind::Email)
            .await
            .unwrap()
    );
    assert_eq!(s.enrollments(&guid(1)).await.unwrap(), vec![]);
}
