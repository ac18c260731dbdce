//! Remote phone directories (`/api/v1/directories`): named contact lists a device shows when
//! its `directory.name` names one. Admin writes, read-only reads; a write replaces a directory's
//! contacts whole (`PUT` with JSON, `POST …/import` with CSV).

use serde::{Deserialize, Serialize};

/// One contact: a name and up to three numbers by kind (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryContact {
    /// The name the phone shows (1 to 64 characters).
    pub name: String,
    /// The office (work) number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
    /// The mobile number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    /// Any other number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
}

/// A directory as listed: its name and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DirectorySummary {
    /// The directory's name.
    pub name: String,
    /// How many contacts it holds.
    pub contacts: usize,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When its contacts were last replaced (ms since the epoch).
    pub updated_at: i64,
}

/// A directory with its contacts, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Directory {
    /// The directory's name.
    pub name: String,
    /// Its contacts, in the order phones show them.
    pub contacts: Vec<DirectoryContact>,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When its contacts were last replaced (ms since the epoch).
    pub updated_at: i64,
}

/// `PUT /api/v1/directories/{name}`: the directory's contacts, replacing any it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutDirectory {
    /// The contacts, in order (at most 5000).
    pub contacts: Vec<DirectoryContact>,
}
