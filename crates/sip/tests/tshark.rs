//! Wire check: traffic between our endpoint and SIPp is captured with tshark on `lo`, then
//! Wireshark's SIP dissector must decode every packet without a malformed or error-level expert
//! item, and the packet times must follow the Timer E schedule.
//!
//! This test needs capture rights (CI runs as root). When tshark cannot capture, it fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{check_sync, endpoint, fast_timers, scenario, SippTarget};
use sipprov_sip::{Credentials, Timers};
use sipprov_testkit::Sipp;

const TSHARK: &str = "/usr/bin/tshark";

struct Capture(Child);

impl Capture {
    /// Starts capturing on lo for `ports`; returns once tshark reports that it is capturing.
    fn start(file: &Path, ports: &[u16]) -> Capture {
        // A port nobody listens on receives the probes, so they disturb no SIPp.
        let probe_port = sipprov_testkit::free_port();
        let filter = ports.iter().chain([&probe_port]).map(|p| format!("port {p}")).collect::<Vec<_>>().join(" or ");
        let mut child = Command::new(TSHARK)
            .args(["-i", "lo", "-f", &filter, "-w"])
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark must be installed");
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
            seen.push_str(&line);
            if line.contains("Capturing on") {
                break;
            }
            assert!(n > 0, "tshark could not capture on lo: {seen}");
        }
        // Drain the rest of stderr so tshark never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let capture = Capture(child);
        capture.wait_until_live(file, probe_port);
        capture
    }

    /// "Capturing on" is printed before packets are really captured: send probe datagrams to
    /// `port` until one shows up in the file.
    fn wait_until_live(&self, file: &Path, port: u16) {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..100 {
            probe.send_to(b"probe", ("127.0.0.1", port)).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let seen = Command::new(TSHARK).arg("-r").arg(file).args(["-Y", "udp"]).output();
            if seen.is_ok_and(|o| !o.stdout.is_empty()) {
                return;
            }
        }
        panic!("tshark never captured a probe packet on lo");
    }

    /// Stops tshark with SIGINT so that it flushes the pcap.
    fn stop(mut self) {
        std::thread::sleep(Duration::from_millis(500));
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().expect("kill -INT tshark");
        let status = self.0.wait().unwrap();
        assert!(status.success() || status.code().is_none(), "tshark exited with {status}");
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs tshark on the capture with SIP decoding forced on the SIPp ports.
fn read(file: &Path, ports: &[u16], filter: &str, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new(TSHARK);
    cmd.arg("-r").arg(file);
    for p in ports {
        cmd.args(["-d", &format!("udp.port=={p},sip"), "-d", &format!("tcp.port=={p},sip")]);
    }
    cmd.args(["-Y", filter, "-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark -r");
    assert!(out.status.success(), "tshark -r failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

#[tokio::test]
async fn wireshark_decodes_our_traffic_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sip.pcap");
    let plain_udp = Sipp::start(scenario("uas_200.xml"), "udp");
    let plain_tcp = Sipp::start(scenario("uas_200.xml"), "tcp");
    let auth = Sipp::start(scenario("uas_auth.xml"), "udp");
    let silent = Sipp::start(scenario("uas_silent.xml"), "udp");
    let ports = [plain_udp.addr.port(), plain_tcp.addr.port(), auth.addr.port(), silent.addr.port()];
    let capture = Capture::start(&pcap, &ports);

    let (ep, _) = endpoint(Timers::default()).await;
    for sipp in [&plain_udp, &plain_tcp] {
        let resp = ep.send_request(check_sync(&ep, &sipp.target()), sipp.target(), None).await.unwrap();
        assert_eq!(resp.status, 200);
    }
    let creds = Credentials { username: "100".into(), password: "secret".into() };
    let resp = ep.send_request(check_sync(&ep, &auth.target()), auth.target(), Some(&creds)).await.unwrap();
    assert_eq!(resp.status, 200);
    let (fast, _) = endpoint(Timers { t1: Duration::from_millis(50), ..fast_timers() }).await;
    let schedule = Timers { t1: Duration::from_millis(50), ..fast_timers() }.udp_schedule();
    assert!(fast.send_request(check_sync(&fast, &silent.target()), silent.target(), None).await.is_err());
    capture.stop();

    let sip = read(&pcap, &ports, "sip", &["frame.number"]);
    // 2 × (NOTIFY + 200), NOTIFY + 401 + NOTIFY + 200, and every transmission to the silent phone.
    let expected = 4 + 4 + schedule.len();
    assert!(sip.len() >= expected, "only {} SIP packets decoded, expected at least {expected}", sip.len());
    let flagged = read(&pcap, &ports, "_ws.malformed || _ws.expert.severity >= warning", &["frame.number"]);
    assert!(flagged.is_empty(), "Wireshark flags frames {flagged:?}");
    // Wireshark is lenient, so also check what it decoded from every request we sent.
    let notifies = read(
        &pcap,
        &ports,
        "sip.Method == \"NOTIFY\"",
        &[
            "sip.Via.branch",
            "sip.Via.rport",
            "sip.Max-Forwards",
            "sip.CSeq.method",
            "sip.Content-Length",
            "sip.from.tag",
            "sip.Event",
        ],
    );
    for n in &notifies {
        let f: Vec<&str> = n.split('\t').collect();
        assert!(f[0].starts_with("z9hG4bK") && f[1] == "rport" && f[2] == "70", "{n}");
        assert!(f[3] == "NOTIFY" && f[4] == "0" && !f[5].is_empty() && f[6] == "check-sync;reboot=false", "{n}");
    }
    // The digest retry: same Call-ID, CSeq + 1, a new branch and the Authorization SIPp accepted.
    let retry = read(
        &pcap,
        &ports,
        "sip.Method == \"NOTIFY\" && sip.CSeq.seq == 2",
        &["sip.auth.username", "sip.auth.algorithm", "sip.auth.qop", "sip.auth.nc"],
    );
    assert_eq!(retry, ["\"100\"\tMD5\tauth\t00000001"]);

    // The retransmissions to the silent phone, as seen on the wire.
    let silent_port = silent.addr.port();
    let times = read(
        &pcap,
        &ports,
        &format!("sip.Method == \"NOTIFY\" && udp.dstport == {silent_port}"),
        &["frame.time_relative"],
    );
    let times: Vec<f64> = times.iter().map(|t| t.trim().parse().unwrap()).collect();
    assert_eq!(times.len(), schedule.len(), "wire times {times:?}");
    for (t, want) in times.iter().zip(&schedule) {
        let offset = (t - times[0]) * 1000.0;
        assert!((offset - want.as_millis() as f64).abs() < 150.0, "sent at +{offset:.0} ms, want {want:?}");
    }
}
