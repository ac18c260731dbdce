//! The WAL checkpointer (SQLite): with it running the `-wal` file stops growing, writers that
//! never pause put it off for a bounded time only, its worker thread is in the `SCHED_IDLE`
//! class on Linux, and it stops cleanly; without it, commits
//! still checkpoint at the backstop, so the WAL stays bounded. A test binary of its own: it
//! looks at the process's SQLite threads. On PostgreSQL (SIPPROV_TEST_POSTGRES_URL) there is no
//! checkpointer.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{device, stores};
use sipprov_model::{EventKind, Mac};
use sipprov_store::{Checkpointer, NewEvent, Store, CHECKPOINT_EVERY};

/// Every connection's `PRAGMA wal_autocheckpoint` (the backstop), in pages.
const BACKSTOP: u64 = 4_000;
/// SQLite's own default, which the backstop replaces.
const SQLITE_DEFAULT: u64 = 1_000;

/// `count` events of about `bytes` each (a page of 4 KiB holds one of 3,000 bytes).
fn events(mac: Mac, first: i64, count: i64, bytes: usize) -> Vec<NewEvent> {
    let pad = "x".repeat(bytes);
    (first..first + count)
        .map(|at| NewEvent { mac, at, kind: EventKind::Fetch, detail: serde_json::json!({ "pad": pad }) })
        .collect()
}

fn wal_len(db: &Path) -> u64 {
    std::fs::metadata(db.with_extension("db-wal")).map(|m| m.len()).unwrap_or(0)
}

/// A WAL of `frames` frames of 4 KiB pages, in bytes (32-byte header, 24 bytes per frame).
fn wal_bytes(frames: u64) -> u64 {
    32 + frames * (4096 + 24)
}

/// Waits until the checkpointer has run two more checkpoints: one that began after now.
async fn two_more(checkpointer: &Checkpointer) {
    let start = checkpointer.checkpoints();
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpointer.checkpoints() < start + 2 {
        assert!(Instant::now() < deadline, "the checkpointer stopped checkpointing");
        tokio::time::sleep(CHECKPOINT_EVERY / 5).await;
    }
}

/// The scheduling policy of the process's SQLite worker threads (`/proc/.../sched`).
#[cfg(target_os = "linux")]
fn sqlite_worker_policies() -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("sqlx-sqlite-wor") {
            continue;
        }
        let sched = std::fs::read_to_string(task.path().join("sched")).unwrap_or_default();
        let policy = sched.lines().find(|l| l.starts_with("policy")).and_then(|l| l.split(':').nth(1));
        out.extend(policy.and_then(|p| p.trim().parse::<u32>().ok()));
    }
    out
}

// One test, in turn: two stores opening connections at once could not tell their threads apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_keeps_the_wal_small_and_commits_keep_a_bound_without_it() {
    the_checkpointer_resets_the_wal_after_writes().await;
    without_the_checkpointer_commits_checkpoint_at_the_backstop().await;
    // PostgreSQL (the store without a directory) checkpoints itself.
    for (store, dir) in stores().await {
        assert_eq!(store.start_checkpointer().await.unwrap().is_some(), dir.is_some());
    }
}

async fn the_checkpointer_resets_the_wal_after_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = Store::open_sqlite(&db).await.unwrap();
    let checkpointer = store.start_checkpointer().await.unwrap().expect("a checkpointer on a SQLite file");
    #[cfg(target_os = "linux")]
    assert!(sqlite_worker_policies().contains(&5), "no SQLite worker in SCHED_IDLE: {:?}", sqlite_worker_policies());
    let mac: Mac = "001565000001".parse().unwrap();
    store.insert_devices(&[device("001565000001", None)]).await.unwrap();
    let background = store.background_writer().await.unwrap();

    // Rounds of about 100 pages each, through both writers: far below the backstop, so only
    // the checkpointer can bring the WAL back to its start.
    let mut sizes = Vec::new();
    for round in 0..12 {
        let writer = if round % 2 == 0 { &store } else { &background };
        writer.append_events(&events(mac, round * 100, 100, 3_000)).await.unwrap();
        two_more(&checkpointer).await;
        sizes.push(wal_len(&db));
    }
    // Each round's pages went back into the database file, and the next round's commit
    // rewound the WAL: it stays the size of about one round, far from twelve.
    let first = sizes[1];
    assert!(sizes.iter().all(|&s| s <= first), "the WAL kept growing: {sizes:?}");
    assert!(first < wal_bytes(400), "a round's WAL is {first} bytes");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM device_events").fetch_one(store.pool()).await.unwrap();
    assert_eq!(count, 12 * 100);

    // Writers that never pause (a commit every 50 ms for 3 s) put checkpoints off for at most
    // two seconds each.
    let before = checkpointer.checkpoints();
    let busy_until = Instant::now() + Duration::from_secs(3);
    let mut at = 10_000;
    while Instant::now() < busy_until {
        store.append_events(&events(mac, at, 1, 100)).await.unwrap();
        at += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(checkpointer.checkpoints() > before, "no checkpoint while the writers were busy");

    // A clean stop: one last checkpoint, then the task ends (well within its wait).
    store.append_events(&events(mac, 5_000, 10, 3_000)).await.unwrap();
    let stopping = Instant::now();
    checkpointer.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

async fn without_the_checkpointer_commits_checkpoint_at_the_backstop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = Store::open_sqlite(&db).await.unwrap();
    let mac: Mac = "001565000002".parse().unwrap();
    store.insert_devices(&[device("001565000002", None)]).await.unwrap();
    let background = store.background_writer().await.unwrap();
    // Twice the backstop in commits of about 250 pages, alternating the two connections.
    let per_commit = 250;
    for round in 0..(2 * BACKSTOP as i64 / per_commit) {
        let writer = if round % 2 == 0 { &store } else { &background };
        writer.append_events(&events(mac, round * per_commit, per_commit, 3_000)).await.unwrap();
    }
    let len = wal_len(&db);
    // Past SQLite's default (the backstop replaced it) ...
    assert!(len > wal_bytes(SQLITE_DEFAULT + per_commit as u64), "the WAL is only {len} bytes");
    // ... and never past the backstop plus one commit's pages (and the index pages it touched).
    assert!(len <= wal_bytes(BACKSTOP + 2 * per_commit as u64), "the WAL grew to {len} bytes");
}
