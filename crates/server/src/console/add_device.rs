//! Adding a device (`/console/devices/new`, operator role): MAC, vendor, model, group and
//! contact, checked as `POST /api/v1/devices` checks them (the same validation and the same
//! registry write, audited as the console user); a refusal shows the form again with the
//! message next to the field at fault and adds nothing.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::Role;
use sipprov_model::Settings;

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleServices, Ctx, Page};
use crate::registry::validate::validate_new_device;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new().route("/console/devices/new", get(form).post(add))
}

/// The form's fields, shown again after a refusal.
#[derive(Deserialize, serde::Serialize, Default)]
pub(super) struct NewDeviceForm {
    #[serde(default)]
    mac: String,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    contact: String,
}

fn page(c: &ConsoleServices, viewer: &Viewer, form: &NewDeviceForm, error: Option<(String, String)>) -> Page {
    let vendors: Vec<serde_json::Value> = sipprov_vendors::registry()
        .vendors()
        .iter()
        .map(|v| {
            let models: Vec<&str> = v.models().iter().map(|m| m.name).collect();
            serde_json::json!({ "id": v.id(), "name": v.display_name(), "models": models })
        })
        .collect();
    let mut groups: Vec<String> =
        c.inventory.devices().iter().filter_map(|d| d.group.as_deref().map(String::from)).collect();
    groups.sort();
    groups.dedup();
    let failed = error.is_some();
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "devices", "f": form, "vendors": vendors, "groups": groups,
        "error": error.map(|(field, message)| serde_json::json!({ "field": field, "message": message })),
    });
    let mut response = render("add_device.html", ctx)?;
    if failed {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}

/// `GET /console/devices/new`.
async fn form(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    viewer.require(Role::Operator)?;
    page(&c, &viewer, &NewDeviceForm::default(), None)
}

/// `POST /console/devices/new`: adds the device and opens its page, or shows why not.
async fn add(axum::extract::State(c): Ctx, viewer: Viewer, Form(f): Form<NewDeviceForm>) -> Page {
    viewer.require(Role::Operator)?;
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let device = match validate_new_device(
        f.mac.trim(),
        f.vendor.trim(),
        f.model.trim(),
        opt(&f.group),
        opt(&f.contact),
        Settings::new(),
    ) {
        Ok(device) => device,
        Err(e) => return page(&c, &viewer, &f, Some((e.field.unwrap_or_else(|| "mac".into()), e.message))),
    };
    if let Err(why) = c.registry.check_new_devices(std::slice::from_ref(&device)) {
        return page(&c, &viewer, &f, Some(("group".into(), why)));
    }
    if c.inventory.contains(device.mac) {
        return page(&c, &viewer, &f, Some(("mac".into(), format!("device {} already exists", device.mac))));
    }
    let stored = match c.registry.add_devices(&viewer.actor(), std::slice::from_ref(&device)).await {
        Ok(stored) => stored,
        Err(e @ sipprov_store::StoreError::DuplicateDevice(_)) => {
            return page(&c, &viewer, &f, Some(("mac".into(), e.to_string())));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(mac = %device.mac, user = %viewer.session.user, "device added in the console");
    if stored.iter().any(|d| crate::auth::posture::locked_after_first_fetch(&c.inventory, &c.security, d)) {
        crate::auth::posture::warn_about_new(&[device.mac]);
    }
    Ok(Redirect::to(&format!("/console/devices/{}", device.mac)).into_response())
}
