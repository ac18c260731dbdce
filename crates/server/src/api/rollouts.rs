//! Firmware rollout endpoints: start, list, show, resume, abort, roll back.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sipprov_api::{CreateRollout, Rollout};
use sipprov_store::Store;

use super::{ApiError, ApiResult};
use crate::access::Actor;
use crate::rollout::{report, RolloutEngine, RolloutError, RolloutPlan};

/// A refusal of the request member `field`.
fn bad(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg).at(field)
}

async fn show_one(store: &Store, id: i64, with_devices: bool) -> ApiResult<Rollout> {
    let record = store
        .get_rollout(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("rollout {id} not found")).at("id"))?;
    Ok(report(store, record, with_devices).await?)
}

/// A rollout action refused: 400 naming the member, 404, or 409 for a state that forbids it.
pub(crate) fn refused(e: RolloutError) -> ApiError {
    match e {
        RolloutError::Invalid { field, message } => bad(field, message),
        RolloutError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()).at("id"),
        RolloutError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        RolloutError::Store(e) => e.into(),
    }
}

/// `POST /api/v1/rollouts`.
#[utoipa::path(post, path = "/api/v1/rollouts", operation_id = "create_rollout", tag = "rollouts", request_body = CreateRollout,
    responses((status = 201, description = "the rollout created, with its devices and waves", body = Rollout), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "the group already has an unfinished rollout", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    State(store): State<Store>,
    State(engine): State<Arc<RolloutEngine>>,
    Extension(actor): Extension<Actor>,
    super::body::Body(body): super::body::Body<CreateRollout>,
) -> ApiResult<(StatusCode, Json<Rollout>)> {
    let plan = RolloutPlan::from_request(body).map_err(|(field, msg)| bad(field, msg))?;
    let record = engine.launch(&actor, &plan).await.map_err(refused)?;
    Ok((StatusCode::CREATED, Json(show_one(&store, record.id, true).await?)))
}

/// `GET /api/v1/rollouts`: every rollout, newest first, with counts (no devices).
#[utoipa::path(get, path = "/api/v1/rollouts", operation_id = "list_rollouts", tag = "rollouts",
    responses((status = 200, description = "every rollout, newest first", body = Vec<Rollout>), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(State(store): State<Store>) -> ApiResult<Json<Vec<Rollout>>> {
    let mut out = Vec::new();
    for record in store.list_rollouts().await? {
        out.push(report(&store, record, false).await?);
    }
    Ok(Json(out))
}

/// `GET /api/v1/rollouts/{id}`.
#[utoipa::path(get, path = "/api/v1/rollouts/{id}", operation_id = "show_rollout", tag = "rollouts", params(("id" = i64, Path, description = "the rollout's number")),
    responses((status = 200, description = "the rollout with its devices", body = Rollout), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such rollout", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn show(State(store): State<Store>, Path(id): Path<i64>) -> ApiResult<Json<Rollout>> {
    Ok(Json(show_one(&store, id, true).await?))
}

/// `POST /api/v1/rollouts/{id}/resume`: a halted rollout starts its next wave.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/resume", operation_id = "resume_rollout", tag = "rollouts", params(("id" = i64, Path, description = "the rollout's number")),
    responses((status = 200, description = "the rollout, running again", body = Rollout), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such rollout", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "the rollout is not halted", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn resume(
    State(store): State<Store>,
    State(engine): State<Arc<RolloutEngine>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Rollout>> {
    engine.resume_by(&actor, id).await.map_err(refused)?;
    Ok(Json(show_one(&store, id, true).await?))
}

/// `POST /api/v1/rollouts/{id}/abort`: undecided devices are cancelled and unpinned.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/abort", operation_id = "abort_rollout", tag = "rollouts", params(("id" = i64, Path, description = "the rollout's number")),
    responses((status = 200, description = "the rollout, aborted", body = Rollout), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such rollout", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "the rollout is neither running nor halted", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn abort(
    State(store): State<Store>,
    State(engine): State<Arc<RolloutEngine>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Rollout>> {
    engine.abort_by(&actor, id).await.map_err(refused)?;
    Ok(Json(show_one(&store, id, true).await?))
}

/// `POST /api/v1/rollouts/{id}/rollback`: the devices moved are pinned to the previous version
/// and notified, then unpinned.
#[utoipa::path(post, path = "/api/v1/rollouts/{id}/rollback", operation_id = "rollback_rollout", tag = "rollouts", params(("id" = i64, Path, description = "the rollout's number")),
    responses((status = 200, description = "the rollout, rolling back", body = Rollout), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such rollout", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "the rollout is done or already rolled back", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn rollback(
    State(store): State<Store>,
    State(engine): State<Arc<RolloutEngine>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Rollout>> {
    engine.rollback_by(&actor, id).await.map_err(refused)?;
    Ok(Json(show_one(&store, id, true).await?))
}
