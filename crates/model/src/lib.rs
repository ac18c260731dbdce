//! The inventory's vocabulary, shared by every other sipprov crate.
//!
//! This crate owns the few types whose rules must be identical everywhere:
//! [`Mac`] (every accepted spelling of a MAC address and its one canonical
//! form) and [`Settings`] (validated setting keys and values, merged global →
//! group → device). It knows nothing of SIP, HTTP, storage or vendors.
//!
//! Its one dependency beyond serde and thiserror is `jiff`, for [`tz`]: `time.zone` accepts IANA
//! zone names, which must be checked against the tz database when they are set, and phones need
//! each zone's daylight-saving rule spelled their own way. jiff was chosen over chrono-tz because
//! it exposes a zone's transitions (offset, abbreviation, DST flag), from which the yearly rule is
//! computed rather than copied from a hand-made table, and because its bundled database
//! (`tzdb-bundle-always`) makes the rule independent of the host's `/usr/share/zoneinfo`.
//!
//! ```
//! use sipprov_model::{Mac, Settings};
//! let mac: Mac = "00-15-65-AA-BB-CC".parse().unwrap();
//! assert_eq!(mac.to_string(), "001565aabbcc");
//!
//! let mut group = Settings::new();
//! group.set("line.1.registrar", "pbx.example.com").unwrap();
//! let mut device = Settings::new();
//! device.set("line.1.username", "1001").unwrap();
//! let merged = Settings::merged([&Settings::new(), &group, &device]);
//! assert_eq!(merged.get("line.1.registrar"), Some("pbx.example.com"));
//! ```

pub mod contact;
mod digest;
pub mod keys;
pub mod known;
mod mac;
mod name;
mod recent;
mod secret;
mod settings;
mod sorted_map;
pub mod tz;
mod vocab;

pub use digest::sha256_of_hex;
pub use keys::{KeyField, KeyPos, KeyType};
pub use mac::{BuildMacHasher, Mac, MacError, MacHasher, MacMap};
pub use name::Name;
pub use recent::Recent;
pub use secret::{redact_uri_password, Secret, REDACTED};
pub use settings::{
    is_secret_key, parse_cidr, parse_flag, Cidr, CidrError, KeyKind, Layered, LineField, SettingError, Settings,
    SettingsView, HTTP_AUTH_SCHEMES, KNOWN_KEYS, MAX_LINES, RESERVED_NAMESPACES,
};
pub use vocab::{
    CampaignDeviceState, CampaignOutcome, CampaignState, CheckSyncResult, EventDetail, EventKind, RolloutDeviceState,
    RolloutState, UnknownName,
};
