//! SIP Plug-and-Play: zero-touch first boot for phones on the LAN.
//!
//! Out of the box many phones multicast a `SUBSCRIBE` with `Event: ua-profile` to 224.0.1.75:5060
//! and take their provisioning URL from the NOTIFY that answers (the de-facto form of the sipping config-framework drafts that RFC 6080 grew from: `Accept: application/url`, the URL as the NOTIFY body).
//! The flow, per SUBSCRIBE (received on the group or on the unicast listener):
//!
//! 1. [`subscribe`] reads the Event parameters, the dialog identifiers and the MAC;
//! 2. a source the failure throttle has blocked (`crate::auth::throttle`, shared with HTTP) gets
//!    nothing; [`dialogs`] recognises repeats, so a phone gets one NOTIFY however often it asks;
//!    every new subscription, answered or not, counts against its source in that throttle, so
//!    a scan learns at most `max_failures` answers per window before PnP and HTTP go silent;
//! 3. [`policy`] applies `[pnp] mode` and the allow-lists (sources default to the networks
//!    attached to the PnP interfaces) and builds the URL in the vendor's dialect
//!    (`sipprov_vendors::pnp`), without credentials unless `pnp.url_credentials = 1`;
//! 4. a 200 OK (our To tag, `Expires: 0`) goes back at once, then the NOTIFY in the
//!    subscription's dialog to the SUBSCRIBE's source address and port (Yealink uses 5059,
//!    Grandstream 5080, in their PnP captures), retransmitted by the SIP stack until the phone's 200 arrives;
//! 5. the answer or refusal is recorded in the device's history (or the log for unknown MACs),
//!    and in `any` mode an unknown device is added to the inventory.
//!
//! [`socket`] explains why the multicast socket never takes unicast SIP traffic.

pub mod allow;
pub mod dialogs;
pub mod policy;
pub mod responder;
pub mod socket;
pub mod subscribe;

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipprov_api::{PnpDetail, PnpNotify, PnpResult};
use sipprov_sip::logsafe::{escaped, Escaped, LogLimiter, LOG_TEXT_MAX};
use sipprov_sip::{Endpoint, IncomingRequest, Request, Target, TransactionError};
use sipprov_store::NewEvent;

pub use crate::config::{PnpConfig, PnpMode};
use allow::AllowLists;
use dialogs::{Claim, Dialogs};
use policy::{redacted, Decision};
use socket::Membership;
use subscribe::{NotPnp, PnpSubscribe};

use crate::auth::throttle::Outcome;
use crate::auth::Security;
use crate::discoveries::Discoveries;
use crate::fetchlog::{FetchLog, Record};
use crate::inventory::Inventory;
use crate::metrics::labels::VendorLabel;
use crate::metrics::{BlockedBy, Metrics};
use crate::registry::Registry;

/// What PnP uses of the server: the inventory it answers from, the registry it adds discovered
/// devices through, the failure throttle it shares with HTTP, the event sink, and the SIP
/// endpoint its NOTIFYs leave from, and the metrics its answers are timed into.
pub struct PnpServices {
    inventory: Arc<Inventory>,
    registry: Arc<Registry>,
    discoveries: Arc<Discoveries>,
    security: Arc<Security>,
    fetchlog: FetchLog,
    metrics: Arc<Metrics>,
    endpoint: Endpoint,
    responder: Arc<responder::Responder>,
}

impl PnpServices {
    /// What PnP answers from and adds through; its NOTIFYs leave from `endpoint`.
    pub fn new(
        inventory: Arc<Inventory>,
        registry: Arc<Registry>,
        discoveries: Arc<Discoveries>,
        security: Arc<Security>,
        fetchlog: FetchLog,
        metrics: Arc<Metrics>,
        endpoint: Endpoint,
    ) -> PnpServices {
        PnpServices {
            inventory,
            registry,
            discoveries,
            security,
            fetchlog,
            metrics,
            endpoint,
            responder: responder::Responder::always(),
        }
    }

    /// Answers multicast SUBSCRIBEs only while `responder` says this node is the segment's
    /// responder (several nodes on PostgreSQL).
    pub fn with_responder(mut self, responder: Arc<responder::Responder>) -> PnpServices {
        self.responder = responder;
        self
    }
}

/// How often interfaces are re-listed, to join the group on ones that came up later and to
/// follow the attached networks the default source allow-list is made of.
const REJOIN_EVERY: Duration = Duration::from_secs(30);

// Any SUBSCRIBE can cause one of these lines, so each is rationed (the device's history keeps
// every refusal of a known device regardless). An answer is logged every time: it is the audit
// of a phone given its provisioning URL, as a fetch is, and the per-source request rate of the
// SIP endpoint bounds how many one host can cause.
static MALFORMED_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));
static OVERLOADED_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));
static EVICTED_LOG: LogLimiter = LogLimiter::new(1, Duration::from_secs(10));
static REFUSED_LOG: LogLimiter = LogLimiter::new(20, Duration::from_secs(5));

/// Text from a SUBSCRIBE as a log line may show it: escaped and truncated.
fn shown(text: &str) -> Escaped<'_> {
    escaped(text, LOG_TEXT_MAX)
}

/// [`shown`] for an optional field (`-` when absent).
fn shown_opt(text: &Option<String>) -> Escaped<'_> {
    escaped(text.as_deref().unwrap_or("-"), LOG_TEXT_MAX)
}

/// The UDP sockets of the SIP listener, as [`open_sockets`] sets them up.
pub struct SipSockets {
    /// The unicast listener (the endpoint's first socket: NOTIFYs leave from it).
    pub unicast: UdpSocket,
    /// A socket bound to the group address, when the listener cannot join itself.
    pub group: Option<UdpSocket>,
    /// Where the group is joined.
    pub membership: Option<Membership>,
}

/// Binds the unicast listener and, unless PnP is off, sets up multicast reception. A multicast
/// failure is logged and PnP keeps answering unicast SUBSCRIBEs.
pub fn open_sockets(listen: SocketAddr, cfg: &PnpConfig) -> std::io::Result<SipSockets> {
    let unicast = socket::unicast(listen)?;
    let mut sockets = SipSockets { unicast, group: None, membership: None };
    let SocketAddr::V4(group) = cfg.multicast else { return Ok(sockets) };
    if cfg.mode == PnpMode::Off {
        return Ok(sockets);
    }
    let member = if socket::listener_joins(listen, group) {
        sockets.unicast.try_clone()
    } else {
        socket::group_socket(group).and_then(|s| {
            let clone = s.try_clone();
            sockets.group = Some(s);
            clone
        })
    };
    match member {
        Ok(handle) => sockets.membership = Some(join(handle, group, cfg)),
        Err(e) => tracing::warn!(%group, error = %e, "PnP multicast unavailable; answering unicast SUBSCRIBEs only"),
    }
    Ok(sockets)
}

fn join(handle: UdpSocket, group: SocketAddrV4, cfg: &PnpConfig) -> Membership {
    let membership = Membership::new(handle, *group.ip(), cfg.interfaces.clone());
    let joined = membership.join_new();
    if joined.is_empty() {
        tracing::warn!(%group, interfaces = ?cfg.interfaces, "PnP multicast group joined on no interface");
    } else {
        tracing::info!(%group, ?joined, "PnP multicast group joined");
    }
    membership
}

/// The Plug-and-Play responder.
pub struct Pnp {
    cfg: PnpConfig,
    allow: AllowLists,
    dialogs: Dialogs,
    http: SocketAddr,
    membership: Option<Membership>,
}

impl Pnp {
    /// A responder for the SIP listener bound to `listen`, handing out URLs toward the HTTP
    /// listener at `http` (unless configured otherwise).
    pub fn new(
        cfg: &PnpConfig,
        listen: SocketAddr,
        http: SocketAddr,
        membership: Option<Membership>,
    ) -> Result<Pnp, String> {
        let allow = AllowLists::new(cfg, listen.ip())?;
        let sources: Vec<String> = allow.sources_now().iter().map(ToString::to_string).collect();
        match (cfg.allow_sources.is_some(), sources.is_empty()) {
            (true, _) => tracing::info!(?sources, "PnP answers sources in pnp.allow_sources"),
            (false, false) => {
                tracing::info!(?sources, "PnP answers sources on the networks attached to its interfaces")
            }
            (false, true) => tracing::warn!(
                interfaces = ?cfg.interfaces,
                "PnP interfaces have no attached network (yet): every SUBSCRIBE is refused until one appears"
            ),
        }
        Ok(Pnp {
            cfg: cfg.clone(),
            allow,
            dialogs: Dialogs::with_capacity(cfg.remembered_subscriptions),
            http,
            membership,
        })
    }

    /// Every 30 s, for as long as it runs: re-lists interfaces, joins the group on new ones and
    /// follows the attached networks of the default source allow-list.
    pub async fn rejoin_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REJOIN_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let added = self.membership.as_ref().map(Membership::join_new).unwrap_or_default();
            if !added.is_empty() {
                tracing::info!(?added, "PnP multicast group joined on new interfaces");
            }
            if let Some(now) = self.allow.refresh() {
                let sources: Vec<String> = now.iter().map(ToString::to_string).collect();
                tracing::info!(?sources, "PnP attached networks changed");
            }
        }
    }

    /// Answers one `ua-profile` SUBSCRIBE; never panics on what the phone sent.
    pub async fn handle(self: Arc<Self>, state: Arc<PnpServices>, req: IncomingRequest) {
        let received = Instant::now();
        // Heard on the group (or on a wildcard listener that joined it): another node may be
        // the segment's responder, and the phone must get one answer.
        let multicast = req.local.ip().is_multicast() || req.local.ip().is_unspecified();
        if multicast && !state.responder.answers() {
            tracing::debug!(source = %req.source, "PnP multicast SUBSCRIBE left to the segment's responder node");
            return;
        }
        let fallback = format!("sip:{}", req.source);
        let sub = match subscribe::parse(&req.request, &fallback) {
            Ok(s) => s,
            Err(e @ NotPnp::Malformed(_)) => {
                if let Some(suppressed) = MALFORMED_LOG.allow() {
                    let error = e.to_string();
                    tracing::warn!(source = %req.source, error = %shown(&error), suppressed, "ignored malformed PnP SUBSCRIBE");
                }
                return;
            }
            Err(e) => {
                tracing::debug!(source = %req.source, error = %shown(&e.to_string()), "not a PnP SUBSCRIBE");
                return reply(&req, req.response(489, "Bad Event")).await;
            }
        };
        if state.security.throttle.blocked_for(req.source.ip()).is_some() {
            tracing::debug!(source = %req.source, "PnP SUBSCRIBE from a blocked source: no answer");
            return;
        }
        let (claim, evicted) = self.dialogs.claim(&sub.call_id, sub.mac, req.to_tag());
        if evicted {
            if let Some(suppressed) = EVICTED_LOG.allow() {
                tracing::warn!(capacity = self.cfg.remembered_subscriptions, suppressed,
                    "PnP subscription table full: forgot the oldest subscriptions early (raise pnp.remembered_subscriptions)");
            }
        }
        match claim {
            Claim::New if self.throttled(&state, &req) => return self.dialogs.refused(&sub.call_id, sub.mac),
            Claim::New => {}
            Claim::Repeat { to_tag } if to_tag.is_empty() => return,
            Claim::Repeat { to_tag } => {
                tracing::debug!(source = %req.source, call_id = %shown(&sub.call_id), "repeated PnP SUBSCRIBE: 200 again, no new NOTIFY");
                let mut resp = ok_response(&req, None);
                resp.headers.set("To", &format!("{};tag={to_tag}", sub.to));
                return reply(&req, resp).await;
            }
            Claim::MacBusy if self.throttled(&state, &req) => return,
            Claim::MacBusy => return reply(&req, ok_response(&req, None)).await,
            Claim::Overloaded => {
                if let Some(suppressed) = OVERLOADED_LOG.allow() {
                    tracing::warn!(source = %req.source, suppressed, "PnP NOTIFYs in flight at the table's capacity; SUBSCRIBE ignored");
                }
                return;
            }
        }
        match policy::decide(&state, &self.cfg, &self.allow, &sub, req.source, self.http) {
            Decision::Refuse { device, reason } => {
                self.dialogs.refused(&sub.call_id, sub.mac);
                self.record_refusal(&state, &sub, &req, device.is_some(), &reason);
            }
            Decision::Answer { device, url } => {
                let answer = Answer { url, known: device.is_some(), received };
                self.answer(state, req, sub, answer).await
            }
        }
    }

    /// Counts a new subscription against its source in the HTTP failure throttle, answered or
    /// refused alike: what PnP answers tells which MACs are in the inventory, so a source gets at
    /// most `max_failures` answers per window, whatever protocol it uses. True when the source is
    /// now blocked: this SUBSCRIBE gets no answer either. (Retransmissions and repeats of a
    /// subscription are not counted: they learn nothing new.)
    fn throttled(&self, state: &PnpServices, req: &IncomingRequest) -> bool {
        let ip = req.source.ip();
        if state.security.throttle.fail(ip) == Outcome::NowBlocked {
            state.metrics.source_blocked(BlockedBy::Pnp);
            let cfg = &state.security.config;
            tracing::warn!(peer = %ip, failures = cfg.max_failures, window_secs = cfg.failure_window_secs,
                block_secs = cfg.block_secs, "source blocked: too many PnP SUBSCRIBEs (PnP and HTTP refused)");
            return true;
        }
        // Another SUBSCRIBE handled concurrently may have crossed the threshold first.
        state.security.throttle.blocked_for(ip).is_some()
    }

    async fn answer(&self, state: Arc<PnpServices>, req: IncomingRequest, sub: PnpSubscribe, answer: Answer) {
        let Answer { url, known, received } = answer;
        let endpoint = &state.endpoint;
        // The NOTIFY goes to the packet's source address and port (where the phone listens, not its Via), from the unicast
        // listener; a SUBSCRIBE over TCP or TLS gets it on the connection it came in on.
        let target = match req.transport.is_reliable() {
            true => Target::new(req.source, req.transport),
            false => Target::udp(req.source),
        };
        let notify = match build_notify(endpoint, &sub, req.to_tag(), &url, &target) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(source = %req.source, error = %e, "cannot build the PnP NOTIFY");
                return self.dialogs.refused(&sub.call_id, sub.mac);
            }
        };
        let contact = notify.headers.value("Contact").map(|c| c.into_owned());
        reply(&req, ok_response(&req, contact.as_deref())).await;
        let discover = self.cfg.mode == PnpMode::Any && !known && sub.mac.is_some();
        let add = async {
            match discover {
                true => Some(policy::add_discovered(&state, &self.cfg, &sub, req.source).await),
                false => None,
            }
        };
        let (outcome, added) = tokio::join!(endpoint.send_request(notify, target, None), add);
        if known || matches!(added, Some(Ok(()))) {
            note_sighting(&state, &sub, req.source).await;
        }
        self.dialogs.finished(&sub.call_id, sub.mac);
        // The vendor label is the SUBSCRIBE's `vendor` matched against the registry: a name
        // the registry lacks counts as `unknown`, never as a label of its own.
        let delivered = matches!(&outcome, Ok(r) if (200..300).contains(&r.status));
        state.metrics.observe_pnp(VendorLabel::of_opt(sub.vendor.as_deref()), delivered, received.elapsed());
        self.record_answer(&state, &sub, &req, &url, known, &outcome, added);
    }

    #[allow(clippy::too_many_arguments)]
    fn record_answer(
        &self,
        state: &PnpServices,
        sub: &PnpSubscribe,
        req: &IncomingRequest,
        url: &str,
        known: bool,
        outcome: &Result<sipprov_sip::Response, TransactionError>,
        added: Option<Result<(), String>>,
    ) {
        let notify = match outcome {
            Ok(r) => PnpNotify::Response { status: r.status, reason: r.reason.clone() },
            Err(e) => PnpNotify::Failed { error: e.to_string() },
        };
        let url = redacted(url);
        let discovered = added.as_ref().map(|a| a.as_ref().map_or_else(|e| e.clone(), |()| "added".into()));
        // The JSON of the NOTIFY's outcome is built only for a log that shows it: in a boot storm
        // with the log at `warn` it was a few per cent of the answer's CPU, for nothing.
        if tracing::enabled!(tracing::Level::INFO) {
            let notify_shown = serde_json::to_value(&notify).unwrap_or_default().to_string();
            tracing::info!(
                source = %req.source, mac = ?sub.mac.map(|m| m.to_string()), vendor = %shown_opt(&sub.vendor),
                model = %shown_opt(&sub.model), %url, notify = %shown(&notify_shown), ?discovered, "PnP answered"
            );
        }
        let recorded = known || matches!(added, Some(Ok(())));
        if let (true, Some(mac)) = (recorded, sub.mac) {
            let detail = describe(sub, req, PnpResult::Answered { url: url.to_string(), notify, discovered });
            state.fetchlog.record(Record::Event(NewEvent::of(mac, sipprov_store::now_ms(), &detail)));
        }
    }

    fn record_refusal(
        &self,
        state: &PnpServices,
        sub: &PnpSubscribe,
        req: &IncomingRequest,
        known: bool,
        reason: &str,
    ) {
        if let Some(suppressed) = REFUSED_LOG.allow() {
            tracing::info!(
                source = %req.source, mac = ?sub.mac.map(|m| m.to_string()), vendor = %shown_opt(&sub.vendor),
                model = %shown_opt(&sub.model), reason = %shown(reason), suppressed, "PnP refused (no answer sent)"
            );
        }
        if let (true, Some(mac)) = (known, sub.mac) {
            let detail = describe(sub, req, PnpResult::Refused { reason: reason.to_string() });
            state.fetchlog.record(Record::Event(NewEvent::of(mac, sipprov_store::now_ms(), &detail)));
        }
    }
}

/// Records the SUBSCRIBE of a device waiting in the discovered group (the discoveries service
/// ignores any other device); a failed write is logged, the answer already went out.
async fn note_sighting(state: &PnpServices, sub: &PnpSubscribe, source: std::net::SocketAddr) {
    let Some(mac) = sub.mac else { return };
    let now = sipprov_store::now_ms();
    let sighting = sipprov_store::Sighting {
        mac,
        vendor: sub.vendor.clone().unwrap_or_default(),
        model: sub.model.clone().unwrap_or_default(),
        firmware: sub.firmware.clone(),
        source: source.to_string(),
        first_seen: now,
        last_seen: now,
    };
    if let Err(e) = state.discoveries.sighted(sighting).await {
        tracing::warn!(%mac, error = %e, "PnP sighting not recorded");
    }
}

/// A SUBSCRIBE the policy answers: the URL to send, whether the device is in the inventory,
/// and when the SUBSCRIBE arrived (for the answer-time histogram).
struct Answer {
    url: String,
    known: bool,
    received: Instant,
}

/// What a history event says about the SUBSCRIBE.
fn describe(sub: &PnpSubscribe, req: &IncomingRequest, result: PnpResult) -> PnpDetail {
    PnpDetail {
        source: req.source.to_string(),
        received_on: req.local.to_string(),
        vendor: sub.vendor.clone(),
        model: sub.model.clone(),
        firmware: sub.firmware.clone(),
        profile_type: sub.profile_type.clone(),
        user_agent: sub.user_agent.clone(),
        result,
    }
}

/// 200 OK with `Expires: 0` (a one-shot fetch of the state, as RFC 6665 allows) and our Contact
/// when known.
fn ok_response(req: &IncomingRequest, contact: Option<&str>) -> sipprov_sip::Response {
    let mut resp = req.response(200, "OK");
    resp.headers.push("Expires", "0");
    if let Some(c) = contact {
        resp.headers.push("Contact", c);
    }
    resp
}

async fn reply(req: &IncomingRequest, resp: sipprov_sip::Response) {
    if let Err(e) = req.respond(resp).await {
        tracing::debug!(source = %req.source, error = %e, "cannot answer PnP SUBSCRIBE");
    }
}

/// The NOTIFY in the SUBSCRIBE's dialog, built as RFC 3261 builds a request within a dialog
/// (§12.2.1.1; phones also accept looser forms, but a strict stack expects this): Request-URI the
/// phone's Contact, From = its To with our tag, To = its From with its tag, same Call-ID, our CSeq 1,
/// its Event echoed, `Subscription-State: terminated;reason=timeout`, the URL as the whole body
/// (no trailing CRLF: Content-Length must be the URL's length).
fn build_notify(
    ep: &Endpoint,
    sub: &PnpSubscribe,
    our_tag: &str,
    url: &str,
    target: &Target,
) -> Result<Request, String> {
    let builder = ep.request("NOTIFY", &sub.contact, target).map_err(|e| e.to_string())?;
    Ok(builder
        .from(&sub.to.to_string())
        .from_tag(our_tag)
        .to(&sub.from.to_string())
        .call_id(&sub.call_id)
        .cseq(1)
        .header("Event", &sub.event)
        .header("Subscription-State", "terminated;reason=timeout")
        .body("application/url", url.to_string())
        .build())
}
