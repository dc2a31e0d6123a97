//! The store side of bench/search (issue 19): millions of realistic Windows events, then the
//! searches analysts run, timed the way the events page runs them.
//!
//! ```sh
//! cargo run --release -p dozor-store --example search_bench -- seed LOCATION EVENTS [DAYS]
//! cargo run --release -p dozor-store --example search_bench -- amplify LOCATION FACTOR
//! cargo run --release -p dozor-store --example search_bench -- run LOCATION [RUNS]
//! ```
//!
//! LOCATION is a data directory (SQLite) or a postgres:// URL. `seed` stores EVENTS events
//! spread over the DAYS (default 30) before now through the store's own insert path (so the
//! indexed columns are derived exactly as the server derives them): 2,000 hosts (100 busy
//! servers and 1,900 workstations, each with its owner), Sysmon and Security events in
//! realistic proportions (process starts, network connections, DNS, file and registry
//! changes, logons and failed logons), ~45 process names with a long tail, internal and
//! external addresses, PowerShell with encoded commands, and two marker words for keyword
//! searches: `kb5034441` in about 1 of 100,000 events and `zqxjrare` in about 1 of 1,000,000.
//!
//! `amplify` multiplies the stored events FACTOR times inside the database (each copy a new id
//! and its time moved by a few tens of milliseconds, the derived columns copied with the
//! document): the 10,000,000-event store in minutes instead of an hour of the insert path. The
//! copies repeat the seeded documents, so value distributions stay the same and every value is
//! FACTOR times as frequent.
//!
//! `run` times each query RUNS times (default 20; the value varies per run — another host,
//! user or address — so the page cache does not answer the same rows every time) and prints
//! p50 / p95 / max. A "page" is what `GET /ui/events` does: for an all-time search the span of
//! the matching events first, then the page of 100 newest rows and the histogram together.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::rfc3339;
use dozor_store::{EventQuery, HistogramQuery, NewEvent, Store, StoreConfig, now_ms};
use serde_json::{Value, json};
use uuid::Uuid;

const BATCH: usize = 5_000;
const DAY: i64 = 86_400_000;
const SERVERS: u64 = 100;
const WORKSTATIONS: u64 = 1_900;
/// Buckets the events page aims for (`HISTOGRAM_BUCKETS` in the server's ui/pages.rs).
const HISTOGRAM_BUCKETS: i64 = 120;

/// xorshift64: deterministic, fast, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    /// An item of a weighted list.
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (item, w) in items {
            if x < *w {
                return *item;
            }
            x -= w;
        }
        items[0].0
    }
}

/// Process names with a long tail (weights are per mille of process events, roughly).
const PROCESSES: &[(&str, u32)] = &[
    ("svchost.exe", 180),
    ("chrome.exe", 90),
    ("msedge.exe", 60),
    ("explorer.exe", 50),
    ("conhost.exe", 45),
    ("backgroundtaskhost.exe", 35),
    ("runtimebroker.exe", 35),
    ("searchprotocolhost.exe", 30),
    ("outlook.exe", 30),
    ("teams.exe", 30),
    ("powershell.exe", 28),
    ("cmd.exe", 28),
    ("taskhostw.exe", 25),
    ("wmiprvse.exe", 22),
    ("msmpeng.exe", 20),
    ("lsass.exe", 18),
    ("services.exe", 16),
    ("winword.exe", 15),
    ("excel.exe", 15),
    ("onedrive.exe", 14),
    ("dllhost.exe", 14),
    ("rundll32.exe", 12),
    ("sppsvc.exe", 10),
    ("spoolsv.exe", 10),
    ("smartscreen.exe", 9),
    ("wininit.exe", 8),
    ("winlogon.exe", 8),
    ("csrss.exe", 8),
    ("firefox.exe", 8),
    ("1cv8.exe", 8),
    ("java.exe", 7),
    ("python.exe", 5),
    ("git.exe", 5),
    ("code.exe", 5),
    ("sqlservr.exe", 5),
    ("w3wp.exe", 5),
    ("mstsc.exe", 4),
    ("regsvr32.exe", 3),
    ("mshta.exe", 2),
    ("certutil.exe", 2),
    ("schtasks.exe", 2),
    ("wscript.exe", 2),
    ("bitsadmin.exe", 1),
    ("psexesvc.exe", 1),
    ("net.exe", 3),
];
const DOMAINS: &[&str] = &[
    "update.microsoft.com",
    "login.microsoftonline.com",
    "www.google.com",
    "yandex.ru",
    "mail.corp.local",
    "dc01.corp.local",
    "fileserver.corp.local",
    "1c.corp.local",
    "api.telegram.org",
    "github.com",
    "cdn.jsdelivr.net",
    "gosuslugi.ru",
];
const SERVICE_ACCOUNTS: &[(&str, u32)] = &[
    ("SYSTEM", 50),
    ("LOCAL SERVICE", 15),
    ("NETWORK SERVICE", 15),
    ("svc_backup", 5),
    ("svc_sql", 5),
    ("Администратор", 3),
    ("adm-ivanov", 4),
    ("adm-petrova", 3),
];

#[derive(Clone, Copy)]
enum Kind {
    ProcessStart,
    Network,
    Dns,
    File,
    Registry,
    Logon,
    LogonFailed,
    SecurityProcess,
    SpecialLogon,
}

const KINDS: &[(Kind, u32)] = &[
    (Kind::ProcessStart, 15),
    (Kind::Network, 20),
    (Kind::Dns, 10),
    (Kind::File, 10),
    (Kind::Registry, 10),
    (Kind::Logon, 15),
    (Kind::LogonFailed, 2),
    (Kind::SecurityProcess, 13),
    (Kind::SpecialLogon, 5),
];

/// Host number: 30% of the events come from the 100 servers.
fn pick_host(rng: &mut Rng) -> u64 {
    if rng.below(10) < 3 {
        rng.below(SERVERS)
    } else {
        SERVERS + rng.below(WORKSTATIONS)
    }
}

fn host_name(h: u64) -> String {
    if h < SERVERS {
        format!("srv-{h:03}")
    } else {
        format!("ws-{:04}", h - SERVERS)
    }
}

/// A workstation's owner; servers have none (service and admin accounts only).
fn owner(h: u64) -> Option<String> {
    (h >= SERVERS).then(|| format!("user{:04}", h - SERVERS))
}

fn host_ip(h: u64) -> String {
    format!(
        "10.{}.{}.{}",
        1 + h / 250 / 250,
        (h / 250) % 250,
        h % 250 + 1
    )
}

/// Where connections go: 60% to a few internal servers, the rest to ~50,000 public addresses.
fn destination_ip(rng: &mut Rng) -> String {
    if rng.below(10) < 6 {
        host_ip(rng.below(SERVERS))
    } else {
        public_address(rng.below(PUBLIC_ADDRESSES))
    }
}

const PUBLIC_ADDRESSES: u64 = 50_000;

/// The `x`th of the public addresses connections go to.
fn public_address(x: u64) -> String {
    format!(
        "{}.{}.{}.{}",
        31 + x % 190,
        (x / 190) % 256,
        (x * 7) % 256,
        1 + x % 250
    )
}

fn user_of(rng: &mut Rng, h: u64) -> String {
    match owner(h) {
        Some(o) if rng.below(10) < 6 => o,
        _ => rng.weighted(SERVICE_ACCOUNTS).to_owned(),
    }
}

fn base64ish(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..len)
        .map(|_| ALPHABET[rng.below(64) as usize] as char)
        .collect()
}

fn command_line(rng: &mut Rng, name: &str, marker: &str) -> String {
    let arg = rng.next();
    match name {
        "powershell.exe" if rng.chance(5) => format!(
            "powershell.exe -NoProfile -ExecutionPolicy Bypass -EncodedCommand {}{marker}",
            base64ish(rng, 48)
        ),
        "powershell.exe" => format!(
            "powershell.exe -File C:\\Scripts\\task{}.ps1{marker}",
            arg % 40
        ),
        "cmd.exe" => format!("cmd.exe /c echo {arg:x} > %TEMP%\\out.txt{marker}"),
        "svchost.exe" => format!(
            "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Svc{}{marker}",
            arg % 30
        ),
        "rundll32.exe" => format!(
            "rundll32.exe C:\\Windows\\System32\\shell32.dll,Control_RunDLL {arg:x}{marker}"
        ),
        _ => format!("\"C:\\Program Files\\App\\{name}\" --session {arg:016x}{marker}"),
    }
}

fn event(rng: &mut Rng, ts: i64) -> NewEvent {
    let h = pick_host(rng);
    let host = host_name(h);
    let agent = format!("agent-{h:04}");
    let marker = if rng.chance(1_000_000) {
        " zqxjrare"
    } else if rng.chance(100_000) {
        " kb5034441"
    } else {
        ""
    };
    let user = user_of(rng, h);
    let name = rng.weighted(PROCESSES);
    let pid = 1000 + rng.below(60_000);
    let process = json!({
        "name": name,
        "pid": pid,
        "executable": format!("C:\\Windows\\System32\\{name}"),
        "command_line": command_line(rng, name, marker),
        "entity_id": format!("{{5e1f{h:04x}-{:04x}-{:04x}-0000-{:012x}}}", rng.below(65_536), pid % 65_536, rng.next() >> 16),
        "parent": {"name": rng.weighted(PROCESSES), "pid": 1000 + rng.below(60_000)},
    });
    let at = rfc3339(ts);
    let common = |code: u32, provider: &str, category: &str, action: &str| {
        json!({
            "@timestamp": at,
            "event": {"kind": "event", "category": [category], "action": action, "code": code.to_string(), "provider": provider},
            "host": {"name": host, "ip": [host_ip(h)], "os": {"family": "windows"}},
            "agent": {"id": agent},
        })
    };
    let sysmon = "Microsoft-Windows-Sysmon";
    let security = "Microsoft-Windows-Security-Auditing";
    let mut doc = match rng.weighted(KINDS) {
        Kind::ProcessStart => {
            let mut d = common(1, sysmon, "process", "process-created");
            d["process"] = process;
            d["user"] = json!({"name": user, "domain": "CORP"});
            d
        }
        Kind::Network => {
            let mut d = common(3, sysmon, "network", "network-connection");
            d["process"] = process;
            d["user"] = json!({"name": user, "domain": "CORP"});
            d["source"] = json!({"ip": host_ip(h), "port": 49152 + rng.below(16_000)});
            let port = [443, 80, 445, 3389, 53, 88, 389][rng.below(7) as usize];
            d["destination"] = json!({"ip": destination_ip(rng), "port": port});
            d["network"] = json!({"transport": "tcp", "direction": "egress"});
            d
        }
        Kind::Dns => {
            let mut d = common(22, sysmon, "network", "dns-query");
            d["process"] = process;
            let domain = DOMAINS[rng.below(DOMAINS.len() as u64) as usize];
            d["dns"] = json!({"question": {"name": format!("{}{domain}", if rng.chance(3) { format!("n{}.", rng.below(500)) } else { String::new() })}});
            d
        }
        Kind::File => {
            let mut d = common(11, sysmon, "file", "file-created");
            d["process"] = process;
            d["file"] = json!({"path": format!("C:\\Users\\{}\\AppData\\Local\\Temp\\{:x}.tmp{marker}", owner(h).unwrap_or_else(|| "Public".into()), rng.next() % 1_000_000)});
            d
        }
        Kind::Registry => {
            let mut d = common(13, sysmon, "registry", "registry-value-set");
            d["process"] = process;
            d["registry"] = json!({"path": format!("HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\App{}", rng.below(200))});
            d
        }
        Kind::Logon | Kind::LogonFailed => {
            let failed = matches!(rng.weighted(KINDS), Kind::LogonFailed) || rng.chance(8);
            let (code, action) = if failed {
                (4625, "logon-failed")
            } else {
                (4624, "logged-in")
            };
            let mut d = common(code, security, "authentication", action);
            d["event"]["outcome"] = json!(if failed { "failure" } else { "success" });
            d["user"] = json!({"name": user, "domain": "CORP"});
            d["source"] = json!({"ip": host_ip(pick_host(rng))});
            let logon_type = ["2", "3", "5", "10"][rng.below(4) as usize];
            d["winlog"] = json!({"channel": "Security", "event_id": code, "event_data": {"TargetUserName": user, "LogonType": logon_type}});
            d
        }
        Kind::SecurityProcess => {
            let mut d = common(4688, security, "process", "process-created");
            d["process"] = process;
            d["user"] = json!({"name": user, "domain": "CORP"});
            d["winlog"] = json!({"channel": "Security", "event_id": 4688, "event_data": {"SubjectUserName": user, "TokenElevationType": "%%1936"}});
            d
        }
        Kind::SpecialLogon => {
            let mut d = common(4672, security, "iam", "special-logon");
            d["user"] = json!({"name": user, "domain": "CORP"});
            d["winlog"] = json!({"channel": "Security", "event_id": 4672, "event_data": {"PrivilegeList": "SeDebugPrivilege SeBackupPrivilege"}});
            d
        }
    };
    if !marker.is_empty() && doc.get("process").is_none() {
        doc["message"] = Value::String(format!("note{marker}"));
    }
    NewEvent {
        id: Uuid::now_v7(),
        ts,
        received_at: ts + 200,
        agent_id: Some(agent),
        doc,
    }
}

async fn seed(store: &dyn Store, total: u64, days: i64) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let end = now_ms();
    let span = days * DAY;
    let started = Instant::now();
    let mut i = 0u64;
    let mut last_report = Instant::now();
    while i < total {
        let n = (total - i).min(BATCH as u64);
        let batch: Vec<NewEvent> = (i..i + n)
            .map(|k| {
                let ts = end - span + (span * k as i64) / total as i64;
                event(&mut rng, ts)
            })
            .collect();
        store.insert_events(&batch).await?;
        i += n;
        if last_report.elapsed() > Duration::from_secs(10) || i == total {
            last_report = Instant::now();
            let rate = i as f64 / started.elapsed().as_secs_f64();
            eprintln!(
                "seed: {i} / {total} events ({rate:.0}/s, {:.0?} elapsed)",
                started.elapsed()
            );
        }
    }
    println!(
        "seeded {total} events over {days} days in {:.1} s ({:.0} events/s)",
        started.elapsed().as_secs_f64(),
        total as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

const COPIED_COLUMNS: &str = "ts, received_at, agent_id, kind, category, action, code, host_name, \
    entity_id, parent_entity_id, user_name, process_name, source_ip, destination_ip, doc";

/// The copied columns with the copy's times moved by `by` milliseconds (each copy: a new id,
/// its time moved by `k × 37 ms`).
fn shifted(columns: &str, by: &str) -> String {
    columns.replacen(
        "ts, received_at",
        &format!("ts + {by}, received_at + {by}"),
        1,
    )
}

async fn amplify(location: &str, factor: u32) -> Result<(), Box<dyn std::error::Error>> {
    use sqlx::{AssertSqlSafe, Connection};
    let started = Instant::now();
    // PostgreSQL keeps an event's words in its row (copied along); SQLite in the FTS5 index,
    // which can't give them back: the copies are listed as pending and the store indexes them
    // when it opens, as it does after an upgrade.
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        let mut conn = sqlx::PgConnection::connect(location).await?;
        // The word index is built once after the copies, as a bulk build (inserting 9 × 40
        // million words into it one row at a time is what an upgrade never does either).
        sqlx::query("DROP INDEX IF EXISTS events_words")
            .execute(&mut conn)
            .await?;
        for k in 1..factor {
            // Originals have UUIDv7 ids (the seed's), copies random (v4) ones.
            let columns = format!("{COPIED_COLUMNS}, words");
            let sql = format!(
                "INSERT INTO events (id, {columns}) SELECT gen_random_uuid(), {} FROM events \
                 WHERE substr(id::text, 15, 1) = '7'",
                shifted(&columns, &format!("{k} * 37"))
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
            eprintln!(
                "amplify: copy {k} of {} ({:.0?})",
                factor - 1,
                started.elapsed()
            );
        }
        let indexing = Instant::now();
        sqlx::query("SET maintenance_work_mem = '1GB'")
            .execute(&mut conn)
            .await?;
        sqlx::query("CREATE INDEX events_words ON events USING GIN (words)")
            .execute(&mut conn)
            .await?;
        eprintln!(
            "amplify: built the word index in {:.0?}",
            indexing.elapsed()
        );
        sqlx::query("VACUUM ANALYZE events")
            .execute(&mut conn)
            .await?;
    } else {
        let path = std::path::Path::new(location).join("dozor.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .pragma("cache_size", "-262144");
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        let originals: i64 = sqlx::query_scalar("SELECT max(seq) FROM events")
            .fetch_one(&mut conn)
            .await?;
        let (first, last): (i64, i64) =
            sqlx::query_as("SELECT min(ts), max(ts) FROM events WHERE seq <= ?")
                .bind(originals)
                .fetch_one(&mut conn)
                .await?;
        // Events arrive in about the order of their time, and SQLite's keyword lookups lean
        // on that (`event_hours`): the copies are written a day at a time, all of a day's
        // copies (the originals again among them) in time order, then the originals go. So
        // every hour's events sit together in arrival order, as a server's ingest leaves
        // them, instead of in `factor` places far apart.
        let columns = shifted(COPIED_COLUMNS, "ks.k * 37");
        let mut day = first;
        while day <= last {
            let sql = format!(
                "WITH RECURSIVE ks(k) AS (VALUES (0) UNION ALL SELECT k + 1 FROM ks WHERE k + 1 < {factor}) \
                 INSERT INTO events (id, {COPIED_COLUMNS}) SELECT randomblob(16), {columns} \
                 FROM events AS e, ks WHERE e.seq <= {originals} AND e.ts >= {day} AND e.ts < {} \
                 ORDER BY e.ts + ks.k * 37",
                day + DAY
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await?;
            eprintln!(
                "amplify: day {} of {} ({:.0?})",
                (day - first) / DAY + 1,
                (last - first) / DAY + 1,
                started.elapsed()
            );
            day += DAY;
        }
        sqlx::query("DELETE FROM events WHERE seq <= ?")
            .bind(originals)
            .execute(&mut conn)
            .await?;
        sqlx::query("DELETE FROM event_hours")
            .execute(&mut conn)
            .await?;
        sqlx::query(
            "INSERT INTO event_hours (hour, first_seq, last_seq) \
             SELECT (ts - ((ts % 3600000) + 3600000) % 3600000) / 3600000, min(seq), max(seq) \
             FROM events GROUP BY 1",
        )
        .execute(&mut conn)
        .await?;
        sqlx::query(
            "INSERT INTO event_words_pending (first_seq, last_seq) \
             SELECT ?, max(seq) FROM events HAVING max(seq) > ?",
        )
        .bind(originals + 1)
        .bind(originals)
        .execute(&mut conn)
        .await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let indexing = Instant::now();
        let store = dozor_store::open(&StoreConfig::from_location(location)).await?;
        store.close().await;
        eprintln!(
            "amplify: indexed the copies' words in {:.0?}",
            indexing.elapsed()
        );
    }
    println!(
        "amplified {factor}x in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One timed query: its text for run `k`, and its time range.
struct Case {
    group: &'static str,
    label: &'static str,
    range: Range,
    query: fn(u64) -> String,
}

#[derive(Clone, Copy)]
enum Range {
    Days(i64),
    AllTime,
}

fn ws(k: u64) -> u64 {
    SERVERS + (k * 97) % WORKSTATIONS
}

const CASES: &[Case] = &[
    Case {
        group: "field, 7 days",
        label: "host.name:\"ws-NNNN\"",
        range: Range::Days(7),
        query: |k| format!("host.name:\"{}\"", host_name(ws(k))),
    },
    Case {
        group: "field, 7 days",
        label: "user.name:\"userNNNN\"",
        range: Range::Days(7),
        query: |k| format!("user.name:\"{}\"", owner(ws(k)).unwrap_or_default()),
    },
    Case {
        group: "field, 7 days",
        label: "process.name:<one of 45>",
        range: Range::Days(7),
        query: |k| {
            format!(
                "process.name:\"{}\"",
                PROCESSES[(k as usize * 7) % PROCESSES.len()].0
            )
        },
    },
    Case {
        group: "field, 7 days",
        label: "source.ip:<a workstation>",
        range: Range::Days(7),
        query: |k| format!("source.ip:\"{}\"", host_ip(ws(k))),
    },
    Case {
        group: "field, 7 days",
        label: "destination.ip:<a public address>",
        range: Range::Days(7),
        query: |k| {
            format!(
                "destination.ip:\"{}\"",
                public_address((k * 7919) % PUBLIC_ADDRESSES)
            )
        },
    },
    Case {
        group: "field, 7 days",
        label: "event.code:4625 AND user.name:<user>",
        range: Range::Days(7),
        query: |k| {
            format!(
                "event.code:4625 AND user.name:\"{}\"",
                owner(ws(k)).unwrap_or_default()
            )
        },
    },
    Case {
        group: "field, 7 days",
        label: "process.name:powershell.exe AND host.name:<host>",
        range: Range::Days(7),
        query: |k| {
            format!(
                "process.name:powershell.exe AND host.name:\"{}\"",
                host_name(ws(k))
            )
        },
    },
    Case {
        group: "keyword, 24 h",
        label: "rare word (1 in 100,000)",
        range: Range::Days(1),
        query: |_| "kb5034441".to_owned(),
    },
    Case {
        group: "keyword, 24 h",
        label: "word in no event",
        range: Range::Days(1),
        query: |k| format!("nosuchword{k}"),
    },
    Case {
        group: "keyword, 24 h",
        label: "common word (encodedcommand)",
        range: Range::Days(1),
        query: |_| "encodedcommand".to_owned(),
    },
    Case {
        group: "keyword, 24 h",
        label: "a word's start (kb503, 1 in 100,000)",
        range: Range::Days(1),
        query: |_| "kb503".to_owned(),
    },
    Case {
        group: "keyword, 24 h",
        label: "phrase \"powershell.exe -NoProfile\" (words + the text)",
        range: Range::Days(1),
        query: |_| "\"powershell.exe -NoProfile\"".to_owned(),
    },
    Case {
        group: "keyword, 7 days",
        label: "rare word (1 in 100,000)",
        range: Range::Days(7),
        query: |_| "kb5034441".to_owned(),
    },
    Case {
        group: "field, all events",
        label: "host.name:\"ws-NNNN\"",
        range: Range::AllTime,
        query: |k| format!("host.name:\"{}\"", host_name(ws(k))),
    },
    Case {
        group: "field, all events",
        label: "user.name:\"userNNNN\"",
        range: Range::AllTime,
        query: |k| format!("user.name:\"{}\"", owner(ws(k)).unwrap_or_default()),
    },
    Case {
        group: "field, all events",
        label: "process.name:<rare: psexesvc/bitsadmin/mshta>",
        range: Range::AllTime,
        query: |k| {
            format!(
                "process.name:\"{}\"",
                ["psexesvc.exe", "bitsadmin.exe", "mshta.exe"][k as usize % 3]
            )
        },
    },
    Case {
        group: "field, all events",
        label: "destination.ip:<a public address>",
        range: Range::AllTime,
        query: |k| {
            format!(
                "destination.ip:\"{}\"",
                public_address((k * 7919) % PUBLIC_ADDRESSES)
            )
        },
    },
    Case {
        group: "field, all events",
        label: "event.code:4625 AND user.name:<user>",
        range: Range::AllTime,
        query: |k| {
            format!(
                "event.code:4625 AND user.name:\"{}\"",
                owner(ws(k)).unwrap_or_default()
            )
        },
    },
    Case {
        group: "not indexed, 7 days",
        label: "winlog.event_data.LogonType:10 AND host.name:<host>",
        range: Range::Days(7),
        query: |k| {
            format!(
                "winlog.event_data.LogonType:10 AND host.name:\"{}\"",
                host_name(ws(k))
            )
        },
    },
    Case {
        group: "not indexed, 7 days",
        label: "process.command_line:*encodedcommand* (scan)",
        range: Range::Days(7),
        query: |_| "process.command_line:*encodedcommand*".to_owned(),
    },
];

/// The histogram bucket the events page picks for a span (simplified: whole minutes, hours
/// or days giving at most [`HISTOGRAM_BUCKETS`]).
fn bucket_for(span: i64) -> i64 {
    [
        60_000, 300_000, 900_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, DAY,
    ]
    .into_iter()
    .find(|b| (span + b - 1) / b <= HISTOGRAM_BUCKETS)
    .unwrap_or(DAY * ((span / HISTOGRAM_BUCKETS) / DAY + 1))
}

struct Timing {
    page: Duration,
    search: Duration,
    rows: usize,
}

/// What the events page does for one query.
async fn page(
    store: &Arc<dyn Store>,
    range: Range,
    q: String,
    now: i64,
) -> Result<Timing, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let (from, hist_from, hist_to) = match range {
        Range::Days(d) => (Some(now - d * DAY), now - d * DAY, now),
        Range::AllTime => match store.event_span(None, Some(&q), None).await? {
            Some((lo, hi)) => (None, lo, hi + 1),
            None => (None, now - 30 * DAY, now),
        },
    };
    let bucket = bucket_for(hist_to - hist_from);
    let search = EventQuery {
        from,
        to: None,
        query: Some(q.clone()),
        limit: 100,
        ..Default::default()
    };
    let histogram = HistogramQuery {
        from: hist_from.div_euclid(bucket) * bucket,
        to: hist_to,
        bucket_ms: bucket,
        query: Some(q),
        ..Default::default()
    };
    let timed_search = async {
        let t = Instant::now();
        let r = store.search_events(&search).await;
        (r, t.elapsed())
    };
    let ((found, search_time), counted) =
        tokio::join!(timed_search, store.event_histogram(&histogram));
    let found = found?;
    counted?;
    Ok(Timing {
        page: started.elapsed(),
        search: search_time,
        rows: found.events.len(),
    })
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    let i = ((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn run(store: Arc<dyn Store>, runs: u64) -> Result<(), Box<dyn std::error::Error>> {
    let total = store.count_events(None, None).await?;
    if total == 0 {
        return Err("no events stored: seed first".into());
    }
    let now = now_ms();
    println!(
        "{total} events stored; {runs} runs per query; times in ms (page = span for all time + page of 100 and histogram together)"
    );
    println!();
    println!("| group | query | page p50 | page p95 | page max | search p95 | rows (last run) |");
    println!("|---|---|---|---|---|---|---|");
    // One untimed pass: the first touch of each index comes from disk.
    for case in CASES {
        page(&store, case.range, (case.query)(runs), now).await?;
    }
    for case in CASES {
        let mut pages = Vec::new();
        let mut searches = Vec::new();
        let mut rows = 0;
        for k in 0..runs {
            let t = page(&store, case.range, (case.query)(k), now).await?;
            pages.push(t.page);
            searches.push(t.search);
            rows = t.rows;
        }
        pages.sort();
        searches.sort();
        println!(
            "| {} | `{}` | {:.1} | {:.1} | {:.1} | {:.1} | {rows} |",
            case.group,
            case.label,
            pct(&pages, 50),
            pct(&pages, 95),
            pct(&pages, 100),
            pct(&searches, 95),
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: search_bench seed LOCATION EVENTS [DAYS] | amplify LOCATION FACTOR | run LOCATION [RUNS]";
    let (Some(command), Some(location)) = (args.get(1), args.get(2)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    if command == "amplify" {
        let factor: u32 = args.get(3).ok_or(usage)?.parse()?;
        return amplify(location, factor).await;
    }
    // The server's default search timeout (30 s) would cut off the slowest scans; they are
    // measured to the end here.
    let config = StoreConfig::from_location(location).with_search_timeout(Duration::from_secs(600));
    let store = dozor_store::open(&config).await?;
    match command.as_str() {
        "seed" => {
            let total: u64 = args.get(3).ok_or(usage)?.parse()?;
            let days: i64 = args.get(4).map_or(Ok(30), |d| d.parse())?;
            seed(store.as_ref(), total, days).await?;
        }
        "run" => {
            let runs: u64 = args.get(3).map_or(Ok(20), |r| r.parse())?;
            run(store.clone(), runs).await?;
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
    store.close().await;
    Ok(())
}
