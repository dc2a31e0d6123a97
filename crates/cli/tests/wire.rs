//! The API bodies of `dozor-model` (what the CLI and the agent read and send) are the ones the
//! server writes and reads. The server still declares its own copies of these bodies (they
//! carry its OpenAPI schemas); until it uses the model's, this test keeps the two in step:
//! every body the server writes reads into the model's type and writes back the same JSON,
//! and every request the model's types write is one the server accepts.

use dozor_model::api;
use dozor_server::agents as server_agents;
use dozor_server::api as server_api;
use dozor_store::{AgentCommand, AgentFacts, Alert, AlertStatus, CommandStatus, Level};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use uuid::Uuid;

/// The server's body reads as `M` and `M` writes it back unchanged (no member lost, renamed
/// or retyped).
fn reads_back<M: Serialize + DeserializeOwned>(written_by_server: &impl Serialize) -> M {
    let written = serde_json::to_value(written_by_server).expect("the server's body serializes");
    let read: M = serde_json::from_value(written.clone())
        .unwrap_or_else(|e| panic!("the model does not read {written}: {e}"));
    assert_eq!(serde_json::to_value(&read).expect("serializes"), written);
    read
}

/// A request the model writes is accepted by the server's (strict) type.
fn accepted<S: DeserializeOwned>(sent: &impl Serialize) -> S {
    let body = serde_json::to_value(sent).expect("serializes");
    serde_json::from_value(body.clone())
        .unwrap_or_else(|e| panic!("the server refuses {body}: {e}"))
}

fn alert() -> Alert {
    Alert {
        id: 7,
        rule_id: "r-1".into(),
        rule_title: "Whoami".into(),
        level: Level::High,
        tags: vec!["attack.t1033".into()],
        agent_id: Some("a1".into()),
        first_seen: 1,
        last_seen: 2,
        count: 3,
        event_ids: vec![Uuid::from_u128(1), Uuid::from_u128(2)],
        status: AlertStatus::Acknowledged,
        assignee: None,
        created_at: 4,
        updated_at: 5,
    }
}

fn event(n: u128) -> dozor_store::StoredEvent {
    dozor_store::StoredEvent {
        id: Uuid::from_u128(n),
        ts: 10,
        received_at: 11,
        agent_id: None,
        doc: json!({"event": {"code": "4688"}, "host": {"name": "web-1"}}),
    }
}

fn facts() -> AgentFacts {
    AgentFacts {
        hostname: "web-01".into(),
        os_type: "linux".into(),
        os_name: Some("Ubuntu".into()),
        os_version: None,
        arch: Some("x86_64".into()),
        agent_version: "0.1.0".into(),
        ips: vec!["10.0.0.5".into()],
    }
}

#[test]
fn the_alert_bodies_read_as_the_server_writes_them() {
    let comment = dozor_store::Comment {
        id: 1,
        alert_id: 7,
        author: "bob".into(),
        body: "looking".into(),
        created_at: 6,
    };
    let step = dozor_store::StatusChange {
        id: 2,
        alert_id: 7,
        actor: "bob".into(),
        from: AlertStatus::New,
        to: AlertStatus::Acknowledged,
        note: Some("mine".into()),
        changed_at: 7,
    };
    let detail = server_api::AlertDetail {
        alert: server_api::Alert::from(alert()),
        comments: vec![server_api::Comment::from(comment.clone())],
        history: vec![server_api::StatusChange::from(step.clone())],
        events: vec![server_api::StoredEvent::from(event(1))],
        missing_events: vec![Uuid::from_u128(2)],
    };
    let read: api::AlertDetail = reads_back(&detail);
    assert_eq!(read.alert, alert());
    assert_eq!(read.comments, [api::Comment::from(comment)]);
    assert_eq!(read.history, [api::StatusChange::from(step)]);
    assert_eq!(read.events, [event(1)]);

    let page = server_api::AlertPage {
        alerts: vec![server_api::Alert::from(alert())],
        next_cursor: Some("c".into()),
    };
    let read: dozor_model::AlertPage = reads_back(&page);
    assert_eq!(read.alerts, [alert()]);
    for change in ["created", "updated"] {
        let notice = server_api::StreamNotice {
            change: change.into(),
            alert: server_api::Alert::from(alert()),
        };
        let read: api::AlertNotice = reads_back(&notice);
        assert_eq!(read.change.as_str(), change);
    }
    let events = server_api::EventPage {
        events: vec![server_api::StoredEvent::from(event(1))],
        next_cursor: None,
    };
    let read: dozor_model::EventPage = reads_back(&events);
    assert_eq!(read.events, [event(1)]);

    let status: server_api::StatusRequest = accepted(&api::StatusRequest {
        status: AlertStatus::Resolved,
        comment: Some("fixed".into()),
    });
    assert_eq!(status.status, AlertStatus::Resolved);
    assert_eq!(status.comment.as_deref(), Some("fixed"));
    let assignee: server_api::AssigneeRequest = accepted(&api::AssigneeRequest { assignee: None });
    assert_eq!(assignee.assignee, None);
    let comment: server_api::CommentRequest = accepted(&api::CommentRequest {
        text: "seen".into(),
    });
    assert_eq!(comment.text, "seen");
}

#[test]
fn the_agent_bodies_read_as_the_server_writes_them() {
    let command = AgentCommand {
        id: Uuid::from_u128(42),
        agent_id: "a1".into(),
        kind: api::SCAN_PATH.into(),
        args: json!({"path": "/srv", "recursive": false}),
        status: CommandStatus::Delivered,
        requested_by: "alice".into(),
        created_at: 1,
        delivered_at: Some(2),
        attempts: 1,
        finished_at: None,
        result: None,
        error: None,
    };
    let answer = server_agents::HeartbeatResponse {
        agent_id: "a1".into(),
        status: server_agents::AgentStatus::Degraded,
        heartbeat_interval_secs: 30,
        server_time: 5,
        certificate_not_after: 9,
        yara_rules_version: Some("v3".into()),
        commands: vec![server_agents::CommandDelivery::from(command.clone())],
    };
    let read: api::HeartbeatResponse = reads_back(&answer);
    assert_eq!(read.commands, [api::CommandDelivery::from(command)]);
    let quiet = server_agents::HeartbeatResponse {
        yara_rules_version: None,
        commands: vec![],
        ..answer
    };
    let _: api::HeartbeatResponse = reads_back(&quiet);
    for status in [
        server_agents::AgentStatus::Online,
        server_agents::AgentStatus::Degraded,
        server_agents::AgentStatus::Offline,
        server_agents::AgentStatus::Revoked,
    ] {
        let read: dozor_model::AgentStatus = reads_back(&status);
        assert_eq!(read.as_str(), status.as_str());
    }

    let enrolled = server_agents::EnrollResponse {
        agent_id: "a1".into(),
        certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
        ca_pem: "-----BEGIN CERTIFICATE-----".into(),
        certificate_not_after: 9,
        renewed: false,
        heartbeat_interval_secs: 30,
        duplicates: vec![server_agents::DuplicateAgent {
            id: "a0".into(),
            last_seen: 3,
            revoked: true,
        }],
    };
    let _: api::EnrollResponse = reads_back(&enrolled);

    let enroll: server_agents::EnrollRequest = accepted(&api::EnrollRequest {
        token: Some("dze_x".into()),
        csr_pem: "-----BEGIN CERTIFICATE REQUEST-----".into(),
        facts: facts(),
        replace_duplicates: true,
    });
    assert_eq!(enroll.facts, facts());
    let mut rest = serde_json::Map::new();
    rest.insert("spool".into(), json!({"queued_records": 0}));
    let beat: server_agents::HeartbeatRequest = accepted(&api::HeartbeatRequest {
        facts: facts(),
        health: vec!["spool full".into()],
        rest: rest.clone(),
    });
    assert_eq!(beat.health, ["spool full"]);
    assert_eq!(beat.rest, rest);
    let result = api::CommandResultRequest {
        status: CommandStatus::Failed,
        result: Some(json!({})),
        error: Some("no such path".into()),
    };
    assert_eq!(
        serde_json::to_value(&result).expect("serializes"),
        json!({"status": "failed", "result": {}, "error": "no such path"}),
        "the result report the server's result route reads"
    );
}
