//! The shape Snom, Grandstream and Cisco share, written once: one XML file per device and no
//! model-wide file, raw `vendor.<name>` parameters that must be names of the vendor's own syntax
//! (other vendors' raw names inherited from the global or group level are left out of the
//! file, a device's own are refused), and neutral settings no parameter carries refused by name.
//! Each module keeps what differs: its models, UA parser, parameter table and extra checks.

use sipprov_model::{Mac, Settings};

use crate::mapping;
use crate::{FileScope, FileSpec, ModelInfo, Refused, VendorParam};

/// One vendor's instance of the shape.
pub(crate) struct OneXmlFile {
    /// The vendor's display name, for messages.
    pub(crate) vendor: &'static str,
    /// Refuses lines beyond what the model (or sipprov's table for it) has; usually
    /// [`mapping::check_max_lines`].
    pub(crate) check_lines: fn(&ModelInfo, &Settings) -> Result<(), String>,
    /// The device file's template.
    pub(crate) template: &'static str,
    /// True for a name that can be one of the vendor's parameters.
    pub(crate) is_raw_name: fn(&str) -> bool,
    /// What such a name looks like, for the refusal of a device's own raw setting.
    pub(crate) raw_name_rule: &'static str,
    /// Neutral settings no parameter carries, with why (`line.N.label` stands for every line).
    pub(crate) unmapped: &'static [(&'static str, &'static str)],
}

impl OneXmlFile {
    /// The device's one file, `name` plus `aliases`.
    pub(crate) fn device_file(&self, name: String, aliases: Vec<String>) -> Vec<FileSpec> {
        vec![FileSpec {
            name,
            aliases,
            template: self.template,
            scope: FileScope::Device,
            content_type: "application/xml",
            name_pattern: None,
        }]
    }

    /// The MAC of `<prefix><12 hex>.xml` (any case), the device file's name shape.
    pub(crate) fn mac_in_file_name(file_name: &str, prefix: &str) -> Option<Mac> {
        let head = file_name.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix))?;
        crate::ua::mac_file(&file_name[head.len()..], &["xml"])
    }

    /// Drops parameters whose name cannot be the vendor's: `vendor.` settings apply to every
    /// vendor, and one meant for another (an AudioCodes `section/key`, set globally) would break
    /// every file of this one.
    pub(crate) fn own_params(&self, mut params: Vec<VendorParam>) -> Vec<VendorParam> {
        params.retain(|p| (self.is_raw_name)(&p.name));
        params
    }

    /// A device's checks: its line count ([`OneXmlFile::check_lines`]), then the vendor's `specific` checks, then the neutral
    /// settings no parameter carries, then the device's own raw names.
    pub(crate) fn validate_device(
        &self,
        model: &ModelInfo,
        settings: &Settings,
        specific: impl FnOnce() -> Result<(), Refused>,
    ) -> Result<(), Refused> {
        (self.check_lines)(model, settings)?;
        specific()?;
        mapping::refuse_unmapped(settings, self.vendor, self.unmapped)?;
        Ok(mapping::check_raw_names(settings, self.is_raw_name, self.raw_name_rule)?)
    }
}
