//! The durable fetch record under a real `sipprov serve` on SQLite: the fetch events are written
//! every `[fetch_log] interval_ms`, each device's last-seen row only every
//! `last_seen_interval_ms`; a kill -9 in between loses nothing written, since the server
//! replays the fetch events into the last-seen rows when it starts again.

mod common;

use std::time::Duration;

use common::TestServer;

const MAC: &str = "001565000a01";
const UA_OLD: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:0a:01";
const UA_NEW: &str = "Yealink SIP-T46S 66.86.0.20 00:15:65:00:0a:01";

/// A server with open device files, fetch events written every 100 ms and last-seen rows only
/// every 10 minutes (never, within the test, unless something flushes).
fn server() -> TestServer {
    server_with("[fetch_log]\ninterval_ms = 100\nlast_seen_interval_ms = 600000\n")
}

/// A server with open device files and `toml` as its configuration.
fn server_with(toml: &str) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sipprov.toml");
    std::fs::write(&config, toml).expect("config");
    let mut s = TestServer { dir, child: None, http: String::new(), api: String::new() };
    s.spawn(&["--config", config.to_str().expect("utf-8 path")]);
    s.open_device_files();
    s
}

/// One query's rows from the server's SQLite file (the server stopped or not), as JSON.
fn sql(s: &TestServer, query: &str) -> serde_json::Value {
    let script = "import sqlite3,sys,json\nc=sqlite3.connect(sys.argv[1])\n\
                  print(json.dumps(c.execute(sys.argv[2]).fetchall()))\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(s.data_dir().join("sipprov.db"))
        .arg(query)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON rows")
}

#[test]
fn a_kill_between_last_seen_writes_loses_no_fetch_and_no_last_seen() {
    let mut s = server();
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    // Five fetches on the old firmware, then the phone upgrades and fetches twice more.
    for _ in 0..5 {
        assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_NEW, &[]).status, 200);
    }
    // Well past the events' interval, nothing read through the API (a read would flush, and a
    // flush writes the last-seen rows too).
    std::thread::sleep(Duration::from_millis(1500));
    s.stop(); // SIGKILL

    // The events are in the database; the last-seen row is not: what follows is the replay's.
    let stored = sql(&s, &format!("SELECT detail FROM device_events WHERE mac = '{MAC}' AND kind = 'fetch'"));
    assert!(!stored.as_array().unwrap().is_empty(), "the fetch events were written before the kill");
    let seen = sql(&s, &format!("SELECT last_seen_at FROM device_seen WHERE mac = '{MAC}'"));
    assert_eq!(seen, serde_json::json!([]), "the last-seen row waits for its own interval");
    let fetched = sql(&s, &format!("SELECT at FROM device_files WHERE mac = '{MAC}' AND at IS NOT NULL"));
    assert_eq!(fetched, serde_json::json!([]), "so does what it fetched per file");

    s.spawn(&["--config", s.data_dir().join("sipprov.toml").to_str().unwrap()]);
    let events: Vec<serde_json::Value> = s.json(&["device", "log", MAC, "--json"]).as_array().unwrap().clone();
    let fetches: Vec<&serde_json::Value> = events.iter().filter(|e| e["kind"] == "fetch").collect();
    let count: u64 = fetches.iter().map(|e| e["detail"]["count"].as_u64().unwrap_or(1)).sum();
    assert_eq!(count, 7, "every fetch is in the log: {fetches:#?}");
    // A new firmware is a new event: each event's firmware is that of all its fetches.
    let firmwares: Vec<&str> = fetches.iter().map(|e| e["detail"]["firmware"].as_str().unwrap()).collect();
    assert_eq!(firmwares.first(), Some(&"66.86.0.15"));
    assert_eq!(firmwares.last(), Some(&"66.86.0.20"));
    let last_at = fetches.iter().map(|e| e["detail"]["last_at"].as_i64().unwrap_or(e["at"].as_i64().unwrap())).max();

    let check = |s: &TestServer| {
        let device = s.json(&["device", "show", MAC, "--json"]);
        let last = &device["last_fetch"];
        assert_eq!(last["at"].as_i64(), last_at, "last seen is the last fetch's time: {device:#}");
        assert_eq!(last["reported_firmware"], "66.86.0.20", "{device:#}");
        assert_eq!(last["file"], format!("{MAC}.cfg"));
        assert_eq!(last["ip"], "127.0.0.1");
        let listed = s.json(&["device", "list", "--json"]);
        let listed = listed.as_array().unwrap().iter().find(|d| d["mac"] == MAC).cloned().unwrap();
        assert_eq!(listed["last_fetch"]["at"].as_i64(), last_at, "{listed:#}");
    };
    check(&s);
    // The replay restored what the device fetched per file too (a campaign confirms from it).
    s.stop();
    let fetched = sql(&s, &format!("SELECT file, at FROM device_files WHERE mac = '{MAC}' AND at IS NOT NULL"));
    assert_eq!(fetched, serde_json::json!([[format!("{MAC}.cfg"), last_at]]), "replayed fetch of device_files");
    s.spawn(&["--config", s.data_dir().join("sipprov.toml").to_str().unwrap()]);
    // The replay moved the mark: another restart (kill -9 again) shows the same.
    s.stop();
    s.spawn(&["--config", s.data_dir().join("sipprov.toml").to_str().unwrap()]);
    check(&s);
}

#[test]
fn a_flush_writes_the_last_seen_rows_too() {
    let mut s = server();
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    // Reading the log flushes the fetch log.
    let log = s.json(&["device", "log", MAC, "--json"]);
    assert!(log.as_array().unwrap().iter().any(|e| e["kind"] == "fetch"), "{log:#}");
    s.stop();
    let seen = sql(&s, &format!("SELECT last_file, reported_firmware FROM device_seen WHERE mac = '{MAC}'"));
    assert_eq!(seen, serde_json::json!([[format!("{MAC}.cfg"), "66.86.0.15"]]));
}

#[test]
fn a_server_on_one_cpu_runs_the_current_thread_runtime_and_records_every_fetch() {
    // The server inherits this thread's CPU set: one CPU.
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only read
    // and write it; pid 0 is this thread.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    assert!(pinned, "cannot pin the test thread to CPU 0");
    let s = server();
    assert!(s.log().contains("CurrentThread"), "one CPU: the current-thread runtime; log:\n{}", s.log());
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    for _ in 0..3 {
        assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    }
    let log = s.json(&["device", "log", MAC, "--json"]);
    let count: u64 = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "fetch")
        .map(|e| e["detail"]["count"].as_u64().unwrap_or(1))
        .sum();
    assert_eq!(count, 3, "{log:#}");
}

/// The fetch events of `MAC` in the database: (id, at, count, last_at).
fn stored_fetches(s: &TestServer) -> Vec<(i64, i64, i64, Option<i64>)> {
    let rows = sql(
        s,
        &format!(
            "SELECT e.id, e.at, COALESCE(c.count, json_extract(e.detail, '$.count'), 1), \
             COALESCE(c.last_at, json_extract(e.detail, '$.last_at')) \
             FROM device_events e LEFT JOIN fetch_event_counts c ON c.event_id = e.id \
             WHERE e.mac = '{MAC}' AND e.kind = 'fetch' ORDER BY e.id"
        ),
    );
    serde_json::from_value(rows).expect("rows")
}

#[test]
fn identical_fetches_across_intervals_extend_one_event_and_a_kill_keeps_their_last_seen() {
    let mut s = server();
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    let fetch = |s: &TestServer, n: usize| {
        for _ in 0..n {
            assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
        }
    };
    fetch(&s, 2);
    // Reading the log flushes: the event and the last-seen row are written, and the event stays
    // open for the fetches that follow.
    assert!(s.json(&["device", "log", MAC, "--json"]).as_array().unwrap().iter().any(|e| e["kind"] == "fetch"));
    // Five more fetches over several intervals (100 ms), no read between them and the kill.
    fetch(&s, 3);
    std::thread::sleep(Duration::from_millis(400));
    fetch(&s, 2);
    std::thread::sleep(Duration::from_millis(1000));
    s.stop(); // SIGKILL

    let stored = stored_fetches(&s);
    assert_eq!(stored.len(), 1, "one event, raised in place, not one per interval: {stored:?}");
    let (_, first_at, count, last_at) = stored[0];
    assert_eq!(count, 7, "every fetch counted before the kill: {stored:?}");
    let last_at = last_at.expect("last_at of a merged event");
    assert!(last_at > first_at, "{stored:?}");
    // The last-seen row is the flush's, older than the event's last fetch: after the restart the
    // replay must read the event again although it was written before that last-seen write.
    let seen = sql(&s, &format!("SELECT last_seen_at FROM device_seen WHERE mac = '{MAC}'"));
    assert!(seen[0][0].as_i64().unwrap() < last_at, "{seen} vs {last_at}");

    s.spawn(&["--config", s.data_dir().join("sipprov.toml").to_str().unwrap()]);
    let log = s.json(&["device", "log", MAC, "--json"]);
    let fetches: Vec<&serde_json::Value> = log.as_array().unwrap().iter().filter(|e| e["kind"] == "fetch").collect();
    assert_eq!(fetches.len(), 1, "{log:#}");
    assert_eq!(
        (fetches[0]["detail"]["count"].as_i64(), fetches[0]["detail"]["last_at"].as_i64()),
        (Some(7), Some(last_at))
    );
    let device = s.json(&["device", "show", MAC, "--json"]);
    assert_eq!(device["last_fetch"]["at"].as_i64(), Some(last_at), "last seen after kill -9: {device:#}");
    // Fetches after the restart start an event of their own (the writer's open events are gone).
    fetch(&s, 1);
    s.json(&["device", "log", MAC, "--json"]);
    s.stop();
    let stored = stored_fetches(&s);
    assert_eq!(stored.iter().map(|r| r.2).collect::<Vec<_>>(), vec![7, 1], "{stored:?}");
}

#[test]
fn a_device_removed_and_added_again_starts_a_new_event_and_keeps_the_old_one() {
    let mut s = server();
    let add = ["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"];
    s.ok(&add);
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    s.json(&["device", "log", MAC, "--json"]);
    s.ok(&["device", "rm", MAC]);
    s.ok(&add);
    // The same fetch as before: its open event belongs to the removed device (history kept for
    // audit), so the store appends a new one rather than raising the old one's count.
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    std::thread::sleep(Duration::from_millis(1000));
    s.stop(); // SIGKILL
    let stored = stored_fetches(&s);
    assert_eq!(stored.iter().map(|r| r.2).collect::<Vec<_>>(), vec![1, 1], "{stored:?}");
    s.spawn(&["--config", s.data_dir().join("sipprov.toml").to_str().unwrap()]);
    let device = s.json(&["device", "show", MAC, "--json"]);
    assert_eq!(device["last_fetch"]["at"].as_i64(), Some(stored[1].1), "{device:#}");
}

#[test]
fn a_clean_stop_writes_the_fetches_still_gathered_in_memory() {
    // Fetch events written only every minute: without the stop's flush, SIGTERM would lose them.
    let mut s = server_with("[fetch_log]\ninterval_ms = 60000\nlast_seen_interval_ms = 600000\n");
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    // The first fetch renders the file, and the content change time it records is written
    // within 250 ms, with whatever fetches wait by then; the three after it only wait.
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    std::thread::sleep(Duration::from_millis(800));
    for _ in 0..3 {
        assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA_OLD, &[]).status, 200);
    }
    let mut child = s.child.take().expect("running");
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exited = child.wait().expect("wait");
    assert!(exited.success(), "a SIGTERM is a clean stop: {exited:?}\n{}", s.log());
    let stored = stored_fetches(&s);
    let count: i64 = stored.iter().map(|(_, _, count, _)| count).sum();
    assert_eq!(count, 4, "every fetch written on the way out: {stored:?}");
}

/// Fetches `path` over one kept-alive connection until the server closes it or `until`, and
/// returns how many complete 200 answers it read.
fn fetch_until_closed(http: &str, path: &str, until: std::time::Instant) -> u64 {
    use std::io::{BufRead, BufReader, Read, Write};
    let Ok(stream) = std::net::TcpStream::connect(http) else { return 0 };
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let request = format!("GET {path} HTTP/1.1\r\nHost: prov\r\nUser-Agent: {UA_OLD}\r\n\r\n");
    let mut answered = 0;
    while std::time::Instant::now() < until {
        if writer.write_all(request.as_bytes()).is_err() {
            break;
        }
        let (mut status, mut length, mut closing) = (String::new(), 0usize, false);
        if reader.read_line(&mut status).unwrap_or(0) == 0 {
            break;
        }
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return answered;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().expect("length");
            }
            closing |= lower.starts_with("connection: close");
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            break;
        }
        answered += u64::from(status.starts_with("HTTP/1.1 200"));
        if closing {
            break;
        }
    }
    answered
}

#[test]
fn a_clean_stop_under_load_stops_serving_first_and_writes_every_answered_fetch() {
    // Events written only every minute: the stop's write is the only one, and it must hold
    // every fetch the clients were answered, those answered while the server was stopping too.
    let mut s = server_with("[fetch_log]\ninterval_ms = 60000\nlast_seen_interval_ms = 600000\n");
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (http, path) = (s.http.clone(), format!("/{MAC}.cfg"));
            std::thread::spawn(move || fetch_until_closed(&http, &path, until))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1000));
    let mut child = s.child.take().expect("running");
    let asked = std::time::Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exited = child.wait().expect("wait");
    let stopping = asked.elapsed();
    assert!(exited.success(), "a SIGTERM is a clean stop: {exited:?}\n{}", s.log());
    // The clients were still fetching: the stop closed their connections, not the deadline.
    assert!(stopping < Duration::from_secs(20), "stopping took {stopping:?}\n{}", s.log());
    let answered: u64 = clients.into_iter().map(|c| c.join().expect("client")).sum();
    assert!(answered > 100, "the clients fetched while the server ran: {answered}");
    let stored: i64 = stored_fetches(&s).iter().map(|(_, _, count, _)| count).sum();
    assert_eq!(stored, answered as i64, "every answered fetch written on the way out\n{}", s.log());
}
