//! Groups (`/console/groups`, `/console/groups/{name}`) and the global settings
//! (`/console/settings`): each level's own settings, secrets masked, and a form to set or
//! remove one, refused with the validation message next to the field. Group settings need the
//! operator role, global settings the admin role.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use sipprov_api::Role;
use sipprov_model::Settings;

use super::devices::SettingForm;
use super::session::Viewer;
use super::view::{me, one_setting, own};
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::registry::validate;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/groups", get(groups))
        .route("/console/groups/{name}", get(group))
        .route("/console/groups/{name}/settings", post(set_group))
        .route("/console/settings", get(global).post(set_global))
}

/// One group in the list.
#[derive(serde::Serialize)]
struct GroupRow {
    name: String,
    devices: usize,
    settings: usize,
}

/// `GET /console/groups`.
async fn groups(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    let devices = c.inventory.devices();
    let rows: Vec<GroupRow> = c
        .store
        .list_groups()
        .await?
        .into_iter()
        .map(|g| GroupRow {
            devices: devices.iter().filter(|d| d.group.as_deref() == Some(g.name.as_str())).count(),
            settings: g.settings.len(),
            name: g.name,
        })
        .collect();
    render("groups.html", serde_json::json!({ "me": me(&viewer), "nav": "groups", "groups": rows }))
}

/// What the settings page shows after a change, or a refusal next to its field.
#[derive(Default)]
struct Result_ {
    notice: Option<String>,
    error: Option<(&'static str, String, String)>,
}

fn settings_page(
    viewer: &Viewer,
    scope: &str,
    name: Option<&str>,
    settings: &Settings,
    devices: usize,
    r: Result_,
) -> Page {
    let (action, title, nav) = match name {
        Some(n) => (format!("/console/groups/{n}/settings"), format!("Group {n}"), "groups"),
        None => ("/console/settings".to_string(), "Global settings".to_string(), "settings"),
    };
    let may_edit = if name.is_some() { viewer.can(Role::Operator) } else { viewer.can(Role::Admin) };
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": nav, "scope": scope, "name": name, "title": title, "action": action,
        "own": own(settings), "devices": devices, "may_edit": may_edit, "notice": r.notice,
        "error": r.error.map(|(field, message, key)| serde_json::json!({ "field": field, "message": message, "key": key }))});
    render("settings.html", ctx)
}

fn group_devices(c: &ConsoleServices, name: &str) -> usize {
    c.inventory.devices().iter().filter(|d| d.group.as_deref() == Some(name)).count()
}

/// `GET /console/groups/{name}`.
async fn group(axum::extract::State(c): Ctx, viewer: Viewer, Path(name): Path<String>) -> Page {
    let settings =
        c.inventory.group(&name).ok_or_else(|| ConsoleError::not_found(format!("group {name:?} not found")))?;
    settings_page(&viewer, "group", Some(&name), &settings, group_devices(&c, &name), Result_::default())
}

/// `POST /console/groups/{name}/settings`.
async fn set_group(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<SettingForm>,
) -> Page {
    viewer.require(Role::Operator)?;
    validate::group_name(&name).map_err(|e| ConsoleError::new(StatusCode::BAD_REQUEST, e.message))?;
    let result = async {
        let patch = one_setting(form.key(), form.value())?;
        validate::group_settings(&patch).map_err(|e| ("key", e.message))?;
        c.registry.patch_group(&viewer.actor(), &name, &patch).await.map_err(|e| ("value", e.to_string()))
    }
    .await;
    let settings = c.inventory.group(&name).unwrap_or_default();
    let devices = group_devices(&c, &name);
    finish(&viewer, "group", Some(&name), &settings, devices, &form, result.map(drop))
}

/// `GET /console/settings`.
async fn global(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    settings_page(&viewer, "global", None, &c.inventory.global(), c.inventory.len(), Result_::default())
}

/// `POST /console/settings`: admin only.
async fn set_global(axum::extract::State(c): Ctx, viewer: Viewer, Form(form): Form<SettingForm>) -> Page {
    viewer.require(Role::Admin)?;
    let result = async {
        let patch = one_setting(form.key(), form.value())?;
        c.registry.patch_global(&viewer.actor(), &patch).await.map_err(|e| ("value", e.to_string()))
    }
    .await;
    finish(&viewer, "global", None, &c.inventory.global(), c.inventory.len(), &form, result.map(drop))
}

/// The page after a change: a notice, or the refusal next to its field with status 400.
fn finish(
    viewer: &Viewer,
    scope: &str,
    name: Option<&str>,
    settings: &Settings,
    devices: usize,
    form: &SettingForm,
    result: Result<(), (&'static str, String)>,
) -> Page {
    let key = form.key().trim().to_string();
    match result {
        Ok(()) => {
            tracing::info!(scope, group = ?name, %key, user = %viewer.session.user, "settings changed in the console");
            let r = Result_ { notice: Some(format!("{key} saved.")), error: None };
            settings_page(viewer, scope, name, settings, devices, r)
        }
        Err((field, message)) => {
            let r = Result_ { notice: None, error: Some((field, message, key)) };
            let mut page = settings_page(viewer, scope, name, settings, devices, r)?;
            *page.status_mut() = StatusCode::BAD_REQUEST;
            Ok(page)
        }
    }
}
