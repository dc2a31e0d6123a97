//! The agent's own messages (enrollment, heartbeat, command results) are declared twice: by
//! `dozor-model` (what the agent sends and reads) and by the server (strict request types with
//! their own checks). This test keeps the two in step: every body the server writes reads into
//! the model's type and writes back the same JSON, and every request the model's types write is
//! one the server accepts. (The operator API's bodies are the model's types on both sides.)

use dozor_model::api;
use dozor_server::agents as server_agents;
use dozor_store::{AgentCommand, AgentFacts, CommandStatus};
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
