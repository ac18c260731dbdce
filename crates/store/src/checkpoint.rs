//! WAL checkpoints off every commit path (SQLite): a checkpointer of the store's own, on a
//! connection whose worker thread runs at the lowest CPU priority, and a backstop on every
//! other connection.
//!
//! In WAL mode a commit appends pages to the `-wal` file, and by default the commit that takes
//! the WAL past 1,000 pages runs a checkpoint itself (SQLite, "Write-Ahead Logging", section
//! 3.5, "Automatic Checkpoint"): copying those pages into the database file, on the committing
//! connection's thread, before the commit returns. For the fetch log's writer that was the
//! longest run of its SQLite worker in a PnP boot storm (`sqlite3WalDefaultHook`, about 1,000
//! pages, milliseconds on the core that answers the phones); for a campaign's outcome batch it
//! is time an operator waits for.
//!
//! Here every connection sets `PRAGMA wal_autocheckpoint` to [`WAL_BACKSTOP_PAGES`], far above
//! what is written between two of the checkpointer's rounds, and the checkpointer runs
//! `PRAGMA wal_checkpoint(PASSIVE)` after a pause in this store's commits ([`QUIET`], at most
//! every [`CHECKPOINT_EVERY`], at least every [`MAX_DELAY`]) on a connection of its own whose
//! sqlx worker thread is in the `SCHED_IDLE` scheduling class (nice 19 where that is refused):
//! it runs only on a core nothing else wants, and any other thread waking on that core
//! preempts it at once (sched(7), "SCHED_IDLE: Scheduling very low priority jobs").
//!
//! Why starving it cannot stall a writer (no priority inversion): a PASSIVE checkpoint does
//! not take the database's writer lock. The SQLite C interface, `sqlite3_wal_checkpoint_v2`:
//! "SQLITE_CHECKPOINT_PASSIVE: Checkpoint as many frames as possible without waiting for any
//! database readers or writers to finish ... The busy-handler callback is never invoked in the
//! SQLITE_CHECKPOINT_PASSIVE mode"; only the FULL, RESTART and TRUNCATE modes take the writer
//! lock ("This mode blocks ... until there is no database writer"). "Write-Ahead Logging",
//! section 2.3: writers only append to the WAL, and "whenever a write operation occurs, the
//! writer checks how much progress the checkpointer has made, and if the entire WAL has been
//! transferred into the database and synced and if no readers are making use of the WAL, then
//! the writer will rewind the WAL back to the beginning": a writer never waits for a
//! checkpoint. Readers do not either: they read the pages the checkpoint has not copied yet
//! from the WAL. The only thing a starved checkpoint holds is the checkpoint lock, and a commit
//! meeting it at the backstop does not wait either: its own checkpoint attempt returns
//! `SQLITE_BUSY` ("If another connection is running a checkpoint already, ... SQLITE_BUSY") and
//! the commit succeeds. Nor does the checkpointer take this process's writer turn
//! (`Store::write_tx`).
//!
//! The bound on the WAL: a commit that finds it past [`WAL_BACKSTOP_PAGES`] checkpoints it, as
//! SQLite does by default at 1,000, unless the checkpointer is in the middle of a checkpoint.
//! While the checkpointer is starved in one (its core busy with other threads for longer than
//! [`PATIENCE`]), it is raised to the process's ordinary scheduling class at nice 19 until that
//! checkpoint ends, where the operating system allows it (leaving `SCHED_IDLE` needs
//! `CAP_SYS_NICE` or a `RLIMIT_NICE` allowing nice 19, see sched(7)); where it does not, even
//! `SCHED_IDLE` gets a small share of a busy core, so the checkpoint ends and the backstop
//! applies again.
//!
//! That share can be very small: with a million devices fetching while a campaign ran on one
//! core, a checkpoint took up to 33 s and the `-wal` file grew to 3.1 GB, since nothing rewinds
//! the WAL before a checkpoint has copied all of it. So past [`WAL_MAX_BYTES`], a write
//! transaction first waits for the checkpoint in progress to end (at most [`HOLD_MAX`]):
//! writers then rewind the WAL, and while they wait the fetch log holds fetches back and
//! frees the core for the checkpointer (see [`InProgress`]). And every connection sets
//! `PRAGMA journal_size_limit` to [`WAL_KEPT_BYTES`], so that a WAL rewound after such a
//! growth is truncated rather than left on disk at its largest (SQLite, "PRAGMA
//! journal_size_limit": "the write-ahead log file is not truncated following a checkpoint ...
//! this pragma may be used to limit the size of WAL files left in the file-system").

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyPool, Row};

use crate::{priority, Role, Store, StoreError};

/// How many pages the WAL may hold before a commit checkpoints it itself (every connection's
/// `PRAGMA wal_autocheckpoint`; SQLite's default is 1,000). At 4 KiB pages, 16 MiB of WAL: a
/// PnP boot storm of 10,000 phones a second writes about 1,000 pages a second, and the
/// checkpointer runs four times a second.
pub(crate) const WAL_BACKSTOP_PAGES: u32 = 4_000;

/// The size past which a write waits for the checkpoint in progress to end: 1 GiB of WAL.
/// Waiting costs the writers' pace: at 256 MiB a million-device campaign with every device
/// fetching sent 2,436 NOTIFYs a second against 3,416 without the wait (its `-wal` then reached
/// 570 MB in that run, 3.1 GB in another); this bound is for a checkpointer starved for
/// minutes, not for the ordinary lag.
pub(crate) const WAL_MAX_BYTES: u64 = 1 << 30;

/// The longest a write waits for that checkpoint: past it the write goes ahead (the WAL grows
/// further, but nothing stops).
const HOLD_MAX: Duration = Duration::from_secs(10);

/// What a rewound WAL is truncated to (`PRAGMA journal_size_limit`).
pub(crate) const WAL_KEPT_BYTES: u64 = 64 << 20;

/// How often the checkpointer runs a checkpoint, at most. One with nothing to copy reads the
/// WAL index's header and returns.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// How long no write of this store may have committed before a checkpoint runs: a burst of
/// writes (a PnP boot storm's history, a tick every 250 ms) is copied after it, not during it.
/// `SCHED_IDLE` alone does not keep the checkpointer off a core whose other threads are busy at
/// every instant: at a timer tick the kernel may pick it while a thread of the process is
/// runnable but not yet due, and it then runs until the next tick (seen in a boot storm: runs of
/// up to 4 ms, 2 to 6 times a storm, while the thread answering the phones waited).
const QUIET: Duration = Duration::from_millis(500);

/// The longest writes may put a checkpoint off: past it, the checkpoint runs however busy
/// the writers are, so the WAL holds at most what two seconds of writes add before a
/// checkpoint (the backstop catches a faster writer).
const MAX_DELAY: Duration = Duration::from_secs(2);

/// How often the checkpointer looks at the count of commits.
const POLL: Duration = Duration::from_millis(100);

/// How long a checkpoint may wait, starved, before the checkpointer is raised (see the module
/// notes).
const PATIENCE: Duration = Duration::from_secs(1);

/// How long [`Checkpointer::stop`] waits for the last checkpoint.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Whether a checkpoint of the checkpointer is running, shared with the store's writers.
#[derive(Default)]
pub(crate) struct InProgress {
    running: AtomicBool,
    ended: tokio::sync::Notify,
}

impl InProgress {
    /// Waits for the checkpoint in progress to end, at most [`HOLD_MAX`], when the WAL beside
    /// the database at `path` is past [`WAL_MAX_BYTES`]; returns at once otherwise (one atomic
    /// load when no checkpoint runs, a `stat` of the WAL when one does).
    pub(crate) async fn wait_if_wal_past_bound(&self, path: &std::path::Path) {
        if !self.running.load(Ordering::Acquire) {
            return;
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size < WAL_MAX_BYTES {
            return;
        }
        let ended = self.ended.notified();
        tokio::pin!(ended);
        // Registered before the second look: an end in between still wakes this write.
        ended.as_mut().enable();
        if self.running.load(Ordering::Acquire) {
            tracing::debug!(wal_bytes = size, "a write waits for the WAL checkpoint in progress");
            let _ = tokio::time::timeout(HOLD_MAX, ended).await;
        }
    }

    fn begin(&self) {
        self.running.store(true, Ordering::Release);
    }

    fn end(&self) {
        self.running.store(false, Ordering::Release);
        self.ended.notify_waiters();
    }
}

/// The store's WAL checkpointer (SQLite on a file): runs until [`Checkpointer::stop`].
pub struct Checkpointer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    counts: Arc<Counts>,
}

/// What the checkpointer has done, for tests and logs.
#[derive(Default)]
struct Counts {
    /// Checkpoints that ran to the end (whatever they found to copy).
    done: AtomicU64,
    /// WAL frames in the log at the last checkpoint's end.
    log_frames: AtomicU64,
}

impl Store {
    /// Starts the WAL checkpointer (see `checkpoint`): on SQLite with a database file, a task
    /// of the current Tokio runtime driving a connection of its own at the lowest CPU priority.
    /// `None` on PostgreSQL and on an in-memory SQLite database (no WAL). Its connection is
    /// opened here, before anything else opens one, so that its worker thread is told apart.
    pub async fn start_checkpointer(&self) -> Result<Option<Checkpointer>, StoreError> {
        if self.backend != crate::Backend::Sqlite || crate::sqlite_path(&self.url).is_none() {
            return Ok(None);
        }
        let worker = Arc::new(AtomicI32::new(0));
        let pool = self.one_connection(Role::Checkpoint(worker.clone()))?;
        drop(pool.acquire().await?);
        let counts = Arc::new(Counts::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let commits = self.commits.clone();
        let running = self.checkpointing.clone();
        let task = tokio::spawn(run(pool, worker, commits, running, counts.clone(), stopped));
        Ok(Some(Checkpointer { stop, task, counts }))
    }
}

impl Checkpointer {
    /// Checkpoints that ran to the end so far.
    pub fn checkpoints(&self) -> u64 {
        self.counts.done.load(Ordering::Relaxed)
    }

    /// Frames in the WAL at the end of the last checkpoint (all of them copied into the
    /// database, unless a reader still used the older ones).
    pub fn wal_frames(&self) -> u64 {
        self.counts.log_frames.load(Ordering::Relaxed)
    }

    /// Stops the checkpointer after one last checkpoint (a clean stop calls this after its
    /// last write), waiting at most a few seconds for it; then closes its connection.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
            // The statement finishes on its worker thread without the task; SQLite's own
            // recovery covers a checkpoint cut short by the process's end.
            task.abort();
            tracing::warn!(waited_secs = STOP_WAIT.as_secs(), "the last WAL checkpoint did not finish");
        }
    }
}

/// The checkpointer's loop: a checkpoint every [`CHECKPOINT_EVERY`] while no commit of this
/// store came for [`QUIET`], at least every [`MAX_DELAY`] whatever the writes, and one more at
/// the stop. Writes of other processes on the file (a `sipprov` command) are not counted; they
/// are copied at the next checkpoint, or by their own commits at the backstop.
async fn run(
    pool: AnyPool,
    worker: Arc<AtomicI32>,
    commits: Arc<AtomicU64>,
    running: Arc<InProgress>,
    counts: Arc<Counts>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing_since: Option<Instant> = None;
    let mut seen = commits.load(Ordering::Relaxed);
    let (mut last_commit, mut last_checkpoint) = (Instant::now(), Instant::now());
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let count = commits.load(Ordering::Relaxed);
        if count != seen {
            (seen, last_commit) = (count, now);
        }
        let since = now.duration_since(last_checkpoint);
        let quiet = now.duration_since(last_commit) >= QUIET;
        if since >= CHECKPOINT_EVERY && (quiet || since >= MAX_DELAY) {
            checkpoint(&pool, &worker, &running, &counts, &mut failing_since).await;
            last_checkpoint = Instant::now();
        }
    }
    checkpoint(&pool, &worker, &running, &counts, &mut failing_since).await;
    pool.close().await;
}

/// One `PRAGMA wal_checkpoint(PASSIVE)`, raising the worker while it is starved past
/// [`PATIENCE`]. A failure is logged once a minute while failures last: the backstop still
/// bounds the WAL, and the next round tries again.
async fn checkpoint(
    pool: &AnyPool,
    worker: &AtomicI32,
    running: &InProgress,
    counts: &Counts,
    failing_since: &mut Option<Instant>,
) {
    running.begin();
    let result = run_checkpoint(pool, worker).await;
    running.end();
    note_checkpoint(result, counts, failing_since);
}

/// `PRAGMA wal_checkpoint(PASSIVE)`, the worker raised while it is starved past [`PATIENCE`].
async fn run_checkpoint(pool: &AnyPool, worker: &AtomicI32) -> Result<sqlx::any::AnyRow, sqlx::Error> {
    let query = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool);
    tokio::pin!(query);
    match tokio::time::timeout(PATIENCE, &mut query).await {
        Ok(result) => result,
        Err(_) => {
            let tid = worker.load(Ordering::Relaxed);
            let raised = tid != 0 && priority::raise_idle(tid);
            let result = query.await;
            if raised {
                priority::idle(tid);
            }
            result
        }
    }
}

/// Checks the result of one checkpoint's statement ([`checkpoint`]).
fn note_checkpoint(
    result: Result<sqlx::any::AnyRow, sqlx::Error>,
    counts: &Counts,
    failing_since: &mut Option<Instant>,
) {
    match result {
        Ok(row) => {
            // (busy, frames in the WAL, frames checkpointed); -1 when not in WAL mode.
            let frames: i64 = row.try_get(1).unwrap_or(-1);
            counts.log_frames.store(frames.max(0) as u64, Ordering::Relaxed);
            counts.done.fetch_add(1, Ordering::Relaxed);
            *failing_since = None;
        }
        Err(e) => {
            let now = Instant::now();
            let log = failing_since.is_none_or(|since| now.duration_since(since) >= Duration::from_secs(60));
            if log {
                *failing_since = Some(now);
                tracing::warn!(error = %e, "WAL checkpoint failed; commits checkpoint at the backstop meanwhile");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database path whose `-wal` file is `len` bytes long (sparse: no disk is used).
    fn wal_of(dir: &std::path::Path, len: u64) -> std::path::PathBuf {
        let db = dir.join("t.db");
        std::fs::File::create(dir.join("t.db-wal")).unwrap().set_len(len).unwrap();
        db
    }

    #[tokio::test]
    async fn a_write_waits_for_the_checkpoint_only_when_the_wal_is_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let state = Arc::new(InProgress::default());
        let quick = Duration::from_secs(1);
        // No checkpoint running: no wait, however large the WAL.
        let big = wal_of(dir.path(), WAL_MAX_BYTES + 1);
        tokio::time::timeout(quick, state.wait_if_wal_past_bound(&big)).await.expect("no checkpoint, no wait");
        // A checkpoint running, a small WAL: no wait.
        state.begin();
        let small = wal_of(dir.path(), WAL_MAX_BYTES - 1);
        tokio::time::timeout(quick, state.wait_if_wal_past_bound(&small)).await.expect("small WAL, no wait");
        // A checkpoint running, a WAL past the bound: the write waits until it ends.
        let big = wal_of(dir.path(), WAL_MAX_BYTES);
        let waiting = tokio::spawn({
            let state = state.clone();
            async move { state.wait_if_wal_past_bound(&big).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "waits while the checkpoint runs");
        state.end();
        tokio::time::timeout(quick, waiting).await.expect("released when it ends").unwrap();
    }

    #[tokio::test]
    async fn every_connection_truncates_a_rewound_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let limit: i64 = sqlx::query_scalar("PRAGMA journal_size_limit").fetch_one(&store.pool).await.unwrap();
        assert_eq!(limit as u64, WAL_KEPT_BYTES);
    }
}
