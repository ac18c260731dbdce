//! A rollout as the admin API, the CLI and the console show it.

use std::collections::BTreeMap;

use sipprov_store::{RolloutRecord, Store, StoreError};

/// Rollout `record` with its counts per device state, and its devices when `with_devices`.
pub async fn report(
    store: &Store,
    record: RolloutRecord,
    with_devices: bool,
) -> Result<sipprov_api::Rollout, StoreError> {
    let devices = store.rollout_devices(record.id).await?;
    let mut counts = BTreeMap::new();
    for d in &devices {
        *counts.entry(d.state).or_insert(0) += 1;
    }
    let waves = devices.iter().map(|d| d.wave + 1).max().unwrap_or(0).max(record.wave + 1);
    let views = match with_devices {
        true => devices
            .into_iter()
            .map(|d| sipprov_api::RolloutDeviceView {
                mac: d.mac,
                wave: d.wave,
                state: d.state,
                from_version: d.from_version,
                reason: d.reason,
                started_at: d.started_at,
                decided_at: d.decided_at,
            })
            .collect(),
        false => Vec::new(),
    };
    Ok(sipprov_api::Rollout {
        id: record.id,
        group: record.group,
        version: record.version,
        previous_version: record.previous_version,
        state: record.state,
        reason: record.reason,
        wave: record.wave,
        waves,
        canary: record.canary,
        wave_percent: record.wave_percent,
        window_ms: record.window_ms,
        halt_percent: record.halt_percent,
        created_at: record.created_at,
        created_by: record.created_by,
        finished_at: record.finished_at,
        counts,
        devices: views,
    })
}
