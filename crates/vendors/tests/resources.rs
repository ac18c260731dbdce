//! Firmware and resource URLs set on a device: what each vendor refuses, with a message naming the
//! key and why, and where a value of another level decides (Grandstream's shared `P212`).

use sipprov_model::Settings;
use sipprov_vendors::{registry, RenderContext, Renderer};

const LINE: &[&str] = &["line.1.username=1001", "line.1.registrar=pbx.example.com"];

fn own(extra: &[&str]) -> Settings {
    Settings::parse_assignments(LINE.iter().chain(extra).copied()).unwrap()
}

/// The refusal of `extra` on a device of `vendor` `model`, which must name every one of `words`.
fn refused(vendor: &str, model: &str, extra: &[&str], words: &[&str]) {
    let v = registry().get(vendor).unwrap();
    let m = v.model(model).unwrap();
    let e = v.validate_device(m, &own(extra)).expect_err(&format!("{vendor} {model}: {extra:?} accepted")).to_string();
    for word in words {
        assert!(e.contains(word), "{vendor} {model}: {e:?} lacks {word:?}");
    }
}

fn accepted(vendor: &str, model: &str, extra: &[&str]) {
    let v = registry().get(vendor).unwrap();
    let m = v.model(model).unwrap();
    if let Err(e) = v.validate_device(m, &own(extra)) {
        panic!("{vendor} {model}: {extra:?} refused: {e}");
    }
}

#[test]
fn refusals_name_the_key_and_the_reason() {
    let wallpaper = "wallpaper.url=https://f.example/logo.png";
    accepted("yealink", "T46S", &[wallpaper]);
    refused("yealink", "T41S", &[wallpaper], &["wallpaper.url", "T41S", "wallpaper_upload.url"]);
    refused("yealink", "W60B", &["ringtone.url=https://f.example/r.wav"], &["ringtone.url", "DECT"]);
    refused("yealink", "T28P", &["directory.url=https://f.example/d.xml"], &["directory.url", "v7x"]);
    accepted("snom", "D785", &[wallpaper]);
    refused("snom", "D345", &[wallpaper], &["wallpaper.url", "D345"]);
    refused("snom", "D345", &["directory.url=https://f.example/d.xml"], &["directory.url", "tbook"]);
    refused(
        "polycom",
        "VVX410",
        &["firmware.url=https://f.example/sip.ld"],
        &["firmware.url", "APP_FILE_PATH", "globally"],
    );
    refused("polycom", "VVX410", &["directory.url=https://f.example/d.xml"], &["directory.url", "-directory.xml"]);
    refused("cisco", "SPA122", &["directory.url=https://f.example/d.xml"], &["directory.url", "ATA"]);
    refused("fanvil", "V62", &["firmware.url=https://f.example/fw.z"], &["firmware.url", "UpgradeServer1"]);
    accepted("fanvil", "V62", &["directory.url=https://f.example/d.xml"]);
    refused("fanvil", "X4", &["directory.url=https://f.example/d.xml"], &["directory.url", "xmlContact"]);
    refused("gigaset", "N870", &["directory.url=https://f.example/d.xml"], &["directory.url", "XMLDir"]);
    accepted("grandstream", "GXP2170", &["directory.url=https://f.example/pb/phonebook.xml"]);
    refused(
        "grandstream",
        "GXP2170",
        &["directory.url=https://f.example/pb/contacts.xml"],
        &["directory.url", "phonebook.xml"],
    );
    refused("grandstream", "HT802", &["directory.url=https://f.example/pb/phonebook.xml"], &["directory.url", "ATA"]);
    refused("grandstream", "GXP2170", &["firmware.url=https://f.example/fw/x?v=1"], &["firmware.url", "query"]);
}

/// Grandstream has one `P212` for the config and the firmware server: a firmware URL whose scheme
/// differs from the provisioning URL's is refused even when the two come from different levels.
#[test]
fn grandstream_refuses_a_firmware_scheme_unlike_the_provisioning_one() {
    let v = registry().get("grandstream").unwrap();
    let m = v.model("GXP2170").unwrap();
    let global = Settings::parse_assignments(["provisioning.url=https://prov.example.com/p/"]).unwrap();
    let device = own(&["firmware.url=http://f.example/fw/gxp2170fw.bin"]);
    assert!(v.validate_device(m, &device).is_ok(), "the device's own settings hold no conflict");
    let e = v.validate_merged(m, &Settings::merged([&global, &device])).unwrap_err().to_string();
    assert!(e.contains("firmware.url") && e.contains("provisioning.url") && e.contains("P212"), "{e}");
    let same = own(&["firmware.url=https://f.example/fw/gxp2170fw.bin"]);
    assert!(v.validate_merged(m, &Settings::merged([&global, &same])).is_ok());
}

/// A device's own firmware URL wins over the global one in the file the device reads last.
#[test]
fn the_device_firmware_url_wins_over_the_global_one() {
    let global = Settings::parse_assignments(["firmware.url=https://f.example/fw/global.rom"]).unwrap();
    let device = own(&["firmware.url=https://f.example/fw/device.rom"]);
    let merged = Settings::merged([&global, &device]);
    let mac = "001565aabbcc".parse().unwrap();
    for (vendor, model) in [("yealink", "T46S"), ("cisco", "CP-8841-3PCC"), ("snom", "D785"), ("fanvil", "X4U")] {
        let v = registry().get(vendor).unwrap();
        let m = v.model(model).unwrap();
        let file = v.device_files(m, mac).into_iter().find(|f| f.scope == sipprov_vendors::FileScope::Device).unwrap();
        let ctx = RenderContext { vendor: v, model: m, mac: Some(mac), settings: &merged, firmware: None };
        let text = String::from_utf8(Renderer::new(None).render(&ctx, &file).unwrap()).unwrap();
        assert!(text.contains("device.rom") && !text.contains("global.rom"), "{vendor}: {text}");
    }
}
