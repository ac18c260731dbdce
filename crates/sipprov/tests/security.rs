//! Secure provisioning end to end: Digest and Basic with curl, HTTPS with and without client
//! certificates (made here with the openssl CLI), Yealink AES decrypted by openssl, MAC scans by
//! path, key-file name and User-Agent, a replayed Digest header, and no password in any log.
//! The default posture (first-fetch window, generated credentials, open groups) is in
//! `posture.rs`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{accepted_by, curl_with, eventually, fetches_accepted_by, run, TestServer};

/// No first-fetch window: tests of credentials and certificates, where a window would let the
/// first unauthenticated request through.
const NO_WINDOW: &str = "[security]\nfirst_fetch_window_secs = 0\n";

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
    let s = TestServer::start_closed_with_config(NO_WINDOW);
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
    let s = TestServer::start_closed_with_config(NO_WINDOW);
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

/// Requests sent with one nonce over parallel connections reach the server out of nonce-count
/// order: each count is accepted once, in whatever order, and a count seen before is refused.
/// The client is Python (its own SHA-256 Digest arithmetic, RFC 7616 §3.4.1), one connection
/// per request, counts sent 3, 2, 1, then 2 again.
#[test]
fn digest_counts_out_of_order_are_accepted_once_and_replays_refused() {
    let s = TestServer::start_closed_with_config(NO_WINDOW);
    add_phone(&s, &[]);
    let client = r#"
import hashlib, http.client, re, sys
host, path, ua, password = sys.argv[1:5]
def get(headers):
    c = http.client.HTTPConnection(*host.split(":"))
    c.request("GET", path, headers=dict(headers, **{"User-Agent": ua}))
    r = c.getresponse(); r.read(); c.close()
    return r
challenge = get({}).getheader("WWW-Authenticate")
realm, nonce = re.search(r'realm="([^"]+)"', challenge)[1], re.search(r'nonce="([^"]+)"', challenge)[1]
h = lambda t: hashlib.sha256(t.encode()).hexdigest()
ha1, ha2 = h(f"phone1:{realm}:{password}"), h(f"GET:{path}")
statuses = []
for nc in ["00000003", "00000002", "00000001", "00000002"]:
    response = h(f"{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}")
    auth = (f'Digest username="phone1", realm="{realm}", nonce="{nonce}", uri="{path}", algorithm=SHA-256, '
            f'qop=auth, nc={nc}, cnonce="c0ffee", response="{response}"')
    statuses.append(str(get({"Authorization": auth}).status))
print(" ".join(statuses))
"#;
    let path = format!("/{MAC}.cfg");
    let out = Command::new("python3")
        .args(["-c", client, &s.http, &path, UA, HTTP_PASSWORD])
        .output()
        .expect("python3 is installed");
    let statuses = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        statuses,
        "200 200 200 401",
        "nc 3, 2, 1 accepted once each, 2 again refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = s.ok(&["device", "log", MAC, "--json"]);
    assert!(log.contains("replayed Digest nonce count"), "{log}");
    // Three fetches accepted by Digest, whether the fetch log merged them into one event or a
    // write fell between them (a refusal is written within 250 ms and takes pending fetches along).
    assert_eq!(fetches_accepted_by(&log, "digest-sha256"), 3, "{log}");
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
    let s = TestServer::start_closed_with_config(&format!(
        "{NO_WINDOW}[http.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = [\"{}\"]\nclient_cert = \"request\"\nreload_secs = 1\n",
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
    let s = TestServer::start_closed_with_config(NO_WINDOW);
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
    // A 32-character key cannot go in a key file: refused while key files are on, with the reason.
    let long_key = "0123456789abcdefABCDEF#$%*+,-.:=";
    let refused = s.fails(&["device", "set", MAC, &format!("yealink.aes_key={long_key}")]);
    assert!(refused.contains("16-character") && refused.contains("yealink.aes_key_file"), "{refused}");
    assert!(!refused.contains(long_key), "the refusal shows the key: {refused}");
    s.ok(&[
        "device",
        "set",
        MAC,
        &format!("yealink.aes_key={long_key}"),
        "yealink.aes_padding=",
        "yealink.aes_key_file=0",
    ]);
    assert_eq!(curl_with(&key_url, UA, &["--digest", "--user", &auth]).0.status, 404, "no key file any more");
    let sealed256 = curl_with(&url, UA, &["--digest", "--user", &auth]).0.body;
    std::fs::write(dir.path().join("sealed.cfg"), &sealed256).unwrap();
    let long_hex: String = long_key.bytes().map(|b| format!("{b:02x}")).collect();
    // The same file, but telling the phone to use the key it was given by hand.
    let in_file = |on: &str| format!("static.auto_provision.aes_key_in_file = {on}\n");
    let expected = String::from_utf8_lossy(&plain).replace(&in_file("1"), &in_file("0"));
    assert_eq!(String::from_utf8(decrypt("-aes-256-ecb", &long_hex, &[])).unwrap(), expected);

    // And the decrypted bytes are exactly the plaintext render.
    s.ok(&["device", "set", MAC, "yealink.aes_key=", "yealink.aes_key_file=1"]);
    assert_eq!(plain, s.render(MAC, None));
    assert!(String::from_utf8_lossy(&plain).starts_with("#!version:1.0.0.1\n"));
    let log = s.log();
    assert!(!log.contains(long_key), "the 32-character key leaked into the log");
    assert_no_secret_leaks(&s);
}

/// Writes `bytes` to `dir/name` and decrypts it with `openssl enc -d -aes-128-ecb -K <key>`.
fn openssl_decrypt(dir: &Path, name: &str, bytes: &[u8], key: &str, extra: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join(name), bytes).unwrap();
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["enc", "-d", "-aes-128-ecb", "-K", &hex, "-in", name])
        .args(extra))
}

/// Yealink SIP-T4X IP Phones Auto Provisioning Guide (p.36): "the phone uses the Common AES key
/// to decrypt the Common CFG file and the MAC-Oriented AES key to decrypt the CFG file". Both files and both key files, through openssl.
#[test]
fn yealink_common_and_mac_files_both_decrypt_with_openssl() {
    const COMMON_KEY: &str = "C0mmon-Key.16chr";
    let s = TestServer::start_closed_with_config(NO_WINDOW);
    add_phone(&s, &[&format!("yealink.aes_key={AES_KEY}")]);
    s.ok(&["settings", "set", &format!("yealink.common_aes_key={COMMON_KEY}"), "yealink.aes_key_file=1"]);
    let dir = tempfile::tempdir().unwrap();
    let fixed = "EKs35XacP6eybA25";

    // The common file: served to anyone (it holds no secrets), encrypted with the common key.
    let common_url = format!("http://{}/y000000000066.cfg", s.http);
    let common = curl_with(&common_url, UA_NO_MAC, &[]).0;
    assert_eq!(common.status, 200, "{}", s.log());
    assert!(!common.text().contains("#!version"), "the common file is encrypted");
    let plain_common = openssl_decrypt(dir.path(), "common.cfg", &common.body, COMMON_KEY, &[]);
    assert!(String::from_utf8_lossy(&plain_common).starts_with("#!version:1.0.0.1\n"));
    assert!(String::from_utf8_lossy(&plain_common).contains("static.auto_provision.aes_key_in_file = 1"));
    // Its key file, open like the common file, wraps the common key with the public firmware key.
    let common_key_url = format!("http://{}/y000000000066_Security.enc", s.http);
    let key_file = curl_with(&common_key_url, UA_NO_MAC, &[]).0;
    assert_eq!(key_file.status, 200, "{}", s.log());
    assert_eq!(key_file.body.len(), 16);
    assert_eq!(openssl_decrypt(dir.path(), "common.enc", &key_file.body, fixed, &["-nopad"]), COMMON_KEY.as_bytes());

    // The MAC file: its own key, its own (protected) key file.
    let auth = format!("phone1:{HTTP_PASSWORD}");
    let mac_file = curl_with(&format!("http://{}/{MAC}.cfg", s.http), UA, &["--digest", "--user", &auth]).0;
    assert_eq!(mac_file.status, 200);
    let plain_mac = openssl_decrypt(dir.path(), "mac.cfg", &mac_file.body, AES_KEY, &[]);
    assert!(String::from_utf8_lossy(&plain_mac).contains("account.1.user_name = 1001"));
    let mac_key_url = format!("http://{}/{MAC}_Security.enc", s.http);
    assert_eq!(curl_with(&mac_key_url, UA, &[]).0.status, 401);
    let mac_key = curl_with(&mac_key_url, UA, &["--digest", "--user", &auth]).0;
    assert_eq!(openssl_decrypt(dir.path(), "mac.enc", &mac_key.body, fixed, &["-nopad"]), AES_KEY.as_bytes());

    // The common key is global only, never the MAC key, and never 32 characters with key files on.
    let err = s.fails(&["group", "set", "lab", &format!("yealink.common_aes_key={COMMON_KEY}")]);
    assert!(err.contains("global"), "{err}");
    let err = s.fails(&["device", "set", MAC, &format!("yealink.aes_key={COMMON_KEY}")]);
    assert!(err.contains("differ") && !err.contains(COMMON_KEY), "{err}");
    let err = s.fails(&["settings", "set", "yealink.common_aes_key=0123456789abcdef0123456789abcdef"]);
    assert!(err.contains("16-character"), "{err}");
    // Without the common key the common file is plain again and its key file is gone.
    s.ok(&["settings", "set", "yealink.common_aes_key="]);
    assert!(curl_with(&common_url, UA_NO_MAC, &[]).0.text().starts_with("#!version:1.0.0.1\n"));
    assert_eq!(curl_with(&common_key_url, UA_NO_MAC, &[]).0.status, 404);
    assert_no_secret_leaks(&s);
    assert!(!s.log().contains(COMMON_KEY), "the common key leaked into the log");
}

/// A 32-character device key and key files switched on for its group: the pair is refused
/// whichever level is changed last, so the key file can never be a silent 404.
#[test]
fn yealink_long_key_and_group_key_files_are_refused_across_levels() {
    let s = TestServer::start_closed_with_config(NO_WINDOW);
    let long_key = "0123456789abcdefABCDEF#$%*+,-.:=";
    let key = format!("yealink.aes_key={long_key}");
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--group", "lab", "--set", &key]);
    let err = s.fails(&["group", "set", "lab", "yealink.aes_key_file=1"]);
    assert!(err.contains(MAC) && err.contains("16-character"), "{err}");
    let err = s.fails(&["settings", "set", "yealink.aes_key_file=1"]);
    assert!(err.contains(MAC) && err.contains("16-character"), "{err}");
    // The other way round: key files on the group first, then the long key on the device.
    s.ok(&["device", "set", MAC, "yealink.aes_key="]);
    s.ok(&["group", "set", "lab", "yealink.aes_key_file=1"]);
    let err = s.fails(&["device", "set", MAC, &format!("yealink.aes_key={long_key}")]);
    assert!(err.contains("16-character") && !err.contains(long_key), "{err}");
    s.ok(&["device", "set", MAC, &format!("yealink.aes_key={AES_KEY}")]);
    // An imported device is held to the same rule, and nothing of the file is imported.
    let csv = s.data_dir().join("long-key.csv");
    std::fs::write(
        &csv,
        format!("mac,vendor,model,group,yealink.aes_key\n001565000077,yealink,T46S,lab,\"{long_key}\"\n"),
    )
    .unwrap();
    let err = s.fails(&["device", "import", csv.to_str().unwrap()]);
    assert!(err.contains("001565000077") && err.contains("16-character") && !err.contains(long_key), "{err}");
    assert_eq!(s.json(&["device", "list", "--json"]).as_array().unwrap().len(), 1);
}

/// One raw HTTP/1.1 request from `source` (any 127.0.0.0/8 address: each is its own throttle
/// entry), for speed; returns the status, the headers and the body.
fn raw_from(source: [u8; 4], addr: &str, path: &str, user_agent: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let target: std::net::SocketAddr = addr.parse().expect("listener address");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((source, 0)).into()).unwrap();
    socket.connect(&target.into()).expect("connect");
    let mut stream: TcpStream = socket.into();
    let request = format!("GET {path} HTTP/1.1\r\nHost: prov\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, response[split + 4..].to_vec())
}

/// What a scanner can compare between two answers: the status and every header, with the
/// date and the nonce values (fresh in every challenge) blanked.
fn fingerprint(status: u16, headers: &[(String, String)]) -> String {
    let mut out = format!("{status}");
    for (k, v) in headers.iter().filter(|(k, _)| k != "date") {
        let mut v = v.clone();
        while let Some(i) = v.find("nonce=\"").map(|i| i + 7) {
            let end = v[i..].find('"').map_or(v.len(), |e| i + e);
            v = format!("{}NONCE{}", &v[..i - 7], &v[end..]);
        }
        out.push_str(&format!("\n{k}: {v}"));
    }
    out
}

const GIGASET_MAC: &str = "7c2f80e0d605";
const AUDIOCODES_MAC: &str = "00908f602aac";

/// 200 scan requests of one shape from `source`, the known MAC third; every answer before the
/// block must look the same, and there must be exactly `max_failures` (20) of them.
fn scan(s: &TestServer, source: [u8; 4], known: &str, request: impl Fn(&str) -> (String, String)) {
    let mut seed = 0x2545_f491_4f6c_dd1du64 ^ u64::from(source[3]);
    let mut macs: Vec<String> = (0..200)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Locally administered unicast, so it can never be one of the known devices.
            format!("{:012x}", (seed & 0xfcff_ffff_ffff) | 0x0200_0000_0000)
        })
        .collect();
    macs[2] = known.to_string();
    let mut answers = Vec::new();
    for mac in &macs {
        let (path, ua) = request(mac);
        let (status, headers, body) = raw_from(source, &s.http, &path, &ua);
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains(SIP_PASSWORD) && !body.contains("account."), "{mac}: {body}");
        answers.push((status, fingerprint(status, &headers)));
    }
    let (before, after) = answers.split_at(20);
    let first = &before[0].1;
    assert!(first.starts_with("401") && first.contains("www-authenticate: Digest"), "{first}");
    for (i, (_, f)) in before.iter().enumerate() {
        assert_eq!(f, first, "answer {i} ({}) differs from the first: {}", macs[i], s.log());
    }
    assert!(after.iter().all(|(status, _)| *status == 429), "blocked after max_failures answers: {after:?}");
}

/// The three ways a request names a device: the path, the key-file name, the User-Agent alone.
fn scans_learn_nothing(global_credentials: bool) {
    let s = TestServer::start_closed_with_config("[security]\nmax_failures = 20\nblock_secs = 60\n");
    let key = format!("yealink.aes_key={AES_KEY}");
    let sip = format!("line.1.password={SIP_PASSWORD}");
    let yealink = ["--set", &key, "--set", "yealink.aes_key_file=1", "--set", "line.1.username=1001", "--set", &sip];
    s.ok(&[&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"][..], &yealink].concat());
    s.ok(&["device", "add", GIGASET_MAC, "--vendor", "gigaset", "--model", "N870", "--set", "line.1.username=1002"]);
    s.ok(&["device", "add", AUDIOCODES_MAC, "--vendor", "audiocodes", "--model", "440HD"]);
    // Past the first-fetch window of each: their first fetches happened (from elsewhere).
    let gigaset_ua = format!("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{}", GIGASET_MAC.to_uppercase());
    assert_eq!(raw_from([127, 0, 0, 9], &s.http, &format!("/{MAC}.cfg"), UA).0, 200);
    assert_eq!(raw_from([127, 0, 0, 9], &s.http, "/provisioning.xml", &gigaset_ua).0, 200);
    assert_eq!(raw_from([127, 0, 0, 9], &s.http, &format!("/{AUDIOCODES_MAC}.cfg"), UA_NO_MAC).0, 200);
    if global_credentials {
        s.ok(&["settings", "set", "http.username=fleet", &format!("http.password={HTTP_PASSWORD}")]);
    }
    scan(&s, [127, 0, 0, 2], GIGASET_MAC, |mac| {
        ("/provisioning.xml".into(), format!("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{}", mac.to_uppercase()))
    });
    scan(&s, [127, 0, 0, 3], MAC, |mac| (format!("/{mac}_Security.enc"), UA_NO_MAC.into()));
    // A 400HD has no key file, a Yealink-shaped name all the same.
    scan(&s, [127, 0, 0, 4], AUDIOCODES_MAC, |mac| (format!("/{mac}_Security.enc"), UA_NO_MAC.into()));
    scan(&s, [127, 0, 0, 5], AUDIOCODES_MAC, |mac| (format!("/{mac}.cfg"), UA_NO_MAC.into()));
    let log = s.log();
    assert!(log.contains("source blocked") && log.contains("127.0.0.2") && log.contains("127.0.0.5"), "{log}");
    // The known devices are still served to whoever authenticates.
    if global_credentials {
        let url = format!("http://{}/provisioning.xml", s.http);
        let gigaset_ua = format!("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;{}", GIGASET_MAC.to_uppercase());
        let (ok, _) = curl_with(&url, &gigaset_ua, &["--digest", "--user", &format!("fleet:{HTTP_PASSWORD}")]);
        assert_eq!(ok.status, 200, "{}", s.log());
    }
    assert_no_secret_leaks(&s);
}

#[test]
fn scans_by_path_key_file_and_user_agent_learn_nothing_without_global_credentials() {
    scans_learn_nothing(false);
}

#[test]
fn scans_by_path_key_file_and_user_agent_learn_nothing_with_global_credentials() {
    scans_learn_nothing(true);
}

#[test]
fn required_client_certificate_refuses_the_handshake_without_one() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    ca(d, "devices-ca");
    signed(d, "devices-ca", "server", "/CN=localhost", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    signed(d, "devices-ca", "own", &format!("/CN=SEP{}", MAC.to_uppercase()), "extendedKeyUsage=clientAuth\n");
    let p = |f: &str| d.join(f).display().to_string();
    let s = TestServer::start_closed_with_config(&format!(
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
