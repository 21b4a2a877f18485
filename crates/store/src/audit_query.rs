//! Audit look-ups for `rekey audit show`: the records of one support id, and one account's
//! records within a time window.
//!
//! The body is the canonical JSON of the event (not interpreted by SQL elsewhere), so a query
//! pre-selects candidates with `body LIKE '%"support_id":"…"%'` (the value JSON-encoded as the
//! body has it, then `%`, `_` and `\` escaped for LIKE with `ESCAPE '\'`) and every candidate is
//! decoded and compared exactly in Rust: SQLite's LIKE ignores ASCII case, and a pre-selection
//! must never decide. Pages of [`PAGE`] rows in `seq` order; only matches are kept in memory.
//! The account window also uses the `at_ms` column (written from the event at append) to
//! pre-select, and re-checks the body's `at_ms`.

use rekey_core::audit::{AuditEvent, AuditRecord};
use rekey_core::audit_export::{body_fragment, decode};
use rekey_core::store::{StoreError, StoreResult};

use crate::{SqlStore, map_err};

/// Rows per query.
const PAGE: i64 = 500;

/// `%`, `_` and the escape character itself, escaped for `LIKE … ESCAPE '\'`.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn hash32(bytes: &[u8]) -> StoreResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes".into()))
}

impl SqlStore {
    /// Every record whose event has this support id, in `seq` order (a reset and the outbox
    /// work it left share one).
    ///
    /// # Errors
    /// A database error, or `Corrupt` for a stored hash of the wrong length.
    pub async fn audit_by_support_id(&self, support_id: &str) -> StoreResult<Vec<AuditRecord>> {
        self.audit_matching("support_id", support_id, (i64::MIN, i64::MAX), |e| {
            e.support_id == support_id
        })
        .await
    }

    /// The records of the account `target_guid` (as the events hold it) with
    /// `from_ms <= at_ms <= until_ms`, in `seq` order.
    ///
    /// # Errors
    /// As [`Self::audit_by_support_id`].
    pub async fn audit_by_target(
        &self,
        target_guid: &str,
        from_ms: i64,
        until_ms: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        self.audit_matching("target_guid", target_guid, (from_ms, until_ms), |e| {
            e.target_guid.as_deref() == Some(target_guid) && (from_ms..=until_ms).contains(&e.at_ms)
        })
        .await
    }

    async fn audit_matching(
        &self,
        field: &str,
        value: &str,
        (from_ms, until_ms): (i64, i64),
        keep: impl Fn(&AuditEvent) -> bool,
    ) -> StoreResult<Vec<AuditRecord>> {
        const SQL: &str = "SELECT seq, body, prev_hash, hash FROM audit \
                           WHERE seq > $1 AND body LIKE $2 ESCAPE '\\' \
                           AND at_ms >= $3 AND at_ms <= $4 ORDER BY seq LIMIT $5";
        let pattern = format!("%{}%", like_escape(&body_fragment(field, value)));
        let mut found = Vec::new();
        let mut after = 0_i64;
        loop {
            let rows: Vec<(i64, String, Vec<u8>, Vec<u8>)> = on_pool!(self, |p| {
                sqlx::query_as(SQL)
                    .bind(after)
                    .bind(&pattern)
                    .bind(from_ms)
                    .bind(until_ms)
                    .bind(PAGE)
                    .fetch_all(p)
                    .await
            })
            .map_err(map_err)?;
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= PAGE;
            for (seq, body, prev_hash, hash) in rows {
                after = seq;
                let record = AuditRecord {
                    seq,
                    body,
                    prev_hash: hash32(&prev_hash)?,
                    hash: hash32(&hash)?,
                };
                if decode(&record).is_some_and(|e| keep(&e)) {
                    found.push(record);
                }
            }
            if !full {
                return Ok(found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_escape(r#""a%b_c\"d""#), r#""a\%b\_c\\"d""#);
    }
}
