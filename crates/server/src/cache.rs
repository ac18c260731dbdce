//! The render cache, and when each file's content last changed.
//!
//! Rendered files are kept per device (and per model for common files) until
//! something they depend on changes: a device edit drops that device's files;
//! a group, global or template change drops everything. A generation counter
//! guards against a render that started before an invalidation being stored
//! after it, which would serve stale content until the next change.
//!
//! Device files are bounded by bytes (`[cache] max_bytes`): a million phones fetching once
//! each, or a scanner walking MACs, must not grow the cache without limit. Past the bound, the
//! insert that crossed it evicts with CLOCK (second chance): devices wait in a queue in the
//! order they were cached; the one at its head goes unless it was served since it last came
//! round, in which case it loses its mark and goes to the back. So a device fetched again keeps
//! its files, one fetched once goes first, and each insert does a few steps of work (amortized),
//! never a sweep of the whole table under the lock; what it evicts is freed after the lock is
//! released. An evicted file is rendered again on its next fetch, with the same bytes.
//! Model-scoped (common) files are few, one per vendor model and file name, and are not evicted.
//!
//! The change-time table has an entry per file ever rendered (a million devices, a million
//! entries), so it is kept to 32 bytes a slot: the key is a keyed 64-bit hash of device and file
//! name, the value the first 16 bytes of the content's SHA-256 and the time. Two files sharing a
//! key would only see each other's renders as changes, moving `Last-Modified` forward (a fetch
//! more, never a stale 304); two contents sharing 128 bits of SHA-256 are not a real concern.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use sipprov_model::{BuildMacHasher, Mac, MacMap};
use sipprov_store::RenderedState;

/// A rendered file, ready to send.
///
/// Its name and hash are kept once, in [`Served::id`], and its `ETag` once, as the header
/// value: the render cache holds tens of thousands of these, and the copies were about 200
/// bytes of each.
#[derive(Debug)]
pub struct Served {
    /// The bytes sent, shared by every response that serves them.
    pub bytes: Bytes,
    /// When this content first appeared (whole seconds, as HTTP dates carry).
    pub last_modified: SystemTime,
    /// The `Content-Type` the vendor's file is served with.
    pub content_type: &'static str,
    /// The response's headers (`Content-Type`, `ETag`, `Last-Modified`, `Cache-Control`), built
    /// once per rendering and cloned into each response (`response_headers`).
    pub headers: HeaderMap,
    /// The canonical file name and the hash, shared with the fetch records of this rendering.
    pub id: Arc<ContentId>,
    /// Rendered for a device that had no firmware target (no rollout pin, no level setting
    /// `firmware.version`). Anything that could give it one drops the device's cached files, so
    /// while this rendering is cached a fetch serves it without working out the firmware plan
    /// (see `Files::served`). False for anything else, which always works it out.
    pub no_firmware_target: bool,
}

/// What a fetch record keeps of the rendering it served: the file name and hash, shared by
/// every record of it, without the bytes. A record waits for the fetch log's next write (up to
/// tens of thousands of them when a large fleet fetches at once); holding the whole [`Served`]
/// kept the bytes of files the cache had already evicted alive until then, past the cache's
/// bound.
#[derive(Debug)]
pub struct ContentId {
    /// The canonical file name.
    pub file: String,
    /// SHA-256 of the bytes, hex.
    pub hash: String,
    /// `hash`'s 32 bytes when it is 64 lower-case hex digits (always, for what the server
    /// renders), decoded once here: the last-seen index compares them with each fetch's entry.
    pub digest: Option<[u8; 32]>,
}

impl Served {
    /// Hashes content and stamps it with its last-change time.
    pub fn new(file: String, bytes: Vec<u8>, content_type: &'static str, hash: String, changed_at_ms: i64) -> Served {
        // Quoted hex digits: always a valid header value.
        let etag = format!("\"{}\"", hash.get(..32).unwrap_or(&hash));
        // A rendered file grew by doubling; the cache keeps it as long as the device fetches,
        // and counts its length against the bound, so it holds no spare capacity.
        let mut bytes = bytes;
        bytes.shrink_to_fit();
        let secs = u64::try_from(changed_at_ms / 1000).unwrap_or(0);
        let last_modified = UNIX_EPOCH + Duration::from_secs(secs);
        let headers = response_headers(
            content_type,
            HeaderValue::from_str(&etag).ok(),
            HeaderValue::from_str(&httpdate::fmt_http_date(last_modified)).ok(),
        );
        let digest = sipprov_model::sha256_of_hex(&hash);
        let id = Arc::new(ContentId { file, hash, digest });
        Served { bytes: Bytes::from(bytes), last_modified, content_type, headers, id, no_firmware_target: false }
    }
}

impl Served {
    /// The canonical file name (what the vendor calls it).
    pub fn file(&self) -> &str {
        &self.id.file
    }

    /// SHA-256 of the bytes, hex.
    pub fn hash(&self) -> &str {
        &self.id.hash
    }

    /// The strong validator derived from the hash, quoted (as the `ETag` header carries it).
    pub fn etag(&self) -> &str {
        self.headers.get(header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// What every response of a rendering carries, in this order: its `Content-Type`, its `ETag`
/// (RFC 9110 §8.8.3) and `Last-Modified` (§8.8.2), and `Cache-Control: private, no-cache`
/// (config files carry credentials: no shared cache may keep them, RFC 9111 §5.2.2.7, and a
/// phone revalidates each time, §5.2.2.4). A 304 carries the same (RFC 9110 §15.4.5).
///
/// Built once per rendering: filled per response, the map cost four inserts (each a hash and
/// a probe) and its two allocations, about 870 instructions of a cached GET; a clone is the two
/// allocations and copies of four entries whose values share their bytes.
fn response_headers(
    content_type: &'static str,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    if let Some(lm) = last_modified {
        headers.insert(header::LAST_MODIFIED, lm);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    // A clone holds no spare capacity (the map grew its table for more entries than four):
    // the cache keeps it as long as the rendering.
    headers.clone()
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

/// Files by requested name (with dialect and firmware key), hashed with the keyed word hasher
/// the MAC maps use: every cached fetch looks its name up here, and SipHash cost several times
/// as much for a 16-byte name. The keys are names that resolved to a known device's (or a known
/// model's) file, a handful per device, not arbitrary text a client sends.
type FileMap = HashMap<String, Arc<Served>, BuildMacHasher>;

/// One device's cached files by the (lower-cased) name they were requested under. A device has
/// one to a few, found by comparing names in order: a hash table per device cost about 150
/// bytes for its one file.
type DeviceFileList = Vec<(Box<str>, Arc<Served>)>;

/// The default bound of the device files' bytes: 64 MiB, about 40,000 typical config files
/// (`bench/scale.sh`'s, some 500 bytes each, cost about 1,660 here with the response header map
/// and the hash's bytes each keeps).
///
/// Until session 19 it was 128 MiB, about 91,000 of these files at about 1,470 each. With a
/// million devices fetching at random the cache holds a few percent of them either way and
/// nearly every fetch renders; the bound then only adds to the resident set (137 MB at 128 MiB
/// in a heap profile of that run), and a rendering now costs about 40 % less than when the
/// bound was chosen (docs/benchmarks.md, "Session 19 run (the lead)"). A fleet whose devices
/// fetch again within minutes, and has more of them than this holds, can set `[cache] max_bytes`.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// What an entry costs besides its bytes and names, an estimate on the safe side: the
/// [`Served`] and its `Arc` header (16), the shared [`ContentId`] and its `Arc` header (104 since
/// it keeps the hash's 32 bytes, 64 before), the device's file list's slot (32), the device map's slot at the table's lowest load (two slots of about 60), the
/// CLOCK queue's place (16, twice while stale places wait to be dropped) and the rounding of the
/// small strings to their allocator size classes (about 64). Until session 11 this counted 160,
/// and a scan across a million devices grew the resident set by well over the bound while the
/// cache filled.
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Served>() + std::mem::size_of::<ContentId>() + 16 + 272;

/// What [`Served::headers`] holds on the heap, on the safe side: its index table (eight 4-byte
/// slots) and four entries, each a header name, a value and about 32 bytes of hash and links.
const HEADER_MAP: usize =
    32 + 4 * (std::mem::size_of::<axum::http::HeaderName>() + std::mem::size_of::<HeaderValue>() + 32);

impl Served {
    /// The memory this file holds in the cache under a requested name of `key_len` bytes.
    fn cost(&self, key_len: usize) -> usize {
        // The name and hash (in the shared id), the etag and the 29-byte date (header values),
        // and the header map's table and its entries (`HEADER_MAP`).
        self.file().len()
            + self.hash().len()
            + self.etag().len()
            + 29
            + HEADER_MAP
            + self.bytes.len()
            + key_len
            + ENTRY_OVERHEAD
    }
}

/// One device's cached files, with the bit the CLOCK hand reads.
#[derive(Default)]
struct DeviceEntry {
    files: DeviceFileList,
    /// Served since the hand last passed it.
    hot: AtomicBool,
    bytes: usize,
    /// Its place in the queue: a queued (MAC, ticket) whose ticket is not the entry's any more
    /// is stale (the device was dropped and cached again since) and is skipped.
    ticket: u64,
}

/// Every device's cached files, their total cost and the CLOCK queue.
#[derive(Default)]
struct DeviceFiles {
    map: MacMap<DeviceEntry>,
    bytes: usize,
    /// Devices in the order the hand visits them, with the ticket they were queued under.
    queue: VecDeque<(Mac, u64)>,
    next_ticket: u64,
}

/// Rendered files and content change times.
pub struct RenderCache {
    generation: AtomicU64,
    max_bytes: usize,
    devices: RwLock<DeviceFiles>,
    models: RwLock<FileMap>,
    /// Per (device, file), by [`ChangeTable::key`]: the digest of its last rendering and when
    /// that content appeared.
    changes: Mutex<ChangeTable>,
}

/// The change-time table (see the module documentation).
struct ChangeTable {
    keys: RandomState,
    map: HashMap<u64, ChangeState, sipprov_model::BuildMacHasher>,
}

/// A file's last rendering in the change-time table: the first 16 bytes of its digest and when
/// that content appeared (ms since the epoch).
type ChangeState = ([u8; 16], i64);

impl Default for ChangeTable {
    fn default() -> ChangeTable {
        ChangeTable { keys: RandomState::new(), map: HashMap::default() }
    }
}

impl ChangeTable {
    /// The slot of `mac`'s `file`: a keyed hash of both.
    fn key(&self, mac: Mac, file: &str) -> u64 {
        self.keys.hash_one((mac.as_u64(), file))
    }
}

/// A content hash as the change-time table keeps it: the first 16 of the 32 bytes of a SHA-256
/// hex digest (what [`content_hash`] gives), or of the SHA-256 of any other text, so equal
/// texts stay equal.
fn digest_of(hash: &str) -> [u8; 16] {
    let mut full = [0u8; 32];
    if !(hash.len() == 64 && hex::decode_to_slice(hash, &mut full).is_ok()) {
        full = Sha256::digest(hash.as_bytes()).into();
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
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
        let mut changes = ChangeTable::default();
        changes.map.reserve(states.len());
        for s in states {
            let key = changes.key(s.mac, &s.file);
            changes.map.insert(key, (digest_of(&s.hash), s.changed_at));
        }
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
        let hit = entry.files.iter().find(|(name, _)| **name == *requested).map(|(_, served)| Arc::clone(served));
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
        let evicted = {
            let mut guard = self.devices.write().unwrap_or_else(|e| e.into_inner());
            if self.generation() != generation {
                return;
            }
            guard.insert(mac, requested, served);
            if guard.bytes > self.max_bytes {
                guard.evict(self.max_bytes)
            } else {
                Vec::new()
            }
        };
        // Freed here, after the lock: fetches of other devices do not wait for it.
        drop(evicted);
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
        let (old_devices, old_models) = {
            let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
            let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
            self.generation.fetch_add(1, Ordering::AcqRel);
            (std::mem::take(&mut *devices), std::mem::take(&mut *models))
        };
        // A full cache is a hundred thousand entries: freed after the locks.
        drop((old_devices, old_models));
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
        let key = changes.key(mac, file);
        let digest = digest_of(hash);
        let changed_at = match changes.map.get(&key) {
            Some((old, at)) if *old == digest => return (*at, None),
            Some((_, at)) => now_ms.max(next_second(*at)),
            None => now_ms,
        };
        changes.map.insert(key, (digest, changed_at));
        let state = RenderedState { mac, file: file.to_string(), hash: hash.to_string(), changed_at };
        (changed_at, Some(state))
    }

    /// How many files the change-time table knows.
    pub fn change_times(&self) -> usize {
        self.changes.lock().unwrap_or_else(|e| e.into_inner()).map.len()
    }
}

impl DeviceFiles {
    fn insert(&mut self, mac: Mac, requested: String, served: Arc<Served>) {
        let key_len = requested.len();
        let cost = served.cost(key_len);
        let entry = match self.map.entry(mac) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                self.queue.push_back((mac, ticket));
                e.insert(DeviceEntry { ticket, ..DeviceEntry::default() })
            }
        };
        let old = match entry.files.iter_mut().find(|(name, _)| **name == *requested) {
            Some(slot) => std::mem::replace(&mut slot.1, served).cost(key_len),
            None => {
                // One slot more, not the four a first push reserves.
                entry.files.reserve_exact(1);
                entry.files.push((requested.into_boxed_str(), served));
                0
            }
        };
        entry.bytes = entry.bytes + cost - old;
        self.bytes = self.bytes + cost - old;
        self.compact_queue();
    }

    fn remove(&mut self, mac: Mac) {
        if let Some(entry) = self.map.remove(&mac) {
            self.bytes -= entry.bytes;
        }
        self.compact_queue();
    }

    /// Drops stale queue places once they outnumber the live ones (devices dropped and cached
    /// again), so the queue stays within twice the table (plus a little).
    fn compact_queue(&mut self) {
        if self.queue.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.queue.retain(|(mac, ticket)| map.get(mac).is_some_and(|e| e.ticket == *ticket));
        }
    }

    /// The CLOCK hand: from the queue's head, a device not served since it last came round
    /// goes, one served loses its mark and goes to the back, until the cache holds at most
    /// `target` bytes. Returns what went, for the caller to free after the lock. Each device is
    /// passed at most twice (a second pass finds every mark cleared), so it always ends.
    fn evict(&mut self, target: usize) -> Vec<DeviceEntry> {
        let mut evicted = Vec::new();
        let mut steps = 2 * self.queue.len() + 1;
        while self.bytes > target && steps > 0 {
            steps -= 1;
            let Some((mac, ticket)) = self.queue.pop_front() else { break };
            let Some(entry) = self.map.get(&mac).filter(|e| e.ticket == ticket) else { continue };
            if entry.hot.swap(false, Ordering::Relaxed) {
                self.queue.push_back((mac, ticket));
                continue;
            }
            if let Some(entry) = self.map.remove(&mac) {
                self.bytes -= entry.bytes;
                evicted.push(entry);
            }
        }
        evicted
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
    fn validator_headers_are_the_quoted_etag_and_an_imf_fixdate() {
        let served = Served::new("f".into(), vec![1], "text/plain", content_hash(&[1]), 784_111_777_999);
        assert_eq!(served.headers[header::LAST_MODIFIED], "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(served.headers[header::ETAG], served.etag());
        let names: Vec<_> = served.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type", "etag", "last-modified", "cache-control"]);
        assert_eq!(served.headers[header::CACHE_CONTROL], "private, no-cache");
        assert!(served.etag().starts_with('"') && served.etag().ends_with('"') && served.etag().len() == 34);
        assert_eq!((served.file(), served.hash()), ("f", content_hash(&[1]).as_str()));
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
    fn the_clock_queue_stays_bounded_while_devices_are_dropped_and_cached_again() {
        let one = file_of(0).cost(8);
        let cache = RenderCache::default().with_max_bytes((one * 50) as u64);
        for round in 0..200u32 {
            for n in 0..40 {
                cache.insert_device_file(cache.generation(), mac(n), format!("{n:07}.cfg"), file_of(n));
                cache.device_file(mac(n), &format!("{n:07}.cfg"));
            }
            // Edits drop half of them; they are cached again next round.
            for n in (round % 2..40).step_by(2) {
                cache.invalidate_device(mac(n));
            }
            let devices = cache.devices.read().unwrap();
            assert!(devices.queue.len() <= 2 * devices.map.len() + 64 + 1, "queue {}", devices.queue.len());
            assert!(devices.bytes <= one * 50);
            let counted: usize = devices.map.values().map(|e| e.bytes).sum();
            assert_eq!(counted, devices.bytes, "the total is the sum of the entries");
        }
    }

    #[test]
    fn eviction_takes_the_oldest_unserved_device_first() {
        // Ten devices whose files all cost the same, and room for exactly ten.
        let name = |n: u32| format!("{n:07}.cfg");
        let room: usize = (10..20).map(|n| file_of(n).cost(11)).sum();
        let cache = RenderCache::default().with_max_bytes(room as u64);
        for n in 10..20 {
            cache.insert_device_file(cache.generation(), mac(n), name(n), file_of(n));
        }
        // Device 10 is served again; device 11 is not: the eleventh evicts 11, not 10.
        assert!(cache.device_file(mac(10), &name(10)).is_some());
        cache.insert_device_file(cache.generation(), mac(20), name(20), file_of(20));
        assert!(cache.device_file(mac(10), &name(10)).is_some(), "served since: kept");
        assert!(cache.device_file(mac(11), &name(11)).is_none(), "oldest unserved: evicted");
        assert!(cache.device_file(mac(12), &name(12)).is_some(), "evicted no more than needed");
        assert!(cache.device_bytes() <= room);
    }

    #[test]
    fn the_change_table_keeps_one_small_entry_per_file() {
        let cache = RenderCache::default();
        for n in 0..1000 {
            let m = mac(n);
            let hash = content_hash(&n.to_be_bytes());
            assert_eq!(cache.note_content(m, &format!("{m}.cfg"), &hash, 1_000).0, 1_000);
            assert_eq!(cache.note_content(m, "common.cfg", &hash, 2_000).0, 2_000, "a file of its own");
        }
        assert_eq!(cache.change_times(), 2000);
        for n in 0..1000 {
            let m = mac(n);
            let hash = content_hash(&n.to_be_bytes());
            assert_eq!(cache.note_content(m, &format!("{m}.cfg"), &hash, 5_000), (1_000, None));
        }
        assert!(std::mem::size_of::<(u64, ChangeState)>() <= 32);
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
