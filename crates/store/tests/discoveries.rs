//! PnP sightings against a real SQLite file (and PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set).

mod common;

use common::{device, stores};
use sipprov_model::Mac;
use sipprov_store::Sighting;

fn sighting(mac: Mac, firmware: Option<&str>, source: &str, at: i64) -> Sighting {
    Sighting {
        mac,
        vendor: "yealink".into(),
        model: "T46S".into(),
        firmware: firmware.map(str::to_string),
        source: source.into(),
        first_seen: at,
        last_seen: at,
    }
}

#[tokio::test]
async fn sightings_keep_the_first_time_and_the_latest_report_and_go_with_the_device() {
    for (store, _dir) in stores().await {
        let mac: Mac = "001565000001".parse().unwrap();
        store.insert_devices(&[device("001565000001", Some("discovered"))]).await.unwrap();
        store.record_sighting(&sighting(mac, Some("66.86.0.15"), "127.0.0.1:5060", 1_000)).await.unwrap();
        store.record_sighting(&sighting(mac, None, "127.0.0.2:5062", 5_000)).await.unwrap();
        let all = store.sightings().await.unwrap();
        assert_eq!(all, vec![Sighting { first_seen: 1_000, ..sighting(mac, None, "127.0.0.2:5062", 5_000) }]);

        store.forget_sighting(mac).await.unwrap();
        assert!(store.sightings().await.unwrap().is_empty());
        store.record_sighting(&sighting(mac, None, "127.0.0.1:5060", 7_000)).await.unwrap();
        store.delete_device(mac).await.unwrap();
        assert!(store.sightings().await.unwrap().is_empty(), "removing the device removes its sightings");
    }
}
