//! The SIP listener against a hostile host, over real UDP sockets on loopback: an
//! OPTIONS flood from one source (memory and the transaction table stay bounded, another source
//! is still answered), malformed datagrams trying to forge or paint log lines, a Via naming a
//! third party in `received=` or 60 KB long, and the plain `sipprov` product name.
//!
//! 127.0.0.2 and other 127/8 addresses are distinct sources on Linux loopback.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, TestServer};

/// The server's UDP SIP address.
fn sip_udp(s: &TestServer) -> SocketAddr {
    s.listening("sip_udp").expect("sip_udp in listening.json").parse().expect("address")
}

/// A UDP socket on a loopback address of its own, with a read timeout.
fn socket(ip: &str) -> UdpSocket {
    let sock = UdpSocket::bind(format!("{ip}:0")).expect("bind a loopback source");
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    sock
}

fn options(from: SocketAddr, branch: &str, via_params: &str) -> String {
    format!(
        "OPTIONS sip:sipprov@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK{branch}{via_params}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:ping@{ip}>;tag=t{branch}\r\nTo: <sip:sipprov@127.0.0.1>\r\n\
         Call-ID: {branch}@{ip}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        ip = from.ip()
    )
}

/// Sends an OPTIONS from `sock` until a response arrives (UDP may lose one); returns it.
fn ping(sock: &UdpSocket, server: SocketAddr, via_params: &str) -> Option<String> {
    static PINGS: AtomicUsize = AtomicUsize::new(0);
    let me = sock.local_addr().unwrap();
    for _ in 0..10 {
        let branch = format!("ping{}x{}", PINGS.fetch_add(1, Ordering::Relaxed), me.port());
        let msg = options(me, &branch, via_params);
        sock.send_to(msg.as_bytes(), server).unwrap();
        if let Some(text) = recv(sock, Duration::from_millis(500)) {
            return Some(text);
        }
    }
    None
}

/// Whether an OPTIONS from `sock` gets a 200 within `within`: right after a flood the
/// application's queue may still be full (503, as RFC 3261 §21.5.4 intends), not for long.
fn answered_ok(sock: &UdpSocket, server: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ping(sock, server, ";rport").is_some_and(|r| r.starts_with("SIP/2.0 200")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn recv(sock: &UdpSocket, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One value from the admin listener's `/metrics` (no token needed).
fn metric(s: &TestServer, name: &str) -> u64 {
    for _ in 0..3 {
        if let Some(value) = metric_at(&s.api, name) {
            return value;
        }
    }
    panic!("{name} not in /metrics");
}

/// `None` when the admin listener did not answer in time (the watcher samples during a flood).
fn metric_at(api: &str, name: &str) -> Option<u64> {
    let mut conn = TcpStream::connect(api).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// The server process's resident memory, in KiB.
fn rss_kib(s: &TestServer) -> u64 {
    let pid = s.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value")
}

/// Peaks seen while a flood runs: resident memory and the server-transaction table.
struct Watch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, u64)>,
}

impl Watch {
    fn start(s: &TestServer) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let pid = s.child.as_ref().unwrap().id();
        let api = s.api.clone();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut rss, mut table) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let now = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));
                rss = rss.max(now.unwrap_or(0));
                table = table.max(metric_at(&api, "sipprov_sip_server_transactions").unwrap_or(0));
                std::thread::sleep(Duration::from_millis(100));
            }
            (rss, table)
        });
        Watch { stop, thread }
    }

    /// Peak RSS (KiB) and peak table size.
    fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("watcher")
    }
}

/// Sends `count` OPTIONS, each a new transaction, from one socket at about `per_sec`; returns
/// how long it took. Send errors (a full buffer) are ignored, as a flooder would.
fn flood(from: &UdpSocket, server: SocketAddr, count: usize, per_sec: usize) -> Duration {
    let me = from.local_addr().unwrap();
    let template = options(me, "BRANCH0000000", "");
    let start = Instant::now();
    let batch = per_sec / 100;
    for i in 0..count {
        let msg = template.replace("BRANCH0000000", &format!("{i:013}"));
        let _ = from.send_to(msg.as_bytes(), server);
        if i % batch == batch - 1 {
            let due = start + Duration::from_secs_f64((i + 1) as f64 / per_sec as f64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    }
    start.elapsed()
}

/// The bound on resident memory growth under a flood, in KiB.
const MAX_GROWTH_KIB: u64 = 50 * 1024;

#[test]
fn an_options_flood_from_one_source_is_rationed_and_memory_stays_bounded() {
    let s = TestServer::start();
    let server = sip_udp(&s);
    let other = socket("127.0.0.2");
    assert!(ping(&other, server, ";rport").is_some_and(|r| r.starts_with("SIP/2.0 200")), "{}", s.log());
    std::thread::sleep(Duration::from_millis(500));
    let baseline = rss_kib(&s);

    let watch = Watch::start(&s);
    let flooder = socket("127.0.0.1");
    let took = flood(&flooder, server, 300_000, 100_000);
    std::thread::sleep(Duration::from_secs(1));
    let (peak_rss, peak_table) = watch.finish();

    let received = metric(&s, "sipprov_sip_requests_received_total");
    let limited = metric(&s, "sipprov_sip_requests_rate_limited_total");
    let growth = peak_rss.saturating_sub(baseline);
    eprintln!("flood of 300000 in {took:?}: {received} requests taken, {limited} dropped at the rate limit, table peak {peak_table}, RSS {baseline} KiB + {growth} KiB");
    assert!(growth < MAX_GROWTH_KIB, "RSS grew by {growth} KiB (from {baseline} KiB)");
    assert!(limited > 10_000, "the per-source rate dropped most of the flood: {limited}");
    // Burst 200, then 100/s: what one source gets through is bounded by time, not by its rate.
    let allowed = 200 + 100 * (took.as_secs() + 3) + 10;
    assert!(received <= allowed, "{received} requests taken from one source in {took:?} (at most {allowed})");
    assert!(peak_table <= allowed, "table peaked at {peak_table}");

    // Another source is answered at once; the flooding one again after its bucket refills.
    assert!(answered_ok(&other, server, Duration::from_secs(2)), "127.0.0.2 answered at once after the flood");
    std::thread::sleep(Duration::from_secs(3));
    assert!(ping(&flooder, server, ";rport").is_some(), "the flooder itself is served again within its rate");
    let lines = s.log().lines().filter(|l| l.contains("over the per-source rate")).count();
    assert!((1..=12).contains(&lines), "{lines} rate-limit warnings for one flood");
}

#[test]
fn without_the_rate_limit_the_transaction_table_stays_bounded() {
    let s = TestServer::start_with_config("[sip]\nrequests_per_source_per_sec = 0\nmax_server_transactions = 3000\n");
    let server = sip_udp(&s);
    let other = socket("127.0.0.2");
    assert!(ping(&other, server, ";rport").is_some(), "{}", s.log());
    std::thread::sleep(Duration::from_millis(500));
    let baseline = rss_kib(&s);

    let watch = Watch::start(&s);
    let flooder = socket("127.0.0.1");
    flood(&flooder, server, 40_000, 8_000);
    std::thread::sleep(Duration::from_secs(1));
    let (peak_rss, peak_table) = watch.finish();

    let received = metric(&s, "sipprov_sip_requests_received_total");
    let evicted = metric(&s, "sipprov_sip_server_transactions_evicted_total");
    let growth = peak_rss.saturating_sub(baseline);
    eprintln!(
        "{received} requests taken, table peak {peak_table}, {evicted} evicted, RSS {baseline} KiB + {growth} KiB"
    );
    assert!(received > 3_000, "the flood reached the table: {received}");
    assert!(peak_table <= 3_000, "table peaked at {peak_table}");
    assert!(evicted > 0, "the oldest transactions made room");
    assert!(growth < MAX_GROWTH_KIB, "RSS grew by {growth} KiB (from {baseline} KiB)");
    assert!(answered_ok(&other, server, Duration::from_secs(10)), "127.0.0.2 answered after the flood");
}

#[test]
fn responses_go_where_the_request_came_from_and_a_huge_via_is_refused() {
    let s = TestServer::start();
    let server = sip_udp(&s);
    let attacker = socket("127.0.0.1");
    let port = attacker.local_addr().unwrap().port();
    // The third party listens on the attacker's port at another address, where a trusted
    // `received=` would send the response.
    let victim = UdpSocket::bind(("127.0.0.3", port)).expect("bind the third party");
    victim.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    for params in [";received=127.0.0.3", ";rport;received=127.0.0.3"] {
        let reply = ping(&attacker, server, params).unwrap_or_else(|| panic!("{params}: no answer\n{}", s.log()));
        assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
        let via = header(&reply, "Via").unwrap();
        assert!(!via.contains("127.0.0.3"), "the sender's received= is not echoed: {via}");
        assert!(recv(&victim, Duration::from_millis(700)).is_none(), "{params}: the third party got a response");
    }

    let malformed = metric(&s, "sipprov_sip_malformed_total");
    let me = attacker.local_addr().unwrap();
    let huge = options(me, "huge", &format!(";x={}", "v".repeat(60_000)));
    attacker.send_to(huge.as_bytes(), server).unwrap();
    assert!(recv(&attacker, Duration::from_millis(1500)).is_none(), "a 60 KB Via is not echoed");
    assert!(eventually(Duration::from_secs(5), || metric(&s, "sipprov_sip_malformed_total") == malformed + 1));
    let log = s.log();
    let line = log.lines().find(|l| l.contains("Via headers of")).expect("the refusal is logged");
    assert!(line.len() < 1000, "the log line is short: {} bytes", line.len());
    assert!(ping(&attacker, server, ";rport").is_some(), "a normal request is still answered");
}

#[test]
fn malformed_datagrams_are_logged_escaped_truncated_and_rationed() {
    let s = TestServer::start();
    let server = sip_udp(&s);
    // A bare LF starts a forged line; ESC sequences would repaint the operator's terminal.
    let forged =
        "OPTIONS sip:x SIP/2.0\nFORGED 2026-01-01T00:00:00Z ERROR admin password reset \x1b[2J\x1b[31mRED\x1b[0m";
    let payload = format!("{forged} {}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n", "A".repeat(50_000));
    for ip in ["127.0.0.1", "127.0.0.4", "127.0.0.5"] {
        let sock = socket(ip);
        for _ in 0..1000 {
            let _ = sock.send_to(payload.as_bytes(), server);
        }
    }
    let mut last = u64::MAX;
    eventually(Duration::from_secs(10), || {
        let now = metric(&s, "sipprov_sip_malformed_total");
        std::mem::replace(&mut last, now) == now
    });
    let malformed = metric(&s, "sipprov_sip_malformed_total");
    let log = s.log();
    assert!(!log.contains('\x1b'), "no escape character reaches the log");
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused malformed SIP message")).collect();
    assert!(malformed > 100, "the floods got through the per-source burst: {malformed}");
    assert!((1..=10).contains(&refused.len()), "{} lines for {malformed} malformed datagrams", refused.len());
    for line in &refused {
        assert!(line.contains(r"SIP/2.0\nFORGED") && line.contains(r"\x1b[31mRED"), "escaped: {line}");
        assert!(line.len() < 1000 && line.contains("…(+"), "truncated, saying so: {} bytes", line.len());
    }
    for line in log.lines().filter(|l| l.contains("FORGED")) {
        assert!(line.contains("refused malformed SIP message"), "a forged line of its own: {line}");
    }

    // After the interval the next one is written with the count of those held back.
    std::thread::sleep(Duration::from_millis(10_500));
    socket("127.0.0.6").send_to(payload.as_bytes(), server).unwrap();
    let expected = format!("suppressed={}", malformed - refused.len() as u64);
    assert!(
        eventually(Duration::from_secs(5), || s
            .log()
            .lines()
            .any(|l| l.contains("refused malformed") && l.contains(&expected))),
        "no line with {expected}:\n{}",
        s.log().lines().filter(|l| l.contains("malformed")).collect::<Vec<_>>().join("\n")
    );
}

/// A phone on a UDP socket that answers one NOTIFY 200 and returns it.
fn answer_one_notify(phone: &UdpSocket) -> Option<String> {
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let Ok((n, from)) = phone.recv_from(&mut buf) else { continue };
        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !req.starts_with("NOTIFY") {
            continue;
        }
        let mut resp = String::from("SIP/2.0 200 OK\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            resp.push_str(&format!("{name}: {}\r\n", header(&req, name)?));
        }
        resp.push_str("Content-Length: 0\r\n\r\n");
        phone.send_to(resp.as_bytes(), from).unwrap();
        return Some(req);
    }
    None
}

/// The `Server` of an OPTIONS answer and the `User-Agent` of a check-sync NOTIFY.
fn product_names(s: &TestServer) -> (String, String) {
    let answer = ping(&socket("127.0.0.2"), sip_udp(s), ";rport").expect("OPTIONS answered");
    let server = header(&answer, "Server").expect("Server header").to_string();
    let phone = socket("127.0.0.1");
    let contact = format!("sip:1001@{}", phone.local_addr().unwrap());
    s.ok(&["device", "add", "001565aabbcc", "--vendor", "yealink", "--model", "T46S", "--contact", &contact]);
    let notify = std::thread::scope(|scope| {
        let phone_side = scope.spawn(|| answer_one_notify(&phone));
        let out = s.ok(&["device", "notify", "001565aabbcc"]);
        assert!(out.starts_with("200"), "{out}");
        phone_side.join().unwrap().expect("the NOTIFY reached the phone")
    });
    (server, header(&notify, "User-Agent").expect("User-Agent header").to_string())
}

#[test]
fn server_and_user_agent_say_sipprov_without_a_version_unless_configured() {
    let s = TestServer::start();
    assert_eq!(product_names(&s), ("sipprov".to_string(), "sipprov".to_string()));
    let http = s.fetch("/y000000000028.cfg", "Yealink SIP-T46S 66.86.0.15", &[]);
    assert!(http.header("Server").is_none_or(|v| v == "sipprov"), "HTTP Server header: {:?}", http.header("Server"));

    let s = TestServer::start_with_config("[sip]\nuser_agent = \"Acme Provisioning\"\n");
    assert_eq!(product_names(&s), ("Acme Provisioning".to_string(), "Acme Provisioning".to_string()));
}
