//! What the store's bench examples share: a fleet of plain Yealink devices.

use sipprov_model::{CheckSyncResult, Mac, Settings};
use sipprov_store::{NewCampaign, NewDevice, NotifyResult, Store, StoreError};

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

/// A campaign as `sipprov resync --all --rate 100000 --max-in-flight 500 --confirm-window 3600`
/// creates it, starting at once.
#[allow(dead_code)] // Each example compiles this module on its own; not every one makes a campaign.
pub(crate) fn campaign_over_all() -> NewCampaign {
    NewCampaign {
        start_at: 0,
        reboot: false,
        rate: 100_000,
        max_in_flight: 500,
        confirm_window_ms: 3_600_000,
        selector: "--all".into(),
    }
}

/// What a campaign records for phones that answered 200 on loopback at `at`, each expected to
/// fetch its `<mac>.cfg`.
#[allow(dead_code)] // As above.
pub(crate) fn answered_ok(macs: &[Mac], at: i64) -> Vec<(Mac, NotifyResult)> {
    macs.iter()
        .map(|mac| {
            let result = NotifyResult {
                result: CheckSyncResult::Ok,
                status: Some(200),
                reason: "OK".into(),
                expected_file: Some(format!("{mac}.cfg")),
                at,
            };
            (*mac, result)
        })
        .collect()
}
