//! The render cache, and when each file's content last changed.
//!
//! Rendered files are kept per device (and per model for common files) until
//! something they depend on changes: a device edit drops that device's files;
//! a group, global or template change drops everything. A generation counter
//! guards against a render that started before an invalidation being stored
//! after it, which would serve stale content until the next change.
//!
//! Device files are bounded by bytes (`[cache] max_bytes`): a million phones fetching once
//! each, or a scanner walking MACs, must not grow the cache without limit. Past the bound, a
//! CLOCK sweep (second chance) evicts devices whose files were not served since the previous
//! sweep, until the cache is back under seven eighths of the bound: a device fetched again
//! keeps its files, one fetched once goes first. An evicted file is rendered again on its next
//! fetch, with the same bytes. Model-scoped (common) files are few, one per vendor model and
//! file name, and are not evicted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use sipprov_model::Mac;
use sipprov_store::RenderedState;

/// A rendered file, ready to send.
#[derive(Debug)]
pub struct Served {
    /// The canonical file name (what the vendor calls it).
    pub file: String,
    /// The bytes sent, shared by every response that serves them.
    pub bytes: Bytes,
    /// SHA-256 of the bytes, hex.
    pub hash: String,
    /// Strong validator derived from the hash, quoted.
    pub etag: String,
    /// When this content first appeared (whole seconds, as HTTP dates carry).
    pub last_modified: SystemTime,
    /// The `Content-Type` the vendor's file is served with.
    pub content_type: &'static str,
}

impl Served {
    /// Hashes content and stamps it with its last-change time.
    pub fn new(file: String, bytes: Vec<u8>, content_type: &'static str, hash: String, changed_at_ms: i64) -> Served {
        let etag = format!("\"{}\"", &hash[..32.min(hash.len())]);
        let secs = u64::try_from(changed_at_ms / 1000).unwrap_or(0);
        Served {
            file,
            bytes: Bytes::from(bytes),
            hash,
            etag,
            last_modified: UNIX_EPOCH + Duration::from_secs(secs),
            content_type,
        }
    }
}

/// SHA-256 of content as lower-case hex.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The cache key of a model-scoped (common) file in the change-time table.
pub fn model_key(vendor: &str, model: &str, file: &str) -> String {
    format!("{vendor}/{model}/{file}")
}

/// The placeholder MAC under which model-scoped files' change times are stored.
pub const MODEL_SCOPE_MAC: Mac = Mac::from_bytes([0; 6]);

type FileMap = HashMap<String, Arc<Served>>;

/// The default bound of the device files' bytes: 128 MiB, about 100,000 typical config files.
pub const DEFAULT_MAX_BYTES: u64 = 128 << 20;

/// What an entry costs besides its bytes and names: the [`Served`] and its `Arc`, the map slots
/// and the small strings' rounding (an estimate on the safe side).
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Served>() + 160;

impl Served {
    /// The memory this file holds in the cache under a requested name of `key_len` bytes.
    fn cost(&self, key_len: usize) -> usize {
        self.bytes.len() + self.file.len() + self.hash.len() + self.etag.len() + key_len + ENTRY_OVERHEAD
    }
}

/// One device's cached files, with the bit the CLOCK sweep reads.
#[derive(Default)]
struct DeviceEntry {
    files: FileMap,
    /// Served since the last sweep passed it.
    hot: AtomicBool,
    bytes: usize,
}

/// Every device's cached files and their total cost.
#[derive(Default)]
struct DeviceFiles {
    map: HashMap<Mac, DeviceEntry>,
    bytes: usize,
    /// Where the next sweep starts, in table order.
    hand: usize,
}

/// Rendered files and content change times.
pub struct RenderCache {
    generation: AtomicU64,
    max_bytes: usize,
    devices: RwLock<DeviceFiles>,
    models: RwLock<FileMap>,
    /// Per (device, file): the digest of its last rendering and when that content appeared.
    /// One entry per file ever rendered, so it is kept small: the digest as 32 bytes, not 64
    /// hex characters on the heap.
    changes: Mutex<HashMap<(Mac, Box<str>), ChangeState>>,
}

/// A file's last rendering in the change-time table: its digest and when that content appeared
/// (ms since the epoch).
type ChangeState = ([u8; 32], i64);

/// A content hash as the change-time table keeps it: the 32 bytes of a SHA-256 hex digest (what
/// [`content_hash`] gives), or the SHA-256 of any other text, so equal texts stay equal.
fn digest_of(hash: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if hash.len() == 64 && hex::decode_to_slice(hash, &mut out).is_ok() {
        return out;
    }
    Sha256::digest(hash.as_bytes()).into()
}

impl Default for RenderCache {
    fn default() -> RenderCache {
        RenderCache {
            generation: AtomicU64::new(0),
            max_bytes: usize::try_from(DEFAULT_MAX_BYTES).unwrap_or(usize::MAX),
            devices: RwLock::default(),
            models: RwLock::default(),
            changes: Mutex::default(),
        }
    }
}

impl RenderCache {
    /// A cache seeded with the change times the store remembers.
    pub fn new(states: Vec<RenderedState>) -> RenderCache {
        let changes = states
            .into_iter()
            .map(|s| ((s.mac, s.file.into_boxed_str()), (digest_of(&s.hash), s.changed_at)))
            .collect();
        RenderCache { changes: Mutex::new(changes), ..Default::default() }
    }

    /// Bounds the device files' bytes (see the module documentation).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> RenderCache {
        self.max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        self
    }

    /// The bytes the device files hold now (as `Served::cost` counts them).
    pub fn device_bytes(&self) -> usize {
        self.devices.read().unwrap_or_else(|e| e.into_inner()).bytes
    }

    /// The current generation; pass it back to the insert calls.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A device file by the (lower-cased) name it was requested under.
    pub fn device_file(&self, mac: Mac, requested: &str) -> Option<Arc<Served>> {
        let devices = self.devices.read().unwrap_or_else(|e| e.into_inner());
        let entry = devices.map.get(&mac)?;
        let hit = entry.files.get(requested).cloned();
        // Written only when it changes, so a hot device's cache line is not dirtied per fetch.
        if hit.is_some() && !entry.hot.load(Ordering::Relaxed) {
            entry.hot.store(true, Ordering::Relaxed);
        }
        hit
    }

    /// A model-scoped file by key.
    pub fn model_file(&self, key: &str) -> Option<Arc<Served>> {
        self.models.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// Stores a device file unless the cache was invalidated since `generation`.
    pub fn insert_device_file(&self, generation: u64, mac: Mac, requested: String, served: Arc<Served>) {
        let mut guard = self.devices.write().unwrap_or_else(|e| e.into_inner());
        if self.generation() != generation {
            return;
        }
        let devices = &mut *guard;
        let key_len = requested.len();
        let cost = served.cost(key_len);
        let entry = devices.map.entry(mac).or_default();
        let old = entry.files.insert(requested, served).map_or(0, |old| old.cost(key_len));
        entry.bytes = entry.bytes + cost - old;
        devices.bytes = devices.bytes + cost - old;
        if devices.bytes > self.max_bytes {
            devices.evict(self.max_bytes - self.max_bytes / 8);
        }
    }

    /// Stores a model-scoped file unless the cache was invalidated since `generation`.
    pub fn insert_model_file(&self, generation: u64, key: String, served: Arc<Served>) {
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        if self.generation() == generation {
            models.insert(key, served);
        }
    }

    /// Drops one device's files (its settings, group, model or vendor changed).
    pub fn invalidate_device(&self, mac: Mac) {
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        devices.remove(mac);
    }

    /// Drops many devices' files under one lock (an import added them).
    pub fn invalidate_devices(&self, macs: &[Mac]) {
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        for mac in macs {
            devices.remove(*mac);
        }
    }

    /// Drops everything (a group, the global settings or a template changed).
    pub fn invalidate_all(&self) {
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        *devices = DeviceFiles::default();
        models.clear();
    }

    /// Notes the hash just rendered for a file and returns when its content last
    /// changed, plus the state to persist when it is new.
    ///
    /// `Last-Modified` carries whole seconds, and a client holding the previous content sends
    /// that second back in `If-Modified-Since`. A change noted within the same second as the
    /// previous one would get the same `Last-Modified` and a 304 would keep the old file
    /// forever (AudioCodes MP-11x validates with If-Modified-Since only). So a new change time
    /// is moved to the start of the next second when needed: its HTTP-date is always strictly
    /// later than any `Last-Modified` served for the file before, across restarts too, since
    /// the previous change time is persisted ([`RenderedState`]).
    pub fn note_content(&self, mac: Mac, file: &str, hash: &str, now_ms: i64) -> (i64, Option<RenderedState>) {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let key = (mac, Box::from(file));
        let digest = digest_of(hash);
        let changed_at = match changes.get(&key) {
            Some((old, at)) if *old == digest => return (*at, None),
            Some((_, at)) => now_ms.max(next_second(*at)),
            None => now_ms,
        };
        changes.insert(key, (digest, changed_at));
        let state = RenderedState { mac, file: file.to_string(), hash: hash.to_string(), changed_at };
        (changed_at, Some(state))
    }
}

impl DeviceFiles {
    fn remove(&mut self, mac: Mac) {
        if let Some(entry) = self.map.remove(&mac) {
            self.bytes -= entry.bytes;
        }
    }

    /// One CLOCK sweep: from where the last sweep stopped (the hand, a position in table
    /// order), devices not served since the hand last passed go, until the cache holds at most
    /// `target` bytes; those served lose their mark (a second chance). Past the table's end the
    /// hand wraps; a third pass runs if every device was marked, so a sweep always ends under
    /// `target`.
    fn evict(&mut self, target: usize) {
        let mut bytes = self.bytes;
        for pass in 0..3 {
            let start = if pass == 0 { self.hand } else { 0 };
            let mut position = 0;
            let mut stopped = None;
            self.map.retain(|_, entry| {
                let here = position;
                position += 1;
                if here < start || stopped.is_some() {
                    return true;
                }
                if bytes <= target {
                    stopped = Some(here);
                    return true;
                }
                if entry.hot.swap(false, Ordering::Relaxed) {
                    return true;
                }
                bytes -= entry.bytes;
                false
            });
            self.hand = stopped.unwrap_or(0);
            if bytes <= target {
                break;
            }
        }
        self.bytes = bytes;
    }
}

/// The start of the whole second after the one `at_ms` falls in (ms since the epoch): the
/// earliest change time whose HTTP-date is later than `at_ms`'s.
fn next_second(at_ms: i64) -> i64 {
    (at_ms.div_euclid(1000) + 1).saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(n: u8) -> Arc<Served> {
        Arc::new(Served::new("f".into(), vec![n], "text/plain", content_hash(&[n]), 1000))
    }

    #[test]
    fn stale_render_is_not_stored_after_invalidation() {
        let cache = RenderCache::default();
        let mac = Mac::from_bytes([0, 1, 2, 3, 4, 5]);
        let generation = cache.generation();
        cache.invalidate_device(mac);
        cache.insert_device_file(generation, mac, "f".into(), served(1));
        assert!(cache.device_file(mac, "f").is_none());
        cache.insert_device_file(cache.generation(), mac, "f".into(), served(2));
        assert_eq!(cache.device_file(mac, "f").unwrap().bytes.as_ref(), &[2]);
    }

    #[test]
    fn change_time_moves_only_when_content_changes() {
        let cache = RenderCache::default();
        let mac = Mac::from_bytes([0, 1, 2, 3, 4, 5]);
        assert_eq!(cache.note_content(mac, "f", "h1", 10_000).0, 10_000);
        assert_eq!(cache.note_content(mac, "f", "h1", 20_000), (10_000, None));
        let (at, state) = cache.note_content(mac, "f", "h2", 30_000);
        assert_eq!(at, 30_000);
        assert_eq!(state.unwrap().hash, "h2");
    }

    fn mac(n: u32) -> Mac {
        let b = n.to_be_bytes();
        Mac::from_bytes([0, 0x15, b[0], b[1], b[2], b[3]])
    }

    fn file_of(n: u32) -> Arc<Served> {
        let bytes = format!("file of device {n}\n").repeat(20).into_bytes();
        let hash = content_hash(&bytes);
        Arc::new(Served::new(format!("{n}.cfg"), bytes, "text/plain", hash, 1000))
    }

    #[test]
    fn device_files_stay_within_the_byte_bound_and_hot_ones_stay() {
        let one = file_of(0).cost(8);
        let cache = RenderCache::default().with_max_bytes((one * 100) as u64);
        let hot = mac(999_999);
        cache.insert_device_file(cache.generation(), hot, "hot.cfg".into(), file_of(999_999));
        // A scan: 10,000 devices fetched once each, while one device keeps fetching.
        for n in 0..10_000 {
            cache.insert_device_file(cache.generation(), mac(n), format!("{n:07}.cfg"), file_of(n));
            assert!(cache.device_bytes() <= one * 100, "over the bound after {n}");
            let served = cache.device_file(hot, "hot.cfg").expect("the hot device's file stays");
            assert_eq!(served.bytes, file_of(999_999).bytes);
        }
        assert!(cache.device_file(mac(0), "0000000.cfg").is_none(), "a cold one was evicted");
        let last = cache.device_file(mac(9_999), "0009999.cfg").expect("the newest is still there");
        assert_eq!(last.bytes, file_of(9_999).bytes, "the right bytes");
        // Invalidation gives the bytes back.
        cache.invalidate_all();
        assert_eq!(cache.device_bytes(), 0);
    }

    #[test]
    fn replacing_a_file_counts_its_bytes_once() {
        let cache = RenderCache::default();
        let m = mac(1);
        cache.insert_device_file(cache.generation(), m, "a".into(), file_of(1));
        let once = cache.device_bytes();
        cache.insert_device_file(cache.generation(), m, "a".into(), file_of(1));
        assert_eq!(cache.device_bytes(), once);
        cache.invalidate_device(m);
        assert_eq!(cache.device_bytes(), 0);
    }

    /// Seconds of the HTTP-date a change time gives.
    fn http_second(at_ms: i64) -> u64 {
        let served = Served::new("f".into(), vec![], "text/plain", content_hash(&[]), at_ms);
        served.last_modified.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_change_within_the_same_second_still_gets_a_later_last_modified() {
        let cache = RenderCache::default();
        let mac = Mac::from_bytes([0, 1, 2, 3, 4, 5]);
        let first = cache.note_content(mac, "f", "h1", 10_100).0;
        let second = cache.note_content(mac, "f", "h2", 10_900).0;
        assert_eq!(second, 11_000, "moved to the next second");
        assert!(http_second(second) > http_second(first));
        // Several changes within one second each move one second further.
        let third = cache.note_content(mac, "f", "h3", 10_950).0;
        assert!(http_second(third) > http_second(second));
        // Back to earlier content is a change too.
        let fourth = cache.note_content(mac, "f", "h1", 10_990).0;
        assert!(http_second(fourth) > http_second(third));
        // A clock stepped back does not move Last-Modified back.
        assert!(cache.note_content(mac, "f", "h5", 5_000).0 > fourth);
        // Later changes keep their own time; other files are independent.
        assert_eq!(cache.note_content(mac, "f", "h6", 60_123).0, 60_123);
        assert_eq!(cache.note_content(mac, "g", "h1", 10_100).0, 10_100);
    }

    #[test]
    fn the_rule_holds_across_a_restart() {
        let mac = Mac::from_bytes([0, 1, 2, 3, 4, 5]);
        let before = RenderCache::default();
        let (at, state) = before.note_content(mac, "f", "h1", 10_100);
        let after = RenderCache::new(vec![state.unwrap()]);
        assert_eq!(after.note_content(mac, "f", "h1", 10_500), (at, None));
        assert!(http_second(after.note_content(mac, "f", "h2", 10_600).0) > http_second(at));
    }
}
