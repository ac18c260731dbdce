//! Stored files (firmware, ringtones, …) on the provisioning listener: `/files/<name>` and
//! `/files/<MAC12>/<name>`, with RFC 9110 validators, ranges and conditionals, resumable with
//! curl, streamed within a memory bound, under an optional bandwidth cap, and protected like a
//! device's config file when their access is `device`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{curl_with, Fetched, TestServer};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const HTTP_USER: &str = "phone1";
const HTTP_PASSWORD: &str = "Pr0v-Secret-1";

fn sha256_hex(content: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(content))
}

/// Bytes that differ everywhere (a cut or a misplaced range shows in the hash).
fn content(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Adds files to the catalog (name, content, access) as ringtones, through the CLI.
fn add_files(s: &mut TestServer, files: &[(&str, &[u8], &str)]) {
    for (name, bytes, access) in files {
        let path = s.data_dir().join(format!("upload-{name}"));
        std::fs::write(&path, bytes).unwrap();
        let path = path.to_str().unwrap();
        s.ok(&["resource", "add", path, "--kind", "ringtone", "--name", name, "--access", access]);
    }
}

fn add_phone(s: &TestServer) {
    let user = format!("http.username={HTTP_USER}");
    let pass = format!("http.password={HTTP_PASSWORD}");
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--set", &user, "--set", &pass]);
}

fn get(s: &TestServer, path: &str, args: &[&str]) -> Fetched {
    curl_with(&format!("http://{}{path}", s.http), UA, args).0
}

/// The device's history events of kind `download`, oldest first.
fn downloads(s: &TestServer) -> Vec<serde_json::Value> {
    let log: serde_json::Value = serde_json::from_str(&s.ok(&["device", "log", MAC, "--json"])).unwrap();
    let mut events: Vec<_> = log.as_array().unwrap().iter().filter(|e| e["kind"] == "download").cloned().collect();
    events.sort_by_key(|e| e["at"].as_i64());
    events
}

#[test]
fn head_ranges_if_range_and_conditionals_follow_rfc_9110() {
    let mut s = TestServer::start();
    let bytes = content(300_000);
    add_files(&mut s, &[("ring(1).wav", &bytes, "open")]);
    let etag = format!("\"{}\"", sha256_hex(&bytes));

    let head = get(&s, "/files/ring(1).wav", &["-I"]);
    assert_eq!(head.status, 200, "{}", s.log());
    // (curl -I prints the headers where the body would go: no file bytes follow them.)
    assert!(head.body.len() < 1000, "HEAD sent a body");
    assert_eq!(head.header("content-length"), Some("300000"));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(head.header("accept-ranges"), Some("bytes"));
    let last_modified = head.header("last-modified").expect("Last-Modified").to_string();
    assert!(httpdate_ok(&last_modified), "{last_modified}");

    let whole = get(&s, "/files/ring%281%29.wav", &[]);
    assert_eq!((whole.status, sha256_hex(&whole.body)), (200, sha256_hex(&bytes)));
    assert_eq!(get(&s, "/yealink/files/ring(1).wav", &["-I"]).status, 200, "under any base directory");

    let part = get(&s, "/files/ring(1).wav", &["-r", "1000-1999"]);
    assert_eq!(part.status, 206);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/300000"));
    assert_eq!(part.body, &bytes[1000..2000]);
    let tail = get(&s, "/files/ring(1).wav", &["-r", "-100"]);
    assert_eq!((tail.status, &tail.body[..]), (206, &bytes[299_900..]));

    // If-Range: our strong ETag or exact date keep the range; anything else gets the whole file.
    let if_range = format!("If-Range: {etag}");
    let kept = get(&s, "/files/ring(1).wav", &["-r", "5-9", "-H", &if_range]);
    assert_eq!((kept.status, &kept.body[..]), (206, &bytes[5..10]));
    let by_date = format!("If-Range: {last_modified}");
    assert_eq!(get(&s, "/files/ring(1).wav", &["-r", "5-9", "-H", &by_date]).status, 206);
    let stale = get(&s, "/files/ring(1).wav", &["-r", "5-9", "-H", "If-Range: \"0123\""]);
    assert_eq!((stale.status, stale.body.len()), (200, 300_000));

    let past = get(&s, "/files/ring(1).wav", &["-r", "300000-"]);
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */300000"));

    let inm = format!("If-None-Match: {etag}");
    let not_modified = get(&s, "/files/ring(1).wav", &["-H", &inm]);
    assert_eq!((not_modified.status, not_modified.body.len()), (304, 0));
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    let ims = format!("If-Modified-Since: {last_modified}");
    assert_eq!(get(&s, "/files/ring(1).wav", &["-H", &ims]).status, 304);

    // Several ranges: the whole file (documented choice, RFC 9110 §14.2).
    let multi = get(&s, "/files/ring(1).wav", &["-r", "0-1,5-6"]);
    assert_eq!((multi.status, multi.body.len()), (200, 300_000));

    assert_eq!(get(&s, "/files/nope.wav", &[]).status, 404);

    // Seven GETs got a body (HEADs, 304s, the 416 and the 404 did not), with these many bytes.
    let metrics = curl_with(&format!("http://{}/metrics", s.api), "curl", &[]).0.text();
    let counter = |name: &str| metrics.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).map(str::to_string);
    assert_eq!(counter("sipprov_file_downloads_total").as_deref(), Some("7"), "{metrics}");
    let sent = 300_000 + 1000 + 100 + 5 + 5 + 300_000 + 300_000;
    assert_eq!(counter("sipprov_file_bytes_served_total"), Some(sent.to_string()));
}

fn httpdate_ok(text: &str) -> bool {
    text.ends_with(" GMT") && text.len() == 29
}

#[test]
fn a_cut_download_resumes_with_curl_to_identical_bytes_and_both_are_in_the_history() {
    // The server's cap (1 MB/s) makes the download slow enough to cut: this machine's curl
    // (7.88) does not hold its own `--limit-rate` on a fast loopback download.
    let mut s = TestServer::start_with_config("[files]\nbandwidth_bytes_per_sec = 1000000\n");
    add_phone(&s);
    let bytes = content(3 * 1024 * 1024);
    add_files(&mut s, &[("fw.rom", &bytes, "open")]);
    let out = s.data_dir().join("download");
    let url = format!("http://{}/files/fw.rom", s.http);

    // A slow download, cut after a second and a half.
    let mut slow = Command::new("curl")
        .args(["-sS", "--limit-rate", "500k", "-A", UA, "-o"])
        .arg(&out)
        .arg(&url)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    slow.kill().unwrap();
    slow.wait().unwrap();
    let cut = std::fs::metadata(&out).unwrap().len();
    assert!(cut > 0 && cut < bytes.len() as u64, "cut at {cut}");

    let resumed = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-C", "-", "-w", "%{http_code}", "-A", UA, "-o"])
        .arg(&out)
        .arg(&url)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(String::from_utf8_lossy(&resumed.stdout), "206");
    assert_eq!(sha256_hex(&std::fs::read(&out).unwrap()), sha256_hex(&bytes));

    // The User-Agent named a known device: both downloads are in its history, not as fetches.
    assert!(common::eventually(Duration::from_secs(5), || downloads(&s).len() == 2), "{:?}", downloads(&s));
    let events = downloads(&s);
    assert_eq!(events[0]["detail"]["complete"], false);
    assert_eq!(events[1]["detail"]["status"], 206);
    assert_eq!(events[1]["detail"]["first"].as_u64(), Some(cut));
    assert_eq!(events[1]["detail"]["bytes"].as_u64(), Some(bytes.len() as u64 - cut));
    assert_eq!(events[1]["detail"]["complete"], true);
    let fetches = s.ok(&["device", "log", MAC, "--json"]);
    assert!(!fetches.contains("\"kind\":\"fetch\""), "a download is not a config fetch: {fetches}");
}

#[test]
fn a_device_file_is_served_only_with_the_devices_own_authentication() {
    let mut s = TestServer::start_closed();
    add_phone(&s);
    let bytes = content(10_000);
    add_files(&mut s, &[("private.wav", &bytes, "device"), ("public.wav", &content(100), "open")]);
    let upper = MAC.to_uppercase();
    let device_path = format!("/files/{upper}/private.wav");
    let user = format!("{HTTP_USER}:{HTTP_PASSWORD}");
    let auth = ["--digest", "--user", user.as_str()];

    // Without credentials: the challenge a config file gets, for a name that exists or not,
    // and for a MAC the server does not know.
    let anonymous = get(&s, &device_path, &[]);
    assert_eq!(anonymous.status, 401, "{}", s.log());
    assert!(anonymous.header("www-authenticate").is_some());
    assert_eq!(get(&s, &format!("/files/{upper}/nothing.wav"), &[]).status, 401);
    let stranger = curl_with(&format!("http://{}/files/001565000001/private.wav", s.http), "curl", &[]).0;
    assert_eq!(stranger.status, anonymous.status, "an unknown MAC answers like a known one");

    let served = get(&s, &device_path, &auth);
    assert_eq!((served.status, sha256_hex(&served.body)), (200, sha256_hex(&bytes)), "{}", s.log());
    assert_eq!(served.header("cache-control"), Some("private, no-cache"));
    let wrong = ["--digest", "--user", "phone1:wrong"];
    assert_eq!(get(&s, &device_path, &wrong).status, 401);

    // Path confusion: a device file under the open path, an open file under a device path.
    assert_eq!(get(&s, "/files/private.wav", &[]).status, 404);
    assert_eq!(get(&s, "/files/private.wav", &auth).status, 404);
    assert_eq!(get(&s, &format!("/files/{upper}/public.wav"), &auth).status, 404);
    assert_eq!(get(&s, "/files/public.wav", &[]).status, 200);

    // A User-Agent naming another device than the path: refused, as for a config file.
    let other =
        curl_with(&format!("http://{}{device_path}", s.http), "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:09", &auth);
    assert_eq!(other.0.status, 403);
    assert!(common::eventually(Duration::from_secs(5), || downloads(&s)
        .iter()
        .any(|e| e["detail"]["auth"].as_str().is_some_and(|a| a.starts_with("digest")))));
    assert!(!s.log().contains(HTTP_PASSWORD));
}

#[test]
fn the_bandwidth_cap_holds_across_downloads_and_spares_config_files() {
    // 1 MB/s for everything: three parallel downloads of 1 MB each take about 3 s.
    let mut s = TestServer::start_with_config("[files]\nbandwidth_bytes_per_sec = 1000000\n");
    add_phone(&s);
    let bytes = content(1_000_000);
    add_files(&mut s, &[("capped.rom", &bytes, "open")]);
    let url = format!("http://{}/files/capped.rom", s.http);
    let started = Instant::now();
    let downloads: Vec<_> = (0..3)
        .map(|_| {
            Command::new("curl")
                .args(["-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{size_download}", &url])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile a config file is not held up behind them.
    std::thread::sleep(Duration::from_millis(300));
    let config_started = Instant::now();
    assert_eq!(get(&s, &format!("/{MAC}.cfg"), &[]).status, 200);
    let config_took = config_started.elapsed();
    for d in downloads {
        let out = d.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1000000");
    }
    let took = started.elapsed();
    // 3 MB at 1 MB/s less the burst (0.1 s worth) is 2.9 s at least; noise only slows things.
    assert!(took >= Duration::from_millis(2700), "the cap let 3 MB through in {took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert!(config_took < Duration::from_secs(2), "a config file waited {config_took:?} behind the cap");
}

#[test]
fn two_hundred_stalled_downloads_hold_bounded_memory() {
    let mut s = TestServer::start();
    let bytes = content(16 * 1024 * 1024);
    add_files(&mut s, &[("big.rom", &bytes, "open")]);
    let pid = s.child.as_ref().unwrap().id();
    // Warm up: one whole download, so the baseline includes the runtime's blocking threads.
    assert_eq!(sha256_hex(&get(&s, "/files/big.rom", &[]).body), sha256_hex(&bytes));
    let before = status_kb(pid, "VmRSS");
    // 200 clients ask for the file and read only its first bytes, with small receive buffers so
    // the kernel cannot take the file off the server's hands.
    let script = r#"
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = []
for _ in range(200):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect((host, int(port)))
    s.sendall(b"GET /files/big.rom HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
for s in socks:
    assert s.recv(4096).startswith(b"HTTP/1.1 200"), "no answer"
print("stalled", flush=True)
time.sleep(6)
"#;
    let client = Command::new("python3").args(["-c", script, &s.http]).stdout(Stdio::piped()).spawn().unwrap();
    let mut peak = before;
    let deadline = Instant::now() + Duration::from_secs(5);
    std::thread::sleep(Duration::from_millis(500));
    while Instant::now() < deadline {
        peak = peak.max(status_kb(pid, "VmRSS"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = client.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("stalled"), "the clients did not all get an answer");
    // Each stalled download may hold hyper's write limit (64 KiB) plus one 64 KiB chunk, and
    // a little for its connection: 200 × 256 KiB = 50 MB is a generous ceiling. Reading the
    // file whole would need 200 × 16 MB, and hyper's default buffering 200 × ~460 KB = 90 MB.
    let growth_mb = (peak.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("RSS growth with 200 stalled downloads: {growth_mb:.1} MB");
    assert!(growth_mb < 50.0, "RSS grew by {growth_mb:.1} MB serving 200 stalled downloads");
}

/// A field of /proc/PID/status, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn https_serves_the_same_bytes_and_ranges() {
    let pki = common::pki::Pki::new();
    pki.ca("server-ca").leaf("server-ca", "server", "IP:127.0.0.1");
    let mut s = TestServer::start_with_config(&format!(
        "[http.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
        pki.pem("server"),
        pki.key("server")
    ));
    let bytes = content(700_000);
    add_files(&mut s, &[("tls.rom", &bytes, "open")]);
    let url = format!("https://{}/files/tls.rom", s.listening("https").expect("HTTPS listener"));
    let ca = pki.pem("server-ca");
    let whole = curl_with(&url, UA, &["--cacert", &ca]).0;
    assert_eq!((whole.status, sha256_hex(&whole.body)), (200, sha256_hex(&bytes)), "{}", s.log());
    let part = curl_with(&url, UA, &["--cacert", &ca, "-r", "123456-654321"]).0;
    assert_eq!((part.status, &part.body[..]), (206, &bytes[123_456..=654_321]));
}
