//! TCP: a listener accepting inbound connections, outbound connections opened on demand, and
//! one connection per remote address reused in both directions (RFC 3261 §18; RFC 5923 spirit).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::{Inbound, Transport, TransportError};
use crate::message::framing::StreamFramer;
use crate::message::Limits;

/// How long an outbound connect may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type Outgoing = (Bytes, oneshot::Sender<io::Result<()>>);

/// The TCP side of an endpoint.
pub struct TcpTransport {
    local: SocketAddr,
    conns: Mutex<HashMap<SocketAddr, mpsc::Sender<Outgoing>>>,
    inbound: mpsc::Sender<Inbound>,
    limits: Limits,
}

impl TcpTransport {
    /// Binds the listener; call [`TcpTransport::accept_loop`] in a task to accept connections.
    pub(crate) async fn bind(
        addr: SocketAddr,
        inbound: mpsc::Sender<Inbound>,
        limits: Limits,
    ) -> Result<(Arc<TcpTransport>, TcpListener), TransportError> {
        let bind_err = |source| TransportError::Bind { transport: Transport::Tcp, addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        let t = Arc::new(TcpTransport { local, conns: Mutex::new(HashMap::new()), inbound, limits });
        Ok((t, listener))
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Accepts inbound connections until the transport is dropped.
    pub(crate) async fn accept_loop(this: Weak<TcpTransport>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else { continue };
            let Some(t) = this.upgrade() else { return };
            t.register(stream, peer);
        }
    }

    /// Sends over the connection to `addr`, opening one if needed.
    pub(crate) async fn send(self: &Arc<Self>, addr: SocketAddr, data: Bytes) -> Result<(), TransportError> {
        let existing = self.lock().get(&addr).cloned();
        let writer = match existing {
            Some(w) if !w.is_closed() => w,
            _ => self.connect(addr).await?,
        };
        let (ack_tx, ack_rx) = oneshot::channel();
        let closed =
            || TransportError::Send { addr, transport: Transport::Tcp, source: io::ErrorKind::BrokenPipe.into() };
        writer.send((data, ack_tx)).await.map_err(|_| closed())?;
        match ack_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(TransportError::Send { addr, transport: Transport::Tcp, source }),
            Err(_) => Err(closed()),
        }
    }

    async fn connect(self: &Arc<Self>, addr: SocketAddr) -> Result<mpsc::Sender<Outgoing>, TransportError> {
        let unreachable = |reason: String| TransportError::Unreachable { addr, transport: Transport::Tcp, reason };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable("connect timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(self.register(stream, addr))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Outgoing>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts reader and writer tasks for a connection and makes it reusable for `peer`.
    fn register(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) -> mpsc::Sender<Outgoing> {
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(32);
        self.lock().insert(peer, tx.clone());
        tokio::spawn(write_loop(write, rx));
        let reader = Reader { read, peer, local: self.local, inbound: self.inbound.clone(), limits: self.limits };
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            reader.run().await;
            // The connection is gone: forget it so the next send reconnects.
            if let Some(t) = this.upgrade() {
                t.lock().remove(&peer);
            }
        });
        tx
    }
}

async fn write_loop(mut write: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some((data, ack)) = rx.recv().await {
        let result = write.write_all(&data).await;
        let failed = result.is_err();
        let _ = ack.send(result);
        if failed {
            return;
        }
    }
}

struct Reader {
    read: OwnedReadHalf,
    peer: SocketAddr,
    local: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    limits: Limits,
}

impl Reader {
    async fn run(mut self) {
        let mut framer = StreamFramer::with_limits(self.limits);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match self.read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.extend(buf.get(..n).unwrap_or_default());
            loop {
                match framer.next_message() {
                    Ok(Some(data)) => {
                        let msg = Inbound { data, source: self.peer, local: self.local, transport: Transport::Tcp };
                        if self.inbound.send(msg).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // A stream that cannot be framed cannot be re-synchronised: drop it.
                        tracing::warn!(peer = %self.peer, error = %e, "closing TCP connection");
                        return;
                    }
                }
            }
        }
    }
}
