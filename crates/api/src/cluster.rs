//! The nodes serving one fleet from one PostgreSQL database (`GET /api/v1/cluster`).

use serde::{Deserialize, Serialize};

/// `GET /api/v1/cluster`: every node that wrote a heartbeat, alive or stale.
///
/// ```
/// use sipprov_api::ClusterStatus;
/// let s: ClusterStatus = serde_json::from_str(
///     r#"{"backend":"postgres","stale_after_ms":15000,"nodes":[]}"#).unwrap();
/// assert!(s.nodes.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// The database the nodes share: `postgres` (a cluster) or `sqlite` (one node).
    pub backend: String,
    /// A node whose last heartbeat is older than this (ms) is shown stale.
    pub stale_after_ms: i64,
    /// The nodes, by name then start time.
    pub nodes: Vec<ClusterNodeInfo>,
}

/// One node of [`ClusterStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterNodeInfo {
    /// The name it was configured with (`[cluster] node_name`, by default the host name).
    pub name: String,
    /// Its identity, `name/pid/random`: a restarted node is a new one.
    pub id: String,
    /// The sipprov version it runs.
    pub version: String,
    /// When it started (ms since the epoch).
    pub started_at: i64,
    /// Its last heartbeat (ms since the epoch).
    pub heartbeat_at: i64,
    /// Its provisioning HTTP address (as it bound it).
    pub http_addr: String,
    /// Its admin API address (as it bound it).
    pub api_addr: String,
    /// False when its heartbeat is older than `stale_after_ms` (stopped, killed or cut off).
    pub alive: bool,
    /// True for the node that answered.
    pub this_node: bool,
}
