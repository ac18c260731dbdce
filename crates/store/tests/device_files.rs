//! `device_files`: one row per device and file holding both what the device last fetched and
//! what was last rendered for it (migration 0034). Each write keeps the other half of the row,
//! a deleted device keeps its fetches but not its renderings, the fetch log's deferred write on
//! SQLite writes both halves in one pass, and a database from before the migration keeps every
//! row of the two tables it replaces.

#[allow(dead_code)] // each test binary uses part of the shared helpers
mod common;

use common::{device, stores};
use sipprov_model::Mac;
use sipprov_store::{DeferredRows, FetchInfo, RenderedState, Store};
use sqlx::Row;

fn mac(n: u32) -> Mac {
    common::nth_mac(n)
}

fn fetch(mac: Mac, file: &str, at: i64) -> FetchInfo {
    common::fetch_at(mac, file, at, None)
}

fn rendering(mac: Mac, file: &str, changed_at: i64) -> RenderedState {
    RenderedState { mac, file: file.into(), hash: format!("r{changed_at}"), changed_at }
}

/// Every row of `device_files` as (mac, file, hash, at, rendered_hash, changed_at), in key order.
type FileRow = (String, String, Option<String>, Option<i64>, Option<String>, Option<i64>);

async fn file_rows(store: &Store) -> Vec<FileRow> {
    let rows =
        sqlx::query("SELECT mac, file, hash, at, rendered_hash, changed_at FROM device_files ORDER BY mac, file")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get("mac").unwrap(),
                r.try_get("file").unwrap(),
                r.try_get("hash").unwrap(),
                r.try_get("at").unwrap(),
                r.try_get("rendered_hash").unwrap(),
                r.try_get("changed_at").unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_fetch_and_a_rendering_of_one_file_share_a_row_and_keep_each_other() {
    for (store, _dir) in stores().await {
        let one = mac(1);
        store.insert_devices(&[device(&one.to_string(), None)]).await.unwrap();
        store.save_rendered_states(&[rendering(one, "a.cfg", 100)]).await.unwrap();
        assert_eq!(store.fetched_since(0).await.unwrap(), vec![], "a rendering alone is no fetch");
        store.record_fetches(&[fetch(one, "a.cfg", 200), fetch(one, "b.cfg", 210)]).await.unwrap();
        // A newer rendering of the fetched file keeps the fetch, and a newer fetch the rendering.
        store.save_rendered_states(&[rendering(one, "a.cfg", 300)]).await.unwrap();
        store.record_fetches(&[fetch(one, "a.cfg", 400)]).await.unwrap();

        let rows = file_rows(&store).await;
        let m = one.to_string();
        assert_eq!(
            rows,
            vec![
                (m.clone(), "a.cfg".into(), Some("h400".into()), Some(400), Some("r300".into()), Some(300)),
                (m.clone(), "b.cfg".into(), Some("h210".into()), Some(210), None, None),
            ]
        );
        assert_eq!(store.rendered_states().await.unwrap(), vec![rendering(one, "a.cfg", 300)]);
        let mut fetched = store.fetched_since(0).await.unwrap();
        fetched.sort();
        assert_eq!(fetched, vec![(one, "a.cfg".into(), "h400".into(), 400), (one, "b.cfg".into(), "h210".into(), 210)]);
    }
}

#[tokio::test]
async fn a_deleted_device_keeps_its_fetches_but_not_its_renderings() {
    for (store, _dir) in stores().await {
        let (gone, kept) = (mac(1), mac(2));
        store.insert_devices(&[device(&gone.to_string(), None), device(&kept.to_string(), None)]).await.unwrap();
        store
            .save_rendered_states(&[
                rendering(gone, "a.cfg", 100),
                rendering(gone, "b.cfg", 110),
                rendering(kept, "a.cfg", 120),
            ])
            .await
            .unwrap();
        store.record_fetches(&[fetch(gone, "a.cfg", 200)]).await.unwrap();
        store.delete_device(gone).await.unwrap();

        assert_eq!(store.rendered_states().await.unwrap(), vec![rendering(kept, "a.cfg", 120)]);
        assert_eq!(store.fetched_since(0).await.unwrap(), vec![(gone, "a.cfg".into(), "h200".into(), 200)]);
        assert_eq!(file_rows(&store).await.len(), 2, "the rendering-only row of the deleted device is gone");
    }
}

#[tokio::test]
async fn the_deferred_write_puts_fetches_and_renderings_in_one_row_each() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let devices: Vec<_> = (0..4).map(|i| device(&mac(i).to_string(), None)).collect();
    store.insert_devices(&devices).await.unwrap();
    // Stored before: device 2's rendering, device 3's fetch.
    store.save_rendered_states(&[rendering(mac(2), "a.cfg", 50)]).await.unwrap();
    store.record_fetches(&[fetch(mac(3), "a.cfg", 60)]).await.unwrap();

    // Out of key order on purpose, and two fetches of one file (the later wins).
    let fetched = [fetch(mac(2), "a.cfg", 500), fetch(mac(0), "a.cfg", 400), fetch(mac(0), "a.cfg", 450)];
    let rendered = [rendering(mac(3), "a.cfg", 700), rendering(mac(0), "a.cfg", 410), rendering(mac(1), "a.cfg", 420)];
    let rows = DeferredRows { seen: &fetched, fetched: &fetched, rendered: &rendered };
    store.record_deferred_rows(rows, i64::MAX).await.unwrap();

    let f = |n: u32| mac(n).to_string();
    let file = || "a.cfg".to_string();
    assert_eq!(
        file_rows(&store).await,
        vec![
            (f(0), file(), Some("h450".into()), Some(450), Some("r410".into()), Some(410)),
            (f(1), file(), None, None, Some("r420".into()), Some(420)),
            (f(2), file(), Some("h500".into()), Some(500), Some("r50".into()), Some(50)),
            (f(3), file(), Some("h60".into()), Some(60), Some("r700".into()), Some(700)),
        ]
    );
}

#[tokio::test]
async fn a_database_from_before_the_merge_keeps_every_row_of_both_tables() {
    let mut urls = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    urls.push(format!("sqlite://{}", dir.path().join("t.db").display()));
    if let Ok(url) = std::env::var("SIPPROV_TEST_POSTGRES_URL") {
        urls.push(common::fresh_postgres_database(&url).await);
    }
    for url in urls {
        let store = Store::open(&url).await.unwrap();
        // Back to the tables migration 0034 replaces, with rows on shared and on separate keys,
        // and the migration marked as not applied yet.
        let mut tx = store.pool().begin().await.unwrap();
        for sql in [
            "DROP TABLE device_files",
            "CREATE TABLE device_fetched (mac TEXT NOT NULL, file TEXT NOT NULL, hash TEXT NOT NULL, \
             at BIGINT NOT NULL, PRIMARY KEY (mac, file))",
            "CREATE TABLE rendered_files (mac TEXT NOT NULL, file TEXT NOT NULL, hash TEXT NOT NULL, \
             changed_at BIGINT NOT NULL, PRIMARY KEY (mac, file))",
            "INSERT INTO device_fetched (mac, file, hash, at) VALUES \
             ('001565000001', 'a.cfg', 'h1', 10), ('001565000002', 'a.cfg', 'h2', 20)",
            "INSERT INTO rendered_files (mac, file, hash, changed_at) VALUES \
             ('001565000001', 'a.cfg', 'r1', 5), ('001565000003', 'a.cfg', 'r3', 7)",
            "DELETE FROM _sqlx_migrations WHERE version = 34",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
        store.pool().close().await;

        let store = Store::open(&url).await.unwrap();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            file_rows(&store).await,
            vec![
                ("001565000001".into(), "a.cfg".into(), s("h1"), Some(10), s("r1"), Some(5)),
                ("001565000002".into(), "a.cfg".into(), s("h2"), Some(20), None, None),
                ("001565000003".into(), "a.cfg".into(), None, None, s("r3"), Some(7)),
            ],
            "{url}"
        );
        for gone in ["device_fetched", "rendered_files"] {
            let probe = format!("SELECT COUNT(*) FROM {gone}");
            assert!(sqlx::query(sqlx::AssertSqlSafe(probe)).fetch_one(store.pool()).await.is_err(), "{gone} dropped");
        }
    }
}
