//! PnP discoveries: the devices waiting in `pnp.discovered_group` for an operator to approve
//! them into a group or reject them.
//!
//! With `pnp.mode = "any"`, PnP adds a phone it does not know to the discovered group and
//! records each of its SUBSCRIBEs as a sighting (vendor, model and firmware reported, source
//! address, first and latest time). The list is the inventory's devices in that group, with
//! their sightings; a device put into the group by hand shows without them.
//!
//! - **Approve** moves the device to an existing group through the [`Registry`] (so the move is
//!   validated against that group's settings like any other change) and forgets its sightings.
//! - **Reject** removes the device through the [`Registry`]. Its sightings go with it. A
//!   rejected phone that subscribes again while `pnp.mode = "any"` is discovered again and
//!   waits in the list once more: rejecting does not block a MAC (use `pnp.allow_ouis` or
//!   `pnp.allow_sources`, or `pnp.mode = "known"`, to keep phones out).
//!
//! The admin API (`/api/v1/pnp/discoveries`) and the web console call this module directly.

use std::collections::HashMap;
use std::sync::Arc;

use sipprov_api::Discovery;
use sipprov_model::Mac;
use sipprov_store::{DevicePatch, DeviceRecord, Sighting, Store, StoreError};

use crate::access::Actor;
use crate::inventory::Inventory;
use crate::registry::{Refused, Registry};

/// Longest reported model or firmware text kept for a sighting: what a phone sends is shown to
/// the operator, not trusted, and a row stays small.
const MAX_REPORTED: usize = 64;

/// Why an approval or rejection was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The MAC is not a device waiting in the discovered group.
    #[error("{0} is not waiting in the discovered group {1:?}")]
    NotWaiting(Mac, String),
    /// The target group is unusable (empty, the discovered group itself, or not a group).
    #[error("{0}")]
    BadGroup(String),
    /// The device's settings merged with the target group's are invalid.
    #[error("{0}")]
    Invalid(String),
    /// The store could not read or write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The discovered devices and what can be done with them.
pub struct Discoveries {
    store: Store,
    inventory: Arc<Inventory>,
    registry: Arc<Registry>,
    group: String,
}

impl Discoveries {
    /// The service over the devices in `discovered_group` (`pnp.discovered_group`).
    pub fn new(store: Store, inventory: Arc<Inventory>, registry: Arc<Registry>, discovered_group: String) -> Self {
        Discoveries { store, inventory, registry, group: discovered_group }
    }

    /// The group discovered devices wait in.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The devices waiting, by MAC, with their sightings.
    pub async fn list(&self) -> Result<Vec<Discovery>, StoreError> {
        let mut sightings: HashMap<Mac, Sighting> =
            self.store.sightings().await?.into_iter().map(|s| (s.mac, s)).collect();
        let mut waiting: Vec<Discovery> = self
            .inventory
            .devices()
            .iter()
            .filter(|d| self.is_waiting(d))
            .map(|d| discovery(d, sightings.remove(&d.mac)))
            .collect();
        waiting.sort_by_key(|d| d.mac);
        Ok(waiting)
    }

    /// Records a SUBSCRIBE of a waiting device (PnP calls this); other devices are ignored.
    pub async fn sighted(&self, mut sighting: Sighting) -> Result<(), StoreError> {
        match self.inventory.device(sighting.mac) {
            Some(d) if self.is_waiting(&d) => {}
            _ => return Ok(()),
        }
        for text in [&mut sighting.vendor, &mut sighting.model] {
            truncate(text);
        }
        if let Some(firmware) = &mut sighting.firmware {
            truncate(firmware);
        }
        self.store.record_sighting(&sighting).await
    }

    /// Moves a waiting device into `group`, an existing group other than the discovered one,
    /// and returns it as stored.
    pub async fn approve(&self, actor: &Actor, mac: Mac, group: &str) -> Result<DeviceRecord, DiscoveryError> {
        let device = self.waiting(mac)?;
        let group = group.trim();
        if group.is_empty() {
            return Err(DiscoveryError::BadGroup("group is empty".into()));
        }
        if group == self.group {
            return Err(DiscoveryError::BadGroup(format!(
                "{group:?} is the discovered group itself; name the group the device should join"
            )));
        }
        if self.inventory.group(group).is_none() {
            return Err(DiscoveryError::BadGroup(format!(
                "group {group:?} does not exist (create it first, e.g. `sipprov group set {group} KEY=VALUE`)"
            )));
        }
        let patch = DevicePatch { group: Some(Some(group.to_string())), ..DevicePatch::default() };
        let moved = self.registry.patch_device(actor, &device, &patch).await.map_err(|e| match e {
            Refused::Invalid(why) => DiscoveryError::Invalid(why),
            Refused::Store(e) => DiscoveryError::Store(e),
        })?;
        // The device has left the discovered group, so a sighting left behind (this write
        // failing) is never listed; it goes when the device is removed.
        if let Err(e) = self.store.forget_sighting(mac).await {
            tracing::warn!(%mac, error = %e, "approved device's PnP sightings not forgotten");
        }
        tracing::info!(%mac, %group, "PnP discovery approved");
        Ok(moved)
    }

    /// Removes a waiting device (and its sightings).
    pub async fn reject(&self, actor: &Actor, mac: Mac) -> Result<(), DiscoveryError> {
        self.waiting(mac)?;
        self.registry.delete_device(actor, mac).await?;
        tracing::info!(%mac, "PnP discovery rejected and removed");
        Ok(())
    }

    fn waiting(&self, mac: Mac) -> Result<Arc<DeviceRecord>, DiscoveryError> {
        self.inventory
            .device(mac)
            .filter(|d| self.is_waiting(d))
            .ok_or_else(|| DiscoveryError::NotWaiting(mac, self.group.clone()))
    }

    fn is_waiting(&self, device: &DeviceRecord) -> bool {
        device.group.as_deref() == Some(self.group.as_str())
    }
}

/// A waiting device as the API shows it.
fn discovery(device: &DeviceRecord, sighting: Option<Sighting>) -> Discovery {
    let (firmware, source, first_seen, last_seen) = match sighting {
        Some(s) => (s.firmware, Some(s.source), Some(s.first_seen), Some(s.last_seen)),
        None => (None, None, None, None),
    };
    Discovery {
        mac: device.mac,
        vendor: device.vendor.to_string(),
        model: device.model.to_string(),
        firmware,
        source,
        first_seen,
        last_seen,
    }
}

/// Cuts `text` to [`MAX_REPORTED`] bytes, at a character boundary.
fn truncate(text: &mut String) {
    if text.len() > MAX_REPORTED {
        let mut end = MAX_REPORTED;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn reported_text_is_bounded_at_a_character_boundary() {
        let mut long = "é".repeat(40);
        truncate(&mut long);
        assert!(long.len() <= 64 && long.chars().all(|c| c == 'é'));
        let mut short = "66.86.0.15".to_string();
        truncate(&mut short);
        assert_eq!(short, "66.86.0.15");
    }
}
