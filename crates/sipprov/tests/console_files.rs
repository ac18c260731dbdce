//! The console's Files page against the real server: it lists stored firmware and resource
//! files, an admin uploads through its multipart form (streamed, CSRF-checked before the file is
//! read), refusals are shown on the page, and removal asks first and shows why it is refused
//! while a device targets the version.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{curl_with, Fetched, TestServer};

const PASSWORD: &str = "correct horse battery";

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

/// A logged-in browser: the session cookie.
struct Browser<'a> {
    server: &'a TestServer,
    cookie: String,
}

impl<'a> Browser<'a> {
    fn login(server: &'a TestServer, user: &str) -> Browser<'a> {
        let origin = format!("http://{}", server.api);
        let args = ["-H", &format!("Origin: {origin}"), "--data-urlencode", &format!("user={user}")]
            .into_iter()
            .map(String::from)
            .chain(["--data-urlencode".to_string(), format!("password={PASSWORD}")])
            .collect::<Vec<_>>();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let answer = curl_with(&format!("{origin}/console/login"), "test", &args).0;
        let cookie = answer.header("set-cookie").expect("logged in").split(';').next().unwrap().to_string();
        Browser { server, cookie }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.api)
    }

    fn get(&self, path: &str) -> Fetched {
        curl_with(&self.url(path), "test", &["-H", &format!("Cookie: {}", self.cookie)]).0
    }

    fn csrf(&self) -> String {
        let page = self.get("/console/files").text();
        let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
        page[at..].split('"').next().unwrap().to_string()
    }

    /// Sends the upload form: `fields` in order (as a browser sends the form's inputs), then the file.
    fn upload(&self, fields: &[(&str, &str)], file: &Path) -> Fetched {
        let mut args = vec![
            "-H".to_string(),
            format!("Cookie: {}", self.cookie),
            "-H".to_string(),
            format!("Origin: http://{}", self.server.api),
        ];
        for (k, v) in fields {
            args.extend(["-F".to_string(), format!("{k}={v}")]);
        }
        args.extend(["-F".to_string(), format!("file=@{}", file.display())]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_with(&self.url("/console/files/upload"), "test", &args).0
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Fetched {
        let mut args = vec![
            "-H".to_string(),
            format!("Cookie: {}", self.cookie),
            "-H".to_string(),
            format!("Origin: http://{}", self.server.api),
        ];
        for (k, v) in form {
            args.extend(["--data-urlencode".to_string(), format!("{k}={v}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl_with(&self.url(path), "test", &args).0
    }
}

fn blobs(s: &TestServer) -> usize {
    std::fs::read_dir(s.data_dir().join("files/sha256")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn the_files_page_lists_uploads_and_removes_with_confirmation() {
    let s = TestServer::start();
    add_user(&s, "alice", "admin");
    add_user(&s, "rita", "read-only");
    let src = tempfile::tempdir().unwrap();
    let image = src.path().join("t46s-66.86.0.160.rom");
    std::fs::write(&image, vec![7u8; 50_000]).unwrap();
    let tone = src.path().join("ring.wav");
    std::fs::write(&tone, b"RIFF....WAVE").unwrap();
    s.ok(&["resource", "add", tone.to_str().unwrap(), "--kind", "ringtone"]);

    let b = Browser::login(&s, "alice");
    let page = b.get("/console/files");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("href=\"/console/files\"") && html.contains("ring.wav") && html.contains("ringtone"),
        "{html}"
    );
    assert!(html.contains("enctype=\"multipart/form-data\""), "an admin sees the upload form");
    let csrf = b.csrf();

    // Without the token, or with a wrong one, nothing is read or stored.
    let refused = b.upload(&[("kind", "firmware")], &image);
    assert_eq!(refused.status, 403, "{}", refused.text());
    let refused = b.upload(&[("csrf", "forged"), ("kind", "firmware")], &image);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(blobs(&s), 1, "only the ringtone is stored");

    // A bad model is refused on the page, naming the field and the known models.
    let firmware = |models: &'static str| {
        vec![("kind", "firmware"), ("vendor", "yealink"), ("models", models), ("version", "66.86.0.160")]
    };
    let with_csrf = |fields: Vec<(&'static str, &'static str)>| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend(fields);
        all
    };
    let bad = b.upload(&with_csrf(firmware("T99Z")), &image);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("T99Z") && bad.text().contains("T48S"), "{}", bad.text());
    assert_eq!(blobs(&s), 1);

    let ok = b.upload(&with_csrf(firmware("T46S,T48S")), &image);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.text().contains("t46s-66.86.0.160.rom stored"), "{}", ok.text());
    let listed = s.json(&["firmware", "list", "--json"]);
    assert_eq!(listed[0]["added_by"], "alice", "{listed}");
    assert_eq!(listed[0]["models"], serde_json::json!(["T46S", "T48S"]));
    let html = b.get("/console/files").text();
    let sha = listed[0]["sha256"].as_str().unwrap();
    assert!(html.contains(&sha[..12]) && html.contains("66.86.0.160") && html.contains("T46S, T48S"), "{html}");

    // Removal asks first; while a device targets the version, the reasons are shown and it is refused.
    s.ok(&[
        "device",
        "add",
        "001565aabb01",
        "--vendor",
        "yealink",
        "--model",
        "T46S",
        "--set",
        "firmware.version=66.86.0.160",
    ]);
    let confirm = b.get("/console/files/t46s-66.86.0.160.rom/remove");
    assert!(confirm.text().contains("in use") && confirm.text().contains("001565aabb01"), "{}", confirm.text());
    let form = [("csrf", csrf.as_str()), ("confirm", "yes")];
    let refused = b.post("/console/files/t46s-66.86.0.160.rom/remove", &form);
    assert_eq!(refused.status, 409, "{}", refused.text());
    assert!(refused.text().contains("001565aabb01"), "{}", refused.text());
    s.ok(&["device", "rm", "001565aabb01"]);
    let removed = b.post("/console/files/t46s-66.86.0.160.rom/remove", &form);
    assert_eq!(removed.status, 200, "{}", removed.text());
    assert!(s.json(&["firmware", "list", "--json"]).as_array().unwrap().is_empty());

    // A read-only user sees the list but neither the form nor the way to upload.
    let r = Browser::login(&s, "rita");
    let html = r.get("/console/files").text();
    assert!(html.contains("ring.wav") && !html.contains("multipart/form-data"), "{html}");
    let token = r.csrf_or_none();
    let denied = r.upload(&[("csrf", token.as_str()), ("kind", "ringtone")], &tone);
    assert_eq!(denied.status, 403, "{}", denied.text());
}

impl Browser<'_> {
    /// The session's CSRF token from any form of the console (the logout form carries it).
    fn csrf_or_none(&self) -> String {
        let page = self.get("/console/files").text();
        page.find("name=\"csrf\" value=\"")
            .map(|at| page[at + 19..].split('"').next().unwrap().to_string())
            .unwrap_or_default()
    }
}
