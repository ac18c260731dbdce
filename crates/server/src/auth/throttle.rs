//! Counts failures per source and cools off sources that keep failing.
//!
//! A failure is a request naming a MAC the server does not know (by path, key-file name,
//! User-Agent or certificate), a device file answered with a challenge or a refusal (also when no
//! credentials were offered, so known and unknown MACs count alike), a wrong credential, a
//! replayed Digest header, a client certificate naming another device, or a source outside an
//! allow-list. A successful authentication as a device takes back one failure of the
//! unauthenticated kind for that same device (the challenge that preceded it), never a wrong
//! credential and never a challenge for another MAC: phones behind one address do not add up to a
//! block, and someone holding one device's valid credentials cannot use them to keep scanning
//! other MACs (each success would otherwise forgive one guess).
//! Past `max_failures` within `failure_window_secs`, the source is refused (429 or 403, as
//! configured) for `block_secs`, and one warning names it. IPv6 sources are counted per /64,
//! since one host usually holds the whole /64.
//!
//! The table is bounded ([`MAX_SOURCES`]): when it is full, entries whose window has passed are
//! dropped, and if it is still full every unblocked entry goes, so a scan from many addresses
//! cannot grow memory without limit. Checking an unblocked source costs one atomic load.
//!
//! On PostgreSQL the count is also kept for the whole cluster ([`crate::auth::shared`]): every
//! failure and every success that takes one back is sent, off the request path, to the shared
//! count, and a block decided there (or by another node) is applied here with
//! [`Throttle::block_from_cluster`]. The local count still blocks on its own, so a node that
//! cannot reach the database protects itself as before.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use sipprov_model::Mac;

/// Most sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;

/// Blocks remembered for the fleet summary ("throttled sources in the last 24 h"); the oldest
/// is forgotten first.
const MAX_RECENT_BLOCKS: usize = 1024;

/// Devices per source whose unauthenticated challenge a success may still take back: the phones
/// of one NAT answering their challenges at about the same time.
const FORGIVABLE: usize = 8;

/// Thresholds (from `[security]` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures allowed per window; the next one blocks the source.
    pub max_failures: u32,
    /// The counting window.
    pub window: Duration,
    /// How long a blocked source stays blocked.
    pub block: Duration,
}

struct Entry {
    window_start: Instant,
    failures: u32,
    /// The devices challenged without credentials whose success may take the failure back (the
    /// most recent [`FORGIVABLE`]; the oldest is overwritten).
    forgivable: [Option<Mac>; FORGIVABLE],
    /// Where the next forgivable device goes.
    next_forgivable: usize,
    blocked_until: Option<Instant>,
}

/// A failure or a forgiveness for the cluster's shared count (on PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedEvent {
    /// One failure of this source key; with the known device challenged without credentials.
    Fail(IpAddr, Option<Mac>),
    /// This source key authenticated as this device.
    Forgive(IpAddr, Mac),
}

/// The per-source failure table.
pub struct Throttle {
    limits: Limits,
    /// Where failures and forgivenesses go to be counted cluster-wide, when they are.
    shared: OnceLock<mpsc::Sender<SharedEvent>>,
    blocked: AtomicUsize,
    sources: Mutex<HashMap<IpAddr, Entry>>,
    /// The latest blocks: source key and when (ms since the epoch), oldest first.
    recent: Mutex<VecDeque<(IpAddr, i64)>>,
}

/// What [`Throttle::fail`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted; still under the threshold.
    Counted,
    /// This failure crossed the threshold: the source is now blocked (warn once).
    NowBlocked,
}

/// The key a source is counted under: the address, or its /64 for IPv6.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
        v4 => v4,
    }
}

impl Throttle {
    /// An empty table.
    pub fn new(limits: Limits) -> Throttle {
        Throttle {
            limits,
            shared: OnceLock::new(),
            blocked: AtomicUsize::new(0),
            sources: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// The thresholds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sends every later failure and forgiveness to `events` as well, for the cluster's count.
    pub fn share(&self, events: mpsc::Sender<SharedEvent>) {
        let _ = self.shared.set(events);
    }

    /// Passes an event on to the cluster's count; dropped when its queue is full (the local
    /// count still holds).
    fn send_shared(&self, event: SharedEvent) {
        if let Some(events) = self.shared.get() {
            let _ = events.try_send(event);
        }
    }

    /// Blocks source key `key` for `remaining`, as the cluster decided; true when it was not
    /// blocked here yet.
    pub fn block_from_cluster(&self, key: IpAddr, remaining: Duration) -> bool {
        let now = Instant::now();
        let until = now + remaining;
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let entry = self.entry(&mut sources, key, now);
        match entry.blocked_until {
            Some(current) if current > now => {
                entry.blocked_until = Some(current.max(until));
                false
            }
            Some(_) => {
                // An expired block still counted in `blocked`: renew it in place.
                entry.blocked_until = Some(until);
                drop(sources);
                self.remember_block(key);
                true
            }
            None => {
                entry.blocked_until = Some(until);
                self.blocked.fetch_add(1, Ordering::Relaxed);
                drop(sources);
                self.remember_block(key);
                true
            }
        }
    }

    /// How long `ip` stays refused, if it is blocked now.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<Duration> {
        if self.blocked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = Instant::now();
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let entry = sources.get_mut(&source_key(ip))?;
        match entry.blocked_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                entry.blocked_until = None;
                entry.failures = 0;
                entry.forgivable = [None; FORGIVABLE];
                entry.window_start = now;
                self.blocked.fetch_sub(1, Ordering::Relaxed);
                None
            }
            None => None,
        }
    }

    /// Counts one failure from `ip`.
    pub fn fail(&self, ip: IpAddr) -> Outcome {
        self.count(ip, None)
    }

    /// Counts one failure from `ip` that offered no credentials. For a known device (`mac`), a
    /// later success from `ip` as that device may take it back ([`Throttle::forgive`]).
    pub fn fail_unauthenticated(&self, ip: IpAddr, mac: Option<Mac>) -> Outcome {
        self.count(ip, mac)
    }

    fn count(&self, ip: IpAddr, forgivable: Option<Mac>) -> Outcome {
        let now = Instant::now();
        let key = source_key(ip);
        self.send_shared(SharedEvent::Fail(key, forgivable));
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let entry = self.entry(&mut sources, key, now);
        if entry.blocked_until.is_some() {
            return Outcome::Counted;
        }
        if now.duration_since(entry.window_start) > self.limits.window {
            entry.window_start = now;
            entry.failures = 0;
            entry.forgivable = [None; FORGIVABLE];
        }
        entry.failures = entry.failures.saturating_add(1);
        if let Some(mac) = forgivable {
            entry.forgivable[entry.next_forgivable] = Some(mac);
            entry.next_forgivable = (entry.next_forgivable + 1) % FORGIVABLE;
        }
        if entry.failures > self.limits.max_failures {
            entry.blocked_until = Some(now + self.limits.block);
            self.blocked.fetch_add(1, Ordering::Relaxed);
            self.remember_block(key);
            return Outcome::NowBlocked;
        }
        Outcome::Counted
    }

    fn remember_block(&self, key: IpAddr) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= MAX_RECENT_BLOCKS {
            recent.pop_front();
        }
        recent.push_back((key, at));
    }

    /// Sources blocked at or after `since` (ms since the epoch), each once with its latest
    /// block, most recent first (at most the last `MAX_RECENT_BLOCKS` blocks are known).
    pub fn blocked_since(&self, since: i64) -> Vec<(IpAddr, i64)> {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::HashSet::new();
        recent.iter().rev().filter(|(_, at)| *at >= since).filter(|(ip, _)| seen.insert(*ip)).copied().collect()
    }

    /// Takes back one unauthenticated failure of `ip` for device `mac` after `ip` authenticated
    /// as that device; a blocked source stays blocked.
    pub fn forgive(&self, ip: IpAddr, mac: Mac) {
        self.send_shared(SharedEvent::Forgive(source_key(ip), mac));
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = sources.get_mut(&source_key(ip)) else { return };
        if entry.blocked_until.is_some() {
            return;
        }
        if let Some(slot) = entry.forgivable.iter_mut().find(|slot| **slot == Some(mac)) {
            *slot = None;
            entry.failures = entry.failures.saturating_sub(1);
        }
    }

    /// The entry of source `key`, a fresh one if it has none; the table is pruned first when a
    /// new source would pass [`MAX_SOURCES`], so a flood of sources cannot grow it unbounded.
    fn entry<'a>(&self, sources: &'a mut HashMap<IpAddr, Entry>, key: IpAddr, now: Instant) -> &'a mut Entry {
        if !sources.contains_key(&key) && sources.len() >= MAX_SOURCES {
            self.prune(sources, now);
        }
        sources.entry(key).or_insert(Entry {
            window_start: now,
            failures: 0,
            forgivable: [None; FORGIVABLE],
            next_forgivable: 0,
            blocked_until: None,
        })
    }

    fn prune(&self, sources: &mut HashMap<IpAddr, Entry>, now: Instant) {
        let window = self.limits.window;
        let mut unblocked = 0;
        sources.retain(|_, e| match e.blocked_until {
            Some(until) if until > now => true,
            Some(_) => {
                unblocked += 1;
                false
            }
            None => now.duration_since(e.window_start) <= window,
        });
        if sources.len() >= MAX_SOURCES {
            sources.retain(|_, e| e.blocked_until.is_some());
        }
        if sources.len() >= MAX_SOURCES {
            // Only blocked sources left and still full: forget them all rather than grow.
            unblocked += sources.len();
            sources.clear();
        }
        self.blocked.fetch_sub(unblocked.min(self.blocked.load(Ordering::Relaxed)), Ordering::Relaxed);
    }

    /// Number of sources tracked (for tests and metrics).
    pub fn len(&self) -> usize {
        self.sources.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(block_ms: u64) -> Limits {
        Limits { max_failures: 3, window: Duration::from_secs(60), block: Duration::from_millis(block_ms) }
    }

    #[test]
    fn blocks_after_the_threshold_and_releases_after_the_cool_down() {
        let t = Throttle::new(limits(50));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(t.fail(ip), Outcome::Counted);
        assert_eq!(t.fail(ip), Outcome::Counted);
        assert_eq!(t.fail(ip), Outcome::Counted);
        assert!(t.blocked_for(ip).is_none());
        assert_eq!(t.fail(ip), Outcome::NowBlocked);
        assert!(t.blocked_for(ip).is_some());
        assert!(t.blocked_for("192.0.2.2".parse().unwrap()).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(t.blocked_for(ip).is_none());
    }

    #[test]
    fn a_success_takes_back_only_unauthenticated_failures() {
        let t = Throttle::new(limits(60_000));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let phone: Mac = "001565000001".parse().unwrap();
        for _ in 0..10 {
            // A phone: challenged, then authenticated.
            assert_eq!(t.fail_unauthenticated(ip, Some(phone)), Outcome::Counted);
            t.forgive(ip, phone);
        }
        assert_eq!(t.fail(ip), Outcome::Counted);
        t.forgive(ip, phone);
        t.forgive(ip, phone);
        assert_eq!(t.fail(ip), Outcome::Counted);
        assert_eq!(t.fail(ip), Outcome::Counted);
        assert_eq!(t.fail(ip), Outcome::NowBlocked, "wrong credentials are never taken back");
    }

    #[test]
    fn a_success_takes_back_only_its_own_devices_challenge() {
        let t = Throttle::new(limits(60_000));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let own: Mac = "001565000001".parse().unwrap();
        // Guesses at other MACs (unknown ones are never forgivable, known ones only by their own
        // success), each followed by a success as the one device whose credentials are held.
        assert_eq!(t.fail_unauthenticated(ip, None), Outcome::Counted);
        t.forgive(ip, own);
        assert_eq!(t.fail_unauthenticated(ip, Some("001565000002".parse().unwrap())), Outcome::Counted);
        t.forgive(ip, own);
        assert_eq!(t.fail_unauthenticated(ip, None), Outcome::Counted);
        assert_eq!(t.fail_unauthenticated(ip, None), Outcome::NowBlocked, "successes forgave no guess");
    }

    #[tokio::test]
    async fn the_cluster_hears_every_failure_and_forgiveness_and_its_blocks_apply_here() {
        let t = Throttle::new(limits(60_000));
        let (tx, mut rx) = mpsc::channel(16);
        t.share(tx);
        let ip: IpAddr = "2001:db8::7".parse().unwrap();
        let key = source_key(ip);
        let phone: Mac = "001565000001".parse().unwrap();
        t.fail_unauthenticated(ip, Some(phone));
        t.forgive(ip, phone);
        assert_eq!(rx.recv().await, Some(SharedEvent::Fail(key, Some(phone))));
        assert_eq!(rx.recv().await, Some(SharedEvent::Forgive(key, phone)));
        // Blocked by the cluster after one local failure: refused here, once remembered.
        assert!(t.blocked_for(ip).is_none());
        assert!(t.block_from_cluster(key, Duration::from_secs(30)));
        assert!(!t.block_from_cluster(key, Duration::from_secs(30)), "already blocked");
        assert!(t.blocked_for(ip).is_some());
        assert_eq!(t.blocked_since(0).len(), 1);
    }

    #[test]
    fn ipv6_counts_per_64_and_the_table_stays_bounded() {
        let t = Throttle::new(limits(60_000));
        for i in 0..4u16 {
            t.fail_unauthenticated(format!("2001:db8::{i:x}").parse().unwrap(), None);
        }
        assert!(t.blocked_for("2001:db8::ffff".parse().unwrap()).is_some());
        for i in 0..(MAX_SOURCES as u32 + 1000) {
            t.fail(IpAddr::V4(i.into()));
        }
        assert!(t.len() <= MAX_SOURCES);
    }
}
