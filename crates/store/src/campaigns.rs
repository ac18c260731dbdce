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

use sipprov_model::{CampaignDeviceState, CampaignState, CheckSyncResult, Mac};
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

pub(crate) fn device_from_row(r: &AnyRow) -> Result<CampaignDevice, StoreError> {
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
pub(crate) use select_campaign_devices;

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

    /// Records NOTIFY outcomes and the devices' history events in one transaction. Returns the
    /// devices confirmed with their outcome (their `confirmed` events written with it), with the
    /// confirming fetch's time: those that had fetched their own file within the window before
    /// the outcome was written (a phone that fetches as soon as it has answered the NOTIFY),
    /// which [`Store::confirm_fetched`], reading only fetches recorded since its last check,
    /// would not look at again.
    pub async fn record_notify_results_with_events(
        &self,
        id: i64,
        results: &[(Mac, NotifyResult)],
        events: &[crate::EventText],
    ) -> Result<Vec<(Mac, i64)>, StoreError> {
        let mut tx = self.write_tx().await?;
        let confirmed = self.upsert_notify_results(&mut tx, id, results).await?;
        match self.backend {
            crate::Backend::Sqlite => insert_events_sqlite(&mut tx, events).await?,
            crate::Backend::Postgres => {
                let refs: Vec<&crate::EventText> = events.iter().collect();
                self.insert_event_refs(&mut tx, &refs).await?;
            }
        }
        stamp_last_outcome(&mut tx, id, results).await?;
        tx.commit().await?;
        Ok(confirmed)
    }

    /// Records NOTIFY outcomes in one transaction; of two outcomes for one device, the later
    /// in `results` wins. A device's first outcome writes its row; a new outcome clears any
    /// earlier confirmation (a retry). It counts the attempt unless the device was marked
    /// `sending` (which counted it already). A notified device that already fetched its own
    /// file within its window is confirmed at once; those are returned, with the fetch's time.
    pub async fn record_notify_results(
        &self,
        id: i64,
        results: &[(Mac, NotifyResult)],
    ) -> Result<Vec<(Mac, i64)>, StoreError> {
        let mut tx = self.write_tx().await?;
        let confirmed = self.upsert_notify_results(&mut tx, id, results).await?;
        stamp_last_outcome(&mut tx, id, results).await?;
        tx.commit().await?;
        Ok(confirmed)
    }

    /// Writes the outcomes, then confirms the notified devices among them whose fetch is
    /// already recorded, with their `confirmed` events (see
    /// [`Store::record_notify_results_with_events`]).
    async fn upsert_notify_results(
        &self,
        tx: &mut WriteTx,
        id: i64,
        results: &[(Mac, NotifyResult)],
    ) -> Result<Vec<(Mac, i64)>, StoreError> {
        let rows = batch::last_per_key_hashed::<_, _, sipprov_model::BuildMacHasher>(results, |(mac, _)| *mac);
        let confirmable = self.fetched_since_any_notify(tx, &rows).await?;
        if self.backend == crate::Backend::Sqlite {
            let confirmed = upsert_notify_results_sqlite(tx, id, &rows, confirmable).await?;
            crate::progress::record_confirmed(self, tx, id, &confirmed).await?;
            return Ok(confirmed);
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
        if !confirmable {
            return Ok(Vec::new());
        }
        let macs: Vec<Mac> = rows.iter().map(|(mac, _)| *mac).collect();
        crate::progress::confirm_devices(self, tx, id, &macs).await
    }

    /// Whether any fetch is recorded at or after the earliest NOTIFY of `rows` that reached its
    /// device: only then can one of them be confirmed as its outcome is written. One probe of
    /// `device_files`' time index per batch; without it, looking for each device's fetch cost
    /// about 6,500 instructions an outcome (`campaign_outcomes`) in a campaign whose phones had
    /// not fetched yet, as is usual: the fetch log writes those rows every few seconds.
    async fn fetched_since_any_notify(
        &self,
        tx: &mut WriteTx,
        rows: &[&(Mac, NotifyResult)],
    ) -> Result<bool, StoreError> {
        let notified = rows.iter().filter(|(_, r)| r.state() == CampaignDeviceState::Notified);
        let Some(earliest) = notified.map(|(_, r)| r.at).min() else { return Ok(false) };
        // A count of at most one row: an integer on both databases (EXISTS is a boolean on
        // PostgreSQL and an integer on SQLite).
        let any: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM device_files WHERE at >= $1 LIMIT 1) f")
            .bind(earliest)
            .fetch_one(&mut **tx)
            .await?;
        Ok(any > 0)
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
        let rows = sqlx::query("SELECT mac, file, hash, at FROM device_files WHERE at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((mac_column(r, "mac")?, r.try_get("file")?, r.try_get("hash")?, r.try_get("at")?)))
            .collect()
    }
}

/// Records, in the transaction that writes `results` (campaign `id`'s outcomes) and as its last
/// statement before the commit, when they were recorded: the campaign's `last_outcome_at` (the
/// report's), never moved back. The time is the clock's now, or the latest of the outcomes' own
/// times if the clock reads earlier (a clock stepped back), so that once every outcome is in,
/// it is never before the report's `last_notified_at`. One update by primary key a batch.
async fn stamp_last_outcome(tx: &mut WriteTx, id: i64, results: &[(Mac, NotifyResult)]) -> Result<(), StoreError> {
    let Some(latest) = results.iter().map(|(_, r)| r.at).max() else { return Ok(()) };
    let at = now_ms().max(latest);
    sqlx::query(
        "UPDATE campaigns SET last_outcome_at = $2 WHERE id = $1 \
         AND (last_outcome_at IS NULL OR last_outcome_at < $2)",
    )
    .bind(id)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// [`Store::upsert_notify_results`] on SQLite: the batch as one JSONB value bound once,
/// unpacked by `jsonb_each`, one statement per distinct outcome and shape of expected file.
///
/// Bound one by one, a batch of 500 outcomes was 4,000 parameters, each converted from sqlx's
/// `Any` arguments to SQLite's and copied into the statement: the campaign's writer spent about
/// as long preparing the statements as SQLite spent writing the rows. One value, already in
/// SQLite's binary JSON form (see `jsonb`), costs a fraction of that. The outcome itself
/// (state, result, status, reason) is nearly always the same for a whole batch (`ok`, 200,
/// `OK`): rows that share it go in one statement with it bound once. So does the device's
/// expected file when it is the device's MAC between a prefix and a suffix that the rows share
/// (a vendor's `<mac>.cfg`), or when there is none ([`FileShape`]): the batch is then an
/// object of MAC → time, read by `jsonb_each`'s `key` and `value` with no `->>` at all, and
/// the file written as `prefix || mac || suffix`, the same text (a NULL prefix gives NULL).
/// Unpacked as an array of (MAC, file, time) rows, each of the three `->>` cost about 800
/// instructions and a copy of the row (`jsonExtractFunc`, `jsonEachColumn` in SQLite's
/// `json.c`), some 3,000 an outcome (callgrind, bench/sip-instructions.sh); other files still
/// go that way. (`WHERE true`: SQLite's grammar needs it between a `SELECT … FROM` and
/// `ON CONFLICT`.)
async fn upsert_notify_results_sqlite(
    tx: &mut WriteTx,
    id: i64,
    rows: &[&(Mac, NotifyResult)],
    confirmable: bool,
) -> Result<Vec<(Mac, i64)>, StoreError> {
    for (outcome, members) in same_outcome(rows) {
        for (shape, members) in same_file_shape(&members) {
            let query = match shape {
                FileShape::AroundMac { prefix, suffix } => {
                    let mut batch = crate::jsonb::ByMac::with_capacity(members.len());
                    for (mac, r) in &members {
                        batch.int(*mac, r.at);
                    }
                    let sql = concat!(
                        "INSERT INTO campaign_devices (campaign_id, mac, state, attempts, result, status, reason, \
                         expected_file, notified_at) SELECT ?, j.key, ?, 1, ?, ?, ?, ? || j.key || ?, j.value \
                         FROM jsonb_each(?) j WHERE true ",
                        outcome_upsert_set!()
                    );
                    with_outcome(sqlx::query(sql), id, outcome).bind(prefix).bind(suffix).bind(batch.finish())
                }
                FileShape::Other => {
                    let mut batch = crate::jsonb::Batch::with_capacity(members.len(), 40);
                    for (mac, r) in &members {
                        batch.row(|row| {
                            row.mac(*mac).opt_text(r.expected_file.as_deref()).int(r.at);
                        });
                    }
                    // `jsonb_each`, not `json_each`: each row's `value` comes out in the binary
                    // form, which `->>` reads in place (with `json_each` it came out as text
                    // that every `->>` parsed again). Paths as `'$[n]'`, not `n`: SQLite's `->>`
                    // turns an integer (or a label) into that path text on every call before
                    // it looks it up (`jsonExtractFunc` in its `json.c`).
                    let sql = concat!(
                        "INSERT INTO campaign_devices (campaign_id, mac, state, attempts, result, status, reason, \
                         expected_file, notified_at) SELECT ?, j.value ->> '$[0]', ?, 1, ?, ?, ?, \
                         j.value ->> '$[1]', j.value ->> '$[2]' FROM jsonb_each(?) j WHERE true ",
                        outcome_upsert_set!()
                    );
                    with_outcome(sqlx::query(sql), id, outcome).bind(batch.finish())
                }
            };
            query.execute(&mut **tx).await?;
        }
    }
    if !confirmable {
        return Ok(Vec::new());
    }
    // The same devices are the ones to confirm: one probe of each table by primary key.
    let macs: Vec<Mac> = rows.iter().map(|(mac, _)| *mac).collect();
    crate::progress::confirm_devices_sqlite(tx, id, &macs).await
}

/// `rows` grouped by their outcome (result, status, reason; the state follows the result), in
/// the order each outcome first appears. A batch holds a handful of distinct outcomes at most,
/// so each row is compared with the groups so far.
fn same_outcome<'a>(rows: &[&'a (Mac, NotifyResult)]) -> Vec<(&'a NotifyResult, Vec<&'a (Mac, NotifyResult)>)> {
    let mut groups: Vec<(&NotifyResult, Vec<&(Mac, NotifyResult)>)> = Vec::new();
    for row in rows {
        let r = &row.1;
        match groups.iter_mut().find(|(g, _)| g.result == r.result && g.status == r.status && g.reason == r.reason) {
            Some((_, members)) => members.push(row),
            None => groups.push((r, vec![row])),
        }
    }
    groups
}

/// `query` with its first parameters bound: the campaign and the outcome its rows share (the
/// SQLite outcome upserts' common head).
fn with_outcome<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    id: i64,
    outcome: &'q NotifyResult,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(id)
        .bind(outcome.state().as_str())
        .bind(outcome.result.as_str())
        .bind(outcome.status.map(i64::from))
        .bind(&outcome.reason)
}

/// How an outcome's expected file is written by the SQLite upsert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileShape<'a> {
    /// The device's MAC (its twelve lower-case hex digits, as the `mac` column holds it)
    /// between `prefix` and `suffix`; no file at all when `prefix` is `None`.
    AroundMac { prefix: Option<&'a str>, suffix: &'a str },
    /// Anything else (a MAC in capitals, or none in the name): written as it is.
    Other,
}

/// The shape of `mac`'s expected file `file`: the file is `prefix`, the MAC, `suffix`, exactly,
/// at the MAC's first place in it.
fn file_shape(mac: Mac, file: Option<&str>) -> FileShape<'_> {
    let Some(file) = file else { return FileShape::AroundMac { prefix: None, suffix: "" } };
    let digits = crate::jsonb::mac_text(mac);
    // Compared byte by byte, not with `str::find`, whose searcher took about 700 instructions
    // to set up for a name of a dozen bytes. ASCII digits: a match starts and ends on char
    // boundaries, so the slices below cannot fail.
    let bytes = file.as_bytes();
    let at = (0..(bytes.len() + 1).saturating_sub(digits.len()))
        .find(|&i| bytes[i] == digits[0] && bytes[i..i + digits.len()] == digits);
    match at.and_then(|at| Some((file.get(..at)?, file.get(at + digits.len()..)?))) {
        Some((prefix, suffix)) => FileShape::AroundMac { prefix: Some(prefix), suffix },
        None => FileShape::Other,
    }
}

/// `rows` grouped by the shape of their expected file ([`file_shape`]), in the order each shape
/// first appears: one group for a vendor's devices, a few for a mixed fleet.
fn same_file_shape<'a>(rows: &[&'a (Mac, NotifyResult)]) -> Vec<(FileShape<'a>, Vec<&'a (Mac, NotifyResult)>)> {
    let mut groups: Vec<(FileShape<'a>, Vec<&'a (Mac, NotifyResult)>)> = Vec::new();
    for row in rows {
        let shape = file_shape(row.0, row.1.expected_file.as_deref());
        match groups.iter_mut().find(|(s, _)| *s == shape) {
            Some((_, members)) => members.push(row),
            None => groups.push((shape, vec![row])),
        }
    }
    groups
}

/// A batch of history events on SQLite (the campaign's outcomes, written with them): the batch
/// as one JSONB array bound once and unpacked by `jsonb_each`, ids following the table's
/// largest, as [`Store::insert_events`] numbers them (this transaction holds the write lock).
///
/// Bound five parameters an event, a batch of 500 was eight statements and 2,500 parameters.
/// Each run of events of one kind (a campaign's batch is one run of `notify` events) is one
/// statement with the kind bound once, not unpacked from every row.
async fn insert_events_sqlite(tx: &mut WriteTx, events: &[crate::EventText]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let max: Option<i64> =
        sqlx::query("SELECT MAX(id) AS m FROM device_events").fetch_one(&mut **tx).await?.try_get("m")?;
    let mut next_id = max.unwrap_or(0) + 1;
    for run in events.chunk_by(|a, b| a.kind == b.kind) {
        // The detail goes in as its JSON text, taken as it is (as PostgreSQL's path stores it).
        let mut batch = crate::jsonb::Batch::with_capacity(run.len(), 200);
        for e in run {
            batch.row(|row| {
                row.mac(e.mac).int(e.at).text(&e.detail);
            });
        }
        // `j.key` is the element's index: the events keep the batch's order in their ids.
        sqlx::query(
            "INSERT INTO device_events (id, mac, at, kind, detail) SELECT ? + j.key, j.value ->> '$[0]', \
             j.value ->> '$[1]', ?, j.value ->> '$[2]' FROM jsonb_each(?) j",
        )
        .bind(next_id)
        .bind(run[0].kind.as_str())
        .bind(batch.finish())
        .execute(&mut **tx)
        .await?;
        next_id += i64::try_from(run.len()).unwrap_or(i64::MAX);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_around_its_mac_is_the_prefix_the_mac_and_the_suffix() {
        let mac: Mac = "00:15:65:aa:bb:cc".parse().unwrap();
        let around = |prefix, suffix| FileShape::AroundMac { prefix: Some(prefix), suffix };
        assert_eq!(file_shape(mac, Some("001565aabbcc.cfg")), around("", ".cfg"));
        assert_eq!(file_shape(mac, Some("001565aabbcc")), around("", ""));
        assert_eq!(file_shape(mac, Some("cfg001565aabbcc.xml")), around("cfg", ".xml"));
        assert_eq!(file_shape(mac, Some("a/001565aabbcc-001565aabbcc")), around("a/", "-001565aabbcc"));
        assert_eq!(file_shape(mac, Some("é001565aabbccé")), around("é", "é"));
        assert_eq!(file_shape(mac, None), FileShape::AroundMac { prefix: None, suffix: "" });
        for other in ["SEP001565AABBCC.cnf.xml", "y000000000028.cfg", "", "001565aabbc", "001565aabbcd.cfg"] {
            assert_eq!(file_shape(mac, Some(other)), FileShape::Other, "{other}");
        }
        // Whatever the shape, the parts give the file back.
        for file in ["001565aabbcc.cfg", "x001565aabbcc", "001565aabbcc001565aabbcc", "0001565aabbcc"] {
            let FileShape::AroundMac { prefix: Some(prefix), suffix } = file_shape(mac, Some(file)) else {
                panic!("{file}")
            };
            assert_eq!(format!("{prefix}001565aabbcc{suffix}"), file);
        }
    }
}
