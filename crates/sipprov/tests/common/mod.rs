//! Test harness: the real `sipprov` binary on ephemeral ports, driven by its own CLI and by curl.

#![allow(dead_code)]

pub(crate) mod campaign;
pub(crate) mod cluster;
pub(crate) mod pki;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `sipprov serve` in a temporary data directory, killed on drop.
pub(crate) struct TestServer {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub http: String,
    pub api: String,
}

/// A SIPp scenario: ours under tests/sipp, or one of the SIP crate's phones.
pub(crate) fn scenario(name: &str) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    sipprov_testkit::scenario(&[format!("{root}/tests/sipp"), format!("{root}/../sip/tests/sipp")], name)
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sipprov")
}

impl TestServer {
    /// A server for tests that are not about access control: device files are open to all
    /// (`security.open_device_files=1` globally), so a plain fetch gets the file as it renders.
    pub(crate) fn start() -> TestServer {
        let server = TestServer::start_closed();
        server.open_device_files();
        server
    }

    /// A server with the default posture: device files need credentials, a certificate or the
    /// first-fetch window.
    pub(crate) fn start_closed() -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = TestServer { dir, child: None, http: String::new(), api: String::new() };
        server.spawn(&[]);
        server
    }

    /// Opens every device's files to anyone (the global setting `security.open_device_files`).
    pub(crate) fn open_device_files(&self) {
        self.ok(&["settings", "set", "security.open_device_files=1"]);
    }

    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts (or restarts) the server process with extra arguments.
    pub(crate) fn spawn(&mut self, extra: &[&str]) {
        let listening = self.data_dir().join("listening.json");
        let _ = std::fs::remove_file(&listening);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir().join("server.log"))
            .expect("log file");
        let child = Command::new(bin())
            .args(["serve", "--data-dir"])
            .arg(self.data_dir())
            .args(["--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"])
            .args(extra)
            .env("SIPPROV_LOG", "debug,sqlx=warn,hyper=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn sipprov serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&listening) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                    self.http = v["http"].as_str().unwrap().to_string();
                    self.api = v["api"].as_str().unwrap().to_string();
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("server exited early ({status}); log:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "server did not start; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("server.log")).unwrap_or_default()
    }

    /// Runs a client command against this server.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--api")
            .arg(format!("http://{}", self.api))
            .arg("--data-dir")
            .arg(self.data_dir())
            .env_remove("SIPPROV_TOKEN")
            .output()
            .expect("run sipprov")
    }

    /// Runs a client command that must succeed; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "sipprov {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a client command that must fail; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "sipprov {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Fetches a path the way a phone does, with curl.
    pub(crate) fn fetch(&self, path: &str, user_agent: &str, headers: &[&str]) -> Fetched {
        curl(&format!("http://{}{}", self.http, path), user_agent, headers)
    }

    /// Fetches a path as a phone with HTTP credentials (`user:password`) does: Digest.
    pub(crate) fn fetch_digest(&self, path: &str, user_agent: &str, user_pass: &str, headers: &[&str]) -> Fetched {
        let mut args = vec!["--digest", "--user", user_pass];
        for h in headers {
            args.extend(["-H", h]);
        }
        curl_with(&format!("http://{}{}", self.http, path), user_agent, &args).0
    }

    pub(crate) fn render(&self, mac: &str, file: Option<&str>) -> Vec<u8> {
        let mut args = vec!["render", mac];
        args.extend(file);
        let out = self.cli(&args);
        assert!(out.status.success(), "render failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What curl saw.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Fetched {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One GET with curl: `-A` sets the User-Agent exactly as a phone sends it.
pub(crate) fn curl(url: &str, user_agent: &str, headers: &[&str]) -> Fetched {
    let dir = tempfile::tempdir().unwrap();
    let (body, head) = (dir.path().join("body"), dir.path().join("head"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-A", user_agent, "-o"]).arg(&body).arg("-D").arg(&head);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("curl is installed");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    parse_curl(&std::fs::read_to_string(head).unwrap(), std::fs::read(body).unwrap_or_default())
}

fn parse_curl(head: &str, body: Vec<u8>) -> Fetched {
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Fetched { status, headers, body }
}

/// Writes a file into a directory, creating parents.
pub(crate) fn write(path: PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Polls until `f` holds or the timeout passes.
pub(crate) fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

// ---- Helpers for the security tests (tests/security.rs) ----

impl TestServer {
    /// [`TestServer::start_closed_with_config`], with device files open to all (tests that are
    /// not about access control).
    pub(crate) fn start_with_config(toml: &str) -> TestServer {
        let server = TestServer::start_closed_with_config(toml);
        server.open_device_files();
        server
    }

    /// Starts a server whose configuration file (in its data directory) holds `toml`, with the
    /// default posture (device files closed).
    pub(crate) fn start_closed_with_config(toml: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("sipprov.toml");
        std::fs::write(&config, toml).expect("write config");
        let mut server = TestServer { dir, child: None, http: String::new(), api: String::new() };
        server.spawn(&["--config", config.to_str().expect("utf-8 path")]);
        server
    }

    /// An address from `listening.json` (e.g. `https`).
    pub(crate) fn listening(&self, what: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.data_dir().join("listening.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v[what].as_str().map(str::to_string)
    }
}

/// One request with curl and extra arguments (`--digest`, `--user`, `--cacert`, `--cert`, …).
/// Returns what curl saw and its verbose trace (stderr), which shows the headers it sent.
pub(crate) fn curl_with(url: &str, user_agent: &str, args: &[&str]) -> (Fetched, String) {
    let dir = tempfile::tempdir().unwrap();
    let (body, head) = (dir.path().join("body"), dir.path().join("head"));
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "10", "-A", user_agent, "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&head)
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let trace = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?} {url} failed: {trace}");
    // With --digest curl writes both the 401 and the final response headers; keep the last.
    let head = std::fs::read_to_string(head).unwrap();
    let last = head.rfind("HTTP/").map_or(head.as_str(), |i| &head[i..]);
    (parse_curl(last, std::fs::read(body).unwrap_or_default()), trace)
}

/// Runs a command that must succeed; returns stdout.
pub(crate) fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// How each recorded fetch was accepted, from `sipprov device log --json`.
pub(crate) fn accepted_by(log_json: &str) -> Vec<String> {
    let events: serde_json::Value = serde_json::from_str(log_json).expect("JSON device log");
    events.as_array().into_iter().flatten().filter_map(|e| e["detail"]["auth"].as_str().map(str::to_string)).collect()
}

/// How many fetches in a `sipprov device log --json` were accepted by `how` (fetches alike
/// within one batch of the fetch log are one event with a count).
pub(crate) fn fetches_accepted_by(log_json: &str, how: &str) -> u64 {
    let events: serde_json::Value = serde_json::from_str(log_json).expect("JSON device log");
    let events = events.as_array().into_iter().flatten();
    events.filter(|e| e["detail"]["auth"] == how).map(|e| e["detail"]["count"].as_u64().unwrap_or(1)).sum()
}
