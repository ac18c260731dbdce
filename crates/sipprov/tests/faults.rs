//! Faults of the disk under a real `sipprov serve`: a full file system (it recovers by itself,
//! keeping the fetch records made meanwhile) and a read-only data directory (it refuses to
//! start, naming the path).
//!
//! Both need a file system the test controls, a small tmpfs, hence root (as in CI). Without
//! root, or where mounting is not permitted, each test prints why it is skipped and passes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, TestServer};

const YEALINK_UA_A: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:0a";
const YEALINK_UA_B: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:0b";
const YEALINK_UA_C: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:0c";
const COMMON_FILE: &str = "/y000000000066.cfg";

/// A tmpfs mounted on a fresh directory, unmounted on drop (also when the test fails).
struct Tmpfs {
    mountpoint: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`16m`), or says why it cannot and returns `None`.
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIPPED: this test mounts a tmpfs, which needs root");
            return None;
        }
        let mountpoint = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "sipprov-faults"])
            .arg(mountpoint.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { mountpoint }),
            Ok(out) => {
                println!("SKIPPED: mounting a tmpfs is not permitted here: {}", String::from_utf8_lossy(&out.stderr));
                None
            }
            Err(e) => {
                println!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// Remounts read-only (`ro`) or read-write (`rw`).
    fn remount(&self, mode: &str) {
        common::run(Command::new("mount").args(["-o", &format!("remount,{mode}")]).arg(self.path()));
    }

    /// A server whose data directory is a fresh directory on this file system.
    fn server(&self) -> TestServer {
        self.server_with_config("")
    }

    /// The same, with `toml` as its configuration file.
    fn server_with_config(&self, toml: &str) -> TestServer {
        let dir = tempfile::tempdir_in(self.path()).expect("data dir on the tmpfs");
        let config = dir.path().join("sipprov.toml");
        std::fs::write(&config, toml).expect("write the configuration");
        let mut server = TestServer { dir, child: None, http: String::new(), api: String::new() };
        server.spawn(&["--config", config.to_str().expect("utf-8 path")]);
        server
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server process still dying must not keep the mount behind.
        let _ = Command::new("umount").arg("--lazy").arg(self.path()).status();
    }
}

/// Fills the file system holding `dir` to the last byte with one file; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).expect("create the filler");
    let big = vec![0u8; 64 * 1024];
    while f.write_all(&big).is_ok() {}
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.write_all(&[0u8]);
    filler
}

/// One counter or gauge from the admin listener's `/metrics`.
fn metric(s: &TestServer, name: &str) -> u64 {
    let text = common::curl(&format!("http://{}/metrics", s.api), "curl", &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// The device's `fetch` events, as `device log --json` shows them.
fn fetch_events(s: &TestServer, mac: &str) -> Vec<serde_json::Value> {
    let log = s.json(&["device", "log", mac, "--json"]);
    log.as_array().expect("a JSON list").iter().filter(|e| e["kind"] == "fetch").cloned().collect()
}

fn add_device(s: &TestServer, mac: &str, name: &str) {
    add_device_with(s, mac, name, &[]);
}

fn add_device_with(s: &TestServer, mac: &str, name: &str, settings: &[&str]) {
    let display_name = format!("line.1.display_name={name}");
    let mut args = vec!["device", "add", mac, "--vendor", "yealink", "--model", "T46S", "--set", &display_name];
    for setting in settings {
        args.extend(["--set", setting]);
    }
    s.ok(&args);
}

#[test]
fn a_full_disk_is_survived_without_restart_and_loses_no_fetch_record() {
    let Some(fs) = Tmpfs::mount("16m") else { return };
    let mut s = fs.server();
    add_device(&s, "00156500000a", "Alice");
    add_device_with(&s, "00156500000b", "Bob", &["http.username=bob", "http.password=B0b-Secret-1"]);
    // No credentials: only its first-fetch window lets it in, and that window is claimed in the
    // database before the file is sent.
    add_device(&s, "00156500000c", "Cleo");
    assert_eq!(s.fetch(COMMON_FILE, YEALINK_UA_A, &[]).status, 200);
    assert!(eventually(Duration::from_secs(10), || fetch_events(&s, "00156500000a").len() == 1), "{}", s.log());
    let pid = s.child.as_ref().expect("running").id();

    let filler = fill(s.data_dir());
    let outage_began = sipprov_store_now_ms();
    // Phones are still served, from memory.
    for _ in 0..5 {
        assert_eq!(s.fetch(COMMON_FILE, YEALINK_UA_A, &[]).status, 200);
    }
    let own = s.fetch_digest("/00156500000b.cfg", YEALINK_UA_B, "bob:B0b-Secret-1", &[]);
    assert_eq!(own.status, 200);
    assert!(own.text().contains("Bob"), "{}", own.text());
    // A first fetch cannot be recorded, so the window is not used: the request is challenged as if
    // it were closed (fail safe, or a second requester could take the same window once the
    // database is back), and the phone retries.
    assert_eq!(s.fetch("/00156500000c.cfg", YEALINK_UA_C, &[]).status, 401);
    // The writer has tried, failed and keeps the records.
    assert!(
        eventually(Duration::from_secs(10), || metric(&s, "sipprov_store_write_failures_total") > 0),
        "fetch record writes never failed: the disk was not full"
    );
    assert!(metric(&s, "sipprov_fetch_records_pending") > 0);
    // An admin change gets a clear error and changes nothing; reads still answer.
    let err = s.fails(&["device", "set", "00156500000a", "line.1.display_name=Carol"]);
    assert!(err.contains("database write failed: database or disk is full"), "{err}");
    assert_eq!(fetch_events(&s, "00156500000a").len(), 1, "nothing new can be in the store yet");
    let shown = s.json(&["device", "show", "00156500000a", "--json"]);
    assert_eq!(shown["settings"]["line.1.display_name"], "Alice", "{shown}");

    std::fs::remove_file(filler).expect("remove the filler");
    // Without a restart: the same process takes admin writes again ...
    s.ok(&["device", "set", "00156500000a", "line.1.display_name=Carol"]);
    assert!(String::from_utf8_lossy(&s.render("00156500000a", None)).contains("Carol"));
    // ... and the window the outage kept closed is still there, for one fetch.
    let first = s.fetch("/00156500000c.cfg", YEALINK_UA_C, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    assert!(first.text().contains("Cleo"));
    assert_eq!(s.fetch("/00156500000c.cfg", YEALINK_UA_C, &[]).status, 401);
    assert_eq!(s.child.as_mut().expect("running").try_wait().expect("status"), None, "the server must not exit");
    assert_eq!(s.child.as_ref().expect("running").id(), pid);
    // ... and the fetches made during the outage are in the device log. Identical to the one
    // before it and within `[fetch_log] merge_window_ms`, they raise that event's count, and its
    // last time is theirs.
    let a = fetch_events(&s, "00156500000a");
    assert_eq!(a.len(), 1, "six identical fetches within the merge window are one event: {a:?}");
    assert_eq!(a[0]["detail"]["count"], 6, "{a:?}");
    assert!(a[0]["detail"]["last_at"].as_i64().expect("last_at") >= outage_began, "{a:?}");
    let b = fetch_events(&s, "00156500000b");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0]["detail"]["file"], "00156500000b.cfg");
    assert!(b[0]["at"].as_i64().expect("at") >= outage_began);
    assert_eq!(metric(&s, "sipprov_fetch_records_dropped_total"), 0);
    assert_eq!(metric(&s, "sipprov_fetch_records_pending"), 0);
    s.stop();
}

#[test]
fn records_beyond_the_buffer_are_dropped_and_counted_exactly() {
    let Some(fs) = Tmpfs::mount("16m") else { return };
    let mut s = fs.server_with_config("[fetch_log]\nmax_pending = 3\n");
    let macs: Vec<String> = (1..=6).map(|i| format!("00156500001{i}")).collect();
    let ua = |mac: &str| format!("Yealink SIP-T46S 66.86.0.15 {mac}");
    for mac in &macs {
        add_device(&s, mac, "Alice");
    }
    // Rendered (and its content change time written) before the outage, so that the only
    // records made during it are the fetches below.
    assert_eq!(s.fetch(COMMON_FILE, &ua(&macs[0]), &[]).status, 200);
    assert!(eventually(Duration::from_secs(10), || fetch_events(&s, &macs[0]).len() == 1), "{}", s.log());

    let filler = fill(s.data_dir());
    assert_eq!(s.fetch(COMMON_FILE, &ua(&macs[1]), &[]).status, 200);
    assert!(
        eventually(Duration::from_secs(10), || metric(&s, "sipprov_store_write_failures_total") > 0),
        "fetch record writes never failed: the disk was not full"
    );
    // Kept: devices 2, 3 and 4 (the buffer's three records) and a repeat of device 2's fetch,
    // which only counts; dropped: devices 5 and 6.
    for mac in &macs[2..] {
        assert_eq!(s.fetch(COMMON_FILE, &ua(mac), &[]).status, 200, "served during the outage");
    }
    assert_eq!(s.fetch(COMMON_FILE, &ua(&macs[1]), &[]).status, 200);
    assert!(
        eventually(Duration::from_secs(10), || metric(&s, "sipprov_fetch_records_dropped_total") == 2),
        "dropped: {}",
        metric(&s, "sipprov_fetch_records_dropped_total")
    );
    assert_eq!(metric(&s, "sipprov_fetch_records_pending"), 3);

    std::fs::remove_file(filler).expect("remove the filler");
    let counts: Vec<Vec<serde_json::Value>> = macs[1..]
        .iter()
        .map(|mac| fetch_events(&s, mac).iter().map(|e| e["detail"]["count"].clone()).collect())
        .collect();
    let expected: Vec<Vec<serde_json::Value>> = vec![vec![2.into()], vec![1.into()], vec![1.into()], vec![], vec![]];
    assert_eq!(counts, expected, "fetch counts of devices 2 to 6 after the outage");
    assert_eq!(metric(&s, "sipprov_fetch_records_dropped_total"), 2);
    assert_eq!(metric(&s, "sipprov_fetch_records_pending"), 0);
    s.stop();
}

#[test]
fn a_read_only_data_directory_stops_the_start_naming_the_path() {
    let Some(fs) = Tmpfs::mount("16m") else { return };
    let mut s = fs.server();
    add_device(&s, "00156500000a", "Alice");
    s.stop();
    let dir = s.data_dir().to_path_buf();
    fs.remount("ro");
    let out = serve_until_exit(&dir);
    fs.remount("rw");
    assert!(!out.status.success(), "sipprov serve must refuse a read-only data directory");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("data directory {} is not writable: Read-only file system", dir.display());
    assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
}

#[test]
fn a_read_only_database_stops_the_start_naming_the_file() {
    let Some(fs) = Tmpfs::mount("16m") else { return };
    let mut s = fs.server();
    add_device(&s, "00156500000a", "Alice");
    s.stop();
    // The directory stays writable; only the database file is read-only (a bind mount of it,
    // since root ignores mode bits).
    let db = s.data_dir().join("sipprov.db");
    common::run(Command::new("mount").arg("--bind").arg(&db).arg(&db));
    common::run(Command::new("mount").args(["-o", "remount,bind,ro"]).arg(&db));
    let out = serve_until_exit(s.data_dir());
    let _ = Command::new("umount").arg(&db).status();
    assert!(!out.status.success(), "sipprov serve must refuse a read-only database");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "database {} is not writable: database write failed: attempt to write a readonly database",
        db.display()
    );
    assert!(stderr.contains(&expected), "expected {expected:?} in:\n{stderr}");
}

/// Runs `sipprov serve` on `data_dir` and waits for it to exit (killing it after 30 s).
fn serve_until_exit(data_dir: &Path) -> std::process::Output {
    let mut child = Command::new(common::bin())
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sipprov serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn sipprov_store_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64
}
