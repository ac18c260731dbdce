//! Files phones upload with PUT (Polycom `<mac>-phone.cfg` and logs, Yealink `<mac>-local.cfg`):
//! accepted for known devices only, authenticated like a fetch without spending the first-fetch
//! window, bounded per file and per device, stored latest per name and shown by the CLI.

mod common;

use common::{curl_with, Fetched, TestServer};

const MAC: &str = "0004f2aabbcc";
const UA: &str = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application";

/// PUTs `content` to `path` with curl (`-T`, so with a Content-Length) plus `args`.
fn put(s: &TestServer, path: &str, content: &[u8], args: &[&str]) -> Fetched {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload");
    std::fs::write(&file, content).unwrap();
    let file = file.to_str().unwrap().to_string();
    let mut all = vec!["-T", file.as_str()];
    all.extend_from_slice(args);
    curl_with(&format!("http://{}{path}", s.http), UA, &all).0
}

fn sha256_hex(content: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(content))
}

/// The `device.prov.user` / `device.prov.password` a Polycom device file carries.
fn credentials(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let value = |name: &str| {
        let prefix = format!("{name}=\"");
        let line = text.lines().map(str::trim).find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("{name}"));
        line[prefix.len()..line.len() - 1].to_string()
    };
    format!("{}:{}", value("device.prov.user"), value("device.prov.password"))
}

#[test]
fn polycom_uploads_are_authenticated_bounded_stored_and_listed() {
    let s = TestServer::start_closed_with_config("[uploads]\nmax_file_bytes = 1000\nmax_device_bytes = 1500\n");
    s.ok(&["device", "add", MAC, "--vendor", "polycom", "--model", "VVX410", "--set", "line.1.username=2001"]);
    let phone_cfg = format!("/{MAC}-phone.cfg");

    // Without credentials: challenged, and the device's first-fetch window is not spent.
    let anonymous = put(&s, &phone_cfg, b"<PHONE_CONFIG/>", &[]);
    assert_eq!(anonymous.status, 401, "{}", s.log());
    assert!(anonymous.header("www-authenticate").is_some());
    let (first, _) = curl_with(&format!("http://{}/{MAC}-device.cfg", s.http), UA, &[]);
    assert_eq!(first.status, 200, "the window is still open after a PUT: {}", s.log());
    let user = credentials(&first.body);
    let auth = ["--digest", "--user", user.as_str()];

    // With the credentials the device file handed over: created, then replaced.
    let v1 = b"<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity=\"2\"/></PHONE_CONFIG>\n".to_vec();
    assert_eq!(put(&s, &phone_cfg, &v1, &auth).status, 201, "{}", s.log());
    let v2 = b"<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity=\"3\"/></PHONE_CONFIG>\n".to_vec();
    assert_eq!(put(&s, &phone_cfg.to_uppercase().replace(".CFG", ".cfg"), &v2, &auth).status, 204);
    let log: Vec<u8> = (0..900u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(put(&s, &format!("/polycom/{MAC}-app.log"), &log, &auth).status, 201);

    // Bounded: a file over max_file_bytes, declared or chunked, and a device past its total.
    let big = vec![b'x'; 1001];
    assert_eq!(put(&s, &format!("/{MAC}-boot.log"), &big, &auth).status, 413);
    let chunked =
        put(&s, &format!("/{MAC}-boot.log"), &big, &[&auth[..], &["-H", "Transfer-Encoding: chunked"]].concat());
    assert_eq!(chunked.status, 413);
    assert_eq!(put(&s, &format!("/{MAC}-boot.log"), &[b'y'; 600], &auth).status, 413, "900 + 72 + 600 > 1500");

    // Only declared names: the device's own file, its master file and others' names get 405.
    for path in [format!("/{MAC}-device.cfg"), format!("/{MAC}.cfg"), format!("/{MAC}-local.cfg"), "/x.cfg".into()] {
        let refused = put(&s, &path, b"x", &auth);
        assert_eq!((refused.status, refused.header("allow")), (405, Some("GET, HEAD")), "{path}");
    }
    // Another vendor's name for this known MAC: 405 once authorised, and to a stranger the same
    // answer as for a MAC nobody knows, so it reveals nothing.
    assert_eq!(put(&s, &format!("/{MAC}-local.cfg"), b"x", &[]).status, 401);
    // An unknown MAC gets what a GET of an unknown device's file gets.
    let unknown_put = put(&s, "/0004f2000001-phone.cfg", b"x", &[]);
    let (unknown_get, _) = curl_with(&format!("http://{}/0004f2000001-device.cfg", s.http), UA, &[]);
    assert_eq!(unknown_put.status, unknown_get.status);
    assert_eq!(unknown_put.header("www-authenticate").is_some(), unknown_get.header("www-authenticate").is_some());

    // Listed and printed by the CLI, exactly as sent.
    let listed = s.json(&["device", "uploads", MAC, "--json"]);
    let rows: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_string(),
                u["size"].as_u64().unwrap(),
                u["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (format!("{MAC}-app.log"), 900, sha256_hex(&log)),
            (format!("{MAC}-phone.cfg"), v2.len() as u64, sha256_hex(&v2)),
        ]
    );
    let table = s.ok(&["device", "uploads", MAC]);
    assert!(table.contains(&format!("{MAC}-phone.cfg")) && table.contains("900"), "{table}");
    let printed = s.cli(&["device", "upload", MAC, &format!("{MAC}-app.log")]);
    assert!(printed.status.success());
    assert_eq!(printed.stdout, log, "bytes exactly as uploaded");
    let missing = s.fails(&["device", "upload", MAC, &format!("{MAC}-boot.log")]);
    assert!(missing.contains("no upload") && missing.contains("-phone.cfg"), "{missing}");
    let history = s.ok(&["device", "log", MAC]);
    assert!(history.contains("upload"), "{history}");
}

#[test]
fn yealink_local_cfg_is_accepted_and_other_vendors_names_are_not() {
    let s = TestServer::start();
    let yealink = "001565aabbcc";
    s.ok(&["device", "add", yealink, "--vendor", "yealink", "--model", "T46S"]);
    let local = b"#!version:1.0.0.1\nlocal_time.time_zone = +2\n";
    let stored = put(&s, &format!("/{yealink}-local.cfg"), local, &[]);
    assert_eq!(stored.status, 201, "{}", s.log());
    assert_eq!(s.cli(&["device", "upload", yealink, &format!("{yealink}-local.cfg")]).stdout, local);
    assert_eq!(put(&s, &format!("/{yealink}-phone.cfg"), b"x", &[]).status, 405, "a Polycom name for a Yealink");
    assert!(s.ok(&["device", "uploads", yealink]).contains("-local.cfg"));
    let ua_mismatch =
        put(&s, &format!("/{MAC}-phone.cfg"), b"x", &["-A", "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"]);
    assert_eq!(ua_mismatch.status, 403, "a User-Agent MAC contradicting the path");
}

#[test]
fn uploads_for_unknown_macs_count_against_the_source_like_fetches() {
    const MAX: usize = 4;
    let s = TestServer::start_closed_with_config(&format!("[security]\nmax_failures = {MAX}\nblock_secs = 300\n"));
    let statuses: Vec<u16> =
        (0..MAX + 1).map(|i| put(&s, &format!("/0004f20000{i:02x}-phone.cfg"), b"x", &[]).status).collect();
    assert!(statuses[..MAX].iter().all(|c| *c == 401), "{statuses:?}");
    assert_eq!(statuses[MAX], 429, "{statuses:?}");
    // The block covers fetches too: uploads are no way around the throttle.
    let (fetch, _) = curl_with(&format!("http://{}/000000000000.cfg", s.http), UA, &[]);
    assert_eq!(fetch.status, 429);
}
