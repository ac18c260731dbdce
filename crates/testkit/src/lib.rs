//! `sipprov-testkit`: what the workspace's integration tests share; test-only, never published.
//!
//! Its core is [`Sipp`]: the SIPp program (Debian package `sip-tester`) playing a phone, or a
//! whole fleet of phones, as a child process on a free 127.0.0.1 port, killed when dropped. The
//! SIP crate's tests check the stack against it; the `sipprov` binary's tests check check-sync,
//! campaigns and Plug-and-Play end to end with it. Each suite keeps its scenario files and finds
//! them with [`scenario`].
//!
//! This crate depends on no crate of the workspace: its users take it as a dev-dependency, and a
//! dependency back on them would compile a second, incompatible copy of their types. So a
//! transport is a name (`"udp"`, `"tcp"`), and a test that needs a `sipprov_sip::Target` builds
//! it from [`Sipp::addr`] and [`Sipp::transport`].

#![warn(missing_docs)]

pub mod layering;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long SIPp runs at most: enough for the largest fleet a test plays (thousands of calls on
/// a loaded 2-core machine). Tests put their own, shorter limits on [`Sipp::wait`]; this one
/// bounds a SIPp whose test process died without dropping it.
const SIPP_TIMEOUT: &str = "120s";

/// Starts tried before giving up: another process may take the port between [`free_port`] and
/// SIPp binding it.
const START_ATTEMPTS: usize = 5;

/// How often a waiting test looks at SIPp.
const POLL: Duration = Duration::from_millis(50);

/// SIPp's error log, in its log directory.
const ERROR_LOG: &str = "errors.log";

/// SIPp's log of every message, kept only by [`Sipp::start_traced`].
const MESSAGE_LOG: &str = "messages.log";

/// The line of dashes between two messages in SIPp's message log.
const MESSAGE_SEPARATOR: &str = "-----------------------------------------------";

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("bound udp socket").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The scenario file `name` from the first of `dirs` that holds it, so that a suite can use its
/// own scenarios and another crate's.
///
/// # Panics
///
/// When none of `dirs` holds `name`.
pub fn scenario<P: AsRef<Path>>(dirs: &[P], name: &str) -> PathBuf {
    let mut candidates = dirs.iter().map(|dir| dir.as_ref().join(name));
    candidates.find(|path| path.exists()).unwrap_or_else(|| {
        let searched: Vec<&Path> = dirs.iter().map(AsRef::as_ref).collect();
        panic!("no SIPp scenario {name} in {searched:?}")
    })
}

/// A running SIPp, killed on drop.
pub struct Sipp {
    child: Child,
    /// Where SIPp's socket is, on 127.0.0.1.
    pub addr: SocketAddr,
    /// SIPp's transport: `"udp"` or `"tcp"`.
    pub transport: &'static str,
    logs: tempfile::TempDir,
}

impl Sipp {
    /// Starts SIPp as a phone (UAS) running `scenario` for one call over `transport` (`"udp"` or
    /// `"tcp"`, in any case); returns once its socket is ready.
    pub fn start(scenario: impl AsRef<Path>, transport: &str) -> Sipp {
        Sipp::start_calls(scenario, transport, 1)
    }

    /// Starts SIPp as a phone (UAS) for `calls` calls: one SIPp can play a whole fleet.
    pub fn start_calls(scenario: impl AsRef<Path>, transport: &str, calls: usize) -> Sipp {
        Sipp::start_uas(scenario.as_ref(), transport_name(transport), calls, false)
    }

    /// Like [`Sipp::start_calls`], and SIPp logs every message, for [`Sipp::notifies`].
    pub fn start_traced(scenario: impl AsRef<Path>, transport: &str, calls: usize) -> Sipp {
        Sipp::start_uas(scenario.as_ref(), transport_name(transport), calls, true)
    }

    /// Starts SIPp as a client (UAC) running `scenario` once against `remote`, e.g. a phone that
    /// subscribes. Returns at once: SIPp sends first, so nobody waits for its socket.
    pub fn start_uac(scenario: impl AsRef<Path>, transport: &str, remote: SocketAddr) -> Sipp {
        let transport = transport_name(transport);
        let port = free_port();
        let logs = log_dir();
        let mut command = sipp_command(scenario.as_ref(), transport, port, 1, logs.path());
        command.arg(remote.to_string());
        Sipp::spawn(command, port, transport, logs)
    }

    /// SIPp's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Waits for SIPp to finish its calls; returns its exit code (0: every call followed the
    /// scenario).
    ///
    /// # Panics
    ///
    /// When SIPp still runs after `limit`.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(code) = self.exit_code() {
                return code;
            }
            assert!(Instant::now() < deadline, "SIPp still running after {limit:?}");
            std::thread::sleep(POLL);
        }
    }

    /// [`Sipp::wait`] for async tests: it sleeps on tokio's timer, so that the runtime keeps
    /// running the endpoint SIPp talks to (a blocked current-thread runtime would not).
    ///
    /// # Panics
    ///
    /// When SIPp still runs after `limit`.
    pub async fn wait_async(&mut self, limit: Duration) -> i32 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(code) = self.exit_code() {
                return code;
            }
            assert!(tokio::time::Instant::now() < deadline, "SIPp still running after {limit:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// What SIPp logged as errors; empty when every message matched the scenario.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.logs.path().join(ERROR_LOG)).unwrap_or_default()
    }

    /// Every NOTIFY SIPp received, retransmissions included, as (Request-URI user, Call-ID).
    /// Empty unless SIPp was started with [`Sipp::start_traced`].
    pub fn notifies(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.logs.path().join(MESSAGE_LOG)).unwrap_or_default();
        // SIPp separates the messages it logs with a line of dashes.
        let received = log.split(MESSAGE_SEPARATOR).filter(|message| message.contains("message received"));
        received.filter_map(notify_user_and_call_id).collect()
    }

    /// Every distinct NOTIFY SIPp received (retransmissions left out), as (Request-URI user,
    /// Call-ID, seconds): when SIPp logged its first copy, by SIPp's clock (local time of day
    /// with microseconds, on a day count), so only differences between them mean anything.
    /// Empty unless SIPp was started with [`Sipp::start_traced`].
    pub fn notify_arrivals(&self) -> Vec<(String, String, f64)> {
        let log = std::fs::read_to_string(self.logs.path().join(MESSAGE_LOG)).unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for message in log.split(MESSAGE_SEPARATOR).filter(|message| message.contains("message received")) {
            let (Some((user, call_id)), Some(at)) = (notify_user_and_call_id(message), logged_at(message)) else {
                continue;
            };
            if seen.insert(call_id.clone()) {
                out.push((user, call_id, at));
            }
        }
        out
    }

    /// Starts SIPp as a phone, on another free port when the first is taken.
    fn start_uas(scenario: &Path, transport: &'static str, calls: usize, trace_messages: bool) -> Sipp {
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let logs = log_dir();
            let mut command = sipp_command(scenario, transport, port, calls, logs.path());
            if trace_messages {
                command.args(["-trace_msg", "-message_file"]).arg(logs.path().join(MESSAGE_LOG));
            }
            let mut sipp = Sipp::spawn(command, port, transport, logs);
            if sipp.wait_until_bound() {
                return sipp;
            }
        }
        panic!("SIPp did not start ({START_ATTEMPTS} attempts)");
    }

    fn spawn(mut command: Command, port: u16, transport: &'static str, logs: tempfile::TempDir) -> Sipp {
        let child = command.spawn().expect("sipp is installed (Debian package sip-tester)");
        Sipp { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), transport, logs }
    }

    /// Waits until SIPp's socket is bound (listening, for TCP). False when SIPp exited first
    /// (e.g. the port was taken) or never got there.
    fn wait_until_bound(&mut self) -> bool {
        for _ in 0..100 {
            if self.exit_code().is_some() {
                return false;
            }
            if self.is_bound() {
                // SIPp binds before it has loaded everything; a short grace period avoids racing it.
                std::thread::sleep(Duration::from_millis(100));
                return self.exit_code().is_none();
            }
            std::thread::sleep(POLL);
        }
        false
    }

    /// Whether the kernel lists SIPp's socket, read from /proc/net so that no probe packet or
    /// connection disturbs SIPp.
    fn is_bound(&self) -> bool {
        // Socket states in /proc/net: 07 is an unconnected UDP socket, 0A a listening TCP one.
        let (table, state) = if self.transport == "udp" { ("/proc/net/udp", "07") } else { ("/proc/net/tcp", "0A") };
        let local = format!("0100007F:{:04X}", self.port());
        let sockets = std::fs::read_to_string(table).unwrap_or_default();
        sockets.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&state)
        })
    }

    fn exit_code(&mut self) -> Option<i32> {
        let status = self.child.try_wait().expect("poll sipp")?;
        Some(status.code().unwrap_or(-1))
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `transport` in lower case, as [`Sipp::transport`] names it; `sipprov_sip` writes `"UDP"`.
fn transport_name(transport: &str) -> &'static str {
    match transport.to_ascii_lowercase().as_str() {
        "udp" => "udp",
        "tcp" => "tcp",
        _ => panic!("SIPp plays a phone over udp or tcp, not {transport}"),
    }
}

/// A temporary directory for SIPp's logs; SIPp also runs in it, as it writes files where it runs.
fn log_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory for SIPp")
}

/// SIPp on 127.0.0.1:`port` running `scenario` for `calls` calls, logging errors into `logs`.
fn sipp_command(scenario: &Path, transport: &str, port: u16, calls: usize, logs: &Path) -> Command {
    // One socket (u1, t1), as a phone has, rather than one per call.
    let mode = if transport == "udp" { "u1" } else { "t1" };
    let mut command = Command::new("sipp");
    command
        .arg("-sf")
        .arg(scenario)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", mode, "-m", &calls.to_string()])
        .args(["-timeout", SIPP_TIMEOUT, "-timeout_error", "-nostdin", "-trace_err", "-error_file"])
        .arg(logs.join(ERROR_LOG))
        .current_dir(logs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The time at the head of a logged message (` 2026-12-05 08:08:17.061166`, SIPp's local
/// time), in seconds since 1970-01-01 of that clock.
fn logged_at(message: &str) -> Option<f64> {
    let head = message.lines().next()?.trim();
    let (date, time) = head.split_once(' ')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':');
    let (h, min) = (hms.next()?.parse::<f64>().ok()?, hms.next()?.parse::<f64>().ok()?);
    let sec = hms.next()?.parse::<f64>().ok()?;
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days as f64 * 86_400.0 + h * 3_600.0 + min * 60.0 + sec)
}

/// The Request-URI user and Call-ID of a logged message, when it is a NOTIFY.
fn notify_user_and_call_id(message: &str) -> Option<(String, String)> {
    let start = message.find("NOTIFY sip:")? + "NOTIFY sip:".len();
    let user = message[start..].split('@').next().unwrap_or_default().to_string();
    let call_id = message
        .lines()
        .find_map(|line| line.strip_prefix("Call-ID:").or_else(|| line.strip_prefix("i:")))
        .map(|value| value.trim().to_string())
        .unwrap_or_default();
    Some((user, call_id))
}

/// Why `body` is not well-formed XML, as Python's minidom (an independent parser) says; `None`
/// when it is. Golden files and files served to phones are checked with it.
pub fn xml_error(body: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("file.xml");
    std::fs::write(&path, body).expect("write the XML to check");
    let parsed = Command::new("python3")
        .args(["-c", "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])"])
        .arg(&path)
        .output()
        .expect("python3 is installed");
    (!parsed.status.success()).then(|| String::from_utf8_lossy(&parsed.stderr).into_owned())
}

/// Fails unless `body` is well-formed XML ([`xml_error`]), showing the parser's error and the body.
pub fn assert_well_formed_xml(body: impl AsRef<[u8]>) {
    let body = body.as_ref();
    if let Some(error) = xml_error(body) {
        panic!("not well-formed XML: {error}\n{}", String::from_utf8_lossy(body));
    }
}
