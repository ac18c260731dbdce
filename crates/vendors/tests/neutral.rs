//! Nothing accepted and then dropped (issue 13): every vendor-neutral setting, set on a device
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
