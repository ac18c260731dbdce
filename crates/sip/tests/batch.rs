//! `Endpoint::run_batch` against real SIPp phones: every way a transaction can end, in one
//! batch whose in-flight limit forces slots to be reused, and a few hundred NOTIFYs at once.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{check_sync, endpoint, fast_timers, scenario, SippTarget};
use sipprov_sip::{BatchRequest, BatchResult, Credentials, Endpoint, Target, TransactionError, TxEventKind};
use sipprov_testkit::Sipp;
use tokio::sync::mpsc;

/// Runs `requests` through one batch with `max_in_flight`, returning every result by tag.
async fn run(
    ep: &Endpoint,
    requests: Vec<BatchRequest<&'static str>>,
    max_in_flight: usize,
) -> HashMap<&'static str, BatchResult<&'static str>> {
    let (tx, rx) = mpsc::channel(4);
    let (results_tx, mut results_rx) = mpsc::channel(1);
    let batch = tokio::spawn({
        let ep = ep.clone();
        async move { ep.run_batch(rx, results_tx, max_in_flight).await }
    });
    let feeder = tokio::spawn(async move {
        for r in requests {
            tx.send(r).await.expect("the batch takes requests");
        }
    });
    let mut out = HashMap::new();
    while let Some(done) = results_rx.recv().await {
        assert!(out.insert(done.tag, done).is_none(), "one result per request");
    }
    feeder.await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), batch).await.expect("the batch ends").unwrap();
    out
}

fn request(ep: &Endpoint, target: Target, tag: &'static str) -> BatchRequest<&'static str> {
    BatchRequest { request: check_sync(ep, &target), target, credentials: None, tag }
}

fn status(results: &HashMap<&str, BatchResult<&str>>, tag: &str) -> u16 {
    match &results[tag].result {
        Ok(resp) => resp.status,
        Err(e) => panic!("{tag}: expected a response, got {e}"),
    }
}

/// Every outcome in one batch of two in flight: answered over UDP and TCP, a digest challenge
/// answered (and verified by SIPp), 481, a silent phone (Timer E schedule, then Timer F), a
/// refused TCP connection, and a request refused before sending.
#[tokio::test]
async fn every_ending_in_one_batch() {
    let ok_udp = Sipp::start(scenario("uas_200.xml"), "udp");
    let ok_tcp = Sipp::start(scenario("uas_200.xml"), "tcp");
    let auth = Sipp::start(scenario("uas_auth.xml"), "udp");
    let gone = Sipp::start(scenario("uas_481.xml"), "udp");
    let silent = Sipp::start(scenario("uas_silent.xml"), "udp");
    let timers = fast_timers();
    let (ep, rec) = endpoint(timers).await;
    let refused = Target::tcp(([127, 0, 0, 1], sipprov_testkit::free_port()).into());
    let mut invalid = request(&ep, ok_udp.target(), "invalid");
    invalid.request.headers.remove("Call-ID");
    let mut challenged = request(&ep, auth.target(), "auth");
    challenged.credentials = Some(Credentials { username: "100".into(), password: "secret".into() });
    let requests = vec![
        request(&ep, silent.target(), "silent"),
        request(&ep, ok_udp.target(), "ok-udp"),
        request(&ep, ok_tcp.target(), "ok-tcp"),
        challenged,
        request(&ep, gone.target(), "481"),
        request(&ep, refused.clone(), "refused"),
        invalid,
    ];
    let results = run(&ep, requests, 2).await;

    assert_eq!(results.len(), 7);
    assert_eq!(status(&results, "ok-udp"), 200);
    assert_eq!(status(&results, "ok-tcp"), 200);
    assert_eq!(status(&results, "auth"), 200, "SIPp's verifyauth accepted the digest");
    assert_eq!(status(&results, "481"), 481);
    assert!(matches!(results["refused"].result, Err(TransactionError::Unreachable(_))), "{:?}", results["refused"]);
    match &results["invalid"].result {
        Err(TransactionError::InvalidRequest(why)) => assert!(why.contains("Call-ID"), "{why}"),
        other => panic!("expected an invalid request, got {other:?}"),
    }
    match &results["silent"].result {
        Err(TransactionError::Timeout { retransmissions, after }) => {
            assert_eq!(*after, timers.timer_f());
            assert_eq!(*retransmissions as usize, timers.udp_schedule().len() - 1);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // The silent phone got the RFC 3261 schedule, while the others came and went.
    let events = rec.events();
    let sends: Vec<_> = events
        .iter()
        .filter(|e| e.peer == silent.addr && matches!(e.kind, TxEventKind::RequestSent { .. }))
        .map(|e| e.at)
        .collect();
    let offsets: Vec<i64> = sends.iter().map(|at| at.duration_since(sends[0]).as_millis() as i64).collect();
    let expected: Vec<i64> = timers.udp_schedule().iter().map(|d| d.as_millis() as i64).collect();
    assert_eq!(offsets.len(), expected.len(), "sends at {offsets:?}, expected {expected:?}");
    for (got, want) in offsets.iter().zip(&expected) {
        assert!((got - want).abs() <= 150, "send at {got} ms, expected {want} ms (all: {offsets:?})");
    }
    let stats = ep.stats();
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.requests_sent, 6, "five phones plus the retry after the challenge; the refused one never left");
}

/// Hundreds at once against one SIPp playing every phone: every one answered, each exactly once.
#[tokio::test]
async fn a_fleet_through_one_batch() {
    const PHONES: usize = 300;
    let mut sipp = Sipp::start_calls(scenario("uas_200.xml"), "udp", PHONES);
    let (ep, _) = endpoint(fast_timers()).await;
    let target = sipp.target();
    let (tx, rx) = mpsc::channel(16);
    let (results_tx, mut results_rx) = mpsc::channel(16);
    let batch = tokio::spawn({
        let ep = ep.clone();
        async move { ep.run_batch(rx, results_tx, 50).await }
    });
    let feeder = tokio::spawn({
        let ep = ep.clone();
        async move {
            for i in 0..PHONES {
                let request = check_sync(&ep, &target);
                tx.send(BatchRequest { request, target: target.clone(), credentials: None, tag: i }).await.unwrap();
            }
        }
    });
    let mut seen = vec![0u8; PHONES];
    while let Some(done) = results_rx.recv().await {
        assert_eq!(done.result.as_ref().map(|r| r.status).ok(), Some(200), "phone {}", done.tag);
        seen[done.tag] += 1;
    }
    feeder.await.unwrap();
    batch.await.unwrap();
    assert!(seen.iter().all(|n| *n == 1), "every request ends exactly once");
    assert_eq!(sipp.wait_async(Duration::from_secs(15)).await, 0, "SIPp: {}", sipp.errors());
    assert_eq!(ep.stats().requests_sent as usize, PHONES);
}

/// A caller that stops reading results ends the batch, and its transactions leave the table.
#[tokio::test]
async fn closing_the_results_ends_the_batch() {
    let silent = Sipp::start(scenario("uas_silent.xml"), "udp");
    let (ep, _) = endpoint(fast_timers()).await;
    let (tx, rx) = mpsc::channel(4);
    let (results_tx, results_rx) = mpsc::channel(1);
    tx.send(request(&ep, silent.target(), "silent")).await.unwrap();
    let mut invalid = request(&ep, silent.target(), "invalid");
    invalid.request.headers.remove("CSeq");
    tx.send(invalid).await.unwrap();
    let batch = tokio::spawn({
        let ep = ep.clone();
        async move { ep.run_batch(rx, results_tx, 10).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(results_rx);
    tokio::time::timeout(Duration::from_secs(2), batch).await.expect("the batch ends").unwrap();
    assert_eq!(ep.client_transactions(), 1, "the silent phone's transaction only lingers for Timer K");
    drop(tx);
}
