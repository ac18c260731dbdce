//! Firmware rollouts (`/console/rollouts`): the list and the start form (group, version,
//! canary, wave share, window, halt threshold); a rollout's page with its counts per device
//! state and its devices, followed live over server-sent events like a campaign's (`console.js`;
//! without JavaScript a refresh link does the same), and resume, abort and roll back. All need
//! the operator role but viewing; each goes through the same [`crate::rollout::RolloutEngine`]
//! entry points as the admin API, audited.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::{CreateRollout, Role, Rollout};

use super::campaigns::{capitalized, LiveSlot, LIVE_EVERY, LIVE_FOR};
use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::rollout::{report, RolloutError, RolloutPlan};

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/rollouts", get(list).post(create))
        .route("/console/rollouts/{id}", get(show))
        .route("/console/rollouts/{id}/events", get(live))
        .route("/console/rollouts/{id}/resume", post(resume))
        .route("/console/rollouts/{id}/abort", post(abort))
        .route("/console/rollouts/{id}/rollback", post(rollback))
}

/// `GET /console/rollouts`: the newest 100 and the start form.
async fn list(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    let mut rows = Vec::new();
    for r in c.store.list_rollouts().await?.into_iter().take(100) {
        rows.push(report(&c.store, r, false).await?);
    }
    let groups: Vec<String> = c.store.list_groups().await?.into_iter().map(|g| g.name).collect();
    let ctx = serde_json::json!({
        "me": me(&viewer), "nav": "rollouts", "rollouts": rows, "groups": groups,
        "d": { "canary": CreateRollout::DEFAULT_CANARY, "wave": CreateRollout::DEFAULT_WAVE_PERCENT,
               "window": CreateRollout::DEFAULT_WINDOW_SECONDS, "halt": CreateRollout::DEFAULT_HALT_PERCENT }});
    render("rollouts.html", ctx)
}

/// The start form.
#[derive(Deserialize)]
struct NewForm {
    group: String,
    version: String,
    #[serde(default)]
    canary: String,
    #[serde(default)]
    wave: String,
    #[serde(default)]
    window: String,
    #[serde(default)]
    halt: String,
}

/// An optional number of the form: empty means the default; anything else must parse.
fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, ConsoleError> {
    let text = text.trim().trim_end_matches('%');
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| ConsoleError::new(StatusCode::BAD_REQUEST, format!("{field} must be a number")))
}

/// `POST /console/rollouts`: starts the rollout and opens its page.
async fn create(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Form(form): Form<NewForm>,
) -> Result<Response, ConsoleError> {
    viewer.require(Role::Operator)?;
    let body = CreateRollout {
        group: form.group,
        version: form.version.trim().to_string(),
        canary: number("canary", &form.canary)?,
        wave_percent: number("wave", &form.wave)?,
        window_seconds: number("window", &form.window)?,
        halt_percent: number("halt", &form.halt)?,
    };
    let plan = RolloutPlan::from_request(body).map_err(|(_, msg)| ConsoleError::new(StatusCode::BAD_REQUEST, msg))?;
    let record = c.rollouts.launch(&viewer.actor(), &plan).await.map_err(refused)?;
    Ok(Redirect::to(&format!("/console/rollouts/{}", record.id)).into_response())
}

/// A refusal as the console shows it: 400 or 409 with the reason, 404, or the store's error.
fn refused(e: RolloutError) -> ConsoleError {
    match e {
        RolloutError::Invalid { message, .. } => ConsoleError::new(StatusCode::BAD_REQUEST, message),
        RolloutError::NotFound(_) => ConsoleError::not_found(e.to_string()),
        RolloutError::Conflict(why) => ConsoleError::new(StatusCode::CONFLICT, why),
        RolloutError::Store(e) => e.into(),
    }
}

async fn load(c: &ConsoleServices, id: i64, with_devices: bool) -> Result<Rollout, ConsoleError> {
    let record =
        c.store.get_rollout(id).await?.ok_or_else(|| ConsoleError::not_found(format!("rollout {id} not found")))?;
    Ok(report(&c.store, record, with_devices).await?)
}

/// `GET /console/rollouts/{id}`.
async fn show(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    page(&c, &viewer, id, None).await
}

async fn page(c: &ConsoleServices, viewer: &Viewer, id: i64, notice: Option<String>) -> Page {
    let r = load(c, id, true).await?;
    let live = !r.is_finished() && r.state != sipprov_api::RolloutState::Halted;
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "rollouts", "r": r, "total": r.total(), "done": r.decided(), "live": live,
        "notice": notice});
    render("rollout.html", ctx)
}

/// `GET /console/rollouts/{id}/events`: the counts every second as server-sent events
/// (`progress`), until the rollout is finished or halted (a last `progress`, then `end`).
async fn live(axum::extract::State(c): Ctx, _viewer: Viewer, Path(id): Path<i64>) -> Result<Response, ConsoleError> {
    load(&c, id, false).await?;
    let Some(slot) = LiveSlot::take() else {
        return Err(ConsoleError::new(StatusCode::SERVICE_UNAVAILABLE, "too many live views are open; use Refresh"));
    };
    let started = tokio::time::Instant::now();
    let stream = futures_util::stream::unfold((c, false, slot), move |(c, ended, slot)| async move {
        if ended || started.elapsed() > LIVE_FOR {
            return None;
        }
        let Ok(r) = load(&c, id, false).await else {
            return Some((Ok::<Event, Infallible>(Event::default().event("end").data("{}")), (c, true, slot)));
        };
        let finished = r.is_finished() || r.state == sipprov_api::RolloutState::Halted;
        let data = serde_json::json!({
            "state": r.state, "devices": r.total(), "done": r.decided(), "counts": r.counts, "finished": finished,
        });
        if !finished {
            tokio::time::sleep(LIVE_EVERY).await;
        }
        Some((Ok(Event::default().event("progress").data(data.to_string())), (c, finished, slot)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// `POST /console/rollouts/{id}/resume`.
async fn resume(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    viewer.require(Role::Operator)?;
    let notice = notice(c.rollouts.resume_by(&viewer.actor(), id).await.map(|()| format!("Rollout {id} resumed.")))?;
    page(&c, &viewer, id, Some(notice)).await
}

/// `POST /console/rollouts/{id}/abort`.
async fn abort(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    viewer.require(Role::Operator)?;
    let notice = notice(c.rollouts.abort_by(&viewer.actor(), id).await.map(|()| format!("Rollout {id} aborted.")))?;
    page(&c, &viewer, id, Some(notice)).await
}

/// `POST /console/rollouts/{id}/rollback`.
async fn rollback(axum::extract::State(c): Ctx, viewer: Viewer, Path(id): Path<i64>) -> Page {
    viewer.require(Role::Operator)?;
    let done = c.rollouts.rollback_by(&viewer.actor(), id).await;
    let notice = notice(done.map(|n| format!("Rolling back {n} devices to the previous version.")))?;
    page(&c, &viewer, id, Some(notice)).await
}

/// What the page says after an action; an unknown rollout or a store failure is an error page.
fn notice(result: Result<String, RolloutError>) -> Result<String, ConsoleError> {
    match result {
        Ok(text) => Ok(text),
        Err(e @ (RolloutError::Conflict(_) | RolloutError::Invalid { .. })) => {
            Ok(format!("{}.", capitalized(&e.to_string())))
        }
        Err(e) => Err(refused(e)),
    }
}
