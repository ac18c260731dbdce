//! Remote phone directories: named, ordered lists of contacts (see `sipprov_model::contact`).
//!
//! A write replaces a directory's contacts as a whole, in one transaction with its audit entry,
//! so an import that fails half-way leaves the directory as it was. The caller validates the
//! contacts and the bounds first; the store enforces only the number of directories, which
//! needs the table.

use sipprov_model::contact::{Contact, MAX_DIRECTORIES};
use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{batch, now_ms, NewAudit, Store, StoreError};

/// A directory as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirectoryRecord {
    /// The directory's name, unique.
    pub name: String,
    /// Its contacts, in order.
    pub contacts: Vec<Contact>,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// When its contacts were last replaced (ms since the epoch).
    pub updated_at: i64,
}

impl Store {
    /// Every directory with its contacts, by name (the server keeps them in memory).
    pub async fn list_directories(&self) -> Result<Vec<DirectoryRecord>, StoreError> {
        let rows = sqlx::query("SELECT name, created_at, updated_at FROM directories ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.try_get("name")?;
            let contacts = self.directory_contacts(&name).await?;
            out.push(DirectoryRecord {
                contacts,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
                name,
            });
        }
        Ok(out)
    }

    async fn directory_contacts(&self, name: &str) -> Result<Vec<Contact>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, office, mobile, other FROM directory_contacts WHERE directory = $1 ORDER BY position",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Contact {
                    name: r.try_get("name")?,
                    office: r.try_get("office")?,
                    mobile: r.try_get("mobile")?,
                    other: r.try_get("other")?,
                })
            })
            .collect()
    }

    /// Creates directory `name` or replaces its contacts, writing `audit` in the same
    /// transaction. Refused with [`StoreError::Limit`] when it would be directory number
    /// `MAX_DIRECTORIES + 1`.
    pub async fn put_directory(
        &self,
        name: &str,
        contacts: &[Contact],
        audit: &NewAudit,
    ) -> Result<DirectoryRecord, StoreError> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query("SELECT created_at FROM directories WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let now = now_ms();
        let created_at = match existing {
            Some(row) => row.try_get("created_at")?,
            None => {
                let count: i64 =
                    sqlx::query("SELECT COUNT(*) AS n FROM directories").fetch_one(&mut *tx).await?.try_get("n")?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_DIRECTORIES {
                    return Err(StoreError::Limit(format!(
                        "at most {MAX_DIRECTORIES} directories; remove one before adding {name:?}"
                    )));
                }
                now
            }
        };
        sqlx::query(
            "INSERT INTO directories (name, created_at, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(created_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM directory_contacts WHERE directory = $1").bind(name).execute(&mut *tx).await?;
        let rows: Vec<(usize, &Contact)> = contacts.iter().enumerate().collect();
        for chunk in batch::chunks(&rows, 6) {
            let sql = format!(
                "INSERT INTO directory_contacts (directory, position, name, office, mobile, other) VALUES {}",
                batch::repeat("(?, ?, ?, ?, ?, ?)", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            chunk
                .iter()
                .fold(query, |q, (i, c)| {
                    q.bind(name)
                        .bind(i64::try_from(*i).unwrap_or(i64::MAX))
                        .bind(&c.name)
                        .bind(&c.office)
                        .bind(&c.mobile)
                        .bind(&c.other)
                })
                .execute(&mut *tx)
                .await?;
        }
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::Directory, name).await?;
        tx.commit().await?;
        Ok(DirectoryRecord { name: name.to_string(), contacts: contacts.to_vec(), created_at, updated_at: now })
    }

    /// Removes directory `name` and its contacts, writing `audit` in the same transaction.
    /// Returns false (and writes nothing) when there is no such directory.
    pub async fn delete_directory(&self, name: &str, audit: &NewAudit) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        // Contacts first: SQLite enforces the foreign key's cascade only with foreign keys on.
        sqlx::query("DELETE FROM directory_contacts WHERE directory = $1").bind(name).execute(&mut *tx).await?;
        let gone = sqlx::query("DELETE FROM directories WHERE name = $1").bind(name).execute(&mut *tx).await?;
        if gone.rows_affected() == 0 {
            return Ok(false);
        }
        self.insert_audit(&mut tx, audit).await?;
        self.record_change(&mut tx, ChangeKind::Directory, name).await?;
        tx.commit().await?;
        Ok(true)
    }
}
