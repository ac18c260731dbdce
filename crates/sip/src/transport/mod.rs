//! Transports: UDP sockets and TCP connections on tokio, behind one `Transports` set that the
//! endpoint sends through. UDP reader tasks hand each datagram to the dispatcher directly;
//! stream connections queue their framed messages to the endpoint's dispatch task.
//!
//! [`Transport`] is an enum with room for TLS: a TLS transport would be another stream
//! transport using the same [`crate::message::framing::StreamFramer`] as TCP.

mod tcp;
mod udp;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, Weak};

use bytes::Bytes;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub use tcp::TcpTransport;

use crate::endpoint::Inner;

/// Asked-for UDP receive buffer (the kernel caps it at `net.core.rmem_max`).
const UDP_RECV_BUFFER: usize = 4 << 20;

/// A transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP: unreliable, retransmissions by the transaction layer.
    Udp,
    /// TCP: reliable stream, Content-Length framing, no retransmissions.
    Tcp,
}

impl Transport {
    /// The token used in Via (`UDP`, `TCP`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// True for stream transports, where timers E/K/J are zero (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where to send a request: an address, a transport and optionally the local UDP socket to send from.
///
/// ```
/// use sipprov_sip::{Target, Transport};
/// let t = Target::udp("192.0.2.7:5060".parse().unwrap()).from_local("0.0.0.0:5060".parse().unwrap());
/// assert_eq!(t.transport, Transport::Udp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Remote address.
    pub addr: SocketAddr,
    /// Transport to use.
    pub transport: Transport,
    /// For UDP, the local address of the endpoint socket to send from (e.g. the socket a PnP
    /// SUBSCRIBE arrived on); `None` means the first UDP socket.
    pub local: Option<SocketAddr>,
}

impl Target {
    /// A UDP target.
    pub fn udp(addr: SocketAddr) -> Target {
        Target { addr, transport: Transport::Udp, local: None }
    }
    /// A TCP target.
    pub fn tcp(addr: SocketAddr) -> Target {
        Target { addr, transport: Transport::Tcp, local: None }
    }
    /// Sends from the endpoint socket bound to `local`.
    pub fn from_local(mut self, local: SocketAddr) -> Target {
        self.local = Some(local);
        self
    }
}

/// A transport-level failure.
#[derive(Debug, Error)]
pub enum TransportError {
    /// Binding a socket failed.
    #[error("cannot bind {transport} on {addr}: {source}")]
    Bind {
        /// Transport.
        transport: Transport,
        /// Requested address.
        addr: SocketAddr,
        /// OS error.
        source: io::Error,
    },
    /// The endpoint has no socket for this transport (or none bound at the requested local address).
    #[error("no {0} socket on this endpoint")]
    NoSocket(Transport),
    /// The peer refused the connection or is unreachable (TCP connect failure, ICMP unreachable).
    #[error("{addr} unreachable over {transport}: {reason}")]
    Unreachable {
        /// Remote address.
        addr: SocketAddr,
        /// Transport.
        transport: Transport,
        /// OS reason.
        reason: String,
    },
    /// Sending failed for another reason.
    #[error("sending to {addr} over {transport} failed: {source}")]
    Send {
        /// Remote address.
        addr: SocketAddr,
        /// Transport.
        transport: Transport,
        /// OS error.
        source: io::Error,
    },
}

/// One message received by a transport (one datagram, or one framed stream message).
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The message bytes.
    pub data: Bytes,
    /// Source address.
    pub source: SocketAddr,
    /// Local address it arrived on.
    pub local: SocketAddr,
    /// Transport.
    pub transport: Transport,
}

/// Every socket of an endpoint.
pub(crate) struct Transports {
    /// Each socket with its local address (asked once: `local_addr` is a system call).
    udp: RwLock<Vec<(SocketAddr, Arc<UdpSocket>)>>,
    pub(crate) tcp: Option<Arc<TcpTransport>>,
    pub(crate) tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Transports {
    pub(crate) fn new(tcp: Option<Arc<TcpTransport>>) -> Transports {
        Transports { udp: RwLock::new(Vec::new()), tcp, tasks: std::sync::Mutex::new(Vec::new()) }
    }

    /// Adds a UDP socket and starts reading from it.
    pub(crate) fn add_udp(
        &self,
        socket: UdpSocket,
        max_message: usize,
        endpoint: Weak<Inner>,
    ) -> io::Result<SocketAddr> {
        let local = socket.local_addr()?;
        // A burst of responses to a fleet-wide check-sync must not overflow the kernel's default
        // ~200 KiB buffer while the process is busy: a lost 200 costs a retransmission, or a
        // false timeout when the phone has already forgotten the transaction.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(UDP_RECV_BUFFER);
        let socket = Arc::new(socket);
        let task = tokio::spawn(udp::read_loop(socket.clone(), local, endpoint, max_message));
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
        self.udp.write().unwrap_or_else(|e| e.into_inner()).push((local, socket));
        Ok(local)
    }

    /// Local addresses of the UDP sockets, in the order they were added.
    pub(crate) fn udp_addrs(&self) -> Vec<SocketAddr> {
        let socks = self.udp.read().unwrap_or_else(|e| e.into_inner());
        socks.iter().map(|(local, _)| *local).collect()
    }

    fn udp_socket(&self, local: Option<SocketAddr>) -> Option<(SocketAddr, Arc<UdpSocket>)> {
        let socks = self.udp.read().unwrap_or_else(|e| e.into_inner());
        match local {
            None => socks.first().cloned(),
            Some(l) => socks.iter().find(|(addr, _)| *addr == l).cloned(),
        }
    }

    /// The local address requests to `target` leave from (for Via sent-by).
    pub(crate) fn local_for(&self, target: &Target) -> Option<SocketAddr> {
        match target.transport {
            Transport::Udp => self.udp_socket(target.local).map(|(local, _)| local),
            Transport::Tcp => self.tcp.as_ref().map(|t| t.local_addr()),
        }
    }

    /// Sends one message.
    pub(crate) async fn send(&self, target: &Target, data: Bytes) -> Result<(), TransportError> {
        match target.transport {
            Transport::Udp => {
                let (_, sock) = self.udp_socket(target.local).ok_or(TransportError::NoSocket(Transport::Udp))?;
                udp::send(&sock, target.addr, &data).await
            }
            Transport::Tcp => {
                let tcp = self.tcp.as_ref().ok_or(TransportError::NoSocket(Transport::Tcp))?;
                tcp.send(target.addr, data).await
            }
        }
    }
}

impl Drop for Transports {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}
