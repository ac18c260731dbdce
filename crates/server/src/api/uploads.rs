//! `GET /api/v1/devices/{mac}/uploads` and `…/uploads/{name}`: the files a device uploaded
//! (Polycom `<mac>-phone.cfg` and logs, Yealink `<mac>-local.cfg`), latest per name.
//!
//! An upload may hold what the user changed on the phone, passwords included: like every admin
//! API route, these need the bearer token, and the content is sent as
//! `application/octet-stream` with `X-Content-Type-Options: nosniff`, never interpreted.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sipprov_api::Upload;

use super::{no_device, parse_mac, ApiError, ApiResult};
use sipprov_store::Store;

use crate::inventory::Inventory;

/// The device's uploads, by name.
#[utoipa::path(get, path = "/api/v1/devices/{mac}/uploads", operation_id = "list_uploads", tag = "devices", params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    responses((status = 200, description = "the latest upload of each name", body = Vec<sipprov_api::Upload>), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    State(store): State<Store>,
    State(inventory): State<Arc<Inventory>>,
    Path(mac): Path<String>,
) -> ApiResult<Json<Vec<Upload>>> {
    let mac = parse_mac(&mac)?;
    inventory.device(mac).ok_or_else(|| no_device(mac))?;
    let uploads = store.uploads(mac).await?;
    Ok(Json(
        uploads
            .into_iter()
            .map(|u| Upload { name: u.name, received_at: u.received_at, size: u.size, sha256: u.sha256 })
            .collect(),
    ))
}

/// One upload's bytes, exactly as the phone sent them.
#[utoipa::path(get, path = "/api/v1/devices/{mac}/uploads/{name}", operation_id = "show_upload", tag = "devices",
    params(("mac" = String, Path, description = "the device's MAC, any common spelling"), ("name" = String, Path, description = "the uploaded file's name")),
    responses((status = 200, description = "the file as uploaded", body = String, content_type = "application/octet-stream"), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 404, description = "no such device or upload", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn show(
    State(store): State<Store>,
    State(inventory): State<Arc<Inventory>>,
    Path((mac, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mac = parse_mac(&mac)?;
    inventory.device(mac).ok_or_else(|| no_device(mac))?;
    let name = name.to_ascii_lowercase();
    let Some(content) = store.upload_content(mac, &name).await? else {
        let names: Vec<_> = store.uploads(mac).await?.into_iter().map(|u| u.name).collect();
        let known = if names.is_empty() { "it has uploaded nothing".to_string() } else { names.join(", ") };
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, format!("device {mac} has no upload {name:?}; {known}")).at("name")
        );
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], content)
        .into_response())
}
