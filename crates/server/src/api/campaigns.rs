//! Campaign endpoints: create (select + pace + schedule), list, show, cancel, retry.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use sipprov_store::NewCampaign;

use super::{ApiError, ApiResult};
use crate::campaign::{CampaignReport, Selection};
use crate::state::AppState;

/// Defaults that protect the HTTP server: 20 NOTIFYs per second, 50 awaiting an answer.
const DEFAULT_RATE: u32 = 20;
const DEFAULT_IN_FLIGHT: u32 = 50;
const DEFAULT_CONFIRM_WINDOW_S: u64 = 300;

/// The body of `POST /api/v1/campaigns`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    #[serde(flatten)]
    pub selection: Selection,
    #[serde(default)]
    pub reboot: bool,
    pub rate: Option<u32>,
    pub max_in_flight: Option<u32>,
    /// Start time, milliseconds since the epoch; absent means now.
    pub start_at: Option<i64>,
    pub confirm_window_seconds: Option<u64>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

async fn report(state: &AppState, id: i64) -> ApiResult<CampaignReport> {
    let campaign = state
        .store
        .get_campaign(id)
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("campaign {id} not found")))?;
    Ok(CampaignReport::load(&state.store, campaign, sipprov_store::now_ms()).await?)
}

/// `POST /api/v1/campaigns`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    super::body::Body(body): super::body::Body<CreateCampaign>,
) -> ApiResult<(StatusCode, Json<CampaignReport>)> {
    let rate = body.rate.unwrap_or(DEFAULT_RATE);
    let max_in_flight = body.max_in_flight.unwrap_or(DEFAULT_IN_FLIGHT);
    if !(1..=100_000).contains(&rate) {
        return Err(bad("rate must be between 1 and 100000 NOTIFYs per second"));
    }
    if !(1..=100_000).contains(&max_in_flight) {
        return Err(bad("max_in_flight must be between 1 and 100000"));
    }
    let window = body.confirm_window_seconds.unwrap_or(DEFAULT_CONFIRM_WINDOW_S);
    if !(1..=7 * 86_400).contains(&window) {
        return Err(bad("confirm_window_seconds must be between 1 and 604800"));
    }
    let (macs, selector) = state.select_devices(&body.selection).await.map_err(|e| bad(e.to_string()))?;
    let new = NewCampaign {
        start_at: body.start_at.unwrap_or_else(sipprov_store::now_ms),
        reboot: body.reboot,
        rate,
        max_in_flight,
        confirm_window_ms: i64::try_from(window * 1000).unwrap_or(i64::MAX),
        selector,
    };
    let campaign = state.store.create_campaign(&new, &macs).await?;
    tracing::info!(campaign = campaign.id, devices = macs.len(), selector = %campaign.selector, "campaign created");
    state.campaigns.wake();
    Ok((StatusCode::CREATED, Json(report(&state, campaign.id).await?)))
}

/// `GET /api/v1/campaigns`.
pub async fn list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<CampaignReport>>> {
    let mut out = Vec::new();
    for c in state.store.list_campaigns().await? {
        out.push(report(&state, c.id).await?);
    }
    Ok(Json(out))
}

/// `GET /api/v1/campaigns/{id}`.
pub async fn show(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> ApiResult<Json<CampaignReport>> {
    Ok(Json(report(&state, id).await?))
}

/// `POST /api/v1/campaigns/{id}/cancel`: stops sending; outcomes so far are kept.
pub async fn cancel(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> ApiResult<Json<CampaignReport>> {
    let current = report(&state, id).await?;
    if matches!(current.campaign.state.as_str(), "done" | "cancelled") {
        return Err(ApiError(StatusCode::CONFLICT, format!("campaign {id} is already {}", current.campaign.state)));
    }
    state.campaigns.cancel(id);
    state.store.set_campaign_state(id, "cancelled").await?;
    tracing::info!(campaign = id, "campaign cancelled");
    Ok(Json(report(&state, id).await?))
}

/// `POST /api/v1/campaigns/{id}/retry`: failed and unconfirmed devices are sent again.
pub async fn retry(State(state): State<Arc<AppState>>, Path(id): Path<i64>) -> ApiResult<Json<CampaignReport>> {
    let current = report(&state, id).await?;
    if current.campaign.state == "running" {
        return Err(ApiError(StatusCode::CONFLICT, format!("campaign {id} is still running")));
    }
    let n = state.store.retry_campaign(id, sipprov_store::now_ms()).await?;
    if n == 0 {
        return Err(ApiError(StatusCode::CONFLICT, format!("campaign {id} has no failed or unconfirmed device")));
    }
    tracing::info!(campaign = id, devices = n, "campaign retry");
    state.campaigns.wake();
    Ok(Json(report(&state, id).await?))
}
