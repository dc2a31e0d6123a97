//! Pipeline workers: take batches of normalized events from the bus, enrich them, run the
//! Sigma rules (and correlations), store events and alerts in one transaction, acknowledge
//! the messages, and announce the alerts. File scan findings (events of `dozor-scan` with a
//! malicious or suspicious verdict, see `dozor_scan::alert_of_event`) raise alerts too, with
//! the rule id `dozor-scan/<engine>/<rule or signature>` and the finding's severity as level.
//!
//! ```text
//! bus.receive ─► parse ─► enrich (GeoIP/ASN) ─► detect (Sigma + correlations)
//!      ▲                                              │
//!      └──── ack ◄── store.store_batch (one commit) ◄─┘ ──► alert notices (SSE)
//! ```
//!
//! Delivery is at least once: a message is acknowledged only after the store committed, and
//! the store ignores events it already has (and their detections), so a redelivered batch —
//! after a worker crash — changes nothing.

pub mod intel;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dozor_bus::{Bus, Delivery};
use dozor_enrich::Enricher;
use dozor_sigma::Detector;
use dozor_store::{Detection, Level, NewEvent, NewIntelMatch, Store};
use serde_json::Value as Json;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// How a worker batches and aggregates.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Bus messages taken per cycle (each message is one ingest batch).
    pub messages_per_cycle: usize,
    /// Most message bytes parsed, detected and stored in one transaction; a cycle's further
    /// messages go in further transactions. It bounds a worker's memory: parsed documents
    /// take several times their JSON size (32 batches of 1,000 Windows events held ~45 MB
    /// of JSON, ~300 MB parsed, in each worker at once).
    pub cycle_bytes: usize,
    /// How long a receive waits for the first message.
    pub receive_wait: Duration,
    /// Repeats of a rule on an agent within this window fold into one alert.
    pub alert_window: Duration,
    /// How often the enabled/disabled state of rules is re-read from the store.
    pub rule_state_refresh: Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            messages_per_cycle: 32,
            cycle_bytes: 8 << 20,
            receive_wait: Duration::from_millis(200),
            alert_window: Duration::from_secs(600),
            rule_state_refresh: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("bus: {0}")]
    Bus(#[from] dozor_bus::BusError),
    #[error("store: {0}")]
    Store(#[from] dozor_store::StoreError),
    #[error("worker task failed: {0}")]
    Task(String),
}

/// An alert that was opened or updated, for live subscribers (SSE): the API's own shape.
pub use dozor_store::api::AlertNotice;

/// How long a stopping worker keeps draining the queue.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Counters and the event-to-alert latency histogram, shared with `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub messages: AtomicU64,
    pub bad_messages: AtomicU64,
    pub events: AtomicU64,
    pub bad_events: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub detections: AtomicU64,
    pub alerts_created: AtomicU64,
    pub alerts_updated: AtomicU64,
    /// Indicator matches recorded (new ones; see the `intel` stage).
    pub intel_matches: AtomicU64,
    /// Time from ingest (`event.ingested`) to the commit that stored the event's alert.
    pub alert_latency: Histogram,
    /// Time from ingest to the commit of the event itself.
    pub store_latency: Histogram,
}

/// A fixed-bucket latency histogram in the Prometheus style (cumulative on export).
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in seconds.
    pub bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    total: AtomicU64,
}

const LATENCY_BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            bounds: LATENCY_BOUNDS,
            counts: LATENCY_BOUNDS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let seconds = seconds.max(0.0);
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Cumulative counts per bound, then (+Inf count, sum in seconds).
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut acc = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                acc += c.load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect();
        let total = self.total.load(Ordering::Relaxed);
        (
            buckets,
            total,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }

    /// The smallest bucket bound below which at least `q` of the observations fall.
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        let (buckets, total, _) = self.snapshot();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        buckets
            .iter()
            .find(|(_, c)| *c >= want)
            .map(|(b, _)| *b)
            .or(Some(f64::INFINITY))
    }
}

/// One pipeline worker. Several can run in one process or in many processes (consumer
/// groups); correlation state is per worker.
pub struct Worker {
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    enricher: Option<Arc<Enricher>>,
    detector: Arc<Mutex<Detector>>,
    options: PipelineOptions,
    notices: broadcast::Sender<AlertNotice>,
    stats: Arc<PipelineStats>,
    disabled_rules: Mutex<(HashSet<String>, Option<std::time::Instant>)>,
    intel: intel::IntelHandle,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The alert level of a Sigma rule's level. A match rather than a `From`: neither type is this
/// crate's (the orphan rule), `dozor-model` depends on no engine and `dozor-sigma` does not
/// take the model in for this; the match stops compiling if either enum grows.
fn level_of(l: dozor_sigma::Level) -> Level {
    match l {
        dozor_sigma::Level::Informational => Level::Informational,
        dozor_sigma::Level::Low => Level::Low,
        dozor_sigma::Level::Medium => Level::Medium,
        dozor_sigma::Level::High => Level::High,
        dozor_sigma::Level::Critical => Level::Critical,
    }
}

/// The alert level of a file scan finding's severity.
fn severity_level(s: dozor_scan::Severity) -> Level {
    match s {
        dozor_scan::Severity::Informational => Level::Informational,
        dozor_scan::Severity::Low => Level::Low,
        dozor_scan::Severity::Medium => Level::Medium,
        dozor_scan::Severity::High => Level::High,
        dozor_scan::Severity::Critical => Level::Critical,
    }
}

/// What the CPU-bound part of a cycle produced.
struct Prepared {
    events: Vec<NewEvent>,
    detections: Vec<Detection>,
    intel_matches: Vec<NewIntelMatch>,
    bad_messages: u64,
    bad_events: u64,
}

impl Worker {
    pub fn new(
        bus: Arc<dyn Bus>,
        store: Arc<dyn Store>,
        enricher: Option<Arc<Enricher>>,
        detector: Detector,
        options: PipelineOptions,
        notices: broadcast::Sender<AlertNotice>,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Worker {
            bus,
            store,
            enricher,
            detector: Arc::new(Mutex::new(detector)),
            options,
            notices,
            stats,
            disabled_rules: Mutex::new((HashSet::new(), None)),
            intel: intel::IntelHandle::default(),
        }
    }

    /// Matches events against the indicators of `handle` (the server swaps snapshots in).
    pub fn with_intel(mut self, handle: intel::IntelHandle) -> Self {
        self.intel = handle;
        self
    }

    /// The worker's detector, for swapping in a reloaded rule set.
    pub fn detector(&self) -> Arc<Mutex<Detector>> {
        self.detector.clone()
    }

    /// Runs until `shutdown` turns true. Errors of one cycle are logged and retried after a
    /// pause: the messages stay on the bus and are redelivered.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) {
        // A cycle is never cancelled halfway (its receive waits at most `receive_wait`), so a
        // batch taken from the queue is always committed and acked.
        while !*shutdown.borrow() {
            if let Err(e) = self.process_once().await {
                tracing::error!("pipeline cycle failed, will retry: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        // Drain what the queue still holds: the in-process queue dies with the process, and
        // ingest has stopped accepting by now.
        let deadline = std::time::Instant::now() + DRAIN_LIMIT;
        while std::time::Instant::now() < deadline {
            match self.process_once().await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("pipeline drain failed: {e}");
                    break;
                }
            }
        }
    }

    async fn disabled_rules(&self) -> HashSet<String> {
        let stale = {
            let guard = self
                .disabled_rules
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            guard
                .1
                .is_none_or(|t| t.elapsed() >= self.options.rule_state_refresh)
        };
        if stale {
            match self.store.list_rule_states().await {
                Ok(states) => {
                    let set: HashSet<String> = states
                        .into_iter()
                        .filter(|s| !s.enabled)
                        .map(|s| s.rule_id)
                        .collect();
                    let mut guard = self
                        .disabled_rules
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    *guard = (set, Some(std::time::Instant::now()));
                }
                Err(e) => tracing::warn!("reading rule states: {e}"),
            }
        }
        self.disabled_rules
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// One cycle: receive, then process, commit and ack the messages in groups of at most
    /// `cycle_bytes`. Returns the number of events processed.
    pub async fn process_once(&self) -> Result<usize, PipelineError> {
        let deliveries = self
            .bus
            .receive(self.options.messages_per_cycle, self.options.receive_wait)
            .await?;
        if deliveries.is_empty() {
            return Ok(0);
        }
        let disabled = Arc::new(self.disabled_rules().await);
        let mut processed = 0;
        for group in groups_of_bytes(deliveries, self.options.cycle_bytes) {
            processed += self.commit_group(group, disabled.clone()).await?;
        }
        Ok(processed)
    }

    /// Parses, detects, stores (one transaction) and acks one group of messages.
    async fn commit_group(
        &self,
        deliveries: Vec<Delivery>,
        disabled: Arc<HashSet<String>>,
    ) -> Result<usize, PipelineError> {
        let ids: Vec<_> = deliveries.iter().map(|d| d.id.clone()).collect();
        let detector = self.detector.clone();
        let enricher = self.enricher.clone();
        let intel = self.intel.current();
        let prepared = tokio::task::spawn_blocking(move || {
            prepare(
                deliveries,
                &detector,
                enricher.as_deref(),
                &intel,
                &disabled,
            )
        })
        .await
        .map_err(|e| PipelineError::Task(e.to_string()))?;

        let report = match self
            .store
            .store_batch(
                &prepared.events,
                &prepared.detections,
                self.options.alert_window,
            )
            .await
        {
            Ok(r) => r,
            Err(dozor_store::StoreError::InvalidArgument(reason)) => {
                // The batch itself is bad: retrying can never succeed, so it is dropped (acked)
                // and counted instead of blocking the queue.
                tracing::error!("dropping a batch the store refuses: {reason}");
                self.bus.ack(&ids).await?;
                self.stats
                    .bad_messages
                    .fetch_add(ids.len() as u64, Ordering::Relaxed);
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let committed = now_millis();
        // Matches are recorded before the ack and once per (indicator, event, field): a
        // redelivered batch records none twice.
        if !prepared.intel_matches.is_empty() {
            let new = self
                .store
                .record_intel_matches(&prepared.intel_matches, committed)
                .await?;
            self.stats
                .intel_matches
                .fetch_add(new.iter().filter(|n| **n).count() as u64, Ordering::Relaxed);
        }
        self.bus.ack(&ids).await?;

        let s = &self.stats;
        s.messages.fetch_add(ids.len() as u64, Ordering::Relaxed);
        s.bad_messages
            .fetch_add(prepared.bad_messages, Ordering::Relaxed);
        s.bad_events
            .fetch_add(prepared.bad_events, Ordering::Relaxed);
        s.events
            .fetch_add(prepared.events.len() as u64, Ordering::Relaxed);
        s.stored
            .fetch_add(report.inserted as u64, Ordering::Relaxed);
        s.duplicates
            .fetch_add(report.duplicates as u64, Ordering::Relaxed);
        s.detections
            .fetch_add(report.detections_recorded as u64, Ordering::Relaxed);
        s.alerts_created
            .fetch_add(report.alerts_created as u64, Ordering::Relaxed);
        s.alerts_updated
            .fetch_add(report.alerts_updated as u64, Ordering::Relaxed);
        for e in &prepared.events {
            s.store_latency
                .observe((committed - e.received_at) as f64 / 1000.0);
        }
        let detected: HashSet<Uuid> = prepared.detections.iter().map(|d| d.event_id).collect();
        for e in prepared.events.iter().filter(|e| detected.contains(&e.id)) {
            s.alert_latency
                .observe((committed - e.received_at) as f64 / 1000.0);
        }
        for outcome in report.alerts {
            // No subscriber is not an error.
            let _ = self.notices.send(AlertNotice {
                change: outcome.change,
                alert: outcome.alert,
            });
        }
        Ok(prepared.events.len())
    }
}

/// Splits a cycle's messages into groups of at most `max_bytes` of payload, in order (a
/// message larger than that is a group of its own).
fn groups_of_bytes(deliveries: Vec<Delivery>, max_bytes: usize) -> Vec<Vec<Delivery>> {
    let sizes: Vec<usize> = deliveries.iter().map(|d| d.payload.len()).collect();
    let mut rest = deliveries.into_iter();
    group_lengths(&sizes, max_bytes)
        .into_iter()
        .map(|n| rest.by_ref().take(n).collect())
        .collect()
}

/// How many consecutive items of these sizes go in each group of at most `max` (each group
/// has at least one item).
fn group_lengths(sizes: &[usize], max: usize) -> Vec<usize> {
    let mut lengths: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for &size in sizes {
        match lengths.last_mut() {
            Some(n) if bytes + size <= max => *n += 1,
            _ => {
                bytes = 0;
                lengths.push(1);
            }
        }
        bytes += size;
    }
    lengths
}

/// Parses, enriches and runs detection over one group of messages (CPU-bound).
fn prepare(
    deliveries: Vec<Delivery>,
    detector: &Mutex<Detector>,
    enricher: Option<&Enricher>,
    intel: &intel::IntelSnapshot,
    disabled: &HashSet<String>,
) -> Prepared {
    let mut out = Prepared {
        events: Vec::new(),
        detections: Vec::new(),
        intel_matches: Vec::new(),
        bad_messages: 0,
        bad_events: 0,
    };
    let mut detector = detector.lock().unwrap_or_else(|p| p.into_inner());
    let mut scratch = detector.engine().new_scratch();
    let mut matched = Vec::new();
    let mut hits = Vec::new();
    let received_default = now_millis();
    for delivery in deliveries {
        let docs: Vec<Json> = match serde_json::from_slice(&delivery.payload) {
            Ok(Json::Array(items)) => items,
            Ok(single @ Json::Object(_)) => vec![single],
            Ok(_) | Err(_) => {
                // A message no worker can ever read: drop it (acked) rather than block the queue.
                tracing::error!(
                    "dropping an unreadable bus message ({} bytes)",
                    delivery.payload.len()
                );
                out.bad_messages += 1;
                continue;
            }
        };
        for mut doc in docs {
            let Some(id) = doc
                .pointer("/event/id")
                .and_then(Json::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
            else {
                out.bad_events += 1;
                continue;
            };
            if let Some(e) = enricher {
                e.enrich(&mut doc);
            }
            let ts =
                dozor_event::EventFields::timestamp_millis(&dozor_event::NormalizedEvent(&doc))
                    .unwrap_or(received_default);
            let received_at = doc
                .pointer("/event/ingested")
                .and_then(Json::as_str)
                .and_then(dozor_event::parse_rfc3339_millis)
                .unwrap_or(received_default);
            let agent_id = doc
                .pointer("/agent/id")
                .and_then(Json::as_str)
                .map(str::to_owned);
            // Indicators first: the `threat.*` fields they add are there for Sigma too.
            let found = intel.apply(
                &mut doc,
                intel::EventRef {
                    id,
                    ts,
                    agent_id: agent_id.as_deref(),
                    retro: false,
                },
            );
            out.intel_matches.extend(found.matches);
            out.detections.extend(
                found
                    .detections
                    .into_iter()
                    .filter(|d| !disabled.contains(&d.rule_id)),
            );
            let host = dozor_store::event_host(&doc).map(str::to_owned);
            let view = dozor_event::NormalizedEvent(&doc);
            matched.clear();
            detector.engine().matches(&view, &mut scratch, &mut matched);
            for &rule in &matched {
                let meta = &detector.engine().rules()[rule as usize];
                if disabled.contains(&meta.id) {
                    continue;
                }
                let own = detector
                    .reports_standalone(rule)
                    .then(|| detection(meta, agent_id.clone(), host.clone(), id, ts));
                if detector.feeds_correlation(rule) {
                    hits.clear();
                    detector.correlate(rule, &view, 0, &mut hits);
                    for hit in &hits {
                        let cmeta = &detector.correlation_rules()[hit.correlation];
                        if !disabled.contains(&cmeta.id) {
                            out.detections.push(detection(
                                cmeta,
                                agent_id.clone(),
                                host.clone(),
                                id,
                                ts,
                            ));
                        }
                    }
                }
                out.detections.extend(own);
            }
            // File scan verdicts (from agents and the server's sample scans) raise alerts
            // of their own, folded like any other.
            if let Some(alert) = dozor_scan::alert_of_event(&doc)
                && !disabled.contains(&alert.rule_id)
            {
                out.detections.push(Detection {
                    rule_id: alert.rule_id,
                    rule_title: alert.title,
                    level: severity_level(alert.level),
                    tags: alert.tags,
                    agent_id: agent_id.clone(),
                    host: host.clone(),
                    event_id: id,
                    ts,
                });
            }
            out.events.push(NewEvent {
                id,
                ts,
                received_at,
                agent_id,
                doc,
            });
        }
    }
    out
}

fn detection(
    meta: &dozor_sigma::RuleMeta,
    agent_id: Option<String>,
    host: Option<String>,
    event_id: Uuid,
    ts: i64,
) -> Detection {
    Detection {
        rule_id: if meta.id.is_empty() {
            meta.title.clone()
        } else {
            meta.id.clone()
        },
        rule_title: meta.title.clone(),
        level: level_of(meta.level),
        tags: meta.tags.clone(),
        agent_id,
        host,
        event_id,
        ts,
    }
}

#[cfg(test)]
mod tests {
    use super::group_lengths;

    #[test]
    fn a_cycle_is_split_by_bytes_in_order() {
        assert_eq!(group_lengths(&[], 10), Vec::<usize>::new());
        assert_eq!(group_lengths(&[4, 4, 4, 4, 4], 10), [2, 2, 1]);
        assert_eq!(group_lengths(&[3, 3, 4, 1], 10), [3, 1]);
        // Larger than a group: alone, never dropped or merged.
        assert_eq!(group_lengths(&[2, 50, 2], 10), [1, 1, 1]);
        assert_eq!(group_lengths(&[50], 10), [1]);
    }
}
