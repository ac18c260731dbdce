//! Yealink `<name>_Security.enc` key files (research `config-formats.md` §1.4).
//!
//! With `static.auto_provision.aes_key_in_file = 1` (setting `yealink.aes_key_file=1`) the phone
//! asks for `<mac>_Security.enc` next to its encrypted `<mac>.cfg`: the file's AES key wrapped with
//! the fixed key in every Yealink firmware. That wrapping key is public, so the key file is exactly
//! as secret as the access control in front of it: it is served only to a requester that passes
//! the device's own policy (the same one as for `<mac>.cfg`), and only for device files, since
//! common files are not encrypted. An authenticated requester without a key file gets a 404; a
//! requester that has not authenticated gets the device's challenge, known MAC or not.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sipprov_store::FetchInfo;
use sipprov_vendors::{yealink_aes, UserAgentInfo};

use crate::auth::RequestFacts;
use crate::cache::{content_hash, Served};
use crate::fetchlog::Record;
use crate::state::{AppState, Resolved};

const SUFFIX: &str = "_security.enc";

/// The name a key file belongs to (`001565aabbcc` for `001565aabbcc_Security.enc`), if it is one.
pub(super) fn stem(file: &str) -> Option<&str> {
    let split = file.len().checked_sub(SUFFIX.len())?;
    let (stem, suffix) = (file.get(..split)?, file.get(split..)?);
    (suffix.eq_ignore_ascii_case(SUFFIX) && !stem.is_empty()).then_some(stem)
}

/// Answers a key-file request. A known device's policy is checked before anything says
/// whether it has a key file, and an unknown MAC gets the unknown-device answer, so the answers
/// do not tell known MACs from unknown ones. Inside the first-fetch window the key file is
/// served without claiming the window: the phone fetches it before the config file it decrypts.
pub(super) async fn serve(
    state: &AppState,
    stem: &str,
    file: &str,
    ua: Option<&UserAgentInfo>,
    facts: &RequestFacts<'_>,
) -> Response {
    let cfg_name = format!("{stem}.cfg");
    let device = match state.resolve(&cfg_name, ua) {
        Ok(Resolved::Device { device, .. }) => device,
        // A common file's name: common files are never encrypted.
        Ok(Resolved::Model { .. }) => return StatusCode::NOT_FOUND.into_response(),
        // Counted and answered exactly like a request for the MAC's own file.
        Err(refusal) => return super::refused(state, &cfg_name, ua, refusal, facts),
    };
    let auth = match super::authorize(state, &device, file, facts, super::Window::Peek).await {
        Ok(how) => how,
        Err(response) => return response,
    };
    let settings = state.device_settings(&device);
    let key = settings.get("yealink.aes_key").filter(|k| !k.is_empty());
    let enabled = device.vendor == "yealink" && settings.get("yealink.aes_key_file") == Some("1");
    let Some(bytes) = key.filter(|_| enabled).and_then(|k| yealink_aes::wrap_key(k).ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = content_hash(&bytes);
    let served =
        Served::new(format!("{stem}_Security.enc"), bytes, "application/octet-stream", hash, device.updated_at);
    state.fetchlog.record(Record::Fetch {
        info: FetchInfo {
            mac: device.mac,
            at: sipprov_store::now_ms(),
            ip: facts.ip.to_string(),
            file: served.file.clone(),
            hash: served.hash.clone(),
            reported_model: ua.and_then(|u| u.model.clone()),
            reported_firmware: ua.and_then(|u| u.firmware.clone()),
        },
        status: 200,
        auth,
    });
    super::respond(StatusCode::OK, &served)
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_file_names() {
        assert_eq!(super::stem("001565aabbcc_Security.enc"), Some("001565aabbcc"));
        assert_eq!(super::stem("y000000000066_security.ENC"), Some("y000000000066"));
        assert_eq!(super::stem("_Security.enc"), None);
        assert_eq!(super::stem("001565aabbcc.cfg"), None);
    }
}
