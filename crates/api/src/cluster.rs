//! The nodes serving one fleet from one PostgreSQL database (`GET /api/v1/cluster`).

use serde::{Deserialize, Serialize};

/// `GET /api/v1/cluster`: every node that wrote a heartbeat, alive or stale, and what each
/// holds.
///
/// ```
/// use sipprov_api::ClusterStatus;
/// let s: ClusterStatus = serde_json::from_str(
///     r#"{"backend":"postgres","stale_after_ms":15000,"nodes":[],"leases":[]}"#).unwrap();
/// assert!(s.nodes.is_empty() && s.leases.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    /// The database the nodes share: `postgres` (a cluster) or `sqlite` (one node).
    pub backend: String,
    /// A node whose last heartbeat is older than this (ms) is shown stale.
    pub stale_after_ms: i64,
    /// The nodes, by name then start time.
    pub nodes: Vec<ClusterNodeInfo>,
    /// What the nodes hold: campaign chunks and confirmation watchers, rollouts, the
    /// Plug-and-Play responder of each LAN segment; by `what`.
    pub leases: Vec<ClusterLease>,
}

/// One thing a node holds, in [`ClusterStatus`].
///
/// ```
/// use sipprov_api::ClusterLease;
/// let l: ClusterLease = serde_json::from_str(
///     r#"{"what":"campaign 3 chunk 5","holder":"prov-a/41/0badcafe","expires_at":1767225600000}"#).unwrap();
/// assert_eq!(l.expires_at, Some(1767225600000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterLease {
    /// What is held: `campaign 3 chunk 5`, `campaign:3` (its confirmation watcher),
    /// `rollout:2`, `pnp responder <segment>`.
    pub what: String,
    /// The holder's node id (`name/pid/random`, as in [`ClusterNodeInfo::id`]).
    pub holder: String,
    /// When the lease runs out unless renewed (ms since the epoch); in the past when its holder
    /// stopped renewing it and no node has taken it over yet. `None` for a hold that ends with
    /// its holder's database connection (the PnP responder's advisory lock).
    pub expires_at: Option<i64>,
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
