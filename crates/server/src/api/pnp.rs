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
pub(super) async fn list(State(discoveries): State<Arc<Discoveries>>) -> ApiResult<Json<Vec<Discovery>>> {
    Ok(Json(discoveries.list().await?))
}

/// `POST /api/v1/pnp/discoveries/{mac}/approve` with `{"group": NAME}`: moves the device into
/// an existing group; answers the device as it now is.
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
pub(super) async fn reject(
    State(discoveries): State<Arc<Discoveries>>,
    Extension(actor): Extension<Actor>,
    Path(mac): Path<String>,
) -> ApiResult<StatusCode> {
    let mac = parse_mac(&mac)?;
    discoveries.reject(&actor, mac).await?;
    Ok(StatusCode::NO_CONTENT)
}
