//! `sipprov-checksync`: check-sync, the out-of-dialog NOTIFY that tells a phone to
//! re-provision or reboot now: which Event a device gets, how the NOTIFY is built and addressed,
//! and what its transaction's end means for the operator ([`Outcome`]).
//!
//! # Why a crate of its own
//!
//! Check-sync needs the SIP stack (to build and send the NOTIFY), the vendors (their Event
//! table) and the model (settings, MACs), and nothing of a running server: no store, no
//! inventory, no HTTP. The one-shot `sipprov notify` command sends a NOTIFY from a throw-away
//! endpoint, and the server sends the same NOTIFY for `device notify` and campaigns; both use
//! this crate. It cannot live in `sipprov-sip`, which knows nothing of provisioning, nor in
//! `sipprov-vendors`, which renders files and knows nothing of SIP; here it sits above both and
//! below the server, so the command line no longer needs the server to send a NOTIFY.
//!
//! # The NOTIFY
//!
//! The NOTIFY carries what working senders send (message F1 of Yealink's "How to remote reboot
//! phone through SIP message", a BroadWorks NOTIFY; the examples in Gigaset's pro-wiki "FAQ - Auto
//! provisioning: Check-sync with reboot"): Request-URI and To naming the device's SIP account
//! (Gigaset ignores an anonymous check-sync), From with a tag, Call-ID, CSeq, Max-Forwards,
//! Contact, `Subscription-State: terminated`, `Content-Length: 0`.
//! A challenge (Snom `challenge_checksync`, Polycom digest request validation) is answered once
//! with the line's credentials by the SIP stack.
//!
//! The transport comes from the URI: `sips:` (RFC 5630) and `;transport=tls` mean TLS on
//! port 5061 by default, with the URI's host (or the proxy's) as the name the phone's
//! certificate must carry; whom that certificate is checked against is the endpoint's rustls
//! client configuration (given by the caller: the server's `sip_tls`, or `sipprov notify`'s
//! flags).
//!
//! ```
//! use sipprov_checksync::{device_event, Outcome};
//! use sipprov_model::{Mac, Settings};
//! assert_eq!(device_event("yealink", true, &Settings::new()).unwrap(), "check-sync;reboot=true");
//! let custom = Settings::parse_assignments(["sip.check_sync_event=check-sync;reboot=false;x=1"]).unwrap();
//! assert_eq!(device_event("polycom", false, &custom).unwrap(), "check-sync;reboot=false;x=1");
//! ```

#![warn(missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipprov_model::known;
use sipprov_model::{CheckSyncResult, Mac, SettingsView};
use sipprov_sip::uri::{parse_hostport, Host, SipUri, SipUriRef};
use sipprov_sip::{Credentials, Endpoint, Request, Response, Target, TransactionError, Transport, TransportError};

/// Said when a NOTIFY must go over TLS and the endpoint has no TLS client.
const NO_TLS_CLIENT: &str = "SIP over TLS is not set up: give the phones' CA ([sip.tls] ca, sipprov notify --tls-ca) \
     or accept any certificate ([sip.tls] insecure_skip_verify, --tls-insecure)";

/// Why a check-sync NOTIFY cannot be prepared: the crate's public functions say which part is
/// wrong; an [`Outcome`] carries the message as its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckSyncError {
    /// Neither the vendor's table nor a setting gives the Event to send.
    #[error("no check-sync event is known for vendor {vendor:?}; set {key}")]
    NoEvent {
        /// The device's vendor id.
        vendor: String,
        /// The setting that would give it (`sip.check_sync_event` or `sip.reboot_event`).
        key: &'static str,
    },
    /// A transport other than TLS was asked for a `sips:` URI.
    #[error("{uri} is a sips: URI, reached over TLS only, not {transport}")]
    SipsNeedsTls {
        /// The URI, its password redacted.
        uri: String,
        /// The transport asked for.
        transport: Transport,
    },
    /// The outbound proxy is not `host[:port]`.
    #[error("invalid proxy {proxy:?}: {why}")]
    InvalidProxy {
        /// The proxy as configured.
        proxy: String,
        /// What is wrong with it.
        why: String,
    },
    /// A host name did not resolve (or timed out, or has no address).
    #[error("{0}")]
    Resolve(String),
}

/// One NOTIFY to send.
#[derive(Debug, Clone)]
pub struct CheckSync {
    /// Request-URI, also used as To: the device's SIP account (contact or address of record).
    pub uri: String,
    /// The Event header value, e.g. `check-sync;reboot=false`.
    pub event: String,
    /// From URI; default `sip:sipprov@<our address>`.
    pub from: Option<String>,
    /// Send to this proxy/registrar (`host:port`) instead of the Request-URI's host.
    pub proxy: Option<String>,
    /// Transport; default from the URI (`sips:` or `transport=tls` → TLS, `transport=tcp` → TCP), else UDP.
    pub transport: Option<Transport>,
    /// Used once if the phone (or proxy) challenges.
    pub credentials: Option<Credentials>,
    /// Over TLS straight to the phone: the name its certificate must carry instead of the
    /// URI's host, e.g. its MAC for a vendor device certificate.
    pub tls_name: Option<String>,
}

/// How a NOTIFY ended, in the words an operator needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// `ok` (2xx), `rejected` (3xx–6xx), `timeout`, `unreachable`, `no-target`,
    /// `reboot-disabled` or `error`.
    pub result: CheckSyncResult,
    /// The final status code, when one arrived.
    pub status: Option<u16>,
    /// Reason phrase or error text.
    pub reason: String,
    /// Where the NOTIFY went (`udp:192.0.2.10:5060`).
    pub sent_to: Option<String>,
    /// The Event header sent.
    pub event: String,
}

impl Outcome {
    /// An outcome for a NOTIFY that could not even be sent.
    pub fn failed(result: CheckSyncResult, reason: String, event: &str) -> Outcome {
        Outcome { result, status: None, reason, sent_to: None, event: event.into() }
    }
}

/// The admin API reports an outcome as its contract type; a campaign's, with its campaign id.
impl From<Outcome> for sipprov_api::NotifyOutcome {
    fn from(o: Outcome) -> Self {
        sipprov_api::NotifyOutcome {
            result: o.result,
            status: o.status,
            reason: o.reason,
            sent_to: o.sent_to,
            event: o.event,
            campaign: None,
        }
    }
}

/// The name a device's TLS certificate must carry, from the `sip.tls_name` setting: `mac` for
/// the device's MAC (vendor device certificates: Polycom's is "unique to a device (based on the MAC
/// address)", Poly UC Software administrator's guide 5.9, "Using the factory installed certificate";
/// Yealink's is likewise based on the MAC, Yealink SIP-T48G administrator guide), `host` or nothing
/// for the URI's host, anything else as written.
///
/// ```
/// use sipprov_model::{Mac, Settings};
/// let mac: Mac = "00:15:65:aa:bb:cc".parse().unwrap();
/// let setting = |v: &str| Settings::parse_assignments([format!("sip.tls_name={v}").as_str()]).unwrap();
/// assert_eq!(sipprov_checksync::tls_name(mac, &setting("MAC")).as_deref(), Some("001565aabbcc"));
/// assert_eq!(sipprov_checksync::tls_name(mac, &setting("host")), None);
/// assert_eq!(sipprov_checksync::tls_name(mac, &setting("phone7.example.com")).as_deref(), Some("phone7.example.com"));
/// assert_eq!(sipprov_checksync::tls_name(mac, &Settings::new()), None);
/// ```
pub fn tls_name(mac: Mac, settings: &impl SettingsView) -> Option<String> {
    match known::SIP_TLS_NAME.get(settings) {
        None | Some("") | Some("host") => None,
        Some("mac") => Some(mac.to_string()),
        Some(name) => Some(name.to_owned()),
    }
}

/// The Event to send a device: a setting (`sip.check_sync_event` / `sip.reboot_event`)
/// overrides the vendor table (`sipprov_vendors::check_sync_event`).
pub fn device_event(vendor: &str, reboot: bool, settings: &impl SettingsView) -> Result<String, CheckSyncError> {
    let key = if reboot { &known::SIP_REBOOT_EVENT } else { &known::SIP_CHECK_SYNC_EVENT };
    if let Some(e) = key.get(settings) {
        return Ok(e.to_string());
    }
    sipprov_vendors::check_sync_event(vendor, reboot)
        .map(String::from)
        .ok_or_else(|| CheckSyncError::NoEvent { vendor: vendor.to_string(), key: key.name() })
}

/// Sends one check-sync NOTIFY and waits for its outcome.
pub async fn send(endpoint: &Endpoint, cs: &CheckSync) -> Outcome {
    match prepare(endpoint, cs, &mut Resolver::default()).await {
        Ok(ready) => {
            let result = endpoint.send_request(ready.request, ready.target, cs.credentials.as_ref()).await;
            outcome(result, &cs.event, ready.sent_to)
        }
        Err(outcome) => outcome,
    }
}

/// A check-sync NOTIFY built and addressed, ready to go out alone or in a batch.
#[derive(Debug)]
pub struct Ready {
    /// The NOTIFY.
    pub request: Request,
    /// Where it goes.
    pub target: Target,
    /// `transport:address`, as reported in the outcome.
    pub sent_to: String,
}

/// Builds and addresses the NOTIFY of `cs`, or says why it cannot be sent.
///
/// The URI is read borrowed ([`SipUriRef`]), not as an owned [`SipUri`]: a campaign prepares a
/// NOTIFY per device, and copying the URI's parts into their own strings cost about as much as
/// checking them.
pub async fn prepare(endpoint: &Endpoint, cs: &CheckSync, resolver: &mut Resolver) -> Result<Ready, Outcome> {
    let uri = SipUriRef::parse(&cs.uri)
        .map_err(|e| Outcome::failed(CheckSyncResult::Error, invalid_uri(&cs.uri, &e.to_string()), &cs.event))?;
    let transport = transport_of(uri.is_secure(), uri_transport(uri.params()), uri.as_str(), cs.transport)
        .map_err(|e| Outcome::failed(CheckSyncResult::Error, e.to_string(), &cs.event))?;
    // The transport is the URI's own now, so `Resolver::target` would choose it again.
    let mut target = resolver
        .target_at(Host::from(uri.host()), uri.port(), transport, cs.proxy.as_deref())
        .await
        .map_err(|e| Outcome::failed(CheckSyncResult::Unreachable, e.to_string(), &cs.event))?;
    // Through a proxy the TLS peer is the proxy, which keeps its own name.
    if let (Some(name), None) = (&cs.tls_name, &cs.proxy) {
        target = target.with_server_name(name);
    }
    let sent_to = sent_to(target.transport, target.addr);
    let request = build(endpoint, cs, &target).map_err(|e| Outcome::failed(CheckSyncResult::Error, e, &cs.event))?;
    Ok(Ready { request, target, sent_to })
}

/// Says a URI is invalid without its password: the outcome goes into the device's history.
pub fn invalid_uri(uri: &str, why: &str) -> String {
    let shown = sipprov_model::redact_uri_password(uri);
    // The parser's message may quote the URI, or the part of it it stopped at.
    let why = if uri == shown { why.to_string() } else { "malformed".to_string() };
    format!("invalid SIP URI {shown:?}: {why}")
}

/// Where a NOTIFY went, as its outcome records it: `udp:192.0.2.10:5060`.
///
/// Written by hand for IPv4 (a campaign records one per NOTIFY, and `SocketAddr`'s `Display`
/// goes through the formatting machinery octet by octet); IPv6 keeps std's form, scope included.
fn sent_to(transport: Transport, addr: SocketAddr) -> String {
    let mut out = String::with_capacity(32);
    out.extend(transport.as_str().chars().map(|c| c.to_ascii_lowercase()));
    out.push(':');
    match addr {
        SocketAddr::V4(v4) => {
            sipprov_sip::text::push_ip(&mut out, std::net::IpAddr::V4(*v4.ip()));
            out.push(':');
            sipprov_sip::text::push_decimal(&mut out, u64::from(v4.port()));
        }
        SocketAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
    out
}

/// What the end of a NOTIFY's transaction means for the device.
pub fn outcome(result: Result<Response, TransactionError>, event: &str, sent_to: String) -> Outcome {
    let mut outcome = match result {
        Ok(resp) => Outcome {
            result: if (200..300).contains(&resp.status) { CheckSyncResult::Ok } else { CheckSyncResult::Rejected },
            status: Some(resp.status),
            reason: resp.reason,
            sent_to: None,
            event: event.into(),
        },
        Err(TransactionError::Timeout { retransmissions, after }) => Outcome::failed(
            CheckSyncResult::Timeout,
            format!("no final response after {:.1} s ({retransmissions} retransmissions)", after.as_secs_f64()),
            event,
        ),
        Err(TransactionError::Unreachable(e)) => Outcome::failed(CheckSyncResult::Unreachable, e, event),
        Err(TransactionError::Transport(TransportError::NoSocket(Transport::Tls))) => {
            Outcome::failed(CheckSyncResult::Error, NO_TLS_CLIENT.into(), event)
        }
        Err(TransactionError::Transport(e @ TransportError::ConnectionFailed { our_certificate: true, .. })) => {
            Outcome::failed(
                CheckSyncResult::Error,
                format!(
                    "{e} (the phone wants a client certificate it trusts: [sip.tls] client_cert and client_key, \
                     or sipprov notify --tls-client-cert and --tls-client-key)"
                ),
                event,
            )
        }
        Err(TransactionError::Transport(e @ TransportError::Tls { certificate: true, .. })) => Outcome::failed(
            CheckSyncResult::Error,
            format!("{e} (trust the phone's CA or certificate with [sip.tls] ca or sipprov notify --tls-ca)"),
            event,
        ),
        Err(e) => Outcome::failed(CheckSyncResult::Error, e.to_string(), event),
    };
    outcome.sent_to = Some(sent_to);
    outcome
}

fn build(endpoint: &Endpoint, cs: &CheckSync, target: &Target) -> Result<sipprov_sip::Request, String> {
    let mut builder = endpoint.request("NOTIFY", &cs.uri, target).map_err(|e| e.to_string())?;
    let from = match &cs.from {
        Some(f) => f.clone(),
        None => {
            // The same address the SIP stack puts in Via, so From and Via never disagree.
            let ip = endpoint.sent_by(target).map_err(|e| e.to_string())?.ip();
            let mut from = String::with_capacity(64);
            from.push_str("\"sipprov\" <sip:sipprov@");
            sipprov_sip::text::push_ip(&mut from, ip);
            from.push('>');
            from
        }
    };
    builder = builder.from(&from).to(&cs.uri).header("Event", &cs.event).header("Subscription-State", "terminated");
    if let Some(proxy) = &cs.proxy {
        // A loose route through the registrar that holds the phone's (NATed) flow.
        let tls = if target.transport == Transport::Tls { ";transport=tls" } else { "" };
        builder = builder.header("Route", &format!("<sip:{proxy}{tls};lr>"));
    }
    Ok(builder.build())
}

/// The transport a URI asks for: `sips:` and `;transport=tls` mean TLS, `;transport=tcp` TCP,
/// anything else UDP. An explicit choice wins, except that a `sips:` URI is reached over TLS only.
pub fn transport_for(uri: &SipUri, explicit: Option<Transport>) -> Result<Transport, CheckSyncError> {
    let param = uri.params().0.iter().map(|(name, value)| (name.as_str(), value.as_deref()));
    transport_of(uri.is_secure(), uri_transport(param), uri.as_str(), explicit)
}

/// The value of a URI's first `transport` parameter (the name compared case-insensitively, as
/// `Params::get` does), quotes and escapes still in.
fn uri_transport<'a>(mut params: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Option<&'a str> {
    params.find(|(name, _)| name.eq_ignore_ascii_case("transport")).and_then(|(_, value)| value)
}

/// [`transport_for`] from the parts of a URI it reads: whether it is `sips:`, its `transport`
/// parameter as written, and its text (for the error).
fn transport_of(
    secure: bool,
    param: Option<&str>,
    uri: &str,
    explicit: Option<Transport>,
) -> Result<Transport, CheckSyncError> {
    let param = param.map(sipprov_sip::text::unquote);
    let implied = match param.as_deref() {
        _ if secure => Transport::Tls,
        Some(t) if t.eq_ignore_ascii_case("tls") => Transport::Tls,
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    match explicit {
        Some(t) if secure && t != Transport::Tls => Err(CheckSyncError::SipsNeedsTls {
            uri: sipprov_model::redact_uri_password(uri).into_owned(),
            transport: t,
        }),
        Some(t) => Ok(t),
        None => Ok(implied),
    }
}

/// Turns a device's SIP URI (or the outbound proxy) into the address to send to, remembering
/// host names for a minute: a campaign through a proxy named by DNS would otherwise resolve
/// the same name once per device.
#[derive(Debug, Default)]
pub struct Resolver {
    names: HashMap<(String, u16), (SocketAddr, Instant)>,
}

impl Resolver {
    /// How long a resolved name is reused.
    const REUSE: Duration = Duration::from_secs(60);

    /// The target for `uri` (or `proxy`, when given) over `transport` (or the URI's own).
    pub async fn target(
        &mut self,
        uri: &SipUri,
        transport: Option<Transport>,
        proxy: Option<&str>,
    ) -> Result<Target, CheckSyncError> {
        let transport = transport_for(uri, transport)?;
        self.target_at(uri.host().clone(), uri.port(), transport, proxy).await
    }

    /// The target for a URI's `host` and `port` (or `proxy`, when given) over `transport`.
    async fn target_at(
        &mut self,
        host: Host,
        port: Option<u16>,
        transport: Transport,
        proxy: Option<&str>,
    ) -> Result<Target, CheckSyncError> {
        let (host, port) = match proxy {
            Some(p) => parse_hostport(p)
                .map_err(|e| CheckSyncError::InvalidProxy { proxy: p.to_string(), why: e.to_string() })?,
            None => (host, port),
        };
        let port = port.unwrap_or(transport.default_port());
        let addr = match &host {
            Host::V4(ip) => SocketAddr::from((*ip, port)),
            Host::V6(ip) => SocketAddr::from((*ip, port)),
            Host::Name(name) => self.lookup(name, port).await.map_err(CheckSyncError::Resolve)?,
        };
        let target = Target::new(addr, transport);
        Ok(if transport == Transport::Tls { target.with_server_name(&host.to_string()) } else { target })
    }

    async fn lookup(&mut self, name: &str, port: u16) -> Result<SocketAddr, String> {
        let key = (name.to_owned(), port);
        match self.names.get(&key) {
            Some((addr, at)) if at.elapsed() < Resolver::REUSE => Ok(*addr),
            _ => {
                let addr = lookup(name, port).await?;
                self.names.insert(key, (addr, Instant::now()));
                Ok(addr)
            }
        }
    }
}

async fn lookup(host: &str, port: u16) -> Result<SocketAddr, String> {
    let found = tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("resolving {host} timed out"))?
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let all: Vec<SocketAddr> = found.collect();
    all.iter().find(|a| a.is_ipv4()).or(all.first()).copied().ok_or_else(|| format!("{host} has no address"))
}

/// The credentials of line 1, for phones that challenge the NOTIFY.
pub fn line_credentials(settings: &impl SettingsView) -> Option<Credentials> {
    let username = settings.get("line.1.auth_username").or_else(|| settings.get("line.1.username"))?;
    let password = settings.get("line.1.password")?;
    Some(Credentials { username: username.to_string(), password: password.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_to_is_the_transport_and_address_as_std_writes_them() {
        let addrs = ["192.0.2.10:5060", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:5061", "[fe80::1%3]:5060"];
        for (transport, addr) in [Transport::Udp, Transport::Tcp, Transport::Tls].into_iter().zip(addrs.iter().cycle())
        {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(sent_to(transport, addr), format!("{}:{addr}", transport.as_str().to_ascii_lowercase()));
        }
        for addr in addrs {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(sent_to(Transport::Udp, addr), format!("udp:{addr}"));
        }
    }

    fn uri(s: &str) -> SipUri {
        s.parse().unwrap()
    }

    #[test]
    fn the_uri_chooses_the_transport() {
        assert_eq!(transport_for(&uri("sip:1@192.0.2.1"), None), Ok(Transport::Udp));
        assert_eq!(transport_for(&uri("sip:1@192.0.2.1;transport=TCP"), None), Ok(Transport::Tcp));
        assert_eq!(transport_for(&uri("sip:1@192.0.2.1;transport=tls"), None), Ok(Transport::Tls));
        assert_eq!(transport_for(&uri("sips:1@192.0.2.1"), None), Ok(Transport::Tls));
        assert_eq!(transport_for(&uri("sip:1@192.0.2.1"), Some(Transport::Tls)), Ok(Transport::Tls));
        let err = transport_for(&uri("sips:1@192.0.2.1"), Some(Transport::Udp)).unwrap_err();
        assert!(matches!(err, CheckSyncError::SipsNeedsTls { transport: Transport::Udp, .. }));
        assert!(err.to_string().contains("TLS only"), "{err}");
    }

    #[test]
    fn the_borrowed_uri_chooses_as_the_owned_one_does() {
        let uris = [
            "sip:1@192.0.2.1",
            "sip:1@192.0.2.1;TRANSPORT=Tcp",
            "sip:1@h;transport=TLS",
            "sips:1@h",
            "sips:1@h;transport=udp",
            "sip:1@h;transport",
            "sip:1@h;x=1;transport=tcp;transport=tls",
            "sip:u:p@h",
        ];
        for raw in uris {
            let borrowed = SipUriRef::parse(raw).unwrap();
            for explicit in [None, Some(Transport::Udp), Some(Transport::Tcp), Some(Transport::Tls)] {
                let param = uri_transport(borrowed.params());
                assert_eq!(
                    transport_of(borrowed.is_secure(), param, borrowed.as_str(), explicit),
                    transport_for(&uri(raw), explicit),
                    "{raw} {explicit:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn tls_defaults_to_5061_and_names_the_host() {
        let t = Resolver::default().target(&uri("sips:1@192.0.2.1"), None, None).await.unwrap();
        assert_eq!((t.addr, t.transport), ("192.0.2.1:5061".parse().unwrap(), Transport::Tls));
        assert_eq!(t.server_name.as_deref(), Some("192.0.2.1"));
        let t = Resolver::default().target(&uri("sip:1@[2001:db8::1]:5071;transport=tls"), None, None).await.unwrap();
        assert_eq!(t.addr, "[2001:db8::1]:5071".parse().unwrap());
        assert_eq!(t.server_name.as_deref(), Some("[2001:db8::1]"));
        let t =
            Resolver::default().target(&uri("sips:1@phones.example.invalid"), None, Some("192.0.2.9")).await.unwrap();
        assert_eq!((t.addr, t.server_name.as_deref()), ("192.0.2.9:5061".parse().unwrap(), Some("192.0.2.9")));
        let t = Resolver::default().target(&uri("sip:1@192.0.2.1"), None, None).await.unwrap();
        assert_eq!((t.addr.port(), t.server_name), (5060, None));
    }
}
