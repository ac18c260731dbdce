//! The rustls configurations for SIP over TLS: the listener's certificate (`[sip.tls] listen`,
//! `cert`, `key`), and whom outbound connections (check-sync to `sips:` contacts) trust.
//!
//! Phones present their vendor's device certificates or self-signed ones, so trust is the
//! operator's choice ([`Trust`]): a CA bundle (`[sip.tls] ca`, `sipprov notify --tls-ca`), in
//! which a listed end-entity certificate is also accepted as is (pinned: a phone's self-signed
//! certificate usually says CA:TRUE, which WebPKI refuses for a server); any certificate at all
//! (`insecure_skip_verify`, `--tls-insecure`), said loudly by the caller; or, with neither, the
//! operating system's CA store. The SIP crate takes the result and reads no files itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sipprov_model::Mac;

use crate::config::SipTlsConfig;
use crate::tls::cert::macs_in_certificate;
use crate::tls::{files_fingerprint, load_certs, load_key};

/// What outbound TLS connections accept from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Certificates chaining to a CA of this PEM bundle, or listed in it.
    Ca(PathBuf),
    /// Any certificate, unverified.
    AnyCertificate,
    /// Certificates chaining to the operating system's CA store.
    SystemRoots,
}

impl Trust {
    /// The trust `[sip.tls]` asks for (the system store when it names neither).
    pub fn of(cfg: &SipTlsConfig) -> Trust {
        match (&cfg.ca, cfg.insecure_skip_verify) {
            (Some(ca), _) => Trust::Ca(ca.clone()),
            (None, true) => Trust::AnyCertificate,
            (None, false) => Trust::SystemRoots,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The listener's configuration: certificate chain and key, no client certificates.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert, "sip.tls.cert")?, load_key(key, "sip.tls.key")?)
        .map_err(|e| format!("sip.tls.cert and sip.tls.key do not make a usable pair: {e}"))?;
    Ok(Arc::new(config))
}

/// The configuration of outbound connections: `trust`, and the client certificate and key
/// (`cert`, `key`) for phones that demand mutual TLS.
pub fn client_config(trust: &Trust, identity: Option<(&Path, &Path)>) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        Trust::Ca(path) => Arc::new(CaOrPinned::new(load_certs(path, "CA bundle")?, path, provider.clone())?),
        Trust::AnyCertificate => Arc::new(AnyCertificate(provider.clone())),
        Trust::SystemRoots => webpki_verifier(system_roots()?, provider.clone())?,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert, "client certificate")?, load_key(key, "client key")?)
            .map_err(|e| format!("the client certificate and key do not make a usable pair: {e}"))?,
    };
    Ok(Arc::new(config))
}

/// The operating system's CA certificates (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`).
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
        return Err(format!("no CA certificates in the system store{why}"));
    }
    Ok(roots)
}

fn webpki_verifier(roots: RootCertStore, provider: Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("TLS trust: {e}"))
}

/// WebPKI verification against a bundle, or an exact match with one of its certificates whose
/// names still fit the peer.
///
/// A vendor device certificate (Yealink's unique device certificate, "Using Security Certificates on Yealink IP Phones"; Polycom's factory-installed certificate, Poly UC Software Administrator Guide 5.9) names the phone
/// by its MAC in its subject, where WebPKI, which reads only subjectAltNames, does not look. So
/// when the expected name is a MAC (`sip.tls_name = mac`, `--tls-name`), a certificate whose
/// chain verifies and which names that MAC anywhere [`macs_in_certificate`] looks is accepted.
#[derive(Debug)]
struct CaOrPinned {
    webpki: Arc<WebPkiServerVerifier>,
    listed: Vec<CertificateDer<'static>>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl CaOrPinned {
    fn new(bundle: Vec<CertificateDer<'static>>, path: &Path, provider: Arc<CryptoProvider>) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        for (i, cert) in bundle.iter().enumerate() {
            roots.add(cert.clone()).map_err(|e| format!("CA bundle {}: certificate {}: {e}", path.display(), i + 1))?;
        }
        let roots = Arc::new(roots);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("TLS trust: {e}"))?;
        Ok(CaOrPinned { webpki, listed: bundle, roots, provider })
    }

    /// Whether `end_entity` is a device certificate of the MAC `server_name` spells: its chain
    /// verifies against the bundle (or it is listed there) and it names that MAC.
    fn is_device_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let ServerName::DnsName(name) = server_name else { return false };
        let Ok(mac) = name.as_ref().parse::<Mac>() else { return false };
        let Ok(parsed) = ParsedCertificate::try_from(end_entity) else { return false };
        let listed = self.listed.iter().any(|c| c.as_ref() == end_entity.as_ref());
        let algorithms = self.provider.signature_verification_algorithms.all;
        let chained = rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            algorithms,
        )
        .is_ok();
        (chained || listed) && macs_in_certificate(end_entity.as_ref()).contains(&mac)
    }
}

impl ServerCertVerifier for CaOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        if verdict.is_err() && self.is_device_certificate(end_entity, intermediates, server_name, now) {
            return Ok(ServerCertVerified::assertion());
        }
        if verdict.is_err() && self.listed.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            // The operator listed this very certificate: its chain says nothing more, its names still count.
            rustls::client::verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Accepts any certificate; the handshake signatures are still checked, so the peer holds the
/// key of the certificate it sent, whoever it is.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server endpoint's TLS settings from `[sip.tls]`: the listener when `listen` is set, and
/// the outbound client. Broken files are an error; a system CA store that is empty only turns
/// outbound TLS off (with a warning when `[sip.tls]` is present), so a listener-only set-up runs.
pub fn endpoint_tls(cfg: Option<&SipTlsConfig>) -> Result<Option<sipprov_sip::TlsConfig>, String> {
    let default = SipTlsConfig::default();
    let tls = cfg.unwrap_or(&default);
    let listen = match (tls.listen, &tls.cert, &tls.key) {
        (Some(addr), Some(cert), Some(key)) => Some(sipprov_sip::TlsListen { addr, server: server_config(cert, key)? }),
        (Some(_), _, _) => return Err("sip.tls.listen needs sip.tls.cert and sip.tls.key".into()),
        _ => None,
    };
    let trust = Trust::of(tls);
    if trust == Trust::AnyCertificate {
        tracing::warn!(
            "[sip.tls] insecure_skip_verify = true: phones' TLS certificates are NOT verified; \
             anyone on the path can impersonate a phone"
        );
    }
    let identity = tls.client_cert.as_deref().zip(tls.client_key.as_deref());
    let client = match client_config(&trust, identity) {
        Ok(c) => Some(c),
        Err(e) if trust == Trust::SystemRoots => {
            if cfg.is_some() {
                tracing::warn!(error = %e, "check-sync over TLS is off: set [sip.tls] ca (or insecure_skip_verify)");
            }
            None
        }
        Err(e) => return Err(e),
    };
    Ok((listen.is_some() || client.is_some()).then_some(sipprov_sip::TlsConfig { listen, client }))
}

/// Re-reads `[sip.tls]`'s PEM files when they change (checked every `reload_secs`) and hands
/// the result to the endpoint, so a renewed certificate or CA bundle needs no restart; a broken
/// replacement is logged and the previous configuration kept. Runs until the endpoint is gone.
pub async fn watch(endpoint: sipprov_sip::Endpoint, cfg: SipTlsConfig) {
    let endpoint = endpoint.downgrade();
    let mut last = files_fingerprint(cfg.files());
    let mut tick = tokio::time::interval(cfg.reload_every());
    loop {
        tick.tick().await;
        let now = files_fingerprint(cfg.files());
        if now == last {
            continue;
        }
        last = now;
        let Some(endpoint) = endpoint.upgrade() else { return };
        let reloaded = endpoint_tls(Some(&cfg)).and_then(|tls| {
            let tls = tls.ok_or("no TLS settings left")?;
            endpoint.reload_tls(&tls).map_err(|e| e.to_string())
        });
        match reloaded {
            Ok(()) => tracing::info!("SIP TLS certificate, key or CA bundle reloaded"),
            Err(e) => {
                tracing::warn!(error = %e, "SIP TLS files changed but cannot be loaded; keeping the previous ones")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_follows_the_settings() {
        let mut cfg = SipTlsConfig::default();
        assert_eq!(Trust::of(&cfg), Trust::SystemRoots);
        cfg.insecure_skip_verify = true;
        assert_eq!(Trust::of(&cfg), Trust::AnyCertificate);
        cfg.ca = Some("phones.pem".into());
        assert_eq!(Trust::of(&cfg), Trust::Ca("phones.pem".into()));
    }

    #[test]
    fn missing_files_are_named() {
        let err = client_config(&Trust::Ca("/nonexistent/phones.pem".into()), None).unwrap_err();
        assert!(err.starts_with("CA bundle /nonexistent/phones.pem"), "{err}");
        let err = server_config(Path::new("/nonexistent/c.pem"), Path::new("/nonexistent/k.pem")).unwrap_err();
        assert!(err.starts_with("sip.tls.cert /nonexistent/c.pem"), "{err}");
        assert!(client_config(&Trust::AnyCertificate, None).is_ok());
    }
}
