//! Many client transactions run from one task: what a fleet-wide check-sync needs.
//!
//! [`super::client`] gives each transaction a task, a mailbox and a timer of its own,
//! which is right for one NOTIFY and costly for tens of thousands per second: every
//! transaction then pays a task spawn, a wake-up through the scheduler (often on another
//! thread) and timer-wheel entries. A batch keeps its transactions in a slab, receives every
//! response through one inbox, keeps their deadlines in one heap behind one timer, and sends
//! UDP requests inline. The RFC 3261 rules are the same: both drivers use [`Timing`], and
//! share the client table and inboxes of the lower modules, never each other.
//!
//! Requests come in through a channel and results leave through another, so the caller paces
//! the input and a slow consumer of results holds new requests back, never the running
//! transactions (their retransmissions and timeouts go on).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::inbox::{BatchInbox, Delivery};
use super::layer::TransactionLayer;
use super::request::add_authorization;
use super::table::{ClientKey, Waiter};
use super::timing::{OnDeadline, OnResponse, Timing};
use super::{Credentials, TransactionError, TxEventKind};
use crate::message::{Request, Response};
use crate::transport::Target;

/// One request for [`crate::Endpoint::run_batch`], with a tag the caller gets back with its result.
#[derive(Debug)]
pub struct BatchRequest<T> {
    /// The request, as for [`crate::Endpoint::send_request`].
    pub request: Request,
    /// Where it goes.
    pub target: Target,
    /// Credentials to answer one 401/407 challenge with.
    pub credentials: Option<Credentials>,
    /// Anything the caller needs to recognise the result (a device, an index...).
    pub tag: T,
}

/// How one request of a batch ended.
#[derive(Debug)]
pub struct BatchResult<T> {
    /// The tag of the request.
    pub tag: T,
    /// Its final response, or why there is none.
    pub result: Result<Response, TransactionError>,
}

struct Slot<T> {
    id: u64,
    key: ClientKey,
    target: Target,
    data: Bytes,
    timing: Timing,
    tag: T,
    /// Kept only while one digest retry is still possible.
    retry: Option<(Request, Credentials)>,
}

/// The transactions of one batch.
struct Batch<'a, T> {
    layer: &'a Arc<TransactionLayer>,
    inbox: Arc<BatchInbox>,
    slots: Vec<Option<Slot<T>>>,
    /// Bumped each time a slot is reused, so that a late delivery or deadline for the previous
    /// transaction in it is recognised as stale.
    generations: Vec<u32>,
    free: Vec<usize>,
    /// Deadlines of the running transactions, earliest first. An entry of a transaction that
    /// ended, or whose deadline moved, is dropped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    running: usize,
    done: VecDeque<BatchResult<T>>,
}

/// Runs every request received on `requests`, at most `max_in_flight` at once, sending each
/// one's end to `results`; returns once `requests` is closed and drained and every result was
/// handed over, or as soon as `results` is closed.
pub(crate) async fn run<T: Send>(
    layer: &Arc<TransactionLayer>,
    mut requests: mpsc::Receiver<BatchRequest<T>>,
    results: mpsc::Sender<BatchResult<T>>,
    max_in_flight: usize,
) {
    let max_in_flight = max_in_flight.max(1);
    let mut batch = Batch {
        layer,
        inbox: Arc::new(BatchInbox::new(max_in_flight)),
        slots: Vec::new(),
        generations: Vec::new(),
        free: Vec::new(),
        deadlines: BinaryHeap::new(),
        running: 0,
        done: VecDeque::new(),
    };
    let mut deliveries = Vec::new();
    let mut arrivals = Vec::new();
    let mut input_open = true;
    // Room is made for new requests in bursts of `burst` rather than one at a time: under full
    // load each freed slot would otherwise wake the caller's feeder for one request, and the
    // wake-ups (often another thread unparked) would cost more than the requests themselves.
    let burst = (max_in_flight / 8).clamp(1, 32);
    let timer = sleep_until(Instant::now());
    tokio::pin!(timer);
    let mut armed = None;
    while input_open || batch.running > 0 || !batch.done.is_empty() {
        let next = batch.deadlines.peek().map(|Reverse((at, _))| *at);
        if next != armed {
            if let Some(at) = next {
                timer.as_mut().reset(at);
            }
            armed = next;
        }
        // New requests wait while results are not taken: memory stays bounded.
        let room = max_in_flight.saturating_sub(batch.running.max(batch.done.len()));
        let take_more = input_open && room >= burst;
        tokio::select! {
            _ = batch.inbox.ready.notified() => {
                batch.inbox.take(&mut deliveries);
                for delivery in deliveries.drain(..) {
                    batch.on_delivery(delivery).await;
                }
            }
            _ = &mut timer, if armed.is_some() => {
                armed = None;
                batch.on_deadlines(Instant::now()).await;
            }
            permit = results.reserve(), if !batch.done.is_empty() => match permit {
                Ok(permit) => batch.hand_over(permit, &results),
                Err(_) => break,
            },
            received = requests.recv_many(&mut arrivals, room), if take_more => {
                if received == 0 {
                    input_open = false;
                }
                for request in arrivals.drain(..) {
                    batch.start(request).await;
                }
            }
            // Nobody wants the results any more: stop now rather than at the next result.
            _ = results.closed() => break,
        }
    }
    // Whatever still runs (the results' receiver is gone) leaves the client table now.
    for slot in batch.slots.iter_mut().filter_map(Option::take) {
        layer.clients().complete(&slot.key, layer.linger(&slot.target));
    }
}

impl<T: Send> Batch<'_, T> {
    /// Starts one request's transaction; one that cannot even be sent ends at once.
    async fn start(&mut self, request: BatchRequest<T>) {
        let BatchRequest { mut request, target, credentials, tag } = request;
        let key = match self.layer.prepare_transaction(&mut request, &target) {
            Ok(key) => key,
            Err(e) => return self.done.push_back(BatchResult { tag, result: Err(e) }),
        };
        let data = Bytes::from(request.to_bytes());
        let index = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.generations.push(0);
            self.slots.len() - 1
        });
        let id = (u64::from(self.generations[index]) << 32) | index as u64;
        self.layer.clients().start(&key, Waiter::Batch(self.inbox.clone(), id), &target);
        let timing = Timing::start(self.layer.timers(), target.transport.is_reliable(), Instant::now());
        self.deadlines.push(Reverse((timing.deadline(), id)));
        let retry = credentials.map(|c| (request, c));
        self.slots[index] = Some(Slot { id, key, target, data, timing, tag, retry });
        self.running += 1;
        self.send(index, 0).await;
    }

    /// Sends (or resends) the request of the transaction in slot `index`. UDP is sent inline;
    /// a stream may first have to connect, which must not hold up the whole batch.
    async fn send(&mut self, index: usize, retransmission: u32) {
        let Some(slot) = self.slots[index].as_ref() else { return };
        let event = TxEventKind::RequestSent { retransmission };
        if slot.target.transport.is_reliable() {
            let (layer, inbox) = (self.layer.clone(), self.inbox.clone());
            let (id, target, data, key) = (slot.id, slot.target.clone(), slot.data.clone(), slot.key.clone());
            tokio::spawn(async move {
                match layer.send(&target, data).await {
                    Ok(()) => layer.emit(&key.branch, &key.method, &target, event),
                    Err(e) => inbox.push(Delivery::SendFailed(id, e), true),
                }
            });
            return;
        }
        match self.layer.send(&slot.target, slot.data.clone()).await {
            Ok(()) => self.layer.emit(&slot.key.branch, &slot.key.method, &slot.target, event),
            Err(e) => self.finish(index, Err(e.into())),
        }
    }

    /// The slot of the transaction known as `id`, if it still runs.
    fn index_of(&self, id: u64) -> Option<usize> {
        let index = (id & u64::from(u32::MAX)) as usize;
        self.slots.get(index)?.as_ref().filter(|slot| slot.id == id).map(|_| index)
    }

    async fn on_delivery(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::SendFailed(id, e) => {
                if let Some(index) = self.index_of(id) {
                    self.finish(index, Err(e.into()));
                }
            }
            Delivery::Response(id, resp) => {
                let Some(index) = self.index_of(id) else { return };
                let Some(slot) = self.slots[index].as_mut() else { return };
                self.layer.emit(
                    &slot.key.branch,
                    &slot.key.method,
                    &slot.target,
                    TxEventKind::ResponseReceived { status: resp.status },
                );
                match slot.timing.on_response(resp.status, Instant::now()) {
                    OnResponse::Final => self.on_final(index, resp).await,
                    OnResponse::Progress | OnResponse::Repeat => {
                        self.deadlines.push(Reverse((slot.timing.deadline(), id)));
                    }
                }
            }
        }
    }

    /// A final response ends the transaction, unless it is a challenge that the request's
    /// credentials can answer: then the request goes again, once (RFC 3261 §22.2).
    async fn on_final(&mut self, index: usize, resp: Response) {
        let retry = match self.slots[index].as_mut() {
            Some(slot) if matches!(resp.status, 401 | 407) => slot.retry.take(),
            _ => None,
        };
        let Some((mut request, credentials)) = retry else { return self.finish(index, Ok(resp)) };
        match add_authorization(&mut request, &resp, &credentials) {
            Ok(true) => {
                let Some(slot) = self.end(index) else { return };
                let retry = BatchRequest { request, target: slot.target, credentials: None, tag: slot.tag };
                self.start(retry).await;
            }
            Ok(false) => self.finish(index, Ok(resp)),
            Err(e) => self.finish(index, Err(e)),
        }
    }

    /// Handles every deadline due at `now`.
    async fn on_deadlines(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                return;
            }
            self.deadlines.pop();
            let Some(index) = self.index_of(id) else { continue };
            let Some(slot) = self.slots[index].as_mut() else { continue };
            match slot.timing.on_deadline(now) {
                OnDeadline::Retransmit(n) => {
                    self.deadlines.push(Reverse((slot.timing.deadline(), id)));
                    self.send(index, n).await;
                }
                OnDeadline::TimedOut { retransmissions, after } => {
                    self.layer.emit(&slot.key.branch, &slot.key.method, &slot.target, TxEventKind::TimedOut);
                    self.finish(index, Err(TransactionError::Timeout { retransmissions, after }));
                }
                OnDeadline::NotYet => {}
            }
        }
    }

    /// Hands over every finished result the channel has room for, the first through `permit`:
    /// the consumer then wakes once for many.
    fn hand_over(&mut self, permit: mpsc::Permit<'_, BatchResult<T>>, results: &mpsc::Sender<BatchResult<T>>) {
        let Some(first) = self.done.pop_front() else { return };
        permit.send(first);
        while !self.done.is_empty() {
            let Ok(permit) = results.try_reserve() else { return };
            if let Some(result) = self.done.pop_front() {
                permit.send(result);
            }
        }
    }

    /// Ends the transaction in slot `index` with `result`.
    fn finish(&mut self, index: usize, result: Result<Response, TransactionError>) {
        if let Some(slot) = self.end(index) {
            self.done.push_back(BatchResult { tag: slot.tag, result });
        }
    }

    /// Frees slot `index` and completes its transaction in the client table (Timer K).
    fn end(&mut self, index: usize) -> Option<Slot<T>> {
        let slot = self.slots.get_mut(index)?.take()?;
        self.layer.clients().complete(&slot.key, self.layer.linger(&slot.target));
        self.generations[index] = self.generations[index].wrapping_add(1);
        self.free.push(index);
        self.running -= 1;
        Some(slot)
    }
}
