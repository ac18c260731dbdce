//! Template override versions: append-only history per template name (`yealink/mac.cfg.j2`);
//! the highest version serves, a version without a body means the built-in template. The store
//! does not validate bodies: the server's template service does, before it calls in here.

use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{Store, StoreError};

/// One stored version of a template override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    /// The template's relative name, e.g. `yealink/mac.cfg.j2`.
    pub name: String,
    /// 1, 2, …: per name, in the order they were made.
    pub version: i64,
    /// The override's source; `None` means back to the built-in template.
    pub body: Option<String>,
    /// When it was made (ms since the epoch).
    pub created_at: i64,
    /// Who made it (token or user name, or `import` for files imported at start).
    pub author: String,
    /// Why, when the author said.
    pub comment: Option<String>,
}

/// What a new version carries; the store numbers it.
#[derive(Debug, Clone, Copy)]
pub struct NewTemplateVersion<'a> {
    /// The template's relative name.
    pub name: &'a str,
    /// The source, or `None` for "back to built-in".
    pub body: Option<&'a str>,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who.
    pub author: &'a str,
    /// Why, if said.
    pub comment: Option<&'a str>,
}

impl Store {
    /// Appends a version of `new.name`, numbered one past its latest, in one transaction, and
    /// returns the number given.
    pub async fn add_template_version(&self, new: NewTemplateVersion<'_>) -> Result<i64, StoreError> {
        self.add_template_version_audited(new, None).await
    }

    /// [`Store::add_template_version`], with its audit entry (when given) written in the same
    /// transaction, so no version exists without its record. The entry's `detail` gains the
    /// version number taken.
    pub async fn add_template_version_audited(
        &self,
        new: NewTemplateVersion<'_>,
        audit: Option<&crate::NewAudit>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM template_versions WHERE name = $1")
            .bind(new.name)
            .fetch_one(&mut *tx)
            .await?;
        let version: i64 = row.try_get::<i64, _>("v")? + 1;
        sqlx::query(
            "INSERT INTO template_versions (name, version, body, created_at, author, comment) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new.name)
        .bind(version)
        .bind(new.body)
        .bind(new.at)
        .bind(new.author)
        .bind(new.comment)
        .execute(&mut *tx)
        .await?;
        if let Some(entry) = audit {
            let mut entry = entry.clone();
            if let Some(detail) = entry.detail.as_object_mut() {
                detail.insert("version".into(), version.into());
            }
            self.insert_audit(&mut tx, &entry).await?;
        }
        self.record_change(&mut tx, ChangeKind::Template, new.name).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Every version of `name`, oldest first.
    pub async fn template_versions(&self, name: &str) -> Result<Vec<TemplateVersion>, StoreError> {
        let sql = "SELECT name, version, body, created_at, author, comment FROM template_versions \
                   WHERE name = $1 ORDER BY version";
        let rows = sqlx::query(sql).bind(name).fetch_all(&self.pool).await?;
        rows.iter().map(version_from_row).collect()
    }

    /// The latest version of every template that has one (including "back to built-in" ones).
    pub async fn current_template_versions(&self) -> Result<Vec<TemplateVersion>, StoreError> {
        let sql = "SELECT name, version, body, created_at, author, comment FROM template_versions t \
                   WHERE version = (SELECT MAX(version) FROM template_versions l WHERE l.name = t.name) ORDER BY name";
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(version_from_row).collect()
    }
}

fn version_from_row(r: &sqlx::any::AnyRow) -> Result<TemplateVersion, StoreError> {
    Ok(TemplateVersion {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        author: r.try_get("author")?,
        comment: r.try_get("comment")?,
    })
}
