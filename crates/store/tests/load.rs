//! Load test (ignored by default). Run in release mode:
//!
//! ```sh
//! cargo test -p dozor-store --release --test load -- --ignored --nocapture
//! DOZOR_LOAD_EVENTS=200000 cargo test ...            # fewer events
//! DOZOR_TEST_POSTGRES_URL=postgres://... cargo test -p dozor-store --release --test load \
//!     -- --ignored --nocapture load_postgres          # the same against PostgreSQL
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dozor_store::*;
use serde_json::json;
use uuid::Uuid;

const DAY: i64 = 86_400_000;
const START: i64 = 1_700_000_000_000;
const BATCH: usize = 1000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const PROCS: [&str; 12] = [
    "powershell.exe",
    "cmd.exe",
    "svchost.exe",
    "explorer.exe",
    "chrome.exe",
    "lsass.exe",
    "rundll32.exe",
    "wmiprvse.exe",
    "msedge.exe",
    "outlook.exe",
    "conhost.exe",
    "services.exe",
];
const USERS: [&str; 6] = [
    "SYSTEM",
    "alice",
    "bob",
    "Администратор",
    "svc_backup",
    "LOCAL SERVICE",
];
const CATS: [&str; 4] = ["process", "network", "file", "authentication"];

fn event(rng: &mut Rng, i: u64, total: u64) -> NewEvent {
    let ts = START + (i as i64) * (30 * DAY) / (total as i64) + (rng.next() % 1000) as i64;
    let agent = format!("agent-{:02}", rng.next() % 50);
    let proc_name = rng.pick(&PROCS);
    let user = rng.pick(&USERS);
    let cat = rng.pick(&CATS);
    // a rare marker in about 1 of 10,000 events
    let marker = if rng.next().is_multiple_of(10_000) {
        " -nop -w hidden zqxjrare"
    } else {
        ""
    };
    let code = match cat {
        "process" => "4688",
        "network" => "3",
        "file" => "11",
        _ => "4624",
    };
    NewEvent {
        id: Uuid::now_v7(),
        ts,
        received_at: ts + 150,
        agent_id: Some(agent.clone()),
        doc: json!({
            "@timestamp": ts,
            "event": {"kind": "event", "category": [cat], "type": ["start"], "action": format!("{cat}-event"), "code": code, "provider": "Microsoft-Windows-Security-Auditing"},
            "agent": {"id": agent},
            "host": {"name": format!("WS-{:04}", rng.next() % 500), "os": {"family": "windows"}},
            "process": {
                "name": proc_name,
                "pid": rng.next() % 65_536,
                "executable": format!("C:\\Windows\\System32\\{proc_name}"),
                "command_line": format!("{proc_name} /c {:016x}{marker}", rng.next()),
                "parent": {"name": rng.pick(&PROCS), "pid": rng.next() % 65_536},
                "hash": {"sha256": format!("{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next())}
            },
            "user": {"name": user, "domain": "CORP"},
            "winlog": {"channel": "Security", "event_id": code.parse::<u32>().unwrap_or(0), "record_id": i,
                       "event_data": {"SubjectUserName": user, "LogonType": (rng.next() % 12).to_string(), "TokenElevationType": "%%1936"}}
        }),
    }
}

async fn timed<T, F: Future<Output = T>>(label: &str, runs: usize, mut f: impl FnMut() -> F) -> T {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "  {label:<62} median {:>9.2} ms  (min {:.2}, max {:.2}, {runs} runs)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    last.expect("at least one run")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn load(store: Arc<dyn Store>, db_size: impl Fn() -> Option<u64>) {
    let total: u64 = std::env::var("DOZOR_LOAD_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    println!(
        "backend {:?}: inserting {total} events in batches of {BATCH} (store_batch, ~0.1% with a detection)",
        store.backend()
    );
    let started = Instant::now();
    let mut batch_times = Vec::new();
    let mut i = 0u64;
    let mut alerts = 0usize;
    while i < total {
        let n = (total - i).min(BATCH as u64);
        let events: Vec<NewEvent> = (0..n).map(|k| event(&mut rng, i + k, total)).collect();
        let detections: Vec<Detection> = events
            .iter()
            .filter(|e| e.doc["process"]["name"] == "rundll32.exe" && rng.next().is_multiple_of(80))
            .map(|e| Detection {
                rule_id: "proc_rundll32_susp".into(),
                rule_title: "Suspicious rundll32".into(),
                level: Level::High,
                tags: vec!["attack.t1218.011".into()],
                agent_id: e.agent_id.clone(),
                host: None,
                event_id: e.id,
                ts: e.ts,
            })
            .collect();
        let t = Instant::now();
        let r = store
            .store_batch(&events, &detections, Duration::from_secs(600))
            .await
            .expect("store batch");
        batch_times.push(t.elapsed());
        assert_eq!(r.inserted as u64, n);
        alerts += r.alerts_created;
        i += n;
    }
    let elapsed = started.elapsed();
    batch_times.sort();
    println!(
        "  inserted {total} events in {:.1} s = {:.0} events/s; batch commit p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {alerts} alerts opened",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        ms(batch_times[batch_times.len() / 2]),
        ms(batch_times[batch_times.len() * 99 / 100]),
        ms(batch_times[batch_times.len() - 1]),
    );
    if let Some(size) = db_size() {
        println!(
            "  database size {:.0} MiB ({:.0} bytes/event)",
            size as f64 / 1048576.0,
            size as f64 / total as f64
        );
    }

    let end = START + 30 * DAY;
    let search = |q: EventQuery| {
        let s = store.clone();
        async move { s.search_events(&q).await.expect("search") }
    };
    println!("searches (limit 100, newest first):");
    timed(
        "latest page, no filter",
        5,
        || search(EventQuery::default()),
    )
    .await;
    timed("latest page, agent filter", 5, || {
        search(EventQuery {
            agent_id: Some("agent-07".into()),
            ..Default::default()
        })
    })
    .await;
    timed(
        "one day + process.name:powershell.exe AND NOT user.name:SYSTEM",
        5,
        || {
            search(EventQuery {
                from: Some(end - 15 * DAY),
                to: Some(end - 14 * DAY),
                query: Some("process.name:powershell.exe AND NOT user.name:SYSTEM".into()),
                ..Default::default()
            })
        },
    )
    .await;
    timed(
        "all time: process.name:power* AND user.name:администратор",
        5,
        || {
            search(EventQuery {
                query: Some("process.name:power* AND user.name:администратор".into()),
                ..Default::default()
            })
        },
    )
    .await;
    timed("all time: event.code:4624 (indexed column)", 5, || {
        search(EventQuery {
            query: Some("event.code:4624".into()),
            ..Default::default()
        })
    })
    .await;
    let rare = timed(
        "all time: rare free text (1 in 10k events, full scan)",
        3,
        || {
            search(EventQuery {
                query: Some("zqxjrare".into()),
                ..Default::default()
            })
        },
    )
    .await;
    println!("    -> {} hits", rare.events.len());
    let rare = timed(
        "all time: rare field value *zqxjrare* (full scan)",
        3,
        || {
            search(EventQuery {
                query: Some("process.command_line:*zqxjrare*".into()),
                ..Default::default()
            })
        },
    )
    .await;
    println!("    -> {} hits", rare.events.len());
    let mut cursor = None;
    let t = Instant::now();
    for _ in 0..50 {
        let p = search(EventQuery {
            cursor: cursor.clone(),
            ..Default::default()
        })
        .await;
        cursor = p.next_cursor;
    }
    println!(
        "  {:<62} {:>9.2} ms per page",
        "cursor paging, 50 pages deep",
        ms(t.elapsed()) / 50.0
    );
    timed("histogram: 30 days, hourly buckets (720)", 3, || {
        let s = store.clone();
        async move {
            s.event_histogram(&HistogramQuery {
                from: START,
                to: end,
                bucket_ms: 3_600_000,
                ..Default::default()
            })
            .await
            .expect("histogram")
        }
    })
    .await;
    timed(
        "histogram: 30 days, daily, event.category:network",
        3,
        || {
            let s = store.clone();
            async move {
                s.event_histogram(&HistogramQuery {
                    from: START,
                    to: end,
                    bucket_ms: DAY,
                    query: Some("event.category:network".into()),
                    ..Default::default()
                })
                .await
                .expect("histogram")
            }
        },
    )
    .await;
    timed("stats (count(*) + alerts by status/level)", 3, || {
        let s = store.clone();
        async move { s.stats().await.expect("stats") }
    })
    .await;
    let t = Instant::now();
    let purged = store.purge_before(START + 3 * DAY).await.expect("purge");
    println!(
        "  purge oldest 10%: {} events in {:.1} s ({:.0} events/s)",
        purged.events,
        t.elapsed().as_secs_f64(),
        purged.events as f64 / t.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: run in release with --ignored --nocapture"]
async fn load_sqlite() {
    let h = common::sqlite().await;
    let path = match &h.raw {
        common::Raw::Sqlite(p) => p.clone(),
        common::Raw::Postgres { .. } => unreachable!(),
    };
    common::run(h, move |store, _| async move {
        load(store, move || {
            let wal = path.with_extension("db-wal");
            let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            Some(size(&path) + size(&wal))
        })
        .await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: run in release with --ignored --nocapture"]
async fn load_postgres() {
    let Some(h) = common::postgres().await else {
        eprintln!("skipped: {} not set", common::PG_ENV);
        return;
    };
    common::run(h, |store, _| async move { load(store, || None).await }).await;
}
