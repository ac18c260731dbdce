//! Sending check-sync to a device of the inventory, and recording the outcome on it.

use sipprov_model::Mac;
use sipprov_store::NewEvent;

use crate::checksync::{self, CheckSync, Outcome};
use crate::fetchlog::Record;
use crate::state::AppState;

impl AppState {
    /// Sends a check-sync (or reboot) NOTIFY to one device and records the outcome in its history.
    ///
    /// The target is the device's `contact`; with `[sip] outbound_proxy` set the NOTIFY goes
    /// through that proxy, to the contact or else to the address of record
    /// `line.1.username@line.1.registrar`. A challenge is answered with line 1's credentials.
    pub async fn notify_device(&self, mac: Mac, reboot: bool) -> Result<Outcome, String> {
        let outcome = self.send_check_sync(mac, reboot).await?;
        self.fetchlog.record(Record::Event(notify_event(mac, sipprov_store::now_ms(), &outcome, None)));
        Ok(outcome)
    }

    /// Sends the NOTIFY and logs it, leaving the history event to the caller: a campaign writes
    /// it in the same transaction as the device's outcome.
    pub(crate) async fn send_check_sync(&self, mac: Mac, reboot: bool) -> Result<Outcome, String> {
        let device = self.inventory.device(mac).ok_or_else(|| format!("device {mac} not found"))?;
        let endpoint = self.sip.get().ok_or("the SIP listener is not running")?;
        let settings = self.inventory.merged_keys(&device, checksync::SETTINGS_USED);
        let event = checksync::device_event(&device.vendor, reboot, &settings)?;
        let proxy = self.config.sip.outbound_proxy.clone();
        let uri = match (&device.contact, &proxy) {
            (Some(contact), _) => Some(contact.clone()),
            (None, Some(_)) => match (settings.get("line.1.username"), settings.get("line.1.registrar")) {
                (Some(user), Some(registrar)) => Some(format!("sip:{user}@{registrar}")),
                _ => None,
            },
            (None, None) => None,
        };
        let outcome = match uri {
            None => Outcome::failed(
                "no-target",
                "no SIP target known: set the device's contact, or [sip] outbound_proxy with line.1.username and line.1.registrar".into(),
                &event,
            ),
            Some(uri) => {
                let cs = CheckSync {
                    uri,
                    event: event.clone(),
                    from: None,
                    proxy,
                    transport: None,
                    credentials: checksync::line_credentials(&settings),
                };
                checksync::send(endpoint, &cs).await
            }
        };
        tracing::info!(%mac, event = %outcome.event, result = %outcome.result, status = ?outcome.status, "check-sync sent");
        Ok(outcome)
    }
}

/// The `notify` event of a device's history: the outcome, and the campaign it belonged to.
pub(crate) fn notify_event(mac: Mac, at: i64, outcome: &Outcome, campaign: Option<i64>) -> NewEvent {
    let mut detail = serde_json::to_value(outcome).unwrap_or_default();
    if let (Some(id), Some(map)) = (campaign, detail.as_object_mut()) {
        map.insert("campaign".into(), id.into());
    }
    NewEvent { mac, at, kind: "notify".into(), detail }
}
