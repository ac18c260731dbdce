//! [`RequestBuilder`]: out-of-dialog requests (check-sync NOTIFY, PnP NOTIFY, OPTIONS...) with
//! the mandatory headers of RFC 3261 §8.1.1 filled in: Via with `rport` and a fresh branch
//! (unless the endpoint that sends the request writes it, see [`RequestBuilder::call_id_host`]),
//! Max-Forwards 70, From with a generated tag, a random Call-ID, CSeq and Content-Length.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::headers::BRANCH_MAGIC;
use crate::message::{Headers, Request};
use crate::text::{push_decimal, push_hex, push_ip};
use crate::transport::{advertised_port, Transport};

/// A new random token (hex), for tags and Call-IDs.
pub fn random_token() -> String {
    let mut token = String::with_capacity(16);
    push_hex(&mut token, rand::random(), 16);
    token
}

/// A new Via branch: the RFC 3261 magic cookie, 64 random bits and a process-wide counter, so it
/// is unique across space and time (§8.1.1.7).
pub fn new_branch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut branch = String::with_capacity(BRANCH_MAGIC.len() + 24);
    branch.push_str(BRANCH_MAGIC);
    push_hex(&mut branch, rand::random(), 16);
    push_hex(&mut branch, COUNTER.fetch_add(1, Ordering::Relaxed), 0);
    branch
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
///
/// A request that an [`crate::Endpoint`] sends gets its Via there, with a fresh branch for each
/// transaction ([`crate::Endpoint::request`] builds it that way): it is built without one, our
/// address given for the Call-ID's host only.
///
/// ```
/// use sipprov_sip::RequestBuilder;
/// let req = RequestBuilder::new("NOTIFY", "sip:100@192.0.2.10:5060")
///     .call_id_host("192.0.2.1".parse().unwrap())
///     .header("Event", "check-sync")
///     .build();
/// assert!(req.headers.get("Via").is_none());
/// assert!(req.headers.call_id().unwrap().ends_with("@192.0.2.1"));
/// let text = String::from_utf8(req.to_bytes()).unwrap();
/// assert!(text.starts_with("NOTIFY sip:100@192.0.2.10:5060 SIP/2.0\r\nMax-Forwards: 70\r\n"));
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: String,
    uri: String,
    via: Option<(Transport, SocketAddr)>,
    /// The Call-ID's host when it is generated; `None`: the Via's, if any.
    call_id_host: Option<IpAddr>,
    /// `None`: the Request-URI in `<>`.
    from: Option<String>,
    /// `None`: a random tag.
    from_tag: Option<String>,
    /// `None`: the Request-URI in `<>`.
    to: Option<String>,
    contact: Option<String>,
    call_id: Option<String>,
    cseq: u32,
    /// Headers added with [`RequestBuilder::header`], in order, in one buffer.
    headers: Headers,
    content_type: Option<String>,
    body: Bytes,
    /// Shared: an endpoint gives every request its own, without a copy each.
    user_agent: Option<Arc<str>>,
}

impl RequestBuilder {
    /// Starts a request; From and To default to the Request-URI until set.
    pub fn new(method: &str, uri: &str) -> RequestBuilder {
        RequestBuilder {
            method: method.to_owned(),
            uri: uri.to_owned(),
            via: None,
            call_id_host: None,
            from: None,
            from_tag: None,
            to: None,
            contact: None,
            call_id: None,
            cseq: 1,
            // Room for a few headers such as Event and Subscription-State.
            headers: Headers::with_capacity(128, 4),
            content_type: None,
            body: Bytes::new(),
            user_agent: None,
        }
    }

    /// Writes a Via with our transport and address as its sent-by, `rport` and a fresh branch,
    /// for a request sent by other means than an [`crate::Endpoint`] (which writes its own Via
    /// for each transaction: see [`RequestBuilder::call_id_host`]). Its address is also the
    /// generated Call-ID's host, unless [`RequestBuilder::call_id_host`] names another.
    pub fn via(mut self, transport: Transport, sent_by: SocketAddr) -> Self {
        self.via = Some((transport, sent_by));
        self
    }

    /// Our address as the host of the generated Call-ID (`random@host`, RFC 3261 §8.1.1.4),
    /// without writing a Via: for a request an [`crate::Endpoint`] sends, whose transaction
    /// layer writes the top Via (our sent-by and a fresh branch) for every transaction it
    /// starts, so that one written here would never be sent. With neither this nor
    /// [`RequestBuilder::via`] the host is `sipprov.invalid`.
    pub fn call_id_host(mut self, ip: IpAddr) -> Self {
        self.call_id_host = Some(ip);
        self
    }

    /// The From address: a bare URI (`sip:a@b`) or a full name-addr (`"Prov" <sip:a@b>`).
    pub fn from(mut self, addr: &str) -> Self {
        self.from = Some(addr.trim().to_owned());
        self
    }

    /// Overrides the generated From tag (e.g. to reuse the tag of a 200 OK to a SUBSCRIBE).
    pub fn from_tag(mut self, tag: &str) -> Self {
        self.from_tag = Some(tag.to_owned());
        self
    }

    /// The To address (a bare URI or a name-addr, tag included if in a dialog).
    pub fn to(mut self, addr: &str) -> Self {
        self.to = Some(addr.trim().to_owned());
        self
    }

    /// The Contact URI or name-addr.
    pub fn contact(mut self, addr: &str) -> Self {
        self.contact = Some(addr.trim().to_owned());
        self
    }

    /// [`RequestBuilder::contact`] with a URI written for this request and handed over, not
    /// copied (the endpoint's; it has no surrounding blanks).
    pub(crate) fn contact_owned(mut self, addr: String) -> Self {
        self.contact = Some(addr);
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
        self.headers.push(name, value);
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
        self.user_agent = Some(Arc::from(ua));
        self
    }

    /// [`RequestBuilder::user_agent`] with a shared text (the endpoint's), not a copy.
    pub(crate) fn shared_user_agent(mut self, ua: Arc<str>) -> Self {
        self.user_agent = Some(ua);
        self
    }

    /// Builds the request. Values are written straight into the header text: thousands of
    /// NOTIFYs per second are built here.
    pub fn build(self) -> Request {
        // Written piece by piece into one buffer: `format!` here used to cost more than the
        // rest of a campaign's work per NOTIFY.
        let mut h = Headers::with_capacity(384 + self.uri.len() * 2 + self.headers.text_len() + self.body.len(), 12);
        if let Some((transport, local)) = self.via {
            h.push_with("Via", |out| OurVia { transport, local, branch: &new_branch() }.write(out));
        }
        h.push("Max-Forwards", "70");
        let uri = &self.uri;
        h.push_with("From", |out| {
            push_angle(out, self.from.as_deref().unwrap_or(uri));
            out.push_str(";tag=");
            match &self.from_tag {
                Some(tag) => out.push_str(tag),
                None => push_hex(out, rand::random(), 16),
            }
        });
        h.push_with("To", |out| push_angle(out, self.to.as_deref().unwrap_or(uri)));
        h.push_with("Call-ID", |out| match &self.call_id {
            Some(id) => out.push_str(id),
            None => {
                push_hex(out, rand::random(), 16);
                out.push('@');
                match self.call_id_host.or(self.via.map(|(_, local)| local.ip())) {
                    Some(ip) => push_ip(out, ip),
                    None => out.push_str("sipprov.invalid"),
                }
            }
        });
        h.push_with("CSeq", |out| {
            push_decimal(out, u64::from(self.cseq));
            out.push(' ');
            out.push_str(&self.method);
        });
        if let Some(contact) = &self.contact {
            h.push_with("Contact", |out| push_angle(out, contact));
        }
        for header in self.headers.iter() {
            h.push_header(header);
        }
        if let Some(ua) = &self.user_agent {
            h.push("User-Agent", ua);
        }
        if let Some(ct) = &self.content_type {
            h.push("Content-Type", ct);
        }
        h.push_with("Content-Length", |out| push_decimal(out, self.body.len() as u64));
        Request { method: self.method, uri: self.uri, headers: h, body: self.body }
    }
}

/// Our Via value, `SIP/2.0/<transport> host[:port];branch=...;rport`, written without
/// building a [`crate::headers::Via`].
pub(crate) struct OurVia<'a> {
    /// The transport the request leaves on.
    pub transport: Transport,
    /// The sent-by address.
    pub local: SocketAddr,
    /// A fresh branch ([`new_branch`]).
    pub branch: &'a str,
}

impl OurVia<'_> {
    /// Appends the value to `out`.
    pub(crate) fn write(&self, out: &mut String) {
        out.push_str("SIP/2.0/");
        out.push_str(self.transport.as_str());
        out.push(' ');
        push_ip(out, self.local.ip());
        if let Some(port) = advertised_port(self.local) {
            out.push(':');
            push_decimal(out, u64::from(port));
        }
        out.push_str(";branch=");
        out.push_str(self.branch);
        out.push_str(";rport");
    }
}

impl fmt::Display for OurVia<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value = String::new();
        self.write(&mut value);
        f.write_str(&value)
    }
}

/// Appends a name-addr, wrapping a bare URI in `<>` so that its parameters are not taken for
/// header parameters.
fn push_angle(out: &mut String, addr: &str) {
    if addr.contains('<') {
        out.push_str(addr);
    } else {
        out.push('<');
        out.push_str(addr);
        out.push('>');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{parse, Message};
    use crate::uri::Host;

    #[test]
    fn our_via_matches_the_via_type() {
        for (transport, local) in [(Transport::Udp, "192.0.2.1:5060"), (Transport::Tls, "[2001:db8::2]:5071")] {
            let local: SocketAddr = local.parse().unwrap();
            let ours = OurVia { transport, local, branch: "z9hG4bKx" }.to_string();
            let typed = crate::headers::Via::new(
                transport.as_str(),
                Host::from(local.ip()),
                advertised_port(local),
                "z9hG4bKx",
            );
            assert_eq!(ours, typed.to_string());
        }
    }

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

    #[test]
    fn the_call_id_host_comes_without_a_via() {
        let ip: IpAddr = "2001:db8::2".parse().unwrap();
        let req = RequestBuilder::new("NOTIFY", "sip:100@192.0.2.10").call_id_host(ip).build();
        assert_eq!(req.headers.get_all("Via").count(), 0);
        assert_eq!(req.headers.iter().next().map(|h| h.name().to_owned()).as_deref(), Some("Max-Forwards"));
        let call_id = req.headers.call_id().unwrap();
        assert!(call_id.ends_with("@[2001:db8::2]"), "{call_id}");
        // The same host as a Via's would give; an explicit host wins over the Via's.
        let via =
            RequestBuilder::new("NOTIFY", "sip:100@192.0.2.10").via(Transport::Udp, SocketAddr::new(ip, 5060)).build();
        let via_host = via.headers.call_id().unwrap().split_once('@').map(|(_, h)| h.to_owned());
        assert_eq!(via_host.as_deref(), call_id.split_once('@').map(|(_, h)| h));
        let other = RequestBuilder::new("NOTIFY", "sip:100@192.0.2.10")
            .via(Transport::Udp, SocketAddr::new(ip, 5060))
            .call_id_host("192.0.2.1".parse().unwrap())
            .build();
        assert!(other.headers.call_id().unwrap().ends_with("@192.0.2.1"));
        let none = RequestBuilder::new("NOTIFY", "sip:100@192.0.2.10").build();
        assert!(none.headers.call_id().unwrap().ends_with("@sipprov.invalid"));
    }
}
