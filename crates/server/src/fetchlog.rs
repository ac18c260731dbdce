//! Writes fetch records, device events and content change times to the store
//! in batches, off the request path.
//!
//! A phone's GET must not wait for a database write: handlers hand records to
//! a bounded channel and a single task flushes them every 250 ms in one
//! transaction per kind. Identical fetches within a batch (same device, file,
//! source, content, status and authentication) become one event with a count. When the
//! channel is full the record is dropped and counted, never blocking a phone.
//!
//! When the store cannot write (a full disk, an I/O error, a lost PostgreSQL server), the
//! batch is kept and retried with backoff (250 ms doubling to 5 s), new records joining it, up
//! to `[fetch_log] max_pending` records (20,000 by default; a repeat of a kept fetch only
//! raises its count); beyond that new records are dropped and counted in
//! `sipprov_fetch_records_dropped_total`. Once a write succeeds everything kept is written, in
//! order, with its original times. The first failure is logged at ERROR, then one line a
//! minute, and the recovery at INFO. Phones are served from memory throughout.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipprov_store::{FetchInfo, NewEvent, RenderedState, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::seen::SeenIndex;

const QUEUE: usize = 65_536;
const BATCH: usize = 8_192;
const INTERVAL: Duration = Duration::from_millis(250);
/// The first retry after a failed write, doubled per failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// While writes keep failing, one log line per this long.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Something to persist.
#[derive(Debug)]
pub enum Record {
    /// A device fetched a file: updates its last-seen columns and appends a `fetch` event.
    /// `auth` says how the requester was accepted (`none`, `digest-sha256`, `client-certificate`, …).
    Fetch {
        /// Who fetched what, when, from where.
        info: FetchInfo,
        /// The HTTP status answered (200 or 304).
        status: u16,
        /// How the requester was accepted.
        auth: &'static str,
    },
    /// Any other device event (refusals, notifications, …).
    Event(NewEvent),
    /// A file's content changed.
    Rendered(RenderedState),
}

enum Command {
    Record(Record),
    Flush(oneshot::Sender<()>),
}

pub use crate::config::FetchLogConfig;

/// The handle handlers use.
#[derive(Clone)]
pub struct FetchLog {
    tx: mpsc::Sender<Command>,
    metrics: Arc<Metrics>,
    seen: Arc<SeenIndex>,
}

impl FetchLog {
    /// Starts the writer task, which keeps `seen` current with every fetch it takes.
    pub fn spawn(store: Store, metrics: Arc<Metrics>, config: &FetchLogConfig, seen: Arc<SeenIndex>) -> FetchLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(store, metrics.clone(), config.max_pending, seen.clone(), rx));
        FetchLog { tx, metrics, seen }
    }

    /// The last fetch per device, as of every record taken so far (call
    /// [`FetchLog::flush`] first to include those still queued).
    pub fn seen(&self) -> &Arc<SeenIndex> {
        &self.seen
    }

    /// Queues a record without waiting; drops it (and counts the drop) when the queue is full.
    pub fn record(&self, record: Record) {
        if self.tx.try_send(Command::Record(record)).is_err() {
            Metrics::inc(&self.metrics.fetch_records_dropped);
        }
    }

    /// Waits until everything queued so far is in the store.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// What makes two fetches the same event: device, file, source, content, status, authentication.
type FetchKey = (sipprov_model::Mac, String, String, String, u16, &'static str);

fn fetch_key(info: &FetchInfo, status: u16, auth: &'static str) -> FetchKey {
    (info.mac, info.file.clone(), info.ip.clone(), info.hash.clone(), status, auth)
}

#[derive(Default)]
struct Batch {
    /// The latest fetch per device and file (a phone fetches several files in one boot).
    fetches: HashMap<(sipprov_model::Mac, String), FetchInfo>,
    events: Vec<NewEvent>,
    rendered: Vec<RenderedState>,
    last_fetch_event: HashMap<FetchKey, usize>,
    waiting: Vec<oneshot::Sender<()>>,
    size: usize,
}

impl Batch {
    fn add(&mut self, record: Record) {
        self.size += 1;
        match record {
            Record::Fetch { info, status, auth } => self.add_fetch(info, status, auth),
            Record::Event(e) => self.events.push(e),
            Record::Rendered(r) => self.rendered.push(r),
        }
    }

    /// Whether adding `record` takes a new entry, rather than counting a repeat of a kept fetch.
    fn would_grow(&self, record: &Record) -> bool {
        match record {
            Record::Fetch { info, status, auth } => {
                !self.last_fetch_event.contains_key(&fetch_key(info, *status, auth))
            }
            Record::Event(_) | Record::Rendered(_) => true,
        }
    }

    fn add_fetch(&mut self, info: FetchInfo, status: u16, auth: &'static str) {
        let key = fetch_key(&info, status, auth);
        if let Some(&i) = self.last_fetch_event.get(&key) {
            if let Some(count) = self.events[i].detail.get_mut("count") {
                *count = serde_json::json!(count.as_u64().unwrap_or(1) + 1);
            }
        } else {
            self.last_fetch_event.insert(key, self.events.len());
            let detail = sipprov_api::FetchDetail {
                file: info.file.clone(),
                ip: info.ip.clone(),
                hash: info.hash.clone(),
                status,
                count: 1,
                auth: auth.to_string(),
                model: info.reported_model.clone(),
                firmware: info.reported_firmware.clone(),
            };
            self.events.push(NewEvent::of(info.mac, info.at, &detail));
        }
        self.fetches.insert((info.mac, info.file.clone()), info);
    }
}

/// The writer task: gathers records into the pending batch and writes it every [`INTERVAL`],
/// at [`BATCH`] records, or when asked to flush; while the store fails, retries with backoff.
async fn writer(
    store: Store,
    metrics: Arc<Metrics>,
    max_pending: usize,
    seen: Arc<SeenIndex>,
    mut rx: mpsc::Receiver<Command>,
) {
    let mut w = Writer { store, metrics, max_pending, seen, pending: Batch::default(), outage: None };
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Record(r)) => {
                    w.add(r);
                    if w.pending.size >= BATCH && w.may_try() { w.write().await; }
                }
                // Someone waits to read what was recorded: try now, whatever the backoff.
                Some(Command::Flush(done)) => {
                    w.pending.waiting.push(done);
                    w.write().await;
                }
                None => { w.write().await; return; }
            },
            _ = tick.tick() => {
                if w.pending.size > 0 && w.may_try() { w.write().await; }
            }
        }
    }
}

/// The writer's state: what is not yet in the store, and the outage it is waiting out.
struct Writer {
    store: Store,
    metrics: Arc<Metrics>,
    /// [`FetchLogConfig::max_pending`].
    max_pending: usize,
    /// Updated as fetches are taken, whether or not the store can write them yet.
    seen: Arc<SeenIndex>,
    pending: Batch,
    outage: Option<Outage>,
}

/// A run of failed writes: when it began, when to try next, and what was dropped meanwhile.
struct Outage {
    since: Instant,
    retry_at: Instant,
    backoff: Duration,
    attempts: u64,
    logged_at: Instant,
    dropped_before: u64,
}

impl Writer {
    /// Adds a record to the pending batch, or drops and counts it while the store cannot write
    /// and the batch holds `max_pending` records. (When writes succeed a write empties the
    /// batch every [`BATCH`] records, so it needs no other bound.)
    fn add(&mut self, record: Record) {
        if let Record::Fetch { info, .. } = &record {
            self.seen.record(info);
        }
        if self.outage.is_some() && self.pending.entries() >= self.max_pending && self.pending.would_grow(&record) {
            Metrics::inc(&self.metrics.fetch_records_dropped);
            return;
        }
        self.pending.add(record);
        self.metrics.fetch_records_pending.store(self.pending.entries() as u64, Ordering::Relaxed);
    }

    /// Whether the backoff after a failed write has passed.
    fn may_try(&self) -> bool {
        self.outage.as_ref().is_none_or(|o| Instant::now() >= o.retry_at)
    }

    /// Writes the pending batch, keeping whatever failed for a retry, and wakes flush waiters
    /// either way (an admin read must not hang on a full disk).
    async fn write(&mut self) {
        match self.pending.write(&self.store, &self.metrics).await {
            Ok(()) => self.recovered(),
            Err(e) => self.failed(&e),
        }
        self.metrics.fetch_records_pending.store(self.pending.entries() as u64, Ordering::Relaxed);
        for done in self.pending.waiting.drain(..) {
            let _ = done.send(());
        }
    }

    fn failed(&mut self, e: &StoreError) {
        Metrics::inc(&self.metrics.store_write_failures);
        let now = Instant::now();
        let pending = self.pending.entries();
        match &mut self.outage {
            None => {
                tracing::error!(error = %e, pending, limit = self.max_pending, "cannot write fetch records; keeping them and retrying");
                let dropped_before = self.metrics.fetch_records_dropped.load(Ordering::Relaxed);
                self.outage = Some(Outage {
                    since: now,
                    retry_at: now + RETRY_FIRST,
                    backoff: RETRY_FIRST,
                    attempts: 1,
                    logged_at: now,
                    dropped_before,
                });
            }
            Some(o) => {
                o.attempts += 1;
                o.backoff = (o.backoff * 2).min(RETRY_MAX);
                o.retry_at = now + o.backoff;
                // One line a minute, however often the retries fail.
                if now.duration_since(o.logged_at) >= LOG_EVERY {
                    o.logged_at = now;
                    let dropped = self.metrics.fetch_records_dropped.load(Ordering::Relaxed) - o.dropped_before;
                    tracing::warn!(error = %e, pending, dropped, attempts = o.attempts, "still cannot write fetch records");
                }
            }
        }
    }

    fn recovered(&mut self) {
        if let Some(o) = self.outage.take() {
            let dropped = self.metrics.fetch_records_dropped.load(Ordering::Relaxed) - o.dropped_before;
            tracing::info!(
                after_secs = o.since.elapsed().as_secs(),
                attempts = o.attempts,
                dropped,
                "fetch records are written again"
            );
        }
    }
}

impl Batch {
    /// Distinct records waiting to be written: events (merged repeats of one fetch count once)
    /// and content change times. The last-seen entries are at most one per fetch event.
    fn entries(&self) -> usize {
        self.events.len() + self.rendered.len()
    }

    /// Writes each kind in its own transaction and forgets what was written. A failure of the
    /// database itself ([`StoreError::unavailable`]: full disk, I/O error, lost server) keeps
    /// the rest for a retry; any other failure would only repeat, so those records are logged,
    /// counted as dropped and forgotten.
    async fn write(&mut self, store: &Store, metrics: &Metrics) -> Result<(), StoreError> {
        if !self.fetches.is_empty() {
            let mut fetches: Vec<FetchInfo> = self.fetches.values().cloned().collect();
            // Oldest first, so each device's last-seen columns end on its latest fetch.
            fetches.sort_by_key(|f| f.at);
            // Not counted as dropped if refused: the fetch events below are the records, these
            // rows only summarise each device's latest fetch.
            kept_on_outage(store.record_fetches(&fetches).await, "last fetches", 0, metrics)?;
            self.fetches.clear();
        }
        if !self.events.is_empty() {
            kept_on_outage(store.append_events(&self.events).await, "device events", self.events.len(), metrics)?;
            self.events.clear();
            self.last_fetch_event.clear();
        }
        if !self.rendered.is_empty() {
            let count = self.rendered.len();
            kept_on_outage(store.save_rendered_states(&self.rendered).await, "content change times", count, metrics)?;
            self.rendered.clear();
        }
        self.size = 0;
        Ok(())
    }
}

/// Passes on a database failure for a retry; logs any other failure and counts its `dropped`
/// records.
fn kept_on_outage(
    result: Result<(), StoreError>,
    what: &str,
    dropped: usize,
    metrics: &Metrics,
) -> Result<(), StoreError> {
    match result {
        Err(e) if e.unavailable().is_some() => Err(e),
        Err(e) => {
            tracing::error!(error = %e, dropped, "cannot record {what}; dropping them");
            metrics.fetch_records_dropped.fetch_add(dropped as u64, Ordering::Relaxed);
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}
