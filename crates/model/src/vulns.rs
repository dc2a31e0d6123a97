//! Vulnerability management (issue 15): `vuln_scan_result` records from OpenVAS/Greenbone
//! reports and from agents' software inventories, the scans that brought them, agents'
//! inventories and the scan jobs Dozor runs through gvmd.
//!
//! A result is identified across scans by `(host, port, nvt_oid)`: the host as the scanner
//! wrote it (an address, or a name that is not one), the port as written (`443/tcp`,
//! `general/tcp`; `package/<ecosystem>/<name>` for an inventory finding) and the NVT OID (the
//! advisory id for an inventory finding).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::named;

/// Where results come from.
pub const VULN_SOURCES: [&str; 2] = ["openvas", "inventory"];
/// The severity levels of a result, most severe first (`false_positive`: gvmd's -1 override).
pub const VULN_LEVELS: [&str; 6] = ["critical", "high", "medium", "low", "log", "false_positive"];
/// Largest page of results a listing returns.
pub const MAX_VULN_PAGE: u32 = 5000;

/// Where a result stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VulnStatus {
    /// Found by the latest scan of its host.
    Open,
    /// Absent from a later scan of the same host (by the same source).
    Fixed,
    /// An operator accepts the risk, with a reason, until an expiry (then open again).
    Accepted,
    /// An operator says it is not real; scans do not change it.
    FalsePositive,
}

impl VulnStatus {
    /// All statuses.
    pub const ALL: [VulnStatus; 4] = [
        VulnStatus::Open,
        VulnStatus::Fixed,
        VulnStatus::Accepted,
        VulnStatus::FalsePositive,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            VulnStatus::Open => "open",
            VulnStatus::Fixed => "fixed",
            VulnStatus::Accepted => "accepted",
            VulnStatus::FalsePositive => "false_positive",
        }
    }
}

named!(VulnStatus, "vulnerability status");

/// A result as a scan (or an inventory match) gives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewVulnResult {
    /// The host as written: an IP address, or a name that is not one.
    pub host: String,
    /// Its DNS or agent host name, when known.
    pub hostname: Option<String>,
    /// The enrolled agent on that host, when known.
    pub agent_id: Option<String>,
    /// The port as written (`443/tcp`, `general/tcp`, `package/Debian/openssl`).
    pub port: String,
    /// The NVT OID (OpenVAS) or the advisory id (inventory).
    pub nvt_oid: String,
    /// What was found.
    pub name: String,
    /// The NVT family (OpenVAS) or the advisory's ecosystem (inventory).
    pub family: Option<String>,
    /// CVSS base score, 0–10.
    pub cvss_base: Option<f64>,
    /// CVSS v2 vector.
    pub cvss_vector_v2: Option<String>,
    /// CVSS v3.x vector.
    pub cvss_vector_v3: Option<String>,
    /// Effective severity, -1 (false positive override) to 10.
    pub severity: f64,
    /// The severity before overrides, when an override changed it.
    pub original_severity: Option<f64>,
    /// One of [`VULN_LEVELS`], from the effective severity.
    pub level: String,
    /// Quality of detection, 0–100.
    pub qod: Option<u8>,
    /// gvmd's threat word (`High`, `Medium`, …).
    pub threat: Option<String>,
    /// CVE ids.
    #[serde(default)]
    pub cves: Vec<String>,
    /// EPSS probability 0–1 (of the highest-scored CVE).
    pub epss_score: Option<f64>,
    /// EPSS percentile 0–1.
    pub epss_percentile: Option<f64>,
    /// `VendorFix`, `Mitigation`, `Workaround`, `WillNotFix`, `NoneAvailable`.
    pub solution_type: Option<String>,
    /// What to do.
    pub solution: Option<String>,
    /// The rest: summary, insight, affected, impact, detection method, description; for an
    /// inventory finding the package, installed and fixed versions.
    #[serde(default)]
    pub details: Value,
}

/// A scan (a report import, a gvmd task's report, or an agent's inventory matched) as given
/// to the store with its results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewVulnScan {
    /// `openvas` or `inventory`.
    pub source: String,
    /// How it came: `import` (a file), `gmp` (a scan job), `agent` (an inventory).
    pub origin: String,
    /// The scanner's report id, when it has one.
    pub report_id: Option<String>,
    /// The task or scan job's name, or the imported file's name.
    pub name: Option<String>,
    /// When the scan started, ms.
    pub started_at: Option<i64>,
    /// When it ended, ms.
    pub finished_at: Option<i64>,
    /// The hosts it covered (as results write them): an open result of the same source on one
    /// of them that this scan did not find becomes `fixed`.
    pub hosts: Vec<String>,
    /// Who brought it (a user, `agent:<id>`, `scan-job:<name>`).
    pub by: String,
}

/// Counts of a scan's effect.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnScanCounts {
    /// Results in the scan (after merging repeats within it).
    pub results: u64,
    /// Results never seen before.
    pub new: u64,
    /// Results seen before and still open (or accepted, or false positive).
    pub seen_again: u64,
    /// Results that had been fixed and are found again.
    pub reopened: u64,
    /// Open results on a covered host that this scan did not find.
    pub fixed: u64,
    /// The scan's results per level.
    pub by_level: BTreeMap<String, u64>,
}

/// A scan as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnScan {
    /// Row id.
    pub id: i64,
    /// `openvas` or `inventory`.
    pub source: String,
    /// `import`, `gmp` or `agent`.
    pub origin: String,
    /// The scanner's report id.
    pub report_id: Option<String>,
    /// Task, job or file name.
    pub name: Option<String>,
    /// When the scan started, ms.
    pub started_at: Option<i64>,
    /// When it ended, ms.
    pub finished_at: Option<i64>,
    /// How many hosts it covered.
    pub hosts: u64,
    /// When Dozor stored it, ms.
    pub recorded_at: i64,
    /// Who brought it.
    pub recorded_by: String,
    /// What it changed.
    pub counts: VulnScanCounts,
}

/// What [`NewVulnScan`] recording did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnScanReport {
    /// The stored scan with its counts.
    pub scan: VulnScan,
    /// Ids of the results that are new or reopened by this scan (for alerts).
    pub raised: Vec<i64>,
}

/// A `vuln_scan_result` record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredVuln {
    /// Row id.
    pub id: i64,
    /// `openvas` or `inventory`.
    pub source: String,
    /// The host as written.
    pub host: String,
    /// Host name, when known.
    pub hostname: Option<String>,
    /// The enrolled agent on the host, when known.
    pub agent_id: Option<String>,
    /// Port as written.
    pub port: String,
    /// NVT OID or advisory id.
    pub nvt_oid: String,
    /// What was found.
    pub name: String,
    /// NVT family or ecosystem.
    pub family: Option<String>,
    /// CVSS base score.
    pub cvss_base: Option<f64>,
    /// CVSS v2 vector.
    pub cvss_vector_v2: Option<String>,
    /// CVSS v3.x vector.
    pub cvss_vector_v3: Option<String>,
    /// Effective severity (after overrides).
    pub severity: f64,
    /// Severity before overrides, when one changed it.
    pub original_severity: Option<f64>,
    /// Level of the effective severity.
    pub level: String,
    /// Quality of detection.
    pub qod: Option<u8>,
    /// gvmd's threat word.
    pub threat: Option<String>,
    /// CVE ids.
    pub cves: Vec<String>,
    /// EPSS probability.
    pub epss_score: Option<f64>,
    /// EPSS percentile.
    pub epss_percentile: Option<f64>,
    /// Solution type.
    pub solution_type: Option<String>,
    /// Solution text.
    pub solution: Option<String>,
    /// Summary, insight, package … (see [`NewVulnResult::details`]).
    pub details: Value,
    /// Where it stands.
    pub status: VulnStatus,
    /// Why (accepted risk, false positive).
    pub status_reason: Option<String>,
    /// An acceptance's expiry, ms.
    pub status_until: Option<i64>,
    /// Who set the status (an operator, or `scan` for open/fixed).
    pub status_by: Option<String>,
    /// When the status last changed, ms.
    pub status_at: i64,
    /// First found, ms (the scan's time, else when stored).
    pub first_seen: i64,
    /// Last found, ms.
    pub last_seen: i64,
    /// When it became fixed, ms.
    pub fixed_at: Option<i64>,
    /// The scan that last found it.
    pub last_scan_id: i64,
    /// How many scans found it.
    pub times_seen: u64,
}

/// A listing of results: filters (all optional, combined with AND), most severe first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VulnQuery {
    /// Host as written (exact).
    pub host: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// A CVE id (exact).
    pub cve: Option<String>,
    /// NVT OID or advisory id (exact).
    pub nvt_oid: Option<String>,
    /// Any of these levels.
    pub levels: Vec<String>,
    /// Any of these statuses.
    pub statuses: Vec<VulnStatus>,
    /// `openvas` or `inventory`.
    pub source: Option<String>,
    /// Severity at least.
    pub min_severity: Option<f64>,
    /// Name, host, host name, OID or CVE contains (case-insensitive).
    pub contains: Option<String>,
    /// Keyset paging: results after this (severity, id) in listing order.
    pub after: Option<(f64, i64)>,
    /// Page size (capped at [`MAX_VULN_PAGE`]).
    pub limit: u32,
}

/// Per host: how many results of each level, and the worst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnHostSummary {
    /// Host as written.
    pub host: String,
    /// Host name, when known.
    pub hostname: Option<String>,
    /// The enrolled agent on the host, when known.
    pub agent_id: Option<String>,
    /// Results per level.
    pub by_level: BTreeMap<String, u64>,
    /// All results.
    pub total: u64,
    /// Highest severity.
    pub max_severity: f64,
    /// Latest last-seen, ms.
    pub last_seen: i64,
}

/// Per CVE: how many hosts and results, and the worst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnCveSummary {
    /// CVE id.
    pub cve: String,
    /// Distinct hosts.
    pub hosts: u64,
    /// Results.
    pub results: u64,
    /// Highest severity.
    pub max_severity: f64,
    /// Highest EPSS probability.
    pub max_epss: Option<f64>,
}

/// Counts over the results a query selects: by level and status, the worst hosts and CVEs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnSummary {
    /// Results.
    pub total: u64,
    /// Results per level.
    pub by_level: BTreeMap<String, u64>,
    /// Results per status.
    pub by_status: BTreeMap<String, u64>,
    /// Hosts, worst first (at most `top`).
    pub hosts: Vec<VulnHostSummary>,
    /// CVEs, worst first (at most `top`).
    pub cves: Vec<VulnCveSummary>,
}

/// An operator's decision on a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VulnStatusRequest {
    /// `accepted` (needs a reason; an expiry is advised), `false_positive` (needs a reason) or
    /// `open` (undoes either).
    pub status: VulnStatus,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// When an acceptance ends, ms (RFC 3339 in the CLI); the result is open again then.
    #[serde(default)]
    pub until: Option<i64>,
}

/// An agent's software inventory as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentInventory {
    /// The agent.
    pub agent_id: String,
    /// SHA-256 of the sorted package list (the agent reports again when it changes).
    pub fingerprint: String,
    /// The OS as `/etc/os-release` (or Windows) gives it.
    pub os: Value,
    /// The packages: `[{name, version, arch, source_name, source_version, vendor,
    /// ecosystem}]`.
    pub packages: Value,
    /// How many packages.
    pub package_count: u64,
    /// When it was reported, ms.
    pub reported_at: i64,
}

/// A scan job: what Dozor asks gvmd to scan, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VulnScanJob {
    /// Unique name.
    pub name: String,
    /// Targets, scan config, scanner, port list, schedule (see the server's scan jobs).
    pub spec: Value,
    /// Run on its schedule.
    pub enabled: bool,
    /// gvmd's ids and the last run's state (task id, report id, status, progress, error).
    pub state: Value,
    /// When the settings changed, ms.
    pub updated_at: i64,
    /// Who changed them.
    pub updated_by: String,
}
