//! The `detail` of each kind of device history event ([`crate::DeviceEvent`]), as types: the
//! server records events from them and a client can read a detail back into its kind's type.
//! The JSON is what the history has always held (pinned by this crate's tests).

use serde::{Deserialize, Serialize};
use sipprov_model::{EventDetail, EventKind};

/// A `fetch`: the device got one of its files (repeats with the same file, source, content,
/// status and authentication are counted in one event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchDetail {
    /// The file name.
    pub file: String,
    /// The requester's address.
    pub ip: String,
    /// SHA-256 of what was served, lower-case hex.
    pub hash: String,
    /// The HTTP status answered (200, or 304).
    pub status: u16,
    /// How many such fetches this event stands for.
    pub count: u64,
    /// When the last of them was made (ms since the epoch), when there were more than one;
    /// the event's own time is the first's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<i64>,
    /// How the requester was accepted (`none`, `digest-sha256`, `client-certificate`, …).
    pub auth: String,
    /// The model its User-Agent reported, if any.
    pub model: Option<String>,
    /// The firmware its User-Agent reported, if any.
    pub firmware: Option<String>,
}

impl EventDetail for FetchDetail {
    const KIND: EventKind = EventKind::Fetch;
}

/// A `refused` fetch of one of the device's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDetail {
    /// The file asked for.
    pub file: String,
    /// The requester's address.
    pub ip: String,
    /// Why it was refused.
    pub reason: String,
}

impl EventDetail for RefusedDetail {
    const KIND: EventKind = EventKind::Refused;
}

/// A `notify`: a check-sync NOTIFY sent to the device, and what came of it.
impl EventDetail for crate::NotifyOutcome {
    const KIND: EventKind = EventKind::Notify;
}

/// `confirmed`: the device fetched its current file after a campaign's NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedDetail {
    /// The campaign.
    pub campaign: i64,
}

impl EventDetail for ConfirmedDetail {
    const KIND: EventKind = EventKind::Confirmed;
}

/// `unlocked`: an operator re-opened the device's first-fetch window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockedDetail {
    /// How long the window lasts.
    pub window_secs: u64,
    /// When it closes.
    pub open_until: i64,
}

impl EventDetail for UnlockedDetail {
    const KIND: EventKind = EventKind::Unlocked;
}

/// `upload`: the device uploaded a file, which was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadDetail {
    /// The file name, lower-cased.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lower-case hex.
    pub sha256: String,
}

impl EventDetail for UploadDetail {
    const KIND: EventKind = EventKind::Upload;
}

/// `upload-refused`: an upload from the device was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRefusedDetail {
    /// The file name as sent.
    pub file: String,
    /// Why.
    pub reason: String,
}

impl EventDetail for UploadRefusedDetail {
    const KIND: EventKind = EventKind::UploadRefused;
}

/// `pnp`: a plug-and-play SUBSCRIBE from the device, answered or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnpDetail {
    /// Where the SUBSCRIBE came from.
    pub source: String,
    /// The address it was received on.
    pub received_on: String,
    /// The vendor it named, if any.
    pub vendor: Option<String>,
    /// The model it named, if any.
    pub model: Option<String>,
    /// The firmware it named, if any.
    pub firmware: Option<String>,
    /// Its `profile-type` parameter, if any.
    pub profile_type: Option<String>,
    /// Its User-Agent, if any.
    pub user_agent: Option<String>,
    /// What was done with it.
    #[serde(flatten)]
    pub result: PnpResult,
}

impl EventDetail for PnpDetail {
    const KIND: EventKind = EventKind::Pnp;
}

/// `download`: the device downloaded a stored file (firmware, a ringtone, …) from
/// `/files/…`. Unlike `fetch`, it moves neither the device's last-seen file nor a campaign: a
/// firmware image is not a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadDetail {
    /// The catalog name of the file.
    pub file: String,
    /// The requester's address.
    pub ip: String,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// The HTTP status answered (200, 206 for a range, 304).
    pub status: u16,
    /// The offset of the first byte sent (non-zero when a download resumed).
    pub first: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Whether everything asked for was sent (false: the client went away first).
    pub complete: bool,
    /// How the requester was accepted (`none` for an open file, `digest-sha256`, …).
    pub auth: String,
    /// The firmware its User-Agent reported, if any.
    pub firmware: Option<String>,
}

impl EventDetail for DownloadDetail {
    const KIND: EventKind = EventKind::Download;
}

/// What was done with a PnP SUBSCRIBE (the `result` member, and what goes with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum PnpResult {
    /// The provisioning URL was sent in a NOTIFY.
    Answered {
        /// The URL sent, its credentials redacted.
        url: String,
        /// How the NOTIFY ended.
        notify: PnpNotify,
        /// For a device not in the inventory: `added`, or why it was not.
        discovered: Option<String>,
    },
    /// No answer was sent.
    Refused {
        /// Why.
        reason: String,
    },
}

/// How the NOTIFY carrying the provisioning URL ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PnpNotify {
    /// A final response came.
    Response {
        /// Its status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// None did.
    Failed {
        /// Why.
        error: String,
    },
}
