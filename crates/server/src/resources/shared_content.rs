//! On PostgreSQL, the content of stored files as every node sees it: written to the database
//! by the node that took the upload, and fetched from there by a node that lacks it, on its
//! first request, into its own content directory.
//!
//! A fetch streams the chunks (one in memory at a time) into a temporary file, checks the size
//! and SHA-256 against the catalog entry, and only then renames it to its hash: a blob under
//! its final name is always whole and right. At most [`MAX_FETCHES`] fetches run at once; a
//! request that finds the content arrived while it waited uses it.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sipprov_store::Store;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// Blobs fetched from the database at once.
pub(super) const MAX_FETCHES: usize = 4;

/// The prefix of temporary files in the content directory (the file service sweeps names
/// starting with `.upload-` at start).
const TEMP_PREFIX: &str = ".upload-fetch-";

/// The store blobs come from and the bound on concurrent fetches.
pub(super) struct SharedContent {
    pub(super) store: Store,
    permits: Semaphore,
}

impl SharedContent {
    pub(super) fn new(store: Store) -> SharedContent {
        SharedContent { store, permits: Semaphore::new(MAX_FETCHES) }
    }

    /// Makes sure `<dir>/<sha256>` holds the content of size `size`, fetching it if missing.
    pub(super) async fn ensure(&self, dir: &Path, sha256: &str, size: u64) -> io::Result<PathBuf> {
        let target = dir.join(sha256);
        if target.is_file() {
            return Ok(target);
        }
        let _permit = self.permits.acquire().await.map_err(io::Error::other)?;
        if target.is_file() {
            return Ok(target);
        }
        tokio::fs::create_dir_all(dir).await?;
        let temp = dir.join(format!("{TEMP_PREFIX}{:016x}", rand::random::<u64>()));
        let fetched = self.fetch_into(&temp, sha256, size).await;
        match fetched {
            Ok(()) => {
                tokio::fs::rename(&temp, &target).await?;
                tracing::info!(sha256, size, "stored file's content fetched from the database");
                Ok(target)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&temp).await;
                Err(e)
            }
        }
    }

    async fn fetch_into(&self, temp: &Path, sha256: &str, size: u64) -> io::Result<()> {
        let db = |e: sipprov_store::StoreError| io::Error::other(e.to_string());
        let info = self.store.blob_info(sha256).await.map_err(db)?;
        let info = info.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the content is not in the database"))?;
        if info.size != size {
            return Err(io::Error::other(format!("the stored blob has {} bytes, the catalog says {size}", info.size)));
        }
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o640);
        let mut file = options.open(temp).await?;
        let (mut hasher, mut written) = (Sha256::new(), 0u64);
        for seq in 0..info.chunks {
            let chunk = self.store.blob_chunk(sha256, seq).await.map_err(db)?;
            written = written.saturating_add(chunk.len() as u64);
            if written > size {
                return Err(io::Error::other("the stored blob is longer than its size"));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        if written != size || hex::encode(hasher.finalize()) != sha256 {
            return Err(io::Error::other("the stored blob does not match its SHA-256"));
        }
        Ok(())
    }
}
