//! Plug-and-Play (`/console/pnp`): the devices Plug-and-Play discovered and put in the
//! discovered group (`pnp.discovered_group`), and approving one into a group of the fleet,
//! which gives it that group's settings (operator role).

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::{PatchDevice, Role};

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::registry::validate;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new().route("/console/pnp", get(page)).route("/console/pnp/{mac}/approve", post(approve))
}

/// `GET /console/pnp`.
async fn page(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    pnp_page(&c, &viewer, None, StatusCode::OK)
}

fn pnp_page(c: &ConsoleServices, viewer: &Viewer, notice: Option<String>, status: StatusCode) -> Page {
    let mut waiting: Vec<_> = c
        .inventory
        .devices()
        .into_iter()
        .filter(|d| d.group.as_deref() == Some(c.discovered_group.as_str()))
        .map(|d| {
            serde_json::json!({
                "mac": d.mac.to_string(), "vendor": d.vendor, "model": d.model, "created_at": d.created_at,
                "last_fetch": d.last_fetch.as_ref().map(|f| f.at)})
        })
        .collect();
    waiting.truncate(500);
    let groups: Vec<String> =
        c.inventory.devices().iter().filter_map(|d| d.group.clone()).filter(|g| *g != c.discovered_group).collect();
    let mut groups = groups;
    groups.sort();
    groups.dedup();
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "pnp", "waiting": waiting, "groups": groups,
        "discovered": c.discovered_group, "notice": notice});
    let mut page = render("pnp.html", ctx)?;
    *page.status_mut() = status;
    Ok(page)
}

/// The approval form.
#[derive(Deserialize)]
pub(super) struct Approve {
    #[serde(default)]
    group: String,
}

/// `POST /console/pnp/{mac}/approve`: moves a discovered device into `group`.
async fn approve(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(mac): Path<String>,
    Form(form): Form<Approve>,
) -> Page {
    viewer.require(Role::Operator)?;
    let mac: sipprov_model::Mac =
        mac.parse().map_err(|e: sipprov_model::MacError| ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let current = c.inventory.device(mac).ok_or_else(|| ConsoleError::not_found(format!("device {mac} not found")))?;
    let group = form.group.trim().to_string();
    if group.is_empty() || group == c.discovered_group {
        return pnp_page(
            &c,
            &viewer,
            Some("Choose the group to approve the device into.".into()),
            StatusCode::BAD_REQUEST,
        );
    }
    let body = PatchDevice { group: Some(group.clone()), ..PatchDevice::default() };
    let result = match validate::device_patch(&current, body) {
        Ok(patch) => c.registry.patch_device(&viewer.actor(), &current, &patch).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.message),
    };
    match result {
        Ok(_) => {
            tracing::info!(%mac, %group, user = %viewer.session.user, "discovered device approved in the console");
            pnp_page(&c, &viewer, Some(format!("{mac} approved into {group}.")), StatusCode::OK)
        }
        Err(message) => pnp_page(&c, &viewer, Some(format!("{mac} not approved: {message}")), StatusCode::BAD_REQUEST),
    }
}
