//! Commands from the server to agents (issue 6) over real HTTPS: an operator queues a
//! `scan_path`, a really enrolled agent (token + CSR → client certificate) gets it in its
//! heartbeat answer and reports the result with its certificate; redelivery and expiry;
//! validation problems that name the field; rights.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, NoRules, Response, api_token, enroll_agent, pinned_connector, test_env};
use dozor_server::{ApiState, MemorySink, Server, ServerError, Services};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{AuditQuery, Role, Store, StoreConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    analyst: String,
    viewer: String,
    addr: std::net::SocketAddr,
    ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
}

/// An enrolled agent: its id and a client that presents its certificate.
struct Agent {
    id: String,
    client: Client,
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
        let viewer = api_token(store.as_ref(), "carol-viewer", Role::Viewer).await;
        let config = common::config(dir.path(), test_env(env)).unwrap();
        let services = Services::new(
            Arc::new(MemorySink::new(1000)),
            Arc::new(dozor_server::StoreTokens(store.clone())),
        )
        .with_api(Arc::new(ApiState {
            store: store.clone(),
            rules: Arc::new(NoRules),
            notices: tokio::sync::broadcast::channel(16).0,
            pipeline_stats: None,
            agent_notices: tokio::sync::broadcast::channel(16).0,
        }));
        let server = Server::bind(config, services).await.unwrap();
        let addr = server.local_addr();
        let ca_pem = server.ca_certificate_pem().to_owned();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Env {
            _dir: dir,
            store,
            analyst,
            viewer,
            addr,
            ca_pem,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    fn client(&self) -> Client {
        Client {
            addr: self.addr,
            tls: Some(pinned_connector(&self.ca_pem)),
        }
    }

    async fn send(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.client()
            .send(
                method,
                path,
                &headers,
                body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            )
            .await
            .unwrap()
    }

    /// Enrolls an agent the way `dozor-agent enroll` does: an enrollment token and a CSR of a
    /// new key; the answer's certificate is then presented on every request.
    async fn enroll(&self, hostname: &str) -> Agent {
        let (id, client) = enroll_agent(
            self.store.as_ref(),
            &self.client(),
            &self.ca_pem,
            facts(hostname),
        )
        .await;
        Agent { id, client }
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
    }

    async fn audit(&self) -> Vec<dozor_store::AuditEntry> {
        let mut entries = self
            .store
            .list_audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        entries.reverse();
        entries
    }
}

impl Agent {
    async fn post(&self, path: &str, body: Value) -> Response {
        self.client
            .send(
                "POST",
                path,
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
            )
            .await
            .unwrap()
    }

    /// A heartbeat; the answer's commands.
    async fn heartbeat(&self) -> Vec<Value> {
        let r = self
            .post(
                "/api/v1/agents/heartbeat",
                json!({"facts": facts("host"), "health": [], "resources": {"cpu_percent": 1.0}}),
            )
            .await;
        assert_eq!(r.status, 200, "heartbeat: {}", r.text());
        let answer = r.json();
        assert_eq!(answer["agent_id"], self.id.as_str());
        match answer.get("commands") {
            None => Vec::new(),
            Some(Value::Array(commands)) => {
                assert!(!commands.is_empty(), "no commands: the member is absent");
                commands.clone()
            }
            Some(other) => panic!("commands: {other}"),
        }
    }

    async fn report(&self, command: &str, body: Value) -> Response {
        self.post(&format!("/api/v1/agents/commands/{command}/result"), body)
            .await
    }
}

fn problem(r: &Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], format!("urn:dozor:problem:{slug}"), "{p}");
    p
}

fn scan(path: &str) -> Value {
    json!({"kind": "scan_path", "args": {"path": path, "recursive": true}})
}

fn scan_result() -> Value {
    json!({
        "files_scanned": 1203, "files_skipped": 4, "bytes": 73_400_320, "duration_ms": 5120,
        "detections": [
            {"path": "/srv/www/upload/shell.php", "engine": "yara", "name": "php_webshell",
             "severity": "high", "verdict": "malicious"},
            {"path": "/srv/www/eicar.com", "engine": "clamav", "name": "Eicar-Test-Signature",
             "severity": "medium", "verdict": "malicious"},
        ],
        "errors": ["/srv/www/private: permission denied"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_goes_to_the_agent_and_its_result_comes_back() {
    let env = Env::start(&[]).await;
    let agent = env.enroll("web-01").await;
    let other = env.enroll("web-02").await;
    assert!(agent.heartbeat().await.is_empty(), "nothing queued yet");

    // an analyst queues a scan: 202, the command, its URL
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{}/commands", agent.id),
            &env.analyst,
            Some(scan("/srv/www")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(r.header("location"), format!("/api/v1/commands/{id}"));
    assert_eq!(created["status"], "pending");
    assert_eq!(created["kind"], "scan_path");
    assert_eq!(created["agent_id"], agent.id.as_str());
    assert_eq!(created["requested_by"], "bob-analyst");
    assert_eq!(
        created["args"],
        json!({"path": "/srv/www", "recursive": true})
    );
    assert_eq!(created["attempts"], 0);

    // the agent's next heartbeat answer carries it, once; the other agent's does not
    assert!(other.heartbeat().await.is_empty());
    let delivered = agent.heartbeat().await;
    assert_eq!(
        delivered,
        [json!({"id": id, "kind": "scan_path", "args": {"path": "/srv/www", "recursive": true}})]
    );
    assert!(agent.heartbeat().await.is_empty(), "not again at once");
    let c = env
        .send("GET", &format!("/api/v1/commands/{id}"), &env.viewer, None)
        .await
        .json();
    assert_eq!(
        (c["status"].as_str(), c["attempts"].as_u64()),
        (Some("delivered"), Some(1))
    );
    assert!(c["delivered_at"].is_i64());

    // only its own agent may report on it, with its certificate
    let r = other
        .report(
            &id,
            json!({"status": "done", "result": {"files_scanned": 0}}),
        )
        .await;
    problem(&r, 404, "not-found");
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/commands/{id}/result"),
            &env.analyst,
            Some(json!({"status": "done", "result": {}})),
        )
        .await;
    problem(&r, 401, "unauthorized");
    // a report that can't be used names what is wrong
    let p = problem(
        &agent.report(&id, json!({"status": "finished"})).await,
        422,
        "invalid-body",
    );
    assert_eq!(p["field"], "status");
    let p = problem(
        &agent
            .report(&id, json!({"status": "done", "result": [1, 2]}))
            .await,
        422,
        "invalid-body",
    );
    assert_eq!(p["field"], "result");
    let p = problem(
        &agent
            .report(
                &id,
                json!({"status": "done", "result": {"blob": "x".repeat(1024 * 1024)}}),
            )
            .await,
        413,
        "too-large",
    );
    assert_eq!(p["limit_name"], "result");
    problem(
        &agent.report("not-a-uuid", json!({"status": "done"})).await,
        404,
        "not-found",
    );

    // the result, once
    let r = agent
        .report(
            &id,
            json!({"status": "done", "result": scan_result(), "extra": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"recorded": true}));
    let r = agent
        .report(&id, json!({"status": "failed", "error": "again"}))
        .await;
    assert_eq!(r.json(), json!({"recorded": false}));

    // operators see it done, with the result; the listing has the counts
    let c = env
        .send("GET", &format!("/api/v1/commands/{id}"), &env.viewer, None)
        .await
        .json();
    assert_eq!(c["status"], "done");
    assert_eq!(c["result"], scan_result());
    assert!(c["error"].is_null());
    assert!(c["finished_at"].is_i64());
    let list = env
        .send(
            "GET",
            &format!("/api/v1/agents/{}/commands", agent.id),
            &env.viewer,
            None,
        )
        .await
        .json();
    let commands = list["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1);
    assert!(commands[0].get("result").is_none());
    assert_eq!(
        commands[0]["summary"],
        json!({"files_scanned": 1203, "files_skipped": 4, "bytes": 73_400_320,
               "duration_ms": 5120, "detections": 2, "errors": 1})
    );

    // a failed one
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{}/commands", agent.id),
            &env.analyst,
            Some(json!({"kind": "scan_path", "args": {"path": "C:\\Users\\Public", "recursive": false}})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let failed_id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(agent.heartbeat().await[0]["args"]["recursive"], false);
    let r = agent
        .report(
            &failed_id,
            json!({"status": "failed", "error": "C:\\Users\\Public: not found"}),
        )
        .await;
    assert_eq!(r.json(), json!({"recorded": true}));
    let c = env
        .send(
            "GET",
            &format!("/api/v1/commands/{failed_id}"),
            &env.viewer,
            None,
        )
        .await
        .json();
    assert_eq!(
        (c["status"].as_str(), c["error"].as_str()),
        (Some("failed"), Some("C:\\Users\\Public: not found"))
    );

    // audited: who asked what of whom, and what the agent reported
    let audit = env.audit().await;
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.action.starts_with("agent.command"))
        .map(|e| (e.actor.as_str(), e.action.as_str()))
        .collect();
    let agent_actor = format!("agent:{}", agent.id);
    assert_eq!(
        actions,
        [
            ("bob-analyst", "agent.command"),
            (agent_actor.as_str(), "agent.command.result"),
            ("bob-analyst", "agent.command"),
            (agent_actor.as_str(), "agent.command.result"),
        ]
    );
    let queued = audit.iter().find(|e| e.action == "agent.command").unwrap();
    assert_eq!(
        queued.target.as_deref(),
        Some(format!("agent:{}", agent.id).as_str())
    );
    assert_eq!(queued.details["args"]["path"], "/srv/www");
    assert_eq!(queued.details["kind"], "scan_path");
    assert_eq!(queued.details["command_id"], id.as_str());
    let reported = audit
        .iter()
        .find(|e| e.action == "agent.command.result")
        .unwrap();
    assert_eq!(reported.details["status"], "done");
    assert_eq!(reported.details["summary"]["detections"], 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_commands_are_delivered_again_then_expire() {
    let env = Env::start(&[
        ("DOZOR_AGENT_COMMAND_REDELIVER_AFTER", "1s"),
        ("DOZOR_AGENT_COMMAND_MAX_ATTEMPTS", "2"),
    ])
    .await;
    let agent = env.enroll("db-01").await;
    let r = env
        .send(
            "POST",
            &format!("/api/v1/agents/{}/commands", agent.id),
            &env.analyst,
            Some(scan("/var/lib")),
        )
        .await;
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(agent.heartbeat().await.len(), 1);
    assert!(agent.heartbeat().await.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = agent.heartbeat().await;
    assert_eq!(again[0]["id"], id.as_str(), "delivered again");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(agent.heartbeat().await.is_empty(), "attempts used up");
    let c = env
        .send("GET", &format!("/api/v1/commands/{id}"), &env.viewer, None)
        .await
        .json();
    assert_eq!(
        (c["status"].as_str(), c["attempts"].as_u64()),
        (Some("expired"), Some(2))
    );
    // a late result is still kept
    let r = agent
        .report(
            &id,
            json!({"status": "done", "result": {"files_scanned": 5}}),
        )
        .await;
    assert_eq!(r.json(), json!({"recorded": true}));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_checked_and_problems_name_the_field() {
    let env = Env::start(&[]).await;
    let agent = env.enroll("ws-01").await;
    let path = format!("/api/v1/agents/{}/commands", agent.id);
    let post = |body: Value| {
        let env = &env;
        let path = path.clone();
        async move { env.send("POST", &path, &env.analyst, Some(body)).await }
    };
    let cases = [
        (json!({"args": {"path": "/x"}}), "kind", "/kind"),
        (json!({"kind": "reboot", "args": {}}), "kind", "/kind"),
        (json!({"kind": "scan_path", "args": "/x"}), "args", "/args"),
        (
            json!({"kind": "scan_path", "args": {}}),
            "args.path",
            "/args/path",
        ),
        (
            json!({"kind": "scan_path", "args": {"path": "relative/dir"}}),
            "args.path",
            "/args/path",
        ),
        (
            json!({"kind": "scan_path", "args": {"path": "/etc\u{0}x"}}),
            "args.path",
            "/args/path",
        ),
        (
            json!({"kind": "scan_path", "args": {"path": format!("/{}", "a".repeat(4096))}}),
            "args.path",
            "/args/path",
        ),
        (
            json!({"kind": "scan_path", "args": {"path": "/x", "recursive": 1}}),
            "args.recursive",
            "/args/recursive",
        ),
        (
            json!({"kind": "scan_path", "args": {"path": "/x", "exclude": []}}),
            "args.exclude",
            "/args/exclude",
        ),
        (
            json!({"kind": "scan_path", "args": {"path": "/x"}, "when": "now"}),
            "when",
            "/when",
        ),
    ];
    for (body, field, pointer) in cases {
        let p = problem(&post(body.clone()).await, 422, "invalid-body");
        assert_eq!(p["field"], field, "{body}: {p}");
        assert_eq!(p["pointer"], pointer, "{body}: {p}");
        assert_eq!(p["instance"], path.as_str());
        assert!(!p["detail"].as_str().unwrap().is_empty());
    }
    let p = problem(
        &post(json!({"kind": "reboot", "args": {}})).await,
        422,
        "invalid-body",
    );
    assert_eq!(
        p["known_kinds"],
        json!(dozor_model::response::COMMAND_KINDS),
        "every response kind is known"
    );
    // the path limit is in characters: 4096 of them (multi-byte) pass
    let long = format!("/{}", "ж".repeat(4095));
    assert_eq!(post(scan(&long)).await.status, 202);

    // viewers read but may not ask; an unknown agent is a 404
    let r = env
        .send("POST", &path, &env.viewer, Some(scan("/tmp")))
        .await;
    problem(&r, 403, "forbidden");
    assert_eq!(env.send("GET", &path, &env.viewer, None).await.status, 200);
    problem(
        &env.send(
            "POST",
            "/api/v1/agents/nope/commands",
            &env.analyst,
            Some(scan("/tmp")),
        )
        .await,
        404,
        "not-found",
    );
    problem(
        &env.send("GET", "/api/v1/agents/nope/commands", &env.viewer, None)
            .await,
        404,
        "not-found",
    );
    problem(
        &env.send("GET", "/api/v1/commands/not-a-uuid", &env.viewer, None)
            .await,
        404,
        "not-found",
    );
    let p = problem(
        &env.send("GET", &format!("{path}?limit=0"), &env.viewer, None)
            .await,
        400,
        "invalid-parameter",
    );
    assert_eq!(p["parameter"], "limit");

    // at most 20 waiting for a result (one is queued above)
    for i in 1..20 {
        assert_eq!(post(scan(&format!("/d/{i}"))).await.status, 202);
    }
    let p = problem(&post(scan("/d/20")).await, 409, "too-many-commands");
    assert_eq!(p["limit"], 20);

    // a revoked agent takes none
    assert!(env.store.revoke_agent(&agent.id, "alice").await.unwrap());
    problem(&post(scan("/tmp")).await, 409, "agent-revoked");

    // refused requests are not audited
    let audit = env.audit().await;
    assert_eq!(
        audit.iter().filter(|e| e.action == "agent.command").count(),
        20
    );
    env.stop().await;
}
