//! How this node holds leases on shared work: campaign chunks and the rollouts it drives.
//!
//! A lease is a holder (this process's [`NodeId`]) and an expiry, kept in the database and
//! renewed while the work goes on. A node killed mid-work stops renewing; once its lease has
//! run out, another node claims the work and carries on from what the database says was done.
//! The length (`[cluster] lease_secs`) is the trade: a shorter one hands a dead node's work on
//! sooner, a longer one survives a longer stall (a slow database, a paused process) without
//! two nodes working on the same thing.
//!
//! On SQLite there is one node: a lease it finds is one of its own previous life (a restart),
//! which it takes back at once instead of waiting for it to run out.

use std::time::Duration;

use crate::node::NodeId;

/// Renewals at most this far apart, whatever the lease length: a renewal is also when a node
/// notices a cancel made on another node, so it must come soon.
const MAX_RENEW_EVERY: Duration = Duration::from_secs(1);

/// This node's terms for the leases it takes.
#[derive(Debug, Clone)]
pub struct LeasePolicy {
    holder: NodeId,
    length: Duration,
    clustered: bool,
}

impl LeasePolicy {
    /// Leases held by `holder` for `length`; `clustered` when other nodes may share the
    /// database (PostgreSQL).
    pub fn new(holder: NodeId, length: Duration, clustered: bool) -> LeasePolicy {
        LeasePolicy { holder, length: length.max(Duration::from_secs(1)), clustered }
    }

    /// Who the leases are written under.
    pub fn holder(&self) -> &str {
        self.holder.as_str()
    }

    /// True when other nodes may share the work (PostgreSQL).
    pub fn clustered(&self) -> bool {
        self.clustered
    }

    /// The expiry of a lease taken or renewed now (ms since the epoch).
    pub fn until(&self) -> i64 {
        let length = i64::try_from(self.length.as_millis()).unwrap_or(i64::MAX);
        sipprov_store::now_ms().saturating_add(length)
    }

    /// The time before which a lease counts as run out: now on a cluster; on a single node,
    /// any lease found (its holder was this node's previous life).
    pub fn stale_before(&self) -> i64 {
        if self.clustered {
            sipprov_store::now_ms()
        } else {
            i64::MAX
        }
    }

    /// How often a holder renews: a third of the length (two renewals may fail before the
    /// lease runs out), at most every second.
    pub fn renew_every(&self) -> Duration {
        (self.length / 3).min(MAX_RENEW_EVERY)
    }
}
