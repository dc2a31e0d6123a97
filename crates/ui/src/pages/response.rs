//! Response: playbooks (list, one with its YAML and a "Run" form), their runs (list, one run
//! with each step), the approvals inbox, and the pieces the alert and agent pages share
//! (run rows, approval items with their decision forms, the isolation badge).

use std::collections::HashMap;

use askama::Template;
use dozor_model::response::IsolationReport;
use dozor_model::{
    Agent, Approval, ApprovalStatus, PlayView, PlaybookRun, PlaybookRunStatus, PlaybookStep,
    PlaybookView,
};
use serde_json::Value;

use super::layout::Layout;
use super::{When, clip, render, when};
use crate::i18n::Tr;
use crate::url::{Query, segment};
use crate::view::{
    ApprovalsView, PageCtx, PlaybookDetailView, PlaybooksView, RunDetailView, RunsView,
};

// ---------------------------------------------------------------- shared pieces

/// The catalog key of a command kind or response module (`agent.isolate_host` or
/// `isolate_host`), if it has one.
pub(crate) fn action_kind_key(action: &str) -> Option<&'static str> {
    let kind = action.strip_prefix("agent.").unwrap_or(action);
    Some(match kind {
        "scan_path" => "command.kind.scan_path",
        "isolate_host" => "command.kind.isolate_host",
        "release_host" => "command.kind.release_host",
        "kill_process" => "command.kind.kill_process",
        "quarantine_file" => "command.kind.quarantine_file",
        "restore_file" => "command.kind.restore_file",
        "delete_file" => "command.kind.delete_file",
        "block_ip" => "command.kind.block_ip",
        "unblock_ip" => "command.kind.unblock_ip",
        "collect_file" => "command.kind.collect_file",
        "approve" => "command.kind.approve",
        _ => return None,
    })
}

/// An action as the pages name it: translated when known, else as it is.
pub(crate) fn action_text(tr: &Tr, action: &str) -> String {
    action_kind_key(action).map_or_else(|| action.to_owned(), |k| tr.t(k).to_owned())
}

fn run_status_key(s: PlaybookRunStatus) -> &'static str {
    match s {
        PlaybookRunStatus::Running => "run.status.running",
        PlaybookRunStatus::Succeeded => "run.status.succeeded",
        PlaybookRunStatus::Failed => "run.status.failed",
    }
}

fn approval_status_key(s: ApprovalStatus) -> &'static str {
    match s {
        ApprovalStatus::Pending => "approval.status.pending",
        ApprovalStatus::Approved => "approval.status.approved",
        ApprovalStatus::Rejected => "approval.status.rejected",
        ApprovalStatus::Expired => "approval.status.expired",
    }
}

fn step_status_key(s: &str) -> Option<&'static str> {
    Some(match s {
        "ok" => "step.status.ok",
        "failed" => "step.status.failed",
        "ignored" => "step.status.ignored",
        "skipped" => "step.status.skipped",
        "dry_run" => "step.status.dry_run",
        _ => return None,
    })
}

fn trigger_text(tr: &Tr, trigger: &str) -> String {
    match trigger {
        "alert" => tr.t("run.trigger.alert").to_owned(),
        "manual" => tr.t("run.trigger.manual").to_owned(),
        "schedule" => tr.t("run.trigger.schedule").to_owned(),
        other => other.to_owned(),
    }
}

fn agent_link(names: &HashMap<String, String>, id: &str) -> (String, String) {
    (
        format!("/ui/agents/{}", segment(id)),
        names.get(id).cloned().unwrap_or_else(|| clip(id, 13)),
    )
}

/// A run as the tables show it.
pub(crate) struct RunRow {
    pub href: String,
    pub playbook: String,
    pub playbook_href: String,
    pub status: &'static str,
    pub status_text: &'static str,
    pub trigger: String,
    pub dry_run: bool,
    /// (href, text)
    pub alert: Option<(String, String)>,
    /// (href, text)
    pub agent: Option<(String, String)>,
    pub requested_by: String,
    pub started: When,
    pub finished: Option<When>,
    pub error: String,
}

pub(crate) fn run_row(tr: &Tr, r: &PlaybookRun, names: &HashMap<String, String>) -> RunRow {
    RunRow {
        href: format!("/ui/playbook-runs/{}", segment(&r.id)),
        playbook: r.playbook.clone(),
        playbook_href: format!("/ui/playbooks/{}", segment(&r.playbook)),
        status: r.status.as_str(),
        status_text: tr.t(run_status_key(r.status)),
        trigger: trigger_text(tr, &r.trigger),
        dry_run: r.dry_run,
        alert: r
            .alert_id
            .map(|id| (format!("/ui/alerts/{id}"), format!("#{id}"))),
        agent: r.agent_id.as_deref().map(|id| agent_link(names, id)),
        requested_by: r.requested_by.clone(),
        started: when(tr, r.started_at),
        finished: r.finished_at.map(|t| when(tr, t)),
        error: r.error.as_deref().map(|e| clip(e, 300)).unwrap_or_default(),
    }
}

pub(crate) fn run_rows(
    tr: &Tr,
    runs: &[PlaybookRun],
    names: &HashMap<String, String>,
) -> Vec<RunRow> {
    runs.iter().map(|r| run_row(tr, r, names)).collect()
}

/// An approval as the inbox, a run's page and an agent's page show it, with its decision
/// form while it is pending.
pub(crate) struct ApprovalRow {
    pub id: String,
    pub status: &'static str,
    pub status_text: &'static str,
    pub pending: bool,
    pub action: String,
    /// The agent it is about: (href, text).
    pub agent: Option<(String, String)>,
    /// The rest of the target (arguments), compact JSON.
    pub target: String,
    pub reason: String,
    pub asked: String,
    pub asked_when: When,
    /// "expires in 50 min" / "expired 5 min ago" / the decision.
    pub deadline: String,
    pub decided: String,
    pub comment: String,
    pub other_approver: bool,
    /// The run that waits for it: (href, text).
    pub run: Option<(String, String)>,
    pub decide_action: String,
    pub command_sent: bool,
}

pub(crate) fn approval_row(tr: &Tr, a: &Approval, names: &HashMap<String, String>) -> ApprovalRow {
    let agent_id = a
        .target
        .get("agent_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // a direct command's target is {agent_id, kind, args}: show the arguments
    let shown = match (&a.run_id, a.target.get("args")) {
        (None, Some(args)) => args.clone(),
        _ => {
            let mut t = a.target.clone();
            if let Some(obj) = t.as_object_mut() {
                obj.remove("agent_id");
                // the reason is shown on its own
                if obj.get("reason").and_then(Value::as_str) == Some(a.reason.as_str()) {
                    obj.remove("reason");
                }
            }
            t
        }
    };
    let target = match &shown {
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Null => String::new(),
        v => clip(&v.to_string(), 400),
    };
    let pending = a.status == ApprovalStatus::Pending;
    let deadline = if pending && a.expires_at > tr.now {
        tr.tf("approval.expires", &[("when", &tr.ago(a.expires_at))])
    } else if pending || a.status == ApprovalStatus::Expired {
        tr.tf(
            "approval.expired_at",
            &[("when", &tr.ago(a.decided_at.unwrap_or(a.expires_at)))],
        )
    } else {
        String::new()
    };
    let decided = match (&a.decided_by, a.decided_at) {
        (Some(by), Some(at))
            if matches!(
                a.status,
                ApprovalStatus::Approved | ApprovalStatus::Rejected
            ) =>
        {
            tr.tf(
                "approval.decided",
                &[
                    ("decision", tr.t(approval_status_key(a.status))),
                    ("who", by),
                    ("when", &tr.ago(at)),
                ],
            )
        }
        _ => String::new(),
    };
    ApprovalRow {
        id: a.id.clone(),
        status: a.status.as_str(),
        status_text: tr.t(approval_status_key(a.status)),
        pending: pending && a.expires_at > tr.now,
        action: action_text(tr, &a.action),
        agent: agent_id.as_deref().map(|id| agent_link(names, id)),
        target,
        reason: clip(&a.reason, 2000),
        asked: tr.tf("approval.asked", &[("who", &a.requested_by)]),
        asked_when: when(tr, a.created_at),
        deadline,
        decided,
        comment: a.comment.clone().unwrap_or_default(),
        other_approver: a.other_approver,
        run: a.run_id.as_ref().map(|id| {
            (
                format!("/ui/playbook-runs/{}", segment(id)),
                tr.tf(
                    "run.title",
                    &[("playbook", a.playbook.as_deref().unwrap_or("?"))],
                ),
            )
        }),
        decide_action: format!("/ui/approvals/{}/decision", segment(&a.id)),
        command_sent: a.command_id.is_some(),
    }
}

/// The isolation an agent reports: the badge's class and text, and what more to say.
pub(crate) struct IsolationBadge {
    pub class: &'static str,
    pub text: &'static str,
    pub details: Vec<String>,
}

pub(crate) fn isolation_badge(tr: &Tr, agent: &Agent) -> Option<IsolationBadge> {
    let report = IsolationReport::of_heartbeat(agent.last_heartbeat.as_ref())?;
    let ms = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
    if report.phase == "isolated" {
        let mut details = vec![tr.tf(
            "isolation.since",
            &[("time", &tr.dt(ms(report.since_unix_ms)))],
        )];
        if let Some(t) = report.auto_release_at_unix_ms {
            details.push(tr.tf("isolation.auto_release", &[("when", &tr.ago(ms(t)))]));
        }
        Some(IsolationBadge {
            class: "iso iso-isolated",
            text: tr.t("isolation.isolated"),
            details,
        })
    } else {
        Some(IsolationBadge {
            class: "iso iso-applying",
            text: tr.t("isolation.applying"),
            details: Vec::new(),
        })
    }
}

// ---------------------------------------------------------------- playbooks

struct PlayLine {
    name: String,
    tasks: String,
    manual: bool,
    triggers: Vec<String>,
}

struct PlaybookRow {
    name: String,
    href: String,
    origin: &'static str,
    enabled: bool,
    enabled_action: String,
    plays: Vec<PlayLine>,
    /// "file, line 3, column 5" and the reason.
    error: Option<(String, String)>,
    manual: bool,
    /// When and by whom it was last changed.
    updated: String,
}

fn play_line(tr: &Tr, p: &PlayView) -> PlayLine {
    PlayLine {
        name: p.name.clone(),
        tasks: tr.tn("playbook.tasks", p.tasks as u64),
        manual: p.triggers.iter().any(|t| t == "manual"),
        triggers: p
            .triggers
            .iter()
            .filter(|t| *t != "manual")
            .cloned()
            .collect(),
    }
}

fn playbook_row(tr: &Tr, p: &PlaybookView) -> PlaybookRow {
    PlaybookRow {
        name: p.name.clone(),
        href: format!("/ui/playbooks/{}", segment(&p.name)),
        origin: match p.origin.as_str() {
            "file" => tr.t("playbook.origin.file"),
            _ => tr.t("playbook.origin.api"),
        },
        enabled: p.enabled,
        enabled_action: format!("/ui/playbooks/{}/enabled", segment(&p.name)),
        plays: p.plays.iter().map(|x| play_line(tr, x)).collect(),
        error: p.error.as_ref().map(|e| {
            (
                tr.tf(
                    "playbook.error_at",
                    &[
                        ("file", &e.file),
                        ("line", &e.line.to_string()),
                        ("column", &e.column.to_string()),
                    ],
                ),
                e.reason.clone(),
            )
        }),
        manual: p.manual,
        updated: tr.tf(
            "agent.revoked_by",
            &[("time", &tr.dt(p.updated_at)), ("who", &p.updated_by)],
        ),
    }
}

#[derive(Template)]
#[template(path = "playbooks.html")]
struct PlaybooksPage {
    l: Layout,
    tr: Tr,
    rows: Vec<PlaybookRow>,
    shown: String,
    available: bool,
}

/// The playbook list page.
pub fn playbooks(ctx: &PageCtx, v: &PlaybooksView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "playbooks", tr.t("playbooks.title").to_owned());
    render(&PlaybooksPage {
        rows: v.playbooks.iter().map(|p| playbook_row(&tr, p)).collect(),
        shown: tr.tn("playbooks.count", v.playbooks.len() as u64),
        available: v.available,
        l,
        tr,
    })
}

#[derive(Template)]
#[template(path = "playbook_detail.html")]
struct PlaybookDetailPage<'a> {
    l: Layout,
    tr: Tr,
    p: PlaybookRow,
    yaml: Option<&'a str>,
    runs: Vec<RunRow>,
    runs_href: String,
    can_run: bool,
}

/// One playbook's page: plays, triggers, YAML, recent runs and the "Run" form.
pub fn playbook_detail(ctx: &PageCtx, v: &PlaybookDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let p = playbook_row(&tr, &v.playbook);
    let l = Layout::new(ctx, &tr, "playbook", p.name.clone());
    let mut q = Query::new();
    q.push("playbook", &p.name);
    render(&PlaybookDetailPage {
        can_run: l.triage && p.manual && p.error.is_none(),
        yaml: v.playbook.source.as_deref(),
        runs: run_rows(&tr, &v.runs, &HashMap::new()),
        runs_href: q.url("/ui/playbook-runs"),
        p,
        l,
        tr,
    })
}

// ---------------------------------------------------------------- runs

struct Opt {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    l: Layout,
    tr: Tr,
    playbooks: Vec<Opt>,
    statuses: Vec<Opt>,
    runs: Vec<RunRow>,
    shown: String,
    agent: String,
    alert: Option<i64>,
}

/// The run list page (`playbook`, `status` filters).
pub fn playbook_runs(ctx: &PageCtx, v: &RunsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "runs", tr.t("runs.title").to_owned());
    let mut names = v.playbooks.clone();
    if !v.params.playbook.is_empty() && !names.contains(&v.params.playbook) {
        names.push(v.params.playbook.clone());
    }
    render(&RunsPage {
        playbooks: names
            .into_iter()
            .map(|n| Opt {
                selected: n == v.params.playbook,
                label: n.clone(),
                value: n,
            })
            .collect(),
        statuses: PlaybookRunStatus::ALL
            .iter()
            .map(|s| Opt {
                value: s.as_str().to_owned(),
                label: tr.t(run_status_key(*s)).to_owned(),
                selected: v.params.status == Some(*s),
            })
            .collect(),
        runs: run_rows(&tr, &v.runs, &HashMap::new()),
        shown: tr.tn("runs.count", v.runs.len() as u64),
        agent: v.params.agent.clone(),
        alert: v.params.alert,
        l,
        tr,
    })
}

struct StepRow {
    seq: u32,
    play: String,
    task: String,
    path: String,
    module: String,
    status: String,
    status_text: String,
    attempts: String,
    item: String,
    approval: String,
    approval_comment: String,
    input: String,
    output: String,
    error: String,
    started: Option<When>,
    duration: String,
}

fn pretty(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
    }
}

fn step_row(tr: &Tr, s: &PlaybookStep) -> StepRow {
    let r = &s.record;
    let text = |key: &str| r.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    let approval = r.get("approval").filter(|a| a.is_object());
    let approval_text = approval
        .map(|a| {
            let decision = a.get("decision").and_then(Value::as_str).unwrap_or("");
            let label = match decision {
                "approved" => tr.t("approval.status.approved"),
                "rejected" => tr.t("approval.status.rejected"),
                "expired" => tr.t("approval.status.expired"),
                _ => tr.t("approval.status.pending"),
            };
            match a.get("by").and_then(Value::as_str) {
                Some(by) => tr.tf("step.decided", &[("decision", label), ("who", by)]),
                None => label.to_owned(),
            }
        })
        .unwrap_or_default();
    let duration = r.get("duration_ms").and_then(Value::as_u64).map(|ms| {
        if ms < 1000 {
            tr.tf("dur.ms", &[("n", &tr.num(ms))])
        } else {
            tr.tf("dur.s", &[("n", &tr.dec(ms as f64 / 1000.0, 1))])
        }
    });
    StepRow {
        seq: s.seq + 1,
        play: text("play"),
        task: text("task"),
        path: text("path"),
        module: text("module"),
        status: s.status.clone(),
        status_text: step_status_key(&s.status)
            .map_or_else(|| s.status.clone(), |k| tr.t(k).to_owned()),
        attempts: r
            .get("attempts")
            .and_then(Value::as_u64)
            .map(|n| tr.num(n))
            .unwrap_or_default(),
        item: match r.get("item") {
            None | Some(Value::Null) => String::new(),
            Some(v) => clip(&v.to_string(), 200),
        },
        approval: approval_text,
        approval_comment: approval
            .and_then(|a| a.get("comment"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        input: pretty(r.get("input")),
        output: pretty(r.get("output")),
        error: text("error"),
        started: r
            .get("started_at_ms")
            .and_then(Value::as_i64)
            .map(|t| when(tr, t)),
        duration: duration.unwrap_or_default(),
    }
}

#[derive(Template)]
#[template(path = "run_detail.html")]
struct RunDetailPage {
    l: Layout,
    tr: Tr,
    run: RunRow,
    id: String,
    alert_title: String,
    vars: String,
    running: bool,
    steps: Vec<StepRow>,
    approvals: Vec<ApprovalRow>,
}

/// One run's page: its header, each step with its input and output, its approvals.
pub fn playbook_run(ctx: &PageCtx, v: &RunDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let names: HashMap<String, String> = match (&v.run.agent_id, &v.agent_name) {
        (Some(id), Some(name)) => [(id.clone(), name.clone())].into_iter().collect(),
        _ => HashMap::new(),
    };
    let l = Layout::new(
        ctx,
        &tr,
        "run",
        tr.tf("run.title", &[("playbook", &v.run.playbook)]),
    );
    let vars = match &v.run.vars {
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    render(&RunDetailPage {
        run: run_row(&tr, &v.run, &names),
        id: v.run.id.clone(),
        alert_title: v.alert_title.clone().unwrap_or_default(),
        vars,
        running: v.run.status == PlaybookRunStatus::Running,
        steps: v.steps.iter().map(|s| step_row(&tr, s)).collect(),
        approvals: v
            .approvals
            .iter()
            .map(|a| approval_row(&tr, a, &names))
            .collect(),
        l,
        tr,
    })
}

// ---------------------------------------------------------------- approvals

struct Chip {
    href: String,
    label: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    l: Layout,
    tr: Tr,
    chips: Vec<Chip>,
    approvals: Vec<ApprovalRow>,
    shown: String,
}

/// The approvals inbox: pending requests first (soonest to expire first), then the rest,
/// newest first.
pub fn approvals(ctx: &PageCtx, v: &ApprovalsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "approvals", tr.t("approvals.title").to_owned());
    let mut list: Vec<&Approval> = v.approvals.iter().collect();
    // waiting ones (whose time is not up) first, soonest to expire first; then newest first
    let settled = |x: &Approval| !(x.status == ApprovalStatus::Pending && x.expires_at > ctx.now);
    list.sort_by(|a, b| {
        settled(a).cmp(&settled(b)).then_with(|| {
            if settled(a) {
                b.created_at.cmp(&a.created_at)
            } else {
                a.expires_at.cmp(&b.expires_at)
            }
        })
    });
    let mut chips = vec![Chip {
        href: "/ui/approvals".to_owned(),
        label: tr.t("approvals.all"),
        active: v.params.status.is_none(),
    }];
    for s in ApprovalStatus::ALL {
        let mut q = Query::new();
        q.push("status", s.as_str());
        chips.push(Chip {
            href: q.url("/ui/approvals"),
            label: tr.t(approval_status_key(s)),
            active: v.params.status == Some(s),
        });
    }
    render(&ApprovalsPage {
        chips,
        shown: tr.tn("approvals.count", list.len() as u64),
        approvals: list
            .into_iter()
            .map(|a| approval_row(&tr, a, &v.agent_names))
            .collect(),
        l,
        tr,
    })
}
