//! Every page rendered in both languages for every role with realistic sample data (hundreds
//! of rows): structure, rights, escaping, charts, translations.

use std::collections::HashMap;

use dozor_model::{
    Agent, AgentCommand, AgentFacts, Alert, AlertStatus, Approval, ApprovalStatus, AuditEntry,
    CommandStatus, Comment, HistogramBucket, Host, IntelMatch, IntelSource, IntelSyncStatus,
    IocSourceRef, IocView, Level, PlayView, PlaybookError, PlaybookRun, PlaybookRunStatus,
    PlaybookStep, PlaybookView, Role, StatusChange, StoredEvent, StoredIoc, TokenInfo, User,
};
use serde_json::json;
use uuid::Uuid;

use crate::catalog::CATALOG;
use crate::*;

const NOW: i64 = 1_795_000_000_000; // 2026-11-18
const CSRF: &str = "c5rf70k3n";
const XSS: &str = "<script>alert('x')</script>";

fn ctx(lang: Lang, role: Role, path: &str) -> PageCtx {
    PageCtx {
        lang,
        username: match role {
            Role::Admin => "админ".to_owned(),
            Role::Analyst => "petrova".to_owned(),
            _ => "viewer1".to_owned(),
        },
        role,
        csrf_token: CSRF.to_owned(),
        path_and_query: path.to_owned(),
        flash: Some("flash.status_changed".to_owned()),
        now: NOW,
    }
}

const TITLES: [&str; 6] = [
    "Suspicious Encoded PowerShell Command Line",
    "Mimikatz Use",
    "Вход под учётной записью администратора ночью",
    "Shadow Copies Deletion Using Operating Systems Utilities",
    "Linux Reverse Shell Indicator",
    "<img src=x onerror=alert(1)>",
];

fn alert(i: i64) -> Alert {
    let level = Level::ALL[(i % 5) as usize];
    Alert {
        id: i + 1,
        rule_id: format!("rule-{}", i % 17),
        rule_title: TITLES[(i % 6) as usize].to_owned(),
        level,
        tags: vec![
            "attack.execution".to_owned(),
            "attack.t1059.001".to_owned(),
            "attack.defense-evasion".to_owned(),
            "cve.2021-44228".to_owned(),
        ],
        agent_id: (i % 7 != 0).then(|| format!("agent-{}", i % 40)),
        host: (i % 5 != 0).then(|| format!("WS-{:02}", i % 40)),
        first_seen: NOW - 3_600_000 * (i % 48) - 600_000,
        last_seen: NOW - 3_600_000 * (i % 48),
        count: 1 + i * 37 % 5000,
        event_ids: vec![],
        status: AlertStatus::ALL[(i % 4) as usize],
        assignee: (i % 3 == 0).then(|| "petrova".to_owned()),
        created_at: NOW - 3_600_000 * (i % 48) - 500_000,
        updated_at: NOW,
    }
}

fn event(i: i64) -> StoredEvent {
    let cmd = if i == 3 {
        format!("powershell.exe -c \"{XSS}\"")
    } else {
        format!("C:\\Windows\\System32\\cmd.exe /c whoami /priv #{i}")
    };
    StoredEvent {
        id: Uuid::from_u128(0x1234_0000 + i as u128),
        ts: NOW - i * 61_000,
        received_at: NOW - i * 61_000 + 300,
        agent_id: Some(format!("agent-{}", i % 40)),
        doc: json!({
            "@timestamp": "2026-11-18T10:00:00Z",
            "event": {"kind": "event", "category": ["process"], "action": "process_started", "code": "4688"},
            "host": {"name": format!("ws-{:03}.corp.local", i % 40)},
            "user": {"name": if i % 4 == 0 { "SYSTEM" } else { "иванов" }},
            "process": {"name": "cmd.exe", "pid": 4000 + i, "command_line": cmd,
                        "parent": {"name": "explorer.exe"}},
            "source": {"ip": format!("10.0.{}.{}", i % 3, i % 250)},
            "winlog": {"channel": "Security", "event_id": 4688,
                       "event_data": {"NewProcessName": "C:\\Windows\\System32\\cmd.exe"}},
        }),
    }
}

fn agent(i: i64) -> AgentRow {
    let status = [
        AgentStatus::Online,
        AgentStatus::Online,
        AgentStatus::Degraded,
        AgentStatus::Offline,
        AgentStatus::Revoked,
    ][(i % 5) as usize];
    AgentRow {
        agent: Agent {
            id: format!("agent-{i}"),
            facts: AgentFacts {
                hostname: format!("ws-{i:03}.corp.local"),
                os_type: if i % 2 == 0 { "windows" } else { "linux" }.to_owned(),
                os_name: Some(
                    if i % 2 == 0 {
                        "Windows 11 Pro"
                    } else {
                        "Astra Linux"
                    }
                    .to_owned(),
                ),
                os_version: Some("10.0.22631".to_owned()),
                arch: Some("x86_64".to_owned()),
                agent_version: "0.1.0".to_owned(),
                ips: (0..(i % 6)).map(|k| format!("10.1.{i}.{k}")).collect(),
            },
            enrolled_at: NOW - 40 * 86_400_000,
            enrolled_by: "token:1".to_owned(),
            cert_sha256: "ab".repeat(32),
            cert_not_after: NOW + (i % 400) * 86_400_000,
            reenrolled_at: (i % 9 == 0).then_some(NOW - 86_400_000),
            last_seen: NOW - (i % 5) * 100_000,
            last_heartbeat: Some(json!({
                "isolation": match i % 4 {
                    2 => json!({"phase": "isolated", "command_id": "c-1", "since_unix_ms": NOW - 3_600_000, "auto_release_at_unix_ms": NOW + 7_200_000}),
                    3 => json!({"phase": "applying", "command_id": "c-2", "since_unix_ms": NOW - 5_000}),
                    _ => serde_json::Value::Null,
                },
                "resources": {
                    "cpu_percent": 37.5, "cpu_count": 8,
                    "memory_total_bytes": 17_179_869_184u64, "memory_used_bytes": 9_663_676_416u64,
                    "memory_available_bytes": 7_516_192_768u64,
                    "swap_total_bytes": 2_147_483_648u64, "swap_used_bytes": 104_857_600u64,
                    "load_average": [0.52, 0.61, 0.7],
                    "disks": [{"mount": "/", "fs_type": "ext4", "total_bytes": 512_000_000_000u64, "used_bytes": 480_000_000_000u64},
                              {"mount": "/home", "fs_type": "ext4", "total_bytes": 1_000_000_000_000u64, "used_bytes": 100_000_000_000u64}],
                    "uptime_secs": 356_400,
                    "top_cpu": [{"pid": 1234, "name": XSS, "cpu_percent": 12.5, "rss_bytes": 104_857_600u64}],
                    "top_memory": [{"pid": 99, "name": "postgres", "cpu_percent": 0.5, "rss_bytes": 2_147_483_648u64}]
                }
            })),
            health: if i % 5 == 2 {
                vec!["collector fim: inotify watch limit reached".to_owned()]
            } else {
                vec![]
            },
            offline_since: (status == AgentStatus::Offline).then_some(NOW - 900_000),
            revoked_at: (status == AgentStatus::Revoked).then_some(NOW - 86_400_000),
            revoked_by: (status == AgentStatus::Revoked).then(|| "админ".to_owned()),
        },
        status,
    }
}

/// An on-demand scan in each status; the done ones found something (XSS in the data).
fn command(i: i64) -> AgentCommand {
    let status = CommandStatus::ALL[(i % 5) as usize];
    let done = status == CommandStatus::Done;
    AgentCommand {
        id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128),
        agent_id: "agent-2".to_owned(),
        kind: "scan_path".to_owned(),
        args: json!({"path": format!("/srv/www/{XSS}/{i}"), "recursive": i % 2 == 0}),
        status,
        requested_by: "petrova".to_owned(),
        created_at: NOW - i * 600_000,
        delivered_at: (status != CommandStatus::Pending).then_some(NOW - i * 600_000 + 30_000),
        attempts: match status {
            CommandStatus::Pending => 0,
            CommandStatus::Expired => 3,
            _ => 1,
        },
        finished_at: status.is_final().then_some(NOW - i * 600_000 + 90_000),
        result: done.then(|| {
            json!({
                "files_scanned": 1203, "files_skipped": 4, "bytes": 73_400_320, "duration_ms": 5120,
                "detections": (0..7).map(|k| json!({
                    "path": format!("/srv/www/{XSS}/{k}.php"), "engine": "yara",
                    "name": format!("webshell_{k}"), "severity": "high", "verdict": "malicious",
                })).collect::<Vec<_>>(),
                "errors": ["/srv/www/private: permission denied"],
            })
        }),
        error: (status == CommandStatus::Failed).then(|| format!("{XSS}: no such file")),
    }
}

fn rule(i: i64) -> RuleRow {
    RuleRow {
        id: format!("rule-{i}"),
        title: TITLES[(i % 6) as usize].to_owned(),
        description: "Detects a suspicious command line <b>bold</b>".to_owned(),
        level: (i % 11 != 0).then(|| Level::ALL[(i % 5) as usize]),
        status: Some(["stable", "test", "experimental", "deprecated"][(i % 4) as usize].to_owned()),
        kind: ["detection", "correlation", "filter"][(i % 3) as usize].to_owned(),
        outcome: ["active", "active", "unrouted", "unsupported", "invalid"][(i % 5) as usize]
            .to_owned(),
        reason: (i % 5 >= 2).then(|| "no logsource mapping for product: bsd".to_owned()),
        tags: vec![
            "attack.credential_access".to_owned(),
            "attack.t1003.001".to_owned(),
        ],
        author: "Florian Roth".to_owned(),
        path: format!("rules/windows/rule_{i}.yml"),
        product: Some("windows".to_owned()),
        category: Some("process_creation".to_owned()),
        service: None,
        enabled: i % 7 != 0,
        hit_count: i * 13,
        last_hit: (i % 2 == 0).then_some(NOW - i * 60_000),
    }
}

fn playbook(i: i64) -> PlaybookView {
    PlaybookView {
        name: ["notify-operator", "quarantine-host", "broken", "<b>x</b>"][(i % 4) as usize]
            .to_owned()
            + &if i >= 4 {
                format!("-{i}")
            } else {
                String::new()
            },
        origin: if i % 2 == 0 { "file" } else { "api" }.to_owned(),
        enabled: i % 3 != 0,
        updated_at: NOW - i * 86_400_000,
        updated_by: "админ".to_owned(),
        error: (i % 4 == 2).then(|| PlaybookError {
            file: "broken.yml".to_owned(),
            line: 7,
            column: 5,
            reason: format!("unknown module {XSS}"),
        }),
        plays: if i % 4 == 2 {
            vec![]
        } else {
            vec![
                PlayView {
                    name: "Сообщить дежурному".to_owned(),
                    tasks: 3,
                    triggers: vec!["alert: on created, level ≥ high".to_owned()],
                },
                PlayView {
                    name: "Изолировать".to_owned(),
                    tasks: 1,
                    triggers: vec!["manual".to_owned()],
                },
            ]
        },
        manual: i % 4 != 2,
        source: Some(format!(
            "- name: изоляция\n  tasks:\n    - debug: {{msg: '{XSS}'}}\n"
        )),
    }
}

fn run(i: i64) -> PlaybookRun {
    let status = PlaybookRunStatus::ALL[(i % 3) as usize];
    PlaybookRun {
        id: format!("0190a-run-{i}"),
        playbook: "quarantine-host".to_owned(),
        trigger: ["alert", "manual", "schedule"][(i % 3) as usize].to_owned(),
        alert_id: (i % 2 == 0).then_some(5),
        agent_id: Some("agent-2".to_owned()),
        requested_by: "petrova".to_owned(),
        dry_run: i % 5 == 0,
        status,
        error: (status == PlaybookRunStatus::Failed).then(|| format!("step failed: {XSS}")),
        vars: json!({"reason": XSS}),
        started_at: NOW - i * 60_000,
        finished_at: (status != PlaybookRunStatus::Running).then_some(NOW - i * 60_000 + 5_000),
        steps: 4,
    }
}

fn step(i: u32) -> PlaybookStep {
    let status = ["ok", "failed", "ignored", "skipped", "dry_run"][(i % 5) as usize];
    PlaybookStep {
        run_id: "0190a-run-1".to_owned(),
        seq: i,
        status: status.to_owned(),
        record: json!({
            "play": "Изоляция", "path": format!("tasks[{i}]"), "task": format!("шаг {i}"),
            "module": if i == 0 { "agent.isolate_host" } else { "notify.webhook" },
            "item": if i == 2 { json!("10.0.0.1") } else { serde_json::Value::Null },
            "status": status,
            "input": {"reason": XSS}, "output": {"command_id": "c-1", "note": XSS},
            "error": if status == "failed" { json!(format!("boom {XSS}")) } else { serde_json::Value::Null },
            "attempts": 1,
            "approval": if i == 0 { json!({"decision": "approved", "by": "иванов", "comment": XSS}) } else { serde_json::Value::Null },
            "started_at_ms": NOW - 10_000, "finished_at_ms": NOW - 9_000, "duration_ms": 1500 * i as u64,
        }),
    }
}

fn approval(i: i64) -> Approval {
    let status = ApprovalStatus::ALL[(i % 4) as usize];
    let direct = i % 2 == 1;
    Approval {
        id: format!("0190b-appr-{i}"),
        run_id: (!direct).then(|| "0190a-run-1".to_owned()),
        playbook: (!direct).then(|| "quarantine-host".to_owned()),
        action: if direct {
            "isolate_host"
        } else {
            "agent.isolate_host"
        }
        .to_owned(),
        target: if direct {
            json!({"agent_id": "agent-2", "kind": "isolate_host", "args": {"reason": XSS, "allow_hosts": ["10.0.0.9"]}})
        } else {
            json!({"agent_id": "agent-2", "reason": XSS})
        },
        reason: format!("критическое оповещение {XSS}"),
        requested_by: "petrova".to_owned(),
        other_approver: i % 3 == 0,
        status,
        created_at: NOW - i * 120_000,
        expires_at: NOW + 3_000_000 - i * 120_000,
        decided_at: (status != ApprovalStatus::Pending).then_some(NOW - 60_000),
        decided_by: matches!(status, ApprovalStatus::Approved | ApprovalStatus::Rejected)
            .then(|| "иванов".to_owned()),
        comment: (status == ApprovalStatus::Rejected).then(|| format!("нет {XSS}")),
        command_id: (direct && status == ApprovalStatus::Approved).then(|| "17".to_owned()),
    }
}

fn response_panel() -> ResponsePanel {
    ResponsePanel {
        available: true,
        manual_playbooks: vec!["quarantine-host".to_owned(), XSS.to_owned()],
        runs: (0..6).map(run).collect(),
        pending: vec![approval(0), approval(4)],
    }
}

fn overview_view() -> OverviewView {
    OverviewView {
        alerts_per_hour: (0..24)
            .map(|h| LevelBucket {
                start: NOW - (24 - h) * 3_600_000,
                counts: [
                    h as u64 % 3,
                    5,
                    (h as u64 * 7) % 11,
                    h as u64 % 4,
                    u64::from(h == 20) * 3,
                ],
            })
            .collect(),
        open_by_level: Level::ALL
            .iter()
            .map(|l| (*l, 7 * (*l as u64 + 1)))
            .collect(),
        alerts_by_status: AlertStatus::ALL.iter().map(|s| (*s, 12)).collect(),
        top_rules: (0..10)
            .map(|i| TopRule {
                rule_id: format!("rule-{i}"),
                title: TITLES[i % 6].to_owned(),
                level: Level::ALL[i % 5],
                alerts: 100 - i as u64,
                detections: 1_234_567 - i as u64,
            })
            .collect(),
        agents: AgentCounts {
            online: 1210,
            degraded: 3,
            offline: 17,
            revoked: 2,
        },
        ingest: (0..96)
            .map(|i| HistogramBucket {
                start: NOW - (96 - i) * 900_000,
                count: 1000 + (i as u64 * 37) % 500,
            })
            .collect(),
        ingest_bucket_ms: 900_000,
        events_total: 1_000_000,
        events_last_24h: 123_456,
        rules: RuleCounts {
            total: 3100,
            active_enabled: 2400,
            disabled: 12,
            not_active: 688,
        },
    }
}

fn alerts_view() -> AlertsView {
    let mut params = AlertsParams::parse(&[]);
    params.cursor = Some("cur0".to_owned());
    AlertsView {
        params,
        alerts: (0..300).map(alert).collect(),
        agent_names: (0..40)
            .map(|i| (format!("agent-{i}"), format!("ws-{i:03}.corp.local")))
            .collect(),
        next_cursor: Some("next+cursor/=".to_owned()),
        total: 1234,
        error: None,
    }
}

fn host(i: i64) -> Host {
    Host {
        name: if i == 0 {
            XSS.to_owned()
        } else {
            format!("WS-{i:02}")
        },
        agent_id: (i % 2 == 0).then(|| format!("agent-{i}")),
        first_seen: 1_600_000_000_000 + i,
        last_seen: 1_700_000_000_000 + i,
        last_received: 1_760_000_000_000,
        events: 1000 + i,
        open_alerts: i % 4,
        alerts: i % 4 + 2,
    }
}

fn exceptions_view() -> ExceptionsView {
    ExceptionsView {
        exceptions: (0..12)
            .map(|i| dozor_model::AlertException {
                id: i + 1,
                rule_id: format!("rule-{i}"),
                conditions: vec![
                    dozor_model::ExceptionCondition {
                        field: "host.name".into(),
                        value: if i == 0 {
                            XSS.into()
                        } else {
                            format!("WS-{i:02}")
                        },
                    },
                    dozor_model::ExceptionCondition {
                        field: "user.name".into(),
                        value: "svc_backup".into(),
                    },
                ],
                reason: format!("nightly backup {XSS}"),
                created_by: "petrova".into(),
                created_at: NOW - i * 86_400_000,
                expires_at: (i % 3 != 0).then_some(NOW + (i - 6) * 86_400_000),
                suppressed: i * 37,
                last_suppressed_at: (i > 0).then_some(NOW - i * 60_000),
            })
            .collect(),
        rule_titles: (0..12)
            .map(|i| (format!("rule-{i}"), TITLES[i % 6].to_owned()))
            .collect(),
    }
}

fn hosts_view() -> HostsView {
    HostsView {
        search: String::new(),
        hosts: (0..60).map(host).collect(),
        agent_names: (0..60)
            .map(|i| (format!("agent-{i}"), format!("ws-{i:02}.corp.local")))
            .collect(),
        truncated: true,
    }
}

fn incident(i: i64) -> dozor_model::Incident {
    dozor_model::Incident {
        id: i + 1,
        title: if i == 0 {
            XSS.into()
        } else {
            TITLES[(i % 6) as usize].into()
        },
        description: format!("notes {XSS}"),
        severity: dozor_model::IncidentSeverity::ALL[(i % 4) as usize],
        status: dozor_model::IncidentStatus::ALL[(i % 4) as usize],
        owner: (i % 2 == 0).then(|| "ann".to_owned()),
        created_by: "ann".into(),
        created_at: 1_700_000_000_000 + i * 60_000,
        updated_at: 1_700_000_000_000 + i * 120_000,
        closed_at: None,
        alert_count: i * 3,
        tasks_total: 4,
        tasks_done: i % 5,
    }
}

fn incidents_view() -> IncidentsView {
    IncidentsView {
        show: "active".into(),
        incidents: (0..40).map(incident).collect(),
        suggestions: vec![dozor_model::IncidentSuggestion {
            host: XSS.into(),
            alert_ids: vec![1, 2, 3],
            alert_count: 3,
            level: Level::High,
            first_seen: 1_700_000_000_000,
            last_seen: 1_700_000_600_000,
        }],
    }
}

fn incident_view() -> IncidentPageView {
    IncidentPageView {
        detail: dozor_model::IncidentDetail {
            incident: incident(0),
            alerts: (0..6).map(alert).collect(),
            tasks: (0..3)
                .map(|i| dozor_model::IncidentTask {
                    id: i + 1,
                    title: format!("{} {XSS}", TITLES[i as usize]),
                    done: i == 0,
                    created_by: "ann".into(),
                    created_at: 1_700_000_000_000,
                    done_by: (i == 0).then(|| "bob".to_owned()),
                    done_at: (i == 0).then_some(1_700_000_100_000),
                })
                .collect(),
            notes: vec![dozor_model::IncidentNote {
                id: 1,
                author: "bob".into(),
                body: XSS.into(),
                created_at: 1_700_000_200_000,
            }],
            observables: vec![dozor_model::Observable {
                id: 1,
                kind: dozor_model::ObservableKind::Ip,
                value: "203.0.113.9".into(),
                note: XSS.into(),
                added_by: "bob".into(),
                added_at: 1_700_000_300_000,
            }],
            history: vec![dozor_model::IncidentChange {
                id: 1,
                actor: "ann".into(),
                action: "status".into(),
                detail: "open → in_progress".into(),
                created_at: 1_700_000_050_000,
            }],
            playbook_runs: vec![],
        },
        owners: vec!["ann".into(), "bob".into()],
    }
}

fn host_view() -> HostDetailView {
    HostDetailView {
        host: host(1),
        agent: None,
        alerts: (0..20).map(alert).collect(),
        events: (0..30).map(event).collect(),
        timeline: (0..14)
            .map(|d| HistogramBucket {
                start: 1_700_000_000_000 + d * 86_400_000,
                count: (d * 37 % 11) as u64,
            })
            .collect(),
        vulns: (0..4).map(stored_vuln).collect(),
    }
}

#[test]
fn alert_list_says_how_many_in_all_and_shows_hosts_and_both_times() {
    for lang in [Lang::En, Lang::Ru] {
        let html = alerts(&ctx(lang, Role::Analyst, "/ui/alerts"), &alerts_view());
        let text = visible(&html);
        let heading = match lang {
            Lang::En => "300 of 1,234 alerts",
            Lang::Ru => "300 из 1\u{a0}234 алертов",
        };
        let head = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let head = head.split("Язык EN").last().unwrap_or(&head).to_owned();
        assert!(
            text.contains(heading),
            "{lang:?}: {}",
            head.chars().take(400).collect::<String>()
        );
        assert!(
            html.contains("href=\"/ui/hosts/WS-01\""),
            "host column links the host"
        );
        let detected = match lang {
            Lang::En => "Detected",
            Lang::Ru => "Обнаружен",
        };
        assert!(text.contains(detected));
        // The bulk bar comes before the table, not after a long page.
        let bar = html.find("bulk-bar").expect("bulk bar");
        let table = html.find("alerts-table").expect("table");
        assert!(bar < table);
    }
    let mut by_detection = alerts_view();
    by_detection.params.by = dozor_model::AlertTime::Detected;
    let html = alerts(&ctx(Lang::En, Role::Analyst, "/ui/alerts"), &by_detection);
    assert!(
        html.contains("name=\"by\" value=\"detected\"")
            || html.contains("value=\"detected\" selected")
    );
    assert!(
        html.contains("by=detected"),
        "sort and paging links keep the time basis"
    );
}

#[test]
fn host_pages_link_alerts_and_events_of_the_host() {
    let html = host_detail(
        &ctx(Lang::En, Role::Viewer, "/ui/hosts/WS-01"),
        &host_view(),
    );
    let events = host_events_href("WS-01", None);
    assert!(
        events.starts_with("/ui/events?q=host.name%3AWS-01") && events.contains("range=all"),
        "{events}"
    );
    assert!(
        html.contains(&events.replace('&', "&#38;")),
        "events of the host"
    );
    let around = host_events_href("WS-01", Some((1_700_000_000_000, 1_700_000_000_000)));
    assert!(
        around.contains("range=custom") && around.contains("from=2023-11-14T21%3A58%3A20"),
        "{around}"
    );
    assert!(html.contains("host=WS-01"), "alerts of the host");
    assert!(html.contains("<svg"), "activity chart");
    let list = hosts(&ctx(Lang::Ru, Role::Viewer, "/ui/hosts"), &hosts_view());
    assert!(visible(&list).contains("60 хостов"));
    assert!(
        list.contains("ws-02.corp.local"),
        "agent column names the agent"
    );
    assert!(
        list.contains("загруженные журналы"),
        "hosts of uploaded logs say so"
    );
}

fn sample_tree() -> dozor_model::process_tree::ProcessTree {
    use dozor_model::process_tree::{ProcessNode, ProcessTree};
    let node = |i: u64, name: &str| ProcessNode {
        entity_id: Some(format!("{{G-{i}}}")),
        pid: Some(100 + i),
        name: name.to_owned(),
        command_line: Some(format!("{name} {XSS}")),
        user: Some("CORP\\ivan".to_owned()),
        ts: 1_700_000_000_000 + i as i64 * 1000,
        event_id: format!("e{i}"),
        ..ProcessNode::default()
    };
    ProcessTree {
        ancestors: vec![node(0, "explorer.exe"), node(1, "cmd.exe")],
        focus: node(3, "powershell.exe"),
        siblings: vec![node(2, "whoami.exe")],
        children: vec![node(4, "rundll32.exe")],
    }
}

#[test]
fn the_process_tree_shows_every_level_in_order() {
    let html = alert_detail(
        &ctx(Lang::Ru, Role::Viewer, "/ui/alerts/5"),
        &alert_detail_view(),
    );
    let tree = html.split("class=\"process-tree\"").nth(1).expect("tree");
    let order: Vec<usize> = [
        "explorer.exe",
        "cmd.exe",
        "whoami.exe",
        "powershell.exe",
        "rundll32.exe",
    ]
    .iter()
    .map(|n| tree.find(n).unwrap_or_else(|| panic!("{n}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert!(tree.contains("depth-3"), "children one level below");
    assert!(tree.contains("Дерево процессов") || html.contains("Дерево процессов"));
    assert!(!tree.contains("<script>"), "command lines are escaped");
}

fn alert_detail_view() -> AlertDetailView {
    let mut a = alert(4);
    a.rule_title = XSS.to_owned();
    AlertDetailView {
        alert: a,
        rule: Some(rule(4)),
        agent_name: Some("ws-004.corp.local".to_owned()),
        process_tree: Some(sample_tree()),
        incident: Some(7),
        events: (0..100)
            .map(|i| {
                let mut e = event(i);
                if i < 3 {
                    e.doc["threat"] = threat_doc(i);
                }
                e
            })
            .collect(),
        missing_events: 3,
        comments: (0..20)
            .map(|i| Comment {
                id: i,
                alert_id: 5,
                author: "petrova".to_owned(),
                body: if i == 1 {
                    XSS.to_owned()
                } else {
                    "Проверила: это плановое обновление.".to_owned()
                },
                created_at: NOW - 1000 * i,
            })
            .collect(),
        history: vec![
            StatusChange {
                id: 1,
                alert_id: 5,
                actor: "petrova".to_owned(),
                from: AlertStatus::New,
                to: AlertStatus::Acknowledged,
                note: Some("смотрю".to_owned()),
                changed_at: NOW - 5000,
            },
            StatusChange {
                id: 2,
                alert_id: 5,
                actor: "petrova".to_owned(),
                from: AlertStatus::Acknowledged,
                to: AlertStatus::Resolved,
                note: None,
                changed_at: NOW - 4000,
            },
        ],
        assignees: vec!["petrova".to_owned(), "админ".to_owned()],
        response: response_panel(),
    }
}

fn anomalies_view() -> AnomaliesView {
    let anomaly = |i: i64| {
        let hourly = i % 3 == 0;
        let kind = ["volume_spike", "unusual_logon_hour", "rare_process"][(i % 3) as usize];
        let mut anomaly = serde_json::json!({
            "kind": kind,
            "score": 0.97,
            "entity_field": if i % 3 == 1 { "user.name" } else { "host.name" },
            "entity": format!("ws-{i:02}{XSS}"),
            "observed": format!("mimikatz.exe{XSS}"),
            "expected": "one of 17 known values (most frequent: svchost.exe)",
            "baseline": {"first_seen": "2026-11-01T00:00:00Z", "observations": 1159, "distinct_days": 11},
            "events_query": format!("host.name:\"ws-{i:02}\""),
            "details": {"value": format!("mimikatz.exe{XSS}"), "value_count": "0",
                        "distinct_values": "17", "usual": "svchost.exe, chrome.exe",
                        "other_entities_with_value": "0", "weekday": "Thu", "hour": "1",
                        "usual_hours": "09,10,11", "weekday_percent": "100",
                        "count_in_hour": "0", "observations": "40", "count": "57",
                        "expected": "0.500", "baseline_buckets": "10",
                        "tail_probability": "1.2e-9"},
        });
        if hourly {
            anomaly["window"] = serde_json::json!({"from": "2026-11-17T10:00:00Z"});
        } else {
            anomaly["source_event"] = serde_json::json!("0190a-src");
        }
        dozor_model::StoredEvent {
            id: uuid::Uuid::from_u128(i as u128),
            ts: NOW - i * 600_000,
            received_at: NOW,
            agent_id: None,
            doc: serde_json::json!({"message": format!("never seen {XSS}"), "anomaly": anomaly}),
        }
    };
    AnomaliesView {
        kind: String::new(),
        entity: String::new(),
        range: Range::Days7,
        from: Some(NOW - 7 * 86_400_000),
        to: NOW,
        anomalies: (0..30).map(anomaly).collect(),
        next_cursor: Some("next".into()),
        per_kind: vec![("rare_process".into(), 10), ("volume_spike".into(), 3)],
        models: AnomalyModelsView {
            state: "scoring".into(),
            lookback_days: 14,
            alert_score: Some(0.95),
            trained_at: Some(NOW - 3_600_000),
            training_events: 1_000_000,
            training_first: Some(NOW - 14 * 86_400_000),
            training_last: Some(NOW - 3_600_000),
            next_training: Some(NOW + 82_800_000),
            scored_events: 5000,
            findings: 13,
            alerts: 13,
            last_run: Some(NOW - 30_000),
            last_error: Some(XSS.to_owned()),
            models: vec![(
                "rare_process".into(),
                "rare_value".into(),
                "host.name".into(),
                250,
            )],
        },
    }
}

fn searches_view() -> SavedSearchesView {
    SavedSearchesView {
        searches: (0..30)
            .map(|i| dozor_model::SavedSearch {
                id: i,
                name: format!("<script>search {i}</script>"),
                query: format!("process.name:\"<b>{i}</b>\""),
                params: dozor_model::SavedSearchParams {
                    range: Some(if i % 2 == 0 { "7d" } else { "custom" }.into()),
                    from: (i % 2 == 1).then(|| "now-2h".into()),
                    to: None,
                    agent: None,
                    columns: vec!["host.name".into(), "user.name".into()],
                },
                owner: if i % 3 == 0 { "petrova" } else { "someone" }.into(),
                shared: i % 2 == 0,
                created_at: NOW - 86_400_000,
                updated_at: NOW - 3_600_000,
                last_run_at: (i % 4 == 0).then_some(NOW - 60_000),
            })
            .collect(),
    }
}

fn events_view() -> EventsView {
    EventsView {
        params: EventsParams::parse(&[("q".to_owned(), "process.name:cmd.exe".to_owned())]),
        query_error: None,
        error: None,
        histogram: (0..96)
            .map(|i| HistogramBucket {
                start: NOW - 86_400_000 + i * 900_000,
                count: (i as u64 * 13) % 200,
            })
            .collect(),
        bucket_ms: 900_000,
        events: (0..500).map(event).collect(),
        next_cursor: Some("evcursor".to_owned()),
        agent_names: HashMap::new(),
    }
}

fn users_view() -> UsersView {
    UsersView {
        users: (0..60)
            .map(|i| User {
                id: i,
                username: if i == 0 {
                    "админ".to_owned()
                } else {
                    format!("user{i}")
                },
                role: [Role::Admin, Role::Analyst, Role::Viewer][(i % 3) as usize],
                language: None,
                created_at: NOW - i * 86_400_000,
                created_by: "bootstrap".to_owned(),
                updated_at: NOW,
                last_login_at: (i % 2 == 0).then_some(NOW - i * 60_000),
                disabled_at: (i % 10 == 9).then_some(NOW - 1000),
            })
            .collect(),
        new_password: Some(OneTimeSecret {
            name: "user5".to_owned(),
            secret: "Pa55-w0rd-<x>".to_owned(),
        }),
    }
}

fn audit_view() -> AuditView {
    AuditView {
        entries: (0..200)
            .map(|i| AuditEntry {
                id: 1000 - i,
                at: NOW - i * 30_000,
                actor: "petrova".to_owned(),
                action: ["alert.status", "rule.disable", "login", "custom.thing"][(i % 4) as usize]
                    .to_owned(),
                target: Some(format!("alert:{i}")),
                details: if i % 2 == 0 {
                    json!({"from": "new", "to": "resolved", "x": XSS})
                } else {
                    json!({})
                },
            })
            .collect(),
        actor: String::new(),
        action: String::new(),
        next_before: Some(800),
        paged: true,
    }
}

fn profile_view(role: Role) -> ProfileView {
    ProfileView {
        language: Some(Lang::Ru),
        tokens: (0..5)
            .map(|i| TokenInfo {
                id: i,
                name: format!("script {i}"),
                role,
                created_at: NOW - 86_400_000,
                expires_at: if i == 1 {
                    Some(NOW - 1)
                } else {
                    Some(NOW + 86_400_000)
                },
                last_used_at: None,
                revoked_at: (i == 2).then_some(NOW - 5),
                owner: Some(1),
            })
            .collect(),
        new_token: Some(OneTimeSecret {
            name: "script 4".to_owned(),
            secret: "dzt_secret".to_owned(),
        }),
    }
}

/// An event's `threat` object as the pipeline's intel stage writes it (with hostile values),
/// or (for `i == 2`) a lone indicator from elsewhere, without an id.
fn threat_doc(i: i64) -> serde_json::Value {
    if i == 2 {
        return json!({"indicator": {"type": "ipv4-addr", "ip": "198.51.100.7",
            "provider": format!("ext-{XSS}")}});
    }
    json!({
        "feed": {"name": "circl-osint"},
        "enrichments": [
            {"indicator": {"type": "domain-name", "url": {"domain": format!("evil{XSS}.example")},
                "confidence": "High", "marking": {"tlp": "AMBER"}, "provider": "circl-osint"},
             "matched": {"atomic": "evil.example", "field": "dns.question.name", "id": "42",
                "type": "indicator_match_rule"},
             "feed": {"name": "circl-osint"},
             "dozor": {"ioc_id": 42, "sources": ["circl-osint", "manual"],
                "tags": ["tlp:amber", format!("misp-galaxy:{XSS}")], "to_ids": true,
                "warninglists": ["<b>bold list</b>"]}},
            {"indicator": {"type": "file", "file": {"hash": {"sha256": "ab".repeat(32)}},
                "confidence": "Medium"},
             "matched": {"atomic": "ab".repeat(32), "field": "file.hash.sha256", "id": "43"},
             "feed": {"name": "manual"},
             "dozor": {"ioc_id": 43, "sources": ["manual"], "tags": [], "warninglists": []}},
        ],
    })
}

const IOC_KIND_SAMPLES: [&str; 5] = ["domain", "ip", "sha256", "url", "filename"];

fn ioc(i: i64) -> IocView {
    let kind = IOC_KIND_SAMPLES[(i % 5) as usize];
    let value = match i {
        1 => format!("{XSS}.example"),
        _ => match kind {
            "ip" => format!("203.0.113.{}", i % 250),
            "sha256" => format!("{:064x}", i),
            "url" => format!("https://bad{i}.example/x?a=1&b=2"),
            "filename" => format!("payload{i}.exe"),
            _ => format!("c2-{i}.example"),
        },
    };
    let mut sources = vec![IocSourceRef {
        name: "circl-osint".to_owned(),
        object_ids: vec![
            format!("misp-event:5f0c-{i}"),
            format!("misp-attribute:77aa-{i}"),
        ],
        added_at: NOW - 86_400_000 * (i % 40),
        seen_at: NOW - 3_600_000,
    }];
    if i % 3 == 0 {
        sources.push(IocSourceRef {
            name: "manual".to_owned(),
            object_ids: vec![format!("comment: {XSS}")],
            added_at: NOW - 600_000,
            seen_at: NOW - 600_000,
        });
    }
    let stored = StoredIoc {
        id: i + 1,
        kind: kind.to_owned(),
        value,
        misp_type: (i % 2 == 0).then(|| "ip-dst".to_owned()),
        to_ids: i % 4 != 1,
        tags: if i == 1 {
            vec![format!("tag{XSS}"), "tlp:amber".to_owned()]
        } else {
            (0..(i % 9))
                .map(|t| format!("misp-galaxy:threat-actor=\"APT{t}\""))
                .collect()
        },
        confidence: (i % 5 != 0).then_some((i * 13 % 101) as u8),
        first_seen: Some(NOW - 86_400_000 * (i % 60)),
        last_seen: (i % 2 == 0).then_some(NOW - 86_400_000 * (i % 20)),
        expires: match i % 6 {
            0 => Some(NOW - 1000),
            1 => Some(NOW + 86_400_000 * 30),
            _ => None,
        },
        enabled: i % 7 != 3,
        warninglists: if i % 8 == 2 {
            vec!["List of known <b>bold</b> resolvers".to_owned()]
        } else {
            vec![]
        },
        sources,
        sightings: (i * 3 % 11) as u64,
        last_sighting: (i % 3 == 1).then_some(NOW - 120_000),
        created_at: NOW - 86_400_000 * 70,
        updated_at: NOW - 60_000 * i,
    };
    IocView::of(stored, NOW)
}

fn intel_match(i: i64) -> MatchView {
    MatchView {
        matched: IntelMatch {
            id: 1000 - i,
            ioc_id: i % 10 + 1,
            kind: "domain".to_owned(),
            value: if i == 2 {
                format!("{XSS}.example")
            } else {
                format!("c2-{}.example", i % 10)
            },
            event_id: format!("0190a-ev-{i}"),
            field: "dns.question.name".to_owned(),
            observed: if i == 2 {
                format!("<b>bold</b>{XSS}")
            } else {
                format!("C2-{}.example", i % 10)
            },
            agent_id: (i % 4 != 0).then(|| format!("agent-{}", i % 3)),
            event_ts: NOW - 60_000 * i - 5000,
            matched_at: NOW - 60_000 * i,
            retro: i % 5 == 0,
            alerted: i % 6 != 5,
            sighting: ["none", "pending", "sent", "failed"][(i % 4) as usize].to_owned(),
        },
        alert_id: (i % 3 == 0).then_some(100 + i),
        rule_id: Some("dozor-intel/circl-osint/domain".to_owned()),
    }
}

fn intel_source(i: i64) -> IntelSource {
    let kind = ["misp_feed", "misp_rest", "csv", "stix_bundle"][(i % 4) as usize];
    IntelSource {
        name: ["circl-osint", "misp-main", "local-csv", "stix-feed"][(i % 4) as usize].to_owned(),
        spec: json!({"kind": kind,
            "url": "https://misp.corp.local", "key": "***", "location": format!("feeds/{XSS}")}),
        enabled: i != 2,
        interval_secs: [3600, 0, 86_400, 900][(i % 4) as usize],
        cursor: (i == 1).then(|| "1795000000".to_owned()),
        last_sync: match i {
            3 => None,
            _ => Some(IntelSyncStatus {
                started_at: NOW - 600_000,
                finished_at: NOW - 598_000 + i * 100,
                status: ["ok", "failed", "partial"][(i % 3) as usize].to_owned(),
                added: 1234 * i as u64,
                updated: 12,
                unchanged: 100_000,
                expired: 3,
                skipped: if i == 2 { 150 } else { 0 },
                skipped_examples: if i == 2 {
                    (0..100)
                        .map(|k| format!("line {k}: not an address: {XSS}"))
                        .collect()
                } else {
                    vec![]
                },
                ignored: if i == 2 { 4 } else { 0 },
                ignored_reasons: Default::default(),
                warninglisted: 7,
                retro_matches: i as u64,
                error: (i == 1).then(|| format!("connection refused: <{XSS}>")),
            }),
        },
        updated_at: NOW - 86_400_000,
        updated_by: "админ".to_owned(),
    }
}

fn intel_view() -> IntelView {
    IntelView {
        params: IntelParams::parse(&[
            ("kind".to_owned(), "domain".to_owned()),
            ("cursor".to_owned(), "100".to_owned()),
        ]),
        iocs: (0..100).map(ioc).collect(),
        total: 123_456,
        next_cursor: Some("200".to_owned()),
        sources: vec!["circl-osint".to_owned(), "manual".to_owned()],
        available: true,
        error: None,
    }
}

fn ioc_detail_view() -> IocDetailView {
    IocDetailView {
        ioc: ioc(1),
        matches: (0..30).map(intel_match).collect(),
        agent_names: [("agent-1".to_owned(), "ws-001.corp.local".to_owned())]
            .into_iter()
            .collect(),
    }
}

fn intel_sources_view() -> IntelSourcesView {
    IntelSourcesView {
        sources: (0..4).map(intel_source).collect(),
        available: true,
    }
}

fn intel_matches_view() -> IntelMatchesView {
    IntelMatchesView {
        params: IntelMatchesParams::default(),
        matches: (0..100).map(intel_match).collect(),
        next_cursor: Some("900".to_owned()),
        agent_names: HashMap::new(),
        available: true,
        error: None,
    }
}

/// Every signed-in page for one role and language (name, html).
fn stored_vuln(i: i64) -> dozor_model::StoredVuln {
    let levels = ["critical", "high", "medium", "low", "log", "false_positive"];
    let level = levels[(i as usize) % levels.len()];
    let status = dozor_model::VulnStatus::ALL[(i as usize) % 4];
    dozor_model::StoredVuln {
        id: i + 1,
        source: if i % 5 == 0 { "inventory" } else { "openvas" }.to_owned(),
        host: format!("10.0.{}.{}", i / 250, i % 250),
        hostname: Some(format!("srv-{i}.corp.local")),
        agent_id: (i % 2 == 0).then(|| format!("agent-{i}")),
        port: if i % 5 == 0 {
            "package/Debian/openssl".to_owned()
        } else {
            format!("{}/tcp", 1000 + i)
        },
        nvt_oid: format!("1.3.6.1.4.1.25623.1.0.{i}"),
        name: format!("{XSS} OpenSSH regreSSHion {i}"),
        family: Some(XSS.to_owned()),
        cvss_base: Some(9.8),
        cvss_vector_v2: Some("AV:N/AC:L/Au:N/C:C/I:C/A:C".to_owned()),
        cvss_vector_v3: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".to_owned()),
        severity: 10.0 - (i % 11) as f64,
        original_severity: (i % 3 == 0).then_some(5.0),
        level: level.to_owned(),
        qod: Some(80),
        threat: Some(XSS.to_owned()),
        cves: (0..(i % 6))
            .map(|k| format!("CVE-2024-{:04}", 6387 + k))
            .collect(),
        epss_score: Some(0.9712),
        epss_percentile: Some(0.998),
        solution_type: Some("VendorFix".to_owned()),
        solution: Some(format!("{XSS}\nupgrade to 9.8p1")),
        details: json!({"summary": XSS, "insight": {"x": XSS}, "affected": "OpenSSH < 9.8p1"}),
        status,
        status_reason: Some(XSS.to_owned()),
        status_until: Some(NOW + 86_400_000),
        status_by: Some(XSS.to_owned()),
        status_at: NOW - 3_600_000,
        first_seen: NOW - 86_400_000 * 10,
        last_seen: NOW - 60_000 * i,
        fixed_at: (status == dozor_model::VulnStatus::Fixed).then_some(NOW - 60_000),
        last_scan_id: 7,
        times_seen: 3,
    }
}

fn vuln_summary() -> dozor_model::VulnSummary {
    let by_level: std::collections::BTreeMap<String, u64> = [
        ("critical", 12u64),
        ("high", 1_234_567),
        ("medium", 40),
        ("low", 7),
        ("log", 300),
        ("false_positive", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    dozor_model::VulnSummary {
        total: by_level.values().sum(),
        by_status: [
            ("open", 20u64),
            ("fixed", 5),
            ("accepted", 3),
            ("false_positive", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        hosts: (0..10)
            .map(|i| dozor_model::VulnHostSummary {
                host: format!("10.0.0.{i}"),
                hostname: Some(XSS.to_owned()),
                agent_id: (i % 2 == 0).then(|| format!("agent-{i}")),
                by_level: by_level.clone(),
                total: 100 - i,
                max_severity: 10.0 - i as f64,
                last_seen: NOW - 60_000,
            })
            .collect(),
        cves: (0..10)
            .map(|i| dozor_model::VulnCveSummary {
                cve: format!("CVE-2024-{:04}", 6387 + i),
                hosts: 10 - i,
                results: 20 - i,
                max_severity: 9.8 - i as f64,
                max_epss: (i % 2 == 0).then_some(0.5),
            })
            .collect(),
        by_level,
    }
}

fn vuln_scans() -> Vec<dozor_model::VulnScan> {
    (0..30)
        .map(|i| dozor_model::VulnScan {
            id: 30 - i,
            source: "openvas".to_owned(),
            origin: "gmp".to_owned(),
            report_id: None,
            name: Some(XSS.to_owned()),
            started_at: Some(NOW - 86_400_000 * i - 3_600_000),
            finished_at: (i % 4 != 0).then_some(NOW - 86_400_000 * i),
            hosts: 12,
            recorded_at: NOW - 86_400_000 * i,
            recorded_by: "scan-job:weekly".to_owned(),
            counts: dozor_model::VulnScanCounts {
                results: 50,
                by_level: [
                    ("critical", i as u64),
                    ("high", 10),
                    ("medium", 20),
                    ("log", 5),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                ..Default::default()
            },
        })
        .collect()
}

fn vulns_view() -> VulnsView {
    VulnsView {
        params: VulnParams::parse(&[
            ("level".to_owned(), "high".to_owned()),
            ("after".to_owned(), "9.8_12".to_owned()),
        ]),
        summary: vuln_summary(),
        scans: vuln_scans(),
        jobs: vec![dozor_model::VulnScanJob {
            name: XSS.to_owned(),
            spec: serde_json::json!({}),
            enabled: true,
            state: serde_json::json!({"status": "running", "progress": 42,
                "last_finished": 1_700_000_000_000_i64, "error": XSS}),
            updated_at: 0,
            updated_by: "admin".to_owned(),
        }],
        results: (0..200).map(stored_vuln).collect(),
        total: 1_234_928,
        next_after: Some(VulnParams::keyset(7.5, 99)),
        agent_names: [("agent-2".to_owned(), XSS.to_owned())]
            .into_iter()
            .collect(),
        error: None,
    }
}

fn vuln_host_view() -> VulnHostView {
    VulnHostView {
        host: "10.0.0.2".to_owned(),
        summary: vuln_summary(),
        results: (0..200).map(stored_vuln).collect(),
        agent: Some(("agent-2".to_owned(), Some(XSS.to_owned()))),
        alerts: (0..20).map(alert).collect(),
        inventory: Some(dozor_model::AgentInventory {
            agent_id: "agent-2".to_owned(),
            fingerprint: "ab".repeat(32),
            os: json!({"pretty_name": XSS}),
            packages: json!([]),
            package_count: 1523,
            reported_at: NOW - 3_600_000,
        }),
    }
}

fn vuln_cve_view() -> VulnCveView {
    VulnCveView {
        cve: "CVE-2024-6387".to_owned(),
        summary: vuln_summary(),
        results: (0..100).map(stored_vuln).collect(),
        agent_names: HashMap::new(),
    }
}

fn all_pages(lang: Lang, role: Role) -> Vec<(&'static str, String)> {
    let c = |path: &str| ctx(lang, role, path);
    let agents_view = AgentsView {
        agents: (0..300).map(agent).collect(),
        params: AgentsParams::default(),
    };
    let agent_view = AgentDetailView {
        agent: agent(2),
        recent_alerts: (0..20).map(alert).collect(),
        recent_events: (0..50).map(event).collect(),
        commands: (0..10).map(command).collect(),
        response: response_panel(),
    };
    let rules_view = RulesView {
        rules: (0..350).map(rule).collect(),
        params: RulesParams::parse(&[("page".to_owned(), "2".to_owned())]),
    };
    let rule_view = RuleDetailView {
        rule: rule(3),
        yaml: Some(format!(
            "title: test\ndetection:\n  sel:\n    CommandLine|contains: '{XSS}'\n"
        )),
        recent_alerts: (0..10).map(alert).collect(),
    };
    let mut pages = vec![
        ("overview", overview(&c("/ui/"), &overview_view())),
        (
            "alerts",
            alerts(&c("/ui/alerts?status=new"), &alerts_view()),
        ),
        (
            "alert",
            alert_detail(&c("/ui/alerts/5"), &alert_detail_view()),
        ),
        ("events", events(&c("/ui/events?q=x"), &events_view())),
        ("agents", agents(&c("/ui/agents"), &agents_view)),
        ("hosts", hosts(&c("/ui/hosts"), &hosts_view())),
        (
            "exceptions",
            exceptions(&c("/ui/exceptions"), &exceptions_view()),
        ),
        ("searches", searches(&c("/ui/searches"), &searches_view())),
        (
            "anomalies",
            anomalies(&c("/ui/anomalies"), &anomalies_view()),
        ),
        ("host", host_detail(&c("/ui/hosts/WS-01"), &host_view())),
        (
            "incidents",
            incidents(&c("/ui/incidents"), &incidents_view()),
        ),
        (
            "incident",
            incident_detail(&c("/ui/incidents/1"), &incident_view()),
        ),
        ("agent", agent_detail(&c("/ui/agents/agent-2"), &agent_view)),
        ("rules", rules(&c("/ui/rules?page=2"), &rules_view)),
        ("rule", rule_detail(&c("/ui/rules/rule-3"), &rule_view)),
        ("profile", profile(&c("/ui/profile"), &profile_view(role))),
        (
            "playbooks",
            playbooks(
                &c("/ui/playbooks"),
                &PlaybooksView {
                    playbooks: (0..40).map(playbook).collect(),
                    available: true,
                },
            ),
        ),
        (
            "playbook",
            playbook_detail(
                &c("/ui/playbooks/quarantine-host"),
                &PlaybookDetailView {
                    playbook: playbook(1),
                    runs: (0..30).map(run).collect(),
                },
            ),
        ),
        (
            "runs",
            playbook_runs(
                &c("/ui/playbook-runs?status=failed"),
                &RunsView {
                    runs: (0..200).map(run).collect(),
                    params: RunsParams::parse(&[("status".to_owned(), "failed".to_owned())]),
                    playbooks: vec!["notify-operator".to_owned(), "quarantine-host".to_owned()],
                },
            ),
        ),
        (
            "run",
            playbook_run(
                &c("/ui/playbook-runs/0190a-run-1"),
                &RunDetailView {
                    run: run(1),
                    steps: (0..20).map(step).collect(),
                    approvals: (0..4).map(approval).collect(),
                    alert_title: Some(XSS.to_owned()),
                    agent_name: Some("ws-002.corp.local".to_owned()),
                },
            ),
        ),
        (
            "approvals",
            approvals(
                &c("/ui/approvals"),
                &ApprovalsView {
                    approvals: (0..100).map(approval).collect(),
                    params: ApprovalsParams::default(),
                    agent_names: [("agent-2".to_owned(), "ws-002.corp.local".to_owned())]
                        .into_iter()
                        .collect(),
                },
            ),
        ),
        (
            "intel",
            intel(&c("/ui/intel?kind=domain&cursor=100"), &intel_view()),
        ),
        (
            "ioc",
            ioc_detail(&c("/ui/intel/iocs/2"), &ioc_detail_view()),
        ),
        (
            "intel-sources",
            intel_sources(&c("/ui/intel/sources"), &intel_sources_view()),
        ),
        (
            "intel-matches",
            intel_matches(&c("/ui/intel/matches"), &intel_matches_view()),
        ),
        ("vulns", vulns(&c("/ui/vulns?level=high"), &vulns_view())),
        (
            "vuln",
            vuln_detail(
                &c("/ui/vulns/2"),
                &VulnDetailView {
                    vuln: stored_vuln(2),
                    agent_name: Some(XSS.to_owned()),
                    error: Some(XSS.to_owned()),
                },
            ),
        ),
        (
            "vuln-host",
            vuln_host(&c("/ui/vulns/hosts/10.0.0.2"), &vuln_host_view()),
        ),
        (
            "vuln-cve",
            vuln_cve(&c("/ui/vulns/cves/CVE-2024-6387"), &vuln_cve_view()),
        ),
    ];
    if role == Role::Admin {
        pages.push(("users", users(&c("/ui/users"), &users_view())));
        pages.push(("audit", audit(&c("/ui/audit"), &audit_view())));
    }
    pages
}

const ROLES: [Role; 3] = [Role::Viewer, Role::Analyst, Role::Admin];

/// The `<form ...>...</form>` pieces of a page.
fn forms(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let from = &rest[start..];
        let end = from.find("</form>").expect("unclosed form") + "</form>".len();
        out.push(&from[..end]);
        rest = &from[end..];
    }
    out
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[test]
fn every_page_renders_in_both_languages_for_every_role() {
    for lang in Lang::ALL {
        for role in ROLES {
            for (name, html) in all_pages(lang, role) {
                assert!(html.starts_with("<!DOCTYPE html>"), "{name}");
                assert!(html.trim_end().ends_with("</html>"), "{name}");
                assert!(
                    html.contains(&format!("<html lang=\"{}\">", lang.code())),
                    "{name}"
                );
                assert!(!html.contains("template error"), "{name}");
                for tag in [
                    "table", "form", "details", "svg", "tbody", "ul", "dl", "main", "nav",
                ] {
                    let open = html.matches(&format!("<{tag}")).count()
                        - html.matches(&format!("<{tag}-")).count();
                    let close = html.matches(&format!("</{tag}>")).count();
                    assert_eq!(open, close, "{name}: <{tag}> not balanced");
                }
            }
        }
    }
    let misses = crate::i18n::MISSES.lock().unwrap().clone();
    assert!(
        misses.is_empty(),
        "keys missing from the catalog: {misses:?}"
    );
}

#[test]
fn every_post_form_carries_the_csrf_token() {
    for role in ROLES {
        for (name, html) in all_pages(Lang::Ru, role) {
            for form in forms(&html) {
                let tag = &form[..form.find('>').unwrap()];
                match attr(tag, "method") {
                    Some("post") => assert!(
                        form.contains(&format!(
                            "<input type=\"hidden\" name=\"csrf\" value=\"{CSRF}\">"
                        )),
                        "{name}: POST form without the CSRF token: {tag}"
                    ),
                    Some("get") => {}
                    other => panic!("{name}: form without a method ({other:?}): {tag}"),
                }
                let action = attr(tag, "action").unwrap();
                assert!(action.starts_with('/'), "{name}: {action}");
            }
        }
    }
    let html = login(Lang::En, None, "", "logintoken", "/ui/alerts");
    assert!(html.contains("name=\"csrf\" value=\"logintoken\""));
    assert!(html.contains("name=\"next\" value=\"/ui/alerts\""));
}

fn post_actions(html: &str) -> Vec<String> {
    forms(html)
        .into_iter()
        .filter_map(|f| {
            let tag = &f[..f.find('>').unwrap()];
            (attr(tag, "method") == Some("post")).then(|| attr(tag, "action").unwrap().to_owned())
        })
        .collect()
}

#[test]
fn forms_follow_the_roles() {
    let always = |a: &str| a == "/logout" || a.starts_with("/ui/profile");
    for role in ROLES {
        for (name, html) in all_pages(Lang::En, role) {
            for action in post_actions(&html) {
                let allowed = always(&action)
                    || match role {
                        Role::Viewer => false,
                        Role::Analyst => {
                            action.starts_with("/ui/alerts")
                                || action.starts_with("/ui/incidents")
                                || action.starts_with("/ui/searches")
                                || action == "/ui/intel/iocs"
                                || (action.starts_with("/ui/intel/")
                                    && (action.ends_with("/enabled") || action.ends_with("/sync")))
                                || action == "/ui/playbook-runs"
                                || (action.starts_with("/ui/exceptions/")
                                    && action.ends_with("/delete"))
                                || (action.starts_with("/ui/vulns/") && action.ends_with("/status"))
                                || (action.starts_with("/ui/approvals/")
                                    && action.ends_with("/decision"))
                                || (action.starts_with("/ui/agents/")
                                    && (action.ends_with("/commands")
                                        || action.ends_with("/isolate")
                                        || action.ends_with("/release")))
                        }
                        _ => true,
                    };
                assert!(allowed, "{role:?} sees a form for {action} on {name}");
            }
            if role == Role::Viewer {
                assert!(!html.contains("select-all"), "{name}");
                assert!(!html.contains("name=\"id\""), "{name}");
            }
        }
    }
    let admin = all_pages(Lang::En, Role::Admin);
    let analyst = all_pages(Lang::En, Role::Analyst);
    let page =
        |pages: &[(&str, String)], n: &str| pages.iter().find(|p| p.0 == n).unwrap().1.clone();
    assert!(
        post_actions(&page(&admin, "rules"))
            .iter()
            .any(|a| a.ends_with("/enabled"))
    );
    assert!(
        !post_actions(&page(&analyst, "rules"))
            .iter()
            .any(|a| a.ends_with("/enabled"))
    );
    assert!(post_actions(&page(&analyst, "alerts")).contains(&"/ui/alerts/bulk".to_owned()));
    // the decision on a vulnerability: accept, false positive (and reopen when decided)
    let vuln = post_actions(&page(&analyst, "vuln"));
    assert!(
        vuln.iter().filter(|a| *a == "/ui/vulns/3/status").count() >= 2,
        "{vuln:?}"
    );
    let viewer = all_pages(Lang::En, Role::Viewer);
    assert!(!page(&viewer, "vuln").contains("/ui/vulns/3/status"));
    let detail = post_actions(&page(&analyst, "alert"));
    for a in [
        "/ui/alerts/5/status",
        "/ui/alerts/5/assignee",
        "/ui/alerts/5/comments",
        "/ui/alerts/5/exception",
    ] {
        assert!(detail.contains(&a.to_owned()), "{a}");
    }
    let viewer_detail = post_actions(&page(&viewer, "alert"));
    assert!(!viewer_detail.contains(&"/ui/alerts/5/exception".to_owned()));
    assert!(
        post_actions(&page(&viewer, "exceptions"))
            .iter()
            .all(|a| always(a))
    );
    // admins see the admin sections in the navigation, others don't
    assert!(page(&admin, "overview").contains("href=\"/ui/users\""));
    assert!(!page(&analyst, "overview").contains("href=\"/ui/users\""));
    assert!(page(&admin, "users").contains("/ui/users/1/role"));
    // one's own account can't be disabled from the list
    assert!(!page(&admin, "users").contains("/ui/users/0/disabled"));
}

#[test]
fn workflow_buttons_follow_can_change_to() {
    for status in AlertStatus::ALL {
        let mut v = alert_detail_view();
        v.alert.status = status;
        let html = alert_detail(&ctx(Lang::En, Role::Analyst, "/ui/alerts/5"), &v);
        for to in AlertStatus::ALL {
            let button = format!("name=\"status\" value=\"{}\"", to.as_str());
            assert_eq!(
                html.contains(&button),
                status.can_change_to(to),
                "{status:?} → {to:?}"
            );
        }
    }
}

#[test]
fn event_data_is_escaped_everywhere() {
    for role in ROLES {
        for lang in Lang::ALL {
            for (name, html) in all_pages(lang, role) {
                assert!(!html.contains("<script>alert"), "{name}: unescaped script");
                assert!(!html.contains("<img src=x"), "{name}: unescaped markup");
                assert!(!html.contains("<b>bold"), "{name}: unescaped markup");
                // no inline script, style or handler: the server's CSP forbids them
                assert_eq!(html.matches("<script").count(), 1, "{name}");
                assert!(!html.contains(" style="), "{name}");
                for tag in tags(&html) {
                    let lower = tag.to_ascii_lowercase();
                    assert!(
                        !lower.contains(" onerror=")
                            && !lower.contains(" onclick=")
                            && !lower.contains(" onload="),
                        "{name}: handler in {tag}"
                    );
                }
                // nothing from the network; data (an indicator that is a URL, a source's
                // settings) may name one, as text in <code> or <pre>
                let markup = strip(&strip(&html, "<code", "</code>"), "<pre", "</pre>");
                assert!(
                    !markup.contains("http://") && !markup.contains("https://"),
                    "{name}"
                );
            }
        }
    }
    let pages = all_pages(Lang::En, Role::Analyst);
    let alert = &pages.iter().find(|p| p.0 == "alert").unwrap().1;
    assert!(alert.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;"));
    let page = error_page(Lang::En, 400, XSS);
    assert!(!page.contains("<script>alert"));
}

#[test]
fn charts_are_inline_svg() {
    let pages = all_pages(Lang::Ru, Role::Viewer);
    let get = |n: &str| pages.iter().find(|p| p.0 == n).unwrap().1.clone();
    let overview = get("overview");
    assert!(overview.matches("<svg class=\"chart").count() >= 4);
    assert!(overview.contains("class=\"lv-critical\""));
    assert!(overview.contains("<polyline"));
    // numbers in Russian format inside the charts' tooltips and cards
    assert!(overview.contains("1\u{a0}234\u{a0}567"));
    let events = get("events");
    assert!(events.contains("<svg class=\"chart bars\""));
    let agent = get("agent");
    assert!(agent.contains("<svg class=\"chart hbars\""));
    assert!(agent.contains("ГиБ"));
}

/// The markup tags of a page (data is escaped, so every `<` starts one).
fn tags(html: &str) -> Vec<&str> {
    html.split('<')
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .collect()
}

/// What a reader sees: text between tags and the texts of `title`, `placeholder`,
/// `aria-label`, `data-confirm*` and `data-t-*` attributes.
fn visible(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    for piece in html.split('<').skip(1) {
        let (tag, text) = piece.split_once('>').unwrap_or((piece, ""));
        for name in [
            "title",
            "placeholder",
            "aria-label",
            "data-confirm",
            "data-confirm-click",
        ] {
            if let Some(v) = attr(tag, name) {
                out.push_str(v);
                out.push('\n');
            }
        }
        for part in tag.split(" data-t-").skip(1) {
            if let Some((_, v)) = part.split_once("=\"") {
                out.push_str(&v[..v.find('"').unwrap_or(v.len())]);
                out.push('\n');
            }
        }
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// English catalog texts (their literal parts longer than 3 characters) that differ from the
/// Russian ones.
fn english_fragments() -> Vec<&'static str> {
    let mut out = Vec::new();
    for (_, en, ru) in CATALOG {
        if en == ru {
            continue;
        }
        for form in en.split('|') {
            for part in form.split(['{', '}']).step_by(2) {
                let part = part.trim();
                if part.chars().count() > 3 && !ru.contains(part) {
                    out.push(part);
                }
            }
        }
    }
    out
}

#[test]
fn russian_pages_have_no_english_left() {
    let fragments = english_fragments();
    let mut pages = Vec::new();
    for role in ROLES {
        pages.extend(all_pages(Lang::Ru, role));
    }
    pages.push((
        "login",
        login(Lang::Ru, Some(LoginError::Throttled(120)), "", "t", "/ui/"),
    ));
    pages.push(("error", error_page(Lang::Ru, 404, "error.not_found")));
    let mut problems = Vec::new();
    for (name, html) in &pages {
        // what the data says stays as it is: leave out <pre> and <code> blocks and the
        // sample data's own English words
        let mut text = strip(html, "<pre", "</pre>");
        text = visible(&strip(&text, "<code", "</code>"));
        for t in TITLES {
            text = text.replace(&crate::svg::esc(t), "").replace(t, "");
        }
        for f in &fragments {
            if contains_word(&text, f) {
                problems.push(format!("{name}: {f:?}"));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "English text on Russian pages: {problems:#?}"
    );
    // and the check does find English where it is
    let en = visible(&overview(
        &ctx(Lang::En, Role::Admin, "/ui/"),
        &overview_view(),
    ));
    assert!(fragments.iter().filter(|f| contains_word(&en, f)).count() > 20);
}

/// `needle` occurs in `text` not as part of an identifier (`agent-2`, `user.name`, `alert(`).
fn contains_word(text: &str, needle: &str) -> bool {
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "-._/:@(#".contains(c));
    text.match_indices(needle).any(|(i, _)| {
        !joins(text[..i].chars().next_back()) && !joins(text[i + needle.len()..].chars().next())
    })
}

fn strip(html: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(s) = rest.find(open) {
        out.push_str(&rest[..s]);
        match rest[s..].find(close) {
            Some(e) => rest = &rest[s + e + close.len()..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn catalog_is_complete_and_used() {
    let mut seen = std::collections::HashSet::new();
    for (key, en, ru) in CATALOG {
        assert!(seen.insert(*key), "duplicate key {key}");
        assert!(!en.trim().is_empty() && !ru.trim().is_empty(), "{key}");
        let (en_forms, ru_forms) = (en.split('|').count(), ru.split('|').count());
        if en_forms > 1 || ru_forms > 1 {
            assert_eq!((en_forms, ru_forms), (2, 3), "{key}: plural forms");
        }
        let holes = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(h, _)| h.to_owned()))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(holes(en), holes(ru), "{key}: placeholders differ");
    }
    let sources = sources();
    for (key, _, _) in CATALOG {
        let quoted = format!("\"{key}\"");
        assert!(
            sources.iter().any(|(_, text)| text.contains(&quoted)),
            "catalog key {key} is not used"
        );
    }
    // every key the sources ask for exists
    for (path, text) in &sources {
        for call in ["t(\"", "tn(\"", "tf(\""] {
            for piece in text.split(call).skip(1) {
                let key = &piece[..piece.find('"').unwrap()];
                if key.contains('.') {
                    assert!(
                        translate(Lang::En, key).is_some(),
                        "{path}: unknown key {key}"
                    );
                }
            }
        }
    }
    for key in FLASH_KEYS {
        assert!(translate(Lang::Ru, key).is_some(), "{key}");
    }
}

fn sources() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["src", "src/pages", "templates"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && name != "catalog.rs" && name != "tests.rs" {
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn status_level_and_role_keys_exist() {
    for l in Level::ALL {
        assert!(translate(Lang::Ru, crate::pages::level_key(l)).is_some());
    }
    for s in AlertStatus::ALL {
        assert!(translate(Lang::Ru, crate::pages::status_key(s)).is_some());
        for to in AlertStatus::ALL {
            assert!(translate(Lang::Ru, crate::pages::action_key(s, to)).is_some());
        }
    }
    for r in [Role::Admin, Role::Analyst, Role::Viewer, Role::AgentIngest] {
        assert!(translate(Lang::Ru, role_key(r)).is_some());
    }
}

#[test]
fn links_keep_filters_and_pages() {
    let html = alerts(&ctx(Lang::En, Role::Viewer, "/ui/alerts"), &alerts_view());
    assert!(
        html.contains("cursor=next%2Bcursor%2F%3D"),
        "next page link"
    );
    assert!(html.contains("rel=\"next\""));
    assert!(html.contains("sort=level"));
    assert!(html.contains(">First page</a>") || html.contains("First page"));
    let ev = events(&ctx(Lang::En, Role::Viewer, "/ui/events"), &events_view());
    // sidebar: a value adds field:value to the query
    assert!(
        ev.contains("q=process.name%3Acmd.exe%20AND%20user.name%3ASYSTEM"),
        "sidebar link"
    );
    assert!(ev.contains("cursor=evcursor"));
    // the language switch comes back to the same page
    assert!(ev.contains("name=\"return_to\" value=\"/ui/events\""));
    // active navigation
    assert!(ev.contains("<a href=\"/ui/events\" class=\"active\" aria-current=\"page\">"));
}

#[test]
fn query_errors_point_at_the_column() {
    let mut v = events_view();
    v.params.q = "process.name: AND".to_owned();
    v.query_error = Some(QueryProblem {
        column: Some(14),
        message: "expected a value".to_owned(),
    });
    let html = events(&ctx(Lang::Ru, Role::Viewer, "/ui/events"), &v);
    assert!(html.contains("Ошибка в запросе, позиция 14:"));
    assert!(html.contains(&format!("process.name: AND\n{}^", " ".repeat(13))));
}

#[test]
fn timeline_is_in_time_order() {
    let html = alert_detail(
        &ctx(Lang::En, Role::Viewer, "/ui/alerts/5"),
        &alert_detail_view(),
    );
    let list = &html[html.find("<ol class=\"timeline\">").unwrap()..];
    let list = &list[..list.find("</ol>").unwrap()];
    let times: Vec<&str> = list
        .split("<time datetime=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert!(times.len() > 40);
    assert!(list.contains("and 80 more matched events"));
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
    assert!(list.contains("Status changed by petrova: New → In progress"));
}

#[test]
fn login_and_error_pages() {
    let en = login(
        Lang::En,
        Some(LoginError::Invalid),
        "bob<",
        "tok",
        "//evil.example",
    );
    assert!(en.contains("Wrong user name or password."));
    assert!(en.contains("value=\"bob&#60;\""));
    assert!(en.contains("name=\"next\" value=\"/ui/\""));
    assert!(!en.contains("class=\"main-nav\""));
    let ru = login(
        Lang::Ru,
        Some(LoginError::Throttled(120)),
        "",
        "tok",
        "/ui/events",
    );
    assert!(ru.contains("Повторите через 2 мин."));
    assert!(ru.contains("href=\"/login?next=%2Fui%2Fevents&#38;lang=en\""));
    let e = error_page(Lang::Ru, 404, "error.not_found");
    assert!(e.contains("Страница не найдена") && e.contains("Не найдено."));
    let e = error_page(Lang::En, 502, "upstream said no");
    assert!(e.contains("Server error") && e.contains("upstream said no"));
}

#[test]
fn flash_messages() {
    let mut c = ctx(Lang::Ru, Role::Analyst, "/ui/alerts");
    c.flash = Some("error.invalid_transition".to_owned());
    let html = overview(&c, &overview_view());
    assert!(html.contains("class=\"flash flash-error\""));
    assert!(html.contains("Такая смена статуса сейчас недопустима."));
    c.flash = Some("no.such.key".to_owned());
    let html = overview(&c, &OverviewView::default());
    assert!(!html.contains("class=\"flash"));
    assert!(!html.contains("no.such.key"));
}

#[test]
fn empty_views_render() {
    let c = ctx(Lang::Ru, Role::Admin, "/ui/");
    for html in [
        overview(&c, &OverviewView::default()),
        alerts(&c, &AlertsView::default()),
        events(&c, &EventsView::default()),
        agents(&c, &AgentsView::default()),
        rules(&c, &RulesView::default()),
        audit(&c, &AuditView::default()),
        profile(&c, &ProfileView::default()),
    ] {
        assert!(html.contains("</html>"));
        assert!(html.contains("class=\"empty\""));
    }
    assert!(users(&c, &UsersView::default()).contains("</html>"));
    let mut a = agent(1);
    a.agent.last_heartbeat = None;
    let html = agent_detail(
        &c,
        &AgentDetailView {
            agent: a,
            recent_alerts: vec![],
            recent_events: vec![],
            commands: vec![],
            response: ResponsePanel::default(),
        },
    );
    assert!(html.contains("Сигналов с данными о ресурсах пока не было."));
    assert!(html.contains("Проверок на этом агенте не запрашивали."));
}

#[test]
fn the_scan_form_follows_the_role_and_the_commands_are_listed() {
    let view = |agent: AgentRow| AgentDetailView {
        agent,
        recent_alerts: vec![],
        recent_events: vec![],
        commands: (0..10).map(command).collect(),
        response: ResponsePanel::default(),
    };
    let page = |role: Role, lang: Lang, v: &AgentDetailView| {
        agent_detail(&ctx(lang, role, "/ui/agents/agent-2"), v)
    };
    let live = view(agent(2));
    for role in [Role::Analyst, Role::Admin] {
        let html = page(role, Lang::En, &live);
        assert!(
            post_actions(&html).contains(&"/ui/agents/agent-2/commands".to_owned()),
            "{role:?}"
        );
        assert!(html.contains("name=\"path\" required maxlength=\"4096\""));
        assert!(html.contains("name=\"recursive\" value=\"1\" checked"));
    }
    // viewers see the table, not the form; nobody sees it for a revoked agent
    let scan_forms = |html: &str| {
        post_actions(html)
            .into_iter()
            .filter(|a| a.ends_with("/commands"))
            .count()
    };
    let html = page(Role::Viewer, Lang::En, &live);
    assert_eq!(scan_forms(&html), 0);
    assert!(!html.contains("name=\"path\""));
    assert_eq!(html.matches("<tr data-command-status=").count(), 10);
    let revoked = view(agent(4));
    assert_eq!(scan_forms(&page(Role::Admin, Lang::En, &revoked)), 0);

    // statuses, counts, the first detections, errors; the data escaped
    let html = page(Role::Viewer, Lang::En, &live);
    for status in CommandStatus::ALL {
        assert!(html.contains(&format!("class=\"st cs-{}\"", status.as_str())));
    }
    assert!(html.contains("1,203 files scanned · 7 detections · 1 error"));
    assert!(html.contains("webshell_4") && !html.contains("webshell_5"));
    assert!(html.contains("and 2 more"));
    assert!(html.contains("attempt 3"));
    assert!(html.contains("(without subdirectories)"));
    assert!(html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;: no such file"));
    assert!(!html.contains("<script>alert"));
    let ru = page(Role::Analyst, Lang::Ru, &live);
    assert!(ru.contains("1\u{a0}203 файла проверено · 7 обнаружений · 1 ошибка"));
    assert!(ru.contains("Проверка пути") && ru.contains("Истекла") && ru.contains("и ещё 2"));
    assert!(ru.contains("Проверить путь"));
}

#[test]
fn agents_carry_live_hooks() {
    let view = AgentsView {
        agents: (0..50).map(agent).collect(),
        params: AgentsParams::parse(&[("status".to_owned(), "offline".to_owned())]),
    };
    let html = agents(
        &ctx(Lang::En, Role::Viewer, "/ui/agents?status=offline"),
        &view,
    );
    assert_eq!(html.matches("<tr data-agent-id=").count(), 10);
    assert!(html.contains("data-role=\"dot\""));
    assert!(html.contains("data-t-online=\"Online\""));
    assert!(html.contains("class=\"dot ag-offline\""));
}

#[test]
fn rendering_is_linear_enough() {
    // 10x the rows must not cost much more than 10x the time (no quadratic work per row)
    let c = ctx(Lang::Ru, Role::Admin, "/ui/alerts");
    let time = |n: i64| {
        let v = AlertsView {
            alerts: (0..n).map(alert).collect(),
            ..alerts_view()
        };
        let start = std::time::Instant::now();
        for _ in 0..3 {
            std::hint::black_box(alerts(&c, &v));
        }
        start.elapsed()
    };
    let small = time(100);
    let large = time(1000);
    assert!(large < small * 40, "{small:?} vs {large:?}");
}

/// With `DOZOR_UI_SAMPLES=DIR`, writes every page (both languages, admin) and the assets
/// under DIR as a server would serve them, for looking at them in a browser.
#[test]
fn write_samples() {
    let Ok(dir) = std::env::var("DOZOR_UI_SAMPLES") else {
        return;
    };
    let root = std::path::Path::new(&dir);
    std::fs::create_dir_all(root.join("ui/static")).unwrap();
    std::fs::write(root.join("ui/static/app.css"), APP_CSS).unwrap();
    std::fs::write(root.join("ui/static/app.js"), APP_JS).unwrap();
    for lang in Lang::ALL {
        for role in [Role::Admin, Role::Viewer] {
            for (name, html) in all_pages(lang, role) {
                let file = format!("{name}-{}-{}.html", lang.code(), role.as_str());
                std::fs::write(root.join("ui").join(file), html).unwrap();
            }
        }
        let file = format!("login-{}.html", lang.code());
        let html = login(lang, Some(LoginError::Invalid), "ivanov", "t", "/ui/");
        std::fs::write(root.join("ui").join(file), html).unwrap();
        let file = format!("error-{}.html", lang.code());
        std::fs::write(
            root.join("ui").join(file),
            error_page(lang, 404, "error.not_found"),
        )
        .unwrap();
    }
}

#[test]
fn response_pages_follow_the_roles_and_escape_their_data() {
    let pages = |role: Role, lang: Lang| all_pages(lang, role);
    let find = |list: &[(&str, String)], n: &str| list.iter().find(|p| p.0 == n).unwrap().1.clone();
    let viewer = pages(Role::Viewer, Lang::En);
    let analyst = pages(Role::Analyst, Lang::En);
    let admin = pages(Role::Admin, Lang::En);
    for name in [
        "playbooks",
        "playbook",
        "runs",
        "run",
        "approvals",
        "agent",
        "alert",
    ] {
        let html = find(&viewer, name);
        assert!(
            !post_actions(&html).iter().any(|a| a.contains("playbook")
                || a.contains("approvals")
                || a.contains("isolate")
                || a.contains("release")),
            "viewer sees a response form on {name}"
        );
        assert!(!html.contains("<script>alert"), "{name}");
        assert!(!html.contains("<b>x</b>"), "{name}");
    }
    // the switches are the admins'; running and deciding the analysts' too
    assert!(
        post_actions(&find(&admin, "playbooks"))
            .contains(&"/ui/playbooks/notify-operator/enabled".to_owned())
    );
    assert!(
        !post_actions(&find(&analyst, "playbooks"))
            .iter()
            .any(|a| a.ends_with("/enabled"))
    );
    let detail = find(&analyst, "playbook");
    assert!(post_actions(&detail).contains(&"/ui/playbook-runs".to_owned()));
    assert!(detail.contains("name=\"dry_run\" value=\"1\""));
    assert!(detail.contains("<pre class=\"yaml\">"));
    assert!(detail.contains("&#60;script&#62;"));
    let inbox = find(&analyst, "approvals");
    // pending first, each with its form while its time is not up (7 of the 25)
    assert_eq!(
        post_actions(&inbox)
            .iter()
            .filter(|a| a.ends_with("/decision"))
            .count(),
        7
    );
    let first = inbox.find("data-approval-id=").unwrap();
    assert!(inbox[first..].starts_with("data-approval-id=\"0190b-appr-24\""));
    assert!(inbox.contains("name=\"decision\" value=\"approve\""));
    assert!(inbox.contains("name=\"decision\" value=\"reject\""));
    assert!(inbox.contains("expires in 2 min") && inbox.contains("expires in 50 min"));
    assert!(inbox.contains("Approved by иванов"));
    // the run: steps with their input and output in <details>, the approval's decision
    let run_page = find(&viewer, "run");
    assert_eq!(run_page.matches("<tr data-step-status=").count(), 20);
    assert!(run_page.contains("<code>agent.isolate_host</code>"));
    assert!(run_page.contains("Approved by иванов"));
    assert!(run_page.contains("<summary>Output</summary>"));
    assert!(run_page.contains("boom &#60;script&#62;"));
    // the agent page: the isolation badge and the release form (agent-2 is isolated)
    let agent_page = find(&analyst, "agent");
    assert!(agent_page.contains("class=\"iso iso-isolated\""));
    assert!(agent_page.contains("releases itself in 2 h"));
    assert!(post_actions(&agent_page).contains(&"/ui/agents/agent-2/release".to_owned()));
    assert!(!post_actions(&agent_page).contains(&"/ui/agents/agent-2/isolate".to_owned()));
    assert!(post_actions(&agent_page).contains(&"/ui/playbook-runs".to_owned()));
    let mut free = agent(1);
    free.agent.last_heartbeat = None;
    let html = agent_detail(
        &ctx(Lang::Ru, Role::Analyst, "/ui/agents/agent-1"),
        &AgentDetailView {
            agent: free,
            recent_alerts: vec![],
            recent_events: vec![],
            commands: vec![],
            response: response_panel(),
        },
    );
    assert!(post_actions(&html).contains(&"/ui/agents/agent-1/isolate".to_owned()));
    assert!(html.contains("Не изолирован.") && html.contains("Изолировать"));
    // the agents list shows the badges
    let list = find(&viewer, "agents");
    assert!(
        list.contains("class=\"iso iso-isolated\"") && list.contains("class=\"iso iso-applying\"")
    );
    // the alert page: the run form on the alert, its runs
    let alert_page = find(&analyst, "alert");
    assert!(alert_page.contains("name=\"alert_id\" value=\"5\""));
    assert!(alert_page.contains("<option value=\"quarantine-host\">"));
    assert_eq!(alert_page.matches("<tr data-run-status=").count(), 6);
    // Russian
    let ru = find(&pages(Role::Analyst, Lang::Ru), "approvals");
    assert!(
        ru.contains("Согласования")
            && ru.contains("Одобрить")
            && ru.contains("<dd class=\"warn-text\">через 50 мин</dd>")
    );
    let ru = find(&pages(Role::Admin, Lang::Ru), "playbooks");
    assert!(ru.contains("Плейбуки") && ru.contains("broken.yml, строка 7, столбец 5"));
}

#[test]
fn intel_pages_follow_the_roles_and_escape_their_data() {
    let find = |list: &[(&str, String)], n: &str| list.iter().find(|p| p.0 == n).unwrap().1.clone();
    let viewer = all_pages(Lang::En, Role::Viewer);
    let analyst = all_pages(Lang::En, Role::Analyst);
    for name in ["intel", "ioc", "intel-sources", "intel-matches", "alert"] {
        let html = find(&viewer, name);
        assert!(
            !post_actions(&html).iter().any(|a| a.contains("/ui/intel")),
            "viewer sees an intelligence form on {name}"
        );
        for page in [&html, &find(&analyst, name)] {
            assert!(!page.contains("<script>alert"), "{name}");
            assert!(!page.contains("<b>bold"), "{name}");
        }
        // the navigation entry, active in the section
        let active = html.contains("<a href=\"/ui/intel\" class=\"active\" aria-current=\"page\">");
        assert_eq!(active, name != "alert", "{name}");
    }
    let esc = "&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;";

    // the search: columns, states, the warninglist badge, paging that keeps the filters
    let search = find(&analyst, "intel");
    assert_eq!(search.matches("<tr data-ioc-state=").count(), 100);
    for state in ["active", "disabled", "expired"] {
        assert!(
            search.contains(&format!("class=\"st is-{state}\"")),
            "{state}"
        );
    }
    assert!(search.contains(&format!("<code>{esc}.example</code>")));
    assert!(search.contains(&format!("tag{esc}")));
    assert!(search.contains("class=\"st wl\""));
    assert!(search.contains("List of known &#60;b&#62;bold&#60;/b&#62; resolvers"));
    assert!(search.contains("123,456 indicators"));
    assert!(search.contains("href=\"/ui/intel?kind=domain&#38;cursor=200\" rel=\"next\""));
    assert!(search.contains("href=\"/ui/intel?kind=domain\">← First page"));
    assert!(search.contains("<option value=\"domain\" selected>Domain</option>"));
    assert!(search.contains("href=\"/ui/intel?source=circl-osint\""));
    assert!(search.contains("class=\"decay decay-"));
    // the manual form: analysts and admins only
    assert!(post_actions(&search).contains(&"/ui/intel/iocs".to_owned()));
    for field in [
        "name=\"kind\"",
        "name=\"value\"",
        "name=\"expires_in_days\"",
        "name=\"confidence\"",
        "name=\"tags\"",
        "name=\"comment\"",
        "name=\"to_ids\"",
    ] {
        assert!(search.contains(field), "{field}");
    }
    assert!(!find(&viewer, "intel").contains("name=\"expires_in_days\""));

    // one indicator: sources with their object ids, warninglists, matches, the switch
    let detail = find(&analyst, "ioc");
    assert!(post_actions(&detail).contains(&"/ui/intel/iocs/2/enabled".to_owned()));
    assert!(detail.contains("<code>misp-event:5f0c-1</code>"));
    assert!(detail.contains("<code>misp-attribute:77aa-1</code>"));
    assert!(detail.contains("data-source=\"circl-osint\""));
    assert!(detail.contains(&format!(
        "<h1 class=\"ioc-value\"><code>{esc}.example</code></h1>"
    )));
    assert_eq!(detail.matches("<tr data-match-alerted=").count(), 30);
    assert!(detail.contains("href=\"/ui/alerts/100\">#100</a>"));
    assert!(detail.contains(
        "href=\"/ui/alerts?status_any=1&#38;rule=dozor-intel%2Fcircl-osint%2Fdomain&#38;agent=agent-1\""
    ));
    assert!(detail.contains("/ui/events?q=event.id%3A0190a-ev-1&#38;range=custom&#38;from="));
    assert!(detail.contains("href=\"/ui/intel/matches?ioc=2\""));
    assert!(detail.contains(">retro-hunt<"));
    assert!(detail.contains("class=\"st sg-sent\""));
    assert!(detail.contains(">no alert<"));
    assert!(detail.contains("href=\"/ui/agents/agent-1\">ws-001.corp.local</a>"));

    // sources: status, counts, errors, skipped objects, redacted settings, "Sync now"
    let sources = find(&analyst, "intel-sources");
    assert_eq!(
        sources
            .matches("<article class=\"panel intel-source\"")
            .count(),
        4
    );
    for s in ["ok", "failed", "partial"] {
        assert!(sources.contains(&format!("class=\"st sy-{s}\"")), "{s}");
    }
    assert!(sources.contains("added 1,234 · updated 12 · unchanged 100,000 · expired 3"));
    assert!(sources.contains(&format!("connection refused: &#60;{esc}&#62;")));
    assert!(sources.contains(&format!("line 99: not an address: {esc}")));
    assert!(sources.contains("+50 more"));
    assert!(sources.contains("&#34;key&#34;: &#34;***&#34;"));
    assert!(sources.contains("only when asked") && sources.contains("every 1 h"));
    assert!(sources.contains("Never synced."));
    assert_eq!(
        post_actions(&sources)
            .iter()
            .filter(|a| a.starts_with("/ui/intel/sources/") && a.ends_with("/sync"))
            .count(),
        4
    );

    // matches: indicator, field, observed value, alert and event links
    let matches = find(&viewer, "intel-matches");
    assert_eq!(matches.matches("<tr data-match-alerted=").count(), 100);
    assert!(matches.contains("href=\"/ui/intel/iocs/3\""));
    assert!(matches.contains(&format!("&#60;b&#62;bold&#60;/b&#62;{esc}")));
    assert!(matches.contains("href=\"/ui/intel/matches?cursor=900\" rel=\"next\""));

    // the alert: its events' indicators, with links to them (or a search by value)
    let alert = find(&viewer, "alert");
    assert!(alert.contains("id=\"threat-intel\""));
    assert!(alert.contains("href=\"/ui/intel/iocs/42\""));
    assert!(alert.contains("href=\"/ui/intel/iocs/43\""));
    assert!(alert.contains("href=\"/ui/intel?q=198.51.100.7\""));
    assert!(alert.contains(&format!("evil{esc}.example")));
    assert!(alert.contains("<code>dns.question.name</code>"));
    assert!(alert.contains("class=\"tlp tlp-amber\">TLP:AMBER"));
    assert!(alert.contains(&format!("ext-{esc}")));
    assert!(alert.contains(&format!("misp-galaxy:{esc}")));
    // no panel without enrichments
    let mut plain = alert_detail_view();
    plain.events.truncate(0);
    let html = alert_detail(&ctx(Lang::En, Role::Viewer, "/ui/alerts/5"), &plain);
    assert!(!html.contains("threat-intel"));

    // Russian
    let ru = all_pages(Lang::Ru, Role::Analyst);
    let search = find(&ru, "intel");
    assert!(
        search.contains("Индикаторы компрометации") && search.contains("123\u{a0}456 индикаторов")
    );
    assert!(search.contains("Добавить индикатор") && search.contains(">Разведка</a>"));
    let sources = find(&ru, "intel-sources");
    assert!(sources.contains("добавлено: 1\u{a0}234") && sources.contains("Синхронизировать"));
    assert!(find(&ru, "alert").contains("Данные разведки угроз"));
    assert!(find(&ru, "ioc").contains("Объекты источника"));
}

#[test]
fn intel_views_without_data_render() {
    let c = ctx(Lang::Ru, Role::Analyst, "/ui/intel");
    for html in [
        intel(&c, &IntelView::default()),
        intel_sources(&c, &IntelSourcesView::default()),
        intel_matches(&c, &IntelMatchesView::default()),
    ] {
        assert!(html.contains("Разведка угроз на этом сервере недоступна."));
        assert!(post_actions(&html).iter().all(|a| !a.contains("/intel")));
    }
    let on = |v: IntelView| intel(&c, &v);
    let html = on(IntelView {
        available: true,
        ..IntelView::default()
    });
    assert!(html.contains("Подходящих индикаторов нет."));
    let html = intel_sources(
        &c,
        &IntelSourcesView {
            available: true,
            sources: vec![],
        },
    );
    assert!(html.contains("Источников пока нет"));
    let html = intel_matches(
        &c,
        &IntelMatchesView {
            available: true,
            error: Some("error.bad_cursor".to_owned()),
            ..IntelMatchesView::default()
        },
    );
    assert!(html.contains("Совпадений пока нет.") && html.contains("flash-error"));
}

#[test]
fn intel_params_round_trip() {
    let pairs = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let p = IntelParams::parse(&pairs(&[
        ("q", " evil "),
        ("kind", "sha256"),
        ("source", "circl"),
        ("tag", "tlp:red"),
        ("active", "1"),
        ("cursor", "55"),
    ]));
    assert_eq!(p.q, "evil");
    assert!(p.active);
    assert_eq!(
        p.filter_query().url("/ui/intel"),
        "/ui/intel?q=evil&kind=sha256&source=circl&tag=tlp%3Ared&active=1"
    );
    // an unknown kind is no filter
    assert_eq!(IntelParams::parse(&pairs(&[("kind", "<x>")])).kind, "");
    let m = IntelMatchesParams::parse(&pairs(&[("ioc", "7"), ("cursor", "9")]));
    assert_eq!(m.ioc, Some(7));
    assert_eq!(
        m.filter_query().url("/ui/intel/matches"),
        "/ui/intel/matches?ioc=7"
    );
    assert_eq!(
        IntelMatchesParams::parse(&pairs(&[("ioc", "-1")])).ioc,
        None
    );
}
