//! Invariant 32 through the application's own pool: the integration tests in `tests/store/`
//! cover the `Store` port; this one needs the private pool to try what the port does not offer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
#[allow(dead_code)]
#[path = "../tests/store/support.rs"]
mod support;

use rekey_core::audit::{GENESIS, verify};
use rekey_core::store::Store;

use crate::{Pool, SqlStore, map_err};
use support::{Kind, TestDb, event};

both!(audit_rows_cannot_be_updated_or_deleted);

async fn raw(store: &SqlStore, sql: &str) -> Result<u64, rekey_core::store::StoreError> {
    match &store.pool {
        Pool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        Pool::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
    }
    .map_err(map_err)
}

async fn audit_rows_cannot_be_updated_or_deleted(db: TestDb) {
    let s = db.store().await;
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
