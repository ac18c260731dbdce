//! A small string map kept as a sorted vector.
//!
//! Settings hold a handful of keys per level, and the server keeps one set per device in
//! memory: a sorted vector costs about a third of a `BTreeMap` for that size (one
//! allocation, no node slack), iterates in the same stable key order, and looks up by
//! binary search. Keys are interned: every map holding a key shares one copy of it.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// A key: shared by every map holding it (see [`intern`]).
pub(crate) type Key = Arc<str>;
/// A value: a boxed string, without a `String`'s spare capacity word.
pub(crate) type Value = Box<str>;

/// Most distinct keys shared; past it new keys are still stored, each in its own allocation.
/// Setting names are a small vocabulary (a few hundred), raw vendor parameters add some.
const MAX_INTERNED: usize = 16_384;

/// Keys each thread interned last, looked up before the shared set: [`RECENT_KEYS`] at most.
const RECENT_KEYS: usize = 32;

thread_local! {
    /// A thread's recently interned keys. Loading a million devices interns the same few keys
    /// millions of times; each went through the shared set's lock and a SipHash of the key,
    /// where a scan of a few keys, most of another length, finds it for a fraction of that.
    static RECENT: std::cell::RefCell<(Vec<Key>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// The shared copy of `key`: a million devices setting `line.1.username` hold one string.
pub(crate) fn intern(key: &str) -> Key {
    let recent = RECENT.with(|r| r.borrow().0.iter().find(|k| ***k == *key).cloned());
    if let Some(k) = recent {
        return k;
    }
    let k = intern_shared(key);
    RECENT.with(|r| {
        let (keys, next) = &mut *r.borrow_mut();
        if keys.len() < RECENT_KEYS {
            keys.push(k.clone());
        } else {
            keys[*next] = k.clone();
            *next = (*next + 1) % RECENT_KEYS;
        }
    });
    k
}

/// [`intern`] through the set every thread shares.
fn intern_shared(key: &str) -> Key {
    static KEYS: OnceLock<Mutex<HashSet<Key>>> = OnceLock::new();
    let mut keys = KEYS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = keys.get(key) {
        return k.clone();
    }
    let k: Key = Arc::from(key);
    if keys.len() < MAX_INTERNED {
        keys.insert(k.clone());
    }
    k
}

/// String keys to string values, sorted by key. A boxed slice rather than a vector: a
/// million devices' settings each save the capacity word, which takes a device record from
/// one allocator size class down to the one below. Changes go through a [`Builder`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SortedMap(Box<[(Key, Value)]>);

fn find(entries: &[(Key, Value)], key: &str) -> Result<usize, usize> {
    entries.binary_search_by(|(k, _)| Borrow::<str>::borrow(k).cmp(key))
}

impl SortedMap {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        find(&self.0, key).ok().map(|i| &*self.0[i].1)
    }

    /// The entry of `key`, shared key included, for copying it to another map.
    pub(crate) fn entry(&self, key: &str) -> Option<&(Key, Value)> {
        find(&self.0, key).ok().map(|i| &self.0[i])
    }

    /// Changes the entries through a [`Builder`] (one reallocation at most to finish).
    fn change(&mut self, f: impl FnOnce(&mut Builder)) {
        let mut builder = Builder(std::mem::take(&mut self.0).into_vec());
        f(&mut builder);
        *self = builder.finish();
    }

    pub(crate) fn insert(&mut self, key: &str, value: String) {
        match find(&self.0, key) {
            Ok(i) => self.0[i].1 = value.into_boxed_str(),
            Err(_) => self.change(|b| b.insert(key, value)),
        }
    }

    /// Inserts with a key another map already shares.
    pub(crate) fn insert_shared(&mut self, key: Key, value: Value) {
        match find(&self.0, &key) {
            Ok(i) => self.0[i].1 = value,
            Err(_) => self.change(|b| b.insert_shared(key, value)),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Ok(i) = find(&self.0, key) {
            self.change(|b| {
                b.0.remove(i);
            });
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The entries with their shared keys, for copying them to another map.
    pub(crate) fn entries(&self) -> &[(Key, Value)] {
        &self.0
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Nothing to release: a boxed slice has no spare capacity.
    pub(crate) fn shrink_to_fit(&mut self) {}
}

/// A [`SortedMap`] being built: a growable vector, boxed once at the end.
#[derive(Default)]
pub(crate) struct Builder(Vec<(Key, Value)>);

impl Builder {
    /// A builder with room for `n` entries.
    pub(crate) fn with_capacity(n: usize) -> Builder {
        Builder(Vec::with_capacity(n))
    }

    pub(crate) fn insert(&mut self, key: &str, value: String) {
        match find(&self.0, key) {
            Ok(i) => self.0[i].1 = value.into_boxed_str(),
            Err(i) => self.0.insert(i, (intern(key), value.into_boxed_str())),
        }
    }

    /// Inserts with a key another map already shares; later inserts of a key win.
    pub(crate) fn insert_shared(&mut self, key: Key, value: Value) {
        match find(&self.0, &key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub(crate) fn finish(self) -> SortedMap {
        SortedMap(self.0.into_boxed_slice())
    }
}

impl IntoIterator for SortedMap {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
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

impl FromIterator<(Key, Value)> for SortedMap {
    /// Later duplicates win, as with a map.
    fn from_iter<T: IntoIterator<Item = (Key, Value)>>(iter: T) -> Self {
        let mut map = Builder::default();
        for (k, v) in iter {
            map.insert_shared(k, v);
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

/// Reads a JSON object straight into the sorted vector (no intermediate map): the inventory
/// decodes one per device at start-up.
struct MapVisitor;

impl<'de> serde::de::Visitor<'de> for MapVisitor {
    type Value = SortedMap;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map of strings to strings")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<SortedMap, A::Error> {
        let mut map = Builder(Vec::with_capacity(access.size_hint().unwrap_or(0).min(256)));
        while let Some((k, v)) = access.next_entry::<std::borrow::Cow<'de, str>, String>()? {
            map.insert(&k, v);
        }
        Ok(map.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_an_ordered_map() {
        let mut m: SortedMap = [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into_iter().collect();
        m.insert("c", "3".into());
        m.insert("a", "one".into());
        m.remove("b");
        assert_eq!(m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["a=one", "c=3"]);
        assert_eq!(m.get("c"), Some("3"));
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":"one","c":"3"}"#);
        let back: SortedMap = serde_json::from_str(r#"{"c":"3","a":"one","c":"three"}"#).unwrap();
        assert_eq!(back.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["a=one", "c=three"]);
    }

    #[test]
    fn keys_stay_shared_past_a_threads_recent_keys() {
        // More distinct keys than a thread remembers, then the first again: the same copy.
        let first = intern("test.recent.0");
        for i in 1..(RECENT_KEYS * 3) {
            intern(&format!("test.recent.{i}"));
        }
        assert!(Arc::ptr_eq(&first, &intern("test.recent.0")));
        let elsewhere = std::thread::spawn(|| intern("test.recent.0")).join().unwrap();
        assert!(Arc::ptr_eq(&first, &elsewhere), "another thread finds the same copy");
    }

    #[test]
    fn keys_are_shared_between_maps() {
        let a: SortedMap = [("line.1.username".to_string(), "1".to_string())].into_iter().collect();
        let b: SortedMap = [("line.1.username".to_string(), "2".to_string())].into_iter().collect();
        assert!(Arc::ptr_eq(&a.entries()[0].0, &b.entries()[0].0));
    }
}
