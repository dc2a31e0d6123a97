//! Fills a data directory (SQLite) or a PostgreSQL database with realistic events, alerts,
//! incidents and exceptions, for the dashboard benchmark (bench/ui/run.sh):
//!
//! ```sh
//! cargo run --release -p dozor-store --example seed -- LOCATION EVENTS ALERTS
//! ```
//!
//! LOCATION is a data directory or a postgres:// URL. Events are process, network, file and
//! authentication events of 100 hosts (`ws-000`…`ws-099`, one agent each) spread over the last
//! 7 days, every host with every kind. Process starts form trees per host (entity ids, parent
//! entity ids and reused pids: a login shell under systemd, its children, grandchildren and
//! great-grandchildren), so an alert's process tree has ancestors, siblings and children to
//! find. ALERTS distinct alerts (rule × host) are opened by detections on process starts spread
//! over the whole week, each carrying its event's agent and host; a third of them are then
//! acknowledged or resolved. 200 incidents (2 per host, 8 alerts each, some in progress or
//! closed, with tasks, notes and observables) group some of them; 5 exceptions are added.
//!
//! What the benchmark opens is printed on stdout as `KEY=value` lines (a host, an alert with
//! a deep process tree, its ±15 min pivot window, an incident); progress goes to stderr.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::rfc3339;
use dozor_store::{
    AlertStatus, Detection, ExceptionCondition, IncidentPatch, IncidentStatus, Level, NewEvent,
    NewException, NewIncident, NewObservable, ObservableKind, StoreConfig, now_ms,
};
use serde_json::json;
use uuid::Uuid;

const AGENTS: usize = 100;
const BATCH: usize = 5_000;
/// Event kinds, round robin: process, network, file, authentication.
const KINDS: usize = 4;
/// A host's process starts come every `KINDS * AGENTS` events.
const PROCESS_STRIDE: usize = KINDS * AGENTS;
/// Process starts per session tree (a shell and its descendants).
const TREE: usize = 10;
const INCIDENTS: usize = 200;
const ALERTS_PER_INCIDENT: usize = 8;

fn level(i: usize) -> Level {
    match i % 10 {
        0 => Level::Critical,
        1 | 2 => Level::High,
        3..=5 => Level::Medium,
        6 | 7 => Level::Low,
        _ => Level::Informational,
    }
}

fn host_of(i: usize) -> usize {
    (i / KINDS) % AGENTS
}

/// The entity id of a host's `n`th process start (Sysmon-style GUID).
fn entity(h: usize, n: usize) -> String {
    format!("{{5e1f0000-{h:04x}-4000-8000-{n:012x}}}")
}

/// The pid of a host's `n`th process (pids are reused: entity ids tell processes apart).
fn pid(n: usize) -> usize {
    2000 + (n * 7) % 30_000
}

/// The parent of a host's `n`th process start: within a tree of [`TREE`] starts, 0 is a login
/// shell under systemd (which has no start event), 1–3 its children, 4–6 children of 1,
/// 7–9 children of 4. `None`: systemd.
fn parent(n: usize) -> Option<usize> {
    let root = n - n % TREE;
    match n % TREE {
        0 => None,
        1..=3 => Some(root),
        4..=6 => Some(root + 1),
        _ => Some(root + 4),
    }
}

fn process(h: usize, n: usize, i: usize) -> serde_json::Value {
    let (executable, command_line) = if n.is_multiple_of(TREE) {
        ("/usr/bin/bash".to_owned(), "-bash".to_owned())
    } else {
        let exe = format!("/usr/bin/tool{}", n % 50);
        let cmd = format!("{exe} --run {i}");
        (exe, cmd)
    };
    let parent = match parent(n) {
        Some(p) => json!({"pid": pid(p), "entity_id": entity(h, p),
                          "executable": if p.is_multiple_of(TREE) { "/usr/bin/bash".to_owned() } else { format!("/usr/bin/tool{}", p % 50) }}),
        None => {
            json!({"pid": 1, "entity_id": format!("{{5e1f0000-{h:04x}-4000-9000-000000000001}}"),
                       "executable": "/usr/lib/systemd/systemd"})
        }
    };
    json!({"pid": pid(n), "entity_id": entity(h, n), "executable": executable,
           "name": executable.rsplit('/').next(), "command_line": command_line, "parent": parent})
}

fn event(i: usize, ts: i64) -> NewEvent {
    let h = host_of(i);
    let agent = format!("agent-{h:03}");
    let host = format!("ws-{h:03}");
    let at = rfc3339(ts);
    let doc = match i % KINDS {
        0 => json!({
            "@timestamp": at,
            "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "started", "dataset": "process"},
            "process": process(h, i / PROCESS_STRIDE, i),
            "user": {"name": if i.is_multiple_of(7) { "root" } else { "alice" }},
            "host": {"name": host, "os": {"type": "linux"}},
            "agent": {"id": agent},
        }),
        1 => json!({
            "@timestamp": at,
            "event": {"kind": "event", "category": ["network"], "type": ["connection"], "action": "connection-established", "dataset": "network"},
            "source": {"ip": "10.0.0.5", "port": 40000 + i % 20000},
            "destination": {"ip": format!("192.0.2.{}", i % 250 + 1), "port": 443},
            "network": {"transport": "tcp"},
            "host": {"name": host, "os": {"type": "linux"}},
            "agent": {"id": agent},
        }),
        2 => json!({
            "@timestamp": at,
            "event": {"kind": "event", "category": ["file"], "type": ["change"], "action": "modified", "dataset": "file"},
            "file": {"path": format!("/etc/app/conf{}.yml", i % 300), "name": format!("conf{}.yml", i % 300)},
            "host": {"name": host, "os": {"type": "linux"}},
            "agent": {"id": agent},
        }),
        _ => json!({
            "@timestamp": at,
            "event": {"kind": "event", "category": ["authentication"], "type": ["start"], "action": "ssh-login",
                      "outcome": if i.is_multiple_of(3) { "failure" } else { "success" }, "dataset": "auth"},
            "user": {"name": format!("user{}", i % 40)},
            "source": {"ip": format!("203.0.113.{}", i % 250 + 1)},
            "host": {"name": host, "os": {"type": "linux"}},
            "agent": {"id": agent},
        }),
    };
    NewEvent {
        id: Uuid::now_v7(),
        ts,
        received_at: ts,
        agent_id: Some(agent),
        doc,
    }
}

/// The event index of alert `m`'s detection: a process start of host `m % AGENTS` near
/// `m * stride`, so alerts spread over the whole week (any event when there are too few).
fn alert_target(m: usize, stride: usize, events: usize) -> usize {
    let h = m % AGENTS;
    if events <= KINDS * h {
        return m % events;
    }
    let last = (events - 1 - KINDS * h) / PROCESS_STRIDE;
    let n = (m * stride / PROCESS_STRIDE).min(last);
    n * PROCESS_STRIDE + KINDS * h
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: seed LOCATION EVENTS ALERTS");
        std::process::exit(2);
    }
    let events: usize = args[2].parse()?;
    let alerts: usize = args[3].parse()?;
    let store = dozor_store::open(&StoreConfig::from_location(&args[1])).await?;
    let now = now_ms();
    let span = 7 * 86_400_000i64;
    let ts_of = |k: usize| now - span + (span * k as i64) / events.max(1) as i64;
    let started = Instant::now();

    // (event index, alert number), in event order.
    let stride = (events / alerts.max(1)).max(1);
    let mut targets: Vec<(usize, usize)> = if events == 0 {
        Vec::new()
    } else {
        (0..alerts)
            .map(|m| (alert_target(m, stride, events), m))
            .collect()
    };
    targets.sort_unstable();
    let mut next_target = 0;
    // The detected event of each alert: its index.
    let mut detected: HashMap<Uuid, usize> = HashMap::with_capacity(alerts);

    let mut i = 0usize;
    while i < events {
        let n = BATCH.min(events - i);
        let batch: Vec<NewEvent> = (i..i + n).map(|k| event(k, ts_of(k))).collect();
        // One detection per (rule, host) pair: ALERTS distinct alerts.
        let mut detections = Vec::new();
        while let Some(&(k, m)) = targets.get(next_target)
            && k < i + n
        {
            next_target += 1;
            let rule = m / AGENTS;
            let target = &batch[k - i];
            let h = host_of(k);
            detected.insert(target.id, k);
            detections.push(Detection {
                rule_id: format!("bench-rule-{rule:03}"),
                rule_title: format!("Benchmark rule {rule:03}: suspicious activity"),
                level: level(rule),
                tags: vec![
                    "attack.execution".into(),
                    format!("attack.t{}", 1000 + rule % 600),
                ],
                agent_id: Some(format!("agent-{h:03}")),
                host: Some(format!("ws-{h:03}")),
                event_id: target.id,
                ts: target.ts,
            });
        }
        store
            .store_batch(&batch, &detections, Duration::from_secs(1))
            .await?;
        i += n;
        if i.is_multiple_of(100_000) || i == events {
            eprintln!(
                "{i} events, {next_target} detections ({:.0?})",
                started.elapsed()
            );
        }
    }

    // A third of the alerts move on in the workflow; remember each host's alerts.
    let mut page = store
        .list_alerts(&dozor_store::AlertQuery {
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let mut moved = 0usize;
    let mut made_alerts = 0usize;
    let mut by_host: HashMap<String, Vec<i64>> = HashMap::new();
    // An open alert on the deepest kind of process start (three ancestors, siblings).
    let mut deep_alert: Option<(i64, String, i64)> = None;
    loop {
        for a in &page.alerts {
            made_alerts += 1;
            let to = match a.id % 3 {
                0 => Some(AlertStatus::Acknowledged),
                1 => Some(AlertStatus::Resolved),
                _ => None,
            };
            if let Some(to) = to
                && a.id % 2 == 0
            {
                store.set_alert_status(a.id, to, "seed", None).await?;
                moved += 1;
            }
            if let Some(host) = &a.host {
                by_host.entry(host.clone()).or_default().push(a.id);
            }
            let k = a.event_ids.first().and_then(|e| detected.get(e));
            if let (Some(&k), Some(host)) = (k, &a.host)
                && (k / PROCESS_STRIDE) % TREE == 8
                && a.status == AlertStatus::New
                && to.is_none()
                && deep_alert.is_none()
            {
                deep_alert = Some((a.id, host.clone(), a.first_seen));
            }
        }
        let Some(cursor) = page.next_cursor.clone() else {
            break;
        };
        page = store
            .list_alerts(&dozor_store::AlertQuery {
                limit: 1000,
                cursor: Some(cursor),
                ..Default::default()
            })
            .await?;
    }
    eprintln!(
        "{made_alerts} alerts ({moved} moved on) ({:.0?})",
        started.elapsed()
    );

    // Incidents: two per host, each grouping eight of its alerts (the one on the alert page
    // stays out, so the page also offers "Add to incident").
    let mut hosts: Vec<&String> = by_host.keys().collect();
    hosts.sort();
    let mut first_incident = None;
    let mut incidents = 0usize;
    for c in 0..INCIDENTS {
        let Some(host) = hosts.get(c % hosts.len().max(1)) else {
            break;
        };
        let round = c / hosts.len();
        let ids: Vec<i64> = by_host[*host]
            .iter()
            .copied()
            .filter(|id| deep_alert.as_ref().is_none_or(|d| d.0 != *id))
            .skip(round * ALERTS_PER_INCIDENT)
            .take(ALERTS_PER_INCIDENT)
            .collect();
        if ids.is_empty() {
            continue;
        }
        let incident = store
            .create_incident(
                &NewIncident {
                    title: format!("Suspicious activity on {host} (case {c})"),
                    description: format!(
                        "Several benchmark rules fired on {host}; triage the process trees."
                    ),
                    severity: None,
                    owner: (c % 3 != 0).then(|| "seed".to_owned()),
                    alert_ids: ids,
                },
                "seed",
            )
            .await?;
        first_incident.get_or_insert(incident.id);
        let id = incident.id;
        for (t, title) in [
            "Isolate the host",
            "Collect triage package",
            "Reset credentials",
        ]
        .iter()
        .enumerate()
        {
            let task = store.add_incident_task(id, title, "seed").await?;
            if t < c % 4 {
                store.set_incident_task(id, task.id, true, "seed").await?;
            }
        }
        store
            .add_incident_note(
                id,
                "Looked at the first alert: not a known admin script.",
                "seed",
            )
            .await?;
        store
            .add_incident_note(id, "Waiting for the owner of the host.", "seed")
            .await?;
        for (kind, value) in [
            (ObservableKind::Host, (*host).clone()),
            (ObservableKind::Ip, format!("203.0.113.{}", c % 250 + 1)),
        ] {
            let o = NewObservable {
                kind,
                value,
                note: String::new(),
            };
            store.add_incident_observable(id, &o, "seed").await?;
        }
        let status = match c % 4 {
            0 => Some(IncidentStatus::InProgress),
            1 => Some(IncidentStatus::Closed),
            _ => None,
        };
        if status.is_some() {
            let patch = IncidentPatch {
                status,
                ..IncidentPatch::default()
            };
            store.update_incident(id, &patch, "seed").await?;
        }
        incidents += 1;
    }

    // A few exceptions: a rule on a host, a rule on an executable.
    for x in 0..5usize {
        let conditions = if x % 2 == 0 {
            vec![ExceptionCondition {
                field: "host.name".into(),
                value: format!("ws-{:03}", 90 + x),
            }]
        } else {
            vec![ExceptionCondition {
                field: "process.executable".into(),
                value: format!("/usr/bin/tool{}", 40 + x),
            }]
        };
        let e = NewException {
            rule_id: format!("bench-rule-{x:03}"),
            conditions,
            reason: "Known admin tooling (benchmark seed).".into(),
            expires_at: (x == 4).then_some(now + 30 * 86_400_000),
        };
        store.add_exception(&e, "seed").await?;
    }

    eprintln!(
        "seeded {events} events, {made_alerts} alerts ({moved} moved on), {incidents} incidents \
         and 5 exceptions in {:.1?}",
        started.elapsed()
    );
    if let Some((id, host, at)) = deep_alert {
        println!("ALERT={id}");
        println!("HOST={host}");
        println!("PIVOT_FROM={}", rfc3339(at - 15 * 60_000));
        println!("PIVOT_TO={}", rfc3339(at + 15 * 60_000));
    }
    if let Some(id) = first_incident {
        println!("INCIDENT={id}");
    }
    store.close().await;
    Ok(())
}
