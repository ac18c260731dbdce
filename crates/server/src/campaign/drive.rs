//! Driving one campaign: paced sending, and watching for confirmations from the first NOTIFY
//! until every window has closed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sipprov_model::{CampaignState, Mac};
use sipprov_sip::{BatchRequest, BatchResult};
use sipprov_store::{CampaignRecord, EventText, NotifyResult, StoreError};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};

use super::chunks::{in_flight_share, ChunkControl, SendEnd, Slots};
use super::pace::Pacer;
use super::CampaignEngine;
use super::CampaignReport;
use crate::checksync::{self, Outcome, Resolver};
use crate::metrics::labels::VendorLabel;
use crate::metrics::NotifySource;
use crate::notify::{log_outcome, NotifyError, Planned};

/// Devices marked `sending`, or outcomes written, in one statement at most.
const MAX_BATCH: usize = 500;

/// How long a batch of outcomes waits for more before it is written. Each write transaction
/// rewrites the pages its rows end on (the last leaf and the parents of every B-tree it inserts
/// into), so batches of about 150, as a campaign at full speed wrote them, put about a page of
/// write-ahead log per four devices; waiting this long fills batches of [`MAX_BATCH`] at
/// 25,000 NOTIFYs a second, and delays no outcome by more than this.
const GATHER: Duration = Duration::from_millis(20);

/// How long after its time a fetch may reach the store and still be looked at by the next
/// confirmation check: a served fetch waits up to 2 s for room in the fetch log (its time is
/// taken before), and another node of a cluster writes its fetches every second. A check reads
/// the fetches of this long before the previous check again.
const LATE_FETCH: Duration = Duration::from_secs(5);

/// [`LATE_FETCH`] in milliseconds, as fetch times are kept.
fn late_fetch_ms() -> i64 {
    i64::try_from(LATE_FETCH.as_millis()).unwrap_or(i64::MAX)
}

/// How often recorded fetches are matched against the devices' confirmation windows once
/// everything is sent (so that the campaign is `done` soon after the last window closes).
const CONFIRM_POLL: Duration = Duration::from_millis(500);

/// How often they are matched while NOTIFYs are still being sent: often enough that a phone's
/// own next fetch (minutes or hours later) cannot replace the one that confirms it, rarely
/// enough that a check over a 100,000-device campaign (tens of milliseconds of the database's
/// time on SQLite) costs the sending next to nothing.
const CONFIRM_POLL_WHILE_SENDING: Duration = Duration::from_secs(5);

/// How many devices to mark `sending` at once: enough to make the write cheap per device, few
/// enough that a slow campaign does not show devices as `sending` long before their turn
/// (about a quarter second of sending, never more than can be in flight).
fn marking_chunk(campaign: &CampaignRecord) -> usize {
    let quarter_second = (campaign.rate / 4) as usize;
    quarter_second.min(campaign.max_in_flight as usize).clamp(1, MAX_BATCH)
}

/// One NOTIFY's outcome and its history event, written together.
type Sent = ((Mac, NotifyResult), EventText);

/// What a campaign keeps of a NOTIFY while its transaction runs in the SIP batch.
struct InFlight {
    mac: Mac,
    expected_file: Option<String>,
    at: i64,
    event: String,
    sent_to: String,
    /// The device's vendor and when its NOTIFY left, for the round-trip histogram.
    vendor: VendorLabel,
    sent_at: Instant,
    /// The NOTIFY's place under `max_in_flight`, given back when its transaction ends.
    slot: Option<OwnedSemaphorePermit>,
}

/// The outcome of one device, with its history event: the `notify` event `device log` shows
/// for a NOTIFY sent alone too, with the campaign it belonged to, its detail written straight
/// from its type ([`sipprov_api::NotifyOutcome::to_json`], the text serde_json would write).
fn sent(campaign: i64, mac: Mac, expected_file: Option<String>, at: i64, outcome: Outcome) -> Sent {
    log_outcome(mac, &outcome);
    let detail = sipprov_api::NotifyOutcome { campaign: Some(campaign), ..outcome.into() };
    let kind = <sipprov_api::NotifyOutcome as sipprov_model::EventDetail>::KIND;
    let event = EventText { mac, at: sipprov_store::now_ms(), kind, detail: detail.to_json() };
    let sipprov_api::NotifyOutcome { result, status, reason, .. } = detail;
    ((mac, NotifyResult { result, status, reason, expected_file, at }), event)
}

/// The two inputs of [`write_results`]: the SIP batch's results, and the outcomes decided
/// without sending (no target, invalid contact...).
struct Outcomes {
    finished: mpsc::Receiver<BatchResult<InFlight>>,
    decided: mpsc::Receiver<Sent>,
    finished_open: bool,
    decided_open: bool,
}

/// One outcome as it comes in, before it is turned into rows.
enum Incoming {
    Finished(BatchResult<InFlight>),
    Decided(Sent),
}

impl Outcomes {
    /// The next outcome, waiting for it; `None` once both inputs are closed and drained.
    async fn recv(&mut self) -> Option<Incoming> {
        while self.finished_open || self.decided_open {
            tokio::select! {
                done = self.finished.recv(), if self.finished_open => match done {
                    Some(done) => return Some(Incoming::Finished(done)),
                    None => self.finished_open = false,
                },
                one = self.decided.recv(), if self.decided_open => match one {
                    Some(one) => return Some(Incoming::Decided(one)),
                    None => self.decided_open = false,
                },
            }
        }
        None
    }

    /// The next outcome if one is there already.
    fn try_recv(&mut self) -> Option<Incoming> {
        match self.finished.try_recv() {
            Ok(done) => Some(Incoming::Finished(done)),
            Err(_) => self.decided.try_recv().ok().map(Incoming::Decided),
        }
    }
}

/// Writes NOTIFY outcomes, each with its history event in the same transaction, as they
/// arrive, in batches, until both inputs are closed: the SIP batch's results, and the
/// outcomes decided without sending (no target, invalid contact...). The channels are
/// bounded, so a slow database holds the sending back instead of letting outcomes pile up.
///
/// A batch is written once it holds [`MAX_BATCH`] outcomes, or [`GATHER`] after its first
/// one, or when both inputs close (the campaign's last outcomes wait for nothing).
async fn write_results(
    engine: Arc<CampaignEngine>,
    id: i64,
    finished: mpsc::Receiver<BatchResult<InFlight>>,
    decided: mpsc::Receiver<Sent>,
) -> Result<(), StoreError> {
    let to_sent = |one: Incoming| match one {
        Incoming::Decided(one) => one,
        Incoming::Finished(done) => {
            let InFlight { mac, expected_file, at, event, sent_to, vendor, sent_at, .. } = done.tag;
            let outcome = checksync::outcome(done.result, &event, sent_to);
            let round_trip = Some(sent_at.elapsed());
            engine.notifier.metrics().observe_notify(vendor, outcome.result, NotifySource::Campaign, round_trip);
            sent(id, mac, expected_file, at, outcome)
        }
    };
    let mut inputs = Outcomes { finished, decided, finished_open: true, decided_open: true };
    let (mut results, mut events) = (Vec::new(), Vec::new());
    while let Some(first) = inputs.recv().await {
        let gathered = tokio::time::sleep(GATHER);
        tokio::pin!(gathered);
        let mut next = Some(first);
        while let Some(one) = next {
            let (result, event) = to_sent(one);
            results.push(result);
            events.push(event);
            if results.len() >= MAX_BATCH {
                break;
            }
            next = match inputs.try_recv() {
                Some(one) => Some(one),
                None => tokio::select! {
                    one = inputs.recv() => one,
                    _ = &mut gathered => None,
                },
            };
        }
        engine.outcomes.record_notify_results_with_events(id, &results, &events).await?;
        results.clear();
        events.clear();
    }
    Ok(())
}

impl CampaignEngine {
    /// Sends the chunks of the campaign this node can claim, then, once every chunk is sent
    /// (by whichever node), waits for confirmations under the campaign's lease; fetches are
    /// matched against the devices' windows from the start, while sending too.
    pub(super) async fn drive_campaign(self: &Arc<Self>, campaign: CampaignRecord) -> Result<(), StoreError> {
        let id = campaign.id;
        let _running = self.notifier.metrics().campaign_running();
        let (ended, checked_at) = match self.claim_chunk(id).await? {
            // Nothing to send here: other nodes hold the chunks left, or all are sent.
            None => (self.after_sending(id).await?, 0),
            Some(first) => {
                tracing::info!(campaign = id, selector = %campaign.selector, reboot = campaign.reboot,
                    rate = campaign.rate, max_in_flight = campaign.max_in_flight, "campaign running");
                let (sent_tx, sent_rx) = watch::channel(false);
                let sending = async {
                    let result = self.send_chunks(&campaign, first).await;
                    let _ = sent_tx.send(true);
                    result
                };
                let (sent, confirmed) = tokio::join!(sending, self.confirm_while_sending(&campaign, sent_rx));
                (sent?, confirmed?)
            }
        };
        if ended != SendEnd::AllSent || self.control.is_cancelled(id) {
            return Ok(());
        }
        // One node watches the confirmations; another takes over if it dies.
        let lease = format!("campaign:{id}");
        if !self
            .store
            .acquire_lease(&lease, self.leases.holder(), self.leases.until(), self.leases.stale_before())
            .await?
        {
            return Ok(());
        }
        let watched = self.await_confirmations(&campaign, checked_at, &lease).await;
        self.store.release_lease(&lease, self.leases.holder()).await?;
        watched
    }

    /// Sends at most `rate` per second with at most `max_in_flight` awaiting an answer.
    ///
    /// Both limits are held here, right before a NOTIFY is handed to the SIP batch: first a
    /// place under `max_in_flight` (given back when the transaction ends), then a token of the
    /// [`Pacer`]. Waiting for a place spends no token, and the bucket keeps no credit from a
    /// stall, so when stalled transactions end the NOTIFYs resume at the rate, not in a burst.
    /// The NOTIFYs' transactions run in one SIP batch ([`sipprov_sip::Endpoint::run_batch`])
    /// instead of a task each. Devices are taken a chunk at a time and, on PostgreSQL, marked
    /// `sending` (one statement), the next chunk while the current one is sent; outcomes are
    /// written in batches by a separate task, so the database never paces the fleet.
    ///
    /// On a cluster this node sends its share of both limits (see `chunks`), followed as the
    /// number of senders changes, and stops before the next batch once `control` says so.
    pub(super) async fn send_paced(
        self: &Arc<Self>,
        campaign: &CampaignRecord,
        todo: Vec<Mac>,
        control: &ChunkControl,
    ) -> Result<(), StoreError> {
        let max_in_flight = campaign.max_in_flight.max(1) as usize;
        let mut senders = control.senders();
        let mut slots = Slots::new(in_flight_share(campaign.max_in_flight, senders));
        // Small: every request in it already holds its place under the in-flight limit, so
        // the batch takes it at once.
        let (requests, requests_rx) = mpsc::channel(64);
        let (finished_tx, finished_rx) = mpsc::channel(MAX_BATCH * 2);
        let (decided_tx, decided_rx) = mpsc::channel(MAX_BATCH);
        let endpoint = self.notifier.endpoint().clone();
        let (ended_tx, ended_rx) = mpsc::channel(MAX_BATCH * 2);
        tokio::spawn(give_back_slots(ended_rx, finished_tx));
        let batch = tokio::spawn(async move { endpoint.run_batch(requests_rx, ended_tx, max_in_flight).await });
        let writer = tokio::spawn(write_results(self.clone(), campaign.id, finished_rx, decided_rx));
        let mut resolver = Resolver::default();
        let mut pacer = Pacer::new(campaign.rate, tokio::time::Instant::now());
        pacer.share(senders);
        let mut chunks = todo.chunks(marking_chunk(campaign)).map(<[Mac]>::to_vec);
        // The next chunk is marked while the current one is sent, so the send loop never
        // waits for the database between chunks.
        let mut next_mark = self.mark_in_background(campaign.id, chunks.next());
        let mut marked = Vec::new().into_iter();
        loop {
            let mac = match marked.next() {
                Some(mac) => mac,
                None => {
                    let Some(chunk) = next_mark.await.map_err(StoreError::Task)?? else {
                        break;
                    };
                    // Cancellation takes effect between batches: the batch marked ahead goes
                    // back to `pending`, as none of its NOTIFYs left. A lost lease leaves it
                    // as it is, to the node that holds the chunk now.
                    if control.lost() {
                        break;
                    }
                    if self.control.is_cancelled(campaign.id) || control.must_stop() {
                        self.store.unmark_sending(campaign.id, &chunk).await?;
                        break;
                    }
                    next_mark = self.mark_in_background(campaign.id, chunks.next());
                    marked = chunk.into_iter();
                    continue;
                }
            };
            if control.senders() != senders {
                senders = control.senders();
                slots.resize(in_flight_share(campaign.max_in_flight, senders));
                pacer.share(senders);
            }
            // The semaphore is never closed.
            let Some(slot) = slots.acquire().await else { break };
            // One inventory lookup for the file, the vendor label and the NOTIFY.
            let device = self.inventory.device(mac);
            let expected_file = device.as_deref().and_then(|d| self.files.own_file_name(d));
            let vendor = device.as_deref().map_or(VendorLabel::UNKNOWN, |d| VendorLabel::of(&d.vendor));
            let planned = match &device {
                Some(device) => self.notifier.plan_for(device, campaign.reboot, &mut resolver).await,
                None => Err(NotifyError::UnknownDevice(mac)),
            };
            let gone = match planned {
                Ok(Planned::Send { ready, credentials, event }) => {
                    // The token is taken last, so the NOTIFY leaves when the bucket allows,
                    // however long planning (a DNS lookup) took.
                    pacer.take().await;
                    let at = sipprov_store::now_ms();
                    let sent_at = Instant::now();
                    let sent_to = ready.sent_to;
                    let tag = InFlight { mac, expected_file, at, event, sent_to, vendor, sent_at, slot: Some(slot) };
                    let request = BatchRequest { request: ready.request, target: ready.target, credentials, tag };
                    requests.send(request).await.is_err()
                }
                // Nothing leaves: no token is taken, and the slot goes back at once.
                Ok(Planned::Decided(outcome)) => {
                    self.notifier.metrics().observe_notify(vendor, outcome.result, NotifySource::Campaign, None);
                    let at = sipprov_store::now_ms();
                    decided_tx.send(sent(campaign.id, mac, expected_file, at, outcome)).await.is_err()
                }
                Err(e) => {
                    let outcome = Outcome::failed(sipprov_model::CheckSyncResult::Error, e.to_string(), "");
                    self.notifier.metrics().observe_notify(vendor, outcome.result, NotifySource::Campaign, None);
                    let at = sipprov_store::now_ms();
                    decided_tx.send(sent(campaign.id, mac, expected_file, at, outcome)).await.is_err()
                }
            };
            // Only a failed writer closes these; its error is returned below.
            if gone {
                break;
            }
        }
        drop((requests, decided_tx));
        batch.await.map_err(StoreError::Task)?;
        writer.await.map_err(StoreError::Task)?
    }

    /// Marks `chunk` `sending` in a task of its own and hands it back once written: written
    /// before any of its NOTIFYs leaves, so that a node taking the chunk over knows which
    /// devices may have been notified. Only on PostgreSQL: on SQLite nobody takes over, and a
    /// restart sends again to every device without an outcome, marked or not.
    fn mark_in_background(
        self: &Arc<Self>,
        id: i64,
        chunk: Option<Vec<Mac>>,
    ) -> tokio::task::JoinHandle<Result<Option<Vec<Mac>>, StoreError>> {
        let engine = self.clone();
        tokio::spawn(async move {
            let Some(chunk) = chunk else { return Ok(None) };
            engine.store.mark_sending_if_shared(id, &chunk).await?;
            Ok(Some(chunk))
        })
    }

    /// Matches recorded fetches against the confirmation windows every
    /// [`CONFIRM_POLL_WHILE_SENDING`] until `sent` turns true; returns when it last looked (for
    /// [`Self::await_confirmations`]).
    ///
    /// Confirming while sending, rather than after, matters for a long campaign:
    /// `device_files` keeps each device's latest fetch, and a phone that fetched within its
    /// window early in the campaign may fetch again, after its window, before the sending ends.
    async fn confirm_while_sending(
        &self,
        campaign: &CampaignRecord,
        mut sent: watch::Receiver<bool>,
    ) -> Result<i64, StoreError> {
        let mut checked_at = 0;
        loop {
            if *sent.borrow() || self.control.is_cancelled(campaign.id) {
                return Ok(checked_at);
            }
            checked_at = self.confirm_fetches(campaign, checked_at).await?;
            tokio::select! {
                _ = tokio::time::sleep(CONFIRM_POLL_WHILE_SENDING) => {}
                _ = sent.changed() => {}
            }
        }
    }

    /// Polls recorded fetches until every notified device confirmed or ran out of time.
    ///
    /// Under the named lease `lease`, renewed at each look: when it is lost (this node stalled
    /// and another took over), or the campaign was cancelled on any node, this node stops.
    async fn await_confirmations(
        &self,
        campaign: &CampaignRecord,
        mut checked_at: i64,
        lease: &str,
    ) -> Result<(), StoreError> {
        loop {
            if self.control.is_cancelled(campaign.id) {
                return Ok(());
            }
            let held =
                self.store.acquire_lease(lease, self.leases.holder(), self.leases.until(), self.leases.stale_before());
            let still_running =
                self.store.get_campaign(campaign.id).await?.is_some_and(|c| c.state == CampaignState::Running);
            if !held.await? || !still_running {
                return Ok(());
            }
            checked_at = self.confirm_fetches(campaign, checked_at).await?;
            // Settled as of `LATE_FETCH` before the check: a window that closed after that may
            // hold a fetch not in the store yet (or not looked at yet, after the check).
            let late = late_fetch_ms();
            let report = CampaignReport::load(&self.store, campaign.clone(), checked_at.saturating_sub(late)).await?;
            if report.settled() {
                self.store.set_campaign_state(campaign.id, sipprov_model::CampaignState::Done).await?;
                self.notifier.metrics().campaign_finished(sipprov_model::CampaignState::Done);
                tracing::info!(campaign = campaign.id, counts = ?report.counts, "campaign done");
                return Ok(());
            }
            tokio::time::sleep(CONFIRM_POLL).await;
        }
    }

    /// Confirms the devices whose fetch within their window is recorded now (the store writes
    /// their history events with them). Returns the time of this check.
    ///
    /// Only the fetches made since the previous check, `checked_at`, are looked at (all since
    /// the campaign's creation on a driver's first check), and once more, [`LATE_FETCH`] later,
    /// those that might have reached the store after it (see [`fetch_ranges`]). A device
    /// notified after its fetch was recorded is confirmed when its outcome is written
    /// ([`write_results`]). A check so costs what was fetched since the last one, about twice,
    /// not a pass over the campaign's devices.
    async fn confirm_fetches(&self, campaign: &CampaignRecord, checked_at: i64) -> Result<i64, StoreError> {
        // Taken before the flush: every fetch made before `now` is then in the store.
        let now = sipprov_store::now_ms();
        self.events.flush().await;
        for (since, until) in fetch_ranges(campaign.created_at, checked_at, now) {
            self.store.confirm_fetched(campaign.id, since, until).await?;
        }
        Ok(now)
    }
}

/// The ranges of fetch times a confirmation check at `now` reads, given the previous check at
/// `checked_at` (0 for none) of a campaign created at `created_at`: the fetches made since the
/// previous check, and again those made in the same span [`LATE_FETCH`] earlier, which a
/// fetch that reached the store late may have joined. Each fetch is so read at most twice.
fn fetch_ranges(created_at: i64, checked_at: i64, now: i64) -> Vec<(i64, i64)> {
    if checked_at == 0 {
        return vec![(created_at, now)];
    }
    let late = late_fetch_ms();
    let again = (checked_at.saturating_sub(late).max(created_at), now.saturating_sub(late));
    if again.1 >= checked_at {
        // Checks further apart than `LATE_FETCH`: the two spans meet.
        vec![(again.0, now)]
    } else if again.0 < again.1 {
        vec![again, (checked_at, now)]
    } else {
        vec![(checked_at, now)]
    }
}

/// Gives each finished NOTIFY's place under the in-flight limit back as soon as the SIP batch
/// reports it, before its outcome waits for the database, and passes the result on.
async fn give_back_slots(
    mut ended: mpsc::Receiver<BatchResult<InFlight>>,
    finished: mpsc::Sender<BatchResult<InFlight>>,
) {
    while let Some(mut done) = ended.recv().await {
        done.tag.slot = None;
        if finished.send(done).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fetch_ranges;

    #[test]
    fn the_store_writes_the_confirmed_event_as_the_api_reads_it() {
        let detail = sipprov_api::ConfirmedDetail { campaign: 42 };
        assert_eq!(sipprov_store::confirmed_detail(42), serde_json::to_string(&detail).unwrap());
        let back: sipprov_api::ConfirmedDetail = serde_json::from_str(&sipprov_store::confirmed_detail(7)).unwrap();
        assert_eq!(back.campaign, 7);
    }

    #[test]
    fn each_fetch_time_is_read_fresh_and_once_more_late() {
        // The first check reads everything since the campaign's creation.
        assert_eq!(fetch_ranges(1_000, 0, 60_000), vec![(1_000, 60_000)]);
        // Checks a second apart: the new second, and the second 5 s before it again.
        assert_eq!(fetch_ranges(1_000, 60_000, 61_000), vec![(55_000, 56_000), (60_000, 61_000)]);
        assert_eq!(fetch_ranges(1_000, 61_000, 62_000), vec![(56_000, 57_000), (61_000, 62_000)]);
        // Checks 5 s or more apart: the spans meet.
        assert_eq!(fetch_ranges(1_000, 60_000, 65_000), vec![(55_000, 65_000)]);
        assert_eq!(fetch_ranges(1_000, 60_000, 70_000), vec![(55_000, 70_000)]);
        // Nothing before the campaign existed.
        assert_eq!(fetch_ranges(59_000, 60_000, 61_000), vec![(60_000, 61_000)]);
        assert_eq!(fetch_ranges(55_500, 60_000, 61_000), vec![(55_500, 56_000), (60_000, 61_000)]);
    }
}
