//! Whether a stored file is still in use, and by what: the one place removal asks.
//!
//! [`in_use`] returns reasons, each naming what still needs the file (a device, a group, a
//! rollout); an empty list means the file may go. It answers from memory (the inventory).
//!
//! **Extension point.** Each kind of user of a file is one small function below returning its
//! reasons; [`in_use`] chains them: devices targeting a firmware version, devices a rollout
//! pinned to it, and settings naming a ringtone, wallpaper or language file in their `*.file`
//! key. To make another feature hold files, add a function here and one line to [`in_use`];
//! pass what it reads through [`InUseSources`].

use sipprov_model::known;

use crate::inventory::Inventory;
use crate::pins::FirmwarePins;
use crate::resources::{ResourceFile, ResourceKind};

/// At most this many reasons are listed; past it, one more line says how many were left out.
pub const MAX_REASONS: usize = 10;

/// What [`in_use`] reads.
pub struct InUseSources<'a> {
    /// The devices and their merged settings.
    pub inventory: &'a Inventory,
    /// The rollouts' pins, when known.
    pub pins: Option<&'a FirmwarePins>,
}

/// Why `file` may not be removed now: one line per user (bounded by [`MAX_REASONS`], the last
/// line counting the rest); empty when nothing uses it.
pub fn in_use(sources: &InUseSources<'_>, file: &ResourceFile) -> Vec<String> {
    let mut reasons = Vec::new();
    reasons.extend(devices_targeting_firmware(sources.inventory, file));
    if let Some(pins) = sources.pins {
        reasons.extend(devices_pinned_to_firmware(sources.inventory, pins, file));
    }
    reasons.extend(settings_naming_file(sources.inventory, file));
    bounded(reasons)
}

/// A firmware image is in use while a device of its vendor and one of its models has the
/// image's version as its effective (global → group → device) `firmware.version`: that
/// device's next render points it at this file.
fn devices_targeting_firmware(inventory: &Inventory, file: &ResourceFile) -> Vec<String> {
    let (ResourceKind::Firmware, Some(vendor), Some(version)) = (file.kind, &file.vendor, &file.version) else {
        return Vec::new();
    };
    let key = [known::FIRMWARE_VERSION.name()];
    let mut reasons: Vec<String> = inventory
        .devices()
        .iter()
        .filter(|d| file.is_firmware_for(vendor, &d.model) && d.vendor == *vendor)
        .filter(|d| known::FIRMWARE_VERSION.get(&inventory.merged_keys(d, &key)) == Some(version.as_str()))
        .map(|d| {
            let group = d.group.as_deref().map(|g| format!(", group {g}")).unwrap_or_default();
            format!("device {} ({} {}{group}) targets firmware.version {version}", d.mac, d.vendor, d.model)
        })
        .collect();
    reasons.sort();
    reasons
}

/// A firmware image is in use while a rollout holds a device of its vendor and one of its
/// models to the image's version: that device's next render points it at this file, whatever
/// its `firmware.version` says.
fn devices_pinned_to_firmware(inventory: &Inventory, pins: &FirmwarePins, file: &ResourceFile) -> Vec<String> {
    let (ResourceKind::Firmware, Some(vendor), Some(version)) = (file.kind, &file.vendor, &file.version) else {
        return Vec::new();
    };
    let mut reasons: Vec<String> = pins
        .pinned_to(version)
        .into_iter()
        .filter_map(|(mac, rollout)| inventory.device(mac).map(|d| (d, rollout)))
        .filter(|(d, _)| d.vendor == *vendor && file.is_firmware_for(vendor, &d.model))
        .map(|(d, rollout)| {
            format!("device {} ({} {}) is pinned to {version} by rollout {rollout}", d.mac, d.vendor, d.model)
        })
        .collect();
    reasons.sort();
    reasons
}

/// A ringtone, wallpaper or language file is in use while a setting at any level (global, a
/// group, a device's own) names it in the key of its kind (`ringtone.file`, `wallpaper.file`,
/// `language.file`): the renders of the devices that setting reaches point at it.
fn settings_naming_file(inventory: &Inventory, file: &ResourceFile) -> Vec<String> {
    let Some((key, _)) = file.kind.setting_keys() else { return Vec::new() };
    inventory.levels_with(key, &file.name).into_iter().map(|level| format!("{level} names it in {key}")).collect()
}

/// `reasons`, cut to [`MAX_REASONS`] with a last line counting what was left out.
fn bounded(mut reasons: Vec<String>) -> Vec<String> {
    if reasons.len() > MAX_REASONS {
        let rest = reasons.len() - MAX_REASONS;
        reasons.truncate(MAX_REASONS);
        reasons.push(format!("and {rest} more"));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let many: Vec<String> = (0..25).map(|i| format!("device {i}")).collect();
        let cut = bounded(many);
        assert_eq!(cut.len(), MAX_REASONS + 1);
        assert_eq!(cut.last().unwrap(), "and 15 more");
        assert_eq!(bounded(vec!["one".into()]), vec!["one".to_string()]);
    }
}
