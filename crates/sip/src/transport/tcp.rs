//! TCP: a listener accepting inbound connections and outbound connections opened on demand;
//! the connections themselves (reuse, framing, timeouts, reader and writer tasks) are
//! [`super::stream`]'s. An inbound connection the gate refuses is reset at once.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

use super::stream::{Connections, StreamSettings};
use super::{StreamEvent, Transport, TransportError};

/// How long an outbound connect may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The TCP side of an endpoint.
pub struct TcpTransport {
    local: SocketAddr,
    conns: Arc<Connections>,
}

impl TcpTransport {
    /// Binds the listener; call [`TcpTransport::accept_loop`] in a task to accept connections.
    pub(crate) async fn bind(
        addr: SocketAddr,
        inbound: mpsc::Sender<StreamEvent>,
        settings: StreamSettings,
    ) -> Result<(Arc<TcpTransport>, TcpListener), TransportError> {
        let (listener, local) = listen(addr, Transport::Tcp).await?;
        let conns = Connections::new(Transport::Tcp, local, inbound, settings);
        Ok((Arc::new(TcpTransport { local, conns }), listener))
    }

    /// The listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Accepts inbound connections until the transport is dropped.
    pub(crate) async fn accept_loop(this: Weak<TcpTransport>, listener: TcpListener) {
        loop {
            let Some((stream, peer)) = accept(&listener, Transport::Tcp).await else { continue };
            let Some(t) = this.upgrade() else { return };
            let Some(admitted) = t.conns.admit(peer) else {
                refuse(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (read, write) = stream.into_split();
            t.conns.register(read, write, peer, admitted);
        }
    }

    /// Sends over the connection to `addr`, opening one if needed.
    pub(crate) async fn send(&self, addr: SocketAddr, data: Bytes) -> Result<(), TransportError> {
        let connect = async move { Ok(connect(addr, Transport::Tcp).await?.into_split()) };
        self.conns.send(addr, data, connect).await
    }
}

/// The accept queue's length (the kernel caps it at `net.core.somaxconn`): the default of 128
/// overflows at once under a connection flood, and the kernel then drops every SYN, a
/// legitimate peer's too, until its retransmission a second later.
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds a listening socket for a stream transport; returns it with its bound address.
pub(super) async fn listen(
    addr: SocketAddr,
    transport: Transport,
) -> Result<(TcpListener, SocketAddr), TransportError> {
    let bind_err = |source| TransportError::Bind { transport, addr, source };
    let socket = if addr.is_ipv6() { TcpSocket::new_v6() } else { TcpSocket::new_v4() }.map_err(bind_err)?;
    // As std and mio do: a restarted server can bind while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    let listener = socket.listen(ACCEPT_BACKLOG).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    Ok((listener, local))
}

/// Closes a refused connection with a reset: its descriptor and kernel state go at once, with
/// no TIME_WAIT left on our side.
pub(super) fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Accepts one connection; `None` after a failure (file descriptors exhausted, say), after a
/// pause so that a persistent failure does not spin.
pub(super) async fn accept(listener: &TcpListener, transport: Transport) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(%transport, error = %e, "accepting a connection failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// Opens a TCP connection for a stream transport, within [`CONNECT_TIMEOUT`].
pub(super) async fn connect(addr: SocketAddr, transport: Transport) -> Result<TcpStream, TransportError> {
    let unreachable = |reason: String| TransportError::Unreachable { addr, transport, reason };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| unreachable("connect timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
