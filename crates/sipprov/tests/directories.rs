//! Remote phone directories against the real server: a CSV import (and a bad one refused
//! naming its line and column, nothing written), each vendor's device fetching its directory
//! with its own credentials (parsed as XML by a parser that is not ours) and refused without
//! them, the config naming the directory URL where the vendor maps it, `directory.name`
//! checked where it is written, removal refused while named, and a catalog ringtone turned
//! into the ringtone URL of the config.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Fetched, TestServer};

const CSV: &str = "name,office,mobile,other\n\
    \"Smith & \"\"Sons\"\" <Sales>\",1001,+49 151 1234,\n\
    Zoë O'Brien,,0170 555,2002\n\
    Reception,*97,,\n";

/// (vendor, model, MAC, the root element of its directory, the path its phone fetches).
const PHONES: &[(&str, &str, &str, &str, &str)] = &[
    ("yealink", "T46S", "001565000001", "YealinkIPPhoneDirectory", "/directory/001565000001.xml"),
    ("snom", "D785", "000413000002", "SnomIPPhoneDirectory", "/directory/000413000002.xml"),
    ("cisco", "CP-8841-3PCC", "00562b000003", "CiscoIPPhoneDirectory", "/directory/00562b000003.xml"),
    ("grandstream", "GXP2170", "c074ad000004", "AddressBook", "/directory/c074ad000004/phonebook.xml"),
    ("polycom", "VVX410", "0004f2000005", "directory", "/0004f2000005-directory.xml"),
    ("fanvil", "X4U", "0c383e000006", "FanvilIPPhoneDirectory", "/prov/directory/0c383e000006.xml"),
];

const UA: &str = "test-phone/1.0";

fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every element of `xml` as `path text` lines, by Python's parser (it fails on bad XML).
fn elements(xml: &[u8]) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
def walk(e, path):
    p = path + "/" + e.tag if path else e.tag
    sys.stdout.write("%s %s\n" % (p, (e.text or "").strip()))
    for c in e:
        walk(c, p)
walk(root, "")
"#;
    let mut child =
        Command::new("python3").args(["-c", SCRIPT]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(xml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not well-formed XML:\n{}", String::from_utf8_lossy(xml));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.trim_end().to_string()).collect()
}

fn credentials(mac: &str) -> String {
    format!("u{mac}:p{mac}-secret")
}

#[test]
fn directories_import_serve_per_device_and_refuse_what_they_must() {
    // Each refusal below counts against the test's one source address: room for all of them.
    let s = TestServer::start_closed_with_config("[security]\nmax_failures = 200\n");
    let dir = tempfile::tempdir().unwrap();
    let base = format!("http://{}/prov/", s.http);
    s.ok(&["settings", "set", &format!("provisioning.url={base}")]);

    // Import, then a bad file: refused naming line and column, the directory unchanged.
    let good = write_file(dir.path(), "staff.csv", CSV);
    assert!(s.ok(&["directory", "import", "staff", &good]).contains("3 contacts"));
    let bad = write_file(dir.path(), "bad.csv", "name,office\nAnn,1\nBob,12x!\n");
    let err = s.fails(&["directory", "import", "staff", &bad]);
    assert!(err.contains("line 3, column office") && err.contains("nothing was imported"), "{err}");
    let err = s.fails(&["directory", "import", "other", &write_file(dir.path(), "h.csv", "nom,office\nA,1\n")]);
    assert!(err.contains("line 1") && err.contains("nom"), "{err}");
    let shown = s.json(&["directory", "show", "staff", "--json"]);
    assert_eq!(shown["contacts"].as_array().unwrap().len(), 3, "the failed import wrote nothing");
    assert_eq!(shown["contacts"][0]["name"], "Smith & \"Sons\" <Sales>");
    let listed = s.ok(&["directory", "list"]);
    assert!(listed.contains("staff") && !listed.contains("other"), "{listed}");

    // directory.name must name a directory where it is written.
    let err = s.fails(&["group", "set", "office", "directory.name=nosuch"]);
    assert!(err.contains("directory.name") && err.contains("nosuch"), "{err}");
    s.ok(&["group", "set", "office", "directory.name=staff"]);

    for (vendor, model, mac, root, path) in PHONES {
        let (user, pass) = credentials(mac).split_once(':').map(|(u, p)| (u.to_string(), p.to_string())).unwrap();
        s.ok(&[
            "device",
            "add",
            mac,
            "--vendor",
            vendor,
            "--model",
            model,
            "--group",
            "office",
            "--set",
            &format!("http.username={user}"),
            "--set",
            &format!("http.password={pass}"),
        ]);
        // Without credentials: challenged, never the contacts.
        let anonymous = s.fetch(path, UA, &[]);
        assert_eq!(anonymous.status, 401, "{vendor}: {}", anonymous.text());
        assert!(!anonymous.text().contains("Smith"));
        // Wrong credentials: refused too.
        assert_eq!(s.fetch_digest(path, UA, &format!("{user}:wrong"), &[]).status, 401, "{vendor}");
        // With its own: its vendor's format, parsed as XML, names escaped and back.
        let got: Fetched = s.fetch_digest(path, UA, &credentials(mac), &[]);
        assert_eq!(got.status, 200, "{vendor} {path}: {}", s.log());
        assert!(got.header("content-type").unwrap().starts_with("application/xml"), "{vendor}");
        let lines = elements(&got.body);
        assert_eq!(lines[0].split(' ').next(), Some(*root), "{vendor}: {lines:?}");
        assert!(lines.iter().any(|l| l.ends_with(" Smith & \"Sons\" <Sales>")), "{vendor}: {lines:?}");
        assert!(lines.iter().any(|l| l.ends_with(" Zoë O'Brien")), "{vendor}: {lines:?}");
        assert!(lines.iter().any(|l| l.ends_with(" *97")), "{vendor}: {lines:?}");
        // A strong validator, and 304 for a client that holds the content.
        let etag = got.header("etag").unwrap().to_string();
        assert!(!etag.starts_with("W/"), "{etag}");
        let again = s.fetch_digest(path, UA, &credentials(mac), &[&format!("If-None-Match: {etag}")]);
        assert_eq!(again.status, 304, "{vendor}");
    }

    // Another device's credentials do not open a directory.
    let yealink = PHONES[0].4;
    assert_eq!(s.fetch_digest(yealink, UA, &credentials(PHONES[1].2), &[]).status, 401);
    // A MAC nobody knows gets what an unknown device's config file gets.
    let unknown_dir = s.fetch("/directory/001565999999.xml", UA, &[]).status;
    let unknown_cfg = s.fetch("/001565999999.cfg", UA, &[]).status;
    assert_eq!(unknown_dir, unknown_cfg);

    // Every vendor's config renders with directory.name set (those that do not map
    // directory.url go without it), and those that map it name this device's directory.
    for (vendor, _, mac, _, _) in PHONES {
        let cfg = String::from_utf8(s.render(mac, None)).unwrap();
        assert!(!cfg.contains("directory.name") && !cfg.contains("staff"), "{vendor}: server-side key leaked: {cfg}");
    }
    let yealink_cfg = String::from_utf8(s.render("001565000001", Some("001565000001.cfg"))).unwrap();
    assert!(
        yealink_cfg.contains(&format!("remote_phonebook.data.1.url = {base}directory/001565000001.xml")),
        "{yealink_cfg}"
    );
    let gs_cfg = String::from_utf8(s.render("c074ad000004", None)).unwrap();
    assert!(gs_cfg.contains("/directory/c074ad000004"), "{gs_cfg}");
    let cisco_cfg = String::from_utf8(s.render("00562b000003", None)).unwrap();
    assert!(cisco_cfg.contains(&format!("{base}directory/00562b000003.xml")), "{cisco_cfg}");

    // A change of contacts: a new ETag, the new content.
    let before = s.fetch_digest(yealink, UA, &credentials(PHONES[0].2), &[]);
    assert_eq!(before.status, 200, "{}", s.log());
    let changed = write_file(dir.path(), "changed.csv", "name,mobile\nNew Person,0800 1\n");
    s.ok(&["directory", "import", "staff", &changed]);
    let after = s.fetch_digest(yealink, UA, &credentials(PHONES[0].2), &[]);
    assert_ne!(before.header("etag"), after.header("etag"));
    assert!(after.text().contains("New Person") && !after.text().contains("Smith"));

    // Removal refused while a setting names the directory, then allowed; audited both ways.
    let err = s.fails(&["directory", "rm", "staff"]);
    assert!(err.contains("group office"), "{err}");
    s.ok(&["group", "set", "office", "directory.name="]);
    s.ok(&["directory", "rm", "staff"]);
    assert!(!s.ok(&["directory", "list"]).contains("staff"));
    assert_eq!(s.fetch_digest(yealink, UA, &credentials(PHONES[0].2), &[]).status, 404);
}

#[test]
fn a_catalog_ringtone_becomes_the_ringtone_url_of_the_config_and_stays_while_named() {
    let s = TestServer::start();
    let base = format!("http://{}/", s.http);
    s.ok(&["settings", "set", &format!("provisioning.url={base}")]);
    s.ok(&["device", "add", "001565000010", "--vendor", "yealink", "--model", "T46S", "--group", "sales"]);
    // Refused before the catalog has it.
    let err = s.fails(&["group", "set", "sales", "ringtone.file=Ring1.wav"]);
    assert!(err.contains("ringtone.file") && err.contains("Ring1.wav"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("Ring1.wav");
    std::fs::write(&wav, b"RIFF....WAVEfmt ").unwrap();
    s.ok(&["resource", "add", wav.to_str().unwrap(), "--kind", "ringtone"]);

    // A wallpaper key naming a ringtone is refused; the ringtone is taken, at group level.
    let err = s.fails(&["group", "set", "sales", "wallpaper.file=Ring1.wav"]);
    assert!(err.contains("wallpaper.file") && err.contains("ringtone"), "{err}");
    s.ok(&["group", "set", "sales", "ringtone.file=Ring1.wav"]);
    let cfg = String::from_utf8(s.render("001565000010", Some("001565000010.cfg"))).unwrap();
    assert!(cfg.contains(&format!("{base}files/Ring1.wav")), "{cfg}");

    // The file cannot go while the group names it; once the setting goes, it can.
    let err = s.fails(&["resource", "rm", "Ring1.wav"]);
    assert!(err.contains("group sales") && err.contains("ringtone.file"), "{err}");
    s.ok(&["group", "set", "sales", "ringtone.file="]);
    let cfg = String::from_utf8(s.render("001565000010", Some("001565000010.cfg"))).unwrap();
    assert!(!cfg.contains("Ring1.wav"), "{cfg}");
    s.ok(&["resource", "rm", "Ring1.wav"]);
}

/// A request to the admin API with `token` (the data directory's bootstrap token when `None`).
fn api(s: &TestServer, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Fetched {
    let bootstrap = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.unwrap_or(bootstrap.trim()));
    // The body goes through a file: 5001 contacts are past the argument list's limit.
    let dir = tempfile::tempdir().unwrap();
    let file = format!("@{}", dir.path().join("body.json").display());
    let mut args = vec!["-X", method, "-H", &auth];
    if let Some(b) = body {
        std::fs::write(&file[1..], b).unwrap();
        args.extend(["-H", "Content-Type: application/json", "--data-binary", &file]);
    }
    common::curl_with(&format!("http://{}{path}", s.api), "test", &args).0
}

#[test]
fn the_api_takes_json_names_the_field_at_fault_and_lets_read_only_tokens_read() {
    let s = TestServer::start();
    let body = r#"{"contacts":[{"name":"Ann","office":"1"},{"name":"Bob","office":"12x!"}]}"#;
    let bad = api(&s, None, "PUT", "/api/v1/directories/staff", Some(body));
    assert_eq!(bad.status, 400, "{}", bad.text());
    let problem: serde_json::Value = serde_json::from_slice(&bad.body).unwrap();
    assert_eq!(problem["field"], "contacts[1].office", "{problem}");
    assert_eq!(api(&s, None, "GET", "/api/v1/directories/staff", None).status, 404, "nothing was written");

    let many: Vec<String> = (0..5001).map(|i| format!(r#"{{"name":"P{i}","mobile":"{i}"}}"#)).collect();
    let too_many =
        api(&s, None, "PUT", "/api/v1/directories/big", Some(&format!(r#"{{"contacts":[{}]}}"#, many.join(","))));
    assert_eq!(too_many.status, 400, "{}", too_many.text());
    assert!(too_many.text().contains("at most 5000"), "{}", too_many.text());

    let good = r#"{"contacts":[{"name":"Ann","office":"1"},{"name":"Bob","mobile":"+49 2"}]}"#;
    assert_eq!(api(&s, None, "PUT", "/api/v1/directories/staff", Some(good)).status, 200);
    let reader = s.ok(&["token", "create", "reader", "--role", "read-only"]).trim().to_string();
    let shown = api(&s, Some(&reader), "GET", "/api/v1/directories/staff", None);
    assert_eq!(shown.status, 200);
    let d: serde_json::Value = serde_json::from_slice(&shown.body).unwrap();
    assert_eq!(d["contacts"][1]["mobile"], "+49 2");
    assert_eq!(api(&s, Some(&reader), "DELETE", "/api/v1/directories/staff", None).status, 403);
    assert_eq!(api(&s, Some(&reader), "PUT", "/api/v1/directories/staff", Some(good)).status, 403);
    let audit = s.ok(&["audit"]);
    assert!(audit.contains("directory.put") && !audit.contains("Ann"), "audited without the contacts: {audit}");

    // With security.open_device_files=1 (this server's posture), a directory is as open as the
    // device's files.
    s.ok(&["device", "add", "001565000020", "--vendor", "yealink", "--model", "T46S", "--set", "directory.name=staff"]);
    let open = s.fetch("/directory/001565000020.xml", UA, &[]);
    assert_eq!(open.status, 200, "{}", s.log());
    assert!(open.text().contains("<Name>Bob</Name>"), "{}", open.text());
}
