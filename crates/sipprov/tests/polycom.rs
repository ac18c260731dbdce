//! Polycom end to end: the master files, the device's own file inside its first-fetch window and
//! then only with the credentials that file hands the phone, the site file, and check-sync
//! through the server against SIPp playing the phone.

mod common;

use std::time::Duration;

use common::{curl_with, scenario, TestServer};
use sipprov_testkit::assert_well_formed_xml;
use sipprov_testkit::Sipp;

const MAC: &str = "0004f2aabbcc";
const UA: &str = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application";

/// The value of attribute `name` in a Polycom file, parsed by Python's minidom.
fn attribute(body: &[u8], name: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.xml");
    std::fs::write(&path, body).unwrap();
    let script = "import xml.dom.minidom,sys\nd=xml.dom.minidom.parse(sys.argv[1]).documentElement\n\
                  sys.stdout.write(d.getAttribute(sys.argv[2]) if d.hasAttribute(sys.argv[2]) else '\\0')";
    let out = std::process::Command::new("python3").args(["-c", script]).arg(&path).arg(name).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value = String::from_utf8(out.stdout).unwrap();
    (value != "\0").then_some(value)
}

fn add_polycom(s: &TestServer) {
    s.ok(&["settings", "set", "provisioning.url=https://prov.example.com/polycom/", "time.ntp_server=pool.ntp.org"]);
    s.ok(&[
        "device",
        "add",
        "00:04:F2:AA:BB:CC",
        "--vendor",
        "polycom",
        "--model",
        "VVX_410",
        "--set",
        "line.1.username=2001",
        "--set",
        "line.1.password=s3cret&<pc>",
        "--set",
        "line.1.registrar=pbx.example.com",
        "--set",
        "line.1.transport=tls",
    ]);
}

#[test]
fn polycom_phone_gets_master_device_and_site_files_in_the_default_posture() {
    let s = TestServer::start_closed();
    add_polycom(&s);
    // The master file, under the device's name and the default one: the same for every phone,
    // served without credentials, and it leaves the device's first-fetch window open.
    let own = s.fetch(&format!("/{MAC}.cfg"), UA, &[]);
    assert_eq!(own.status, 200, "{}", s.log());
    assert_eq!(own.header("content-type"), Some("application/xml"));
    let default = s.fetch("/000000000000.cfg", UA, &[]);
    assert_eq!((default.status, &default.body), (200, &own.body));
    assert_eq!(s.fetch("/000000000000.cfg", "", &[]).status, 200, "without a User-Agent too");
    assert_well_formed_xml(&own.body);
    assert_eq!(attribute(&own.body, "CONFIG_FILES").as_deref(), Some("[PHONE_MAC_ADDRESS]-device.cfg, site.cfg"));

    // The device's own file: once without credentials, carrying generated ones.
    let url = format!("http://{}/polycom/{MAC}-device.cfg", s.http);
    let (first, _) = curl_with(&url, UA, &[]);
    assert_eq!(first.status, 200, "{}", s.log());
    assert_well_formed_xml(&first.body);
    assert_eq!(attribute(&first.body, "reg.1.auth.password").as_deref(), Some("s3cret&<pc>"));
    assert_eq!(attribute(&first.body, "reg.1.server.1.transport").as_deref(), Some("TLS"));
    assert_eq!(attribute(&first.body, "device.prov.serverName").as_deref(), Some("prov.example.com/polycom/"));
    assert_eq!(attribute(&first.body, "device.prov.serverType").as_deref(), Some("HTTPS"));
    let user = attribute(&first.body, "device.prov.user").expect("generated user");
    let password = attribute(&first.body, "device.prov.password").expect("generated password");
    assert_eq!(user, format!("sipprov-{MAC}"));
    assert!(password.len() >= 20, "{password}");
    assert_eq!(curl_with(&url, UA, &[]).0.status, 401, "the window closed at the first fetch");
    let (again, _) = curl_with(&url, UA, &["--digest", "--user", &format!("{user}:{password}")]);
    assert_eq!((again.status, &again.body), (200, &first.body), "{}", s.log());
    assert_eq!(s.render(MAC, Some(&format!("{MAC}-device.cfg"))), first.body);

    // The site file: global settings, no line, no secret.
    let site = s.fetch("/polycom/site.cfg", UA, &[]);
    assert_eq!(site.status, 200);
    assert_well_formed_xml(&site.body);
    assert_eq!(attribute(&site.body, "tcpIpApp.sntp.address").as_deref(), Some("pool.ntp.org"));
    let text = site.text();
    assert!(!text.contains("reg.") && !text.contains(&password) && !text.contains("s3cret"), "{text}");

    // A MAC the server does not know gets what an unauthenticated known device gets.
    assert_eq!(curl_with(&format!("http://{}/0004f2000001-device.cfg", s.http), UA, &[]).0.status, 401);
}

#[test]
fn polycom_check_sync_names_no_reboot_parameter_and_the_file_decides() {
    let s = TestServer::start();
    let mut phone = Sipp::start(scenario("phone_polycom_check_sync.xml"), "udp");
    s.ok(&[
        "device",
        "add",
        MAC,
        "--vendor",
        "polycom",
        "--model",
        "Trio 8800",
        "--contact",
        &format!("sip:2001@127.0.0.1:{}", phone.port()),
        "--set",
        "line.1.username=2001",
        "--set",
        "sip.notify_reboot=1",
    ]);
    let file = s.fetch(&format!("/{MAC}-device.cfg"), "", &[]);
    assert_eq!(file.status, 200);
    assert_eq!(attribute(&file.body, "voIpProt.SIP.specialEvent.checkSync.alwaysReboot").as_deref(), Some("1"));
    let out = s.ok(&["device", "notify", MAC, "--reboot"]);
    assert!(out.starts_with("200"), "{out}");
    assert_eq!(phone.wait(Duration::from_secs(10)), 0, "{}", phone.errors());
    let shown = s.json(&["device", "show", MAC, "--json"]);
    assert_eq!(shown["last_notify"]["outcome"]["event"], "check-sync");

    s.ok(&["device", "set", MAC, "sip.notify_reboot=0"]);
    let file = s.fetch(&format!("/{MAC}-device.cfg"), "", &[]);
    assert_eq!(attribute(&file.body, "voIpProt.SIP.specialEvent.checkSync.alwaysReboot").as_deref(), Some("0"));
    // The file no longer reboots on check-sync, so a reboot asked for is refused, not faked.
    let refused = s.fails(&["device", "notify", MAC, "--reboot"]);
    assert!(refused.contains("alwaysReboot"), "{refused}");
}
