//! Firmware rollouts: a group moved to a firmware version in waves, proven per device.
//!
//! A rollout is stored before anything changes ([`RolloutEngine::launch`]): the group's devices
//! whose vendor and model have a firmware file of the version in the catalog, in waves (a
//! canary, then waves of a share of the rest); the others are `skipped` with the reason, and a
//! device that already reports the version succeeds at once, without a NOTIFY. The engine
//! ([`RolloutEngine::run`]) then drives each running rollout: it pins the current wave's devices
//! to the version (`crate::pins`, read by the render, which then names the firmware in their
//! files), sends each a check-sync through the [`Notifier`] (paced), and decides each device:
//! `succeeded` when it fetches again reporting the version in its User-Agent (the seen index)
//! after it was pinned, `failed` when its window closes first. When a wave is decided, the
//! rollout halts by itself if failed devices pass its threshold, else starts the next wave;
//! after the last, the group's `firmware.version` becomes the version through the
//! [`Registry`] (audited) and the pins are removed.
//!
//! Everything is stored as it happens and windows are wall-clock times, so a restarted server
//! resumes each rollout where it was. An operator may `resume` a halted rollout, `abort` one
//! (undecided devices are unpinned) or `roll back` one (the devices it moved are pinned to the
//! previous version and notified, then unpinned), each audited.

mod drive;
mod plan;
mod report;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sipprov_model::{known, Mac, RolloutDeviceState, RolloutState, Settings};
use sipprov_store::{NewEvent, NewRollout, RolloutRecord, Store, StoreError};

pub use report::report;

use crate::access::{audit, Actor};
use crate::catalog::vendor_model;
use crate::fetchlog::FetchLog;
use crate::files::Files;
use crate::inventory::Inventory;
use crate::lease::LeasePolicy;
use crate::notify::Notifier;
use crate::pins::{runs_version, FirmwarePins};
use crate::registry::Registry;
use crate::ServerError;
use plan::Candidate;

/// Most devices one rollout takes: a bigger group is refused (split it into smaller groups).
pub const MAX_DEVICES: usize = sipprov_api::CreateRollout::MAX_DEVICES;

/// How a rollout is [`RolloutEngine::launch`]ed, checked by the caller for its own field names.
#[derive(Debug, Clone)]
pub struct RolloutPlan {
    /// The group to move.
    pub group: String,
    /// The firmware version.
    pub version: String,
    /// Devices in the canary wave.
    pub canary: u32,
    /// Each later wave's share of the rest, in percent (1 to 100).
    pub wave_percent: u32,
    /// How long a device has to report the version.
    pub window_secs: u64,
    /// The failure share that halts, in percent (0 to 100).
    pub halt_percent: u32,
}

impl RolloutPlan {
    /// Checks the numbers of a request (absent ones take the defaults), naming the member at
    /// fault: the one check the admin API and the console make.
    pub fn from_request(body: sipprov_api::CreateRollout) -> Result<RolloutPlan, (&'static str, String)> {
        let canary = body.canary.unwrap_or(sipprov_api::CreateRollout::DEFAULT_CANARY);
        let wave_percent = body.wave_percent.unwrap_or(sipprov_api::CreateRollout::DEFAULT_WAVE_PERCENT);
        let window_secs = body.window_seconds.unwrap_or(sipprov_api::CreateRollout::DEFAULT_WINDOW_SECONDS);
        let halt_percent = body.halt_percent.unwrap_or(sipprov_api::CreateRollout::DEFAULT_HALT_PERCENT);
        if body.group.trim().is_empty() {
            return Err(("group", "group must name a group".into()));
        }
        if canary as usize > MAX_DEVICES {
            return Err(("canary", format!("canary must be between 0 and {MAX_DEVICES}")));
        }
        if !(1..=100).contains(&wave_percent) {
            return Err(("wave_percent", "wave_percent must be between 1 and 100".into()));
        }
        if !(1..=7 * 86_400).contains(&window_secs) {
            return Err(("window_seconds", "window_seconds must be between 1 and 604800".into()));
        }
        if halt_percent > 100 {
            return Err(("halt_percent", "halt_percent must be between 0 and 100".into()));
        }
        Ok(RolloutPlan { group: body.group, version: body.version, canary, wave_percent, window_secs, halt_percent })
    }
}

/// Why a rollout was not created or changed (nothing was stored).
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// A value of the request is wrong; `field` names it.
    #[error("{message}")]
    Invalid {
        /// The request member at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No rollout has that id.
    #[error("rollout {0} not found")]
    NotFound(i64),
    /// The rollout's (or the group's) state does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// The store could not keep it.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RolloutError {
    fn from(e: StoreError) -> RolloutError {
        match e {
            StoreError::Duplicate(why) => RolloutError::Conflict(why),
            other => RolloutError::Store(other),
        }
    }
}

/// The rollout engine: what it pins, sends through and reads.
pub struct RolloutEngine {
    store: Store,
    notifier: Arc<Notifier>,
    files: Arc<Files>,
    inventory: Arc<Inventory>,
    registry: Arc<Registry>,
    events: FetchLog,
    pins: Arc<FirmwarePins>,
    /// This node's lease on each rollout it drives: one node drives a rollout at a time.
    leases: LeasePolicy,
    /// Held by every state change (a driver's step, resume, abort, rollback), so an operator's
    /// action and a driver's decision never interleave.
    control: tokio::sync::Mutex<()>,
    driving: Mutex<HashSet<i64>>,
    wake: tokio::sync::Notify,
}

/// What the engine is built from.
pub struct RolloutParts {
    /// Where rollouts, device rows and pins are kept.
    pub store: Store,
    /// Sends the check-sync NOTIFYs.
    pub notifier: Arc<Notifier>,
    /// The file catalog (through the provisioning core).
    pub files: Arc<Files>,
    /// The devices of a group.
    pub inventory: Arc<Inventory>,
    /// Sets the group's `firmware.version` when a rollout completes.
    pub registry: Arc<Registry>,
    /// History events and the seen index.
    pub events: FetchLog,
    /// The pins the render reads.
    pub pins: Arc<FirmwarePins>,
    /// The leases under which this node drives rollouts.
    pub leases: LeasePolicy,
}

impl RolloutEngine {
    /// The engine over these parts.
    pub fn new(parts: RolloutParts) -> RolloutEngine {
        let RolloutParts { store, notifier, files, inventory, registry, events, pins, leases } = parts;
        RolloutEngine {
            store,
            notifier,
            files,
            inventory,
            registry,
            events,
            pins,
            leases,
            control: tokio::sync::Mutex::new(()),
            driving: Mutex::new(HashSet::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The store, for reports.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates a rollout of `plan` for `actor`, with its audit entry and the history of its
    /// skipped and already-upgraded devices in one transaction, and wakes the engine: the one
    /// path the admin API and the console share.
    pub async fn launch(&self, actor: &Actor, plan: &RolloutPlan) -> Result<RolloutRecord, RolloutError> {
        let version = Settings::validate(known::FIRMWARE_VERSION.name(), &plan.version)
            .map_err(|e| RolloutError::Invalid { field: "version", message: e.to_string() })?;
        if self.inventory.group(&plan.group).is_none() {
            return Err(RolloutError::Invalid { field: "group", message: format!("group {:?} not found", plan.group) });
        }
        let devices: Vec<_> =
            self.inventory.devices().into_iter().filter(|d| d.group.as_deref() == Some(plan.group.as_str())).collect();
        if devices.is_empty() {
            let message = format!("group {:?} has no devices", plan.group);
            return Err(RolloutError::Invalid { field: "group", message });
        }
        if devices.len() > MAX_DEVICES {
            let message =
                format!("group {:?} has {} devices; a rollout takes at most {MAX_DEVICES}", plan.group, devices.len());
            return Err(RolloutError::Invalid { field: "group", message });
        }
        let seen = self.events.seen().clone();
        let candidates: Vec<Candidate> = devices
            .iter()
            .map(|d| {
                let reported = seen.get(d.mac).and_then(|f| f.reported_firmware);
                let on_version = reported.as_deref().is_some_and(|r| runs_version(&d.vendor, r, &version));
                Candidate { mac: d.mac, skip: self.missing_firmware(d, &version), on_version, reported }
            })
            .collect();
        let rows = plan::assign(candidates, plan.canary, plan.wave_percent);
        if rows.iter().all(|r| r.state == RolloutDeviceState::Skipped) {
            let message = format!("no device of group {:?} has a firmware file for version {version}", plan.group);
            return Err(RolloutError::Invalid { field: "version", message });
        }
        let now = sipprov_store::now_ms();
        let events: Vec<NewEvent> = rows.iter().filter_map(|r| creation_event(r, &version, now)).collect();
        let new = NewRollout {
            group: plan.group.clone(),
            version: version.clone(),
            previous_version: self.group_version(&plan.group),
            canary: plan.canary,
            wave_percent: plan.wave_percent,
            window_ms: i64::try_from(plan.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            halt_percent: plan.halt_percent,
            created_by: actor.name.clone(),
        };
        let skipped = rows.iter().filter(|r| r.state == RolloutDeviceState::Skipped).count();
        let detail = serde_json::json!({
            "group": new.group, "version": new.version, "previous_version": new.previous_version,
            "devices": rows.len(), "skipped": skipped, "canary": new.canary, "wave_percent": new.wave_percent,
            "window_ms": new.window_ms, "halt_percent": new.halt_percent,
        });
        let entry = audit::entry(actor, "rollout.create", "rollout", "", detail);
        let record = self.store.create_rollout_audited(&new, &rows, &events, &entry).await?;
        tracing::info!(rollout = record.id, group = %record.group, version = %record.version, devices = rows.len(),
            skipped, actor = %actor.name, "firmware rollout created");
        self.wake.notify_one();
        Ok(record)
    }

    /// Why `device` cannot take part in a rollout to `version`: no file for its model, or a
    /// model whose files cannot name a device's own firmware URL.
    fn missing_firmware(&self, device: &sipprov_store::DeviceRecord, version: &str) -> Option<String> {
        let Ok((vendor, model)) = vendor_model(device) else {
            return Some(format!("unknown vendor or model {} {}", device.vendor, device.model));
        };
        if self.files.resources().firmware_for(vendor.id(), model.name, version).is_none() {
            return Some(format!("no firmware file for {} {} version {version}", vendor.id(), model.name));
        }
        // A model whose files cannot carry a device's own firmware URL (Polycom reads it from
        // the shared master file only; some Fanvil series have no upgrade parameter) would
        // never move: leave it out, with the vendor's own reason, rather than fail it later.
        let probe: Settings = [
            (known::FIRMWARE_URL.name().to_string(), "http://probe.invalid/files/image".to_string()),
            (known::FIRMWARE_VERSION.name().to_string(), version.to_string()),
        ]
        .into_iter()
        .collect();
        vendor.validate_device(model, &probe).err().map(|refused| format!("{} {}: {refused}", vendor.id(), model.name))
    }

    /// The group's effective `firmware.version` now (its own, else the global one).
    fn group_version(&self, group: &str) -> Option<String> {
        let key = known::FIRMWARE_VERSION.name();
        let own = self.inventory.group(group).and_then(|s| s.get(key).map(str::to_string));
        own.or_else(|| self.inventory.global().get(key).map(str::to_string))
    }

    /// Resumes halted rollout `id` for `actor`: the next wave starts, and the halt threshold
    /// counts only the waves from there on.
    pub async fn resume_by(&self, actor: &Actor, id: i64) -> Result<(), RolloutError> {
        let _turn = self.control.lock().await;
        let r = self.store.get_rollout(id).await?.ok_or(RolloutError::NotFound(id))?;
        if r.state != RolloutState::Halted {
            return Err(RolloutError::Conflict(format!("rollout {id} is {}, not halted", r.state)));
        }
        let entry = audit::entry(actor, "rollout.resume", "rollout", &id.to_string(), serde_json::json!({}));
        self.store.set_rollout_state(id, RolloutState::Running, None, r.wave, r.wave + 1, Some(&entry)).await?;
        tracing::info!(rollout = id, actor = %actor.name, "firmware rollout resumed");
        self.wake.notify_one();
        Ok(())
    }

    /// Aborts rollout `id` for `actor`: devices not decided yet are `cancelled`; they and the
    /// failed ones are unpinned; devices that succeeded keep their pin (they run the version).
    pub async fn abort_by(&self, actor: &Actor, id: i64) -> Result<(), RolloutError> {
        let _turn = self.control.lock().await;
        let r = self.store.get_rollout(id).await?.ok_or(RolloutError::NotFound(id))?;
        if !matches!(r.state, RolloutState::Running | RolloutState::Halted) {
            return Err(RolloutError::Conflict(format!(
                "rollout {id} is {}: only a running or halted one aborts",
                r.state
            )));
        }
        let devices = self.store.rollout_devices(id).await?;
        let open: Vec<Mac> = devices
            .iter()
            .filter(|d| matches!(d.state, RolloutDeviceState::Waiting | RolloutDeviceState::Upgrading))
            .map(|d| d.mac)
            .collect();
        let reason = format!("aborted by {}", actor.name);
        let now = sipprov_store::now_ms();
        let decisions: Vec<_> =
            open.iter().map(|m| (*m, RolloutDeviceState::Cancelled, Some(reason.clone()))).collect();
        // Failed devices lose their pin too: they did not move, and an aborted rollout should
        // stop asking them to.
        let pinned: Vec<Mac> = devices
            .iter()
            .filter(|d| d.state != RolloutDeviceState::Succeeded)
            .map(|d| d.mac)
            .filter(|m| self.pins.pin(*m).is_some_and(|p| p.rollout == id))
            .collect();
        let events: Vec<NewEvent> = pinned.iter().map(|m| unpinned_event(*m, id, "aborted", now)).collect();
        self.store.decide_rollout_devices(id, &decisions, &pinned, now, &events).await?;
        self.pins.remove(&pinned, id);
        let entry = audit::entry(
            actor,
            "rollout.abort",
            "rollout",
            &id.to_string(),
            serde_json::json!({ "cancelled": open.len() }),
        );
        self.store
            .set_rollout_state(id, RolloutState::Aborted, Some(&reason), r.wave, r.count_from_wave, Some(&entry))
            .await?;
        tracing::info!(rollout = id, cancelled = open.len(), actor = %actor.name, "firmware rollout aborted");
        Ok(())
    }

    /// Rolls rollout `id` back for `actor`: every device it pinned is pinned to the previous
    /// version (the group's before the rollout, else what the device reported before) and
    /// notified; the engine unpins them once each reports it or its window closes.
    pub async fn rollback_by(&self, actor: &Actor, id: i64) -> Result<usize, RolloutError> {
        let _turn = self.control.lock().await;
        let r = self.store.get_rollout(id).await?.ok_or(RolloutError::NotFound(id))?;
        if !matches!(r.state, RolloutState::Running | RolloutState::Halted | RolloutState::Aborted) {
            let why = format!("rollout {id} is {}: only a running, halted or aborted one rolls back", r.state);
            return Err(RolloutError::Conflict(why));
        }
        let now = sipprov_store::now_ms();
        let devices = self.store.rollout_devices(id).await?;
        let mut moved = 0;
        let mut rest = Vec::new();
        for d in &devices {
            let was_moved = d.started_at.is_some() && d.state != RolloutDeviceState::Skipped;
            let back = r.previous_version.clone().or_else(|| d.from_version.clone());
            match (was_moved, back) {
                (true, Some(back)) => {
                    let detail = sipprov_api::RolloutPinnedDetail { rollout: id, version: back.clone(), wave: -1 };
                    let event = NewEvent::of(d.mac, now, &detail);
                    self.store
                        .pin_rollout_devices(id, &[d.mac], &back, RolloutDeviceState::RolledBack, now, &[event])
                        .await?;
                    self.pins.set(&[d.mac], &back, id);
                    moved += 1;
                }
                (true, None) => {
                    rest.push((d.mac, RolloutDeviceState::RolledBack, Some("no previous version known".into())))
                }
                (false, _) if d.state == RolloutDeviceState::Waiting => {
                    rest.push((d.mac, RolloutDeviceState::Cancelled, Some(format!("rolled back by {}", actor.name))))
                }
                (false, _) => {}
            }
        }
        let unpin: Vec<Mac> =
            rest.iter().filter(|(_, s, _)| *s == RolloutDeviceState::RolledBack).map(|(m, _, _)| *m).collect();
        let events: Vec<NewEvent> = unpin.iter().map(|m| unpinned_event(*m, id, "rolled-back", now)).collect();
        self.store.decide_rollout_devices(id, &rest, &unpin, now, &events).await?;
        self.pins.remove(&unpin, id);
        let reason = format!("rolled back by {}", actor.name);
        let entry = audit::entry(
            actor,
            "rollout.rollback",
            "rollout",
            &id.to_string(),
            serde_json::json!({ "devices": moved }),
        );
        self.store
            .set_rollout_state(id, RolloutState::RollingBack, Some(&reason), r.wave, r.count_from_wave, Some(&entry))
            .await?;
        tracing::info!(rollout = id, devices = moved, actor = %actor.name, "firmware rollout rolling back");
        self.wake.notify_one();
        Ok(moved)
    }

    /// The engine: drives every running or rolling-back rollout (after a restart too). Runs for
    /// the life of the server.
    pub async fn run(self: Arc<Self>) -> Result<(), ServerError> {
        loop {
            match self.store.list_rollouts().await {
                Ok(all) => {
                    for r in
                        all.into_iter().filter(|r| matches!(r.state, RolloutState::Running | RolloutState::RollingBack))
                    {
                        if let Err(e) = self.start_driving(r.id).await {
                            tracing::error!(rollout = r.id, error = %e, "rollout not started; it is looked at again on the next pass");
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "rollout engine"),
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Drives rollout `id` in a task of its own, unless this node drives it already or
    /// another node holds its lease.
    async fn start_driving(self: &Arc<Self>, id: i64) -> Result<(), StoreError> {
        if self.driving.lock().unwrap_or_else(|e| e.into_inner()).contains(&id) {
            return Ok(());
        }
        let lease = lease_name(id);
        let (holder, until, stale) = (self.leases.holder(), self.leases.until(), self.leases.stale_before());
        if !self.store.acquire_lease(&lease, holder, until, stale).await? || !self.claim(id) {
            return Ok(());
        }
        tracing::info!(rollout = id, node = holder, "driving firmware rollout");
        self.reload_pins(id).await?;
        let engine = self.clone();
        tokio::spawn(async move {
            if let Err(e) = engine.drive(id).await {
                tracing::error!(rollout = id, error = %e, "rollout stopped; it resumes on the next pass");
            }
            if let Err(e) = engine.store.release_lease(&lease_name(id), engine.leases.holder()).await {
                tracing::warn!(rollout = id, error = %e, "rollout lease not released; it runs out by itself");
            }
            engine.release(id);
        });
        Ok(())
    }

    /// Loads rollout `id`'s pins from the database into this node's copy: a rollout taken
    /// over from a node that died carries on from the pins that node wrote, whether or not
    /// they reached this node yet.
    async fn reload_pins(&self, id: i64) -> Result<(), StoreError> {
        let mut by_version: std::collections::BTreeMap<String, Vec<Mac>> = std::collections::BTreeMap::new();
        for pin in self.store.firmware_pins().await?.into_iter().filter(|p| p.rollout_id == id) {
            by_version.entry(pin.version).or_default().push(pin.mac);
        }
        for (version, macs) in by_version {
            self.pins.set(&macs, &version, id);
        }
        Ok(())
    }

    fn claim(&self, id: i64) -> bool {
        self.driving.lock().unwrap_or_else(|e| e.into_inner()).insert(id)
    }

    fn release(&self, id: i64) {
        self.driving.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// The history event of a device decided at creation: skipped, or already on the version. Its
/// rollout id is 0 until the store gives it the new one.
fn creation_event(row: &sipprov_store::NewRolloutDevice, version: &str, now: i64) -> Option<NewEvent> {
    match row.state {
        RolloutDeviceState::Skipped => {
            let reason = row.reason.clone().unwrap_or_default();
            Some(NewEvent::of(row.mac, now, &sipprov_api::RolloutSkippedDetail { rollout: 0, reason }))
        }
        RolloutDeviceState::Succeeded => {
            let detail =
                sipprov_api::RolloutSucceededDetail { rollout: 0, version: version.into(), how: "already".into() };
            Some(NewEvent::of(row.mac, now, &detail))
        }
        _ => None,
    }
}

/// The name of the lease under which one node drives rollout `id`.
fn lease_name(id: i64) -> String {
    format!("rollout:{id}")
}

/// A `rollout-unpinned` history event.
fn unpinned_event(mac: Mac, rollout: i64, reason: &str, at: i64) -> NewEvent {
    NewEvent::of(mac, at, &sipprov_api::RolloutUnpinnedDetail { rollout, reason: reason.into() })
}
