//! De-duplication: one NOTIFY per subscription, however often the phone repeats its SUBSCRIBE.
//!
//! Retransmissions with the same branch are absorbed by the SIP stack's server transaction.
//! Phones that give up on a transaction and send a *new* SUBSCRIBE (new branch and CSeq, same
//! Call-ID) within their ~5 s window (AudioCodes 420HD/440HD user manuals: "the phone resends
//! SUBSCRIBE messages for 5 seconds") are recognised here by Call-ID: they get a 200 with the To
//! tag of the first answer and no second NOTIFY. A MAC with a NOTIFY still in flight gets no
//! second one either, so a phone repeating itself costs one NOTIFY.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sipprov_model::Mac;

/// How long a subscription is remembered: longer than any phone's retry window.
const REMEMBER: Duration = Duration::from_secs(64);
/// At most this many remembered subscriptions; beyond it new ones are refused (and logged)
/// rather than letting a flood grow memory without bound.
const CAPACITY: usize = 100_000;

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
    /// The table is full.
    Overloaded,
}

#[derive(Default)]
struct Table {
    by_call_id: HashMap<String, (String, Instant)>,
    in_flight: HashMap<Mac, String>,
    last_purge: Option<Instant>,
}

/// The remembered subscriptions.
#[derive(Default)]
pub struct Dialogs {
    table: Mutex<Table>,
}

impl Dialogs {
    /// Claims a subscription; on [`Claim::New`] the caller must [`Dialogs::finished`] it after its NOTIFY.
    pub fn claim(&self, call_id: &str, mac: Option<Mac>, to_tag: &str) -> Claim {
        let now = Instant::now();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if t.last_purge.is_none_or(|p| now.duration_since(p) > Duration::from_secs(1)) {
            t.by_call_id.retain(|_, (_, at)| now.duration_since(*at) < REMEMBER);
            t.last_purge = Some(now);
        }
        if let Some((tag, _)) = t.by_call_id.get(call_id) {
            return Claim::Repeat { to_tag: tag.clone() };
        }
        if mac.is_some_and(|m| t.in_flight.contains_key(&m)) {
            return Claim::MacBusy;
        }
        if t.by_call_id.len() >= CAPACITY {
            return Claim::Overloaded;
        }
        t.by_call_id.insert(call_id.to_string(), (to_tag.to_string(), now));
        if let Some(m) = mac {
            t.in_flight.insert(m, call_id.to_string());
        }
        Claim::New
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
        let mac: Mac = "001565aabbcc".parse().unwrap();
        assert_eq!(d.claim("a", Some(mac), "t1"), Claim::New);
        assert_eq!(d.claim("a", Some(mac), "t2"), Claim::Repeat { to_tag: "t1".into() });
        assert_eq!(d.claim("b", Some(mac), "t3"), Claim::MacBusy);
        d.finished("a", Some(mac));
        assert_eq!(d.claim("b", Some(mac), "t3"), Claim::New);
        d.refused("b", Some(mac));
        assert_eq!(d.claim("b", None, "t4"), Claim::Repeat { to_tag: String::new() });
        assert_eq!(d.claim("c", Some(mac), "t5"), Claim::New);
        assert_eq!(d.len(), 3);
    }
}
