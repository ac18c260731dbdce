//! Template overrides kept as validated versions in the database, against the real server:
//! refusals (with their line) change nothing phones receive, accepted versions serve at once,
//! and rollback, reset, diff, preview and the old override directory behave as documented.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{write, TestServer};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const NAME: &str = "yealink/mac.cfg.j2";
const SECRET: &str = "Tpl-Secret-4471";

const V1: &str = "#!version:1.0.0.1\n# site v1\naccount.1.user_name = {{ settings[\"line.1.username\"] }}\n";
const V1_SERVED: &str = "#!version:1.0.0.1\n# site v1\naccount.1.user_name = 1001\n";
const V2: &str = "#!version:1.0.0.1\n# site v2\naccount.1.label = {{ lines[0].username }}\n";
const V2_SERVED: &str = "#!version:1.0.0.1\n# site v2\naccount.1.label = 1001\n";

fn add_device(s: &TestServer) {
    let password = format!("line.1.password={SECRET}");
    s.ok(&[
        "device",
        "add",
        MAC,
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--set",
        "line.1.username=1001",
        "--set",
        &password,
    ]);
}

fn served(s: &TestServer) -> Vec<u8> {
    let r = s.fetch(&format!("/{MAC}.cfg"), UA, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.body
}

/// `template set NAME <file holding body>`: the CLI's output or error.
fn set(s: &TestServer, body: &str) -> std::process::Output {
    let file = s.data_dir().join("candidate.j2");
    std::fs::write(&file, body).unwrap();
    s.cli(&["template", "set", NAME, file.to_str().unwrap()])
}

fn set_ok(s: &TestServer, body: &str) -> String {
    let out = set(s, body);
    assert!(out.status.success(), "refused: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn set_refused(s: &TestServer, body: &str) -> String {
    let out = set(s, body);
    assert!(!out.status.success(), "accepted: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

/// One admin API request with curl: status and body.
fn api(s: &TestServer, method: &str, path: &str, json: Option<&str>) -> (u16, String) {
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())]);
    if let Some(j) = json {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", j]);
    }
    let out = common::run(cmd.arg(format!("http://{}{path}", s.api)));
    let text = String::from_utf8(out).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

#[test]
fn a_syntax_error_is_refused_with_its_line_and_phones_keep_the_previous_bytes() {
    let s = TestServer::start();
    add_device(&s);
    let builtin = served(&s);
    assert!(set_ok(&s, V1).contains("version 1"));
    // Served at once, byte for byte.
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V1_SERVED);

    let broken = "#!version:1.0.0.1\n# fine\n{% for p in params %}\n{{ p.name }\n{% endfor %}\n";
    let err = set_refused(&s, broken);
    assert!(err.contains("syntax error") && err.contains("line 4"), "{err}");
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V1_SERVED, "the previous version keeps serving");

    // The API's problem document names the field, the line and the column.
    let body = serde_json::json!({ "body": broken }).to_string();
    let (status, problem) = api(&s, "PUT", "/api/v1/templates/yealink/mac.cfg.j2", Some(&body));
    assert_eq!(status, 422, "{problem}");
    let p: serde_json::Value = serde_json::from_str(&problem).unwrap();
    assert_eq!((p["field"].as_str(), p["line"].as_u64()), (Some("body"), Some(4)), "{p}");
    assert!(p["column"].as_u64().is_some_and(|c| c >= 1), "{p}");

    // Compiles, but does not render (strict undefined): refused with its line too.
    let err = set_refused(&s, "#!version:1.0.0.1\n\n{{ no_such_variable }}\n");
    assert!(err.contains("line 3") && err.contains("undefined"), "{err}");
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V1_SERVED);

    let versions = s.ok(&["template", "versions", NAME]);
    assert_eq!(versions.lines().count(), 1, "refusals store nothing: {versions}");
    assert_ne!(builtin, served(&s));
}

#[test]
fn an_unknown_vendor_or_template_is_refused_naming_what_exists() {
    let s = TestServer::start();
    let file = s.data_dir().join("t.j2");
    std::fs::write(&file, V1).unwrap();
    let err = s.fails(&["template", "set", "yealnk/mac.cfg.j2", file.to_str().unwrap()]);
    assert!(err.contains("unknown vendor \"yealnk\"") && err.contains("yealink"), "{err}");
    let err = s.fails(&["template", "set", "yealink/mac.cfg", file.to_str().unwrap()]);
    assert!(
        err.contains("no template \"mac.cfg\"") && err.contains("mac.cfg.j2") && err.contains("common.cfg.j2"),
        "{err}"
    );
    let (status, body) = api(&s, "GET", "/api/v1/templates/yealink/nope.j2", None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"field\":\"file\""), "{body}");
    let list = s.ok(&["template", "list"]);
    assert!(list.contains("yealink/mac.cfg.j2") && list.contains("snom/settings.xml.j2"), "{list}");
    assert!(!list.contains("overridden"), "{list}");
}

#[test]
fn rollback_reset_diff_and_versions_survive_a_restart() {
    let mut s = TestServer::start();
    add_device(&s);
    let builtin = served(&s);
    set_ok(&s, V1);
    set_ok(&s, V2);
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V2_SERVED);

    let diff = s.ok(&["template", "diff", NAME, "--from", "1", "--to", "2"]);
    assert!(
        diff.contains("--- yealink/mac.cfg.j2 (version 1)") && diff.contains("+++ yealink/mac.cfg.j2 (version 2)"),
        "{diff}"
    );
    assert!(
        diff.contains("\n-# site v1\n") && diff.contains("\n+# site v2\n") && diff.contains("\n #!version:1.0.0.1\n"),
        "{diff}"
    );
    let against_builtin = s.ok(&["template", "diff", NAME]);
    assert!(against_builtin.contains("(built-in)") && against_builtin.contains("\n+# site v2\n"), "{against_builtin}");
    assert!(against_builtin.contains("\n-{% for p in params %}\n"), "{against_builtin}");

    assert!(s.ok(&["template", "rollback", NAME, "1"]).contains("restored as version 3"));
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V1_SERVED);

    s.stop();
    s.spawn(&[]);
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V1_SERVED, "the current version serves after a restart");
    let versions = s.ok(&["template", "versions", NAME]);
    assert_eq!(versions.lines().count(), 3, "{versions}");
    assert!(versions.contains("rollback to version 1"), "{versions}");

    assert!(s.ok(&["template", "reset", NAME]).contains("version 4"));
    assert_eq!(served(&s), builtin, "reset serves the built-in bytes again");
    assert!(s.ok(&["template", "list"]).contains("built-in (version 4)"));
    assert!(s.ok(&["template", "diff", NAME]).is_empty());
    assert_eq!(s.ok(&["template", "show", NAME]), s.ok(&["template", "show", NAME, "--builtin"]));

    // Every version is in the audit trail, by whom, with the version it took.
    let audit = s.ok(&["audit", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let template_entries: Vec<_> =
        entries.as_array().unwrap().iter().filter(|e| e["target_kind"] == "template" && e["target"] == NAME).collect();
    assert_eq!(template_entries.len(), 4, "{audit}");
    assert!(template_entries.iter().all(|e| e["actor"] == "admin"), "{audit}");
    assert_eq!(template_entries[0]["action"], "template.reset", "newest first: {audit}");
    assert_eq!(template_entries[0]["detail"]["version"], 4, "{audit}");
    assert!(template_entries[1..].iter().all(|e| e["action"] == "template.set"), "{audit}");
}

#[test]
fn preview_shows_what_the_device_would_get_with_secrets_masked() {
    let s = TestServer::start();
    add_device(&s);
    let current = s.ok(&["template", "preview", NAME, "--device", MAC]);
    assert!(current.contains("account.1.user_name = 1001"), "{current}");
    assert!(current.contains("********") && !current.contains(SECRET), "{current}");
    assert!(String::from_utf8(s.render(MAC, None)).unwrap().contains(SECRET), "render shows the real bytes");

    let proposed = s.data_dir().join("proposed.j2");
    std::fs::write(&proposed, "user={{ lines[0].username }}\npw={{ lines[0].password }}\n").unwrap();
    let out = s.ok(&["template", "preview", NAME, "--device", MAC, "--file", proposed.to_str().unwrap()]);
    assert_eq!(out, "user=1001\npw=********\n");
    assert!(s.ok(&["template", "versions", NAME]).contains("no versions"), "a preview stores nothing");

    std::fs::write(&proposed, "ok\n{% if %}\n").unwrap();
    let err = s.fails(&["template", "preview", NAME, "--device", MAC, "--file", proposed.to_str().unwrap()]);
    assert!(err.contains("line 2"), "{err}");
    let err = s.fails(&["template", "preview", "snom/settings.xml.j2", "--device", MAC]);
    assert!(err.contains("yealink phone"), "{err}");
}

#[test]
fn a_refusal_with_a_chosen_device_does_not_quote_its_secret() {
    let s = TestServer::start();
    add_device(&s);
    // minijinja names a missing template by the expression's value: the password.
    let file = s.data_dir().join("leak.j2");
    std::fs::write(&file, "#!version:1.0.0.1\n{% include settings[\"line.1.password\"] %}\n").unwrap();
    let err = s.fails(&["template", "set", NAME, file.to_str().unwrap(), "--device", MAC]);
    assert!(err.contains("line 2") && err.contains("template not found"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    assert!(!s.log().contains(SECRET), "{}", s.log());
}

/// Runs `sipprov serve` on `dir`, which must exit with an error within 30 s; returns stderr.
fn serve_fails(dir: &std::path::Path) -> String {
    let mut child = Command::new(common::bin())
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started despite a bad override directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_old_override_directory_is_imported_once_or_start_fails_naming_the_file() {
    let mut s = TestServer::start();
    add_device(&s);
    s.stop();
    let dir = s.data_dir().join("templates");

    write(dir.join("yealnk/mac.cfg.j2"), V1);
    let err = serve_fails(s.data_dir());
    assert!(err.contains("templates/yealnk/mac.cfg.j2") && err.contains("unknown vendor"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    write(dir.join("yealink/mac.cfg.j2"), "#!version:1.0.0.1\n{{ oops }\n");
    let err = serve_fails(s.data_dir());
    assert!(err.contains("templates/yealink/mac.cfg.j2") && err.contains("line 2"), "{err}");

    write(dir.join("yealink/mac.cfg.j2"), V1);
    s.spawn(&[]);
    assert_eq!(String::from_utf8(served(&s)).unwrap(), V1_SERVED);
    let versions = s.ok(&["template", "versions", NAME]);
    assert!(versions.contains("import") && versions.contains("imported from"), "{versions}");
    assert!(!dir.exists(), "the directory is moved aside so it is not imported twice");
    let moved = std::fs::read_dir(s.data_dir()).unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("templates.imported-")
            && e.path().join("yealink/mac.cfg.j2").exists()
    });
    assert!(moved);
    s.stop();
    s.spawn(&[]);
    assert_eq!(s.ok(&["template", "versions", NAME]).lines().count(), 1);
}
