//! The store's side of one fetch-log interval under steady polling, alone: `DEVICES` devices
//! each with an open fetch event, raised once per interval ([`IntervalEvent::Extend`]), for
//! `INTERVALS` intervals, in a SQLite database in a temporary directory. What
//! `bench/fetch-interval-instructions.sh` counts with callgrind (instructions do not depend on
//! what else the machine runs); it prints the wall time per interval too.
//!
//! ```text
//! cargo run --release -p sipprov-store --example fetch_interval -- [DEVICES=10000] [INTERVALS=20]
//! ```

use std::time::Instant;

#[path = "common/mod.rs"]
mod common;

use sipprov_model::{EventKind, Mac};
use sipprov_store::{EventText, IntervalEvent, NewEvent, Store};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: u32 = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let intervals: i64 = args.next().map_or(Ok(20), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("bench.db")).await?.background_writer().await?;
    let macs = common::add_yealink_devices(&store, devices).await?;
    let t0 = sipprov_store::now_ms() + 1;
    let event = |mac: Mac| NewEvent {
        mac,
        at: t0,
        kind: EventKind::Fetch,
        // What the fetch log writes for a Yealink phone's config file.
        detail: serde_json::json!({
            "file": format!("{mac}.cfg"), "ip": "192.0.2.10", "status": 200, "auth": "none",
            "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "model": "T46S", "firmware": "66.86.0.15",
        }),
    };
    let first: Vec<IntervalEvent> = macs.iter().map(|m| IntervalEvent::New(EventText::from(&event(*m)))).collect();
    let unused = |i: usize| macs.get(i).map(|m| EventText::from(&event(*m)));
    let ids = store.record_fetch_interval(&first, &unused).await?;
    let started = Instant::now();
    for round in 1..=intervals {
        let extend: Vec<IntervalEvent> = macs
            .iter()
            .zip(&ids)
            .map(|(mac, id)| IntervalEvent::Extend {
                id: *id,
                count: 1 + round as u64 * 4,
                last_at: t0 + round * 1000,
                mac: *mac,
                at: t0,
            })
            .collect();
        let written = store.record_fetch_interval(&extend, &unused).await?;
        if written != ids {
            return Err("an extension was appended instead".into());
        }
    }
    let per = started.elapsed() / u32::try_from(intervals.max(1))?;
    println!("{devices} devices, {intervals} intervals: {:.1} ms per interval", per.as_secs_f64() * 1000.0);
    Ok(())
}
