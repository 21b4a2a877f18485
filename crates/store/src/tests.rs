//! What needs the crate's private parts: invariant 32 through the application's own pool (the
//! integration tests in `tests/store/` cover the `Store` port) and an upgrade from an older schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
#[allow(dead_code)]
#[path = "../tests/store/support.rs"]
mod support;

use std::str::FromStr;

use rekey_core::audit::{GENESIS, verify};
use rekey_core::store::{Enrollment, MethodKind, Store, StoreError};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::{POSTGRES_MIGRATIONS, Pool, SQLITE_MIGRATIONS, SqlStore, map_err, migrate};
use support::{Kind, NOW, TestDb, event, guid, outbox_item};

both!(
    audit_rows_cannot_be_updated_or_deleted,
    upgrade_from_0001_keeps_rate_events,
    upgrade_from_0002_keeps_enrollments,
);

async fn raw(store: &SqlStore, sql: &str) -> Result<u64, rekey_core::store::StoreError> {
    on_pool!(store, |p| sqlx::query(sql)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
    .map_err(map_err)
}

async fn audit_rows_cannot_be_updated_or_deleted(db: TestDb) {
    let s = db.sql().await;
    for n in 1..=3 {
        s.append_audit(&event(n)).await.unwrap();
    }
    let mut attempts = vec![
        "UPDATE audit SET body = '{}' WHERE seq = 2",
        "UPDATE audit SET at_ms = 0",
        "DELETE FROM audit WHERE seq = 3",
        "DELETE FROM audit",
    ];
    if db.kind == Kind::Postgres {
        attempts.push("TRUNCATE audit");
    }
    for sql in attempts {
        let err = raw(&s, sql).await.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let records = s.audit_after(0, 10).await.unwrap();
    assert_eq!(verify(&records, (0, GENESIS)).unwrap().0, 3);
    // Appending still works.
    assert_eq!(s.append_audit(&event(4)).await.unwrap().seq, 4);
}

/// A database the first release left (migration 1, events without ids) gets migration 2 at the
/// next start: the events keep counting and get ids; reservations and the outbox work.
async fn upgrade_from_0001_keeps_rate_events(db: TestDb) {
    const OLD_EVENT: &str = "INSERT INTO rate_events (event_key, happened_at) VALUES ($1, $2)";
    match db.kind {
        Kind::Sqlite => {
            let options = SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
            migrate(&mut conn, "SQLite", &SQLITE_MIGRATIONS[..1], None)
                .await
                .unwrap();
            for (key, at) in [("k", NOW - 10), ("k", NOW - 5), ("other", NOW)] {
                let q = sqlx::query(OLD_EVENT).bind(key).bind(at);
                q.execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
        Kind::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.unwrap();
            migrate(&mut conn, "PostgreSQL", &POSTGRES_MIGRATIONS[..1], None)
                .await
                .unwrap();
            for (key, at) in [("k", NOW - 10), ("k", NOW - 5), ("other", NOW)] {
                let q = sqlx::query(OLD_EVENT).bind(key).bind(at);
                q.execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
        Kind::Mem => unreachable!("SQL only"),
    }

    let s = db.sql().await;
    assert_eq!(s.hits("k", NOW, 60).await.unwrap(), 2);
    // Old events got ids 1..=3 in their order; new ones continue after them.
    assert_eq!(s.reserve("k", NOW, 60, 3).await.unwrap(), Some(4));
    assert_eq!(s.reserve("k", NOW, 60, 3).await.unwrap(), None);
    assert!(!s.release("k", 3).await.unwrap());
    assert!(s.release("k", 1).await.unwrap());
    assert_eq!(s.hits("k", NOW, 60).await.unwrap(), 2);
    assert_eq!(s.hits("other", NOW, 60).await.unwrap(), 1);

    s.enqueue(&outbox_item("o1", NOW)).await.unwrap();
    let claimed = s.claim(NOW, 60, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(s.finish("o1", 1).await.unwrap());
    // A second start finds the schema current.
    drop(db.sql().await);
}

/// A database at migration 2 (enrollments with value and verification time only) gets migration 3
/// at the next start: its rows read back as contact methods and the new columns work, the lookup
/// index included.
async fn upgrade_from_0002_keeps_enrollments(db: TestDb) {
    const OLD_ROW: &str =
        "INSERT INTO enrollments (user_guid, method, value, verified_at) VALUES ($1, $2, $3, $4)";
    let rows = [
        (guid(1), "email", "alice@example.org", NOW - 20),
        (guid(1), "sms", "+41791234567", NOW - 10),
        (guid(2), "email", "bob@example.org", NOW),
    ];
    match db.kind {
        Kind::Sqlite => {
            let options = SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
            migrate(&mut conn, "SQLite", &SQLITE_MIGRATIONS[..2], None)
                .await
                .unwrap();
            for (user, method, value, at) in rows {
                let q = sqlx::query(OLD_ROW).bind(user.0.as_slice()).bind(method);
                q.bind(value).bind(at).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
        Kind::Postgres => {
            let mut conn = PgConnection::connect(&db.url).await.unwrap();
            migrate(&mut conn, "PostgreSQL", &POSTGRES_MIGRATIONS[..2], None)
                .await
                .unwrap();
            for (user, method, value, at) in rows {
                let q = sqlx::query(OLD_ROW).bind(user.0.as_slice()).bind(method);
                q.bind(value).bind(at).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
        Kind::Mem => unreachable!("SQL only"),
    }

    let s = db.sql().await;
    let contact = |user, method, value: &str, at| Enrollment::contact(user, method, value, at);
    let alice = vec![
        contact(guid(1), MethodKind::Email, "alice@example.org", NOW - 20),
        contact(guid(1), MethodKind::Sms, "+41791234567", NOW - 10),
    ];
    let bob = contact(guid(2), MethodKind::Email, "bob@example.org", NOW);
    assert_eq!(s.enrollments(&guid(1)).await.unwrap(), alice);
    let mut all = alice;
    all.push(bob.clone());
    assert_eq!(s.all_enrollments().await.unwrap(), all);

    // The new columns take values; the lookup key is unique per method.
    assert!(
        s.touch_enrollment(&guid(2), MethodKind::Email, NOW + 5)
            .await
            .unwrap()
    );
    let key = Enrollment {
        data: vec![0xff, 0x00],
        key_id: "k1".into(),
        lookup: Some("h1".into()),
        ..contact(guid(1), MethodKind::Passkey, "key", NOW)
    };
    s.upsert_enrollment(&key).await.unwrap();
    let stolen = Enrollment {
        user: guid(2),
        ..key.clone()
    };
    let err = s.upsert_enrollment(&stolen).await;
    assert!(matches!(err, Err(StoreError::Database(_))), "{err:?}");
    assert_eq!(
        s.enrollment_by_lookup(MethodKind::Passkey, "h1")
            .await
            .unwrap(),
        Some(key)
    );
    let touched = s.enrollments(&guid(2)).await.unwrap();
    assert_eq!(
        touched,
        vec![Enrollment {
            last_used_at: Some(NOW + 5),
            ..bob
        }]
    );
    // A second start finds the schema current.
    drop(db.sql().await);
}

/// SQLite: audit appends are synced before they return (`synchronous=FULL` on the chain's own
/// connection); everything else commits without waiting for the disk (`NORMAL`, WAL) and is made
/// durable by the next append's sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_syncs_audit_appends_and_not_every_commit() {
    let db = TestDb::new(Kind::Sqlite).await;
    let s = db.sql().await;
    let (Pool::Sqlite(main), Pool::Sqlite(chain)) = (&s.pool, &s.chain) else {
        panic!("a SQLite store");
    };
    let level = |p: &crate::lite::Lite| {
        let p = p.clone();
        async move {
            let mut conn = p.acquire().await.unwrap();
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&mut *conn)
                .await
                .unwrap()
        }
    };
    // 1 = NORMAL, 2 = FULL.
    assert_eq!(level(main).await, 1);
    assert_eq!(level(chain).await, 2);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *chain.acquire().await.unwrap())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(s.append_audit(&event(1)).await.unwrap().seq, 1);
}
