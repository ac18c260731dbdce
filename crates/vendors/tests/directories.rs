//! Remote phone directories: each vendor's format against a golden file, and each parsed as
//! XML (by Python's `xml.etree`, a parser that is not ours) with its elements checked, for
//! contacts whose names need escaping (`&`, `<`, quotes, non-ASCII, a control character).
//!
//! Re-bless the golden files with `SIPPROV_BLESS=1 cargo test -p sipprov-vendors --test directories`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use sipprov_vendors::directory::Contact;
use sipprov_vendors::registry;

fn contacts() -> Vec<Contact> {
    let c = |name: &str, office: Option<&str>, mobile: Option<&str>, other: Option<&str>| Contact {
        name: name.into(),
        office: office.map(Into::into),
        mobile: mobile.map(Into::into),
        other: other.map(Into::into),
    };
    vec![
        c("Smith & \"Sons\" <Sales>", Some("1001"), Some("+4915112345678"), None),
        c("Zoë O'Brien – Ünïcødé", None, Some("0049 170 555"), Some("2002")),
        c("Bell\u{7}Ringer", Some("*97"), None, None),
    ]
}

/// The directory file of `vendor`, compared with `tests/golden/<vendor>/directory.xml`.
fn golden(vendor: &str) -> String {
    let file = registry().get(vendor).unwrap().directory(&contacts()).unwrap_or_else(|| panic!("{vendor}: no format"));
    assert_eq!(file.content_type, "application/xml; charset=utf-8");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(vendor).join("directory.xml");
    if std::env::var_os("SIPPROV_BLESS").is_some() {
        std::fs::write(&path, &file.bytes).unwrap();
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with SIPPROV_BLESS=1)", path.display()));
    let got = String::from_utf8(file.bytes).unwrap();
    assert!(got.as_bytes() == want, "{} differs:\n{got}", path.display());
    got
}

/// Parses `xml` with Python's parser and returns one line per element: its path from the root,
/// its attributes and its text (`root/a/b [k=v] text`).
fn parsed(xml: &str) -> Vec<String> {
    const SCRIPT: &str = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
def walk(e, path):
    p = path + "/" + e.tag if path else e.tag
    attrs = "".join(" [%s=%s]" % kv for kv in sorted(e.attrib.items()))
    sys.stdout.write("%s%s %s\n" % (p, attrs, (e.text or "").strip()))
    for c in e:
        walk(c, p)
walk(root, "")
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not well-formed XML:\n{xml}");
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.trim_end().to_string()).collect()
}

fn has(lines: &[String], want: &str) {
    assert!(lines.iter().any(|l| l == want), "no element line {want:?} in:\n{}", lines.join("\n"));
}

/// How many elements have exactly this path.
fn count(lines: &[String], path: &str) -> usize {
    lines.iter().filter(|l| l.split(' ').next() == Some(path)).count()
}

#[test]
fn yealink_remote_phone_book() {
    let lines = parsed(&golden("yealink"));
    has(&lines, "YealinkIPPhoneDirectory");
    has(&lines, "YealinkIPPhoneDirectory/DirectoryEntry/Name Smith & \"Sons\" <Sales>");
    has(&lines, "YealinkIPPhoneDirectory/DirectoryEntry/Telephone +4915112345678");
    has(&lines, "YealinkIPPhoneDirectory/DirectoryEntry/Name Zoë O'Brien – Ünïcødé");
    has(&lines, "YealinkIPPhoneDirectory/DirectoryEntry/Name BellRinger");
    assert_eq!(count(&lines, "YealinkIPPhoneDirectory/DirectoryEntry"), 3);
    assert_eq!(count(&lines, "YealinkIPPhoneDirectory/DirectoryEntry/Telephone"), 5);
}

#[test]
fn snom_minibrowser_directory() {
    let lines = parsed(&golden("snom"));
    has(&lines, "SnomIPPhoneDirectory/Title Directory");
    has(&lines, "SnomIPPhoneDirectory/DirectoryEntry/Name Smith & \"Sons\" <Sales>");
    has(&lines, "SnomIPPhoneDirectory/DirectoryEntry/Telephone 2002");
    // One name-number pair per number.
    assert_eq!(count(&lines, "SnomIPPhoneDirectory/DirectoryEntry"), 5);
    assert_eq!(count(&lines, "SnomIPPhoneDirectory/DirectoryEntry/Telephone"), 5);
}

#[test]
fn cisco_xml_directory() {
    let lines = parsed(&golden("cisco"));
    has(&lines, "CiscoIPPhoneDirectory/Title Directory");
    has(&lines, "CiscoIPPhoneDirectory/DirectoryEntry/Name Zoë O'Brien – Ünïcødé");
    has(&lines, "CiscoIPPhoneDirectory/DirectoryEntry/Telephone *97");
    assert_eq!(count(&lines, "CiscoIPPhoneDirectory/DirectoryEntry"), 5);
}

#[test]
fn fanvil_phonebook() {
    let lines = parsed(&golden("fanvil"));
    has(&lines, "FanvilIPPhoneDirectory/DirectoryEntry/Name Smith & \"Sons\" <Sales>");
    has(&lines, "FanvilIPPhoneDirectory/DirectoryEntry/Telephone 1001");
    has(&lines, "FanvilIPPhoneDirectory/DirectoryEntry/Mobile 0049 170 555");
    has(&lines, "FanvilIPPhoneDirectory/DirectoryEntry/Other 2002");
    assert_eq!(count(&lines, "FanvilIPPhoneDirectory/DirectoryEntry"), 3);
}

#[test]
fn grandstream_address_book() {
    let lines = parsed(&golden("grandstream"));
    has(&lines, "AddressBook/version 1");
    has(&lines, "AddressBook/Contact/FirstName Smith & \"Sons\" <Sales>");
    has(&lines, "AddressBook/Contact/Phone [type=Work]");
    has(&lines, "AddressBook/Contact/Phone [type=Cell]");
    has(&lines, "AddressBook/Contact/Phone [type=Home]");
    has(&lines, "AddressBook/Contact/Phone/phonenumber +4915112345678");
    has(&lines, "AddressBook/Contact/Phone/accountindex 1");
    assert_eq!(count(&lines, "AddressBook/Contact"), 3);
    assert_eq!(count(&lines, "AddressBook/Contact/Phone"), 5);
}

#[test]
fn polycom_contact_directory() {
    let xml = golden("polycom");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"));
    let lines = parsed(&xml);
    has(&lines, "directory/item_list/item/fn Smith & \"Sons\" <Sales>");
    has(&lines, "directory/item_list/item/ct 1001");
    has(&lines, "directory/item_list/item/ln (mobile)");
    assert_eq!(count(&lines, "directory/item_list/item"), 5);
}

#[test]
fn vendors_without_a_source_have_no_format() {
    for id in ["gigaset", "audiocodes"] {
        assert!(registry().get(id).unwrap().directory(&contacts()).is_none(), "{id}");
    }
}
