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
//! Bounded: at most [`LEDGER_MAX`] distinct entries wait here; past it a fetch or an event is
//! dropped and counted, as a full queue dropped one (the writer takes everything every tick, so
//! only a writer stalled for that long lets it fill).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use sipprov_model::{Mac, MacMap};
use sipprov_store::NewEvent;
use tokio::sync::Notify;

use super::{Coalesced, Fetch};

/// A device's record waiting in the ledger.
pub(super) enum Entry {
    /// Identical fetches, merged.
    Fetch(Coalesced),
    /// Any other event of the device.
    Event(NewEvent),
}

impl Entry {
    /// When it happened (a fetch: the first of them).
    fn at(&self) -> i64 {
        match self {
            Entry::Fetch(c) => c.first.at,
            Entry::Event(e) => e.at,
        }
    }
}

/// Shards of the ledger, by MAC: the runtime's worker threads rarely wait for each other.
const SHARDS: usize = 16;

/// Most distinct entries (a device's distinct fetches since the last take) the ledger holds.
pub(super) const LEDGER_MAX: usize = 65_536;

/// The fetches and events taken since the writer last took them.
pub(super) struct Ledger {
    shards: Box<[Mutex<MacMap<Vec<Entry>>>]>,
    entries: AtomicUsize,
    /// Wakes the writer when [`Ledger::batch`] distinct entries wait, rather than at its tick.
    full: Notify,
    batch: usize,
}

impl Ledger {
    /// An empty ledger that wakes the writer once `batch` distinct entries wait.
    pub(super) fn new(batch: usize) -> Ledger {
        let shards = (0..SHARDS).map(|_| Mutex::new(MacMap::default())).collect();
        Ledger { shards, entries: AtomicUsize::new(0), full: Notify::new(), batch }
    }

    /// Merges a served fetch: a repeat of one of the device's entries with the same key (file,
    /// source, content, answer, authentication) and the same reported model and firmware
    /// raises its count (the writer's batch merges repeats the same way); anything else starts
    /// an entry. `Err` gives the fetch back when the ledger is full.
    pub(super) fn take(&self, fetch: Fetch) -> Result<(), Box<Fetch>> {
        let mac = fetch.mac;
        let mut shard = self.shards[shard_of(mac)].lock().unwrap_or_else(|e| e.into_inner());
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
        if !self.room(&mut shard, mac) {
            return Err(Box::new(fetch));
        }
        self.push(shard, mac, Entry::Fetch(Coalesced::new(fetch)));
        Ok(())
    }

    /// Keeps a device event after the device's entries so far. `Err` gives it back when the
    /// ledger is full.
    pub(super) fn note(&self, event: NewEvent) -> Result<(), NewEvent> {
        let mac = event.mac;
        let mut shard = self.shards[shard_of(mac)].lock().unwrap_or_else(|e| e.into_inner());
        if !self.room(&mut shard, mac) {
            return Err(event);
        }
        self.push(shard, mac, Entry::Event(event));
        Ok(())
    }

    /// Whether a new entry fits; when not, forgets `mac`'s slot if it holds nothing.
    fn room(&self, shard: &mut MacMap<Vec<Entry>>, mac: Mac) -> bool {
        let room = self.entries.load(Ordering::Relaxed) < LEDGER_MAX;
        if !room && shard.get(&mac).is_some_and(Vec::is_empty) {
            shard.remove(&mac);
        }
        room
    }

    /// Appends a new entry of `mac` under its shard's lock; wakes the writer when
    /// [`Ledger::batch`] entries wait.
    fn push(&self, mut shard: MutexGuard<'_, MacMap<Vec<Entry>>>, mac: Mac, entry: Entry) {
        shard.entry(mac).or_default().push(entry);
        // Counted under the shard's lock, so a drain never takes an entry not yet counted.
        let now_held = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        drop(shard);
        if now_held == self.batch {
            self.full.notify_one();
        }
    }

    /// Everything taken so far, oldest first (by each entry's time, a fetch's first; a device's
    /// entries of the same time stay in the order taken), and the ledger emptied.
    pub(super) fn drain(&self) -> Vec<Entry> {
        // Sized for what is counted now (more may come meanwhile): growing a vector of entries
        // this size by doubling copied it over and over, in one run of the writer's thread.
        let mut out = Vec::with_capacity(self.entries.load(Ordering::Relaxed));
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            out.extend(taken.into_values().flatten());
        }
        self.entries.fetch_sub(out.len(), Ordering::Relaxed);
        // Sorted through their keys: sorting the entries themselves (a fetch is a couple of
        // hundred bytes) moved a storm's tick of them a dozen times over, a millisecond in one
        // run of the writer's thread. Ties keep the order taken (the position is in the key).
        let mut order: Vec<(i64, usize)> = out.iter().map(Entry::at).zip(0..).collect();
        order.sort_unstable();
        let mut slots: Vec<Option<Entry>> = out.into_iter().map(Some).collect();
        order.into_iter().filter_map(|(_, i)| slots.get_mut(i).and_then(Option::take)).collect()
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
            .map(|c| (c.first.mac.to_string(), c.first.at, c.count, c.last_at, c.first.model.clone()))
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
        ledger.entries.store(LEDGER_MAX - 1, Ordering::Relaxed);
        assert!(ledger.take(fetch(1, 10, &a, None)).is_ok());
        assert!(ledger.take(fetch(2, 10, &a, None)).is_err(), "past the bound a new entry is refused");
        assert!(ledger.take(fetch(1, 11, &a, None)).is_ok(), "a repeat takes no room");
        assert!(ledger.note(event(1, 12)).is_err(), "nor is an event kept past the bound");
        let drained = fetches(ledger.drain());
        assert_eq!(drained.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2]);
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
                Entry::Event(_) => panic!("fetches only"),
            })
            .collect()
    }
}
