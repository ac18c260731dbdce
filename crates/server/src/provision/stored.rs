//! The routes of stored files (firmware, ringtones, wallpapers, language files) on the
//! provisioning listener: `…/files/<name>` for open files and `…/files/<MAC12>/<name>` for
//! files only their device may have, under whatever directory the phone provisions from.
//!
//! - **Open path**: a catalog file whose access is `open` is served to anyone; any other name
//!   (unknown, or a device-only file) is a 404, the same 404.
//! - **Device path**: exactly what the device's config file gets. A User-Agent MAC that
//!   contradicts the path's is refused (403, recorded); an unknown MAC gets what a known device
//!   answers an unauthenticated requester and counts against the source; a known device runs its
//!   access policy (`authorize`, first-fetch window closed: a download never claims it) with the
//!   same challenge, throttle and refusals. Only then is the name looked up, so a requester who
//!   has not authenticated learns nothing about which names exist; an authenticated one gets a
//!   404 for a name that is not a device-only file.
//!
//! Every download of a known device (the device path, or a User-Agent naming a device in the
//! inventory) is recorded in its history as a `download` event once the body is done, with the
//! bytes sent and whether the download completed; it is not a config `fetch`, so it moves
//! neither the device's last-seen file nor a campaign's confirmation.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sipprov_sip::logsafe::LogLimiter;
use sipprov_store::NewEvent;
use sipprov_vendors::UserAgentInfo;

use super::bigfile::{self, Delivery, Outcome, StoredFile};
use super::{authorize, Phones, Window};
use crate::auth::RequestFacts;
use crate::fetchlog::Record;
use crate::files::Refusal;
use crate::metrics::labels::VendorLabel;
use crate::metrics::Metrics;
use crate::resources::{FileAccess, ResourceFile};

/// The directory segment stored files are served under.
const FILES_DIR: &str = "files";

/// Rationed: a store whose content went missing would otherwise log once per request.
static CONTENT_LOG: LogLimiter = LogLimiter::new(5, std::time::Duration::from_secs(60));

/// A request for a stored file, as its path names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileRoute {
    /// `Some` on the device path.
    pub(super) mac: Option<sipprov_model::Mac>,
    /// The catalog name, percent-decoded.
    pub(super) name: String,
}

/// Recognises `[base…]/files/<name>` and `[base…]/files/<MAC12>/<name>`; `None` for any other
/// path (a config file). `files` is thus a reserved directory name on the provisioning
/// listener. The base segments are checked like a config path's; a name that cannot be a
/// catalog name is left for the lookup to refuse with 404.
pub(super) fn route(path: &str) -> Option<FileRoute> {
    // Every config request passes here first: the test for a `files` segment keeps them from
    // paying for the segment list. It looks only after each `/` (a config path has one or two):
    // `str::contains` prepares a substring search that costs more than the whole short path.
    if path.len() > super::MAX_PATH || !names_files_dir(path) {
        return None;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if segments.len() > super::MAX_SEGMENTS {
        return None;
    }
    let (base, mac, name) = match segments.as_slice() {
        [base @ .., dir, name] if *dir == FILES_DIR => (base, None, *name),
        [base @ .., dir, mac, name] if *dir == FILES_DIR => (base, Some(mac12(mac)?), *name),
        _ => return None,
    };
    if !base.iter().all(|s| super::plain_segment(s)) {
        return None;
    }
    Some(FileRoute { mac, name: decode(name)? })
}

/// Whether `path` has `/files/` in it.
fn names_files_dir(path: &str) -> bool {
    let bytes = path.as_bytes();
    let dir = FILES_DIR.as_bytes();
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'/' && bytes[i + 1..].starts_with(dir) && bytes.get(i + 1 + dir.len()) == Some(&b'/'))
}

/// Twelve hex digits, in either case.
fn mac12(segment: &str) -> Option<sipprov_model::Mac> {
    (segment.len() == 12 && segment.bytes().all(|b| b.is_ascii_hexdigit())).then(|| segment.parse().ok())?
}

/// Percent-decodes a segment (clients may escape the `+ ( ) ,` that catalog names allow);
/// `None` for a bad escape or anything that is not ASCII, which no catalog name is.
fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (!name.is_empty() && name.is_ascii()).then_some(name)
}

/// What the handler hands over about the request.
pub(super) struct FileRequest<'a> {
    pub(super) route: FileRoute,
    pub(super) method: &'a Method,
    pub(super) headers: &'a HeaderMap,
    pub(super) peer: SocketAddr,
    pub(super) ua: Option<&'a UserAgentInfo>,
    pub(super) facts: &'a RequestFacts<'a>,
}

/// Serves a stored file (see the module doc for who gets what).
pub(super) async fn serve(state: &Phones, request: FileRequest<'_>, vendor: &mut VendorLabel) -> Response {
    if request.method != Method::GET && request.method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response();
    }
    let (file, device, auth) = match admit(state, &request, vendor).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    // On PostgreSQL, content uploaded through another node is fetched here first.
    let path = match state.resources.ensure_content(&file).await {
        Ok(path) => path,
        Err(e) => {
            if let Some(suppressed) = CONTENT_LOG.allow() {
                tracing::error!(file = %file.name, error = %e, suppressed, "cannot get a stored file's content; nothing sent");
            }
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let stored = StoredFile {
        path,
        size: file.size,
        sha256: file.sha256.clone(),
        last_modified: StoredFile::time_of(file.added_at),
        private: file.access == FileAccess::Device,
    };
    let opened = match bigfile::open(&stored).await {
        Ok(opened) => opened,
        Err(e) => {
            if let Some(suppressed) = CONTENT_LOG.allow() {
                tracing::error!(file = %file.name, error = %e, suppressed, "cannot read a stored file's content; nothing sent");
            }
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let plan = bigfile::plan(request.method, request.headers, &stored);
    let delivery = Delivery {
        bytes_counter: state.metrics.file_bytes_served.clone(),
        bandwidth: state.bandwidth.clone(),
        done: reporter(state, &file, device, auth, &request),
    };
    bigfile::respond(request.method, plan, &stored, opened, delivery)
}

/// A device-path request's device and how it was accepted, or the refusal to send.
type Admitted = (Arc<ResourceFile>, Option<sipprov_model::Mac>, &'static str);

/// Finds the file and decides whether the requester may have it.
// The error is the response itself, sent as is (see `authorize`).
#[allow(clippy::result_large_err)]
async fn admit(state: &Phones, request: &FileRequest<'_>, vendor: &mut VendorLabel) -> Result<Admitted, Response> {
    let name = &request.route.name;
    let ua_mac = request.ua.and_then(|u| u.mac);
    let Some(mac) = request.route.mac else {
        let file = lookup(state, name, FileAccess::Open)?;
        let device = ua_mac.and_then(|m| state.inventory.device(m));
        if let Some(device) = &device {
            *vendor = VendorLabel::of(&device.vendor);
        }
        return Ok((file, device.map(|d| d.mac), "none"));
    };
    if let Some(claimed) = ua_mac.filter(|m| *m != mac) {
        let refusal = Refusal::MacMismatch { path: mac, user_agent: claimed };
        return Err(super::refused(state, name, request.ua, refusal, request.facts));
    }
    let Some(device) = state.inventory.device(mac) else {
        Metrics::inc(&state.metrics.http_unknown_device);
        return Err(super::unknown_device(state, mac, name, request.facts));
    };
    *vendor = VendorLabel::of(&device.vendor);
    let auth = authorize(state, &device, name, request.facts, Window::Closed).await?;
    let file = lookup(state, name, FileAccess::Device)?;
    Ok((file, Some(mac), auth))
}

/// The catalog file `name` if its access is `access`; the one 404 otherwise.
#[allow(clippy::result_large_err)]
fn lookup(state: &Phones, name: &str, access: FileAccess) -> Result<Arc<ResourceFile>, Response> {
    match state.resources.by_name(name).filter(|f| f.access == access) {
        Some(file) => Ok(file),
        None => {
            Metrics::inc(&state.metrics.http_unknown_device);
            Err(StatusCode::NOT_FOUND.into_response())
        }
    }
}

/// What to do once the response is done: count it, and record it in the device's history.
/// HEAD, 412 and 416 answers are not downloads and are not recorded.
fn reporter(
    state: &Phones,
    file: &ResourceFile,
    device: Option<sipprov_model::Mac>,
    auth: &'static str,
    request: &FileRequest<'_>,
) -> Box<dyn FnOnce(Outcome) + Send> {
    let metrics = state.metrics.clone();
    let fetchlog = state.fetchlog.clone();
    let head = request.method == Method::HEAD;
    let (name, sha256) = (file.name.clone(), file.sha256.clone());
    let ip = request.peer.ip().to_string();
    let firmware = request.ua.and_then(|u| u.firmware.clone());
    Box::new(move |outcome: Outcome| {
        let status = outcome.status;
        let downloaded = !head && matches!(status, StatusCode::OK | StatusCode::PARTIAL_CONTENT);
        if downloaded {
            Metrics::inc(&metrics.file_downloads);
        } else if status == StatusCode::NOT_MODIFIED {
            Metrics::inc(&metrics.http_not_modified);
        }
        let Some(mac) = device.filter(|_| downloaded || status == StatusCode::NOT_MODIFIED) else { return };
        let detail = sipprov_api::DownloadDetail {
            file: name,
            ip,
            sha256,
            status: status.as_u16(),
            first: outcome.first,
            bytes: outcome.sent,
            complete: outcome.complete,
            auth: auth.to_string(),
            firmware,
        };
        fetchlog.record(Record::Event(NewEvent::of(mac, sipprov_store::now_ms(), &detail)));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(text: &str) -> Option<sipprov_model::Mac> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn routes_under_any_base() {
        let open = |name: &str| Some(FileRoute { mac: None, name: name.into() });
        assert_eq!(route("/files/fw-66.86.rom"), open("fw-66.86.rom"));
        assert_eq!(route("/yealink/files/fw-66.86.rom"), open("fw-66.86.rom"));
        assert_eq!(route("/files/T46S%2866.86%29.rom"), open("T46S(66.86).rom"));
        assert_eq!(route("/files/a+b,(c).bin"), open("a+b,(c).bin"));
        assert_eq!(
            route("/files/001565AABBCC/ring.wav"),
            Some(FileRoute { mac: mac("001565aabbcc"), name: "ring.wav".into() })
        );
        assert_eq!(
            route("/p/files/001565aabbcc/ring.wav"),
            Some(FileRoute { mac: mac("001565aabbcc"), name: "ring.wav".into() })
        );
    }

    #[test]
    fn other_paths_are_not_stored_files() {
        for path in ["/001565aabbcc.cfg", "/files", "/files/", "/x/y/z", "/../files/a", "/.git/files/a"] {
            assert_eq!(route(path), None, "{path}");
        }
        // Escapes that cannot make a catalog name.
        for path in ["/files/%zz", "/files/%C3%A9", "/files/%"] {
            assert_eq!(route(path), None, "{path}");
        }
        // Not a MAC in the middle: not a stored-file path at all.
        assert!(route("/files/notamac/ring.wav").is_none());
    }
}
