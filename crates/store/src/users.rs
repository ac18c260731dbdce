//! Web console users: name, role and password hash (table `users`, migration 0015).
//!
//! The store keeps what it is given: the server hashes passwords (Argon2id) and checks roles;
//! the role is stored under its stable name (`admin`, `operator`, `read-only`).

use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{Store, StoreError};

/// One console user as stored. Its `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The login name, unique.
    pub name: String,
    /// The role's stable name.
    pub role: String,
    /// The password's Argon2id hash in PHC string form.
    pub password_hash: String,
    /// When the user was created (ms since the epoch).
    pub created_at: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn user_from(row: &sqlx::any::AnyRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Adds a user with its audit entry, in one transaction; false (and nothing written) when
    /// the name is taken.
    pub async fn add_user(&self, user: &UserRecord, audit: &crate::NewAudit) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let taken =
            sqlx::query("SELECT name FROM users WHERE name = $1").bind(&user.name).fetch_optional(&mut *tx).await?;
        if taken.is_some() {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("INSERT INTO users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&user.name)
            .bind(&user.role)
            .bind(&user.password_hash)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await?;
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::User, &user.name).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query("SELECT name, role, password_hash, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from).collect()
    }

    /// One user, if the name exists.
    pub async fn user(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query("SELECT name, role, password_hash, created_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    /// Replaces a user's password hash, with its audit entry in the same transaction; false (and
    /// nothing written) when there is no such user.
    pub async fn set_user_password(
        &self,
        name: &str,
        password_hash: &str,
        audit: &crate::NewAudit,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(password_hash)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        self.finish_user_change(tx, done.rows_affected() > 0, audit).await
    }

    /// Removes a user, with its audit entry in the same transaction; false (and nothing
    /// written) when there is no such user.
    pub async fn delete_user(&self, name: &str, audit: &crate::NewAudit) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *tx).await?;
        self.finish_user_change(tx, done.rows_affected() > 0, audit).await
    }

    /// Commits a change that touched a user (with its audit entry), or rolls back one that
    /// touched none, so an entry never records a change that did not happen.
    async fn finish_user_change(
        &self,
        mut tx: crate::WriteTx,
        changed: bool,
        audit: &crate::NewAudit,
    ) -> Result<bool, StoreError> {
        if !changed {
            tx.rollback().await?;
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::User, &audit.target).await?;
        tx.commit().await?;
        Ok(true)
    }
}
