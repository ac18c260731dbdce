//! [`Endpoint`]: the public entry points — send a request and wait for its final response, run
//! a batch, or receive requests and answer them — and the wiring of the layers below.
//!
//! The endpoint builds the transports and the transaction layer, and gives the transports
//! its receive path (`dispatch`) as their sink: UDP readers call it inline, stream
//! connections queue to its task. Calls go one way: endpoint → transaction layer → transports.
//! The endpoint's own state (request admission, the incoming-request channel, User-Agent)
//! stays private to this module.

mod dispatch;
mod queue;

use std::fmt;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::admission::{RequestLimits, SourceLimiter};
use crate::builder::{random_token, RequestBuilder};
use crate::message::{reason_phrase, Limits, Request, Response};
use crate::transaction::batch::{self, BatchRequest, BatchResult};
use crate::transaction::client;
use crate::transaction::layer::TransactionLayer;
use crate::transaction::request::{add_authorization, prepare};
use crate::transaction::server::{build_response, ServerKey};
use crate::transaction::{Credentials, Timers, TransactionError};
use crate::transport::{
    contact_uri, ConnectionGate, StreamTimeouts, Target, TcpTransport, TlsConfig, TlsTransport, Transport,
    TransportError, Transports,
};

pub use crate::transaction::Observer;
pub use queue::IncomingRequests;

/// How to set up an [`Endpoint`].
#[derive(Clone)]
pub struct EndpointConfig {
    /// UDP address to bind (port 0 picks one); `None` for no UDP socket.
    pub udp: Option<SocketAddr>,
    /// TCP address to listen on (port 0 picks one); `None` for no TCP.
    pub tcp: Option<SocketAddr>,
    /// TLS: an optional listener and the client configuration for outbound connections;
    /// `None` for no TLS.
    pub tls: Option<TlsConfig>,
    /// T1, T2, T4.
    pub timers: Timers,
    /// User-Agent put in built requests and `Server` in responses.
    pub user_agent: Option<String>,
    /// Message size limits.
    pub limits: Limits,
    /// Sees every transaction event.
    pub observer: Option<Observer>,
    /// How much received requests waiting in the [`Endpoint::incoming`] queue may hold, in
    /// bytes (each counted as twice its size on the wire plus 1 KiB for its parsed form);
    /// past it a request is answered 503. Default 16 MiB: about 7,000 typical SUBSCRIBEs of
    /// 600 bytes, or 127 of the largest messages the parser accepts (64 KiB).
    pub incoming_bytes: usize,
    /// What received requests may cost: the rate per source and the bounds of the
    /// server-transaction table.
    pub requests: RequestLimits,
    /// Idle, message and TLS handshake timeouts of TCP and TLS connections.
    pub stream_timeouts: StreamTimeouts,
    /// Admits inbound TCP and TLS connections (per-source and global caps); `None` admits all.
    pub connection_gate: Option<Arc<dyn ConnectionGate>>,
}

impl Default for EndpointConfig {
    fn default() -> EndpointConfig {
        EndpointConfig {
            udp: None,
            tcp: None,
            tls: None,
            timers: Timers::default(),
            user_agent: None,
            limits: Limits::default(),
            observer: None,
            incoming_bytes: 16 << 20,
            requests: RequestLimits::default(),
            stream_timeouts: StreamTimeouts::default(),
            connection_gate: None,
        }
    }
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("udp", &self.udp)
            .field("tcp", &self.tcp)
            .field("tls", &self.tls)
            .field("timers", &self.timers)
            .field("user_agent", &self.user_agent)
            .field("limits", &self.limits)
            .field("observer", &self.observer.is_some())
            .field("incoming_bytes", &self.incoming_bytes)
            .field("requests", &self.requests)
            .field("stream_timeouts", &self.stream_timeouts)
            .field("connection_gate", &self.connection_gate.is_some())
            .finish()
    }
}

/// Counters since the endpoint started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client requests sent (first transmissions).
    pub requests_sent: u64,
    /// Client request retransmissions.
    pub retransmissions: u64,
    /// Client transactions ended by Timer F.
    pub timeouts: u64,
    /// New requests handed to the application.
    pub requests_received: u64,
    /// Retransmitted requests absorbed by server transactions.
    pub retransmissions_absorbed: u64,
    /// Responses sent by server transactions (resends are counted by `retransmissions_absorbed`).
    pub responses_sent: u64,
    /// Received messages refused by the parser.
    pub malformed: u64,
    /// Received requests dropped unparsed because their source was over its rate.
    pub requests_rate_limited: u64,
    /// Server transactions forgotten early to keep their table within its bounds.
    pub server_transactions_evicted: u64,
}

/// The endpoint's state: the layers below and what only the endpoint uses. Private to this
/// module and its receive path.
struct Inner {
    transports: Arc<Transports>,
    tx: Arc<TransactionLayer>,
    /// The per-source rate of received requests.
    sources: SourceLimiter,
    limits: Limits,
    /// Shared with every request built by [`Endpoint::request`].
    user_agent: Option<Arc<str>>,
    /// Received messages refused by the parser.
    malformed: AtomicU64,
    /// Received requests dropped unparsed because their source was over its rate.
    rate_limited: AtomicU64,
    incoming_tx: queue::QueueSender,
    incoming_rx: Mutex<Option<IncomingRequests>>,
}

impl Inner {
    /// Sends a server-transaction response with our `Server` header.
    async fn send_response(&self, key: &ServerKey, target: Target, mut resp: Response) -> Result<(), TransportError> {
        if resp.headers.get("Server").is_none() {
            if let Some(ua) = &self.user_agent {
                resp.headers.push("Server", ua);
            }
        }
        self.tx.send_response(key, target, resp).await
    }
}

/// A SIP endpoint: UDP sockets, TCP and TLS listeners, client and server transactions.
/// Cheap to clone; the sockets close when the last clone is dropped.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

/// A reference to an [`Endpoint`] that does not keep its sockets open, for background tasks
/// that should end with it.
///
/// ```
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sipprov_sip::{Endpoint, EndpointConfig};
/// let ep = Endpoint::bind(EndpointConfig { udp: Some("127.0.0.1:0".parse()?), ..Default::default() }).await?;
/// let weak = ep.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(ep);
/// assert!(weak.upgrade().is_none());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct WeakEndpoint {
    inner: Weak<Inner>,
}

impl WeakEndpoint {
    /// The endpoint, unless every [`Endpoint`] clone was dropped.
    pub fn upgrade(&self) -> Option<Endpoint> {
        self.inner.upgrade().map(|inner| Endpoint { inner })
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("udp", &self.udp_addrs())
            .field("tcp", &self.local_addr(Transport::Tcp))
            .field("tls", &self.local_addr(Transport::Tls))
            .finish()
    }
}

impl Endpoint {
    /// Binds the configured sockets (port 0 allowed) and starts the receive tasks.
    pub async fn bind(cfg: EndpointConfig) -> Result<Endpoint, TransportError> {
        let udp = match cfg.udp {
            Some(addr) => Some(UdpSocket::bind(addr).await.map_err(|source| TransportError::Bind {
                transport: Transport::Udp,
                addr,
                source,
            })?),
            None => None,
        };
        Endpoint::start(cfg, udp).await
    }

    /// Builds an endpoint around an already bound UDP socket (e.g. a multicast socket);
    /// `cfg.udp` is ignored, `cfg.tcp` is honoured.
    pub async fn with_udp_socket(cfg: EndpointConfig, socket: UdpSocket) -> Result<Endpoint, TransportError> {
        Endpoint::start(cfg, Some(socket)).await
    }

    /// Like [`Endpoint::with_udp_socket`] for a `std` socket (e.g. one set up with `socket2` for
    /// multicast); it is switched to non-blocking mode.
    pub async fn with_std_udp_socket(cfg: EndpointConfig, socket: StdUdpSocket) -> Result<Endpoint, TransportError> {
        let addr = socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let bind_err = |source| TransportError::Bind { transport: Transport::Udp, addr, source };
        socket.set_nonblocking(true).map_err(bind_err)?;
        Endpoint::start(cfg, Some(UdpSocket::from_std(socket).map_err(bind_err)?)).await
    }

    async fn start(cfg: EndpointConfig, udp: Option<UdpSocket>) -> Result<Endpoint, TransportError> {
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let stream = crate::transport::StreamSettings {
            limits: cfg.limits,
            timeouts: cfg.stream_timeouts,
            gate: cfg.connection_gate.clone(),
        };
        let tcp = match cfg.tcp {
            Some(addr) => Some(TcpTransport::bind(addr, inbound_tx.clone(), stream.clone()).await?),
            None => None,
        };
        let tls = match &cfg.tls {
            Some(tls) => Some(TlsTransport::bind(tls, inbound_tx, stream).await?),
            None => None,
        };
        let (incoming_tx, incoming_rx) = queue::queue(cfg.incoming_bytes);
        let transports =
            Arc::new(Transports::new(tcp.as_ref().map(|(t, _)| t.clone()), tls.as_ref().map(|(t, _)| t.clone())));
        let tx = Arc::new(TransactionLayer::new(transports.clone(), cfg.timers, &cfg.requests, cfg.observer));
        let inner = Arc::new(Inner {
            transports,
            tx,
            sources: SourceLimiter::new(cfg.requests),
            limits: cfg.limits,
            user_agent: cfg.user_agent.map(Arc::from),
            malformed: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            incoming_tx,
            incoming_rx: Mutex::new(Some(incoming_rx)),
        });
        inner.transports.keep_task(tokio::spawn(dispatch::run(Arc::downgrade(&inner), inbound_rx)));
        if let Some((t, listener)) = tcp {
            inner.transports.keep_task(tokio::spawn(TcpTransport::accept_loop(Arc::downgrade(&t), listener)));
        }
        if let Some((t, Some(listener))) = tls {
            inner.transports.keep_task(tokio::spawn(TlsTransport::accept_loop(Arc::downgrade(&t), listener)));
        }
        let ep = Endpoint { inner };
        if let Some(sock) = udp {
            ep.add_udp_socket(sock)?;
        }
        Ok(ep)
    }

    /// Adds another UDP socket (already bound); returns its local address. Requests can be sent
    /// from it with [`Target::from_local`], and requests received on it are answered from it.
    pub fn add_udp_socket(&self, socket: UdpSocket) -> Result<SocketAddr, TransportError> {
        let addr = socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        self.inner
            .transports
            .add_udp(socket, self.inner.limits.max_message, Arc::downgrade(&self.inner))
            .map_err(|source| TransportError::Bind { transport: Transport::Udp, addr, source })
    }

    /// The local address for `transport` (the first UDP socket, or the TCP or TLS listener).
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp_addrs().into_iter().next(),
            Transport::Tcp => self.inner.transports.tcp_addr(),
            Transport::Tls => self.inner.transports.tls_addr(),
        }
    }

    /// Local addresses of every UDP socket.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.inner.transports.udp_addrs()
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        let c = self.inner.tx.counts();
        Stats {
            requests_sent: c.requests_sent,
            retransmissions: c.retransmissions,
            timeouts: c.timeouts,
            requests_received: c.requests_received,
            retransmissions_absorbed: c.retransmissions_absorbed,
            responses_sent: c.responses_sent,
            malformed: self.inner.malformed.load(Ordering::Relaxed),
            requests_rate_limited: self.inner.rate_limited.load(Ordering::Relaxed),
            server_transactions_evicted: self.inner.tx.servers().evicted(),
        }
    }

    /// Number of server transactions currently remembered (for tests and metrics).
    pub fn server_transactions(&self) -> usize {
        self.inner.tx.servers().len()
    }

    /// Number of client transactions running or waiting out Timer K (for tests and metrics).
    pub fn client_transactions(&self) -> usize {
        self.inner.tx.clients().len()
    }

    /// A [`RequestBuilder`] with our Contact and User-Agent, and our address (that of the socket
    /// used for `target`) as the Call-ID's host. It writes no Via: [`Endpoint::send_request`]
    /// and [`Endpoint::run_batch`] write the top Via, our sent-by with `rport` and a fresh branch,
    /// for every transaction they start (RFC 3261 §8.1.1.7), as the request's first header.
    pub fn request(&self, method: &str, uri: &str, target: &Target) -> Result<RequestBuilder, TransportError> {
        let local = self.sent_by(target)?;
        let contact = contact_uri(target.transport, local, uri);
        let mut b = RequestBuilder::new(method, uri).call_id_host(local.ip()).contact_owned(contact);
        if let Some(ua) = &self.inner.user_agent {
            b = b.shared_user_agent(ua.clone());
        }
        Ok(b)
    }

    /// Our address as the peer should see it: the socket address, with an unspecified IP
    /// replaced by the address the OS would route `target` from.
    pub fn sent_by(&self, target: &Target) -> Result<SocketAddr, TransportError> {
        self.inner.transports.sent_by(target)
    }

    /// Runs a complete non-INVITE client transaction (retransmissions per RFC 3261 §17.1.2 and
    /// one digest retry when `credentials` are given) and returns the final response.
    ///
    /// The top Via is (re)written with our address and a fresh branch for every transaction;
    /// Content-Length is set from the body and Max-Forwards defaults to 70.
    pub async fn send_request(
        &self,
        req: Request,
        target: Target,
        credentials: Option<&Credentials>,
    ) -> Result<Response, TransactionError> {
        self.send_request_with(req, target, credentials, &mut |_| {}).await
    }

    /// Like [`Endpoint::send_request`], calling `progress` for each provisional (1xx) response.
    pub async fn send_request_with(
        &self,
        mut req: Request,
        target: Target,
        credentials: Option<&Credentials>,
        progress: &mut (dyn FnMut(&Response) + Send),
    ) -> Result<Response, TransactionError> {
        prepare(&mut req)?;
        // Boxed: the transaction's state (timers, message bytes) is kilobytes, and callers that
        // spawn a task per request (a campaign) would otherwise copy it into every task.
        let resp = Box::pin(self.transact(&mut req, target.clone(), progress)).await?;
        let Some(creds) = credentials.filter(|_| matches!(resp.status, 401 | 407)) else { return Ok(resp) };
        // One retry only: a second challenge means wrong credentials, and is returned as is.
        if !add_authorization(&mut req, &resp, creds)? {
            return Ok(resp);
        }
        Box::pin(self.transact(&mut req, target, progress)).await
    }

    async fn transact(
        &self,
        req: &mut Request,
        target: Target,
        progress: &mut (dyn FnMut(&Response) + Send),
    ) -> Result<Response, TransactionError> {
        let key = self.inner.tx.stamp_via(req, &target)?;
        client::run(&self.inner.tx, key, Bytes::from(req.to_bytes()), target, progress).await
    }

    /// Runs the client transactions of the requests received on `requests` from the calling
    /// task, at most `max_in_flight` at once, and sends each one's end to `results` in the
    /// order they end. Returns once `requests` is closed and every result was handed over (or
    /// as soon as `results` is closed).
    ///
    /// Each request is handled as by [`Endpoint::send_request`] (same checks, retransmissions
    /// and single digest retry), but the transactions share one task, one timer and one inbox
    /// for their responses instead of a task each: the way to send to a fleet.
    ///
    /// ```no_run
    /// use sipprov_sip::{BatchRequest, Endpoint, EndpointConfig, Target};
    /// use tokio::sync::mpsc;
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let ep = Endpoint::bind(EndpointConfig { udp: Some("127.0.0.1:0".parse()?), ..Default::default() }).await?;
    /// let (requests, requests_rx) = mpsc::channel(64);
    /// let (results_tx, mut results) = mpsc::channel(64);
    /// let batch = tokio::spawn({
    ///     let ep = ep.clone();
    ///     async move { ep.run_batch(requests_rx, results_tx, 500).await }
    /// });
    /// for port in 5060..5070 {
    ///     let target = Target::udp(format!("127.0.0.1:{port}").parse()?);
    ///     let uri = format!("sip:phone@127.0.0.1:{port}");
    ///     let request = ep.request("NOTIFY", &uri, &target)?.header("Event", "check-sync").build();
    ///     requests.send(BatchRequest { request, target, credentials: None, tag: port }).await?;
    /// }
    /// drop(requests);
    /// while let Some(done) = results.recv().await {
    ///     println!("{}: {:?}", done.tag, done.result.map(|r| r.status));
    /// }
    /// batch.await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_batch<T: Send>(
        &self,
        requests: mpsc::Receiver<BatchRequest<T>>,
        results: mpsc::Sender<BatchResult<T>>,
        max_in_flight: usize,
    ) {
        batch::run(&self.inner.tx, requests, results, max_in_flight).await
    }

    /// A [`WeakEndpoint`] to this endpoint.
    pub fn downgrade(&self) -> WeakEndpoint {
        WeakEndpoint { inner: Arc::downgrade(&self.inner) }
    }

    /// Takes renewed TLS certificates and trust without a restart: the listener's certificate
    /// for the handshakes that follow, and the client side (trust, client certificate) for the
    /// connections opened from now on; connections already up keep theirs. `tls` is what
    /// [`EndpointConfig::tls`] would be now; the listener's address is kept, and an endpoint
    /// bound without TLS, or a listener added or removed, is refused.
    ///
    /// ```no_run
    /// # async fn demo(ep: sipprov_sip::Endpoint, renewed: sipprov_sip::TlsConfig) {
    /// if let Err(e) = ep.reload_tls(&renewed) {
    ///     eprintln!("keeping the previous certificates: {e}");
    /// }
    /// # }
    /// ```
    pub fn reload_tls(&self, tls: &TlsConfig) -> Result<(), TransportError> {
        self.inner.transports.reload_tls(tls)
    }

    /// Takes the receiver of incoming requests (after de-duplication by the server transactions).
    /// Returns `None` after the first call. Until taken, requests wait in the queue (within
    /// [`EndpointConfig::incoming_bytes`]).
    pub fn incoming(&self) -> Option<IncomingRequests> {
        self.inner.incoming_rx.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A request received from the network, after server-transaction de-duplication.
#[derive(Debug)]
pub struct IncomingRequest {
    /// The request; its top Via carries `received`/`rport` as stamped by us.
    pub request: Request,
    /// Source address of the packet or connection.
    pub source: SocketAddr,
    /// Local address it arrived on (answer from the same socket).
    pub local: SocketAddr,
    /// Transport.
    pub transport: Transport,
    key: ServerKey,
    reply_to: Target,
    to_tag: String,
    endpoint: Weak<Inner>,
}

impl IncomingRequest {
    /// A response copying Via, From, To (with our tag added), Call-ID and CSeq (RFC 3261 §8.2.6).
    /// An empty `reason` uses the standard phrase.
    pub fn response(&self, status: u16, reason: &str) -> Response {
        let reason = if reason.is_empty() { reason_phrase(status) } else { reason };
        build_response(&self.request, status, reason, &self.to_tag)
    }

    /// Where responses go (RFC 3261 §18.2.2, RFC 3581).
    pub fn reply_target(&self) -> Target {
        self.reply_to.clone()
    }

    /// The To tag our responses carry (the notifier's dialog tag for a SUBSCRIBE).
    pub fn to_tag(&self) -> &str {
        &self.to_tag
    }

    /// Sends `resp`; later retransmissions of the request get it again automatically.
    pub async fn respond(&self, resp: Response) -> Result<(), TransportError> {
        let inner = self.endpoint.upgrade().ok_or(TransportError::NoSocket(self.transport))?;
        inner.send_response(&self.key, self.reply_to.clone(), resp).await
    }

    /// Shorthand for `respond(response(status, reason))`.
    pub async fn reply(&self, status: u16, reason: &str) -> Result<(), TransportError> {
        self.respond(self.response(status, reason)).await
    }
}

/// A fresh To tag for the responses to a received request.
fn new_to_tag() -> String {
    random_token()
}
