//! Device history: an append-only log of what happened to each device.
//!
//! Fetches, refusals and (later) notifications are recorded here and shown by
//! `sipprov device log`. Details are a JSON object so new kinds of event need
//! no migration. Secrets are never written here: callers record hashes, not content.

use sipprov_model::{EventDetail, EventKind, Mac};
use sqlx::Row;

use crate::{batch, Backend, Store, StoreError, WriteTx};

/// The PostgreSQL sequence event ids come from (created at open, see [`create_id_sequence`]).
const ID_SEQUENCE: &str = "device_event_ids";

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The device the event is about.
    pub mac: Mac,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// What kind of event it is (stored by its name: `fetch`, `refused`, `notify`, …).
    pub kind: EventKind,
    /// What happened, as a JSON object whose members depend on `kind`.
    pub detail: serde_json::Value,
}

impl NewEvent {
    /// An event of `detail`'s kind, with `detail` as its JSON object.
    pub fn of<D: EventDetail>(mac: Mac, at: i64, detail: &D) -> NewEvent {
        // Serialising a detail type (strings, numbers, options) cannot fail.
        let detail = serde_json::to_value(detail).unwrap_or_default();
        NewEvent { mac, at, kind: D::KIND, detail }
    }
}

/// An event to append whose detail is already its JSON object's text.
///
/// A campaign writes one per NOTIFY: building a `serde_json::Value` for each, only to print it
/// into the batch, cost about as much as SQLite's writing of the event row (callgrind,
/// bench/sip-instructions.sh). The stored text is the detail type's own serialisation, its
/// members in declaration order; readers parse it ([`DeviceEvent::detail`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EventText {
    /// The device the event is about.
    pub mac: Mac,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// What kind of event it is.
    pub kind: EventKind,
    /// What happened: a JSON object's text whose members depend on `kind`.
    pub detail: String,
}

impl EventText {
    /// An event of `detail`'s kind, with `detail` serialised as its text.
    pub fn of<D: EventDetail>(mac: Mac, at: i64, detail: &D) -> EventText {
        // Serialising a detail type (strings, numbers, options) cannot fail.
        let detail = serde_json::to_string(detail).unwrap_or_else(|_| "{}".into());
        EventText { mac, at, kind: D::KIND, detail }
    }
}

impl From<&NewEvent> for EventText {
    fn from(e: &NewEvent) -> EventText {
        EventText { mac: e.mac, at: e.at, kind: e.kind, detail: detail_text(&e.detail) }
    }
}

/// A detail's JSON text (`serde_json::to_string`, not `Display`, which writes through a
/// formatter adapter at twice the cost).
fn detail_text(detail: &serde_json::Value) -> String {
    // Printing a `Value` cannot fail.
    serde_json::to_string(detail).unwrap_or_else(|_| "{}".into())
}

/// What an event row is written from.
pub(crate) trait EventRow {
    /// The device, time and kind.
    fn head(&self) -> (Mac, i64, EventKind);
    /// The detail's JSON text.
    fn detail_text(&self) -> std::borrow::Cow<'_, str>;
}

impl EventRow for NewEvent {
    fn head(&self) -> (Mac, i64, EventKind) {
        (self.mac, self.at, self.kind)
    }
    fn detail_text(&self) -> std::borrow::Cow<'_, str> {
        detail_text(&self.detail).into()
    }
}

impl EventRow for EventText {
    fn head(&self) -> (Mac, i64, EventKind) {
        (self.mac, self.at, self.kind)
    }
    fn detail_text(&self) -> std::borrow::Cow<'_, str> {
        self.detail.as_str().into()
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceEvent {
    /// Position in the history: ids increase with time.
    pub id: i64,
    /// The device the event is about.
    pub mac: Mac,
    /// When it happened (ms since the epoch).
    pub at: i64,
    /// What kind of event it is (stored by its name: `fetch`, `refused`, `notify`, …).
    pub kind: EventKind,
    /// What happened, as a JSON object whose members depend on `kind`.
    pub detail: serde_json::Value,
}

/// One event of a fetch log interval ([`Store::record_fetch_interval`]), in order.
#[derive(Debug, Clone, PartialEq)]
pub enum IntervalEvent {
    /// An event to append (its detail already JSON text: the fetch log writes thousands an
    /// interval).
    New(EventText),
    /// More fetches identical to the stored fetch event `id`, the device's latest: its count
    /// becomes `count` and its last time `last_at` (kept beside the event, in
    /// `fetch_event_counts`, and read back into its detail's `count` and `last_at`). When that
    /// event is gone or older than its device (removed and added again since), the caller's
    /// fallback event (this interval's fetches alone) is appended instead: it is built only
    /// then, not for every device still polling.
    Extend {
        /// The stored event.
        id: i64,
        /// Its count with this interval's fetches.
        count: u64,
        /// The time of the last of them.
        last_at: i64,
        /// The event's device.
        mac: Mac,
        /// The event's own time (its first fetch's): the device must be no newer.
        at: i64,
    },
}

impl Store {
    /// Appends events in one transaction, a few multi-row INSERTs.
    pub async fn append_events(&self, events: &[NewEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        self.insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Appends events inside the caller's transaction.
    pub(crate) async fn insert_events(&self, tx: &mut WriteTx, events: &[NewEvent]) -> Result<(), StoreError> {
        let refs: Vec<&NewEvent> = events.iter().collect();
        self.insert_event_refs(tx, &refs).await.map(|_| ())
    }

    /// Appends events inside the caller's transaction; on SQLite returns the id of the first
    /// (the others follow it in order), on PostgreSQL `None`.
    pub(crate) async fn insert_event_refs<E: EventRow + Sync>(
        &self,
        tx: &mut WriteTx,
        events: &[&E],
    ) -> Result<Option<i64>, StoreError> {
        // Ids come from the database, never from a per-process counter: several nodes append
        // to one table. On PostgreSQL a sequence hands out ids without holding any lock (a
        // batch's ids follow its order; two nodes' batches may interleave). On SQLite this
        // transaction holds the database's write lock, so MAX(id) + 1 is this writer's alone.
        let mut next_id = match self.backend {
            Backend::Postgres => None,
            Backend::Sqlite => {
                let max: Option<i64> =
                    sqlx::query("SELECT MAX(id) AS m FROM device_events").fetch_one(&mut **tx).await?.try_get("m")?;
                Some(max.unwrap_or(0) + 1)
            }
        };
        let first = next_id;
        let row = match next_id {
            Some(_) => "(?, ?, ?, ?, ?)".to_string(),
            None => format!("(nextval('{ID_SEQUENCE}'), ?, ?, ?, ?)"),
        };
        for chunk in self.chunks(events, 5) {
            let sql = format!(
                "INSERT INTO device_events (id, mac, at, kind, detail) VALUES {}",
                batch::repeat(&row, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            for e in chunk {
                if let Some(id) = next_id.as_mut() {
                    query = query.bind(*id);
                    *id += 1;
                }
                let (mac, at, kind) = e.head();
                query = query.bind(mac.to_string()).bind(at).bind(kind.as_str()).bind(e.detail_text().into_owned());
            }
            query.execute(&mut **tx).await?;
        }
        Ok(first)
    }

    /// Raises the counts of stored fetch events ([`IntervalEvent::Extend`]) whose device still
    /// exists and is not newer than they are; returns the ids it could not extend (usually none).
    /// SQLite only (the fetch log extends events only there, see [`Store::defers_last_seen`]).
    pub(crate) async fn extend_fetch_events(
        &self,
        tx: &mut WriteTx,
        events: &[IntervalEvent],
    ) -> Result<std::collections::HashSet<i64>, StoreError> {
        let extensions: Vec<(i64, u64, i64, Mac, i64)> = events
            .iter()
            .filter_map(|e| match e {
                IntervalEvent::Extend { id, count, last_at, mac, at } => Some((*id, *count, *last_at, *mac, *at)),
                IntervalEvent::New(_) => None,
            })
            .collect();
        let mut refused = std::collections::HashSet::new();
        // What changes is a row of a few bytes in `fetch_event_counts`; the event's own row is
        // not read: the caller names its device and time (it wrote the event). Only the device's
        // row is (was it removed, or removed and added again, since the event?). How many rows
        // the upsert wrote says whether every extension was made; RETURNING the ids instead cost
        // SQLite a temporary table of them and sqlx a row handed over per extension.
        for chunk in self.chunks(&extensions, 5) {
            let sql = format!(
                "INSERT INTO fetch_event_counts (event_id, count, last_at) \
                 SELECT v.column1, v.column2, v.column3 FROM (VALUES {}) v \
                 WHERE EXISTS (SELECT 1 FROM devices d WHERE d.mac = v.column4 AND d.created_at <= v.column5) \
                 ON CONFLICT (event_id) DO UPDATE SET count = excluded.count, last_at = excluded.last_at",
                batch::repeat("(?, ?, ?, ?, ?)", chunk.len())
            );
            let query = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, (id, count, last_at, mac, at)| {
                q.bind(*id).bind(*count as i64).bind(*last_at).bind(mac.to_string()).bind(*at)
            });
            let written = query.execute(&mut **tx).await?.rows_affected();
            if written < chunk.len() as u64 {
                refused.extend(self.unextendable(tx, chunk).await?);
            }
        }
        Ok(refused)
    }

    /// Which of `chunk`'s extensions [`Store::extend_fetch_events`] could not make: their device
    /// is gone, or newer than the event (removed and added again since).
    async fn unextendable(
        &self,
        tx: &mut WriteTx,
        chunk: &[(i64, u64, i64, Mac, i64)],
    ) -> Result<Vec<i64>, StoreError> {
        let sql = format!(
            "SELECT v.column1 AS id FROM (VALUES {}) v \
             WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.mac = v.column2 AND d.created_at <= v.column3)",
            batch::repeat("(?, ?, ?)", chunk.len())
        );
        let query = chunk.iter().fold(sqlx::query(sqlx::AssertSqlSafe(sql)), |q, (id, _, _, mac, at)| {
            q.bind(*id).bind(mac.to_string()).bind(*at)
        });
        query.fetch_all(&mut **tx).await?.iter().map(|row| Ok(row.try_get::<i64, _>("id")?)).collect()
    }

    /// The newest `limit` events of a device, oldest first.
    pub async fn device_events(&self, mac: Mac, limit: i64) -> Result<Vec<DeviceEvent>, StoreError> {
        self.device_events_before(mac, None, limit).await
    }

    /// The newest `limit` events of a device whose id is below `before` (all when `None`), oldest
    /// first: the page of history before one already shown.
    pub async fn device_events_before(
        &self,
        mac: Mac,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeviceEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT e.id, e.at, e.kind, e.detail, c.count AS counted, c.last_at AS counted_last \
             FROM device_events e LEFT JOIN fetch_event_counts c ON c.event_id = e.id \
             WHERE e.mac = $1 AND e.id < $2 ORDER BY e.id DESC LIMIT $3",
        )
        .bind(mac.to_string())
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(DeviceEvent {
                    id: r.try_get("id")?,
                    mac,
                    at: r.try_get("at")?,
                    kind: crate::named_column(r, "kind")?,
                    detail: counted_detail(r)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.reverse();
        Ok(out)
    }

    /// The details of refusals at or after `since` (ms since the epoch), newest first, at most
    /// `limit` of them: the summary's bounded read, through the partial index
    /// `device_events_refused_at` (migration 0029), which holds refusals only (the query names
    /// the kind as the index does, so that both databases can use it).
    pub async fn refusal_details_since(&self, since: i64, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT detail FROM device_events WHERE kind = 'refused' AND at >= $1 ORDER BY at DESC LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(format!("event detail: {e}")))
            })
            .collect()
    }
}

/// An event row's detail with the count and last time of its identical fetches, which
/// `fetch_event_counts` holds once the fetch log has extended it (`counted`, `counted_last`).
fn counted_detail(row: &sqlx::any::AnyRow) -> Result<serde_json::Value, StoreError> {
    let text: String = row.try_get("detail")?;
    let mut detail: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("event detail: {e}")))?;
    let counted: Option<i64> = row.try_get("counted")?;
    let counted_last: Option<i64> = row.try_get("counted_last")?;
    if let (Some(count), Some(last_at), Some(object)) = (counted, counted_last, detail.as_object_mut()) {
        object.insert("count".into(), count.into());
        object.insert("last_at".into(), last_at.into());
    }
    Ok(detail)
}

/// Creates the PostgreSQL sequence of event ids when missing, starting past the ids already
/// stored (a database written by a version that counted in each process). Nodes starting at
/// once take turns on an advisory lock, so exactly one creates it; it is never set back.
pub(crate) async fn create_id_sequence(pool: &sqlx::AnyPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // Any constant shared by every node works; this one spells "evid".
    sqlx::query("SELECT pg_advisory_xact_lock(1702259044)").execute(&mut *tx).await?;
    let exists = sqlx::query("SELECT 1 AS one FROM pg_class WHERE relkind = 'S' AND relname = $1")
        .bind(ID_SEQUENCE)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if !exists {
        let max: Option<i64> =
            sqlx::query("SELECT MAX(id) AS m FROM device_events").fetch_one(&mut *tx).await?.try_get("m")?;
        let start = max.unwrap_or(0) + 1;
        let sql = format!("CREATE SEQUENCE {ID_SEQUENCE} START WITH {start}");
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
