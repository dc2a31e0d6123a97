//! Vulnerabilities (issue 15): the overview (counts by level, the trend over recent scans, the
//! worst hosts and CVEs, the filtered result list with keyset paging), one result with the
//! analyst's decision forms (accept the risk, false positive, reopen), a host (its results,
//! its agent's alerts and software inventory) and a CVE (the hosts it affects).

use std::collections::HashMap;

use askama::Template;
use dozor_model::{
    StoredVuln, VULN_LEVELS, VulnCveSummary, VulnHostSummary, VulnScan, VulnScanJob, VulnStatus,
    VulnSummary,
};
use serde_json::Value;

use super::layout::Layout;
use super::{AlertRow, When, alert_row, clip, render, when};
use crate::i18n::Tr;
use crate::svg::{self, Column, HBar, Series};
use crate::url::{Query, segment};
use crate::view::{PageCtx, VulnCveView, VulnDetailView, VulnHostView, VulnsView};

/// Scans the trend chart shows at most.
pub const TREND_SCANS: usize = 30;
/// CVEs shown in a table row.
const ROW_CVES: usize = 3;

// ---------------------------------------------------------------- shared pieces

/// The catalog key of a level's name.
fn level_key(level: &str) -> Option<&'static str> {
    Some(match level {
        "critical" => "vulns.level.critical",
        "high" => "vulns.level.high",
        "medium" => "vulns.level.medium",
        "low" => "vulns.level.low",
        "log" => "vulns.level.log",
        "false_positive" => "vulns.level.false_positive",
        _ => return None,
    })
}

/// The CSS class of a level (the alert levels' colours; `log` is informational).
fn level_class(level: &str) -> &'static str {
    match level {
        "critical" => "lv-critical",
        "high" => "lv-high",
        "medium" => "lv-medium",
        "low" => "lv-low",
        "false_positive" => "lv-fp",
        _ => "lv-informational",
    }
}

fn level_text(tr: &Tr, level: &str) -> String {
    level_key(level).map_or_else(|| level.to_owned(), |k| tr.t(k).to_owned())
}

fn status_key(status: VulnStatus) -> &'static str {
    match status {
        VulnStatus::Open => "vulns.status.open",
        VulnStatus::Fixed => "vulns.status.fixed",
        VulnStatus::Accepted => "vulns.status.accepted",
        VulnStatus::FalsePositive => "vulns.status.false_positive",
    }
}

fn source_key(source: &str) -> Option<&'static str> {
    Some(match source {
        "openvas" => "vulns.source.openvas",
        "inventory" => "vulns.source.inventory",
        _ => return None,
    })
}

fn source_text(tr: &Tr, source: &str) -> String {
    source_key(source).map_or_else(|| source.to_owned(), |k| tr.t(k).to_owned())
}

/// A badge: CSS class and text.
struct Tag {
    class: String,
    text: String,
}

fn level_tag(tr: &Tr, level: &str) -> Tag {
    Tag {
        class: format!("lv {}", level_class(level)),
        text: level_text(tr, level),
    }
}

fn status_tag(tr: &Tr, status: VulnStatus) -> Tag {
    Tag {
        class: format!("st vs-{}", status.as_str()),
        text: tr.t(status_key(status)).to_owned(),
    }
}

/// A result as the host page lists it.
pub(crate) struct VulnBrief {
    pub href: String,
    pub severity: String,
    pub class: &'static str,
    pub level: String,
    pub name: String,
    pub port: String,
    pub cves: String,
}

pub(crate) fn vuln_briefs(tr: &Tr, vulns: &[dozor_model::StoredVuln]) -> Vec<VulnBrief> {
    vulns
        .iter()
        .map(|v| VulnBrief {
            href: vuln_href(v.id),
            severity: severity_text(tr, v.severity),
            class: level_class(&v.level),
            level: level_text(tr, &v.level),
            name: v.name.clone(),
            port: v.port.clone(),
            cves: v.cves.join(", "),
        })
        .collect()
}

/// The vulnerability page of a host as the results name it.
pub(crate) fn vulns_host_href(host: &str) -> String {
    host_href(host)
}

fn vuln_href(id: i64) -> String {
    format!("/ui/vulns/{id}")
}

fn host_href(host: &str) -> String {
    format!("/ui/vulns/hosts/{}", segment(host))
}

fn cve_href(cve: &str) -> String {
    format!("/ui/vulns/cves/{}", segment(cve))
}

fn agent_href(id: &str) -> String {
    format!("/ui/agents/{}", segment(id))
}

/// A severity (CVSS-like 0–10; -1 a false positive override) with one decimal.
fn severity_text(tr: &Tr, s: f64) -> String {
    tr.dec(s, 1)
}

/// An EPSS probability (0–1) as a percentage with two decimals.
fn epss_text(tr: &Tr, p: Option<f64>) -> String {
    p.map(|p| {
        let d = tr.dec(p * 100.0, 2);
        match tr.lang {
            crate::i18n::Lang::En => format!("{d}%"),
            crate::i18n::Lang::Ru => format!("{d}\u{a0}%"),
        }
    })
    .unwrap_or_default()
}

/// An option of a `<select>`.
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

/// A result as the tables show it.
struct VulnRow {
    href: String,
    name: String,
    level: Tag,
    severity: String,
    host: String,
    host_href: String,
    hostname: String,
    port: String,
    /// (href, id)
    cves: Vec<(String, String)>,
    more_cves: String,
    epss: String,
    status: Tag,
    source: String,
    last_seen: When,
}

fn vuln_row(tr: &Tr, v: &StoredVuln) -> VulnRow {
    VulnRow {
        href: vuln_href(v.id),
        name: clip(&v.name, 160),
        level: level_tag(tr, &v.level),
        severity: severity_text(tr, v.severity),
        host: v.host.clone(),
        host_href: host_href(&v.host),
        hostname: v.hostname.clone().unwrap_or_default(),
        port: v.port.clone(),
        cves: v
            .cves
            .iter()
            .take(ROW_CVES)
            .map(|c| (cve_href(c), c.clone()))
            .collect(),
        more_cves: if v.cves.len() > ROW_CVES {
            tr.tn("vulns.more", (v.cves.len() - ROW_CVES) as u64)
        } else {
            String::new()
        },
        epss: epss_text(tr, v.epss_score),
        status: status_tag(tr, v.status),
        source: source_text(tr, &v.source),
        last_seen: when(tr, v.last_seen),
    }
}

/// A count per level, linked to the list of that level.
struct LevelCount {
    class: &'static str,
    text: String,
    value: String,
    href: String,
}

fn level_counts(tr: &Tr, s: &VulnSummary, base: &Query) -> Vec<LevelCount> {
    VULN_LEVELS
        .iter()
        .map(|l| LevelCount {
            class: level_class(l),
            text: level_text(tr, l),
            value: tr.num(s.by_level.get(*l).copied().unwrap_or(0)),
            href: base.with("level", l).url("/ui/vulns"),
        })
        .collect()
}

/// The counts by level as horizontal bars.
fn level_chart(tr: &Tr, s: &VulnSummary) -> String {
    let rows: Vec<HBar> = VULN_LEVELS
        .iter()
        .map(|l| {
            let n = s.by_level.get(*l).copied().unwrap_or(0);
            HBar {
                // the chart's labels have little room
                label: if *l == "false_positive" {
                    tr.t("vulns.level.false_positive_short").to_owned()
                } else {
                    level_text(tr, l)
                },
                value: n as f64,
                text: tr.num(n),
                class: level_class(l).to_owned(),
            }
        })
        .collect();
    svg::hbars(tr.t("vulns.by_level"), &rows, None)
}

/// A count per status.
struct StatusCount {
    tag: Tag,
    value: String,
    href: String,
}

fn status_counts(tr: &Tr, s: &VulnSummary, base: &Query) -> Vec<StatusCount> {
    VulnStatus::ALL
        .iter()
        .map(|st| StatusCount {
            tag: status_tag(tr, *st),
            value: tr.num(s.by_status.get(st.as_str()).copied().unwrap_or(0)),
            href: base.with("status", st.as_str()).url("/ui/vulns"),
        })
        .collect()
}

/// The results per level of the recent scans, oldest first, as stacked bars.
fn trend_chart(tr: &Tr, scans: &[VulnScan]) -> String {
    let levels: Vec<&str> = VULN_LEVELS.iter().rev().copied().collect();
    let names: Vec<String> = levels.iter().map(|l| level_text(tr, l)).collect();
    let series: Vec<Series<'_>> = levels
        .iter()
        .zip(&names)
        .map(|(l, n)| Series {
            class: level_class(l),
            name: n,
        })
        .collect();
    let columns: Vec<Column> = scans
        .iter()
        .take(TREND_SCANS)
        .rev()
        .map(|s| {
            let at = s.finished_at.unwrap_or(s.recorded_at);
            let name = s.name.clone().unwrap_or_else(|| source_text(tr, &s.source));
            Column {
                label: crate::format::short_day(tr.lang, at),
                title: format!("{} · {}", clip(&name, 60), tr.dt(at)),
                values: levels
                    .iter()
                    .map(|l| s.counts.by_level.get(*l).copied().unwrap_or(0))
                    .collect(),
            }
        })
        .collect();
    svg::stacked_bars(
        tr,
        tr.t("vulns.trend"),
        &series,
        &columns,
        tr.t("vulns.no_scans"),
    )
}

struct LegendItem {
    class: &'static str,
    text: String,
}

fn legend(tr: &Tr) -> Vec<LegendItem> {
    VULN_LEVELS
        .iter()
        .map(|l| LegendItem {
            class: level_class(l),
            text: level_text(tr, l),
        })
        .collect()
}

/// A host of the worst-hosts table.
struct HostRow {
    host: String,
    href: String,
    hostname: String,
    /// (href, name)
    agent: Option<(String, String)>,
    /// Critical, high, medium, low.
    counts: Vec<String>,
    total: String,
    max: Tag,
    max_severity: String,
    last_seen: When,
}

fn severity_level(s: f64) -> &'static str {
    match s {
        s if s >= 9.0 => "critical",
        s if s >= 7.0 => "high",
        s if s >= 4.0 => "medium",
        s if s > 0.0 => "low",
        s if s < 0.0 => "false_positive",
        _ => "log",
    }
}

fn host_row(tr: &Tr, h: &VulnHostSummary, names: &HashMap<String, String>) -> HostRow {
    HostRow {
        host: h.host.clone(),
        href: host_href(&h.host),
        hostname: h.hostname.clone().unwrap_or_default(),
        agent: h.agent_id.as_deref().map(|id| {
            (
                agent_href(id),
                names.get(id).cloned().unwrap_or_else(|| clip(id, 13)),
            )
        }),
        counts: ["critical", "high", "medium", "low"]
            .iter()
            .map(|l| tr.num(h.by_level.get(*l).copied().unwrap_or(0)))
            .collect(),
        total: tr.num(h.total),
        max: level_tag(tr, severity_level(h.max_severity)),
        max_severity: severity_text(tr, h.max_severity),
        last_seen: when(tr, h.last_seen),
    }
}

/// A gvmd scan job and where its last run stands.
struct JobRow {
    name: String,
    enabled: &'static str,
    status: String,
    progress: String,
    last_finished: String,
    error: String,
}

fn job_row(tr: &Tr, j: &VulnScanJob) -> JobRow {
    let state = &j.state;
    let text = |key: &str| state.get(key).and_then(|v| v.as_str()).unwrap_or("");
    let status = match text("status") {
        "" => "idle",
        s => s,
    };
    JobRow {
        name: j.name.clone(),
        enabled: tr.t(if j.enabled {
            "vulns.job.enabled"
        } else {
            "vulns.job.disabled"
        }),
        status: match status {
            "idle" => tr.t("vulns.job_status.idle").to_owned(),
            "starting" => tr.t("vulns.job_status.starting").to_owned(),
            "running" => tr.t("vulns.job_status.running").to_owned(),
            "fetching" => tr.t("vulns.job_status.fetching").to_owned(),
            "done" => tr.t("vulns.job_status.done").to_owned(),
            "failed" => tr.t("vulns.job_status.failed").to_owned(),
            "stopped" => tr.t("vulns.job_status.stopped").to_owned(),
            other => other.to_owned(),
        },
        progress: state
            .get("progress")
            .and_then(|v| v.as_i64())
            .filter(|_| status == "running")
            .map(|p| format!("{p} %"))
            .unwrap_or_default(),
        last_finished: tr.dt_opt(state.get("last_finished").and_then(|v| v.as_i64())),
        error: text("error").to_owned(),
    }
}

/// A CVE of the worst-CVEs table.
struct CveRow {
    cve: String,
    href: String,
    hosts: String,
    results: String,
    max: Tag,
    max_severity: String,
    epss: String,
}

fn cve_row(tr: &Tr, c: &VulnCveSummary) -> CveRow {
    CveRow {
        cve: c.cve.clone(),
        href: cve_href(&c.cve),
        hosts: tr.num(c.hosts),
        results: tr.num(c.results),
        max: level_tag(tr, severity_level(c.max_severity)),
        max_severity: severity_text(tr, c.max_severity),
        epss: epss_text(tr, c.max_epss),
    }
}

// ---------------------------------------------------------------- the overview

#[derive(Template)]
#[template(path = "vulns.html")]
struct VulnsPage {
    l: Layout,
    tr: Tr,
    error: Option<&'static str>,
    total: String,
    counts: Vec<LevelCount>,
    statuses: Vec<StatusCount>,
    level_chart: String,
    trend_chart: String,
    legend: Vec<LegendItem>,
    jobs: Vec<JobRow>,
    hosts: Vec<HostRow>,
    cves: Vec<CveRow>,
    host: String,
    agent: String,
    cve: String,
    q: String,
    levels: Vec<Opt>,
    status_opts: Vec<Opt>,
    sources: Vec<Opt>,
    rows: Vec<VulnRow>,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// The overview: counts of what the filters select, the trend over recent scans, the worst
/// hosts and CVEs, one page of results most severe first.
pub fn vulns(ctx: &PageCtx, v: &VulnsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "vulns", tr.t("vulns.title").to_owned());
    let p = &v.params;
    let base = p.filter_query();
    let next_href = v
        .next_after
        .as_ref()
        .map(|a| base.with("after", a).url("/ui/vulns"));
    let first_href = p.after.as_ref().map(|_| base.url("/ui/vulns"));
    let opts = |values: &mut dyn Iterator<Item = (String, String)>, selected: &str| {
        values
            .map(|(value, label)| Opt {
                selected: value == selected,
                value,
                label,
            })
            .collect::<Vec<Opt>>()
    };
    render(&VulnsPage {
        error: v.error.as_deref().and_then(|k| tr.lookup(k)),
        total: tr.tn("vulns.count", v.total),
        counts: level_counts(&tr, &v.summary, &base.without("level")),
        statuses: status_counts(&tr, &v.summary, &base.without("status")),
        level_chart: level_chart(&tr, &v.summary),
        trend_chart: trend_chart(&tr, &v.scans),
        legend: legend(&tr),
        jobs: v.jobs.iter().map(|j| job_row(&tr, j)).collect(),
        hosts: v
            .summary
            .hosts
            .iter()
            .map(|h| host_row(&tr, h, &v.agent_names))
            .collect(),
        cves: v.summary.cves.iter().map(|c| cve_row(&tr, c)).collect(),
        host: p.host.clone(),
        agent: p.agent.clone(),
        cve: p.cve.clone(),
        q: p.q.clone(),
        levels: opts(
            &mut VULN_LEVELS
                .iter()
                .map(|l| ((*l).to_owned(), level_text(&tr, l))),
            &p.level,
        ),
        status_opts: opts(
            &mut VulnStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), tr.t(status_key(*s)).to_owned())),
            &p.status,
        ),
        sources: opts(
            &mut dozor_model::VULN_SOURCES
                .iter()
                .map(|s| ((*s).to_owned(), source_text(&tr, s))),
            &p.source,
        ),
        rows: v.results.iter().map(|r| vuln_row(&tr, r)).collect(),
        next_href,
        first_href,
        l,
        tr,
    })
}

// ---------------------------------------------------------------- one result

/// A member of the result's details.
struct DetailItem {
    key: String,
    text: String,
}

fn detail_items(details: &Value) -> Vec<DetailItem> {
    match details {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
            .map(|(k, v)| DetailItem {
                key: k.clone(),
                text: match v {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string_pretty(other).unwrap_or_default(),
                },
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![DetailItem {
            key: String::new(),
            text: serde_json::to_string_pretty(other).unwrap_or_default(),
        }],
    }
}

#[derive(Template)]
#[template(path = "vulns_detail.html")]
struct VulnDetailPage {
    l: Layout,
    tr: Tr,
    r: VulnRow,
    error: Option<String>,
    id: i64,
    nvt_oid: String,
    family: String,
    /// (href, name)
    agent: Option<(String, String)>,
    cvss_base: String,
    cvss_v2: String,
    cvss_v3: String,
    original_severity: String,
    qod: String,
    threat: String,
    all_cves: Vec<(String, String)>,
    epss_percentile: String,
    solution_type: String,
    solution: String,
    details: Vec<DetailItem>,
    status_reason: String,
    status_until: Option<When>,
    status_by: String,
    status_at: When,
    first_seen: When,
    fixed_at: Option<When>,
    last_scan_id: i64,
    times_seen: String,
    status_action: String,
    may_reopen: bool,
    may_decide: bool,
}

/// One result: every field, and the decision forms (analysts+).
pub fn vuln_detail(ctx: &PageCtx, v: &VulnDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let x = &v.vuln;
    let l = Layout::new(ctx, &tr, "vuln", clip(&x.name, 120));
    let opt = |s: &Option<String>| s.clone().unwrap_or_default();
    render(&VulnDetailPage {
        r: vuln_row(&tr, x),
        error: v.error.clone(),
        id: x.id,
        nvt_oid: x.nvt_oid.clone(),
        family: opt(&x.family),
        agent: x.agent_id.as_deref().map(|id| {
            (
                agent_href(id),
                v.agent_name.clone().unwrap_or_else(|| id.to_owned()),
            )
        }),
        cvss_base: x.cvss_base.map(|c| tr.dec(c, 1)).unwrap_or_default(),
        cvss_v2: opt(&x.cvss_vector_v2),
        cvss_v3: opt(&x.cvss_vector_v3),
        original_severity: x
            .original_severity
            .map(|s| severity_text(&tr, s))
            .unwrap_or_default(),
        qod: x.qod.map(|q| tr.pct(f64::from(q))).unwrap_or_default(),
        threat: opt(&x.threat),
        all_cves: x.cves.iter().map(|c| (cve_href(c), c.clone())).collect(),
        epss_percentile: epss_text(&tr, x.epss_percentile),
        solution_type: opt(&x.solution_type),
        solution: opt(&x.solution),
        details: detail_items(&x.details),
        status_reason: opt(&x.status_reason),
        status_until: x.status_until.map(|t| when(&tr, t)),
        status_by: opt(&x.status_by),
        status_at: when(&tr, x.status_at),
        first_seen: when(&tr, x.first_seen),
        fixed_at: x.fixed_at.map(|t| when(&tr, t)),
        last_scan_id: x.last_scan_id,
        times_seen: tr.num(x.times_seen),
        status_action: format!("/ui/vulns/{}/status", x.id),
        may_reopen: matches!(x.status, VulnStatus::Accepted | VulnStatus::FalsePositive),
        may_decide: x.status != VulnStatus::Fixed,
        l,
        tr,
    })
}

// ---------------------------------------------------------------- a host

#[derive(Template)]
#[template(path = "vulns_host.html")]
struct VulnHostPage {
    l: Layout,
    tr: Tr,
    host: String,
    hostname: String,
    total: String,
    shown_note: String,
    counts: Vec<LevelCount>,
    level_chart: String,
    list_href: String,
    /// (href, name, id)
    agent: Option<(String, String, String)>,
    alerts: Vec<AlertRow>,
    alerts_href: String,
    inventory: Option<InventoryPanel>,
    rows: Vec<VulnRow>,
}

struct InventoryPanel {
    packages: String,
    os: String,
    reported: When,
}

/// The OS of an inventory as one line (`PRETTY_NAME`, else name and version).
fn os_text(os: &Value) -> String {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| os.get(*n).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    if let Some(p) = field(&["pretty_name", "PRETTY_NAME"]) {
        return p;
    }
    let name = field(&["name", "NAME", "id", "ID"]).unwrap_or_default();
    let version = field(&["version", "VERSION", "version_id", "VERSION_ID"]).unwrap_or_default();
    let text = format!("{name} {version}").trim().to_owned();
    if text.is_empty() {
        match os {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => clip(&other.to_string(), 200),
        }
    } else {
        text
    }
}

/// A host: its counts, its results, its agent's recent alerts and software inventory.
pub fn vuln_host(ctx: &PageCtx, v: &VulnHostView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(
        ctx,
        &tr,
        "vuln-host",
        tr.tf("vulns.host_title", &[("host", &clip(&v.host, 80))]),
    );
    let mut base = Query::new();
    base.push("host", &v.host);
    let names: HashMap<String, String> = v
        .agent
        .iter()
        .filter_map(|(id, name)| name.clone().map(|n| (id.clone(), n)))
        .collect();
    let mut alerts_q = Query::new();
    alerts_q.push("status_any", "1");
    if let Some((id, _)) = &v.agent {
        alerts_q.push("agent", id);
    }
    let shown = v.results.len() as u64;
    render(&VulnHostPage {
        host: v.host.clone(),
        hostname: v
            .results
            .iter()
            .find_map(|r| r.hostname.clone())
            .unwrap_or_default(),
        total: tr.tn("vulns.count", v.summary.total),
        shown_note: if v.summary.total > shown {
            tr.tf("vulns.shown", &[("n", &tr.num(shown))])
        } else {
            String::new()
        },
        counts: level_counts(&tr, &v.summary, &base),
        level_chart: level_chart(&tr, &v.summary),
        list_href: base.url("/ui/vulns"),
        agent: v.agent.as_ref().map(|(id, name)| {
            (
                agent_href(id),
                name.clone().unwrap_or_else(|| clip(id, 13)),
                id.clone(),
            )
        }),
        alerts: v.alerts.iter().map(|a| alert_row(&tr, a, &names)).collect(),
        alerts_href: alerts_q.url("/ui/alerts"),
        inventory: v.inventory.as_ref().map(|i| InventoryPanel {
            packages: tr.tn("vulns.packages", i.package_count),
            os: os_text(&i.os),
            reported: when(&tr, i.reported_at),
        }),
        rows: v.results.iter().map(|r| vuln_row(&tr, r)).collect(),
        l,
        tr,
    })
}

// ---------------------------------------------------------------- a CVE

#[derive(Template)]
#[template(path = "vulns_cve.html")]
struct VulnCvePage {
    l: Layout,
    tr: Tr,
    cve: String,
    total: String,
    shown_note: String,
    hosts_count: String,
    hosts: Vec<HostRow>,
    list_href: String,
    rows: Vec<VulnRow>,
}

/// A CVE: the hosts it affects, worst first, and its results.
pub fn vuln_cve(ctx: &PageCtx, v: &VulnCveView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(
        ctx,
        &tr,
        "vuln-cve",
        tr.tf("vulns.cve_title", &[("cve", &clip(&v.cve, 80))]),
    );
    let mut base = Query::new();
    base.push("cve", &v.cve);
    let shown = v.results.len() as u64;
    let hosts = v
        .summary
        .cves
        .iter()
        .find(|c| c.cve.eq_ignore_ascii_case(&v.cve))
        .map_or(v.summary.hosts.len() as u64, |c| c.hosts);
    render(&VulnCvePage {
        cve: v.cve.clone(),
        total: tr.tn("vulns.count", v.summary.total),
        shown_note: if v.summary.total > shown {
            tr.tf("vulns.shown", &[("n", &tr.num(shown))])
        } else {
            String::new()
        },
        hosts_count: tr.tn("vulns.hosts_count", hosts),
        hosts: v
            .summary
            .hosts
            .iter()
            .map(|h| host_row(&tr, h, &v.agent_names))
            .collect(),
        list_href: base.url("/ui/vulns"),
        rows: v.results.iter().map(|r| vuln_row(&tr, r)).collect(),
        l,
        tr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::VulnParams;
    use serde_json::json;

    #[test]
    fn keysets_round_trip() {
        let k = VulnParams::keyset(9.8, 42);
        assert_eq!(VulnParams::parse_keyset(&k), Some((9.8, 42)));
        assert_eq!(VulnParams::parse_keyset("-1_3"), Some((-1.0, 3)));
        assert_eq!(VulnParams::parse_keyset("x_3"), None);
        assert_eq!(VulnParams::parse_keyset("5"), None);
        assert_eq!(VulnParams::parse_keyset("NaN_3"), None);
    }

    #[test]
    fn os_lines() {
        assert_eq!(
            os_text(&json!({"pretty_name": "Astra Linux 1.8"})),
            "Astra Linux 1.8"
        );
        assert_eq!(
            os_text(&json!({"name": "Debian", "version_id": "12"})),
            "Debian 12"
        );
        assert_eq!(os_text(&Value::Null), "");
    }
}
