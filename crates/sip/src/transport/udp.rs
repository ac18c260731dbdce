//! UDP: one reader task per socket, which also dispatches what it reads; sends go straight to
//! the socket.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use std::sync::Weak;
use tokio::net::UdpSocket;

use crate::endpoint::Inner;

use super::{Inbound, Transport, TransportError};

pub(super) async fn read_loop(socket: Arc<UdpSocket>, local: SocketAddr, endpoint: Weak<Inner>, max_message: usize) {
    // One byte more than the limit, so that an oversized datagram is seen as oversized by the
    // parser instead of being silently truncated into something that parses.
    let mut buf = vec![0u8; max_message.saturating_add(1).min(65536)];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, source)) => {
                let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                let Some(inner) = endpoint.upgrade() else { return };
                crate::dispatch::handle(&inner, &Inbound { data, source, local, transport: Transport::Udp }).await;
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
    match socket.send_to(data, addr).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(TransportError::Unreachable { addr, transport: Transport::Udp, reason: e.to_string() })
        }
        Err(source) => Err(TransportError::Send { addr, transport: Transport::Udp, source }),
    }
}
