//! The fleet overview (`/console/`): devices by vendor, model and firmware; devices silent for
//! longer than their provisioning interval; campaigns running or scheduled; refused requests
//! and the sources the phone throttle holds.
//!
//! Everything is computed from the in-memory inventory, the metrics and the store's campaign
//! list on each request (a 100,000-device fleet is a few milliseconds of counting).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use sipprov_model::{known, CampaignState};

use super::session::Viewer;
use super::view::me;
use super::{render, Ctx, Page};

/// Silent devices listed at most (the count is always complete).
const SILENT_SHOWN: usize = 50;

/// One row of a "devices by …" table.
#[derive(serde::Serialize)]
struct Count {
    name: String,
    devices: usize,
}

fn counts(map: BTreeMap<String, usize>) -> Vec<Count> {
    let mut rows: Vec<Count> = map.into_iter().map(|(name, devices)| Count { name, devices }).collect();
    rows.sort_by(|a, b| b.devices.cmp(&a.devices).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// A device that has not fetched within its provisioning interval.
#[derive(serde::Serialize)]
struct Silent {
    mac: String,
    model: String,
    last_fetch: Option<i64>,
    interval_minutes: u32,
}

/// `GET /console/`.
pub(super) async fn page(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    let now = sipprov_store::now_ms();
    let (mut by_vendor, mut by_model, mut by_firmware) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut silent = Vec::new();
    let mut never = 0usize;
    let devices = c.inventory.devices();
    for d in &devices {
        *by_vendor.entry(d.vendor.clone()).or_insert(0) += 1;
        *by_model.entry(format!("{} {}", d.vendor, d.model)).or_insert(0) += 1;
        let firmware = d.last_fetch.as_ref().and_then(|f| f.reported_firmware.clone());
        *by_firmware.entry(firmware.unwrap_or_else(|| "(not reported)".into())).or_insert(0) += 1;
        let key = known::PROVISIONING_INTERVAL_MINUTES.name();
        let interval = c.inventory.merged_keys(d, &[key]).get(key).and_then(|v| v.parse::<u32>().ok());
        match (&d.last_fetch, interval) {
            (None, _) => never += 1,
            (Some(f), Some(minutes)) if now - f.at > i64::from(minutes) * 60_000 => silent.push(Silent {
                mac: d.mac.to_string(),
                model: format!("{} {}", d.vendor, d.model),
                last_fetch: Some(f.at),
                interval_minutes: minutes,
            }),
            _ => {}
        }
    }
    silent.sort_by_key(|s| s.last_fetch);
    let silent_count = silent.len();
    silent.truncate(SILENT_SHOWN);
    let campaigns: Vec<_> = c
        .store
        .list_campaigns()
        .await?
        .into_iter()
        .filter(|k| matches!(k.state, CampaignState::Running | CampaignState::Scheduled))
        .collect();
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "overview",
        "total": devices.len(),
        "by_vendor": counts(by_vendor), "by_model": counts(by_model), "by_firmware": counts(by_firmware),
        "silent": silent, "silent_count": silent_count, "never": never,
        "campaigns": campaigns,
        "refused": c.metrics.http_refused.load(Ordering::Relaxed),
        "unknown": c.metrics.http_unknown_device.load(Ordering::Relaxed),
        "throttled_sources": c.security.throttle.len()});
    render("overview.html", ctx)
}
