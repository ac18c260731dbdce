//! The web console against the real server over real sockets: users created with the CLI,
//! login, cookies, CSRF and origin checks, roles, session expiry and logout, validation shown
//! next to the field, and no secret in any page.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{curl_with, Fetched, TestServer};

const MAC: &str = "001565aabb01";
const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "Sup3rSecretPw";

/// Adds a console user with the CLI, the password on stdin.
fn add_user(s: &TestServer, name: &str, role: &str) {
    let mut child = Command::new(common::bin())
        .args(["user", "add", name, "--role", role, "--password-stdin", "--api"])
        .arg(format!("http://{}", s.api))
        .arg("--data-dir")
        .arg(s.data_dir())
        .env_remove("SIPPROV_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sipprov user add");
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A browser-like client of the console: the server's address and a session cookie.
struct Browser<'a> {
    server: &'a TestServer,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(server: &'a TestServer) -> Browser<'a> {
        Browser { server, cookie: None }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.server.api)
    }

    fn get(&self, path: &str) -> Fetched {
        let mut args: Vec<String> = Vec::new();
        if let Some(c) = &self.cookie {
            args.extend(["-H".into(), format!("Cookie: {c}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_with(&format!("{}{path}", self.origin()), "test", &args).0
    }

    /// POSTs a form; `origin` is the Origin header sent (`None`: none at all).
    fn post_from(&self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Fetched {
        let mut args: Vec<String> = Vec::new();
        if let Some(c) = &self.cookie {
            args.extend(["-H".into(), format!("Cookie: {c}")]);
        }
        if let Some(o) = origin {
            args.extend(["-H".into(), format!("Origin: {o}")]);
        }
        for (k, v) in form {
            args.extend(["--data-urlencode".into(), format!("{k}={v}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_with(&format!("{}{path}", self.origin()), "test", &args).0
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Fetched {
        self.post_from(path, form, Some(&self.origin()))
    }

    /// Logs in and keeps the session cookie; returns the login answer.
    fn login(&mut self, user: &str, password: &str) -> Fetched {
        let answer = self.post("/console/login", &[("user", user), ("password", password)]);
        if let Some(set) = answer.header("set-cookie") {
            self.cookie = set.split(';').next().map(str::to_string);
        }
        answer
    }

    /// The CSRF token of the page at `path`.
    fn csrf(&self, path: &str) -> String {
        let page = self.get(path).text();
        let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        page[at..].split('"').next().unwrap().to_string()
    }
}

fn server_with_device() -> TestServer {
    let s = TestServer::start();
    s.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--group", "sales"]);
    s
}

fn device_settings(s: &TestServer) -> serde_json::Value {
    s.json(&["device", "show", MAC, "--json"])["settings"].clone()
}

#[test]
fn login_answers_alike_for_unknown_users_and_wrong_passwords_and_sets_a_strict_cookie() {
    let s = server_with_device();
    add_user(&s, "alice", "admin");
    let mut b = Browser::new(&s);
    let first = b.get("/");
    assert_eq!((first.status, first.header("location")), (303, Some("/console/")));
    assert_eq!(b.get("/console/").header("location"), Some("/console/login"), "no session: the login page");

    let wrong = b.login("alice", "not the password");
    let unknown = b.login("mallory", "not the password");
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert!(wrong.header("set-cookie").is_none() && unknown.header("set-cookie").is_none());
    assert_eq!(
        wrong.text().replace("alice", "NAME"),
        unknown.text().replace("mallory", "NAME"),
        "an unknown user and a wrong password must be answered alike"
    );
    assert!(wrong.text().contains("Wrong user name, password or token."));

    let ok = b.login("alice", PASSWORD);
    assert_eq!((ok.status, ok.header("location")), (303, Some("/console/")));
    let cookie = ok.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: no Secure flag unless configured");
    let id = b.cookie.as_deref().unwrap().split('=').nth(1).unwrap();
    assert_eq!(id.len(), 64, "a 256-bit session id");

    let page = b.get("/console/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Fleet overview"), "{}", page.text());
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert!(!s.log().contains(PASSWORD), "a password reached the log");
}

#[test]
fn a_post_needs_the_session_token_and_the_console_origin() {
    let s = server_with_device();
    add_user(&s, "op", "operator");
    let mut b = Browser::new(&s);
    b.login("op", PASSWORD);
    let path = format!("/console/devices/{MAC}/settings");
    let csrf = b.csrf(&format!("/console/devices/{MAC}"));
    let set = [("key", "line.1.username"), ("value", "1001")];

    let no_token = b.post(&path, &set);
    assert_eq!(no_token.status, 403, "{}", no_token.text());
    let wrong_token = b.post(&path, &[set[0], set[1], ("csrf", "00")]);
    assert_eq!(wrong_token.status, 403);
    let with_token = [set[0], set[1], ("csrf", csrf.as_str())];
    let foreign = b.post_from(&path, &with_token, Some("http://evil.example"));
    assert_eq!(foreign.status, 403, "a foreign Origin is refused even with the token");
    let none = b.post_from(&path, &with_token, None);
    assert_eq!(none.status, 403, "neither Origin nor Referer: refused");
    let login_elsewhere =
        b.post_from("/console/login", &[("user", "op"), ("password", PASSWORD)], Some("http://evil.example"));
    assert_eq!(login_elsewhere.status, 403, "login CSRF: a foreign page cannot log the browser in");
    assert!(device_settings(&s).get("line.1.username").is_none(), "a refused POST changed the device");

    let ok = b.post(&path, &with_token);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(device_settings(&s)["line.1.username"], "1001");
}

#[test]
fn a_read_only_user_sees_everything_and_changes_nothing() {
    let s = server_with_device();
    add_user(&s, "viewer", "read-only");
    let mut b = Browser::new(&s);
    b.login("viewer", PASSWORD);
    let page = b.get(&format!("/console/devices/{MAC}"));
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("Re-provision now"), "no action offered to read-only");
    let csrf = b.csrf(&format!("/console/devices/{MAC}"));
    for (path, form) in [
        (format!("/console/devices/{MAC}/settings"), vec![("key", "line.1.username"), ("value", "1001")]),
        (format!("/console/devices/{MAC}/unlock"), vec![]),
        (format!("/console/devices/{MAC}/reboot"), vec![("confirm", "yes")]),
        ("/console/groups/sales/settings".to_string(), vec![("key", "time.zone"), ("value", "+1")]),
        ("/console/settings".to_string(), vec![("key", "time.zone"), ("value", "+1")]),
        ("/console/campaigns".to_string(), vec![("target", "all")]),
        (format!("/console/pnp/{MAC}/approve"), vec![("group", "x")]),
    ] {
        let mut form = form;
        form.push(("csrf", csrf.as_str()));
        let answer = b.post(&path, &form);
        assert_eq!(answer.status, 403, "read-only could POST {path}: {}", answer.text());
    }
    assert!(device_settings(&s).get("line.1.username").is_none());
    assert!(s.json(&["campaign", "list", "--json"]).as_array().is_none_or(|a| a.is_empty()));
}

#[test]
fn an_operator_cannot_change_global_settings() {
    let s = server_with_device();
    add_user(&s, "op", "operator");
    let mut b = Browser::new(&s);
    b.login("op", PASSWORD);
    let csrf = b.csrf("/console/settings");
    let answer = b.post("/console/settings", &[("key", "time.zone"), ("value", "+1"), ("csrf", &csrf)]);
    assert_eq!(answer.status, 403);
    let group = b.post("/console/groups/sales/settings", &[("key", "time.zone"), ("value", "+1"), ("csrf", &csrf)]);
    assert_eq!(group.status, 200, "operators change group settings: {}", group.text());
}

#[test]
fn sessions_end_when_idle_at_logout_and_when_the_password_changes() {
    let s = TestServer::start_with_config("[console]\nsession_idle_secs = 2\n");
    add_user(&s, "alice", "admin");
    let mut b = Browser::new(&s);
    b.login("alice", PASSWORD);
    assert_eq!(b.get("/console/devices").status, 200);
    std::thread::sleep(Duration::from_millis(2600));
    assert_eq!(b.get("/console/devices").header("location"), Some("/console/login"), "idle session still alive");

    b.login("alice", PASSWORD);
    let csrf = b.csrf("/console/devices");
    let out = b.post("/console/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(b.get("/console/devices").status, 303, "the old cookie must not work after logout");

    b.login("alice", PASSWORD);
    assert_eq!(b.get("/console/devices").status, 200);
    let mut child = Command::new(common::bin())
        .args(["user", "passwd", "alice", "--password-stdin", "--api"])
        .arg(format!("http://{}", s.api))
        .arg("--data-dir")
        .arg(s.data_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "another long password").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(b.get("/console/devices").status, 303, "a password change ends the sessions");
    assert_eq!(b.login("alice", PASSWORD).status, 401);
    assert_eq!(b.login("alice", "another long password").status, 303);
}

#[test]
fn users_are_managed_with_the_cli_and_a_source_that_keeps_failing_is_throttled() {
    let s = TestServer::start_with_config("[console]\nlogin_failures = 3\n");
    add_user(&s, "alice", "admin");
    add_user(&s, "bob", "read-only");
    let list = s.ok(&["user", "list"]);
    assert!(list.contains("alice") && list.contains("admin") && list.contains("read-only"), "{list}");
    let short = s.fails(&["user", "rm", "nobody"]);
    assert!(short.contains("not found"), "{short}");
    s.ok(&["user", "rm", "bob"]);
    assert!(!s.ok(&["user", "list"]).contains("bob"));
    // Each change that happened is audited (the refused removal is not), never with a password.
    let trail: serde_json::Value = serde_json::from_str(&s.ok(&["audit", "--actor", "admin", "--json"])).unwrap();
    let users: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target_kind"] == "user")
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(users, [("user.remove", "bob"), ("user.add", "bob"), ("user.add", "alice")], "{trail}");
    assert!(!trail.to_string().contains(PASSWORD), "{trail}");

    let mut b = Browser::new(&s);
    for _ in 0..3 {
        assert_eq!(b.login("alice", "wrong password!").status, 401);
    }
    assert_eq!(b.login("alice", PASSWORD).status, 429, "the right password after too many failures is refused too");
}

#[test]
fn an_invalid_setting_shows_its_message_next_to_the_field_and_changes_nothing() {
    let s = server_with_device();
    add_user(&s, "op", "operator");
    let mut b = Browser::new(&s);
    b.login("op", PASSWORD);
    let csrf = b.csrf(&format!("/console/devices/{MAC}"));
    let before = device_settings(&s);
    let answer = b.post(
        &format!("/console/devices/{MAC}/settings"),
        &[("key", "time.zone"), ("value", "Mars/Olympus"), ("csrf", &csrf)],
    );
    assert_eq!(answer.status, 400);
    let html = answer.text();
    let field = html.find("id=\"device-value\"").expect("the value field");
    let error = html.find("id=\"device-value-error\"").expect("the message next to the value field");
    assert!(error > field && html[field..error].contains("aria-invalid=\"true\""), "{html}");
    assert!(html[error..].contains("time.zone"), "the message names the setting");
    assert_eq!(device_settings(&s), before, "a refused setting changed the device");

    let bad_key = b.post(
        &format!("/console/devices/{MAC}/settings"),
        &[("key", "no spaces allowed"), ("value", "1"), ("csrf", &csrf)],
    );
    assert_eq!(bad_key.status, 400);
    assert!(bad_key.text().contains("id=\"device-key-error\""));

    let bad_group = b.post(&format!("/console/devices/{MAC}/group"), &[("group", "no spaces"), ("csrf", &csrf)]);
    assert_eq!(bad_group.status, 400);
    assert!(bad_group.text().contains("id=\"device-group-error\""), "{}", bad_group.text());
    assert_eq!(s.json(&["device", "show", MAC, "--json"])["group"], "sales", "a refused move moved the device");
    let moved = b.post(&format!("/console/devices/{MAC}/group"), &[("group", "support"), ("csrf", &csrf)]);
    assert_eq!(moved.status, 200);
    assert_eq!(s.json(&["device", "show", MAC, "--json"])["group"], "support");
}

#[test]
fn a_secret_never_appears_in_any_page() {
    let s = server_with_device();
    s.ok(&["device", "set", MAC, &format!("line.1.password={SECRET}"), "line.1.username=1001"]);
    s.ok(&["group", "set", "sales", &format!("line.2.password={SECRET}G")]);
    s.ok(&["settings", "set", &format!("admin.password={SECRET}P")]);
    add_user(&s, "alice", "admin");
    let mut b = Browser::new(&s);
    b.login("alice", PASSWORD);
    let device_page = b.get(&format!("/console/devices/{MAC}")).text();
    assert!(device_page.contains("line.1.password") && device_page.contains("********"), "{device_page}");
    assert!(device_page.contains(&format!("{MAC}.cfg")), "the files it receives: {device_page}");
    for path in [
        "/console/".to_string(),
        "/console/devices".to_string(),
        format!("/console/devices/{MAC}"),
        "/console/groups".to_string(),
        "/console/groups/sales".to_string(),
        "/console/settings".to_string(),
        "/console/campaigns".to_string(),
        "/console/pnp".to_string(),
    ] {
        let page = b.get(&path);
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.text().contains(SECRET), "{path} shows a secret:\n{}", page.text());
    }
    // The phone itself does receive it: the masking is the console's, not a broken render.
    assert!(String::from_utf8_lossy(&s.render(MAC, None)).contains(SECRET));
}

#[test]
fn templates_are_validated_previewed_diffed_and_rolled_back_by_admins_only() {
    let s = server_with_device();
    s.ok(&["device", "set", MAC, &format!("line.1.password={SECRET}"), "line.1.username=1001"]);
    add_user(&s, "alice", "admin");
    add_user(&s, "op", "operator");
    let page = "/console/templates/yealink/mac.cfg.j2";
    let mut op = Browser::new(&s);
    op.login("op", PASSWORD);
    let csrf = op.csrf(page);
    assert_eq!(op.post(page, &[("body", "x"), ("csrf", &csrf)]).status, 403, "operators cannot change templates");

    let mut b = Browser::new(&s);
    b.login("alice", PASSWORD);
    let list = b.get("/console/templates").text();
    assert!(list.contains("mac.cfg.j2") && list.contains("built-in"), "{list}");
    let csrf = b.csrf(page);
    let original = String::from_utf8(s.render(MAC, None)).unwrap();

    let broken = "#!version:1.0.0.1\nfine line\n{% if %}\n";
    let refused = b.post(page, &[("body", broken), ("csrf", &csrf), ("comment", "broken")]);
    assert_eq!(refused.status, 400);
    let html = refused.text();
    let error = html.find("id=\"tpl-error\"").expect("the error next to the text area");
    assert!(html[error..].contains("line 3"), "the refusal names the line: {html}");
    assert!(html.contains("fine line"), "the refused text is shown again for fixing");
    assert_eq!(String::from_utf8(s.render(MAC, None)).unwrap(), original, "a refused override changed the file");

    let good =
        "#!version:1.0.0.1\n# console override\n{% for p in params %}\n{{ p.name }} = {{ p.value }}\n{% endfor %}\n";
    let saved = b.post(page, &[("body", &good.replace('\n', "\r\n")), ("csrf", &csrf), ("comment", "marked")]);
    assert_eq!(saved.status, 200, "{}", saved.text());
    assert!(saved.text().contains("Saved as version 1"));
    assert!(saved.text().contains("+# console override"), "the diff against the built-in");
    assert!(String::from_utf8(s.render(MAC, None)).unwrap().contains("# console override"));

    let preview = b.get(&format!("{page}?device={MAC}")).text();
    assert!(preview.contains("id=\"tpl-preview\"") && preview.contains("# console override"), "{preview}");
    assert!(!preview.contains(SECRET), "the preview shows a secret");

    let reset = b.post(&format!("{page}/reset"), &[("csrf", &csrf)]);
    assert_eq!(reset.status, 200);
    assert_eq!(String::from_utf8(s.render(MAC, None)).unwrap(), original);
    let back = b.post(&format!("{page}/rollback"), &[("version", "1"), ("csrf", &csrf)]);
    assert_eq!(back.status, 200, "{}", back.text());
    assert!(back.text().contains("Version 1 is serving again, as version 3"), "{}", back.text());
    assert!(String::from_utf8(s.render(MAC, None)).unwrap().contains("# console override"));
    assert!(back.text().contains("alice"), "the console user is the versions' author");
}

#[test]
fn an_api_token_logs_in_with_its_role_until_it_is_revoked() {
    let s = server_with_device();
    let token = s.ok(&["token", "create", "ci-reader", "--role", "read-only"]).trim().to_string();
    let mut b = Browser::new(&s);
    let wrong = b.post("/console/login", &[("token", &"0".repeat(64))]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("Wrong user name, password or token."));
    let ok = b.post("/console/login", &[("token", &token)]);
    assert_eq!(ok.status, 303, "{}", ok.text());
    b.cookie = ok.header("set-cookie").and_then(|c| c.split(';').next()).map(str::to_string);
    let page = b.get("/console/");
    assert!(page.text().contains("ci-reader") && page.text().contains("read-only"), "{}", page.text());
    assert!(!page.text().contains(&token), "the token is never sent back");
    let csrf = b.csrf(&format!("/console/devices/{MAC}"));
    let refused = b.post(&format!("/console/devices/{MAC}/unlock"), &[("csrf", &csrf)]);
    assert_eq!(refused.status, 403, "a read-only token stays read-only in the console");
    s.ok(&["token", "revoke", "ci-reader"]);
    assert_eq!(b.get("/console/").status, 303, "a revoked token's session ends");
}

#[test]
fn the_device_page_shows_who_changed_what_with_secrets_masked() {
    let s = server_with_device();
    add_user(&s, "op", "operator");
    let mut b = Browser::new(&s);
    b.login("op", PASSWORD);
    let csrf = b.csrf(&format!("/console/devices/{MAC}"));
    let set = b.post(
        &format!("/console/devices/{MAC}/settings"),
        &[("key", "line.1.password"), ("value", SECRET), ("csrf", &csrf)],
    );
    assert_eq!(set.status, 200, "{}", set.text());
    b.post(&format!("/console/devices/{MAC}/unlock"), &[("csrf", &csrf)]);
    let page = b.get(&format!("/console/devices/{MAC}")).text();
    let changes = &page[page.find("id=\"changes-h\"").expect("the audit section")..];
    let changes = &changes[..changes.find("id=\"history-h\"").unwrap_or(changes.len())];
    assert!(changes.contains("<td>op</td>"), "the console user is the actor: {changes}");
    assert!(changes.contains("device.unlock") && changes.contains("line.1.password"), "{changes}");
    assert!(!page.contains(SECRET), "the audit trail shows a secret");
    let audit = s.ok(&["audit", "--device", MAC]);
    assert!(audit.contains("op"), "the API's trail names the console user too: {audit}");
}

#[test]
fn discoveries_are_approved_into_existing_groups_or_rejected() {
    let s = server_with_device();
    let (one, two) = ("001565dd0001", "001565dd0002");
    for mac in [one, two] {
        s.ok(&["device", "add", mac, "--vendor", "yealink", "--model", "T46S", "--group", "discovered"]);
    }
    add_user(&s, "op", "operator");
    let mut b = Browser::new(&s);
    b.login("op", PASSWORD);
    let page = b.get("/console/pnp").text();
    assert!(page.contains(one) && page.contains(two), "{page}");
    let csrf = b.csrf("/console/pnp");
    let nowhere = b.post(&format!("/console/pnp/{one}/approve"), &[("group", "nosuchgroup"), ("csrf", &csrf)]);
    assert_eq!(nowhere.status, 400);
    assert!(nowhere.text().contains("does not exist"), "{}", nowhere.text());
    let ok = b.post(&format!("/console/pnp/{one}/approve"), &[("group", "sales"), ("csrf", &csrf)]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(s.json(&["device", "show", one, "--json"])["group"], "sales");
    let gone = b.post(&format!("/console/pnp/{two}/reject"), &[("csrf", &csrf)]);
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(s.fails(&["device", "show", two]).contains("not found"));
    assert!(s.ok(&["audit"]).contains("op"), "the console user is audited for both");
}

#[test]
fn the_overview_counts_devices_and_the_refusals_of_the_last_day() {
    let s = server_with_device();
    // A phone naming another MAC in its User-Agent than the file it asks for is refused.
    let refused = s.fetch(&format!("/{MAC}.cfg"), "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:02", &[]);
    assert_eq!(refused.status, 403);
    let fetched = s.fetch(&format!("/{MAC}.cfg"), "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:01", &[]);
    assert_eq!(fetched.status, 200);
    add_user(&s, "viewer", "read-only");
    let mut b = Browser::new(&s);
    b.login("viewer", PASSWORD);
    let page = b.get("/console/").text();
    assert!(page.contains("<strong>1</strong> devices"), "{page}");
    assert!(page.contains("<strong>1</strong> fetches refused in 24 h"), "{page}");
    assert!(page.contains("66.86.0.15"), "the firmware the phone reported: {page}");
    let list = b.get("/console/devices?firmware=66.86.0.15").text();
    assert!(list.contains(MAC), "{list}");
    assert!(b.get("/console/devices?firmware=1.0").text().contains("No device matches."));
}

#[test]
fn a_device_is_added_with_the_apis_checks() {
    let s = server_with_device();
    add_user(&s, "op", "operator");
    add_user(&s, "viewer", "read-only");
    let mut v = Browser::new(&s);
    v.login("viewer", PASSWORD);
    assert_eq!(v.get("/console/devices/new").status, 403);
    let mut b = Browser::new(&s);
    b.login("op", PASSWORD);
    let csrf = b.csrf("/console/devices/new");
    let form = |mac: &'static str, model: &'static str| {
        vec![("mac", mac), ("vendor", "yealink"), ("model", model), ("group", "sales"), ("contact", "")]
    };
    let mut bad = form("00:15:65:zz:00:01", "T46S");
    bad.push(("csrf", &csrf));
    let refused = b.post("/console/devices/new", &bad);
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("id=\"new-mac-error\""), "{}", refused.text());
    let mut bad_model = form("001565ee0001", "T99X");
    bad_model.push(("csrf", &csrf));
    let refused = b.post("/console/devices/new", &bad_model);
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("id=\"new-model-error\""), "{}", refused.text());
    assert!(s.fails(&["device", "show", "001565ee0001"]).contains("not found"), "a refused device was added");
    let mut ok = form("00-15-65-EE-00-01", "T46S");
    ok.push(("csrf", &csrf));
    let added = b.post("/console/devices/new", &ok);
    assert_eq!((added.status, added.header("location")), (303, Some("/console/devices/001565ee0001")));
    assert_eq!(s.json(&["device", "show", "001565ee0001", "--json"])["group"], "sales");
    let again = b.post("/console/devices/new", &ok);
    assert_eq!(again.status, 400, "a duplicate is refused");
    assert!(again.text().contains("already exists"));
}

#[test]
fn a_campaigns_progress_streams_as_server_sent_events_until_it_is_finished() {
    let s = server_with_device();
    add_user(&s, "viewer", "read-only");
    // No contact: the device's outcome (no-target) is final at once, so the campaign finishes.
    s.ok(&["resync", "--group", "sales", "--yes"]);
    let mut b = Browser::new(&s);
    b.login("viewer", PASSWORD);
    assert!(common::eventually(Duration::from_secs(10), || b
        .get("/console/campaigns/1")
        .text()
        .contains("<strong id=\"state\">done</strong>")));
    let stream = b.get("/console/campaigns/1/events");
    assert_eq!(stream.status, 200);
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    let text = stream.text();
    assert!(
        text.contains("event: progress") && text.contains("\"finished\":true") && text.contains("no-target"),
        "{text}"
    );
    let page = b.get("/console/campaigns/1").text();
    assert!(page.contains("href=\"/console/campaigns/1\" id=\"refresh\""), "the no-script fallback: {page}");
}

#[test]
fn directories_are_imported_by_admins_with_the_session_token_and_listed() {
    let s = TestServer::start();
    add_user(&s, "boss", "admin");
    add_user(&s, "op", "operator");
    let csv = "name,office\nSmith & <Sons>,1001\n";
    let mut op = Browser::new(&s);
    op.login("op", PASSWORD);
    let csrf = op.csrf("/console/directories");
    assert_eq!(op.post("/console/directories", &[("name", "staff"), ("csv", csv), ("csrf", &csrf)]).status, 403);
    let mut b = Browser::new(&s);
    b.login("boss", PASSWORD);
    assert_eq!(b.post("/console/directories", &[("name", "staff"), ("csv", csv)]).status, 403, "no session token");
    let csrf = b.csrf("/console/directories");
    let bad = b.post("/console/directories", &[("name", "staff"), ("csv", "name,office\nA,1\n,2\n"), ("csrf", &csrf)]);
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("line 3, column name"), "{}", bad.text());
    let ok = b.post("/console/directories", &[("name", "staff"), ("csv", csv), ("csrf", &csrf)]);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.text().contains("1 contacts"), "{}", ok.text());
    let page = b.get("/console/directories/staff").text();
    assert!(page.contains("Smith &amp; &lt;Sons&gt;") && page.contains("1001"), "{page}");
    assert!(s.ok(&["audit"]).contains("directory.put"));
}
