//! Incidents: the list (with per-host suggestions) and one incident's page — its fields,
//! alerts, tasks, notes, observables, playbook runs and the merged timeline.

use askama::Template;
use dozor_model::{Incident, IncidentSeverity, IncidentStatus, ObservableKind, TimelineEntry};

use super::layout::Layout;
use super::{AlertRow, Badge, When, alert_row, level_badge, render, when};
use crate::i18n::Tr;
use crate::view::{IncidentPageView, IncidentsView, PageCtx};

pub(crate) fn severity_key(s: IncidentSeverity) -> &'static str {
    match s {
        IncidentSeverity::Low => "level.low",
        IncidentSeverity::Medium => "level.medium",
        IncidentSeverity::High => "level.high",
        IncidentSeverity::Critical => "level.critical",
    }
}

pub(crate) fn incident_status_key(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Open => "incident.status.open",
        IncidentStatus::InProgress => "incident.status.in_progress",
        IncidentStatus::Contained => "incident.status.contained",
        IncidentStatus::Closed => "incident.status.closed",
    }
}

fn observable_key(k: ObservableKind) -> &'static str {
    match k {
        ObservableKind::Ip => "observable.ip",
        ObservableKind::Domain => "observable.domain",
        ObservableKind::Url => "observable.url",
        ObservableKind::Hash => "observable.hash",
        ObservableKind::File => "observable.file",
        ObservableKind::User => "observable.user",
        ObservableKind::Host => "observable.host",
        ObservableKind::Process => "observable.process",
        ObservableKind::Other => "observable.other",
    }
}

fn severity_badge(tr: &Tr, s: IncidentSeverity) -> Badge {
    Badge {
        class: format!("lv lv-{}", s.as_str()),
        text: tr.t(severity_key(s)),
    }
}

fn status_badge(tr: &Tr, s: IncidentStatus) -> Badge {
    Badge {
        class: format!("st st-inc-{}", s.as_str()),
        text: tr.t(incident_status_key(s)),
    }
}

/// A `<select>` option.
struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

fn severities(tr: &Tr, current: Option<IncidentSeverity>) -> Vec<Choice> {
    IncidentSeverity::ALL
        .into_iter()
        .map(|s| Choice {
            value: s.as_str(),
            label: tr.t(severity_key(s)),
            selected: Some(s) == current,
        })
        .collect()
}

struct IncidentRow {
    id: i64,
    href: String,
    title: String,
    severity: Badge,
    status: Badge,
    owner: String,
    alerts: String,
    tasks: String,
    updated: When,
    created: When,
}

fn incident_row(tr: &Tr, i: &Incident) -> IncidentRow {
    IncidentRow {
        id: i.id,
        href: format!("/ui/incidents/{}", i.id),
        title: i.title.clone(),
        severity: severity_badge(tr, i.severity),
        status: status_badge(tr, i.status),
        owner: i.owner.clone().unwrap_or_default(),
        alerts: tr.num(i.alert_count),
        tasks: format!("{}/{}", tr.num(i.tasks_done), tr.num(i.tasks_total)),
        updated: when(tr, i.updated_at),
        created: when(tr, i.created_at),
    }
}

struct SuggestionRow {
    host: String,
    host_href: String,
    alert_ids: Vec<i64>,
    count: String,
    level: Badge,
    first: When,
    last: When,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    l: Layout,
    tr: Tr,
    tabs: Vec<(&'static str, String, bool)>,
    rows: Vec<IncidentRow>,
    suggestions: Vec<SuggestionRow>,
    severities: Vec<Choice>,
}

/// The incident list.
pub fn incidents(ctx: &PageCtx, v: &IncidentsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "incidents", tr.t("incidents.title").to_owned());
    let tabs = [
        ("active", "incidents.active"),
        ("closed", "incidents.closed"),
        ("all", "incidents.all"),
    ]
    .into_iter()
    .map(|(code, key)| {
        (
            tr.t(key),
            format!("/ui/incidents?show={code}"),
            v.show == code,
        )
    })
    .collect();
    let suggestions = v
        .suggestions
        .iter()
        .map(|s| SuggestionRow {
            host: s.host.clone(),
            host_href: super::hosts::host_href(&s.host),
            alert_ids: s.alert_ids.clone(),
            count: tr.num(s.alert_count),
            level: level_badge(&tr, s.level),
            first: when(&tr, s.first_seen),
            last: when(&tr, s.last_seen),
        })
        .collect();
    render(&IncidentsPage {
        tabs,
        rows: v.incidents.iter().map(|i| incident_row(&tr, i)).collect(),
        suggestions,
        severities: severities(&tr, Some(IncidentSeverity::Medium)),
        l,
        tr,
    })
}

struct TaskRow {
    id: i64,
    title: String,
    done: bool,
    by: String,
    when: Option<When>,
}

struct NoteRow {
    author: String,
    when: When,
    body: String,
}

struct ObservableRow {
    id: i64,
    kind: &'static str,
    value: String,
    note: String,
    by: String,
    search_href: String,
}

struct RunRow {
    href: String,
    playbook: String,
    status: String,
    started: When,
}

struct TimelineRow {
    class: &'static str,
    when: When,
    who: String,
    text: String,
    alert_href: Option<String>,
}

fn timeline_row(tr: &Tr, e: &TimelineEntry) -> TimelineRow {
    let class = match e.kind.as_str() {
        "alert" | "alert_last" => "tl-detect",
        "note" => "tl-comment",
        "playbook" => "tl-event",
        _ => "tl-status",
    };
    TimelineRow {
        class,
        when: when(tr, e.at),
        who: e.who.clone().unwrap_or_default(),
        text: e.text.clone(),
        alert_href: e.alert_id.map(|a| format!("/ui/alerts/{a}")),
    }
}

#[derive(Template)]
#[template(path = "incident_detail.html")]
struct IncidentDetailPage {
    l: Layout,
    tr: Tr,
    id: i64,
    base: String,
    title: String,
    description: String,
    severity: Badge,
    status: Badge,
    owner: String,
    created_by: String,
    created: When,
    closed: Option<When>,
    statuses: Vec<Choice>,
    severities: Vec<Choice>,
    owners: Vec<(String, bool)>,
    alerts: Vec<AlertRow>,
    tasks: Vec<TaskRow>,
    tasks_done: String,
    notes: Vec<NoteRow>,
    observables: Vec<ObservableRow>,
    kinds: Vec<Choice>,
    runs: Vec<RunRow>,
    timeline: Vec<TimelineRow>,
}

/// One incident's page.
pub fn incident_detail(ctx: &PageCtx, v: &IncidentPageView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let d = &v.detail;
    let i = &d.incident;
    let l = Layout::new(ctx, &tr, "incident", format!("#{} {}", i.id, i.title));
    let names = std::collections::HashMap::new();
    let owner = i.owner.clone().unwrap_or_default();
    let mut owners: Vec<(String, bool)> =
        v.owners.iter().map(|u| (u.clone(), *u == owner)).collect();
    if !owner.is_empty() && !v.owners.contains(&owner) && !v.owners.is_empty() {
        owners.push((owner.clone(), true));
    }
    let statuses = IncidentStatus::ALL
        .into_iter()
        .map(|s| Choice {
            value: s.as_str(),
            label: tr.t(incident_status_key(s)),
            selected: s == i.status,
        })
        .collect();
    let kinds = ObservableKind::ALL
        .into_iter()
        .map(|k| Choice {
            value: k.as_str(),
            label: tr.t(observable_key(k)),
            selected: false,
        })
        .collect();
    let tasks = d
        .tasks
        .iter()
        .map(|t| TaskRow {
            id: t.id,
            title: t.title.clone(),
            done: t.done,
            by: t.done_by.clone().unwrap_or_default(),
            when: t.done_at.map(|at| when(&tr, at)),
        })
        .collect();
    let notes = d
        .notes
        .iter()
        .map(|n| NoteRow {
            author: n.author.clone(),
            when: when(&tr, n.created_at),
            body: n.body.clone(),
        })
        .collect();
    let observables = d
        .observables
        .iter()
        .map(|o| ObservableRow {
            id: o.id,
            kind: tr.t(observable_key(o.kind)),
            search_href: super::hosts::events_href(&crate::url::query_value(&o.value), None),
            value: o.value.clone(),
            note: o.note.clone(),
            by: o.added_by.clone(),
        })
        .collect();
    let runs = d
        .playbook_runs
        .iter()
        .map(|r| RunRow {
            href: format!("/ui/playbook-runs/{}", crate::url::segment(&r.id)),
            playbook: r.playbook.clone(),
            status: r.status.as_str().to_owned(),
            started: when(&tr, r.started_at),
        })
        .collect();
    render(&IncidentDetailPage {
        id: i.id,
        base: format!("/ui/incidents/{}", i.id),
        title: i.title.clone(),
        description: i.description.clone(),
        severity: severity_badge(&tr, i.severity),
        status: status_badge(&tr, i.status),
        owner,
        created_by: i.created_by.clone(),
        created: when(&tr, i.created_at),
        closed: i.closed_at.map(|t| when(&tr, t)),
        statuses,
        severities: severities(&tr, Some(i.severity)),
        owners,
        alerts: d.alerts.iter().map(|a| alert_row(&tr, a, &names)).collect(),
        tasks,
        tasks_done: format!("{}/{}", tr.num(i.tasks_done), tr.num(i.tasks_total)),
        notes,
        observables,
        kinds,
        runs,
        timeline: d.timeline().iter().map(|e| timeline_row(&tr, e)).collect(),
        l,
        tr,
    })
}
