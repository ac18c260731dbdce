//! The non-INVITE client transaction (RFC 3261 §17.1.2): send, retransmit on Timer E over UDP
//! (T1 doubling up to T2, every T2 once a 1xx arrived), give up on Timer F, and keep the
//! transaction around for Timer K so that retransmitted responses are absorbed.
//!
//! The [`ClientTable`] maps a branch to its running transaction. A completed UDP transaction
//! keeps only a 64-bit fingerprint of its key for Timer K (no strings, channel, task or timer):
//! a fleet-wide check-sync completes thousands of transactions per second, and each holding
//! its key, response channel and a sleeping task for five seconds cost tens of megabytes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::{sleep_until, Instant as TokioInstant};

use super::{TransactionError, TxEventKind};
use crate::endpoint::Inner;
use crate::message::Response;
use crate::transport::Target;

/// Responses are matched to a client transaction by top Via branch and CSeq method (§17.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub branch: String,
    pub method: String,
}

/// Where the dispatcher leaves responses for a running transaction: a short queue and a
/// wake-up. Lighter than a channel (tokio's allocates 32 slots up front), which matters at
/// thousands of transactions per second.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: Mutex<VecDeque<Response>>,
    ready: Notify,
}

impl Mailbox {
    /// Responses kept waiting at most: a final response ends the transaction, so more can
    /// only be retransmissions, which may be dropped.
    const CAPACITY: usize = 4;

    /// Leaves a response for the transaction.
    pub(crate) fn deliver(&self, resp: Response) {
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.len() >= Self::CAPACITY {
                return;
            }
            queue.push_back(resp);
        }
        // Stores a permit when the transaction is not waiting yet: no wake-up is lost.
        self.ready.notify_one();
    }

    /// The next response, waiting for one if none is queued.
    async fn next(&self) -> Response {
        loop {
            if let Some(resp) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return resp;
            }
            self.ready.notified().await;
        }
    }
}

/// What a received response should do.
pub(crate) enum Matched {
    /// Deliver it to the running transaction.
    Running(Arc<Mailbox>),
    /// The transaction completed and waits out Timer K: the response is a retransmission.
    Absorbed,
    /// No transaction has this branch.
    Stray,
}

#[derive(Default)]
struct Table {
    running: HashMap<ClientKey, Arc<Mailbox>>,
    /// Fingerprints of the transactions waiting out Timer K. Two keys sharing one would only
    /// make a stray response count as a retransmission: both are dropped either way.
    completed: HashSet<u64>,
    /// The same, in completion order; Timer K is the same for all of them, so the front is
    /// always the next to expire.
    lingering: VecDeque<(TokioInstant, u64)>,
    fingerprint: RandomState,
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

    /// Registers a running transaction, forgetting those whose Timer K has fired.
    fn start(&self, key: ClientKey, mailbox: Arc<Mailbox>) {
        let now = TokioInstant::now();
        let mut table = self.lock();
        while table.lingering.front().is_some_and(|(expiry, _)| *expiry <= now) {
            if let Some((_, old)) = table.lingering.pop_front() {
                table.completed.remove(&old);
            }
        }
        table.running.insert(key, mailbox);
    }

    /// Ends a transaction: forgotten at once, or remembered as completed for `linger` (Timer K).
    fn complete(&self, key: &ClientKey, linger: Duration) {
        let mut table = self.lock();
        if table.running.remove(key).is_none() || linger.is_zero() {
            return;
        }
        let print = table.fingerprint.hash_one(key);
        table.completed.insert(print);
        table.lingering.push_back((TokioInstant::now() + linger, print));
    }

    /// Where a response with this key goes.
    pub(crate) fn matching(&self, key: &ClientKey) -> Matched {
        let table = self.lock();
        match table.running.get(key) {
            Some(mailbox) => Matched::Running(mailbox.clone()),
            None if table.completed.contains(&table.fingerprint.hash_one(key)) => Matched::Absorbed,
            None => Matched::Stray,
        }
    }

    /// Transactions running or waiting out Timer K (for tests and metrics).
    pub(crate) fn len(&self) -> usize {
        let table = self.lock();
        table.running.len() + table.completed.len()
    }
}

/// Completes the transaction in the table when dropped, whichever way it ended.
struct Registration<'a> {
    inner: &'a Inner,
    key: &'a ClientKey,
    linger: Duration,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.inner.clients.complete(self.key, self.linger);
    }
}

/// Runs one transaction; `progress` sees each provisional response.
pub(crate) async fn run(
    inner: &Arc<Inner>,
    key: ClientKey,
    data: Bytes,
    target: Target,
    progress: &mut (dyn FnMut(&Response) + Send),
) -> Result<Response, TransactionError> {
    let timers = inner.timers;
    let reliable = target.transport.is_reliable();
    let mailbox = Arc::new(Mailbox::default());
    inner.clients.start(key.clone(), mailbox.clone());
    let linger = if reliable { Duration::ZERO } else { timers.t4 };
    let _registration = Registration { inner, key: &key, linger };

    let event = |kind| inner.emit(&key.branch, &key.method, &target, kind);
    inner.transports.send(&target, data.clone()).await?;
    event(TxEventKind::RequestSent { retransmission: 0 });

    let start = TokioInstant::now();
    let timer_f = start + timers.timer_f();
    let mut retransmissions = 0u32;
    let mut proceeding = false;
    let mut last_provisional = None;
    // Timer E is not used on reliable transports (§17.1.2.2).
    let mut next_send = (!reliable).then(|| start + timers.timer_e(1));
    loop {
        tokio::select! {
            resp = mailbox.next() => {
                event(TxEventKind::ResponseReceived { status: resp.status });
                if !resp.is_provisional() {
                    return Ok(resp);
                }
                // A retransmitted request makes the server resend its 1xx: report each status once.
                if last_provisional != Some(resp.status) {
                    last_provisional = Some(resp.status);
                    progress(&resp);
                }
                if !proceeding && !reliable {
                    proceeding = true;
                    next_send = Some(TokioInstant::now() + timers.t2);
                }
            }
            _ = sleep_until(next_send.unwrap_or(timer_f)), if next_send.is_some() => {
                let Some(due) = next_send else { continue };
                inner.transports.send(&target, data.clone()).await?;
                retransmissions += 1;
                event(TxEventKind::RequestSent { retransmission: retransmissions });
                // Scheduled from the previous due time so that delays do not accumulate.
                let interval = if proceeding { timers.t2 } else { timers.timer_e(retransmissions + 1) };
                next_send = Some(due + interval);
            }
            _ = sleep_until(timer_f) => {
                event(TxEventKind::TimedOut);
                return Err(TransactionError::Timeout { retransmissions, after: timers.timer_f() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &str) -> ClientKey {
        ClientKey { branch: b.into(), method: "NOTIFY".into() }
    }

    #[tokio::test]
    async fn completed_transactions_absorb_until_timer_k_then_go() {
        let table = ClientTable::default();
        let mailbox = Arc::new(Mailbox::default());
        table.start(key("a"), mailbox.clone());
        assert!(matches!(table.matching(&key("a")), Matched::Running(_)));
        table.complete(&key("a"), Duration::from_millis(20));
        assert!(matches!(table.matching(&key("a")), Matched::Absorbed));
        tokio::time::sleep(Duration::from_millis(40)).await;
        // Expired entries are swept when the next transaction starts.
        table.start(key("b"), mailbox);
        assert!(matches!(table.matching(&key("a")), Matched::Stray));
        assert_eq!(table.len(), 1);
    }

    #[tokio::test]
    async fn the_mailbox_loses_no_wake_up_and_bounds_its_queue() {
        let mailbox = Arc::new(Mailbox::default());
        // Delivered before anyone waits: kept, and found at once.
        mailbox.deliver(Response::new(100, "Trying"));
        assert_eq!(mailbox.next().await.status, 100);
        // Delivered while the transaction waits: it wakes.
        let waiter = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.next().await.status }
        });
        tokio::task::yield_now().await;
        mailbox.deliver(Response::new(200, "OK"));
        assert_eq!(waiter.await.unwrap(), 200);
        // A flood of retransmitted responses is capped.
        for _ in 0..10 {
            mailbox.deliver(Response::new(200, "OK"));
        }
        assert_eq!(mailbox.queue.lock().unwrap().len(), Mailbox::CAPACITY);
    }

    #[test]
    fn reliable_transactions_are_forgotten_at_once() {
        let table = ClientTable::default();
        table.start(key("a"), Arc::new(Mailbox::default()));
        table.complete(&key("a"), Duration::ZERO);
        assert!(matches!(table.matching(&key("a")), Matched::Stray));
        assert_eq!(table.len(), 0);
    }
}
