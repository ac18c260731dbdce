//! What the nodes sharing one database agree on to guard device files together: the secret
//! Digest nonces are signed with, the nonce counts already accepted (so a replayed
//! `Authorization` is refused by every node), and the failure count of each source (so a scan
//! spread over the nodes is blocked after the same number of failures in total).
//!
//! The server uses these on PostgreSQL only (one SQLite node keeps them in memory); the SQL is
//! portable so both backends are tested alike. Every table is bounded by pruning: nonces by
//! their lifetime, sources by their counting window and block.

use sipprov_model::Mac;
use sqlx::Row;

use crate::{Store, StoreError};

/// Most tries of the compare-and-set that records a nonce count before giving up (each lost try
/// means another node recorded a count of the same nonce in between).
const NC_TRIES: usize = 8;

/// Devices per source whose unauthenticated challenge a success may still take back.
const FORGIVABLE: i64 = 8;

/// The failure thresholds, as the nodes' `[security]` sections give them (every node of one
/// database should be configured alike).
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures allowed per window; the next one blocks the source.
    pub max_failures: u32,
    /// The counting window, in milliseconds.
    pub window_ms: i64,
    /// How long a block lasts, in milliseconds.
    pub block_ms: i64,
}

/// What counting one failure did, cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedFailure {
    /// Counted; the source is not blocked (or was blocked already).
    Counted,
    /// This failure crossed the threshold: the source is blocked until then (ms since the epoch).
    NowBlocked {
        /// End of the block, ms since the epoch.
        until: i64,
    },
}

impl Store {
    /// The secret called `name` that every node of this database shares: the first caller
    /// stores `candidate` (insert-if-absent), every caller gets what is stored. Never log it.
    pub async fn shared_secret(&self, name: &str, candidate: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO cluster_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .execute(&self.pool)
            .await?;
        let row =
            sqlx::query("SELECT value FROM cluster_secrets WHERE name = $1").bind(name).fetch_one(&self.pool).await?;
        Ok(row.try_get("value")?)
    }

    /// Records count `nc` of Digest nonce `nonce` (issued at `issued_at`, seconds) once for the
    /// whole cluster. `slide(highest, below)` is the nonce-count window's rule: the new
    /// `(highest, below)` when `nc` may be accepted, `None` when it was seen before or is too
    /// old. `Ok(false)` means refused (a replay). Without `allow_new` (the table is full), a
    /// nonce not recorded yet is refused too.
    ///
    /// Cost: one statement for a nonce's first count, two more (a read and a conditional
    /// update on the primary key) for each later count.
    pub async fn claim_nonce_count(
        &self,
        nonce: &str,
        issued_at: i64,
        nc: u32,
        allow_new: bool,
        slide: impl Fn(u32, u64) -> Option<(u32, u64)>,
    ) -> Result<bool, StoreError> {
        if allow_new && self.insert_nonce(nonce, issued_at, nc).await? {
            return Ok(true);
        }
        for _ in 0..NC_TRIES {
            let row = sqlx::query("SELECT highest, below FROM digest_nonces WHERE nonce = $1")
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await?;
            // Pruned in between: the nonce has expired, and an expired nonce is never accepted.
            let Some(row) = row else { return Ok(false) };
            let (highest, below): (i64, i64) = (row.try_get("highest")?, row.try_get("below")?);
            let highest_u32 =
                u32::try_from(highest).map_err(|_| StoreError::Corrupt(format!("nonce count {highest}")))?;
            // The bitmap is stored as the signed 64-bit integer with the same bits.
            let Some((new_highest, new_below)) = slide(highest_u32, below as u64) else { return Ok(false) };
            let updated = sqlx::query(
                "UPDATE digest_nonces SET highest = $1, below = $2 WHERE nonce = $3 AND highest = $4 AND below = $5",
            )
            .bind(i64::from(new_highest))
            .bind(new_below as i64)
            .bind(nonce)
            .bind(highest)
            .bind(below)
            .execute(&self.pool)
            .await?;
            if updated.rows_affected() == 1 {
                return Ok(true);
            }
        }
        // Lost the race every time: refusing costs the phone one challenge, accepting could
        // let a replay through.
        Ok(false)
    }

    /// Records a nonce's first accepted count; false when the nonce is recorded already.
    async fn insert_nonce(&self, nonce: &str, issued_at: i64, nc: u32) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO digest_nonces (nonce, issued_at, highest, below) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (nonce) DO NOTHING",
        )
        .bind(nonce)
        .bind(issued_at)
        .bind(i64::from(nc))
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Forgets nonces issued before `issued_before` (seconds): they are stale everywhere.
    /// Returns how many nonces are still recorded.
    pub async fn prune_nonces(&self, issued_before: i64) -> Result<i64, StoreError> {
        sqlx::query("DELETE FROM digest_nonces WHERE issued_at < $1").bind(issued_before).execute(&self.pool).await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM digest_nonces").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Counts one failure of `source` for the whole cluster at `now` (ms), in one statement:
    /// a new window when the last one passed (or its block ended), and a block once the count
    /// passes `max_failures`. `forgivable`: the known device challenged without credentials,
    /// whose own success may take this failure back ([`Store::forgive_failure`]).
    pub async fn count_failure(
        &self,
        source: &str,
        forgivable: Option<Mac>,
        now: i64,
        limits: ThrottleLimits,
    ) -> Result<SharedFailure, StoreError> {
        // In SET, every column named is the row's value before this update (both backends).
        const ACTIVE: &str = "throttle_sources.blocked_until > $2";
        const RESET: &str = "(throttle_sources.blocked_until IS NOT NULL OR throttle_sources.window_start < $3)";
        let failures = format!(
            "CASE WHEN {ACTIVE} THEN throttle_sources.failures WHEN {RESET} THEN 1 ELSE throttle_sources.failures + 1 END"
        );
        let sql = format!(
            "INSERT INTO throttle_sources (source, window_start, failures, blocked_until, blocked_at) \
             VALUES ($1, $2, 1, CASE WHEN 1 > $4 THEN $5 ELSE NULL END, CASE WHEN 1 > $4 THEN $2 ELSE NULL END) \
             ON CONFLICT (source) DO UPDATE SET \
               window_start = CASE WHEN {ACTIVE} THEN throttle_sources.window_start WHEN {RESET} THEN $2 \
                 ELSE throttle_sources.window_start END, \
               failures = {failures}, \
               blocked_until = CASE WHEN {ACTIVE} THEN throttle_sources.blocked_until \
                 WHEN {failures} > $4 THEN $5 ELSE NULL END, \
               blocked_at = CASE WHEN {ACTIVE} THEN throttle_sources.blocked_at \
                 WHEN {failures} > $4 THEN $2 ELSE NULL END \
             RETURNING blocked_until, blocked_at"
        );
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(source)
            .bind(now)
            .bind(now.saturating_sub(limits.window_ms))
            .bind(i64::from(limits.max_failures))
            .bind(now.saturating_add(limits.block_ms))
            .fetch_one(&mut *tx)
            .await?;
        if let Some(mac) = forgivable {
            sqlx::query(
                "INSERT INTO throttle_forgivable (source, mac, pending, at) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (source, mac) DO UPDATE SET \
                   pending = CASE WHEN throttle_forgivable.at < $4 THEN 1 \
                     WHEN throttle_forgivable.pending >= $5 THEN $5 ELSE throttle_forgivable.pending + 1 END, \
                   at = $3",
            )
            .bind(source)
            .bind(mac.to_string())
            .bind(now)
            .bind(now.saturating_sub(limits.window_ms))
            .bind(FORGIVABLE)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let until: Option<i64> = row.try_get("blocked_until")?;
        let at: Option<i64> = row.try_get("blocked_at")?;
        Ok(match (until, at) {
            (Some(until), Some(at)) if at == now => SharedFailure::NowBlocked { until },
            _ => SharedFailure::Counted,
        })
    }

    /// Takes back one unauthenticated failure of `source` for device `mac` (after the source
    /// authenticated as it), if one counted within the window is pending; a blocked source stays
    /// blocked. True when one was taken back.
    pub async fn forgive_failure(&self, source: &str, mac: Mac, now: i64, window_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query(
            "UPDATE throttle_forgivable SET pending = pending - 1 \
             WHERE source = $1 AND mac = $2 AND pending > 0 AND at >= $3",
        )
        .bind(source)
        .bind(mac.to_string())
        .bind(now.saturating_sub(window_ms))
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 0 {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE throttle_sources SET failures = failures - 1 \
             WHERE source = $1 AND failures > 0 AND blocked_until IS NULL",
        )
        .bind(source)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sources blocked at `now` (ms) whose block began at or after `since` (ms; 0 for all),
    /// and until when, at most `limit` of them (the latest blocks first).
    pub async fn blocked_sources(&self, now: i64, since: i64, limit: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, blocked_until FROM throttle_sources WHERE blocked_until > $1 AND blocked_at >= $2 \
             ORDER BY blocked_until DESC LIMIT $3",
        )
        .bind(now)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("source")?, r.try_get("blocked_until")?))).collect()
    }

    /// Forgets sources whose window passed or whose block ended, and pending forgivable
    /// challenges older than the window; when more than `max_sources` remain, forgets every
    /// source that is not blocked. Returns how many sources remain.
    pub async fn prune_failures(&self, now: i64, window_ms: i64, max_sources: i64) -> Result<i64, StoreError> {
        let cutoff = now.saturating_sub(window_ms);
        sqlx::query(
            "DELETE FROM throttle_sources WHERE (blocked_until IS NULL AND window_start < $1) \
             OR (blocked_until IS NOT NULL AND blocked_until <= $2)",
        )
        .bind(cutoff)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM throttle_forgivable WHERE at < $1").bind(cutoff).execute(&self.pool).await?;
        let count = |store: &Store| {
            let pool = store.pool.clone();
            async move {
                let row = sqlx::query("SELECT COUNT(*) AS n FROM throttle_sources").fetch_one(&pool).await?;
                Ok::<i64, StoreError>(row.try_get("n")?)
            }
        };
        let mut left = count(self).await?;
        if left > max_sources {
            sqlx::query("DELETE FROM throttle_sources WHERE blocked_until IS NULL").execute(&self.pool).await?;
            left = count(self).await?;
        }
        Ok(left)
    }
}
