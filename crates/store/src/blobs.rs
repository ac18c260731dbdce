//! The content of stored files in the database, for nodes that share it: a file uploaded
//! through one node is written here in chunks ([`BLOB_CHUNK`] bytes, one in memory at a time),
//! and a node that lacks it reads it back chunk by chunk into its own content directory.
//!
//! The server uses this on PostgreSQL only (one SQLite node has the content on its disk); the
//! SQL is portable so both backends are tested alike.

use std::path::Path;

use sqlx::Row;
use tokio::io::AsyncReadExt;

use crate::{Store, StoreError};

/// The largest chunk stored in one row.
pub const BLOB_CHUNK: usize = 1 << 20;

/// A blob as listed: its size and how many chunks hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Length in bytes.
    pub size: u64,
    /// Number of chunks (`seq` 0 to `chunks - 1`).
    pub chunks: u64,
}

impl Store {
    /// Stores the content of the file at `path` as blob `sha256` (the caller hashed it), unless
    /// a complete blob of that hash is stored already. One transaction: a blob is listed only
    /// once all its chunks are in. True when this stored it.
    pub async fn put_blob_from_file(&self, sha256: &str, path: &Path) -> Result<bool, StoreError> {
        if self.blob_info(sha256).await?.is_some() {
            return Ok(false);
        }
        let io = |e: std::io::Error| StoreError::Database(sqlx::Error::Io(e));
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        let mut tx = self.write_tx().await?;
        let (mut seq, mut size) = (0i64, 0u64);
        let mut buf = vec![0u8; BLOB_CHUNK];
        loop {
            let n = read_full(&mut file, &mut buf).await.map_err(io)?;
            if n == 0 && seq > 0 {
                break;
            }
            sqlx::query(
                "INSERT INTO file_blob_chunks (sha256, seq, data) VALUES ($1, $2, $3) \
                 ON CONFLICT (sha256, seq) DO UPDATE SET data = excluded.data",
            )
            .bind(sha256)
            .bind(seq)
            .bind(buf[..n].to_vec())
            .execute(&mut *tx)
            .await?;
            seq += 1;
            size += n as u64;
            if n < BLOB_CHUNK {
                break;
            }
        }
        let listed = sqlx::query(
            "INSERT INTO file_blobs (sha256, size, chunks) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(sha256)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(listed.rows_affected() == 1)
    }

    /// The stored blob `sha256`, if a complete one is stored.
    pub async fn blob_info(&self, sha256: &str) -> Result<Option<BlobInfo>, StoreError> {
        let row = sqlx::query("SELECT size, chunks FROM file_blobs WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let (size, chunks): (i64, i64) = (row.try_get("size")?, row.try_get("chunks")?);
        let size = u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("blob size {size}")))?;
        let chunks = u64::try_from(chunks).map_err(|_| StoreError::Corrupt(format!("blob chunks {chunks}")))?;
        Ok(Some(BlobInfo { size, chunks }))
    }

    /// Chunk `seq` of blob `sha256`.
    pub async fn blob_chunk(&self, sha256: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
        let row = sqlx::query("SELECT data FROM file_blob_chunks WHERE sha256 = $1 AND seq = $2")
            .bind(sha256)
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await?;
        let row = row.ok_or_else(|| StoreError::Corrupt(format!("blob {sha256} lacks chunk {seq}")))?;
        let data: Vec<u8> = row.try_get("data")?;
        if data.len() > BLOB_CHUNK {
            return Err(StoreError::Corrupt(format!("blob {sha256} chunk {seq} is larger than a chunk")));
        }
        Ok(data)
    }

    /// Removes blob `sha256` (no error when it is not stored).
    pub async fn delete_blob(&self, sha256: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM file_blobs WHERE sha256 = $1").bind(sha256).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM file_blob_chunks WHERE sha256 = $1").bind(sha256).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
