//! The admin API: JSON over HTTP, on localhost, behind a bearer token.
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
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sipprov_model::{Mac, Settings};
use sipprov_store::{DevicePatch, DeviceRecord, StoreError};
use sipprov_vendors::{redacted, registry};

use crate::metrics::Metrics;
use crate::state::AppState;

mod body;
mod campaigns;
mod import;
mod unlock;
mod uploads;
mod validate;

pub use validate::validate_new_device;

/// An API error: a status and a message that names what is wrong.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    /// A database that cannot write or be reached answers 503 with what failed (`database write
    /// failed: database or disk is full`): the request changed nothing and may be repeated once
    /// the cause is fixed; the server recovers by itself.
    fn from(e: StoreError) -> Self {
        if let Some(message) = e.unavailable() {
            tracing::warn!(error = %e, "admin request failed: the database cannot take it");
            return ApiError(StatusCode::SERVICE_UNAVAILABLE, message);
        }
        let status = match e {
            StoreError::DuplicateDevice(_) => StatusCode::CONFLICT,
            StoreError::DeviceNotFound(_) | StoreError::GroupNotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "store failure in admin API");
        }
        ApiError(status, e.to_string())
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
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
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new().route("/metrics", get(metrics)).merge(api).with_state(state)
}

async fn require_token(State(state): State<Arc<AppState>>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(token) if constant_time_eq(token.trim().as_bytes(), state.api_token.as_bytes()) => next.run(req).await,
        _ => ApiError(StatusCode::UNAUTHORIZED, "missing or wrong bearer token".into()).into_response(),
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
    text.parse().map_err(|e: sipprov_model::MacError| bad_request(e.to_string()))
}

/// A device as the API shows it: secrets redacted, with the files it is served.
fn device_view(state: &AppState, device: &DeviceRecord) -> serde_json::Value {
    let files: Vec<String> =
        state.device_files(device).map(|f| f.into_iter().map(|f| f.name).collect()).unwrap_or_default();
    serde_json::json!({
        "mac": device.mac,
        "vendor": device.vendor,
        "model": device.model,
        "group": device.group,
        "contact": device.contact.as_deref().map(sipprov_model::redact_uri_password),
        "settings": redacted(&device.settings),
        "created_at": device.created_at,
        "updated_at": device.updated_at,
        "last_fetch": device.last_fetch,
        "files": files,
        "access": crate::auth::posture::access(state, device, sipprov_store::now_ms()),
    })
}

async fn list_devices(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<serde_json::Value>>> {
    state.fetchlog.flush().await;
    let devices = state.store.list_devices().await?;
    Ok(Json(devices.iter().map(|d| device_view(&state, d)).collect()))
}

/// The body of `POST /api/v1/devices`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddDevice {
    pub mac: String,
    pub vendor: String,
    pub model: String,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub settings: Settings,
}

async fn add_device(
    State(state): State<Arc<AppState>>,
    body::Body(body): body::Body<AddDevice>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let device = validate_new_device(&body.mac, &body.vendor, &body.model, body.group, body.contact, body.settings)
        .map_err(bad_request)?;
    let group = device.group.as_deref().and_then(|g| state.inventory.group(g)).unwrap_or_default();
    validate::merged(device.mac, &device.vendor, &device.model, [&state.inventory.global(), &group, &device.settings])
        .map_err(bad_request)?;
    state.store.insert_devices(std::slice::from_ref(&device)).await?;
    let stored = state.store.get_device(device.mac).await?.ok_or_else(|| bad_request("device vanished"))?;
    tracing::info!(mac = %stored.mac, vendor = %stored.vendor, model = %stored.model, "device added");
    let view = device_view(&state, &stored);
    if crate::auth::posture::locked_after_first_fetch(&state, &stored) {
        crate::auth::posture::warn_about_new(&[stored.mac]);
    }
    state.device_changed(stored);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn show_device(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let mac = parse_mac(&mac)?;
    state.fetchlog.flush().await;
    let device = state.store.get_device(mac).await?.ok_or_else(|| StoreError::DeviceNotFound(mac.to_string()))?;
    let mut view = device_view(&state, &device);
    let events = state.store.device_events(mac, 200).await?;
    if let Some(last) = events.iter().rev().find(|e| e.kind == "notify") {
        view["last_notify"] = serde_json::json!({ "at": last.at, "outcome": last.detail });
    }
    Ok(Json(view))
}

/// The body of `PATCH /api/v1/devices/{mac}`; absent fields are left alone, `""` clears group/contact.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchDevice {
    #[serde(default)]
    pub vendor: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub settings: Option<Settings>,
}

async fn patch_device(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
    body::Body(body): body::Body<PatchDevice>,
) -> ApiResult<Json<serde_json::Value>> {
    let mac = parse_mac(&mac)?;
    let current = state.inventory.device(mac).ok_or_else(|| StoreError::DeviceNotFound(mac.to_string()))?;
    let patch = validate::device_patch(&current, body).map_err(bad_request)?;
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
) -> ApiResult<Json<serde_json::Value>> {
    let mac = parse_mac(&mac)?;
    state.fetchlog.flush().await;
    let events = state.store.device_events(mac, q.limit.unwrap_or(100).clamp(1, 10_000)).await?;
    Ok(Json(serde_json::json!(events)))
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
    let device = state.inventory.device(mac).ok_or_else(|| StoreError::DeviceNotFound(mac.to_string()))?;
    let files = state.device_files(&device).map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let wanted = match &q.file {
        Some(f) => f.clone(),
        None => files
            .iter()
            .find(|f| matches!(f.scope, sipprov_vendors::FileScope::Device))
            .or(files.first())
            .map(|f| f.name.clone())
            .ok_or_else(|| bad_request("this device has no files"))?,
    };
    let ua = sipprov_vendors::UserAgentInfo {
        vendor: registry().get(&device.vendor).map(|v| v.id()).unwrap_or("unknown"),
        model: Some(device.model.clone()),
        firmware: None,
        mac: Some(mac),
    };
    let resolved = state.resolve(&wanted, Some(&ua)).map_err(|_| {
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        ApiError(StatusCode::NOT_FOUND, format!("device {mac} has no file {wanted:?}; its files: {}", names.join(", ")))
    })?;
    let served = state
        .served(&resolved, &wanted, None)
        .map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, served.content_type), (header::ETAG, served.etag.as_str())], served.bytes.clone())
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NotifyBody {
    #[serde(default)]
    reboot: bool,
}

/// Sends check-sync now and answers with the outcome (also recorded in the device's history).
async fn notify_device(
    State(state): State<Arc<AppState>>,
    Path(mac): Path<String>,
    body: Option<Json<NotifyBody>>,
) -> ApiResult<Json<crate::checksync::Outcome>> {
    let mac = parse_mac(&mac)?;
    if !state.inventory.contains(mac) {
        return Err(StoreError::DeviceNotFound(mac.to_string()).into());
    }
    let reboot = body.map(|b| b.reboot).unwrap_or(false);
    let outcome = state.notify_device(mac, reboot).await.map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    Ok(Json(outcome))
}

async fn list_groups(State(state): State<Arc<AppState>>) -> ApiResult<Json<serde_json::Value>> {
    let groups = state.store.list_groups().await?;
    let views: Vec<_> = groups
        .into_iter()
        .map(|g| serde_json::json!({ "name": g.name, "settings": redacted(&g.settings), "updated_at": g.updated_at }))
        .collect();
    Ok(Json(serde_json::json!(views)))
}

async fn show_group(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let group = state.store.get_group(&name).await?.ok_or(StoreError::GroupNotFound(name))?;
    let devices =
        state.store.list_devices().await?.into_iter().filter(|d| d.group.as_deref() == Some(&group.name)).count();
    Ok(Json(serde_json::json!({
        "name": group.name, "settings": redacted(&group.settings), "devices": devices, "updated_at": group.updated_at,
    })))
}

async fn patch_group(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body::Body(patch): body::Body<Settings>,
) -> ApiResult<Json<serde_json::Value>> {
    validate::group_name(&name).map_err(bad_request)?;
    let patch = sipprov_vendors::validated(patch).map_err(|e| bad_request(e.to_string()))?;
    validate::group_settings(&patch).map_err(bad_request)?;
    let mut after = state.inventory.group(&name).unwrap_or_default();
    after.apply(&patch);
    let global = state.inventory.global();
    for d in state.inventory.devices().iter().filter(|d| d.group.as_deref() == Some(name.as_str())) {
        validate::merged(d.mac, &d.vendor, &d.model, [&global, &after, &d.settings]).map_err(bad_request)?;
    }
    let group = state.store.patch_group(&name, &patch).await?;
    tracing::info!(group = %name, keys = patch.len(), "group settings changed");
    state.group_changed(&name, group.settings.clone());
    Ok(Json(serde_json::json!({ "name": group.name, "settings": redacted(&group.settings) })))
}

async fn show_global(State(state): State<Arc<AppState>>) -> ApiResult<Json<Settings>> {
    Ok(Json(redacted(&state.store.global_settings().await?)))
}

async fn patch_global(
    State(state): State<Arc<AppState>>,
    body::Body(patch): body::Body<Settings>,
) -> ApiResult<Json<Settings>> {
    let patch = sipprov_vendors::validated(patch).map_err(|e| bad_request(e.to_string()))?;
    let mut after = state.inventory.global();
    after.apply(&patch);
    validate::global_settings(&after).map_err(bad_request)?;
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

async fn list_vendors() -> Json<serde_json::Value> {
    let vendors: Vec<_> = registry()
        .vendors()
        .iter()
        .map(|v| {
            let models: Vec<&str> = v.models().iter().map(|m| m.name).collect();
            serde_json::json!({ "id": v.id(), "name": v.display_name(), "models": models })
        })
        .collect();
    Json(serde_json::json!(vendors))
}
