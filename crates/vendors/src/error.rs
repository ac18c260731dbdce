//! Why a vendor refuses a device: the errors the crate's boundary returns.
//!
//! [`Refused`] is a vendor's refusal of settings ([`crate::Vendor::validate_device`],
//! [`crate::Vendor::validate_merged`], [`crate::Vendor::validate_global`]), in words naming
//! the setting at fault. [`DeviceError`] adds what [`crate::find_model`] and
//! [`crate::validate_device`] can say besides: the vendor or the model is unknown, so a caller
//! can tell which part of a request is wrong without reading the message.

use std::fmt;

/// A vendor's refusal of settings, naming the setting at fault (never a secret value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    /// The message, for a caller that shows or wraps it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// The vendor checks are written with messages built in place; `?` turns them into a refusal.
impl From<String> for Refused {
    fn from(message: String) -> Refused {
        Refused(message)
    }
}

impl From<&str> for Refused {
    fn from(message: &str) -> Refused {
        Refused(message.to_string())
    }
}

/// Why a device's vendor, model or settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No vendor of this id; `provisionable` lists the ids that have models.
    UnknownVendor {
        /// The id asked for.
        vendor: String,
        /// The vendors that can provision something.
        provisionable: Vec<&'static str>,
    },
    /// The vendor has no model of this name.
    UnknownModel {
        /// The vendor's id.
        vendor: &'static str,
        /// The vendor's name for people (`Yealink`), said when it has no model at all.
        vendor_name: &'static str,
        /// The model asked for.
        model: String,
        /// The vendor's models (empty: recognised but not provisionable yet).
        known: Vec<&'static str>,
    },
    /// The vendor refuses the device's settings.
    Refused(#[from] Refused),
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::UnknownVendor { vendor, provisionable } => {
                write!(f, "unknown vendor {vendor:?}; provisionable vendors: {}", provisionable.join(", "))
            }
            DeviceError::UnknownModel { vendor_name, model, known, .. } if known.is_empty() => {
                write!(f, "unknown model {model:?}: {vendor_name} devices are recognised but cannot be provisioned yet")
            }
            DeviceError::UnknownModel { vendor, model, known, .. } => {
                write!(f, "unknown model {model:?} for vendor {vendor}; known models: {}", known.join(", "))
            }
            DeviceError::Refused(r) => r.fmt(f),
        }
    }
}
