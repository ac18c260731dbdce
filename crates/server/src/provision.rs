//! The phone-facing HTTP listener: config files under the names firmware requests.
//!
//! Every path is checked before anything else (length, characters, no dot
//! segments); the last segment is the file name, so phones may be pointed at
//! `http://host/` or at any sub-directory such as `http://host/yealink/`.
//! A request naming a MAC the server does not know (in the path, a key-file name, the
//! User-Agent or a client certificate) gets what a known device gives a requester that has not
//! authenticated, never another device's file; a User-Agent whose MAC contradicts the path's MAC
//! gets 403 and is logged.
//!
//! Before a device's own file is rendered, [`crate::auth`] decides whether the requester may have
//! it (allow-list, client certificate, open group, first-fetch window, Digest/Basic). A fetch
//! inside the first-fetch window claims it in the store before the file is sent. Refusals and
//! unknown MACs count against the source address; a source past the threshold is refused
//! outright for a cool-down. Every served fetch is recorded with how the requester was accepted.
//!
//! Stored files (firmware, ringtones, …) under `…/files/<name>` and `…/files/<MAC12>/<name>`
//! are answered by `stored` (routes and access) and `bigfile` (RFC 9110 ranges and
//! conditionals, streaming from disk), within the optional bandwidth cap of `bandwidth`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sipprov_sip::logsafe::{escaped, LogLimiter};
use sipprov_store::NewEvent;
use sipprov_vendors::{registry, UserAgentInfo};

use crate::auth::Security;
use crate::auth::{throttle::Outcome, Decision, Failure, Policy, RequestFacts};
use crate::cache::Served;
use crate::config::UploadsConfig;
use crate::directories::Directories;
use crate::fetchlog::FetchLog;
use crate::fetchlog::{Fetch, Record};
use crate::files::{Files, Refusal, Resolved};
use crate::inventory::Inventory;
use crate::listener::{Handler, TlsPeer};
use crate::metrics::labels::{RefusalReason, VendorLabel};
use crate::metrics::{BlockedBy, Metrics};
use crate::resources::ResourceCatalog;

mod bandwidth;
mod bigfile;
mod dates;
mod directory;
mod forwarded;
mod keyfile;
mod stored;
mod upload;

const MAX_PATH: usize = 256;
const MAX_SEGMENTS: usize = 8;
const MAX_USER_AGENT: usize = 512;

// A refused request costs its sender one HTTP request: the warnings are rationed, with the count
// of those held back in the next one (refusals of known devices stay in their history).
static BAD_PATH_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));
static REFUSED_LOG: LogLimiter = LogLimiter::new(20, Duration::from_secs(5));
static FIRST_FETCH_LOG: LogLimiter = LogLimiter::new(5, Duration::from_secs(60));

/// What the phone-facing listeners use: the provisioning core, the access checks, the event
/// sink, for uploads the store and its caps, and for stored files the catalog and the
/// bandwidth cap.
pub struct Phones {
    files: Arc<Files>,
    inventory: Arc<Inventory>,
    security: Arc<Security>,
    fetchlog: FetchLog,
    metrics: Arc<Metrics>,
    store: sipprov_store::Store,
    uploads: UploadsConfig,
    /// Remote phone directories, served per device (`directory`).
    directories: Option<Arc<Directories>>,
    resources: ResourceCatalog,
    /// The cap all downloads of stored files share, if `[files] bandwidth_bytes_per_sec` sets one.
    bandwidth: Option<Arc<bandwidth::Bandwidth>>,
    /// `[http] trusted_proxies`: balancers whose `X-Forwarded-For` names the phone.
    proxies: Arc<[sipprov_model::Cidr]>,
}

impl Phones {
    /// The phone side over these services.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        files: Arc<Files>,
        inventory: Arc<Inventory>,
        security: Arc<Security>,
        fetchlog: FetchLog,
        metrics: Arc<Metrics>,
        store: sipprov_store::Store,
        uploads: UploadsConfig,
        resources: ResourceCatalog,
    ) -> Phones {
        Phones {
            files,
            inventory,
            security,
            fetchlog,
            metrics,
            store,
            uploads,
            directories: None,
            resources,
            bandwidth: None,
            proxies: Arc::from([]),
        }
    }

    /// Believes `X-Forwarded-For` from these balancers (see `forwarded`): requests through them
    /// are judged by the phone's address.
    pub fn with_trusted_proxies(mut self, proxies: Vec<sipprov_model::Cidr>) -> Phones {
        self.proxies = proxies.into();
        self
    }

    /// Serves each device's remote phone directory from `directories` (without, the directory
    /// paths answer 404 once the device has authenticated).
    pub fn with_directories(mut self, directories: Arc<Directories>) -> Phones {
        self.directories = Some(directories);
        self
    }

    /// The catalog of stored firmware and resource files, for the file routes.
    pub fn resources(&self) -> &ResourceCatalog {
        &self.resources
    }

    /// Caps the bytes a second that all downloads of stored files share together (`[files]
    /// bandwidth_bytes_per_sec`); `None` leaves them uncapped. Config files are never capped.
    pub fn with_bandwidth_cap(mut self, bytes_per_sec: Option<u64>) -> Phones {
        self.bandwidth = bytes_per_sec.map(|rate| Arc::new(bandwidth::Bandwidth::new(rate, bigfile::CAPPED_CHUNK)));
        self
    }
}

/// The handler of the provisioning listeners (HTTP and HTTPS share one). Every path is one
/// route, so each request goes from hyper straight to `serve`: no router, and the request's
/// method, URI and headers are moved, not copied.
#[derive(Clone)]
pub struct PhoneHandler(Arc<Phones>);

impl PhoneHandler {
    /// The handler over the phone side's services.
    pub fn new(state: Arc<Phones>) -> PhoneHandler {
        PhoneHandler(state)
    }
}

impl Handler for PhoneHandler {
    fn handle(
        self,
        request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        tls: Option<TlsPeer>,
    ) -> impl std::future::Future<Output = Response> + Send + 'static {
        let (parts, body) = request.into_parts();
        let peer = forwarded::client_address(peer, &parts.headers, &self.0.proxies);
        let incoming =
            Incoming { peer, tls, method: parts.method, uri: parts.uri, headers: parts.headers, body: Some(body) };
        // Boxed once here: unboxed, hyper's service call, its in-flight slot and the wrappers on
        // the way moved (copied) the whole future several times per request, about 1,300
        // instructions of `memcpy`; a box is one allocation and pointer moves. The future is kept
        // under 1 KiB (see `serve`): mimalloc serves that from its small size classes, larger
        // blocks from its generic path, about 100 instructions more.
        Box::pin(fetch(self.0, incoming))
    }
}

/// A request as the listener hands it over.
struct Incoming {
    peer: SocketAddr,
    tls: Option<TlsPeer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// hyper's body as it comes: only an upload reads it (taking it), and only then is it boxed
    /// into an axum [`Body`] (an allocation the config requests do not pay).
    body: Option<hyper::body::Incoming>,
}

/// Serves one request and times it into `sipprov_http_request_duration_seconds`, under the
/// vendor the request was identified as (its device's, else its User-Agent's).
async fn fetch(state: Arc<Phones>, mut incoming: Incoming) -> Response {
    let started = Instant::now();
    let mut vendor = VendorLabel::UNKNOWN;
    let response = serve(&state, &mut incoming, &mut vendor).await;
    state.metrics.observe_http(vendor, response.status(), started.elapsed());
    response
}

/// Answers a request; a served config file's fetch is recorded last (see [`prepare`]).
///
/// The request stays where `fetch` holds it and is lent out: an async function keeps what it
/// was passed for its whole life, so passed by value it was held three times over (`fetch`'s
/// argument, `serve`'s, and the fields `serve` moved out of it), 576 bytes more of the request's
/// future.
async fn serve(state: &Arc<Phones>, incoming: &mut Incoming, vendor: &mut VendorLabel) -> Response {
    // What the fetch log keeps waits (only when its ledger is full) after everything the
    // request's handling held is gone: `prepare`'s state and the fetch log's do not add up in
    // the request's future, which stays under 1 KiB (see `PhoneHandler::handle`).
    let (served, status, record) = match prepare(state, incoming, vendor).await {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    if let Some(record) = record {
        state.fetchlog.record_fetch(record).await;
    }
    respond(status, &served)
}

/// Everything of [`serve`] but the wait for the fetch log: the response when it is not a config
/// file's, else the file, its status and the fetch record (for a known device's file).
// The error is the response itself, returned to the client as it is (see `authorize`).
#[allow(clippy::result_large_err)]
async fn prepare(
    state: &Arc<Phones>,
    incoming: &mut Incoming,
    vendor: &mut VendorLabel,
) -> Result<(Arc<Served>, StatusCode, Option<Fetch>), Response> {
    let peer = incoming.peer;
    let Incoming { tls, method, uri, headers, body, .. } = incoming;
    let (tls, method, uri, headers) = (&*tls, &*method, &*uri, &*headers);
    if let Some(wait) = state.security.throttle.blocked_for(peer.ip()) {
        return Err(blocked(state, wait));
    }
    if method != Method::GET && method != Method::HEAD && method != Method::PUT {
        return Err((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response());
    }
    let read = ReadHeaders::of(headers);
    let ua = user_agent(read.user_agent).and_then(|ua| registry().identify_user_agent(ua));
    let facts = RequestFacts {
        method: method.as_str(),
        uri: uri.path_and_query().map_or(uri.path(), |p| p.as_str()),
        authorization: read.authorization.and_then(|v| v.to_str().ok()),
        tls: tls.is_some(),
        cert_macs: tls.as_ref().filter(|t| t.has_certificate).map(|t| &*t.macs),
        ip: peer.ip(),
    };
    let ua = with_certificate_identity(ua, facts.cert_macs);
    *vendor = VendorLabel::of_opt(ua.as_ref().map(|u| u.vendor));
    let path = uri.path();
    // The path's check, read only after the stored-file routes (which take names it refuses,
    // such as percent escapes).
    let checked = file_name(path);
    // A path of one segment after its leading slashes (`/<name>`, nearly every config request)
    // has no `/files/` and no `directory` segment: the route tests below are answered without
    // their own passes over the path (about 300 instructions per request).
    let one_segment = checked.is_ok_and(|name| path[..path.len() - name.len()].bytes().all(|b| b == b'/'));
    if let Some(route) = if one_segment { None } else { stored::route(path) } {
        let request = stored::FileRequest { route, method, headers, peer, ua: ua.as_ref(), facts: &facts };
        // The rare branches' futures are boxed (here and below): unboxed, the largest would set
        // the size of every request's future, which hyper and the runtime move (copy) per
        // request, kilobytes at a time.
        return Err(Box::pin(stored::serve(state, request, vendor)).await);
    }
    let file_name = match checked {
        Ok(name) => name,
        Err(reason) => {
            Metrics::inc(&state.metrics.http_bad_path);
            state.metrics.refusal(RefusalReason::BadPath);
            if let Some(suppressed) = BAD_PATH_LOG.allow() {
                tracing::warn!(peer = %peer.ip(), path = %escaped(path, 120), reason, suppressed, "refused odd request path");
            }
            return Err(StatusCode::BAD_REQUEST.into_response());
        }
    };
    if method == Method::PUT {
        // Taken once: a request is prepared once.
        let body = body.take().map_or_else(Body::empty, Body::new);
        return Err(Box::pin(upload::receive(state, file_name, ua.as_ref(), &facts, headers, body)).await);
    }
    let directory = if one_segment { directory::named(file_name) } else { directory::requested(path, file_name) };
    if let Some(mac) = directory {
        let request = directory::DirectoryRequest { mac, file: file_name, ua: ua.as_ref(), headers, peer };
        return Err(Box::pin(directory::serve(state, request, &facts)).await);
    }
    if let Some(names) = keyfile::names(file_name) {
        return Err(Box::pin(keyfile::serve(state, names, file_name, ua.as_ref(), &facts)).await);
    }
    let resolved = match state.files.resolve(file_name, ua.as_ref()) {
        Ok(r) => r,
        Err(refusal) => return Err(refused(state, file_name, ua.as_ref(), refusal, &facts)),
    };
    *vendor = match &resolved {
        Resolved::Device { vendor, .. } => VendorLabel::of(vendor.id()),
        Resolved::Model { vendor, .. } => VendorLabel::of(vendor.id()),
    };
    let auth = match &resolved {
        // Decided without a wait nearly always; the rest boxed, so that the request's future
        // holds no authorization state.
        Resolved::Device { device, .. } => match authorize_at_once(state, device, file_name, &facts, Window::Claim) {
            Authorized::Done(Ok(how)) => how,
            Authorized::Done(Err(response)) => return Err(response),
            Authorized::Waits(policy, decision) => {
                match Box::pin(authorize_after_wait(state, device, file_name, &facts, policy, decision)).await {
                    Ok(how) => how,
                    Err(response) => return Err(response),
                }
            }
        },
        Resolved::Model { .. } => "none",
    };
    let firmware = ua.as_ref().and_then(|u| u.firmware.as_deref());
    let served = match state.files.served(&resolved, file_name, firmware) {
        Ok(s) => s,
        Err(e) => {
            Metrics::inc(&state.metrics.http_render_errors);
            tracing::error!(file = file_name, error = %e, "cannot render; nothing sent");
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    };
    let now = dates::hold_until_dated(served.last_modified).await;
    let validators = (read.if_none_match, read.if_modified_since);
    let status = if validators_match(validators, &served, now) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let fetch = fetch_record(state, &resolved, &served, peer, ua, status, auth, now);
    Ok((served, status, fetch))
}

/// What an open first-fetch window does for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// The device's config file: the fetch claims the window, which then closes.
    Claim,
    /// A file that comes with it (the Yealink key file): served inside the window, which stays open.
    Peek,
    /// A request the window is not for (a phone's upload): decided as if the window were closed.
    Closed,
}

/// Runs the device's access policy; `Err` holds the response to send instead of the file.
// The error is the refusal response itself, built once and returned straight to the client:
// boxing it would only add an allocation to the refusal path.
#[allow(clippy::result_large_err)]
pub(crate) async fn authorize(
    state: &Phones,
    device: &sipprov_store::DeviceRecord,
    file: &str,
    facts: &RequestFacts<'_>,
    window: Window,
) -> Result<&'static str, Response> {
    match authorize_at_once(state, device, file, facts, window) {
        Authorized::Done(answer) => answer,
        Authorized::Waits(policy, decision) => authorize_after_wait(state, device, file, facts, policy, decision).await,
    }
}

/// How far [`authorize_at_once`] got.
enum Authorized {
    /// The answer of [`authorize`].
    Done(Result<&'static str, Response>),
    /// The decision needs a wait (a first fetch's claim, a Digest count confirmed with the
    /// other nodes): [`authorize_after_wait`] finishes it.
    Waits(Arc<Policy>, Decision),
}

/// [`authorize`] up to its first wait, without one: nearly every request is decided here
/// (an open device, Basic, Digest on one node), and a config request's future then holds no
/// authorization state (see `serve`); the rest is [`authorize_after_wait`]'s, boxed there.
fn authorize_at_once(
    state: &Phones,
    device: &sipprov_store::DeviceRecord,
    file: &str,
    facts: &RequestFacts<'_>,
    window: Window,
) -> Authorized {
    let policy =
        state.security.policy(device.mac, state.files.cache_generation(), || state.files.device_settings(device));
    // An open device needs no window (and its requests take no window lock).
    let open_window = if policy.is_open() || window == Window::Closed {
        None
    } else {
        state.security.open_window(device, sipprov_store::now_ms())
    };
    let decision = state.security.decide(device.mac, &policy, facts, open_window);
    if let Decision::FirstFetch { .. } = decision {
        if window == Window::Peek {
            return Authorized::Done(Ok("first-fetch-window"));
        }
        return Authorized::Waits(policy, decision);
    }
    // Only an accepted Digest answer is confirmed with the other nodes (its nonce count, RFC
    // 7616 §3.4).
    if state.security.confirms(&policy, &decision) {
        return Authorized::Waits(policy, decision);
    }
    Authorized::Done(concluded(state, device, file, facts, &policy, decision))
}

/// [`authorize`] from where [`authorize_at_once`] had to wait.
#[allow(clippy::result_large_err)]
async fn authorize_after_wait(
    state: &Phones,
    device: &sipprov_store::DeviceRecord,
    file: &str,
    facts: &RequestFacts<'_>,
    policy: Arc<Policy>,
    mut decision: Decision,
) -> Result<&'static str, Response> {
    if let Decision::FirstFetch { opened_at } = decision {
        // Boxed: a first fetch is rare, and its store write's future would otherwise enlarge
        // every request's (see `serve`).
        match Box::pin(state.files.claim_first_fetch(device, opened_at)).await {
            Ok(true) => return Ok("first-fetch-window"),
            // Another fetch got there first: decide as if the window were closed.
            Ok(false) => decision = state.security.decide(device.mac, &policy, facts, None),
            // The window cannot be claimed durably (the database cannot write): serving it
            // anyway could let a second requester take it again later, so decide as if it were
            // closed. A phone that has credentials still gets in; a fresh one is challenged and
            // retries, and takes its window once the database writes again.
            Err(e) => {
                if let Some(suppressed) = FIRST_FETCH_LOG.allow() {
                    tracing::error!(mac = %device.mac, error = %e, suppressed, "cannot record a first fetch; its window stays unused");
                }
                decision = state.security.decide(device.mac, &policy, facts, None);
            }
        }
    }
    // Boxed: only an accepted Digest answer on a cluster is confirmed, and its future (272
    // bytes) is not part of every request's.
    let decision = if state.security.confirms(&policy, &decision) {
        Box::pin(state.security.confirm(&policy, facts, decision)).await
    } else {
        decision
    };
    concluded(state, device, file, facts, &policy, decision)
}

/// The answer for a final decision: the way in, or the refusal (counted, and the source blocked
/// when it is one too many).
#[allow(clippy::result_large_err)]
fn concluded(
    state: &Phones,
    device: &sipprov_store::DeviceRecord,
    file: &str,
    facts: &RequestFacts<'_>,
    policy: &Policy,
    decision: Decision,
) -> Result<&'static str, Response> {
    match decision {
        Decision::Allow(how) => {
            if how.starts_with("digest") || how == "basic" {
                state.security.throttle.forgive(facts.ip, device.mac);
            }
            Ok(how)
        }
        Decision::Challenge { headers, failure } => {
            Err(count_failure(state, facts.ip, Some(device.mac), file, failure, policy.is_locked())
                .unwrap_or_else(|| challenge(headers)))
        }
        Decision::Refuse(failure) => {
            Err(count_failure(state, facts.ip, Some(device.mac), file, failure, policy.is_locked())
                .unwrap_or_else(|| StatusCode::FORBIDDEN.into_response()))
        }
        // Handled before; a second FirstFetch cannot come from a decision without a window.
        Decision::FirstFetch { .. } => Err(StatusCode::SERVICE_UNAVAILABLE.into_response()),
    }
}

/// The User-Agent, with the MAC of the verified client certificate when the User-Agent names
/// none and the certificate names exactly one: a certificate identifies the device as well as a
/// User-Agent does (better: it cannot be made up).
fn with_certificate_identity(
    ua: Option<UserAgentInfo>,
    cert_macs: Option<&[sipprov_model::Mac]>,
) -> Option<UserAgentInfo> {
    let [cert_mac] = cert_macs.unwrap_or_default() else { return ua };
    match ua {
        Some(ua) if ua.mac.is_some() => Some(ua),
        Some(ua) => Some(UserAgentInfo { mac: Some(*cert_mac), ..ua }),
        None => Some(UserAgentInfo { vendor: "unknown", model: None, firmware: None, mac: Some(*cert_mac) }),
    }
}

fn challenge(values: Vec<String>) -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            response.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// Counts a failure against the source, logs it (never a credential), and records it on the device.
pub(crate) fn note_failure(
    state: &Phones,
    ip: std::net::IpAddr,
    mac: Option<sipprov_model::Mac>,
    file: &str,
    reason: &str,
    kind: RefusalReason,
) {
    Metrics::inc(&state.metrics.http_refused);
    state.metrics.refusal(kind);
    log_and_record(state, ip, mac, file, reason);
    if state.security.throttle.fail(ip) == Outcome::NowBlocked {
        warn_blocked(state, ip);
    }
}

/// Counts a refusal of a device file. A phone's unauthenticated first try (answered by a
/// challenge its retry will meet) is counted quietly; anything else is logged and recorded on
/// the device, and so is every refusal of a device that has no way in (`locked`), so the
/// operator sees why that phone fails. When this failure blocks the source, returns the
/// blocked answer to send instead: a source gets `max_failures` refusals, not one more.
fn count_failure(
    state: &Phones,
    ip: std::net::IpAddr,
    mac: Option<sipprov_model::Mac>,
    file: &str,
    failure: Failure,
    locked: bool,
) -> Option<Response> {
    Metrics::inc(&state.metrics.http_refused);
    state.metrics.refusal(RefusalReason::of_failure(failure.reason, failure.unauthenticated, locked));
    if locked && failure.unauthenticated {
        let reason = "the device has no HTTP credentials and its first-fetch window is closed \
                      (set http.username/http.password, `sipprov device unlock`, or security.open_device_files=1)";
        log_and_record(state, ip, mac, file, reason);
    } else if failure.unauthenticated {
        tracing::debug!(peer = %ip, mac = ?mac, file = %escaped(file, 120), reason = failure.reason, "challenged");
    } else {
        log_and_record(state, ip, mac, file, failure.reason);
    }
    let outcome = if failure.unauthenticated {
        state.security.throttle.fail_unauthenticated(ip, mac)
    } else {
        state.security.throttle.fail(ip)
    };
    if outcome != Outcome::NowBlocked {
        return None;
    }
    warn_blocked(state, ip);
    Some(blocked_answer(state, std::time::Duration::from_secs(state.security.config.block_secs)))
}

fn log_and_record(state: &Phones, ip: std::net::IpAddr, mac: Option<sipprov_model::Mac>, file: &str, reason: &str) {
    let file_shown = escaped(file, 120);
    match mac {
        Some(mac) => {
            if let Some(suppressed) = REFUSED_LOG.allow() {
                tracing::warn!(peer = %ip, %mac, file = %file_shown, reason, suppressed, "provisioning request refused");
            }
        }
        None => tracing::debug!(peer = %ip, file = %file_shown, reason, "provisioning request refused"),
    }
    if let Some(mac) = mac.filter(|m| state.inventory.contains(*m)) {
        let detail =
            sipprov_api::RefusedDetail { file: file.to_string(), ip: ip.to_string(), reason: reason.to_string() };
        state.fetchlog.record(Record::Event(NewEvent::of(mac, sipprov_store::now_ms(), &detail)));
    }
}

fn warn_blocked(state: &Phones, ip: std::net::IpAddr) {
    state.metrics.source_blocked(BlockedBy::Http);
    let cfg = &state.security.config;
    tracing::warn!(peer = %ip, failures = cfg.max_failures, window_secs = cfg.failure_window_secs,
        block_secs = cfg.block_secs, "source blocked: too many unknown devices or failed authentications");
}

fn blocked(state: &Phones, wait: std::time::Duration) -> Response {
    Metrics::inc(&state.metrics.http_refused);
    state.metrics.refusal(RefusalReason::Throttled);
    blocked_answer(state, wait)
}

/// 429 with `Retry-After`, or 403, as configured.
fn blocked_answer(state: &Phones, wait: std::time::Duration) -> Response {
    if state.security.config.block_status == 403 {
        return StatusCode::FORBIDDEN.into_response();
    }
    let secs = wait.as_secs().max(1).to_string();
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs)]).into_response()
}

/// Checks a request path and returns its last segment, the file name: segments of letters,
/// digits and `._-`, none starting with a dot, at most [`MAX_SEGMENTS`] of them.
fn file_name(path: &str) -> Result<&str, &'static str> {
    if path.len() > MAX_PATH {
        return Err("path too long");
    }
    // Every request comes through here: one pass over the bytes, each classified by a table
    // (the leading slashes, the segment count and the characters were three passes and a
    // character-pattern trim, about 460 instructions for a 17-byte path). The first bad
    // character is remembered rather than returned, so that too many segments is the reason
    // given whatever else is wrong, as before.
    let bytes = path.as_bytes();
    let lead = bytes.iter().take_while(|&&b| b == b'/').count();
    let (mut slashes, mut start, mut bad) = (0, lead, None);
    for (i, &b) in bytes.iter().enumerate().skip(lead) {
        match PATH_BYTE[usize::from(b)] {
            PLAIN => {}
            SLASH => {
                slashes += 1;
                start = i + 1;
            }
            DOT if i == start => {
                bad.get_or_insert("dot segment or hidden file");
            }
            DOT => {}
            _ => {
                bad.get_or_insert("unexpected character in path");
            }
        }
    }
    if slashes >= MAX_SEGMENTS {
        return Err("too many path segments");
    }
    if let Some(reason) = bad {
        return Err(reason);
    }
    // After a `/` (ASCII) or at the start: a character boundary.
    let last = &path[start..];
    if last.is_empty() {
        return Err("no file name");
    }
    Ok(last)
}

/// [`PATH_BYTE`]'s classes.
const OTHER: u8 = 0;
const PLAIN: u8 = 1;
const DOT: u8 = 2;
const SLASH: u8 = 3;

/// What each byte is in a request path: letters, digits, `_` and `-` are plain, `.` may not
/// start a segment, `/` separates them, anything else (`%`, a non-ASCII byte, …) is refused.
const PATH_BYTE: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'/' => SLASH,
            b'.' => DOT,
            b'_' | b'-' => PLAIN,
            _ if c.is_ascii_alphanumeric() => PLAIN,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// A path segment of letters, digits and `._-`, not starting with a dot.
fn plain_segment(segment: &str) -> bool {
    !segment.starts_with('.') && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn user_agent(value: Option<&HeaderValue>) -> Option<&str> {
    let ua = value?.to_str().ok()?;
    (ua.len() <= MAX_USER_AGENT).then_some(ua)
}

/// The request headers a config fetch reads, found in one pass over the request's few
/// headers: four `HeaderMap::get`s hashed the name and probed the table each, about 400
/// instructions per request, for maps of three to five entries. Each is the name's first value,
/// as `get` returns it (a name's values follow its first in the iteration).
#[derive(Default)]
struct ReadHeaders<'a> {
    user_agent: Option<&'a HeaderValue>,
    authorization: Option<&'a HeaderValue>,
    if_none_match: Option<&'a HeaderValue>,
    if_modified_since: Option<&'a HeaderValue>,
}

impl<'a> ReadHeaders<'a> {
    fn of(headers: &'a HeaderMap) -> ReadHeaders<'a> {
        let mut read = ReadHeaders::default();
        for (name, value) in headers {
            let slot = if name == header::USER_AGENT {
                &mut read.user_agent
            } else if name == header::AUTHORIZATION {
                &mut read.authorization
            } else if name == header::IF_NONE_MATCH {
                &mut read.if_none_match
            } else if name == header::IF_MODIFIED_SINCE {
                &mut read.if_modified_since
            } else {
                continue;
            };
            slot.get_or_insert(value);
        }
        read
    }
}

fn refused(
    state: &Phones,
    file: &str,
    ua: Option<&UserAgentInfo>,
    refusal: Refusal,
    facts: &RequestFacts<'_>,
) -> Response {
    match refusal {
        Refusal::NotFound => {
            Metrics::inc(&state.metrics.http_unknown_device);
            let Some(mac) = named_device(file, ua) else {
                tracing::debug!(peer = %facts.ip, file, "no such file for this requester");
                return StatusCode::NOT_FOUND.into_response();
            };
            unknown_device(state, mac, file, facts)
        }
        Refusal::MacMismatch { path, user_agent } => {
            let reason = format!("User-Agent MAC {user_agent} contradicts the MAC in the path");
            note_failure(state, facts.ip, Some(path), file, &reason, RefusalReason::MacMismatch);
            StatusCode::FORBIDDEN.into_response()
        }
    }
}

/// The answer to a request naming a MAC the server does not know (scanners walk MAC ranges, in
/// paths and in User-Agents): counted against the source, and exactly what a known device
/// answers a requester that has not authenticated, so that nothing tells them apart.
/// The caller counts it in `http_unknown_device`.
fn unknown_device(state: &Phones, mac: sipprov_model::Mac, file: &str, facts: &RequestFacts<'_>) -> Response {
    let decision = state.security.unknown_device(&state.inventory.global(), mac, facts);
    let unauthenticated = match &decision {
        Some(Decision::Challenge { failure, .. } | Decision::Refuse(failure)) => failure.unauthenticated,
        _ => false,
    };
    let failure = Failure { reason: "unknown device", unauthenticated };
    if let Some(response) = count_failure(state, facts.ip, None, file, failure, false) {
        return response;
    }
    match decision {
        Some(Decision::Challenge { headers, .. }) => challenge(headers),
        Some(Decision::Refuse(_)) => StatusCode::FORBIDDEN.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The MAC whose device file a request names: the MAC in the file name, else the requester's
/// own (User-Agent or certificate) when the name is one a device of some vendor is served under
/// (Gigaset's `provisioning.xml`). `None` for anything else (`favicon.ico`).
fn named_device(file: &str, ua: Option<&UserAgentInfo>) -> Option<sipprov_model::Mac> {
    let vendors = registry().vendors();
    if let Some(mac) = vendors.iter().find_map(|v| v.mac_in_file_name(file)) {
        return Some(mac);
    }
    let mac = ua?.mac?;
    let device_file = |v: &&&'static dyn sipprov_vendors::Vendor| {
        v.models().iter().any(|m| {
            v.device_files(m, mac).iter().any(|f| f.scope == sipprov_vendors::FileScope::Device && f.matches(file))
        })
    };
    vendors.iter().any(|v| device_file(&v)).then_some(mac)
}

/// RFC 9110 §13.2.2: If-None-Match, when present, decides alone; else If-Modified-Since.
///
/// A 304 is recorded as a fetch of the current content, and a campaign counts it as
/// confirmation, so it is given only when the client proves it holds the current content: an
/// ETag of it (weak comparison, §8.8.3.2), or a date no earlier than its `Last-Modified`,
/// which moves strictly forward with every change (see `RenderCache::note_content`). Two
/// validators prove nothing and get the file instead: `If-None-Match: *` (it names no content;
/// §13.1.2 would answer 304 to any client that has some copy, however old) and an
/// `If-Modified-Since` later than the server's clock, `now` (no `Last-Modified` sent was that
/// late).
fn not_modified(headers: &HeaderMap, served: &Served, now: std::time::SystemTime) -> bool {
    validators_match((headers.get(header::IF_NONE_MATCH), headers.get(header::IF_MODIFIED_SINCE)), served, now)
}

/// [`not_modified`] given the request's `If-None-Match` and `If-Modified-Since` (the first
/// value of each, as `HeaderMap::get` gives it).
fn validators_match(
    (if_none_match, if_modified_since): (Option<&HeaderValue>, Option<&HeaderValue>),
    served: &Served,
    now: std::time::SystemTime,
) -> bool {
    if let Some(inm) = if_none_match.and_then(|v| v.to_str().ok()) {
        return inm.split(',').map(str::trim).any(|tag| tag.trim_start_matches("W/") == served.etag());
    }
    let since = if_modified_since.and_then(|v| v.to_str().ok()).and_then(dates::parse_lenient);
    matches!(since, Some(since) if served.last_modified <= since && since <= now)
}

/// Counts a served fetch and makes its record for the fetch log: a few words and a reference to
/// the cached content (the User-Agent's model and firmware, parsed for this request, move in).
/// `None` for a common file requested without a known device. `serve` hands the record over,
/// and waits, before the answer goes out, when the fetch log is full (see
/// [`crate::fetchlog::FetchLog::record_fetch`]). `now` is when the answer leaves.
#[allow(clippy::too_many_arguments)]
fn fetch_record(
    state: &Phones,
    resolved: &Resolved,
    served: &Arc<Served>,
    peer: SocketAddr,
    ua: Option<UserAgentInfo>,
    status: StatusCode,
    auth: &'static str,
    now: std::time::SystemTime,
) -> Option<Fetch> {
    let device = match resolved {
        Resolved::Device { device, .. } => Some(device),
        Resolved::Model { device, .. } => device.as_ref(),
    };
    if status == StatusCode::OK {
        Metrics::inc(&state.metrics.http_served);
    } else {
        Metrics::inc(&state.metrics.http_not_modified);
    }
    let device = device?;
    let (model, firmware) = ua.map_or((None, None), |u| (u.model, u.firmware));
    Some(Fetch {
        mac: device.mac,
        at: dates::epoch_ms(now),
        ip: peer.ip(),
        content: served.id.clone(),
        file: None,
        status: status.as_u16(),
        auth,
        model,
        firmware,
    })
}

fn respond(status: StatusCode, served: &Served) -> Response {
    let body = if status == StatusCode::OK { Body::from(served.bytes.clone()) } else { Body::empty() };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    // Content-Type, ETag, Last-Modified and `Cache-Control: private, no-cache` (config files
    // carry credentials: no shared cache may keep them), built once per rendering (see
    // `cache::response_headers`).
    *response.headers_mut() = served.headers.clone();
    response
}

#[cfg(test)]
mod tests {
    use super::{file_name, header, HeaderMap, ReadHeaders};

    #[test]
    fn the_headers_read_in_one_pass_are_what_get_returns() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "prov".parse().unwrap());
        headers.append(header::IF_NONE_MATCH, "\"a\"".parse().unwrap());
        headers.insert(header::USER_AGENT, "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc".parse().unwrap());
        headers.append(header::IF_NONE_MATCH, "\"b\"".parse().unwrap());
        headers.insert("x-other", "1".parse().unwrap());
        let read = ReadHeaders::of(&headers);
        assert_eq!(read.user_agent, headers.get(header::USER_AGENT));
        assert_eq!(read.if_none_match, headers.get(header::IF_NONE_MATCH));
        assert_eq!(read.if_none_match.unwrap(), "\"a\"");
        assert_eq!((read.authorization, read.if_modified_since), (None, None));
    }

    #[test]
    fn a_path_of_one_segment_is_no_stored_file() {
        for path in ["/files", "//files", "/files.cfg", "/001565aabbcc.cfg", "///a-b_c.xml"] {
            let name = file_name(path).unwrap();
            assert!(path[..path.len() - name.len()].bytes().all(|b| b == b'/'), "{path}");
            assert_eq!(super::stored::route(path), None, "{path}");
        }
    }

    #[test]
    fn paths_are_checked_before_use() {
        assert_eq!(file_name("/001565aabbcc.cfg"), Ok("001565aabbcc.cfg"));
        assert_eq!(file_name("/yealink/001565aabbcc.cfg"), Ok("001565aabbcc.cfg"));
        for bad in ["/", "/../etc/passwd", "/a/../b.cfg", "/.env", "/a%2e%2e/b", "/x y.cfg", "/a//"] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
        assert!(file_name(&format!("/{}", "a".repeat(300))).is_err());
        assert!(file_name(&"/a".repeat(9)).is_err());
        assert_eq!(file_name("//a/b_c-1.cfg"), Ok("b_c-1.cfg"), "leading slashes are skipped");
        assert_eq!(file_name("/a/.b"), Err("dot segment or hidden file"));
        assert_eq!(file_name("/a/b.c.d"), Ok("b.c.d"), "dots inside a name are fine");
        assert_eq!(file_name("/\u{e9}.cfg"), Err("unexpected character in path"));
        assert_eq!(file_name(&"/%".repeat(9)), Err("too many path segments"), "whatever else is wrong");
    }
}
