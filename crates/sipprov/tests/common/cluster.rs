//! A cluster for tests: several `sipprov serve` nodes on one throwaway PostgreSQL database,
//! each on its own ephemeral ports and data directory, with nginx as a round-robin balancer in
//! front of their phone HTTP listeners.
//!
//! PostgreSQL comes from `SIPPROV_TEST_POSTGRES_URL` (the README's test command starts one,
//! see scripts/test-postgres.sh). Without it [`Cluster::start`] returns `None` and the test
//! says it was skipped, unless `SIPPROV_REQUIRE_POSTGRES=1` (set by the test command), when the
//! missing database fails the test instead of hiding it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TestServer;

/// Nodes sharing one database; every node's bootstrap token is the same, so the CLI works
/// against any of them. Nodes and balancer are killed on drop.
pub(crate) struct Cluster {
    pub nodes: Vec<TestServer>,
    /// The database URL every node uses.
    pub database_url: String,
    balancer: Option<Balancer>,
    token: String,
}

/// nginx round-robin over the nodes' provisioning HTTP listeners.
pub(crate) struct Balancer {
    dir: tempfile::TempDir,
    child: Child,
    /// `127.0.0.1:PORT` of the balancer.
    pub addr: String,
}

impl Cluster {
    /// `n` nodes on a fresh database, each started with `extra` arguments and with `toml` as
    /// its configuration file (empty: none). `None` when no PostgreSQL is configured and it is
    /// not required.
    pub(crate) fn start(n: usize, toml: &str, extra: &[&str]) -> Option<Cluster> {
        let base = postgres_url()?;
        let database_url = fresh_database(&base);
        let token = format!("{:064x}", std::process::id() as u128 * 7919 + nanos() as u128);
        let mut cluster = Cluster { nodes: Vec::new(), database_url, balancer: None, token };
        for _ in 0..n {
            let node = cluster.spawn_node(toml, extra);
            cluster.nodes.push(node);
        }
        Some(cluster)
    }

    /// A new node process on this cluster's database (not added to `nodes`).
    pub(crate) fn spawn_node(&self, toml: &str, extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        write_token(dir.path(), &self.token);
        let mut node = TestServer { dir, child: None, http: String::new(), api: String::new() };
        let mut args: Vec<String> = vec!["--database-url".into(), self.database_url.clone()];
        if !toml.is_empty() {
            let config = node.data_dir().join("sipprov.toml");
            std::fs::write(&config, toml).expect("write config");
            args.extend(["--config".into(), config.to_str().expect("utf-8 path").into()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        node.spawn(&args);
        node
    }

    /// Kills node `i` with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub(crate) fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on its data directory (new ports: [`Self::balancer`] must be
    /// started again to include them).
    pub(crate) fn restart(&mut self, i: usize, extra: &[&str]) {
        let mut args: Vec<String> = vec!["--database-url".into(), self.database_url.clone()];
        let config = self.nodes[i].data_dir().join("sipprov.toml");
        if config.exists() {
            args.extend(["--config".into(), config.to_str().expect("utf-8 path").into()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.nodes[i].spawn(&args);
    }

    /// nginx balancing round-robin over the phone HTTP listeners of the nodes running now
    /// (restarted if it ran); phones' requests through it reach node 0, 1, 2, 0, ...
    pub(crate) fn balancer(&mut self) -> &Balancer {
        self.balancer = None;
        let upstreams: Vec<String> = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.http.clone()).collect();
        self.balancer = Some(Balancer::start(&upstreams));
        self.balancer.as_ref().expect("just started")
    }

    /// The bootstrap token shared by every node.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.balancer = None;
        for node in &mut self.nodes {
            node.stop();
        }
    }
}

impl Balancer {
    fn start(upstreams: &[String]) -> Balancer {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_tcp_port();
        let servers: String = upstreams.iter().map(|u| format!("    server {u} max_fails=0;\n")).collect();
        // Round-robin with no retries on another node and no keep-alive to the nodes: each
        // request a phone sends is answered by exactly one node, the next one in turn.
        let conf = format!(
            "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\ndaemon off;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  upstream nodes {{\n{servers}  }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                 proxy_pass http://nodes;\n      proxy_next_upstream off;\n\
                 proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n  }}\n}}\n",
            dir = dir.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (the README's test command installs it)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {:?}",
                std::fs::read_to_string(dir.path().join("error.log"))
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Balancer { dir, child, addr }
    }

    /// nginx's error log, for assertion messages.
    pub(crate) fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Balancer {
    /// SIGTERM to nginx's master, which stops its worker before it exits ("Controlling nginx",
    /// nginx.org: TERM is a fast shutdown). `Child::kill` sends SIGKILL, which left the worker
    /// running after every cluster test, orphaned, holding its port and memory. SIGKILL only
    /// if the master has not exited within a few seconds.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test PostgreSQL's URL, or `None` (after saying so) when the test may be skipped.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("SIPPROV_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("SIPPROV_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            panic!("SIPPROV_REQUIRE_POSTGRES=1 but SIPPROV_TEST_POSTGRES_URL is not set")
        }
        _ => {
            eprintln!("skipped: no SIPPROV_TEST_POSTGRES_URL (start one with scripts/test-postgres.sh)");
            None
        }
    }
}

/// A new empty database on the test server, so tests running at once never share tables.
pub(crate) fn fresh_database(base_url: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("sipprov_c_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), nanos());
    let out = Command::new("psql")
        .arg(base_url)
        .args(["-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql is installed");
    assert!(out.status.success(), "CREATE DATABASE failed: {}", String::from_utf8_lossy(&out.stderr));
    let (prefix, _) = base_url.rsplit_once('/').expect("a database URL ends in /NAME");
    format!("{prefix}/{name}")
}

fn write_token(dir: &Path, token: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dir.join("api-token"))
        .expect("write the shared token");
    writeln!(file, "{token}").expect("write the shared token");
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn nanos() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}
