//! Stored firmware and resource files (`/api/v1/firmware`, `/api/v1/resources`): an upload's
//! query string and the catalog entry every answer shows.
//!
//! An upload is `POST` with the file's bytes as the body (`application/octet-stream`) and what
//! they are in the query string, so the server can check it before reading a byte of a large
//! image.

use serde::{Deserialize, Serialize};

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoredFile {
    /// The name it is served under.
    pub name: String,
    /// `firmware`, `ringtone`, `wallpaper` or `language`.
    pub kind: String,
    /// SHA-256 of the content, lower-case hex (also its ETag when served).
    pub sha256: String,
    /// Its length in bytes.
    pub size: u64,
    /// The vendor id (firmware: always).
    pub vendor: Option<String>,
    /// The models it is for (firmware: at least one), by their canonical names.
    #[serde(default)]
    pub models: Vec<String>,
    /// The version as the phones report it (firmware: always).
    pub version: Option<String>,
    /// `open` (anyone reaching the provisioning listener) or `device` (only a device, with its
    /// own authentication).
    pub access: String,
    /// When it was added (seconds since the epoch).
    pub added_at: i64,
    /// Who added it.
    pub added_by: String,
}

/// The query string of `POST /api/v1/firmware` and `POST /api/v1/resources`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The name to serve it under: 1 to 128 of letters, digits and `._+()-,`, not starting
    /// with a dot.
    pub name: String,
    /// `/resources` only: `ringtone`, `wallpaper` or `language` (`/firmware` is `firmware`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The vendor id (firmware: required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model names, comma-separated (firmware: at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<String>,
    /// The version as the phones report it in their User-Agent (firmware: required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `open` (the default) or `device`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}
