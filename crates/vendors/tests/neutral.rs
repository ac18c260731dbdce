//! Nothing accepted and then dropped: every vendor-neutral setting, set on a device
//! of every model of every vendor in the registry, either changes what the device is served or
//! is refused by the vendor's `validate_device` with a message naming the key. New vendors,
//! models and neutral keys are covered without touching this file.

use sipprov_model::{LineField, Mac, Settings, KNOWN_KEYS};
use sipprov_vendors::{registry, ModelInfo, RenderContext, Renderer, Vendor};

/// Keys the server itself acts on (HTTP credentials and access rules, check-sync events, PnP,
/// the TLS name, open files): a vendor's files need not change for them. (Vendor-owned keys
/// such as `yealink.*` are not neutral and not in `KNOWN_KEYS`.) `sip.notify_reboot` also steers the NOTIFY the server sends.
const SERVER_SIDE: &[&str] = &[
    "http.username",
    "http.password",
    "http.auth",
    "http.allow_basic_plain",
    "http.allow_from",
    "pnp.url_credentials",
    "security.open_device_files",
    "sip.tls_name",
    "sip.check_sync_event",
    "sip.reboot_event",
    "sip.notify_reboot",
    "firmware.version",
];

/// Known gaps owned by other work in flight, by (vendor, key): each must say why.
const PENDING: &[(&str, &str, &str)] = &[];

/// The base every case starts from: line 1 registered somewhere.
const BASE: &[&str] = &["line.1.username=1001", "line.1.registrar=pbx.example.com"];

/// A value for `key` that differs from [`BASE`] and from every vendor default.
fn sample(key: &str) -> Vec<String> {
    match key {
        "provisioning.url" => vec!["https://prov.example.com/p/".into()],
        "provisioning.interval_minutes" => vec!["120".into()],
        "time.zone" => vec!["Europe/Berlin".into(), "+2".into(), "Asia/Tokyo".into()],
        "time.ntp_server" => vec!["ntp.example.com".into()],
        "admin.password" => vec!["Adm1n-pw".into()],
        "firmware.url" => vec!["https://prov.example.com/fw/current.rom".into()],
        other => panic!("no sample value for the neutral key {other}: add one to this test"),
    }
}

fn line_sample(n: u32, field: LineField) -> String {
    match field {
        LineField::DisplayName => format!("Desk {n}"),
        LineField::Username => format!("{}", 2000 + n),
        LineField::AuthUsername => format!("auth{n}"),
        LineField::Password => format!("pw-{n}"),
        LineField::Registrar => format!("pbx{n}.example.net"),
        LineField::Port => "5070".into(),
        LineField::Transport => "tcp".into(),
        LineField::Label => format!("Label {n}"),
    }
}

/// Every file of the device, concatenated.
fn render_all(v: &'static dyn Vendor, model: &'static ModelInfo, st: &Settings) -> String {
    let mac: Mac = "001565aabbcc".parse().unwrap();
    let renderer = Renderer::new(None);
    let mut out = String::new();
    for file in v.device_files(model, mac) {
        let ctx = RenderContext { vendor: v, model, mac: Some(mac), settings: st, firmware: None };
        let bytes = renderer.render(&ctx, &file).unwrap_or_else(|e| panic!("{} {}: {e}", v.id(), model.name));
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
    out
}

/// The assignments to try: every neutral key, and every line field on lines 1 and 2.
fn cases() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for key in KNOWN_KEYS.iter().filter(|k| !SERVER_SIDE.contains(k)) {
        for value in sample(key) {
            out.push((key.to_string(), value));
        }
    }
    for n in [1, 2] {
        for field in LineField::ALL {
            out.push((format!("line.{n}.{}", field.name()), line_sample(n, field)));
        }
    }
    out
}

#[test]
fn every_neutral_key_reaches_the_file_or_is_refused() {
    let base = Settings::parse_assignments(BASE.iter().copied()).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for &v in registry().vendors() {
        for model in v.models() {
            if v.validate_device(model, &base).is_err() {
                failures.push(format!("{} {}: the base settings are refused", v.id(), model.name));
                continue;
            }
            let before = render_all(v, model, &base);
            for (key, value) in cases() {
                if PENDING.iter().any(|(vendor, family, k)| *vendor == v.id() && *family == model.family && *k == key) {
                    continue;
                }
                checked += 1;
                let mut st = base.clone();
                st.set(&key, &value).unwrap();
                match v.validate_device(model, &st) {
                    Err(e) => {
                        // `line.2.*` refusals (a model with one line) name the line, not the field.
                        let line = key.rsplit_once('.').map(|(l, _)| l).filter(|l| l.starts_with("line."));
                        let e = e.message();
                        if !e.contains(key.as_str()) && !line.is_some_and(|l| e.contains(l)) {
                            failures.push(format!("{} {}: {key} refused without naming it: {e}", v.id(), model.name));
                        }
                    }
                    Ok(()) if render_all(v, model, &st) == before => {
                        failures.push(format!("{} {}: {key}={value} accepted and dropped", v.id(), model.name));
                    }
                    Ok(()) => {}
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} cases ran");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The test above must be able to fail: a vendor that accepts a key it does not write is caught.
#[test]
fn the_check_catches_a_dropped_key() {
    let v = registry().get("yealink").unwrap();
    let model = v.model("T46S").unwrap();
    let base = Settings::parse_assignments(BASE.iter().copied()).unwrap();
    // A free key (templates only) is accepted and, with the stock templates, written nowhere.
    let mut st = base.clone();
    st.set("site.name", "HQ").unwrap();
    assert!(v.validate_device(model, &st).is_ok());
    assert_eq!(render_all(v, model, &st), render_all(v, model, &base));
}

/// One programmable-key case: settings that must already be accepted, and the settings under
/// test, which must change the render or be refused naming `position`.
struct KeyCase {
    prereq: &'static [&'static str],
    subject: &'static [&'static str],
    position: &'static str,
}

const KEY_CASES: &[KeyCase] = &[
    KeyCase { prereq: &[], subject: &["key.1.type=line"], position: "key.1." },
    KeyCase { prereq: &["key.1.type=line"], subject: &["key.1.label=Main"], position: "key.1." },
    KeyCase { prereq: &["key.1.type=line"], subject: &["key.1.line=2", "line.2.username=1002"], position: "key.1." },
    KeyCase { prereq: &[], subject: &["key.2.type=blf", "key.2.value=1002"], position: "key.2." },
    KeyCase { prereq: &[], subject: &["key.2.type=speed_dial", "key.2.value=*97"], position: "key.2." },
    KeyCase { prereq: &[], subject: &["key.2.type=park", "key.2.value=700"], position: "key.2." },
    KeyCase { prereq: &["key.2.type=blf", "key.2.value=1002"], subject: &["key.2.label=Bob"], position: "key.2." },
    KeyCase { prereq: &["key.2.type=blf", "key.2.value=1002"], subject: &["key.2.line=2"], position: "key.2." },
    KeyCase {
        prereq: &[],
        subject: &["expansion.1.key.1.type=blf", "expansion.1.key.1.value=1003"],
        position: "expansion.1.key.1.",
    },
    KeyCase {
        prereq: &["expansion.1.key.1.type=blf", "expansion.1.key.1.value=1003"],
        subject: &["expansion.1.key.1.label=Carol"],
        position: "expansion.1.key.1.",
    },
];

fn with(base: &Settings, items: &[&str]) -> Settings {
    Settings::merged([base, &Settings::parse_assignments(items.iter().copied()).unwrap()])
}

/// Accepted as a device's own settings: the device checks and the merged checks pass.
fn accepted(v: &'static dyn Vendor, model: &'static ModelInfo, st: &Settings) -> Result<(), sipprov_vendors::Refused> {
    v.validate_device(model, st).and_then(|()| v.validate_merged(model, st))
}

/// Programmable keys: each key setting, on every model of every vendor, reaches the
/// file or is refused with a message naming the key.
#[test]
fn every_key_setting_reaches_the_file_or_is_refused() {
    let base = Settings::parse_assignments(BASE.iter().copied()).unwrap();
    let (mut failures, mut written, mut refused) = (Vec::new(), 0, 0);
    for &v in registry().vendors() {
        for model in v.models() {
            for case in KEY_CASES {
                let before = with(&base, case.prereq);
                if accepted(v, model, &before).is_err() {
                    continue; // The prerequisite is refused, which its own case checks.
                }
                let after = with(&before, case.subject);
                match accepted(v, model, &after) {
                    Err(e) if e.message().contains(case.position) => refused += 1,
                    Err(e) => failures.push(format!(
                        "{} {}: {:?} refused without naming it: {e}",
                        v.id(),
                        model.name,
                        case.subject
                    )),
                    Ok(()) if render_all(v, model, &after) == render_all(v, model, &before) => {
                        failures.push(format!("{} {}: {:?} accepted and dropped", v.id(), model.name, case.subject))
                    }
                    Ok(()) => written += 1,
                }
            }
        }
    }
    assert!(written > 50 && refused > 50, "written {written}, refused {refused}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Key numbers beyond a model's keys or expansion modules are refused, naming the vendor, the
/// model and the key; the last key of the model is accepted.
#[test]
fn keys_beyond_the_model_are_refused() {
    let base = Settings::parse_assignments(BASE.iter().copied()).unwrap();
    let check = |vendor: &str, model: &str, key: &str, ok: bool| {
        let v = registry().get(vendor).unwrap();
        let m = v.model(model).unwrap();
        let st = with(&base, &[format!("{key}=line").as_str()]);
        match accepted(v, m, &st) {
            Ok(()) => assert!(ok, "{vendor} {model}: {key} accepted"),
            Err(e) => {
                assert!(!ok, "{vendor} {model}: {key} refused: {e}");
                assert!(e.message().contains(key) && e.message().contains(m.name), "{e}");
            }
        }
    };
    check("yealink", "T46S", "key.27.type", true);
    check("yealink", "T46S", "key.28.type", false);
    check("yealink", "T46S", "expansion.6.key.40.type", true);
    check("yealink", "T46S", "expansion.6.key.41.type", false);
    check("yealink", "T46U", "expansion.4.key.1.type", false);
    check("yealink", "T41S", "expansion.1.key.1.type", false);
    check("yealink", "W60B", "key.1.type", false);
    check("cisco", "CP-6851-3PCC", "key.4.type", true);
    check("cisco", "CP-6851-3PCC", "key.5.type", false);
    check("cisco", "SPA122", "key.1.type", false);
    check("gigaset", "N870", "key.1.type", false);
}

/// A key defined by halves across levels (a value on the device, no type anywhere) is refused by
/// the merged check, whatever the vendor.
#[test]
fn keys_defined_by_halves_are_refused_when_merged() {
    let v = registry().get("yealink").unwrap();
    let m = v.model("T46S").unwrap();
    let e = v.validate_merged(m, &Settings::parse_assignments(["key.3.value=1005"]).unwrap()).unwrap_err().to_string();
    assert!(e.contains("key.3.type"), "{e}");
    let cisco = registry().get("cisco").unwrap();
    let e = cisco
        .validate_merged(
            cisco.model("CP-8841-3PCC").unwrap(),
            &Settings::parse_assignments(["key.3.type=blf"]).unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("key.3.value"), "{e}");
}
