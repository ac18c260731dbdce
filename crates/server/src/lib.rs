//! The sipprov server.
//!
//! It is a set of small services, each owning its data, built in dependency order by one
//! wiring module ([`start`]); each listener and handler is given only the services it uses:
//! - the **provisioning core** ([`files::Files`]) maps a request path and User-Agent to a
//!   device and one of its vendor's files, and answers from the render cache ([`cache`]) with
//!   ETag/Last-Modified; the phone-facing HTTP and HTTPS listeners ([`provision`], [`tls`])
//!   call it;
//! - the **device registry** ([`registry::Registry`]) is the one way devices, groups and
//!   global settings change: store first, then the in-memory [`inventory`], then the cache;
//!   the admin API and PnP discovery both go through it;
//! - the **notifier** ([`notify::Notifier`]) holds the SIP endpoint, bound before it is built,
//!   and sends check-sync ([`checksync`]); the **campaign engine**
//!   ([`campaign::CampaignEngine`]) paces it over a fleet;
//! - the **event sink** ([`fetchlog`]) writes fetches and history events to the store through a
//!   batching writer, off the request path;
//! - the **admin API** ([`api`]), JSON over HTTP on localhost behind a bearer token, which the
//!   `sipprov` CLI drives, and the **web console** ([`console`]) on the same listener, for
//!   the console users ([`users`]) the CLI creates; **PnP** ([`pnp`]) answers `ua-profile` SUBSCRIBEs on the SIP
//!   endpoint ([`sip_service`]).
//!
//! The store is the source of truth; the inventory keeps a copy of it in memory so serving a
//! known device touches no database. Modules call one way only (foundation ← services ←
//! edges ← wiring); `tests/layering.rs` holds the table and fails on an import it does not allow.
//!
//! Every listener admits connections within caps and closes idle ones ([`listener`]): one host
//! cannot take the descriptors that the others, and the admin API, need.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sipprov_server::ServerError> {
//! let config = sipprov_server::ServerConfig::default();
//! let mut running = sipprov_server::start(config).await?;
//! println!("phones: http://{}/", running.http_addr);
//! running.wait().await
//! # }
//! ```

pub mod access;
pub mod api;
pub mod auth;
pub mod cache;
pub mod campaign;
pub mod catalog;
pub mod cluster;
/// Check-sync lives in its own crate, usable without a server; the server sends the same NOTIFY.
pub use sipprov_checksync as checksync;
pub mod config;
pub mod console;
pub mod datadir;
pub mod directories;
pub mod discoveries;
pub mod fetchlog;
pub mod files;
pub mod filestore;
pub mod inventory;
pub mod lease;
pub mod listener;
pub mod listing;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod pins;
pub mod pnp;
pub mod provision;
pub mod registry;
pub mod resources;
pub mod rollout;
pub mod runtime;
pub mod seen;
pub mod sip_service;
pub mod sip_tls;
pub mod summary;
pub mod templates;
pub mod tls;
mod token;
pub mod unlock;
pub mod users;
mod wiring;
mod writable;

use std::net::SocketAddr;

pub use config::{ConfigError, ServerConfig};
pub use wiring::{start, RunningServer};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory cannot be created or used.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A listener cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        /// Which listener (`provisioning HTTP`, `admin API`, ...).
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
    /// The store failed at start-up (open, migrations, loading the inventory).
    #[error(transparent)]
    Store(#[from] sipprov_store::StoreError),
    /// The configuration is inconsistent.
    #[error("configuration error: {0}")]
    Config(String),
    /// A server task ended with an error or panicked.
    #[error("server task failed: {0}")]
    Task(String),
    /// Start-up could not write where it must (see `writable`): it refuses to run read-only.
    #[error("{what} {path} is not writable: {reason}")]
    NotWritable {
        /// What it is (`data directory`, `database`).
        what: &'static str,
        /// Its path.
        path: String,
        /// Why it cannot be written.
        reason: String,
    },
}
