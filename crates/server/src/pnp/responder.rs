//! Which node answers Plug-and-Play multicast when several nodes share a PostgreSQL database.
//!
//! A phone takes the first NOTIFY it gets, and every node on the LAN hears its multicast
//! SUBSCRIBE: without coordination each would answer. So per segment (`[pnp] segment`, by
//! default the multicast group and port) one node answers: the one holding the segment's
//! PostgreSQL advisory lock, taken on a connection of its own
//! ([`sipprov_store::ResponderLock`]). The others hear the SUBSCRIBE and stay silent, and try
//! for the lock every [`RETRY_EVERY`]. When the holder dies, PostgreSQL sees its connection
//! close and releases the lock; the next node to try takes over, within about one retry.
//! A holder that loses its connection stops answering as soon as its next check fails.
//!
//! Unicast SUBSCRIBEs (sent to one node's address) are answered by that node as before. With
//! SQLite there is one node, and it always answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sipprov_store::{ResponderLock, Store};

/// How often a node that is not the responder tries for the lock, and how often the holder
/// checks its connection.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Whether this node answers multicast SUBSCRIBEs now.
pub struct Responder {
    answers: AtomicBool,
}

impl Responder {
    /// A node that always answers (SQLite: the only node).
    pub fn always() -> Arc<Responder> {
        Arc::new(Responder { answers: AtomicBool::new(true) })
    }

    /// A node contending for `segment` under the name `holder`; silent until it holds the lock.
    pub fn contend(store: Store, segment: String, holder: String) -> Arc<Responder> {
        let responder = Arc::new(Responder { answers: AtomicBool::new(false) });
        tokio::spawn(contend_loop(responder.clone(), store, segment, holder));
        responder
    }

    /// True when this node answers multicast SUBSCRIBEs.
    pub fn answers(&self) -> bool {
        self.answers.load(Ordering::Relaxed)
    }

    fn set(&self, answers: bool, segment: &str) {
        if self.answers.swap(answers, Ordering::Relaxed) != answers {
            match answers {
                true => tracing::info!(segment, "this node now answers PnP multicast for its segment"),
                false => tracing::warn!(segment, "this node no longer answers PnP multicast (lost the responder lock)"),
            }
        }
    }
}

async fn contend_loop(responder: Arc<Responder>, store: Store, segment: String, holder: String) {
    let mut lock: Option<ResponderLock> = None;
    let mut tick = tokio::time::interval(RETRY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if lock.is_none() {
            match store.responder_lock(&segment, &holder).await {
                Ok(l) => lock = Some(l),
                Err(e) => {
                    responder.set(false, &segment);
                    tracing::debug!(error = %e, "cannot open the PnP responder connection");
                    continue;
                }
            }
        }
        let Some(current) = lock.as_mut() else { continue };
        match current.refresh(sipprov_store::now_ms()).await {
            Ok(held) => responder.set(held, &segment),
            Err(e) => {
                responder.set(false, &segment);
                tracing::debug!(error = %e, "PnP responder connection lost");
                if let Some(gone) = lock.take() {
                    gone.release().await;
                }
            }
        }
    }
}
