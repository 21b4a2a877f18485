//! Enrollments with their material: every field round-trips, the lookup key is unique per method
//! among all users, `touch_enrollment` and `all_enrollments`.

use rekey_core::Guid;
use rekey_core::store::{Enrollment, MethodKind, StoreError};

use crate::race;
use crate::support::{self, NOW, TestDb, guid};

contract!(
    enrollment_fields_round_trip,
    contact_enrollment_reads_back_empty,
    enrollments_are_ordered_by_method,
    enrollment_by_lookup_is_per_method,
    lookup_is_unique_per_method_across_users,
    lookup_race_has_one_winner,
    touch_enrollment_sets_last_used,
    all_enrollments_by_user_bytes_then_method,
    deleting_an_enrollment_frees_its_lookup,
);

/// Not UTF-8 (a lone continuation byte, an overlong lead, a NUL, 0xff).
const SEALED: &[u8] = &[0xff, 0x00, 0x80, 0xc0, 0xaf, 0xfe, 0x00];

/// A passkey enrollment of `user` with every field set.
fn passkey(user: Guid, handle: &str) -> Enrollment {
    Enrollment {
        user,
        method: MethodKind::Passkey,
        value: "YubiKey 5".into(),
        data: SEALED.to_vec(),
        key_id: "k2025".into(),
        lookup: Some(handle.into()),
        verified_at: NOW - 100,
        last_used_at: Some(NOW - 5),
    }
}

fn is_database_error<T: std::fmt::Debug>(result: &Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Database(_)))
}

async fn enrollment_fields_round_trip(db: TestDb) {
    let s = db.store().await;
    let full = passkey(guid(1), "handle-1");
    // The other variant of every optional field: sealed data without a lookup or use.
    let totp = Enrollment {
        user: guid(1),
        method: MethodKind::Totp,
        value: "Authenticator".into(),
        data: vec![0x00; 3],
        key_id: "k2024".into(),
        lookup: None,
        verified_at: NOW - 50,
        last_used_at: None,
    };
    s.upsert_enrollment(&full).await.unwrap();
    s.upsert_enrollment(&totp).await.unwrap();
    assert_eq!(
        s.enrollments(&guid(1)).await.unwrap(),
        vec![full.clone(), totp.clone()]
    );
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "handle-1")
            .await
            .unwrap(),
        Some(full.clone())
    );
    assert_eq!(s.all_enrollments().await.unwrap(), vec![full, totp.clone()]);

    // An upsert replaces every field, `Some` by `None` and the other way round.
    let flipped_passkey = Enrollment {
        data: vec![],
        key_id: String::new(),
        lookup: None,
        last_used_at: None,
        value: "Security key".into(),
        verified_at: NOW,
        ..passkey(guid(1), "unused")
    };
    let flipped_totp = Enrollment {
        data: SEALED.to_vec(),
        lookup: Some("totp-handle".into()),
        last_used_at: Some(NOW + 1),
        ..totp
    };
    s.upsert_enrollment(&flipped_passkey).await.unwrap();
    s.upsert_enrollment(&flipped_totp).await.unwrap();
    assert_eq!(
        s.enrollments(&guid(1)).await.unwrap(),
        vec![flipped_passkey, flipped_totp.clone()]
    );
    // The passkey's old lookup key went with the replaced row.
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "handle-1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Totp, "totp-handle")
            .await
            .unwrap(),
        Some(flipped_totp)
    );
}

/// What a row written before the method columns existed looks like: a contact method.
async fn contact_enrollment_reads_back_empty(db: TestDb) {
    let s = db.store().await;
    let email = Enrollment::contact(guid(1), MethodKind::Email, "alice@example.org", NOW);
    let sms = Enrollment::contact(guid(1), MethodKind::Sms, "+41791234567", NOW + 1);
    s.upsert_enrollment(&email).await.unwrap();
    s.upsert_enrollment(&sms).await.unwrap();
    let stored = s.enrollments(&guid(1)).await.unwrap();
    assert_eq!(stored, vec![email, sms]);
    for e in &stored {
        assert!(e.data.is_empty(), "{e:?}");
        assert!(e.key_id.is_empty(), "{e:?}");
        assert_eq!((e.lookup.as_deref(), e.last_used_at), (None, None));
    }
    // Contacts have no lookup key: any number of them coexist.
    let bob = Enrollment::contact(guid(2), MethodKind::Email, "bob@example.org", NOW);
    s.upsert_enrollment(&bob).await.unwrap();
    assert_eq!(s.enrollments(&guid(2)).await.unwrap(), vec![bob]);
}

async fn enrollments_are_ordered_by_method(db: TestDb) {
    let s = db.store().await;
    for method in [
        MethodKind::Totp,
        MethodKind::Email,
        MethodKind::Sms,
        MethodKind::Questions,
        MethodKind::Passkey,
    ] {
        let e = Enrollment::contact(guid(1), method, method.as_str(), NOW);
        s.upsert_enrollment(&e).await.unwrap();
    }
    let other = Enrollment::contact(guid(2), MethodKind::Email, "bob@example.org", NOW);
    s.upsert_enrollment(&other).await.unwrap();
    let methods: Vec<&str> = s
        .enrollments(&guid(1))
        .await
        .unwrap()
        .iter()
        .map(|e| e.method.as_str())
        .collect();
    assert_eq!(methods, ["email", "passkey", "questions", "sms", "totp"]);
    assert_eq!(s.enrollments(&guid(2)).await.unwrap(), vec![other]);
    assert_eq!(s.enrollments(&guid(3)).await.unwrap(), vec![]);
}

async fn enrollment_by_lookup_is_per_method(db: TestDb) {
    let s = db.store().await;
    let alice = passkey(guid(1), "h1");
    // The same key under another method is another key.
    let bob = Enrollment {
        method: MethodKind::Totp,
        ..passkey(guid(2), "h1")
    };
    s.upsert_enrollment(&alice).await.unwrap();
    s.upsert_enrollment(&bob).await.unwrap();
    let by = |method, key: &'static str| {
        let s = s.clone();
        async move { s.enrollment_by_lookup(method, key).await.unwrap() }
    };
    assert_eq!(by(MethodKind::Passkey, "h1").await, Some(alice));
    assert_eq!(by(MethodKind::Totp, "h1").await, Some(bob));
    assert_eq!(by(MethodKind::Questions, "h1").await, None);
    assert_eq!(by(MethodKind::Passkey, "h2").await, None);
    assert_eq!(by(MethodKind::Passkey, "H1").await, None);
    assert_eq!(by(MethodKind::Passkey, "").await, None);
}

async fn lookup_is_unique_per_method_across_users(db: TestDb) {
    let s = db.store().await;
    let alice = passkey(guid(1), "alice-handle");
    s.upsert_enrollment(&alice).await.unwrap();

    // Another user cannot take it, neither with a new row nor by changing theirs; the error
    // names no key and nothing changes.
    let result = s.upsert_enrollment(&passkey(guid(2), "alice-handle")).await;
    match &result {
        Err(StoreError::Database(text)) => assert!(!text.contains("alice-handle"), "{text}"),
        other => panic!("expected a database error, got {other:?}"),
    }
    assert_eq!(s.enrollments(&guid(2)).await.unwrap(), vec![]);
    let bob = passkey(guid(2), "bobs");
    s.upsert_enrollment(&bob).await.unwrap();
    let steal = passkey(guid(2), "alice-handle");
    assert!(is_database_error(&s.upsert_enrollment(&steal).await));
    assert_eq!(s.enrollments(&guid(2)).await.unwrap(), vec![bob.clone()]);
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "alice-handle")
            .await
            .unwrap(),
        Some(alice.clone())
    );

    // The owner re-upserts its own key freely.
    let renewed = Enrollment {
        data: b"two credentials".to_vec(),
        last_used_at: Some(NOW),
        ..alice
    };
    s.upsert_enrollment(&renewed).await.unwrap();
    assert_eq!(s.enrollments(&guid(1)).await.unwrap(), vec![renewed]);

    // Once the owner moves to another key, the old one is free.
    s.upsert_enrollment(&passkey(guid(1), "new")).await.unwrap();
    s.upsert_enrollment(&steal).await.unwrap();
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "alice-handle")
            .await
            .unwrap(),
        Some(steal)
    );
}

/// 30 users claim one key at once: exactly one gets it, the others a `Database` error.
async fn lookup_race_has_one_winner(db: TestDb) {
    let s = db.store().await;
    let results = race(30, |i| {
        let s = s.clone();
        let e = passkey(guid(u8::try_from(i + 1).unwrap()), "contested");
        async move { s.upsert_enrollment(&e).await }
    })
    .await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results.iter().all(|r| r.is_ok() || is_database_error(r)));
    let winner = results.iter().position(Result::is_ok).unwrap();
    let owner = s
        .enrollment_by_lookup(MethodKind::Passkey, "contested")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner.user, guid(u8::try_from(winner + 1).unwrap()));
    assert_eq!(s.all_enrollments().await.unwrap(), vec![owner]);
}

async fn touch_enrollment_sets_last_used(db: TestDb) {
    let s = db.store().await;
    let email = Enrollment::contact(guid(1), MethodKind::Email, "alice@example.org", NOW);
    let key = passkey(guid(1), "h1");
    let bobs = Enrollment::contact(guid(2), MethodKind::Email, "bob@example.org", NOW);
    for e in [&email, &key, &bobs] {
        s.upsert_enrollment(e).await.unwrap();
    }

    // No such enrollment: nothing to touch, nothing created.
    let missing = s.touch_enrollment(&guid(1), MethodKind::Sms, NOW).await;
    assert!(!missing.unwrap());
    assert!(
        !s.touch_enrollment(&guid(3), MethodKind::Email, NOW)
            .await
            .unwrap()
    );

    assert!(
        s.touch_enrollment(&guid(1), MethodKind::Email, NOW + 10)
            .await
            .unwrap()
    );
    // The last use wins, also an earlier time (the caller's clock decides).
    assert!(
        s.touch_enrollment(&guid(1), MethodKind::Passkey, NOW + 20)
            .await
            .unwrap()
    );
    assert!(
        s.touch_enrollment(&guid(1), MethodKind::Passkey, NOW + 15)
            .await
            .unwrap()
    );
    let touched_email = Enrollment {
        last_used_at: Some(NOW + 10),
        ..email
    };
    let touched_key = Enrollment {
        last_used_at: Some(NOW + 15),
        ..key
    };
    assert_eq!(
        s.enrollments(&guid(1)).await.unwrap(),
        vec![touched_email, touched_key]
    );
    // Only that user's enrollment moved.
    assert_eq!(s.enrollments(&guid(2)).await.unwrap(), vec![bobs]);
    assert_eq!(s.enrollments(&guid(3)).await.unwrap(), vec![]);
}

/// Users in the order of their raw GUID bytes (unsigned), not of their printed form (whose first
/// groups are little-endian), then methods.
async fn all_enrollments_by_user_bytes_then_method(db: TestDb) {
    let s = db.store().await;
    assert_eq!(s.all_enrollments().await.unwrap(), vec![]);
    let mut low = [0u8; 16];
    low[3] = 0x02; // prints as 02000000-…
    let mut mid = [0u8; 16];
    mid[0] = 0x01; // prints as 00000001-…: first by text, second by bytes
    let high = [0x80; 16]; // a signed byte compare would put it first
    let users = [Guid(high), Guid(mid), Guid(low)];
    for (n, user) in users.iter().enumerate() {
        for method in [MethodKind::Totp, MethodKind::Email, MethodKind::Passkey] {
            let e = Enrollment {
                lookup: Some(format!("{n}-{}", method.as_str())),
                ..Enrollment::contact(*user, method, method.as_str(), NOW)
            };
            s.upsert_enrollment(&e).await.unwrap();
        }
    }
    let order: Vec<(Guid, &str)> = s
        .all_enrollments()
        .await
        .unwrap()
        .iter()
        .map(|e| (e.user, e.method.as_str()))
        .collect();
    let mut expected = vec![];
    for user in [Guid(low), Guid(mid), Guid(high)] {
        for method in ["email", "passkey", "totp"] {
            expected.push((user, method));
        }
    }
    assert_eq!(order, expected);
    // The rows are whole, not just keys.
    let all = s.all_enrollments().await.unwrap();
    assert_eq!(all[..3], s.enrollments(&Guid(low)).await.unwrap()[..]);
}

async fn deleting_an_enrollment_frees_its_lookup(db: TestDb) {
    let s = db.store().await;
    s.upsert_enrollment(&passkey(guid(1), "h1")).await.unwrap();
    let email = Enrollment::contact(guid(1), MethodKind::Email, "alice@example.org", NOW);
    s.upsert_enrollment(&email).await.unwrap();
    assert!(
        s.delete_enrollment(&guid(1), MethodKind::Passkey)
            .await
            .unwrap()
    );
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "h1")
            .await
            .unwrap(),
        None
    );
    assert!(
        !s.touch_enrollment(&guid(1), MethodKind::Passkey, NOW)
            .await
            .unwrap()
    );
    assert_eq!(s.all_enrollments().await.unwrap(), vec![email]);

    let bob = passkey(guid(2), "h1");
    s.upsert_enrollment(&bob).await.unwrap();
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "h1")
            .await
            .unwrap(),
        Some(bob)
    );
}
