//! What a campaign looks like to an operator: counts per outcome and the failing devices.

use std::collections::BTreeMap;

use sipprov_store::{CampaignDevice, CampaignRecord, Store, StoreError};

/// The outcome word of one device in a campaign, at time `now`.
///
/// `pending`, `sending`; after a 2xx: `confirmed`, `awaiting-confirmation` or `not-confirmed`;
/// otherwise the NOTIFY result: `rejected`, `timeout`, `unreachable`, `no-target`, `error`.
pub fn device_outcome(d: &CampaignDevice, confirm_window_ms: i64, now: i64) -> String {
    match d.state.as_str() {
        "notified" if d.confirmed_at.is_some() => "confirmed".into(),
        "notified" if d.notified_at.is_some_and(|t| now <= t + confirm_window_ms) => "awaiting-confirmation".into(),
        "notified" => "not-confirmed".into(),
        "failed" => d.result.clone().unwrap_or_else(|| "error".into()),
        other => other.into(),
    }
}

/// A campaign with its counts per outcome and the devices that did not succeed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CampaignReport {
    /// The campaign as stored.
    #[serde(flatten)]
    pub campaign: CampaignRecord,
    /// Devices in the campaign.
    pub devices: i64,
    /// Outcome word → number of devices.
    pub counts: BTreeMap<String, i64>,
    /// When the latest NOTIFY left (ms since the epoch): with `created_at`, how fast it went.
    pub last_notified_at: Option<i64>,
    /// Devices that failed or were not confirmed, with why (the first `FAILING_SHOWN`).
    pub failing: Vec<sipprov_api::FailingDevice>,
}

/// How many failing devices a report lists.
pub const FAILING_SHOWN: i64 = 1000;

impl CampaignReport {
    /// Builds the report at time `now` from database aggregates (no row per device is loaded).
    pub async fn load(store: &Store, campaign: CampaignRecord, now: i64) -> Result<CampaignReport, StoreError> {
        let window = campaign.confirm_window_ms;
        let counts = store.campaign_counts(campaign.id, window, now).await?;
        let failing = store
            .campaign_failing(campaign.id, window, now, FAILING_SHOWN)
            .await?
            .iter()
            .map(|d| sipprov_api::FailingDevice {
                mac: d.mac,
                outcome: device_outcome(d, window, now),
                status: d.status,
                reason: d.reason.clone(),
                attempts: d.attempts,
            })
            .collect();
        Ok(CampaignReport {
            campaign,
            devices: counts.devices,
            counts: counts.counts,
            last_notified_at: counts.last_notified_at,
            failing,
        })
    }

    /// True when every device has a final outcome (sent, and confirmed or out of time).
    pub fn settled(&self) -> bool {
        ["pending", "sending", "awaiting-confirmation"].iter().all(|k| self.counts.get(*k).copied().unwrap_or(0) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(state: &str, notified_at: Option<i64>, confirmed_at: Option<i64>, result: Option<&str>) -> CampaignDevice {
        CampaignDevice {
            campaign_id: 1,
            mac: "001565000001".parse().unwrap(),
            state: state.into(),
            attempts: 1,
            result: result.map(String::from),
            status: None,
            reason: None,
            expected_file: None,
            notified_at,
            confirmed_at,
            fetched_hash: None,
        }
    }

    #[test]
    fn a_200_without_a_fetch_is_not_success() {
        assert_eq!(device_outcome(&dev("notified", Some(0), Some(5), Some("ok")), 10, 100), "confirmed");
        assert_eq!(device_outcome(&dev("notified", Some(95), None, Some("ok")), 10, 100), "awaiting-confirmation");
        assert_eq!(device_outcome(&dev("notified", Some(0), None, Some("ok")), 10, 100), "not-confirmed");
        assert_eq!(device_outcome(&dev("failed", Some(0), None, Some("timeout")), 10, 100), "timeout");
        assert_eq!(device_outcome(&dev("pending", None, None, None), 10, 100), "pending");
    }
}
