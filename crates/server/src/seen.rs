//! What every device fetched last, in memory: the source of "last seen" and "reported firmware"
//! for device lists and the fleet summary, so neither reads 100,000 rows from the store.
//!
//! Loaded from the store at start (`device_seen`, which the inventory load already joins) and
//! kept current by the fetch log's writer as it takes each fetch record, before the store write:
//! after [`crate::fetchlog::FetchLog::flush`] it holds every fetch recorded so far. It merges
//! like the store does: the latest fetch wins, and a fetch that reports no model or firmware
//! keeps the ones reported before.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use sipprov_model::Mac;
use sipprov_store::{DeviceRecord, FetchInfo};

/// Most devices remembered; fetch records past it for new MACs are not indexed (the store still
/// has them). Far above any inventory this server is sized for.
const MAX_DEVICES: usize = 2_000_000;

/// The last fetch per device.
#[derive(Default)]
pub struct SeenIndex {
    last: RwLock<HashMap<Mac, FetchInfo>>,
}

impl SeenIndex {
    /// The index of what `devices` (as loaded from the store) fetched last.
    pub fn from_devices(devices: &[Arc<DeviceRecord>]) -> SeenIndex {
        let last = devices.iter().filter_map(|d| d.last_fetch.as_deref().map(|f| (d.mac, f.clone()))).collect();
        SeenIndex { last: RwLock::new(last) }
    }

    /// Takes a fetch into account: `mac` fetched `file` (content `hash`) at `at` from `ip`,
    /// reporting `model` and `firmware`. A device's entry is updated in place, without
    /// allocating while what it fetched stays the same (the usual case under load).
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        mac: Mac,
        at: i64,
        ip: IpAddr,
        file: &str,
        hash: &str,
        model: Option<&str>,
        firmware: Option<&str>,
    ) {
        let mut last = self.last.write().unwrap_or_else(|e| e.into_inner());
        let full = last.len() >= MAX_DEVICES;
        match last.get_mut(&mac) {
            Some(known) if known.at <= at => {
                known.at = at;
                if known.ip.parse::<IpAddr>().ok() != Some(ip) {
                    known.ip = ip.to_string();
                }
                assign(&mut known.file, file);
                assign(&mut known.hash, hash);
                if let Some(model) = model {
                    assign(known.reported_model.get_or_insert_with(String::new), model);
                }
                if let Some(firmware) = firmware {
                    assign(known.reported_firmware.get_or_insert_with(String::new), firmware);
                }
            }
            Some(_) => {}
            None if full => {}
            None => {
                let info = FetchInfo {
                    mac,
                    at,
                    ip: ip.to_string(),
                    file: file.to_string(),
                    hash: hash.to_string(),
                    reported_model: model.map(String::from),
                    reported_firmware: firmware.map(String::from),
                };
                last.insert(mac, info);
            }
        }
    }

    /// Takes in a fetch another node recorded (read back from the store): kept when newer
    /// than what this node knows of the device.
    pub fn merge(&self, info: FetchInfo) {
        let mut last = self.last.write().unwrap_or_else(|e| e.into_inner());
        let full = last.len() >= MAX_DEVICES;
        match last.get_mut(&info.mac) {
            Some(known) if known.at < info.at => *known = info,
            Some(_) => {}
            None if full => {}
            None => {
                last.insert(info.mac, info);
            }
        }
    }

    /// Forgets a removed device, so one added again under its MAC starts unseen (as in the store).
    pub fn forget(&self, mac: Mac) {
        self.last.write().unwrap_or_else(|e| e.into_inner()).remove(&mac);
    }

    /// What `mac` fetched last.
    pub fn get(&self, mac: Mac) -> Option<FetchInfo> {
        self.read().get(&mac).cloned()
    }

    /// The whole index, for a scan (hold it briefly: fetch records wait for it).
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<Mac, FetchInfo>> {
        self.last.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sets `slot` to `value`, reusing its buffer (no allocation when it fits, none at all when equal).
fn assign(slot: &mut String, value: &str) {
    if slot != value {
        slot.clear();
        slot.push_str(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(index: &SeenIndex, at: i64, firmware: Option<&str>) {
        let ip = "192.0.2.1".parse().unwrap();
        index.record("001565000001".parse().unwrap(), at, ip, "f", "h", None, firmware);
    }

    #[test]
    fn latest_fetch_wins_and_keeps_the_firmware_reported_before() {
        let index = SeenIndex::default();
        fetch(&index, 10, Some("66.86.0.15"));
        fetch(&index, 20, None);
        fetch(&index, 5, Some("old"));
        let seen = index.get("001565000001".parse().unwrap()).unwrap();
        assert_eq!(seen.at, 20);
        assert_eq!(seen.reported_firmware.as_deref(), Some("66.86.0.15"));
    }
}
