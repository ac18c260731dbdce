//! Driving one campaign: paced sending, then watching for confirmations.

use std::sync::Arc;
use std::time::Duration;

use sipprov_model::Mac;
use sipprov_store::{CampaignRecord, NewEvent, NotifyResult, StoreError};
use sipprov_vendors::FileScope;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::CampaignReport;
use crate::fetchlog::Record;
use crate::state::AppState;

/// Devices marked `sending`, or outcomes written, in one statement at most.
const MAX_BATCH: usize = 500;

/// How many devices to mark `sending` at once: enough to make the write cheap per device, few
/// enough that a slow campaign does not show devices as `sending` long before their turn
/// (about a quarter second of sending, never more than can be in flight).
fn marking_chunk(campaign: &CampaignRecord) -> usize {
    let quarter_second = (campaign.rate / 4) as usize;
    quarter_second.min(campaign.max_in_flight as usize).clamp(1, MAX_BATCH)
}

/// Writes NOTIFY outcomes as they arrive, in batches, until every sender is done.
async fn write_results(
    state: Arc<AppState>,
    id: i64,
    mut rx: mpsc::Receiver<(Mac, NotifyResult)>,
) -> Result<(), StoreError> {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        state.store.record_notify_results(id, &batch).await?;
        batch.clear();
    }
    Ok(())
}

impl AppState {
    /// Sends to every device still without an outcome, then waits for confirmations.
    pub(super) async fn drive_campaign(self: &Arc<Self>, campaign: CampaignRecord) -> Result<(), StoreError> {
        let id = campaign.id;
        tracing::info!(campaign = id, selector = %campaign.selector, reboot = campaign.reboot, rate = campaign.rate,
            max_in_flight = campaign.max_in_flight, "campaign running");
        let todo = self.store.campaign_unsent(id).await?;
        self.send_paced(&campaign, todo).await?;
        self.await_confirmations(&campaign).await
    }

    /// Sends at most `rate` per second with at most `max_in_flight` awaiting an answer.
    ///
    /// Pacing is a token bucket on elapsed time rather than a timer per NOTIFY: timers tick in
    /// whole milliseconds, which would cap the rate near 1,000/s. Devices are marked `sending`
    /// a chunk at a time (one statement), the next chunk while the current one is sent;
    /// outcomes are written in batches by a separate task, so the database never paces the
    /// fleet.
    async fn send_paced(self: &Arc<Self>, campaign: &CampaignRecord, todo: Vec<Mac>) -> Result<(), StoreError> {
        let rate = f64::from(campaign.rate.max(1));
        let slots = Arc::new(Semaphore::new(campaign.max_in_flight.max(1) as usize));
        let (results_tx, results_rx) = mpsc::channel(MAX_BATCH * 2);
        let writer = tokio::spawn(write_results(self.clone(), campaign.id, results_rx));
        let started = Instant::now();
        let mut sent = 0usize;
        let mut chunks = todo.chunks(marking_chunk(campaign)).map(<[Mac]>::to_vec);
        // The next chunk is marked while the current one is sent, so the send loop never
        // waits for the database between chunks.
        let mut next_mark = self.mark_in_background(campaign.id, chunks.next());
        let mut marked = Vec::new().into_iter();
        loop {
            let mac = match marked.next() {
                Some(mac) => mac,
                None => {
                    let Some(chunk) = next_mark.await.map_err(|e| StoreError::Corrupt(e.to_string()))?? else {
                        break;
                    };
                    // Cancellation takes effect between chunks: the chunk marked ahead goes
                    // back to `pending`, as none of its NOTIFYs left.
                    if self.campaigns.is_cancelled(campaign.id) {
                        self.store.unmark_sending(campaign.id, &chunk).await?;
                        break;
                    }
                    next_mark = self.mark_in_background(campaign.id, chunks.next());
                    marked = chunk.into_iter();
                    continue;
                }
            };
            // The token bucket: the n-th NOTIFY may leave n/rate seconds after the start.
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            let Ok(permit) = slots.clone().acquire_owned().await else { break };
            sent += 1;
            let (state, tx, reboot) = (self.clone(), results_tx.clone(), campaign.reboot);
            tokio::spawn(async move {
                let result = state.notify_for_campaign(mac, reboot).await;
                let _ = tx.send((mac, result)).await;
                drop(permit);
            });
        }
        drop(results_tx);
        writer.await.map_err(|e| StoreError::Corrupt(e.to_string()))?
    }

    /// Marks `chunk` `sending` in a task of its own and hands it back once written: written
    /// before any of its NOTIFYs leaves, so after a crash these devices are sent again.
    fn mark_in_background(
        self: &Arc<Self>,
        id: i64,
        chunk: Option<Vec<Mac>>,
    ) -> tokio::task::JoinHandle<Result<Option<Vec<Mac>>, StoreError>> {
        let state = self.clone();
        tokio::spawn(async move {
            let Some(chunk) = chunk else { return Ok(None) };
            state.store.mark_sending(id, &chunk).await?;
            Ok(Some(chunk))
        })
    }

    /// One NOTIFY, with the file the device must fetch afterwards to confirm. Its name is
    /// enough: the server only serves the current rendering, so nothing is rendered here.
    async fn notify_for_campaign(&self, mac: Mac, reboot: bool) -> NotifyResult {
        let expected_file = self.primary_file_name(mac);
        let at = sipprov_store::now_ms();
        match self.notify_device(mac, reboot).await {
            Ok(o) => NotifyResult {
                ok: o.is_ok(),
                result: o.result.clone(),
                status: o.status,
                reason: o.reason.clone(),
                expected_file,
                at,
            },
            Err(e) => NotifyResult { ok: false, result: "error".into(), status: None, reason: e, expected_file, at },
        }
    }

    /// The SHA-256 of the device's own config file as rendered now (for `--changed`).
    pub fn primary_file_hash(&self, mac: Mac) -> Option<String> {
        let device = self.inventory.device(mac)?;
        let files = self.device_files(&device).ok()?;
        let spec = files.iter().find(|f| f.scope == FileScope::Device)?;
        self.rendered_hash(&device, spec).ok()
    }

    /// The name of the device's own config file.
    pub fn primary_file_name(&self, mac: Mac) -> Option<String> {
        let device = self.inventory.device(mac)?;
        let files = self.device_files(&device).ok()?;
        files.into_iter().find(|f| f.scope == FileScope::Device).map(|f| f.name)
    }

    /// Polls recorded fetches until every notified device confirmed or ran out of time.
    async fn await_confirmations(&self, campaign: &CampaignRecord) -> Result<(), StoreError> {
        loop {
            if self.campaigns.is_cancelled(campaign.id) {
                return Ok(());
            }
            self.fetchlog.flush().await;
            for (mac, at) in self.store.confirm_fetched(campaign.id).await? {
                self.fetchlog.record(Record::Event(NewEvent {
                    mac,
                    at,
                    kind: "confirmed".into(),
                    detail: serde_json::json!({ "campaign": campaign.id }),
                }));
            }
            let report = CampaignReport::load(&self.store, campaign.clone(), sipprov_store::now_ms()).await?;
            if report.settled() {
                self.store.set_campaign_state(campaign.id, "done").await?;
                tracing::info!(campaign = campaign.id, counts = ?report.counts, "campaign done");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
