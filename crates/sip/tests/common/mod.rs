//! Test harness: SIPp as a child process on a free 127.0.0.1 port, killed on drop, and an
//! endpoint whose observer records every transaction event.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sipprov_sip::{Endpoint, EndpointConfig, Request, Target, Timers, Transport, TxEvent};

pub const SIPP: &str = "/usr/bin/sipp";

/// A running SIPp UAS.
pub struct Sipp {
    child: Child,
    pub addr: SocketAddr,
    pub transport: Transport,
    _logs: tempfile::TempDir,
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name)
}

/// Waits until SIPp's socket is bound (listening, for TCP) on `port`, reading /proc/net so that
/// no probe packet or connection disturbs SIPp. False when SIPp exited (e.g. port taken).
fn wait_bound(child: &mut Child, port: u16, transport: Transport) -> bool {
    let (table, state) = if transport == Transport::Udp { ("/proc/net/udp", "07") } else { ("/proc/net/tcp", "0A") };
    let local = format!("0100007F:{port:04X}");
    for _ in 0..100 {
        if child.try_wait().expect("poll sipp").is_some() {
            return false;
        }
        let text = std::fs::read_to_string(table).unwrap_or_default();
        let bound = text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&state)
        });
        if bound {
            // SIPp binds before it has loaded everything; a short grace period avoids racing it.
            std::thread::sleep(Duration::from_millis(100));
            return child.try_wait().expect("poll sipp").is_none();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Sipp {
    /// Starts SIPp with `scenario` as a UAS handling one call; retries on a port collision.
    pub fn start(scenario_name: &str, transport: Transport) -> Sipp {
        Sipp::start_calls(scenario_name, transport, 1)
    }

    /// Starts SIPp with `scenario` as a UAS handling `calls` calls.
    pub fn start_calls(scenario_name: &str, transport: Transport, calls: usize) -> Sipp {
        for _ in 0..5 {
            let port = free_port();
            let logs = tempfile::tempdir().unwrap();
            let mode = if transport == Transport::Udp { "u1" } else { "t1" };
            let mut child = Command::new(SIPP)
                .arg("-sf")
                .arg(scenario(scenario_name))
                .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", mode])
                .args(["-m", &calls.to_string(), "-timeout", "40s", "-timeout_error", "-nostdin", "-trace_err"])
                .arg("-error_file")
                .arg(logs.path().join("errors.log"))
                .current_dir(logs.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start sipp");
            if wait_bound(&mut child, port, transport) {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                return Sipp { child, addr, transport, _logs: logs };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("SIPp did not start (5 attempts)");
    }

    /// Starts SIPp as a UAC running `scenario_name` once against `remote`.
    pub fn start_uac(scenario_name: &str, transport: Transport, remote: SocketAddr) -> Sipp {
        let port = free_port();
        let logs = tempfile::tempdir().unwrap();
        let mode = if transport == Transport::Udp { "u1" } else { "t1" };
        let child = Command::new(SIPP)
            .arg("-sf")
            .arg(scenario(scenario_name))
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", mode])
            .args(["-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err", "-error_file"])
            .arg(logs.path().join("errors.log"))
            .arg(remote.to_string())
            .current_dir(logs.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sipp");
        Sipp { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), transport, _logs: logs }
    }

    pub fn target(&self) -> Target {
        Target::new(self.addr, self.transport)
    }

    /// Waits for SIPp to finish its call; returns its exit code.
    pub async fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll sipp") {
                return status.code().unwrap_or(-1);
            }
            assert!(tokio::time::Instant::now() < deadline, "SIPp still running after {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn errors(&self) -> String {
        std::fs::read_to_string(self._logs.path().join("errors.log")).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every event seen by an endpoint's observer.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<TxEvent>>>);

impl Recorder {
    pub fn events(&self) -> Vec<TxEvent> {
        self.0.lock().unwrap().clone()
    }
}

/// An endpoint on 127.0.0.1 (UDP and TCP, ephemeral ports) with a recording observer.
pub async fn endpoint(timers: Timers) -> (Endpoint, Recorder) {
    let rec = Recorder::default();
    let sink = rec.0.clone();
    let cfg = EndpointConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        timers,
        user_agent: Some("sipprov-test".into()),
        observer: Some(Arc::new(move |e: &TxEvent| sink.lock().unwrap().push(e.clone()))),
        ..Default::default()
    };
    (Endpoint::bind(cfg).await.expect("bind endpoint"), rec)
}

/// A check-sync NOTIFY to user 100 at `target`.
pub fn check_sync(ep: &Endpoint, target: &Target) -> Request {
    let uri = format!("sip:100@{}", target.addr);
    ep.request("NOTIFY", &uri, target)
        .unwrap()
        .from("sip:prov@127.0.0.1")
        .to(&uri)
        .header("Event", "check-sync;reboot=false")
        .header("Subscription-State", "terminated")
        .build()
}

pub fn fast_timers() -> Timers {
    Timers { t1: Duration::from_millis(100), t2: Duration::from_millis(400), t4: Duration::from_millis(500) }
}
