//! `[files]`: the catalog of firmware and resource files operators upload.

use serde::Deserialize;

/// `[files]`: how large an uploaded firmware or resource file may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// The largest file an operator may upload, in bytes (default 1 GiB). A larger upload is
    /// refused with 413 naming this limit, and nothing of it stays on disk.
    pub max_upload_bytes: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig { max_upload_bytes: 1024 * 1024 * 1024 }
    }
}
