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

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `inner`, failing once idle for longer than `timeout`.
pub struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    /// When a byte last moved; the timer is re-armed from it only when it fires.
    last_moved: Instant,
    /// The waker the timer was last polled with while it had not fired: it wakes that task when
    /// it fires, so the same task need not poll it again until then. `None` after it fired or
    /// was re-armed.
    armed_for: Option<Waker>,
}

impl<T> IdleTimeout<T> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: T, timeout: Duration) -> IdleTimeout<T> {
        let now = Instant::now();
        IdleTimeout {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep_until(now + timeout)),
            last_moved: now,
            armed_for: None,
        }
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
            let due = self.last_moved + self.timeout;
            if due <= Instant::now() {
                return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
            }
            self.deadline.as_mut().reset(due);
        }
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
        let mut conn = IdleTimeout::new(ours, Duration::from_millis(300));
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
}
