//! The alert list: filters, sortable columns, paging, bulk status changes.

use askama::Template;
use dozor_model::{AlertStatus, AlertTime, Level};

use super::layout::Layout;
use super::{AlertRow, alert_row, level_key, render, status_key};
use crate::i18n::Tr;
use crate::view::{AlertsParams, AlertsView, PageCtx, Range, SortKey};

pub(crate) struct Opt {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub(crate) struct SortLink {
    pub href: String,
    pub label: &'static str,
    pub arrow: &'static str,
    pub aria: &'static str,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage<'a> {
    l: Layout,
    tr: Tr,
    p: &'a AlertsParams,
    statuses: Vec<Opt>,
    levels: Vec<Opt>,
    ranges: Vec<Opt>,
    bases: Vec<Opt>,
    custom: bool,
    rows: Vec<AlertRow>,
    shown: String,
    sort_time: SortLink,
    other_time: &'static str,
    sort_level: SortLink,
    sort_rule: SortLink,
    sort_count: SortLink,
    sort_note: bool,
    bulk_targets: Vec<Opt>,
    next_href: Option<String>,
    first_href: Option<String>,
    refresh_href: String,
    error: Option<&'static str>,
    export_csv: String,
    export_json: String,
}

/// The export link of the shown alert list: its filters as the API takes them (the agent a
/// host name names resolved to its id, the range as milliseconds).
fn export_href(v: &AlertsView, now: i64, format: &str) -> String {
    let p = &v.params;
    let mut q = crate::url::Query::new();
    q.push("format", format);
    q.push(
        "status",
        p.statuses
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    q.push_opt("min_level", p.min_level.map(|l| l.as_str()));
    q.push("rule_text", &p.rule);
    let typed = p.agent.trim();
    let agent = v
        .agent_names
        .iter()
        .find(|(id, host)| id.as_str() == typed || host.to_lowercase() == typed.to_lowercase())
        .map_or(typed, |(id, _)| id.as_str());
    q.push("agent", agent);
    q.push("host", &p.host);
    q.push("tag", &p.tag);
    q.push("assignee", &p.assignee);
    q.push("time", p.by.as_str());
    if let Ok((from, to)) = p.time.bounds(now) {
        q.push_opt("from", from.map(|t| t.to_string()));
        q.push_opt("to", to.map(|t| t.to_string()));
    }
    q.url("/api/v1/alerts/export")
}

/// The catalog key of a time basis's name.
pub(crate) fn time_basis_key(basis: AlertTime) -> &'static str {
    match basis {
        AlertTime::Event => "alerts.by_event",
        AlertTime::Detected => "alerts.by_detected",
    }
}

pub(crate) fn range_opts(tr: &Tr, current: Range) -> Vec<Opt> {
    Range::ALL
        .iter()
        .map(|r| Opt {
            value: r.code(),
            label: tr.t(r.key()),
            selected: *r == current,
        })
        .collect()
}

pub(crate) fn level_opts(tr: &Tr, current: Option<Level>) -> Vec<Opt> {
    Level::ALL
        .iter()
        .map(|l| Opt {
            value: l.as_str(),
            label: tr.t(level_key(*l)),
            selected: current == Some(*l),
        })
        .collect()
}

fn sort_link(p: &AlertsParams, key: SortKey, label: &'static str) -> SortLink {
    let active = p.sort == key;
    // a click on the active column flips the direction; another column starts descending
    let asc = active && !p.asc;
    let mut next = p.clone();
    next.sort = key;
    next.asc = asc;
    next.cursor = p.cursor.clone();
    SortLink {
        href: next.query().url("/ui/alerts"),
        label,
        arrow: match (active, p.asc) {
            (false, _) => "",
            (true, false) => "▼",
            (true, true) => "▲",
        },
        aria: match (active, p.asc) {
            (false, _) => "none",
            (true, false) => "descending",
            (true, true) => "ascending",
        },
    }
}

/// The alert list page.
pub fn alerts(ctx: &PageCtx, v: &AlertsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "alerts", tr.t("alerts.title").to_owned());
    let p = &v.params;
    let (export_csv, export_json) = (
        export_href(v, ctx.now, "csv"),
        export_href(v, ctx.now, "ndjson"),
    );
    let mut sorted = v.alerts.clone();
    p.sort_page(&mut sorted);
    let rows: Vec<AlertRow> = sorted
        .iter()
        .map(|a| alert_row(&tr, a, &v.agent_names))
        .collect();
    let statuses = AlertStatus::ALL
        .iter()
        .map(|s| Opt {
            value: s.as_str(),
            label: tr.t(status_key(*s)),
            selected: p.statuses.contains(s),
        })
        .collect();
    let bulk_targets = [
        (AlertStatus::Acknowledged, "action.acknowledge"),
        (AlertStatus::Resolved, "action.resolve"),
        (AlertStatus::FalsePositive, "action.false_positive"),
        (AlertStatus::New, "action.reopen"),
    ]
    .iter()
    .map(|(s, key)| Opt {
        value: s.as_str(),
        label: tr.t(key),
        selected: false,
    })
    .collect();
    let next_href = v.next_cursor.as_ref().map(|c| {
        let mut q = p.clone();
        q.cursor = Some(c.clone());
        q.query().url("/ui/alerts")
    });
    let first_href = p.cursor.as_ref().map(|_| {
        let mut q = p.clone();
        q.cursor = None;
        q.query().url("/ui/alerts")
    });
    let mut refresh = p.clone();
    refresh.cursor = None;
    let page = AlertsPage {
        export_csv,
        export_json,
        statuses,
        levels: level_opts(&tr, p.min_level),
        ranges: range_opts(&tr, p.time.range),
        bases: AlertTime::ALL
            .iter()
            .map(|b| Opt {
                value: b.as_str(),
                label: tr.t(time_basis_key(*b)),
                selected: p.by == *b,
            })
            .collect(),
        custom: p.time.range == Range::Custom,
        shown: if (rows.len() as u64) < v.total {
            tr.tf(
                "alerts.shown_of",
                &[
                    ("shown", &tr.num(rows.len() as u64)),
                    ("total", &tr.tn("alerts.of_total", v.total)),
                ],
            )
        } else {
            tr.tn("alerts.count", v.total.max(rows.len() as u64))
        },
        rows,
        sort_time: sort_link(
            p,
            SortKey::Time,
            tr.t(match p.by {
                AlertTime::Event => "col.last_seen",
                AlertTime::Detected => "col.detected",
            }),
        ),
        other_time: tr.t(match p.by {
            AlertTime::Event => "col.detected",
            AlertTime::Detected => "col.last_seen",
        }),
        sort_level: sort_link(p, SortKey::Level, tr.t("col.level")),
        sort_rule: sort_link(p, SortKey::Rule, tr.t("col.rule")),
        sort_count: sort_link(p, SortKey::Count, tr.t("col.count")),
        sort_note: p.sort != SortKey::Time || p.asc,
        bulk_targets,
        next_href,
        first_href,
        refresh_href: refresh.query().url("/ui/alerts"),
        error: v.error.as_deref().and_then(|k| tr.lookup(k)),
        p,
        l,
        tr,
    };
    render(&page)
}
