//! Golden files: the exact bytes sent to phones for fixed inputs.
//!
//! Each case renders one file and compares it byte for byte with
//! `tests/golden/<vendor>/<case>`. After an intended change, rewrite them with
//! `SIPPROV_BLESS=1 cargo test -p sipprov-vendors --test golden` and review the diff.

use std::path::PathBuf;

use sipprov_model::{Mac, Settings};
use sipprov_vendors::{registry, FileScope, RenderContext, Renderer};

/// Settings shared by every vendor's device: two lines, special characters, raw overrides.
const GLOBAL: &[&str] = &[
    "provisioning.url=https://prov.example.com/p/",
    "provisioning.interval_minutes=1440",
    "time.ntp_server=pool.ntp.org",
    "time.zone=UTC+01:00",
    "firmware.url=https://prov.example.com/fw/current.rom",
    "admin.password=Adm1n&<pw>",
    "site.name=Head office",
];

const DEVICE: &[&str] = &[
    "line.1.display_name=Alice \"Al\" <A&B>",
    "line.1.username=1001",
    "line.1.password=s3cr:t!#",
    "line.1.registrar=pbx.example.com",
    "line.1.port=5060",
    "line.1.transport=udp",
    "line.2.display_name=Bob",
    "line.2.username=1002",
    "line.2.auth_username=auth1002",
    "line.2.password=p@ss2",
    "line.2.registrar=pbx.example.com",
    "line.2.port=5060",
    "line.2.transport=udp",
    "sip.notify_reboot=yes",
];

fn settings(items: &[&str], device: bool) -> Settings {
    let global = Settings::parse_assignments(GLOBAL.iter().copied()).unwrap();
    if !device {
        return global;
    }
    let dev = Settings::parse_assignments(items.iter().copied()).unwrap();
    Settings::merged([&global, &dev])
}

/// Renders file `index` of the device's files and compares it with the golden file.
fn check(vendor: &str, model: &str, mac: &str, index: usize, extra: &[&str], case: &str) {
    let items: Vec<&str> = DEVICE.iter().chain(extra).copied().collect();
    check_device(vendor, model, mac, index, &items, case);
}

/// As [`check`], with the device's own settings in full instead of [`DEVICE`] plus extras.
fn check_device(vendor: &str, model: &str, mac: &str, index: usize, items: &[&str], case: &str) {
    let v = registry().get(vendor).unwrap();
    let model = v.model(model).unwrap();
    let mac: Mac = mac.parse().unwrap();
    let file = &v.device_files(model, mac)[index];
    let device = file.scope == FileScope::Device;
    let st = settings(items, device);
    let ctx = RenderContext { vendor: v, model, mac: device.then_some(mac), settings: &st };
    let got = Renderer::new(None).render(&ctx, file).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(vendor).join(case);
    if std::env::var_os("SIPPROV_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with SIPPROV_BLESS=1)", path.display()));
    assert!(
        got == want,
        "{} differs from the golden file:\n--- got\n{}\n--- want\n{}",
        path.display(),
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn yealink_t46s_common() {
    check("yealink", "T46S", "001565aabbcc", 0, &[], "t46s-y000000000066.cfg");
}

#[test]
fn yealink_t46s_mac() {
    let extra = ["vendor.account.1.label=Front desk", "vendor.features.dnd.enable=1"];
    check("yealink", "T46S", "001565aabbcc", 1, &extra, "t46s-001565aabbcc.cfg");
}

#[test]
fn yealink_w60b_mac() {
    check(
        "yealink",
        "W60B",
        "805ec009abdc",
        1,
        &["vendor.static.auto_provision.repeat.minutes=720"],
        "w60b-805ec009abdc.cfg",
    );
}

#[test]
fn yealink_w70b_mac() {
    check("yealink", "W70B", "805e0c1d654e", 1, &["line.2.transport=tls", "line.2.port=5061"], "w70b-805e0c1d654e.cfg");
}

#[test]
fn gigaset_n870() {
    let extra = ["vendor.SipProvider.0.Name=PBX <main>", "gigaset.firmware_version=2.65.0"];
    check("gigaset", "N870", "7c2f80e0d605", 0, &extra, "n870-7C2F80E0D605.xml");
}

#[test]
fn audiocodes_440hd() {
    check(
        "audiocodes",
        "440HD",
        "00908f602aac",
        0,
        &["vendor.personal_settings/language=FRENCH"],
        "440hd-00908F602AAC.cfg",
    );
}

#[test]
fn audiocodes_mp118() {
    let extra = ["vendor.AutoUpdateFrequency=60", "vendor.AUPDCheckIfIniChanged=1"];
    check("audiocodes", "MP-118", "00908f1dd0d3", 0, &extra, "mp118-00908F1DD0D3.ini");
}

#[test]
fn snom_d345() {
    let extra = ["vendor.user_dtmf_info.2=sip_info_only", "vendor.language=English"];
    check("snom", "D345", "000413a11fa7", 0, &extra, "d345-000413A11FA7.xml");
}

#[test]
fn grandstream_gxp1628() {
    // One account: the research verifies no P-values for accounts 2 and up.
    let device = [
        "line.1.display_name=Alice \"Al\" <A&B>",
        "line.1.username=1001",
        "line.1.password=s3cr:t!#",
        "line.1.registrar=pbx.example.com",
        "line.1.port=5060",
        "line.1.transport=udp",
        "sip.notify_reboot=yes",
        "vendor.P238=0",
        "vendor.language=English",
    ];
    check_device("grandstream", "GXP1628", "c074ad2bd859", 0, &device, "gxp1628-cfgc074ad2bd859.xml");
}

#[test]
fn cisco_cp_8841_3pcc() {
    // SIP_Transport_N_ is unverified, so line.N.transport is not mapped; a raw override sets it.
    // vendor.user_dtmf_info.2 (a Snom name, not a Cisco element name) is left out.
    let extra = ["vendor.SIP_Transport_2_=TLS", "vendor.user_dtmf_info.2=sip_info_only", "vendor.Dial_Plan_1_=(x.)"];
    check("cisco", "CP-8841-3PCC", "00562b043615", 0, &extra, "cp-8841-3pcc-00562b043615.xml");
}

#[test]
fn polycom_vvx410() {
    let extra = ["http.username=prov-user", "http.password=prov&pw", "vendor.up.backlight.idleIntensity=1"];
    check("polycom", "VVX410", "0004f2aabbcc", 0, &extra, "vvx410-0004f2aabbcc.cfg");
    check("polycom", "VVX410", "0004f2aabbcc", 1, &extra, "vvx410-0004f2aabbcc-device.cfg");
    check("polycom", "VVX410", "0004f2aabbcc", 2, &extra, "vvx410-site.cfg");
}
