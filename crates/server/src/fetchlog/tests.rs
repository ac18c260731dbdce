//! The fetch log's batching and merging, without a store; helpers shared with the `ledger`
//! and `open` modules' tests.

use super::*;

/// Content as the render cache hands it out (also used by the `ledger` module's tests).
pub(super) fn content(file: &str, hash: &str) -> Arc<ContentId> {
    crate::cache::Served::new(file.into(), b"x".to_vec(), "text/plain", hash.into(), 0).id
}

/// A fetch of `served` by device `mac` (its last byte) at `at`.
pub(super) fn fetch_of(mac: u8, at: i64, served: &Arc<ContentId>, model: Option<&str>) -> Fetch {
    Fetch {
        mac: format!("0015650000{mac:02x}").parse().unwrap(),
        at,
        ip: "192.0.2.1".parse().unwrap(),
        content: served.clone(),
        file: None,
        status: 200,
        auth: "open",
        model: model.map(|m| m.to_string().into()),
        firmware: None,
    }
}

fn fetch(mac: u8, at: i64, served: &Arc<ContentId>, model: Option<&str>) -> Record {
    Record::Fetch(fetch_of(mac, at, served, model))
}

#[test]
fn a_burst_is_one_event_with_its_count_and_first_and_last_time() {
    let served = content("a.cfg", "h1");
    let mut batch = Batch::default();
    for at in [10, 11, 15, 12] {
        batch.add(fetch(1, at, &served, Some("T46S")));
    }
    assert_eq!(batch.entries(), 1);
    let Pending::Fetch(merged) = &batch.events[0] else { panic!("a fetch") };
    let event = merged.event();
    assert_eq!((event.at, &event.detail["count"], &event.detail["last_at"]), (10, &4.into(), &15.into()));
    assert!(!batch.has_others());
    // Another content (or status, source, authentication) is another event.
    batch.add(fetch(1, 20, &content("a.cfg", "h2"), None));
    assert_eq!(batch.entries(), 2);
}

#[test]
fn another_reported_model_starts_an_event_and_is_no_other_record() {
    let served = content("a.cfg", "h1");
    let mut batch = Batch::default();
    for (at, model) in [(10, "T46S"), (11, "T46S"), (12, "T48S"), (13, "T48S"), (14, "T46S")] {
        batch.add(fetch(1, at, &served, Some(model)));
    }
    let models: Vec<_> = batch
        .events
        .iter()
        .map(|p| match p {
            Pending::Fetch(c) => (c.event().detail["model"].clone(), c.count),
            Pending::Event(_) => panic!("fetches only"),
        })
        .collect();
    assert_eq!(models, vec![("T46S".into(), 2), ("T48S".into(), 2), ("T46S".into(), 1)]);
    // Fetches alone wait for the interval, however many events they make.
    assert!(!batch.has_others());
}

#[test]
fn last_seen_rows_are_the_latest_fetch_per_device_and_file_with_the_latest_report() {
    let (old, new, other) = (content("a.cfg", "old"), content("a.cfg", "new"), content("b.cfg", "b"));
    let mut batch = Batch::default();
    batch.add(fetch(1, 10, &old, Some("T46S")));
    batch.add(fetch(1, 30, &new, None));
    batch.add(fetch(1, 20, &other, Some("T48S")));
    batch.add(fetch(2, 5, &other, None));
    let rows = batch.last_fetches();
    let shown: Vec<_> = rows.iter().map(|r| (r.mac.to_string(), r.file, r.hash, r.at, r.model)).collect();
    // Oldest first; device 1's latest row carries the model it reported last (at 20).
    assert_eq!(
        shown,
        vec![
            ("001565000002".to_string(), "b.cfg", "b", 5, None),
            ("001565000001".to_string(), "b.cfg", "b", 20, None),
            ("001565000001".to_string(), "a.cfg", "new", 30, Some("T48S")),
        ]
    );
}

#[test]
fn the_cache_decodes_a_hash_as_the_last_seen_index_does() {
    let hex = "0123456789abcdef".repeat(4);
    for hash in
        [hex.clone(), hex.to_uppercase(), hex[..63].to_string(), format!("{}g", &hex[..63]), "h".into(), String::new()]
    {
        assert_eq!(content("a.cfg", &hash).digest, sipprov_model::sha256_of_hex(&hash), "{hash}");
    }
}

/// On SQLite, a few content change times are written within 250 ms; a storm of them (more than
/// a take may bring promptly) waits for the last-seen write, and so do the change times that
/// come while some wait, older ones first: none is written after a later one of its file.
#[tokio::test]
async fn change_times_in_a_storm_wait_for_the_last_seen_write() {
    use writer::PROMPT_CHANGE_TIMES_MAX;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let (mut w, ledger) = sqlite_writer(&store, Duration::from_secs(60));
    let state = |n: usize, hash: &str| RenderedState {
        mac: format!("001565{n:06x}").parse().unwrap(),
        file: "a.cfg".into(),
        hash: hash.into(),
        changed_at: 1_000 + n as i64,
    };
    let waiting = |w: &Writer| w.deferred.as_ref().map_or(0, UnsavedSeen::rendered_len);

    ledger.note_rendered(state(1, "first")).unwrap();
    w.take_ledger();
    assert_eq!((w.pending.rendered.len(), waiting(&w)), (1, 0), "one change time is prompt");

    for n in 0..=PROMPT_CHANGE_TIMES_MAX {
        ledger.note_rendered(state(n, "storm")).unwrap();
    }
    w.take_ledger();
    assert_eq!(w.pending.rendered.len(), 0, "the prompt one joined the storm's, which is older");
    assert_eq!(waiting(&w), PROMPT_CHANGE_TIMES_MAX + 1);
    ledger.note_rendered(state(100_000, "late")).unwrap();
    w.take_ledger();
    assert_eq!((w.pending.rendered.len(), waiting(&w)), (0, PROMPT_CHANGE_TIMES_MAX + 2), "while some wait");

    // Not due yet (600 s, few rows): nothing written; the writer's end writes them.
    w.write().await;
    assert!(store.rendered_states().await.unwrap().is_empty());
    w.pending.closing = true;
    w.write().await;
    let stored = store.rendered_states().await.unwrap();
    assert_eq!(stored.len(), PROMPT_CHANGE_TIMES_MAX + 2);
    let one = stored.iter().find(|s| s.mac == state(1, "").mac).unwrap();
    assert_eq!(one.hash, "storm", "the later state of device 1's file won");
    assert_eq!(waiting(&w), 0);
}

/// On SQLite, the rows gathered for the last-seen write of thousands of devices all land, in a
/// transaction of their own after the events.
#[tokio::test]
async fn many_devices_rows_are_written_after_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let (mut w, ledger) = sqlite_writer(&store, Duration::ZERO);
    let served = content("a.cfg", "h1");
    let macs = spread_macs(0..2 * 2_048 + 5);
    insert_devices(&store, &macs).await;
    take_fetches(&ledger, &macs, 1_000, &served);
    w.take_ledger();
    w.pending.closing = true;
    w.write().await;
    assert_eq!(store.fetched_since(0).await.unwrap().len(), macs.len());
    let seen = store.list_devices().await.unwrap().iter().filter(|d| d.last_fetch.is_some()).count();
    assert_eq!(seen, macs.len());
}

/// A fleet that repeats itself within the merge window lets the batch wait for its interval up
/// to twice the ledger's batch; one whose fetches are new events is written at the batch, as
/// its memory wants, and after a write of mostly new events the bound is the batch again.
#[tokio::test]
async fn the_batch_waits_longer_while_writes_only_extend_stored_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let (mut w, ledger) = sqlite_writer(&store, Duration::from_secs(60));
    let served = content("a.cfg", "h1");
    let polling = spread_macs(0..10);
    let newcomers = spread_macs(10..40);
    insert_devices(&store, &[polling.clone(), newcomers.clone()].concat()).await;
    assert_eq!(w.pending.early_write_at(), BATCH, "nothing written yet");
    // Within the merge window of the writer's clock, as a polling fleet's fetches are, and
    // after the devices were added (an event older than its device is never extended).
    let t0 = sipprov_store::now_ms() + 1_000;
    for (round, at) in [(0, t0), (1, t0 + 1_000), (2, t0 + 2_000)] {
        take_fetches(&ledger, &polling, at, &served);
        w.take_ledger();
        w.write().await;
        let expected = if round == 0 { BATCH } else { WRITE_EARLY_AT };
        assert_eq!(w.pending.early_write_at(), expected, "after write {round}");
    }
    // Ten repeats and thirty first fetches: mostly new events.
    take_fetches(&ledger, &[polling.clone(), newcomers].concat(), t0 + 3_000, &served);
    w.take_ledger();
    w.write().await;
    assert_eq!(w.pending.early_write_at(), BATCH);
    for (n, &mac) in polling.iter().enumerate() {
        let events = store.device_events(mac, 10).await.unwrap();
        let counts: Vec<_> = events.iter().map(|e| e.detail["count"].clone()).collect();
        assert_eq!(counts, vec![serde_json::json!(4)], "device {n}: one event, extended three times");
    }
}

/// MACs of the vendor's range spread over its 24 bits, as a fleet's are.
fn spread_macs(numbers: std::ops::Range<usize>) -> Vec<Mac> {
    numbers.map(|n| format!("001565{:06x}", n * 7_919 % (1 << 24)).parse().unwrap()).collect()
}

/// Adds Yealink T46S devices under these MACs to the inventory.
async fn insert_devices(store: &Store, macs: &[Mac]) {
    let devices: Vec<sipprov_store::NewDevice> = macs
        .iter()
        .map(|&mac| sipprov_store::NewDevice {
            mac,
            vendor: "yealink".into(),
            model: "T46S".into(),
            group: None,
            contact: None,
            settings: sipprov_model::Settings::default(),
        })
        .collect();
    store.insert_devices(&devices).await.unwrap();
}

/// One fetch of `served` by each device, from `at` on, into the ledger.
fn take_fetches(ledger: &Ledger, macs: &[Mac], at: i64, served: &Arc<ContentId>) {
    for (n, &mac) in macs.iter().enumerate() {
        let mut fetch = fetch_of(0, at + n as i64, served, None);
        fetch.mac = mac;
        ledger.take(fetch).map_err(|_| ()).unwrap();
    }
}

/// A writer on `store` (SQLite) whose last-seen rows wait 600 s (they go on a flush or at its
/// end), with events kept open `merge_window`, and the ledger it takes.
fn sqlite_writer(store: &Store, merge_window: Duration) -> (Writer, Arc<Ledger>) {
    let ledger = Arc::new(Ledger::new(BATCH));
    let w = Writer {
        store: store.clone(),
        metrics: Arc::new(Metrics::default()),
        max_pending: 100_000,
        ledger: ledger.clone(),
        pending: Batch::default(),
        outage: None,
        deferred: Some(UnsavedSeen::new(Duration::from_secs(600), OpenEvents::new(merge_window))),
    };
    (w, ledger)
}
