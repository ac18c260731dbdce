//! Names many records share, kept once.
//!
//! A fleet has a handful of vendors, models and groups, and the server keeps every device's
//! record in memory: a million devices each owning `yealink`, `T46S` and `g7` were three
//! allocations and three 24-byte `String`s each. A [`Name`] is a shared, immutable copy (16
//! bytes in the record, no allocation of its own once the name is known); equal names made
//! anywhere in the process are one copy, up to [`MAX_SHARED`] of them.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

/// Most distinct names shared; past it a new name is still kept, in a copy of its own (a
/// fleet with more distinct group names than this pays an allocation per device for them).
const MAX_SHARED: usize = 4096;

/// Names each thread made last, looked up before the shared set (as settings keys are: loading
/// a million devices makes the same few names millions of times).
const RECENT: usize = 16;

thread_local! {
    static RECENT_NAMES: std::cell::RefCell<crate::Recent<Arc<str>, RECENT>> =
        const { std::cell::RefCell::new(crate::Recent::new()) };
}

/// A short text shared by the records that hold it: a vendor id, a model name, a group name.
/// Reads as a `str` (`Deref`), compares, hashes, prints and serializes as one.
///
/// ```
/// use sipprov_model::Name;
/// let a = Name::from("yealink");
/// let b = Name::from(String::from("yealink"));
/// assert_eq!(a, b);
/// assert_eq!(a, "yealink");
/// assert_eq!(a.len(), 7);
/// assert_eq!(serde_json::to_string(&a).unwrap(), r#""yealink""#);
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// The shared copy of `text`.
    pub fn new(text: &str) -> Name {
        let recent = RECENT_NAMES.with(|r| r.borrow().find(|n| ***n == *text).cloned());
        if let Some(n) = recent {
            return Name(n);
        }
        let shared = shared(text);
        RECENT_NAMES.with(|r| r.borrow_mut().push(shared.clone()));
        Name(shared)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `a` and `b` are one shared copy, hence the same text: two addresses compared,
    /// for memos keyed by names. A memo that keeps the `Name` keeps its copy alive, so the
    /// address cannot meanwhile be reused for another text. Equal names need not be one copy
    /// (past `MAX_SHARED`): a memo then only misses.
    pub fn same_copy(a: &Name, b: &Name) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

/// [`Name::new`] through the set every thread shares.
fn shared(text: &str) -> Arc<str> {
    static NAMES: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = names.get(text) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(text);
    if names.len() < MAX_SHARED {
        names.insert(n.clone());
    }
    n
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Default for Name {
    fn default() -> Name {
        Name::new("")
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Name {
        Name::new(&text)
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Name {
        Name::new(text)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0.to_string()
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        *self == *other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl PartialEq<Name> for String {
    fn eq(&self, other: &Name) -> bool {
        **self == *other.0
    }
}

impl serde::Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    /// Straight from the text the deserializer holds: a `Cow<str>` (serde's impl always makes
    /// it owned) or a `String` was an allocation and a copy per name, three per device record
    /// loaded at start-up.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

/// Makes a [`Name`] of a borrowed or transient string alike (`visit_str` receives both).
struct NameVisitor;

impl serde::de::Visitor<'_> for NameVisitor {
    type Value = Name;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a name")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Name, E> {
        Ok(Name::new(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_names_are_one_copy() {
        let a = Name::from("test.name.a");
        let elsewhere = std::thread::spawn(|| Name::from(String::from("test.name.a"))).join().unwrap();
        assert!(Arc::ptr_eq(&a.0, &elsewhere.0));
        assert_eq!(format!("{a} {a:?}"), r#"test.name.a "test.name.a""#);
        let back: Name = serde_json::from_str(r#""test.name.a""#).unwrap();
        assert!(Arc::ptr_eq(&a.0, &back.0));
    }
}
