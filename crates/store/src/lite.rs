//! SQLite's connection pool. sqlx's own pool pings every connection as it comes back (a round
//! trip to the connection's worker thread): on SQLite that doubled the thread switches of each
//! statement, ≈45 µs of CPU per statement measured against a held connection, and a request
//! runs a dozen. A SQLite connection is a file handle on a thread of this process, nothing that
//! breaks unseen, and what the ping would flush is already queued: a transaction dropped
//! unfinished queues its rollback on the connection's worker before the connection comes back,
//! so the next statement runs after it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Up to `size` connections, opened when first needed and kept.
#[derive(Debug, Clone)]
pub(crate) struct Lite {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: SqliteConnectOptions,
    idle: Mutex<Vec<SqliteConnection>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
}

/// A connection out of the pool; back in it when dropped.
pub(crate) struct LiteConn {
    conn: Option<SqliteConnection>,
    inner: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl Lite {
    pub(crate) fn new(options: SqliteConnectOptions, size: u32, acquire_timeout: Duration) -> Self {
        let size = usize::try_from(size.max(1)).unwrap_or(1);
        Self {
            inner: Arc::new(Inner {
                options,
                idle: Mutex::new(Vec::with_capacity(size)),
                permits: Arc::new(Semaphore::new(size)),
                acquire_timeout,
            }),
        }
    }

    /// A connection: an idle one, else a new one while fewer than `size` are out.
    ///
    /// # Errors
    /// `PoolTimedOut` when none frees up in time, `PoolClosed` after [`Lite::close`], or why a
    /// new connection could not be opened.
    pub(crate) async fn acquire(&self) -> Result<LiteConn, sqlx::Error> {
        let permit = self.inner.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout(self.inner.acquire_timeout, permit).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(sqlx::Error::PoolClosed),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        let idle = self.inner.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => SqliteConnection::connect_with(&self.inner.options).await?,
        };
        Ok(LiteConn {
            conn: Some(conn),
            inner: Arc::clone(&self.inner),
            _permit: permit,
        })
    }

    /// Refuse new acquisitions and close the idle connections (those out close when dropped).
    pub(crate) async fn close(&self) {
        self.inner.permits.close();
        let idle = std::mem::take(&mut *self.inner.idle());
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

impl Inner {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<SqliteConnection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::ops::Deref for LiteConn {
    type Target = SqliteConnection;

    #[expect(clippy::expect_used, reason = "only `drop` takes the connection out")]
    fn deref(&self) -> &SqliteConnection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for LiteConn {
    #[expect(clippy::expect_used, reason = "only `drop` takes the connection out")]
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for LiteConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !self.inner.permits.is_closed()
        {
            self.inner.idle().push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::str::FromStr;

    /// A pool of `size` on a new database file in a directory of its own.
    fn fresh_pool(name: &str, size: u32) -> (Lite, PathBuf) {
        let dir = std::env::temp_dir().join(format!("rekey-lite-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (pool_at(&dir, size), dir)
    }

    fn pool_at(dir: &Path, size: u32) -> Lite {
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        Lite::new(options, size, Duration::from_millis(200))
    }

    async fn exec(conn: &mut SqliteConnection, sql: &str) {
        sqlx::query(sql).execute(conn).await.unwrap();
    }

    async fn rows(conn: &mut SqliteConnection) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn connections_come_back_and_are_reused() {
        let (lite, dir) = fresh_pool("reuse", 2);
        let mut a = lite.acquire().await.unwrap();
        exec(&mut a, "CREATE TEMP TABLE mine (x)").await;
        drop(a);
        // The one idle connection again: its TEMP table is there.
        let mut b = lite.acquire().await.unwrap();
        exec(&mut b, "SELECT x FROM mine").await;
        let _c = lite.acquire().await.unwrap();
        // Two out of two: a third waits, then times out.
        let third = lite.acquire().await;
        assert!(matches!(third, Err(sqlx::Error::PoolTimedOut)));
        drop(b);
        assert!(lite.acquire().await.is_ok());
        lite.close().await;
        assert!(matches!(lite.acquire().await, Err(sqlx::Error::PoolClosed)));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_transaction_dropped_unfinished_is_rolled_back_before_reuse() {
        let (lite, dir) = fresh_pool("rollback", 1);
        let mut conn = lite.acquire().await.unwrap();
        exec(&mut conn, "CREATE TABLE t (x)").await;
        {
            let mut tx = Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE")
                .await
                .unwrap();
            exec(&mut tx, "INSERT INTO t VALUES (1)").await;
            // Dropped here, neither committed nor rolled back (a request cancelled mid-way).
        }
        drop(conn);
        let mut again = lite.acquire().await.unwrap();
        assert_eq!(rows(&mut again).await, 0);
        // Not left inside the dropped transaction: this one commits for good.
        let mut tx = Connection::begin_with(&mut *again, "BEGIN IMMEDIATE")
            .await
            .unwrap();
        exec(&mut tx, "INSERT INTO t VALUES (2)").await;
        tx.commit().await.unwrap();
        drop(again);
        lite.close().await;
        let reopened = pool_at(&dir, 1);
        assert_eq!(rows(&mut reopened.acquire().await.unwrap()).await, 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
