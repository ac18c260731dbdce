//! The security state the nodes of one PostgreSQL database share, kept in step off the request
//! path: the cluster's failure count per source, the blocks it decides, and the pruning of the
//! shared tables (Digest nonce counts, sources).
//!
//! - Every failure and every forgiveness the local [`Throttle`] counts is also sent through a
//!   bounded queue to one task that counts it in the database
//!   ([`sipprov_store::Store::count_failure`]); when the cluster's count passes `max_failures`
//!   the source is blocked here at once and, within [`POLL_EVERY`], on every other node, which
//!   reads the blocks in force from the database. A full queue drops events (the local count
//!   still holds).
//! - A success's forgiveness can overtake the challenge it answers when the two reached
//!   different nodes; one that finds nothing to take back is tried once more a moment later.
//! - Every [`PRUNE_EVERY`], expired nonces and sources whose window or block passed are deleted;
//!   when the nonce table still holds [`MAX_TRACKED`] live nonces, new ones are refused as stale
//!   until it shrinks, as a single node does with its own table.
//!
//! Node clocks are compared through the timestamps written (windows, blocks, nonce lifetimes):
//! nodes of one cluster are expected to keep time with NTP.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sipprov_sip::logsafe::LogLimiter;
use sipprov_store::{SharedFailure, Store, ThrottleLimits};
use tokio::sync::{mpsc, Semaphore};

use super::digest::MAX_TRACKED;
use super::throttle::{SharedEvent, Throttle, MAX_SOURCES};
use super::Security;

/// How often the blocks in force are read: how late a node learns a block another node decided.
pub const POLL_EVERY: Duration = Duration::from_millis(400);
/// How far back each read of the blocks reaches before the previous read.
const SINCE_MARGIN_MS: i64 = 5_000;
/// How often the shared tables are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(15);
/// Failures and forgivenesses waiting to be counted in the database.
const QUEUE: usize = 4096;
/// How long a forgiveness that found nothing waits before its one retry.
const FORGIVE_RETRY: Duration = Duration::from_millis(300);
/// Forgiveness retries waiting at once; more are dropped.
const MAX_RETRIES: usize = 256;

static ERROR_LOG: LogLimiter = LogLimiter::new(5, Duration::from_secs(60));

/// Starts sharing `security`'s throttle and nonce state through `store` (PostgreSQL); the tasks
/// run for as long as the process.
pub fn spawn(store: Store, security: Arc<Security>) {
    let (events, queue) = mpsc::channel(QUEUE);
    security.throttle.share(events);
    tokio::spawn(count_events(store.clone(), security.clone(), queue));
    tokio::spawn(poll_blocks(store.clone(), security.clone()));
    tokio::spawn(prune(store, security));
}

fn limits(throttle: &Throttle) -> ThrottleLimits {
    let l = throttle.limits();
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    ThrottleLimits { max_failures: l.max_failures, window_ms: ms(l.window), block_ms: ms(l.block) }
}

fn log_error(what: &str, e: &sipprov_store::StoreError) {
    if let Some(suppressed) = ERROR_LOG.allow() {
        tracing::warn!(error = %e, suppressed, "cannot {what} in the database; this node counts on its own meanwhile");
    }
}

/// Counts each queued event in the database, in order.
async fn count_events(store: Store, security: Arc<Security>, mut queue: mpsc::Receiver<SharedEvent>) {
    let limits = limits(&security.throttle);
    let retries = Arc::new(Semaphore::new(MAX_RETRIES));
    while let Some(event) = queue.recv().await {
        let now = sipprov_store::now_ms();
        match event {
            SharedEvent::Fail(key, mac) => match store.count_failure(&key.to_string(), mac, now, limits).await {
                Ok(SharedFailure::NowBlocked { until }) => {
                    let remaining = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
                    security.throttle.block_from_cluster(key, remaining);
                    let cfg = &security.config;
                    tracing::warn!(peer = %key, failures = cfg.max_failures, window_secs = cfg.failure_window_secs,
                        block_secs = cfg.block_secs, "source blocked on every node: too many failures across the cluster");
                }
                Ok(SharedFailure::Counted) => {}
                Err(e) => log_error("count a failure", &e),
            },
            SharedEvent::Forgive(key, mac) => {
                match store.forgive_failure(&key.to_string(), mac, now, limits.window_ms).await {
                    Ok(true) => {}
                    Ok(false) => retry_forgive(&store, &retries, key, mac, limits.window_ms),
                    Err(e) => log_error("take back a failure", &e),
                }
            }
        }
    }
}

/// Tries a forgiveness once more a moment later: the challenge it answers may have been
/// counted by another node that has not written it yet.
fn retry_forgive(store: &Store, retries: &Arc<Semaphore>, key: IpAddr, mac: sipprov_model::Mac, window_ms: i64) {
    let Ok(permit) = retries.clone().try_acquire_owned() else { return };
    let store = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(FORGIVE_RETRY).await;
        if let Err(e) = store.forgive_failure(&key.to_string(), mac, sipprov_store::now_ms(), window_ms).await {
            log_error("take back a failure", &e);
        }
        drop(permit);
    });
}

/// Applies here, every [`POLL_EVERY`], the blocks in force in the database.
async fn poll_blocks(store: Store, security: Arc<Security>) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Every block in force at first, then the blocks begun since the last read (less a margin
    // for clocks a little apart and for a block written while the last read ran).
    let mut since = 0;
    loop {
        tick.tick().await;
        let now = sipprov_store::now_ms();
        let blocked = match store.blocked_sources(now, since, MAX_SOURCES as i64).await {
            Ok(b) => {
                since = now.saturating_sub(SINCE_MARGIN_MS);
                b
            }
            Err(e) => {
                log_error("read the blocked sources", &e);
                continue;
            }
        };
        for (source, until) in blocked {
            let Ok(key) = source.parse::<IpAddr>() else { continue };
            let remaining = Duration::from_millis(u64::try_from(until - now).unwrap_or(0));
            if security.throttle.block_from_cluster(key, remaining) {
                tracing::info!(peer = %key, "source blocked by another node: refused here too");
            }
        }
    }
}

/// Deletes what the shared tables no longer need, every [`PRUNE_EVERY`].
async fn prune(store: Store, security: Arc<Security>) {
    let limits = limits(&security.throttle);
    let lifetime = i64::try_from(security.digest.lifetime_secs()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = sipprov_store::now_ms();
        if let Err(e) = store.prune_failures(now, limits.window_ms, MAX_SOURCES as i64).await {
            log_error("prune the failure counts", &e);
        }
        // A minute's slack for clocks a little apart: a row goes only once every node finds
        // its nonce stale (deleting it earlier would let its headers be replayed).
        match store.prune_nonces(now / 1000 - lifetime.saturating_add(60)).await {
            Ok(left) => security.digest.set_shared_full(left >= MAX_TRACKED as i64),
            Err(e) => log_error("prune the Digest nonce counts", &e),
        }
    }
}
