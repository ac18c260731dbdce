//! Yealink: the legacy (v7x) dialect, the encrypted common file, the key-file rules and the model
//! list. Golden files live in `tests/golden/yealink/`; rewrite them with
//! `SIPPROV_BLESS=1 cargo test -p sipprov-vendors --test yealink` and review the diff. Every
//! Yealink golden file (these and `golden.rs`'s) is also checked against the `.cfg` line grammar.

use std::path::PathBuf;

use sipprov_model::{Mac, Settings};
use sipprov_vendors::yealink::{is_common_name, key_file_problem};
use sipprov_vendors::{registry, yealink_aes, FileScope, RenderContext, Renderer, Vendor};

const GLOBAL: &[&str] = &[
    "provisioning.url=https://prov.example.com/p/",
    "provisioning.interval_minutes=1440",
    "time.ntp_server=pool.ntp.org",
    "time.zone=UTC+01:00",
    "firmware.url=https://prov.example.com/fw/2.73.0.50.rom",
    "admin.password=Adm1n&<pw>",
];

const DEVICE: &[&str] = &[
    "line.1.display_name=Alice",
    "line.1.username=1001",
    "line.1.password=s3cr:t!#",
    "line.1.registrar=pbx.example.com",
    "line.1.port=5060",
    "line.1.transport=udp",
    "line.2.username=1002",
    "line.2.password=p@ss2",
    "line.2.registrar=pbx.example.com",
    "line.2.transport=tcp",
];

const COMMON_KEY: &str = "C0mmonKey-16char";

fn yealink() -> &'static dyn Vendor {
    registry().get("yealink").unwrap()
}

fn parse(items: &[&str]) -> Settings {
    Settings::parse_assignments(items.iter().copied()).unwrap()
}

/// Renders file `index` of a device of `model` from GLOBAL (+ `global_extra`) and `device`.
fn render(model: &str, index: usize, global_extra: &[&str], device: &[&str]) -> Vec<u8> {
    let v = yealink();
    let model = v.model(model).unwrap();
    let mac: Mac = "001565aabbcc".parse().unwrap();
    let file = &v.device_files(model, mac)[index];
    let global: Vec<&str> = GLOBAL.iter().chain(global_extra).copied().collect();
    let global = parse(&global);
    // A common file sees the global settings only, as the server renders it.
    let st = match file.scope {
        FileScope::Device => Settings::merged([&global, &parse(device)]),
        FileScope::Model => global,
    };
    let ctx = RenderContext { vendor: v, model, mac: Some(mac), settings: &st, firmware: None };
    Renderer::new(None).render(&ctx, file).unwrap()
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/yealink")
}

fn golden(case: &str, got: &[u8]) {
    let path = golden_dir().join(case);
    if std::env::var_os("SIPPROV_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with SIPPROV_BLESS=1)", path.display()));
    assert!(got == want, "{} differs:\n--- got\n{}", path.display(), String::from_utf8_lossy(got));
    assert_grammar(case, got);
}

/// A binary golden file (an encrypted output: ECB with a fixed key is deterministic).
fn golden_bytes(case: &str, got: &[u8]) {
    let path = golden_dir().join(case);
    if std::env::var_os("SIPPROV_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with SIPPROV_BLESS=1)", path.display()));
    assert!(got == want, "{} differs", path.display());
}

/// Yealink's `.cfg` grammar: the first line is exactly `#!version:1.0.0.1`, every other line is
/// empty, a `#` comment, or `key = value` with a dotted key of letters, digits and `_`.
fn assert_grammar(case: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|_| panic!("{case}: not UTF-8"));
    let mut lines = text.split('\n');
    assert_eq!(lines.next(), Some("#!version:1.0.0.1"), "{case}: header");
    assert!(text.ends_with('\n'), "{case}: last line unterminated");
    for line in lines.filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.split_once(" = ").unwrap_or_else(|| panic!("{case}: not `key = value`: {line:?}"));
        let key_ok = !key.is_empty()
            && !key.starts_with('.')
            && !key.ends_with('.')
            && !key.contains("..")
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
        assert!(key_ok, "{case}: bad key {key:?}");
        assert!(!value.contains('\r') && !value.starts_with(' '), "{case}: bad value in {line:?}");
    }
}

#[test]
fn legacy_t28p_device_file_uses_the_v7x_names() {
    let got = render("T28P", 1, &[], DEVICE);
    golden("t28p-001565aabbcc.cfg", &got);
    let text = String::from_utf8(got).unwrap();
    for name in ["account.1.sip_server_host = ", "account.1.sip_server_port = 5060", "account.2.transport = 1"] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(text.contains("\nauto_provision.server.url = ") && text.contains("\nsecurity.user_password = admin:"));
    assert!(!text.contains("static.") && !text.contains("sip_server.1."), "v8x names in a v7x file:\n{text}");
}

#[test]
fn legacy_t28p_common_file() {
    golden("t28p-y000000000000.cfg", &render("T28P", 0, &[], &[]));
}

#[test]
fn current_t46s_keeps_the_v8x_names() {
    let text = String::from_utf8(render("T46S", 1, &[], DEVICE)).unwrap();
    assert!(text.contains("account.1.sip_server.1.address = pbx.example.com"));
    assert!(text.contains("account.2.sip_server.1.transport_type = 1"));
    assert!(!text.contains("sip_server_host"));
}

#[test]
fn legacy_models_are_chosen_by_model_and_user_agent() {
    let v = yealink();
    for name in ["T20P", "T22P", "T26P", "T28P", "T32G", "T38G", "VP530P"] {
        assert_eq!(v.model(name).unwrap().family, "legacy", "{name}");
    }
    let ua = v.parse_user_agent("Yealink SIP-T28P 2.73.0.50 00:15:65:12:34:56").unwrap();
    assert_eq!(v.model(ua.model.as_deref().unwrap()).unwrap().family, "legacy");
    // The T28P's common file is y000000000000.cfg (wazo xivo-yealink 70.0).
    assert_eq!(v.model_file("y000000000000.cfg", None).unwrap().0.name, "T28P");
}

#[test]
fn legacy_devices_refuse_what_their_file_cannot_carry() {
    let v = yealink();
    let t28p = v.model("T28P").unwrap();
    let err = v.validate_device(t28p, &parse(&["provisioning.interval_minutes=60"])).unwrap_err().to_string();
    assert!(err.contains("T28P") && err.contains("provisioning.interval_minutes"), "{err}");
    assert!(v.validate_device(t28p, &parse(&["yealink.aes_key_file=1"])).is_err());
    assert!(v.validate_device(t28p, &parse(&["yealink.aes_key_file=0"])).is_ok());
    assert!(v.validate_device(v.model("T46S").unwrap(), &parse(&["provisioning.interval_minutes=60"])).is_ok());
}

#[test]
fn the_common_file_is_sealed_with_the_common_key() {
    let plain = render("T46S", 0, &[], &[]);
    assert_grammar("plain common", &plain);
    let key = format!("yealink.common_aes_key={COMMON_KEY}");
    let sealed = render("T46S", 0, &[&key], &[]);
    assert_ne!(sealed, plain);
    golden_bytes("t46s-y000000000066.cfg.common-key.aes", &sealed);
    assert_eq!(yealink_aes::decrypt(&sealed, COMMON_KEY, yealink_aes::Padding::Pkcs7).unwrap(), plain);
    // The device file is untouched by the common key and keeps its own.
    let device = render("T46S", 1, &[&key], DEVICE);
    assert!(device.starts_with(b"#!version:1.0.0.1\n"));
    let mac_key = "MacKey-16-charsx";
    let own = format!("yealink.aes_key={mac_key}");
    let device_items: Vec<&str> = DEVICE.iter().copied().chain([own.as_str()]).collect();
    let sealed_device = render("T46S", 1, &[&key], &device_items);
    assert_eq!(yealink_aes::decrypt(&sealed_device, mac_key, yealink_aes::Padding::Pkcs7).unwrap(), device);
}

#[test]
fn key_files_refuse_32_character_keys_and_shared_keys() {
    let v = yealink();
    let t46s = v.model("T46S").unwrap();
    let long = "0123456789abcdef0123456789abcdef";
    let both = parse(&[&format!("yealink.aes_key={long}"), "yealink.aes_key_file=1"]);
    let err = v.validate_device(t46s, &both).unwrap_err().to_string();
    assert!(err.contains("16-character") && !err.contains(long), "{err}");
    assert!(v.validate_device(t46s, &parse(&[&format!("yealink.aes_key={long}")])).is_ok());
    // Split over levels, the merged check and the render refuse it.
    let merged = Settings::merged([&parse(&["yealink.aes_key_file=1"]), &parse(&[&format!("yealink.aes_key={long}")])]);
    assert!(v.validate_merged(t46s, &merged).is_err());
    let mac: Mac = "001565aabbcc".parse().unwrap();
    let file = &v.device_files(t46s, mac)[1];
    let ctx = RenderContext { vendor: v, model: t46s, mac: Some(mac), settings: &merged, firmware: None };
    let err = Renderer::new(None).render(&ctx, file).unwrap_err().to_string();
    assert!(err.contains("yealink.aes_key_file") && !err.contains(long), "{err}");
    // A common key of 32 characters with key files on: the common file is refused too.
    let common = parse(&[&format!("yealink.common_aes_key={long}"), "yealink.aes_key_file=1"]);
    assert!(key_file_problem(&common, FileScope::Model).is_some());
    // The device key may not be the common key, whose key file anyone may fetch.
    let shared = parse(&[&format!("yealink.common_aes_key={COMMON_KEY}"), &format!("yealink.aes_key={COMMON_KEY}")]);
    assert!(v.validate_merged(t46s, &shared).unwrap_err().to_string().contains("differ"));
    // The common key is global only.
    assert!(v.validate_device(t46s, &parse(&[&format!("yealink.common_aes_key={COMMON_KEY}")])).is_err());
}

#[test]
fn every_model_has_a_common_file_and_the_current_lines_are_listed() {
    let v = yealink();
    for m in v.models() {
        assert!(m.common_file.is_some_and(is_common_name), "{}", m.name);
    }
    for name in [
        "T30", "T30P", "T31", "T31P", "T31G", "T33P", "T33G", "T41U", "T42U", "T43U", "T44W", "T46U", "T48U", "T53",
        "T54W", "T57W", "T58W", "W52P", "W60B", "W70B", "W75B", "W80B", "W90B",
    ] {
        assert!(v.model(name).is_some(), "{name} missing");
    }
}

#[test]
fn every_yealink_golden_file_follows_the_line_grammar() {
    let mut checked = 0;
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cfg") {
            assert_grammar(&path.display().to_string(), &std::fs::read(&path).unwrap());
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} golden files found");
}
