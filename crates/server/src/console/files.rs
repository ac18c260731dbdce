//! Files (`/console/files`): the stored firmware images and resource files (name, kind,
//! vendor, models, version, size, SHA-256 prefix, access, who added them and when); for
//! admins, uploading one and removing one after a confirmation page, refused with the in-use
//! reasons while something still needs it. All through the file service
//! ([`crate::filestore::FileStore`]), audited under the console user's name.
//!
//! The upload form is `multipart/form-data` and is never buffered: `session::guard_posts`
//! lets this one route through unread, and the handler checks the form's CSRF token, its first
//! field, before it reads the file, which it streams to the file service as it arrives.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Multipart, Path};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Router};
use futures_util::TryStreamExt;
use serde::Deserialize;
use sipprov_api::Role;

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::filestore::{FileError, KindScope, UploadRequest};
use crate::resources::ResourceFile;

/// The upload route, which `session::guard_posts` passes through without reading its body.
pub(super) const UPLOAD_PATH: &str = "/console/files/upload";

/// The largest text field of the upload form read (names, model lists).
const MAX_FIELD_BYTES: usize = 4096;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/files", get(page))
        // The file service bounds the upload (`[files] max_upload_bytes`), not the form limit.
        .route(UPLOAD_PATH, post(upload).layer(DefaultBodyLimit::disable()))
        .route("/console/files/{name}/remove", get(confirm_remove).post(remove))
}

/// One row of the page.
fn row(file: &ResourceFile) -> serde_json::Value {
    serde_json::json!({
        "name": file.name, "kind": file.kind.as_str(), "vendor": file.vendor, "models": file.models.join(", "),
        "version": file.version, "size": file.size, "sha": file.sha256.get(..12).unwrap_or(&file.sha256),
        "sha256": file.sha256, "access": file.access.as_str(), "added_by": file.added_by,
        "added_at": file.added_at.saturating_mul(1000),
    })
}

/// `GET /console/files`.
async fn page(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    files_page(&c, &viewer, None, StatusCode::OK)
}

fn files_page(c: &ConsoleServices, viewer: &Viewer, notice: Option<String>, status: StatusCode) -> Page {
    let firmware: Vec<_> = c.filestore.list(KindScope::Firmware).iter().map(|f| row(f)).collect();
    let resources: Vec<_> = c.filestore.list(KindScope::Resources).iter().map(|f| row(f)).collect();
    let vendors: Vec<&str> =
        sipprov_vendors::registry().vendors().iter().filter(|v| !v.models().is_empty()).map(|v| v.id()).collect();
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "files", "firmware": firmware, "resources": resources,
        "vendors": vendors, "limit": c.filestore.max_upload_bytes(), "notice": notice,
    });
    let mut page = render("files.html", ctx)?;
    *page.status_mut() = status;
    Ok(page)
}

/// A refusal the operator can fix is shown on the page (400, 409, 413); the disk's and the
/// store's failures are error pages.
fn after(c: &ConsoleServices, viewer: &Viewer, result: Result<String, FileError>) -> Page {
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(FileError::Store(_)) | Err(FileError::Io(_)) => {
            return Err(match result {
                Err(FileError::Store(e)) => ConsoleError::from(e),
                Err(e) => {
                    tracing::error!(error = %e, "cannot store an uploaded file");
                    ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                }
                Ok(_) => ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, "unreachable"),
            });
        }
        Err(FileError::Duplicate(_)) | Err(FileError::InUse { .. }) => StatusCode::CONFLICT,
        Err(FileError::NotFound(_)) => StatusCode::NOT_FOUND,
        Err(FileError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let notice = result.unwrap_or_else(|e| format!("Refused: {e}"));
    files_page(c, viewer, Some(notice), status)
}

/// `POST /console/files/upload`: the CSRF token first, then the description, then the file,
/// streamed to the file service.
async fn upload(axum::extract::State(c): Ctx, viewer: Viewer, mut form: Multipart) -> Page {
    let bad = |e: axum::extract::multipart::MultipartError| ConsoleError::new(StatusCode::BAD_REQUEST, e.body_text());
    let first = form.next_field().await.map_err(bad)?;
    let token = match first {
        Some(field) if field.name() == Some("csrf") => small_text(field).await?,
        _ => String::new(),
    };
    if !super::session::csrf_matches(&viewer.session, &token) {
        tracing::warn!(user = %viewer.session.user, "console upload refused: CSRF token missing or wrong");
        return Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "refused: the form's security token is missing or stale; reload the page and try again",
        ));
    }
    viewer.require(Role::Admin)?;
    let mut request = UploadRequest::default();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if request.name.is_empty() {
                request.name = field.file_name().unwrap_or_default().to_string();
            }
            let body = field.map_err(|e| e.body_text());
            let result = c.filestore.add(&viewer.actor(), request, Box::pin(body)).await.map(|f| {
                tracing::info!(name = %f.name, user = %viewer.session.user, "file uploaded in the console");
                format!("{} stored ({} bytes, SHA-256 {}).", f.name, f.size, f.sha256)
            });
            return after(&c, &viewer, result);
        }
        let value = small_text(field).await?;
        match name.as_str() {
            "name" => request.name = value.trim().to_string(),
            "kind" => request.kind = value,
            "vendor" => request.vendor = Some(value),
            "models" => request.models = value.split(',').map(|m| m.trim().to_string()).collect(),
            "version" => request.version = Some(value.trim().to_string()),
            "access" => request.access = Some(value),
            _ => {}
        }
    }
    after(&c, &viewer, Err(FileError::Invalid { field: "file", message: "choose a file to upload".into() }))
}

/// A text field of the form, at most [`MAX_FIELD_BYTES`].
async fn small_text(mut field: axum::extract::multipart::Field<'_>) -> Result<String, ConsoleError> {
    let mut bytes = Vec::new();
    while let Some(chunk) =
        field.chunk().await.map_err(|e| ConsoleError::new(StatusCode::BAD_REQUEST, e.body_text()))?
    {
        if bytes.len() + chunk.len() > MAX_FIELD_BYTES {
            return Err(ConsoleError::new(StatusCode::BAD_REQUEST, "a form field is too long"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ConsoleError::new(StatusCode::BAD_REQUEST, "a form field is not UTF-8"))
}

/// The file named `name`, of any kind.
fn scope_of(c: &ConsoleServices, name: &str) -> Result<(KindScope, Arc<ResourceFile>), ConsoleError> {
    [KindScope::Firmware, KindScope::Resources]
        .into_iter()
        .find_map(|scope| c.filestore.get(scope, name).map(|f| (scope, f)))
        .ok_or_else(|| ConsoleError::not_found(format!("no file named {name:?}")))
}

/// `GET /console/files/{name}/remove`: asks before removing, and says now if it is in use.
async fn confirm_remove(axum::extract::State(c): Ctx, viewer: Viewer, Path(name): Path<String>) -> Page {
    viewer.require(Role::Admin)?;
    let (_, file) = scope_of(&c, &name)?;
    let reasons = c.filestore.in_use(&file);
    let text = if reasons.is_empty() {
        format!("Phones can no longer download {} once it is removed.", file.name)
    } else {
        format!("{} is in use, so removing it will be refused: {}", file.name, reasons.join("; "))
    };
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "files", "title": format!("Remove {}?", file.name), "text": text,
        "action": format!("/console/files/{}/remove", file.name), "button": "Remove", "back": "/console/files"});
    render("confirm.html", ctx)
}

/// The confirmation form's field.
#[derive(Deserialize)]
pub(super) struct Confirm {
    #[serde(default)]
    confirm: String,
}

/// `POST /console/files/{name}/remove`: only with the confirmation page's `confirm=yes`.
async fn remove(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<Confirm>,
) -> Page {
    viewer.require(Role::Admin)?;
    if form.confirm != "yes" {
        return Ok(axum::response::Redirect::to(&format!("/console/files/{name}/remove")).into_response());
    }
    let (scope, _) = scope_of(&c, &name)?;
    let result = c.filestore.remove(&viewer.actor(), scope, &name).await.map(|f| {
        tracing::info!(name = %f.name, user = %viewer.session.user, "file removed in the console");
        format!("{} removed.", f.name)
    });
    after(&c, &viewer, result)
}
