//! What the statement modules share: dispatch to the concrete pool, serialized transactions and
//! their lock namespaces, decoding helpers.

use rekey_core::Guid;
use rekey_core::store::{StoreError, StoreResult};

/// Run `$body` with `$p` bound to an executor of the store's main pool (the same SQL serves
/// both dialects): a pooled connection on SQLite (`&mut`, one statement), the pool on PostgreSQL.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(lite) => match lite.acquire().await {
                Ok(mut conn) => {
                    let $p = &mut *conn;
                    $body
                }
                Err(e) => Err(e),
            },
            $crate::Pool::Postgres($p) => $body,
        }
    };
}

/// Run `$body` with `$tx` a transaction that holds the write lock for `(ns, key)`:
/// `BEGIN IMMEDIATE` on SQLite (one writer at a time), an advisory transaction lock on PostgreSQL
/// (READ COMMITTED, so statements after the lock see what the previous holder committed).
/// Commits when `$body` returns `Ok`; a dropped transaction rolls back.
macro_rules! serialized {
    ($store:expr, $ns:expr, $key:expr, |$tx:ident| $body:expr) => {
        serialized_on!(&$store.pool, $ns, $key, |$tx| $body)
    };
}

/// [`serialized!`] on a given pool (the audit chain's own, see `SqlStore::chain`).
macro_rules! serialized_on {
    ($pool:expr, $ns:expr, $key:expr, |$tx:ident| $body:expr) => {
        match $pool {
            $crate::Pool::Sqlite(p) => {
                let mut conn = p.acquire().await?;
                let mut $tx = sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
            $crate::Pool::Postgres(p) => {
                let mut $tx = p.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED").await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                    .bind($ns)
                    .bind($key)
                    .execute(&mut *$tx)
                    .await?;
                let out = $body;
                $tx.commit().await?;
                Ok(out)
            }
        }
    };
}

/// Advisory-lock namespaces (the first key of PostgreSQL's two-key form).
pub(crate) const LOCK_NS_RATE: i32 = 0x52_4b_01; // "RK" 1
pub(crate) const LOCK_NS_AUDIT: i32 = 0x52_4b_02; // "RK" 2

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn guid(bytes: &[u8]) -> StoreResult<Guid> {
    Guid::from_bytes(bytes).ok_or_else(|| corrupt("user GUID is not 16 bytes"))
}

/// A database count or counter as `u32` (saturating; never negative).
pub(crate) fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}
