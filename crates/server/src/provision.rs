//! The phone-facing HTTP listener: config files under the names firmware requests.
//!
//! Every path is checked before anything else (length, characters, no dot
//! segments); the last segment is the file name, so phones may be pointed at
//! `http://host/` or at any sub-directory such as `http://host/yealink/`.
//! Unknown devices get a bare 404 and never another device's file; a
//! User-Agent whose MAC contradicts the path's MAC gets 403 and is logged.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use sipprov_store::{FetchInfo, NewEvent};
use sipprov_vendors::{registry, UserAgentInfo};

use crate::cache::Served;
use crate::fetchlog::Record;
use crate::metrics::Metrics;
use crate::state::{AppState, Refusal, Resolved};

mod dates;

const MAX_PATH: usize = 256;
const MAX_SEGMENTS: usize = 8;
const MAX_USER_AGENT: usize = 512;

/// The router for the provisioning listener.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(fetch).with_state(state)
}

async fn fetch(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let file_name = match file_name(uri.path()) {
        Ok(name) => name,
        Err(reason) => {
            Metrics::inc(&state.metrics.http_bad_path);
            tracing::warn!(peer = %peer.ip(), path = %truncate(uri.path(), 120), reason, "refused odd request path");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    let ua = user_agent(&headers).and_then(|ua| registry().identify_user_agent(ua));
    let resolved = match state.resolve(file_name, ua.as_ref()) {
        Ok(r) => r,
        Err(refusal) => return refused(&state, peer, file_name, refusal),
    };
    let served = match state.served(&resolved, file_name) {
        Ok(s) => s,
        Err(e) => {
            Metrics::inc(&state.metrics.http_render_errors);
            tracing::error!(file = file_name, error = %e, "cannot render; nothing sent");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let status = if not_modified(&headers, &served) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    record_fetch(&state, &resolved, &served, peer, ua.as_ref(), status);
    respond(status, &served)
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

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn refused(state: &AppState, peer: SocketAddr, file: &str, refusal: Refusal) -> Response {
    match refusal {
        Refusal::NotFound => {
            Metrics::inc(&state.metrics.http_unknown_device);
            tracing::debug!(peer = %peer.ip(), file, "no such file for this requester");
            StatusCode::NOT_FOUND.into_response()
        }
        Refusal::MacMismatch { path, user_agent } => {
            Metrics::inc(&state.metrics.http_refused);
            tracing::warn!(peer = %peer.ip(), file, path_mac = %path, user_agent_mac = %user_agent,
                "refused: the User-Agent's MAC contradicts the MAC in the path");
            if state.inventory.contains(path) {
                state.fetchlog.record(Record::Event(NewEvent {
                    mac: path,
                    at: sipprov_store::now_ms(),
                    kind: "refused".into(),
                    detail: serde_json::json!({
                        "file": file, "ip": peer.ip().to_string(),
                        "reason": format!("User-Agent MAC {user_agent} does not match the path"),
                    }),
                }));
            }
            StatusCode::FORBIDDEN.into_response()
        }
    }
}

/// RFC 9110 §13.2.2: If-None-Match, when present, decides alone; else If-Modified-Since.
fn not_modified(headers: &HeaderMap, served: &Served) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return inm.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == served.etag);
    }
    let since = headers.get(header::IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(dates::parse_lenient);
    matches!(since, Some(since) if served.last_modified <= since)
}

fn record_fetch(
    state: &AppState,
    resolved: &Resolved,
    served: &Served,
    peer: SocketAddr,
    ua: Option<&UserAgentInfo>,
    status: StatusCode,
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
