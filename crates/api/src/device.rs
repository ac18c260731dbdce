//! Devices: the view of one device, adding and changing one, its history, uploads, unlock,
//! check-sync and CSV import.

use serde::{Deserialize, Serialize};
use sipprov_model::{CheckSyncResult, EventKind, Mac, Settings};

/// A device as `GET /api/v1/devices` and `GET /api/v1/devices/{mac}` show it, and as adding
/// or changing one answers: secrets redacted, with the files it is served and how it may fetch
/// them.
///
/// ```
/// use sipprov_api::Device;
/// let json = r#"{"mac":"001565aabbcc","vendor":"yealink","model":"T46S","group":null,"contact":null,
///   "settings":{"line.1.password":"********"},"created_at":1,"updated_at":2,"last_fetch":null,
///   "files":["001565aabbcc.cfg"],"access":{"device_files":"generated credentials",
///   "first_fetch_window_until":null}}"#;
/// let d: Device = serde_json::from_str(json).unwrap();
/// assert_eq!(d.files, ["001565aabbcc.cfg"]);
/// assert!(d.last_notify.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    /// The device's MAC.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// Vendor id (`yealink`, `polycom`…; `GET /api/v1/vendors` lists them).
    pub vendor: String,
    /// Model name, as the vendor module spells it.
    pub model: String,
    /// The group whose settings it inherits, if any.
    pub group: Option<String>,
    /// Where check-sync reaches it (a `sip:` URI, password redacted), if set.
    pub contact: Option<String>,
    /// The device's own settings (not merged), secrets redacted.
    #[schema(value_type = BTreeMap<String, String>)]
    pub settings: Settings,
    /// When it was added.
    pub created_at: i64,
    /// When it was last changed.
    pub updated_at: i64,
    /// What it last fetched, if it ever did.
    pub last_fetch: Option<LastFetch>,
    /// The names of the files it is served.
    pub files: Vec<String>,
    /// How its files may be fetched.
    pub access: Access,
    /// Its latest check-sync (only in `GET /api/v1/devices/{mac}`, when there was one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notify: Option<LastNotify>,
    /// Its firmware target and where it stands (only when it has one: a `firmware.version`
    /// at some level, or a rollout's pin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareStatus>,
}

/// A device's firmware target, and what its files say about it.
///
/// ```
/// use sipprov_api::{FirmwareState, FirmwareStatus};
/// let json = r#"{"target":"66.86.0.160","image":null,"state":"no-image"}"#;
/// let f: FirmwareStatus = serde_json::from_str(json).unwrap();
/// assert_eq!(f.state, FirmwareState::NoImage);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirmwareStatus {
    /// The version it should run: a rollout's pin, else its merged `firmware.version`.
    pub target: String,
    /// The catalog image its file names (when `state` is `offered`).
    pub image: Option<String>,
    /// Where it stands.
    pub state: FirmwareState,
}

/// Where a device stands against its firmware target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareState {
    /// Its last reported firmware is the target: its file names no image.
    OnTarget,
    /// Its file names the target's image (it has not yet reported running it).
    Offered,
    /// The catalog has no image of the target for its model: its file names none, and it
    /// stays where it is until one is added.
    NoImage,
}

impl FirmwareState {
    /// The wire name (`on-target`, `offered`, `no-image`).
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareState::OnTarget => "on-target",
            FirmwareState::Offered => "offered",
            FirmwareState::NoImage => "no-image",
        }
    }
}

/// What a device last fetched, as the provisioning server recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastFetch {
    /// The device.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// When.
    pub at: i64,
    /// From which address.
    pub ip: String,
    /// Which file.
    pub file: String,
    /// The served content's SHA-256, lower-case hex.
    pub hash: String,
    /// The model its User-Agent reported, if any.
    pub reported_model: Option<String>,
    /// The firmware its User-Agent reported, if any.
    pub reported_firmware: Option<String>,
}

/// How a device's own files may be fetched (see the README's Security section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Access {
    /// In words: `generated credentials`, `open to anyone (security.open_device_files)`…
    pub device_files: String,
    /// Until when its first-fetch window is open, if it is.
    pub first_fetch_window_until: Option<i64>,
}

/// A device's latest check-sync, from its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastNotify {
    /// When it was sent.
    pub at: i64,
    /// What came of it.
    pub outcome: NotifyOutcome,
}

/// The body of `POST /api/v1/devices`.
///
/// ```
/// use sipprov_api::AddDevice;
/// let mut body = AddDevice::new("001565aabbcc", "yealink", "T46S");
/// body.settings.set("line.1.username", "1001").unwrap();
/// let back: AddDevice = serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
/// assert_eq!(back, body);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDevice {
    /// The MAC, in any usual spelling (`00:15:65:AA:BB:CC`, `001565aabbcc`…).
    pub mac: String,
    /// Vendor id.
    pub vendor: String,
    /// Model name.
    pub model: String,
    /// Its group, if any.
    #[serde(default)]
    pub group: Option<String>,
    /// Its SIP contact for check-sync, if any.
    #[serde(default)]
    pub contact: Option<String>,
    /// Its own settings.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub settings: Settings,
}

impl AddDevice {
    /// A device with no group, contact or settings.
    pub fn new(mac: &str, vendor: &str, model: &str) -> AddDevice {
        AddDevice {
            mac: mac.into(),
            vendor: vendor.into(),
            model: model.into(),
            group: None,
            contact: None,
            settings: Settings::new(),
        }
    }
}

/// The body of `PATCH /api/v1/devices/{mac}`: absent members are left alone; `""` clears the
/// group or the contact; a setting with an empty value is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchDevice {
    /// A new vendor id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// A new model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A new group (`""`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A new contact (`""`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Settings to set (or, with an empty value, remove).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub settings: Option<Settings>,
}

/// One entry of a device's history, `GET /api/v1/devices/{mac}/log` (newest last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceEvent {
    /// The entry's number, increasing.
    pub id: i64,
    /// The device.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// When.
    pub at: i64,
    /// What happened: `fetch`, `notify`, `refused`, `unlocked`, `upload`, `pnp`…
    #[schema(value_type = String)]
    pub kind: EventKind,
    /// The event's details, an object whose members depend on `kind`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One file a device uploaded, `GET /api/v1/devices/{mac}/uploads` (latest per name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Upload {
    /// The file name as the phone sent it, lower-cased.
    pub name: String,
    /// When it was received.
    pub received_at: i64,
    /// Its size in bytes.
    pub size: i64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

/// The answer of `POST /api/v1/devices/{mac}/unlock`: the re-opened first-fetch window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unlocked {
    /// The device.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// How long the window lasts (`security.first_fetch_window_secs`).
    pub window_secs: u64,
    /// When it closes.
    pub open_until: i64,
}

/// The answer of `POST /api/v1/devices/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Imported {
    /// How many devices were added (all rows, or none and an error).
    pub imported: usize,
}

/// The body of `POST /api/v1/devices/{mac}/notify` (optional: no body sends a plain check-sync).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequest {
    /// Ask the phone to reboot after re-reading its configuration.
    #[serde(default)]
    pub reboot: bool,
}

/// What came of a check-sync NOTIFY: the answer of `POST /api/v1/devices/{mac}/notify`, and
/// the `outcome` of [`LastNotify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotifyOutcome {
    /// `ok` (2xx), `rejected` (3xx–6xx), `timeout`, `unreachable`, `no-target`,
    /// `reboot-disabled` or `error`.
    #[schema(value_type = String)]
    pub result: CheckSyncResult,
    /// The final status code, when one arrived.
    #[serde(default)]
    pub status: Option<u16>,
    /// Reason phrase or error text.
    #[serde(default)]
    pub reason: String,
    /// Where the NOTIFY went (`udp:192.0.2.10:5060`).
    #[serde(default)]
    pub sent_to: Option<String>,
    /// The Event header sent.
    #[serde(default)]
    pub event: String,
    /// The campaign it belonged to, for one sent by a campaign (history only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<i64>,
}

impl NotifyOutcome {
    /// True for a 2xx final response.
    pub fn is_ok(&self) -> bool {
        self.result == CheckSyncResult::Ok
    }

    /// One line for humans: `200 OK`, `481 Call/Transaction Does Not Exist`, `timeout: …`.
    pub fn summary(&self) -> String {
        match self.status {
            Some(s) => format!("{s} {}", self.reason),
            None => format!("{}: {}", self.result, self.reason),
        }
    }

    /// The JSON text `serde_json::to_string` gives for it (the same members in the same order,
    /// strings escaped by serde_json's own escaper), written straight into one buffer: a
    /// campaign stores one per NOTIFY as the device's history event, and serde's struct
    /// serializer, entry by entry, cost about twice as much.
    ///
    /// ```
    /// use sipprov_api::NotifyOutcome;
    /// use sipprov_model::CheckSyncResult;
    /// let o = NotifyOutcome { result: CheckSyncResult::Ok, status: Some(200), reason: "OK".into(),
    ///     sent_to: Some("udp:192.0.2.1:5060".into()), event: "check-sync".into(), campaign: Some(7) };
    /// assert_eq!(o.to_json(), serde_json::to_string(&o).unwrap());
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(96 + self.reason.len() + self.event.len());
        out.extend_from_slice(b"{\"result\":");
        push_json_str(&mut out, self.result.as_str());
        out.extend_from_slice(b",\"status\":");
        match self.status {
            Some(status) => push_decimal(&mut out, i64::from(status)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"reason\":");
        push_json_str(&mut out, &self.reason);
        out.extend_from_slice(b",\"sent_to\":");
        match &self.sent_to {
            Some(sent_to) => push_json_str(&mut out, sent_to),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"event\":");
        push_json_str(&mut out, &self.event);
        if let Some(campaign) = self.campaign {
            out.extend_from_slice(b",\"campaign\":");
            push_decimal(&mut out, campaign);
        }
        out.push(b'}');
        // Only UTF-8 was written: ASCII, and the strings' own text as serde_json escapes it.
        String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// `s` as a JSON string, escaped by serde_json's own string serializer.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    use serde::Serializer as _;
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::Serializer::new(out).serialize_str(s);
}

/// A decimal integer, as serde_json writes one.
fn push_decimal(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut left = n.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (left % 10) as u8;
        left /= 10;
        if left == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}
