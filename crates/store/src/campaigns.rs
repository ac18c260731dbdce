//! Fleet re-sync campaigns: their selection, pacing parameters and per-device progress.
//!
//! A campaign's selection is stored with its chunks (see `selection`), not as a row per device:
//! a device gets a row in `campaign_devices` when its outcome is written, right after its
//! NOTIFY's transaction ends, and until then it is `pending`. A crash therefore leaves exactly
//! the devices whose NOTIFY had no recorded outcome to be sent again, and no device that had
//! one is notified twice. On PostgreSQL, where other nodes may take a chunk over, a device is
//! also written `sending` before its NOTIFY leaves, so that a takeover can tell which devices
//! may have been notified already; on SQLite (one node, nobody takes over) that write is
//! skipped (see [`Store::mark_sending_if_shared`]).
//!
//! A notified device is confirmed when it fetched its own config file within its confirmation
//! window after its NOTIFY (the server only serves the current rendering), and the hash it got
//! is recorded; a fetch after the window leaves it `not-confirmed`.

use sipprov_model::{CampaignDeviceState, CampaignOutcome, CampaignState, CheckSyncResult, Mac};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{
    batch, mac_column, named_column, now_ms, opt_named_column, opt_string, NewAudit, Store, StoreError, WriteTx,
};

/// A campaign to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    /// When sending starts (ms since the epoch).
    pub start_at: i64,
    /// Ask the devices to reboot, not only re-provision.
    pub reboot: bool,
    /// NOTIFYs per second.
    pub rate: u32,
    /// NOTIFYs without a final response at most.
    pub max_in_flight: u32,
    /// How long after a 2xx the device has to fetch its current config.
    pub confirm_window_ms: i64,
    /// How the devices were chosen, for people (`--group sales`, `--changed`, …).
    pub selector: String,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignRecord {
    /// The campaign's number.
    pub id: i64,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When sending starts (ms since the epoch).
    pub start_at: i64,
    /// Where it is in its life.
    pub state: CampaignState,
    /// Ask the devices to reboot, not only re-provision.
    pub reboot: bool,
    /// NOTIFYs per second.
    pub rate: u32,
    /// NOTIFYs without a final response at most.
    pub max_in_flight: u32,
    /// How long after a 2xx the device has to fetch its current config.
    pub confirm_window_ms: i64,
    /// How the devices were chosen, for people (`--group sales`, `--changed`, …).
    pub selector: String,
    /// When it ended (done or cancelled), ms since the epoch.
    pub finished_at: Option<i64>,
}

/// One device's progress in a campaign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignDevice {
    /// The campaign this row belongs to.
    pub campaign_id: i64,
    /// The device.
    pub mac: Mac,
    /// `pending`, `sending`, `notified` (2xx) or `failed`.
    pub state: CampaignDeviceState,
    /// NOTIFYs sent to it so far.
    pub attempts: i64,
    /// How its latest NOTIFY ended, once one did.
    pub result: Option<CheckSyncResult>,
    /// The SIP status code of the final response, if one came.
    pub status: Option<i64>,
    /// The reason phrase, or why no response came.
    pub reason: Option<String>,
    /// The device's own config file when it was notified: fetching it afterwards confirms
    /// (the server only serves the current rendering).
    pub expected_file: Option<String>,
    /// When the 2xx came (ms since the epoch).
    pub notified_at: Option<i64>,
    /// When the device fetched its file afterwards (ms since the epoch).
    pub confirmed_at: Option<i64>,
    /// SHA-256 of what the confirming fetch got.
    pub fetched_hash: Option<String>,
}

/// The outcome of one NOTIFY, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyResult {
    /// How it ended: `ok` (a 2xx) makes the device `notified`, anything else `failed`.
    pub result: CheckSyncResult,
    /// The SIP status code of the final response, if one came.
    pub status: Option<u16>,
    /// The reason phrase, or why no response came.
    pub reason: String,
    /// The device's own config file, which it must fetch after `at` to confirm.
    pub expected_file: Option<String>,
    /// When the outcome was known (ms since the epoch).
    pub at: i64,
}

impl NotifyResult {
    /// The state this outcome leaves the device in.
    pub fn state(&self) -> CampaignDeviceState {
        match self.result {
            CheckSyncResult::Ok => CampaignDeviceState::Notified,
            _ => CampaignDeviceState::Failed,
        }
    }
}

fn campaign_from_row(r: &AnyRow) -> Result<CampaignRecord, StoreError> {
    Ok(CampaignRecord {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        start_at: r.try_get("start_at")?,
        state: named_column(r, "state")?,
        reboot: r.try_get::<i64, _>("reboot")? != 0,
        rate: u32::try_from(r.try_get::<i64, _>("rate")?).unwrap_or(1),
        max_in_flight: u32::try_from(r.try_get::<i64, _>("max_in_flight")?).unwrap_or(1),
        confirm_window_ms: r.try_get("confirm_window_ms")?,
        selector: r.try_get("selector")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn device_from_row(r: &AnyRow) -> Result<CampaignDevice, StoreError> {
    Ok(CampaignDevice {
        campaign_id: r.try_get("campaign_id")?,
        mac: mac_column(r, "mac")?,
        state: named_column(r, "state")?,
        attempts: r.try_get("attempts")?,
        result: opt_named_column(r, "result")?,
        status: r.try_get("status")?,
        reason: opt_string(r, "reason")?,
        expected_file: opt_string(r, "expected_file")?,
        notified_at: r.try_get("notified_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        fetched_hash: opt_string(r, "fetched_hash")?,
    })
}

const CAMPAIGN_COLUMNS: &str =
    "id, created_at, start_at, state, reboot, rate, max_in_flight, confirm_window_ms, selector, finished_at";

/// The columns [`device_from_row`] reads, as a literal so queries stay `&'static str`.
macro_rules! select_campaign_devices {
    ($rest:literal) => {
        concat!(
            "SELECT campaign_id, mac, state, attempts, result, status, reason, expected_file, notified_at, \
             confirmed_at, fetched_hash FROM campaign_devices ",
            $rest
        )
    };
}

/// The set-clause shared by both backends' outcome upserts: the outcome replaces the row's,
/// clears any earlier confirmation (a retry), and counts the attempt unless a `sending` mark did.
macro_rules! outcome_upsert_set {
    () => {
        "ON CONFLICT (campaign_id, mac) DO UPDATE SET state = excluded.state, \
         attempts = CASE WHEN campaign_devices.state = 'sending' THEN campaign_devices.attempts \
         ELSE campaign_devices.attempts + 1 END, result = excluded.result, \
         status = excluded.status, reason = excluded.reason, expected_file = excluded.expected_file, \
         notified_at = excluded.notified_at, confirmed_at = NULL, fetched_hash = NULL"
    };
}

impl Store {
    /// Creates a campaign over `macs` in one transaction.
    pub async fn create_campaign(&self, new: &NewCampaign, macs: &[Mac]) -> Result<CampaignRecord, StoreError> {
        self.create_campaign_with(new, macs, None).await
    }

    /// As [`Self::create_campaign`], writing `audit` in the same transaction with its `target`
    /// set to the new campaign's id (known only there).
    pub async fn create_campaign_audited(
        &self,
        new: &NewCampaign,
        macs: &[Mac],
        audit: &NewAudit,
    ) -> Result<CampaignRecord, StoreError> {
        self.create_campaign_with(new, macs, Some(audit)).await
    }

    async fn create_campaign_with(
        &self,
        new: &NewCampaign,
        macs: &[Mac],
        audit: Option<&NewAudit>,
    ) -> Result<CampaignRecord, StoreError> {
        // One entry per device, in MAC order (the text order of the stored MACs too).
        let mut macs = macs.to_vec();
        macs.sort_unstable();
        macs.dedup();
        let mut tx = self.write_tx().await?;
        let max: Option<i64> =
            sqlx::query("SELECT MAX(id) AS m FROM campaigns").fetch_one(&mut *tx).await?.try_get("m")?;
        let id = max.unwrap_or(0) + 1;
        let now = now_ms();
        let state = if new.start_at > now { CampaignState::Scheduled } else { CampaignState::Running };
        sqlx::query(
            "INSERT INTO campaigns (id, created_at, start_at, state, reboot, rate, max_in_flight, confirm_window_ms, \
             selector, devices) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(now)
        .bind(new.start_at)
        .bind(state.as_str())
        .bind(i64::from(new.reboot))
        .bind(i64::from(new.rate))
        .bind(i64::from(new.max_in_flight))
        .bind(new.confirm_window_ms)
        .bind(&new.selector)
        .bind(macs.len() as i64)
        .execute(&mut *tx)
        .await?;
        // The selection goes with the chunks; no device has a row until something happens to it.
        self.insert_campaign_chunks(&mut tx, id, &macs).await?;
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, &NewAudit { target: id.to_string(), ..audit.clone() }).await?;
        }
        tx.commit().await?;
        self.get_campaign(id).await?.ok_or_else(|| StoreError::Corrupt("campaign vanished".into()))
    }

    /// Every campaign, newest first.
    pub async fn list_campaigns(&self) -> Result<Vec<CampaignRecord>, StoreError> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.iter().map(campaign_from_row).collect()
    }

    /// One campaign.
    pub async fn get_campaign(&self, id: i64) -> Result<Option<CampaignRecord>, StoreError> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    /// A campaign's devices, by MAC: its rows, and a `pending` entry (no attempt yet) for each
    /// device of its selection without one.
    pub async fn campaign_devices(&self, id: i64) -> Result<Vec<CampaignDevice>, StoreError> {
        let rows = sqlx::query(select_campaign_devices!("WHERE campaign_id = $1 ORDER BY mac"))
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows.iter().map(device_from_row).collect::<Result<Vec<_>, _>>()?;
        let selected = self.campaign_selection(id).await?;
        // Both in MAC order: merge them.
        let mut out = Vec::with_capacity(selected.len().max(rows.len()));
        let mut rows = rows.into_iter().peekable();
        for mac in selected {
            while let Some(row) = rows.next_if(|r| r.mac < mac) {
                out.push(row);
            }
            match rows.next_if(|r| r.mac == mac) {
                Some(row) => out.push(row),
                None => out.push(CampaignDevice {
                    campaign_id: id,
                    mac,
                    state: CampaignDeviceState::Pending,
                    attempts: 0,
                    result: None,
                    status: None,
                    reason: None,
                    expected_file: None,
                    notified_at: None,
                    confirmed_at: None,
                    fetched_hash: None,
                }),
            }
        }
        out.extend(rows);
        Ok(out)
    }

    /// Moves a campaign to a new state (`running`, `done`, `cancelled`).
    pub async fn set_campaign_state(&self, id: i64, state: CampaignState) -> Result<(), StoreError> {
        self.set_campaign_state_audited(id, state, None).await
    }

    /// [`Store::set_campaign_state`], with its audit entry (when given) in the same transaction.
    pub async fn set_campaign_state_audited(
        &self,
        id: i64,
        state: CampaignState,
        audit: Option<&crate::NewAudit>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let finished = state.is_finished().then(now_ms);
        sqlx::query("UPDATE campaigns SET state = $2, finished_at = $3 WHERE id = $1")
            .bind(id)
            .bind(state.as_str())
            .bind(finished)
            .execute(&mut *tx)
            .await?;
        if let Some(entry) = audit {
            self.insert_audit(&mut tx, entry).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks devices as being sent to, in one transaction, before their NOTIFYs leave; counts
    /// the attempt. A device without a row (never sent to) gets one.
    pub async fn mark_sending(&self, id: i64, macs: &[Mac]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in batch::chunks(macs, 2) {
            let sql = format!(
                "INSERT INTO campaign_devices (campaign_id, mac, state, attempts) VALUES {} \
                 ON CONFLICT (campaign_id, mac) DO UPDATE SET state = 'sending', \
                 attempts = campaign_devices.attempts + 1",
                batch::repeat("(?, ?, 'sending', 1)", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            chunk.iter().fold(query, |q, mac| q.bind(id).bind(mac.to_string())).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::mark_sending`] where other nodes may take the campaign's chunks over
    /// (PostgreSQL); nothing on SQLite.
    ///
    /// The mark tells a node taking a chunk over which devices may have been notified by the
    /// node that died, and counts the attempt before the NOTIFY leaves. A SQLite database has
    /// one node: after a crash it sends again to every device without an outcome, marked or
    /// not, and the attempt is counted with the outcome instead. Skipping the mark saves a
    /// row write per device. What it costs: during sending the
    /// report shows the devices in flight as `pending`, and a NOTIFY cut off by a crash before
    /// its outcome was written is not counted in `attempts`.
    pub async fn mark_sending_if_shared(&self, id: i64, macs: &[Mac]) -> Result<(), StoreError> {
        match self.backend {
            crate::Backend::Postgres => self.mark_sending(id, macs).await,
            crate::Backend::Sqlite => Ok(()),
        }
    }

    /// Undoes [`Store::mark_sending`] for devices whose NOTIFY never left (a cancelled campaign).
    pub async fn unmark_sending(&self, id: i64, macs: &[Mac]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in batch::chunks(macs, 1) {
            let sql = format!(
                "UPDATE campaign_devices SET state = 'pending', attempts = attempts - 1 \
                 WHERE campaign_id = ? AND state = 'sending' AND mac IN ({})",
                batch::repeat("?", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql))).bind(id);
            chunk.iter().fold(query, |q, mac| q.bind(mac.to_string())).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records NOTIFY outcomes and the devices' history events in one transaction.
    pub async fn record_notify_results_with_events(
        &self,
        id: i64,
        results: &[(Mac, NotifyResult)],
        events: &[crate::NewEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.upsert_notify_results(&mut tx, id, results).await?;
        match self.backend {
            crate::Backend::Sqlite => insert_events_sqlite(&mut tx, events).await?,
            crate::Backend::Postgres => self.insert_events(&mut tx, events).await?,
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records NOTIFY outcomes in one transaction; of two outcomes for one device, the later
    /// in `results` wins. A device's first outcome writes its row; a new outcome clears any
    /// earlier confirmation (a retry). It counts the attempt unless the device was marked
    /// `sending` (which counted it already).
    pub async fn record_notify_results(&self, id: i64, results: &[(Mac, NotifyResult)]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.upsert_notify_results(&mut tx, id, results).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_notify_results(
        &self,
        tx: &mut WriteTx,
        id: i64,
        results: &[(Mac, NotifyResult)],
    ) -> Result<(), StoreError> {
        let rows = batch::last_per_key(results, |(mac, _)| *mac);
        if self.backend == crate::Backend::Sqlite {
            return upsert_notify_results_sqlite(tx, id, &rows).await;
        }
        for chunk in batch::chunks(&rows, 8) {
            // An upsert: a device's first outcome inserts its row (it had none while pending);
            // a retried or marked device's row is updated through the primary key.
            let sql = format!(
                "INSERT INTO campaign_devices (campaign_id, mac, state, attempts, result, status, reason, \
                 expected_file, notified_at) VALUES {} {}",
                batch::repeat("(?, ?, ?, 1, ?, ?, ?, ?, ?)", chunk.len()),
                outcome_upsert_set!()
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            let query = chunk.iter().fold(query, |q, (mac, r)| {
                q.bind(id)
                    .bind(mac.to_string())
                    .bind(r.state().as_str())
                    .bind(r.result.as_str())
                    .bind(r.status.map(i64::from))
                    .bind(&r.reason)
                    .bind(r.expected_file.as_deref())
                    .bind(r.at)
            });
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Puts failed and unconfirmed devices back to pending and the campaign back to running,
    /// with its audit entry (when given, and when a device was put back) in the same
    /// transaction; the entry's `detail` gains `devices`, the count. Returns how many devices
    /// will be retried.
    pub async fn retry_campaign_audited(
        &self,
        id: i64,
        now: i64,
        audit: Option<&crate::NewAudit>,
    ) -> Result<u64, StoreError> {
        let campaign = self.get_campaign(id).await?.ok_or_else(|| StoreError::Corrupt(format!("no campaign {id}")))?;
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE campaign_devices SET state = 'pending' WHERE campaign_id = $1 AND (state = 'failed' OR \
             (state = 'notified' AND confirmed_at IS NULL AND notified_at + $2 < $3))",
        )
        .bind(id)
        .bind(campaign.confirm_window_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            self.reopen_campaign_chunks(&mut tx, id).await?;
            sqlx::query("UPDATE campaigns SET state = 'running', finished_at = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some(entry) = audit {
                let mut entry = entry.clone();
                if let Some(detail) = entry.detail.as_object_mut() {
                    detail.insert("devices".into(), done.rows_affected().into());
                }
                self.insert_audit(&mut tx, &entry).await?;
            }
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The last hash each device fetched per file, since the given time (all with 0).
    pub async fn fetched_since(&self, since: i64) -> Result<Vec<(Mac, String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT mac, file, hash, at FROM device_fetched WHERE at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((mac_column(r, "mac")?, r.try_get("file")?, r.try_get("hash")?, r.try_get("at")?)))
            .collect()
    }
}

/// [`Store::upsert_notify_results`] on SQLite: the whole batch as one JSON array bound once,
/// unpacked by `json_each`, in one statement.
///
/// Bound one by one, a batch of 500 outcomes was 4,000 parameters, each converted from sqlx's
/// `Any` arguments to SQLite's and copied into the statement: the campaign's writer spent about
/// as long preparing the statements as SQLite spent writing the rows. One text and one parse
/// by SQLite's JSON reader cost a fraction of that. (`WHERE true`: SQLite's grammar needs it
/// between a `SELECT … FROM` and `ON CONFLICT`.)
async fn upsert_notify_results_sqlite(
    tx: &mut WriteTx,
    id: i64,
    rows: &[&(Mac, NotifyResult)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    // Serialised straight from tuples (a tuple is a JSON array): no `serde_json::Value` tree
    // built and walked per row.
    type Row<'a> = (String, &'a str, &'a str, Option<u16>, &'a str, Option<&'a str>, i64);
    let batch: Vec<Row> = rows
        .iter()
        .map(|(mac, r)| {
            (
                mac.to_string(),
                r.state().as_str(),
                r.result.as_str(),
                r.status,
                r.reason.as_str(),
                r.expected_file.as_deref(),
                r.at,
            )
        })
        .collect();
    let batch = serde_json::to_string(&batch).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // `jsonb_each`, not `json_each`: each row's `value` comes out as the binary form, which
    // `->>` reads in place. With `json_each` it came out as text that every one of the seven
    // `->>` parsed again (SQLite's JSON text conversions were a tenth of a campaign's
    // instructions, measured with callgrind by bench/sip-instructions.sh).
    sqlx::query(concat!(
        "INSERT INTO campaign_devices (campaign_id, mac, state, attempts, result, status, reason, expected_file, \
         notified_at) SELECT ?, j.value ->> 0, j.value ->> 1, 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
         j.value ->> 5, j.value ->> 6 FROM jsonb_each(?) j WHERE true ",
        outcome_upsert_set!()
    ))
    .bind(id)
    .bind(batch)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A batch of history events on SQLite (the campaign's outcomes, written with them): the batch
/// as one JSON array bound once and unpacked by `json_each`, ids following the table's
/// largest, as [`Store::insert_events`] numbers them (this transaction holds the write lock).
///
/// Bound five parameters an event, a batch of 500 was eight statements and 2,500 parameters.
async fn insert_events_sqlite(tx: &mut WriteTx, events: &[crate::NewEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let max: Option<i64> =
        sqlx::query("SELECT MAX(id) AS m FROM device_events").fetch_one(&mut **tx).await?.try_get("m")?;
    // Tuples, not a `serde_json::Value` tree per event (see `upsert_notify_results_sqlite`).
    // The detail goes in as the JSON object it is and comes out as its text (`->`): written
    // as a string it was serialised, then escaped quote by quote into the batch, then
    // unescaped by SQLite (the escaping alone was 7,000 instructions an event).
    let batch: Vec<(String, i64, &str, &serde_json::Value)> =
        events.iter().map(|e| (e.mac.to_string(), e.at, e.kind.as_str(), &e.detail)).collect();
    let batch = serde_json::to_string(&batch).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // `j.key` is the element's index: the events keep the batch's order in their ids.
    // `jsonb_each` for the reason given in `upsert_notify_results_sqlite`.
    sqlx::query(
        "INSERT INTO device_events (id, mac, at, kind, detail) SELECT ? + j.key, j.value ->> 0, j.value ->> 1, \
         j.value ->> 2, j.value -> 3 FROM jsonb_each(?) j",
    )
    .bind(max.unwrap_or(0) + 1)
    .bind(batch)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// How many devices of a campaign are in each outcome, computed by the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignCounts {
    /// Devices per outcome.
    pub counts: std::collections::BTreeMap<CampaignOutcome, i64>,
    /// Devices in the campaign.
    pub devices: i64,
    /// When the latest NOTIFY left (ms since the epoch), if any did.
    pub last_notified_at: Option<i64>,
}

/// Adds `n` devices (when there are any) to the outcome named `name`.
fn add_count(out: &mut CampaignCounts, name: &str, n: i64) -> Result<(), StoreError> {
    if n > 0 {
        let outcome: CampaignOutcome = name.parse().map_err(|e| StoreError::Corrupt(format!("outcome: {e}")))?;
        *out.counts.entry(outcome).or_insert(0) += n;
    }
    Ok(())
}

impl Store {
    /// Counts per outcome at time `now`, without loading the rows: a 100,000-device campaign is
    /// polled every few hundred milliseconds while it runs.
    ///
    /// One statement (so one snapshot on both databases), each part a walk of the
    /// `(campaign_id, state, confirmed_at, notified_at)` index: the rows per state, then,
    /// among the notified, the confirmed and those whose window closed before `now` without a
    /// fetch (the rest are awaiting confirmation), and the failed per result; and the size of
    /// the selection, whose devices without a row are pending. Only the first part visits
    /// every row, and only its index entry.
    pub async fn campaign_counts(&self, id: i64, window_ms: i64, now: i64) -> Result<CampaignCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT CAST(0 AS BIGINT) AS part, state AS k, COUNT(*) AS n, MAX(notified_at) AS last_notified_at \
               FROM campaign_devices WHERE campaign_id = $1 GROUP BY state \
             UNION ALL SELECT CAST(2 AS BIGINT), 'selected', devices, NULL FROM campaigns WHERE id = $1 \
             UNION ALL SELECT CAST(1 AS BIGINT), 'confirmed', COUNT(*), NULL FROM campaign_devices \
               WHERE campaign_id = $1 AND state = 'notified' AND confirmed_at IS NOT NULL \
             UNION ALL SELECT CAST(1 AS BIGINT), 'not-confirmed', COUNT(*), NULL FROM campaign_devices \
               WHERE campaign_id = $1 AND state = 'notified' AND confirmed_at IS NULL AND notified_at < $2 \
             UNION ALL SELECT CAST(1 AS BIGINT), COALESCE(result, 'error'), COUNT(*), NULL FROM campaign_devices \
               WHERE campaign_id = $1 AND state = 'failed' GROUP BY COALESCE(result, 'error')",
        )
        .bind(id)
        .bind(now.saturating_sub(window_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut out = CampaignCounts::default();
        // Notified devices counted neither as confirmed nor as out of time are awaiting.
        let mut awaiting = 0;
        let mut selected = None;
        for r in &rows {
            let k: String = r.try_get("k")?;
            let n: i64 = r.try_get("n")?;
            let part: i64 = r.try_get("part")?;
            if part == 2 {
                selected = Some(n);
                continue;
            }
            if part == 0 {
                out.devices += n;
                let last: Option<i64> = r.try_get("last_notified_at")?;
                out.last_notified_at = out.last_notified_at.max(last);
                match k.as_str() {
                    "notified" => awaiting += n,
                    // Counted per result by the last part.
                    "failed" => {}
                    _ => add_count(&mut out, &k, n)?,
                }
                continue;
            }
            if matches!(k.as_str(), "confirmed" | "not-confirmed") {
                awaiting -= n;
            }
            add_count(&mut out, &k, n)?;
        }
        add_count(&mut out, "awaiting-confirmation", awaiting)?;
        // The devices of the selection without a row have never been sent to: pending.
        let unwritten = selected.unwrap_or(out.devices).saturating_sub(out.devices);
        add_count(&mut out, "pending", unwritten)?;
        out.devices += unwritten;
        Ok(out)
    }

    /// Devices that failed or were not confirmed in time, at most `limit`.
    pub async fn campaign_failing(
        &self,
        id: i64,
        window_ms: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<CampaignDevice>, StoreError> {
        // Two ranges of the progress index, not a pass over every device; sorted on an
        // expression so that neither database walks the primary key in MAC order instead.
        let rows = sqlx::query(concat!(
            "SELECT * FROM (",
            select_campaign_devices!("WHERE campaign_id = $1 AND state = 'failed' UNION ALL "),
            select_campaign_devices!(
                "WHERE campaign_id = $1 AND state = 'notified' AND confirmed_at IS NULL AND notified_at < $2"
            ),
            ") f ORDER BY mac || '' LIMIT $3"
        ))
        .bind(id)
        .bind(now.saturating_sub(window_ms))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    /// Marks as confirmed every notified device that fetched its own config file within its
    /// window (`notified_at` to `notified_at + window_ms`), recording that fetch's time and
    /// hash; returns them with the fetch time.
    ///
    /// A fetch of the file proves the device has its current config because the server only
    /// serves the current rendering, and only successful fetches (200, and 304 to a validator
    /// of the current content) are recorded in `device_fetched`. A fetch after the window does
    /// not confirm: the device stays `not-confirmed`. That table keeps one row per (mac, file),
    /// so the join matches at most one fetch per device. One statement, whatever the
    /// campaign's size.
    ///
    /// Only devices whose window was still open at `open_since` (ms since the epoch) are
    /// looked at: a caller that checked at `open_since`, after every fetch made before then was
    /// recorded, has settled the others already. 0 looks at all.
    pub async fn confirm_fetched(
        &self,
        id: i64,
        window_ms: i64,
        open_since: i64,
    ) -> Result<Vec<(Mac, i64)>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "UPDATE campaign_devices SET confirmed_at = f.at, fetched_hash = f.hash FROM device_fetched f \
             WHERE campaign_devices.campaign_id = $1 AND campaign_devices.state = 'notified' \
             AND campaign_devices.confirmed_at IS NULL AND campaign_devices.notified_at + $2 >= $3 \
             AND f.mac = campaign_devices.mac AND f.file = campaign_devices.expected_file \
             AND f.at >= campaign_devices.notified_at AND f.at <= campaign_devices.notified_at + $2 \
             RETURNING campaign_devices.mac AS mac, campaign_devices.confirmed_at AS confirmed_at",
        )
        .bind(id)
        .bind(window_ms)
        .bind(open_since)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(|r| Ok((mac_column(r, "mac")?, r.try_get("confirmed_at")?))).collect()
    }
}
