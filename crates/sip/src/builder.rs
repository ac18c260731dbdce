//! [`RequestBuilder`]: out-of-dialog requests (check-sync NOTIFY, PnP NOTIFY, OPTIONS...) with
//! the mandatory headers of RFC 3261 §8.1.1 filled in: Via with `rport` and a fresh branch,
//! Max-Forwards 70, From with a generated tag, a random Call-ID, CSeq and Content-Length.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::headers::{Via, BRANCH_MAGIC};
use crate::message::Request;
use crate::transport::{advertised_port, Transport};
use crate::uri::Host;

/// A new random token (hex), for tags and Call-IDs.
pub fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A new Via branch: the RFC 3261 magic cookie, 64 random bits and a process-wide counter, so it
/// is unique across space and time (§8.1.1.7).
pub fn new_branch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{BRANCH_MAGIC}{:016x}{:x}", rand::random::<u64>(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Builds an out-of-dialog request.
///
/// ```
/// use sipprov_sip::{RequestBuilder, Transport};
/// let req = RequestBuilder::new("NOTIFY", "sip:100@192.0.2.10:5060")
///     .via(Transport::Udp, "192.0.2.1:5060".parse().unwrap())
///     .from("sip:prov@192.0.2.1")
///     .to("sip:100@192.0.2.10")
///     .contact("sip:prov@192.0.2.1:5060")
///     .header("Event", "check-sync;reboot=false")
///     .header("Subscription-State", "terminated")
///     .build();
/// let text = String::from_utf8(req.to_bytes()).unwrap();
/// assert!(text.starts_with("NOTIFY sip:100@192.0.2.10:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK"));
/// assert!(req.headers.from().unwrap().tag().is_some());
/// assert_eq!(req.headers.cseq().unwrap().unwrap().seq, 1);
/// assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: String,
    uri: String,
    via: Option<(Transport, SocketAddr)>,
    from: String,
    from_tag: String,
    to: String,
    contact: Option<String>,
    call_id: Option<String>,
    cseq: u32,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    body: Bytes,
    user_agent: Option<String>,
}

impl RequestBuilder {
    /// Starts a request; From and To default to the Request-URI until set.
    pub fn new(method: &str, uri: &str) -> RequestBuilder {
        RequestBuilder {
            method: method.to_owned(),
            uri: uri.to_owned(),
            via: None,
            from: format!("<{uri}>"),
            from_tag: random_token(),
            to: format!("<{uri}>"),
            contact: None,
            call_id: None,
            cseq: 1,
            headers: Vec::new(),
            content_type: None,
            body: Bytes::new(),
            user_agent: None,
        }
    }

    /// Our transport and address for the Via sent-by (the endpoint fills this in).
    pub fn via(mut self, transport: Transport, sent_by: SocketAddr) -> Self {
        self.via = Some((transport, sent_by));
        self
    }

    /// The From address: a bare URI (`sip:a@b`) or a full name-addr (`"Prov" <sip:a@b>`).
    pub fn from(mut self, addr: &str) -> Self {
        self.from = angle(addr);
        self
    }

    /// Overrides the generated From tag (e.g. to reuse the tag of a 200 OK to a SUBSCRIBE).
    pub fn from_tag(mut self, tag: &str) -> Self {
        self.from_tag = tag.to_owned();
        self
    }

    /// The To address (a bare URI or a name-addr, tag included if in a dialog).
    pub fn to(mut self, addr: &str) -> Self {
        self.to = angle(addr);
        self
    }

    /// The Contact URI or name-addr.
    pub fn contact(mut self, addr: &str) -> Self {
        self.contact = Some(angle(addr));
        self
    }

    /// Sets the Call-ID instead of a random one.
    pub fn call_id(mut self, id: &str) -> Self {
        self.call_id = Some(id.to_owned());
        self
    }

    /// Sets the CSeq number (default 1).
    pub fn cseq(mut self, seq: u32) -> Self {
        self.cseq = seq;
        self
    }

    /// Adds a header (Event, Subscription-State, Accept...).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.content_type = Some(content_type.to_owned());
        self.body = body.into();
        self
    }

    /// Sets the User-Agent header.
    pub fn user_agent(mut self, ua: &str) -> Self {
        self.user_agent = Some(ua.to_owned());
        self
    }

    /// Builds the request.
    pub fn build(self) -> Request {
        let mut req = Request::new(&self.method, &self.uri);
        req.headers = crate::message::Headers::with_capacity(512, 12);
        let h = &mut req.headers;
        let host = match self.via {
            Some((transport, addr)) => {
                let via = Via::new(transport.as_str(), Host::from(addr.ip()), advertised_port(addr), &new_branch());
                h.push("Via", &via.to_string());
                Host::from(addr.ip()).to_string()
            }
            None => "sipprov.invalid".to_owned(),
        };
        h.push("Max-Forwards", "70");
        h.push("From", &format!("{};tag={}", self.from, self.from_tag));
        h.push("To", &self.to);
        h.push("Call-ID", &self.call_id.unwrap_or_else(|| format!("{}@{host}", random_token())));
        h.push("CSeq", &format!("{} {}", self.cseq, self.method));
        if let Some(c) = &self.contact {
            h.push("Contact", c);
        }
        for (name, value) in &self.headers {
            h.push(name, value);
        }
        if let Some(ua) = &self.user_agent {
            h.push("User-Agent", ua);
        }
        if let Some(ct) = &self.content_type {
            h.push("Content-Type", ct);
        }
        h.push("Content-Length", &self.body.len().to_string());
        req.body = self.body;
        req
    }
}

/// Wraps a bare URI in `<>` so that its parameters are not taken for header parameters.
fn angle(addr: &str) -> String {
    let a = addr.trim();
    if a.contains('<') {
        a.to_owned()
    } else {
        format!("<{a}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};

    #[test]
    fn built_request_parses_and_is_unique() {
        let build = || {
            RequestBuilder::new("NOTIFY", "sip:100@[2001:db8::1]:5062")
                .via(Transport::Tcp, "[2001:db8::2]:5070".parse().unwrap())
                .from("\"Prov\" <sip:prov@example.com>")
                .body("application/url", "http://x/y")
                .build()
        };
        let (a, b) = (build(), build());
        let Ok(Message::Request(p)) = parse(&a.to_bytes()) else { panic!("does not parse") };
        assert_eq!(p, a);
        assert_eq!(p.headers.content_length().unwrap(), Some(10));
        let via = p.headers.top_via().unwrap();
        assert_eq!(via.transport, "TCP");
        assert_eq!(via.rport(), Some(None));
        assert_ne!(via.branch(), b.headers.top_via().unwrap().branch());
        assert_ne!(a.headers.call_id().unwrap(), b.headers.call_id().unwrap());
        assert_ne!(a.headers.from().unwrap().tag(), b.headers.from().unwrap().tag());
    }
}
