//! `/api/v1/directories`: remote phone directories (admin writes, read-only reads), for
//! `sipprov directory import|list|show|rm`.
//!
//! A write replaces a directory's contacts whole, after every contact passed its checks, in
//! one transaction with its audit entry (`directory.put` with the count and the source,
//! `directory.rm`); contacts themselves never go into the audit trail.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, MethodRouter};
use axum::Extension;
use axum::Json;
use sipprov_api::{Directory, DirectoryContact, DirectorySummary, PutDirectory};
use sipprov_model::contact::Contact;
use sipprov_store::{DirectoryRecord, StoreError};

use super::{ApiError, ApiResult, ApiServices};
use crate::access::Actor;
use crate::directories::csv::{self, MAX_CSV_BYTES};
use crate::directories::{Directories, DirectoryError};

/// The directory routes.
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<ApiServices>)> {
    vec![
        ("/api/v1/directories", get(list)),
        ("/api/v1/directories/{name}", get(show).put(put).delete(remove)),
        (
            "/api/v1/directories/{name}/import",
            post(import).layer(axum::extract::DefaultBodyLimit::max(MAX_CSV_BYTES + 1024)),
        ),
    ]
}

impl From<DirectoryError> for ApiError {
    fn from(e: DirectoryError) -> ApiError {
        match e {
            DirectoryError::Invalid { field, message } => ApiError::new(StatusCode::BAD_REQUEST, message).at(&field),
            DirectoryError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()).at("name"),
            DirectoryError::InUse(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()).at("name"),
            DirectoryError::Store(StoreError::Limit(m)) => ApiError::new(StatusCode::CONFLICT, m).at("name"),
            DirectoryError::Store(e) => ApiError::from(e),
        }
    }
}

fn summary(d: &DirectoryRecord) -> DirectorySummary {
    DirectorySummary {
        name: d.name.clone(),
        contacts: d.contacts.len(),
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

fn full(d: &DirectoryRecord) -> Directory {
    let contacts = d
        .contacts
        .iter()
        .map(|c| DirectoryContact {
            name: c.name.clone(),
            office: c.office.clone(),
            mobile: c.mobile.clone(),
            other: c.other.clone(),
        })
        .collect();
    Directory { name: d.name.clone(), contacts, created_at: d.created_at, updated_at: d.updated_at }
}

/// `GET /api/v1/directories`.
#[utoipa::path(get, path = "/api/v1/directories", operation_id = "list_directories", tag = "directories",
    responses((status = 200, description = "every directory, by name, with its size", body = Vec<sipprov_api::DirectorySummary>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(State(directories): State<Arc<Directories>>) -> Json<Vec<DirectorySummary>> {
    Json(directories.list().iter().map(|d| summary(d)).collect())
}

/// `GET /api/v1/directories/{name}`.
#[utoipa::path(get, path = "/api/v1/directories/{name}", operation_id = "show_directory", tag = "directories",
    params(("name" = String, Path, description = "the directory's name")),
    responses((status = 200, description = "the directory with its contacts, in order", body = sipprov_api::Directory), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such directory", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn show(
    State(directories): State<Arc<Directories>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Directory>> {
    let d = directories.get(&name).ok_or(DirectoryError::NotFound(name))?;
    Ok(Json(full(&d)))
}

/// `PUT /api/v1/directories/{name}`: creates the directory or replaces its contacts.
#[utoipa::path(put, path = "/api/v1/directories/{name}", operation_id = "put_directory", tag = "directories",
    params(("name" = String, Path, description = "the directory's name: 1 to 64 letters, digits, '.', '_' or '-'")),
    request_body = sipprov_api::PutDirectory,
    responses((status = 200, description = "the directory as stored", body = sipprov_api::DirectorySummary), (status = 400, description = "a bad name or contact; `field` names it (`contacts[3].office`); nothing was written", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "the server holds the most directories it may", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn put(
    State(directories): State<Arc<Directories>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    super::body::Body(body): super::body::Body<PutDirectory>,
) -> ApiResult<Json<DirectorySummary>> {
    let contacts = body
        .contacts
        .into_iter()
        .map(|c| Contact { name: c.name, office: c.office, mobile: c.mobile, other: c.other })
        .collect();
    let stored = directories.put(&actor, &name, contacts, "api").await?;
    Ok(Json(summary(&stored)))
}

/// `POST /api/v1/directories/{name}/import`: the contacts from a CSV file (header row
/// `name,office,mobile,other`, any order, at least `name` and one number column), replacing any
/// the directory had; all or nothing.
#[utoipa::path(post, path = "/api/v1/directories/{name}/import", operation_id = "import_directory", tag = "directories",
    params(("name" = String, Path, description = "the directory's name: 1 to 64 letters, digits, '.', '_' or '-'")),
    request_body(content = String, content_type = "text/csv", description = "a header row naming the columns (name, office, mobile, other), then one contact per row"),
    responses((status = 200, description = "the directory as stored", body = sipprov_api::DirectorySummary), (status = 400, description = "the file is refused; the detail names the line and column, `field` the column; nothing was written", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "the server holds the most directories it may", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn import(
    State(directories): State<Arc<Directories>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<DirectorySummary>> {
    let contacts = csv::parse(&body).map_err(|e| {
        let problem = ApiError::new(StatusCode::BAD_REQUEST, format!("{e}; nothing was imported"));
        match &e.column {
            Some(column) => problem.at(column),
            None => problem,
        }
    })?;
    let stored = directories.put(&actor, &name, contacts, "csv").await?;
    tracing::info!(directory = %name, contacts = stored.contacts.len(), "directory imported");
    Ok(Json(summary(&stored)))
}

/// `DELETE /api/v1/directories/{name}`: refused while a setting names it.
#[utoipa::path(delete, path = "/api/v1/directories/{name}", operation_id = "remove_directory", tag = "directories",
    params(("name" = String, Path, description = "the directory's name")),
    responses((status = 204, description = "removed"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such directory", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "a directory.name setting names it; the detail says where", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn remove(
    State(directories): State<Arc<Directories>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    directories.remove(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
