//! A clean stop's first step: the HTTP listeners stop accepting, and each open connection
//! closes once the request in hand is answered.
//!
//! Why first: the fetch log is written out on the way down, and a server that keeps answering
//! while it writes keeps adding records behind the ones it is writing. Under load (a fleet's
//! kept-alive connections) such a stop took minutes, and the fetches answered after the last
//! write were lost. Draining first makes the last write the last record.
//!
//! One [`Drain`] per server; every accept loop and every connection task holds a [`Draining`].
//! [`Drain::stop_serving`] signals them all and waits until every one of them has ended
//! (each dropping its [`Draining`]), or until its time limit.

//!
//! Every connection task waits for the drain in a `select!` beside its hyper connection, which
//! polls that wait each time the task wakes (a few times per request). A `watch` channel's
//! wait took a lock per poll (its `Notify`'s waiter list), about 250 instructions per request
//! of a cached config fetch; [`Started`] checks a flag instead and polls its `Notify` only to
//! register the task (see [`Started`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::{futures::Notified, watch, Notify};

/// The server's side: starts the drain and waits for it.
#[derive(Debug)]
pub struct Drain {
    /// Only its `closed()`: every [`Draining`] holds a receiver, so it resolves once all ended.
    alive: watch::Sender<()>,
    signal: Arc<Signal>,
}

/// A listener's or a connection's side: resolves once the server stops serving.
#[derive(Debug, Clone)]
pub struct Draining {
    _alive: watch::Receiver<()>,
    signal: Arc<Signal>,
}

/// The drain's start: the flag, then the waiters woken.
#[derive(Debug, Default)]
struct Signal {
    started: AtomicBool,
    notify: Notify,
}

impl Drain {
    /// A drain not yet started, and the handle its listeners watch.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// let (drain, draining) = sipprov_server::listener::drain::Drain::new();
    /// let mut watcher = draining.clone();
    /// let connection = tokio::spawn(async move {
    ///     watcher.started().await; // a connection would finish its request here
    /// });
    /// drop(draining);
    /// assert!(drain.stop_serving(Duration::from_secs(1)).await);
    /// connection.await.unwrap();
    /// # }
    /// ```
    pub fn new() -> (Drain, Draining) {
        let (alive, rx) = watch::channel(());
        let signal = Arc::new(Signal::default());
        (Drain { alive, signal: signal.clone() }, Draining { _alive: rx, signal })
    }

    /// Tells every listener and connection to stop, then waits until all have ended or
    /// `within` has passed. Returns whether all ended in time (a slow download may not).
    pub async fn stop_serving(self, within: Duration) -> bool {
        self.signal.started.store(true, Ordering::Release);
        self.signal.notify.notify_waiters();
        tokio::time::timeout(within, self.alive.closed()).await.is_ok()
    }
}

impl Drop for Drain {
    /// A server side dropped without draining ends serving just the same (as a closed channel
    /// did): nothing would ever start the drain otherwise.
    fn drop(&mut self) {
        if !self.signal.started.swap(true, Ordering::Release) {
            self.signal.notify.notify_waiters();
        }
    }
}

impl Draining {
    /// Resolves once the drain has started (at once if it already has). Cancel-safe: a
    /// `select!` may poll it again after another branch won.
    pub fn started(&mut self) -> Started<'_> {
        // Made before the flag is first read: `notify_waiters` wakes a `Notified` made before
        // it, polled or not (tokio's documented guarantee), so a drain starting between the
        // flag's check and the registration is not missed.
        Started { signal: &self.signal, notified: Box::pin(self.signal.notify.notified()), armed_for: None }
    }
}

/// [`Draining::started`]'s future. Once polled with a task's waker, its `Notified` keeps that
/// waker and wakes the task when the drain starts; until then, a poll by the same task (each time
/// the connection's task wakes for its requests) only reads the flag.
pub struct Started<'a> {
    signal: &'a Signal,
    /// Boxed: it is not `Unpin`, and one allocation per wait (per connection, per accept) is
    /// cheaper than the unsafe projection that would avoid it.
    notified: Pin<Box<Notified<'a>>>,
    /// The waker `notified` was last polled with; `None` before the first poll.
    armed_for: Option<Waker>,
}

impl Future for Started<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.signal.started.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if this.armed_for.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        if this.notified.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        this.armed_for = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_sees_a_drain_started_before_it_and_one_started_while_it_is_polled() {
        // Started while a task waits on it beside a busy branch (polled again and again).
        let (drain, draining) = Drain::new();
        let mut waiting = draining.clone();
        let connection = tokio::spawn(async move {
            let mut ticks = 0u32;
            let mut started = std::pin::pin!(waiting.started());
            loop {
                tokio::select! {
                    () = started.as_mut() => return ticks,
                    () = tokio::task::yield_now() => ticks += 1,
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let late = draining.clone();
        drop(draining);
        let stop = tokio::spawn(drain.stop_serving(Duration::from_secs(5)));
        let ticks = tokio::time::timeout(Duration::from_secs(5), connection).await.unwrap().unwrap();
        assert!(ticks > 0, "the wait was polled while not drained");
        // Made after the drain started: resolves at once.
        let mut late = late;
        tokio::time::timeout(Duration::from_secs(1), late.started()).await.unwrap();
        drop(late);
        assert!(stop.await.unwrap(), "every handle ended in time");
        // A server side dropped without draining ends serving too.
        let (drain, mut draining) = Drain::new();
        drop(drain);
        tokio::time::timeout(Duration::from_secs(1), draining.started()).await.unwrap();
    }
}
