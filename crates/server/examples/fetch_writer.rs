//! The fetch log's side of steady polling, alone: `DEVICES` known devices each fetch their
//! cached config file `FETCHES` times per round (as the request path records them, with a
//! Yealink User-Agent's model and firmware), for `ROUNDS` rounds, into a SQLite database in a
//! temporary directory. Each round is one interval of the writer, which the example waits for
//! (it polls the last device's history); with `flush` as the fifth argument each round ends with
//! a flush instead, which writes the last-seen and fetched rows of `device_files` too (under load they
//! follow every 10 s). Run under callgrind with `--separate-threads=yes` to count the request
//! path's recording (the main thread), the writer's thread (`sipprov-fetchlo`) and SQLite's
//! workers apart.
//!
//! ```text
//! cargo run --release -p sipprov-server --example fetch_writer -- [DEVICES=10000] [ROUNDS=5] [FETCHES=5] [tick|flush]
//! ```

use std::sync::Arc;

use sipprov_model::{Mac, Settings};
use sipprov_server::cache::Served;
use sipprov_server::config::FetchLogConfig;
use sipprov_server::fetchlog::{Fetch, FetchLog, Record};
use sipprov_server::metrics::Metrics;
use sipprov_server::seen::SeenIndex;
use sipprov_store::{NewDevice, Store};

/// The server binary's allocator (`sipprov`'s default feature): the writer's work is mostly
/// allocation, which glibc's malloc counts at several times the instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: u32 = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let rounds: i64 = args.next().map_or(Ok(5), |a| a.parse())?;
    let fetches: i64 = args.next().map_or(Ok(5), |a| a.parse())?;
    let flush = args.next().is_some_and(|a| a == "flush");
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("bench.db")).await?;
    let macs: Vec<Mac> =
        (0..devices).map(|n| Mac::from_bytes([0, 0x15, 0x65, (n >> 16) as u8, (n >> 8) as u8, n as u8])).collect();
    let new_devices: Vec<NewDevice> = macs
        .iter()
        .map(|m| NewDevice {
            mac: *m,
            vendor: "yealink".into(),
            model: "T46S".into(),
            group: None,
            contact: None,
            settings: Settings::new(),
        })
        .collect();
    store.insert_devices(&new_devices).await?;
    // One cached rendering per device, as the render cache holds them.
    let served: Vec<Arc<Served>> = macs
        .iter()
        .map(|m| {
            let hash = format!("{:064x}", m.as_u64());
            Arc::new(Served::new(format!("{m}.cfg"), b"#!version:1.0.0.1\n".to_vec(), "text/plain", hash, 0))
        })
        .collect();
    // Written at the writer's first tick after a round (its shortest interval), or at a flush;
    // the last-seen rows only at a flush.
    let interval_ms = if flush { 60_000 } else { 10 };
    let config = FetchLogConfig { interval_ms, last_seen_interval_ms: 600_000, ..FetchLogConfig::default() };
    let log = FetchLog::spawn(
        store.background_writer().await?,
        Arc::new(Metrics::default()),
        &config,
        Arc::new(SeenIndex::default()),
    );
    let ip = "192.0.2.10".parse()?;
    // The round before those counted opens every device's event.
    for round in 0..=rounds {
        let at = sipprov_store::now_ms();
        for n in 0..fetches {
            for (mac, served) in macs.iter().zip(&served) {
                log.record(Record::Fetch(Fetch {
                    mac: *mac,
                    at: at + n,
                    ip,
                    content: served.id.clone(),
                    file: None,
                    status: 200,
                    auth: "none",
                    model: Some("T46S".into()),
                    firmware: Some("66.86.0.15".into()),
                }));
            }
        }
        if flush {
            log.flush().await;
        } else {
            wait_for_count(&store, macs[macs.len() - 1], (round + 1) * fetches).await?;
        }
        if round == 0 {
            // Marks where the counted rounds begin, for callgrind's dumps (a no-op otherwise).
            println!("opened {devices} events");
        }
    }
    println!("{devices} devices, {rounds} rounds of {fetches} fetches each");
    Ok(())
}

/// Waits until `mac`'s latest fetch event counts `count` fetches: the interval is written (one
/// transaction), every 20 ms a read of one device's history.
async fn wait_for_count(store: &Store, mac: Mac, count: i64) -> Result<(), Box<dyn std::error::Error>> {
    for _ in 0..30_000 {
        let events = store.device_events(mac, 1).await?;
        // A count of one is not written into the detail.
        let written = events.last().map_or(0, |e| e.detail.get("count").and_then(|c| c.as_i64()).unwrap_or(1));
        if written >= count {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Err("the interval was not written within 10 minutes".into())
}
