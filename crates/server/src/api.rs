//! The admin API: JSON over HTTP, on localhost, behind a bearer token.
//!
//! Every request but `/metrics` carries a bearer token: the data directory's bootstrap token
//! (actor `admin`) or a named one ([`crate::access::Tokens`]). The middleware turns it into an
//! [`Actor`] in the request's extensions and refuses, with a 403 naming both roles, a request
//! its role does not cover ([`crate::access::required_role`]); a missing or unknown token is
//! a 401. Handlers pass the actor to every change, which is audited with it.
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
//! | GET | /api/v1/devices | a page of devices, filtered and sorted (secrets redacted) |
//! | POST | /api/v1/devices | add one device |
//! | POST | /api/v1/devices/import | add devices from CSV (all or nothing) |
//! | GET, PATCH, DELETE | /api/v1/devices/{mac} | show, change, remove |
//! | GET | /api/v1/devices/{mac}/log?before=ID&limit=N | device history, a page at a time |
//! | POST | /api/v1/devices/{mac}/unlock | re-open the first-fetch window |
//! | GET | /api/v1/devices/{mac}/render?file=NAME | the exact bytes served |
//! | POST | /api/v1/devices/{mac}/notify | send check-sync (`{"reboot": true}` to reboot) |
//! | GET | /api/v1/groups, /api/v1/groups/{name} | groups |
//! | PATCH | /api/v1/groups/{name} | change (or create) a group |
//! | GET, PATCH | /api/v1/settings | global settings |
//! | GET | /api/v1/vendors | vendors and models |
//! | GET | /api/v1/summary | the fleet at a glance ([`crate::summary`]) |
//! | GET, POST | /api/v1/campaigns?before=ID&limit=N | list a page, or start a paced re-sync campaign |
//! | GET | /api/v1/campaigns/{id} | counts per outcome and failing devices |
//! | POST | /api/v1/campaigns/{id}/cancel, /retry | stop it; re-send failed and unconfirmed devices |
//! | GET, POST | /api/v1/users | console users: list, add (admin) |
//! | PUT | /api/v1/users/{name}/password | change a console user's password |
//! | DELETE | /api/v1/users/{name} | remove a console user |
//! | * | /api/v1/templates… | template overrides (`templates`) |
//! | * | /api/v1/firmware…, /api/v1/resources…, /api/v1/files/limits | stored files: upload, list, show, remove; the upload limit (`files`) |
//! | GET, POST | /api/v1/tokens | list named tokens, create one (admin) |
//! | DELETE | /api/v1/tokens/{name} | revoke a token (admin) |
//! | GET | /api/v1/audit | the audit trail (`actor`, `target`, `since`, `before`, `limit`) |
//! | GET | /api/v1/devices/{mac}/audit | one device's audit trail |
//! | GET | /api/v1/pnp/discoveries | devices PnP discovered, waiting in the discovered group |
//! | POST | /api/v1/pnp/discoveries/{mac}/approve | move one into a group (`{"group": NAME}`) |
//! | DELETE | /api/v1/pnp/discoveries/{mac} | reject: remove it |
//! | GET | /api/v1/cluster | the nodes sharing the database, alive or stale (`cluster`) |
//! | GET | /metrics | Prometheus metrics, OpenMetrics text (no token) |
//! | GET | /api/v1/openapi.json, /api/v1/docs | the OpenAPI 3.1 document and its page (no token: they hold no data) |
//!
//! The routes are one table ([`route_paths`] lists it), which the OpenAPI test walks: a route
//! missing from the document fails it ([`openapi`]).

use std::sync::Arc;

use axum::extract::FromRef;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use sipprov_api::{
    Access, AddDevice, Device, DeviceEvent, DeviceQuery, FleetSummary, Group, GroupChanged, GroupSummary, LastFetch,
    LastNotify, NotifyOutcome, NotifyRequest, Page, PatchDevice, Problem, VendorInfo,
};
use sipprov_model::{Mac, Settings};
use sipprov_store::{DeviceRecord, FetchInfo, Store, StoreError};
use sipprov_vendors::{redacted, registry};
#[allow(unused_imports)] // named only in OpenAPI annotations (`body = BTreeMap<…>`)
use std::collections::BTreeMap;

use crate::access::{required_role, Actor, Tokens};
use crate::auth::Security;
use crate::campaign::CampaignEngine;
use crate::discoveries::Discoveries;
use crate::fetchlog::FetchLog;
use crate::files::Files;
use crate::filestore::FileStore;
use crate::inventory::Inventory;
use crate::metrics::Metrics;
use crate::notify::{Notifier, NotifyError};
use crate::registry::validate::{self, validate_new_device, Invalid};
use crate::registry::Registry;
use crate::rollout::RolloutEngine;
use crate::users::Users;

mod access;
mod body;
mod campaigns;
mod cluster;
mod directories;
mod files;
mod import;
pub mod openapi;
mod pnp;
mod problem;
mod query;
mod rollouts;
mod templates;
mod unlock;
mod uploads;
mod users;

pub use problem::ApiError;

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

type ApiResult<T> = Result<T, ApiError>;

/// The services the admin API calls. Each handler is given only those it uses, as its own
/// `State` ([`FromRef`]): reads go to the store, the inventory or the provisioning core; every
/// write goes through the [`Registry`].
#[derive(Clone)]
pub struct ApiServices {
    /// The bearer tokens that authenticate requests (every request but `/metrics` carries one).
    pub tokens: Arc<Tokens>,
    /// For reads only: listings, history, campaigns, uploads.
    pub store: Store,
    /// The in-memory devices, groups and global settings (device views, merged settings).
    pub inventory: Arc<Inventory>,
    /// What phones receive: `render`, hashes, key files.
    pub files: Arc<Files>,
    /// The one write path for devices, groups and global settings.
    pub registry: Arc<Registry>,
    /// check-sync NOTIFYs to one device.
    pub notifier: Arc<Notifier>,
    /// Creating, following and cancelling campaigns.
    pub campaigns: Arc<CampaignEngine>,
    /// Firmware rollouts: start, resume, abort, roll back.
    pub rollouts: Arc<RolloutEngine>,
    /// First-fetch windows and generated credentials (`unlock`, device views).
    pub security: Arc<Security>,
    /// The device history sink (events the API itself records).
    pub events: FetchLog,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// PnP discoveries waiting for approval.
    pub discoveries: Arc<Discoveries>,
    /// Web console users.
    pub users: Arc<Users>,
    /// Remote phone directories.
    pub directories: Arc<crate::directories::Directories>,
    /// Stored firmware and resource files.
    pub filestore: Arc<FileStore>,
}

/// Gives each field of [`ApiServices`] to the handlers that ask for its type.
macro_rules! substates {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<ApiServices> for $ty {
            fn from_ref(services: &ApiServices) -> $ty {
                services.$field.clone()
            }
        }
    )*};
}

substates! {
    tokens: Arc<Tokens>, store: Store, inventory: Arc<Inventory>, files: Arc<Files>, registry: Arc<Registry>,
    notifier: Arc<Notifier>, campaigns: Arc<CampaignEngine>, rollouts: Arc<RolloutEngine>, security: Arc<Security>,
    events: FetchLog, metrics: Arc<Metrics>, discoveries: Arc<Discoveries>, users: Arc<Users>, filestore: Arc<FileStore>,
    directories: Arc<crate::directories::Directories>,
}

/// What showing a device takes: its files, and its access posture.
#[derive(Clone)]
struct DeviceViews {
    files: Arc<Files>,
    inventory: Arc<Inventory>,
    security: Arc<Security>,
}

impl FromRef<ApiServices> for DeviceViews {
    fn from_ref(services: &ApiServices) -> DeviceViews {
        DeviceViews {
            files: services.files.clone(),
            inventory: services.inventory.clone(),
            security: services.security.clone(),
        }
    }
}

/// Every route behind the bearer token: the one table the router is built from.
fn token_routes() -> Vec<(&'static str, MethodRouter<ApiServices>)> {
    use axum::routing::post;
    vec![
        ("/api/v1/devices", get(list_devices).post(add_device)),
        // A 100,000-device CSV is about 10 MB; axum's default limit is 2 MB.
        ("/api/v1/devices/import", post(import::import_devices).layer(axum::extract::DefaultBodyLimit::disable())),
        ("/api/v1/devices/{mac}", get(show_device).patch(patch_device).delete(delete_device)),
        ("/api/v1/devices/{mac}/log", get(device_log)),
        ("/api/v1/devices/{mac}/unlock", post(unlock::unlock_device)),
        ("/api/v1/devices/{mac}/render", get(render_device)),
        ("/api/v1/devices/{mac}/uploads", get(uploads::list)),
        ("/api/v1/devices/{mac}/uploads/{name}", get(uploads::show)),
        ("/api/v1/devices/{mac}/notify", post(notify_device)),
        ("/api/v1/groups", get(list_groups)),
        ("/api/v1/groups/{name}", get(show_group).patch(patch_group)),
        ("/api/v1/settings", get(show_global).patch(patch_global)),
        ("/api/v1/vendors", get(list_vendors)),
        ("/api/v1/summary", get(summary)),
        ("/api/v1/campaigns", get(campaigns::list).post(campaigns::create)),
        ("/api/v1/campaigns/{id}", get(campaigns::show)),
        ("/api/v1/campaigns/{id}/cancel", post(campaigns::cancel)),
        ("/api/v1/campaigns/{id}/retry", post(campaigns::retry)),
        ("/api/v1/rollouts", get(rollouts::list).post(rollouts::create)),
        ("/api/v1/rollouts/{id}", get(rollouts::show)),
        ("/api/v1/rollouts/{id}/resume", post(rollouts::resume)),
        ("/api/v1/rollouts/{id}/abort", post(rollouts::abort)),
        ("/api/v1/rollouts/{id}/rollback", post(rollouts::rollback)),
        ("/api/v1/tokens", get(access::list_tokens).post(access::create_token)),
        ("/api/v1/tokens/{name}", axum::routing::delete(access::revoke_token)),
        ("/api/v1/audit", get(access::audit)),
        ("/api/v1/devices/{mac}/audit", get(access::device_audit)),
        ("/api/v1/pnp/discoveries", get(pnp::list)),
        ("/api/v1/pnp/discoveries/{mac}", axum::routing::delete(pnp::reject)),
        ("/api/v1/pnp/discoveries/{mac}/approve", post(pnp::approve)),
        ("/api/v1/users", get(users::list).post(users::add)),
        ("/api/v1/users/{name}", axum::routing::delete(users::remove)),
        ("/api/v1/users/{name}/password", axum::routing::put(users::set_password)),
    ]
    .into_iter()
    .chain(templates::routes())
    .chain(directories::routes())
    .chain(files::routes())
    .chain(cluster::routes())
    .collect()
}

/// Routes anyone on the admin listener may read: counters and the API's own description (no
/// device, group or setting is in them).
fn open_routes() -> Vec<(&'static str, MethodRouter<ApiServices>)> {
    vec![
        ("/metrics", get(metrics)),
        ("/api/v1/openapi.json", get(openapi::document)),
        ("/api/v1/docs", get(openapi::page)),
    ]
}

/// The path of every route of the admin listener, as the router matches it (`{mac}` is a
/// parameter): what the OpenAPI completeness test walks.
pub fn route_paths() -> Vec<&'static str> {
    token_routes().into_iter().chain(open_routes()).map(|(path, _)| path).collect()
}

/// The router for the admin listener.
pub fn router(state: ApiServices) -> Router {
    let api = token_routes()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| router.route(path, methods))
        .fallback(problem::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    open_routes()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| router.route(path, methods))
        .merge(api)
        .layer(middleware::from_fn(problem::every_error_a_problem))
        .with_state(state)
}

/// Authenticates the bearer token into an [`Actor`] and checks its role covers the request.
async fn require_token(State(tokens): State<Arc<Tokens>>, mut req: Request, next: Next) -> Response {
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(actor) = given.and_then(|token| tokens.authenticate(token)) else {
        let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token").into_response();
        // RFC 6750 §3: a 401 names the scheme it wants.
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    };
    let needed = required_role(req.method(), req.uri().path());
    if !actor.role.at_least(needed) {
        let detail = format!(
            "{} {} needs the {needed} role; token {:?} has the {} role",
            req.method(),
            req.uri().path(),
            actor.name,
            actor.role
        );
        return ApiError::new(StatusCode::FORBIDDEN, detail).into_response();
    }
    req.extensions_mut().insert(actor);
    next.run(req).await
}

/// Prometheus counters.
#[utoipa::path(get, path = "/metrics", tag = "server", security(()),
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(inventory): State<Arc<Inventory>>,
    State(notifier): State<Arc<Notifier>>,
) -> impl IntoResponse {
    let body = metrics.render(inventory.len(), Some(notifier.endpoint()));
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body)
}

fn parse_mac(text: &str) -> ApiResult<Mac> {
    text.parse().map_err(|e: sipprov_model::MacError| bad_request(e.to_string()).at("mac"))
}

/// The 404 of a device the inventory does not hold, naming the `mac`.
fn no_device(mac: Mac) -> ApiError {
    ApiError::from(StoreError::DeviceNotFound(mac.to_string())).at("mac")
}

/// A device as the API shows it: secrets redacted, with the files it is served.
fn device_view(views: &DeviceViews, device: &DeviceRecord) -> Device {
    device_view_seen(views, device, device.last_fetch.as_deref())
}

/// [`device_view`] with its last fetch given (from the last-seen index rather than the record).
fn device_view_seen(views: &DeviceViews, device: &DeviceRecord, last_fetch: Option<&FetchInfo>) -> Device {
    let files: Vec<String> =
        views.files.device_files(device).map(|f| f.into_iter().map(|f| f.name).collect()).unwrap_or_default();
    let access: Access =
        crate::auth::posture::access(&views.inventory, &views.security, device, sipprov_store::now_ms());
    Device {
        mac: device.mac,
        vendor: device.vendor.to_string(),
        model: device.model.to_string(),
        group: device.group.as_deref().map(String::from),
        contact: device.contact.as_deref().map(|c| sipprov_model::redact_uri_password(c).into_owned()),
        settings: redacted(&device.settings),
        created_at: device.created_at,
        updated_at: device.updated_at,
        last_fetch: last_fetch.map(|f| LastFetch {
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
        firmware: views.files.firmware_status(device),
    }
}

/// `GET /api/v1/devices`: one page of the devices matching the query ([`crate::listing`]),
/// from memory; only the page's devices are rendered into views.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceQuery),
    responses((status = 200, description = "one page of matching devices, secrets redacted", body = Page<Device>), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn list_devices(
    State(events): State<FetchLog>,
    State(views): State<DeviceViews>,
    query::Query(q): query::Query<DeviceQuery>,
) -> ApiResult<Json<Page<Device>>> {
    if let (Some(after), Some(before)) = (q.seen_after, q.seen_before) {
        if after >= before {
            return Err(bad_request("seen_after must be earlier than seen_before").at("seen_after"));
        }
    }
    events.flush().await;
    let listing = crate::listing::list(&views.inventory, events.seen(), &q, sipprov_store::now_ms());
    let items: Vec<Device> =
        listing.page.iter().map(|(device, seen)| device_view_seen(&views, device, seen.as_ref())).collect();
    let end = listing.offset.saturating_add(items.len());
    Ok(Json(Page {
        next_offset: (end < listing.total).then_some(end),
        items,
        total: listing.total,
        offset: listing.offset,
        limit: listing.limit,
    }))
}

/// `GET /api/v1/summary`: the fleet at a glance (computed by `summary::fleet_summary`).
#[utoipa::path(get, path = "/api/v1/summary", tag = "fleet",
    responses((status = 200, description = "the fleet at a glance", body = FleetSummary), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn summary(
    State(store): State<Store>,
    State(events): State<FetchLog>,
    State(views): State<DeviceViews>,
) -> ApiResult<Json<FleetSummary>> {
    events.flush().await;
    let sources = crate::summary::SummarySources {
        store: &store,
        inventory: &views.inventory,
        seen: events.seen(),
        security: &views.security,
    };
    Ok(Json(crate::summary::fleet_summary(sources, sipprov_store::now_ms()).await?))
}

/// `POST /api/v1/devices`: adds one device.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = AddDevice,
    responses((status = 201, description = "the device as stored, secrets redacted", body = Device), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "a device with this MAC exists", body = Problem, content_type = "application/problem+json")))]
async fn add_device(
    State(registry): State<Arc<Registry>>,
    State(views): State<DeviceViews>,
    Extension(actor): Extension<Actor>,
    body::Body(body): body::Body<AddDevice>,
) -> ApiResult<(StatusCode, Json<Device>)> {
    let device = validate_new_device(&body.mac, &body.vendor, &body.model, body.group, body.contact, body.settings)?;
    registry.check_new_devices(std::slice::from_ref(&device)).map_err(bad_request)?;
    let stored = registry.add_devices(&actor, std::slice::from_ref(&device)).await?;
    let stored = stored.into_iter().next().ok_or_else(|| no_device(device.mac))?;
    tracing::info!(mac = %stored.mac, vendor = %stored.vendor, model = %stored.model, "device added");
    let view = device_view(&views, &stored);
    if crate::auth::posture::locked_after_first_fetch(&views.inventory, &views.security, &stored) {
        crate::auth::posture::warn_about_new(&[stored.mac]);
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /api/v1/devices/{mac}`: one device with its last fetch and last check-sync.
#[utoipa::path(get, path = "/api/v1/devices/{mac}", tag = "devices", params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    responses((status = 200, description = "the device, secrets redacted", body = Device), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = Problem, content_type = "application/problem+json")))]
async fn show_device(
    State(store): State<Store>,
    State(events): State<FetchLog>,
    State(views): State<DeviceViews>,
    Path(mac): Path<String>,
) -> ApiResult<Json<Device>> {
    let mac = parse_mac(&mac)?;
    events.flush().await;
    let device = store.get_device(mac).await?.ok_or_else(|| no_device(mac))?;
    let mut view = device_view(&views, &device);
    let events = store.device_events(mac, 200).await?;
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

/// `PATCH /api/v1/devices/{mac}`: changes settings, group, contact or model.
#[utoipa::path(patch, path = "/api/v1/devices/{mac}", tag = "devices", params(("mac" = String, Path, description = "the device's MAC, any common spelling")), request_body = PatchDevice,
    responses((status = 200, description = "the device as changed, secrets redacted", body = Device), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = Problem, content_type = "application/problem+json")))]
async fn patch_device(
    State(registry): State<Arc<Registry>>,
    State(views): State<DeviceViews>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
    body::Body(body): body::Body<PatchDevice>,
) -> ApiResult<Json<Device>> {
    let mac = parse_mac(&mac)?;
    let current = views.inventory.device(mac).ok_or_else(|| no_device(mac))?;
    let patch = validate::device_patch(&current, body)?;
    let updated = registry.patch_device(&actor, &current, &patch).await?;
    tracing::info!(%mac, "device changed");
    Ok(Json(device_view(&views, &updated)))
}

/// `DELETE /api/v1/devices/{mac}`.
#[utoipa::path(delete, path = "/api/v1/devices/{mac}", tag = "devices", params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    responses((status = 204, description = "removed"), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = Problem, content_type = "application/problem+json")))]
async fn delete_device(
    State(registry): State<Arc<Registry>>,
    State(events): State<FetchLog>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
) -> ApiResult<StatusCode> {
    let mac = parse_mac(&mac)?;
    registry.delete_device(&actor, mac).await?;
    events.seen().forget(mac);
    tracing::info!(%mac, "device removed");
    Ok(StatusCode::NO_CONTENT)
}

/// The query of a device's history: the newest `limit` events (100 by default, at most
/// 10,000) whose id is below `before` (to page back from the oldest event shown).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    limit: Option<i64>,
    before: Option<i64>,
}

/// `GET /api/v1/devices/{mac}/log`: a page of the device's history.
#[utoipa::path(get, path = "/api/v1/devices/{mac}/log", tag = "devices",
    params(("mac" = String, Path, description = "the device's MAC, any common spelling"),
        ("limit" = Option<i64>, Query, description = "events in the page (100 by default, at most 10000)"),
        ("before" = Option<i64>, Query, description = "only events whose id is below this one")),
    responses((status = 200, description = "the newest matching events, oldest first", body = Vec<DeviceEvent>), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn device_log(
    State(store): State<Store>,
    State(events): State<FetchLog>,
    Path(mac): Path<String>,
    query::Query(q): query::Query<LogQuery>,
) -> ApiResult<Json<Vec<DeviceEvent>>> {
    let mac = parse_mac(&mac)?;
    events.flush().await;
    let events = store.device_events_before(mac, q.before, q.limit.unwrap_or(100).clamp(1, 10_000)).await?;
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
#[utoipa::path(get, path = "/api/v1/devices/{mac}/render", tag = "devices",
    params(("mac" = String, Path, description = "the device's MAC, any common spelling"), ("file" = Option<String>, Query, description = "the file (default: the device's own configuration)")),
    responses((status = 200, description = "exactly the bytes the phone receives, secrets included", body = String, content_type = "application/octet-stream"),
        (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = Problem, content_type = "application/problem+json"), (status = 422, description = "the file cannot be rendered", body = Problem, content_type = "application/problem+json")))]
async fn render_device(
    State(files_core): State<Arc<Files>>,
    State(inventory): State<Arc<Inventory>>,
    Path(mac): Path<String>,
    Query(q): Query<RenderQuery>,
) -> ApiResult<Response> {
    let mac = parse_mac(&mac)?;
    let device = inventory.device(mac).ok_or_else(|| no_device(mac))?;
    let files =
        files_core.device_files(&device).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
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
        model: Some(device.model.to_string().into()),
        firmware: None,
        mac: Some(mac),
    };
    let resolved = files_core.resolve(&wanted, Some(&ua)).map_err(|_| {
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("device {mac} has no file {wanted:?}; its files: {}", names.join(", ")),
        )
        .at("file")
    })?;
    let served = files_core
        .served(&resolved, &wanted, None)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, served.content_type), (header::ETAG, served.etag())], served.bytes.clone())
        .into_response())
}

/// Sends check-sync now and answers with the outcome (also recorded in the device's history).
#[utoipa::path(post, path = "/api/v1/devices/{mac}/notify", tag = "devices", params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    request_body(content = Option<NotifyRequest>, description = "`{\"reboot\": true}` asks for a reboot"),
    responses((status = 200, description = "the check-sync outcome", body = NotifyOutcome), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "no SIP target for the device", body = Problem, content_type = "application/problem+json")))]
async fn notify_device(
    State(notifier): State<Arc<Notifier>>,
    State(inventory): State<Arc<Inventory>>,
    State(store): State<Store>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
    body: Option<Json<NotifyRequest>>,
) -> ApiResult<Json<NotifyOutcome>> {
    let mac = parse_mac(&mac)?;
    if !inventory.contains(mac) {
        return Err(no_device(mac));
    }
    let reboot = body.map(|b| b.reboot).unwrap_or(false);
    // Recorded before it is sent: a check-sync cannot be taken back, so a database that cannot
    // take the record stops it.
    let action = if reboot { "device.reboot" } else { "device.notify" };
    store
        .append_audit(&crate::access::audit::entry(&actor, action, "device", &mac.to_string(), serde_json::json!({})))
        .await?;
    let outcome = notifier.notify_device(mac, reboot).await.map_err(|e| match e {
        NotifyError::UnknownDevice(_) => no_device(mac),
        NotifyError::CheckSync(e) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    })?;
    Ok(Json(NotifyOutcome::from(outcome)))
}

/// `GET /api/v1/groups`.
#[utoipa::path(get, path = "/api/v1/groups", tag = "groups",
    responses((status = 200, description = "every group, secrets redacted", body = Vec<GroupSummary>), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn list_groups(State(store): State<Store>) -> ApiResult<Json<Vec<GroupSummary>>> {
    let groups = store.list_groups().await?;
    let views = groups
        .into_iter()
        .map(|g| GroupSummary { settings: redacted(&g.settings), name: g.name, updated_at: g.updated_at })
        .collect();
    Ok(Json(views))
}

/// `GET /api/v1/groups/{name}`.
#[utoipa::path(get, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path, description = "the group's name")),
    responses((status = 200, description = "the group and its device count", body = Group), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such group", body = Problem, content_type = "application/problem+json")))]
async fn show_group(State(store): State<Store>, Path(name): Path<String>) -> ApiResult<Json<Group>> {
    let group = store.get_group(&name).await?.ok_or(StoreError::GroupNotFound(name))?;
    let devices = store.list_devices().await?.into_iter().filter(|d| d.group.as_deref() == Some(&group.name)).count();
    Ok(Json(Group { settings: redacted(&group.settings), name: group.name, devices, updated_at: group.updated_at }))
}

/// `PATCH /api/v1/groups/{name}`: changes (or creates) a group's settings.
#[utoipa::path(patch, path = "/api/v1/groups/{name}", tag = "groups", params(("name" = String, Path, description = "the group's name")),
    request_body(content = BTreeMap<String, String>, description = "settings to set; an empty value removes one"),
    responses((status = 200, description = "the group's settings, secrets redacted", body = GroupChanged), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn patch_group(
    State(registry): State<Arc<Registry>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    body::Body(patch): body::Body<Settings>,
) -> ApiResult<Json<GroupChanged>> {
    validate::group_name(&name)?;
    let patch = sipprov_vendors::validated(patch).map_err(Invalid::from)?;
    validate::group_settings(&patch)?;
    let group = registry.patch_group(&actor, &name, &patch).await?;
    tracing::info!(group = %name, keys = patch.len(), "group settings changed");
    Ok(Json(GroupChanged { settings: redacted(&group.settings), name: group.name }))
}

/// `GET /api/v1/settings`.
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, description = "the global settings, secrets redacted", body = BTreeMap<String, String>), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn show_global(State(store): State<Store>) -> ApiResult<Json<Settings>> {
    Ok(Json(redacted(&store.global_settings().await?)))
}

/// `PATCH /api/v1/settings`.
#[utoipa::path(patch, path = "/api/v1/settings", tag = "settings",
    request_body(content = BTreeMap<String, String>, description = "settings to set; an empty value removes one"),
    responses((status = 200, description = "the global settings, secrets redacted", body = BTreeMap<String, String>), (status = 400, description = "a malformed request; `field` names the member at fault", body = Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
async fn patch_global(
    State(registry): State<Arc<Registry>>,
    Extension(actor): Extension<Actor>,
    body::Body(patch): body::Body<Settings>,
) -> ApiResult<Json<Settings>> {
    let patch = sipprov_vendors::validated(patch).map_err(Invalid::from)?;
    let settings = registry.patch_global(&actor, &patch).await?;
    tracing::info!(keys = patch.len(), "global settings changed");
    Ok(Json(redacted(&settings)))
}

/// `GET /api/v1/vendors`.
#[utoipa::path(get, path = "/api/v1/vendors", tag = "server",
    responses((status = 200, description = "vendors and their models", body = Vec<VendorInfo>), (status = 401, description = "missing or wrong bearer token", body = Problem, content_type = "application/problem+json")))]
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
