//! The node registry: each node's heartbeat in `cluster_nodes`, and the status built from it.

use std::time::Duration;

use sipprov_api::{ClusterLease, ClusterNodeInfo, ClusterStatus};
use sipprov_store::{Backend, NodeHeartbeat, Store, StoreError};

/// How often a node writes its heartbeat.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// A node whose heartbeat is older than this (ms) is shown stale: five heartbeats missed,
/// which a loaded machine does not miss by accident.
pub const STALE_AFTER_MS: i64 = 10_000;

/// Writes `node`'s heartbeat now and every [`INTERVAL`]; a failure (database unreachable) is
/// logged once and retried at the next beat. Never returns.
pub async fn run(store: Store, node: NodeHeartbeat) {
    let mut failing = false;
    loop {
        match store.write_heartbeat(&node, sipprov_store::now_ms()).await {
            Ok(()) if failing => {
                tracing::info!("heartbeat written again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "heartbeat not written; retrying every beat");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Every node of the registry, alive or stale, with the one answering marked, and the leases
/// they hold.
pub async fn status(store: &Store) -> Result<ClusterStatus, StoreError> {
    let now = sipprov_store::now_ms();
    let nodes = store
        .cluster_nodes()
        .await?
        .into_iter()
        .map(|n| ClusterNodeInfo {
            alive: now - n.heartbeat_at <= STALE_AFTER_MS,
            this_node: n.node.id == store.origin(),
            name: n.node.name,
            id: n.node.id,
            version: n.node.version,
            started_at: n.node.started_at,
            heartbeat_at: n.heartbeat_at,
            http_addr: n.node.http_addr,
            api_addr: n.node.api_addr,
        })
        .collect();
    let backend = match store.backend() {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let mut leases: Vec<ClusterLease> = store
        .leases()
        .await?
        .into_iter()
        .map(|l| ClusterLease { what: l.what, holder: l.holder, expires_at: Some(l.expires_at) })
        .collect();
    // The PnP responder's hold is an advisory lock: it has no expiry, it ends with its holder's
    // connection; a segment nobody holds now is not listed.
    for responder in store.pnp_responders().await? {
        if let Some(holder) = responder.holder {
            leases.push(ClusterLease {
                what: format!("pnp responder {}", responder.segment),
                holder,
                expires_at: None,
            });
        }
    }
    leases.sort_by(|a, b| a.what.cmp(&b.what));
    Ok(ClusterStatus { backend: backend.to_string(), stale_after_ms: STALE_AFTER_MS, nodes, leases })
}
