//! What one host may cost the endpoint: a request rate per source address, checked before a
//! received request is even parsed, and the bounds of the server-transaction table
//! ([`RequestLimits`]).
//!
//! A UDP request costs its sender one datagram, and a server transaction is kept for Timer J
//! (32 s) after it is answered, so without a bound a single host sending OPTIONS as fast as it
//! can grows the table by hundreds of thousands of entries. Each source address (an IPv6 source
//! by its /64, which one host can fill at will) has a token bucket of `burst` requests refilled
//! at `per_source_per_sec`; a request finding it empty is dropped unanswered, since answering
//! would turn the flood into a reflected one. Responses are never limited: the answers to a
//! campaign all come from one outbound proxy when there is one, and a response that matches no
//! transaction costs nothing to keep.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bounds on what received requests may cost ([`crate::EndpointConfig::requests`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Requests per second one source address may send (an IPv6 source counts by its /64);
    /// 0 for no limit. Default 100.
    pub per_source_per_sec: u32,
    /// Requests one source may send at once before its rate applies. Default 200.
    pub burst: u32,
    /// Sources tracked at once; when that many sent requests within the last few seconds, a new
    /// source is admitted unlimited (the transaction table stays bounded). Default 16,384.
    pub max_sources: usize,
    /// Server transactions remembered at once; past it the oldest is forgotten first (a
    /// retransmission of its request is then handled as new). Default 8,192.
    pub max_server_transactions: usize,
    /// Bytes of responses kept for retransmitted requests, all transactions together; past it
    /// the oldest transactions are forgotten first. Default 4 MiB.
    pub max_kept_response_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            per_source_per_sec: 100,
            burst: 200,
            max_sources: 16_384,
            max_server_transactions: 8_192,
            max_kept_response_bytes: 4 << 20,
        }
    }
}

/// How often, at most, a full source table is swept for sources whose bucket is full again.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The per-source token buckets.
pub(crate) struct SourceLimiter {
    limits: RequestLimits,
    state: Mutex<Sources>,
}

struct Sources {
    buckets: HashMap<IpAddr, Bucket>,
    pruned: Option<Instant>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl SourceLimiter {
    pub(crate) fn new(limits: RequestLimits) -> SourceLimiter {
        SourceLimiter { limits, state: Mutex::new(Sources { buckets: HashMap::new(), pruned: None }) }
    }

    /// The configured limits.
    pub(crate) fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// Takes one request from `source`'s bucket; false when it is empty.
    pub(crate) fn admit(&self, source: IpAddr, now: Instant) -> bool {
        let rate = f64::from(self.limits.per_source_per_sec);
        if rate == 0.0 {
            return true;
        }
        let burst = f64::from(self.limits.burst.max(1));
        let key = source_key(source);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.buckets.contains_key(&key) && s.buckets.len() >= self.limits.max_sources && !s.prune(now, rate, burst) {
            return true;
        }
        let bucket = s.buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = bucket.refilled(now, rate, burst);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).buckets.len()
    }
}

impl Sources {
    /// Forgets the sources whose bucket has refilled (a fresh bucket is the same); at most once
    /// per [`PRUNE_EVERY`], so that a table full of active sources costs no scan per packet.
    /// True when room was made.
    fn prune(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        if self.pruned.is_some_and(|at| now.saturating_duration_since(at) < PRUNE_EVERY) {
            return false;
        }
        self.pruned = Some(now);
        let before = self.buckets.len();
        self.buckets.retain(|_, b| b.refilled(now, rate, burst) < burst);
        self.buckets.len() < before
    }
}

impl Bucket {
    fn refilled(&self, now: Instant, rate: f64, burst: f64) -> f64 {
        (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(burst)
    }
}

/// The address a source is counted by: IPv4 as is, IPv6 by its /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// True when a received message is a request (or garbage), not a response: a response's start
/// line begins with the SIP version (RFC 3261 §7.2), after any leading CRLFs (§7.5).
pub(crate) fn looks_like_request(data: &[u8]) -> bool {
    let start = data.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(data.len());
    !data.get(start..start + 4).is_some_and(|v| v.eq_ignore_ascii_case(b"SIP/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, burst: u32, max_sources: usize) -> SourceLimiter {
        SourceLimiter::new(RequestLimits { per_source_per_sec: rate, burst, max_sources, ..RequestLimits::default() })
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let l = limiter(10, 20, 100);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert_eq!((0..100).filter(|_| l.admit(a, t0)).count(), 20);
        assert!(l.admit(b, t0), "another source has its own bucket");
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| l.admit(a, t1)).count(), 5, "half a second refills 5");
        assert!(limiter(0, 1, 1).admit(a, t0), "0 means unlimited");
    }

    #[test]
    fn ipv6_counts_by_prefix_and_the_table_is_bounded() {
        let l = limiter(1, 1, 2);
        let t0 = Instant::now();
        assert!(l.admit("2001:db8::1".parse().unwrap(), t0));
        assert!(!l.admit("2001:db8::2".parse().unwrap(), t0), "same /64");
        assert!(l.admit("2001:db8:0:1::1".parse().unwrap(), t0));
        assert!(l.admit("198.51.100.7".parse().unwrap(), t0), "table full of active sources: admitted");
        assert_eq!(l.tracked(), 2);
        let later = t0 + Duration::from_secs(5);
        assert!(l.admit("198.51.100.7".parse().unwrap(), later));
        assert_eq!(l.tracked(), 1, "idle sources were pruned to make room");
    }

    #[test]
    fn responses_are_told_from_requests() {
        assert!(!looks_like_request(b"SIP/2.0 200 OK\r\n"));
        assert!(!looks_like_request(b"\r\nsip/2.0 200 OK\r\n"));
        assert!(looks_like_request(b"OPTIONS sip:x SIP/2.0\r\n"));
        assert!(looks_like_request(b"\x00\x01"));
        assert!(looks_like_request(b""));
    }
}
