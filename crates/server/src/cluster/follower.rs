//! The follower: applies the changes other nodes made to this node's in-memory copies.
//!
//! A listening connection (`LISTEN sipprov_changes`, PostgreSQL) wakes the follower when a
//! change commits; without a notification it looks anyway every [`POLL`]. Each wake-up reads
//! the feed after the last id applied, in order, and reloads from the store what each row names
//! (the row carries no value, so applying one twice, or late, is harmless). The node's own rows
//! are skipped: it updated its copies itself when it made the change.
//!
//! A full resync (everything reloaded, then reading on from the feed's head as it was before
//! the reload) follows a lost listening connection (notifications may have been missed while it
//! was down, or the database itself was), a position older than the feed keeps, and a kind of
//! change this version does not know. Every read is bounded (500 rows at a time).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sipprov_model::Mac;
use sipprov_store::{Change, ChangeKind, FeedRead, StoreError};
use tokio::sync::Notify;

use super::Replicas;
use crate::templates::Templates;

/// How often the feed is read when no notification came.
pub const POLL: Duration = Duration::from_millis(500);

/// How often the fetches other nodes recorded are read back (listings' last-seen).
pub const SEEN_REFRESH: Duration = Duration::from_millis(1500);

/// Most feed rows read at once.
const BATCH: i64 = 500;

/// Most `device_seen` rows read at once.
const SEEN_BATCH: i64 = 5000;

/// How far back each read of `device_seen` starts before the newest time seen (ms): nodes'
/// clocks differ a little, and a fetch written late by another node's buffered fetch log must
/// not be skipped.
const SEEN_OVERLAP_MS: i64 = 10_000;

/// Runs the follower from feed position `start` (read before the copies were loaded): the
/// listening task, the feed reader and the last-seen refresh. Never returns.
pub async fn run(replicas: Arc<Replicas>, start: i64) {
    let wake = Arc::new(Notify::new());
    let lost = Arc::new(AtomicBool::new(false));
    tokio::spawn(listen(replicas.clone(), wake.clone(), lost.clone()));
    tokio::spawn(refresh_seen(replicas.clone()));
    let mut position = start;
    let mut failing = false;
    loop {
        let _ = tokio::time::timeout(POLL, wake.notified()).await;
        let result = async {
            if lost.swap(false, Ordering::AcqRel) {
                position = resync(&replicas).await.inspect_err(|_| lost.store(true, Ordering::Release))?;
            }
            catch_up(&replicas, &mut position).await
        }
        .await;
        match result {
            Ok(()) if failing => {
                tracing::info!(position, "change feed readable again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "change feed unreadable: serving from memory until the database answers");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Keeps a listening connection open, waking the reader on each notification; marks `lost`
/// when the connection drops (or is re-established after a failure), so the reader resyncs.
async fn listen(replicas: Arc<Replicas>, wake: Arc<Notify>, lost: Arc<AtomicBool>) {
    let mut first = true;
    loop {
        match replicas.store.listen_changes().await {
            Ok(Some(mut listener)) => {
                if !first {
                    tracing::info!("change feed listener connected again");
                    lost.store(true, Ordering::Release);
                    wake.notify_one();
                }
                first = false;
                loop {
                    match listener.wait().await {
                        Ok(true) => wake.notify_one(),
                        Ok(false) => {
                            tracing::warn!("change feed listener lost its connection; reconnecting, then resync");
                            lost.store(true, Ordering::Release);
                            wake.notify_one();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "change feed listener failed; reconnecting, then resync");
                            lost.store(true, Ordering::Release);
                            break;
                        }
                    }
                }
            }
            Ok(None) => return,
            Err(e) => {
                if first {
                    tracing::warn!(error = %e, "change feed listener cannot connect; polling meanwhile");
                }
                first = false;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Applies every row after `position`, moving it past each row applied.
async fn catch_up(replicas: &Replicas, position: &mut i64) -> Result<(), StoreError> {
    loop {
        match replicas.store.changes_after(*position, BATCH).await? {
            FeedRead::Changes(changes) if changes.is_empty() => return Ok(()),
            FeedRead::Changes(changes) => {
                for change in &changes {
                    if change.origin != replicas.store.origin() {
                        apply(replicas, change).await?;
                    }
                    *position = change.id;
                }
            }
            FeedRead::Gap { head } => {
                tracing::warn!(position = *position, head, "change feed pruned past this node's position: full resync");
                *position = resync(replicas).await?;
            }
        }
    }
}

/// Reloads what `change` names into the in-memory copies.
async fn apply(replicas: &Replicas, change: &Change) -> Result<(), StoreError> {
    let r = replicas;
    tracing::debug!(id = change.id, kind = change.kind.as_str(), key = %change.key, origin = %change.origin, "applying change");
    match change.kind {
        ChangeKind::Device => match mac_of(change) {
            Some(mac) => reload_device(r, mac).await?,
            None => r.inventory.reload(&r.store).await?,
        },
        ChangeKind::Devices => {
            r.inventory.reload(&r.store).await?;
            r.cache.invalidate_all();
        }
        ChangeKind::Group => {
            if let Some(group) = r.store.get_group(&change.key).await? {
                r.inventory.put_group(&group.name, group.settings);
            }
            r.cache.invalidate_all();
        }
        ChangeKind::Global => {
            r.inventory.set_global(r.store.global_settings().await?);
            r.cache.invalidate_all();
        }
        ChangeKind::Template => templates(r).reload().await?,
        ChangeKind::Directory => r.directories.reload().await?,
        ChangeKind::Access => {
            if let Some(mac) = mac_of(change) {
                r.security.windows.replace(mac, &r.store.device_access(mac).await?);
                r.cache.invalidate_device(mac);
            }
        }
        ChangeKind::Token => r.tokens.reload().await?,
        ChangeKind::User => r.users.revoke(&change.key),
        ChangeKind::ResourceFile => {
            r.resources.reload(&r.store).await?;
            r.cache.invalidate_all();
        }
        ChangeKind::FirmwarePins => r.pins.replace(r.store.firmware_pins().await?),
        ChangeKind::Unknown => {
            resync(r).await?;
        }
    }
    Ok(())
}

/// One device as the store has it now: replaced, or forgotten when deleted.
async fn reload_device(r: &Replicas, mac: Mac) -> Result<(), StoreError> {
    match r.store.get_device(mac).await? {
        Some(device) => {
            if let Some(group) = &device.group {
                r.inventory.ensure_group(group);
            }
            r.inventory.put_device(device);
        }
        None => {
            r.inventory.remove_device(mac);
            r.security.windows.forget(mac);
            r.seen.forget(mac);
        }
    }
    r.cache.invalidate_device(mac);
    Ok(())
}

/// Reloads everything; answers the feed position to read on from (the head as it was before
/// the reload: what changed during it is read again, harmlessly).
pub async fn resync(r: &Replicas) -> Result<i64, StoreError> {
    let head = r.store.change_feed_head().await?;
    r.inventory.reload(&r.store).await?;
    r.tokens.reload().await?;
    r.directories.reload().await?;
    r.resources.reload(&r.store).await?;
    r.pins.replace(r.store.firmware_pins().await?);
    reload_windows(r).await?;
    // Installs the overrides and drops the whole render cache.
    templates(r).reload().await?;
    r.cache.invalidate_all();
    tracing::info!(head, devices = r.inventory.len(), "full resync from the database done");
    Ok(head)
}

/// The first-fetch windows worth keeping and every generated credential, as at start.
async fn reload_windows(r: &Replicas) -> Result<(), StoreError> {
    let windows = &r.security.windows;
    if r.security.config.first_fetch_window_secs > 0 {
        let since = r.security.unlocks_worth_keeping_since(sipprov_store::now_ms());
        for (mac, at) in r.store.unlocks_since(since).await? {
            windows.unlock(mac, at);
        }
        for (mac, at) in r.store.first_fetches_since(since).await? {
            windows.used(mac, at);
        }
    }
    for (mac, credentials) in r.store.generated_credentials().await? {
        windows.set_generated(mac, credentials);
    }
    Ok(())
}

fn templates(r: &Replicas) -> Templates {
    Templates::new(r.store.clone(), r.files.clone(), r.inventory.clone())
}

fn mac_of(change: &Change) -> Option<Mac> {
    change.key.parse().ok()
}

/// Reads back, every [`SEEN_REFRESH`], the fetches recorded since the last read (by any
/// node) into the index the listings read. Each read is bounded; a busy fleet is read in
/// steps, newest time last.
async fn refresh_seen(replicas: Arc<Replicas>) {
    let mut since = sipprov_store::now_ms() - SEEN_OVERLAP_MS;
    loop {
        tokio::time::sleep(SEEN_REFRESH).await;
        // Full batches are read back to back: one batch per pause would fall further behind
        // for good once the nodes record more than a batch of fetches per pause.
        loop {
            match replicas.store.seen_since(since, SEEN_BATCH).await {
                Ok(rows) => {
                    let full = rows.len() as i64 >= SEEN_BATCH;
                    let newest = rows.iter().map(|(_, info)| info.at).max();
                    for (_, info) in rows {
                        replicas.seen.merge(info);
                    }
                    since = match newest {
                        // A full batch: read on from its newest time (rows at that very time
                        // are read again, harmlessly), at once. A batch of one single
                        // millisecond cannot move on: wait for the next pause.
                        Some(at) if full && at > since => {
                            since = at;
                            continue;
                        }
                        Some(at) if full => at,
                        Some(at) => since.max(at - SEEN_OVERLAP_MS),
                        None => since,
                    };
                }
                Err(e) => tracing::debug!(error = %e, "last-seen refresh failed; next try soon"),
            }
            break;
        }
    }
}
