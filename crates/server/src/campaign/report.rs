//! What a campaign looks like to an operator: counts per outcome and the failing devices.

use std::collections::BTreeMap;

use sipprov_model::{CampaignDeviceState, CampaignOutcome, CheckSyncResult};
use sipprov_store::{CampaignDevice, CampaignRecord, Store, StoreError};

/// The outcome of one device in a campaign, at time `now`.
///
/// `pending`, `sending`; after a 2xx: `confirmed`, `awaiting-confirmation` or `not-confirmed`;
/// otherwise the NOTIFY result: `rejected`, `timeout`, `unreachable`, `no-target`, `error`.
pub fn device_outcome(d: &CampaignDevice, confirm_window_ms: i64, now: i64) -> CampaignOutcome {
    match d.state {
        CampaignDeviceState::Notified if d.confirmed_at.is_some() => CampaignOutcome::Confirmed,
        CampaignDeviceState::Notified if d.notified_at.is_some_and(|t| now <= t + confirm_window_ms) => {
            CampaignOutcome::AwaitingConfirmation
        }
        CampaignDeviceState::Notified => CampaignOutcome::NotConfirmed,
        CampaignDeviceState::Failed => CampaignOutcome::failed(d.result.unwrap_or(CheckSyncResult::Error)),
        CampaignDeviceState::Pending => CampaignOutcome::Pending,
        CampaignDeviceState::Sending => CampaignOutcome::Sending,
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
    /// Outcome → number of devices.
    pub counts: BTreeMap<CampaignOutcome, i64>,
    /// When the latest NOTIFY left (ms since the epoch): with `created_at`, how fast it went.
    pub last_notified_at: Option<i64>,
    /// When the latest outcome was recorded (ms since the epoch, taken in the transaction that
    /// wrote it): once no device is `pending` or `sending`, with `created_at`, how long the
    /// whole campaign took to record. `None` before any outcome.
    pub last_outcome_at: Option<i64>,
    /// Devices that failed or were not confirmed, with why (the first `FAILING_SHOWN`).
    pub failing: Vec<sipprov_api::FailingDevice>,
}

/// How many failing devices a report lists.
pub(super) const FAILING_SHOWN: i64 = 1000;

impl CampaignReport {
    /// The report as the admin API answers it.
    pub fn into_api(self) -> sipprov_api::Campaign {
        let c = self.campaign;
        sipprov_api::Campaign {
            id: c.id,
            created_at: c.created_at,
            start_at: c.start_at,
            state: c.state,
            reboot: c.reboot,
            rate: c.rate,
            max_in_flight: c.max_in_flight,
            confirm_window_ms: c.confirm_window_ms,
            selector: c.selector,
            finished_at: c.finished_at,
            devices: self.devices,
            counts: self.counts,
            last_notified_at: self.last_notified_at,
            last_outcome_at: self.last_outcome_at,
            failing: self.failing,
        }
    }

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
            last_outcome_at: counts.last_outcome_at,
            failing,
        })
    }

    /// True when every device has a final outcome (sent, and confirmed or out of time).
    pub fn settled(&self) -> bool {
        self.counts.iter().all(|(outcome, n)| !outcome.is_open() || *n == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(
        state: CampaignDeviceState,
        notified_at: Option<i64>,
        confirmed_at: Option<i64>,
        result: Option<CheckSyncResult>,
    ) -> CampaignDevice {
        CampaignDevice {
            campaign_id: 1,
            mac: "001565000001".parse().unwrap(),
            state,
            attempts: 1,
            result,
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
        use CampaignDeviceState::{Failed, Notified, Pending};
        let ok = Some(CheckSyncResult::Ok);
        assert_eq!(device_outcome(&dev(Notified, Some(0), Some(5), ok), 10, 100), CampaignOutcome::Confirmed);
        assert_eq!(device_outcome(&dev(Notified, Some(95), None, ok), 10, 100), CampaignOutcome::AwaitingConfirmation);
        assert_eq!(device_outcome(&dev(Notified, Some(0), None, ok), 10, 100), CampaignOutcome::NotConfirmed);
        let timeout = Some(CheckSyncResult::Timeout);
        assert_eq!(device_outcome(&dev(Failed, Some(0), None, timeout), 10, 100), CampaignOutcome::Timeout);
        assert_eq!(device_outcome(&dev(Pending, None, None, None), 10, 100), CampaignOutcome::Pending);
    }
}
