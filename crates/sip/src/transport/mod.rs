//! Transports: UDP sockets, and TCP and TLS connections, on tokio, behind one `Transports` set
//! that the layers above send through. The transports know nothing above them: what they
//! receive goes to a sink they were given, as pjsip's transport manager hands received messages
//! to a callback and sipgo's transport layer to the handler registered with `OnMessage`. UDP
//! reader tasks call an `InboundSink` inline for each datagram (one task wake-up per response);
//! stream connections queue their framed messages and failures (`StreamEvent`) to a channel.
//!
//! TCP and TLS are both stream transports: `stream` holds what they share (a connection per
//! remote address reused in both directions, Content-Length framing with
//! [`crate::message::framing::StreamFramer`], reader and writer tasks), generic over
//! `AsyncRead + AsyncWrite`; `tcp` and `tls` only open and accept connections. TLS takes
//! rustls configurations from the caller ([`TlsConfig`]) and reads no files. Stream connections
//! close when idle or stalled ([`StreamTimeouts`]), and inbound ones are admitted by the
//! application's [`ConnectionGate`] (its per-source and global caps).

mod limits;
mod stream;
mod tcp;
mod tls;
mod udp;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, Weak};

use bytes::Bytes;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

pub use limits::{ConnectionGate, ConnectionPermit, StreamTimeouts};
pub(crate) use stream::StreamSettings;
pub use tcp::TcpTransport;
pub use tls::{TlsConfig, TlsListen, TlsTransport};

use crate::route::RouteCache;
use crate::text::{push_decimal, push_ip};

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
    /// TLS over TCP (RFC 3261 §26.2): reliable like TCP, with the same framing.
    Tls,
}

impl Transport {
    /// The token used in Via (`UDP`, `TCP`, `TLS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The default port (RFC 3261 §19.1.2): 5061 for TLS, else 5060.
    pub fn default_port(self) -> u16 {
        if self == Transport::Tls {
            5061
        } else {
            5060
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

/// Where to send a request: an address, a transport, optionally the local UDP socket to send
/// from, and for TLS the name the peer's certificate must carry.
///
/// ```
/// use sipprov_sip::{Target, Transport};
/// let t = Target::udp("192.0.2.7:5060".parse().unwrap()).from_local("0.0.0.0:5060".parse().unwrap());
/// assert_eq!(t.transport, Transport::Udp);
/// let t = Target::tls("192.0.2.7:5061".parse().unwrap()).with_server_name("phone7.example.com");
/// assert_eq!(t.server_name.as_deref(), Some("phone7.example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Remote address.
    pub addr: SocketAddr,
    /// Transport to use.
    pub transport: Transport,
    /// For UDP, the local address of the endpoint socket to send from (e.g. the socket a PnP
    /// SUBSCRIBE arrived on); `None` means the first UDP socket.
    pub local: Option<SocketAddr>,
    /// For TLS, the host name (or IP address) verified against the peer's certificate when a
    /// connection is opened; `None` verifies the IP address of `addr`.
    pub server_name: Option<Arc<str>>,
}

impl Target {
    /// A target over any transport.
    pub fn new(addr: SocketAddr, transport: Transport) -> Target {
        Target { addr, transport, local: None, server_name: None }
    }
    /// A UDP target.
    pub fn udp(addr: SocketAddr) -> Target {
        Target::new(addr, Transport::Udp)
    }
    /// A TCP target.
    pub fn tcp(addr: SocketAddr) -> Target {
        Target::new(addr, Transport::Tcp)
    }
    /// A TLS target, verified against its IP address unless a server name is given.
    pub fn tls(addr: SocketAddr) -> Target {
        Target::new(addr, Transport::Tls)
    }
    /// Sends from the endpoint socket bound to `local`.
    pub fn from_local(mut self, local: SocketAddr) -> Target {
        self.local = Some(local);
        self
    }
    /// The name to verify the peer's TLS certificate against (a URI host: a DNS name, an IPv4
    /// address or a bracketed IPv6 reference).
    pub fn with_server_name(mut self, name: &str) -> Target {
        self.server_name = Some(name.into());
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
    /// The TLS handshake failed: the peer's certificate was refused (`certificate`), the peer
    /// refused ours, or the peer does not speak TLS.
    #[error("TLS handshake with {addr} failed: {reason}")]
    Tls {
        /// Remote address.
        addr: SocketAddr,
        /// rustls's account of the failure.
        reason: String,
        /// True when the peer's certificate did not verify.
        certificate: bool,
    },
    /// A connection the request went out on failed afterwards: a TLS alert (a TLS 1.3 peer
    /// refuses a client certificate only once our side of the handshake is over) or a reset.
    #[error("the {transport} connection to {addr} failed: {reason}")]
    ConnectionFailed {
        /// Remote address.
        addr: SocketAddr,
        /// Transport.
        transport: Transport,
        /// The alert in rustls's words, or the OS error.
        reason: String,
        /// True when the peer's alert is about our client certificate (missing or refused).
        our_certificate: bool,
    },
    /// New TLS settings cannot be taken while running ([`crate::Endpoint::reload_tls`]).
    #[error("cannot reload TLS: {0}")]
    Reload(String),
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

impl TransportError {
    /// The same error again, for each of several senders that waited on one connection attempt.
    pub(crate) fn replay(&self) -> TransportError {
        let io = |e: &io::Error| io::Error::new(e.kind(), e.to_string());
        match self {
            TransportError::Bind { transport, addr, source } => {
                TransportError::Bind { transport: *transport, addr: *addr, source: io(source) }
            }
            TransportError::NoSocket(t) => TransportError::NoSocket(*t),
            TransportError::Unreachable { addr, transport, reason } => {
                TransportError::Unreachable { addr: *addr, transport: *transport, reason: reason.clone() }
            }
            TransportError::Tls { addr, reason, certificate } => {
                TransportError::Tls { addr: *addr, reason: reason.clone(), certificate: *certificate }
            }
            TransportError::Send { addr, transport, source } => {
                TransportError::Send { addr: *addr, transport: *transport, source: io(source) }
            }
            TransportError::Reload(why) => TransportError::Reload(why.clone()),
            TransportError::ConnectionFailed { addr, transport, reason, our_certificate } => {
                TransportError::ConnectionFailed {
                    addr: *addr,
                    transport: *transport,
                    reason: reason.clone(),
                    our_certificate: *our_certificate,
                }
            }
        }
    }
}

/// The port to write in Via and Contact: none for an outbound-only transport (port 0).
pub(crate) fn advertised_port(local: SocketAddr) -> Option<u16> {
    (local.port() != 0).then_some(local.port())
}

/// Our Contact for a request sent over `transport` from `local` (RFC 3261 §8.1.1.8): a `sips:`
/// URI when the Request-URI is one and the transport is TLS (RFC 5630 §3.1.3), else a `sip:`
/// URI with the transport parameter of stream transports.
///
/// ```
/// use sipprov_sip::transport::contact_uri;
/// use sipprov_sip::Transport;
/// let local = "192.0.2.1:5061".parse().unwrap();
/// assert_eq!(contact_uri(Transport::Tls, local, "sip:100@192.0.2.7"), "sip:192.0.2.1:5061;transport=tls");
/// assert_eq!(contact_uri(Transport::Tls, local, "SIPS:100@192.0.2.7"), "sips:192.0.2.1:5061");
/// assert_eq!(contact_uri(Transport::Udp, "192.0.2.1:5060".parse().unwrap(), "sip:100@h"), "sip:192.0.2.1:5060");
/// ```
pub fn contact_uri(transport: Transport, local: SocketAddr, request_uri: &str) -> String {
    let sips = request_uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    let mut uri = String::with_capacity(64);
    uri.push_str(if transport == Transport::Tls && sips { "sips:" } else { "sip:" });
    push_ip(&mut uri, local.ip());
    if let Some(port) = advertised_port(local) {
        uri.push(':');
        push_decimal(&mut uri, u64::from(port));
    }
    match transport {
        Transport::Tls if sips => {}
        Transport::Tls => uri.push_str(";transport=tls"),
        Transport::Tcp => uri.push_str(";transport=tcp"),
        Transport::Udp => {}
    }
    uri
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

/// Where UDP reader tasks deliver what they receive; the layer above implements it. The reader
/// holds it weakly and stops once it is gone.
pub(crate) trait InboundSink: Send + Sync + 'static {
    /// Whether a received datagram may go on; asked before it is copied or parsed, so that a
    /// source over its rate costs neither.
    fn admit(&self, data: &[u8], source: SocketAddr) -> bool;

    /// Takes one admitted message; the reader waits for it before reading the next.
    fn receive(self: Arc<Self>, msg: Inbound) -> impl Future<Output = ()> + Send;
}

/// What the stream connections hand to the layer above, in the order it happened on each
/// connection: so a failure is seen after the responses that arrived before it.
pub(crate) enum StreamEvent {
    /// One framed message.
    Message(Inbound),
    /// The connection to `addr` failed (a TLS alert, a reset); a close in good order is not
    /// a failure.
    Failed {
        /// Transport.
        transport: Transport,
        /// Remote address.
        addr: SocketAddr,
        /// What the transactions sent on it are told.
        error: TransportError,
    },
}

/// Every socket of an endpoint.
pub(crate) struct Transports {
    /// Each socket with its local address (asked once: `local_addr` is a system call).
    udp: RwLock<Vec<(SocketAddr, Arc<udp::UdpSocket>)>>,
    tcp: Option<Arc<TcpTransport>>,
    tls: Option<Arc<TlsTransport>>,
    /// Which local address the OS routes a destination from, for sockets bound to `0.0.0.0`.
    routes: RouteCache,
    /// Reader and accept tasks, aborted when the transports are dropped.
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Transports {
    pub(crate) fn new(tcp: Option<Arc<TcpTransport>>, tls: Option<Arc<TlsTransport>>) -> Transports {
        Transports {
            udp: RwLock::new(Vec::new()),
            tcp,
            tls,
            routes: RouteCache::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Keeps a task that must end with the transports (an accept loop, a receive task).
    pub(crate) fn keep_task(&self, task: JoinHandle<()>) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).push(task);
    }

    /// The TCP listener's address.
    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().map(|t| t.local_addr())
    }

    /// The TLS listener's address.
    pub(crate) fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|t| t.local_addr())
    }

    /// Takes renewed TLS settings (see [`TlsTransport::reload`]).
    pub(crate) fn reload_tls(&self, tls: &TlsConfig) -> Result<(), TransportError> {
        self.tls.as_ref().ok_or(TransportError::NoSocket(Transport::Tls))?.reload(tls)
    }

    /// Our address as the peer should see it: the socket's, with an unspecified IP replaced by
    /// the address the OS would route `target` from.
    pub(crate) fn sent_by(&self, target: &Target) -> Result<SocketAddr, TransportError> {
        let mut local = self.local_for(target).ok_or(TransportError::NoSocket(target.transport))?;
        if local.ip().is_unspecified() {
            if let Some(routed) = self.routes.source_for(local.ip(), target.addr.ip()) {
                local.set_ip(routed);
            }
        }
        Ok(local)
    }

    /// Adds a UDP socket and starts reading from it; what it receives goes to `sink`.
    pub(crate) fn add_udp<S: InboundSink>(
        &self,
        socket: UdpSocket,
        max_message: usize,
        sink: Weak<S>,
    ) -> io::Result<SocketAddr> {
        let local = socket.local_addr()?;
        let socket = udp::UdpSocket::new(socket)?;
        // A burst of responses to a fleet-wide check-sync must not overflow the kernel's default
        // ~200 KiB buffer while the process is busy: a lost 200 costs a retransmission, or a
        // false timeout when the phone has already forgotten the transaction.
        let _ = socket2::SockRef::from(socket.get_ref()).set_recv_buffer_size(UDP_RECV_BUFFER);
        let socket = Arc::new(socket);
        self.keep_task(tokio::spawn(udp::read_loop(socket.clone(), local, sink, max_message)));
        self.udp.write().unwrap_or_else(|e| e.into_inner()).push((local, socket));
        Ok(local)
    }

    /// Local addresses of the UDP sockets, in the order they were added.
    pub(crate) fn udp_addrs(&self) -> Vec<SocketAddr> {
        let socks = self.udp.read().unwrap_or_else(|e| e.into_inner());
        socks.iter().map(|(local, _)| *local).collect()
    }

    fn udp_socket(&self, local: Option<SocketAddr>) -> Option<(SocketAddr, Arc<udp::UdpSocket>)> {
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
            Transport::Tls => self.tls.as_ref().map(|t| t.advertised(target.addr)),
        }
    }

    /// Sends one message.
    pub(crate) async fn send(&self, target: &Target, data: Bytes) -> Result<(), TransportError> {
        match target.transport {
            Transport::Udp => {
                let (_, sock) = self.udp_socket(target.local).ok_or(TransportError::NoSocket(Transport::Udp))?;
                udp::send(&sock, target.addr, &data).await
            }
            // The stream sends' futures (connect, handshake) are many kilobytes; boxed, they no
            // longer make every UDP send's future as large, which each caller's future embeds
            // and moves: unboxed, that copy was a fifth of a UDP NOTIFY's instructions.
            Transport::Tcp => {
                let tcp = self.tcp.as_ref().ok_or(TransportError::NoSocket(Transport::Tcp))?;
                Box::pin(tcp.send(target.addr, data)).await
            }
            Transport::Tls => {
                let tls = self.tls.as_ref().ok_or(TransportError::NoSocket(Transport::Tls))?;
                Box::pin(tls.send(target, data)).await
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
