//! Files phones upload: the latest of each name per device (Polycom `<mac>-phone.cfg` and logs,
//! Yealink `<mac>-local.cfg`). The server decides which names and sizes are accepted.

use sipprov_model::Mac;
use sqlx::Row;

use crate::{Store, StoreError};

/// One stored upload, without its content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UploadInfo {
    /// The file name as the phone sent it, lower-cased.
    pub name: String,
    /// When it was received (ms since the epoch).
    pub received_at: i64,
    /// Its size in bytes.
    pub size: i64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// What [`Store::put_upload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Stored; `created` when the device had no upload of that name before.
    Stored {
        /// True for a new name, false for a replacement.
        created: bool,
    },
    /// Not stored: the device's uploads would exceed the total allowed.
    OverQuota,
}

impl Store {
    /// Stores `content` as `mac`'s upload `name`, replacing the previous one of that name, unless
    /// the device's uploads would then total more than `max_total` bytes (then nothing is
    /// stored). One transaction, so concurrent uploads cannot both pass the total.
    pub async fn put_upload(
        &self,
        mac: Mac,
        name: &str,
        content: &[u8],
        sha256: &str,
        at: i64,
        max_total: u64,
    ) -> Result<UploadOutcome, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query("SELECT name, size FROM device_uploads WHERE mac = $1")
            .bind(mac.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let mut others = 0i64;
        let mut created = true;
        for row in &rows {
            let (stored, size): (String, i64) = (row.try_get("name")?, row.try_get("size")?);
            if stored == name {
                created = false;
            } else {
                others = others.saturating_add(size);
            }
        }
        let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
        if u64::try_from(others.saturating_add(size)).unwrap_or(u64::MAX) > max_total {
            tx.rollback().await?;
            return Ok(UploadOutcome::OverQuota);
        }
        sqlx::query(
            "INSERT INTO device_uploads (mac, name, received_at, size, sha256, content) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (mac, name) DO UPDATE SET received_at = excluded.received_at, size = excluded.size, \
             sha256 = excluded.sha256, content = excluded.content",
        )
        .bind(mac.to_string())
        .bind(name)
        .bind(at)
        .bind(size)
        .bind(sha256)
        .bind(content.to_vec())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(UploadOutcome::Stored { created })
    }

    /// A device's uploads, by name.
    pub async fn uploads(&self, mac: Mac) -> Result<Vec<UploadInfo>, StoreError> {
        let rows =
            sqlx::query("SELECT name, received_at, size, sha256 FROM device_uploads WHERE mac = $1 ORDER BY name")
                .bind(mac.to_string())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(UploadInfo {
                    name: r.try_get("name")?,
                    received_at: r.try_get("received_at")?,
                    size: r.try_get("size")?,
                    sha256: r.try_get("sha256")?,
                })
            })
            .collect()
    }

    /// The content of a device's upload `name`, if there is one.
    pub async fn upload_content(&self, mac: Mac, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT content FROM device_uploads WHERE mac = $1 AND name = $2")
            .bind(mac.to_string())
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("content")).transpose()?)
    }
}
