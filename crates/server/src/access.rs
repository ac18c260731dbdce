//! Who is asking, and what they may do: the [`Actor`] behind an admin request, the named API
//! tokens that authenticate one ([`Tokens`]), the role each admin route needs
//! ([`required_role`]), and the audit entries every change is written with ([`audit`]).
//!
//! Two kinds of bearer token authenticate:
//! - the data directory's `api-token` file, created on first start and readable only by the
//!   server's user: the bootstrap credential of the local CLI, acting as actor `admin` with the
//!   `admin` role (it creates the first named tokens);
//! - named tokens (`sipprov token create NAME --role ROLE`), each with one [`Role`]. Only the
//!   SHA-256 of a token is stored, in the database and in memory; a revoked token is removed
//!   from memory before the revocation is answered, so it is refused from the next request on.
//!
//! The auth middleware of the admin API puts the [`Actor`] into the request's extensions; the
//! web console builds one from its login session and calls the same services, which take an
//! `&Actor` for every change so the audit trail names who made it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::Method;
use sha2::{Digest, Sha256};
use sipprov_api::{CreatedToken, Role, TokenInfo};
use sipprov_store::{Store, StoreError, TokenRecord};
use subtle::ConstantTimeEq;

pub mod audit;

/// Who makes a request or a change, and with which role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The name the audit trail records: a token's name, a console user, `admin` or `pnp`.
    pub name: String,
    /// What this actor may do.
    pub role: Role,
}

impl Actor {
    /// The name of the data directory's bootstrap token.
    pub const BOOTSTRAP: &'static str = "admin";
    /// The name of the SIP Plug-and-Play service, which adds discovered devices.
    pub const PNP: &'static str = "pnp";

    /// The holder of the data directory's bootstrap token.
    pub fn bootstrap() -> Actor {
        Actor { name: Actor::BOOTSTRAP.to_string(), role: Role::Admin }
    }

    /// The Plug-and-Play service, adding the devices it discovers.
    pub fn pnp() -> Actor {
        Actor { name: Actor::PNP.to_string(), role: Role::Operator }
    }
}

/// The role an admin API request needs, from its method and path (under `/api/v1`).
///
/// | requests | role |
/// |---|---|
/// | every read (`GET`, `HEAD`), except tokens and console users | `read-only` |
/// | changes to devices (add, import, change, remove, unlock, notify), groups, campaigns, firmware rollouts (start, resume, abort, roll back), PnP discoveries (approve, reject) | `operator` |
/// | global settings, tokens and console users (reads too), every other change (templates, firmware and resource files, backup) | `admin` |
///
/// A write route not named here needs `admin`: a route added later is closed until placed.
pub fn required_role(method: &Method, path: &str) -> Role {
    let rest = path.strip_prefix(sipprov_api::PREFIX).unwrap_or(path);
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or_default();
    // Tokens and console users: who may get in is the admin's business, reads included.
    if first == "tokens" || first == "users" {
        return Role::Admin;
    }
    if method == Method::GET || method == Method::HEAD {
        return Role::ReadOnly;
    }
    match first {
        "devices" | "groups" | "campaigns" | "rollouts" | "pnp" => Role::Operator,
        _ => Role::Admin,
    }
}

/// Why a token could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is empty, too long, reserved or has characters outside `A-Z a-z 0-9 . _ -`.
    #[error("{0}")]
    BadName(String),
    /// No token of that name.
    #[error("no token named {0:?}")]
    NotFound(String),
    /// The store refused or failed (a taken name is [`StoreError::Duplicate`]).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A named token as kept in memory.
struct Holder {
    name: String,
    role: Role,
    hash: [u8; 32],
    /// When the use was last written to the store (ms since the epoch).
    last_written: AtomicI64,
}

/// How long a token's `last_used_at` may lag: written at most once per minute per token, so
/// authentication stays a hash and a map lookup.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

/// The named tokens, by hash, loaded at start and updated on every create and revoke.
pub struct Tokens {
    store: Store,
    bootstrap: [u8; 32],
    by_hash: RwLock<HashMap<[u8; 32], Arc<Holder>>>,
}

/// SHA-256 of a token. A token is 256 bits from the operating system's random generator, so
/// it cannot be guessed and needs no slow password hash (salt, Argon2): those protect secrets
/// of low entropy from a dictionary; a full-entropy secret is already out of reach and one
/// SHA-256 is a sound one-way function for it.
fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.trim().as_bytes()).into()
}

impl Tokens {
    /// The tokens stored, and the bootstrap token of the data directory.
    pub async fn load(store: Store, bootstrap_token: &str) -> Result<Tokens, StoreError> {
        let mut by_hash = HashMap::new();
        for record in store.list_tokens().await? {
            let Some(holder) = holder_of(&record) else { continue };
            by_hash.insert(holder.hash, Arc::new(holder));
        }
        Ok(Tokens { store, bootstrap: hash(bootstrap_token), by_hash: RwLock::new(by_hash) })
    }

    /// Reads the named tokens from the store again (another node created or revoked one).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let mut by_hash = HashMap::new();
        for record in self.store.list_tokens().await? {
            let Some(holder) = holder_of(&record) else { continue };
            by_hash.insert(holder.hash, Arc::new(holder));
        }
        *self.by_hash.write().unwrap_or_else(|e| e.into_inner()) = by_hash;
        Ok(())
    }

    /// The actor a bearer token authenticates, if any.
    ///
    /// The token is hashed first; the bootstrap hash is compared in constant time, and a named
    /// token is found by its hash and then compared in constant time too. Looking a hash up
    /// in a map can leak, through timing, only something about the hash, which tells nothing
    /// about any token.
    pub fn authenticate(&self, token: &str) -> Option<Actor> {
        let given = hash(token);
        if bool::from(given.ct_eq(&self.bootstrap)) {
            return Some(Actor::bootstrap());
        }
        let holder = self.by_hash.read().ok()?.get(&given).cloned()?;
        if !bool::from(holder.hash.ct_eq(&given)) {
            return None;
        }
        self.note_use(&holder);
        Some(Actor { name: holder.name.clone(), role: holder.role })
    }

    /// Writes the token's last use in the background, at most once per granularity.
    fn note_use(&self, holder: &Holder) {
        let now = sipprov_store::now_ms();
        let last = holder.last_written.load(Ordering::Relaxed);
        if now - last < LAST_USED_GRANULARITY_MS
            || holder.last_written.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let (store, name) = (self.store.clone(), holder.name.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&name, now).await {
                tracing::warn!(token = %name, error = %e, "could not record a token's last use");
            }
        });
    }

    /// Creates a token, stores its hash with the audit entry, and answers the token itself
    /// (the only time it is shown).
    pub async fn create(&self, actor: &Actor, name: &str, role: Role) -> Result<CreatedToken, TokenError> {
        check_name(name)?;
        let bytes: [u8; 32] = rand::random();
        let token = hex::encode(bytes);
        let digest = hash(&token);
        let record = TokenRecord {
            name: name.to_string(),
            role: role.as_str().to_string(),
            token_sha256: hex::encode(digest),
            created_at: sipprov_store::now_ms(),
            created_by: actor.name.clone(),
            last_used_at: None,
        };
        let entry = audit::entry(actor, "token.create", "token", name, serde_json::json!({ "role": role }));
        self.store.insert_token_audited(&record, &entry).await?;
        let holder = Holder { name: name.to_string(), role, hash: digest, last_written: AtomicI64::new(0) };
        if let Ok(mut map) = self.by_hash.write() {
            map.insert(digest, Arc::new(holder));
        }
        tracing::info!(token = %name, %role, by = %actor.name, "API token created");
        Ok(CreatedToken { name: name.to_string(), role, token })
    }

    /// Revokes the token `name`: refused from the moment this returns.
    pub async fn revoke(&self, actor: &Actor, name: &str) -> Result<(), TokenError> {
        // Out of memory first, so no request is let in while the store is written; put back
        // if the store refuses.
        let removed: Vec<Arc<Holder>> = match self.by_hash.write() {
            Ok(mut map) => {
                let hashes: Vec<[u8; 32]> = map.values().filter(|h| h.name == name).map(|h| h.hash).collect();
                hashes.iter().filter_map(|h| map.remove(h)).collect()
            }
            Err(_) => Vec::new(),
        };
        let entry = audit::entry(actor, "token.revoke", "token", name, serde_json::json!({}));
        let outcome = self.store.revoke_token_audited(name, &entry).await;
        if !matches!(outcome, Ok(true)) {
            if let Ok(mut map) = self.by_hash.write() {
                for holder in removed {
                    map.insert(holder.hash, holder);
                }
            }
        }
        match outcome? {
            true => {
                tracing::info!(token = %name, by = %actor.name, "API token revoked");
                Ok(())
            }
            false => Err(TokenError::NotFound(name.to_string())),
        }
    }

    /// Every named token, as listed: never the token nor its hash.
    pub async fn list(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let records = self.store.list_tokens().await?;
        Ok(records
            .into_iter()
            .filter_map(|r| {
                let role = r.role.parse().ok()?;
                Some(TokenInfo {
                    name: r.name,
                    role,
                    created_at: r.created_at,
                    created_by: r.created_by,
                    last_used_at: r.last_used_at,
                })
            })
            .collect())
    }
}

/// The in-memory form of a stored token; `None` (and a warning) for a row that does not read.
fn holder_of(record: &TokenRecord) -> Option<Holder> {
    let role = record
        .role
        .parse::<Role>()
        .inspect_err(|e| tracing::warn!(token = %record.name, error = %e, "stored API token ignored"))
        .ok()?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(&record.token_sha256, &mut digest)
        .inspect_err(|e| tracing::warn!(token = %record.name, error = %e, "stored API token hash does not read"))
        .ok()?;
    Some(Holder {
        name: record.name.clone(),
        role,
        hash: digest,
        last_written: AtomicI64::new(record.last_used_at.unwrap_or(0)),
    })
}

/// A token name: 1 to 64 of `A-Z a-z 0-9 . _ -`, not one of the reserved actor names.
pub fn check_name(name: &str) -> Result<(), TokenError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok_char) {
        return Err(TokenError::BadName(format!(
            "token name {name:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
        )));
    }
    if [Actor::BOOTSTRAP, Actor::PNP].contains(&name) {
        return Err(TokenError::BadName(format!("token name {name:?} is reserved: the audit trail uses it")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_route_needs_more_than_read_only() {
        let post = Method::POST;
        assert_eq!(required_role(&Method::GET, "/api/v1/devices"), Role::ReadOnly);
        assert_eq!(required_role(&Method::GET, "/api/v1/tokens"), Role::Admin);
        assert_eq!(required_role(&post, "/api/v1/devices/001565aabbcc/notify"), Role::Operator);
        assert_eq!(required_role(&Method::PATCH, "/api/v1/groups/sales"), Role::Operator);
        assert_eq!(required_role(&Method::PATCH, "/api/v1/settings"), Role::Admin);
        assert_eq!(required_role(&post, "/api/v1/templates/yealink"), Role::Admin);
        assert_eq!(required_role(&Method::DELETE, "/api/v1/tokens/ci"), Role::Admin);
    }

    #[test]
    fn token_names_are_checked() {
        assert!(check_name("ci-deploy_1.x").is_ok());
        assert!(check_name("").is_err() && check_name("a b").is_err() && check_name(&"x".repeat(65)).is_err());
        assert!(check_name("pnp").unwrap_err().to_string().contains("reserved"));
    }
}
