//! The future a provisioning request's handler gives hyper: the answer itself when nothing had
//! to wait, else a boxed future that finishes the request.
//!
//! Nearly every request (a known device's cached file, its fetch record kept at once) is
//! answered within hyper's service call (`super::prepare`). The request's future was an
//! `async fn`, boxed: 1,264 bytes of state machine (the request, the parse of its headers,
//! the access checks' facts and each await's future) allocated outside mimalloc's small sizes,
//! copied in, polled through four nested state machines and freed, per request, though it
//! finished on its first poll. [`PhoneAnswer::Ready`] is the response, moved; only a request
//! that waits (a rare branch, a first fetch's claim, a clock behind a file's `Last-Modified`, a
//! fetch log without room) pays for a box, [`PhoneAnswer::Waits`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{
    authorize_after_wait, conclude, dates, deliver, directory, file_name, keyfile, respond, stored, upload, Dated,
    Incoming, Later, Phones, Prepared, ReadHeaders, Resolved, Served, Wait,
};
use crate::fetchlog::Fetch;
use crate::metrics::labels::VendorLabel;
use sipprov_vendors::UserAgentInfo;

/// A request's answer as hyper awaits it.
pub(super) enum PhoneAnswer {
    /// Answered already (`None` once hyper has it).
    Ready(Option<Response>),
    /// The rest of a request that waits.
    Waits(Pin<Box<dyn Future<Output = Response> + Send>>),
}

impl PhoneAnswer {
    /// The answer, ready.
    pub(super) fn ready(response: Response) -> PhoneAnswer {
        PhoneAnswer::Ready(Some(response))
    }

    /// The answer once `rest` is done.
    pub(super) fn waits(rest: impl Future<Output = Response> + Send + 'static) -> PhoneAnswer {
        PhoneAnswer::Waits(Box::pin(rest))
    }
}

impl Future for PhoneAnswer {
    type Output = Response;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        match self.get_mut() {
            // Polled again after its answer (hyper does not): a server error rather than a panic.
            PhoneAnswer::Ready(response) => {
                Poll::Ready(response.take().unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
            }
            PhoneAnswer::Waits(rest) => rest.as_mut().poll(cx),
        }
    }
}

/// `response`, timed into `sipprov_http_request_duration_seconds` under `vendor` (the
/// request's device's, else its User-Agent's) from `started`.
pub(super) fn timed(state: &Phones, response: Response, vendor: VendorLabel, started: Instant) -> Response {
    state.metrics.observe_http(vendor, response.status(), started.elapsed());
    response
}

/// The answer of a served config file: its fetch is recorded before the answer goes out, and
/// when the fetch log has no room at once, the answer waits for it (see
/// [`crate::fetchlog::FetchLog::record_fetch`]).
pub(super) fn served(
    state: Arc<Phones>,
    served: Arc<Served>,
    status: StatusCode,
    record: Option<Fetch>,
    vendor: VendorLabel,
    started: Instant,
) -> PhoneAnswer {
    let Some(record) = record else {
        return PhoneAnswer::ready(timed(&state, respond(status, &served), vendor, started));
    };
    let recording = state.fetchlog.record_fetch_at_once(record);
    if recording.is_done() {
        return PhoneAnswer::ready(timed(&state, respond(status, &served), vendor, started));
    }
    PhoneAnswer::waits(async move {
        state.fetchlog.finish_recording(recording).await;
        timed(&state, respond(status, &served), vendor, started)
    })
}

/// Finishes a request that waits, from where `prepare` got to (`later`), and answers it as
/// `prepare`'s caller does. `body` is the request's: only an upload reads it (taking it), and
/// only then is it boxed into an axum [`Body`].
pub(super) async fn later(
    state: Arc<Phones>,
    incoming: Incoming,
    body: hyper::body::Incoming,
    later: Box<Later>,
    mut vendor: VendorLabel,
    started: Instant,
) -> Response {
    let mut body = Some(body);
    let response = match finish(&state, &incoming, &mut body, *later, &mut vendor).await {
        Ok((served, status, record)) => {
            if let Some(record) = record {
                state.fetchlog.record_fetch(record).await;
            }
            respond(status, &served)
        }
        Err(response) => response,
    };
    timed(&state, response, vendor, started)
}

/// [`later`]'s branches: what `prepare` would have awaited there. What `prepare` read from the
/// request that is not in `later` (the headers it reads, the access checks' facts, the file
/// name) is read again, by the same functions: nothing `prepare` counted or decided is done
/// twice.
async fn finish(
    state: &Arc<Phones>,
    incoming: &Incoming,
    body: &mut Option<hyper::body::Incoming>,
    later: Later,
    vendor: &mut VendorLabel,
) -> Prepared {
    let Later { wait, ua } = later;
    let asked = incoming.asked();
    let read = ReadHeaders::of(asked.headers);
    let facts = asked.facts(&read);
    let (peer, headers) = (incoming.peer, &incoming.headers);
    // `prepare` found the path's file name before every wait but a stored file's: the same
    // check again. (The error is the answer itself, as `prepare`'s are.)
    #[allow(clippy::result_large_err)]
    let file = move || file_name(incoming.uri.path()).map_err(|_| StatusCode::BAD_REQUEST.into_response());
    match wait {
        Wait::Stored(route) => {
            let request =
                stored::FileRequest { route, method: &incoming.method, headers, peer, ua: ua.as_ref(), facts: &facts };
            Err(stored::serve(state, request, vendor).await)
        }
        Wait::Upload => {
            // Taken once: a request is finished once.
            let body = body.take().map_or_else(Body::empty, Body::new);
            Err(upload::receive(state, file()?, ua.as_ref(), &facts, headers, body).await)
        }
        Wait::Directory(mac) => {
            let request = directory::DirectoryRequest { mac, file: file()?, ua: ua.as_ref(), headers, peer };
            Err(directory::serve(state, request, &facts).await)
        }
        Wait::Keyfile(names) => Err(keyfile::serve(state, names, file()?, ua.as_ref(), &facts).await),
        Wait::Authorize { resolved, policy, decision } => {
            let file = file()?;
            let auth = match &resolved {
                Resolved::Device { device, .. } => {
                    authorize_after_wait(state, device, file, &facts, policy, decision).await?
                }
                // Only a device's file waits for its authorization (see `prepare`).
                Resolved::Model { .. } => "none",
            };
            match deliver(state, resolved, file, ua, auth, &read, peer) {
                Ok(prepared) => prepared,
                Err((dated, ua)) => held(state, dated, ua, &read, peer).await,
            }
        }
        Wait::Dated(dated) => held(state, dated, ua, &read, peer).await,
    }
}

/// A file held until its `Last-Modified` is not ahead of the clock, then concluded as `prepare`
/// concludes the rest.
async fn held(
    state: &Phones,
    dated: Dated,
    ua: Option<UserAgentInfo>,
    read: &ReadHeaders<'_>,
    peer: std::net::SocketAddr,
) -> Prepared {
    let Dated { resolved, served, auth, ahead } = dated;
    let now = dates::hold(ahead).await;
    Ok(conclude(state, &resolved, served, peer, ua, auth, read, now))
}
