//! The phone's address behind a trusted balancer: `X-Forwarded-For`, read only from the
//! balancers the operator listed (`[http] trusted_proxies`).
//!
//! Behind nginx or HAProxy every request arrives from the balancer's address; judged by it, one
//! scanner would get the balancer blocked, and with it every phone. The header is the de facto
//! standard for the client's address (MDN, "X-Forwarded-For"; RFC 7239 §5.2 defines the
//! `Forwarded: for=` equivalent): each proxy appends the address it received the request from.
//! Only the entries appended by proxies we trust are believed, so the list is read from the
//! right, skipping listed proxies, and the first other address is the phone; whatever a phone
//! wrote itself further left is ignored. From a peer not listed, the header is ignored.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;
use sipprov_model::Cidr;

/// The address a request is judged by: `peer`, or, when `peer` is a trusted proxy, the
/// rightmost `X-Forwarded-For` address that is not itself a trusted proxy (with `peer`'s port).
/// A header that is missing, unreadable or names only proxies leaves `peer`. For example, from
/// listed peer 10.0.0.5 the header `1.2.3.4, 203.0.113.9` means 203.0.113.9 (the `1.2.3.4`
/// came from the phone itself).
pub(super) fn client_address(peer: SocketAddr, headers: &HeaderMap, proxies: &[Cidr]) -> SocketAddr {
    if proxies.is_empty() || !trusted(peer.ip(), proxies) {
        return peer;
    }
    let entries = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    // Several header lines are one list, in order (RFC 9110 §5.3).
    let list: Vec<&str> = entries.flat_map(|v| v.split(',')).map(str::trim).collect();
    for entry in list.iter().rev() {
        let Some(ip) = parse_entry(entry) else { return peer };
        if !trusted(ip, proxies) {
            return SocketAddr::new(ip, peer.port());
        }
    }
    peer
}

fn trusted(ip: IpAddr, proxies: &[Cidr]) -> bool {
    proxies.iter().any(|p| p.contains(ip))
}

/// An entry as proxies write it: an address, an IPv6 address in brackets, either with a port.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    entry.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> Vec<Cidr> {
        vec![sipprov_model::parse_cidr("10.0.0.0/24").unwrap().0]
    }

    fn judged(peer: &str, xff: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        client_address(format!("{peer}:4000").parse().unwrap(), &headers, &proxies()).ip().to_string()
    }

    #[test]
    fn a_listed_balancer_is_believed_for_the_address_it_appended() {
        assert_eq!(judged("10.0.0.5", &["203.0.113.9"]), "203.0.113.9");
        // A chain of listed proxies: the first address that is not one of them.
        assert_eq!(judged("10.0.0.5", &["203.0.113.9, 10.0.0.7"]), "203.0.113.9");
        assert_eq!(judged("10.0.0.5", &["203.0.113.9", "10.0.0.7"]), "203.0.113.9");
        assert_eq!(judged("10.0.0.5", &["[2001:db8::1]:5060"]), "2001:db8::1");
    }

    #[test]
    fn what_a_phone_wrote_itself_is_not_believed() {
        // The phone sent "1.2.3.4" itself; the balancer appended the phone's real address.
        assert_eq!(judged("10.0.0.5", &["1.2.3.4, 203.0.113.9"]), "203.0.113.9");
        // Straight to the node, not through a listed balancer: the header is ignored.
        assert_eq!(judged("198.51.100.7", &["203.0.113.9"]), "198.51.100.7");
    }

    #[test]
    fn an_unreadable_or_missing_header_leaves_the_peer() {
        assert_eq!(judged("10.0.0.5", &[]), "10.0.0.5");
        assert_eq!(judged("10.0.0.5", &["not-an-address"]), "10.0.0.5");
        assert_eq!(judged("10.0.0.5", &["10.0.0.9"]), "10.0.0.5");
    }
}
