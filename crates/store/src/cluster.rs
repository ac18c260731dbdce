//! The registry of nodes sharing this database, and what one node reads of another's work.
//!
//! Each node writes its row of `cluster_nodes` when it starts and its heartbeat every few
//! seconds; `sipprov cluster status` lists the rows and calls a node stale when its heartbeat
//! is old. Rows of nodes long gone are removed, so the table stays as small as the cluster.
//! The fetches other nodes recorded (`device_seen`) are read back incrementally by the time
//! they were seen, for the listings' last-seen column.

use sipprov_model::Mac;
use sqlx::Row;

use crate::{mac_column, FetchInfo, Store, StoreError};

/// How long a node's row is kept after its last heartbeat (ms): a day, so a node that died is
/// still shown as stale for a while, then forgotten.
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

/// What a node writes of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeHeartbeat {
    /// The node's identity (`name/pid/random`).
    pub id: String,
    /// Its configured name.
    pub name: String,
    /// The sipprov version it runs.
    pub version: String,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// Its provisioning HTTP address.
    pub http_addr: String,
    /// Its admin API address.
    pub api_addr: String,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterNode {
    /// What it wrote of itself.
    pub node: NodeHeartbeat,
    /// Its last heartbeat (ms since the epoch).
    pub heartbeat_at: i64,
}

impl Store {
    /// Writes (or refreshes) this node's row with `at` as its heartbeat, and forgets nodes
    /// silent for a day.
    pub async fn write_heartbeat(&self, node: &NodeHeartbeat, at: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO cluster_nodes (id, name, version, started_at, heartbeat_at, http_addr, api_addr) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&node.id)
        .bind(&node.name)
        .bind(&node.version)
        .bind(node.started_at)
        .bind(at)
        .bind(&node.http_addr)
        .bind(&node.api_addr)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM cluster_nodes WHERE heartbeat_at < $1")
            .bind(at - FORGET_AFTER_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes this node's row (a clean shutdown).
    pub async fn remove_node(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cluster_nodes WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Every node's row, by name then start time.
    pub async fn cluster_nodes(&self) -> Result<Vec<ClusterNode>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, version, started_at, heartbeat_at, http_addr, api_addr FROM cluster_nodes \
             ORDER BY name, started_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ClusterNode {
                    node: NodeHeartbeat {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        version: r.try_get("version")?,
                        started_at: r.try_get("started_at")?,
                        http_addr: r.try_get("http_addr")?,
                        api_addr: r.try_get("api_addr")?,
                    },
                    heartbeat_at: r.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }

    /// At most `limit` devices seen at or after `since` (ms), oldest first: what other nodes
    /// recorded since the last read (index `device_seen_at`).
    pub async fn seen_since(&self, since: i64, limit: i64) -> Result<Vec<(Mac, FetchInfo)>, StoreError> {
        let rows = sqlx::query(
            "SELECT mac, last_seen_at, last_ip, last_file, last_hash, reported_model, reported_firmware \
             FROM device_seen WHERE last_seen_at >= $1 ORDER BY last_seen_at LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .filter_map(|r| {
                let info = mac_column(r, "mac").and_then(|mac| crate::devices::fetch_info_from_row(r, mac));
                info.map(|i| i.map(|i| (i.mac, i))).transpose()
            })
            .collect()
    }
}
