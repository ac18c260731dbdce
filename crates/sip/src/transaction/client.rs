//! The non-INVITE client transaction (RFC 3261 §17.1.2): send, retransmit on Timer E over UDP
//! (T1 doubling up to T2, every T2 once a 1xx arrived), give up on Timer F, and keep the
//! transaction around for Timer K so that retransmitted responses are absorbed.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
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

/// Removes the transaction from the endpoint table when dropped, after Timer K on UDP.
struct Registration {
    inner: Arc<Inner>,
    key: ClientKey,
    linger: std::time::Duration,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let (weak, key, linger) = (Arc::downgrade(&self.inner), self.key.clone(), self.linger);
        if linger.is_zero() {
            self.inner.remove_client(&key);
            return;
        }
        tokio::spawn(async move {
            tokio::time::sleep(linger).await;
            if let Some(inner) = weak.upgrade() {
                inner.remove_client(&key);
            }
        });
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
    let (tx, mut rx) = mpsc::channel(16);
    inner.add_client(key.clone(), tx);
    let linger = if reliable { std::time::Duration::ZERO } else { timers.t4 };
    let _registration = Registration { inner: inner.clone(), key: key.clone(), linger };

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
            resp = rx.recv() => {
                let resp = resp.ok_or(TransactionError::Shutdown)?;
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
