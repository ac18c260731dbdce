//! The last-seen, `device_files` and content change time rows the fetch log's writer gathers
//! between two last-seen writes (SQLite, see `sipprov_store::Store::defers_last_seen`): the
//! latest per device (and per device and file), merged as the store merges them, bounded in
//! devices.

use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use sipprov_model::MacMap;
use sipprov_store::{FetchInfo, RenderedState};

use crate::fetchlog::open::OpenEvents;
use crate::fetchlog::Latest;

/// Most devices whose last-seen rows wait for the next last-seen write: past it they are
/// written with the next interval's records. Waiting pays when devices fetch again before
/// the write (a fleet polling every few seconds: one row write per device per write instead of
/// per interval); a fleet of more distinct devices fetching within one wait has few repeats to
/// save, and each waiting device holds about 1.5 KB here (its last-seen row and its fetched
/// rows of `device_files`, as owned strings, copied once more to be written). 16,384 keeps
/// that under about 25 MB: a heap profile of a million devices fetched at random had 100,000 of them
/// waiting, about 190 MB with the copies.
const UNSAVED_SEEN_MAX: usize = 16_384;

/// The last-seen rows gathered since the last time they were written (SQLite), the latest per
/// device, merged as the store merges them.
///
/// A device polling the same file gives the same row every interval but for its time: each row
/// is updated in place, its texts copied only when they differ (a copy of each row per interval,
/// with the address printed again, was most of the writer's work for such a fleet).
pub(super) struct UnsavedSeen {
    pub(super) rows: MacMap<Unsaved>,
    /// The fetched rows of `device_files` (latest per device and file), written with the
    /// last-seen rows: every reader of that table (a campaign's confirmation, its selection) flushes first, and
    /// the store replays them from the fetch events after a crash, as it does the last-seen rows.
    /// Per device, one row per file (a device fetches one or two files); only their file, hash
    /// and time are kept (what the table holds).
    fetched: MacMap<Vec<FetchInfo>>,
    /// Content change times (`device_files`' renderings) that came in a storm (the writer's
    /// `PROMPT_CHANGE_TIMES_MAX`), the latest per device and file, written with the last-seen
    /// rows rather than within 250 ms: a million devices fetching at random had them written
    /// every 250 ms, each write a transaction of its own that wrote the same pages of the
    /// table's key again, 10.6 times each on average (docs/benchmarks.md, "Session 20 run"),
    /// and made the events wait for it. A crash loses at most one last-seen interval of them,
    /// which only moves those files' next `Last-Modified` later (see
    /// `sipprov_store::DeferredRows::rendered`).
    rendered: MacMap<Vec<RenderedState>>,
    /// How many entries `rendered` holds.
    rendered_count: usize,
    saved_at: Instant,
    /// `[fetch_log] last_seen_interval_ms`.
    every: Duration,
    /// The fetch events that identical fetches may still extend (`[fetch_log]
    /// merge_window_ms`), which the last-seen write leaves to the replay.
    pub(super) open: OpenEvents,
}

impl UnsavedSeen {
    /// Nothing waiting yet; written every `every`, with `open` the events still extendable.
    pub(super) fn new(every: Duration, open: OpenEvents) -> UnsavedSeen {
        UnsavedSeen {
            rows: MacMap::default(),
            fetched: MacMap::default(),
            rendered: MacMap::default(),
            rendered_count: 0,
            saved_at: Instant::now(),
            every,
            open,
        }
    }

    /// Whether anything waits to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.rendered_count == 0
    }

    /// Whether the rows are due to be written (time, or too many waiting).
    pub(super) fn due(&self) -> bool {
        // `fetched` holds the same devices as `rows`: both take every interval's rows.
        !self.is_empty()
            && (self.saved_at.elapsed() >= self.every
                || self.rows.len() >= UNSAVED_SEEN_MAX
                || self.rendered_count >= UNSAVED_SEEN_MAX)
    }

    /// Keeps a content change time; a later one of the same file replaces it.
    pub(super) fn keep_rendered(&mut self, state: RenderedState) {
        let files = self.rendered.entry(state.mac).or_insert_with(|| Vec::with_capacity(1));
        match files.iter_mut().find(|kept| kept.file == state.file) {
            Some(kept) => *kept = state,
            None => {
                files.push(state);
                self.rendered_count += 1;
            }
        }
    }

    /// How many content change times wait.
    pub(super) fn rendered_len(&self) -> usize {
        self.rendered_count
    }

    /// The content change times to write, in key order.
    pub(super) fn rendered_in_key_order(&self) -> Vec<RenderedState> {
        let mut rows: Vec<RenderedState> = self.rendered.values().flatten().cloned().collect();
        rows.sort_unstable_by(|a, b| (a.mac, &a.file).cmp(&(b.mac, &b.file)));
        rows
    }

    /// Takes in an interval's fetched rows of `device_files`: the latest per device and file wins.
    pub(super) fn merge_fetched(&mut self, rows: &[Latest<'_>]) {
        for row in rows {
            // One file per device, mostly: a first push would reserve room for four rows.
            let files = self.fetched.entry(row.mac).or_insert_with(|| Vec::with_capacity(1));
            match files.iter_mut().find(|kept| kept.file == row.file) {
                Some(kept) if kept.at > row.at => {}
                Some(kept) => {
                    kept.at = row.at;
                    assign(&mut kept.hash, row.hash);
                }
                None => files.push(FetchInfo {
                    mac: row.mac,
                    at: row.at,
                    ip: String::new(),
                    file: row.file.to_string(),
                    hash: row.hash.to_string(),
                    reported_model: None,
                    reported_firmware: None,
                }),
            }
        }
    }

    /// The fetched rows of `device_files` to write, in key order (see `sipprov_store`'s
    /// `fetches` module: each B-tree page is then visited once).
    pub(super) fn fetched_in_key_order(&self) -> Vec<FetchInfo> {
        let mut rows: Vec<FetchInfo> = self.fetched.values().flatten().cloned().collect();
        rows.sort_unstable_by(|a, b| (a.mac, &a.file).cmp(&(b.mac, &b.file)));
        rows
    }

    /// Takes in an interval's rows (oldest first): the latest fetch wins; a fetch that reports
    /// no model or firmware keeps what was reported before it.
    pub(super) fn merge(&mut self, rows: &[Latest<'_>]) {
        for row in rows {
            match self.rows.entry(row.mac) {
                Entry::Occupied(kept) => {
                    let kept = kept.into_mut();
                    if kept.info.at > row.at {
                        continue;
                    }
                    kept.info.at = row.at;
                    if kept.ip != row.ip {
                        kept.ip = row.ip;
                        kept.info.ip = row.ip.to_string();
                    }
                    assign(&mut kept.info.file, row.file);
                    assign(&mut kept.info.hash, row.hash);
                    if let Some(model) = row.model {
                        assign(kept.info.reported_model.get_or_insert_with(String::new), model);
                    }
                    if let Some(firmware) = row.firmware {
                        assign(kept.info.reported_firmware.get_or_insert_with(String::new), firmware);
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(Unsaved { ip: row.ip, info: row.info() });
                }
            }
        }
    }

    /// The last-seen rows to write, one per device, in MAC order.
    pub(super) fn seen_in_key_order(&self) -> Vec<FetchInfo> {
        let mut rows: Vec<FetchInfo> = self.rows.values().map(|r| r.info.clone()).collect();
        rows.sort_unstable_by_key(|r| r.mac);
        rows
    }

    /// They are written.
    pub(super) fn saved(&mut self) {
        self.rows.clear();
        self.fetched.clear();
        self.rendered.clear();
        self.rendered_count = 0;
        self.saved_at = Instant::now();
    }
}

/// A device's last-seen row waiting to be written, with its address as a value (compared each
/// interval; printed only when it changes).
pub(super) struct Unsaved {
    ip: IpAddr,
    info: FetchInfo,
}

/// Sets `text` to `value`, copying only when they differ (in the buffer `text` has).
fn assign(text: &mut String, value: &str) {
    if text != value {
        text.clear();
        text.push_str(value);
    }
}
