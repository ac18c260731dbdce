//! Checks on what the admin API receives, before anything is written.
//!
//! A refusal is an [`Invalid`]: the message, and the request member or setting key at fault,
//! which the API answers as the problem document's `field`.

use sipprov_api::PatchDevice;
use sipprov_model::{Mac, SettingError, Settings};
use sipprov_store::{DevicePatch, DeviceRecord, NewDevice};
use sipprov_vendors::{registry, DeviceError, ModelInfo, Vendor};

/// Why a request was refused, and the member or setting key at fault when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The request member (`mac`, `vendor`, `group`…) or setting key at fault.
    pub field: Option<String>,
    /// What is wrong, naming the field; never a value that might be a secret.
    pub message: String,
}

impl Invalid {
    /// A refusal of `field`.
    pub fn at(field: &str, message: impl Into<String>) -> Invalid {
        Invalid { field: Some(field.to_string()), message: message.into() }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Invalid> for String {
    fn from(e: Invalid) -> String {
        e.message
    }
}

impl From<SettingError> for Invalid {
    /// A refused setting names its key; an argument that is not `KEY=VALUE` names nothing.
    fn from(e: SettingError) -> Invalid {
        let field = match &e {
            SettingError::BadKey { key, .. } | SettingError::BadValue { key, .. } => Some(key.clone()),
            SettingError::NotAssignment { .. } => None,
        };
        Invalid { field, message: e.to_string() }
    }
}

/// Checks a group name: 1 to 64 letters, digits, `.`, `_` or `-`.
pub fn group_name(name: &str) -> Result<(), Invalid> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Invalid::at("group", format!("invalid group name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-'")))
    }
}

/// Finds a vendor and one of its models ([`sipprov_vendors::find_model`]), naming the request
/// member at fault: `vendor` when the vendor is unknown, else `model`.
pub fn vendor_model(vendor: &str, model: &str) -> Result<(&'static dyn Vendor, &'static ModelInfo), Invalid> {
    sipprov_vendors::find_model(vendor, model).map_err(|e| {
        let field = match e {
            DeviceError::UnknownVendor { .. } => "vendor",
            DeviceError::UnknownModel { .. } | DeviceError::Refused(_) => "model",
        };
        Invalid::at(field, e.to_string())
    })
}

/// Checks a SIP contact URI (where check-sync reaches the device).
pub fn contact(uri: &str) -> Result<(), Invalid> {
    let lower = uri.to_ascii_lowercase();
    let rest = lower.strip_prefix("sip:").or_else(|| lower.strip_prefix("sips:"));
    match rest {
        Some(r) if !r.is_empty() && !uri.contains(|c: char| c.is_whitespace() || c.is_control()) => Ok(()),
        _ => Err(Invalid::at(
            "contact",
            format!(
                "invalid contact {:?}: expected a sip: or sips: URI such as sip:1001@192.0.2.10:5060",
                sipprov_model::redact_uri_password(uri)
            ),
        )),
    }
}

/// Validates everything about a device to add and returns it in canonical form.
pub fn validate_new_device(
    mac: &str,
    vendor_id: &str,
    model_name: &str,
    group: Option<String>,
    contact_uri: Option<String>,
    settings: Settings,
) -> Result<NewDevice, Invalid> {
    let mac: Mac = mac.parse().map_err(|e: sipprov_model::MacError| Invalid::at("mac", e.to_string()))?;
    if mac.is_placeholder() {
        return Err(Invalid::at("mac", format!("MAC {mac} is a placeholder, not a device")));
    }
    let (vendor, model) = vendor_model(vendor_id, model_name)?;
    let group = group.filter(|g| !g.is_empty());
    if let Some(g) = &group {
        group_name(g)?;
    }
    let contact_uri = contact_uri.filter(|c| !c.is_empty());
    if let Some(c) = &contact_uri {
        contact(c)?;
    }
    let settings = sipprov_vendors::validated(settings)?;
    // An empty value means "remove" in a patch; on a new device it simply sets nothing.
    let settings: Settings =
        settings.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    device_rules(vendor, model, &settings)?;
    Ok(NewDevice {
        mac,
        vendor: vendor.id().to_string(),
        model: model.name.to_string(),
        group,
        contact: contact_uri,
        settings,
    })
}

/// Validates a device change against the device's current vendor and model.
pub fn device_patch(current: &DeviceRecord, body: PatchDevice) -> Result<DevicePatch, Invalid> {
    let vendor_id = body.vendor.clone().unwrap_or_else(|| current.vendor.to_string());
    let model_name = body.model.clone().unwrap_or_else(|| current.model.to_string());
    let (vendor, model) = vendor_model(&vendor_id, &model_name)?;
    if let Some(g) = body.group.as_deref().filter(|g| !g.is_empty()) {
        group_name(g)?;
    }
    if let Some(c) = body.contact.as_deref().filter(|c| !c.is_empty()) {
        contact(c)?;
    }
    let settings = body.settings.map(sipprov_vendors::validated).transpose()?;
    let mut after = current.settings.clone();
    if let Some(patch) = &settings {
        after.apply(patch);
    }
    device_rules(vendor, model, &after)?;
    Ok(DevicePatch {
        vendor: body.vendor.as_ref().map(|_| vendor.id().to_string()),
        model: (body.model.is_some() || body.vendor.is_some()).then(|| model.name.to_string()),
        group: body.group.map(|g| Some(g).filter(|g| !g.is_empty())),
        contact: body.contact.map(|c| Some(c).filter(|c| !c.is_empty())),
        settings,
    })
}

/// The vendor's rules for one device's own settings ([`sipprov_vendors::validate_device`]); a
/// refusal is about the settings as a whole.
fn device_rules(vendor: &dyn Vendor, model: &ModelInfo, settings: &Settings) -> Result<(), Invalid> {
    sipprov_vendors::validate_device(vendor.id(), model.name, settings)
        .map(drop)
        .map_err(|e| Invalid::at("settings", e.to_string()))
}

/// A vendor's checks of a device's merged settings ([`Vendor::validate_merged`]) with `levels`
/// (global, group, device) as they would be after a change, naming the device in the error.
/// Run for every device a change reaches, so a rule whose parts sit on different levels (a key
/// on the device, a switch on its group) is refused whichever level is changed last.
pub fn merged(mac: Mac, vendor: &str, model: &str, levels: [&Settings; 3]) -> Result<(), String> {
    let Some((v, m)) = registry().get(vendor).and_then(|v| Some((v, v.model(model)?))) else { return Ok(()) };
    v.validate_merged(m, &Settings::merged(levels)).map_err(|e| format!("device {mac}: {e}"))
}

/// Settings that exist only at the global level, refused in a group's settings
/// ([`sipprov_vendors::check_group_settings`]).
pub fn group_settings(patch: &Settings) -> Result<(), Invalid> {
    sipprov_vendors::check_group_settings(patch).map_err(|e| Invalid::at(&e.key, e.message))
}

/// Checks the global level on its own, for rules that hold even without devices
/// ([`sipprov_vendors::check_global_settings`]).
pub fn global_settings(after: &Settings) -> Result<(), sipprov_vendors::Refused> {
    sipprov_vendors::check_global_settings(after)
}
