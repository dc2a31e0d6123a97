//! Fills a data directory (SQLite) or a PostgreSQL database with realistic events and alerts,
//! for the dashboard benchmark (bench/ui/run.sh):
//!
//! ```sh
//! cargo run --release -p dozor-store --example seed -- LOCATION EVENTS ALERTS
//! ```
//!
//! LOCATION is a data directory or a postgres:// URL. Events are process, network, file and
//! authentication events of 100 agents spread over the last 7 days; ALERTS distinct alerts
//! (rule × agent) are opened by detections on some of them, a third of them then
//! acknowledged or resolved.

use std::time::{Duration, Instant};

use dozor_store::{AlertStatus, Detection, Level, NewEvent, StoreConfig, now_ms};
use serde_json::json;
use uuid::Uuid;

const AGENTS: usize = 100;
const BATCH: usize = 5_000;

fn level(i: usize) -> Level {
    match i % 10 {
        0 => Level::Critical,
        1 | 2 => Level::High,
        3..=5 => Level::Medium,
        6 | 7 => Level::Low,
        _ => Level::Informational,
    }
}

fn event(i: usize, ts: i64) -> NewEvent {
    let agent = format!("agent-{:03}", i % AGENTS);
    let host = format!("ws-{:03}", i % AGENTS);
    let at = chrono_like(ts);
    let doc = match i % 4 {
        0 => json!({
            "@timestamp": at,
            "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "started", "dataset": "process"},
            "process": {"pid": 1000 + i % 30000, "executable": format!("/usr/bin/tool{}", i % 50),
                        "command_line": format!("/usr/bin/tool{} --run {}", i % 50, i),
                        "parent": {"pid": 1, "executable": "/usr/lib/systemd/systemd"}},
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

/// RFC 3339 (UTC, milliseconds) without a date library.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    let started = Instant::now();
    let mut made_alerts = 0usize;
    let mut i = 0usize;
    while i < events {
        let n = BATCH.min(events - i);
        let batch: Vec<NewEvent> = (i..i + n)
            .map(|k| event(k, now - span + (span * k as i64) / events as i64))
            .collect();
        // One detection per (rule, agent) pair until ALERTS pairs exist; the window keeps
        // them apart from later repeats.
        let mut detections = Vec::new();
        for k in (0..batch.len()).step_by(7) {
            if made_alerts >= alerts {
                break;
            }
            let rule = made_alerts / AGENTS;
            let agent = made_alerts % AGENTS;
            let target = &batch[k];
            detections.push(Detection {
                rule_id: format!("bench-rule-{rule:03}"),
                rule_title: format!("Benchmark rule {rule:03}: suspicious activity"),
                level: level(rule),
                tags: vec![
                    "attack.execution".into(),
                    format!("attack.t{}", 1000 + rule % 600),
                ],
                agent_id: Some(format!("agent-{agent:03}")),
                host: None,
                event_id: target.id,
                ts: target.ts,
            });
            made_alerts += 1;
        }
        store
            .store_batch(&batch, &detections, Duration::from_secs(1))
            .await?;
        i += n;
        if i.is_multiple_of(100_000) || i == events {
            eprintln!(
                "{i} events, {made_alerts} alerts ({:.0?})",
                started.elapsed()
            );
        }
    }
    // A third of the alerts move on in the workflow.
    let mut page = store
        .list_alerts(&dozor_store::AlertQuery {
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let mut moved = 0usize;
    loop {
        for a in &page.alerts {
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
        "seeded {events} events and {made_alerts} alerts ({moved} moved on) in {:.1?}",
        started.elapsed()
    );
    store.close().await;
    Ok(())
}
