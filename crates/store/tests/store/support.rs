//! Test databases and fixtures, shared by the integration tests and the crate's unit tests.
//!
//! The contract suite (`contract!`): every test body that only uses the `Store` trait runs three
//! times, on a fresh SQLite file in a temp directory, on a fresh PostgreSQL database
//! `rekey_test_<pid>_<n>`, and on the in-memory fake `rekey_core::fakes::MemStore`, so the fake the
//! engine's tests use cannot drift from the real store. Bodies that need SQL specifics (raw SQL,
//! triggers, migrations, `SqlStore`'s own methods) run on the two databases only (`both!`).
//!
//! The PostgreSQL database is created through the `postgres` database of the server at
//! `$REKEY_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`, trust auth) and dropped
//! when the test ends. No server → the PostgreSQL variants fail, they never skip.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rekey_core::Guid;
use rekey_core::audit::{Actor, AuditEvent, Operation};
use rekey_core::fakes::MemStore;
use rekey_core::store::{Challenge, FlowKind, FlowRecord, OutboxItem, OutboxKind, Store};
use sqlx::{Connection, Executor, PgConnection};

use super::SqlStore;

/// The contract: generate `<name>::sqlite`, `<name>::postgres` and `<name>::mem` tests running
/// `async fn <name>(db: TestDb)`, which may use only `db.store()` (the `Store` trait).
#[allow(unused_macros)]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::support::run(super::support::Kind::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::support::run(super::support::Kind::Postgres, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn mem() {
                super::support::run(super::support::Kind::Mem, super::$name).await;
            }
        }
    )*};
}

/// SQL only: generate `<name>::sqlite` and `<name>::postgres` tests running
/// `async fn <name>(db: TestDb)`, which may use `db.sql()`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::support::run(super::support::Kind::Sqlite, super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::support::run(super::support::Kind::Postgres, super::$name).await;
            }
        }
    )*};
}

pub const POSTGRES_ENV: &str = "REKEY_TEST_POSTGRES";
const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    /// `rekey_core::fakes::MemStore` (contract bodies only).
    Mem,
}

/// A fresh, empty database; removed on drop (best effort).
pub struct TestDb {
    pub kind: Kind,
    /// `rekey_test_<pid>_<n>`: the PostgreSQL database, or the SQLite file's directory.
    pub name: String,
    /// Empty for `Kind::Mem`.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Database {
        server: String,
        name: String,
    },
    /// The in-memory store every handle of this "database" shares.
    Mem(Arc<MemStore>),
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn postgres_server() -> String {
    std::env::var(POSTGRES_ENV).unwrap_or_else(|_| POSTGRES_DEFAULT.into())
}

pub async fn admin(server: &str) -> PgConnection {
    PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {server}/postgres ({e}). The store tests need a \
                 running server with trust auth for user postgres; set {POSTGRES_ENV} to use \
                 another one."
            )
        })
}

impl TestDb {
    pub async fn new(kind: Kind) -> Self {
        let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let name = format!("rekey_test_{pid}_{n}");
        match kind {
            Kind::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("rekey.db").display());
                Self {
                    kind,
                    name,
                    url,
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Kind::Postgres => {
                let server = postgres_server();
                let mut admin = admin(&server).await;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                admin.execute(drop.as_str()).await.unwrap();
                let create = format!("CREATE DATABASE {name}");
                admin.execute(create.as_str()).await.unwrap();
                let _ = admin.close().await;
                Self {
                    kind,
                    url: format!("{server}/{name}"),
                    cleanup: Cleanup::Database {
                        server,
                        name: name.clone(),
                    },
                    name,
                }
            }
            Kind::Mem => Self {
                kind,
                name,
                url: String::new(),
                cleanup: Cleanup::Mem(Arc::default()),
            },
        }
    }

    /// A new handle on this database through the `Store` trait: calling it twice gives two
    /// replicas (two `SqlStore`s on one database, or two handles on one `MemStore`).
    pub async fn store(&self) -> Arc<dyn Store> {
        match &self.cleanup {
            Cleanup::Mem(mem) => mem.clone(),
            _ => Arc::new(self.sql().await),
        }
    }

    /// A new `SqlStore` on this database (SQL-only bodies): calling it twice gives two replicas.
    pub async fn sql(&self) -> SqlStore {
        assert_ne!(
            self.kind,
            Kind::Mem,
            "a SQL-only body ran on the in-memory store"
        );
        SqlStore::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Mem(_) => {}
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { server, name } => {
                let (server, name) = (server.clone(), name.clone());
                // Drop runs inside the test's runtime: use a thread with a runtime of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
                            .await
                            .ok()?;
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        admin.execute(sql.as_str()).await.ok()?;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
        }
    }
}

pub async fn run<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    test(TestDb::new(kind).await).await;
}

/// A fixed "now" for the tests (Unix seconds).
pub const NOW: i64 = 1_750_000_000;

pub fn guid(n: u8) -> Guid {
    Guid([n; 16])
}

pub fn flow(id: &str, user: Option<Guid>, expires_at: i64) -> FlowRecord {
    FlowRecord {
        id: id.into(),
        kind: FlowKind::Reset,
        user,
        state: r#"{"step":"identify"}"#.into(),
        version: 0,
        created_at: NOW,
        expires_at,
    }
}

pub fn challenge(id: &str, flow_id: &str, purpose: &str, expires_at: i64) -> Challenge {
    Challenge {
        id: id.into(),
        flow_id: flow_id.into(),
        user: guid(1),
        purpose: purpose.into(),
        code_hash: id.as_bytes().to_vec(),
        expires_at,
        failed_attempts: 0,
    }
}

pub fn event(n: i64) -> AuditEvent {
    AuditEvent {
        at_ms: NOW * 1000 + n,
        support_id: format!("RK-{n:06}"),
        actor: Actor::User,
        operation: Operation::Reset,
        result: "ok".into(),
        client_ip: Some("192.0.2.1".into()),
        user_agent: None,
        target_guid: Some(guid(1).to_string()),
        target_sam: Some("alice".into()),
        methods: vec!["email".into()],
        zones: vec![],
        error_code: None,
        detail: None,
    }
}

pub fn outbox_item(id: &str, not_before: i64) -> OutboxItem {
    OutboxItem {
        id: id.into(),
        kind: OutboxKind::Mail,
        payload: format!("sealed {id}").into_bytes(),
        user: Some(guid(1)),
        not_before,
        expires_at: not_before + 600,
        attempts: 0,
    }
}
