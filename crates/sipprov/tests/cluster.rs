//! Several nodes on one PostgreSQL database, behind nginx (see `common::cluster`).

mod common;

use common::cluster::Cluster;

/// The harness itself: three nodes start on one database, each answers its own API, and the
/// balancer spreads phone requests over all three in turn.
#[test]
fn three_nodes_share_one_database_behind_a_round_robin_balancer() {
    let Some(mut cluster) = Cluster::start(3, "", &[]) else { return };
    cluster.nodes[0].ok(&["device", "add", "001565000001", "--vendor", "yealink", "--model", "T46S"]);
    for node in &cluster.nodes {
        let shown = node.ok(&["device", "show", "001565000001"]);
        assert!(shown.contains("T46S"), "every node reads the shared database: {shown}");
    }
    let addr = cluster.balancer().addr.clone();
    let mut answered_by = std::collections::HashSet::new();
    for _ in 0..6 {
        // The request id nginx cannot tell apart; each node logs the requests it answered.
        let fetched = common::curl(&format!("http://{addr}/no-such-file.txt"), "curl", &[]);
        assert_eq!(fetched.status, 404);
    }
    for (i, node) in cluster.nodes.iter().enumerate() {
        if node.log().contains("no-such-file.txt") {
            answered_by.insert(i);
        }
    }
    assert_eq!(answered_by.len(), 3, "round-robin reaches every node");
}
