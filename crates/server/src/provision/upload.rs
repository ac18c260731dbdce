//! Files phones upload with HTTP `PUT`: Polycom `<mac>-phone.cfg` (settings changed on the
//! phone), `-web.cfg`, `-directory.xml` and logs, Yealink `<mac>-local.cfg`.
//!
//! Only names a vendor declares ([`sipprov_vendors::Vendor::upload_mac`]) are accepted, and only
//! for the device of that vendor the MAC names; any other `PUT` gets 405 (a name of another
//! vendor's only once the requester is authorised as the device). A MAC the server does not know
//! gets the answer a `GET` of an unknown device's file gets (and counts against the source), so
//! uploads tell nobody which MACs exist. A known device is authorised exactly as for
//! its own file, except that its first-fetch window is never used: that window is for the one
//! fetch that hands a new phone its credentials, and an upload must not spend it. The size is
//! bounded before anything is stored: a `Content-Length` over the cap gets 413 without the body
//! being read, and a body without one is read only up to the cap. The latest file of each name is
//! kept per device, within a total per device (`[uploads]`).

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sha2::{Digest, Sha256};
use sipprov_sip::logsafe::escaped;
use sipprov_store::{NewEvent, UploadOutcome};
use sipprov_vendors::{registry, UserAgentInfo};

use super::Phones;
use super::{authorize, note_failure, unknown_device, Window};
use crate::auth::RequestFacts;
use crate::catalog::vendor_model;
use crate::fetchlog::Record;
use crate::metrics::labels::RefusalReason;
use crate::metrics::Metrics;

/// Answers a `PUT` of `file` (a checked bare file name).
pub(super) async fn receive(
    state: &Phones,
    file: &str,
    ua: Option<&UserAgentInfo>,
    facts: &RequestFacts<'_>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(mac) = registry().vendors().iter().find_map(|v| v.upload_mac(file)) else {
        return not_uploadable();
    };
    if let Some(ua_mac) = ua.and_then(|u| u.mac).filter(|m| *m != mac) {
        let reason = format!("User-Agent MAC {ua_mac} contradicts the MAC in the path");
        note_failure(state, facts.ip, Some(mac), file, &reason, RefusalReason::MacMismatch);
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(device) = state.inventory.device(mac) else {
        Metrics::inc(&state.metrics.http_unknown_device);
        return unknown_device(state, mac, file, facts);
    };
    // Authorised first: an unauthenticated requester must get the same answer whether or not
    // the MAC is known, so the 405 below (a name the device's own vendor does not upload, e.g.
    // a Yealink `-local.cfg` for a Polycom MAC) is for an authenticated requester only.
    if let Err(refusal) = authorize(state, &device, file, facts, Window::Closed).await {
        return refusal;
    }
    let accepted = vendor_model(&device).is_ok_and(|(vendor, _)| vendor.upload_mac(file) == Some(mac));
    if !accepted {
        return not_uploadable();
    }
    let limits = &state.uploads;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_file_bytes) {
        return too_large(state, mac, file, "larger than uploads.max_file_bytes");
    }
    let cap = usize::try_from(limits.max_file_bytes).unwrap_or(usize::MAX);
    let content = match Limited::new(body, cap).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return too_large(state, mac, file, "larger than uploads.max_file_bytes");
        }
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    store(state, mac, file, &content).await
}

/// Stores the upload and records it on the device.
async fn store(state: &Phones, mac: sipprov_model::Mac, file: &str, content: &[u8]) -> Response {
    let name = file.to_ascii_lowercase();
    let sha256 = hex::encode(Sha256::digest(content));
    let at = sipprov_store::now_ms();
    let outcome = state.store.put_upload(mac, &name, content, &sha256, at, state.uploads.max_device_bytes).await;
    let created = match outcome {
        Ok(UploadOutcome::Stored { created }) => created,
        Ok(UploadOutcome::OverQuota) => {
            return too_large(state, mac, file, "past the device's uploads.max_device_bytes")
        }
        Err(e) => {
            tracing::error!(%mac, file = %escaped(file, 120), error = %e, "cannot store an upload");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    tracing::info!(%mac, file = %name, size = content.len(), "upload stored");
    let detail = sipprov_api::UploadDetail { file: name.to_string(), size: content.len() as u64, sha256 };
    state.fetchlog.record(Record::Event(NewEvent::of(mac, at, &detail)));
    // RFC 9110 §9.3.4: 201 when the PUT created the resource, 204 when it replaced it.
    if created {
        StatusCode::CREATED.into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

/// 405 for a `PUT` of anything but a declared upload: the file can be read, not written.
fn not_uploadable() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")]).into_response()
}

/// 413, recorded on the device so the operator sees why its uploads are missing.
fn too_large(state: &Phones, mac: sipprov_model::Mac, file: &str, why: &str) -> Response {
    tracing::warn!(%mac, file = %escaped(file, 120), why, "upload refused");
    let detail = sipprov_api::UploadRefusedDetail { file: file.to_string(), reason: why.to_string() };
    state.fetchlog.record(Record::Event(NewEvent::of(mac, sipprov_store::now_ms(), &detail)));
    StatusCode::PAYLOAD_TOO_LARGE.into_response()
}
