//! Campaigns and rollouts across the nodes of one PostgreSQL database (see
//! `common::cluster`): a campaign launched on one node is sent by every node, chunk by chunk,
//! survives kill -9 of the nodes holding its chunks with at most one extra NOTIFY per device
//! that was in flight, is reported whole by any node and cancelled from any node; a rollout
//! driven by a node that is killed is taken over by another.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::campaign::{campaign, count, import};
use common::cluster::Cluster;
use common::{eventually, scenario, write, TestServer};
use serde_json::Value;
use sipprov_testkit::Sipp;

/// Short leases, so that a takeover comes two seconds after a kill.
const CONFIG: &str = "[cluster]\nlease_secs = 2\n";

/// Devices with a final outcome (anything but pending, sending, awaiting-confirmation).
fn settled(c: &Value) -> u64 {
    let open = ["pending", "sending", "awaiting-confirmation"];
    c["counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !open.contains(&k.as_str()))
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

/// Every device of the report is counted once, in some outcome.
fn counted(c: &Value) -> u64 {
    c["counts"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum()
}

/// One SQL answer, a line per row, from the cluster's database.
fn sql(cluster: &Cluster, query: &str) -> Vec<String> {
    let out = Command::new("psql")
        .arg(&cluster.database_url)
        .args(["-v", "ON_ERROR_STOP=1", "-qtAc", query])
        .output()
        .expect("psql is installed");
    assert!(out.status.success(), "{query}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The indexes of the nodes holding a running lease on a chunk of campaign 1: a holder is
/// `name/pid/random`, and the pid is the node's process.
fn chunk_holders(cluster: &Cluster) -> HashSet<usize> {
    let now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
    let holders = sql(
        cluster,
        &format!("SELECT holder FROM campaign_chunks WHERE campaign_id = 1 AND sent = 0 AND lease_until >= {now}"),
    );
    nodes_of(cluster, &holders)
}

fn nodes_of(cluster: &Cluster, holders: &[String]) -> HashSet<usize> {
    let pids: HashSet<u32> = holders.iter().filter_map(|h| h.split('/').nth(1)?.parse().ok()).collect();
    cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.child.as_ref().is_some_and(|c| pids.contains(&c.id())))
        .map(|(i, _)| i)
        .collect()
}

/// Restarts every node but the first, so that each reads the inventory imported through the
/// first from the database at start, whether or not changes propagate between running nodes.
fn reload_others(cluster: &mut Cluster) {
    for i in 1..cluster.nodes.len() {
        cluster.kill9(i);
        cluster.restart(i, &[]);
    }
}

/// Distinct NOTIFY transactions per phone (Request-URI user), as SIPp saw them.
fn notifies_per_user(phones: &Sipp) -> HashMap<String, HashSet<String>> {
    let mut per_user: HashMap<String, HashSet<String>> = HashMap::new();
    for (user, call_id) in phones.notifies() {
        per_user.entry(user).or_default().insert(call_id);
    }
    per_user
}

#[test]
fn a_campaign_finishes_on_the_other_nodes_after_kill_9_of_its_senders() {
    let Some(mut cluster) = Cluster::start(3, CONFIG, &[]) else { return };
    // SIPp counts a NOTIFY retransmitted after its call ended as a new call: room for those.
    let phones = Sipp::start_traced(scenario("uas_200_linger.xml"), "udp", 6000);
    import(&cluster.nodes[0], 0, 2000, phones.port(), "fleet");
    reload_others(&mut cluster);
    cluster.nodes[0].ok(&[
        "resync",
        "--group",
        "fleet",
        "--rate",
        "100",
        "--max-in-flight",
        "40",
        "--confirm-window",
        "1",
    ]);
    // The three nodes take chunks; the report read on node 3 is the whole campaign.
    assert!(
        eventually(Duration::from_secs(30), || chunk_holders(&cluster).len() >= 2
            && settled(&campaign(&cluster.nodes[2], "1")) >= 300),
        "the nodes did not share the campaign: {:?} {}",
        sql(&cluster, "SELECT chunk, holder, sent FROM campaign_chunks ORDER BY chunk"),
        campaign(&cluster.nodes[2], "1")
    );
    let c = campaign(&cluster.nodes[2], "1");
    assert_eq!((c["devices"].as_u64(), counted(&c)), (Some(2000), 2000), "{c}");
    let watched = cluster.nodes[2].ok(&["campaign", "show", "1"]);
    assert!(watched.contains("2000 devices"), "{watched}");
    // `cluster status` on any node names the chunk leases and their holders among the nodes.
    let status: Value = serde_json::from_str(&cluster.nodes[2].ok(&["cluster", "status", "--json"])).unwrap();
    let node_ids: HashSet<&str> = status["nodes"].as_array().unwrap().iter().filter_map(|n| n["id"].as_str()).collect();
    let chunk_leases: Vec<&Value> = status["leases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["what"].as_str().is_some_and(|w| w.starts_with("campaign 1 chunk ")))
        .collect();
    assert!(!chunk_leases.is_empty(), "no chunk lease in {status}");
    assert!(chunk_leases.iter().all(|l| node_ids.contains(l["holder"].as_str().unwrap())), "{status}");
    let table = cluster.nodes[1].ok(&["cluster", "status"]);
    assert!(table.contains("LEASE") && table.contains("campaign 1 chunk "), "{table}");

    // kill -9 the launching node and every other holder but node 3.
    let holders = chunk_holders(&cluster);
    assert!(holders.contains(&0) || holders.len() >= 2, "{holders:?}");
    let victims: Vec<usize> = [0, 1].into_iter().filter(|i| holders.contains(i) || *i == 0).collect();
    let held_by_victims = victims
        .iter()
        .filter_map(|i| cluster.nodes[*i].child.as_ref().map(|c| format!("c.holder LIKE '%/{}/%'", c.id())))
        .collect::<Vec<_>>()
        .join(" OR ");
    for i in &victims {
        cluster.kill9(*i);
    }
    // The chunks the killed nodes held still had devices to send (a chunk's selection, less
    // its devices with an outcome): the survivors must take them.
    let left_to_take = sql(
        &cluster,
        &format!(
            "SELECT COALESCE(SUM(LENGTH(c.macs) / 12 - (SELECT COUNT(*) FROM campaign_devices d \
             WHERE d.campaign_id = c.campaign_id AND d.mac >= c.first_mac AND d.mac <= c.last_mac \
             AND d.state IN ('notified', 'failed'))), 0) FROM campaign_chunks c \
             WHERE c.campaign_id = 1 AND c.sent = 0 AND ({held_by_victims})"
        ),
    );
    assert_ne!(left_to_take, ["0"], "the killed nodes held nothing left to send");
    // What had no outcome at the kill: the only devices that may be notified twice.
    let in_flight: HashSet<String> =
        sql(&cluster, "SELECT mac FROM campaign_devices WHERE campaign_id = 1 AND state = 'sending'")
            .into_iter()
            .collect();
    let survivor = &cluster.nodes[2];
    assert!(
        eventually(Duration::from_secs(120), || campaign(survivor, "1")["state"] == "done"),
        "campaign not finished on node 3: {}\n{}",
        campaign(survivor, "1"),
        survivor.log()
    );
    let c = campaign(survivor, "1");
    assert_eq!(c["devices"], 2000);
    assert_eq!(settled(&c), 2000, "every device has an outcome: {}", c["counts"]);
    assert_eq!(sql(&cluster, "SELECT COUNT(*) FROM campaign_chunks WHERE campaign_id = 1 AND sent = 0"), ["0"]);
    // The progress bar on node 3 follows a campaign launched on node 1 to its report.
    let watched = survivor.ok(&["campaign", "watch", "1"]);
    assert!(watched.contains("campaign 1: done") && watched.contains("2000 devices"), "{watched}");

    // Every phone was notified; none more than twice, and only those in flight at the kill twice.
    let per_user = notifies_per_user(&phones);
    assert_eq!(per_user.len(), 2000, "every device was notified");
    let twice: Vec<String> = per_user.iter().filter(|(_, ids)| ids.len() > 1).map(|(u, _)| u.clone()).collect();
    assert!(per_user.values().all(|ids| ids.len() <= 2), "a device was notified three times");
    let mac_of = |user: &str| format!("001565{:06x}", user.parse::<u32>().unwrap() - 10000);
    let unexpected: Vec<&String> = twice.iter().filter(|u| !in_flight.contains(&mac_of(u))).collect();
    assert!(unexpected.is_empty(), "notified twice though their outcome was recorded: {unexpected:?}");
}

#[test]
fn a_cancel_on_node_two_stops_the_sending_on_node_one() {
    let Some(mut cluster) = Cluster::start(2, CONFIG, &[]) else { return };
    let phones = Sipp::start_traced(scenario("uas_200_linger.xml"), "udp", 3000);
    import(&cluster.nodes[0], 0, 1500, phones.port(), "fleet");
    reload_others(&mut cluster);
    cluster.nodes[0].ok(&["resync", "--group", "fleet", "--rate", "40", "--confirm-window", "1"]);
    assert!(
        eventually(Duration::from_secs(30), || chunk_holders(&cluster).contains(&0) && phones.notifies().len() >= 50),
        "node 1 is not sending: {:?}",
        sql(&cluster, "SELECT chunk, holder FROM campaign_chunks ORDER BY chunk")
    );
    let out = cluster.nodes[1].ok(&["campaign", "cancel", "1"]);
    assert!(out.contains("cancelled"), "{out}");
    let cancelled_at = Instant::now();
    // A node notices within a lease renewal (at most a second) and the batch it was sending.
    std::thread::sleep(Duration::from_secs(3));
    let settled_count = notifies_per_user(&phones).values().map(HashSet::len).sum::<usize>();
    std::thread::sleep(Duration::from_secs(3));
    let later = notifies_per_user(&phones).values().map(HashSet::len).sum::<usize>();
    assert_eq!(settled_count, later, "NOTIFYs still left {:?} after the cancel", cancelled_at.elapsed());
    let c = campaign(&cluster.nodes[0], "1");
    assert_eq!(c["state"], "cancelled");
    assert!(count(&c, "pending") > 0, "the cancel came before the end: {c}");
    // No device is left `sending`: what was marked ahead went back to pending.
    assert!(
        eventually(Duration::from_secs(10), || count(&campaign(&cluster.nodes[1], "1"), "sending") == 0),
        "{}\n{:?}\nnode 1:\n{}\nnode 2:\n{}",
        campaign(&cluster.nodes[1], "1")["counts"],
        sql(&cluster, "SELECT chunk, holder, sent, lease_until FROM campaign_chunks ORDER BY chunk"),
        cluster.nodes[0].log(),
        cluster.nodes[1].log()
    );
}

const OLD: &str = "66.86.0.15";
const NEW: &str = "66.86.0.160";
/// The catalog's file for NEW on the T46S, as the device file names it.
const NEW_URL: &str = "http://prov.example/files/T46S-66.86.0.160.rom";

/// Device `i`'s config as a phone reporting `version` gets it from the node at `http`.
fn device_config(http: &str, i: u32, version: &str) -> String {
    let mac = format!("001565{i:06x}");
    let colon: Vec<&str> = (0..6).map(|k| &mac[2 * k..2 * k + 2]).collect();
    let ua = format!("Yealink SIP-T46S {version} {}", colon.join(":"));
    let r = common::curl(&format!("http://{http}/{mac}.cfg"), &ua, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// The node holding rollout 1's lease, if a running node holds it.
fn rollout_driver(cluster: &Cluster) -> Option<usize> {
    let now = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";
    let holders = sql(cluster, &format!("SELECT holder FROM leases WHERE name = 'rollout:1' AND expires_at >= {now}"));
    nodes_of(cluster, &holders).into_iter().next()
}

#[test]
fn a_rollout_is_taken_over_after_kill_9_of_its_driver() {
    let Some(mut cluster) = Cluster::start(3, CONFIG, &[]) else { return };
    let first = &cluster.nodes[0];
    first.open_device_files();
    first.ok(&["settings", "set", "provisioning.url=http://prov.example/"]);
    for v in [OLD, NEW] {
        let image = first.data_dir().join(format!("image-{v}"));
        write(image.clone(), &format!("firmware {v}"));
        let name = format!("T46S-{v}.rom");
        let image = image.to_str().unwrap();
        first.ok(&[
            "firmware",
            "add",
            image,
            "--vendor",
            "yealink",
            "--model",
            "T46S",
            "--version",
            v,
            "--name",
            &name,
        ]);
    }
    let phones = Sipp::start_calls(scenario("uas_200_linger.xml"), "udp", 50);
    import(first, 0, 3, phones.port(), "sales");
    reload_others(&mut cluster);
    cluster.nodes[0].ok(&[
        "rollout", "start", "--group", "sales", "--to", NEW, "--canary", "1", "--wave", "100%", "--window", "60s",
    ]);
    assert!(eventually(Duration::from_secs(15), || rollout_driver(&cluster).is_some()), "no node drives the rollout");
    let driver = rollout_driver(&cluster).unwrap();
    let http = cluster.nodes[driver].http.clone();
    assert!(
        eventually(Duration::from_secs(15), || device_config(&http, 0, OLD).contains(NEW_URL)),
        "canary not pinned"
    );

    // kill -9 the driver: another node takes the rollout over once the lease runs out.
    cluster.kill9(driver);
    assert!(
        eventually(Duration::from_secs(30), || rollout_driver(&cluster).is_some_and(|d| d != driver)),
        "the rollout was not taken over: {:?}",
        sql(&cluster, "SELECT name, holder, expires_at FROM leases")
    );
    let next = rollout_driver(&cluster).unwrap();
    let http = cluster.nodes[next].http.clone();
    // The new driver serves the pin its predecessor wrote; the canary upgrades, then the rest.
    assert!(device_config(&http, 0, OLD).contains(NEW_URL), "the pin did not survive the takeover");
    device_config(&http, 0, NEW);
    let node = &cluster.nodes[next];
    let show = |n: &TestServer| n.json(&["rollout", "show", "1", "--json"]);
    assert!(
        eventually(Duration::from_secs(30), || show(node)["counts"]["upgrading"].as_u64() == Some(2)),
        "{}",
        show(node)
    );
    for i in 1..3 {
        assert!(device_config(&http, i, OLD).contains(NEW_URL));
        device_config(&http, i, NEW);
    }
    assert!(eventually(Duration::from_secs(30), || show(node)["state"] == "done"), "{}", show(node));
    assert_eq!(show(node)["counts"]["succeeded"], 3, "{}", show(node));
}
