//! The overview: alerts over time, open alerts by severity, top rules, agents, ingest rate.

use askama::Template;
use dozor_model::{AlertStatus, Level};

use super::layout::Layout;
use super::{Badge, level_badge, level_key, render};
use crate::i18n::Tr;
use crate::svg::{self, Column, HBar, Segment, Series};
use crate::url::segment;
use crate::view::{OverviewView, PageCtx};

struct Card {
    label: &'static str,
    value: String,
    note: String,
    href: &'static str,
    class: &'static str,
}

struct TopRuleRow {
    href: String,
    title: String,
    level: Badge,
    alerts: String,
    detections: String,
}

struct LegendItem {
    class: String,
    text: &'static str,
    href: String,
}

struct AgentStat {
    class: &'static str,
    label: &'static str,
    value: String,
    href: &'static str,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    l: Layout,
    tr: Tr,
    cards: Vec<Card>,
    alerts_chart: String,
    legend: Vec<LegendItem>,
    severity_chart: String,
    top_rules: Vec<TopRuleRow>,
    agent_stats: Vec<AgentStat>,
    agents_bar: String,
    agents_total: u64,
    ingest_chart: String,
    ingest_caption: String,
}

/// A duration as a short text: `10 min`, `1 h`, `1 d`.
pub(crate) fn duration(tr: &Tr, ms: i64) -> String {
    let s = ms / 1000;
    let (n, key) = if s % 86_400 == 0 && s >= 86_400 {
        (s / 86_400, "dur.d")
    } else if s % 3600 == 0 && s >= 3600 {
        (s / 3600, "dur.h")
    } else if s % 60 == 0 && s >= 60 {
        (s / 60, "dur.min")
    } else {
        (s, "dur.s")
    };
    tr.tf(key, &[("n", &tr.num(n))])
}

/// The overview page.
pub fn overview(ctx: &PageCtx, v: &OverviewView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "overview", tr.t("overview.title").to_owned());

    let open: u64 = v.open_by_level.values().sum();
    let high: u64 = v
        .open_by_level
        .iter()
        .filter(|(l, _)| **l >= Level::High)
        .map(|(_, n)| *n)
        .sum();
    let new = v
        .alerts_by_status
        .get(&AlertStatus::New)
        .copied()
        .unwrap_or(0);
    let a = v.agents;
    let agents_total = a.online + a.degraded + a.offline + a.revoked;
    let cards = vec![
        Card {
            label: tr.t("overview.card.open"),
            value: tr.num(open),
            note: tr.tf("overview.card.new_note", &[("n", &tr.num(new))]),
            href: "/ui/alerts",
            class: if open > 0 { "attention" } else { "" },
        },
        Card {
            label: tr.t("overview.card.high"),
            value: tr.num(high),
            note: tr.t("overview.card.high_note").to_owned(),
            href: "/ui/alerts?min_level=high",
            class: if high > 0 { "danger" } else { "" },
        },
        Card {
            label: tr.t("overview.card.events_24h"),
            value: tr.num(v.events_last_24h),
            note: tr.tf(
                "overview.card.events_total",
                &[("n", &tr.num(v.events_total))],
            ),
            href: "/ui/events",
            class: "",
        },
        Card {
            label: tr.t("overview.card.agents"),
            value: tr.num(a.online),
            note: tr.tf("overview.card.agents_note", &[("n", &tr.num(agents_total))]),
            href: "/ui/agents",
            class: if a.offline > 0 { "attention" } else { "" },
        },
        Card {
            label: tr.t("overview.card.rules"),
            value: tr.num(v.rules.active_enabled),
            note: tr.tf(
                "overview.card.rules_note",
                &[
                    ("disabled", &tr.num(v.rules.disabled)),
                    ("inactive", &tr.num(v.rules.not_active)),
                ],
            ),
            href: "/ui/rules",
            class: "",
        },
    ];

    let names: Vec<&'static str> = Level::ALL.iter().map(|l| tr.t(level_key(*l))).collect();
    let classes: Vec<String> = Level::ALL
        .iter()
        .map(|l| format!("lv-{}", l.as_str()))
        .collect();
    let series: Vec<Series<'_>> = classes
        .iter()
        .zip(&names)
        .map(|(c, n)| Series { class: c, name: n })
        .collect();
    let columns: Vec<Column> = v
        .alerts_per_hour
        .iter()
        .map(|b| Column {
            label: tr.hm(b.start),
            title: format!("{} – {}", tr.dt(b.start), tr.hm(b.start + 3_600_000)),
            values: b.counts.to_vec(),
        })
        .collect();
    let alerts_chart = svg::stacked_bars(
        &tr,
        tr.t("overview.alerts_over_time"),
        &series,
        &columns,
        tr.t("overview.no_alerts_24h"),
    );
    let legend = Level::ALL
        .iter()
        .rev()
        .map(|l| LegendItem {
            class: format!("lv-{}", l.as_str()),
            text: tr.t(level_key(*l)),
            href: format!("/ui/alerts?min_level={}", l.as_str()),
        })
        .collect();

    let rows: Vec<HBar> = Level::ALL
        .iter()
        .rev()
        .map(|l| {
            let n = v.open_by_level.get(l).copied().unwrap_or(0);
            HBar {
                label: tr.t(level_key(*l)).to_owned(),
                value: n as f64,
                text: tr.num(n),
                class: format!("lv-{}", l.as_str()),
            }
        })
        .collect();
    let severity_chart = svg::hbars(tr.t("overview.by_severity"), &rows, None);

    let top_rules = v
        .top_rules
        .iter()
        .map(|r| TopRuleRow {
            href: format!("/ui/alerts?status_any=1&rule={}", segment(&r.rule_id)),
            title: r.title.clone(),
            level: level_badge(&tr, r.level),
            alerts: tr.num(r.alerts),
            detections: tr.num(r.detections),
        })
        .collect();

    let agent_stats = vec![
        AgentStat {
            class: "ag-online",
            label: tr.t("agent.status.online"),
            value: tr.num(a.online),
            href: "/ui/agents?status=online",
        },
        AgentStat {
            class: "ag-degraded",
            label: tr.t("agent.status.degraded"),
            value: tr.num(a.degraded),
            href: "/ui/agents?status=degraded",
        },
        AgentStat {
            class: "ag-offline",
            label: tr.t("agent.status.offline"),
            value: tr.num(a.offline),
            href: "/ui/agents?status=offline",
        },
        AgentStat {
            class: "ag-revoked",
            label: tr.t("agent.status.revoked"),
            value: tr.num(a.revoked),
            href: "/ui/agents?status=revoked",
        },
    ];
    let agents_bar = svg::split_bar(
        &tr,
        tr.t("overview.agents"),
        &[
            ("ag-online", "agent.status.online", a.online),
            ("ag-degraded", "agent.status.degraded", a.degraded),
            ("ag-offline", "agent.status.offline", a.offline),
            ("ag-revoked", "agent.status.revoked", a.revoked),
        ]
        .map(|(class, key, value)| Segment {
            class: class.to_owned(),
            name: tr.t(key).to_owned(),
            value,
        }),
    );

    let bucket = v.ingest_bucket_ms.max(1);
    let long = v.ingest.len() as i64 * bucket > 2 * 86_400_000;
    let ingest_columns: Vec<Column> = v
        .ingest
        .iter()
        .map(|b| Column {
            label: if long {
                crate::format::short_day(ctx.lang, b.start)
            } else {
                tr.hm(b.start)
            },
            title: tr.dt(b.start),
            values: vec![b.count],
        })
        .collect();
    let ingest_chart = svg::line(
        &tr,
        tr.t("overview.ingest"),
        "ingest",
        &ingest_columns,
        tr.t("overview.no_events"),
    );
    let ingest_caption = tr.tf(
        "overview.ingest_per",
        &[("interval", &duration(&tr, bucket))],
    );

    render(&OverviewPage {
        l,
        tr,
        cards,
        alerts_chart,
        legend,
        severity_chart,
        top_rules,
        agent_stats,
        agents_bar,
        agents_total,
        ingest_chart,
        ingest_caption,
    })
}
