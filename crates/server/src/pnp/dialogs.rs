//! De-duplication: one NOTIFY per subscription, however often the phone repeats its SUBSCRIBE.
//!
//! Retransmissions with the same branch are absorbed by the SIP stack's server transaction.
//! Phones that give up on a transaction and send a *new* SUBSCRIBE (new branch and CSeq, same
//! Call-ID) within their ~5 s window (AudioCodes 420HD/440HD user manuals: "the phone resends
//! SUBSCRIBE messages for 5 seconds") are recognised here by Call-ID: they get a 200 with the To
//! tag of the first answer and no second NOTIFY. A MAC with a NOTIFY still in flight gets no
//! second one either, so a phone repeating itself costs one NOTIFY.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sipprov_model::Mac;

/// How long a subscription is remembered: longer than any phone's retry window.
const REMEMBER: Duration = Duration::from_secs(64);

/// What to do with a SUBSCRIBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A new subscription: answer, then NOTIFY.
    New,
    /// Seen before: answer 200 with this To tag (none when it was refused), send nothing more.
    Repeat {
        /// The To tag of the first answer.
        to_tag: String,
    },
    /// Another subscription of the same MAC has its NOTIFY in flight: answer 200, no NOTIFY.
    MacBusy,
    /// As many NOTIFYs as the table remembers subscriptions are in flight: a real overload.
    Overloaded,
}

/// The remembered subscriptions, oldest first in `order`, so that expiry and eviction take
/// them from the front instead of scanning the whole table.
#[derive(Default)]
struct Table {
    by_call_id: HashMap<Arc<str>, (String, Instant)>,
    order: VecDeque<Arc<str>>,
    in_flight: HashMap<Mac, String>,
    /// Claimed subscriptions not yet finished or refused, with a MAC or without.
    pending: usize,
}

impl Table {
    /// Forgets subscriptions older than [`REMEMBER`].
    fn expire(&mut self, now: Instant) {
        while let Some(oldest) = self.order.front() {
            if self.by_call_id.get(oldest).is_some_and(|(_, at)| now.duration_since(*at) < REMEMBER) {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Forgets the oldest remembered subscription; false when there was none.
    fn forget_oldest(&mut self) -> bool {
        let Some(oldest) = self.order.pop_front() else { return false };
        self.by_call_id.remove(&oldest);
        true
    }
}

/// The remembered subscriptions, at most `capacity` of them.
///
/// When the table is full, a new subscription makes the oldest one forgotten rather than being
/// ignored: a boot storm of more phones than the table holds within `REMEMBER` must still
/// get every phone its NOTIFY. What eviction costs is at most a second NOTIFY to a phone that
/// repeats a subscription older than the table's reach (at 10,000 new subscriptions a second
/// and the default capacity, one older than 10 s, twice any phone's retry window). Memory stays
/// bounded: at most `capacity` Call-IDs, and at most `capacity` NOTIFYs in flight, past which
/// SUBSCRIBEs are refused as [`Claim::Overloaded`].
pub struct Dialogs {
    table: Mutex<Table>,
    capacity: usize,
}

impl Default for Dialogs {
    fn default() -> Self {
        Dialogs::with_capacity(crate::config::DEFAULT_REMEMBERED_SUBSCRIPTIONS)
    }
}

impl Dialogs {
    /// A table remembering at most `capacity` subscriptions (at least one).
    pub fn with_capacity(capacity: usize) -> Dialogs {
        Dialogs { table: Mutex::new(Table::default()), capacity: capacity.max(1) }
    }

    /// Claims a subscription; on [`Claim::New`] the caller must [`Dialogs::finished`] it after
    /// its NOTIFY. The second value is true when a subscription younger than `REMEMBER` was
    /// forgotten to make room (for a rationed log line).
    pub fn claim(&self, call_id: &str, mac: Option<Mac>, to_tag: &str) -> (Claim, bool) {
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.expire(now);
        if let Some((tag, _)) = t.by_call_id.get(call_id) {
            return (Claim::Repeat { to_tag: tag.clone() }, false);
        }
        if mac.is_some_and(|m| t.in_flight.contains_key(&m)) {
            return (Claim::MacBusy, false);
        }
        if t.pending >= self.capacity {
            return (Claim::Overloaded, false);
        }
        // Past `expire`, whatever is forgotten here was younger than REMEMBER.
        let mut evicted = false;
        while t.by_call_id.len() >= self.capacity && t.forget_oldest() {
            evicted = true;
        }
        let key: Arc<str> = Arc::from(call_id);
        t.order.push_back(key.clone());
        t.by_call_id.insert(key, (to_tag.to_string(), now));
        t.pending += 1;
        if let Some(m) = mac {
            t.in_flight.insert(m, call_id.to_string());
        }
        (Claim::New, evicted)
    }

    /// A claimed subscription was refused: its repeats get [`Claim::Repeat`] with an empty tag,
    /// meaning "stay silent", so a refusal is recorded once, not once per retry.
    pub fn refused(&self, call_id: &str, mac: Option<Mac>) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = t.by_call_id.get_mut(call_id) {
            entry.0.clear();
        }
        release(&mut t, call_id, mac);
    }

    /// The NOTIFY of a subscription ended; its Call-ID stays remembered.
    pub fn finished(&self, call_id: &str, mac: Option<Mac>) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        release(&mut t, call_id, mac);
    }

    /// Remembered subscriptions (for tests).
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).by_call_id.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn release(t: &mut Table, call_id: &str, mac: Option<Mac>) {
    t.pending = t.pending.saturating_sub(1);
    if let Some(m) = mac {
        if t.in_flight.get(&m).is_some_and(|c| c == call_id) {
            t.in_flight.remove(&m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_notify_per_call_id_and_per_mac_in_flight() {
        let d = Dialogs::default();
        let claim = |call_id, mac, tag| d.claim(call_id, mac, tag).0;
        let mac: Mac = "001565aabbcc".parse().unwrap();
        assert_eq!(claim("a", Some(mac), "t1"), Claim::New);
        assert_eq!(claim("a", Some(mac), "t2"), Claim::Repeat { to_tag: "t1".into() });
        assert_eq!(claim("b", Some(mac), "t3"), Claim::MacBusy);
        d.finished("a", Some(mac));
        assert_eq!(claim("b", Some(mac), "t3"), Claim::New);
        d.refused("b", Some(mac));
        assert_eq!(claim("b", None, "t4"), Claim::Repeat { to_tag: String::new() });
        assert_eq!(claim("c", Some(mac), "t5"), Claim::New);
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn a_full_table_forgets_its_oldest_subscription_instead_of_ignoring_a_new_one() {
        let d = Dialogs::with_capacity(3);
        let mac = |i: u32| Some(format!("001565{i:06x}").parse::<Mac>().unwrap());
        for i in 0..3 {
            assert_eq!(d.claim(&format!("c{i}"), mac(i), "t"), (Claim::New, false));
            d.finished(&format!("c{i}"), mac(i));
        }
        // Full: the fourth is answered, the first forgotten (while still within REMEMBER).
        assert_eq!(d.claim("c3", mac(3), "t"), (Claim::New, true));
        assert_eq!(d.len(), 3);
        assert_eq!(d.claim("c1", mac(1), "x").0, Claim::Repeat { to_tag: "t".into() });
        assert_eq!(d.claim("c0", mac(0), "t").0, Claim::New, "forgotten: a new subscription again");
    }

    #[test]
    fn as_many_notifies_in_flight_as_the_capacity_is_an_overload() {
        let d = Dialogs::with_capacity(2);
        let mac = |i: u32| Some(format!("001565{i:06x}").parse::<Mac>().unwrap());
        assert_eq!(d.claim("a", mac(0), "t").0, Claim::New);
        assert_eq!(d.claim("b", mac(1), "t").0, Claim::New);
        assert_eq!(d.claim("c", mac(2), "t").0, Claim::Overloaded);
        d.finished("a", mac(0));
        assert_eq!(d.claim("c", mac(2), "t").0, Claim::New);
    }
}
