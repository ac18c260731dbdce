//! Firmware rollouts: starting one, the report every rollout endpoint answers with, and the
//! details of the history events a rollout writes on each device.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sipprov_model::{EventDetail, EventKind, Mac, RolloutDeviceState, RolloutState};

/// The body of `POST /api/v1/rollouts`: move group `group` to firmware `version` in waves.
/// Absent numbers take the defaults below.
///
/// ```
/// use sipprov_api::CreateRollout;
/// let r: CreateRollout = serde_json::from_str(r#"{"group":"sales","version":"66.86.0.160"}"#).unwrap();
/// assert_eq!(r.canary, None);
/// assert!(serde_json::from_str::<CreateRollout>(r#"{"group":"g","version":"1","speed":1}"#).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRollout {
    /// The group to move.
    pub group: String,
    /// The firmware version, as the phones' User-Agent reports it.
    pub version: String,
    /// Devices in the canary wave (0 to the cap); absent means [`CreateRollout::DEFAULT_CANARY`].
    #[serde(default)]
    pub canary: Option<u32>,
    /// Each later wave's share of the devices left after the canary (1 to 100 %); absent
    /// means [`CreateRollout::DEFAULT_WAVE_PERCENT`].
    #[serde(default)]
    pub wave_percent: Option<u32>,
    /// How long a pinned device has to come back reporting the version (1 to 604800 s);
    /// absent means [`CreateRollout::DEFAULT_WINDOW_SECONDS`].
    #[serde(default)]
    pub window_seconds: Option<u64>,
    /// Halt when failed devices pass this share of decided ones (0 to 100 %); absent means
    /// [`CreateRollout::DEFAULT_HALT_PERCENT`].
    #[serde(default)]
    pub halt_percent: Option<u32>,
}

impl CreateRollout {
    /// Devices in the canary wave when the request names none.
    pub const DEFAULT_CANARY: u32 = 1;
    /// Each later wave's share, in percent, when the request names none.
    pub const DEFAULT_WAVE_PERCENT: u32 = 20;
    /// Seconds a device has to report the version, when the request names none (30 minutes).
    pub const DEFAULT_WINDOW_SECONDS: u64 = 1800;
    /// The failure share that halts, in percent, when the request names none.
    pub const DEFAULT_HALT_PERCENT: u32 = 5;
    /// Most devices one rollout takes (a bigger group is refused: split it).
    pub const MAX_DEVICES: usize = 10_000;
}

/// A rollout with its counts per device state and its devices: the answer of every rollout
/// endpoint (`GET /api/v1/rollouts` lists them without devices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rollout {
    /// Its number.
    pub id: i64,
    /// The group it moves.
    pub group: String,
    /// The version it moves the group to.
    pub version: String,
    /// The group's `firmware.version` before (what a rollback returns to).
    pub previous_version: Option<String>,
    /// `running`, `halted`, `rolling-back`, `done`, `aborted` or `rolled-back`.
    #[schema(value_type = String)]
    pub state: RolloutState,
    /// Why it halted, was aborted or rolled back.
    pub reason: Option<String>,
    /// The wave it is on (0 = canary).
    pub wave: i64,
    /// How many waves it has (the canary included).
    pub waves: i64,
    /// Devices in the canary wave.
    pub canary: u32,
    /// Each later wave's share, in percent.
    pub wave_percent: u32,
    /// How long a device has to report the version, in milliseconds.
    pub window_ms: i64,
    /// The failure share that halts it, in percent.
    pub halt_percent: u32,
    /// When it was created (ms since the epoch).
    pub created_at: i64,
    /// Who started it.
    pub created_by: String,
    /// When it ended, if it did.
    pub finished_at: Option<i64>,
    /// Devices per state: `skipped`, `waiting`, `upgrading`, `succeeded`, `failed`,
    /// `cancelled`, `rolled-back`.
    #[schema(value_type = BTreeMap<String, i64>)]
    pub counts: BTreeMap<RolloutDeviceState, i64>,
    /// Its devices, by wave then MAC (empty in the list).
    pub devices: Vec<RolloutDeviceView>,
}

impl Rollout {
    /// True once it can change no more.
    pub fn is_finished(&self) -> bool {
        self.state.is_finished()
    }

    /// Devices it takes part with (all but the skipped ones).
    pub fn total(&self) -> i64 {
        self.counts.iter().filter(|(k, _)| **k != RolloutDeviceState::Skipped).map(|(_, n)| n).sum()
    }

    /// Devices whose outcome is known (succeeded, failed).
    pub fn decided(&self) -> i64 {
        self.counts.iter().filter(|(k, _)| k.is_decided()).map(|(_, n)| n).sum()
    }
}

/// One device of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutDeviceView {
    /// The device.
    #[schema(value_type = String, example = "001565aabbcc")]
    pub mac: Mac,
    /// Its wave (0 = canary, -1 = none: skipped or already on the version).
    pub wave: i64,
    /// Where it is.
    #[schema(value_type = String)]
    pub state: RolloutDeviceState,
    /// The firmware it reported before the rollout.
    pub from_version: Option<String>,
    /// Why it was skipped, failed, or succeeded at once.
    pub reason: Option<String>,
    /// When it was pinned (its window opened).
    pub started_at: Option<i64>,
    /// When it was decided.
    pub decided_at: Option<i64>,
}

/// `rollout-pinned`: a rollout pinned the device to a version (its file names that firmware).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutPinnedDetail {
    /// The rollout.
    pub rollout: i64,
    /// The version.
    pub version: String,
    /// The wave (0 = canary; -1 for a rollback).
    pub wave: i64,
}

impl EventDetail for RolloutPinnedDetail {
    const KIND: EventKind = EventKind::RolloutPinned;
}

/// `rollout-succeeded`: the device reported the rollout's version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSucceededDetail {
    /// The rollout.
    pub rollout: i64,
    /// The version.
    pub version: String,
    /// `fetched` (came back reporting it) or `already` (ran it before the rollout).
    pub how: String,
}

impl EventDetail for RolloutSucceededDetail {
    const KIND: EventKind = EventKind::RolloutSucceeded;
}

/// `rollout-failed`: the device did not report the version within its window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutFailedDetail {
    /// The rollout.
    pub rollout: i64,
    /// The version.
    pub version: String,
    /// What it last reported, if anything.
    pub reported: Option<String>,
}

impl EventDetail for RolloutFailedDetail {
    const KIND: EventKind = EventKind::RolloutFailed;
}

/// `rollout-skipped`: the rollout left the device out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutSkippedDetail {
    /// The rollout.
    pub rollout: i64,
    /// Why.
    pub reason: String,
}

impl EventDetail for RolloutSkippedDetail {
    const KIND: EventKind = EventKind::RolloutSkipped;
}

/// `rollout-unpinned`: the rollout removed the device's pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutUnpinnedDetail {
    /// The rollout.
    pub rollout: i64,
    /// Why: `completed`, `aborted` or `rolled-back`.
    pub reason: String,
}

impl EventDetail for RolloutUnpinnedDetail {
    const KIND: EventKind = EventKind::RolloutUnpinned;
}
