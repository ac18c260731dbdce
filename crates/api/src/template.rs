//! Template overrides: the built-in templates, their override versions, and the requests that
//! change them (`/api/v1/templates`).

use serde::{Deserialize, Serialize};
use sipprov_model::Mac;

/// One built-in template in the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateSummary {
    /// The relative name, e.g. `yealink/mac.cfg.j2`.
    pub name: String,
    /// The vendor it belongs to, e.g. `yealink`.
    pub vendor: String,
    /// True when an override serves instead of the built-in.
    pub overridden: bool,
    /// The current version number, when the template has any version (a reset is one too).
    pub version: Option<i64>,
}

/// One version of an override, without its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateVersionInfo {
    /// 1, 2, … per template.
    pub version: i64,
    /// When it was made (ms since the epoch).
    pub created_at: i64,
    /// Who made it.
    pub author: String,
    /// Why, when said.
    pub comment: Option<String>,
    /// True when this version means "back to the built-in template".
    pub builtin: bool,
}

/// One template in full: the built-in body, the override serving now, and every version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateDetail {
    /// The relative name.
    pub name: String,
    /// The vendor.
    pub vendor: String,
    /// The built-in template's source.
    pub builtin: String,
    /// The override serving now, if any.
    pub current: Option<String>,
    /// The current version number, if any.
    pub version: Option<i64>,
    /// Every version, oldest first.
    pub versions: Vec<TemplateVersionInfo>,
}

/// `PUT /api/v1/templates/{vendor}/{file}`: a new override version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTemplate {
    /// The template source (minijinja).
    pub body: String,
    /// Why, recorded with the version.
    #[serde(default)]
    pub comment: Option<String>,
    /// A device to render the candidate for as well, besides one synthetic device per model.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "001565aabbcc")]
    pub device: Option<Mac>,
}

/// `POST .../rollback`: make an earlier version current again (recorded as a new version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackTemplate {
    /// The version to restore.
    pub version: i64,
    /// Why, recorded with the new version.
    #[serde(default)]
    pub comment: Option<String>,
}

/// `POST .../preview`: what a device would receive from the current or a proposed body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewTemplate {
    /// The device to render for.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub device: Mac,
    /// A proposed body; the current one (override or built-in) when absent.
    #[serde(default)]
    pub body: Option<String>,
}

/// What a change made: the template and its new current version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateChanged {
    /// The relative name.
    pub name: String,
    /// The version just recorded.
    pub version: i64,
}

/// `GET .../diff`: a unified diff (`from` and `to` name its sides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateDiff {
    /// The old side: `built-in` or `version N`.
    pub from: String,
    /// The new side: `current`, `built-in` or `version N`.
    pub to: String,
    /// The unified diff; empty when both sides are equal.
    pub diff: String,
}
