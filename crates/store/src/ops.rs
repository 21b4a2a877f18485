//! `Store` for `SqlStore`: one statement per operation where possible, a locked transaction where
//! a read decides the write.

use rekey_core::audit::{AuditEvent, AuditRecord, GENESIS, chain_hash};
use rekey_core::store::{
    Challenge, Enrollment, FlowKind, FlowRecord, MethodKind, OutboxItem, Store, StoreResult,
    UnixTime,
};
use rekey_core::{BoxFuture, Guid};

use crate::sql::{LOCK_NS_AUDIT, corrupt, count, guid};
use crate::{Pool, SqlStore, map_err};

type FlowRow = (String, String, Option<Vec<u8>>, String, i64, i64, i64);
type ChallengeRow = (String, String, Vec<u8>, String, Vec<u8>, i64, i64);
type AuditRow = (i64, String, Vec<u8>, Vec<u8>);

macro_rules! flow_columns {
    () => {
        "id, kind, user_guid, state, version, created_at, expires_at"
    };
}
macro_rules! challenge_columns {
    () => {
        "id, flow_id, user_guid, purpose, code_hash, expires_at, failed_attempts"
    };
}

fn hash32(bytes: &[u8]) -> Result<[u8; 32], sqlx::Error> {
    bytes
        .try_into()
        .map_err(|_| sqlx::Error::Decode("audit hash is not 32 bytes".into()))
}

fn flow_record(row: FlowRow) -> StoreResult<FlowRecord> {
    let (id, kind, user, state, version, created_at, expires_at) = row;
    Ok(FlowRecord {
        id,
        kind: FlowKind::parse(&kind).ok_or_else(|| corrupt("unknown flow kind"))?,
        user: user.as_deref().map(guid).transpose()?,
        state,
        version,
        created_at,
        expires_at,
    })
}

fn challenge_record(row: ChallengeRow) -> StoreResult<Challenge> {
    let (id, flow_id, user, purpose, code_hash, expires_at, failed) = row;
    Ok(Challenge {
        id,
        flow_id,
        user: guid(&user)?,
        purpose,
        code_hash,
        expires_at,
        failed_attempts: u32::try_from(failed).map_err(|_| corrupt("negative attempt count"))?,
    })
}

fn audit_record(row: AuditRow) -> StoreResult<AuditRecord> {
    let (seq, body, prev_hash, hash) = row;
    Ok(AuditRecord {
        seq,
        body,
        prev_hash: hash32(&prev_hash).map_err(map_err)?,
        hash: hash32(&hash).map_err(map_err)?,
    })
}

impl SqlStore {
    /// Append one record to the chain. On SQLite, with the head known from this process's last
    /// append, ONE statement that inserts only if that head is still the chain's head (a single
    /// write statement holds SQLite's write lock from its first read to its end, so nothing can
    /// slip in between); if another writer moved the head (another process, an admin command), or
    /// the head is not known yet, the locked transaction reads the head and appends. PostgreSQL
    /// always takes the transaction with its advisory lock: a statement's snapshot there predates
    /// its locks, and replicas are expected to share the chain.
    async fn append_inner(&self, event: &AuditEvent) -> Result<AuditRecord, sqlx::Error> {
        const APPEND_AFTER: &str = "INSERT INTO audit (seq, body, prev_hash, hash, at_ms) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT MAX(seq) FROM audit) = $1 - 1 \
               AND (SELECT hash FROM audit WHERE seq = $1 - 1) = $3";
        let body = event.canonical();
        let mut head = self.audit_head.lock().await;
        if let (Some((seq, prev_hash)), Pool::Sqlite(lite)) = (*head, &self.chain) {
            let mut conn = lite.acquire().await?;
            let seq = seq + 1;
            let hash = chain_hash(&prev_hash, seq, &body);
            let appended = sqlx::query(APPEND_AFTER)
                .bind(seq)
                .bind(&body)
                .bind(prev_hash.as_slice())
                .bind(hash.as_slice())
                .bind(event.at_ms)
                .execute(&mut *conn)
                .await?
                .rows_affected()
                == 1;
            // Back to the chain's one connection before `append_locked` takes it.
            drop(conn);
            if appended {
                *head = Some((seq, hash));
                return Ok(AuditRecord {
                    seq,
                    body,
                    prev_hash,
                    hash,
                });
            }
        }
        let record = self.append_locked(body, event.at_ms).await?;
        *head = Some((record.seq, record.hash));
        Ok(record)
    }

    /// The append that reads the head under the chain's write lock.
    async fn append_locked(&self, body: String, at_ms: i64) -> Result<AuditRecord, sqlx::Error> {
        const HEAD: &str = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";
        const INSERT: &str =
            "INSERT INTO audit (seq, body, prev_hash, hash, at_ms) VALUES ($1, $2, $3, $4, $5)";
        serialized_on!(&self.chain, LOCK_NS_AUDIT, "audit", |tx| {
            let head: Option<(i64, Vec<u8>)> =
                sqlx::query_as(HEAD).fetch_optional(&mut *tx).await?;
            let (seq, prev_hash) = match head {
                Some((seq, hash)) => (seq + 1, hash32(&hash)?),
                None => (1, GENESIS),
            };
            let hash = chain_hash(&prev_hash, seq, &body);
            sqlx::query(INSERT)
                .bind(seq)
                .bind(&body)
                .bind(prev_hash.as_slice())
                .bind(hash.as_slice())
                .bind(at_ms)
                .execute(&mut *tx)
                .await?;
            AuditRecord {
                seq,
                body,
                prev_hash,
                hash,
            }
        })
    }
}

impl Store for SqlStore {
    /// One pre-selecting query (`audit_by_target`: the account in the body, the time in `at_ms`)
    /// instead of walking the whole chain.
    fn recent_audit_of<'a>(
        &'a self,
        target_guid: &'a str,
        since_ms: i64,
        limit: usize,
    ) -> BoxFuture<'a, StoreResult<Vec<rekey_core::audit::AuditEvent>>> {
        Box::pin(async move {
            let records = self
                .audit_by_target(target_guid, since_ms, i64::MAX)
                .await?;
            Ok(records
                .iter()
                .rev()
                .filter_map(rekey_core::audit_export::decode)
                .take(limit)
                .collect())
        })
    }

    fn insert_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<()>> {
        const SQL: &str = concat!(
            "INSERT INTO flows (",
            flow_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        );
        Box::pin(async move {
            let user = flow.user.as_ref().map(|g| g.0.as_slice());
            on_pool!(self, |p| sqlx::query(SQL)
                .bind(&flow.id)
                .bind(flow.kind.as_str())
                .bind(user)
                .bind(&flow.state)
                .bind(flow.version)
                .bind(flow.created_at)
                .bind(flow.expires_at)
                .execute(p)
                .await
                .map(drop))
            .map_err(map_err)
        })
    }

    /// Live while `now < expires_at`.
    fn flow<'a>(
        &'a self,
        id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<FlowRecord>>> {
        const SQL: &str = concat!(
            "SELECT ",
            flow_columns!(),
            " FROM flows WHERE id = $1 AND expires_at > $2"
        );
        Box::pin(async move {
            let row: Option<FlowRow> = on_pool!(self, |p| sqlx::query_as(SQL)
                .bind(id)
                .bind(now)
                .fetch_optional(p)
                .await)
            .map_err(map_err)?;
            row.map(flow_record).transpose()
        })
    }

    fn update_flow<'a>(&'a self, flow: &'a FlowRecord) -> BoxFuture<'a, StoreResult<bool>> {
        const SQL: &str = "UPDATE flows SET state = $1, expires_at = $2, version = version + 1 \
                           WHERE id = $3 AND version = $4";
        Box::pin(async move {
            on_pool!(self, |p| sqlx::query(SQL)
                .bind(&flow.state)
                .bind(flow.expires_at)
                .bind(&flow.id)
                .bind(flow.version)
                .execute(p)
                .await
                .map(|r| r.rows_affected() == 1))
            .map_err(map_err)
        })
    }

    fn delete_flow<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        const SQL: &str = "DELETE FROM flows WHERE id = $1";
        Box::pin(async move {
            on_pool!(self, |p| sqlx::query(SQL)
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected() == 1))
            .map_err(map_err)
        })
    }

    /// Their challenges go with them (foreign key, `ON DELETE CASCADE`).
    fn delete_user_flows<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<u64>> {
        const SQL: &str = "DELETE FROM flows WHERE user_guid = $1";
        Box::pin(async move {
            on_pool!(self, |p| sqlx::query(SQL)
                .bind(user.0.as_slice())
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            .map_err(map_err)
        })
    }

    /// Ordered by method.
    fn enrollments<'a>(&'a self, user: &'a Guid) -> BoxFuture<'a, StoreResult<Vec<Enrollment>>> {
        Box::pin(self.enrollments_of(user))
    }

    /// One statement; a taken `lookup` is a unique violation (`Database`).
    fn upsert_enrollment<'a>(
        &'a self,
        enrollment: &'a Enrollment,
    ) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.enrollment_upsert(enrollment))
    }

    fn enrollment_by_lookup<'a>(
        &'a self,
        method: MethodKind,
        lookup: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<Enrollment>>> {
        Box::pin(self.enrollment_by_key(method, lookup))
    }

    fn touch_enrollment<'a>(
        &'a self,
        user: &'a Guid,
        method: MethodKind,
        at: UnixTime,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.enrollment_touch(user, method, at))
    }

    /// Ordered by the user's GUID bytes, then method.
    fn all_enrollments(&self) -> BoxFuture<'_, StoreResult<Vec<Enrollment>>> {
        Box::pin(self.enrollments_all())
    }

    fn delete_enrollment<'a>(
        &'a self,
        user: &'a Guid,
        method: MethodKind,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.enrollment_delete(user, method))
    }

    /// The flow must exist (a challenge belongs to it and dies with it). The replacement takes
    /// the new `id`, so the old challenge's id no longer fails or consumes anything.
    fn put_challenge<'a>(&'a self, challenge: &'a Challenge) -> BoxFuture<'a, StoreResult<()>> {
        const SQL: &str = concat!(
            "INSERT INTO challenges (",
            challenge_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (flow_id, purpose) DO UPDATE SET id = excluded.id, \
             user_guid = excluded.user_guid, code_hash = excluded.code_hash, \
             expires_at = excluded.expires_at, failed_attempts = excluded.failed_attempts"
        );
        Box::pin(async move {
            on_pool!(self, |p| sqlx::query(SQL)
                .bind(&challenge.id)
                .bind(&challenge.flow_id)
                .bind(challenge.user.0.as_slice())
                .bind(&challenge.purpose)
                .bind(&challenge.code_hash)
                .bind(challenge.expires_at)
                .bind(i64::from(challenge.failed_attempts))
                .execute(p)
                .await
                .map(drop))
            .map_err(map_err)
        })
    }

    /// Live while `now < expires_at`.
    fn challenge<'a>(
        &'a self,
        flow_id: &'a str,
        purpose: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<Challenge>>> {
        const SQL: &str = concat!(
            "SELECT ",
            challenge_columns!(),
            " FROM challenges WHERE flow_id = $1 AND purpose = $2 AND expires_at > $3"
        );
        Box::pin(async move {
            let row: Option<ChallengeRow> = on_pool!(self, |p| sqlx::query_as(SQL)
                .bind(flow_id)
                .bind(purpose)
                .bind(now)
                .fetch_optional(p)
                .await)
            .map_err(map_err)?;
            row.map(challenge_record).transpose()
        })
    }

    /// `None` when no challenge has that id (consumed, replaced, or gone with its flow). An
    /// expired challenge still counts (the caller reads it with its expiry first).
    fn fail_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<Option<u32>>> {
        const SQL: &str = "UPDATE challenges SET failed_attempts = failed_attempts + 1 \
                           WHERE id = $1 RETURNING failed_attempts";
        Box::pin(async move {
            let n: Option<i64> = on_pool!(self, |p| sqlx::query_scalar(SQL)
                .bind(id)
                .fetch_optional(p)
                .await)
            .map_err(map_err)?;
            Ok(n.map(count))
        })
    }

    fn consume_challenge<'a>(&'a self, id: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        const SQL: &str = "DELETE FROM challenges WHERE id = $1";
        Box::pin(async move {
            on_pool!(self, |p| sqlx::query(SQL)
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected() == 1))
            .map_err(map_err)
        })
    }

    /// Serialized per key (see the crate docs); also prunes the key's events older than the larger
    /// of `window` and [`RATE_EVENT_RETENTION`](crate::RATE_EVENT_RETENTION).
    fn hit<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>> {
        Box::pin(self.rate_hit(key, now, window))
    }

    fn hits<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
    ) -> BoxFuture<'a, StoreResult<u32>> {
        Box::pin(self.rate_hits(key, now, window))
    }

    /// Serialized with `hit` per key; prunes like `hit`.
    fn reserve<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
        window: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Option<i64>>> {
        Box::pin(self.rate_reserve(key, now, window, limit))
    }

    /// `false` also for a reservation already pruned by a later `hit`/`reserve` of its key (older
    /// than both their window and [`RATE_EVENT_RETENTION`](crate::RATE_EVENT_RETENTION)).
    fn release<'a>(&'a self, key: &'a str, id: i64) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.rate_release(key, id))
    }

    fn lock<'a>(&'a self, key: &'a str, until: UnixTime) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.rate_lock(key, until))
    }

    /// Locked while `now < until`.
    fn locked_until<'a>(
        &'a self,
        key: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, StoreResult<Option<UnixTime>>> {
        Box::pin(self.rate_locked_until(key, now))
    }

    /// Serialized by a write lock (see the crate docs): the head is read and the next record
    /// inserted in one transaction.
    fn append_audit<'a>(
        &'a self,
        event: &'a AuditEvent,
    ) -> BoxFuture<'a, StoreResult<AuditRecord>> {
        Box::pin(async move { self.append_inner(event).await.map_err(map_err) })
    }

    /// An `id` already queued is a `Database` error.
    fn enqueue<'a>(&'a self, item: &'a OutboxItem) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.outbox_enqueue(item))
    }

    /// One statement (see [`outbox`](crate::outbox)); oldest = enqueued first.
    fn claim<'a>(
        &'a self,
        now: UnixTime,
        lease: i64,
        limit: u32,
    ) -> BoxFuture<'a, StoreResult<Vec<OutboxItem>>> {
        Box::pin(self.outbox_claim(now, lease, limit))
    }

    fn finish<'a>(&'a self, id: &'a str, attempts: u32) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.outbox_finish(id, attempts))
    }

    /// An unknown `id` (finished meanwhile) changes nothing.
    fn retry<'a>(
        &'a self,
        id: &'a str,
        attempts: u32,
        at: UnixTime,
    ) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.outbox_retry(id, attempts, at))
    }

    fn audit_after(&self, after: i64, limit: u32) -> BoxFuture<'_, StoreResult<Vec<AuditRecord>>> {
        const SQL: &str = "SELECT seq, body, prev_hash, hash FROM audit \
                           WHERE seq > $1 ORDER BY seq LIMIT $2";
        Box::pin(async move {
            let rows: Vec<AuditRow> = on_pool!(self, |p| sqlx::query_as(SQL)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await)
            .map_err(map_err)?;
            rows.into_iter().map(audit_record).collect()
        })
    }
}
