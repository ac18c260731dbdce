//! Metrics exposed at `/metrics` on the admin listener, in the OpenMetrics text format.
//!
//! Two kinds live here. The server-wide counters and gauges are plain atomics, read at scrape
//! time: the cheapest thing on the hot path, and their names are unchanged from earlier
//! releases. The labelled metrics (latency histograms per vendor, refusals by reason, NOTIFY
//! results, campaigns) are `prometheus-client` metrics in `labelled`, their labels drawn
//! only from the closed sets of [`labels`]. A scrape encodes both with `prometheus-client`.

mod labelled;
pub mod labels;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use sipprov_model::{CampaignState, CheckSyncResult};

pub use labelled::{BlockedBy, NotifySource};
use labels::{HttpOutcome, PnpOutcome, RefusalReason, VendorLabel};

/// The `Content-Type` of a scrape (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Server-wide counters, and the labelled metrics.
#[derive(Default)]
pub struct Metrics {
    /// Histograms and labelled counters.
    labelled: labelled::Labelled,
    /// Files served with 200.
    pub http_served: AtomicU64,
    /// Conditional requests answered 304.
    pub http_not_modified: AtomicU64,
    /// Requests naming no known device or file (404).
    pub http_unknown_device: AtomicU64,
    /// Paths refused before any lookup (not a plain file name: traversal, odd characters).
    pub http_bad_path: AtomicU64,
    /// Requests refused by authentication, allow-lists or the throttle.
    pub http_refused: AtomicU64,
    /// Renders that failed (the phone got a 500).
    pub http_render_errors: AtomicU64,
    /// Files rendered (cache misses and changes).
    pub renders: AtomicU64,
    /// Files served from the render cache.
    pub cache_hits: AtomicU64,
    /// Fetch records dropped: the writer's queue or the fetch ledger was full, or the store
    /// could not write and the retry buffer was full.
    pub fetch_records_dropped: AtomicU64,
    /// Of those, served fetches whose wait for room in the fetch log ran past its bound.
    pub fetch_records_dropped_waiting: AtomicU64,
    /// Of those, device events and content change times that found the fetch log full.
    pub fetch_records_dropped_full: AtomicU64,
    /// Served fetches whose answer the fetch log held back while its writer was behind (a
    /// short pause as its ledger fills, or a wait for room once it is full; see `fetchlog`).
    pub fetches_held_back: AtomicU64,
    /// Writes of fetch records that failed and will be retried (see `fetchlog`).
    pub store_write_failures: AtomicU64,
    /// Gauge: fetch records waiting to be written.
    pub fetch_records_pending: AtomicU64,
    /// Connections reset at accept: their source held `limits.connections_per_source` already.
    pub connections_refused_per_source: AtomicU64,
    /// Connections reset at accept: the listener's connection budget was spent.
    pub connections_refused_global: AtomicU64,
    /// Inbound connections open now, on every listener (a gauge).
    pub connections_open: AtomicU64,
    /// Downloads of stored files (firmware, resources) answered 200 or 206.
    pub file_downloads: AtomicU64,
    /// Bytes of stored files handed to connections (config files are not counted).
    pub file_bytes_served: std::sync::Arc<AtomicU64>,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Times one provisioning request: `vendor` as identified (`unknown` before that or
    /// when nothing matched), the outcome from the response's status.
    pub fn observe_http(&self, vendor: VendorLabel, status: axum::http::StatusCode, elapsed: Duration) {
        self.labelled.observe_http(vendor, HttpOutcome::of(status), elapsed);
    }

    /// Counts a refused provisioning request under its reason.
    pub fn refusal(&self, reason: RefusalReason) {
        self.labelled.refusal(reason);
    }

    /// Counts a source the failure throttle has just blocked.
    pub fn source_blocked(&self, by: BlockedBy) {
        self.labelled.source_blocked(by);
    }

    /// Records a check-sync NOTIFY's result and, when one was sent, its round trip.
    pub fn observe_notify(
        &self,
        vendor: VendorLabel,
        result: CheckSyncResult,
        source: NotifySource,
        round_trip: Option<Duration>,
    ) {
        self.labelled.observe_notify(vendor, result, source, round_trip);
    }

    /// Times a PnP answer: from the SUBSCRIBE to the end of its NOTIFY's transaction.
    pub fn observe_pnp(&self, vendor: VendorLabel, delivered: bool, elapsed: Duration) {
        let outcome = if delivered { PnpOutcome::Delivered } else { PnpOutcome::Failed };
        self.labelled.observe_pnp(vendor, outcome, elapsed);
    }

    /// Counts a campaign that reached `state` (`done` or `cancelled`).
    pub fn campaign_finished(&self, state: CampaignState) {
        self.labelled.campaign_finished(state);
    }

    /// Counts a campaign as running until the returned guard is dropped.
    pub fn campaign_running(&self) -> RunningCampaign<'_> {
        self.labelled.campaigns_running.inc();
        RunningCampaign(self)
    }

    /// Encodes every metric, the server-wide ones read now, as OpenMetrics text.
    ///
    /// `devices` is the inventory's size; `sip` the SIP endpoint, when there is one.
    pub fn render(&self, devices: usize, sip: Option<&sipprov_sip::Endpoint>) -> String {
        let mut now = Registry::default();
        self.register_server_wide(&mut now, devices);
        if let Some(endpoint) = sip {
            register_sip(&mut now, endpoint);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &now)
            .and_then(|()| encode_registry(&mut out, &self.labelled.registry))
            .and_then(|()| encode_eof(&mut out));
        out
    }

    fn register_server_wide(&self, registry: &mut Registry, devices: usize) {
        let load = |counter: &AtomicU64| ConstCounter::new(counter.load(Ordering::Relaxed));
        let counters: [(&str, &str, &AtomicU64); 17] = [
            ("sipprov_http_files_served", "Config files served with 200", &self.http_served),
            ("sipprov_http_not_modified", "Conditional requests answered 304", &self.http_not_modified),
            ("sipprov_http_unknown_device", "Requests for unknown devices (404)", &self.http_unknown_device),
            ("sipprov_http_bad_path", "Malformed or suspicious paths refused", &self.http_bad_path),
            ("sipprov_http_refused", "Requests refused (all reasons; see sipprov_http_refusals)", &self.http_refused),
            ("sipprov_http_render_errors", "Renders that failed (template errors)", &self.http_render_errors),
            ("sipprov_renders", "Files rendered from templates", &self.renders),
            ("sipprov_render_cache_hits", "Files served from the render cache", &self.cache_hits),
            (
                "sipprov_fetch_records_dropped",
                "Fetch records dropped under overload or while the database could not write",
                &self.fetch_records_dropped,
            ),
            (
                "sipprov_fetch_records_dropped_waiting",
                "Of the fetch records dropped: served fetches whose wait for room in the fetch log ran out",
                &self.fetch_records_dropped_waiting,
            ),
            (
                "sipprov_fetch_records_dropped_full",
                "Of the fetch records dropped: device events and content change times that found the fetch log full",
                &self.fetch_records_dropped_full,
            ),
            (
                "sipprov_fetches_held_back",
                "Served fetches whose answer waited for the fetch log's writer to catch up (recorded all the same)",
                &self.fetches_held_back,
            ),
            (
                "sipprov_store_write_failures",
                "Fetch record writes that failed (database full, read-only or unreachable) and are retried",
                &self.store_write_failures,
            ),
            (
                "sipprov_connections_refused_per_source",
                "Connections reset at accept: over limits.connections_per_source",
                &self.connections_refused_per_source,
            ),
            (
                "sipprov_connections_refused_global",
                "Connections reset at accept: the connection budget was spent",
                &self.connections_refused_global,
            ),
            (
                "sipprov_file_downloads",
                "Stored files (firmware, resources) served with 200 or 206",
                &self.file_downloads,
            ),
            ("sipprov_file_bytes_served", "Bytes of stored files sent to clients", &self.file_bytes_served),
        ];
        for (name, help, value) in counters {
            registry.register(name, help, load(value));
        }
        let gauge = |value: u64| ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register("sipprov_devices", "Devices in the inventory", gauge(devices as u64));
        registry.register(
            "sipprov_fetch_records_pending",
            "Fetch records waiting to be written",
            gauge(self.fetch_records_pending.load(Ordering::Relaxed)),
        );
        registry.register(
            "sipprov_connections_open",
            "Inbound connections open (HTTP, HTTPS, admin API, SIP TCP and TLS)",
            gauge(self.connections_open.load(Ordering::Relaxed)),
        );
    }
}

/// Holds a campaign in the `sipprov_campaigns_running` gauge; dropping it takes it out, on
/// every way a campaign's driving ends (finished, cancelled, or failed on a store error).
pub struct RunningCampaign<'a>(&'a Metrics);

impl Drop for RunningCampaign<'_> {
    fn drop(&mut self) {
        self.0.labelled.campaigns_running.dec();
    }
}

/// The SIP endpoint's counters and transaction tables.
fn register_sip(registry: &mut Registry, endpoint: &sipprov_sip::Endpoint) {
    let st = endpoint.stats();
    let counters = [
        ("sipprov_sip_requests_sent", "SIP requests sent (first transmissions)", st.requests_sent),
        ("sipprov_sip_retransmissions", "SIP request retransmissions (Timer E)", st.retransmissions),
        ("sipprov_sip_timeouts", "SIP client transactions ended by Timer F", st.timeouts),
        ("sipprov_sip_requests_received", "New SIP requests received", st.requests_received),
        ("sipprov_sip_retransmissions_absorbed", "Retransmitted requests absorbed", st.retransmissions_absorbed),
        ("sipprov_sip_responses_sent", "SIP responses sent", st.responses_sent),
        ("sipprov_sip_malformed", "Received SIP messages refused as malformed", st.malformed),
        (
            "sipprov_sip_requests_rate_limited",
            "SIP requests dropped unanswered: their source was over its rate",
            st.requests_rate_limited,
        ),
        (
            "sipprov_sip_server_transactions_evicted",
            "Server transactions forgotten early to keep the table bounded",
            st.server_transactions_evicted,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    let gauge = |n: usize| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
    registry.register(
        "sipprov_sip_client_transactions",
        "Client transactions running or in Timer K",
        gauge(endpoint.client_transactions()),
    );
    registry.register(
        "sipprov_sip_server_transactions",
        "Server transactions remembered",
        gauge(endpoint.server_transactions()),
    );
}
