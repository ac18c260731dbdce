//! SIP Plug-and-Play against the real binary: SIPp playing each vendor's phone over unicast, a
//! socket2 phone over multicast on loopback, repeats, refusals and 1,000 phones at 200/s.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{scenario, TestServer};
use sipprov_testkit::free_port;

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 75);

/// A server with `[pnp]` settings (`pnp_toml` is the body of the section); its multicast group
/// uses a port of its own so parallel tests do not hear each other. Returns it with its SIP UDP
/// address and group port.
fn server(pnp_toml: &str) -> (TestServer, SocketAddr, u16) {
    let dir = tempfile::tempdir().unwrap();
    let group_port = free_port();
    let config = dir.path().join("sipprov.toml");
    let text = format!("[pnp]\nmulticast = \"224.0.1.75:{group_port}\"\ninterfaces = [\"127.0.0.1\"]\n{pnp_toml}\n");
    std::fs::write(&config, text).unwrap();
    let mut s = TestServer { dir, child: None, http: String::new(), api: String::new() };
    s.spawn(&["--config", config.to_str().unwrap()]);
    let listening: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.data_dir().join("listening.json")).unwrap()).unwrap();
    let sip = listening["sip_udp"].as_str().expect("SIP UDP address").parse().unwrap();
    (s, sip, group_port)
}

/// Runs SIPp as the phone (UAC) with one injection-file line per call; returns its exit code and
/// the messages it logged.
fn sipp_phone(name: &str, server: SocketAddr, fields: &[String], rate: Option<u32>) -> (i32, String, String) {
    let logs = tempfile::tempdir().unwrap();
    let inf = logs.path().join("fields.csv");
    std::fs::write(&inf, format!("SEQUENTIAL\n{}\n", fields.join("\n"))).unwrap();
    let calls = fields.len().to_string();
    let mut cmd = Command::new("sipp");
    cmd.arg(server.to_string()).arg("-sf").arg(scenario(name)).arg("-inf").arg(&inf);
    cmd.args(["-i", "127.0.0.1", "-p", &free_port().to_string(), "-t", "u1", "-m", &calls]);
    cmd.args(["-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-error_file"]);
    cmd.arg(logs.path().join("errors.log"));
    if let Some(r) = rate {
        cmd.args(["-r", &r.to_string(), "-l", "2000"]);
    } else {
        cmd.args(["-trace_msg", "-message_file"]).arg(logs.path().join("messages.log"));
    }
    let status = cmd
        .current_dir(logs.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp is installed (Debian package sip-tester)");
    let read = |f: &str| std::fs::read_to_string(logs.path().join(f)).unwrap_or_default();
    (status.code().unwrap_or(-1), read("messages.log"), read("errors.log"))
}

/// The first SIP message in a SIPp message log whose start line begins with `start`.
fn message<'a>(log: &'a str, start: &str) -> &'a str {
    let at = log.find(&format!("\n{start}")).unwrap_or_else(|| panic!("no {start} in the SIPp log:\n{log}"));
    let text = &log[at + 1..];
    let end = text.find("\n----------").unwrap_or(text.len());
    text[..end].trim_end()
}

/// A header value (first occurrence, case-insensitive name).
fn header(msg: &str, name: &str) -> String {
    msg.lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
        .unwrap_or_else(|| panic!("no {name} in:\n{msg}"))
        .to_string()
}

fn tag(value: &str) -> String {
    value.split(";tag=").nth(1).map(|t| t.split([';', '>']).next().unwrap_or("").to_string()).unwrap_or_default()
}

fn body(msg: &str) -> &str {
    msg.split_once("\r\n\r\n").or_else(|| msg.split_once("\n\n")).map_or("", |(_, b)| b.trim())
}

fn device_log(s: &TestServer, mac: &str) -> String {
    s.ok(&["device", "log", mac, "--json"])
}

#[test]
fn each_vendor_dialect_over_unicast_gets_its_url_form() {
    let (s, sip, _) = server("mode = \"known\"");
    for (mac, vendor, model) in [("001565aabbcc", "yealink", "T46S"), ("7C2F8030D21E", "gigaset", "N870")] {
        s.ok(&["device", "add", mac, "--vendor", vendor, "--model", model]);
    }
    let (code, log, errors) = sipp_phone("pnp_yealink.xml", sip, &["001565aabbcc".into()], None);
    assert_eq!(code, 0, "{errors}\n{log}\n{}", s.log());
    let (ok, notify) = (message(&log, "SIP/2.0 200"), message(&log, "NOTIFY "));
    // The NOTIFY is in the SUBSCRIBE's dialog: From/To swapped with their tags, same Call-ID.
    let subscribe = message(&log, "SUBSCRIBE ");
    assert_eq!(tag(&header(notify, "From")), tag(&header(ok, "To")), "{notify}");
    assert_eq!(tag(&header(notify, "To")), tag(&header(subscribe, "From")), "{notify}");
    assert_eq!(header(notify, "Call-ID"), header(subscribe, "Call-ID"));
    let contact = header(subscribe, "Contact");
    assert!(notify.starts_with(&format!("NOTIFY {} SIP/2.0", contact.trim_matches(['<', '>']))), "{notify}");
    // The URL is our HTTP listener; Yealink appends its own file names, and gets its file.
    let url = body(notify);
    assert_eq!(url, format!("http://{}/", s.http));
    assert_eq!(header(notify, "Content-Length"), url.len().to_string());
    let fetched = common::curl(&format!("{url}001565aabbcc.cfg"), "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc", &[]);
    assert_eq!(fetched.status, 200);
    assert!(device_log(&s, "001565aabbcc").contains("answered"));

    let (code, log, errors) = sipp_phone("pnp_gigaset.xml", sip, &["7C2F8030D21E".into()], None);
    assert_eq!(code, 0, "{errors}\n{log}");
    assert_eq!(body(message(&log, "NOTIFY ")), format!("http://{}/7C2F8030D21E.xml", s.http));

    // A device with HTTP credentials: by default its NOTIFY carries none (anyone claiming the
    // MAC would get them).
    s.ok(&["device", "add", "001565aabbcd", "--vendor", "yealink", "--model", "T46S", "--group", "lab"]);
    s.ok(&["device", "set", "001565aabbcd", "http.username=dev1", "http.password=p@ss:w"]);
    let (code, log, errors) = sipp_phone("pnp_yealink.xml", sip, &["001565aabbcd".into()], None);
    assert_eq!(code, 0, "{errors}\n{log}");
    assert_eq!(body(message(&log, "NOTIFY ")), format!("http://{}/", s.http));
    assert!(!log.contains("dev1") && !log.contains("p%40ss"), "no credential on the wire:\n{log}");
    // Its group opts in (pnp.url_credentials=1): the URL carries them, percent-encoded; the
    // history and the log show them redacted.
    s.ok(&["group", "set", "lab", "pnp.url_credentials=1"]);
    let (code, log, errors) = sipp_phone("pnp_yealink.xml", sip, &["001565aabbcd".into()], None);
    assert_eq!(code, 0, "{errors}\n{log}");
    assert_eq!(body(message(&log, "NOTIFY ")), format!("http://dev1:p%40ss%3Aw@{}/", s.http));
    assert!(common::eventually(Duration::from_secs(5), || device_log(&s, "001565aabbcd").contains("dev1:***@")));
    assert!(!s.log().contains("p%40ss") && !s.log().contains("p@ss"), "the password never reaches the log");
    assert!(s.fails(&["group", "set", "lab", "pnp.url_credential=1"]).contains("pnp"), "typos are refused");

    // AudioCodes with a MAC (newer firmware puts it in the User-Agent) is covered by the
    // socket phones below: SIPp's injection file cannot carry the ';' that User-Agent holds.
}

#[test]
fn any_mode_answers_every_dialect_and_adds_what_it_can_provision() {
    let (s, sip, _) = server("mode = \"any\"\ndiscovered_group = \"lab\"\nurl = \"http://prov.test:8080/p\"");
    let run = |name: &str, field: &str| {
        let (code, log, errors) = sipp_phone(name, sip, &[field.to_string()], None);
        assert_eq!(code, 0, "{name}: {errors}\n{log}");
        message(&log, "NOTIFY ").to_string()
    };
    let url = |name: &str, field: &str| body(&run(name, field)).to_string();
    assert_eq!(url("pnp_grandstream.xml", "C074AD112233"), "http://prov.test:8080/p/");
    assert_eq!(url("pnp_snom.xml", "000413922d24"), "http://prov.test:8080/p/000413922d24.xml");
    // The AudioCodes manual's SUBSCRIBE as printed: no MAC anywhere, so nothing to add, but the
    // phone gets its URL, in a NOTIFY whose Request-URI is its Contact.
    let notify = run("pnp_audiocodes.xml", "2.2.2");
    assert!(notify.starts_with("NOTIFY sip:00000001@127.0.0.1:"), "{notify}");
    assert_eq!(body(&notify), "http://prov.test:8080/p/");
    assert_eq!(url("pnp_yealink.xml", "001565000099"), "http://prov.test:8080/p/");
    assert!(common::eventually(Duration::from_secs(5), || s.cli(&["device", "show", "001565000099"]).status.success()));
    let shown = s.json(&["device", "show", "001565000099", "--json"]);
    assert_eq!((shown["group"].as_str(), shown["model"].as_str()), (Some("lab"), Some("T46S")));
    let audit = s.ok(&["audit", "--device", "001565000099"]);
    assert!(audit.contains(" pnp ") && audit.contains("device.add"), "the discovery is audited as pnp: {audit}");
    assert!(shown["contact"].as_str().unwrap_or("").starts_with("sip:127.0.0.1:"), "{shown}");
    // The GRP2612W is not a Grandstream model sipprov accepts (the GRP2612 is): answered, not
    // added, and said so.
    assert!(!s.cli(&["device", "show", "c074ad112233"]).status.success());
    let log = s.log();
    assert!(log.lines().any(|l| l.contains("GRP2612W") && l.contains("known models: GXP")), "{log}");
}

/// The SUBSCRIBE printed in the AudioCodes 400HD Series Administrator's Manual 3.4.3 (p.41,
/// "Configuring Automatic Provisioning") byte for byte (the sample in `crates/sip/tests/samples`,
/// lines joined as the manual's page wraps hide them, CRLF on the wire), its address changed to the test
/// phone's. It names no MAC anywhere, yet the default `known` mode answers it: the generic URL,
/// our HTTP directory with no credentials, from which the phone fetches its own MAC-named file.
#[test]
fn audiocodes_manual_subscribe_without_a_mac_is_answered_by_default() {
    let (s, sip, _) = server("");
    s.ok(&["device", "add", "00908f602aac", "--vendor", "audiocodes", "--model", "440HD"]);
    s.ok(&["device", "set", "00908f602aac", "line.1.username=1001", "http.username=dev1", "http.password=s3cret"]);
    // Even global credentials opted into PnP URLs stay out: the answer names no device.
    let base = format!("http://{}/", s.http);
    s.ok(&[
        "settings",
        "set",
        "pnp.url_credentials=1",
        "http.username=fleet",
        "http.password=fleetpw",
        &format!("provisioning.url={base}"),
        "provisioning.interval_minutes=60",
    ]);
    let phone = Phone::unicast();
    let seed = include_str!("../../sip/tests/samples/audiocodes-subscribe.sip");
    let subscribe = seed.replace("10.13.2.37:5060", &format!("127.0.0.1:{}", phone.port())).replace('\n', "\r\n");
    assert!(
        subscribe.contains("From: <sip:00000001@127.0.0.1:")
            && subscribe.contains("User-Agent: AUDC-IPPhone/2.2.2\r\n")
    );
    phone.send(&subscribe, sip);
    let got = phone.collect(Duration::from_secs(2));
    assert_eq!(count(&got, "SIP/2.0 200"), 1, "{got:#?}\n{}", s.log());
    let notify = got.iter().find(|m| m.starts_with("NOTIFY ")).unwrap_or_else(|| panic!("no NOTIFY: {got:#?}"));
    assert!(notify.starts_with(&format!("NOTIFY sip:00000001@127.0.0.1:{} SIP/2.0", phone.port())), "{notify}");
    let url = body(notify);
    assert_eq!(url, format!("http://{}/", s.http), "the bare directory: no credentials, no device");
    // The phone then asks that directory for its own file, as its first fetch.
    let fetched = common::curl(&format!("{url}00908F602AAC.cfg"), "AUDC-IPPhone/2.2.2", &[]);
    assert_eq!(fetched.status, 200, "{}", s.log());
    let file = fetched.text();
    assert!(file.contains("voip/line/0/id=1001"), "{file}");
    // The 400HD file keeps the phone on that URL and polls it.
    assert!(file.contains(&format!("provisioning/method=STATIC\nprovisioning/configuration/url={base}\n")), "{file}");
    assert!(file.contains("provisioning/period/type=hourly\nprovisioning/period/hourly/hours_interval=1\n"), "{file}");
    // Still counted and filtered: a source outside the allow-list gets nothing.
    let (s, sip, _) = server("allow_sources = [\"127.0.0.2/32\"]");
    let phone = Phone::unicast();
    let subscribe = seed.replace("10.13.2.37:5060", &format!("127.0.0.1:{}", phone.port())).replace('\n', "\r\n");
    phone.send(&subscribe, sip);
    let got = phone.collect(Duration::from_secs(2));
    assert!(got.iter().all(|m| !m.starts_with("NOTIFY") && !m.starts_with("SIP/2.0 200")), "{got:#?}");
    assert!(s.log().contains("pnp.allow_sources"), "{}", s.log());
}

/// A phone made of a plain UDP socket, for what SIPp cannot express.
struct Phone {
    sock: UdpSocket,
}

impl Phone {
    fn unicast() -> Phone {
        Phone::unicast_from(Ipv4Addr::LOCALHOST)
    }

    /// A phone on another loopback address (127.0.0.0/8 is all loopback on Linux).
    fn unicast_from(ip: Ipv4Addr) -> Phone {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        Phone { sock }
    }

    /// A socket that multicasts out of loopback (IP_MULTICAST_IF = 127.0.0.1, loop on).
    fn multicast() -> Phone {
        let s =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).unwrap();
        s.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
        s.set_multicast_loop_v4(true).unwrap();
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        Phone { sock: s.into() }
    }

    fn port(&self) -> u16 {
        self.sock.local_addr().unwrap().port()
    }

    /// The AudioCodes manual's SUBSCRIBE (`audiocodes-subscribe.sip`), with a User-Agent carrying
    /// the MAC as newer 400HD firmware sends it.
    fn audiocodes_subscribe(&self, call_id: &str, branch: &str, cseq: u32, mac: &str) -> String {
        let p = self.port();
        let ip = self.sock.local_addr().unwrap().ip();
        format!(
            "SUBSCRIBE sip:224.0.1.75:5060 SIP/2.0\r\nFrom: <sip:00000001@{ip}:{p}>;tag=87a5a8-{call_id}\r\n\
             To: <sip:224.0.1.75:5060>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} SUBSCRIBE\r\n\
             Via: SIP/2.0/UDP {ip}:{p};rport;branch=z9hG4bK-{branch}\r\nExpires: 0\r\n\
             Event: ua-profile;profile-type=\"application\";model=\"440HD\";version=\"2.2.2\"\r\nMax-Forwards: 70\r\n\
             Supported: replaces,100rel\r\nAccept: application/url\r\nContact: <sip:00000001@{ip}:{p}>\r\n\
             User-Agent: AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; {mac})\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// A keep-alive OPTIONS, which the unicast listener answers 200.
    fn options(&self, call_id: &str) -> String {
        let p = self.port();
        format!(
            "OPTIONS sip:sipprov@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK-{call_id}\r\n\
             From: <sip:ping@127.0.0.1>;tag=1\r\nTo: <sip:sipprov@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn send(&self, text: &str, to: SocketAddr) {
        self.sock.send_to(text.as_bytes(), to).unwrap();
    }

    /// Everything received for `window`, answering each NOTIFY with 200 as a phone does.
    fn collect(&self, window: Duration) -> Vec<String> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.sock.set_read_timeout(Some(left)).unwrap();
            let Ok((n, from)) = self.sock.recv_from(&mut buf) else { break };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("NOTIFY ") {
                self.send(&ok_for(&text), from);
            }
            out.push(text);
        }
        out
    }
}

/// The phone's 200 to a request.
fn ok_for(req: &str) -> String {
    let copy: Vec<&str> = req
        .lines()
        .filter(|l| ["via:", "from:", "to:", "call-id:", "cseq:"].iter().any(|h| l.to_ascii_lowercase().starts_with(h)))
        .collect();
    format!("SIP/2.0 200 OK\r\n{}\r\nContent-Length: 0\r\n\r\n", copy.join("\r\n"))
}

fn count(msgs: &[String], start: &str) -> usize {
    msgs.iter().filter(|m| m.starts_with(start)).count()
}

#[test]
fn repeated_subscribes_get_one_notify() {
    let (s, sip, _) = server("mode = \"known\"");
    s.ok(&["device", "add", "00908f602aac", "--vendor", "audiocodes", "--model", "440HD"]);
    let phone = Phone::unicast();
    let first = phone.audiocodes_subscribe("dup-1", "a1", 1, "00908F602AAC");
    for _ in 0..3 {
        phone.send(&first, sip);
    }
    // A phone that gives up on the transaction sends a new one in the same dialog.
    phone.send(&phone.audiocodes_subscribe("dup-1", "a2", 2, "00908F602AAC"), sip);
    let got = phone.collect(Duration::from_secs(2));
    assert_eq!(count(&got, "NOTIFY "), 1, "{got:#?}");
    let oks: Vec<&String> = got.iter().filter(|m| m.starts_with("SIP/2.0 200")).collect();
    assert!(oks.len() >= 2, "{got:#?}");
    let tags: Vec<String> = oks.iter().map(|m| tag(&header(m, "To"))).collect();
    assert!(tags.iter().all(|t| !t.is_empty() && *t == tags[0]), "one dialog, one To tag: {tags:?}");
    let notify = got.iter().find(|m| m.starts_with("NOTIFY ")).unwrap();
    assert_eq!(tag(&header(notify, "From")), tags[0]);
    assert_eq!(header(notify, "Subscription-State"), "terminated;reason=timeout");
}

#[test]
fn the_notify_is_retransmitted_until_the_phone_answers() {
    let (s, sip, _) = server("mode = \"known\"");
    s.ok(&["device", "add", "00908f602aac", "--vendor", "audiocodes", "--model", "440HD"]);
    let phone = Phone::unicast();
    phone.send(&phone.audiocodes_subscribe("rt-1", "r1", 1, "00908F602AAC"), sip);
    // Stay silent: the first NOTIFY must come again (Timer E, T1 = 500 ms) with the same branch.
    let mut buf = [0u8; 65536];
    phone.sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut notifies = Vec::new();
    for _ in 0..10 {
        let Ok((n, from)) = phone.sock.recv_from(&mut buf) else { break };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("NOTIFY ") {
            notifies.push((text, from));
            if notifies.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(notifies.len(), 2, "no retransmitted NOTIFY");
    assert_eq!(header(&notifies[0].0, "Via"), header(&notifies[1].0, "Via"), "a retransmission, not a new NOTIFY");
    phone.send(&ok_for(&notifies[1].0), notifies[1].1);
    assert_eq!(count(&phone.collect(Duration::from_secs(2)), "NOTIFY "), 0, "answered: no more retransmissions");
    assert!(common::eventually(Duration::from_secs(5), || device_log(&s, "00908f602aac")
        .replace(" ", "")
        .contains("\"status\":200")));
}

#[test]
fn refusals_send_nothing_and_are_recorded() {
    let (s, sip, _) = server("mode = \"known\"\nallow_ouis = [\"00:90:8f\"]");
    s.ok(&["device", "add", "0c383e000001", "--vendor", "audiocodes", "--model", "440HD"]);
    let phone = Phone::unicast();
    // Unknown MAC in known mode: no 200, no NOTIFY, no URL.
    phone.send(&phone.audiocodes_subscribe("unknown-1", "u1", 1, "00908F000001"), sip);
    // Known device, but its OUI is not allowed: silent too, and its history says why.
    phone.send(&phone.audiocodes_subscribe("oui-1", "o1", 1, "0C383E000001"), sip);
    // Garbage and a SUBSCRIBE without a From tag must not hurt the server.
    phone.send("SUBSCRIBE \u{1}\r\n\r\n", sip);
    phone.send(&phone.audiocodes_subscribe("notag", "n1", 1, "00908F000001").replace(";tag=87a5a8-notag", ""), sip);
    let got = phone.collect(Duration::from_secs(2));
    assert!(got.iter().all(|m| !m.starts_with("NOTIFY") && !m.starts_with("SIP/2.0 200")), "{got:#?}");
    assert!(s.log().contains("not in the inventory"), "{}", s.log());
    assert!(common::eventually(Duration::from_secs(5), || device_log(&s, "0c383e000001").contains("pnp.allow_ouis")));
    // Still serving: OPTIONS answered.
    phone.send(&phone.options("x1"), sip);
    assert_eq!(count(&phone.collect(Duration::from_secs(1)), "SIP/2.0 200"), 1);
}

/// Adds `count` AudioCodes 440HD phones `00908f10xxxx`; returns their MACs.
fn add_audiocodes(s: &TestServer, count: usize) -> Vec<String> {
    let macs: Vec<String> = (0..count).map(|i| format!("00908f10{i:04x}")).collect();
    let rows: Vec<String> = macs.iter().map(|m| format!("{m},audiocodes,440HD,")).collect();
    let csv = s.data_dir().join("audiocodes.csv");
    std::fs::write(&csv, format!("mac,vendor,model,group\n{}\n", rows.join("\n"))).unwrap();
    s.ok(&["device", "import", csv.to_str().unwrap()]);
    macs
}

/// The Call-IDs of the SUBSCRIBEs that got anything back (a response or a NOTIFY).
fn answered_call_ids(msgs: &[String]) -> std::collections::BTreeSet<String> {
    msgs.iter().map(|m| header(m, "Call-ID")).collect()
}

const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15";

#[test]
fn a_pnp_scan_learns_at_most_max_failures_answers_then_http_is_refused_too() {
    const MAX: usize = 10;
    let (s, sip, _) = server(&format!("mode = \"known\"\n[security]\nmax_failures = {MAX}\nblock_secs = 300"));
    let known = add_audiocodes(&s, 100);
    // The scan: 200 SUBSCRIBEs from one address, known MACs alternating with unknown ones, at
    // the pace of the reported attack (2,000 in 5 s).
    let scanner = Phone::unicast();
    for i in 0..200 {
        let mac = if i % 2 == 0 { known[i / 2].clone() } else { format!("00908f20{i:04x}") };
        scanner.send(&scanner.audiocodes_subscribe(&format!("scan-{i}"), &format!("s{i}"), 1, &mac), sip);
        std::thread::sleep(Duration::from_millis(2));
    }
    let got = scanner.collect(Duration::from_secs(3));
    let answered = answered_call_ids(&got);
    // Each new SUBSCRIBE counts, answered or not: at most MAX were looked at, so at most MAX
    // could tell known from unknown; after that the source hears nothing.
    assert!(answered.len() <= MAX, "{} SUBSCRIBEs answered: {answered:?}", answered.len());
    assert!(!answered.is_empty() && count(&got, "NOTIFY ") >= 1, "the first known MACs are answered: {got:#?}");
    let looked_at = s.log().matches("PnP answered").count() + s.log().matches("PnP refused").count();
    assert!(looked_at <= MAX, "{looked_at} SUBSCRIBEs handled past the throttle\n{}", s.log());
    assert!(s.log().contains("too many PnP SUBSCRIBEs"), "{}", s.log());
    // Same throttle as HTTP: the scanning address now gets 429 for a known device's file too.
    let fetched = s.fetch(&format!("/{}.cfg", known[99]), "AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F100063)", &[]);
    assert_eq!(fetched.status, 429, "HTTP after a PnP scan");
    // The block is per source: another address still gets its answer for a known MAC.
    let phone = Phone::unicast_from(Ipv4Addr::new(127, 0, 0, 2));
    phone.send(&phone.audiocodes_subscribe("other-1", "o1", 1, &known[99].to_uppercase()), sip);
    let got = phone.collect(Duration::from_secs(2));
    assert_eq!(count(&got, "NOTIFY "), 1, "{got:#?}\n{}", s.log());
}

#[test]
fn an_http_blocked_source_gets_no_pnp_answer() {
    const MAX: usize = 5;
    let (s, sip, _) = server(&format!("mode = \"known\"\n[security]\nmax_failures = {MAX}\nblock_secs = 300"));
    let known = add_audiocodes(&s, 2);
    let phone = Phone::unicast();
    phone.send(&phone.audiocodes_subscribe("before-1", "b1", 1, &known[0]), sip);
    assert_eq!(count(&phone.collect(Duration::from_secs(2)), "NOTIFY "), 1, "answered before the HTTP scan");
    // An HTTP scan of unknown MACs from the same address until it is blocked.
    let statuses: Vec<u16> =
        (0..3 * MAX).map(|i| s.fetch(&format!("/001565ff{i:04x}.cfg"), YEALINK_UA, &[]).status).collect();
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    phone.send(&phone.audiocodes_subscribe("after-1", "a1", 1, &known[1]), sip);
    let got = phone.collect(Duration::from_secs(2));
    assert!(got.is_empty(), "a blocked source gets nothing: {got:#?}");
    // The same SUBSCRIBE from another address is answered: the silence was the block.
    let other = Phone::unicast_from(Ipv4Addr::new(127, 0, 0, 3));
    other.send(&other.audiocodes_subscribe("after-2", "a2", 1, &known[1]), sip);
    assert_eq!(count(&other.collect(Duration::from_secs(2)), "NOTIFY "), 1, "{}", s.log());
}

#[test]
fn loopback_is_answered_by_default_and_a_configured_list_is_enforced() {
    // No allow_sources: the networks attached to the PnP interfaces, here loopback; the start-up
    // log says which.
    let (s, sip, _) = server("mode = \"known\"");
    let known = add_audiocodes(&s, 1);
    let phone = Phone::unicast_from(Ipv4Addr::new(127, 0, 0, 4));
    phone.send(&phone.audiocodes_subscribe("lo-1", "l1", 1, &known[0]), sip);
    assert_eq!(count(&phone.collect(Duration::from_secs(2)), "NOTIFY "), 1, "{}", s.log());
    assert!(s.log().contains("127.0.0.0/8"), "{}", s.log());
    // An explicit list: a loopback source outside it is refused, and the refusal counts.
    let (s, sip, _) = server("mode = \"known\"\nallow_sources = [\"127.0.0.5/32\"]");
    let known = add_audiocodes(&s, 1);
    let outside = Phone::unicast_from(Ipv4Addr::new(127, 0, 0, 4));
    outside.send(&outside.audiocodes_subscribe("out-1", "x1", 1, &known[0]), sip);
    assert!(outside.collect(Duration::from_secs(2)).is_empty());
    assert!(common::eventually(Duration::from_secs(5), || s.log().contains("is not in pnp.allow_sources")));
    let inside = Phone::unicast_from(Ipv4Addr::new(127, 0, 0, 5));
    inside.send(&inside.audiocodes_subscribe("in-1", "i1", 1, &known[0]), sip);
    assert_eq!(count(&inside.collect(Duration::from_secs(2)), "NOTIFY "), 1, "{}", s.log());
}

/// Makes sure loopback multicast works here, or says clearly why the test cannot run.
fn require_loopback_multicast() {
    let flags = Command::new("ip")
        .args(["link", "show", "lo"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if !flags.as_deref().unwrap_or("").contains("MULTICAST") {
        // CI runs as root; elsewhere this may fail, and the probe below then says so.
        let _ = Command::new("ip").args(["link", "set", "lo", "multicast", "on"]).status();
    }
    let port = free_port();
    let rx = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).unwrap();
    rx.set_reuse_address(true).unwrap();
    rx.bind(&SocketAddr::V4(SocketAddrV4::new(GROUP, port)).into()).expect("bind the group address");
    rx.join_multicast_v4(&GROUP, &Ipv4Addr::LOCALHOST).expect("join 224.0.1.75 on 127.0.0.1");
    let rx: UdpSocket = rx.into();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    Phone::multicast().send("probe", SocketAddr::V4(SocketAddrV4::new(GROUP, port)));
    let mut buf = [0u8; 16];
    assert!(
        rx.recv_from(&mut buf).is_ok(),
        "multicast on loopback does not work on this machine (try `ip link set lo multicast on` as root)"
    );
}

#[test]
fn multicast_subscribe_on_loopback_is_answered_without_taking_unicast() {
    require_loopback_multicast();
    let (s, sip, group_port) = server("mode = \"known\"");
    s.ok(&["device", "add", "00908f602aac", "--vendor", "audiocodes", "--model", "440HD"]);
    let phone = Phone::multicast();
    let group = SocketAddr::V4(SocketAddrV4::new(GROUP, group_port));
    phone.send(&phone.audiocodes_subscribe("mc-1", "m1", 1, "00908F602AAC"), group);
    let got = phone.collect(Duration::from_secs(2));
    assert_eq!(count(&got, "SIP/2.0 200"), 1, "{got:#?}\n{}", s.log());
    let notify = got.iter().find(|m| m.starts_with("NOTIFY ")).unwrap_or_else(|| panic!("no NOTIFY: {got:#?}"));
    assert!(notify.starts_with(&format!("NOTIFY sip:00000001@127.0.0.1:{} SIP/2.0", phone.port())));
    assert_eq!(body(notify), format!("http://{}/", s.http));
    assert!(
        common::eventually(Duration::from_secs(5), || device_log(&s, "00908f602aac").contains(&group_port.to_string()))
    );
    // The unicast listener still gets its own traffic.
    phone.send(&phone.options("m2"), sip);
    assert_eq!(count(&phone.collect(Duration::from_secs(1)), "SIP/2.0 200"), 1);
}

/// The SUBSCRIBE of a SIPp scenario, keywords filled in, for sending it from a socket phone.
fn scenario_subscribe(name: &str, field0: &str, port: u16, n: u32) -> String {
    let xml = std::fs::read_to_string(scenario(name)).unwrap();
    let start = xml.find("<![CDATA[").expect("CDATA") + "<![CDATA[".len();
    let text = &xml[start..start + xml[start..].find("]]>").expect("end of CDATA")];
    let text = text
        .trim()
        .replace("[local_ip]", "127.0.0.1")
        .replace("[local_port]", &port.to_string())
        .replace("[branch]", &format!("z9hG4bK-mc{n}"))
        .replace("[call_id]", &format!("mc-{n}@127.0.0.1"))
        .replace("[call_number]", &n.to_string())
        .replace("[pid]", "1")
        .replace("[field0]", field0)
        .replace("[len]", "0");
    format!("{}\r\n\r\n", text.lines().map(str::trim_end).collect::<Vec<_>>().join("\r\n"))
}

#[test]
fn every_dialect_over_multicast_on_loopback() {
    require_loopback_multicast();
    let (s, _, group_port) = server("mode = \"any\"\nurl = \"http://prov.test/\"");
    let group = SocketAddr::V4(SocketAddrV4::new(GROUP, group_port));
    let cases = [
        ("pnp_yealink.xml", "001565aabbcc", "http://prov.test/"),
        ("pnp_audiocodes.xml", "2.2.2", "http://prov.test/"),
        ("pnp_gigaset.xml", "7C2F8030D21E", "http://prov.test/7C2F8030D21E.xml"),
        ("pnp_grandstream.xml", "C074AD112233", "http://prov.test/"),
        ("pnp_snom.xml", "000413922d24", "http://prov.test/000413922d24.xml"),
    ];
    for (n, (name, field, url)) in (1..).zip(cases) {
        let phone = Phone::multicast();
        phone.send(&scenario_subscribe(name, field, phone.port(), n), group);
        let got = phone.collect(Duration::from_millis(1500));
        assert_eq!(count(&got, "SIP/2.0 200"), 1, "{name}: {got:#?}\n{}", s.log());
        let notify = got.iter().find(|m| m.starts_with("NOTIFY ")).unwrap_or_else(|| panic!("{name}: no NOTIFY"));
        assert_eq!(body(notify), url, "{name}");
        assert_eq!(header(notify, "Call-ID"), format!("mc-{n}@127.0.0.1"));
    }
}

#[test]
fn a_thousand_phones_at_200_per_second_are_all_answered() {
    // A thousand phones have a thousand addresses; here SIPp plays them all from 127.0.0.1, so
    // the per-source throttle every SUBSCRIBE counts against and the per-source request rate
    // are both lifted for this test.
    let (s, sip, _) =
        server("mode = \"known\"\n[security]\nmax_failures = 5000\n[sip]\nrequests_per_source_per_sec = 0");
    let macs: Vec<String> = (0..1000).map(|i| format!("001565{i:06x}")).collect();
    let csv = s.data_dir().join("devices.csv");
    let rows: Vec<String> = macs.iter().map(|m| format!("{m},yealink,T46S,")).collect();
    std::fs::write(&csv, format!("mac,vendor,model,group\n{}\n", rows.join("\n"))).unwrap();
    s.ok(&["device", "import", csv.to_str().unwrap()]);
    let started = Instant::now();
    let (code, _, errors) = sipp_phone("pnp_yealink.xml", sip, &macs, Some(200));
    assert_eq!(code, 0, "SIPp reports failed calls: {errors}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(s.log().matches("PnP answered").count(), 1000);
}

#[test]
fn a_storm_larger_than_the_subscription_table_is_answered_in_full() {
    // The table remembering subscriptions (for one NOTIFY per phone however often it repeats)
    // held 100,000 and, once full, silently ignored every new SUBSCRIBE for up to a minute: a
    // boot storm past that size lost its phones. Here the table holds 50 and 200 phones boot;
    // one source plays them all, so its throttles are lifted.
    let (s, sip, _) = server(
        "mode = \"known\"\nremembered_subscriptions = 50\n[security]\nmax_failures = 5000\n\
         [sip]\nrequests_per_source_per_sec = 0",
    );
    let macs = add_audiocodes(&s, 200);
    let phone = Phone::unicast();
    let mut got = Vec::new();
    for (i, mac) in macs.iter().enumerate() {
        phone.send(&phone.audiocodes_subscribe(&format!("storm-{i}"), &format!("b{i}"), 1, mac), sip);
        if i % 20 == 19 {
            got.extend(phone.collect(Duration::from_millis(100)));
        }
    }
    got.extend(phone.collect(Duration::from_secs(2)));
    let notified: std::collections::BTreeSet<String> =
        got.iter().filter(|m| m.starts_with("NOTIFY ")).map(|m| header(m, "Call-ID")).collect();
    assert_eq!(notified.len(), 200, "phones without a NOTIFY: {}\n{}", 200 - notified.len(), s.log());
    assert!(s.log().contains("PnP subscription table full"), "{}", s.log());
    // A recent subscription is still remembered: its repeat gets a 200 and no second NOTIFY.
    phone.send(&phone.audiocodes_subscribe("storm-199", "again", 2, &macs[199]), sip);
    let again = phone.collect(Duration::from_secs(1));
    assert_eq!(count(&again, "SIP/2.0 200"), 1, "{again:#?}");
    assert_eq!(count(&again, "NOTIFY "), 0, "{again:#?}");
}
