//! What a scan found, as findings with a verdict and a severity, and the events and alerts they
//! become.
//!
//! ## Severity mapping (documented in the README; alerts take this level)
//!
//! | engine     | what matched                                       | verdict    | severity |
//! |------------|----------------------------------------------------|------------|----------|
//! | `hashlist` | a known-bad SHA-256 / SHA-1 / MD5                   | malicious  | critical |
//! | `clamav`   | a signature                                        | malicious  | high     |
//! | `clamav`   | a `PUA.*` or `Heuristics.*` signature              | suspicious | medium   |
//! | `yara`     | a rule without severity metadata                   | malicious  | high     |
//! | `yara`     | meta `severity`/`level` = critical…informational     | by level   | that one |
//! | `yara`     | meta `score` 0–100 (THOR style)                     | by level   | ≥90 critical, ≥70 high, ≥40 medium, else low |
//!
//! A level of medium or lower is the `suspicious` verdict, high and critical `malicious`; a
//! YARA rule tagged `suspicious` (or meta `verdict = "suspicious"`) is suspicious whatever its
//! level and is capped at medium.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::HashVerdict;

/// The value of `event.module` on every scan event.
pub const EVENT_MODULE: &str = "dozor-scan";
/// The engine name of the hash lists.
pub const HASHLIST_ENGINE: &str = "hashlist";

/// How bad a finding is; the names are the alert levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a level name (also `info`, `informational`, `warning` → medium), any case.
    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" => Some(Severity::High),
            "medium" | "moderate" | "warning" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            "informational" | "info" => Some(Severity::Informational),
            _ => None,
        }
    }

    /// A THOR-style score 0–100.
    pub fn from_score(score: f64) -> Severity {
        if score >= 90.0 {
            Severity::Critical
        } else if score >= 70.0 {
            Severity::High
        } else if score >= 40.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// The verdict of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThreatVerdict {
    Malicious,
    Suspicious,
}

impl ThreatVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreatVerdict::Malicious => "malicious",
            ThreatVerdict::Suspicious => "suspicious",
        }
    }

    fn of(severity: Severity) -> ThreatVerdict {
        if severity >= Severity::High {
            ThreatVerdict::Malicious
        } else {
            ThreatVerdict::Suspicious
        }
    }
}

/// One engine's detection on one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `yara`, `clamav` or `hashlist`.
    pub engine: &'static str,
    /// The YARA rule, the ClamAV signature or the hash list entry's name.
    pub name: String,
    /// The YARA namespace (the rule file), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub verdict: ThreatVerdict,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// YARA rule metadata.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    /// The engine and database version (ClamAV), or the digest that matched (hash lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Finding {
    /// A known-bad hash list entry.
    pub fn known_bad(hit: &crate::HashMatch) -> Finding {
        Finding {
            engine: HASHLIST_ENGINE,
            name: hit
                .name
                .clone()
                .unwrap_or_else(|| format!("known-bad {}", hit.algo)),
            namespace: None,
            verdict: ThreatVerdict::Malicious,
            severity: Severity::Critical,
            tags: Vec::new(),
            meta: Map::new(),
            detail: Some(format!("{}:{}", hit.algo, hit.hash)),
        }
    }

    /// A ClamAV detection.
    pub fn clamav(verdict: &crate::Verdict) -> Option<Finding> {
        let signature = verdict.signature.clone().filter(|_| verdict.infected)?;
        let severity = if signature.starts_with("PUA.") || signature.starts_with("Heuristics.") {
            Severity::Medium
        } else {
            Severity::High
        };
        let db = verdict
            .db_version
            .map(|v| format!(", database {v}"))
            .unwrap_or_default();
        Some(Finding {
            engine: crate::clamd::ENGINE,
            name: signature,
            namespace: None,
            verdict: ThreatVerdict::of(severity),
            severity,
            tags: Vec::new(),
            meta: Map::new(),
            detail: Some(format!("ClamAV {}{db}", verdict.engine_version)),
        })
    }

    /// A YARA rule match, with its severity read from the rule's metadata (see the module
    /// documentation).
    pub fn yara(rule: &str, namespace: &str, tags: &[String], meta: &[(String, Value)]) -> Finding {
        let meta: Map<String, Value> = meta.iter().cloned().collect();
        let named_level = ["severity", "level"].iter().find_map(|k| {
            meta.get(*k)
                .and_then(Value::as_str)
                .and_then(Severity::parse)
        });
        let score = meta.get("score").and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        });
        let mut severity = named_level
            .or(score.map(Severity::from_score))
            .unwrap_or(Severity::High);
        let marked_suspicious = tags.iter().any(|t| t.eq_ignore_ascii_case("suspicious"))
            || meta
                .get("verdict")
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case("suspicious"));
        let verdict = if marked_suspicious {
            severity = severity.min(Severity::Medium);
            ThreatVerdict::Suspicious
        } else {
            ThreatVerdict::of(severity)
        };
        Finding {
            engine: "yara",
            name: rule.to_owned(),
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            verdict,
            severity,
            tags: tags.to_vec(),
            meta,
            detail: None,
        }
    }

    /// `namespace.rule` for YARA, else the name.
    pub fn qualified_name(&self) -> String {
        qualified(self.namespace.as_deref(), &self.name)
    }

    /// The alert rule id of this finding: `dozor-scan/<engine>/<namespace.rule | signature>`.
    pub fn rule_id(&self) -> String {
        rule_id_of(self.engine, &self.qualified_name())
    }
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_owned(),
    }
}

fn rule_id_of(engine: &str, qualified_name: &str) -> String {
    format!("{EVENT_MODULE}/{engine}/{qualified_name}")
}

/// An engine that could not give an answer for a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineFailure {
    pub engine: &'static str,
    pub message: String,
    /// The engine itself is down (clamd not reachable), as opposed to this file being
    /// unscannable.
    pub unavailable: bool,
}

/// Everything one scan of one file found.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    /// Hashes and the hash-list classification; `None` when the file could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hashes: Option<HashVerdict>,
    pub findings: Vec<Finding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<EngineFailure>,
    /// Why the file was not scanned (too large, not a regular file, known good).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The engines that looked at the file.
    pub engines: Vec<&'static str>,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl FileReport {
    /// The most severe finding.
    pub fn worst(&self) -> Option<&Finding> {
        self.findings.iter().max_by_key(|f| f.severity)
    }

    pub fn sha256(&self) -> Option<&str> {
        self.hashes.as_ref().map(|h| h.sha256.as_str())
    }
}

/// Where a scan event comes from and what to put in it.
#[derive(Debug, Clone)]
pub struct EventContext<'a> {
    /// `event.provider`: `dozor-agent` or `dozor-server`.
    pub provider: &'a str,
    /// Why the file was scanned: `file` (a watched file changed), `process` (a new process's
    /// executable), `command` (an operator's scan-path command), `sample` (an uploaded
    /// sample).
    pub trigger: &'a str,
    /// Put the file's hashes in the event (`false` keeps them on the host).
    pub include_hashes: bool,
    /// The operator command that asked for the scan.
    pub command_id: Option<&'a str>,
    /// Process fields (`process.*`) to carry, for executables of new processes.
    pub process: Option<&'a Value>,
}

/// RFC 3339 UTC with milliseconds, now.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `file.*` of a report.
fn file_fields(report: &FileReport, include_hashes: bool) -> Value {
    let path = &report.path;
    let mut file = json!({ "path": path.to_string_lossy() });
    if let Some(name) = path.file_name() {
        file["name"] = json!(name.to_string_lossy());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        file["directory"] = json!(dir.to_string_lossy());
    }
    if let Some(ext) = path.extension() {
        file["extension"] = json!(ext.to_string_lossy());
    }
    if let Some(h) = &report.hashes {
        file["size"] = json!(h.size);
        if include_hashes {
            let mut hash = json!({ "sha256": h.sha256 });
            if let Some(v) = &h.sha1 {
                hash["sha1"] = json!(v);
            }
            if let Some(v) = &h.md5 {
                hash["md5"] = json!(v);
            }
            file["hash"] = hash;
        }
    }
    file
}

/// One event per finding (`event.kind = alert`, `event.category = [malware, file]`), each
/// carrying the engine, rule or signature, verdict and severity under `threat.*`, the file and
/// its hashes under `file.*`, and how it came to be scanned under `dozor.scan`.
pub fn finding_events(report: &FileReport, ctx: &EventContext<'_>) -> Vec<Value> {
    let timestamp = now_rfc3339();
    let file = file_fields(report, ctx.include_hashes);
    report
        .findings
        .iter()
        .map(|f| {
            let mut threat = json!({
                "engine": f.engine,
                "verdict": f.verdict.as_str(),
                "severity": f.severity.as_str(),
            });
            match f.engine {
                "yara" => {
                    let mut rule = json!({ "name": f.name });
                    if let Some(ns) = &f.namespace {
                        rule["namespace"] = json!(ns);
                    }
                    if !f.tags.is_empty() {
                        rule["tags"] = json!(f.tags);
                    }
                    if !f.meta.is_empty() {
                        rule["meta"] = Value::Object(f.meta.clone());
                    }
                    threat["rule"] = rule;
                }
                _ => threat["signature"] = json!(f.name),
            }
            if let Some(d) = &f.detail {
                threat["detail"] = json!(d);
            }
            let mut scan = json!({
                "trigger": ctx.trigger,
                "engines": report.engines,
                "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
                "rule_id": f.rule_id(),
            });
            if let Some(id) = ctx.command_id {
                scan["command_id"] = json!(id);
            }
            let what = match &f.namespace {
                Some(_) => format!("{} rule {}", f.engine, f.qualified_name()),
                None => format!("{} {}", f.engine, f.name),
            };
            let mut event = json!({
                "@timestamp": timestamp,
                "message": format!("{}: {what} ({}) in {}", f.verdict.as_str(), f.severity.as_str(), report.path.display()),
                "event": {
                    "kind": "alert",
                    "category": ["malware", "file"],
                    "type": ["info"],
                    "action": "file-scan",
                    "module": EVENT_MODULE,
                    "provider": ctx.provider,
                    "outcome": "success",
                },
                "file": file,
                "threat": threat,
                "dozor": { "scan": scan },
            });
            if let Some(p) = ctx.process {
                event["process"] = p.clone();
            }
            event
        })
        .collect()
}

/// The alert a stored scan event raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanAlert {
    pub rule_id: String,
    pub title: String,
    pub level: Severity,
    pub tags: Vec<String>,
}

/// The alert for an event made by [`finding_events`] (an event from `dozor-scan` with a
/// malicious or suspicious verdict); `None` for any other event.
pub fn alert_of_event(doc: &Value) -> Option<ScanAlert> {
    if doc.pointer("/event/module").and_then(Value::as_str) != Some(EVENT_MODULE) {
        return None;
    }
    let threat = doc.get("threat")?;
    let verdict = threat.get("verdict").and_then(Value::as_str)?;
    if verdict != "malicious" && verdict != "suspicious" {
        return None;
    }
    let engine = threat.get("engine").and_then(Value::as_str)?;
    let level = threat
        .get("severity")
        .and_then(Value::as_str)
        .and_then(Severity::parse)
        .unwrap_or(Severity::High);
    let (name, title) = match engine {
        "yara" => {
            let name = qualified(
                threat.pointer("/rule/namespace").and_then(Value::as_str),
                threat.pointer("/rule/name").and_then(Value::as_str)?,
            );
            let title = format!("YARA rule {name} matched");
            (name, title)
        }
        "clamav" => {
            let sig = threat.get("signature").and_then(Value::as_str)?;
            (sig.to_owned(), format!("ClamAV detected {sig}"))
        }
        HASHLIST_ENGINE => {
            let name = threat.get("signature").and_then(Value::as_str)?;
            (name.to_owned(), format!("Known-bad hash: {name}"))
        }
        _ => return None,
    };
    let rule_id = rule_id_of(engine, &name);
    let mut tags = vec![
        format!("dozor.scan.{engine}"),
        format!("dozor.verdict.{verdict}"),
    ];
    if let Some(rule_tags) = threat.pointer("/rule/tags").and_then(Value::as_array) {
        tags.extend(
            rule_tags
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned),
        );
    }
    Some(ScanAlert {
        rule_id,
        title,
        level,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn yara_severity_comes_from_meta_and_defaults_to_high() {
        let f = Finding::yara("r", "ns", &[], &[]);
        assert_eq!(
            (f.severity, f.verdict),
            (Severity::High, ThreatVerdict::Malicious)
        );
        let f = Finding::yara("r", "ns", &[], &meta(&[("severity", json!("Critical"))]));
        assert_eq!(f.severity, Severity::Critical);
        let f = Finding::yara("r", "ns", &[], &meta(&[("level", json!("low"))]));
        assert_eq!(
            (f.severity, f.verdict),
            (Severity::Low, ThreatVerdict::Suspicious)
        );
        let f = Finding::yara("r", "ns", &[], &meta(&[("score", json!(75))]));
        assert_eq!(f.severity, Severity::High);
        let f = Finding::yara("r", "ns", &[], &meta(&[("score", json!("95"))]));
        assert_eq!(f.severity, Severity::Critical);
        let f = Finding::yara("r", "ns", &["Suspicious".into()], &[]);
        assert_eq!(
            (f.severity, f.verdict),
            (Severity::Medium, ThreatVerdict::Suspicious)
        );
        let f = Finding::yara("r", "", &[], &meta(&[("severity", json!("bogus"))]));
        assert_eq!(f.severity, Severity::High);
        assert_eq!(f.rule_id(), "dozor-scan/yara/r");
    }

    #[test]
    fn clamav_pua_is_suspicious() {
        let v = |sig: &str| crate::Verdict {
            engine: "clamav".into(),
            signature: Some(sig.into()),
            infected: true,
            engine_version: "1.4.6".into(),
            db_version: None,
        };
        let f = Finding::clamav(&v("Eicar-Test-Signature.UNOFFICIAL")).unwrap();
        assert_eq!(
            (f.severity, f.verdict),
            (Severity::High, ThreatVerdict::Malicious)
        );
        assert_eq!(f.detail.as_deref(), Some("ClamAV 1.4.6"));
        let f = Finding::clamav(&v("PUA.Win.Tool.Foo")).unwrap();
        assert_eq!(
            (f.severity, f.verdict),
            (Severity::Medium, ThreatVerdict::Suspicious)
        );
        let mut clean = v("x");
        clean.infected = false;
        assert!(Finding::clamav(&clean).is_none());
    }

    #[test]
    fn events_carry_engine_rule_file_and_hash_and_raise_alerts() {
        let report = FileReport {
            path: PathBuf::from("/tmp/drop/evil.bin"),
            hashes: Some(HashVerdict {
                known_bad: None,
                known_good: false,
                size: 68,
                sha256: "ab".repeat(32),
                sha1: Some("cd".repeat(20)),
                md5: None,
            }),
            findings: vec![
                Finding::yara(
                    "Evil",
                    "team/rules",
                    &["apt".into()],
                    &meta(&[("severity", json!("critical"))]),
                ),
                Finding::known_bad(&crate::HashMatch {
                    algo: crate::HashAlgo::Sha256,
                    hash: "ab".repeat(32),
                    name: Some("evil dropper".into()),
                }),
            ],
            errors: Vec::new(),
            skipped: None,
            engines: vec!["hashlist", "yara"],
            duration: Duration::from_millis(3),
        };
        let ctx = EventContext {
            provider: "dozor-agent",
            trigger: "file",
            include_hashes: true,
            command_id: Some("c1"),
            process: None,
        };
        let events = finding_events(&report, &ctx);
        assert_eq!(events.len(), 2);
        let e = &events[0];
        assert_eq!(e["file"]["path"], "/tmp/drop/evil.bin");
        assert_eq!(e["file"]["name"], "evil.bin");
        assert_eq!(e["file"]["hash"]["sha256"], "ab".repeat(32));
        assert_eq!(e["threat"]["engine"], "yara");
        assert_eq!(e["threat"]["rule"]["namespace"], "team/rules");
        assert_eq!(e["dozor"]["scan"]["command_id"], "c1");
        let alert = alert_of_event(e).unwrap();
        assert_eq!(alert.rule_id, "dozor-scan/yara/team/rules.Evil");
        assert_eq!(alert.level, Severity::Critical);
        assert!(alert.tags.contains(&"apt".to_owned()));
        let alert = alert_of_event(&events[1]).unwrap();
        assert_eq!(alert.rule_id, "dozor-scan/hashlist/evil dropper");
        assert_eq!(alert.level, Severity::Critical);

        let ctx = EventContext {
            include_hashes: false,
            ..ctx
        };
        let events = finding_events(&report, &ctx);
        assert!(events[0]["file"].get("hash").is_none());
        assert_eq!(events[0]["file"]["size"], 68);

        let validator = dozor_event::schema::EventValidator::new().unwrap();
        for mut e in finding_events(
            &report,
            &EventContext {
                include_hashes: true,
                ..ctx.clone()
            },
        ) {
            // What the agent's spooler adds before sending.
            e["event"]["id"] = json!("0190a6f2-8a7e-7c3e-9b1a-2f4d5e6f7a8b");
            e["agent"] = json!({"id": "a1", "name": "host1", "type": "dozor-agent"});
            e["host"] = json!({"name": "host1"});
            e["process"] =
                json!({"pid": 42, "executable": "/usr/bin/x", "hash": {"sha256": "ab".repeat(32)}});
            let errors = validator.validate(&e);
            assert!(errors.is_empty(), "{errors:?}\n{e:#}");
        }

        let mut other = events[0].clone();
        other["event"]["module"] = json!("sysmon");
        assert!(alert_of_event(&other).is_none());
    }
}
