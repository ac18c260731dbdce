//! The fleet summary (`GET /api/v1/summary`, `sipprov status`, the console's overview): devices
//! by vendor, model and firmware, silent devices, refusals and throttled sources of the last
//! 24 hours, and campaigns in progress.
//!
//! The work is bounded: the device counts are one pass over the in-memory inventory and
//! last-seen index; refusals are read from the history through its index of refusals, at most
//! [`MAX_REFUSALS_READ`] of them; throttled sources come from the throttle's own bounded memory
//! of recent blocks.

use std::collections::BTreeMap;

use sipprov_api::{FleetSummary, SilentDevice, ThrottledSource};
use sipprov_model::CampaignState;
use sipprov_store::{Store, StoreError};

use crate::auth::Security;
use crate::campaign::CampaignReport;
use crate::inventory::Inventory;
use crate::listing::{Intervals, DEFAULT_INTERVAL_MINUTES, GRACE_FACTOR};
use crate::seen::SeenIndex;

/// The most refusal events one summary reads; past it the counts are a lower bound and
/// `refusals_truncated` says so.
pub const MAX_REFUSALS_READ: i64 = 20_000;

/// The most silent devices (and throttled sources) a summary lists by name.
const LISTED: usize = 100;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What a summary reads.
pub struct SummarySources<'a> {
    /// The store (refusals, campaigns).
    pub store: &'a Store,
    /// The devices and their settings.
    pub inventory: &'a Inventory,
    /// What each device fetched last.
    pub seen: &'a SeenIndex,
    /// The failure throttle's recent blocks.
    pub security: &'a Security,
}

/// The summary at time `now` (ms since the epoch).
pub async fn fleet_summary(from: SummarySources<'_>, now: i64) -> Result<FleetSummary, StoreError> {
    let mut summary = device_counts(from.inventory, from.seen, now);
    let since = now - DAY_MS;
    let refusals = from.store.refusal_details_since(since, MAX_REFUSALS_READ).await?;
    summary.refusals_truncated = refusals.len() as i64 >= MAX_REFUSALS_READ;
    for detail in &refusals {
        let reason = detail.get("reason").and_then(|r| r.as_str()).unwrap_or("unknown");
        *summary.refusals_24h.entry(reason.to_string()).or_default() += 1;
    }
    summary.throttled_24h = from
        .security
        .throttle
        .blocked_since(since)
        .into_iter()
        .take(LISTED)
        .map(|(ip, at)| ThrottledSource { ip: ip.to_string(), at })
        .collect();
    for campaign in from.store.list_campaigns().await? {
        if matches!(campaign.state, CampaignState::Scheduled | CampaignState::Running) {
            summary.campaigns.push(CampaignReport::load(from.store, campaign, now).await?.into_api());
        }
    }
    Ok(summary)
}

/// The part of the summary the inventory and the last-seen index give.
fn device_counts(inventory: &Inventory, seen: &SeenIndex, now: i64) -> FleetSummary {
    let devices = inventory.devices();
    let mut summary = FleetSummary {
        at: now,
        devices: devices.len(),
        by_vendor: BTreeMap::new(),
        by_model: BTreeMap::new(),
        by_firmware: BTreeMap::new(),
        never_seen: 0,
        silent: 0,
        default_interval_minutes: DEFAULT_INTERVAL_MINUTES,
        grace_factor: GRACE_FACTOR,
        silent_devices: Vec::new(),
        refusals_24h: BTreeMap::new(),
        refusals_truncated: false,
        throttled_24h: Vec::new(),
        campaigns: Vec::new(),
    };
    let mut intervals = Intervals::new(inventory);
    let last = seen.read();
    for device in &devices {
        *summary.by_vendor.entry(device.vendor.to_string()).or_default() += 1;
        *summary.by_model.entry(format!("{} {}", device.vendor, device.model)).or_default() += 1;
        let fetch = last.get(&device.mac);
        let firmware = fetch.and_then(|f| f.reported_firmware()).unwrap_or("unknown");
        *summary.by_firmware.entry(firmware.to_string()).or_default() += 1;
        let Some(fetch) = fetch else {
            summary.never_seen += 1;
            continue;
        };
        let (silent, interval_minutes) = intervals.silent(inventory, device, fetch.at(), now);
        if silent {
            summary.silent += 1;
            summary.silent_devices.push(SilentDevice {
                mac: device.mac,
                vendor: device.vendor.to_string(),
                model: device.model.to_string(),
                last_seen: fetch.at(),
                interval_minutes,
            });
        }
    }
    summary.silent_devices.sort_unstable_by_key(|d| (d.last_seen, d.mac));
    summary.silent_devices.truncate(LISTED);
    summary
}
