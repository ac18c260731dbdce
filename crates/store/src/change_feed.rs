//! The change feed: how the nodes sharing one database learn what another one changed.
//!
//! Every store method that changes something a node keeps in memory (a device, a group, the
//! global settings, a template override, a directory, a device's first-fetch window or
//! generated credentials, a named token, a console user, a stored file's catalog row, firmware
//! pins) appends a [`Change`] in the transaction of the change, naming what to reload, never
//! the new value (secrets stay in their own tables). On PostgreSQL the same transaction sends
//! `NOTIFY sipprov_changes`, which PostgreSQL delivers at commit, so a listening node wakes the
//! moment the change is visible; a node then reads the rows after the last one it applied.
//!
//! Ids are dense and in commit order: a writer takes the table's lock before choosing
//! `MAX(id) + 1` and keeps it until it commits (SQLite's write lock does the same), so a reader
//! that has seen id N has seen every id below it and can never skip a row committed late. The
//! feed keeps the newest [`FEED_RETENTION`] rows; a reader that fell further behind is told so
//! ([`FeedRead::Gap`]) and reloads everything.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Backend, Store, StoreError, WriteTx};

/// The PostgreSQL channel change notifications are sent on.
pub const CHANNEL: &str = "sipprov_changes";

/// How many rows the feed keeps: far more than the nodes read between two polls, few enough to
/// stay a small table.
pub const FEED_RETENTION: i64 = 10_000;

/// Every this many ids, the writer prunes the rows past [`FEED_RETENTION`].
const PRUNE_EVERY: i64 = 100;

/// What changed. Stored by name ([`ChangeKind::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// One device (key: its MAC): added, patched or deleted.
    Device,
    /// Many devices at once (an import): reload the whole inventory.
    Devices,
    /// A group's settings (key: its name).
    Group,
    /// The global settings.
    Global,
    /// A template override (key: the template's name).
    Template,
    /// A remote phone directory (key: its name).
    Directory,
    /// A device's first-fetch window, its use, or its generated credentials (key: its MAC).
    Access,
    /// A named API token (key: its name).
    Token,
    /// A console user (key: the login name).
    User,
    /// A stored file's catalog row (key: the file's name).
    ResourceFile,
    /// Firmware pins held by rollouts.
    FirmwarePins,
    /// A kind this version does not know (written by a newer node): reload everything.
    Unknown,
}

impl ChangeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Device => "device",
            ChangeKind::Devices => "devices",
            ChangeKind::Group => "group",
            ChangeKind::Global => "global",
            ChangeKind::Template => "template",
            ChangeKind::Directory => "directory",
            ChangeKind::Access => "access",
            ChangeKind::Token => "token",
            ChangeKind::User => "user",
            ChangeKind::ResourceFile => "resource_file",
            ChangeKind::FirmwarePins => "firmware_pins",
            ChangeKind::Unknown => "unknown",
        }
    }

    /// The kind stored under `name`; [`ChangeKind::Unknown`] for a name this version lacks.
    pub fn from_name(name: &str) -> ChangeKind {
        const ALL: [ChangeKind; 11] = [
            ChangeKind::Device,
            ChangeKind::Devices,
            ChangeKind::Group,
            ChangeKind::Global,
            ChangeKind::Template,
            ChangeKind::Directory,
            ChangeKind::Access,
            ChangeKind::Token,
            ChangeKind::User,
            ChangeKind::ResourceFile,
            ChangeKind::FirmwarePins,
        ];
        ALL.into_iter().find(|k| k.as_str() == name).unwrap_or(ChangeKind::Unknown)
    }
}

/// One row of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the feed (dense, in commit order).
    pub id: i64,
    /// When it was written (ms since the epoch).
    pub at: i64,
    /// The node that made the change (its `name/pid/random` identity; empty if unset).
    pub origin: String,
    /// What changed.
    pub kind: ChangeKind,
    /// Which one (a MAC, a name; empty when the kind has no key).
    pub key: String,
}

/// What a read of the feed found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedRead {
    /// The rows after the position given, oldest first (possibly none).
    Changes(Vec<Change>),
    /// Rows after the position given were pruned (or the feed is behind it: a restored
    /// database): reload everything and continue from `head`.
    Gap {
        /// The newest id now.
        head: i64,
    },
}

/// A listening connection on [`CHANNEL`] (PostgreSQL only).
pub struct ChangeListener {
    inner: sqlx::postgres::PgListener,
}

impl ChangeListener {
    /// Waits for the next notification. `Ok(false)` means the connection was lost (and is
    /// being re-established): notifications may have been missed in between.
    pub async fn wait(&mut self) -> Result<bool, StoreError> {
        Ok(self.inner.try_recv().await?.is_some())
    }
}

impl Store {
    /// Sets the node identity stamped on this store's change-feed rows (first call wins).
    pub fn set_origin(&self, node: &str) {
        let _ = self.origin.set(node.to_string());
    }

    /// The node identity stamped on this store's change-feed rows (empty until set).
    pub fn origin(&self) -> &str {
        self.origin.get().map(String::as_str).unwrap_or("")
    }

    /// Appends a change inside the caller's transaction, after its other writes (the feed's
    /// lock is taken last, so it is held only until the commit that follows).
    pub(crate) async fn record_change(&self, tx: &mut WriteTx, kind: ChangeKind, key: &str) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // Held to the end of the transaction: the next writer reads MAX(id) only after this
            // one committed, so ids are dense and committed in order (see the module's comment).
            sqlx::query("LOCK TABLE change_feed IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
        }
        let max: Option<i64> =
            sqlx::query("SELECT MAX(id) AS m FROM change_feed").fetch_one(&mut **tx).await?.try_get("m")?;
        let id = max.unwrap_or(0) + 1;
        sqlx::query("INSERT INTO change_feed (id, at, origin, kind, key) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(crate::now_ms())
            .bind(self.origin())
            .bind(kind.as_str())
            .bind(key)
            .execute(&mut **tx)
            .await?;
        if id % PRUNE_EVERY == 0 {
            sqlx::query("DELETE FROM change_feed WHERE id <= $1").bind(id - FEED_RETENTION).execute(&mut **tx).await?;
        }
        if self.backend == Backend::Postgres {
            // Delivered by PostgreSQL when (and only if) this transaction commits.
            sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(id.to_string()).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Appends `kind`/`key` for each of `keys`, or one `all` change when there are more than
    /// `max_rows` of them (an import of thousands of devices is one "reload all").
    pub(crate) async fn record_changes(
        &self,
        tx: &mut WriteTx,
        kind: ChangeKind,
        keys: &[String],
        max_rows: usize,
        all: ChangeKind,
    ) -> Result<(), StoreError> {
        if keys.len() > max_rows {
            return self.record_change(tx, all, "").await;
        }
        for key in keys {
            self.record_change(tx, kind, key).await?;
        }
        Ok(())
    }

    /// The newest id of the feed (0 when empty): where a node that just loaded everything
    /// starts following. Read it BEFORE loading, so a change made during the load is read
    /// again (applying a change twice is harmless) rather than missed.
    pub async fn change_feed_head(&self) -> Result<i64, StoreError> {
        let max: Option<i64> =
            sqlx::query("SELECT MAX(id) AS m FROM change_feed").fetch_one(&self.pool).await?.try_get("m")?;
        Ok(max.unwrap_or(0))
    }

    /// At most `limit` changes after id `after`, oldest first, or [`FeedRead::Gap`] when some
    /// of them were pruned already.
    pub async fn changes_after(&self, after: i64, limit: i64) -> Result<FeedRead, StoreError> {
        let rows = sqlx::query("SELECT id, at, origin, kind, key FROM change_feed WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let changes: Vec<Change> = rows.iter().map(change_from_row).collect::<Result<_, _>>()?;
        let first_ok = changes.first().is_none_or(|c| c.id == after + 1);
        if first_ok && !changes.is_empty() {
            return Ok(FeedRead::Changes(changes));
        }
        let head = self.change_feed_head().await?;
        if !first_ok || head < after {
            return Ok(FeedRead::Gap { head });
        }
        Ok(FeedRead::Changes(changes))
    }

    /// A connection listening for change notifications; `None` on SQLite (one node: nothing
    /// to follow).
    pub async fn listen_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut inner = sqlx::postgres::PgListener::connect(&self.url).await?;
        inner.listen(CHANNEL).await?;
        Ok(Some(ChangeListener { inner }))
    }
}

fn change_from_row(row: &AnyRow) -> Result<Change, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Change {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        origin: row.try_get("origin")?,
        kind: ChangeKind::from_name(&kind),
        key: row.try_get("key")?,
    })
}
