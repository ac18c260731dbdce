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
