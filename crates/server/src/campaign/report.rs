//! What a campaign looks like to an operator: counts per outcome and the failing devices.

use std::collections::BTreeMap;

use sipprov_store::{CampaignDevice, CampaignRecord};

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
    #[serde(flatten)]
    pub campaign: CampaignRecord,
    pub devices: usize,
    pub counts: BTreeMap<String, usize>,
    /// Devices that failed or were not confirmed, with why.
    pub failing: Vec<serde_json::Value>,
}

impl CampaignReport {
    /// Builds the report at time `now`.
    pub fn new(campaign: CampaignRecord, devices: &[CampaignDevice], now: i64) -> CampaignReport {
        let mut counts = BTreeMap::new();
        let mut failing = Vec::new();
        for d in devices {
            let outcome = device_outcome(d, campaign.confirm_window_ms, now);
            if !matches!(outcome.as_str(), "confirmed" | "awaiting-confirmation" | "pending" | "sending") {
                failing.push(serde_json::json!({
                    "mac": d.mac, "outcome": outcome, "status": d.status, "reason": d.reason, "attempts": d.attempts,
                }));
            }
            *counts.entry(outcome).or_insert(0) += 1;
        }
        CampaignReport { campaign, devices: devices.len(), counts, failing }
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
            expected_hash: None,
            notified_at,
            confirmed_at,
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
