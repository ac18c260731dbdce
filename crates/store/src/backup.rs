//! Online snapshots of the SQLite store, and the checks a file must pass before it may
//! replace the store.
//!
//! A snapshot is taken with `VACUUM INTO` over a connection of its own: in WAL mode a reader
//! does not block the server's writers, and `VACUUM INTO` reads inside one transaction, so the
//! copy is one consistent state of the database, whatever the server writes meanwhile
//! (<https://sqlite.org/lang_vacuum.html#vacuuminto>). The copy is compact and carries no
//! `-wal` file of its own.
//!
//! A file offered for restore must be an intact SQLite database (`PRAGMA integrity_check`),
//! carry sqlx's migrations table, and have no migration this binary does not know: a database
//! written by a newer sipprov would be opened by code that does not understand its schema.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};

/// Why a snapshot could not be taken or a file is not a database this binary may restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// SQLite refused to open or read the file (not a database, unreadable, locked too long).
    #[error("{path}: cannot read it as a SQLite database: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// SQLite's own words.
        source: sqlx::Error,
    },
    /// `PRAGMA integrity_check` found damage.
    #[error("{path}: the database is damaged (integrity_check: {report})")]
    Damaged {
        /// The file.
        path: String,
        /// The first lines of SQLite's report.
        report: String,
    },
    /// The file is a SQLite database, but not one sipprov wrote.
    #[error("{path}: not a sipprov database (no migrations table)")]
    NotSipprov {
        /// The file.
        path: String,
    },
    /// The database has migrations this binary does not have, or one that failed.
    #[error("{path}: {why}")]
    Incompatible {
        /// The file.
        path: String,
        /// Which migration, and what it means.
        why: String,
    },
    /// The snapshot statement failed.
    #[error("snapshot of {path} failed: {source}")]
    Snapshot {
        /// The live database.
        path: String,
        /// SQLite's own words.
        source: sqlx::Error,
    },
}

/// What [`check_restorable`] learned about a valid file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// The newest migration applied to it (e.g. 12 for `0012_device_uploads.sql`).
    pub schema_version: i64,
    /// The newest migration this binary has; older files are migrated when the server opens them.
    pub binary_version: i64,
    /// Devices in it, for the operator's confirmation.
    pub devices: i64,
}

/// Writes a consistent copy of the live SQLite database `db` to `dest`, which must not exist
/// or be empty. Works while a server has the database open.
pub async fn snapshot_sqlite(db: &Path, dest: &Path) -> Result<(), BackupError> {
    let path = db.display().to_string();
    // Read-only: a backup never writes to the live database (no migration, no journal change).
    let options = SqliteConnectOptions::new().filename(db).read_only(true).busy_timeout(Duration::from_secs(30));
    let mut conn = options.connect().await.map_err(|source| BackupError::Unreadable { path: path.clone(), source })?;
    let result = sqlx::query("VACUUM INTO ?").bind(dest.display().to_string()).execute(&mut conn).await;
    let _ = conn.close().await;
    result.map(|_| ()).map_err(|source| BackupError::Snapshot { path, source })
}

/// Checks that `file` is an intact sipprov database no newer than this binary's schema.
pub async fn check_restorable(file: &Path) -> Result<BackupInfo, BackupError> {
    let path = file.display().to_string();
    let unreadable = |source| BackupError::Unreadable { path: path.clone(), source };
    // Immutable: reading the candidate must not create `-wal`/`-shm` files beside it or change it.
    let options = SqliteConnectOptions::new().filename(file).read_only(true).immutable(true);
    let mut conn = options.connect().await.map_err(unreadable)?;
    let result = inspect(&mut conn, &path).await;
    let _ = conn.close().await;
    result
}

async fn inspect(conn: &mut sqlx::SqliteConnection, path: &str) -> Result<BackupInfo, BackupError> {
    let unreadable = |source| BackupError::Unreadable { path: path.to_string(), source };
    let rows = sqlx::query("PRAGMA integrity_check").fetch_all(&mut *conn).await.map_err(unreadable)?;
    let report: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>(0).ok()).collect();
    if report != ["ok"] {
        let report = report.into_iter().take(5).collect::<Vec<_>>().join("; ");
        return Err(BackupError::Damaged { path: path.to_string(), report });
    }
    let has_table = sqlx::query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(unreadable)?
        .is_some();
    if !has_table {
        return Err(BackupError::NotSipprov { path: path.to_string() });
    }
    let applied = sqlx::query("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(unreadable)?;
    let known: Vec<i64> = crate::MIGRATOR.iter().map(|m| m.version).collect();
    let binary_version = known.iter().copied().max().unwrap_or(0);
    let mut schema_version = 0;
    for row in &applied {
        let version: i64 = row.try_get("version").map_err(unreadable)?;
        let success: bool = row.try_get("success").map_err(unreadable)?;
        if !known.contains(&version) {
            let why = format!(
                "migration {version} is not known to this sipprov (newest here: {binary_version}); \
                 restore it with the sipprov version that wrote it"
            );
            return Err(BackupError::Incompatible { path: path.to_string(), why });
        }
        if !success {
            let why = format!("migration {version} failed in this database; it is not in a usable state");
            return Err(BackupError::Incompatible { path: path.to_string(), why });
        }
        schema_version = schema_version.max(version);
    }
    let devices: i64 = sqlx::query("SELECT COUNT(*) FROM devices")
        .fetch_one(&mut *conn)
        .await
        .map_err(unreadable)?
        .try_get(0)
        .map_err(unreadable)?;
    Ok(BackupInfo { schema_version, binary_version, devices })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_snapshot_of_a_store_is_restorable_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sipprov.db");
        let store = crate::Store::open_sqlite(&db).await.unwrap();
        let copy = dir.path().join("copy.db");
        snapshot_sqlite(&db, &copy).await.unwrap();
        drop(store);
        let info = check_restorable(&copy).await.unwrap();
        assert_eq!(info.schema_version, info.binary_version);
        assert_eq!(info.devices, 0);

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some words in a file\n".repeat(100)).unwrap();
        assert!(matches!(check_restorable(&text).await, Err(BackupError::Unreadable { .. })));

        let other = dir.path().join("other.db");
        let options = SqliteConnectOptions::new().filename(&other).create_if_missing(true);
        let mut conn = options.connect().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        assert!(matches!(check_restorable(&other).await, Err(BackupError::NotSipprov { .. })));

        // A database a newer sipprov migrated further is refused, naming the migration.
        let newer = dir.path().join("newer.db");
        std::fs::copy(&copy, &newer).unwrap();
        let mut conn = SqliteConnectOptions::new().filename(&newer).connect().await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99990101, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let err = check_restorable(&newer).await.unwrap_err();
        assert!(err.to_string().contains("99990101"), "{err}");
    }
}
