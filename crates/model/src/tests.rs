use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::*;

/// Every name parses back, is the serde name, and `Display` shows it.
fn names_agree<T>(all: &[T])
where
    T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + FromStr + Serialize,
    T: DeserializeOwned,
    T::Err: std::fmt::Debug,
{
    for &v in all {
        let name = v.to_string();
        assert_eq!(T::from_str(&name).unwrap(), v);
        assert_eq!(serde_json::to_value(v).unwrap(), json!(name));
        assert_eq!(serde_json::from_value::<T>(json!(name)).unwrap(), v);
    }
}

#[test]
fn names_are_the_stored_names_and_parse_back() {
    names_agree(&Level::ALL);
    names_agree(&AlertStatus::ALL);
    names_agree(&AlertChange::ALL);
    names_agree(&Role::ALL);
    names_agree(&VulnStatus::ALL);
    names_agree(&AgentStatus::ALL);
    names_agree(&CommandStatus::ALL);
    assert_eq!(Role::AgentIngest.as_str(), "agent-ingest");
    assert_eq!(AlertStatus::FalsePositive.as_str(), "false_positive");
    assert!(Level::Critical > Level::High && Level::Low > Level::Informational);
}

#[test]
fn unknown_names_are_a_parse_error_that_says_what() {
    let e = "severe".parse::<Level>().unwrap_err();
    assert_eq!(
        e,
        ParseError {
            what: "level",
            value: "severe".into()
        }
    );
    assert_eq!(e.to_string(), "unknown level \"severe\"");
    // Names are exact: no case folding, no aliases (those belong to the readers of rules).
    assert!("High".parse::<Level>().is_err());
    assert!("ack".parse::<AlertStatus>().is_err());
    assert_eq!(
        "agent_ingest".parse::<Role>().unwrap_err().to_string(),
        "unknown role \"agent_ingest\""
    );
}

#[test]
fn the_alert_workflow() {
    use AlertStatus::*;
    let allowed: Vec<(AlertStatus, AlertStatus)> = AlertStatus::ALL
        .iter()
        .flat_map(|&a| AlertStatus::ALL.iter().map(move |&b| (a, b)))
        .filter(|(a, b)| a.can_change_to(*b))
        .collect();
    assert_eq!(
        allowed,
        [
            (New, Acknowledged),
            (New, Resolved),
            (New, FalsePositive),
            (Acknowledged, New),
            (Acknowledged, Resolved),
            (Acknowledged, FalsePositive),
            (Resolved, New),
            (FalsePositive, New),
        ]
    );
    assert!(New.is_open() && Acknowledged.is_open());
    assert!(!Resolved.is_open() && !FalsePositive.is_open());
}

#[test]
fn roles_give_rights_and_cap_tokens() {
    let rights = |r: Role| [Access::Read, Access::Triage, Access::Admin].map(|a| r.permits(a));
    assert_eq!(rights(Role::Admin), [true, true, true]);
    assert_eq!(rights(Role::Analyst), [true, true, false]);
    assert_eq!(rights(Role::Viewer), [true, false, false]);
    assert_eq!(rights(Role::AgentIngest), [false, false, false]);
    assert_eq!(Role::Admin.capped_by(Role::Analyst), Role::Analyst);
    assert_eq!(Role::Viewer.capped_by(Role::Admin), Role::Viewer);
    assert_eq!(Role::AgentIngest.capped_by(Role::Viewer), Role::AgentIngest);
    assert!(Role::OPERATOR.iter().all(|r| r.is_operator_role()));
    assert!(!Role::AgentIngest.is_operator_role());
}

fn agent() -> Agent {
    Agent {
        id: "a1".into(),
        facts: AgentFacts {
            hostname: "web-1".into(),
            os_type: "linux".into(),
            os_name: Some("Ubuntu".into()),
            os_version: Some("24.04".into()),
            arch: None,
            agent_version: "0.1.0".into(),
            ips: vec!["10.0.0.5".into()],
        },
        enrolled_at: 1_000,
        enrolled_by: "token:1".into(),
        cert_sha256: "ab".repeat(32),
        cert_not_after: 9_000_000,
        reenrolled_at: None,
        last_seen: 100_000,
        last_heartbeat: Some(json!({"resources": {"cpu_percent": 1.5}})),
        health: vec![],
        offline_since: None,
        revoked_at: None,
        revoked_by: None,
    }
}

#[test]
fn an_agents_status_follows_its_silence_health_and_revocation() {
    let (degraded, offline) = (Duration::from_secs(90), Duration::from_secs(300));
    let mut a = agent();
    let at = |a: &Agent, silent_ms: i64| a.status_at(a.last_seen + silent_ms, degraded, offline);
    assert_eq!(at(&a, 0), AgentStatus::Online);
    assert_eq!(
        at(&a, -5_000),
        AgentStatus::Online,
        "a clock behind counts as no silence"
    );
    assert_eq!(at(&a, 90_000), AgentStatus::Degraded);
    assert_eq!(at(&a, 300_000), AgentStatus::Offline);
    a.health = vec!["spool full".into()];
    assert_eq!(at(&a, 0), AgentStatus::Degraded);
    a.offline_since = Some(1);
    assert_eq!(at(&a, 0), AgentStatus::Offline);
    a.revoked_at = Some(2);
    assert_eq!(at(&a, 0), AgentStatus::Revoked);
}

#[test]
fn the_agent_view_flattens_the_facts_and_keeps_the_heartbeat_only_when_asked() {
    let listed =
        serde_json::to_value(api::AgentView::new(agent(), AgentStatus::Online, false)).unwrap();
    assert_eq!(listed["hostname"], "web-1");
    assert_eq!(listed["status"], "online");
    assert_eq!(listed["certificate_not_after"], 9_000_000);
    assert!(listed.get("last_heartbeat").is_none());
    let one = api::AgentView::new(agent(), AgentStatus::Degraded, true);
    assert_eq!(
        one.last_heartbeat,
        Some(json!({"resources": {"cpu_percent": 1.5}}))
    );
    let back: api::AgentView = serde_json::from_value(serde_json::to_value(&one).unwrap()).unwrap();
    assert_eq!(back, one);
}

#[test]
fn a_command_view_counts_its_result() {
    let command = AgentCommand {
        id: uuid::Uuid::nil(),
        agent_id: "a1".into(),
        kind: api::SCAN_PATH.into(),
        args: json!({"path": "/tmp", "recursive": true}),
        status: CommandStatus::Done,
        requested_by: "alice".into(),
        created_at: 1,
        delivered_at: Some(2),
        attempts: 1,
        finished_at: Some(3),
        result: Some(
            json!({"files_scanned": 10, "bytes": 2048, "detections": [{}, {}],
            "errors": [], "engines": ["yara"]}),
        ),
        error: None,
    };
    let listed = api::CommandView::new(command.clone(), false);
    assert_eq!(listed.result, None);
    assert_eq!(
        listed.summary,
        Some(json!({"files_scanned": 10, "bytes": 2048, "detections": 2, "errors": 0}))
    );
    let text = serde_json::to_value(&listed).unwrap();
    assert_eq!(text["id"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(text["status"], "done");
    assert!(text.get("result").is_none());
    assert!(api::CommandView::new(command, true).result.is_some());
    assert_eq!(api::result_summary(Some(&json!({"x": 1}))), None);
    assert_eq!(api::result_summary(Some(&json!([1]))), None);
    assert_eq!(api::result_summary(None), None);
}

#[test]
fn a_heartbeat_answer_reads_with_and_without_commands() {
    let bare: api::HeartbeatResponse = serde_json::from_value(json!({
        "agent_id": "a1", "status": "online", "heartbeat_interval_secs": 30,
        "server_time": 5, "certificate_not_after": 9
    }))
    .unwrap();
    assert!(bare.commands.is_empty() && bare.yara_rules_version.is_none());
    assert!(
        serde_json::to_value(&bare)
            .unwrap()
            .get("commands")
            .is_none(),
        "no commands: the member is left out"
    );
    let busy: api::HeartbeatResponse = serde_json::from_value(json!({
        "agent_id": "a1", "status": "degraded", "heartbeat_interval_secs": 30,
        "server_time": 5, "certificate_not_after": 9, "yara_rules_version": "v1",
        "commands": [{"id": "0190f5d2-7c1e-7000-8000-000000000001", "kind": "scan_path",
                      "args": {"path": "C:\\Temp"}}]
    }))
    .unwrap();
    let args: api::ScanPathArgs = serde_json::from_value(busy.commands[0].args.clone()).unwrap();
    assert_eq!(args.path, "C:\\Temp");
    assert!(args.recursive, "recursive by default");
}

#[test]
fn the_api_forms_of_comments_and_history() {
    let c = api::Comment::from(Comment {
        id: 1,
        alert_id: 2,
        author: "bob".into(),
        body: "seen".into(),
        created_at: 3,
    });
    assert_eq!(
        serde_json::to_value(c).unwrap(),
        json!({"id": 1, "alert_id": 2, "author": "bob", "text": "seen", "created_at": 3})
    );
    let h = api::StatusChange::from(StatusChange {
        id: 1,
        alert_id: 2,
        actor: "bob".into(),
        from: AlertStatus::New,
        to: AlertStatus::Resolved,
        note: Some("done".into()),
        changed_at: 4,
    });
    assert_eq!(
        serde_json::to_value(h).unwrap(),
        json!({"actor": "bob", "from": "new", "to": "resolved", "comment": "done", "changed_at": 4})
    );
    let request = api::StatusRequest {
        status: AlertStatus::Acknowledged,
        comment: None,
    };
    assert_eq!(
        serde_json::to_value(request).unwrap(),
        json!({"status": "acknowledged"})
    );
}
