//! What device-file access keeps across restarts: which first-fetch windows were used, and the
//! HTTP credentials the server generated for devices that had none.

use sipprov_model::Mac;
use sqlx::Row;

use crate::change_feed::ChangeKind;
use crate::{mac_column, Store, StoreError};

/// HTTP credentials the server generated for one device. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedCredentials {
    /// The Digest/Basic user name.
    pub username: String,
    /// The password (secret: never logged or listed).
    pub password: String,
}

impl std::fmt::Debug for GeneratedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedCredentials").field("username", &self.username).field("password", &"********").finish()
    }
}

/// The outcome of [`Store::claim_first_fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstFetchClaim {
    /// This fetch is the first since the window opened; the device's generated credentials (if
    /// it was given some, now or earlier) come with it.
    Claimed(Option<GeneratedCredentials>),
    /// Another fetch was recorded since the window opened: the window is closed.
    AlreadyUsed,
}

/// What the store holds of one device's first-fetch window and generated credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceAccess {
    /// When an operator last re-opened its window (ms), if ever.
    pub unlocked_at: Option<i64>,
    /// When it last used its window (ms), if ever.
    pub first_fetch_at: Option<i64>,
    /// Its generated credentials, if it was given some.
    pub credentials: Option<GeneratedCredentials>,
}

impl Store {
    /// One device's window state and generated credentials, as stored.
    pub async fn device_access(&self, mac: Mac) -> Result<DeviceAccess, StoreError> {
        let key = mac.to_string();
        let unlocked_at = sqlx::query("SELECT opened_at FROM device_unlocks WHERE mac = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("opened_at"))
            .transpose()?;
        let first_fetch_at = sqlx::query("SELECT fetched_at FROM device_first_fetch WHERE mac = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get("fetched_at"))
            .transpose()?;
        let credentials = sqlx::query("SELECT username, password FROM device_credentials WHERE mac = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| -> Result<_, sqlx::Error> {
                Ok(GeneratedCredentials { username: r.try_get("username")?, password: r.try_get("password")? })
            })
            .transpose()?;
        Ok(DeviceAccess { unlocked_at, first_fetch_at, credentials })
    }

    /// Records `at` as `mac`'s first fetch unless one was already recorded at or after
    /// `opened_at`, in one transaction with storing `credentials` when the device has none
    /// stored yet. Conditional, so that of two fetches racing (in this process or another
    /// server sharing the database) exactly one claims the window.
    pub async fn claim_first_fetch(
        &self,
        mac: Mac,
        opened_at: i64,
        at: i64,
        credentials: Option<&GeneratedCredentials>,
    ) -> Result<FirstFetchClaim, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO device_first_fetch (mac, fetched_at) VALUES ($1, $2) \
             ON CONFLICT (mac) DO UPDATE SET fetched_at = excluded.fetched_at \
             WHERE device_first_fetch.fetched_at < $3",
        )
        .bind(mac.to_string())
        .bind(at)
        .bind(opened_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls it back: nothing was written.
            return Ok(FirstFetchClaim::AlreadyUsed);
        }
        if let Some(c) = credentials {
            sqlx::query(
                "INSERT INTO device_credentials (mac, username, password, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (mac) DO NOTHING",
            )
            .bind(mac.to_string())
            .bind(&c.username)
            .bind(&c.password)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        let stored = sqlx::query("SELECT username, password FROM device_credentials WHERE mac = $1")
            .bind(mac.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let stored = stored
            .map(|r| -> Result<_, sqlx::Error> {
                Ok(GeneratedCredentials { username: r.try_get("username")?, password: r.try_get("password")? })
            })
            .transpose()?;
        self.record_change(&mut tx, ChangeKind::Access, &mac.to_string()).await?;
        tx.commit().await?;
        Ok(FirstFetchClaim::Claimed(stored))
    }

    /// Every first fetch recorded at or after `since` (ms since the epoch): what a restarting
    /// server needs to keep used windows closed.
    pub async fn first_fetches_since(&self, since: i64) -> Result<Vec<(Mac, i64)>, StoreError> {
        let rows = sqlx::query("SELECT mac, fetched_at FROM device_first_fetch WHERE fetched_at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((mac_column(r, "mac")?, r.try_get("fetched_at")?))).collect()
    }

    /// Every device's generated credentials.
    pub async fn generated_credentials(&self) -> Result<Vec<(Mac, GeneratedCredentials)>, StoreError> {
        let rows = sqlx::query("SELECT mac, username, password FROM device_credentials").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let creds = GeneratedCredentials { username: r.try_get("username")?, password: r.try_get("password")? };
                Ok((mac_column(r, "mac")?, creds))
            })
            .collect()
    }
}
