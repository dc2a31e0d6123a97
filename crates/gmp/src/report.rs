//! OpenVAS / Greenbone report parser: the XML report format of gvmd (GMP 7 to 22.x), as
//! exported from GSA or answered to `get_reports`.
//!
//! Shapes accepted (the fixtures in `../shared/fixtures/openvas` show each):
//! - an outer `<report id=… format_id=…>` (the export envelope) wrapping the inner `<report>`
//!   that holds `<results>`; a bare inner report works too;
//! - the same inside `<get_reports_response status="200">` (what gvmd answers);
//! - mixed content: `<host>10.0.0.1<asset/><hostname>h</hostname></host>` and
//!   `<port>general/tcp<host>…</host>…</port>`: an element's own text is kept apart from its
//!   children.
//!
//! The input is streamed with quick-xml; only one `<result>` (or one report-level `<host>`)
//! is held as a small tree at a time. Parsing is all-or-nothing: any malformed element makes
//! [`parse_report`] return an error and no results, so a caller never stores half a report.

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

use crate::tree::{self, Node, TreeBuilder};

/// Deepest nesting accepted, outside and inside a captured element: real reports stay under
/// 15; the bound keeps a hostile file from growing the element stack without limit.
const MAX_DEPTH: usize = 128;

/// Children of a `<report>` element kept as small trees; everything else is skipped.
const REPORT_META: &[&str] = &[
    "task",
    "gmp",
    "scan_start",
    "scan_end",
    "scan_run_status",
    "filters",
    "host",
];

/// A malformed or unreadable report. The `Display` form names the element path, the byte
/// offset and line of the element (or of the point where reading failed) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("malformed report at {path} (byte {offset}, line {line}): {reason}")]
    Malformed {
        /// Element path from the root, e.g. `report/report/results/result[3]/severity`.
        path: String,
        offset: u64,
        line: u64,
        reason: String,
    },
    #[error("cannot read the report: {0}")]
    Io(#[from] std::io::Error),
}

/// Qualitative level of a severity score, per the CVSS v3 ranges (critical ≥ 9.0, high ≥ 7.0,
/// medium ≥ 4.0, low > 0, log = 0). gvmd marks a result overridden as a false positive with
/// the severity -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityLevel {
    FalsePositive,
    Log,
    Low,
    Medium,
    High,
    Critical,
}

impl SeverityLevel {
    pub fn from_score(score: f64) -> Self {
        if score >= 9.0 {
            Self::Critical
        } else if score >= 7.0 {
            Self::High
        } else if score >= 4.0 {
            Self::Medium
        } else if score > 0.0 {
            Self::Low
        } else if score == -1.0 {
            Self::FalsePositive
        } else {
            // 0.0, and the -2 (error) / -3 (debug) of old gvmd versions: no finding.
            Self::Log
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FalsePositive => "false_positive",
            Self::Log => "log",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for SeverityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scanned host as the report's host section lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportHost {
    /// As written (an IP address, or a name when the target was given by name).
    pub address: String,
    pub hostname: Option<String>,
    pub asset_id: Option<String>,
    /// Best operating system guess (`best_os_txt` host detail), if any.
    pub os: Option<String>,
    /// Scan start / end of this host, as written (RFC 3339 in gvmd's output).
    pub start: Option<String>,
    pub end: Option<String>,
}

/// One result (a finding or a log entry) of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnResult {
    /// The result's `id` attribute (not unique in anonymised exports).
    pub result_id: Option<String>,
    /// Host address as written: kept even when it is not a valid IP address.
    pub host: String,
    pub hostname: Option<String>,
    pub asset_id: Option<String>,
    /// Port number; `None` for `general/tcp`, `package`, `cpe:/…` and other non-numeric ports.
    pub port: Option<u16>,
    /// `tcp`, `udp`, `icmp`… (the part after `/`), if any.
    pub protocol: Option<String>,
    /// The `<port>` text as written (`80/tcp`, `general/tcp`, empty when absent).
    pub port_raw: String,
    pub nvt_oid: String,
    /// NVT name (the result name when the NVT has none).
    pub name: String,
    pub family: Option<String>,
    pub cvss_base: Option<f64>,
    pub cvss_vector_v2: Option<String>,
    pub cvss_vector_v3: Option<String>,
    pub cvss_vector_v4: Option<String>,
    /// Effective severity, after overrides (what gvmd shows with `apply_overrides=1`).
    pub severity: f64,
    /// Severity before overrides (equal to `severity` when the report does not say).
    pub original_severity: f64,
    /// `severity` differs from `original_severity`: an override applied.
    pub overridden: bool,
    pub level: SeverityLevel,
    pub original_level: SeverityLevel,
    /// Quality of detection, 0-100.
    pub qod: Option<u8>,
    pub qod_type: Option<String>,
    pub threat: Option<String>,
    pub original_threat: Option<String>,
    pub cves: Vec<String>,
    /// EPSS of the NVT's CVE with the highest EPSS score (`<epss><max_epss>`), falling back
    /// to the CVE with the highest severity (`<max_severity>`).
    pub epss_score: Option<f64>,
    pub epss_percentile: Option<f64>,
    pub epss_cve: Option<String>,
    /// `VendorFix`, `Workaround`, `Mitigation`, `NoneAvailable`, `WillNotFix`.
    pub solution_type: Option<String>,
    pub solution: Option<String>,
    pub summary: Option<String>,
    pub insight: Option<String>,
    pub affected: Option<String>,
    pub impact: Option<String>,
    pub vuldetect: Option<String>,
    /// What the scanner found on the host (versions, paths…).
    pub description: Option<String>,
}

impl VulnResult {
    /// The host as an IP address, when it is one.
    pub fn host_ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The identity of a finding across scans: host, port as written (`general/tcp` and
    /// `general/udp` stay apart, unlike a numeric port) and NVT OID.
    pub fn dedup_key(&self) -> (&str, &str, &str) {
        (&self.host, &self.port_raw, &self.nvt_oid)
    }
}

/// Results per [`SeverityLevel`] (effective severity).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub log: usize,
    pub false_positive: usize,
}

impl LevelCounts {
    pub fn add(&mut self, level: SeverityLevel) {
        match level {
            SeverityLevel::Critical => self.critical += 1,
            SeverityLevel::High => self.high += 1,
            SeverityLevel::Medium => self.medium += 1,
            SeverityLevel::Low => self.low += 1,
            SeverityLevel::Log => self.log += 1,
            SeverityLevel::FalsePositive => self.false_positive += 1,
        }
    }
}

/// A whole report, parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedReport {
    /// The `id` of the outermost `<report>`.
    pub report_id: Option<String>,
    /// GMP version that wrote the report (`<gmp><version>`).
    pub gmp_version: Option<String>,
    pub task_id: Option<String>,
    pub task_name: Option<String>,
    /// `Done`, `Stopped`, `Interrupted`…
    pub scan_run_status: Option<String>,
    /// Scan start / end as written (RFC 3339 in gvmd's output) and in Unix milliseconds when
    /// they parse as RFC 3339.
    pub scan_start: Option<String>,
    pub scan_start_ms: Option<i64>,
    pub scan_end: Option<String>,
    pub scan_end_ms: Option<i64>,
    /// The filter gvmd applied when it wrote the report (`<filters><term>`): a report written
    /// with `min_qod=70` or `levels=hml` lacks results the scan found.
    pub filter: Option<String>,
    /// The report's host section, then hosts only results name, in order of appearance.
    pub hosts: Vec<ReportHost>,
    pub results: Vec<VulnResult>,
}

impl ParsedReport {
    pub fn level_counts(&self) -> LevelCounts {
        let mut counts = LevelCounts::default();
        for r in &self.results {
            counts.add(r.level);
        }
        counts
    }
}

/// Parses a report from any reader (buffered internally).
pub fn parse_report_reader<R: Read>(input: R) -> Result<ParsedReport, ReportError> {
    parse_report(BufReader::with_capacity(64 * 1024, input))
}

pub fn parse_report_bytes(xml: &[u8]) -> Result<ParsedReport, ReportError> {
    parse_report(xml)
}

pub fn parse_report_file(path: &Path) -> Result<ParsedReport, ReportError> {
    let file = std::fs::File::open(path)?;
    parse_report_reader(file)
}

/// Parses a report; all-or-nothing (see the module documentation).
pub fn parse_report<R: BufRead>(input: R) -> Result<ParsedReport, ReportError> {
    let mut reader = Reader::from_reader(LineCounter::new(input));
    // Mismatched end tags are errors (the default, stated because truncation and splicing
    // show up exactly there).
    reader.config_mut().check_end_names = true;
    let mut state = State::default();
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let offset = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(err)) => {
                return Err(ReportError::Io(std::io::Error::new(
                    err.kind(),
                    err.to_string(),
                )));
            }
            Err(err) => {
                let at = reader.error_position();
                let line = reader.get_ref().line_at(at);
                return Err(state.malformed_here(at, line, err.to_string()));
            }
        };
        reader.get_mut().mark(offset);
        let line = reader.get_ref().line_at(offset);
        if let Event::Eof = event {
            let end = reader.buffer_position();
            let end_line = reader.get_ref().line_at(end);
            return state.finish(end, end_line);
        }
        state.event(&event, offset, line)?;
        buf.clear();
    }
}

/// What a captured subtree is, once complete.
#[derive(Debug)]
enum CaptureKind {
    Result { path: String },
    ReportMeta { report_level: usize, path: String },
}

#[derive(Debug, Default)]
struct ReportLevel {
    id: Option<String>,
    task_id: Option<String>,
    task_name: Option<String>,
    gmp_version: Option<String>,
    scan_start: Option<String>,
    scan_end: Option<String>,
    scan_run_status: Option<String>,
    filter: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    /// Open elements outside a capture.
    path: Vec<String>,
    capture: Option<(CaptureKind, TreeBuilder)>,
    root_seen: bool,
    root_closed: bool,
    /// Per `<report>` nesting level (0 = outermost).
    levels: Vec<ReportLevel>,
    top_reports: usize,
    results_elements: usize,
    result_index: usize,
    hosts: Vec<ReportHost>,
    results: Vec<VulnResult>,
}

impl State {
    fn path_string(&self) -> String {
        if let Some((kind, builder)) = &self.capture {
            // The capture's own path carries the result's index; the builder adds the
            // elements open inside it.
            let base = match kind {
                CaptureKind::Result { path } | CaptureKind::ReportMeta { path, .. } => path,
            };
            let mut parts = vec![base.as_str()];
            parts.extend(builder.open_path().skip(1));
            return parts.join("/");
        }
        let parts: Vec<&str> = self.path.iter().map(String::as_str).collect();
        if parts.is_empty() {
            "(document)".to_owned()
        } else {
            parts.join("/")
        }
    }

    fn malformed_here(&self, offset: u64, line: u64, reason: impl Into<String>) -> ReportError {
        ReportError::Malformed {
            path: self.path_string(),
            offset,
            line,
            reason: reason.into(),
        }
    }

    fn report_depth(&self) -> usize {
        self.path.iter().filter(|p| *p == "report").count()
    }

    fn event(&mut self, event: &Event<'_>, offset: u64, line: u64) -> Result<(), ReportError> {
        if let Some((_, builder)) = &mut self.capture {
            let done = builder
                .feed(event, offset, line)
                .map_err(|reason| self.malformed_here(offset, line, reason))?;
            if let Some(node) = done
                && let Some((kind, _)) = self.capture.take()
            {
                self.captured(kind, node)?;
            }
            return Ok(());
        }
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name =
                    tree::element_name(e).map_err(|r| self.malformed_here(offset, line, r))?;
                if self.path.is_empty() {
                    self.root(e, &name, offset, line)?;
                }
                if self.path.len() >= MAX_DEPTH {
                    return Err(self.malformed_here(
                        offset,
                        line,
                        format!("elements nested deeper than {MAX_DEPTH}"),
                    ));
                }
                let parent = self.path.last().map(String::as_str);
                let grandparent = self
                    .path
                    .len()
                    .checked_sub(2)
                    .and_then(|i| self.path.get(i))
                    .map(String::as_str);
                let capture = match (grandparent, parent, name.as_str()) {
                    (Some("report"), Some("results"), "result") => {
                        self.result_index += 1;
                        Some(CaptureKind::Result {
                            path: format!("{}/result[{}]", self.path.join("/"), self.result_index),
                        })
                    }
                    (_, Some("report"), meta) if REPORT_META.contains(&meta) => {
                        Some(CaptureKind::ReportMeta {
                            report_level: self.report_depth().saturating_sub(1),
                            path: format!("{}/{meta}", self.path.join("/")),
                        })
                    }
                    _ => None,
                };
                if let Some(kind) = capture {
                    let mut builder = TreeBuilder::new(MAX_DEPTH);
                    let done = builder
                        .feed(event, offset, line)
                        .map_err(|r| self.malformed_here(offset, line, r))?;
                    match done {
                        // An empty element: complete at once.
                        Some(node) => self.captured(kind, node)?,
                        None => self.capture = Some((kind, builder)),
                    }
                    return Ok(());
                }
                self.open(e, name, offset, line)?;
                if let Event::Empty(_) = event {
                    self.close();
                }
            }
            Event::End(_) => self.close(),
            Event::Text(t) => {
                if self.path.is_empty() {
                    let text =
                        tree::text_content(t).map_err(|r| self.malformed_here(offset, line, r))?;
                    if !text.trim().is_empty() {
                        return Err(self.malformed_here(
                            offset,
                            line,
                            "text outside the root element",
                        ));
                    }
                }
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                if self.path.is_empty() {
                    return Err(self.malformed_here(offset, line, "text outside the root element"));
                }
            }
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) | Event::Eof => {}
        }
        Ok(())
    }

    /// Checks the document element.
    fn root(
        &mut self,
        e: &quick_xml::events::BytesStart<'_>,
        name: &str,
        offset: u64,
        line: u64,
    ) -> Result<(), ReportError> {
        if self.root_closed {
            return Err(self.malformed_here(offset, line, format!("second root element <{name}>")));
        }
        self.root_seen = true;
        match name {
            "report" => Ok(()),
            "get_reports_response" => {
                let attrs =
                    tree::attributes(e).map_err(|r| self.malformed_here(offset, line, r))?;
                let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
                let status = get("status").unwrap_or("");
                if status.starts_with('2') {
                    Ok(())
                } else {
                    Err(ReportError::Malformed {
                        path: name.to_owned(),
                        offset,
                        line,
                        reason: format!(
                            "gvmd refused the request: status {status:?} {:?}",
                            get("status_text").unwrap_or("")
                        ),
                    })
                }
            }
            other => Err(ReportError::Malformed {
                path: other.to_owned(),
                offset,
                line,
                reason: "not an OpenVAS/GMP report: the root element must be <report> or \
                         <get_reports_response>"
                    .to_owned(),
            }),
        }
    }

    fn open(
        &mut self,
        e: &quick_xml::events::BytesStart<'_>,
        name: String,
        offset: u64,
        line: u64,
    ) -> Result<(), ReportError> {
        if name == "report" {
            let outside_reports = self.report_depth() == 0;
            if outside_reports {
                self.top_reports += 1;
                if self.top_reports > 1 {
                    return Err(self.malformed_here(
                        offset,
                        line,
                        "more than one report in the document: import one report at a time",
                    ));
                }
            }
            let attrs = tree::attributes(e).map_err(|r| self.malformed_here(offset, line, r))?;
            let level = self.report_depth();
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, ReportLevel::default);
            }
            if let Some(slot) = self.levels.get_mut(level) {
                slot.id = attrs.into_iter().find(|(k, _)| k == "id").map(|(_, v)| v);
            }
        }
        if name == "results" && self.path.last().map(String::as_str) == Some("report") {
            self.results_elements += 1;
        }
        self.path.push(name);
        Ok(())
    }

    fn close(&mut self) {
        self.path.pop();
        if self.path.is_empty() && self.root_seen {
            self.root_closed = true;
        }
    }

    fn captured(&mut self, kind: CaptureKind, node: Node) -> Result<(), ReportError> {
        match kind {
            CaptureKind::Result { path } => {
                let result = convert_result(&node, &path)?;
                self.results.push(result);
            }
            CaptureKind::ReportMeta { report_level, path } => {
                if node.name == "host" {
                    if let Some(host) = convert_host(&node) {
                        self.hosts.push(host);
                    }
                    return Ok(());
                }
                let Some(level) = self.levels.get_mut(report_level) else {
                    return Err(malformed(&path, &node, "outside a report"));
                };
                match node.name.as_str() {
                    "task" => {
                        level.task_id =
                            node.attr("id").filter(|s| !s.is_empty()).map(str::to_owned);
                        level.task_name = node.child_text("name").map(str::to_owned);
                    }
                    "gmp" => level.gmp_version = node.child_text("version").map(str::to_owned),
                    "scan_start" => level.scan_start = node.trimmed().map(str::to_owned),
                    "scan_end" => level.scan_end = node.trimmed().map(str::to_owned),
                    "scan_run_status" => level.scan_run_status = node.trimmed().map(str::to_owned),
                    "filters" => {
                        level.filter = node
                            .child_text("term")
                            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn finish(mut self, end: u64, end_line: u64) -> Result<ParsedReport, ReportError> {
        if !self.path.is_empty() || self.capture.is_some() {
            let open = self.path_string();
            return Err(ReportError::Malformed {
                path: open.clone(),
                offset: end,
                line: end_line,
                reason: format!(
                    "the document ends before <{}> closes (truncated?)",
                    open.rsplit('/').next().unwrap_or(&open)
                ),
            });
        }
        if !self.root_seen {
            return Err(ReportError::Malformed {
                path: "(document)".to_owned(),
                offset: end,
                line: end_line,
                reason: "no root element (empty document?)".to_owned(),
            });
        }
        if self.top_reports == 0 {
            return Err(ReportError::Malformed {
                path: "get_reports_response".to_owned(),
                offset: end,
                line: end_line,
                reason: "the response holds no <report>".to_owned(),
            });
        }
        if self.results_elements == 0 {
            return Err(ReportError::Malformed {
                path: "report".to_owned(),
                offset: end,
                line: end_line,
                reason: "no <results> element: the report was written without details \
                         (get_reports needs details=\"1\")"
                    .to_owned(),
            });
        }
        // Innermost level first: the inner report describes the scan; the outer one is the
        // export envelope.
        let pick = |f: fn(&ReportLevel) -> &Option<String>| {
            self.levels.iter().rev().find_map(|l| f(l).clone())
        };
        let scan_start = pick(|l| &l.scan_start);
        let scan_end = pick(|l| &l.scan_end);
        // Hosts that only results name (no host section, e.g. GMP 22 exports without it).
        let mut known: HashSet<String> = self.hosts.iter().map(|h| h.address.clone()).collect();
        for r in &self.results {
            if known.insert(r.host.clone()) {
                self.hosts.push(ReportHost {
                    address: r.host.clone(),
                    hostname: r.hostname.clone(),
                    asset_id: r.asset_id.clone(),
                    os: None,
                    start: None,
                    end: None,
                });
            }
        }
        let report_id = self.levels.iter().find_map(|l| l.id.clone());
        tracing::debug!(
            report_id = report_id.as_deref().unwrap_or("-"),
            results = self.results.len(),
            hosts = self.hosts.len(),
            "report parsed"
        );
        Ok(ParsedReport {
            report_id,
            gmp_version: pick(|l| &l.gmp_version),
            // The envelope's task first: gvmd writes the same task in both.
            task_id: self.levels.iter().find_map(|l| l.task_id.clone()),
            task_name: self.levels.iter().find_map(|l| l.task_name.clone()),
            scan_run_status: pick(|l| &l.scan_run_status),
            scan_start_ms: scan_start.as_deref().and_then(rfc3339_ms),
            scan_start,
            scan_end_ms: scan_end.as_deref().and_then(rfc3339_ms),
            scan_end,
            filter: pick(|l| &l.filter),
            hosts: self.hosts,
            results: self.results,
        })
    }
}

fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn malformed(path: &str, node: &Node, reason: impl Into<String>) -> ReportError {
    ReportError::Malformed {
        path: path.to_owned(),
        offset: node.offset,
        line: node.line,
        reason: reason.into(),
    }
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// A number in `[min, max]`; `None` when the element is absent or blank.
fn number(
    parent: &Node,
    parent_path: &str,
    child: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ReportError> {
    let Some(node) = parent.child(child) else {
        return Ok(None);
    };
    let Some(text) = node.trimmed() else {
        return Ok(None);
    };
    let path = format!("{parent_path}/{child}");
    let value: f64 = text
        .parse()
        .map_err(|_| malformed(&path, node, format!("{text:?} is not a number")))?;
    if !value.is_finite() || value < min || value > max {
        return Err(malformed(
            &path,
            node,
            format!("{text} is outside {min}..={max}"),
        ));
    }
    Ok(Some(value))
}

fn convert_result(node: &Node, path: &str) -> Result<VulnResult, ReportError> {
    let nvt = node
        .child("nvt")
        .ok_or_else(|| malformed(path, node, "the result has no <nvt>"))?;
    let nvt_path = format!("{path}/nvt");
    let nvt_oid = nvt
        .attr("oid")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(&nvt_path, nvt, "the NVT has no oid attribute"))?
        .to_owned();

    let host_node = node
        .child("host")
        .ok_or_else(|| malformed(path, node, "the result has no <host>"))?;
    let host = host_node
        .trimmed()
        .ok_or_else(|| malformed(&format!("{path}/host"), host_node, "the host is empty"))?
        .to_owned();
    let hostname = owned(host_node.child_text("hostname"));
    let asset_id = owned(
        host_node
            .child("asset")
            .and_then(|a| a.attr("asset_id"))
            .filter(|s| !s.is_empty()),
    );

    let port_raw = node.child_text("port").unwrap_or("").to_owned();
    let (port, protocol) = split_port(&port_raw);

    let severity = number(node, path, "severity", -3.0, 10.0)?
        .ok_or_else(|| malformed(path, node, "the result has no <severity>"))?;
    let original_severity =
        number(node, path, "original_severity", -3.0, 10.0)?.unwrap_or(severity);
    let cvss_base = number(nvt, &nvt_path, "cvss_base", 0.0, 10.0)?;

    let qod_node = node.child("qod");
    let qod = match qod_node {
        Some(q) => number(q, &format!("{path}/qod"), "value", 0.0, 100.0)?.map(|v| v.round() as u8),
        None => None,
    };
    let qod_type = owned(qod_node.and_then(|q| q.child_text("type")));

    let tags = parse_tags(nvt.child("tags").map(|t| t.text.as_str()).unwrap_or(""));
    let tag = |key: &str| -> Option<String> {
        tags.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };

    // CVSS vectors: `<severities>` (GMP 20.08+) first, then the `cvss_base_vector` tag.
    let mut cvss_vector_v2 = None;
    let mut cvss_vector_v3 = None;
    let mut cvss_vector_v4 = None;
    if let Some(severities) = nvt.child("severities") {
        for s in severities.children_named("severity") {
            let Some(vector) = s.child_text("value") else {
                continue;
            };
            let slot = match s.attr("type").unwrap_or("") {
                "cvss_base_v2" => &mut cvss_vector_v2,
                "cvss_base_v3" => &mut cvss_vector_v3,
                "cvss_base_v4" => &mut cvss_vector_v4,
                _ => continue,
            };
            slot.get_or_insert_with(|| vector.to_owned());
        }
    }
    if let Some(vector) = tag("cvss_base_vector") {
        let slot = if vector.starts_with("CVSS:4") {
            &mut cvss_vector_v4
        } else if vector.starts_with("CVSS:3") {
            &mut cvss_vector_v3
        } else {
            &mut cvss_vector_v2
        };
        slot.get_or_insert(vector);
    }

    let (solution_type, solution) = match nvt.child("solution") {
        Some(s) => (
            owned(s.attr("type").filter(|t| !t.trim().is_empty())).or_else(|| tag("solution_type")),
            owned(s.trimmed()).or_else(|| tag("solution")),
        ),
        None => (tag("solution_type"), tag("solution")),
    };

    let mut cves = Vec::new();
    let mut seen = HashSet::new();
    if let Some(refs) = nvt.child("refs") {
        for r in refs.children_named("ref") {
            if r.attr("type")
                .is_some_and(|t| t.eq_ignore_ascii_case("cve"))
                && let Some(id) = r.attr("id").map(str::trim).filter(|s| !s.is_empty())
                && seen.insert(id.to_owned())
            {
                cves.push(id.to_owned());
            }
        }
    }
    // GMP 7 and older: `<cve>CVE-1, CVE-2</cve>` or `NOCVE`.
    if let Some(text) = nvt.child_text("cve") {
        for id in text.split([',', ' ']).map(str::trim) {
            if !id.is_empty() && id != "NOCVE" && seen.insert(id.to_owned()) {
                cves.push(id.to_owned());
            }
        }
    }

    let (epss_score, epss_percentile, epss_cve) = match nvt.child("epss") {
        Some(epss) => {
            let epss_path = format!("{nvt_path}/epss");
            let mut found = (None, None, None);
            for which in ["max_epss", "max_severity"] {
                if let Some(entry) = epss.child(which) {
                    let p = format!("{epss_path}/{which}");
                    let score = number(entry, &p, "score", 0.0, 1.0)?;
                    let percentile = number(entry, &p, "percentile", 0.0, 1.0)?;
                    if score.is_some() {
                        let cve = owned(entry.child("cve").and_then(|c| c.attr("id")));
                        found = (score, percentile, cve);
                        break;
                    }
                }
            }
            found
        }
        None => (None, None, None),
    };

    let name = nvt
        .child_text("name")
        .or_else(|| node.child_text("name"))
        .unwrap_or(&nvt_oid)
        .to_owned();

    Ok(VulnResult {
        result_id: owned(node.attr("id").filter(|s| !s.is_empty())),
        host,
        hostname,
        asset_id,
        port,
        protocol,
        port_raw,
        name,
        family: owned(nvt.child_text("family")),
        cvss_base,
        cvss_vector_v2,
        cvss_vector_v3,
        cvss_vector_v4,
        severity,
        original_severity,
        overridden: severity != original_severity,
        level: SeverityLevel::from_score(severity),
        original_level: SeverityLevel::from_score(original_severity),
        qod,
        qod_type,
        threat: owned(node.child_text("threat")),
        original_threat: owned(node.child_text("original_threat")),
        cves,
        epss_score,
        epss_percentile,
        epss_cve,
        solution_type,
        solution,
        summary: tag("summary"),
        insight: tag("insight"),
        affected: tag("affected"),
        impact: tag("impact"),
        vuldetect: tag("vuldetect"),
        description: node
            .child("description")
            .filter(|d| !d.text.trim().is_empty())
            .map(|d| d.text.trim_end().to_owned()),
        nvt_oid,
    })
}

/// `80/tcp` → (80, tcp); `general/tcp` → (None, tcp); `package` → (None, None).
pub fn split_port(raw: &str) -> (Option<u16>, Option<String>) {
    let raw = raw.trim();
    match raw.split_once('/') {
        Some((number, protocol)) if !protocol.is_empty() && !protocol.contains('/') => {
            (number.parse().ok(), Some(protocol.to_owned()))
        }
        Some(_) => (None, None),
        None => (raw.parse().ok(), None),
    }
}

/// NVT tags: `key=value|key=value`, values spanning lines.
fn parse_tags(text: &str) -> Vec<(&str, &str)> {
    text.split('|')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim(), v))
        .collect()
}

fn convert_host(node: &Node) -> Option<ReportHost> {
    // GMP 7+: `<host><ip>…</ip>…`; some exports write the address as the host's own text.
    let address = node.child_text("ip").or_else(|| node.trimmed())?.to_owned();
    let detail = |name: &str| {
        node.children_named("detail")
            .find(|d| d.child_text("name") == Some(name))
            .and_then(|d| d.child_text("value"))
            .map(str::to_owned)
    };
    Some(ReportHost {
        hostname: owned(node.child_text("hostname")).or_else(|| detail("hostname")),
        asset_id: owned(
            node.child("asset")
                .and_then(|a| a.attr("asset_id"))
                .filter(|s| !s.is_empty()),
        ),
        os: detail("best_os_txt"),
        start: owned(node.child_text("start")),
        end: owned(node.child_text("end")),
        address,
    })
}

/// A `BufRead` adapter that counts newlines as quick-xml consumes input, so an error can name
/// its line without a second pass. Newline offsets since the last event start are kept so the
/// line of any position inside the current event is exact.
struct LineCounter<R> {
    inner: R,
    consumed: u64,
    newlines_before_mark: u64,
    /// Offsets of newlines at or after the mark, ascending.
    pending: Vec<u64>,
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            consumed: 0,
            newlines_before_mark: 0,
            pending: Vec::new(),
        }
    }

    /// Forgets newline positions before `offset` (keeping their count).
    fn mark(&mut self, offset: u64) {
        let before = self.pending.partition_point(|&o| o < offset);
        self.newlines_before_mark += before as u64;
        self.pending.drain(..before);
    }

    /// 1-based line of `offset` (exact for offsets at or after the last mark).
    fn line_at(&self, offset: u64) -> u64 {
        1 + self.newlines_before_mark + self.pending.partition_point(|&o| o < offset) as u64
    }
}

impl<R: BufRead> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        if let (Some(dst), Some(src)) = (out.get_mut(..n), available.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        // The bytes being consumed are still in the inner buffer: fill_buf returns them without
        // reading.
        if let Ok(buffered) = self.inner.fill_buf() {
            let taken = buffered.get(..amount).unwrap_or(buffered);
            let base = self.consumed;
            self.pending
                .extend(memchr::memchr_iter(b'\n', taken).map(|i| base + i as u64));
        }
        self.consumed += amount as u64;
        self.inner.consume(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_split() {
        assert_eq!(split_port("80/tcp"), (Some(80), Some("tcp".to_owned())));
        assert_eq!(split_port("general/tcp"), (None, Some("tcp".to_owned())));
        assert_eq!(split_port("package"), (None, None));
        assert_eq!(split_port(""), (None, None));
        assert_eq!(split_port("70000/udp"), (None, Some("udp".to_owned())));
    }

    #[test]
    fn levels_follow_cvss_v3_ranges() {
        use SeverityLevel::*;
        for (score, level) in [
            (10.0, Critical),
            (9.0, Critical),
            (8.9, High),
            (7.0, High),
            (6.9, Medium),
            (4.0, Medium),
            (3.9, Low),
            (0.1, Low),
            (0.0, Log),
            (-1.0, FalsePositive),
        ] {
            assert_eq!(SeverityLevel::from_score(score), level, "{score}");
        }
    }

    #[test]
    fn lines_are_counted_across_events() {
        let xml = b"<report>\n<report>\n<results>\n<result>\n<nvt/>\n</result></results></report></report>";
        let err = parse_report_bytes(xml).unwrap_err();
        let ReportError::Malformed { path, line, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(path, "report/report/results/result[1]/nvt");
        assert_eq!(line, 5);
    }
}
