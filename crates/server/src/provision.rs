//! The phone-facing HTTP listener: config files under the names firmware requests.
//!
//! Every path is checked before anything else (length, characters, no dot
//! segments); the last segment is the file name, so phones may be pointed at
//! `http://host/` or at any sub-directory such as `http://host/yealink/`.
//! Unknown devices get a bare 404 and never another device's file; a
//! User-Agent whose MAC contradicts the path's MAC gets 403 and is logged.
//!
//! Before a device's own file is rendered, [`crate::auth`] decides whether the requester may have
//! it (allow-list, client certificate, Digest/Basic, first-fetch window). Failures and unknown MACs
//! count against the source address; a source past the threshold is refused outright for a
//! cool-down. Every served fetch is recorded with how the requester was accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Router;
use sipprov_sip::logsafe::{escaped, LogLimiter};
use sipprov_store::{FetchInfo, NewEvent};
use sipprov_vendors::{registry, UserAgentInfo};

use crate::auth::{throttle::Outcome, Decision, RequestFacts};
use crate::cache::Served;
use crate::fetchlog::Record;
use crate::metrics::Metrics;
use crate::state::{AppState, Refusal, Resolved};
use crate::tls::TlsPeer;

mod dates;
mod keyfile;

const MAX_PATH: usize = 256;
const MAX_SEGMENTS: usize = 8;
const MAX_USER_AGENT: usize = 512;

// A refused request costs its sender one HTTP request: the warnings are rationed, with the count
// of those held back in the next one (refusals of known devices stay in their history).
static BAD_PATH_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));
static REFUSED_LOG: LogLimiter = LogLimiter::new(20, Duration::from_secs(5));

/// The router for the provisioning listener.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(fetch).with_state(state)
}

async fn fetch(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    tls: Option<Extension<TlsPeer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(wait) = state.security.throttle.blocked_for(peer.ip()) {
        return blocked(&state, wait);
    }
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let file_name = match file_name(uri.path()) {
        Ok(name) => name,
        Err(reason) => {
            Metrics::inc(&state.metrics.http_bad_path);
            if let Some(suppressed) = BAD_PATH_LOG.allow() {
                tracing::warn!(peer = %peer.ip(), path = %escaped(uri.path(), 120), reason, suppressed, "refused odd request path");
            }
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let ua = user_agent(&headers).and_then(|ua| registry().identify_user_agent(ua));
    let tls = tls.map(|Extension(t)| t);
    let facts = RequestFacts {
        method: method.as_str(),
        uri: uri.path_and_query().map_or(uri.path(), |p| p.as_str()),
        authorization: headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()),
        tls: tls.is_some(),
        cert_macs: tls.as_ref().filter(|t| t.has_certificate).map(|t| &*t.macs),
        ip: peer.ip(),
    };
    if let Some(stem) = keyfile::stem(file_name) {
        return keyfile::serve(&state, stem, file_name, ua.as_ref(), &facts);
    }
    let resolved = match state.resolve(file_name, ua.as_ref()) {
        Ok(r) => r,
        Err(refusal) => return refused(&state, file_name, refusal, &facts),
    };
    let auth = match &resolved {
        Resolved::Device { device, .. } => match authorize(&state, device, file_name, &facts) {
            Ok(how) => how,
            Err(response) => return response,
        },
        Resolved::Model { .. } => "none",
    };
    let served = match state.served(&resolved, file_name) {
        Ok(s) => s,
        Err(e) => {
            Metrics::inc(&state.metrics.http_render_errors);
            tracing::error!(file = file_name, error = %e, "cannot render; nothing sent");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    dates::hold_until_dated(served.last_modified).await;
    let status = if not_modified(&headers, &served) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    record_fetch(&state, &resolved, &served, peer, ua.as_ref(), status, auth);
    respond(status, &served)
}

/// Runs the device's access policy; `Err` holds the response to send instead of the file.
// The error is the refusal response itself, built once and returned straight to the client:
// boxing it would only add an allocation to the refusal path.
#[allow(clippy::result_large_err)]
pub(crate) fn authorize(
    state: &AppState,
    device: &sipprov_store::DeviceRecord,
    file: &str,
    facts: &RequestFacts<'_>,
) -> Result<&'static str, Response> {
    let policy =
        state.security.policy(device.mac, state.cache.generation(), || state.inventory.merged_settings(device));
    match state.security.decide(device, &policy, facts, sipprov_store::now_ms()) {
        Decision::Allow(how) => Ok(how),
        Decision::Challenge { headers, failure } => {
            if let Some(reason) = failure {
                note_failure(state, facts.ip, Some(device.mac), file, reason);
            }
            Err(challenge(headers))
        }
        Decision::Refuse { reason, failure } => {
            if failure {
                note_failure(state, facts.ip, Some(device.mac), file, reason);
            } else {
                if let Some(suppressed) = REFUSED_LOG.allow() {
                    tracing::warn!(peer = %facts.ip, mac = %device.mac, file = %escaped(file, 120), reason, suppressed, "refused");
                }
            }
            Err(StatusCode::FORBIDDEN.into_response())
        }
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
    state: &AppState,
    ip: std::net::IpAddr,
    mac: Option<sipprov_model::Mac>,
    file: &str,
    reason: &str,
) {
    Metrics::inc(&state.metrics.http_refused);
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
        state.fetchlog.record(Record::Event(NewEvent {
            mac,
            at: sipprov_store::now_ms(),
            kind: "refused".into(),
            detail: serde_json::json!({ "file": file, "ip": ip.to_string(), "reason": reason }),
        }));
    }
    if state.security.throttle.fail(ip) == Outcome::NowBlocked {
        let cfg = &state.security.config;
        tracing::warn!(peer = %ip, failures = cfg.max_failures, window_secs = cfg.failure_window_secs,
            block_secs = cfg.block_secs, "source blocked: too many unknown devices or failed authentications");
    }
}

fn blocked(state: &AppState, wait: std::time::Duration) -> Response {
    Metrics::inc(&state.metrics.http_refused);
    if state.security.config.block_status == 403 {
        return StatusCode::FORBIDDEN.into_response();
    }
    let secs = wait.as_secs().max(1).to_string();
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, secs)]).into_response()
}

/// Checks a request path and returns its last segment, the file name.
fn file_name(path: &str) -> Result<&str, &'static str> {
    if path.len() > MAX_PATH {
        return Err("path too long");
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.len() > MAX_SEGMENTS {
        return Err("too many path segments");
    }
    for segment in &segments {
        if segment.starts_with('.') {
            return Err("dot segment or hidden file");
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err("unexpected character in path");
        }
    }
    match segments.last() {
        Some(last) if !last.is_empty() => Ok(last),
        _ => Err("no file name"),
    }
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    (ua.len() <= MAX_USER_AGENT).then_some(ua)
}

fn refused(state: &AppState, file: &str, refusal: Refusal, facts: &RequestFacts<'_>) -> Response {
    match refusal {
        Refusal::NotFound => {
            Metrics::inc(&state.metrics.http_unknown_device);
            let asked_mac = registry().vendors().iter().find_map(|v| v.mac_in_file_name(file));
            if asked_mac.is_none() {
                tracing::debug!(peer = %facts.ip, file, "no such file for this requester");
                return StatusCode::NOT_FOUND.into_response();
            }
            // A MAC we do not know: count it (scanners walk MAC ranges) and answer exactly as a
            // known device would answer a request without credentials, so nothing tells them apart.
            note_failure(state, facts.ip, None, file, "unknown device");
            match state.security.unknown_device(&state.inventory.global(), facts) {
                Some(Decision::Challenge { headers, .. }) => challenge(headers),
                Some(_) => StatusCode::FORBIDDEN.into_response(),
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        Refusal::MacMismatch { path, user_agent } => {
            let reason = format!("User-Agent MAC {user_agent} contradicts the MAC in the path");
            note_failure(state, facts.ip, Some(path), file, &reason);
            StatusCode::FORBIDDEN.into_response()
        }
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
/// `If-Modified-Since` later than the server's clock (no `Last-Modified` sent was that late).
fn not_modified(headers: &HeaderMap, served: &Served) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').map(str::trim).any(|tag| tag.trim_start_matches("W/") == served.etag);
    }
    let since = headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(dates::parse_lenient);
    matches!(since, Some(since) if served.last_modified <= since && !dates::is_future(since))
}

fn record_fetch(
    state: &AppState,
    resolved: &Resolved,
    served: &Served,
    peer: SocketAddr,
    ua: Option<&UserAgentInfo>,
    status: StatusCode,
    auth: &'static str,
) {
    let device = match resolved {
        Resolved::Device { device, .. } => Some(device),
        Resolved::Model { device, .. } => device.as_ref(),
    };
    if status == StatusCode::OK {
        Metrics::inc(&state.metrics.http_served);
    } else {
        Metrics::inc(&state.metrics.http_not_modified);
    }
    let Some(device) = device else { return };
    state.fetchlog.record(Record::Fetch {
        info: FetchInfo {
            mac: device.mac,
            at: sipprov_store::now_ms(),
            ip: peer.ip().to_string(),
            file: served.file.clone(),
            hash: served.hash.clone(),
            reported_model: ua.and_then(|u| u.model.clone()),
            reported_firmware: ua.and_then(|u| u.firmware.clone()),
        },
        status: status.as_u16(),
        auth,
    });
}

fn respond(status: StatusCode, served: &Served) -> Response {
    let body = if status == StatusCode::OK { Body::from(served.bytes.clone()) } else { Body::empty() };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(served.content_type));
    if let Ok(etag) = HeaderValue::from_str(&served.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(lm) = HeaderValue::from_str(&httpdate::fmt_http_date(served.last_modified)) {
        headers.insert(header::LAST_MODIFIED, lm);
    }
    // Config files carry credentials: no shared cache may keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn paths_are_checked_before_use() {
        assert_eq!(file_name("/001565aabbcc.cfg"), Ok("001565aabbcc.cfg"));
        assert_eq!(file_name("/yealink/001565aabbcc.cfg"), Ok("001565aabbcc.cfg"));
        for bad in ["/", "/../etc/passwd", "/a/../b.cfg", "/.env", "/a%2e%2e/b", "/x y.cfg", "/a//"] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
        assert!(file_name(&format!("/{}", "a".repeat(300))).is_err());
        assert!(file_name(&"/a".repeat(9)).is_err());
    }
}
