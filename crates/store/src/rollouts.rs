//! Firmware rollouts: a group moved to a firmware version in waves, with per-device progress,
//! and the firmware pins that hold a device to a version while its rollout runs.
//!
//! Every step that changes what a device is served (a pin written or removed) is written in one
//! transaction with the devices' rows and their history events, so a restart finds pins, rows
//! and history in agreement. Windows are wall-clock times (`started_at + window_ms`), so a
//! restarted engine decides them as if it had never stopped.

use sipprov_model::{Mac, RolloutDeviceState, RolloutState};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{batch, mac_column, named_column, now_ms, opt_string, NewAudit, NewEvent, Store, StoreError, WriteTx};

/// A rollout to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRollout {
    /// The group it moves.
    pub group: String,
    /// The firmware version it moves the group to.
    pub version: String,
    /// The group's `firmware.version` before (what a rollback returns to), if it had one.
    pub previous_version: Option<String>,
    /// Devices in the canary wave (wave 0).
    pub canary: u32,
    /// Each later wave's share of the devices left after the canary, in percent.
    pub wave_percent: u32,
    /// How long a pinned device has to report the version.
    pub window_ms: i64,
    /// The share of failed among decided devices past which the rollout halts, in percent.
    pub halt_percent: u32,
    /// Who started it.
    pub created_by: String,
}

/// One device of a rollout to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRolloutDevice {
    /// The device.
    pub mac: Mac,
    /// Its wave (0 = canary); skipped devices carry -1.
    pub wave: i64,
    /// `waiting`, `skipped`, or `succeeded` for a device that already runs the version.
    pub state: RolloutDeviceState,
    /// The firmware it last reported, if any.
    pub from_version: Option<String>,
    /// Why it is skipped or already succeeded.
    pub reason: Option<String>,
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloutRecord {
    /// Its number.
    pub id: i64,
    /// The group it moves.
    pub group: String,
    /// The version it moves the group to.
    pub version: String,
    /// The group's `firmware.version` before it started.
    pub previous_version: Option<String>,
    /// Devices in the canary wave.
    pub canary: u32,
    /// Each later wave's share of the rest, in percent.
    pub wave_percent: u32,
    /// How long a pinned device has to report the version (ms).
    pub window_ms: i64,
    /// The failure share past which it halts, in percent.
    pub halt_percent: u32,
    /// Where it is in its life.
    pub state: RolloutState,
    /// Why it halted, was aborted or rolled back.
    pub reason: Option<String>,
    /// The wave it is on (0 = canary).
    pub wave: i64,
    /// The first wave the halt threshold counts (moved past the halting wave by a resume).
    pub count_from_wave: i64,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Who started it.
    pub created_by: String,
    /// When its state last changed (ms since the epoch).
    pub updated_at: i64,
    /// When it ended (done, aborted, rolled back).
    pub finished_at: Option<i64>,
}

/// One device's progress in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloutDevice {
    /// The device.
    pub mac: Mac,
    /// Its wave (0 = canary, -1 = skipped).
    pub wave: i64,
    /// Where it is.
    pub state: RolloutDeviceState,
    /// The firmware it reported before the rollout.
    pub from_version: Option<String>,
    /// Why it was skipped, failed, or succeeded at once.
    pub reason: Option<String>,
    /// When it was pinned: its window opened (ms since the epoch).
    pub started_at: Option<i64>,
    /// When its check-sync was sent.
    pub notified_at: Option<i64>,
    /// When it was decided.
    pub decided_at: Option<i64>,
}

/// A device held to a firmware version by a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwarePin {
    /// The device.
    pub mac: Mac,
    /// The version its file names while pinned.
    pub version: String,
    /// The rollout holding it.
    pub rollout_id: i64,
}

const ROLLOUT_COLUMNS: &str = "id, group_name, version, previous_version, canary, wave_percent, window_ms, \
     halt_percent, state, reason, wave, count_from_wave, created_at, created_by, updated_at, finished_at";

fn rollout_from_row(r: &AnyRow) -> Result<RolloutRecord, StoreError> {
    let small = |col: &str| -> Result<u32, StoreError> { Ok(u32::try_from(r.try_get::<i64, _>(col)?).unwrap_or(0)) };
    Ok(RolloutRecord {
        id: r.try_get("id")?,
        group: r.try_get("group_name")?,
        version: r.try_get("version")?,
        previous_version: opt_string(r, "previous_version")?,
        canary: small("canary")?,
        wave_percent: small("wave_percent")?,
        window_ms: r.try_get("window_ms")?,
        halt_percent: small("halt_percent")?,
        state: named_column(r, "state")?,
        reason: opt_string(r, "reason")?,
        wave: r.try_get("wave")?,
        count_from_wave: r.try_get("count_from_wave")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn device_from_row(r: &AnyRow) -> Result<RolloutDevice, StoreError> {
    Ok(RolloutDevice {
        mac: mac_column(r, "mac")?,
        wave: r.try_get("wave")?,
        state: named_column(r, "state")?,
        from_version: opt_string(r, "from_version")?,
        reason: opt_string(r, "reason")?,
        started_at: r.try_get("started_at")?,
        notified_at: r.try_get("notified_at")?,
        decided_at: r.try_get("decided_at")?,
    })
}

impl Store {
    /// Creates a rollout over `devices` with their history `events` and its audit entry (its
    /// target set to the new id), in one transaction; refused with [`StoreError::Duplicate`]
    /// while another rollout of the group is unfinished.
    pub async fn create_rollout_audited(
        &self,
        new: &NewRollout,
        devices: &[NewRolloutDevice],
        events: &[NewEvent],
        audit: &NewAudit,
    ) -> Result<RolloutRecord, StoreError> {
        let mut tx = self.write_tx().await?;
        let active = sqlx::query("SELECT id, state FROM rollouts WHERE group_name = $1")
            .bind(&new.group)
            .fetch_all(&mut *tx)
            .await?;
        for row in &active {
            let state: RolloutState = named_column(row, "state")?;
            if !state.is_finished() {
                let id: i64 = row.try_get("id")?;
                tx.rollback().await?;
                return Err(StoreError::Duplicate(format!(
                    "group {:?} already has rollout {id}, which is {state}: abort it or let it finish first",
                    new.group
                )));
            }
        }
        let max: Option<i64> =
            sqlx::query("SELECT MAX(id) AS m FROM rollouts").fetch_one(&mut *tx).await?.try_get("m")?;
        let id = max.unwrap_or(0) + 1;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO rollouts (id, group_name, version, previous_version, canary, wave_percent, window_ms, \
             halt_percent, state, wave, count_from_wave, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, $10, $11, $10)",
        )
        .bind(id)
        .bind(&new.group)
        .bind(&new.version)
        .bind(new.previous_version.as_deref())
        .bind(i64::from(new.canary))
        .bind(i64::from(new.wave_percent))
        .bind(new.window_ms)
        .bind(i64::from(new.halt_percent))
        .bind(RolloutState::Running.as_str())
        .bind(now)
        .bind(&new.created_by)
        .execute(&mut *tx)
        .await?;
        for chunk in batch::chunks(devices, 7) {
            let sql = format!(
                "INSERT INTO rollout_devices (rollout_id, mac, wave, state, from_version, reason, decided_at) VALUES {}",
                batch::repeat("(?, ?, ?, ?, ?, ?, ?)", chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            for d in chunk {
                let decided = (d.state != RolloutDeviceState::Waiting).then_some(now);
                query = query
                    .bind(id)
                    .bind(d.mac.to_string())
                    .bind(d.wave)
                    .bind(d.state.as_str())
                    .bind(d.from_version.clone())
                    .bind(d.reason.clone())
                    .bind(decided);
            }
            query.execute(&mut *tx).await?;
        }
        let events: Vec<NewEvent> = events.iter().map(|e| with_rollout_id(e, id)).collect();
        self.insert_events(&mut tx, &events).await?;
        self.insert_audit(&mut tx, &NewAudit { target: id.to_string(), ..audit.clone() }).await?;
        tx.commit().await?;
        self.get_rollout(id).await?.ok_or_else(|| StoreError::Corrupt("rollout vanished".into()))
    }

    /// Every rollout, newest first.
    pub async fn list_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let sql = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts ORDER BY id DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(rollout_from_row).collect()
    }

    /// One rollout.
    pub async fn get_rollout(&self, id: i64) -> Result<Option<RolloutRecord>, StoreError> {
        let sql = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// A rollout's devices, by wave then MAC.
    pub async fn rollout_devices(&self, id: i64) -> Result<Vec<RolloutDevice>, StoreError> {
        let rows = sqlx::query(
            "SELECT mac, wave, state, from_version, reason, started_at, notified_at, decided_at \
             FROM rollout_devices WHERE rollout_id = $1 ORDER BY wave, mac",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// Every firmware pin, for the render at start.
    pub async fn firmware_pins(&self) -> Result<Vec<FirmwarePin>, StoreError> {
        let rows = sqlx::query("SELECT mac, version, rollout_id FROM firmware_pins").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(FirmwarePin {
                    mac: mac_column(r, "mac")?,
                    version: r.try_get("version")?,
                    rollout_id: r.try_get("rollout_id")?,
                })
            })
            .collect()
    }

    /// Moves rollout `id` to `state` (with `reason`, the wave it is on and the first wave the
    /// halt threshold counts), with its audit entry when given, in one transaction.
    pub async fn set_rollout_state(
        &self,
        id: i64,
        state: RolloutState,
        reason: Option<&str>,
        wave: i64,
        count_from_wave: i64,
        audit: Option<&NewAudit>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let now = now_ms();
        let finished = state.is_finished().then_some(now);
        sqlx::query(
            "UPDATE rollouts SET state = $2, reason = $3, wave = $4, count_from_wave = $5, updated_at = $6, \
             finished_at = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(reason)
        .bind(wave)
        .bind(count_from_wave)
        .bind(now)
        .bind(finished)
        .execute(&mut *tx)
        .await?;
        if let Some(entry) = audit {
            self.insert_audit(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pins `macs` to `version` for rollout `id` and moves their rows to `state` with their
    /// window opened at `at`, with their history `events`, in one transaction.
    pub async fn pin_rollout_devices(
        &self,
        id: i64,
        macs: &[Mac],
        version: &str,
        state: RolloutDeviceState,
        at: i64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in batch::chunks(macs, 3) {
            let sql = format!(
                "INSERT INTO firmware_pins (mac, version, rollout_id) VALUES {} \
                 ON CONFLICT (mac) DO UPDATE SET version = excluded.version, rollout_id = excluded.rollout_id",
                batch::repeat("(?, ?, ?)", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            chunk.iter().fold(query, |q, mac| q.bind(mac.to_string()).bind(version).bind(id)).execute(&mut *tx).await?;
        }
        self.start_window(&mut tx, id, macs, state, at).await?;
        self.insert_events(&mut tx, events).await?;
        self.record_change(&mut tx, ChangeKind::FirmwarePins, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that `macs` of rollout `id` were sent their check-sync at `at`.
    pub async fn mark_rollout_notified(&self, id: i64, macs: &[Mac], at: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in batch::chunks(macs, 1) {
            let sql = format!(
                "UPDATE rollout_devices SET notified_at = ? WHERE rollout_id = ? AND mac IN ({})",
                batch::repeat("?", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql))).bind(at).bind(id);
            chunk.iter().fold(query, |q, mac| q.bind(mac.to_string())).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Decides devices of rollout `id`: each `(mac, state, reason)` at `at`, with the history
    /// `events`; `unpin` devices lose their pin of this rollout in the same transaction.
    pub async fn decide_rollout_devices(
        &self,
        id: i64,
        decisions: &[(Mac, RolloutDeviceState, Option<String>)],
        unpin: &[Mac],
        at: i64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for (mac, state, reason) in decisions {
            sqlx::query("UPDATE rollout_devices SET state = $3, reason = $4, decided_at = $5 WHERE rollout_id = $1 AND mac = $2")
                .bind(id)
                .bind(mac.to_string())
                .bind(state.as_str())
                .bind(reason.as_deref())
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        self.delete_pins(&mut tx, id, unpin).await?;
        self.insert_events(&mut tx, events).await?;
        self.record_change(&mut tx, ChangeKind::FirmwarePins, "").await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes every pin rollout `id` holds, with a history event for each (`events_for`), in
    /// one transaction; answers the MACs unpinned.
    pub async fn clear_rollout_pins(
        &self,
        id: i64,
        events_for: impl Fn(Mac) -> NewEvent,
    ) -> Result<Vec<Mac>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows =
            sqlx::query("SELECT mac FROM firmware_pins WHERE rollout_id = $1").bind(id).fetch_all(&mut *tx).await?;
        let macs = rows.iter().map(|r| mac_column(r, "mac")).collect::<Result<Vec<_>, _>>()?;
        sqlx::query("DELETE FROM firmware_pins WHERE rollout_id = $1").bind(id).execute(&mut *tx).await?;
        let events: Vec<NewEvent> = macs.iter().map(|m| events_for(*m)).collect();
        self.insert_events(&mut tx, &events).await?;
        self.record_change(&mut tx, ChangeKind::FirmwarePins, "").await?;
        tx.commit().await?;
        Ok(macs)
    }

    async fn delete_pins(&self, tx: &mut WriteTx, id: i64, macs: &[Mac]) -> Result<(), StoreError> {
        for chunk in batch::chunks(macs, 1) {
            let sql = format!(
                "DELETE FROM firmware_pins WHERE rollout_id = ? AND mac IN ({})",
                batch::repeat("?", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql))).bind(id);
            chunk.iter().fold(query, |q, mac| q.bind(mac.to_string())).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Moves `macs` of rollout `id` to `state` with a new window opened at `started_at`: not
    /// notified yet, and any earlier decision cleared.
    async fn start_window(
        &self,
        tx: &mut WriteTx,
        id: i64,
        macs: &[Mac],
        state: RolloutDeviceState,
        started_at: i64,
    ) -> Result<(), StoreError> {
        for chunk in batch::chunks(macs, 1) {
            let sql = format!(
                "UPDATE rollout_devices SET state = ?, started_at = ?, notified_at = NULL, decided_at = NULL, \
                 reason = NULL WHERE rollout_id = ? AND mac IN ({})",
                batch::repeat("?", chunk.len())
            );
            let query =
                sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql))).bind(state.as_str()).bind(started_at).bind(id);
            chunk.iter().fold(query, |q, mac| q.bind(mac.to_string())).execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// A creation event whose detail names rollout 0 (the id is known only in the transaction)
/// gets the new id.
fn with_rollout_id(event: &NewEvent, id: i64) -> NewEvent {
    let mut event = event.clone();
    if let Some(obj) = event.detail.as_object_mut() {
        if obj.get("rollout").and_then(serde_json::Value::as_i64) == Some(0) {
            obj.insert("rollout".into(), id.into());
        }
    }
    event
}
