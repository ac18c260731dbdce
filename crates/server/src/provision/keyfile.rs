//! Key files: a file holding the AES key of another file the device fetches, e.g. Yealink's
//! `<name>_Security.enc` next to an encrypted `<name>.cfg` ([`Vendor::key_file_name`],
//! [`Vendor::key_file`]; which vendors have them, and what they hold, is the vendor module's
//! business).
//!
//! A key file is exactly as secret as the access control in front of it (Yealink's wrapping key
//! is the same in every firmware): a device's key file is served only to a requester that passes
//! the device's own policy (the same one as for the file it belongs to). An authenticated
//! requester without a key file gets a 404; a requester that has not authenticated gets the
//! device's challenge, known MAC or not.
//!
//! A common file's key file is served to anyone, like the common file itself: that file holds no
//! secrets, and its encryption exists for phones that accept only encrypted files. Settings that
//! make a key file impossible give a 404 and a logged reason, rationed.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sipprov_model::Settings;
use sipprov_sip::logsafe::LogLimiter;
use sipprov_store::DeviceRecord;
use sipprov_vendors::{registry, FileScope, KeyFileName, UserAgentInfo, Vendor};

use super::Phones;
use crate::auth::RequestFacts;
use crate::cache::{content_hash, Served};
use crate::fetchlog::Fetch;
use crate::files::Resolved;

/// Every request for a key file the settings forbid would log: rationed.
static PROBLEM_LOG: LogLimiter = LogLimiter::new(5, Duration::from_secs(60));

/// The names of the key file `file` is, if a vendor module says it is one.
pub(super) fn names(file: &str) -> Option<KeyFileName> {
    registry().vendors().iter().find_map(|v| v.key_file_name(file))
}

/// Answers a key-file request. A known device's policy is checked before anything says
/// whether it has a key file, and an unknown MAC gets the unknown-device answer, so the answers
/// do not tell known MACs from unknown ones. Inside the first-fetch window the key file is
/// served without claiming the window: the phone fetches it before the config file it decrypts.
pub(super) async fn serve(
    state: &Phones,
    names: KeyFileName,
    file: &str,
    ua: Option<&UserAgentInfo>,
    facts: &RequestFacts<'_>,
) -> Response {
    let cfg_name = names.of;
    let device = match state.files.resolve(&cfg_name, ua) {
        Ok(Resolved::Device { device, .. }) => device,
        Ok(Resolved::Model { vendor, device, .. }) => {
            return common_key_file(state, vendor, names.name, device.as_deref());
        }
        // Counted and answered exactly like a request for the MAC's own file.
        Err(refusal) => return super::refused(state, &cfg_name, ua, refusal, facts),
    };
    let auth = match super::authorize(state, &device, file, facts, super::Window::Peek).await {
        Ok(how) => how,
        Err(response) => return response,
    };
    let settings = state.files.device_settings(&device);
    let Some(vendor) = registry().get(&device.vendor) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(bytes) = key_file(vendor, &settings, FileScope::Device, file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = content_hash(&bytes);
    let served = Arc::new(Served::new(names.name, bytes, "application/octet-stream", hash, device.updated_at));
    state
        .fetchlog
        .record_fetch(Fetch {
            mac: device.mac,
            at: sipprov_store::now_ms(),
            ip: facts.ip,
            content: served.id.clone(),
            file: None,
            status: 200,
            auth,
            model: ua.and_then(|u| u.model.clone()),
            firmware: ua.and_then(|u| u.firmware.clone()),
        })
        .await;
    super::respond(StatusCode::OK, &served)
}

/// The key file of a common file: no authentication (the common file has none), the settings
/// of the requesting device (the global ones for an unknown requester).
fn common_key_file(state: &Phones, vendor: &dyn Vendor, name: String, device: Option<&DeviceRecord>) -> Response {
    let settings = device.map_or_else(|| state.inventory.global(), |d| state.files.device_settings(d));
    let Some(bytes) = key_file(vendor, &settings, FileScope::Model, &name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let hash = content_hash(&bytes);
    let changed = device.map_or(0, |d| d.updated_at);
    let served = Served::new(name, bytes, "application/octet-stream", hash, changed);
    super::respond(StatusCode::OK, &served)
}

/// The vendor's key file for `scope` ([`Vendor::key_file`]); `None` (a 404) when there is none,
/// logging why when the settings make it impossible.
fn key_file(vendor: &dyn Vendor, settings: &Settings, scope: FileScope, file: &str) -> Option<Vec<u8>> {
    match vendor.key_file(settings, scope) {
        Ok(bytes) => bytes,
        Err(problem) => {
            if let Some(suppressed) = PROBLEM_LOG.allow() {
                tracing::warn!(file, reason = %problem, suppressed, "key file not served");
            }
            None
        }
    }
}
