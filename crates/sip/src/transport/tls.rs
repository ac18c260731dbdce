//! TLS (RFC 3261 §26.2, RFC 5630): SIP over rustls streams. An optional listener accepts
//! inbound connections and completes their handshakes off the accept loop; outbound
//! connections are opened on demand with the caller's `rustls::ClientConfig`, verifying the
//! peer against [`Target::server_name`] or, without one, its IP address.
//!
//! Once the handshake is done a TLS connection is an ordinary stream connection
//! ([`super::stream`]): the same Content-Length framing, reuse per remote address, and
//! responses going back on the connection the request came in on. This module reads no files:
//! certificates, keys and trust come in as rustls configurations.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::stream::{Admitted, Connections, StreamSettings};
use super::tcp::{accept, connect, listen, refuse};
use super::{StreamEvent, Target, Transport, TransportError};

/// TLS settings of an endpoint.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Accept TLS connections (phones reaching us); `None` for outbound connections only.
    pub listen: Option<TlsListen>,
    /// How outbound connections verify the peer (and which client certificate they present);
    /// `None` refuses to open any, though inbound connections are still answered.
    pub client: Option<Arc<rustls::ClientConfig>>,
}

/// A TLS listener: where, and with which certificate.
#[derive(Debug, Clone)]
pub struct TlsListen {
    /// Address to listen on (port 0 picks one).
    pub addr: SocketAddr,
    /// The server side: certificate chain, key, client certificate policy.
    pub server: Arc<rustls::ServerConfig>,
}

/// The TLS side of an endpoint.
pub struct TlsTransport {
    listen: Option<SocketAddr>,
    /// The listener's side; replaced by [`TlsTransport::reload`], read at each handshake.
    acceptor: RwLock<Option<TlsAcceptor>>,
    /// Outbound connections' side; replaced by [`TlsTransport::reload`], read at each connect.
    connector: RwLock<Option<TlsConnector>>,
    conns: Arc<Connections>,
}

/// A bound listener, to be run by [`TlsTransport::accept_loop`].
pub(crate) struct BoundListener {
    listener: TcpListener,
}

impl TlsTransport {
    /// Binds the listener, when one is configured.
    pub(crate) async fn bind(
        cfg: &TlsConfig,
        inbound: mpsc::Sender<StreamEvent>,
        settings: StreamSettings,
    ) -> Result<(Arc<TlsTransport>, Option<BoundListener>), TransportError> {
        let (listen, bound) = match &cfg.listen {
            Some(l) => {
                let (listener, local) = listen(l.addr, Transport::Tls).await?;
                (Some(local), Some(BoundListener { listener }))
            }
            None => (None, None),
        };
        let local = listen.unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let conns = Connections::new(Transport::Tls, local, inbound, settings);
        let acceptor = RwLock::new(cfg.listen.as_ref().map(|l| TlsAcceptor::from(l.server.clone())));
        let connector = RwLock::new(cfg.client.clone().map(TlsConnector::from));
        Ok((Arc::new(TlsTransport { listen, acceptor, connector, conns }), bound))
    }

    /// Takes new certificates and trust (renewed files), for the handshakes that follow;
    /// connections already up keep theirs. The listener keeps its address: `cfg.listen`'s is
    /// ignored, and a listener cannot be added or removed this way.
    pub(crate) fn reload(&self, cfg: &TlsConfig) -> Result<(), TransportError> {
        if cfg.listen.is_some() != self.listen.is_some() {
            return Err(TransportError::Reload(
                "a TLS listener can be given new certificates, not added or removed, without a restart".into(),
            ));
        }
        *write(&self.acceptor) = cfg.listen.as_ref().map(|l| TlsAcceptor::from(l.server.clone()));
        *write(&self.connector) = cfg.client.clone().map(TlsConnector::from);
        Ok(())
    }

    /// The listening address, if there is a listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// The address to advertise to `peer` in Via and Contact: the listener's, else an unspecified
    /// address of the peer's family with port 0 (the caller leaves the port out).
    pub(crate) fn advertised(&self, peer: SocketAddr) -> SocketAddr {
        self.listen.unwrap_or_else(|| {
            let ip = if peer.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            SocketAddr::new(ip, 0)
        })
    }

    /// Accepts connections until the transport is dropped; each handshake runs in its own task,
    /// once the gate has admitted the connection (a refused one is reset before any handshake).
    pub(crate) async fn accept_loop(this: Weak<TlsTransport>, bound: BoundListener) {
        loop {
            let Some((stream, peer)) = accept(&bound.listener, Transport::Tls).await else { continue };
            let Some(t) = this.upgrade() else { return };
            let Some(acceptor) = read(&t.acceptor).clone() else { return };
            let Some(admitted) = t.conns.admit(peer) else {
                refuse(stream);
                continue;
            };
            let handshake = t.conns.timeouts().handshake;
            tokio::spawn(accept_one(this.clone(), acceptor, stream, peer, (admitted, handshake)));
        }
    }

    /// Sends over the connection to `target`, opening one (TCP, then the handshake) if needed.
    pub(crate) async fn send(&self, target: &Target, data: Bytes) -> Result<(), TransportError> {
        let (addr, connector, name) = (target.addr, read(&self.connector).clone(), target.server_name.clone());
        let handshake = self.conns.timeouts().handshake;
        let connect = async move {
            let connector = connector.ok_or(TransportError::NoSocket(Transport::Tls))?;
            let name = server_name(name.as_deref(), addr)?;
            let tcp = connect(addr, Transport::Tls).await?;
            let tls = match tokio::time::timeout(handshake, connector.connect(name, tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(handshake_error(addr, &e)),
                Err(_) => {
                    return Err(TransportError::Tls { addr, reason: "handshake timed out".into(), certificate: false })
                }
            };
            Ok(tokio::io::split(tls))
        };
        self.conns.send(target.addr, data, connect).await
    }
}

/// Completes an admitted inbound handshake within its timeout, then registers the connection
/// (which keeps the gate's permit).
async fn accept_one(
    this: Weak<TlsTransport>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    (admitted, timeout): (Admitted, Duration),
) {
    let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "inbound TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "inbound TLS handshake timed out"),
    };
    if let Some(t) = this.upgrade() {
        let (read, write) = tokio::io::split(tls);
        t.conns.register(read, write, peer, admitted);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// The name the peer's certificate must carry: the given host name or address, else `addr`'s IP.
fn server_name(name: Option<&str>, addr: SocketAddr) -> Result<ServerName<'static>, TransportError> {
    let Some(name) = name else { return Ok(ServerName::IpAddress(addr.ip().into())) };
    // An IPv6 reference from a URI comes in brackets.
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|e| TransportError::Tls {
        addr,
        reason: format!("{name:?} cannot be a TLS server name: {e}"),
        certificate: false,
    })
}

/// Turns a failed client handshake into an error that says why, in rustls's words.
fn handshake_error(addr: SocketAddr, e: &io::Error) -> TransportError {
    let tls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let certificate = matches!(tls, Some(rustls::Error::InvalidCertificate(_)));
    let reason = match tls {
        Some(t) => t.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the peer closed the connection during the handshake".into()
        }
        None => e.to_string(),
    };
    TransportError::Tls { addr, reason, certificate }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_hosts_and_addresses() {
        let addr: SocketAddr = "192.0.2.7:5061".parse().unwrap();
        assert_eq!(server_name(None, addr).unwrap(), ServerName::IpAddress(addr.ip().into()));
        let v6 = server_name(Some("[2001:db8::1]"), addr).unwrap();
        assert_eq!(v6, ServerName::IpAddress("2001:db8::1".parse::<IpAddr>().unwrap().into()));
        assert!(matches!(server_name(Some("phone.example.com"), addr).unwrap(), ServerName::DnsName(_)));
        let bad = server_name(Some("bad name"), addr).unwrap_err().to_string();
        assert!(bad.contains("cannot be a TLS server name"), "{bad}");
    }

    #[test]
    fn eof_during_handshake_reads_well() {
        let addr: SocketAddr = "192.0.2.7:5061".parse().unwrap();
        let e = handshake_error(addr, &io::ErrorKind::UnexpectedEof.into());
        assert_eq!(
            e.to_string(),
            "TLS handshake with 192.0.2.7:5061 failed: the peer closed the connection during the handshake"
        );
        let cert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(matches!(handshake_error(addr, &cert), TransportError::Tls { certificate: true, .. }));
    }
}
