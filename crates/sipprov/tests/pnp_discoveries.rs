//! PnP discoveries against the real binary: SIPp phones subscribing in `pnp.mode = "any"` are
//! discovered and listed with what they reported, approved into a group, or rejected (and
//! discovered again when they subscribe again), through the CLI and the admin API.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, scenario, TestServer};
use sipprov_testkit::free_port;

/// A server in `any` mode, its multicast group on a port of its own; returns it with its SIP
/// UDP address.
fn server() -> (TestServer, SocketAddr) {
    let config = format!(
        "[pnp]\nmode = \"any\"\nmulticast = \"224.0.1.75:{}\"\ninterfaces = [\"127.0.0.1\"]\nurl = \"http://prov.test/\"\n",
        free_port()
    );
    let s = TestServer::start_closed_with_config(&config);
    let sip = s.listening("sip_udp").expect("SIP UDP address").parse().unwrap();
    (s, sip)
}

/// SIPp as a Yealink phone subscribing once for `mac` from `port`; asserts it got its NOTIFY.
fn subscribe(sip: SocketAddr, mac: &str, port: u16) {
    let logs = tempfile::tempdir().unwrap();
    let inf = logs.path().join("fields.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{mac}\n")).unwrap();
    let status = Command::new("sipp")
        .arg(sip.to_string())
        .arg("-sf")
        .arg(scenario("pnp_yealink.xml"))
        .arg("-inf")
        .arg(&inf)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1", "-m", "1"])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .current_dir(logs.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp is installed (Debian package sip-tester)");
    assert_eq!(status.code(), Some(0), "SIPp PnP phone for {mac}");
}

fn waiting(s: &TestServer) -> Vec<serde_json::Value> {
    s.json(&["pnp", "list", "--json"]).as_array().expect("a list").clone()
}

fn listed(s: &TestServer, mac: &str) -> Option<serde_json::Value> {
    waiting(s).into_iter().find(|d| d["mac"] == mac)
}

#[test]
fn discovered_devices_are_listed_approved_into_a_group_or_rejected() {
    let (s, sip) = server();
    assert!(s.ok(&["pnp", "list"]).contains("no discovered devices waiting"));
    let (mac, port) = ("001565000099", free_port());
    subscribe(sip, mac, port);
    assert!(eventually(Duration::from_secs(5), || listed(&s, mac).is_some_and(|d| !d["last_seen"].is_null())));
    let first = listed(&s, mac).unwrap();
    assert_eq!(first["vendor"], "yealink");
    assert_eq!(first["model"], "T46S");
    assert_eq!(first["firmware"], "66.86.0.15");
    assert_eq!(first["source"], format!("127.0.0.1:{port}"));
    assert_eq!(first["first_seen"], first["last_seen"]);
    let table = s.ok(&["pnp", "list"]);
    assert!(table.contains(mac) && table.contains("66.86.0.15") && table.contains("T46S"), "{table}");

    // A second SUBSCRIBE, from another port: the latest time and source, the first time kept.
    std::thread::sleep(Duration::from_millis(20));
    let port2 = free_port();
    subscribe(sip, mac, port2);
    assert!(
        eventually(Duration::from_secs(5), || listed(&s, mac).is_some_and(|d| d["last_seen"] != first["last_seen"]))
    );
    let again = listed(&s, mac).unwrap();
    assert_eq!(again["first_seen"], first["first_seen"]);
    assert!(again["last_seen"].as_i64() > first["last_seen"].as_i64(), "{again}");
    assert_eq!(again["source"], format!("127.0.0.1:{port2}"));

    // Approval into a group that does not exist, or into the discovered group, is refused.
    let e = s.fails(&["pnp", "approve", mac, "--group", "ofice"]);
    assert!(e.contains("group \"ofice\" does not exist"), "{e}");
    let e = s.fails(&["pnp", "approve", mac, "--group", "discovered"]);
    assert!(e.contains("discovered group itself"), "{e}");
    assert!(listed(&s, mac).is_some(), "a refused approval changes nothing");

    s.ok(&["group", "set", "office", "sip.notify_reboot=0"]);
    let out = s.ok(&["pnp", "approve", "00:15:65:00:00:99", "--group", "office"]);
    assert!(out.contains("approved 001565000099 into group office"), "{out}");
    let shown = s.json(&["device", "show", mac, "--json"]);
    assert_eq!(shown["group"], "office");
    assert!(listed(&s, mac).is_none());
    // No longer waiting: neither approved again nor rejected.
    let e = s.fails(&["pnp", "reject", mac]);
    assert!(e.contains("not waiting in the discovered group"), "{e}");
    s.ok(&["device", "show", mac]);
    // It keeps being answered as a known device, and does not come back to the list.
    subscribe(sip, mac, free_port());
    assert!(listed(&s, mac).is_none());

    // Rejection removes the device; subscribing again discovers it again.
    let other = "001565000098";
    subscribe(sip, other, free_port());
    assert!(eventually(Duration::from_secs(5), || listed(&s, other).is_some()));
    let out = s.ok(&["pnp", "reject", other]);
    assert!(out.contains("rejected 001565000098"), "{out}");
    assert!(!s.cli(&["device", "show", other]).status.success());
    assert!(listed(&s, other).is_none());
    subscribe(sip, other, free_port());
    assert!(eventually(Duration::from_secs(5), || listed(&s, other).is_some_and(|d| !d["last_seen"].is_null())));
    assert_eq!(s.json(&["device", "show", other, "--json"])["group"], "discovered");

    // Approval and rejection are in the device's audit trail, by the token that made them.
    let approved = s.json(&["audit", "--device", mac, "--json"]);
    assert!(
        approved.as_array().unwrap().iter().any(|e| e["action"] == "device.patch" && e["actor"] == "admin"),
        "{approved}"
    );
    let rejected = s.json(&["audit", "--device", other, "--json"]);
    assert!(
        rejected.as_array().unwrap().iter().any(|e| e["action"] == "device.delete" && e["actor"] == "admin"),
        "{rejected}"
    );
}

#[test]
fn the_api_answers_problems_naming_the_field() {
    let (s, _) = server();
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).expect("the API token file");
    let auth = format!("Authorization: Bearer {}", token.trim());
    let url = format!("http://{}/api/v1/pnp/discoveries/001565000077/approve", s.api);
    let (fetched, _) = common::curl_with(
        &url,
        "test",
        &["-X", "POST", "-H", &auth, "-H", "Content-Type: application/json", "--data", r#"{"group":"office"}"#],
    );
    assert_eq!(fetched.status, 404);
    let problem: serde_json::Value = serde_json::from_slice(&fetched.body).unwrap();
    assert_eq!(problem["field"], "mac", "{problem}");
    let (fetched, _) = common::curl_with(
        &url,
        "test",
        &["-X", "POST", "-H", &auth, "-H", "Content-Type: application/json", "--data", r#"{"grup":"office"}"#],
    );
    assert_eq!(fetched.status, 422, "{}", fetched.text());
    let problem: serde_json::Value = serde_json::from_slice(&fetched.body).unwrap();
    assert_eq!(problem["field"], "grup", "{problem}");
    let (fetched, _) = common::curl_with(&format!("http://{}/api/v1/pnp/discoveries", s.api), "test", &[]);
    assert_eq!(fetched.status, 401, "the list needs the token");
}
