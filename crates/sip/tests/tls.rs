//! SIP over TLS between two endpoints of this crate, with certificates made by the openssl CLI:
//! a NOTIFY answered 200, a digest challenge, Timer F without retransmissions, connection refused,
//! certificates that do not verify (unknown CA, wrong name), and connection reuse (sequential,
//! concurrent, and in the reverse direction).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{check_sync, fast_timers, Recorder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sipprov_sip::auth::verify;
use sipprov_sip::IncomingRequests;
use sipprov_sip::{
    Endpoint, EndpointConfig, IncomingRequest, Target, Timers, TlsConfig, TlsListen, TransactionError, Transport,
    TransportError, TxEvent, TxEventKind,
};

/// A test PKI in a temporary directory: `ca` signs `phone` (for 127.0.0.1 and phone.test);
/// `other` is an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A P-256 key made with the request (`openssl req -newkey`).
const EC_KEY: [&str; 5] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for ca in ["ca", "other"] {
            let (key, pem, subj) = (format!("{ca}.key"), format!("{ca}.pem"), format!("/CN=Test {ca}"));
            let rest = ["-days", "2", "-keyout", &key, "-out", &pem, "-subj", &subj];
            openssl(d, &[&["req", "-x509"][..], &EC_KEY, &rest].concat());
        }
        let rest = ["-keyout", "phone.key", "-out", "phone.csr", "-subj", "/CN=phone"];
        openssl(d, &[&["req"][..], &EC_KEY, &rest].concat());
        let ext =
            "subjectAltName=IP:127.0.0.1,DNS:phone.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
        std::fs::write(d.join("phone.ext"), ext).unwrap();
        let sign = ["x509", "-req", "-in", "phone.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"];
        openssl(d, &[&sign[..], &["-days", "2", "-extfile", "phone.ext", "-out", "phone.pem"]].concat());
        Pki { dir }
    }

    fn certs(&self, name: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(self.dir.path().join(format!("{name}.pem")))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn server(&self) -> Arc<rustls::ServerConfig> {
        let key = PrivateKeyDer::from_pem_file(self.dir.path().join("phone.key")).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.certs("phone"), key)
            .unwrap();
        Arc::new(cfg)
    }

    /// A client trusting the CA `ca`.
    fn client(&self, ca: &str) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in self.certs(ca) {
            roots.add(c).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(cfg)
    }
}

/// An endpoint whose only transport is TLS: a listener (the phone) and/or a client (sipprov).
async fn tls_endpoint(tls: TlsConfig, timers: Timers) -> (Endpoint, Recorder) {
    let rec = Recorder::default();
    let sink = rec.0.clone();
    let cfg = EndpointConfig {
        tls: Some(tls),
        timers,
        user_agent: Some("sipprov-test".into()),
        observer: Some(Arc::new(move |e: &TxEvent| sink.lock().unwrap().push(e.clone()))),
        ..Default::default()
    };
    (Endpoint::bind(cfg).await.expect("bind TLS endpoint"), rec)
}

/// The phone: a TLS listener with the `ca`-signed certificate, and its received requests.
async fn phone(pki: &Pki) -> (Endpoint, IncomingRequests, Target) {
    let listen = TlsListen { addr: "127.0.0.1:0".parse().unwrap(), server: pki.server() };
    let (ep, _) = tls_endpoint(TlsConfig { listen: Some(listen), client: Some(pki.client("ca")) }, fast_timers()).await;
    let rx = ep.incoming().unwrap();
    let target = Target::tls(ep.local_addr(Transport::Tls).expect("TLS listener"));
    (ep, rx, target)
}

/// sipprov's side: outbound TLS only, trusting `ca`.
async fn notifier(pki: &Pki, ca: &str) -> (Endpoint, Recorder) {
    tls_endpoint(TlsConfig { listen: None, client: Some(pki.client(ca)) }, fast_timers()).await
}

async fn next(rx: &mut IncomingRequests) -> IncomingRequest {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("request in time").expect("channel open")
}

fn sends(rec: &Recorder) -> usize {
    rec.events().iter().filter(|e| matches!(e.kind, TxEventKind::RequestSent { .. })).count()
}

#[tokio::test]
async fn notify_over_tls_is_answered_200() {
    let pki = Pki::new();
    let (_phone, mut rx, target) = phone(&pki).await;
    let (a, rec) = notifier(&pki, "ca").await;
    let answer = tokio::spawn(async move {
        let req = next(&mut rx).await;
        req.reply(200, "").await.unwrap();
        req
    });
    let resp = a.send_request(check_sync(&a, &target), target.clone(), None).await.unwrap();
    assert_eq!((resp.status, resp.reason.as_str()), (200, "OK"));
    let req = answer.await.unwrap();
    assert_eq!(req.transport, Transport::Tls);
    let h = &req.request.headers;
    let via = h.top_via().unwrap();
    assert_eq!(via.transport, "TLS");
    assert_eq!(via.port, None, "no TLS listener on our side: no port to advertise");
    assert_eq!(h.value("Contact").as_deref(), Some("<sip:127.0.0.1;transport=tls>"));
    assert_eq!(h.value("Content-Length").as_deref(), Some("0"));
    assert_eq!((a.stats().retransmissions, sends(&rec)), (0, 1));

    // A sips: Request-URI gets a sips: Contact (RFC 5630).
    let uri = format!("sips:100@{}", target.addr);
    let contact = a.request("NOTIFY", &uri, &target).unwrap().build();
    assert_eq!(contact.headers.value("Contact").as_deref(), Some("<sips:127.0.0.1>"));
}

#[tokio::test]
async fn digest_challenge_is_answered_over_tls_on_the_same_connection() {
    let pki = Pki::new();
    let (_phone, mut rx, target) = phone(&pki).await;
    let (a, _) = notifier(&pki, "ca").await;
    let creds = sipprov_sip::Credentials { username: "100".into(), password: "secret".into() };
    let req = check_sync(&a, &target);
    let client = tokio::spawn(async move { a.send_request(req, target, Some(&creds)).await });
    let first = next(&mut rx).await;
    let mut challenge = first.response(401, "");
    challenge.headers.push("WWW-Authenticate", r#"Digest realm="phone", nonce="n1", qop="auth", algorithm=SHA-256"#);
    first.respond(challenge).await.unwrap();
    let second = next(&mut rx).await;
    let auth = second.request.headers.authorization().unwrap();
    assert!(verify(&auth[0], "secret", "NOTIFY", b""), "digest verifies");
    assert_eq!(second.source, first.source, "the retry reuses the TLS connection");
    second.reply(200, "").await.unwrap();
    assert_eq!(client.await.unwrap().unwrap().status, 200);
}

#[tokio::test]
async fn a_silent_phone_times_out_after_timer_f_without_retransmissions() {
    let pki = Pki::new();
    let (_phone, mut rx, target) = phone(&pki).await;
    let (a, rec) = notifier(&pki, "ca").await;
    let held = tokio::spawn(async move { next(&mut rx).await });
    let err = a.send_request(check_sync(&a, &target), target, None).await.unwrap_err();
    let TransactionError::Timeout { retransmissions, after } = err else { panic!("timeout expected: {err}") };
    assert_eq!((retransmissions, after), (0, fast_timers().timer_f()));
    assert_eq!(sends(&rec), 1, "reliable transport: Timer E is not used");
    assert_eq!(held.await.unwrap().transport, Transport::Tls, "the phone got it once");
}

#[tokio::test]
async fn connection_refused_is_unreachable() {
    let pki = Pki::new();
    let (a, _) = notifier(&pki, "ca").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let target = Target::tls(closed);
    let err = a.send_request(check_sync(&a, &target), target, None).await.unwrap_err();
    assert!(matches!(err, TransactionError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("over TLS"), "{err}");
}

#[tokio::test]
async fn certificates_that_do_not_verify_are_named() {
    let pki = Pki::new();
    let (_phone, _rx, target) = phone(&pki).await;
    let (stranger, _) = notifier(&pki, "other").await;
    let err = stranger.send_request(check_sync(&stranger, &target), target.clone(), None).await.unwrap_err();
    let TransactionError::Transport(TransportError::Tls { certificate, reason, .. }) = &err else {
        panic!("TLS error expected: {err}")
    };
    assert!(*certificate && reason.contains("UnknownIssuer"), "{err}");
    assert!(err.to_string().starts_with("TLS handshake with 127.0.0.1:"), "{err}");

    // Trusted CA, but the certificate is for 127.0.0.1 and phone.test, not this name.
    let (a, _) = notifier(&pki, "ca").await;
    let wrong = target.clone().with_server_name("intruder.test");
    let err = a.send_request(check_sync(&a, &wrong), wrong, None).await.unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[tokio::test]
async fn a_host_name_is_verified_against_the_certificate() {
    let pki = Pki::new();
    let (_phone, mut rx, target) = phone(&pki).await;
    let (a, _) = notifier(&pki, "ca").await;
    let named = target.with_server_name("phone.test");
    tokio::spawn(async move { next(&mut rx).await.reply(200, "").await.unwrap() });
    assert_eq!(a.send_request(check_sync(&a, &named), named, None).await.unwrap().status, 200);
}

#[tokio::test]
async fn one_connection_serves_many_requests_in_both_directions() {
    let pki = Pki::new();
    let (b, mut rx, target) = phone(&pki).await;
    let (a, _) = notifier(&pki, "ca").await;
    let mut a_rx = a.incoming().unwrap();
    // Three at once before any connection exists (one handshake for all), then one more.
    let send =
        |a: Endpoint, t: Target| async move { a.send_request(check_sync(&a, &t), t, None).await.unwrap().status };
    let burst: Vec<_> = (0..3).map(|_| tokio::spawn(send(a.clone(), target.clone()))).collect();
    let mut sources = Vec::new();
    for _ in 0..3 {
        let req = next(&mut rx).await;
        sources.push(req.source);
        req.reply(200, "").await.unwrap();
    }
    for s in burst {
        assert_eq!(s.await.unwrap(), 200);
    }
    let later = tokio::spawn(send(a.clone(), target.clone()));
    let req = next(&mut rx).await;
    sources.push(req.source);
    req.reply(200, "").await.unwrap();
    assert_eq!(later.await.unwrap(), 200);
    assert!(sources.iter().all(|s| *s == sources[0]), "one TLS connection: {sources:?}");

    // The phone's request to us goes back over the connection we opened (we have no listener).
    let back = Target::tls(sources[0]);
    let req = check_sync(&b, &back);
    let reverse = tokio::spawn(async move { b.send_request(req, back, None).await.unwrap().status });
    let got = next(&mut a_rx).await;
    assert_eq!(got.transport, Transport::Tls);
    got.reply(200, "").await.unwrap();
    assert_eq!(reverse.await.unwrap(), 200);
}

#[tokio::test]
async fn a_peer_that_does_not_speak_tls_does_not_stop_the_listener() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new();
    let (_phone, mut rx, target) = phone(&pki).await;
    let mut plain = tokio::net::TcpStream::connect(target.addr).await.unwrap();
    plain.write_all(b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read(&mut buf)).await;
    let (a, _) = notifier(&pki, "ca").await;
    tokio::spawn(async move { next(&mut rx).await.reply(200, "").await.unwrap() });
    assert_eq!(a.send_request(check_sync(&a, &target), target, None).await.unwrap().status, 200);
}
