//! `/metrics` against the real server: phone fetches, a refusal, a scanner throttled, a
//! check-sync NOTIFY to SIPp and a PnP SUBSCRIBE from SIPp, then a scrape parsed by the
//! Prometheus project's own OpenMetrics parser (Python `prometheus_client`), asserting labels
//! and histogram counts; and attacker-controlled text (User-Agent, path, SUBSCRIBE vendor)
//! never becoming a label value.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{curl_with, scenario, TestServer};
use sipprov_testkit::{free_port, Sipp};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const MAX_FAILURES: usize = 5;

/// Parses an OpenMetrics scrape with `prometheus_client.openmetrics.parser` (which refuses a
/// malformed exposition: bad escaping, non-monotonic buckets, a missing `# EOF`) and prints
/// every sample as one JSON object per line.
const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value}))
"#;

/// Debian's Python, where `python3-prometheus-client` installs (scripts/test-deps.sh); a
/// `python3` earlier on the PATH (pyenv) would not see it.
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// One sample of a scrape.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    family: String,
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

/// Scrapes `/metrics`, checks its content type, and parses it with the real parser.
fn scrape(s: &TestServer) -> Vec<Sample> {
    let (fetched, _) = curl_with(&format!("http://{}/metrics", s.api), "prometheus", &[]);
    assert_eq!(fetched.status, 200);
    assert!(
        fetched.header("content-type").is_some_and(|c| c.starts_with("application/openmetrics-text; version=1.0.0")),
        "{:?}",
        fetched.header("content-type")
    );
    let mut parser = Command::new(python())
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    use std::io::Write;
    parser.stdin.take().unwrap().write_all(&fetched.body).unwrap();
    let out = parser.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the scrape (is python3-prometheus-client installed?): {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        fetched.text()
    );
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The value of the sample named `name` whose labels include every pair of `labels`; 0 when
/// there is none.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?} matches several series: {matching:?}");
    matching.first().map_or(0.0, |s| s.value)
}

/// Runs SIPp as a PnP phone sending one SUBSCRIBE for `mac`, giving up after `timeout`
/// seconds; returns its exit code.
fn pnp_subscribe(server: SocketAddr, mac: &str, timeout: u32) -> i32 {
    let logs = tempfile::tempdir().unwrap();
    let inf = logs.path().join("fields.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{mac}\n")).unwrap();
    let mut cmd = Command::new("sipp");
    cmd.arg(server.to_string()).arg("-sf").arg(scenario("pnp_yealink.xml")).arg("-inf").arg(&inf);
    cmd.args(["-i", "127.0.0.1", "-p", &free_port().to_string(), "-t", "u1", "-m", "1"]);
    cmd.args(["-nostdin", "-timeout", &format!("{timeout}s"), "-timeout_error"]);
    let status = cmd
        .current_dir(logs.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp is installed (Debian package sip-tester)");
    status.code().unwrap_or(-1)
}

/// A server with a small failure budget and PnP answering known devices on loopback.
fn server() -> (TestServer, SocketAddr) {
    let config = format!(
        "[security]\nmax_failures = {MAX_FAILURES}\nblock_secs = 60\n\n\
         [pnp]\nmode = \"known\"\nmulticast = \"224.0.1.75:{}\"\ninterfaces = [\"127.0.0.1\"]\n",
        free_port()
    );
    let s = TestServer::start_with_config(&config);
    let sip = s.listening("sip_udp").expect("SIP UDP address").parse().unwrap();
    (s, sip)
}

#[test]
fn fetches_refusals_throttle_notify_and_pnp_are_labelled_and_timed() {
    let (s, sip) = server();
    let mut phone = Sipp::start(scenario("uas_200.xml"), "udp");
    let contact = format!("sip:1001@127.0.0.1:{}", phone.port());
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--contact", &contact]);

    // Two fetches of the device's file, then a conditional one answered 304.
    let first = s.fetch(&format!("/{MAC}.cfg"), UA, &[]);
    assert_eq!(first.status, 200);
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA, &[]).status, 200);
    let etag = first.header("etag").expect("an ETag").to_string();
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA, &[&format!("If-None-Match: {etag}")]).status, 304);

    // A scanner on 127.0.0.2 walks unknown MACs: MAX_FAILURES refusals answered, the next one
    // blocks it (and is answered 429), and the one after is refused as blocked.
    let scanner = |i: usize| {
        let url = format!("http://{}/0015650000{i:02}.cfg", s.http);
        curl_with(&url, "scanner", &["--interface", "127.0.0.2"]).0.status
    };
    let statuses: Vec<u16> = (0..MAX_FAILURES + 2).map(scanner).collect();
    assert_eq!(statuses[MAX_FAILURES - 1], 404, "{statuses:?}");
    assert_eq!(&statuses[MAX_FAILURES..], [429, 429], "{statuses:?}");

    // A check-sync NOTIFY to SIPp through the server.
    let out = s.ok(&["device", "notify", MAC]);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "SIPp: {}", phone.errors());

    // A PnP SUBSCRIBE for the known device: answered with its URL.
    assert_eq!(pnp_subscribe(sip, MAC, 30), 0, "{}", s.log());

    let m = scrape(&s);
    let http = |outcome| {
        value(&m, "sipprov_http_request_duration_seconds_count", &[("vendor", "yealink"), ("outcome", outcome)])
    };
    assert_eq!(http("served"), 2.0);
    assert_eq!(http("not_modified"), 1.0);
    // The histogram's buckets add up: +Inf holds every observation, and sub-second serves are
    // in a finite bucket.
    let inf = value(
        &m,
        "sipprov_http_request_duration_seconds_bucket",
        &[("vendor", "yealink"), ("outcome", "served"), ("le", "+Inf")],
    );
    assert_eq!(inf, 2.0);
    let within_2_5 = value(
        &m,
        "sipprov_http_request_duration_seconds_bucket",
        &[("vendor", "yealink"), ("outcome", "served"), ("le", "2.5")],
    );
    assert_eq!(within_2_5, 2.0);
    // The scanner's requests named no vendor.
    let scanned =
        value(&m, "sipprov_http_request_duration_seconds_count", &[("vendor", "unknown"), ("outcome", "not_found")])
            + value(
                &m,
                "sipprov_http_request_duration_seconds_count",
                &[("vendor", "unknown"), ("outcome", "throttled")],
            );
    assert_eq!(scanned, (MAX_FAILURES + 2) as f64);

    let refusals = |reason| value(&m, "sipprov_http_refusals_total", &[("reason", reason)]);
    assert_eq!(refusals("unknown_device"), (MAX_FAILURES + 1) as f64);
    assert_eq!(refusals("throttled"), 1.0);
    assert_eq!(refusals("wrong_credentials"), 0.0, "every reason is exported, at 0 until it happens");
    assert_eq!(value(&m, "sipprov_sources_blocked_total", &[("protocol", "http")]), 1.0);
    // The unlabelled counter keeps its name and counts every refusal.
    assert_eq!(value(&m, "sipprov_http_refused_total", &[]), (MAX_FAILURES + 2) as f64);
    assert_eq!(value(&m, "sipprov_http_files_served_total", &[]), 2.0);
    assert_eq!(value(&m, "sipprov_devices", &[]), 1.0);

    let notify = &[("vendor", "yealink"), ("result", "ok")];
    assert_eq!(value(&m, "sipprov_notify_duration_seconds_count", notify), 1.0);
    assert!(value(&m, "sipprov_notify_duration_seconds_sum", notify) > 0.0);
    assert_eq!(value(&m, "sipprov_notify_results_total", &[("source", "direct"), ("result", "ok")]), 1.0);
    assert_eq!(value(&m, "sipprov_notify_results_total", &[("source", "campaign"), ("result", "ok")]), 0.0);

    let pnp = &[("vendor", "yealink"), ("outcome", "delivered")];
    assert_eq!(value(&m, "sipprov_pnp_answer_duration_seconds_count", pnp), 1.0, "{}", s.log());
    assert_eq!(value(&m, "sipprov_campaigns_running", &[]), 0.0);
    assert!(value(&m, "sipprov_sip_requests_received_total", &[]) >= 1.0);

    // The dashboard and the alert rules name only metrics this scrape declares (every
    // histogram has an observation by now).
    let exported: BTreeSet<String> = m.iter().map(|x| x.family.clone()).collect();
    assert!(exported.contains("sipprov_pnp_answer_duration_seconds"), "{exported:?}");
    for (what, text) in [("dashboard", read_doc("grafana/sipprov.json")), ("alerts", read_doc("alerts.yml"))] {
        let names = referenced(&text);
        assert!(names.len() >= 8, "{what}: {names:?}");
        let missing: Vec<&String> = names.difference(&exported).collect();
        assert!(missing.is_empty(), "{what} names metrics the server does not export: {missing:?}");
    }
}

/// A file under docs/.
fn read_doc(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn attacker_text_never_becomes_a_label() {
    let (s, sip) = server();
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    let evil_ua = "Evil\"} injected=\"1 Yealink-ish 00:15:65:de:ad:01 zzlabelzz";
    for path in ["/zzlabelzz.cfg", "/zzlabelzz%22%7D.cfg", "/../zzlabelzz", "/0015650000ff.cfg"] {
        let status = curl_with(&format!("http://{}{path}", s.http), evil_ua, &["--path-as-is"]).0.status;
        assert!(status >= 400, "{path}: {status}");
    }
    // A PnP SUBSCRIBE whose MAC is unknown (refused); the SUBSCRIBE's vendor is Yealink's, so
    // the test below also checks that nothing but registry ids appear.
    let _ = pnp_subscribe(sip, "0015650000fe", 3);

    let m = scrape(&s);
    let vendors: BTreeSet<&str> = m.iter().filter_map(|x| x.labels.get("vendor").map(String::as_str)).collect();
    assert!(vendors.contains("unknown"), "{vendors:?}");
    let known = ["unknown", "yealink", "snom", "polycom", "gigaset", "grandstream", "fanvil", "cisco", "audiocodes"];
    for v in &vendors {
        assert!(
            known.contains(v) || v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "unexpected vendor label {v:?}"
        );
    }
    for sample in &m {
        for (k, v) in &sample.labels {
            assert!(!v.contains("zzlabelzz") && !v.contains('"') && !v.contains("Evil"), "{}: {k}={v:?}", sample.name);
            assert!(v.len() <= 32, "{}: {k}={v:?}", sample.name);
        }
    }
    // The series set is bounded: the same scrape after more hostile traffic has no new series.
    let series = |m: &[Sample]| m.iter().map(|x| format!("{}{:?}", x.name, x.labels)).collect::<BTreeSet<_>>();
    let before = series(&m);
    for i in 0..3 {
        let ua = format!("Random{i} zzlabelzz{i}");
        let _ = curl_with(&format!("http://{}/zz{i}labelzz.cfg", s.http), &ua, &[]);
    }
    let after = series(&scrape(&s));
    let new: Vec<&String> = after.difference(&before).filter(|k| !k.starts_with("sipprov_sip_")).collect();
    assert!(new.is_empty(), "hostile requests created series: {new:?}");
    assert!(m.iter().all(|x| !x.family.is_empty()));
}

/// Every `sipprov_*` metric named in `text`, with the suffixes of its samples taken off.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("sipprov_") {
        let name: String =
            text[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
        let family = ["_bucket", "_count", "_sum", "_total"].iter().find_map(|s| name.strip_suffix(s));
        names.insert(family.unwrap_or(&name).to_string());
    }
    names
}

#[test]
fn alert_rules_pass_promtool_and_the_dashboard_is_json() {
    let rules = format!("{}/../../docs/alerts.yml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("promtool").args(["check", "rules", &rules]).output().expect("promtool is installed");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool: {said}");
    assert!(said.contains("SUCCESS"), "{said}");
    let parsed: serde_json::Value =
        serde_json::from_str(&read_doc("grafana/sipprov.json")).expect("the dashboard is JSON");
    let panels = parsed["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    assert!(panels.iter().all(|p| p["targets"].as_array().is_some_and(|t| !t.is_empty())), "every panel queries");
}
