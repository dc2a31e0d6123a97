//! Vulnerability routes (issue 15): report import, `vuln_scan_result` listing, summary and
//! export, an operator's decision on a result, scans, advisories, and the agents' software
//! inventories.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_model::{
    AgentInventory, MAX_VULN_PAGE, StoredVuln, VULN_LEVELS, VULN_SOURCES, VulnQuery, VulnScan,
    VulnStatus, VulnStatusRequest, VulnSummary,
};
use dozor_store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{ADMIN, Caller, JsonBody, Params, PathId, READ, TRIAGE, bad_param, not_found};
use crate::blocking_body::blocking_body;
use crate::ops::{audited, store_problem};
use crate::problem::Problem;
use crate::problem_responses::{
    BadParameter, Forbidden, InvalidBody, JsonTooLarge, NotJson, NotJsonMediaType, Unauthorized,
    problem_response,
};
use crate::state::{AppState, ConnectionInfo};
use crate::vulns::{AdvisoryStatus, MAX_REPORT_BYTES, VulnError, VulnService};

pub(crate) const VULNS: &str = "/api/v1/vulns";
pub(crate) const VULN: &str = "/api/v1/vulns/{id}";
pub(crate) const VULN_STATUS: &str = "/api/v1/vulns/{id}/status";
pub(crate) const VULNS_SUMMARY: &str = "/api/v1/vulns/summary";
pub(crate) const VULNS_EXPORT: &str = "/api/v1/vulns/export";
pub(crate) const VULNS_IMPORT: &str = "/api/v1/vulns/import";
pub(crate) const VULN_SCANS: &str = "/api/v1/vulns/scans";
pub(crate) const ADVISORIES: &str = "/api/v1/vulns/advisories";
pub(crate) const ADVISORIES_RELOAD: &str = "/api/v1/vulns/advisories/reload";
pub(crate) const AGENT_INVENTORY: &str = "/api/v1/agents/{id}/inventory";
pub(crate) const INVENTORY_REPORT: &str = "/api/v1/agents/inventory";

/// Largest inventory an agent may send, bytes.
pub(crate) const MAX_INVENTORY_BODY: usize = 16 * 1024 * 1024;
/// Most rows an export writes.
const MAX_EXPORT_ROWS: u64 = 1_000_000;

problem_response! {
    VulnsNotConfigured = 503, "The API (a store) is not configured on this server";
    NoSuchVuln = 404, "No such result";
    NoSuchInventory = 404, "The agent has reported no inventory";
    InvalidReport = 422, "The report does not parse: `element` and `reason` say where and why; nothing was stored";
    ReportTooLarge = 413, "The report is larger than 256 MiB";
    InvalidStatus = 422, "A decision the result cannot take (`reason`)";
    NoAdvisories = 409, "`vulns.advisories` is not set or could not be read (`reason`)";
    NoAgentIdentity = 401, "Needs the agent's client certificate";
}

fn service(state: &AppState) -> Result<&Arc<VulnService>, Problem> {
    state.vulns.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("vulnerability management needs a store: this server has none attached")
    })
}

fn vuln_problem(e: VulnError) -> Problem {
    match e {
        VulnError::Report(e) => {
            let reason = e.to_string();
            let mut p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-report",
                "Invalid report",
            )
            .detail(format!("{reason}; nothing was stored"))
            .with("reason", reason);
            if let dozor_gmp::ReportError::Malformed {
                path, line, offset, ..
            } = &e
            {
                p = p
                    .with("element", path.clone())
                    .with("line", json!(line))
                    .with("offset", json!(offset));
            }
            p
        }
        VulnError::Store(e) => store_problem(e),
        VulnError::Advisories(reason) => {
            Problem::new(StatusCode::CONFLICT, "no-advisories", "No advisories")
                .detail(reason.clone())
                .with("reason", reason)
        }
        VulnError::Inventory(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid inventory",
        )
        .detail(reason.clone())
        .with("reason", reason),
    }
}

fn vuln_id(path: &PathId) -> Result<i64, Problem> {
    path.0
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| bad_param("id", format!("{:?}: a result id (1 or more)", path.0)))
}

/// A page of results.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnPage {
    /// Most severe first, then newest.
    pub vulns: Vec<StoredVuln>,
    /// The `cursor` of the next page; none on the last.
    pub next_cursor: Option<String>,
}

/// What an import stored.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnImportReport {
    /// The scan with its counts (new, seen again, reopened, fixed, per level).
    pub scan: VulnScan,
    /// GMP version of the report, when it says.
    pub gmp_version: Option<String>,
    /// Hosts in the report.
    pub hosts: u64,
    /// Set when the report's own filter hid results (gvmd's default `min_qod=70`, levels
    /// without log or low, paging): fetch it with `levels=chmlg min_qod=30 rows=-1`.
    pub warning: Option<String>,
    /// True when this report id had been imported before (nothing changed).
    pub already_imported: bool,
}

/// What the server did with an agent's inventory.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InventoryAnswer {
    /// True when the package list differs from the one stored before.
    pub stored: bool,
    /// Advisories that apply to it (0 when no advisories are loaded).
    pub findings: u64,
}

/// An agent's inventory report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InventoryReport {
    /// SHA-256 (hex) of the sorted package list, as `dozor-inventory` computes it.
    #[serde(default)]
    pub fingerprint: String,
    /// The OS and the installed packages.
    #[schema(value_type = InventoryShape)]
    pub inventory: dozor_inventory::Inventory,
    /// Lines of the package database the agent could not read.
    #[serde(default)]
    pub problems: u64,
}

// The shape `dozor_inventory::Inventory` has on the wire, for the document only.
/// An inventory: the host's OS (os-release) and its installed packages.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct InventoryShape {
    os: Option<OsShape>,
    packages: Vec<PackageShape>,
}

/// The fields of os-release that decide which advisories apply.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct OsShape {
    /// `ID`, lower case (`debian`, `astra`, `redos`, `altlinux`, `rhel`…).
    id: String,
    version_id: Option<String>,
    /// `ID_LIKE`, split on spaces.
    id_like: Vec<String>,
    name: Option<String>,
    pretty_name: Option<String>,
    version_codename: Option<String>,
}

/// One installed package.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct PackageShape {
    name: String,
    /// As the package database writes it.
    version: String,
    arch: Option<String>,
    source_name: Option<String>,
    source_version: Option<String>,
    vendor: Option<String>,
    ecosystem: EcosystemShape,
}

/// Which package database a package came from.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub(crate) enum EcosystemShape {
    Dpkg,
    Rpm,
    Windows,
}

/// The query parameters of the result listings, summary and export.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct VulnParameters {
    /// The host as written (an address, or a name that is not one)
    #[param(nullable = false, max_length = 1024)]
    host: Option<String>,
    /// The enrolled agent on the host
    #[param(nullable = false, max_length = 1024)]
    agent: Option<String>,
    /// A CVE id (case-insensitive)
    #[param(nullable = false, max_length = 64)]
    cve: Option<String>,
    /// An NVT OID or advisory id
    #[param(nullable = false, max_length = 1024)]
    oid: Option<String>,
    /// Levels, comma-separated: critical, high, medium, low, log, false_positive
    #[param(
        nullable = false,
        pattern = r"^((critical|high|medium|low|log|false_positive)(,(critical|high|medium|low|log|false_positive))*)?$"
    )]
    level: Option<String>,
    /// Statuses, comma-separated: open, fixed, accepted, false_positive
    #[param(
        nullable = false,
        pattern = r"^((open|fixed|accepted|false_positive)(,(open|fixed|accepted|false_positive))*)?$"
    )]
    status: Option<String>,
    /// `openvas` or `inventory`
    #[param(nullable = false, pattern = "^(openvas|inventory)?$")]
    source: Option<String>,
    /// Severity at least (-1 to 10)
    #[param(nullable = false, minimum = -1, maximum = 10)]
    min_severity: Option<f64>,
    /// Name, host, OID or CVE contains this (case-insensitive)
    #[param(nullable = false, max_length = 1024)]
    q: Option<String>,
}

/// Paging of `GET /api/v1/vulns`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct PageParameters {
    /// `next_cursor` of the previous page
    #[param(
        nullable = false,
        pattern = r"^-?[0-9]{1,2}(\.[0-9]{1,17})?:[1-9][0-9]{0,17}$"
    )]
    cursor: Option<String>,
    /// Page size, 1–5000 (default 100)
    #[param(nullable = false, minimum = 1, maximum = 5000)]
    limit: Option<u32>,
}

const FILTERS: &[&str] = &[
    "host",
    "agent",
    "cve",
    "oid",
    "level",
    "status",
    "source",
    "min_severity",
    "q",
];

/// The filters of a query string.
fn query_of(params: &Params) -> Result<VulnQuery, Problem> {
    let levels: Vec<String> = params
        .list("level")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if let Some(bad) = levels.iter().find(|l| !VULN_LEVELS.contains(&l.as_str())) {
        return Err(bad_param(
            "level",
            format!("{bad:?}: one of {}", VULN_LEVELS.join(", ")),
        ));
    }
    let statuses = params
        .list("status")
        .into_iter()
        .map(|s| {
            s.parse::<VulnStatus>().map_err(|_| {
                bad_param(
                    "status",
                    format!("{s:?}: one of open, fixed, accepted, false_positive"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let source = params.string("source")?;
    if let Some(s) = &source
        && !VULN_SOURCES.contains(&s.as_str())
    {
        return Err(bad_param("source", format!("{s:?}: openvas or inventory")));
    }
    let min_severity = match params.get("min_severity")? {
        None => None,
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && (-1.0..=10.0).contains(x))
                .ok_or_else(|| {
                    bad_param("min_severity", format!("{v:?}: a number from -1 to 10"))
                })?,
        ),
    };
    Ok(VulnQuery {
        host: params.text("host", 1024)?,
        agent_id: params.text("agent", 1024)?,
        cve: params.text("cve", 64)?,
        nvt_oid: params.text("oid", 1024)?,
        levels,
        statuses,
        source,
        min_severity,
        contains: params.text("q", 1024)?,
        after: None,
        limit: 100,
    })
}

fn parse_cursor(c: &str) -> Option<(f64, i64)> {
    let (sev, id) = c.split_once(':')?;
    let sev: f64 = sev.parse().ok().filter(|s: &f64| s.is_finite())?;
    let id: i64 = id.parse().ok().filter(|i| *i > 0)?;
    Some((sev, id))
}

/// `GET /api/v1/vulns`.
#[utoipa::path(get, path = VULNS, tag = "vulns", operation_id = "vulns_list",
    summary = "Vulnerability results",
    description = "`vuln_scan_result` records from OpenVAS reports and agents' inventories, most severe \
first (then newest), with keyset paging (`cursor`). Filters combine with AND.",
    params(VulnParameters, PageParameters),
    responses(
        (status = 200, description = "A page of results", body = VulnPage),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Json<VulnPage>, Problem> {
    let mut known = FILTERS.to_vec();
    known.extend(["cursor", "limit"]);
    params.only(&known)?;
    let service = service(&state)?;
    let mut query = query_of(&params)?;
    query.limit = params.limit(100, MAX_VULN_PAGE)?;
    query.after =
        match params.given("cursor")? {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| {
                bad_param("cursor", "the cursor was not produced by this listing")
            })?),
        };
    let vulns = service
        .store()
        .list_vulns(&query)
        .await
        .map_err(store_problem)?;
    let next_cursor = (vulns.len() == query.limit as usize)
        .then(|| vulns.last().map(|v| format!("{}:{}", v.severity, v.id)))
        .flatten();
    Ok(Json(VulnPage { vulns, next_cursor }))
}

/// `GET /api/v1/vulns/{id}`.
#[utoipa::path(get, path = VULN, tag = "vulns", operation_id = "vulns_one",
    summary = "One result",
    params(("id" = i64, Path, description = "Result id", minimum = 1)),
    responses(
        (status = 200, description = "The result", body = StoredVuln),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        NoSuchVuln,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    id: PathId,
) -> Result<Json<StoredVuln>, Problem> {
    let id = vuln_id(&id)?;
    let service = service(&state)?;
    let vuln = service
        .store()
        .get_vuln(id)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("result {id}")))?;
    Ok(Json(vuln))
}

/// `POST /api/v1/vulns/{id}/status`.
#[utoipa::path(post, path = VULN_STATUS, tag = "vulns", operation_id = "vulns_set_status",
    summary = "Accept the risk, mark a false positive, or reopen",
    description = "An analyst's decision (audited as `vuln.status`): `accepted` needs a `reason` and takes an \
optional `until` (ms; the result is open again then), `false_positive` needs a `reason` (scans no longer \
change it), `open` undoes either. `fixed` is refused: a later scan of the host decides that.",
    params(("id" = i64, Path, description = "Result id", minimum = 1)),
    request_body = VulnStatusRequest,
    responses(
        (status = 200, description = "The result after the change", body = StoredVuln),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        JsonTooLarge,
        NotJsonMediaType,
        NotJson,
        InvalidBody,
        NoSuchVuln,
        InvalidStatus,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn set_status(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    id: PathId,
    JsonBody(request): JsonBody<VulnStatusRequest>,
) -> Result<Json<StoredVuln>, Problem> {
    let id = vuln_id(&id)?;
    let service = service(&state)?;
    let store = service.store();
    let changed = store
        .set_vuln_status(id, &request, &caller.identity.subject, now_ms())
        .await
        .map_err(|e| match e {
            dozor_store::StoreError::InvalidArgument(reason) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-status",
                "Invalid decision",
            )
            .detail(reason.clone())
            .with("reason", reason),
            e => store_problem(e),
        })?
        .ok_or_else(|| not_found(&format!("result {id}")))?;
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "vuln.status",
        format!("vuln:{id}"),
        json!({"status": request.status.as_str(), "reason": request.reason, "until": request.until,
            "host": changed.host, "oid": changed.nvt_oid}),
    )
    .await?;
    Ok(Json(changed))
}

/// The parameters of `GET /api/v1/vulns/summary`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SummaryParameters {
    /// How many hosts and CVEs, 1–1000 (default 20)
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    top: Option<u32>,
}

/// `GET /api/v1/vulns/summary`.
#[utoipa::path(get, path = VULNS_SUMMARY, tag = "vulns", operation_id = "vulns_summary",
    summary = "Counts by level and status, the worst hosts and CVEs",
    params(VulnParameters, SummaryParameters),
    responses(
        (status = 200, description = "The summary", body = VulnSummary),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn summary(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Json<VulnSummary>, Problem> {
    let mut known = FILTERS.to_vec();
    known.push("top");
    params.only(&known)?;
    let service = service(&state)?;
    let query = query_of(&params)?;
    let top = params.count("top", 20, 1000)?;
    let summary = service
        .store()
        .vuln_summary(&query, top)
        .await
        .map_err(store_problem)?;
    Ok(Json(summary))
}

/// The parameters of `GET /api/v1/vulns/export`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ExportParameters {
    /// `json` (default: a JSON array of `vuln_scan_result` records) or `csv`
    #[param(nullable = false, pattern = "^(json|csv)?$")]
    format: Option<String>,
}

/// The CSV columns of an export, in order (the `vuln_scan_result` format, flat).
pub const CSV_COLUMNS: [&str; 27] = [
    "id",
    "source",
    "host",
    "hostname",
    "agent_id",
    "port",
    "nvt_oid",
    "name",
    "family",
    "cvss_base",
    "cvss_vector_v2",
    "cvss_vector_v3",
    "severity",
    "original_severity",
    "level",
    "qod",
    "threat",
    "cves",
    "epss_score",
    "epss_percentile",
    "solution_type",
    "solution",
    "status",
    "status_reason",
    "first_seen",
    "last_seen",
    "fixed_at",
];

/// One record as a CSV line (RFC 4180 quoting; CVEs separated by spaces; times RFC 3339).
pub fn csv_line(v: &StoredVuln) -> String {
    fn field(s: &str) -> String {
        // A leading = + - @ would be a formula to a spreadsheet: quoted with a tab-free prefix.
        let risky = s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err();
        let s = if risky { format!("'{s}") } else { s.to_owned() };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    }
    let opt = |o: &Option<String>| o.as_deref().map(field).unwrap_or_default();
    let num = |o: Option<f64>| o.map(|x| x.to_string()).unwrap_or_default();
    let time = |ms: Option<i64>| {
        ms.and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    [
        v.id.to_string(),
        field(&v.source),
        field(&v.host),
        opt(&v.hostname),
        opt(&v.agent_id),
        field(&v.port),
        field(&v.nvt_oid),
        field(&v.name),
        opt(&v.family),
        num(v.cvss_base),
        opt(&v.cvss_vector_v2),
        opt(&v.cvss_vector_v3),
        v.severity.to_string(),
        num(v.original_severity),
        field(&v.level),
        v.qod.map(|q| q.to_string()).unwrap_or_default(),
        opt(&v.threat),
        field(&v.cves.join(" ")),
        num(v.epss_score),
        num(v.epss_percentile),
        opt(&v.solution_type),
        opt(&v.solution),
        v.status.as_str().to_owned(),
        opt(&v.status_reason),
        time(Some(v.first_seen)),
        time(Some(v.last_seen)),
        time(v.fixed_at),
    ]
    .join(",")
}

/// `GET /api/v1/vulns/export`.
#[utoipa::path(get, path = VULNS_EXPORT, tag = "vulns", operation_id = "vulns_export",
    summary = "Export results as JSON or CSV",
    description = "Every result the filters select, most severe first, as a JSON array of `vuln_scan_result` \
records (the shape of `GET /api/v1/vulns/{id}`) or as CSV with a header line (columns: id, source, host, \
hostname, agent_id, port, nvt_oid, name, family, cvss_base, cvss_vector_v2, cvss_vector_v3, severity, \
original_severity, level, qod, threat, cves (space-separated), epss_score, epss_percentile, solution_type, \
solution, status, status_reason, first_seen, last_seen, fixed_at (RFC 3339)). At most 1,000,000 rows.",
    params(VulnParameters, ExportParameters),
    responses(
        (status = 200, description = "The records", content(
            (Vec<StoredVuln> = "application/json"),
            (String = "text/csv"),
        )),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn export(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Response, Problem> {
    let mut known = FILTERS.to_vec();
    known.push("format");
    params.only(&known)?;
    let csv = match params.get("format")? {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(bad_param("format", format!("{other:?}: json or csv"))),
    };
    let service = service(&state)?;
    let mut query = query_of(&params)?;
    query.limit = MAX_VULN_PAGE;
    let mut rows: Vec<StoredVuln> = Vec::new();
    loop {
        let page = service
            .store()
            .list_vulns(&query)
            .await
            .map_err(store_problem)?;
        let full = page.len() == query.limit as usize;
        query.after = page.last().map(|v| (v.severity, v.id));
        rows.extend(page);
        if !full || rows.len() as u64 >= MAX_EXPORT_ROWS {
            break;
        }
    }
    if csv {
        let mut out = CSV_COLUMNS.join(",");
        out.push_str("\r\n");
        for v in &rows {
            out.push_str(&csv_line(v));
            out.push_str("\r\n");
        }
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"vuln_scan_result.csv\"",
                ),
            ],
            out,
        )
            .into_response())
    } else {
        Ok(Json(rows).into_response())
    }
}

/// The parameters of `POST /api/v1/vulns/import`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ImportParameters {
    /// A name for the scan (the file name); default: the report's task name
    #[param(nullable = false, max_length = 1024)]
    name: Option<String>,
}

/// `POST /api/v1/vulns/import`.
#[utoipa::path(post, path = VULNS_IMPORT, tag = "vulns", operation_id = "vulns_import",
    summary = "Import an OpenVAS/GMP XML report",
    description = "Reads an OpenVAS/Greenbone report (a `<report>` — also one wrapping the inner report — or a \
`get_reports_response`; GMP 9 and 22.x shapes) whole, then stores its results as `vuln_scan_result` records \
in one transaction (analyst, audited as `vuln.import`): deduplicated per (host, port, NVT OID), results of a \
scanned host missing from this report become `fixed`, fixed ones found again are reopened, and a new or \
reopened result at `vulns.alert_level` or worse raises an alert. A malformed report is refused (422) naming \
the element, line and reason, and nothing is stored. The same report id imported again changes nothing. At \
most 256 MiB.",
    params(ImportParameters),
    request_body(description = "The report's XML", content(("application/xml"), ("text/xml"), ("application/octet-stream"))),
    responses(
        (status = 200, description = "Stored: the scan and its counts", body = VulnImportReport),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        ReportTooLarge,
        InvalidReport,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn import(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<VulnImportReport>, Problem> {
    params.only(&["name"])?;
    let name = params.text("name", 1024)?;
    let service = service(&state)?;
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "report-too-large",
            "Report too large",
        )
        .detail(format!(
            "a report may have at most {MAX_REPORT_BYTES} bytes"
        ))
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_REPORT_BYTES as u64)
    {
        return Err(too_large());
    }
    // The upload is parsed as it arrives (see crate::blocking_body): a large report is never
    // held whole, and a malformed one is refused without reading the rest.
    let (reader, forward, outcome) = blocking_body(body, MAX_REPORT_BYTES as u64);
    let before = now_ms();
    let parse_and_record = service.import_reader(reader, name, "import", &caller.identity.subject);
    let (size, imported) = tokio::join!(forward, parse_and_record);
    let (parsed, report) = imported.map_err(|e| {
        if outcome.too_large() {
            too_large()
        } else if outcome.unreadable() {
            Problem::bad_request("unreadable-body", e.to_string())
        } else {
            vuln_problem(e)
        }
    })?;
    let already_imported = report.scan.recorded_at < before;
    let counts = &report.scan.counts;
    audited(
        service.store().as_ref(),
        &caller.identity.subject,
        "vuln.import",
        format!("vuln-scan:{}", report.scan.id),
        json!({"bytes": size, "report_id": parsed.report_id, "results": counts.results,
            "new": counts.new, "reopened": counts.reopened, "fixed": counts.fixed,
            "already_imported": already_imported}),
    )
    .await?;
    Ok(Json(VulnImportReport {
        warning: filter_warning(parsed.filter.as_deref()),
        gmp_version: parsed.gmp_version.clone(),
        hosts: parsed.hosts.len() as u64,
        scan: report.scan,
        already_imported,
    }))
}

/// What a report's own filter hid, when it hid something.
pub(crate) fn filter_warning(filter: Option<&str>) -> Option<String> {
    let filter = filter?;
    let mut hidden = Vec::new();
    for term in filter.split_whitespace() {
        let (key, value) = term.split_once('=').unwrap_or((term, ""));
        match key {
            "min_qod" if value.parse::<u32>().is_ok_and(|q| q > 30) => hidden.push(format!(
                "results detected with quality below {value}% (min_qod={value})"
            )),
            "levels" if !value.contains('l') || !value.contains('g') => {
                hidden.push(format!("some severity levels (levels={value})"))
            }
            "rows" if value != "-1" && !value.is_empty() => {
                hidden.push(format!("results past the first page (rows={value})"))
            }
            _ => {}
        }
    }
    (!hidden.is_empty()).then(|| {
        format!(
            "the report was fetched with a filter that hid {}: fetch it with `apply_overrides=1 levels=chmlg min_qod=30 rows=-1`",
            hidden.join(", ")
        )
    })
}

/// The parameters of `GET /api/v1/vulns/scans`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ScanParameters {
    /// `openvas` or `inventory`
    #[param(nullable = false, pattern = "^(openvas|inventory)?$")]
    source: Option<String>,
    /// How many, 1–5000 (default 50)
    #[param(nullable = false, minimum = 1, maximum = 5000)]
    limit: Option<u32>,
}

/// Scans, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VulnScanList {
    /// The scans with their counts (trends over scans).
    pub scans: Vec<VulnScan>,
}

/// `GET /api/v1/vulns/scans`.
#[utoipa::path(get, path = VULN_SCANS, tag = "vulns", operation_id = "vulns_scans",
    summary = "Scans and what each changed (trends)",
    params(ScanParameters),
    responses(
        (status = 200, description = "Newest first", body = VulnScanList),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn scans(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Json<VulnScanList>, Problem> {
    params.only(&["source", "limit"])?;
    let source = params.string("source")?;
    if let Some(s) = &source
        && !VULN_SOURCES.contains(&s.as_str())
    {
        return Err(bad_param("source", format!("{s:?}: openvas or inventory")));
    }
    let limit = params.limit(50, MAX_VULN_PAGE)?;
    let service = service(&state)?;
    let scans = service
        .store()
        .list_vuln_scans(source.as_deref(), limit)
        .await
        .map_err(store_problem)?;
    Ok(Json(VulnScanList { scans }))
}

/// `GET /api/v1/vulns/advisories`.
#[utoipa::path(get, path = ADVISORIES, tag = "vulns", operation_id = "vulns_advisories",
    summary = "The OSV advisories inventories are matched against",
    responses(
        (status = 200, description = "The last load", body = AdvisoryStatus),
        Unauthorized,
        Forbidden<READ>,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn advisories(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<AdvisoryStatus>, Problem> {
    Ok(Json(service(&state)?.advisory_status()))
}

/// `POST /api/v1/vulns/advisories/reload`.
#[utoipa::path(post, path = ADVISORIES_RELOAD, tag = "vulns", operation_id = "vulns_advisories_reload",
    summary = "Load the OSV advisories again and match every inventory",
    description = "Reads `vulns.advisories` again (after new files were copied in) and matches every stored \
inventory against them (admin, audited as `vuln.advisories.reload`). Files that cannot be read are listed \
in `problems` and skipped.",
    responses(
        (status = 200, description = "Loaded", body = AdvisoryStatus),
        Unauthorized,
        Forbidden<ADMIN>,
        NoAdvisories,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn reload_advisories(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<AdvisoryStatus>, Problem> {
    let service = service(&state)?;
    let status = service.reload_advisories().await.map_err(vuln_problem)?;
    audited(
        service.store().as_ref(),
        &caller.identity.subject,
        "vuln.advisories.reload",
        "vulns".into(),
        json!({"advisories": status.advisories, "problems": status.problem_count,
            "inventories_matched": status.inventories_matched}),
    )
    .await?;
    Ok(Json(status))
}

/// `GET /api/v1/agents/{id}/inventory`.
#[utoipa::path(get, path = AGENT_INVENTORY, tag = "vulns", operation_id = "agent_inventory",
    summary = "An agent's software inventory",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The inventory last reported", body = AgentInventory),
        Unauthorized,
        Forbidden<READ>,
        NoSuchInventory,
        VulnsNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn agent_inventory(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    id: PathId,
) -> Result<Json<AgentInventory>, Problem> {
    let service = service(&state)?;
    let inventory = service
        .store()
        .get_agent_inventory(&id.0)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("inventory of agent {}", id.0)))?;
    Ok(Json(inventory))
}

/// `POST /api/v1/agents/inventory`: only with an agent's client certificate.
#[utoipa::path(post, path = INVENTORY_REPORT, tag = "agents", operation_id = "agent_inventory_report",
    summary = "An agent reports its installed software",
    description = "The agent's package list (dpkg, rpm or the Windows uninstall keys) and OS: stored for the \
agent and matched against the loaded OSV advisories; the findings become results of source `inventory` for \
the agent's host. Agents send it at start and when it changes. At most 16 MiB.",
    request_body(content = InventoryReport, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored and matched", body = InventoryAnswer),
        NotJson,
        NoAgentIdentity,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        VulnsNotConfigured,
    ),
    security(("agent_certificate" = [])))]
pub(crate) async fn report_inventory(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    JsonBody(report): JsonBody<InventoryReport>,
) -> Result<Json<InventoryAnswer>, Problem> {
    let registry = super::agents::registry(&state)?;
    let certs = connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default();
    let Some(identity) = registry
        .identify(&certs)
        .await
        .map_err(|e| Problem::from(e).instance(INVENTORY_REPORT))?
    else {
        return Err(Problem::unauthorized(
            "inventory reports need the agent's client certificate (dozor-agent enroll)",
            false,
        )
        .instance(INVENTORY_REPORT));
    };
    let service = service(&state)?;
    let agent = service
        .store()
        .get_agent(&identity.subject)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("agent {}", identity.subject)))?;
    if report.problems > 0 {
        tracing::info!(agent = %agent.id, problems = report.problems, "agent could not read part of its package database");
    }
    let (stored, findings) = service
        .report_inventory(&agent, &report.fingerprint, report.inventory)
        .await
        .map_err(vuln_problem)?;
    Ok(Json(InventoryAnswer { stored, findings }))
}
