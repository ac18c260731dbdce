//! End-to-end tests against real SIPp UAS scenarios (tests/sipp/*.xml), over UDP and TCP.

mod common;

use std::time::Duration;

use common::{check_sync, endpoint, fast_timers, scenario, SippTarget};
use sipprov_sip::{Credentials, Timers, TransactionError, Transport, TxEventKind};
use sipprov_testkit::Sipp;

async fn final_status(name: &str, transport: Transport, creds: Option<&Credentials>) -> (u16, Sipp) {
    let mut sipp = Sipp::start(scenario(name), transport.as_str());
    let (ep, _) = endpoint(Timers::default()).await;
    let req = check_sync(&ep, &sipp.target());
    let resp = ep.send_request(req, sipp.target(), creds).await.expect("final response");
    let code = sipp.wait_async(Duration::from_secs(10)).await;
    assert_eq!(code, 0, "SIPp scenario {name} failed: {}", sipp.errors());
    (resp.status, sipp)
}

#[tokio::test]
async fn notify_answered_200_udp() {
    assert_eq!(final_status("uas_200.xml", Transport::Udp, None).await.0, 200);
}

#[tokio::test]
async fn notify_answered_200_tcp() {
    assert_eq!(final_status("uas_200.xml", Transport::Tcp, None).await.0, 200);
}

#[tokio::test]
async fn notify_481_reported_udp() {
    assert_eq!(final_status("uas_481.xml", Transport::Udp, None).await.0, 481);
}

#[tokio::test]
async fn notify_481_reported_tcp() {
    assert_eq!(final_status("uas_481.xml", Transport::Tcp, None).await.0, 481);
}

#[tokio::test]
async fn notify_489_reported_udp() {
    assert_eq!(final_status("uas_489.xml", Transport::Udp, None).await.0, 489);
}

#[tokio::test]
async fn notify_489_reported_tcp() {
    assert_eq!(final_status("uas_489.xml", Transport::Tcp, None).await.0, 489);
}

fn line_credentials(password: &str) -> Credentials {
    Credentials { username: "100".into(), password: password.into() }
}

/// SIPp verifies our digest with its own `verifyauth` and answers 403 when it is wrong.
#[tokio::test]
async fn digest_challenge_answered_udp() {
    assert_eq!(final_status("uas_auth.xml", Transport::Udp, Some(&line_credentials("secret"))).await.0, 200);
}

#[tokio::test]
async fn digest_challenge_answered_tcp() {
    assert_eq!(final_status("uas_auth.xml", Transport::Tcp, Some(&line_credentials("secret"))).await.0, 200);
}

/// The negative control: a wrong password must make SIPp's verifyauth fail.
#[tokio::test]
async fn wrong_password_is_refused_by_sipp() {
    assert_eq!(final_status("uas_auth.xml", Transport::Udp, Some(&line_credentials("wrong"))).await.0, 403);
}

/// Without credentials the 401 is the final answer.
#[tokio::test]
async fn challenge_without_credentials_is_reported() {
    let sipp = Sipp::start(scenario("uas_auth.xml"), "udp");
    let (ep, _) = endpoint(Timers::default()).await;
    let resp = ep.send_request(check_sync(&ep, &sipp.target()), sipp.target(), None).await.unwrap();
    assert_eq!(resp.status, 401);
    assert_eq!(resp.headers.www_authenticate().unwrap()[0].param("realm"), Some("sipp.test"));
}

/// Timer slack allowed on a loaded 2-core CI machine; still far below the 100 ms steps checked.
const TOLERANCE_MS: i64 = 150;

/// Offsets (ms) of every transmission of the first client transaction, relative to the first.
fn send_offsets(events: &[sipprov_sip::TxEvent]) -> Vec<i64> {
    let sends: Vec<_> = events.iter().filter(|e| matches!(e.kind, TxEventKind::RequestSent { .. })).collect();
    let first = sends[0].at;
    sends.iter().map(|e| e.at.duration_since(first).as_millis() as i64).collect()
}

#[tokio::test]
async fn silent_phone_udp_retransmits_on_timer_e_and_gives_up_on_timer_f() {
    let sipp = Sipp::start(scenario("uas_silent.xml"), "udp");
    let timers = fast_timers();
    let (ep, rec) = endpoint(timers).await;
    let started = std::time::Instant::now();
    let err = ep.send_request(check_sync(&ep, &sipp.target()), sipp.target(), None).await.unwrap_err();
    let waited = started.elapsed();

    // T1=100 ms doubling, capped at T2=400 ms, until Timer F = 64*T1 = 6.4 s.
    let expected: Vec<i64> = timers.udp_schedule().iter().map(|d| d.as_millis() as i64).collect();
    assert_eq!(expected[..6], [0, 100, 300, 700, 1100, 1500]);
    assert_eq!(*expected.last().unwrap(), 6300);
    let got = send_offsets(&rec.events());
    assert_eq!(got.len(), expected.len(), "sends at {got:?}, expected {expected:?}");
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= TOLERANCE_MS, "send at {g} ms, expected {e} ms (all: {got:?})");
    }
    let text = err.to_string();
    assert_eq!(text, format!("no final response after 6.4s ({} retransmissions)", expected.len() - 1));
    match err {
        TransactionError::Timeout { retransmissions, after } => {
            assert_eq!(retransmissions as usize, expected.len() - 1);
            assert_eq!(after, Duration::from_millis(6400));
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(waited >= Duration::from_millis(6400) && waited < Duration::from_millis(7000), "gave up after {waited:?}");
    let stats = ep.stats();
    assert_eq!((stats.requests_sent, stats.timeouts), (1, 1));
    assert_eq!(stats.retransmissions as usize, expected.len() - 1);
}

#[tokio::test]
async fn silent_phone_tcp_sends_once_and_gives_up_on_timer_f() {
    let sipp = Sipp::start(scenario("uas_silent.xml"), "tcp");
    let (ep, rec) = endpoint(Timers { t1: Duration::from_millis(50), ..fast_timers() }).await;
    let started = std::time::Instant::now();
    let err = ep.send_request(check_sync(&ep, &sipp.target()), sipp.target(), None).await.unwrap_err();
    assert!(matches!(err, TransactionError::Timeout { retransmissions: 0, .. }), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(3200));
    assert_eq!(send_offsets(&rec.events()), [0], "no retransmission over TCP");
}

#[tokio::test]
async fn refused_tcp_connection_is_unreachable() {
    let port = sipprov_testkit::free_port();
    let (ep, _) = endpoint(Timers::default()).await;
    let target = sipprov_sip::Target::tcp(([127, 0, 0, 1], port).into());
    let err = ep.send_request(check_sync(&ep, &target), target, None).await.unwrap_err();
    assert!(matches!(err, TransactionError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("refused"), "{err}");
}

/// The inbound side against a real stack: SIPp plays a PnP phone. We answer its SUBSCRIBE with
/// 200 (server transaction, To tag) and send the RFC-correct NOTIFY in that dialog from the
/// socket the SUBSCRIBE arrived on; SIPp checks both and answers 200.
async fn pnp_flow(transport: Transport) {
    let (ep, _) = endpoint(Timers::default()).await;
    let mut rx = ep.incoming().unwrap();
    let ours = ep.local_addr(transport).unwrap();
    let mut sipp = Sipp::start_uac(scenario("uac_pnp_subscribe.xml"), transport.as_str(), ours);
    let sub = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("SUBSCRIBE").unwrap();
    let h = &sub.request.headers;
    let event = h.event().unwrap().unwrap();
    assert!(event.is("ua-profile"));
    assert_eq!(event.param("vendor").as_deref(), Some("Yealink"));
    assert_eq!(h.to().unwrap().sip_uri().unwrap().user_decoded().as_deref(), Some("MAC:001565aabbcc"));
    let mut ok = sub.response(200, "OK");
    ok.headers.push("Expires", "0");
    sub.respond(ok).await.unwrap();

    let mut target = sipprov_sip::Target::new(sub.source, sub.transport);
    if transport == Transport::Udp {
        target = target.from_local(sub.local);
    }
    let contact = h.contacts().unwrap().remove(0).uri;
    let notify = ep
        .request("NOTIFY", &contact, &target)
        .unwrap()
        .from(&h.to().unwrap().uri)
        .from_tag(sub.to_tag())
        .to(&h.value("From").unwrap())
        .call_id(&h.call_id().unwrap())
        .header("Event", &event.to_string())
        .header("Subscription-State", "terminated;reason=timeout")
        .body("application/url", "http://prov.example.com/yealink/")
        .build();
    let resp = ep.send_request(notify, target, None).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(sipp.wait_async(Duration::from_secs(10)).await, 0, "SIPp PnP phone failed: {}", sipp.errors());
}

#[tokio::test]
async fn pnp_phone_subscribe_and_notify_udp() {
    pnp_flow(Transport::Udp).await;
}

#[tokio::test]
async fn pnp_phone_subscribe_and_notify_tcp() {
    pnp_flow(Transport::Tcp).await;
}
