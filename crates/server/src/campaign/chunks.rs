//! A campaign across nodes: its chunks claimed under leases, and its pace shared.
//!
//! Every node runs the engine and, for each running campaign, claims one chunk at a time
//! (`sipprov_store::Store::claim_campaign_chunk`), sends to the chunk's devices without an
//! outcome, marks it sent and claims the next. While it works on a chunk a keeper task renews
//! the lease (every [`LeasePolicy::renew_every`]) and reads the campaign's state and how many
//! nodes hold its chunks, so that a cancel made on any node and a change in the number of
//! senders reach the sending within about a second; the sending looks at both before each
//! batch of devices it marks `sending`, and at the share before each NOTIFY.
//!
//! Pacing rule: a campaign's `rate` and `max_in_flight` are for the whole campaign. A node
//! sends one chunk of a campaign at a time, and each of the `n` nodes holding a running lease
//! on a chunk of it sends at `rate / n` per second with at most `max_in_flight / n` (at least
//! one) awaiting an answer. A dead node's lease still counts until it runs out, so a takeover
//! never adds a sender on top of a share that was already given out.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use sipprov_model::CampaignState;
use sipprov_store::{CampaignChunk, CampaignRecord, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::CampaignEngine;

/// What one chunk's sending is told by its keeper.
#[derive(Debug)]
pub(super) struct ChunkControl {
    /// The lease was taken over by another node (it was not renewed in time): stop sending.
    lost: AtomicBool,
    /// The campaign left `running` (a cancel, possibly made on another node): stop sending.
    stopped: AtomicBool,
    /// Nodes holding a running lease on a chunk of the campaign, this one included.
    senders: AtomicU32,
}

impl ChunkControl {
    fn new(senders: u32) -> ChunkControl {
        ChunkControl { lost: AtomicBool::new(false), stopped: AtomicBool::new(false), senders: AtomicU32::new(senders) }
    }

    /// True when the lease is lost or the campaign stopped: nothing more may be marked.
    pub(super) fn must_stop(&self) -> bool {
        self.lost.load(Ordering::Relaxed) || self.stopped.load(Ordering::Relaxed)
    }

    /// True when the lease went to another node: what this node marked is now that node's.
    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// How many nodes share the campaign's pace now (at least 1).
    pub(super) fn senders(&self) -> u32 {
        self.senders.load(Ordering::Relaxed).max(1)
    }
}

/// How one chunk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkEnd {
    /// Every device of it has an outcome.
    Sent,
    /// The campaign stopped (cancelled): the devices not sent went back to `pending`.
    Stopped,
    /// Another node holds it now.
    Lost,
}

/// How this node's sending of a campaign ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendEnd {
    /// No chunk is left unsent: the campaign waits for its confirmations.
    AllSent,
    /// Other nodes hold the chunks left, or the campaign stopped, or a lease was lost.
    Elsewhere,
}

/// The in-flight limit of one node: a semaphore whose size follows its share.
pub(super) struct Slots {
    semaphore: Arc<Semaphore>,
    size: usize,
    /// Places to take away once they are given back (the share shrank while they were held).
    owed: usize,
}

impl Slots {
    /// `size` places.
    pub(super) fn new(size: usize) -> Slots {
        Slots { semaphore: Arc::new(Semaphore::new(size.max(1))), size: size.max(1), owed: 0 }
    }

    /// Grows or shrinks to `size` places (at least one); held places shrink as they come back.
    pub(super) fn resize(&mut self, size: usize) {
        let size = size.max(1);
        if size > self.size {
            let grow = size - self.size;
            let repaid = grow.min(self.owed);
            self.owed -= repaid;
            self.semaphore.add_permits(grow - repaid);
        } else {
            let cut = self.size - size;
            let taken = self.semaphore.forget_permits(cut);
            self.owed += cut - taken;
        }
        self.size = size;
    }

    /// Waits for a place; `None` only if the semaphore were closed (it never is).
    pub(super) async fn acquire(&mut self) -> Option<OwnedSemaphorePermit> {
        while self.owed > 0 {
            self.semaphore.clone().acquire_owned().await.ok()?.forget();
            self.owed -= 1;
        }
        self.semaphore.clone().acquire_owned().await.ok()
    }
}

/// This node's share of `max_in_flight` among `senders` nodes.
pub(super) fn in_flight_share(max_in_flight: u32, senders: u32) -> usize {
    (max_in_flight / senders.max(1)).max(1) as usize
}

impl CampaignEngine {
    /// Claims a chunk of campaign `id` for this node, if one is free.
    pub(super) async fn claim_chunk(&self, id: i64) -> Result<Option<CampaignChunk>, StoreError> {
        let chunk = self
            .store
            .claim_campaign_chunk(id, self.leases.holder(), self.leases.until(), self.leases.stale_before())
            .await?;
        if let Some(c) = &chunk {
            tracing::debug!(campaign = id, chunk = c.chunk, node = self.leases.holder(), "campaign chunk claimed");
        }
        Ok(chunk)
    }

    /// Sends `first` and then every chunk this node can claim, one at a time.
    pub(super) async fn send_chunks(
        self: &Arc<Self>,
        campaign: &CampaignRecord,
        first: CampaignChunk,
    ) -> Result<SendEnd, StoreError> {
        let mut chunk = first;
        loop {
            match self.send_chunk(campaign, &chunk).await? {
                ChunkEnd::Sent => {
                    self.store.release_campaign_chunk(campaign.id, chunk.chunk, self.leases.holder(), true).await?
                }
                ChunkEnd::Stopped => {
                    self.store.release_campaign_chunk(campaign.id, chunk.chunk, self.leases.holder(), false).await?;
                    return Ok(SendEnd::Elsewhere);
                }
                ChunkEnd::Lost => {
                    tracing::warn!(
                        campaign = campaign.id,
                        chunk = chunk.chunk,
                        "campaign chunk lease lost to another node"
                    );
                    return Ok(SendEnd::Elsewhere);
                }
            }
            match self.claim_chunk(campaign.id).await? {
                Some(next) => chunk = next,
                None => return self.after_sending(campaign.id).await,
            }
        }
    }

    /// Whether every chunk of campaign `id` is sent, once this node has none left to claim.
    pub(super) async fn after_sending(&self, id: i64) -> Result<SendEnd, StoreError> {
        Ok(match self.store.campaign_chunks_unsent(id).await? {
            0 => SendEnd::AllSent,
            _ => SendEnd::Elsewhere,
        })
    }

    /// Sends one chunk under its lease, kept by a task of its own while the sending goes on.
    async fn send_chunk(
        self: &Arc<Self>,
        campaign: &CampaignRecord,
        chunk: &CampaignChunk,
    ) -> Result<ChunkEnd, StoreError> {
        let control = Arc::new(ChunkControl::new(self.senders(campaign.id).await?));
        let keeper = tokio::spawn(self.clone().keep_lease(campaign.id, chunk.chunk, control.clone()));
        let sent = async {
            let todo = self.store.campaign_chunk_unsent(chunk).await?;
            self.send_paced(campaign, todo, &control).await
        }
        .await;
        keeper.abort();
        sent?;
        Ok(if control.lost() {
            ChunkEnd::Lost
        } else if control.must_stop() || self.control.is_cancelled(campaign.id) {
            ChunkEnd::Stopped
        } else {
            ChunkEnd::Sent
        })
    }

    /// How many nodes send campaign `id` now: 1 on a single node.
    async fn senders(&self, id: i64) -> Result<u32, StoreError> {
        if !self.leases.clustered() {
            return Ok(1);
        }
        let n = self.store.campaign_chunk_holders(id, sipprov_store::now_ms()).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX).max(1))
    }

    /// Renews the lease on a chunk and reads the campaign's state and senders, every
    /// [`crate::lease::LeasePolicy::renew_every`], until aborted or the lease is lost. A failed
    /// read is retried at the next turn: the lease runs out only after several.
    async fn keep_lease(self: Arc<Self>, id: i64, chunk: i64, control: Arc<ChunkControl>) {
        loop {
            tokio::time::sleep(self.leases.renew_every()).await;
            match self.store.renew_campaign_chunk(id, chunk, self.leases.holder(), self.leases.until()).await {
                Ok(true) => {}
                Ok(false) => {
                    control.lost.store(true, Ordering::Relaxed);
                    return;
                }
                Err(e) => tracing::warn!(campaign = id, chunk, error = %e, "campaign chunk lease not renewed"),
            }
            match self.store.get_campaign(id).await {
                Ok(Some(c)) if c.state == CampaignState::Running => {}
                Ok(_) => control.stopped.store(true, Ordering::Relaxed),
                Err(e) => tracing::warn!(campaign = id, error = %e, "campaign state not read"),
            }
            if let Ok(n) = self.senders(id).await {
                control.senders.store(n, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_follow_their_share() {
        let mut slots = Slots::new(4);
        let held: Vec<_> = futures_held(&mut slots, 3).await;
        // Shrinking below what is held takes the free place now and the rest as they return.
        slots.resize(1);
        assert_eq!(slots.semaphore.available_permits(), 0);
        drop(held);
        let one = slots.acquire().await;
        assert!(one.is_some());
        assert_eq!(slots.semaphore.available_permits(), 0, "one place only");
        slots.resize(3);
        assert_eq!(slots.semaphore.available_permits(), 2);
    }

    async fn futures_held(slots: &mut Slots, n: usize) -> Vec<OwnedSemaphorePermit> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(slots.acquire().await.unwrap());
        }
        out
    }

    #[test]
    fn the_in_flight_limit_is_shared() {
        assert_eq!(in_flight_share(50, 1), 50);
        assert_eq!(in_flight_share(50, 3), 16);
        assert_eq!(in_flight_share(2, 3), 1);
    }
}
