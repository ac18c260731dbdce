//! What the vendors crate says about a stored device: its vendor and model, and whether its
//! file can carry HTTP credentials. A leaf every service may use; it holds no state of its own
//! beyond a small memo.

use sipprov_model::{Mac, Name};
use sipprov_store::DeviceRecord;
use sipprov_vendors::{registry, ModelInfo, Vendor};

/// Why a device, vendor or model in the inventory cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderFailure {
    /// The device names a vendor this build does not know.
    #[error("device {mac} names vendor {vendor:?}, which this server does not know")]
    UnknownVendor {
        /// The device.
        mac: Mac,
        /// The vendor id it names.
        vendor: String,
    },
    /// The device names a model its vendor does not know.
    #[error("device {mac} names model {model:?}, which vendor {vendor} does not know")]
    UnknownModel {
        /// The device.
        mac: Mac,
        /// Its vendor id.
        vendor: String,
        /// The model it names.
        model: String,
    },
    /// The template failed; the message names the file and line, never a setting's value.
    #[error("{0}")]
    Template(String),
}

/// The vendor and model a stored device names.
///
/// Every request for a device's file asks this: the last few pairs each thread found are kept
/// by their shared names ([`Name::same_copy`], two address comparisons), and the registry's
/// look-ups by text (the vendor's id, then its model list) run only for another pair.
pub fn vendor_model(device: &DeviceRecord) -> Result<(&'static dyn Vendor, &'static ModelInfo), RenderFailure> {
    type Memo = (Name, Name, &'static dyn Vendor, &'static ModelInfo);
    /// Pairs kept per thread: a fleet has a handful of vendor and model pairs.
    const MEMO: usize = 8;
    thread_local! {
        static RECENT: std::cell::RefCell<sipprov_model::Recent<Memo, MEMO>> =
            const { std::cell::RefCell::new(sipprov_model::Recent::new()) };
    }
    let same = |m: &&Memo| Name::same_copy(&m.0, &device.vendor) && Name::same_copy(&m.1, &device.model);
    if let Some(found) = RECENT.with(|r| r.borrow().find(same).map(|m| (m.2, m.3))) {
        return Ok(found);
    }
    let (vendor, model) = look_up_vendor_model(device)?;
    let entry = (device.vendor.clone(), device.model.clone(), vendor, model);
    RECENT.with(|r| r.borrow_mut().push(entry));
    Ok((vendor, model))
}

/// [`vendor_model`] without the memo.
fn look_up_vendor_model(device: &DeviceRecord) -> Result<(&'static dyn Vendor, &'static ModelInfo), RenderFailure> {
    let vendor = registry()
        .get(&device.vendor)
        .ok_or_else(|| RenderFailure::UnknownVendor { mac: device.mac, vendor: device.vendor.to_string() })?;
    let model = vendor.model(&device.model).ok_or_else(|| RenderFailure::UnknownModel {
        mac: device.mac,
        vendor: device.vendor.to_string(),
        model: device.model.to_string(),
    })?;
    Ok((vendor, model))
}

/// True when the device's file can hand the phone HTTP credentials
/// ([`Vendor::http_credential_parameters`]).
/// Remembered per vendor and model (a bounded set): imports and start-up ask for every device.
pub fn can_carry_credentials(device: &DeviceRecord) -> bool {
    type Known = std::sync::Mutex<std::collections::HashMap<(&'static str, &'static str), bool>>;
    static KNOWN: std::sync::OnceLock<Known> = std::sync::OnceLock::new();
    let Ok((vendor, model)) = vendor_model(device) else { return false };
    let known = KNOWN.get_or_init(Known::default);
    let key = (vendor.id(), model.name);
    if let Some(answer) = known.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return *answer;
    }
    let answer = !vendor.http_credential_parameters(model).is_empty();
    known.lock().unwrap_or_else(|e| e.into_inner()).insert(key, answer);
    answer
}
