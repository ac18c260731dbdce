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

/// Everything `sipprov serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Holds the SQLite database, the API token and template overrides.
    pub data_dir: PathBuf,
    /// A `postgres://` URL to use PostgreSQL instead of the embedded SQLite.
    pub database_url: Option<String>,
    pub http: HttpConfig,
    pub api: ApiConfig,
    pub sip: SipConfig,
}

/// The phone-facing provisioning listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
}

/// The admin API listener (keep it on localhost; it is token-protected regardless).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
}

/// The SIP listener (check-sync and Plug-and-Play).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    pub listen: SocketAddr,
    /// Send check-sync through this proxy/registrar (`host:port`) instead of to the device's contact.
    pub outbound_proxy: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./sipprov-data"),
            database_url: None,
            http: HttpConfig::default(),
            api: ApiConfig::default(),
            sip: SipConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: SocketAddr::from(([0, 0, 0, 0], 8080)) }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { listen: SocketAddr::from(([127, 0, 0, 1], 8081)) }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig { listen: SocketAddr::from(([0, 0, 0, 0], 5060)), outbound_proxy: None }
    }
}

impl ServerConfig {
    /// Parses a TOML configuration; unknown keys are refused so typos do not pass silently.
    pub fn from_toml(text: &str) -> Result<ServerConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<ServerConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ServerConfig::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The database URL: the configured one, or SQLite inside the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("sipprov.db").display()),
        }
    }

    /// Where template overrides live.
    pub fn template_dir(&self) -> PathBuf {
        self.data_dir.join("templates")
    }
}

/// File in the data directory naming the bound addresses, for scripts and tests that start the server on port 0.
pub const LISTENING_FILE: &str = "listening.json";

pub(crate) fn write_listening_file(data_dir: &Path, http: SocketAddr, api: SocketAddr) {
    let body = serde_json::json!({ "http": http.to_string(), "api": api.to_string() });
    if let Err(e) = std::fs::write(data_dir.join(LISTENING_FILE), body.to_string()) {
        tracing::warn!(error = %e, "cannot write {LISTENING_FILE}");
    }
}
