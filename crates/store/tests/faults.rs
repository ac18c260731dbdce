//! The store when the database cannot write: a full disk (a small tmpfs, so these tests need
//! root to mount it and say so when skipped) and a read-only database.

#[allow(dead_code)] // each test binary uses part of the shared helpers
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::device;
use sipprov_model::{EventKind, Mac};
use sipprov_store::{NewEvent, Store};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop (also when a test fails).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after saying why) when this process may not mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { geteuid() } != 0 {
            println!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "sipprov-test"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            other => {
                println!("SKIPPED: cannot mount a tmpfs here ({other:?})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(self.dir.path()).status();
    }
}

// POSIX geteuid(2), from the C library every Rust program on Linux links (no libc crate here).
extern "C" {
    fn geteuid() -> u32;
}

/// Fills the file system holding `path` with one file; returns that file.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    filler
}

fn event(mac: Mac, at: i64) -> NewEvent {
    // Big enough that a few of them need new pages, so the write reaches the disk.
    NewEvent { mac, at, kind: EventKind::Fetch, detail: serde_json::json!({ "pad": "x".repeat(4000) }) }
}

#[tokio::test]
async fn writes_work_again_once_the_full_disk_has_room() {
    let Some(fs) = Tmpfs::mount("4m") else { return };
    let store = Store::open_sqlite(&fs.path().join("t.db")).await.unwrap();
    let mac: Mac = "001565000001".parse().unwrap();
    store.insert_devices(&[device("001565000001", None)]).await.unwrap();
    let filler = fill(fs.path());
    // More failed writes than the pool has connections: each used to leave one poisoned.
    for i in 0..8 {
        let err = store.append_events(&(0..20).map(|j| event(mac, i * 100 + j)).collect::<Vec<_>>()).await.unwrap_err();
        let why = err.unavailable().unwrap_or_else(|| panic!("a full disk is a database failure: {err}"));
        assert_eq!(why, "database write failed: database or disk is full", "{err:?}");
        assert!(err.cannot_write());
    }
    std::fs::remove_file(filler).unwrap();
    for i in 0..8 {
        store.append_events(&[event(mac, 10_000 + i)]).await.unwrap_or_else(|e| panic!("write {i} after room: {e:?}"));
    }
    let events = store.device_events(mac, 100).await.unwrap();
    let ats: Vec<i64> = events.iter().map(|e| e.at).collect();
    assert_eq!(ats, (10_000..10_008).collect::<Vec<_>>(), "only the writes made with room are stored");
    store.pool().close().await;
}

#[tokio::test]
async fn a_read_only_database_fails_the_write_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    store.check_writable().await.expect("a fresh database takes writes");
    store.pool().close().await;
    let read_only = Store::open(&format!("sqlite://{}?mode=ro", path.display())).await.unwrap();
    let err = read_only.check_writable().await.expect_err("a read-only database must fail the check");
    assert_eq!(
        err.unavailable().as_deref(),
        Some("database write failed: attempt to write a readonly database"),
        "{err:?}"
    );
    assert!(err.cannot_write());
}

#[tokio::test]
async fn a_read_only_postgres_database_does_not_open() {
    let Ok(base) = std::env::var("SIPPROV_TEST_POSTGRES_URL") else {
        println!("SKIPPED: SIPPROV_TEST_POSTGRES_URL is not set");
        return;
    };
    let url = common::fresh_postgres_database(&base).await;
    let store = Store::open(&url).await.unwrap();
    store.check_writable().await.expect("a fresh database takes writes");
    let name = url.rsplit('/').next().unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} SET default_transaction_read_only = on")))
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    // New connections, hence new sessions, are read-only: the migrations' bookkeeping
    // (CREATE TABLE IF NOT EXISTS) already fails, so such a database cannot even be opened.
    let err = Store::open(&url).await.err().expect("a read-only database must not open");
    assert_eq!(
        err.unavailable().as_deref(),
        Some("database write failed: cannot execute CREATE TABLE in a read-only transaction"),
        "{err:?}"
    );
    assert!(err.cannot_write());
}
