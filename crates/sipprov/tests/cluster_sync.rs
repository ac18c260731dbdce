//! Changes made through one node are served by the others (see `common::cluster`): the change
//! feed with LISTEN/NOTIFY, the full resync after a lost connection, a restarted node, event
//! ids from several nodes, and `sipprov cluster status`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{curl_with, Fetched, TestServer};

const MAC: &str = "001565000001";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:00:01";
/// The bound the cluster promises for a change to reach every node.
const PROPAGATION: Duration = Duration::from_secs(1);
/// For setting a scene up (not a measured bound).
const SETUP: Duration = Duration::from_secs(20);

/// Lets the current second pass before the next change of the same file: a file changed twice
/// within one second is held until the next second begins (its Last-Modified is never in the
/// future), on one node as on several. The bound measured here is propagation, not that hold.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// A Yealink T46S's User-Agent, naming its MAC as the phone does.
fn ua(mac: &str) -> String {
    let pairs: Vec<&str> = (0..6).map(|i| &mac[2 * i..2 * i + 2]).collect();
    format!("Yealink SIP-T46S 66.86.0.15 {}", pairs.join(":"))
}

fn fetch(node: &TestServer) -> Fetched {
    node.fetch(&format!("/{MAC}.cfg"), UA, &[])
}

/// Waits until `check` holds on every node but the first; fails past `limit`, measured from
/// the moment the change was made.
fn served_everywhere(cluster: &Cluster, what: &str, limit: Duration, check: impl Fn(&TestServer) -> bool) {
    let started = Instant::now();
    for (i, node) in cluster.nodes.iter().enumerate().skip(1) {
        while !check(node) {
            assert!(
                started.elapsed() < limit,
                "{what}: node {} did not serve the change within {limit:?}; its log:\n{}",
                i + 1,
                node.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The same status and body as node 1 serves now.
fn same_as_first(cluster: &Cluster) -> impl Fn(&TestServer) -> bool {
    let reference = fetch(&cluster.nodes[0]);
    assert_eq!(reference.status, 200, "node 1 serves the file: {}", cluster.nodes[0].log());
    move |node| {
        let got = fetch(node);
        got.status == reference.status && got.body == reference.body
    }
}

/// These tests poll other nodes for a device they may not know yet: each such poll is an
/// unknown-device failure, and the scanner throttle (cluster-wide on PostgreSQL) would block the
/// test's own address after 20, so the bound is raised well past what any test sends.
const TOLERANT: &str = "[security]\nmax_failures = 100000\n";

fn open_cluster(n: usize) -> Option<Cluster> {
    let cluster = Cluster::start(n, TOLERANT, &[])?;
    cluster.nodes[0].open_device_files();
    cluster.nodes[0].ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--group", "sales"]);
    served_everywhere(&cluster, "setup", SETUP, |node| fetch(node).status == 200);
    Some(cluster)
}

#[test]
fn a_change_on_one_node_is_served_by_the_others_within_a_second() {
    let Some(cluster) = open_cluster(3) else { return };
    let first = &cluster.nodes[0];

    next_second();
    first.ok(&["device", "set", MAC, "line.1.username=7001"]);
    let check = same_as_first(&cluster);
    served_everywhere(&cluster, "device settings", PROPAGATION, &check);
    assert!(fetch(&cluster.nodes[2]).text().contains("7001"));

    next_second();
    first.ok(&["group", "set", "sales", "line.2.username=7002"]);
    served_everywhere(&cluster, "group", PROPAGATION, same_as_first(&cluster));
    assert!(fetch(&cluster.nodes[1]).text().contains("7002"));

    next_second();
    first.ok(&["settings", "set", "line.3.username=7003"]);
    served_everywhere(&cluster, "global settings", PROPAGATION, same_as_first(&cluster));
    assert!(fetch(&cluster.nodes[1]).text().contains("7003"));

    let builtin = first.ok(&["template", "show", "yealink/mac.cfg.j2", "--builtin"]);
    let template = first.data_dir().join("override.j2");
    std::fs::write(&template, format!("# cluster override marker\n{builtin}")).unwrap();
    next_second();
    first.ok(&["template", "set", "yealink/mac.cfg.j2", template.to_str().unwrap()]);
    served_everywhere(&cluster, "template override", PROPAGATION, same_as_first(&cluster));
    assert!(fetch(&cluster.nodes[2]).text().contains("cluster override marker"));

    // A named token made on node 1 authenticates on the others; revoked, it stops.
    let token = first.ok(&["token", "create", "ci-reader", "--role", "read-only"]).trim().to_string();
    let bearer = format!("Authorization: Bearer {token}");
    let api_status = |node: &TestServer| {
        curl_with(&format!("http://{}/api/v1/devices", node.api), "curl", &["-H", &bearer]).0.status
    };
    served_everywhere(&cluster, "token created", PROPAGATION, |node| api_status(node) == 200);
    first.ok(&["token", "revoke", "ci-reader"]);
    served_everywhere(&cluster, "token revoked", PROPAGATION, |node| api_status(node) == 401);
}

#[test]
fn an_unlock_and_a_first_fetch_are_known_to_every_node() {
    let Some(cluster) = Cluster::start(3, TOLERANT, &[]) else { return };
    let first = &cluster.nodes[0];
    first.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    served_everywhere(&cluster, "device added", SETUP, |node| node.ok(&["device", "show", MAC]).contains("T46S"));
    // Closed by default: the one fetch without credentials goes to node 2, which claims it.
    let claimed = cluster.nodes[1].fetch(&format!("/{MAC}.cfg"), UA, &[]);
    assert_eq!(claimed.status, 200, "{}", cluster.nodes[1].log());
    // Every other node now refuses it (the window is used) ...
    served_everywhere(&cluster, "first fetch claimed", PROPAGATION, |node| fetch(node).status == 401);
    // ... and an unlock made on node 1 opens it on every node, serving the same credentials.
    next_second();
    first.ok(&["device", "unlock", MAC]);
    let started = Instant::now();
    let third = &cluster.nodes[2];
    loop {
        let got = fetch(third);
        if got.status == 200 {
            assert_eq!(got.body, claimed.body, "the generated credentials node 2 stored are served by node 3");
            break;
        }
        assert!(started.elapsed() < PROPAGATION, "node 3 did not learn the unlock: {}", third.log());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn after_its_listening_connection_is_killed_a_node_resyncs_and_still_follows() {
    let Some(cluster) = open_cluster(2) else { return };
    let killed = terminate_listeners(&cluster.database_url);
    assert!(killed >= 2, "each node listens on the database (found {killed} listeners)");
    let second = &cluster.nodes[1];
    let deadline = Instant::now() + SETUP;
    while !second.log().contains("full resync from the database done") {
        assert!(Instant::now() < deadline, "no resync after the lost connection: {}", second.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    next_second();
    cluster.nodes[0].ok(&["device", "set", MAC, "line.1.username=8002"]);
    served_everywhere(&cluster, "change after the resync", PROPAGATION, same_as_first(&cluster));
    // Listening again: the next change arrives by notification as well.
    next_second();
    cluster.nodes[0].ok(&["device", "set", MAC, "line.1.username=8003"]);
    served_everywhere(&cluster, "second change after the resync", PROPAGATION, same_as_first(&cluster));
}

#[test]
fn a_restarted_node_catches_up_on_what_changed_while_it_was_down() {
    let Some(mut cluster) = open_cluster(2) else { return };
    cluster.kill9(1);
    cluster.nodes[0].ok(&["device", "set", MAC, "line.1.username=9001"]);
    cluster.nodes[0].ok(&["group", "set", "sales", "time.zone=UTC"]);
    cluster.restart(1, &[]);
    served_everywhere(&cluster, "restarted node", PROPAGATION, same_as_first(&cluster));
    next_second();
    cluster.nodes[0].ok(&["device", "set", MAC, "line.1.username=9002"]);
    served_everywhere(&cluster, "change after the restart", PROPAGATION, same_as_first(&cluster));
}

#[test]
fn event_ids_of_two_nodes_writing_at_once_never_collide() {
    let Some(cluster) = open_cluster(2) else { return };
    let macs: Vec<String> = (0..20).map(|i| format!("0015650001{i:02}")).collect();
    for mac in &macs {
        cluster.nodes[0].ok(&["device", "add", mac, "--vendor", "yealink", "--model", "T46S"]);
    }
    served_everywhere(&cluster, "devices added", SETUP, |node| {
        node.fetch(&format!("/{}.cfg", macs[19]), &ua(&macs[19]), &[]).status == 200
    });
    // Both nodes fetch every device at once: each records (at least) one fetch event per
    // device, so both append to the history at the same moments.
    std::thread::scope(|scope| {
        for node in &cluster.nodes {
            let macs = &macs;
            scope.spawn(move || {
                for mac in macs {
                    assert_eq!(node.fetch(&format!("/{mac}.cfg"), &ua(mac), &[]).status, 200);
                }
            });
        }
    });
    let deadline = Instant::now() + SETUP;
    for mac in &macs {
        loop {
            let log = cluster.nodes[0].json(&["device", "log", mac, "--json"]);
            let fetches = log.as_array().unwrap().iter().filter(|e| e["kind"] == "fetch").count();
            if fetches >= 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{mac}: {fetches} fetch events, not one per node: {}",
                cluster.nodes[1].log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for node in &cluster.nodes {
        assert!(!node.log().contains("duplicate key"), "an event id collided: {}", node.log());
    }
}

#[test]
fn cluster_status_lists_the_nodes_and_marks_a_killed_one_stale() {
    let Some(mut cluster) = Cluster::start(3, &format!("{TOLERANT}[cluster]\nnode_name = \"prov\"\n"), &[]) else {
        return;
    };
    let deadline = Instant::now() + SETUP;
    let status = loop {
        let status = cluster.nodes[0].json(&["cluster", "status", "--json"]);
        if status["nodes"].as_array().unwrap().len() == 3 {
            break status;
        }
        assert!(Instant::now() < deadline, "three nodes not listed: {status}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status["backend"], "postgres");
    let nodes = status["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["alive"] == true && n["name"] == "prov"), "{status}");
    assert_eq!(nodes.iter().filter(|n| n["this_node"] == true).count(), 1, "{status}");
    let killed_api = cluster.nodes[2].api.clone();
    cluster.kill9(2);
    let stale_after = Duration::from_millis(status["stale_after_ms"].as_u64().unwrap());
    let deadline = Instant::now() + stale_after + SETUP;
    loop {
        let table = cluster.nodes[1].ok(&["cluster", "status"]);
        let line = table.lines().find(|l| l.contains(&killed_api)).map(String::from);
        let killed_line = table.lines().filter(|l| l.contains("stale")).count();
        if killed_line == 1 && table.lines().filter(|l| l.contains("alive")).count() == 2 {
            assert!(line.is_none_or(|l| l.contains("stale")), "{table}");
            break;
        }
        assert!(Instant::now() < deadline, "the killed node is not shown stale: {table}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn on_sqlite_cluster_status_shows_the_one_node() {
    let s = TestServer::start();
    let deadline = Instant::now() + SETUP;
    loop {
        let status = s.json(&["cluster", "status", "--json"]);
        if status["nodes"].as_array().is_some_and(|n| n.len() == 1) {
            assert_eq!(status["backend"], "sqlite");
            assert_eq!(status["nodes"][0]["this_node"], true);
            assert_eq!(status["nodes"][0]["api_addr"], s.api.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "{status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Terminates every connection of `database_url`'s database that is listening for changes
/// (what a network cut or a restarted connection pooler does); answers how many.
fn terminate_listeners(database_url: &str) -> usize {
    let db = database_url.rsplit('/').next().unwrap();
    let sql = format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{db}' AND query ILIKE 'LISTEN%'"
    );
    let out = Command::new("psql").arg(database_url).args(["-tAqc", &sql]).output().expect("psql is installed");
    assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// A TCP relay to PostgreSQL that the test can cut (kill) and restore on the same port: what a
/// network partition between one node and the database looks like to that node.
struct Relay {
    child: std::process::Child,
    port: u16,
    target: String,
}

const RELAY: &str = r#"
import socket, sys, threading
port, host, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(64)
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    client, _ = server.accept()
    upstream = socket.create_connection((host, target))
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
"#;

impl Relay {
    fn start(port: u16, target: &str) -> Relay {
        let (host, target_port) = target.rsplit_once(':').unwrap();
        let child = Command::new("python3")
            .args(["-c", RELAY, &port.to_string(), host, target_port])
            .spawn()
            .expect("python3 is installed");
        let deadline = Instant::now() + SETUP;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the relay did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Relay { child, port, target: target.to_string() }
    }

    /// Kills the relay: every connection through it drops, new ones are refused.
    fn cut(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restore(&mut self) {
        *self = Relay::start(self.port, &self.target.clone());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}

#[test]
fn a_node_cut_off_from_postgresql_serves_from_memory_refuses_writes_and_catches_up() {
    let Some(mut cluster) = open_cluster(1) else { return };
    // The database's host:port, between '@' and the database name.
    let url = cluster.database_url.clone();
    let (head, rest) = url.split_once('@').unwrap();
    let (target, db) = rest.split_once('/').unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut relay = Relay::start(port, target);
    // The second node reaches the database only through the relay.
    cluster.database_url = format!("{head}@127.0.0.1:{port}/{db}");
    let node = cluster.spawn_node(TOLERANT, &[]);
    cluster.database_url = url;
    cluster.nodes.push(node);
    served_everywhere(&cluster, "setup", SETUP, same_as_first(&cluster));

    relay.cut();
    let cut_off = &cluster.nodes[1];
    let served = fetch(cut_off);
    assert_eq!(served.status, 200, "served from memory while the database is unreachable: {}", cut_off.log());
    let started = Instant::now();
    let refused = cut_off.fails(&["device", "set", MAC, "line.1.username=6001"]);
    assert!(refused.contains("database unavailable"), "a write fails naming the database: {refused}");
    assert!(started.elapsed() < Duration::from_secs(15), "the write failed only after {:?}", started.elapsed());
    // Meanwhile the other node, still connected, changes the device.
    cluster.nodes[0].ok(&["device", "set", MAC, "line.1.username=6002"]);
    assert_eq!(fetch(cut_off).body, served.body, "the cut-off node still serves what it had");

    relay.restore();
    served_everywhere(&cluster, "after the database came back", SETUP, same_as_first(&cluster));
    assert!(fetch(cut_off).text().contains("6002"));
    next_second();
    cut_off.ok(&["device", "set", MAC, "line.1.username=6003"]);
    let first = &cluster.nodes[0];
    let deadline = Instant::now() + PROPAGATION;
    while !fetch(first).text().contains("6003") {
        assert!(Instant::now() < deadline, "the reconnected node's change did not reach node 1: {}", first.log());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn listings_on_any_node_show_the_fetch_another_node_served() {
    let Some(cluster) = Cluster::start(2, TOLERANT, &[]) else { return };
    let (first, second) = (&cluster.nodes[0], &cluster.nodes[1]);
    first.open_device_files();
    first.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S"]);
    served_everywhere(&cluster, "device added", SETUP, |node| fetch(node).status == 200);
    // Only node 2 served the device; node 1 never saw it fetch.
    let listed = |node: &TestServer| node.json(&["device", "list", "--json"]);
    let deadline = Instant::now() + SETUP;
    loop {
        let list = listed(first);
        let text = list.to_string();
        if !list[0]["last_fetch"].is_null() {
            assert_eq!(list[0]["last_fetch"]["ip"], "127.0.0.1", "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "node 1's listing never showed node 2's fetch: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Node 2's own listing shows it too (it served the fetch).
    assert!(!listed(second)[0]["last_fetch"].is_null());
}
