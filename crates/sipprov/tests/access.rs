//! Named API tokens, roles and the audit trail, against the real server: tokens created, listed
//! and revoked through the CLI; every write route refused to a read-only token with a 403 naming
//! both roles; an operator kept off global settings and tokens; a revoked token refused at once;
//! and an audit entry for every kind of change, with secrets masked in the answer and in the
//! database file.

mod common;

use common::{curl_with, Fetched, TestServer};
use sha2::{Digest, Sha256};

const MAC: &str = "001565aabbcc";
const IMPORTED: &str = "001565aabbcd";
const SECRET: &str = "auditSecret-93xq";

/// One admin API request with `token`; `body` is JSON.
fn api(s: &TestServer, token: &str, method: &str, path: &str, body: Option<&str>) -> Fetched {
    let auth = format!("Authorization: Bearer {token}");
    let mut args = vec!["-X", method, "-H", &auth];
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data", b]);
    }
    curl_with(&format!("http://{}{path}", s.api), "test", &args).0
}

fn admin_token(s: &TestServer) -> String {
    std::fs::read_to_string(s.data_dir().join("api-token")).unwrap().trim().to_string()
}

/// Creates a token through the CLI and returns it (stdout holds the token alone).
fn create_token(s: &TestServer, name: &str, role: &str) -> String {
    let token = s.ok(&["token", "create", name, "--role", role]).trim().to_string();
    assert_eq!(token.len(), 64, "a 256-bit token in hex: {token:?}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    token
}

fn with_device(s: &TestServer) {
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--set", "line.1.username=1001"]);
}

/// Everything the SQLite store wrote: the database and its write-ahead log.
fn database_bytes(s: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(s.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.contains(".db") || name.contains("sqlite") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database file in the data directory");
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn tokens_are_created_listed_and_revoked_through_the_cli_and_only_their_hash_is_stored() {
    let s = TestServer::start();
    let token = create_token(&s, "ci-reader", "read-only");
    let listed = s.ok(&["token", "list"]);
    assert!(listed.contains("ci-reader") && listed.contains("read-only"), "{listed}");
    assert!(!listed.contains(&token), "the list shows the token: {listed}");
    let digest = hex::encode(Sha256::digest(token.as_bytes()));
    let json = s.ok(&["token", "list", "--json"]);
    assert!(!json.contains(&token) && !json.contains(&digest), "{json}");

    assert_eq!(api(&s, &token, "GET", "/api/v1/devices", None).status, 200);
    let db = database_bytes(&s);
    assert!(contains(&db, &digest), "the token's SHA-256 is not in the database");
    assert!(!contains(&db, &token), "the token itself is in the database");

    assert!(s.fails(&["token", "create", "ci-reader", "--role", "admin"]).contains("already exists"));
    assert!(s.fails(&["token", "create", "bad name", "--role", "admin"]).contains("name"));
    assert!(s.fails(&["token", "create", "x", "--role", "root"]).contains("admin, operator, read-only"));

    s.ok(&["token", "revoke", "ci-reader"]);
    let refused = api(&s, &token, "GET", "/api/v1/devices", None);
    assert_eq!(refused.status, 401, "a revoked token still works: {}", refused.text());
    assert!(!s.ok(&["token", "list"]).contains("ci-reader"));
    assert!(s.fails(&["token", "revoke", "ci-reader"]).contains("no token named"));
}

/// Every write route of the admin API, with a body it would take.
const WRITES: &[(&str, &str, Option<&str>)] = &[
    ("POST", "/api/v1/devices", Some(r#"{"mac":"001565000009","vendor":"yealink","model":"T46S"}"#)),
    ("POST", "/api/v1/devices/import", Some("mac,vendor,model\n001565000009,yealink,T46S\n")),
    ("PATCH", "/api/v1/devices/001565aabbcc", Some(r#"{"settings":{"time.zone":"UTC"}}"#)),
    ("DELETE", "/api/v1/devices/001565aabbcc", None),
    ("POST", "/api/v1/devices/001565aabbcc/unlock", None),
    ("POST", "/api/v1/devices/001565aabbcc/notify", Some(r#"{"reboot":true}"#)),
    ("PATCH", "/api/v1/groups/sales", Some(r#"{"time.zone":"UTC"}"#)),
    ("PATCH", "/api/v1/settings", Some(r#"{"time.zone":"UTC"}"#)),
    ("POST", "/api/v1/campaigns", Some(r#"{"macs":["001565aabbcc"]}"#)),
    ("POST", "/api/v1/campaigns/1/cancel", None),
    ("POST", "/api/v1/campaigns/1/retry", None),
    ("POST", "/api/v1/tokens", Some(r#"{"name":"x","role":"admin"}"#)),
    ("DELETE", "/api/v1/tokens/x", None),
];

#[test]
fn a_read_only_token_is_refused_on_every_write_route_naming_the_roles() {
    let s = TestServer::start();
    with_device(&s);
    let token = create_token(&s, "viewer", "read-only");
    for (method, path, body) in WRITES {
        let answer = api(&s, &token, method, path, *body);
        let text = answer.text();
        assert_eq!(answer.status, 403, "{method} {path} answered {}: {text}", answer.status);
        assert!(text.contains("read-only") && (text.contains("operator") || text.contains("admin")), "{text}");
    }
    for path in ["/api/v1/devices", "/api/v1/devices/001565aabbcc", "/api/v1/audit", "/api/v1/settings"] {
        assert_eq!(api(&s, &token, "GET", path, None).status, 200, "{path}");
    }
    assert_eq!(api(&s, &token, "GET", "/api/v1/tokens", None).status, 403);
    // Nothing changed: the device is still there, and nothing was audited for the viewer.
    assert!(s.ok(&["device", "list"]).contains(MAC));
    let trail = api(&s, &token, "GET", "/api/v1/audit?actor=viewer", None);
    assert_eq!(trail.text().trim(), "[]");
    assert_eq!(api(&s, "not-a-token", "GET", "/api/v1/devices", None).status, 401);
}

#[test]
fn an_operator_changes_devices_but_not_global_settings_nor_tokens() {
    let s = TestServer::start();
    with_device(&s);
    let token = create_token(&s, "ops", "operator");
    let patch = api(&s, &token, "PATCH", "/api/v1/devices/001565aabbcc", Some(r#"{"settings":{"time.zone":"UTC"}}"#));
    assert_eq!(patch.status, 200, "{}", patch.text());
    assert_eq!(api(&s, &token, "PATCH", "/api/v1/groups/sales", Some(r#"{"time.zone":"UTC"}"#)).status, 200);
    for (method, path, body) in [
        ("PATCH", "/api/v1/settings", Some(r#"{"time.zone":"UTC"}"#)),
        ("POST", "/api/v1/tokens", Some(r#"{"name":"mine","role":"admin"}"#)),
        ("GET", "/api/v1/tokens", None),
        ("DELETE", "/api/v1/tokens/ops", None),
    ] {
        let answer = api(&s, &token, method, path, body);
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text());
        assert!(
            answer.text().contains("needs the admin role") && answer.text().contains("operator"),
            "{}",
            answer.text()
        );
    }
}

#[test]
fn every_change_is_audited_with_its_actor_and_secrets_masked() {
    let s = TestServer::start();
    let admin = admin_token(&s);
    let op = create_token(&s, "ops", "operator");
    let add = format!(
        r#"{{"mac":"{MAC}","vendor":"yealink","model":"T46S","settings":{{"line.1.password":"{SECRET}","line.1.username":"1001"}}}}"#
    );
    assert_eq!(api(&s, &op, "POST", "/api/v1/devices", Some(&add)).status, 201);
    let csv =
        format!("mac,vendor,model,line.1.password\n{IMPORTED},yealink,T46S,{SECRET}\n001565aabbce,yealink,T46S,x\n");
    assert_eq!(api(&s, &op, "POST", "/api/v1/devices/import", Some(&csv)).status, 200);
    let patch = format!(r#"{{"settings":{{"line.1.password":"{SECRET}-2","time.zone":"UTC+1"}}}}"#);
    assert_eq!(api(&s, &op, "PATCH", &format!("/api/v1/devices/{MAC}"), Some(&patch)).status, 200);
    assert_eq!(api(&s, &op, "POST", &format!("/api/v1/devices/{MAC}/unlock"), None).status, 200);
    // No contact to send to: the outcome says so, and the attempt is recorded (a check-sync is
    // recorded before it leaves, since it cannot be taken back).
    let reboot = api(&s, &op, "POST", &format!("/api/v1/devices/{MAC}/notify"), Some(r#"{"reboot":true}"#));
    assert_eq!(reboot.status, 200, "{}", reboot.text());
    assert!(reboot.text().contains("no-target"), "{}", reboot.text());
    let group = format!(r#"{{"line.2.password":"{SECRET}","time.zone":"UTC"}}"#);
    assert_eq!(api(&s, &op, "PATCH", "/api/v1/groups/sales", Some(&group)).status, 200);
    let global = format!(r#"{{"line.1.password":"{SECRET}-3","time.zone":"UTC"}}"#);
    assert_eq!(api(&s, &admin, "PATCH", "/api/v1/settings", Some(&global)).status, 200);
    let later = r#"{"macs":["001565aabbcc"],"start_at":4102444800000}"#;
    assert_eq!(api(&s, &op, "POST", "/api/v1/campaigns", Some(later)).status, 201);
    assert_eq!(api(&s, &op, "POST", "/api/v1/campaigns/1/cancel", None).status, 200);
    s.ok(&["token", "create", "temp", "--role", "read-only"]);
    s.ok(&["token", "revoke", "temp"]);
    assert_eq!(api(&s, &op, "DELETE", "/api/v1/devices/001565aabbce", None).status, 204);

    let answer = api(&s, &admin, "GET", "/api/v1/audit?limit=1000", None);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let text = answer.text();
    assert!(!text.contains(SECRET), "a secret in the audit answer: {text}");
    assert!(!audit_rows_hold(&s), "a secret in the database's audit table");
    let entries: Vec<sipprov_api::AuditEntry> = serde_json::from_str(&text).unwrap();
    let find = |action: &str| {
        entries.iter().find(|e| e.action == action).unwrap_or_else(|| panic!("no {action} entry in {text}"))
    };
    assert_eq!((find("device.add").actor.as_str(), find("device.add").target.as_str()), ("ops", MAC));
    assert_eq!(find("device.import").detail["count"], 2);
    assert!(find("device.import").detail["macs"].to_string().contains(IMPORTED));
    let changed = &find("device.patch").detail["settings"];
    assert_eq!(changed["time.zone"]["new"], "UTC+1");
    assert_eq!(changed["line.1.password"]["new"], "********");
    assert_eq!(find("device.unlock").actor, "ops");
    assert_eq!((find("device.reboot").actor.as_str(), find("device.reboot").target.as_str()), ("ops", MAC));
    assert_eq!(find("group.patch").detail["settings"]["line.2.password"]["new"], "********");
    assert_eq!(find("settings.patch").actor, "admin");
    assert_eq!(find("campaign.create").target, "1");
    assert_eq!(find("campaign.cancel").actor, "ops");
    assert!(entries.iter().any(|e| e.action == "token.create" && e.target == "ops" && e.actor == "admin"));
    assert!(entries.iter().any(|e| e.action == "token.create" && e.target == "temp"));
    assert_eq!(find("token.revoke").target, "temp");
    assert_eq!(find("device.delete").target, "001565aabbce");
    assert!(entries.windows(2).all(|w| w[0].id > w[1].id), "not newest first");

    // Per device: its own entries and the import that added it; paging by `before`.
    let mine: Vec<sipprov_api::AuditEntry> =
        serde_json::from_slice(&api(&s, &op, "GET", &format!("/api/v1/devices/{MAC}/audit"), None).body).unwrap();
    let actions: Vec<&str> = mine.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["device.reboot", "device.unlock", "device.patch", "device.add"]);
    let imported = s.ok(&["audit", "--device", IMPORTED]);
    assert!(imported.contains("device.import"), "{imported}");
    let page: Vec<sipprov_api::AuditEntry> = serde_json::from_slice(
        &api(&s, &op, "GET", &format!("/api/v1/audit?before={}&limit=2&actor=ops", mine[1].id), None).body,
    )
    .unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|e| e.id < mine[1].id && e.actor == "ops"));
    let by_admin = s.ok(&["audit", "--actor", "admin", "--limit", "10"]);
    assert!(by_admin.contains("settings.patch") && !by_admin.contains("device.add"), "{by_admin}");
    assert_eq!(api(&s, &op, "GET", "/api/v1/audit?limit=100000", None).status, 400);
}

/// Whether the secret sits in the audit table of the database file: the devices table holds it
/// (phones need it), so the file as a whole is checked through the audit rows only.
fn audit_rows_hold(s: &TestServer) -> bool {
    let db = s.data_dir().join("sipprov.db");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg("import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print('\\n'.join(str(r) for r in c.execute('SELECT * FROM audit')))")
        .arg(&db)
        .output()
        .expect("python3 is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = String::from_utf8_lossy(&out.stdout);
    assert!(rows.contains("device.patch"), "the audit table was not read: {rows}");
    rows.contains(SECRET)
}
