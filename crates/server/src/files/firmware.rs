//! The firmware a device's file names: its target version turned into `firmware.url` at render.
//!
//! The target is the device's rollout pin (`crate::pins`), else its merged `firmware.version`.
//! When the catalog has a firmware file for the device's vendor, model and that version, the
//! render writes `firmware.url` (the device's provisioning base + the file's path on the
//! provisioning listener) into the settings the vendor renders, unless the device already runs
//! it: the requester's User-Agent says so, or, when no phone is asking (`render`, a campaign's
//! `--changed` hash) or its User-Agent names no firmware, the last firmware the seen index
//! recorded for it does. The render cache key carries `~fw=<version>` when the URL is written,
//! so a phone on its target and one not never share a rendering or an ETag; the content's
//! change time is kept per file as before, so a phone moving from one to the other always gets
//! a later `Last-Modified`.
//!
//! A target without a file for the device's model writes nothing: the render logs a warning
//! (once per rendering) naming device, model and version, and `sipprov render` shows no URL.

use sipprov_api::{FirmwareState, FirmwareStatus};
use sipprov_model::{known, Settings};
use sipprov_store::DeviceRecord;
use sipprov_vendors::{ModelInfo, Vendor};

use std::sync::Arc;

use super::{Files, RenderFailure};
use crate::pins::runs_version;
use crate::resources::ResourceFile;

/// What a device's file says about firmware, for one requester.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct FirmwarePlan {
    /// The version the device should run, if any.
    pub target: Option<String>,
    /// The catalog image the file names (a target, a file for the model, and the device not
    /// running it yet); its URL is built only when the file is rendered.
    pub image: Option<Arc<ResourceFile>>,
    /// A target the catalog has no file for (for the model).
    pub missing: bool,
}

impl FirmwarePlan {
    /// Logs a target the catalog has no file for (for the model): on a render only, so at most
    /// once per rendering of the device's file.
    pub(crate) fn warn_if_missing(&self, device: &DeviceRecord) {
        if self.missing {
            tracing::warn!(mac = %device.mac, vendor = %device.vendor, model = %device.model,
                version = self.target.as_deref().unwrap_or_default(),
                "firmware.version has no firmware file for this model in the catalog; the file names no firmware");
        }
    }

    /// The render cache key's suffix: the rendering differs only when a URL is written.
    pub(crate) fn key_suffix(&self) -> String {
        self.key_version().map(|version| format!("~fw={version}")).unwrap_or_default()
    }

    /// The version the render cache key names ([`Self::key_suffix`]), if any.
    pub(crate) fn key_version(&self) -> Option<&str> {
        match (&self.image, &self.target) {
            (Some(_), Some(version)) => Some(version),
            _ => None,
        }
    }
}

impl Files {
    /// The firmware plan of `device` for a requester reporting `reported` (`None`: no phone, or
    /// a User-Agent without a firmware version). A few map lookups and no allocation when the
    /// device has no target: it runs on every request whose cached rendering was made with a
    /// target (or that renders); one made without is served without it (`Files::served`).
    pub(crate) fn firmware_plan(
        &self,
        device: &DeviceRecord,
        vendor: &'static dyn Vendor,
        model: &'static ModelInfo,
        reported: Option<&str>,
    ) -> FirmwarePlan {
        let target =
            self.pins.get(device.mac).or_else(|| self.inventory.merged_value(device, known::FIRMWARE_VERSION.name()));
        let Some(target) = target else { return FirmwarePlan::default() };
        let runs_target = match reported {
            Some(r) => runs_version(vendor.id(), r, &target),
            None => self
                .events
                .seen()
                .get(device.mac)
                .and_then(|f| f.reported_firmware)
                .is_some_and(|r| runs_version(vendor.id(), &r, &target)),
        };
        if runs_target {
            return FirmwarePlan { target: Some(target), ..FirmwarePlan::default() };
        }
        let image = self.resources.firmware_for(vendor.id(), model.name, &target);
        let missing = image.is_none();
        FirmwarePlan { target: Some(target), image, missing }
    }

    /// `device`'s firmware target and where it stands, as the device views show it: the same
    /// decision its next render makes with no request at hand (its last reported firmware).
    /// `None` when it has no target or its vendor or model is unknown.
    pub fn firmware_status(&self, device: &DeviceRecord) -> Option<FirmwareStatus> {
        let (vendor, model) = crate::catalog::vendor_model(device).ok()?;
        let plan = self.firmware_plan(device, vendor, model, None);
        let target = plan.target?;
        let (state, image) = match (plan.image, plan.missing) {
            (Some(file), _) => (FirmwareState::Offered, Some(file.name.clone())),
            (None, true) => (FirmwareState::NoImage, None),
            (None, false) => (FirmwareState::OnTarget, None),
        };
        Some(FirmwareStatus { target, image, state })
    }

    /// Writes `plan`'s `firmware.url` into the settings the vendor renders: the origin and path
    /// of the device's merged `provisioning.url`, else `[pnp] url`, followed by the file's path.
    /// Without either, the render fails naming `provisioning.url`: a URL the phone cannot reach
    /// would be worse than none.
    pub(crate) fn apply_firmware(
        &self,
        device: &DeviceRecord,
        plan: &FirmwarePlan,
        settings: &mut Settings,
    ) -> Result<(), RenderFailure> {
        let Some(image) = &plan.image else { return Ok(()) };
        let base = self.derived_base(settings).ok_or_else(|| {
                RenderFailure::Template(format!(
                    "device {} targets firmware {} but has no provisioning.url (nor [pnp] url) to build its firmware.url from",
                    device.mac,
                    plan.target.as_deref().unwrap_or_default()
                ))
            })?;
        let url = format!("{base}{}", self.resources.url_path(image, device.mac));
        settings
            .set(known::FIRMWARE_URL.name(), &url)
            .map_err(|e| RenderFailure::Template(format!("device {}: firmware.url {url:?}: {e}", device.mac)))?;
        // The version goes with the URL: a rollout's pin may differ from the merged setting, and a
        // vendor whose file names the image's version beside its URL (Gigaset's `<firmware>`
        // element) must name the one the URL points at.
        if let Some(target) = &plan.target {
            settings
                .set(known::FIRMWARE_VERSION.name(), target)
                .map_err(|e| RenderFailure::Template(format!("device {}: firmware.version: {e}", device.mac)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_written_url_changes_the_key() {
        let on_target = FirmwarePlan { target: Some("2.0".into()), image: None, missing: false };
        assert_eq!(on_target.key_suffix(), "");
        let image = Arc::new(ResourceFile {
            name: "x.rom".into(),
            kind: crate::resources::ResourceKind::Firmware,
            sha256: "00".into(),
            size: 1,
            vendor: Some("yealink".into()),
            models: vec!["T46S".into()],
            version: Some("2.0".into()),
            access: crate::resources::FileAccess::Open,
            added_at: 0,
            added_by: "test".into(),
        });
        let moving = FirmwarePlan { target: Some("2.0".into()), image: Some(image), missing: false };
        assert_eq!(moving.key_suffix(), "~fw=2.0");
    }
}
