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
use sipprov_store::StoreError;

use super::{parse_mac, ApiError, ApiResult};
use crate::state::AppState;

/// The device's uploads: `[{name, received_at, size, sha256}]`, by name.
pub async fn list(State(state): State<Arc<AppState>>, Path(mac): Path<String>) -> ApiResult<Json<serde_json::Value>> {
    let mac = parse_mac(&mac)?;
    state.inventory.device(mac).ok_or_else(|| StoreError::DeviceNotFound(mac.to_string()))?;
    Ok(Json(serde_json::json!(state.store.uploads(mac).await?)))
}

/// One upload's bytes, exactly as the phone sent them.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path((mac, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let mac = parse_mac(&mac)?;
    state.inventory.device(mac).ok_or_else(|| StoreError::DeviceNotFound(mac.to_string()))?;
    let name = name.to_ascii_lowercase();
    let Some(content) = state.store.upload_content(mac, &name).await? else {
        let names: Vec<_> = state.store.uploads(mac).await?.into_iter().map(|u| u.name).collect();
        let known = if names.is_empty() { "it has uploaded nothing".to_string() } else { names.join(", ") };
        return Err(ApiError(StatusCode::NOT_FOUND, format!("device {mac} has no upload {name:?}; {known}")));
    };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")], content)
        .into_response())
}
