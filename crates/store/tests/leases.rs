//! Leases against a real SQLite file (and PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set):
//! a campaign's chunks cover its devices once, two claimers never hold the same chunk, a lease
//! that ran out is taken over and its old holder's renewal then fails, a retry reopens the
//! chunks; named leases have one holder at a time; every lease is listed.

// `common::device` is for the tests of other files.
#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;

use common::stores;
use sipprov_model::Mac;
use sipprov_store::{campaign_chunk_size, Backend, CampaignChunk, NewCampaign, NotifyResult, Store};

fn new_campaign() -> NewCampaign {
    NewCampaign {
        start_at: 0,
        reboot: false,
        rate: 10,
        max_in_flight: 5,
        confirm_window_ms: 1_000,
        selector: "--all".into(),
    }
}

fn macs(n: u32) -> Vec<Mac> {
    // Out of order on purpose: chunks are ranges of the sorted MACs.
    (0..n).rev().map(|i| format!("0015650{i:05x}").parse().unwrap()).collect()
}

/// Claims chunks of `id` for `holder` until none is left to it.
async fn claim_all(store: Store, id: i64, holder: &'static str) -> Vec<CampaignChunk> {
    let mut got = Vec::new();
    while let Some(c) = store.claim_campaign_chunk(id, holder, i64::MAX / 2, 0).await.unwrap() {
        // Marked sent at once, so that the same holder's next claim moves on.
        store.release_campaign_chunk(id, c.chunk, holder, true).await.unwrap();
        got.push(c);
        tokio::task::yield_now().await;
    }
    got
}

#[tokio::test]
async fn two_claimers_never_get_the_same_chunk() {
    for (store, _dir) in stores().await {
        let all = macs(2_000);
        let c = store.create_campaign(&new_campaign(), &all).await.unwrap();
        let expected = 2_000usize.div_ceil(campaign_chunk_size(store.backend(), 2_000));
        if store.backend() == Backend::Postgres {
            assert!(expected > 1, "a cluster shares even a small campaign");
        }
        let (a, b) = tokio::join!(
            tokio::spawn(claim_all(store.clone(), c.id, "node-a")),
            tokio::spawn(claim_all(store.clone(), c.id, "node-b"))
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let numbers: Vec<i64> = a.iter().chain(&b).map(|c| c.chunk).collect();
        let distinct: BTreeSet<i64> = numbers.iter().copied().collect();
        assert_eq!(numbers.len(), distinct.len(), "a chunk was claimed twice: {numbers:?}");
        assert_eq!(distinct.len(), expected, "every chunk was claimed once");
        assert_eq!(store.campaign_chunks_unsent(c.id).await.unwrap(), 0);
        // The chunks cover every device once.
        let mut covered = Vec::new();
        for chunk in a.iter().chain(&b) {
            covered.extend(store.campaign_chunk_unsent(chunk).await.unwrap());
        }
        covered.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(covered, want);
    }
}

#[tokio::test]
async fn a_lease_that_ran_out_is_taken_over() {
    for (store, _dir) in stores().await {
        let all = macs(300);
        let c = store.create_campaign(&new_campaign(), &all).await.unwrap();
        let first = store.claim_campaign_chunk(c.id, "node-a", 1_000, 500).await.unwrap().unwrap();
        assert_eq!(first.chunk, 0);
        // Node a's own claim again gives it back its chunk (a driver that stopped on an error).
        assert_eq!(store.claim_campaign_chunk(c.id, "node-a", 1_000, 500).await.unwrap().unwrap().chunk, 0);
        // While the lease runs, node b gets another chunk, or none on a single-chunk campaign.
        let other = store.claim_campaign_chunk(c.id, "node-b", 1_000, 500).await.unwrap();
        assert!(other.as_ref().is_none_or(|o| o.chunk != 0), "{other:?}");
        assert_eq!(store.campaign_chunk_holders(c.id, 500).await.unwrap(), 1 + i64::from(other.is_some()));
        // Once it ran out, node c takes chunk 0 over, and node a's renewal fails.
        let taken = store.claim_campaign_chunk(c.id, "node-c", 5_000, 2_000).await.unwrap().unwrap();
        assert_eq!(taken.chunk, 0);
        assert!(!store.renew_campaign_chunk(c.id, 0, "node-a", 3_000).await.unwrap());
        assert!(store.renew_campaign_chunk(c.id, 0, "node-c", 6_000).await.unwrap());
        // Node a's release touches nothing now.
        store.release_campaign_chunk(c.id, 0, "node-a", true).await.unwrap();
        let leases = store.leases().await.unwrap();
        let zero = leases.iter().find(|l| l.what == format!("campaign {} chunk 0", c.id)).unwrap();
        assert_eq!((zero.holder.as_str(), zero.expires_at), ("node-c", 6_000));
        // A cancelled campaign's chunks are nobody's lease any more.
        store.set_campaign_state(c.id, sipprov_model::CampaignState::Cancelled).await.unwrap();
        assert!(!store.leases().await.unwrap().iter().any(|l| l.what.starts_with("campaign ")));
    }
}

#[tokio::test]
async fn a_taken_over_chunk_resends_what_had_no_outcome() {
    for (store, _dir) in stores().await {
        let all = macs(3);
        let c = store.create_campaign(&new_campaign(), &all).await.unwrap();
        let chunk = store.claim_campaign_chunk(c.id, "node-a", 1_000, 0).await.unwrap().unwrap();
        // Node a marked two devices sending, got one outcome, and died.
        store.mark_sending(c.id, &all[..2]).await.unwrap();
        let ok = NotifyResult {
            result: sipprov_model::CheckSyncResult::Ok,
            status: Some(200),
            reason: "OK".into(),
            expected_file: None,
            at: 1,
        };
        store.record_notify_results(c.id, &[(all[0], ok)]).await.unwrap();
        let taken = store.claim_campaign_chunk(c.id, "node-b", 9_000, 2_000).await.unwrap().unwrap();
        assert_eq!(taken.chunk, chunk.chunk);
        let mut left = store.campaign_chunk_unsent(&taken).await.unwrap();
        left.sort();
        let mut want = vec![all[1], all[2]];
        want.sort();
        assert_eq!(left, want, "the device in flight and the one not sent, not the one with an outcome");
    }
}

#[tokio::test]
async fn a_retry_reopens_the_chunks() {
    for (store, _dir) in stores().await {
        let all = macs(2);
        let c = store.create_campaign(&new_campaign(), &all).await.unwrap();
        claim_all(store.clone(), c.id, "node-a").await;
        assert_eq!(store.campaign_chunks_unsent(c.id).await.unwrap(), 0);
        let failed = NotifyResult {
            result: sipprov_model::CheckSyncResult::Timeout,
            status: None,
            reason: "no answer".into(),
            expected_file: None,
            at: 1,
        };
        let ok = NotifyResult { result: sipprov_model::CheckSyncResult::Ok, status: Some(200), ..failed.clone() };
        store.record_notify_results(c.id, &[(all[0], failed), (all[1], ok)]).await.unwrap();
        store.set_campaign_state(c.id, sipprov_model::CampaignState::Done).await.unwrap();
        assert_eq!(store.retry_campaign_audited(c.id, 10, None).await.unwrap(), 1);
        assert!(store.campaign_chunks_unsent(c.id).await.unwrap() > 0);
        let chunk = store.claim_campaign_chunk(c.id, "node-b", 1_000, 0).await.unwrap().unwrap();
        assert_eq!(store.campaign_chunk_unsent(&chunk).await.unwrap(), vec![all[0]]);
    }
}

#[tokio::test]
async fn a_named_lease_has_one_holder() {
    for (store, _dir) in stores().await {
        assert!(store.acquire_lease("rollout:1", "node-a", 1_000, 500).await.unwrap());
        assert!(store.acquire_lease("rollout:1", "node-a", 1_500, 500).await.unwrap(), "renewed by its holder");
        assert!(!store.acquire_lease("rollout:1", "node-b", 2_000, 1_000).await.unwrap(), "still running");
        // Two claimers racing for it once it ran out: one wins.
        let (b, c) = tokio::join!(
            store.acquire_lease("rollout:1", "node-b", 9_000, 2_000),
            store.acquire_lease("rollout:1", "node-c", 9_000, 2_000)
        );
        assert!(b.unwrap() ^ c.unwrap(), "exactly one of two racing claimers holds it");
        assert!(!store.acquire_lease("rollout:1", "node-a", 3_000, 2_000).await.unwrap(), "its old holder lost it");
        let leases = store.leases().await.unwrap();
        let held = leases.iter().find(|l| l.what == "rollout:1").unwrap();
        assert!(held.holder == "node-b" || held.holder == "node-c");
        assert_eq!(held.expires_at, 9_000);
        // Released by its holder only.
        store.release_lease("rollout:1", "node-a").await.unwrap();
        assert!(store.leases().await.unwrap().iter().any(|l| l.what == "rollout:1"));
        store.release_lease("rollout:1", &held.holder).await.unwrap();
        assert!(!store.leases().await.unwrap().iter().any(|l| l.what == "rollout:1"));
        assert!(store.acquire_lease("rollout:1", "node-a", 1, 0).await.unwrap(), "free again");
    }
}
