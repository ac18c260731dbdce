//! What start-up says about device-file access: who is open to anyone, and which devices are or
//! will be locked out, so that the default (closed) posture never fails silently.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    pub open_devices: Vec<Mac>,
    /// Devices without credentials whose file cannot carry generated ones, by vendor: after
    /// their first fetch only a client certificate lets them in.
    pub cannot_carry: BTreeMap<String, Vec<Mac>>,
    /// Devices refused now: no credentials, not open, and no first-fetch window left.
    pub locked: Vec<Mac>,
}

/// Looks at every device (only the keys that matter are merged).
///
/// Runs at start-up over the whole inventory, so it does per group what is the same for every
/// device of the group: a device that sets none of `KEYS` itself and has no generated
/// credentials has its group's policy, decided once (a million devices in twenty groups were a
/// million merges, a million clones of a group's settings and a sort of the whole inventory:
/// a fifth of a million-device start-up in `perf`). The lists come out sorted by MAC, as before.
pub fn assess(inventory: &Inventory, security: &Security, now_ms: i64) -> Posture {
    let global = inventory.global();
    let mut posture =
        Posture { global_open: global.get_key(&known::OPEN_DEVICE_FILES) == Some(true), ..Posture::default() };
    let mut groups = BTreeSet::new();
    let devices = inventory.devices();
    let mut per_group: HashMap<Option<&str>, GroupPosture> = HashMap::new();
    for device in &devices {
        let group = per_group
            .entry(device.group.as_deref())
            .or_insert_with(|| GroupPosture::of(inventory, device.group.as_deref()));
        let inherits = security.windows.generated(device.mac).is_none()
            && KEYS.iter().all(|key| device.settings.get(key).is_none());
        let (open, locked) = if inherits {
            (group.open, group.locked)
        } else {
            let mut settings = inventory.merged_keys(device, KEYS);
            security.add_generated_credentials(device, &mut settings);
            let policy = Policy::from_settings(&settings);
            (policy.is_open(), policy.is_locked())
        };
        if open {
            posture.open_devices.push(device.mac);
            if group.opens {
                if let Some(g) = &device.group {
                    groups.insert(g.clone());
                }
            }
            continue;
        }
        if !locked {
            continue;
        }
        if !can_carry_credentials(device) {
            posture.cannot_carry.entry(device.vendor.clone()).or_default().push(device.mac);
        }
        if security.open_window(device, now_ms).is_none() {
            posture.locked.push(device.mac);
        }
    }
    posture.open_devices.sort_unstable();
    posture.locked.sort_unstable();
    for macs in posture.cannot_carry.values_mut() {
        macs.sort_unstable();
    }
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
    let mut text: Vec<String> = macs.iter().take(EXAMPLES).map(Mac::to_string).collect();
    if macs.len() > EXAMPLES {
        text.push(format!("and {} more", macs.len() - EXAMPLES));
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
                examples = %examples(&self.open_devices),
                "device files open to anyone who asks, passwords included (security.open_device_files=1)"
            );
        }
        for (vendor, macs) in &self.cannot_carry {
            tracing::warn!(
                vendor = %vendor,
                devices = macs.len(),
                examples = %examples(macs),
                "devices without HTTP credentials whose files cannot give them any: after their first fetch \
                 they are refused; set http.username/http.password to what the phones are configured with, \
                 give them client certificates, or set security.open_device_files=1 on their group"
            );
        }
        if !self.locked.is_empty() {
            tracing::warn!(
                devices = self.locked.len(),
                examples = %examples(&self.locked),
                "devices without HTTP credentials whose first-fetch window is closed: refused until \
                 `sipprov device unlock <MAC>`, credentials, a client certificate or an open group"
            );
        }
    }
}
