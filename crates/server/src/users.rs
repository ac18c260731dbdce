//! Web console users: adding, listing, changing passwords, removing, and checking a login.
//!
//! Passwords are stored as Argon2id hashes (RustCrypto `argon2`, its default parameters:
//! 19 MiB, 2 passes, 1 lane, the minimum OWASP's password storage guide recommends) in PHC
//! string form, with a random 16-byte salt each. A login costs one Argon2 verification whether
//! the user exists or not (an unknown name is checked against a hash of a random password made
//! at start), so neither the answer nor its timing tells which names exist. Hashing runs on the
//! blocking pool, off the async workers.
//!
//! Changing a user's password or removing the user ends the sessions opened before
//! ([`Users::still_valid`]), which the console asks on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use sipprov_api::{Role, User, MIN_PASSWORD_LEN};
use sipprov_store::{Store, StoreError, UserRecord};

use crate::access::{audit, Actor};

/// The longest password accepted: hashing is deliberately slow, and a megabyte of password
/// should not make it slower.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a user operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The request is wrong; `field` names the member at fault (`name`, `password`).
    #[error("{message}")]
    Invalid {
        /// The request member at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A user of that name exists already.
    #[error("user {0:?} already exists")]
    Taken(String),
    /// No user of that name.
    #[error("user {0:?} not found")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed (a bug or an exhausted blocking pool, not the caller's fault).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    /// The user's name.
    pub name: String,
    /// The user's role.
    pub role: Role,
}

/// The console users, over the store.
pub struct Users {
    store: Store,
    /// A hash of a random password, checked for unknown names so they cost what known ones do.
    decoy: String,
    /// When each user's password last changed or the user was removed, in this process:
    /// sessions opened before then are over.
    revoked: Mutex<HashMap<String, i64>>,
    /// Argon2 runs allowed at once. Each takes 19 MiB and a core for tens of milliseconds, and a
    /// login form answers anyone who reaches the admin listener: without this bound, many
    /// concurrent logins would each hold a blocking thread and its memory. The rest wait.
    hashing: tokio::sync::Semaphore,
}

/// How many Argon2 hashes or checks run at once (see [`Users`]'s `hashing`).
const ARGON2_AT_ONCE: usize = 2;

impl Users {
    /// The users service; makes the decoy hash (one Argon2 run).
    pub fn new(store: Store) -> Result<Users, UserError> {
        let mut random = [0u8; 32];
        rand::fill(&mut random);
        let decoy = hash(&hex::encode(random))?;
        Ok(Users {
            store,
            decoy,
            revoked: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(ARGON2_AT_ONCE),
        })
    }

    /// Runs one Argon2 job on the blocking pool once a [`ARGON2_AT_ONCE`] slot is free.
    async fn argon2<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, UserError> + Send + 'static,
    ) -> Result<T, UserError> {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.hashing.acquire().await.map_err(|e| UserError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(job).await.map_err(|e| UserError::Hash(e.to_string()))?
    }

    /// Adds a user after checking the name and password.
    pub async fn add(&self, actor: &Actor, name: &str, role: Role, password: &str) -> Result<User, UserError> {
        check_name(name)?;
        check_password(password)?;
        let password_hash = self
            .argon2({
                let password = password.to_string();
                move || hash(&password)
            })
            .await?;
        let record = UserRecord {
            name: name.to_string(),
            role: role.as_str().to_string(),
            password_hash,
            created_at: sipprov_store::now_ms(),
        };
        let entry = audit::entry(actor, "user.add", "user", name, serde_json::json!({ "role": role }));
        if !self.store.add_user(&record, &entry).await? {
            return Err(UserError::Taken(name.to_string()));
        }
        tracing::info!(user = %name, %role, "console user added");
        Ok(User { name: record.name, role, created_at: record.created_at })
    }

    /// Every user, by name (no hashes).
    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let mut out = Vec::new();
        for u in self.store.users().await? {
            out.push(User { role: role_of(&u)?, name: u.name, created_at: u.created_at });
        }
        Ok(out)
    }

    /// Replaces a user's password and ends the user's sessions.
    pub async fn set_password(&self, actor: &Actor, name: &str, password: &str) -> Result<(), UserError> {
        check_password(password)?;
        let password_hash = self
            .argon2({
                let password = password.to_string();
                move || hash(&password)
            })
            .await?;
        let entry = audit::entry(actor, "user.password", "user", name, serde_json::json!({}));
        if !self.store.set_user_password(name, &password_hash, &entry).await? {
            return Err(UserError::NotFound(name.to_string()));
        }
        self.revoke(name);
        tracing::info!(user = %name, "console user's password changed");
        Ok(())
    }

    /// Removes a user and ends the user's sessions.
    pub async fn remove(&self, actor: &Actor, name: &str) -> Result<(), UserError> {
        let entry = audit::entry(actor, "user.remove", "user", name, serde_json::json!({}));
        if !self.store.delete_user(name, &entry).await? {
            return Err(UserError::NotFound(name.to_string()));
        }
        self.revoke(name);
        tracing::info!(user = %name, "console user removed");
        Ok(())
    }

    /// Checks a login. `None` for an unknown name and for a wrong password alike, after the
    /// same work (one Argon2 verification).
    pub async fn verify(&self, name: &str, password: &str) -> Result<Option<LoggedIn>, UserError> {
        let found = if name.len() <= 64 { self.store.user(name).await? } else { None };
        let stored = found.as_ref().map_or_else(|| self.decoy.clone(), |u| u.password_hash.clone());
        let password = password.chars().take(MAX_PASSWORD_LEN).collect::<String>();
        let matches = self.argon2(move || Ok(verify(&password, &stored))).await?;
        match found {
            Some(user) if matches => Ok(Some(LoggedIn { role: role_of(&user)?, name: user.name })),
            _ => Ok(None),
        }
    }

    /// Whether a session of `name` opened at `opened_at` (ms) may go on: false once the user's
    /// password changed or the user was removed after it opened.
    pub fn still_valid(&self, name: &str, opened_at: i64) -> bool {
        let revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        revoked.get(name).is_none_or(|&at| at < opened_at)
    }

    /// Ends the sessions of `name` opened until now: another node changed its password or
    /// removed it (a session opened here just before is ended too, which only asks for a login).
    pub fn revoke(&self, name: &str) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the number of users changed in this process's life: small, and an
        // entry must outlive every session it ends, so none is dropped.
        revoked.insert(name.to_string(), sipprov_store::now_ms());
    }
}

/// The stored role read back; an unknown name means someone else wrote the table.
fn role_of(user: &UserRecord) -> Result<Role, UserError> {
    user.role.parse().map_err(|e: sipprov_api::UnknownRole| {
        UserError::Store(StoreError::Corrupt(format!("role of user {:?}: {e}", user.name)))
    })
}

/// A login name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::Invalid {
            field: "name",
            message: format!("invalid user name {name:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@'"),
        })
    }
}

/// A password: at least [`MIN_PASSWORD_LEN`] characters, at most [`MAX_PASSWORD_LEN`].
pub fn check_password(password: &str) -> Result<(), UserError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(UserError::Invalid {
            field: "password",
            message: format!("the password is too short: use at least {MIN_PASSWORD_LEN} characters"),
        });
    }
    if n > MAX_PASSWORD_LEN {
        return Err(UserError::Invalid {
            field: "password",
            message: format!("the password is too long: use at most {MAX_PASSWORD_LEN} characters"),
        });
    }
    Ok(())
}

/// Argon2id with a fresh random salt, as a PHC string.
fn hash(password: &str) -> Result<String, UserError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `stored` (false for one that does not parse).
fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_salts_differ() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("ops.alice@example").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_password("short").unwrap_err().to_string().contains("at least 12"));
        assert!(check_password(&"x".repeat(MAX_PASSWORD_LEN + 1)).is_err());
        assert!(check_password("twelve chars").is_ok());
    }
}
