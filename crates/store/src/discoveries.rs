//! PnP sightings of discovered devices: what their SUBSCRIBEs reported (vendor, model,
//! firmware, source address) and when the first and the latest came.

use sipprov_model::Mac;
use sqlx::Row;

use crate::{Store, StoreError};

/// One device's PnP sightings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The device.
    pub mac: Mac,
    /// The vendor id its SUBSCRIBE reported.
    pub vendor: String,
    /// The model it reported.
    pub model: String,
    /// The firmware it reported, if any.
    pub firmware: Option<String>,
    /// The source address (`ip:port`) of its latest SUBSCRIBE.
    pub source: String,
    /// Its first SUBSCRIBE (ms since the epoch).
    pub first_seen: i64,
    /// Its latest SUBSCRIBE (ms since the epoch).
    pub last_seen: i64,
}

impl Store {
    /// Records a SUBSCRIBE of `sighting.mac`: a new row, or the latest report and time on the
    /// existing one (its `first_seen` is kept).
    pub async fn record_sighting(&self, sighting: &Sighting) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO pnp_discoveries (mac, vendor, model, firmware, source, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (mac) DO UPDATE SET vendor = excluded.vendor, model = excluded.model, \
             firmware = excluded.firmware, source = excluded.source, last_seen = excluded.last_seen",
        )
        .bind(sighting.mac.to_string())
        .bind(&sighting.vendor)
        .bind(&sighting.model)
        .bind(sighting.firmware.as_deref())
        .bind(&sighting.source)
        .bind(sighting.first_seen)
        .bind(sighting.last_seen)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every recorded sighting, by MAC.
    pub async fn sightings(&self) -> Result<Vec<Sighting>, StoreError> {
        let rows = sqlx::query(
            "SELECT mac, vendor, model, firmware, source, first_seen, last_seen FROM pnp_discoveries ORDER BY mac",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let mac: String = r.try_get("mac")?;
                Ok(Sighting {
                    mac: mac.parse().map_err(|e: sipprov_model::MacError| StoreError::Corrupt(e.to_string()))?,
                    vendor: r.try_get("vendor")?,
                    model: r.try_get("model")?,
                    firmware: r.try_get("firmware")?,
                    source: r.try_get("source")?,
                    first_seen: r.try_get("first_seen")?,
                    last_seen: r.try_get("last_seen")?,
                })
            })
            .collect()
    }

    /// Forgets a device's sightings (it was approved into a group).
    pub async fn forget_sighting(&self, mac: Mac) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM pnp_discoveries WHERE mac = $1").bind(mac.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
