//! The device registry: the one way devices, groups and global settings change.
//!
//! The admin API and PnP discovery both go through it. Every change is written to the store
//! first (in a transaction) and only then to the in-memory inventory, with the render cache
//! dropped for what it touched, so a refused or failed write changes nothing and the next
//! fetch renders from the new settings. What is written is checked beforehand with
//! [`validate`], which names the request member or setting key at fault.

pub mod validate;

use std::sync::Arc;

use sipprov_model::{Mac, Settings};
use sipprov_store::{DevicePatch, DeviceRecord, GroupRecord, NewDevice, Store, StoreError};

use crate::auth::Security;
use crate::cache::RenderCache;
use crate::inventory::Inventory;

/// Writes devices, groups and global settings, and propagates each change.
pub struct Registry {
    store: Store,
    inventory: Arc<Inventory>,
    cache: Arc<RenderCache>,
    security: Arc<Security>,
}

impl Registry {
    /// The registry over the store and the in-memory copies it keeps current.
    pub fn new(store: Store, inventory: Arc<Inventory>, cache: Arc<RenderCache>, security: Arc<Security>) -> Registry {
        Registry { store, inventory, cache, security }
    }

    /// Adds validated devices in one transaction and returns them as stored.
    pub async fn add_devices(&self, devices: &[NewDevice]) -> Result<Vec<DeviceRecord>, StoreError> {
        self.store.insert_devices(devices).await?;
        let mut added = Vec::with_capacity(devices.len());
        for d in devices {
            if let Some(stored) = self.store.get_device(d.mac).await? {
                self.device_changed(stored.clone());
                added.push(stored);
            }
        }
        Ok(added)
    }

    /// Applies a validated patch to one device and returns it as stored.
    pub async fn patch_device(&self, mac: Mac, patch: &DevicePatch) -> Result<DeviceRecord, StoreError> {
        let updated = self.store.patch_device(mac, patch).await?;
        self.device_changed(updated.clone());
        Ok(updated)
    }

    /// Removes a device, with its first-fetch window and generated credentials.
    pub async fn delete_device(&self, mac: Mac) -> Result<(), StoreError> {
        self.store.delete_device(mac).await?;
        self.inventory.remove_device(mac);
        self.security.windows.forget(mac);
        self.cache.invalidate_device(mac);
        Ok(())
    }

    /// Applies a validated patch to a group (created if new) and returns it as stored.
    pub async fn patch_group(&self, name: &str, patch: &Settings) -> Result<GroupRecord, StoreError> {
        let group = self.store.patch_group(name, patch).await?;
        self.inventory.put_group(name, group.settings.clone());
        self.cache.invalidate_all();
        Ok(group)
    }

    /// Applies a validated patch to the global settings and returns them as stored.
    pub async fn patch_global(&self, patch: &Settings) -> Result<Settings, StoreError> {
        let settings = self.store.patch_global_settings(patch).await?;
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
