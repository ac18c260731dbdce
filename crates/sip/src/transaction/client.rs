//! The non-INVITE client transaction (RFC 3261 §17.1.2) run in its caller's task: send,
//! retransmit on Timer E over UDP (T1 doubling up to T2, every T2 once a 1xx arrived), give up
//! on Timer F; the table keeps the completed transaction for Timer K so that retransmitted
//! responses are absorbed. [`super::batch`] runs many transactions from one task by the same
//! rules ([`super::timing`]); the two drivers share only the lower modules.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{sleep_until, Instant as TokioInstant};

use super::inbox::Mailbox;
use super::layer::TransactionLayer;
use super::table::{ClientKey, Waiter};
use super::timing::{OnDeadline, OnResponse, Timing};
use super::{TransactionError, TxEventKind};
use crate::message::Response;
use crate::transport::Target;

/// Completes the transaction in the table when dropped, whichever way it ended.
struct Registration<'a> {
    layer: &'a TransactionLayer,
    key: &'a ClientKey,
    target: &'a Target,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.layer.clients().complete(self.key, self.layer.linger(self.target));
    }
}

/// Runs one transaction; `progress` sees each provisional response.
pub(crate) async fn run(
    layer: &TransactionLayer,
    key: ClientKey,
    data: Bytes,
    target: Target,
    progress: &mut (dyn FnMut(&Response) + Send),
) -> Result<Response, TransactionError> {
    let mailbox = Arc::new(Mailbox::default());
    layer.clients().start(&key, Waiter::Single(mailbox.clone()), &target);
    let _registration = Registration { layer, key: &key, target: &target };

    let event = |kind| layer.emit(&key.branch, &key.method, &target, kind);
    layer.send(&target, data.clone()).await?;
    event(TxEventKind::RequestSent { retransmission: 0 });

    let mut timing = Timing::start(layer.timers(), target.transport.is_reliable(), TokioInstant::now());
    loop {
        tokio::select! {
            resp = mailbox.next() => {
                let resp = resp?;
                event(TxEventKind::ResponseReceived { status: resp.status });
                match timing.on_response(resp.status, TokioInstant::now()) {
                    OnResponse::Final => return Ok(resp),
                    OnResponse::Progress => progress(&resp),
                    OnResponse::Repeat => {}
                }
            }
            _ = sleep_until(timing.deadline()) => match timing.on_deadline(TokioInstant::now()) {
                OnDeadline::Retransmit(n) => {
                    layer.send(&target, data.clone()).await?;
                    event(TxEventKind::RequestSent { retransmission: n });
                }
                OnDeadline::TimedOut { retransmissions, after } => {
                    event(TxEventKind::TimedOut);
                    return Err(TransactionError::Timeout { retransmissions, after });
                }
                OnDeadline::NotYet => {}
            },
        }
    }
}
