//! Fleet re-sync campaigns against SIPp phones: pacing, outcomes, confirmation, crash resumption.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

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

/// Imports `count` Yealink devices whose contacts point at `port`, MACs 0015650xxxxx from `first`.
fn import(s: &TestServer, first: u32, count: u32, port: u16, group: &str) {
    let mut csv = String::from("mac,vendor,model,group,contact,line.1.username\n");
    for i in first..first + count {
        csv.push_str(&format!("001565{i:06x},yealink,T46S,{group},sip:{}@127.0.0.1:{port},{}\n", 10000 + i, 10000 + i));
    }
    let path = s.data_dir().join(format!("devices-{first}.csv"));
    write(path.clone(), &csv);
    s.ok(&["device", "import", path.to_str().unwrap()]);
}

fn campaign(s: &TestServer, id: &str) -> Value {
    s.json(&["campaign", "show", id, "--json"])
}

fn count(c: &Value, outcome: &str) -> u64 {
    c["counts"][outcome].as_u64().unwrap_or(0)
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
    assert!(s.ok(&["device", "log", "001565000007"]).contains("notify"));
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
