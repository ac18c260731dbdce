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

use std::time::Duration;

use tokio::sync::watch;

/// The server's side: starts the drain and waits for it.
#[derive(Debug)]
pub struct Drain(watch::Sender<bool>);

/// A listener's or a connection's side: resolves once the server stops serving.
#[derive(Debug, Clone)]
pub struct Draining(watch::Receiver<bool>);

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
        let (tx, rx) = watch::channel(false);
        (Drain(tx), Draining(rx))
    }

    /// Tells every listener and connection to stop, then waits until all have ended or
    /// `within` has passed. Returns whether all ended in time (a slow download may not).
    pub async fn stop_serving(self, within: Duration) -> bool {
        self.0.send_replace(true);
        tokio::time::timeout(within, self.0.closed()).await.is_ok()
    }
}

impl Draining {
    /// Resolves once the drain has started (at once if it already has). Cancel-safe: a
    /// `select!` may poll it again after another branch won.
    pub async fn started(&mut self) {
        // An error means the server side is gone, which ends serving just the same.
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}
