//! A device import streamed in batches: one write transaction that each batch goes into as it
//! is read, so a file of a million rows is never held whole, and still all or nothing.
//!
//! The import holds the store's writer turn from [`Store::begin_device_import`] until
//! [`DeviceImport::commit`] or until it is dropped (which rolls everything back): other writes
//! wait meanwhile, as they would behind one large INSERT.

use sipprov_model::Name;

use crate::change_feed::ChangeKind;
use crate::{now_ms, DeviceRecord, NewAudit, NewDevice, Store, StoreError, WriteTx};

/// An import under way. Dropping it without [`DeviceImport::commit`] writes nothing.
pub struct DeviceImport {
    store: Store,
    tx: WriteTx,
    now: i64,
    added: usize,
}

impl Store {
    /// Starts an import: a write transaction that [`DeviceImport::add`] fills batch by batch.
    pub async fn begin_device_import(&self) -> Result<DeviceImport, StoreError> {
        let tx = self.write_tx().await?;
        Ok(DeviceImport { store: self.clone(), tx, now: now_ms(), added: 0 })
    }
}

impl DeviceImport {
    /// Adds a batch: refused (and the whole import with it, once dropped) if a MAC is stored
    /// already or appears twice in the batch. Groups the devices name are created when missing.
    pub async fn add(&mut self, devices: &[NewDevice]) -> Result<(), StoreError> {
        self.store.insert_device_rows(&mut self.tx, devices, self.now).await?;
        self.added += devices.len();
        Ok(())
    }

    /// How many devices were added so far.
    pub fn added(&self) -> usize {
        self.added
    }

    /// A device of this import as the store holds it once committed (the rows are stamped with
    /// the import's start), without reading it back.
    pub fn record(&self, device: NewDevice) -> DeviceRecord {
        DeviceRecord {
            mac: device.mac,
            vendor: device.vendor.into(),
            model: device.model.into(),
            group: device.group.map(Name::from),
            contact: device.contact.map(String::into_boxed_str),
            settings: device.settings,
            created_at: self.now,
            updated_at: self.now,
            last_fetch: None,
        }
    }

    /// Writes `audit` and commits every batch at once; returns how many devices were added.
    pub async fn commit(mut self, audit: &NewAudit) -> Result<usize, StoreError> {
        self.store.insert_audit(&mut self.tx, audit).await?;
        self.store.record_change(&mut self.tx, ChangeKind::Devices, "").await?;
        self.tx.commit().await?;
        Ok(self.added)
    }

    /// Rolls everything back now (dropping the import does too, a little later).
    pub async fn abort(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
