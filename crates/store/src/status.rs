//! A read-only look at a store for `rekey doctor`: reachable, and which migrations are applied.
//! Unlike [`crate::SqlStore::connect`] it creates nothing and applies nothing (SQLite opens
//! read-only, a missing file is "unreachable").

use std::str::FromStr;

use rekey_core::store::{StoreError, StoreResult};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::{Backend, EmbeddedMigration, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, map_err};

/// What the database says about its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStatus {
    pub backend: Backend,
    /// Versions recorded as applied (successfully).
    pub applied: Vec<i64>,
    /// Migrations this Rekey has that the database lacks: `(version, description)`.
    pub pending: Vec<(i64, &'static str)>,
    /// Applied versions this Rekey does not know (the database is newer than the binary).
    pub unknown: Vec<i64>,
}

const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";

/// Open the database read-only and compare its migrations with this binary's.
///
/// # Errors
/// `Unavailable` when the database cannot be reached or opened, `Database` for a URL that is not
/// understood.
pub async fn status(url: &str) -> StoreResult<StoreStatus> {
    let (backend, applied) = if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid SQLite URL: {e}")))?
            .read_only(true)
            .create_if_missing(false);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .map_err(map_err)?;
        let applied = applied_versions(
            sqlx::query_scalar::<_, i64>(APPLIED)
                .fetch_all(&mut conn)
                .await,
        )?;
        let _ = conn.close().await;
        (Backend::Sqlite, applied)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("rekey-doctor");
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(map_err)?;
        let applied = applied_versions(
            sqlx::query_scalar::<_, i64>(APPLIED)
                .fetch_all(&mut conn)
                .await,
        )?;
        let _ = conn.close().await;
        (Backend::Postgres, applied)
    } else {
        return Err(StoreError::Database(
            "unsupported database URL: expected sqlite: or postgres://".into(),
        ));
    };
    let known: &[EmbeddedMigration] = match backend {
        Backend::Sqlite => SQLITE_MIGRATIONS,
        Backend::Postgres => POSTGRES_MIGRATIONS,
    };
    let pending = known
        .iter()
        .filter(|m| !applied.contains(&m.0))
        .map(|m| (m.0, m.1))
        .collect();
    let unknown = applied
        .iter()
        .copied()
        .filter(|v| !known.iter().any(|m| m.0 == *v))
        .collect();
    Ok(StoreStatus {
        backend,
        applied,
        pending,
        unknown,
    })
}

/// No migrations table yet means nothing applied.
fn applied_versions(r: Result<Vec<i64>, sqlx::Error>) -> StoreResult<Vec<i64>> {
    match r {
        Ok(v) => Ok(v),
        Err(sqlx::Error::Database(e))
            if e.message().contains("no such table") || e.code().as_deref() == Some("42P01") =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(map_err(e)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_reads_without_creating_or_migrating() {
        let dir = std::env::temp_dir().join(format!("rekey-store-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let missing = format!("sqlite://{}", dir.join("missing.db").display());
        assert!(matches!(
            status(&missing).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(!dir.join("missing.db").exists());

        std::fs::write(dir.join("empty.db"), b"").unwrap();
        let empty = format!("sqlite://{}", dir.join("empty.db").display());
        let st = status(&empty).await.unwrap();
        assert_eq!(st.applied, Vec::<i64>::new());
        assert_eq!(st.pending.len(), SQLITE_MIGRATIONS.len());
        // Still empty: nothing was applied.
        assert_eq!(
            status(&empty).await.unwrap().pending.len(),
            SQLITE_MIGRATIONS.len()
        );

        let url = format!("sqlite://{}", dir.join("rekey.db").display());
        crate::SqlStore::connect(&url).await.unwrap().close().await;
        let st = status(&url).await.unwrap();
        assert_eq!(st.backend, Backend::Sqlite);
        assert!(st.pending.is_empty() && st.unknown.is_empty(), "{st:?}");
        assert_eq!(st.applied.len(), SQLITE_MIGRATIONS.len());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
