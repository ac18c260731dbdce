//! The store's side of a campaign's confirmation check, alone: a campaign over `DEVICES`
//! devices, every one notified (its outcome written before any fetch, as on a quiet fleet), then
//! the first `FETCHED` of them recorded as fetching their own file, then one
//! [`Store::confirm_fetched`] over the span of those fetches, in a SQLite database in a temporary
//! directory. Run under callgrind with the same devices and N, then 2N fetched, the difference
//! over N is the marginal count per confirmed device of a check, with none of the SIP side and
//! none of the HTTP side of a whole campaign.
//!
//! ```text
//! cargo run --release -p sipprov-store --example campaign_confirmations -- [DEVICES=8000] [FETCHED=DEVICES] [CHECK=1]
//! ```
//!
//! With `CHECK` 0 it stops before the check: under callgrind, the difference between a run
//! with the check and one without is the check's count alone (the writes before it are the
//! same in both).

use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use sipprov_store::{FetchInfo, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: u32 = args.next().map_or(Ok(8_000), |a| a.parse())?;
    let fetched: usize = args.next().map_or(Ok(devices as usize), |a| a.parse())?;
    let check: u8 = args.next().map_or(Ok(1), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    // `CONFIRM_DB` keeps the database for a look at its query plans.
    let path = std::env::var_os("CONFIRM_DB").map_or_else(|| dir.path().join("bench.db"), Into::into);
    let store = Store::open_sqlite(&path).await?;
    let macs = common::add_yealink_devices(&store, devices).await?;
    let campaign = store.create_campaign(&common::campaign_over_all(), &macs).await?;
    let notified_at = sipprov_store::now_ms();
    for chunk in macs.chunks(500) {
        let results = common::answered_ok(chunk, notified_at);
        store.record_notify_results(campaign.id, &results).await?;
    }
    // The fetches a wrk-like fleet makes after its NOTIFY, one millisecond apart.
    let since = notified_at + 1;
    let fetches: Vec<FetchInfo> = macs[..fetched.min(macs.len())]
        .iter()
        .enumerate()
        .map(|(n, mac)| FetchInfo {
            mac: *mac,
            at: since + n as i64,
            ip: "127.0.0.1".into(),
            file: format!("{mac}.cfg"),
            hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
            reported_model: Some("T46S".into()),
            reported_firmware: Some("66.86.0.15".into()),
        })
        .collect();
    for chunk in fetches.chunks(4_096) {
        store.record_fetches(chunk).await?;
    }
    if check == 0 {
        println!("{} fetches recorded, no check", fetches.len());
        return Ok(());
    }
    let started = Instant::now();
    let confirmed = store.confirm_fetched(campaign.id, since, since + fetches.len() as i64).await?;
    let per = started.elapsed().as_secs_f64() / confirmed.len().max(1) as f64;
    println!("{} of {} fetches confirmed in one check: {:.2} µs each", confirmed.len(), fetches.len(), per * 1e6);
    Ok(())
}
