//! Signed checkpoints of the audit chain (`audit_checkpoints`, migration 0004): append-only like
//! `audit` (triggers on both backends). The store keeps them; it neither signs nor verifies
//! (`rekey_core::audit_checkpoint`, the binary's `audit_chain`).

use rekey_core::audit_checkpoint::Checkpoint;
use rekey_core::store::StoreResult;

use crate::sql::{LOCK_NS_AUDIT, corrupt};
use crate::{Backend, SqlStore, map_err};

type CheckpointRow = (i64, i64, Vec<u8>, i64, String, Vec<u8>);

impl SqlStore {
    /// Store a checkpoint; returns its id (ids grow with every append).
    ///
    /// # Errors
    /// As any query.
    pub async fn append_checkpoint(&self, cp: &Checkpoint) -> StoreResult<i64> {
        const SQL: &str = "INSERT INTO audit_checkpoints (seq, hash, at_ms, key_id, signature) \
                           VALUES ($1, $2, $3, $4, $5) RETURNING id";
        on_pool!(self, |p| sqlx::query_scalar::<_, i64>(SQL)
            .bind(cp.seq)
            .bind(&cp.hash[..])
            .bind(cp.at_ms)
            .bind(&cp.key_id)
            .bind(&cp.signature[..])
            .fetch_one(p)
            .await)
        .map_err(map_err)
    }

    /// Every checkpoint as `(id, checkpoint)`, oldest first.
    ///
    /// # Errors
    /// As any query; `Corrupt` for a hash or signature of the wrong length.
    pub async fn checkpoints(&self) -> StoreResult<Vec<(i64, Checkpoint)>> {
        const SQL: &str = "SELECT id, seq, hash, at_ms, key_id, signature \
                           FROM audit_checkpoints ORDER BY id";
        let rows: Vec<CheckpointRow> =
            on_pool!(self, |p| sqlx::query_as(SQL).fetch_all(p).await).map_err(map_err)?;
        rows.into_iter()
            .map(|(id, seq, hash, at_ms, key_id, signature)| {
                let hash = hash
                    .try_into()
                    .map_err(|_| corrupt("checkpoint hash is not 32 bytes"))?;
                let signature = signature
                    .try_into()
                    .map_err(|_| corrupt("checkpoint signature is not 64 bytes"))?;
                Ok((
                    id,
                    Checkpoint {
                        seq,
                        hash,
                        at_ms,
                        key_id,
                        signature,
                    },
                ))
            })
            .collect()
    }

    /// The newest audit record's `(seq, hash)`, if any.
    ///
    /// # Errors
    /// As any query; `Corrupt` for a hash of the wrong length.
    pub async fn audit_chain_head(&self) -> StoreResult<Option<(i64, [u8; 32])>> {
        const SQL: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
        let row: Option<(i64, Vec<u8>)> =
            on_pool!(self, |p| sqlx::query_as(SQL).fetch_optional(p).await).map_err(map_err)?;
        row.map(|(seq, hash)| {
            hash.try_into()
                .map(|h| (seq, h))
                .map_err(|_| corrupt("audit hash is not 32 bytes"))
        })
        .transpose()
    }

    /// The first record written at or after `at_ms` (the `at_ms` column), if any.
    ///
    /// # Errors
    /// As any query.
    pub async fn first_audit_seq_from(&self, at_ms: i64) -> StoreResult<Option<i64>> {
        const SQL: &str = "SELECT MIN(seq) FROM audit WHERE at_ms >= $1";
        on_pool!(self, |p| sqlx::query_scalar::<_, Option<i64>>(SQL)
            .bind(at_ms)
            .fetch_one(p)
            .await)
        .map_err(map_err)
    }

    /// Retention (`rekey audit prune`): delete the audit records before `seq`, the one exception
    /// to invariant 32. The append-only trigger is switched off for this transaction only, so it
    /// needs the table owner's rights (a service role without them gets a `Database` error), and
    /// the audit lock keeps appends out meanwhile. The caller signs an anchor checkpoint of record
    /// `seq - 1` first, or verify reports the deleted records as missing. Returns how many went.
    ///
    /// # Errors
    /// As any query.
    pub async fn prune_audit_before(&self, seq: i64) -> StoreResult<u64> {
        let (off, on) = match self.backend() {
            Backend::Sqlite => (
                "DROP TRIGGER audit_no_delete",
                "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit\n\
                 BEGIN\n    SELECT RAISE(ABORT, 'audit records are append-only');\nEND",
            ),
            Backend::Postgres => (
                "ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete",
                "ALTER TABLE audit ENABLE TRIGGER audit_no_update_delete",
            ),
        };
        let run = async {
            serialized!(self, LOCK_NS_AUDIT, "audit", |tx| {
                sqlx::query(off).execute(&mut *tx).await?;
                let n = sqlx::query("DELETE FROM audit WHERE seq < $1")
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(on).execute(&mut *tx).await?;
                n
            })
        };
        run.await.map_err(map_err)
    }
}
