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

/// Behind the balancer every request comes from its address. With the balancer listed in
/// `[http] trusted_proxies`, each node judges a request by the phone's address the balancer
/// forwards: a scanner is blocked alone, the phones behind the same balancer are not, and a
/// header sent straight to a node by anyone else is ignored.
#[test]
fn behind_a_trusted_balancer_a_scanner_is_blocked_by_its_own_address_not_the_balancer() {
    let toml = "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n[security]\nmax_failures = 6\n";
    let Some(mut cluster) = Cluster::start(2, toml, &[]) else { return };
    cluster.nodes[0].open_device_files();
    cluster.nodes[0].ok(&["device", "add", "001565000002", "--vendor", "yealink", "--model", "T46S"]);
    let addr = cluster.balancer().addr.clone();
    let from = |source: &str, path: &str| {
        let url = format!("http://{addr}{path}");
        common::curl_with(&url, "Yealink SIP-T46S 66.86.0.15", &["--interface", source]).0.status
    };
    // The phone is served through the balancer by whichever node gets it.
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || from("127.0.0.10", "/001565000002.cfg") == 200
            && from("127.0.0.10", "/001565000002.cfg") == 200),
        "the known phone is served through both nodes"
    );
    // A scanner guessing MACs through the balancer, from 127.0.0.9.
    let statuses: Vec<u16> = (0..12).map(|i| from("127.0.0.9", &format!("/0015650099{i:02x}.cfg"))).collect();
    assert!(statuses.contains(&429), "the scanner is blocked by the node that counted past the bound: {statuses:?}");
    // The other node hears of the block within a poll of the shared throttle: both refuse it.
    assert!(
        common::eventually(std::time::Duration::from_secs(5), || from("127.0.0.9", "/001565000002.cfg") == 429
            && from("127.0.0.9", "/001565000002.cfg") == 429),
        "the scanner is blocked by both nodes"
    );
    // The phone behind the same balancer is not: it is judged by its own address.
    assert_eq!(from("127.0.0.10", "/001565000002.cfg"), 200);
    assert_eq!(from("127.0.0.10", "/001565000002.cfg"), 200);
    // Straight to a node from a peer not listed, a forged header changes nothing: the sender is
    // judged by its own address, not blocked as the scanner it names.
    let direct = format!("http://{}/001565000002.cfg", cluster.nodes[1].http);
    let forged = common::curl_with(
        &direct,
        "Yealink SIP-T46S 66.86.0.15",
        &["--interface", "127.0.0.11", "-H", "X-Forwarded-For: 127.0.0.9"],
    );
    assert_eq!(forged.0.status, 200);
    // The device's last IP is the phone's, not the balancer's.
    let shown = cluster.nodes[0].ok(&["device", "show", "001565000002"]);
    assert!(shown.contains("127.0.0.10"), "{shown}");
}
