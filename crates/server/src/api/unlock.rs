//! `POST /api/v1/devices/{mac}/unlock`: re-opens a device's first-fetch window
//! ([`crate::unlock`], which the console shares).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sipprov_api::Unlocked;

use super::{no_device, parse_mac, ApiError, ApiResult};
use sipprov_store::Store;

use crate::access::Actor;
use crate::auth::Security;
use crate::fetchlog::FetchLog;
use crate::inventory::Inventory;
use crate::unlock::{self, UnlockError};

/// Opens the window and answers when it closes ([`Unlocked`]).
#[utoipa::path(post, path = "/api/v1/devices/{mac}/unlock", tag = "devices", params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    responses((status = 200, description = "the window and when it closes", body = sipprov_api::Unlocked), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such device", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn unlock_device(
    State(store): State<Store>,
    State(inventory): State<Arc<Inventory>>,
    State(security): State<Arc<Security>>,
    State(events): State<FetchLog>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
) -> ApiResult<Json<Unlocked>> {
    let mac = parse_mac(&mac)?;
    let device = inventory.device(mac).ok_or_else(|| no_device(mac))?;
    match unlock::unlock(&store, &security, &events, &actor, &device).await {
        Ok(unlocked) => Ok(Json(unlocked)),
        Err(e @ UnlockError::WindowOff) => Err(ApiError::new(StatusCode::CONFLICT, e.to_string())),
        Err(UnlockError::Store(e)) => Err(e.into()),
    }
}
