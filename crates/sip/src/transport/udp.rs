//! UDP: one reader task per socket, which hands what it reads to the [`InboundSink`] it was
//! given, inline; sends go straight to the socket.
//!
//! The sockets are registered with the runtime for readability only. Tokio's own `UdpSocket`
//! also asks the kernel for write readiness, and then every datagram sent, once the kernel
//! frees it, wakes the runtime's poller (often a worker thread parked on it) to say that the
//! socket is writable again: at tens of thousands of NOTIFYs a second that costs more CPU than
//! sending them. A UDP socket is almost always writable; the rare send that would block waits
//! a millisecond and tries again.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{Inbound, InboundSink, Transport, TransportError};

/// How long a send waits in all for room in a full socket buffer before it fails.
const FULL_BUFFER_PATIENCE: Duration = Duration::from_secs(1);

/// A non-blocking UDP socket watched for readability only.
pub(crate) struct UdpSocket {
    fd: AsyncFd<StdUdpSocket>,
}

impl UdpSocket {
    /// Takes over a socket from Tokio (which deregisters it) and registers it for reading
    /// only. Must be called inside the runtime.
    pub(super) fn new(socket: tokio::net::UdpSocket) -> io::Result<UdpSocket> {
        let socket = socket.into_std()?;
        socket.set_nonblocking(true)?;
        // SAFETY: the std socket owns a valid descriptor, which the AsyncFd owns from here on
        // and which nothing closes or replaces while it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE)? };
        Ok(UdpSocket { fd })
    }

    /// The socket itself, for socket options.
    pub(super) fn get_ref(&self) -> &StdUdpSocket {
        self.fd.get_ref()
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| fd.get_ref().recv_from(buf)) {
                Ok(result) => return result,
                // Drained: the readiness was cleared, wait for the next datagram.
                Err(_would_block) => continue,
            }
        }
    }
}

/// Reads datagrams until the socket fails or `sink` is gone, handing each to `sink`.
pub(super) async fn read_loop<S: InboundSink>(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    sink: Weak<S>,
    max_message: usize,
) {
    // One byte more than the limit, so that an oversized datagram is seen as oversized by the
    // parser instead of being silently truncated into something that parses.
    let mut buf = vec![0u8; max_message.saturating_add(1).min(65536)];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, source)) => {
                let Some(sink) = sink.upgrade() else { return };
                let received = buf.get(..n).unwrap_or_default();
                // A source over its rate costs no copy and no parse.
                if !sink.admit(received, source) {
                    continue;
                }
                let data = Bytes::copy_from_slice(received);
                sink.receive(Inbound { data, source, local, transport: Transport::Udp }).await;
            }
            // ICMP errors from earlier sends surface here on some systems; they are not fatal.
            Err(e) if is_transient(&e) => tracing::debug!(%local, error = %e, "udp receive error"),
            Err(e) => {
                tracing::warn!(%local, error = %e, "udp socket closed");
                return;
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
    )
}

pub(super) async fn send(socket: &UdpSocket, addr: SocketAddr, data: &[u8]) -> Result<(), TransportError> {
    let pause = Duration::from_millis(1);
    let mut waited = Duration::ZERO;
    loop {
        match socket.get_ref().send_to(data, addr) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && waited < FULL_BUFFER_PATIENCE => {
                tokio::time::sleep(pause).await;
                waited += pause;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Err(TransportError::Unreachable { addr, transport: Transport::Udp, reason: e.to_string() })
            }
            Err(source) => return Err(TransportError::Send { addr, transport: Transport::Udp, source }),
        }
    }
}
