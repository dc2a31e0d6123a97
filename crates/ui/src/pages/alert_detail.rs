//! One alert: rule, ATT&CK tags, the threat intelligence its events matched, matched events, a timeline, comments, status history and
//! (for analysts and admins) the workflow, assignee and comment forms.

use askama::Template;
use dozor_model::AlertStatus;

use super::intel::{ThreatRow, threat_rows};
use super::layout::Layout;
use super::response::{RunRow, run_rows};
use super::{
    Badge, EventRow, When, action_key, event_row, event_summary, level_badge, render, status_badge,
    status_key, when,
};
use crate::attack::{TagView, tag_views};
use crate::i18n::Tr;
use crate::url::segment;
use crate::view::{AlertDetailView, PageCtx};

struct StatusButton {
    value: &'static str,
    label: &'static str,
    class: &'static str,
}

struct TimelineItem {
    when: When,
    kind: &'static str,
    title: String,
    body: String,
}

struct CommentRow {
    author: String,
    when: When,
    body: String,
}

struct HistoryRow {
    actor: String,
    from: Badge,
    to: Badge,
    note: String,
    when: When,
}

#[derive(Template)]
#[template(path = "alert_detail.html")]
struct AlertDetailPage {
    l: Layout,
    tr: Tr,
    id: i64,
    action_base: String,
    title: String,
    level: Badge,
    status: Badge,
    agent: String,
    agent_href: Option<String>,
    host: Option<(String, String)>,
    detected: When,
    /// Links to the events around this alert: (label, href).
    pivots: Vec<(&'static str, String)>,
    first_seen: When,
    last_seen: When,
    count: String,
    assignee: String,
    rule_id: String,
    rule_href: String,
    rule_description: String,
    rule_known: bool,
    tags: Vec<TagView>,
    buttons: Vec<StatusButton>,
    assignees: Vec<(String, bool)>,
    events: Vec<EventRow>,
    missing: String,
    timeline: Vec<TimelineItem>,
    comments: Vec<CommentRow>,
    history: Vec<HistoryRow>,
    username: String,
    /// Playbooks with a manual play, for the "Run playbook" form.
    manual_playbooks: Vec<String>,
    response_available: bool,
    runs: Vec<RunRow>,
    runs_href: String,
    /// The indicators its events matched (threat intelligence).
    threats: Vec<ThreatRow>,
    /// The process tree, flattened: (indent level, node, role).
    tree: Vec<TreeRow>,
    /// Field values of its first event an exception can be made of.
    exception_fields: Vec<(String, String)>,
    /// The incident it is grouped into.
    incident: Option<i64>,
}

/// One line of the process tree.
struct TreeRow {
    depth: usize,
    /// `ancestor`, `focus`, `sibling` or `child`.
    role: &'static str,
    name: String,
    pid: String,
    command_line: String,
    user: String,
    when: When,
    /// The process's own event search (by entity id or pid).
    href: String,
}

fn tree_rows(tr: &Tr, tree: &dozor_model::process_tree::ProcessTree) -> Vec<TreeRow> {
    // The page's style sheet indents up to 10 levels.
    let row = |depth: usize, role, n: &dozor_model::process_tree::ProcessNode| TreeRow {
        depth: depth.min(10),
        role,
        name: if n.name.is_empty() {
            "?".to_owned()
        } else {
            n.name.clone()
        },
        pid: n.pid.map(|p| p.to_string()).unwrap_or_default(),
        command_line: n.command_line.clone().unwrap_or_default(),
        user: n.user.clone().unwrap_or_default(),
        when: when(tr, n.ts),
        href: {
            let pid = n.pid.map(|p| p.to_string());
            let q =
                crate::url::process_query("process", n.entity_id.as_deref(), pid.as_deref(), None);
            super::hosts::events_href(&q.unwrap_or_default(), Some((n.ts, n.ts)))
        },
    };
    let mut out: Vec<TreeRow> = tree
        .ancestors
        .iter()
        .enumerate()
        .map(|(i, n)| row(i, "ancestor", n))
        .collect();
    let level = tree.ancestors.len();
    // The process among its siblings, in time order.
    let mut same_level: Vec<(i64, TreeRow, bool)> = tree
        .siblings
        .iter()
        .map(|n| (n.ts, row(level, "sibling", n), false))
        .collect();
    same_level.push((tree.focus.ts, row(level, "focus", &tree.focus), true));
    same_level.sort_by_key(|(ts, _, _)| *ts);
    for (_, r, focus) in same_level {
        out.push(r);
        if focus {
            out.extend(tree.children.iter().map(|n| row(level + 1, "child", n)));
        }
    }
    out
}

/// Where an analyst goes next from an alert: the host's events around it, the user's events,
/// the process's events.
fn pivots(
    tr: &Tr,
    a: &dozor_model::Alert,
    events: &[dozor_model::StoredEvent],
) -> Vec<(&'static str, String)> {
    use super::hosts::{events_href, host_events_href};
    use crate::url::add_term;
    let span = Some((a.first_seen, a.last_seen));
    let mut out = Vec::new();
    if let Some(host) = &a.host {
        out.push((tr.t("pivot.host_window"), host_events_href(host, span)));
    }
    let value_of = |path: &str| {
        events
            .iter()
            .find_map(|e| super::doc_str(&e.doc, path).filter(|v| !v.is_empty()))
    };
    if let Some(user) = value_of("user.name") {
        out.push((
            tr.t("pivot.user"),
            events_href(&add_term("", "user.name", &user), span),
        ));
    }
    // A process by its entity id where the source gives one (agent, Sysmon ProcessGuid), else
    // by pid on this host.
    let process = crate::url::process_query(
        "process",
        value_of("process.entity_id").as_deref(),
        value_of("process.pid").as_deref(),
        a.host.as_deref(),
    );
    if let Some(q) = process {
        out.push((tr.t("pivot.process"), events_href(&q, span)));
    }
    out
}

/// Matched events listed in the timeline (all of them are in the events table).
const TIMELINE_EVENTS: usize = 20;

/// One alert's page.
pub fn alert_detail(ctx: &PageCtx, v: &AlertDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let a = &v.alert;
    let title = a.rule_title.clone();
    let l = Layout::new(
        ctx,
        &tr,
        "alert",
        tr.tf(
            "alert.title",
            &[("id", &a.id.to_string()), ("rule", &title)],
        ),
    );
    let names = match (&a.agent_id, &v.agent_name) {
        (Some(id), Some(name)) => [(id.clone(), name.clone())].into_iter().collect(),
        _ => Default::default(),
    };
    let (agent, agent_href) = match &a.agent_id {
        Some(id) => (
            v.agent_name.clone().unwrap_or_else(|| id.clone()),
            Some(format!("/ui/agents/{}", segment(id))),
        ),
        None => (String::new(), None),
    };
    let buttons = AlertStatus::ALL
        .iter()
        .filter(|to| a.status.can_change_to(**to))
        .map(|to| StatusButton {
            value: to.as_str(),
            label: tr.t(action_key(a.status, *to)),
            class: match to {
                AlertStatus::Resolved => "primary",
                AlertStatus::FalsePositive => "secondary",
                _ => "",
            },
        })
        .collect();
    let current = a.assignee.clone().unwrap_or_default();
    let mut assignees: Vec<(String, bool)> = v
        .assignees
        .iter()
        .map(|u| (u.clone(), *u == current))
        .collect();
    if !current.is_empty() && !v.assignees.contains(&current) && !v.assignees.is_empty() {
        assignees.push((current.clone(), true));
    }

    let events: Vec<EventRow> = v.events.iter().map(|e| event_row(&tr, e, &names)).collect();
    let pivots = pivots(&tr, a, &v.events);

    let mut timeline = vec![
        TimelineItem {
            when: when(&tr, a.first_seen),
            kind: "detect",
            title: tr.t("timeline.first_seen").to_owned(),
            body: String::new(),
        },
        TimelineItem {
            when: when(&tr, a.created_at),
            kind: "system",
            title: tr.t("timeline.created").to_owned(),
            body: String::new(),
        },
    ];
    if a.last_seen != a.first_seen {
        timeline.push(TimelineItem {
            when: when(&tr, a.last_seen),
            kind: "detect",
            title: tr.tf("timeline.last_seen", &[("n", &tr.num(a.count))]),
            body: String::new(),
        });
    }
    let shown_events = &v.events[..v.events.len().min(TIMELINE_EVENTS)];
    for e in shown_events {
        timeline.push(TimelineItem {
            when: when(&tr, e.ts),
            kind: "event",
            title: tr.t("timeline.event").to_owned(),
            body: event_summary(&e.doc),
        });
    }
    for h in &v.history {
        timeline.push(TimelineItem {
            when: when(&tr, h.changed_at),
            kind: "status",
            title: tr.tf(
                "timeline.status",
                &[
                    ("actor", &h.actor),
                    ("from", tr.t(status_key(h.from))),
                    ("to", tr.t(status_key(h.to))),
                ],
            ),
            body: h.note.clone().unwrap_or_default(),
        });
    }
    for c in &v.comments {
        timeline.push(TimelineItem {
            when: when(&tr, c.created_at),
            kind: "comment",
            title: tr.tf("timeline.comment", &[("actor", &c.author)]),
            body: c.body.clone(),
        });
    }
    // by time; equal times keep the order above (detections, then events, changes, comments)
    let mut keyed: Vec<(i64, usize, TimelineItem)> = Vec::with_capacity(timeline.len());
    let times: Vec<i64> = std::iter::once(a.first_seen)
        .chain(std::iter::once(a.created_at))
        .chain((a.last_seen != a.first_seen).then_some(a.last_seen))
        .chain(shown_events.iter().map(|e| e.ts))
        .chain(v.history.iter().map(|h| h.changed_at))
        .chain(v.comments.iter().map(|c| c.created_at))
        .collect();
    for (i, (t, item)) in times.into_iter().zip(timeline).enumerate() {
        keyed.push((t, i, item));
    }
    keyed.sort_by_key(|(t, i, _)| (*t, *i));
    let mut timeline: Vec<TimelineItem> = keyed.into_iter().map(|(_, _, item)| item).collect();
    if v.events.len() > TIMELINE_EVENTS {
        // the rest of the matched events are in the table below; say so where they would be
        let last_shown = shown_events
            .iter()
            .map(|e| e.ts)
            .max()
            .unwrap_or(a.first_seen);
        let at = timeline
            .iter()
            .position(|t| t.when.iso > tr.iso(last_shown))
            .unwrap_or(timeline.len());
        timeline.insert(
            at,
            TimelineItem {
                when: when(&tr, last_shown),
                kind: "event",
                title: tr.tn(
                    "timeline.more_events",
                    (v.events.len() - TIMELINE_EVENTS) as u64,
                ),
                body: String::new(),
            },
        );
    }

    let comments = v
        .comments
        .iter()
        .map(|c| CommentRow {
            author: c.author.clone(),
            when: when(&tr, c.created_at),
            body: c.body.clone(),
        })
        .collect();
    let history = v
        .history
        .iter()
        .map(|h| HistoryRow {
            actor: h.actor.clone(),
            from: status_badge(&tr, h.from),
            to: status_badge(&tr, h.to),
            note: h.note.clone().unwrap_or_default(),
            when: when(&tr, h.changed_at),
        })
        .collect();
    let (rule_description, rule_known) = match &v.rule {
        Some(r) => (r.description.clone(), true),
        None => (String::new(), false),
    };
    let page = AlertDetailPage {
        id: a.id,
        action_base: format!("/ui/alerts/{}", a.id),
        title,
        level: level_badge(&tr, a.level),
        status: status_badge(&tr, a.status),
        agent,
        agent_href,
        host: a
            .host
            .as_ref()
            .map(|h| (h.clone(), super::hosts::host_href(h))),
        detected: when(&tr, a.created_at),
        pivots,
        exception_fields: super::exceptions::exception_candidates(&v.events),
        incident: v.incident,
        tree: v
            .process_tree
            .as_ref()
            .map(|t| tree_rows(&tr, t))
            .unwrap_or_default(),
        first_seen: when(&tr, a.first_seen),
        last_seen: when(&tr, a.last_seen),
        count: tr.num(a.count),
        assignee: current,
        rule_id: a.rule_id.clone(),
        rule_href: format!("/ui/rules/{}", segment(&a.rule_id)),
        rule_description,
        rule_known,
        tags: tag_views(&tr, &a.tags),
        buttons,
        assignees,
        events,
        missing: if v.missing_events > 0 {
            tr.tn("alert.missing_events", v.missing_events as u64)
        } else {
            String::new()
        },
        timeline,
        comments,
        history,
        username: ctx.username.clone(),
        manual_playbooks: v.response.manual_playbooks.clone(),
        response_available: v.response.available,
        runs: run_rows(&tr, &v.response.runs, &names),
        runs_href: format!("/ui/playbook-runs?alert={}", a.id),
        threats: threat_rows(&tr, &v.events),
        l,
        tr,
    };
    render(&page)
}
