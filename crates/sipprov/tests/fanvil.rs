//! Fanvil end to end: the server on ephemeral ports, fetched by curl with the User-Agents of a
//! legacy-firmware and a current-firmware phone, and check-sync verified by SIPp.

mod common;

use std::time::Duration;

use common::{scenario, TestServer};
use sipprov_testkit::assert_well_formed_xml;
use sipprov_testkit::Sipp;

const MAC: &str = "0c383e2cd782";
/// Current firmware (wazo `common.py` sample shape): reads `<sysConf>`.
const MODERN_UA: &str = "Fanvil X4U 2.12.1 0c383e2cd782";
/// Firmware before 2.2.10: reads `<VOIP_CONFIG_FILE>`.
const LEGACY_UA: &str = "Fanvil X4U 2.0.1.3021 0c383e2cd782";

fn add_fanvil(s: &TestServer, extra: &[&str]) {
    let mut args = vec![
        "device",
        "add",
        MAC,
        "--vendor",
        "fanvil",
        "--model",
        "X4U",
        "--set",
        "line.1.username=1001",
        "--set",
        "line.1.password=s3cret-fv",
        "--set",
        "line.1.registrar=pbx.example.com",
        "--set",
        "line.1.display_name=Alice & Co",
    ];
    args.extend(extra);
    s.ok(&args);
}

#[test]
fn each_firmware_gets_the_dialect_it_reads() {
    let s = TestServer::start();
    add_fanvil(&s, &[]);
    s.ok(&["settings", "set", "provisioning.url=http://prov.example.com/", "time.ntp_server=pool.ntp.org"]);

    let modern = s.fetch(&format!("/{MAC}.cfg"), MODERN_UA, &[]);
    assert_eq!(modern.status, 200, "{}", s.log());
    assert_well_formed_xml(&modern.body);
    let text = modern.text();
    assert!(text.contains("<sysConf>") && text.contains("<RegisterPswd>s3cret-fv</RegisterPswd>"), "{text}");
    assert!(text.contains("<DisplayName>Alice &amp; Co</DisplayName>"), "{text}");
    assert!(text.contains("<FlashServerIP>http://prov.example.com/</FlashServerIP>"), "{text}");

    let legacy = s.fetch(&format!("/{MAC}.cfg"), LEGACY_UA, &[]);
    assert_eq!(legacy.status, 200, "{}", s.log());
    assert_well_formed_xml(&legacy.body);
    let text = legacy.text();
    assert!(text.contains("<VOIP_CONFIG_FILE>") && text.contains("<Register_Pswd>s3cret-fv</Register_Pswd>"), "{text}");
    assert!(text.contains("<Download_Server_IP>http://prov.example.com/</Download_Server_IP>"), "{text}");

    // Cached per dialect: asking again in the other order gives each its own bytes and ETag.
    let modern_again = s.fetch(&format!("/{MAC}.cfg"), MODERN_UA, &[]);
    assert_eq!(modern_again.body, modern.body);
    assert_ne!(modern.header("etag"), legacy.header("etag"));
    let revalidated =
        s.fetch(&format!("/{MAC}.cfg"), LEGACY_UA, &[&format!("If-None-Match: {}", modern.header("etag").unwrap())]);
    assert_eq!(revalidated.status, 200, "the modern ETag must not validate the legacy file");
    assert_eq!(revalidated.body, legacy.body);

    // The .xml spelling of the device file is the same file.
    assert_eq!(s.fetch(&format!("/{MAC}.xml"), MODERN_UA, &[]).body, modern.body);
}

#[test]
fn without_a_user_agent_the_setting_or_the_model_decides() {
    let s = TestServer::start();
    add_fanvil(&s, &[]);
    // `render` has no phone asking: the X4U is a current model, so <sysConf>.
    let rendered = s.render(MAC, None);
    assert_well_formed_xml(&rendered);
    assert!(String::from_utf8_lossy(&rendered).contains("<sysConf>"));
    assert_eq!(rendered, s.fetch(&format!("/{MAC}.cfg"), MODERN_UA, &[]).body);

    // The device's setting overrides the model, and the firmware too.
    s.ok(&["device", "set", MAC, "fanvil.dialect=legacy"]);
    let rendered = s.render(MAC, None);
    assert!(String::from_utf8_lossy(&rendered).contains("<VOIP_CONFIG_FILE>"));
    let fetched = s.fetch(&format!("/{MAC}.cfg"), MODERN_UA, &[]);
    assert_eq!(fetched.body, rendered, "the setting wins over the firmware");
    let e = s.fails(&["device", "set", MAC, "fanvil.dialect=newest"]);
    assert!(e.contains("fanvil.dialect"), "{e}");
}

#[test]
fn an_unknown_phone_gets_its_model_common_file_without_secrets() {
    let s = TestServer::start();
    add_fanvil(&s, &["--set", "admin.password=adm-secret"]);
    s.ok(&["settings", "set", "provisioning.url=http://prov.example.com/"]);
    for (ua, root) in
        [("Fanvil X6 1.12.2 0c383e000001", "<VOIP_CONFIG_FILE>"), ("Fanvil X6 2.12.1 0c383e000001", "<sysConf>")]
    {
        let common = s.fetch("/F0V00X600000.cfg", ua, &[]);
        assert_eq!(common.status, 200, "{}", s.log());
        assert_well_formed_xml(&common.body);
        let text = common.text();
        assert!(text.contains(root) && text.contains("http://prov.example.com/"), "{text}");
        assert!(!text.contains("s3cret-fv") && !text.contains("adm-secret"), "{text}");
    }
}

#[test]
fn check_sync_resyncs_and_reboot_uses_the_reboot_event() {
    let s = TestServer::start();
    let mut phone = Sipp::start(scenario("fanvil_expects_resync.xml"), "udp");
    add_fanvil(&s, &["--contact", &format!("sip:1001@127.0.0.1:{}", phone.port())]);
    let out = s.ok(&["device", "notify", MAC]);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{}", phone.errors());
    let shown = s.json(&["device", "show", MAC, "--json"]);
    assert_eq!(shown["last_notify"]["outcome"]["event"], "resync");

    let mut phone = Sipp::start(scenario("phone_expects_reboot.xml"), "udp");
    s.ok(&["device", "set", MAC, "--contact", &format!("sip:1001@127.0.0.1:{}", phone.port())]);
    let out = s.ok(&["device", "notify", MAC, "--reboot"]);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{}", phone.errors());
}

/// The text of `<element>` in an XML file.
fn element(text: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = text.find(&open).unwrap_or_else(|| panic!("no <{name}> in:\n{text}")) + open.len();
    let end = text[start..].find("</").expect("closed element") + start;
    text[start..end].to_string()
}

#[test]
fn closed_by_default_the_first_file_hands_over_credentials_in_either_dialect() {
    let s = TestServer::start_closed();
    add_fanvil(&s, &[]);
    let path = format!("/{MAC}.cfg");
    let first = s.fetch(&path, LEGACY_UA, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    let text = first.text();
    let (user, password) = (element(&text, "Download_Username"), element(&text, "Download_Password"));
    assert!(password.len() >= 20, "generated credentials in the legacy file: {text}");
    assert_eq!(s.fetch(&path, LEGACY_UA, &[]).status, 401, "the first-fetch window is closed");
    let creds = format!("{user}:{password}");
    let modern = s.fetch_digest(&path, MODERN_UA, &creds, &[]);
    assert_eq!(modern.status, 200, "{}", s.log());
    let text = modern.text();
    assert_eq!((element(&text, "DefaultUsername"), element(&text, "DefaultPassword")), (user, password));
    assert!(!s.ok(&["device", "show", MAC]).contains(&element(&text, "DefaultPassword")));
}
