//! Detection output: a human table, JSON lines or CSV.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use dozor_event::{FlatEvent, Value};
use dozor_sigma::{CorrelationHit, Level, RuleMeta};
use serde::Serialize;

use crate::OutputFormat;

/// Fields shown in the table's details column, most telling first.
const DETAIL_FIELDS: &[&str] = &[
    "CommandLine",
    "Image",
    "ParentImage",
    "TargetFilename",
    "TargetObject",
    "Details",
    "ImageLoaded",
    "QueryName",
    "DestinationIp",
    "DestinationPort",
    "PipeName",
    "ServiceName",
    "ImagePath",
    "ScriptBlockText",
    "TargetUserName",
    "SubjectUserName",
    "User",
    "process.command_line",
    "process.executable",
    "file.path",
    "destination.ip",
    "user.name",
];
const DETAILS_MAX: usize = 160;

#[derive(Debug, Clone, Serialize)]
pub struct HitRule {
    pub id: String,
    pub title: String,
    pub level: Level,
    pub status: String,
    pub tags: Vec<String>,
    pub path: String,
}

impl HitRule {
    pub fn from_meta(m: &RuleMeta) -> Self {
        HitRule {
            id: m.id.clone(),
            title: m.title.clone(),
            level: m.level,
            status: m.status.to_string(),
            tags: m.tags.clone(),
            path: m.path.display().to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub timestamp: Option<String>,
    #[serde(skip)]
    pub timestamp_millis: Option<i64>,
    pub rule: HitRule,
    pub kind: &'static str,
    pub computer: Option<String>,
    pub channel: Option<String>,
    pub event_id: Option<String>,
    pub record_id: Option<String>,
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation: Option<CorrelationInfo>,
    /// The matched event, serialized as an object (repeated names become arrays).
    #[serde(serialize_with = "serialize_event")]
    pub event: Option<FlatEvent>,
}

fn serialize_event<S: serde::Serializer>(
    event: &Option<FlatEvent>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let Some(e) = event else {
        return s.serialize_none();
    };
    let mut map = s.serialize_map(None)?;
    let mut done: Vec<bool> = vec![false; e.fields.len()];
    for (i, (name, value)) in e.fields.iter().enumerate() {
        if done[i] {
            continue;
        }
        let repeats: Vec<usize> = (i + 1..e.fields.len())
            .filter(|&j| e.fields[j].0 == *name)
            .collect();
        if repeats.is_empty() {
            map.serialize_entry(name.as_str(), value)?;
        } else {
            let mut all = vec![value];
            for j in repeats {
                done[j] = true;
                all.push(&e.fields[j].1);
            }
            map.serialize_entry(name.as_str(), &all)?;
        }
    }
    map.end()
}

#[derive(Debug, Clone, Serialize)]
pub struct CorrelationInfo {
    pub group: Vec<(String, String)>,
    pub value: f64,
    pub events: usize,
    pub first: Option<String>,
    pub last: Option<String>,
}

fn field_text(e: &FlatEvent, name: &str) -> Option<String> {
    e.get(name).map(Value::to_text).filter(|s| !s.is_empty())
}

fn iso(millis: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

impl Hit {
    pub fn detection(rule: HitRule, e: &FlatEvent, file: Arc<Path>) -> Self {
        Hit {
            timestamp: e.timestamp_millis.and_then(iso),
            timestamp_millis: e.timestamp_millis,
            rule,
            kind: "detection",
            computer: field_text(e, "Computer").or_else(|| field_text(e, "host.name")),
            channel: field_text(e, "Channel"),
            event_id: field_text(e, "EventID"),
            record_id: field_text(e, "EventRecordID"),
            file: Some(file.display().to_string()),
            correlation: None,
            event: Some(e.clone()),
        }
    }

    pub fn correlation(
        meta: &RuleMeta,
        hit: &CorrelationHit,
        first_event: Option<&FlatEvent>,
    ) -> Self {
        Hit {
            timestamp: iso(hit.last_millis),
            timestamp_millis: Some(hit.last_millis),
            rule: HitRule::from_meta(meta),
            kind: "correlation",
            computer: first_event.and_then(|e| field_text(e, "Computer")),
            channel: None,
            event_id: None,
            record_id: None,
            file: None,
            correlation: Some(CorrelationInfo {
                group: hit.group.clone(),
                value: hit.value,
                events: hit.event_count,
                first: iso(hit.first_millis),
                last: iso(hit.last_millis),
            }),
            event: None,
        }
    }

    fn details(&self) -> String {
        if let Some(c) = &self.correlation {
            let group: Vec<String> = c.group.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            return format!(
                "{} events, value {} | {}",
                c.events,
                c.value,
                group.join(" ¦ ")
            );
        }
        let mut parts = Vec::new();
        if let Some(event) = &self.event {
            for f in DETAIL_FIELDS {
                if let Some(v) = event.get(f) {
                    let text = v.to_text();
                    if !text.is_empty() {
                        parts.push(format!("{f}: {text}"));
                    }
                }
                if parts.len() >= 3 {
                    break;
                }
            }
        }
        let joined = parts.join(" ¦ ").replace(['\n', '\r', '\t'], " ");
        truncate(&joined, DETAILS_MAX)
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

pub struct Writer {
    format: OutputFormat,
    out: Box<dyn Write>,
    csv: Option<csv::Writer<Box<dyn Write>>>,
    /// The table is sorted by time, so it is written at the end.
    table: Vec<Hit>,
}

impl Writer {
    pub fn new(format: OutputFormat, path: Option<&Path>) -> Result<Self> {
        let open = || -> Result<Box<dyn Write>> {
            Ok(match path {
                Some(p) => Box::new(BufWriter::new(
                    File::create(p).with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(BufWriter::new(std::io::stdout())),
            })
        };
        let mut w = Writer {
            format,
            out: Box::new(std::io::sink()),
            csv: None,
            table: Vec::new(),
        };
        if format == OutputFormat::Csv {
            let mut c = csv::Writer::from_writer(open()?);
            c.write_record([
                "timestamp",
                "level",
                "rule",
                "rule_id",
                "kind",
                "computer",
                "channel",
                "event_id",
                "record_id",
                "file",
                "details",
            ])?;
            w.csv = Some(c);
        } else {
            w.out = open()?;
        }
        Ok(w)
    }

    pub fn write(&mut self, hit: Hit) -> Result<()> {
        match self.format {
            OutputFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, &hit)?;
                self.out.write_all(b"\n")?;
            }
            OutputFormat::Csv => {
                let details = hit.details();
                if let Some(c) = &mut self.csv {
                    c.write_record([
                        hit.timestamp.as_deref().unwrap_or(""),
                        &hit.rule.level.to_string(),
                        &hit.rule.title,
                        &hit.rule.id,
                        hit.kind,
                        hit.computer.as_deref().unwrap_or(""),
                        hit.channel.as_deref().unwrap_or(""),
                        hit.event_id.as_deref().unwrap_or(""),
                        hit.record_id.as_deref().unwrap_or(""),
                        hit.file.as_deref().unwrap_or(""),
                        &details,
                    ])?;
                }
            }
            OutputFormat::Table => self.table.push(hit),
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        if self.format == OutputFormat::Table {
            self.table.sort_by(|a, b| {
                a.timestamp_millis
                    .cmp(&b.timestamp_millis)
                    .then_with(|| b.rule.level.cmp(&a.rule.level))
            });
            let rows: Vec<[String; 6]> = self
                .table
                .iter()
                .map(|h| {
                    [
                        h.timestamp.clone().unwrap_or_default(),
                        h.computer.clone().unwrap_or_default(),
                        format!(
                            "{} {}",
                            short_channel(h.channel.as_deref()),
                            h.event_id.as_deref().unwrap_or("")
                        )
                        .trim()
                        .to_owned(),
                        h.rule.level.to_string(),
                        truncate(&h.rule.title, 70),
                        h.details(),
                    ]
                })
                .collect();
            let headers = ["Timestamp", "Computer", "Event", "Level", "Rule", "Details"];
            let mut widths = headers.map(|h| h.chars().count());
            for r in &rows {
                for (i, c) in r.iter().enumerate().take(5) {
                    widths[i] = widths[i].max(c.chars().count());
                }
            }
            let line = |cells: [&str; 6], out: &mut dyn Write| -> std::io::Result<()> {
                for (i, c) in cells.iter().enumerate() {
                    if i < 5 {
                        write!(out, "{c:<w$}  ", w = widths[i])?;
                    } else {
                        writeln!(out, "{c}")?;
                    }
                }
                Ok(())
            };
            if !rows.is_empty() {
                line(headers, &mut self.out)?;
                for r in &rows {
                    line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]], &mut self.out)?;
                }
            }
        }
        if let Some(mut c) = self.csv.take() {
            c.flush()?;
        }
        self.out.flush()?;
        Ok(())
    }
}

fn short_channel(c: Option<&str>) -> &str {
    match c {
        Some("Microsoft-Windows-Sysmon/Operational") => "Sysmon",
        Some("Microsoft-Windows-PowerShell/Operational") => "PwSh",
        Some(other) => other,
        None => "",
    }
}
