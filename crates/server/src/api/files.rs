//! `/api/v1/firmware` and `/api/v1/resources`: stored files, through the file service
//! ([`crate::filestore::FileStore`]). Adding and removing are admin actions, listing is a read
//! (the roles sit with the API's authentication).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET, POST | /api/v1/firmware | list firmware images; upload one (raw body, query string says what) |
//! | GET, DELETE | /api/v1/firmware/{name} | show; remove (409 while a device targets its version) |
//! | GET, POST | /api/v1/resources | the same for ringtones, wallpapers and language files (`kind`) |
//! | GET, DELETE | /api/v1/resources/{name} | show; remove |
//! | GET | /api/v1/files/limits | the upload limit, for a client to check a file before sending it |
//!
//! An upload's body is streamed to disk, never held in memory; the admin listener's request
//! body limits do not apply to it, `[files] max_upload_bytes` does (413 naming it).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, MethodRouter};
use axum::{Extension, Json};
use sipprov_api::{FileLimits, StoredFile, UploadQuery};
use std::sync::Arc;

use super::query::Query;
use super::{ApiError, ApiServices};
use crate::access::Actor;
use crate::filestore::{FileError, FileStore, KindScope, UploadRequest};
use crate::resources::ResourceFile;

/// The file routes, part of the admin router's table (behind its authentication).
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<ApiServices>)> {
    vec![
        ("/api/v1/firmware", get(list_firmware).post(upload_firmware)),
        ("/api/v1/firmware/{name}", get(show_firmware).delete(remove_firmware)),
        ("/api/v1/resources", get(list_resources).post(upload_resource)),
        ("/api/v1/resources/{name}", get(show_resource).delete(remove_resource)),
        ("/api/v1/files/limits", get(limits)),
    ]
}

/// A catalog entry as the API shows it (times in ms, as every API time).
pub(crate) fn view(file: &ResourceFile) -> StoredFile {
    StoredFile {
        name: file.name.clone(),
        kind: file.kind.as_str().to_string(),
        sha256: file.sha256.clone(),
        size: file.size,
        vendor: file.vendor.clone(),
        models: file.models.clone(),
        version: file.version.clone(),
        access: file.access.as_str().to_string(),
        added_at: file.added_at.saturating_mul(1000),
        added_by: file.added_by.clone(),
    }
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> ApiError {
        let detail = e.to_string();
        match e {
            FileError::Invalid { field, message } => ApiError::new(StatusCode::BAD_REQUEST, message).at(field),
            FileError::Duplicate(_) => ApiError::new(StatusCode::CONFLICT, detail).at("name"),
            FileError::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, detail),
            FileError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, detail).at("name"),
            FileError::InUse { .. } => ApiError::new(StatusCode::CONFLICT, detail).at("name"),
            FileError::Body(_) => ApiError::new(StatusCode::BAD_REQUEST, detail),
            FileError::Io(_) => {
                tracing::error!(error = %detail, "cannot store an uploaded file");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, detail)
            }
            FileError::Store(e) => ApiError::from(e),
        }
    }
}

type Answer<T> = Result<T, ApiError>;

/// Validates the query, refuses a declared length over the limit before reading, then streams
/// the body into the file service.
async fn upload(
    files: &FileStore,
    actor: &Actor,
    kind: String,
    q: UploadQuery,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Answer<(StatusCode, Json<StoredFile>)> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > files.max_upload_bytes()) {
        return Err(FileError::TooLarge { limit: files.max_upload_bytes() }.into());
    }
    let models = q.models.as_deref().unwrap_or_default().split(',').map(|m| m.trim().to_string());
    let request = UploadRequest {
        name: q.name,
        kind,
        vendor: q.vendor,
        models: models.filter(|m| !m.is_empty()).collect(),
        version: q.version,
        access: q.access,
    };
    let mut stream = body.into_data_stream();
    match files.add(actor, request, &mut stream).await {
        Ok(stored) => Ok((StatusCode::CREATED, Json(view(&stored)))),
        Err(e) => {
            if refused_before_reading(&e) {
                drain(&mut stream, files.max_upload_bytes()).await;
            }
            Err(e.into())
        }
    }
}

/// Whether the file service refused the upload on its query alone, before reading the body.
fn refused_before_reading(e: &FileError) -> bool {
    matches!(e, FileError::Invalid { .. } | FileError::Duplicate(_) | FileError::InUse { .. } | FileError::Store(_))
}

/// Reads and drops what is left of a refused upload's body, at most `limit` bytes and for at
/// most [`DRAIN_FOR`], so the refusal reaches the client. A server that answers and closes while
/// the client is still sending leaves unread bytes in its socket; the kernel then resets the
/// connection (RFC 9112 section 9.6 warns of exactly this), and the client may see the reset
/// instead of the answer. Only authenticated admins get here, and the upload limit bounds it.
async fn drain<S>(stream: &mut S, limit: u64)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, axum::Error>> + Unpin,
{
    use futures_util::StreamExt;
    let mut left = limit;
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            left = left.saturating_sub(chunk.len() as u64);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_FOR, read).await;
}

/// How long a refused upload's body is read before the connection is closed anyway.
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

fn not_found(name: &str) -> ApiError {
    FileError::NotFound(name.to_string()).into()
}

#[utoipa::path(post, path = "/api/v1/firmware", tag = "files", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the image, as is"),
    responses((status = 201, description = "stored; the catalog entry", body = StoredFile),
        (status = 400, description = "a member is wrong (unknown vendor or model, bad name or version); `field` names it", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "the name, or this vendor, model and version, is taken", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 413, description = "larger than `[files] max_upload_bytes`; nothing kept", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn upload_firmware(
    State(files): State<Arc<FileStore>>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Answer<(StatusCode, Json<StoredFile>)> {
    if q.kind.as_deref().is_some_and(|k| k != "firmware") {
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "kind: /firmware takes firmware only; use /resources").at("kind")
        );
    }
    upload(&files, &actor, "firmware".into(), q, &headers, body).await
}

#[utoipa::path(post, path = "/api/v1/resources", tag = "files", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file, as is"),
    responses((status = 201, description = "stored; the catalog entry", body = StoredFile),
        (status = 400, description = "a member is wrong (kind, name, vendor); `field` names it", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "the name is taken", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 413, description = "larger than `[files] max_upload_bytes`; nothing kept", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn upload_resource(
    State(files): State<Arc<FileStore>>,
    Extension(actor): Extension<Actor>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Answer<(StatusCode, Json<StoredFile>)> {
    let kind = match q.kind.as_deref() {
        None | Some("") => {
            let e = ApiError::new(StatusCode::BAD_REQUEST, "kind: one of ringtone, wallpaper, language is needed");
            return Err(e.at("kind"));
        }
        Some("firmware") => {
            let e = ApiError::new(StatusCode::BAD_REQUEST, "kind: firmware is uploaded to /api/v1/firmware");
            return Err(e.at("kind"));
        }
        Some(k) => k.to_string(),
    };
    upload(&files, &actor, kind, q, &headers, body).await
}

#[utoipa::path(get, path = "/api/v1/firmware", tag = "files",
    responses((status = 200, description = "every firmware image, by name", body = Vec<StoredFile>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn list_firmware(State(files): State<Arc<FileStore>>) -> Json<Vec<StoredFile>> {
    Json(files.list(KindScope::Firmware).iter().map(|f| view(f)).collect())
}

#[utoipa::path(get, path = "/api/v1/resources", tag = "files",
    responses((status = 200, description = "every ringtone, wallpaper and language file, by name", body = Vec<StoredFile>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn list_resources(State(files): State<Arc<FileStore>>) -> Json<Vec<StoredFile>> {
    Json(files.list(KindScope::Resources).iter().map(|f| view(f)).collect())
}

#[utoipa::path(get, path = "/api/v1/firmware/{name}", tag = "files", params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, description = "the catalog entry", body = StoredFile), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no firmware of that name", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn show_firmware(State(files): State<Arc<FileStore>>, Path(name): Path<String>) -> Answer<Json<StoredFile>> {
    files.get(KindScope::Firmware, &name).map(|f| Json(view(&f))).ok_or_else(|| not_found(&name))
}

#[utoipa::path(get, path = "/api/v1/resources/{name}", tag = "files", params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, description = "the catalog entry", body = StoredFile), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no resource file of that name", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn show_resource(State(files): State<Arc<FileStore>>, Path(name): Path<String>) -> Answer<Json<StoredFile>> {
    files.get(KindScope::Resources, &name).map(|f| Json(view(&f))).ok_or_else(|| not_found(&name))
}

#[utoipa::path(delete, path = "/api/v1/firmware/{name}", tag = "files", params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, description = "removed; the entry as it was", body = StoredFile), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no firmware of that name", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "in use: the detail names the devices (or groups, rollouts) that still need it", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn remove_firmware(
    State(files): State<Arc<FileStore>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Answer<Json<StoredFile>> {
    let removed = files.remove(&actor, KindScope::Firmware, &name).await?;
    Ok(Json(view(&removed)))
}

#[utoipa::path(delete, path = "/api/v1/resources/{name}", tag = "files", params(("name" = String, Path, description = "the file's name")),
    responses((status = 200, description = "removed; the entry as it was", body = StoredFile), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no resource file of that name", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 409, description = "in use: the detail names what still needs it", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn remove_resource(
    State(files): State<Arc<FileStore>>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Answer<Json<StoredFile>> {
    let removed = files.remove(&actor, KindScope::Resources, &name).await?;
    Ok(Json(view(&removed)))
}

#[utoipa::path(get, path = "/api/v1/files/limits", tag = "files",
    responses((status = 200, description = "what an upload may be", body = FileLimits), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
async fn limits(State(files): State<Arc<FileStore>>) -> Json<FileLimits> {
    Json(FileLimits { max_upload_bytes: files.max_upload_bytes() })
}
