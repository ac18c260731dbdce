//! Re-opening a device's first-fetch window: the one path the admin API
//! (`POST /api/v1/devices/{mac}/unlock`) and the console's Unlock button share.
//!
//! A device may fetch its own file once without credentials, within
//! `security.first_fetch_window_secs` after it was added; that first fetch closes the window. A
//! phone that missed it (unpacked late, factory reset, or a stranger fetched first) is given a
//! new one from now, good for one more fetch; generated credentials stay what they were, so the
//! phone gets the same ones again.

use sipprov_api::{Unlocked, UnlockedDetail};
use sipprov_store::{DeviceRecord, NewEvent, Store, StoreError};

use crate::access::{audit, Actor};
use crate::auth::Security;
use crate::fetchlog::{FetchLog, Record};

/// Why a window could not be re-opened.
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    /// `security.first_fetch_window_secs` is 0: there is no window to re-open.
    #[error("the first-fetch window is off: set security.first_fetch_window_secs in the server configuration")]
    WindowOff,
    /// The store could not keep the unlock (nothing changed).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Re-opens `device`'s window from now: stored with its audit entry first (a window the server
/// forgot on restart would strand a phone that was told it may fetch), then opened in memory,
/// then recorded in the device's history.
pub async fn unlock(
    store: &Store,
    security: &Security,
    events: &FetchLog,
    actor: &Actor,
    device: &DeviceRecord,
) -> Result<Unlocked, UnlockError> {
    let window = security.config.first_fetch_window_secs;
    if window == 0 {
        return Err(UnlockError::WindowOff);
    }
    let mac = device.mac;
    let now = sipprov_store::now_ms();
    let entry =
        audit::entry(actor, "device.unlock", "device", &mac.to_string(), serde_json::json!({ "window_secs": window }));
    store.record_unlock_audited(mac, now, &entry).await?;
    security.unlock(mac, now);
    let open_until = security.window_closes_at(device).unwrap_or(now);
    events.record(Record::Event(NewEvent::of(mac, now, &UnlockedDetail { window_secs: window, open_until })));
    tracing::info!(%mac, window_secs = window, actor = %actor.name, "first-fetch window re-opened");
    Ok(Unlocked { mac, window_secs: window, open_until })
}
