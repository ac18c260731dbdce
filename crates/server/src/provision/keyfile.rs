//! Yealink `<name>_Security.enc` key files (research `config-formats.md` §1.4).
//!
//! With `static.auto_provision.aes_key_in_file = 1` (setting `yealink.aes_key_file=1`) the phone
//! asks for `<mac>_Security.enc` next to its encrypted `<mac>.cfg`: the file's AES key wrapped with
//! the fixed key in every Yealink firmware. That wrapping key is public, so the key file is exactly
//! as secret as the access control in front of it: it is served only to a requester that passes
//! the device's own policy (the same one as for `<mac>.cfg`). An authenticated requester without
//! a key file gets a 404; a requester that has not authenticated gets the device's challenge,
//! known MAC or not.
//!
//! The common file's key file (`y0000000000XX_Security.enc`, wrapping the global
//! `yealink.common_aes_key`) is served to anyone, like the common file itself: that file holds no
//! secrets, and its encryption exists for phones that accept only encrypted files
//! (`sipprov_vendors::yealink`). Settings that make a key file impossible (a 32-character key)
//! give a 404 and a logged reason, rationed.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sipprov_model::Settings;
use sipprov_sip::logsafe::LogLimiter;
use sipprov_store::DeviceRecord;
use sipprov_store::FetchInfo;
use sipprov_vendors::{yealink, yealink_aes, FileScope, UserAgentInfo};

use crate::auth::RequestFacts;
use crate::cache::{content_hash, Served};
use crate::fetchlog::Record;
use crate::state::{AppState, Resolved};

const SUFFIX: &str = "_security.enc";

/// Every request for a key file the settings forbid would log: rationed.
static PROBLEM_LOG: LogLimiter = LogLimiter::new(5, Duration::from_secs(60));

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
        Ok(Resolved::Model { vendor, device, .. }) if vendor.id() == "yealink" => {
            return common_key_file(state, stem, device.as_deref());
        }
        Ok(Resolved::Model { .. }) => return StatusCode::NOT_FOUND.into_response(),
        // Counted and answered exactly like a request for the MAC's own file.
        Err(refusal) => return super::refused(state, &cfg_name, ua, refusal, facts),
    };
    let auth = match super::authorize(state, &device, file, facts, super::Window::Peek).await {
        Ok(how) => how,
        Err(response) => return response,
    };
    let settings = state.device_settings(&device);
    if device.vendor != "yealink" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(bytes) = wrapped_key(&settings, FileScope::Device, file) else {
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

/// The key file for a Yealink common file: no authentication (the common file has none), the
/// global common key, switched on by `yealink.aes_key_file` as the requesting device's merged
/// settings say (the global ones for an unknown requester).
fn common_key_file(state: &AppState, stem: &str, device: Option<&DeviceRecord>) -> Response {
    let settings = device.map_or_else(|| state.inventory.global(), |d| state.device_settings(d));
    let name = format!("{stem}_Security.enc");
    let Some(bytes) = wrapped_key(&settings, FileScope::Model, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = content_hash(&bytes);
    let changed = device.map_or(0, |d| d.updated_at);
    let served = Served::new(name, bytes, "application/octet-stream", hash, changed);
    super::respond(StatusCode::OK, &served)
}

/// The key file's bytes when `settings` turn key files on and hold a key for `scope`; `None`
/// (a 404) otherwise, logging why when the settings make the key file impossible.
fn wrapped_key(settings: &Settings, scope: FileScope, file: &str) -> Option<Vec<u8>> {
    let key = settings.get(yealink::key_setting(scope)).filter(|k| !k.is_empty())?;
    if settings.get("yealink.aes_key_file") != Some("1") {
        return None;
    }
    if let Some(problem) = yealink::key_file_problem(settings, scope) {
        if let Some(suppressed) = PROBLEM_LOG.allow() {
            tracing::warn!(file, reason = %problem, suppressed, "key file not served");
        }
        return None;
    }
    yealink_aes::wrap_key(key).ok()
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
