//! Fanvil: both XML dialects pinned by golden files, chosen by the requester's firmware, the
//! `fanvil.dialect` setting or the model; every output parsed as XML.
//!
//! Rewrite the golden files after an intended change with
//! `SIPPROV_BLESS=1 cargo test -p sipprov-vendors --test fanvil` and review the diff.

use std::path::PathBuf;

use sipprov_model::{Mac, Settings};
use sipprov_testkit::assert_well_formed_xml;
use sipprov_vendors::{registry, FileScope, FileSpec, RenderContext, Renderer, Vendor};

const GLOBAL: &[&str] = &[
    "provisioning.url=https://prov.example.com/p/",
    "time.ntp_server=pool.ntp.org",
    "time.zone=UTC+01:00",
    "admin.password=Adm1n&<pw>",
    "sip.notify_reboot=1",
];

const DEVICE: &[&str] = &[
    "line.1.display_name=Alice \"Al\" <A&B>",
    "line.1.username=1001",
    "line.1.password=s3cr:t!#",
    "line.1.registrar=pbx.example.com",
    "line.1.port=5060",
    "line.1.transport=tls",
    "line.2.display_name=Bob",
    "line.2.username=1002",
    "line.2.auth_username=auth1002",
    "line.2.password=p@ss2",
    "line.2.registrar=pbx.example.com",
    "line.2.transport=tcp",
    "http.username=dev-user",
    "http.password=dev-pass",
];

const MAC: &str = "0c383e2cd782";

fn fanvil() -> &'static dyn Vendor {
    registry().get("fanvil").unwrap()
}

fn settings(extra: &[&str]) -> Settings {
    let global = Settings::parse_assignments(GLOBAL.iter().copied()).unwrap();
    let device = Settings::parse_assignments(DEVICE.iter().chain(extra).copied()).unwrap();
    Settings::merged([&global, &device])
}

fn device_file(model: &str) -> (&'static sipprov_vendors::ModelInfo, FileSpec) {
    let v = fanvil();
    let model = v.model(model).unwrap();
    (model, v.device_files(model, MAC.parse().unwrap()).remove(0))
}

fn render(model: &str, settings: &Settings, firmware: Option<&str>) -> String {
    let (model, file) = device_file(model);
    let mac: Mac = MAC.parse().unwrap();
    let ctx = RenderContext { vendor: fanvil(), model, mac: Some(mac), settings, firmware };
    let out = Renderer::new(None).render(&ctx, &file).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_well_formed_xml(&text);
    text
}

fn golden(case: &str, got: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fanvil").join(case);
    if std::env::var_os("SIPPROV_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (run with SIPPROV_BLESS=1)", path.display()));
    assert!(got == want, "{} differs from the golden file:\n--- got\n{got}\n--- want\n{want}", path.display());
}

#[test]
fn modern_firmware_gets_sysconf() {
    let text = render("X4U", &settings(&[]), Some("2.12.1"));
    assert!(text.contains("<sysConf>") && !text.contains("VOIP_CONFIG_FILE"), "{text}");
    golden("x4u-modern.cfg", &text);
}

#[test]
fn legacy_firmware_gets_voip_config_file() {
    let text = render("X4U", &settings(&[]), Some("2.0.1"));
    assert!(text.contains("<VOIP_CONFIG_FILE>") && !text.contains("sysConf"), "{text}");
    golden("x4u-legacy.cfg", &text);
}

#[test]
fn every_neutral_setting_reaches_both_dialects() {
    let modern = render("X4U", &settings(&[]), Some("2.12.1"));
    for want in [
        "<FlashServerIP>https://prov.example.com/p/</FlashServerIP>",
        "<DefaultUsername>dev-user</DefaultUsername>",
        "<DefaultPassword>dev-pass</DefaultPassword>",
        "<SNTPServer>pool.ntp.org</SNTPServer>",
        "<TimeZone>4</TimeZone>",
        "<NotifyReboot>1</NotifyReboot>",
        "<Password>Adm1n&amp;&lt;pw&gt;</Password>",
        "<line index=\"2\">",
        "<RegisterUser>auth1002</RegisterUser>",
        "<RegisterPswd>s3cr:t!#</RegisterPswd>",
        "<Transport>3</Transport>",
        "<Transport>1</Transport>",
        "<DisplayName>Alice &quot;Al&quot; &lt;A&amp;B&gt;</DisplayName>",
    ] {
        assert!(modern.contains(want), "modern lacks {want}:\n{modern}");
    }
    let legacy = render("X4U", &settings(&[]), Some("1.4.0.2016"));
    for want in [
        "<Download_Server_IP>https://prov.example.com/p/</Download_Server_IP>",
        "<Download_Username>dev-user</Download_Username>",
        "<Download_Password>dev-pass</Download_Password>",
        "<SNTP_Server>pool.ntp.org</SNTP_Server>",
        "<Time_Zone>4</Time_Zone>",
        "<Menu_Password>Adm1n&amp;&lt;pw&gt;</Menu_Password>",
        "<ID>SIP2</ID>",
        "<Register_User>auth1002</Register_User>",
        "<Register_Pswd>p@ss2</Register_Pswd>",
        "<Transport>3</Transport>",
    ] {
        assert!(legacy.contains(want), "legacy lacks {want}:\n{legacy}");
    }
}

#[test]
fn unknown_firmware_uses_the_setting_then_the_model() {
    // No phone asking: the model decides (first-generation X4 reads the legacy file).
    assert!(render("X4", &settings(&[]), None).contains("<VOIP_CONFIG_FILE>"));
    assert!(render("X6U", &settings(&[]), None).contains("<sysConf>"));
    // The setting wins over the model and over the firmware.
    assert!(render("X6U", &settings(&["fanvil.dialect=legacy"]), None).contains("<VOIP_CONFIG_FILE>"));
    assert!(render("X4", &settings(&["fanvil.dialect=modern"]), Some("1.0.0")).contains("<sysConf>"));
    assert!(sipprov_vendors::parse_settings(["fanvil.dialect=newest"]).is_err());
}

#[test]
fn raw_overrides_go_into_their_section_and_stay_in_their_dialect() {
    let extra = ["vendor.sip.line.1.DTMFMode=2", "vendor.phone.date.DSTMinOffset=60", "vendor.SIP.1.DTMF_Mode=1"];
    let st = settings(&extra);
    let modern = render("X4U", &st, Some("2.12.1"));
    assert!(
        modern.contains("<DTMFMode>2</DTMFMode>") && modern.contains("<DSTMinOffset>60</DSTMinOffset>"),
        "{modern}"
    );
    assert!(!modern.contains("DTMF_Mode"), "{modern}");
    let legacy = render("X4U", &st, Some("2.0.0"));
    assert!(legacy.contains("<DTMF_Mode>1</DTMF_Mode>") && !legacy.contains("DTMFMode"), "{legacy}");
    let (model, _) = device_file("X4U");
    let bad = Settings::parse_assignments(["vendor.nowhere.Element=1"]).unwrap();
    let err = fanvil().validate_device(model, &bad).unwrap_err().to_string();
    assert!(err.contains("vendor.nowhere.Element"), "{err}");
    assert!(fanvil().validate_device(model, &st).is_ok());
}

#[test]
fn common_files_are_named_by_model_and_carry_no_secret() {
    let v = fanvil();
    let (model, spec) = v.model_file("F0V00X600000.cfg", None).unwrap();
    assert_eq!((model.name, spec.scope), ("X6", FileScope::Model));
    assert!(v.model_file("f0x4hw1.100.cfg", None).is_some_and(|(m, _)| m.name == "X4"));
    assert!(v.model_file("F0V0V6500000.cfg", None).is_some_and(|(m, _)| m.name == "V65"));
    assert!(v.model_file("0c383e2cd782.cfg", None).is_none());
    let global = Settings::parse_assignments(GLOBAL.iter().copied()).unwrap();
    for firmware in [Some("1.12.2"), Some("2.12.1")] {
        let ctx = RenderContext { vendor: v, model, mac: None, settings: &global, firmware };
        let text = String::from_utf8(Renderer::new(None).render(&ctx, &spec).unwrap()).unwrap();
        assert_well_formed_xml(&text);
        assert!(text.contains("https://prov.example.com/p/") && !text.contains("Adm1n"), "{text}");
        golden(&format!("f0v00x600000-{}.cfg", if firmware == Some("1.12.2") { "legacy" } else { "modern" }), &text);
    }
}

#[test]
fn device_files_and_user_agents() {
    let v = fanvil();
    let (model, file) = device_file("X4U");
    assert!(file.matches("0C383E2CD782.cfg") && file.matches("0c383e2cd782.xml"));
    assert_eq!(v.mac_in_file_name("0c383e2cd782.xml").unwrap().to_string(), MAC);
    assert!(v.mac_in_file_name("000000000000.cfg").is_none());
    let info = registry().identify_user_agent("Fanvil X4U 2.12.1 0c383e2cd782").unwrap();
    assert_eq!((info.vendor, info.model.as_deref(), info.firmware.as_deref()), ("fanvil", Some("X4U"), Some("2.12.1")));
    let info = registry().identify_user_agent("Fanvil X6U Pro 0.0.10 0c383e2cd782").unwrap();
    assert_eq!(info.model.as_deref(), Some("X6U-Pro"));
    assert_eq!(v.http_credential_parameters(model), ["ap.DefaultUsername", "ap.DefaultPassword"]);
    for name in ["sip.line.2.RegisterPswd", "SIP.1.Register_Pswd", "ap.DefaultPassword", "web.account.1.Password"] {
        assert!(sipprov_vendors::is_secret_setting(&format!("vendor.{name}")), "{name}");
    }
    assert_eq!(sipprov_vendors::check_sync_event("fanvil", false), Some("resync"));
    assert_eq!(sipprov_vendors::check_sync_event("fanvil", true), Some("check-sync;reboot=true"));
}
