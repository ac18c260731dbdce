//! Groups (settings shared by their devices) and the vendor catalogue.

use serde::{Deserialize, Serialize};
use sipprov_model::Settings;

/// One group in `GET /api/v1/groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupSummary {
    /// Its name.
    pub name: String,
    /// Its settings, secrets redacted.
    #[schema(value_type = BTreeMap<String, String>)]
    pub settings: Settings,
    /// When its settings last changed.
    pub updated_at: i64,
}

/// `GET /api/v1/groups/{name}`: a group and how many devices it has.
///
/// ```
/// use sipprov_api::Group;
/// let g: Group = serde_json::from_str(r#"{"name":"sales","settings":{},"devices":3,"updated_at":5}"#).unwrap();
/// assert_eq!(g.devices, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its settings, secrets redacted.
    #[schema(value_type = BTreeMap<String, String>)]
    pub settings: Settings,
    /// How many devices are in it.
    pub devices: usize,
    /// When its settings last changed.
    pub updated_at: i64,
}

/// The answer of `PATCH /api/v1/groups/{name}` (whose body is the [`Settings`] to change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupChanged {
    /// Its name.
    pub name: String,
    /// Its settings after the change, secrets redacted.
    #[schema(value_type = BTreeMap<String, String>)]
    pub settings: Settings,
}

/// One vendor in `GET /api/v1/vendors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VendorInfo {
    /// The id devices are added with (`yealink`).
    pub id: String,
    /// Its display name (`Yealink`).
    pub name: String,
    /// The models it can provision.
    pub models: Vec<String>,
}
