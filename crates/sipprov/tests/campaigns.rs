//! Fleet re-sync campaigns against SIPp phones: pacing, outcomes, confirmation, crash resumption.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::campaign::{campaign, count, import};
use common::{eventually, scenario, write, TestServer};
use serde_json::Value;
use sipprov_testkit::Sipp;

/// A server whose SIP timers are short (T1 = 50 ms, so Timer F = 3.2 s) to keep timeouts quick.
fn server() -> TestServer {
    let mut s = TestServer::start();
    s.stop();
    let cfg = s.data_dir().join("fast-sip.toml");
    write(cfg.clone(), "[sip]\nt1_ms = 50\n");
    s.spawn(&["--config", cfg.to_str().unwrap()]);
    s
}

fn wait_done(s: &TestServer, id: &str, limit: Duration) -> Value {
    assert!(
        eventually(limit, || matches!(campaign(s, id)["state"].as_str(), Some("done" | "cancelled"))),
        "campaign {id} did not finish: {}",
        campaign(s, id)
    );
    campaign(s, id)
}

#[test]
fn two_thousand_devices_each_end_with_an_outcome() {
    // RFC timers (T1 = 500 ms): on a loaded 2-core machine SIPp can take more than the 3.2 s
    // of the short test timers to answer, and this test is about every device's outcome.
    let s = TestServer::start();
    // SIPp counts a NOTIFY retransmitted after its call ended as a new call: room for those.
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 4000);
    import(&s, 0, 2000, phones.port(), "fleet");
    let out = s.ok(&[
        "resync",
        "--group",
        "fleet",
        "--rate",
        "1000",
        "--max-in-flight",
        "200",
        "--confirm-window",
        "2",
        "--wait",
    ]);
    assert!(out.contains("campaign 1"), "{out}");
    let c = campaign(&s, "1");
    assert_eq!(c["state"], "done");
    assert_eq!(c["devices"], 2000);
    // Every phone answered 200, none fetched: all reported "not-confirmed", never as success.
    assert_eq!(count(&c, "not-confirmed"), 2000, "{}", c["counts"]);
    assert!(phones.errors().is_empty(), "{}", phones.errors());
    // Every outcome in: the time the last one was recorded, not before the last NOTIFY left.
    let (created, sent, recorded) =
        (c["created_at"].as_i64(), c["last_notified_at"].as_i64(), c["last_outcome_at"].as_i64());
    assert!(created.is_some() && sent >= created && recorded >= sent, "{c}");
    assert!(s.ok(&["campaign", "show", "1"]).contains("last outcome recorded"));
    assert!(s.ok(&["device", "log", "001565000007"]).contains("notify"));
    // The history event each device got reads back as the outcome, with its campaign.
    let shown = s.json(&["device", "show", "001565000007", "--json"]);
    let outcome = &shown["last_notify"]["outcome"];
    assert_eq!((outcome["status"].as_i64(), outcome["campaign"].as_i64()), (Some(200), Some(1)), "{shown}");
    assert_eq!(outcome["event"], "check-sync;reboot=false", "{shown}");
    assert!(outcome["sent_to"].as_str().is_some_and(|t| t.starts_with("udp:127.0.0.1:")), "{shown}");
}

/// An answered NOTIFY's outcome reaches the store as its answer comes, not when the campaign's
/// last transaction ends: with phones that never answer in the fleet, every answered device's
/// outcome is recorded while the silent ones are still in flight. An order, not a time: at
/// RFC 3261's T1 of 500 ms a silent phone's transaction runs until Timer F, 32 s (§17.1.2.2),
/// and the answered outcomes must all be in well before (the writer gathers a batch for at
/// most 20 ms after its first outcome, `campaign::drive::GATHER`).
#[test]
fn answered_outcomes_are_recorded_while_other_notifies_still_wait() {
    let s = TestServer::start();
    let ok = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 40);
    let silent = Sipp::start_calls(scenario("uas_silent.xml"), "udp", 20);
    import(&s, 0, 20, ok.port(), "mixed");
    import(&s, 20, 5, silent.port(), "mixed");
    s.ok(&["resync", "--group", "mixed", "--rate", "1000", "--confirm-window", "3600"]);
    let mut report = Value::Null;
    assert!(
        eventually(Duration::from_secs(20), || {
            report = campaign(&s, "1");
            count(&report, "awaiting-confirmation") == 20
        }),
        "the answered devices' outcomes are not all recorded: {report}"
    );
    // Still in flight: no outcome for the silent phones yet, none timed out.
    assert_eq!(count(&report, "pending") + count(&report, "sending"), 5, "{}", report["counts"]);
    assert_eq!(count(&report, "timeout"), 0, "{}", report["counts"]);
    assert!(ok.errors().is_empty(), "{}", ok.errors());
    drop(silent);
}

#[test]
fn outcomes_are_reported_exactly_and_confirmation_needs_a_fetch() {
    let s = server();
    let ok = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 10);
    let silent = Sipp::start_calls(scenario("uas_silent.xml"), "udp", 10);
    let rejecting = Sipp::start_calls(scenario("uas_481.xml"), "udp", 10);
    import(&s, 0, 10, ok.port(), "mixed");
    import(&s, 10, 10, silent.port(), "mixed");
    import(&s, 20, 10, rejecting.port(), "mixed");
    s.ok(&["device", "add", "001565ffffff", "--vendor", "yealink", "--model", "T46S", "--group", "mixed"]);
    s.ok(&["resync", "--group", "mixed", "--rate", "100", "--confirm-window", "8"]);
    assert!(eventually(Duration::from_secs(20), || count(&campaign(&s, "1"), "awaiting-confirmation") == 10));
    // Five of the phones that said 200 really fetch their config, as a Yealink would.
    for i in 0..5u32 {
        let colon = format!("00:15:65:00:00:{i:02x}");
        let r = s.fetch(&format!("/001565{i:06x}.cfg"), &format!("Yealink SIP-T46S 66.86.0.15 {colon}"), &[]);
        assert_eq!(r.status, 200);
    }
    let c = wait_done(&s, "1", Duration::from_secs(40));
    assert_eq!(count(&c, "confirmed"), 5, "{}", c["counts"]);
    assert_eq!(count(&c, "not-confirmed"), 5, "{}", c["counts"]);
    assert_eq!(count(&c, "timeout"), 10, "{}", c["counts"]);
    assert_eq!(count(&c, "rejected"), 10, "{}", c["counts"]);
    assert_eq!(count(&c, "no-target"), 1, "{}", c["counts"]);
    assert_eq!(c["failing"].as_array().unwrap().len(), 26);
    let shown = s.ok(&["campaign", "show", "1"]);
    assert!(shown.contains("481") && shown.contains("001565ffffff"), "{shown}");
    assert!(s.ok(&["device", "log", "001565000001"]).contains("confirmed"));

    // Retry sends again to the 26 failing devices only.
    s.ok(&["campaign", "retry", "1"]);
    assert!(eventually(Duration::from_secs(10), || {
        let c = campaign(&s, "1");
        count(&c, "confirmed") == 5 && c["failing"].as_array().is_some_and(|f| f.iter().all(|d| d["attempts"] == 2))
            || count(&c, "sending") + count(&c, "pending") > 0
    }));
    let c = wait_done(&s, "1", Duration::from_secs(40));
    let failing = c["failing"].as_array().unwrap();
    assert!(failing.iter().all(|d| d["attempts"] == 2), "{failing:?}");
    assert_eq!(count(&c, "confirmed"), 5);

    // The retry is audited, in its transaction, with the number of devices it put back.
    let retries = |s: &TestServer| -> Vec<Value> {
        let trail: Value = serde_json::from_str(&s.ok(&["audit", "--json"])).unwrap();
        trail.as_array().unwrap().iter().filter(|e| e["action"] == "campaign.retry").cloned().collect()
    };
    let audited = retries(&s);
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["target"], "1");
    assert_eq!(audited[0]["detail"]["devices"], 26, "{audited:?}");
}

#[test]
fn a_killed_server_resumes_the_campaign_without_notifying_twice() {
    let mut s = server();
    let phones = Sipp::start_traced(scenario("uas_200_linger.xml"), "udp", 1000);
    import(&s, 0, 300, phones.port(), "big");
    s.ok(&["resync", "--group", "big", "--rate", "60", "--max-in-flight", "20", "--confirm-window", "1"]);
    assert!(eventually(Duration::from_secs(20), || count(&campaign(&s, "1"), "pending") < 250));
    // kill -9: no clean shutdown.
    if let Some(child) = s.child.as_mut() {
        let _ = std::process::Command::new("kill").args(["-9", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    s.child = None;
    let cfg = s.data_dir().join("fast-sip.toml");
    s.spawn(&["--config", cfg.to_str().unwrap()]);
    let c = wait_done(&s, "1", Duration::from_secs(60));
    assert_eq!(c["devices"], 300);
    let settled: u64 = c["counts"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(settled, 300);
    assert_eq!(count(&c, "not-confirmed"), 300, "{}", c["counts"]);

    // Count distinct NOTIFY transactions per device as SIPp saw them.
    let mut per_user: HashMap<String, HashSet<String>> = HashMap::new();
    for (user, call_id) in phones.notifies() {
        per_user.entry(user).or_default().insert(call_id);
    }
    assert_eq!(per_user.len(), 300, "every device was notified");
    let twice: Vec<_> = per_user.iter().filter(|(_, ids)| ids.len() > 1).map(|(u, _)| u.clone()).collect();
    assert!(per_user.values().all(|ids| ids.len() <= 2));
    // Only devices whose NOTIFY had no recorded outcome at the kill (at most the in-flight limit) repeat.
    assert!(twice.len() <= 20, "{} devices notified twice: {twice:?}", twice.len());
}

#[test]
fn selection_scheduling_cancel_and_confirmation_prompt() {
    let s = server();
    import(&s, 0, 3, 9, "g");
    let e = s.fails(&["resync"]);
    assert!(e.contains("choose devices"), "{e}");
    let e = s.fails(&["resync", "--all", "--reboot"]);
    assert!(e.contains("--yes"), "{e}");
    let e = s.fails(&["resync", "001565999999"]);
    assert!(e.contains("not found"), "{e}");
    let e = s.fails(&["resync", "--group", "nosuch"]);
    assert!(e.contains("no devices"), "{e}");
    s.ok(&["resync", "--all", "--at", "+1h"]);
    let c = campaign(&s, "1");
    assert_eq!(c["state"], "scheduled");
    assert_eq!(count(&c, "pending"), 3);
    assert!(c["last_notified_at"].is_null() && c["last_outcome_at"].is_null(), "nothing sent yet: {c}");
    assert!(!s.ok(&["campaign", "show", "1"]).contains("last outcome"));
    s.ok(&["campaign", "cancel", "1"]);
    assert_eq!(campaign(&s, "1")["state"], "cancelled");
    assert!(s.fails(&["campaign", "cancel", "1"]).contains("already cancelled"));
    // --changed: nothing fetched yet, so every device differs; after a fetch of the current file, it does not.
    let colon = "00:15:65:00:00:00";
    s.fetch("/001565000000.cfg", &format!("Yealink SIP-T46S 66.86.0.15 {colon}"), &[]);
    s.ok(&["resync", "--changed", "--at", "+1h"]);
    let c = campaign(&s, "2");
    assert_eq!(c["devices"], 2, "{c}");
    assert!(s.ok(&["campaign", "list"]).contains("--changed"));
}

const FLEET_USER: &str = "fleet:campaign-http-pass";

/// Gives a group HTTP credentials, so that every fetch authenticates as a provisioned phone's does.
fn protect(s: &TestServer, group: &str) {
    let (user, pass) = FLEET_USER.split_once(':').unwrap();
    s.ok(&["group", "set", group, &format!("http.username={user}"), &format!("http.password={pass}")]);
}

/// Fetches device `i`'s own file as its Yealink phone does, with the fleet's credentials.
fn phone_fetch(s: &TestServer, i: u32, headers: &[&str]) -> common::Fetched {
    let ua = format!("Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:{i:02x}");
    s.fetch_digest(&format!("/001565{i:06x}.cfg"), &ua, FLEET_USER, headers)
}

fn notified(c: &Value) -> u64 {
    ["awaiting-confirmation", "confirmed", "not-confirmed"].iter().map(|k| count(c, k)).sum()
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
}

/// A fetch after the device's window does not confirm it, one inside does;
/// a conditional request with the validator of the content before a change gets the new file,
/// never a 304 that would count as confirmation; a 304 to the current ETag confirms.
#[test]
fn only_a_fetch_of_the_new_content_within_the_window_confirms() {
    let s = server();
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 10);
    // One NOTIFY a second, in MAC order: 0 fetches late, 1 in time, 2 with the validator it got
    // before a change, 3 with the current ETag; 4 never fetches and keeps the campaign running
    // while 0 fetches late.
    import(&s, 0, 5, phones.port(), "win");
    protect(&s, "win");
    let (stale_lm, current_etag) = same_second_change(&s);
    s.ok(&["resync", "--group", "win", "--rate", "1", "--confirm-window", "2"]);
    let wait_notified = |n: u64| {
        assert!(eventually(Duration::from_secs(15), || notified(&campaign(&s, "1")) >= n), "{}", campaign(&s, "1"));
        now_ms()
    };
    let first_seen = wait_notified(1);
    wait_notified(2);
    assert_eq!(phone_fetch(&s, 1, &[]).status, 200);
    wait_notified(3);
    let conditional = phone_fetch(&s, 2, &[&format!("If-Modified-Since: {stale_lm}")]);
    assert_eq!(conditional.status, 200, "a 304 would keep the old file and count as confirmed");
    assert!(conditional.text().contains("ntp-changed-"), "{}", conditional.text());
    wait_notified(4);
    assert_eq!(phone_fetch(&s, 3, &[&format!("If-None-Match: {current_etag}")]).status, 304);
    // Device 0 fetches 3 s after its NOTIFY, its window being 2 s, while the campaign still runs.
    let late = first_seen + 3_000;
    std::thread::sleep(Duration::from_millis(late.saturating_sub(now_ms()) as u64));
    assert_ne!(campaign(&s, "1")["state"], "done", "the late fetch must happen while the campaign runs");
    assert_eq!(phone_fetch(&s, 0, &[]).status, 200);

    let c = wait_done(&s, "1", Duration::from_secs(30));
    assert_eq!(count(&c, "confirmed"), 3, "{}", c["counts"]);
    assert_eq!(count(&c, "not-confirmed"), 2, "{}", c["counts"]);
    let failing: Vec<&str> = c["failing"].as_array().unwrap().iter().map(|d| d["mac"].as_str().unwrap()).collect();
    assert_eq!(failing, ["001565000000", "001565000004"], "{c}");
    for (i, confirmed) in [(0, false), (1, true), (2, true), (3, true)] {
        let log = s.ok(&["device", "log", &format!("001565{i:06x}")]);
        assert_eq!(log.contains("confirmed"), confirmed, "device {i}: {log}");
    }
}

/// Device 2 fetches its file, and a group setting changes within the same wall-clock second;
/// device 3 then fetches the new file. Returns device 2's (stale) Last-Modified and device 3's
/// (current) ETag.
fn same_second_change(s: &TestServer) -> (String, String) {
    for attempt in 0..5 {
        // Start just after a whole second, so the fetch and the change fit in one.
        std::thread::sleep(Duration::from_millis(1010 - (now_ms() % 1000) as u64));
        let before = phone_fetch(s, 2, &[]);
        assert_eq!(before.status, 200);
        let second = now_ms() / 1000;
        s.ok(&["group", "set", "win", &format!("time.ntp_server=ntp-changed-{attempt}.example.org")]);
        if now_ms() / 1000 != second {
            continue;
        }
        let current = phone_fetch(s, 3, &[]);
        let lm = before.header("last-modified").unwrap().to_string();
        return (lm, current.header("etag").unwrap().to_string());
    }
    panic!("no attempt fetched and changed within one second");
}

/// `--rate` holds over any one-second interval, after a stall too, and
/// `--max-in-flight` holds: five silent phones fill the in-flight limit for Timer F (3.2 s
/// here), and when they time out the NOTIFYs resume at the rate, not in a catch-up burst.
#[test]
fn the_rate_holds_over_every_second_even_after_a_stall() {
    const RATE: usize = 20;
    let s = server();
    let silent = Sipp::start_traced(scenario("uas_silent.xml"), "udp", 5);
    let phones = Sipp::start_traced(scenario("uas_200_linger.xml"), "udp", 200);
    import(&s, 0, 5, silent.port(), "paced");
    import(&s, 5, 100, phones.port(), "paced");
    s.ok(&["resync", "--group", "paced", "--rate", "20", "--max-in-flight", "5", "--confirm-window", "1"]);
    let c = wait_done(&s, "1", Duration::from_secs(45));
    assert_eq!(count(&c, "timeout"), 5, "{}", c["counts"]);
    assert_eq!(count(&c, "not-confirmed"), 100, "{}", c["counts"]);

    let stalled: Vec<f64> = silent.notify_arrivals().iter().map(|n| n.2).collect();
    let answered: Vec<f64> = phones.notify_arrivals().iter().map(|n| n.2).collect();
    assert_eq!((stalled.len(), answered.len()), (5, 100), "every phone got one NOTIFY");
    // The in-flight limit: nothing else left while the five silent phones held it.
    let last_silent = stalled.iter().copied().fold(f64::MIN, f64::max);
    let first_answered = answered.iter().copied().fold(f64::MAX, f64::min);
    assert!(first_answered - last_silent > 2.5, "sent while 5 were in flight: {:.3} s", first_answered - last_silent);
    // The rate, over every one-second interval of the run (+1: both ends of a closed interval).
    let mut all: Vec<f64> = stalled.into_iter().chain(answered.iter().copied()).collect();
    all.sort_by(f64::total_cmp);
    let (busiest, at) = busiest_second(&all);
    assert!(busiest <= RATE + 1, "{busiest} NOTIFYs within one second from {at:.3} (rate {RATE})");
    // And the rate is used: 100 NOTIFYs at 20/s take about 5 s, not much more.
    let span = answered.iter().copied().fold(f64::MIN, f64::max) - first_answered;
    assert!(span < 10.0, "100 NOTIFYs took {span:.1} s at 20/s");
}

/// The most times within any closed one-second interval of sorted `times`, and where it starts.
fn busiest_second(times: &[f64]) -> (usize, f64) {
    let (mut most, mut at, mut first) = (0, 0.0, 0);
    for (last, t) in times.iter().enumerate() {
        while t - times[first] > 1.0 {
            first += 1;
        }
        if last - first + 1 > most {
            (most, at) = (last - first + 1, times[first]);
        }
    }
    (most, at)
}
