//! Agents: the list with live heartbeat dots, and one agent's page with its resources.

use std::collections::HashMap;

use askama::Template;
use dozor_model::{Agent, AgentCommand, CommandStatus};
use serde_json::Value;

use super::layout::Layout;
use super::response::{
    ApprovalRow, IsolationBadge, RunRow, action_text, approval_row, isolation_badge, run_rows,
};
use super::{AlertRow, EventRow, When, alert_row, clip, event_row, render, when};
use crate::i18n::Tr;
use crate::svg::{self, HBar};
use crate::url::{Query, segment};
use crate::view::{AgentDetailView, AgentRow, AgentStatus, AgentsView, PageCtx};

pub(crate) fn agent_status_key(s: AgentStatus) -> &'static str {
    match s {
        AgentStatus::Online => "agent.status.online",
        AgentStatus::Degraded => "agent.status.degraded",
        AgentStatus::Offline => "agent.status.offline",
        AgentStatus::Revoked => "agent.status.revoked",
    }
}

fn os_text(a: &Agent) -> String {
    let f = &a.facts;
    let mut parts: Vec<&str> = Vec::new();
    match &f.os_name {
        Some(n) if !n.is_empty() => parts.push(n),
        _ => parts.push(&f.os_type),
    }
    if let Some(v) = f.os_version.as_deref().filter(|v| !v.is_empty()) {
        parts.push(v);
    }
    let mut text = parts.join(" ");
    if let Some(arch) = f.arch.as_deref().filter(|v| !v.is_empty()) {
        text = format!("{text} ({arch})");
    }
    text
}

struct Row {
    id: String,
    href: String,
    hostname: String,
    status: &'static str,
    status_text: &'static str,
    os: String,
    version: String,
    ips: String,
    more_ips: String,
    seen: When,
    problems: String,
    isolation: Option<IsolationBadge>,
}

struct Chip {
    href: String,
    label: &'static str,
    count: String,
    class: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage<'a> {
    l: Layout,
    tr: Tr,
    q: &'a str,
    status: &'a str,
    chips: Vec<Chip>,
    rows: Vec<Row>,
    shown: String,
    total: usize,
}

fn matches(row: &AgentRow, q: &str) -> bool {
    if q.is_empty() {
        return true;
    }
    let a = &row.agent;
    let f = &a.facts;
    let hay = [
        a.id.as_str(),
        f.hostname.as_str(),
        f.os_type.as_str(),
        f.os_name.as_deref().unwrap_or(""),
        f.os_version.as_deref().unwrap_or(""),
        f.agent_version.as_str(),
    ];
    hay.iter().any(|h| h.to_lowercase().contains(q)) || f.ips.iter().any(|ip| ip.contains(q))
}

/// The agent list page.
pub fn agents(ctx: &PageCtx, v: &AgentsView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let l = Layout::new(ctx, &tr, "agents", tr.t("agents.title").to_owned());
    let q = v.params.q.trim().to_lowercase();
    let mut counts: HashMap<AgentStatus, u64> = HashMap::new();
    for a in &v.agents {
        *counts.entry(a.status).or_default() += 1;
    }
    let rows: Vec<Row> = v
        .agents
        .iter()
        .filter(|a| v.params.status.is_none_or(|s| a.status == s))
        .filter(|a| matches(a, &q))
        .map(|r| {
            let a = &r.agent;
            let ips: Vec<&str> = a.facts.ips.iter().take(3).map(String::as_str).collect();
            Row {
                id: a.id.clone(),
                href: format!("/ui/agents/{}", segment(&a.id)),
                hostname: a.facts.hostname.clone(),
                status: r.status.as_str(),
                status_text: tr.t(agent_status_key(r.status)),
                os: os_text(a),
                version: a.facts.agent_version.clone(),
                ips: ips.join(", "),
                more_ips: if a.facts.ips.len() > 3 {
                    tr.tf(
                        "agents.more_ips",
                        &[("n", &tr.num(a.facts.ips.len() as u64 - 3))],
                    )
                } else {
                    String::new()
                },
                seen: when(&tr, a.last_seen),
                problems: if a.health.is_empty() {
                    String::new()
                } else {
                    tr.tn("agents.problems", a.health.len() as u64)
                },
                isolation: isolation_badge(&tr, a),
            }
        })
        .collect();
    let mut chips = vec![Chip {
        href: {
            let mut qq = Query::new();
            qq.push("q", &v.params.q);
            qq.url("/ui/agents")
        },
        label: tr.t("agents.all"),
        count: tr.num(v.agents.len() as u64),
        class: "",
        active: v.params.status.is_none(),
    }];
    for s in [
        AgentStatus::Online,
        AgentStatus::Degraded,
        AgentStatus::Offline,
        AgentStatus::Revoked,
    ] {
        let mut qq = Query::new();
        qq.push("q", &v.params.q).push("status", s.as_str());
        chips.push(Chip {
            href: qq.url("/ui/agents"),
            label: tr.t(agent_status_key(s)),
            count: tr.num(counts.get(&s).copied().unwrap_or(0)),
            class: match s {
                AgentStatus::Online => "ag-online",
                AgentStatus::Degraded => "ag-degraded",
                AgentStatus::Offline => "ag-offline",
                AgentStatus::Revoked => "ag-revoked",
            },
            active: v.params.status == Some(s),
        });
    }
    render(&AgentsPage {
        q: &v.params.q,
        status: v.params.status.map_or("", AgentStatus::as_str),
        chips,
        shown: tr.tn("agents.count", rows.len() as u64),
        total: v.agents.len(),
        rows,
        l,
        tr,
    })
}

struct Process {
    name: String,
    pid: String,
    cpu: String,
    rss: String,
}

struct Resources {
    bars: String,
    facts: Vec<(&'static str, String)>,
    top_cpu: Vec<Process>,
    top_memory: Vec<Process>,
}

fn f64_at(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn u64_at(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn uptime(tr: &Tr, secs: u64) -> String {
    let d = secs / 86_400;
    let h = secs % 86_400 / 3600;
    let m = secs % 3600 / 60;
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(tr.tf("dur.d", &[("n", &tr.num(d))]));
    }
    if h > 0 || d > 0 {
        parts.push(tr.tf("dur.h", &[("n", &tr.num(h))]));
    }
    if d == 0 {
        parts.push(tr.tf("dur.min", &[("n", &tr.num(m))]));
    }
    parts.join(" ")
}

fn processes(tr: &Tr, list: Option<&Value>) -> Vec<Process> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .take(10)
                .map(|p| Process {
                    name: clip(p.get("name").and_then(Value::as_str).unwrap_or("?"), 60),
                    pid: u64_at(p, "pid").map(|n| n.to_string()).unwrap_or_default(),
                    cpu: f64_at(p, "cpu_percent")
                        .map(|c| tr.pct(c))
                        .unwrap_or_default(),
                    rss: u64_at(p, "rss_bytes")
                        .map(|b| tr.bytes(b))
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn resources(tr: &Tr, hb: Option<&Value>) -> Option<Resources> {
    let r = hb?.get("resources")?;
    let mut bars = Vec::new();
    let mut facts = Vec::new();
    if let Some(cpu) = f64_at(r, "cpu_percent") {
        bars.push(HBar {
            label: tr.t("agent.cpu").to_owned(),
            value: cpu,
            text: tr.pct(cpu),
            class: "res".to_owned(),
        });
    }
    if let (Some(total), Some(used)) = (
        u64_at(r, "memory_total_bytes"),
        u64_at(r, "memory_used_bytes"),
    ) && total > 0
    {
        bars.push(HBar {
            label: tr.t("agent.memory").to_owned(),
            value: used as f64 * 100.0 / total as f64,
            text: format!("{} / {}", tr.bytes(used), tr.bytes(total)),
            class: "res".to_owned(),
        });
    }
    if let (Some(total), Some(used)) = (u64_at(r, "swap_total_bytes"), u64_at(r, "swap_used_bytes"))
        && total > 0
    {
        bars.push(HBar {
            label: tr.t("agent.swap").to_owned(),
            value: used as f64 * 100.0 / total as f64,
            text: format!("{} / {}", tr.bytes(used), tr.bytes(total)),
            class: "res".to_owned(),
        });
    }
    if let Some(disks) = r.get("disks").and_then(Value::as_array) {
        for d in disks.iter().take(16) {
            let (Some(total), Some(used)) = (u64_at(d, "total_bytes"), u64_at(d, "used_bytes"))
            else {
                continue;
            };
            if total == 0 {
                continue;
            }
            let pct = used as f64 * 100.0 / total as f64;
            bars.push(HBar {
                label: tr.tf(
                    "agent.disk",
                    &[(
                        "mount",
                        &clip(d.get("mount").and_then(Value::as_str).unwrap_or("?"), 18),
                    )],
                ),
                value: pct,
                text: format!("{} / {}", tr.bytes(used), tr.bytes(total)),
                class: if pct >= 90.0 { "res warn" } else { "res" }.to_owned(),
            });
        }
    }
    if let Some(n) = u64_at(r, "cpu_count") {
        facts.push(("agent.cpu_count", tr.num(n)));
    }
    if let Some(load) = r.get("load_average").and_then(Value::as_array) {
        let parts: Vec<String> = load
            .iter()
            .filter_map(Value::as_f64)
            .map(|x| tr.dec(x, 2))
            .collect();
        if !parts.is_empty() {
            facts.push(("agent.load", parts.join(" · ")));
        }
    }
    if let Some(up) = u64_at(r, "uptime_secs") {
        facts.push(("agent.uptime", uptime(tr, up)));
    }
    Some(Resources {
        bars: svg::hbars(tr.t("agent.resources"), &bars, Some(100.0)),
        facts: facts.into_iter().map(|(k, v)| (tr.t(k), v)).collect(),
        top_cpu: processes(tr, r.get("top_cpu")),
        top_memory: processes(tr, r.get("top_memory")),
    })
}

/// One command (an on-demand scan) as the agent page lists it.
struct CommandRow {
    created: When,
    kind: String,
    path: String,
    recursive: bool,
    status: &'static str,
    status_text: &'static str,
    /// "attempt N" when it was delivered more than once.
    attempt: String,
    requested_by: String,
    finished: Option<When>,
    /// Counts of a done scan.
    summary: String,
    /// Why it failed.
    error: String,
    /// The first detections: severity, name, engine, path.
    detections: Vec<String>,
    /// "and N more".
    more: String,
}

fn command_status_key(s: CommandStatus) -> &'static str {
    match s {
        CommandStatus::Pending => "command.status.pending",
        CommandStatus::Delivered => "command.status.delivered",
        CommandStatus::Done => "command.status.done",
        CommandStatus::Failed => "command.status.failed",
        CommandStatus::Expired => "command.status.expired",
    }
}

/// Detections shown per command.
const SHOWN_DETECTIONS: usize = 5;

fn command_row(tr: &Tr, c: &AgentCommand) -> CommandRow {
    let result = c.result.as_ref();
    let count = |key: &str| result.and_then(|r| r.get(key)).and_then(Value::as_u64);
    let list = |key: &str| {
        result
            .and_then(|r| r.get(key))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    };
    let detections = list("detections");
    let mut summary = Vec::new();
    if c.status == CommandStatus::Done {
        if let Some(n) = count("files_scanned") {
            summary.push(tr.tn("agent.cmd_files", n));
        }
        summary.push(tr.tn("agent.cmd_detections", detections.len() as u64));
        let errors = list("errors").len() as u64;
        if errors > 0 {
            summary.push(tr.tn("agent.cmd_errors", errors));
        }
    }
    let text = |d: &Value, key: &str| {
        d.get(key)
            .and_then(Value::as_str)
            .map(|s| clip(s, 200))
            .unwrap_or_default()
    };
    CommandRow {
        created: when(tr, c.created_at),
        kind: action_text(tr, &c.kind),
        path: c
            .args
            .get("path")
            .and_then(Value::as_str)
            .map(|p| clip(p, 300))
            .or_else(|| {
                c.args.get("addresses").and_then(Value::as_array).map(|a| {
                    let list: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                    clip(&list.join(", "), 300)
                })
            })
            .or_else(|| {
                c.args
                    .get("pid")
                    .and_then(Value::as_u64)
                    .map(|pid| format!("pid {pid}"))
            })
            .unwrap_or_default(),
        recursive: c
            .args
            .get("recursive")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        status: c.status.as_str(),
        status_text: tr.t(command_status_key(c.status)),
        attempt: if c.attempts > 1 {
            tr.tf("agent.cmd_attempt", &[("n", &tr.num(c.attempts))])
        } else {
            String::new()
        },
        requested_by: c.requested_by.clone(),
        finished: c.finished_at.map(|t| when(tr, t)),
        summary: summary.join(" · "),
        error: c.error.as_deref().map(|e| clip(e, 300)).unwrap_or_default(),
        detections: detections
            .iter()
            .take(SHOWN_DETECTIONS)
            .map(|d| {
                format!(
                    "{} · {} ({}) — {}",
                    text(d, "severity"),
                    text(d, "name"),
                    text(d, "engine"),
                    text(d, "path")
                )
            })
            .collect(),
        more: if detections.len() > SHOWN_DETECTIONS {
            tr.tf(
                "agent.cmd_more",
                &[("n", &tr.num((detections.len() - SHOWN_DETECTIONS) as u64))],
            )
        } else {
            String::new()
        },
    }
}

#[derive(Template)]
#[template(path = "agent_detail.html")]
struct AgentDetailPage {
    l: Layout,
    tr: Tr,
    id: String,
    hostname: String,
    status: &'static str,
    status_text: &'static str,
    facts: Vec<(&'static str, String)>,
    ips: Vec<String>,
    seen: When,
    cert: When,
    cert_warn: bool,
    health: Vec<String>,
    res: Option<Resources>,
    alerts: Vec<AlertRow>,
    events: Vec<EventRow>,
    alerts_href: String,
    events_href: String,
    commands: Vec<CommandRow>,
    /// The "Scan path" form: an analyst or admin, and the agent is not revoked.
    can_scan: bool,
    scan_action: String,
    isolation: Option<IsolationBadge>,
    isolate_action: String,
    release_action: String,
    /// Playbooks with a manual play, for the "Run playbook" form.
    manual_playbooks: Vec<String>,
    response_available: bool,
    runs: Vec<RunRow>,
    runs_href: String,
    pending: Vec<ApprovalRow>,
}

/// One agent's page.
pub fn agent_detail(ctx: &PageCtx, v: &AgentDetailView) -> String {
    let tr = Tr::new(ctx.lang, ctx.now);
    let a = &v.agent.agent;
    let l = Layout::new(ctx, &tr, "agent", a.facts.hostname.clone());
    let mut facts = vec![
        ("agent.id", a.id.clone()),
        ("agent.os", os_text(a)),
        ("agent.version", a.facts.agent_version.clone()),
        ("agent.enrolled", tr.dt(a.enrolled_at)),
    ];
    if let Some(t) = a.reenrolled_at {
        facts.push(("agent.reenrolled", tr.dt(t)));
    }
    if let Some(t) = a.offline_since {
        facts.push(("agent.offline_since", tr.dt(t)));
    }
    if let Some(t) = a.revoked_at {
        let by = a.revoked_by.clone().unwrap_or_default();
        facts.push((
            "agent.revoked",
            if by.is_empty() {
                tr.dt(t)
            } else {
                tr.tf("agent.revoked_by", &[("time", &tr.dt(t)), ("who", &by)])
            },
        ));
    }
    let names: HashMap<String, String> = [(a.id.clone(), a.facts.hostname.clone())]
        .into_iter()
        .collect();
    let mut alerts_q = Query::new();
    alerts_q
        .push("status_any", "1")
        .push("agent", &a.id)
        .push("range", "all");
    let mut events_q = Query::new();
    events_q.push("agent", &a.id);
    render(&AgentDetailPage {
        id: a.id.clone(),
        hostname: a.facts.hostname.clone(),
        status: v.agent.status.as_str(),
        status_text: tr.t(agent_status_key(v.agent.status)),
        facts: facts.into_iter().map(|(k, v)| (tr.t(k), v)).collect(),
        ips: a.facts.ips.clone(),
        seen: when(&tr, a.last_seen),
        cert: when(&tr, a.cert_not_after),
        cert_warn: a.cert_not_after - ctx.now < 30 * 86_400_000,
        health: a.health.clone(),
        res: resources(&tr, a.last_heartbeat.as_ref()),
        alerts: v
            .recent_alerts
            .iter()
            .map(|x| alert_row(&tr, x, &names))
            .collect(),
        events: v
            .recent_events
            .iter()
            .map(|e| event_row(&tr, e, &names))
            .collect(),
        alerts_href: alerts_q.url("/ui/alerts"),
        events_href: events_q.url("/ui/events"),
        commands: v.commands.iter().map(|c| command_row(&tr, c)).collect(),
        can_scan: l.triage && a.revoked_at.is_none(),
        scan_action: format!("/ui/agents/{}/commands", segment(&a.id)),
        isolation: isolation_badge(&tr, a),
        isolate_action: format!("/ui/agents/{}/isolate", segment(&a.id)),
        release_action: format!("/ui/agents/{}/release", segment(&a.id)),
        manual_playbooks: v.response.manual_playbooks.clone(),
        response_available: v.response.available,
        runs: run_rows(&tr, &v.response.runs, &names),
        runs_href: {
            let mut q = Query::new();
            q.push("agent", &a.id);
            q.url("/ui/playbook-runs")
        },
        pending: v
            .response
            .pending
            .iter()
            .map(|x| approval_row(&tr, x, &names))
            .collect(),
        l,
        tr,
    })
}
