//! The per-entity models fed from normalized (ECS-style) events, as Dozor stores them: one
//! [`Detector`] routes each event to the models it concerns — process starts to the rare
//! process and rare parent→child models, logons to the rare source and unusual hour models,
//! failed logons and every event to hourly count models, connections to the new destination
//! model, listening sockets to the new port model — and keeps the hourly counts until their
//! hour is over.
//!
//! Events should come in time order (a little disorder within the previous hour is fine: an
//! hour is closed only when an event two hours later arrives, or on [`Detector::flush`]).

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::{
    AnomalyError, CountBurstConfig, CountBurstModel, Finding, Model, ModelFile, OpenCount,
    RareValueConfig, RareValueModel, TrainingSpan, UnusualHourConfig, UnusualHourModel,
};

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

fn text<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let pointer = format!("/{}", path.replace('.', "/"));
    match doc.pointer(&pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    }
}

fn number(doc: &Value, path: &str) -> Option<u64> {
    let pointer = format!("/{}", path.replace('.', "/"));
    match doc.pointer(&pointer)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether a keyword field (a string or a list of them) holds `want`.
fn has(doc: &Value, path: &str, want: &str) -> bool {
    let pointer = format!("/{}", path.replace('.', "/"));
    match doc.pointer(&pointer) {
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

fn process_name(doc: &Value, prefix: &str) -> Option<String> {
    text(doc, &format!("{prefix}.name"))
        .map(str::to_ascii_lowercase)
        .or_else(|| text(doc, &format!("{prefix}.executable")).map(base_name))
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
        if category("process")
            && (kind("start") || matches!(code, Some(1 | 4688)))
            && let Some(process) = process_name(doc, "process")
        {
            return Some(Activity::ProcessStart {
                host,
                process,
                parent: process_name(doc, "process.parent").unwrap_or_default(),
            });
        }
        if category("network") {
            let listening = has(doc, "event.action", "listen")
                || has(doc, "event.action", "listening")
                || has(doc, "network.direction", "listening");
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
                    process: process_name(doc, "process").unwrap_or_default(),
                    destination: format!("{ip}:{port}"),
                });
            }
        }
        Some(Activity::Other { host })
    }

    fn host(&self) -> &str {
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
    /// `rare_value`, `unusual_hour` or `count_burst`.
    pub model: String,
    /// The entity field (`host.name`, `user.name`).
    pub entity_field: String,
    /// Entities it has a baseline of.
    pub entities: usize,
}

/// The eight per-entity models of a deployment, fed from normalized events.
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
    /// Open hourly buckets: start → host → (events, failed logons).
    buckets: BTreeMap<i64, HashMap<String, (u64, u64)>>,
    /// Events seen (learned or scored).
    pub events: u64,
    /// Earliest and latest event time seen, unix seconds.
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
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
            events: 0,
            first_time: None,
            last_time: None,
        }
    }

    /// Learns (`score` false) or scores then learns (`score` true) one event at `time` (unix
    /// seconds); the findings of this event, and of hours it closed.
    pub fn event(&mut self, activity: &Activity, time: i64, score: bool) -> Vec<Finding> {
        self.events += 1;
        self.first_time = Some(self.first_time.map_or(time, |t| t.min(time)));
        self.last_time = Some(self.last_time.map_or(time, |t| t.max(time)));
        let bucket = time.div_euclid(BUCKET) * BUCKET;
        let mut findings = self.close_before(bucket - BUCKET, score);
        let counts = self
            .buckets
            .entry(bucket)
            .or_default()
            .entry(activity.host().to_owned())
            .or_default();
        counts.0 += 1;
        let mut rare = |model: &mut RareValueModel, entity: &str, value: &str| {
            if entity.is_empty() || value.is_empty() {
                return;
            }
            if score {
                findings.extend(model.process(entity, value, time));
            } else {
                model.observe(entity, value, time);
            }
        };
        match activity {
            Activity::ProcessStart {
                host,
                process,
                parent,
            } => {
                rare(&mut self.rare_process, host, process);
                if !parent.is_empty() {
                    rare(&mut self.rare_pair, host, &format!("{parent}->{process}"));
                }
            }
            Activity::Logon { user, source, .. } => {
                if let Some(source) = source {
                    rare(&mut self.rare_source, user, source);
                }
                if score {
                    findings.extend(self.logon_hour.process(user, time));
                } else {
                    self.logon_hour.observe(user, time);
                }
            }
            Activity::LogonFailed { .. } => counts.1 += 1,
            Activity::Connection {
                host,
                process,
                destination,
            } => rare(
                &mut self.new_destination,
                &format!("{host}|{process}"),
                destination,
            ),
            Activity::Listen { host, port } if *port < FIRST_DYNAMIC_PORT => {
                rare(&mut self.new_port, host, &port.to_string())
            }
            Activity::Listen { .. } | Activity::Other { .. } => {}
        }
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
            hosts.sort();
            for (host, (events, failed)) in hosts {
                for (model, count) in [(&mut self.volume, events), (&mut self.failed_burst, failed)]
                {
                    if score {
                        findings.extend(model.process_bucket(&host, start, count));
                    } else {
                        model.observe_bucket(&host, start, count);
                    }
                }
            }
        }
        findings
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
        for (start, hosts) in &self.buckets {
            let mut hosts: Vec<_> = hosts.iter().collect();
            hosts.sort();
            for (host, (events, failed)) in hosts {
                file.open_counts.push(OpenCount {
                    start: *start,
                    host: host.clone(),
                    events: *events,
                    failed_logons: *failed,
                });
            }
        }
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
        for open in &file.open_counts {
            let counts = d
                .buckets
                .entry(open.start)
                .or_default()
                .entry(open.host.clone())
                .or_default();
            counts.0 += open.events;
            counts.1 += open.failed_logons;
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
