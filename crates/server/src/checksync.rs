//! check-sync: the out-of-dialog NOTIFY that tells a phone to re-provision or reboot now.
//!
//! Used both by the one-shot `sipprov notify` (no server needed) and by the
//! server's `device notify`. The NOTIFY carries what working senders send
//! (seed 001 F1, seed 000): Request-URI and To naming the device's SIP account
//! (Gigaset ignores an anonymous check-sync), From with a tag, Call-ID, CSeq,
//! Max-Forwards, Contact, `Subscription-State: terminated`, `Content-Length: 0`.
//! A challenge (Snom `challenge_checksync`, Polycom digest request validation)
//! is answered once with the line's credentials by the SIP stack.
//!
//! ```
//! use sipprov_server::checksync::{device_event, Outcome};
//! use sipprov_model::Settings;
//! assert_eq!(device_event("yealink", true, &Settings::new()).unwrap(), "check-sync;reboot=true");
//! let custom = Settings::parse_assignments(["sip.check_sync_event=check-sync;reboot=false;x=1"]).unwrap();
//! assert_eq!(device_event("polycom", false, &custom).unwrap(), "check-sync;reboot=false;x=1");
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use sipprov_model::Settings;
use sipprov_sip::uri::{Host, SipUri};
use sipprov_sip::{Credentials, Endpoint, Target, TransactionError, Transport};

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
    /// Transport; default from the URI's `transport` parameter, else UDP.
    pub transport: Option<Transport>,
    /// Used once if the phone (or proxy) challenges.
    pub credentials: Option<Credentials>,
}

/// How a NOTIFY ended, in the words an operator needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    /// `ok` (2xx), `rejected` (3xx–6xx), `timeout`, `unreachable`, `no-target` or `error`.
    pub result: String,
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
    /// True for a 2xx final response.
    pub fn is_ok(&self) -> bool {
        self.result == "ok"
    }

    /// An outcome for a NOTIFY that could not even be sent.
    pub fn failed(result: &str, reason: String, event: &str) -> Outcome {
        Outcome { result: result.into(), status: None, reason, sent_to: None, event: event.into() }
    }

    /// One line for humans: `200 OK`, `481 Call/Transaction Does Not Exist`, `timeout: …`.
    pub fn summary(&self) -> String {
        match self.status {
            Some(s) => format!("{s} {}", self.reason),
            None => format!("{}: {}", self.result, self.reason),
        }
    }
}

/// Every setting a check-sync reads: its event overrides and line 1's account.
pub const SETTINGS_USED: &[&str] = &[
    "sip.check_sync_event",
    "sip.reboot_event",
    "line.1.username",
    "line.1.auth_username",
    "line.1.password",
    "line.1.registrar",
];

/// The Event to send a device: a setting (`sip.check_sync_event` / `sip.reboot_event`)
/// overrides the vendor table (`sipprov_vendors::check_sync_event`).
pub fn device_event(vendor: &str, reboot: bool, settings: &Settings) -> Result<String, String> {
    let key = if reboot { "sip.reboot_event" } else { "sip.check_sync_event" };
    if let Some(e) = settings.get(key) {
        return Ok(e.to_string());
    }
    sipprov_vendors::check_sync_event(vendor, reboot)
        .map(String::from)
        .ok_or_else(|| format!("no check-sync event is known for vendor {vendor:?}; set {key}"))
}

/// Sends one check-sync NOTIFY and reports how it ended; never panics on what the network says.
pub async fn send(endpoint: &Endpoint, cs: &CheckSync) -> Outcome {
    let uri: SipUri = match cs.uri.parse() {
        Ok(u) => u,
        Err(e) => return Outcome::failed("error", format!("invalid SIP URI {:?}: {e}", cs.uri), &cs.event),
    };
    let target = match resolve_target(&uri, cs.transport, cs.proxy.as_deref()).await {
        Ok(t) => t,
        Err(e) => return Outcome::failed("unreachable", e, &cs.event),
    };
    let sent_to = format!("{}:{}", target.transport.as_str().to_ascii_lowercase(), target.addr);
    let request = match build(endpoint, cs, &target) {
        Ok(r) => r,
        Err(e) => return Outcome::failed("error", e, &cs.event),
    };
    let result = endpoint.send_request(request, target, cs.credentials.as_ref()).await;
    let mut outcome = match result {
        Ok(resp) => Outcome {
            result: if (200..300).contains(&resp.status) { "ok" } else { "rejected" }.into(),
            status: Some(resp.status),
            reason: resp.reason.clone(),
            sent_to: None,
            event: cs.event.clone(),
        },
        Err(TransactionError::Timeout { retransmissions, after }) => Outcome::failed(
            "timeout",
            format!("no final response after {:.1} s ({retransmissions} retransmissions)", after.as_secs_f64()),
            &cs.event,
        ),
        Err(TransactionError::Unreachable(e)) => Outcome::failed("unreachable", e, &cs.event),
        Err(e) => Outcome::failed("error", e.to_string(), &cs.event),
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
            let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
            format!("\"sipprov\" <sip:sipprov@{host}>")
        }
    };
    builder = builder.from(&from).to(&cs.uri).header("Event", &cs.event).header("Subscription-State", "terminated");
    if let Some(proxy) = &cs.proxy {
        // A loose route through the registrar that holds the phone's (NATed) flow.
        builder = builder.header("Route", &format!("<sip:{proxy};lr>"));
    }
    Ok(builder.build())
}

/// Where to send: the proxy if given, else the URI's host and port (5060 default; DNS A/AAAA, no SRV).
pub async fn resolve_target(uri: &SipUri, transport: Option<Transport>, proxy: Option<&str>) -> Result<Target, String> {
    let transport = transport.unwrap_or_else(|| match uri.params().get_unquoted("transport").as_deref() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    });
    let addr = match proxy {
        Some(p) => resolve_hostport(p).await?,
        None => {
            let port = uri.port().unwrap_or(5060);
            match uri.host() {
                Host::V4(ip) => SocketAddr::from((*ip, port)),
                Host::V6(ip) => SocketAddr::from((*ip, port)),
                Host::Name(name) => lookup(name, port).await?,
            }
        }
    };
    Ok(Target { addr, transport, local: None })
}

async fn resolve_hostport(hostport: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = hostport.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| format!("invalid port in {hostport:?}"))?),
        None => (hostport, 5060),
    };
    lookup(host, port).await
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
pub fn line_credentials(settings: &Settings) -> Option<Credentials> {
    let username = settings.get("line.1.auth_username").or_else(|| settings.get("line.1.username"))?;
    let password = settings.get("line.1.password")?;
    Some(Credentials { username: username.to_string(), password: password.to_string() })
}
