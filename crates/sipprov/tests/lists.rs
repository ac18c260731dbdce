//! Device lists, the fleet summary and history paging against the real server: filters, sort
//! orders, pages that neither repeat nor skip a device, free-text MAC search in several
//! spellings, silent devices judged by their provisioning interval, and summary counts after
//! real fetches and refusals.

mod common;

use std::collections::BTreeSet;

use common::{curl_with, write, Fetched, TestServer};
use sipprov_api::{Device, DeviceEvent, FleetSummary, Page, Problem};

const MODELS: [&str; 3] = ["T46S", "T48S", "T54W"];
const GROUPS: [&str; 4] = ["alpha", "beta", "gamma", ""];
const DEVICES: usize = 240;

/// One admin API GET with the server's token.
fn get(s: &TestServer, path: &str) -> Fetched {
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.trim());
    curl_with(&format!("http://{}{path}", s.api), "test", &["-H", &auth]).0
}

fn page(s: &TestServer, query: &str) -> Page<Device> {
    let r = get(s, &format!("/api/v1/devices?{query}"));
    assert_eq!(r.status, 200, "{query}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

fn macs(p: &Page<Device>) -> Vec<String> {
    p.items.iter().map(|d| d.mac.to_string()).collect()
}

fn mac_of(i: usize) -> String {
    format!("001565{i:06x}")
}

fn ua(model: &str, firmware: &str, mac: &str) -> String {
    let spaced: Vec<&str> = (0..6).map(|k| &mac[k * 2..k * 2 + 2]).collect();
    format!("Yealink SIP-{model} {firmware} {}", spaced.join(":"))
}

/// A server with [`DEVICES`] Yealink devices over three models and four groups (one is "no
/// group"); every fifth has a display name.
fn fleet() -> TestServer {
    let s = TestServer::start();
    let csv = s.data_dir().join("fleet.csv");
    let mut text = String::from("mac,vendor,model,group,line.1.display_name\n");
    for i in 0..DEVICES {
        let name = if i % 5 == 0 { format!("Desk {i} Reception") } else { String::new() };
        text.push_str(&format!("{},yealink,{},{},{name}\n", mac_of(i), MODELS[i % 3], GROUPS[i % 4]));
    }
    write(csv.clone(), &text);
    s.ok(&["device", "import", csv.to_str().unwrap()]);
    s
}

#[test]
fn filters_sorting_and_pages_without_duplicates_or_gaps() {
    let s = fleet();
    // Devices 0..30 fetch: even ones report firmware A, odd ones firmware B.
    for i in 0..30 {
        let firmware = if i % 2 == 0 { "66.86.0.15" } else { "66.86.0.20" };
        let r = s.fetch(&format!("/{}.cfg", mac_of(i)), &ua(MODELS[i % 3], firmware, &mac_of(i)), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }

    let all = page(&s, "limit=1000");
    assert_eq!(all.total, DEVICES);
    let expected: Vec<String> = (0..DEVICES).map(mac_of).collect();
    assert_eq!(macs(&all), expected, "by MAC ascending by default");

    // Paging through a sort with many ties (model): every device once, in the same order.
    let whole = macs(&page(&s, "sort=model&order=desc&limit=1000"));
    let mut walked = Vec::new();
    let mut offset = Some(0);
    while let Some(o) = offset {
        let p = page(&s, &format!("sort=model&order=desc&limit=7&offset={o}"));
        assert_eq!(p.total, DEVICES);
        walked.extend(macs(&p));
        offset = p.next_offset;
    }
    assert_eq!(walked, whole, "pages concatenate to the whole list");
    assert_eq!(walked.iter().collect::<BTreeSet<_>>().len(), DEVICES, "no duplicates");
    let models: Vec<String> = page(&s, "sort=model&order=desc&limit=1000").items.into_iter().map(|d| d.model).collect();
    assert!(models.windows(2).all(|w| w[0] >= w[1]), "descending by model");

    // Filters.
    let t48 = page(&s, "model=t48s&limit=1000");
    assert_eq!(t48.total, DEVICES / 3);
    assert!(t48.items.iter().all(|d| d.model == "T48S"));
    let beta = page(&s, "group=beta&model=T46S&limit=1000");
    let want: Vec<String> = (0..DEVICES).filter(|i| i % 4 == 1 && i % 3 == 0).map(mac_of).collect();
    assert_eq!(macs(&beta), want);
    let ungrouped = page(&s, "group=&limit=1000");
    assert_eq!(ungrouped.total, DEVICES / 4);
    assert!(ungrouped.items.iter().all(|d| d.group.is_none()));
    assert_eq!(page(&s, "vendor=snom").total, 0);

    let fw = page(&s, "firmware=66.86.0.20&limit=1000");
    let want: Vec<String> = (0..30).filter(|i| i % 2 == 1).map(mac_of).collect();
    assert_eq!(macs(&fw), want);
    assert!(fw.items.iter().all(|d| d.last_fetch.as_ref().unwrap().reported_firmware.as_deref() == Some("66.86.0.20")));
    assert_eq!(page(&s, "never_seen=true&limit=1").total, DEVICES - 30);
    assert_eq!(page(&s, "never_seen=false&limit=1").total, 30);
    let seen = page(&s, "sort=last_seen&order=desc&limit=30");
    let times: Vec<i64> = seen.items.iter().map(|d| d.last_fetch.as_ref().unwrap().at).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let newest = times[0];
    assert_eq!(page(&s, &format!("seen_after={}&limit=1000", newest + 1)).total, 0);
    assert!(page(&s, &format!("seen_after={newest}")).total >= 1);
    assert_eq!(page(&s, &format!("seen_before={}&limit=1000", newest + 1)).total, 30);

    // Free text: a MAC fragment in any spelling, or part of a display name.
    let target = mac_of(0xab);
    for spelling in ["00:15:65:00:00:AB", "001565-0000ab", "0015.6500.00ab", "0000AB", "00-ab"] {
        let found = page(&s, &format!("q={}", spelling.replace(':', "%3A")));
        assert!(macs(&found).contains(&target), "{spelling}: {:?}", macs(&found));
        assert!(found.items.iter().all(|d| d.mac.to_string().contains("0000ab") || d.mac.to_string().contains("00ab")));
    }
    assert_eq!(macs(&page(&s, "q=00:15:65:00:00:ab")), vec![target.clone()]);
    let named = page(&s, "q=RECEPTION&limit=1000");
    assert_eq!(named.total, DEVICES / 5);
    assert_eq!(macs(&page(&s, "q=desk%2035%20")), vec![mac_of(35)]);

    // Bad queries are problems naming the parameter.
    for (query, field) in [("limit=lots", "limit"), ("sort=colour", "sort"), ("colour=red", "colour")] {
        let r = get(&s, &format!("/api/v1/devices?{query}"));
        assert_eq!(r.status, 400, "{query}");
        let p: Problem = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(p.field.as_deref(), Some(field), "{query}: {p:?}");
    }
    assert_eq!(page(&s, "limit=100000").limit, sipprov_api::MAX_PAGE, "the page size is capped");

    // The CLI: filters, sort, limit; and without --limit every match, page after page.
    let out = s.ok(&["device", "list", "--model", "T54W", "--group", "gamma", "--sort", "mac", "--desc", "--json"]);
    let listed: Vec<Device> = serde_json::from_str(&out).unwrap();
    let mut want: Vec<String> = (0..DEVICES).filter(|i| i % 3 == 2 && i % 4 == 2).map(mac_of).collect();
    want.reverse();
    assert_eq!(listed.iter().map(|d| d.mac.to_string()).collect::<Vec<_>>(), want);
    let everything: Vec<Device> = serde_json::from_str(&s.ok(&["device", "list", "--json"])).unwrap();
    assert_eq!(everything.len(), DEVICES);
    let table = s.ok(&["device", "list", "--search", "00:15:65:00:00:1", "--limit", "3"]);
    assert!(table.contains("3 of 16 matching devices shown"), "{table}");
    assert!(table.contains("001565000010") && !table.contains("001565000013"), "{table}");
}

/// Moves every recorded fetch of `macs` `minutes` into the past, with the server stopped: the
/// last-seen rows and the fetch events both, since opening the store replays the events a
/// killed server may not have reflected in last-seen yet.
fn age_last_fetches(s: &mut TestServer, macs: &[String], minutes: i64) {
    // Reading a list flushes the fetch log, so the store has every fetch before the stop.
    page(s, "limit=1");
    s.stop();
    let db = s.data_dir().join("sipprov.db");
    let list = macs.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(",");
    let ms = minutes * 60_000;
    let script = format!(
        "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\n\
         n=c.execute(\"UPDATE device_seen SET last_seen_at = last_seen_at - {ms} WHERE mac IN ({list})\").rowcount\n\
         c.execute(\"UPDATE device_events SET at = at - {ms}, detail = CASE WHEN json_extract(detail, '$.last_at') \
         IS NULL THEN detail ELSE json_set(detail, '$.last_at', json_extract(detail, '$.last_at') - {ms}) END \
         WHERE kind = 'fetch' AND mac IN ({list})\")\n\
         c.execute(\"UPDATE fetch_event_counts SET last_at = last_at - {ms} WHERE event_id IN \
         (SELECT id FROM device_events WHERE kind = 'fetch' AND mac IN ({list}))\")\n\
         c.commit()\nassert n == {}, n\n",
        macs.len()
    );
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.spawn(&[]);
}

#[test]
fn silent_devices_follow_their_provisioning_interval() {
    let mut s = fleet();
    // 0: its own interval of 1 minute; 1: group `beta` checks every 2 minutes; 2, 3: default.
    s.ok(&["device", "set", &mac_of(0), "provisioning.interval_minutes=1"]);
    s.ok(&["group", "set", "beta", "provisioning.interval_minutes=2"]);
    for i in 0..4 {
        assert_eq!(
            s.fetch(&format!("/{}.cfg", mac_of(i)), &ua(MODELS[i % 3], "66.86.0.15", &mac_of(i)), &[]).status,
            200
        );
    }
    assert_eq!(page(&s, "silent=true").total, 0, "everyone just fetched");
    // Ten minutes ago: over 2 x 1 and 2 x 2 minutes, well under 2 x the default day.
    age_last_fetches(&mut s, &[mac_of(0), mac_of(1), mac_of(2)], 10);

    let silent = page(&s, "silent=true&limit=1000");
    assert_eq!(macs(&silent), vec![mac_of(0), mac_of(1)]);
    assert_eq!(page(&s, "silent=false&limit=1").total, DEVICES - 2);
    let summary: FleetSummary = serde_json::from_slice(&get(&s, "/api/v1/summary").body).unwrap();
    assert_eq!(summary.silent, 2);
    let listed: Vec<(String, u64)> =
        summary.silent_devices.iter().map(|d| (d.mac.to_string(), d.interval_minutes)).collect();
    assert_eq!(BTreeSet::from_iter(listed), BTreeSet::from([(mac_of(0), 1), (mac_of(1), 2)]));
    assert_eq!(summary.never_seen, DEVICES - 4);
    assert_eq!(summary.default_interval_minutes, 1440);

    let cli: Vec<Device> = serde_json::from_str(&s.ok(&["device", "list", "--silent", "--json"])).unwrap();
    assert_eq!(cli.len(), 2);
    // A fresh fetch ends the silence.
    assert_eq!(s.fetch(&format!("/{}.cfg", mac_of(0)), &ua("T46S", "66.86.0.15", &mac_of(0)), &[]).status, 200);
    assert_eq!(macs(&page(&s, "silent=true")), vec![mac_of(1)]);
}

#[test]
fn summary_counts_fetches_refusals_throttling_and_campaigns() {
    let s = TestServer::start_closed_with_config("[security]\nmax_failures = 3\n");
    for (i, model) in ["T46S", "T46S", "T54W"].iter().enumerate() {
        s.ok(&["device", "add", &mac_of(i), "--vendor", "yealink", "--model", model]);
    }
    s.ok(&["device", "add", "000413a11fa7", "--vendor", "snom", "--model", "D345"]);
    // The first fetch of each Yealink is let in (its first-fetch window) and reports firmware.
    for i in 0..3 {
        let firmware = if i < 2 { "66.86.0.15" } else { "96.86.0.100" };
        let r = s.fetch(&format!("/{}.cfg", mac_of(i)), &ua(["T46S", "T46S", "T54W"][i], firmware, &mac_of(i)), &[]);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Later fetches with wrong credentials are refused (and recorded) until the source is blocked.
    for _ in 0..4 {
        let r =
            s.fetch_digest(&format!("/{}.cfg", mac_of(0)), &ua("T46S", "66.86.0.15", &mac_of(0)), "x:wrong-Pw-1", &[]);
        assert_ne!(r.status, 200);
    }

    let r = get(&s, "/api/v1/summary");
    assert_eq!(r.status, 200, "{}", r.text());
    let summary: FleetSummary = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(summary.devices, 4);
    assert_eq!(summary.by_vendor.get("yealink"), Some(&3));
    assert_eq!(summary.by_vendor.get("snom"), Some(&1));
    assert_eq!(summary.by_model.get("yealink T46S"), Some(&2));
    assert_eq!(summary.by_model.get("snom D345"), Some(&1));
    assert_eq!(summary.by_firmware.get("66.86.0.15"), Some(&2));
    assert_eq!(summary.by_firmware.get("96.86.0.100"), Some(&1));
    assert_eq!(summary.by_firmware.get("unknown"), Some(&1));
    assert_eq!(summary.never_seen, 1);
    // Refusals: as many as the device's history records, each with its reason.
    let history: Vec<DeviceEvent> =
        serde_json::from_slice(&get(&s, &format!("/api/v1/devices/{}/log", mac_of(0))).body).unwrap();
    let recorded = history.iter().filter(|e| e.kind == sipprov_api::EventKind::Refused).count() as u64;
    assert!(recorded >= 1, "{history:?}");
    assert_eq!(summary.refusals_24h.values().sum::<u64>(), recorded, "{:?}", summary.refusals_24h);
    assert!(summary.refusals_24h.keys().all(|reason| !reason.is_empty()));
    assert_eq!(summary.throttled_24h.iter().map(|t| t.ip.as_str()).collect::<Vec<_>>(), vec!["127.0.0.1"]);
    assert!(summary.campaigns.is_empty());

    // A campaign scheduled for later is "in progress" until it ends.
    let out = s.ok(&["resync", "--all", "--at", "2099-01-01T00:00:00Z"]);
    let summary: FleetSummary = serde_json::from_slice(&get(&s, "/api/v1/summary").body).unwrap();
    assert_eq!(summary.campaigns.len(), 1, "{out}");
    assert_eq!(summary.campaigns[0].devices, 4);

    let status = s.ok(&["status"]);
    for expected in ["devices: 4 (1 never seen, 0 silent)", "yealink T46S", "96.86.0.100", "127.0.0.1", "#1 scheduled"]
    {
        assert!(status.contains(expected), "{expected:?} missing from:\n{status}");
    }
}

#[test]
fn history_and_campaigns_page_backwards() {
    let s = TestServer::start();
    s.ok(&["device", "add", &mac_of(1), "--vendor", "yealink", "--model", "T46S"]);
    for n in 0..12 {
        // Different user agents make distinct fetch events.
        let r = s.fetch(&format!("/{}.cfg", mac_of(1)), &ua("T46S", &format!("66.86.0.{n}"), &mac_of(1)), &[]);
        assert_eq!(r.status, 200);
        page(&s, "limit=1"); // flush, so each fetch is its own event
    }
    let path = format!("/api/v1/devices/{}/log", mac_of(1));
    let all: Vec<DeviceEvent> = serde_json::from_slice(&get(&s, &format!("{path}?limit=1000")).body).unwrap();
    assert!(all.len() >= 12, "{}", all.len());
    let mut walked: Vec<i64> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = before.map_or("limit=5".to_string(), |b| format!("limit=5&before={b}"));
        let p: Vec<DeviceEvent> = serde_json::from_slice(&get(&s, &format!("{path}?{q}")).body).unwrap();
        if p.is_empty() {
            break;
        }
        assert!(p.windows(2).all(|w| w[0].id < w[1].id), "each page oldest first");
        before = Some(p[0].id);
        let mut ids: Vec<i64> = p.iter().map(|e| e.id).collect();
        ids.extend(walked);
        walked = ids;
    }
    assert_eq!(walked, all.iter().map(|e| e.id).collect::<Vec<_>>(), "pages join into the whole history");

    for _ in 0..3 {
        s.ok(&["resync", &mac_of(1), "--at", "2099-01-01T00:00:00Z"]);
    }
    let ids = |q: &str| -> Vec<i64> {
        let r = get(&s, &format!("/api/v1/campaigns?{q}"));
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_slice::<Vec<sipprov_api::Campaign>>(&r.body).unwrap().iter().map(|c| c.id).collect()
    };
    assert_eq!(ids(""), vec![1, 2, 3]);
    assert_eq!(ids("limit=2"), vec![2, 3]);
    assert_eq!(ids("limit=2&before=2"), vec![1]);
}
