//! The fetch log's writer: the task, on a thread of its own, that takes the ledger and the
//! channel's records into its batch and writes the batch to the store every interval, when it
//! holds [`BATCH`](super::BATCH) entries (or [`WRITE_EARLY_AT`](super::WRITE_EARLY_AT), see
//! there) or on a flush, keeping it through an outage and retrying with backoff.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipprov_store::{DeferredRows, EventText, FetchInfo, IntervalEvent, NewEvent, RenderedState, Store, StoreError};
use tokio::sync::mpsc;

use super::ledger::{self, Ledger};
use super::unsaved::UnsavedSeen;
use super::{pace, Batch, Command, Latest, Pending, Record, LOG_EVERY, PROMPT, RETRY_FIRST, RETRY_MAX};
use crate::metrics::Metrics;

/// Most content change times one take of the ledger may bring and still be written within
/// 250 ms on SQLite; past it they wait for the last-seen write (see `unsaved`). An operator's
/// change reaches a fleet at the pace its phones fetch, a few hundred renderings a tick at
/// most; a million devices fetching at random render a thousand a tick, each a new row at a
/// random place of the change times' table (`rendered_files` then, `device_files` since), which
/// every 250 ms cost a transaction of its own rewriting the same pages (docs/benchmarks.md,
/// "Session 20 run").
pub(super) const PROMPT_CHANGE_TIMES_MAX: usize = 256;

/// The writer task: gathers records into the pending batch and writes it every `interval`, at
/// [`BATCH`](super::BATCH) distinct entries (or [`WRITE_EARLY_AT`](super::WRITE_EARLY_AT)), or
/// when asked to flush; while the store fails, retries with backoff. The ledger's fetches join
/// the batch at each tick, when it fills, and before any other record, so a device's records
/// keep the order they were taken in.
async fn writer(mut w: Writer, interval: Duration, mut rx: mpsc::Receiver<Command>) {
    let mut tick = tokio::time::interval(interval.min(PROMPT));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written = Instant::now();
    let ledger = w.ledger.clone();
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
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
            // The ledger is emptied at once (its fetches wait no longer than that for room);
            // the batch, which merges their repeats, is written early past its own bound.
            () = ledger.filled() => {
                w.take_ledger();
                if w.pending.entries() >= w.pending.early_write_at() && w.may_try() { w.write().await; }
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
pub(super) fn spawn_writer_thread(w: Writer, interval: Duration, rx: mpsc::Receiver<Command>) {
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
pub(super) struct Writer {
    pub(super) store: Store,
    pub(super) metrics: Arc<Metrics>,
    /// [`super::FetchLogConfig::max_pending`].
    pub(super) max_pending: usize,
    /// The served fetches the request path merged, taken into `pending` as the writer goes.
    pub(super) ledger: Arc<Ledger>,
    pub(super) pending: Batch,
    pub(super) outage: Option<Outage>,
    /// On SQLite, the last-seen rows not yet written ([`Store::defers_last_seen`]).
    pub(super) deferred: Option<UnsavedSeen>,
}

/// A run of failed writes: when it began, when to try next, and what was dropped meanwhile.
pub(super) struct Outage {
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
    /// batch at [`WRITE_EARLY_AT`](super::WRITE_EARLY_AT) entries at most, so it needs no other
    /// bound.)
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
    pub(super) fn take_ledger(&mut self) {
        let taken = self.ledger.drain();
        if taken.is_empty() {
            return;
        }
        // Room for all of them at once: the batch's vector is handed to the write (and dropped
        // there) every interval, and grown by doubling it was copied over a dozen times.
        self.pending.events.reserve(taken.len());
        self.pending.fetches.reserve(taken.len());
        let storm = taken.iter().filter(|e| matches!(e, ledger::Entry::Rendered(_))).count() > PROMPT_CHANGE_TIMES_MAX;
        let mut pace = pace::Pace::new();
        for entry in taken {
            pace.step();
            let c = match entry {
                ledger::Entry::Fetch(c) => c,
                ledger::Entry::Event(e) => {
                    self.add(Record::Event(e));
                    continue;
                }
                ledger::Entry::Rendered(r) => {
                    self.keep_rendered(r, storm);
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

    /// Keeps a content change time: in the batch, written within 250 ms; on SQLite during a
    /// `storm` of them, or while some already wait there, with the last-seen rows (see
    /// `unsaved`). While the store cannot write, one that would take a new entry past
    /// `max_pending` is dropped and counted, as [`Writer::add`] does.
    fn keep_rendered(&mut self, state: RenderedState, storm: bool) {
        let deferred = match self.deferred.as_mut() {
            Some(deferred) if storm || deferred.rendered_len() > 0 => deferred,
            _ => {
                self.add(Record::Rendered(state));
                return;
            }
        };
        // Older ones still in the batch go first, so that none is written after a later one
        // of the same file.
        for older in self.pending.rendered.drain(..) {
            deferred.keep_rendered(older);
        }
        if self.outage.is_some() && deferred.rendered_len() >= self.max_pending {
            Metrics::inc(&self.metrics.fetch_records_dropped);
            return;
        }
        deferred.keep_rendered(state);
    }

    /// Whether the backoff after a failed write has passed.
    fn may_try(&self) -> bool {
        self.outage.as_ref().is_none_or(|o| Instant::now() >= o.retry_at)
    }

    /// Writes the pending batch, keeping whatever failed for a retry, and wakes flush waiters
    /// either way (an admin read must not hang on a full disk).
    pub(super) async fn write(&mut self) {
        let result = match self.deferred.as_mut() {
            Some(deferred) => match self.pending.write_interval(&self.store, &self.metrics, deferred).await {
                Ok(Some(keep_from)) => self.write_deferred(keep_from).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
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

    /// Writes the last-seen, `device_files` and content change time rows gathered since the
    /// last such write (SQLite), each kind in key order, in a transaction of its own after the
    /// interval's events, and marks the fetch events before `keep_from` as reflected in them.
    /// When the store cannot write, they are kept for the retry.
    async fn write_deferred(&mut self, keep_from: i64) -> Result<(), StoreError> {
        let Some(deferred) = self.deferred.as_mut() else { return Ok(()) };
        let seen = deferred.seen_in_key_order();
        let fetched = deferred.fetched_in_key_order();
        let rendered = deferred.rendered_in_key_order();
        let rows = DeferredRows { seen: &seen, fetched: &fetched, rendered: &rendered };
        let written = self.store.record_deferred_rows(rows, keep_from).await;
        kept_on_outage(written, "last-seen rows and content change times", rendered.len(), &self.metrics)?;
        deferred.saved();
        Ok(())
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
    pub(super) fn entries(&self) -> usize {
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

    /// [`Batch::write`] on SQLite: the events in one transaction, their fetches merged into the
    /// rows `deferred` gathers. Returns, when those rows are due (time, a flush waiting, the
    /// writer's end), the first event id a replay must still read: the oldest this interval
    /// wrote or that may still be extended ([`Writer::write_deferred`] writes them).
    async fn write_interval(
        &mut self,
        store: &Store,
        metrics: &Metrics,
        deferred: &mut UnsavedSeen,
    ) -> Result<Option<i64>, StoreError> {
        let fetched = if self.fetches.is_empty() { Vec::new() } else { self.last_fetches() };
        // Merging again after a failed write is harmless: the same rows.
        deferred.merge(&fetched);
        deferred.merge_fetched(&fetched);
        let seen_due = !deferred.is_empty() && (deferred.due() || !self.waiting.is_empty() || self.closing);
        let (events, steps) = deferred.open.plan(&self.events, sipprov_store::now_ms());
        if !events.is_empty() {
            let extends = events.iter().filter(|e| matches!(e, IntervalEvent::Extend { .. })).count();
            self.extends_dominated = extends * 2 > events.len();
        }
        let mut written_from = None;
        if !events.is_empty() {
            // Built only for an extension the store could not make (the device was removed and
            // added again): `events[i]` is planned from `self.events[i]`.
            let pending = &self.events;
            let fallback = |i: usize| {
                pending.get(i).map(|p| match p {
                    Pending::Fetch(c) => c.event_text(),
                    Pending::Event(e) => EventText::from(e),
                })
            };
            match store.record_fetch_interval(&events, &fallback).await {
                Ok(ids) => {
                    deferred.open.apply(&steps, &ids);
                    written_from = ids.iter().copied().min();
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
        }
        pace::drop_paced(std::mem::take(&mut self.events));
        self.fetches.clear();
        self.fetch_events = 0;
        self.write_rendered(store, metrics).await?;
        Ok(seen_due.then(|| [written_from, deferred.open.oldest()].into_iter().flatten().min().unwrap_or(i64::MAX)))
    }

    /// Writes the content change times kept in the batch (PostgreSQL; on SQLite they wait with
    /// the last-seen rows).
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
