//! What each device costs in memory, counted rather than sampled: `DEVICES` devices like
//! `bench/scale.sh`'s (Yealink T46S, groups `g0`..`g19`, a SIP contact, four line settings)
//! loaded from a SQLite store into the inventory as `serve` loads them, then one fetch each
//! taken into the last-seen index, one access policy each and one change time each (what every
//! device that fetched leaves behind). A counting global allocator over the server's (mimalloc)
//! gives the live bytes after each step, as requested and as the allocator rounds them up to
//! its size classes (what the resident set pays). No wall clock: the figures are the same on a
//! loaded machine.
//!
//! ```text
//! cargo run --release -p sipprov-server --example device_memory -- [DEVICES=100000]
//! ```

use std::alloc::{GlobalAlloc, Layout};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicIsize, Ordering};

use sipprov_model::{Mac, Settings};
use sipprov_server::auth::Security;
use sipprov_server::cache::RenderCache;
use sipprov_server::config::SecurityConfig;
use sipprov_server::inventory::Inventory;
use sipprov_server::seen::SeenIndex;
use sipprov_store::{NewDevice, Store};

/// mimalloc (the server binary's allocator), counting the bytes live.
struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static USABLE: AtomicIsize = AtomicIsize::new(0);
static INNER: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// The bytes mimalloc set aside for an allocation: its size class (mimalloc's `mimalloc.h`).
    fn mi_usable_size(p: *const std::ffi::c_void) -> usize;
}

fn usable(ptr: *const u8) -> isize {
    // SAFETY: `ptr` is a live allocation of `INNER` (called right after it allocated, or right
    // before it frees).
    isize::try_from(unsafe { mi_usable_size(ptr.cast()) }).unwrap_or(isize::MAX)
}

fn size(layout: Layout) -> isize {
    isize::try_from(layout.size()).unwrap_or(isize::MAX)
}

// SAFETY: every call is passed to mimalloc unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promised for `layout`.
        let p = unsafe { INNER.alloc(layout) };
        if !p.is_null() {
            REQUESTED.fetch_add(size(layout), Ordering::Relaxed);
            USABLE.fetch_add(usable(p), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the caller promised for `layout`.
        let p = unsafe { INNER.alloc_zeroed(layout) };
        if !p.is_null() {
            REQUESTED.fetch_add(size(layout), Ordering::Relaxed);
            USABLE.fetch_add(usable(p), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(size(layout), Ordering::Relaxed);
        USABLE.fetch_sub(usable(ptr), Ordering::Relaxed);
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { INNER.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = usable(ptr);
        // SAFETY: as the caller promised for `ptr`, `layout` and `new_size`.
        let p = unsafe { INNER.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            REQUESTED.fetch_add(isize::try_from(new_size).unwrap_or(isize::MAX) - size(layout), Ordering::Relaxed);
            USABLE.fetch_add(usable(p) - before, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Live bytes now: (requested, as the allocator's size classes round them).
fn live() -> (isize, isize) {
    (REQUESTED.load(Ordering::Relaxed), USABLE.load(Ordering::Relaxed))
}

/// Device `i` as `bench/scale.sh` writes it into its CSV.
fn device(i: u32) -> NewDevice {
    let mac = 0x0015_6500_0000 + (u64::from(i) * 2_654_435_761) % (1 << 24);
    let b = mac.to_be_bytes();
    let settings = Settings::parse_assignments([
        format!("line.1.username={}", 10_000 + i).as_str(),
        format!("line.1.password=pw{i:08}").as_str(),
        "line.1.registrar=pbx.example.com",
        format!("line.1.display_name=User {i}").as_str(),
    ])
    .unwrap_or_default();
    NewDevice {
        mac: Mac::from_bytes([b[2], b[3], b[4], b[5], b[6], b[7]]),
        vendor: "yealink".into(),
        model: "T46S".into(),
        group: Some(format!("g{}", i % 20)),
        contact: Some(format!("sip:{i}@127.0.0.1:5060")),
        settings,
    }
}

/// Prints what a step added, per device.
fn report(what: &str, before: (isize, isize), devices: u32) {
    let after = live();
    let n = f64::from(devices.max(1));
    println!(
        "| {what} | {:.1} | {:.1} | {:.1} MB |",
        (after.0 - before.0) as f64 / n,
        (after.1 - before.1) as f64 / n,
        (after.1 - before.1) as f64 / 1e6
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let devices: u32 = std::env::args().nth(1).map_or(Ok(100_000), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("bench.db")).await?;
    for start in (0..devices).step_by(50_000) {
        let batch: Vec<NewDevice> = (start..devices.min(start + 50_000)).map(device).collect();
        store.insert_devices(&batch).await?;
    }
    let macs: Vec<Mac> = (0..devices).map(|i| device(i).mac).collect();
    println!("{devices} devices; bytes per device (requested, as allocated) and in all (as allocated)\n");
    println!("| what | requested | allocated | in all |");
    println!("|---|---|---|---|");

    let before = live();
    let seen = SeenIndex::default();
    let inventory = Inventory::load_taking_fetches(&store, |f| seen.merge(f)).await?;
    report("inventory as loaded", before, devices);

    let before = live();
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    for (n, mac) in macs.iter().enumerate() {
        let hash = format!("{:064x}", n);
        seen.record(*mac, 1_700_000_000_000, ip, &format!("{mac}.cfg"), &hash, Some("T46S"), Some("66.86.0.15"));
    }
    report("last-seen, one fetch each", before, devices);

    let before = live();
    let security = Security::new(&SecurityConfig::default());
    for mac in &macs {
        let device = inventory.device(*mac).ok_or("a device not loaded")?;
        security.policy(*mac, 0, || inventory.merged_settings(&device));
    }
    report("access policy, one each", before, devices);

    let before = live();
    let cache = RenderCache::default();
    for (n, mac) in macs.iter().enumerate() {
        cache.note_content(*mac, &format!("{mac}.cfg"), &format!("{:064x}", n), 1_700_000_000_000);
    }
    report("change time, one file each", before, devices);

    // Kept alive to here, so each step's figure is what it holds.
    drop((cache, security, seen, inventory, store));
    Ok(())
}
