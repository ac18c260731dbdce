//! Templates (`/console/templates`): every built-in template with whether an override serves;
//! a template's page with its current text, the diff against the built-in, its versions, and a
//! preview of what a chosen device would receive (secrets masked); for admins, saving a new
//! override (validated first: a refusal names the line and keeps the previous version
//! serving), rolling back to an earlier version and resetting to the built-in. All through the
//! template service ([`crate::templates::Templates`]), with the console user as the author.

use std::sync::Arc;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::Role;

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::templates::{Change, TemplateError, Templates};

/// The largest override body accepted from the form (the API's limit).
const MAX_BODY: usize = 256 * 1024;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/templates", get(list))
        .route("/console/templates/{vendor}/{file}", get(show).post(save))
        .route("/console/templates/{vendor}/{file}/rollback", post(rollback))
        .route("/console/templates/{vendor}/{file}/reset", post(reset))
}

fn service(c: &ConsoleServices) -> Templates {
    Templates::new(c.store.clone(), c.files.clone(), c.inventory.clone())
}

/// A template failure as a page: the operator's mistakes are 400/404, the store's 500/503.
fn failed(e: TemplateError) -> ConsoleError {
    match e {
        TemplateError::Store(e) => ConsoleError::from(e),
        TemplateError::UnknownVendor { .. }
        | TemplateError::UnknownTemplate { .. }
        | TemplateError::UnknownVersion { .. } => ConsoleError::not_found(e.to_string()),
        TemplateError::Invalid(..) | TemplateError::Device(_) => {
            ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

/// `GET /console/templates`.
async fn list(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    let templates = service(&c).list().await?;
    render("template_list.html", serde_json::json!({ "me": me(&viewer), "nav": "templates", "templates": templates }))
}

/// The template page's optional preview device.
#[derive(Deserialize, Default)]
pub(super) struct PreviewQuery {
    #[serde(default)]
    device: String,
}

/// What the template page shows besides the template.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    /// A refused body: the text as submitted and why.
    refused: Option<(String, String)>,
    preview_device: String,
}

async fn template_page(c: &ConsoleServices, viewer: &Viewer, vendor: &str, file: &str, shown: Shown) -> Page {
    let templates = service(c);
    let detail = templates.show(vendor, file).await.map_err(failed)?;
    let diff = templates.diff(vendor, file, None, None).await.map_err(failed)?;
    let preview = match shown.preview_device.trim() {
        "" => None,
        text => Some(match text.parse::<sipprov_model::Mac>() {
            Err(e) => serde_json::json!({ "error": e.to_string() }),
            Ok(mac) => match templates.preview(vendor, file, mac, None) {
                Ok((bytes, _)) => match String::from_utf8(bytes) {
                    Ok(text) => serde_json::json!({ "text": text }),
                    Err(e) => {
                        serde_json::json!({ "error": format!("{} bytes, not text: not shown", e.as_bytes().len()) })
                    }
                },
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            },
        }),
    };
    let mut devices: Vec<String> = c
        .inventory
        .devices()
        .iter()
        .filter(|d| d.vendor == detail.vendor)
        .take(200)
        .map(|d| d.mac.to_string())
        .collect();
    devices.sort();
    let (body, error) = match shown.refused {
        Some((body, error)) => (body, Some(error)),
        None => (detail.current.clone().unwrap_or_else(|| detail.builtin.clone()), None),
    };
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "templates", "t": detail, "diff": diff.diff, "body": body, "error": error,
        "notice": shown.notice, "preview": preview, "device": shown.preview_device, "devices": devices,
        "vendor": vendor, "file": file,
    });
    let mut page = render("template.html", ctx)?;
    if error.is_some() {
        *page.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(page)
}

/// `GET /console/templates/{vendor}/{file}[?device=MAC]`.
async fn show(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path((vendor, file)): Path<(String, String)>,
    Query(q): Query<PreviewQuery>,
) -> Page {
    template_page(&c, &viewer, &vendor, &file, Shown { preview_device: q.device, ..Shown::default() }).await
}

/// The edit form.
#[derive(Deserialize)]
pub(super) struct SaveForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    comment: String,
}

/// `POST /console/templates/{vendor}/{file}`: a new override version, if it validates; a
/// refusal shows the submitted text again with the error (and its line) next to it.
async fn save(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path((vendor, file)): Path<(String, String)>,
    Form(form): Form<SaveForm>,
) -> Page {
    viewer.require(Role::Admin)?;
    if form.body.len() > MAX_BODY {
        return Err(ConsoleError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a template may have at most {MAX_BODY} bytes"),
        ));
    }
    // Browsers send text areas with CRLF line ends; templates keep the built-ins' LF.
    let body = form.body.replace("\r\n", "\n");
    let name = format!("{vendor}/{file}");
    let comment = Some(form.comment.trim()).filter(|c| !c.is_empty());
    let actor = viewer.actor();
    let change = Change { name: &name, actor: &actor, comment };
    let shown = match service(&c).set(change, &body, None).await {
        Ok(version) => {
            Shown { notice: Some(format!("Saved as version {version}; it serves now.")), ..Shown::default() }
        }
        Err(e @ TemplateError::Invalid(..)) => Shown {
            refused: Some((body, format!("{e}. Nothing was saved; the previous version keeps serving."))),
            ..Shown::default()
        },
        Err(e) => return Err(failed(e)),
    };
    template_page(&c, &viewer, &vendor, &file, shown).await
}

/// The rollback form.
#[derive(Deserialize)]
pub(super) struct RollbackForm {
    version: i64,
}

/// `POST /console/templates/{vendor}/{file}/rollback`: an earlier version again, as a new one.
async fn rollback(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path((vendor, file)): Path<(String, String)>,
    Form(form): Form<RollbackForm>,
) -> Page {
    viewer.require(Role::Admin)?;
    let name = format!("{vendor}/{file}");
    let comment = format!("rollback to version {}", form.version);
    let actor = viewer.actor();
    let change = Change { name: &name, actor: &actor, comment: Some(&comment) };
    let version = service(&c).rollback(change, form.version).await.map_err(failed)?;
    let notice = format!("Version {} is serving again, as version {version}.", form.version);
    template_page(&c, &viewer, &vendor, &file, Shown { notice: Some(notice), ..Shown::default() }).await
}

/// `POST /console/templates/{vendor}/{file}/reset`: the built-in serves again.
async fn reset(axum::extract::State(c): Ctx, viewer: Viewer, Path((vendor, file)): Path<(String, String)>) -> Page {
    viewer.require(Role::Admin)?;
    let name = format!("{vendor}/{file}");
    let actor = viewer.actor();
    let change = Change { name: &name, actor: &actor, comment: Some("reset to the built-in") };
    let version = service(&c).reset(change).await.map_err(failed)?;
    let notice = format!("The built-in template serves again (version {version}).");
    template_page(&c, &viewer, &vendor, &file, Shown { notice: Some(notice), ..Shown::default() }).await
}
