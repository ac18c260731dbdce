//! The fetches and device events taken since the writer last looked, kept where the request
//! path records them.
//!
//! Handing every served fetch to the writer task through a channel cost more than serving the
//! file: a queue slot, a wake-up of the writer and a hash-map merge on the writer's side for
//! each request, all on the core that serves the phones. A polling fleet mostly repeats
//! itself, so the request path now merges a fetch into the ledger itself: one shard lock, one
//! look-up of the device (the cheap keyed [`MacMap`]: only known devices' fetches come here),
//! and, for a repeat, a count raised in place. The writer takes the shards' contents on each of
//! its ticks, on a flush and at the end, and merges them into its batch as it merged single
//! fetches before.
//!
//! Other device events (a PnP answer, a refusal, a notification's outcome) are kept here too,
//! after the device's fetches so far, so a device's records keep the order they were taken in.
//! Through the channel each one woke the writer's thread, which then took the core from the
//! answering thread: in a PnP boot storm, 10,000 preemptions a second of the task answering
//! the phones. Here they wait for the writer's next tick (within 250 ms), as fetches do.
//!
//! Bounded: at most [`LEDGER_MAX`] distinct entries wait here. A served fetch that finds it full
//! waits for the writer to take it ([`Ledger::take_waiting`]), so the phone's answer waits rather
//! than its record being lost: a million devices fetching at random on one core, every fetch a
//! new event, filled it faster than the writer (below the process's priority) emptied it, and
//! 620,000 of 1.47 million records were dropped in 150 s. Waiting there gives the writer the
//! core. Only while the store cannot write (then waiting frees nothing), past the wait's bound,
//! or for other events (a PnP answer must not wait) is a record dropped and counted.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use sipprov_model::{Mac, MacMap};
use sipprov_store::{NewEvent, RenderedState};
use tokio::sync::Notify;

use super::pace::Pace;
use super::{Coalesced, Fetch};

/// A device's record waiting in the ledger.
pub(super) enum Entry {
    /// Identical fetches, merged.
    Fetch(Coalesced),
    /// Any other event of the device.
    Event(NewEvent),
    /// One of the device's files has new content: its change time, to persist.
    Rendered(RenderedState),
}

impl Entry {
    /// When it happened (a fetch: the first of them).
    fn at(&self) -> i64 {
        match self {
            Entry::Fetch(c) => c.first.at,
            Entry::Event(e) => e.at,
            Entry::Rendered(r) => r.changed_at,
        }
    }
}

/// Shards of the ledger, by MAC: the runtime's worker threads rarely wait for each other.
const SHARDS: usize = 16;

/// Most distinct entries (a device's distinct fetches since the last take) the ledger holds.
pub(super) const LEDGER_MAX: usize = 65_536;

/// Most entries a new fetch may find waiting and still be kept; past it the fetch waits for
/// the writer ([`Ledger::take_waiting`]). Below [`LEDGER_MAX`], so that the events which cannot
/// wait (a PnP answer, a campaign's outcome) keep room while fetches wait for theirs, and so
/// that what the writer takes in one go stays small: the writer copies each fetch a few times
/// on its way to the store (last-seen rows, fetched rows of `device_files`), and 65,536 of them
/// were about 85 MB at a time in a heap profile. 16,384 is more than a 250 ms tick gathers from
/// 60,000 distinct fetches a second.
pub(super) const FETCH_ROOM: usize = 16_384;

/// Entries past which a fetch just kept holds its answer back a little ([`Ledger::ease_off`]):
/// the batch at which the writer is woken, half the fetches' room.
const EASE_FROM: usize = super::BATCH;
const _: () = assert!(EASE_FROM < FETCH_ROOM);

/// The longest a fetch holds its answer back when the ledger is nearly full: with 8 connections
/// a closed-loop client still sends 800 fetches a second, while the writer catches up.
const EASE_MAX: std::time::Duration = std::time::Duration::from_millis(10);

/// What [`Ledger::take_at_once`] did with a fetch, and what is left to wait for.
#[derive(Debug)]
pub(super) enum Room {
    /// Kept: nothing to wait for.
    Taken,
    /// Kept; its answer is held back this long, the writer being behind (`ease_off`).
    EaseOff(std::time::Duration),
    /// Not kept, the ledger being full: it waits for room (`wait_for_room`).
    Full(Box<Fetch>),
}

/// How a served fetch got into the ledger ([`Ledger::take_waiting`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// At once.
    AtOnce,
    /// After holding its answer back: the writer was behind ([`Ledger::ease_off`]), or the
    /// ledger was full and the fetch waited for room.
    HeldBack,
}

/// The fetches and events taken since the writer last took them.
pub(super) struct Ledger {
    shards: Box<[Mutex<MacMap<Vec<Entry>>>]>,
    /// Fetches and events held: what the writer's pace is measured by.
    entries: AtomicUsize,
    /// Content change times held, counted apart (see [`Ledger::note_rendered`]).
    changes: AtomicUsize,
    /// Wakes the writer when [`Ledger::batch`] distinct entries wait, rather than at its tick.
    full: Notify,
    batch: usize,
    /// Wakes the fetches waiting for room ([`Ledger::take_waiting`]) once the writer has taken
    /// the entries.
    room: Notify,
    /// Set while the store cannot write: the writer then keeps what it took, so waiting for
    /// room frees nothing and a fetch that finds the ledger full is dropped at once.
    pub(super) outage: AtomicBool,
}

impl Ledger {
    /// An empty ledger that wakes the writer once `batch` distinct entries wait.
    pub(super) fn new(batch: usize) -> Ledger {
        let shards = (0..SHARDS).map(|_| Mutex::new(MacMap::default())).collect();
        Ledger {
            shards,
            entries: AtomicUsize::new(0),
            changes: AtomicUsize::new(0),
            full: Notify::new(),
            batch,
            room: Notify::new(),
            outage: AtomicBool::new(false),
        }
    }

    /// Merges a served fetch: a repeat of one of the device's entries with the same key (file,
    /// source, content, answer, authentication) and the same reported model and firmware
    /// raises its count (the writer's batch merges repeats the same way); anything else starts
    /// an entry. `Err` gives the fetch back when the ledger is full.
    pub(super) fn take(&self, fetch: Fetch) -> Result<(), Box<Fetch>> {
        let mac = fetch.mac;
        let mut shard = self.shards[shard_of(mac)].lock().unwrap_or_else(|e| e.into_inner());
        // One look-up of the device, for the repeat and for a new entry alike (every served
        // fetch comes here).
        let entries = shard.entry(mac).or_default();
        let kept = entries.iter_mut().rev().find_map(|entry| match entry {
            Entry::Fetch(c) if c.first.same_key(&fetch) => Some(c),
            _ => None,
        });
        if let Some(kept) = kept {
            if kept.first.model == fetch.model && kept.first.firmware == fetch.firmware {
                kept.repeat(fetch);
                return Ok(());
            }
        }
        if self.entries.load(Ordering::Relaxed) >= FETCH_ROOM {
            // As `room`: a slot made for this fetch alone is not left behind.
            if entries.is_empty() {
                shard.remove(&mac);
            }
            return Err(Box::new(fetch));
        }
        // Most devices have one entry per take (see `push`); a second grows as vectors do.
        if entries.capacity() == 0 {
            entries.reserve_exact(1);
        }
        entries.push(Entry::Fetch(Coalesced::new(fetch)));
        self.counted(shard);
        Ok(())
    }

    /// [`Ledger::take`], but when the ledger is full and the store is writing, wakes the writer
    /// and waits for it to take the entries, at most `wait`. `Err` gives the fetch back when
    /// there was no room by then, or the store cannot write.
    pub(super) async fn take_waiting(&self, fetch: Fetch, wait: std::time::Duration) -> Result<Taken, Box<Fetch>> {
        let room = self.take_at_once(fetch);
        self.finish_take(room, wait).await
    }

    /// [`Ledger::take_waiting`] up to its wait, without one: the usual case, room, takes no
    /// waiter registered with `room` (a lock) and no clock read, on the path of every served
    /// fetch, and needs no future at all (the request path then answers without one).
    pub(super) fn take_at_once(&self, fetch: Fetch) -> Room {
        match self.take(fetch) {
            Ok(()) => self.ease_off().map_or(Room::Taken, Room::EaseOff),
            Err(back) => Room::Full(back),
        }
    }

    /// [`Ledger::take_waiting`] from where [`Ledger::take_at_once`] stopped.
    pub(super) async fn finish_take(&self, room: Room, wait: std::time::Duration) -> Result<Taken, Box<Fetch>> {
        // The waits are boxed: inline, their timers made the future of every request that
        // waits here 800 bytes larger.
        match room {
            Room::Taken => Ok(Taken::AtOnce),
            Room::EaseOff(delay) => {
                Box::pin(tokio::time::sleep(delay)).await;
                Ok(Taken::HeldBack)
            }
            Room::Full(back) => Box::pin(self.wait_for_room(*back, wait)).await.map(|()| Taken::HeldBack),
        }
    }

    /// [`Ledger::take_waiting`] once the ledger was found full.
    async fn wait_for_room(&self, mut fetch: Fetch, wait: std::time::Duration) -> Result<(), Box<Fetch>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the attempt: a drain between the attempt and the wait still
            // wakes this fetch.
            let mut room = std::pin::pin!(self.room.notified());
            room.as_mut().enable();
            match self.take(fetch) {
                Ok(()) => return Ok(()),
                Err(back) if self.outage.load(Ordering::Relaxed) => return Err(back),
                Err(back) => {
                    fetch = *back;
                    // The writer takes the ledger now rather than at its next tick.
                    self.full.notify_one();
                    if tokio::time::timeout_at(deadline, room).await.is_err() {
                        return Err(Box::new(fetch));
                    }
                }
            }
        }
    }

    /// How long a fetch just kept should hold its answer back, when the writer is behind: from
    /// nothing while at most [`EASE_FROM`] entries wait (the writer is woken at
    /// [`Ledger::batch`] and takes them at once when it is idle) up to [`EASE_MAX`] as the
    /// ledger nears [`FETCH_ROOM`].
    ///
    /// Without it, fetches went through unhindered until the ledger was full, then every
    /// connection waited for the writer's whole write (a second or more for 16,384 new events
    /// at a million devices): a closed-loop client saw a p99 of 1.2 to 1.5 s, and fetches whose
    /// wait ran past its bound lost their records. Held back a little each, the fleet is
    /// answered at about the writer's pace, evenly, and the writer gets the core meanwhile.
    fn ease_off(&self) -> Option<std::time::Duration> {
        let held = self.entries.load(Ordering::Relaxed);
        let over = held.checked_sub(EASE_FROM).filter(|over| *over > 0)?;
        let span = (FETCH_ROOM - EASE_FROM) as u128;
        let micros = EASE_MAX.as_micros() * (over.min(FETCH_ROOM - EASE_FROM) as u128) / span;
        Some(std::time::Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX)))
    }

    /// Keeps a device event after the device's entries so far. `Err` when the ledger is full.
    pub(super) fn note(&self, event: NewEvent) -> Result<(), ()> {
        self.keep(event.mac, Entry::Event(event))
    }

    /// Keeps a file's new content change time, as [`Ledger::note`] keeps an event.
    ///
    /// Through the writer's channel, which drops what finds it full, these were lost under
    /// load: with a million devices fetching at random every fetch renders, and a channel slot
    /// freed by the writer let every fetch waiting on it through at once. Here it waits with
    /// the other records, within [`LEDGER_MAX`] with them.
    ///
    /// It is not counted with the fetches and events that the writer's pace is measured by
    /// ([`Ledger::ease_off`], [`FETCH_ROOM`], the writer's wake-up): in a storm of renderings
    /// the writer keeps change times for its last-seen write, a few rows in key order a while
    /// later, not an event each, and counted as one they doubled the entries of a million
    /// devices fetching at random, which were held back at half the ledger's fill
    /// (docs/benchmarks.md, "Session 21 run"). They stay bounded: each comes from the rendering
    /// of a fetch the ledger takes or holds back, and all together never pass [`LEDGER_MAX`].
    pub(super) fn note_rendered(&self, state: RenderedState) -> Result<(), ()> {
        let mac = state.mac;
        let mut shard = self.shards[shard_of(mac)].lock().unwrap_or_else(|e| e.into_inner());
        if !self.room(&mut shard, mac, LEDGER_MAX) {
            return Err(());
        }
        shard.entry(mac).or_insert_with(|| Vec::with_capacity(1)).push(Entry::Rendered(state));
        // Under the shard's lock, as `counted`.
        self.changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn keep(&self, mac: Mac, entry: Entry) -> Result<(), ()> {
        let mut shard = self.shards[shard_of(mac)].lock().unwrap_or_else(|e| e.into_inner());
        if !self.room(&mut shard, mac, LEDGER_MAX) {
            return Err(());
        }
        self.push(shard, mac, entry);
        Ok(())
    }

    /// Whether a new entry fits under `limit` entries of every kind; when not, forgets `mac`'s
    /// slot if it holds nothing.
    fn room(&self, shard: &mut MacMap<Vec<Entry>>, mac: Mac, limit: usize) -> bool {
        let held = self.entries.load(Ordering::Relaxed) + self.changes.load(Ordering::Relaxed);
        let room = held < limit;
        if !room && shard.get(&mac).is_some_and(Vec::is_empty) {
            shard.remove(&mac);
        }
        room
    }

    /// Appends a new entry of `mac` under its shard's lock; wakes the writer when
    /// [`Ledger::batch`] entries wait.
    fn push(&self, mut shard: MutexGuard<'_, MacMap<Vec<Entry>>>, mac: Mac, entry: Entry) {
        // Most devices have one entry per take: a vector's first push would reserve four, about
        // 450 bytes more per device, 29 MB of a full ledger.
        shard.entry(mac).or_insert_with(|| Vec::with_capacity(1)).push(entry);
        self.counted(shard);
    }

    /// Counts an entry just pushed into `shard`, then unlocks it; wakes the writer when
    /// [`Ledger::batch`] entries wait.
    fn counted(&self, shard: MutexGuard<'_, MacMap<Vec<Entry>>>) {
        // Counted under the shard's lock, so a drain never takes an entry not yet counted.
        let now_held = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        drop(shard);
        if now_held == self.batch {
            self.full.notify_one();
        }
    }

    /// Everything taken so far, oldest first (by each entry's time, a fetch's first; a device's
    /// entries of the same time stay in the order taken), and the ledger emptied.
    ///
    /// Its moves of the entries are paced ([`Pace`]): a PnP storm's tick of 2,500 entries, each
    /// moved three times (out of the shards, into the slots, into time order), was a run of
    /// about a millisecond of the writer's thread in one go.
    pub(super) fn drain(&self) -> Vec<Entry> {
        let mut pace = Pace::new();
        // Sized for what is counted now (more may come meanwhile): growing a vector of entries
        // this size by doubling copied it over and over, in one run of the writer's thread.
        let held = self.entries.load(Ordering::Relaxed) + self.changes.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(held);
        let mut changes = 0;
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            for entry in taken.into_values().flatten() {
                changes += usize::from(matches!(entry, Entry::Rendered(_)));
                out.push(entry);
                pace.step();
            }
        }
        self.entries.fetch_sub(out.len() - changes, Ordering::Relaxed);
        self.changes.fetch_sub(changes, Ordering::Relaxed);
        self.room.notify_waiters();
        // Sorted through their keys: sorting the entries themselves (a fetch is a couple of
        // hundred bytes) moved a storm's tick of them a dozen times over, a millisecond in one
        // run of the writer's thread. Ties keep the order taken (the position is in the key).
        let mut order: Vec<(i64, usize)> = out.iter().map(Entry::at).zip(0..).collect();
        order.sort_unstable();
        let mut slots: Vec<Option<Entry>> = Vec::with_capacity(out.len());
        for entry in out {
            slots.push(Some(entry));
            pace.step();
        }
        let mut sorted = Vec::with_capacity(slots.len());
        for (_, i) in order {
            sorted.extend(slots.get_mut(i).and_then(Option::take));
            pace.step();
        }
        sorted
    }

    /// Resolves once [`Ledger::batch`] distinct entries wait.
    pub(super) async fn filled(&self) {
        self.full.notified().await
    }
}

fn shard_of(mac: Mac) -> usize {
    // The low bytes vary most within an OUI.
    (mac.as_u64() as usize) % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetchlog::tests::{content, fetch_of as fetch};

    #[test]
    fn repeats_merge_and_another_model_or_content_starts_an_entry_in_order() {
        let (a, b) = (content("a.cfg", "h1"), content("a.cfg", "h2"));
        let ledger = Ledger::new(1_000);
        for (at, served, model) in [(10, &a, "T46S"), (12, &a, "T46S"), (11, &b, "T46S"), (13, &a, "T48S")] {
            assert!(ledger.take(fetch(1, at, served, Some(model))).is_ok());
        }
        assert!(ledger.take(fetch(2, 5, &a, None)).is_ok());
        let drained = fetches(ledger.drain());
        let shown: Vec<_> = drained
            .iter()
            .map(|c| {
                (c.first.mac.to_string(), c.first.at, c.count, c.last_at, c.first.model.as_deref().map(String::from))
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                ("001565000002".to_string(), 5, 1, 5, None),
                ("001565000001".to_string(), 10, 2, 12, Some("T46S".to_string())),
                ("001565000001".to_string(), 11, 1, 11, Some("T46S".to_string())),
                ("001565000001".to_string(), 13, 1, 13, Some("T48S".to_string())),
            ]
        );
        assert!(ledger.drain().is_empty(), "a drain empties the ledger");
    }

    #[test]
    fn a_full_ledger_gives_new_entries_back_but_still_counts_repeats() {
        let a = content("a.cfg", "h1");
        let ledger = Ledger::new(1_000);
        ledger.entries.store(FETCH_ROOM - 1, Ordering::Relaxed);
        assert!(ledger.take(fetch(1, 10, &a, None)).is_ok());
        assert!(ledger.take(fetch(2, 10, &a, None)).is_err(), "past the fetches' room a new entry is refused");
        assert!(ledger.take(fetch(1, 11, &a, None)).is_ok(), "a repeat takes no room");
        assert!(ledger.note(event(1, 12)).is_ok(), "an event, which cannot wait, still has room");
        ledger.entries.store(LEDGER_MAX, Ordering::Relaxed);
        assert!(ledger.note(event(1, 13)).is_err(), "but not past the ledger's bound");
        ledger.entries.store(2, Ordering::Relaxed); // the two entries really held
        let counts: Vec<_> = ledger
            .drain()
            .into_iter()
            .map(|entry| match entry {
                Entry::Fetch(c) => c.count,
                Entry::Event(_) | Entry::Rendered(_) => 0,
            })
            .collect();
        assert_eq!(counts, vec![2, 0]);
    }

    #[test]
    fn fetches_are_held_back_more_as_the_ledger_fills_past_a_batch() {
        let ledger = Ledger::new(EASE_FROM);
        let delay_at = |held: usize| {
            ledger.entries.store(held, Ordering::Relaxed);
            ledger.ease_off()
        };
        assert_eq!(delay_at(0), None);
        assert_eq!(delay_at(EASE_FROM), None, "the writer takes a batch at once when idle");
        assert_eq!(delay_at(EASE_FROM + (FETCH_ROOM - EASE_FROM) / 2), Some(EASE_MAX / 2));
        assert_eq!(delay_at(FETCH_ROOM), Some(EASE_MAX));
        assert_eq!(delay_at(LEDGER_MAX), Some(EASE_MAX), "never longer");
    }

    #[tokio::test]
    async fn a_fetch_says_whether_it_was_held_back() {
        let a = content("a.cfg", "h1");
        let ledger = Ledger::new(EASE_FROM);
        let wait = std::time::Duration::from_secs(10);
        assert_eq!(ledger.take_waiting(fetch(1, 10, &a, None), wait).await.ok(), Some(Taken::AtOnce));
        ledger.entries.store(EASE_FROM + 1, Ordering::Relaxed);
        assert_eq!(ledger.take_waiting(fetch(2, 11, &a, None), wait).await.ok(), Some(Taken::HeldBack));
    }

    #[tokio::test]
    async fn a_fetch_finding_the_ledger_full_waits_for_the_writer_and_is_kept() {
        let a = content("a.cfg", "h1");
        let ledger = std::sync::Arc::new(Ledger::new(1_000));
        ledger.entries.store(FETCH_ROOM, Ordering::Relaxed);
        let wait = std::time::Duration::from_secs(10);
        let waiting = tokio::spawn({
            let ledger = ledger.clone();
            let fetch = fetch(1, 10, &a, None);
            async move { ledger.take_waiting(fetch, wait).await.is_ok() }
        });
        // The waiting fetch woke the writer (`filled`), which takes what the ledger holds.
        tokio::time::timeout(std::time::Duration::from_secs(5), ledger.filled()).await.expect("writer woken");
        ledger.entries.store(0, Ordering::Relaxed); // what the fill above stood for is taken
        assert!(ledger.drain().is_empty());
        assert!(waiting.await.unwrap(), "kept once the writer made room");
        let drained = fetches(ledger.drain());
        assert_eq!(drained.iter().map(|c| (c.first.at, c.count)).collect::<Vec<_>>(), vec![(10, 1)]);
    }

    #[tokio::test]
    async fn a_fetch_finding_the_ledger_full_is_given_back_in_an_outage_or_past_its_deadline() {
        let a = content("a.cfg", "h1");
        let ledger = Ledger::new(1_000);
        ledger.entries.store(FETCH_ROOM, Ordering::Relaxed);
        let later = std::time::Duration::from_secs(60);
        ledger.outage.store(true, Ordering::Relaxed);
        let started = std::time::Instant::now();
        assert!(ledger.take_waiting(fetch(1, 10, &a, None), later).await.is_err(), "the store cannot write");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "given back at once, not at the deadline");
        ledger.outage.store(false, Ordering::Relaxed);
        let soon = std::time::Duration::from_millis(50);
        assert!(ledger.take_waiting(fetch(1, 10, &a, None), soon).await.is_err(), "no room by the deadline");
    }

    #[test]
    fn a_devices_events_stay_after_its_fetches_and_in_time_order_across_devices() {
        let a = content("a.cfg", "h1");
        let ledger = Ledger::new(1_000);
        assert!(ledger.take(fetch(1, 10, &a, None)).is_ok());
        assert!(ledger.note(event(1, 11)).is_ok());
        assert!(ledger.note(event(2, 9)).is_ok());
        // A repeat of the fetch merges into it (as the writer's batch merges repeats).
        assert!(ledger.take(fetch(1, 12, &a, None)).is_ok());
        assert!(ledger.note(event(1, 12)).is_ok());
        let shown: Vec<_> = ledger
            .drain()
            .into_iter()
            .map(|entry| match entry {
                Entry::Fetch(c) => (c.first.mac.to_string(), "fetch", c.first.at, c.count),
                Entry::Event(e) => (e.mac.to_string(), "event", e.at, 1),
                Entry::Rendered(r) => (r.mac.to_string(), "rendered", r.changed_at, 1),
            })
            .collect();
        let device = |n: u8| format!("0015650000{n:02x}");
        assert_eq!(
            shown,
            vec![
                (device(2), "event", 9, 1),
                (device(1), "fetch", 10, 2),
                (device(1), "event", 11, 1),
                (device(1), "event", 12, 1),
            ]
        );
        assert_eq!(ledger.entries.load(Ordering::Relaxed), 0, "a drain empties the ledger");
    }

    #[test]
    fn a_change_time_stays_with_the_devices_records_within_the_ledger_but_apart_from_the_fetches_room() {
        let a = content("a.cfg", "h1");
        let ledger = Ledger::new(1_000);
        let state = |at| RenderedState {
            mac: "001565000001".parse().unwrap(),
            file: "001565000001.cfg".into(),
            hash: "h1".into(),
            changed_at: at,
        };
        assert!(ledger.take(fetch(1, 10, &a, None)).is_ok());
        assert!(ledger.note_rendered(state(9)).is_ok());
        let kinds: Vec<_> = ledger
            .drain()
            .into_iter()
            .map(|entry| match entry {
                Entry::Fetch(c) => ("fetch", c.first.at),
                Entry::Event(e) => ("event", e.at),
                Entry::Rendered(r) => ("rendered", r.changed_at),
            })
            .collect();
        assert_eq!(kinds, vec![("rendered", 9), ("fetch", 10)], "in time order, none lost");
        assert_eq!((ledger.entries.load(Ordering::Relaxed), ledger.changes.load(Ordering::Relaxed)), (0, 0));
        // A change time does not take the fetches' room...
        ledger.entries.store(FETCH_ROOM - 1, Ordering::Relaxed);
        assert!(ledger.note_rendered(state(11)).is_ok());
        assert!(ledger.take(fetch(2, 11, &a, None)).is_ok(), "the change time is counted apart");
        assert_eq!(ledger.changes.load(Ordering::Relaxed), 1);
        // ...but every kind together stays within the ledger's size.
        ledger.entries.store(LEDGER_MAX - 1, Ordering::Relaxed);
        assert!(ledger.note_rendered(state(12)).is_err(), "bounded by the ledger's size");
        assert!(ledger.note(event(3, 12)).is_err(), "the change time held counts there");
        ledger.entries.store(1, Ordering::Relaxed); // the fetch really held
        assert_eq!(ledger.drain().len(), 2, "the fetch and the change time");
        assert_eq!((ledger.entries.load(Ordering::Relaxed), ledger.changes.load(Ordering::Relaxed)), (0, 0));
    }

    /// A PnP answer of device `mac` (its last byte) at `at`.
    fn event(mac: u8, at: i64) -> NewEvent {
        let detail = serde_json::json!({"result": "answered"});
        let mac = format!("0015650000{mac:02x}").parse().unwrap();
        NewEvent { mac, at, kind: sipprov_model::EventKind::Pnp, detail }
    }

    /// The fetches of drained entries (panics on an event).
    fn fetches(entries: Vec<Entry>) -> Vec<Coalesced> {
        entries
            .into_iter()
            .map(|entry| match entry {
                Entry::Fetch(c) => c,
                Entry::Event(_) | Entry::Rendered(_) => panic!("fetches only"),
            })
            .collect()
    }
}
