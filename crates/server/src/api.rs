//! The admin API: JSON over HTTP, on localhost, behind a bearer token.
//!
//! Every body is a type of the contract crate [`sipprov_api`], which the CLI reads the answers
//! into; every error is an RFC 9457 problem document naming the field at fault ([`ApiError`],
//! `problem`).
//!
//! Every write goes to the store first (in a transaction) and only then to the
//! in-memory inventory and render cache, so a refused or failed request
//! changes nothing. Listings redact secrets ([`sipprov_vendors::redacted`]: secret key names,
//! every raw parameter a vendor module declares secret, and the password of a URI, the
//! device's contact included); only `render` returns them, since its purpose is to show
//! exactly what a phone receives.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /api/v1/devices | list devices (secrets redacted) |
//! | POST | /api/v1/devices | add one device |
//! | POST | /api/v1/devices/import | add devices from CSV (all or nothing) |
//! | GET, PATCH, DELETE | /api/v1/devices/{mac} | show, change, remove |
//! | GET | /api/v1/devices/{mac}/log | device history |
//! | POST | /api/v1/devices/{mac}/unlock | re-open the first-fetch window |
//! | GET | /api/v1/devices/{mac}/render?file=NAME | the exact bytes served |
//! | POST | /api/v1/devices/{mac}/notify | send check-sync (`{"reboot": true}` to reboot) |
//! | GET | /api/v1/groups, /api/v1/groups/{name} | groups |
//! | PATCH | /api/v1/groups/{name} | change (or create) a group |
//! | GET, PATCH | /api/v1/settings | global settings |
//! | GET | /api/v1/vendors | vendors and models |
//! | GET, POST | /api/v1/campaigns | list, or start a paced re-sync campaign |
//! | GET | /api/v1/campaigns/{id} | counts per outcome and failing devices |
//! | POST | /api/v1/campaigns/{id}/cancel, /retry | stop it; re-send failed and unconfirmed devices |
//! | GET | /metrics | Prometheus counters (no token) |

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sipprov_api::{
    Access, AddDevice, Device, DeviceEvent, Group, GroupChanged, GroupSummary, LastFetch, LastNotify, NotifyOutcome,
    NotifyRequest, PatchDevice, VendorInfo,
};
use sipprov_model::{Mac, Settings};
use sipprov_store::{DevicePatch, DeviceRecord, StoreError};
use sipprov_vendors::{redacted, registry};

use crate::metrics::Metrics;
use crate::state::AppState;

mod body;
mod campaigns;
mod import;
mod problem;
mod unlock;
mod uploads;
mod validate;

pub use problem::ApiError;
pub use validate::{validate_new_device, Invalid};

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

type ApiResult<T> = Result<T, ApiError>;

/// The router for the admin listener.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/devices", get(list_devices).post(add_device))
        // A 100,000-device CSV is about 10 MB; axum's default limit is 2 MB.
        .route(
            "/api/v1/devices/import",
            axum::routing::post(import::import_devices).layer(axum::extract::DefaultBodyLimit::max(64 << 20)),
        )
        .route("/api/v1/devices/{mac}", get(show_device).patch(patch_device).delete(delete_device))
        .route("/api/v1/devices/{mac}/log", get(device_log))
        .route("/api/v1/devices/{mac}/unlock", axum::routing::post(unlock::unlock_device))
        .route("/api/v1/devices/{mac}/render", get(render_device))
        .route("/api/v1/devices/{mac}/uploads", get(uploads::list))
        .route("/api/v1/devices/{mac}/uploads/{name}", get(uploads::show))
        .route("/api/v1/devices/{mac}/notify", axum::routing::post(notify_device))
        .route("/api/v1/groups", get(list_groups))
        .route("/api/v1/groups/{name}", get(show_group).patch(patch_group))
        .route("/api/v1/settings", get(show_global).patch(patch_global))
        .route("/api/v1/vendors", get(list_vendors))
        .route("/api/v1/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/api/v1/campaigns/{id}", get(campaigns::show))
        .route("/api/v1/campaigns/{id}/cancel", axum::routing::post(campaigns::cancel))
        .route("/api/v1/campaigns/{id}/retry", axum::routing::post(campaigns::retry))
        .fallback(problem::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/metrics", get(metrics))
        .merge(api)
        .layer(middleware::from_fn(problem::every_error_a_problem))
        .with_state(state)
}

async fn require_token(State(state): State<Arc<AppState>>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if constant_time_eq(token.trim().as_bytes(), state.api_token.as_bytes()) => next.run(req).await,
        _ => {
            let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
            // RFC 6750 §3: a 401 names the scheme it wants.
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(state): State<Arc<AppState>>) -> String {
    let mut out = state.metrics.render(state.inventory.len());
    if let Some(endpoint) = state.sip.get() {
        out.push_str(&Metrics::render_sip(endpoint));
    }
    out
}

fn parse_mac(text: &str) -> ApiResult<Mac> {
    text.parse().map_err(|e: sipprov_model::MacError| bad_request(e.to_string()).at("mac"))
}

/// The 404 of a device the inventory does not hold, naming the `mac`.
fn no_device(mac: Mac) -> ApiError {
    ApiError::from(StoreError::DeviceNotFound(mac.to_string())).at("mac")
}

/// A device as the API shows it: secrets redacted, with the files it is served.
fn device_view(state: &AppState, device: &DeviceRecord) -> Device {
    let files: Vec<String> =
        state.device_files(device).map(|f| f.into_iter().map(|f| f.name).collect()).unwrap_or_default();
    let access: Access = crate::auth::posture::access(state, device, sipprov_store::now_ms());
    Device {
        mac: device.mac,
        vendor: device.vendor.clone(),
        model: device.model.clone(),
        group: device.group.clone(),
        contact: device.contact.as_deref().map(|c| sipprov_model::redact_uri_password(c).into_owned()),
        settings: redacted(&device.settings),
        created_at: device.created_at,
        updated_at: device.updated_at,
        last_fetch: device.last_fetch.as_ref().map(|f| LastFetch {
            mac: f.mac,
            at: f.at,
            ip: f.ip.clone(),
            file: f.file.clone(),
            hash: f.hash.clone(),
            reported_model: f.reported_model.clone(),
            reported_firmware: f.reported_firmware.clone(),
        }),
        files,
        access,
        last_notify: None,
    }
}

async fn list_devices(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<Device>>> {
    state.fetchlog.flush().await;
    let devices = state.store.list_devices().await?;
    Ok(Json(devices.iter().map(|d| device_view(&state, d)).collect()))
}

async fn add_device(
    State(state): State<Arc<AppState>>,
    body::Body(body): body::Body<AddDevice>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    let device = validate_new_device(&body.mac, &body.vendor, &body.model, body.group, body.contact, body.settings)?;
    let group = device.group.as_deref().and_then(|g| state.inventory.group(g)).unwrap_or_default();
    validate::merged(device.mac, &device.vendor, &device.model, [&state.inventory.global(), &group, &device.settings])
        .map_err(bad_request)?;
    state.store.insert_devices(std::slice::from_ref(&device)).await?;
    let stored = state.store.get_device(device.mac).await?.ok_or_else(|| no_device(device.mac))?;
    tracing::info!(mac = %stored.mac, vendor = %stored.vendor, model = %stored.model, "device added");
    let view = device_view(&state, &stored);
    if crate::auth::posture::locked_after_first_fetch(&state, &stored) {
        crate::auth::posture::warn_about_new(&[stored.mac]);
    }
    state.device_changed(stored);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn show_device(State(state): State<Arc<AppState>>, Path(mac): Path<String>) -> ApiResult<Json<Device>> {
    let mac = parse_mac(&mac)?;
    state.fetchlog.flush().await;
    let device = state.store.get_device(mac).await?.ok_or_else(|| no_device(mac))?;
    let mut view = device_view(&state, &device);
    let events = state.store.device_events(mac, 200).await?;
    view.last_notify = events.iter().rev().find(|e| e.kind == sipprov_model::EventKind::Notify).and_then(|last| {
        // The outcome was recorded from the same type; one that no longer reads is left out
        // rather than failing the whole answer.
        let outcome = serde_json::from_value::<NotifyOutcome>(last.detail.clone())
            .inspect_err(|e| tracing::warn!(%mac, error = %e, "a recorded check-sync outcome does not read"))
            .ok()?;
        Some(LastNotify { at: last.at, outcome })
    });
    Ok(Json(view))
}

async fn patch_device(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
    body::Body(body): body::Body<PatchDevice>,
) -> ApiResult<Json<Device>> {
    let mac = parse_mac(&mac)?;
    let current = state.inventory.device(mac).ok_or_else(|| no_device(mac))?;
    let patch = validate::device_patch(&current, body)?;
    check_patched_device(&state, &current, &patch).map_err(bad_request)?;
    let updated = state.store.patch_device(mac, &patch).await?;
    tracing::info!(%mac, "device changed");
    let view = device_view(&state, &updated);
    state.device_changed(updated);
    Ok(Json(view))
}

/// [`validate::merged`] for a device as a patch would leave it.
fn check_patched_device(state: &AppState, current: &DeviceRecord, patch: &DevicePatch) -> Result<(), String> {
    let mut settings = current.settings.clone();
    if let Some(p) = &patch.settings {
        settings.apply(p);
    }
    let group_name = patch.group.clone().unwrap_or_else(|| current.group.clone());
    let group = group_name.as_deref().and_then(|g| state.inventory.group(g)).unwrap_or_default();
    let vendor = patch.vendor.as_deref().unwrap_or(&current.vendor);
    let model = patch.model.as_deref().unwrap_or(&current.model);
    validate::merged(current.mac, vendor, model, [&state.inventory.global(), &group, &settings])
}

async fn delete_device(State(state): State<Arc<AppState>>, Path(mac): Path<String>) -> ApiResult<StatusCode> {
    let mac = parse_mac(&mac)?;
    state.store.delete_device(mac).await?;
    state.inventory.remove_device(mac);
    state.security.windows.forget(mac);
    state.cache.invalidate_device(mac);
    tracing::info!(%mac, "device removed");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<i64>,
}

async fn device_log(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Vec<DeviceEvent>>> {
    let mac = parse_mac(&mac)?;
    state.fetchlog.flush().await;
    let events = state.store.device_events(mac, q.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    let events = events
        .into_iter()
        .map(|e| DeviceEvent { id: e.id, mac: e.mac, at: e.at, kind: e.kind, detail: e.detail })
        .collect();
    Ok(Json(events))
}

#[derive(Deserialize)]
struct RenderQuery {
    file: Option<String>,
}

/// The exact bytes a device receives: same resolution, same cache, same renderer as the phone path.
async fn render_device(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
    Query(q): Query<RenderQuery>,
) -> ApiResult<Response> {
    let mac = parse_mac(&mac)?;
    let device = state.inventory.device(mac).ok_or_else(|| no_device(mac))?;
    let files =
        state.device_files(&device).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let wanted = match &q.file {
        Some(f) => f.clone(),
        None => files
            .iter()
            .find(|f| matches!(f.scope, sipprov_vendors::FileScope::Device))
            .or(files.first())
            .map(|f| f.name.clone())
            .ok_or_else(|| bad_request("this device has no files").at("file"))?,
    };
    let ua = sipprov_vendors::UserAgentInfo {
        vendor: registry().get(&device.vendor).map(|v| v.id()).unwrap_or("unknown"),
        model: Some(device.model.clone()),
        firmware: None,
        mac: Some(mac),
    };
    let resolved = state.resolve(&wanted, Some(&ua)).map_err(|_| {
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("device {mac} has no file {wanted:?}; its files: {}", names.join(", ")),
        )
        .at("file")
    })?;
    let served = state
        .served(&resolved, &wanted, None)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, served.content_type), (header::ETAG, served.etag.as_str())], served.bytes.clone())
        .into_response())
}

/// Sends check-sync now and answers with the outcome (also recorded in the device's history).
async fn notify_device(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
    body: Option<Json<NotifyRequest>>,
) -> ApiResult<Json<NotifyOutcome>> {
    let mac = parse_mac(&mac)?;
    if !state.inventory.contains(mac) {
        return Err(no_device(mac));
    }
    let reboot = body.map(|b| b.reboot).unwrap_or(false);
    let outcome =
        state.notify_device(mac, reboot).await.map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    Ok(Json(NotifyOutcome::from(outcome)))
}

async fn list_groups(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<GroupSummary>>> {
    let groups = state.store.list_groups().await?;
    let views = groups
        .into_iter()
        .map(|g| GroupSummary { settings: redacted(&g.settings), name: g.name, updated_at: g.updated_at })
        .collect();
    Ok(Json(views))
}

async fn show_group(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> ApiResult<Json<Group>> {
    let group = state.store.get_group(&name).await?.ok_or(StoreError::GroupNotFound(name))?;
    let devices =
        state.store.list_devices().await?.into_iter().filter(|d| d.group.as_deref() == Some(&group.name)).count();
    Ok(Json(Group { settings: redacted(&group.settings), name: group.name, devices, updated_at: group.updated_at }))
}

async fn patch_group(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body::Body(patch): body::Body<Settings>,
) -> ApiResult<Json<GroupChanged>> {
    validate::group_name(&name)?;
    let patch = sipprov_vendors::validated(patch).map_err(Invalid::from)?;
    validate::group_settings(&patch)?;
    let mut after = state.inventory.group(&name).unwrap_or_default();
    after.apply(&patch);
    let global = state.inventory.global();
    for d in state.inventory.devices().iter().filter(|d| d.group.as_deref() == Some(name.as_str())) {
        validate::merged(d.mac, &d.vendor, &d.model, [&global, &after, &d.settings]).map_err(bad_request)?;
    }
    let group = state.store.patch_group(&name, &patch).await?;
    tracing::info!(group = %name, keys = patch.len(), "group settings changed");
    state.group_changed(&name, group.settings.clone());
    Ok(Json(GroupChanged { settings: redacted(&group.settings), name: group.name }))
}

async fn show_global(State(state): State<Arc<AppState>>) -> ApiResult<Json<Settings>> {
    Ok(Json(redacted(&state.store.global_settings().await?)))
}

async fn patch_global(
    State(state): State<Arc<AppState>>,
    body::Body(patch): body::Body<Settings>,
) -> ApiResult<Json<Settings>> {
    let patch = sipprov_vendors::validated(patch).map_err(Invalid::from)?;
    let mut after = state.inventory.global();
    after.apply(&patch);
    validate::global_settings(&after).map_err(|e| bad_request(e.to_string()))?;
    let empty = Settings::new();
    for d in state.inventory.devices() {
        let group = d.group.as_deref().and_then(|g| state.inventory.group(g));
        validate::merged(d.mac, &d.vendor, &d.model, [&after, group.as_ref().unwrap_or(&empty), &d.settings])
            .map_err(bad_request)?;
    }
    let settings = state.store.patch_global_settings(&patch).await?;
    tracing::info!(keys = patch.len(), "global settings changed");
    state.global_changed(settings.clone());
    Ok(Json(redacted(&settings)))
}

async fn list_vendors() -> Json<Vec<VendorInfo>> {
    let vendors = registry()
        .vendors()
        .iter()
        .map(|v| VendorInfo {
            id: v.id().to_string(),
            name: v.display_name().to_string(),
            models: v.models().iter().map(|m| m.name.to_string()).collect(),
        })
        .collect();
    Json(vendors)
}
