//! The endpoint's receive path, the sink the transports deliver to: admit each inbound request by its source's rate ([`crate::admission`]),
//! parse each inbound message (inline in the UDP reader tasks, from a queue for stream
//! connections), hand responses to their client transaction and requests to their server
//! transaction (absorbing retransmissions) and the application.
//!
//! What is logged here on behalf of a sender is rationed ([`LogLimiter`]) and its text escaped
//! ([`escaped`]): one warning per malformed datagram would let a flood fill the disk.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::queue::Refused;
use super::{new_to_tag, IncomingRequest, Inner};
use crate::admission::looks_like_request;
use crate::logsafe::{escaped, LogLimiter, LOG_TEXT_MAX};
use crate::message::{parse_keyed, Keys, Message, Request, Response};
use crate::transaction::server::{build_response, response_target, stamp_top_via, Seen, ServerKey};
use crate::transaction::table::Matched;
use crate::transaction::TxEventKind;
use crate::transport::{Inbound, InboundSink, StreamEvent, Target};

/// UDP reader tasks deliver here, inline.
impl InboundSink for Inner {
    fn admit(&self, data: &[u8], source: SocketAddr) -> bool {
        admit(self, data, source)
    }

    async fn receive(self: Arc<Self>, msg: Inbound) {
        handle_admitted(&self, &msg).await
    }
}

/// Handles what stream (TCP, TLS) connections queue here: their messages, and their failures,
/// which end the transactions sent on them at once rather than at Timer F.
pub(super) async fn run(inner: Weak<Inner>, mut rx: mpsc::Receiver<StreamEvent>) {
    while let Some(event) = rx.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match event {
            StreamEvent::Message(msg) => handle(&inner, &msg).await,
            StreamEvent::Failed { transport, addr, error } => {
                tracing::debug!(peer = %addr, %transport, %error, "connection failed; its transactions end");
                inner.tx.clients().fail_connection(transport, addr, &error);
            }
        }
    }
}

/// Warnings about malformed messages: a burst of 10, then one per 10 s.
static MALFORMED_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));
/// Warnings about sources over their request rate: a burst of 10, then one per 10 s.
static RATE_LIMITED_LOG: LogLimiter = LogLimiter::new(10, Duration::from_secs(10));

/// Whether a received message may go on: responses always, requests (and anything else) while
/// their source is within its rate. Checked before the message is copied or parsed.
fn admit(inner: &Inner, data: &[u8], source: SocketAddr) -> bool {
    if !looks_like_request(data) || inner.sources.admit(source.ip(), Instant::now()) {
        return true;
    }
    inner.rate_limited.fetch_add(1, Ordering::Relaxed);
    if let Some(suppressed) = RATE_LIMITED_LOG.allow() {
        let per_sec = inner.sources.limits().per_source_per_sec;
        tracing::warn!(%source, per_sec, suppressed, "SIP requests over the per-source rate dropped unanswered");
    }
    false
}

/// Handles one received message: [`admit`], then [`handle_admitted`].
async fn handle(inner: &Arc<Inner>, msg: &Inbound) {
    if admit(inner, &msg.data, msg.source) {
        handle_admitted(inner, msg).await;
    }
}

/// Handles one received message that [`admit`] let through. UDP reader tasks call this
/// directly (through [`InboundSink`]), so a response reaches its transaction with one task
/// wake-up instead of two.
async fn handle_admitted(inner: &Arc<Inner>, msg: &Inbound) {
    match parse_keyed(&msg.data, &inner.limits) {
        Ok((Message::Response(resp), keys)) => on_response(inner, resp, keys),
        Ok((Message::Request(req), _)) => on_request(inner, req, msg).await,
        Err(e) => {
            inner.malformed.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = MALFORMED_LOG.allow() {
                let reason = e.to_string();
                tracing::warn!(source = %msg.source, transport = %msg.transport, reason = %escaped(&reason, LOG_TEXT_MAX),
                    suppressed, "refused malformed SIP message");
            }
        }
    }
}

fn on_response(inner: &Inner, resp: Response, keys: Keys) {
    // Borrowed from the message: matching a response builds no key. The parser has just read
    // both values and says where they are; only a folded header is read again.
    let h = &resp.headers;
    let branch = keys.branch.and_then(|span| h.text_at(span)).map(Cow::Borrowed).or_else(|| h.checked_top_via_branch());
    let method = match keys.method.and_then(|span| h.text_at(span)) {
        Some(method) => Some(Cow::Borrowed(method)),
        None => h.cseq_parts().ok().flatten().map(|(_, method)| method),
    };
    let (Some(branch), Some(method)) = (branch, method) else {
        return;
    };
    match inner.tx.clients().matching(&branch, &method) {
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
    let (branch, method) = key.labels();
    let (branch, method) = (branch.to_owned(), method.to_owned());
    // Unanswered, a transaction is forgotten after twice Timer F; answered, Timer J applies.
    match inner.tx.servers().on_request(&key, Instant::now(), inner.tx.timers().timer_f() * 2) {
        Seen::Retransmission(last) => {
            let resend = last.is_some();
            if let Some((data, target)) = last {
                if let Err(e) = inner.tx.send(&target, data).await {
                    tracing::debug!(error = %e, "resending response failed");
                }
            }
            inner.tx.emit(&branch, &method, &reply_to, TxEventKind::RetransmissionAbsorbed { response_resent: resend });
        }
        Seen::New => {
            inner.tx.emit(&branch, &method, &reply_to, TxEventKind::RequestReceived);
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
        None => match inner.incoming_tx.try_send(incoming, super::queue::cost(msg.data.len())) {
            Ok(()) => None,
            Err(Refused::Full(i)) => Some((*i, (503, "Service Unavailable"))),
            Err(Refused::Closed(i)) => Some((*i, (501, "Not Implemented"))),
        },
    };
    if let Some((i, (status, reason))) = refusal {
        let resp = build_response(&i.request, status, reason, &i.to_tag);
        if let Err(e) = inner.send_response(&i.key, i.reply_to, resp).await {
            tracing::debug!(error = %e, "automatic response failed");
        }
    }
}
