//! Which local address the OS routes a destination from, cached.
//!
//! An endpoint bound to `0.0.0.0` must still put a real address in Via sent-by and Contact.
//! Asking the kernel means a throwaway socket per question (socket, connect, getsockname,
//! close); a fleet check-sync asks it for every NOTIFY, mostly about the same few next hops
//! (one outbound proxy, or one subnet of phones), so answers are kept for a short while.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a route answer is trusted (interfaces and routes rarely change faster).
const TTL: Duration = Duration::from_secs(30);
/// Destinations remembered at most; beyond that the oldest answers are dropped.
const CAPACITY: usize = 4096;

/// Cached answers to "which source address reaches this destination".
///
/// ```
/// let cache = sipprov_sip::route::RouteCache::default();
/// let dest = "127.0.0.1".parse().unwrap();
/// let any = "0.0.0.0".parse().unwrap();
/// assert_eq!(cache.source_for(any, dest), Some("127.0.0.1".parse().unwrap()));
/// ```
#[derive(Default)]
pub struct RouteCache {
    answers: Mutex<HashMap<IpAddr, (IpAddr, Instant)>>,
}

impl RouteCache {
    /// The source address for `dest` from a socket bound to the unspecified address `any`
    /// (`0.0.0.0` or `::`); `None` when the OS has no route.
    pub fn source_for(&self, any: IpAddr, dest: IpAddr) -> Option<IpAddr> {
        let now = Instant::now();
        if let Some((source, at)) = self.lock().get(&dest) {
            if now.duration_since(*at) < TTL {
                return Some(*source);
            }
        }
        let source = probe(any, dest)?;
        let mut answers = self.lock();
        if answers.len() >= CAPACITY {
            answers.retain(|_, (_, at)| now.duration_since(*at) < TTL);
            if answers.len() >= CAPACITY {
                answers.clear();
            }
        }
        answers.insert(dest, (source, now));
        Some(source)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (IpAddr, Instant)>> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Asks the kernel: a connected UDP socket sends nothing but learns its source address.
fn probe(any: IpAddr, dest: IpAddr) -> Option<IpAddr> {
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    // The port is irrelevant to routing; 9 (discard) is never contacted.
    socket.connect(SocketAddr::new(dest, 9)).ok()?;
    Some(socket.local_addr().ok()?.ip())
}
