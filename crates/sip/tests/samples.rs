//! Real phone messages (from vendor manuals and RFC 4475) and hand-made hard cases:
//! typed accessors give the right values and the messages re-serialize byte for byte.

use std::path::Path;

use sipprov_sip::auth::{choose_challenge, Algorithm};
use sipprov_sip::message::{parse, Message};
use sipprov_sip::uri::Host;
use sipprov_sip::{Request, Response};

fn load(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples").join(name);
    std::fs::read_to_string(path).unwrap().replace('\n', "\r\n").into_bytes()
}

fn request(name: &str) -> Request {
    let raw = load(name);
    let m = parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.to_bytes(), raw, "{name} re-serializes byte for byte");
    match m {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{name}: request expected"),
    }
}

fn response(name: &str) -> Response {
    let raw = load(name);
    let m = parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.to_bytes(), raw, "{name} re-serializes byte for byte");
    match m {
        Message::Response(r) => r,
        Message::Request(_) => panic!("{name}: response expected"),
    }
}

#[test]
fn gigaset_check_sync() {
    let r = request("gigaset-checksync.sip");
    let ev = r.headers.event().unwrap().unwrap();
    assert!(ev.is("check-sync"));
    assert_eq!(ev.param("reboot").as_deref(), Some("false"));
    assert_eq!(r.headers.from().unwrap().display_name.as_deref(), Some("Gigaset"));
    assert_eq!(r.headers.user_agent().as_deref(), Some("Gigaset PRO"));
    let via = r.headers.top_via().unwrap();
    assert_eq!(via.rport(), Some(None));
    assert_eq!(via.branch(), Some("z9hG4bK64a54719"));
}

#[test]
fn broadworks_notify_and_yealink_answer() {
    let r = request("broadworks-yealink-notify.sip");
    let ev = r.headers.event().unwrap().unwrap();
    assert_eq!(ev.param("reboot").as_deref(), Some("true"));
    assert_eq!(r.headers.subscription_state().unwrap().unwrap().state, "terminated");
    assert_eq!(r.headers.max_forwards().unwrap(), Some(20));
    let branch = r.headers.top_via().unwrap().branch().unwrap().to_owned();
    assert!(branch.ends_with("1280390906317-"), "folded Via joined: {branch}");

    let resp = response("yealink-200.sip");
    assert_eq!(resp.headers.top_via().unwrap().branch().unwrap(), branch);
    assert_eq!(resp.headers.to().unwrap().tag(), Some("1978752572"));
    assert_eq!(resp.headers.cseq().unwrap().unwrap().seq, 245326054);
}

/// The manual wraps two long lines (From tag, Event) for print; they are joined here, since a
/// wrap inside a token is a PDF artefact and not a SIP fold.
#[test]
fn audiocodes_pnp_subscribe() {
    let r = request("audiocodes-subscribe.sip");
    let ev = r.headers.event().unwrap().unwrap();
    assert!(ev.is("ua-profile"));
    assert_eq!(ev.param("profile-type").as_deref(), Some("application"));
    assert_eq!(ev.param("vendor"), None, "AudioCodes sends no vendor");
    assert_eq!(ev.param("model").as_deref(), Some("440HD"));
    assert_eq!(r.headers.expires().unwrap(), Some(0));
    assert_eq!(r.headers.from().unwrap().sip_uri().unwrap().user(), Some("00000001"));
    assert_eq!(r.headers.contacts().unwrap()[0].uri, "sip:00000001@10.13.2.37:5060");
}

#[test]
fn torture_subscribe() {
    let r = request("torture-subscribe.sip");
    let h = &r.headers;
    let vias = h.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!((vias[0].port, vias[0].rport()), (Some(5059), Some(None)));
    assert_eq!(vias[1].received(), Some("10.0.0.9"));
    assert_eq!(vias[2].host, Host::V6("2001:db8::1".parse().unwrap()));
    assert_eq!(vias[2].port, Some(5062));
    let from = h.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("Yealink \"T46U\" Phone"));
    assert_eq!(from.sip_uri().unwrap().user_decoded().as_deref(), Some("MAC:001565aabbcc"));
    assert!(r.to_bytes().starts_with(b"SUBSCRIBE sip:MAC%3A001565aabbcc@224.0.1.75 SIP/2.0"));
    let ev = h.event().unwrap().unwrap();
    assert_eq!(ev.param("vendor").as_deref(), Some("Yealink"));
    assert_eq!(ev.param("profile-type").as_deref(), Some("device"));
    assert_eq!(h.value("Subject").unwrap(), "a subject folded over three lines");
    assert_eq!(h.list("X-Unknown").unwrap(), ["\"quoted, with comma\"", "second"]);
    assert_eq!(h.call_id().unwrap(), "0_1234@192.168.1.20");
    assert_eq!(h.content_length().unwrap(), Some(0));
}

#[test]
fn two_challenges_in_a_401() {
    let r = response("two-challenges-401.sip");
    let ch = r.headers.www_authenticate().unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].param("realm"), Some("phones@example.com"));
    assert_eq!(ch[0].qop_options(), ["auth", "auth-int"]);
    assert_eq!(ch[1].param("nonce"), Some("5f2a1d"), "folded challenge");
    let best = choose_challenge(&ch).unwrap();
    assert_eq!(best.algorithm().unwrap(), Algorithm::Sha256);
}
