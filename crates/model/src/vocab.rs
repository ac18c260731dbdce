//! The words sipprov stores and answers with for states, outcomes and history events.
//!
//! Each is an enum whose stable name (its `as_str`, its serde form and the text stored in the
//! database) never changes: the admin API, the CLI and the database all carry the name, so a
//! renamed variant keeps working and a new word is one variant here that every `match` must
//! then handle. Names compare as their text ([`Ord`] follows `as_str`), so maps keyed by these
//! enums keep the order the strings had.
//!
//! ```
//! use sipprov_model::{CampaignOutcome, CheckSyncResult, EventKind};
//! assert_eq!("no-target".parse::<CheckSyncResult>(), Ok(CheckSyncResult::NoTarget));
//! assert_eq!(EventKind::UploadRefused.as_str(), "upload-refused");
//! assert_eq!(CampaignOutcome::failed(CheckSyncResult::Timeout), CampaignOutcome::Timeout);
//! let err = "sideways".parse::<EventKind>().unwrap_err();
//! assert_eq!(err.to_string(), "unknown device event kind \"sideways\"");
//! ```

use std::fmt;
use std::str::FromStr;

/// A name that is none of an enum's stable names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    /// What was being parsed, e.g. `campaign state`.
    pub what: &'static str,
    /// The text that is not a known name.
    pub value: String,
}

/// Declares an enum of stable names with `as_str`, `ALL`, `FromStr`, `Display`, serde and an
/// ordering by name.
macro_rules! stable_names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name, as stored and sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownName { what: $what, value: s.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so `{:<9}` in a table aligns as the string did.
                f.pad(self.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }
    };
}

stable_names! {
    /// Where a re-sync campaign is in its life.
    pub enum CampaignState ("campaign state") {
        /// Waiting for its start time.
        Scheduled = "scheduled",
        /// Sending, or waiting for confirmations.
        Running = "running",
        /// Every device has a final outcome.
        Done = "done",
        /// Stopped by an operator.
        Cancelled = "cancelled",
    }
}

impl CampaignState {
    /// True once the campaign can change no more (`done` or `cancelled`); a retry reopens it.
    pub fn is_finished(self) -> bool {
        matches!(self, CampaignState::Done | CampaignState::Cancelled)
    }
}

stable_names! {
    /// Where one device of a campaign is, as stored.
    pub enum CampaignDeviceState ("campaign device state") {
        /// Not sent yet.
        Pending = "pending",
        /// Its NOTIFY is leaving (written first, so a crash re-sends it).
        Sending = "sending",
        /// Its NOTIFY got a 2xx.
        Notified = "notified",
        /// Its NOTIFY got no 2xx (the result says why).
        Failed = "failed",
    }
}

stable_names! {
    /// How a check-sync NOTIFY ended, in the words an operator needs.
    pub enum CheckSyncResult ("check-sync result") {
        /// A 2xx final response.
        Ok = "ok",
        /// A 3xx–6xx final response.
        Rejected = "rejected",
        /// No final response in time.
        Timeout = "timeout",
        /// The target could not be resolved or reached.
        Unreachable = "unreachable",
        /// No SIP target is known for the device.
        NoTarget = "no-target",
        /// A reboot was asked of a device whose file tells it to ignore reboot requests.
        RebootDisabled = "reboot-disabled",
        /// Anything else (invalid URI, TLS not set up, transport error…).
        Error = "error",
    }
}

stable_names! {
    /// A device's outcome in a campaign report, at a given time: its state, refined after a
    /// 2xx by whether it fetched its file in time, and after a failure by the NOTIFY result.
    pub enum CampaignOutcome ("campaign outcome") {
        /// Not sent yet.
        Pending = "pending",
        /// Its NOTIFY is leaving.
        Sending = "sending",
        /// A 2xx, then it fetched its current file within the window.
        Confirmed = "confirmed",
        /// A 2xx; the window is still open.
        AwaitingConfirmation = "awaiting-confirmation",
        /// A 2xx, but no fetch within the window.
        NotConfirmed = "not-confirmed",
        /// A 3xx–6xx final response.
        Rejected = "rejected",
        /// No final response in time.
        Timeout = "timeout",
        /// The target could not be resolved or reached.
        Unreachable = "unreachable",
        /// No SIP target is known.
        NoTarget = "no-target",
        /// The device ignores reboot requests.
        RebootDisabled = "reboot-disabled",
        /// Anything else.
        Error = "error",
    }
}

impl CampaignOutcome {
    /// The outcome of a device whose NOTIFY failed with `result`. A failed device never has
    /// the result `ok` (a 2xx makes it `notified`); should one appear it counts as an error.
    pub fn failed(result: CheckSyncResult) -> CampaignOutcome {
        match result {
            CheckSyncResult::Rejected => CampaignOutcome::Rejected,
            CheckSyncResult::Timeout => CampaignOutcome::Timeout,
            CheckSyncResult::Unreachable => CampaignOutcome::Unreachable,
            CheckSyncResult::NoTarget => CampaignOutcome::NoTarget,
            CheckSyncResult::RebootDisabled => CampaignOutcome::RebootDisabled,
            CheckSyncResult::Ok | CheckSyncResult::Error => CampaignOutcome::Error,
        }
    }

    /// True while the device may still change outcome on its own (pending, sending, or
    /// awaiting confirmation).
    pub fn is_open(self) -> bool {
        matches!(self, CampaignOutcome::Pending | CampaignOutcome::Sending | CampaignOutcome::AwaitingConfirmation)
    }
}

stable_names! {
    /// What a device history entry records (`sipprov device log`).
    pub enum EventKind ("device event kind") {
        /// It fetched one of its files.
        Fetch = "fetch",
        /// A fetch of its file was refused (credentials, closed window…).
        Refused = "refused",
        /// A check-sync NOTIFY was sent to it.
        Notify = "notify",
        /// A campaign saw it fetch its file after the NOTIFY.
        Confirmed = "confirmed",
        /// An operator re-opened its first-fetch window.
        Unlocked = "unlocked",
        /// It uploaded a file (a log, a configuration backup…).
        Upload = "upload",
        /// An upload from it was refused.
        UploadRefused = "upload-refused",
        /// A plug-and-play SUBSCRIBE from it was answered.
        Pnp = "pnp",
        /// A firmware rollout pinned it to a version (its file now names that firmware).
        RolloutPinned = "rollout-pinned",
        /// A firmware rollout saw it fetch again reporting the version it was pinned to.
        RolloutSucceeded = "rollout-succeeded",
        /// A firmware rollout's window closed before it reported the version.
        RolloutFailed = "rollout-failed",
        /// A firmware rollout left it out (no file for its model, already moved…).
        RolloutSkipped = "rollout-skipped",
        /// A firmware rollout removed its pin (completed, aborted or rolled back).
        RolloutUnpinned = "rollout-unpinned",
        /// It downloaded a stored file (firmware, a ringtone…), whole or a range of it.
        Download = "download",
    }
}

stable_names! {
    /// Where a firmware rollout is in its life.
    pub enum RolloutState ("rollout state") {
        /// Pinning, notifying and waiting for the current wave.
        Running = "running",
        /// Stopped by itself: failures passed its threshold (the reason is recorded).
        Halted = "halted",
        /// Moving the devices it moved back to the previous version.
        RollingBack = "rolling-back",
        /// Every wave succeeded or was decided: the group's target is the new version.
        Done = "done",
        /// Stopped by an operator; undecided devices were unpinned.
        Aborted = "aborted",
        /// The devices it moved were sent back to the previous version; pins cleared.
        RolledBack = "rolled-back",
    }
}

impl RolloutState {
    /// True once the rollout can change no more (`done`, `aborted`, `rolled-back`): another
    /// rollout of its group may start.
    pub fn is_finished(self) -> bool {
        matches!(self, RolloutState::Done | RolloutState::Aborted | RolloutState::RolledBack)
    }
}

stable_names! {
    /// Where one device of a firmware rollout is.
    pub enum RolloutDeviceState ("rollout device state") {
        /// Left out (the reason is recorded): no firmware file for its model.
        Skipped = "skipped",
        /// Its wave has not started.
        Waiting = "waiting",
        /// Pinned to the version and notified; its window is open.
        Upgrading = "upgrading",
        /// It fetched again reporting the version within its window (or already ran it).
        Succeeded = "succeeded",
        /// Its window closed before it reported the version.
        Failed = "failed",
        /// The rollout was aborted before it was decided.
        Cancelled = "cancelled",
        /// Pinned back to the previous version by a rollback.
        RolledBack = "rolled-back",
    }
}

impl RolloutDeviceState {
    /// True for a device whose outcome is known (succeeded or failed): what the halt
    /// threshold counts.
    pub fn is_decided(self) -> bool {
        matches!(self, RolloutDeviceState::Succeeded | RolloutDeviceState::Failed)
    }
}

/// The detail of one kind of history event: a serde type whose JSON object is what the event's
/// `detail` holds. The kind comes with the type, so an event cannot be recorded under one kind
/// with another kind's detail.
pub trait EventDetail: serde::Serialize {
    /// The kind of event this detail belongs to.
    const KIND: EventKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
            assert_eq!(serde_json::to_string(kind).unwrap(), format!("\"{kind}\""));
        }
        for r in CheckSyncResult::ALL {
            assert_eq!(serde_json::from_str::<CheckSyncResult>(&format!("\"{r}\"")).unwrap(), *r);
        }
        assert!(serde_json::from_str::<CampaignState>("\"paused\"").is_err());
        assert_eq!(format!("{:<9}|", EventKind::Pnp), "pnp      |");
    }

    #[test]
    fn every_failure_result_is_a_campaign_outcome_of_the_same_name() {
        for r in CheckSyncResult::ALL.iter().filter(|r| **r != CheckSyncResult::Ok) {
            assert_eq!(CampaignOutcome::failed(*r).as_str(), r.as_str());
        }
    }

    #[test]
    fn order_follows_the_names() {
        let mut all = CampaignOutcome::ALL.to_vec();
        all.sort();
        let names: Vec<_> = all.iter().map(|o| o.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }
}
