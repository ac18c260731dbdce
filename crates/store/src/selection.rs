//! A campaign's selection: which devices it reaches, stored with its chunks, not as a row per
//! device.
//!
//! Each chunk of a campaign (`campaign_chunks`, see `leases`) keeps the MACs of its range as
//! one text, each MAC's twelve hex digits one after another in order (`macs`, migration 0028),
//! and the campaign keeps how many there are (`campaigns.devices`). A device gets a row in
//! `campaign_devices` only when something happens to it: its outcome, or, on PostgreSQL, the
//! `sending` mark written before its NOTIFY leaves. A device of the selection without a row is
//! `pending`.
//!
//! Creating a `pending` row per device cost a campaign three B-tree inserts per device at
//! creation, and its outcome then rewrote that row and moved its entry within the progress
//! index; now the outcome inserts the row once. What is still sent is the selection less the
//! devices with an outcome (`notified` or `failed`): a device marked `sending` by a node that
//! died, or put back to `pending` by a retry, is sent again.

use sipprov_model::Mac;
use sqlx::Row;

use crate::{CampaignChunk, Store, StoreError};

/// The length of one MAC in a chunk's `macs`.
const MAC_DIGITS: usize = 12;

/// How many MACs one read of the devices with an outcome takes.
const DONE_PAGE: i64 = 4096;

/// `macs` (in order) as a chunk stores them: their twelve hex digits one after another.
///
/// On SQLite a campaign is one chunk, so this text is 12 MB for a million devices. The
/// statements that write and read it are not kept prepared (`persistent(false)`): a cached
/// SQLite statement keeps its last bound value and its last row's value until it runs again,
/// and a heap profile of a million-device campaign found both copies alive for the campaign's
/// whole run, 24 MB of its peak.
pub(crate) fn pack(macs: &[Mac]) -> String {
    let mut out = String::with_capacity(macs.len() * MAC_DIGITS);
    for mac in macs {
        // Display writes the twelve lower-case digits at once.
        use std::fmt::Write;
        let _ = write!(out, "{mac}");
    }
    out
}

/// The MACs of a chunk's `macs`, in their stored order.
fn unpack(text: &str) -> Result<Vec<Mac>, StoreError> {
    if !text.len().is_multiple_of(MAC_DIGITS) || !text.is_ascii() {
        return Err(StoreError::Corrupt(format!("campaign chunk MACs: {} characters", text.len())));
    }
    text.as_bytes()
        .chunks_exact(MAC_DIGITS)
        .map(|digits| {
            // ASCII, checked above: every 12-byte slice is a whole `str`.
            let digits = std::str::from_utf8(digits).unwrap_or_default();
            Mac::from_plain_hex(digits).ok_or_else(|| StoreError::Corrupt(format!("campaign chunk MAC {digits:?}")))
        })
        .collect()
}

/// The MACs of `selected` (in order) that are not in `done` (in order).
fn minus(selected: Vec<Mac>, done: &[Mac]) -> Vec<Mac> {
    if done.is_empty() {
        return selected;
    }
    let mut done = done.iter().peekable();
    selected
        .into_iter()
        .filter(|mac| {
            while done.next_if(|d| *d < mac).is_some() {}
            done.peek() != Some(&mac)
        })
        .collect()
}

impl Store {
    /// Every device campaign `id` reaches, in MAC order.
    pub(crate) async fn campaign_selection(&self, id: i64) -> Result<Vec<Mac>, StoreError> {
        let rows = sqlx::query("SELECT macs FROM campaign_chunks WHERE campaign_id = $1 ORDER BY chunk")
            .bind(id)
            .persistent(false)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.extend(unpack(&r.try_get::<String, _>("macs")?)?);
        }
        Ok(out)
    }

    /// The MACs still to be sent (pending, or sending when a crash cut them off), in order.
    pub async fn campaign_unsent(&self, id: i64) -> Result<Vec<Mac>, StoreError> {
        let selected = self.campaign_selection(id).await?;
        let done = self.campaign_done_between(id, "", "zzzzzzzzzzzz").await?;
        Ok(minus(selected, &done))
    }

    /// The MACs of chunk `chunk` still to be sent (pending, or sending when its node stopped
    /// before their outcome was written), in order.
    pub async fn campaign_chunk_unsent(&self, chunk: &CampaignChunk) -> Result<Vec<Mac>, StoreError> {
        // Not kept prepared (see `pack`'s note on memory).
        let row = sqlx::query("SELECT macs FROM campaign_chunks WHERE campaign_id = $1 AND chunk = $2")
            .bind(chunk.campaign_id)
            .bind(chunk.chunk)
            .persistent(false)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(Vec::new()) };
        let selected = unpack(&row.try_get::<String, _>("macs")?)?;
        let done = self.campaign_done_between(chunk.campaign_id, &chunk.first_mac, &chunk.last_mac).await?;
        Ok(minus(selected, &done))
    }

    /// The MACs from `first` to `last` of campaign `id` that have an outcome (`notified` or
    /// `failed`), in order.
    async fn campaign_done_between(&self, id: i64, first: &str, last: &str) -> Result<Vec<Mac>, StoreError> {
        // Read in pages, each page's MACs joined into one text by the database: sqlx hands rows
        // over one by one (a message between its worker thread and the caller per row), which
        // cost a campaign as much per device as planning its NOTIFY. Pages also keep what is
        // held at once small, as streaming did (`string_agg` with ORDER BY: PostgreSQL, and
        // SQLite since 3.44). A new campaign has no such row: one read finds none.
        let mut out = Vec::new();
        // `mac >= first` for the first page, `mac > after` for the next ones.
        let mut after: Option<String> = None;
        loop {
            let row = sqlx::query(
                "SELECT string_agg(mac, ',' ORDER BY mac) AS macs FROM (SELECT mac FROM campaign_devices \
                 WHERE campaign_id = $1 AND state IN ('notified', 'failed') AND mac >= $2 AND mac <= $4 \
                 AND mac <> $5 ORDER BY mac LIMIT $3) page",
            )
            .bind(id)
            .bind(after.as_deref().unwrap_or(first))
            .bind(DONE_PAGE)
            .bind(last)
            .bind(after.as_deref().unwrap_or(""))
            .fetch_one(&self.pool)
            .await?;
            let Some(macs) = row.try_get::<Option<String>, _>("macs")? else { break };
            let before = out.len();
            for text in macs.split(',') {
                out.push(text.parse::<Mac>().map_err(|e| StoreError::Corrupt(format!("mac {text:?}: {e}")))?);
            }
            if out.len() - before < DONE_PAGE as usize {
                break;
            }
            after = Some(macs.rsplit(',').next().unwrap_or_default().to_owned());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u64) -> Mac {
        format!("{n:012x}").parse().unwrap()
    }

    #[test]
    fn a_chunk_s_macs_round_trip() {
        let macs: Vec<Mac> = [1, 0x1565aabbcc, 0xffeeddccbbaa].into_iter().map(mac).collect();
        let text = pack(&macs);
        assert_eq!(text, "000000000001001565aabbccffeeddccbbaa");
        assert_eq!(unpack(&text).unwrap(), macs);
        assert_eq!(unpack("").unwrap(), vec![]);
        assert!(matches!(unpack("00000000001"), Err(StoreError::Corrupt(_))));
        assert!(matches!(unpack("00000000000g"), Err(StoreError::Corrupt(_))));
        assert!(matches!(unpack("0000000000é"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn the_unsent_are_the_selection_less_the_done() {
        let all: Vec<Mac> = (0..10).map(mac).collect();
        let done = [mac(0), mac(3), mac(4), mac(9), mac(20)];
        assert_eq!(minus(all.clone(), &done), [1, 2, 5, 6, 7, 8].map(mac));
        assert_eq!(minus(all.clone(), &[]), all);
        assert_eq!(minus(Vec::new(), &done), vec![]);
    }
}
