//! The `[pnp]` configuration section.
//!
//! ```
//! let cfg = sipprov_server::ServerConfig::from_toml(r#"
//!     [pnp]
//!     mode = "any"
//!     interfaces = ["127.0.0.1"]
//!     allow_ouis = ["00:15:65"]
//!     allow_sources = ["10.0.0.0/8"]
//! "#).unwrap();
//! assert_eq!(cfg.pnp.mode, sipprov_server::pnp::PnpMode::Any);
//! assert_eq!(cfg.pnp.multicast.to_string(), "224.0.1.75:5060");
//! assert!(sipprov_server::ServerConfig::from_toml("[pnp]\nallow_ouis = [\"0015\"]").is_err());
//! assert!(sipprov_server::ServerConfig::from_toml("[pnp]\nallow_sources = []").is_err());
//! ```

use std::net::SocketAddr;

use serde::Deserialize;
use sipprov_model::{parse_cidr, Cidr};

/// Which phones get a provisioning URL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PnpMode {
    /// Only MACs in the inventory (the safe default: a PnP NOTIFY is unauthenticated and the phone takes the first answer).
    #[default]
    Known,
    /// Everyone allowed by the allow-lists; unknown devices are added to `discovered_group`.
    Any,
    /// No multicast socket; unicast `ua-profile` SUBSCRIBEs get 489 Bad Event.
    Off,
}

/// The default of `[pnp] remembered_subscriptions`: at a boot storm's 10,000 SUBSCRIBEs a
/// second, the last 10 s, twice the phones' retry window.
pub const DEFAULT_REMEMBERED_SUBSCRIPTIONS: usize = 100_000;

/// `[pnp]`: SIP Plug-and-Play.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PnpConfig {
    /// `known`, `any` or `off`.
    pub mode: PnpMode,
    /// The base URL handed out; default: the device's `provisioning.url` setting, else
    /// `http://<our address toward the phone>:<HTTP port>/`.
    pub url: Option<String>,
    /// The multicast group and port phones send to (sip.mcast.net, 224.0.1.75, RFC 6080 §4.1).
    pub multicast: SocketAddr,
    /// Interface names or IPv4 addresses to join the group on; empty: every non-loopback IPv4
    /// interface that is up and multicast-capable.
    pub interfaces: Vec<String>,
    /// The group discovered devices are added to in `any` mode (created when missing).
    pub discovered_group: String,
    /// When non-empty, only MACs with one of these vendor prefixes are answered.
    pub allow_ouis: Vec<String>,
    /// Only SUBSCRIBEs from these networks (CIDR) are answered. Unset: the networks directly
    /// attached to the interfaces PnP listens on (`pnp::socket::attached_networks`);
    /// `["0.0.0.0/0", "::/0"]` answers everyone.
    pub allow_sources: Option<Vec<String>>,
    /// On PostgreSQL, the LAN segment this node answers multicast on: of the nodes naming the
    /// same segment, one answers (the holder of the segment's advisory lock). Unset: the
    /// multicast group and port, so nodes on one LAN with the default settings share one.
    pub segment: Option<String>,
    /// How many subscriptions are remembered (for 64 s each) to give a phone that repeats its
    /// SUBSCRIBE one NOTIFY; when full, the oldest is forgotten early. Bounds the table's
    /// memory (about 200 bytes each) and the NOTIFYs in flight at once.
    pub remembered_subscriptions: usize,
}

impl Default for PnpConfig {
    fn default() -> Self {
        PnpConfig {
            mode: PnpMode::Known,
            url: None,
            multicast: SocketAddr::from(([224, 0, 1, 75], 5060)),
            interfaces: Vec::new(),
            discovered_group: "discovered".into(),
            allow_ouis: Vec::new(),
            allow_sources: None,
            segment: None,
            remembered_subscriptions: DEFAULT_REMEMBERED_SUBSCRIPTIONS,
        }
    }
}

impl PnpConfig {
    /// The segment this node contends for as multicast responder (see `segment`).
    pub fn segment_name(&self) -> String {
        self.segment.clone().unwrap_or_else(|| self.multicast.to_string())
    }

    /// Checks the values serde accepts but that make no sense.
    pub fn check(&self) -> Result<(), String> {
        if !self.multicast.ip().is_multicast() || !self.multicast.is_ipv4() {
            return Err(format!("pnp.multicast {} is not an IPv4 multicast address", self.multicast));
        }
        if let Some(url) = &self.url {
            if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("tftp://")) {
                return Err(format!("pnp.url {url:?} must start with http://, https:// or tftp://"));
            }
        }
        if self.discovered_group.is_empty() || self.discovered_group.contains(char::is_whitespace) {
            return Err("pnp.discovered_group must be a non-empty name without spaces".into());
        }
        if self.segment.as_ref().is_some_and(|s| s.is_empty() || s.len() > 128 || s.chars().any(char::is_control)) {
            return Err("pnp.segment must be a name of 1 to 128 printable characters".into());
        }
        if !(1..=10_000_000).contains(&self.remembered_subscriptions) {
            return Err("pnp.remembered_subscriptions must be from 1 to 10000000".into());
        }
        self.ouis()?;
        self.sources()?;
        Ok(())
    }

    /// The OUI allow-list as 6 lower-case hex digits each (`00:15:65`, `001565`, `00-15-65` accepted).
    pub fn ouis(&self) -> Result<Vec<String>, String> {
        self.allow_ouis
            .iter()
            .map(|o| {
                let hex: String = o.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect();
                (hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| hex.to_ascii_lowercase())
                    .ok_or_else(|| format!("pnp.allow_ouis: {o:?} is not a 3-byte vendor prefix"))
            })
            .collect()
    }

    /// The configured source allow-list; `None` when it is not set (the attached networks apply).
    pub fn sources(&self) -> Result<Option<Vec<Cidr>>, String> {
        let Some(list) = &self.allow_sources else { return Ok(None) };
        if list.is_empty() {
            return Err("pnp.allow_sources = [] would refuse every phone: leave it out for the networks \
                        attached to the PnP interfaces, or list networks (\"0.0.0.0/0\" for everyone)"
                .into());
        }
        list.iter()
            .map(|s| parse_cidr(s).map(|(c, _)| c).map_err(|e| format!("pnp.allow_sources: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
