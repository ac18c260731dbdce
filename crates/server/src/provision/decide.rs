//! Whether a requester may have a device's file, and the answers and counts of a refusal.
//!
//! [`authorize`] runs a device's access policy (`crate::auth`) for its file; a config request
//! decides with [`authorize_at_once`] nearly always, without a future, and only a first
//! fetch's claim or a cluster's Digest confirmation waits ([`authorize_after_wait`]). Every
//! refusal counts against its source, which past `[security] max_failures` is blocked for a
//! while ([`blocked`]); a request for an unknown device's file is answered as a known device's
//! would be to a requester that has not authenticated ([`unknown_device`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sipprov_sip::logsafe::{escaped, LogLimiter};
use sipprov_store::NewEvent;
use sipprov_vendors::{registry, UserAgentInfo};

use super::Phones;
use crate::auth::{throttle::Outcome, Decision, Failure, Policy, RequestFacts};
use crate::fetchlog::Record;
use crate::files::Refusal;
use crate::metrics::labels::RefusalReason;
use crate::metrics::{BlockedBy, Metrics};

// A refused request costs its sender one HTTP request: the warnings are rationed, with the count
// of those held back in the next one (refusals of known devices stay in their history).
static BAD_PATH_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));
static REFUSED_LOG: LogLimiter = LogLimiter::new(20, Duration::from_secs(5));
static FIRST_FETCH_LOG: LogLimiter = LogLimiter::new(5, Duration::from_secs(60));

/// What an open first-fetch window does for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Window {
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
pub(super) async fn authorize(
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
pub(super) enum Authorized {
    /// The answer of [`authorize`].
    Done(Result<&'static str, Response>),
    /// The decision needs a wait (a first fetch's claim, a Digest count confirmed with the
    /// other nodes): [`authorize_after_wait`] finishes it.
    Waits(Arc<Policy>, Decision),
}

/// [`authorize`] up to its first wait, without one: nearly every request is decided here
/// (an open device, Basic, Digest on one node), and a config request is then answered without
/// a future (see [`prepare`]); the rest is [`authorize_after_wait`]'s.
pub(super) fn authorize_at_once(
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
pub(super) async fn authorize_after_wait(
    state: &Phones,
    device: &sipprov_store::DeviceRecord,
    file: &str,
    facts: &RequestFacts<'_>,
    policy: Arc<Policy>,
    mut decision: Decision,
) -> Result<&'static str, Response> {
    if let Decision::FirstFetch { opened_at } = decision {
        // Boxed: a first fetch is rare, and its store write's future would otherwise enlarge
        // the future of every request that waits (`answer::later`'s).
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
    // bytes) is not part of every waiting request's.
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
pub(super) fn with_certificate_identity(
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

pub(super) fn challenge(values: Vec<String>) -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    for v in values {
        if let Ok(v) = HeaderValue::from_str(&v) {
            response.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// Counts a failure against the source, logs it (never a credential), and records it on the device.
pub(super) fn note_failure(
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
pub(super) fn count_failure(
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

pub(super) fn blocked(state: &Phones, wait: std::time::Duration) -> Response {
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

/// The answer to a bad path (see `super::file_name`): counted, logged (rationed), 400.
pub(super) fn bad_path(state: &Phones, peer: SocketAddr, path: &str, reason: &str) -> Response {
    Metrics::inc(&state.metrics.http_bad_path);
    state.metrics.refusal(RefusalReason::BadPath);
    if let Some(suppressed) = BAD_PATH_LOG.allow() {
        tracing::warn!(peer = %peer.ip(), path = %escaped(path, 120), reason, suppressed, "refused odd request path");
    }
    StatusCode::BAD_REQUEST.into_response()
}

/// The answer to a request `Files::resolve` refused: an unknown device's (see
/// [`unknown_device`]), 404 for a name no device is served under, 403 for a User-Agent whose MAC
/// contradicts the path's.
pub(super) fn refused(
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
pub(super) fn unknown_device(
    state: &Phones,
    mac: sipprov_model::Mac,
    file: &str,
    facts: &RequestFacts<'_>,
) -> Response {
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
