//! RFC 4475 torture messages (tests/torture/): valid ones parse and re-serialize byte for byte,
//! invalid ones are refused with the expected reason.

use std::path::{Path, PathBuf};

use sipprov_sip::message::{parse, Message};

/// Reads a torture file: LF means CRLF, `<hex>..</hex>` means raw bytes.
fn load(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).expect("read torture file").replace('\n', "\r\n");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("<hex>") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let end = rest[start..].find("</hex>").expect("closing </hex>") + start;
        let hex = &rest[start + 5..end];
        out.extend((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex byte")));
        rest = &rest[end + 6..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture").join(name)
}

fn msg(name: &str) -> (Vec<u8>, Message) {
    let raw = load(&dir("valid").join(format!("{name}.sip")));
    let parsed = parse(&raw).unwrap_or_else(|e| panic!("{name} must parse: {e}"));
    (raw, parsed)
}

#[test]
fn every_valid_message_parses_and_round_trips() {
    let mut count = 0;
    for entry in std::fs::read_dir(dir("valid")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let raw = load(&path);
        let parsed = parse(&raw).unwrap_or_else(|e| panic!("{name} must parse: {e}"));
        let written = parsed.to_bytes();
        // dblreq: the second request after Content-Length is discarded; inv2543 has no
        // Content-Length so its body is the rest of the datagram. Everything else is byte-exact.
        assert!(raw.starts_with(&written), "{name} must re-serialize byte for byte");
        if name != "dblreq" {
            assert_eq!(written, raw, "{name}");
        }
        assert_eq!(parse(&written).unwrap(), parsed, "{name}: parse(serialize(m)) == m");
        count += 1;
    }
    assert!(count >= 25, "only {count} valid messages found");
}

#[test]
fn every_invalid_message_is_refused_with_its_reason() {
    let expected = [
        ("badinv01", "bad parameter"),
        ("clerr", "Content-Length is 9999"),
        ("ncl", "Content-Length"),
        ("scalar02", "CSeq"),
        ("scalarlg", "CSeq"),
        ("quotbal", "unterminated quoted string"),
        ("ltgtruri", "Request-URI is not a URI"),
        ("lwsruri", "exactly 3 fields"),
        ("lwsstart", "exactly 3 fields"),
        ("trws", "exactly 3 fields"),
        ("escruri", "URI headers"),
        ("baddate", "GMT"),
        ("regbadct", "must be enclosed in <>"),
        ("badaspec", "not a URI"),
        ("baddn", "display name"),
        ("badvers", "SIP/7.0"),
        ("mismatch01", "does not match"),
        ("mismatch02", "does not match"),
        ("bigcode", "status code"),
        ("insuf", "missing mandatory"),
        ("mcl01", "Content-Length header appears more than once"),
        ("multi01", "appears more than once"),
    ];
    let files = std::fs::read_dir(dir("invalid")).unwrap().count();
    assert_eq!(files, expected.len(), "every invalid file has an expected reason");
    for (name, reason) in expected {
        let raw = load(&dir("invalid").join(format!("{name}.sip")));
        match parse(&raw) {
            Ok(m) => panic!("{name} must be refused, parsed as {m:?}"),
            Err(e) => assert!(e.to_string().contains(reason), "{name}: reason '{e}' lacks '{reason}'"),
        }
    }
}

#[test]
fn wsinv_values_survive_the_whitespace() {
    let (_, Message::Request(r)) = msg("wsinv") else { panic!("request expected") };
    let h = &r.headers;
    assert_eq!(h.to().unwrap().tag(), Some("1918181833n"));
    let from = h.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    let cseq = h.cseq().unwrap().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), (9, "INVITE"));
    let vias = h.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(h.value("NewFangledHeader").unwrap(), "newfangled value continued newfangled value");
    let contact = &h.contacts().unwrap()[0];
    assert_eq!(contact.display_name.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contact.params.get("q"), Some(Some("0.33")));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn intmeth_and_escapes() {
    let (_, Message::Request(r)) = msg("intmeth") else { panic!() };
    assert_eq!(r.method, "!interesting-Method0123456789_*+`.%indeed'~");
    let to = r.headers.to().unwrap();
    assert_eq!(to.display_name.as_deref(), Some("BEL:\u{7} NUL:\u{0} DEL:\u{7f}"));
    assert_eq!(r.headers.from().unwrap().params.get_unquoted("fromParam''~+*_!.-%").as_deref(), Some("работающий"));

    let (_, Message::Request(r)) = msg("esc01") else { panic!() };
    let uri: sipprov_sip::SipUri = r.uri.parse().unwrap();
    assert_eq!(uri.user(), Some("sips%3Auser%40example.com"));
    assert_eq!(uri.user_decoded().as_deref(), Some("sips:user@example.com"));
    assert_eq!(r.headers.to().unwrap().sip_uri().unwrap().user_decoded().as_deref(), Some("user"));

    let (_, Message::Request(r)) = msg("escnull") else { panic!() };
    assert_eq!(r.headers.contacts().unwrap().len(), 2);
    let (_, Message::Request(r)) = msg("esc02") else { panic!() };
    assert_eq!(r.headers.contacts().unwrap().len(), 2, "C%6Fntact is an unknown header, not Contact");
    assert_eq!(r.headers.get_all("C%6Fntact").count(), 1);
}

#[test]
fn other_valid_details() {
    let (_, Message::Request(r)) = msg("semiuri") else { panic!() };
    let uri: sipprov_sip::SipUri = r.uri.parse().unwrap();
    assert_eq!(uri.user(), Some("user;par=u%40example.net"));
    assert_eq!(uri.host().to_string(), "example.com");

    let (_, Message::Request(r)) = msg("transports") else { panic!() };
    let t: Vec<String> = r.headers.vias().unwrap().into_iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    let (_, Message::Request(r)) = msg("longreq") else { panic!() };
    assert_eq!(r.headers.vias().unwrap().len(), 34);

    let (_, Message::Request(r)) = msg("dblreq") else { panic!() };
    assert_eq!(r.method, "REGISTER");
    assert!(r.body.is_empty());

    let (_, Message::Response(r)) = msg("unreason") else { panic!() };
    assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    let (_, Message::Response(r)) = msg("noreason") else { panic!() };
    assert_eq!((r.status, r.reason.as_str()), (100, ""));

    let (_, Message::Request(r)) = msg("mpart01") else { panic!() };
    assert!(std::str::from_utf8(&r.body).is_err(), "binary body kept as bytes");
    let (_, Message::Request(r)) = msg("unkscm") else { panic!() };
    assert_eq!(r.uri, "nobodyKnowsThisScheme:totallyopaquecontent");
}
