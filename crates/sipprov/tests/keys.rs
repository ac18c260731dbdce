//! End to end: programmable keys set through the CLI (which talks to the admin API)
//! reach the files phones fetch over HTTP, or are refused with a message naming the key, the
//! vendor and the model; a key defined by halves across levels is refused whichever level is
//! changed last.

mod common;

use common::TestServer;
use sipprov_testkit::assert_well_formed_xml;

const YEALINK_UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const SNOM_UA: &str =
    "Mozilla/4.0 (compatible; snomD345-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413A11FA7 SXM:0 UXM:0)";
const CISCO_MPP_UA: &str = "Cisco-CP-8841-3PCC/11.0 (00562b043615)";

fn add(s: &TestServer, mac: &str, vendor: &str, model: &str, group: &str) {
    s.ok(&[
        "device",
        "add",
        mac,
        "--vendor",
        vendor,
        "--model",
        model,
        "--group",
        group,
        "--set",
        "line.1.username=1001",
        "--set",
        "line.1.registrar=pbx.example.com",
    ]);
}

const KEYS: &[&str] = &[
    "key.1.type=line",
    "key.2.type=blf",
    "key.2.value=1002",
    "key.2.label=Bob & Co",
    "key.3.type=speed_dial",
    "key.3.value=*97",
];

#[test]
fn keys_set_by_the_cli_reach_each_vendors_file() {
    let s = TestServer::start();
    add(&s, "001565aabbcc", "yealink", "T46S", "desk");
    add(&s, "000413a11fa7", "snom", "D345", "desk");
    add(&s, "00562b043615", "cisco", "CP-8841-3PCC", "desk");
    for mac in ["001565aabbcc", "000413a11fa7", "00562b043615"] {
        let mut args = vec!["device", "set", mac];
        args.extend(KEYS);
        s.ok(&args);
    }

    let yealink = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]);
    assert_eq!(yealink.status, 200, "{}", s.log());
    let text = yealink.text();
    for want in [
        "linekey.1.type = 15\n",
        "linekey.2.type = 16\n",
        "linekey.2.value = 1002\n",
        "linekey.2.label = Bob & Co\n",
        "linekey.3.type = 13\n",
        "linekey.3.value = *97\n",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }

    let snom = s.fetch("/000413A11FA7.xml", SNOM_UA, &[]);
    assert_eq!(snom.status, 200, "{}", s.log());
    assert_well_formed_xml(&snom.body);
    let text = snom.text();
    for want in [
        r#"<fkey idx="0" perm="R">line</fkey>"#,
        r#"<fkey idx="1" perm="R">blf 1002</fkey>"#,
        r#"<fkey_label idx="1" perm="R">Bob &amp; Co</fkey_label>"#,
        r#"<fkey idx="2" perm="R">speed *97</fkey>"#,
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }

    let cisco = s.fetch("/00562b043615.xml", CISCO_MPP_UA, &[]);
    assert_eq!(cisco.status, 200, "{}", s.log());
    assert_well_formed_xml(&cisco.body);
    let text = cisco.text();
    for want in [
        "<Extension_1_>1</Extension_1_>",
        "<Extension_2_>Disabled</Extension_2_>",
        "<Extended_Function_2_>fnc=sd+blf+cp;sub=1002@$PROXY;nme=Bob &amp; Co</Extended_Function_2_>",
        "<Extended_Function_3_>fnc=sd;ext=*97@$PROXY;nme=*97</Extended_Function_3_>",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }

    // Removing a key takes it out of the file.
    s.ok(&["device", "set", "001565aabbcc", "key.3.type=", "key.3.value="]);
    let text = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).text();
    assert!(text.contains("linekey.2.type = 16") && !text.contains("linekey.3."), "{text}");
}

#[test]
fn keys_a_device_cannot_take_are_refused_when_set() {
    let s = TestServer::start();
    add(&s, "7c2f80e0d605", "gigaset", "N870", "dect");
    add(&s, "001565aabbcc", "yealink", "T46S", "desk");
    add(&s, "00562b043615", "cisco", "CP-8841-3PCC", "desk");

    let e = s.fails(&["device", "set", "7c2f80e0d605", "key.1.type=line"]);
    assert!(e.contains("key.1.type") && e.contains("Gigaset N870"), "{e}");
    let e = s.fails(&["device", "set", "001565aabbcc", "key.28.type=line"]);
    assert!(e.contains("key.28.type") && e.contains("27 programmable keys"), "{e}");
    let e = s.fails(&["device", "set", "00562b043615", "key.2.type=park", "key.2.value=700"]);
    assert!(e.contains("key.2.type") && e.contains("Cisco"), "{e}");
    let e = s.fails(&["device", "set", "001565aabbcc", "key.1.type=intercom"]);
    assert!(e.contains("key.1.type") && e.contains("speed_dial"), "{e}");
    // Nothing refused was written.
    let text = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).text();
    assert!(!text.contains("linekey."), "{text}");

    // By halves across levels: a BLF type on the group with no value anywhere is refused, as is
    // a value on a device with no type anywhere; a group default with a device's own value works.
    let e = s.fails(&["group", "set", "desk", "key.4.type=blf"]);
    assert!(e.contains("key.4.value"), "{e}");
    let e = s.fails(&["device", "set", "001565aabbcc", "key.5.value=1005"]);
    assert!(e.contains("key.5.type"), "{e}");
    s.ok(&["group", "set", "desk", "key.4.type=blf", "key.4.value=1000"]);
    s.ok(&["device", "set", "001565aabbcc", "key.4.value=1004"]);
    let text = s.fetch("/001565aabbcc.cfg", YEALINK_UA, &[]).text();
    assert!(text.contains("linekey.4.type = 16\nlinekey.4.value = 1004\n"), "{text}");
    let text = s.fetch("/00562b043615.xml", CISCO_MPP_UA, &[]).text();
    assert!(text.contains("sub=1000@$PROXY"), "the group's value: {text}");
    // A group key reaches the Gigaset base's file nowhere and is not refused for it: inherited
    // keys a model cannot take are left out, as raw settings meant for another vendor are.
    s.ok(&["group", "set", "dect", "key.1.type=line"]);
}
