//! Groups and the global settings level.

use std::collections::BTreeSet;

use sipprov_model::Settings;
use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{batch, now_ms, settings_from_json, settings_to_json, NewAudit, Store, StoreError, WriteTx};

/// A named group of devices and its settings (merged between global and device).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupRecord {
    /// The group's name, unique.
    pub name: String,
    /// Settings merged between the global and the device layer.
    pub settings: Settings,
    /// When the group was created (ms since the epoch).
    pub created_at: i64,
    /// When it was last changed (ms since the epoch).
    pub updated_at: i64,
}

impl Store {
    /// All groups, by name.
    pub async fn list_groups(&self) -> Result<Vec<GroupRecord>, StoreError> {
        let rows = sqlx::query("SELECT name, settings, created_at, updated_at FROM groups ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                let settings = settings_from_json(&r.try_get::<String, _>("settings")?, &format!("group {name}"))?;
                Ok(GroupRecord {
                    settings,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    name,
                })
            })
            .collect()
    }

    /// One group.
    pub async fn get_group(&self, name: &str) -> Result<Option<GroupRecord>, StoreError> {
        Ok(self.list_groups().await?.into_iter().find(|g| g.name == name))
    }

    /// Applies a settings patch to a group, creating the group if needed. Returns the new state.
    pub async fn patch_group(&self, name: &str, patch: &Settings) -> Result<GroupRecord, StoreError> {
        self.patch_group_with(name, patch, None).await
    }

    /// As [`Self::patch_group`], writing `audit` in the same transaction.
    pub async fn patch_group_audited(
        &self,
        name: &str,
        patch: &Settings,
        audit: &NewAudit,
    ) -> Result<GroupRecord, StoreError> {
        self.patch_group_with(name, patch, Some(audit)).await
    }

    async fn patch_group_with(
        &self,
        name: &str,
        patch: &Settings,
        audit: Option<&NewAudit>,
    ) -> Result<GroupRecord, StoreError> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query("SELECT settings, created_at FROM groups WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let now = now_ms();
        let (mut settings, created_at) = match existing {
            Some(row) => (
                settings_from_json(&row.try_get::<String, _>("settings")?, &format!("group {name}"))?,
                row.try_get("created_at")?,
            ),
            None => (Settings::new(), now),
        };
        settings.apply(patch);
        sqlx::query(
            "INSERT INTO groups (name, settings, created_at, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(settings_to_json(&settings))
        .bind(created_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, audit).await?;
        }
        self.record_change(&mut tx, ChangeKind::Group, name).await?;
        tx.commit().await?;
        Ok(GroupRecord { name: name.to_string(), settings, created_at, updated_at: now })
    }

    /// Ensures the named groups exist (used by device imports), inside the caller's
    /// transaction: each name once, a few multi-row INSERTs for a whole import.
    pub(crate) async fn ensure_groups<'n>(
        &self,
        tx: &mut WriteTx,
        names: impl Iterator<Item = &'n str>,
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = names.collect::<BTreeSet<_>>().into_iter().collect();
        let now = now_ms();
        for chunk in batch::chunks(&names, 3) {
            let sql = format!(
                "INSERT INTO groups (name, settings, created_at, updated_at) VALUES {} ON CONFLICT (name) DO NOTHING",
                batch::repeat("(?, '{}', ?, ?)", chunk.len())
            );
            let query = sqlx::query(sqlx::AssertSqlSafe(self.numbered(&sql)));
            chunk.iter().fold(query, |q, name| q.bind(*name).bind(now).bind(now)).execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The global settings level.
    pub async fn global_settings(&self) -> Result<Settings, StoreError> {
        let row = sqlx::query("SELECT settings FROM global_settings WHERE id = 1").fetch_optional(&self.pool).await?;
        match row {
            Some(r) => settings_from_json(&r.try_get::<String, _>("settings")?, "the global level"),
            None => Ok(Settings::new()),
        }
    }

    /// Applies a patch to the global settings. Returns the new state.
    pub async fn patch_global_settings(&self, patch: &Settings) -> Result<Settings, StoreError> {
        self.patch_global_settings_with(patch, None).await
    }

    /// As [`Self::patch_global_settings`], writing `audit` in the same transaction.
    pub async fn patch_global_settings_audited(
        &self,
        patch: &Settings,
        audit: &NewAudit,
    ) -> Result<Settings, StoreError> {
        self.patch_global_settings_with(patch, Some(audit)).await
    }

    async fn patch_global_settings_with(
        &self,
        patch: &Settings,
        audit: Option<&NewAudit>,
    ) -> Result<Settings, StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT settings FROM global_settings WHERE id = 1").fetch_optional(&mut *tx).await?;
        let mut settings = match row {
            Some(r) => settings_from_json(&r.try_get::<String, _>("settings")?, "the global level")?,
            None => Settings::new(),
        };
        settings.apply(patch);
        sqlx::query(
            "INSERT INTO global_settings (id, settings, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(settings_to_json(&settings))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if let Some(audit) = audit {
            self.insert_audit(&mut tx, audit).await?;
        }
        self.record_change(&mut tx, ChangeKind::Global, "").await?;
        tx.commit().await?;
        Ok(settings)
    }
}
