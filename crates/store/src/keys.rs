//! Re-sealing stored secrets under a new key (`rekey admin rotate-key`): the sealed values of
//! enrollments (`data`, named by `key_id`) and of queued outbox items (`payload`, an envelope
//! that names its key). Each replacement is a compare-and-swap on the old value, so a value the
//! server changed meanwhile (a new TOTP seed, a delivered item) is left alone, never overwritten.

use rekey_core::store::StoreResult;

use crate::{SqlStore, map_err};

/// One sealed enrollment value.
#[derive(Debug, Clone)]
pub struct SealedEnrollment {
    pub user_guid: Vec<u8>,
    pub method: String,
    pub key_id: String,
    pub data: Vec<u8>,
}

/// One queued outbox item's sealed payload.
#[derive(Debug, Clone)]
pub struct SealedItem {
    pub id: String,
    pub payload: Vec<u8>,
}

impl SqlStore {
    /// The distinct key ids sealed enrollment values name.
    ///
    /// # Errors
    /// As any query.
    pub async fn sealed_key_ids(&self) -> StoreResult<Vec<String>> {
        const SQL: &str =
            "SELECT DISTINCT key_id FROM enrollments WHERE key_id <> '' ORDER BY key_id";
        on_pool!(self, |p| sqlx::query_scalar::<_, String>(SQL)
            .fetch_all(p)
            .await)
        .map_err(map_err)
    }

    /// Every enrollment with a sealed value.
    ///
    /// # Errors
    /// As any query.
    pub async fn sealed_enrollments(&self) -> StoreResult<Vec<SealedEnrollment>> {
        const SQL: &str = "SELECT user_guid, method, key_id, data FROM enrollments \
                           WHERE key_id <> '' ORDER BY user_guid, method";
        let rows: Vec<(Vec<u8>, String, String, Vec<u8>)> =
            on_pool!(self, |p| sqlx::query_as(SQL).fetch_all(p).await).map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(user_guid, method, key_id, data)| SealedEnrollment {
                user_guid,
                method,
                key_id,
                data,
            })
            .collect())
    }

    /// Replace `old`'s sealed value with `data` under `key_id` if it is still `old.data`.
    /// Returns whether it was replaced.
    ///
    /// # Errors
    /// As any query.
    pub async fn reseal_enrollment(
        &self,
        old: &SealedEnrollment,
        key_id: &str,
        data: &[u8],
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE enrollments SET key_id = $1, data = $2 \
                           WHERE user_guid = $3 AND method = $4 AND data = $5";
        let done = on_pool!(self, |p| sqlx::query(SQL)
            .bind(key_id)
            .bind(data)
            .bind(&old.user_guid)
            .bind(&old.method)
            .bind(&old.data)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(map_err)?;
        Ok(done == 1)
    }

    /// Every queued outbox item's payload.
    ///
    /// # Errors
    /// As any query.
    pub async fn sealed_outbox(&self) -> StoreResult<Vec<SealedItem>> {
        const SQL: &str = "SELECT id, payload FROM outbox ORDER BY seq";
        let rows: Vec<(String, Vec<u8>)> =
            on_pool!(self, |p| sqlx::query_as(SQL).fetch_all(p).await).map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, payload)| SealedItem { id, payload })
            .collect())
    }

    /// Replace an outbox item's payload if it is still `old.payload`.
    ///
    /// # Errors
    /// As any query.
    pub async fn reseal_outbox(&self, old: &SealedItem, payload: &[u8]) -> StoreResult<bool> {
        const SQL: &str = "UPDATE outbox SET payload = $1 WHERE id = $2 AND payload = $3";
        let done = on_pool!(self, |p| sqlx::query(SQL)
            .bind(payload)
            .bind(&old.id)
            .bind(&old.payload)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(map_err)?;
        Ok(done == 1)
    }
}
