//! SIPp playing the phone: a child process on a free 127.0.0.1 port, killed on drop.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running SIPp UAS that handles one call.
pub struct Sipp {
    child: Child,
    pub port: u16,
    logs: tempfile::TempDir,
}

fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A scenario file: ours under tests/sipp, or the SIP crate's.
pub fn scenario(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ours = root.join("tests/sipp").join(name);
    if ours.exists() {
        ours
    } else {
        root.join("../sip/tests/sipp").join(name)
    }
}

impl Sipp {
    /// Starts SIPp with a UAS scenario over `udp` or `tcp`, for one call.
    pub fn start(name: &str, transport: &str) -> Sipp {
        Sipp::start_calls(name, transport, 1, false)
    }

    /// Starts SIPp for `calls` calls; `trace` keeps every message in `messages.log`.
    pub fn start_calls(name: &str, transport: &str, calls: u32, trace: bool) -> Sipp {
        for _ in 0..5 {
            let port = free_port();
            let logs = tempfile::tempdir().unwrap();
            let mode = if transport == "tcp" { "t1" } else { "u1" };
            let mut child = Command::new("sipp")
                .arg("-sf")
                .arg(scenario(name))
                .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", mode])
                .args(["-m", &calls.to_string(), "-timeout", "120s", "-timeout_error", "-nostdin", "-trace_err"])
                .arg("-error_file")
                .arg(logs.path().join("errors.log"))
                .args(if trace { vec!["-trace_msg", "-message_file"] } else { vec![] })
                .args(if trace { vec![logs.path().join("messages.log")] } else { vec![] })
                .current_dir(logs.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sipp is installed (Debian package sip-tester)");
            std::thread::sleep(Duration::from_millis(400));
            if child.try_wait().expect("poll sipp").is_none() {
                return Sipp { child, port, logs };
            }
        }
        panic!("SIPp did not start");
    }

    /// Waits for SIPp to finish its one call; returns its exit code (0: the scenario passed).
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll sipp") {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "SIPp still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every NOTIFY SIPp received: (Request-URI user, Call-ID), retransmissions included.
    pub fn notifies(&self) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.logs.path().join("messages.log")).unwrap_or_default();
        let mut out = Vec::new();
        for block in log.split("-----------------------------------------------") {
            let Some(start) = block.find("NOTIFY sip:") else { continue };
            if !block.contains("message received") {
                continue;
            }
            let user = block[start + 11..].split('@').next().unwrap_or_default().to_string();
            let call_id = block
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID:").or_else(|| l.strip_prefix("i:")))
                .map(|v| v.trim().to_string())
                .unwrap_or_default();
            out.push((user, call_id));
        }
        out
    }

    /// What SIPp logged as errors.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.logs.path().join("errors.log")).unwrap_or_default()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
