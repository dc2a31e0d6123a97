//! The per-entity models fed from normalized (ECS-style) events, as Dozor stores them: one
//! [`Detector`] routes each event to the models it concerns — process starts to the rare
//! process and rare parent→child models, logons to the rare source and unusual hour models,
//! failed logons and every event to hourly count models, connections to the new destination
//! model, listening sockets to the new port model — and keeps the hourly counts until their
//! hour is over.
//!
//! Events should come in time order (a little disorder within the previous hour is fine: an
//! hour is closed only when an event two hours later arrives, or on [`Detector::flush`]).
//!
//! Each closed (host, hour) also becomes a feature row ([`crate::host_hours`]); the detector
//! keeps the rows of the last days, [`Detector::train_forest`] fits an isolation forest on
//! them, and from then on every hour closed in score mode is scored by the forest
//! (`unusual_host_activity` findings).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use serde_json::Value;

use crate::finding::format_utc;
use crate::host_hours::{
    HOST_HOUR_FEATURES, HOST_HOUR_WIDTH, HostActivityConfig, HostActivityState, HostHour,
    HostHourRow, OpenHostHour, off_hours, quiet_process,
};
use crate::stats::format_number;
use crate::{
    AnomalyError, Baseline, CountBurstConfig, CountBurstModel, Finding, ForestParams,
    IsolationForest, Model, ModelFile, OpenCount, RareValueConfig, RareValueModel, TrainingSpan,
    UnusualHourConfig, UnusualHourModel,
};

/// Name of the host-activity forest in model files.
pub const HOST_ACTIVITY_FOREST: &str = "host_activity_forest";
/// Finding kind of the host-activity forest.
pub const UNUSUAL_HOST_ACTIVITY: &str = "unusual_host_activity";
const DAY: i64 = 86_400;

/// Count bucket width, seconds.
const BUCKET: i64 = 3600;
/// Windows' dynamic port range churns by design; listening ports there are left out.
const FIRST_DYNAMIC_PORT: u16 = 49_152;

/// What one event is, for the models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// A process started on `host`.
    ProcessStart {
        host: String,
        process: String,
        parent: String,
    },
    /// `user` logged on (from `source`, when known).
    Logon {
        host: String,
        user: String,
        source: Option<String>,
    },
    /// A logon failed on `host`.
    LogonFailed { host: String },
    /// `process` on `host` connected to `destination` (`ip:port`).
    Connection {
        host: String,
        process: String,
        destination: String,
    },
    /// Something on `host` listens on `port`.
    Listen { host: String, port: u16 },
    /// Anything else of `host` (counted for its event volume only).
    Other { host: String },
}

/// The field at a dotted path: nested objects (`{"host": {"name": ..}}`), or a flat key
/// (`{"host.name": ..}`, as the generator's JSONL writes them) when there is no such object.
fn field<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = doc;
    for part in path.split('.') {
        match node.get(part) {
            Some(next) => node = next,
            None => return doc.get(path),
        }
    }
    Some(node)
}

fn text<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    match field(doc, path)? {
        Value::String(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn number(doc: &Value, path: &str) -> Option<u64> {
    match field(doc, path)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether a keyword field (a string or a list of them) holds `want`.
fn has(doc: &Value, path: &str, want: &str) -> bool {
    match field(doc, path) {
        Some(Value::String(s)) => s.eq_ignore_ascii_case(want),
        Some(Value::Array(items)) => items
            .iter()
            .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(want))),
        _ => false,
    }
}

/// The last path component of an executable (`C:\Windows\cmd.exe` → `cmd.exe`), lower case.
fn base_name(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase()
}

/// `process.name` (or the base name of `process.executable`), or the same of the parent.
fn process_name(doc: &Value, parent: bool) -> Option<String> {
    let (name, executable) = if parent {
        ("process.parent.name", "process.parent.executable")
    } else {
        ("process.name", "process.executable")
    };
    text(doc, name)
        .map(str::to_ascii_lowercase)
        .or_else(|| text(doc, executable).map(base_name))
}

impl Activity {
    /// What a normalized event is; `None` without a `host.name`.
    pub fn of(doc: &Value) -> Option<Activity> {
        let host = text(doc, "host.name")?.to_ascii_lowercase();
        let code = number(doc, "event.code").or_else(|| number(doc, "winlog.event_id"));
        let category = |c: &str| has(doc, "event.category", c);
        let kind = |t: &str| has(doc, "event.type", t);
        if category("authentication") || matches!(code, Some(4624 | 4625)) {
            let failed = has(doc, "event.outcome", "failure") || code == Some(4625);
            if failed {
                return Some(Activity::LogonFailed { host });
            }
            if let Some(user) = text(doc, "user.name") {
                return Some(Activity::Logon {
                    host,
                    user: user.to_ascii_lowercase(),
                    source: text(doc, "source.ip")
                        .filter(|ip| !matches!(*ip, "-" | "::1" | "127.0.0.1"))
                        .map(str::to_owned),
                });
            }
        }
        // Security 4688 is a process start whatever the shipper made of it; Sysmon's 1 needs
        // the category (other providers use event id 1 too).
        let process_start =
            (category("process") && (kind("start") || code == Some(1))) || code == Some(4688);
        if process_start && let Some(process) = process_name(doc, false) {
            return Some(Activity::ProcessStart {
                host,
                process,
                parent: process_name(doc, true).unwrap_or_default(),
            });
        }
        // Windows Filtering Platform: 5156 a connection was permitted, 5154 a listen was.
        if category("network") || matches!(code, Some(5154 | 5156)) {
            let listening = has(doc, "event.action", "listen")
                || has(doc, "event.action", "listening")
                || has(doc, "network.direction", "listening")
                || code == Some(5154);
            if listening
                && let Some(port) = number(doc, "source.port").or(number(doc, "destination.port"))
                && let Ok(port) = u16::try_from(port)
            {
                return Some(Activity::Listen { host, port });
            }
            if let (Some(ip), Some(port)) =
                (text(doc, "destination.ip"), number(doc, "destination.port"))
            {
                return Some(Activity::Connection {
                    host,
                    process: process_name(doc, false).unwrap_or_default(),
                    destination: format!("{ip}:{port}"),
                });
            }
        }
        Some(Activity::Other { host })
    }

    /// The host the event happened on.
    pub fn host(&self) -> &str {
        match self {
            Activity::ProcessStart { host, .. }
            | Activity::Logon { host, .. }
            | Activity::LogonFailed { host }
            | Activity::Connection { host, .. }
            | Activity::Listen { host, .. }
            | Activity::Other { host } => host,
        }
    }
}

/// How many entities one model knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelSummary {
    /// The model's name (its finding kind).
    pub name: String,
    /// `rare_value`, `unusual_hour`, `count_burst` or `isolation_forest`.
    pub model: String,
    /// The entity field (`host.name`, `user.name`).
    pub entity_field: String,
    /// Entities it has a baseline of; for the isolation forest, the host-hour rows it was
    /// trained on (or, before training, the rows kept to train on).
    pub entities: usize,
}

/// The eight per-entity models of a deployment, fed from normalized events, and the
/// host-activity isolation forest over their closed (host, hour) rows.
#[derive(Debug, Clone)]
pub struct Detector {
    rare_process: RareValueModel,
    rare_pair: RareValueModel,
    rare_source: RareValueModel,
    new_destination: RareValueModel,
    new_port: RareValueModel,
    logon_hour: UnusualHourModel,
    failed_burst: CountBurstModel,
    volume: CountBurstModel,
    /// Open hourly buckets: start → host → what the host did so far.
    buckets: BTreeMap<i64, HashMap<String, HostHour>>,
    /// Closed host-hours kept to train the forest on, oldest first.
    rows: VecDeque<HostHourRow>,
    forest: Option<IsolationForest>,
    /// The rows the forest was trained on: first and last hour, rows, days.
    forest_trained_on: Option<Baseline>,
    /// Reused for `parent->child`, `host|process` and port keys (no allocation per event).
    scratch: String,
    /// Events seen (learned or scored).
    pub events: u64,
    /// Earliest and latest event time seen, unix seconds.
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    /// Settings of the host-activity forest (its alert threshold among them).
    pub host_activity: HostActivityConfig,
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

impl Detector {
    /// Untrained models with the default settings.
    pub fn new() -> Self {
        let mut volume = CountBurstConfig::new("volume_spike", "host.name", "events");
        // Event volume is never sparse: demand a real jump over a busy hour.
        volume.min_count = 50;
        let rare = |kind: &str, entity: &str, value: &str| {
            RareValueModel::new(RareValueConfig::new(kind, entity, value))
        };
        Detector {
            rare_process: rare("rare_process", "host.name", "process.name"),
            rare_pair: rare(
                "rare_parent_child",
                "host.name",
                "process.parent.name->process.name",
            ),
            rare_source: rare("rare_logon_source", "user.name", "source.ip"),
            new_destination: rare(
                "new_destination",
                "host.name|process.name",
                "destination.ip:destination.port",
            ),
            new_port: rare("new_listening_port", "host.name", "port"),
            logon_hour: UnusualHourModel::new(UnusualHourConfig::new(
                "unusual_logon_hour",
                "user.name",
                "logon",
            )),
            failed_burst: CountBurstModel::new(CountBurstConfig::new(
                "failed_logon_burst",
                "host.name",
                "failed logons",
            )),
            volume: CountBurstModel::new(volume),
            buckets: BTreeMap::new(),
            rows: VecDeque::new(),
            forest: None,
            forest_trained_on: None,
            scratch: String::new(),
            events: 0,
            first_time: None,
            last_time: None,
            host_activity: HostActivityConfig::default(),
        }
    }

    /// Names of the features of a host-hour row, in order (the forest's inputs).
    pub fn host_hour_feature_names() -> &'static [&'static str] {
        &HOST_HOUR_FEATURES
    }

    /// The host-activity forest, once [`Detector::train_forest`] fitted one (or a model file
    /// brought one): score or explain raw feature rows with it.
    pub fn forest(&self) -> Option<&IsolationForest> {
        self.forest.as_ref()
    }

    /// Closed host-hours kept for training, oldest first.
    pub fn host_hour_rows(&self) -> impl ExactSizeIterator<Item = &HostHourRow> + '_ {
        self.rows.iter()
    }

    /// Fits the host-activity forest on the kept host-hour rows (`seed` makes it
    /// reproducible); `Ok(false)`, keeping any earlier forest, while there are fewer than
    /// `host_activity.min_rows` rows. Call it once the detector has learned some days, and
    /// again now and then (daily) to follow the fleet.
    pub fn train_forest(&mut self, seed: u64) -> Result<bool, AnomalyError> {
        if self.rows.is_empty() || self.rows.len() < self.host_activity.min_rows {
            return Ok(false);
        }
        let mut values = Vec::with_capacity(self.rows.len() * HOST_HOUR_WIDTH);
        for row in &self.rows {
            values.extend_from_slice(&row.features);
        }
        let params = ForestParams {
            seed,
            n_trees: self.host_activity.n_trees,
            sample_size: self.host_activity.sample_size,
            ..ForestParams::default()
        };
        let forest =
            IsolationForest::fit_matrix(&values, HOST_HOUR_WIDTH, &HOST_HOUR_FEATURES, &params)?;
        let first = self.rows.front().map_or(0, |r| r.start);
        let last = self.rows.back().map_or(0, |r| r.start);
        self.forest_trained_on = Some(Baseline {
            first_seen: first,
            last_seen: last,
            observations: self.rows.len() as u64,
            distinct_days: u32::try_from((last - first).div_euclid(DAY) + 1).unwrap_or(u32::MAX),
        });
        self.forest = Some(forest);
        Ok(true)
    }

    /// The `unusual_host_activity` finding of a host-hour row (`features` in the order of
    /// [`Detector::host_hour_feature_names`]) when the forest scores it at or above
    /// `host_activity.threshold`; `Ok(None)` below it or without a forest. Errors on a row of
    /// the wrong length or with a non-finite value.
    pub fn host_hour_finding(
        &self,
        host: &str,
        start: i64,
        features: &[f64],
    ) -> Result<Option<Finding>, AnomalyError> {
        let Some(forest) = &self.forest else {
            return Ok(None);
        };
        if let Some(column) = features.iter().position(|v| !v.is_finite()) {
            return Err(AnomalyError::NonFinite {
                row: 0,
                column,
                name: HOST_HOUR_FEATURES
                    .get(column)
                    .map_or_else(|| format!("f{column}"), |n| (*n).to_string()),
                what: if features[column].is_nan() {
                    "NaN"
                } else {
                    "infinite"
                },
            });
        }
        let score = forest.score(features)?;
        let threshold = self.host_activity.threshold;
        if score < threshold {
            return Ok(None);
        }
        let explanation = forest.explain(features, self.host_activity.top_features.max(1))?;
        let observed: Vec<String> = explanation
            .features
            .iter()
            .map(|f| format!("{} = {}", f.name, format_number(f.value)))
            .collect();
        let expected: Vec<String> = explanation
            .features
            .iter()
            .map(|f| {
                format!(
                    "{} usually {} (middle half {} to {})",
                    f.name,
                    format_number(f.median),
                    format_number(f.q1),
                    format_number(f.q3)
                )
            })
            .collect();
        let texts: Vec<&str> = explanation
            .features
            .iter()
            .map(|f| f.text.as_str())
            .collect();
        let baseline = self.forest_trained_on.unwrap_or_default();
        let message = format!(
            "host.name `{host}` in the hour from {}: activity unlike the {} host-hours the forest learned ({} to {}), score {score:.3} (alert at {threshold}); most unusual: {}.",
            format_utc(start),
            baseline.observations,
            format_utc(baseline.first_seen),
            format_utc(baseline.last_seen),
            texts.join("; ")
        );
        let mut details = BTreeMap::from([
            ("score".to_string(), format!("{score:.6}")),
            ("threshold".to_string(), threshold.to_string()),
            ("bucket_start".to_string(), start.to_string()),
            ("bucket_seconds".to_string(), BUCKET.to_string()),
            (
                "trained_rows".to_string(),
                baseline.observations.to_string(),
            ),
        ]);
        for (name, value) in HOST_HOUR_FEATURES.iter().zip(features) {
            details.insert(format!("feature.{name}"), format_number(*value));
        }
        for f in &explanation.features {
            details.insert(format!("share.{}", f.name), format!("{:.4}", f.share));
            details.insert(format!("median.{}", f.name), format_number(f.median));
        }
        Ok(Some(Finding {
            kind: UNUSUAL_HOST_ACTIVITY.to_string(),
            entity_field: "host.name".to_string(),
            entity: host.to_string(),
            time: start,
            score,
            observed: observed.join(", "),
            expected: expected.join(", "),
            baseline,
            features: explanation
                .features
                .iter()
                .map(|f| f.name.clone())
                .collect(),
            message,
            details,
        }))
    }

    /// Learns (`score` false) or scores then learns (`score` true) one event at `time` (unix
    /// seconds); the findings of this event, and of hours it closed.
    pub fn event(&mut self, activity: &Activity, time: i64, score: bool) -> Vec<Finding> {
        self.events += 1;
        self.first_time = Some(self.first_time.map_or(time, |t| t.min(time)));
        self.last_time = Some(self.last_time.map_or(time, |t| t.max(time)));
        let bucket = time.div_euclid(BUCKET) * BUCKET;
        let mut findings = self.close_before(bucket - BUCKET, score);
        let host = activity.host();
        let hosts = self.buckets.entry(bucket).or_default();
        let counts = match hosts.get_mut(host) {
            Some(counts) => counts,
            None => hosts.entry(host.to_owned()).or_default(),
        };
        counts.events += 1;
        let mut key = std::mem::take(&mut self.scratch);
        // Scores (in score mode) then learns; says whether the value was new to the entity.
        let mut rare = |model: &mut RareValueModel, entity: &str, value: &str| {
            if entity.is_empty() || value.is_empty() {
                return None;
            }
            if score {
                findings.extend(model.score(entity, value, time));
            }
            Some(model.observe_seen(entity, value, time))
        };
        match activity {
            Activity::ProcessStart {
                host,
                process,
                parent,
            } => {
                counts.process_starts += 1;
                counts.add_process(process);
                if rare(&mut self.rare_process, host, process).is_some_and(|s| s.new) {
                    counts.new_processes += 1;
                }
                if !parent.is_empty() {
                    key.clear();
                    key.push_str(parent);
                    key.push_str("->");
                    key.push_str(process);
                    if rare(&mut self.rare_pair, host, &key).is_some_and(|s| s.new) {
                        counts.new_parent_child += 1;
                    }
                }
            }
            Activity::Logon { user, source, .. } => {
                counts.logons += 1;
                if let Some(source) = source
                    && rare(&mut self.rare_source, user, source).is_some_and(|s| s.new)
                {
                    counts.new_logon_sources += 1;
                }
                let (near, total) = self.logon_hour.hour_of_day_counts(user, time);
                if off_hours(near, total) {
                    counts.off_hours_logons += 1;
                }
                if score {
                    findings.extend(self.logon_hour.process(user, time));
                } else {
                    self.logon_hour.observe(user, time);
                }
            }
            Activity::LogonFailed { .. } => counts.failed_logons += 1,
            Activity::Connection {
                host,
                process,
                destination,
            } => {
                counts.connections += 1;
                key.clear();
                key.push_str(host);
                key.push('|');
                key.push_str(process);
                if rare(&mut self.new_destination, &key, destination)
                    .is_some_and(|s| s.new && quiet_process(s.observations, s.distinct))
                {
                    counts.new_destinations += 1;
                }
            }
            Activity::Listen { host, port } if *port < FIRST_DYNAMIC_PORT => {
                key.clear();
                let _ = write!(key, "{port}");
                if rare(&mut self.new_port, host, &key).is_some_and(|s| s.new) {
                    counts.new_listening_ports += 1;
                }
            }
            Activity::Listen { .. } | Activity::Other { .. } => {}
        }
        self.scratch = key;
        findings
    }

    /// The findings `activity` at `time` would raise, without learning anything: a question
    /// asked of the models (the REST scoring endpoint), not an observation. Hourly counts need
    /// a closed hour, so only the per-event models answer.
    pub fn score_only(&self, activity: &Activity, time: i64) -> Vec<Finding> {
        let mut findings = Vec::new();
        let rare = |model: &RareValueModel, entity: &str, value: &str| {
            if entity.is_empty() || value.is_empty() {
                None
            } else {
                model.score(entity, value, time)
            }
        };
        match activity {
            Activity::ProcessStart {
                host,
                process,
                parent,
            } => {
                findings.extend(rare(&self.rare_process, host, process));
                if !parent.is_empty() {
                    findings.extend(rare(&self.rare_pair, host, &format!("{parent}->{process}")));
                }
            }
            Activity::Logon { user, source, .. } => {
                if let Some(source) = source {
                    findings.extend(rare(&self.rare_source, user, source));
                }
                findings.extend(self.logon_hour.score(user, time));
            }
            Activity::Connection {
                host,
                process,
                destination,
            } => findings.extend(rare(
                &self.new_destination,
                &format!("{host}|{process}"),
                destination,
            )),
            Activity::Listen { host, port } if *port < FIRST_DYNAMIC_PORT => {
                findings.extend(rare(&self.new_port, host, &port.to_string()))
            }
            Activity::LogonFailed { .. } | Activity::Listen { .. } | Activity::Other { .. } => {}
        }
        findings
    }

    /// Closes every open hour (the end of a training file, a scoring job).
    pub fn flush(&mut self, score: bool) -> Vec<Finding> {
        self.close_before(i64::MAX, score)
    }

    fn close_before(&mut self, before: i64, score: bool) -> Vec<Finding> {
        let mut findings = Vec::new();
        while let Some(entry) = self.buckets.first_entry() {
            if *entry.key() >= before {
                break;
            }
            let (start, hosts) = entry.remove_entry();
            let mut hosts: Vec<_> = hosts.into_iter().collect();
            hosts.sort_by(|a, b| a.0.cmp(&b.0));
            for (host, counts) in hosts {
                // The usual volume of this hour of the day, before this hour joins it.
                let usual = self.volume.usual_count(&host, start);
                for (model, count) in [
                    (&mut self.volume, counts.events),
                    (&mut self.failed_burst, counts.failed_logons),
                ] {
                    if score {
                        findings.extend(model.process_bucket(&host, start, count));
                    } else {
                        model.observe_bucket(&host, start, count);
                    }
                }
                let features = counts.features(usual);
                if score {
                    // Rows are built from finite counts: the only error would be a forest of
                    // another width, which loading refuses.
                    findings.extend(
                        self.host_hour_finding(&host, start, &features)
                            .ok()
                            .flatten(),
                    );
                }
                self.keep_row(host, start, features);
            }
        }
        findings
    }

    /// Keeps a closed host-hour for training (after the warm-up days), dropping the rows
    /// beyond `keep_days` and `max_rows`.
    fn keep_row(&mut self, host: String, start: i64, features: [f64; HOST_HOUR_WIDTH]) {
        let config = &self.host_activity;
        let warm_from = self
            .first_time
            .unwrap_or(start)
            .saturating_add(i64::from(config.warmup_days).saturating_mul(DAY));
        if start < warm_from {
            return;
        }
        self.rows.push_back(HostHourRow {
            host,
            start,
            features,
        });
        let keep_from = start.saturating_sub(i64::from(config.keep_days).saturating_mul(DAY));
        while self
            .rows
            .front()
            .is_some_and(|r| r.start < keep_from || self.rows.len() > config.max_rows)
        {
            self.rows.pop_front();
        }
    }

    /// Every model with its entity count.
    pub fn summary(&self) -> Vec<ModelSummary> {
        let rare = |m: &RareValueModel| ModelSummary {
            name: m.config().kind.clone(),
            model: "rare_value".into(),
            entity_field: m.config().entity_field.clone(),
            entities: m.entity_count(),
        };
        let counts = |m: &CountBurstModel| ModelSummary {
            name: m.config().kind.clone(),
            model: "count_burst".into(),
            entity_field: m.config().entity_field.clone(),
            entities: m.entity_count(),
        };
        vec![
            rare(&self.rare_process),
            rare(&self.rare_pair),
            rare(&self.rare_source),
            rare(&self.new_destination),
            rare(&self.new_port),
            ModelSummary {
                name: self.logon_hour.config().kind.clone(),
                model: "unusual_hour".into(),
                entity_field: self.logon_hour.config().entity_field.clone(),
                entities: self.logon_hour.entity_count(),
            },
            counts(&self.failed_burst),
            counts(&self.volume),
            ModelSummary {
                name: UNUSUAL_HOST_ACTIVITY.into(),
                model: "isolation_forest".into(),
                entity_field: "host.name".into(),
                entities: match (&self.forest, self.forest_trained_on) {
                    (Some(_), Some(trained)) => trained.observations as usize,
                    _ => self.rows.len(),
                },
            },
        ]
    }

    /// The models as a model file, with the counts of hours still open.
    pub fn to_model_file(&self) -> ModelFile {
        let mut file = ModelFile::new();
        for m in [
            &self.rare_process,
            &self.rare_pair,
            &self.rare_source,
            &self.new_destination,
            &self.new_port,
        ] {
            file.push(&m.config().kind, Model::RareValue(m.clone()));
        }
        file.push(
            &self.logon_hour.config().kind,
            Model::UnusualHour(self.logon_hour.clone()),
        );
        for m in [&self.failed_burst, &self.volume] {
            file.push(&m.config().kind, Model::CountBurst(m.clone()));
        }
        file.training = Some(TrainingSpan {
            events: self.events,
            first_time: self.first_time,
            last_time: self.last_time,
        });
        if let Some(forest) = &self.forest {
            file.push(HOST_ACTIVITY_FOREST, Model::IsolationForest(forest.clone()));
        }
        let mut state = HostActivityState {
            config: self.host_activity,
            trained_on: self.forest.as_ref().and(self.forest_trained_on),
            rows: self.rows.iter().cloned().collect(),
            open: Vec::new(),
        };
        for (start, hosts) in &self.buckets {
            let mut hosts: Vec<_> = hosts.iter().collect();
            hosts.sort_by(|a, b| a.0.cmp(b.0));
            for (host, counts) in hosts {
                // Events and failed logons also where older builds look for them.
                file.open_counts.push(OpenCount {
                    start: *start,
                    host: host.clone(),
                    events: counts.events,
                    failed_logons: counts.failed_logons,
                });
                state.open.push(OpenHostHour {
                    start: *start,
                    host: host.clone(),
                    counts: counts.clone(),
                });
            }
        }
        file.host_activity = Some(state);
        file
    }

    /// The models of a file written by [`Detector::to_model_file`]; a missing or mistyped
    /// model is an error naming it.
    pub fn from_model_file(file: &ModelFile) -> Result<Detector, AnomalyError> {
        let mut d = Detector::new();
        if let Some(span) = file.training {
            d.events = span.events;
            d.first_time = span.first_time;
            d.last_time = span.last_time;
        }
        let missing = |name: &str| AnomalyError::Corrupt(format!("the model `{name}` is missing"));
        let take_rare = |slot: &mut RareValueModel| -> Result<(), AnomalyError> {
            let name = slot.config().kind.clone();
            match file.get(&name) {
                Some(Model::RareValue(m)) => {
                    *slot = m.clone();
                    Ok(())
                }
                _ => Err(missing(&name)),
            }
        };
        take_rare(&mut d.rare_process)?;
        take_rare(&mut d.rare_pair)?;
        take_rare(&mut d.rare_source)?;
        take_rare(&mut d.new_destination)?;
        take_rare(&mut d.new_port)?;
        match file.get("unusual_logon_hour") {
            Some(Model::UnusualHour(m)) => d.logon_hour = m.clone(),
            _ => return Err(missing("unusual_logon_hour")),
        }
        for (name, slot) in [
            ("failed_logon_burst", &mut d.failed_burst),
            ("volume_spike", &mut d.volume),
        ] {
            match file.get(name) {
                Some(Model::CountBurst(m)) => *slot = m.clone(),
                _ => return Err(missing(name)),
            }
        }
        match file.get(HOST_ACTIVITY_FOREST) {
            None => {}
            Some(Model::IsolationForest(forest)) if forest.dimensions() == HOST_HOUR_WIDTH => {
                d.forest = Some(forest.clone());
            }
            Some(Model::IsolationForest(forest)) => {
                return Err(AnomalyError::Corrupt(format!(
                    "the model `{HOST_ACTIVITY_FOREST}` has {} features, host-hour rows have {HOST_HOUR_WIDTH}",
                    forest.dimensions()
                )));
            }
            Some(_) => {
                return Err(AnomalyError::Corrupt(format!(
                    "the model `{HOST_ACTIVITY_FOREST}` is not an isolation forest"
                )));
            }
        }
        let state = file.host_activity.clone().unwrap_or_default();
        if !state.config.threshold.is_finite() {
            return Err(AnomalyError::Corrupt(
                "the host-activity threshold is not a finite number".into(),
            ));
        }
        d.host_activity = state.config;
        d.forest_trained_on = d.forest.as_ref().and(state.trained_on);
        if d.forest.is_some() && d.forest_trained_on.is_none() {
            d.forest_trained_on = Some(Baseline::default());
        }
        if let Some(row) = state
            .rows
            .iter()
            .find(|r| r.features.iter().any(|v| !v.is_finite()))
        {
            return Err(AnomalyError::Corrupt(format!(
                "a kept host-hour row of `{}` holds a non-finite feature",
                row.host
            )));
        }
        d.rows = state.rows.into();
        if state.open.is_empty() {
            // An older file: only the counts the hourly models need.
            for open in &file.open_counts {
                let counts = d
                    .buckets
                    .entry(open.start)
                    .or_default()
                    .entry(open.host.clone())
                    .or_default();
                counts.events += open.events;
                counts.failed_logons += open.failed_logons;
            }
        } else {
            for open in state.open {
                let counts = d
                    .buckets
                    .entry(open.start)
                    .or_default()
                    .entry(open.host)
                    .or_default();
                // Merged, not replaced: a hand-made file may list an hour twice.
                if counts.events == 0 {
                    *counts = open.counts;
                } else {
                    counts.events += open.counts.events;
                    counts.failed_logons += open.counts.failed_logons;
                }
            }
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn start(host: &str, process: &str, parent: &str) -> Value {
        json!({"host": {"name": host}, "event": {"category": ["process"], "type": ["start"]},
               "process": {"executable": format!("C:\\Windows\\{process}"),
                           "parent": {"executable": format!("C:\\Windows\\{parent}")}}})
    }

    #[test]
    fn events_are_routed_by_what_they_are() {
        assert_eq!(
            Activity::of(&start("WS-1", "Cmd.exe", "explorer.exe")),
            Some(Activity::ProcessStart {
                host: "ws-1".into(),
                process: "cmd.exe".into(),
                parent: "explorer.exe".into()
            })
        );
        let logon = json!({"host": {"name": "dc"}, "event": {"code": "4624"},
                           "user": {"name": "Ivan"}, "source": {"ip": "10.0.0.7"}});
        assert_eq!(
            Activity::of(&logon),
            Some(Activity::Logon {
                host: "dc".into(),
                user: "ivan".into(),
                source: Some("10.0.0.7".into())
            })
        );
        let failed = json!({"host": {"name": "dc"}, "event": {"category": "authentication",
                            "outcome": "failure"}, "user": {"name": "x"}});
        assert_eq!(
            Activity::of(&failed),
            Some(Activity::LogonFailed { host: "dc".into() })
        );
        let conn = json!({"host": {"name": "h"}, "event": {"category": ["network"]},
                          "process": {"name": "curl"}, "destination": {"ip": "1.2.3.4", "port": 443}});
        assert!(
            matches!(Activity::of(&conn), Some(Activity::Connection { destination, .. }) if destination == "1.2.3.4:443")
        );
        assert_eq!(Activity::of(&json!({"message": "no host"})), None);
    }

    #[test]
    fn flat_keys_and_windows_event_codes_are_understood() {
        let start = json!({"host.name": "WS-2", "event.code": "4688", "process.name": "CMD.exe",
                           "process.parent.name": "explorer.exe"});
        assert_eq!(
            Activity::of(&start),
            Some(Activity::ProcessStart {
                host: "ws-2".into(),
                process: "cmd.exe".into(),
                parent: "explorer.exe".into()
            })
        );
        let connection = json!({"host.name": "ws-2", "event.code": "5156", "process.name": "curl.exe",
                                "destination.ip": "1.2.3.4", "destination.port": 443});
        assert!(matches!(Activity::of(&connection),
            Some(Activity::Connection { destination, .. }) if destination == "1.2.3.4:443"));
        let listen = json!({"host.name": "ws-2", "event.code": "5154", "destination.port": 4444});
        assert_eq!(
            Activity::of(&listen),
            Some(Activity::Listen {
                host: "ws-2".into(),
                port: 4444
            })
        );
        // Event id 1 without the process category is not taken for Sysmon's.
        let other =
            json!({"host": {"name": "h"}, "event": {"code": "1"}, "process": {"name": "x"}});
        assert_eq!(
            Activity::of(&other),
            Some(Activity::Other { host: "h".into() })
        );
    }

    /// `hosts` hosts doing their office routine on `days`, hours 09-16 (with the odd typo
    /// and one-off tool when `noise`).
    fn routine(
        d: &mut Detector,
        hosts: usize,
        days: std::ops::Range<i64>,
        score: bool,
        noise: bool,
    ) -> Vec<Finding> {
        let mut findings = Vec::new();
        for day in days {
            for hour in 9..17 {
                for host in 0..hosts {
                    let name = format!("ws-{host}");
                    let t = day * 86_400 + hour * 3600 + host as i64;
                    let busy = 2 + (day + hour + host as i64) % 3;
                    for i in 0..busy {
                        let a = Activity::of(&start(&name, "chrome.exe", "explorer.exe")).unwrap();
                        findings.extend(d.event(&a, t + i * 60, score));
                    }
                    let a = Activity::of(&start(&name, "outlook.exe", "explorer.exe")).unwrap();
                    findings.extend(d.event(&a, t + 600, score));
                    let c = Activity::Connection {
                        host: name.clone(),
                        process: "outlook.exe".into(),
                        destination: "10.0.0.20:443".into(),
                    };
                    findings.extend(d.event(&c, t + 601, score));
                    // Now and then a typo or a one-off tool: the forest only splits on
                    // features that vary in training.
                    let odd = (day * 31 + hour * 7 + host as i64 * 13) % 37;
                    if noise && odd == 0 {
                        let a = Activity::LogonFailed { host: name.clone() };
                        findings.extend(d.event(&a, t + 700, score));
                    } else if noise && odd == 1 {
                        let tool = format!("tool-{day}-{hour}.exe");
                        let a = Activity::of(&start(&name, &tool, "explorer.exe")).unwrap();
                        findings.extend(d.event(&a, t + 800, score));
                    }
                }
            }
        }
        findings
    }

    #[test]
    fn the_host_activity_forest_flags_an_odd_hour_and_survives_a_model_file() {
        let mut d = Detector::new();
        routine(&mut d, 12, 0..4, false, true);
        // Rows of the warm-up days are not kept: too few to train on yet.
        assert_eq!(d.train_forest(1), Ok(false));
        assert!(d.forest().is_none());
        routine(&mut d, 12, 4..10, false, true);
        d.flush(false);
        let kept = d.host_hour_rows().len();
        assert!(kept >= 256, "{kept}");
        assert_eq!(d.train_forest(1), Ok(true));
        let forest = d
            .summary()
            .into_iter()
            .find(|m| m.model == "isolation_forest")
            .unwrap();
        assert_eq!(
            (forest.name.as_str(), forest.entities),
            (UNUSUAL_HOST_ACTIVITY, kept)
        );
        assert_eq!(d.forest().unwrap().feature_names().len(), HOST_HOUR_WIDTH);
        assert_eq!(Detector::host_hour_feature_names(), HOST_HOUR_FEATURES);

        // The routine goes on unflagged; a burst of failed logons with new tools is not.
        // (An isolation forest scores values beyond the training range like the most
        // extreme training rows, here the one-off tools: the threshold sits below those.)
        d.host_activity.threshold = 0.7;
        let mut found = routine(&mut d, 12, 10..11, true, false);
        let t = 11 * 86_400 + 12 * 3600;
        for i in 0..60 {
            found.extend(d.event(
                &Activity::LogonFailed {
                    host: "ws-3".into(),
                },
                t + i,
                true,
            ));
        }
        for tool in ["psexec.exe", "rclone.exe", "adfind.exe"] {
            let a = Activity::of(&start("ws-3", tool, "cmd.exe")).unwrap();
            found.extend(d.event(&a, t + 100, true));
        }
        found.extend(d.flush(true));
        let forest_findings: Vec<&Finding> = found
            .iter()
            .filter(|f| f.kind == UNUSUAL_HOST_ACTIVITY)
            .collect();
        assert_eq!(forest_findings.len(), 1, "{forest_findings:#?}");
        let f = forest_findings[0];
        assert_eq!((f.entity.as_str(), f.time), ("ws-3", t));
        assert!(f.score >= d.host_activity.threshold);
        assert!(f.message.contains("usual"), "{}", f.message);
        assert!(
            f.features
                .iter()
                .any(|n| n == "failed_logons_log" || n == "new_processes"),
            "{:?}",
            f.features
        );
        assert_eq!(
            f.details["feature.failed_logons_log"],
            format_number(61f64.ln())
        );

        // Forest, threshold, kept rows and open hours survive a model file.
        d.host_activity.top_features = 2;
        let a = Activity::of(&start("ws-5", "chrome.exe", "explorer.exe")).unwrap();
        d.event(&a, 12 * 86_400 + 10 * 3600, true);
        let bytes = d.to_model_file().to_bytes().unwrap();
        let loaded = Detector::from_model_file(&ModelFile::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(loaded.forest(), d.forest());
        assert_eq!(loaded.host_activity, d.host_activity);
        assert_eq!(loaded.summary(), d.summary());
        assert_eq!(loaded.to_model_file(), d.to_model_file());
        let row = d.host_hour_rows().last().unwrap().features;
        assert_eq!(
            loaded.host_hour_finding("ws-1", 0, &row),
            d.host_hour_finding("ws-1", 0, &row)
        );
        assert!(matches!(
            loaded.host_hour_finding("ws-1", 0, &row[..3]),
            Err(AnomalyError::DimensionMismatch { .. })
        ));
        let mut bad = row;
        bad[4] = f64::NAN;
        let e = loaded.host_hour_finding("ws-1", 0, &bad).unwrap_err();
        assert!(e.to_string().contains("failed_logons_log"), "{e}");

        // Files without the forest (older builds) still load; a wrong one is refused.
        let mut older = d.to_model_file();
        older.models.retain(|m| m.name != HOST_ACTIVITY_FOREST);
        older.host_activity = None;
        let plain = Detector::from_model_file(&older).unwrap();
        assert!(plain.forest().is_none());
        assert_eq!(plain.host_activity, HostActivityConfig::default());
        assert_eq!(plain.host_hour_finding("ws-1", 0, &row), Ok(None));
        let mut mistyped = older.clone();
        mistyped.push(
            HOST_ACTIVITY_FOREST,
            Model::RareValue(RareValueModel::new(RareValueConfig::new("x", "y", "z"))),
        );
        let e = Detector::from_model_file(&mistyped).unwrap_err();
        assert!(e.to_string().contains(HOST_ACTIVITY_FOREST), "{e}");
        let mut narrow = older;
        let rows = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        narrow.push(
            HOST_ACTIVITY_FOREST,
            Model::IsolationForest(IsolationForest::fit(&rows, &ForestParams::default()).unwrap()),
        );
        let e = Detector::from_model_file(&narrow).unwrap_err();
        assert!(e.to_string().contains("2 features"), "{e}");
    }

    #[test]
    fn a_new_process_on_a_known_host_is_found_after_warm_up_and_survives_a_model_file() {
        let mut d = Detector::new();
        let day = 86_400;
        // Ten days of the same routine on one host.
        for day_index in 0..10 {
            for hour in 9..17 {
                let t = day_index * day + hour * 3600;
                for p in ["svchost.exe", "chrome.exe", "outlook.exe"] {
                    let a = Activity::of(&start("ws-1", p, "explorer.exe")).unwrap();
                    assert!(d.event(&a, t, false).is_empty());
                }
            }
        }
        d.flush(false);
        let bytes = d.to_model_file().to_bytes().unwrap();
        let mut loaded =
            Detector::from_model_file(&ModelFile::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(loaded.summary(), d.summary());
        let t = 10 * day + 10 * 3600;
        let known = Activity::of(&start("ws-1", "chrome.exe", "explorer.exe")).unwrap();
        assert!(
            loaded
                .event(&known, t, true)
                .iter()
                .all(|f| f.kind != "rare_process")
        );
        let odd = Activity::of(&start("ws-1", "mimikatz.exe", "cmd.exe")).unwrap();
        let found = loaded.event(&odd, t + 5, true);
        let kinds: Vec<&str> = found.iter().map(|f| f.kind.as_str()).collect();
        assert!(kinds.contains(&"rare_process"), "{found:?}");
        assert!(
            found[0].message.contains("mimikatz.exe"),
            "{}",
            found[0].message
        );
        // Asking does not teach: the same question twice, the same answer.
        let other = Activity::of(&start("ws-1", "rclone.exe", "cmd.exe")).unwrap();
        assert_eq!(loaded.score_only(&other, t + 6).len(), 2);
        assert_eq!(loaded.score_only(&other, t + 7).len(), 2);
        assert!(loaded.score_only(&known, t + 8).is_empty());
        // An open hour is saved with its counts and goes on after a load.
        let saved = loaded.to_model_file();
        assert!(
            saved
                .open_counts
                .iter()
                .any(|o| o.host == "ws-1" && o.events == 2),
            "{:?}",
            saved.open_counts
        );
        let reloaded = Detector::from_model_file(&saved).unwrap();
        assert_eq!(reloaded.to_model_file().open_counts, saved.open_counts);
        let mut file = d.to_model_file();
        file.models.retain(|m| m.name != "volume_spike");
        let e = Detector::from_model_file(&file).unwrap_err();
        assert!(e.to_string().contains("volume_spike"), "{e}");
    }
}
