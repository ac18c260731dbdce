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

/// The shared copy of `key`: a million devices setting `line.1.username` hold one string.
pub(crate) fn intern(key: &str) -> Key {
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

/// String keys to string values, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SortedMap(Vec<(Key, Value)>);

impl SortedMap {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| Borrow::<str>::borrow(k).cmp(key))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.find(key).ok().map(|i| &*self.0[i].1)
    }

    /// The entry of `key`, shared key included, for copying it to another map.
    pub(crate) fn entry(&self, key: &str) -> Option<&(Key, Value)> {
        self.find(key).ok().map(|i| &self.0[i])
    }

    pub(crate) fn insert(&mut self, key: &str, value: String) {
        match self.find(key) {
            Ok(i) => self.0[i].1 = value.into_boxed_str(),
            Err(i) => self.0.insert(i, (intern(key), value.into_boxed_str())),
        }
    }

    /// Inserts with a key another map already shares.
    pub(crate) fn insert_shared(&mut self, key: Key, value: Value) {
        match self.find(&key) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    pub(crate) fn remove(&mut self, key: &str) {
        if let Ok(i) = self.find(key) {
            self.0.remove(i);
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

    pub(crate) fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl IntoIterator for SortedMap {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<(String, String)> for SortedMap {
    /// Later duplicates win, as with a map.
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        let mut map = SortedMap::default();
        for (k, v) in iter {
            map.insert(&k, v);
        }
        map.shrink_to_fit();
        map
    }
}

impl FromIterator<(Key, Value)> for SortedMap {
    /// Later duplicates win, as with a map.
    fn from_iter<T: IntoIterator<Item = (Key, Value)>>(iter: T) -> Self {
        let mut map = SortedMap::default();
        for (k, v) in iter {
            map.insert_shared(k, v);
        }
        map.shrink_to_fit();
        map
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
        let mut map = SortedMap(Vec::with_capacity(access.size_hint().unwrap_or(0).min(256)));
        while let Some((k, v)) = access.next_entry::<std::borrow::Cow<'de, str>, String>()? {
            map.insert(&k, v);
        }
        map.shrink_to_fit();
        Ok(map)
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
    fn keys_are_shared_between_maps() {
        let a: SortedMap = [("line.1.username".to_string(), "1".to_string())].into_iter().collect();
        let b: SortedMap = [("line.1.username".to_string(), "2".to_string())].into_iter().collect();
        assert!(Arc::ptr_eq(&a.entries()[0].0, &b.entries()[0].0));
    }
}
