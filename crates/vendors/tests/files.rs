//! File names, model lookup and device checks.

use sipprov_model::{Mac, Settings};
use sipprov_vendors::{registry, validate_device, DeviceError, FileScope, Vendor};

fn vendor(id: &str) -> &'static dyn Vendor {
    registry().get(id).unwrap()
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

#[test]
fn registry_lookup_ignores_case() {
    assert_eq!(registry().get("YEALINK").unwrap().id(), "yealink");
    assert_eq!(registry().get(" Gigaset ").unwrap().display_name(), "Gigaset");
    assert!(registry().get("acme").is_none());
    assert!(!registry().get("fanvil").unwrap().models().is_empty());
    assert!(!registry().get("polycom").unwrap().models().is_empty());
}

#[test]
fn polycom_device_files() {
    let v = vendor("polycom");
    let m = mac("0004f2aabbcc");
    let files = v.device_files(v.model("VVX_410").unwrap(), m);
    let got: Vec<_> = files.iter().map(|f| (f.name.as_str(), f.scope)).collect();
    assert_eq!(
        got,
        [
            ("0004f2aabbcc.cfg", FileScope::Model),
            ("0004f2aabbcc-device.cfg", FileScope::Device),
            ("site.cfg", FileScope::Model)
        ]
    );
    for name in ["0004f2aabbcc.cfg", "0004F2AABBCC-device.cfg"] {
        assert_eq!(v.mac_in_file_name(name), Some(m), "{name}");
    }
    let (model, master) = v.model_file("000000000000.cfg", Some("Trio_8800")).unwrap();
    assert_eq!((model.name, master.template), ("Trio8800", "polycom/master.xml.j2"));
    for model in ["VVX 601", "Trio C60", "Edge E450", "E550", "B30", "vvx1500"] {
        assert!(v.model(model).is_some(), "{model}");
        assert_eq!(v.http_credential_parameters(v.model(model).unwrap()), ["device.prov.user", "device.prov.password"]);
    }
}

#[test]
fn model_lookup_is_tolerant() {
    let y = vendor("yealink");
    for (input, want) in [
        ("SIP-T46S", "T46S"),
        ("t46s", "T46S"),
        ("Yealink SIP-T46S", "T46S"),
        ("VP-T49G", "T49G"),
        ("W56P", "W52P"),
        ("w60b", "W60B"),
        ("T19P E2", "T19P_E2"),
    ] {
        assert_eq!(y.model(input).map(|m| m.name), Some(want), "{input}");
    }
    let g = vendor("gigaset");
    for (input, want) in
        [("N870", "N870"), ("N870 IP PRO", "N870"), ("Gigaset N870E IP PRO", "N870E"), ("n610", "N610")]
    {
        assert_eq!(g.model(input).map(|m| m.name), Some(want), "{input}");
    }
    let a = vendor("audiocodes");
    for (input, want) in
        [("440HDG", "440HD"), ("440HDG-Rev0", "440HD"), ("405hd", "405HD"), ("MP118", "MP-118"), ("mp-124", "MP-124")]
    {
        assert_eq!(a.model(input).map(|m| m.name), Some(want), "{input}");
    }
    assert!(
        y.model("T99X").is_none() && g.model("N510").is_none() && a.model("MP-999").is_none() && y.model("").is_none()
    );
}

#[test]
fn yealink_device_files() {
    let y = vendor("yealink");
    let files = y.device_files(y.model("T46S").unwrap(), mac("00:15:65:AA:BB:CC"));
    assert_eq!(files.len(), 2);
    let (common, device) = (&files[0], &files[1]);
    assert_eq!((common.name.as_str(), common.scope), ("y000000000066.cfg", FileScope::Model));
    assert_eq!((device.name.as_str(), device.scope), ("001565aabbcc.cfg", FileScope::Device));
    // The common file answers to any common-file number (the UA decides the model).
    assert!(common.matches("y000000000066.cfg") && common.matches("Y000000000067.CFG"));
    assert!(
        !common.matches("y00000000066.cfg")
            && !common.matches("y0000000000066.cfg")
            && !common.matches("y000000000abc.cfg")
    );
    assert!(device.matches("001565AABBCC.cfg") && !device.matches("001565aabbcc.boot"));
    assert_eq!(common.template, "yealink/common.cfg.j2");
    assert_eq!(device.content_type, "text/plain");
}

#[test]
fn yealink_model_file_prefers_the_user_agent() {
    let y = vendor("yealink");
    let (m, f) = y.model_file("y000000000066.cfg", None).unwrap();
    assert_eq!((m.name, f.name.as_str(), f.scope), ("T46S", "y000000000066.cfg", FileScope::Model));
    assert_eq!(y.model_file("y000000000025.cfg", None).unwrap().0.name, "W52P");
    // T31G firmware 124.x asks for …124, which the table gives to the T33G: the UA wins.
    assert_eq!(y.model_file("y000000000124.cfg", Some("T31G")).unwrap().0.name, "T31G");
    assert_eq!(y.model_file("Y000000000124.CFG", None).unwrap().1.name, "y000000000124.cfg");
    assert_eq!(y.model_file("y000000000999.cfg", Some("SIP-T46S")).unwrap().0.name, "T46S");
    assert!(y.model_file("y000000000999.cfg", None).is_none());
    assert!(y.model_file("y000000000999.cfg", Some("T99")).is_none());
    assert!(y.model_file("001565aabbcc.cfg", None).is_none());
    assert!(y.model_file("y000000000000.boot", None).is_none());
    assert!(vendor("gigaset").model_file("provisioning.xml", None).is_none());
}

#[test]
fn macs_in_file_names() {
    let y = vendor("yealink");
    assert_eq!(y.mac_in_file_name("001565aabbcc.cfg"), Some(mac("001565aabbcc")));
    assert_eq!(y.mac_in_file_name("001565AABBCC.CFG"), Some(mac("001565aabbcc")));
    for name in [
        "y000000000066.cfg",
        "000000000000.cfg",
        "ffffffffffff.cfg",
        "001565aabbcc.boot",
        "001565aabbcc-local.cfg",
        "001565aabbc.cfg",
        "001565aabbcc.xml",
    ] {
        assert_eq!(y.mac_in_file_name(name), None, "{name}");
    }
    let g = vendor("gigaset");
    assert_eq!(g.mac_in_file_name("7C2F80E0D605.xml"), Some(mac("7c2f80e0d605")));
    assert_eq!(g.mac_in_file_name("7c2f80e0d605.XML"), Some(mac("7c2f80e0d605")));
    assert_eq!(g.mac_in_file_name("provisioning.xml"), None);
    assert_eq!(g.mac_in_file_name("000000000000.xml"), None);
    let a = vendor("audiocodes");
    assert_eq!(a.mac_in_file_name("00908F602AAC.cfg"), Some(mac("00908f602aac")));
    assert_eq!(a.mac_in_file_name("00908f1dd0d3.ini"), Some(mac("00908f1dd0d3")));
    assert_eq!(a.mac_in_file_name("440HD.img"), None);
    assert_eq!(a.mac_in_file_name("000000000000.ini"), None);
    let s = vendor("snom");
    for name in ["000413A11FA7.xml", "000413a11fa7.XML", "snomD345-000413A11FA7.htm", "SNOMd345-000413a11fa7.HTM"] {
        assert_eq!(s.mac_in_file_name(name), Some(mac("000413a11fa7")), "{name}");
    }
    assert_eq!(s.mac_in_file_name("snom710-000413741767.htm"), Some(mac("000413741767")));
    for name in [
        "snomD345.htm",
        "snom-000413A11FA7.htm",
        "snom-000413A11FA7.xml",
        "snomD345-000000000000.htm",
        "snomD345-000413A11FA7.xml",
        "snomD345-000413A11FA.htm",
        "snomD345-000413A11FA7-x.htm",
        "polycom-000413A11FA7.htm",
        "000413A11FA7.htm",
        "001565aabbcc.cfg",
        "y000000000066.cfg",
        "00908F602AAC.ini",
        "provisioning.xml",
    ] {
        assert_eq!(s.mac_in_file_name(name), None, "{name}");
    }
    // Other vendors do not take Snom's .htm names.
    for v in [&y, &g, &a] {
        assert_eq!(v.mac_in_file_name("snomD345-000413A11FA7.htm"), None, "{}", v.id());
    }
    let gs = vendor("grandstream");
    for name in ["cfgc074ad2bd859.xml", "CFGC074AD2BD859.XML", "cfgC074ad2bd859.xml"] {
        assert_eq!(gs.mac_in_file_name(name), Some(mac("c074ad2bd859")), "{name}");
    }
    for name in [
        "cfgc074ad2bd859",
        "cfgc074ad2bd859.bin",
        "cfggrp2614.xml",
        "cfggxp1628.xml",
        "cfg.xml",
        "cfg000000000000.xml",
        "cfgffffffffffff.xml",
        "cfgc074ad2bd85.xml",
        "cfgc074ad2bd859x.xml",
        "c074ad2bd859.xml",
        "xcfgc074ad2bd859.xml",
        "000413A11FA7.xml",
        "snomD345-000413A11FA7.htm",
        "001565aabbcc.cfg",
        "y000000000066.cfg",
        "00908F602AAC.ini",
        "provisioning.xml",
    ] {
        assert_eq!(gs.mac_in_file_name(name), None, "{name}");
    }
    // Other vendors do not take Grandstream's names.
    for v in [&y, &g, &a, &s] {
        assert_eq!(v.mac_in_file_name("cfgc074ad2bd859.xml"), None, "{}", v.id());
    }
    // Cisco's `$MA.xml`: the shape Gigaset and Snom also serve; the server looks the MAC up.
    let c = vendor("cisco");
    for name in ["00562b043615.xml", "00562B043615.XML", "00562b043615.Xml"] {
        assert_eq!(c.mac_in_file_name(name), Some(mac("00562b043615")), "{name}");
    }
    for name in [
        "spa504G.cfg",
        "CP-8841-3PCC.xml",
        "000000000000.xml",
        "ffffffffffff.xml",
        "00562b04361.xml",
        "00562b043615.cfg",
        "cfg00562b043615.xml",
        "snomD345-000413A11FA7.htm",
        "ATA00562B043615.cnf.xml",
        "provisioning.xml",
    ] {
        assert_eq!(c.mac_in_file_name(name), None, "{name}");
    }
}

#[test]
fn grandstream_device_files() {
    let gs = vendor("grandstream");
    for (input, want) in [("GXP1628", "GXP1628"), ("gxp-1628", "GXP1628"), ("HT801", "HT801"), ("grp2614", "GRP2614")] {
        assert_eq!(gs.model(input).map(|m| m.name), Some(want), "{input}");
    }
    // Accounts 1 to 6 are mapped: each model's count, capped at 6; the ATAs keep one line.
    let lines = |name: &str| gs.model(name).unwrap().max_lines;
    assert_eq!(
        [lines("GXP1628"), lines("GRP2614"), lines("GXV3240"), lines("GXV3370")],
        [Some(2), Some(4), Some(6), Some(6)]
    );
    assert_eq!([lines("WP820"), lines("HT801"), lines("HT802"), lines("HT814")], [Some(2), Some(1), Some(1), Some(1)]);
    assert!(gs.model("DP750").is_none());
    let files = gs.device_files(gs.model("GXP1628").unwrap(), mac("C0:74:AD:2B:D8:59"));
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(
        (f.name.as_str(), f.scope, f.content_type),
        ("cfgc074ad2bd859.xml", FileScope::Device, "application/xml")
    );
    assert_eq!(f.template, "grandstream/cfg.xml.j2");
    assert!(f.aliases.is_empty());
    assert!(f.matches("cfgc074ad2bd859.xml") && f.matches("CFGC074AD2BD859.XML"));
    // The binary, the model files and another MAC's file are not this phone's file.
    for name in ["cfgc074ad2bd859", "cfgc074ad2bd859.bin", "cfggxp1628.xml", "cfg.xml", "cfgc074ad2bd858.xml"] {
        assert!(!f.matches(name), "{name}");
    }
    assert!(gs.model_file("cfggxp1628.xml", Some("GXP1628")).is_none());
    assert!(gs.model_file("cfg.xml", None).is_none());
}

#[test]
fn cisco_device_files() {
    let c = vendor("cisco");
    for (input, want) in [
        ("SPA504G", "SPA504G"),
        ("spa-504g", "SPA504G"),
        ("SPA122", "SPA122"),
        ("CP-8841-3PCC", "CP-8841-3PCC"),
        ("8841", "CP-8841-3PCC"),
        ("6851", "CP-6851-3PCC"),
    ] {
        assert_eq!(c.model(input).map(|m| m.name), Some(want), "{input}");
    }
    assert!(c.models().iter().all(|m| m.max_lines.is_none()));
    assert!(c.model("SPA942").is_none() && c.model("CP-7841-3PCC").is_none());
    let files = c.device_files(c.model("CP-8841-3PCC").unwrap(), mac("00:56:2B:04:36:15"));
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!((f.name.as_str(), f.scope, f.content_type), ("00562b043615.xml", FileScope::Device, "application/xml"));
    assert_eq!(f.template, "cisco/flat-profile.xml.j2");
    assert!(f.aliases.is_empty());
    assert!(f.matches("00562b043615.xml") && f.matches("00562B043615.XML"));
    for name in ["00562b043616.xml", "spa504G.cfg", "CP-8841-3PCC.xml", "00562b043615.cfg"] {
        assert!(!f.matches(name), "{name}");
    }
    assert!(c.model_file("spa504G.cfg", Some("SPA504G")).is_none());
}

#[test]
fn snom_device_files() {
    let s = vendor("snom");
    for (input, want) in
        [("D345", "D345"), ("snomD345", "D345"), ("snom-D785", "D785"), ("710", "710"), ("snom320", "320")]
    {
        assert_eq!(s.model(input).map(|m| m.name), Some(want), "{input}");
    }
    assert!(s.model("D999").is_none() && s.model("snom").is_none());
    let files = s.device_files(s.model("D345").unwrap(), mac("00:04:13:a1:1f:a7"));
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!((f.name.as_str(), f.scope, f.content_type), ("000413A11FA7.xml", FileScope::Device, "application/xml"));
    assert_eq!(f.aliases, ["snomD345-000413A11FA7.htm"]);
    assert_eq!(f.template, "snom/settings.xml.j2");
    for name in ["000413A11FA7.xml", "000413a11fa7.xml", "snomD345-000413A11FA7.htm", "SNOMD345-000413a11fa7.htm"] {
        assert!(f.matches(name), "{name}");
    }
    // Another model's or another MAC's name is not this phone's file; nor is the model-wide one.
    for name in ["snomD785-000413A11FA7.htm", "snomD345-000413A11FA8.htm", "snomD345.htm", "000413A11FA7.cfg"] {
        assert!(!f.matches(name), "{name}");
    }
    assert!(s.model_file("snomD345.htm", Some("D345")).is_none());
}

#[test]
fn gigaset_and_audiocodes_device_files() {
    let g = vendor("gigaset");
    let f = &g.device_files(g.model("N870").unwrap(), mac("7c2f80e0d605"))[0];
    assert_eq!((f.name.as_str(), f.content_type), ("7C2F80E0D605.xml", "application/xml"));
    assert_eq!(f.aliases, ["provisioning.xml"]);
    assert!(f.matches("PROVISIONING.XML") && f.matches("7c2f80e0d605.xml"));

    let a = vendor("audiocodes");
    let hd = &a.device_files(a.model("440HD").unwrap(), mac("00908f602aac"))[0];
    assert_eq!((hd.name.as_str(), hd.template), ("00908F602AAC.cfg", "audiocodes/400hd.cfg.j2"));
    let gw = &a.device_files(a.model("MP-118").unwrap(), mac("00908f1dd0d3"))[0];
    assert_eq!((gw.name.as_str(), gw.template), ("00908F1DD0D3.ini", "audiocodes/mp11x.ini.j2"));
    assert!(gw.matches("00908f1dd0d3.INI"));
}

#[test]
fn every_model_has_files_with_known_templates() {
    let templates: Vec<&str> = sipprov_vendors::Renderer::default_templates().map(|(n, _)| n).collect();
    for v in registry().vendors() {
        for m in v.models() {
            let files = v.device_files(m, mac("001565aabbcc"));
            assert!(files.iter().any(|f| f.scope == FileScope::Device), "{} {}", v.id(), m.name);
            for f in files {
                assert!(templates.contains(&f.template), "{} {}: {}", v.id(), m.name, f.template);
            }
            assert_eq!(v.model(m.name).map(|x| x.name), Some(m.name));
        }
    }
}

#[test]
fn device_validation() {
    let none = Settings::new();
    let err = validate_device("gigaset", "N510", &none).unwrap_err().to_string();
    assert!(err.contains("N870") && err.contains("N610"), "{err}");
    assert!(validate_device("acme", "X", &none).unwrap_err().to_string().contains("yealink"));
    assert!(matches!(validate_device("acme", "X", &none), Err(DeviceError::UnknownVendor { .. })));
    assert!(matches!(validate_device("yealink", "X", &none), Err(DeviceError::UnknownModel { vendor: "yealink", .. })));
    assert!(validate_device("fanvil", "X6U", &none).is_ok());
    assert!(validate_device("polycom", "VVX_400", &none).is_ok());
    let polycom_bad = Settings::parse_assignments(["vendor.a<b=1"]).unwrap();
    assert!(validate_device("polycom", "VVX400", &polycom_bad)
        .unwrap_err()
        .to_string()
        .contains("Polycom parameter name"));
    assert!(validate_device("snom", "D785", &none).is_ok());
    let snom_raw =
        Settings::parse_assignments(["vendor.user_dtmf_info.1=sip_info_only", "vendor.web_language=English"]);
    assert!(validate_device("snom", "snomD345", &snom_raw.unwrap()).is_ok());
    let bad_name = Settings::parse_assignments(["vendor.a<b=1"]).unwrap();
    assert!(validate_device("snom", "D345", &bad_name).unwrap_err().to_string().contains("vendor.a<b"));
    assert!(validate_device("grandstream", "GXP1628", &none).is_ok());
    let gs_raw = Settings::parse_assignments(["vendor.P238=0", "provisioning.interval_minutes=1440"]).unwrap();
    assert!(validate_device("grandstream", "HT801", &gs_raw).is_ok());
    let not_p = Settings::parse_assignments(["vendor.language=English"]).unwrap();
    assert!(validate_device("grandstream", "GXP1628", &not_p).unwrap_err().to_string().contains("vendor.language"));
    assert!(validate_device("cisco", "CP-8841-3PCC", &none).is_ok());
    let cisco_raw = Settings::parse_assignments(["vendor.SIP_Transport_1_=TLS", "vendor.Upgrade_Enable=No"]).unwrap();
    assert!(validate_device("cisco", "SPA504G", &cisco_raw).is_ok());
    for raw in ["vendor.user_dtmf_info.1=x", "vendor.voip/line=1", "vendor.a<b=1", "vendor.Dial-Plan=x"] {
        let bad = Settings::parse_assignments([raw]).unwrap();
        let key = raw.split_once('=').unwrap().0;
        assert!(validate_device("cisco", "SPA122", &bad).unwrap_err().to_string().contains(key), "{raw}");
    }

    let nine_ports = Settings::parse_assignments(["line.9.username=1009"]).unwrap();
    assert!(validate_device("audiocodes", "MP-118", &nine_ports).unwrap_err().to_string().contains("8 lines"));
    assert!(validate_device("audiocodes", "MP-124", &nine_ports).is_ok());

    let comma = Settings::parse_assignments(["line.1.username=1001", "line.1.password=a,b"]).unwrap();
    assert!(validate_device("audiocodes", "MP-114", &comma).unwrap_err().to_string().contains("line.1.password"));
    assert!(validate_device("audiocodes", "440HD", &comma).is_ok());

    let two_pbx = Settings::parse_assignments(["line.1.registrar=a.example", "line.2.registrar=b.example"]).unwrap();
    assert!(validate_device("gigaset", "N870", &two_pbx).unwrap_err().to_string().contains("line.2"));
    let same_pbx = Settings::parse_assignments(["line.1.registrar=a.example", "line.2.registrar=a.example"]).unwrap();
    assert!(validate_device("gigaset", "N870", &same_pbx).is_ok());
}

#[test]
fn own_file_is_the_device_scoped_one_of_the_list_for_every_model() {
    let m = mac("001565aabbcc");
    for v in registry().vendors() {
        for model in v.models() {
            let listed = v.device_files(model, m).into_iter().find(|f| f.scope == FileScope::Device);
            assert_eq!(v.own_file(model, m), listed, "{} {}", v.id(), model.name);
        }
    }
}
