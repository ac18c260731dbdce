//! The receive path: parse each inbound message (inline in the UDP reader tasks, from a queue
//! for stream connections), hand responses to their client transaction
//! and requests to their server transaction (absorbing retransmissions) and the application.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use crate::endpoint::{key_labels, new_to_tag, IncomingRequest, Inner};
use crate::message::{parse_with, Message, Request, Response};
use crate::transaction::client::Matched;
use crate::transaction::server::{build_response, response_target, stamp_top_via, Seen, ServerKey};
use crate::transaction::TxEventKind;
use crate::transport::{Inbound, StreamEvent, Target};

/// Handles what stream (TCP, TLS) connections queue here: their messages, and their failures,
/// which end the transactions sent on them at once rather than at Timer F.
pub(crate) async fn run(inner: Weak<Inner>, mut rx: mpsc::Receiver<StreamEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match event {
            StreamEvent::Message(msg) => handle(&inner, &msg).await,
            StreamEvent::Failed { transport, addr, error } => {
                tracing::debug!(peer = %addr, %transport, %error, "connection failed; its transactions end");
                inner.clients.fail_connection(transport, addr, &error);
            }
        }
    }
}

/// Handles one received message. UDP reader tasks call this directly, so a response reaches
/// its transaction with one task wake-up instead of two.
pub(crate) async fn handle(inner: &Arc<Inner>, msg: &Inbound) {
    match parse_with(&msg.data, &inner.limits) {
        Ok(Message::Response(resp)) => on_response(inner, resp),
        Ok(Message::Request(req)) => on_request(inner, req, msg).await,
        Err(e) => {
            inner.counters.malformed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(source = %msg.source, transport = %msg.transport, reason = %e, "refused malformed SIP message");
        }
    }
}

fn on_response(inner: &Inner, resp: Response) {
    // Borrowed from the message: matching a response builds no key.
    let (Some(branch), Ok(Some((_, method)))) = (resp.headers.checked_top_via_branch(), resp.headers.cseq_parts())
    else {
        return;
    };
    match inner.clients.matching(&branch, &method) {
        Matched::Running(waiter) => waiter.deliver(resp),
        Matched::Absorbed => tracing::trace!(status = resp.status, "retransmitted response absorbed (Timer K)"),
        Matched::Stray => tracing::debug!(status = resp.status, "response matches no client transaction"),
    }
}

async fn on_request(inner: &Arc<Inner>, mut req: Request, msg: &Inbound) {
    // ACK exists only for INVITE transactions, which this stack does not serve.
    if req.method == "ACK" {
        return;
    }
    let Ok(top) = stamp_top_via(&mut req, msg.source) else { return };
    let Ok(key) = ServerKey::of(&req, &top) else { return };
    let reply_to = response_target(&top, msg.source, msg.local, msg.transport);
    let (branch, method) = key_labels(&key);
    let (branch, method) = (branch.to_owned(), method.to_owned());
    match inner.servers.on_request(&key) {
        Seen::Retransmission(last) => {
            let resend = last.is_some();
            if let Some((data, target)) = last {
                if let Err(e) = inner.transports.send(&target, data).await {
                    tracing::debug!(error = %e, "resending response failed");
                }
            }
            inner.emit(&branch, &method, &reply_to, TxEventKind::RetransmissionAbsorbed { response_resent: resend });
        }
        Seen::New => {
            // Forget a transaction the application never answers, so the table cannot grow forever.
            inner.forget_server_after(key.clone(), inner.timers.timer_f() * 2);
            inner.emit(&branch, &method, &reply_to, TxEventKind::RequestReceived);
            deliver(inner, req, msg, key, reply_to).await;
        }
    }
}

async fn deliver(inner: &Arc<Inner>, req: Request, msg: &Inbound, key: ServerKey, reply_to: Target) {
    // INVITE needs a different transaction machine (§17.2.1); sipprov never receives calls.
    let refuse = (req.method == "INVITE").then_some((501, "Not Implemented"));
    let incoming = IncomingRequest {
        request: req,
        source: msg.source,
        local: msg.local,
        transport: msg.transport,
        key,
        reply_to,
        to_tag: new_to_tag(),
        endpoint: Arc::downgrade(inner),
    };
    let refusal = match refuse {
        Some(r) => Some((incoming, r)),
        None => match inner.incoming_tx.try_send(incoming) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(i)) => Some((i, (503, "Service Unavailable"))),
            Err(mpsc::error::TrySendError::Closed(i)) => Some((i, (501, "Not Implemented"))),
        },
    };
    if let Some((i, (status, reason))) = refusal {
        let resp = build_response(&i.request, status, reason, &i.to_tag);
        if let Err(e) = inner.send_response(&i.key, i.reply_to, resp).await {
            tracing::debug!(error = %e, "automatic response failed");
        }
    }
}
