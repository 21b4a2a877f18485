//! Rekey's storage adapter: `rekey_core::store::Store` on SQLite (embedded, one file) and
//! PostgreSQL, behind one type, [`SqlStore`].
//!
//! Architecture invariant: only this crate knows SQL. Both backends run the same statements where
//! the dialects agree (`$1` placeholders work on both) and behave identically; every counter and
//! every consumption is atomic in the database, never in process memory, so replicas may share one
//! PostgreSQL database.
//!
//! Atomicity:
//! - single-row claims (`delete_flow`, `consume_challenge`, `update_flow`, `fail_challenge`,
//!   `release`, `finish`) are one statement each and decided by the affected-row count or
//!   `RETURNING`;
//! - an outbox `claim` is one `UPDATE … RETURNING` over the oldest due items (with
//!   `FOR UPDATE SKIP LOCKED` on PostgreSQL), see `outbox.rs`;
//! - read-then-write operations (`hit`, `reserve`, `append_audit`) run in a transaction that first
//!   takes a write lock: `BEGIN IMMEDIATE` on SQLite (writers wait on the busy timeout instead of
//!   failing), a transaction-scoped advisory lock on PostgreSQL (per rate-limit key, shared by
//!   `hit` and `reserve`; one for the audit chain).
//!
//! Invariant 32: audit rows are append-only. Triggers on both backends refuse `UPDATE` and
//! `DELETE` (and `TRUNCATE` on PostgreSQL) of `audit`, whoever asks. On PostgreSQL an operator
//! should also let the service run as a role that does not own the tables, with
//! `GRANT SELECT, INSERT ON audit TO rekey_app` and no `UPDATE`/`DELETE`/`TRUNCATE`, so it cannot
//! drop or disable the trigger either. [`SqlStore::connect`] applies pending migrations, so the
//! first start after an upgrade runs as the owner; with the schema current it runs no DDL.
//!
//! TLS: there is none. PostgreSQL is expected on loopback; TLS to a remote server is future work
//! (it needs one of sqlx's TLS features and a CA setting).

#[macro_use]
mod sql;
mod audit_query;
mod checkpoints;
mod enrollments;
mod forward;
pub mod keys;
mod lite;
mod ops;
mod outbox;
mod rate;
mod status;
#[cfg(test)]
mod tests;

pub use forward::ForwardCursor;
pub use status::{StoreStatus, status};

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use rekey_core::store::{StoreError, StoreResult, UnixTime};
use sqlx::Connection;
use sqlx::migrate::{Migrate, MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::pool::PoolOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

/// How long rate-limit events are kept at least. `hit` prunes a key's events older than the
/// larger of this and its window; `hits` over a longer window may undercount.
pub const RATE_EVENT_RETENTION: i64 = 7 * 24 * 3600;

/// How long a SQLite writer waits for the write lock before giving up (`Unavailable`).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: u32 = 10;

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Pool {
    Sqlite(lite::Lite),
    Postgres(PgPool),
}

/// The store: a connection pool on SQLite or PostgreSQL. Cheap to clone (the pool is shared).
///
/// Two `SqlStore`s on the same database behave like two replicas: everything they share is
/// coordinated by the database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: Pool,
    /// Where audit records are appended. SQLite: one connection of its own with
    /// `synchronous=FULL`, so every record is on disk when the append returns; the main pool runs
    /// `synchronous=NORMAL` (WAL), so its commits do not wait for the disk, and the next audit
    /// append's sync (every request ends with one) makes them durable too: the WAL is one file,
    /// written in commit order. PostgreSQL: the same pool.
    chain: Pool,
    /// The audit chain's head as this process last wrote or read it (`seq`, `hash`): on SQLite
    /// an append then costs one statement (see `ops.rs`). Held across the append, so this
    /// process's appends never race each other for the same `seq`.
    audit_head: std::sync::Arc<tokio::sync::Mutex<Option<ChainHead>>>,
}

/// An audit record's `seq` and `hash`.
type ChainHead = (i64, [u8; 32]);

/// The newest migration applied on `$conn`, if the migrations table can be read.
macro_rules! applied_version {
    ($conn:expr) => {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one($conn)
        .await
        .ok()
        .flatten()
    };
}

impl SqlStore {
    /// Connect and bring the schema up to date.
    ///
    /// `url` is `sqlite:///abs/path/rekey.db`, `sqlite://relative/path.db` (the file is created
    /// unless a `mode=` parameter says otherwise), or `postgres://user@host:port/db` (also
    /// `postgresql://`). SQLite runs in WAL mode with a busy timeout; it is for a single node.
    /// Its audit appends are synced to disk before they return; other writes become durable
    /// with the next audit append (see [`SqlStore`]'s `chain`), so a power cut loses at most the
    /// writes of requests that had not been audited yet.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached or opened, `Database` for a URL that is
    /// not understood or a failed migration.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // One direct connection first: it fails fast with the real cause (a pool would retry
        // until its acquire timeout and report only that) and applies the migrations.
        let (pool, chain) = if url.starts_with("sqlite:") {
            let mut options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Database(format!("invalid SQLite URL: {e}")))?;
            if !url.contains("mode=") {
                options = options.create_if_missing(true);
            }
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                .synchronous(SqliteSynchronous::Full);
            let mut conn = SqliteConnection::connect_with(&options)
                .await
                .map_err(map_err)?;
            let applied = applied_version!(&mut conn);
            migrate(&mut conn, "SQLite", SQLITE_MIGRATIONS, applied).await?;
            conn.close().await.map_err(map_err)?;
            // Rekey's own pool: no ping per use (see `lite`).
            let chain = lite::Lite::new(options.clone(), 1, ACQUIRE_TIMEOUT);
            let main = options.synchronous(SqliteSynchronous::Normal);
            (
                Pool::Sqlite(lite::Lite::new(main, MAX_CONNECTIONS, ACQUIRE_TIMEOUT)),
                Pool::Sqlite(chain),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))?
                .application_name("rekey");
            let mut conn = PgConnection::connect_with(&options)
                .await
                .map_err(map_err)?;
            // The migrator holds an advisory lock: replicas starting together apply each
            // migration once.
            let applied = applied_version!(&mut conn);
            migrate(&mut conn, "PostgreSQL", POSTGRES_MIGRATIONS, applied).await?;
            conn.close().await.map_err(map_err)?;
            let pool = Pool::Postgres(pool_options().connect_lazy_with(options));
            (pool.clone(), pool)
        } else {
            return Err(StoreError::Database(
                "unsupported database URL: expected sqlite: or postgres://".into(),
            ));
        };
        Ok(Self {
            pool,
            chain,
            audit_head: std::sync::Arc::default(),
        })
    }

    /// Which database this store uses.
    #[must_use]
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// A round trip to the database (for health checks).
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    pub async fn ping(&self) -> StoreResult<()> {
        const SQL: &str = "SELECT 1";
        on_pool!(self, |p| sqlx::query(SQL).execute(p).await.map(drop)).map_err(map_err)
    }

    /// Items waiting in the outbox (mail, texts, zone work), for `/metrics`.
    ///
    /// # Errors
    /// `Unavailable` when the database cannot be reached.
    pub async fn outbox_pending(&self) -> StoreResult<i64> {
        const SQL: &str = "SELECT COUNT(*) FROM outbox";
        on_pool!(self, |p| sqlx::query_scalar::<_, i64>(SQL)
            .fetch_one(p)
            .await)
        .map_err(map_err)
    }

    /// Delete what has expired at `now`: flows (with their challenges), challenges, locks, and
    /// rate-limit events (reservations too) older than [`RATE_EVENT_RETENTION`]. Returns how many
    /// rows went. For a periodic maintenance task; correctness never depends on it (reads check
    /// expiry). Outbox items stay, expired or not: the worker gives them up and audits why.
    ///
    /// # Errors
    /// As any query.
    pub async fn purge_expired(&self, now: UnixTime) -> StoreResult<u64> {
        const SQL: [&str; 4] = [
            "DELETE FROM flows WHERE expires_at <= $1",
            "DELETE FROM challenges WHERE expires_at <= $1",
            "DELETE FROM locks WHERE locked_until <= $1",
            "DELETE FROM rate_events WHERE happened_at <= $1",
        ];
        let horizons = [now, now, now, now.saturating_sub(RATE_EVENT_RETENTION)];
        let mut total = 0;
        for (sql, horizon) in SQL.into_iter().zip(horizons) {
            total += on_pool!(self, |p| sqlx::query(sql)
                .bind(horizon)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            .map_err(map_err)?;
        }
        Ok(total)
    }

    /// Close the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        for pool in [&self.pool, &self.chain] {
            match pool {
                Pool::Sqlite(p) => p.close().await,
                Pool::Postgres(p) => p.close().await,
            }
        }
    }
}

fn pool_options<DB: sqlx::Database>() -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// Apply pending migrations. Nothing at all when the schema is current: no DDL, so a service
/// role without `CREATE` rights (see the crate docs) can start.
async fn migrate<C: Migrate>(
    conn: &mut C,
    backend: &str,
    migrations: &'static [EmbeddedMigration],
    applied: Option<i64>,
) -> StoreResult<()> {
    let latest = migrations.iter().map(|m| m.0).max();
    if applied.is_some() && applied >= latest {
        return Ok(());
    }
    let failed =
        |e: &dyn std::fmt::Display| StoreError::Database(format!("{backend} migrations: {e}"));
    let migrator = Migrator::new(Embedded(migrations))
        .await
        .map_err(|e| failed(&e))?;
    migrator.run_direct(conn).await.map_err(|e| match e {
        MigrateError::Execute(e) => map_err(e),
        e => failed(&e),
    })
}

/// `(version, description, SQL)`, compiled into the binary.
type EmbeddedMigration = (i64, &'static str, &'static str);

const SQLITE_MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "reserve outbox",
        include_str!("../migrations/sqlite/0002_reserve_outbox.sql"),
    ),
    (
        3,
        "methods",
        include_str!("../migrations/sqlite/0003_methods.sql"),
    ),
    (
        4,
        "audit checkpoints",
        include_str!("../migrations/sqlite/0004_audit_checkpoints.sql"),
    ),
    (
        5,
        "forward cursor",
        include_str!("../migrations/sqlite/0005_forward_cursor.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[EmbeddedMigration] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "reserve outbox",
        include_str!("../migrations/postgres/0002_reserve_outbox.sql"),
    ),
    (
        3,
        "methods",
        include_str!("../migrations/postgres/0003_methods.sql"),
    ),
    (
        4,
        "audit checkpoints",
        include_str!("../migrations/postgres/0004_audit_checkpoints.sql"),
    ),
    (
        5,
        "forward cursor",
        include_str!("../migrations/postgres/0005_forward_cursor.sql"),
    ),
];

/// Migrations embedded with `include_str!` (sqlx's `migrate!` would need its macros crate).
#[derive(Debug)]
struct Embedded(&'static [EmbeddedMigration]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> rekey_core::BoxFuture<'s, Result<Vec<Migration>, sqlx::error::BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// sqlx error → store error. The text is the database's own message and code (never bound
/// values, which may be flow ids or code hashes) so it can go to the log.
fn map_err(e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match e {
        E::Io(e) => StoreError::Unavailable(format!("I/O: {e}")),
        E::Tls(e) => StoreError::Unavailable(format!("TLS: {e}")),
        E::PoolTimedOut => StoreError::Unavailable("timed out waiting for a connection".into()),
        E::PoolClosed => StoreError::Unavailable("connection pool closed".into()),
        E::WorkerCrashed => StoreError::Unavailable("SQLite worker thread crashed".into()),
        E::Database(e) => {
            let sqlite = e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            let code = e.code().unwrap_or_default().into_owned();
            let text = format!("{code}: {}", e.message());
            if unavailable_code(sqlite, &code) {
                StoreError::Unavailable(text)
            } else {
                StoreError::Database(text)
            }
        }
        E::ColumnDecode { .. } | E::Decode(_) => StoreError::Corrupt(e.to_string()),
        e => StoreError::Database(e.to_string()),
    }
}

/// Database error codes that mean "cannot use the database now" rather than "this statement is
/// wrong": PostgreSQL SQLSTATE classes 08 (connection), 28 (authentication), 53 (resources),
/// 57P (shutdown), 3D000 (no such database); SQLite BUSY, LOCKED, IOERR, CANTOPEN (primary code
/// in the low byte of the extended code).
fn unavailable_code(sqlite: bool, code: &str) -> bool {
    if sqlite {
        return code
            .parse::<i64>()
            .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 14));
    }
    ["08", "28", "53", "57P"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "3D000"
}
