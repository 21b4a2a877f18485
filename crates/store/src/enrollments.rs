//! Enrollments: one row per user and method, with the method's material (`data`, sealed under
//! `key_id` when that is not empty) and an optional second key, `lookup`, unique per method among
//! all users (a partial unique index, so a taken key fails the `INSERT`/`UPDATE` itself with a
//! unique violation, which `map_err` reports as `Database`).
//!
//! Order: by the method's string, after the user's 16 GUID bytes for `all_enrollments`. Methods
//! are lowercase ASCII, which every collation orders alike; `BLOB`/`BYTEA` compare bytewise.

use rekey_core::Guid;
use rekey_core::store::{Enrollment, MethodKind, StoreResult, UnixTime};

use crate::sql::{corrupt, guid};
use crate::{SqlStore, map_err};

type EnrollmentRow = (
    Vec<u8>,
    String,
    String,
    Vec<u8>,
    String,
    Option<String>,
    i64,
    Option<i64>,
);

macro_rules! enrollment_columns {
    () => {
        "user_guid, method, value, data, key_id, lookup, verified_at, last_used_at"
    };
}

fn enrollment(row: EnrollmentRow) -> StoreResult<Enrollment> {
    let (user, method, value, data, key_id, lookup, verified_at, last_used_at) = row;
    Ok(Enrollment {
        user: guid(&user)?,
        method: MethodKind::parse(&method).ok_or_else(|| corrupt("unknown enrollment method"))?,
        value,
        data,
        key_id,
        lookup,
        verified_at,
        last_used_at,
    })
}

fn enrollments(rows: Vec<EnrollmentRow>) -> StoreResult<Vec<Enrollment>> {
    rows.into_iter().map(enrollment).collect()
}

impl SqlStore {
    pub(crate) async fn enrollments_of(&self, user: &Guid) -> StoreResult<Vec<Enrollment>> {
        const SQL: &str = concat!(
            "SELECT ",
            enrollment_columns!(),
            " FROM enrollments WHERE user_guid = $1 ORDER BY method"
        );
        let rows: Vec<EnrollmentRow> = on_pool!(self, |p| sqlx::query_as(SQL)
            .bind(user.0.as_slice())
            .fetch_all(p)
            .await)
        .map_err(map_err)?;
        enrollments(rows)
    }

    /// One statement: the row is inserted or replaced whole; a `lookup` another row of the method
    /// holds violates `enrollments_lookup` (the user's own row does not conflict with itself).
    pub(crate) async fn enrollment_upsert(&self, e: &Enrollment) -> StoreResult<()> {
        const SQL: &str = concat!(
            "INSERT INTO enrollments (",
            enrollment_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (user_guid, method) DO UPDATE SET value = excluded.value, \
             data = excluded.data, key_id = excluded.key_id, lookup = excluded.lookup, \
             verified_at = excluded.verified_at, last_used_at = excluded.last_used_at"
        );
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(e.user.0.as_slice())
            .bind(e.method.as_str())
            .bind(&e.value)
            .bind(e.data.as_slice())
            .bind(&e.key_id)
            .bind(e.lookup.as_deref())
            .bind(e.verified_at)
            .bind(e.last_used_at)
            .execute(p)
            .await
            .map(drop))
        .map_err(map_err)
    }

    pub(crate) async fn enrollment_by_key(
        &self,
        method: MethodKind,
        lookup: &str,
    ) -> StoreResult<Option<Enrollment>> {
        const SQL: &str = concat!(
            "SELECT ",
            enrollment_columns!(),
            " FROM enrollments WHERE method = $1 AND lookup = $2"
        );
        let row: Option<EnrollmentRow> = on_pool!(self, |p| sqlx::query_as(SQL)
            .bind(method.as_str())
            .bind(lookup)
            .fetch_optional(p)
            .await)
        .map_err(map_err)?;
        row.map(enrollment).transpose()
    }

    pub(crate) async fn enrollment_touch(
        &self,
        user: &Guid,
        method: MethodKind,
        at: UnixTime,
    ) -> StoreResult<bool> {
        const SQL: &str =
            "UPDATE enrollments SET last_used_at = $3 WHERE user_guid = $1 AND method = $2";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(user.0.as_slice())
            .bind(method.as_str())
            .bind(at)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1))
        .map_err(map_err)
    }

    pub(crate) async fn enrollments_all(&self) -> StoreResult<Vec<Enrollment>> {
        const SQL: &str = concat!(
            "SELECT ",
            enrollment_columns!(),
            " FROM enrollments ORDER BY user_guid, method"
        );
        let rows: Vec<EnrollmentRow> =
            on_pool!(self, |p| sqlx::query_as(SQL).fetch_all(p).await).map_err(map_err)?;
        enrollments(rows)
    }

    pub(crate) async fn enrollment_delete(
        &self,
        user: &Guid,
        method: MethodKind,
    ) -> StoreResult<bool> {
        const SQL: &str = "DELETE FROM enrollments WHERE user_guid = $1 AND method = $2";
        on_pool!(self, |p| sqlx::query(SQL)
            .bind(user.0.as_slice())
            .bind(method.as_str())
            .execute(p)
            .await
            .map(|r| r.rows_affected() > 0))
        .map_err(map_err)
    }
}
