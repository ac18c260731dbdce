//! The catalog of stored files (table `resource_files`, migration 0018): firmware images and
//! other resources a phone downloads, by the name they are served under.
//!
//! The store keeps rows only: the content lives in the data directory, addressed by its
//! SHA-256, and the server writes it before the row and removes it after the last row naming it
//! ([`Store::delete_resource_file`] says when). Kinds and access policies are stored under
//! their stable names; the server validates and parses them.

use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{NewAudit, Store, StoreError};

/// One catalog entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceFileRecord {
    /// The name it is served under, unique.
    pub name: String,
    /// `firmware`, `ringtone`, `wallpaper` or `language`.
    pub kind: String,
    /// The content's SHA-256, lower-case hex.
    pub sha256: String,
    /// The content's length in bytes.
    pub size: u64,
    /// The vendor id (firmware: always).
    pub vendor: Option<String>,
    /// The models it is for (firmware: at least one).
    pub models: Vec<String>,
    /// The version (firmware: always).
    pub version: Option<String>,
    /// `open` or `device`.
    pub access: String,
    /// When it was added (seconds since the epoch).
    pub added_at: i64,
    /// Who added it.
    pub added_by: String,
}

/// What removing a catalog entry did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedResourceFile {
    /// The row as it was.
    pub record: ResourceFileRecord,
    /// True when no other row names the same content: its blob may go.
    pub last_reference: bool,
}

const COLUMNS: &str = "name, kind, sha256, size, vendor, models, version, access, added_at, added_by";

impl Store {
    /// Adds `file` with its audit entry in one transaction; false (nothing written) when the
    /// name is taken.
    pub async fn insert_resource_file(&self, file: &ResourceFileRecord, audit: &NewAudit) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query("SELECT name FROM resource_files WHERE name = $1")
            .bind(&file.name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        // A list of short names cannot fail to serialise.
        let models = serde_json::to_string(&file.models).unwrap_or_else(|_| "[]".to_string());
        let size = i64::try_from(file.size).map_err(|_| StoreError::Corrupt(format!("size {}", file.size)))?;
        sqlx::query(
            "INSERT INTO resource_files (name, kind, sha256, size, vendor, models, version, access, added_at, added_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&file.name)
        .bind(&file.kind)
        .bind(&file.sha256)
        .bind(size)
        .bind(&file.vendor)
        .bind(models)
        .bind(&file.version)
        .bind(&file.access)
        .bind(file.added_at)
        .bind(&file.added_by)
        .execute(&mut *tx)
        .await?;
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::ResourceFile, &file.name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every catalog entry, by name.
    pub async fn resource_files(&self) -> Result<Vec<ResourceFileRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM resource_files ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The entry named `name`, if any.
    pub async fn resource_file(&self, name: &str) -> Result<Option<ResourceFileRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM resource_files WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&self.pool).await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Removes the entry named `name` with its audit entry in one transaction; `None` (nothing
    /// written) when there is none. Says whether another entry still names the same content.
    pub async fn delete_resource_file(
        &self,
        name: &str,
        audit: &NewAudit,
    ) -> Result<Option<RemovedResourceFile>, StoreError> {
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {COLUMNS} FROM resource_files WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&mut *tx).await?;
        let Some(record) = row.as_ref().map(record_from_row).transpose()? else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query("DELETE FROM resource_files WHERE name = $1").bind(name).execute(&mut *tx).await?;
        let others: i64 = sqlx::query("SELECT COUNT(*) AS n FROM resource_files WHERE sha256 = $1")
            .bind(&record.sha256)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::ResourceFile, name).await?;
        tx.commit().await?;
        Ok(Some(RemovedResourceFile { record, last_reference: others == 0 }))
    }

    /// Whether any entry names content `sha256` (a blob with none is an orphan).
    pub async fn resource_content_named(&self, sha256: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM resource_files WHERE sha256 = $1")
            .bind(sha256)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }
}

fn record_from_row(r: &sqlx::any::AnyRow) -> Result<ResourceFileRecord, StoreError> {
    let name: String = r.try_get("name")?;
    let models: String = r.try_get("models")?;
    let models =
        serde_json::from_str(&models).map_err(|e| StoreError::Corrupt(format!("models of file {name}: {e}")))?;
    let size: i64 = r.try_get("size")?;
    Ok(ResourceFileRecord {
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("size of file {name}: {size}")))?,
        kind: r.try_get("kind")?,
        sha256: r.try_get("sha256")?,
        vendor: r.try_get("vendor")?,
        models,
        version: r.try_get("version")?,
        access: r.try_get("access")?,
        added_at: r.try_get("added_at")?,
        added_by: r.try_get("added_by")?,
        name,
    })
}
