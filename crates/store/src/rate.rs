//! Rate-limit events, reservations and locks.
//!
//! A reservation is a rate event with the id the database gave it: it counts in `hit`/`hits` like
//! any other event, and `release` deletes it by id. `hit` and `reserve` of one key are serialized
//! by the same lock, so a count they read cannot change before their insert.
//!
//! On SQLite each is ONE round trip to the connection's thread: the prune, then one statement that
//! inserts and counts (`hit`) or counts and inserts below the limit (`reserve`). A writing
//! statement holds the database's write lock from its start to its end, so the count and the
//! insert are atomic without `BEGIN IMMEDIATE … COMMIT` (which cost four more round trips — a
//! thread hand-off each way — per call). PostgreSQL runs the transaction under the key's advisory
//! lock.

use rekey_core::store::{StoreResult, UnixTime};

use crate::sql::{LOCK_NS_RATE, count};
use crate::{RATE_EVENT_RETENTION, SqlStore, map_err};

/// The key's events that no window needs any more (see [`RATE_EVENT_RETENTION`]).
const PRUNE: &str = "DELETE FROM rate_events WHERE event_key = $1 AND happened_at <= $2";
/// Events of a key in `(since, now]`.
const COUNT: &str = "SELECT COUNT(*) FROM rate_events \
                     WHERE event_key = $1 AND happened_at > $2 AND happened_at <= $3";
const INSERT: &str =
    "INSERT INTO rate_events (event_key, happened_at) VALUES ($1, $2) RETURNING id";

/// The prune horizon and the window's lower (open) bound at `now`.
fn bounds(now: UnixTime, window: i64) -> (UnixTime, UnixTime) {
    (
        now.saturating_sub(window.max(RATE_EVENT_RETENTION)),
        now.saturating_sub(window),
    )
}

/// SQLite `hit`: prune, then insert and count the window in the same statement (`$3` = since);
/// the count excludes the new row by id and adds it, whether or not the subquery sees it.
const SQLITE_HIT: &str = "DELETE FROM rate_events WHERE event_key = $1 AND happened_at <= $4; \
     INSERT INTO rate_events (event_key, happened_at) VALUES ($1, $2) \
     RETURNING 1 + (SELECT COUNT(*) FROM rate_events AS o WHERE o.event_key = $1 \
     AND o.happened_at > $3 AND o.happened_at <= $2 AND o.id <> rate_events.id)";

/// SQLite `reserve`: prune, then insert only while the window holds fewer than `$4` events.
const SQLITE_RESERVE: &str = "DELETE FROM rate_events WHERE event_key = $1 AND happened_at <= $5; \
     INSERT INTO rate_events (event_key, happened_at) SELECT $1, $2 \
     WHERE (SELECT COUNT(*) FROM rate_events WHERE event_key = $1 \
     AND happened_at > $3 AND happened_at <= $2) < $4 RETURNING id";

impl SqlStore {
    pub(crate) async fn rate_hit(&self, key: &str, now: UnixTime, window: i64) -> StoreResult<u32> {
        if let crate::Pool::Sqlite(lite) = &self.pool {
            let (horizon, since) = bounds(now, window);
            let mut conn = lite.acquire().await.map_err(map_err)?;
            return sqlx::query_scalar::<_, i64>(SQLITE_HIT)
                .bind(key)
                .bind(now)
                .bind(since)
                .bind(horizon)
                .fetch_one(&mut *conn)
                .await
                .map(count)
                .map_err(map_err);
        }
        self.hit_tx(key, now, window)
            .await
            .map(count)
            .map_err(map_err)
    }

    async fn hit_tx(&self, key: &str, now: UnixTime, window: i64) -> Result<i64, sqlx::Error> {
        let (horizon, since) = bounds(now, window);
        serialized!(self, LOCK_NS_RATE, key, |tx| {
            sqlx::query(PRUNE)
                .bind(key)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT)
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query_scalar::<_, i64>(COUNT)
                .bind(key)
                .bind(since)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
        })
    }

    pub(crate) async fn rate_hits(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
    ) -> StoreResult<u32> {
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar(COUNT)
            .bind(key)
            .bind(now.saturating_sub(window))
            .bind(now)
            .fetch_one(p)
            .await)
        .map_err(map_err)?;
        Ok(count(n))
    }

    pub(crate) async fn rate_reserve(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        limit: u32,
    ) -> StoreResult<Option<i64>> {
        if let crate::Pool::Sqlite(lite) = &self.pool {
            let (horizon, since) = bounds(now, window);
            let mut conn = lite.acquire().await.map_err(map_err)?;
            return sqlx::query_scalar::<_, i64>(SQLITE_RESERVE)
                .bind(key)
                .bind(now)
                .bind(since)
                .bind(i64::from(limit))
                .bind(horizon)
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_err);
        }
        self.reserve_tx(key, now, window, limit)
            .await
            .map_err(map_err)
    }

    /// Count, then insert only below the limit, under the key's lock. Prunes like `hit`, also when
    /// the budget is spent.
    async fn reserve_tx(
        &self,
        key: &str,
        now: UnixTime,
        window: i64,
        limit: u32,
    ) -> Result<Option<i64>, sqlx::Error> {
        let (horizon, since) = bounds(now, window);
        serialized!(self, LOCK_NS_RATE, key, |tx| {
            sqlx::query(PRUNE)
                .bind(key)
                .bind(horizon)
                .execute(&mut *tx)
                .await?;
            let n: i64 = sqlx::query_scalar(COUNT)
                .bind(key)
                .bind(since)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if n < i64::from(limit) {
                Some(
                    sqlx::query_scalar::<_, i64>(INSERT)
                        .bind(key)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?,
                )
            } else {
                None
            }
        })
    }

    /// One statement: of concurrent callers with the same id, one deletes the row.
    pub(crate) async fn rate_release(&self, key: &str, id: i64) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM rate_events WHERE id = $1 AND event_key = $2";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(id)
            .bind(key)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }

    pub(crate) async fn rate_lock(&self, key: &str, until: UnixTime) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO locks (lock_key, locked_until) VALUES ($1, $2) \
                           ON CONFLICT (lock_key) DO UPDATE SET locked_until = excluded.locked_until \
                           WHERE excluded.locked_until > locks.locked_until";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(key)
            .bind(until)
            .execute(p)
            .await
            .map(drop))
        .map_err(map_err)
    }

    /// Locked while `now < until`.
    pub(crate) async fn rate_locked_until(
        &self,
        key: &str,
        now: UnixTime,
    ) -> StoreResult<Option<UnixTime>> {
        const SQL: &str =
            "SELECT locked_until FROM locks WHERE lock_key = $1 AND locked_until > $2";
        on_pool!(self, |p| sqlx::query_scalar(SQL)
            .bind(key)
            .bind(now)
            .fetch_optional(p)
            .await)
        .map_err(map_err)
    }
}
