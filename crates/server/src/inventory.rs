//! The in-memory copy of the inventory, so serving a phone touches no database.
//!
//! The store stays the source of truth: the admin API writes there first and
//! only then updates this copy, so a failed write changes nothing here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sipprov_model::{Mac, MacMap, Settings};
use sipprov_store::{DeviceRecord, FetchInfo, Store, StoreError};

/// Devices, group settings and global settings, as last written to the store.
#[derive(Default)]
pub struct Inventory {
    devices: RwLock<MacMap<Arc<DeviceRecord>>>,
    groups: RwLock<HashMap<String, Settings>>,
    global: RwLock<Settings>,
}

// A poisoned lock only means a panic happened while it was held; the map itself
// is still consistent (every update is a single insert or remove), so keep going.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Inventory {
    /// Loads everything from the store.
    pub async fn load(store: &Store) -> Result<Inventory, StoreError> {
        Inventory::load_taking_fetches(store, drop).await
    }

    /// Loads everything from the store, handing each device's last fetch to `take` rather than
    /// keeping it in the record: the last-seen index holds it (compactly), and a million
    /// devices that all fetched would otherwise hold it twice.
    pub async fn load_taking_fetches(store: &Store, mut take: impl FnMut(FetchInfo)) -> Result<Inventory, StoreError> {
        // Sized once: growing a million-entry table doubles it, and the peak holds both.
        let mut devices = MacMap::with_capacity_and_hasher(store.device_count().await?, Default::default());
        store
            .for_each_device_then_fetch(
                |mut d| {
                    d.settings.shrink_to_fit();
                    devices.insert(d.mac, Arc::new(d));
                },
                &mut take,
            )
            .await?;
        devices.shrink_to_fit();
        let groups = store.list_groups().await?;
        let global = store.global_settings().await?;
        Ok(Inventory {
            devices: RwLock::new(devices),
            groups: RwLock::new(groups.into_iter().map(|g| (g.name, g.settings)).collect()),
            global: RwLock::new(global),
        })
    }

    /// Replaces everything with what the store holds now (a node's full resync: another node
    /// changed things this one may have missed). Loaded first, swapped in under the locks.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = Inventory::load(store).await?;
        *write(&self.devices) = fresh.devices.into_inner().unwrap_or_else(|e| e.into_inner());
        *write(&self.groups) = fresh.groups.into_inner().unwrap_or_else(|e| e.into_inner());
        *write(&self.global) = fresh.global.into_inner().unwrap_or_else(|e| e.into_inner());
        Ok(())
    }

    /// One device.
    pub fn device(&self, mac: Mac) -> Option<Arc<DeviceRecord>> {
        read(&self.devices).get(&mac).cloned()
    }

    /// Whether a device exists.
    pub fn contains(&self, mac: Mac) -> bool {
        read(&self.devices).contains_key(&mac)
    }

    /// Every device (a snapshot).
    pub fn devices(&self) -> Vec<Arc<DeviceRecord>> {
        read(&self.devices).values().cloned().collect()
    }

    /// Calls `f` with every device, under the read lock: a walk over the whole inventory
    /// without a snapshot (a million `Arc` clones and their drops). `f` must not write to the
    /// inventory.
    pub fn for_each_device(&self, mut f: impl FnMut(&DeviceRecord)) {
        for device in read(&self.devices).values() {
            f(device);
        }
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        read(&self.devices).len()
    }

    /// True when there are no devices.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces (or adds) a device.
    pub fn put_device(&self, device: DeviceRecord) {
        write(&self.devices).insert(device.mac, Arc::new(device));
    }

    /// Adds (or replaces) many devices under one lock, making sure the groups they name exist:
    /// what an import hands over once committed.
    pub fn put_devices(&self, devices: Vec<Arc<DeviceRecord>>) {
        {
            let mut groups = write(&self.groups);
            for name in devices.iter().filter_map(|d| d.group.as_deref()) {
                if !groups.contains_key(name) {
                    groups.insert(name.to_string(), Settings::new());
                }
            }
        }
        let mut map = write(&self.devices);
        map.reserve(devices.len());
        for d in devices {
            map.insert(d.mac, d);
        }
    }

    /// Forgets a device.
    pub fn remove_device(&self, mac: Mac) {
        write(&self.devices).remove(&mac);
    }

    /// Replaces a group's settings.
    pub fn put_group(&self, name: &str, settings: Settings) {
        write(&self.groups).insert(name.to_string(), settings);
    }

    /// Makes sure a group exists (devices may name a group before it has settings).
    pub fn ensure_group(&self, name: &str) {
        write(&self.groups).entry(name.to_string()).or_default();
    }

    /// Replaces the global settings.
    pub fn set_global(&self, settings: Settings) {
        *write(&self.global) = settings;
    }

    /// The global settings.
    pub fn global(&self) -> Settings {
        read(&self.global).clone()
    }

    /// A group's settings, if the group exists.
    pub fn group(&self, name: &str) -> Option<Settings> {
        read(&self.groups).get(name).cloned()
    }

    /// What a device's templates see: global, then its group, then its own settings.
    pub fn merged_settings(&self, device: &DeviceRecord) -> Settings {
        let global = read(&self.global);
        let groups = read(&self.groups);
        let empty = Settings::new();
        let group = device.group.as_deref().and_then(|g| groups.get(g)).unwrap_or(&empty);
        Settings::merged([&*global, group, &device.settings])
    }

    /// The value of one key in a device's merged settings (device, else its group, else
    /// global), without building a settings set: the request path asks for one key per fetch.
    pub fn merged_value(&self, device: &DeviceRecord, key: &str) -> Option<String> {
        if let Some(value) = device.settings.get(key) {
            return Some(value.to_string());
        }
        let from_group = device.group.as_deref().and_then(|g| read(&self.groups).get(g)?.get(key).map(str::to_string));
        from_group.or_else(|| read(&self.global).get(key).map(str::to_string))
    }

    /// The global settings restricted to `keys`, without copying the rest.
    pub fn global_keys(&self, keys: &[&str]) -> Settings {
        Settings::merged_keys([&*read(&self.global)], keys)
    }

    /// The levels whose own settings set `key` to `value`: `global`, `group NAME`, `device MAC`
    /// (at most 20, then `…`), for refusing to remove what a setting still names.
    pub fn levels_with(&self, key: &str, value: &str) -> Vec<String> {
        const MAX_SHOWN: usize = 20;
        let mut out = Vec::new();
        if read(&self.global).get(key) == Some(value) {
            out.push("global".to_string());
        }
        let mut groups: Vec<String> = read(&self.groups)
            .iter()
            .filter(|(_, s)| s.get(key) == Some(value))
            .map(|(g, _)| format!("group {g}"))
            .collect();
        groups.sort();
        out.extend(groups);
        for d in read(&self.devices).values().filter(|d| d.settings.get(key) == Some(value)) {
            if out.len() == MAX_SHOWN {
                out.push("…".to_string());
                break;
            }
            out.push(format!("device {}", d.mac));
        }
        out
    }

    /// Calls `f` with the device's levels read through ([`Settings::layered`]): what a
    /// reader of a few keys needs, without a merged copy. The inventory's read locks are held
    /// while `f` runs, so it must not wait.
    pub fn with_layers<T>(&self, device: &DeviceRecord, f: impl FnOnce(sipprov_model::Layered<'_>) -> T) -> T {
        let global = read(&self.global);
        let groups = read(&self.groups);
        let empty = Settings::new();
        let group = device.group.as_deref().and_then(|g| groups.get(g)).unwrap_or(&empty);
        f(Settings::layered(&global, group, &device.settings))
    }

    /// [`Inventory::merged_settings`] restricted to `keys`.
    pub fn merged_keys(&self, device: &DeviceRecord, keys: &[&str]) -> Settings {
        let global = read(&self.global);
        let groups = read(&self.groups);
        let empty = Settings::new();
        let group = device.group.as_deref().and_then(|g| groups.get(g)).unwrap_or(&empty);
        Settings::merged_keys([&*global, group, &device.settings], keys)
    }
}
