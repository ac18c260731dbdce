//! A small string map kept sorted, packed into one string.
//!
//! Settings hold a handful of keys per level, and the server keeps one set per device in
//! memory: a million devices' sets are most of what a large inventory holds. So a map is one
//! allocation: a header of numbers, then the texts. Keys are interned once for the whole
//! process and a map holds a key's number (two bytes), not the key; a key that finds the shared
//! table full is kept in the map's texts instead. Iteration is in key order (the order rendered
//! output depends on), and look-ups are binary searches.
//!
//! Until session 18 a map was a boxed slice of (shared `Arc<str>` key, `Box<str>` value): for
//! `bench/scale.sh`'s four line settings, 128 bytes of slice and four values of 16 bytes each
//! as mimalloc rounds them (184 bytes in five allocations); packed, the same set is 60 bytes in
//! one allocation of 64 (docs/benchmarks.md, "Session 18 run").
//!
//! The layout, every number written in base 128 as ASCII bytes (0 to 127, most significant
//! first), so the whole is a valid `str` whose texts slice out without a UTF-8 check:
//!
//! ```text
//! w (one byte: the width of every count and offset below, 1 to 9)
//! n (w bytes: the number of entries)
//! n × [key id (2 bytes), key end (w bytes), value end (w bytes)]
//! texts: per entry, its key when kept inline (id INLINE), then its value
//! ```
//!
//! An entry's texts start where the previous entry's value ends (0 for the first); the ends
//! are offsets into the texts. The empty map is the empty string (no allocation).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A key's number in the shared table ([`name`]); [`INLINE`] for a key a map keeps itself.
type KeyId = u16;

/// The id of a key kept in the map's own texts (not interned).
const INLINE: KeyId = (1 << 14) - 1;

/// Most distinct keys shared: the ids two base-128 digits can write, less [`INLINE`]. Past it
/// new keys are still stored, each map keeping its own copy. Setting names are a small
/// vocabulary (a few hundred), raw vendor parameters add some.
const MAX_INTERNED: usize = INLINE as usize;

/// Interned keys by id, in chunks allocated as the table grows, readable without a lock: every
/// look-up in a map reads the keys it compares here. Each key is leaked once, for the process's
/// life; the table is bounded by [`MAX_INTERNED`], and never shrank before either.
const CHUNK: usize = 1024;
static NAMES: [OnceLock<Box<[OnceLock<&'static str>; CHUNK]>>; MAX_INTERNED.div_ceil(CHUNK)] =
    [const { OnceLock::new() }; MAX_INTERNED.div_ceil(CHUNK)];

/// The key interned as `id`. Only ids [`intern`] handed out reach here, after it stored them.
fn name(id: KeyId) -> &'static str {
    let id = usize::from(id);
    NAMES.get(id / CHUNK).and_then(OnceLock::get).and_then(|chunk| chunk[id % CHUNK].get()).copied().unwrap_or("")
}

/// Keys each thread interned last, looked up before the shared set: [`RECENT_KEYS`] at most.
const RECENT_KEYS: usize = 32;

thread_local! {
    /// A thread's recently interned keys. Loading a million devices interns the same few keys
    /// millions of times; each went through the shared set's lock and a SipHash of the key,
    /// where a scan of a few keys, most of another length, finds it for a fraction of that.
    static RECENT: std::cell::RefCell<crate::Recent<(&'static str, KeyId), RECENT_KEYS>> =
        const { std::cell::RefCell::new(crate::Recent::new()) };
}

/// A key as a map holds it: its shared number, or its own text when the shared table is full.
/// `text` is the key either way (borrowed from the table for a shared one).
#[derive(Clone, Debug)]
pub(crate) struct Key<'a> {
    id: KeyId,
    text: Cow<'a, str>,
}

impl Key<'_> {
    /// The key's text.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

/// The shared number of `key`: a million devices setting `line.1.username` hold two bytes each
/// for it. A key the table has no room for is kept by the map itself.
pub(crate) fn intern(key: &str) -> Key<'static> {
    let recent = RECENT.with(|r| r.borrow().find(|(k, _)| *k == key).copied());
    if let Some((text, id)) = recent {
        return Key { id, text: Cow::Borrowed(text) };
    }
    let Some((text, id)) = intern_shared(key) else {
        return Key { id: INLINE, text: Cow::Owned(key.to_string()) };
    };
    RECENT.with(|r| r.borrow_mut().push((text, id)));
    Key { id, text: Cow::Borrowed(text) }
}

/// [`intern`] through the set every thread shares; `None` when it is full.
fn intern_shared(key: &str) -> Option<(&'static str, KeyId)> {
    static IDS: OnceLock<Mutex<HashMap<&'static str, KeyId>>> = OnceLock::new();
    let mut ids = IDS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((text, id)) = ids.get_key_value(key) {
        return Some((text, *id));
    }
    if ids.len() >= MAX_INTERNED {
        return None;
    }
    let id = KeyId::try_from(ids.len()).ok()?;
    let text: &'static str = Box::leak(Box::from(key));
    let idx = usize::from(id);
    let chunk = NAMES[idx / CHUNK].get_or_init(|| Box::new([const { OnceLock::new() }; CHUNK]));
    // Set once: ids are handed out in order under this lock.
    let _ = chunk[idx % CHUNK].set(text);
    ids.insert(text, id);
    Some((text, id))
}

/// String keys to string values, sorted by key, packed into one string (see the module
/// documentation). Changes go through a [`Builder`].
#[derive(Clone, Default)]
pub(crate) struct SortedMap(Box<str>);

/// Reads `w` base-128 digits at `at`.
fn number(bytes: &[u8], at: usize, w: usize) -> usize {
    bytes[at..at + w].iter().fold(0, |n, &d| n << 7 | usize::from(d))
}

/// Writes `n` as `w` base-128 digits.
fn put_number(out: &mut String, n: usize, w: usize) {
    for i in (0..w).rev() {
        // Below 128: one ASCII byte.
        out.push(char::from(((n >> (7 * i)) & 0x7f) as u8));
    }
}

/// Maps of at most this many entries are searched entry by entry (see [`SortedMap::find`]).
const LINEAR: usize = 8;

/// Where a map's parts are.
#[derive(Clone, Copy)]
struct Shape {
    /// The width of counts and offsets.
    w: usize,
    /// The number of entries.
    n: usize,
    /// Where the texts start.
    texts: usize,
}

impl SortedMap {
    fn shape(&self) -> Shape {
        let bytes = self.0.as_bytes();
        let Some(&w) = bytes.first() else { return Shape { w: 1, n: 0, texts: 0 } };
        let w = usize::from(w);
        let n = number(bytes, 1, w);
        Shape { w, n, texts: 1 + w + n * (2 + 2 * w) }
    }

    /// Entry `i`'s id and the offsets of its key's end and value's end, with its start.
    fn slots(&self, s: Shape, i: usize) -> (KeyId, usize, usize, usize) {
        let bytes = self.0.as_bytes();
        let row = 2 + 2 * s.w;
        let at = 1 + s.w + i * row;
        let start = if i == 0 { 0 } else { number(bytes, at - s.w, s.w) };
        // Two base-128 digits: at most 16,383.
        let id = number(bytes, at, 2) as KeyId;
        (id, start, number(bytes, at + 2, s.w), number(bytes, at + 2 + s.w, s.w))
    }

    /// Entry `i`'s key: shared, or borrowed from this map.
    fn key_at(&self, s: Shape, i: usize) -> Key<'_> {
        let (id, start, key_end, _) = self.slots(s, i);
        let text = if id == INLINE { &self.0[s.texts + start..s.texts + key_end] } else { name(id) };
        Key { id, text: Cow::Borrowed(text) }
    }

    /// Entry `i`'s key text. A shared key needs only its id: the offsets are read for a key
    /// kept inline alone (a binary search reads a few keys per look-up, and a rendering looks up
    /// some fifty; decoding every offset of each was most of a look-up).
    fn key_text(&self, s: Shape, i: usize) -> &str {
        let bytes = self.0.as_bytes();
        let at = 1 + s.w + i * (2 + 2 * s.w);
        // Two base-128 digits: at most 16,383.
        let id = number(bytes, at, 2) as KeyId;
        if id != INLINE {
            return name(id);
        }
        let (_, start, key_end, _) = self.slots(s, i);
        &self.0[s.texts + start..s.texts + key_end]
    }

    fn value_at(&self, s: Shape, i: usize) -> &str {
        let (_, _, key_end, value_end) = self.slots(s, i);
        &self.0[s.texts + key_end..s.texts + value_end]
    }

    fn find(&self, key: &str) -> Option<(Shape, usize)> {
        let s = self.shape();
        if s.n <= LINEAR {
            // Keys are unique: the one equal to `key`, compared by length first. Most keys
            // looked for in a device's few settings are not there, and most of its keys differ
            // in length from the one looked for; a binary search ordered every key it met,
            // byte by byte (a campaign looks up some eleven keys per device: see
            // `Settings::layered`).
            return (0..s.n).find(|&i| self.key_text(s, i) == key).map(|i| (s, i));
        }
        let (mut lo, mut hi) = (0, s.n);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.key_text(s, mid).cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some((s, mid)),
            }
        }
        None
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.find(key).map(|(s, i)| self.value_at(s, i))
    }

    /// The entry of `key`, shared key included, for copying it to another map.
    pub(crate) fn entry(&self, key: &str) -> Option<(Key<'_>, &str)> {
        self.find(key).map(|(s, i)| (self.key_at(s, i), self.value_at(s, i)))
    }

    /// Changes the entries through a [`Builder`] holding them.
    fn change(&mut self, f: impl FnOnce(&mut Builder<'_>)) {
        let changed = {
            let mut builder = Builder(self.entries().map(|(k, v)| (k, Cow::Borrowed(v))).collect());
            f(&mut builder);
            builder.finish()
        };
        *self = changed;
    }

    pub(crate) fn insert(&mut self, key: &str, value: String) {
        self.change(|b| b.insert(key, value));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if self.find(key).is_some() {
            self.change(|b| b.remove(key));
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let s = self.shape();
        (0..s.n).map(move |i| (self.key_text(s, i), self.value_at(s, i)))
    }

    /// The entries with their shared keys, for copying them to another map.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Key<'_>, &str)> {
        let s = self.shape();
        (0..s.n).map(move |i| (self.key_at(s, i), self.value_at(s, i)))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        let s = self.shape();
        (0..s.n).map(move |i| self.key_text(s, i))
    }

    pub(crate) fn len(&self) -> usize {
        self.shape().n
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Nothing to release: a map is packed when built.
    pub(crate) fn shrink_to_fit(&mut self) {}
}

impl PartialEq for SortedMap {
    fn eq(&self, other: &SortedMap) -> bool {
        // The packing is the same for the same entries; compared entry by entry all the same,
        // so equality never depends on it.
        self.0 == other.0 || self.iter().eq(other.iter())
    }
}

impl Eq for SortedMap {}

impl std::fmt::Debug for SortedMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A [`SortedMap`] being built: a sorted vector of entries, packed once at the end. Values may
/// be borrowed from the maps being merged, so a merge copies each text once, into the result.
#[derive(Default)]
pub(crate) struct Builder<'a>(Vec<(Key<'a>, Cow<'a, str>)>);

impl<'a> Builder<'a> {
    /// A builder with room for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Builder<'a> {
        Builder(Vec::with_capacity(n))
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub(crate) fn insert(&mut self, key: &str, value: String) {
        self.insert_text(key, Cow::Owned(value));
    }

    /// [`Builder::insert`] with a value that may be borrowed (copied once, by
    /// [`Builder::finish`]).
    fn insert_text(&mut self, key: &str, value: Cow<'a, str>) {
        match self.position(key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (intern(key), value)),
        }
    }

    /// Inserts with a key another map already holds; later inserts of a key win.
    pub(crate) fn insert_shared(&mut self, key: Key<'a>, value: Cow<'a, str>) {
        match self.position(key.as_str()) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Ok(i) = self.position(key) {
            self.0.remove(i);
        }
    }

    pub(crate) fn finish(self) -> SortedMap {
        let entries = self.0;
        if entries.is_empty() {
            return SortedMap::default();
        }
        let inline = |k: &Key<'_>| if k.id == INLINE { k.text.len() } else { 0 };
        let texts: usize = entries.iter().map(|(k, v)| inline(k) + v.len()).sum();
        let largest = texts.max(entries.len());
        let mut w = 1;
        while w < 9 && largest >> (7 * w) != 0 {
            w += 1;
        }
        let mut out = String::with_capacity(1 + w + entries.len() * (2 + 2 * w) + texts);
        put_number(&mut out, w, 1);
        put_number(&mut out, entries.len(), w);
        let mut end = 0;
        for (k, v) in &entries {
            put_number(&mut out, usize::from(k.id), 2);
            end += inline(k);
            put_number(&mut out, end, w);
            end += v.len();
            put_number(&mut out, end, w);
        }
        for (k, v) in &entries {
            if k.id == INLINE {
                out.push_str(&k.text);
            }
            out.push_str(v);
        }
        SortedMap(out.into_boxed_str())
    }
}

impl FromIterator<(String, String)> for SortedMap {
    /// Later duplicates win, as with a map.
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        let mut map = Builder::default();
        for (k, v) in iter {
            map.insert(&k, v);
        }
        map.finish()
    }
}

impl serde::Serialize for SortedMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for SortedMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

/// Reads a JSON object straight into the builder (no intermediate map): the inventory decodes
/// one per device at start-up. Keys and values are taken as the deserializer holds them
/// ([`Text`]): borrowed from the input when it has no escapes, as a database row's JSON
/// usually has not, so a device's settings cost no allocation before the packed one.
struct MapVisitor;

impl<'de> serde::de::Visitor<'de> for MapVisitor {
    type Value = SortedMap;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of strings to strings")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<SortedMap, A::Error> {
        let mut map = Builder::with_capacity(access.size_hint().unwrap_or(0).min(256));
        while let Some((Text(k), Text(v))) = access.next_entry::<Text<'de>, Text<'de>>()? {
            map.insert_text(&k, v);
        }
        Ok(map.finish())
    }
}

/// A string as the deserializer gives it: borrowed from the input when it can be, copied
/// otherwise. (serde's own `Cow<str>` always copies.)
struct Text<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> serde::de::Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(m: &SortedMap) -> Vec<String> {
        m.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn behaves_like_an_ordered_map() {
        let mut m: SortedMap = [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into_iter().collect();
        m.insert("c", "3".into());
        m.insert("a", "one".into());
        m.remove("b");
        assert_eq!(shown(&m), ["a=one", "c=3"]);
        assert_eq!(m.get("c"), Some("3"));
        assert_eq!(m.get("b"), None);
        assert_eq!(m.len(), 2);
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":"one","c":"3"}"#);
        let back: SortedMap = serde_json::from_str(r#"{"c":"3","a":"one","c":"three"}"#).unwrap();
        assert_eq!(shown(&back), ["a=one", "c=three"]);
        m.remove("a");
        m.remove("c");
        assert!(m.is_empty() && m == SortedMap::default());
    }

    #[test]
    fn every_key_is_found_in_small_and_large_maps() {
        // Up to and past `LINEAR`: searched entry by entry, then by halves.
        let keys = ["a", "ab", "b", "line.1.username", "line.1.password", "line.1.registrar", "z", "é", "y.1", "x"];
        for n in 0..=keys.len() {
            let m: SortedMap = keys[..n].iter().map(|k| (k.to_string(), format!("v{k}"))).collect();
            for (i, k) in keys.iter().enumerate() {
                let want = (i < n).then(|| format!("v{k}"));
                assert_eq!(m.get(k).map(str::to_string), want, "{n} {k}");
            }
            for absent in ["", "0", "aa", "line.1", "line.1.usernamf", "zz", "é2"] {
                assert_eq!(m.get(absent), None, "{n} {absent}");
            }
        }
    }

    #[test]
    fn empty_values_and_texts_of_any_length_round_trip() {
        // Widths 1, 2 and 3 (texts past 127 and 16,383 bytes), empty values, non-ASCII texts.
        for len in [0, 1, 127, 128, 16_383, 16_384, 70_000] {
            let long = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let entries = [("a.empty", String::new()), ("b.long", long.clone()), ("c.ünï", "ß".to_string())];
            let m: SortedMap = entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
            assert_eq!(m.get("a.empty"), Some(""));
            assert_eq!(m.get("b.long"), Some(long.as_str()));
            assert_eq!(m.get("c.ünï"), Some("ß"));
            assert_eq!(m.keys().collect::<Vec<_>>(), ["a.empty", "b.long", "c.ünï"]);
        }
    }

    #[test]
    fn json_with_and_without_escapes_reads_the_same() {
        // Borrowed from the input (no escapes) and copied (escapes decoded), from a text and
        // from a reader (which never lends): the same map, later duplicates winning.
        let text = r#"{"b.plain":"pw1","a\"quoted":"x\\y\n","b.plain":"pw2"}"#;
        let from_text: SortedMap = serde_json::from_str(text).unwrap();
        let from_reader: SortedMap = serde_json::from_reader(text.as_bytes()).unwrap();
        assert_eq!(from_text, from_reader);
        assert_eq!(from_text.get("a\"quoted"), Some("x\\y\n"));
        assert_eq!(from_text.get("b.plain"), Some("pw2"));
        assert_eq!(from_text.len(), 2);
        assert!(serde_json::from_str::<SortedMap>(r#"{"a":1}"#).is_err(), "values are strings");
    }

    #[test]
    fn many_entries() {
        let m: SortedMap = (0..300).rev().map(|i| (format!("test.many.{i:03}"), i.to_string())).collect();
        assert_eq!(m.len(), 300);
        for i in 0..300 {
            assert_eq!(m.get(&format!("test.many.{i:03}")), Some(i.to_string().as_str()));
        }
        assert_eq!(m.get("test.many.300"), None);
        assert!(m.keys().zip(m.keys().skip(1)).all(|(a, b)| a < b));
    }

    #[test]
    fn keys_stay_shared_past_a_threads_recent_keys() {
        // More distinct keys than a thread remembers, then the first again: the same number.
        let first = intern("test.recent.0");
        for i in 1..(RECENT_KEYS * 3) {
            intern(&format!("test.recent.{i}"));
        }
        assert_eq!(first.id, intern("test.recent.0").id);
        assert_ne!(first.id, INLINE);
        let elsewhere = std::thread::spawn(|| intern("test.recent.0").id).join().unwrap();
        assert_eq!(first.id, elsewhere, "another thread finds the same number");
        assert_eq!(name(first.id), "test.recent.0");
    }

    #[test]
    fn keys_are_shared_between_maps() {
        let a: SortedMap = [("line.1.username".to_string(), "1".to_string())].into_iter().collect();
        let b: SortedMap = [("line.1.username".to_string(), "2".to_string())].into_iter().collect();
        let (ka, kb) = (a.entry("line.1.username").unwrap().0, b.entry("line.1.username").unwrap().0);
        assert_eq!(ka.id, kb.id);
        assert_ne!(ka.id, INLINE);
    }

    #[test]
    fn keys_not_shared_are_kept_in_the_map() {
        // What a map holds when the shared table is full: its own copy of the key.
        let mut b = Builder::default();
        b.insert_shared(Key { id: INLINE, text: Cow::Borrowed("zz.inline") }, Cow::Borrowed("v1"));
        b.insert("aa.shared", "v0".to_string());
        b.insert_shared(Key { id: INLINE, text: Cow::Borrowed("mm.inline") }, Cow::Borrowed(""));
        let mut m = b.finish();
        assert_eq!(shown(&m), ["aa.shared=v0", "mm.inline=", "zz.inline=v1"]);
        assert_eq!(m.entry("zz.inline").map(|(k, v)| (k.id, v)), Some((INLINE, "v1")));
        let copy = m.clone();
        m.insert("zz.inline", "v2".to_string());
        assert_eq!(shown(&m), ["aa.shared=v0", "mm.inline=", "zz.inline=v2"]);
        assert_ne!(m, copy);
        m.remove("mm.inline");
        assert_eq!(shown(&m), ["aa.shared=v0", "zz.inline=v2"]);
    }

    #[test]
    fn one_allocation_of_the_benchs_four_settings() {
        let m: SortedMap = [
            ("line.1.username", "110000"),
            ("line.1.password", "pw00100000"),
            ("line.1.registrar", "pbx.example.com"),
            ("line.1.display_name", "User 100000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // 2 bytes of header, 4 bytes an entry, 42 of values.
        assert_eq!(m.0.len(), 2 + 4 * 4 + 42);
    }
}
