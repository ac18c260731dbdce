//! A campaign's progress as the database computes it: counts per outcome, the failing devices,
//! and confirmation by a fetch of the device's own file within its window.

use sipprov_model::{CampaignOutcome, Mac};
use sqlx::Row;

use crate::campaigns::{device_from_row, select_campaign_devices};
use crate::{mac_column, CampaignDevice, Store, StoreError};

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
    /// that one visit every entry they count.
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
