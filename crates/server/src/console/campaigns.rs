//! Campaigns (`/console/campaigns`): the list; a new campaign chosen by group, every device or
//! a list of MACs (optionally only devices whose files changed), shown first as a preview of
//! how many devices it reaches, then started; a campaign's page with its counts per outcome,
//! followed live over server-sent events (`console.js`; without JavaScript a refresh link does
//! the same), cancel and retry of failed devices. All need the operator role but viewing.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::{CreateCampaign, Role};

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::campaign::{CampaignReport, ControlError, LaunchError, LaunchPlan, Selection};

/// How often the live view is updated.
pub(super) const LIVE_EVERY: Duration = Duration::from_secs(1);
/// How long one live stream runs at most; the browser reconnects if the page is still open.
pub(super) const LIVE_FOR: Duration = Duration::from_secs(3600);
/// Live streams open at once at most: each holds a connection of the admin listener's budget
/// (`limits.api_connections`), which the CLI and the API need too. Past it a page gets 503 and
/// keeps its Refresh link.
const MAX_LIVE: usize = 16;

/// Live streams open now.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// One open live stream, counted in [`LIVE`] while it lives (campaign and rollout pages share
/// the cap).
pub(super) struct LiveSlot;

impl LiveSlot {
    pub(super) fn take() -> Option<LiveSlot> {
        LIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_LIVE).then_some(n + 1))
            .ok()
            .map(|_| LiveSlot)
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/campaigns", get(list).post(create))
        .route("/console/campaigns/preview", post(preview))
        .route("/console/campaigns/{id}", get(show))
        .route("/console/campaigns/{id}/events", get(live))
        .route("/console/campaigns/{id}/cancel", post(cancel))
        .route("/console/campaigns/{id}/retry", post(retry))
}

/// `GET /console/campaigns`.
async fn list(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    let now = sipprov_store::now_ms();
    let mut rows = Vec::new();
    let mut campaigns = c.store.list_campaigns().await?;
    campaigns.sort_by_key(|k| std::cmp::Reverse(k.id));
    for k in campaigns.into_iter().take(100) {
        rows.push(CampaignReport::load(&c.store, k, now).await?);
    }
    let groups: Vec<String> = c.store.list_groups().await?.into_iter().map(|g| g.name).collect();
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "campaigns", "campaigns": rows, "groups": groups,
        "default_rate": CreateCampaign::DEFAULT_RATE});
    render("campaigns.html", ctx)
}

/// The new-campaign form (also carried, hidden, by the preview page).
#[derive(Deserialize, serde::Serialize, Default, Clone)]
pub(super) struct NewForm {
    /// `all`, `group` or `macs`.
    #[serde(default)]
    target: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    macs: String,
    /// A checkbox: present (`on`) or absent.
    #[serde(default)]
    changed: Option<String>,
    #[serde(default)]
    reboot: Option<String>,
    #[serde(default)]
    rate: String,
}

impl NewForm {
    fn selection(&self) -> Selection {
        let macs: Vec<String> = match self.target.as_str() {
            "macs" => self
                .macs
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        };
        Selection {
            macs,
            group: (self.target == "group").then(|| self.group.clone()),
            all: self.target == "all",
            changed: self.changed.is_some(),
        }
    }

    fn rate(&self) -> Result<u32, ConsoleError> {
        if self.rate.trim().is_empty() {
            return Ok(CreateCampaign::DEFAULT_RATE);
        }
        match self.rate.trim().parse::<u32>() {
            Ok(r) if (1..=100_000).contains(&r) => Ok(r),
            _ => {
                Err(ConsoleError::new(StatusCode::BAD_REQUEST, "rate must be between 1 and 100000 NOTIFYs per second"))
            }
        }
    }
}

/// `POST /console/campaigns/preview`: how many devices the selection reaches; nothing is sent.
async fn preview(axum::extract::State(c): Ctx, viewer: Viewer, Form(form): Form<NewForm>) -> Page {
    viewer.require(Role::Operator)?;
    let rate = form.rate()?;
    let (macs, selector) = c
        .campaigns
        .select_devices(&form.selection())
        .await
        .map_err(|e| ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "campaigns", "count": macs.len(), "selector": selector,
        "sample": macs.iter().take(20).map(|m| m.to_string()).collect::<Vec<_>>(),
        "f": form, "rate": rate, "reboot": form.reboot.is_some()});
    render("preview.html", ctx)
}

/// `POST /console/campaigns`: creates the campaign the preview showed and opens its page.
async fn create(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Form(form): Form<NewForm>,
) -> Result<Response, ConsoleError> {
    viewer.require(Role::Operator)?;
    let rate = form.rate()?;
    let plan = LaunchPlan {
        start_at: sipprov_store::now_ms(),
        reboot: form.reboot.is_some(),
        rate,
        max_in_flight: CreateCampaign::DEFAULT_MAX_IN_FLIGHT,
        confirm_window_secs: CreateCampaign::DEFAULT_CONFIRM_WINDOW_SECONDS,
    };
    let (campaign, _) = c.campaigns.launch(&viewer.actor(), &form.selection(), plan).await.map_err(|e| match e {
        LaunchError::Selection(e) => ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string()),
        LaunchError::Store(e) => e.into(),
    })?;
    Ok(Redirect::to(&format!("/console/campaigns/{}", campaign.id)).into_response())
}

async fn report(c: &ConsoleServices, id: i64) -> Result<CampaignReport, ConsoleError> {
    let campaign =
        c.store.get_campaign(id).await?.ok_or_else(|| ConsoleError::not_found(format!("campaign {id} not found")))?;
    Ok(CampaignReport::load(&c.store, campaign, sipprov_store::now_ms()).await?)
}

/// `GET /console/campaigns/{id}`.
async fn show(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    campaign_page(&c, &viewer, id, None).await
}

async fn campaign_page(c: &ConsoleServices, viewer: &Viewer, id: i64, notice: Option<String>) -> Page {
    let r = report(c, id).await?;
    let done =
        r.counts.iter().filter(|(o, _)| !matches!(o.as_str(), "pending" | "sending")).map(|(_, n)| n).sum::<i64>();
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "campaigns", "c": r, "done": done,
        "finished": r.campaign.state.is_finished(), "notice": notice});
    render("campaign.html", ctx)
}

/// `GET /console/campaigns/{id}/events`: the campaign's counts every second, as server-sent
/// events (`progress`), until it is finished (a last `progress`, then `end`).
async fn live(axum::extract::State(c): Ctx, _viewer: Viewer, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    report(&c, id).await?;
    let Some(slot) = LiveSlot::take() else {
        return Err(ConsoleError::new(StatusCode::SERVICE_UNAVAILABLE, "too many live views are open; use Refresh"));
    };
    let started = tokio::time::Instant::now();
    // The slot goes with the stream and is given back when the stream is dropped (ended, or the
    // browser went away).
    let stream = futures_util::stream::unfold((c, false, slot), move |(c, ended, slot)| async move {
        if ended || started.elapsed() > LIVE_FOR {
            return None;
        }
        let event = match report(&c, id).await {
            Ok(r) => {
                let finished = r.campaign.state.is_finished();
                let data = serde_json::json!({
                    "state": r.campaign.state, "devices": r.devices, "counts": r.counts, "finished": finished,
                });
                if !finished {
                    tokio::time::sleep(LIVE_EVERY).await;
                }
                return Some((
                    Ok::<Event, Infallible>(Event::default().event("progress").data(data.to_string())),
                    (c, finished, slot),
                ));
            }
            Err(_) => Event::default().event("end").data("{}"),
        };
        Some((Ok(event), (c, true, slot)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// `POST /console/campaigns/{id}/cancel`.
async fn cancel(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    viewer.require(Role::Operator)?;
    let notice = match c.campaigns.cancel_by(&viewer.actor(), id).await {
        Ok(()) => format!("Campaign {id} cancelled."),
        Err(e) => refused_notice(e)?,
    };
    campaign_page(&c, &viewer, id, Some(notice)).await
}

/// `POST /console/campaigns/{id}/retry`: failed and unconfirmed devices are sent again.
async fn retry(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    viewer.require(Role::Operator)?;
    let notice = match c.campaigns.retry_by(&viewer.actor(), id).await {
        Ok(n) => format!("Retrying {n} devices."),
        Err(e) => refused_notice(e)?,
    };
    campaign_page(&c, &viewer, id, Some(notice)).await
}

/// What the campaign page says when a cancel or retry is refused; an unknown campaign or a
/// store failure is an error page instead.
fn refused_notice(e: ControlError) -> Result<String, ConsoleError> {
    match e {
        ControlError::NotFound(_) => Err(ConsoleError::not_found(e.to_string())),
        ControlError::Store(e) => Err(e.into()),
        _ => Ok(format!("{}.", capitalized(&e.to_string()))),
    }
}

pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_streams_are_capped_and_give_their_slot_back() {
        let slots: Vec<LiveSlot> = std::iter::from_fn(LiveSlot::take).take(MAX_LIVE + 1).collect();
        assert_eq!(slots.len(), MAX_LIVE);
        assert!(LiveSlot::take().is_none());
        drop(slots);
        assert!(LiveSlot::take().is_some());
    }
}
