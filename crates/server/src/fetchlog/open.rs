//! The fetch events the writer may still extend (SQLite): each device's latest fetch event,
//! while fetches identical to it keep coming within `[fetch_log] merge_window_ms`.
//!
//! A phone polling the same file makes one event per interval in which it fetched; kept open,
//! that event's count and last time are raised instead (an upsert of a row of a few bytes in
//! the store's `fetch_event_counts`, which leaves the event's own row as written), so the history grows by one event per
//! device per window. An event is extended only while it is the device's latest event in this
//! writer (any other record of the device closes it) and the device was not removed and added
//! again since (the store checks, and appends instead).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use sipprov_model::{BuildMacHasher, Mac, MacMap};
use sipprov_store::{EventText, IntervalEvent};

use super::pace::Pace;
use super::{Coalesced, Pending};

/// Most devices with an open event (about 50 bytes each); past it, further devices' events are
/// not kept open, and are appended every interval as when the window is 0.
const OPEN_MAX: usize = 100_000;

/// Each device's open event.
pub(super) struct OpenEvents {
    by_mac: MacMap<Open>,
    /// `[fetch_log] merge_window_ms`; 0 keeps nothing open.
    window_ms: i64,
    /// Keys the fingerprints: another process cannot choose fetches that collide.
    keyed: RandomState,
}

/// A stored fetch event that identical fetches may extend.
#[derive(Clone, Copy)]
struct Open {
    id: i64,
    first_at: i64,
    count: u64,
    fingerprint: u64,
}

/// What writing one event of a batch does to the open events, once its id is known.
pub(super) enum Step {
    /// A fetch event, appended or extending `extends` (then with `total` fetches, the first at
    /// `extended_first_at`).
    Fetch { mac: Mac, fingerprint: u64, first_at: i64, count: u64, extends: Option<(i64, u64, i64)> },
    /// Another record of the device: its open event is closed.
    Other(Mac),
}

impl OpenEvents {
    /// An empty table for events open at most `window`.
    pub(super) fn new(window: Duration) -> OpenEvents {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        OpenEvents { by_mac: MacMap::default(), window_ms, keyed: RandomState::new() }
    }

    /// What makes two fetch events of a device the same: file, content, source, answer,
    /// authentication, model and firmware. A keyed 64-bit hash: no strings kept per device.
    fn fingerprint(&self, c: &Coalesced) -> u64 {
        let f = &c.first;
        self.keyed.hash_one((
            f.file(),
            f.content.hash.as_str(),
            f.ip,
            f.status,
            f.auth,
            f.model.as_deref(),
            f.firmware.as_deref(),
        ))
    }

    /// The batch's events in order, a device's first fetch event of the batch extending its
    /// open event when identical and within the window (`now`, ms since the epoch), and what
    /// each does to the table once written ([`OpenEvents::apply`]). Each new event goes to the
    /// store as its detail's JSON text, printed once here (a copy of a JSON detail would be a
    /// dozen allocations, and its drop as many frees); `pending` is left as it was, for a retry
    /// when the write fails.
    pub(super) fn plan(&mut self, pending: &[Pending], now: i64) -> (Vec<IntervalEvent>, Vec<Step>) {
        let window = self.window_ms;
        self.by_mac.retain(|_, open| now.saturating_sub(open.first_at) < window);
        let mut touched: HashSet<Mac, BuildMacHasher> =
            HashSet::with_capacity_and_hasher(pending.len(), BuildMacHasher::default());
        let mut events = Vec::with_capacity(pending.len());
        let mut steps = Vec::with_capacity(pending.len());
        // Printing a PnP storm's tick of 2,500 event details was the writer's longest run
        // (1 to 5.5 ms in one go, on the core answering the phones): paced like its other loops.
        let mut pace = Pace::new();
        for p in pending {
            pace.step();
            match p {
                Pending::Event(e) => {
                    touched.insert(e.mac);
                    events.push(IntervalEvent::New(EventText::from(e)));
                    steps.push(Step::Other(e.mac));
                }
                Pending::Fetch(c) => {
                    let (mac, fingerprint) = (c.first.mac, self.fingerprint(c));
                    let open = touched.insert(mac).then(|| self.by_mac.get(&mac)).flatten();
                    let extends =
                        open.filter(|o| o.fingerprint == fingerprint).map(|o| (o.id, o.count + c.count, o.first_at));
                    events.push(match extends {
                        Some((id, count, at)) => IntervalEvent::Extend { id, count, last_at: c.last_at, mac, at },
                        None => IntervalEvent::New(c.event_text()),
                    });
                    steps.push(Step::Fetch { mac, fingerprint, first_at: c.first.at, count: c.count, extends });
                }
            }
        }
        (events, steps)
    }

    /// Takes in a written batch: `ids` are its events' ids, in the order of `steps`.
    pub(super) fn apply(&mut self, steps: &[Step], ids: &[i64]) {
        let mut pace = Pace::new();
        for (step, &id) in steps.iter().zip(ids) {
            pace.step();
            match *step {
                Step::Other(mac) => {
                    self.by_mac.remove(&mac);
                }
                Step::Fetch { mac, fingerprint, first_at, count, extends } => {
                    let open = match extends {
                        Some((extended, total, first)) if extended == id => {
                            Open { id, first_at: first, count: total, fingerprint }
                        }
                        // Appended: a new event, or an extension the store could not make.
                        _ => Open { id, first_at, count, fingerprint },
                    };
                    if self.window_ms > 0 && (self.by_mac.len() < OPEN_MAX || self.by_mac.contains_key(&mac)) {
                        self.by_mac.insert(mac, open);
                    }
                }
            }
        }
    }

    /// The oldest event still open: a last-seen write must leave it (and later ones) to the
    /// replay, since it may still change.
    pub(super) fn oldest(&self) -> Option<i64> {
        self.by_mac.values().map(|o| o.id).min()
    }

    /// Forgets every open event (after a write whose records were dropped).
    pub(super) fn clear(&mut self) {
        self.by_mac.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{ContentId, Served};
    use crate::fetchlog::{Batch, Fetch, Record};
    use std::sync::Arc;

    fn batch(records: impl IntoIterator<Item = Record>) -> Batch {
        let mut batch = Batch::default();
        records.into_iter().for_each(|r| batch.add(r));
        batch
    }

    /// A fetch of the content whose hash is `hash` (one shared `Served` per hash, as the cache
    /// hands out).
    fn fetch(at: i64, hash: &str) -> Record {
        thread_local! {
            static SERVED: std::cell::RefCell<std::collections::HashMap<String, Arc<ContentId>>> = Default::default();
        }
        let served = SERVED.with(|m| {
            m.borrow_mut()
                .entry(hash.to_string())
                .or_insert_with(|| Served::new("a.cfg".into(), b"x".to_vec(), "text/plain", hash.into(), 0).id)
                .clone()
        });
        Record::Fetch(Fetch {
            mac: "001565000001".parse().unwrap(),
            at,
            ip: "192.0.2.1".parse().unwrap(),
            content: served,
            file: None,
            status: 200,
            auth: "open",
            model: None,
            firmware: None,
        })
    }

    fn refusal(at: i64) -> Record {
        let detail = serde_json::json!({"reason": "test"});
        Record::Event(sipprov_store::NewEvent {
            mac: "001565000001".parse().unwrap(),
            at,
            kind: sipprov_model::EventKind::Refused,
            detail,
        })
    }

    /// Plans a batch and "writes" it: appended events get ids from `next`.
    fn write(open: &mut OpenEvents, b: Batch, now: i64, next: &mut i64) -> Vec<IntervalEvent> {
        let (events, steps) = open.plan(&b.events, now);
        let ids: Vec<i64> = events
            .iter()
            .map(|e| match e {
                IntervalEvent::Extend { id, .. } => *id,
                IntervalEvent::New(_) => {
                    *next += 1;
                    *next
                }
            })
            .collect();
        open.apply(&steps, &ids);
        events
    }

    #[test]
    fn identical_fetches_extend_within_the_window_and_anything_else_starts_anew() {
        let mut open = OpenEvents::new(Duration::from_secs(60));
        let mut next = 0;
        let first = write(&mut open, batch([fetch(1_000, "h"), fetch(1_100, "h")]), 1_200, &mut next);
        assert!(matches!(first[..], [IntervalEvent::New(_)]));
        assert_eq!(open.oldest(), Some(1));
        // The next interval's identical fetches raise event 1 to three fetches.
        let second = write(&mut open, batch([fetch(2_000, "h")]), 2_100, &mut next);
        assert!(matches!(second[..], [IntervalEvent::Extend { id: 1, count: 3, last_at: 2_000, .. }]), "{second:?}");
        // Other content: a new event, which is now the open one.
        let third = write(&mut open, batch([fetch(3_000, "h2"), fetch(3_100, "h2")]), 3_200, &mut next);
        assert!(matches!(third[..], [IntervalEvent::New(_)]));
        assert_eq!(open.oldest(), Some(2));
        // A refusal closes it: the fetch after it is appended.
        let fourth = write(&mut open, batch([refusal(4_000), fetch(4_100, "h2")]), 4_200, &mut next);
        assert!(matches!(fourth[..], [IntervalEvent::New(_), IntervalEvent::New(_)]), "{fourth:?}");
        // Past the window from its first fetch, an event is closed.
        let fifth = write(&mut open, batch([fetch(70_000, "h2")]), 70_000, &mut next);
        assert!(matches!(fifth[..], [IntervalEvent::New(_)]), "{fifth:?}");
    }

    #[test]
    fn a_window_of_zero_keeps_nothing_open() {
        let mut open = OpenEvents::new(Duration::ZERO);
        let mut next = 0;
        write(&mut open, batch([fetch(1_000, "h")]), 1_000, &mut next);
        let again = write(&mut open, batch([fetch(2_000, "h")]), 2_000, &mut next);
        assert!(matches!(again[..], [IntervalEvent::New(_)]));
        assert_eq!(open.oldest(), None);
    }

    #[test]
    fn an_extension_the_store_could_not_make_opens_the_appended_event() {
        let mut open = OpenEvents::new(Duration::from_secs(60));
        let mut next = 0;
        write(&mut open, batch([fetch(1_000, "h")]), 1_000, &mut next);
        let b = batch([fetch(2_000, "h")]);
        let (events, steps) = open.plan(&b.events, 2_000);
        assert!(matches!(events[..], [IntervalEvent::Extend { id: 1, .. }]));
        // The device was removed and added again: the store appended it as event 7.
        open.apply(&steps, &[7]);
        let third = write(&mut open, batch([fetch(3_000, "h")]), 3_000, &mut next);
        assert!(matches!(third[..], [IntervalEvent::Extend { id: 7, count: 2, .. }]), "{third:?}");
    }
}
