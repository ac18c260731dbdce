//! Server settings: the TOML file's shape and its defaults.
//!
//! The CLI reads the file given with `--config`, then lets its flags win.
//!
//! ```
//! let cfg = sipprov_server::ServerConfig::from_toml(r#"
//!     data_dir = "/var/lib/sipprov"
//!     [http]
//!     listen = "0.0.0.0:80"
//! "#).unwrap();
//! assert_eq!(cfg.http.listen.port(), 80);
//! assert_eq!(cfg.api.listen.to_string(), "127.0.0.1:8081");
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod console;
mod files;
mod pnp;
pub use self::console::ConsoleConfig;
pub use self::files::FilesConfig;
pub use self::pnp::{PnpConfig, PnpMode, DEFAULT_REMEMBERED_SUBSCRIPTIONS};

/// The `[fetch_log]` section of the configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchLogConfig {
    /// Most records (fetch events, refusals, content change times; repeats of one fetch merge
    /// into one) kept while the database cannot write, about 1.6 KB each; beyond it new
    /// records are dropped and counted in `sipprov_fetch_records_dropped_total`.
    pub max_pending: usize,
    /// How often the gathered records are written, in milliseconds (1000 by default, 10 to
    /// 60,000). Identical fetches within one interval are one event with a count: a longer
    /// interval writes fewer rows under load; what is still in memory when the process is
    /// killed (not stopped) is lost, at most this long's worth.
    pub interval_ms: u64,
    /// On SQLite, how often each device's last-seen row is written, in milliseconds (10,000 by
    /// default, at least `interval_ms`, at most 600,000). The fetch events are written every
    /// `interval_ms` as always; the last-seen rows (one per device that fetched, the widest of
    /// the rows a fetch costs) follow less often, and on start the server replays the fetch
    /// events written since, so a kill -9 loses nothing written. A longer interval writes fewer
    /// rows under load and costs a longer replay at start (about one event per device per
    /// `interval_ms` that fetched meanwhile). They are written sooner once 16,384 devices wait,
    /// which bounds the memory they hold. PostgreSQL nodes write them every `interval_ms`: the
    /// other nodes read them. Content change times that come in a storm (more than 256 in a
    /// quarter second) wait for the same write: a kill -9 then loses those, which only makes
    /// the files' next `Last-Modified` later.
    pub last_seen_interval_ms: u64,
    /// On SQLite, how long a device's fetch event keeps counting identical fetches across
    /// intervals, in milliseconds (60,000 by default, at most 3,600,000; 0 starts an event
    /// every interval). A phone fetching the same file, content and answer from the same
    /// address, with nothing else recorded for it in between, raises its latest event's count
    /// and last time (`detail.count`, `detail.last_at`) every interval instead of adding a row:
    /// the history grows by one event per device per window, not per interval. Every fetch is
    /// still counted and durable within `interval_ms`; an event shows when the first and the
    /// last of its fetches were made.
    pub merge_window_ms: u64,
}

impl Default for FetchLogConfig {
    fn default() -> Self {
        FetchLogConfig {
            max_pending: 20_000,
            interval_ms: 1000,
            last_seen_interval_ms: 10_000,
            merge_window_ms: 60_000,
        }
    }
}

/// The `[cache]` section: the render cache of device files.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most bytes the rendered device files kept in memory may hold (default
    /// 64 MiB, about 40,000 typical config files, the render cache's own default). Past it
    /// the files of devices not fetched lately are dropped and rendered again on their next
    /// fetch; 0 caches nothing.
    pub max_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        // `cache::DEFAULT_MAX_BYTES`, which this module may not name (a test in `wiring` holds them
        // equal).
        CacheConfig { max_bytes: 64 << 20 }
    }
}

/// Everything `sipprov serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Holds the SQLite database, the API token and template overrides.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to use PostgreSQL instead of the embedded SQLite; a [`sipprov_model::Secret`]
    /// since it usually carries the database password.
    pub database_url: Option<sipprov_model::Secret>,
    /// The phones' HTTP (and HTTPS) listener.
    pub http: HttpConfig,
    /// The admin API listener.
    pub api: ApiConfig,
    /// SIP: check-sync and Plug-and-Play.
    pub sip: SipConfig,
    /// Phone authentication, throttling and the first-fetch window.
    pub security: SecurityConfig,
    /// SIP Plug-and-Play: answering `ua-profile` SUBSCRIBEs with the provisioning URL (`[pnp]`).
    #[serde(default)]
    pub pnp: PnpConfig,
    /// What the fetch log keeps while the database cannot write (`[fetch_log]`).
    pub fetch_log: FetchLogConfig,
    /// The render cache's bound (`[cache]`).
    #[serde(default)]
    pub cache: CacheConfig,
    /// Connection caps and timeouts of every listener (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Files phones upload (`[uploads]`).
    #[serde(default)]
    pub uploads: UploadsConfig,
    /// The web console's sessions and login throttle (`[console]`).
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Uploaded firmware and resource files (`[files]`).
    #[serde(default)]
    pub files: FilesConfig,
    /// This node among several sharing one PostgreSQL database (`[cluster]`).
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// The `[cluster]` section: how this node is known to the others on the same PostgreSQL
/// database (unused on SQLite, where there is one node).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The name `sipprov cluster status` shows for this node (default: the host name).
    pub node_name: Option<String>,
    /// How long a node's lease on a campaign chunk or a rollout lasts without renewal, in
    /// seconds (default 10, 1 to 3600): after a node dies, its work waits this long before
    /// another node takes it over.
    pub lease_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { node_name: None, lease_secs: 10 }
    }
}

/// `[uploads]`: how much a phone may upload (Polycom `<mac>-phone.cfg` and logs, Yealink
/// `<mac>-local.cfg`). Only the latest file of each name is kept per device, and the names are
/// the few its vendor declares, so these two numbers bound what the database holds per device.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// The largest file accepted, in bytes; a larger one is refused with 413 before it is read.
    pub max_file_bytes: u64,
    /// The most one device's uploads may total, in bytes; an upload past it is refused with 413.
    pub max_device_bytes: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        UploadsConfig { max_file_bytes: 1024 * 1024, max_device_bytes: 8 * 1024 * 1024 }
    }
}

/// `[limits]`: what one host, or all of them, may hold open, and for how long.
///
/// Every inbound connection costs a file descriptor. Without caps and timeouts, one host
/// holding idle connections exhausts them, and with them provisioning, the admin API and SIP.
/// See [`crate::listener`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Connections one source (an IPv4 address, an IPv6 /64) may hold open on each phone-facing
    /// listener (HTTP, HTTPS, SIP TCP, SIP TLS); more are reset at once. Phones behind one NAT
    /// share it: raise it for large sites behind one address.
    pub connections_per_source: u32,
    /// Connections all phone-facing listeners together may hold; 0: the descriptor limit minus
    /// `api_connections` and a reserve of max(256, limit/8) descriptors.
    pub max_connections: u32,
    /// Connections the admin API may hold, on a budget of its own that phones cannot take.
    pub api_connections: u32,
    /// HTTP(S): seconds for a request head to arrive, after the connection opens or the previous
    /// response went out (so also how long a kept-alive connection may wait idle).
    pub header_timeout_secs: u64,
    /// HTTP(S): seconds without a byte moving either way (a trickling body, a client that stops
    /// reading) before the connection is closed.
    pub idle_timeout_secs: u64,
    /// HTTPS and SIP over TLS: seconds a TLS handshake may take.
    pub handshake_timeout_secs: u64,
    /// SIP TCP and TLS: seconds without a message either way before the connection is closed.
    /// Keep it above Timer F (64·T1, 32 s by default).
    pub sip_idle_timeout_secs: u64,
    /// SIP TCP and TLS: seconds a message may take to arrive once its first byte has.
    pub sip_message_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            connections_per_source: 256,
            max_connections: 0,
            api_connections: 64,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            handshake_timeout_secs: 10,
            sip_idle_timeout_secs: 300,
            sip_message_timeout_secs: 10,
        }
    }
}

/// The phone-facing provisioning listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where phones connect (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// An HTTPS listener for phones, next to the plain one (`[http.tls]`).
    pub tls: Option<TlsConfig>,
    /// Balancers whose `X-Forwarded-For` names the phone (addresses or CIDR blocks; default
    /// none). A request whose TCP peer is one of them is judged by the address the header
    /// gives (the rightmost one not itself a listed proxy): the scanner throttle, the device's
    /// last IP and the fetch log see the phone, not the balancer. From any other peer the header
    /// is ignored, so a phone cannot choose the address it is judged by.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

impl HttpConfig {
    /// The parsed `trusted_proxies`, or an error naming the entry that is not an address.
    pub fn proxies(&self) -> Result<Vec<sipprov_model::Cidr>, String> {
        self.trusted_proxies
            .iter()
            .map(|p| sipprov_model::parse_cidr(p).map(|(c, _)| c).map_err(|e| format!("http.trusted_proxies: {e}")))
            .collect()
    }
}

/// The HTTPS provisioning listener: certificate, key and client certificates.
///
/// The certificate chain, key and CA bundles are PEM files, re-read when they change (checked every
/// `reload_secs`), so a renewed certificate needs no restart; a broken replacement is logged and
/// the previous configuration kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Where phones connect for HTTPS, e.g. `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM bundles of the CAs that sign device certificates (Polycom, Cisco, Yealink, …).
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
    /// `none`, `request` (verify a certificate when one is sent) or `require`.
    #[serde(default)]
    pub client_cert: ClientCertMode,
    /// How often the PEM files are checked for changes.
    #[serde(default = "default_reload_secs")]
    pub reload_secs: u64,
}

fn default_reload_secs() -> u64 {
    2
}

/// Whether the HTTPS listener asks phones for a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientCertMode {
    /// Never ask.
    #[default]
    None,
    /// Ask; a certificate that is sent must verify against `client_ca`, but none is fine.
    Request,
    /// Refuse the handshake without a certificate that verifies against `client_ca`.
    Require,
}

/// `[security]`: Digest realm and nonces, the per-source failure throttle, the first-fetch window.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// The Digest/Basic realm. Changing it invalidates every stored HA1 on phones that keep one.
    pub realm: String,
    /// How long a Digest nonce is good for before the answer is `stale=true`.
    pub nonce_lifetime_secs: u64,
    /// Failures (unknown MACs, wrong credentials, replays) a source may have per window.
    pub max_failures: u32,
    /// The window `max_failures` is counted over.
    pub failure_window_secs: u64,
    /// How long a source past the threshold is refused.
    pub block_secs: u64,
    /// The status a blocked source gets: 429 (with Retry-After) or 403.
    pub block_status: u16,
    /// How long after a device is added (or `sipprov device unlock`ed) it may fetch its own
    /// file once without credentials: the window closes at that first fetch, or when this time
    /// has passed. Default one day: zero-touch for a phone plugged in the day it is added,
    /// without leaving a guessable MAC's file open for long. 0: no window at all (devices need
    /// credentials, a certificate or an open group from the start).
    pub first_fetch_window_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            realm: "sipprov".into(),
            nonce_lifetime_secs: 300,
            // Gigaset retries with its MAC/MAC-ID before the configured credentials (Gigaset pro-wiki,
            // "Provisioning step by step: HTTP digest"), and NAT puts offices behind one address: be generous.
            max_failures: 20,
            failure_window_secs: 60,
            block_secs: 300,
            block_status: 429,
            first_fetch_window_secs: 86_400,
        }
    }
}

/// The admin API listener (keep it on localhost; it is token-protected regardless).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the CLI connects (default `127.0.0.1:8081`).
    pub listen: SocketAddr,
}

/// The SIP listener (check-sync and Plug-and-Play).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP and TCP (default `0.0.0.0:5060`).
    pub listen: SocketAddr,
    /// Send check-sync through this proxy/registrar (`host:port`) instead of to the device's contact.
    pub outbound_proxy: Option<String>,
    /// RFC 3261 T1 in milliseconds (retransmission base; Timer F is 64·T1). Default 500.
    pub t1_ms: u64,
    /// SIP over TLS (`[sip.tls]`): a listener for phones, and whom check-sync over TLS trusts.
    pub tls: Option<SipTlsConfig>,
    /// The `User-Agent` of our requests and `Server` of our responses. Default `sipprov`,
    /// without a version, so that a stranger cannot pick exploits by release.
    pub user_agent: String,
    /// Requests per second one source address (IPv6: its /64) may send; past it (after a burst
    /// of twice as many) its requests are dropped unanswered. 0 for no limit. Default 100.
    pub requests_per_source_per_sec: u32,
    /// Server transactions remembered at once (each for 32 s after its answer, to absorb
    /// retransmissions); past it the oldest are forgotten first. Default 8192.
    pub max_server_transactions: usize,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse, has a wrong type or names an unknown key.
    #[error("{0}")]
    Parse(#[from] toml::de::Error),
    /// Values that parse but make no sense (alone or together), naming the setting.
    #[error("{0}")]
    Invalid(String),
    /// A file's content was refused: the error, prefixed with the file.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<ConfigError>,
    },
}

/// What `[sip] user_agent` defaults to.
pub const DEFAULT_USER_AGENT: &str = "sipprov";

impl SipConfig {
    /// Checks `user_agent` (it goes into a header line as is) and the table bound.
    pub fn check(&self) -> Result<(), String> {
        let ua = &self.user_agent;
        if ua.trim().is_empty() || ua.len() > 128 || ua.chars().any(char::is_control) {
            return Err("sip.user_agent must be 1 to 128 characters without control characters".into());
        }
        if self.max_server_transactions == 0 {
            return Err("sip.max_server_transactions must be at least 1".into());
        }
        Ok(())
    }

    /// The endpoint's request limits from these settings: the burst is two seconds' worth.
    pub fn request_limits(&self) -> sipprov_sip::RequestLimits {
        sipprov_sip::RequestLimits {
            per_source_per_sec: self.requests_per_source_per_sec,
            burst: self.requests_per_source_per_sec.saturating_mul(2),
            max_server_transactions: self.max_server_transactions,
            ..sipprov_sip::RequestLimits::default()
        }
    }
}

/// `[sip.tls]`: SIP over TLS (RFC 3261 §26.2; `sips:` URIs, RFC 5630).
///
/// Outbound connections (check-sync to `sips:` or `;transport=tls` contacts) verify the phone's
/// certificate against `ca`; a certificate listed in `ca` itself is accepted as is (a phone's
/// self-signed one). `insecure_skip_verify` accepts any certificate instead. With neither, the
/// operating system's CA store is used. The certificate must name the contact's host (or the
/// outbound proxy's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipTlsConfig {
    /// Where phones connect over TLS, e.g. `0.0.0.0:5061`; needs `cert` and `key`.
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain of the listener, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key of the listener.
    pub key: Option<PathBuf>,
    /// PEM bundle of the CAs (or the self-signed certificates) phones present.
    pub ca: Option<PathBuf>,
    /// Accept any certificate from phones, unverified (logged as a warning at start).
    pub insecure_skip_verify: bool,
    /// PEM certificate chain presented to phones that demand mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// How often the PEM files are checked for changes (a renewed file is taken without a
    /// restart); 0 or absent: every 2 seconds, as `[http.tls]`.
    pub reload_secs: Option<u64>,
}

impl SipTlsConfig {
    /// Every PEM file named, to watch for changes.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.cert, &self.key, &self.ca, &self.client_cert, &self.client_key].into_iter().flatten()
    }

    /// How often [`SipTlsConfig::files`] are checked.
    pub fn reload_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.reload_secs.filter(|s| *s > 0).unwrap_or_else(default_reload_secs))
    }
}

impl SipTlsConfig {
    /// Checks that the settings that go together are given together.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.is_some() && (self.cert.is_none() || self.key.is_none()) {
            return Err("sip.tls.listen needs sip.tls.cert and sip.tls.key".into());
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err("sip.tls.cert and sip.tls.key go together".into());
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("sip.tls.client_cert and sip.tls.client_key go together".into());
        }
        if self.ca.is_some() && self.insecure_skip_verify {
            return Err("sip.tls.ca and sip.tls.insecure_skip_verify exclude each other".into());
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./sipprov-data"),
            database_url: None,
            http: HttpConfig::default(),
            api: ApiConfig::default(),
            sip: SipConfig::default(),
            security: SecurityConfig::default(),
            pnp: PnpConfig::default(),
            fetch_log: FetchLogConfig::default(),
            cache: CacheConfig::default(),
            limits: LimitsConfig::default(),
            uploads: UploadsConfig::default(),
            console: ConsoleConfig::default(),
            files: FilesConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: SocketAddr::from(([0, 0, 0, 0], 8080)), tls: None, trusted_proxies: Vec::new() }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8081)) }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        let requests = sipprov_sip::RequestLimits::default();
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            outbound_proxy: None,
            t1_ms: 500,
            tls: None,
            user_agent: DEFAULT_USER_AGENT.into(),
            requests_per_source_per_sec: requests.per_source_per_sec,
            max_server_transactions: requests.max_server_transactions,
        }
    }
}

impl ServerConfig {
    /// Parses a TOML configuration; unknown keys are refused so typos do not pass silently.
    pub fn from_toml(text: &str) -> Result<ServerConfig, ConfigError> {
        let cfg: ServerConfig = toml::from_str(text)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: values that parse but make no sense together.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.check_sections().map_err(ConfigError::Invalid)
    }

    fn check_sections(&self) -> Result<(), String> {
        self.pnp.check()?;
        self.console.check()?;
        self.files.check()?;
        if ![403, 429].contains(&self.security.block_status) {
            return Err("security.block_status must be 403 or 429".into());
        }
        if self.security.realm.is_empty() || self.security.realm.contains(['"', '\\']) {
            return Err("security.realm must be non-empty, without quotes or backslashes".into());
        }
        if let Some(tls) = &self.sip.tls {
            tls.check()?;
        }
        self.sip.check()?;
        self.limits.check()?;
        self.http.proxies()?;
        if !(1..=3600).contains(&self.cluster.lease_secs) {
            return Err("cluster.lease_secs must be between 1 and 3600".into());
        }
        if let Some(tls) = &self.http.tls {
            if tls.client_cert != ClientCertMode::None && tls.client_ca.is_empty() {
                return Err("http.tls.client_cert is request/require but http.tls.client_ca lists no CA bundle".into());
            }
        }
        Ok(())
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        ServerConfig::from_toml(&text).map_err(|e| ConfigError::InFile { path: path.to_owned(), error: Box::new(e) })
    }

    /// The database URL: the configured one, or SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_string(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("sipprov.db").display()),
        }
    }

    /// The old template override directory: no longer read live; files found there at start
    /// are imported into the database as versions (`templates::Templates::import_dir`).
    pub fn template_dir(&self) -> PathBuf {
        self.data_dir.join("templates")
    }
}

impl LimitsConfig {
    /// Refuses caps and timeouts of zero, which would refuse every connection or close it at once.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            ("limits.connections_per_source", u64::from(self.connections_per_source)),
            ("limits.api_connections", u64::from(self.api_connections)),
            ("limits.header_timeout_secs", self.header_timeout_secs),
            ("limits.idle_timeout_secs", self.idle_timeout_secs),
            ("limits.handshake_timeout_secs", self.handshake_timeout_secs),
            ("limits.sip_idle_timeout_secs", self.sip_idle_timeout_secs),
            ("limits.sip_message_timeout_secs", self.sip_message_timeout_secs),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("{name} must be at least 1")),
            None => Ok(()),
        }
    }
}

/// File in the data directory naming the bound addresses, for scripts and tests that start the server on port 0.
pub const LISTENING_FILE: &str = "listening.json";

/// Writes the listening file whole or not at all: written beside it, then renamed over it
/// (rename(2) replaces atomically), so a script polling for it never reads half of it.
pub(crate) fn write_listening_file(data_dir: &Path, addresses: &serde_json::Value) {
    let partial = data_dir.join(format!("{LISTENING_FILE}.partial"));
    let written = std::fs::write(&partial, addresses.to_string())
        .and_then(|()| std::fs::rename(&partial, data_dir.join(LISTENING_FILE)));
    if let Err(e) = written {
        tracing::warn!(error = %e, "cannot write {LISTENING_FILE}");
    }
}

/// Removes the listening file a previous run left (a stop does not remove it, and a crash
/// cannot): until this run has bound its listeners and written its own, a script waiting for
/// the file would otherwise read the last run's ports, now closed. The package test met exactly
/// that when run twice on one machine.
pub(crate) fn remove_stale_listening_file(data_dir: &Path) {
    match std::fs::remove_file(data_dir.join(LISTENING_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(error = %e, "cannot remove the last run's {LISTENING_FILE}");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{ConfigError, ServerConfig};

    #[test]
    fn tls_and_security_sections_are_checked() {
        let ok = ServerConfig::from_toml(
            "[http.tls]\nlisten = \"0.0.0.0:8443\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n[security]\nmax_failures = 5\n",
        )
        .unwrap();
        assert_eq!(ok.http.tls.unwrap().reload_secs, 2);
        assert_eq!(ok.security.max_failures, 5);
        let no_ca = "[http.tls]\nlisten = \"0.0.0.0:8443\"\ncert = \"c\"\nkey = \"k\"\nclient_cert = \"require\"\n";
        assert!(ServerConfig::from_toml(no_ca).unwrap_err().to_string().contains("client_ca"));
        assert!(ServerConfig::from_toml("[security]\nblock_status = 500\n")
            .unwrap_err()
            .to_string()
            .contains("block_status"));
        assert!(ServerConfig::from_toml("[security]\nmax_failure = 5\n").is_err(), "typos are refused");
    }

    #[test]
    fn sip_tls_settings_that_go_together() {
        let ok = ServerConfig::from_toml(
            "[sip.tls]\nlisten = \"0.0.0.0:5061\"\ncert = \"c.pem\"\nkey = \"k.pem\"\nca = \"phones.pem\"\n",
        )
        .unwrap();
        assert_eq!(ok.sip.tls.unwrap().listen.unwrap().port(), 5061);
        let err = |toml: &str| ServerConfig::from_toml(toml).unwrap_err().to_string();
        assert!(err("[sip.tls]\nlisten = \"0.0.0.0:5061\"\n").contains("needs sip.tls.cert"));
        assert!(err("[sip.tls]\nclient_cert = \"c.pem\"\n").contains("client_key"));
        assert!(err("[sip.tls]\nca = \"a.pem\"\ninsecure_skip_verify = true\n").contains("exclude"));
        assert!(err("[sip.tls]\ninsecure = true\n").contains("unknown field"));
    }

    #[test]
    fn sip_user_agent_and_request_limits() {
        let default = ServerConfig::from_toml("").unwrap();
        assert_eq!(default.sip.user_agent, "sipprov", "no version unless configured");
        assert_eq!(default.sip.request_limits().burst, 200);
        let set =
            ServerConfig::from_toml("[sip]\nuser_agent = \"Acme Prov\"\nrequests_per_source_per_sec = 0\n").unwrap();
        assert_eq!((set.sip.user_agent.as_str(), set.sip.request_limits().per_source_per_sec), ("Acme Prov", 0));
        let err = |toml: &str| ServerConfig::from_toml(toml).unwrap_err().to_string();
        assert!(err("[sip]\nuser_agent = \"a\\r\\nX: y\"\n").contains("user_agent"));
        assert!(err("[sip]\nuser_agent = \" \"\n").contains("user_agent"));
        assert!(err("[sip]\nmax_server_transactions = 0\n").contains("max_server_transactions"));
    }

    #[test]
    fn the_lease_length_has_a_default_and_bounds() {
        assert_eq!(ServerConfig::from_toml("").unwrap().cluster.lease_secs, 10);
        assert_eq!(ServerConfig::from_toml("[cluster]\nlease_secs = 2\n").unwrap().cluster.lease_secs, 2);
        let err = ServerConfig::from_toml("[cluster]\nlease_secs = 0\n").unwrap_err().to_string();
        assert!(err.contains("cluster.lease_secs must be between 1 and 3600"), "{err}");
    }

    #[test]
    fn limits_have_defaults_and_refuse_zero() {
        let cfg = ServerConfig::from_toml("[limits]\nconnections_per_source = 8\n").unwrap();
        assert_eq!(cfg.limits.connections_per_source, 8);
        assert_eq!(cfg.limits.header_timeout_secs, 10, "the rest keep their defaults");
        let err = ServerConfig::from_toml("[limits]\nidle_timeout_secs = 0\n").unwrap_err().to_string();
        assert!(err.contains("limits.idle_timeout_secs must be at least 1"), "{err}");
        assert!(ServerConfig::from_toml("[limits]\nper_source = 8\n")
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }

    #[test]
    fn errors_say_what_kind_of_problem_and_which_file() {
        assert!(matches!(ServerConfig::from_toml("[sip\n"), Err(ConfigError::Parse(_))));
        assert!(matches!(ServerConfig::from_toml("[security]\nblock_status = 500\n"), Err(ConfigError::Invalid(_))));
        let dir = std::env::temp_dir().join(format!("sipprov-config-test-{}", std::process::id()));
        let missing = ServerConfig::from_file(&dir.join("absent.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }) && missing.to_string().starts_with("cannot read "));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bad.toml");
        std::fs::write(&file, "[security]\nblock_status = 500\n").unwrap();
        let bad = ServerConfig::from_file(&file).unwrap_err();
        assert_eq!(bad.to_string(), format!("{}: security.block_status must be 403 or 429", file.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
