//! The audit trail: every admin change, with who made it, what changed and when.
//!
//! An entry is written by the store method that makes the change, in the same transaction
//! (the `*_audited` methods), so a change is never stored without its record nor a record
//! without its change. The caller builds the [`NewAudit`] and masks secrets in it: the store
//! knows nothing of which settings are secret.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Backend, Store, StoreError, WriteTx};

/// An audit entry to write with a change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    /// Who made the change: a token's name, a console user, `admin` (the bootstrap token) or `pnp`.
    pub actor: String,
    /// What was done, a stable name such as `device.add` or `token.revoke`.
    pub action: String,
    /// What kind of thing was changed: `device`, `group`, `settings`, `campaign`, `token`.
    pub target_kind: String,
    /// Which one (a MAC, a group or token name, a campaign id; `global` for global settings).
    pub target: String,
    /// What changed, as a JSON object; secrets already masked by the caller.
    pub detail: serde_json::Value,
}

/// An audit entry as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    /// Position in the trail: ids increase with time.
    pub id: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who made the change.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What kind of thing was changed.
    pub target_kind: String,
    /// Which one.
    pub target: String,
    /// What changed (secrets masked).
    pub detail: serde_json::Value,
}

/// Which entries to list: every filter given must match; newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Only this actor's changes.
    pub actor: Option<String>,
    /// Only changes to this target kind.
    pub target_kind: Option<String>,
    /// Only changes to this target.
    pub target: Option<String>,
    /// Only entries about this device: its own (`target_kind` `device`, `target` the MAC) and
    /// the imports that listed it.
    pub device: Option<sipprov_model::Mac>,
    /// Only entries at or after this time (ms since the epoch).
    pub since: Option<i64>,
    /// Only entries with an id below this one (the previous page's last id).
    pub before: Option<i64>,
    /// At most this many entries (the caller bounds it).
    pub limit: i64,
}

impl Store {
    /// Appends `entry` inside the caller's transaction, stamped with the current time.
    pub(crate) async fn insert_audit(&self, tx: &mut WriteTx, entry: &NewAudit) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // Two nodes appending at once would both take MAX(id) + 1; this lock (held to the
            // end of the transaction) makes them take turns. SQLite's write lock does it already.
            sqlx::query("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE").execute(&mut **tx).await?;
        }
        let max: Option<i64> =
            sqlx::query("SELECT MAX(id) AS m FROM audit").fetch_one(&mut **tx).await?.try_get("m")?;
        // Serialising a JSON value cannot fail.
        let detail = serde_json::to_string(&entry.detail).unwrap_or_else(|_| "{}".to_string());
        sqlx::query(
            "INSERT INTO audit (id, at, actor, action, target_kind, target, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(max.unwrap_or(0) + 1)
        .bind(crate::now_ms())
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target_kind)
        .bind(&entry.target)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Records a change made outside this store's other write methods (a check-sync sent, a
    /// campaign started): the entry alone, in its own transaction.
    pub async fn append_audit(&self, entry: &NewAudit) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        self.insert_audit(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The entries `query` selects, newest first.
    pub async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut sql = String::from("SELECT id, at, actor, action, target_kind, target, detail FROM audit WHERE 1 = 1");
        let mut texts = Vec::new();
        let mut numbers = Vec::new();
        for (column, value) in [("actor", &query.actor), ("target_kind", &query.target_kind), ("target", &query.target)]
        {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                texts.push(v.clone());
            }
        }
        if let Some(mac) = query.device {
            // A MAC is 12 hex digits: nothing in it is special to LIKE.
            sql.push_str(
                " AND target_kind = 'device' AND (target = ? OR (action = 'device.import' AND detail LIKE ?))",
            );
            texts.push(mac.to_string());
            texts.push(format!("%\"{mac}\"%"));
        }
        for (condition, value) in [(" AND at >= ?", query.since), (" AND id < ?", query.before)] {
            if let Some(v) = value {
                sql.push_str(condition);
                numbers.push(v);
            }
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        numbers.push(query.limit.max(0));
        let q = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
        let q = texts.into_iter().fold(q, |q, t| q.bind(t));
        let q = numbers.into_iter().fold(q, |q, n| q.bind(n));
        q.fetch_all(&self.pool).await?.iter().map(audit_from_row).collect()
    }
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target_kind: row.try_get("target_kind")?,
        target: row.try_get("target")?,
        detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(format!("audit detail: {e}")))?,
    })
}
