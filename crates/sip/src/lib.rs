//! `sipprov-sip`: sipprov's own small SIP stack (RFC 3261 and friends).
//!
//! It parses and writes SIP messages byte-exactly, runs UDP, TCP and TLS transports on tokio,
//! implements non-INVITE client and server transactions with RFC 3261 timers, answers digest
//! challenges (RFC 2617/7616/8760) and builds out-of-dialog requests. It knows **nothing** of
//! provisioning: which event to send, and to whom, is decided by the caller.
//!
//! Its layers depend one way (ARCHITECTURE.md, "The SIP stack's layers"; checked by
//! `tests/layering.rs`): message syntax ([`message`], [`headers`], [`uri`]) at the bottom, then
//! the [`transport`]s, which deliver what they receive to a sink they are given and know nothing
//! above them, then the [`transaction`] layer, which sends through the transports and never
//! sees the endpoint, then the [`endpoint`], which builds the two, wires its receive path in as
//! the transports' sink and offers the public entry points.
//!
//! A transaction is awaited alone ([`Endpoint::send_request`]) or run with thousands of others
//! from one task ([`Endpoint::run_batch`]), the way to reach a fleet; both follow the same
//! RFC 3261 timer rules.
//!
//! TLS (RFC 3261 §26.2, `SIP/2.0/TLS`) is a reliable stream transport like TCP: no
//! retransmissions, Content-Length framing, one connection per peer address reused in both
//! directions. The caller hands in rustls configurations ([`TlsConfig`]): a `ServerConfig` for
//! an optional listener and a `ClientConfig` that decides whom outbound connections trust; a
//! [`Target`] names the host the peer's certificate must carry ([`Target::with_server_name`]).
//!
//! ```no_run
//! use sipprov_sip::{Endpoint, EndpointConfig, RequestBuilder, Target, Transport};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let ep = Endpoint::bind(EndpointConfig { udp: Some("127.0.0.1:0".parse()?), ..Default::default() }).await?;
//! let target = Target::udp("127.0.0.1:5060".parse()?);
//! let req = ep
//!     .request("NOTIFY", "sip:100@127.0.0.1:5060", &target)?
//!     .from("sip:prov@127.0.0.1")
//!     .to("sip:100@127.0.0.1")
//!     .header("Event", "check-sync;reboot=false")
//!     .header("Subscription-State", "terminated")
//!     .build();
//! let resp = ep.send_request(req, target, None).await?;
//! println!("{} {}", resp.status, resp.reason);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod admission;
pub mod auth;
pub mod builder;
pub mod endpoint;
pub mod error;
pub mod headers;
pub mod logsafe;
pub mod message;
pub mod route;
pub mod text;
pub mod transaction;
pub mod transport;
pub mod uri;

pub use admission::RequestLimits;
pub use builder::RequestBuilder;
pub use endpoint::{Endpoint, EndpointConfig, IncomingRequest, IncomingRequests, Observer, Stats, WeakEndpoint};
pub use error::ParseError;
pub use message::{Message, Request, Response};
pub use transaction::{BatchRequest, BatchResult, Credentials, Timers, TransactionError, TxEvent, TxEventKind};
pub use transport::{
    ConnectionGate, ConnectionPermit, StreamTimeouts, Target, TlsConfig, TlsListen, Transport, TransportError,
};
pub use uri::SipUri;
