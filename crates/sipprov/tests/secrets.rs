//! Secrets stay secret: passwords set through raw vendor parameter names and
//! contact URIs carrying a password appear in no listing, API answer, history or log line; a
//! failing template does not quote a setting; a malformed argument is not echoed; the data
//! directory and database files are private, and start-up warns about ones that are not.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{curl_with, eventually, TestServer};

const SNOM: &str = "000413a11fa7";
const GRANDSTREAM: &str = "000b82632815";
const CISCO: &str = "0002fdff2103";
const YEALINK: &str = "001565aabbcc";

/// Every secret the test sets, each unique so a leak names its way out.
const SNOM_USER_PASS: &str = "snomUserPw-11";
const SNOM_HTTP_PASS: &str = "snomHttpPw-12";
const GS_ACCOUNT2: &str = "gsAccount2Pw-21";
const GS_ADMIN: &str = "gsAdminPw-22";
const CISCO_LINE2: &str = "ciscoLine2Pw-31";
const CISCO_USER: &str = "ciscoUserPw-32";
const YEALINK_ADMIN: &str = "ylAdminPw-41";
const YEALINK_XML: &str = "ylXmlBrowserPw-42";
const CONTACT_PW: &str = "contactPw-51";
const BAD_CONTACT_PW: &str = "badContactPw-52";
const GROUP_SNOM_HTTP: &str = "groupSnomHttp-61";
const GLOBAL_GS_USER: &str = "globalGsUser-71";
const GLOBAL_URL_PW: &str = "globalUrlPw-72";

const ALL: &[&str] = &[
    SNOM_USER_PASS,
    SNOM_HTTP_PASS,
    GS_ACCOUNT2,
    GS_ADMIN,
    CISCO_LINE2,
    CISCO_USER,
    YEALINK_ADMIN,
    YEALINK_XML,
    CONTACT_PW,
    BAD_CONTACT_PW,
    GROUP_SNOM_HTTP,
    GLOBAL_GS_USER,
    GLOBAL_URL_PW,
];

fn add(s: &TestServer, mac: &str, vendor: &str, model: &str, extra: &[&str], sets: &[String]) {
    let mut args = vec!["device", "add", mac, "--vendor", vendor, "--model", model];
    args.extend(extra);
    for set in sets {
        args.extend(["--set", set.as_str()]);
    }
    s.ok(&args);
}

/// The fleet: four vendors' secrets set the documented way, through their raw names.
fn provision_fleet(s: &TestServer) {
    s.ok(&["group", "set", "snoms", &format!("vendor.http_pass={GROUP_SNOM_HTTP}")]);
    s.ok(&[
        "settings",
        "set",
        &format!("vendor.P196={GLOBAL_GS_USER}"),
        &format!("provisioning.url=https://prov:{GLOBAL_URL_PW}@prov.example.com/"),
    ]);
    let contact = format!("sip:1001:{CONTACT_PW}@127.0.0.1:5099");
    add(
        s,
        SNOM,
        "snom",
        "D345",
        &["--group", "snoms", "--contact", &contact],
        &[
            "line.2.username=1002".into(),
            format!("vendor.user_pass.2={SNOM_USER_PASS}"),
            format!("vendor.http_pass={SNOM_HTTP_PASS}"),
        ],
    );
    let bad_contact = format!("sip:1001:{BAD_CONTACT_PW}@");
    add(
        s,
        GRANDSTREAM,
        "grandstream",
        "GXP1628",
        &["--contact", &bad_contact],
        &["line.1.username=1003".into(), format!("vendor.P406={GS_ACCOUNT2}"), format!("vendor.P2={GS_ADMIN}")],
    );
    add(
        s,
        CISCO,
        "cisco",
        "SPA504G",
        &[],
        &[format!("vendor.Password_2_={CISCO_LINE2}"), format!("vendor.User_Password={CISCO_USER}")],
    );
    add(
        s,
        YEALINK,
        "yealink",
        "T46S",
        &[],
        &[
            format!("vendor.security.user_password=admin:{YEALINK_ADMIN}"),
            format!("vendor.features.xml_browser.pwd={YEALINK_XML}"),
        ],
    );
}

/// An admin API answer, straight from the HTTP listener (no CLI formatting in between).
fn api(s: &TestServer, path: &str) -> String {
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.trim());
    let (got, _) = curl_with(&format!("http://{}{path}", s.api), "test", &["-H", &auth]);
    assert_eq!(got.status, 200, "GET {path}: {}", got.text());
    got.text()
}

fn assert_none_in(what: &str, text: &str) {
    for secret in ALL {
        assert!(!text.contains(secret), "{secret:?} leaked into {what}:\n{text}");
    }
}

#[test]
fn secrets_set_through_raw_vendor_names_and_contacts_are_never_shown() {
    let s = TestServer::start();
    provision_fleet(&s);
    // The values really are set: the phones get them.
    assert!(String::from_utf8(s.render(SNOM, None)).unwrap().contains(SNOM_USER_PASS));
    assert!(String::from_utf8(s.render(GRANDSTREAM, None)).unwrap().contains(GS_ADMIN));
    // Fetches and a failed check-sync put entries into the devices' history and the log.
    for path in [
        format!("/{}.xml", SNOM.to_uppercase()),
        format!("/cfg{GRANDSTREAM}.xml"),
        format!("/{CISCO}.xml"),
        format!("/{YEALINK}.cfg"),
    ] {
        s.fetch(&path, "test-phone", &[]);
    }
    let notify = s.cli(&["device", "notify", GRANDSTREAM]);
    assert_none_in("device notify", &String::from_utf8_lossy(&notify.stderr));

    let mut outputs = vec![
        ("device list", s.ok(&["device", "list"])),
        ("device list --json", s.ok(&["device", "list", "--json"])),
        ("group show", s.ok(&["group", "show", "snoms"])),
        ("group show --json", s.ok(&["group", "show", "snoms", "--json"])),
        ("group list", s.ok(&["group", "list"])),
        ("settings show", s.ok(&["settings", "show"])),
        ("API devices", api(&s, "/api/v1/devices")),
        ("API groups", api(&s, "/api/v1/groups")),
        ("API settings", api(&s, "/api/v1/settings")),
    ];
    for mac in [SNOM, GRANDSTREAM, CISCO, YEALINK] {
        outputs.push(("device show", s.ok(&["device", "show", mac])));
        outputs.push(("device show --json", s.ok(&["device", "show", mac, "--json"])));
        outputs.push(("device log", s.ok(&["device", "log", mac])));
        outputs.push(("device log --json", s.ok(&["device", "log", mac, "--json"])));
        outputs.push(("API device", api(&s, &format!("/api/v1/devices/{mac}"))));
        outputs.push(("API device log", api(&s, &format!("/api/v1/devices/{mac}/log"))));
    }
    for (what, text) in &outputs {
        assert_none_in(what, text);
    }
    // Redacted, not dropped: the operator still sees which settings exist.
    let snom = s.ok(&["device", "show", SNOM]);
    assert!(snom.contains("vendor.user_pass.2 = ********") && snom.contains("vendor.http_pass = ********"), "{snom}");
    assert!(snom.contains("sip:1001:********@127.0.0.1:5099"), "{snom}");
    let gs_log = s.ok(&["device", "log", GRANDSTREAM]);
    assert!(gs_log.contains("notify") && gs_log.contains("invalid SIP URI"), "{gs_log}");
    assert!(s.ok(&["settings", "show"]).contains("vendor.P196 = ********"));
    assert!(s.ok(&["settings", "show"]).contains("https://prov:********@prov.example.com/"));
    assert!(eventually(Duration::from_secs(5), || s.log().contains("device added")));
    assert_none_in("the server log", &s.log());
}

#[test]
fn a_malformed_assignment_is_not_echoed() {
    let s = TestServer::start();
    add(&s, YEALINK, "yealink", "T46S", &[], &["line.1.username=1001".into()]);
    let secret = "typoSecretPw-91";
    let err = s.fails(&["device", "set", YEALINK, &format!("line.1.password:{secret}")]);
    assert!(!err.contains(secret) && err.contains("line.1.password=VALUE"), "{err}");
    let err = s.fails(&["settings", "set", "time.zone=UTC", &format!("vendor.P2 {secret}")]);
    assert!(!err.contains(secret) && err.contains("argument 2"), "{err}");
    let err = s.fails(&["device", "add", CISCO, "--vendor", "cisco", "--model", "SPA504G", "--set", secret]);
    assert!(!err.contains(secret), "{err}");
    // Nor a value of the wrong JSON type sent to the API.
    let token = std::fs::read_to_string(s.data_dir().join("api-token")).unwrap();
    let auth = format!("Authorization: Bearer {}", token.trim());
    let body = r#"{"vendor.P2": 987654321}"#;
    let url = format!("http://{}/api/v1/settings", s.api);
    let headers = ["-X", "PATCH", "-H", &auth, "-H", "Content-Type: application/json", "--data", body];
    let (got, _) = curl_with(&url, "test", &headers);
    assert!(got.status >= 400 && got.text().contains("vendor.P2"), "{} {}", got.status, got.text());
    assert!(!got.text().contains("987654321"), "{}", got.text());
    // A contact refused as invalid is not quoted with its password either.
    let err = s.fails(&["device", "set", YEALINK, "--contact", &format!("http://u:{secret}@x")]);
    assert!(!err.contains(secret) && err.contains("contact"), "{err}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// `sipprov serve` on a data directory that does not exist yet; returns it and its admin API
/// address once it listens.
fn serve_new_dir(data: &Path, log: &Path) -> (std::process::Child, String) {
    let log_file = std::fs::File::create(log).unwrap();
    let mut child = Command::new(common::bin())
        .args(["serve", "--data-dir"])
        .arg(data)
        .args(["--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0"])
        .env("SIPPROV_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listening = std::fs::read_to_string(data.join("listening.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&listening) {
            return (child, format!("http://{}", v["api"].as_str().unwrap()));
        }
        assert!(child.try_wait().unwrap().is_none(), "server exited: {}", std::fs::read_to_string(log).unwrap());
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_data_directory_and_database_are_private_and_open_ones_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("new/data");
    let log = tmp.path().join("server.log");
    let (mut child, api) = serve_new_dir(&data, &log);
    // A write, so SQLite's -wal and -shm exist.
    let out = Command::new(common::bin())
        .args(["settings", "set", "time.zone=UTC", "--api", &api, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&tmp.path().join("new")), 0o700);
    for file in ["sipprov.db", "sipprov.db-wal", "sipprov.db-shm", "api-token"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("accessible to other users"), "a fresh data directory is private:\n{text}");
    let _ = child.kill();
    let _ = child.wait();

    // An existing directory opened up by hand: the server starts, and says what to fix.
    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut s = TestServer { dir: open, child: None, http: String::new(), api: String::new() };
    s.spawn(&[]);
    let dir = s.data_dir().display().to_string();
    let log = s.log();
    assert!(
        log.contains("accessible to other users")
            && log.contains("mode 0755")
            && log.contains(&format!("chmod 700 {dir}")),
        "no warning for the open data directory:\n{log}"
    );
}
