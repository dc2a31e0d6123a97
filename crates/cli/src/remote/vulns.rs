//! `dozor vulns …` (issue 15): a running server's vulnerability results — list and show them,
//! import an OpenVAS/GMP report, export JSON or CSV, and an analyst's decisions (accept the
//! risk, false positive, reopen).

use std::fs::File;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use dozor_model::{StoredVuln, VulnScan, VulnSummary};
use serde::Deserialize;
use serde_json::{Value, json};

use super::intel::{Connection, fetch, send_file, write_file};
use super::{
    Cell, Client, EXIT_CODES, Format, Remote, clean, emit, emit_json, key_values, read, table,
    time_ms,
};

/// The largest report the server imports (`POST /api/v1/vulns/import`).
const MAX_REPORT_BYTES: u64 = 256 << 20;

#[derive(Subcommand)]
pub enum VulnsCmd {
    /// List results, most severe first (filters combine; `--limit` per page), with a summary
    /// by level.
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Show one result in full.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The result's id (as `dozor vulns list` shows it).
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Import an OpenVAS/Greenbone XML report (analyst or admin; audited). A malformed report
    /// is refused with the element, line and reason, and nothing is stored.
    #[command(after_help = EXIT_CODES)]
    Import(ImportArgs),
    /// Export the selected results as JSON or CSV (file or stdout).
    #[command(after_help = EXIT_CODES)]
    Export(ExportArgs),
    /// Accept the risk of a result, with a reason and an expiry (analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Accept {
        /// The result's id.
        id: i64,
        /// Why the risk is accepted (kept with the result).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// When the acceptance ends: a span (`30d`, `12w`) or a time (RFC 3339); the result is
        /// open again then [default: never — a warning is printed].
        #[arg(long, value_name = "30d|RFC3339")]
        until: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Mark a result a false positive (analyst or admin; audited): scans no longer change it.
    #[command(name = "false-positive", after_help = EXIT_CODES)]
    FalsePositive {
        /// The result's id.
        id: i64,
        /// Why it is not real.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Undo an acceptance or a false positive (analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Reopen {
        /// The result's id.
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Args, Clone, Default)]
pub struct Filters {
    /// Only this host (as written in the report: an address, or a name).
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Only results linked to this agent.
    #[arg(long, value_name = "ID")]
    agent: Option<String>,
    /// Only results naming this CVE.
    #[arg(long, value_name = "CVE")]
    cve: Option<String>,
    /// Only these levels (critical, high, medium, low, log, false_positive); repeatable.
    #[arg(long = "level", value_name = "L")]
    levels: Vec<String>,
    /// Only these statuses (open, fixed, accepted, false_positive); repeatable [default: all].
    #[arg(long = "status", value_name = "S")]
    statuses: Vec<String>,
    /// Only `openvas` or `inventory` results.
    #[arg(long, value_name = "SRC")]
    source: Option<String>,
    /// Severity at least (0-10).
    #[arg(long, value_name = "N")]
    min_severity: Option<f64>,
    /// Name, host, OID or CVE contains this (case-insensitive).
    #[arg(value_name = "Q")]
    query: Option<String>,
}

impl Filters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q: Vec<(&str, String)> = Vec::new();
        for (key, value) in [
            ("host", &self.host),
            ("agent", &self.agent),
            ("cve", &self.cve),
            ("source", &self.source),
            ("q", &self.query),
        ] {
            if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
                q.push((key, v.clone()));
            }
        }
        if !self.levels.is_empty() {
            q.push(("level", self.levels.join(",")));
        }
        if !self.statuses.is_empty() {
            q.push(("status", self.statuses.join(",")));
        }
        if let Some(s) = self.min_severity {
            q.push(("min_severity", s.to_string()));
        }
        q
    }
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    filters: Filters,
    /// Results per page, 1-5000 [default: 100].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=5000))]
    limit: Option<u32>,
    /// Start at this `next_cursor` of an earlier page.
    #[arg(long)]
    cursor: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The report file (XML, at most 256 MiB).
    file: PathBuf,
    /// A name for the scan [default: the file's name].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Print the server's report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum, Debug)]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "csv")]
    format: ExportFormat,
    /// The file [default: stdout].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    #[command(flatten)]
    filters: Filters,
    #[command(flatten)]
    connection: Connection,
}

/// `GET /api/v1/vulns`.
#[derive(Deserialize)]
struct Page {
    vulns: Vec<StoredVuln>,
    next_cursor: Option<String>,
}

/// `POST /api/v1/vulns/import`.
#[derive(Deserialize)]
struct ImportReport {
    scan: VulnScan,
    gmp_version: Option<String>,
    hosts: u64,
    warning: Option<String>,
    already_imported: bool,
}

pub fn vulns(cmd: VulnsCmd) -> Result<u8> {
    match cmd {
        VulnsCmd::List(args) => list(args),
        VulnsCmd::Show { id, remote } => show(id, &remote),
        VulnsCmd::Import(args) => import(args),
        VulnsCmd::Export(args) => export(args),
        VulnsCmd::Accept {
            id,
            reason,
            until,
            remote,
        } => {
            let until = match until {
                Some(u) => Some(until_ms(&u, chrono::Utc::now().timestamp_millis())?),
                None => {
                    eprintln!(
                        "warning: accepted without --until: the risk stays accepted until someone \
                         reopens it"
                    );
                    None
                }
            };
            decide(
                id,
                json!({"status": "accepted", "reason": reason, "until": until}),
                &remote,
            )
        }
        VulnsCmd::FalsePositive { id, reason, remote } => decide(
            id,
            json!({"status": "false_positive", "reason": reason}),
            &remote,
        ),
        VulnsCmd::Reopen { id, remote } => decide(id, json!({"status": "open"}), &remote),
    }
}

fn vulns_table(vulns: &[StoredVuln]) -> String {
    let rows: Vec<Vec<String>> = vulns
        .iter()
        .map(|v| {
            vec![
                v.id.cell(),
                format!("{:.1}", v.severity),
                v.level.cell(),
                v.status.as_str().to_owned(),
                v.host.cell(),
                v.hostname.cell(),
                v.port.cell(),
                super::truncate(v.name.cell(), 60),
                super::truncate(v.cves.cell(), 40),
                v.epss_score
                    .map_or("-".to_owned(), |e| format!("{:.1}%", e * 100.0)),
                v.source.cell(),
                time_ms(Some(v.last_seen)),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "SEV",
            "LEVEL",
            "STATUS",
            "HOST",
            "HOSTNAME",
            "PORT",
            "NAME",
            "CVES",
            "EPSS",
            "SOURCE",
            "LAST SEEN",
        ],
        &rows,
    )
}

fn list(args: ListArgs) -> Result<u8> {
    let client = Client::connect(&args.remote, false)?;
    let mut query = args.filters.query();
    if let Some(c) = args.cursor.filter(|c| !c.is_empty()) {
        query.push(("cursor", c));
    }
    query.push(("limit", args.limit.unwrap_or(100).to_string()));
    let answer = client.get("/api/v1/vulns", &query)?;
    if client.format == Format::Json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let page: Page = read(&answer, "a page of results")?;
    if page.vulns.is_empty() {
        eprintln!("no results match");
        return Ok(0);
    }
    let summary = client.get("/api/v1/vulns/summary", &args.filters.query())?;
    let summary: VulnSummary = read(&summary, "a summary")?;
    let mut out = vulns_table(&page.vulns);
    let levels: Vec<String> = ["critical", "high", "medium", "low", "log"]
        .iter()
        .map(|l| format!("{l} {}", summary.by_level.get(*l).copied().unwrap_or(0)))
        .collect();
    out.push_str(&format!(
        "\n{} results in all: {}\n",
        summary.total,
        levels.join(", ")
    ));
    emit(&out)?;
    if let Some(next) = page.next_cursor {
        eprintln!("more: --cursor {next}");
    }
    Ok(0)
}

fn show(id: i64, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let answer = client.get(&format!("/api/v1/vulns/{id}"), &[])?;
    if client.format == Format::Json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let v: StoredVuln = read(&answer, "a result")?;
    emit(&describe(&v))?;
    Ok(0)
}

fn describe(v: &StoredVuln) -> String {
    let opt = |o: &Option<String>| o.as_deref().map_or_else(|| "-".to_owned(), clean);
    let num = |o: Option<f64>| o.map_or_else(|| "-".to_owned(), |x| x.to_string());
    let mut pairs: Vec<(&str, String)> = vec![
        ("id", v.id.to_string()),
        ("name", clean(&v.name)),
        ("host", clean(&v.host)),
        ("hostname", opt(&v.hostname)),
        ("agent", opt(&v.agent_id)),
        ("port", clean(&v.port)),
        ("oid / advisory", clean(&v.nvt_oid)),
        ("family", opt(&v.family)),
        ("level", v.level.clone()),
        ("severity", v.severity.to_string()),
        ("original severity", num(v.original_severity)),
        ("cvss base", num(v.cvss_base)),
        ("cvss v3 vector", opt(&v.cvss_vector_v3)),
        ("cvss v2 vector", opt(&v.cvss_vector_v2)),
        (
            "qod",
            v.qod.map_or_else(|| "-".to_owned(), |q| format!("{q}%")),
        ),
        (
            "cves",
            if v.cves.is_empty() {
                "-".into()
            } else {
                v.cves.join(" ")
            },
        ),
        ("epss", num(v.epss_score)),
        ("epss percentile", num(v.epss_percentile)),
        ("solution type", opt(&v.solution_type)),
        ("solution", opt(&v.solution)),
        ("status", v.status.as_str().to_owned()),
        ("status reason", opt(&v.status_reason)),
        ("status until", time_ms(v.status_until)),
        ("status by", opt(&v.status_by)),
        ("first seen", time_ms(Some(v.first_seen))),
        ("last seen", time_ms(Some(v.last_seen))),
        ("fixed at", time_ms(v.fixed_at)),
        ("seen by scans", v.times_seen.to_string()),
        ("source", v.source.clone()),
    ];
    if let Value::Object(details) = &v.details {
        for key in [
            "summary",
            "insight",
            "impact",
            "package",
            "installed_version",
            "fixed_version",
        ] {
            if let Some(text) = details.get(key).and_then(Value::as_str) {
                pairs.push((key, clean(text)));
            }
        }
    }
    key_values(&pairs)
}

fn decide(id: i64, body: Value, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let answer = client.post(&format!("/api/v1/vulns/{id}/status"), &body)?;
    if client.format == Format::Json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let v: StoredVuln = read(&answer, "a result")?;
    emit(&describe(&v))?;
    Ok(0)
}

fn import(args: ImportArgs) -> Result<u8> {
    let format = if args.json {
        Format::Json
    } else {
        Format::Table
    };
    let client = Client::connect(&args.connection.remote(format), false)?;
    let path = &args.file;
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_REPORT_BYTES {
        bail!(
            "{} has {size} bytes; the server imports at most {MAX_REPORT_BYTES} (256 MiB)",
            path.display()
        );
    }
    let name = args
        .name
        .clone()
        .or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()));
    let mut request = client
        .agent
        .post(client.url("/api/v1/vulns/import"))
        .header("Authorization", format!("Bearer {}", client.token))
        .header("Accept", "application/json")
        .content_type("application/xml");
    if let Some(name) = &name {
        request = request.query("name", name);
    }
    let response = send_file(request, file, size).map_err(|e| client.transport_error(e))?;
    let answer = client.answer(response)?;
    if args.json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let r: ImportReport = read(&answer, "an import report")?;
    let c = &r.scan.counts;
    let level = |l: &str| c.by_level.get(l).copied().unwrap_or(0).to_string();
    let mut pairs = vec![
        ("file", clean(&path.display().to_string())),
        ("scan", r.scan.id.to_string()),
        ("report id", r.scan.report_id.cell()),
        ("gmp version", r.gmp_version.cell()),
        ("hosts", r.hosts.to_string()),
        ("results", c.results.to_string()),
        ("critical", level("critical")),
        ("high", level("high")),
        ("medium", level("medium")),
        ("low", level("low")),
        ("log", level("log")),
        ("false positive", level("false_positive")),
        ("new", c.new.to_string()),
        ("seen again", c.seen_again.to_string()),
        ("reopened", c.reopened.to_string()),
        ("fixed", c.fixed.to_string()),
    ];
    if r.already_imported {
        pairs.push((
            "note",
            "this report was imported before: nothing changed".into(),
        ));
    }
    emit(&key_values(&pairs))?;
    if let Some(w) = r.warning {
        eprintln!("warning: {}", clean(&w));
    }
    Ok(0)
}

fn export(args: ExportArgs) -> Result<u8> {
    let client = Client::connect(&args.connection.remote(Format::Table), false)?;
    let mut query = args.filters.query();
    let (format, accept) = match args.format {
        ExportFormat::Json => ("json", "application/json"),
        ExportFormat::Csv => ("csv", "text/csv"),
    };
    query.push(("format", format.to_owned()));
    let (_, bytes) = fetch(&client, "/api/v1/vulns/export", &query, accept)?;
    match &args.out {
        Some(path) => {
            write_file(path, &bytes)?;
            eprintln!("wrote {} bytes to {}", bytes.len(), path.display());
        }
        None => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            emit(&text)?;
        }
    }
    Ok(0)
}

/// `--until`: a span from now (`30d`, `12w`, `24h`) or an RFC 3339 time, as ms.
fn until_ms(text: &str, now_ms: i64) -> Result<i64> {
    let text = text.trim();
    let span = |digits: &str, per_ms: i64| -> Option<i64> {
        let n: i64 = digits.parse().ok().filter(|n| *n > 0 && *n <= 100_000)?;
        now_ms.checked_add(n.checked_mul(per_ms)?)
    };
    let at = if let Some(h) = text.strip_suffix('h') {
        span(h, 3_600_000)
    } else if let Some(d) = text.strip_suffix('d') {
        span(d, 86_400_000)
    } else if let Some(w) = text.strip_suffix('w') {
        span(w, 7 * 86_400_000)
    } else {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.timestamp_millis())
    };
    match at {
        Some(t) if t <= now_ms => bail!("--until {text}: that time has passed"),
        Some(t) => Ok(t),
        None => Err(anyhow!(
            "--until {text:?}: a span from now (24h, 30d, 12w) or an RFC 3339 time"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_spans_and_times() {
        let now = 1_700_000_000_000;
        assert_eq!(until_ms("30d", now).unwrap(), now + 30 * 86_400_000);
        assert_eq!(until_ms("2w", now).unwrap(), now + 14 * 86_400_000);
        assert_eq!(until_ms("24h", now).unwrap(), now + 86_400_000);
        assert_eq!(
            until_ms("2030-01-01T00:00:00Z", now).unwrap(),
            1_893_456_000_000
        );
        assert!(until_ms("2001-01-01T00:00:00Z", now).is_err());
        assert!(until_ms("0d", now).is_err());
        assert!(until_ms("soon", now).is_err());
    }
}
