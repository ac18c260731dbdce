//! Property tests: generated messages survive parse → serialize → parse unchanged and byte-exact;
//! arbitrary bytes never make the parser or the stream framer panic.

use proptest::prelude::*;
use sipprov_sip::message::framing::StreamFramer;
use sipprov_sip::message::{parse, Message};
use sipprov_sip::text::quote;
use sipprov_sip::Request;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.!%*_+`'~-]{1,12}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("10.{a}.{b}.1")),
        (1u16..0xffff).prop_map(|x| format!("[2001:db8::{x:x}]")),
    ]
}

fn uri() -> impl Strategy<Value = String> {
    let user = "([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9A-F]{2}){1,12}";
    (
        user,
        host(),
        proptest::option::of(1u16..65535),
        proptest::collection::vec("[a-z0-9-]{1,8}(=[a-z0-9]{1,4})?", 0..3),
    )
        .prop_map(|(u, h, p, params)| {
            let port = p.map(|p| format!(":{p}")).unwrap_or_default();
            let params: String = params.iter().map(|t| format!(";{t}")).collect();
            format!("sip:{u}@{h}{port}{params}")
        })
}

fn display() -> impl Strategy<Value = String> {
    // Any printable text, quotes and backslashes included, written as a quoted string.
    "[ -~éü]{0,16}".prop_map(|s| quote(&s))
}

fn header() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (token(), host(), proptest::option::of(1u16..65535)).prop_map(|(b, h, p)| {
            let port = p.map(|p| format!(":{p}")).unwrap_or_default();
            ("v".to_owned(), format!("SIP/2.0/UDP {h}{port};branch=z9hG4bK{b};rport"))
        }),
        (token(), proptest::collection::vec((token(), token()), 0..3)).prop_map(|(e, ps)| {
            let ps: String = ps.iter().map(|(n, v)| format!(";{n}=\"{v}\"")).collect();
            ("Event".to_owned(), format!("{e}{ps}"))
        }),
        (display(), uri()).prop_map(|(d, u)| ("Contact".to_owned(), format!("{d} <{u}>"))),
        ("X-[A-Za-z]{1,8}", "[ -~]{0,30}").prop_map(|(n, v)| (n, v.trim().to_owned())),
        ("[A-Za-z]{1,8}", "[a-z]{1,8}").prop_map(|(n, v)| (format!("X-{n}"), format!("{v}\r\n  folded {v}"))),
    ]
}

prop_compose! {
    fn request()(
        method in token(),
        ruri in uri(),
        from_name in display(),
        from_uri in uri(),
        tag in token(),
        to_uri in uri(),
        call_id in "[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}@-]{1,30}",
        seq in 0u32..(1 << 31),
        extra in proptest::collection::vec(header(), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) -> Request {
        let mut r = Request::new(&method, &ruri);
        r.headers.push("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKtop");
        r.headers.push("f", &format!("{from_name} <{from_uri}>;tag={tag}"));
        r.headers.push("t", &format!("<{to_uri}>"));
        r.headers.push("i", &call_id);
        r.headers.push("CSeq", &format!("{seq} {method}"));
        for (n, v) in &extra {
            r.headers.push(n, v);
        }
        r.headers.push("l", &body.len().to_string());
        r.body = body.into();
        r
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parse_serialize_parse(req in request()) {
        let bytes = req.to_bytes();
        let parsed = match parse(&bytes) {
            Ok(Message::Request(r)) => r,
            other => return Err(TestCaseError::fail(format!("{other:?} for {}", String::from_utf8_lossy(&bytes)))),
        };
        prop_assert_eq!(&parsed, &req);
        prop_assert_eq!(parsed.to_bytes(), bytes);
        // The typed views agree with what was generated.
        prop_assert!(parsed.headers.from()?.tag().is_some());
        prop_assert_eq!(parsed.headers.vias()?.len(), req.headers.get_all("Via").count());
        for c in parsed.headers.contacts()? {
            c.sip_uri()?;
        }
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse(&data);
        let mut f = StreamFramer::default();
        f.extend(&data);
        while let Ok(Some(_)) = f.next_message() {}
    }

    #[test]
    fn mutated_messages_never_panic(req in request(), cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut bytes = req.to_bytes();
        for (at, b) in cuts {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(m) = parse(&bytes) {
            let h = m.headers();
            let _ = (h.vias(), h.from(), h.to(), h.contacts(), h.event(), h.www_authenticate(), h.subscription_state());
        }
    }
}
