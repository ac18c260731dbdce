//! [`TransactionLayer`]: what the transaction drivers and the receive path work with, and
//! nothing of the endpoint above — the transports to send through, the timers, the client and
//! server tables, and the counters and observer that transaction events go to.
//!
//! The endpoint builds one, hands it the transports, and calls down into it; the layer never
//! calls up. Received messages reach it through the endpoint's receive path, which looks their
//! transaction up in [`TransactionLayer::clients`] or [`TransactionLayer::servers`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::request::{invalid, prepare};
use super::server::{ServerKey, ServerTable};
use super::table::{ClientKey, ClientTable};
use super::{Observer, Timers, TransactionError, TxEvent, TxEventKind};
use crate::admission::RequestLimits;
use crate::builder::{new_branch, OurVia};
use crate::message::{Request, Response};
use crate::transport::{Target, TransportError, Transports};

/// Counts of transaction events since the start (see [`crate::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TxCounts {
    /// Client requests sent (first transmissions).
    pub(crate) requests_sent: u64,
    /// Client request retransmissions.
    pub(crate) retransmissions: u64,
    /// Client transactions ended by Timer F.
    pub(crate) timeouts: u64,
    /// New requests handed to the application.
    pub(crate) requests_received: u64,
    /// Retransmitted requests absorbed by server transactions.
    pub(crate) retransmissions_absorbed: u64,
    /// Responses sent by server transactions.
    pub(crate) responses_sent: u64,
}

#[derive(Default)]
struct Counters {
    requests_sent: AtomicU64,
    retransmissions: AtomicU64,
    timeouts: AtomicU64,
    requests_received: AtomicU64,
    retransmissions_absorbed: AtomicU64,
    responses_sent: AtomicU64,
}

/// The transaction layer of an endpoint.
pub(crate) struct TransactionLayer {
    transports: Arc<Transports>,
    clients: ClientTable,
    servers: ServerTable,
    timers: Timers,
    observer: Option<Observer>,
    counters: Counters,
}

impl TransactionLayer {
    /// A layer sending through `transports`, with `timers`, a server table bounded by `requests`
    /// and `observer` seeing every event.
    pub(crate) fn new(
        transports: Arc<Transports>,
        timers: Timers,
        requests: &RequestLimits,
        observer: Option<Observer>,
    ) -> TransactionLayer {
        TransactionLayer {
            transports,
            clients: ClientTable::default(),
            servers: ServerTable::new(requests),
            timers,
            observer,
            counters: Counters::default(),
        }
    }

    /// The running and completed client transactions.
    pub(crate) fn clients(&self) -> &ClientTable {
        &self.clients
    }

    /// The server transactions.
    pub(crate) fn servers(&self) -> &ServerTable {
        &self.servers
    }

    /// T1, T2, T4.
    pub(crate) fn timers(&self) -> Timers {
        self.timers
    }

    /// Sends one message through the transports.
    pub(crate) async fn send(&self, target: &Target, data: Bytes) -> Result<(), TransportError> {
        self.transports.send(target, data).await
    }

    /// How long a completed client transaction absorbs retransmitted responses: Timer K, zero
    /// on reliable transports (§17.1.2.2).
    pub(crate) fn linger(&self, target: &Target) -> Duration {
        if target.transport.is_reliable() {
            Duration::ZERO
        } else {
            self.timers.t4
        }
    }

    /// Counts, traces and reports one transaction event.
    pub(crate) fn emit(&self, branch: &str, method: &str, target: &Target, kind: TxEventKind) {
        let c = &self.counters;
        let counter = match &kind {
            TxEventKind::RequestSent { retransmission: 0 } => Some(&c.requests_sent),
            TxEventKind::RequestSent { .. } => Some(&c.retransmissions),
            TxEventKind::TimedOut => Some(&c.timeouts),
            TxEventKind::RequestReceived => Some(&c.requests_received),
            TxEventKind::RetransmissionAbsorbed { .. } => Some(&c.retransmissions_absorbed),
            TxEventKind::ResponseSent { .. } => Some(&c.responses_sent),
            TxEventKind::ResponseReceived { .. } => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(branch, method, peer = %target.addr, transport = %target.transport, ?kind, "sip transaction");
        if let Some(obs) = &self.observer {
            let event = TxEvent {
                at: Instant::now(),
                branch: branch.to_owned(),
                method: method.to_owned(),
                peer: target.addr,
                transport: target.transport,
                kind,
            };
            obs(&event);
        }
    }

    /// The event counts so far.
    pub(crate) fn counts(&self) -> TxCounts {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TxCounts {
            requests_sent: get(&c.requests_sent),
            retransmissions: get(&c.retransmissions),
            timeouts: get(&c.timeouts),
            requests_received: get(&c.requests_received),
            retransmissions_absorbed: get(&c.retransmissions_absorbed),
            responses_sent: get(&c.responses_sent),
        }
    }

    /// Our address as the peer should see it (see [`crate::Endpoint::sent_by`]).
    pub(crate) fn sent_by(&self, target: &Target) -> Result<SocketAddr, TransportError> {
        self.transports.sent_by(target)
    }

    /// Writes a top Via with our address and a fresh branch, which starts a new transaction,
    /// and returns that transaction's key. It takes the place of the top Via, or goes first
    /// when the request has none ([`crate::Endpoint::request`] builds it without).
    pub(crate) fn stamp_via(&self, req: &mut Request, target: &Target) -> Result<ClientKey, TransactionError> {
        let local = self.sent_by(target)?;
        let branch = new_branch();
        let via = OurVia { transport: target.transport, local, branch: &branch };
        req.headers.replace_first_value_with("Via", |out| via.write(out)).map_err(invalid)?;
        Ok(ClientKey { branch, method: req.method.clone() })
    }

    /// Checks and completes a request ([`prepare`]) and stamps its Via
    /// ([`TransactionLayer::stamp_via`]).
    pub(crate) fn prepare_transaction(
        &self,
        req: &mut Request,
        target: &Target,
    ) -> Result<ClientKey, TransactionError> {
        prepare(req)?;
        self.stamp_via(req, target)
    }

    /// Sends a server-transaction response (Content-Length set from its body) and starts
    /// Timer J once it is final.
    pub(crate) async fn send_response(
        &self,
        key: &ServerKey,
        target: Target,
        mut resp: Response,
    ) -> Result<(), TransportError> {
        resp.headers.set("Content-Length", &resp.body.len().to_string());
        let data = Bytes::from(resp.to_bytes());
        // A final response starts Timer J: 64·T1 on UDP, zero on TCP and TLS (§17.2.2).
        let timer_j = (resp.status >= 200).then(|| match target.transport.is_reliable() {
            true => Duration::ZERO,
            false => self.timers.timer_f(),
        });
        self.servers.record_response(key, data.clone(), target.clone(), timer_j);
        self.transports.send(&target, data).await?;
        let (branch, method) = key.labels();
        self.emit(branch, method, &target, TxEventKind::ResponseSent { status: resp.status });
        Ok(())
    }
}
