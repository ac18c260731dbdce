//! check-sync against SIPp playing the phone: the one-shot `sipprov notify`, and `device notify` through the server.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{bin, scenario, TestServer};
use sipprov_testkit::Sipp;

fn notify(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin()).arg("notify").args(args).output().expect("run sipprov notify");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// SIPp's verdict on its one call. Over TCP the one-shot sender closes its connection as soon as
/// the final response arrives, which SIPp counts as a failed call although the exchange was
/// complete; there the 200 we received (sent only after SIPp's checks passed) is the proof.
fn check_sipp(phone: &mut Sipp, transport: &str) {
    let code = phone.wait(Duration::from_secs(10));
    if transport == "udp" {
        assert_eq!(code, 0, "SIPp: {}", phone.errors());
    }
}

#[test]
fn one_shot_200_over_udp_and_tcp() {
    for transport in ["udp", "tcp"] {
        let mut phone = Sipp::start(scenario("uas_200.xml"), transport);
        let uri = format!("sip:1001@127.0.0.1:{};transport={transport}", phone.port());
        let (ok, out, err) = notify(&[&uri, "--timeout", "10"]);
        assert!(ok, "{transport}: {err}");
        assert!(out.starts_with("200 OK"), "{out}");
        assert!(out.contains("check-sync;reboot=false"), "{out}");
        check_sipp(&mut phone, transport);
    }
}

/// A TCP phone that reads one request and resets the connection (SO_LINGER 0), printing its
/// port first; a Python one-liner, since SIPp cannot send a reset.
const RESETTING_PHONE: &str = r#"
import socket, struct, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
data = b""
while b"\r\n\r\n" not in data:
    data += c.recv(4096)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
"#;

#[test]
fn a_phone_resetting_the_connection_is_reported_at_once() {
    use std::io::{BufRead, BufReader};
    let mut phone = Command::new("python3")
        .args(["-c", RESETTING_PHONE])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    let mut port = String::new();
    BufReader::new(phone.stdout.take().expect("piped")).read_line(&mut port).expect("the phone prints its port");
    let started = std::time::Instant::now();
    let uri = format!("sip:1001@127.0.0.1:{};transport=tcp", port.trim());
    let (ok, _, err) = notify(&[&uri, "--timeout", "10"]);
    assert!(!ok);
    assert!(err.contains("the TCP connection to 127.0.0.1") && err.contains("reset"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(8), "not at once: {err}");
    let _ = phone.wait();
}

#[test]
fn one_shot_answers_a_digest_challenge_verified_by_sipp() {
    for transport in ["udp", "tcp"] {
        let mut phone = Sipp::start(scenario("uas_auth.xml"), transport);
        let uri = format!("sip:100@127.0.0.1:{}", phone.port());
        let (ok, out, err) =
            notify(&[&uri, "--transport", transport, "--auth-user", "100", "--auth-password", "secret"]);
        assert!(ok, "{transport}: {err}");
        assert!(out.starts_with("200"), "{out}");
        check_sipp(&mut phone, transport);
    }
    let _phone = Sipp::start(scenario("uas_auth.xml"), "udp");
    let uri = format!("sip:100@127.0.0.1:{}", _phone.port());
    let (ok, _, err) = notify(&[&uri, "--auth-user", "100", "--auth-password", "wrong"]);
    assert!(!ok);
    assert!(err.contains("403"), "SIPp's verifyauth refused the wrong digest: {err}");
}

#[test]
fn one_shot_reports_481_and_489() {
    for (name, code) in [("uas_481.xml", "481"), ("uas_489.xml", "489")] {
        for transport in ["udp", "tcp"] {
            let mut phone = Sipp::start(scenario(name), transport);
            let uri = format!("sip:1001@127.0.0.1:{}", phone.port());
            let (ok, _, err) = notify(&[&uri, "--transport", transport]);
            assert!(!ok, "{code} must not count as success");
            assert!(err.contains(code), "{err}");
            phone.wait(Duration::from_secs(10));
        }
    }
}

#[test]
fn one_shot_gives_up_after_timer_f_and_names_the_reason() {
    let _phone = Sipp::start(scenario("uas_silent.xml"), "udp");
    let uri = format!("sip:1001@127.0.0.1:{}", _phone.port());
    let (ok, _, err) = notify(&[&uri, "--timeout", "2"]);
    assert!(!ok);
    assert!(err.contains("timeout") && err.contains("retransmissions"), "{err}");
    // Nothing listens on this TCP port: unreachable, said at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (ok, _, err) = notify(&[&format!("sip:1001@127.0.0.1:{closed}"), "--transport", "tcp", "--timeout", "5"]);
    assert!(!ok);
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn through_a_proxy_the_request_uri_still_names_the_account() {
    // The phone's own address is unknown (behind NAT); the registrar (SIPp here) holds its flow.
    let mut registrar = Sipp::start(scenario("phone_expects_reboot.xml"), "udp");
    let proxy = format!("127.0.0.1:{}", registrar.port());
    let (ok, out, err) = notify(&["sip:1001@phones.example.invalid", "--proxy", &proxy, "--reboot"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("sent to udp:{proxy}")), "{out}");
    check_sipp(&mut registrar, "udp");
}

#[test]
fn vendor_event_table_and_overrides() {
    let mut phone = Sipp::start(scenario("phone_expects_reboot.xml"), "udp");
    let uri = format!("sip:1001@127.0.0.1:{}", phone.port());
    let (ok, out, err) = notify(&[&uri, "--vendor", "gigaset", "--reboot"]);
    assert!(ok, "{err}");
    assert!(out.contains("check-sync;reboot=true"));
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{}", phone.errors());
    let (ok, _, err) = notify(&[&uri, "--vendor", "nosuchvendor"]);
    assert!(!ok && err.contains("nosuchvendor"), "{err}");
}

#[test]
fn the_server_notifies_a_device_and_records_the_outcome() {
    let s = TestServer::start();
    let mut phone = Sipp::start(scenario("phone_expects_reboot.xml"), "udp");
    s.ok(&[
        "device",
        "add",
        "001565aabbcc",
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--contact",
        &format!("sip:1001@127.0.0.1:{}", phone.port()),
        "--set",
        "line.1.username=1001",
    ]);
    let out = s.ok(&["device", "notify", "001565aabbcc", "--reboot"]);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{}", phone.errors());
    let shown = s.json(&["device", "show", "001565aabbcc", "--json"]);
    assert_eq!(shown["last_notify"]["outcome"]["status"], 200);
    assert_eq!(shown["last_notify"]["outcome"]["event"], "check-sync;reboot=true");
    assert!(s.ok(&["device", "log", "001565aabbcc"]).contains("notify"));
}

#[test]
fn the_server_answers_challenges_with_the_line_credentials() {
    let s = TestServer::start();
    let mut phone = Sipp::start(scenario("uas_auth.xml"), "udp");
    s.ok(&[
        "device",
        "add",
        "0004f2aabbcc",
        "--vendor",
        "gigaset",
        "--model",
        "N870",
        "--contact",
        &format!("sip:100@127.0.0.1:{}", phone.port()),
        "--set",
        "line.1.username=100",
        "--set",
        "line.1.password=secret",
    ]);
    let out = s.ok(&["device", "notify", "0004f2aabbcc"]);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{}", phone.errors());
    assert!(!s.log().contains("secret"), "the line password never reaches the logs");
}

#[test]
fn the_server_reports_failures_per_device() {
    let s = TestServer::start();
    s.ok(&["device", "add", "001565000001", "--vendor", "yealink", "--model", "T46S"]);
    let e = s.fails(&["device", "notify", "001565000001"]);
    assert!(e.contains("no SIP target"), "{e}");
    let mut phone = Sipp::start(scenario("uas_481.xml"), "udp");
    s.ok(&["device", "set", "001565000001", "--contact", &format!("sip:1001@127.0.0.1:{}", phone.port())]);
    let e = s.fails(&["device", "notify", "001565000001"]);
    assert!(e.contains("481"), "{e}");
    phone.wait(Duration::from_secs(10));
    s.ok(&["device", "set", "001565000001", "sip.check_sync_event=resync"]);
    let shown = s.json(&["device", "show", "001565000001", "--json"]);
    assert_eq!(shown["last_notify"]["outcome"]["status"], 481);
}

/// Gigaset (pro-wiki "FAQ - Auto provisioning: Check-sync with reboot") and Snom:
/// `device notify --reboot` reboots by default. The file the phone fetches lets `check-sync;reboot=true` reboot it (`CheckSyncRebootEnabled = 1`, an empty
/// `checksync_action`) and the NOTIFY asks for it. With `sip.notify_reboot = 0` on the device's
/// group the file says reboots are off, and `device notify --reboot` says so, naming the
/// parameter and the setting, instead of sending a NOTIFY that would earn a 200 and no reboot.
#[test]
fn reboot_reboots_by_default_and_is_refused_where_the_file_disables_it() {
    let s = TestServer::start();
    let cases = [
        (
            "7c2f80e0d605",
            "gigaset",
            "N870",
            "/7C2F80E0D605.xml",
            "N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
            (r#"CheckSyncRebootEnabled" value="1""#, r#"CheckSyncRebootEnabled" value="0""#),
            "SystemSettings.global.CheckSyncRebootEnabled",
        ),
        (
            "000413a11fa7",
            "snom",
            "D345",
            "/000413A11FA7.xml",
            "Mozilla/4.0 (compatible; snomD345-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413A11FA7 SXM:0 UXM:0)",
            (
                r#"<checksync_action perm="R"></checksync_action>"#,
                r#"<checksync_action perm="R">sync</checksync_action>"#,
            ),
            "checksync_action",
        ),
    ];
    for (mac, vendor, model, path, ua, (allowed, disabled), param) in cases {
        let mut phone = Sipp::start(scenario("phone_expects_reboot.xml"), "udp");
        let contact = format!("sip:1001@127.0.0.1:{}", phone.port());
        let set = ["--set", "line.1.username=1001", "--group", vendor];
        s.ok(&[&["device", "add", mac, "--vendor", vendor, "--model", model, "--contact", &contact][..], &set].concat());
        let file = s.fetch(path, ua, &[]);
        assert_eq!(file.status, 200, "{vendor}");
        assert!(file.text().contains(allowed), "{vendor}: {}", file.text());
        let out = s.ok(&["device", "notify", mac, "--reboot"]);
        assert!(out.starts_with("200") && out.contains("check-sync;reboot=true"), "{vendor}: {out}");
        assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{vendor}: {}", phone.errors());

        // Reboots turned off for the group: the file says so, and so does the CLI.
        s.ok(&["group", "set", vendor, "sip.notify_reboot=0"]);
        assert!(s.fetch(path, ua, &[]).text().contains(disabled), "{vendor}");
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let contact = format!("sip:1001@{}", silent.local_addr().unwrap());
        s.ok(&["device", "set", mac, "--contact", &contact]);
        let e = s.fails(&["device", "notify", mac, "--reboot"]);
        assert!(e.contains("reboot disabled") && e.contains(param) && e.contains("sip.notify_reboot"), "{vendor}: {e}");
        assert!(e.contains("not sent"), "{vendor}: {e}");
        silent.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        assert!(silent.recv_from(&mut [0u8; 2048]).is_err(), "{vendor}: no NOTIFY is sent");
        let shown = s.json(&["device", "show", mac, "--json"]);
        assert_eq!(shown["last_notify"]["outcome"]["result"], "reboot-disabled", "{vendor}");
    }
}

/// Yealink has no value that re-provisions but never reboots, so `sip.notify_reboot = 0` is
/// honoured by the server alone: `device notify --reboot` is refused, a plain re-provision is not.
#[test]
fn yealink_reboot_turned_off_is_refused_by_the_server() {
    let s = TestServer::start();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let contact = format!("sip:1001@{}", silent.local_addr().unwrap());
    s.ok(&["device", "add", "001565aabbcd", "--vendor", "yealink", "--model", "T46S", "--contact", &contact]);
    s.ok(&["device", "set", "001565aabbcd", "sip.notify_reboot=0"]);
    let e = s.fails(&["device", "notify", "001565aabbcd", "--reboot"]);
    assert!(e.contains("reboot disabled") && e.contains("sip.notify_reboot = 0"), "{e}");
    silent.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    assert!(silent.recv_from(&mut [0u8; 2048]).is_err(), "no NOTIFY is sent");
}
