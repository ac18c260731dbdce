//! Campaign endpoints: create (select + pace + schedule), list, show, cancel, retry.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sipprov_api::{Campaign, CreateCampaign};

use super::{ApiError, ApiResult};
use sipprov_store::Store;

use crate::access::Actor;
use crate::campaign::{
    CampaignEngine, CampaignReport, ControlError, LaunchError, LaunchPlan, Selection, SelectionError,
};

/// A refusal of the request member `field`.
fn bad(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg).at(field)
}

async fn report(store: &Store, id: i64) -> ApiResult<Campaign> {
    let campaign = store
        .get_campaign(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("campaign {id} not found")).at("id"))?;
    Ok(view(CampaignReport::load(store, campaign, sipprov_store::now_ms()).await?))
}

/// A campaign report as the API answers it.
fn view(report: CampaignReport) -> Campaign {
    report.into_api()
}

/// `POST /api/v1/campaigns`.
#[utoipa::path(post, path = "/api/v1/campaigns", operation_id = "create_campaign", tag = "campaigns", request_body = CreateCampaign,
    responses((status = 201, description = "the campaign created", body = Campaign), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn create(
    State(store): State<Store>,
    State(engine): State<Arc<CampaignEngine>>,
    Extension(actor): Extension<Actor>,
    super::body::Body(body): super::body::Body<CreateCampaign>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let rate = body.rate.unwrap_or(CreateCampaign::DEFAULT_RATE);
    let max_in_flight = body.max_in_flight.unwrap_or(CreateCampaign::DEFAULT_MAX_IN_FLIGHT);
    if !(1..=100_000).contains(&rate) {
        return Err(bad("rate", "rate must be between 1 and 100000 NOTIFYs per second"));
    }
    if !(1..=100_000).contains(&max_in_flight) {
        return Err(bad("max_in_flight", "max_in_flight must be between 1 and 100000"));
    }
    let window = body.confirm_window_seconds.unwrap_or(CreateCampaign::DEFAULT_CONFIRM_WINDOW_SECONDS);
    if !(1..=7 * 86_400).contains(&window) {
        return Err(bad("confirm_window_seconds", "confirm_window_seconds must be between 1 and 604800"));
    }
    let selection = Selection { macs: body.macs, group: body.group, all: body.all, changed: body.changed };
    let plan = LaunchPlan {
        start_at: body.start_at.unwrap_or_else(sipprov_store::now_ms),
        reboot: body.reboot,
        rate,
        max_in_flight,
        confirm_window_secs: window,
    };
    let (campaign, _) = engine.launch(&actor, &selection, plan).await.map_err(|e| match e {
        LaunchError::Selection(e) => selection_refused(&e),
        LaunchError::Store(e) => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(report(&store, campaign.id).await?)))
}

/// A selection refused, naming the member at fault (`macs`, `group`) when it is one.
fn selection_refused(e: &SelectionError) -> ApiError {
    let error = ApiError::new(StatusCode::BAD_REQUEST, e.to_string());
    match e {
        SelectionError::BadMac(_) | SelectionError::UnknownDevice(_) => error.at("macs"),
        SelectionError::EmptyGroup(_) => error.at("group"),
        _ => error,
    }
}

/// The query of `GET /api/v1/campaigns`: a page of `limit` campaigns (100 by default, at most
/// 1000) whose id is below `before`, oldest first.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /api/v1/campaigns`: the newest page (or the page before `before`), oldest first.
#[utoipa::path(get, path = "/api/v1/campaigns", operation_id = "list_campaigns", tag = "campaigns",
    params(("before" = Option<i64>, Query, description = "only campaigns whose id is below this one"),
        ("limit" = Option<usize>, Query, description = "campaigns in the page (100 by default, at most 1000)")),
    responses((status = 200, description = "the newest matching campaigns, oldest first", body = Vec<Campaign>), (status = 400, description = "a malformed request; `field` names the member at fault", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn list(
    State(store): State<Store>,
    super::query::Query(q): super::query::Query<ListQuery>,
) -> ApiResult<Json<Vec<Campaign>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let before = q.before.unwrap_or(i64::MAX);
    let mut ids: Vec<i64> = store.list_campaigns().await?.into_iter().map(|c| c.id).filter(|id| *id < before).collect();
    ids.sort_unstable();
    let mut out = Vec::new();
    for id in &ids[ids.len().saturating_sub(limit)..] {
        out.push(report(&store, *id).await?);
    }
    Ok(Json(out))
}

/// `GET /api/v1/campaigns/{id}`.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", operation_id = "show_campaign", tag = "campaigns", params(("id" = i64, Path, description = "the campaign's number")),
    responses((status = 200, description = "counts per outcome and failing devices", body = Campaign), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such campaign", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn show(State(store): State<Store>, Path(id): Path<i64>) -> ApiResult<Json<Campaign>> {
    Ok(Json(report(&store, id).await?))
}

/// `POST /api/v1/campaigns/{id}/cancel`: stops sending; outcomes so far are kept.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/cancel", operation_id = "cancel_campaign", tag = "campaigns", params(("id" = i64, Path, description = "the campaign's number")),
    responses((status = 200, description = "the campaign, cancelled", body = Campaign), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such campaign", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the campaign's state", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn cancel(
    State(store): State<Store>,
    State(engine): State<Arc<CampaignEngine>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Campaign>> {
    engine.cancel_by(&actor, id).await.map_err(control_refused)?;
    Ok(Json(report(&store, id).await?))
}

/// `POST /api/v1/campaigns/{id}/retry`: failed and unconfirmed devices are sent again.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/retry", operation_id = "retry_campaign", tag = "campaigns", params(("id" = i64, Path, description = "the campaign's number")),
    responses((status = 200, description = "the campaign, its failed and unconfirmed devices pending again", body = Campaign), (status = 401, description = "missing or wrong bearer token", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 404, description = "no such campaign", body = sipprov_api::Problem, content_type = "application/problem+json"), (status = 409, description = "conflicts with the campaign's state", body = sipprov_api::Problem, content_type = "application/problem+json")))]
pub(super) async fn retry(
    State(store): State<Store>,
    State(engine): State<Arc<CampaignEngine>>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Campaign>> {
    engine.retry_by(&actor, id).await.map_err(control_refused)?;
    Ok(Json(report(&store, id).await?))
}

/// A cancel or retry refused: 404 for an unknown campaign, 409 for one whose state forbids it.
fn control_refused(e: ControlError) -> ApiError {
    match e {
        ControlError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        ControlError::Store(e) => e.into(),
        _ => ApiError::new(StatusCode::CONFLICT, e.to_string()),
    }
}
