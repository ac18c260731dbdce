//! A small string map kept as a sorted vector.
//!
//! Settings hold a handful of keys per level, and the server keeps one set per device in
//! memory: a sorted vector costs about a third of a `BTreeMap` for that size (one
//! allocation, no node slack), iterates in the same stable key order, and looks up by
//! binary search.

use std::borrow::Borrow;

/// String keys to string values, sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SortedMap(Vec<(String, String)>);

impl SortedMap {
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| Borrow::<str>::borrow(k).cmp(key))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    pub(crate) fn insert(&mut self, key: String, value: String) {
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

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
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
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl FromIterator<(String, String)> for SortedMap {
    /// Later duplicates win, as with a map.
    fn from_iter<T: IntoIterator<Item = (String, String)>>(iter: T) -> Self {
        let mut map = SortedMap::default();
        for (k, v) in iter {
            map.insert(k, v);
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
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_an_ordered_map() {
        let mut m: SortedMap = [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into_iter().collect();
        m.insert("c".into(), "3".into());
        m.insert("a".into(), "one".into());
        m.remove("b");
        assert_eq!(m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["a=one", "c=3"]);
        assert_eq!(m.get("c").map(String::as_str), Some("3"));
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":"one","c":"3"}"#);
    }
}
