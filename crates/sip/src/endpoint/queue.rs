//! The queue of received requests waiting for the application, bounded by what they hold in
//! memory rather than by their number.
//!
//! A count bound has to be sized for the largest request a peer may send (64 KiB by default),
//! so it is either a large memory bound or a short queue: 1,024 requests were 64 MiB at worst,
//! yet a site of phones booting at once (SUBSCRIBEs of about 600 bytes) filled them in a tenth
//! of a second whenever the application paused, and everything after was refused. A byte
//! budget holds many small requests and few large ones, for the same worst case. Past it a
//! request is refused at once (the endpoint answers 503, RFC 3261 §21.5.4), as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::IncomingRequest;

/// What one queued request is counted as, besides its bytes on the wire: the parsed copy's
/// header list and strings, the addresses and keys kept with it, and the queue entry.
const PER_REQUEST: usize = 1024;

/// What a request is counted as against the budget, for `wire_len` bytes received.
pub(super) fn cost(wire_len: usize) -> usize {
    wire_len.saturating_mul(2).saturating_add(PER_REQUEST)
}

/// Why a request was not queued; the request is handed back to be answered (boxed: only a
/// refusal pays for moving it).
pub(super) enum Refused {
    /// The budget is spent: answer 503.
    Full(Box<IncomingRequest>),
    /// The application dropped its receiver: nobody will answer.
    Closed(Box<IncomingRequest>),
}

/// The receive path's end of the queue.
pub(super) struct QueueSender {
    tx: mpsc::UnboundedSender<(IncomingRequest, usize)>,
    held: Arc<AtomicUsize>,
    budget: usize,
}

/// Received requests, in arrival order, for the application to answer
/// (from [`super::Endpoint::incoming`]).
#[derive(Debug)]
pub struct IncomingRequests {
    rx: mpsc::UnboundedReceiver<(IncomingRequest, usize)>,
    held: Arc<AtomicUsize>,
}

/// A queue that holds at most `budget` bytes of requests (as counted by [`cost`]); one request
/// is always let in when the queue is empty, so a budget under one request's cost still
/// passes requests one at a time.
pub(super) fn queue(budget: usize) -> (QueueSender, IncomingRequests) {
    let (tx, rx) = mpsc::unbounded_channel();
    let held = Arc::new(AtomicUsize::new(0));
    (QueueSender { tx, held: held.clone(), budget }, IncomingRequests { rx, held })
}

impl QueueSender {
    /// Queues `request`, counted as `cost` bytes, unless that would pass the budget.
    pub(super) fn try_send(&self, request: IncomingRequest, cost: usize) -> Result<(), Refused> {
        let reserved = self.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            (held == 0 || held.saturating_add(cost) <= self.budget).then(|| held.saturating_add(cost))
        });
        if reserved.is_err() {
            return Err(Refused::Full(Box::new(request)));
        }
        self.tx.send((request, cost)).map_err(|e| {
            self.held.fetch_sub(cost, Ordering::AcqRel);
            Refused::Closed(Box::new(e.0 .0))
        })
    }
}

impl IncomingRequests {
    /// The next request; `None` once the endpoint is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<IncomingRequest> {
        let (request, cost) = self.rx.recv().await?;
        self.held.fetch_sub(cost, Ordering::AcqRel);
        Some(request)
    }

    /// Bytes the waiting requests are counted as now (see [`super::EndpointConfig::incoming_bytes`]).
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}
