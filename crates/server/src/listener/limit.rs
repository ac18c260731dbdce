//! Connection caps: per source and in all, and the descriptor budget they come out of.
//!
//! Every inbound connection costs a file descriptor until it closes. A [`Limiter`] (one per
//! listener) admits a connection only while its source (an IPv4 address, or an IPv6 /64, what
//! one host can easily spread over) holds fewer than its per-source cap on that listener, and
//! while the [`Budget`] it shares with the other phone-facing listeners has room. The admin API
//! has a budget of its own, so phones, or a flood posing as phones, can never take its share.
//! The budgets are sized from the process's descriptor limit ([`plan`]), which is first raised
//! to its hard maximum ([`raise_descriptor_limit`]), with a reserve kept back for the database,
//! log and template files, UDP sockets and outbound SIP connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::LimitsConfig;
use crate::metrics::Metrics;

/// Refusals are logged at most this often per listener, with how many there were meanwhile.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Descriptors never given to connections: at least this many, or an eighth of the limit.
const MIN_RESERVE: u64 = 256;

/// Connections open at once across the listeners that share it.
pub struct Budget {
    open: AtomicUsize,
    cap: usize,
}

impl Budget {
    /// A budget of `cap` connections.
    pub fn new(cap: usize) -> Arc<Budget> {
        Arc::new(Budget { open: AtomicUsize::new(0), cap })
    }

    /// Takes one slot, unless all are taken.
    fn take(&self) -> bool {
        self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.cap).then_some(n + 1)).is_ok()
    }

    fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The most connections it admits.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its source already holds `connections_per_source` on this listener.
    PerSource,
    /// The shared budget is spent.
    Global,
}

/// The admission policy of one listener.
pub struct Limiter {
    listener: &'static str,
    budget: Arc<Budget>,
    per_source_cap: u32,
    /// Open connections per source; an entry lives only while its source has one open, so the
    /// table never holds more entries than the budget has slots.
    per_source: Mutex<HashMap<IpAddr, u32>>,
    metrics: Arc<Metrics>,
    log: Mutex<RefusalLog>,
}

/// What the rate-limited refusal warning has to say next time it speaks.
struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

/// An admitted connection's share: given back when dropped, that is when the connection closes.
pub struct Permit {
    limiter: Arc<Limiter>,
    source: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut table = self.limiter.table();
        if let Some(n) = table.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.source);
            }
        }
        drop(table);
        self.limiter.budget.give_back();
        self.limiter.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Limiter {
    /// A limiter for `listener` (named in logs) drawing on `budget`.
    pub fn new(
        listener: &'static str,
        budget: Arc<Budget>,
        per_source_cap: u32,
        metrics: Arc<Metrics>,
    ) -> Arc<Limiter> {
        Arc::new(Limiter {
            listener,
            budget,
            per_source_cap: per_source_cap.max(1),
            per_source: Mutex::new(HashMap::new()),
            metrics,
            log: Mutex::new(RefusalLog { last: None, suppressed: 0 }),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.per_source.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A permit for a connection from `peer`, or why not (counted in the metrics, and logged
    /// at most every `REFUSAL_LOG_EVERY`).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Permit, Refused> {
        let source = source_key(peer);
        let outcome = self.try_admit(source);
        if let Err(why) = outcome {
            self.refused(source, why);
        }
        outcome.map(|()| Permit { limiter: self.clone(), source })
    }

    fn try_admit(&self, source: IpAddr) -> Result<(), Refused> {
        let mut table = self.table();
        let held = table.get(&source).copied().unwrap_or(0);
        if held >= self.per_source_cap {
            return Err(Refused::PerSource);
        }
        if !self.budget.take() {
            return Err(Refused::Global);
        }
        table.insert(source, held + 1);
        Metrics::inc(&self.metrics.connections_open);
        Ok(())
    }

    fn refused(&self, source: IpAddr, why: Refused) {
        Metrics::inc(match why {
            Refused::PerSource => &self.metrics.connections_refused_per_source,
            Refused::Global => &self.metrics.connections_refused_global,
        });
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.suppressed += 1;
        if log.last.is_some_and(|t| t.elapsed() < REFUSAL_LOG_EVERY) {
            return;
        }
        let refused = std::mem::take(&mut log.suppressed);
        log.last = Some(Instant::now());
        drop(log);
        let (cap, reason) = match why {
            Refused::PerSource => (self.per_source_cap as usize, "limits.connections_per_source"),
            Refused::Global => (self.budget.cap, "the connection budget (limits.max_connections)"),
        };
        tracing::warn!(
            listener = self.listener,
            %source,
            cap,
            refused,
            "connections refused: {reason} reached (logged at most every {}s; `refused` counts since the last line)",
            REFUSAL_LOG_EVERY.as_secs()
        );
    }
}

/// What the per-source cap counts by: an IPv4 address, an IPv6 /64 (an IPv4-mapped IPv6 address
/// counts as its IPv4 address).
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// The connection budgets, from the configuration and the descriptor limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Connections the phone-facing listeners (HTTP, HTTPS, SIP TCP and TLS) hold at most, together.
    pub phone: usize,
    /// Connections the admin API holds at most, apart from the phones'.
    pub api: usize,
}

/// Sizes the budgets for a soft descriptor limit of `nofile`: the admin API gets
/// `limits.api_connections`; the phones get `limits.max_connections`, or when that is 0 or
/// more than the descriptors allow, what is left after the API and a reserve of
/// max(256, nofile/8) descriptors for everything that is not an inbound connection.
pub fn plan(limits: &LimitsConfig, nofile: u64) -> Plan {
    let api = limits.api_connections.max(1) as u64;
    let reserve = MIN_RESERVE.max(nofile / 8);
    let available = nofile.saturating_sub(reserve + api).max(1);
    let phone = match limits.max_connections as u64 {
        0 => available,
        asked if asked <= available => asked,
        asked => {
            tracing::warn!(
                asked,
                descriptors = nofile,
                using = available,
                "limits.max_connections is more than the descriptor limit allows; using less"
            );
            available
        }
    };
    Plan { phone: usize::try_from(phone).unwrap_or(usize::MAX), api: usize::try_from(api).unwrap_or(usize::MAX) }
}

/// Raises the soft limit on open files to the hard limit, so the budgets can be as large as the
/// system allows (systemd and most shells start services with a soft limit of 1024). Returns the
/// soft limit in force afterwards.
pub fn raise_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the descriptor limit; assuming 1024");
        return 1024;
    }
    // Linux refuses an infinite RLIMIT_NOFILE; its ceiling is fs.nr_open (1048576 by default).
    let target = if lim.rlim_max == libc::RLIM_INFINITY { nr_open() } else { lim.rlim_max };
    if lim.rlim_cur >= target {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit { rlim_cur: target, rlim_max: lim.rlim_max };
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard one
    // needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, soft = lim.rlim_cur, hard = lim.rlim_max, "cannot raise the descriptor limit");
        return lim.rlim_cur;
    }
    tracing::info!(from = lim.rlim_cur, to = target, "descriptor limit raised to the hard limit");
    target
}

/// The kernel's ceiling for RLIMIT_NOFILE (`fs.nr_open`), for a hard limit of "unlimited".
fn nr_open() -> libc::rlim_t {
    std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(limiter: &Limiter, ip: IpAddr) -> u32 {
        limiter.table().get(&source_key(ip)).copied().unwrap_or(0)
    }

    fn limiter(per_source: u32, budget: &Arc<Budget>) -> Arc<Limiter> {
        Limiter::new("test", budget.clone(), per_source, Arc::new(Metrics::default()))
    }

    #[test]
    fn per_source_and_global_caps_and_release() {
        let budget = Budget::new(3);
        let l = limiter(2, &budget);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = l.admit(a).unwrap();
        let _p2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).err(), Some(Refused::PerSource));
        let _p3 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).err(), Some(Refused::Global), "the budget is shared and spent");
        drop(p1);
        assert_eq!(held(&l, a), 1);
        assert!(l.admit(b).is_ok(), "a closed connection gives its slot back");
        assert_eq!(l.metrics.connections_refused_per_source.load(Ordering::Relaxed), 1);
        assert_eq!(l.metrics.connections_refused_global.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_source_that_closes_everything_leaves_no_entry() {
        let budget = Budget::new(10);
        let l = limiter(5, &budget);
        let permits: Vec<_> = (0..5).map(|_| l.admit("192.0.2.9".parse().unwrap()).unwrap()).collect();
        drop(permits);
        assert!(l.table().is_empty());
        assert_eq!(budget.open(), 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let k = |s: &str| source_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:bbbb::2"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.1"), k("192.0.2.1"));
    }

    #[test]
    fn plan_keeps_a_reserve_and_the_api_share() {
        let cfg = LimitsConfig::default();
        let p = plan(&cfg, 20_000);
        assert_eq!(p.api, cfg.api_connections as usize);
        assert_eq!(p.phone, 20_000 - 2_500 - p.api);
        let small = plan(&cfg, 1024);
        assert_eq!(small.phone, 1024 - 256 - small.api);
        let asked = LimitsConfig { max_connections: 100, ..LimitsConfig::default() };
        assert_eq!(plan(&asked, 20_000).phone, 100);
        let too_many = LimitsConfig { max_connections: 1_000_000, ..LimitsConfig::default() };
        assert_eq!(plan(&too_many, 20_000).phone, p.phone, "clamped to what the descriptors allow");
    }
}
