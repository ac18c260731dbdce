//! The store against a real SQLite file (and PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set).

mod common;

use common::{device, stores};
use sipprov_model::{CampaignOutcome, CampaignState, CheckSyncResult, EventKind, Mac, Settings};
use sipprov_store::{DevicePatch, DeviceRecord, FetchInfo, NewEvent, StoreError, UploadOutcome};

#[tokio::test]
async fn insert_is_all_or_nothing() {
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000001", Some("sales"))]).await.unwrap();
        let err =
            store.insert_devices(&[device("001565000002", None), device("001565000001", None)]).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateDevice(ref m) if m == "001565000001"), "{err}");
        let all = store.list_devices().await.unwrap();
        assert_eq!(all.len(), 1, "the failed batch must leave nothing behind");
        assert_eq!(store.list_groups().await.unwrap()[0].name, "sales");
    }
}

#[tokio::test]
async fn unlocks_are_kept_latest_per_device_and_go_with_the_device() {
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000001", None), device("001565000002", None)]).await.unwrap();
        let (one, two): (Mac, Mac) = ("001565000001".parse().unwrap(), "001565000002".parse().unwrap());
        store.record_unlock(one, 1_000).await.unwrap();
        store.record_unlock(one, 5_000).await.unwrap();
        store.record_unlock(two, 2_000).await.unwrap();
        let mut recent = store.unlocks_since(1_500).await.unwrap();
        recent.sort();
        assert_eq!(recent, vec![(one, 5_000), (two, 2_000)]);
        assert_eq!(store.unlocks_since(3_000).await.unwrap(), vec![(one, 5_000)]);
        store.delete_device(one).await.unwrap();
        assert!(store.unlocks_since(0).await.unwrap().iter().all(|(mac, _)| *mac != one));
    }
}

#[tokio::test]
async fn patch_merges_settings_and_fields() {
    for (store, _dir) in stores().await {
        let mac: Mac = "001565000003".parse().unwrap();
        store.insert_devices(&[device("001565000003", None)]).await.unwrap();
        let patch = DevicePatch {
            group: Some(Some("g".into())),
            settings: Some(Settings::parse_assignments(["line.1.username=", "time.zone=UTC"]).unwrap()),
            ..Default::default()
        };
        let d = store.patch_device(mac, &patch).await.unwrap();
        assert_eq!(d.group.as_deref(), Some("g"));
        assert_eq!(d.settings.get("line.1.username"), None);
        assert_eq!(store.get_device(mac).await.unwrap().unwrap(), d);
        store.delete_device(mac).await.unwrap();
        assert!(matches!(store.delete_device(mac).await, Err(StoreError::DeviceNotFound(_))));
    }
}

#[tokio::test]
async fn fetches_and_events_are_recorded() {
    for (store, _dir) in stores().await {
        let mac: Mac = "001565000004".parse().unwrap();
        store.insert_devices(&[device("001565000004", None)]).await.unwrap();
        let fetch = FetchInfo {
            mac,
            at: 42,
            ip: "192.0.2.1".into(),
            file: "001565000004.cfg".into(),
            hash: "abc".into(),
            reported_model: Some("T46S".into()),
            reported_firmware: Some("66.86.0.15".into()),
        };
        store.record_fetches(std::slice::from_ref(&fetch)).await.unwrap();
        assert_eq!(store.get_device(mac).await.unwrap().unwrap().last_fetch.as_deref(), Some(&fetch));
        let ev = |n: i64| NewEvent { mac, at: n, kind: EventKind::Fetch, detail: serde_json::json!({ "n": n }) };
        store.append_events(&[ev(1), ev(2), ev(3)]).await.unwrap();
        let log = store.device_events(mac, 2).await.unwrap();
        assert_eq!(log.iter().map(|e| e.at).collect::<Vec<_>>(), vec![2, 3]);
    }
}

#[tokio::test]
async fn the_bulk_load_gives_every_device_as_the_ordered_listing_does() {
    for (store, _dir) in stores().await {
        let mut devices: Vec<_> = (0..300).map(|n| device(&format!("00156501{n:04x}"), None)).collect();
        devices[1].group = Some("sales".into());
        devices[2].contact = Some("sip:1001:secret@192.0.2.2:5060".into());
        devices[3].settings = sipprov_model::Settings::new();
        // Text the start-up scan gets through SQLite's JSON (quotes, a backslash, non-ASCII).
        devices[4].group = Some("Accueil \"é\" \\ 1".into());
        devices[4].contact = Some("sip:r\u{e9}ception@192.0.2.4;x=\"y\"".into());
        store.insert_devices(&devices).await.unwrap();
        let seen = |n: usize, model: Option<&str>| FetchInfo {
            mac: devices[n].mac,
            at: 40 + n as i64,
            ip: "2001:db8::1".into(),
            file: format!("{}.cfg", devices[n].mac),
            hash: "ab".repeat(32),
            reported_model: model.map(String::from),
            reported_firmware: Some("66.86.0.15".into()),
        };
        store.record_fetches(&[seen(0, Some("T46S")), seen(5, None)]).await.unwrap();
        let listed = store.list_devices().await.unwrap();
        let mut loaded = Vec::new();
        store.for_each_device_any_order(|d| loaded.push(d)).await.unwrap();
        loaded.sort_by_key(|d| d.mac);
        assert_eq!(loaded.len(), 300);
        assert_eq!(loaded, listed, "the same records through either path");
        assert_eq!(loaded[5].last_fetch.as_deref(), Some(&seen(5, None)));
        assert_eq!(loaded[1].group.as_deref(), Some("sales"));
        // Start-up's load: the same records without their last fetch, and the fetches apart.
        // A fetch recorded for a device removed just before (a last-seen row outliving its
        // device, if the store keeps one) is not loaded, as through the join.
        store.delete_device(devices[7].mac).await.unwrap();
        let _ = store.record_fetches(&[seen(7, None)]).await;
        let (mut records, mut fetches) = (Vec::new(), Vec::new());
        store.for_each_device_then_fetch(|d| records.push(d), |f| fetches.push(f)).await.unwrap();
        records.sort_by_key(|d| d.mac);
        fetches.sort_by_key(|f| f.mac);
        let expected: Vec<_> = listed
            .iter()
            .filter(|d| d.mac != devices[7].mac)
            .map(|d| DeviceRecord { last_fetch: None, ..d.clone() })
            .collect();
        assert_eq!(records, expected);
        assert_eq!(fetches, [seen(0, Some("T46S")), seen(5, None)]);
    }
}

#[tokio::test]
async fn global_and_group_settings_round_trip() {
    for (store, _dir) in stores().await {
        let s = store.patch_global_settings(&Settings::parse_assignments(["time.zone=UTC"]).unwrap()).await.unwrap();
        assert_eq!(s.get("time.zone"), Some("UTC"));
        assert_eq!(store.global_settings().await.unwrap(), s);
        let g = store.patch_group("g", &Settings::parse_assignments(["line.1.registrar=pbx"]).unwrap()).await.unwrap();
        assert_eq!(store.get_group("g").await.unwrap().unwrap().settings, g.settings);
    }
}

#[tokio::test]
async fn campaign_rows_counts_and_confirmation() {
    use sipprov_store::{NewCampaign, NotifyResult};
    for (store, _dir) in stores().await {
        let macs: Vec<Mac> =
            ["001565000011", "001565000012", "001565000013"].iter().map(|m| m.parse().unwrap()).collect();
        let new = NewCampaign {
            start_at: 0,
            reboot: false,
            rate: 10,
            max_in_flight: 5,
            confirm_window_ms: 1_000,
            selector: "--all".into(),
        };
        let c = store.create_campaign(&new, &macs).await.unwrap();
        assert_eq!(c.state, CampaignState::Running);
        store.mark_sending(c.id, &macs).await.unwrap();
        let ok = |mac: Mac| NotifyResult {
            result: CheckSyncResult::Ok,
            status: Some(200),
            reason: "OK".into(),
            expected_file: Some(format!("{mac}.cfg")),
            at: 100,
        };
        let timeout = NotifyResult {
            result: CheckSyncResult::Timeout,
            status: None,
            reason: "no answer".into(),
            expected_file: None,
            at: 100,
        };
        store
            .record_notify_results(c.id, &[(macs[0], ok(macs[0])), (macs[1], ok(macs[1])), (macs[2], timeout)])
            .await
            .unwrap();
        // Device 0 fetches its own config file after the NOTIFY; device 1 fetches another file.
        let fetch = |mac: Mac, file: String| FetchInfo {
            mac,
            at: 150,
            ip: "192.0.2.1".into(),
            file,
            hash: "h".into(),
            reported_model: None,
            reported_firmware: None,
        };
        store
            .record_fetches(&[fetch(macs[0], format!("{}.cfg", macs[0])), fetch(macs[1], "y000000000046.cfg".into())])
            .await
            .unwrap();
        assert_eq!(store.confirm_fetched(c.id, 0, i64::MAX).await.unwrap(), vec![(macs[0], 150)]);
        assert!(store.confirm_fetched(c.id, 0, i64::MAX).await.unwrap().is_empty(), "confirmed once");
        let during = store.campaign_counts(c.id, 1_000, 500).await.unwrap();
        assert_eq!(during.devices, 3);
        assert_eq!(during.counts.get(&CampaignOutcome::Confirmed), Some(&1));
        assert_eq!(during.counts.get(&CampaignOutcome::AwaitingConfirmation), Some(&1));
        assert_eq!(during.counts.get(&CampaignOutcome::Timeout), Some(&1));
        let after = store.campaign_counts(c.id, 1_000, 5_000).await.unwrap();
        assert_eq!(after.counts.get(&CampaignOutcome::NotConfirmed), Some(&1));
        let failing = store.campaign_failing(c.id, 1_000, 5_000, 10).await.unwrap();
        assert_eq!(failing.iter().map(|d| d.mac).collect::<Vec<_>>(), vec![macs[1], macs[2]]);
        store.set_campaign_state(c.id, CampaignState::Done).await.unwrap();
        assert_eq!(store.retry_campaign_audited(c.id, 5_000, None).await.unwrap(), 2);
        assert_eq!(store.campaign_unsent(c.id).await.unwrap(), vec![macs[1], macs[2]]);
        assert_eq!(store.get_campaign(c.id).await.unwrap().unwrap().state, CampaignState::Running);
    }
}

/// A directory holding `old-migrations`, the migrations numbered below `before` (a database
/// written by an older sipprov has only those), and the databases to try them on: a SQLite file
/// there, and a fresh PostgreSQL database when SIPPROV_TEST_POSTGRES_URL is set.
async fn databases_before(before: &str) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display())];
    if let Ok(url) = std::env::var("SIPPROV_TEST_POSTGRES_URL") {
        urls.push(common::fresh_postgres_database(&url).await);
    }
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let current = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&current).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.as_str() < before {
            std::fs::copy(current.join(&name), old.join(&name)).unwrap();
        }
    }
    sqlx::any::install_default_drivers();
    (dir, urls)
}

#[tokio::test]
async fn the_confirm_by_file_migration_keeps_existing_campaign_rows() {
    // The migrations before 0004, as a database written by an older sipprov has them.
    let (dir, urls) = databases_before("0004").await;
    let old = dir.path().join("old-migrations");
    for url in urls {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
        sqlx::query(
            "INSERT INTO campaign_devices (campaign_id, mac, state, attempts, expected_hash, notified_at) \
             VALUES (1, '001565000001', 'notified', 1, 'abc', 100)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let store = sipprov_store::Store::open(&url).await.unwrap();
        let d = &store.campaign_devices(1).await.unwrap()[0];
        assert_eq!(
            (d.expected_file.as_deref(), d.fetched_hash.as_deref(), d.notified_at),
            (Some("abc"), None, Some(100))
        );
    }
}

/// The summary's read of recent refusals gets refusals only, newest first, bounded, through
/// the partial index that holds nothing else (no other event pays for an entry in it).
#[tokio::test]
async fn recent_refusals_are_read_through_their_own_index() {
    for (store, _dir) in stores().await {
        let mac: Mac = "001565000001".parse().unwrap();
        let event = |at: i64, kind: EventKind| NewEvent { mac, at, kind, detail: serde_json::json!({ "at": at }) };
        let events: Vec<NewEvent> =
            (0..10).map(|n| event(n * 100, if n % 2 == 0 { EventKind::Refused } else { EventKind::Notify })).collect();
        store.append_events(&events).await.unwrap();
        let read = store.refusal_details_since(300, 2).await.unwrap();
        assert_eq!(read, vec![serde_json::json!({ "at": 800 }), serde_json::json!({ "at": 600 })]);
        assert_eq!(store.refusal_details_since(300, 10).await.unwrap().len(), 3);
        if store.backend() == sipprov_store::Backend::Sqlite {
            use sqlx::Row;
            let plan = sqlx::query(
                "EXPLAIN QUERY PLAN SELECT detail FROM device_events WHERE kind = 'refused' AND at >= 0 \
                 ORDER BY at DESC LIMIT 5",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            let plan: Vec<String> = plan.iter().map(|r| r.try_get("detail").unwrap()).collect();
            assert!(plan.iter().any(|step| step.contains("device_events_refused_at")), "{plan:?}");
        }
    }
}

/// A campaign written before selections were kept with the chunks (a `pending` row per device)
/// reads the same after migration 0028: its size, counts, unsent devices and rows; only the
/// rows of devices never sent to are gone, and each chunk holds its MACs.
#[tokio::test]
async fn the_selection_migration_keeps_existing_campaigns() {
    // Every migration before 0028, as a database written by the previous sipprov has them.
    let (dir, urls) = databases_before("0028").await;
    let old = dir.path().join("old-migrations");
    let macs: Vec<Mac> = (1..=5).map(|n| format!("0015650000{n:02x}").parse().unwrap()).collect();
    sqlx::any::install_default_drivers();
    for url in urls {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
        let statements = [
            "INSERT INTO campaigns (id, created_at, start_at, state, reboot, rate, max_in_flight, \
             confirm_window_ms, selector) VALUES (1, 0, 0, 'running', 0, 10, 5, 1000, '--all')",
            // Two chunks: the first two devices, and the last three.
            "INSERT INTO campaign_chunks (campaign_id, chunk, first_mac, last_mac, sent, holder, lease_until) \
             VALUES (1, 0, '001565000001', '001565000002', 0, NULL, 0), \
             (1, 1, '001565000003', '001565000005', 0, NULL, 0)",
            // Never sent; marked sending; notified; failed; failed and then put back by a retry.
            "INSERT INTO campaign_devices (campaign_id, mac, state, attempts, result, status, reason, \
             expected_file, notified_at) VALUES \
             (1, '001565000001', 'pending', 0, NULL, NULL, NULL, NULL, NULL), \
             (1, '001565000002', 'sending', 1, NULL, NULL, NULL, NULL, NULL), \
             (1, '001565000003', 'notified', 1, 'ok', 200, 'OK', '001565000003.cfg', 100), \
             (1, '001565000004', 'failed', 1, 'timeout', NULL, 'no answer', NULL, 100), \
             (1, '001565000005', 'pending', 1, 'timeout', NULL, 'no answer', NULL, 100)",
        ];
        for sql in statements {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = sipprov_store::Store::open(&url).await.unwrap();
        let counts = store.campaign_counts(1, 1_000, 500).await.unwrap();
        assert_eq!(counts.devices, 5);
        let expected = [
            (CampaignOutcome::Pending, 2),
            (CampaignOutcome::Sending, 1),
            (CampaignOutcome::AwaitingConfirmation, 1),
            (CampaignOutcome::Timeout, 1),
        ];
        assert_eq!(counts.counts, expected.into_iter().collect());
        assert_eq!(store.campaign_unsent(1).await.unwrap(), vec![macs[0], macs[1], macs[4]]);
        let chunk = |n: i64, first: &str, last: &str| sipprov_store::CampaignChunk {
            campaign_id: 1,
            chunk: n,
            first_mac: first.into(),
            last_mac: last.into(),
        };
        let first = chunk(0, "001565000001", "001565000002");
        assert_eq!(store.campaign_chunk_unsent(&first).await.unwrap(), vec![macs[0], macs[1]]);
        let second = chunk(1, "001565000003", "001565000005");
        assert_eq!(store.campaign_chunk_unsent(&second).await.unwrap(), vec![macs[4]]);
        let rows = store.campaign_devices(1).await.unwrap();
        let seen: Vec<_> = rows.iter().map(|d| (d.mac, d.state.as_str(), d.attempts)).collect();
        assert_eq!(
            seen,
            vec![
                (macs[0], "pending", 0),
                (macs[1], "sending", 1),
                (macs[2], "notified", 1),
                (macs[3], "failed", 1),
                (macs[4], "pending", 1)
            ]
        );
        assert_eq!(rows[4].reason.as_deref(), Some("no answer"), "a retried device keeps its last outcome");
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaign_devices WHERE campaign_id = 1")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(stored, 4, "only the row of the device never sent to is gone");
    }
}

/// The database holds every password of the fleet: its file and SQLite's `-wal` and `-shm` are
/// created readable by the owner only, whatever the umask; and a device's `Debug` shows none.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sipprov.db");
    let store = sipprov_store::Store::open_sqlite(&path).await.unwrap();
    let mut new = common::device("001565000001", None);
    new.contact = Some("sip:1001:C0ntact-Pw@192.0.2.10".into());
    new.settings = Settings::parse_assignments(["line.1.password=L1ne-Pw", "vendor.P2=Adm1n-Pw"]).unwrap();
    store.insert_devices(std::slice::from_ref(&new)).await.unwrap();
    let stored = store.get_device(new.mac).await.unwrap().unwrap();
    let shown = format!("{new:?} {stored:?}");
    for secret in ["C0ntact-Pw", "L1ne-Pw", "Adm1n-Pw"] {
        assert!(!shown.contains(secret), "Debug shows {secret}: {shown}");
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("sipprov.db{suffix}"));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
    }
}

#[tokio::test]
async fn a_first_fetch_window_is_claimed_once_and_credentials_are_kept() {
    use sipprov_store::{FirstFetchClaim, GeneratedCredentials};
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000001", None)]).await.unwrap();
        let mac: Mac = "001565000001".parse().unwrap();
        let creds = GeneratedCredentials { username: "u1".into(), password: "p1".into() };
        let first = store.claim_first_fetch(mac, 1_000, 2_000, Some(&creds)).await.unwrap();
        assert_eq!(first, FirstFetchClaim::Claimed(Some(creds.clone())));
        assert_eq!(store.claim_first_fetch(mac, 1_000, 2_500, None).await.unwrap(), FirstFetchClaim::AlreadyUsed);
        // An unlock re-opens the window; the credentials stored first are kept, not replaced.
        let other = GeneratedCredentials { username: "u2".into(), password: "p2".into() };
        let again = store.claim_first_fetch(mac, 3_000, 3_500, Some(&other)).await.unwrap();
        assert_eq!(again, FirstFetchClaim::Claimed(Some(creds.clone())));
        assert_eq!(store.first_fetches_since(3_000).await.unwrap(), vec![(mac, 3_500)]);
        assert_eq!(store.generated_credentials().await.unwrap(), vec![(mac, creds)]);
        assert!(!format!("{:?}", store.generated_credentials().await.unwrap()).contains("p1"));
        store.delete_device(mac).await.unwrap();
        assert!(store.generated_credentials().await.unwrap().is_empty());
        assert!(store.first_fetches_since(0).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn concurrent_claims_of_one_window_give_it_to_exactly_one() {
    use sipprov_store::FirstFetchClaim;
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000002", None)]).await.unwrap();
        let mac: Mac = "001565000002".parse().unwrap();
        let claims = (0..8).map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_first_fetch(mac, 1_000, 2_000 + i, None).await.unwrap() })
        });
        let mut won = 0;
        for c in claims {
            if matches!(c.await.unwrap(), FirstFetchClaim::Claimed(_)) {
                won += 1;
            }
        }
        assert_eq!(won, 1);
    }
}

#[tokio::test]
async fn uploads_keep_the_latest_per_name_within_a_device_total_and_go_with_the_device() {
    for (store, _dir) in stores().await {
        store.insert_devices(&[device("001565000001", None)]).await.unwrap();
        let mac: Mac = "001565000001".parse().unwrap();
        let binary = [0u8, 159, 146, 150, 255];
        let created = UploadOutcome::Stored { created: true };
        assert_eq!(store.put_upload(mac, "a.log", &binary, "h1", 1_000, 10).await.unwrap(), created);
        assert_eq!(store.put_upload(mac, "b.cfg", b"old", "h2", 2_000, 10).await.unwrap(), created);
        let replaced = store.put_upload(mac, "b.cfg", b"new!", "h3", 3_000, 10).await.unwrap();
        assert_eq!(replaced, UploadOutcome::Stored { created: false }, "a replacement counts once");
        let over = store.put_upload(mac, "c.cfg", b"xx", "h4", 4_000, 10).await.unwrap();
        assert_eq!(over, UploadOutcome::OverQuota, "5 + 4 + 2 > 10");
        let list = store.uploads(mac).await.unwrap();
        let got: Vec<_> = list.iter().map(|u| (u.name.as_str(), u.size, u.received_at, u.sha256.as_str())).collect();
        assert_eq!(got, [("a.log", 5, 1_000, "h1"), ("b.cfg", 4, 3_000, "h3")]);
        assert_eq!(store.upload_content(mac, "a.log").await.unwrap().unwrap(), binary, "bytes kept exactly");
        assert_eq!(store.upload_content(mac, "c.cfg").await.unwrap(), None);
        store.delete_device(mac).await.unwrap();
        assert!(store.uploads(mac).await.unwrap().is_empty());
    }
}

/// States, results and event kinds are stored by their stable names; a name the code does not
/// know (a hand-edited database, a newer version's word) is reported as corrupt data naming it.
#[tokio::test]
async fn stored_names_round_trip_and_an_unknown_one_is_corrupt() {
    for (store, _dir) in stores().await {
        let mac: Mac = "001565000001".parse().unwrap();
        let kinds = EventKind::ALL.iter().enumerate();
        let events: Vec<_> =
            kinds.map(|(n, kind)| NewEvent { mac, at: n as i64, kind: *kind, detail: serde_json::json!({}) }).collect();
        store.append_events(&events).await.unwrap();
        let back: Vec<_> = store.device_events(mac, 100).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(back, EventKind::ALL);
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT kind FROM device_events ORDER BY id").fetch_all(store.pool()).await.unwrap();
        assert_eq!(stored, EventKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>());

        sqlx::query("UPDATE device_events SET kind = 'teleported' WHERE at = 0").execute(store.pool()).await.unwrap();
        let err = store.device_events(mac, 100).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("\"teleported\"")), "{err}");

        sqlx::query(
            "INSERT INTO campaigns (id, created_at, start_at, state, reboot, rate, max_in_flight, \
             confirm_window_ms, selector) VALUES (7, 0, 0, 'paused', 0, 1, 1, 1000, '--all')",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let err = store.get_campaign(7).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(ref m) if m.contains("campaign state \"paused\"")), "{err}");
    }
}

#[tokio::test]
async fn users_are_added_once_changed_and_removed() {
    for (store, _dir) in stores().await {
        let alice = sipprov_store::UserRecord {
            name: "alice".into(),
            role: "admin".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            created_at: 1_000,
        };
        let entry = |action: &str, name: &str| sipprov_store::NewAudit {
            actor: "root".into(),
            action: action.into(),
            target_kind: "user".into(),
            target: name.into(),
            detail: serde_json::json!({}),
        };
        assert!(store.add_user(&alice, &entry("user.add", "alice")).await.unwrap());
        assert!(!store.add_user(&alice, &entry("user.add", "alice")).await.unwrap(), "a taken name is refused");
        assert_eq!(store.user("alice").await.unwrap().as_ref(), Some(&alice));
        assert!(!format!("{alice:?}").contains("argon2"), "Debug leaves the hash out");
        assert!(store.set_user_password("alice", "$argon2id$new", &entry("user.password", "alice")).await.unwrap());
        assert!(!store.set_user_password("bob", "$argon2id$new", &entry("user.password", "bob")).await.unwrap());
        assert_eq!(store.users().await.unwrap()[0].password_hash, "$argon2id$new");
        assert!(store.delete_user("alice", &entry("user.remove", "alice")).await.unwrap());
        assert!(!store.delete_user("alice", &entry("user.remove", "alice")).await.unwrap());
        // Exactly the changes that happened are in the trail, each written with its change.
        let query = sipprov_store::AuditQuery { limit: 100, ..sipprov_store::AuditQuery::default() };
        let trail: Vec<(String, String)> =
            store.list_audit(&query).await.unwrap().into_iter().map(|e| (e.action, e.target)).collect();
        let expected = [("user.remove", "alice"), ("user.password", "alice"), ("user.add", "alice")];
        assert_eq!(trail, expected.map(|(a, t)| (a.to_string(), t.to_string())), "newest first, no refused change");
        assert!(store.user("alice").await.unwrap().is_none());
    }
}
