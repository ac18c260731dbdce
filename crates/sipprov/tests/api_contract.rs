//! The admin API contract end to end: what the server answers reads into the `sipprov-api`
//! types with nothing left over, the CLI prints those typed fields, every error is an RFC 9457
//! problem document naming the field at fault, and an answer that drifts from the contract makes
//! the CLI fail naming the field instead of printing a `?`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use common::{curl_with, Fetched, TestServer};
use sipprov_api::{Device, Page, Problem, PROBLEM_CONTENT_TYPE};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";

/// One admin API request with the server's token; `body` is JSON.
fn api(s: &TestServer, method: &str, path: &str, body: Option<&str>) -> Fetched {
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.trim());
    let mut args = vec!["-X", method, "-H", &auth];
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data", b]);
    }
    curl_with(&format!("http://{}{path}", s.api), "test", &args).0
}

/// A server with one device in a group, which has fetched its file once.
fn server_with_a_device() -> TestServer {
    let s = TestServer::start();
    s.ok(&["group", "set", "sales", "time.zone=UTC"]);
    s.ok(&[
        "device",
        "add",
        MAC,
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--group",
        "sales",
        "--contact",
        "sip:1001@127.0.0.1:5062",
        "--set",
        "line.1.username=1001",
        "--set",
        "line.1.password=contractPw-7",
    ]);
    assert_eq!(s.fetch(&format!("/{MAC}.cfg"), UA, &[]).status, 200);
    s
}

/// Reads an answer into `T` and checks that `T` carries all of it: serializing the typed
/// value gives back exactly the JSON the server sent, so no member is outside the contract.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(answer: &Fetched) -> T {
    assert_eq!(answer.status, 200, "{}", answer.text());
    let raw: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
    let value: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{e}: {raw}"));
    assert_eq!(serde_json::to_value(&value).unwrap(), raw, "the answer has members the contract does not know");
    value
}

/// The CLI line `label value` as `output::device` prints it.
fn line(label: &str, value: &str) -> String {
    format!("{label:<18} {value}")
}

#[test]
fn device_show_and_list_print_the_contract_s_fields() {
    let s = server_with_a_device();
    let one: Device = typed(&api(&s, "GET", &format!("/api/v1/devices/{MAC}"), None));
    let all: Page<Device> = typed(&api(&s, "GET", "/api/v1/devices", None));
    assert_eq!(all.items, vec![Device { last_notify: None, ..one.clone() }]);
    assert_eq!((all.total, all.next_offset), (1, None));
    let fetched = one.last_fetch.clone().expect("the fetch was recorded");
    assert_eq!(one.settings.get("line.1.password"), Some("********"), "redacted");

    let show = s.ok(&["device", "show", MAC]);
    for expected in [
        line("mac", &one.mac.to_string()),
        line("vendor", &one.vendor),
        line("model", &one.model),
        line("group", one.group.as_deref().unwrap()),
        line("contact", one.contact.as_deref().unwrap()),
        line("files", &one.files.join(", ")),
        line("access", &one.access.device_files),
        line("last fetch", &format!("{} from {} ({})", time_of(&show, "last fetch"), fetched.ip, fetched.file)),
        line("served sha256", &fetched.hash),
        line("reported model", fetched.reported_model.as_deref().unwrap()),
        "  line.1.password = ********".to_string(),
    ] {
        assert!(show.lines().any(|l| l == expected), "{expected:?} not in:\n{show}");
    }
    assert!(!show.contains('?'), "{show}");

    let list = s.ok(&["device", "list"]);
    let row = list.lines().find(|l| l.starts_with(MAC)).unwrap_or_else(|| panic!("{list}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], [MAC, &one.vendor, &one.model, one.group.as_deref().unwrap()], "{row}");
    assert_eq!(cells.last(), Some(&fetched.ip.as_str()), "{row}");
    // --json prints the typed answer: the same as the API's.
    let printed: Vec<Device> = serde_json::from_str(&s.ok(&["device", "list", "--json"])).unwrap();
    assert_eq!(printed, all.items);
}

/// The time the CLI printed on `label`'s line (its format is the CLI's business, not the contract's).
fn time_of(output: &str, label: &str) -> String {
    let rest = output.lines().find_map(|l| l.strip_prefix(label)).unwrap_or_default().trim();
    rest.split(" from ").next().unwrap_or_default().to_string()
}

/// Asserts `answer` is a problem document with `status` naming `field`, and returns it.
fn problem(answer: &Fetched, status: u16, field: Option<&str>) -> Problem {
    assert_eq!(answer.status, status, "{}", answer.text());
    assert_eq!(answer.header("content-type"), Some(PROBLEM_CONTENT_TYPE), "{}", answer.text());
    let p: Problem = serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.text()));
    assert_eq!((p.status, p.problem_type.as_str(), p.field.as_deref()), (status, "about:blank", field), "{p:?}");
    assert!(!p.title.is_empty() && !p.detail.is_empty(), "{p:?}");
    p
}

#[test]
fn every_error_is_a_problem_document_naming_the_field() {
    let s = server_with_a_device();
    let device = format!("/api/v1/devices/{MAC}");
    // Refused by the server's checks: the setting key, the member, the device.
    let p =
        problem(&api(&s, "PATCH", &device, Some(r#"{"settings":{"line.1.port":"70000"}}"#)), 400, Some("line.1.port"));
    assert!(p.detail.contains("line.1.port") && !p.detail.contains("70000"), "{p:?}");
    problem(&api(&s, "PATCH", &device, Some(r#"{"group":"no spaces allowed"}"#)), 400, Some("group"));
    problem(
        &api(&s, "POST", "/api/v1/devices", Some(r#"{"mac":"x","vendor":"yealink","model":"T46S"}"#)),
        400,
        Some("mac"),
    );
    let dup = format!(r#"{{"mac":"{MAC}","vendor":"yealink","model":"T46S"}}"#);
    problem(&api(&s, "POST", "/api/v1/devices", Some(&dup)), 409, Some("mac"));
    // The vendors crate says which of vendor and model is unknown (DeviceError), not the message.
    let p = problem(&api(&s, "PATCH", &device, Some(r#"{"vendor":"acme"}"#)), 400, Some("vendor"));
    assert!(p.detail.contains("unknown vendor \"acme\"") && p.detail.contains("yealink"), "{p:?}");
    let p = problem(&api(&s, "PATCH", &device, Some(r#"{"model":"T99"}"#)), 400, Some("model"));
    assert!(p.detail.contains("unknown model \"T99\"") && p.detail.contains("T46S"), "{p:?}");
    problem(
        &api(&s, "PATCH", &device, Some(r#"{"settings":{"yealink.common_aes_key":"0123456789abcdef"}}"#)),
        400,
        Some("settings"),
    );
    problem(&api(&s, "GET", "/api/v1/devices/001565000099", None), 404, Some("mac"));
    // Refused while reading the body: the member serde names, without the value.
    problem(&api(&s, "PATCH", &device, Some(r#"{"colour":"red"}"#)), 422, Some("colour"));
    let p = problem(&api(&s, "PATCH", "/api/v1/settings", Some(r#"{"vendor.P2": 987654321}"#)), 422, Some("vendor.P2"));
    assert!(!p.detail.contains("987654321"), "{p:?}");
    // Refused by the router before any handler: still problem documents.
    problem(&api(&s, "GET", "/api/v1/campaigns/not-a-number", None), 400, None);
    problem(&api(&s, "GET", "/api/v1/nothing-here", None), 404, None);
    let wrong_method = api(&s, "PUT", "/api/v1/settings", Some("{}"));
    problem(&wrong_method, 405, None);
    assert!(wrong_method.header("allow").is_some_and(|a| a.contains("PATCH")), "{:?}", wrong_method.headers);
    let no_token = common::curl(&format!("http://{}/api/v1/devices", s.api), "test", &[]);
    problem(&no_token, 401, None);
    assert_eq!(no_token.header("www-authenticate"), Some("Bearer"));

    // The CLI prints the detail and the field.
    let err = s.fails(&["device", "set", MAC, "--group", "no spaces allowed"]);
    assert!(err.contains("invalid group name") && err.contains("(field group)"), "{err}");
    let err = s.fails(&["device", "show", "001565000099"]);
    assert!(err.contains("001565000099") && err.contains("(field mac)"), "{err}");
}

/// A one-connection HTTP server on 127.0.0.1 that answers `status` with `body` as `content_type`.
fn fake_api(status: &str, content_type: &'static str, body: String) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let serve = std::thread::spawn({
        let status = status.to_string();
        move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(response.as_bytes()).unwrap();
        }
    });
    (addr, serve)
}

fn cli_against(addr: &str, args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .args(["--api", &format!("http://{addr}")])
        .env("SIPPROV_TOKEN", "test-token")
        .output()
        .unwrap()
}

#[test]
fn an_answer_that_drifts_from_the_contract_fails_naming_the_field() {
    // A server whose device answer renamed `vendor`: the CLI refuses it rather than print "?".
    let s = server_with_a_device();
    let mut drifted: serde_json::Value =
        serde_json::from_slice(&api(&s, "GET", &format!("/api/v1/devices/{MAC}"), None).body).unwrap();
    let vendor = drifted.as_object_mut().unwrap().remove("vendor").unwrap();
    drifted["vendor_id"] = vendor;
    let (addr, serve) = fake_api("200 OK", "application/json", drifted.to_string());
    let out = cli_against(&addr, &["device", "show", MAC]);
    serve.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("missing field `vendor`") && err.contains("contract"), "{err}");
    assert!(out.stdout.is_empty(), "nothing half-printed: {}", String::from_utf8_lossy(&out.stdout));

    // A problem document from anywhere is printed as its detail and field.
    let p = Problem::new(400, "unknown model \"T99\" for vendor yealink").with_field("model");
    let (addr, serve) = fake_api("400 Bad Request", PROBLEM_CONTENT_TYPE, serde_json::to_string(&p).unwrap());
    let out = cli_against(&addr, &["device", "set", MAC, "--model", "T99"]);
    serve.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown model \"T99\" for vendor yealink (field model)"), "{err}");
}

/// The connection flags `--api` and `--data-dir` are accepted before the subcommand as after it,
/// and `SIPPROV_API` stands in for `--api`.
#[test]
fn connection_flags_go_before_or_after_the_subcommand() {
    let s = server_with_a_device();
    let url = format!("http://{}", s.api);
    let dir = s.data_dir().to_str().unwrap().to_string();
    let run = |args: &[&str], env_api: Option<&str>| {
        let mut cmd = Command::new(common::bin());
        cmd.args(args).env_remove("SIPPROV_TOKEN").env_remove("SIPPROV_API");
        if let Some(api) = env_api {
            cmd.env("SIPPROV_API", api);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "sipprov {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let before = run(&["--api", &url, "--data-dir", &dir, "device", "list"], None);
    let after = run(&["device", "list", "--api", &url, "--data-dir", &dir], None);
    let mixed = run(&["--data-dir", &dir, "device", "--api", &url, "list"], None);
    let from_env = run(&["--data-dir", &dir, "device", "list"], Some(&url));
    assert!(before.contains(MAC), "{before}");
    assert_eq!(before, after);
    assert_eq!(before, mixed);
    assert_eq!(before, from_env);
}

/// States and event kinds are stored by their stable names; a name this server does not know (a
/// hand-edited database, a newer version's word) is an error naming it, not a guess.
#[test]
fn a_stored_name_the_server_does_not_know_is_reported_as_corrupt_naming_it() {
    let s = server_with_a_device();
    let db = s.data_dir().join("sipprov.db");
    let insert = format!(
        "import sqlite3; c = sqlite3.connect({:?}); \
         c.execute(\"INSERT INTO device_events (id, mac, at, kind, detail) VALUES (999999, '{MAC}', 1, 'teleported', '{{}}')\"); \
         c.commit()",
        db.display().to_string()
    );
    let out = Command::new("python3").args(["-c", &insert]).output().expect("python3 is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p = problem(&api(&s, "GET", &format!("/api/v1/devices/{MAC}/log"), None), 500, None);
    assert!(p.detail.contains("unknown device event kind \"teleported\""), "{p:?}");
    let err = s.fails(&["device", "log", MAC]);
    assert!(err.contains("teleported"), "{err}");
}
