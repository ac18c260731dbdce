//! The render cache, and when each file's content last changed.
//!
//! Rendered files are kept per device (and per model for common files) until
//! something they depend on changes: a device edit drops that device's files;
//! a group, global or template change drops everything. A generation counter
//! guards against a render that started before an invalidation being stored
//! after it, which would serve stale content until the next change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Rendered files and content change times.
#[derive(Default)]
pub struct RenderCache {
    generation: AtomicU64,
    devices: RwLock<HashMap<Mac, FileMap>>,
    models: RwLock<FileMap>,
    changes: Mutex<HashMap<(Mac, String), (String, i64)>>,
}

impl RenderCache {
    /// A cache seeded with the change times the store remembers.
    pub fn new(states: Vec<RenderedState>) -> RenderCache {
        let changes = states.into_iter().map(|s| ((s.mac, s.file), (s.hash, s.changed_at))).collect();
        RenderCache { changes: Mutex::new(changes), ..Default::default() }
    }

    /// The current generation; pass it back to the insert calls.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A device file by the (lower-cased) name it was requested under.
    pub fn device_file(&self, mac: Mac, requested: &str) -> Option<Arc<Served>> {
        self.devices.read().unwrap_or_else(|e| e.into_inner()).get(&mac)?.get(requested).cloned()
    }

    /// A model-scoped file by key.
    pub fn model_file(&self, key: &str) -> Option<Arc<Served>> {
        self.models.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// Stores a device file unless the cache was invalidated since `generation`.
    pub fn insert_device_file(&self, generation: u64, mac: Mac, requested: String, served: Arc<Served>) {
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        if self.generation() == generation {
            devices.entry(mac).or_default().insert(requested, served);
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
        devices.remove(&mac);
    }

    /// Drops everything (a group, the global settings or a template changed).
    pub fn invalidate_all(&self) {
        let mut devices = self.devices.write().unwrap_or_else(|e| e.into_inner());
        let mut models = self.models.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        devices.clear();
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
        let key = (mac, file.to_string());
        let changed_at = match changes.get(&key) {
            Some((old, at)) if old == hash => return (*at, None),
            Some((_, at)) => now_ms.max(next_second(*at)),
            None => now_ms,
        };
        changes.insert(key, (hash.to_string(), changed_at));
        let state = RenderedState { mac, file: file.to_string(), hash: hash.to_string(), changed_at };
        (changed_at, Some(state))
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
