//! The client transaction table: maps a branch to whoever waits for its responses (the task of
//! a single transaction, [`super::client`], or a batch, [`super::batch`]), and remembers
//! completed transactions for Timer K. A completed UDP transaction keeps only a 64-bit
//! fingerprint of its key (no strings, channel, task or timer): a fleet-wide check-sync
//! completes thousands of transactions per second, and each holding its key, response channel
//! and a sleeping task for five seconds cost tens of megabytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant as TokioInstant;

use super::inbox::{BatchInbox, Mailbox};
use crate::message::Response;
use crate::transport::{Target, Transport, TransportError};

/// Responses are matched to a client transaction by top Via branch and CSeq method (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: String,
}

/// Who waits for the responses of a running transaction.
#[derive(Clone)]
pub(crate) enum Waiter {
    /// A transaction run by its own task ([`super::client`]).
    Single(Arc<Mailbox>),
    /// A transaction of a batch, known there by `id` ([`super::batch`]).
    Batch(Arc<BatchInbox>, u64),
}

impl Waiter {
    /// Hands a response over.
    pub(crate) fn deliver(&self, resp: Response) {
        match self {
            Waiter::Single(mailbox) => mailbox.deliver(resp),
            Waiter::Batch(inbox, id) => inbox.deliver(*id, resp),
        }
    }

    /// Says that the connection the request went out on failed.
    pub(crate) fn fail(&self, error: TransportError) {
        match self {
            Waiter::Single(mailbox) => mailbox.fail(error),
            Waiter::Batch(inbox, id) => inbox.fail(*id, error),
        }
    }
}

/// What a received response should do.
pub(crate) enum Matched {
    /// Deliver it to the running transaction.
    Running(Waiter),
    /// The transaction completed and waits out Timer K: the response is a retransmission.
    Absorbed,
    /// No transaction has this branch.
    Stray,
}

struct Running {
    method: String,
    waiter: Waiter,
    /// The connection the request went out on, for stream transports: its failure ends the
    /// transaction at once instead of at Timer F.
    connection: Option<(Transport, SocketAddr)>,
}

/// Hashes the keys of [`Table`]: branches we drew ourselves and fingerprints that are already
/// keyed hashes. SipHash (std's default) resists keys chosen to collide, but nobody else chooses
/// these: a received response only looks a branch up, and a lookup's probes end at the table's
/// first gap whatever its hash, so they cannot be made long. A word at a time through a
/// folded multiply (as foldhash and wyhash mix), from a random seed, costs a fraction of
/// SipHash, and a campaign hashes about six times per NOTIFY.
#[derive(Clone, Copy)]
struct OwnKeys(u64);

impl Default for OwnKeys {
    fn default() -> OwnKeys {
        OwnKeys(rand::random::<u64>() | 1)
    }
}

impl BuildHasher for OwnKeys {
    type Hasher = OwnKeyHasher;

    fn build_hasher(&self) -> OwnKeyHasher {
        OwnKeyHasher(self.0)
    }
}

/// The hasher of [`OwnKeys`].
struct OwnKeyHasher(u64);

impl OwnKeyHasher {
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for OwnKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = words.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length goes in with the last word, so that "a" and "a\0" differ.
        self.mix(u64::from_le_bytes(w) ^ ((bytes.len() as u64) << 56));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Default)]
struct Table {
    /// By branch, so that a response is matched without building a key (the method is
    /// compared after).
    running: HashMap<String, Running, OwnKeys>,
    /// Fingerprints of the transactions waiting out Timer K. Two keys sharing one would only
    /// make a stray response count as a retransmission: both are dropped either way.
    completed: HashSet<u64, OwnKeys>,
    /// The same, in completion order; Timer K is the same for all of them, so the front is
    /// always the next to expire.
    lingering: VecDeque<(TokioInstant, u64)>,
    /// Keyed by a random seed, like the tables: a response that is no retransmission can at
    /// worst be dropped as one, which it would be as a stray anyway.
    fingerprint: OwnKeys,
}

impl Table {
    fn print(&self, branch: &str, method: &str) -> u64 {
        self.fingerprint.hash_one((branch, method))
    }
}

/// The client transactions of an endpoint.
#[derive(Default)]
pub(crate) struct ClientTable {
    table: Mutex<Table>,
}

impl ClientTable {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a running transaction to `target`, forgetting those whose Timer K has fired.
    pub(crate) fn start(&self, key: &ClientKey, waiter: Waiter, target: &Target) {
        let now = TokioInstant::now();
        let mut table = self.lock();
        while table.lingering.front().is_some_and(|(expiry, _)| *expiry <= now) {
            if let Some((_, old)) = table.lingering.pop_front() {
                table.completed.remove(&old);
            }
        }
        let connection = target.transport.is_reliable().then_some((target.transport, target.addr));
        table.running.insert(key.branch.clone(), Running { method: key.method.clone(), waiter, connection });
    }

    /// Ends a transaction: forgotten at once, or remembered as completed for `linger` (Timer K).
    pub(crate) fn complete(&self, key: &ClientKey, linger: Duration) {
        let mut table = self.lock();
        if table.running.remove(&key.branch).is_none() || linger.is_zero() {
            return;
        }
        let print = table.print(&key.branch, &key.method);
        table.completed.insert(print);
        table.lingering.push_back((TokioInstant::now() + linger, print));
    }

    /// Where a response with this top Via branch and CSeq method goes.
    pub(crate) fn matching(&self, branch: &str, method: &str) -> Matched {
        let table = self.lock();
        match table.running.get(branch) {
            Some(running) if running.method == method => Matched::Running(running.waiter.clone()),
            _ if table.completed.contains(&table.print(branch, method)) => Matched::Absorbed,
            _ => Matched::Stray,
        }
    }

    /// Ends every running transaction whose request went out on the `transport` connection to
    /// `addr`, which failed with `error` (RFC 3261 §8.1.3.1: a transport error is reported to
    /// the user at once): a TLS 1.3 phone refusing our certificate, or a peer resetting TCP,
    /// would otherwise look like a silent phone until Timer F.
    pub(crate) fn fail_connection(&self, transport: Transport, addr: SocketAddr, error: &TransportError) {
        let waiters: Vec<Waiter> = {
            let table = self.lock();
            let on_it = |r: &&Running| r.connection == Some((transport, addr));
            table.running.values().filter(on_it).map(|r| r.waiter.clone()).collect()
        };
        for waiter in waiters {
            waiter.fail(error.replay());
        }
    }

    /// Transactions running or waiting out Timer K (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        let table = self.lock();
        table.running.len() + table.completed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &str) -> ClientKey {
        ClientKey { branch: b.into(), method: "NOTIFY".into() }
    }

    fn udp() -> Target {
        Target::udp("192.0.2.7:5060".parse().unwrap())
    }

    #[tokio::test]
    async fn a_failed_connection_ends_only_the_transactions_sent_on_it() {
        let table = ClientTable::default();
        let (on_it, elsewhere, over_udp) =
            (Arc::new(Mailbox::default()), Arc::new(Mailbox::default()), Arc::new(Mailbox::default()));
        let addr: SocketAddr = "192.0.2.7:5061".parse().unwrap();
        table.start(&key("a"), Waiter::Single(on_it.clone()), &Target::tls(addr));
        table.start(&key("b"), Waiter::Single(elsewhere.clone()), &Target::tcp(addr));
        table.start(&key("c"), Waiter::Single(over_udp.clone()), &udp());
        let error = TransportError::Tls {
            addr,
            reason: "received fatal alert: CertificateRequired".into(),
            certificate: false,
        };
        table.fail_connection(Transport::Tls, addr, &error);
        let failed = on_it.next().await.unwrap_err().to_string();
        assert!(failed.contains("CertificateRequired"), "{failed}");
        for untouched in [elsewhere, over_udp] {
            untouched.deliver(Response::new(200, "OK"));
            assert_eq!(untouched.next().await.unwrap().status, 200);
        }
    }

    #[tokio::test]
    async fn completed_transactions_absorb_until_timer_k_then_go() {
        let table = ClientTable::default();
        let mailbox = Arc::new(Mailbox::default());
        table.start(&key("a"), Waiter::Single(mailbox.clone()), &udp());
        assert!(matches!(table.matching("a", "NOTIFY"), Matched::Running(_)));
        assert!(matches!(table.matching("a", "OPTIONS"), Matched::Stray), "the method must match too");
        table.complete(&key("a"), Duration::from_millis(20));
        assert!(matches!(table.matching("a", "NOTIFY"), Matched::Absorbed));
        tokio::time::sleep(Duration::from_millis(40)).await;
        // Expired entries are swept when the next transaction starts.
        table.start(&key("b"), Waiter::Single(mailbox), &udp());
        assert!(matches!(table.matching("a", "NOTIFY"), Matched::Stray));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn own_keys_spread_branches_over_the_table() {
        // Branches as `new_branch` draws them, and keys differing in one byte or in length.
        let build = OwnKeys::default();
        let mut hashes = HashSet::new();
        for i in 0..10_000u64 {
            let branch = crate::builder::new_branch();
            assert!(hashes.insert(build.hash_one(&branch)), "{branch}");
            assert!(hashes.insert(build.hash_one(format!("z9hG4bK{i}"))));
        }
        assert_ne!(build.hash_one("a"), build.hash_one("a\0"));
        assert_ne!(build.hash_one(""), build.hash_one("\0"));
        // The low bits (the bucket) and the top seven (hashbrown's tag) both vary.
        let low: HashSet<u64> = hashes.iter().map(|h| h & 0xff).collect();
        let top: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!((low.len(), top.len()), (256, 128));
    }

    #[test]
    fn reliable_transactions_are_forgotten_at_once() {
        let table = ClientTable::default();
        table.start(&key("a"), Waiter::Single(Arc::new(Mailbox::default())), &udp());
        table.complete(&key("a"), Duration::ZERO);
        assert!(matches!(table.matching("a", "NOTIFY"), Matched::Stray));
        assert_eq!(table.len(), 0);
    }
}
