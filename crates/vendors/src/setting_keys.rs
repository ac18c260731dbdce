//! Setting keys a vendor module owns (`yealink.aes_key`, `fanvil.dialect`), and the validation of
//! settings arriving from outside.
//!
//! The model crate names no vendor: to it `yealink.aes_key` is a free key, checked for shape and
//! control characters only (`sipprov_model::Settings`). Each vendor module declares its own keys
//! under its id ([`Vendor::setting_keys`]) with their validation, and the functions here apply
//! the model's rules and then the owning module's. A namespace is reserved only when its vendor
//! declares keys: `yealink.typo` is refused, `snom.anything` stays a free key for templates.
//! The server and the CLI validate what they receive with [`validate_setting`] /
//! [`validated`] / [`parse_settings`], never with the model's functions alone.
//!
//! ```
//! use sipprov_vendors::{parse_settings, validate_setting};
//! assert_eq!(validate_setting("yealink.aes_key_file", "yes").unwrap(), "1");
//! assert!(validate_setting("yealink.aes_key", "short").unwrap_err().to_string().contains("16 or 32"));
//! assert!(validate_setting("yealink.aes_kye", "0123456789abcdef").is_err());
//! assert_eq!(validate_setting("snom.site", "Blue").unwrap(), "Blue");
//! assert_eq!(parse_settings(["fanvil.dialect=Modern"]).unwrap().get("fanvil.dialect"), Some("modern"));
//! ```

use sipprov_model::{KeyKind, SettingError, Settings};

use crate::{registry, Vendor};

/// One setting key a vendor module owns.
#[derive(Debug, Clone, Copy)]
pub struct VendorKey {
    /// The whole key, `<vendor id>.<name>`, e.g. `yealink.aes_key`.
    pub key: &'static str,
    /// Checks a value and returns it normalised (`yes` → `1`). The error says what the value must
    /// be and never repeats it: it may be a secret.
    pub check: fn(&str) -> Result<String, String>,
    /// Whether the value is a secret (redacted in listings and logs, kept out of common files).
    /// It decides for the key whatever its name says: `yealink.aes_key_file` is a switch.
    pub secret: bool,
    /// Whether the key belongs to the global level only (refused in a group's settings).
    pub global_only: bool,
}

impl VendorKey {
    /// A key whose value may be shown.
    pub const fn plain(key: &'static str, check: fn(&str) -> Result<String, String>) -> VendorKey {
        VendorKey { key, check, secret: false, global_only: false }
    }

    /// A key whose value is a secret.
    pub const fn secret(key: &'static str, check: fn(&str) -> Result<String, String>) -> VendorKey {
        VendorKey { key, check, secret: true, global_only: false }
    }

    /// The same key, accepted at the global level only.
    pub const fn global_only(self) -> VendorKey {
        VendorKey { global_only: true, ..self }
    }
}

/// A boolean value (`sipprov_model::parse_flag`), for [`VendorKey::check`].
pub fn flag(value: &str) -> Result<String, String> {
    sipprov_model::parse_flag(value).map(str::to_string).map_err(str::to_string)
}

/// The vendor owning `key`'s namespace and its declaration of the key: `None` when no vendor
/// declares keys under that namespace, `Some((vendor, None))` for an unknown key in a vendor's.
fn owner(key: &str) -> Option<(&'static dyn Vendor, Option<&'static VendorKey>)> {
    let (namespace, _) = key.split_once('.')?;
    let vendor = registry().vendors().iter().copied().find(|v| v.id() == namespace && !v.setting_keys().is_empty())?;
    Some((vendor, vendor.setting_keys().iter().find(|k| k.key == key)))
}

/// The declaration of a vendor-owned key, if `key` is one.
///
/// ```
/// assert!(sipprov_vendors::vendor_key("yealink.aes_key").unwrap().secret);
/// assert!(sipprov_vendors::vendor_key("line.1.password").is_none());
/// ```
pub fn vendor_key(key: &str) -> Option<&'static VendorKey> {
    owner(key).and_then(|(_, k)| k)
}

/// Classifies a key as the model does, refusing an unknown key in a vendor's namespace with a
/// message listing that vendor's keys.
pub fn classify_setting(key: &str) -> Result<KeyKind, SettingError> {
    let kind = Settings::classify(key)?;
    match owner(key) {
        Some((vendor, None)) => {
            let known: Vec<&str> = vendor.setting_keys().iter().map(|k| k.key).collect();
            Err(SettingError::BadKey {
                key: key.to_string(),
                reason: format!(
                    "unknown key in the reserved {}.* namespace; known keys: {}",
                    vendor.id(),
                    known.join(", ")
                ),
            })
        }
        _ => Ok(kind),
    }
}

/// Validates a key and value with the model's rules, then the owning vendor's; returns the
/// normalised value.
pub fn validate_setting(key: &str, value: &str) -> Result<String, SettingError> {
    classify_setting(key)?;
    let value = Settings::validate(key, value)?;
    match vendor_key(key) {
        Some(k) => (k.check)(&value).map_err(|reason| SettingError::BadValue { key: key.to_string(), reason }),
        None => Ok(value),
    }
}

/// Re-validates every entry of settings received from outside (JSON from the API); an empty
/// value, meaning "remove", only needs a valid key.
pub fn validated(settings: Settings) -> Result<Settings, SettingError> {
    settings
        .iter()
        .map(|(k, v)| {
            let v = if v.is_empty() { classify_setting(k).map(|_| String::new()) } else { validate_setting(k, v) };
            v.map(|v| (k.to_string(), v))
        })
        .collect()
}

/// Parses `KEY=VALUE` assignments (the CLI form) like `Settings::parse_assignments`, with the
/// vendors' keys validated too.
pub fn parse_settings<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Settings, SettingError> {
    validated(Settings::parse_assignments(items)?)
}

/// A setting refused where it was set, and the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyRefusal {
    /// The setting key.
    pub key: String,
    /// Why, naming the key; never the value.
    pub message: String,
}

/// Refuses in a group's settings the keys that belong to the global level only
/// ([`VendorKey::global_only`]).
pub fn check_group_settings(patch: &Settings) -> Result<(), KeyRefusal> {
    let global_only = |k: &str| vendor_key(k).is_some_and(|k| k.global_only);
    match patch.iter().find(|(k, v)| !v.is_empty() && global_only(k)) {
        Some((key, _)) => Err(KeyRefusal {
            key: key.to_string(),
            message: format!("{key} is a global setting: the common file is rendered from global settings only"),
        }),
        None => Ok(()),
    }
}

/// Every vendor's checks of the global level on its own ([`Vendor::validate_global`]).
pub fn check_global_settings(global: &Settings) -> Result<(), crate::Refused> {
    registry().vendors().iter().try_for_each(|v| v.validate_global(global))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_declared_key_lives_under_its_vendor() {
        for v in registry().vendors() {
            for k in v.setting_keys() {
                assert!(k.key.strip_prefix(v.id()).is_some_and(|rest| rest.starts_with('.')), "{}: {}", v.id(), k.key);
                assert_eq!(
                    Settings::classify(k.key),
                    Ok(KeyKind::Custom),
                    "{} is in a namespace the model reserves",
                    k.key
                );
                assert!(std::ptr::eq(vendor_key(k.key).unwrap(), k), "{}", k.key);
            }
        }
    }

    #[test]
    fn values_are_normalised_and_errors_hide_them() {
        assert_eq!(validate_setting("yealink.aes_padding", "SPACE").unwrap(), "space");
        assert!(validate_setting("yealink.aes_padding", "zero").is_err());
        let e = validate_setting("yealink.aes_key", "short-secret").unwrap_err().to_string();
        assert!(e.contains("yealink.aes_key") && !e.contains("short-secret"), "{e}");
        assert!(validate_setting("yealink.common_aes_key", "short").is_err());
        assert!(validate_setting("yealink.aes_key", "0123456789abcdef0123456789abcdef").is_ok());
        assert!(validate_setting("fanvil.dialect", "retro").is_err());
        let e = classify_setting("yealink.aes_kye").unwrap_err().to_string();
        assert!(e.contains("yealink.aes_key_file"), "{e}");
        let patch = validated(Settings::from_iter([("yealink.aes_key_file".to_string(), String::new())])).unwrap();
        assert_eq!(patch.get("yealink.aes_key_file"), Some(""), "a removal stays one");
    }

    #[test]
    fn group_and_global_levels() {
        let common = parse_settings(["yealink.common_aes_key=C0mmon-Key.16chr"]).unwrap();
        assert!(check_group_settings(&common).unwrap_err().message.contains("global setting"));
        assert!(check_group_settings(&parse_settings(["yealink.aes_key_file=1"]).unwrap()).is_ok());
        let long =
            parse_settings(["yealink.common_aes_key=0123456789abcdef0123456789abcdef", "yealink.aes_key_file=1"]);
        assert!(check_global_settings(&long.unwrap()).is_err());
    }
}
