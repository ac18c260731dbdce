//! Vendor-owned setting keys (`yealink.*`, `fanvil.*`) are declared by their vendor module and
//! validated through the vendors crate at every entry point of the real server: the admin API
//! (called directly with curl, so the CLI's own local check is not what refuses), the CLI and the
//! CSV import. The model crate alone would take them as free keys.

mod common;

use common::TestServer;
use std::process::Command;

/// PATCHes `path` on the admin API with a JSON body; returns the status and the body.
fn patch(s: &TestServer, path: &str, body: &str) -> (u16, String) {
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-X", "PATCH", "-H", "Content-Type: application/json"])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .args(["-d", body, "-w", "\n%{http_code}"])
        .arg(format!("http://{}{path}", s.api))
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn the_api_validates_vendor_keys_through_their_module() {
    let s = TestServer::start();
    // A typo in a vendor's namespace is refused, naming the vendor's keys.
    let (status, body) = patch(&s, "/api/v1/settings", r#"{"yealink.aes_kye":"0123456789abcdef"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("yealink.aes_kye") && body.contains("yealink.aes_key_file"), "{body}");
    // A bad value is refused without being repeated.
    let (status, body) = patch(&s, "/api/v1/settings", r#"{"yealink.common_aes_key":"short-secret"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("16 or 32") && !body.contains("short-secret"), "{body}");
    let (status, body) = patch(&s, "/api/v1/settings", r#"{"fanvil.dialect":"retro"}"#);
    assert_eq!(status, 400, "{body}");
    // Values are normalised by the owning module; secrets declared by it are redacted, its
    // switches are not.
    let (status, body) = patch(
        &s,
        "/api/v1/settings",
        r#"{"yealink.aes_key_file":"yes","yealink.aes_key":"0123456789abcdef","fanvil.dialect":"Legacy"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let global: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(global["yealink.aes_key_file"], "1", "{body}");
    assert_eq!(global["fanvil.dialect"], "legacy", "{body}");
    assert_eq!(global["yealink.aes_key"], "********", "{body}");
    // A global-only key is refused in a group.
    let (status, body) = patch(&s, "/api/v1/groups/lab", r#"{"yealink.common_aes_key":"C0mmon-Key.16chr"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("global setting"), "{body}");
    // Another vendor's namespace without declared keys stays free for templates.
    let (status, body) = patch(&s, "/api/v1/settings", r#"{"snom.site_colour":"blue"}"#);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_cli_and_the_csv_import_validate_vendor_keys() {
    let s = TestServer::start();
    let err = s.fails(&["settings", "set", "yealink.aes_padding=zero"]);
    assert!(err.contains("yealink.aes_padding") && err.contains("pkcs7"), "{err}");
    let csv = s.data_dir().join("devices.csv");
    std::fs::write(&csv, "mac,vendor,model,yealink.aes_key_fil\n001565aabbcc,yealink,T46S,1\n").unwrap();
    let err = s.fails(&["device", "import", csv.to_str().unwrap()]);
    assert!(err.contains("yealink.aes_key_fil"), "{err}");
    std::fs::write(&csv, "mac,vendor,model,yealink.aes_key_file\n001565aabbcc,yealink,T46S,on\n").unwrap();
    s.ok(&["device", "import", csv.to_str().unwrap()]);
    let shown = s.ok(&["device", "show", "001565aabbcc"]);
    assert!(shown.contains("yealink.aes_key_file") && shown.contains('1') && !shown.contains("= on"), "{shown}");
}
