//! The models each vendor module accepts: desk, DECT and ATA coverage where the
//! vendor sells them and provisions them the way the module writes; Grandstream accounts 1 to 6
//! and the refusal of lines a model lacks; HTTP credential parameters per vendor; and every
//! model's every file checked against its format's grammar.

use std::collections::BTreeSet;
use std::path::Path;

use sipprov_model::{Mac, Settings};
use sipprov_vendors::{registry, validate_device, RenderContext, Renderer, Vendor};

mod grammar;

/// What kind of product a model is, from its vendor's family (and, for Fanvil, whose families
/// are dialects, its name). Panics for a family this table does not know, so a new family
/// cannot slip past the coverage test.
fn kind(vendor: &str, family: &str, name: &str) -> &'static str {
    match (vendor, family) {
        ("yealink", "desk" | "legacy") => "desk",
        ("yealink", "dect" | "dect-dm") => "dect",
        ("gigaset", "nx70") => "dect",
        ("audiocodes", "400hd") => "desk",
        ("audiocodes", "mp11x") => "ata",
        ("polycom", "vvx" | "trio" | "edge-e" | "edge-b") => "desk",
        ("snom", "desk") => "desk",
        ("grandstream", "desk" | "video" | "wifi") => "desk",
        ("grandstream", "ata") => "ata",
        ("cisco", "spa" | "mpp") => "desk",
        ("cisco", "ata") => "ata",
        ("fanvil", _) if name.starts_with('W') => "dect",
        ("fanvil", _) => "desk",
        other => panic!("no kind for {other:?}"),
    }
}

/// Per vendor, the kinds it must cover: every kind the vendor sells and provisions the way its
/// module writes. The others are left out on purpose, each module's documentation says why:
/// Yealink and Fanvil sell no ATA covered by a source, Gigaset no desk phone or ATA provisioned
/// like its Nx70 bases, AudioCodes no DECT of its own, Polycom's Rove DECT and OBi ATAs do not
/// run UC Software, Snom's M-series DECT and Grandstream's DP75x DECT use other layouts, Snom
/// sells no ATA, and Cisco's IP DECT 6800 uses another format.
const EXPECTED: &[(&str, &[&str])] = &[
    ("yealink", &["desk", "dect"]),
    ("gigaset", &["dect"]),
    ("audiocodes", &["desk", "ata"]),
    ("polycom", &["desk"]),
    ("snom", &["desk"]),
    ("grandstream", &["desk", "ata"]),
    ("cisco", &["desk", "ata"]),
    ("fanvil", &["desk", "dect"]),
];

/// Current models of each line, as the vendors name them, that must be accepted.
const CURRENT: &[(&str, &[&str])] = &[
    ("yealink", &["T31P", "T34W", "T46U", "T54W", "T58W", "T88W", "W60B", "W70B", "W80DM", "W90DM"]),
    ("gigaset", &["N610", "N670", "N770", "N870", "N870E"]),
    ("audiocodes", &["405HD", "450HD", "MP-112", "MP-124"]),
    ("polycom", &["VVX450", "VVX1500", "Trio8800", "TrioC60", "E450", "B30"]),
    ("snom", &["D120", "D385", "D735", "D785", "D865", "715"]),
    ("grandstream", &["GXP1630", "GXP2170", "GRP2612", "GRP2616", "GXV3370", "WP820", "HT802", "HT814"]),
    ("cisco", &["SPA525G2", "SPA112", "CP-6871-3PCC", "CP-8811-3PCC", "CP-8865-3PCC", "8851"]),
    ("fanvil", &["X7C", "X6U-Pro", "V67", "W611W"]),
];

#[test]
fn every_vendor_covers_its_desk_dect_and_ata_lines() {
    for (id, expected) in EXPECTED {
        let v = registry().get(id).unwrap();
        let kinds: BTreeSet<&str> = v.models().iter().map(|m| kind(id, m.family, m.name)).collect();
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        assert_eq!(kinds, expected, "{id}");
    }
    assert_eq!(EXPECTED.len(), registry().vendors().len(), "every vendor is listed");
    for (id, models) in CURRENT {
        for model in *models {
            assert!(validate_device(id, model, &Settings::new()).is_ok(), "{id} {model}");
        }
    }
}

#[test]
fn models_provisioned_another_way_are_refused_with_the_known_list() {
    for (id, model) in [("grandstream", "DP750"), ("snom", "M700"), ("gigaset", "N720"), ("cisco", "ATA191")] {
        let err = validate_device(id, model, &Settings::new()).unwrap_err().to_string();
        assert!(err.contains("unknown") && err.contains("known models"), "{id} {model}: {err}");
    }
}

/// Real User-Agents of families added here identify the model: wazo-provd-plugins
/// `plugins/wazo_grandstream/common/common.py` quotes the GRP2614's and
/// `plugins/wazo_snom/common/common.py` the snom870's and PA1's; FusionPBX `app/provision/index.php`
/// quotes the GXP2135's and a D785's with its build date. No real UA of the other new families
/// (Snom D1xx/D8xx, Cisco 68xx/88xx beyond the 8841, Gigaset N770) was found, so none is made up.
#[test]
fn new_families_are_identified_by_their_user_agents() {
    let cases = [
        ("Grandstream Model HW GRP2614 SW 1.0.5.15 DevId c074ad0b63ee", "grandstream", "GRP2614", Some("c074ad0b63ee")),
        ("Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872", "grandstream", "GXP2135", Some("000b828aa872")),
        ("Mozilla/4.0 (compatible; snom870-SIP 8.4.35 SPEAr300 SNOM 1.4)", "snom", "870", None),
        ("Mozilla/4.0 (compatible; snomPA1-SIP 8.4.35 1.1.3-s)", "snom", "PA1", None),
        (
            "Mozilla/4.0 (compatible; snomD785-SIP 10.1.169.16 2010.12-00001-gd311851f1 (Feb 25 2019 - 14:19:43) \
             00041396D9B4 SXM:0 UXM:0 UXMC:0)",
            "snom",
            "D785",
            Some("00041396d9b4"),
        ),
    ];
    for (ua, vendor, model, mac) in cases {
        let info = registry().identify_user_agent(ua).unwrap_or_else(|| panic!("{ua}"));
        assert_eq!((info.vendor, info.model.as_deref()), (vendor, Some(model)), "{ua}");
        assert_eq!(info.mac.map(|m| m.to_string()).as_deref(), mac, "{ua}");
        assert!(validate_device(vendor, model, &Settings::new()).is_ok(), "{ua}");
    }
}

fn settings(items: &[&str]) -> Settings {
    Settings::parse_assignments(items.iter().copied()).unwrap()
}

/// Renders the device's first file.
fn render(vendor: &str, model: &str, items: &[&str]) -> String {
    let v: &'static dyn Vendor = registry().get(vendor).unwrap();
    let model = v.model(model).unwrap();
    let mac: Mac = "c074ad2bd859".parse().unwrap();
    let st = settings(items);
    let file = &v.device_files(model, mac)[0];
    let ctx = RenderContext { vendor: v, model, mac: Some(mac), settings: &st, firmware: None };
    String::from_utf8(Renderer::new(None).render(&ctx, file).unwrap()).unwrap()
}

/// Line `n`'s user name, registrar, password and transport.
fn line(n: u32, transport: &str) -> Vec<String> {
    vec![
        format!("line.{n}.username=10{n:02}"),
        format!("line.{n}.registrar=pbx.example.com"),
        format!("line.{n}.password=pw{n}"),
        format!("line.{n}.display_name=User {n}"),
        format!("line.{n}.transport={transport}"),
    ]
}

#[test]
fn grandstream_accounts_five_and_six_are_written() {
    let items: Vec<String> = (1..=6).flat_map(|n| line(n, if n % 2 == 0 { "tcp" } else { "tls" })).collect();
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    assert!(validate_device("grandstream", "GXP2170", &settings(&items)).is_ok());
    let out = render("grandstream", "GXP2170", &items);
    for element in [
        "<P1701>1</P1701>",
        "<P1717>User 5</P1717>",
        "<P1702>pbx.example.com</P1702>",
        "<P1704>1005</P1704>",
        "<P1705>1005</P1705>",
        "<P1706>pw5</P1706>",
        "<P1707>User 5</P1707>",
        "<P1748>2</P1748>",
        "<P1801>1</P1801>",
        "<P1804>1006</P1804>",
        "<P1806>pw6</P1806>",
        "<P1848>1</P1848>",
        "<P548>2</P548>",
        "<P648>1</P648>",
    ] {
        assert!(out.contains(element), "{element} missing from {out}");
    }
    // Passwords of accounts 5 and 6 are secrets: redacted in every listing.
    let vendor = registry().get("grandstream").unwrap();
    assert!(vendor.is_secret_param("P1706") && vendor.is_secret_param("P1806"));
}

#[test]
fn grandstream_lines_beyond_a_models_accounts_are_refused() {
    let check =
        |model: &str, n: u32| validate_device("grandstream", model, &settings(&[&format!("line.{n}.username=1")]));
    // The model's own account count.
    assert!(check("GRP2612", 2).is_ok());
    let err = check("GRP2612", 3).unwrap_err().to_string();
    assert!(err.contains("line.3") && err.contains("GRP2612") && err.contains("has 2 SIP accounts"), "{err}");
    assert!(check("GXP1610", 2).unwrap_err().to_string().contains("has 1 SIP account"));
    assert!(check("GRP2615", 5).is_ok() && check("GRP2615", 6).is_err());
    // Models with more accounts than sipprov knows P-values for stop at 6, and say so.
    assert!(check("GXV3370", 6).is_ok());
    let err = check("GXV3370", 7).unwrap_err().to_string();
    assert!(err.contains("line.7") && err.contains("accounts 1 to 6"), "{err}");
    // ATAs: port 1 only.
    let err = check("HT802", 2).unwrap_err().to_string();
    assert!(err.contains("line.2") && err.contains("port 1"), "{err}");
    // Accounts 3 and 4 take their transport (P548, P648) now.
    let items = line(4, "tls");
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    assert!(validate_device("grandstream", "GRP2614", &settings(&items)).is_ok());
}

/// Which vendor files can hand a device its HTTP credentials, so the server may generate them.
#[test]
fn http_credential_parameters_per_vendor() {
    let params = |vendor: &str, model: &str| {
        let v = registry().get(vendor).unwrap();
        v.http_credential_parameters(v.model(model).unwrap())
    };
    for model in ["GXP1628", "GRP2616", "GXV3370", "WP820", "HT801", "HT814"] {
        assert_eq!(params("grandstream", model), ["P1360", "P1361"], "{model}");
    }
    let out = render("grandstream", "HT801", &["http.username=gs-user", "http.password=gs&pw"]);
    assert!(out.contains("<P1360>gs-user</P1360>") && out.contains("<P1361>gs&amp;pw</P1361>"), "{out}");
    // Cisco carries them in Profile_Rule, which needs provisioning.url: not generated.
    assert!(params("cisco", "CP-8841-3PCC").is_empty());
    // Snom: the phone's own HTTP client credentials, on every model.
    for model in ["D120", "D785", "D865", "320", "870"] {
        assert_eq!(params("snom", model), ["http_client_user", "http_client_pass"], "{model}");
    }
    let out = render("snom", "D785", &["http.username=sn-user", "http.password=sn&pw"]);
    assert!(out.contains(r#"<http_client_user perm="R">sn-user</http_client_user>"#), "{out}");
    assert!(out.contains(r#"<http_client_pass perm="R">sn&amp;pw</http_client_pass>"#), "{out}");
    // No source confirms a parameter for these.
    assert!(params("gigaset", "N870").is_empty());
    assert!(params("audiocodes", "440HD").is_empty());
}

#[test]
fn cisco_profile_rule_carries_the_http_credentials() {
    let base = ["provisioning.url=https://prov.example.com/c/", "http.username=cp-1", "http.password=s3&cret"];
    let out = render("cisco", "CP-8851-3PCC", &base);
    let want = "<Profile_Rule>[--uid cp-1 --pwd s3&amp;cret]https://prov.example.com/c/$MA.xml</Profile_Rule>";
    assert!(out.contains(want), "{out}");
    // Without a provisioning URL there is no rule to carry them.
    assert!(!render("cisco", "SPA112", &base[1..]).contains("Profile_Rule"));
    // A raw Profile_Rule replaces the rule, credentials and all.
    let mut raw = base.to_vec();
    raw.push("vendor.Profile_Rule=https://other.example.com/$MA.xml");
    let out = render("cisco", "SPA504G", &raw);
    assert!(out.contains("<Profile_Rule>https://other.example.com/$MA.xml</Profile_Rule>"), "{out}");
    // Spaces or brackets would break the options: refused.
    for bad in ["http.password=two words", "http.username=a]b"] {
        let err = validate_device("cisco", "SPA504G", &settings(&[base[0], bad])).unwrap_err().to_string();
        assert!(err.contains(bad.split('=').next().unwrap()) && err.contains("Profile_Rule"), "{err}");
    }
}

/// Values that could break a file's syntax, on two lines with every field.
const HOSTILE: &[&str] = &[
    "line.1.display_name=Alice \"Al\" <A&B> = x; [y]",
    "line.1.username=1001",
    "line.1.password=s3cr:t!#=;",
    "line.1.registrar=pbx.example.com",
    "line.1.port=5060",
    "line.2.display_name=Bob # not a comment",
    "line.2.username=1002",
    "line.2.auth_username=auth=1002",
    "line.2.password=p@ss ' 2",
    "line.2.registrar=pbx.example.com",
    "provisioning.url=https://prov.example.com/p/",
    "provisioning.interval_minutes=1440",
    "time.ntp_server=pool.ntp.org",
    "admin.password=Adm1n&<pw> = ;",
    "http.username=prov-user",
    "http.password=prov&pw=1",
];

/// Values every format can carry, for files that refuse [`HOSTILE`] ones.
const PLAIN: &[&str] = &["line.1.username=1001", "line.1.registrar=pbx.example.com", "line.2.username=1002"];

/// Every file of every model, rendered with [`HOSTILE`] values: XML files parse (python3's
/// minidom, one run for all of them), every other file follows its vendor's line grammar.
#[test]
fn every_models_files_follow_their_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let renderer = Renderer::new(None);
    let mac: Mac = "0c383e07e16c".parse().unwrap();
    let (mut xml_files, mut lines_checked) = (Vec::new(), 0);
    for v in registry().vendors() {
        for model in v.models() {
            let items: Vec<&str> =
                HOSTILE.iter().copied().filter(|i| model.max_lines != Some(1) || !i.starts_with("line.2")).collect();
            let st = settings(&items);
            for file in v.device_files(model, mac) {
                let ctx = RenderContext { vendor: *v, model, mac: Some(mac), settings: &st, firmware: None };
                // A file format that cannot carry a value refuses to render it (the MP-11x ini
                // tables); such a file is checked with plain values instead.
                let bytes = renderer.render(&ctx, &file).or_else(|e| {
                    assert!(e.to_string().contains("cannot carry"), "{} {}: {e}", v.id(), model.name);
                    let plain = settings(&PLAIN[..if model.max_lines == Some(1) { 2 } else { PLAIN.len() }]);
                    renderer.render(&RenderContext { settings: &plain, ..ctx }, &file)
                });
                let bytes = bytes.unwrap_or_else(|e| panic!("{} {}: {e}", v.id(), model.name));
                let ext = Path::new(&file.name).extension().and_then(|e| e.to_str()).unwrap_or_default();
                let ext = ext.to_ascii_lowercase();
                match grammar::line_grammar(v.id(), &ext) {
                    Some(ok) => {
                        let text = String::from_utf8(bytes).unwrap();
                        let bad = grammar::first_bad_line(&text, ok);
                        assert!(bad.is_none(), "{} {} {}: {}\n{text}", v.id(), model.name, file.name, bad.unwrap());
                        lines_checked += 1;
                    }
                    None => {
                        let path = dir.path().join(format!("{}-{}-{}", v.id(), model.name, file.name));
                        std::fs::write(&path, bytes).unwrap();
                        xml_files.push(path);
                    }
                }
            }
        }
    }
    assert!(lines_checked >= 50 && xml_files.len() >= 100, "{lines_checked} line files, {} XML", xml_files.len());
    let script = "import sys, xml.dom.minidom\n\
                  bad = []\n\
                  for p in sys.argv[1:]:\n    \
                      try: xml.dom.minidom.parse(p)\n    \
                      except Exception as e: bad.append(p + ': ' + str(e))\n\
                  print('\\n'.join(bad)); sys.exit(1 if bad else 0)";
    let out = std::process::Command::new("python3").arg("-c").arg(script).args(&xml_files).output().unwrap();
    assert!(out.status.success(), "not well-formed XML:\n{}", String::from_utf8_lossy(&out.stdout));
}
