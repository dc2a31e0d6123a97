//! OSV advisories (<https://ossf.github.io/osv-schema/>): loading from a file, a directory of
//! `.json` files or a `.zip` of them (OSV's per-ecosystem `all.zip`), and an index by
//! (ecosystem, package name).
//!
//! Only what matching needs is kept: id, aliases, summary, details, severity, and for each
//! `affected[]` entry the package, its `ECOSYSTEM` ranges and its `versions[]`. A file that is
//! not a valid advisory is reported with its path and reason and skipped; the others load.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::InventoryError;
use crate::cvss::{Severity, cvss2_base_score, cvss3_base_score, severity_of_score};
use crate::ecosystem::{family_key, split_ecosystem};

/// The largest advisory file read (in a directory or a zip): a bigger one is reported, not
/// read, so a corrupt or hostile archive cannot exhaust memory.
pub const MAX_ADVISORY_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// One advisory, reduced to what matching and reporting use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    /// Other ids of the same vulnerability (CVE ids among them).
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    pub severity: AdvisorySeverity,
    pub affected: Vec<AffectedPackage>,
}

impl Advisory {
    /// The CVE ids: the id itself when it is one, then the aliases that are.
    pub fn cves(&self) -> Vec<String> {
        let mut cves: Vec<String> = std::iter::once(&self.id)
            .chain(&self.aliases)
            .filter(|id| id.starts_with("CVE-"))
            .cloned()
            .collect();
        cves.dedup();
        cves
    }
}

/// How severe an advisory is: a CVSS score and vector when it has one, and a level (from the
/// score, else from the feed's own word).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdvisorySeverity {
    pub score: Option<f64>,
    /// The vector as written (`CVSS:3.1/...`, a v2 vector, or `CVSS:4.0/...` without a score).
    pub vector: Option<String>,
    pub level: Option<Severity>,
}

/// One `affected[]` entry of an advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The ecosystem as written (`Debian:12`).
    pub ecosystem: String,
    pub name: String,
    /// The `ECOSYSTEM` ranges; other range types (GIT, SEMVER) do not apply to OS packages.
    pub ranges: Vec<Vec<RangeEvent>>,
    /// Versions listed as affected one by one.
    pub versions: Vec<String>,
    /// A severity given for this package only (Debian's urgency, for one).
    pub severity: Option<Severity>,
}

impl AffectedPackage {
    /// The release part of the ecosystem (`12` of `Debian:12`).
    pub fn release(&self) -> Option<&str> {
        split_ecosystem(&self.ecosystem).1
    }
}

/// One event of an OSV range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// A file or zip entry that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadProblem {
    /// The file's path; a zip entry is written `archive.zip!entry.json`.
    pub source: String,
    pub reason: String,
}

/// What a load found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub advisories: Vec<Advisory>,
    pub problems: Vec<LoadProblem>,
    /// Advisory files (or zip entries) read, good or bad.
    pub files_read: usize,
    /// Advisories skipped because they are withdrawn.
    pub withdrawn: usize,
}

// The serde shapes of the OSV JSON; unknown fields are ignored.
#[derive(Deserialize)]
struct RawAdvisory {
    id: String,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    affected: Option<Vec<RawAffected>>,
    #[serde(default)]
    database_specific: Option<RawSpecific>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    ecosystem_specific: Option<RawSpecific>,
    #[serde(default)]
    database_specific: Option<RawSpecific>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<String>,
    fixed: Option<String>,
    last_affected: Option<String>,
    limit: Option<String>,
}

/// `database_specific` / `ecosystem_specific`: free-form; only a severity word is read.
#[derive(Deserialize)]
struct RawSpecific {
    #[serde(default)]
    severity: Option<serde_json::Value>,
    #[serde(default)]
    urgency: Option<serde_json::Value>,
}

impl RawSpecific {
    fn level(&self) -> Option<Severity> {
        [&self.severity, &self.urgency]
            .into_iter()
            .flatten()
            .find_map(|value| value.as_str().and_then(Severity::from_word))
    }
}

/// Reads the severity list: CVSS v3 first (score computed), then v2, then v4 (vector only),
/// then a word (Ubuntu's priority).
fn severity_from_list(list: &[RawSeverity]) -> AdvisorySeverity {
    let find = |kind: &str| list.iter().find(|s| s.kind == kind).map(|s| s.score.trim());
    if let Some(vector) = find("CVSS_V3") {
        let score = cvss3_base_score(vector);
        return AdvisorySeverity {
            score,
            vector: Some(vector.to_owned()),
            level: score.map(severity_of_score),
        };
    }
    if let Some(vector) = find("CVSS_V2") {
        let score = cvss2_base_score(vector);
        return AdvisorySeverity {
            score,
            vector: Some(vector.to_owned()),
            level: score.map(severity_of_score),
        };
    }
    if let Some(vector) = find("CVSS_V4") {
        return AdvisorySeverity {
            score: None,
            vector: Some(vector.to_owned()),
            level: None,
        };
    }
    AdvisorySeverity {
        level: list.iter().find_map(|s| Severity::from_word(&s.score)),
        ..AdvisorySeverity::default()
    }
}

fn convert(raw: RawAdvisory) -> Result<Advisory, String> {
    let id = raw.id.trim();
    if id.is_empty() {
        return Err("empty id".into());
    }
    let mut severity = severity_from_list(raw.severity.as_deref().unwrap_or_default());
    if severity.level.is_none() {
        severity.level = raw.database_specific.as_ref().and_then(RawSpecific::level);
    }
    let mut affected = Vec::new();
    for entry in raw.affected.unwrap_or_default() {
        // An entry without a package (GIT-only ranges) cannot match an installed package.
        let Some(package) = entry.package else {
            continue;
        };
        let mut ranges = Vec::new();
        for range in entry.ranges.unwrap_or_default() {
            if range.kind != "ECOSYSTEM" {
                continue;
            }
            let mut events = Vec::with_capacity(range.events.len());
            for event in range.events {
                let converted = match event {
                    RawEvent {
                        introduced: Some(v),
                        ..
                    } => RangeEvent::Introduced(v),
                    RawEvent { fixed: Some(v), .. } => RangeEvent::Fixed(v),
                    RawEvent {
                        last_affected: Some(v),
                        ..
                    } => RangeEvent::LastAffected(v),
                    RawEvent { limit: Some(v), .. } => RangeEvent::Limit(v),
                    _ => {
                        return Err(format!(
                            "package {}: a range event with none of introduced/fixed/last_affected/limit",
                            package.name
                        ));
                    }
                };
                events.push(converted);
            }
            if !events
                .iter()
                .any(|e| matches!(e, RangeEvent::Introduced(_)))
            {
                return Err(format!(
                    "package {}: an ECOSYSTEM range without an introduced event",
                    package.name
                ));
            }
            ranges.push(events);
        }
        let package_severity = entry
            .severity
            .as_deref()
            .map(severity_from_list)
            .and_then(|s| s.level)
            .or_else(|| {
                entry
                    .ecosystem_specific
                    .as_ref()
                    .and_then(RawSpecific::level)
            })
            .or_else(|| {
                entry
                    .database_specific
                    .as_ref()
                    .and_then(RawSpecific::level)
            });
        affected.push(AffectedPackage {
            ecosystem: package.ecosystem,
            name: package.name,
            ranges,
            versions: entry.versions.unwrap_or_default(),
            severity: package_severity,
        });
    }
    Ok(Advisory {
        id: id.to_owned(),
        aliases: raw.aliases.unwrap_or_default(),
        summary: raw.summary.filter(|s| !s.trim().is_empty()),
        details: raw.details.filter(|s| !s.trim().is_empty()),
        severity,
        affected,
    })
}

/// Parses one OSV document (an advisory, or a JSON array of them). Withdrawn advisories are
/// counted in the second value and left out.
pub fn parse_advisories(bytes: &[u8]) -> Result<(Vec<Advisory>, usize), String> {
    let is_array = bytes
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&byte| byte == b'[');
    // Deserialized straight into the shape expected (not an untagged enum), so that the error
    // names the field that is wrong.
    let raws: Vec<RawAdvisory> = if is_array {
        serde_json::from_slice(bytes)
    } else {
        serde_json::from_slice::<RawAdvisory>(bytes).map(|raw| vec![raw])
    }
    .map_err(|error| format!("not an OSV advisory: {error}"))?;
    let mut advisories = Vec::with_capacity(raws.len());
    let mut withdrawn = 0;
    for raw in raws {
        if raw.withdrawn.is_some() {
            withdrawn += 1;
            continue;
        }
        let id = raw.id.clone();
        advisories.push(convert(raw).map_err(|reason| format!("advisory {id}: {reason}"))?);
    }
    Ok((advisories, withdrawn))
}

impl LoadReport {
    fn add_document(&mut self, source: impl FnOnce() -> String, bytes: &[u8]) {
        self.files_read += 1;
        match parse_advisories(bytes) {
            Ok((advisories, withdrawn)) => {
                self.advisories.extend(advisories);
                self.withdrawn += withdrawn;
            }
            Err(reason) => self.problem(source(), reason),
        }
    }

    fn problem(&mut self, source: String, reason: String) {
        tracing::warn!(%source, %reason, "advisory skipped");
        self.problems.push(LoadProblem { source, reason });
    }
}

fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(extension))
}

/// Loads advisories from a `.json` file, a `.zip` of them, or a directory (searched
/// recursively for both, in name order). Only an unreadable top-level path is an error.
pub fn load_path(path: &Path) -> Result<LoadReport, InventoryError> {
    let mut report = LoadReport::default();
    let metadata = std::fs::metadata(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if metadata.is_dir() {
        load_directory_into(path, &mut report);
    } else if has_extension(path, "zip") {
        load_zip_into(path, &mut report)?;
    } else {
        let bytes = std::fs::read(path).map_err(|source| InventoryError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        report.add_document(|| path.display().to_string(), &bytes);
    }
    Ok(report)
}

fn load_directory_into(directory: &Path, report: &mut LoadReport) {
    let entries = match std::fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) => {
            report.problem(
                directory.display().to_string(),
                format!("cannot list: {error}"),
            );
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            load_directory_into(&path, report);
        } else if has_extension(&path, "json") {
            match read_limited(&path) {
                Ok(bytes) => report.add_document(|| path.display().to_string(), &bytes),
                Err(reason) => {
                    report.files_read += 1;
                    report.problem(path.display().to_string(), reason);
                }
            }
        } else if has_extension(&path, "zip")
            && let Err(error) = load_zip_into(&path, report)
        {
            report.problem(path.display().to_string(), error.to_string());
        }
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|error| format!("cannot read: {error}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_ADVISORY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read: {error}"))?;
    if bytes.len() as u64 > MAX_ADVISORY_FILE_BYTES {
        return Err(format!("larger than {MAX_ADVISORY_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Loads every `.json` entry of a zip archive (OSV's `all.zip`); a bad entry is reported as
/// `archive.zip!entry` and skipped.
pub fn load_zip(path: &Path) -> Result<LoadReport, InventoryError> {
    let mut report = LoadReport::default();
    load_zip_into(path, &mut report)?;
    Ok(report)
}

fn load_zip_into(path: &Path, report: &mut LoadReport) -> Result<(), InventoryError> {
    let file = std::fs::File::open(path).map_err(|source| InventoryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|error| {
        InventoryError::Zip {
            path: path.to_path_buf(),
            reason: error.to_string(),
        }
    })?;
    let mut bytes = Vec::new();
    for index in 0..archive.len() {
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(error) => {
                report.files_read += 1;
                report.problem(format!("{}!#{index}", path.display()), error.to_string());
                continue;
            }
        };
        // A name that is not valid text is still worth loading; it is reported by position.
        let name = entry
            .name()
            .map(|name| name.into_owned())
            .unwrap_or_else(|_| format!("#{index}.json"));
        if entry.is_dir() || !name.to_ascii_lowercase().ends_with(".json") {
            continue;
        }
        let source = || format!("{}!{name}", path.display());
        bytes.clear();
        let read = (&mut entry)
            .take(MAX_ADVISORY_FILE_BYTES + 1)
            .read_to_end(&mut bytes);
        match read {
            Err(error) => {
                report.files_read += 1;
                report.problem(source(), format!("cannot read: {error}"));
            }
            Ok(_) if bytes.len() as u64 > MAX_ADVISORY_FILE_BYTES => {
                report.files_read += 1;
                report.problem(
                    source(),
                    format!("larger than {MAX_ADVISORY_FILE_BYTES} bytes"),
                );
            }
            Ok(_) => report.add_document(source, &bytes),
        }
    }
    Ok(())
}

/// Where one affected entry lives: (advisory, affected entry) positions in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffectedRef {
    pub advisory: u32,
    pub affected: u32,
}

/// Advisories indexed by (ecosystem name in lower case, package name), so matching a host
/// looks up each of its packages once per ecosystem.
#[derive(Debug, Default)]
pub struct AdvisoryIndex {
    advisories: Vec<Advisory>,
    by_family: HashMap<String, HashMap<String, Vec<AffectedRef>>>,
}

impl AdvisoryIndex {
    pub fn new(advisories: Vec<Advisory>) -> Self {
        let mut by_family: HashMap<String, HashMap<String, Vec<AffectedRef>>> = HashMap::new();
        let mut kept = Vec::with_capacity(advisories.len());
        for advisory in advisories {
            // The index stores u32 positions; beyond 4 billion advisories the rest are dropped.
            let Ok(advisory_position) = u32::try_from(kept.len()) else {
                tracing::warn!("advisory index full; further advisories ignored");
                break;
            };
            for (affected_position, affected) in advisory.affected.iter().enumerate() {
                let Ok(affected_position) = u32::try_from(affected_position) else {
                    break;
                };
                let family = family_key(split_ecosystem(&affected.ecosystem).0);
                by_family
                    .entry(family)
                    .or_default()
                    .entry(affected.name.clone())
                    .or_default()
                    .push(AffectedRef {
                        advisory: advisory_position,
                        affected: affected_position,
                    });
            }
            kept.push(advisory);
        }
        AdvisoryIndex {
            advisories: kept,
            by_family,
        }
    }

    /// Loads a path (see [`load_path`]) and indexes it; the problems come back beside it.
    pub fn load(path: &Path) -> Result<(AdvisoryIndex, Vec<LoadProblem>), InventoryError> {
        let report = load_path(path)?;
        Ok((AdvisoryIndex::new(report.advisories), report.problems))
    }

    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    /// The ecosystem names indexed (lower case).
    pub fn families(&self) -> impl Iterator<Item = &str> {
        self.by_family.keys().map(String::as_str)
    }

    /// The affected entries of `package` in an ecosystem family (a lower-case name such as
    /// `debian`).
    pub fn lookup(&self, family: &str, package: &str) -> &[AffectedRef] {
        self.by_family
            .get(family)
            .and_then(|packages| packages.get(package))
            .map_or(&[], Vec::as_slice)
    }

    /// The advisory and affected entry a reference points to.
    pub fn resolve(&self, reference: AffectedRef) -> Option<(&Advisory, &AffectedPackage)> {
        let advisory = self.advisories.get(reference.advisory as usize)?;
        let affected = advisory.affected.get(reference.affected as usize)?;
        Some((advisory, affected))
    }
}
