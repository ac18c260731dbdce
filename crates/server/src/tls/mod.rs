//! The HTTPS provisioning listener: rustls with optional or required client certificates.
//!
//! A tokio-rustls accept loop, then hyper's HTTP/1 connection server around the same
//! provisioning router the wiring hands it (`listener::serve_connection`), with the peer address and
//! a [`TlsPeer`] (the MACs the verified client certificate names) inserted into each request's
//! extensions. Connections are admitted by the listener's limiter before the handshake, which
//! must finish within `limits.handshake_timeout_secs`; then the HTTP timeouts apply. The rustls configuration is rebuilt when the PEM files change, and each
//! new connection takes the current one, so certificates and CA bundles reload without a restart.

pub mod cert;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use hyper_util::rt::TokioIo;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{ClientCertMode, TlsConfig};
use crate::listener::drain::Draining;
use crate::listener::idle::IdleTimeout;
use crate::listener::limit::Limiter;
pub use crate::listener::TlsPeer;
use crate::listener::{refuse, serve_connection, AcceptErrors, HttpTimeouts};
use crate::ServerError;

/// A bound HTTPS listener, not yet serving.
pub struct HttpsListener {
    /// The bound address (useful when the configuration asked for port 0).
    pub addr: SocketAddr,
    listener: TcpListener,
    config: TlsConfig,
    current: Arc<RwLock<Arc<rustls::ServerConfig>>>,
}

impl HttpsListener {
    /// Loads the certificate and binds, when `[http.tls]` is configured.
    pub async fn bind(config: Option<&TlsConfig>) -> Result<Option<HttpsListener>, ServerError> {
        let Some(config) = config else { return Ok(None) };
        let tls = build(config).map_err(ServerError::Config)?;
        let listener = crate::listener::bind_tcp(config.listen).map_err(|source| ServerError::Listen {
            what: "provisioning HTTPS",
            addr: config.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Listen {
            what: "local address",
            addr: config.listen,
            source,
        })?;
        Ok(Some(HttpsListener {
            addr,
            listener,
            config: config.clone(),
            current: Arc::new(RwLock::new(Arc::new(tls))),
        }))
    }

    /// Accepts connections until the listener fails or the server drains; reloads the PEM files
    /// when they change. Each connection is admitted by `limiter`, runs with `timeouts` and is
    /// answered by `router`.
    pub async fn serve<H: crate::listener::Handler>(
        self,
        router: H,
        limiter: Arc<Limiter>,
        timeouts: HttpTimeouts,
        mut draining: Draining,
    ) -> Result<(), ServerError> {
        tokio::spawn(watch(self.config.clone(), self.current.clone()));
        let mut accept_errors = AcceptErrors::default();
        loop {
            let accepted = tokio::select! {
                biased;
                () = draining.started() => return Ok(()),
                accepted = self.listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(c) => c,
                Err(e) => {
                    accept_errors.failed("provisioning HTTPS", &e).await;
                    continue;
                }
            };
            let Ok(permit) = limiter.admit(peer.ip()) else {
                refuse(tcp);
                continue;
            };
            let acceptor = TlsAcceptor::from(self.current.read().unwrap_or_else(|e| e.into_inner()).clone());
            let (router, draining) = (router.clone(), draining.clone());
            tokio::spawn(async move {
                let (tcp, head) = IdleTimeout::new(tcp, timeouts.idle, timeouts.header);
                let stream = match tokio::time::timeout(timeouts.handshake, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer.ip(), error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer.ip(), "TLS handshake timed out");
                        return;
                    }
                };
                let certs = stream.get_ref().1.peer_certificates();
                let tls_peer = TlsPeer {
                    has_certificate: certs.is_some_and(|c| !c.is_empty()),
                    macs: certs
                        .and_then(|c| c.first())
                        .map(|c| cert::macs_in_certificate(c))
                        .unwrap_or_default()
                        .into(),
                };
                serve_connection(TokioIo::new(stream), peer, router, head, Some(tls_peer), draining).await;
                drop(permit);
            });
        }
    }
}

/// Builds a rustls server configuration from the PEM files (ring provider, TLS 1.2 and 1.3).
pub fn build(cfg: &TlsConfig) -> Result<rustls::ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = load_certs(&cfg.cert, "http.tls.cert")?;
    let key = load_key(&cfg.key, "http.tls.key")?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match cfg.client_cert {
        ClientCertMode::None => builder.with_no_client_auth(),
        mode => {
            let mut roots = RootCertStore::empty();
            for path in &cfg.client_ca {
                for ca in load_certs(path, "http.tls.client_ca")? {
                    roots.add(ca).map_err(|e| format!("http.tls.client_ca {}: {e}", path.display()))?;
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if mode == ClientCertMode::Request { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("http.tls.client_ca: {e}"))?)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("http.tls.cert and http.tls.key do not make a usable pair: {e}"))?;
    // Phones speak HTTP/1.x; advertising only that keeps ALPN-aware clients from trying h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The certificates of a PEM file (a chain, leaf first, or a CA bundle); `what` names the
/// setting in errors. A file without any is an error.
pub fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what} {}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1); `what` names the setting in errors.
pub fn load_key(path: &Path, what: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

/// Sizes and modification times of every PEM file, to notice replacements.
fn fingerprint(cfg: &TlsConfig) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
    files_fingerprint(std::iter::once(&cfg.cert).chain([&cfg.key]).chain(&cfg.client_ca))
}

/// Sizes and modification times of `paths` (`None` for a missing file): what changes when a
/// file is replaced or rewritten. Shared with the SIP TLS watcher ([`crate::sip_tls::watch`]).
pub(crate) fn files_fingerprint<'a>(
    paths: impl IntoIterator<Item = &'a PathBuf>,
) -> Vec<(PathBuf, Option<(u64, SystemTime)>)> {
    paths
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
            (p.clone(), meta)
        })
        .collect()
}

async fn watch(cfg: TlsConfig, current: Arc<RwLock<Arc<rustls::ServerConfig>>>) {
    let mut last = fingerprint(&cfg);
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.reload_secs.max(1)));
    loop {
        tick.tick().await;
        let now = fingerprint(&cfg);
        if now == last {
            continue;
        }
        last = now;
        match build(&cfg) {
            Ok(fresh) => {
                *current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
                tracing::info!(cert = %cfg.cert.display(), "TLS certificate, key or CA bundles reloaded");
            }
            Err(e) => tracing::warn!(error = %e, "TLS files changed but cannot be loaded; keeping the previous ones"),
        }
    }
}
