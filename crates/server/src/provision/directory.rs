//! A device's remote phone directory on the provisioning listener, rendered in its vendor's
//! format from the directory its merged `directory.name` names.
//!
//! Paths (under any prefix, as config files are): `/directory/<MAC>.xml` (what `directory.url`
//! points at), `/directory/<MAC>/phonebook.xml` (Grandstream asks for `phonebook.xml` under the
//! path it is given), and `<MAC>-directory.xml`, the name a Polycom phone fetches from its
//! provisioning server by itself.
//!
//! Contacts are personal data: a directory is served only to a requester that passes the
//! device's own access policy, as its config file is, but the first-fetch window never admits
//! it (the window is for the config file that hands the phone its credentials). An unknown MAC
//! gets exactly the unknown-device answer config files give, so the answers do not tell known
//! MACs from unknown ones; a device without a directory (or whose vendor has no format) gets a
//! 404 only after it has authenticated.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sipprov_model::{known, Mac};
use sipprov_vendors::{registry, UserAgentInfo};

use super::Phones;
use crate::auth::RequestFacts;
use crate::fetchlog::Fetch;
use crate::metrics::labels::RefusalReason;

/// The MAC whose directory `path` (already checked, `file` its last segment) asks for, if it
/// is a directory path at all.
pub(super) fn requested(path: &str, file: &str) -> Option<Mac> {
    // Every config request passes here: each directory path names `directory` somewhere, and
    // testing that first spares the others the segment list.
    if !path.as_bytes().windows(DIRECTORY.len()).any(|w| w.eq_ignore_ascii_case(DIRECTORY)) {
        return None;
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let parent = |back: usize| segments.len().checked_sub(back).map(|i| segments[i]);
    if let Some(mac) = file.strip_suffix("-directory.xml").or_else(|| file.strip_suffix("-DIRECTORY.XML")) {
        return mac_of(mac);
    }
    if parent(2).is_some_and(|p| p.eq_ignore_ascii_case("directory")) {
        return file.strip_suffix(".xml").or_else(|| file.strip_suffix(".XML")).and_then(mac_of);
    }
    if file.eq_ignore_ascii_case("phonebook.xml") && parent(3).is_some_and(|p| p.eq_ignore_ascii_case("directory")) {
        return parent(2).and_then(mac_of);
    }
    None
}

/// [`requested`] for a path of one segment (`/<file>`): only `<MAC>-directory.xml` can name a
/// directory there (the other forms need a `directory` segment before the file).
pub(super) fn named(file: &str) -> Option<Mac> {
    file.strip_suffix("-directory.xml").or_else(|| file.strip_suffix("-DIRECTORY.XML")).and_then(mac_of)
}

/// The word in every directory path (`/directory/…`, `<MAC>-directory.xml`), in any case.
const DIRECTORY: &[u8] = b"directory";

/// Twelve hex digits, not a placeholder.
fn mac_of(text: &str) -> Option<Mac> {
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.parse::<Mac>().ok().filter(|m| !m.is_placeholder())
}

/// What the directory route needs of the request beyond the access facts.
pub(super) struct DirectoryRequest<'a> {
    /// The MAC the path names.
    pub(super) mac: Mac,
    /// The requested file name (for logs and records).
    pub(super) file: &'a str,
    /// What the User-Agent says.
    pub(super) ua: Option<&'a UserAgentInfo>,
    /// The request headers (validators).
    pub(super) headers: &'a HeaderMap,
    /// Who asks.
    pub(super) peer: SocketAddr,
}

/// Answers a directory request (see the module documentation for who gets what).
pub(super) async fn serve(state: &Phones, request: DirectoryRequest<'_>, facts: &RequestFacts<'_>) -> Response {
    let DirectoryRequest { mac, file, ua, headers, peer } = request;
    if let Some(ua_mac) = ua.and_then(|u| u.mac).filter(|m| *m != mac) {
        let reason = format!("User-Agent MAC {ua_mac} contradicts the MAC in the path");
        super::note_failure(state, facts.ip, Some(mac), file, &reason, RefusalReason::MacMismatch);
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(device) = state.inventory.device(mac) else {
        crate::metrics::Metrics::inc(&state.metrics.http_unknown_device);
        return super::unknown_device(state, mac, file, facts);
    };
    let auth = match super::authorize(state, &device, file, facts, super::Window::Closed).await {
        Ok(how) => how,
        Err(response) => return response,
    };
    let settings = state.files.device_settings(&device);
    let Some(name) = settings.get_key(&known::DIRECTORY_NAME).filter(|n| !n.is_empty()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(vendor) = registry().get(&device.vendor) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(served) = state.directories.as_ref().and_then(|d| d.served(name, vendor)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = super::dates::hold_until_dated(served.last_modified).await;
    let status = if super::not_modified(headers, &served, now) { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    state
        .fetchlog
        .record_fetch(Fetch {
            mac,
            at: super::dates::epoch_ms(now),
            ip: peer.ip(),
            content: served.id.clone(),
            file: (file != served.file()).then(|| file.into()),
            status: status.as_u16(),
            auth,
            model: ua.and_then(|u| u.model.clone()),
            firmware: ua.and_then(|u| u.firmware.clone()),
        })
        .await;
    super::respond(status, &served)
}

#[cfg(test)]
mod tests {
    use super::{named, requested};

    #[test]
    fn directory_paths() {
        let mac = Some("001565aabbcc".parse().unwrap());
        assert_eq!(requested("/directory/001565AABBCC.xml", "001565AABBCC.xml"), mac);
        assert_eq!(requested("/p/directory/001565aabbcc.xml", "001565aabbcc.xml"), mac);
        assert_eq!(requested("/directory/001565aabbcc/phonebook.xml", "phonebook.xml"), mac);
        assert_eq!(requested("/001565aabbcc-directory.xml", "001565aabbcc-directory.xml"), mac);
        for (path, file) in [
            ("/001565aabbcc.xml", "001565aabbcc.xml"),
            ("/directory/000000000000.xml", "000000000000.xml"),
            ("/directory/x/phonebook.xml", "phonebook.xml"),
            ("/phonebook.xml", "phonebook.xml"),
            ("/directory/001565aabbc.xml", "001565aabbc.xml"),
        ] {
            assert_eq!(requested(path, file), None, "{path}");
        }
    }

    #[test]
    fn a_one_segment_path_is_named_as_requested_finds_it() {
        for file in [
            "001565aabbcc-directory.xml",
            "001565AABBCC-DIRECTORY.XML",
            "001565aabbcc-Directory.xml",
            "000000000000-directory.xml",
            "001565aabbc-directory.xml",
            "-directory.xml",
            "directory.xml",
            "001565aabbcc.xml",
            "phonebook.xml",
            "001565aabbcc.cfg",
        ] {
            for path in [format!("/{file}"), format!("///{file}")] {
                assert_eq!(named(file), requested(&path, file), "{path}");
            }
        }
    }
}
