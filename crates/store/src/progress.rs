//! A campaign's progress as the database computes it: counts per outcome, the failing devices,
//! and confirmation by a fetch of the device's own file within its window.

use sipprov_model::{CampaignOutcome, EventKind, Mac};
use sqlx::Row;

use crate::campaigns::{device_from_row, select_campaign_devices};
use crate::{batch, jsonb, mac_column, Backend, CampaignDevice, EventText, Store, StoreError, WriteTx};

/// How many devices of a campaign are in each outcome, computed by the database.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignCounts {
    /// Devices per outcome.
    pub counts: std::collections::BTreeMap<CampaignOutcome, i64>,
    /// Devices in the campaign.
    pub devices: i64,
    /// When the latest NOTIFY left (ms since the epoch), if any did.
    pub last_notified_at: Option<i64>,
    /// When the latest outcome was recorded (ms since the epoch): the time taken by the
    /// transaction that wrote the last batch of outcomes, just before its commit. `None` before
    /// any outcome (and for campaigns recorded before the store kept it). Read in the same
    /// snapshot as the counts: once they show every outcome in, this is the last one's time.
    pub last_outcome_at: Option<i64>,
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
    /// One statement (so one snapshot on both databases), each part a range of the
    /// `(campaign_id, state, confirmed_at, notified_at)` index: the rows of each state the
    /// store writes (`pending`, `sending`, `notified`, `failed`), counted range by range rather
    /// than grouped, which compared every entry's state with the previous one's and took the
    /// latest `notified_at` of every entry on the way (three times the time on SQLite, for a
    /// campaign of 20,000); among the notified, the confirmed and those whose window closed
    /// before `now` without a fetch (the rest are awaiting confirmation), and the failed per
    /// result; the size of the selection, whose devices without a row are pending; and the
    /// latest NOTIFY, as the largest `notified_at` of each state with and without a
    /// confirmation: where `confirmed_at` is NULL that is the last entry of its range, one
    /// seek (SQLite, "The SQLite Query Optimizer Overview", "The MIN/MAX optimization"),
    /// and only the confirmed devices' range is walked for it. Only the first four parts and
    /// that one visit every entry they count. The campaign's row gives the size of the
    /// selection and when its latest outcome was recorded.
    pub async fn campaign_counts(&self, id: i64, window_ms: i64, now: i64) -> Result<CampaignCounts, StoreError> {
        /// The rows of one state.
        macro_rules! rows_in {
            ($state:literal) => {
                concat!(
                    "SELECT CAST(0 AS BIGINT) AS part, '",
                    $state,
                    "' AS k, COUNT(*) AS n FROM campaign_devices WHERE campaign_id = $1 AND state = '",
                    $state,
                    "' "
                )
            };
        }
        /// The latest NOTIFY of one state's devices without a confirmation, and of those with.
        macro_rules! latest_in {
            ($state:literal) => {
                concat!(
                    "UNION ALL SELECT CAST(3 AS BIGINT), 'latest', MAX(notified_at) FROM campaign_devices \
                     WHERE campaign_id = $1 AND state = '",
                    $state,
                    "' AND confirmed_at IS NULL \
                     UNION ALL SELECT CAST(3 AS BIGINT), 'latest', MAX(notified_at) FROM campaign_devices \
                     WHERE campaign_id = $1 AND state = '",
                    $state,
                    "' AND confirmed_at IS NOT NULL "
                )
            };
        }
        let rows = sqlx::query(concat!(
            rows_in!("pending"),
            "UNION ALL ",
            rows_in!("sending"),
            "UNION ALL ",
            rows_in!("notified"),
            "UNION ALL ",
            rows_in!("failed"),
            "UNION ALL SELECT CAST(2 AS BIGINT), 'selected', devices FROM campaigns WHERE id = $1 \
             UNION ALL SELECT CAST(4 AS BIGINT), 'last-outcome', last_outcome_at FROM campaigns WHERE id = $1 \
             UNION ALL SELECT CAST(1 AS BIGINT), 'confirmed', COUNT(*) FROM campaign_devices \
               WHERE campaign_id = $1 AND state = 'notified' AND confirmed_at IS NOT NULL \
             UNION ALL SELECT CAST(1 AS BIGINT), 'not-confirmed', COUNT(*) FROM campaign_devices \
               WHERE campaign_id = $1 AND state = 'notified' AND confirmed_at IS NULL AND notified_at < $2 \
             UNION ALL SELECT CAST(1 AS BIGINT), COALESCE(result, 'error'), COUNT(*) FROM campaign_devices \
               WHERE campaign_id = $1 AND state = 'failed' GROUP BY COALESCE(result, 'error') ",
            latest_in!("pending"),
            latest_in!("sending"),
            latest_in!("notified"),
            latest_in!("failed"),
        ))
        .bind(id)
        .bind(now.saturating_sub(window_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut out = CampaignCounts::default();
        // Notified devices counted neither as confirmed nor as out of time are awaiting.
        let mut awaiting = 0;
        let mut selected = None;
        for r in &rows {
            let part: i64 = r.try_get("part")?;
            if part == 3 {
                let latest: Option<i64> = r.try_get("n")?;
                out.last_notified_at = out.last_notified_at.max(latest);
                continue;
            }
            if part == 4 {
                out.last_outcome_at = r.try_get("n")?;
                continue;
            }
            let k: String = r.try_get("k")?;
            let n: i64 = r.try_get("n")?;
            if part == 2 {
                selected = Some(n);
                continue;
            }
            if part == 0 {
                out.devices += n;
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

    /// Confirms the notified devices whose fetch of their own config file, recorded with a time
    /// from `since` to before `until` (ms since the epoch), falls within their window
    /// (`notified_at` to `notified_at` plus the campaign's `confirm_window_ms`), recording that
    /// fetch's time and hash; returns them with the fetch time.
    ///
    /// A fetch of the file proves the device has its current config because the server only
    /// serves the current rendering, and only successful fetches (200, and 304 to a validator
    /// of the current content) are recorded in `device_files`. A fetch after the window does
    /// not confirm: the device stays `not-confirmed`. That table keeps one row per (mac, file),
    /// so at most one fetch per device is looked at.
    ///
    /// The work follows the fetches, not the campaign: the fetched rows of `device_files` in that
    /// range (its `(at, mac, file)` index) are read in pages of 1,024, and each page's devices
    /// are confirmed in a write transaction of their own, by primary key. A check over
    /// a million-device campaign so costs what was fetched since the last one, and never holds
    /// the write lock for more than a page: looking at every notified device in one statement,
    /// as this did before, held it for seconds and stalled the fetch log. A device whose
    /// outcome is written after its fetch was recorded is confirmed with the outcome instead
    /// ([`Store::record_notify_results_with_events`]). Each confirmed device gets its
    /// `confirmed` history event (detail [`confirmed_detail`]) in the same transaction.
    pub async fn confirm_fetched(&self, id: i64, since: i64, until: i64) -> Result<Vec<(Mac, i64)>, StoreError> {
        let mut confirmed = Vec::new();
        // The first page starts at `since` itself: every key sorts after ('', '').
        let mut after = (since, String::new(), String::new());
        loop {
            let rows = sqlx::query(
                "SELECT mac, file, at FROM device_files WHERE (at, mac, file) > ($1, $2, $3) AND at < $4 \
                 ORDER BY at, mac, file LIMIT $5",
            )
            .bind(after.0)
            .bind(&after.1)
            .bind(&after.2)
            .bind(until)
            .bind(CONFIRM_PAGE as i64)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else { break };
            after = (last.try_get("at")?, last.try_get("mac")?, last.try_get("file")?);
            let mut macs = rows.iter().map(|r| mac_column(r, "mac")).collect::<Result<Vec<_>, _>>()?;
            macs.sort_unstable();
            macs.dedup();
            let mut tx = self.write_tx().await?;
            confirmed.extend(confirm_devices(self, &mut tx, id, &macs).await?);
            tx.commit().await?;
            if rows.len() < CONFIRM_PAGE {
                break;
            }
        }
        Ok(confirmed)
    }
}

/// Rows of `device_files` read, and devices confirmed in one write transaction, at a time by
/// [`Store::confirm_fetched`]: a few milliseconds of the write lock.
const CONFIRM_PAGE: usize = 1_024;

/// The condition under which a notified device's recorded fetch `f` confirms it, after the
/// device's own conditions: its own file, within its window.
///
/// `state || ''` keeps SQLite from reading the devices through the progress index
/// (`campaign_id, state, confirmed_at, …`), which it otherwise prefers without statistics: that
/// walks every unconfirmed device of the campaign instead of probing the primary key for the
/// few named (SQLite, "The SQLite Query Optimizer Overview", section "Disqualifying WHERE
/// clause terms using unary-+"; the concatenation works on PostgreSQL as well).
macro_rules! confirming_fetch {
    () => {
        "campaign_devices.state || '' = 'notified' AND campaign_devices.confirmed_at IS NULL \
         AND f.mac = campaign_devices.mac AND f.file = campaign_devices.expected_file \
         AND f.at >= campaign_devices.notified_at \
         AND f.at <= campaign_devices.notified_at + (SELECT confirm_window_ms FROM campaigns WHERE id = ?) \
         RETURNING campaign_devices.mac AS mac, campaign_devices.confirmed_at AS confirmed_at"
    };
}

/// The detail of the `confirmed` history event of campaign `campaign`: the text serde_json
/// writes for the API's `ConfirmedDetail` (a test of the server compares the two).
pub fn confirmed_detail(campaign: i64) -> String {
    format!("{{\"campaign\":{campaign}}}")
}

/// Writes a `confirmed` history event for each device just confirmed in campaign `id`, at the
/// confirming fetch's time, in the transaction that confirmed them: a confirmation is never
/// without its event, and a burst of them (a check after a busy interval confirms thousands)
/// never meets a full fetch log, which dropped such events before.
pub(crate) async fn record_confirmed(
    store: &Store,
    tx: &mut WriteTx,
    id: i64,
    confirmed: &[(Mac, i64)],
) -> Result<(), StoreError> {
    if confirmed.is_empty() {
        return Ok(());
    }
    let detail = confirmed_detail(id);
    if store.backend() == Backend::Sqlite {
        return record_confirmed_sqlite(tx, &detail, confirmed).await;
    }
    let events: Vec<EventText> = confirmed
        .iter()
        .map(|(mac, at)| EventText { mac: *mac, at: *at, kind: EventKind::Confirmed, detail: detail.clone() })
        .collect();
    let refs: Vec<&EventText> = events.iter().collect();
    store.insert_event_refs(tx, &refs).await?;
    Ok(())
}

/// [`record_confirmed`] on SQLite: one statement, the (mac, time) pairs as one JSONB batch
/// (see `jsonb`), kind and detail bound once; ids follow the table's largest, as
/// [`Store::insert_event_refs`] numbers them (this transaction holds the write lock). Bound five
/// parameters an event, a check's thousands of events cost sqlx's `Any` layer more than SQLite
/// spent writing them.
async fn record_confirmed_sqlite(tx: &mut WriteTx, detail: &str, confirmed: &[(Mac, i64)]) -> Result<(), StoreError> {
    let mut batch = jsonb::Batch::with_capacity(confirmed.len(), 32);
    for (mac, at) in confirmed {
        batch.row(|row| {
            row.mac(*mac).int(*at);
        });
    }
    let max: Option<i64> =
        sqlx::query("SELECT MAX(id) AS m FROM device_events").fetch_one(&mut **tx).await?.try_get("m")?;
    // `j.key` is the element's index: the events keep the confirmations' order in their ids.
    sqlx::query(
        "INSERT INTO device_events (id, mac, at, kind, detail) SELECT ? + j.key, j.value ->> '$[0]', \
         j.value ->> '$[1]', ?, ? FROM jsonb_each(?) j",
    )
    .bind(max.unwrap_or(0) + 1)
    .bind(EventKind::Confirmed.as_str())
    .bind(detail)
    .bind(batch.finish())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Confirms those of `macs` in campaign `id` whose recorded fetch confirms them, with their
/// history events; returns them with the fetch's time.
pub(crate) async fn confirm_devices(
    store: &Store,
    tx: &mut WriteTx,
    id: i64,
    macs: &[Mac],
) -> Result<Vec<(Mac, i64)>, StoreError> {
    let confirmed = match store.backend() {
        Backend::Sqlite => confirm_devices_sqlite(tx, id, macs).await?,
        Backend::Postgres => {
            let mut confirmed = Vec::new();
            for chunk in store.chunks(macs, 1) {
                let sql = format!(
                    "UPDATE campaign_devices SET confirmed_at = f.at, fetched_hash = f.hash FROM device_files f \
                     WHERE campaign_devices.campaign_id = ? AND campaign_devices.mac IN ({}) AND {}",
                    batch::repeat("?", chunk.len()),
                    confirming_fetch!()
                );
                let query = sqlx::query(sqlx::AssertSqlSafe(store.numbered(&sql))).bind(id);
                let query = chunk.iter().fold(query, |q, mac| q.bind(mac.to_string())).bind(id);
                confirmed.extend(confirmed_rows(&query.fetch_all(&mut **tx).await?)?);
            }
            confirmed
        }
    };
    record_confirmed(store, tx, id, &confirmed).await?;
    Ok(confirmed)
}

/// [`confirm_devices`]'s update on SQLite (and the outcome writer's, for the devices of its
/// batch): the MACs as one JSONB batch unpacked by `jsonb_each`, one statement, each device
/// probed by primary key in both tables. Bound one parameter a MAC (256 to a statement), with
/// the events bound five parameters each, a confirmed device cost 63,225 instructions in a
/// check; as JSONB, 55,875 (callgrind, the `campaign_confirmations` example).
pub(crate) async fn confirm_devices_sqlite(
    tx: &mut WriteTx,
    id: i64,
    macs: &[Mac],
) -> Result<Vec<(Mac, i64)>, StoreError> {
    if macs.is_empty() {
        return Ok(Vec::new());
    }
    let mut batch = jsonb::Batch::with_capacity(macs.len(), 16);
    for mac in macs {
        batch.row(|row| {
            row.mac(*mac);
        });
    }
    let rows = sqlx::query(concat!(
        "UPDATE campaign_devices SET confirmed_at = f.at, fetched_hash = f.hash FROM device_files f \
         WHERE campaign_devices.campaign_id = ? \
         AND campaign_devices.mac IN (SELECT j.value ->> '$[0]' FROM jsonb_each(?) j) AND ",
        confirming_fetch!()
    ))
    .bind(id)
    .bind(batch.finish())
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    confirmed_rows(&rows)
}

/// The (mac, confirmed_at) pairs a confirming statement returned.
pub(crate) fn confirmed_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<(Mac, i64)>, StoreError> {
    rows.iter().map(|r| Ok((mac_column(r, "mac")?, r.try_get("confirmed_at")?))).collect()
}
