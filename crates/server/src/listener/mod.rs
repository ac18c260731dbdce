//! How the HTTP listeners accept and serve connections, within limits.
//!
//! Each listener (provisioning HTTP, provisioning HTTPS, admin API) runs its own accept loop
//! instead of `axum::serve`, so that every connection is admitted by the listener's
//! [`limit::Limiter`] first (per-source cap, shared budget; a refused connection is reset at
//! once) and then served by hyper's HTTP/1 connection inside an [`idle::IdleTimeout`], which
//! bounds a trickling body or a client that stops reading, and enforces the header-read
//! timeout (which also bounds the wait for the next request on a kept-alive connection) in
//! hyper's place: see [`idle::HeadTimer`]. The SIP listeners get the same caps through
//! `SipGate`.

pub mod drain;
pub mod idle;
pub mod limit;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::config::LimitsConfig;
use crate::metrics::Metrics;

/// What the provisioning handler learns about a TLS connection (absent on plain HTTP). Defined
/// here, with the connection it describes, so that the TLS listener above fills it in and the
/// handlers read it without either naming the other.
#[derive(Debug, Clone, Default)]
pub struct TlsPeer {
    /// Whether the client presented a certificate (rustls has verified it against `client_ca`).
    pub has_certificate: bool,
    /// The MACs that certificate names (see `tls::cert`).
    pub macs: Arc<[sipprov_model::Mac]>,
}
use drain::Draining;
use idle::{HeadTimer, IdleTimeout};
use limit::{Budget, Limiter};

/// The accept queue's length (the kernel caps it at `net.core.somaxconn`). The default of 128
/// overflows within milliseconds under a connection flood, and then the kernel drops SYNs,
/// a fresh client's among them, which it retries only a second later.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// The most a connection's hyper buffers hold (hyper's `max_buf_size`, default about 400 KB):
/// request heads may be this long, and a response body is pulled from its stream only while
/// less than this waits to be written. A slow reader of a stored file then holds at most this
/// plus one chunk of server memory (the rest waits on disk), so hundreds of slow firmware
/// downloads stay within a few tens of megabytes.
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Accept failures (descriptors exhausted after all, say) are logged at most this often.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// The timeouts of HTTP and HTTPS connections.
#[derive(Debug, Clone, Copy)]
pub struct HttpTimeouts {
    /// A request head must be complete this long after the connection opened or the previous
    /// response went out.
    pub header: Duration,
    /// Nothing moved either way for this long: the connection is closed.
    pub idle: Duration,
    /// The TLS handshake must be done within this time.
    pub handshake: Duration,
}

/// The connection budgets of one server and the limiters drawing on them.
pub struct Admission {
    phone: Arc<Budget>,
    api: Arc<Budget>,
    per_source: u32,
    metrics: Arc<Metrics>,
    /// The HTTP and HTTPS timeouts from `[limits]`.
    pub http: HttpTimeouts,
    /// The SIP TCP and TLS timeouts from `[limits]`.
    pub sip: sipprov_sip::StreamTimeouts,
}

impl Admission {
    /// Raises the descriptor limit and sizes the budgets from it and `[limits]`.
    pub fn new(cfg: &LimitsConfig, metrics: Arc<Metrics>) -> Admission {
        let nofile = limit::raise_descriptor_limit();
        let plan = limit::plan(cfg, nofile);
        tracing::info!(
            descriptors = nofile,
            phone_connections = plan.phone,
            api_connections = plan.api,
            per_source = cfg.connections_per_source,
            "connection limits"
        );
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Admission {
            phone: Budget::new(plan.phone),
            api: Budget::new(plan.api),
            per_source: cfg.connections_per_source,
            metrics,
            http: HttpTimeouts {
                header: secs(cfg.header_timeout_secs),
                idle: secs(cfg.idle_timeout_secs),
                handshake: secs(cfg.handshake_timeout_secs),
            },
            sip: sipprov_sip::StreamTimeouts {
                idle: secs(cfg.sip_idle_timeout_secs),
                message: secs(cfg.sip_message_timeout_secs),
                handshake: secs(cfg.handshake_timeout_secs),
            },
        }
    }

    /// A limiter for a phone-facing listener: its own per-source counts, the shared budget.
    pub fn phone_limiter(&self, listener: &'static str) -> Arc<Limiter> {
        Limiter::new(listener, self.phone.clone(), self.per_source, self.metrics.clone())
    }

    /// The admin API's limiter, on its own budget. One source may hold at most half of it, so
    /// a client flooding the API cannot lock out the others (the operator's CLI on another
    /// loopback address, a monitoring host).
    pub fn api_limiter(&self) -> Arc<Limiter> {
        let half = u32::try_from(self.api.cap() / 2).unwrap_or(u32::MAX).max(1);
        Limiter::new("admin API", self.api.clone(), self.per_source.min(half), self.metrics.clone())
    }

    /// The gate of the SIP TCP and TLS listeners, drawing on the phones' budget.
    pub fn sip_gate(&self) -> Arc<dyn sipprov_sip::ConnectionGate> {
        Arc::new(SipGate { tcp: self.phone_limiter("SIP TCP"), tls: self.phone_limiter("SIP TLS") })
    }
}

/// Admits the SIP endpoint's inbound TCP and TLS connections with the server's limiters.
struct SipGate {
    tcp: Arc<Limiter>,
    tls: Arc<Limiter>,
}

impl sipprov_sip::ConnectionGate for SipGate {
    fn admit(&self, transport: sipprov_sip::Transport, peer: SocketAddr) -> Option<sipprov_sip::ConnectionPermit> {
        let limiter = if transport == sipprov_sip::Transport::Tls { &self.tls } else { &self.tcp };
        let permit = limiter.admit(peer.ip()).ok()?;
        Some(Box::new(permit))
    }
}

/// What answers the requests of a connection: an axum [`axum::Router`] (the admin API), or a
/// handler that takes each request straight from hyper (the phones' listeners, whose one route
/// is "everything": no router, no extractors, no copy of the header map per request).
pub trait Handler: Clone + Send + Sync + 'static {
    /// Whether a client may shut down its side of the connection (a TCP half-close, RFC 9293
    /// §3.6: "I have no more data to send") and still be answered (hyper's `half_close`).
    ///
    /// Without, hyper watches for the client's end while a request is in flight by reading
    /// the socket, and reserves its read buffer's room for that read first: with the request's
    /// head still held (its path and header values share the buffer's bytes), the reservation
    /// allocates a new 8 KiB buffer per request. With it, hyper reads only for the next
    /// request, by when the last one's bytes are free and the buffer is reused as it is; a
    /// client that went away is noticed when its answer is written, not while it is prepared.
    /// The admin API keeps hyper's default: its console streams events to browsers, whose tab
    /// closed is noticed by that read.
    const HALF_CLOSE: bool = false;

    /// Answers one request from `peer`, with what its certificate says on HTTPS (`tls`).
    fn handle(
        self,
        request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        tls: Option<TlsPeer>,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static;
}

impl Handler for axum::Router {
    /// Hands the request to the router, with the peer's address (`ConnectInfo`) and the
    /// [`TlsPeer`] in its extensions.
    fn handle(
        self,
        mut request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
        tls: Option<TlsPeer>,
    ) -> impl Future<Output = axum::response::Response> + Send + 'static {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(tls) = tls {
            request.extensions_mut().insert(tls);
        }
        let answer = self.oneshot(request);
        async move {
            match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }
}

/// Serves plain HTTP on `listener` until it fails or the server drains: admits each connection
/// with `limiter`, then serves it with `timeouts`.
pub async fn serve_http<H: Handler>(
    what: &'static str,
    listener: TcpListener,
    app: H,
    limiter: Arc<Limiter>,
    timeouts: HttpTimeouts,
    mut draining: Draining,
) -> Result<(), crate::ServerError> {
    let mut accept_errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = draining.started() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                accept_errors.failed(what, &e).await;
                continue;
            }
        };
        let Ok(permit) = limiter.admit(peer.ip()) else {
            refuse(tcp);
            continue;
        };
        let (app, draining) = (app.clone(), draining.clone());
        tokio::spawn(async move {
            let (io, head) = IdleTimeout::new(tcp, timeouts.idle, timeouts.header);
            serve_connection(TokioIo::new(io), peer, app, head, None, draining).await;
            drop(permit);
        });
    }
}

/// Serves one HTTP/1 connection with `app`, which learns each request's peer address (and on
/// HTTPS what its certificate says). Once the server drains, the request in hand is answered
/// and the connection closed (hyper's graceful shutdown: `Connection: close` on that answer).
/// `head` is the header-read timeout of the [`IdleTimeout`] under `io`, which enforces it: the
/// head of each request is complete when hyper hands the request over, and the wait for the
/// next starts when hyper is done with the response's body ([`HeadAfter`]).
pub(crate) async fn serve_connection<I, H>(
    io: I,
    peer: SocketAddr,
    app: H,
    head: HeadTimer,
    tls: Option<TlsPeer>,
    mut draining: Draining,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Handler,
{
    // hyper reads the first request's head from now.
    head.awaiting_head();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        // hyper calls this once the head is complete: its deadline no longer holds.
        head.head_complete();
        let answer = app.clone().handle(req, peer, tls.clone());
        let head = head.clone();
        async move { Ok::<_, Infallible>(answer.await.map(|body| HeadAfter { body, head })) }
    });
    // No header-read timeout in hyper: the `IdleTimeout` under `io` enforces it (see
    // `idle::HeadTimer` for why), and hyper 1.12 would otherwise default to 30 s once a timer
    // were set; without a timer it sets none.
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .max_buf_size(WRITE_BUFFER_BYTES)
        .half_close(H::HALF_CLOSE)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = draining.started() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(peer = %peer.ip(), error = %e, "HTTP connection ended with an error");
    }
}

/// A response's body as hyper gets it: the same frames, length and end, and once hyper drops
/// it (its last byte written, a `HEAD` or 304 answer's head sent, or the connection given up)
/// the connection waits for its next request head ([`HeadTimer::awaiting_head`]), which is
/// when hyper's own header timer started (when the connection went idle after the response).
struct HeadAfter<B> {
    body: B,
    head: HeadTimer,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for HeadAfter<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

impl<B> Drop for HeadAfter<B> {
    fn drop(&mut self) {
        self.head.awaiting_head();
    }
}

/// Binds a TCP listener with a deep accept queue ([`ACCEPT_BACKLOG`]).
pub fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv6() { tokio::net::TcpSocket::new_v6()? } else { tokio::net::TcpSocket::new_v4()? };
    // As std and mio do: a restarted server can bind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Closes a refused connection with a reset: its descriptor and kernel state go at once, with
/// no TIME_WAIT left on our side.
pub(crate) fn refuse(tcp: TcpStream) {
    let _ = tcp.set_zero_linger();
    drop(tcp);
}

/// Rate-limited logging of accept failures, with a pause after each so a persistent failure
/// (descriptors exhausted) does not spin.
#[derive(Default)]
pub(crate) struct AcceptErrors {
    last: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    /// Notes one failure, logs it unless one was logged recently, and pauses.
    pub(crate) async fn failed(&mut self, what: &'static str, e: &std::io::Error) {
        self.suppressed += 1;
        if self.last.is_none_or(|t| t.elapsed() >= ACCEPT_ERROR_LOG_EVERY) {
            tracing::warn!(listener = what, error = %e, failures = self.suppressed, "accepting connections fails");
            self.last = Some(Instant::now());
            self.suppressed = 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers every request after a pause, as a request that waits (for the fetch log, a
    /// first fetch's claim) does.
    #[derive(Clone)]
    struct Pausing<const HALF_CLOSE: bool>;

    impl<const HALF_CLOSE: bool> Handler for Pausing<HALF_CLOSE> {
        const HALF_CLOSE: bool = HALF_CLOSE;

        async fn handle(
            self,
            _request: hyper::Request<hyper::body::Incoming>,
            _peer: SocketAddr,
            _tls: Option<TlsPeer>,
        ) -> axum::response::Response {
            tokio::time::sleep(Duration::from_millis(200)).await;
            "answered".into_response()
        }
    }

    /// What a client that sends one request and then shuts down its sending side reads back.
    async fn half_closed_client<H: Handler>(app: H) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_drain, draining) = drain::Drain::new();
        let server = tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.unwrap();
            let (io, head) = IdleTimeout::new(tcp, Duration::from_secs(5), Duration::from_secs(5));
            serve_connection(TokioIo::new(io), peer, app, head, None, draining).await;
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"GET /001565aabbcc.cfg HTTP/1.1\r\nHost: prov\r\n\r\n").await.unwrap();
        client.shutdown().await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the server ends the connection");
        server.await.unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_client_that_half_closes_is_answered_where_half_close_is_on() {
        let answer = half_closed_client(Pausing::<true>).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nanswered"), "{answer}");
        // hyper's default (the admin API's): the client's end, read while the request is in
        // flight, ends the connection, unanswered.
        assert_eq!(half_closed_client(Pausing::<false>).await, "");
    }
}
