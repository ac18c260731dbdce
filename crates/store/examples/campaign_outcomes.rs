//! The store's side of a campaign's outcomes, alone: a campaign over `DEVICES` devices, the
//! first `OUTCOMES` of them given their NOTIFY outcome and `notify` history event in batches of
//! `BATCH` (one transaction each, [`Store::record_notify_results_with_events`], on a writer
//! connection of its own as the campaign's is), in a SQLite database in a temporary directory.
//! Run under callgrind with the same devices and N, then 2N outcomes, the difference over N is
//! the marginal count per outcome of the write path, with none of the SIP side and none of the
//! time-dependent confirmation checks of a whole campaign.
//!
//! ```text
//! cargo run --release -p sipprov-store --example campaign_outcomes -- [DEVICES=4000] [OUTCOMES=DEVICES] [BATCH=500]
//! ```

use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use sipprov_model::EventKind;
use sipprov_store::{EventText, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: u32 = args.next().map_or(Ok(4_000), |a| a.parse())?;
    let outcomes: usize = args.next().map_or(Ok(devices as usize), |a| a.parse())?;
    let batch: usize = args.next().map_or(Ok(500), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("bench.db")).await?;
    let macs = common::add_yealink_devices(&store, devices).await?;
    let campaign = store.create_campaign(&common::campaign_over_all(), &macs).await?;
    let writer = store.own_writer().await?;
    let started = Instant::now();
    let outcomes = outcomes.min(macs.len());
    for chunk in macs[..outcomes].chunks(batch.max(1)) {
        let at = sipprov_store::now_ms();
        let results = common::answered_ok(chunk, at);
        let events: Vec<EventText> = chunk
            .iter()
            .map(|mac| EventText {
                mac: *mac,
                at,
                kind: EventKind::Notify,
                detail: format!(
                    "{{\"result\":\"ok\",\"status\":200,\"reason\":\"OK\",\"sent_to\":\"udp:127.0.0.1:5060\",\
                     \"event\":\"check-sync;reboot=false\",\"campaign\":{}}}",
                    campaign.id
                ),
            })
            .collect();
        writer.record_notify_results_with_events(campaign.id, &results, &events).await?;
    }
    let per = started.elapsed().as_secs_f64() / outcomes.max(1) as f64;
    println!("{outcomes} outcomes in batches of {batch}: {:.2} µs each", per * 1e6);
    Ok(())
}
