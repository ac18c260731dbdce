//! `sipprov notify`: a one-shot check-sync sender (a better sipsak) over UDP, TCP or TLS, and
//! `device notify`.

use std::time::Duration;

use reqwest::Method;
use sipprov_api::{NotifyOutcome, NotifyRequest};
use sipprov_checksync::{self as checksync, CheckSync};
use sipprov_server::sip_tls::{self, Trust};
use sipprov_sip::uri::SipUri;
use sipprov_sip::{Credentials, Endpoint, EndpointConfig, Timers, TlsConfig, Transport};

use crate::cli::{ApiArgs, NotifyArgs, TransportArg};
use crate::client::{Body, Client};

/// Sends one NOTIFY from a fresh endpoint and prints the final response; Ok only on 2xx.
pub(super) async fn one_shot(args: NotifyArgs) -> Result<(), String> {
    if !(0.1..=600.0).contains(&args.timeout) {
        return Err("--timeout must be between 0.1 and 600 seconds".into());
    }
    let event = match (&args.event, &args.vendor) {
        (Some(e), _) => e.clone(),
        (None, Some(v)) => sipprov_vendors::check_sync_event(v, args.reboot)
            .ok_or_else(|| format!("no check-sync event is known for vendor {v:?}; give --event"))?
            .to_string(),
        (None, None) => format!("check-sync;reboot={}", args.reboot),
    };
    let uri: SipUri = args
        .uri
        .parse()
        .map_err(|e: sipprov_sip::error::ParseError| checksync::invalid_uri(&args.uri, &e.to_string()))?;
    let transport = checksync::transport_for(
        &uri,
        args.transport.map(|t| match t {
            TransportArg::Udp => Transport::Udp,
            TransportArg::Tcp => Transport::Tcp,
            TransportArg::Tls => Transport::Tls,
        }),
    )
    .map_err(|e| e.to_string())?;
    let tls = match transport {
        Transport::Tls => Some(tls_client(&args)?),
        _ => None,
    };
    let endpoint = Endpoint::bind(EndpointConfig {
        udp: Some(args.bind),
        tcp: (transport == Transport::Tcp).then_some(args.bind),
        tls,
        timers: timers(args.timeout),
        user_agent: Some(sipprov_server::sip_service::user_agent()),
        ..EndpointConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let cs = CheckSync {
        uri: args.uri.clone(),
        event,
        from: args.from.clone(),
        proxy: args.proxy.clone(),
        transport: Some(transport),
        credentials: args
            .auth_user
            .zip(args.auth_password)
            .map(|(username, password)| Credentials { username, password: password.into_inner() }),
        tls_name: args.tls_name.clone(),
    };
    report(&checksync::send(&endpoint, &cs).await.into())
}

/// The outbound TLS client: trust from --tls-ca or --tls-insecure, else the system store, and
/// the optional client certificate.
fn tls_client(args: &NotifyArgs) -> Result<TlsConfig, String> {
    let trust = match (&args.tls_ca, args.tls_insecure) {
        (Some(ca), _) => Trust::Ca(ca.clone()),
        (None, true) => {
            eprintln!("warning: --tls-insecure: the phone's certificate is NOT verified");
            Trust::AnyCertificate
        }
        (None, false) => Trust::SystemRoots,
    };
    let identity = args.tls_client_cert.as_deref().zip(args.tls_client_key.as_deref());
    let client = sip_tls::client_config(&trust, identity).map_err(|e| match trust {
        Trust::SystemRoots => {
            format!("{e}: give the phone's CA or certificate with --tls-ca FILE, or accept any with --tls-insecure")
        }
        _ => e,
    })?;
    Ok(TlsConfig { listen: None, client: Some(client) })
}

/// Timer F is the timeout: T1 = timeout / 64 (500 ms for the default 32 s), T2 at least 4 s.
fn timers(timeout: f64) -> Timers {
    let t1 = Duration::from_secs_f64(timeout / 64.0);
    Timers { t1, t2: Duration::from_secs(4).max(t1), ..Timers::default() }
}

/// Prints an outcome; an error (non-zero exit) unless it is a 2xx.
fn report(outcome: &NotifyOutcome) -> Result<(), String> {
    // A NOTIFY never sent (no target, reboot disabled) says so rather than "sent to -".
    let to = outcome.sent_to.as_deref().map_or_else(|| "not sent".to_string(), |t| format!("sent to {t}"));
    if outcome.is_ok() {
        println!("{} (Event: {}, {to})", outcome.summary(), outcome.event);
        Ok(())
    } else {
        Err(format!("{} (Event: {}, {to})", outcome.summary(), outcome.event))
    }
}

/// `sipprov device notify`: asks the server to send, prints the recorded outcome.
pub(super) async fn device(mac: &str, reboot: bool, api: &ApiArgs) -> Result<(), String> {
    let path = format!("/api/v1/devices/{mac}/notify");
    let body = Body::json(&NotifyRequest { reboot })?;
    let outcome: NotifyOutcome = Client::new(api)?.json(Method::POST, &path, Some(body)).await?;
    report(&outcome)
}
