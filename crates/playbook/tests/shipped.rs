//! The two base playbooks shipped with the crate: they parse with Dozor's module catalog,
//! their triggers select the right alerts, and they run as documented.

mod common;

use std::sync::Arc;

use common::{MemoryRecorder, Scripted, ScriptedApprover, alert, approved, input};
use dozor_model::{AlertChange, Level};
use dozor_playbook::{
    ApprovalDecision, Catalog, Engine, Playbook, Registry, RunStatus, StepStatus, parse,
};
use serde_json::json;

fn shipped(name: &str) -> Playbook {
    let path = format!("{}/playbooks/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    parse(name, &text, &Catalog::dozor()).unwrap_or_else(|e| panic!("{e}"))
}

/// Every module of the Dozor catalog as a scripted double.
struct Dozor {
    modules: Vec<(String, Arc<Scripted>)>,
    approver: Arc<ScriptedApprover>,
    engine: Engine,
}

impl Dozor {
    fn new(decisions: Vec<ApprovalDecision>) -> Self {
        let catalog = Catalog::dozor();
        let mut registry = Registry::new();
        let mut modules = Vec::new();
        for name in catalog.names().filter(|n| n.contains('.')) {
            let module = Scripted::new();
            registry.register(catalog.get(name).unwrap().clone(), module.clone());
            modules.push((name.to_owned(), module));
        }
        let approver = ScriptedApprover::with(decisions);
        let engine = Engine::new(
            registry,
            approver.clone(),
            Arc::new(MemoryRecorder::default()),
        );
        Dozor {
            modules,
            approver,
            engine,
        }
    }

    fn calls(&self, module: &str) -> Vec<serde_json::Value> {
        self.modules
            .iter()
            .find(|(n, _)| n == module)
            .map(|(_, m)| m.calls())
            .unwrap_or_default()
    }
}

#[test]
fn both_base_playbooks_parse_with_the_dozor_catalog() {
    for name in ["notify-operator.yml", "quarantine-host.yml"] {
        let playbook = shipped(name);
        assert!(!playbook.plays.is_empty(), "{name}");
        assert!(playbook.plays[0].trigger.as_ref().unwrap().manual, "{name}");
    }
}

#[test]
fn notify_operator_triggers_on_high_and_critical_alerts_only() {
    let playbook = shipped("notify-operator.yml");
    let trigger = playbook.plays[0].trigger.as_ref().unwrap();
    let on_alerts = trigger.alert.as_ref().unwrap();
    for (level, expected) in [
        (Level::Informational, false),
        (Level::Medium, false),
        (Level::High, true),
        (Level::Critical, true),
    ] {
        assert_eq!(
            on_alerts.matches(AlertChange::Created, &alert(level), None),
            expected,
            "{level:?}"
        );
    }
    assert!(!on_alerts.matches(AlertChange::Updated, &alert(Level::Critical), None));
}

#[tokio::test]
async fn notify_operator_sends_a_link_to_the_alert_on_each_configured_channel() {
    let dozor = Dozor::new(vec![]);
    let mut input = input();
    input
        .extra_vars
        .insert("webhook_url".into(), json!("https://hooks.example/dozor"));
    input
        .extra_vars
        .insert("telegram_chat_id".into(), json!("-100123"));
    let run = dozor
        .engine
        .run(&shipped("notify-operator.yml"), &input)
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let webhook = dozor.calls("notify.webhook");
    assert_eq!(webhook.len(), 1);
    assert_eq!(webhook[0]["url"], "https://hooks.example/dozor");
    assert_eq!(
        webhook[0]["body"]["link"],
        "https://dozor.example/ui/alerts/42"
    );
    assert_eq!(webhook[0]["body"]["level"], "high");
    let telegram = dozor.calls("notify.telegram");
    let text = telegram[0]["text"].as_str().unwrap();
    assert!(text.starts_with("[Dozor] HIGH: Whoami executed"), "{text}");
    assert!(
        text.contains("https://dozor.example/ui/alerts/42"),
        "{text}"
    );
    // Channels left empty are skipped.
    assert!(dozor.calls("notify.email").is_empty());
    assert!(dozor.calls("notify.mattermost").is_empty());
    let skipped = run
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Skipped)
        .count();
    assert_eq!(skipped, 2);
}

#[tokio::test]
async fn quarantine_host_isolates_after_approval_notifies_and_releases_on_command() {
    let dozor = Dozor::new(vec![approved("alice"), approved("bob")]);
    let mut input = input();
    input.alert = Some(alert(Level::Critical));
    input
        .extra_vars
        .insert("webhook_url".into(), json!("https://hooks.example/dozor"));
    let playbook = shipped("quarantine-host.yml");
    let on_alerts = playbook.plays[0].trigger.as_ref().unwrap().alert.as_ref();
    assert!(
        on_alerts
            .unwrap()
            .matches(AlertChange::Created, input.alert.as_ref().unwrap(), None)
    );
    let run = dozor.engine.run(&playbook, &input).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    let requests = dozor.approver.requests();
    assert_eq!(requests.len(), 2, "isolation, then the release order");
    assert!(
        requests[0]
            .reason
            .contains("Isolate agent-7 (agent-7) after alert 42: Whoami executed"),
        "{}",
        requests[0].reason
    );
    assert_eq!(
        dozor.calls("agent.isolate_host"),
        vec![
            json!({"agent_id": "agent-7", "release_after": "", "reason": "alert 42: Whoami executed"})
        ]
    );
    assert_eq!(
        dozor.calls("notify.webhook")[0]["body"]["event"],
        "host_isolated"
    );
    assert_eq!(
        dozor.calls("agent.release_host"),
        vec![json!({"agent_id": "agent-7", "reason": "released on command by bob"})]
    );
}

#[tokio::test]
async fn quarantine_host_does_nothing_when_the_isolation_is_rejected_or_expires() {
    for decision in [
        ApprovalDecision::Rejected {
            by: "carol".to_owned(),
            comment: None,
        },
        ApprovalDecision::Expired,
    ] {
        let dozor = Dozor::new(vec![decision]);
        let run = dozor
            .engine
            .run(&shipped("quarantine-host.yml"), &input())
            .await;
        assert_eq!(run.status, RunStatus::Failed);
        assert!(run.error.as_deref().unwrap().contains("was not isolated"));
        assert!(dozor.calls("agent.isolate_host").is_empty());
        assert!(dozor.calls("notify.webhook").is_empty());
        assert!(dozor.calls("agent.release_host").is_empty());
    }
}

#[tokio::test]
async fn quarantine_host_runs_on_an_agent_without_an_alert() {
    let dozor = Dozor::new(vec![approved("alice")]);
    let mut input = input();
    input.alert = None;
    input.trigger = "manual".to_owned();
    input.agent = Some(dozor_model::Agent {
        id: "agent-9".to_owned(),
        facts: dozor_model::AgentFacts {
            hostname: "web-9".to_owned(),
            ..Default::default()
        },
        enrolled_at: 0,
        enrolled_by: "token:1".to_owned(),
        cert_sha256: String::new(),
        cert_not_after: 0,
        reenrolled_at: None,
        last_seen: 0,
        last_heartbeat: None,
        health: Vec::new(),
        offline_since: None,
        revoked_at: None,
        revoked_by: None,
    });
    let run = dozor
        .engine
        .run(&shipped("quarantine-host.yml"), &input)
        .await;
    // No release order (the second approval expires): isolated, not released.
    assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    assert_eq!(
        dozor.calls("agent.isolate_host")[0]["reason"],
        "a manual request"
    );
    assert!(dozor.calls("agent.release_host").is_empty());
    assert!(
        dozor.approver.requests()[0]
            .reason
            .starts_with("Isolate web-9 (agent-9)")
    );
}
