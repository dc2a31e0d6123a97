//! Response (issue 13) over real HTTPS with a really enrolled agent: destructive actions wait
//! for an approval and are delivered by the agent's long poll in well under 2 s once
//! approved; rejected ones are never sent; playbooks from the directory and the API (parsed
//! first: a bad one is refused with its line), manual runs whose agent step waits for an
//! approval, then for the agent's result; a broken template fails its step and `rescue` runs;
//! an alert notice starts the playbooks whose trigger matches; everything audited.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, NoRules, Response, Running, api_token, enroll_agent, test_env};
use dozor_model::{Alert, AlertChange, Level};
use dozor_server::{ApiState, MemorySink, Services};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{AuditQuery, Role, Store, StoreConfig};
use serde_json::{Value, json};

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    analyst: String,
    analyst2: String,
    admin: String,
    notices: tokio::sync::broadcast::Sender<dozor_pipeline::AlertNotice>,
    running: Running,
}

fn facts(hostname: &str) -> Value {
    json!({
        "hostname": hostname, "os_type": "linux", "os_name": "Debian", "os_version": "12",
        "arch": "x86_64", "agent_version": "0.1.0", "ips": ["10.0.0.7"],
    })
}

impl Env {
    async fn start(env: &[(&str, &str)]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
            dir.path().join("store"),
        )))
        .await
        .unwrap();
        let analyst = api_token(store.as_ref(), "bob-analyst", Role::Analyst).await;
        let analyst2 = api_token(store.as_ref(), "dave-analyst", Role::Analyst).await;
        let admin = api_token(store.as_ref(), "alice-admin", Role::Admin).await;
        let config = common::config(dir.path(), test_env(env)).unwrap();
        let notices = tokio::sync::broadcast::channel(16).0;
        let services = Services::new(
            Arc::new(MemorySink::new(1000)),
            Arc::new(dozor_server::StoreTokens(store.clone())),
        )
        .with_api(Arc::new(ApiState {
            store: store.clone(),
            rules: Arc::new(NoRules),
            notices: notices.clone(),
            pipeline_stats: None,
            agent_notices: tokio::sync::broadcast::channel(16).0,
        }));
        let running = Running::start(config, services).await;
        Env {
            _dir: dir,
            store,
            analyst,
            analyst2,
            admin,
            notices,
            running,
        }
    }

    async fn send(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.running
            .client()
            .send(
                method,
                path,
                &headers,
                body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            )
            .await
            .unwrap()
    }

    async fn put_playbook(&self, name: &str, yaml: &str) -> Response {
        let auth = format!("Bearer {}", self.admin);
        self.running
            .client()
            .send(
                "PUT",
                &format!("/api/v1/playbooks/{name}"),
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/yaml"),
                ],
                yaml.as_bytes().to_vec(),
            )
            .await
            .unwrap()
    }

    async fn enroll(&self, hostname: &str) -> (String, Client) {
        enroll_agent(
            self.store.as_ref(),
            &self.running.client(),
            &self.running.ca_pem,
            facts(hostname),
        )
        .await
    }

    async fn audit_actions(&self) -> Vec<String> {
        let mut entries = self
            .store
            .list_audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        entries.reverse();
        entries.into_iter().map(|e| e.action).collect()
    }

    /// Polls a run until it ends.
    async fn finished_run(&self, id: &str) -> Value {
        for _ in 0..200 {
            let r = self
                .send(
                    "GET",
                    &format!("/api/v1/playbook-runs/{id}"),
                    &self.analyst,
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let detail = r.json();
            if detail["run"]["status"] != "running" {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("run {id} did not end");
    }

    /// Waits for a pending approval of this action.
    async fn pending_approval(&self, action: &str) -> Value {
        for _ in 0..200 {
            let r = self
                .send(
                    "GET",
                    "/api/v1/approvals?status=pending",
                    &self.analyst,
                    None,
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            if let Some(a) = r.json()["approvals"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["action"] == action)
            {
                return a.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no pending approval of {action}");
    }
}

/// The agent's long poll; the commands it got.
async fn poll(agent: &Client, wait_secs: u64) -> Vec<Value> {
    let r = agent
        .send(
            "GET",
            &format!("/api/v1/agents/commands/next?wait_secs={wait_secs}"),
            &[],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["commands"].as_array().unwrap().clone()
}

async fn report(agent: &Client, id: &str, body: Value) {
    let r = agent
        .send(
            "POST",
            &format!("/api/v1/agents/commands/{id}/result"),
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn destructive_actions_wait_for_an_approval_and_reach_the_agent_at_once() {
    let env = Env::start(&[]).await;
    let (agent_id, agent) = env.enroll("web-01").await;

    // the plain command route never bypasses the approval
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/commands"),
            &env.analyst,
            Some(json!({"kind": "isolate_host", "args": {}})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["type"], "urn:dozor:problem:approval-required");

    // bad arguments name the problem
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/actions"),
            &env.analyst,
            Some(json!({"kind": "kill_process", "args": {"pid": 42}})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("start_time_ms"), "{}", r.text());

    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/actions"),
            &env.analyst,
            Some(json!({"kind": "isolate_host", "args": {"allow_hosts": ["10.0.0.53"]}, "reason": "ransomware note on web-01"})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let answer = r.json();
    assert!(answer["command"].is_null(), "{answer}");
    let approval = &answer["approval"];
    assert_eq!(approval["status"], "pending");
    assert_eq!(approval["action"], "isolate_host");
    assert_eq!(approval["reason"], "ransomware note on web-01");
    let approval_id = approval["id"].as_str().unwrap().to_owned();

    // nothing reaches the agent before the approval
    assert!(poll(&agent, 1).await.is_empty());

    // the agent waits; the approval wakes it
    let waiting = tokio::spawn({
        let agent = agent.clone();
        async move {
            let started = Instant::now();
            let commands = poll(&agent, 20).await;
            (commands, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let approved_at = Instant::now();
    let r = env
        .send(
            "POST",
            &format!("/api/v1/approvals/{approval_id}/approve"),
            &env.analyst2,
            Some(json!({"comment": "confirmed with the web team"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let decided = r.json();
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "dave-analyst");
    let command_id = decided["command_id"].as_str().unwrap().to_owned();
    let (commands, _) = waiting.await.unwrap();
    let delivered_after = approved_at.elapsed();
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0]["id"], command_id.as_str());
    assert_eq!(commands[0]["kind"], "isolate_host");
    assert_eq!(commands[0]["args"]["allow_hosts"], json!(["10.0.0.53"]));
    assert!(
        delivered_after < Duration::from_secs(2),
        "delivered {delivered_after:?} after the approval"
    );
    report(
        &agent,
        &command_id,
        json!({"status": "done", "result": {"phase": "isolated"}}),
    )
    .await;

    // a second decision is refused
    let r = env
        .send(
            "POST",
            &format!("/api/v1/approvals/{approval_id}/reject"),
            &env.analyst,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["type"], "urn:dozor:problem:already-decided");

    // a rejected action is never sent
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/actions"),
            &env.analyst,
            Some(json!({"kind": "block_ip", "args": {"addresses": ["203.0.113.9"]}})),
        )
        .await;
    let id = r.json()["approval"]["id"].as_str().unwrap().to_owned();
    let r = env
        .send(
            "POST",
            &format!("/api/v1/approvals/{id}/reject"),
            &env.admin,
            Some(json!({"comment": "that is our partner"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["command_id"].is_null());
    assert!(poll(&agent, 1).await.is_empty());

    // harmless kinds are queued at once
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/actions"),
            &env.analyst,
            Some(json!({"kind": "release_host", "args": {"reason": "clean"}})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["command"]["kind"], "release_host");
    assert_eq!(poll(&agent, 5).await.len(), 1);

    let actions = env.audit_actions().await;
    for expected in [
        "approval.requested",
        "approval.approved",
        "agent.command",
        "approval.rejected",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
    env.running.stop().await;
}

#[tokio::test]
async fn four_eyes_refuses_the_requester_decision() {
    let env = Env::start(&[("DOZOR_RESPONSE_OTHER_APPROVER", "true")]).await;
    let (agent_id, _agent) = env.enroll("db-01").await;
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/actions"),
            &env.analyst,
            Some(json!({"kind": "quarantine_file", "args": {"path": "/tmp/dropper.elf"}})),
        )
        .await;
    let id = r.json()["approval"]["id"].as_str().unwrap().to_owned();
    let r = env
        .send(
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            &env.analyst,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = env
        .send(
            "POST",
            &format!("/api/v1/approvals/{id}/approve"),
            &env.analyst2,
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    env.running.stop().await;
}

const CONTAIN: &str = r#"
- name: Contain
  trigger:
    manual: true
  tasks:
    - name: Isolate
      block:
        - agent.isolate_host:
            reason: "asked by {{ run.requested_by }}"
          register: isolation
        - name: Broken template
          debug:
            msg: "{{ no_such_variable.field }}"
      rescue:
        - name: Note the failure
          set_fact:
            failed_task: "{{ ansible_failed_task.name }}"
      always:
        - debug:
            msg: "isolated={{ isolation.status }}"
"#;

#[tokio::test]
async fn playbooks_are_checked_run_by_hand_and_wait_for_approval_and_agent() {
    let env = Env::start(&[]).await;
    let (agent_id, agent) = env.enroll("app-01").await;

    // the base playbooks came from the directory and parse
    let r = env
        .send("GET", "/api/v1/playbooks", &env.analyst, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let names: Vec<&str> = list["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["notify-operator", "quarantine-host"]);
    for p in list["playbooks"].as_array().unwrap() {
        assert!(p["error"].is_null(), "{p}");
        assert_eq!(p["origin"], "file");
    }
    // file playbooks are changed in their file
    let r = env.put_playbook("quarantine-host", CONTAIN).await;
    assert_eq!(r.status, 409, "{}", r.text());

    // refused with the line and the reason
    let r = env
        .put_playbook(
            "bad",
            "- name: Bad\n  tasks:\n    - name: x\n      agent.format_disk:\n        agent_id: a\n",
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let p = r.json();
    assert_eq!(p["line"], 4, "{p}");
    assert!(
        p["reason"].as_str().unwrap().contains("agent.format_disk"),
        "{p}"
    );

    let r = env.put_playbook("contain", CONTAIN).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["plays"][0]["triggers"], json!(["manual"]));

    // a dry run calls nothing and asks nothing
    let r = env
        .send(
            "POST",
            "/api/v1/playbooks/contain/run",
            &env.analyst,
            Some(json!({"agent_id": agent_id, "dry_run": true})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let dry = env.finished_run(r.json()["id"].as_str().unwrap()).await;
    assert!(
        dry["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] == "dry_run"),
        "{dry}"
    );
    assert!(poll(&agent, 1).await.is_empty());

    let r = env
        .send(
            "POST",
            "/api/v1/playbooks/contain/run",
            &env.analyst,
            Some(json!({"agent_id": agent_id})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let run_id = r.json()["id"].as_str().unwrap().to_owned();
    let approval = env.pending_approval("agent.isolate_host").await;
    assert_eq!(approval["run_id"], run_id.as_str());
    assert_eq!(approval["requested_by"], "bob-analyst");
    assert!(poll(&agent, 1).await.is_empty(), "sent before the approval");
    let r = env
        .send(
            "POST",
            &format!(
                "/api/v1/approvals/{}/approve",
                approval["id"].as_str().unwrap()
            ),
            &env.admin,
            Some(json!({"comment": "go"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let commands = poll(&agent, 10).await;
    assert_eq!(commands.len(), 1, "{commands:?}");
    assert_eq!(commands[0]["args"]["reason"], "asked by bob-analyst");
    report(
        &agent,
        commands[0]["id"].as_str().unwrap(),
        json!({"status": "done", "result": {"phase": "isolated"}}),
    )
    .await;

    let detail = env.finished_run(&run_id).await;
    // the broken template failed its step, rescue ran, so the run succeeded
    assert_eq!(detail["run"]["status"], "succeeded", "{detail}");
    let steps = detail["steps"].as_array().unwrap();
    let isolate = steps
        .iter()
        .find(|s| s["record"]["module"] == "agent.isolate_host")
        .unwrap();
    assert_eq!(isolate["status"], "ok");
    assert_eq!(isolate["record"]["approval"]["by"], "alice-admin");
    assert_eq!(isolate["record"]["output"]["result"]["phase"], "isolated");
    let broken = steps
        .iter()
        .find(|s| s["record"]["task"] == "Broken template")
        .unwrap();
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["record"]["error"]
            .as_str()
            .unwrap()
            .contains("no_such_variable"),
        "{broken}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s["record"]["task"] == "Note the failure")
    );
    assert_eq!(detail["approvals"][0]["status"], "approved");

    let actions = env.audit_actions().await;
    for expected in [
        "playbook.put",
        "playbook.run",
        "approval.requested",
        "approval.approved",
        "agent.command",
        "playbook.run.finished",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
    env.running.stop().await;
}

#[tokio::test]
async fn an_alert_notice_starts_matching_playbooks_and_a_rejection_runs_rescue() {
    let env = Env::start(&[]).await;
    let (agent_id, agent) = env.enroll("win-07").await;
    let r = env
        .put_playbook(
            "on-ransom",
            r#"
- name: On ransomware
  trigger:
    alert:
      rule_id: "ransom-*"
      level: high
  tasks:
    - name: Contain
      block:
        - agent.isolate_host:
            reason: "{{ alert.rule_title }}"
      rescue:
        - alert.comment:
            text: "not isolated: {{ ansible_failed_result.msg }}"
"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let alert_id = {
        // a real alert row, so alert.comment has something to comment on
        let d = dozor_store::Detection {
            rule_id: "ransom-note".into(),
            rule_title: "Ransom note written".into(),
            level: Level::Critical,
            tags: vec![],
            event_id: uuid::Uuid::now_v7(),
            agent_id: Some(agent_id.clone()),
            host: None,
            ts: dozor_store::now_ms(),
        };
        env.store
            .record_detection(&d, Duration::from_secs(60))
            .await
            .unwrap()
            .alert
            .id
    };
    let alert = env.store.get_alert(alert_id).await.unwrap().unwrap();
    // not matching: another rule
    let other = Alert {
        rule_id: "whoami".into(),
        ..alert.clone()
    };
    env.notices
        .send(dozor_pipeline::AlertNotice {
            change: AlertChange::Created,
            alert: other,
        })
        .unwrap();
    env.notices
        .send(dozor_pipeline::AlertNotice {
            change: AlertChange::Created,
            alert: alert.clone(),
        })
        .unwrap();
    let approval = env.pending_approval("agent.isolate_host").await;
    assert_eq!(approval["requested_by"], "trigger");
    assert_eq!(approval["reason"], "Ransom note written");
    let r = env
        .send(
            "POST",
            &format!(
                "/api/v1/approvals/{}/reject",
                approval["id"].as_str().unwrap()
            ),
            &env.analyst,
            Some(json!({"comment": "test host"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = env
        .send(
            "GET",
            &format!("/api/v1/playbook-runs?alert_id={alert_id}&playbook=on-ransom"),
            &env.analyst,
            None,
        )
        .await;
    let runs = r.json()["runs"].as_array().unwrap().clone();
    assert_eq!(
        runs.len(),
        1,
        "only the matching alert started a run: {runs:?}"
    );
    let detail = env.finished_run(runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(detail["run"]["trigger"], "alert");
    assert!(
        poll(&agent, 1).await.is_empty(),
        "a rejected isolation was sent"
    );
    let comments = env.store.comments(alert_id).await.unwrap();
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].body.contains("rejected by bob-analyst"),
        "{}",
        comments[0].body
    );
    assert_eq!(comments[0].author, "playbook:on-ransom");
    // the base notify-operator playbook ran for both critical alerts (no channel set: its
    // steps are skipped)
    let r = env
        .send(
            "GET",
            "/api/v1/playbook-runs?playbook=notify-operator",
            &env.analyst,
            None,
        )
        .await;
    assert_eq!(r.json()["runs"].as_array().unwrap().len(), 2);
    env.running.stop().await;
}

/// What the local receivers got: (path, headers, body) in order.
type Received = Arc<std::sync::Mutex<Vec<(String, axum::http::HeaderMap, Vec<u8>)>>>;

/// A local HTTP receiver on 127.0.0.1 answering `answer` to every POST; it records them.
async fn receiver(answer: &'static str) -> (std::net::SocketAddr, Received) {
    let got: Received = Default::default();
    let app = axum::Router::new().fallback({
        let got = got.clone();
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                got.lock()
                    .unwrap()
                    .push((uri.path().to_owned(), headers, body.to_vec()));
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    answer,
                )
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

#[tokio::test]
async fn a_critical_alert_reaches_the_operators_through_a_signed_webhook_and_telegram() {
    // Telegram itself can't be reached from here: a local server speaks the Bot API's
    // sendMessage (`/bot<token>/sendMessage`, answering `{"ok": true, ...}`).
    let (hook_addr, hooks) = receiver("{}").await;
    let (tg_addr, telegram) =
        receiver(r#"{"ok":true,"result":{"message_id":7,"date":0,"chat":{"id":-1001}}}"#).await;
    let dir = tempfile::tempdir().unwrap();
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir(&playbooks).unwrap();
    let notify = dozor_playbook::BASE_PLAYBOOKS[0]
        .1
        .replace(
            "webhook_url: \"\"",
            &format!("webhook_url: \"http://{hook_addr}/dozor\""),
        )
        .replace("telegram_chat_id: \"\"", "telegram_chat_id: \"-1001\"");
    std::fs::write(playbooks.join("notify-operator.yml"), notify).unwrap();
    let tg_url = format!("http://{tg_addr}");
    let playbooks_dir = playbooks.display().to_string();
    let env = Env::start(&[
        ("DOZOR_RESPONSE_PLAYBOOKS_DIR", playbooks_dir.as_str()),
        ("DOZOR_RESPONSE_PUBLIC_URL", "https://dozor.example.org"),
        ("DOZOR_NOTIFY_WEBHOOK_SECRET", "hook-secret-123"),
        ("DOZOR_NOTIFY_TELEGRAM_API_URL", tg_url.as_str()),
        ("DOZOR_NOTIFY_TELEGRAM_TOKEN", "123456:very-secret-token"),
    ])
    .await;
    let d = dozor_store::Detection {
        rule_id: "mimikatz".into(),
        rule_title: "Mimikatz command line".into(),
        level: Level::Critical,
        tags: vec![],
        event_id: uuid::Uuid::now_v7(),
        agent_id: None,
        host: None,
        ts: dozor_store::now_ms(),
    };
    let alert = env
        .store
        .record_detection(&d, Duration::from_secs(60))
        .await
        .unwrap()
        .alert;
    let sent = Instant::now();
    env.notices
        .send(dozor_pipeline::AlertNotice {
            change: AlertChange::Created,
            alert: alert.clone(),
        })
        .unwrap();
    let mut waited = 0;
    while (hooks.lock().unwrap().is_empty() || telegram.lock().unwrap().is_empty()) && waited < 100
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let delivered = sent.elapsed();
    assert!(delivered < Duration::from_secs(2), "{delivered:?}");
    {
        let hooks = hooks.lock().unwrap();
        assert_eq!(hooks.len(), 1);
        let (path, headers, body) = &hooks[0];
        assert_eq!(path, "/dozor");
        let ts = headers["x-dozor-timestamp"].to_str().unwrap();
        let sig = headers["x-dozor-signature"].to_str().unwrap();
        assert!(dozor_notify::verify_signature(
            &dozor_notify::Secret::new("hook-secret-123"),
            ts,
            body,
            sig
        ));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["rule_id"], "mimikatz");
        assert_eq!(
            payload["link"],
            format!("https://dozor.example.org/ui/alerts/{}", alert.id)
        );
        let telegram = telegram.lock().unwrap();
        let (path, _, body) = &telegram[0];
        assert_eq!(path, "/bot123456:very-secret-token/sendMessage");
        let message: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(message["chat_id"].to_string().trim_matches('"'), "-1001");
        assert!(
            message["text"]
                .as_str()
                .unwrap()
                .contains("CRITICAL: Mimikatz command line"),
            "{message}"
        );
    }
    // the run is stored with its steps, and no secret is in it
    let r = env
        .send(
            "GET",
            "/api/v1/playbook-runs?playbook=notify-operator",
            &env.analyst,
            None,
        )
        .await;
    let run_id = r.json()["runs"][0]["id"].as_str().unwrap().to_owned();
    let detail = env.finished_run(&run_id).await;
    assert_eq!(detail["run"]["status"], "succeeded", "{detail}");
    let text = detail.to_string();
    assert!(!text.contains("very-secret-token"), "{text}");
    assert!(!text.contains("hook-secret-123"), "{text}");
    env.running.stop().await;
}

#[tokio::test]
async fn approvers_are_told_about_each_request_once_with_a_link_to_the_inbox() {
    let (hook_addr, hooks) = receiver("{}").await;
    let url = format!("http://{hook_addr}/approvers");
    let env = Env::start(&[
        ("DOZOR_RESPONSE_APPROVERS_WEBHOOK", url.as_str()),
        ("DOZOR_RESPONSE_PUBLIC_URL", "https://soc.example.org"),
        ("DOZOR_NOTIFY_WEBHOOK_SECRET", "approvers-key"),
    ])
    .await;
    let (agent_id, _agent) = env.enroll("fin-01").await;
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{agent_id}/actions"),
            &env.analyst,
            Some(json!({"kind": "isolate_host", "reason": "beaconing to a known C2"})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let approval_id = r.json()["approval"]["id"].as_str().unwrap().to_owned();
    for _ in 0..60 {
        if !hooks.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // a later tick does not tell them again
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hooks = hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "told once");
    let (path, headers, body) = &hooks[0];
    assert_eq!(path, "/approvers");
    assert!(dozor_notify::verify_signature(
        &dozor_notify::Secret::new("approvers-key"),
        headers["x-dozor-timestamp"].to_str().unwrap(),
        body,
        headers["x-dozor-signature"].to_str().unwrap()
    ));
    let told: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(told["event"], "approval_requested");
    assert_eq!(told["approval_id"], approval_id.as_str());
    assert_eq!(told["action"], "isolate_host");
    assert_eq!(told["reason"], "beaconing to a known C2");
    assert_eq!(told["requested_by"], "bob-analyst");
    assert_eq!(told["link"], "https://soc.example.org/ui/approvals");
    env.running.stop().await;
}
