//! Driving one rollout: a step every [`POLL`] decides the current wave's devices from the seen
//! index and moves the rollout on; NOTIFYs are sent between steps, paced.

use std::sync::Arc;
use std::time::Duration;

use sipprov_model::{known, Mac, RolloutDeviceState, RolloutState, Settings};
use sipprov_store::{NewEvent, RolloutDevice, RolloutRecord, StoreError};

use super::{plan, unpinned_event, RolloutEngine};
use crate::access::Actor;
use crate::pins::runs_version;

/// How often a driver looks at fetches and windows.
const POLL: Duration = Duration::from_millis(250);

/// NOTIFYs a second (the campaigns' default rate: it protects the HTTP server the notified
/// phones fetch from, and here the firmware downloads that follow).
const NOTIFY_RATE: u64 = 20;

/// NOTIFYs awaiting an answer at once.
const MAX_IN_FLIGHT: usize = 50;

/// What a step leaves to do outside the control lock.
enum Next {
    /// Send check-sync to these devices, then step again.
    Notify(Vec<Mac>),
    /// Nothing to send; step again after [`POLL`].
    Wait,
    /// The rollout left `running` and `rolling-back`: stop driving it.
    Stop,
}

impl RolloutEngine {
    /// Steps rollout `id` until it stops running or rolling back.
    ///
    /// Its lease (`rollout:<id>`) is renewed every [`crate::lease::LeasePolicy::renew_every`];
    /// when a renewal finds it held by another node (this one stalled past its length), this
    /// node stops driving.
    pub(super) async fn drive(self: &Arc<Self>, id: i64) -> Result<(), StoreError> {
        let mut renewed = tokio::time::Instant::now();
        loop {
            if !self.hold_lease(id, &mut renewed).await? {
                return Ok(());
            }
            let next = {
                let _turn = self.control.lock().await;
                self.step(id).await?
            };
            match next {
                Next::Stop => return Ok(()),
                Next::Notify(macs) => {
                    if !self.notify_paced(id, macs, &mut renewed).await? {
                        return Ok(());
                    }
                }
                Next::Wait => {
                    tokio::select! {
                        _ = tokio::time::sleep(POLL) => {}
                        _ = self.wake.notified() => {}
                    }
                }
            }
        }
    }

    /// The vendor id of `mac` (empty for a device removed since).
    fn vendor_of(&self, mac: Mac) -> String {
        self.inventory.device(mac).map(|d| d.vendor.to_string()).unwrap_or_default()
    }

    async fn step(&self, id: i64) -> Result<Next, StoreError> {
        let Some(r) = self.store.get_rollout(id).await? else { return Ok(Next::Stop) };
        // Every fetch answered before now is in the seen index after this.
        self.events.flush().await;
        let devices = self.store.rollout_devices(id).await?;
        match r.state {
            RolloutState::Running => self.step_running(&r, devices).await,
            RolloutState::RollingBack => self.step_rolling_back(&r, &devices).await,
            _ => Ok(Next::Stop),
        }
    }

    /// Decides the upgrading devices, then starts the current wave, or moves past it.
    async fn step_running(&self, r: &RolloutRecord, mut devices: Vec<RolloutDevice>) -> Result<Next, StoreError> {
        let now = sipprov_store::now_ms();
        self.decide_upgrading(r, &mut devices, now).await?;
        let in_wave: Vec<&RolloutDevice> = devices.iter().filter(|d| d.wave == r.wave).collect();
        let waiting: Vec<Mac> =
            in_wave.iter().filter(|d| d.state == RolloutDeviceState::Waiting).map(|d| d.mac).collect();
        if !waiting.is_empty() {
            let events: Vec<NewEvent> = waiting
                .iter()
                .map(|m| {
                    let detail =
                        sipprov_api::RolloutPinnedDetail { rollout: r.id, version: r.version.clone(), wave: r.wave };
                    NewEvent::of(*m, now, &detail)
                })
                .collect();
            self.store
                .pin_rollout_devices(r.id, &waiting, &r.version, RolloutDeviceState::Upgrading, now, &events)
                .await?;
            self.pins.set(&waiting, &r.version, r.id);
            tracing::info!(rollout = r.id, wave = r.wave, devices = waiting.len(), "rollout wave pinned");
            return Ok(Next::Notify(waiting));
        }
        let upgrading: Vec<&&RolloutDevice> =
            in_wave.iter().filter(|d| d.state == RolloutDeviceState::Upgrading).collect();
        if !upgrading.is_empty() {
            // Pinned before a restart but never notified: notify now.
            let unsent: Vec<Mac> = upgrading.iter().filter(|d| d.notified_at.is_none()).map(|d| d.mac).collect();
            return Ok(if unsent.is_empty() { Next::Wait } else { Next::Notify(unsent) });
        }
        self.wave_decided(r, &devices).await
    }

    /// Marks each upgrading device `succeeded` once it fetched, after it was pinned, reporting
    /// the version, or `failed` once its window closed.
    async fn decide_upgrading(
        &self,
        r: &RolloutRecord,
        devices: &mut [RolloutDevice],
        now: i64,
    ) -> Result<(), StoreError> {
        let seen = self.events.seen();
        let mut decisions = Vec::new();
        let mut events = Vec::new();
        for d in devices.iter_mut().filter(|d| d.state == RolloutDeviceState::Upgrading) {
            let started = d.started_at.unwrap_or(now);
            let last = seen.get(d.mac);
            let reported = last.as_ref().and_then(|f| f.reported_firmware.clone());
            let fetched_after = last.as_ref().is_some_and(|f| f.at >= started);
            if fetched_after && reported.as_deref().is_some_and(|v| runs_version(&self.vendor_of(d.mac), v, &r.version))
            {
                d.state = RolloutDeviceState::Succeeded;
                decisions.push((d.mac, d.state, None));
                let detail = sipprov_api::RolloutSucceededDetail {
                    rollout: r.id,
                    version: r.version.clone(),
                    how: "fetched".into(),
                };
                events.push(NewEvent::of(d.mac, now, &detail));
            } else if now >= d.notified_at.unwrap_or(started).saturating_add(r.window_ms) {
                d.state = RolloutDeviceState::Failed;
                let why = match &reported {
                    Some(v) => format!("still reported {v} when its window closed"),
                    None => "did not fetch within its window".to_string(),
                };
                decisions.push((d.mac, d.state, Some(why)));
                let detail = sipprov_api::RolloutFailedDetail { rollout: r.id, version: r.version.clone(), reported };
                events.push(NewEvent::of(d.mac, now, &detail));
            }
        }
        if !decisions.is_empty() {
            self.store.decide_rollout_devices(r.id, &decisions, &[], now, &events).await?;
        }
        Ok(())
    }

    /// The current wave is decided: halt past the threshold, else the next wave, else done.
    async fn wave_decided(&self, r: &RolloutRecord, devices: &[RolloutDevice]) -> Result<Next, StoreError> {
        let counted = devices.iter().filter(|d| d.wave >= r.count_from_wave.max(0) && d.wave <= r.wave);
        let (failed, decided) = counted.fold((0, 0), |(f, n), d| {
            (f + usize::from(d.state == RolloutDeviceState::Failed), n + usize::from(d.state.is_decided()))
        });
        if plan::should_halt(failed, decided, r.halt_percent) {
            let reason = format!(
                "{failed} of {decided} decided devices failed by wave {} (more than {}%)",
                r.wave, r.halt_percent
            );
            tracing::warn!(rollout = r.id, %reason, "firmware rollout halted");
            self.store
                .set_rollout_state(r.id, RolloutState::Halted, Some(&reason), r.wave, r.count_from_wave, None)
                .await?;
            return Ok(Next::Stop);
        }
        if devices.iter().any(|d| d.wave > r.wave && d.state == RolloutDeviceState::Waiting) {
            self.store
                .set_rollout_state(r.id, RolloutState::Running, None, r.wave + 1, r.count_from_wave, None)
                .await?;
            return Ok(Next::Wait);
        }
        self.complete(r).await
    }

    /// Every wave is decided: the group's `firmware.version` becomes the version (audited, as
    /// the actor who started the rollout), then the pins go.
    async fn complete(&self, r: &RolloutRecord) -> Result<Next, StoreError> {
        let actor = Actor { name: r.created_by.clone(), role: sipprov_api::Role::Operator };
        let mut patch = Settings::new();
        if let Err(e) = patch.set(known::FIRMWARE_VERSION.name(), &r.version) {
            return self.halt(r, &format!("cannot set the group's firmware.version: {e}")).await;
        }
        if let Err(e) = self.registry.patch_group(&actor, &r.group, &patch).await {
            return self.halt(r, &format!("cannot set the group's firmware.version: {e}")).await;
        }
        let now = sipprov_store::now_ms();
        let unpinned = self.store.clear_rollout_pins(r.id, |m| unpinned_event(m, r.id, "completed", now)).await?;
        self.pins.remove(&unpinned, r.id);
        let entry = crate::access::audit::entry(
            &actor,
            "rollout.complete",
            "rollout",
            &r.id.to_string(),
            serde_json::json!({ "group": r.group, "version": r.version }),
        );
        self.store.set_rollout_state(r.id, RolloutState::Done, None, r.wave, r.count_from_wave, Some(&entry)).await?;
        tracing::info!(rollout = r.id, group = %r.group, version = %r.version, "firmware rollout done");
        Ok(Next::Stop)
    }

    async fn halt(&self, r: &RolloutRecord, reason: &str) -> Result<Next, StoreError> {
        tracing::warn!(rollout = r.id, %reason, "firmware rollout halted");
        self.store.set_rollout_state(r.id, RolloutState::Halted, Some(reason), r.wave, r.count_from_wave, None).await?;
        Ok(Next::Stop)
    }

    /// Rolling back: notify the devices pinned back, and once each reported its previous
    /// version or its window closed, remove every pin of the rollout.
    async fn step_rolling_back(&self, r: &RolloutRecord, devices: &[RolloutDevice]) -> Result<Next, StoreError> {
        let now = sipprov_store::now_ms();
        let back: Vec<&RolloutDevice> = devices.iter().filter(|d| d.state == RolloutDeviceState::RolledBack).collect();
        let unsent: Vec<Mac> = back.iter().filter(|d| d.notified_at.is_none()).map(|d| d.mac).collect();
        if !unsent.is_empty() {
            return Ok(Next::Notify(unsent));
        }
        let seen = self.events.seen();
        let open = back.iter().any(|d| {
            let Some(pin) = self.pins.pin(d.mac).filter(|p| p.rollout == r.id) else { return false };
            let started = d.started_at.unwrap_or(now);
            let last = seen.get(d.mac);
            let back_on = last.is_some_and(|f| {
                f.at >= started
                    && f.reported_firmware
                        .as_deref()
                        .is_some_and(|v| runs_version(&self.vendor_of(d.mac), v, &pin.version))
            });
            !back_on && now < d.notified_at.unwrap_or(started).saturating_add(r.window_ms)
        });
        if open {
            return Ok(Next::Wait);
        }
        let unpinned = self.store.clear_rollout_pins(r.id, |m| unpinned_event(m, r.id, "rolled-back", now)).await?;
        self.pins.remove(&unpinned, r.id);
        self.store
            .set_rollout_state(r.id, RolloutState::RolledBack, r.reason.as_deref(), r.wave, r.count_from_wave, None)
            .await?;
        tracing::info!(rollout = r.id, devices = unpinned.len(), "firmware rollout rolled back");
        Ok(Next::Stop)
    }

    /// Sends check-sync to `macs`, at most [`NOTIFY_RATE`] a second and [`MAX_IN_FLIGHT`] at
    /// once, each outcome in the device's history (the notifier records it); each chunk is
    /// marked notified as it leaves, which opens its devices' windows.
    ///
    /// The lease is renewed between batches; false when it was lost (nothing more was sent).
    async fn notify_paced(
        self: &Arc<Self>,
        id: i64,
        macs: Vec<Mac>,
        renewed: &mut tokio::time::Instant,
    ) -> Result<bool, StoreError> {
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / NOTIFY_RATE));
        for chunk in macs.chunks(MAX_IN_FLIGHT) {
            if !self.hold_lease(id, renewed).await? {
                return Ok(false);
            }
            self.store.mark_rollout_notified(id, chunk, sipprov_store::now_ms()).await?;
            for mac in chunk {
                tick.tick().await;
                // The semaphore is never closed.
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                let engine = self.clone();
                let mac = *mac;
                tokio::spawn(async move {
                    if let Err(e) = engine.notifier.notify_device(mac, false).await {
                        tracing::warn!(rollout = id, %mac, error = %e, "rollout check-sync not sent");
                    }
                    drop(slot);
                });
            }
        }
        Ok(true)
    }

    /// Renews this node's lease on rollout `id` when [`crate::lease::LeasePolicy::renew_every`]
    /// has passed since `renewed`; false when another node holds it now (this one stalled past
    /// the lease's length), and this node must stop driving.
    async fn hold_lease(&self, id: i64, renewed: &mut tokio::time::Instant) -> Result<bool, StoreError> {
        if renewed.elapsed() < self.leases.renew_every() {
            return Ok(true);
        }
        let (holder, until, stale) = (self.leases.holder(), self.leases.until(), self.leases.stale_before());
        if !self.store.acquire_lease(&super::lease_name(id), holder, until, stale).await? {
            tracing::warn!(rollout = id, "rollout lease lost to another node");
            return Ok(false);
        }
        *renewed = tokio::time::Instant::now();
        Ok(true)
    }
}
