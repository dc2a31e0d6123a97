//! Hosts: every machine Dozor has events of (agents' and uploaded logs'), and one host's page
//! with its facts, activity chart, alerts and latest events.

use std::collections::HashMap;

use askama::Template;

use super::layout::Layout;
use super::{AlertRow, EventRow, When, alert_row, event_row, render, when};
use crate::i18n::Tr;
use crate::svg::{self, Column};
use crate::url::{Query, add_term, segment};
use crate::view::{HostDetailView, HostsView, PageCtx};

/// Half the width of a pivot window around a moment: "this host ±15 min".
pub const PIVOT_MS: i64 = 15 * 60_000;

/// The event search of a host (`host.name:"…"`), over all time or [`PIVOT_MS`] around a
/// span of time (`(first, last)`, ms).
pub fn host_events_href(host: &str, around: Option<(i64, i64)>) -> String {
    events_href(&add_term("", "host.name", host), around)
}

/// An event search over all time or [`PIVOT_MS`] around a span of time.
pub fn events_href(query: &str, around: Option<(i64, i64)>) -> String {
    let mut q = Query::new();
    q.push("q", query);
    match around {
        Some((first, last)) => {
            q.push("range", "custom")
                .push("from", crate::format::iso(first.saturating_sub(PIVOT_MS)))
                .push("to", crate::format::iso(last.saturating_add(PIVOT_MS)));
        }
        None => {
            q.push("range", "all");
        }
    }
    q.url("/ui/events")
}

/// A host's page.
pub fn host_href(host: &str) -> String {
    format!("/ui/hosts/{}", segment(host))
}

/// A host's alerts, every status, all time.
pub fn host_alerts_href(host: &str) -> String {
    let mut q = Query::new();
    q.push("status_any", "1")
        .push("host", host)
        .push("range", "all");
    q.url("/ui/alerts")
}

struct HostRow {
    name: String,
    href: String,
    agent: Option<(String, String)>,
    events: String,
    open_alerts: i64,
    open_text: String,
    alerts_href: String,
    first_seen: When,
    last_seen: When,
    received: When,
}

#[derive(Template)]
#[template(path = "hosts.html")]
struct HostsPage {
    l: Layout,
    tr: Tr,
    search: String,
    rows: Vec<HostRow>,
    shown: String,
    truncated: bool,
}

fn agent_link(id: &Option<String>, names: &HashMap<String, String>) -> Option<(String, String)> {
    id.as_ref().map(|id| {
        (
            names.get(id).cloned().unwrap_or_else(|| id.clone()),
            format!("/ui/agents/{}", segment(id)),
        )
    })
}

/// The host list page.
pub fn hosts(ctx: &PageCtx, v: &HostsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "hosts", tr.t("hosts.title").to_owned());
    let rows = v
        .hosts
        .iter()
        .map(|h| HostRow {
            name: h.name.clone(),
            href: host_href(&h.name),
            agent: agent_link(&h.agent_id, &v.agent_names),
            events: tr.num(h.events),
            open_alerts: h.open_alerts,
            open_text: tr.num(h.open_alerts),
            alerts_href: host_alerts_href(&h.name),
            first_seen: when(&tr, h.first_seen),
            last_seen: when(&tr, h.last_seen),
            received: when(&tr, h.last_received),
        })
        .collect();
    render(&HostsPage {
        shown: tr.tn("hosts.count", v.hosts.len() as u64),
        search: v.search.clone(),
        truncated: v.truncated,
        rows,
        l,
        tr,
    })
}

#[derive(Template)]
#[template(path = "host_detail.html")]
struct HostDetailPage {
    l: Layout,
    tr: Tr,
    name: String,
    facts: Vec<(&'static str, String)>,
    agent: Option<(String, String)>,
    chart: String,
    alerts: Vec<AlertRow>,
    events: Vec<EventRow>,
    alerts_href: String,
    events_href: String,
    vulns: Vec<super::vulns::VulnBrief>,
    vulns_href: Option<String>,
}

/// One host's page.
pub fn host_detail(ctx: &PageCtx, v: &HostDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let h = &v.host;
    let l = Layout::new(ctx, &tr, "host", h.name.clone());
    let mut names = HashMap::new();
    if let Some(a) = &v.agent {
        names.insert(a.id.clone(), a.facts.hostname.clone());
    }
    let facts = vec![
        (tr.t("host.events"), tr.num(h.events)),
        (tr.t("host.open_alerts"), tr.num(h.open_alerts)),
        (tr.t("host.all_alerts"), tr.num(h.alerts)),
        (tr.t("host.first_event"), tr.dt(h.first_seen)),
        (tr.t("host.last_event"), tr.dt(h.last_seen)),
        (tr.t("host.last_received"), tr.dt(h.last_received)),
    ];
    let columns: Vec<Column> = v
        .timeline
        .iter()
        .map(|b| Column {
            label: crate::format::short_day(ctx.lang, b.start),
            title: tr.dt(b.start),
            values: vec![b.count],
        })
        .collect();
    let chart = svg::line(
        &tr,
        tr.t("host.timeline"),
        "ingest",
        &columns,
        tr.t("overview.no_events"),
    );
    render(&HostDetailPage {
        name: h.name.clone(),
        facts,
        agent: agent_link(&h.agent_id, &names),
        chart,
        alerts: v.alerts.iter().map(|a| alert_row(&tr, a, &names)).collect(),
        events: v.events.iter().map(|e| event_row(&tr, e, &names)).collect(),
        alerts_href: host_alerts_href(&h.name),
        events_href: host_events_href(&h.name, None),
        vulns: super::vulns::vuln_briefs(&tr, &v.vulns),
        vulns_href: v
            .vulns
            .first()
            .map(|x| super::vulns::vulns_host_href(&x.host)),
        l,
        tr,
    })
}
