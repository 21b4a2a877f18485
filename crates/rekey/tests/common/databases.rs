//! A fresh database per test, SQLite or PostgreSQL, removed afterwards (also when the test
//! panics), and `both!` to run one test body on each.
//!
//! PostgreSQL: the server at `$REKEY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`,
//! trust auth). No server → the PostgreSQL variants fail, they never skip.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rekey_store::SqlStore;
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh database with a store on it.
pub struct Env {
    pub kind: Kind,
    pub url: String,
    pub store: SqlStore,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn postgres_server() -> String {
    std::env::var("REKEY_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Removes the database when dropped (also when the test panics).
struct Cleanup {
    kind: Kind,
    name: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self.kind {
            Kind::Sqlite => {
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(&self.name));
            }
            Kind::Postgres => {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                // Own thread and runtime: this may run inside the test's runtime.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let url = format!("{}/postgres", postgres_server());
                        if let Ok(mut admin) = PgConnection::connect(&url).await {
                            let _ = sqlx::raw_sql(&sql).execute(&mut admin).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// Run `body` on a fresh database of `kind`, then remove it.
pub async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Arc<Env>) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = format!(
        "rekey_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let url = match kind {
        Kind::Sqlite => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}", dir.join("rekey.db").display())
        }
        Kind::Postgres => {
            let mut admin = PgConnection::connect(&format!("{}/postgres", postgres_server()))
                .await
                .expect(
                    "PostgreSQL at REKEY_TEST_POSTGRES (default 127.0.0.1:5432, user postgres)",
                );
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
            format!("{}/{name}", postgres_server())
        }
    };
    let _cleanup = Cleanup { kind, name };
    let store = SqlStore::connect(&url).await.unwrap();
    let env = Arc::new(Env { kind, url, store });
    body(Arc::clone(&env)).await;
    env.store.close().await;
}

/// `<name>::sqlite` and `<name>::postgres` running `async fn <name>(env: Arc<Env>)`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::databases::run(super::databases::Kind::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::databases::run(super::databases::Kind::Postgres, super::$name).await;
            }
        }
    )*};
}
