//! An I/O wrapper that fails a connection on which no byte has moved for a while.
//!
//! hyper's header-read timeout covers a request head that is slow to come (and the wait for the
//! next request on a kept-alive connection); it does not cover a body that trickles in or a
//! client that stops reading our response, each of which holds the connection and its
//! descriptor for ever. This wrapper does: a read or write that stays pending past the idle
//! timeout, with nothing moved meanwhile, fails with `TimedOut`, and hyper closes the connection.
//!
//! The timer is not moved on every read and write (that would take the timer wheel's lock
//! twice per request on a kept-alive connection, a cost the provisioning path paid per fetch):
//! a read or write only notes the time, and when the timer fires the wrapper checks that note
//! and re-arms the timer for the real deadline if something moved meanwhile. The connection
//! still fails exactly `timeout` after the last byte moved.
//!
//! Nor is the timer polled on every pending read or write: once it has been polled with the
//! connection task's waker and has not fired, it will wake that task when it does (tokio's
//! `Sleep` keeps the waker it was last polled with), so a later pending call of the same task
//! only checks that it has not fired yet ([`Sleep::is_elapsed`]), without the poll's cooperative
//! budget and waker bookkeeping.
//!
//! The same timer enforces the header-read timeout ([`HeadTimer`]), which hyper is not given:
//! hyper's own made, polled and dropped a boxed tokio `Sleep` per request (a timer-wheel
//! insertion and removal), and with any header-read timeout set hyper also runs its connection
//! loop once more after every response (`State::idle` sets `notify_read`, hyper 1.12
//! `proto/h1/conn.rs`), only to find no next request yet: a read that would block, one more
//! `recv` system call, about 1,500 instructions of a cached config fetch. A connection waits
//! for a request head from when HTTP starts on it (after any TLS handshake, which has a timeout
//! of its own) and from when each response's body is done with (sent, or given up: the
//! listener calls [`HeadTimer::awaiting_head`] when hyper drops the body; hyper's own timer
//! started when it went idle after the response),
//! until the handler is given the request ([`HeadTimer::head_complete`]); this wrapper fails a
//! pending read or write once that deadline has passed, as hyper failed the connection. Its
//! timer is never armed further out than the header timeout from the moment it is armed, so it
//! fires at or before any head deadline set later (each is the clock at that time plus the
//! header timeout), and is then re-armed for the nearest real deadline: a slow head is cut off
//! at its deadline, as before, at the cost of one timer move per header timeout (10 s by
//! default) on a busy connection instead of two per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, failing once idle for longer than `timeout`, or once a request head the connection
/// waits for is not complete by its deadline ([`HeadTimer`]).
pub struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    /// The request head's deadline, shared with the connection's [`HeadTimer`].
    head: Arc<HeadDeadline>,
    deadline: Pin<Box<Sleep>>,
    /// When a byte last moved; the timer is re-armed from it only when it fires.
    last_moved: Instant,
    /// The waker the timer was last polled with while it had not fired: it wakes that task when
    /// it fires, so the same task need not poll it again until then. `None` after it fired or
    /// was re-armed.
    armed_for: Option<Waker>,
}

impl<T> IdleTimeout<T> {
    /// Wraps `inner`, failing it once idle for `timeout` or once a request head is not complete
    /// `header_timeout` after the connection started waiting for it; the idle clock starts now.
    /// The [`HeadTimer`] is how the connection's listener says when it starts waiting for a
    /// head (the first once HTTP starts, after any TLS handshake) and when one is complete.
    pub fn new(inner: T, timeout: Duration, header_timeout: Duration) -> (IdleTimeout<T>, HeadTimer) {
        let now = Instant::now();
        let head = Arc::new(HeadDeadline { base: now.into_std(), step: header_timeout, at: AtomicU64::new(NONE) });
        let first = now + timeout.min(header_timeout);
        let io = IdleTimeout {
            inner,
            timeout,
            head: head.clone(),
            deadline: Box::pin(tokio::time::sleep_until(first)),
            last_moved: now,
            armed_for: None,
        };
        (io, HeadTimer(head))
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Something moved: the idle clock starts again (noted only; see the module's doc).
    fn moved(&mut self) {
        self.last_moved = Instant::now();
    }

    /// Called when the inner stream is pending: an error once `timeout` has passed since the
    /// last byte moved (polling the timer also registers the waker, so a silent peer is noticed
    /// when the deadline passes). A timer that fires early, because bytes moved after it was
    /// armed, is re-armed for the real deadline.
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let same_task = |armed: &Option<Waker>, waker: &Waker| armed.as_ref().is_some_and(|w| w.will_wake(waker));
        if same_task(&self.armed_for, cx.waker()) && !self.deadline.is_elapsed() {
            return Poll::Pending;
        }
        loop {
            // Out of cooperative budget, the timer answers pending without being polled (nor
            // even created, on its first poll), so that answer arms nothing.
            let can_arm = tokio::task::coop::has_budget_remaining();
            if self.deadline.as_mut().poll(cx).is_pending() {
                if !can_arm {
                    self.armed_for = None;
                } else if !same_task(&self.armed_for, cx.waker()) {
                    self.armed_for = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            self.armed_for = None;
            let now = Instant::now();
            let head_due = self.head.due();
            if head_due.is_some_and(|due| due <= now) {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "request head not complete in time"));
            }
            let due = self.last_moved + self.timeout;
            if due <= now {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
            }
            // Never further out than one header timeout from now: a head deadline set later is
            // at least that far out, so the timer fires at or before it (see the module's doc).
            let next = due.min(now + self.head.step);
            self.deadline.as_mut().reset(head_due.map_or(next, |head| head.min(next)));
        }
    }
}

/// [`HeadDeadline::at`] when hyper waits for no request head.
const NONE: u64 = u64::MAX;

/// The deadline of the request head the connection waits for, if any: set by the
/// [`HeadTimer`], cleared once the head is complete, checked by the [`IdleTimeout`] when its
/// timer fires.
#[derive(Debug)]
struct HeadDeadline {
    /// What [`HeadDeadline::at`] counts from.
    base: std::time::Instant,
    /// The header timeout: the timer is never armed further out than this from the time it is
    /// armed.
    step: Duration,
    /// Nanoseconds after `base`, or [`NONE`].
    at: AtomicU64,
}

impl HeadDeadline {
    fn set(&self, deadline: std::time::Instant) {
        // A deadline before `base` (none is: it is read after the connection's clock) is due at
        // once; one beyond `u64` nanoseconds (584 years) never is.
        let nanos = deadline.saturating_duration_since(self.base).as_nanos();
        self.at.store(u64::try_from(nanos).unwrap_or(NONE - 1), Ordering::Relaxed);
    }

    fn due(&self) -> Option<Instant> {
        let at = self.at.load(Ordering::Relaxed);
        (at != NONE).then(|| Instant::from_std(self.base) + Duration::from_nanos(at))
    }
}

/// When the connection waits for a request head, for its [`IdleTimeout`], which fails the
/// connection once that head's deadline passes (the module's doc says why hyper's own timeout
/// is not used): from each [`HeadTimer::awaiting_head`] until [`HeadTimer::head_complete`].
#[derive(Debug, Clone)]
pub struct HeadTimer(Arc<HeadDeadline>);

impl HeadTimer {
    /// The request head the connection waited for is complete: no deadline until it waits for
    /// the next.
    pub fn head_complete(&self) {
        self.0.at.store(NONE, Ordering::Relaxed);
    }

    /// The connection waits for a request head from now (HTTP starts, or the last response is
    /// done with): it must be complete within the header timeout.
    pub fn awaiting_head(&self) {
        self.0.set(std::time::Instant::now() + self.0.step);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.check(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.check(cx).map(Err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_talking_one_does_not() {
        let (mut peer, ours) = tokio::io::duplex(64);
        // A header timeout longer than the idle one: only the idle timeout acts here.
        let (mut conn, _head) = IdleTimeout::new(ours, Duration::from_millis(300), Duration::from_secs(10));
        let mut buf = [0u8; 8];
        let talker = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                let _ = peer.write_all(b"x").await;
            }
            // Keep the peer open but silent.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        for _ in 0..3 {
            assert_eq!(conn.read(&mut buf).await.unwrap(), 1, "150 ms apart is not idle");
        }
        let started = Instant::now();
        let err = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5), "the timeout fired, not the peer's exit");
        talker.abort();
    }

    /// A peer sending a byte every 100 ms while `head` waits for a request head. Returns how
    /// many bytes were read and how the reading ended (`None`: `limit` passed first).
    async fn trickle(head_wait: bool, limit: Duration) -> (usize, Option<io::Error>) {
        let (mut peer, ours) = tokio::io::duplex(64);
        let (mut conn, head) = IdleTimeout::new(ours, Duration::from_secs(5), Duration::from_millis(400));
        let talker = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if peer.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        // As the listener does when HTTP starts and once each response is done with.
        head.awaiting_head();
        if !head_wait {
            head.head_complete();
        }
        let (mut read, mut buf) = (0, [0u8; 8]);
        let ended = tokio::time::timeout(limit, async {
            loop {
                match conn.read(&mut buf).await {
                    Ok(n) => read += n,
                    Err(e) => return e,
                }
            }
        })
        .await
        .ok();
        talker.abort();
        (read, ended)
    }

    #[tokio::test]
    async fn a_trickling_head_is_cut_off_at_its_deadline_and_a_trickling_body_is_not() {
        let started = Instant::now();
        let (read, ended) = trickle(true, Duration::from_secs(5)).await;
        let err = ended.expect("the head's deadline ends the connection");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("head"), "{err}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(390) && took < Duration::from_secs(3), "cut off after {took:?}");
        assert!(read >= 2, "bytes kept coming meanwhile: {read}");
        // Once the head is complete, the same trickle (a body) is only under the idle timeout.
        let (read, ended) = trickle(false, Duration::from_millis(1200)).await;
        assert!(ended.is_none(), "a body trickling in is not cut off: {ended:?}");
        assert!(read >= 8, "{read}");
    }
}
