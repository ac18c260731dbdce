//! Endpoint to endpoint and raw-socket tests: server transactions, response routing (RFC 3261
//! §18.2.2, RFC 3581), TCP connection reuse, digest with SHA-256 and 407, provisional responses.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{check_sync, endpoint, fast_timers};
use sipprov_sip::auth::{parse_challenges, verify};
use sipprov_sip::message::{parse, Message};
use sipprov_sip::IncomingRequests;
use sipprov_sip::{Credentials, Endpoint, EndpointConfig, IncomingRequest, Target, Timers, TxEventKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

async fn next(rx: &mut IncomingRequests) -> IncomingRequest {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("request in time").expect("channel open")
}

fn raw_notify(via: &str, branch: &str) -> Vec<u8> {
    format!(
        "NOTIFY sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch={branch}\r\nMax-Forwards: 70\r\n\
         From: <sip:prov@127.0.0.1>;tag=f1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: {branch}@test\r\n\
         CSeq: 1 NOTIFY\r\nEvent: check-sync\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn recv_response(sock: &UdpSocket) -> (sipprov_sip::Response, Vec<u8>) {
    let mut buf = vec![0u8; 65536];
    let (n, _) =
        tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf)).await.expect("response").unwrap();
    let Ok(Message::Response(r)) = parse(&buf[..n]) else { panic!("not a response") };
    (r, buf[..n].to_vec())
}

#[tokio::test]
async fn request_between_endpoints_and_received_stamp() {
    let (a, _) = endpoint(Timers::default()).await;
    let (b, _) = endpoint(Timers::default()).await;
    let mut rx = b.incoming().unwrap();
    assert!(b.incoming().is_none(), "the receiver is taken once");
    let target = Target::udp(b.local_addr(sipprov_sip::Transport::Udp).unwrap());
    let server = tokio::spawn(async move {
        let req = next(&mut rx).await;
        let via = req.request.headers.top_via().unwrap();
        assert_eq!(via.rport(), Some(Some(req.source.port())), "rport filled in");
        assert_eq!(via.received(), Some("127.0.0.1"));
        assert!(req.request.headers.event().unwrap().unwrap().is("check-sync"));
        req.reply(200, "").await.unwrap();
    });
    let resp = a.send_request(check_sync(&a, &target), target, None).await.unwrap();
    assert_eq!((resp.status, resp.reason.as_str()), (200, "OK"));
    assert!(resp.headers.to().unwrap().tag().is_some(), "To tag added (8.2.6.2)");
    assert_eq!(resp.headers.value("Server").as_deref(), Some("sipprov-test"));
    server.await.unwrap();
}

#[tokio::test]
async fn retransmissions_are_absorbed_and_answered_again() {
    let (b, _) = endpoint(Timers::default()).await;
    let mut rx = b.incoming().unwrap();
    let b_addr = b.local_addr(sipprov_sip::Transport::Udp).unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let via = format!("127.0.0.1:{};rport", phone.local_addr().unwrap().port());
    let req = raw_notify(&via, "z9hG4bKretrans1");

    phone.send_to(&req, b_addr).await.unwrap();
    let incoming = next(&mut rx).await;
    // A retransmission before the answer is absorbed silently.
    phone.send_to(&req, b_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    incoming.reply(200, "OK").await.unwrap();
    let (_, first) = recv_response(&phone).await;
    // After the answer, a retransmission gets the same bytes again.
    phone.send_to(&req, b_addr).await.unwrap();
    let (_, again) = recv_response(&phone).await;
    assert_eq!(first, again);
    assert_eq!(b.server_transactions(), 1, "kept for Timer J = 64*T1 on UDP");
    assert!(tokio::time::timeout(Duration::from_millis(300), rx.recv()).await.is_err(), "delivered once only");
    let stats = b.stats();
    assert_eq!((stats.requests_received, stats.retransmissions_absorbed, stats.responses_sent), (1, 2, 1));

    // A new branch is a new transaction.
    phone.send_to(&raw_notify(&via, "z9hG4bKretrans2"), b_addr).await.unwrap();
    next(&mut rx).await;
}

#[tokio::test]
async fn responses_follow_rport_or_the_via_port() {
    let (b, _) = endpoint(Timers::default()).await;
    let mut rx = b.incoming().unwrap();
    let b_addr = b.local_addr(sipprov_sip::Transport::Udp).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let via_port = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let vp = via_port.local_addr().unwrap().port();

    // Without rport: to the Via sent-by port (18.2.2).
    sender.send_to(&raw_notify(&format!("127.0.0.1:{vp}"), "z9hG4bKnorport"), b_addr).await.unwrap();
    next(&mut rx).await.reply(200, "").await.unwrap();
    let (resp, _) = recv_response(&via_port).await;
    assert_eq!(resp.status, 200);

    // With rport: to the source port, whatever the Via says (RFC 3581 §4).
    sender.send_to(&raw_notify(&format!("127.0.0.1:{vp};rport"), "z9hG4bKrport"), b_addr).await.unwrap();
    next(&mut rx).await.reply(200, "").await.unwrap();
    let (resp, _) = recv_response(&sender).await;
    let via = resp.headers.top_via().unwrap();
    assert_eq!(via.rport(), Some(Some(sender.local_addr().unwrap().port())));
}

#[tokio::test]
async fn inbound_tcp_connection_is_answered_on_the_same_connection() {
    let (b, _) = endpoint(Timers::default()).await;
    let mut rx = b.incoming().unwrap();
    let mut conn = TcpStream::connect(b.local_addr(sipprov_sip::Transport::Tcp).unwrap()).await.unwrap();
    let req = String::from_utf8(raw_notify("127.0.0.1:1;rport", "z9hG4bKtcp1")).unwrap().replace("UDP", "TCP");
    // Sent in two pieces, with a keep-alive first: the framer must reassemble.
    conn.write_all(b"\r\n\r\n").await.unwrap();
    conn.write_all(&req.as_bytes()[..40]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    conn.write_all(&req.as_bytes()[40..]).await.unwrap();
    let incoming = next(&mut rx).await;
    assert_eq!(incoming.transport, sipprov_sip::Transport::Tcp);
    incoming.reply(489, "").await.unwrap();
    assert_eq!(b.server_transactions(), 0, "Timer J is 0 on TCP");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await.unwrap().unwrap();
    let Ok(Message::Response(r)) = parse(&buf[..n]) else { panic!("response expected") };
    assert_eq!((r.status, r.reason.as_str()), (489, "Bad Event"));
}

/// A phone that challenges with SHA-256 first and MD5 second (RFC 8760 order), verifies with
/// `auth::verify`, and counts requests.
async fn challenging_phone(mut rx: IncomingRequests, status: u16, password: &'static str) -> usize {
    let (name, answer) = if status == 407 {
        ("Proxy-Authenticate", "Proxy-Authorization")
    } else {
        ("WWW-Authenticate", "Authorization")
    };
    let mut seen = 0;
    while let Ok(Some(req)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        seen += 1;
        let creds = req.request.headers.value(answer).map(|v| parse_challenges(&v).unwrap());
        let ok = creds.as_ref().is_some_and(|c| {
            c[0].param("algorithm") == Some("SHA-256") && verify(&c[0], password, "NOTIFY", &req.request.body)
        });
        let mut resp = req.response(if ok { 200 } else { status }, "");
        if !ok {
            resp.headers.push(name, r#"Digest realm="phones@example.com", nonce="n256", qop="auth,auth-int", algorithm=SHA-256, opaque="o""#);
            resp.headers.push(name, r#"Digest realm="phones@example.com", nonce="n5", algorithm=MD5"#);
        }
        req.respond(resp).await.unwrap();
    }
    seen
}

async fn digest_case(status: u16, client_password: &str) -> (u16, usize, sipprov_sip::Request) {
    let (a, _) = endpoint(Timers::default()).await;
    let (b, _) = endpoint(Timers::default()).await;
    let phone = tokio::spawn(challenging_phone(b.incoming().unwrap(), status, "secret"));
    let target = Target::udp(b.local_addr(sipprov_sip::Transport::Udp).unwrap());
    let req = check_sync(&a, &target);
    let creds = Credentials { username: "100".into(), password: client_password.into() };
    let resp = a.send_request(req.clone(), target, Some(&creds)).await.unwrap();
    (resp.status, phone.await.unwrap(), req)
}

#[tokio::test]
async fn sha256_challenge_answered_with_cseq_plus_one() {
    let (status, requests, _) = digest_case(401, "secret").await;
    assert_eq!((status, requests), (200, 2));
}

#[tokio::test]
async fn proxy_challenge_answered_with_proxy_authorization() {
    let (status, requests, _) = digest_case(407, "secret").await;
    assert_eq!((status, requests), (200, 2));
}

#[tokio::test]
async fn wrong_password_gives_up_after_one_retry() {
    let (status, requests, _) = digest_case(401, "wrong").await;
    assert_eq!((status, requests), (401, 2), "one retry, no loop");
}

#[tokio::test]
async fn retry_keeps_call_id_and_from_tag_with_new_branch() {
    let (a, _) = endpoint(Timers::default()).await;
    let (b, _) = endpoint(Timers::default()).await;
    let mut rx = b.incoming().unwrap();
    let target = Target::udp(b.local_addr(sipprov_sip::Transport::Udp).unwrap());
    let req = check_sync(&a, &target);
    let creds = Credentials { username: "100".into(), password: "secret".into() };
    let client = tokio::spawn(async move { a.send_request(req, target, Some(&creds)).await.unwrap().status });
    let first = next(&mut rx).await;
    let mut challenge = first.response(401, "");
    challenge.headers.push("WWW-Authenticate", r#"Digest realm="r", nonce="n""#);
    first.respond(challenge).await.unwrap();
    let second = next(&mut rx).await;
    let (h1, h2) = (&first.request.headers, &second.request.headers);
    assert_eq!(h1.call_id().unwrap(), h2.call_id().unwrap());
    assert_eq!(h1.from().unwrap().tag(), h2.from().unwrap().tag());
    assert_eq!(h2.cseq().unwrap().unwrap().seq, h1.cseq().unwrap().unwrap().seq + 1);
    assert_ne!(h1.top_via().unwrap().branch(), h2.top_via().unwrap().branch());
    let auth = h2.authorization().unwrap();
    assert_eq!(auth[0].param("uri"), Some(second.request.uri.as_str()));
    assert!(verify(&auth[0], "secret", "NOTIFY", b""), "legacy no-qop MD5 answer");
    second.reply(200, "").await.unwrap();
    assert_eq!(client.await.unwrap(), 200);
}

#[tokio::test]
async fn provisional_response_switches_retransmissions_to_t2() {
    let timers = fast_timers();
    let (a, rec) = endpoint(timers).await;
    let (b, _) = endpoint(timers).await;
    let mut rx = b.incoming().unwrap();
    let target = Target::udp(b.local_addr(sipprov_sip::Transport::Udp).unwrap());
    let phone = tokio::spawn(async move {
        let req = next(&mut rx).await;
        req.reply(100, "").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1400)).await;
        req.reply(200, "").await.unwrap();
    });
    let mut provisional = Vec::new();
    let req = check_sync(&a, &target);
    let resp = a.send_request_with(req, target, None, &mut |r| provisional.push(r.status)).await.unwrap();
    phone.await.unwrap();
    assert_eq!((resp.status, provisional), (200, vec![100]));
    let events = rec.events();
    let t0 = events[0].at;
    let sends: Vec<u128> = events
        .iter()
        .filter(|e| matches!(e.kind, TxEventKind::RequestSent { .. }))
        .map(|e| e.at.duration_since(t0).as_millis())
        .collect();
    // The 100 Trying arrives before Timer E (100 ms) fires, so retransmissions come every
    // T2 = 400 ms instead of 100, 200, 400 ms; the 200 OK at ~1400 ms ends them.
    assert_eq!(sends.len(), 4, "{sends:?}");
    for (got, want) in sends.iter().zip([0u128, 400, 800, 1200]) {
        assert!(got.abs_diff(want) <= 150, "{sends:?}");
    }
}

#[tokio::test]
async fn sends_from_a_chosen_socket_and_from_an_existing_socket() {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let first = sock.local_addr().unwrap();
    let a = Endpoint::with_std_udp_socket(EndpointConfig::default(), sock).await.unwrap();
    let tokio_sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = a.add_udp_socket(tokio_sock).unwrap();
    let c = Endpoint::with_udp_socket(EndpointConfig::default(), UdpSocket::bind("127.0.0.1:0").await.unwrap()).await;
    assert_eq!(c.unwrap().udp_addrs().len(), 1);
    assert_eq!(a.udp_addrs(), [first, second]);
    let (b, _) = endpoint(Timers::default()).await;
    let mut rx = b.incoming().unwrap();
    let b_addr = b.local_addr(sipprov_sip::Transport::Udp).unwrap();
    for local in [first, second] {
        let target = Target::udp(b_addr).from_local(local);
        let req = check_sync(&a, &target);
        let client = tokio::spawn({
            let a = a.clone();
            async move { a.send_request(req, target, None).await.unwrap().status }
        });
        let incoming = next(&mut rx).await;
        assert_eq!(incoming.source, local);
        assert_eq!(incoming.request.headers.top_via().unwrap().port, Some(local.port()), "Via names the socket");
        incoming.reply(200, "").await.unwrap();
        assert_eq!(client.await.unwrap(), 200);
    }
    let unknown: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let target = Target::udp(b_addr).from_local(unknown);
    assert!(a.request("NOTIFY", "sip:x@127.0.0.1", &target).is_err(), "no socket bound there");
}

#[tokio::test]
async fn invite_is_refused_and_garbage_is_counted() {
    let (b, _) = endpoint(Timers::default()).await;
    let b_addr = b.local_addr(sipprov_sip::Transport::Udp).unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    phone.send_to(b"\x00\xffgarbage\r\n\r\n", b_addr).await.unwrap();
    phone.send_to(&vec![b'A'; 70_000][..65_000], b_addr).await.unwrap();
    let invite = String::from_utf8(raw_notify(&format!("{};rport", phone.local_addr().unwrap()), "z9hG4bKinv"))
        .unwrap()
        .replace("NOTIFY", "INVITE");
    phone.send_to(invite.as_bytes(), b_addr).await.unwrap();
    let (resp, _) = recv_response(&phone).await;
    assert_eq!(resp.status, 501);
    assert_eq!(b.stats().malformed, 2);
}

/// Sends `count` NOTIFYs from `phone` to `to`, each with an `X-Pad` header of `pad` bytes, and
/// returns how many were answered 503 (the others wait in the endpoint's queue unanswered).
async fn flood(phone: &UdpSocket, to: SocketAddr, tag: &str, count: usize, pad: usize) -> usize {
    let via = format!("127.0.0.1:{};rport", phone.local_addr().unwrap().port());
    for i in 0..count {
        let mut req = String::from_utf8(raw_notify(&via, &format!("z9hG4bK{tag}{i}"))).unwrap();
        let end = req.find("Content-Length").unwrap();
        req.insert_str(end, &format!("X-Pad: {}\r\n", "a".repeat(pad)));
        phone.send_to(req.as_bytes(), to).await.unwrap();
    }
    let mut refused = 0;
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(500), phone.recv_from(&mut buf)).await {
        let Ok(Message::Response(r)) = parse(&buf[..n]) else { panic!("not a response") };
        assert_eq!(r.status, 503, "only refusals are answered by the endpoint itself");
        refused += 1;
    }
    refused
}

/// Takes every request waiting in the queue; returns how many there were.
async fn drain(rx: &mut IncomingRequests) -> usize {
    let mut taken = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        taken += 1;
    }
    taken
}

#[tokio::test]
async fn the_incoming_queue_is_bounded_by_bytes_and_refuses_with_503_past_them() {
    let requests = sipprov_sip::RequestLimits { per_source_per_sec: 0, ..Default::default() };
    let cfg = EndpointConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        incoming_bytes: 40_000,
        requests,
        ..Default::default()
    };
    let b = Endpoint::bind(cfg).await.unwrap();
    let mut rx = b.incoming().unwrap();
    let to = b.local_addr(sipprov_sip::Transport::Udp).unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    // Small requests (about 350 bytes, counted as about 1.7 KB each): many fit.
    let refused_small = flood(&phone, to, "small", 40, 0).await;
    let queued_small = drain(&mut rx).await;
    assert_eq!(queued_small + refused_small, 40, "every request is either queued or refused");
    assert!(refused_small > 0, "the budget is a bound: {queued_small} queued");
    assert!(queued_small >= 15, "a byte budget holds many small requests: {queued_small} queued");

    // Large requests (about 8 KB, counted as about 17 KB each): few fit in the same budget.
    let refused_large = flood(&phone, to, "large", 10, 8_000).await;
    let queued_large = drain(&mut rx).await;
    assert_eq!(queued_large + refused_large, 10);
    assert!((1..=2).contains(&queued_large), "{queued_large} large requests queued in 40,000 bytes");

    // Taking requests out gave the budget back: the queue takes as many small ones as before.
    assert_eq!(flood(&phone, to, "again", 40, 0).await, refused_small);
    assert_eq!(drain(&mut rx).await, queued_small);
}
