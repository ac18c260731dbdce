//! Where the receive path leaves the responses of running client transactions: a
//! [`Mailbox`] for a transaction run by its own task, a [`BatchInbox`] for the transactions of
//! a batch. Both drivers and the client table use these; neither driver is needed to name them.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::message::Response;
use crate::transport::TransportError;

/// Where the dispatcher leaves responses for a running transaction: a short queue and a
/// wake-up. Lighter than a channel (tokio's allocates 32 slots up front), which matters at
/// thousands of transactions per second.
#[derive(Default)]
pub(crate) struct Mailbox {
    queue: Mutex<VecDeque<Response>>,
    /// Set when the connection the request went out on failed (a stream transport only).
    failure: Mutex<Option<TransportError>>,
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

    /// Ends the wait with a failed connection.
    pub(crate) fn fail(&self, error: TransportError) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
        self.ready.notify_one();
    }

    /// The next response, waiting for one if none is queued; an error once the connection
    /// failed (responses that came before are handed over first).
    pub(super) async fn next(&self) -> Result<Response, TransportError> {
        loop {
            if let Some(resp) = self.queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
                return Ok(resp);
            }
            if let Some(error) = self.failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
                return Err(error);
            }
            self.ready.notified().await;
        }
    }
}

/// What a batch finds in its inbox.
pub(super) enum Delivery {
    /// A response for the transaction known as the first field.
    Response(u64, Response),
    /// The connection (or the send) of the transaction known as the first field failed.
    SendFailed(u64, TransportError),
}

/// Where the dispatcher leaves the responses of a batch's transactions.
pub(crate) struct BatchInbox {
    queue: Mutex<Vec<Delivery>>,
    pub(super) ready: Notify,
    /// Responses kept waiting at most; beyond, they can only be retransmissions or strays,
    /// since each running transaction needs one.
    capacity: usize,
}

impl BatchInbox {
    pub(super) fn new(max_in_flight: usize) -> BatchInbox {
        BatchInbox { queue: Mutex::new(Vec::new()), ready: Notify::new(), capacity: max_in_flight * 4 + 64 }
    }

    /// Leaves a response for the transaction known in the batch as `id`.
    pub(crate) fn deliver(&self, id: u64, resp: Response) {
        self.push(Delivery::Response(id, resp), false);
    }

    /// Ends the transaction known as `id`: the connection its request went out on failed.
    pub(crate) fn fail(&self, id: u64, error: TransportError) {
        self.push(Delivery::SendFailed(id, error), true);
    }

    pub(super) fn push(&self, delivery: Delivery, always: bool) {
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if !always && queue.len() >= self.capacity {
                return;
            }
            queue.push(delivery);
        }
        // Stores a permit when the batch is busy elsewhere: no wake-up is lost.
        self.ready.notify_one();
    }

    pub(super) fn take(&self, into: &mut Vec<Delivery>) {
        std::mem::swap(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()), into);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_mailbox_loses_no_wake_up_and_bounds_its_queue() {
        let mailbox = Arc::new(Mailbox::default());
        // Delivered before anyone waits: kept, and found at once.
        mailbox.deliver(Response::new(100, "Trying"));
        assert_eq!(mailbox.next().await.unwrap().status, 100);
        // Delivered while the transaction waits: it wakes.
        let waiter = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.next().await.unwrap().status }
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
}
