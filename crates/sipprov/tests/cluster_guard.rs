//! Guarding device files across the nodes of one PostgreSQL database: Digest through a
//! round-robin balancer (a challenge from one node answered to another), a replayed header
//! refused by every node, a scan spread over the nodes blocked after `max_failures` in total,
//! and one Plug-and-Play answer per multicast SUBSCRIBE with takeover when the answering node
//! dies. Three nodes on loopback (see `common::cluster`).

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{curl_with, eventually, TestServer};
use sha2::{Digest, Sha256};

const MAC: &str = "001565aabbcc";
const UA: &str = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc";
const USER: &str = "phone1";
const PASSWORD: &str = "Pr0v-Secret-1";

/// One node started first, given `setup`, then `more` nodes: the later ones load what the first
/// one stored when they start.
fn cluster(toml: &str, more: usize, setup: impl FnOnce(&TestServer)) -> Option<Cluster> {
    let mut cluster = Cluster::start(1, toml, &[])?;
    setup(&cluster.nodes[0]);
    for _ in 0..more {
        let node = cluster.spawn_node(toml, &[]);
        cluster.nodes.push(node);
    }
    Some(cluster)
}

fn add_phone(node: &TestServer) {
    let (user, pass) = (format!("http.username={USER}"), format!("http.password={PASSWORD}"));
    node.ok(&["device", "add", MAC, "--vendor", "yealink", "--model", "T46S", "--set", &user, "--set", &pass]);
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The `nonce` and `realm` of a SHA-256 Digest challenge.
fn challenge_of(node: &TestServer, path: &str) -> (String, String) {
    let fetched = node.fetch(path, UA, &[]);
    assert_eq!(fetched.status, 401, "a challenge: {}", node.log());
    let header = fetched
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("www-authenticate") && v.contains("SHA-256"))
        .map(|(_, v)| v.clone())
        .expect("a SHA-256 challenge");
    let param = |name: &str| {
        let start = header.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        header[start..].split('"').next().expect("closing quote").to_string()
    };
    (param("nonce"), param("realm"))
}

/// An `Authorization` header answering `nonce` with count `nc`, as RFC 7616 §3.4.1 computes it.
fn authorization(realm: &str, nonce: &str, nc: u32, path: &str) -> String {
    let nc = format!("{nc:08x}");
    let ha1 = sha256_hex(&format!("{USER}:{realm}:{PASSWORD}"));
    let ha2 = sha256_hex(&format!("GET:{path}"));
    let response = sha256_hex(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{USER}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{path}\", \
         algorithm=SHA-256, qop=auth, nc={nc}, cnonce=\"c0ffee\", response=\"{response}\""
    )
}

const SECURITY: &str = "[security]\nfirst_fetch_window_secs = 0\nmax_failures = 100\n";

#[test]
fn digest_through_the_balancer_and_a_replay_refused_by_every_node() {
    let Some(mut cluster) = cluster(SECURITY, 2, add_phone) else { return };
    let path = format!("/{MAC}.cfg");
    // curl --digest sends the challenge's request and its answer as two requests: nginx hands
    // them to two different nodes in turn.
    let addr = cluster.balancer().addr.clone();
    for i in 0..6 {
        let url = format!("http://{addr}{path}");
        let (fetched, trace) = curl_with(&url, UA, &["--digest", "--user", &format!("{USER}:{PASSWORD}")]);
        assert_eq!(fetched.status, 200, "fetch {i} through the balancer: {trace}");
        assert!(fetched.text().contains("phone1") || !fetched.body.is_empty());
    }
    // The same by hand: challenged by node 0, answered to node 1, replayed to node 2 and node 1.
    let (nonce, realm) = challenge_of(&cluster.nodes[0], &path);
    let header = authorization(&realm, &nonce, 1, &path);
    assert_eq!(cluster.nodes[1].fetch(&path, UA, &[&header]).status, 200, "{}", cluster.nodes[1].log());
    for replayed_to in [2, 1, 0] {
        let replay = cluster.nodes[replayed_to].fetch(&path, UA, &[&header]);
        assert_eq!(replay.status, 401, "replay to node {replayed_to} refused");
        assert!(cluster.nodes[replayed_to].log().contains("replayed Digest nonce count"));
    }
    // The next count of that nonce is fine on any node, once.
    let next = authorization(&realm, &nonce, 2, &path);
    assert_eq!(cluster.nodes[2].fetch(&path, UA, &[&next]).status, 200);
    assert_eq!(cluster.nodes[0].fetch(&path, UA, &[&next]).status, 401);
    // The key nonces are signed with never reaches a log.
    let key = std::process::Command::new("psql")
        .arg(&cluster.database_url)
        .args(["-tAc", "SELECT value FROM cluster_secrets WHERE name = 'digest-nonce-key'"])
        .output()
        .expect("psql");
    let key = String::from_utf8_lossy(&key.stdout).trim().to_string();
    assert_eq!(key.len(), 64, "one shared key");
    for node in &cluster.nodes {
        assert!(!node.log().contains(&key), "the nonce key leaked into a log");
    }
}

#[test]
fn a_scan_spread_over_three_nodes_is_blocked_after_max_failures_in_total_by_all() {
    let toml = "[security]\nmax_failures = 6\nblock_secs = 60\nfailure_window_secs = 300\n";
    let Some(cluster) = Cluster::start(3, toml, &[]) else { return };
    // Seven unknown MACs, one source, round robin over the nodes: 3, 2 and 2 failures each,
    // under any node's own threshold, 7 in total.
    let mut statuses = Vec::new();
    for i in 0..7u32 {
        let node = &cluster.nodes[i as usize % 3];
        statuses.push(node.fetch(&format!("/0200000000{i:02x}.cfg"), "Yealink SIP-T46S 66.86.0.15", &[]).status);
    }
    assert!(statuses[..6].iter().all(|s| *s == 401), "answered as any device before the block: {statuses:?}");
    // The node whose failure crossed the threshold in the shared count says so (the count is
    // written off the request path); every other node learns the block within about a second.
    // Each probe is one more failure, so wait first and probe each node once: no node has
    // counted 6 failures of its own, so a refusal can only come from the cluster's count.
    let crossed = || cluster.nodes.iter().any(|n| n.log().contains("source blocked on every node"));
    assert!(eventually(Duration::from_secs(10), crossed), "the shared count blocked the source");
    std::thread::sleep(Duration::from_millis(1500));
    for (i, node) in cluster.nodes.iter().enumerate() {
        let probe = node.fetch("/020000000099.cfg", "Yealink SIP-T46S 66.86.0.15", &[]);
        assert_eq!(probe.status, 429, "node {i} refuses the blocked source: {}", node.log());
    }
}

// ---- Plug-and-Play with several nodes on one LAN ----

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 75);
const PNP_MAC: &str = "00908f602aac";

/// A phone multicasting out of loopback.
fn multicast_phone() -> UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).unwrap();
    s.set_multicast_if_v4(&Ipv4Addr::LOCALHOST).unwrap();
    s.set_multicast_loop_v4(true).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    s.into()
}

/// The AudioCodes 400HD's PnP SUBSCRIBE (from its manual), with a fresh Call-ID.
fn subscribe(phone: &UdpSocket, call_id: &str) -> String {
    let p = phone.local_addr().unwrap().port();
    format!(
        "SUBSCRIBE sip:224.0.1.75:5060 SIP/2.0\r\nFrom: <sip:00000001@127.0.0.1:{p}>;tag=t-{call_id}\r\n\
         To: <sip:224.0.1.75:5060>\r\nCall-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{p};rport;branch=z9hG4bK-{call_id}\r\nExpires: 0\r\n\
         Event: ua-profile;profile-type=\"application\";model=\"440HD\";version=\"2.2.2\"\r\nMax-Forwards: 70\r\n\
         Accept: application/url\r\nContact: <sip:00000001@127.0.0.1:{p}>\r\n\
         User-Agent: AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F602AAC)\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Sends one SUBSCRIBE to the group and returns the source of every NOTIFY received within
/// `window`, answering each with 200 as a phone does.
fn notifies(phone: &UdpSocket, group: SocketAddr, call_id: &str, window: Duration) -> Vec<SocketAddr> {
    phone.send_to(subscribe(phone, call_id).as_bytes(), group).unwrap();
    let deadline = Instant::now() + window;
    let mut from = Vec::new();
    let mut buf = [0u8; 65536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        phone.set_read_timeout(Some(left)).unwrap();
        let Ok((n, source)) = phone.recv_from(&mut buf) else { break };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.starts_with("NOTIFY ") && text.contains(&format!("Call-ID: {call_id}")) {
            let copy: Vec<&str> = text
                .lines()
                .filter(|l| {
                    ["via:", "from:", "to:", "call-id:", "cseq:"].iter().any(|h| l.to_ascii_lowercase().starts_with(h))
                })
                .collect();
            let ok = format!("SIP/2.0 200 OK\r\n{}\r\nContent-Length: 0\r\n\r\n", copy.join("\r\n"));
            phone.send_to(ok.as_bytes(), source).unwrap();
            // A retransmission (our 200 crossing it) is the same answer, not a second one.
            if !from.contains(&source) {
                from.push(source);
            }
        }
    }
    from
}

fn sip_udp(node: &TestServer) -> SocketAddr {
    node.listening("sip_udp").expect("SIP UDP address").parse().unwrap()
}

/// Sends fresh SUBSCRIBEs until one is answered (at most `within`); returns the answering
/// node's SIP address and how long it took.
fn first_answer(phone: &UdpSocket, group: SocketAddr, tag: &str, within: Duration) -> Option<(SocketAddr, Duration)> {
    let started = Instant::now();
    let mut attempt = 0;
    while started.elapsed() < within {
        attempt += 1;
        let got = notifies(phone, group, &format!("{tag}-{attempt}"), Duration::from_millis(700));
        if let Some(first) = got.first() {
            return Some((*first, started.elapsed()));
        }
    }
    None
}

#[test]
fn one_pnp_answer_per_multicast_subscribe_and_another_node_takes_over_after_kill_9() {
    require_loopback_multicast();
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let toml = format!(
        "[pnp]\nmode = \"known\"\nmulticast = \"224.0.1.75:{port}\"\ninterfaces = [\"127.0.0.1\"]\n\
         [security]\nmax_failures = 1000\n"
    );
    let Some(mut cluster) = cluster(&toml, 2, |node| {
        node.ok(&["device", "add", PNP_MAC, "--vendor", "audiocodes", "--model", "440HD"]);
    }) else {
        return;
    };
    let group = SocketAddr::V4(SocketAddrV4::new(GROUP, port));
    let phone = multicast_phone();
    let sips: Vec<SocketAddr> = cluster.nodes.iter().map(sip_udp).collect();
    let (holder_addr, _) = first_answer(&phone, group, "warm", Duration::from_secs(20)).expect("a responder");
    let holder = sips.iter().position(|a| *a == holder_addr).expect("a node answered");
    // Every node hears each SUBSCRIBE; one answers it.
    for i in 0..4 {
        let got = notifies(&phone, group, &format!("one-{i}"), Duration::from_millis(1500));
        assert_eq!(got, vec![holder_addr], "exactly one NOTIFY, from the responder");
    }
    // `cluster status`, asked of another node, names the responder's hold.
    let other = (holder + 1) % cluster.nodes.len();
    let status: serde_json::Value =
        serde_json::from_str(&cluster.nodes[other].ok(&["cluster", "status", "--json"])).unwrap();
    let holder_id = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["api_addr"].as_str() == Some(cluster.nodes[holder].api.as_str()))
        .and_then(|n| n["id"].as_str())
        .unwrap_or_else(|| panic!("the responder is not among the nodes: {status}"))
        .to_string();
    let holds: Vec<&serde_json::Value> = status["leases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["what"].as_str().is_some_and(|w| w.starts_with("pnp responder ")))
        .collect();
    assert_eq!(holds.len(), 1, "one responder for the one segment: {status}");
    assert_eq!(holds[0]["holder"].as_str(), Some(holder_id.as_str()), "{status}");
    assert!(holds[0]["expires_at"].is_null(), "an advisory lock has no expiry: {status}");
    // The responder dies without a word; another node answers within a few seconds.
    cluster.kill9(holder);
    let (next_addr, took) = first_answer(&phone, group, "after", Duration::from_secs(20)).expect("a takeover");
    assert_ne!(next_addr, holder_addr);
    assert!(took < Duration::from_secs(10), "took over in {took:?}");
    for i in 0..3 {
        let got = notifies(&phone, group, &format!("two-{i}"), Duration::from_millis(1500));
        assert_eq!(got, vec![next_addr], "exactly one NOTIFY after the takeover");
    }
}

/// Makes sure loopback multicast works here, or says clearly why the test cannot run.
fn require_loopback_multicast() {
    let flags = std::process::Command::new("ip")
        .args(["link", "show", "lo"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if !flags.as_deref().unwrap_or("").contains("MULTICAST") {
        let _ = std::process::Command::new("ip").args(["link", "set", "lo", "multicast", "on"]).status();
    }
}

// ---- Stored files across nodes ----

fn sha256_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn psql(url: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql").arg(url).args(["-tAc", sql]).output().expect("psql");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_file_uploaded_through_one_node_is_served_by_another_and_removed_everywhere() {
    // Three chunks and a bit: the content crosses chunk boundaries both ways.
    let content: Vec<u8> =
        (0..(3 * 1024 * 1024 + 4321u32)).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let expected = sha256_of(&content);
    let Some(mut cluster) = cluster("", 1, |node| {
        let path = node.data_dir().join("upload-tone.wav");
        std::fs::write(&path, &content).unwrap();
        node.ok(&["resource", "add", path.to_str().unwrap(), "--kind", "ringtone", "--name", "tone.wav"]);
    }) else {
        return;
    };
    let blob = |node: &TestServer| node.data_dir().join("files/sha256").join(&expected);
    assert!(blob(&cluster.nodes[0]).is_file());
    assert!(!blob(&cluster.nodes[1]).exists(), "node 1 starts without the content");
    // Node 1 fetches it from the database on the first request, checks it, and serves it.
    let served = cluster.nodes[1].fetch("/files/tone.wav", "Yealink SIP-T46S 66.86.0.15", &[]);
    assert_eq!(served.status, 200, "{}", cluster.nodes[1].log());
    assert_eq!(sha256_of(&served.body), expected, "identical bytes");
    assert!(blob(&cluster.nodes[1]).is_file(), "kept in node 1's content directory");
    let again = cluster.nodes[1].fetch("/files/tone.wav", "Yealink SIP-T46S 66.86.0.15", &[]);
    assert_eq!(sha256_of(&again.body), expected);
    assert_eq!(cluster.nodes[1].log().matches("fetched from the database").count(), 1, "fetched once");
    // Removed through node 1: gone from the database and from node 1; node 0 has the removal
    // from the change feed within a second and serves the file no more.
    assert_eq!(cluster.nodes[1].ok(&["resource", "rm", "tone.wav"]).trim(), "removed tone.wav");
    assert!(!blob(&cluster.nodes[1]).exists());
    assert_eq!(psql(&cluster.database_url, "SELECT COUNT(*) FROM file_blob_chunks"), "0");
    assert_eq!(psql(&cluster.database_url, "SELECT COUNT(*) FROM file_blobs"), "0");
    assert!(
        eventually(Duration::from_secs(1), || {
            cluster.nodes[0].fetch("/files/tone.wav", "Yealink SIP-T46S 66.86.0.15", &[]).status == 404
        }),
        "node 0 still serves a file removed through node 1"
    );
    // Its local copy goes at the next sweep (every minute) or, as here, at its next start.
    cluster.nodes[0].stop();
    cluster.restart(0, &[]);
    assert_eq!(cluster.nodes[0].fetch("/files/tone.wav", "Yealink SIP-T46S 66.86.0.15", &[]).status, 404);
    assert!(!blob(&cluster.nodes[0]).exists(), "node 0 dropped content no file names");
}
