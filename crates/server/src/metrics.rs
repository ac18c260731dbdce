//! Counters exposed in Prometheus text format at `/metrics` on the admin listener.
//!
//! A handful of atomics, rendered by hand: cheaper on the hot path than a
//! metrics facade, and enough for what operators graph.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Server-wide counters.
#[derive(Default)]
pub struct Metrics {
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
    /// Fetch records dropped: the writer's queue was full, or the store could not write and
    /// the retry buffer was full.
    pub fetch_records_dropped: AtomicU64,
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
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders every counter in Prometheus text exposition format.
    pub fn render(&self, devices: usize) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 12] = [
            ("sipprov_http_files_served_total", "Config files served with 200", &self.http_served),
            ("sipprov_http_not_modified_total", "Conditional requests answered 304", &self.http_not_modified),
            ("sipprov_http_unknown_device_total", "Requests for unknown devices (404)", &self.http_unknown_device),
            ("sipprov_http_bad_path_total", "Malformed or suspicious paths refused", &self.http_bad_path),
            ("sipprov_http_refused_total", "Requests refused (User-Agent/MAC mismatch)", &self.http_refused),
            ("sipprov_http_render_errors_total", "Renders that failed (template errors)", &self.http_render_errors),
            ("sipprov_renders_total", "Files rendered from templates", &self.renders),
            ("sipprov_render_cache_hits_total", "Files served from the render cache", &self.cache_hits),
            (
                "sipprov_fetch_records_dropped_total",
                "Fetch records dropped under overload or while the database could not write",
                &self.fetch_records_dropped,
            ),
            (
                "sipprov_store_write_failures_total",
                "Fetch record writes that failed (database full, read-only or unreachable) and are retried",
                &self.store_write_failures,
            ),
            (
                "sipprov_connections_refused_per_source_total",
                "Connections reset at accept: over limits.connections_per_source",
                &self.connections_refused_per_source,
            ),
            (
                "sipprov_connections_refused_global_total",
                "Connections reset at accept: the connection budget was spent",
                &self.connections_refused_global,
            ),
        ];
        for (name, help, value) in counters {
            let _ =
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# HELP sipprov_devices Devices in the inventory\n# TYPE sipprov_devices gauge\nsipprov_devices {devices}"
        );
        let pending = self.fetch_records_pending.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP sipprov_fetch_records_pending Fetch records waiting to be written\n\
             # TYPE sipprov_fetch_records_pending gauge\nsipprov_fetch_records_pending {pending}"
        );
        let open = self.connections_open.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP sipprov_connections_open Inbound connections open (HTTP, HTTPS, admin API, SIP TCP and TLS)\n\
             # TYPE sipprov_connections_open gauge\nsipprov_connections_open {open}"
        );
        out
    }

    /// The SIP endpoint's counters and transaction tables, in the same format.
    pub fn render_sip(endpoint: &sipprov_sip::Endpoint) -> String {
        let st = endpoint.stats();
        let mut out = String::new();
        let counters = [
            ("sipprov_sip_requests_sent_total", "SIP requests sent (first transmissions)", st.requests_sent),
            ("sipprov_sip_retransmissions_total", "SIP request retransmissions (Timer E)", st.retransmissions),
            ("sipprov_sip_timeouts_total", "SIP client transactions ended by Timer F", st.timeouts),
            ("sipprov_sip_requests_received_total", "New SIP requests received", st.requests_received),
            (
                "sipprov_sip_retransmissions_absorbed_total",
                "Retransmitted requests absorbed",
                st.retransmissions_absorbed,
            ),
            ("sipprov_sip_responses_sent_total", "SIP responses sent", st.responses_sent),
            ("sipprov_sip_malformed_total", "Received SIP messages refused as malformed", st.malformed),
            (
                "sipprov_sip_requests_rate_limited_total",
                "SIP requests dropped unanswered: their source was over its rate",
                st.requests_rate_limited,
            ),
            (
                "sipprov_sip_server_transactions_evicted_total",
                "Server transactions forgotten early to keep the table bounded",
                st.server_transactions_evicted,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        let gauges = [
            (
                "sipprov_sip_client_transactions",
                "Client transactions running or in Timer K",
                endpoint.client_transactions(),
            ),
            ("sipprov_sip_server_transactions", "Server transactions remembered", endpoint.server_transactions()),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}
