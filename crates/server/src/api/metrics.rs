//! The pipeline's counters on `/metrics`.
//!
//! | metric | type |
//! |---|---|
//! | `dozor_pipeline_messages_total`, `dozor_pipeline_bad_messages_total` | counter |
//! | `dozor_pipeline_events_total` (processed), `dozor_pipeline_bad_events_total` | counter |
//! | `dozor_pipeline_events_stored_total`, `dozor_pipeline_events_duplicate_total` | counter |
//! | `dozor_pipeline_detections_total` | counter |
//! | `dozor_pipeline_intel_matches_total` (events matching a threat-intel indicator) | counter |
//! | `dozor_pipeline_alerts_created_total`, `dozor_pipeline_alerts_updated_total` | counter |
//! | `dozor_event_to_alert_latency_seconds` (ingest → the commit that stored the alert) | histogram |
//! | `dozor_event_to_store_latency_seconds` (ingest → the commit that stored the event) | histogram |

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dozor_pipeline::PipelineStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::registry::{Registry, Unit};

/// Exports [`PipelineStats`] (read at each scrape). The server adds it to `/metrics` by itself
/// when [`crate::state::ApiState::pipeline_stats`] is set; register it yourself
/// (`Metrics::builder().registry_mut().register_collector(...)`) only in a process that has
/// no `ApiState`, or the metrics appear twice.
#[derive(Debug, Clone)]
pub struct PipelineCollector(pub Arc<PipelineStats>);

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &AtomicU64,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(value.load(Ordering::Relaxed));
    let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
    counter.encode(metric)
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &dozor_pipeline::Histogram,
) -> Result<(), std::fmt::Error> {
    let (cumulative, total, sum) = h.snapshot();
    // The encoder wants per-bucket counts (it accumulates them) and the +Inf bucket.
    let mut buckets = Vec::with_capacity(cumulative.len() + 1);
    let mut previous = 0;
    for (bound, count) in cumulative {
        buckets.push((bound, count.saturating_sub(previous)));
        previous = count;
    }
    buckets.push((f64::INFINITY, total.saturating_sub(previous)));
    let mut metric =
        encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    metric.encode_histogram::<NoLabelSet>(sum, total, &buckets, None)
}

impl Collector for PipelineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &*self.0;
        let e = &mut encoder;
        counter(
            e,
            "pipeline_messages",
            "Bus messages processed by the pipeline",
            &s.messages,
        )?;
        counter(
            e,
            "pipeline_bad_messages",
            "Bus messages dropped as unreadable",
            &s.bad_messages,
        )?;
        counter(
            e,
            "pipeline_events",
            "Events processed by the pipeline",
            &s.events,
        )?;
        counter(
            e,
            "pipeline_bad_events",
            "Events dropped by the pipeline (no event.id)",
            &s.bad_events,
        )?;
        counter(
            e,
            "pipeline_events_stored",
            "Events stored (new)",
            &s.stored,
        )?;
        counter(
            e,
            "pipeline_events_duplicate",
            "Events already stored (redelivery or resend)",
            &s.duplicates,
        )?;
        counter(
            e,
            "pipeline_detections",
            "Rule detections recorded into alerts",
            &s.detections,
        )?;
        counter(
            e,
            "pipeline_intel_matches",
            "Threat-intelligence matches (indicator, event, field) recorded",
            &s.intel_matches,
        )?;
        counter(
            e,
            "pipeline_alerts_created",
            "Alerts opened",
            &s.alerts_created,
        )?;
        counter(
            e,
            "pipeline_alerts_updated",
            "Alerts that absorbed repeated detections",
            &s.alerts_updated,
        )?;
        histogram(
            e,
            "event_to_alert_latency",
            "Time from ingest of an event to the commit of its alert",
            &s.alert_latency,
        )?;
        histogram(
            e,
            "event_to_store_latency",
            "Time from ingest of an event to its commit in the store",
            &s.store_latency,
        )
    }
}

/// Appends the pipeline metrics to an OpenMetrics exposition (before its `# EOF`).
pub(super) fn append(stats: Arc<PipelineStats>, text: &mut String) {
    let mut registry = Registry::with_prefix("dozor");
    registry.register_collector(Box::new(PipelineCollector(stats)));
    let mut extra = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut extra, &registry) {
        tracing::error!("pipeline metrics encoding failed: {e}");
        return;
    }
    let trimmed = text.trim_end();
    let body_len = trimmed.strip_suffix("# EOF").map_or(text.len(), str::len);
    text.truncate(body_len);
    text.push_str(&extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let stats = Arc::new(PipelineStats::default());
        stats.events.fetch_add(5, Ordering::Relaxed);
        stats.alerts_created.fetch_add(2, Ordering::Relaxed);
        stats.alert_latency.observe(0.003);
        stats.alert_latency.observe(0.2);
        stats.alert_latency.observe(60.0);
        let mut text = crate::Metrics::default().render();
        append(stats, &mut text);
        for needle in [
            "dozor_pipeline_events_total 5\n",
            "dozor_pipeline_alerts_created_total 2\n",
            "# TYPE dozor_event_to_alert_latency_seconds histogram\n",
            "dozor_event_to_alert_latency_seconds_bucket{le=\"0.005\"} 1\n",
            "dozor_event_to_alert_latency_seconds_bucket{le=\"0.25\"} 2\n",
            "dozor_event_to_alert_latency_seconds_bucket{le=\"10.0\"} 2\n",
            "dozor_event_to_alert_latency_seconds_bucket{le=\"+Inf\"} 3\n",
            "dozor_event_to_alert_latency_seconds_count 3\n",
            "dozor_ingest_events_accepted_total 0\n",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in\n{text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}
