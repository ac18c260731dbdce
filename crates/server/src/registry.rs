//! The device registry: the one way devices, groups and global settings change.
//!
//! The admin API and PnP discovery both go through it. Every change is written to the store
//! first (in a transaction) and only then to the in-memory inventory, with the render cache
//! dropped for what it touched, so a refused or failed write changes nothing and the next
//! fetch renders from the new settings. What a request carries is checked beforehand with
//! [`validate`], which names the request member or setting key at fault; the registry itself
//! checks every device a change reaches with its merged settings ([`validate::merged`]), since
//! only it sees the other levels (PnP discovery adds devices without that check, as it always
//! has: its devices carry no settings of their own).
//!
//! Every write method takes the [`Actor`] making the change and writes its audit entry
//! ([`crate::access::audit`]) in the store transaction of the change itself, so no change is
//! stored without its record.

pub mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use sipprov_model::{Mac, Settings};
use sipprov_store::{DeviceImport, DevicePatch, DeviceRecord, GroupRecord, NewDevice, Store, StoreError};

use crate::access::{audit, Actor};
use crate::auth::Security;
use crate::cache::RenderCache;
use crate::directories::Directories;
use crate::inventory::Inventory;
use crate::resources::{ResourceCatalog, ResourceKind};

/// Why the registry refused or failed a change; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The change would leave a device with merged settings its vendor refuses
    /// ([`validate::merged`]); the message names the device and what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The store could not write it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Writes devices, groups and global settings, and propagates each change.
pub struct Registry {
    store: Store,
    inventory: Arc<Inventory>,
    cache: Arc<RenderCache>,
    security: Arc<Security>,
    /// For `directory.name` and the `*.file` keys, which must name a directory or a catalog
    /// file of their kind when they are written.
    references: Option<(Arc<Directories>, ResourceCatalog)>,
}

impl Registry {
    /// The registry over the store and the in-memory copies it keeps current.
    pub fn new(store: Store, inventory: Arc<Inventory>, cache: Arc<RenderCache>, security: Arc<Security>) -> Registry {
        Registry { store, inventory, cache, security, references: None }
    }

    /// Checks every `directory.name` and `*.file` written from now on against these
    /// directories and this file catalog.
    pub fn with_references(mut self, directories: Arc<Directories>, catalog: ResourceCatalog) -> Registry {
        self.references = Some((directories, catalog));
        self
    }

    /// Refuses settings that name what does not exist: a `directory.name` naming no directory,
    /// a `ringtone.file`, `wallpaper.file` or `language.file` naming no catalog file of that
    /// kind (an empty value removes the key and names nothing). Checked on what a write sets,
    /// not on what other levels already hold (a removal is refused while a setting names it).
    pub fn check_references(&self, settings: &Settings) -> Result<(), String> {
        let Some((directories, catalog)) = &self.references else { return Ok(()) };
        let named = |key: &str| settings.get(key).filter(|n| !n.is_empty());
        if let Some(name) = named(sipprov_model::known::DIRECTORY_NAME.name()) {
            if !directories.exists(name) {
                return Err(format!(
                    "directory.name: no directory named {name:?} (create it with `sipprov directory import {name} FILE.csv`)"
                ));
            }
        }
        for kind in ResourceKind::ALL {
            let Some((key, _)) = kind.setting_keys() else { continue };
            let Some(name) = named(key) else { continue };
            match catalog.by_name(name) {
                Some(file) if file.kind == kind => {}
                Some(file) => {
                    return Err(format!("{key}: {name:?} is a {} file, not a {} file", file.kind, kind.as_str()))
                }
                None => {
                    return Err(format!(
                        "{key}: no file named {name:?} in the catalog (add it with `sipprov resource add FILE --kind {kind}`)"
                    ))
                }
            }
        }
        Ok(())
    }

    /// Checks new devices against the global and group settings they would merge with
    /// ([`validate::merged`]), before [`Self::add_devices`] writes them.
    pub fn check_new_devices(&self, devices: &[NewDevice]) -> Result<(), String> {
        match self.first_invalid(devices) {
            Some((_, why)) => Err(why),
            None => Ok(()),
        }
    }

    /// [`Self::check_new_devices`] answering which device (its index in `devices`) fails first,
    /// so an import can name its line.
    pub fn first_invalid(&self, devices: &[NewDevice]) -> Option<(usize, String)> {
        let global = self.inventory.global();
        let mut groups: HashMap<&str, Settings> = HashMap::new();
        let no_group = Settings::new();
        for (i, d) in devices.iter().enumerate() {
            let group = match d.group.as_deref() {
                Some(g) => &*groups.entry(g).or_insert_with(|| self.inventory.group(g).unwrap_or_default()),
                None => &no_group,
            };
            let checked = self
                .check_references(&d.settings)
                .and_then(|()| validate::merged(d.mac, &d.vendor, &d.model, [&global, group, &d.settings]));
            if let Err(why) = checked {
                return Some((i, why));
            }
        }
        None
    }

    /// Adds validated devices in one transaction and returns them as stored. One device is
    /// audited as `device.add` with its settings (masked); several as one `device.import`.
    pub async fn add_devices(&self, actor: &Actor, devices: &[NewDevice]) -> Result<Vec<DeviceRecord>, StoreError> {
        let entry = match devices {
            [one] => audit::entry(
                actor,
                "device.add",
                "device",
                &one.mac.to_string(),
                serde_json::json!({
                    "vendor": one.vendor, "model": one.model, "group": one.group,
                    "settings": audit::setting_changes(&Settings::new(), &one.settings),
                }),
            ),
            _ => import_entry(actor, devices),
        };
        let mut added = Vec::with_capacity(devices.len());
        self.insert(devices, &entry, |stored| added.push(stored.clone())).await?;
        Ok(added)
    }

    /// Starts a streamed import: batches go into one store transaction as they are read
    /// ([`DeviceImport::add`]), and [`Self::commit_import`] makes them visible all at once.
    pub async fn begin_import(&self) -> Result<DeviceImport, StoreError> {
        self.store.begin_device_import().await
    }

    /// Commits an import, audited as one `device.import` entry with its count and (a bounded
    /// list of) its MACs, then hands the devices, as stored, to the inventory. `devices` are
    /// the records [`DeviceImport::record`] made of every batch added, in file order: the
    /// inventory takes these very allocations, so an import holds each device once.
    pub async fn commit_import(
        &self,
        actor: &Actor,
        import: DeviceImport,
        devices: Vec<Arc<DeviceRecord>>,
    ) -> Result<usize, StoreError> {
        let entry = audit::entry(
            actor,
            "device.import",
            "device",
            "import",
            audit::import_detail(devices.iter().map(|d| d.mac)),
        );
        let added = import.commit(&entry).await?;
        let macs: Vec<Mac> = devices.iter().map(|d| d.mac).collect();
        self.inventory.put_devices(devices);
        self.cache.invalidate_devices(&macs);
        Ok(added)
    }

    async fn insert(
        &self,
        devices: &[NewDevice],
        entry: &sipprov_store::NewAudit,
        mut each: impl FnMut(&DeviceRecord),
    ) -> Result<usize, StoreError> {
        self.store.insert_devices_audited(devices, entry).await?;
        let mut added = 0;
        for d in devices {
            if let Some(stored) = self.store.get_device(d.mac).await? {
                each(&stored);
                self.device_changed(stored);
                added += 1;
            }
        }
        Ok(added)
    }

    /// Applies a validated patch to `current` and returns the device as stored, unless the
    /// device as the patch would leave it fails [`validate::merged`].
    pub async fn patch_device(
        &self,
        actor: &Actor,
        current: &DeviceRecord,
        patch: &DevicePatch,
    ) -> Result<DeviceRecord, Refused> {
        self.check_patched_device(current, patch).map_err(Refused::Invalid)?;
        let entry =
            audit::entry(actor, "device.patch", "device", &current.mac.to_string(), patch_detail(current, patch));
        let updated = self.store.patch_device_audited(current.mac, patch, &entry).await?;
        self.device_changed(updated.clone());
        Ok(updated)
    }

    /// [`validate::merged`] for a device as a patch would leave it.
    fn check_patched_device(&self, current: &DeviceRecord, patch: &DevicePatch) -> Result<(), String> {
        let mut settings = current.settings.clone();
        if let Some(p) = &patch.settings {
            self.check_references(p)?;
            settings.apply(p);
        }
        let group_name = patch.group.clone().unwrap_or_else(|| current.group.as_deref().map(String::from));
        let group = group_name.as_deref().and_then(|g| self.inventory.group(g)).unwrap_or_default();
        let vendor = patch.vendor.as_deref().unwrap_or(&current.vendor);
        let model = patch.model.as_deref().unwrap_or(&current.model);
        validate::merged(current.mac, vendor, model, [&self.inventory.global(), &group, &settings])
    }

    /// Removes a device, with its first-fetch window and generated credentials.
    pub async fn delete_device(&self, actor: &Actor, mac: Mac) -> Result<(), StoreError> {
        let entry = audit::entry(actor, "device.delete", "device", &mac.to_string(), serde_json::json!({}));
        self.store.delete_device_audited(mac, &entry).await?;
        self.inventory.remove_device(mac);
        self.security.windows.forget(mac);
        self.cache.invalidate_device(mac);
        Ok(())
    }

    /// Applies a validated patch to a group (created if new) and returns it as stored, unless a
    /// device of the group would then fail [`validate::merged`].
    pub async fn patch_group(&self, actor: &Actor, name: &str, patch: &Settings) -> Result<GroupRecord, Refused> {
        self.check_references(patch).map_err(Refused::Invalid)?;
        let before = self.inventory.group(name).unwrap_or_default();
        let mut after = before.clone();
        after.apply(patch);
        let global = self.inventory.global();
        for d in self.inventory.devices().iter().filter(|d| d.group.as_deref() == Some(name)) {
            validate::merged(d.mac, &d.vendor, &d.model, [&global, &after, &d.settings]).map_err(Refused::Invalid)?;
        }
        let changes = serde_json::json!({ "settings": audit::setting_changes(&before, patch) });
        let entry = audit::entry(actor, "group.patch", "group", name, changes);
        let group = self.store.patch_group_audited(name, patch, &entry).await?;
        self.inventory.put_group(name, group.settings.clone());
        self.cache.invalidate_all();
        Ok(group)
    }

    /// Applies a validated patch to the global settings and returns them as stored, unless the
    /// global level on its own, or any device with it, would fail its checks.
    pub async fn patch_global(&self, actor: &Actor, patch: &Settings) -> Result<Settings, Refused> {
        self.check_references(patch).map_err(Refused::Invalid)?;
        let before = self.inventory.global();
        let mut after = before.clone();
        after.apply(patch);
        validate::global_settings(&after).map_err(|e| Refused::Invalid(e.to_string()))?;
        let empty = Settings::new();
        for d in self.inventory.devices() {
            let group = d.group.as_deref().and_then(|g| self.inventory.group(g));
            validate::merged(d.mac, &d.vendor, &d.model, [&after, group.as_ref().unwrap_or(&empty), &d.settings])
                .map_err(Refused::Invalid)?;
        }
        let changes = serde_json::json!({ "settings": audit::setting_changes(&before, patch) });
        let entry = audit::entry(actor, "settings.patch", "settings", "global", changes);
        let settings = self.store.patch_global_settings_audited(patch, &entry).await?;
        self.inventory.set_global(settings.clone());
        self.cache.invalidate_all();
        Ok(settings)
    }

    /// Settings changed for one device.
    fn device_changed(&self, device: DeviceRecord) {
        let mac = device.mac;
        if let Some(group) = &device.group {
            self.inventory.ensure_group(group);
        }
        self.inventory.put_device(device);
        self.cache.invalidate_device(mac);
    }
}

/// What a device patch changes, for the audit trail: each member given with its old and new
/// value, and the settings' keys (masked).
fn patch_detail(current: &DeviceRecord, patch: &DevicePatch) -> serde_json::Value {
    let mut detail = serde_json::Map::new();
    let mut member = |name: &str, old: serde_json::Value, new: serde_json::Value| {
        detail.insert(name.to_string(), serde_json::json!({ "old": old, "new": new }));
    };
    if let Some(v) = &patch.vendor {
        member("vendor", current.vendor.to_string().into(), v.clone().into());
    }
    if let Some(m) = &patch.model {
        member("model", current.model.to_string().into(), m.clone().into());
    }
    if let Some(g) = &patch.group {
        member("group", current.group.as_deref().map(String::from).into(), g.clone().into());
    }
    if let Some(c) = &patch.contact {
        let shown = |c: Option<&str>| c.map(|c| sipprov_model::redact_uri_password(c).into_owned());
        member("contact", shown(current.contact.as_deref()).into(), shown(c.as_deref()).into());
    }
    if let Some(s) = &patch.settings {
        detail.insert("settings".to_string(), audit::setting_changes(&current.settings, s));
    }
    serde_json::Value::Object(detail)
}

/// The one audit entry of an import.
fn import_entry(actor: &Actor, devices: &[NewDevice]) -> sipprov_store::NewAudit {
    audit::entry(actor, "device.import", "device", "import", audit::import_detail(devices.iter().map(|d| d.mac)))
}
