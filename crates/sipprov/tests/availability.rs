//! Availability under connection floods: one host holding 20,000 idle
//! connections against each listener (provisioning HTTP and HTTPS, admin API, SIP over TCP and
//! TLS) must not take the server down. The server runs with a hard descriptor limit well under
//! the flood (and a soft one lower still, which it must raise), so without per-source caps it
//! would run out of descriptors. Meanwhile a fresh client from another address gets its config
//! file within 1 s over HTTP and HTTPS, SIP answers over TCP and TLS, and the admin API answers.
//! Idle and stalled connections are closed after the configured timeouts, and a spent phone
//! budget still leaves the admin API its own share.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;
use common::{bin, TestServer};

const FLOOD: usize = 20_000;
/// The server's descriptor limits (the hard one lower if ours is): the flood is five times more.
const SERVER_SOFT_NOFILE: u64 = 1024;
const SERVER_HARD_NOFILE: u64 = 16_384;

/// This process's hard descriptor limit, which the server and the flood processes inherit.
fn own_hard_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct, which lives for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_max
}

/// The server's hard descriptor limit in these tests.
fn server_hard_nofile() -> u64 {
    SERVER_HARD_NOFILE.min(own_hard_nofile())
}
const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const HTTP_USER: &str = "phone1:Pr0v-Secret-1";
/// The fresh client's address; the flood comes from 127.0.0.1, the timeout probes from 127.0.0.3.
const FRESH: &str = "127.0.0.2";
const PROBE: &str = "127.0.0.3";

/// `sipprov serve` with `toml` and the descriptor limits above, set in the child before exec.
fn start_limited(toml: &str) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sipprov.toml");
    std::fs::write(&config, toml).expect("write config");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--config"]).arg(&config).arg("--data-dir").arg(dir.path());
    cmd.args(["--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"]);
    cmd.env("SIPPROV_LOG", "info,sqlx=warn").stdout(Stdio::null()).stderr(log);
    let hard = server_hard_nofile();
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: SERVER_SOFT_NOFILE.min(hard), rlim_max: hard };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn sipprov serve");
    let mut s = TestServer { dir, child: Some(child), http: String::new(), api: String::new() };
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.listening("api").is_none() {
        assert!(Instant::now() < deadline, "server did not start; log:\n{}", s.log());
        assert!(s.child.as_mut().unwrap().try_wait().unwrap().is_none(), "server exited; log:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    s.http = s.listening("http").unwrap();
    s.api = s.listening("api").unwrap();
    s
}

fn addr(s: &TestServer, what: &str) -> SocketAddr {
    s.listening(what).unwrap_or_else(|| panic!("no {what} listener")).parse().unwrap()
}

/// The attacker's processes: each raises its soft descriptor limit to the hard one, opens its
/// share of the connections from 127.0.0.1 and holds them, silent, until killed. Those the
/// server refuses are reset by it; they stay open here all the same, as an attacker's would.
/// Several processes, as in the issue: one process's descriptors (20,000 here) cannot hold them.
struct Flood {
    holders: Vec<Child>,
}

const HOLDER: &str = r#"
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held, failures = [], 0
while len(held) < n:
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        held.append(s)
    except ConnectionResetError:
        held.append(s)  # refused by the server the moment it was accepted: still ours to hold
    except OSError as e:
        s.close()
        failures += 1
        if failures >= 50:
            print("failed after %d: %s" % (len(held), e), flush=True)
            sys.exit(1)
print("ready %d" % len(held), flush=True)
sys.stdin.read()
"#;

impl Flood {
    /// `n` connections to each of `targets`, `per_process` to a process; returns once all are open.
    fn open(targets: &[SocketAddr], n: usize, per_process: usize) -> Flood {
        let mut holders = Vec::new();
        for target in targets {
            for share in (0..n).step_by(per_process).map(|from| per_process.min(n - from)) {
                let child = Command::new("python3")
                    .args(["-c", HOLDER, &target.ip().to_string(), &target.port().to_string(), &share.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("python3 is installed");
                holders.push(child);
            }
        }
        let mut flood = Flood { holders };
        for holder in &mut flood.holders {
            let mut line = String::new();
            BufReader::new(holder.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
            assert!(line.starts_with("ready"), "a flood process could not hold its connections: {line:?}");
        }
        flood
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        for holder in &mut self.holders {
            let _ = holder.kill();
            let _ = holder.wait();
        }
    }
}

/// A TCP connection from `source`.
fn connect_from(source: &str, target: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(source.parse().unwrap(), 0).into()).unwrap();
    sock.connect_timeout(&target.into(), Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("{source} -> {target}: {e}"));
    sock.into()
}

/// curl from `source`; returns the status (0 when curl failed) and curl's own total time.
fn timed_curl(source: &str, url: &str, extra: &[&str]) -> (u16, f64, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--interface", source, "-A", UA, "-o", "/dev/null"])
        .args(["-w", "%{http_code} %{time_total}"])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(f64::MAX);
    (status, secs, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// An OPTIONS over SIP TCP from `source`; returns the status line and how long it took.
fn sip_tcp_options(source: &str, target: SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut c = connect_from(source, target);
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = c.local_addr().unwrap();
    let msg = format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-avail-1\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=1\r\nTo: <sip:{target}>\r\nCall-ID: avail-1@{local}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    c.write_all(msg.as_bytes()).unwrap();
    let mut buf = [0u8; 2048];
    let n = c.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    (text.lines().next().unwrap_or_default().to_string(), started.elapsed())
}

/// An OPTIONS over SIP TLS from `source`, by Python's ssl (OpenSSL); returns the status line and
/// the time from connect to answer as Python measured it.
fn sip_tls_options(source: &str, target: SocketAddr, ca: &str) -> (String, f64) {
    let script = r#"
import socket, ssl, sys, time
src, host, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
t0 = time.monotonic()
raw = socket.create_connection((host, port), timeout=5, source_address=(src, 0))
c = ctx.wrap_socket(raw, server_hostname=host)
local = "%s:%d" % c.getsockname()[:2]
msg = ("OPTIONS sip:%s:%d SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-avail-2\r\nMax-Forwards: 70\r\n"
  "From: <sip:probe@%s>;tag=2\r\nTo: <sip:%s>\r\nCall-ID: avail-2@%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
  ) % (host, port, local, local, host, local)
c.sendall(msg.encode())
data = c.recv(2048).decode(errors="replace")
print("%s|%f" % (data.split("\r\n")[0], time.monotonic() - t0))
"#;
    let out = Command::new("python3")
        .args(["-c", script, source, &target.ip().to_string(), &target.port().to_string(), ca])
        .output()
        .expect("python3 is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (line, secs) = text
        .trim()
        .split_once('|')
        .unwrap_or_else(|| panic!("SIP TLS OPTIONS failed: {}{}", text, String::from_utf8_lossy(&out.stderr)));
    (line.to_string(), secs.parse().unwrap())
}

/// How long until the server closes `c` (EOF or reset), or `None` if still open after `limit`.
fn closed_after(mut c: TcpStream, opened: Instant, limit: Duration) -> Option<Duration> {
    let mut buf = [0u8; 512];
    loop {
        let left = limit.checked_sub(opened.elapsed())?;
        c.set_read_timeout(Some(left.max(Duration::from_millis(10)))).unwrap();
        match c.read(&mut buf) {
            Ok(0) => return Some(opened.elapsed()),
            Ok(_) => continue, // e.g. a 408 before the close
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if opened.elapsed() >= limit {
                    return None;
                }
            }
            Err(_) => return Some(opened.elapsed()),
        }
    }
}

fn metric(s: &TestServer, name: &str) -> u64 {
    let url = format!("http://{}/metrics", s.api);
    let out = Command::new("curl").args(["-s", "--max-time", "5", "--interface", FRESH, &url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

fn add_phone(s: &TestServer) {
    let (user, pass) = HTTP_USER.split_once(':').unwrap();
    let (u, p) = (format!("http.username={user}"), format!("http.password={pass}"));
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--set", &u, "--set", &p]);
}

/// The server's soft and hard "Max open files".
fn server_nofile(s: &TestServer) -> (u64, u64) {
    let pid = s.child.as_ref().unwrap().id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let nums: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (nums[0], nums[1])
}

#[test]
fn one_host_holding_20000_idle_connections_per_listener_takes_nothing_down() {
    let pki = server_pki();
    let ca = pki.pem("ca");
    // Timeouts longer than the test: the flood's admitted connections stay, so only the caps
    // keep the server available.
    let s = start_limited(&with_tls(
        &pki,
        "[limits]\nheader_timeout_secs = 120\nidle_timeout_secs = 120\nhandshake_timeout_secs = 120\n\
         sip_idle_timeout_secs = 120\n",
    ));
    let hard = server_hard_nofile();
    assert_eq!(server_nofile(&s), (hard, hard), "soft limit raised to the hard one");
    add_phone(&s);
    let targets: Vec<(&str, SocketAddr)> =
        ["http", "https", "api", "sip_tcp", "sip_tls"].into_iter().map(|what| (what, addr(&s, what))).collect();

    // The flood: 20,000 silent connections from 127.0.0.1 against every listener, all held.
    let started = Instant::now();
    let addrs: Vec<SocketAddr> = targets.iter().map(|(_, a)| *a).collect();
    // As many connections per process as a process may hold, with a margin for its own files.
    let per_process = (FLOOD / 2).min(usize::try_from(own_hard_nofile()).unwrap_or(usize::MAX).saturating_sub(64));
    let held = Flood::open(&addrs, FLOOD, per_process.max(1));
    eprintln!("flood of {} connections open after {:?}", 5 * FLOOD, started.elapsed());

    // A fresh phone still gets its file within 1 s, over HTTP and HTTPS.
    let http_url = format!("http://{}/{MAC}.cfg", s.http);
    let (status, secs, err) = timed_curl(FRESH, &http_url, &["--digest", "--user", HTTP_USER]);
    assert_eq!(status, 200, "HTTP fetch during the flood: {err}\n{}", s.log());
    assert!(secs < 1.0, "HTTP fetch took {secs} s during the flood");
    let https_url = format!("https://{}/{MAC}.cfg", addr(&s, "https"));
    let (status, secs, err) = timed_curl(FRESH, &https_url, &["--cacert", &ca, "--digest", "--user", HTTP_USER]);
    assert_eq!(status, 200, "HTTPS fetch during the flood: {err}\n{}", s.log());
    assert!(secs < 1.0, "HTTPS fetch took {secs} s during the flood");
    // SIP over TCP and TLS answer.
    let (line, took) = sip_tcp_options(FRESH, addr(&s, "sip_tcp"));
    assert!(line.starts_with("SIP/2.0 200"), "SIP TCP OPTIONS during the flood: {line:?}\n{}", s.log());
    assert!(took < Duration::from_secs(1), "SIP TCP OPTIONS took {took:?}");
    let (line, secs) = sip_tls_options(FRESH, addr(&s, "sip_tls"), &ca);
    assert!(line.starts_with("SIP/2.0 200"), "SIP TLS OPTIONS during the flood: {line:?}");
    assert!(secs < 1.0, "SIP TLS OPTIONS took {secs} s");
    // The admin API answers, and counted the refusals.
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.trim());
    let (status, _, err) = timed_curl(FRESH, &format!("http://{}/api/v1/devices", s.api), &["-H", &auth]);
    assert_eq!(status, 200, "admin API during the flood: {err}");
    // Each listener admitted its per-source share (the admin API half its budget); the rest
    // were reset at once.
    let admitted = 4 * 256 + 32;
    assert_eq!(metric(&s, "sipprov_connections_refused_per_source_total"), 5 * FLOOD as u64 - admitted);

    drop(held);
    assert!(s.log().contains("connections refused"), "refusals are logged");
    let refusal_lines = s.log().lines().filter(|l| l.contains("connections refused")).count();
    assert!(refusal_lines <= 20, "refusals are logged rate-limited, not per connection: {refusal_lines} lines");
}

#[test]
fn idle_and_stalled_connections_are_closed_on_time() {
    let pki = server_pki();
    let s = start_limited(&with_tls(
        &pki,
        "[limits]\nheader_timeout_secs = 2\nidle_timeout_secs = 4\nhandshake_timeout_secs = 2\n\
         sip_idle_timeout_secs = 8\nsip_message_timeout_secs = 2\n",
    ));
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    // A kept-alive connection waiting for its next request is under the header timeout again.
    let mut kept = connect_from(PROBE, addr(&s, "http"));
    kept.write_all(b"GET /nothing.cfg HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    assert!(kept.read(&mut buf).unwrap() > 0, "a response first");
    // A body that stops coming is under the idle timeout.
    let mut stalled = connect_from(PROBE, addr(&s, "api"));
    let head = format!(
        "POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"mac\":",
        token.trim()
    );
    stalled.write_all(head.as_bytes()).unwrap();
    // A SIP message that stops halfway is under the message timeout.
    let mut trickle = connect_from(PROBE, addr(&s, "sip_tcp"));
    trickle.write_all(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP").unwrap();
    let opened = Instant::now();
    let probes: Vec<(&str, TcpStream, Duration)> = vec![
        ("HTTP header timeout", connect_from(PROBE, addr(&s, "http")), Duration::from_secs(2)),
        ("HTTP keep-alive wait", kept, Duration::from_secs(2)),
        ("admin API header timeout", connect_from(PROBE, addr(&s, "api")), Duration::from_secs(2)),
        ("admin API stalled body", stalled, Duration::from_secs(4)),
        ("HTTPS handshake timeout", connect_from(PROBE, addr(&s, "https")), Duration::from_secs(2)),
        ("SIP TLS handshake timeout", connect_from(PROBE, addr(&s, "sip_tls")), Duration::from_secs(2)),
        ("SIP TCP idle timeout", connect_from(PROBE, addr(&s, "sip_tcp")), Duration::from_secs(8)),
        ("SIP TCP message timeout", trickle, Duration::from_secs(2)),
    ];
    let results: Vec<_> = std::thread::scope(|scope| {
        let waits: Vec<_> = probes
            .into_iter()
            .map(|(what, c, timeout)| scope.spawn(move || (what, timeout, closed_after(c, opened, timeout * 3))))
            .collect();
        waits.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (what, timeout, closed) in results {
        let closed = closed.unwrap_or_else(|| panic!("{what}: still open after {:?}", timeout * 3));
        // Not refused (closed at once), not left open: closed when its timeout passed.
        assert!(
            closed + Duration::from_millis(700) >= timeout && closed <= timeout + Duration::from_secs(3),
            "{what}: closed after {closed:?}, expected about {timeout:?}"
        );
    }
}

/// A CA and a certificate for 127.0.0.1 it signs, for HTTPS and SIP over TLS.
fn server_pki() -> Pki {
    let pki = Pki::new();
    pki.ca("ca").leaf("ca", "server", "IP:127.0.0.1");
    pki
}

/// `limits` with HTTPS and SIP over TLS listeners on `pki`'s server certificate.
fn with_tls(pki: &Pki, limits: &str) -> String {
    let (cert, key) = (pki.pem("server"), pki.key("server"));
    format!(
        "[http.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [sip.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{cert}\"\nkey = \"{key}\"\n{limits}"
    )
}

#[test]
fn a_spent_phone_budget_leaves_the_admin_api_its_share() {
    let s = start_limited("[limits]\nmax_connections = 40\nconnections_per_source = 1000\nheader_timeout_secs = 30\n");
    let held = Flood::open(&[addr(&s, "http")], 300, 300);
    // The phones' budget is spent: a new phone is refused at once, from any address...
    let (status, _, _) = timed_curl(FRESH, &format!("http://{}/{MAC}.cfg", s.http), &[]);
    assert_eq!(status, 0, "the 41st connection must be refused");
    assert!(metric(&s, "sipprov_connections_refused_global_total") >= 260);
    // ...but the admin API has its own: the CLI works.
    let out = s.ok(&["device", "list"]);
    assert!(!out.contains("error"), "{out}");
    assert!(metric(&s, "sipprov_connections_open") >= 40);
    drop(held);
    // Slots come back when the connections close.
    let back = common::eventually(Duration::from_secs(10), || {
        timed_curl(FRESH, &format!("http://{}/{MAC}.cfg", s.http), &[]).0 != 0
    });
    assert!(back, "connections closed, but the budget did not come back");
}
