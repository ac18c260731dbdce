//! What was last rendered for each device file, and since when.
//!
//! `Last-Modified` must be the time the rendered *content* last changed, not
//! the time of the request or of the last restart; so the hash and the time
//! it first appeared are kept per (MAC, file name), in the row of `device_files`
//! that also holds what the device last fetched of that file (one row to write
//! per device and file, see `migrations/0034_device_files.sql`).

use sipprov_model::Mac;
use sqlx::Row;

use crate::{mac_column, Store, StoreError};

/// The last rendered content hash of one device file and when it became that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedState {
    /// The device.
    pub mac: Mac,
    /// The device file's name.
    pub file: String,
    /// SHA-256 (hex) of its last rendering.
    pub hash: String,
    /// When the rendering last changed (ms since the epoch): the file's Last-Modified.
    pub changed_at: i64,
}

impl Store {
    /// Every stored state (loaded once at start-up).
    pub async fn rendered_states(&self) -> Result<Vec<RenderedState>, StoreError> {
        let rows =
            sqlx::query("SELECT mac, file, rendered_hash, changed_at FROM device_files WHERE changed_at IS NOT NULL")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(RenderedState {
                    mac: mac_column(r, "mac")?,
                    file: r.try_get("file")?,
                    hash: r.try_get("rendered_hash")?,
                    changed_at: r.try_get("changed_at")?,
                })
            })
            .collect()
    }

    /// Records new content hashes in one transaction, a few multi-row upserts. Of two states
    /// for the same file, the later in `states` wins.
    pub async fn save_rendered_states(&self, states: &[RenderedState]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.upsert_files(&mut tx, &[], states).await?;
        tx.commit().await?;
        Ok(())
    }
}
