//! Derived resource URLs: `directory.name` → `directory.url`, and `ringtone.file`,
//! `wallpaper.file`, `language.file` → `ringtone.url`, `wallpaper.url`, `language.url`, written
//! into a device's merged settings at render time, before the vendor renders, so the vendor's
//! mapping of the URL key makes the phone fetch it.
//!
//! A URL is the base the device already provisions from (the origin and path of its merged
//! `provisioning.url`, else `[pnp] url`) plus the server's path for it (`/directory/<MAC>.xml`,
//! or the catalog file's [`crate::resources::ResourceCatalog::url_path`]). A `*.file` naming no catalog file of
//! its kind (it was checked when written, and a named file cannot be removed) fails the render
//! with an error naming the key.
//! It is derived only where the vendor maps the URL key (a vendor that refuses the key on its
//! devices, such as Polycom, which fetches `<MAC>-directory.xml` by itself, gets nothing), and
//! replaces a URL set by hand (the managed name wins, as for `firmware.version`). Without a base,
//! the render fails with an error naming `provisioning.url`.

use sipprov_model::{known, Mac, Settings};
use sipprov_store::DeviceRecord;
use sipprov_vendors::{ModelInfo, Vendor};

use super::Files;
use crate::catalog::RenderFailure;
use crate::resources::ResourceKind;

impl Files {
    /// Adds the URLs derived from the device's resource names to its merged `settings`.
    pub(crate) fn resource_urls(
        &self,
        device: &DeviceRecord,
        vendor: &'static dyn Vendor,
        model: &'static ModelInfo,
        settings: &mut Settings,
    ) -> Result<(), RenderFailure> {
        let mut derived: Vec<(&str, Vec<String>)> = Vec::new();
        if settings.get_key(&known::DIRECTORY_NAME).is_some_and(|n| !n.is_empty()) {
            derived.push((known::DIRECTORY_URL.name(), directory_paths(device.mac).to_vec()));
        }
        for kind in ResourceKind::ALL {
            let Some((file_key, url_key)) = kind.setting_keys() else { continue };
            let Some(name) = settings.get(file_key).filter(|n| !n.is_empty()) else { continue };
            let file = self.resources.by_name(name).filter(|f| f.kind == kind).ok_or_else(|| {
                RenderFailure::Template(format!(
                    "device {}: {file_key} names {name:?}, which is not a {} file in the catalog",
                    device.mac,
                    kind.as_str()
                ))
            })?;
            derived.push((url_key, vec![self.resources.url_path(&file, device.mac)]));
        }
        let base = self.derived_base(settings);
        for (key, paths) in derived {
            // A managed name wins over a `*.url` set by hand, at whatever level either is set,
            // as `firmware.version` wins over `firmware.url`: one rule, and naming a managed
            // file or directory is the more deliberate choice.
            // The first of the paths the vendor takes for this key (Grandstream wants a URL
            // ending in phonebook.xml); none when it does not map the key at all.
            let probe_base = base.as_deref().unwrap_or("http://probe.invalid");
            let Some(path) = paths.iter().find(|p| vendor_takes(vendor, model, key, &format!("{probe_base}{p}")))
            else {
                continue;
            };
            let base = base.as_deref().ok_or_else(|| {
                RenderFailure::Template(format!(
                    "cannot derive {key} for device {}: set provisioning.url (or [pnp] url) so the server \
                     knows the address the phone reaches it at",
                    device.mac
                ))
            })?;
            settings
                .set(key, &format!("{base}{path}"))
                .map_err(|e| RenderFailure::Template(format!("device {}: derived {e}", device.mac)))?;
        }
        Ok(())
    }
}

/// The paths a device's directory is served under on the provisioning listener, in order of
/// preference: its own file, then the `phonebook.xml` form for phones that take a directory.
fn directory_paths(mac: Mac) -> [String; 2] {
    [format!("/directory/{mac}.xml"), format!("/directory/{mac}/phonebook.xml")]
}

/// True when the vendor writes `key` = `url` on devices of `model`: its device checks refuse
/// the keys it does not map, and URLs its parameters cannot carry.
fn vendor_takes(vendor: &'static dyn Vendor, model: &'static ModelInfo, key: &str, url: &str) -> bool {
    let probe: Settings = [(key.to_string(), url.to_string())].into_iter().collect();
    vendor.validate_device(model, &probe).is_ok()
}

#[cfg(test)]
mod tests {
    use sipprov_vendors::registry;

    use super::{directory_paths, vendor_takes};

    #[test]
    fn each_vendor_gets_a_directory_path_it_takes_or_none() {
        let paths = directory_paths("001565aabbcc".parse().unwrap());
        let takes = |vendor: &str, model: &str| {
            let v = registry().get(vendor).unwrap();
            let m = v.model(model).unwrap();
            paths.iter().position(|p| vendor_takes(v, m, "directory.url", &format!("http://p.example{p}")))
        };
        assert_eq!(takes("polycom", "VVX400"), None, "Polycom fetches <MAC>-directory.xml by itself");
        assert_eq!(takes("yealink", "T46S"), Some(0));
        assert_eq!(takes("grandstream", "GXP2170"), Some(1), "Grandstream wants …/phonebook.xml");
    }
}
