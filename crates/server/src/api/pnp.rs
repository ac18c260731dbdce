//! `/api/v1/pnp/discoveries`: the devices PnP discovered, waiting in `pnp.discovered_group`,
//! approved into a group or rejected (see [`crate::discoveries`]).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sipprov_api::{ApproveDiscovery, Device, Discovery};

use super::body::Body;
use super::{device_view, parse_mac, ApiError, ApiResult, DeviceViews};
use crate::access::Actor;
use crate::discoveries::{Discoveries, DiscoveryError};

impl From<DiscoveryError> for ApiError {
    /// Not waiting: 404 naming the `mac`; a bad target group: 400 naming `group`.
    fn from(e: DiscoveryError) -> ApiError {
        match e {
            DiscoveryError::NotWaiting(..) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()).at("mac"),
            DiscoveryError::BadGroup(why) => ApiError::new(StatusCode::BAD_REQUEST, why).at("group"),
            DiscoveryError::Invalid(why) => ApiError::new(StatusCode::BAD_REQUEST, why).at("group"),
            DiscoveryError::Store(e) => ApiError::from(e),
        }
    }
}

/// `GET /api/v1/pnp/discoveries`: the devices waiting, by MAC.
#[utoipa::path(get, path = "/api/v1/pnp/discoveries", operation_id = "list_discoveries", tag = "pnp",
    responses((status = 200, description = "the devices waiting in the discovered group", body = Vec<sipprov_api::Discovery>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(State(discoveries): State<Arc<Discoveries>>) -> ApiResult<Json<Vec<Discovery>>> {
    Ok(Json(discoveries.list().await?))
}

/// `POST /api/v1/pnp/discoveries/{mac}/approve` with `{"group": NAME}`: moves the device into
/// an existing group; answers the device as it now is.
#[utoipa::path(post, path = "/api/v1/pnp/discoveries/{mac}/approve", operation_id = "approve_discovery", tag = "pnp",
    params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    request_body = sipprov_api::ApproveDiscovery,
    responses((status = 200, description = "the device, now in its group", body = sipprov_api::Device), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such device waiting", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 422, description = "refused by validation: `field` (and `line`, `column` for a template) name what is wrong", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn approve(
    State(discoveries): State<Arc<Discoveries>>,
    State(views): State<DeviceViews>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
    Body(body): Body<ApproveDiscovery>,
) -> ApiResult<Json<Device>> {
    let mac = parse_mac(&mac)?;
    let moved = discoveries.approve(&actor, mac, &body.group).await?;
    Ok(Json(device_view(&views, &moved)))
}

/// `DELETE /api/v1/pnp/discoveries/{mac}`: removes the waiting device.
#[utoipa::path(delete, path = "/api/v1/pnp/discoveries/{mac}", operation_id = "reject_discovery", tag = "pnp",
    params(("mac" = String, Path, description = "the device's MAC, any common spelling")),
    responses((status = 204, description = "removed"), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 403, description = "the token's role falls short; the problem names both roles", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such device waiting", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn reject(
    State(discoveries): State<Arc<Discoveries>>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
) -> ApiResult<StatusCode> {
    let mac = parse_mac(&mac)?;
    discoveries.reject(&actor, mac).await?;
    Ok(StatusCode::NO_CONTENT)
}
