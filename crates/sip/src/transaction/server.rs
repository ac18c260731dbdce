//! The non-INVITE server transaction (RFC 3261 §17.2.2): retransmitted requests are matched by
//! branch, sent-by and method (§17.2.3) and answered with the last response again; the state is
//! kept for Timer J (64·T1 on UDP, 0 on TCP and TLS). Also where responses go (§18.2.2, RFC 3581 §4).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::admission::RequestLimits;
use crate::error::ParseError;
use crate::headers::{Via, BRANCH_MAGIC};
use crate::message::{Request, Response};
use crate::transport::{Target, Transport};

/// Identifies a server transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261 branch (magic cookie present).
    Rfc3261 { branch: String, sent_by: String, method: String },
    /// RFC 2543 peers: no usable branch, so the identifying headers are used (§17.2.3).
    Rfc2543 { call_id: String, cseq: String, from_tag: String, top_via: String, method: String },
}

impl ServerKey {
    /// The branch (empty for an RFC 2543 peer) and method, for events and logs.
    pub(crate) fn labels(&self) -> (&str, &str) {
        match self {
            ServerKey::Rfc3261 { branch, method, .. } => (branch, method),
            ServerKey::Rfc2543 { method, .. } => ("", method),
        }
    }

    pub(crate) fn of(req: &Request, top: &Via) -> Result<ServerKey, ParseError> {
        match top.branch() {
            Some(b) if b.starts_with(BRANCH_MAGIC) => Ok(ServerKey::Rfc3261 {
                branch: b.to_owned(),
                sent_by: top.sent_by().to_ascii_lowercase(),
                method: req.method.clone(),
            }),
            _ => Ok(ServerKey::Rfc2543 {
                call_id: req.headers.call_id()?,
                cseq: req.headers.cseq()?.map(|c| c.seq.to_string()).unwrap_or_default(),
                from_tag: req.headers.from()?.tag().unwrap_or_default().to_owned(),
                top_via: top.to_string(),
                method: req.method.clone(),
            }),
        }
    }
}

/// What the dispatcher should do with a received request.
pub(crate) enum Seen {
    /// First time: hand it to the application.
    New,
    /// A retransmission: resend this response, if one was sent already.
    Retransmission(Option<(Bytes, Target)>),
}

/// The server transactions, bounded: at most [`RequestLimits::max_server_transactions`]
/// entries and [`RequestLimits::max_kept_response_bytes`] of kept responses; past either, the
/// transaction touched longest ago is forgotten first.
///
/// An entry costs about a hundred bytes plus its response: the key is kept as a 64-bit keyed
/// hash (SipHash under a per-process random key, so no sender can make two keys collide on
/// purpose) rather than its strings, and expiry is a deadline swept in touch order as requests
/// arrive, not a timer task per transaction.
pub(crate) struct ServerTable {
    hasher: RandomState,
    max_entries: usize,
    max_bytes: usize,
    state: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    /// Fingerprints in the order they were last touched, with the touch number; an item whose
    /// number is not its entry's any more is stale and skipped.
    order: VecDeque<(u64, u64)>,
    touches: u64,
    bytes: usize,
    evicted: u64,
}

struct Entry {
    touch: u64,
    expires: Instant,
    last: Option<(Bytes, Target)>,
}

impl ServerTable {
    pub(crate) fn new(limits: &RequestLimits) -> ServerTable {
        ServerTable {
            hasher: RandomState::new(),
            max_entries: limits.max_server_transactions.max(1),
            max_bytes: limits.max_kept_response_bytes,
            state: Mutex::new(Table::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks the request's transaction up; a new one is kept until `linger` from now, unless
    /// its response sets another deadline.
    pub(crate) fn on_request(&self, key: &ServerKey, now: Instant, linger: Duration) -> Seen {
        let fp = self.hasher.hash_one(key);
        let mut t = self.lock();
        t.sweep(now);
        if let Some(entry) = t.entries.get(&fp) {
            return Seen::Retransmission(entry.last.clone());
        }
        t.touch(fp, Entry { touch: 0, expires: now + linger, last: None });
        t.bound(self.max_entries, self.max_bytes);
        Seen::New
    }

    /// Keeps the response sent for a retransmitted request; a final one (`linger` given)
    /// starts Timer J: the transaction is forgotten `linger` from now (at once when zero).
    pub(crate) fn record_response(&self, key: &ServerKey, data: Bytes, target: Target, linger: Option<Duration>) {
        let fp = self.hasher.hash_one(key);
        let mut t = self.lock();
        let Some(mut entry) = t.remove(fp) else { return };
        if linger.is_some_and(|l| l.is_zero()) {
            return;
        }
        if let Some(l) = linger {
            entry.expires = Instant::now() + l;
        }
        t.bytes += data.len();
        entry.last = Some((data, target));
        t.touch(fp, entry);
        t.bound(self.max_entries, self.max_bytes);
    }

    /// Transactions remembered (expired ones are swept first).
    pub(crate) fn len(&self) -> usize {
        let mut t = self.lock();
        t.sweep(Instant::now());
        t.entries.len()
    }

    /// Transactions forgotten early to keep the table within its bounds.
    pub(crate) fn evicted(&self) -> u64 {
        self.lock().evicted
    }
}

impl Table {
    /// (Re)inserts `entry` as the most recently touched.
    fn touch(&mut self, fp: u64, mut entry: Entry) {
        self.touches += 1;
        entry.touch = self.touches;
        self.order.push_back((fp, self.touches));
        self.entries.insert(fp, entry);
        // Stale items pile up behind a live one that has not expired; keep them few.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|(fp, touch)| entries.get(fp).is_some_and(|e| e.touch == *touch));
        }
    }

    fn remove(&mut self, fp: u64) -> Option<Entry> {
        let entry = self.entries.remove(&fp)?;
        if let Some((data, _)) = &entry.last {
            self.bytes -= data.len();
        }
        Some(entry)
    }

    /// The live entry at the front of the touch order, dropping stale items on the way.
    fn front(&mut self) -> Option<(u64, Instant)> {
        while let Some(&(fp, touch)) = self.order.front() {
            match self.entries.get(&fp) {
                Some(e) if e.touch == touch => return Some((fp, e.expires)),
                _ => {
                    self.order.pop_front();
                }
            }
        }
        None
    }

    /// Forgets the transactions at the front whose deadline has passed.
    fn sweep(&mut self, now: Instant) {
        while let Some((fp, expires)) = self.front() {
            if expires > now {
                return;
            }
            self.order.pop_front();
            self.remove(fp);
        }
    }

    /// Forgets the least recently touched transactions until both bounds hold.
    fn bound(&mut self, max_entries: usize, max_bytes: usize) {
        while self.entries.len() > max_entries || self.bytes > max_bytes {
            let Some((fp, _)) = self.front() else { return };
            self.order.pop_front();
            self.remove(fp);
            self.evicted += 1;
        }
    }
}

/// Adds `received` (and fills in `rport`) on the top Via as a server transport must
/// (§18.2.1, RFC 3581 §4), and returns the updated Via. A `received` the sender wrote itself is
/// replaced by the address we saw, or removed when none is due: it is no instruction to us.
pub(crate) fn stamp_top_via(req: &mut Request, source: SocketAddr) -> Result<Via, ParseError> {
    let mut top = req.headers.top_via()?;
    let rport_requested = top.rport().is_some();
    if rport_requested {
        top.params.set("rport", Some(&source.port().to_string()));
    }
    if rport_requested || top.host.ip() != Some(source.ip()) {
        top.params.set("received", Some(&source.ip().to_string()));
    } else {
        top.params.remove("received");
    }
    req.headers.replace_first_value("Via", &top.to_string())?;
    Ok(top)
}

/// Where the responses to a request go (§18.2.2 with RFC 3581): the same connection for TCP and
/// TLS; for UDP the source IP of the packet (the `received` we stamp, never one the sender
/// wrote, so a response cannot be aimed at a third party), and the source port when `rport` was
/// asked for, else the Via port.
pub(crate) fn response_target(top: &Via, source: SocketAddr, local: SocketAddr, transport: Transport) -> Target {
    if transport.is_reliable() {
        return Target::new(source, transport);
    }
    let port = match top.rport() {
        Some(_) => source.port(),
        None => top.port.unwrap_or(5060),
    };
    Target::new(SocketAddr::new(source.ip(), port), transport).from_local(local)
}

/// Builds a response per §8.2.6: Via, From, Call-ID and CSeq copied, To copied with `to_tag`
/// added when it has none (except for 100 Trying).
pub(crate) fn build_response(req: &Request, status: u16, reason: &str, to_tag: &str) -> Response {
    let mut resp = Response::new(status, reason);
    for h in req.headers.iter().filter(|h| ["Via", "From", "Call-ID", "CSeq"].iter().any(|n| h.is(n))) {
        resp.headers.push_header(h);
    }
    let to = req.headers.get("To").map(|h| h.value().into_owned()).unwrap_or_default();
    let has_tag = req.headers.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_some();
    match (has_tag, status) {
        (false, 101..) => resp.headers.push("To", &format!("{to};tag={to_tag}")),
        _ => resp.headers.push("To", &to),
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    fn request(via: &str, to: &str) -> Request {
        let text = format!(
            "SUBSCRIBE sip:MAC%3a0004@224.0.1.75 SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/UDP proxy;branch=z9hG4bKp\r\n\
             From: <sip:MAC%3a0004@224.0.1.75>;tag=ph\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 20000 SUBSCRIBE\r\n\
             Event: ua-profile\r\nContent-Length: 0\r\n\r\n"
        );
        match parse(text.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn response_copies_headers_and_adds_to_tag() {
        let req = request("SIP/2.0/UDP 192.168.1.2:5080;branch=z9hG4bKa;rport", "<sip:MAC%3a0004@224.0.1.75>");
        let resp = build_response(&req, 200, "OK", "srv1");
        assert_eq!(resp.headers.vias().unwrap().len(), 2);
        assert_eq!(resp.headers.to().unwrap().tag(), Some("srv1"));
        assert_eq!(resp.headers.to().unwrap().uri, "sip:MAC%3a0004@224.0.1.75", "escape kept");
        assert_eq!(resp.headers.cseq().unwrap().unwrap().seq, 20000);
        assert_eq!(build_response(&req, 100, "Trying", "srv1").headers.to().unwrap().tag(), None);
        let tagged = request("SIP/2.0/UDP h;branch=z9hG4bKb", "<sip:x@y>;tag=old");
        assert_eq!(build_response(&tagged, 200, "OK", "new").headers.to().unwrap().tag(), Some("old"));
    }

    #[test]
    fn received_and_rport_are_stamped() {
        let src: SocketAddr = "192.168.1.2:40000".parse().unwrap();
        let local: SocketAddr = "0.0.0.0:5060".parse().unwrap();
        let mut req = request("SIP/2.0/UDP 192.168.1.2:5080;branch=z9hG4bKa;rport", "<sip:x@y>");
        let top = stamp_top_via(&mut req, src).unwrap();
        assert_eq!(top.rport(), Some(Some(40000)));
        assert_eq!(req.headers.vias().unwrap()[0].received(), Some("192.168.1.2"));
        assert_eq!(req.headers.vias().unwrap().len(), 2, "other Vias kept");
        assert_eq!(response_target(&top, src, local, Transport::Udp).addr, src);

        let mut req = request("SIP/2.0/UDP phone.example.com:5080;branch=z9hG4bKa", "<sip:x@y>");
        let top = stamp_top_via(&mut req, src).unwrap();
        assert_eq!(top.received(), Some("192.168.1.2"), "sent-by differs from the source");
        let target = response_target(&top, src, local, Transport::Udp);
        assert_eq!(target.addr, "192.168.1.2:5080".parse().unwrap());
        assert_eq!(target.local, Some(local), "answered from the socket it arrived on");
        assert_eq!(response_target(&top, src, local, Transport::Tcp).addr, src);
    }

    #[test]
    fn a_received_written_by_the_sender_is_not_trusted() {
        let src: SocketAddr = "192.168.1.2:40000".parse().unwrap();
        let local: SocketAddr = "0.0.0.0:5060".parse().unwrap();
        for via in [
            "SIP/2.0/UDP 192.168.1.2:5080;branch=z9hG4bKa;received=203.0.113.9",
            "SIP/2.0/UDP 192.168.1.2:5080;received=203.0.113.9;rport;branch=z9hG4bKa",
            "SIP/2.0/UDP victim.example.com:5080;branch=z9hG4bKa;received=203.0.113.9",
        ] {
            let mut req = request(via, "<sip:x@y>");
            let top = stamp_top_via(&mut req, src).unwrap();
            assert_eq!(response_target(&top, src, local, Transport::Udp).addr.ip(), src.ip(), "{via}");
            let stamped = req.headers.vias().unwrap()[0].clone();
            assert_ne!(stamped.received(), Some("203.0.113.9"), "{via}");
            assert!(!req.headers.get("Via").unwrap().value().contains("203.0.113.9"), "{via}");
        }
    }

    #[test]
    fn the_table_is_bounded_and_forgets_the_oldest_first() {
        let limits = RequestLimits { max_server_transactions: 3, max_kept_response_bytes: 100, ..Default::default() };
        let table = ServerTable::new(&limits);
        let key = |i: u32| ServerKey::Rfc3261 {
            branch: format!("z9hG4bK{i}"),
            sent_by: "h".into(),
            method: "OPTIONS".into(),
        };
        let (now, linger) = (Instant::now(), Duration::from_secs(64));
        for i in 0..10 {
            assert!(matches!(table.on_request(&key(i), now, linger), Seen::New));
        }
        assert_eq!((table.len(), table.evicted()), (3, 7));
        assert!(matches!(table.on_request(&key(9), now, linger), Seen::Retransmission(None)));
        assert!(matches!(table.on_request(&key(0), now, linger), Seen::New), "the oldest was forgotten");
        let target = Target::udp("192.0.2.1:5060".parse().unwrap());
        table.record_response(&key(9), Bytes::from(vec![b'x'; 60]), target.clone(), Some(linger));
        table.record_response(&key(8), Bytes::from(vec![b'y'; 60]), target.clone(), Some(linger));
        assert!(matches!(table.on_request(&key(9), now, linger), Seen::New), "over the byte budget: forgotten");
        assert!(matches!(table.on_request(&key(8), now, linger), Seen::Retransmission(Some(_))));
        table.record_response(&key(8), Bytes::new(), target, Some(Duration::ZERO));
        assert!(matches!(table.on_request(&key(8), now, linger), Seen::New), "linger zero: forgotten at once");
        let later = now + Duration::from_secs(65);
        assert!(matches!(table.on_request(&key(100), later, linger), Seen::New));
        assert_eq!(table.len(), 1, "expired transactions are swept");
    }

    #[test]
    fn keys_distinguish_transactions() {
        let a = request("SIP/2.0/UDP h:1;branch=z9hG4bKa", "<sip:x@y>");
        let b = request("SIP/2.0/UDP h:2;branch=z9hG4bKa", "<sip:x@y>");
        let old = request("SIP/2.0/UDP h:1;branch=1", "<sip:x@y>");
        let key = |r: &Request| ServerKey::of(r, &r.headers.top_via().unwrap()).unwrap();
        assert_ne!(key(&a), key(&b), "same branch, other sent-by");
        assert!(matches!(key(&old), ServerKey::Rfc2543 { .. }));
        let table = ServerTable::new(&RequestLimits::default());
        let (now, linger) = (Instant::now(), Duration::from_secs(64));
        assert!(matches!(table.on_request(&key(&a), now, linger), Seen::New));
        assert!(matches!(table.on_request(&key(&a), now, linger), Seen::Retransmission(None)));
    }
}
