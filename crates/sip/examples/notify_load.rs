//! Sends COUNT check-sync NOTIFYs to one address with at most IN_FLIGHT awaiting their final
//! response, through the SIP stack alone (no inventory, no database), and prints how many got
//! a 2xx and the rate. `bench/sip.sh` runs it against SIPp phones next to SIPp itself sending
//! the same NOTIFYs, to measure the stack apart from the campaign bookkeeping.
//!
//! ```text
//! cargo run --release -p sipprov-sip --example notify_load -- 127.0.0.1:5070 20000 500
//! 20000 ok of 20000, 41234 per second
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use sipprov_sip::{Endpoint, EndpointConfig, Target};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: notify_load ADDR [COUNT=20000] [IN_FLIGHT=500]";
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    let count: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let in_flight: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let local: SocketAddr = if addr.is_ipv4() { "127.0.0.1:0" } else { "[::1]:0" }.parse()?;
    let endpoint = Endpoint::bind(EndpointConfig { udp: Some(local), ..EndpointConfig::default() }).await?;
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut tasks = JoinSet::new();
    let mut ok = 0usize;
    let started = Instant::now();
    for i in 0..count {
        let permit = slots.clone().acquire_owned().await?;
        let endpoint = endpoint.clone();
        tasks.spawn(async move {
            let result = notify(&endpoint, addr, i).await;
            drop(permit);
            result
        });
        while let Some(done) = tasks.try_join_next() {
            ok += usize::from(matches!(done, Ok(Ok(true))));
        }
    }
    while let Some(done) = tasks.join_next().await {
        ok += usize::from(matches!(done, Ok(Ok(true))));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("{ok} ok of {count}, {:.0} per second", count as f64 / seconds);
    Ok(())
}

/// One check-sync NOTIFY as sipprov sends it (seed 001 F1); true on a 2xx.
async fn notify(endpoint: &Endpoint, addr: SocketAddr, i: usize) -> Result<bool, Error> {
    let target = Target::udp(addr);
    let uri = format!("sip:{i}@{addr}");
    let from = format!("\"sipprov\" <sip:sipprov@{}>", endpoint.sent_by(&target)?.ip());
    let request = endpoint
        .request("NOTIFY", &uri, &target)?
        .from(&from)
        .to(&uri)
        .header("Event", "check-sync;reboot=false")
        .header("Subscription-State", "terminated")
        .build();
    let response = endpoint.send_request(request, target, None).await?;
    Ok((200..300).contains(&response.status))
}
