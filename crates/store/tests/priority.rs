//! The background writer (the fetch log's connection): its writes and the main pool's go on
//! together without "database is locked", and on Linux only its worker thread runs below the
//! process's CPU priority; the same for a writer of its own (a campaign's outcomes), which keeps
//! the normal priority. A test binary of its own: it counts the process's SQLite threads.

use sipprov_model::{EventKind, Mac, Settings};
use sipprov_store::{NewDevice, NewEvent, Store};

const ROUNDS: i64 = 40;

fn device(mac: &str) -> NewDevice {
    NewDevice {
        mac: mac.parse().unwrap(),
        vendor: "yealink".into(),
        model: "T46S".into(),
        group: None,
        contact: None,
        settings: Settings::new(),
    }
}

fn event(mac: Mac, at: i64, who: &str) -> NewEvent {
    NewEvent { mac, at, kind: EventKind::Fetch, detail: serde_json::json!({ "by": who }) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_background_writer_shares_the_database_and_only_its_thread_is_lowered() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let mac: Mac = "001565000001".parse().unwrap();
    store.insert_devices(&[device("001565000001")]).await.unwrap();
    let background = store.background_writer().await.unwrap();
    // Its connection opens while the main pool opens none.
    background.append_events(&[event(mac, 0, "background")]).await.unwrap();

    // Both write at once, many short transactions each, as the fetch log and a campaign do.
    let writes = |s: Store, who: &'static str| async move {
        for at in 1..=ROUNDS {
            s.append_events(&[event(mac, at, who)]).await.unwrap();
        }
    };
    let main_side = tokio::spawn(writes(store.clone(), "main"));
    let other_main_side = tokio::spawn(writes(store.clone(), "main"));
    let background_side = tokio::spawn(writes(background.clone(), "background"));
    main_side.await.unwrap();
    other_main_side.await.unwrap();
    background_side.await.unwrap();

    // Every write of both is in the one database, read through either.
    for s in [&store, &background] {
        let log = s.device_events(mac, 1_000).await.unwrap();
        let by = |who: &str| log.iter().filter(|e| e.detail["by"] == who).count() as i64;
        assert_eq!((by("main"), by("background")), (2 * ROUNDS, ROUNDS + 1));
    }

    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority reads the process's niceness; no memory is passed.
        let base = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let mut niceness = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.starts_with("sqlx-sqlite-wor") {
                let tid: libc::id_t = task.file_name().to_str().unwrap().parse().unwrap();
                // SAFETY: as above, for one thread of this process.
                niceness.push(unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) });
            }
        }
        let lowered = niceness.iter().filter(|n| **n > base).count();
        let normal = niceness.iter().filter(|n| **n == base).count();
        assert_eq!(lowered, 1, "one background worker below the process's priority: {niceness:?}");
        assert!(normal >= 1, "the main pool's workers keep the process's priority: {niceness:?}");
    }
}

#[tokio::test]
async fn the_background_writer_caches_its_working_set_and_keeps_statement_journals_in_memory() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let background = store.background_writer().await.unwrap();
    let pragma = |s: Store, name: &'static str| async move {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}"))).fetch_one(s.pool()).await.unwrap();
        row.try_get::<i64, _>(0).unwrap()
    };
    // 16 MiB of pages (a negative size is in KiB) and temp_store = MEMORY (2).
    assert_eq!(pragma(background.clone(), "cache_size").await, -16_384);
    assert_eq!(pragma(background, "temp_store").await, 2);
    // The main pool keeps SQLite's defaults: only the fetch log's connection needs the room.
    assert_eq!(pragma(store.clone(), "cache_size").await, -2_000);
    assert_eq!(pragma(store, "temp_store").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_of_its_own_shares_the_database_and_keeps_statement_journals_in_memory() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let mac: Mac = "001565000001".parse().unwrap();
    store.insert_devices(&[device("001565000001")]).await.unwrap();
    let own = store.own_writer().await.unwrap();

    // It writes while the main pool does, many short transactions each (a campaign's outcomes
    // beside the API's writes): they take turns, none meets "database is locked".
    let writes = |s: Store, who: &'static str| async move {
        for at in 1..=ROUNDS {
            s.append_events(&[event(mac, at, who)]).await.unwrap();
        }
    };
    let main_side = tokio::spawn(writes(store.clone(), "main"));
    let other_main_side = tokio::spawn(writes(store.clone(), "main"));
    let own_side = tokio::spawn(writes(own.clone(), "own"));
    main_side.await.unwrap();
    other_main_side.await.unwrap();
    own_side.await.unwrap();
    for s in [&store, &own] {
        let log = s.device_events(mac, 1_000).await.unwrap();
        let by = |who: &str| log.iter().filter(|e| e.detail["by"] == who).count() as i64;
        assert_eq!((by("main"), by("own")), (2 * ROUNDS, ROUNDS));
    }

    let pragma = |s: Store, name: &'static str| async move {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA {name}"))).fetch_one(s.pool()).await.unwrap();
        row.try_get::<i64, _>(0).unwrap()
    };
    // One connection, its statement journals in memory (temp_store = MEMORY is 2); the main
    // pool keeps SQLite's default.
    assert_eq!(own.pool().options().get_max_connections(), 1);
    assert_eq!(pragma(own, "temp_store").await, 2);
    assert_eq!(pragma(store, "temp_store").await, 0);
}
