//! Non-INVITE transactions (RFC 3261 §17.1.2 client, §17.2.2 server): timers, matching keys,
//! the events reported to observers, and the errors a client transaction ends with.
//!
//! The layer sits above the transports and below the endpoint: it sends through the transports
//! it is given and never sees the endpoint (`layer::TransactionLayer` is all it works with).
//! Inside, the modules depend one way:
//!
//! - lower: `timing` (the client transaction's timer rules, no I/O), `table` (the client
//!   transactions by branch), `inbox` (where responses are left for them), `request` (headers a
//!   request must carry, the digest answer), `server` (server transactions), `layer`;
//! - on top, the two client drivers, which share the lower modules and never name each other:
//!   `client` runs one transaction in its caller's task, `batch` runs many from one task.

pub(crate) mod batch;
pub(crate) mod client;
mod inbox;
pub(crate) mod layer;
pub(crate) mod request;
pub(crate) mod server;
pub(crate) mod table;
mod timing;

pub use batch::{BatchRequest, BatchResult};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::transport::{Transport, TransportError};

/// A callback that sees every [`TxEvent`] (retransmissions, responses, timeouts...).
pub type Observer = Arc<dyn Fn(&TxEvent) + Send + Sync>;

/// The RFC 3261 timer base values (Table 4).
///
/// ```
/// use std::time::Duration;
/// use sipprov_sip::Timers;
/// let t = Timers { t1: Duration::from_millis(100), ..Timers::default() };
/// assert_eq!(t.timer_f(), Duration::from_millis(6400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (default 500 ms): first retransmission interval.
    pub t1: Duration,
    /// Largest retransmission interval for non-INVITE requests (default 4 s).
    pub t2: Duration,
    /// Longest a message may live in the network (default 5 s): Timer K.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl Timers {
    /// Timer F (and J on UDP): 64·T1.
    pub fn timer_f(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer E after `sent` transmissions while Trying: T1·2^(sent-1), capped at T2.
    pub fn timer_e(&self, sent: u32) -> Duration {
        let factor = 1u32.checked_shl(sent.saturating_sub(1)).unwrap_or(u32::MAX);
        self.t1.checked_mul(factor).map_or(self.t2, |d| d.min(self.t2))
    }

    /// Offsets from the first send at which a UDP request is (re)transmitted when no response
    /// arrives: 0, T1, 3·T1, 7·T1, ... while below Timer F.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = sipprov_sip::Timers::default();
    /// let ms: Vec<u128> = t.udp_schedule().iter().map(Duration::as_millis).collect();
    /// assert_eq!(ms, [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    /// ```
    pub fn udp_schedule(&self) -> Vec<Duration> {
        let mut out = vec![Duration::ZERO];
        let mut at = Duration::ZERO;
        for sent in 1.. {
            at += self.timer_e(sent);
            if at >= self.timer_f() {
                break;
            }
            out.push(at);
        }
        out
    }
}

/// Username and password used to answer a 401/407 challenge. `Debug` shows the user name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Authentication user name (the SIP line's auth ID).
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"********").finish()
    }
}

/// Why a client transaction ended without a final response.
#[derive(Debug, Error)]
pub enum TransactionError {
    /// Timer F fired: no final response.
    #[error("no final response after {after:?} ({retransmissions} retransmissions)")]
    Timeout {
        /// Retransmissions sent.
        retransmissions: u32,
        /// Time waited (Timer F).
        after: Duration,
    },
    /// The peer is unreachable (TCP connection refused, ICMP port unreachable...).
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// Another transport failure.
    #[error(transparent)]
    Transport(TransportError),
    /// The request cannot be sent as given (missing header, bad credentials challenge...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl From<TransportError> for TransactionError {
    fn from(e: TransportError) -> TransactionError {
        match e {
            TransportError::Unreachable { .. } => TransactionError::Unreachable(e.to_string()),
            other => TransactionError::Transport(other),
        }
    }
}

/// What happened, reported to the endpoint's observer (tests, metrics, logs).
#[derive(Debug, Clone)]
pub struct TxEvent {
    /// When it happened.
    pub at: Instant,
    /// Via branch of the transaction.
    pub branch: String,
    /// Method of the transaction.
    pub method: String,
    /// The remote address.
    pub peer: SocketAddr,
    /// Transport.
    pub transport: Transport,
    /// What happened.
    pub kind: TxEventKind,
}

/// Kinds of [`TxEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEventKind {
    /// A client request was sent; `retransmission` is 0 for the first send.
    RequestSent {
        /// 0 for the original, then 1, 2, ...
        retransmission: u32,
    },
    /// A response arrived for a client transaction.
    ResponseReceived {
        /// Status code.
        status: u16,
    },
    /// Timer F fired.
    TimedOut,
    /// A new request was received and handed to the application.
    RequestReceived,
    /// A retransmitted request was absorbed by its server transaction.
    RetransmissionAbsorbed {
        /// True when the last response was sent again.
        response_resent: bool,
    },
    /// A response was sent by a server transaction.
    ResponseSent {
        /// Status code.
        status: u16,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials { username: "1001".into(), password: "hunter2".into() };
        let shown = format!("{c:?} {c:#?} {:?}", Some(&c));
        assert!(!shown.contains("hunter2") && shown.contains("1001"), "{shown}");
    }

    fn ms(v: &[Duration]) -> Vec<u128> {
        v.iter().map(Duration::as_millis).collect()
    }

    #[test]
    fn timer_e_doubles_and_caps_at_t2() {
        let t = Timers::default();
        let e: Vec<u128> = (1..=6).map(|n| t.timer_e(n).as_millis()).collect();
        assert_eq!(e, [500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(t.timer_e(200), t.t2, "no overflow for huge counts");
    }

    #[test]
    fn schedule_with_short_timers() {
        let t = Timers { t1: Duration::from_millis(100), t2: Duration::from_millis(400), t4: Duration::ZERO };
        let s = ms(&t.udp_schedule());
        assert_eq!(s[..6], [0, 100, 300, 700, 1100, 1500]);
        assert_eq!(*s.last().unwrap(), 6300, "last send before Timer F = 6.4 s");
        assert_eq!(s.len(), 18);
        // With T2 at its default, T1 = 100 ms doubles all the way: 0, .1, .3, .7, 1.5, 3.1, 6.3 s.
        let t = Timers { t1: Duration::from_millis(100), ..Timers::default() };
        assert_eq!(ms(&t.udp_schedule()), [0, 100, 300, 700, 1500, 3100, 6300]);
    }

    #[test]
    fn errors_read_well() {
        let e = TransactionError::Timeout { retransmissions: 10, after: Duration::from_secs(32) };
        assert_eq!(e.to_string(), "no final response after 32s (10 retransmissions)");
    }
}
