//! The UDP sockets behind SIP: the unicast listener, where the PnP multicast group is joined, and
//! the networks attached to those interfaces (the default `[pnp] allow_sources`).
//!
//! Two sockets bound with address reuse on the same `0.0.0.0:5060` do not share unicast
//! datagrams: the kernel hands each one to a single socket (ip(7), `IP_MULTICAST_ALL` and `SO_REUSEPORT` in socket(7)), so a
//! second socket meant only for multicast would silently steal SIP traffic. Hence:
//!
//! - the unicast listener never sets `SO_REUSEADDR`/`SO_REUSEPORT`, and has `IP_MULTICAST_ALL`
//!   off, so it gets no group traffic it did not ask for;
//! - when it is bound to the wildcard address on the group's port (the usual `0.0.0.0:5060`), it
//!   joins the group itself: one socket, nothing to steal;
//! - otherwise (a specific address, or another port) a second socket is bound to the group
//!   address itself (`224.0.1.75:5060`), with reuse so other responders on the host may do the
//!   same. A socket bound to a multicast address only ever receives datagrams sent to that
//!   group, so it cannot take unicast SIP either.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Mutex;

use sipprov_model::Cidr;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// The unicast SIP listener socket: no address reuse, `IP_MULTICAST_ALL` off (IPv4).
pub fn unicast(listen: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(listen), Type::DGRAM, Some(Protocol::UDP))?;
    if listen.is_ipv4() {
        socket.set_multicast_all_v4(false)?;
    }
    socket.bind(&listen.into())?;
    Ok(socket.into())
}

/// True when the listener itself should join the group (wildcard IPv4 address, same port).
pub fn listener_joins(listen: SocketAddr, group: SocketAddrV4) -> bool {
    matches!(listen, SocketAddr::V4(l) if l.ip().is_unspecified() && l.port() == group.port())
}

/// A socket bound to the group address (with reuse) that receives only that group's datagrams.
pub fn group_socket(group: SocketAddrV4) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_multicast_all_v4(false)?;
    socket.bind(&SocketAddr::V4(group).into())?;
    Ok(socket.into())
}

/// The group memberships of one socket, kept so new interfaces can be joined later.
pub struct Membership {
    socket: UdpSocket,
    group: Ipv4Addr,
    interfaces: Vec<String>,
    joined: Mutex<HashSet<Ipv4Addr>>,
}

impl Membership {
    /// Keeps a handle on `socket` (a clone of the one the SIP endpoint reads) for joining.
    pub fn new(socket: UdpSocket, group: Ipv4Addr, interfaces: Vec<String>) -> Membership {
        Membership { socket, group, interfaces, joined: Mutex::new(HashSet::new()) }
    }

    /// Joins the group on every selected interface not joined yet; returns the newly joined
    /// addresses. Failures are logged and retried on the next call.
    pub fn join_new(&self) -> Vec<Ipv4Addr> {
        let wanted = match interface_addresses(&self.interfaces) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list network interfaces for PnP multicast");
                return Vec::new();
            }
        };
        let mut joined = self.joined.lock().unwrap_or_else(|e| e.into_inner());
        let mut added = Vec::new();
        for addr in wanted {
            if joined.contains(&addr) {
                continue;
            }
            match SockRef::from(&self.socket).join_multicast_v4(&self.group, &addr) {
                Ok(()) => {
                    joined.insert(addr);
                    added.push(addr);
                }
                Err(e) => {
                    tracing::warn!(group = %self.group, interface = %addr, error = %e, "cannot join PnP multicast group")
                }
            }
        }
        added
    }

    /// The interface addresses joined so far.
    pub fn joined(&self) -> Vec<Ipv4Addr> {
        self.joined.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect()
    }
}

/// One address of a network interface, with the prefix length of its netmask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface name (`eth0`).
    pub name: String,
    /// The address (IPv4 or IPv6).
    pub addr: IpAddr,
    /// Netmask bits: the directly attached network is `addr/prefix`.
    pub prefix: u8,
    /// `IFF_UP`.
    pub up: bool,
    /// `IFF_MULTICAST`.
    pub multicast: bool,
    /// `IFF_LOOPBACK`.
    pub loopback: bool,
}

impl InterfaceAddr {
    /// An IPv4 address of an interface that is up, multicast-capable and not loopback: where
    /// the group is joined when `[pnp] interfaces` is empty.
    pub fn usable_by_default(&self) -> bool {
        self.addr.is_ipv4() && self.up && self.multicast && !self.loopback
    }

    /// True when `wanted` (an entry of `[pnp] interfaces`) names this interface or this address.
    pub fn is_named_by(&self, wanted: &str) -> bool {
        self.name == wanted || wanted.parse::<IpAddr>().is_ok_and(|a| a == self.addr)
    }
}

/// The addresses to join on: those named in `wanted` (by interface name or address; an address
/// of no interface is used as written), or every default-usable interface when `wanted` is empty.
pub fn interface_addresses(wanted: &[String]) -> io::Result<Vec<Ipv4Addr>> {
    Ok(join_addresses(&list_interfaces()?, wanted))
}

/// [`interface_addresses`] over a given interface list.
fn join_addresses(all: &[InterfaceAddr], wanted: &[String]) -> Vec<Ipv4Addr> {
    let v4 = |i: &InterfaceAddr| match i.addr {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    };
    if wanted.is_empty() {
        return all.iter().filter(|i| i.usable_by_default()).filter_map(v4).collect();
    }
    let mut out = Vec::new();
    for w in wanted {
        let matched: Vec<Ipv4Addr> = all.iter().filter(|i| i.is_named_by(w)).filter_map(v4).collect();
        if matched.is_empty() {
            match w.parse::<Ipv4Addr>() {
                Ok(a) => out.push(a),
                Err(_) => tracing::warn!(interface = %w, "PnP interface has no IPv4 address (yet)"),
            }
        }
        out.extend(matched);
    }
    out.dedup();
    out
}

/// Every IPv4 and IPv6 address of every interface, with its netmask (`getifaddrs`).
pub fn list_interfaces() -> io::Result<Vec<InterfaceAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        // SAFETY: the sockaddrs of a node live as long as the list.
        let Some(addr) = (unsafe { ip_of(entry.ifa_addr) }) else { continue };
        // SAFETY: as above; a missing netmask means a host route (full length).
        let prefix = unsafe { prefix_of(entry.ifa_netmask) }.unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) }.to_string_lossy().into_owned();
        let flags = entry.ifa_flags;
        out.push(InterfaceAddr {
            name,
            addr,
            prefix,
            up: flags & libc::IFF_UP as u32 != 0,
            multicast: flags & libc::IFF_MULTICAST as u32 != 0,
            loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// The IP address in a sockaddr of family AF_INET or AF_INET6; `None` for null or other families.
///
/// # Safety
/// `sa` is null or points to a valid sockaddr whose family says its real type.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid sockaddr; the family selects the cast.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// The number of one bits of a netmask sockaddr.
///
/// # Safety
/// As [`ip_of`].
unsafe fn prefix_of(sa: *const libc::sockaddr) -> Option<u8> {
    // SAFETY: forwarded from the caller.
    let bits = match unsafe { ip_of(sa) }? {
        IpAddr::V4(m) => u32::from(m).count_ones(),
        IpAddr::V6(m) => u128::from(m).count_ones(),
    };
    u8::try_from(bits).ok()
}

/// The networks directly attached to the interfaces PnP listens on: the `[pnp] interfaces`
/// selection (by name or address; empty: the default-usable interfaces the group is joined on),
/// plus the interface holding the SIP listener's address when it is bound to one (so a listener
/// on 127.0.0.1 accepts loopback). Every address of a selected interface, IPv4 and IPv6,
/// contributes its network. An address in `wanted` that no interface holds contributes nothing:
/// its netmask is unknown.
pub fn attached_networks(all: &[InterfaceAddr], wanted: &[String], listen: IpAddr) -> Vec<Cidr> {
    let selected = |i: &InterfaceAddr| match wanted.is_empty() {
        true => i.usable_by_default(),
        false => wanted.iter().any(|w| i.is_named_by(w)),
    };
    let mut names: Vec<&str> = all.iter().filter(|i| selected(i)).map(|i| i.name.as_str()).collect();
    if !listen.is_unspecified() {
        names.extend(all.iter().filter(|i| i.addr == listen).map(|i| i.name.as_str()));
    }
    let mut nets = Vec::new();
    for i in all.iter().filter(|i| names.contains(&i.name.as_str())) {
        let net = Cidr::new(i.addr, i.prefix);
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, addr: &str, prefix: u8, loopback: bool) -> InterfaceAddr {
        InterfaceAddr {
            name: name.into(),
            addr: addr.parse().unwrap(),
            prefix,
            up: true,
            multicast: !loopback,
            loopback,
        }
    }

    /// A host with loopback, a LAN interface (IPv4 and IPv6) and a second LAN.
    fn host() -> Vec<InterfaceAddr> {
        vec![
            iface("lo", "127.0.0.1", 8, true),
            iface("lo", "::1", 128, true),
            iface("eth0", "192.168.10.5", 24, false),
            iface("eth0", "2001:db8:10::5", 64, false),
            iface("eth1", "10.20.0.1", 16, false),
        ]
    }

    fn nets(wanted: &[&str], listen: &str) -> Vec<String> {
        let wanted: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
        attached_networks(&host(), &wanted, listen.parse().unwrap()).iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn attached_networks_follow_the_interfaces_pnp_listens_on() {
        // Default: every non-loopback interface the group is joined on, both families.
        assert_eq!(nets(&[], "0.0.0.0"), ["192.168.10.0/24", "2001:db8:10::/64", "10.20.0.0/16"]);
        // Named by interface or by address: that interface only.
        assert_eq!(nets(&["eth1"], "0.0.0.0"), ["10.20.0.0/16"]);
        assert_eq!(nets(&["192.168.10.5"], "0.0.0.0"), ["192.168.10.0/24", "2001:db8:10::/64"]);
        // Loopback only when PnP listens there: named, or the SIP listener is bound to it.
        assert_eq!(nets(&["127.0.0.1"], "127.0.0.1"), ["127.0.0.0/8", "::1/128"]);
        assert_eq!(
            nets(&[], "127.0.0.1"),
            ["127.0.0.0/8", "::1/128", "192.168.10.0/24", "2001:db8:10::/64", "10.20.0.0/16"]
        );
        assert_eq!(nets(&["eth1"], "192.168.10.5"), ["192.168.10.0/24", "2001:db8:10::/64", "10.20.0.0/16"]);
        // An address no interface holds, or an interface that is gone: no network at all.
        assert!(nets(&["172.16.0.1", "wlan0"], "0.0.0.0").is_empty());
    }

    #[test]
    fn joins_use_ipv4_addresses_of_the_selected_interfaces() {
        let all = host();
        assert_eq!(join_addresses(&all, &[]), [Ipv4Addr::new(192, 168, 10, 5), Ipv4Addr::new(10, 20, 0, 1)]);
        assert_eq!(join_addresses(&all, &["lo".into()]), [Ipv4Addr::LOCALHOST]);
        assert_eq!(join_addresses(&all, &["172.16.0.1".into()]), [Ipv4Addr::new(172, 16, 0, 1)]);
    }

    #[test]
    fn loopback_is_listed_with_its_netmask_but_not_a_default() {
        let all = list_interfaces().unwrap();
        let lo = all.iter().find(|i| i.addr == IpAddr::V4(Ipv4Addr::LOCALHOST)).expect("127.0.0.1 is configured");
        assert!(!lo.usable_by_default());
        assert_eq!(lo.prefix, 8);
        assert_eq!(interface_addresses(std::slice::from_ref(&lo.name)).unwrap(), vec![Ipv4Addr::LOCALHOST]);
        assert_eq!(interface_addresses(&["127.0.0.1".into()]).unwrap(), vec![Ipv4Addr::LOCALHOST]);
        assert!(!interface_addresses(&[]).unwrap().contains(&Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn the_listener_joins_only_on_the_wildcard_and_the_group_port() {
        let group = SocketAddrV4::new(Ipv4Addr::new(224, 0, 1, 75), 5060);
        assert!(listener_joins("0.0.0.0:5060".parse().unwrap(), group));
        assert!(!listener_joins("10.0.0.1:5060".parse().unwrap(), group));
        assert!(!listener_joins("0.0.0.0:5070".parse().unwrap(), group));
        assert!(!listener_joins("[::]:5060".parse().unwrap(), group));
    }
}
