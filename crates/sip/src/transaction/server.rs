//! The non-INVITE server transaction (RFC 3261 §17.2.2): retransmitted requests are matched by
//! branch, sent-by and method (§17.2.3) and answered with the last response again; the state is
//! kept for Timer J (64·T1 on UDP, 0 on TCP and TLS). Also where responses go (§18.2.2, RFC 3581 §4).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use bytes::Bytes;

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

#[derive(Default)]
pub(crate) struct ServerTable {
    entries: Mutex<HashMap<ServerKey, Option<(Bytes, Target)>>>,
}

impl ServerTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServerKey, Option<(Bytes, Target)>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn on_request(&self, key: &ServerKey) -> Seen {
        let mut map = self.lock();
        match map.get(key) {
            Some(last) => Seen::Retransmission(last.clone()),
            None => {
                map.insert(key.clone(), None);
                Seen::New
            }
        }
    }

    pub(crate) fn record_response(&self, key: &ServerKey, data: Bytes, target: Target) {
        if let Some(slot) = self.lock().get_mut(key) {
            *slot = Some((data, target));
        }
    }

    pub(crate) fn remove(&self, key: &ServerKey) {
        self.lock().remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Adds `received` (and fills in `rport`) on the top Via as a server transport must
/// (§18.2.1, RFC 3581 §4), and returns the updated Via.
pub(crate) fn stamp_top_via(req: &mut Request, source: SocketAddr) -> Result<Via, ParseError> {
    let mut top = req.headers.top_via()?;
    let rport_requested = top.rport().is_some();
    if rport_requested {
        top.params.set("rport", Some(&source.port().to_string()));
    }
    if rport_requested || top.host.ip() != Some(source.ip()) {
        top.params.set("received", Some(&source.ip().to_string()));
    }
    req.headers.replace_first_value("Via", &top.to_string())?;
    Ok(top)
}

/// Where the responses to a request go (§18.2.2 with RFC 3581): the same connection for TCP and TLS;
/// for UDP the source IP, and the source port when `rport` was asked for, else the Via port.
pub(crate) fn response_target(top: &Via, source: SocketAddr, local: SocketAddr, transport: Transport) -> Target {
    if transport.is_reliable() {
        return Target::new(source, transport);
    }
    let port = match top.rport() {
        Some(_) => source.port(),
        None => top.port.unwrap_or(5060),
    };
    let ip = top.received().and_then(|r| r.parse().ok()).unwrap_or(source.ip());
    Target::new(SocketAddr::new(ip, port), transport).from_local(local)
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
    fn keys_distinguish_transactions() {
        let a = request("SIP/2.0/UDP h:1;branch=z9hG4bKa", "<sip:x@y>");
        let b = request("SIP/2.0/UDP h:2;branch=z9hG4bKa", "<sip:x@y>");
        let old = request("SIP/2.0/UDP h:1;branch=1", "<sip:x@y>");
        let key = |r: &Request| ServerKey::of(r, &r.headers.top_via().unwrap()).unwrap();
        assert_ne!(key(&a), key(&b), "same branch, other sent-by");
        assert!(matches!(key(&old), ServerKey::Rfc2543 { .. }));
        let table = ServerTable::default();
        assert!(matches!(table.on_request(&key(&a)), Seen::New));
        assert!(matches!(table.on_request(&key(&a)), Seen::Retransmission(None)));
    }
}
