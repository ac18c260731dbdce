//! Who may do what: the roles an API token or a console user holds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role, from most to least powerful. A token or a console user holds exactly one.
///
/// - `admin`: everything, including tokens, users, templates and global settings;
/// - `operator`: day-to-day fleet work: check-sync and reboots, campaigns, unlocking devices,
///   settings of devices and groups;
/// - `read-only`: every read, no write.
///
/// ```
/// use sipprov_api::Role;
/// let role: Role = "read-only".parse().unwrap();
/// assert_eq!(role, Role::ReadOnly);
/// assert!(Role::Operator.at_least(Role::ReadOnly));
/// assert!(!Role::Operator.at_least(Role::Admin));
/// assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), r#""admin""#);
/// assert!("root".parse::<Role>().unwrap_err().to_string().contains("admin, operator, read-only"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Every read and every write.
    Admin,
    /// Fleet operations: notify, campaigns, unlock, device and group settings.
    Operator,
    /// Reads only.
    ReadOnly,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::ReadOnly];

    /// The stable name stored and sent (`admin`, `operator`, `read-only`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::ReadOnly => "read-only",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Role::Admin => 2,
            Role::Operator => 1,
            Role::ReadOnly => 0,
        }
    }

    /// Whether this role grants everything `needed` grants.
    pub fn at_least(self, needed: Role) -> bool {
        self.rank() >= needed.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `admin`, `operator`, `read-only`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected one of admin, operator, read-only")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Role, UnknownRole> {
        Role::ALL.into_iter().find(|r| r.as_str() == name).ok_or_else(|| UnknownRole(name.to_string()))
    }
}

/// `POST /api/v1/tokens`: create a named token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A unique name: 1 to 64 of `A-Z a-z 0-9 . _ -`. It is what the audit trail records.
    pub name: String,
    /// What the token may do.
    pub role: Role,
}

/// The answer to [`CreateToken`]: the only time the token itself is ever shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The bearer token (64 hex digits). The server keeps only its SHA-256.
    pub token: String,
}

/// A token as listed: never the token nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// When it was last used, to within about a minute (ms since the epoch).
    pub last_used_at: Option<i64>,
}

/// One entry of the audit trail (`GET /api/v1/audit`, `GET /api/v1/devices/{mac}/audit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Position in the trail; ids increase with time. Pass the last one as `before` for the next page.
    pub id: i64,
    /// When (ms since the epoch).
    pub at: i64,
    /// Who: a token's name, `admin` for the data directory's token, `pnp` for discoveries.
    pub actor: String,
    /// What was done, e.g. `device.patch`, `settings.patch`, `token.create`.
    pub action: String,
    /// What kind of thing changed: `device`, `group`, `settings`, `campaign`, `token`.
    pub target_kind: String,
    /// Which one: a MAC, a group or token name, a campaign id, `global`.
    pub target: String,
    /// What changed: for settings, `{"changes": {"key": {"old": …, "new": …}}}` with secrets
    /// shown as `********`; other members depend on the action.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}
