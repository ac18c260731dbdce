//! sipprov's persistent inventory.
//!
//! The [`Store`] owns every table: devices, groups, global settings, what was
//! last rendered for each device file (for `Last-Modified` across restarts) and
//! what each device last fetched, per file (`device_files`) and last of all
//! (`device_seen`), campaigns
//! and their per-device progress, used first-fetch windows and generated HTTP
//! credentials (`access`), web console users (`users`), the catalog of stored files (`resource_files`; their content
//! lives in the data directory), and the per-device history shown by
//! `sipprov device log`, named API tokens (their hashes) and the audit trail of admin changes,
//! each written in the transaction of the change it records (`audit`). It speaks to
//! SQLite (the embedded default) or PostgreSQL through sqlx's `Any` driver,
//! with one set of portable SQL; the schema lives in `migrations/`.
//!
//! Every multi-row write runs in one transaction, so a bad CSV row or a crash
//! mid-import leaves the inventory as it was, and sends its rows as a few multi-row
//! statements rather than one per row (see `batch`).
//!
//! A database that cannot write (full disk, read-only file system, lost server) is a
//! passing fault, not a broken store: a connection whose transaction could not be ended is
//! closed instead of reused, so writes work again as soon as the database takes them;
//! [`StoreError::unavailable`] names such failures for callers that retry or answer 503, and
//! [`Store::check_writable`] lets the server refuse to start on a read-only database
//! (see `faults`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), sipprov_store::StoreError> {
//! use sipprov_store::{NewDevice, Store};
//! let store = Store::open_sqlite(std::path::Path::new("/tmp/sipprov.db")).await?;
//! store.insert_devices(&[NewDevice {
//!     mac: "001565aabbcc".parse().unwrap(),
//!     vendor: "yealink".into(),
//!     model: "T46S".into(),
//!     group: None,
//!     contact: None,
//!     settings: Default::default(),
//! }]).await?;
//! # Ok(()) }
//! ```

mod access;
mod audit;
mod backup;
mod batch;
mod blobs;
mod campaigns;
mod change_feed;
mod checkpoint;
mod cluster;
mod device_import;
mod devices;
mod directories;
mod discoveries;
mod events;
mod faults;
mod fetches;
mod groups;
mod guard;
mod jsonb;
mod leases;
mod priority;
mod progress;
mod rendered;
mod resource_files;
mod responder;
mod rollouts;
mod selection;
mod sqlite_layout;
mod templates;
mod tokens;
mod uploads;
mod users;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

pub use access::{DeviceAccess, FirstFetchClaim, GeneratedCredentials};
pub use audit::{AuditQuery, AuditRecord, NewAudit};
pub use backup::{check_restorable, snapshot_sqlite, BackupError, BackupInfo};
pub use blobs::{BlobInfo, BLOB_CHUNK};
pub use campaigns::{CampaignDevice, CampaignRecord, NewCampaign, NotifyResult};
pub use change_feed::{Change, ChangeKind, ChangeListener, FeedRead, CHANNEL, FEED_RETENTION};
pub use checkpoint::{Checkpointer, CHECKPOINT_EVERY};
pub use cluster::{ClusterNode, NodeHeartbeat};
pub use device_import::DeviceImport;
pub use devices::{DevicePatch, DeviceRecord, FetchInfo, NewDevice};
pub use directories::DirectoryRecord;
pub use discoveries::Sighting;
pub use events::{DeviceEvent, EventText, IntervalEvent, NewEvent};
pub use fetches::DeferredRows;
pub use groups::GroupRecord;
pub use guard::{SharedFailure, ThrottleLimits};
pub use leases::{campaign_chunk_size, CampaignChunk, LeaseRecord};
pub use progress::{confirmed_detail, CampaignCounts};
pub use rendered::RenderedState;
pub use resource_files::{RemovedResourceFile, ResourceFileRecord};
pub use responder::{responder_lock_key, PnpResponder, ResponderLock};
pub use rollouts::{FirmwarePin, NewRollout, NewRolloutDevice, RolloutDevice, RolloutRecord};
pub use templates::{NewTemplateVersion, TemplateVersion};
pub use tokens::TokenRecord;
pub use uploads::{UploadInfo, UploadOutcome};
pub use users::UserRecord;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed at open.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A device with this MAC is already in the inventory.
    #[error("device {0} already exists")]
    DuplicateDevice(String),
    /// No device with this MAC.
    #[error("device {0} not found")]
    DeviceNotFound(String),
    /// A name that must be unique is taken; the message says which.
    #[error("{0}")]
    Duplicate(String),
    /// A bound would be passed (too many directories); the message says which.
    #[error("{0}")]
    Limit(String),
    /// No group of this name.
    #[error("group {0:?} not found")]
    GroupNotFound(String),
    /// A stored value does not parse (hand-edited database, or a bug).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A task working for the store's caller panicked or was cancelled: no stored data is
    /// wrong, the work was not done.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file in the data directory.
    Sqlite,
    /// A PostgreSQL server, for several nodes.
    Postgres,
}

/// A handle on the inventory database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL opened, for the change feed's listening connection (PostgreSQL).
    url: Arc<str>,
    /// The node whose changes this store writes, stamped on its change-feed rows (set once by
    /// the server at start; empty until then).
    origin: Arc<OnceLock<String>>,
    /// SQLite only: the in-process queue of writers (see [`Store::write_tx`]).
    writer_turn: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Most rows in one multi-row statement of the fetch log's writes (see
    /// [`Store::background_writer`]).
    statement_rows: usize,
    /// Write transactions committed through this store and its clones, background and own
    /// writers included: the WAL checkpointer waits for a pause in them (see `checkpoint`).
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// Whether the WAL checkpointer is in the middle of a checkpoint, which writers wait out
    /// when the WAL has grown past its bound (see `checkpoint`).
    checkpointing: Arc<checkpoint::InProgress>,
}

/// A write transaction, holding this process's writer turn on SQLite until it ends.
/// Dereferences to the connection, so `&mut *tx` executes statements in it.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The store's count of commits, raised by [`WriteTx::commit`] (see `checkpoint`).
    commits: Arc<std::sync::atomic::AtomicU64>,
}

impl WriteTx {
    /// Commits, then lets the next writer in.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        let done = self.tx.commit().await;
        self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        done
    }

    /// Rolls back, then lets the next writer in.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// How long a PostgreSQL statement waits for a connection before failing (seconds).
const POSTGRES_ACQUIRE_TIMEOUT_SECS: u64 = 5;

/// Most rows in one statement of the background writer's (the fetch log's) writes on SQLite.
/// sqlx binds a statement's values on the calling thread and SQLite runs it on the
/// connection's worker thread, each in one go: at 256 rows a PnP storm's event inserts were
/// runs of about 1 ms on each thread, which the thread answering the phones, woken meanwhile,
/// waited out. At 64 rows each is a quarter of that, for a few more round trips per write.
const BACKGROUND_STATEMENT_ROWS: usize = 64;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Store::open(&url).await
    }

    /// Opens a database by URL (`sqlite://…` or `postgres://…`) and applies migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite };
        if backend == Backend::Sqlite {
            create_private(url)?;
        }
        let mut options = faults::close_connections_left_in_a_transaction(AnyPoolOptions::new());
        if backend == Backend::Postgres {
            // A database server out of reach fails a request within seconds (503, see
            // `StoreError::unavailable`) instead of holding it for sqlx's default 30 s, while
            // the node keeps serving phones from memory.
            options = options.acquire_timeout(std::time::Duration::from_secs(POSTGRES_ACQUIRE_TIMEOUT_SECS));
        }
        if backend == Backend::Sqlite {
            // SQLite allows one writer at a time: a small pool plus a busy timeout avoids
            // "database is locked" errors, and WAL lets readers run during writes. Every
            // connection here keeps the process's CPU priority ([`Store::background_writer`]
            // is the one that does not).
            options = options.max_connections(4).after_connect(|conn, _| {
                Box::pin(async move {
                    // Claimed first: the longer after its thread starts a connection claims
                    // it, the likelier another connection's thread starts meanwhile, and
                    // neither can then be told apart (see `priority`).
                    priority::keep_new_worker();
                    sqlite_connection_setup(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        MIGRATOR.run(&pool).await?;
        if backend == Backend::Sqlite {
            sqlite_layout::apply(&pool).await?;
        }
        if backend == Backend::Postgres {
            events::create_id_sequence(&pool).await?;
        }
        let writer_turn = (backend == Backend::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        let store = Store {
            pool,
            backend,
            url: url.into(),
            origin: Arc::new(OnceLock::new()),
            writer_turn,
            statement_rows: usize::MAX,
            commits: Arc::default(),
            checkpointing: Arc::default(),
        };
        if store.defers_last_seen() {
            // Fetches recorded after the last last-seen write (a stop or kill -9 in between).
            store.replay_fetch_events().await?;
        }
        Ok(store)
    }

    /// Starts a write transaction.
    ///
    /// On SQLite, writers take turns in this process first, then take the database's write
    /// lock up front (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// fails at once with "database is locked" when another connection committed in between,
    /// and a writer that meets a held lock waits in SQLite's busy handler, which sleeps 1 to
    /// 100 ms between attempts. Waiting for an async mutex instead wakes the next writer the
    /// moment the previous one commits: a campaign's marks, outcomes and the fetch log write
    /// concurrently and must not stall each other by milliseconds.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx, sqlx::Error> {
        match &self.writer_turn {
            Some(turn) => {
                if let Some(path) = sqlite_path(&self.url) {
                    self.checkpointing.wait_if_wal_past_bound(path).await;
                }
                let turn = turn.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx { tx, _turn: Some(turn), commits: self.commits.clone() })
            }
            None => Ok(WriteTx { tx: self.pool.begin().await?, _turn: None, commits: self.commits.clone() }),
        }
    }

    /// A statement written with `?` placeholders, as this store's database wants it
    /// (see [`batch::numbered`]).
    pub(crate) fn numbered(&self, sql: &str) -> String {
        batch::numbered(sql, self.backend)
    }

    /// The database behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool, for crates that add their own tables.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The same store for writes nobody waits for (the fetch log's): on SQLite its statements
    /// run on one connection of their own whose worker thread runs below the process's CPU
    /// priority (see `priority`), so under load they yield the core to the threads serving
    /// phones and to every other statement (campaign outcomes, the API), which keep this
    /// store's connections at the normal priority. On PostgreSQL the work is the server's and
    /// this is the same store.
    ///
    /// Its multi-row statements are shorter (at most 64 rows, see
    /// `BACKGROUND_STATEMENT_ROWS`), so that neither its caller's thread nor its worker runs
    /// long in one go on a core that serves phones.
    ///
    /// Writes through both stores take turns in this process (they share one queue of writers,
    /// and each takes SQLite's write lock only at its turn), so the second connection never meets SQLite's write lock held by the first and
    /// never gets `SQLITE_BUSY` from it; the busy timeout set on both covers other processes.
    pub async fn background_writer(&self) -> Result<Store, StoreError> {
        if self.backend != Backend::Sqlite || sqlite_path(&self.url).is_none() {
            // An in-memory SQLite database is one per connection pool: a second pool would open
            // an empty one.
            return Ok(self.clone());
        }
        let pool = self.one_connection(Role::Background)?;
        Ok(Store { pool, statement_rows: BACKGROUND_STATEMENT_ROWS, ..self.clone() })
    }

    /// The same store on one connection of its own, for a stream of writes someone waits for
    /// (a campaign's outcomes): on SQLite its worker thread keeps the process's CPU priority,
    /// and its statement journals stay in memory. On PostgreSQL this is the same store.
    ///
    /// Why a connection of its own: in WAL mode a connection that finds the database changed
    /// by another connection since its last transaction drops its whole page cache (SQLite,
    /// "Write-Ahead Logging", section 2.2: each reader checks the wal-index header), and the
    /// main pool hands its connections out in turn, so each outcome batch landed on a
    /// connection whose cache another one's write had just emptied and read the B-trees' pages
    /// again from the operating system (about 10,000 `pread` calls over a 20,000-device
    /// campaign). One connection writing batch after batch keeps its pages.
    ///
    /// Why its statement journals stay in memory: each outcome batch is an upsert inside a
    /// transaction, so SQLite keeps a statement journal for it (SQLite, "Temporary Files Used
    /// By SQLite", section 2.5), which past 64 KiB spills to a temporary file: a file created,
    /// written and unlinked per batch, never read. The batches are bounded (500 devices), so
    /// the journal in memory is bounded by the pages one batch touches.
    ///
    /// Writes through it take turns with every other writer of this process, as
    /// [`Store::background_writer`]'s do.
    pub async fn own_writer(&self) -> Result<Store, StoreError> {
        if self.backend != Backend::Sqlite || sqlite_path(&self.url).is_none() {
            return Ok(self.clone());
        }
        let pool = self.one_connection(Role::Awaited)?;
        Ok(Store { pool, ..self.clone() })
    }

    /// A pool of one connection of its own on this store's SQLite file, set up for `role`.
    fn one_connection(&self, role: Role) -> Result<AnyPool, sqlx::Error> {
        faults::close_connections_left_in_a_transaction(AnyPoolOptions::new())
            .max_connections(1)
            .after_connect(move |conn, _| {
                let role = role.clone();
                Box::pin(async move {
                    // Its worker thread claimed first, as in `Store::open`.
                    match &role {
                        Role::Background => priority::lower_new_worker(),
                        Role::Awaited => priority::keep_new_worker(),
                        Role::Checkpoint(worker) => priority::idle_new_worker(worker),
                    }
                    sqlite_connection_setup(conn).await?;
                    match role {
                        Role::Background => background_connection_setup(conn).await?,
                        Role::Awaited => {
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                        }
                        Role::Checkpoint(_) => {}
                    }
                    Ok(())
                })
            })
            .connect_lazy(&self.url)
    }

    /// `rows` cut into multi-row statements ([`batch::chunks`]), at most this store's
    /// `statement_rows` each.
    pub(crate) fn chunks<'a, T>(&self, rows: &'a [T], per_row: usize) -> impl Iterator<Item = &'a [T]> {
        batch::chunks_of_at_most(rows, per_row, self.statement_rows)
    }
}

/// What a connection of its own is for ([`Store::background_writer`], [`Store::own_writer`],
/// [`Store::start_checkpointer`]).
#[derive(Clone)]
enum Role {
    /// Writes nobody waits for: below the process's CPU priority, with room for its pages.
    Background,
    /// Writes someone waits for: the process's priority, statement journals in memory.
    Awaited,
    /// The WAL checkpointer's: its worker at the lowest CPU priority, its thread id kept here
    /// (0 until known) so that a starved checkpoint can be raised (see `checkpoint`).
    Checkpoint(Arc<std::sync::atomic::AtomicI32>),
}

/// What every SQLite connection of the store sets as it opens. SQLite allows one writer at a
/// time: a busy timeout makes a connection that meets another process's write lock wait for
/// it instead of failing with "database is locked" (writers of this process take turns before
/// that, see [`Store::write_tx`]). A commit checkpoints the WAL itself only past the backstop
/// of `checkpoint` (the checkpointer does it meanwhile, off every commit path).
async fn sqlite_connection_setup(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA busy_timeout = 10000").await?;
    conn.execute("PRAGMA synchronous = NORMAL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    let backstop = format!("PRAGMA wal_autocheckpoint = {}", checkpoint::WAL_BACKSTOP_PAGES);
    sqlx::query(sqlx::AssertSqlSafe(backstop)).execute(&mut *conn).await?;
    let limit = format!("PRAGMA journal_size_limit = {}", checkpoint::WAL_KEPT_BYTES);
    sqlx::query(sqlx::AssertSqlSafe(limit)).execute(&mut *conn).await?;
    Ok(())
}

/// What the background writer's connection sets on top of [`sqlite_connection_setup`]: room
/// for its working set, and statement journals in memory.
///
/// An interval extends the open fetch event of every polling device: it reads that event's row,
/// the device's row and its `fetch_event_counts` row. For 10,000 devices that is about 7 MB of
/// pages, beyond SQLite's default cache of 2 MB, so the pages were read again from the
/// operating system every interval (a `pread` and a 4 KiB copy each). The cache is a bound, not
/// an allocation: pages take memory only once read.
///
/// Each of its multi-row upserts also keeps a statement journal (SQLite, "Temporary Files Used
/// By SQLite", section 2.5: a statement that may fail halfway must be undone alone). Past 64 KiB
/// SQLite spills that journal to a temporary file, which a 64-row upsert touching as many pages
/// does every statement: written and never read. In memory it costs at most those pages.
async fn background_connection_setup(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    // A negative cache size is in KiB: 16 MiB (SQLite's default is 2,000 KiB).
    conn.execute("PRAGMA cache_size = -16384").await?;
    conn.execute("PRAGMA temp_store = MEMORY").await?;
    Ok(())
}

/// The file of a `sqlite://PATH?...` URL, `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    let memory = path.is_empty() || path == ":memory:" || url.contains("mode=memory");
    (!memory).then(|| Path::new(path))
}

/// Creates a missing SQLite database file readable by its owner only (0600) before SQLite opens
/// it: it holds every password of the fleet, and SQLite creates it, and then its `-wal` and
/// `-shm` files, with the process umask (usually world-readable) but gives those two files the
/// database file's mode.
fn create_private(url: &str) -> Result<(), StoreError> {
    let Some(path) = sqlite_path(url) else { return Ok(()) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            let why = format!("cannot create the database file {}: {e}", path.display());
            Err(StoreError::Database(sqlx::Error::Io(std::io::Error::new(e.kind(), why))))
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn settings_from_json(text: &str, what: &str) -> Result<sipprov_model::Settings, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("settings of {what}: {e}")))
}

fn settings_to_json(settings: &sipprov_model::Settings) -> String {
    // Serialising a string map cannot fail.
    serde_json::to_string(settings).unwrap_or_else(|_| "{}".to_string())
}

/// The device MAC stored in column `col`; a value that is not one means the database was
/// written by something else, hence [`StoreError::Corrupt`].
fn mac_column(row: &AnyRow, col: &str) -> Result<sipprov_model::Mac, StoreError> {
    let text: String = row.try_get(col)?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{col} {text:?}: {e}")))
}

/// A stable name (a state, an outcome, an event kind) stored in column `col`; an unknown name
/// means the database was written by something else, hence [`StoreError::Corrupt`] naming it.
fn named_column<T>(row: &AnyRow, col: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr<Err = sipprov_model::UnknownName>,
{
    let text: String = row.try_get(col)?;
    text.parse().map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// Like [`named_column`], for a column that may be NULL.
fn opt_named_column<T>(row: &AnyRow, col: &str) -> Result<Option<T>, StoreError>
where
    T: std::str::FromStr<Err = sipprov_model::UnknownName>,
{
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| t.parse().map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))).transpose()
}

fn opt_string(row: &AnyRow, col: &str) -> Result<Option<String>, sqlx::Error> {
    row.try_get::<Option<String>, _>(col)
}
