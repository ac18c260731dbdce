//! Remote phone directories (`/console/directories`): the list with sizes, one directory's
//! contacts, and an import form (CSV pasted into a text area, header row
//! `name,office,mobile,other`) that replaces a directory's contacts all or nothing. Importing
//! needs the admin role, like the API; the refusal names the line and column.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::Role;

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::directories::csv;
use crate::directories::DirectoryError;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new().route("/console/directories", get(page).post(import)).route("/console/directories/{name}", get(show))
}

/// `GET /console/directories`.
async fn page(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    list_page(&c, &viewer, None, StatusCode::OK)
}

fn list_page(c: &ConsoleServices, viewer: &Viewer, notice: Option<String>, status: StatusCode) -> Page {
    let directories: Vec<serde_json::Value> = c
        .directories
        .list()
        .iter()
        .map(|d| serde_json::json!({ "name": d.name, "contacts": d.contacts.len(), "updated_at": d.updated_at }))
        .collect();
    let ctx =
        serde_json::json!({ "me": me(viewer), "nav": "directories", "directories": directories, "notice": notice });
    let mut page = render("directories.html", ctx)?;
    *page.status_mut() = status;
    Ok(page)
}

/// `GET /console/directories/{name}`.
async fn show(axum::extract::State(c): Ctx, viewer: Viewer, Path(name): Path<String>) -> Page {
    let d = c.directories.get(&name).ok_or_else(|| ConsoleError::new(StatusCode::NOT_FOUND, "no such directory"))?;
    let ctx = serde_json::json!({ "me": me(&viewer), "nav": "directories", "d": *d });
    render("directory.html", ctx)
}

/// The import form.
#[derive(Deserialize)]
pub(super) struct Import {
    #[serde(default)]
    name: String,
    #[serde(default)]
    csv: String,
}

/// `POST /console/directories`: imports the pasted CSV into directory `name`.
async fn import(axum::extract::State(c): Ctx, viewer: Viewer, Form(form): Form<Import>) -> Page {
    viewer.require(Role::Admin)?;
    let contacts = match csv::parse(form.csv.as_bytes()) {
        Ok(contacts) => contacts,
        Err(e) => {
            let notice = format!("Refused: {e}; nothing was imported.");
            return list_page(&c, &viewer, Some(notice), StatusCode::BAD_REQUEST);
        }
    };
    match c.directories.put(&viewer.actor(), form.name.trim(), contacts, "csv").await {
        Ok(d) => {
            tracing::info!(directory = %d.name, contacts = d.contacts.len(), user = %viewer.session.user, "directory imported in the console");
            let notice = format!("Directory {} imported: {} contacts.", d.name, d.contacts.len());
            list_page(&c, &viewer, Some(notice), StatusCode::OK)
        }
        Err(DirectoryError::Store(e)) if !matches!(e, sipprov_store::StoreError::Limit(_)) => {
            Err(ConsoleError::from(e))
        }
        Err(e) => list_page(&c, &viewer, Some(format!("Refused: {e}")), StatusCode::BAD_REQUEST),
    }
}
