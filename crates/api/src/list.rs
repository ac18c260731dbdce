//! Lists: one page of a longer answer ([`Page`]), the device list's filters and sort order
//! ([`DeviceQuery`]), and the fleet summary ([`FleetSummary`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Campaign;

/// The most items one page holds; a larger `limit` is lowered to this.
pub const MAX_PAGE: usize = 1000;

/// The page size when the request names none.
pub const DEFAULT_PAGE: usize = 100;

/// One page of a list: the items, how many matched in all, and where the next page starts.
///
/// ```
/// use sipprov_api::Page;
/// let p: Page<u32> = serde_json::from_str(r#"{"items":[1,2],"total":5,"offset":0,"limit":2,"next_offset":2}"#).unwrap();
/// assert_eq!(p.next_offset, Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// This page's items, in the requested order.
    pub items: Vec<T>,
    /// How many items matched the filters, over all pages.
    pub total: usize,
    /// The position of the first item of this page among all matches.
    pub offset: usize,
    /// The page size applied (the requested one, capped at [`MAX_PAGE`]).
    pub limit: usize,
    /// The `offset` of the next page, absent on the last one.
    pub next_offset: Option<usize>,
}

/// What `GET /api/v1/devices` sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSort {
    /// The MAC address (the default).
    #[default]
    Mac,
    /// The vendor id.
    Vendor,
    /// The model name.
    Model,
    /// The group name (devices without a group first in ascending order).
    Group,
    /// When the device last fetched a file (never seen first in ascending order).
    LastSeen,
    /// The firmware the device last reported (unknown first in ascending order).
    Firmware,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Smallest first (the default).
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// The query string of `GET /api/v1/devices`: every filter given must hold (AND).
///
/// Ties in the sort order are broken by MAC, so pages of one query neither repeat nor skip a
/// device while the inventory does not change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Vendor id, exactly (e.g. `yealink`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Model name, case-insensitively (e.g. `T46S`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Group name, exactly; the empty string means devices in no group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The firmware the device last reported, exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Last fetch strictly before this time (ms since the epoch); never-seen devices do not match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_before: Option<i64>,
    /// Last fetch at or after this time (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen_after: Option<i64>,
    /// `true`: only devices that never fetched a file; `false`: only devices that did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_seen: Option<bool>,
    /// `true`: only devices silent for longer than expected (see [`FleetSummary::silent`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
    /// Free text: part of the MAC in any spelling (`00:15:65`, `0015.65aa`, `AABB`), or part of
    /// the device's `display_name` setting, case-insensitively.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// The sort key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<DeviceSort>,
    /// The sort direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<SortOrder>,
    /// The page size ([`DEFAULT_PAGE`] when absent, at most [`MAX_PAGE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// How many matches to skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
}

/// `GET /api/v1/summary`: the fleet at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FleetSummary {
    /// When it was computed (ms since the epoch).
    pub at: i64,
    /// How many devices the inventory holds.
    pub devices: usize,
    /// Devices per vendor id.
    pub by_vendor: BTreeMap<String, usize>,
    /// Devices per `vendor model`.
    pub by_model: BTreeMap<String, usize>,
    /// Devices per firmware they last reported (`unknown` when they never did).
    pub by_firmware: BTreeMap<String, usize>,
    /// Devices that never fetched a file.
    pub never_seen: usize,
    /// Devices silent for longer than expected: their last fetch is older than their merged
    /// `provisioning.interval_minutes` ([`FleetSummary::default_interval_minutes`] when unset)
    /// times [`FleetSummary::grace_factor`].
    pub silent: usize,
    /// The interval assumed for a device with no `provisioning.interval_minutes`.
    pub default_interval_minutes: u64,
    /// How many intervals a device may miss before it counts as silent.
    pub grace_factor: u64,
    /// The silent devices longest silent first (at most 100).
    pub silent_devices: Vec<SilentDevice>,
    /// Refused fetches of the last 24 hours per reason.
    pub refusals_24h: BTreeMap<String, u64>,
    /// True when there were more refusals than the summary reads (the counts are a lower bound).
    pub refusals_truncated: bool,
    /// Sources the failure throttle blocked in the last 24 hours (most recent first, at most 100).
    pub throttled_24h: Vec<ThrottledSource>,
    /// Campaigns scheduled or running.
    pub campaigns: Vec<Campaign>,
}

/// A device silent for longer than expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SilentDevice {
    /// Its MAC.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: crate::Mac,
    /// Its vendor id.
    pub vendor: String,
    /// Its model.
    pub model: String,
    /// When it last fetched a file.
    pub last_seen: i64,
    /// The interval it was expected to keep, in minutes.
    pub interval_minutes: u64,
}

/// A source address the failure throttle blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ThrottledSource {
    /// The address (an IPv6 source is its /64).
    pub ip: String,
    /// When it was last blocked (ms since the epoch).
    pub at: i64,
}
