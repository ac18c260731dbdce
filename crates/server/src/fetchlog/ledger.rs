//! The fetches taken since the writer last looked, merged where the request path records them.
//!
//! Handing every served fetch to the writer task through a channel cost more than serving the
//! file: a queue slot, a wake-up of the writer and a hash-map merge on the writer's side for
//! each request, all on the core that serves the phones. A polling fleet mostly repeats
//! itself, so the request path now merges a fetch into the ledger itself: one shard lock, one
//! look-up of the device (the cheap keyed [`MacMap`]: only known devices' fetches come here),
//! and, for a repeat, a count raised in place. The writer takes the shards' contents on each of
//! its ticks, before any other record it writes (so a device's records keep their order), on a
//! flush and at the end, and merges them into its batch as it merged single fetches before.
//!
//! Bounded: at most [`LEDGER_MAX`] distinct entries wait here; past it a fetch is dropped and
//! counted, as a full queue dropped one (the writer takes everything every tick, so only a
//! writer stalled for that long lets it fill).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use sipprov_model::{Mac, MacMap};
use tokio::sync::Notify;

use super::{Coalesced, Fetch};

/// Shards of the ledger, by MAC: the runtime's worker threads rarely wait for each other.
const SHARDS: usize = 16;

/// Most distinct entries (a device's distinct fetches since the last take) the ledger holds.
pub(super) const LEDGER_MAX: usize = 65_536;

/// The fetches taken since the writer last took them.
pub(super) struct Ledger {
    shards: Box<[Mutex<MacMap<Vec<Coalesced>>>]>,
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

    /// Merges a served fetch: a repeat of the device's latest entry with the same key (file,
    /// source, content, answer, authentication) and the same reported model and firmware
    /// raises its count; anything else starts an entry. `Err` gives the fetch back when the
    /// ledger is full.
    pub(super) fn take(&self, fetch: Fetch) -> Result<(), Box<Fetch>> {
        let mut shard = self.shards[shard_of(fetch.mac)].lock().unwrap_or_else(|e| e.into_inner());
        let entries = shard.entry(fetch.mac).or_default();
        if let Some(kept) = entries.iter_mut().rev().find(|c| c.first.same_key(&fetch)) {
            if kept.first.model == fetch.model && kept.first.firmware == fetch.firmware {
                kept.repeat(fetch);
                return Ok(());
            }
        }
        let held = self.entries.load(Ordering::Relaxed);
        if held >= LEDGER_MAX {
            if entries.is_empty() {
                shard.remove(&fetch.mac);
            }
            return Err(Box::new(fetch));
        }
        entries.push(Coalesced::new(fetch));
        // Counted under the shard's lock, so a drain never takes an entry not yet counted.
        let now_held = self.entries.fetch_add(1, Ordering::Relaxed) + 1;
        drop(shard);
        if now_held == self.batch {
            self.full.notify_one();
        }
        Ok(())
    }

    /// Everything taken so far, oldest first (by each entry's first fetch), and the ledger
    /// emptied.
    pub(super) fn drain(&self) -> Vec<Coalesced> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            out.extend(taken.into_values().flatten());
        }
        self.entries.fetch_sub(out.len(), Ordering::Relaxed);
        out.sort_by_key(|c| c.first.at);
        out
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
        let drained = ledger.drain();
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
        let drained = ledger.drain();
        assert_eq!(drained.iter().map(|c| c.count).collect::<Vec<_>>(), vec![2]);
    }
}
