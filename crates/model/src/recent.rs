//! A thread's last few look-ups, kept in front of a slower shared one.

/// The last `N` items a thread found, the oldest replaced first: the interned names
/// ([`crate::Name`]), the settings keys and the server's vendor and model look-ups each keep
/// one per thread, where a scan of a few items costs less than a lock and a hash.
///
/// ```
/// use sipprov_model::Recent;
/// let mut recent: Recent<u32, 2> = Recent::new();
/// recent.push(1);
/// recent.push(2);
/// recent.push(3); // replaces 1, the oldest
/// assert_eq!(recent.find(|n| **n == 1), None);
/// assert_eq!(recent.find(|n| **n == 3), Some(&3));
/// ```
pub struct Recent<T, const N: usize> {
    items: Vec<T>,
    next: usize,
}

impl<T, const N: usize> Recent<T, N> {
    /// An empty list (no allocation until the first push).
    pub const fn new() -> Recent<T, N> {
        Recent { items: Vec::new(), next: 0 }
    }

    /// The first item `matches` accepts.
    pub fn find(&self, matches: impl FnMut(&&T) -> bool) -> Option<&T> {
        self.items.iter().find(matches)
    }

    /// Keeps `item`, in place of the oldest once `N` are kept.
    pub fn push(&mut self, item: T) {
        if self.items.len() < N {
            self.items.push(item);
        } else if let Some(slot) = self.items.get_mut(self.next) {
            *slot = item;
            self.next = (self.next + 1) % N;
        }
    }
}

impl<T, const N: usize> Default for Recent<T, N> {
    fn default() -> Recent<T, N> {
        Recent::new()
    }
}
