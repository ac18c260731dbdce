//! `/api/v1/cluster`: the nodes sharing this node's database ([`crate::cluster`]). A read, so
//! any token may list it (the viewer role): it names nodes and addresses, no device or secret.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Json;
use sipprov_api::ClusterStatus;
use sipprov_store::Store;

use super::{ApiError, ApiServices};

/// The cluster routes, part of the admin router's table (behind its authentication).
pub(super) fn routes() -> Vec<(&'static str, MethodRouter<ApiServices>)> {
    vec![("/api/v1/cluster", get(status))]
}

/// Every node that wrote a heartbeat: name, identity, version, start, last heartbeat, alive or
/// stale.
#[utoipa::path(get, path = "/api/v1/cluster", operation_id = "cluster_status", tag = "server",
    responses((status = 200, description = "the nodes sharing this database, alive or stale", body = ClusterStatus),
        (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"),
        (status = 503, description = "the database is unreachable", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn status(State(store): State<Store>) -> Result<Json<ClusterStatus>, Response> {
    crate::cluster::heartbeat::status(&store).await.map(Json).map_err(|e| ApiError::from(e).into_response())
}
