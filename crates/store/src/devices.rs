//! Devices: the inventory rows, their settings, the re-openings of their first-fetch window,
//! and their last fetch as read with them (the `fetches` module writes it).

use std::collections::HashSet;

use futures_util::TryStreamExt;
use sipprov_model::{Mac, Name, Settings};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{batch, mac_column, now_ms, opt_string, settings_to_json, NewAudit, Store, StoreError, WriteTx};

/// Rows a whole-table scan's worker may read ahead of the reader (see `Store::load_connection`):
/// a couple of megabytes of devices at most.
const LOAD_ROWS: usize = 4096;

/// A device to add. Its `Debug` shows no password (contact, settings).
#[derive(Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// The device's MAC address, its identity.
    pub mac: Mac,
    /// Vendor id, as `sipprov_vendors::Vendor::id` spells it (e.g. `yealink`).
    pub vendor: String,
    /// Canonical model name within the vendor (e.g. `T46S`).
    pub model: String,
    /// The group whose settings merge between global and device ones, if any.
    pub group: Option<String>,
    /// Where SIP requests reach the device, e.g. `sip:1001@192.0.2.10:5060`.
    pub contact: Option<String>,
    /// The device's own settings (the top layer of the merge).
    pub settings: Settings,
}

/// A change to a device: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DevicePatch {
    /// Vendor id, as `sipprov_vendors::Vendor::id` spells it (e.g. `yealink`).
    pub vendor: Option<String>,
    /// Canonical model name within the vendor (e.g. `T46S`).
    pub model: Option<String>,
    /// `Some(None)` removes the device from its group.
    pub group: Option<Option<String>>,
    /// `Some(None)` forgets the contact.
    pub contact: Option<Option<String>>,
    /// Applied with [`Settings::apply`]: empty values remove keys.
    pub settings: Option<Settings>,
}

/// What a device last fetched, as recorded by the HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FetchInfo {
    /// The device's MAC address, its identity.
    pub mac: Mac,
    /// When (ms since the epoch).
    pub at: i64,
    /// The source address of the request.
    pub ip: String,
    /// The file name served.
    pub file: String,
    /// SHA-256 (hex) of the bytes served.
    pub hash: String,
    /// The model its User-Agent named, if any.
    pub reported_model: Option<String>,
    /// The firmware version its User-Agent named, if any.
    pub reported_firmware: Option<String>,
}

/// A device as stored. Its `Debug` shows no password (contact, settings).
///
/// The server keeps one per device in memory, so it is kept small: vendor, model and group are
/// [`Name`]s every device naming them shares, the contact a boxed string (no spare capacity
/// word). With the `Arc` that holds it, 128 bytes, one of mimalloc's size classes (it was 160
/// with three `String`s and an `Option<String>`; docs/benchmarks.md, "Session 18 run").
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceRecord {
    /// The device's MAC address, its identity.
    pub mac: Mac,
    /// Vendor id, as `sipprov_vendors::Vendor::id` spells it (e.g. `yealink`).
    pub vendor: Name,
    /// Canonical model name within the vendor (e.g. `T46S`).
    pub model: Name,
    /// The group whose settings merge between global and device ones, if any.
    pub group: Option<Name>,
    /// Where SIP requests reach the device, e.g. `sip:1001@192.0.2.10:5060`.
    pub contact: Option<Box<str>>,
    /// The device's own settings (the top layer of the merge).
    pub settings: Settings,
    /// When the device was added (ms since the epoch).
    pub created_at: i64,
    /// When the device was last changed (ms since the epoch).
    pub updated_at: i64,
    /// What it fetched last, if it ever did. Boxed: most of an inventory has a device's
    /// record in memory, and a never-fetched device then pays a pointer, not the whole record.
    pub last_fetch: Option<Box<FetchInfo>>,
}

// A field more, or a wider one, moves every device in memory up a size class (see
// `DeviceRecord`): 112 bytes plus the `Arc`'s two counts is mimalloc's 128.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<DeviceRecord>() == 112);

/// The columns [`device_from_row`] reads, as a literal so queries stay `&'static str`: each
/// device with what it last fetched (`device_seen`), under the plain column names.
macro_rules! select_devices {
    ($rest:literal) => {
        concat!(
            "SELECT * FROM (SELECT d.mac AS mac, d.vendor AS vendor, d.model AS model, d.group_name AS group_name, \
             d.contact AS contact, d.settings AS settings, d.created_at AS created_at, d.updated_at AS updated_at, \
             s.last_seen_at AS last_seen_at, s.last_ip AS last_ip, s.last_file AS last_file, s.last_hash AS last_hash, \
             s.reported_model AS reported_model, s.reported_firmware AS reported_firmware \
             FROM devices d LEFT JOIN device_seen s ON s.mac = d.mac) AS devices_seen ",
            $rest
        )
    };
}

/// The last fetch of `mac` in a row carrying `device_seen`'s columns; `None` when
/// `last_seen_at` is NULL (a device never seen, through a LEFT JOIN).
pub(crate) fn fetch_info_from_row(row: &AnyRow, mac: Mac) -> Result<Option<FetchInfo>, StoreError> {
    let Some(at) = row.try_get::<Option<i64>, _>("last_seen_at")? else { return Ok(None) };
    Ok(Some(FetchInfo {
        mac,
        at,
        ip: opt_string(row, "last_ip")?.unwrap_or_default(),
        file: opt_string(row, "last_file")?.unwrap_or_default(),
        hash: opt_string(row, "last_hash")?.unwrap_or_default(),
        reported_model: opt_string(row, "reported_model")?,
        reported_firmware: opt_string(row, "reported_firmware")?,
    }))
}

fn device_from_row(row: &AnyRow) -> Result<DeviceRecord, StoreError> {
    let mac_text: String = row.try_get("mac")?;
    let mac: Mac = mac_text.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?;
    let last_fetch = fetch_info_from_row(row, mac)?.map(Box::new);
    Ok(DeviceRecord {
        mac,
        vendor: row.try_get::<String, _>("vendor")?.into(),
        model: row.try_get::<String, _>("model")?.into(),
        group: opt_string(row, "group_name")?.map(Name::from),
        contact: opt_string(row, "contact")?.map(String::into_boxed_str),
        settings: serde_json::from_str(row.try_get::<&str, _>("settings")?)
            .map_err(|e| StoreError::Corrupt(format!("settings of device {mac}: {e}")))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_fetch,
    })
}

/// [`device_from_row`] for a row of sqlx's SQLite driver: text columns are borrowed from the
/// statement and copied once, into the record.
fn device_from_sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeviceRecord, StoreError> {
    let mut device = record_from_sqlite_row(row)?;
    device.last_fetch = fetch_from_sqlite_row(row, device.mac)?.map(Box::new);
    Ok(device)
}

/// A device's own columns (not what it fetched) in a row of sqlx's SQLite driver.
fn record_from_sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeviceRecord, StoreError> {
    // By position, not by name: each look-up of a column by name is a hash of the name, eight
    // a row, a tenth of loading the inventory. Both queries that come here select these
    // columns first, in this order (`select_devices!` and the plain scan of `devices`).
    let text = |col: usize| row.try_get::<Option<&str>, _>(col);
    let mac: Mac = row.try_get::<&str, _>(0)?.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?;
    Ok(DeviceRecord {
        mac,
        vendor: row.try_get::<&str, _>(1)?.into(),
        model: row.try_get::<&str, _>(2)?.into(),
        group: text(3)?.map(Name::from),
        contact: text(4)?.map(Box::from),
        settings: serde_json::from_str(row.try_get::<&str, _>(5)?)
            .map_err(|e| StoreError::Corrupt(format!("settings of device {mac}: {e}")))?,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
        last_fetch: None,
    })
}

/// A device's columns other than its MAC and settings, as `json_array(vendor, model, group_name,
/// contact, created_at, updated_at)` gives them.
#[derive(serde::Deserialize)]
struct PackedDevice(Name, Name, Option<Name>, Option<Box<str>>, i64, i64);

/// `device_seen`'s columns other than the MAC, as `json_array(last_seen_at, last_ip, last_file,
/// last_hash, reported_model, reported_firmware)` gives them.
#[derive(serde::Deserialize)]
struct PackedSeen(Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>, Option<String>);

/// The MAC in a row's first column.
fn mac_of_sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<Mac, StoreError> {
    row.try_get::<&str, _>(0)?.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// A device from `mac, settings, json_array(...)` ([`PackedDevice`]).
fn record_from_packed_row(row: &sqlx::sqlite::SqliteRow) -> Result<DeviceRecord, StoreError> {
    let mac = mac_of_sqlite_row(row)?;
    let settings = serde_json::from_str(row.try_get::<&str, _>(1)?)
        .map_err(|e| StoreError::Corrupt(format!("settings of device {mac}: {e}")))?;
    let PackedDevice(vendor, model, group, contact, created_at, updated_at) =
        serde_json::from_str(row.try_get::<&str, _>(2)?)
            .map_err(|e| StoreError::Corrupt(format!("columns of device {mac}: {e}")))?;
    Ok(DeviceRecord { mac, vendor, model, group, contact, settings, created_at, updated_at, last_fetch: None })
}

/// A last fetch from `mac, json_array(...)` ([`PackedSeen`]); `None` when `last_seen_at` is NULL.
fn fetch_from_packed_row(row: &sqlx::sqlite::SqliteRow) -> Result<Option<FetchInfo>, StoreError> {
    let mac = mac_of_sqlite_row(row)?;
    let PackedSeen(at, ip, file, hash, reported_model, reported_firmware) =
        serde_json::from_str(row.try_get::<&str, _>(1)?)
            .map_err(|e| StoreError::Corrupt(format!("last fetch of device {mac}: {e}")))?;
    let Some(at) = at else { return Ok(None) };
    Ok(Some(FetchInfo {
        mac,
        at,
        ip: ip.unwrap_or_default(),
        file: file.unwrap_or_default(),
        hash: hash.unwrap_or_default(),
        reported_model,
        reported_firmware,
    }))
}

/// The last fetch of `mac` in a row of sqlx's SQLite driver carrying `device_seen`'s columns;
/// `None` when `last_seen_at` is NULL.
fn fetch_from_sqlite_row(row: &sqlx::sqlite::SqliteRow, mac: Mac) -> Result<Option<FetchInfo>, StoreError> {
    let text = |col: &str| row.try_get::<Option<&str>, _>(col).map(|t| t.map(String::from));
    let Some(at) = row.try_get::<Option<i64>, _>("last_seen_at")? else { return Ok(None) };
    Ok(Some(FetchInfo {
        mac,
        at,
        ip: text("last_ip")?.unwrap_or_default(),
        file: text("last_file")?.unwrap_or_default(),
        hash: text("last_hash")?.unwrap_or_default(),
        reported_model: text("reported_model")?,
        reported_firmware: text("reported_firmware")?,
    }))
}

/// A contact as `Debug` shows it: without a password in its user information (settings redact
/// themselves).
fn contact_shown(contact: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    contact.map(sipprov_model::redact_uri_password)
}

impl std::fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDevice")
            .field("mac", &self.mac)
            .field("vendor", &self.vendor)
            .field("model", &self.model)
            .field("group", &self.group)
            .field("contact", &contact_shown(self.contact.as_deref()))
            .field("settings", &self.settings)
            .finish()
    }
}

impl std::fmt::Debug for DeviceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRecord")
            .field("mac", &self.mac)
            .field("vendor", &self.vendor)
            .field("model", &self.model)
            .field("group", &self.group)
            .field("contact", &contact_shown(self.contact.as_deref()))
            .field("settings", &self.settings)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_fetch", &self.last_fetch)
            .finish()
    }
}

impl Store {
    /// Every device, ordered by MAC.
    pub async fn list_devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each_device(|d| out.push(d)).await?;
        Ok(out)
    }

    /// How many devices are stored (to size the inventory before loading it).
    pub async fn device_count(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM devices").fetch_one(&self.pool).await?.try_get("n")?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Calls `f` with every device, ordered by MAC, one row at a time: loading a
    /// 100,000-device inventory never holds all raw rows (or a second copy) at once.
    pub async fn for_each_device(&self, mut f: impl FnMut(DeviceRecord)) -> Result<(), StoreError> {
        let mut rows = sqlx::query(select_devices!("ORDER BY mac")).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            f(device_from_row(&row)?);
        }
        Ok(())
    }

    /// [`Self::for_each_device`] in the order the database finds them cheapest (a table scan):
    /// loading the inventory into a hash map needs no order, and walking the MAC index instead
    /// costs a lookup into the table per row.
    pub async fn for_each_device_any_order(&self, mut f: impl FnMut(DeviceRecord)) -> Result<(), StoreError> {
        if self.backend == crate::Backend::Sqlite
            && !(self.url.contains(":memory:") || self.url.contains("mode=memory"))
        {
            return self.for_each_device_sqlite(f).await;
        }
        let mut rows = sqlx::query(select_devices!("")).fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            f(device_from_row(&row)?);
        }
        Ok(())
    }

    /// [`Self::for_each_device_any_order`] on SQLite through sqlx's SQLite driver itself, on a
    /// read-only connection of its own: the `Any` driver copies every column of every row into
    /// an owned value before it is decoded, which was a tenth of loading a million devices.
    /// The rows are read in one statement, so from one snapshot, as through the pool.
    async fn for_each_device_sqlite(&self, mut f: impl FnMut(DeviceRecord)) -> Result<(), StoreError> {
        use sqlx::Connection;
        let mut conn = self.load_connection().await?;
        {
            let mut rows = sqlx::query(select_devices!("")).fetch(&mut conn);
            while let Some(row) = rows.try_next().await? {
                f(device_from_sqlite_row(&row)?);
            }
        }
        conn.close().await?;
        Ok(())
    }

    /// Every device in any order, each without its last fetch, and every stored last fetch of a
    /// device (after the devices on SQLite, as each device comes elsewhere): what start-up needs, the records for the inventory and the fetches for the
    /// last-seen index, which keeps them apart. Both from one snapshot.
    ///
    /// On a SQLite file these are two plain table scans in one read transaction rather than the
    /// join [`Self::for_each_device_any_order`] makes: that join probed `device_seen` once per
    /// device and handed sqlx six more columns per row (each copied with `sqlite3_value_dup`,
    /// NULL or not), a tenth of loading a million devices in `perf`.
    pub async fn for_each_device_then_fetch(
        &self,
        mut device: impl FnMut(DeviceRecord),
        mut fetch: impl FnMut(FetchInfo),
    ) -> Result<(), StoreError> {
        if self.backend == crate::Backend::Sqlite
            && !(self.url.contains(":memory:") || self.url.contains("mode=memory"))
        {
            return self.for_each_device_then_fetch_sqlite(device, fetch).await;
        }
        self.for_each_device_any_order(|mut d| {
            if let Some(f) = d.last_fetch.take() {
                fetch(*f);
            }
            device(d);
        })
        .await
    }

    async fn for_each_device_then_fetch_sqlite(
        &self,
        mut device: impl FnMut(DeviceRecord),
        mut fetch: impl FnMut(FetchInfo),
    ) -> Result<(), StoreError> {
        use sqlx::Connection;
        let mut conn = self.load_connection().await?;
        // One read transaction: both scans see the same snapshot.
        let mut tx = conn.begin().await?;
        // Each row's columns but the MAC and the settings come packed into one JSON array that
        // SQLite builds: sqlx copies every column of a row into a value of its own (a
        // `sqlite3_value_dup`, two allocations) and frees it after, and reads each through a
        // type check. Eight columns a device were half the instructions of a start-up; three
        // cost less than the array's printing and parsing saves.
        {
            let sql = "SELECT mac, settings, json_array(vendor, model, group_name, contact, created_at, updated_at) \
                       FROM devices";
            let mut rows = sqlx::query(sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                device(record_from_packed_row(&row)?);
            }
        }
        {
            // Only devices that exist: a `device_seen` row outliving its device is not loaded,
            // as the join from `devices` did not load it.
            let sql = "SELECT s.mac, json_array(s.last_seen_at, s.last_ip, s.last_file, s.last_hash, \
                       s.reported_model, s.reported_firmware) \
                       FROM device_seen s WHERE EXISTS (SELECT 1 FROM devices d WHERE d.mac = s.mac)";
            let mut rows = sqlx::query(sql).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                if let Some(info) = fetch_from_packed_row(&row)? {
                    fetch(info);
                }
            }
        }
        tx.rollback().await?;
        conn.close().await?;
        Ok(())
    }

    /// A read-only connection of its own for scanning whole tables on SQLite.
    ///
    /// sqlx runs a SQLite connection's statements on a worker thread and hands each row over
    /// a channel of 50 rows by default: on one CPU the worker and the reader then took turns
    /// every 50 rows, two context switches and a wake-up each, twenty thousand times for a
    /// million devices. With room for [`LOAD_ROWS`] the worker fills it in one go.
    async fn load_connection(&self) -> Result<sqlx::sqlite::SqliteConnection, StoreError> {
        use sqlx::ConnectOptions;
        let options: sqlx::sqlite::SqliteConnectOptions = self.url.parse()?;
        // Its worker thread named apart from the pools' (see `priority`), so no pool's
        // connection mistakes it for its own.
        let options = options.read_only(true).row_buffer_size(LOAD_ROWS).thread_name(|id| format!("sqlite-load-{id}"));
        Ok(options.connect().await?)
    }

    /// One device.
    pub async fn get_device(&self, mac: Mac) -> Result<Option<DeviceRecord>, StoreError> {
        let row =
            sqlx::query(select_devices!("WHERE mac = $1")).bind(mac.to_string()).fetch_optional(&self.pool).await?;
        row.as_ref().map(device_from_row).transpose()
    }

    /// Adds devices in one transaction: all of them, or none if any MAC already exists or
    /// appears twice in `devices`. Groups they name are created when missing.
    pub async fn insert_devices(&self, devices: &[NewDevice]) -> Result<(), StoreError> {
        self.insert_devices_with(devices, None).await
    }

    /// As [`Self::insert_devices`], writing `audit` in the same transaction.
    pub async fn insert_devices_audited(&self, devices: &[NewDevice], audit: &NewAudit) -> Result<(), StoreError> {
        self.insert_devices_with(devices, Some(audit)).await
    }

    async fn insert_devices_with(&self, devices: &[NewDevice], audit: Option<&NewAudit>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.insert_device_rows(&mut tx, devices, now_ms()).await?;
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, audit).await?;
        }
        let macs: Vec<String> = devices.iter().map(|d| d.mac.to_string()).collect();
        self.record_changes(&mut tx, ChangeKind::Device, &macs, 64, ChangeKind::Devices).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Inserts `devices` (stamped `now`) inside the caller's transaction, after refusing any
    /// MAC stored already or given twice in `devices`; creates the groups they name.
    pub(crate) async fn insert_device_rows(
        &self,
        tx: &mut WriteTx,
        devices: &[NewDevice],
        now: i64,
    ) -> Result<(), StoreError> {
        self.reject_duplicates(tx, devices).await?;
        self.ensure_groups(tx, devices.iter().filter_map(|d| d.group.as_deref())).await?;
        for chunk in batch::chunks(devices, 8) {
            let sql = format!(
                "INSERT INTO devices (mac, vendor, model, group_name, contact, settings, created_at, updated_at) \
                 VALUES {}",
                batch::repeat("(?, ?, ?, ?, ?, ?, ?, ?)", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            let query = chunk.iter().fold(query, |q, d| {
                q.bind(d.mac.to_string())
                    .bind(&d.vendor)
                    .bind(&d.model)
                    .bind(d.group.as_deref())
                    .bind(d.contact.as_deref())
                    .bind(settings_to_json(&d.settings))
                    .bind(now)
                    .bind(now)
            });
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Fails naming the first device, in input order, whose MAC is stored already or was
    /// already given earlier in `devices`: the error a row-by-row insert would have hit first.
    async fn reject_duplicates(&self, tx: &mut WriteTx, devices: &[NewDevice]) -> Result<(), StoreError> {
        let mut stored = HashSet::new();
        for chunk in batch::chunks(devices, 1) {
            let sql =
                self.numbered(&format!("SELECT mac FROM devices WHERE mac IN ({})", batch::repeat("?", chunk.len())));
            let query = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, d| q.bind(d.mac.to_string()));
            for row in query.fetch_all(&mut **tx).await? {
                stored.insert(row.try_get::<String, _>("mac")?);
            }
        }
        let mut given = HashSet::with_capacity(devices.len());
        for d in devices {
            if !given.insert(d.mac) || stored.contains(&d.mac.to_string()) {
                return Err(StoreError::DuplicateDevice(d.mac.to_string()));
            }
        }
        Ok(())
    }

    /// Changes a device and returns its new state.
    pub async fn patch_device(&self, mac: Mac, patch: &DevicePatch) -> Result<DeviceRecord, StoreError> {
        self.patch_device_with(mac, patch, None).await
    }

    /// As [`Self::patch_device`], writing `audit` in the same transaction.
    pub async fn patch_device_audited(
        &self,
        mac: Mac,
        patch: &DevicePatch,
        audit: &NewAudit,
    ) -> Result<DeviceRecord, StoreError> {
        self.patch_device_with(mac, patch, Some(audit)).await
    }

    async fn patch_device_with(
        &self,
        mac: Mac,
        patch: &DevicePatch,
        audit: Option<&NewAudit>,
    ) -> Result<DeviceRecord, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(select_devices!("WHERE mac = $1"))
            .bind(mac.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::DeviceNotFound(mac.to_string()))?;
        let mut device = device_from_row(&row)?;
        if let Some(v) = &patch.vendor {
            device.vendor = v.into();
        }
        if let Some(m) = &patch.model {
            device.model = m.into();
        }
        if let Some(g) = &patch.group {
            device.group = g.as_deref().map(Name::from);
            self.ensure_groups(&mut tx, g.iter().map(String::as_str)).await?;
        }
        if let Some(c) = &patch.contact {
            device.contact = c.as_deref().map(Box::from);
        }
        if let Some(s) = &patch.settings {
            device.settings.apply(s);
        }
        device.updated_at = now_ms();
        sqlx::query(
            "UPDATE devices SET vendor = $2, model = $3, group_name = $4, contact = $5, settings = $6, updated_at = $7 \
             WHERE mac = $1",
        )
        .bind(mac.to_string())
        .bind(device.vendor.as_str())
        .bind(device.model.as_str())
        .bind(device.group.as_deref())
        .bind(device.contact.as_deref())
        .bind(settings_to_json(&device.settings))
        .bind(device.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, audit).await?;
        }
        self.record_change(&mut tx, ChangeKind::Device, &mac.to_string()).await?;
        tx.commit().await?;
        Ok(device)
    }

    /// Removes a device, its rendered-file state, what it last fetched and what it uploaded; its history is kept
    /// for audit.
    pub async fn delete_device(&self, mac: Mac) -> Result<(), StoreError> {
        self.delete_device_with(mac, None).await
    }

    /// As [`Self::delete_device`], writing `audit` in the same transaction.
    pub async fn delete_device_audited(&self, mac: Mac, audit: &NewAudit) -> Result<(), StoreError> {
        self.delete_device_with(mac, Some(audit)).await
    }

    async fn delete_device_with(&self, mac: Mac, audit: Option<&NewAudit>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM devices WHERE mac = $1").bind(mac.to_string()).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::DeviceNotFound(mac.to_string()));
        }
        // Its renderings go; what it fetched stays, as it did in `device_fetched` before the two
        // were one table (a campaign reads only the fetches that follow its NOTIFY).
        sqlx::query("DELETE FROM device_files WHERE mac = $1 AND at IS NULL")
            .bind(mac.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE device_files SET rendered_hash = NULL, changed_at = NULL WHERE mac = $1")
            .bind(mac.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM device_seen WHERE mac = $1").bind(mac.to_string()).execute(&mut *tx).await?;
        for table in ["device_unlocks", "device_first_fetch", "device_credentials", "device_uploads", "pnp_discoveries"]
        {
            let sql = format!("DELETE FROM {table} WHERE mac = $1");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(mac.to_string()).execute(&mut *tx).await?;
        }
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, audit).await?;
        }
        self.record_change(&mut tx, ChangeKind::Device, &mac.to_string()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `mac`'s first-fetch window was re-opened at `at` (ms since the epoch).
    pub async fn record_unlock(&self, mac: Mac, at: i64) -> Result<(), StoreError> {
        self.record_unlock_with(mac, at, None).await
    }

    /// As [`Self::record_unlock`], writing `audit` in the same transaction.
    pub async fn record_unlock_audited(&self, mac: Mac, at: i64, audit: &NewAudit) -> Result<(), StoreError> {
        self.record_unlock_with(mac, at, Some(audit)).await
    }

    async fn record_unlock_with(&self, mac: Mac, at: i64, audit: Option<&NewAudit>) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO device_unlocks (mac, opened_at) VALUES ($1, $2) \
             ON CONFLICT (mac) DO UPDATE SET opened_at = excluded.opened_at",
        )
        .bind(mac.to_string())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, audit).await?;
        }
        self.record_change(&mut tx, ChangeKind::Access, &mac.to_string()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every device's last re-opening of its first-fetch window since `since` (ms since the
    /// epoch): what a restarting server needs to keep the windows still open.
    pub async fn unlocks_since(&self, since: i64) -> Result<Vec<(Mac, i64)>, StoreError> {
        let rows = sqlx::query("SELECT mac, opened_at FROM device_unlocks WHERE opened_at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((mac_column(r, "mac")?, r.try_get("opened_at")?))).collect()
    }
}
