//! SIP over TLS against an independent TLS stack: a phone (and an OPTIONS client) written on
//! Python's ssl module, which is OpenSSL, with certificates made by `openssl req` here. Covers
//! `sipprov notify` to `sips:` and `--transport tls` URIs, each way of trusting the phone (CA
//! bundle, listed self-signed certificate, --tls-insecure, the system store), a wrong CA, mutual
//! TLS, and `sipprov serve` with `--sip-tls-listen`: OPTIONS answered, check-sync to a sips contact,
//! a renewed certificate taken without a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::pki::Pki;
use common::{bin, TestServer};
use serde_json::Value;

/// The Python peer, killed on drop.
struct Peer {
    child: Child,
    out: BufReader<ChildStdout>,
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sip_tls_peer.py")
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut child = Command::new("python3")
            .arg(script())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is installed");
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        Peer { child, out }
    }

    /// A phone serving `connections` TLS connections with `<cert>.pem`; returns it and its port.
    fn phone(pki: &Pki, cert: &str, connections: u32, extra: &[&str]) -> (Peer, u16) {
        let (pem, key, n) = (pki.pem(cert), pki.key(cert), connections.to_string());
        let mut args = vec!["phone", "--cert", &pem, "--key", &key, "--connections", &n];
        args.extend_from_slice(extra);
        let mut peer = Peer::spawn(&args);
        let port = peer.line().trim().parse().expect("the phone prints its port first");
        (peer, port)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read the peer's output");
        assert!(!line.is_empty(), "the peer exited without saying more");
        line
    }

    /// The next JSON report: a request the phone received, or a failed handshake.
    fn report(&mut self) -> Value {
        serde_json::from_str(&self.line()).expect("a JSON line")
    }

    fn exit_code(mut self) -> i32 {
        self.child.wait().expect("wait for the peer").code().unwrap_or(-1)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sipprov notify` with `env` as the only system CA store settings; returns success,
/// stdout, stderr.
fn notify_env(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("notify")
        .args(args)
        .args(["--timeout", "10"])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied())
        .output()
        .expect("run sipprov notify");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn notify(args: &[&str]) -> (bool, String, String) {
    notify_env(args, &[])
}

/// `sipprov serve` with `toml` as its configuration file and `args`.
fn serve_with(toml: &str, args: &[&str]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sipprov.toml");
    std::fs::write(&config, toml).unwrap();
    let config = config.to_str().unwrap().to_string();
    let mut s = TestServer { dir, child: None, http: String::new(), api: String::new() };
    s.spawn(&[&["--config", config.as_str()][..], args].concat());
    s
}

/// A CA, an unrelated CA, and a phone certificate for 127.0.0.1 signed by the first.
fn phone_pki() -> Pki {
    let pki = Pki::new();
    pki.ca("ca").ca("other").leaf("ca", "phone", "IP:127.0.0.1");
    pki
}

#[test]
fn notify_reaches_a_python_phone_over_tls() {
    let pki = phone_pki();
    let (mut phone, port) = Peer::phone(&pki, "phone", 3, &[]);
    let ca = pki.pem("ca");

    let uri = format!("sips:1001@127.0.0.1:{port}");
    let (ok, out, err) = notify(&[&uri, "--tls-ca", &ca]);
    assert!(ok, "{err}");
    assert!(out.starts_with("200 OK"), "{out}");
    assert!(out.contains(&format!("sent to tls:127.0.0.1:{port}")), "{out}");
    let seen = phone.report();
    assert_eq!(seen["problem"], Value::Null, "{seen}");
    assert_eq!(seen["start"], format!("NOTIFY {uri} SIP/2.0"));
    assert!(seen["headers"]["Via"].as_str().unwrap().starts_with("SIP/2.0/TLS "), "{seen}");
    assert!(seen["headers"]["Contact"].as_str().unwrap().starts_with("<sips:"), "{seen}");

    let uri = format!("sip:1001@127.0.0.1:{port}");
    let (ok, out, err) = notify(&[&uri, "--transport", "tls", "--tls-ca", &ca, "--vendor", "yealink", "--reboot"]);
    assert!(ok, "{err}");
    assert!(out.contains("check-sync;reboot=true"), "{out}");
    let seen = phone.report();
    assert_eq!(seen["headers"]["Event"], "check-sync;reboot=true");
    assert!(seen["headers"]["Contact"].as_str().unwrap().ends_with(";transport=tls>"), "{seen}");

    // Verified against a CA that did not sign the phone's certificate: refused, and said why.
    let (ok, _, err) = notify(&[&format!("sips:1001@127.0.0.1:{port}"), "--tls-ca", &pki.pem("other")]);
    assert!(!ok);
    assert!(err.contains("invalid peer certificate") && err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("--tls-ca"), "the error says how to trust the phone: {err}");
    assert!(phone.report()["handshake_error"].is_string());
    assert_eq!(phone.exit_code(), 0, "every NOTIFY the phone got passed its checks");
}

#[test]
fn a_self_signed_phone_is_trusted_when_listed_or_with_tls_insecure() {
    let pki = Pki::new();
    pki.self_signed("phone", "IP:127.0.0.1");
    let (mut phone, port) = Peer::phone(&pki, "phone", 2, &[]);
    let uri = format!("sips:1001@127.0.0.1:{port}");

    let (ok, out, err) = notify(&[&uri, "--tls-ca", &pki.pem("phone")]);
    assert!(ok && out.starts_with("200 OK"), "{err}");
    assert_eq!(phone.report()["problem"], Value::Null);

    let (ok, out, err) = notify(&[&uri, "--tls-insecure"]);
    assert!(ok && out.starts_with("200 OK"), "{err}");
    assert!(err.contains("warning") && err.contains("NOT verified"), "--tls-insecure is said loudly: {err}");
    assert_eq!(phone.exit_code(), 0);

    // A listed certificate must still name the host it is reached at.
    pki.self_signed("elsewhere", "IP:127.0.0.2");
    let (mut phone, port) = Peer::phone(&pki, "elsewhere", 1, &[]);
    let (ok, _, err) = notify(&[&format!("sips:1001@127.0.0.1:{port}"), "--tls-ca", &pki.pem("elsewhere")]);
    assert!(!ok);
    assert!(err.contains("not valid for name"), "{err}");
    assert!(phone.report()["handshake_error"].is_string());
}

#[test]
fn without_a_ca_the_system_store_decides() {
    let pki = phone_pki();
    std::fs::write(pki.path("empty", "pem"), "").unwrap();
    let (mut phone, port) = Peer::phone(&pki, "phone", 1, &[]);
    let uri = format!("sips:1001@127.0.0.1:{port}");

    // rustls-native-certs reads only SSL_CERT_FILE when it is set: an empty store is refused at once.
    let (ok, _, err) = notify_env(&[&uri], &[("SSL_CERT_FILE", &pki.pem("empty"))]);
    assert!(!ok);
    assert!(err.contains("no CA certificates in the system store") && err.contains("--tls-insecure"), "{err}");

    let (ok, out, err) = notify_env(&[&uri], &[("SSL_CERT_FILE", &pki.pem("ca"))]);
    assert!(ok && out.starts_with("200 OK"), "{err}");
    assert_eq!(phone.report()["problem"], Value::Null);
    assert_eq!(phone.exit_code(), 0);
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let pki = phone_pki();
    pki.leaf("ca", "sipprov", "DNS:sipprov.test");
    let (mut phone, port) = Peer::phone(&pki, "phone", 1, &["--client-ca", &pki.pem("ca")]);
    let uri = format!("sips:1001@127.0.0.1:{port}");
    let (ok, out, err) = notify(&[
        &uri,
        "--tls-ca",
        &pki.pem("ca"),
        "--tls-client-cert",
        &pki.pem("sipprov"),
        "--tls-client-key",
        &pki.key("sipprov"),
    ]);
    assert!(ok && out.starts_with("200 OK"), "{err}");
    assert_eq!(phone.report()["client_cert"], true);
    assert_eq!(phone.exit_code(), 0);
}

#[test]
fn a_phone_refusing_our_missing_client_certificate_is_reported_at_once() {
    let pki = phone_pki();
    let (mut phone, port) = Peer::phone(&pki, "phone", 1, &["--client-ca", &pki.pem("ca")]);
    let uri = format!("sips:1001@127.0.0.1:{port}");
    let started = std::time::Instant::now();
    // With TLS 1.3 our handshake is over before the phone checks our (absent) certificate:
    // its refusal arrives as an alert on the open connection, not as a failed handshake.
    let (ok, _, err) = notify(&[&uri, "--tls-ca", &pki.pem("ca")]);
    assert!(!ok);
    assert!(err.contains("the TLS connection to 127.0.0.1") && err.contains("CertificateRequired"), "{err}");
    assert!(err.contains("--tls-client-cert"), "says what to do: {err}");
    assert!(!err.contains("timeout") && !err.contains("no final response"), "reported as a silent phone: {err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(8), "not at once: {:?}", started.elapsed());
    assert!(phone.report()["handshake_error"].as_str().is_some());
}

/// A CA, another CA, and a device certificate of each naming a MAC in its subject only, as
/// vendors issue them (Yealink's unique device certificate, Polycom's factory-installed one), with no address at all.
fn device_pki() -> Pki {
    let pki = phone_pki();
    pki.leaf("ca", "001565aabbcc", "DNS:device.vendor.test");
    pki.leaf("other", "001565aabbdd", "DNS:device.vendor.test");
    pki
}

#[test]
fn a_vendor_device_certificate_is_checked_for_the_phones_mac() {
    let pki = device_pki();
    let ca = pki.pem("ca");
    let (mut phone, port) = Peer::phone(&pki, "001565aabbcc", 3, &[]);
    let uri = format!("sips:1001@127.0.0.1:{port}");
    let (ok, _, err) = notify(&[&uri, "--tls-ca", &ca]);
    assert!(!ok && err.contains("not valid for name"), "by address, the MAC-named certificate fails: {err}");
    let (ok, out, err) = notify(&[&uri, "--tls-ca", &ca, "--tls-name", "001565aabbcc"]);
    assert!(ok && out.starts_with("200 OK"), "{err}");
    let (ok, _, err) = notify(&[&uri, "--tls-ca", &ca, "--tls-name", "001565aabbcd"]);
    assert!(!ok && err.contains("not valid for name"), "another device's MAC: {err}");
    assert!(phone.report()["handshake_error"].is_string());
    assert_eq!(phone.report()["problem"], Value::Null);
    assert!(phone.report()["handshake_error"].is_string());

    // The MAC is no pass: the chain must still lead to the CA.
    let (mut forged, port) = Peer::phone(&pki, "001565aabbdd", 1, &[]);
    let uri = format!("sips:1001@127.0.0.1:{port}");
    let (ok, _, err) = notify(&[&uri, "--tls-ca", &ca, "--tls-name", "001565aabbdd"]);
    assert!(!ok && err.contains("UnknownIssuer"), "signed by another CA: {err}");
    assert!(forged.report()["handshake_error"].is_string());
}

#[test]
fn serve_checks_device_certificates_for_the_mac_when_told_to() {
    let pki = device_pki();
    let s = serve_with(&format!("[sip.tls]\nca = {:?}\n", pki.pem("ca")), &[]);
    let (mut phone, port) = Peer::phone(&pki, "001565aabbcc", 2, &[]);
    let contact = format!("sips:1001@127.0.0.1:{port}");
    s.ok(&["device", "add", "001565aabbcc", "--vendor", "yealink", "--model", "T46S", "--contact", &contact]);
    let refused = s.fails(&["device", "notify", "001565aabbcc"]);
    assert!(refused.contains("not valid for name"), "{refused}");
    s.ok(&["device", "set", "001565aabbcc", "sip.tls_name=MAC"]);
    let out = s.ok(&["device", "notify", "001565aabbcc"]);
    assert!(out.starts_with("200"), "{out}\n{}", s.log());
    assert!(phone.report()["handshake_error"].is_string());
    assert_eq!(phone.report()["problem"], Value::Null);
}

#[test]
fn a_sips_uri_is_never_sent_in_clear() {
    let (ok, _, err) = notify(&["sips:1001@127.0.0.1:5061", "--transport", "udp"]);
    assert!(!ok);
    assert!(err.contains("sips: URI, reached over TLS only"), "{err}");
}

#[test]
fn serve_answers_options_over_tls_and_notifies_sips_contacts() {
    let pki = phone_pki();
    pki.leaf("ca", "server", "IP:127.0.0.1");
    let toml =
        format!("[sip.tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n", pki.pem("server"), pki.key("server"), pki.pem("ca"));
    let s = serve_with(&toml, &["--sip-tls-listen", "127.0.0.1:0"]);
    let tls = s.listening("sip_tls").expect("listening.json names sip_tls");
    let tls_port = tls.rsplit(':').next().unwrap().to_string();

    // A phone's OPTIONS over TLS, the server's certificate verified by OpenSSL.
    let mut client = Peer::spawn(&["options", "--ca", &pki.pem("ca"), "--port", &tls_port]);
    let answer = client.report();
    assert_eq!(answer["start"], "SIP/2.0 200 OK", "{answer}\n{}", s.log());
    assert_eq!(answer["headers"]["Server"], "sipprov", "no version unless configured: {answer}");
    assert!(answer["headers"]["Via"].as_str().unwrap().contains(";rport="), "rport stamped: {answer}");
    assert_eq!(client.exit_code(), 0);

    // check-sync from the server to a sips contact, trusted through [sip.tls] ca.
    let (mut phone, port) = Peer::phone(&pki, "phone", 1, &[]);
    let contact = format!("sips:1001@127.0.0.1:{port}");
    s.ok(&["device", "add", "001565aabbcc", "--vendor", "yealink", "--model", "T46S", "--contact", &contact]);
    let out = s.ok(&["device", "notify", "001565aabbcc"]);
    assert!(out.starts_with("200"), "{out}");
    let seen = phone.report();
    let via = seen["headers"]["Via"].as_str().unwrap();
    assert!(via.starts_with(&format!("SIP/2.0/TLS 127.0.0.1:{tls_port};")), "Via names the TLS listener: {seen}");
    assert_eq!(seen["headers"]["Contact"], format!("<sips:127.0.0.1:{tls_port}>"));
    assert_eq!(phone.exit_code(), 0);
}

/// Whether an OPTIONS over TLS to `port`, verifying the server against `ca`, gets a 200.
fn options_ok(ca: &str, port: &str) -> bool {
    let out = Command::new("python3")
        .arg(script())
        .args(["options", "--ca", ca, "--port", port])
        .output()
        .expect("python3 is installed");
    out.status.success()
}

#[test]
fn serve_takes_a_renewed_sip_certificate_without_a_restart() {
    let pki = phone_pki();
    pki.leaf("ca", "server", "IP:127.0.0.1");
    let toml = format!(
        "[sip.tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\nreload_secs = 1\n",
        pki.pem("server"),
        pki.key("server"),
        pki.pem("ca")
    );
    let s = serve_with(&toml, &["--sip-tls-listen", "127.0.0.1:0"]);
    let tls = s.listening("sip_tls").expect("listening.json names sip_tls");
    let port = tls.rsplit(':').next().unwrap().to_string();
    assert!(options_ok(&pki.pem("ca"), &port), "{}", s.log());

    // Renewed, from another CA, in place: the files are rewritten, the server keeps running.
    pki.leaf("other", "server", "IP:127.0.0.1");
    let renewed = common::eventually(std::time::Duration::from_secs(15), || options_ok(&pki.pem("other"), &port));
    assert!(renewed, "the renewed SIP certificate was not taken: {}", s.log());
    assert!(!options_ok(&pki.pem("ca"), &port), "the old certificate is still served");
    assert!(s.log().contains("SIP TLS certificate, key or CA bundle reloaded"), "{}", s.log());
}

#[test]
fn serve_refuses_a_tls_listener_without_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args(["--sip-tls-listen", "127.0.0.1:0"])
        .output()
        .expect("run sipprov serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sip.tls.listen needs sip.tls.cert and sip.tls.key"), "{err}");
}
