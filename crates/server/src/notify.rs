//! The notifier: sends check-sync to a device of the inventory and records the outcome on it.
//!
//! It holds the SIP endpoint, which is bound before the notifier is built (see `wiring`), so
//! there is never a notifier without one. The NOTIFY itself is built by the `sipprov-checksync`
//! crate, the same one the server-less `sipprov notify` uses.

use std::sync::Arc;
use std::time::Instant;

use sipprov_model::Mac;
use sipprov_sip::{Credentials, Endpoint};
use sipprov_store::NewEvent;

use crate::checksync::{self, CheckSync, Outcome, Ready, Resolver};
use crate::fetchlog::{FetchLog, Record};
use crate::inventory::Inventory;
use crate::metrics::labels::VendorLabel;
use crate::metrics::{Metrics, NotifySource};

/// Why no NOTIFY could even be planned for a device (an outcome records everything after that).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The MAC is not in the inventory.
    #[error("device {0} not found")]
    UnknownDevice(Mac),
    /// Its vendor or settings give no Event to send.
    #[error(transparent)]
    CheckSync(#[from] checksync::CheckSyncError),
}

/// Sends check-sync NOTIFYs through the server's SIP endpoint.
pub struct Notifier {
    endpoint: Endpoint,
    inventory: Arc<Inventory>,
    events: FetchLog,
    metrics: Arc<Metrics>,
    /// `[sip] outbound_proxy`: where every NOTIFY goes first, when set.
    outbound_proxy: Option<String>,
}

impl Notifier {
    /// A notifier sending through `endpoint`, already bound, timing its NOTIFYs into `metrics`.
    pub fn new(
        endpoint: Endpoint,
        inventory: Arc<Inventory>,
        events: FetchLog,
        metrics: Arc<Metrics>,
        outbound_proxy: Option<String>,
    ) -> Notifier {
        Notifier { endpoint, inventory, events, metrics, outbound_proxy }
    }

    /// The server's metrics, for a campaign's NOTIFYs and its own counts.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metric label of a device's vendor (`unknown` for a MAC the inventory lacks).
    pub fn vendor_label(&self, mac: Mac) -> VendorLabel {
        self.inventory.device(mac).map_or(VendorLabel::UNKNOWN, |d| VendorLabel::of(&d.vendor))
    }

    /// The SIP endpoint, for a campaign's batch of transactions and for the metrics.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends a check-sync (or reboot) NOTIFY to one device and records the outcome in its history.
    ///
    /// The target is the device's `contact`; with `[sip] outbound_proxy` set the NOTIFY goes
    /// through that proxy, to the contact or else to the address of record
    /// `line.1.username@line.1.registrar`. A challenge is answered with line 1's credentials.
    pub async fn notify_device(&self, mac: Mac, reboot: bool) -> Result<Outcome, NotifyError> {
        let outcome = self.send_check_sync(mac, reboot).await?;
        self.events.record(Record::Event(notify_event(mac, sipprov_store::now_ms(), &outcome, None)));
        Ok(outcome)
    }

    /// Sends the NOTIFY and logs it, leaving the history event to the caller: a campaign writes
    /// it in the same transaction as the device's outcome.
    pub(crate) async fn send_check_sync(&self, mac: Mac, reboot: bool) -> Result<Outcome, NotifyError> {
        let vendor = self.vendor_label(mac);
        let outcome = match self.plan_check_sync(mac, reboot, &mut Resolver::default()).await? {
            Planned::Decided(outcome) => {
                self.metrics.observe_notify(vendor, outcome.result, NotifySource::Direct, None);
                outcome
            }
            Planned::Send { ready, credentials, event } => {
                let sent_at = Instant::now();
                let result = self.endpoint.send_request(ready.request, ready.target, credentials.as_ref()).await;
                let outcome = checksync::outcome(result, &event, ready.sent_to);
                let round_trip = Some(sent_at.elapsed());
                self.metrics.observe_notify(vendor, outcome.result, NotifySource::Direct, round_trip);
                outcome
            }
        };
        log_outcome(mac, &outcome);
        Ok(outcome)
    }

    /// Builds the device's NOTIFY, or decides its outcome when none can be sent (no target,
    /// an invalid contact...). Errors are for a device or a server that cannot be asked at all.
    pub(crate) async fn plan_check_sync(
        &self,
        mac: Mac,
        reboot: bool,
        resolver: &mut Resolver,
    ) -> Result<Planned, NotifyError> {
        let device = self.inventory.device(mac).ok_or(NotifyError::UnknownDevice(mac))?;
        self.plan_for(&device, reboot, resolver).await
    }

    /// [`Self::plan_check_sync`] for a device already looked up (a campaign looks each one up
    /// once for everything it needs of it).
    pub(crate) async fn plan_for(
        &self,
        device: &sipprov_store::DeviceRecord,
        reboot: bool,
        resolver: &mut Resolver,
    ) -> Result<Planned, NotifyError> {
        let mac = device.mac;
        let proxy = self.outbound_proxy.clone();
        // The settings are read through the device's levels, not merged into a copy: a campaign
        // plans a NOTIFY per device (see `Settings::layered`).
        let read = self.inventory.with_layers(device, |settings| {
            let event = checksync::device_event(&device.vendor, reboot, &settings)?;
            // Without a contact, through the outbound proxy: line 1's address of record.
            let registered = match (&device.contact, &proxy) {
                (None, Some(_)) => match (settings.get("line.1.username"), settings.get("line.1.registrar")) {
                    (Some(user), Some(registrar)) => Some(format!("sip:{user}@{registrar}")),
                    _ => None,
                },
                _ => None,
            };
            let credentials = checksync::line_credentials(&settings);
            let tls_name = checksync::tls_name(mac, &settings);
            Ok::<_, checksync::CheckSyncError>((event, registered, credentials, tls_name))
        });
        let (event, registered, credentials, tls_name) = read?;
        if reboot {
            if let Some(refusal) = self.reboot_refusal(device) {
                return Ok(Planned::Decided(Outcome::failed(
                    sipprov_model::CheckSyncResult::RebootDisabled,
                    refusal,
                    &event,
                )));
            }
        }
        let uri = match &device.contact {
            Some(contact) => Some(contact.to_string()),
            None => registered,
        };
        let Some(uri) = uri else {
            return Ok(Planned::Decided(Outcome::failed(
                sipprov_model::CheckSyncResult::NoTarget,
                "no SIP target known: set the device's contact, or [sip] outbound_proxy with line.1.username and line.1.registrar".into(),
                &event,
            )));
        };
        let cs = CheckSync { uri, event, from: None, proxy, transport: None, credentials, tls_name };
        Ok(match checksync::prepare(&self.endpoint, &cs, resolver).await {
            Ok(ready) => Planned::Send { ready, credentials: cs.credentials, event: cs.event },
            Err(outcome) => Planned::Decided(outcome),
        })
    }

    /// Why a reboot NOTIFY would not reboot this device: its file (rendered from its merged
    /// settings) tells the phone to ignore `reboot=true`, or `sip.notify_reboot = 0`. Sending it
    /// anyway would earn a 200 from a phone that then only re-provisions, reported as success.
    fn reboot_refusal(&self, device: &sipprov_store::DeviceRecord) -> Option<String> {
        let vendor = sipprov_vendors::registry().get(&device.vendor)?;
        let settings = self.inventory.merged_settings(device);
        match vendor.model(&device.model) {
            Some(model) => vendor.reboot_refusal(model, &settings),
            None => sipprov_vendors::mapping::reboot_refused_by_setting(&settings),
        }
    }
}

/// A device's check-sync, ready to send or already decided.
// `Send` is the common case and moves straight into the batch: boxing it would cost an
// allocation per NOTIFY to save stack space on the rare `Decided`.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Planned {
    /// The NOTIFY to send, with the line's credentials for a challenge and the event it carries.
    Send { ready: Ready, credentials: Option<Credentials>, event: String },
    /// Nothing can be sent; this is the outcome.
    Decided(Outcome),
}

/// One log line per check-sync sent.
pub(crate) fn log_outcome(mac: Mac, outcome: &Outcome) {
    tracing::info!(%mac, event = %outcome.event, result = %outcome.result, status = ?outcome.status, "check-sync sent");
}

/// The `notify` event of a device's history: the outcome, and the campaign it belonged to.
pub(crate) fn notify_event(mac: Mac, at: i64, outcome: &Outcome, campaign: Option<i64>) -> NewEvent {
    let detail = sipprov_api::NotifyOutcome { campaign, ..outcome.clone().into() };
    NewEvent::of(mac, at, &detail)
}
