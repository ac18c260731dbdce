//! How long a stream connection (TCP or TLS) may sit idle or take over a message, and who
//! decides whether an inbound connection may stay open at all.
//!
//! A peer that opens connections and sends nothing would otherwise hold a file descriptor and
//! two tasks each for ever; enough of them exhaust the process's descriptors. Timeouts close
//! what is idle or stalled; a [`ConnectionGate`] (the application's policy: per-source and
//! global caps) refuses what is over its limits before any byte is read.

use std::any::Any;
use std::net::SocketAddr;
use std::time::Duration;

use super::Transport;

/// Timeouts of stream connections.
///
/// ```
/// use sipprov_sip::transport::StreamTimeouts;
/// let t = StreamTimeouts::default();
/// assert!(t.message < t.idle);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimeouts {
    /// A connection on which no byte moves either way for this long is closed. It must exceed
    /// Timer F (64·T1) so that a request sent on an outbound connection can still be answered.
    pub idle: Duration,
    /// Once a message has started arriving, the rest of it must arrive within this time
    /// (a peer trickling a header a byte at a time cannot hold the connection open).
    pub message: Duration,
    /// A TLS handshake (inbound or outbound) that takes longer fails.
    pub handshake: Duration,
}

impl Default for StreamTimeouts {
    fn default() -> StreamTimeouts {
        StreamTimeouts {
            idle: Duration::from_secs(300),
            message: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
        }
    }
}

/// What an admitted inbound connection holds until it closes: dropping it gives the share back.
pub type ConnectionPermit = Box<dyn Any + Send + Sync>;

/// The application's admission policy for inbound stream connections.
///
/// It is asked once per accepted connection, before the TLS handshake and before any read;
/// `None` closes the connection at once. The permit is held as long as the connection is open,
/// so a gate counts open connections by holding state in it (see its `Drop`). Outbound
/// connections (ours) are not asked.
pub trait ConnectionGate: Send + Sync {
    /// A permit for an inbound `transport` connection from `peer`, or `None` to refuse it.
    fn admit(&self, transport: Transport, peer: SocketAddr) -> Option<ConnectionPermit>;
}
