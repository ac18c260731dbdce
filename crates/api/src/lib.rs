//! The admin API contract of sipprov: every request and response body of `/api/v1/…`, and the
//! problem document every error comes as.
//!
//! The server (`sipprov-server`) builds its answers from these types and the CLI (`sipprov`)
//! reads them back into the same types, so a field renamed or retyped on one side is a compile
//! error on the other rather than a `?` in a terminal. The types serialize and deserialize both
//! ways with serde; the JSON they produce is the wire format (pinned by this crate's tests).
//!
//! Conventions:
//! - times are milliseconds since the Unix epoch (`i64`), as the store keeps them;
//! - MACs are [`Mac`], written as 12 lower-case hex digits (`001565aabbcc`);
//! - settings are [`Settings`] (a flat `"key": "value"` object); in answers, secrets are
//!   replaced by `********` (only `render` shows what a phone receives);
//! - request bodies refuse unknown members, so a misspelt field is an error, not ignored;
//! - an error is a [`Problem`] (RFC 9457, `application/problem+json`) whose `detail` says what
//!   is wrong and whose `field` names the request member or setting key at fault.
//!
//! ```
//! use sipprov_api::{AddDevice, Device};
//! let body = AddDevice::new("00:15:65:aa:bb:cc", "yealink", "T46S");
//! let json = serde_json::to_string(&body).unwrap();
//! assert!(json.contains(r#""vendor":"yealink""#));
//! // An answer the CLI cannot read is an error naming the missing field, not a "?".
//! let err = serde_json::from_str::<Device>(r#"{"mac":"001565aabbcc"}"#).unwrap_err();
//! assert!(err.to_string().contains("missing field `vendor`"));
//! ```

#![warn(missing_docs)]

pub use sipprov_model::{
    CampaignOutcome, CampaignState, CheckSyncResult, EventDetail, EventKind, Mac, RolloutDeviceState, RolloutState,
    Settings,
};

mod access;
mod campaign;
mod cluster;
mod device;
mod directory;
mod event;
mod file;
mod group;
mod list;
mod pnp;
mod problem;
mod rollout;
mod template;
mod user;

pub use access::{AuditEntry, CreateToken, CreatedToken, Role, TokenInfo, UnknownRole};
pub use campaign::{Campaign, CreateCampaign, FailingDevice};
pub use cluster::{ClusterLease, ClusterNodeInfo, ClusterStatus};
pub use device::{
    Access, AddDevice, Device, DeviceEvent, FirmwareState, FirmwareStatus, Imported, LastFetch, LastNotify,
    NotifyOutcome, NotifyRequest, PatchDevice, Unlocked, Upload,
};
pub use directory::{Directory, DirectoryContact, DirectorySummary, PutDirectory};
pub use event::{
    ConfirmedDetail, DownloadDetail, FetchDetail, PnpDetail, PnpNotify, PnpResult, RefusedDetail, UnlockedDetail,
    UploadDetail, UploadRefusedDetail,
};
pub use file::{FileLimits, StoredFile, UploadQuery};
pub use group::{Group, GroupChanged, GroupSummary, VendorInfo};
pub use list::{
    DeviceQuery, DeviceSort, FleetSummary, Page, SilentDevice, SortOrder, ThrottledSource, DEFAULT_PAGE, MAX_PAGE,
};
pub use pnp::{ApproveDiscovery, Discovery};
pub use problem::{Problem, PROBLEM_CONTENT_TYPE};
pub use rollout::{
    CreateRollout, Rollout, RolloutDeviceView, RolloutFailedDetail, RolloutPinnedDetail, RolloutSkippedDetail,
    RolloutSucceededDetail, RolloutUnpinnedDetail,
};
pub use template::{
    PreviewTemplate, RollbackTemplate, SetTemplate, TemplateChanged, TemplateDetail, TemplateDiff, TemplateSummary,
    TemplateVersionInfo,
};
pub use user::{AddUser, SetPassword, User, MIN_PASSWORD_LEN};

/// The prefix of every admin API path.
pub const PREFIX: &str = "/api/v1";
