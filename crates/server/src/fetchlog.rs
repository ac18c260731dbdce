//! Writes fetch records, device events and content change times to the store
//! in batches, off the request path.
//!
//! A phone's GET must not wait for a database write: a single task writes what was gathered
//! every `[fetch_log] interval_ms` (1 s by default) in one transaction per kind. A served fetch
//! is a [`Fetch`]: the device's MAC, the time, the source address by value, the cache's shared
//! [`ContentId`] (file name and hash) and how the requester was accepted, so the request path
//! allocates nothing to record it (the writer builds one JSON detail per merged event, when it
//! writes). The request path merges it into a sharded ledger itself (the `ledger` module),
//! which the writer takes at each tick, and keeps other device events (refusals, PnP answers)
//! and content change times there too, so that none wakes the writer. Identical fetches within
//! one interval (same device, file, source, content, status and authentication) become one
//! event with a count and the time of the first (`at`) and of the last (`detail.last_at`); the
//! store sees at most one event per such fetch per interval, however often a phone asks, and
//! one last-seen row per device and file. A served fetch that finds the ledger full waits for
//! the writer before its answer goes out (at most 2 s, see the `ledger` module); a record that
//! cannot wait (an event) is dropped and counted when the ledger is full. Other records
//! (refusals, content change times) are written within 250 ms.
//!
//! On SQLite ([`Store::defers_last_seen`]) one interval is one transaction (the events), and
//! each device's last-seen row (`device_seen`) and what it fetched per file (`device_files`,
//! which campaigns read, always after a flush) are written only every `[fetch_log]
//! last_seen_interval_ms` (10 s), on a flush and at the end, in key order: the rows in between
//! are kept here, latest per device (and file), and the store replays the fetch events written
//! after the last such write into both tables when it opens. Content change times that come
//! in a storm (more than 256 in a 250 ms tick: a million devices fetching at random) wait for
//! that write too; one lost to a crash only makes that file's next `Last-Modified` later.
//! Under load every device fetching this costs one row an interval instead of four. A fetch
//! whose User-Agent reports another model
//! or firmware than the event it would merge into starts an event of its own, so each event's
//! model and firmware are those of all its fetches and the replay gives what the device last
//! reported.
//!
//! On SQLite a device's latest fetch event also stays open across intervals for `[fetch_log]
//! merge_window_ms` (60 s): identical fetches in later intervals raise its count and last time
//! in place instead of appending an event each interval (see the `open` module), so a polling fleet's
//! history grows by one row per device per window and the database stays small enough for
//! its pages to stay cached.
//!
//! When the store cannot write (a full disk, an I/O error, a lost PostgreSQL server), the
//! batch is kept and retried with backoff (250 ms doubling to 5 s), new records joining it, up
//! to `[fetch_log] max_pending` records (20,000 by default; a repeat of a kept fetch only
//! raises its count); beyond that new records are dropped and counted in
//! `sipprov_fetch_records_dropped_total`. Once a write succeeds everything kept is written, in
//! order, with its original times. The first failure is logged at ERROR, then one line a
//! minute, and the recovery at INFO. Phones are served from memory throughout.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sipprov_model::{BuildMacHasher, Mac, MacMap};
use sipprov_store::{EventText, FetchInfo, NewEvent, RenderedState, Store};

mod ledger;
mod open;
mod pace;
mod unsaved;
mod writer;
use ledger::Ledger;
use open::OpenEvents;
use tokio::sync::{mpsc, oneshot};
use unsaved::UnsavedSeen;
use writer::{spawn_writer_thread, Writer};

use crate::cache::ContentId;
use crate::metrics::Metrics;
use crate::seen::SeenIndex;

/// Flushes waiting for the writer (each caller waits for its own): records go through the
/// ledger, not this queue.
const QUEUE: usize = 1_024;
/// The longest a served fetch waits for room in a full ledger (see the `ledger` module) before
/// its record is dropped: well within a phone's HTTP timeout.
const ROOM_WAIT: Duration = Duration::from_secs(2);
/// Distinct entries in the ledger at which it wakes the writer, which then takes them at once
/// (see the `ledger` module).
const BATCH: usize = 8_192;
/// Distinct entries in the writer's batch at which it is written before its interval ends when
/// its last write mostly extended stored events ([`Batch::extends_dominated`]); otherwise at
/// [`BATCH`]. Either bounds the memory the batch holds (about 1.3 KB an entry on its way to
/// the store).
///
/// The batch merges a device's repeats across the takes of one interval. A fleet of more than
/// 8,192 devices polling faster than the interval (10,000 devices at 80,000 fetches a second,
/// `bench/http.sh`) filled it to [`BATCH`] once per take, about every 0.2 s, and each device's
/// open event was extended four or five times a second instead of once: four or five SQLite
/// transactions of 8,192 upserts a second, the writer's and SQLite's threads 16 % of the core
/// serving the phones (about 9 % with this bound). When the fetches are new events instead
/// (a million devices fetching at random, each a few times an hour), waiting merges nothing,
/// and a batch twice the size held the store's write turn twice as long: the HTTP p99 during
/// a campaign rose by a millisecond or more (docs/benchmarks.md, "Session 24").
const WRITE_EARLY_AT: usize = 2 * BATCH;
/// Records other than fetches (refusals, content change times) are written within this long.
const PROMPT: Duration = Duration::from_millis(250);
/// The first retry after a failed write, doubled per failure up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// While writes keep failing, one log line per this long.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Something to persist.
#[derive(Debug)]
pub enum Record {
    /// A device fetched a file: updates its last-seen columns and appends a `fetch` event.
    Fetch(Fetch),
    /// Any other device event (refusals, notifications, …).
    Event(NewEvent),
    /// A file's content changed.
    Rendered(RenderedState),
}

/// A fetch handed to [`FetchLog::record_fetch_at_once`]: kept, or waiting for room still
/// ([`FetchLog::finish_recording`]).
#[derive(Debug)]
pub struct Recording(ledger::Room);

impl Recording {
    /// The fetch is kept and nothing is left to wait for: [`FetchLog::finish_recording`] would
    /// do nothing.
    pub fn is_done(&self) -> bool {
        matches!(self.0, ledger::Room::Taken)
    }
}

/// One served fetch, as the request path hands it over. It owns no heap memory of its own: the
/// content is the render cache's shared [`ContentId`] (the bytes are not kept), the address a value, the authentication a
/// static name (only a User-Agent's firmware, parsed for the request anyway, moves in, and its model
/// when the vendor does not know it: a known model is the vendor's static name).
#[derive(Debug)]
pub struct Fetch {
    /// The device that fetched.
    pub mac: Mac,
    /// When (ms since the epoch).
    pub at: i64,
    /// The source address of the request.
    pub ip: IpAddr,
    /// What was served: its file name and hash are recorded.
    pub content: Arc<ContentId>,
    /// The name recorded when it is not `content.file` (a directory, served under the name
    /// the phone asked for).
    pub file: Option<Box<str>>,
    /// The HTTP status answered (200 or 304).
    pub status: u16,
    /// How the requester was accepted (`none`, `digest-sha256`, `client-certificate`, …).
    pub auth: &'static str,
    /// The model its User-Agent named, if any (the vendor's own name, borrowed, when it knows
    /// the model: see [`sipprov_vendors::UserAgentInfo::model`]).
    pub model: Option<std::borrow::Cow<'static, str>>,
    /// The firmware version its User-Agent named, if any.
    pub firmware: Option<String>,
}

impl Fetch {
    /// The file name recorded.
    pub fn file(&self) -> &str {
        self.file.as_deref().unwrap_or(&self.content.file)
    }

    /// Whether `other` is the same fetch as far as an event goes ([`FetchKey`]'s fields).
    fn same_key(&self, other: &Fetch) -> bool {
        self.mac == other.mac
            && self.ip == other.ip
            && Arc::ptr_eq(&self.content, &other.content)
            && self.file == other.file
            && self.status == other.status
            && self.auth == other.auth
    }
}

enum Command {
    Flush(oneshot::Sender<()>),
}

pub use crate::config::FetchLogConfig;

/// The handle handlers use.
#[derive(Clone)]
pub struct FetchLog {
    tx: mpsc::Sender<Command>,
    /// Served fetches, merged on the request path (see the `ledger` module).
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    seen: Arc<SeenIndex>,
}

impl FetchLog {
    /// Starts the writer task; [`FetchLog::record`] keeps `seen` current with every fetch.
    pub fn spawn(store: Store, metrics: Arc<Metrics>, config: &FetchLogConfig, seen: Arc<SeenIndex>) -> FetchLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        let interval = Duration::from_millis(config.interval_ms.clamp(10, 60_000));
        let deferred = store.defers_last_seen().then(|| {
            let every = Duration::from_millis(config.last_seen_interval_ms.clamp(10, 600_000)).max(interval);
            let open = OpenEvents::new(Duration::from_millis(config.merge_window_ms.min(3_600_000)));
            UnsavedSeen::new(every, open)
        });
        let ledger = Arc::new(Ledger::new(BATCH));
        let w = Writer {
            store,
            metrics: metrics.clone(),
            max_pending: config.max_pending,
            pending: Batch::default(),
            outage: None,
            deferred,
            ledger: ledger.clone(),
        };
        spawn_writer_thread(w, interval, rx);
        FetchLog { tx, ledger, metrics, seen }
    }

    /// The last fetch per device, as of every record taken so far (call
    /// [`FetchLog::flush`] first to include those still queued).
    pub fn seen(&self) -> &Arc<SeenIndex> {
        &self.seen
    }

    /// Queues a record without waiting; drops it (and counts the drop) when the queue is full.
    /// A served fetch updates the last-seen index at once and is merged into the ledger here,
    /// on the request path, and a device event is kept there: no queue slot, no wake-up of the
    /// writer per record.
    pub fn record(&self, record: Record) {
        // Events and change times are kept in the ledger too, after the device's records so
        // far: a channel would wake the writer's thread for each one (see the `ledger` module).
        let kept = match record {
            Record::Fetch(f) => {
                self.note_seen(&f);
                self.ledger.take(f).map_err(drop)
            }
            Record::Event(event) => self.ledger.note(event),
            Record::Rendered(state) => self.ledger.note_rendered(state),
        };
        if kept.is_err() {
            Metrics::inc(&self.metrics.fetch_records_dropped);
            Metrics::inc(&self.metrics.fetch_records_dropped_full);
        }
    }

    /// Records a served fetch as [`FetchLog::record`] does, except that when the ledger is full
    /// and the store is writing, it waits for the writer to make room (at most 2 s, `ROOM_WAIT`)
    /// instead of dropping the record: the request path calls this before it answers, so under
    /// more load than the writer keeps up with, phones are answered at the writer's pace and
    /// every answered fetch is recorded.
    pub async fn record_fetch(&self, fetch: Fetch) {
        self.note_seen(&fetch);
        let taken = self.ledger.take_waiting(fetch, ROOM_WAIT).await;
        self.count_taken(taken);
    }

    /// [`FetchLog::record_fetch`] up to its wait, without one: nearly every fetch is kept here
    /// ([`Recording::is_done`]), and the request path then answers without a future. Otherwise
    /// [`FetchLog::finish_recording`] waits, before the answer goes out.
    pub fn record_fetch_at_once(&self, fetch: Fetch) -> Recording {
        self.note_seen(&fetch);
        Recording(self.ledger.take_at_once(fetch))
    }

    /// The rest of [`FetchLog::record_fetch`] after [`FetchLog::record_fetch_at_once`]: the wait
    /// for the writer, if any, and the counts of fetches held back or dropped.
    pub async fn finish_recording(&self, recording: Recording) {
        let taken = self.ledger.finish_take(recording.0, ROOM_WAIT).await;
        self.count_taken(taken);
    }

    /// Counts a fetch held back, or dropped for want of room.
    fn count_taken(&self, taken: Result<ledger::Taken, Box<Fetch>>) {
        if matches!(taken, Ok(ledger::Taken::HeldBack)) {
            Metrics::inc(&self.metrics.fetches_held_back);
        }
        if taken.is_err() {
            Metrics::inc(&self.metrics.fetch_records_dropped);
            // While the store cannot write a full ledger refuses at once: no wait ran out.
            let kind = if self.ledger.outage.load(std::sync::atomic::Ordering::Relaxed) {
                &self.metrics.fetch_records_dropped_full
            } else {
                &self.metrics.fetch_records_dropped_waiting
            };
            Metrics::inc(kind);
        }
    }

    /// Keeps the last-seen index current with a served fetch.
    fn note_seen(&self, f: &Fetch) {
        self.seen.note(crate::seen::Fetch {
            mac: f.mac,
            at: f.at,
            ip: f.ip,
            file: f.file(),
            hash: &f.content.hash,
            digest: f.content.digest,
            model: f.model.as_deref(),
            firmware: f.firmware.as_deref(),
        });
    }

    /// Waits until everything queued so far is in the store.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// What makes two fetches the same event: device, source, content (the shared [`ContentId`], by
/// address: the batch holds it, so the address cannot be reused meanwhile), file name, status,
/// authentication. Integers and a static name, hashed without touching the heap, with the
/// keyed [`BuildMacHasher`] (every key is a known device's; SipHash cost several times as much
/// per key, twice per merged entry).
#[derive(PartialEq, Eq)]
struct FetchKey {
    mac: Mac,
    ip: IpAddr,
    content: usize,
    file: Option<Box<str>>,
    status: u16,
    auth: &'static str,
}

/// Hashed as words: [`BuildMacHasher`] mixes a `u64` at a time, and the derived impl fed it the
/// address, the name and the lengths byte by byte. Equal keys hash equally: each field's words
/// are those equality compares (the authentication's name by its length: its text differs
/// between a handful of static names only, which the content address already spreads).
impl std::hash::Hash for FetchKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.mac.hash(state);
        state.write_u64(self.content as u64);
        let ip = match self.ip {
            IpAddr::V4(v4) => u128::from(v4.to_bits()),
            IpAddr::V6(v6) => v6.to_bits() ^ (1 << 127),
        };
        state.write_u64(ip as u64 ^ (ip >> 64) as u64);
        state.write_u64(u64::from(self.status) << 32 | self.auth.len() as u64);
        if let Some(file) = &self.file {
            state.write(file.as_bytes());
        }
    }
}

impl FetchKey {
    fn of(fetch: &Fetch) -> FetchKey {
        FetchKey {
            mac: fetch.mac,
            ip: fetch.ip,
            content: Arc::as_ptr(&fetch.content) as usize,
            file: fetch.file.clone(),
            status: fetch.status,
            auth: fetch.auth,
        }
    }
}

/// Identical fetches of one interval: the first, how many, and the time of the last.
///
/// Only fetches that reported the same model and firmware as the first are merged (the
/// ledger's `take` and the batch's `repeat_of` both check), so what the latest of them
/// reported is the first's model and firmware, reported at `last_at` ([`Coalesced::model`]):
/// nothing of theirs is kept apart. Keeping copies cost two allocations per new entry on the
/// request path, and a comparison of both per repeat.
struct Coalesced {
    first: Fetch,
    count: u64,
    last_at: i64,
}

impl Coalesced {
    fn new(fetch: Fetch) -> Coalesced {
        Coalesced { last_at: fetch.at, first: fetch, count: 1 }
    }

    /// Counts a repeat (the caller has checked it reported what the first did).
    fn repeat(&mut self, fetch: Fetch) {
        debug_assert!(fetch.model == self.first.model && fetch.firmware == self.first.firmware);
        self.count += 1;
        self.last_at = self.last_at.max(fetch.at);
    }

    /// Counts the repeats `other` gathered (the same fetch, with the same reports, merged
    /// elsewhere).
    fn absorb(&mut self, other: Coalesced) {
        debug_assert!(other.first.model == self.first.model && other.first.firmware == self.first.firmware);
        self.count += other.count;
        self.last_at = self.last_at.max(other.last_at);
    }

    /// The model these fetches reported, and when last.
    fn model(&self) -> Option<Reported<'_>> {
        self.first.model.as_deref().map(|m| (self.last_at, m))
    }

    /// The firmware these fetches reported, and when last.
    fn firmware(&self) -> Option<Reported<'_>> {
        self.first.firmware.as_deref().map(|f| (self.last_at, f))
    }

    /// The `fetch` event these fetches make.
    fn event(&self) -> NewEvent {
        NewEvent::of(self.first.mac, self.first.at, &self.detail())
    }

    /// The same event with its detail as JSON text: what the SQLite interval writes (one
    /// string, where a `serde_json::Value` is a map of nine members, each allocated, held
    /// until the write and printed then).
    fn event_text(&self) -> EventText {
        EventText::of(self.first.mac, self.first.at, &self.detail())
    }

    fn detail(&self) -> sipprov_api::FetchDetail {
        let f = &self.first;
        sipprov_api::FetchDetail {
            file: f.file().to_string(),
            ip: f.ip.to_string(),
            hash: f.content.hash.clone(),
            status: f.status,
            count: self.count,
            last_at: (self.count > 1).then_some(self.last_at),
            auth: f.auth.to_string(),
            model: f.model.as_deref().map(String::from),
            firmware: f.firmware.clone(),
        }
    }
}

/// A record waiting to be written, in the order taken.
enum Pending {
    Fetch(Coalesced),
    Event(NewEvent),
}

#[derive(Default)]
struct Batch {
    /// Events in the order taken; repeats of a fetch count in its first entry.
    events: Vec<Pending>,
    /// Where each distinct fetch of this batch is in `events` (its latest event).
    fetches: HashMap<FetchKey, usize, BuildMacHasher>,
    /// How many of `events` are fetches.
    fetch_events: usize,
    rendered: Vec<RenderedState>,
    waiting: Vec<oneshot::Sender<()>>,
    size: usize,
    /// The writer's last write: the last-seen rows go with it.
    closing: bool,
    /// Whether most events of the last write extended events already stored (SQLite's open
    /// events, see the `open` module): the fleet repeats itself within the merge window, and
    /// the batch waits for its interval up to [`WRITE_EARLY_AT`] rather than [`BATCH`] entries.
    extends_dominated: bool,
}

impl Batch {
    fn add(&mut self, record: Record) {
        self.size += 1;
        match record {
            Record::Fetch(fetch) => self.add_coalesced(Coalesced::new(fetch)),
            Record::Event(e) => self.events.push(Pending::Event(e)),
            Record::Rendered(r) => self.rendered.push(r),
        }
    }

    /// Distinct entries past which the batch is written before its interval ends (see
    /// [`WRITE_EARLY_AT`]).
    fn early_write_at(&self) -> usize {
        if self.extends_dominated {
            WRITE_EARLY_AT
        } else {
            BATCH
        }
    }

    /// Whether records other than fetches wait: they are written without waiting for the
    /// interval.
    fn has_others(&self) -> bool {
        !self.rendered.is_empty() || self.events.len() > self.fetch_events
    }

    /// Where the kept event that `fetch` repeats is: same key, and the same model and firmware
    /// reported (another report starts an event of its own, see the module's doc).
    fn repeat_of(&self, fetch: &Fetch) -> Option<usize> {
        let &i = self.fetches.get(&FetchKey::of(fetch))?;
        match self.events.get(i) {
            Some(Pending::Fetch(kept)) if kept.first.model == fetch.model && kept.first.firmware == fetch.firmware => {
                Some(i)
            }
            _ => None,
        }
    }

    /// Adds fetches merged elsewhere (the ledger, or one fetch): counted into the kept event
    /// they repeat, else an event of their own.
    fn add_coalesced(&mut self, c: Coalesced) {
        if let Some(Pending::Fetch(kept)) = self.repeat_of(&c.first).and_then(|i| self.events.get_mut(i)) {
            kept.absorb(c);
            return;
        }
        self.fetches.insert(FetchKey::of(&c.first), self.events.len());
        self.events.push(Pending::Fetch(c));
        self.fetch_events += 1;
    }

    /// The last-seen rows of this batch: the latest fetch per device and file, oldest first,
    /// the latest of each device carrying the model and firmware its fetches last reported.
    /// Borrowed from the batch: the rows waiting for the last-seen write are updated from them
    /// in place (`unsaved`), so a device polling the same file copies no text per interval.
    fn last_fetches(&self) -> Vec<Latest<'_>> {
        let mut latest: HashMap<(Mac, &str), &Coalesced, BuildMacHasher> =
            HashMap::with_capacity_and_hasher(self.fetch_events, BuildMacHasher::default());
        let mut reported: MacMap<(Option<Reported<'_>>, Option<Reported<'_>>)> =
            MacMap::with_capacity_and_hasher(self.fetch_events, BuildMacHasher::default());
        for c in self.events.iter().filter_map(|p| match p {
            Pending::Fetch(c) => Some(c),
            Pending::Event(_) => None,
        }) {
            let slot = latest.entry((c.first.mac, c.first.file())).or_insert(c);
            if c.last_at >= slot.last_at {
                *slot = c;
            }
            let (model, firmware) = reported.entry(c.first.mac).or_default();
            *model = later(*model, c.model());
            *firmware = later(*firmware, c.firmware());
        }
        let mut rows: Vec<Latest<'_>> = latest
            .into_values()
            .map(|c| Latest {
                mac: c.first.mac,
                at: c.last_at,
                ip: c.first.ip,
                file: c.first.file(),
                hash: &c.first.content.hash,
                digest: c.first.content.digest,
                model: None,
                firmware: None,
            })
            .collect();
        // Oldest first, so each device's last-seen columns end on its latest fetch, which
        // carries what the device reported last (the store keeps earlier reports otherwise).
        rows.sort_by_key(|f| f.at);
        for row in rows.iter_mut().rev() {
            if let Some((model, firmware)) = reported.remove(&row.mac) {
                row.model = model.map(|(_, m)| m);
                row.firmware = firmware.map(|(_, f)| f);
            }
        }
        rows
    }
}

// A device's latest fetch of one file in a batch (`Batch::last_fetches`), borrowed from it:
// the last-seen index's own view of a fetch.
use crate::seen::Fetch as Latest;

impl Latest<'_> {
    /// The row as the store takes it.
    fn info(&self) -> FetchInfo {
        FetchInfo {
            mac: self.mac,
            at: self.at,
            ip: self.ip.to_string(),
            file: self.file.to_string(),
            hash: self.hash.to_string(),
            reported_model: self.model.map(str::to_string),
            reported_firmware: self.firmware.map(str::to_string),
        }
    }
}

/// A model or firmware version a User-Agent reported, and when.
type Reported<'a> = (i64, &'a str);

/// The later of two reports.
fn later<'a>(a: Option<Reported<'a>>, b: Option<Reported<'a>>) -> Option<Reported<'a>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 >= x.0 { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests;
