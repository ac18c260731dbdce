//! The SQLite-only layout applied after the migrations: the fetch log's keyed tables stored as
//! their key's B-tree (`WITHOUT ROWID`), a database in the earlier layout rebuilt with every row
//! kept, a layout that no longer matches the migrations refused by name, and the deferred rows
//! (last-seen, fetched, change times) written after the events, moving the replay's mark.

#[allow(dead_code)] // each test binary uses part of the shared helpers
mod common;

use common::device;
use sipprov_model::{EventKind, Mac};
use sipprov_store::{DeferredRows, EventText, FetchInfo, IntervalEvent, NewEvent, RenderedState, Store, StoreError};
use sqlx::Row;

const KEYED: [&str; 2] = ["device_seen", "device_files"];

fn mac(n: u32) -> Mac {
    common::nth_mac(n)
}

fn fetch(mac: Mac, file: &str, at: i64) -> FetchInfo {
    common::fetch_at(mac, file, at, Some("T46S"))
}

async fn table_sql(store: &Store, name: &str) -> Option<String> {
    sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = ?")
        .bind(name)
        .fetch_optional(store.pool())
        .await
        .unwrap()
}

/// The fetch tables back in the layout the portable migrations give them (rowid tables, their
/// keys as indexes), as a database written before this layout has them; in one transaction on
/// one connection, so that no other connection of the pool reads a schema half changed.
async fn old_layout(store: &Store) {
    let mut tx = store.pool().begin().await.unwrap();
    let tables = [
        (
            "device_seen",
            "CREATE TABLE old_device_seen (mac TEXT PRIMARY KEY, last_seen_at BIGINT NOT NULL, last_ip TEXT NOT NULL, \
             last_file TEXT NOT NULL, last_hash TEXT NOT NULL, reported_model TEXT, reported_firmware TEXT)",
        ),
        (
            "device_files",
            "CREATE TABLE old_device_files (mac TEXT NOT NULL, file TEXT NOT NULL, hash TEXT, at BIGINT, \
             rendered_hash TEXT, changed_at BIGINT, PRIMARY KEY (mac, file))",
        ),
    ];
    for (table, create) in tables {
        for sql in [
            create.to_string(),
            format!("INSERT INTO old_{table} SELECT * FROM {table}"),
            format!("DROP TABLE {table}"),
            format!("ALTER TABLE old_{table} RENAME TO {table}"),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
        }
    }
    for index in [
        "CREATE INDEX device_seen_at ON device_seen (last_seen_at)",
        "CREATE INDEX device_files_at ON device_files (at, mac, file) WHERE at IS NOT NULL",
    ] {
        sqlx::query(index).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// Every row of the two tables, in key order, as text.
async fn rows(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for (table, key) in [("device_seen", "mac"), ("device_files", "mac, file")] {
        let sql = format!("SELECT * FROM {table} ORDER BY {key}");
        for row in sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(store.pool()).await.unwrap() {
            let columns: Vec<String> = (0..row.len())
                .map(|i| row.try_get::<String, _>(i).or_else(|_| row.try_get::<i64, _>(i).map(|n| n.to_string())))
                .map(|v| v.unwrap_or_else(|_| "NULL".into()))
                .collect();
            out.push(format!("{table}: {}", columns.join("|")));
        }
    }
    out
}

async fn some_rows(store: &Store) {
    let devices: Vec<_> = (0..40).map(|i| device(&mac(i).to_string(), None)).collect();
    store.insert_devices(&devices).await.unwrap();
    // Out of key order on purpose: the store writes them sorted.
    let fetches: Vec<FetchInfo> =
        (0..40).rev().map(|i| fetch(mac(i * 7 % 40), "a.cfg", 1_000 + i64::from(i))).collect();
    store.record_fetches(&fetches).await.unwrap();
    let states: Vec<RenderedState> = (0..40)
        .rev()
        .map(|i| RenderedState {
            mac: mac(i),
            file: "a.cfg".into(),
            hash: format!("r{i}"),
            changed_at: 500 + i64::from(i),
        })
        .collect();
    store.save_rendered_states(&states).await.unwrap();
}

#[tokio::test]
async fn the_fetch_tables_are_their_keys_btree_and_the_cluster_index_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    for table in KEYED {
        let sql = table_sql(&store, table).await.unwrap();
        assert!(sql.ends_with("WITHOUT ROWID"), "{table}: {sql}");
    }
    assert_eq!(table_sql(&store, "device_seen_at").await, None);
    assert!(table_sql(&store, "device_files_at").await.is_some(), "the campaign confirmation's index stays");
    some_rows(&store).await;
    // 40 last-seen rows, and 40 device files each holding a fetch and a rendering.
    assert_eq!(rows(&store).await.len(), 80);
}

#[tokio::test]
async fn a_database_in_the_earlier_layout_is_rebuilt_with_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    some_rows(&store).await;
    let before = rows(&store).await;
    old_layout(&store).await;
    assert!(!table_sql(&store, "device_seen").await.unwrap().contains("WITHOUT ROWID"));
    store.pool().close().await;

    let store = Store::open_sqlite(&path).await.unwrap();
    for table in KEYED {
        assert!(table_sql(&store, table).await.unwrap().ends_with("WITHOUT ROWID"), "{table} rebuilt");
    }
    assert_eq!(table_sql(&store, "device_seen_at").await, None);
    let index = table_sql(&store, "device_files_at").await.expect("the index is made again");
    assert!(index.contains("(at, mac, file) WHERE at IS NOT NULL"), "{index}");
    assert_eq!(rows(&store).await, before);
    // And it takes writes as before, the upserts meeting existing keys.
    store.record_fetches(&[fetch(mac(3), "a.cfg", 9_000)]).await.unwrap();
    let fetched = store.fetched_since(9_000).await.unwrap();
    assert_eq!(fetched, vec![(mac(3), "a.cfg".to_string(), "h9000".to_string(), 9_000)]);
    store.pool().close().await;

    // Laid out already: opening again only reads (a read-only open works).
    let read_only = Store::open(&format!("sqlite://{}?mode=ro", path.display())).await.unwrap();
    assert_eq!(rows(&read_only).await.len(), 80);
}

#[tokio::test]
async fn a_layout_that_no_longer_matches_the_migrations_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    old_layout(&store).await;
    // As a later migration adding a column would leave it, with this layout not updated.
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::query("ALTER TABLE device_files ADD COLUMN size BIGINT").execute(&mut *conn).await.unwrap();
    drop(conn);
    store.pool().close().await;
    let err = Store::open_sqlite(&path).await.err().expect("the open must fail");
    let StoreError::Corrupt(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("device_files") && message.contains("size BIGINT"), "{message}");
}

#[tokio::test]
async fn the_deferred_rows_move_the_replay_mark() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    store.insert_devices(&[device(&mac(1).to_string(), None)]).await.unwrap();
    let event = NewEvent {
        mac: mac(1),
        at: 2_000,
        kind: EventKind::Fetch,
        detail: serde_json::json!({ "file": "a.cfg", "hash": "h2000", "ip": "192.0.2.1" }),
    };
    let seen = [fetch(mac(1), "a.cfg", 2_000)];
    let rendered = [RenderedState { mac: mac(1), file: "a.cfg".into(), hash: "h2000".into(), changed_at: 1_900 }];
    let ids = store.record_fetch_interval(&[IntervalEvent::New(EventText::from(&event))], &|_| None).await.unwrap();
    assert_eq!(ids.len(), 1);
    let mark = || async {
        let mark: i64 =
            sqlx::query_scalar("SELECT event_id FROM fetch_seen_mark").fetch_one(store.pool()).await.unwrap();
        mark
    };
    // The rows, and the events before `keep_from` marked as reflected in them.
    let rows = DeferredRows { seen: &seen, fetched: &seen, rendered: &rendered };
    store.record_deferred_rows(rows, ids[0]).await.unwrap();
    assert_eq!(mark().await, ids[0] - 1, "the event kept for a replay");
    assert_eq!(store.rendered_states().await.unwrap(), rendered);
    let none = DeferredRows { seen: &[], fetched: &[], rendered: &[] };
    store.record_deferred_rows(none, i64::MAX).await.unwrap();
    assert_eq!(mark().await, ids[0], "every event written is reflected");
    assert_eq!(store.fetched_since(0).await.unwrap(), vec![(mac(1), "a.cfg".into(), "h2000".into(), 2_000)]);
}
