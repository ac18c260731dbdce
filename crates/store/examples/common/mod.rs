//! What the store's bench examples share: a fleet of plain Yealink devices.

use sipprov_model::{Mac, Settings};
use sipprov_store::{NewDevice, Store, StoreError};

/// Adds `devices` Yealink T46S devices without settings (MACs `001565000000` upwards) and
/// returns their MACs, in order.
pub(crate) async fn add_yealink_devices(store: &Store, devices: u32) -> Result<Vec<Mac>, StoreError> {
    let macs: Vec<Mac> =
        (0..devices).map(|n| Mac::from_bytes([0, 0x15, 0x65, (n >> 16) as u8, (n >> 8) as u8, n as u8])).collect();
    let new_devices: Vec<NewDevice> = macs
        .iter()
        .map(|m| NewDevice {
            mac: *m,
            vendor: "yealink".into(),
            model: "T46S".into(),
            group: None,
            contact: None,
            settings: Settings::new(),
        })
        .collect();
    store.insert_devices(&new_devices).await?;
    Ok(macs)
}
