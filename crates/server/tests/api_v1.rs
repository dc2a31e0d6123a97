//! The operator API (`/api/v1/` events, alerts, rules, stats, the SSE stream) over real HTTPS,
//! with a real SQLite store in a temporary directory and tokens created in that store.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Response, api_token, pinned_connector, test_env};
use dozor_pipeline::{AlertNotice, PipelineStats};
use dozor_server::{
    AccessRole, ApiState, BoxFuture, Identity, MemorySink, ReloadReport, RuleCatalog, RuleInfo,
    Server, ServerError, Services, TokenVerifier, VerifierError,
};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{Detection, Level, NewEvent, Role, Store, StoreConfig};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

// ---------------------------------------------------------------- fixtures

/// Store tokens → identities (what the binary does too).
struct StoreTokens(Arc<dyn Store>);

impl TokenVerifier for StoreTokens {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Identity>, VerifierError>> {
        Box::pin(async move {
            let info = self
                .0
                .verify_token(token)
                .await
                .map_err(|e| VerifierError(e.to_string()))?;
            Ok(info.map(|t| Identity {
                subject: t.name,
                role: match t.role {
                    Role::Admin => AccessRole::Admin,
                    Role::Analyst => AccessRole::Analyst,
                    Role::Viewer => AccessRole::Viewer,
                    Role::AgentIngest => AccessRole::Agent,
                },
            }))
        })
    }
}

/// Rules in memory. A "rule" is `contains: TEXT`: it matches the events whose JSON contains
/// TEXT; anything else is an invalid rule.
struct FakeRules {
    rules: Mutex<Vec<RuleInfo>>,
    reloads: AtomicUsize,
}

fn rule_info(id: &str, title: &str, level: &str, outcome: &str) -> RuleInfo {
    RuleInfo {
        id: id.into(),
        title: title.into(),
        description: String::new(),
        level: Some(level.into()),
        status: Some("test".into()),
        tags: vec!["attack.execution".into()],
        author: "tests".into(),
        path: format!("rules/{id}.yml"),
        logsource: Default::default(),
        kind: "detection".into(),
        outcome: outcome.into(),
        reason: (outcome != "active").then(|| "no mapping".to_owned()),
    }
}

impl FakeRules {
    fn new() -> FakeRules {
        FakeRules {
            rules: Mutex::new(vec![
                rule_info("r-powershell", "PowerShell", "high", "active"),
                rule_info("r-curl", "Curl", "low", "active"),
                rule_info("r-unrouted", "Unrouted", "medium", "unrouted"),
            ]),
            reloads: AtomicUsize::new(0),
        }
    }
}

impl RuleCatalog for FakeRules {
    fn list(&self) -> Vec<RuleInfo> {
        self.rules.lock().unwrap().clone()
    }

    fn yaml(&self, id: &str) -> Option<String> {
        self.list()
            .iter()
            .any(|r| r.id == id)
            .then(|| format!("title: {id}\ncontains: x\n"))
    }

    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, String>> {
        Box::pin(async move {
            let n = self.reloads.fetch_add(1, Ordering::SeqCst);
            if n > 0 {
                return Err("rules directory vanished".into());
            }
            let documents = self.list().len();
            Ok(ReloadReport {
                documents,
                active: documents - 1,
                unrouted: 1,
                ..ReloadReport::default()
            })
        })
    }

    fn test(&self, rule_yaml: &str, events: Vec<Value>) -> Result<Vec<usize>, String> {
        let needle = rule_yaml
            .trim()
            .strip_prefix("contains:")
            .ok_or_else(|| "line 1: expected `contains:`".to_owned())?
            .trim();
        Ok(events
            .iter()
            .enumerate()
            .filter(|(_, e)| e.to_string().contains(needle))
            .map(|(i, _)| i)
            .collect())
    }
}

struct Tokens {
    admin: String,
    analyst: String,
    viewer: String,
    agent: String,
}

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    notices: broadcast::Sender<AlertNotice>,
    stats: Arc<PipelineStats>,
    tokens: Tokens,
    addr: std::net::SocketAddr,
    ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Env {
    async fn start() -> Env {
        Env::start_with(&[], true).await
    }

    async fn start_with(env: &[(&str, &str)], with_api: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
            dir.path().join("store"),
        )))
        .await
        .unwrap();
        let tokens = Tokens {
            admin: api_token(store.as_ref(), "alice-admin", Role::Admin).await,
            analyst: api_token(store.as_ref(), "bob-analyst", Role::Analyst).await,
            viewer: api_token(store.as_ref(), "carol-viewer", Role::Viewer).await,
            agent: api_token(store.as_ref(), "agent-7", Role::AgentIngest).await,
        };
        let (notices, _) = broadcast::channel(64);
        let stats = Arc::new(PipelineStats::default());
        let config = common::config(dir.path(), test_env(env)).unwrap();
        let mut services = Services::new(
            Arc::new(MemorySink::new(1000)),
            Arc::new(StoreTokens(store.clone())),
        );
        if with_api {
            services = services.with_api(Arc::new(ApiState {
                store: store.clone(),
                rules: Arc::new(FakeRules::new()),
                notices: notices.clone(),
                pipeline_stats: Some(stats.clone()),
                agent_notices: tokio::sync::broadcast::channel(16).0,
            }));
        }
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
            notices,
            stats,
            tokens,
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

    async fn get(&self, path: &str, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        self.client()
            .send("GET", path, &[("authorization", &auth)], Vec::new())
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.send_json("POST", path, token, body).await
    }

    async fn send_json(&self, method: &str, path: &str, token: &str, body: Value) -> Response {
        let auth = format!("Bearer {token}");
        self.client()
            .send(
                method,
                path,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body.to_string().into_bytes(),
            )
            .await
            .unwrap()
    }

    /// Stops the server; fails if that takes longer than `within`.
    async fn stop_within(mut self, within: Duration) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(within, self.handle.take().unwrap())
            .await
            .expect("server stopped in time")
            .unwrap()
            .unwrap();
    }

    async fn stop(self) {
        self.stop_within(Duration::from_secs(15)).await;
    }
}

fn problem(r: &Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], format!("urn:dozor:problem:{slug}"), "{p}");
    assert_eq!(p["status"], status);
    p
}

fn created(r: &Response) -> Value {
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn ok(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

const MINUTE: i64 = 60_000;

fn base_time() -> i64 {
    // Two hours ago, on a whole hour: events fall in "the last 24 hours" and histogram
    // buckets are predictable.
    let now = dozor_store::now_ms();
    (now - 2 * 3_600_000) / 3_600_000 * 3_600_000
}

/// 25 events, one a minute: every 5th runs powershell.exe (on agent-2), the others curl.
fn events(base: i64) -> Vec<NewEvent> {
    (0..25)
        .map(|i| {
            let powershell = i % 5 == 0;
            let name = if powershell { "powershell.exe" } else { "curl" };
            let agent = if powershell { "agent-2" } else { "agent-1" };
            NewEvent {
                id: Uuid::now_v7(),
                ts: base + i * MINUTE,
                received_at: base + i * MINUTE + 10,
                agent_id: Some(agent.into()),
                doc: json!({
                    "@timestamp": base + i * MINUTE,
                    "event": {"kind": "event", "category": ["process"], "code": if powershell {"4688"} else {"1"}},
                    "host": {"name": if powershell {"ws2"} else {"ws1"}},
                    "process": {"name": name, "pid": 1000 + i, "command_line": format!("{name} -n {i}")},
                    "user": {"name": if i % 2 == 0 {"SYSTEM"} else {"ivan"}},
                }),
            }
        })
        .collect()
}

fn detection(rule: &str, level: Level, event: &NewEvent) -> Detection {
    Detection {
        rule_id: rule.into(),
        rule_title: format!("Rule {rule}"),
        level,
        tags: vec!["attack.t1059.001".into()],
        agent_id: event.agent_id.clone(),
        host: dozor_store::event_host(&event.doc).map(str::to_owned),
        event_id: event.id,
        ts: event.ts,
    }
}

/// Stores the events and one alert of `r-powershell` (all five powershell events, one agent).
async fn seed(env: &Env) -> (Vec<NewEvent>, i64) {
    let evs = events(base_time());
    let detections: Vec<_> = evs
        .iter()
        .filter(|e| e.doc["process"]["name"] == "powershell.exe")
        .map(|e| detection("r-powershell", Level::High, e))
        .collect();
    let report = env
        .store
        .store_batch(&evs, &detections, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((report.inserted, report.alerts_created), (25, 1));
    (evs, report.alerts[0].alert.id)
}

// ---------------------------------------------------------------- events

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_suppress_repeats_and_are_audited() {
    let env = Env::start().await;
    let (evs, _) = seed(&env).await;
    let a = &env.tokens.analyst;
    let bad = env
        .post(
            "/api/v1/exceptions",
            a,
            json!({"rule_id": "r-powershell", "conditions": [], "reason": "x"}),
        )
        .await;
    let p = problem(&bad, 422, "invalid-body");
    assert!(p["detail"].as_str().unwrap().contains("condition"), "{p}");
    let made = env
        .post(
            "/api/v1/exceptions",
            a,
            json!({"rule_id": "r-powershell",
                   "conditions": [{"field": "host.name", "value": "WS2"}, {"field": "user.name", "value": "system"}],
                   "reason": "admin scripts on ws2"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let id = made.json()["id"].as_i64().unwrap();
    problem(
        &env.post("/api/v1/exceptions", &env.tokens.viewer, json!({}))
            .await,
        403,
        "forbidden",
    );

    // A repeat on ws2 by SYSTEM is counted, not alerted; by ivan it alerts.
    let repeat = |user: &str, i: i64| {
        let mut e = evs[0].clone();
        e.id = Uuid::now_v7();
        e.ts += i * MINUTE;
        e.doc["user"]["name"] = json!(user);
        e
    };
    let (by_system, by_ivan) = (repeat("SYSTEM", 1), repeat("ivan", 2));
    let report = env
        .store
        .store_batch(
            &[by_system.clone(), by_ivan.clone()],
            &[
                detection("r-powershell", Level::High, &by_system),
                detection("r-powershell", Level::High, &by_ivan),
            ],
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.detections_suppressed, report.detections_recorded),
        (1, 1)
    );
    let list = ok(&env.get("/api/v1/exceptions", &env.tokens.viewer).await);
    assert_eq!(list[0]["suppressed"], 1, "{list}");

    let gone = env
        .client()
        .send(
            "DELETE",
            &format!("/api/v1/exceptions/{id}"),
            &[("authorization", &format!("Bearer {a}"))],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(gone.status, 200, "{}", gone.text());
    let audit = env
        .store
        .list_audit(&dozor_store::AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(
        actions.contains(&"exception.add") && actions.contains(&"exception.remove"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_group_alerts_keep_a_history_and_are_audited() {
    let env = Env::start().await;
    let (evs, alert) = seed(&env).await;
    let (a, v) = (&env.tokens.analyst, &env.tokens.viewer);
    // A second alert on the same host, so the host is suggested.
    let curl = detection("r-curl", Level::Medium, &evs[1]);
    env.store
        .store_batch(&[], &[curl], Duration::from_secs(3600))
        .await
        .unwrap();
    let suggested = ok(&env.get("/api/v1/incidents/suggestions", v).await);
    assert!(suggested.as_array().is_some(), "{suggested}");

    problem(
        &env.post("/api/v1/incidents", a, json!({"title": " "}))
            .await,
        422,
        "invalid-body",
    );
    problem(
        &env.post("/api/v1/incidents", v, json!({"title": "x"}))
            .await,
        403,
        "forbidden",
    );
    let made = env
        .post(
            "/api/v1/incidents",
            a,
            json!({"title": "PowerShell on WS1", "alert_ids": [alert]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let inc = made.json();
    let id = inc["id"].as_i64().unwrap();
    assert_eq!(
        (inc["severity"].as_str(), inc["alert_count"].as_i64()),
        (Some("high"), Some(1))
    );
    // One incident per alert: a second one can't take it.
    problem(
        &env.post(
            "/api/v1/incidents",
            a,
            json!({"title": "again", "alert_ids": [alert]}),
        )
        .await,
        409,
        "conflict",
    );
    problem(
        &env.post(
            "/api/v1/incidents",
            a,
            json!({"title": "x", "alert_ids": [424242]}),
        )
        .await,
        422,
        "invalid-body",
    );

    let base = format!("/api/v1/incidents/{id}");
    let patched = env
        .send_json(
            "PATCH",
            &base,
            a,
            json!({"status": "contained", "owner": "bob-analyst"}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    problem(
        &env.send_json("PATCH", &base, a, json!({"status": "urgent"}))
            .await,
        422,
        "invalid-body",
    );
    let task = created(
        &env.post(&format!("{base}/tasks"), a, json!({"title": "Isolate WS1"}))
            .await,
    );
    let task_id = task["id"].as_i64().unwrap();
    let done = env
        .send_json(
            "PATCH",
            &format!("{base}/tasks/{task_id}"),
            a,
            json!({"done": true}),
        )
        .await;
    assert_eq!(ok(&done)["done"], true);
    created(
        &env.post(
            &format!("{base}/notes"),
            a,
            json!({"body": "C2 at 203.0.113.9"}),
        )
        .await,
    );
    created(
        &env.post(
            &format!("{base}/observables"),
            a,
            json!({"kind": "ip", "value": "203.0.113.9"}),
        )
        .await,
    );
    let bad_ip = env
        .post(
            &format!("{base}/observables"),
            a,
            json!({"kind": "ip", "value": "203.0.113.999"}),
        )
        .await;
    let p = problem(&bad_ip, 422, "invalid-body");
    assert!(
        p["detail"].as_str().unwrap().contains("not a valid ip"),
        "{p}"
    );

    let view = ok(&env.get(&base, v).await);
    assert_eq!(view["incident"]["status"], "contained");
    assert_eq!(view["incident"]["owner"], "bob-analyst");
    assert_eq!(view["alerts"][0]["id"], alert);
    assert_eq!(view["tasks"][0]["done"], true);
    assert_eq!(view["observables"][0]["value"], "203.0.113.9");
    let timeline = view["timeline"].as_array().unwrap();
    assert_eq!(
        timeline[0]["kind"], "alert",
        "the alert's events come first: {view}"
    );
    assert!(timeline.iter().any(|e| e["kind"] == "note"));
    let listed = ok(&env.get("/api/v1/incidents?status=contained", v).await);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    problem(
        &env.get("/api/v1/incidents?status=nope", v).await,
        400,
        "invalid-parameter",
    );
    assert!(
        ok(&env.get("/api/v1/incidents?status=closed", v).await)
            .as_array()
            .unwrap()
            .is_empty()
    );
    let removed = env
        .client()
        .send(
            "DELETE",
            &format!("{base}/alerts/{alert}"),
            &[("authorization", &format!("Bearer {a}"))],
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(removed.status, 204, "{}", removed.text());

    let audit = env
        .store
        .list_audit(&dozor_store::AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    for want in [
        "incident.create",
        "incident.update",
        "incident.task_add",
        "incident.task_set",
        "incident.note_add",
        "incident.observable_add",
        "incident.alert_remove",
    ] {
        assert!(actions.contains(&want), "{want} not in {actions:?}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_the_host_of_alerts() {
    let env = Env::start().await;
    let (_, alert) = seed(&env).await;
    let v = &env.tokens.viewer;

    // Every host the events name, with its counts; most recently active first.
    let hosts = ok(&env.get("/api/v1/hosts", v).await);
    let seen: Vec<(String, i64, i64, String)> = hosts
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["events"].as_i64().unwrap(),
                h["open_alerts"].as_i64().unwrap(),
                h["agent_id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            ("ws1".to_owned(), 20, 0, "agent-1".to_owned()),
            ("ws2".to_owned(), 5, 1, "agent-2".to_owned()),
        ]
    );
    let found = ok(&env.get("/api/v1/hosts?search=S2", v).await);
    assert_eq!(found.as_array().unwrap().len(), 1);
    let one = ok(&env.get("/api/v1/hosts/WS2", v).await);
    assert_eq!(
        (one["name"].as_str(), one["alerts"].as_i64()),
        (Some("ws2"), Some(1))
    );
    problem(&env.get("/api/v1/hosts/nobody", v).await, 404, "not-found");
    problem(
        &env.get("/api/v1/hosts?limit=0", v).await,
        400,
        "invalid-parameter",
    );

    // Alerts carry their host and filter by it, and list by detection time on request.
    let a = ok(&env.get(&format!("/api/v1/alerts/{alert}"), v).await);
    assert_eq!(a["alert"]["host"], "ws2", "{a}");
    let by_host = ok(&env.get("/api/v1/alerts?host=WS2", v).await);
    assert_eq!(by_host["alerts"].as_array().unwrap().len(), 1);
    let none = ok(&env.get("/api/v1/alerts?host=ws1", v).await);
    assert!(none["alerts"].as_array().unwrap().is_empty());
    let fresh = ok(&env
        .get("/api/v1/alerts?time=detected&from=now-10m", v)
        .await);
    assert_eq!(fresh["alerts"].as_array().unwrap().len(), 1);
    let by_event = ok(&env.get("/api/v1/alerts?time=event&from=now-10m", v).await);
    assert!(
        by_event["alerts"].as_array().unwrap().is_empty(),
        "events are hours old"
    );
    let p = problem(
        &env.get("/api/v1/alerts?time=soon", v).await,
        400,
        "invalid-parameter",
    );
    assert!(p["detail"].as_str().unwrap().contains("time"), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_search_pagination_and_histogram() {
    let env = Env::start().await;
    let (evs, _) = seed(&env).await;
    let v = &env.tokens.viewer;

    // Query language.
    let page = ok(&env
        .get(
            "/api/v1/events?q=process.name:powershell.exe%20AND%20NOT%20user.name:ivan",
            v,
        )
        .await);
    let names: Vec<_> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["doc"]["process"]["pid"].as_i64().unwrap())
        .collect();
    // powershell at i = 0, 5, 10, 15, 20; SYSTEM at even i: 0, 10, 20; newest first.
    assert_eq!(names, [1020, 1010, 1000]);
    assert!(page["next_cursor"].is_null());
    let page = ok(&env.get("/api/v1/events?q=%22-n%2017%22", v).await);
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    let page = ok(&env.get("/api/v1/events?agent=agent-2&limit=2", v).await);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["events"][0]["agent_id"], "agent-2");

    // A syntax error says where.
    let r = env
        .get("/api/v1/events?q=process.name:%20AND%20(x", v)
        .await;
    let p = problem(&r, 400, "invalid-query");
    assert!(p["column"].as_u64().unwrap() >= 1, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("column"), "{p}");

    // Pagination: 25 events in pages of 10, no repeats, newest first throughout.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/events?limit=10&cursor={c}"),
            None => "/api/v1/events?limit=10".to_owned(),
        };
        let page = ok(&env.get(&path, v).await);
        pages += 1;
        for e in page["events"].as_array().unwrap() {
            seen.push((
                e["ts"].as_i64().unwrap(),
                e["id"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!((pages, seen.len()), (3, 25));
    assert!(seen.windows(2).all(|w| w[0].0 > w[1].0));
    let expected: Vec<_> = evs.iter().rev().map(|e| e.id.to_string()).collect();
    assert_eq!(
        seen.iter().map(|s| s.1.clone()).collect::<Vec<_>>(),
        expected
    );

    // Time range: RFC 3339 and milliseconds.
    let base = base_time();
    let from = chrono::DateTime::from_timestamp_millis(base + 10 * MINUTE)
        .unwrap()
        .to_rfc3339();
    let r = env
        .get(
            &format!(
                "/api/v1/events?from={}&to={}",
                from.replace('+', "%2B"),
                base + 20 * MINUTE
            ),
            v,
        )
        .await;
    assert_eq!(ok(&r)["events"].as_array().unwrap().len(), 10);

    // Parameter problems.
    problem(
        &env.get("/api/v1/events?cursor=garbage", v).await,
        400,
        "invalid-cursor",
    );
    let p = problem(
        &env.get("/api/v1/events?limit=0", v).await,
        400,
        "invalid-parameter",
    );
    assert_eq!(p["parameter"], "limit");
    let p = problem(
        &env.get("/api/v1/events?qq=x", v).await,
        400,
        "invalid-parameter",
    );
    assert_eq!(p["parameter"], "qq");
    problem(
        &env.get("/api/v1/events?from=yesterday", v).await,
        400,
        "invalid-parameter",
    );
    problem(
        &env.get("/api/v1/events?q=a&q=b", v).await,
        400,
        "invalid-parameter",
    );
    // A parameter whose document gives a pattern or format is refused given empty, not
    // read as absent (schemathesis ST201).
    for (path, name) in [
        ("/api/v1/vulns/summary?top=0", "top"),
        ("/api/v1/vulns?cursor=0:0", "cursor"),
        ("/api/v1/intel/iocs?cursor=", "cursor"),
        ("/api/v1/intel/matches?event_id=", "event_id"),
        ("/api/v1/intel/matches?cursor=", "cursor"),
    ] {
        let p = problem(&env.get(path, v).await, 400, "invalid-parameter");
        assert_eq!(p["parameter"], name, "{path}");
    }
    // Text filters are bounded in characters, as the document's `maxLength` counts them
    // (schemathesis ST202: 17 four-byte characters are within `maxLength = 64`).
    let fraktur: String = "𝕿"
        .repeat(17)
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect();
    ok(&env.get(&format!("/api/v1/vulns?cve={fraktur}"), v).await);
    let p = problem(
        &env.get(&format!("/api/v1/vulns?cve={}", "C".repeat(65)), v)
            .await,
        400,
        "invalid-parameter",
    );
    assert_eq!(p["parameter"], "cve");

    // One event.
    let id = evs[3].id;
    let e = ok(&env.get(&format!("/api/v1/events/{id}"), v).await);
    assert_eq!(e["id"], id.to_string());
    assert_eq!(e["doc"]["process"]["pid"], 1003);
    assert_eq!(e["received_at"], evs[3].received_at);
    problem(
        &env.get(&format!("/api/v1/events/{}", Uuid::now_v7()), v)
            .await,
        404,
        "not-found",
    );
    problem(
        &env.get("/api/v1/events/not-a-uuid", v).await,
        404,
        "not-found",
    );

    // Histogram: 25 events over 25 minutes in 5-minute buckets.
    let h = ok(&env
        .get(
            &format!(
                "/api/v1/events/histogram?from={base}&to={}&interval=5m",
                base + 30 * MINUTE
            ),
            v,
        )
        .await);
    assert_eq!(h["interval_ms"], 300_000);
    assert_eq!(h["from"], base);
    assert_eq!(h["total"], 25);
    let counts: Vec<_> = h["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [5, 5, 5, 5, 5, 0]);
    let h = ok(&env
        .get(
            &format!(
                "/api/v1/events/histogram?from={base}&to={}&interval=5m&q=process.name:powershell.exe",
                base + 30 * MINUTE
            ),
            v,
        )
        .await);
    assert_eq!(h["total"], 5);
    // Default: the last 24 hours, automatic interval (15 min → 96 or 97 buckets).
    let h = ok(&env.get("/api/v1/events/histogram", v).await);
    assert_eq!(h["interval_ms"], 900_000);
    assert_eq!(h["total"], 25);
    let r = env
        .get("/api/v1/events/histogram?from=0&to=now&interval=1s", v)
        .await;
    let p = problem(&r, 400, "invalid-parameter");
    assert_eq!(p["parameter"], "interval");
    problem(
        &env.get("/api/v1/events/histogram?q=(", v).await,
        400,
        "invalid-query",
    );
    // Extreme times are refused by name, not wrapped (a debug build panicked on the span).
    for (query, name) in [
        ("from=-9223372036854775808&to=9223372036854775807", "to"),
        ("from=-9223372036854775808&to=now", "from"),
        ("from=0&to=9223372036854775807", "to"),
        ("from=-9223372036854775808", "from"),
        ("to=-9223372036854775808", "to"),
    ] {
        let r = env
            .get(&format!("/api/v1/events/histogram?{query}"), v)
            .await;
        let p = problem(&r, 400, "invalid-parameter");
        assert_eq!(p["parameter"], name, "{query}");
        assert!(
            p["detail"].as_str().unwrap().contains("9999"),
            "{query}: {p}"
        );
    }
    env.stop().await;
}

// ---------------------------------------------------------------- alerts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_workflow_comments_and_audit() {
    let env = Env::start().await;
    let (evs, id) = seed(&env).await;
    let t = &env.tokens;

    let page = ok(&env
        .get("/api/v1/alerts?status=new&min_level=high", &t.viewer)
        .await);
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(page["alerts"][0]["id"], id);
    assert_eq!(page["alerts"][0]["count"], 5);
    assert_eq!(page["alerts"][0]["level"], "high");
    let page = ok(&env
        .get("/api/v1/alerts?min_level=critical", &t.viewer)
        .await);
    assert!(page["alerts"].as_array().unwrap().is_empty());
    let page = ok(&env
        .get("/api/v1/alerts?status=resolved,false_positive", &t.viewer)
        .await);
    assert!(page["alerts"].as_array().unwrap().is_empty());
    problem(
        &env.get("/api/v1/alerts?status=closed", &t.viewer).await,
        400,
        "invalid-parameter",
    );
    problem(
        &env.get("/api/v1/alerts?min_level=severe", &t.viewer).await,
        400,
        "invalid-parameter",
    );

    // Detail: the matched events come along.
    let d = ok(&env.get(&format!("/api/v1/alerts/{id}"), &t.viewer).await);
    assert_eq!(d["alert"]["status"], "new");
    let ids: Vec<_> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = evs
        .iter()
        .filter(|e| e.doc["process"]["name"] == "powershell.exe")
        .map(|e| e.id.to_string())
        .collect();
    assert_eq!(ids, expected);
    assert!(d["comments"].as_array().unwrap().is_empty());
    assert!(d["missing_events"].as_array().unwrap().is_empty());
    problem(
        &env.get("/api/v1/alerts/999", &t.viewer).await,
        404,
        "not-found",
    );
    problem(
        &env.get("/api/v1/alerts/abc", &t.viewer).await,
        404,
        "not-found",
    );

    // Workflow: new → acknowledged → resolved; resolved → acknowledged is refused.
    let status = format!("/api/v1/alerts/{id}/status");
    let a = ok(&env
        .post(
            &status,
            &t.analyst,
            json!({"status": "acknowledged", "comment": "looking"}),
        )
        .await);
    assert_eq!(a["status"], "acknowledged");
    let a = ok(&env
        .post(&status, &t.admin, json!({"status": "resolved"}))
        .await);
    assert_eq!(a["status"], "resolved");
    let r = env
        .post(&status, &t.analyst, json!({"status": "acknowledged"}))
        .await;
    let p = problem(&r, 409, "invalid-transition");
    assert_eq!(
        (p["from"].as_str(), p["to"].as_str()),
        (Some("resolved"), Some("acknowledged"))
    );
    assert_eq!(p["allowed"], json!(["new"]));
    let r = env
        .post(&status, &t.analyst, json!({"status": "resolved"}))
        .await;
    problem(&r, 409, "invalid-transition");
    let r = env
        .post(&status, &t.analyst, json!({"status": "closed"}))
        .await;
    problem(&r, 422, "invalid-body");
    let r = env.post(&status, &t.analyst, json!({})).await;
    problem(&r, 422, "invalid-body");
    // Serde alone reads a struct from an array: every body must be an object.
    let r = env.post(&status, &t.analyst, json!(["acknowledged"])).await;
    let p = problem(&r, 422, "invalid-body");
    assert_eq!(p["detail"], "the body must be a JSON object");
    let r = env
        .post(
            "/api/v1/alerts/999/status",
            &t.analyst,
            json!({"status": "acknowledged"}),
        )
        .await;
    problem(&r, 404, "not-found");
    let auth = format!("Bearer {}", t.analyst);
    let r = env
        .client()
        .send(
            "POST",
            &status,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            b"{\"status\": \n nope".to_vec(),
        )
        .await
        .unwrap();
    let p = problem(&r, 400, "malformed-json");
    assert_eq!(p["line"], 2);
    let r = env
        .client()
        .send(
            "POST",
            &status,
            &[("authorization", &auth), ("content-type", "text/plain")],
            b"{\"status\": \"new\"}".to_vec(),
        )
        .await
        .unwrap();
    problem(&r, 415, "unsupported-media-type");
    // Reopen.
    let a = ok(&env
        .post(&status, &t.analyst, json!({"status": "new"}))
        .await);
    assert_eq!(a["status"], "new");

    // Assignee and comments.
    let a = ok(&env
        .post(
            &format!("/api/v1/alerts/{id}/assignee"),
            &t.analyst,
            json!({"assignee": "bob"}),
        )
        .await);
    assert_eq!(a["assignee"], "bob");
    let page = ok(&env.get("/api/v1/alerts?assignee=bob", &t.viewer).await);
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1);
    let a = ok(&env
        .post(
            &format!("/api/v1/alerts/{id}/assignee"),
            &t.analyst,
            json!({"assignee": null}),
        )
        .await);
    assert!(a["assignee"].is_null());
    let comments = format!("/api/v1/alerts/{id}/comments");
    let r = env
        .post(
            &comments,
            &t.analyst,
            json!({"text": "Это encoded PowerShell"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json();
    assert_eq!(c["author"], "bob-analyst");
    assert_eq!(c["text"], "Это encoded PowerShell");
    problem(
        &env.post(&comments, &t.analyst, json!({"text": "  "})).await,
        422,
        "invalid-body",
    );
    problem(
        &env.post(
            "/api/v1/alerts/999/comments",
            &t.analyst,
            json!({"text": "x"}),
        )
        .await,
        404,
        "not-found",
    );

    let long = "x".repeat(100 * 1024);
    problem(
        &env.post(&comments, &t.analyst, json!({ "text": long }))
            .await,
        422,
        "invalid-body",
    );
    // Over 1 MiB. The server answers before reading the rest, so the client may see the
    // connection close while still writing: try a few times, every answer must be the 413.
    let huge = json!({ "text": "x".repeat(1024 * 1024 + 10) }).to_string();
    let auth = format!("Bearer {}", t.analyst);
    let mut answers = Vec::new();
    for _ in 0..5 {
        let sent = env
            .client()
            .send(
                "POST",
                &comments,
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                huge.clone().into_bytes(),
            )
            .await;
        if let Ok(r) = sent {
            answers.push(r);
        }
    }
    assert!(!answers.is_empty(), "no answer to an oversized body");
    let problems: Vec<Value> = answers
        .iter()
        .map(|r| problem(r, 413, "too-large"))
        .collect();
    let p = &problems[0];
    assert_eq!(p["limit"], 1024 * 1024);
    let d = ok(&env.get(&format!("/api/v1/alerts/{id}"), &t.viewer).await);
    assert_eq!(d["comments"][0]["text"], "Это encoded PowerShell");
    let history: Vec<_> = d["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["actor"].as_str().unwrap().to_owned(),
                h["from"].as_str().unwrap().to_owned(),
                h["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let own = |a: &str, f: &str, t: &str| (a.to_owned(), f.to_owned(), t.to_owned());
    assert_eq!(
        history,
        [
            own("bob-analyst", "new", "acknowledged"),
            own("alice-admin", "acknowledged", "resolved"),
            own("bob-analyst", "resolved", "new"),
        ]
    );
    assert_eq!(d["history"][0]["comment"], "looking");

    // Every change is in the audit log, by who made it; refused changes are not.
    let mut audit = env
        .store
        .list_audit(&dozor_store::AuditQuery::default())
        .await
        .unwrap();
    audit.reverse();
    let entries: Vec<_> = audit
        .iter()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_deref()))
        .collect();
    let target = format!("alert:{id}");
    let t = Some(target.as_str());
    assert_eq!(
        entries,
        [
            ("bob-analyst", "alert.status", t),
            ("alice-admin", "alert.status", t),
            ("bob-analyst", "alert.status", t),
            ("bob-analyst", "alert.assign", t),
            ("bob-analyst", "alert.assign", t),
            ("bob-analyst", "alert.comment", t),
        ]
    );
    assert_eq!(audit[0].details["from"], "new");
    assert_eq!(audit[0].details["to"], "acknowledged");
    assert_eq!(audit[0].details["comment"], "looking");
    assert_eq!(audit[3].details["to"], "bob");
    env.stop().await;
}

// ---------------------------------------------------------------- SSE

/// Opens a streaming GET with this bearer token; returns the status and the body to read from.
async fn open_stream(env: &Env, path: &str, token: &str) -> (u16, hyper::HeaderMap, Incoming) {
    open_stream_auth(env, path, Some(&format!("Bearer {token}"))).await
}

async fn open_stream_auth(
    env: &Env,
    path: &str,
    authorization: Option<&str>,
) -> (u16, hyper::HeaderMap, Incoming) {
    let tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
    let tls = pinned_connector(&env.ca_pem)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = hyper::Request::get(path)
        .header("host", format!("localhost:{}", env.addr.port()))
        .header("accept", "text/event-stream");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let request = request.body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.into_body())
}

/// Reads the stream until `buffer` contains `needle` (or the stream ends / times out).
async fn read_until(body: &mut Incoming, buffer: &mut String, needle: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !buffer.contains(needle) {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    buffer.push_str(&String::from_utf8_lossy(data));
                }
            }
            _ => return false,
        }
    }
    true
}

fn alert_of(store_alert: &dozor_store::Alert, level: Level, rule: &str) -> dozor_store::Alert {
    let mut a = store_alert.clone();
    a.level = level;
    a.rule_id = rule.into();
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_stream_delivers_notices_and_ends_on_shutdown() {
    let env = Env::start().await;
    let (_, id) = seed(&env).await;
    let alert = env.store.get_alert(id).await.unwrap().unwrap();

    let (status, headers, mut body) =
        open_stream(&env, "/api/v1/alerts/stream", &env.tokens.viewer).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let mut text = String::new();
    assert!(
        read_until(&mut body, &mut text, ": connected").await,
        "{text}"
    );

    // A filtered subscriber on the side.
    let (status, _, mut high_only) = open_stream(
        &env,
        "/api/v1/alerts/stream?min_level=critical",
        &env.tokens.analyst,
    )
    .await;
    assert_eq!(status, 200);
    let mut high_text = String::new();
    assert!(read_until(&mut high_only, &mut high_text, ": connected").await);

    env.notices
        .send(AlertNotice {
            change: dozor_store::AlertChange::Created,
            alert: alert.clone(),
        })
        .unwrap();
    env.notices
        .send(AlertNotice {
            change: dozor_store::AlertChange::Updated,
            alert: alert_of(&alert, Level::Critical, "r-critical"),
        })
        .unwrap();
    assert!(
        read_until(&mut body, &mut text, "r-critical").await,
        "{text}"
    );
    let events: Vec<Value> = text
        .split("\n\n")
        .filter(|block| block.contains("event: alert"))
        .map(|block| {
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .expect("data line");
            serde_json::from_str(data).unwrap()
        })
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0]["change"], "created");
    assert_eq!(events[0]["alert"]["id"], id);
    assert_eq!(events[0]["alert"]["rule_id"], "r-powershell");
    assert_eq!(events[1]["change"], "updated");
    assert_eq!(events[1]["alert"]["level"], "critical");

    assert!(read_until(&mut high_only, &mut high_text, "r-critical").await);
    assert!(
        !high_text.contains("\"rule_id\":\"r-powershell\""),
        "{high_text}"
    );
    assert_eq!(high_text.matches("event: alert").count(), 1, "{high_text}");

    // Refused before streaming.
    let (status, _, _) = open_stream(&env, "/api/v1/alerts/stream", &env.tokens.agent).await;
    assert_eq!(status, 403);
    let (status, _, _) = open_stream(&env, "/api/v1/alerts/stream", "nope").await;
    assert_eq!(status, 401);
    let (status, _, _) = open_stream(
        &env,
        "/api/v1/alerts/stream?min_level=x",
        &env.tokens.viewer,
    )
    .await;
    assert_eq!(status, 400);

    // Shutdown ends the streams at once instead of waiting out the grace period.
    let started = std::time::Instant::now();
    let stopping = tokio::spawn(env.stop_within(Duration::from_secs(5)));
    assert!(!read_until(&mut body, &mut text, "never sent").await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stream did not end"
    );
    stopping.await.unwrap();
}

// ---------------------------------------------------------------- saved searches, export

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_searches_are_owned_shared_and_audited() {
    let env = Env::start().await;
    let (a, v, adm) = (&env.tokens.analyst, &env.tokens.viewer, &env.tokens.admin);
    let body = json!({"name": "PowerShell on ws2", "query": "process.name:powershell.exe",
                      "params": {"range": "7d", "columns": ["host.name", "user.name"]},
                      "shared": true});
    let made = env.post("/api/v1/saved-searches", a, body.clone()).await;
    assert_eq!(made.status, 201, "{}", made.text());
    let made = made.json();
    assert_eq!(made["owner"], "bob-analyst");
    assert_eq!(made["params"]["columns"], json!(["host.name", "user.name"]));
    let id = made["id"].as_i64().unwrap();
    problem(
        &env.post("/api/v1/saved-searches", a, body.clone()).await,
        409,
        "name-taken",
    );
    problem(
        &env.post("/api/v1/saved-searches", v, body.clone()).await,
        403,
        "forbidden",
    );
    let p = problem(
        &env.post(
            "/api/v1/saved-searches",
            a,
            json!({"name": "x", "params": {"columns": ["secret.field"]}}),
        )
        .await,
        422,
        "invalid-body",
    );
    assert!(p["detail"].as_str().unwrap().contains("columns"), "{p}");
    problem(
        &env.post(
            "/api/v1/saved-searches",
            a,
            json!({"name": "x".repeat(121)}),
        )
        .await,
        422,
        "invalid-body",
    );
    // The admin's private search: the viewer and the analyst see only the shared one.
    let private = env
        .post(
            "/api/v1/saved-searches",
            adm,
            json!({"name": "mine", "query": "user.name:ivan"}),
        )
        .await;
    assert_eq!(private.status, 201, "{}", private.text());
    let private = private.json()["id"].as_i64().unwrap();
    let names = |r: Value| -> Vec<String> {
        r.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(ok(&env.get("/api/v1/saved-searches", v).await)),
        vec!["PowerShell on ws2"]
    );
    assert_eq!(
        names(ok(&env.get("/api/v1/saved-searches", adm).await)),
        vec!["mine", "PowerShell on ws2"]
    );
    problem(
        &env.get(&format!("/api/v1/saved-searches/{private}"), a)
            .await,
        404,
        "not-found",
    );
    assert_eq!(
        ok(&env.get(&format!("/api/v1/saved-searches/{id}"), v).await)["query"],
        "process.name:powershell.exe"
    );
    // Only the owner or an admin changes it.
    let send = |method: &'static str, path: String, token: &str, body: Option<Value>| {
        let auth = format!("Bearer {token}");
        let client = env.client();
        async move {
            let mut headers = vec![("authorization", auth.clone())];
            if body.is_some() {
                headers.push(("content-type", "application/json".to_owned()));
            }
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client
                .send(
                    method,
                    &path,
                    &h,
                    body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
                )
                .await
                .unwrap()
        }
    };
    let put = send(
        "PUT",
        format!("/api/v1/saved-searches/{private}"),
        a,
        Some(json!({"name": "hijacked"})),
    )
    .await;
    // Not visible to the analyst at all.
    problem(&put, 404, "not-found");
    let renamed = send(
        "PUT",
        format!("/api/v1/saved-searches/{id}"),
        adm,
        Some(json!({"name": "PowerShell", "shared": false})),
    )
    .await;
    let renamed = ok(&renamed);
    assert_eq!(
        (renamed["name"].as_str(), renamed["shared"].as_bool()),
        (Some("PowerShell"), Some(false))
    );
    assert_eq!(
        renamed["owner"], "bob-analyst",
        "an admin's change keeps the owner"
    );
    // Shared by nobody now: the viewer no longer sees it, the owner does.
    assert!(names(ok(&env.get("/api/v1/saved-searches", v).await)).is_empty());
    let gone = send("DELETE", format!("/api/v1/saved-searches/{id}"), a, None).await;
    assert_eq!(ok(&gone)["name"], "PowerShell");
    let audit = env
        .store
        .list_audit(&dozor_store::AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    for want in [
        ("saved_search.create", "bob-analyst"),
        ("saved_search.create", "alice-admin"),
        ("saved_search.update", "alice-admin"),
        ("saved_search.delete", "bob-analyst"),
    ] {
        assert!(actions.contains(&want), "{want:?} in {actions:?}");
    }
    env.stop().await;
}

/// 3,000 events whose values need CSV escaping or would be spreadsheet formulas.
fn export_events(base: i64) -> Vec<NewEvent> {
    (0..3000)
        .map(|i| NewEvent {
            id: Uuid::now_v7(),
            ts: base + i,
            received_at: base + i,
            agent_id: Some("agent-1".into()),
            doc: json!({
                "event": {"category": ["process"], "code": "4688"},
                "host": {"name": format!("ws-{}", i % 7)},
                "user": {"name": "=HYPERLINK(\"http://evil.example\",\"x\")"},
                "process": {"name": "cmd.exe", "pid": i,
                            "command_line": format!("cmd /c \"echo a,b\"\r\nline {i}")},
            }),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_every_page_escape_csv_and_stop_at_the_limit() {
    let env = Env::start().await;
    let (_, alert) = seed(&env).await;
    let base = base_time() - 3_600_000;
    let evs = export_events(base);
    for chunk in evs.chunks(1000) {
        env.store.insert_events(chunk).await.unwrap();
    }
    let v = &env.tokens.viewer;
    let range = format!("from={}&to={}", base, base + 3000);

    // CSV, every row (three store pages and more), the default columns.
    let started = std::time::Instant::now();
    let r = env
        .get(
            &format!("/api/v1/events/export?q=process.name:cmd.exe&{range}"),
            v,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "text/csv; charset=utf-8");
    assert!(
        r.header("content-disposition")
            .starts_with("attachment; filename=\"dozor-events-"),
        "{}",
        r.header("content-disposition")
    );
    assert_eq!(r.header("x-dozor-export-limit"), "100000");
    let mut reader = csv::ReaderBuilder::new().from_reader(&r.body[..]);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        &header[..4],
        ["@timestamp", "event.id", "agent_id", "host.name"]
    );
    let user_col = header.iter().position(|h| h == "user.name").unwrap();
    let cmd_col = header
        .iter()
        .position(|h| h == "process.command_line")
        .unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3000);
    // Newest first; the quotes, comma and line break come back intact; formulas are defused.
    assert_eq!(&rows[0][cmd_col], "cmd /c \"echo a,b\"\r\nline 2999");
    assert_eq!(
        &rows[0][user_col],
        "'=HYPERLINK(\"http://evil.example\",\"x\")"
    );
    assert_eq!(&rows[0][1], evs[2999].id.to_string());
    assert_eq!(&rows[2999][1], evs[0].id.to_string());
    eprintln!("exported 3000 events as CSV in {took:?}");

    // The bound: 2,500 rows, then the truncation said in a last row.
    let r = env
        .get(&format!("/api/v1/events/export?q=process.name:cmd.exe&{range}&limit=2500&columns=host.name,process.pid"), v)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&r.body[..]);
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "@timestamp",
            "event.id",
            "agent_id",
            "host.name",
            "process.pid"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2501);
    assert!(
        rows[2500][0].starts_with("# truncated: the first 2500 rows"),
        "{:?}",
        &rows[2500]
    );
    assert_eq!(&rows[2499][4], "500");

    // NDJSON: whole events; exactly at the limit with nothing more is not truncated.
    let r = env
        .get(
            &format!(
                "/api/v1/events/export?q=process.name:cmd.exe&{range}&format=ndjson&limit=3000"
            ),
            v,
        )
        .await;
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3000);
    assert_eq!(lines[0]["doc"]["process"]["pid"], 2999);
    let r = env
        .get(
            &format!("/api/v1/events/export?{range}&format=ndjson&limit=10&columns=process.pid"),
            v,
        )
        .await;
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[0]["process.pid"], 2999);
    assert_eq!(
        lines[10],
        json!({"truncated": true, "rows": 10, "limit": 10})
    );

    // Bad requests are problems before anything is streamed.
    let p = problem(
        &env.get("/api/v1/events/export?q=process.name:(", v).await,
        400,
        "invalid-query",
    );
    assert!(p["column"].is_number(), "{p}");
    problem(
        &env.get("/api/v1/events/export?format=xlsx", v).await,
        400,
        "invalid-parameter",
    );
    problem(
        &env.get("/api/v1/events/export?limit=1000001", v).await,
        400,
        "invalid-parameter",
    );
    problem(
        &env.get("/api/v1/events/export?columns=a%20b", v).await,
        400,
        "invalid-parameter",
    );

    // Alerts: the list's filters.
    let r = env
        .get("/api/v1/alerts/export?status=new&min_level=high", v)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut reader = csv::Reader::from_reader(&r.body[..]);
    assert_eq!(&reader.headers().unwrap()[4], "rule_title");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][0], alert.to_string());
    assert_eq!(&rows[0][4], "Rule r-powershell");
    let r = env
        .get("/api/v1/alerts/export?status=resolved&format=ndjson", v)
        .await;
    assert_eq!((r.status, r.body.len()), (200, 0));

    // Who exported what is in the audit log.
    let audit = env
        .store
        .list_audit(&dozor_store::AuditQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let exports: Vec<&dozor_store::AuditEntry> = audit
        .iter()
        .filter(|e| e.action == "events.export")
        .collect();
    assert_eq!(exports.len(), 4, "refused exports are not audited");
    assert!(exports.iter().all(|e| e.actor == "carol-viewer"));
    assert!(
        exports
            .iter()
            .any(|e| e.details["q"] == "process.name:cmd.exe" && e.details["limit"] == 2500),
        "{exports:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "alerts.export" && e.details["filters"]["min_level"] == "high")
    );
    env.stop().await;
}

// ---------------------------------------------------------------- roles

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Need {
    Read,
    Triage,
    Admin,
}

/// Every API route, the right it needs, and a request that is valid apart from the right.
/// Ids the response routes of the table act on: a run, an approval to approve, one to reject.
struct ResponseIds {
    run: String,
    approve: String,
    reject: String,
    /// The uuid of the server's own MISP feed event.
    feed_event: String,
}

fn route_table(
    alert: i64,
    event: Uuid,
    command: Uuid,
    ids: &ResponseIds,
) -> Vec<(&'static str, String, Need, Value)> {
    vec![
        ("GET", "/api/v1/events".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/events/histogram".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            format!("/api/v1/events/{event}"),
            Need::Read,
            Value::Null,
        ),
        ("GET", "/api/v1/hosts".into(), Need::Read, Value::Null),
        ("GET", "/api/v1/incidents".into(), Need::Read, Value::Null),
        (
            "POST",
            "/api/v1/incidents".into(),
            Need::Triage,
            json!({"title": "route table"}),
        ),
        (
            "GET",
            "/api/v1/incidents/suggestions".into(),
            Need::Read,
            Value::Null,
        ),
        ("GET", "/api/v1/incidents/1".into(), Need::Read, Value::Null),
        (
            "PATCH",
            "/api/v1/incidents/1".into(),
            Need::Triage,
            json!({"status": "in_progress"}),
        ),
        (
            "POST",
            "/api/v1/incidents/1/alerts".into(),
            Need::Triage,
            json!({"alert_ids": [alert]}),
        ),
        (
            "DELETE",
            format!("/api/v1/incidents/1/alerts/{alert}"),
            Need::Triage,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/incidents/1/tasks".into(),
            Need::Triage,
            json!({"title": "route table"}),
        ),
        (
            "PATCH",
            "/api/v1/incidents/1/tasks/1".into(),
            Need::Triage,
            json!({"done": true}),
        ),
        (
            "POST",
            "/api/v1/incidents/1/notes".into(),
            Need::Triage,
            json!({"body": "route table"}),
        ),
        (
            "POST",
            "/api/v1/incidents/1/observables".into(),
            Need::Triage,
            json!({"kind": "ip", "value": "10.0.0.1"}),
        ),
        (
            "DELETE",
            "/api/v1/incidents/1/observables/1".into(),
            Need::Triage,
            Value::Null,
        ),
        ("GET", "/api/v1/exceptions".into(), Need::Read, Value::Null),
        (
            "POST",
            "/api/v1/exceptions".into(),
            Need::Triage,
            json!({"rule_id": "r-curl", "conditions": [{"field": "host.name", "value": "ws1"}],
                   "reason": "route table"}),
        ),
        (
            "DELETE",
            "/api/v1/exceptions/1".into(),
            Need::Triage,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/saved-searches".into(),
            Need::Triage,
            json!({"name": "route table", "shared": true}),
        ),
        (
            "GET",
            "/api/v1/saved-searches".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/saved-searches/1".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "PUT",
            "/api/v1/saved-searches/1".into(),
            Need::Triage,
            json!({"query": "host.name:ws1"}),
        ),
        (
            "DELETE",
            "/api/v1/saved-searches/1".into(),
            Need::Triage,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/events/export".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/alerts/export".into(),
            Need::Read,
            Value::Null,
        ),
        ("GET", "/api/v1/hosts/ws1".into(), Need::Read, Value::Null),
        ("GET", "/api/v1/alerts".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/alerts/stream".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            format!("/api/v1/alerts/{alert}"),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            format!("/api/v1/alerts/{alert}/status"),
            Need::Triage,
            json!({"status": "acknowledged"}),
        ),
        (
            "POST",
            format!("/api/v1/alerts/{alert}/assignee"),
            Need::Triage,
            json!({"assignee": "x"}),
        ),
        (
            "POST",
            format!("/api/v1/alerts/{alert}/comments"),
            Need::Triage,
            json!({"text": "x"}),
        ),
        ("GET", "/api/v1/rules".into(), Need::Read, Value::Null),
        (
            "POST",
            "/api/v1/rules/reload".into(),
            Need::Admin,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/rules/test".into(),
            Need::Triage,
            json!({"rule": "contains: curl"}),
        ),
        (
            "GET",
            "/api/v1/rules/r-curl".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/rules/r-curl/enabled".into(),
            Need::Admin,
            json!({"enabled": true}),
        ),
        ("GET", "/api/v1/stats".into(), Need::Read, Value::Null),
        ("GET", "/api/v1/agents".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/agents/stream".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/agents/agent-x".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/agents/agent-x/commands".into(),
            Need::Triage,
            json!({"kind": "scan_path", "args": {"path": "/tmp"}}),
        ),
        (
            "GET",
            "/api/v1/agents/agent-x/commands".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            format!("/api/v1/commands/{command}"),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/agents/agent-x/revoke".into(),
            Need::Admin,
            json!({"reason": "test"}),
        ),
        // File scanning. A JSON string body is sent as text/plain; PUT comes before the
        // GET and DELETE of the same file.
        ("GET", "/api/v1/yara/rules".into(), Need::Read, Value::Null),
        (
            "PUT",
            "/api/v1/yara/rules/route-table.yar".into(),
            Need::Admin,
            json!("rule RouteTable { condition: false }"),
        ),
        (
            "GET",
            "/api/v1/yara/rules/route-table.yar".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "DELETE",
            "/api/v1/yara/rules/route-table.yar".into(),
            Need::Admin,
            Value::Null,
        ),
        ("GET", "/api/v1/samples".into(), Need::Triage, Value::Null),
        (
            "GET",
            format!("/api/v1/samples/{SAMPLE_SHA256}"),
            Need::Triage,
            Value::Null,
        ),
        // Response. PUT comes before the DELETE of the same playbook.
        ("GET", "/api/v1/playbooks".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/playbooks/notify-operator".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "PUT",
            "/api/v1/playbooks/route-table-pb".into(),
            Need::Admin,
            json!("- name: Route table\n  tasks:\n    - debug: {msg: hi}\n"),
        ),
        (
            "DELETE",
            "/api/v1/playbooks/route-table-pb".into(),
            Need::Admin,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/playbooks/notify-operator/enabled".into(),
            Need::Admin,
            json!({"enabled": true}),
        ),
        (
            "POST",
            "/api/v1/playbooks/notify-operator/run".into(),
            Need::Triage,
            json!({"dry_run": true}),
        ),
        (
            "GET",
            "/api/v1/playbook-runs".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            format!("/api/v1/playbook-runs/{}", ids.run),
            Need::Read,
            Value::Null,
        ),
        ("GET", "/api/v1/approvals".into(), Need::Read, Value::Null),
        (
            "GET",
            format!("/api/v1/approvals/{}", ids.approve),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            format!("/api/v1/approvals/{}/approve", ids.approve),
            Need::Triage,
            json!({"comment": "ok"}),
        ),
        (
            "POST",
            format!("/api/v1/approvals/{}/reject", ids.reject),
            Need::Triage,
            json!({}),
        ),
        (
            "POST",
            "/api/v1/agents/agent-x/actions".into(),
            Need::Triage,
            json!({"kind": "release_host"}),
        ),
        // Threat intelligence. The manual indicator is id 1; the source is synced (a MISP
        // that refuses the connection: a `failed` outcome, answered 200) before its DELETE.
        (
            "POST",
            "/api/v1/intel/iocs".into(),
            Need::Triage,
            json!({"kind": "domain", "value": "route-table.example", "expires_in_days": 1}),
        ),
        ("GET", "/api/v1/intel/iocs".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/intel/iocs/1".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/intel/iocs/1/enabled".into(),
            Need::Triage,
            json!({"enabled": false}),
        ),
        (
            "GET",
            "/api/v1/intel/matches".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/intel/sources".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "PUT",
            "/api/v1/intel/sources/route-src".into(),
            Need::Admin,
            json!({"spec": {"kind": "misp_rest", "url": "https://127.0.0.1:1", "key": "k"},
                   "interval_secs": 0}),
        ),
        (
            "POST",
            "/api/v1/intel/sources/route-src/sync".into(),
            Need::Triage,
            Value::Null,
        ),
        (
            "DELETE",
            "/api/v1/intel/sources/route-src".into(),
            Need::Admin,
            Value::Null,
        ),
        // Exchange: a freetext document (sent as text/plain), the exports.
        (
            "POST",
            "/api/v1/intel/import?source=route-import".into(),
            Need::Triage,
            json!("198.51.100.77 seen scanning\n"),
        ),
        (
            "GET",
            "/api/v1/intel/export/stix".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/intel/export/misp-feed/manifest.json".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/intel/export/misp-feed/hashes.csv".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            format!("/api/v1/intel/export/misp-feed/{}.json", ids.feed_event),
            Need::Read,
            Value::Null,
        ),
        // Vulnerabilities: a one-result report (result id 1), then reading and deciding.
        (
            "POST",
            "/api/v1/vulns/import?name=route-report".into(),
            Need::Triage,
            json!(ROUTE_REPORT),
        ),
        ("GET", "/api/v1/vulns".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/vulns/summary".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "GET",
            "/api/v1/vulns/export?format=csv".into(),
            Need::Read,
            Value::Null,
        ),
        ("GET", "/api/v1/vulns/scans".into(), Need::Read, Value::Null),
        ("GET", "/api/v1/vulns/1".into(), Need::Read, Value::Null),
        (
            "POST",
            "/api/v1/vulns/1/status".into(),
            Need::Triage,
            json!({"status": "open"}),
        ),
        (
            "GET",
            "/api/v1/vulns/advisories".into(),
            Need::Read,
            Value::Null,
        ),
        // No `vulns.advisories` configured: 409 for the admin.
        (
            "POST",
            "/api/v1/vulns/advisories/reload".into(),
            Need::Admin,
            json!({}),
        ),
        (
            "GET",
            "/api/v1/agents/agent-x/inventory".into(),
            Need::Read,
            Value::Null,
        ),
        // Scan jobs: a disabled one (start and stop are 409 for the allowed roles).
        (
            "PUT",
            "/api/v1/vulns/jobs/route-job".into(),
            Need::Admin,
            json!({"spec": {"targets": {"hosts": ["10.0.0.1"]},
                "gmp": {"socket": "/run/gvmd/gvmd.sock"}, "username": "u", "password": "p"},
                "enabled": false}),
        ),
        ("GET", "/api/v1/vulns/jobs".into(), Need::Read, Value::Null),
        (
            "GET",
            "/api/v1/vulns/jobs/route-job".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/vulns/jobs/route-job/start".into(),
            Need::Triage,
            json!({}),
        ),
        (
            "POST",
            "/api/v1/vulns/jobs/route-job/stop".into(),
            Need::Triage,
            json!({}),
        ),
        (
            "DELETE",
            "/api/v1/vulns/jobs/route-job".into(),
            Need::Admin,
            Value::Null,
        ),
        // Behavioural analytics: the models, training on demand (202: requested), scoring
        // without learning (an event the models have no baseline for: no findings), the
        // anomaly events.
        (
            "GET",
            "/api/v1/anomaly/models".into(),
            Need::Read,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/anomaly/train".into(),
            Need::Admin,
            Value::Null,
        ),
        (
            "POST",
            "/api/v1/anomaly/score".into(),
            Need::Triage,
            json!({"events": [{"@timestamp": "2026-01-05T10:00:00Z", "host": {"name": "ws1"},
                "event": {"category": ["process"], "type": ["start"]},
                "process": {"name": "cmd.exe", "parent": {"name": "explorer.exe"}}}]}),
        ),
        ("GET", "/api/v1/anomalies".into(), Need::Read, Value::Null),
    ]
}

/// The OpenVAS report the route table imports: one result.
const ROUTE_REPORT: &str = r#"<report id="route-table-report"><results><result><host>10.0.0.1</host><port>80/tcp</port><nvt oid="1.3.6.1.4.1.25623.1.0.1"><name>Route table finding</name></nvt><severity>5.0</severity></result></results></report>"#;

/// The sample the route table reads.
const SAMPLE_SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The route pattern of a concrete path of the table.
fn pattern(path: &str, alert: i64, event: Uuid, command: Uuid) -> String {
    let mut p = path
        .replace(&event.to_string(), "{id}")
        .replace(&command.to_string(), "{id}")
        .replace(&format!("/alerts/{alert}"), "/alerts/{id}")
        .replace("/rules/r-curl", "/rules/{id}")
        .replace("/hosts/ws1", "/hosts/{name}")
        .replace("/exceptions/1", "/exceptions/{id}")
        .replace(
            "/incidents/1/alerts/{id}",
            "/incidents/{id}/alerts/{alert_id}",
        )
        .replace("/incidents/1/tasks/1", "/incidents/{id}/tasks/{task_id}")
        .replace(
            "/incidents/1/observables/1",
            "/incidents/{id}/observables/{observable_id}",
        )
        .replace("/incidents/1", "/incidents/{id}")
        .replace("/saved-searches/1", "/saved-searches/{id}")
        .replace("/agents/agent-x", "/agents/{id}")
        .replace("/yara/rules/route-table.yar", "/yara/rules/{name}")
        .replace("/playbooks/route-table-pb", "/playbooks/{name}")
        .replace("/playbooks/notify-operator", "/playbooks/{name}")
        .replace(SAMPLE_SHA256, "{sha256}")
        .replace("/intel/iocs/1", "/intel/iocs/{id}")
        .replace("/intel/sources/route-src", "/intel/sources/{name}")
        .replace("/intel/import?source=route-import", "/intel/import")
        .replace("/vulns/import?name=route-report", "/vulns/import")
        .replace("/vulns/export?format=csv", "/vulns/export")
        .replace("/vulns/jobs/route-job", "/vulns/jobs/{name}")
        .replace("/vulns/1", "/vulns/{id}");
    if p.starts_with("/api/v1/intel/export/misp-feed/")
        && !p.ends_with("/manifest.json")
        && !p.ends_with("/hashes.csv")
    {
        p = "/api/v1/intel/export/misp-feed/{file}".to_owned();
    }
    for prefix in ["/approvals/", "/playbook-runs/"] {
        if let Some(i) = p.find(prefix) {
            let start = i + prefix.len();
            let end = p[start..].find('/').map_or(p.len(), |e| start + e);
            p.replace_range(start..end, "{id}");
        }
    }
    p
}

async fn status_of(
    env: &Env,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &Value,
) -> Response {
    if path.ends_with("/stream") {
        // Don't wait for the end of an open stream: the status is enough.
        let (status, headers, _) = open_stream_auth(env, path, auth).await;
        return Response {
            status,
            headers,
            body: Bytes::new(),
        };
    }
    let mut headers = vec![("content-type", "application/json")];
    let header;
    if let Some(a) = auth {
        header = a.to_owned();
        headers.push(("authorization", &header));
    }
    let body = match body {
        Value::Null => Vec::new(),
        // A text body (a YARA rule).
        Value::String(text) => {
            headers[0] = ("content-type", "text/plain");
            text.clone().into_bytes()
        }
        other => other.to_string().into_bytes(),
    };
    env.client()
        .send(method, path, &headers, body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_what_a_role_may_not_do() {
    let env = Env::start().await;
    let (evs, alert) = seed(&env).await;
    env.store
        .insert_agent(&dozor_store::NewAgent {
            id: "agent-x".into(),
            facts: dozor_store::AgentFacts {
                hostname: "ws-1".into(),
                os_type: "linux".into(),
                agent_version: "0.1.0".into(),
                ..Default::default()
            },
            cert_sha256: "ab".repeat(32),
            cert_not_after: 0,
            enrolled_by: "token:1".into(),
        })
        .await
        .unwrap();
    let command = env
        .store
        .create_command(&dozor_store::NewAgentCommand {
            agent_id: "agent-x".into(),
            kind: "scan_path".into(),
            args: json!({"path": "/srv", "recursive": true}),
            requested_by: "alice-admin".into(),
        })
        .await
        .unwrap()
        .id;
    env.store
        .record_sample(&dozor_store::NewSample {
            sha256: SAMPLE_SHA256.into(),
            size: 1,
            agent_id: Some("agent-x".into()),
            path: "/tmp/x".into(),
            at: dozor_store::now_ms(),
        })
        .await
        .unwrap();
    let run = env
        .store
        .create_playbook_run(&dozor_store::NewPlaybookRun {
            id: Uuid::now_v7().to_string(),
            playbook: "notify-operator".into(),
            trigger: "manual".into(),
            alert_id: None,
            agent_id: None,
            requested_by: "alice-admin".into(),
            dry_run: true,
            vars: json!({}),
        })
        .await
        .unwrap()
        .id;
    let mut approvals = Vec::new();
    for _ in 0..2 {
        let a = env
            .store
            .create_approval(&dozor_store::NewApproval {
                run_id: None,
                playbook: None,
                action: "release_host".into(),
                target: json!({"agent_id": "agent-x", "kind": "release_host", "args": {}}),
                reason: "route table".into(),
                requested_by: "alice-admin".into(),
                other_approver: false,
                expires_at: dozor_store::now_ms() + 3_600_000,
            })
            .await
            .unwrap();
        approvals.push(a.id);
    }
    let ids = ResponseIds {
        run,
        approve: approvals[0].clone(),
        reject: approvals[1].clone(),
        feed_event: dozor_server::intel::exchange::feed_event_uuid(&env.ca_pem),
    };
    env.store
        .put_agent_inventory(&dozor_store::AgentInventory {
            agent_id: "agent-x".into(),
            fingerprint: "00".repeat(32),
            os: json!({"id": "debian"}),
            packages: json!([]),
            package_count: 0,
            reported_at: 1,
        })
        .await
        .unwrap();
    let table = route_table(alert, evs[0].id, command, &ids);

    // The table covers every API route the server has.
    let mut covered: Vec<String> = table
        .iter()
        .map(|(m, p, _, _)| format!("{m} {}", pattern(p, alert, evs[0].id, command)))
        .collect();
    covered.sort();
    let mut routes: Vec<String> = dozor_server::ROUTES
        .iter()
        .filter(|(m, p, _)| {
            p.starts_with("/api/v1/")
                // Agents' samples and rules: client certificate (tested in tests/scan.rs).
                && !matches!(
                    (*m, *p),
                    ("POST", "/api/v1/samples")
                        | ("HEAD", "/api/v1/samples/{sha256}")
                        | ("GET", "/api/v1/agents/yara-rules")
                )
                && !p.starts_with("/api/v1/ingest")
                // Agents' own routes: enrollment token / client certificate, not bearer tokens.
                && ![
                    "/api/v1/agents/enroll",
                    "/api/v1/agents/heartbeat",
                    "/api/v1/agents/inventory",
                    "/api/v1/agents/commands/{id}/result",
                    // The agents' long poll (tests/response.rs).
                    "/api/v1/agents/commands/next",
                ]
                .contains(p)
                && ![
                    "/api/v1/ca.pem",
                    "/api/v1/schema/event.json",
                    "/api/v1/openapi.json",
                ]
                .contains(p)
        })
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    routes.sort();
    assert_eq!(covered, routes);

    // Every answer below is one the served OpenAPI document lists for its operation.
    let doc = env.client().get("/api/v1/openapi.json").await.json();
    let documented = |method: &str, path: &str, status: u16| -> bool {
        let template = pattern(path, alert, evs[0].id, command);
        doc["paths"][&template][method.to_ascii_lowercase()]["responses"][status.to_string()]
            .is_object()
    };

    let t = &env.tokens;
    let bearer = |s: &str| format!("Bearer {s}");
    let callers: Vec<(&str, Option<String>, Option<Need>)> = vec![
        ("no credential", None, None),
        ("unknown token", Some(bearer("dzt_not-a-real-token")), None),
        ("basic auth", Some("Basic YWRtaW46YWRtaW4=".into()), None),
        ("agent", Some(bearer(&t.agent)), None),
        ("viewer", Some(bearer(&t.viewer)), Some(Need::Read)),
        ("analyst", Some(bearer(&t.analyst)), Some(Need::Triage)),
        ("admin", Some(bearer(&t.admin)), Some(Need::Admin)),
    ];
    for (method, path, need, body) in &table {
        for (who, auth, has) in &callers {
            let r = status_of(&env, method, path, auth.as_deref(), body).await;
            let what = format!("{who} {method} {path}: {} {}", r.status, r.text());
            assert!(
                documented(method, path, r.status),
                "undocumented answer: {what}"
            );
            let expected = match has {
                None if *who == "agent" => 403,
                None => 401,
                Some(has) if has < need => 403,
                Some(_) => 0,
            };
            match expected {
                401 => {
                    assert_eq!(r.status, 401, "{what}");
                    assert!(r.header("www-authenticate").starts_with("Bearer"), "{what}");
                    assert_eq!(
                        r.header("content-type"),
                        "application/problem+json",
                        "{what}"
                    );
                }
                403 => {
                    assert_eq!(r.status, 403, "{what}");
                    assert_eq!(
                        r.header("content-type"),
                        "application/problem+json",
                        "{what}"
                    );
                }
                // Allowed: done or queued (or, for a second status change, refused by the
                // workflow; for a second removal of one exception, gone already).
                _ => assert!(
                    [200, 201, 202, 204, 409].contains(&r.status)
                        || (r.status == 404
                            && *who == "admin"
                            && (path.contains("/exceptions/")
                                || path.contains("/saved-searches/")
                                || path.contains("/incidents/1/alerts/")
                                || path.contains("/incidents/1/observables/"))),
                    "{what}"
                ),
            }
        }
    }
    // Refused attempts changed nothing: only the allowed ones are in the audit log.
    let audit = env
        .store
        .list_audit(&dozor_store::AuditQuery::default())
        .await
        .unwrap();
    // (Exports are audited whoever makes them: viewers may export.)
    assert!(audit.iter().all(|e| e.actor == "alice-admin"
        || e.actor == "bob-analyst"
        || e.action.ends_with(".export")));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_api_state_routes_answer_503_after_authentication() {
    let env = Env::start_with(&[], false).await;
    let r = env.get("/api/v1/events", &env.tokens.viewer).await;
    let p = problem(&r, 503, "api-not-configured");
    assert!(p["detail"].as_str().unwrap().contains("api not configured"));
    problem(
        &env.get("/api/v1/events", "wrong").await,
        401,
        "unauthorized",
    );
    problem(
        &env.get("/api/v1/rules", &env.tokens.agent).await,
        403,
        "forbidden",
    );
    // Ingest and the public documents still work; metrics have no pipeline section.
    assert_eq!(env.client().get("/healthz").await.status, 200);
    let m = env.get("/metrics", &env.tokens.viewer).await.text();
    assert!(!m.contains("dozor_pipeline_events_total"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_roles_decide_which_routes_exist() {
    let bus = ("DOZOR_BUS", "redis://127.0.0.1:6379");
    let env = Env::start_with(&[("DOZOR_ROLE", "ingest"), bus], true).await;
    problem(
        &env.get("/api/v1/alerts", &env.tokens.admin).await,
        404,
        "not-found",
    );
    env.stop().await;
    let env = Env::start_with(&[("DOZOR_ROLE", "api"), bus], true).await;
    ok(&env.get("/api/v1/alerts", &env.tokens.admin).await);
    problem(
        &env.post("/api/v1/ingest", &env.tokens.agent, json!([]))
            .await,
        404,
        "not-found",
    );
    env.stop().await;
}

// ---------------------------------------------------------------- rules, stats, metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_listing_enable_disable_reload_and_test() {
    let env = Env::start().await;
    let (evs, _) = seed(&env).await;
    let t = &env.tokens;

    let list = ok(&env.get("/api/v1/rules", &t.viewer).await);
    let rules = list["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    let ps = rules.iter().find(|r| r["id"] == "r-powershell").unwrap();
    assert_eq!(
        (ps["enabled"].as_bool(), ps["hit_count"].as_i64()),
        (Some(true), Some(5))
    );
    assert_eq!(ps["last_hit"], evs[20].ts);
    assert_eq!(ps["level"], "high");
    assert_eq!(ps["outcome"], "active");
    let curl = rules.iter().find(|r| r["id"] == "r-curl").unwrap();
    assert_eq!(
        (curl["enabled"].as_bool(), curl["hit_count"].as_i64()),
        (Some(true), Some(0))
    );
    let unrouted = rules.iter().find(|r| r["id"] == "r-unrouted").unwrap();
    assert_eq!(unrouted["reason"], "no mapping");

    // Disable, see it in the listing and the audit log, enable again.
    let r = ok(&env
        .post(
            "/api/v1/rules/r-curl/enabled",
            &t.admin,
            json!({"enabled": false}),
        )
        .await);
    assert_eq!(r["enabled"], false);
    let list = ok(&env.get("/api/v1/rules", &t.viewer).await);
    let curl = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "r-curl")
        .unwrap()
        .clone();
    assert_eq!(curl["enabled"], false);
    let state = env.store.rule_state("r-curl").await.unwrap().unwrap();
    assert!(!state.enabled);
    let stats = ok(&env.get("/api/v1/stats", &t.viewer).await);
    assert_eq!(
        stats["rules"],
        json!({"total": 3, "active_enabled": 1, "disabled": 1, "not_active": 1})
    );
    ok(&env
        .post(
            "/api/v1/rules/r-curl/enabled",
            &t.admin,
            json!({"enabled": true}),
        )
        .await);
    let d = ok(&env.get("/api/v1/rules/r-curl", &t.viewer).await);
    assert_eq!(d["enabled"], true);
    assert_eq!(d["yaml"], "title: r-curl\ncontains: x\n");
    assert_eq!(d["title"], "Curl");
    problem(
        &env.get("/api/v1/rules/nope", &t.viewer).await,
        404,
        "not-found",
    );
    problem(
        &env.post(
            "/api/v1/rules/nope/enabled",
            &t.admin,
            json!({"enabled": false}),
        )
        .await,
        404,
        "not-found",
    );
    problem(
        &env.post(
            "/api/v1/rules/r-curl/enabled",
            &t.admin,
            json!({"enabled": "no"}),
        )
        .await,
        422,
        "invalid-body",
    );

    // Reload: the report, then a failure; both audited.
    let report = ok(&env
        .post("/api/v1/rules/reload", &t.admin, Value::Null)
        .await);
    assert_eq!(report["documents"], 3);
    assert_eq!(report["unrouted"], 1);
    let p = problem(
        &env.post("/api/v1/rules/reload", &t.admin, Value::Null)
            .await,
        500,
        "reload-failed",
    );
    assert_eq!(p["detail"], "rules directory vanished");

    let audit = env
        .store
        .list_audit(&dozor_store::AuditQuery::default())
        .await
        .unwrap();
    let actions: Vec<_> = audit
        .iter()
        .rev()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_deref()))
        .collect();
    assert_eq!(
        actions,
        [
            ("alice-admin", "rule.disable", Some("rule:r-curl")),
            ("alice-admin", "rule.enable", Some("rule:r-curl")),
            ("alice-admin", "rules.reload", Some("rules")),
            ("alice-admin", "rules.reload", Some("rules")),
        ]
    );
    assert_eq!(audit[0].details["ok"], false);
    assert_eq!(audit[1].details["report"]["documents"], 3);

    // Test a rule over stored events.
    let r = ok(&env
        .post(
            "/api/v1/rules/test",
            &t.analyst,
            json!({"rule": "contains: powershell.exe"}),
        )
        .await);
    assert_eq!(
        (r["tested"].as_u64(), r["matched"].as_u64()),
        (Some(25), Some(5))
    );
    let expected: Vec<_> = evs
        .iter()
        .rev()
        .filter(|e| e.doc["process"]["name"] == "powershell.exe")
        .map(|e| json!(e.id.to_string()))
        .collect();
    assert_eq!(r["event_ids"], json!(expected));
    let r = ok(&env
        .post(
            "/api/v1/rules/test",
            &t.analyst,
            json!({"rule": "contains: SYSTEM", "query": "process.name:powershell.exe", "limit": 2}),
        )
        .await);
    // The two newest powershell events are i = 20 (SYSTEM) and 15 (ivan).
    assert_eq!(
        (r["tested"].as_u64(), r["matched"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(r["event_ids"], json!([evs[20].id.to_string()]));
    let p = problem(
        &env.post(
            "/api/v1/rules/test",
            &t.analyst,
            json!({"rule": "title: x"}),
        )
        .await,
        422,
        "invalid-rule",
    );
    assert_eq!(p["detail"], "line 1: expected `contains:`");
    problem(
        &env.post(
            "/api/v1/rules/test",
            &t.analyst,
            json!({"rule": "contains: x", "query": "a:"}),
        )
        .await,
        400,
        "invalid-query",
    );
    problem(
        &env.post(
            "/api/v1/rules/test",
            &t.analyst,
            json!({"rule": "contains: x", "limit": 0}),
        )
        .await,
        422,
        "invalid-body",
    );
    problem(
        &env.post("/api/v1/rules/test", &t.analyst, json!({"rule": ""}))
            .await,
        422,
        "invalid-body",
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_pipeline_metrics() {
    let env = Env::start().await;
    let (_, id) = seed(&env).await;
    env.store
        .set_alert_status(id, dozor_store::AlertStatus::Acknowledged, "x", None)
        .await
        .unwrap();
    env.stats.events.fetch_add(25, Ordering::Relaxed);
    env.stats.alerts_created.fetch_add(1, Ordering::Relaxed);
    env.stats.alert_latency.observe(0.04);

    let s = ok(&env.get("/api/v1/stats", &env.tokens.viewer).await);
    assert_eq!(s["events_total"], 25);
    assert_eq!(s["events_last_24h"], 25);
    assert_eq!(
        s["alerts_by_status"],
        json!({"new": 0, "acknowledged": 1, "resolved": 0, "false_positive": 0})
    );
    assert_eq!(s["open_alerts_by_level"]["high"], 1);
    assert_eq!(s["open_alerts_by_level"]["critical"], 0);
    assert_eq!(s["pipeline"]["events_processed"], 25);
    assert_eq!(s["pipeline"]["alerts_created"], 1);

    let m = env.get("/metrics", &env.tokens.viewer).await;
    assert_eq!(m.status, 200);
    let text = m.text();
    for needle in [
        "dozor_pipeline_events_total 25\n",
        "dozor_pipeline_alerts_created_total 1\n",
        "dozor_pipeline_events_stored_total 0\n",
        "dozor_pipeline_detections_total 0\n",
        "dozor_pipeline_intel_matches_total 0\n",
        "dozor_event_to_alert_latency_seconds_bucket{le=\"0.05\"} 1\n",
        "dozor_event_to_alert_latency_seconds_count 1\n",
        "dozor_ingest_events_accepted_total 0\n",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    assert_eq!(text.matches("# EOF").count(), 1);

    // The OpenAPI document describes the API routes.
    let doc = env.client().get("/api/v1/openapi.json").await.json();
    assert!(doc["paths"]["/api/v1/alerts/{id}/status"]["post"]["responses"]["409"].is_object());
    assert!(doc["components"]["schemas"]["AlertNotice"].is_object());
    env.stop().await;
}

// ---------------------------------------------------------------- HTTP/2 early answers

/// A body sent in 64 KiB frames, slowly enough that the answer comes while it is unsent.
fn streamed_body(
    total: usize,
) -> http_body_util::StreamBody<
    futures_util::stream::BoxStream<'static, Result<hyper::body::Frame<Bytes>, std::io::Error>>,
> {
    use futures_util::StreamExt;
    let chunks = total.div_ceil(64 << 10);
    let stream = futures_util::stream::iter(0..chunks)
        .then(|_| async {
            tokio::task::yield_now().await;
            Ok(hyper::body::Frame::data(Bytes::from(vec![b' '; 64 << 10])))
        })
        .boxed();
    http_body_util::StreamBody::new(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_refusals_with_a_body_reach_the_client() {
    let env = Env::start().await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(
            env.ca_pem.as_bytes(),
        )
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for (path, token, status) in [
        ("/api/v1/rules/test", "dzt_not-a-valid-token", 401),
        ("/api/v1/rules/test", env.tokens.viewer.as_str(), 403),
        ("/api/v1/ingest", "dzt_not-a-valid-token", 401),
    ] {
        let tcp = tokio::net::TcpStream::connect(env.addr).await.unwrap();
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        // Several streams at once on one connection, each with a body still being sent when
        // the refusal comes.
        let attempts: Vec<_> = (0..8)
            .map(|attempt| {
                let mut sender = sender.clone();
                let token = token.to_owned();
                tokio::spawn(async move {
                    let request = hyper::Request::post(format!("https://localhost{path}"))
                        .header("authorization", format!("Bearer {token}"))
                        .header("content-type", "application/json")
                        .body(streamed_body(4 << 20))
                        .unwrap();
                    let response = sender
                        .send_request(request)
                        .await
                        .map_err(|e| format!("{path} attempt {attempt}: {e:?}"))?;
                    let got = response.status().as_u16();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| format!("{path} attempt {attempt} body: {e:?}"))?;
                    Ok::<u16, String>(got)
                })
            })
            .collect();
        for attempt in attempts {
            assert_eq!(attempt.await.unwrap(), Ok(status), "{path}");
        }
    }
    env.stop().await;
}

/// Issue 12 (schemathesis finding): serde reads a struct from a JSON array too, so `[]` used to
/// revoke an agent as if the body were `{}`. Only an object, `null` or no body is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_takes_an_object_null_or_nothing_and_refuses_arrays() {
    let env = Env::start().await;
    env.store
        .insert_agent(&dozor_store::NewAgent {
            id: "agent-r".into(),
            facts: dozor_store::AgentFacts {
                hostname: "ws-r".into(),
                os_type: "linux".into(),
                agent_version: "0.1.0".into(),
                ..Default::default()
            },
            cert_sha256: "cd".repeat(32),
            cert_not_after: 0,
            enrolled_by: "token:1".into(),
        })
        .await
        .unwrap();
    for body in [
        json!([]),
        json!(["stolen laptop"]),
        json!("stolen laptop"),
        json!(7),
    ] {
        let r = env
            .post(
                "/api/v1/agents/agent-r/revoke",
                &env.tokens.admin,
                body.clone(),
            )
            .await;
        let p = problem(&r, 422, "invalid-body");
        assert!(
            p["detail"].as_str().unwrap().contains("object"),
            "{body}: {p}"
        );
        let agent = env.store.get_agent("agent-r").await.unwrap().unwrap();
        assert!(agent.revoked_at.is_none(), "{body} revoked the agent");
    }
    let r = env
        .post(
            "/api/v1/agents/agent-r/revoke",
            &env.tokens.admin,
            json!({"reason": "stolen laptop"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        env.store
            .get_agent("agent-r")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    env.stop().await;
}
