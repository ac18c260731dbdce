//! The change feed, the node registry and event ids, on SQLite (and PostgreSQL when
//! SIPPROV_TEST_POSTGRES_URL is set): what the nodes sharing one database rely on.

#[allow(dead_code)] // the shared helpers; `stores` and `device` are needed here
mod common;

use common::{device, stores};
use sipprov_model::{EventKind, Settings};
use sipprov_store::{Change, ChangeKind, FeedRead, NewEvent, NodeHeartbeat, Store, FEED_RETENTION};

fn kinds(read: FeedRead) -> Vec<(ChangeKind, String, String)> {
    match read {
        FeedRead::Changes(changes) => changes.into_iter().map(|c: Change| (c.kind, c.key, c.origin)).collect(),
        FeedRead::Gap { head } => panic!("unexpected gap at {head}"),
    }
}

#[tokio::test]
async fn each_write_appends_what_to_reload_with_its_origin() {
    for (store, _dir) in stores().await {
        store.set_origin("node-a/1/x");
        let start = store.change_feed_head().await.unwrap();
        store.insert_devices(&[device("001565000001", Some("sales"))]).await.unwrap();
        let patch = sipprov_store::DevicePatch { model: Some("T48S".into()), ..Default::default() };
        store.patch_device("001565000001".parse().unwrap(), &patch).await.unwrap();
        store.patch_group("sales", &Settings::parse_assignments(["a=1"]).unwrap()).await.unwrap();
        store.patch_global_settings(&Settings::parse_assignments(["b=2"]).unwrap()).await.unwrap();
        store.record_unlock("001565000001".parse().unwrap(), 5).await.unwrap();
        store.delete_device("001565000001".parse().unwrap()).await.unwrap();
        let got = kinds(store.changes_after(start, 100).await.unwrap());
        let want: Vec<(ChangeKind, String, String)> = [
            (ChangeKind::Device, "001565000001"),
            (ChangeKind::Device, "001565000001"),
            (ChangeKind::Group, "sales"),
            (ChangeKind::Global, ""),
            (ChangeKind::Access, "001565000001"),
            (ChangeKind::Device, "001565000001"),
        ]
        .into_iter()
        .map(|(k, key)| (k, key.to_string(), "node-a/1/x".to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(store.change_feed_head().await.unwrap(), start + 6);
        // Reading from the middle gives the rest, in order; from the head, nothing.
        assert_eq!(kinds(store.changes_after(start + 4, 100).await.unwrap()).len(), 2);
        assert!(kinds(store.changes_after(start + 6, 100).await.unwrap()).is_empty());
    }
}

#[tokio::test]
async fn a_refused_write_leaves_no_change_behind() {
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000001", None)]).await.unwrap();
        let head = store.change_feed_head().await.unwrap();
        assert!(store.insert_devices(&[device("001565000001", None)]).await.is_err());
        assert!(store.delete_device("001565000009".parse().unwrap()).await.is_err());
        assert_eq!(store.change_feed_head().await.unwrap(), head);
    }
}

#[tokio::test]
async fn the_feed_is_pruned_and_a_reader_left_behind_is_told_to_resync() {
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000001", None)]).await.unwrap();
        // A feed already full (written directly: ten thousand writes take minutes), then enough
        // writes to reach the next pruning.
        let sql = format!(
            "INSERT INTO change_feed (id, at, origin, kind, key) \
             WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             SELECT i, 0, 'old', 'global', '' FROM n",
            FEED_RETENTION + 150
        );
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(store.pool()).await.unwrap();
        let global = Settings::parse_assignments(["x=1"]).unwrap();
        for _ in 0..100 {
            store.patch_global_settings(&global).await.unwrap();
        }
        let head = store.change_feed_head().await.unwrap();
        assert!(head > FEED_RETENTION);
        let kept: i64 = {
            use sqlx::Row;
            sqlx::query("SELECT COUNT(*) AS n FROM change_feed").fetch_one(store.pool()).await.unwrap().get("n")
        };
        assert!(kept <= FEED_RETENTION + 100, "feed holds {kept} rows");
        assert_eq!(store.changes_after(0, 10).await.unwrap(), FeedRead::Gap { head });
        // A position past the head (a restored database) is a gap too.
        assert_eq!(store.changes_after(head + 5, 10).await.unwrap(), FeedRead::Gap { head });
        assert_eq!(kinds(store.changes_after(head - 3, 10).await.unwrap()).len(), 3);
    }
}

#[tokio::test]
async fn two_stores_on_one_database_never_share_an_event_id() {
    for (store, dir) in stores().await {
        // A second handle on the same database: another node (or, on SQLite, another process).
        let other = match &dir {
            Some(dir) => Store::open_sqlite(&dir.path().join("t.db")).await.unwrap(),
            None => Store::open(&database_url(&store).await).await.unwrap(),
        };
        store.insert_devices(&[device("001565000001", None)]).await.unwrap();
        let mac = "001565000001".parse().unwrap();
        let event = |i: i64| NewEvent { mac, at: i, kind: EventKind::Fetch, detail: serde_json::json!({ "i": i }) };
        let batch: Vec<NewEvent> = (0..20).map(event).collect();
        let (a, b) = (store.clone(), other.clone());
        let (batch_a, batch_b) = (batch.clone(), batch.clone());
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (s, events) = if i % 2 == 0 { (a.clone(), batch_a.clone()) } else { (b.clone(), batch_b.clone()) };
                tokio::spawn(async move { s.append_events(&events).await.unwrap() })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let events = store.device_events(mac, 1000).await.unwrap();
        assert_eq!(events.len(), 160, "every event of both writers is stored under its own id");
    }
}

#[tokio::test]
async fn heartbeats_list_the_nodes_and_refresh_in_place() {
    for (store, _dir) in stores().await {
        let node = |id: &str, name: &str| NodeHeartbeat {
            id: id.into(),
            name: name.into(),
            version: "0.1.0".into(),
            started_at: 10,
            http_addr: "127.0.0.1:1".into(),
            api_addr: "127.0.0.1:2".into(),
        };
        let now = sipprov_store::now_ms();
        store.write_heartbeat(&node("b/2/y", "b"), now).await.unwrap();
        store.write_heartbeat(&node("a/1/x", "a"), now).await.unwrap();
        store.write_heartbeat(&node("a/1/x", "a"), now + 5).await.unwrap();
        let nodes = store.cluster_nodes().await.unwrap();
        let seen: Vec<(&str, i64)> = nodes.iter().map(|n| (n.node.id.as_str(), n.heartbeat_at)).collect();
        assert_eq!(seen, vec![("a/1/x", now + 5), ("b/2/y", now)]);
        // A node silent for more than a day is forgotten at the next heartbeat of any node.
        store.write_heartbeat(&node("c/3/z", "c"), now - 2 * 24 * 3600 * 1000).await.unwrap();
        store.write_heartbeat(&node("a/1/x", "a"), now + 6).await.unwrap();
        assert_eq!(store.cluster_nodes().await.unwrap().len(), 2);
        store.remove_node("b/2/y").await.unwrap();
        assert_eq!(store.cluster_nodes().await.unwrap().len(), 1);
    }
}

/// The URL of a PostgreSQL store's database (the tests' helper made it; read it back).
async fn database_url(store: &Store) -> String {
    use sqlx::Row;
    let name: String =
        sqlx::query("SELECT current_database()::text AS d").fetch_one(store.pool()).await.unwrap().get("d");
    let base = std::env::var("SIPPROV_TEST_POSTGRES_URL").unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}
