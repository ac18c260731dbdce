//! The fleet overview (`/console/`): the fleet summary the API answers at `/api/v1/summary`
//! ([`crate::summary::fleet_summary`]): devices by vendor, model and firmware; devices never
//! seen and those silent for longer than their provisioning interval allows; refused fetches of
//! the last 24 hours by reason and the sources the throttle blocked; campaigns in progress.

use std::collections::BTreeMap;

use super::session::Viewer;
use super::view::me;
use super::{render, Ctx, Page};

/// One row of a "devices by …" table, most devices first.
#[derive(serde::Serialize)]
struct Count {
    name: String,
    devices: usize,
}

fn by_count(map: BTreeMap<String, usize>) -> Vec<Count> {
    let mut rows: Vec<Count> = map.into_iter().map(|(name, devices)| Count { name, devices }).collect();
    rows.sort_by(|a, b| b.devices.cmp(&a.devices).then_with(|| a.name.cmp(&b.name)));
    rows
}

/// `GET /console/`.
pub(super) async fn page(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    c.events.flush().await;
    let sources = crate::summary::SummarySources {
        store: &c.store,
        inventory: &c.inventory,
        seen: c.events.seen(),
        security: &c.security,
    };
    let summary = crate::summary::fleet_summary(sources, sipprov_store::now_ms()).await?;
    let refusals: u64 = summary.refusals_24h.values().sum();
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "overview",
        "by_vendor": by_count(summary.by_vendor.clone()),
        "by_model": by_count(summary.by_model.clone()),
        "by_firmware": by_count(summary.by_firmware.clone()),
        "refusals": refusals,
        "s": summary,
    });
    render("overview.html", ctx)
}
