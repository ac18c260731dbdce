//! Secure provisioning end to end: Digest and Basic with curl, HTTPS with and without client
//! certificates (made here with the openssl CLI), Yealink AES decrypted by openssl, a MAC scan,
//! a replayed Digest header, the first-fetch window, and no password in any log.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{curl_with, eventually, run, TestServer};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
/// A Yealink UA without a MAC, as a scanner (or an old phone) would send.
const UA_NO_MAC: &str = "Yealink SIP-T46S 66.86.0.15";
const HTTP_PASSWORD: &str = "Pr0v-Secret-1";
const SIP_PASSWORD: &str = "s1p-Secret-9";
const AES_KEY: &str = "AbCdEfGh12345678";

fn add_phone(s: &TestServer, extra: &[&str]) {
    let mut args = vec!["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"];
    let user = format!("line.1.password={SIP_PASSWORD}");
    let pass = format!("http.password={HTTP_PASSWORD}");
    for set in ["line.1.username=1001", "line.1.registrar=pbx.example.com", &user, "http.username=phone1", &pass] {
        args.extend(["--set", set]);
    }
    for set in extra {
        args.extend(["--set", set]);
    }
    s.ok(&args);
}

/// How each recorded fetch was accepted, from `sipprov device log --json`.
fn accepted_by(log_json: &str) -> Vec<String> {
    let events: serde_json::Value = serde_json::from_str(log_json).expect("JSON device log");
    events.as_array().into_iter().flatten().filter_map(|e| e["detail"]["auth"].as_str().map(str::to_string)).collect()
}

/// Nothing secret in the server's log, in listings, or in the device's history.
fn assert_no_secret_leaks(s: &TestServer) {
    let mut texts = vec![s.log()];
    texts.push(s.ok(&["device", "list", "--json"]));
    texts.push(s.ok(&["device", "show", MAC, "--json"]));
    texts.push(s.ok(&["device", "log", MAC, "--json"]));
    for text in texts {
        for secret in [HTTP_PASSWORD, SIP_PASSWORD, AES_KEY] {
            assert!(!text.contains(secret), "{secret:?} leaked into:\n{text}");
        }
    }
}

#[test]
fn digest_and_basic_with_curl() {
    let s = TestServer::start();
    add_phone(&s, &[]);
    let url = format!("http://{}/{MAC}.cfg", s.http);

    let (missing, _) = curl_with(&url, UA, &[]);
    assert_eq!(missing.status, 401, "{}", s.log());
    let challenges: Vec<_> =
        missing.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("www-authenticate")).map(|(_, v)| v).collect();
    assert!(challenges[0].contains("algorithm=SHA-256") && challenges[1].contains("algorithm=MD5"), "{challenges:?}");
    assert!(missing.body.is_empty());

    let right = format!("phone1:{HTTP_PASSWORD}");
    let (ok, _) = curl_with(&url, UA, &["--digest", "--user", &right]);
    assert_eq!(ok.status, 200, "{}", s.log());
    let text = ok.text();
    // The template writes the credentials the phone must keep using.
    assert!(text.contains("static.auto_provision.server.username = phone1\n"), "{text}");
    assert!(text.contains(&format!("static.auto_provision.server.password = {HTTP_PASSWORD}\n")), "{text}");
    let (wrong, _) = curl_with(&url, UA, &["--digest", "--user", "phone1:guess"]);
    assert_eq!(wrong.status, 401);
    let (wrong_user, _) = curl_with(&url, UA, &["--digest", "--user", &format!("other:{HTTP_PASSWORD}")]);
    assert_eq!(wrong_user.status, 401);

    // MD5 only, for old firmware.
    s.ok(&["device", "set", MAC, "http.auth=digest-md5"]);
    let (md5, _) = curl_with(&url, UA, &["--digest", "--user", &right]);
    assert_eq!(md5.status, 200);

    // Basic is refused over plain HTTP (it would send the password in clear) unless allowed.
    s.ok(&["device", "set", MAC, "http.auth=basic"]);
    let (plain, _) = curl_with(&url, UA, &["--basic", "--user", &right]);
    assert_eq!(plain.status, 403);
    s.ok(&["device", "set", MAC, "http.allow_basic_plain=1"]);
    assert_eq!(curl_with(&url, UA, &["--basic", "--user", &right]).0.status, 200);
    assert_eq!(curl_with(&url, UA, &["--basic", "--user", "phone1:guess"]).0.status, 401);
    let (none, _) = curl_with(&url, UA, &[]);
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").unwrap().starts_with("Basic realm="));

    // An allow-list on the device's group keeps other networks out, credentials or not.
    s.ok(&["group", "set", "office", "http.allow_from=10.0.0.0/8"]);
    s.ok(&["device", "set", MAC, "--group", "office"]);
    assert_eq!(curl_with(&url, UA, &["--basic", "--user", &right]).0.status, 403);

    // The audit trail says how each fetch was accepted and what was refused.
    let log = s.ok(&["device", "log", MAC, "--json"]);
    let auths = accepted_by(&log);
    assert!(auths.iter().any(|a| a.starts_with("digest-")) && auths.contains(&"basic".to_string()), "{log}");
    assert!(log.contains("wrong user name or password") && log.contains("http.allow_from"), "{log}");
    assert_no_secret_leaks(&s);
}

#[test]
fn replayed_digest_header_is_refused() {
    let s = TestServer::start();
    add_phone(&s, &[]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    let (ok, trace) = curl_with(&url, UA, &["--digest", "--user", &format!("phone1:{HTTP_PASSWORD}")]);
    assert_eq!(ok.status, 200);
    let sent = trace
        .lines()
        .find_map(|l| l.strip_prefix("> Authorization: "))
        .expect("curl -v shows the Authorization it sent")
        .trim()
        .to_string();
    let (replayed, _) = curl_with(&url, UA, &["-H", &format!("Authorization: {sent}")]);
    assert_eq!(replayed.status, 401, "a captured Digest header must not work twice");
    let log = s.ok(&["device", "log", MAC, "--json"]);
    assert!(log.contains("replayed Digest nonce count"), "{log}");
    assert_no_secret_leaks(&s);
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

/// A self-signed CA named `name` (`name.pem`, `name.key`).
fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A certificate signed by `ca` for `subject`, with extensions from `ext` (openssl extfile lines).
fn signed(dir: &Path, ca: &str, name: &str, subject: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

#[test]
fn https_with_and_without_client_certificates() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    ca(d, "devices-ca");
    ca(d, "server-ca");
    let server_ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
    signed(d, "server-ca", "server", "/CN=localhost", server_ext);
    let client_ext = "extendedKeyUsage=clientAuth\n";
    signed(d, "devices-ca", "own", &format!("/CN={MAC}"), client_ext);
    // Cisco style: the MAC in S=/ST, a 12-hex-digit serial in L= that must not be taken for a MAC.
    signed(d, "devices-ca", "cisco", "/OU=CP-8841-3PCC/L=88012BA01234/ST=0015650000ff", client_ext);
    let p = |f: &str| d.join(f).display().to_string();
    let s = TestServer::start_with_config(&format!(
        "[http.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = [\"{}\"]\nclient_cert = \"request\"\nreload_secs = 1\n",
        p("server.pem"),
        p("server.key"),
        p("devices-ca.pem")
    ));
    add_phone(&s, &[]);
    let https = s.listening("https").expect("listening.json names the HTTPS listener");
    let url = format!("https://{https}/{MAC}.cfg");
    let ca_arg = p("server-ca.pem");

    let (anonymous, _) = curl_with(&url, UA, &["--cacert", &ca_arg]);
    assert_eq!(anonymous.status, 401, "no certificate: the password is still needed");
    let own = [p("own.pem"), p("own.key")];
    let (with_cert, _) = curl_with(&url, UA, &["--cacert", &ca_arg, "--cert", &own[0], "--key", &own[1]]);
    assert_eq!(with_cert.status, 200, "{}", s.log());
    assert!(with_cert.text().contains(SIP_PASSWORD));
    let cisco = [p("cisco.pem"), p("cisco.key")];
    let (other, _) = curl_with(&url, UA, &["--cacert", &ca_arg, "--cert", &cisco[0], "--key", &cisco[1]]);
    assert_eq!(other.status, 403, "a certificate naming another device cannot fetch this one");
    // Basic needs no opt-in over TLS.
    s.ok(&["device", "set", MAC, "http.auth=basic"]);
    let basic = curl_with(&url, UA, &["--cacert", &ca_arg, "--basic", "--user", &format!("phone1:{HTTP_PASSWORD}")]);
    assert_eq!(basic.0.status, 200);

    // A renewed certificate (from another CA here) is picked up without a restart.
    ca(d, "renewed-ca");
    signed(d, "renewed-ca", "server", "/CN=localhost", server_ext);
    let renewed = p("renewed-ca.pem");
    assert!(
        eventually(Duration::from_secs(10), || {
            let out =
                Command::new("curl").args(["-s", "-o", "/dev/null", "--cacert", &renewed, &url]).output().unwrap();
            out.status.success()
        }),
        "the renewed certificate was not loaded: {}",
        s.log()
    );
    let log = s.ok(&["device", "log", MAC, "--json"]);
    assert!(
        accepted_by(&log).contains(&"client-certificate".to_string()) && log.contains("names another device"),
        "{log}"
    );
    assert_no_secret_leaks(&s);
}

#[test]
fn yealink_aes_files_decrypt_with_openssl() {
    let s = TestServer::start();
    add_phone(&s, &[&format!("yealink.aes_key={AES_KEY}"), "yealink.aes_key_file=1"]);
    let auth = format!("phone1:{HTTP_PASSWORD}");
    let url = format!("http://{}/{MAC}.cfg", s.http);
    let (sealed, _) = curl_with(&url, UA, &["--digest", "--user", &auth]);
    assert_eq!(sealed.status, 200, "{}", s.log());
    assert!(!sealed.text().contains("#!version"), "the file is encrypted");
    assert_eq!(sealed.body, s.render(MAC, None), "render shows the served (encrypted) bytes");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sealed.cfg"), &sealed.body).unwrap();
    let hex_key: String = AES_KEY.bytes().map(|b| format!("{b:02x}")).collect();
    let decrypt = |cipher: &str, key: &str, extra: &[&str]| {
        run(Command::new("openssl")
            .current_dir(dir.path())
            .args(["enc", "-d", cipher, "-K", key, "-in", "sealed.cfg"])
            .args(extra))
    };
    let plain = decrypt("-aes-128-ecb", &hex_key, &[]);

    // The key file holds the same key, wrapped with the firmware's public key.
    let key_url = format!("http://{}/{MAC}_Security.enc", s.http);
    assert_eq!(curl_with(&key_url, UA, &[]).0.status, 401, "the key file is as protected as the config");
    let (key_file, _) = curl_with(&key_url, UA, &["--digest", "--user", &auth]);
    assert_eq!(key_file.status, 200);
    std::fs::write(dir.path().join("key.enc"), &key_file.body).unwrap();
    let fixed: String = b"EKs35XacP6eybA25".iter().map(|b| format!("{b:02x}")).collect();
    let unwrapped = run(Command::new("openssl").current_dir(dir.path()).args([
        "enc",
        "-d",
        "-aes-128-ecb",
        "-nopad",
        "-K",
        &fixed,
        "-in",
        "key.enc",
    ]));
    assert_eq!(unwrapped, AES_KEY.as_bytes());

    // Space padding, then AES-256 with a 32-character key.
    s.ok(&["device", "set", MAC, "yealink.aes_padding=space"]);
    let spaced = curl_with(&url, UA, &["--digest", "--user", &auth]).0.body;
    std::fs::write(dir.path().join("sealed.cfg"), &spaced).unwrap();
    let raw = decrypt("-aes-128-ecb", &hex_key, &["-nopad"]);
    assert_eq!(raw.len() % 16, 0);
    assert_eq!(String::from_utf8_lossy(&raw).trim_end_matches(' '), String::from_utf8_lossy(&plain));
    let long_key = "0123456789abcdefABCDEF#$%*+,-.:=";
    s.ok(&["device", "set", MAC, &format!("yealink.aes_key={long_key}"), "yealink.aes_padding="]);
    let sealed256 = curl_with(&url, UA, &["--digest", "--user", &auth]).0.body;
    std::fs::write(dir.path().join("sealed.cfg"), &sealed256).unwrap();
    let long_hex: String = long_key.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(decrypt("-aes-256-ecb", &long_hex, &[]), plain);

    // And the decrypted bytes are exactly the plaintext render.
    s.ok(&["device", "set", MAC, "yealink.aes_key="]);
    assert_eq!(plain, s.render(MAC, None));
    assert!(String::from_utf8_lossy(&plain).starts_with("#!version:1.0.0.1\n"));
    let log = s.log();
    assert!(!log.contains(long_key), "the 32-character key leaked into the log");
    assert_no_secret_leaks(&s);
}

/// One raw HTTP/1.1 request, for speed; returns the status and the body.
fn raw_get(addr: &str, path: &str, user_agent: &str) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: prov\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let status = std::str::from_utf8(&response[..12.min(response.len())])
        .ok()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    (status, response[split..].to_vec())
}

#[test]
fn mac_scan_leaks_nothing_and_is_throttled() {
    let s = TestServer::start_with_config("[security]\nmax_failures = 50\nblock_secs = 60\n");
    add_phone(&s, &[]);
    // Credentials for every phone, set globally: unknown MACs then get the same challenge.
    s.ok(&["settings", "set", "http.username=fleet", &format!("http.password={HTTP_PASSWORD}")]);
    let (known, _) = raw_get(&s.http, &format!("/{MAC}.cfg"), UA_NO_MAC);
    assert_eq!(known, 401);

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mac = format!("{:012x}", seed & 0xffff_ffff_ffff);
        let (status, body) = raw_get(&s.http, &format!("/{mac}.cfg"), UA_NO_MAC);
        assert!(status == 401 || status == 429, "unexpected {status} for {mac}");
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("account.") && !body.contains(SIP_PASSWORD), "{body}");
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&401), Some(&51), "401 until past the threshold: {statuses:?}");
    assert_eq!(statuses.get(&429), Some(&949), "then 429: {statuses:?}");
    // The blocked source gets nothing at all now, not even a known device's challenge.
    assert_eq!(raw_get(&s.http, &format!("/{MAC}.cfg"), UA_NO_MAC).0, 429);
    let log = s.log();
    assert!(log.contains("source blocked") && log.contains("127.0.0.1"), "{log}");
    assert_no_secret_leaks(&s);
}

#[test]
fn first_fetch_window_and_unlock() {
    let mut s = TestServer::start_with_config("[security]\nfirst_fetch_window_secs = 5\n");
    add_phone(&s, &[]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    let (first, _) = curl_with(&url, UA, &[]);
    assert_eq!(first.status, 200, "a new device gets its credentials without any: {}", s.log());
    assert!(first.text().contains("static.auto_provision.server.username = phone1"));
    assert!(eventually(Duration::from_secs(10), || curl_with(&url, UA, &[]).0.status == 401), "window never closed");
    assert_eq!(curl_with(&url, UA, &["--digest", "--user", &format!("phone1:{HTTP_PASSWORD}")]).0.status, 200);
    let out = s.ok(&["device", "unlock", MAC]);
    assert!(out.contains("window open"), "{out}");
    assert_eq!(curl_with(&url, UA, &[]).0.status, 200);
    let log = s.ok(&["device", "log", MAC, "--json"]);
    assert!(log.contains("first-fetch-window") && log.contains("unlocked"), "{log}");
    // A restart keeps the window the operator opened.
    s.stop();
    let config = s.data_dir().join("sipprov.toml");
    s.spawn(&["--config", config.to_str().unwrap()]);
    let url = format!("http://{}/{MAC}.cfg", s.http);
    assert_eq!(curl_with(&url, UA, &[]).0.status, 200, "the unlock was lost in the restart: {}", s.log());
    assert_no_secret_leaks(&s);
}

#[test]
fn required_client_certificate_refuses_the_handshake_without_one() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    ca(d, "devices-ca");
    signed(d, "devices-ca", "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    signed(d, "devices-ca", "own", &format!("/CN=SEP{}", MAC.to_uppercase()), "extendedKeyUsage=clientAuth\n");
    let p = |f: &str| d.join(f).display().to_string();
    let s = TestServer::start_with_config(&format!(
        "[http.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = [\"{}\"]\nclient_cert = \"require\"\n",
        p("server.pem"),
        p("server.key"),
        p("devices-ca.pem")
    ));
    add_phone(&s, &[]);
    let url = format!("https://{}/{MAC}.cfg", s.listening("https").unwrap());
    let bare = Command::new("curl").args(["-sS", "-o", "/dev/null", "--cacert", &p("devices-ca.pem"), &url]).output();
    assert!(!bare.unwrap().status.success(), "no certificate, no TLS session");
    let (ok, _) =
        curl_with(&url, UA, &["--cacert", &p("devices-ca.pem"), "--cert", &p("own.pem"), "--key", &p("own.key")]);
    assert_eq!(ok.status, 200, "CN=SEP<MAC> identifies the device: {}", s.log());
    assert_no_secret_leaks(&s);
}
