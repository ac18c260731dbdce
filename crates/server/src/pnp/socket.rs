//! The UDP sockets behind SIP: the unicast listener, and where the PnP multicast group is joined.
//!
//! Two sockets bound with address reuse on the same `0.0.0.0:5060` do not share unicast
//! datagrams: the kernel hands each one to a single socket (research `rust-crates.md` §6), so a
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
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::Mutex;

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

/// One IPv4 address of a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface name (`eth0`).
    pub name: String,
    /// Its IPv4 address.
    pub addr: Ipv4Addr,
    /// Up, multicast-capable and not loopback.
    pub usable_by_default: bool,
}

/// The addresses to join on: those named in `wanted` (by interface name or address; an address
/// of no interface is used as written), or every default-usable interface when `wanted` is empty.
pub fn interface_addresses(wanted: &[String]) -> io::Result<Vec<Ipv4Addr>> {
    let all = list_interfaces()?;
    if wanted.is_empty() {
        return Ok(all.iter().filter(|i| i.usable_by_default).map(|i| i.addr).collect());
    }
    let mut out = Vec::new();
    for w in wanted {
        let literal = w.parse::<Ipv4Addr>().ok();
        let matched: Vec<Ipv4Addr> =
            all.iter().filter(|i| i.name == *w || Some(i.addr) == literal).map(|i| i.addr).collect();
        if matched.is_empty() {
            match literal {
                Some(a) => out.push(a),
                None => tracing::warn!(interface = %w, "PnP interface has no IPv4 address (yet)"),
            }
        }
        out.extend(matched);
    }
    out.dedup();
    Ok(out)
}

/// Every IPv4 address of every interface (`getifaddrs`).
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
        // SAFETY: a non-null ifa_addr points to a sockaddr whose family says its real type.
        if entry.ifa_addr.is_null() || i32::from(unsafe { (*entry.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
        let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
        let addr = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(entry.ifa_name) }.to_string_lossy().into_owned();
        let flags = entry.ifa_flags;
        let usable_by_default = flags & libc::IFF_UP as u32 != 0
            && flags & libc::IFF_MULTICAST as u32 != 0
            && flags & libc::IFF_LOOPBACK as u32 == 0;
        out.push(InterfaceAddr { name, addr, usable_by_default });
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_but_not_a_default() {
        let all = list_interfaces().unwrap();
        let lo = all.iter().find(|i| i.addr == Ipv4Addr::LOCALHOST).expect("127.0.0.1 is configured");
        assert!(!lo.usable_by_default);
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
