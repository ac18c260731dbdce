//! Leases: what one node of a cluster holds for a while and renews while it works on it.
//!
//! Two kinds, both a holder (the node's id) and an expiry (ms since the epoch):
//!
//! - a campaign's chunks (`campaign_chunks`): the campaign's devices split into ranges of
//!   MACs when it is created (each chunk keeps its MACs, see `selection`), each sent by the
//!   node holding its lease. A chunk whose lease ran
//!   out is claimed again by any node ([`Store::claim_campaign_chunk`]), which sends again to
//!   its devices without an outcome;
//! - named leases (`leases`): one holder at a time for a whole job, such as the node driving a
//!   rollout or the one watching a campaign's confirmations ([`Store::acquire_lease`]).
//!
//! Every claim is one statement that re-checks the lease it takes: on PostgreSQL
//! `SELECT … FOR UPDATE SKIP LOCKED` under an `UPDATE`, or an upsert whose `WHERE` is evaluated
//! on the row it locked, so two nodes never hold the same chunk or name. On SQLite the write
//! transaction already serializes them. Callers pass `stale_before`, the time before which an
//! expiry counts as run out: the current time on a cluster, `i64::MAX` for a single node that
//! takes back whatever its previous life held.

use sipprov_model::Mac;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Backend, Store, StoreError, WriteTx};

/// MACs are stored as 12 lower-case hexadecimal digits: these bounds take them all.
const ALL_MACS: (&str, &str) = ("", "zzzzzzzzzzzz");

/// A chunk of a campaign: the devices whose MAC is in `first_mac..=last_mac`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignChunk {
    /// The campaign.
    pub campaign_id: i64,
    /// Its number within the campaign, from 0.
    pub chunk: i64,
    /// The lowest MAC of the range.
    pub first_mac: String,
    /// The highest MAC of the range.
    pub last_mac: String,
}

/// A lease as `sipprov cluster status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeaseRecord {
    /// What is held: `campaign 3 chunk 5`, `rollout:2`, `campaign:3`.
    pub what: String,
    /// The holder's node id (`name/pid/random`).
    pub holder: String,
    /// When it runs out unless renewed (ms since the epoch); in the past when its holder
    /// stopped renewing it and no other node has taken it over yet.
    pub expires_at: i64,
}

/// How many devices one chunk of a campaign of `devices` takes on `backend`.
///
/// SQLite has one node: the whole campaign is one chunk, sent as before chunks existed. On
/// PostgreSQL about sixteen chunks, so that the nodes share even a small campaign, of 100 to
/// 1,000 devices, so that a big one does not spend its time claiming.
pub fn campaign_chunk_size(backend: Backend, devices: usize) -> usize {
    match backend {
        Backend::Sqlite => devices.max(1),
        Backend::Postgres => (devices / 16).clamp(100, 1000),
    }
}

fn chunk_from_row(r: &AnyRow) -> Result<CampaignChunk, StoreError> {
    Ok(CampaignChunk {
        campaign_id: r.try_get("campaign_id")?,
        chunk: r.try_get("chunk")?,
        first_mac: r.try_get("first_mac")?,
        last_mac: r.try_get("last_mac")?,
    })
}

impl Store {
    /// Splits a new campaign's devices (`macs`, in order, each once) into chunks (see
    /// [`campaign_chunk_size`]), each keeping its MACs (see `selection`), in the campaign's
    /// transaction.
    pub(crate) async fn insert_campaign_chunks(
        &self,
        tx: &mut WriteTx,
        id: i64,
        macs: &[Mac],
    ) -> Result<(), StoreError> {
        let size = campaign_chunk_size(self.backend, macs.len());
        let chunks: Vec<(String, String, &[Mac])> = match self.backend {
            Backend::Sqlite => vec![(ALL_MACS.0.into(), ALL_MACS.1.into(), macs)],
            Backend::Postgres => {
                macs.chunks(size).filter_map(|c| Some((c.first()?.to_string(), c.last()?.to_string(), c))).collect()
            }
        };
        for (n, (first, last, chunk)) in chunks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO campaign_chunks (campaign_id, chunk, first_mac, last_mac, sent, holder, lease_until, macs) \
                 VALUES ($1, $2, $3, $4, 0, NULL, 0, $5)",
            )
            .bind(id)
            .bind(n as i64)
            .bind(first)
            .bind(last)
            .bind(crate::selection::pack(chunk))
            // Not kept prepared, with its MACs bound (see `selection::pack`).
            .persistent(false)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Claims the first chunk of campaign `id` not sent yet whose lease is free, ran out
    /// before `stale_before`, or is `holder`'s own, for `holder` until `until`. `None` when
    /// every unsent chunk is held by another node (or none is left).
    pub async fn claim_campaign_chunk(
        &self,
        id: i64,
        holder: &str,
        until: i64,
        stale_before: i64,
    ) -> Result<Option<CampaignChunk>, StoreError> {
        // The inner SELECT picks the row; on PostgreSQL it locks it, skipping rows another
        // claimer has locked, and re-checks the condition on the row's latest version.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE campaign_chunks SET holder = $2, lease_until = $3 WHERE campaign_id = $1 AND chunk = \
             (SELECT chunk FROM campaign_chunks WHERE campaign_id = $1 AND sent = 0 \
              AND (holder IS NULL OR holder = $2 OR lease_until < $4) ORDER BY chunk LIMIT 1{lock}) \
             RETURNING campaign_id, chunk, first_mac, last_mac"
        );
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(holder)
            .bind(until)
            .bind(stale_before)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.as_ref().map(chunk_from_row).transpose()
    }

    /// Extends `holder`'s lease on a chunk to `until`; false when it is no longer `holder`'s
    /// (another node took it over) or the chunk is sent.
    pub async fn renew_campaign_chunk(
        &self,
        id: i64,
        chunk: i64,
        holder: &str,
        until: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE campaign_chunks SET lease_until = $4 WHERE campaign_id = $1 AND chunk = $2 AND holder = $3 AND sent = 0",
        )
        .bind(id)
        .bind(chunk)
        .bind(holder)
        .bind(until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends `holder`'s lease on a chunk: `sent` when every device of it has an outcome,
    /// otherwise (a cancelled campaign) the chunk is left for whoever claims it next.
    pub async fn release_campaign_chunk(
        &self,
        id: i64,
        chunk: i64,
        holder: &str,
        sent: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE campaign_chunks SET sent = $4, holder = NULL, lease_until = 0 \
             WHERE campaign_id = $1 AND chunk = $2 AND holder = $3",
        )
        .bind(id)
        .bind(chunk)
        .bind(holder)
        .bind(i64::from(sent))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many chunks of campaign `id` are not sent yet.
    pub async fn campaign_chunks_unsent(&self, id: i64) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM campaign_chunks WHERE campaign_id = $1 AND sent = 0")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// How many nodes hold a lease, running at `now`, on an unsent chunk of campaign `id`:
    /// what its rate and in-flight limit are shared between.
    pub async fn campaign_chunk_holders(&self, id: i64, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT holder) AS n FROM campaign_chunks \
             WHERE campaign_id = $1 AND sent = 0 AND holder IS NOT NULL AND lease_until >= $2",
        )
        .bind(id)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Puts every chunk of campaign `id` back to unsent (a retry), in the retry's transaction.
    pub(crate) async fn reopen_campaign_chunks(&self, tx: &mut WriteTx, id: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE campaign_chunks SET sent = 0, holder = NULL, lease_until = 0 WHERE campaign_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Takes or renews the named lease `name` for `holder` until `until`: true when `holder`
    /// has it now (it was free, `holder`'s own, or ran out before `stale_before`).
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: i64,
        stale_before: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // The upsert's WHERE is evaluated on the existing row, locked: of two nodes racing
        // for a lease that ran out, the second sees the first one's fresh expiry.
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < $4 RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(stale_before)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.is_some())
    }

    /// Gives up `holder`'s named lease `name` (nothing when another node holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every lease held, chunks of running campaigns and named leases, by what they hold: for
    /// `sipprov cluster status`. An expiry in the past means its holder stopped renewing it.
    /// (A chunk left held by a node that died before its campaign was cancelled is not a lease
    /// any more: nobody will send it.)
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT 'campaign ' || CAST(c.campaign_id AS TEXT) || ' chunk ' || CAST(c.chunk AS TEXT) AS what, \
             c.holder AS holder, c.lease_until AS expires_at FROM campaign_chunks c \
             JOIN campaigns k ON k.id = c.campaign_id \
             WHERE c.sent = 0 AND c.holder IS NOT NULL AND k.state = 'running' \
             UNION ALL SELECT name AS what, holder, expires_at FROM leases ORDER BY what",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRecord {
                    what: r.try_get("what")?,
                    holder: r.try_get("holder")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }
}
