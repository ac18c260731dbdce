//! Web console users (`/api/v1/users`, admin only): who may log in to the console, with which
//! role. Passwords travel only in requests and are stored as Argon2id hashes; no answer carries
//! one.

use serde::{Deserialize, Serialize};

use crate::Role;

/// A console user as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// The login name.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// When the user was created (ms since the epoch).
    pub created_at: i64,
}

/// `POST /api/v1/users`: a new user. Its `Debug` hides the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddUser {
    /// The login name: 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// The password, at least [`MIN_PASSWORD_LEN`] characters.
    pub password: String,
}

impl std::fmt::Debug for AddUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddUser").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

/// `PUT /api/v1/users/{name}/password`: a new password. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password, at least [`MIN_PASSWORD_LEN`] characters.
    pub password: String,
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPassword { .. }")
    }
}

/// The shortest password a console user may have, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
