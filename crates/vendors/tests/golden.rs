//! Golden files: the exact bytes sent to phones for fixed inputs.
//!
//! Each case renders one file and compares it byte for byte with
//! `tests/golden/<vendor>/<case>`. After an intended change, rewrite them with
//! `SIPPROV_BLESS=1 cargo test -p sipprov-vendors --test golden` and review the diff.

use std::path::PathBuf;

use sipprov_model::{Mac, Settings};
use sipprov_vendors::{registry, FileScope, RenderContext, Renderer};

mod grammar;
use grammar::{audiocodes_hd_line, first_bad_line, ini_line, yealink_line};

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
    let ctx = RenderContext { vendor: v, model, mac: device.then_some(mac), settings: &st, firmware: None };
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

/// The 400HD file keeps the phone on the provisioning URL, polling it; with Basic the
/// credentials ride in that URL as on the gateways (MP-11x & MP-124 User's Manual LTRT-65432
/// §33.2.4; the 400HD Series Administrator's Manual 3.4.3 accepts "any format" of provisioning URL).
#[test]
fn audiocodes_440hd_basic() {
    let extra = ["http.auth=basic", "http.username=ph-440", "http.password=p@ss:w/rd1"];
    check("audiocodes", "440HD", "00908f602aac", 0, &extra, "440hd-basic-00908F602AAC.cfg");
}

#[test]
fn audiocodes_mp118() {
    let extra = ["vendor.AutoUpdateFrequency=60", "vendor.AUPDCheckIfIniChanged=1"];
    check("audiocodes", "MP-118", "00908f1dd0d3", 0, &extra, "mp118-00908F1DD0D3.ini");
}

/// MP-11x & MP-124 User's Manual §33.2.4: with Basic the gateway takes its credentials from the
/// URLs, percent-encoded here.
#[test]
fn audiocodes_mp118_basic() {
    let extra = ["http.auth=basic", "http.username=gw-118", "http.password=p@ss:w/rd'1"];
    check("audiocodes", "MP-118", "00908f1dd0d3", 0, &extra, "mp118-basic-00908F1DD0D3.ini");
}

#[test]
fn snom_d345() {
    let extra = ["vendor.user_dtmf_info.2=sip_info_only", "vendor.language=English"];
    check("snom", "D345", "000413a11fa7", 0, &extra, "d345-000413A11FA7.xml");
}

#[test]
fn grandstream_gxp1628() {
    // Two accounts: account 2 is P401... (module doc), its transport P448.
    let extra = ["line.2.transport=tcp", "vendor.P238=0", "vendor.language=English"];
    check("grandstream", "GXP1628", "c074ad2bd859", 0, &extra, "gxp1628-cfgc074ad2bd859.xml");
}

#[test]
fn cisco_cp_8841_3pcc() {
    // line.N.transport maps to SIP_Transport_N_; a raw override still replaces it.
    // vendor.user_dtmf_info.2 (a Snom name, not a Cisco element name) is left out.
    let extra = ["vendor.SIP_Transport_2_=TLS", "vendor.user_dtmf_info.2=sip_info_only", "vendor.Dial_Plan_1_=(x.)"];
    check("cisco", "CP-8841-3PCC", "00562b043615", 0, &extra, "cp-8841-3pcc-00562b043615.xml");
}

/// Named time zones: each vendor's own spelling of Europe/Berlin, DST rule included,
/// computed from the tz database.
#[test]
fn named_time_zones() {
    let berlin = ["time.zone=Europe/Berlin"];
    check("yealink", "T46S", "001565aabbcc", 1, &berlin, "t46s-001565aabbcc-berlin.cfg");
    check("cisco", "SPA504G", "00562b043615", 0, &berlin, "spa504g-00562b043615-berlin.xml");
    check("grandstream", "GRP2614", "c074ad0b63ee", 0, &berlin, "grp2614-cfgc074ad0b63ee-berlin.xml");
    check("gigaset", "N870", "7c2f80e0d605", 0, &berlin, "n870-7C2F80E0D605-berlin.xml");
    let new_york = ["time.zone=America/New_York"];
    check("cisco", "CP-6851-3PCC", "00562b043616", 0, &new_york, "cp-6851-3pcc-00562b043616-new-york.xml");
}

/// Every golden file is checked against its format's grammar: XML parses (python3's minidom),
/// and every line of a `key = value` file has that vendor's shape, so a value that breaks the
/// syntax cannot hide in a file nobody reads.
#[test]
fn golden_files_follow_their_grammar() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for vendor in std::fs::read_dir(&root).unwrap() {
        let vendor = vendor.unwrap().path();
        for file in std::fs::read_dir(&vendor).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "aes") {
                // Ciphertext: tests/yealink.rs decrypts it and checks the plain text instead.
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let vendor_id = vendor.file_name().unwrap().to_str().unwrap();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
            let bad = match (vendor_id, ext) {
                (_, "xml") => xml_error(&path),
                // Fanvil's `.cfg` files are XML in either dialect, and so are Polycom's.
                ("fanvil" | "polycom", "cfg") => xml_error(&path),
                ("yealink", "cfg") => first_bad_line(&text, yealink_line),
                ("audiocodes", "cfg") => first_bad_line(&text, audiocodes_hd_line),
                ("audiocodes", "ini") => first_bad_line(&text, ini_line),
                other => panic!("{}: no grammar for {other:?}", path.display()),
            };
            assert!(bad.is_none(), "{}: {}", path.display(), bad.unwrap_or_default());
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} golden files");
}

fn xml_error(path: &std::path::Path) -> Option<String> {
    sipprov_testkit::xml_error(&std::fs::read(path).expect("golden file"))
}

#[test]
fn polycom_vvx410() {
    let extra = ["http.username=prov-user", "http.password=prov&pw", "vendor.up.backlight.idleIntensity=1"];
    check("polycom", "VVX410", "0004f2aabbcc", 0, &extra, "vvx410-0004f2aabbcc.cfg");
    check("polycom", "VVX410", "0004f2aabbcc", 1, &extra, "vvx410-0004f2aabbcc-device.cfg");
    check("polycom", "VVX410", "0004f2aabbcc", 2, &extra, "vvx410-site.cfg");
}

/// Programmable keys: a line key, a BLF and a speed dial on each vendor that maps them
/// (with a park key and an expansion-module key where the vendor takes them); a label with XML
/// specials shows the escaping.
const KEYS: &[&str] = &[
    "key.1.type=line",
    "key.1.line=1",
    "key.2.type=line",
    "key.2.line=2",
    "key.2.label=Bob's line",
    "key.3.type=blf",
    "key.3.value=1005",
    "key.3.label=Carol <sales> & co",
    "key.4.type=speed_dial",
    "key.4.value=*97",
    "key.4.label=Voicemail",
];

#[test]
fn programmable_keys() {
    let yealink = ["key.5.type=park", "key.5.value=700", "expansion.1.key.1.type=blf", "expansion.1.key.1.value=1010"];
    let keys: Vec<&str> = KEYS.iter().chain(&yealink).copied().collect();
    check("yealink", "T46S", "001565aabbcc", 1, &keys, "t46s-001565aabbcc-keys.cfg");
    check("cisco", "CP-8841-3PCC", "00562b043615", 0, KEYS, "cp-8841-3pcc-00562b043615-keys.xml");
    check("snom", "D345", "000413a11fa7", 0, KEYS, "d345-000413A11FA7-keys.xml");
    let park = ["key.5.type=park", "key.5.value=700"];
    let keys: Vec<&str> = KEYS.iter().chain(&park).copied().collect();
    check("snom", "720", "000413a11fa8", 0, &keys, "720-000413A11FA8-keys.xml");
    // Polycom maps BLF keys only: its resource list.
    let blf =
        ["key.1.type=blf", "key.1.value=1005", "key.1.label=Carol <sales> & co", "key.2.type=blf", "key.2.value=1006"];
    check("polycom", "VVX410", "0004f2aabbcc", 1, &blf, "vvx410-0004f2aabbcc-device-keys.cfg");
}

/// Six accounts (accounts 5 and 6 are `P17xx`/`P18xx`) and the config server's credentials
/// (`P1360`/`P1361`) on a six-account phone.
#[test]
fn grandstream_gxp2170_six_accounts() {
    let mut items: Vec<String> = DEVICE.iter().map(|s| s.to_string()).collect();
    for n in 3..=6 {
        items.extend([
            format!("line.{n}.username=100{n}"),
            format!("line.{n}.password=pw-{n}"),
            format!("line.{n}.registrar=pbx.example.com"),
            format!("line.{n}.transport={}", if n % 2 == 0 { "tls" } else { "tcp" }),
        ]);
    }
    items.extend(["http.username=gs-2170".into(), "http.password=Pr0v&pw".into()]);
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    check_device("grandstream", "GXP2170", "c074ad2bd85a", 0, &items, "gxp2170-cfgc074ad2bd85a.xml");
}

/// `Profile_Rule` carries the HTTP credentials as its options.
#[test]
fn cisco_cp_8851_3pcc_credentials() {
    let extra = ["http.username=cp-8851", "http.password=Pr0v&pw"];
    check("cisco", "CP-8851-3PCC", "00562b043617", 0, &extra, "cp-8851-3pcc-00562b043617.xml");
}

/// The resource URLs a device's own settings set, and a firmware URL of its own instead of the
/// global one.
const FW: &str = "firmware.url=https://files.example.com/files/001565AABBCC/fw-66.86.0.160.rom";
const RINGTONE: &str = "ringtone.url=https://files.example.com/files/Ring-Office.wav";
const WALLPAPER: &str = "wallpaper.url=https://files.example.com/files/logo.png";
const LANGUAGE: &str = "language.url=https://files.example.com/files/004.GUI.French.lang";

/// Firmware and resource files set on a device, each vendor with the keys it maps (the others
/// are refused on its devices, which `tests/neutral.rs` checks): each device's settings are
/// first checked to be accepted, so no golden file shows settings a device could not be given.
#[test]
fn firmware_and_resource_files() {
    const LINE: &[&str] = &["line.1.username=1001", "line.1.password=s3cr:t!#", "line.1.registrar=pbx.example.com"];
    let case = |vendor: &str, model: &str, mac: &str, index: usize, extra: &[&str], name: &str| {
        let v = registry().get(vendor).unwrap();
        let m = v.model(model).unwrap();
        let items = [LINE, extra].concat();
        let own = Settings::parse_assignments(items.iter().copied()).unwrap();
        v.validate_device(m, &own).unwrap_or_else(|e| panic!("{vendor} {model}: {e}"));
        v.validate_merged(m, &settings(&items, true)).unwrap_or_else(|e| panic!("{vendor} {model}: {e}"));
        check_device(vendor, model, mac, index, &items, name);
    };
    let directory = "directory.url=https://prov.example.com/p/directory/001565AABBCC.xml";
    case("yealink", "T46S", "001565aabbcc", 1, &[FW, RINGTONE, WALLPAPER, LANGUAGE, directory], "t46s-resources.cfg");
    case("yealink", "W60B", "805e0c1d654e", 1, &[FW, directory], "w60b-resources.cfg");
    case("yealink", "T28P", "001565aabbcd", 1, &[FW], "t28p-firmware.cfg");
    let loads = "firmware.url=https://files.example.com/files/sip88xx.12-0-1MPP0001-245.loads";
    case("cisco", "CP-8841-3PCC", "00562b043615", 0, &[loads, directory], "cp-8841-3pcc-resources.xml");
    case("cisco", "SPA122", "00562b043618", 0, &[FW], "spa122-firmware.xml");
    case("snom", "D785", "000413a11fa9", 0, &[FW, WALLPAPER], "d785-resources.xml");
    let gs_fw = "firmware.url=https://files.example.com/files/gxp2170/gxp2170fw.bin";
    let gs_dir = "directory.url=https://prov.example.com/p/directory/c074ad2bd85a/phonebook.xml";
    case("grandstream", "GXP2170", "c074ad2bd85a", 0, &[gs_fw, gs_dir], "gxp2170-resources.xml");
    // Polycom: the firmware comes from the master file (global only); the device file gets the wallpaper.
    case("polycom", "VVX410", "0004f2aabbcc", 1, &[WALLPAPER], "vvx410-device-resources.cfg");
    case("fanvil", "X4U", "0c383e0a0b0c", 0, &[FW, directory], "x4u-resources.cfg");
    case("fanvil", "X4", "0c383e0a0b0d", 0, &[FW], "x4-firmware.cfg");
    case("gigaset", "N870", "7c2f80e0d605", 0, &[FW, "gigaset.firmware_version=2.65.0"], "n870-firmware.xml");
    case("audiocodes", "440HD", "00908f602aac", 0, &[FW], "440hd-firmware.cfg");
    case("audiocodes", "MP-118", "00908f1dd0d3", 0, &[FW], "mp118-firmware.ini");
}
