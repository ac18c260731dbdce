//! The labelled metrics: latency histograms per vendor and counters per reason or result,
//! kept in a `prometheus-client` registry.
//!
//! Hot-path cost: a series is found by index into a table built for the closed label sets of
//! [`super::labels`], never by hashing label text. A histogram's series is created in its
//! family on its first observation (so a scrape shows only vendors that were seen) and kept in
//! a `OnceLock` slot: every later observation is an atomic load, an uncontended lock of that
//! one histogram and a bucket search. Counters are created up front, so a rate over a reason
//! that never happened reads 0 instead of "no data".

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sipprov_model::{CampaignState, CheckSyncResult};

use super::labels::{HttpOutcome, PnpOutcome, RefusalReason, VendorLabel};

/// A label set of one or two pairs, every value static (from a closed set).
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// Serve time of a provisioning request: sub-millisecond from the render cache, a few
/// milliseconds for a render, up to the seconds a response may be held for its date.
const HTTP_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A SIP transaction: a millisecond on a LAN, seconds with retransmissions, 32 s at Timer F
/// (64 × T1, RFC 3261 §17.1.2.2).
const SIP_BUCKETS: [f64; 15] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

fn sip_histogram() -> Histogram {
    Histogram::new(SIP_BUCKETS)
}

/// A histogram family labelled `vendor` and one more label from a closed set, its series kept
/// by index.
struct VendorGrid {
    family: Family<Labels<2>, Histogram, fn() -> Histogram>,
    /// The name of the second label, and its values by index.
    second: (&'static str, &'static [&'static str]),
    slots: Box<[OnceLock<Histogram>]>,
}

impl VendorGrid {
    fn new(make: fn() -> Histogram, second: (&'static str, &'static [&'static str])) -> VendorGrid {
        let slots = (0..VendorLabel::count() * second.1.len()).map(|_| OnceLock::new()).collect();
        VendorGrid { family: Family::new_with_constructor(make), second, slots }
    }

    fn observe(&self, vendor: VendorLabel, second: usize, elapsed: Duration) {
        let (name, values) = self.second;
        let (Some(slot), Some(value)) = (self.slots.get(vendor.index() * values.len() + second), values.get(second))
        else {
            return;
        };
        let histogram =
            slot.get_or_init(|| self.family.get_or_create_owned(&[("vendor", vendor.name()), (name, value)]));
        histogram.observe(elapsed.as_secs_f64());
    }
}

/// A counter family with one label, every series created up front and kept by index.
struct CounterRow {
    slots: Box<[Counter]>,
}

impl CounterRow {
    fn register(
        registry: &mut Registry,
        (name, help): (&str, &str),
        label: &'static str,
        values: &[&'static str],
    ) -> CounterRow {
        let family = Family::<Labels<1>, Counter>::default();
        let slots = values.iter().map(|v| family.get_or_create_owned(&[(label, v)])).collect();
        registry.register(name, help, family);
        CounterRow { slots }
    }

    fn inc(&self, index: usize) {
        if let Some(counter) = self.slots.get(index) {
            counter.inc();
        }
    }
}

/// Label values of an enum of stable names, as a static list.
macro_rules! names {
    ($ty:ty) => {{
        static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
        NAMES.get_or_init(|| <$ty>::ALL.iter().map(|v| v.as_str()).collect()).as_slice()
    }};
}

/// Where a check-sync NOTIFY was sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifySource {
    /// One device, from the admin API or the CLI.
    Direct,
    /// A campaign.
    Campaign,
}

/// Which protocol's requests made the failure throttle block a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockedBy {
    /// Provisioning HTTP(S) failures.
    Http,
    /// PnP SUBSCRIBEs.
    Pnp,
}

/// The labelled metrics and the registry they are encoded from.
pub(super) struct Labelled {
    pub(super) registry: Registry,
    http: VendorGrid,
    notify: VendorGrid,
    pnp: VendorGrid,
    refusals: CounterRow,
    blocked: CounterRow,
    notify_results: [CounterRow; 2],
    campaigns_finished: CounterRow,
    pub(super) campaigns_running: Gauge,
}

impl Default for Labelled {
    fn default() -> Labelled {
        let mut registry = Registry::default();
        let http = VendorGrid::new(http_histogram, ("outcome", names!(HttpOutcome)));
        let notify = VendorGrid::new(sip_histogram, ("result", names!(CheckSyncResult)));
        let pnp = VendorGrid::new(sip_histogram, ("outcome", names!(PnpOutcome)));
        registry.register(
            "sipprov_http_request_duration_seconds",
            "Provisioning HTTP(S) requests: time from the request to its response, by vendor and outcome",
            http.family.clone(),
        );
        registry.register(
            "sipprov_notify_duration_seconds",
            "Check-sync NOTIFY round trip (sent to final response or timeout), by vendor and result",
            notify.family.clone(),
        );
        registry.register(
            "sipprov_pnp_answer_duration_seconds",
            "PnP: time from a SUBSCRIBE to the end of the NOTIFY carrying the provisioning URL, by vendor",
            pnp.family.clone(),
        );
        let refusals = CounterRow::register(
            &mut registry,
            ("sipprov_http_refusals", "Provisioning requests refused, by reason"),
            "reason",
            names!(RefusalReason),
        );
        let blocked = CounterRow::register(
            &mut registry,
            ("sipprov_sources_blocked", "Sources blocked by the failure throttle, by the protocol that tipped it"),
            "protocol",
            &["http", "pnp"],
        );
        let results = names!(CheckSyncResult);
        let family = Family::<Labels<2>, Counter>::default();
        let row = |source| CounterRow {
            slots: results.iter().map(|r| family.get_or_create_owned(&[("source", source), ("result", r)])).collect(),
        };
        let notify_results = [row("direct"), row("campaign")];
        registry.register("sipprov_notify_results", "Check-sync NOTIFY outcomes, by sender and result", family);
        let campaigns_finished = CounterRow::register(
            &mut registry,
            ("sipprov_campaigns_finished", "Campaigns that finished, by final state"),
            "state",
            &["done", "cancelled"],
        );
        let campaigns_running = Gauge::default();
        registry.register("sipprov_campaigns_running", "Campaigns being driven now", campaigns_running.clone());
        Labelled {
            registry,
            http,
            notify,
            pnp,
            refusals,
            blocked,
            notify_results,
            campaigns_finished,
            campaigns_running,
        }
    }
}

impl Labelled {
    pub(super) fn observe_http(&self, vendor: VendorLabel, outcome: HttpOutcome, elapsed: Duration) {
        self.http.observe(vendor, outcome.index(), elapsed);
    }

    pub(super) fn observe_notify(
        &self,
        vendor: VendorLabel,
        result: CheckSyncResult,
        source: NotifySource,
        elapsed: Option<Duration>,
    ) {
        let index = CheckSyncResult::ALL.iter().position(|r| *r == result).unwrap_or(0);
        if let Some(elapsed) = elapsed {
            self.notify.observe(vendor, index, elapsed);
        }
        self.notify_results[source as usize].inc(index);
    }

    pub(super) fn observe_pnp(&self, vendor: VendorLabel, outcome: PnpOutcome, elapsed: Duration) {
        self.pnp.observe(vendor, outcome.index(), elapsed);
    }

    pub(super) fn refusal(&self, reason: RefusalReason) {
        self.refusals.inc(reason.index());
    }

    pub(super) fn source_blocked(&self, by: BlockedBy) {
        self.blocked.inc(by as usize);
    }

    pub(super) fn campaign_finished(&self, state: CampaignState) {
        match state {
            CampaignState::Done => self.campaigns_finished.inc(0),
            CampaignState::Cancelled => self.campaigns_finished.inc(1),
            CampaignState::Scheduled | CampaignState::Running => {}
        }
    }
}
