//! Connection failures are `Unavailable`, and no error text carries a secret.

use rekey_core::store::StoreError;
use rekey_store::{Backend, SqlStore};

use crate::support::{self, TestDb};

both!(connect_twice_and_ping);

async fn connect_twice_and_ping(db: TestDb) {
    // The second connect finds the schema in place (migrations are idempotent).
    let (a, b) = (db.sql().await, db.sql().await);
    a.ping().await.unwrap();
    b.ping().await.unwrap();
    let expected = match db.kind {
        support::Kind::Sqlite => Backend::Sqlite,
        support::Kind::Postgres => Backend::Postgres,
        support::Kind::Mem => unreachable!("SQL only"),
    };
    assert_eq!(a.backend(), expected);
    a.close().await;
    assert!(matches!(a.ping().await, Err(StoreError::Unavailable(_))));
    b.ping().await.unwrap();
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable_and_hides_the_password() {
    let err = SqlStore::connect("postgres://rekey:hunter2@127.0.0.1:1/rekey")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn missing_postgres_database_is_unavailable() {
    // The server answers, but the database does not exist: the store cannot be used.
    let url = format!("{}/rekey_no_such_db", support::postgres_server());
    let err = SqlStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unopenable_sqlite_is_unavailable() {
    let err = SqlStore::connect("sqlite:///nonexistent-rekey-dir/sub/rekey.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unknown_url_scheme_is_refused() {
    let err = SqlStore::connect("mysql://root:hunter2@127.0.0.1/rekey")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
