//! This process's identity among the nodes that share one database.
//!
//! On PostgreSQL several `sipprov serve` processes serve one fleet. Whatever one of them holds
//! for a while (a campaign's chunk lease, the Plug-and-Play responder's lock, a heartbeat) is
//! written under its [`NodeId`]: the configured node name (`[cluster] node_name`, by default
//! the host name) followed by the process id and a random suffix, so a node restarted under the
//! same name is a new holder and never mistakes the leases of its previous life for its own.

use std::fmt;
use std::sync::Arc;

/// The identity of this running process among the cluster's nodes. Cheap to clone.
///
/// ```
/// let id = sipprov_server::node::NodeId::new(Some("prov-a"));
/// assert!(id.as_str().starts_with("prov-a/"));
/// assert_eq!(id.name(), "prov-a");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeId {
    full: Arc<str>,
    name_len: usize,
}

/// Longest node name kept: it is shown in `sipprov cluster status` and stored with leases.
const MAX_NAME: usize = 64;

impl NodeId {
    /// A fresh identity for this process under `name` (the host name when `None`). The name is
    /// cut to 64 characters and anything but letters, digits, `-`, `_` and `.` becomes `_`.
    pub fn new(name: Option<&str>) -> NodeId {
        let name = name.map(str::to_string).unwrap_or_else(host_name);
        let name: String = name
            .chars()
            .take(MAX_NAME)
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        let name = if name.is_empty() { "node".to_string() } else { name };
        let suffix: u32 = rand::random();
        let full = format!("{name}/{}/{suffix:08x}", std::process::id());
        NodeId { name_len: name.len(), full: full.into() }
    }

    /// The whole identity, `name/pid/random`: what leases and heartbeats are stored under.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The configured (or host) name alone, as an operator reads it.
    pub fn name(&self) -> &str {
        &self.full[..self.name_len]
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.full)
    }
}

/// The kernel's host name, or `node` when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_processes_of_one_name_differ_and_names_are_cleaned() {
        let (a, b) = (NodeId::new(Some("prov a")), NodeId::new(Some("prov a")));
        assert_eq!(a.name(), "prov_a");
        assert_ne!(a, b, "the random suffix tells two lives of one node apart");
        assert_eq!(NodeId::new(Some("")).name(), "node");
        assert_eq!(NodeId::new(Some(&"x".repeat(200))).name().len(), MAX_NAME);
        assert!(!NodeId::new(None).name().is_empty());
    }
}
