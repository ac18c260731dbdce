//! `[files]`: the catalog of firmware and resource files operators upload.

use serde::Deserialize;

/// `[files]`: how large an uploaded firmware or resource file may be, and how fast stored files
/// are served together.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// The largest file an operator may upload, in bytes (default 1 GiB). A larger upload is
    /// refused with 413 naming this limit, and nothing of it stays on disk.
    pub max_upload_bytes: u64,
    /// One cap on the bytes a second that every download of a stored file shares (a token
    /// bucket, see `provision::bandwidth`); `None` (the default): no cap. Config files are never
    /// held back by it. At least 65536 (64 KiB/s).
    pub bandwidth_bytes_per_sec: Option<u64>,
}

/// The smallest `bandwidth_bytes_per_sec` accepted: 64 KiB/s. Below it, a handful of downloads
/// would each wait seconds per 16 KiB step and meet the listener's idle timeout.
const MIN_BANDWIDTH: u64 = 64 * 1024;

impl FilesConfig {
    /// Refuses a bandwidth cap too small to keep downloads alive.
    pub fn check(&self) -> Result<(), String> {
        match self.bandwidth_bytes_per_sec {
            Some(rate) if rate < MIN_BANDWIDTH => Err(format!(
                "files.bandwidth_bytes_per_sec must be at least {MIN_BANDWIDTH} (64 KiB/s), or left out for no cap; got {rate}"
            )),
            _ => Ok(()),
        }
    }
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig { max_upload_bytes: 1024 * 1024 * 1024, bandwidth_bytes_per_sec: None }
    }
}
