//! Devices: the list with filters and paging (`/console/devices`), and a device's page
//! (`/console/devices/{mac}`): its merged settings with where each value comes from, the
//! files it receives as rendered (secrets masked), its history and its audit trail (who
//! changed what, secrets masked), and the actions: re-provision,
//! reboot (after a confirmation page), unlock, and changing one of its own settings, refused
//! with the validation message next to the field.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::{DeviceQuery, PatchDevice, Role};
use sipprov_model::Mac;
use sipprov_store::DeviceRecord;

use super::session::Viewer;
use super::view::{mask_secrets, me, one_setting, with_origins};
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::access::{audit, Actor};
use crate::registry::validate;
use crate::unlock::{self, UnlockError};

/// Devices per page of the list.
const PAGE_SIZE: usize = 50;
/// History entries shown on a device page.
const HISTORY_SHOWN: i64 = 50;
/// The largest rendered file shown whole on a device page.
const FILE_SHOWN_BYTES: usize = 64 * 1024;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/devices", get(list))
        .route("/console/devices/{mac}", get(show))
        .route("/console/devices/{mac}/settings", post(set_setting))
        .route("/console/devices/{mac}/notify", post(reprovision))
        .route("/console/devices/{mac}/reboot", get(confirm_reboot).post(reboot))
        .route("/console/devices/{mac}/unlock", post(unlock))
        .route("/console/devices/{mac}/group", post(set_group))
}

/// The list's filters, as the query string carries them (empty: no filter).
#[derive(Deserialize, Default, Clone, serde::Serialize)]
pub(super) struct Filters {
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    firmware: String,
    /// Part of a MAC in any spelling, or of a display name.
    #[serde(default)]
    q: String,
    /// `true`: only devices silent for longer than expected.
    #[serde(default)]
    silent: String,
    #[serde(default)]
    page: usize,
}

impl Filters {
    /// The API's query for these filters: the console and `GET /api/v1/devices` list through
    /// the same [`crate::listing::list`].
    fn query(&self) -> DeviceQuery {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        DeviceQuery {
            vendor: some(&self.vendor),
            model: some(&self.model),
            group: some(&self.group),
            firmware: some(&self.firmware),
            q: some(&self.q),
            silent: (self.silent == "true").then_some(true),
            limit: Some(PAGE_SIZE),
            offset: Some(self.page.saturating_mul(PAGE_SIZE)),
            ..DeviceQuery::default()
        }
    }
}

/// One row of the list.
#[derive(serde::Serialize)]
struct Row {
    mac: String,
    vendor: String,
    model: String,
    group: Option<String>,
    last_fetch: Option<i64>,
    firmware: Option<String>,
}

/// `GET /console/devices`.
async fn list(axum::extract::State(c): Ctx, viewer: Viewer, Query(filters): Query<Filters>) -> Page {
    c.events.flush().await;
    let listing = crate::listing::list(&c.inventory, c.events.seen(), &filters.query(), sipprov_store::now_ms());
    let rows: Vec<Row> = listing
        .page
        .iter()
        .map(|(d, seen)| Row {
            mac: d.mac.to_string(),
            vendor: d.vendor.to_string(),
            model: d.model.to_string(),
            group: d.group.as_deref().map(String::from),
            last_fetch: seen.as_ref().map(|f| f.at),
            firmware: seen.as_ref().and_then(|f| f.reported_firmware.clone()),
        })
        .collect();
    let total = listing.total;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = filters.page;
    // The filters' choices, from the vendor registry and the group table rather than a pass
    // over every device: the page stays as cheap as the listing itself.
    let registry = sipprov_vendors::registry();
    let vendors: BTreeSet<&str> = registry.vendors().iter().map(|v| v.id()).collect();
    let models: BTreeSet<&str> = registry
        .vendors()
        .iter()
        .filter(|v| filters.vendor.is_empty() || v.id() == filters.vendor)
        .flat_map(|v| v.models().iter().map(|m| m.name))
        .collect();
    let groups: Vec<String> = c.store.list_groups().await?.into_iter().map(|g| g.name).collect();
    let query = |p: usize| serde_urlencoded::to_string(Filters { page: p, ..filters.clone() }).unwrap_or_default();
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "devices", "rows": rows, "total": total,
        "page": page + 1, "pages": pages,
        "prev": (page > 0).then(|| query(page - 1)), "next": (page + 1 < pages).then(|| query(page + 1)),
        "f": filters, "vendors": vendors, "models": models, "groups": groups});
    render("devices.html", ctx)
}

fn parse_mac(text: &str) -> Result<Mac, ConsoleError> {
    text.parse().map_err(|e: sipprov_model::MacError| ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

fn device(c: &ConsoleServices, mac: &str) -> Result<Arc<DeviceRecord>, ConsoleError> {
    let mac = parse_mac(mac)?;
    c.inventory.device(mac).ok_or_else(|| ConsoleError::not_found(format!("device {mac} not found")))
}

/// A refused setting, shown next to the field it is about.
#[derive(serde::Serialize, Default)]
struct FieldError {
    /// `key` or `value`.
    field: &'static str,
    message: String,
    key: String,
}

/// One rendered file of the device, secrets masked.
#[derive(serde::Serialize)]
struct ShownFile {
    name: String,
    text: Option<String>,
    note: Option<String>,
}

/// What the device page shows besides the device: a message after an action, or a refusal.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<FieldError>,
}

async fn device_page(c: &ConsoleServices, viewer: &Viewer, device: &DeviceRecord, outcome: Outcome) -> Page {
    c.events.flush().await;
    let global = c.inventory.global();
    let group = device.group.as_deref().and_then(|g| c.inventory.group(g)).unwrap_or_default();
    let settings = with_origins(&global, &group, &device.settings);
    let own = super::view::own(&device.settings);
    let files = shown_files(c, device);
    let query = sipprov_store::AuditQuery { device: Some(device.mac), limit: HISTORY_SHOWN, ..Default::default() };
    let changes: Vec<_> = c
        .store
        .list_audit(&query)
        .await?
        .into_iter()
        .map(
            |a| serde_json::json!({ "at": a.at, "actor": a.actor, "action": a.action, "detail": a.detail.to_string() }),
        )
        .collect();
    let mut history = c.store.device_events(device.mac, HISTORY_SHOWN).await?;
    history.reverse();
    let history: Vec<_> = history
        .into_iter()
        .map(|e| serde_json::json!({ "at": e.at, "kind": e.kind.as_str(), "detail": e.detail.to_string() }))
        .collect();
    let access = crate::auth::posture::access(&c.inventory, &c.security, device, sipprov_store::now_ms());
    // The last-seen index is kept current by the fetch log; the inventory's copy is the one
    // loaded at start.
    let last_fetch = c.events.seen().get(device.mac).or_else(|| device.last_fetch.as_deref().cloned());
    let mut groups: Vec<String> =
        c.inventory.devices().iter().filter_map(|d| d.group.as_deref().map(String::from)).collect();
    groups.sort();
    groups.dedup();
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "devices",
        "d": serde_json::json!({
            "mac": device.mac.to_string(), "vendor": device.vendor, "model": device.model, "group": device.group,
            "contact": device.contact.as_deref().map(|u| sipprov_model::redact_uri_password(u).into_owned()),
            "created_at": device.created_at, "updated_at": device.updated_at,
            "last_fetch": last_fetch.as_ref().map(|f| serde_json::json!({
                "at": f.at, "ip": f.ip, "file": f.file, "firmware": f.reported_firmware}))}),
        "access": serde_json::to_value(&access).unwrap_or_default(),
        "firmware": c.files.firmware_status(device),
        "settings": settings, "own": own, "groups": groups, "files": files, "history": history, "changes": changes,
        "notice": outcome.notice, "error": outcome.error});
    render("device.html", ctx)
}

/// The device's files as it receives them, with its secrets (and generated credentials)
/// replaced by the mask.
fn shown_files(c: &ConsoleServices, device: &DeviceRecord) -> Vec<ShownFile> {
    let secrets = c.files.device_settings(device);
    let mut specs = match c.files.device_files(device) {
        Ok(specs) => specs,
        Err(e) => return vec![ShownFile { name: "(none)".into(), text: None, note: Some(e.to_string()) }],
    };
    // The device's own file first (shown open), then the common files it also fetches.
    specs.sort_by_key(|spec| !matches!(spec.scope, sipprov_vendors::FileScope::Device));
    specs
        .iter()
        .map(|spec| match c.files.render_device_file(device, spec) {
            Err(e) => ShownFile { name: spec.name.clone(), text: None, note: Some(format!("does not render: {e}")) },
            Ok(served) => match std::str::from_utf8(&served.bytes) {
                Err(_) => ShownFile {
                    name: spec.name.clone(),
                    text: None,
                    note: Some(format!("{} bytes, encrypted or binary: not shown", served.bytes.len())),
                },
                Ok(text) if text.len() > FILE_SHOWN_BYTES => ShownFile {
                    name: spec.name.clone(),
                    text: Some(mask_secrets(&text[..text.floor_char_boundary(FILE_SHOWN_BYTES)], &secrets)),
                    note: Some(format!("the first {FILE_SHOWN_BYTES} bytes of {}", text.len())),
                },
                Ok(text) => ShownFile { name: spec.name.clone(), text: Some(mask_secrets(text, &secrets)), note: None },
            },
        })
        .collect()
}

/// `GET /console/devices/{mac}`.
async fn show(axum::extract::State(c): Ctx, viewer: Viewer, Path(mac): Path<String>) -> Page {
    let device = device(&c, &mac)?;
    device_page(&c, &viewer, &device, Outcome::default()).await
}

/// The setting form's fields.
#[derive(Deserialize)]
pub(super) struct SettingForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

impl SettingForm {
    /// The setting's key as typed.
    pub(super) fn key(&self) -> &str {
        &self.key
    }

    /// The value as typed (empty: remove the key).
    pub(super) fn value(&self) -> &str {
        &self.value
    }
}

/// `POST /console/devices/{mac}/settings`: sets (or, with an empty value, removes) one of the
/// device's own settings, with the API's validation; a refusal shows the device page again
/// with the message next to the field and changes nothing.
async fn set_setting(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(mac): Path<String>,
    Form(form): Form<SettingForm>,
) -> Page {
    viewer.require(Role::Operator)?;
    let current = device(&c, &mac)?;
    let refused = |field: &'static str, message: String| Outcome {
        notice: None,
        error: Some(FieldError { field, message, key: form.key.clone() }),
    };
    let outcome = match change_setting(&c, &viewer.actor(), &current, &form).await {
        Ok(()) => {
            tracing::info!(mac = %current.mac, key = %form.key.trim(), user = %viewer.session.user, "device setting changed in the console");
            Outcome { notice: Some(format!("{} saved.", form.key.trim())), error: None }
        }
        Err((field, message)) => refused(field, message),
    };
    let failed = outcome.error.is_some();
    let device = c.inventory.device(current.mac).unwrap_or(current);
    let mut page = device_page(&c, &viewer, &device, outcome).await?;
    if failed {
        *page.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(page)
}

/// Validates and writes one setting; the error names the form field at fault.
async fn change_setting(
    c: &ConsoleServices,
    actor: &Actor,
    current: &DeviceRecord,
    form: &SettingForm,
) -> Result<(), (&'static str, String)> {
    let patch = one_setting(&form.key, &form.value)?;
    let body = PatchDevice { settings: Some(patch), ..PatchDevice::default() };
    let patch = validate::device_patch(current, body).map_err(|e| ("value", e.message))?;
    c.registry.patch_device(actor, current, &patch).await.map_err(|e| ("value", e.to_string()))?;
    Ok(())
}

/// The group form's field.
#[derive(Deserialize)]
pub(super) struct GroupForm {
    #[serde(default)]
    group: String,
}

/// `POST /console/devices/{mac}/group`: moves the device to another group (empty: none), with
/// the checks a PATCH of the API makes; a refusal is shown next to the field.
async fn set_group(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(mac): Path<String>,
    Form(form): Form<GroupForm>,
) -> Page {
    viewer.require(Role::Operator)?;
    let current = device(&c, &mac)?;
    let group = form.group.trim().to_string();
    let body = PatchDevice { group: Some(group.clone()), ..PatchDevice::default() };
    let result = match validate::device_patch(&current, body) {
        Ok(patch) => {
            c.registry.patch_device(&viewer.actor(), &current, &patch).await.map(drop).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.message),
    };
    let outcome = match result {
        Ok(()) => {
            tracing::info!(mac = %current.mac, %group, user = %viewer.session.user, "device moved in the console");
            let to = if group.is_empty() { "no group".to_string() } else { format!("group {group}") };
            Outcome { notice: Some(format!("Moved to {to}.")), error: None }
        }
        Err(message) => Outcome { notice: None, error: Some(FieldError { field: "group", message, key: group }) },
    };
    let failed = outcome.error.is_some();
    let device = c.inventory.device(current.mac).unwrap_or(current);
    let mut page = device_page(&c, &viewer, &device, outcome).await?;
    if failed {
        *page.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(page)
}

/// `POST /console/devices/{mac}/notify`: check-sync now; the page shows the outcome.
async fn reprovision(axum::extract::State(c): Ctx, viewer: Viewer, Path(mac): Path<String>) -> Page {
    viewer.require(Role::Operator)?;
    notify(&c, &viewer, &mac, false).await
}

async fn notify(c: &ConsoleServices, viewer: &Viewer, mac: &str, reboot: bool) -> Page {
    let device = device(c, mac)?;
    let what = if reboot { "Reboot" } else { "Re-provision" };
    tracing::info!(mac = %device.mac, reboot, user = %viewer.session.user, "check-sync from the console");
    // Audited before it is sent, as the API does: a check-sync cannot be taken back, so a
    // database that cannot take the record stops it.
    let action = if reboot { "device.reboot" } else { "device.notify" };
    let entry = audit::entry(&viewer.actor(), action, "device", &device.mac.to_string(), serde_json::json!({}));
    c.store.append_audit(&entry).await?;
    let notice = match c.notifier.notify_device(device.mac, reboot).await {
        Ok(o) => format!(
            "{what}: {}{}{}",
            o.result.as_str(),
            o.status.map(|s| format!(" ({s})")).unwrap_or_default(),
            if o.reason.is_empty() { String::new() } else { format!(": {}", o.reason) }
        ),
        Err(e) => format!("{what} not sent: {e}"),
    };
    device_page(c, viewer, &device, Outcome { notice: Some(notice), error: None }).await
}

/// `GET /console/devices/{mac}/reboot`: asks before rebooting.
async fn confirm_reboot(axum::extract::State(c): Ctx, viewer: Viewer, Path(mac): Path<String>) -> Page {
    viewer.require(Role::Operator)?;
    let device = device(&c, &mac)?;
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "devices", "mac": device.mac.to_string(),
        "title": format!("Reboot {}?", device.mac),
        "text": "The phone restarts now: a call in progress on it is dropped.",
        "action": format!("/console/devices/{}/reboot", device.mac),
        "button": "Reboot now",
        "back": format!("/console/devices/{}", device.mac)});
    render("confirm.html", ctx)
}

/// The confirmation form's field.
#[derive(Deserialize)]
pub(super) struct Confirm {
    #[serde(default)]
    confirm: String,
}

/// `POST /console/devices/{mac}/reboot`: only with the confirmation page's `confirm=yes`.
async fn reboot(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(mac): Path<String>,
    Form(form): Form<Confirm>,
) -> Page {
    viewer.require(Role::Operator)?;
    if form.confirm != "yes" {
        return Ok(axum::response::Redirect::to(&format!("/console/devices/{mac}/reboot")).into_response());
    }
    notify(&c, &viewer, &mac, true).await
}

/// `POST /console/devices/{mac}/unlock`: re-opens the first-fetch window through
/// [`crate::unlock`], as `POST /api/v1/devices/{mac}/unlock` does.
async fn unlock(axum::extract::State(c): Ctx, viewer: Viewer, Path(mac): Path<String>) -> Page {
    viewer.require(Role::Operator)?;
    let device = device(&c, &mac)?;
    let notice = match unlock::unlock(&c.store, &c.security, &c.events, &viewer.actor(), &device).await {
        Ok(unlocked) => format!(
            "Unlocked: the device may fetch its file once without credentials until {}.",
            super::view::format_time(unlocked.open_until)
        ),
        Err(UnlockError::WindowOff) => {
            "Not unlocked: the first-fetch window is off (security.first_fetch_window_secs).".to_string()
        }
        Err(UnlockError::Store(e)) => return Err(e.into()),
    };
    device_page(&c, &viewer, &device, Outcome { notice: Some(notice), error: None }).await
}
