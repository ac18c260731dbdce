//! Firmware pins in memory: the version a running rollout holds a device to, above its merged
//! `firmware.version`.
//!
//! The rollout engine (`crate::rollout`) writes a pin to the store first (`firmware_pins`, in
//! the transaction that also moves the device's rollout row and writes its history), then
//! here; the render (`crate::files`) reads it on every request but those served a rendering
//! cached while the device had no target (any pin change drops those). Loaded from the store at
//! start, so a restart serves the same files. Changing a pin drops the device's cached renders,
//! so the next fetch names the new firmware. Bounded by the inventory: at most one pin per
//! device.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sipprov_model::Mac;
use sipprov_store::FirmwarePin;

use crate::cache::RenderCache;

/// The pins, by device.
pub struct FirmwarePins {
    pins: RwLock<HashMap<Mac, Pin>>,
    cache: Arc<RenderCache>,
}

/// One device's pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// The version its file names while pinned.
    pub version: String,
    /// The rollout that holds it.
    pub rollout: i64,
}

impl FirmwarePins {
    /// The pins as loaded from the store, dropping renders from `cache` when they change.
    pub fn new(loaded: Vec<FirmwarePin>, cache: Arc<RenderCache>) -> FirmwarePins {
        let pins = loaded.into_iter().map(|p| (p.mac, Pin { version: p.version, rollout: p.rollout_id })).collect();
        FirmwarePins { pins: RwLock::new(pins), cache }
    }

    /// Replaces every pin with `loaded` (as the store has them now: another node's rollout
    /// changed some) and drops the renders of the devices whose pin changed.
    pub fn replace(&self, loaded: Vec<FirmwarePin>) {
        let fresh: HashMap<Mac, Pin> =
            loaded.into_iter().map(|p| (p.mac, Pin { version: p.version, rollout: p.rollout_id })).collect();
        let mut pins = self.pins.write().unwrap_or_else(|e| e.into_inner());
        let changed: Vec<Mac> = pins
            .iter()
            .filter(|(mac, pin)| fresh.get(*mac) != Some(*pin))
            .map(|(mac, _)| *mac)
            .chain(fresh.iter().filter(|(mac, pin)| pins.get(*mac) != Some(*pin)).map(|(mac, _)| *mac))
            .collect();
        *pins = fresh;
        drop(pins);
        changed.iter().for_each(|m| self.cache.invalidate_device(*m));
    }

    /// The version `mac` is pinned to, if any.
    pub fn get(&self, mac: Mac) -> Option<String> {
        self.pins.read().unwrap_or_else(|e| e.into_inner()).get(&mac).map(|p| p.version.clone())
    }

    /// The pin of `mac`, with its rollout.
    pub fn pin(&self, mac: Mac) -> Option<Pin> {
        self.pins.read().unwrap_or_else(|e| e.into_inner()).get(&mac).cloned()
    }

    /// Pins `macs` to `version` for `rollout` (already stored).
    pub fn set(&self, macs: &[Mac], version: &str, rollout: i64) {
        let mut pins = self.pins.write().unwrap_or_else(|e| e.into_inner());
        for mac in macs {
            pins.insert(*mac, Pin { version: version.to_string(), rollout });
        }
        drop(pins);
        macs.iter().for_each(|m| self.cache.invalidate_device(*m));
    }

    /// Removes the pins `rollout` holds on `macs` (already removed from the store).
    pub fn remove(&self, macs: &[Mac], rollout: i64) {
        let mut pins = self.pins.write().unwrap_or_else(|e| e.into_inner());
        let removed: Vec<Mac> =
            macs.iter().copied().filter(|m| pins.get(m).is_some_and(|p| p.rollout == rollout)).collect();
        removed.iter().for_each(|m| {
            pins.remove(m);
        });
        drop(pins);
        removed.iter().for_each(|m| self.cache.invalidate_device(*m));
    }

    /// The devices pinned to `version`, with the rollout holding each (for the file catalog's
    /// in-use check).
    pub fn pinned_to(&self, version: &str) -> Vec<(Mac, i64)> {
        let pins = self.pins.read().unwrap_or_else(|e| e.into_inner());
        pins.iter().filter(|(_, p)| p.version == version).map(|(m, p)| (*m, p.rollout)).collect()
    }

    /// How many devices are pinned.
    pub fn len(&self) -> usize {
        self.pins.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when no device is pinned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether firmware `reported` by the User-Agent of a phone of `vendor` is version `target`:
/// the one comparison the render and the rollouts make, the vendor's own
/// ([`sipprov_vendors::Vendor::firmware_matches`]: Cisco spells one version several ways), or
/// equal ignoring case and surrounding spaces for a vendor this build does not know.
pub fn runs_version(vendor: &str, reported: &str, target: &str) -> bool {
    match sipprov_vendors::registry().get(vendor) {
        Some(v) => v.firmware_matches(reported, target),
        None => reported.trim().eq_ignore_ascii_case(target.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_is_removed_only_by_its_own_rollout() {
        let mac: Mac = "001565000001".parse().unwrap();
        let pins = FirmwarePins::new(Vec::new(), Arc::new(RenderCache::default()));
        pins.set(&[mac], "2.0", 1);
        pins.set(&[mac], "3.0", 2);
        pins.remove(&[mac], 1);
        assert_eq!(pins.get(mac).as_deref(), Some("3.0"));
        pins.remove(&[mac], 2);
        assert!(pins.get(mac).is_none() && pins.is_empty());
        assert!(runs_version("yealink", " 66.86.0.160", "66.86.0.160"));
        assert!(!runs_version("yealink", "66.86.0.15", "66.86.0.160"));
        assert!(runs_version("no-such-vendor", "A1 ", "a1"));
    }
}
