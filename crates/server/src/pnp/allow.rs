//! The PnP allow-lists, parsed once from the `[pnp]` section ([`PnpConfig`]): which sources
//! and which vendor prefixes may get an answer.

use std::net::IpAddr;
use std::sync::RwLock;

use sipprov_model::{Cidr, Mac};

use super::socket::{attached_networks, list_interfaces};
use crate::config::PnpConfig;

/// Which sources may ask.
#[derive(Debug)]
enum Sources {
    /// `[pnp] allow_sources` as configured.
    Configured(Vec<Cidr>),
    /// The default: the networks attached to the PnP interfaces, re-listed by
    /// [`AllowLists::refresh`] as interfaces come and go.
    Attached { interfaces: Vec<String>, listen: IpAddr, networks: RwLock<Vec<Cidr>> },
}

/// The allow-lists, parsed once.
#[derive(Debug)]
pub struct AllowLists {
    ouis: Vec<String>,
    sources: Sources,
}

impl AllowLists {
    /// Parses the configured lists; without `allow_sources`, lists the networks attached to the
    /// interfaces PnP listens on (`[pnp] interfaces` and the SIP listener's address `listen`).
    pub fn new(cfg: &PnpConfig, listen: IpAddr) -> Result<AllowLists, String> {
        let sources = match cfg.sources()? {
            Some(list) => Sources::Configured(list),
            None => Sources::Attached { interfaces: cfg.interfaces.clone(), listen, networks: RwLock::new(Vec::new()) },
        };
        let lists = AllowLists { ouis: cfg.ouis()?, sources };
        lists.refresh();
        Ok(lists)
    }

    /// Re-lists the attached networks (default allow-list only); returns them when they changed.
    pub fn refresh(&self) -> Option<Vec<Cidr>> {
        let Sources::Attached { interfaces, listen, networks } = &self.sources else { return None };
        let now = match list_interfaces() {
            Ok(all) => attached_networks(&all, interfaces, *listen),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list network interfaces for the PnP source allow-list");
                return None;
            }
        };
        let mut current = networks.write().unwrap_or_else(|e| e.into_inner());
        (*current != now).then(|| {
            current.clone_from(&now);
            now
        })
    }

    /// The networks answered now, for the start-up log.
    pub fn sources_now(&self) -> Vec<Cidr> {
        match &self.sources {
            Sources::Configured(list) => list.clone(),
            Sources::Attached { networks, .. } => networks.read().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Why a MAC's vendor prefix is refused, if it is.
    pub fn refuse_mac(&self, mac: Option<Mac>) -> Option<String> {
        if self.ouis.is_empty() {
            return None;
        }
        match mac {
            Some(m) if self.ouis.contains(&m.oui()) => None,
            Some(m) => Some(format!("OUI {} is not in pnp.allow_ouis", m.oui())),
            None => Some("no MAC to check against pnp.allow_ouis".into()),
        }
    }

    /// Why a source address is refused, if it is.
    pub fn refuse_source(&self, ip: IpAddr) -> Option<String> {
        match &self.sources {
            Sources::Configured(list) if list.iter().any(|c| c.contains(ip)) => None,
            Sources::Configured(_) => Some(format!("source {ip} is not in pnp.allow_sources")),
            Sources::Attached { networks, .. } => {
                let networks = networks.read().unwrap_or_else(|e| e.into_inner());
                match networks.iter().any(|c| c.contains(ip)) {
                    true => None,
                    false => Some(format!(
                        "source {ip} is not on a network attached to the PnP interfaces (pnp.allow_sources widens it)"
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(toml_lists: &str) -> AllowLists {
        let cfg = crate::ServerConfig::from_toml(&format!("[pnp]\n{toml_lists}")).unwrap();
        AllowLists::new(&cfg.pnp, "127.0.0.1".parse().unwrap()).unwrap()
    }

    #[test]
    fn sources_default_to_attached_networks_and_everyone_must_be_explicit() {
        // Listening on loopback: loopback answered, a LAN or remote source not.
        let default = allow("interfaces = [\"127.0.0.1\"]");
        assert_eq!(default.refuse_source("127.0.0.1".parse().unwrap()), None);
        assert_eq!(default.refuse_source("127.9.8.7".parse().unwrap()), None);
        let refused = default.refuse_source("198.51.100.7".parse().unwrap()).expect("a foreign source is refused");
        assert!(refused.contains("not on a network attached"), "{refused}");
        let everyone = allow("allow_sources = [\"0.0.0.0/0\", \"::/0\"]");
        assert_eq!(everyone.refuse_source("198.51.100.7".parse().unwrap()), None);
        assert_eq!(everyone.refuse_source("2001:db8::1".parse().unwrap()), None);
        let lan = allow("allow_sources = [\"192.168.10.0/24\"]");
        assert!(lan.refuse_source("127.0.0.1".parse().unwrap()).unwrap().contains("pnp.allow_sources"));
        assert_eq!(lan.refresh(), None, "a configured list is not re-listed");
    }
}
