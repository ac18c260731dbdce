//! Driving one campaign: paced sending, then watching for confirmations.

use std::sync::Arc;
use std::time::Duration;

use sipprov_model::Mac;
use sipprov_store::{CampaignRecord, NewEvent, NotifyResult, StoreError};
use sipprov_vendors::FileScope;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use super::CampaignReport;
use crate::checksync::Outcome;
use crate::fetchlog::Record;
use crate::notify::notify_event;
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

/// One NOTIFY's outcome and its history event, written together.
type Sent = ((Mac, NotifyResult), NewEvent);

/// Writes NOTIFY outcomes, each with its history event in the same transaction, as they
/// arrive, in batches, until every sender is done. The channel is bounded, so a slow database
/// holds the senders back instead of letting outcomes pile up in memory.
async fn write_results(state: Arc<AppState>, id: i64, mut rx: mpsc::Receiver<Sent>) -> Result<(), StoreError> {
    let (mut results, mut events) = (Vec::new(), Vec::new());
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some((result, event)) = next {
            results.push(result);
            events.push(event);
            next = if results.len() < MAX_BATCH { rx.try_recv().ok() } else { None };
        }
        state.store.record_notify_results_with_events(id, &results, &events).await?;
        results.clear();
        events.clear();
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
            let (state, tx, reboot, id) = (self.clone(), results_tx.clone(), campaign.reboot, campaign.id);
            tokio::spawn(async move {
                let sent = state.notify_for_campaign(id, mac, reboot).await;
                let _ = tx.send(sent).await;
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

    /// One NOTIFY, with the file the device must fetch afterwards to confirm (its name is
    /// enough: the server only serves the current rendering, so nothing is rendered here) and
    /// the device's history event.
    async fn notify_for_campaign(&self, id: i64, mac: Mac, reboot: bool) -> Sent {
        let expected_file = self.primary_file_name(mac);
        let at = sipprov_store::now_ms();
        let outcome = self.send_check_sync(mac, reboot).await.unwrap_or_else(|e| Outcome::failed("error", e, ""));
        let event = notify_event(mac, sipprov_store::now_ms(), &outcome, Some(id));
        let Outcome { result, status, reason, .. } = outcome;
        ((mac, NotifyResult { ok: result == "ok", result, status, reason, expected_file, at }), event)
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
