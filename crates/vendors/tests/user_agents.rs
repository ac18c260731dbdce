//! Every User-Agent sample the vendors' sources quote for the provisioned vendors (Yealink: wazo
//! `plugins/wazo_yealink/common/common.py` and `v8x/common.py`, fpbx `app/provision/index.php`;
//! Gigaset: wazo `plugins/wazo_gigaset/common/common.py` and `Nx70_83_v2_65_0/common.py`;
//! AudioCodes: fpbx `app/provision/index.php`, the 400HD Series Administrator's Manual 3.4.3 p.41
//! and the gateways' "Querying Provisioning Server for Updated Files") plus the UA-only vendors.

use sipprov_vendors::{registry, UserAgentInfo};

/// (UA, vendor, model, firmware, MAC as 12 lower-case hex or "").
type Case = (&'static str, &'static str, Option<&'static str>, Option<&'static str>, &'static str);

fn check(cases: &[Case]) {
    for &(ua, vendor, model, firmware, mac) in cases {
        let got = registry().identify_user_agent(ua).unwrap_or_else(|| panic!("not identified: {ua}"));
        let want = UserAgentInfo {
            vendor,
            model: model.map(std::borrow::Cow::Borrowed),
            firmware: firmware.map(str::to_string),
            mac: (!mac.is_empty()).then(|| mac.parse().unwrap()),
        };
        assert_eq!(got, want, "{ua}");
        if let (Some(v), Some(fw)) = (registry().get(vendor), firmware) {
            // The version a phone reports is the version it runs, however the operator spaces or
            // cases it; a later version is not.
            assert!(v.firmware_matches(fw, &format!(" {} ", fw.to_ascii_uppercase())), "{ua}");
            assert!(!v.firmware_matches(fw, &format!("{fw}.9")), "{ua}");
        }
    }
}

#[test]
fn yealink_samples() {
    check(&[
        ("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc", "yealink", Some("T46S"), Some("66.86.0.15"), "001565aabbcc"),
        ("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37", "yealink", Some("T46G"), Some("28.72.0.1"), "0015654aa937"),
        (
            "Yealink SIP-T41P 36.83.0.120 00:15:65:53:83:22",
            "yealink",
            Some("T41P"),
            Some("36.83.0.120"),
            "001565538322",
        ),
        (
            "Yealink SIP-T34W 124.86.0.75 24:9a:d8:88:d0:f4",
            "yealink",
            Some("T34W"),
            Some("124.86.0.75"),
            "249ad888d0f4",
        ),
        (
            "Yealink SIP-T77U 185.87.0.10 44:db:d2:bd:b5:69",
            "yealink",
            Some("T77U"),
            Some("185.87.0.10"),
            "44dbd2bdb569",
        ),
        (
            "Yealink SIP VP-T49G 51.80.0.10 00:15:65:9b:5a:44",
            "yealink",
            Some("T49G"),
            Some("51.80.0.10"),
            "0015659b5a44",
        ),
        // Double space: split on runs of whitespace.
        (
            "Yealink SIP-T38G  38.70.0.125 00:15:65:2f:c3:5e",
            "yealink",
            Some("T38G"),
            Some("38.70.0.125"),
            "0015652fc35e",
        ),
        ("Yealink W52P 25.80.0.15 00:15:65:b8:60:05", "yealink", Some("W52P"), Some("25.80.0.15"), "001565b86005"),
        // No "Yealink" at all.
        ("W52P 25.30.0.2 00:15:65:44:b3:7c", "yealink", Some("W52P"), Some("25.30.0.2"), "00156544b37c"),
        ("Yealink W60B 77.81.0.35 80:5e:c0:09:ab:dc", "yealink", Some("W60B"), Some("77.81.0.35"), "805ec009abdc"),
        ("Yealink W70B 146.87.0.15 80:5e:0c:1d:65:4e", "yealink", Some("W70B"), Some("146.87.0.15"), "805e0c1d654e"),
        (
            "Yealink W80DM 103.83.0.122 24:9a:d8:d1:a6:31",
            "yealink",
            Some("W80DM"),
            Some("103.83.0.122"),
            "249ad8d1a631",
        ),
        ("Yealink W90DM 130.87.0.10 80:5e:c0:d9:c7:44", "yealink", Some("W90DM"), Some("130.87.0.10"), "805ec0d9c744"),
        ("yealink SIP-T18 18.0.0.80 00:15:65:27:3e:05", "yealink", Some("T18"), Some("18.0.0.80"), "001565273e05"),
        ("VP530P 23.70.0.40 00:15:65:31:4b:c0", "yealink", Some("VP530P"), Some("23.70.0.40"), "001565314bc0"),
        // No MAC: the third field is a hardware version.
        ("Yealink-T46G 28.71.0.81 28.1.0.128.0.0.0", "yealink", Some("T46G"), Some("28.71.0.81"), ""),
        // T5x: MAC without colons.
        ("Yealink SIP-T56A 58.80.0.25 001565f429a4", "yealink", Some("T56A"), Some("58.80.0.25"), "001565f429a4"),
        // From Yealink's "How to remote reboot phone through SIP message" (a NOTIFY response): no MAC.
        ("Yealink SIP-T28P 2.51.0.1", "yealink", Some("T28P"), Some("2.51.0.1"), ""),
    ]);
}

#[test]
fn gigaset_samples() {
    check(&[
        (
            "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
            "gigaset",
            Some("N870"),
            Some("83.V2.11.0+build.a546b91"),
            "7c2f80e0d605",
        ),
        (
            "\"Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605\"",
            "gigaset",
            Some("N870"),
            Some("83.V2.11.0+build.a546b91"),
            "7c2f80e0d605",
        ),
        (
            "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605;Handset=3",
            "gigaset",
            Some("N870"),
            Some("83.V2.11.0+build.a546b91"),
            "7c2f80e0d605",
        ),
        (
            "Gigaset N670 IP PRO/83.V2.11.0+build.a546b91;",
            "gigaset",
            Some("N670"),
            Some("83.V2.11.0+build.a546b91"),
            "",
        ),
        (
            "N510 IP PRO/42.245.00.000.000;7C2F804DF9A9",
            "gigaset",
            Some("N510"),
            Some("42.245.00.000.000"),
            "7c2f804df9a9",
        ),
        ("N510 IP PRO/42.258.00.000.000", "gigaset", Some("N510"), Some("42.258.00.000.000"), ""),
        (
            "Gigaset N720 DM PRO/70.089.00.000.000;7C2F80CA21E4",
            "gigaset",
            Some("N720"),
            Some("70.089.00.000.000"),
            "7c2f80ca21e4",
        ),
        ("N720-DM-PRO/70.040.00.000.000", "gigaset", Some("N720"), Some("70.040.00.000.000"), ""),
    ]);
}

#[test]
fn audiocodes_samples() {
    check(&[
        (
            "AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)",
            "audiocodes",
            Some("440HD"),
            Some("2.2.8.61"),
            "00908f602aac",
        ),
        // The 400HD Series Administrator's Manual 3.4.3 SUBSCRIBE (p.41): no model, no MAC.
        ("AUDC-IPPhone/2.2.2", "audiocodes", None, Some("2.2.2"), ""),
        (
            "Mozilla/4.0 (compatible; AudioCodes; MP-118;6.60A.356.001;00908F1DD0D3;0)",
            "audiocodes",
            Some("MP-118"),
            Some("6.60A.356.001"),
            "00908f1dd0d3",
        ),
        (
            "Mozilla/4.0 (compatible; AudioCodes; Mediant;7.00.200.001;00908F1DD0D3;)",
            "audiocodes",
            Some("Mediant"),
            Some("7.00.200.001"),
            "00908f1dd0d3",
        ),
        // The template as the manual prints it: recognised, nothing usable inside.
        ("Mozilla/4.0 (compatible; AudioCodes; <NAME>;<VER>;<MAC>;<CONF>)", "audiocodes", None, None, ""),
    ]);
}

#[test]
fn admin_configured_audiocodes_ua_is_not_guessed() {
    // `AupdHttpUserAgent = MyWorld-<NAME>;<VER>(<MAC>)` (AudioCodes, "Querying Provisioning Server for
    // Updated Files"): free-form, not ours to parse.
    assert_eq!(registry().identify_user_agent("MyWorld-Mediant;7.00.200.001(00908F1DD0D3)"), None);
}

#[test]
fn ua_only_vendor_samples() {
    check(&[
        (
            "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
            "polycom",
            Some("VVX400"),
            Some("4.1.4.7430"),
            "",
        ),
        (
            "FileTransport PolycomSoundStationIP-SSIP_6000-UA/5.0.3.1667 Type/Updater",
            "polycom",
            Some("SSIP_6000"),
            Some("5.0.3.1667"),
            "",
        ),
        (
            "FileTransport PolycomSoundPointIP-SPIP_335-UA/3.2.1.0078",
            "polycom",
            Some("SPIP_335"),
            Some("3.2.1.0078"),
            "",
        ),
        (
            "FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application",
            "polycom",
            Some("E450"),
            Some("8.0.0.15602"),
            "",
        ),
        (
            "FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:482567b5313f) Type/Application",
            "polycom",
            Some("CCX_600"),
            Some("8.0.2.3267"),
            "482567b5313f",
        ),
        (
            "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)",
            "snom",
            Some("D785"),
            Some("10.1.33.33"),
            "000413922d24",
        ),
        (
            "Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)",
            "snom",
            Some("710"),
            Some("8.7.5.35"),
            "000413741767",
        ),
        ("Mozilla/4.0 (compatible; snom320-SIP 8.4.18 1.1.3-s)", "snom", Some("320"), Some("8.4.18"), ""),
        ("Mozilla/4.0 (compatible; snom720 8.7.5.35)", "snom", Some("720"), Some("8.7.5.35"), ""),
        (
            "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859",
            "grandstream",
            Some("GXP1628"),
            Some("1.0.4.138"),
            "c074ad2bd859",
        ),
        (
            "Grandstream Model HW GXV3240 V1.6B SW 1.0.1.27 DevId 000b82632815",
            "grandstream",
            Some("GXV3240"),
            Some("1.0.1.27"),
            "000b82632815",
        ),
        (
            "Grandstream Model HW HT801 V1.1A SW 1.0.17.5 DevId c074ad273a10",
            "grandstream",
            Some("HT801"),
            Some("1.0.17.5"),
            "c074ad273a10",
        ),
        (
            "Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
            "grandstream",
            Some("GXP2000"),
            None,
            "000b822726c8",
        ),
        ("Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)", "cisco", Some("SPA508G"), Some("7.4.4"), "0002fdff2103"),
        ("Cisco/SPA525G-7.4.7 (CBT141900G7)", "cisco", Some("SPA525G"), Some("7.4.7"), ""),
        ("Linksys/SPA-942-6.1.5(a) (88019FA42805)", "cisco", Some("SPA-942"), Some("6.1.5(a)"), ""),
        ("Cisco-CP-8841-3PCC/11.0 (00562b043615)", "cisco", Some("CP-8841-3PCC"), Some("11.0"), "00562b043615"),
        ("Fanvil X4 2.10.2.6887 0c383e07e16c", "fanvil", Some("X4"), Some("2.10.2.6887"), "0c383e07e16c"),
        ("Fanvil X6U Pro 0.0.10 0c383e2cd782", "fanvil", Some("X6U-Pro"), Some("0.0.10"), "0c383e2cd782"),
        ("Fanvil H2U-V2 2.12.0 0c383e32342e", "fanvil", Some("H2U-V2"), Some("2.12.0"), "0c383e32342e"),
        ("Fanvil W620W 2.16.10 0c383e7dd216", "fanvil", Some("W620W"), Some("2.16.10"), "0c383e7dd216"),
        ("Fanvil X5U-V2 2.12.1 0c3800000000)", "fanvil", Some("X5U-V2"), Some("2.12.1"), "0c3800000000"),
        ("Fanvil V67 2.6.6.187 0c383e2b29e6", "fanvil", Some("V67"), Some("2.6.6.187"), "0c383e2b29e6"),
    ]);
}

#[test]
fn unrelated_user_agents_are_not_claimed() {
    for ua in [
        "",
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "Wget/1.21",
        "T46S",
        "Gigaset",
        "Mozilla/4.0 (compatible; MSIE 6.0)",
    ] {
        assert_eq!(registry().identify_user_agent(ua), None, "{ua:?}");
    }
}

#[test]
fn each_vendor_parser_rejects_other_vendors() {
    let yealink = registry().get("yealink").unwrap();
    let gigaset = registry().get("gigaset").unwrap();
    let audiocodes = registry().get("audiocodes").unwrap();
    assert!(yealink.parse_user_agent("Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605").is_none());
    assert!(gigaset.parse_user_agent("Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc").is_none());
    assert!(audiocodes
        .parse_user_agent("Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)")
        .is_none());
}
