//! The forwarder's cursor: the last audit record sent to each syslog target (`audit_forward`,
//! migration 0005), and the lease that lets one replica forward to a target at a time.
//!
//! The store neither formats nor sends (the binary's `forward.rs`). Every statement is a single
//! one: `claim` takes or renews the lease and reads the cursor, `advance` moves the cursor forward
//! only for the lease's holder and never backwards, so a forwarder that lost its lease (or a
//! stale one after a long pause) cannot rewind or skip another's progress.

use rekey_core::store::StoreResult;

use crate::sql::corrupt;
use crate::{SqlStore, map_err};

/// Where a target's forwarding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardCursor {
    /// The last record sent (0: none yet).
    pub seq: i64,
    /// Its chain hash, as sent (`None` when `seq` is 0).
    pub hash: Option<[u8; 32]>,
}

fn cursor(seq: i64, hash: Option<Vec<u8>>) -> StoreResult<ForwardCursor> {
    let hash = hash
        .map(|h| {
            <[u8; 32]>::try_from(h).map_err(|_| corrupt("forward cursor hash is not 32 bytes"))
        })
        .transpose()?;
    Ok(ForwardCursor { seq, hash })
}

impl SqlStore {
    /// Take or renew the lease on `target` for `holder` until `now_ms + lease_ms`, and read its
    /// cursor. `None`: another holder's lease has not expired. A target never seen starts at 0.
    ///
    /// # Errors
    /// As any query.
    pub async fn claim_forward(
        &self,
        target: &str,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> StoreResult<Option<ForwardCursor>> {
        const INSERT: &str = "INSERT INTO audit_forward (target, updated_ms) VALUES ($1, $2) \
                              ON CONFLICT (target) DO NOTHING";
        const CLAIM: &str = "UPDATE audit_forward SET holder = $2, held_until_ms = $3 \
                             WHERE target = $1 AND (holder = $2 OR held_until_ms <= $4) \
                             RETURNING seq, hash";
        on_pool!(self, |p| sqlx::query(INSERT)
            .bind(target)
            .bind(now_ms)
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(map_err)?;
        let row: Option<(i64, Option<Vec<u8>>)> = on_pool!(self, |p| sqlx::query_as(CLAIM)
            .bind(target)
            .bind(holder)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .fetch_optional(p)
            .await)
        .map_err(map_err)?;
        row.map(|(seq, hash)| cursor(seq, hash)).transpose()
    }

    /// Record that `target` was sent up to record `seq` (with chain hash `hash`). Only the lease's
    /// holder moves the cursor, and only forward; `false` when nothing moved (the lease went to
    /// another holder, or the cursor is already at or past `seq`).
    ///
    /// # Errors
    /// As any query.
    pub async fn advance_forward(
        &self,
        target: &str,
        holder: &str,
        seq: i64,
        hash: &[u8; 32],
        now_ms: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE audit_forward SET seq = $3, hash = $4, updated_ms = $5 \
                           WHERE target = $1 AND holder = $2 AND seq < $3";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(target)
            .bind(holder)
            .bind(seq)
            .bind(&hash[..])
            .bind(now_ms)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }

    /// The cursor of `target`, if it was ever claimed (read-only: for status and tests).
    ///
    /// # Errors
    /// As any query.
    pub async fn forward_cursor(&self, target: &str) -> StoreResult<Option<ForwardCursor>> {
        const SQL: &str = "SELECT seq, hash FROM audit_forward WHERE target = $1";
        let row: Option<(i64, Option<Vec<u8>>)> = on_pool!(self, |p| sqlx::query_as(SQL)
            .bind(target)
            .fetch_optional(p)
            .await)
        .map_err(map_err)?;
        row.map(|(seq, hash)| cursor(seq, hash)).transpose()
    }
}
