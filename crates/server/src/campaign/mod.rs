//! Fleet re-sync campaigns: paced check-sync to many devices, resumable, with proof.
//!
//! A campaign is persisted before anything is sent. The engine ([`CampaignEngine::run`])
//! starts due campaigns and drives each one: NOTIFYs leave at most `rate` per second with at
//! most `max_in_flight` awaiting a final response, over any one-second interval (a stall earns
//! no catch-up burst, see `pace`), so a fleet re-sync never turns into a reboot storm that
//! melts the HTTP server. Each device then has `confirm_window_ms` to fetch its own config
//! file: a successful fetch (200, or 304 to a validator of the current content) after the
//! NOTIFY and within the window proves it has its current config, since the server only
//! serves the current rendering, and the hash it got is recorded. Only then is it
//! "confirmed"; a 200 without a fetch, or a fetch after the window, is reported as
//! "not-confirmed", never as success.
//!
//! Crash safety: a device gets its outcome right after its NOTIFY's transaction ends, so a
//! restart re-sends exactly the devices with no recorded outcome. Where other nodes may take a
//! chunk over (PostgreSQL) a device is also marked `sending` before its NOTIFY leaves, so that
//! the node taking over knows which devices may have been notified; on SQLite one node sends
//! and the mark would only count the attempt early, so the outcome counts it.
//!
//! Across nodes (PostgreSQL): every node runs the engine and sends the chunks of a campaign it
//! claims under a lease, at its share of the rate and in-flight limit; a dead node's chunks are
//! taken over when their lease runs out (see `chunks`). Reports are read from the database, so
//! any node shows the whole campaign.

mod chunks;
mod drive;
mod pace;
mod report;
mod select;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use report::{device_outcome, CampaignReport};
pub use select::{Selection, SelectionError};

use sipprov_store::{CampaignRecord, NewCampaign, Store, StoreError};

use crate::access::{audit, Actor};
use crate::fetchlog::FetchLog;
use crate::files::Files;
use crate::inventory::Inventory;
use crate::lease::LeasePolicy;
use crate::notify::Notifier;
use crate::ServerError;

/// How a campaign [`CampaignEngine::launch`]es: when, how fast, and how long each device has to
/// fetch its file.
#[derive(Debug, Clone, Copy)]
pub struct LaunchPlan {
    /// When sending starts (ms since the epoch).
    pub start_at: i64,
    /// Reboot rather than re-provision.
    pub reboot: bool,
    /// NOTIFYs per second.
    pub rate: u32,
    /// NOTIFYs awaiting a final response at once.
    pub max_in_flight: u32,
    /// How long after its NOTIFY a device's fetch still confirms it.
    pub confirm_window_secs: u64,
}

/// Why a campaign was not created (nothing was stored).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The selection names unknown devices, an empty group, or nothing.
    #[error(transparent)]
    Selection(#[from] SelectionError),
    /// The store could not keep it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a cancel or a retry was refused (nothing changed).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No campaign has that id.
    #[error("campaign {0} not found")]
    NotFound(i64),
    /// Cancel: it has already ended this way.
    #[error("campaign {0} is already {1}")]
    Finished(i64, sipprov_model::CampaignState),
    /// Retry: it is still running.
    #[error("campaign {0} is still running")]
    Running(i64),
    /// Retry: no device failed or went unconfirmed.
    #[error("campaign {0} has no failed or unconfirmed device")]
    NothingToRetry(i64),
    /// The store could not keep the change.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The campaign engine: what it sends through, what it reads, and what it drives.
pub struct CampaignEngine {
    store: Store,
    /// The same database on a connection of its own, for the outcome batches (see
    /// [`Store::own_writer`]).
    outcomes: Store,
    notifier: Arc<Notifier>,
    files: Arc<Files>,
    inventory: Arc<Inventory>,
    events: FetchLog,
    control: Campaigns,
    /// This node's leases on the chunks it sends (and whether other nodes share the work).
    leases: LeasePolicy,
}

/// Which campaigns this process is driving, and which were cancelled.
#[derive(Default)]
struct Campaigns {
    driving: Mutex<HashSet<i64>>,
    cancelled: Mutex<HashSet<i64>>,
    wake: tokio::sync::Notify,
}

impl Campaigns {
    fn is_cancelled(&self, id: i64) -> bool {
        self.cancelled.lock().unwrap_or_else(|e| e.into_inner()).contains(&id)
    }

    /// Claims a campaign for driving; false when a driver already runs it.
    fn claim(&self, id: i64) -> bool {
        self.driving.lock().unwrap_or_else(|e| e.into_inner()).insert(id)
    }

    fn release(&self, id: i64) {
        self.driving.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.cancelled.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

impl CampaignEngine {
    /// The engine over the store, writing outcomes through `outcomes` (the same database, see
    /// [`Store::own_writer`]), sending through `notifier`, taking chunks under `leases`.
    pub fn new(
        store: Store,
        outcomes: Store,
        notifier: Arc<Notifier>,
        files: Arc<Files>,
        inventory: Arc<Inventory>,
        events: FetchLog,
        leases: LeasePolicy,
    ) -> CampaignEngine {
        CampaignEngine { store, outcomes, notifier, files, inventory, events, control: Campaigns::default(), leases }
    }

    /// Creates a campaign over the devices `selection` picks, with its audit entry in the same
    /// transaction, and wakes the engine: the one path the admin API and the console share
    /// (each checks its own form of the numbers first, naming its own fields). Answers the
    /// campaign as stored and how many devices it reaches.
    pub async fn launch(
        &self,
        actor: &Actor,
        selection: &Selection,
        plan: LaunchPlan,
    ) -> Result<(CampaignRecord, usize), LaunchError> {
        let (macs, selector) = self.select_devices(selection).await?;
        let new = NewCampaign {
            start_at: plan.start_at,
            reboot: plan.reboot,
            rate: plan.rate,
            max_in_flight: plan.max_in_flight,
            confirm_window_ms: i64::try_from(plan.confirm_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            selector,
        };
        // The store sets the entry's target to the new campaign's id, in the campaign's transaction.
        let detail = serde_json::json!({ "devices": macs.len(), "selector": new.selector, "reboot": new.reboot });
        let entry = audit::entry(actor, "campaign.create", "campaign", "", detail);
        let campaign = self.store.create_campaign_audited(&new, &macs, &entry).await?;
        tracing::info!(campaign = campaign.id, devices = macs.len(), selector = %campaign.selector, actor = %actor.name, "campaign created");
        self.wake();
        Ok((campaign, macs.len()))
    }

    /// Cancels campaign `id` for `actor`: its driver stops at its next step, and the new state is
    /// stored with its audit entry in one transaction. Outcomes so far are kept.
    pub async fn cancel_by(&self, actor: &Actor, id: i64) -> Result<(), ControlError> {
        let campaign = self.store.get_campaign(id).await?.ok_or(ControlError::NotFound(id))?;
        if campaign.state.is_finished() {
            return Err(ControlError::Finished(id, campaign.state));
        }
        self.cancel(id);
        let entry = audit::entry(actor, "campaign.cancel", "campaign", &id.to_string(), serde_json::json!({}));
        self.store.set_campaign_state_audited(id, sipprov_model::CampaignState::Cancelled, Some(&entry)).await?;
        tracing::info!(campaign = id, actor = %actor.name, "campaign cancelled");
        Ok(())
    }

    /// Puts campaign `id`'s failed and unconfirmed devices back to pending for `actor`, with
    /// the audit entry in the same transaction, and wakes the engine; answers how many.
    pub async fn retry_by(&self, actor: &Actor, id: i64) -> Result<u64, ControlError> {
        let campaign = self.store.get_campaign(id).await?.ok_or(ControlError::NotFound(id))?;
        if campaign.state == sipprov_model::CampaignState::Running {
            return Err(ControlError::Running(id));
        }
        let entry = audit::entry(actor, "campaign.retry", "campaign", &id.to_string(), serde_json::json!({}));
        let n = self.store.retry_campaign_audited(id, sipprov_store::now_ms(), Some(&entry)).await?;
        if n == 0 {
            return Err(ControlError::NothingToRetry(id));
        }
        tracing::info!(campaign = id, devices = n, actor = %actor.name, "campaign retry");
        self.wake();
        Ok(n)
    }

    /// Asks the engine to look for work now (a campaign was created or retried).
    pub fn wake(&self) {
        self.control.wake.notify_one();
    }

    /// Stops a running campaign's driver at its next step.
    pub fn cancel(&self, id: i64) {
        self.control.cancelled.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        self.notifier.metrics().campaign_finished(sipprov_model::CampaignState::Cancelled);
    }

    /// The campaign engine: starts scheduled campaigns when due and resumes running ones
    /// (after a restart too). Runs for the life of the server.
    pub async fn run(self: Arc<Self>) -> Result<(), ServerError> {
        loop {
            if let Err(e) = self.start_due_campaigns().await {
                tracing::error!(error = %e, "campaign engine");
            }
            tokio::select! {
                _ = self.control.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn start_due_campaigns(self: &Arc<Self>) -> Result<(), sipprov_store::StoreError> {
        let now = sipprov_store::now_ms();
        for c in self.store.list_campaigns().await? {
            let due = c.state == sipprov_model::CampaignState::Running
                || (c.state == sipprov_model::CampaignState::Scheduled && c.start_at <= now);
            if !due || !self.control.claim(c.id) {
                continue;
            }
            if c.state == sipprov_model::CampaignState::Scheduled {
                self.store.set_campaign_state(c.id, sipprov_model::CampaignState::Running).await?;
            }
            let engine = self.clone();
            tokio::spawn(async move {
                let id = c.id;
                if let Err(e) = engine.drive_campaign(c).await {
                    tracing::error!(campaign = id, error = %e, "campaign stopped; it resumes on the next pass");
                }
                engine.control.release(id);
            });
        }
        Ok(())
    }
}
