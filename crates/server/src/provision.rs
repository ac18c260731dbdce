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
use sipprov_vendors::{registry, UserAgentInfo};

use crate::auth::Security;
use crate::auth::{Decision, Policy, RequestFacts};
use crate::cache::Served;
use crate::config::UploadsConfig;
use crate::directories::Directories;
use crate::fetchlog::Fetch;
use crate::fetchlog::FetchLog;
use crate::files::{Files, Resolved};
use crate::inventory::Inventory;
use crate::listener::{Handler, TlsPeer};
use crate::metrics::labels::VendorLabel;
use crate::metrics::Metrics;
use crate::resources::ResourceCatalog;
use decide::{
    authorize, authorize_after_wait, authorize_at_once, bad_path, blocked, note_failure, refused, unknown_device,
    with_certificate_identity, Authorized, Window,
};

mod answer;
mod bandwidth;
mod bigfile;
mod dates;
mod decide;
mod directory;
mod forwarded;
mod keyfile;
mod stored;
mod upload;

const MAX_PATH: usize = 256;
const MAX_SEGMENTS: usize = 8;
const MAX_USER_AGENT: usize = 512;

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
/// route, so each request goes from hyper straight to `prepare`: no router, and the request's
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
    /// A phone's request is answered within the service call nearly always, so there is little
    /// to cancel when its client leaves early; hyper's read buffer is then reused for every
    /// request instead of allocated anew (see [`Handler::HALF_CLOSE`]).
    const HALF_CLOSE: bool = true;

    /// Answers the request here, within hyper's service call, whenever nothing has to wait
    /// (see `prepare`): the future returned is then the answer itself, with no state machine,
    /// no allocation and no copy of the request; a request that waits gets a boxed future
    /// (`answer::later`).
    fn handle(
        self,
        request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        tls: Option<TlsPeer>,
    ) -> impl std::future::Future<Output = Response> + Send + 'static {
        let started = Instant::now();
        let state = self.0;
        let peer = forwarded::client_address(peer, request.headers(), &state.proxies);
        let mut vendor = VendorLabel::UNKNOWN;
        // Read where hyper put it: the request is moved (its 224 bytes copied) only when it waits.
        let asked =
            Asked { peer, tls: tls.as_ref(), method: request.method(), uri: request.uri(), headers: request.headers() };
        match prepare(&state, &asked, &mut vendor) {
            Step::Done(Ok((served, status, record))) => {
                // The request is no longer needed: hyper's read buffer, which its head's bytes
                // share, is its own again when hyper reads the next head.
                drop(request);
                answer::served(state, served, status, record, vendor, started)
            }
            Step::Done(Err(response)) => answer::PhoneAnswer::ready(answer::timed(&state, response, vendor, started)),
            Step::Later(later) => {
                let (parts, body) = request.into_parts();
                let incoming = Incoming { peer, tls, method: parts.method, uri: parts.uri, headers: parts.headers };
                answer::PhoneAnswer::waits(answer::later(state, incoming, body, later, vendor, started))
            }
        }
    }
}

/// A request that waits, as the listener handed it over (its body apart).
struct Incoming {
    peer: SocketAddr,
    tls: Option<TlsPeer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Incoming {
    /// The request as [`prepare`] reads it.
    fn asked(&self) -> Asked<'_> {
        let Incoming { peer, tls, method, uri, headers } = self;
        Asked { peer: *peer, tls: tls.as_ref(), method, uri, headers }
    }
}

/// What [`prepare`] reads of a request: the requester's address (a trusted proxy's
/// `X-Forwarded-For` applied), what its certificate says on HTTPS, and its head.
#[derive(Clone, Copy)]
struct Asked<'a> {
    peer: SocketAddr,
    tls: Option<&'a TlsPeer>,
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
}

impl<'a> Asked<'a> {
    /// What the access checks learn of the request.
    fn facts(&self, read: &ReadHeaders<'a>) -> RequestFacts<'a> {
        let Asked { tls, method, uri, peer, .. } = *self;
        RequestFacts {
            method: method.as_str(),
            uri: uri.path_and_query().map_or(uri.path(), |p| p.as_str()),
            authorization: read.authorization.and_then(|v| v.to_str().ok()),
            tls: tls.is_some(),
            cert_macs: tls.filter(|t| t.has_certificate).map(|t| &*t.macs),
            ip: peer.ip(),
        }
    }
}

/// A served config file, its status and its fetch record (for a known device's file); else the
/// response to send instead.
type Prepared = Result<(Arc<Served>, StatusCode, Option<Fetch>), Response>;

/// How far [`prepare`] got without waiting.
enum Step {
    /// To the answer (nearly every request).
    Done(Prepared),
    /// To a wait, which [`answer::later`] runs and finishes the request after: boxed, a rare
    /// branch's state being no part of the common answer's.
    Later(Box<Later>),
}

/// What a request that waits carries from [`prepare`] to [`answer::later`]: what it waits for,
/// and the User-Agent as read (the rest is the request's, read again there).
struct Later {
    wait: Wait,
    ua: Option<UserAgentInfo>,
}

/// What a request waits for: each of the rare branches of [`prepare`].
enum Wait {
    /// A stored file (`stored`): its reads and its body's stream.
    Stored(stored::FileRoute),
    /// A phone's upload (`upload`): its body.
    Upload,
    /// A remote phone directory (`directory`).
    Directory(sipprov_model::Mac),
    /// A Yealink key file (`keyfile`).
    Keyfile(sipprov_vendors::KeyFileName),
    /// A device file whose authorization waits ([`authorize_after_wait`]): a first fetch's
    /// claim, a cluster's Digest confirmation.
    Authorize { resolved: Resolved, policy: Arc<Policy>, decision: Decision },
    /// A device file whose `Last-Modified` is ahead of the clock.
    Dated(Dated),
}

/// A file whose `Last-Modified` is ahead of the clock, held until it is not (see `dates`).
struct Dated {
    resolved: Resolved,
    served: Arc<Served>,
    auth: &'static str,
    /// How long to hold it.
    ahead: Duration,
}

impl Step {
    fn later(wait: Wait, ua: Option<UserAgentInfo>) -> Step {
        Step::Later(Box::new(Later { wait, ua }))
    }
}

/// Everything of a request's answer up to the fetch log, without waiting: the response when it
/// is not a config file's, else the file, its status and the fetch record; or, for the rare
/// request that has to wait (see [`Wait`]), where it got to. Nothing here is done twice: a
/// request's checks, counts and authorization happen once, here or after its wait.
fn prepare(state: &Arc<Phones>, asked: &Asked<'_>, vendor: &mut VendorLabel) -> Step {
    let Asked { peer, method, uri, headers, .. } = *asked;
    if let Some(wait) = state.security.throttle.blocked_for(peer.ip()) {
        return Step::Done(Err(blocked(state, wait)));
    }
    if method != Method::GET && method != Method::HEAD && method != Method::PUT {
        return Step::Done(Err((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response()));
    }
    let read = ReadHeaders::of(headers);
    let ua = user_agent(read.user_agent).and_then(|ua| registry().identify_user_agent(ua));
    let facts = asked.facts(&read);
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
        return Step::later(Wait::Stored(route), ua);
    }
    let file_name = match checked {
        Ok(name) => name,
        Err(reason) => return Step::Done(Err(bad_path(state, peer, path, reason))),
    };
    if method == Method::PUT {
        return Step::later(Wait::Upload, ua);
    }
    let directory = if one_segment { directory::named(file_name) } else { directory::requested(path, file_name) };
    if let Some(mac) = directory {
        return Step::later(Wait::Directory(mac), ua);
    }
    if let Some(names) = keyfile::names(file_name) {
        return Step::later(Wait::Keyfile(names), ua);
    }
    let resolved = match state.files.resolve(file_name, ua.as_ref()) {
        Ok(r) => r,
        Err(refusal) => return Step::Done(Err(refused(state, file_name, ua.as_ref(), refusal, &facts))),
    };
    *vendor = match &resolved {
        Resolved::Device { vendor, .. } => VendorLabel::of(vendor.id()),
        Resolved::Model { vendor, .. } => VendorLabel::of(vendor.id()),
    };
    // Decided without a wait nearly always (an open device, Basic, Digest on one node).
    let at_once = match &resolved {
        Resolved::Device { device, .. } => authorize_at_once(state, device, file_name, &facts, Window::Claim),
        Resolved::Model { .. } => Authorized::Done(Ok("none")),
    };
    let auth = match at_once {
        Authorized::Done(Ok(how)) => how,
        Authorized::Done(Err(response)) => return Step::Done(Err(response)),
        Authorized::Waits(policy, decision) => {
            return Step::later(Wait::Authorize { resolved, policy, decision }, ua);
        }
    };
    match deliver(state, resolved, file_name, ua, auth, &read, peer) {
        Ok(prepared) => Step::Done(prepared),
        Err((dated, ua)) => Step::later(Wait::Dated(dated), ua),
    }
}

/// The rest of [`prepare`] once the requester is let in: the file, rendered or cached, and
/// unless its `Last-Modified` is ahead of the clock (`Err`: a wait, with the User-Agent back),
/// its status and fetch record.
// `Err` is the rare wait's state, handed on once.
#[allow(clippy::result_large_err)]
fn deliver(
    state: &Phones,
    resolved: Resolved,
    file_name: &str,
    ua: Option<UserAgentInfo>,
    auth: &'static str,
    read: &ReadHeaders<'_>,
    peer: SocketAddr,
) -> Result<Prepared, (Dated, Option<UserAgentInfo>)> {
    let firmware = ua.as_ref().and_then(|u| u.firmware.as_deref());
    let served = match state.files.served(&resolved, file_name, firmware) {
        Ok(s) => s,
        Err(e) => {
            Metrics::inc(&state.metrics.http_render_errors);
            tracing::error!(file = file_name, error = %e, "cannot render; nothing sent");
            return Ok(Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()));
        }
    };
    match dates::ahead(served.last_modified) {
        Ok(now) => Ok(Ok(conclude(state, &resolved, served, peer, ua, auth, read, now))),
        Err(ahead) => Err((Dated { resolved, served, auth, ahead }, ua)),
    }
}

/// The status of a served file (304 when the request's validators match it at `now`, the
/// time the answer leaves) and its fetch record.
#[allow(clippy::too_many_arguments)]
fn conclude(
    state: &Phones,
    resolved: &Resolved,
    served: Arc<Served>,
    peer: SocketAddr,
    ua: Option<UserAgentInfo>,
    auth: &'static str,
    read: &ReadHeaders<'_>,
    now: std::time::SystemTime,
) -> (Arc<Served>, StatusCode, Option<Fetch>) {
    let validators = (read.if_none_match, read.if_modified_since);
    let status = if validators_match(validators, &served, now) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let fetch = fetch_record(state, resolved, &served, peer, ua, status, auth, now);
    (served, status, fetch)
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
