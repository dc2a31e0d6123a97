//! Event search: the query language, a time range, a histogram, results and a field sidebar.

use std::collections::HashMap;

use askama::Template;
use dozor_model::StoredEvent;
use serde_json::Value;

use super::alerts::{Opt, range_opts};
use super::layout::Layout;
use super::overview::duration;
use super::{EventRow, doc_str, event_row, render};
use crate::i18n::Tr;
use crate::svg::{self, Column, Series};
use crate::url::{add_term, exclude_term, remove_term, term_state};
use crate::view::{EventsParams, EventsView, PageCtx, Range};

/// Fields the sidebar summarizes (the first that occur).
const SIDEBAR_FIELDS: [&str; 16] = [
    "event.category",
    "event.action",
    "event.code",
    "event.outcome",
    "host.name",
    "user.name",
    "process.name",
    "process.parent.name",
    "source.ip",
    "destination.ip",
    "destination.port",
    "dns.question.name",
    "file.extension",
    "winlog.channel",
    "winlog.provider_name",
    "network.transport",
];
/// Values shown per field.
const TOP_VALUES: usize = 5;

pub(crate) struct FieldValue {
    pub value: String,
    pub count: String,
    /// Adds `field:value` (or, when the query already has it, removes it).
    pub href: String,
    /// Adds `NOT field:value` (or removes the exclusion).
    pub exclude_href: String,
    /// Whether the query requires (`Some(true)`) or excludes (`Some(false)`) this value.
    pub state: Option<bool>,
}

pub(crate) struct FieldTop {
    pub field: &'static str,
    pub values: Vec<FieldValue>,
}

fn scalar_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 200 => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(items) => {
            for i in items.iter().take(16) {
                scalar_texts(i, out);
            }
        }
        _ => {}
    }
}

/// Top values of the common fields among `events` (only these: it is the shown page).
pub(crate) fn field_tops(tr: &Tr, p: &EventsParams, events: &[StoredEvent]) -> Vec<FieldTop> {
    let mut out = Vec::new();
    for field in SIDEBAR_FIELDS {
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut texts = Vec::new();
        for e in events {
            let mut v = &e.doc;
            let mut found = true;
            for part in field.split('.') {
                match v.get(part) {
                    Some(next) => v = next,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            if !found {
                continue;
            }
            texts.clear();
            scalar_texts(v, &mut texts);
            texts.sort();
            texts.dedup();
            for t in texts.drain(..) {
                *counts.entry(t).or_default() += 1;
            }
        }
        if counts.is_empty() {
            continue;
        }
        let mut top: Vec<(String, u64)> = counts.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP_VALUES);
        let values = top
            .into_iter()
            .map(|(value, n)| {
                let state = term_state(&p.q, field, &value);
                let with = |text: String| {
                    let mut q = p.clone();
                    q.q = text;
                    q.cursor = None;
                    q.filter_query().url("/ui/events")
                };
                let removed = remove_term(&p.q, field, &value);
                FieldValue {
                    href: match state {
                        Some(true) => with(removed.clone()),
                        _ => with(add_term(&removed, field, &value)),
                    },
                    exclude_href: match state {
                        Some(false) => with(removed),
                        _ => with(exclude_term(&removed, field, &value)),
                    },
                    state,
                    count: tr.num(n),
                    value,
                }
            })
            .collect();
        out.push(FieldTop { field, values });
    }
    out
}

/// A results row with the cells of the chosen columns.
pub(crate) struct ColumnsRow {
    pub e: EventRow,
    pub extra: Vec<String>,
}

/// The export link of the shown search: the page's time range as milliseconds (what was
/// shown is what is exported), its query, agent and columns.
fn export_href(p: &EventsParams, now: i64, format: &str) -> String {
    let mut q = crate::url::Query::new();
    q.push("format", format);
    q.push("q", &p.q);
    if let Ok((from, to)) = p.time.bounds(now) {
        q.push_opt("from", from.map(|t| t.to_string()));
        q.push_opt("to", to.map(|t| t.to_string()));
    }
    q.push("agent", &p.agent);
    q.push("columns", p.cols.join(","));
    q.url("/api/v1/events/export")
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage<'a> {
    /// The chosen extra columns (field names), in order.
    cols: &'a [String],
    /// Every column the picker offers, and whether it is chosen.
    column_choices: Vec<(&'static str, bool)>,
    rows: Vec<ColumnsRow>,
    /// The shown search's columns as the save form posts them.
    cols_text: String,
    export_csv: String,
    export_json: String,
    l: Layout,
    tr: Tr,
    p: &'a EventsParams,
    ranges: Vec<Opt>,
    custom: bool,
    error: Option<&'static str>,
    query_error: Option<(String, String, String)>,
    histogram: String,
    total: String,
    interval: String,
    fields: Vec<FieldTop>,
    shown: String,
    next_href: Option<String>,
    first_href: Option<String>,
}

/// The event search page.
pub fn events(ctx: &PageCtx, v: &EventsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "events", tr.t("events.title").to_owned());
    let p = &v.params;
    let bucket = v.bucket_ms.max(1);
    let span = v.histogram.len() as i64 * bucket;
    let columns: Vec<Column> = v
        .histogram
        .iter()
        .map(|b| Column {
            label: if span > 2 * 86_400_000 {
                crate::format::short_day(ctx.lang, b.start)
            } else {
                tr.hm(b.start)
            },
            title: tr.dt(b.start),
            values: vec![b.count],
        })
        .collect();
    let total: u64 = v.histogram.iter().map(|b| b.count).sum();
    let histogram = svg::stacked_bars(
        &tr,
        tr.t("events.histogram"),
        &[Series {
            class: "bar",
            name: tr.t("events.count_label"),
        }],
        &columns,
        tr.t("events.none_in_range"),
    );
    let query_error = v.query_error.as_ref().map(|e| {
        let heading = match e.column {
            Some(c) => tr.tf("events.query_error_at", &[("column", &tr.num(c as u64))]),
            None => tr.t("events.query_error").to_owned(),
        };
        let caret = match e.column {
            Some(c) if c >= 1 => format!("{}^", " ".repeat(c - 1)),
            _ => String::new(),
        };
        (heading, e.message.clone(), caret)
    });
    let rows: Vec<EventRow> = v
        .events
        .iter()
        .map(|e| event_row(&tr, e, &v.agent_names))
        .collect();
    let next_href = v.next_cursor.as_ref().map(|c| {
        let mut q = p.filter_query();
        q.push("cursor", c);
        q.url("/ui/events")
    });
    let first_href = p
        .cursor
        .as_ref()
        .map(|_| p.filter_query().url("/ui/events"));
    let rows: Vec<ColumnsRow> = rows
        .into_iter()
        .zip(&v.events)
        .map(|(e, stored)| ColumnsRow {
            extra: p
                .cols
                .iter()
                .map(|c| doc_str(&stored.doc, c).unwrap_or_default())
                .collect(),
            e,
        })
        .collect();
    render(&EventsPage {
        cols: &p.cols,
        column_choices: dozor_model::EVENT_COLUMNS
            .iter()
            .map(|c| (*c, p.cols.iter().any(|x| x == c)))
            .collect(),
        cols_text: p.cols.join(","),
        export_csv: export_href(p, ctx.now, "csv"),
        export_json: export_href(p, ctx.now, "ndjson"),
        ranges: range_opts(&tr, p.time.range),
        custom: p.time.range == Range::Custom,
        error: v.error.as_deref().and_then(|k| tr.lookup(k)),
        query_error,
        histogram,
        total: tr.tn("events.count", total),
        interval: tr.tf(
            "events.per_interval",
            &[("interval", &duration(&tr, bucket))],
        ),
        fields: field_tops(&tr, p, &v.events),
        shown: tr.tn("events.shown", rows.len() as u64),
        rows,
        next_href,
        first_href,
        p,
        l,
        tr,
    })
}
