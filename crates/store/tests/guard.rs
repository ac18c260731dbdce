//! The tables the nodes of one database share to guard device files (the nonce key, Digest
//! nonce counts, failure counts per source, the PnP responder lock), on SQLite and on
//! PostgreSQL when SIPPROV_TEST_POSTGRES_URL is set.

#[allow(dead_code)] // the shared helpers; only `stores` is needed here
mod common;

use common::stores;
use sipprov_model::Mac;
use sipprov_store::{Backend, SharedFailure, ThrottleLimits};

/// The window rule of a nonce: accept counts above the highest, or unseen ones within 64 below.
fn slide(nc: u32) -> impl Fn(u32, u64) -> Option<(u32, u64)> {
    move |highest, below| {
        if nc > highest {
            let shift = nc - highest;
            let below = below.checked_shl(shift).unwrap_or(0) | 1u64.checked_shl(shift - 1).unwrap_or(0);
            return Some((nc, below));
        }
        let behind = highest - nc;
        if behind == 0 || behind > 64 || below & (1 << (behind - 1)) != 0 {
            return None;
        }
        Some((highest, below | (1 << (behind - 1))))
    }
}

#[tokio::test]
async fn the_first_secret_stored_is_the_one_every_node_gets() {
    for (store, _dir) in stores().await {
        assert_eq!(store.shared_secret("k", "first").await.unwrap(), "first");
        assert_eq!(store.shared_secret("k", "second").await.unwrap(), "first", "insert-if-absent");
        assert_eq!(store.shared_secret("other", "x").await.unwrap(), "x");
    }
}

#[tokio::test]
async fn each_nonce_count_is_accepted_once_and_expired_nonces_are_pruned() {
    for (store, _dir) in stores().await {
        let claim = |nc: u32| store.claim_nonce_count("n1", 1_000, nc, true, slide(nc));
        assert!(claim(1).await.unwrap());
        assert!(!claim(1).await.unwrap(), "replay of nc 1");
        assert!(claim(3).await.unwrap());
        assert!(claim(2).await.unwrap(), "a late count within the window");
        assert!(!claim(2).await.unwrap());
        assert!(!claim(3).await.unwrap());
        assert!(claim(100).await.unwrap());
        assert!(!claim(20).await.unwrap(), "older than the window");
        // A full table refuses nonces it does not hold yet, and still takes counts of known ones.
        assert!(!store.claim_nonce_count("n2", 1_000, 1, false, slide(1)).await.unwrap());
        assert!(store.claim_nonce_count("n1", 1_000, 101, false, slide(101)).await.unwrap());
        assert!(store.claim_nonce_count("n3", 5_000, 1, true, slide(1)).await.unwrap());
        assert_eq!(store.prune_nonces(2_000).await.unwrap(), 1, "n1 expired, n3 left");
    }
}

fn limits() -> ThrottleLimits {
    ThrottleLimits { max_failures: 3, window_ms: 60_000, block_ms: 10_000 }
}

#[tokio::test]
async fn failures_block_a_source_after_max_failures_in_total_until_the_block_ends() {
    for (store, _dir) in stores().await {
        let t = 1_000_000;
        for i in 0..3 {
            assert_eq!(store.count_failure("192.0.2.1", None, t + i, limits()).await.unwrap(), SharedFailure::Counted);
        }
        assert_eq!(store.blocked_sources(t + 3, 0, 10).await.unwrap(), vec![]);
        assert_eq!(
            store.count_failure("192.0.2.1", None, t + 3, limits()).await.unwrap(),
            SharedFailure::NowBlocked { until: t + 3 + 10_000 }
        );
        assert_eq!(store.count_failure("192.0.2.1", None, t + 4, limits()).await.unwrap(), SharedFailure::Counted);
        assert_eq!(store.blocked_sources(t + 5, 0, 10).await.unwrap(), vec![("192.0.2.1".to_string(), t + 10_003)]);
        assert!(store.blocked_sources(t + 5, t + 4, 10).await.unwrap().is_empty(), "only blocks begun since");
        assert_eq!(store.count_failure("192.0.2.2", None, t + 5, limits()).await.unwrap(), SharedFailure::Counted);
        // After the block: a fresh window.
        let later = t + 20_000;
        assert!(store.blocked_sources(later, 0, 10).await.unwrap().is_empty());
        assert_eq!(store.count_failure("192.0.2.1", None, later, limits()).await.unwrap(), SharedFailure::Counted);
        // A window that passed starts again too.
        let much_later = later + 120_000;
        for i in 0..3 {
            assert_eq!(
                store.count_failure("192.0.2.2", None, much_later + i, limits()).await.unwrap(),
                SharedFailure::Counted
            );
        }
        // Pruning: nothing blocked, every window passed.
        assert_eq!(store.prune_failures(much_later + 200_000, 60_000, 100).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn only_a_success_as_the_challenged_device_takes_a_failure_back() {
    for (store, _dir) in stores().await {
        let t = 1_000_000;
        let phone: Mac = "001565000001".parse().unwrap();
        let other: Mac = "001565000002".parse().unwrap();
        for i in 0..10 {
            assert_eq!(
                store.count_failure("192.0.2.9", Some(phone), t + i, limits()).await.unwrap(),
                SharedFailure::Counted
            );
            assert!(store.forgive_failure("192.0.2.9", phone, t + i, 60_000).await.unwrap());
        }
        assert!(!store.forgive_failure("192.0.2.9", phone, t + 20, 60_000).await.unwrap(), "nothing pending");
        store.count_failure("192.0.2.9", None, t + 21, limits()).await.unwrap();
        assert!(!store.forgive_failure("192.0.2.9", other, t + 22, 60_000).await.unwrap());
        store.count_failure("192.0.2.9", None, t + 23, limits()).await.unwrap();
        store.count_failure("192.0.2.9", None, t + 24, limits()).await.unwrap();
        assert!(matches!(
            store.count_failure("192.0.2.9", None, t + 25, limits()).await.unwrap(),
            SharedFailure::NowBlocked { .. }
        ));
    }
}

#[tokio::test]
async fn the_pnp_responder_lock_has_one_holder_and_passes_on_when_it_is_released() {
    for (store, _dir) in stores().await {
        if store.backend() != Backend::Postgres {
            assert!(store.responder_lock("lan", "a").await.is_err(), "SQLite has no contention");
            assert!(store.pnp_responders().await.unwrap().is_empty());
            continue;
        }
        let mut a = store.responder_lock("lan", "node-a").await.unwrap();
        let mut b = store.responder_lock("lan", "node-b").await.unwrap();
        assert!(a.refresh(1).await.unwrap());
        assert!(!b.refresh(2).await.unwrap(), "one holder per segment");
        assert!(a.refresh(3).await.unwrap(), "the holder keeps it");
        let now = store.pnp_responders().await.unwrap();
        assert_eq!(now.len(), 1);
        assert_eq!((now[0].segment.as_str(), now[0].holder.as_deref()), ("lan", Some("node-a")));
        a.release().await;
        let shown = store.pnp_responders().await.unwrap();
        assert_eq!(shown[0].holder, None, "a released lock has no holder");
        assert!(b.refresh(4).await.unwrap(), "taken over");
        assert_eq!(store.pnp_responders().await.unwrap()[0].holder.as_deref(), Some("node-b"));
        let mut c = store.responder_lock("other segment", "node-a").await.unwrap();
        assert!(c.refresh(5).await.unwrap(), "segments are independent");
    }
}

#[tokio::test]
async fn a_blob_is_stored_in_chunks_read_back_whole_and_removed() {
    for (store, _dir) in stores().await {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..(sipprov_store::BLOB_CHUNK * 2 + 123)).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join("blob");
        std::fs::write(&path, &content).unwrap();
        assert!(store.put_blob_from_file("aa11", &path).await.unwrap());
        assert!(!store.put_blob_from_file("aa11", &path).await.unwrap(), "stored once");
        let info = store.blob_info("aa11").await.unwrap().unwrap();
        assert_eq!((info.size, info.chunks), (content.len() as u64, 3));
        let mut back = Vec::new();
        for seq in 0..info.chunks {
            back.extend(store.blob_chunk("aa11", seq).await.unwrap());
        }
        assert!(back == content, "identical bytes");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(store.put_blob_from_file("e3b0", &empty).await.unwrap());
        let info = store.blob_info("e3b0").await.unwrap().unwrap();
        assert_eq!((info.size, info.chunks), (0, 1));
        assert!(store.blob_chunk("e3b0", 0).await.unwrap().is_empty());
        store.delete_blob("aa11").await.unwrap();
        assert_eq!(store.blob_info("aa11").await.unwrap(), None);
        assert!(store.blob_chunk("aa11", 0).await.is_err());
    }
}
