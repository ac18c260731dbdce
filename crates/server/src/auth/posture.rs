//! What start-up says about device-file access: who is open to anyone, and which devices are or
//! will be locked out, so that the default (closed) posture never fails silently.

use std::collections::{BTreeMap, BTreeSet};

use sipprov_model::known;
use sipprov_model::Mac;

use super::Policy;
use super::Security;
use crate::catalog::can_carry_credentials;
use crate::config::SecurityConfig;
use crate::inventory::Inventory;

/// The keys that decide a device's access.
const KEYS: &[&str] = &[
    known::HTTP_USERNAME.name(),
    known::HTTP_PASSWORD.name(),
    known::HTTP_AUTH.name(),
    known::HTTP_ALLOW_FROM.name(),
    known::OPEN_DEVICE_FILES.name(),
];
/// How many MACs a log line names.
const EXAMPLES: usize = 10;

/// Device-file access across the inventory.
#[derive(Debug, Default)]
pub struct Posture {
    /// `security.open_device_files = 1` in the global settings.
    pub global_open: bool,
    /// Groups that set it to 1.
    pub open_groups: Vec<String>,
    /// Devices served to anyone.
    pub open_devices: Examples,
    /// Devices without credentials whose file cannot carry generated ones, by vendor: after
    /// their first fetch only a client certificate lets them in.
    pub cannot_carry: BTreeMap<String, Examples>,
    /// Devices refused now: no credentials, not open, and no first-fetch window left.
    pub locked: Examples,
}

/// How many devices are in a case, and the first few of them by MAC: what a log line names.
/// Kept as they come, without a list of every device to sort (a million MACs, at start-up).
#[derive(Debug, Default)]
pub struct Examples {
    count: usize,
    first: Vec<Mac>,
}

impl Examples {
    /// Counts `mac`, keeping it among the examples if it is one of the ten lowest.
    fn add(&mut self, mac: Mac) {
        self.count += 1;
        if self.first.len() == EXAMPLES && self.first.last().is_some_and(|last| mac >= *last) {
            return;
        }
        let at = self.first.partition_point(|m| *m < mac);
        self.first.insert(at, mac);
        self.first.truncate(EXAMPLES);
    }

    /// How many devices.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no device is in the case.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The lowest MACs, in order: at most ten.
    pub fn first(&self) -> &[Mac] {
        &self.first
    }

    /// The examples as a log line shows them: `a, b, … and N more`.
    fn shown(&self) -> String {
        shown(&self.first, self.count)
    }
}

/// Looks at every device (only the keys that matter are merged).
///
/// Runs at start-up over the whole inventory, so it does per group what is the same for every
/// device of the group: a device that sets none of `KEYS` itself and has no generated
/// credentials has its group's policy, decided once (a million devices in twenty groups were a
/// million merges, a million clones of a group's settings and a sort of the whole inventory:
/// a fifth of a million-device start-up in `perf`). It walks the inventory under its lock
/// rather than a snapshot, and keeps for each case a count and the lowest MACs
/// ([`Examples`]), not a list of every device sorted afterwards: with every device open to
/// anyone, that list and its sort were a sixth of the start-up's main thread.
pub fn assess(inventory: &Inventory, security: &Security, now_ms: i64) -> Posture {
    let global = inventory.global();
    let mut posture =
        Posture { global_open: global.get_key(&known::OPEN_DEVICE_FILES) == Some(true), ..Posture::default() };
    let mut groups = BTreeSet::new();
    let ungrouped = GroupPosture::of(inventory, None);
    // Ordered, not hashed: a fleet has a few groups, and hashing every device's group name
    // twice with SipHash was a quarter of this walk at a million devices (`perf`).
    let mut per_group: BTreeMap<String, GroupPosture> = BTreeMap::new();
    inventory.for_each_device(|device| {
        let group = match device.group.as_deref() {
            None => &ungrouped,
            Some(name) => {
                if !per_group.contains_key(name) {
                    per_group.insert(name.to_string(), GroupPosture::of(inventory, Some(name)));
                }
                &per_group[name]
            }
        };
        let inherits = security.windows.generated(device.mac).is_none() && !device.settings.sets_any(KEYS);
        let (open, locked) = if inherits {
            (group.open, group.locked)
        } else {
            let mut settings = inventory.merged_keys(device, KEYS);
            security.add_generated_credentials(device, &mut settings);
            let policy = Policy::from_settings(&settings);
            (policy.is_open(), policy.is_locked())
        };
        if open {
            posture.open_devices.add(device.mac);
            if group.opens {
                if let Some(g) = &device.group {
                    groups.insert(g.to_string());
                }
            }
            return;
        }
        if !locked {
            return;
        }
        if !can_carry_credentials(device) {
            posture.cannot_carry.entry(device.vendor.to_string()).or_default().add(device.mac);
        }
        if security.open_window(device, now_ms).is_none() {
            posture.locked.add(device.mac);
        }
    });
    posture.open_groups = groups.into_iter().collect();
    posture
}

/// What every device of one group shares: the policy of the global and group levels (open to
/// anyone, locked), and whether the group itself sets `security.open_device_files = 1`.
struct GroupPosture {
    open: bool,
    locked: bool,
    opens: bool,
}

impl GroupPosture {
    fn of(inventory: &Inventory, group: Option<&str>) -> GroupPosture {
        let global = inventory.global_keys(KEYS);
        let own = group.and_then(|g| inventory.group(g));
        let opens = own.as_ref().is_some_and(|s| s.get_key(&known::OPEN_DEVICE_FILES) == Some(true));
        let levels = std::iter::once(&global).chain(own.as_ref());
        let policy = Policy::from_settings(&sipprov_model::Settings::merged_keys(levels, KEYS));
        GroupPosture { open: policy.is_open(), locked: policy.is_locked(), opens }
    }
}

/// True when `device` has no way in after its first fetch: no credentials, not open, and a
/// file that cannot carry generated ones.
pub fn locked_after_first_fetch(
    inventory: &Inventory,
    security: &Security,
    device: &sipprov_store::DeviceRecord,
) -> bool {
    let mut settings = inventory.merged_keys(device, KEYS);
    security.add_generated_credentials(device, &mut settings);
    Policy::from_settings(&settings).is_locked() && !can_carry_credentials(device)
}

/// Warns, once for the lot, about devices just added that [`locked_after_first_fetch`].
pub fn warn_about_new(doomed: &[Mac]) {
    if !doomed.is_empty() {
        tracing::warn!(
            devices = doomed.len(),
            examples = %examples(doomed),
            "added devices without HTTP credentials whose files cannot give them any: after their first fetch \
             they are refused; set http.username/http.password to what the phones are configured with, give them \
             client certificates, or set security.open_device_files=1 on their group"
        );
    }
}

/// How a device's files are reached, for `sipprov device show`: `device_files` in words, and
/// until when (epoch ms) its first-fetch window is open, if it is.
pub fn access(
    inventory: &Inventory,
    security: &Security,
    device: &sipprov_store::DeviceRecord,
    now_ms: i64,
) -> sipprov_api::Access {
    let mut settings = inventory.merged_keys(device, KEYS);
    let own = Policy::from_settings(&settings);
    let no_password = settings.get_key(&known::HTTP_AUTH) == Some(known::HttpAuth::None);
    security.add_generated_credentials(device, &mut settings);
    let policy = Policy::from_settings(&settings);
    let how = if policy.is_open() {
        "open to anyone (security.open_device_files)"
    } else if !own.is_locked() {
        "credentials (http.username, http.password)"
    } else if !policy.is_locked() {
        "generated credentials"
    } else if no_password {
        "no password (http.auth=none): a client certificate only"
    } else if can_carry_credentials(device) {
        "credentials generated at its first fetch"
    } else {
        "no credentials: after its first fetch, a client certificate only"
    };
    let until = security.open_window(device, now_ms).and_then(|_| security.window_closes_at(device));
    sipprov_api::Access { device_files: how.to_string(), first_fetch_window_until: until }
}

fn examples(macs: &[Mac]) -> String {
    shown(macs, macs.len())
}

/// The first [`EXAMPLES`] of `macs`, then how many more of `count` there are.
fn shown(macs: &[Mac], count: usize) -> String {
    let mut text: Vec<String> = macs.iter().take(EXAMPLES).map(Mac::to_string).collect();
    if count > EXAMPLES {
        text.push(format!("and {} more", count - EXAMPLES));
    }
    text.join(", ")
}

impl Posture {
    /// Logs the posture: one line for the default, a warning for each thing an operator must know.
    pub fn log(&self, config: &SecurityConfig) {
        tracing::info!(
            first_fetch_window_secs = config.first_fetch_window_secs,
            "device files need credentials or a client certificate; a new device may fetch its own once \
             without, within its first-fetch window"
        );
        if self.global_open || !self.open_devices.is_empty() {
            tracing::warn!(
                global = self.global_open,
                groups = %self.open_groups.join(","),
                devices = self.open_devices.len(),
                examples = %self.open_devices.shown(),
                "device files open to anyone who asks, passwords included (security.open_device_files=1)"
            );
        }
        for (vendor, macs) in &self.cannot_carry {
            tracing::warn!(
                vendor = %vendor,
                devices = macs.len(),
                examples = %macs.shown(),
                "devices without HTTP credentials whose files cannot give them any: after their first fetch \
                 they are refused; set http.username/http.password to what the phones are configured with, \
                 give them client certificates, or set security.open_device_files=1 on their group"
            );
        }
        if !self.locked.is_empty() {
            tracing::warn!(
                devices = self.locked.len(),
                examples = %self.locked.shown(),
                "devices without HTTP credentials whose first-fetch window is closed: refused until \
                 `sipprov device unlock <MAC>`, credentials, a client certificate or an open group"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u64) -> Mac {
        let b = (0x0015_6500_0000 + n).to_be_bytes();
        Mac::from_bytes([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    #[test]
    fn examples_count_every_device_and_keep_the_lowest_macs_in_order() {
        let mut examples = Examples::default();
        assert!(examples.is_empty());
        // A scrambled order, as a hash map hands devices over.
        let macs: Vec<Mac> = (0..1000u64).map(|i| mac((i * 7919) % 1000)).collect();
        for mac in &macs {
            examples.add(*mac);
        }
        assert_eq!(examples.len(), 1000);
        let lowest: Vec<Mac> = (0..EXAMPLES as u64).map(mac).collect();
        assert_eq!(examples.first(), &lowest[..]);
        assert_eq!(examples.shown(), format!("{}, and 990 more", shown(&lowest, EXAMPLES)));
    }
}
