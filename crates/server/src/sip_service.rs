//! The server's SIP endpoint: binds `[sip] listen` on UDP and TCP, and `[sip.tls] listen` on TLS
//! when set, and answers what arrives there.
//!
//! Outgoing check-sync NOTIFYs are sent from this endpoint, so phones that
//! accept NOTIFY only from a known address see one stable source. Requests
//! received: OPTIONS (keep-alive pings) get 200; SUBSCRIBE with `Event: ua-profile`
//! goes to Plug-and-Play ([`crate::pnp`]), which also receives the multicast group on this
//! endpoint; other SUBSCRIBEs get 489 Bad Event; anything else is answered 501, so no peer
//! waits for Timer F.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sipprov_sip::{Endpoint, EndpointConfig, IncomingRequest, Timers};

use crate::pnp::{self, Pnp, PnpMode, PnpServices};
use crate::{ServerConfig, ServerError};

/// The default User-Agent / Server header of our SIP messages (`[sip] user_agent` sets
/// another): the name alone, since a version tells a stranger which exploits to try.
pub fn user_agent() -> String {
    crate::config::DEFAULT_USER_AGENT.to_owned()
}

/// Binds UDP and TCP on `[sip] listen` (port 0 gives each its own ephemeral port), TLS as
/// `[sip.tls]` says ([`crate::sip_tls`]), with
/// `[sip] t1_ms` as the transaction timers' T1, `[sip] user_agent` in our headers, the
/// per-source request rate and transaction-table bound of `[sip]`, plus the PnP
/// multicast reception unless `[pnp] mode = "off"`. `http` is the bound provisioning listener,
/// from which PnP derives the URL it hands out when none is configured.
///
/// Inbound TCP and TLS connections are admitted by `admission`'s gate and run with its timeouts.
pub async fn bind(
    config: &ServerConfig,
    http: SocketAddr,
    admission: &crate::listener::Admission,
) -> Result<(Endpoint, Option<Arc<Pnp>>), ServerError> {
    let listen = config.sip.listen;
    let err = |e: &dyn std::fmt::Display| ServerError::Config(format!("cannot listen for SIP on {listen}: {e}"));
    let sockets = pnp::open_sockets(listen, &config.pnp).map_err(|e| err(&e))?;
    let timers = Timers { t1: Duration::from_millis(config.sip.t1_ms.max(1)), ..Timers::default() };
    let tls = crate::sip_tls::endpoint_tls(config.sip.tls.as_ref()).map_err(ServerError::Config)?;
    let cfg = EndpointConfig {
        tcp: Some(listen),
        tls,
        user_agent: Some(config.sip.user_agent.clone()),
        timers,
        requests: config.sip.request_limits(),
        stream_timeouts: admission.sip,
        connection_gate: Some(admission.sip_gate()),
        ..EndpointConfig::default()
    };
    let endpoint = Endpoint::with_std_udp_socket(cfg, sockets.unicast).await.map_err(|e| err(&e))?;
    if let Some(tls) = config.sip.tls.as_ref().filter(|t| t.files().next().is_some()) {
        tokio::spawn(crate::sip_tls::watch(endpoint.clone(), tls.clone()));
    }
    if let Some(group) = sockets.group {
        let added = group.set_nonblocking(true).and_then(|()| tokio::net::UdpSocket::from_std(group));
        match added.map_err(|e| e.to_string()).and_then(|s| endpoint.add_udp_socket(s).map_err(|e| e.to_string())) {
            Ok(addr) => tracing::info!(%addr, "PnP multicast socket added to the SIP endpoint"),
            Err(e) => tracing::warn!(error = %e, "PnP multicast socket unusable; answering unicast SUBSCRIBEs only"),
        }
    }
    if config.pnp.mode == PnpMode::Off {
        return Ok((endpoint, None));
    }
    let pnp = Pnp::new(&config.pnp, listen, http, sockets.membership).map_err(ServerError::Config)?;
    Ok((endpoint, Some(Arc::new(pnp))))
}

/// Answers incoming requests until the endpoint closes; PnP SUBSCRIBEs go to `pnp` with the
/// services it uses.
pub async fn serve(endpoint: Endpoint, services: Arc<PnpServices>, pnp: Option<Arc<Pnp>>) -> Result<(), ServerError> {
    let Some(mut incoming) = endpoint.incoming() else { return Ok(()) };
    if let Some(p) = &pnp {
        tokio::spawn(p.clone().rejoin_loop());
    }
    while let Some(req) = incoming.recv().await {
        match (req.request.method.as_str(), &pnp) {
            ("SUBSCRIBE", Some(p)) if pnp::subscribe::is_ua_profile(&req.request) => {
                tokio::spawn(p.clone().handle(services.clone(), req));
            }
            _ => {
                tokio::spawn(answer(req));
            }
        }
    }
    Ok(())
}

async fn answer(req: IncomingRequest) {
    let (status, reason) = match req.request.method.as_str() {
        "OPTIONS" => (200, "OK"),
        "SUBSCRIBE" => (489, "Bad Event"),
        _ => (501, "Not Implemented"),
    };
    if let Err(e) = req.reply(status, reason).await {
        tracing::debug!(source = %req.source, error = %e, "cannot answer SIP request");
    }
}
