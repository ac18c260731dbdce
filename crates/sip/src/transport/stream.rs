//! What the stream transports (TCP and TLS) share: the table of open connections, one per
//! remote address and reused in both directions (RFC 3261 §18; RFC 5923 spirit), a single
//! connection attempt per address at a time, a writer task per connection, and a reader task
//! that cuts the byte stream into messages by Content-Length (RFC 3261 §18.3).
//!
//! The connection code is generic over `AsyncRead + AsyncWrite` halves, so a TLS stream and a
//! TCP stream run the same framing, reuse and clean-up, and the same timeouts: a connection on
//! which nothing moves for [`StreamTimeouts::idle`] is closed, and so is one whose message has
//! not completed [`StreamTimeouts::message`] after it began. Inbound connections are admitted by
//! the [`ConnectionGate`], whose permit the reader task holds until the connection closes.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, OnceCell};
use tokio::time::Instant;

use super::limits::{ConnectionGate, ConnectionPermit, StreamTimeouts};
use super::{Inbound, StreamEvent, Transport, TransportError};
use crate::logsafe::{escaped, LogLimiter, LOG_TEXT_MAX};
use crate::message::framing::StreamFramer;
use crate::message::Limits;

/// Warnings about streams that could not be framed: one per connection a stranger opens.
static UNFRAMED_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));

/// One message to write, and where to say whether it was written.
type Outgoing = (Bytes, oneshot::Sender<io::Result<()>>);
/// The writer task of one connection.
type Writer = mpsc::Sender<Outgoing>;
/// An outbound connection being opened; everyone sending to that address meanwhile waits on it.
type Pending = Arc<OnceCell<Result<Writer, TransportError>>>;

/// The open connections of one stream transport.
pub(crate) struct Connections {
    transport: Transport,
    /// The local address reported with received messages (the listener's, when there is one).
    local: SocketAddr,
    open: Mutex<HashMap<SocketAddr, Writer>>,
    connecting: Mutex<HashMap<SocketAddr, Pending>>,
    inbound: mpsc::Sender<StreamEvent>,
    limits: Limits,
    timeouts: StreamTimeouts,
    gate: Option<Arc<dyn ConnectionGate>>,
}

/// What a stream transport is set up with, besides its address.
#[derive(Clone)]
pub(crate) struct StreamSettings {
    /// Message size limits.
    pub(crate) limits: Limits,
    /// Idle, message and handshake timeouts.
    pub(crate) timeouts: StreamTimeouts,
    /// Who admits inbound connections; `None` admits all.
    pub(crate) gate: Option<Arc<dyn ConnectionGate>>,
}

/// An inbound connection the gate let in (with the permit it holds), or an outbound one.
pub(crate) struct Admitted {
    /// Held, never read: dropping it when the connection closes gives the gate its share back.
    _permit: Option<ConnectionPermit>,
}

impl Admitted {
    /// A connection we opened: no gate is asked, nothing is held.
    pub(crate) fn outbound() -> Admitted {
        Admitted { _permit: None }
    }
}

impl Connections {
    pub(crate) fn new(
        transport: Transport,
        local: SocketAddr,
        inbound: mpsc::Sender<StreamEvent>,
        settings: StreamSettings,
    ) -> Arc<Connections> {
        Arc::new(Connections {
            transport,
            local,
            open: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            inbound,
            limits: settings.limits,
            timeouts: settings.timeouts,
            gate: settings.gate,
        })
    }

    /// The timeouts connections of this transport run with.
    pub(crate) fn timeouts(&self) -> StreamTimeouts {
        self.timeouts
    }

    /// Asks the gate whether an inbound connection from `peer` may stay open; `None`: close it
    /// at once (the gate counts and logs refusals).
    pub(crate) fn admit(&self, peer: SocketAddr) -> Option<Admitted> {
        match &self.gate {
            None => Some(Admitted::outbound()),
            Some(gate) => gate.admit(self.transport, peer).map(|p| Admitted { _permit: Some(p) }),
        }
    }

    fn open(&self) -> MutexGuard<'_, HashMap<SocketAddr, Writer>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connecting(&self) -> MutexGuard<'_, HashMap<SocketAddr, Pending>> {
        self.connecting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn existing(&self, addr: SocketAddr) -> Option<Writer> {
        self.open().get(&addr).filter(|w| !w.is_closed()).cloned()
    }

    /// Sends over the connection to `addr`; without one, `connect` opens it (lazily: it is
    /// polled only when no connection exists and no other attempt is under way).
    pub(crate) async fn send<R, W, C>(
        self: &Arc<Self>,
        addr: SocketAddr,
        data: Bytes,
        connect: C,
    ) -> Result<(), TransportError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
        C: Future<Output = Result<(R, W), TransportError>>,
    {
        let writer = match self.existing(addr) {
            Some(w) => w,
            None => self.connect_once(addr, connect).await?,
        };
        let transport = self.transport;
        let closed = || TransportError::Send { addr, transport, source: io::ErrorKind::BrokenPipe.into() };
        let (ack_tx, ack_rx) = oneshot::channel();
        writer.send((data, ack_tx)).await.map_err(|_| closed())?;
        match ack_rx.await {
            Ok(Ok(())) => Ok(()),
            // The peer's TLS alert may reach the writer first: it reads as one, whichever half saw it.
            Ok(Err(source)) if is_tls(&source) => Err(connection_error(transport, addr, &source)),
            Ok(Err(source)) => Err(TransportError::Send { addr, transport, source }),
            Err(_) => Err(closed()),
        }
    }

    /// Opens one connection to `addr` however many senders ask at once: a fleet-wide check-sync
    /// through one proxy must not start a TLS handshake per NOTIFY. Every waiter gets the outcome.
    async fn connect_once<R, W, C>(self: &Arc<Self>, addr: SocketAddr, connect: C) -> Result<Writer, TransportError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
        C: Future<Output = Result<(R, W), TransportError>>,
    {
        let pending = self.connecting().entry(addr).or_default().clone();
        let result = pending
            .get_or_init(|| async {
                // A connection may have been registered since the caller looked.
                if let Some(w) = self.existing(addr) {
                    return Ok(w);
                }
                let (read, write) = connect.await?;
                Ok(self.register(read, write, addr, Admitted::outbound()))
            })
            .await;
        // The attempt is over: later sends use the table, or try afresh after a failure.
        let mut connecting = self.connecting();
        if connecting.get(&addr).is_some_and(|p| Arc::ptr_eq(p, &pending)) {
            connecting.remove(&addr);
        }
        drop(connecting);
        match result {
            Ok(w) => Ok(w.clone()),
            Err(e) => Err(e.replay()),
        }
    }

    /// Starts the reader and writer tasks of a connection and makes it reusable for `peer`.
    /// The reader task holds `admitted` (the gate's permit) until the connection closes.
    pub(crate) fn register<R, W>(self: &Arc<Self>, read: R, write: W, peer: SocketAddr, admitted: Admitted) -> Writer
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(32);
        self.open().insert(peer, tx.clone());
        let activity = Activity::new();
        tokio::spawn(write_loop(write, rx, activity.clone()));
        let reader = Reader {
            read,
            peer,
            local: self.local,
            transport: self.transport,
            inbound: self.inbound.clone(),
            limits: self.limits,
            timeouts: self.timeouts,
            activity,
        };
        let this = Arc::downgrade(self);
        let registered = tx.clone();
        let (inbound, transport) = (self.inbound.clone(), self.transport);
        tokio::spawn(async move {
            let failure = reader.run().await;
            drop(admitted);
            // The connection is gone: forget it (not a newer one to the same peer), so the next
            // send reconnects.
            if let Some(t) = this.upgrade() {
                let mut open = t.open();
                if open.get(&peer).is_some_and(|w| w.same_channel(&registered)) {
                    open.remove(&peer);
                }
            }
            // A close in good order may still be followed by a response on a new connection
            // (RFC 3261 §18.2.2); a failure, such as a TLS alert or a reset, is final. It goes
            // the way the messages went, so it is seen after those read before it.
            if let Some(e) = failure {
                let error = connection_error(transport, peer, &e);
                let _ = inbound.send(StreamEvent::Failed { transport, addr: peer, error }).await;
            }
        });
        tx
    }
}

/// When a connection's writer last wrote, so the reader's idle timeout counts both directions
/// (a request we sent on an outbound connection keeps it open while its answer is awaited).
#[derive(Clone)]
struct Activity {
    since: Instant,
    /// Milliseconds after `since` of the last complete write.
    last_write_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity { since: Instant::now(), last_write_ms: Arc::new(AtomicU64::new(0)) }
    }

    fn wrote(&self) {
        let ms = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_write_ms.store(ms, Ordering::Relaxed);
    }

    fn last_write(&self) -> Instant {
        self.since + Duration::from_millis(self.last_write_ms.load(Ordering::Relaxed))
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut write: W, mut rx: mpsc::Receiver<Outgoing>, activity: Activity) {
    while let Some((data, ack)) = rx.recv().await {
        // TLS buffers records inside the session: flush so the message leaves now.
        let result = match write.write_all(&data).await {
            Ok(()) => write.flush().await,
            Err(e) => Err(e),
        };
        activity.wrote();
        let failed = result.is_err();
        let _ = ack.send(result);
        if failed {
            return;
        }
    }
    // Nobody can send here any more: close our direction (a TLS close_notify, a TCP FIN).
    let _ = write.shutdown().await;
}

struct Reader<R> {
    read: R,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    inbound: mpsc::Sender<StreamEvent>,
    limits: Limits,
    timeouts: StreamTimeouts,
    activity: Activity,
}

fn is_tls(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}

/// What a failed connection means for the transactions sent on it: a TLS alert in rustls's
/// words (a TLS 1.3 phone refusing our client certificate says so only after the handshake),
/// or the OS error.
fn connection_error(transport: Transport, addr: SocketAddr, e: &io::Error) -> TransportError {
    use rustls::AlertDescription as Alert;
    let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let our_certificate = matches!(
        tls,
        Some(rustls::Error::AlertReceived(
            Alert::CertificateRequired
                | Alert::BadCertificate
                | Alert::UnknownCA
                | Alert::CertificateUnknown
                | Alert::UnsupportedCertificate
                | Alert::CertificateExpired
                | Alert::CertificateRevoked
                | Alert::AccessDenied
        ))
    );
    let reason = tls.map_or_else(|| e.to_string(), ToString::to_string);
    TransportError::ConnectionFailed { addr, transport, reason, our_certificate }
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Reads until the connection ends; returns the error it ended with, if it failed. An idle
    /// or stalled connection ends in good order (nothing was lost that a peer could have sent).
    async fn run(mut self) -> Option<io::Error> {
        let mut framer = StreamFramer::with_limits(self.limits);
        let mut buf = vec![0u8; 16 * 1024];
        let mut last_read = Instant::now();
        // When the message now arriving began (its first bytes), if one is arriving.
        let mut message_began: Option<Instant> = None;
        loop {
            let deadline = match message_began {
                Some(began) => began + self.timeouts.message,
                None => last_read.max(self.activity.last_write()) + self.timeouts.idle,
            };
            let read = match tokio::time::timeout_at(deadline, self.read.read(&mut buf)).await {
                Ok(read) => read,
                Err(_)
                    if message_began.is_none() && self.activity.last_write() + self.timeouts.idle > Instant::now() =>
                {
                    continue; // We wrote meanwhile: the connection is not idle.
                }
                Err(_) => {
                    let why = if message_began.is_some() { "message incomplete" } else { "idle" };
                    tracing::debug!(peer = %self.peer, transport = %self.transport, why, "closing connection on timeout");
                    return None;
                }
            };
            let n = match read {
                Ok(0) => return None,
                Ok(n) => n,
                // A peer closing without a TLS close_notify (most phones do) closes in good order.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return None,
                Err(e) => {
                    tracing::debug!(peer = %self.peer, transport = %self.transport, error = %e, "connection read failed");
                    return Some(e);
                }
            };
            last_read = Instant::now();
            framer.extend(buf.get(..n).unwrap_or_default());
            loop {
                match framer.next_message() {
                    Ok(Some(data)) => {
                        message_began = None;
                        let msg = Inbound { data, source: self.peer, local: self.local, transport: self.transport };
                        if self.inbound.send(StreamEvent::Message(msg)).await.is_err() {
                            return None;
                        }
                    }
                    Ok(None) => {
                        // Bytes left over begin the next message: its clock starts with them.
                        message_began = framer.is_mid_message().then(|| message_began.unwrap_or(last_read));
                        break;
                    }
                    Err(e) => {
                        // A stream that cannot be framed cannot be re-synchronised: drop it. The error
                        // can quote the peer's bytes, and each connection costs a peer little: escape
                        // and ration the warning as the UDP path does.
                        if let Some(suppressed) = UNFRAMED_LOG.allow() {
                            let error = e.to_string();
                            let error = escaped(&error, LOG_TEXT_MAX);
                            tracing::warn!(peer = %self.peer, transport = %self.transport, %error, suppressed, "closing connection");
                        }
                        return None;
                    }
                }
            }
        }
    }
}
