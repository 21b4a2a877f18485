//! The outbox: work queued by a request and done by a worker (invariant 9).
//!
//! A claim is ONE `UPDATE … RETURNING` that moves the due items' `not_before` past the lease and
//! counts the attempt, so two workers (or replicas) never get the same item in one lease:
//! - SQLite runs a writing statement under the database's write lock, start to end;
//! - PostgreSQL picks the rows with `FOR UPDATE SKIP LOCKED` (a concurrent claimer skips them
//!   instead of waiting and then claiming them again), and the outer `not_before <= now` is
//!   re-checked on the newest row version should a row have changed meanwhile.
//!
//! "Oldest first" is the enqueue order (`seq`).

use rekey_core::store::{OutboxItem, OutboxKind, StoreResult, UnixTime};

use crate::sql::{corrupt, guid};
use crate::{Pool, SqlStore, map_err};

type OutboxRow = (i64, String, String, Vec<u8>, Option<Vec<u8>>, i64, i64, i64);

macro_rules! outbox_columns {
    () => {
        "id, kind, payload, user_guid, not_before, expires_at, attempts"
    };
}

/// `$1` now, `$2` the new `not_before`, `$3` the limit.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET not_before = $2, attempts = attempts + 1 \
             WHERE not_before <= $1 AND seq IN (SELECT seq FROM outbox WHERE not_before <= $1 \
             ORDER BY seq LIMIT $3",
            $lock,
            ") RETURNING seq, ",
            outbox_columns!()
        )
    };
}

fn outbox_item(row: OutboxRow) -> StoreResult<(i64, OutboxItem)> {
    let (seq, id, kind, payload, user, not_before, expires_at, attempts) = row;
    let item = OutboxItem {
        id,
        kind: OutboxKind::parse(&kind).ok_or_else(|| corrupt("unknown outbox kind"))?,
        payload,
        user: user.as_deref().map(guid).transpose()?,
        not_before,
        expires_at,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("outbox attempts out of range"))?,
    };
    Ok((seq, item))
}

impl SqlStore {
    pub(crate) async fn outbox_enqueue(&self, item: &OutboxItem) -> StoreResult<()> {
        const SQL: &str = concat!(
            "INSERT INTO outbox (",
            outbox_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        let user = item.user.as_ref().map(|g| g.0.as_slice());
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(&item.id)
            .bind(item.kind.as_str())
            .bind(&item.payload)
            .bind(user)
            .bind(item.not_before)
            .bind(item.expires_at)
            .bind(i64::from(item.attempts))
            .execute(p)
            .await
            .map(drop))
        .map_err(map_err)
    }

    pub(crate) async fn outbox_claim(
        &self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxItem>> {
        const SQLITE: &str = claim_sql!("");
        const POSTGRES: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");
        let until = now.saturating_add(lease);
        let sql = match self.pool {
            Pool::Sqlite(_) => SQLITE,
            Pool::Postgres(_) => POSTGRES,
        };
        let rows: Vec<OutboxRow> = on_pool!(self, |p| sqlx::query_as(sql)
            .bind(now)
            .bind(until)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)
        .map_err(map_err)?;
        // RETURNING has no order of its own.
        let mut items = rows
            .into_iter()
            .map(outbox_item)
            .collect::<StoreResult<Vec<_>>>()?;
        items.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(items.into_iter().map(|(_, item)| item).collect())
    }

    pub(crate) async fn outbox_finish(&self, id: &str, attempts: u32) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM outbox WHERE id = $1 AND attempts = $2";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(id)
            .bind(i64::from(attempts))
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }

    pub(crate) async fn outbox_retry(
        &self,
        id: &str,
        attempts: u32,
        at: UnixTime,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE outbox SET not_before = $2 WHERE id = $1 AND attempts = $3";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(id)
            .bind(at)
            .bind(i64::from(attempts))
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }
}
