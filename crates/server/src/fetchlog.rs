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
//! there too, so that none wakes the writer; content change times go through a bounded
//! channel. Identical fetches within one interval (same
//! device, file, source, content, status and authentication) become one event with a count
//! and the time of the first (`at`) and of the last (`detail.last_at`); the store sees at most
//! one event per such fetch per interval, however often a phone asks, and one last-seen row per
//! device and file. When the ledger or the channel is full the record is dropped and counted,
//! never blocking a phone. Other records (refusals, content change times) are written within
//! 250 ms.
//!
//! On SQLite ([`Store::defers_last_seen`]) one interval is one transaction (the events), and
//! each device's last-seen row (`device_seen`) and what it fetched per file (`device_fetched`,
//! which campaigns read, always after a flush) are written only every `[fetch_log]
//! last_seen_interval_ms` (10 s), on a flush and at the end: the rows in between are kept here,
//! latest per device (and file), and the store replays the fetch events written after the last
//! such write into both tables when it opens. Under load every device fetching this costs one
//! row an interval instead of three. A fetch whose User-Agent reports another model
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
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipprov_model::{BuildMacHasher, Mac, MacMap};
use sipprov_store::{EventText, FetchInfo, NewEvent, RenderedState, Store, StoreError};

mod ledger;
mod open;
mod pace;
mod unsaved;
use ledger::Ledger;
use open::OpenEvents;
use tokio::sync::{mpsc, oneshot};
use unsaved::UnsavedSeen;

use crate::cache::ContentId;
use crate::metrics::Metrics;
use crate::seen::SeenIndex;

const QUEUE: usize = 65_536;
/// The longest a served fetch waits for room in a full ledger (see the `ledger` module) before
/// its record is dropped: well within a phone's HTTP timeout.
const ROOM_WAIT: Duration = Duration::from_secs(2);
const BATCH: usize = 8_192;
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

/// One served fetch, as the request path hands it over. It owns no heap memory of its own: the
/// content is the render cache's shared [`ContentId`] (the bytes are not kept), the address a value, the authentication a
/// static name (only a User-Agent's model and firmware, parsed for the request anyway, move in).
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
    /// The model its User-Agent named, if any.
    pub model: Option<String>,
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
    Record(Record),
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
        let record = match record {
            Record::Fetch(f) => {
                self.note_seen(&f);
                if self.ledger.take(f).is_err() {
                    Metrics::inc(&self.metrics.fetch_records_dropped);
                }
                return;
            }
            // Kept in the ledger too, after the device's fetches so far: a channel would wake
            // the writer's thread for each one (see the `ledger` module).
            Record::Event(event) => {
                if self.ledger.note(event).is_err() {
                    Metrics::inc(&self.metrics.fetch_records_dropped);
                }
                return;
            }
            other => other,
        };
        if self.tx.try_send(Command::Record(record)).is_err() {
            Metrics::inc(&self.metrics.fetch_records_dropped);
        }
    }

    /// Records a served fetch as [`FetchLog::record`] does, except that when the ledger is full
    /// and the store is writing, it waits for the writer to make room (at most [`ROOM_WAIT`])
    /// instead of dropping the record: the request path calls this before it answers, so under
    /// more load than the writer keeps up with, phones are answered at the writer's pace and
    /// every answered fetch is recorded.
    pub async fn record_fetch(&self, fetch: Fetch) {
        self.note_seen(&fetch);
        let deadline = tokio::time::Instant::now() + ROOM_WAIT;
        if self.ledger.take_waiting(fetch, deadline).await.is_err() {
            Metrics::inc(&self.metrics.fetch_records_dropped);
        }
        // A fetch that rendered its file queued the content's change time just before (see
        // `Files::finish_render`), and that queue drops what finds it full. So it never fills
        // while phones are answered faster than the writer takes the times (every fetch renders
        // when a million devices fetch at random), the answer waits once it is three quarters
        // full, for one slot to free.
        if self.tx.capacity() < QUEUE / 4 {
            if let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, self.tx.reserve()).await {
                drop(permit);
            }
        }
    }

    /// Keeps the last-seen index current with a served fetch.
    fn note_seen(&self, f: &Fetch) {
        self.seen.record(f.mac, f.at, f.ip, f.file(), &f.content.hash, f.model.as_deref(), f.firmware.as_deref());
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

/// Identical fetches of one interval: the first, how many, the time of the last, and the
/// model and firmware the latest of them reported (for the last-seen columns).
struct Coalesced {
    first: Fetch,
    count: u64,
    last_at: i64,
    model: Option<(i64, String)>,
    firmware: Option<(i64, String)>,
}

impl Coalesced {
    fn new(fetch: Fetch) -> Coalesced {
        let model = fetch.model.clone().map(|m| (fetch.at, m));
        let firmware = fetch.firmware.clone().map(|f| (fetch.at, f));
        Coalesced { last_at: fetch.at, first: fetch, count: 1, model, firmware }
    }

    /// Counts a repeat; keeps what it reported when nothing reported later was different.
    fn repeat(&mut self, fetch: Fetch) {
        self.count += 1;
        self.last_at = self.last_at.max(fetch.at);
        newer(&mut self.model, fetch.at, fetch.model);
        newer(&mut self.firmware, fetch.at, fetch.firmware);
    }

    /// Counts the repeats `other` gathered (the same fetch, merged elsewhere).
    fn absorb(&mut self, other: Coalesced) {
        self.count += other.count;
        self.last_at = self.last_at.max(other.last_at);
        if let Some((at, model)) = other.model {
            newer(&mut self.model, at, Some(model));
        }
        if let Some((at, firmware)) = other.firmware {
            newer(&mut self.firmware, at, Some(firmware));
        }
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
            model: f.model.clone(),
            firmware: f.firmware.clone(),
        }
    }
}

/// Keeps the latest reported value (`at`, `value`) in `slot`.
fn newer(slot: &mut Option<(i64, String)>, at: i64, value: Option<String>) {
    let Some(value) = value else { return };
    match slot {
        Some((when, known)) if *when <= at => {
            *when = at;
            if *known != value {
                *known = value;
            }
        }
        Some(_) => {}
        None => *slot = Some((at, value)),
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
        let mut reported: MacMap<(Option<&Reported>, Option<&Reported>)> =
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
            *model = later(*model, c.model.as_ref());
            *firmware = later(*firmware, c.firmware.as_ref());
        }
        let mut rows: Vec<Latest<'_>> = latest
            .into_values()
            .map(|c| Latest {
                mac: c.first.mac,
                at: c.last_at,
                ip: c.first.ip,
                file: c.first.file(),
                hash: &c.first.content.hash,
                model: None,
                firmware: None,
            })
            .collect();
        // Oldest first, so each device's last-seen columns end on its latest fetch, which
        // carries what the device reported last (the store keeps earlier reports otherwise).
        rows.sort_by_key(|f| f.at);
        for row in rows.iter_mut().rev() {
            if let Some((model, firmware)) = reported.remove(&row.mac) {
                row.model = model.map(|(_, m)| m.as_str());
                row.firmware = firmware.map(|(_, f)| f.as_str());
            }
        }
        rows
    }
}

/// A device's latest fetch of one file in a batch ([`Batch::last_fetches`]), borrowed from it.
struct Latest<'a> {
    mac: Mac,
    at: i64,
    ip: IpAddr,
    file: &'a str,
    hash: &'a str,
    /// What the device's fetches in the batch last reported (on its latest row only).
    model: Option<&'a str>,
    firmware: Option<&'a str>,
}

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
type Reported = (i64, String);

/// The later of two reports.
fn later<'a>(a: Option<&'a Reported>, b: Option<&'a Reported>) -> Option<&'a Reported> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.0 >= x.0 { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The writer task: gathers records into the pending batch and writes it every `interval`, at
/// [`BATCH`] distinct entries, or when asked to flush; while the store fails, retries with
/// backoff. The ledger's fetches join the batch at each tick, when it fills, and before any
/// other record, so a device's records keep the order they were taken in.
async fn writer(mut w: Writer, interval: Duration, mut rx: mpsc::Receiver<Command>) {
    let mut tick = tokio::time::interval(interval.min(PROMPT));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written = Instant::now();
    let ledger = w.ledger.clone();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Record(r)) => {
                    // Fetches and device events wait in the ledger; what comes this way is a
                    // content change time (another table, so its order against the ledger's
                    // records does not matter): taking the ledger for each one, 16 locks and a
                    // sort, cost the writer more than the change time itself.
                    if !matches!(r, Record::Rendered(_)) {
                        w.take_ledger();
                    }
                    w.add(r);
                    if w.pending.entries() >= BATCH && w.may_try() { w.write().await; }
                }
                // Someone waits to read what was recorded: try now, whatever the backoff.
                Some(Command::Flush(done)) => {
                    w.take_ledger();
                    w.pending.waiting.push(done);
                    w.write().await;
                }
                None => {
                    w.take_ledger();
                    w.pending.closing = true;
                    w.write().await;
                    return;
                }
            },
            () = ledger.filled() => {
                w.take_ledger();
                if w.pending.entries() >= BATCH && w.may_try() { w.write().await; }
            }
            // Fetches wait for the interval (their repeats merge meanwhile); anything else
            // (a refusal, a content change time) is written at the next prompt tick.
            _ = tick.tick() => {
                w.take_ledger();
                let due = w.pending.has_others() || written.elapsed() >= interval;
                let seen_due = w.deferred.as_ref().is_some_and(|d| d.due());
                if (w.pending.size > 0 && due || seen_due) && w.may_try() {
                    w.write().await;
                    written = Instant::now();
                }
            }
        }
    }
}

/// Runs the writer on a thread of its own.
///
/// Its work per interval (merging the batch, planning which events to extend, building each
/// event's JSON detail, the last-seen rows) grows with the devices that fetched, not with the
/// requests: ten thousand devices polling are tens of milliseconds a second. As a task on the
/// runtime's threads that work held every request queued behind it for as long (on one core,
/// the HTTP p99 was that long); on a thread of its own the scheduler interleaves it with the
/// requests in slices of a few milliseconds. It keeps the process's priority: the writer holds
/// the store's write turn while it writes, and a lowered priority there made campaign outcomes
/// wait behind it (see `sipprov_store`'s priority notes). Its own single-thread runtime drives
/// the store's futures. If the thread cannot be started the writer runs as a task, as before.
fn spawn_writer_thread(w: Writer, interval: Duration, rx: mpsc::Receiver<Command>) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        tokio::spawn(writer(w, interval, rx));
        return;
    };
    // Handed over once the thread exists, so that a failed start keeps them for the fallback.
    let (hand, take) = std::sync::mpsc::sync_channel::<(Writer, mpsc::Receiver<Command>)>(1);
    let started = std::thread::Builder::new().name("sipprov-fetchlog".into()).spawn(move || {
        if let Ok((w, rx)) = take.recv() {
            runtime.block_on(writer(w, interval, rx));
        }
    });
    match started {
        Ok(_) => {
            // The thread waits in `recv`, so the hand-over cannot fail but by its death.
            if let Err(std::sync::mpsc::SendError((w, rx))) = hand.send((w, rx)) {
                tokio::spawn(writer(w, interval, rx));
            }
        }
        Err(_) => {
            tokio::spawn(writer(w, interval, rx));
        }
    }
}

/// The writer's state: what is not yet in the store, and the outage it is waiting out.
struct Writer {
    store: Store,
    metrics: Arc<Metrics>,
    /// [`FetchLogConfig::max_pending`].
    max_pending: usize,
    /// The served fetches the request path merged, taken into `pending` as the writer goes.
    ledger: Arc<Ledger>,
    pending: Batch,
    outage: Option<Outage>,
    /// On SQLite, the last-seen rows not yet written ([`Store::defers_last_seen`]).
    deferred: Option<UnsavedSeen>,
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
    /// batch every [`BATCH`] entries, so it needs no other bound.)
    fn add(&mut self, record: Record) {
        if self.outage.is_some() && self.pending.entries() >= self.max_pending {
            Metrics::inc(&self.metrics.fetch_records_dropped);
            return;
        }
        self.pending.add(record);
        self.metrics.fetch_records_pending.store(self.pending.entries() as u64, Ordering::Relaxed);
    }

    /// Takes the ledger's fetches into the pending batch; while the store cannot write and the
    /// batch holds `max_pending` records, those that would take a new entry are dropped and
    /// counted (each merged fetch counts).
    fn take_ledger(&mut self) {
        let taken = self.ledger.drain();
        if taken.is_empty() {
            return;
        }
        // Room for all of them at once: the batch's vector is handed to the write (and dropped
        // there) every interval, and grown by doubling it was copied over a dozen times.
        self.pending.events.reserve(taken.len());
        self.pending.fetches.reserve(taken.len());
        let mut pace = pace::Pace::new();
        for entry in taken {
            pace.step();
            let c = match entry {
                ledger::Entry::Fetch(c) => c,
                ledger::Entry::Event(e) => {
                    self.add(Record::Event(e));
                    continue;
                }
            };
            let full = self.outage.is_some() && self.pending.entries() >= self.max_pending;
            if full && self.pending.repeat_of(&c.first).is_none() {
                self.metrics.fetch_records_dropped.fetch_add(c.count, Ordering::Relaxed);
                continue;
            }
            self.pending.size += 1;
            self.pending.add_coalesced(c);
        }
        self.metrics.fetch_records_pending.store(self.pending.entries() as u64, Ordering::Relaxed);
    }

    /// Whether the backoff after a failed write has passed.
    fn may_try(&self) -> bool {
        self.outage.as_ref().is_none_or(|o| Instant::now() >= o.retry_at)
    }

    /// Writes the pending batch, keeping whatever failed for a retry, and wakes flush waiters
    /// either way (an admin read must not hang on a full disk).
    async fn write(&mut self) {
        let result = match self.deferred.as_mut() {
            Some(deferred) => self.pending.write_interval(&self.store, &self.metrics, deferred).await,
            None => self.pending.write(&self.store, &self.metrics).await,
        };
        match result {
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
        self.ledger.outage.store(true, Ordering::Relaxed);
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
        self.ledger.outage.store(false, Ordering::Relaxed);
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
            // Not counted as dropped if refused: the fetch events below are the records, these
            // rows only summarise each device's latest fetch. Written again with the events
            // when those must be retried: the same rows, so no harm.
            let rows: Vec<FetchInfo> = self.last_fetches().iter().map(Latest::info).collect();
            kept_on_outage(store.record_fetches(&rows).await, "last fetches", 0, metrics)?;
        }
        if !self.events.is_empty() {
            let events = self.event_rows();
            kept_on_outage(store.append_events(&events).await, "device events", events.len(), metrics)?;
        }
        self.events.clear();
        self.fetches.clear();
        self.fetch_events = 0;
        self.write_rendered(store, metrics).await
    }

    /// The events to append, merged fetches as one event each.
    fn event_rows(&self) -> Vec<NewEvent> {
        self.events
            .iter()
            .map(|p| match p {
                Pending::Fetch(c) => c.event(),
                Pending::Event(e) => e.clone(),
            })
            .collect()
    }

    /// [`Batch::write`] on SQLite: the events and `device_fetched` in one transaction, the
    /// last-seen rows gathered in `deferred` and written with it when due (time, a flush
    /// waiting, the writer's end).
    async fn write_interval(
        &mut self,
        store: &Store,
        metrics: &Metrics,
        deferred: &mut UnsavedSeen,
    ) -> Result<(), StoreError> {
        let fetched = if self.fetches.is_empty() { Vec::new() } else { self.last_fetches() };
        // Merging again after a failed write is harmless: the same rows.
        deferred.merge(&fetched);
        deferred.merge_fetched(&fetched);
        let seen_due = !deferred.rows.is_empty() && (deferred.due() || !self.waiting.is_empty() || self.closing);
        let (events, steps) = deferred.open.plan(&self.events, sipprov_store::now_ms());
        if !events.is_empty() || seen_due {
            let seen = seen_due.then(|| deferred.oldest_first());
            let fetched = if seen_due { deferred.fetched_oldest_first() } else { Vec::new() };
            let open_from = if seen_due { deferred.open.oldest() } else { None };
            // Built only for an extension the store could not make (the device was removed and
            // added again): `events[i]` is planned from `self.events[i]`.
            let pending = &self.events;
            let fallback = |i: usize| {
                pending.get(i).map(|p| match p {
                    Pending::Fetch(c) => c.event_text(),
                    Pending::Event(e) => EventText::from(e),
                })
            };
            match store.record_fetch_interval(&events, &fallback, &fetched, seen.as_deref(), open_from).await {
                Ok(ids) => {
                    deferred.open.apply(&steps, &ids);
                    pace::drop_paced(events);
                }
                Err(e) => {
                    // The batch still holds its records (the plan only read them): kept for a
                    // retry, or logged and dropped below.
                    kept_on_outage(Err(e), "fetch records", events.len(), metrics)?;
                    // Dropped: which events exist is no longer known here.
                    deferred.open.clear();
                }
            }
            if seen_due {
                deferred.saved();
            }
        }
        pace::drop_paced(std::mem::take(&mut self.events));
        self.fetches.clear();
        self.fetch_events = 0;
        self.write_rendered(store, metrics).await
    }

    /// Writes the content change times (the last part of either write).
    async fn write_rendered(&mut self, store: &Store, metrics: &Metrics) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests;
