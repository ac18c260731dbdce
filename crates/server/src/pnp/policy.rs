//! Who gets a provisioning URL, and which one.
//!
//! PnP is unauthenticated and the first answer wins: the NOTIFY carries no authentication and
//! the phone takes the first URL it gets. So the default `known` mode answers only MACs in the
//! inventory; `any` answers every phone the allow-lists let through and
//! adds unknown ones to the inventory as discovered. The URL carries no credentials unless the
//! device's settings say `pnp.url_credentials = 1`.
//!
//! A SUBSCRIBE that names no MAC at all (AudioCodes 400HD firmware 2.2.2 sends From
//! `00000001` and User-Agent `AUDC-IPPhone/2.2.2`, as in the AudioCodes 4xxHD user manual's PnP
//! example) gets the generic provisioning URL in every mode: the base directory in the vendor's dialect, built from global settings only,
//! never with credentials. It names no device and carries no device data; the phone then asks
//! that directory for its own MAC-named file, which the HTTP side serves (or challenges) as for
//! any fetch. Such a SUBSCRIBE still passes the source allow-list, the OUI allow-list (which a
//! MAC-less request cannot satisfy) and the PnP throttle. A refusal is silent on the wire: other
//! responders on the LAN may be the ones meant to answer, and Grandstream stops asking on a 500
//! (gs_tools `plugnplay/README.md`).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;

use sipprov_model::known;
use sipprov_model::Settings;
use sipprov_store::{now_ms, DeviceRecord};
use sipprov_vendors::pnp::{provisioning_url, Credentials};

use super::allow::AllowLists;
use super::subscribe::PnpSubscribe;
use super::{PnpConfig, PnpMode, PnpServices};

/// The outcome of the policy for one SUBSCRIBE.
#[derive(Debug)]
pub enum Decision {
    /// Answer with a URL. `device` is the inventory device, if the MAC is known.
    Answer {
        /// The inventory device, when the MAC is known.
        device: Option<Arc<DeviceRecord>>,
        /// The provisioning URL to send.
        url: String,
    },
    /// Say nothing; the reason is recorded.
    Refuse {
        /// The inventory device, when the MAC is known.
        device: Option<Arc<DeviceRecord>>,
        /// Why, for the history or the log.
        reason: String,
    },
}

/// Applies mode and allow-lists, then builds the URL.
pub fn decide(
    state: &PnpServices,
    cfg: &PnpConfig,
    allow: &AllowLists,
    sub: &PnpSubscribe,
    source: SocketAddr,
    http: SocketAddr,
) -> Decision {
    let device = sub.mac.and_then(|m| state.inventory.device(m));
    let refuse = |reason: String| Decision::Refuse { device: device.clone(), reason };
    if let Some(reason) = allow.refuse_source(source.ip()).or_else(|| allow.refuse_mac(sub.mac)) {
        return refuse(reason);
    }
    let Some(mac) = sub.mac else {
        return Decision::Answer { device: None, url: generic_url(state, cfg, sub, source, http) };
    };
    if cfg.mode == PnpMode::Known && device.is_none() {
        return refuse(format!("MAC {mac} is not in the inventory (pnp.mode = known)"));
    }
    let settings = match &device {
        Some(d) => state.inventory.merged_settings(d),
        None => discovered_settings(state, cfg, sub),
    };
    let vendor = device.as_ref().map(|d| d.vendor.to_string()).or_else(|| sub.vendor.clone()).unwrap_or_default();
    let base = base_url(&settings, cfg, source, http);
    let url = provisioning_url(&vendor, &base, sub.mac, url_credentials(&settings).as_ref());
    Decision::Answer { device, url }
}

/// The URL for a SUBSCRIBE that names no MAC: the base directory from global settings, in the
/// dialect of the vendor its Event or User-Agent names, without credentials.
fn generic_url(
    state: &PnpServices,
    cfg: &PnpConfig,
    sub: &PnpSubscribe,
    source: SocketAddr,
    http: SocketAddr,
) -> String {
    let base = base_url(&state.inventory.global(), cfg, source, http);
    provisioning_url(sub.vendor.as_deref().unwrap_or_default(), &base, None, None)
}

/// The HTTP credentials to put into the URL: only with `pnp.url_credentials = 1` (an explicit
/// opt-in, since the NOTIFY is unauthenticated plain UDP that anyone claiming the MAC, or
/// anyone on the LAN for a multicast SUBSCRIBE, receives), and only when HTTP auth is on for
/// the device (credentials set, `http.auth` not `none`: crate::auth).
fn url_credentials(settings: &Settings) -> Option<Credentials<'_>> {
    if settings.get_key(&known::PNP_URL_CREDENTIALS) != Some(true) {
        return None;
    }
    let auth_off = settings.get_key(&known::HTTP_AUTH) == Some(known::HttpAuth::None);
    match (settings.get_key(&known::HTTP_USERNAME), settings.get_key(&known::HTTP_PASSWORD), auth_off) {
        (Some(username), Some(password), false) => Some(Credentials { username, password }),
        _ => None,
    }
}

/// What a device not yet in the inventory would get: global and discovered-group settings.
fn discovered_settings(state: &PnpServices, cfg: &PnpConfig, sub: &PnpSubscribe) -> Settings {
    let Some(mac) = sub.mac else { return state.inventory.global() };
    let probe = DeviceRecord {
        mac,
        vendor: sub.vendor.as_deref().unwrap_or_default().into(),
        model: sub.model.as_deref().unwrap_or_default().into(),
        group: Some(cfg.discovered_group.as_str().into()),
        contact: None,
        settings: Settings::new(),
        created_at: 0,
        updated_at: 0,
        last_fetch: None,
    };
    state.inventory.merged_settings(&probe)
}

/// The base URL: the `provisioning.url` setting, else `[pnp] url`, else our HTTP listener as the
/// phone reaches it.
fn base_url(settings: &Settings, cfg: &PnpConfig, source: SocketAddr, http: SocketAddr) -> String {
    if let Some(url) = settings.get_key(&known::PROVISIONING_URL).filter(|u| u.contains("://")) {
        return url.to_string();
    }
    if let Some(url) = &cfg.url {
        return url.clone();
    }
    let ip = if http.ip().is_unspecified() { local_ip_toward(source.ip()).unwrap_or(http.ip()) } else { http.ip() };
    match ip {
        IpAddr::V6(v6) => format!("http://[{v6}]:{}/", http.port()),
        IpAddr::V4(v4) => format!("http://{v4}:{}/", http.port()),
    }
}

/// The local address the OS would use to reach `peer` (a connected UDP socket sends nothing).
fn local_ip_toward(peer: IpAddr) -> Option<IpAddr> {
    let any: SocketAddr = if peer.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect((peer, 9)).ok()?;
    probe.local_addr().ok().map(|a| a.ip()).filter(|ip| !ip.is_unspecified())
}

/// In `any` mode, adds a device first seen by PnP to the inventory (store first, then memory,
/// as the admin API does). Vendors or models sipprov cannot provision are not added: the
/// reason is returned for the record.
pub async fn add_discovered(
    state: &PnpServices,
    cfg: &PnpConfig,
    sub: &PnpSubscribe,
    source: SocketAddr,
) -> Result<(), String> {
    let mac = sub.mac.ok_or("no MAC")?.to_string();
    let vendor = sub.vendor.clone().ok_or("no vendor in the Event or User-Agent")?;
    let model = sub.model.clone().ok_or("no model in the Event or User-Agent")?;
    let contact = format!("sip:{}:{}", host(source.ip()), source.port());
    let device = crate::registry::validate::validate_new_device(
        &mac,
        &vendor,
        &model,
        Some(cfg.discovered_group.clone()),
        Some(contact),
        Settings::new(),
    )?;
    let added = state
        .registry
        .add_devices(&crate::access::Actor::pnp(), std::slice::from_ref(&device))
        .await
        .map_err(|e| e.to_string())?;
    added.first().ok_or("device vanished")?;
    tracing::info!(mac = %device.mac, %vendor, %model, %source, group = %cfg.discovered_group, at = now_ms(), "PnP device discovered and added");
    Ok(())
}

fn host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The URL with any `user:password@` password replaced, for logs and history.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, hostport)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{hostport}{}", &rest[authority_end..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_record() {
        assert_eq!(redacted("http://dev:s3cret@h:8080/p/"), "http://dev:***@h:8080/p/");
        assert_eq!(redacted("http://h/a@b"), "http://h/a@b");
        assert_eq!(redacted("nonsense"), "nonsense");
    }

    #[test]
    fn credentials_reach_the_url_only_on_explicit_opt_in() {
        let creds = ["http.username=dev1", "http.password=s3cret"];
        let plain = Settings::parse_assignments(creds).unwrap();
        assert!(url_credentials(&plain).is_none(), "HTTP credentials alone stay out of the NOTIFY");
        let opted = Settings::parse_assignments(creds.into_iter().chain(["pnp.url_credentials=1"])).unwrap();
        let got = url_credentials(&opted).expect("opted in");
        assert_eq!((got.username, got.password), ("dev1", "s3cret"));
        let off = Settings::parse_assignments(creds.into_iter().chain(["pnp.url_credentials=1", "http.auth=none"]));
        assert!(url_credentials(&off.unwrap()).is_none(), "no HTTP auth: nothing to hand out");
    }

    #[test]
    fn base_url_precedence() {
        let cfg = PnpConfig::default();
        let src: SocketAddr = "127.0.0.1:5059".parse().unwrap();
        let http: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(base_url(&Settings::new(), &cfg, src, http), "http://127.0.0.1:8080/");
        let with = PnpConfig { url: Some("https://p.example/".into()), ..PnpConfig::default() };
        assert_eq!(base_url(&Settings::new(), &with, src, http), "https://p.example/");
        let s = Settings::parse_assignments(["provisioning.url=http://x.example/"]).unwrap();
        assert_eq!(base_url(&s, &with, src, http), "http://x.example/");
    }
}
