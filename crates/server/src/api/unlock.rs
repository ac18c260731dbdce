//! `POST /api/v1/devices/{mac}/unlock`: re-opens a device's first-fetch window.
//!
//! A device may fetch its own file once without credentials, within
//! `security.first_fetch_window_secs` after it was added; that first fetch closes the window. A
//! phone that missed the window (unpacked late, factory reset, or a stranger fetched first) is
//! given a new one here, from now, good for one more fetch; generated credentials stay what they
//! were, so the phone gets the same ones again. The unlock is stored, so a restart keeps the
//! window open, and recorded in the device's history.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sipprov_api::Unlocked;
use sipprov_store::NewEvent;

use super::{no_device, parse_mac, ApiError, ApiResult};
use sipprov_store::Store;

use crate::access::Actor;
use crate::auth::Security;
use crate::fetchlog::{FetchLog, Record};
use crate::inventory::Inventory;

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
    let window = security.config.first_fetch_window_secs;
    if window == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the first-fetch window is off: set security.first_fetch_window_secs in the server configuration",
        ));
    }
    let now = sipprov_store::now_ms();
    // Stored first: a window the server forgets on restart would strand a phone that was told
    // it may fetch.
    let detail = serde_json::json!({ "window_secs": window });
    let entry = crate::access::audit::entry(&actor, "device.unlock", "device", &mac.to_string(), detail);
    store.record_unlock_audited(mac, now, &entry).await?;
    security.unlock(mac, now);
    let open_until = security.window_closes_at(&device).unwrap_or(now);
    let detail = sipprov_api::UnlockedDetail { window_secs: window, open_until };
    events.record(Record::Event(NewEvent::of(mac, now, &detail)));
    tracing::info!(%mac, window_secs = window, "first-fetch window re-opened");
    Ok(Json(Unlocked { mac, window_secs: window, open_until }))
}
