//! Batch writes as multi-row statements: batches larger than one statement, NULL columns,
//! duplicate keys in one batch, duplicate MACs on import, and confirmation by file.
//! On SQLite, and on PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set.

mod common;

use common::{device, stores};
use sipprov_model::{CampaignDeviceState, CampaignOutcome, CheckSyncResult, EventKind, Mac};
use sipprov_store::{
    EventText, FetchInfo, NewCampaign, NewDevice, NewEvent, NotifyResult, RenderedState, Store, StoreError,
};

/// More rows than any one statement takes (at most 4,000 parameters each).
const MANY: u32 = 5_000;

fn mac(n: u32) -> Mac {
    format!("001565{n:06x}").parse().unwrap()
}

fn macs(count: u32) -> Vec<Mac> {
    (0..count).map(mac).collect()
}

fn fetch(mac: Mac, file: &str, hash: &str, at: i64) -> FetchInfo {
    FetchInfo {
        mac,
        at,
        ip: "192.0.2.1".into(),
        file: file.into(),
        hash: hash.into(),
        reported_model: None,
        reported_firmware: None,
    }
}

fn notified(file: Option<String>, at: i64) -> NotifyResult {
    NotifyResult { result: CheckSyncResult::Ok, status: Some(200), reason: "OK".into(), expected_file: file, at }
}

fn timed_out(at: i64) -> NotifyResult {
    NotifyResult { result: CheckSyncResult::Timeout, status: None, reason: "no answer".into(), expected_file: None, at }
}

async fn campaign(store: &Store, macs: &[Mac]) -> i64 {
    let new = NewCampaign {
        start_at: 0,
        reboot: false,
        rate: 10,
        max_in_flight: 5,
        confirm_window_ms: 1_000,
        selector: "--all".into(),
    };
    store.create_campaign(&new, macs).await.unwrap().id
}

#[tokio::test]
async fn campaign_writes_span_several_statements() {
    for (store, _dir) in stores().await {
        let all = macs(MANY);
        let id = campaign(&store, &all).await;
        assert_eq!(store.campaign_unsent(id).await.unwrap(), all);
        store.mark_sending(id, &all).await.unwrap();
        store.mark_sending(id, &all[..10]).await.unwrap();
        // Even devices answer 200, odd ones time out (NULL status and file); the first device
        // appears twice and its later outcome wins.
        let mut results: Vec<(Mac, NotifyResult)> = all
            .iter()
            .enumerate()
            .map(|(i, m)| (*m, if i % 2 == 0 { notified(Some(format!("{m}.cfg")), 100) } else { timed_out(100) }))
            .collect();
        results.push((all[0], timed_out(200)));
        store.record_notify_results(id, &results).await.unwrap();
        let rows = store.campaign_devices(id).await.unwrap();
        assert_eq!(rows.len(), MANY as usize);
        for (i, d) in rows.iter().enumerate() {
            assert_eq!(d.mac, all[i]);
            assert_eq!(d.attempts, if i < 10 { 2 } else { 1 }, "{d:?}");
            let ok = i % 2 == 0 && i > 0;
            assert_eq!(d.state, if ok { CampaignDeviceState::Notified } else { CampaignDeviceState::Failed }, "{d:?}");
            assert_eq!(d.status, ok.then_some(200), "{d:?}");
            assert_eq!(d.expected_file, ok.then(|| format!("{}.cfg", d.mac)), "{d:?}");
            assert_eq!(d.notified_at, Some(if i == 0 { 200 } else { 100 }));
        }
        let counts = store.campaign_counts(id, 1_000, 500).await.unwrap();
        assert_eq!(counts.counts.get(&CampaignOutcome::Timeout), Some(&(i64::from(MANY) / 2 + 1)));
    }
}

/// A campaign keeps its selection with its chunks: creating it writes no row per device (they
/// count as pending), and a device's outcome writes its row once.
#[tokio::test]
async fn a_device_gets_its_row_with_its_outcome() {
    for (store, _dir) in stores().await {
        let all = macs(MANY);
        let id = campaign(&store, &all).await;
        let rows = |store: &Store| {
            let pool = store.pool().clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM campaign_devices WHERE campaign_id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(rows(&store).await, 0, "no row per device at creation");
        let counts = store.campaign_counts(id, 1_000, 0).await.unwrap();
        assert_eq!((counts.devices, counts.counts.get(&CampaignOutcome::Pending)), (i64::from(MANY), Some(&5_000)));
        let done: Vec<_> = all[..100].iter().map(|m| (*m, timed_out(100))).collect();
        store.record_notify_results(id, &done).await.unwrap();
        assert_eq!(rows(&store).await, 100);
        let counts = store.campaign_counts(id, 1_000, 0).await.unwrap();
        assert_eq!(counts.devices, i64::from(MANY));
        assert_eq!(counts.counts.get(&CampaignOutcome::Pending), Some(&(i64::from(MANY) - 100)));
        assert_eq!(counts.counts.get(&CampaignOutcome::Timeout), Some(&100));
        assert_eq!(store.campaign_unsent(id).await.unwrap(), all[100..].to_vec());
        // The same device listed twice in a selection is one device.
        let twice = campaign(&store, &[all[1], all[0], all[1]]).await;
        assert_eq!(store.campaign_counts(twice, 1_000, 0).await.unwrap().devices, 2);
        assert_eq!(store.campaign_unsent(twice).await.unwrap(), all[..2].to_vec());
    }
}

/// The report's `last_outcome_at`: none before any outcome; then the time the transaction that
/// wrote the latest batch took, by either writer, never before an outcome's own time (a clock
/// stepped back) and never moved back by a later batch.
#[tokio::test]
async fn the_last_outcome_time_is_written_with_the_outcomes() {
    for (store, _dir) in stores().await {
        let all = macs(600);
        let id = campaign(&store, &all).await;
        let last = |store: &Store| {
            let store = store.clone();
            async move { store.campaign_counts(id, 1_000, 0).await.unwrap() }
        };
        assert_eq!(last(&store).await.last_outcome_at, None, "no outcome yet");
        store.mark_sending(id, &all).await.unwrap();
        assert_eq!(last(&store).await.last_outcome_at, None, "marked sending, no outcome yet");
        let started = sipprov_store::now_ms();
        let first: Vec<_> = all[..300].iter().map(|m| (*m, notified(Some(own(*m)), started))).collect();
        store.record_notify_results(id, &first).await.unwrap();
        let ended = sipprov_store::now_ms();
        let counts = last(&store).await;
        let at = counts.last_outcome_at.expect("recorded with the first batch");
        assert!((started..=ended).contains(&at), "{started} <= {at} <= {ended}");
        assert!(Some(at) >= counts.last_notified_at);
        // The rest through the campaign writer's path, with their events, one of them with a
        // time ahead of the clock: every outcome in, the time is not before the latest NOTIFY.
        let ahead = sipprov_store::now_ms() + 3_600_000;
        let rest: Vec<_> = all[300..]
            .iter()
            .enumerate()
            .map(|(i, m)| (*m, if i == 7 { notified(Some(own(*m)), ahead) } else { timed_out(ended) }))
            .collect();
        let events: Vec<EventText> = rest
            .iter()
            .map(|(m, r)| EventText { mac: *m, at: r.at, kind: EventKind::Notify, detail: "{}".into() })
            .collect();
        store.record_notify_results_with_events(id, &rest, &events).await.unwrap();
        let counts = last(&store).await;
        assert_eq!(counts.counts.get(&CampaignOutcome::Pending), None, "{counts:?}");
        assert_eq!(counts.counts.get(&CampaignOutcome::Sending), None, "{counts:?}");
        assert_eq!(counts.last_notified_at, Some(ahead));
        assert_eq!(counts.last_outcome_at, Some(ahead), "not before the latest NOTIFY");
        // A later batch recorded at an earlier time leaves it where it is.
        store.record_notify_results(id, &[(all[0], timed_out(ended))]).await.unwrap();
        assert_eq!(last(&store).await.last_outcome_at, Some(ahead));
        // Another campaign's outcomes are not this one's.
        let other = campaign(&store, &all[..1]).await;
        assert_eq!(store.campaign_counts(other, 1_000, 0).await.unwrap().last_outcome_at, None);
    }
}

#[tokio::test]
async fn a_batch_of_only_null_statuses_is_recorded() {
    for (store, _dir) in stores().await {
        let all = macs(3);
        let id = campaign(&store, &all).await;
        store.mark_sending(id, &all).await.unwrap();
        // The first device twice in one statement: the later outcome wins.
        let mut results: Vec<_> = all.iter().map(|m| (*m, timed_out(100))).collect();
        results.push((all[0], timed_out(150)));
        store.record_notify_results(id, &results).await.unwrap();
        let rows = store.campaign_devices(id).await.unwrap();
        assert!(rows
            .iter()
            .all(|d| d.state == CampaignDeviceState::Failed && d.status.is_none() && d.expected_file.is_none()));
        assert!(rows.iter().all(|d| d.result == Some(CheckSyncResult::Timeout)));
        assert_eq!(rows.iter().map(|d| d.notified_at).collect::<Vec<_>>(), vec![Some(150), Some(100), Some(100)]);
    }
}

/// The name of a device's own config file in these tests.
fn own(mac: Mac) -> String {
    format!("{mac}.cfg")
}

/// A campaign over `macs` in which every device was notified at 100 ms and must fetch `own`.
async fn notified_campaign(store: &Store, macs: &[Mac]) -> i64 {
    let id = campaign(store, macs).await;
    store.mark_sending(id, macs).await.unwrap();
    let results: Vec<_> = macs.iter().map(|m| (*m, notified(Some(own(*m)), 100))).collect();
    store.record_notify_results(id, &results).await.unwrap();
    id
}

#[tokio::test]
async fn confirmation_is_a_fetch_of_the_own_file_after_the_notify() {
    for (store, _dir) in stores().await {
        let all = macs(4);
        let id = notified_campaign(&store, &all).await;
        store
            .record_fetches(&[
                fetch(all[2], &own(all[2]), "early", 50),          // before the NOTIFY
                fetch(all[1], "y000000000046.cfg", "common", 120), // another file
                fetch(all[0], &own(all[0]), "h0", 150),            // its own file, after
                fetch(all[3], &own(all[3]), "h3", 100),            // at the NOTIFY's time counts
            ])
            .await
            .unwrap();
        let mut confirmed = store.confirm_fetched(id, 0, i64::MAX).await.unwrap();
        confirmed.sort();
        assert_eq!(confirmed, vec![(all[0], 150), (all[3], 100)]);
        let rows = store.campaign_devices(id).await.unwrap();
        let hashes: Vec<_> = rows.iter().map(|d| (d.confirmed_at, d.fetched_hash.as_deref())).collect();
        assert_eq!(hashes, vec![(Some(150), Some("h0")), (None, None), (None, None), (Some(100), Some("h3"))]);
        assert!(store.confirm_fetched(id, 0, i64::MAX).await.unwrap().is_empty(), "confirmed once");

        // A later fetch of its own file confirms the device that fetched too early.
        store.record_fetches(&[fetch(all[2], &own(all[2]), "h2", 300)]).await.unwrap();
        assert_eq!(store.confirm_fetched(id, 0, i64::MAX).await.unwrap(), vec![(all[2], 300)]);
        // Notifying again (a retry) clears the confirmation and its hash.
        store.record_notify_results(id, &[(all[0], notified(Some(own(all[0])), 400))]).await.unwrap();
        let d = &store.campaign_devices(id).await.unwrap()[0];
        assert_eq!((d.confirmed_at, d.fetched_hash.as_deref()), (None, None));
    }
}

#[tokio::test]
async fn a_fetch_after_the_window_does_not_confirm() {
    for (store, _dir) in stores().await {
        let all = macs(4);
        let id = notified_campaign(&store, &all).await; // a window of 1,000 ms
        store
            .record_fetches(&[
                fetch(all[0], &own(all[0]), "h0", 1_100), // the window's last millisecond counts
                fetch(all[1], &own(all[1]), "h1", 1_101), // one millisecond late
                fetch(all[2], &own(all[2]), "h2", 9_000), // hours late, in spirit
            ])
            .await
            .unwrap();
        assert_eq!(store.confirm_fetched(id, 0, i64::MAX).await.unwrap(), vec![(all[0], 1_100)]);
        let counts = store.campaign_counts(id, 1_000, 10_000).await.unwrap();
        assert_eq!(counts.counts.get(&CampaignOutcome::Confirmed), Some(&1));
        assert_eq!(counts.counts.get(&CampaignOutcome::NotConfirmed), Some(&3));
        // Only fetches in [since, until) are looked at.
        store.record_notify_results(id, &[(all[3], notified(Some(own(all[3])), 1_000))]).await.unwrap();
        store.record_fetches(&[fetch(all[3], &own(all[3]), "h3", 1_500)]).await.unwrap();
        assert!(store.confirm_fetched(id, 1_501, i64::MAX).await.unwrap().is_empty(), "before `since`");
        assert!(store.confirm_fetched(id, 0, 1_500).await.unwrap().is_empty(), "at `until`");
        assert_eq!(store.confirm_fetched(id, 1_500, 1_501).await.unwrap(), vec![(all[3], 1_500)]);
        assert!(store.confirm_fetched(id, 0, i64::MAX).await.unwrap().is_empty(), "the late ones stay unconfirmed");
    }
}

#[tokio::test]
async fn a_fetch_recorded_before_the_outcome_confirms_with_it() {
    for (store, _dir) in stores().await {
        let all = macs(3);
        let id = campaign(&store, &all).await; // a window of 1,000 ms
                                               // The phone answered the NOTIFY sent at 100 and fetched at 150, before the outcome was
                                               // written; device 1 fetched another file, device 2 fetched before its NOTIFY.
        store
            .record_fetches(&[
                fetch(all[0], &own(all[0]), "h0", 150),
                fetch(all[1], "y000000000046.cfg", "common", 150),
                fetch(all[2], &own(all[2]), "h2", 99),
            ])
            .await
            .unwrap();
        let results: Vec<_> = all.iter().map(|m| (*m, notified(Some(own(*m)), 100))).collect();
        assert_eq!(store.record_notify_results(id, &results).await.unwrap(), vec![(all[0], 150)]);
        let d = &store.campaign_devices(id).await.unwrap()[0];
        assert_eq!((d.confirmed_at, d.fetched_hash.as_deref()), (Some(150), Some("h0")));
        // Its history event was written with it, at the fetch's time.
        let events = store.device_events(all[0], 10).await.unwrap();
        let confirmed: Vec<_> =
            events.iter().filter(|e| e.kind == EventKind::Confirmed).map(|e| (e.at, e.detail.clone())).collect();
        assert_eq!(confirmed, vec![(150, serde_json::json!({ "campaign": id }))]);
        assert!(store.device_events(all[2], 10).await.unwrap().iter().all(|e| e.kind != EventKind::Confirmed));
        assert!(store.confirm_fetched(id, 0, i64::MAX).await.unwrap().is_empty(), "confirmed once");
        // A failed outcome is not confirmed by a fetch.
        let failed = store.record_notify_results(id, &[(all[1], timed_out(100))]).await.unwrap();
        assert!(failed.is_empty());
    }
}

#[tokio::test]
async fn confirmation_reads_the_fetches_page_by_page() {
    for (store, _dir) in stores().await {
        // More fetches than a page (1,024), most at the same millisecond: a page must resume
        // after its last (time, device, file), not its last time.
        let all = macs(2_600);
        let id = notified_campaign(&store, &all).await;
        let mut fetches = Vec::new();
        for (i, m) in all.iter().enumerate() {
            fetches.push(fetch(*m, "y000000000046.cfg", "common", 200));
            if i % 3 != 0 {
                fetches.push(fetch(*m, &own(*m), "h", 200 + (i as i64 % 2)));
            }
        }
        store.record_fetches(&fetches).await.unwrap();
        let mut confirmed = store.confirm_fetched(id, 0, i64::MAX).await.unwrap();
        confirmed.sort();
        let expected: Vec<_> =
            all.iter().enumerate().filter(|(i, _)| i % 3 != 0).map(|(i, m)| (*m, 200 + (i as i64 % 2))).collect();
        assert_eq!(confirmed.len(), expected.len());
        assert_eq!(confirmed, expected);
        // Each with its history event.
        for (i, m) in all.iter().enumerate().filter(|(i, _)| i % 500 < 3) {
            let events = store.device_events(*m, 10).await.unwrap();
            let n = events.iter().filter(|e| e.kind == EventKind::Confirmed).count();
            assert_eq!(n, usize::from(i % 3 != 0), "device {i}");
        }
    }
}

#[tokio::test]
async fn fetches_keep_the_latest_per_device_and_per_file() {
    for (store, _dir) in stores().await {
        let all = macs(MANY);
        let devices: Vec<NewDevice> = all.iter().map(|m| device(&m.to_string(), None)).collect();
        store.insert_devices(&devices).await.unwrap();
        // Oldest first, as the server sends them: each device fetches its file twice, then a
        // common file, one after the other, so repeated keys share a statement; the first
        // fetch alone reports model and firmware.
        let mut fetches = Vec::new();
        for (i, m) in all.iter().enumerate() {
            let own = format!("{m}.cfg");
            for (n, (file, hash)) in
                [(own.as_str(), "old"), (&own, "new"), ("y000000000046.cfg", "c")].iter().enumerate()
            {
                let mut f = fetch(*m, file, hash, (3 * i + n) as i64);
                if n == 0 {
                    (f.reported_model, f.reported_firmware) = (Some("T46S".into()), Some("66.86.0.15".into()));
                }
                fetches.push(f);
            }
        }
        store.record_fetches(&fetches).await.unwrap();
        let fetched = store.fetched_since(0).await.unwrap();
        assert_eq!(fetched.len(), 2 * MANY as usize);
        for (m, file, hash, at) in &fetched {
            let i = all.binary_search(m).unwrap() as i64;
            match file.as_str() {
                "y000000000046.cfg" => assert_eq!((hash.as_str(), *at), ("c", 3 * i + 2)),
                _ => assert_eq!((hash.as_str(), *at), ("new", 3 * i + 1)),
            }
        }
        for (i, d) in store.list_devices().await.unwrap().iter().enumerate() {
            let last = d.last_fetch.as_ref().unwrap();
            assert_eq!((last.file.as_str(), last.hash.as_str(), last.at), ("y000000000046.cfg", "c", 3 * i as i64 + 2));
            assert_eq!(last.reported_model.as_deref(), Some("T46S"), "a fetch without a model keeps the last one");
            assert_eq!(last.reported_firmware.as_deref(), Some("66.86.0.15"));
        }
    }
}

#[tokio::test]
async fn events_and_rendered_states_span_several_statements() {
    for (store, _dir) in stores().await {
        let all = macs(3);
        let events: Vec<NewEvent> = (0..MANY)
            .map(|n| NewEvent {
                mac: all[(n % 3) as usize],
                at: i64::from(n),
                kind: EventKind::Fetch,
                detail: serde_json::json!({ "n": n }),
            })
            .collect();
        store.append_events(&events).await.unwrap();
        let log = store.device_events(all[1], i64::from(MANY)).await.unwrap();
        assert_eq!(log.len(), events.iter().filter(|e| e.mac == all[1]).count());
        assert!(log.windows(2).all(|w| w[1].id == w[0].id + 3 && w[1].at == w[0].at + 3), "ids follow the batch");
        assert_eq!(log[0].detail, serde_json::json!({ "n": 1 }));

        let state = |n: u32, hash: &str| RenderedState {
            mac: mac(n),
            file: format!("{}.cfg", mac(n)),
            hash: hash.into(),
            changed_at: i64::from(n),
        };
        let mut states: Vec<_> = (0..MANY).map(|n| state(n, "a")).collect();
        states.push(state(7, "b"));
        store.save_rendered_states(&states).await.unwrap();
        store.save_rendered_states(&[state(8, "c"), state(8, "d")]).await.unwrap();
        let mut saved = store.rendered_states().await.unwrap();
        saved.sort_by_key(|s| s.mac);
        assert_eq!(saved.len(), MANY as usize);
        assert_eq!((saved[6].hash.as_str(), saved[7].hash.as_str(), saved[8].hash.as_str()), ("a", "b", "d"));
    }
}

#[tokio::test]
async fn a_large_import_creates_its_groups_once() {
    for (store, _dir) in stores().await {
        let groups = ["a", "b", "c"];
        let devices: Vec<NewDevice> =
            macs(MANY).iter().enumerate().map(|(i, m)| device(&m.to_string(), Some(groups[i % 3]))).collect();
        store.insert_devices(&devices).await.unwrap();
        let stored = store.list_devices().await.unwrap();
        assert_eq!(stored.len(), MANY as usize);
        assert_eq!(stored[4].group.as_deref(), Some("b"));
        assert_eq!(stored[4].settings, devices[4].settings);
        let names: Vec<String> = store.list_groups().await.unwrap().into_iter().map(|g| g.name).collect();
        assert_eq!(names, groups);
    }
}

#[tokio::test]
async fn a_duplicate_mac_rejects_the_whole_import() {
    for (store, _dir) in stores().await {
        let all = macs(MANY + 1);
        store.insert_devices(&[device(&all[MANY as usize].to_string(), None)]).await.unwrap();
        let fresh = |n: u32| device(&mac(n).to_string(), Some("new"));

        // The same MAC twice in the input, after more rows than one statement takes.
        let mut twice: Vec<NewDevice> = (0..MANY).map(fresh).collect();
        twice.insert(4_500, fresh(17));
        let err = store.insert_devices(&twice).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateDevice(ref m) if *m == mac(17).to_string()), "{err}");

        // A MAC already stored, late in the input.
        let mut existing: Vec<NewDevice> = (0..MANY).map(fresh).collect();
        existing.push(fresh(MANY));
        let err = store.insert_devices(&existing).await.unwrap_err();
        assert!(matches!(err, StoreError::DuplicateDevice(ref m) if *m == mac(MANY).to_string()), "{err}");

        assert_eq!(store.list_devices().await.unwrap().len(), 1, "nothing of a rejected import is written");
        assert!(store.list_groups().await.unwrap().is_empty(), "nor its groups");
    }
}

#[tokio::test]
async fn unmarking_returns_only_devices_still_sending_to_pending() {
    for (store, _dir) in stores().await {
        let all = macs(6);
        let id = campaign(&store, &all).await;
        store.mark_sending(id, &all).await.unwrap();
        // The first device got its outcome before the campaign was cancelled; it must keep it.
        store.record_notify_results(id, &[(all[0], notified(Some("x.cfg".into()), 100))]).await.unwrap();
        store.unmark_sending(id, &all).await.unwrap();
        let rows = store.campaign_devices(id).await.unwrap();
        assert_eq!(rows[0].state, CampaignDeviceState::Notified);
        assert_eq!(rows[0].attempts, 1);
        for d in &rows[1..] {
            assert_eq!((d.state.as_str(), d.attempts), ("pending", 0), "{}", d.mac);
        }
        assert_eq!(store.campaign_unsent(id).await.unwrap(), all[1..].to_vec());
    }
}

/// Whatever a phone put in its reason phrase comes back as it was: quotes, backslashes,
/// control characters and non-ASCII text, with a NULL status and file beside a set one.
#[tokio::test]
async fn outcome_text_round_trips_exactly() {
    for (store, _dir) in stores().await {
        let all = macs(5);
        let id = campaign(&store, &all).await;
        let odd = "Busy \"here\" \\ tab\t line\r\n é 電話 \u{1}";
        let results = vec![
            (all[0], NotifyResult { reason: odd.into(), ..timed_out(5) }),
            (all[1], notified(Some("a'b\"c.cfg".into()), 6)),
            (all[2], NotifyResult { status: Some(486), result: CheckSyncResult::Rejected, ..timed_out(7) }),
            // The MAC inside a name (written around it on SQLite), and in capitals (as it is).
            (all[3], notified(Some(format!("é'/{}-電話.xml", all[3])), 8)),
            (all[4], notified(Some(format!("SEP{}.cnf.xml", all[4].to_string().to_uppercase())), 9)),
        ];
        store.record_notify_results(id, &results).await.unwrap();
        let rows = store.campaign_devices(id).await.unwrap();
        for ((mac, r), d) in results.iter().zip(&rows) {
            assert_eq!(d.mac, *mac);
            assert_eq!(d.reason.as_deref(), Some(r.reason.as_str()));
            assert_eq!(d.status, r.status.map(i64::from));
            assert_eq!(d.result, Some(r.result));
            assert_eq!(d.expected_file, r.expected_file);
            assert_eq!((d.notified_at, d.attempts), (Some(r.at), 1));
        }
    }
}

/// On SQLite (one node) devices are not written `sending` before their NOTIFY leaves; the
/// attempt is counted with the outcome, once, and a crash (no outcome written) leaves the
/// device to be sent again. On PostgreSQL the mark is written (a takeover reads it) and the
/// outcome does not count the attempt twice.
#[tokio::test]
async fn the_sending_mark_is_written_only_where_another_node_may_take_over() {
    for (store, _dir) in stores().await {
        let all = macs(4);
        let id = campaign(&store, &all).await;
        store.mark_sending_if_shared(id, &all).await.unwrap();
        let marked = store.campaign_devices(id).await.unwrap();
        let shared = store.backend() == sipprov_store::Backend::Postgres;
        let expected = if shared { ("sending", 1) } else { ("pending", 0) };
        assert!(marked.iter().all(|d| (d.state.as_str(), d.attempts) == expected), "{marked:?}");
        // Outcomes for the first three; the fourth was "in flight" when the node died.
        let results: Vec<_> = all[..3].iter().map(|m| (*m, notified(Some(own(*m)), 100))).collect();
        store.record_notify_results(id, &results).await.unwrap();
        let rows = store.campaign_devices(id).await.unwrap();
        assert!(rows[..3].iter().all(|d| d.attempts == 1 && d.state == CampaignDeviceState::Notified), "{rows:?}");
        assert_eq!(store.campaign_unsent(id).await.unwrap(), all[3..].to_vec(), "sent again after a restart");
        // Sent again and failed, then retried: each NOTIFY counted once.
        store.mark_sending_if_shared(id, &all[3..]).await.unwrap();
        store.record_notify_results(id, &[(all[3], timed_out(200))]).await.unwrap();
        store.retry_campaign_audited(id, 300, None).await.unwrap();
        store.mark_sending_if_shared(id, &all[3..]).await.unwrap();
        store.record_notify_results(id, &[(all[3], notified(Some(own(all[3])), 400))]).await.unwrap();
        let last = &store.campaign_devices(id).await.unwrap()[3];
        assert_eq!((last.state, last.attempts), (CampaignDeviceState::Notified, if shared { 3 } else { 2 }));
    }
}

/// The outcome of one device row at `now`, computed from the row alone (what the counts and the
/// failing list must agree with, however the database computes them).
fn reference_outcome(d: &sipprov_store::CampaignDevice, window: i64, now: i64) -> CampaignOutcome {
    match d.state {
        CampaignDeviceState::Notified if d.confirmed_at.is_some() => CampaignOutcome::Confirmed,
        CampaignDeviceState::Notified if d.notified_at.is_some_and(|t| t + window >= now) => {
            CampaignOutcome::AwaitingConfirmation
        }
        CampaignDeviceState::Notified => CampaignOutcome::NotConfirmed,
        CampaignDeviceState::Failed => CampaignOutcome::failed(d.result.unwrap_or(CheckSyncResult::Error)),
        CampaignDeviceState::Pending => CampaignOutcome::Pending,
        CampaignDeviceState::Sending => CampaignOutcome::Sending,
    }
}

#[tokio::test]
async fn counts_and_failing_agree_with_each_device_row_at_every_time() {
    for (store, _dir) in stores().await {
        let all = macs(600);
        let id = campaign(&store, &all).await;
        // 0..100 stay pending, 100..200 sending; the rest get outcomes at spread-out times:
        // timeouts, rejections, and 2xx of which some are confirmed.
        store.mark_sending(id, &all[100..]).await.unwrap();
        let mut results = Vec::new();
        for (i, m) in all.iter().enumerate().skip(200) {
            let at = 100 + (i as i64 % 50) * 40;
            let r = match i % 5 {
                0 => timed_out(at),
                1 => NotifyResult {
                    result: CheckSyncResult::Rejected,
                    status: Some(486),
                    reason: "Busy Here".into(),
                    expected_file: None,
                    at,
                },
                _ => notified(Some(own(*m)), at),
            };
            results.push((*m, r));
        }
        store.record_notify_results(id, &results).await.unwrap();
        let fetches: Vec<_> = all
            .iter()
            .enumerate()
            .skip(200)
            .filter(|(i, _)| i % 5 == 2)
            .map(|(_, m)| fetch(*m, &own(*m), "h", 2_200))
            .collect();
        store.record_fetches(&fetches).await.unwrap();
        store.confirm_fetched(id, 0, i64::MAX).await.unwrap();
        let rows = store.campaign_devices(id).await.unwrap();
        for now in [0, 500, 1_100, 1_500, 2_000, 2_500, 3_100, 10_000] {
            let mut expected = std::collections::BTreeMap::new();
            for d in &rows {
                *expected.entry(reference_outcome(d, 1_000, now)).or_insert(0i64) += 1;
            }
            let counts = store.campaign_counts(id, 1_000, now).await.unwrap();
            assert_eq!(counts.counts, expected, "counts at {now}");
            assert_eq!(counts.devices, 600);
            assert_eq!(counts.last_notified_at, rows.iter().filter_map(|d| d.notified_at).max());
            let failing: Vec<Mac> = rows
                .iter()
                .filter(|d| {
                    d.state == CampaignDeviceState::Failed
                        || reference_outcome(d, 1_000, now) == CampaignOutcome::NotConfirmed
                })
                .map(|d| d.mac)
                .take(150)
                .collect();
            let listed: Vec<Mac> =
                store.campaign_failing(id, 1_000, now, 150).await.unwrap().iter().map(|d| d.mac).collect();
            assert_eq!(listed, failing, "failing at {now}");
        }
    }
}

#[tokio::test]
async fn unsent_devices_are_read_in_pages_without_losing_or_repeating_one() {
    for (store, _dir) in stores().await {
        // Two full pages of unsent devices plus some with outcomes in between: the reads must
        // stop exactly at the end, skip the devices with an outcome, and keep the order.
        let all = macs(8_192 + 300);
        let id = campaign(&store, &all).await;
        store.mark_sending(id, &all[4_000..4_200]).await.unwrap();
        let done: Vec<_> = all.iter().step_by(29).map(|m| (*m, timed_out(100))).collect();
        store.record_notify_results(id, &done).await.unwrap();
        let expected: Vec<Mac> = all.iter().enumerate().filter(|(i, _)| i % 29 != 0).map(|(_, m)| *m).collect();
        assert_eq!(store.campaign_unsent(id).await.unwrap(), expected);
        let more: Vec<_> = expected[..expected.len() - 8_192].iter().map(|m| (*m, timed_out(100))).collect();
        store.record_notify_results(id, &more).await.unwrap();
        assert_eq!(store.campaign_unsent(id).await.unwrap(), expected[expected.len() - 8_192..].to_vec());
    }
}

/// A campaign's outcomes and their history events written together (one JSON text per batch on
/// SQLite) come back exactly: every event, in the batch's order (ids follow it, after the ids
/// already taken), with its detail as written, odd text included.
#[tokio::test]
async fn campaign_history_events_round_trip_in_order() {
    for (store, _dir) in stores().await {
        let all = macs(600);
        let id = campaign(&store, &all).await;
        let before = NewEvent { mac: all[0], at: 1, kind: EventKind::Fetch, detail: serde_json::json!({ "n": -1 }) };
        store.append_events(&[before]).await.unwrap();
        let odd = "Busy \"here\" \\ tab\t line\r\n é 電話 \u{1}";
        let results: Vec<(Mac, NotifyResult)> = all.iter().map(|m| (*m, timed_out(100))).collect();
        // Times of every width, the sign included (SQLite reads them from fixed-width text).
        let at = |n: usize| match n {
            0 => i64::MIN,
            1 => -5,
            2 => 0,
            3 => i64::MAX,
            _ => 100 + n as i64,
        };
        let events: Vec<NewEvent> = all
            .iter()
            .enumerate()
            .map(|(n, m)| NewEvent {
                mac: *m,
                at: at(n),
                kind: EventKind::Notify,
                detail: serde_json::json!({ "n": n, "reason": odd, "campaign": id, "status": null }),
            })
            .collect();
        let texts: Vec<sipprov_store::EventText> = events.iter().map(Into::into).collect();
        store.record_notify_results_with_events(id, &results, &texts).await.unwrap();
        let mut ids = Vec::new();
        for (n, m) in all.iter().enumerate() {
            let log = store.device_events(*m, 10).await.unwrap();
            let notify: Vec<_> = log.iter().filter(|e| e.kind == EventKind::Notify).collect();
            assert_eq!(notify.len(), 1, "{m}: {log:?}");
            assert_eq!(notify[0].at, at(n));
            assert_eq!(notify[0].detail, events[n].detail, "{m}");
            ids.push(notify[0].id);
        }
        assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids follow the batch's order: {ids:?}");
        let first_log = store.device_events(all[0], 10).await.unwrap();
        assert!(first_log[0].id < ids[0], "after the ids already taken: {first_log:?}");
    }
}

/// A batch of history events of several kinds (written a run of one kind per statement on
/// SQLite, the kind bound once) keeps each event's kind, time and detail, and the batch's order
/// in its ids.
#[tokio::test]
async fn history_events_of_several_kinds_in_one_batch_keep_kind_and_order() {
    for (store, _dir) in stores().await {
        let all = macs(40);
        let id = campaign(&store, &all).await;
        let results: Vec<(Mac, NotifyResult)> = all.iter().map(|m| (*m, timed_out(100))).collect();
        // Runs of 1, 2, 3… events of one kind, alternating.
        let kind = |n: usize| {
            let run = (1..)
                .scan(0, |end, len| {
                    *end += len;
                    Some(*end)
                })
                .position(|end| n < end)
                .unwrap_or(0);
            if run % 2 == 0 {
                EventKind::Notify
            } else {
                EventKind::Fetch
            }
        };
        let events: Vec<NewEvent> = all
            .iter()
            .enumerate()
            .map(|(n, m)| NewEvent {
                mac: *m,
                at: 100 + n as i64,
                kind: kind(n),
                detail: serde_json::json!({ "n": n }),
            })
            .collect();
        let texts: Vec<sipprov_store::EventText> = events.iter().map(Into::into).collect();
        store.record_notify_results_with_events(id, &results, &texts).await.unwrap();
        let mut ids = Vec::new();
        for (n, m) in all.iter().enumerate() {
            let log = store.device_events(*m, 10).await.unwrap();
            assert_eq!(log.len(), 1, "{m}: {log:?}");
            assert_eq!((log[0].kind, log[0].at, &log[0].detail), (kind(n), 100 + n as i64, &events[n].detail), "{m}");
            ids.push(log[0].id);
        }
        assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids follow the batch's order: {ids:?}");
    }
}

/// A fetch event extended across intervals shows its count and last time in the device's
/// history, wherever the store keeps them; a device removed and added again is not extended
/// into its old event (the new fetches are appended as an event of their own).
#[tokio::test]
async fn an_extended_fetch_event_reads_back_with_its_count_and_last_time() {
    use sipprov_store::IntervalEvent;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let m = mac(1);
    store.insert_devices(&[device(&m.to_string(), None)]).await.unwrap();
    let t0 = sipprov_store::now_ms() + 1;
    let event = |at: i64, count: u64| NewEvent {
        mac: m,
        at,
        kind: EventKind::Fetch,
        detail: serde_json::json!({ "file": format!("{m}.cfg"), "hash": "h", "count": count }),
    };
    let unused = |_: usize| -> Option<EventText> { panic!("no fallback is needed while the event can be extended") };
    let ids =
        store.record_fetch_interval(&[IntervalEvent::New(EventText::from(&event(t0, 2)))], &unused).await.unwrap();
    let extend = |count, last_at| IntervalEvent::Extend { id: ids[0], count, last_at, mac: m, at: t0 };
    let again = store.record_fetch_interval(&[extend(5, t0 + 40)], &unused).await.unwrap();
    assert_eq!(again, ids, "extended in place, no new event");
    let again = store.record_fetch_interval(&[extend(9, t0 + 90)], &unused).await.unwrap();
    assert_eq!(again, ids);
    let log = store.device_events(m, 10).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].detail["count"].as_i64(), log[0].detail["last_at"].as_i64()), (Some(9), Some(t0 + 90)));
    assert_eq!(log[0].detail["file"], format!("{m}.cfg"), "the rest of the detail as written");

    // Removed and added again: the old event is not the new device's to extend.
    store.delete_device(m).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.insert_devices(&[device(&m.to_string(), None)]).await.unwrap();
    let later = sipprov_store::now_ms() + 1;
    let moved = IntervalEvent::Extend { id: ids[0], count: 12, last_at: later, mac: m, at: t0 };
    let appended = store.record_fetch_interval(&[moved], &|_| Some(EventText::from(&event(later, 3)))).await.unwrap();
    assert_ne!(appended, ids, "appended as a new event");
    let log = store.device_events(m, 10).await.unwrap();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].detail["count"].as_i64(), Some(9), "the old event keeps its count");
    assert_eq!((log[1].at, log[1].detail["count"].as_i64()), (later, Some(3)));
}

/// The background writer (the fetch log's) cuts its statements shorter; a batch of events
/// spanning many of them is written whole and in order, with the ids it returns.
#[tokio::test]
async fn the_background_writers_shorter_statements_keep_a_batch_whole_and_in_order() {
    for (store, _dir) in stores().await {
        let device_mac = mac(1);
        store.insert_devices(&[device(&device_mac.to_string(), None)]).await.unwrap();
        let background = store.background_writer().await.unwrap();
        let rows: Vec<NewEvent> = (0..300)
            .map(|at| NewEvent { mac: device_mac, at, kind: EventKind::Pnp, detail: serde_json::json!({ "n": at }) })
            .collect();
        if store.defers_last_seen() {
            let events: Vec<sipprov_store::IntervalEvent> =
                rows.iter().map(|e| sipprov_store::IntervalEvent::New(EventText::from(e))).collect();
            let ids = background.record_fetch_interval(&events, &|_| None).await.unwrap();
            assert!(ids.windows(2).all(|w| w[1] == w[0] + 1) && ids.len() == 300, "{ids:?}");
        } else {
            background.append_events(&rows).await.unwrap();
        }
        let log = store.device_events(device_mac, 1_000).await.unwrap();
        let order: Vec<i64> = log.iter().map(|e| e.detail["n"].as_i64().unwrap()).collect();
        assert_eq!(order, (0..300).collect::<Vec<_>>());
    }
}
