//! Named API tokens: a name, a role and the token's SHA-256, never the token itself.
//!
//! The role is stored by its name (`admin`, `operator`, `read-only`); the server parses it. Creating
//! and revoking write their audit entry in the same transaction.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{NewAudit, Store, StoreError};

/// A token as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRecord {
    /// The name it was created under (unique).
    pub name: String,
    /// The role's stable name.
    pub role: String,
    /// Lower-case hex SHA-256 of the token.
    pub token_sha256: String,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it was last used, roughly (ms since the epoch).
    pub last_used_at: Option<i64>,
}

impl Store {
    /// Every token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, role, token_sha256, created_at, created_by, last_used_at FROM api_tokens ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Stores a new token with its audit entry; fails with [`StoreError::Duplicate`] when the name
    /// is taken.
    pub async fn insert_token_audited(&self, token: &TokenRecord, audit: &NewAudit) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let taken = sqlx::query("SELECT name FROM api_tokens WHERE name = $1")
            .bind(&token.name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Duplicate(format!("a token named {:?} already exists", token.name)));
        }
        sqlx::query(
            "INSERT INTO api_tokens (name, role, token_sha256, created_at, created_by, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&token.name)
        .bind(&token.role)
        .bind(&token.token_sha256)
        .bind(token.created_at)
        .bind(&token.created_by)
        .execute(&mut *tx)
        .await?;
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::Token, &token.name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the token `name` with its audit entry; `Ok(false)` when there is none.
    pub async fn revoke_token_audited(&self, name: &str, audit: &NewAudit) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::Token, name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records when the token `name` was last used.
    pub async fn touch_token(&self, name: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE name = $1")
            .bind(name)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        token_sha256: row.try_get("token_sha256")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?,
    })
}
