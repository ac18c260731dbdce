//! Re-sync campaigns: starting one, and the report every campaign endpoint answers with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sipprov_model::{CampaignOutcome, CampaignState, Mac};

/// The body of `POST /api/v1/campaigns`: which devices (MACs, a group, or all; `changed`
/// narrows to devices whose files changed since their last fetch) and how fast. Absent limits
/// take the server's defaults (20 NOTIFYs a second, 50 in flight, 300 s to confirm).
///
/// ```
/// use sipprov_api::CreateCampaign;
/// let c = CreateCampaign { group: Some("sales".into()), rate: Some(5), ..CreateCampaign::default() };
/// let json = serde_json::to_value(&c).unwrap();
/// assert_eq!(json["group"], "sales");
/// assert!(serde_json::from_str::<CreateCampaign>(r#"{"all":true,"speed":5}"#).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    /// These devices (MACs in any usual spelling).
    #[serde(default)]
    pub macs: Vec<String>,
    /// The devices of this group.
    #[serde(default)]
    pub group: Option<String>,
    /// Every device.
    #[serde(default)]
    pub all: bool,
    /// Only devices whose files changed since their last fetch.
    #[serde(default)]
    pub changed: bool,
    /// Ask the phones to reboot.
    #[serde(default)]
    pub reboot: bool,
    /// NOTIFYs a second (1 to 100000); absent means [`CreateCampaign::DEFAULT_RATE`].
    #[serde(default)]
    pub rate: Option<u32>,
    /// NOTIFYs awaiting an answer at once (1 to 100000); absent means
    /// [`CreateCampaign::DEFAULT_MAX_IN_FLIGHT`].
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// When to start; absent means now.
    #[serde(default)]
    pub start_at: Option<i64>,
    /// How long a phone has to fetch after a 2xx to count as confirmed (1 to 604800 s); absent
    /// means [`CreateCampaign::DEFAULT_CONFIRM_WINDOW_SECONDS`].
    #[serde(default)]
    pub confirm_window_seconds: Option<u64>,
}

impl CreateCampaign {
    /// NOTIFYs a second when the request names no rate: it protects the provisioning server
    /// that every notified phone then fetches from.
    pub const DEFAULT_RATE: u32 = 20;
    /// NOTIFYs awaiting a final response at once when the request names no limit.
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 50;
    /// Seconds a notified phone has to fetch its new file, when the request says nothing.
    pub const DEFAULT_CONFIRM_WINDOW_SECONDS: u64 = 300;
}

/// A campaign with its counts per outcome and the devices that did not succeed: the answer of
/// every campaign endpoint (`GET /api/v1/campaigns` lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Campaign {
    /// Its number.
    pub id: i64,
    /// When it was created.
    pub created_at: i64,
    /// When it starts (or started).
    pub start_at: i64,
    /// `scheduled`, `running`, `done` or `cancelled`.
    #[schema(value_type = String)]
    pub state: CampaignState,
    /// Whether the phones are asked to reboot.
    pub reboot: bool,
    /// NOTIFYs a second.
    pub rate: u32,
    /// NOTIFYs awaiting an answer at once.
    pub max_in_flight: u32,
    /// How long a phone has to fetch after a 2xx, in milliseconds.
    pub confirm_window_ms: i64,
    /// How the devices were chosen, in words.
    pub selector: String,
    /// When it ended, if it did.
    pub finished_at: Option<i64>,
    /// How many devices it has.
    pub devices: i64,
    /// Devices per outcome: `pending`, `sending`, `confirmed`, `awaiting-confirmation`,
    /// `not-confirmed`, `rejected`, `timeout`, `unreachable`, `no-target`, `error`.
    #[schema(value_type = BTreeMap<String, i64>)]
    pub counts: BTreeMap<CampaignOutcome, i64>,
    /// When the latest NOTIFY left: with `created_at`, how fast it went.
    pub last_notified_at: Option<i64>,
    /// When the latest outcome was recorded, as the server's clock read it in the database
    /// transaction that wrote it: once no device is `pending` or `sending`, with `created_at`,
    /// how long the campaign took to send and record everything. Absent or null before any
    /// outcome (and for campaigns whose outcomes were recorded by a server that did not keep it).
    #[serde(default)]
    pub last_outcome_at: Option<i64>,
    /// Devices that failed or were not confirmed, with why (at most the first 1000).
    pub failing: Vec<FailingDevice>,
}

impl Campaign {
    /// True once it can change no more (`done` or `cancelled`).
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }

    /// Devices with a final outcome (neither pending, sending nor awaiting confirmation).
    pub fn settled(&self) -> i64 {
        self.counts.iter().filter(|(k, _)| !k.is_open()).map(|(_, n)| n).sum()
    }
}

/// A device of a campaign that failed or was not confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailingDevice {
    /// The device.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// Its outcome (see [`Campaign::counts`]).
    #[schema(value_type = String)]
    pub outcome: CampaignOutcome,
    /// The final SIP status, when one arrived.
    pub status: Option<i64>,
    /// The reason phrase or error text, if any.
    pub reason: Option<String>,
    /// How many NOTIFYs were sent to it.
    pub attempts: i64,
}
