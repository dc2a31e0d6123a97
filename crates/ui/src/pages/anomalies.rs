//! Anomalies: what the behavioural models found (each with its explanation — observed vs
//! usual, the baseline it was judged against — and links to the contributing events), a
//! chart of findings per kind, and the models' state (training window, entities per model,
//! the last run); admins can ask for a training now.

use askama::Template;
use serde_json::Value;

use super::alerts::{Opt, range_opts};
use super::hosts::host_href;
use super::layout::Layout;
use super::{When, render, when};
use crate::format;
use crate::i18n::Tr;
use crate::is_admin;
use crate::svg::{self, HBar};
use crate::url::Query;
use crate::view::{AnomaliesView, PageCtx};

/// The finding kinds, in the order the page lists them.
pub const ANOMALY_KINDS: &[&str] = &[
    "rare_process",
    "rare_parent_child",
    "rare_logon_source",
    "unusual_logon_hour",
    "failed_logon_burst",
    "new_destination",
    "new_listening_port",
    "volume_spike",
    "unusual_host_activity",
];

/// The catalog key of a kind's name.
pub(crate) fn kind_key(kind: &str) -> &'static str {
    match kind {
        "rare_process" => "anomaly.kind.rare_process",
        "rare_parent_child" => "anomaly.kind.rare_parent_child",
        "rare_logon_source" => "anomaly.kind.rare_logon_source",
        "unusual_logon_hour" => "anomaly.kind.unusual_logon_hour",
        "failed_logon_burst" => "anomaly.kind.failed_logon_burst",
        "new_destination" => "anomaly.kind.new_destination",
        "new_listening_port" => "anomaly.kind.new_listening_port",
        "volume_spike" => "anomaly.kind.volume_spike",
        "unusual_host_activity" => "anomaly.kind.unusual_host_activity",
        _ => "anomaly.kind.other",
    }
}

fn state_key(state: &str) -> &'static str {
    match state {
        "disabled" => "anomaly.state.disabled",
        "training" => "anomaly.state.training",
        "scoring" => "anomaly.state.scoring",
        _ => "anomaly.state.starting",
    }
}

struct Row {
    when: When,
    kind: &'static str,
    entity_field: String,
    entity: String,
    /// The entity's host page, when the entity is a host.
    host_href: Option<String>,
    score: String,
    observed: String,
    expected: String,
    baseline: String,
    message: String,
    /// The event search of the contributing events.
    events_href: String,
    /// The triggering event, for per-event findings.
    source_href: Option<String>,
}

struct ModelRow {
    kind: &'static str,
    entity_field: String,
    entities: String,
}

#[derive(Template)]
#[template(path = "anomalies.html")]
struct AnomaliesPage {
    l: Layout,
    tr: Tr,
    admin: bool,
    kinds: Vec<Opt>,
    entity: String,
    ranges: Vec<Opt>,
    rows: Vec<Row>,
    older_href: Option<String>,
    chart: String,
    state: &'static str,
    disabled: bool,
    facts: Vec<(&'static str, String)>,
    last_error: Option<String>,
    models: Vec<ModelRow>,
}

fn text(doc: &Value, pointer: &str) -> String {
    match doc.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn detail<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.pointer("/anomaly/details")?.get(key)?.as_str()
}

fn weekday_key(day: &str) -> &'static str {
    match day {
        "Mon" => "anomaly.day.mon",
        "Tue" => "anomaly.day.tue",
        "Wed" => "anomaly.day.wed",
        "Thu" => "anomaly.day.thu",
        "Fri" => "anomaly.day.fri",
        "Sat" => "anomaly.day.sat",
        _ => "anomaly.day.sun",
    }
}

/// What was observed and what is usual, worded in the page's language from the finding's
/// `details` (the models' own sentences are English); `None` when the details lack a fact,
/// and the model's text is shown as it is.
fn explained(tr: &Tr, kind: &str, doc: &Value) -> Option<(String, String)> {
    let d = |key: &str| detail(doc, key);
    match kind {
        "rare_process" | "rare_parent_child" | "rare_logon_source" | "new_destination"
        | "new_listening_port" => {
            let value = d("value")?;
            let seen = d("value_count")?;
            let observed = if seen == "0" {
                tr.tf("anomaly.never_seen", &[("value", value)])
            } else {
                tr.tf("anomaly.seen_times", &[("value", value), ("count", seen)])
            };
            let usual = tr.tf(
                "anomaly.usual_values",
                &[
                    ("count", d("distinct_values")?),
                    ("top", d("usual")?),
                    ("others", d("other_entities_with_value")?),
                ],
            );
            Some((observed, usual))
        }
        "unusual_logon_hour" => {
            let hour: u32 = d("hour")?.parse().ok()?;
            let observed = format!("{} {hour:02}:00", tr.t(weekday_key(d("weekday")?)));
            let usual = tr.tf(
                "anomaly.usual_hours",
                &[
                    ("hours", d("usual_hours")?),
                    ("weekdays", d("weekday_percent")?),
                    ("count", d("count_in_hour")?),
                    ("observations", d("observations")?),
                ],
            );
            Some((observed, usual))
        }
        "failed_logon_burst" | "volume_spike" => {
            let expected: f64 = d("expected")?.parse().ok()?;
            let usual = tr.tf(
                "anomaly.usual_count",
                &[
                    ("expected", &format::decimal(tr.lang, expected, 1)),
                    ("days", d("baseline_buckets")?),
                    ("chance", d("tail_probability")?),
                ],
            );
            Some((d("count")?.to_owned(), usual))
        }
        _ => None,
    }
}

/// The events page over `[from, to)` with `q`.
fn events_href(q: &str, from: i64, to: i64) -> String {
    let mut query = Query::new();
    query
        .push("q", q)
        .push("range", "custom")
        .push("from", from.to_string())
        .push("to", to.to_string());
    query.url("/ui/events")
}

fn row(tr: &Tr, e: &dozor_model::StoredEvent) -> Row {
    let d = &e.doc;
    let kind = text(d, "/anomaly/kind");
    let entity_field = text(d, "/anomaly/entity_field");
    let entity = text(d, "/anomaly/entity");
    let score = d
        .pointer("/anomaly/score")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let observations = d
        .pointer("/anomaly/baseline/observations")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let days = d
        .pointer("/anomaly/baseline/distinct_days")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let since = text(d, "/anomaly/baseline/first_seen");
    let since = since.get(..10).unwrap_or(&since).to_owned();
    let baseline = tr.tf(
        "anomaly.baseline_text",
        &[
            (
                "observations",
                &format::number(tr.lang, i128::from(observations)),
            ),
            ("days", &days.to_string()),
            ("since", &since),
        ],
    );
    let source = text(d, "/anomaly/source_event");
    // Per-event findings: the hour around the event; hourly ones: their hour.
    let (from, to) = match d.pointer("/anomaly/window/from").and_then(Value::as_str) {
        Some(_) => (e.ts, e.ts + 3_600_000),
        None => (e.ts - 3_600_000, e.ts + 3_600_000),
    };
    let events_q = text(d, "/anomaly/events_query");
    let (observed, expected) = explained(tr, &kind, d)
        .unwrap_or_else(|| (text(d, "/anomaly/observed"), text(d, "/anomaly/expected")));
    Row {
        when: when(tr, e.ts),
        kind: kind_key(&kind),
        host_href: (entity_field == "host.name").then(|| host_href(&entity)),
        entity_field,
        entity,
        score: format::decimal(tr.lang, score, 3),
        observed,
        expected,
        baseline,
        message: text(d, "/message"),
        events_href: events_href(&events_q, from, to),
        source_href: (!source.is_empty())
            .then(|| events_href(&format!("event.id:{source}"), e.ts, e.ts + 1)),
    }
}

/// The anomalies page.
pub fn anomalies(ctx: &PageCtx, v: &AnomaliesView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "anomalies", tr.t("anomaly.title").to_owned());
    let mut kinds = vec![Opt {
        value: "",
        label: tr.t("anomaly.all_kinds"),
        selected: v.kind.is_empty(),
    }];
    kinds.extend(ANOMALY_KINDS.iter().map(|k| Opt {
        value: k,
        label: tr.t(kind_key(k)),
        selected: v.kind == *k,
    }));
    let older_href = v.next_cursor.as_ref().map(|c| {
        let mut q = Query::new();
        q.push_opt("kind", (!v.kind.is_empty()).then_some(&v.kind))
            .push_opt("entity", (!v.entity.is_empty()).then_some(&v.entity))
            .push("range", v.range.code())
            .push("cursor", c);
        q.url("/ui/anomalies")
    });
    let bars: Vec<HBar> = v
        .per_kind
        .iter()
        .map(|(kind, n)| HBar {
            label: tr.t(kind_key(kind)).to_owned(),
            value: *n as f64,
            text: format::number(tr.lang, i128::from(*n)),
            class: "res".into(),
        })
        .collect();
    let m = &v.models;
    let dt = |t: Option<i64>| t.map_or_else(|| "—".to_owned(), |t| tr.dt(t));
    let n = |x: u64| format::number(tr.lang, i128::from(x));
    let span = match (m.training_first, m.training_last) {
        (Some(a), Some(b)) => format!("{} – {}", tr.dt(a), tr.dt(b)),
        _ => "—".into(),
    };
    let facts = vec![
        ("anomaly.trained_at", dt(m.trained_at)),
        (
            "anomaly.training_window",
            tr.tf(
                "anomaly.training_window_text",
                &[
                    ("days", &m.lookback_days.to_string()),
                    ("events", &n(m.training_events)),
                    ("span", &span),
                ],
            ),
        ),
        ("anomaly.next_training", dt(m.next_training)),
        (
            "anomaly.since_training",
            tr.tf(
                "anomaly.since_training_text",
                &[
                    ("events", &n(m.scored_events)),
                    ("findings", &n(m.findings)),
                    ("alerts", &n(m.alerts)),
                ],
            ),
        ),
        (
            "anomaly.alert_score",
            m.alert_score.map_or_else(
                || tr.t("anomaly.no_alerts").to_owned(),
                |s| format::decimal(tr.lang, s, 2),
            ),
        ),
        ("anomaly.last_run", dt(m.last_run)),
    ];
    let models = m
        .models
        .iter()
        .map(|(kind, _model, field, entities)| ModelRow {
            kind: kind_key(kind),
            entity_field: field.clone(),
            entities: format::number(tr.lang, *entities as i128),
        })
        .collect();
    let rows = v.anomalies.iter().map(|e| row(&tr, e)).collect();
    render(&AnomaliesPage {
        admin: is_admin(ctx.role),
        kinds,
        entity: v.entity.clone(),
        ranges: range_opts(&tr, v.range)
            .into_iter()
            .filter(|o| o.value != "custom")
            .collect(),
        rows,
        older_href,
        chart: svg::hbars(tr.t("anomaly.by_kind"), &bars, None),
        state: state_key(&m.state),
        disabled: m.state == "disabled",
        facts,
        last_error: m.last_error.clone(),
        models,
        l,
        tr,
    })
}
