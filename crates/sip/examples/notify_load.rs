//! Sends COUNT check-sync NOTIFYs to one address with at most IN_FLIGHT awaiting their final
//! response, through the SIP stack alone (no inventory, no database), and prints how many got
//! a 2xx and the rate. `bench/sip.sh` runs it against SIPp phones next to SIPp itself sending
//! the same NOTIFYs, to measure the stack apart from the campaign bookkeeping.
//!
//! MODE `batch` (the default) runs every transaction from one task with
//! [`Endpoint::run_batch`], as a campaign does; `tasks` gives each NOTIFY a task of its own
//! awaiting [`Endpoint::send_request`], as `sipprov notify` and `device notify` do.
//!
//! ```text
//! cargo run --release -p sipprov-sip --example notify_load -- 127.0.0.1:5070 20000 500 batch
//! 20000 ok of 20000, 41234 per second
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use sipprov_sip::text::{push_decimal, push_ip};
use sipprov_sip::{BatchRequest, Endpoint, EndpointConfig, Request, Target};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: notify_load ADDR [COUNT=20000] [IN_FLIGHT=500] [MODE=batch|tasks]";
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let count: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let in_flight: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let mode = args.next().unwrap_or_else(|| "batch".into());
    let local: SocketAddr = if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse()?;
    let endpoint = Endpoint::bind(EndpointConfig { udp: Some(local), ..EndpointConfig::default() }).await?;
    let started = Instant::now();
    // Run from a worker task, as the server's campaigns are, not from the main thread.
    let ok = match mode.as_str() {
        "batch" => tokio::spawn(batch(endpoint, addr, count, in_flight)).await??,
        "tasks" => tokio::spawn(tasks(endpoint, addr, count, in_flight)).await??,
        other => return Err(format!("unknown mode {other:?}; {usage}").into()),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!("{ok} ok of {count}, {:.0} per second", count as f64 / seconds);
    Ok(())
}

/// Every NOTIFY through one batch; returns how many got a 2xx.
async fn batch(endpoint: Endpoint, addr: SocketAddr, count: usize, in_flight: usize) -> Result<usize, Error> {
    let (requests, requests_rx) = mpsc::channel(256);
    let (results_tx, mut results) = mpsc::channel(1024);
    let runner = tokio::spawn({
        let endpoint = endpoint.clone();
        async move { endpoint.run_batch(requests_rx, results_tx, in_flight).await }
    });
    let feeder = tokio::spawn(async move {
        for i in 0..count {
            let target = Target::udp(addr);
            let request = check_sync(&endpoint, &target, i)?;
            requests.send(BatchRequest { request, target, credentials: None, tag: () }).await?;
        }
        Ok::<_, Error>(())
    });
    let (mut ok, mut finished) = (0, Vec::new());
    while results.recv_many(&mut finished, 256).await > 0 {
        for done in finished.drain(..) {
            ok += usize::from(done.result.is_ok_and(|r| (200..300).contains(&r.status)));
        }
    }
    feeder.await??;
    runner.await?;
    Ok(ok)
}

/// Every NOTIFY in a task of its own; returns how many got a 2xx.
async fn tasks(endpoint: Endpoint, addr: SocketAddr, count: usize, in_flight: usize) -> Result<usize, Error> {
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut ok = 0usize;
    for i in 0..count {
        let permit = slots.clone().acquire_owned().await?;
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let target = Target::udp(addr);
            let request = check_sync(&endpoint, &target, i)?;
            let response = endpoint.send_request(request, target, None).await?;
            drop(permit);
            Ok::<_, Error>((200..300).contains(&response.status))
        });
        while let Some(done) = tasks.try_join_next() {
            ok += usize::from(matches!(done, Ok(Ok(true))));
        }
    }
    while let Some(done) = tasks.join_next().await {
        ok += usize::from(matches!(done, Ok(Ok(true))));
    }
    Ok(ok)
}

/// One check-sync NOTIFY as sipprov sends it (RFC 3265 NOTIFY, `Event: check-sync` as Asterisk and FreeSWITCH send it). The server reads each device's URI
/// from the inventory; here it is written from the index.
fn check_sync(endpoint: &Endpoint, target: &Target, i: usize) -> Result<Request, Error> {
    let mut uri = String::with_capacity(32);
    uri.push_str("sip:");
    push_decimal(&mut uri, i as u64);
    uri.push('@');
    push_ip(&mut uri, target.addr.ip());
    uri.push(':');
    push_decimal(&mut uri, u64::from(target.addr.port()));
    let mut from = String::with_capacity(48);
    from.push_str("\"sipprov\" <sip:sipprov@");
    push_ip(&mut from, endpoint.sent_by(target)?.ip());
    from.push('>');
    Ok(endpoint
        .request("NOTIFY", &uri, target)?
        .from(&from)
        .to(&uri)
        .header("Event", "check-sync;reboot=false")
        .header("Subscription-State", "terminated")
        .build())
}
