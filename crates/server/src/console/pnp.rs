//! Plug-and-Play (`/console/pnp`): the devices Plug-and-Play discovered and put in the
//! discovered group (`pnp.discovered_group`), with what their SUBSCRIBEs reported; approving
//! one into an existing group of the fleet (which gives it that group's settings), or rejecting
//! it (which removes it). Both need the operator role and go through the discoveries service
//! ([`crate::discoveries::Discoveries`]), audited under the console user's name.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sipprov_api::Role;
use sipprov_model::Mac;

use super::session::Viewer;
use super::view::me;
use super::{render, ConsoleError, ConsoleServices, Ctx, Page};
use crate::discoveries::DiscoveryError;

/// Discoveries listed at most on the page.
const SHOWN: usize = 500;

pub(super) fn routes() -> Router<Arc<ConsoleServices>> {
    Router::new()
        .route("/console/pnp", get(page))
        .route("/console/pnp/{mac}/approve", post(approve))
        .route("/console/pnp/{mac}/reject", post(reject))
}

/// `GET /console/pnp`.
async fn page(axum::extract::State(c): Ctx, viewer: Viewer) -> Page {
    pnp_page(&c, &viewer, None, StatusCode::OK).await
}

async fn pnp_page(c: &ConsoleServices, viewer: &Viewer, notice: Option<String>, status: StatusCode) -> Page {
    let mut waiting = c.discoveries.list().await?;
    waiting.truncate(SHOWN);
    let groups: Vec<String> =
        c.store.list_groups().await?.into_iter().map(|g| g.name).filter(|g| g != c.discoveries.group()).collect();
    let ctx = serde_json::json!({
        "me": me(viewer), "nav": "pnp", "waiting": waiting, "groups": groups,
        "discovered": c.discoveries.group(), "notice": notice,
    });
    let mut page = render("pnp.html", ctx)?;
    *page.status_mut() = status;
    Ok(page)
}

fn parse_mac(text: &str) -> Result<Mac, ConsoleError> {
    text.parse().map_err(|e: sipprov_model::MacError| ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string()))
}

/// The page again after an action: its outcome, or why it was refused (400; the store's own
/// failures are error pages).
async fn after(c: &ConsoleServices, viewer: &Viewer, result: Result<String, DiscoveryError>) -> Page {
    match result {
        Ok(notice) => pnp_page(c, viewer, Some(notice), StatusCode::OK).await,
        Err(DiscoveryError::Store(e)) => Err(ConsoleError::from(e)),
        Err(e) => pnp_page(c, viewer, Some(format!("Refused: {e}")), StatusCode::BAD_REQUEST).await,
    }
}

/// The approval form.
#[derive(Deserialize)]
pub(super) struct Approve {
    #[serde(default)]
    group: String,
}

/// `POST /console/pnp/{mac}/approve`: moves a discovered device into `group`.
async fn approve(
    axum::extract::State(c): Ctx,
    viewer: Viewer,
    Path(mac): Path<String>,
    Form(form): Form<Approve>,
) -> Page {
    viewer.require(Role::Operator)?;
    let mac = parse_mac(&mac)?;
    let result = c.discoveries.approve(&viewer.actor(), mac, &form.group).await.map(|d| {
        let group = d.group.unwrap_or_default();
        tracing::info!(%mac, %group, user = %viewer.session.user, "discovered device approved in the console");
        format!("{mac} approved into {group}.")
    });
    after(&c, &viewer, result).await
}

/// `POST /console/pnp/{mac}/reject`: removes a discovered device.
async fn reject(axum::extract::State(c): Ctx, viewer: Viewer, Path(mac): Path<String>) -> Page {
    viewer.require(Role::Operator)?;
    let mac = parse_mac(&mac)?;
    let result = c.discoveries.reject(&viewer.actor(), mac).await.map(|()| {
        tracing::info!(%mac, user = %viewer.session.user, "discovered device rejected in the console");
        format!("{mac} rejected and removed.")
    });
    after(&c, &viewer, result).await
}
