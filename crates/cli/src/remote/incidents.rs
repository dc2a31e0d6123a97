//! `dozor incidents …` (issue 16): a running server's incidents — list, show with the merged
//! timeline, open from alerts, change, group alerts, tasks, notes, observables, suggestions.

use anyhow::Result;
use clap::{Args, Subcommand};
use dozor_model::{Incident, IncidentSuggestion, IncidentTask};
use serde_json::{Value, json};

use super::{
    Cell, Client, EXIT_CODES, Format, Remote, clean, emit, emit_json, key_values, read, table,
    time_ms, truncate,
};

#[derive(Subcommand)]
pub enum IncidentsCmd {
    /// List incidents, most recently changed first.
    #[command(after_help = EXIT_CODES)]
    List {
        /// Only these statuses (open, in_progress, contained, closed); repeatable [default: all].
        #[arg(long = "status", value_name = "S")]
        statuses: Vec<String>,
        /// Only incidents of this owner.
        #[arg(long, value_name = "USER")]
        owner: Option<String>,
        /// At most this many, 1-1000 [default: 100].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show an incident: its fields, alerts, tasks, observables and merged timeline.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The incident's number.
        id: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Open an incident, grouping alerts into it at once (analyst or admin; audited).
    #[command(after_help = EXIT_CODES)]
    Create(CreateArgs),
    /// Change an incident's title, status, severity, owner or description (analyst or admin;
    /// audited).
    #[command(after_help = EXIT_CODES)]
    Update(UpdateArgs),
    /// Group alerts into an incident (an alert belongs to one incident at most).
    #[command(name = "add-alerts", after_help = EXIT_CODES)]
    AddAlerts {
        /// The incident's number.
        id: i64,
        /// Alert ids.
        #[arg(required = true)]
        alerts: Vec<i64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Take an alert out of an incident.
    #[command(name = "remove-alert", after_help = EXIT_CODES)]
    RemoveAlert {
        /// The incident's number.
        id: i64,
        /// The alert's id.
        alert: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a task, or tick one off (`--done`) or reopen it (`--undo`).
    #[command(after_help = EXIT_CODES)]
    Task {
        /// The incident's number.
        id: i64,
        /// The new task's text.
        #[arg(conflicts_with_all = ["done", "undo"], required_unless_present_any = ["done", "undo"])]
        title: Option<String>,
        /// Tick this task off.
        #[arg(long, value_name = "TASK", conflicts_with = "undo")]
        done: Option<i64>,
        /// Reopen this task.
        #[arg(long, value_name = "TASK")]
        undo: Option<i64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add a note.
    #[command(after_help = EXIT_CODES)]
    Note {
        /// The incident's number.
        id: i64,
        /// The text.
        text: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Add an observable (ip, domain, url, hash, file, user, host, process, other); the value
    /// is checked against its kind.
    #[command(after_help = EXIT_CODES)]
    Observable {
        /// The incident's number.
        id: i64,
        /// The kind.
        kind: String,
        /// The value.
        value: String,
        /// Why it matters.
        #[arg(long, value_name = "TEXT", default_value = "")]
        note: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Open alerts of one host, in no incident yet: incidents worth opening.
    #[command(after_help = EXIT_CODES)]
    Suggest {
        /// Alerts changed since (RFC 3339, ms or now-<duration>) [default: now-7d].
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Title.
    #[arg(long)]
    title: String,
    /// low, medium, high or critical [default: the highest level of its alerts].
    #[arg(long, value_name = "S")]
    severity: Option<String>,
    /// Owner [default: none].
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// Description.
    #[arg(long, value_name = "TEXT", default_value = "")]
    description: String,
    /// Alerts to group into it; repeatable.
    #[arg(long = "alert", value_name = "ID")]
    alerts: Vec<i64>,
    #[command(flatten)]
    remote: Remote,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// The incident's number.
    id: i64,
    /// New title.
    #[arg(long)]
    title: Option<String>,
    /// open, in_progress, contained or closed.
    #[arg(long, value_name = "S")]
    status: Option<String>,
    /// low, medium, high or critical.
    #[arg(long, value_name = "S")]
    severity: Option<String>,
    /// New owner (`""` clears it).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// New description.
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

pub fn incidents(cmd: IncidentsCmd) -> Result<u8> {
    match cmd {
        IncidentsCmd::List {
            statuses,
            owner,
            limit,
            remote,
        } => {
            let mut query = vec![("limit", limit.unwrap_or(100).to_string())];
            if !statuses.is_empty() {
                query.push(("status", statuses.join(",")));
            }
            if let Some(o) = owner {
                query.push(("owner", o));
            }
            let client = Client::connect(&remote, false)?;
            let answer = client.get("/api/v1/incidents", &query)?;
            if client.format == Format::Json {
                emit_json(&answer)?;
                return Ok(0);
            }
            let list: Vec<Incident> = read(&answer, "a list of incidents")?;
            if list.is_empty() {
                eprintln!("no incidents");
                return Ok(0);
            }
            emit(&incidents_table(&list))?;
            Ok(0)
        }
        IncidentsCmd::Show { id, remote } => show(id, &remote),
        IncidentsCmd::Create(a) => {
            let body = json!({
                "title": a.title,
                "severity": a.severity,
                "owner": a.owner,
                "description": a.description,
                "alert_ids": a.alerts,
            });
            let client = Client::connect(&a.remote, false)?;
            let answer = client.post("/api/v1/incidents", &body)?;
            one_incident(&client, &answer)
        }
        IncidentsCmd::Update(a) => {
            let mut body = serde_json::Map::new();
            for (key, value) in [
                ("title", a.title),
                ("status", a.status),
                ("severity", a.severity),
                ("owner", a.owner),
                ("description", a.description),
            ] {
                if let Some(v) = value {
                    body.insert(key.to_owned(), Value::String(v));
                }
            }
            let client = Client::connect(&a.remote, false)?;
            let answer = client.patch(&format!("/api/v1/incidents/{}", a.id), &body)?;
            one_incident(&client, &answer)
        }
        IncidentsCmd::AddAlerts { id, alerts, remote } => {
            let client = Client::connect(&remote, false)?;
            let path = format!("/api/v1/incidents/{id}/alerts");
            let answer = client.post(&path, &json!({ "alert_ids": alerts }))?;
            if client.format == Format::Json {
                emit_json(&answer)?;
            } else {
                let added = answer["added"].as_array().map_or(0, Vec::len);
                emit(&format!("{added} alerts added to incident {id}\n"))?;
            }
            Ok(0)
        }
        IncidentsCmd::RemoveAlert { id, alert, remote } => {
            let client = Client::connect(&remote, false)?;
            client.delete(&format!("/api/v1/incidents/{id}/alerts/{alert}"))?;
            eprintln!("alert {alert} taken out of incident {id}");
            Ok(0)
        }
        IncidentsCmd::Task {
            id,
            title,
            done,
            undo,
            remote,
        } => {
            let client = Client::connect(&remote, false)?;
            let answer = match (title, done, undo) {
                (Some(t), _, _) => client.post(
                    &format!("/api/v1/incidents/{id}/tasks"),
                    &json!({"title": t}),
                )?,
                (None, Some(task), _) => client.patch(
                    &format!("/api/v1/incidents/{id}/tasks/{task}"),
                    &json!({"done": true}),
                )?,
                (None, None, Some(task)) => client.patch(
                    &format!("/api/v1/incidents/{id}/tasks/{task}"),
                    &json!({"done": false}),
                )?,
                (None, None, None) => unreachable!("clap requires one"),
            };
            if client.format == Format::Json {
                emit_json(&answer)?;
            } else {
                let t: IncidentTask = read(&answer, "a task")?;
                let mark = if t.done { "[x]" } else { "[ ]" };
                emit(&format!("{mark} {} {}\n", t.id, clean(&t.title)))?;
            }
            Ok(0)
        }
        IncidentsCmd::Note { id, text, remote } => {
            let client = Client::connect(&remote, false)?;
            let answer = client.post(
                &format!("/api/v1/incidents/{id}/notes"),
                &json!({"body": text}),
            )?;
            if client.format == Format::Json {
                emit_json(&answer)?;
            } else {
                eprintln!("note added to incident {id}");
            }
            Ok(0)
        }
        IncidentsCmd::Observable {
            id,
            kind,
            value,
            note,
            remote,
        } => {
            let client = Client::connect(&remote, false)?;
            let answer = client.post(
                &format!("/api/v1/incidents/{id}/observables"),
                &json!({"kind": kind, "value": value, "note": note}),
            )?;
            if client.format == Format::Json {
                emit_json(&answer)?;
            } else {
                eprintln!(
                    "observable {} added to incident {id}",
                    answer["id"].as_i64().unwrap_or_default()
                );
            }
            Ok(0)
        }
        IncidentsCmd::Suggest { since, remote } => {
            let client = Client::connect(&remote, false)?;
            let query: Vec<(&str, String)> = since.into_iter().map(|s| ("since", s)).collect();
            let answer = client.get("/api/v1/incidents/suggestions", &query)?;
            if client.format == Format::Json {
                emit_json(&answer)?;
                return Ok(0);
            }
            let list: Vec<IncidentSuggestion> = read(&answer, "suggestions")?;
            if list.is_empty() {
                eprintln!(
                    "nothing to suggest: no host has two or more open alerts outside incidents"
                );
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|s| {
                    vec![
                        s.host.cell(),
                        s.alert_count.to_string(),
                        s.level.as_str().to_owned(),
                        time_ms(Some(s.first_seen)),
                        time_ms(Some(s.last_seen)),
                        truncate(
                            s.alert_ids
                                .iter()
                                .map(i64::to_string)
                                .collect::<Vec<_>>()
                                .join(","),
                            60,
                        ),
                    ]
                })
                .collect();
            emit(&table(
                &["HOST", "ALERTS", "LEVEL", "FIRST", "LAST", "ALERT IDS"],
                &rows,
            ))?;
            Ok(0)
        }
    }
}

fn incidents_table(list: &[Incident]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                i.id.to_string(),
                i.severity.as_str().to_owned(),
                i.status.as_str().to_owned(),
                i.owner.cell(),
                i.alert_count.to_string(),
                format!("{}/{}", i.tasks_done, i.tasks_total),
                time_ms(Some(i.updated_at)),
                truncate(i.title.cell(), 60),
            ]
        })
        .collect();
    table(
        &[
            "ID", "SEVERITY", "STATUS", "OWNER", "ALERTS", "TASKS", "CHANGED", "TITLE",
        ],
        &rows,
    )
}

fn one_incident(client: &Client, answer: &Value) -> Result<u8> {
    if client.format == Format::Json {
        emit_json(answer)?;
        return Ok(0);
    }
    let i: Incident = read(answer, "an incident")?;
    emit(&incidents_table(&[i]))?;
    Ok(0)
}

fn show(id: i64, remote: &Remote) -> Result<u8> {
    let client = Client::connect(remote, false)?;
    let answer = client.get(&format!("/api/v1/incidents/{id}"), &[])?;
    if client.format == Format::Json {
        emit_json(&answer)?;
        return Ok(0);
    }
    let i: Incident = read(&answer["incident"], "an incident")?;
    let mut out = key_values(&[
        ("id", i.id.to_string()),
        ("title", clean(&i.title)),
        ("severity", i.severity.as_str().to_owned()),
        ("status", i.status.as_str().to_owned()),
        ("owner", i.owner.cell()),
        (
            "opened",
            format!(
                "{} by {}",
                time_ms(Some(i.created_at)),
                clean(&i.created_by)
            ),
        ),
        ("closed", time_ms(i.closed_at)),
        ("alerts", i.alert_count.to_string()),
        ("tasks", format!("{}/{} done", i.tasks_done, i.tasks_total)),
    ]);
    if !i.description.is_empty() {
        out.push_str(&format!("\n{}\n", super::clean_block(&i.description)));
    }
    let rows = |key: &str, f: &dyn Fn(&Value) -> Vec<String>| -> Vec<Vec<String>> {
        answer[key]
            .as_array()
            .map_or_else(Vec::new, |a| a.iter().map(f).collect())
    };
    let text = |v: &Value| v.as_str().map_or_else(|| "-".to_owned(), clean);
    let time = |v: &Value| time_ms(v.as_i64());
    let alerts = rows("alerts", &|a| {
        vec![
            a["id"].to_string(),
            text(&a["level"]),
            text(&a["status"]),
            text(&a["host"]),
            time(&a["last_seen"]),
            truncate(text(&a["rule_title"]), 60),
        ]
    });
    if !alerts.is_empty() {
        out.push_str("\nALERTS\n");
        out.push_str(&table(
            &["ID", "LEVEL", "STATUS", "HOST", "LAST SEEN", "RULE"],
            &alerts,
        ));
    }
    let tasks = rows("tasks", &|t| {
        let mark = if t["done"] == true { "[x]" } else { "[ ]" };
        vec![t["id"].to_string(), mark.to_owned(), text(&t["title"])]
    });
    if !tasks.is_empty() {
        out.push_str("\nTASKS\n");
        out.push_str(&table(&["ID", "DONE", "TASK"], &tasks));
    }
    let observables = rows("observables", &|o| {
        vec![
            o["id"].to_string(),
            text(&o["kind"]),
            text(&o["value"]),
            text(&o["note"]),
        ]
    });
    if !observables.is_empty() {
        out.push_str("\nOBSERVABLES\n");
        out.push_str(&table(&["ID", "KIND", "VALUE", "NOTE"], &observables));
    }
    let timeline = rows("timeline", &|e| {
        vec![
            time(&e["at"]),
            text(&e["kind"]),
            text(&e["who"]),
            truncate(text(&e["text"]), 80),
        ]
    });
    if !timeline.is_empty() {
        out.push_str("\nTIMELINE\n");
        out.push_str(&table(&["WHEN", "KIND", "WHO", "WHAT"], &timeline));
    }
    emit(&out)?;
    Ok(0)
}
