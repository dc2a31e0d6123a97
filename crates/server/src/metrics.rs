//! Prometheus metrics (`/metrics`, OpenMetrics text) with `prometheus-client`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `dozor_ingest_events_accepted_total` | counter | |
//! | `dozor_ingest_events_rejected_total` | counter | |
//! | `dozor_ingest_events_duplicate_total` | counter | |
//! | `dozor_ingest_batches_read_total` | counter | `format` (`json`, `ndjson`, `protobuf`): batch bodies read (whatever became of their events) |
//! | `dozor_ingest_requests_refused_total` | counter | `reason` (problem slug: `too-large`, `queue-full`, `unauthorized`, ...) |
//! | `dozor_queue_depth` | gauge | read from [`crate::IngestSink::queue_depth`] at each scrape |
//! | `dozor_http_request_duration_seconds` | histogram | `method`, `route` (the route pattern), `status` |
//!
//! Other parts of the server (pipeline workers, store) add theirs through
//! [`MetricsBuilder::registry_mut`] before the server starts.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::ingest::report::IngestReport;

/// The content type of `/metrics`.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusedLabels {
    reason: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The server's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    accepted: Counter,
    rejected: Counter,
    duplicates: Counter,
    batches: Family<BatchLabels, Counter>,
    refused: Family<RefusedLabels, Counter>,
    queue_depth: Gauge,
    latency: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::builder().build()
    }
}

/// Registers the server's metrics; add yours with [`MetricsBuilder::registry_mut`].
pub struct MetricsBuilder {
    registry: Registry,
    metrics: Metrics,
}

impl MetricsBuilder {
    /// The `dozor`-prefixed registry, to register more metrics in.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn build(self) -> Metrics {
        Metrics {
            registry: Arc::new(self.registry),
            ..self.metrics
        }
    }
}

impl Metrics {
    pub fn builder() -> MetricsBuilder {
        let mut registry = Registry::with_prefix("dozor");
        let metrics = Metrics {
            registry: Arc::new(Registry::default()),
            accepted: Counter::default(),
            rejected: Counter::default(),
            duplicates: Counter::default(),
            batches: Family::default(),
            refused: Family::default(),
            queue_depth: Gauge::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        };
        registry.register(
            "ingest_events_accepted",
            "Events accepted by ingest and queued",
            metrics.accepted.clone(),
        );
        registry.register(
            "ingest_events_rejected",
            "Events rejected by ingest (invalid, unreadable or claiming another agent)",
            metrics.rejected.clone(),
        );
        registry.register(
            "ingest_events_duplicate",
            "Events dropped by ingest as already received (same event.id)",
            metrics.duplicates.clone(),
        );
        registry.register(
            "ingest_batches_read",
            "Batch bodies read by ingest, by wire format",
            metrics.batches.clone(),
        );
        registry.register(
            "ingest_requests_refused",
            "Ingest requests refused as a whole, by problem type",
            metrics.refused.clone(),
        );
        registry.register(
            "queue_depth",
            "Events waiting in the ingest queue",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            metrics.latency.clone(),
        );
        MetricsBuilder { registry, metrics }
    }

    pub(crate) fn record_report(&self, report: &IngestReport) {
        self.accepted.inc_by(report.accepted as u64);
        self.rejected.inc_by(report.rejected_events as u64);
        self.duplicates.inc_by(report.duplicates as u64);
    }

    /// A batch body was read in `format` (`json`, `ndjson` or `protobuf`).
    pub(crate) fn record_batch_format(&self, format: &'static str) {
        self.batches.get_or_create(&BatchLabels { format }).inc();
    }

    pub(crate) fn record_refused(&self, reason: &str) {
        self.refused
            .get_or_create(&RefusedLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets the queue depth gauge (done at every scrape from the sink).
    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("metrics encoding failed: {e}");
        }
        out
    }
}

/// Middleware: observes every request's latency by route pattern (not raw path, so the label
/// set stays small; unmatched paths are `unmatched`).
pub(crate) async fn track_latency(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .observe(start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric() {
        let mut builder = Metrics::builder();
        let extra = Counter::<u64>::default();
        builder
            .registry_mut()
            .register("worker_events", "Events processed", extra.clone());
        let m = builder.build();
        extra.inc();
        m.record_report(&IngestReport {
            received: 5,
            accepted: 3,
            duplicates: 1,
            rejected_events: 1,
            rejected: vec![],
        });
        m.record_refused("queue-full");
        m.set_queue_depth(7);
        let text = m.render();
        for needle in [
            "dozor_ingest_events_accepted_total 3",
            "dozor_ingest_events_rejected_total 1",
            "dozor_ingest_events_duplicate_total 1",
            "dozor_ingest_requests_refused_total{reason=\"queue-full\"} 1",
            "dozor_queue_depth 7",
            "dozor_worker_events_total 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
