//! `dozor playbooks …` and the response actions of `dozor agents …` (issue 13).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Subcommand;
use dozor_model::api::CommandView;
use dozor_model::{
    ActionAnswer, ActionRequest, Approval, ApprovalList, DecisionRequest, PlaybookEnabledRequest,
    PlaybookList, PlaybookRunDetail, PlaybookRunList, PlaybookRunRequest, PlaybookView,
};
use serde_json::{Map, Value, json};

use super::{
    Cell, Client, EXIT_CODES, Format, Remote, clean, clean_block, emit, emit_json, key_values,
    read, segment, table, time_ms,
};

/// How often `--wait` asks the server.
const POLL: Duration = Duration::from_millis(500);

#[derive(Subcommand)]
pub enum PlaybooksCmd {
    /// List playbooks: origin, whether triggers may start them, their plays and triggers,
    /// and why one does not parse.
    #[command(after_help = EXIT_CODES)]
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Show a playbook's plays and its YAML.
    #[command(after_help = EXIT_CODES)]
    Show {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a playbook's triggers (alerts, schedules) on (admin; audited).
    #[command(after_help = EXIT_CODES)]
    Enable {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Turn a playbook's triggers off (admin; audited). Manual runs stay possible.
    #[command(after_help = EXIT_CODES)]
    Disable {
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a playbook by hand on an alert and/or an agent (analyst or admin; audited).
    ///
    /// Destructive steps wait for an approval (`dozor playbooks approvals`). With --wait the
    /// run is followed (steps on stderr as they end) until it ends.
    #[command(after_help = RUN_EXIT_CODES)]
    Run {
        name: String,
        /// Run on this alert.
        #[arg(long)]
        alert: Option<i64>,
        /// Run on this agent.
        #[arg(long)]
        agent: Option<String>,
        /// Extra variable NAME=VALUE (VALUE as JSON when it parses, else text); repeatable.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Template and check every step; call no module, ask no approval.
        #[arg(long)]
        dry_run: bool,
        /// Follow the run, at most SECS seconds [default: 3600].
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "3600")]
        wait: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List runs (newest first), or show one run with its steps.
    #[command(after_help = EXIT_CODES)]
    Runs {
        /// A run id: show it with its steps.
        id: Option<String>,
        #[arg(long)]
        playbook: Option<String>,
        #[arg(long)]
        alert: Option<i64>,
        #[arg(long)]
        agent: Option<String>,
        /// running, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// The approvals inbox (default: pending requests).
    #[command(after_help = EXIT_CODES)]
    Approvals {
        /// pending, approved, rejected, expired or all.
        #[arg(long, default_value = "pending")]
        status: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Approve a pending request (analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reject a pending request (analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

const RUN_EXIT_CODES: &str = "Exit codes: 0 = started (without --wait) or succeeded; 1 = the run \
failed; 2 = error: --wait ran out, the server refused the request, could not be reached, or bad \
arguments.";

pub const ACTION_EXIT_CODES: &str = "Exit codes: 0 = asked (an approval is pending, or the command \
is queued), or with --wait done; 1 = with --wait the agent could not do it, the approval was \
rejected or expired; 2 = error: --wait ran out, the server refused the request, could not be \
reached, or bad arguments.";

fn triggers(p: &PlaybookView) -> String {
    let mut all: Vec<String> = p.plays.iter().flat_map(|pl| pl.triggers.clone()).collect();
    all.dedup();
    all.join("; ")
}

fn playbooks_table(list: &PlaybookList) -> String {
    let rows: Vec<Vec<String>> = list
        .playbooks
        .iter()
        .map(|p| {
            vec![
                p.name.cell(),
                p.origin.cell(),
                if p.enabled { "yes" } else { "no" }.to_owned(),
                p.plays.len().to_string(),
                match &p.error {
                    Some(e) => format!("ERROR line {}: {}", e.line, clean(&e.reason)),
                    None => clean(&triggers(p)),
                },
            ]
        })
        .collect();
    table(&["NAME", "ORIGIN", "ENABLED", "PLAYS", "TRIGGERS"], &rows)
}

fn runs_table(list: &PlaybookRunList) -> String {
    let rows: Vec<Vec<String>> = list
        .runs
        .iter()
        .map(|r| {
            vec![
                r.id.cell(),
                r.playbook.cell(),
                r.status.as_str().to_owned(),
                r.trigger.cell(),
                r.alert_id.map(|a| a.to_string()).unwrap_or_default(),
                r.agent_id.cell(),
                time_ms(Some(r.started_at)),
                r.requested_by.cell(),
                r.error.clone().map(|e| clean(&e)).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "PLAYBOOK", "STATUS", "TRIGGER", "ALERT", "AGENT", "STARTED", "BY", "ERROR",
        ],
        &rows,
    )
}

fn approvals_table(list: &ApprovalList) -> String {
    let rows: Vec<Vec<String>> = list
        .approvals
        .iter()
        .map(|a| {
            vec![
                a.id.cell(),
                a.status.as_str().to_owned(),
                a.action.cell(),
                clean(&target_text(&a.target)),
                clean(&a.reason),
                a.requested_by.cell(),
                time_ms(Some(a.expires_at)),
                a.decided_by.cell(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "STATUS",
            "ACTION",
            "TARGET",
            "REASON",
            "ASKED BY",
            "EXPIRES",
            "DECIDED BY",
        ],
        &rows,
    )
}

fn target_text(target: &Value) -> String {
    let agent = target.get("agent_id").and_then(Value::as_str);
    let args = target.get("args").unwrap_or(target);
    let mut s = agent.map(|a| format!("agent {a} ")).unwrap_or_default();
    s.push_str(&serde_json::to_string(args).unwrap_or_default());
    s.chars().take(120).collect()
}

fn step_line(step: &Value) -> String {
    let r = &step["record"];
    let task = r["task"].as_str().unwrap_or("");
    let module = r["module"].as_str().unwrap_or("-");
    let status = step["status"].as_str().unwrap_or("");
    let mut line = format!("  [{status}] {task} ({module})");
    if let Some(a) = r["approval"].as_object() {
        line.push_str(&format!(
            " approval {} by {}",
            a.get("decision").and_then(Value::as_str).unwrap_or(""),
            a.get("by").and_then(Value::as_str).unwrap_or("-")
        ));
    }
    if let Some(e) = r["error"].as_str() {
        line.push_str(&format!(": {e}"));
    }
    clean(&line)
}

fn run_detail(d: &PlaybookRunDetail, steps: &[Value]) -> String {
    let r = &d.run;
    let mut out = key_values(&[
        ("run", r.id.clone()),
        ("playbook", r.playbook.clone()),
        ("status", r.status.as_str().to_owned()),
        ("trigger", r.trigger.clone()),
        (
            "alert",
            r.alert_id.map(|a| a.to_string()).unwrap_or_default(),
        ),
        ("agent", r.agent_id.clone().unwrap_or_default()),
        ("requested by", r.requested_by.clone()),
        ("dry run", r.dry_run.to_string()),
        ("started", time_ms(Some(r.started_at))),
        ("finished", time_ms(r.finished_at)),
        ("error", r.error.clone().unwrap_or_default()),
    ]);
    out = clean_block(&out);
    out.push_str("steps:\n");
    for s in steps {
        out.push_str(&step_line(s));
        out.push('\n');
    }
    out
}

fn parse_vars(vars: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for v in vars {
        let Some((name, value)) = v.split_once('=') else {
            bail!("--var {v:?}: expected NAME=VALUE");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        out.insert(name.trim().to_owned(), value);
    }
    Ok(out)
}

pub fn playbooks(cmd: PlaybooksCmd) -> Result<u8> {
    match cmd {
        PlaybooksCmd::List { remote } => {
            let client = Client::connect(&remote, false)?;
            let list = client.get("/api/v1/playbooks", &[])?;
            match client.format {
                Format::Json => emit_json(&list)?,
                Format::Table => emit(&playbooks_table(&read(&list, "a list of playbooks")?))?,
            }
            Ok(0)
        }
        PlaybooksCmd::Show { name, remote } => {
            let client = Client::connect(&remote, false)?;
            let answer = client.get(&format!("/api/v1/playbooks/{}", segment(&name)), &[])?;
            match client.format {
                Format::Json => emit_json(&answer)?,
                Format::Table => {
                    let p: PlaybookView = read(&answer, "a playbook")?;
                    emit(&playbooks_table(&PlaybookList {
                        playbooks: vec![p.clone()],
                    }))?;
                    if let Some(e) = &p.error {
                        eprintln!(
                            "{}:{}:{}: {}",
                            clean(&e.file),
                            e.line,
                            e.column,
                            clean(&e.reason)
                        );
                    }
                    emit(&format!("\n{}", clean_block(&p.source.unwrap_or_default())))?;
                }
            }
            Ok(0)
        }
        PlaybooksCmd::Enable { name, remote } => set_enabled(&name, true, &remote),
        PlaybooksCmd::Disable { name, remote } => set_enabled(&name, false, &remote),
        PlaybooksCmd::Run {
            name,
            alert,
            agent,
            vars,
            dry_run,
            wait,
            remote,
        } => {
            let client = Client::connect(&remote, false)?;
            let run = client.post(
                &format!("/api/v1/playbooks/{}/run", segment(&name)),
                &PlaybookRunRequest {
                    alert_id: alert,
                    agent_id: agent,
                    vars: Some(parse_vars(&vars)?),
                    dry_run,
                },
            )?;
            let id = run["id"].as_str().unwrap_or_default().to_owned();
            let Some(wait) = wait else {
                match client.format {
                    Format::Json => emit_json(&run)?,
                    Format::Table => {
                        emit(&format!("{}\n", clean(&id)))?;
                        eprintln!(
                            "started: follow it with `dozor playbooks runs {}`",
                            clean(&id)
                        );
                    }
                }
                return Ok(0);
            };
            follow_run(&client, &id, wait)
        }
        PlaybooksCmd::Runs {
            id: Some(id),
            remote,
            ..
        } => {
            let client = Client::connect(&remote, false)?;
            let answer = client.get(&format!("/api/v1/playbook-runs/{}", segment(&id)), &[])?;
            match client.format {
                Format::Json => emit_json(&answer)?,
                Format::Table => {
                    let d: PlaybookRunDetail = read(&answer, "a playbook run")?;
                    let steps = answer["steps"].as_array().cloned().unwrap_or_default();
                    emit(&run_detail(&d, &steps))?;
                }
            }
            Ok(0)
        }
        PlaybooksCmd::Runs {
            id: None,
            playbook,
            alert,
            agent,
            status,
            limit,
            remote,
        } => {
            let client = Client::connect(&remote, false)?;
            let mut query = vec![("limit", limit.to_string())];
            if let Some(p) = playbook {
                query.push(("playbook", p));
            }
            if let Some(a) = alert {
                query.push(("alert_id", a.to_string()));
            }
            if let Some(a) = agent {
                query.push(("agent_id", a));
            }
            if let Some(s) = status {
                query.push(("status", s));
            }
            let list = client.get("/api/v1/playbook-runs", &query)?;
            match client.format {
                Format::Json => emit_json(&list)?,
                Format::Table => {
                    let list: PlaybookRunList = read(&list, "a list of runs")?;
                    if list.runs.is_empty() {
                        eprintln!("no runs");
                    } else {
                        emit(&runs_table(&list))?;
                    }
                }
            }
            Ok(0)
        }
        PlaybooksCmd::Approvals { status, remote } => {
            let client = Client::connect(&remote, false)?;
            let query = if status == "all" {
                Vec::new()
            } else {
                vec![("status", status)]
            };
            let list = client.get("/api/v1/approvals", &query)?;
            match client.format {
                Format::Json => emit_json(&list)?,
                Format::Table => {
                    let list: ApprovalList = read(&list, "a list of approvals")?;
                    if list.approvals.is_empty() {
                        eprintln!("no approvals");
                    } else {
                        emit(&approvals_table(&list))?;
                    }
                }
            }
            Ok(0)
        }
        PlaybooksCmd::Approve {
            id,
            comment,
            remote,
        } => decide(&id, true, comment, &remote),
        PlaybooksCmd::Reject {
            id,
            comment,
            remote,
        } => decide(&id, false, comment, &remote),
    }
}

fn set_enabled(name: &str, enabled: bool, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let answer = client.post(
        &format!("/api/v1/playbooks/{}/enabled", segment(name)),
        &PlaybookEnabledRequest { enabled },
    )?;
    match client.format {
        Format::Json => emit_json(&answer)?,
        Format::Table => eprintln!(
            "playbook {}: triggers {}",
            clean(name),
            if enabled { "on" } else { "off" }
        ),
    }
    Ok(0)
}

fn decide(id: &str, approve: bool, comment: Option<String>, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let verb = if approve { "approve" } else { "reject" };
    let answer = client.post(
        &format!("/api/v1/approvals/{}/{verb}", segment(id)),
        &DecisionRequest { comment },
    )?;
    match client.format {
        Format::Json => emit_json(&answer)?,
        Format::Table => {
            let a: Approval = read(&answer, "an approval")?;
            eprintln!(
                "approval {} {}: {} {}",
                clean(&a.id),
                a.status.as_str(),
                clean(&a.action),
                clean(&target_text(&a.target))
            );
            if let Some(c) = &a.command_id {
                eprintln!(
                    "command {} queued; follow it with `dozor agents commands`",
                    clean(c)
                );
            }
        }
    }
    Ok(0)
}

fn follow_run(client: &Client, id: &str, wait: u64) -> Result<u8> {
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut shown = 0;
    let mut asked = std::collections::HashSet::new();
    loop {
        let answer = client.get(&format!("/api/v1/playbook-runs/{}", segment(id)), &[])?;
        let d: PlaybookRunDetail = read(&answer, "a playbook run")?;
        let steps = answer["steps"].as_array().cloned().unwrap_or_default();
        for s in steps.iter().skip(shown) {
            eprintln!("{}", step_line(s));
        }
        shown = steps.len();
        for a in d
            .approvals
            .iter()
            .filter(|a| a.status.as_str() == "pending")
        {
            if asked.insert(a.id.clone()) {
                eprintln!(
                    "waiting for approval {} ({}): `dozor playbooks approve {}`",
                    clean(&a.id),
                    clean(&a.reason),
                    clean(&a.id)
                );
            }
        }
        if d.run.status.as_str() != "running" {
            match client.format {
                Format::Json => emit_json(&answer)?,
                Format::Table => emit(&run_detail(&d, &steps))?,
            }
            return Ok(if d.run.status.as_str() == "succeeded" {
                0
            } else {
                1
            });
        }
        if Instant::now() >= deadline {
            bail!("run {id} is still running after {wait} s");
        }
        std::thread::sleep(POLL);
    }
}

/// A response action on an agent: `POST /api/v1/agents/{id}/actions`, then with `wait` the
/// approval (if any) and the command followed to their end.
pub fn action(
    agent: &str,
    kind: &str,
    args: Value,
    reason: Option<String>,
    wait: Option<u64>,
    remote: &Remote,
) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let Value::Object(args) = args else {
        bail!("internal: action arguments must be an object");
    };
    let answer = client.post(
        &format!("/api/v1/agents/{}/actions", segment(agent)),
        &ActionRequest {
            kind: kind.to_owned(),
            args: Some(args),
            reason,
        },
    )?;
    let a: ActionAnswer = read(&answer, "an action answer")?;
    let Some(wait) = wait else {
        match client.format {
            Format::Json => emit_json(&answer)?,
            Format::Table => match (&a.approval, &a.command) {
                (Some(ap), _) => {
                    emit(&format!("{}\n", clean(&ap.id)))?;
                    eprintln!(
                        "{kind} waits for an approval: `dozor playbooks approve {}` (another operator, if four eyes are on)",
                        clean(&ap.id)
                    );
                }
                (None, Some(c)) => {
                    emit(&format!("{}\n", c.id))?;
                    eprintln!("{kind} queued for agent {}", clean(agent));
                }
                (None, None) => {}
            },
        }
        return Ok(0);
    };
    let deadline = Instant::now() + Duration::from_secs(wait);
    let mut command_id = a.command.as_ref().map(|c| c.id.to_string());
    if let Some(ap) = &a.approval {
        eprintln!(
            "waiting for approval {}: `dozor playbooks approve {}`",
            clean(&ap.id),
            clean(&ap.id)
        );
        loop {
            let answer = client.get(&format!("/api/v1/approvals/{}", segment(&ap.id)), &[])?;
            let now: Approval = read(&answer, "an approval")?;
            match now.status.as_str() {
                "approved" => {
                    eprintln!(
                        "approved by {}",
                        clean(&now.decided_by.clone().unwrap_or_default())
                    );
                    command_id = now.command_id.clone();
                    break;
                }
                "rejected" | "expired" => {
                    eprintln!(
                        "{} {}",
                        now.status.as_str(),
                        now.decided_by
                            .map(|b| format!("by {}", clean(&b)))
                            .unwrap_or_default()
                    );
                    return Ok(1);
                }
                _ => {}
            }
            if Instant::now() >= deadline {
                bail!("approval {} is still pending after {wait} s", ap.id);
            }
            std::thread::sleep(POLL);
        }
    }
    let Some(command_id) = command_id else {
        bail!("the server queued no command");
    };
    loop {
        let answer = client.get(&format!("/api/v1/commands/{}", segment(&command_id)), &[])?;
        let c: CommandView = read(&answer, "a command")?;
        if c.status.is_final() {
            match client.format {
                Format::Json => emit_json(&answer)?,
                Format::Table => {
                    emit(&key_values(&[
                        ("command", c.id.to_string()),
                        ("kind", c.kind.clone()),
                        ("status", c.status.as_str().to_owned()),
                        (
                            "result",
                            clean(&serde_json::to_string(
                                &c.result.clone().unwrap_or(json!({})),
                            )?),
                        ),
                        ("error", clean(&c.error.clone().unwrap_or_default())),
                    ]))?;
                }
            }
            return Ok(if c.status.as_str() == "done" { 0 } else { 1 });
        }
        if Instant::now() >= deadline {
            bail!("command {command_id} has no result after {wait} s");
        }
        std::thread::sleep(POLL);
    }
}
