//! The sipprov server.
//!
//! It runs two HTTP listeners over one shared [`state::AppState`]:
//! - the **provisioning** listener ([`provision`]), which phones reach: it maps a
//!   request path and User-Agent to a device and one of its vendor's files,
//!   and answers from the render cache ([`cache`]) with ETag/Last-Modified;
//! - the **admin API** ([`api`]), JSON over HTTP on localhost behind a bearer
//!   token, which the `sipprov` CLI drives.
//!
//! The store is the source of truth; [`inventory`] keeps a copy of it in memory
//! so serving a known device touches no database. Fetch records go to the store
//! through a batching writer ([`fetchlog`]) off the request path.
//!
//! Every listener admits connections within caps and closes idle ones ([`listener`]): one host
//! cannot take the descriptors that the others, and the admin API, need.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sipprov_server::ServerError> {
//! let config = sipprov_server::ServerConfig::default();
//! let running = sipprov_server::start(config).await?;
//! println!("phones: http://{}/", running.http_addr);
//! running.wait().await
//! # }
//! ```

pub mod api;
pub mod auth;
pub mod cache;
pub mod campaign;
/// Check-sync lives in its own crate, usable without a server; the server sends the same NOTIFY.
pub use sipprov_checksync as checksync;
pub mod config;
pub mod datadir;
pub mod fetchlog;
pub mod inventory;
pub mod listener;
pub mod metrics;
mod notify;
pub mod pnp;
pub mod provision;
pub mod sip_service;
pub mod sip_tls;
pub mod state;
pub mod tls;
mod token;
mod writable;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{ConfigError, ServerConfig};
use state::AppState;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen { what: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] sipprov_store::StoreError),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("server task failed: {0}")]
    Task(String),
    /// Start-up could not write where it must (see `writable`): it refuses to run read-only.
    #[error("{what} {path} is not writable: {reason}")]
    NotWritable { what: &'static str, path: String, reason: String },
}

/// A started server: its bound addresses and its tasks.
pub struct RunningServer {
    pub http_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub state: Arc<AppState>,
    tasks: JoinSet<Result<(), ServerError>>,
}

impl RunningServer {
    /// Runs until a listener fails.
    pub async fn wait(mut self) -> Result<(), ServerError> {
        while let Some(done) = self.tasks.join_next().await {
            done.map_err(|e| ServerError::Task(e.to_string()))??;
        }
        Ok(())
    }
}

/// Opens the store, loads the inventory, binds the listeners and starts serving.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    state::limit_malloc_arenas();
    let state = AppState::open(&config).await?;
    let admission = listener::Admission::new(&config.limits, state.metrics.clone());
    let http = bind("provisioning HTTP", config.http.listen).await?;
    let api = bind("admin API", config.api.listen).await?;
    let (http_addr, api_addr) = (local(&http, config.http.listen)?, local(&api, config.api.listen)?);
    let (sip, pnp) = sip_service::bind(&config, http_addr, &admission).await?;
    let _ = state.sip.set(sip.clone());
    let sip_udp = sip.local_addr(sipprov_sip::Transport::Udp);
    let sip_tcp = sip.local_addr(sipprov_sip::Transport::Tcp);
    let sip_tls = sip.local_addr(sipprov_sip::Transport::Tls);
    let https = tls::HttpsListener::bind(config.http.tls.as_ref()).await?;
    config::write_listening_file(
        &config.data_dir,
        &serde_json::json!({
            "http": http_addr.to_string(), "api": api_addr.to_string(),
            "sip_udp": sip_udp.map(|a| a.to_string()), "sip_tcp": sip_tcp.map(|a| a.to_string()),
            "sip_tls": sip_tls.map(|a| a.to_string()),
            "https": https.as_ref().map(|h| h.addr.to_string()),
        }),
    );
    tracing::info!(%http_addr, %api_addr, ?sip_udp, ?sip_tcp, ?sip_tls, data_dir = %config.data_dir.display(), "sipprov listening");

    let mut tasks = JoinSet::new();
    let phone_app = provision::router(state.clone());
    let (timeouts, http_limiter) = (admission.http, admission.phone_limiter("provisioning HTTP"));
    tasks.spawn(listener::serve_http("provisioning HTTP", http, phone_app, http_limiter, timeouts));
    let api_app = api::router(state.clone());
    tasks.spawn(listener::serve_http("admin API", api, api_app, admission.api_limiter(), timeouts));
    if let Some(https) = https {
        tasks.spawn(https.serve(state.clone(), admission.phone_limiter("provisioning HTTPS"), timeouts));
    }
    tasks.spawn(state.clone().watch_templates());
    tasks.spawn(state.clone().run_campaigns());
    tasks.spawn(sip_service::serve(sip, state.clone(), pnp));
    Ok(RunningServer { http_addr, api_addr, state, tasks })
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    listener::bind_tcp(addr).map_err(|source| ServerError::Listen { what, addr, source })
}

fn local(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Listen { what: "local address", addr, source })
}
