//! What devices fetched: each device's last-seen row (`device_seen`), what it last fetched per
//! file (`device_files`' `hash` and `at`), and the fetch log's interval write on SQLite, which
//! also carries the content change times gathered with them (`device_files`' `rendered_hash`
//! and `changed_at`: the same row as the fetch of that file, written once for both).
//!
//! Rows go to these tables in key order. A fleet fetching at random puts each row on a random
//! page of a large B-tree: written in the order they were gathered, a batch of 16,384 devices'
//! rows visited most leaf pages once per row, in no order, so a page left SQLite's cache
//! (16 MiB for the fetch log's connection, a few thousand pages) before its next row came and
//! was read again, and a page spilled to the WAL mid-transaction was written again. In key
//! order each leaf page is read once and finished with before the next (SQLite, "Database File
//! Format", section 1.6, "B-tree Pages": a table or index B-tree keeps its entries in key
//! order; "PRAGMA cache_spill": dirty pages beyond the cache are written out mid-transaction).

use std::collections::HashMap;

use sipprov_model::Mac;

use crate::{batch, Backend, EventText, FetchInfo, IntervalEvent, RenderedState, Store, StoreError, WriteTx};

/// The rows the fetch log writes with its last-seen write on SQLite
/// ([`Store::record_deferred_rows`], [`Store::defers_last_seen`]), gathered since the last such
/// write: the latest per device, and per device and file.
#[derive(Debug, Clone, Copy)]
pub struct DeferredRows<'a> {
    /// Each device's latest fetch: its `device_seen` row.
    pub seen: &'a [FetchInfo],
    /// What each device fetched per file: its `device_files` rows, which the campaign
    /// confirmation reads (after a flush, which writes these rows). A replay restores them and
    /// `seen` from the fetch events.
    pub fetched: &'a [FetchInfo],
    /// Content change times (`device_files`' `rendered_hash` and `changed_at`), written in the
    /// same upsert as `fetched`: a device file fetched and rendered since the last write is one
    /// row written, not two. Not replayed: one lost to a crash makes the file's next
    /// `Last-Modified` the time it is rendered again after the restart, later than the lost
    /// one, so a phone holding that content fetches it once more rather than keeping old
    /// content.
    pub rendered: &'a [RenderedState],
}

impl Store {
    /// Records fetches in one transaction (the server batches them), as a few multi-row
    /// statements. `fetches` is oldest first: per device and per (device, file), the latest
    /// wins, as if each fetch had been written in turn.
    pub async fn record_fetches(&self, fetches: &[FetchInfo]) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.upsert_files(&mut tx, fetches, &[]).await?;
        for chunk in self.chunks(&last_seen(fetches), 7) {
            self.upsert_last_seen(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the fetch log may write last-seen rows (`device_seen`) less often than the fetch
    /// events, with [`Store::record_fetch_interval`]: on SQLite, where this node is the only
    /// reader and [`Store::open`] replays the fetch events written since the last last-seen
    /// write (`fetch_seen_mark`). PostgreSQL nodes read each other's `device_seen` rows, so
    /// there they are written with every batch ([`Store::record_fetches`]).
    pub fn defers_last_seen(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    /// One interval of the fetch log's events (SQLite) in one transaction: `events` appended or
    /// extended, in order (see [`IntervalEvent`]). What each device last fetched follows with
    /// [`Store::record_deferred_rows`], less often. Returns each event's id, in order (an
    /// extension that could not be made is appended as `fallback(i)` for `events[i]`, and has a
    /// new id; a fallback missing then fails the write, and nothing is written).
    pub async fn record_fetch_interval(
        &self,
        events: &[IntervalEvent],
        fallback: &(dyn Fn(usize) -> Option<EventText> + Sync),
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        let refused = self.extend_fetch_events(&mut tx, events).await?;
        let fallbacks: Vec<EventText> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| matches!(e, IntervalEvent::Extend { id, .. } if refused.contains(id)))
            .map(|(i, _)| {
                fallback(i).ok_or_else(|| StoreError::Corrupt(format!("no event to append for interval event {i}")))
            })
            .collect::<Result<_, _>>()?;
        let mut fallbacks_in_order = fallbacks.iter();
        let appended: Vec<&EventText> = events
            .iter()
            .filter_map(|e| match e {
                IntervalEvent::New(event) => Some(event),
                IntervalEvent::Extend { id, .. } if !refused.contains(id) => None,
                IntervalEvent::Extend { .. } => fallbacks_in_order.next(),
            })
            .collect();
        let first = if appended.is_empty() { None } else { self.insert_event_refs(&mut tx, &appended).await? };
        let mut next = first.unwrap_or(0);
        let ids = events
            .iter()
            .map(|e| match e {
                IntervalEvent::Extend { id, .. } if !refused.contains(id) => *id,
                _ => {
                    next += 1;
                    next - 1
                }
            })
            .collect();
        tx.commit().await?;
        Ok(ids)
    }

    /// Writes the rows the fetch log gathered since its last last-seen write (SQLite), in a
    /// transaction of its own after the interval's events, and marks the fetch events written
    /// so far as reflected in `device_seen` and `device_files`, except those from `keep_from`
    /// on, which the fetch log may still extend and a replay must read again. Between two such
    /// writes the last-seen rows lag behind the events, and opening the store replays the
    /// difference.
    pub async fn record_deferred_rows(&self, rows: DeferredRows<'_>, keep_from: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.upsert_files(&mut tx, rows.fetched, rows.rendered).await?;
        for chunk in self.chunks(&last_seen(rows.seen), 7) {
            self.upsert_last_seen(&mut tx, chunk).await?;
        }
        sqlx::query(
            "UPDATE fetch_seen_mark SET event_id = MIN((SELECT COALESCE(MAX(id), 0) FROM device_events), ? - 1)",
        )
        .bind(keep_from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Brings `device_seen` and `device_files`' fetches up to date with the fetch events written
    /// after `fetch_seen_mark` (SQLite, at open; see [`Store::defers_last_seen`]): the same merge as the fetch log's
    /// (the latest fetch wins; a fetch that reports no model or firmware keeps the earlier
    /// report), in event order, for devices that still exist and only with events from after
    /// the device was (re)created. Returns how many events it replayed.
    pub(crate) async fn replay_fetch_events(&self) -> Result<u64, StoreError> {
        // Read first: a clean stop left nothing to replay, and a database opened read-only
        // (`?mode=ro`, for inspection) must open without a write.
        let pending: i64 = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM device_events WHERE kind = 'fetch' \
             AND id > (SELECT event_id FROM fetch_seen_mark))",
        )
        .fetch_one(&self.pool)
        .await?;
        if pending == 0 {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO device_seen (mac, last_seen_at, last_ip, last_file, last_hash, reported_model, reported_firmware) \
             SELECT e.mac, COALESCE(c.last_at, json_extract(e.detail, '$.last_at'), e.at), json_extract(e.detail, '$.ip'), \
             json_extract(e.detail, '$.file'), json_extract(e.detail, '$.hash'), json_extract(e.detail, '$.model'), \
             json_extract(e.detail, '$.firmware') \
             FROM device_events e JOIN devices d ON d.mac = e.mac LEFT JOIN fetch_event_counts c ON c.event_id = e.id \
             WHERE e.kind = 'fetch' AND e.id > (SELECT event_id FROM fetch_seen_mark) AND e.at >= d.created_at \
             ORDER BY e.id \
             ON CONFLICT (mac) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
             last_ip = excluded.last_ip, last_file = excluded.last_file, last_hash = excluded.last_hash, \
             reported_model = COALESCE(excluded.reported_model, device_seen.reported_model), \
             reported_firmware = COALESCE(excluded.reported_firmware, device_seen.reported_firmware) \
             WHERE excluded.last_seen_at >= device_seen.last_seen_at",
        )
        .execute(&mut *tx)
        .await?;
        // What each device fetched per file: the fetch log writes it with the last-seen rows, so
        // the same events bring it up to date. A row holding only a rendering (`at` NULL) takes
        // the fetch.
        sqlx::query(
            "INSERT INTO device_files (mac, file, hash, at) \
             SELECT e.mac, json_extract(e.detail, '$.file'), json_extract(e.detail, '$.hash'), \
             COALESCE(c.last_at, json_extract(e.detail, '$.last_at'), e.at) \
             FROM device_events e JOIN devices d ON d.mac = e.mac LEFT JOIN fetch_event_counts c ON c.event_id = e.id \
             WHERE e.kind = 'fetch' AND e.id > (SELECT event_id FROM fetch_seen_mark) AND e.at >= d.created_at \
             AND json_extract(e.detail, '$.file') IS NOT NULL AND json_extract(e.detail, '$.hash') IS NOT NULL \
             ORDER BY e.id \
             ON CONFLICT (mac, file) DO UPDATE SET hash = excluded.hash, at = excluded.at \
             WHERE device_files.at IS NULL OR excluded.at >= device_files.at",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE fetch_seen_mark SET event_id = (SELECT COALESCE(MAX(id), 0) FROM device_events)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Writes what each device last fetched per file (`fetched`, oldest first) and the content
    /// change times (`rendered`, the later of two for a file wins) in one pass over
    /// `device_files`, one row per device and file in key order: a file both fetched and
    /// rendered since the last write (every fetch of a device not rendered since the start) is
    /// one row written, where two upserts would visit its page twice, the second time after it
    /// may have left the cache (see the module's doc). Either may be empty: each row keeps the
    /// half it is not given (what the device fetched, or what was rendered for it).
    pub(crate) async fn upsert_files(
        &self,
        tx: &mut WriteTx,
        fetched: &[FetchInfo],
        rendered: &[RenderedState],
    ) -> Result<(), StoreError> {
        let rows = file_rows(fetched, rendered);
        for chunk in self.chunks(&rows, 6) {
            let sql = format!(
                "INSERT INTO device_files (mac, file, hash, at, rendered_hash, changed_at) VALUES {} \
                 ON CONFLICT (mac, file) DO UPDATE SET hash = COALESCE(excluded.hash, device_files.hash), \
                 at = COALESCE(excluded.at, device_files.at), \
                 rendered_hash = COALESCE(excluded.rendered_hash, device_files.rendered_hash), \
                 changed_at = COALESCE(excluded.changed_at, device_files.changed_at)",
                batch::repeat("(?, ?, ?, ?, ?, ?)", chunk.len())
            );
            let query = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql))), |q, row| {
                q.bind(row.mac.to_string())
                    .bind(row.file)
                    .bind(row.fetched.map(|f| f.hash.as_str()))
                    .bind(row.fetched.map(|f| f.at))
                    .bind(row.rendered.map(|r| r.hash.as_str()))
                    .bind(row.rendered.map(|r| r.changed_at))
            });
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes what a chunk of devices last fetched, in one statement.
    async fn upsert_last_seen(&self, tx: &mut WriteTx, chunk: &[LastSeen<'_>]) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO device_seen (mac, last_seen_at, last_ip, last_file, last_hash, reported_model, reported_firmware) \
             VALUES {} ON CONFLICT (mac) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
             last_ip = excluded.last_ip, last_file = excluded.last_file, last_hash = excluded.last_hash, \
             reported_model = COALESCE(excluded.reported_model, device_seen.reported_model), \
             reported_firmware = COALESCE(excluded.reported_firmware, device_seen.reported_firmware)",
            batch::repeat("(?, ?, ?, ?, ?, ?, ?)", chunk.len())
        );
        let query = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql))), |q, s| {
            q.bind(s.fetch.mac.to_string())
                .bind(s.fetch.at)
                .bind(&s.fetch.ip)
                .bind(&s.fetch.file)
                .bind(&s.fetch.hash)
                .bind(s.model)
                .bind(s.firmware)
        });
        query.execute(&mut **tx).await?;
        Ok(())
    }
}

/// One row of `device_files` to write: the file's latest fetch and latest rendering of a
/// batch, either or both.
struct FileRow<'a> {
    mac: Mac,
    file: &'a str,
    fetched: Option<&'a FetchInfo>,
    rendered: Option<&'a RenderedState>,
}

/// The rows of `fetched` (oldest first) and `rendered` (the later of two for a file wins), one
/// per device and file, in key order (see the module's doc).
fn file_rows<'a>(fetched: &'a [FetchInfo], rendered: &'a [RenderedState]) -> Vec<FileRow<'a>> {
    let mut rows: HashMap<(Mac, &str), FileRow<'a>> = HashMap::with_capacity(fetched.len().max(rendered.len()));
    for fetch in fetched {
        file_row(&mut rows, fetch.mac, &fetch.file).fetched = Some(fetch);
    }
    for state in rendered {
        file_row(&mut rows, state.mac, &state.file).rendered = Some(state);
    }
    let mut rows: Vec<FileRow<'a>> = rows.into_values().collect();
    rows.sort_unstable_by(|a, b| (a.mac, a.file).cmp(&(b.mac, b.file)));
    rows
}

/// The row of `rows` for `mac`'s `file`, added empty if it is not there yet.
fn file_row<'a, 'r>(
    rows: &'r mut HashMap<(Mac, &'a str), FileRow<'a>>,
    mac: Mac,
    file: &'a str,
) -> &'r mut FileRow<'a> {
    rows.entry((mac, file)).or_insert(FileRow { mac, file, fetched: None, rendered: None })
}

/// A device's latest fetch in a batch, with the model and firmware it last reported in it.
struct LastSeen<'a> {
    fetch: &'a FetchInfo,
    model: Option<&'a str>,
    firmware: Option<&'a str>,
}

/// One [`LastSeen`] per device of `fetches` (oldest first), in MAC order (see the module's
/// doc). A fetch that reports no model or firmware keeps the one reported before it, in this
/// batch or (by `COALESCE`) stored.
fn last_seen(fetches: &[FetchInfo]) -> Vec<LastSeen<'_>> {
    let mut by_mac: HashMap<Mac, LastSeen<'_>> = HashMap::with_capacity(fetches.len());
    for fetch in fetches {
        let (model, firmware) = (fetch.reported_model.as_deref(), fetch.reported_firmware.as_deref());
        let entry = by_mac.entry(fetch.mac).or_insert(LastSeen { fetch, model: None, firmware: None });
        entry.fetch = fetch;
        entry.model = model.or(entry.model);
        entry.firmware = firmware.or(entry.firmware);
    }
    let mut rows: Vec<LastSeen<'_>> = by_mac.into_values().collect();
    rows.sort_unstable_by_key(|s| s.fetch.mac);
    rows
}
