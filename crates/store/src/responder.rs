//! Which node answers Plug-and-Play multicast on a LAN segment, when several nodes share one
//! PostgreSQL database: the one holding the segment's advisory lock.
//!
//! The lock is session-level and taken on a connection of its own ([`ResponderLock`]), outside
//! the pool: it lasts exactly as long as that connection, so when its node dies (even by
//! `kill -9`) PostgreSQL sees the connection close, releases the lock, and the next node that
//! tries takes over. Who took it last is written in `pnp_responders` for `cluster status`;
//! [`Store::pnp_responders`] reports a holder only while the lock is actually held.

use sqlx::{AnyConnection, Connection, Row};

use crate::{Backend, Store, StoreError};

/// One segment's responder, for `cluster status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PnpResponder {
    /// The segment: a configured name, or the multicast group and port.
    pub segment: String,
    /// The node holding the segment's lock now; `None` while nobody does (its holder died and no
    /// node took over yet).
    pub holder: Option<String>,
    /// When the last holder took it (ms since the epoch).
    pub since: i64,
}

/// The advisory-lock key of a segment: a 64-bit FNV-1a hash of its name behind a fixed prefix,
/// so every node derives the same key and other applications' keys are unlikely to collide.
pub fn responder_lock_key(segment: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "sipprov pnp responder ".bytes().chain(segment.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_be_bytes(hash.to_be_bytes())
}

/// A dedicated connection that tries for, and then holds, one segment's advisory lock.
pub struct ResponderLock {
    conn: AnyConnection,
    segment: String,
    key: i64,
    holder: String,
    held: bool,
}

impl Store {
    /// A connection of its own (outside the pool) for `holder` to contend for `segment`'s
    /// responder lock. PostgreSQL only: SQLite has one node, which always answers.
    pub async fn responder_lock(&self, segment: &str, holder: &str) -> Result<ResponderLock, StoreError> {
        if self.backend != Backend::Postgres {
            return Err(StoreError::Corrupt("the PnP responder lock needs PostgreSQL".into()));
        }
        let conn = self.pool.acquire().await?.detach();
        Ok(ResponderLock {
            conn,
            segment: segment.to_string(),
            key: responder_lock_key(segment),
            holder: holder.to_string(),
            held: false,
        })
    }

    /// Each segment's responder: the node that took its lock last, shown only while the lock
    /// is held (on SQLite, nothing: there is no contention).
    pub async fn pnp_responders(&self) -> Result<Vec<PnpResponder>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        // A bigint advisory key appears in pg_locks split in two: classid the high 32 bits,
        // objid the low 32 bits, objsubid 1.
        let rows = sqlx::query(
            "SELECT r.segment, r.holder, r.since, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' \
               AND l.granted AND l.objsubid = 1 \
               AND l.classid::bigint = ((r.lock_key >> 32) & 4294967295) \
               AND l.objid::bigint = (r.lock_key & 4294967295)) AS held \
             FROM pnp_responders r ORDER BY r.segment",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let held: bool = r.try_get("held")?;
                Ok(PnpResponder {
                    segment: r.try_get("segment")?,
                    holder: if held { Some(r.try_get("holder")?) } else { None },
                    since: r.try_get("since")?,
                })
            })
            .collect()
    }
}

impl ResponderLock {
    /// Whether this connection holds the lock (as of the last [`ResponderLock::refresh`]).
    pub fn held(&self) -> bool {
        self.held
    }

    /// Takes the lock if it is free, or checks the connection that holds it is still alive.
    /// An error means the connection is gone, and the lock with it: drop this and make another.
    pub async fn refresh(&mut self, now_ms: i64) -> Result<bool, StoreError> {
        if self.held {
            sqlx::query("SELECT 1 AS one").fetch_one(&mut self.conn).await?;
            return Ok(true);
        }
        let row =
            sqlx::query("SELECT pg_try_advisory_lock($1) AS got").bind(self.key).fetch_one(&mut self.conn).await?;
        let got: bool = row.try_get("got")?;
        if got {
            sqlx::query(
                "INSERT INTO pnp_responders (segment, lock_key, holder, since) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (segment) DO UPDATE SET lock_key = excluded.lock_key, holder = excluded.holder, \
                 since = excluded.since",
            )
            .bind(&self.segment)
            .bind(self.key)
            .bind(&self.holder)
            .bind(now_ms)
            .execute(&mut self.conn)
            .await?;
            self.held = true;
        }
        Ok(got)
    }

    /// Closes the connection, releasing the lock for another node.
    pub async fn release(self) {
        let _ = self.conn.close().await;
    }
}
