//! Behavioural analytics (issue 17) end to end over a real server: ten days of routine history
//! stored directly in the store (five hosts starting the same four processes through the
//! working day, two logons a day per user from one address), the job trains on start (`GET
//! /api/v1/anomaly/models`), on demand (`POST /api/v1/anomaly/train`, admin only, audited),
//! then scores what arrives: a host starting `mimikatz.exe` under `cmd.exe` becomes a
//! `rare_process` anomaly event explaining itself and an alert of `dozor-anomaly-rare-process`,
//! while a routine process beside it raises nothing; a logon from a new address is found by its
//! user (`CORP\user4`: a backslash in `entity=`). `POST /api/v1/anomaly/score` answers without
//! learning; a restart restores the models and the read position without storing an anomaly
//! twice; a training scores what arrived since the last run instead of learning it unseen; a
//! server with `anomaly.enabled = false` says so.
//!
//! Runs on SQLite, and on PostgreSQL when `DOZOR_TEST_POSTGRES_URL` is set (in a fresh schema
//! dropped afterwards; skipped with a message otherwise).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{NoRules, Response, Running, api_token};
use dozor_server::{
    AccessRole, ApiState, BoxFuture, Identity, MemorySink, Services, TokenVerifier, VerifierError,
};
use dozor_store::postgres::{PgConfig, PgStore};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{AuditQuery, NewEvent, Role, Store, StoreConfig, now_ms};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use uuid::Uuid;

const PG_ENV: &str = "DOZOR_TEST_POSTGRES_URL";
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Days of history stored before the server starts.
const DAYS: i64 = 10;
const HOSTS: [&str; 5] = ["ws-01", "ws-02", "ws-03", "ws-04", "srv-01"];
/// The routine: (process, parent), each started once an hour from 09:00 to 16:59.
const ROUTINE: [(&str, &str); 4] = [
    ("svchost.exe", "services.exe"),
    ("chrome.exe", "explorer.exe"),
    ("outlook.exe", "explorer.exe"),
    ("teams.exe", "explorer.exe"),
];
const WORK_HOURS: std::ops::Range<i64> = 9..17;
/// How long the scoring job may take to report what was stored.
const SCORING_WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- fixtures

/// Store tokens → identities (what the binary does).
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

struct Tokens {
    admin: String,
    analyst: String,
    viewer: String,
}

impl Tokens {
    async fn create(store: &dyn Store) -> Tokens {
        Tokens {
            admin: api_token(store, "alice-admin", Role::Admin).await,
            analyst: api_token(store, "bob-analyst", Role::Analyst).await,
            viewer: api_token(store, "carol-viewer", Role::Viewer).await,
        }
    }
}

/// A server on `data_dir` over `store`, with the anomaly job scoring every second (unless
/// `extra` sets `DOZOR_ANOMALY_INTERVAL`).
async fn start(data_dir: &Path, store: &Arc<dyn Store>, extra: &[(&str, &str)]) -> Running {
    let mut env: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if !extra.iter().any(|(k, _)| *k == "DOZOR_ANOMALY_INTERVAL") {
        env.push(("DOZOR_ANOMALY_INTERVAL".into(), "1s".into()));
    }
    let config = common::config(data_dir, env).expect("config");
    let services = Services::new(
        Arc::new(MemorySink::new(1000)),
        Arc::new(StoreTokens(store.clone())),
    )
    .with_api(Arc::new(ApiState {
        store: store.clone(),
        rules: Arc::new(NoRules),
        notices: tokio::sync::broadcast::channel(64).0,
        pipeline_stats: None,
        agent_notices: tokio::sync::broadcast::channel(16).0,
    }));
    Running::start(config, services).await
}

async fn call(
    server: &Running,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Response {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    server
        .client()
        .send(method, path, &headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

async fn get(server: &Running, path: &str, token: &str) -> Value {
    let r = call(server, "GET", path, token, None).await;
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    r.json()
}

/// The problem document of a refusal, checked for its status and type.
fn problem(r: &Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], format!("urn:dozor:problem:{slug}"), "{p}");
    p
}

/// Polls `probe` until it gives a value, failing after `within`.
async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn process_start(host: &str, user: &str, process: &str, parent: &str, ts: i64) -> Value {
    json!({
        "@timestamp": rfc3339(ts),
        "event": {"kind": "event", "category": ["process"], "type": ["start"]},
        "host": {"name": host},
        "user": {"name": user},
        "process": {"name": process, "pid": 4000 + ts % 1000, "parent": {"name": parent}},
    })
}

fn event(doc: Value, ts: i64, received_at: i64, host: &str) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        ts,
        received_at,
        agent_id: Some(format!("agent-{host}")),
        doc,
    }
}

fn logon_event(host: &str, user: &str, source: &str, ts: i64) -> Value {
    json!({
        "@timestamp": rfc3339(ts),
        "event": {"kind": "event", "category": ["authentication"], "type": ["start"],
                  "outcome": "success", "code": 4624},
        "host": {"name": host},
        "user": {"name": user},
        "source": {"ip": source},
    })
}

/// The user of host `h`; the server's has its domain in the name, as some shippers write it.
fn user_of(h: usize) -> String {
    if HOSTS[h] == "srv-01" {
        format!("CORP\\user{h}")
    } else {
        format!("user{h}")
    }
}

/// Ten days before today (UTC): every host starts the routine once an hour in working hours,
/// and its user logs on at 08:50 and 13:05 from the same address. Received a second after
/// they happened.
fn history(today: i64) -> Vec<NewEvent> {
    let mut events = Vec::new();
    for day in 1..=DAYS {
        let midnight = today - day * DAY;
        for (h, host) in HOSTS.iter().enumerate() {
            let user = user_of(h);
            for logon in [8 * HOUR + 50 * 60_000, 13 * HOUR + 5 * 60_000] {
                let logon = midnight + logon + h as i64 * 1000;
                events.push(event(
                    logon_event(host, &user, &format!("10.0.0.{}", 10 + h), logon),
                    logon,
                    logon + 1000,
                    host,
                ));
            }
            for hour in WORK_HOURS {
                for (p, (process, parent)) in ROUTINE.iter().enumerate() {
                    let ts = midnight + hour * HOUR + (p as i64 * 7 + h as i64) * 60_000;
                    events.push(event(
                        process_start(host, &user, process, parent, ts),
                        ts,
                        ts + 1000,
                        host,
                    ));
                }
            }
        }
    }
    events
}

/// `POST /api/v1/anomaly/score`, answered 200.
async fn score(server: &Running, token: &str, body: &Value) -> Value {
    let r = call(server, "POST", "/api/v1/anomaly/score", token, Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Every anomaly event, newest first.
async fn anomalies(server: &Running, token: &str, filter: &str) -> Vec<Value> {
    let page = get(
        server,
        &format!("/api/v1/anomalies?limit=1000{filter}"),
        token,
    )
    .await;
    assert!(page["next_cursor"].is_null(), "more than one page: {page}");
    page["events"].as_array().expect("events").clone()
}

// ---------------------------------------------------------------- the scenario

async fn scenario(store: Arc<dyn Store>, dir: &Path) {
    let clock = Instant::now();
    let t = Tokens::create(store.as_ref()).await;
    let now = now_ms();
    let today = now.div_euclid(DAY) * DAY;
    let seeded = history(today);
    let report = store.insert_events(&seeded).await.expect("seed history");
    assert_eq!(report.inserted, seeded.len());
    let seeded_count = seeded.len() as u64;
    assert!(
        seeded.iter().all(|e| e.received_at < now - 10_000),
        "the history arrived in the past"
    );

    // ---- the first run trains on what is stored
    let server = start(dir, &store, &[]).await;
    let first = wait_for("the first training", Duration::from_secs(20), || async {
        let m = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
        (m["trained_at"].is_string() && m["state"] == "scoring").then_some(m)
    })
    .await;
    assert_eq!(first["enabled"], true, "{first}");
    assert_eq!(first["training_events"], seeded_count, "{first}");
    assert_eq!(first["lookback_days"], 14);
    assert_eq!(first["alert_score"], 0.95);
    assert_eq!(
        first["training_first_event"],
        rfc3339(seeded.iter().map(|e| e.ts).min().unwrap())
    );
    assert!(first["next_training"].is_string(), "{first}");
    let models = first["models"].as_array().expect("models");
    let entities = |name: &str| {
        models
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("no model {name}: {first}"))["entities"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(entities("rare_process"), HOSTS.len() as u64);
    assert_eq!(entities("rare_parent_child"), HOSTS.len() as u64);
    assert_eq!(entities("rare_logon_source"), HOSTS.len() as u64);
    assert_eq!(entities("unusual_logon_hour"), HOSTS.len() as u64);
    assert!(models.iter().any(|m| m["model"] == "isolation_forest"));
    assert!(
        dir.join("anomaly/state.json").is_file(),
        "the state is saved under <data_dir>/anomaly"
    );

    // ---- training on demand: admin only, audited
    for token in [&t.viewer, &t.analyst] {
        let r = call(&server, "POST", "/api/v1/anomaly/train", token, None).await;
        problem(&r, 403, "forbidden");
    }
    let r = call(&server, "POST", "/api/v1/anomaly/train", &t.admin, None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": "requested", "lookback_days": 14})
    );
    let retrained = wait_for(
        "the training asked for",
        Duration::from_secs(20),
        || async {
            let m = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
            (m["trained_at"] != first["trained_at"] && m["state"] == "scoring").then_some(m)
        },
    )
    .await;
    assert_eq!(retrained["training_events"], seeded_count, "{retrained}");
    let audit = store
        .list_audit(&AuditQuery {
            action: Some("anomaly.train".into()),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].actor, "alice-admin");
    assert_eq!(audit[0].details["lookback_days"], 14);

    // ---- what arrives now: a never-seen tool and a routine process on ws-01
    let at = now_ms();
    let odd = event(
        process_start("ws-01", "user0", "mimikatz.exe", "cmd.exe", at),
        at,
        at,
        "ws-01",
    );
    let usual = event(
        process_start("ws-01", "user0", "chrome.exe", "explorer.exe", at + 1),
        at + 1,
        at,
        "ws-01",
    );
    // srv-01's user, from an address never seen for it.
    let foreign = event(
        logon_event("srv-01", &user_of(4), "203.0.113.7", at + 2),
        at + 2,
        at,
        "srv-01",
    );
    store
        .insert_events(&[odd.clone(), usual.clone(), foreign.clone()])
        .await
        .expect("store new events");
    let found = wait_for("the rare_process anomaly", SCORING_WAIT, || async {
        let list = anomalies(&server, &t.viewer, "&kind=rare_process&entity=ws-01").await;
        (!list.is_empty()).then_some(list)
    })
    .await;
    println!("anomaly found after {:?}", clock.elapsed());
    assert_eq!(found.len(), 1, "{found:#?}");
    let doc = &found[0]["doc"];
    let a = &doc["anomaly"];
    assert_eq!(doc["event"]["action"], "anomaly-detected", "{doc}");
    assert_eq!(doc["event"]["module"], "dozor-anomaly");
    assert_eq!(doc["event"]["dataset"], "anomaly.rare_process");
    assert_eq!(doc["host"]["name"], "ws-01");
    assert_eq!(found[0]["ts"], at, "the anomaly has its event's time");
    assert_eq!(found[0]["agent_id"], "agent-ws-01");
    assert_eq!(a["kind"], "rare_process");
    assert_eq!(a["entity_field"], "host.name");
    assert_eq!(a["entity"], "ws-01");
    assert!(
        a["observed"].as_str().unwrap().contains("mimikatz.exe"),
        "{a}"
    );
    let expected = a["expected"].as_str().expect("expected");
    assert!(
        ROUTINE.iter().any(|(p, _)| expected.contains(p)),
        "the usual processes are named: {expected}"
    );
    let per_host = (DAYS * WORK_HOURS.count() as i64 * ROUTINE.len() as i64) as u64;
    assert!(
        a["baseline"]["observations"].as_u64().unwrap() >= per_host,
        "{a}"
    );
    assert_eq!(a["baseline"]["distinct_days"], DAYS);
    assert!(a["score"].as_f64().unwrap() >= 0.95, "{a}");
    assert_eq!(a["source_event"], odd.id.to_string());
    assert_eq!(a["events_query"], "host.name:\"ws-01\"");
    assert!(
        a["features"].as_array().is_some_and(|f| !f.is_empty()),
        "{a}"
    );
    let message = doc["message"].as_str().expect("message");
    assert!(
        message.contains("mimikatz.exe") && message.contains("ws-01"),
        "{message}"
    );
    assert_eq!(doc["event"]["reason"], message);

    // The logon from a new address, found by its user (a name with a backslash; any case).
    let sources = anomalies(
        &server,
        &t.viewer,
        "&kind=rare_logon_source&entity=CORP%5Cuser4",
    )
    .await;
    assert_eq!(sources.len(), 1, "{sources:#?}");
    let a = &sources[0]["doc"]["anomaly"];
    assert_eq!(a["entity_field"], "user.name");
    assert_eq!(a["entity"], "corp\\user4");
    assert_eq!(a["observed"], "203.0.113.7");
    assert_eq!(a["source_event"], foreign.id.to_string());
    assert_eq!(sources[0]["doc"]["user"]["name"], "corp\\user4");
    assert_eq!(sources[0]["doc"]["host"]["name"], "srv-01");

    // The pair cmd.exe → mimikatz.exe is new too; the routine event raised nothing.
    let all = anomalies(&server, &t.viewer, "").await;
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e["doc"]["anomaly"]["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"rare_parent_child"), "{kinds:?}");
    for e in &all {
        assert_eq!(e["doc"]["event"]["action"], "anomaly-detected");
        assert_ne!(
            e["doc"]["anomaly"]["source_event"],
            usual.id.to_string(),
            "the routine process raised an anomaly: {e}"
        );
    }
    let pairs = anomalies(&server, &t.viewer, "&kind=rare_parent_child").await;
    assert!(!pairs.is_empty());
    assert!(
        pairs
            .iter()
            .all(|e| e["doc"]["anomaly"]["kind"] == "rare_parent_child"),
        "{pairs:#?}"
    );
    assert!(
        pairs[0]["doc"]["anomaly"]["observed"]
            .as_str()
            .unwrap()
            .contains("cmd.exe->mimikatz.exe"),
        "{pairs:#?}"
    );
    assert!(
        anomalies(&server, &t.viewer, "&kind=rare_process&entity=ws-02")
            .await
            .is_empty()
    );
    assert!(
        anomalies(&server, &t.viewer, "&to=now-1d").await.is_empty(),
        "`to` bounds the event time"
    );
    // Pages: one at a time, the cursor leads to the next.
    let page = get(&server, "/api/v1/anomalies?limit=1", &t.viewer).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let next = get(
        &server,
        &format!("/api/v1/anomalies?limit=1&cursor={cursor}"),
        &t.viewer,
    )
    .await;
    assert_ne!(next["events"][0]["id"], page["events"][0]["id"]);
    for bad in [
        "kind=bogus",
        "kind=rare-process",
        "from=yesterday",
        "limit=0",
        "color=red",
    ] {
        let r = call(
            &server,
            "GET",
            &format!("/api/v1/anomalies?{bad}"),
            &t.viewer,
            None,
        )
        .await;
        problem(&r, 400, "invalid-parameter");
    }

    // The alert of the finding.
    let alerts = get(&server, "/api/v1/alerts?limit=1000", &t.viewer).await;
    let alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule_id"] == "dozor-anomaly-rare-process")
        .unwrap_or_else(|| panic!("no dozor-anomaly-rare-process alert: {alerts}"))
        .clone();
    assert_eq!(alert["host"], "ws-01", "{alert}");
    assert_eq!(alert["agent_id"], "agent-ws-01", "{alert}");
    assert_eq!(alert["level"], "medium", "{alert}");
    assert_eq!(alert["event_ids"], json!([found[0]["id"]]), "{alert}");
    assert!(
        alert["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("anomaly.rare_process")),
        "{alert}"
    );
    let status = wait_for("the counters", Duration::from_secs(5), || async {
        let m = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
        (m["findings"].as_u64() >= Some(all.len() as u64)).then_some(m)
    })
    .await;
    assert!(status["scored_events"].as_u64().unwrap() >= 2, "{status}");
    assert!(status["alerts"].as_u64().unwrap() >= 2, "{status}");
    assert!(status["read_up_to"].is_string(), "{status}");
    assert!(status["last_error"].is_null(), "{status}");

    // ---- scoring on request: answers, does not learn
    let r = call(
        &server,
        "POST",
        "/api/v1/anomaly/score",
        &t.viewer,
        Some(&json!({"events": []})),
    )
    .await;
    problem(&r, 403, "forbidden");
    let asked = json!({"events": [
        process_start("ws-02", "user1", "rclone.exe", "cmd.exe", now_ms()),
        process_start("ws-02", "user1", "outlook.exe", "explorer.exe", now_ms()),
        {"host": {"name": "ws-02"}, "event": {"category": ["process"], "type": ["start"]},
         "process": {"name": "rclone.exe"}},
        {"@timestamp": rfc3339(now_ms()), "message": "no host"},
    ]});
    let answer = score(&server, &t.analyst, &asked).await;
    assert_eq!(answer["scored"], 2, "{answer}");
    let findings = answer["findings"].as_array().unwrap();
    assert!(
        findings.iter().all(|f| f["index"] == 0),
        "only the unseen process: {answer}"
    );
    let rare = findings
        .iter()
        .find(|f| f["finding"]["kind"] == "rare_process")
        .unwrap_or_else(|| panic!("no rare_process finding: {answer}"));
    assert_eq!(rare["finding"]["entity"], "ws-02");
    assert_eq!(rare["finding"]["observed"], "rclone.exe");
    assert!(
        rare["finding"]["baseline"]["observations"]
            .as_u64()
            .unwrap()
            >= per_host
    );
    assert!(
        rare["finding"]["message"]
            .as_str()
            .unwrap()
            .contains("rclone.exe")
    );
    assert_eq!(rare["finding"]["events_query"], "host.name:\"ws-02\"");
    assert!(
        findings
            .iter()
            .any(|f| f["finding"]["kind"] == "rare_parent_child")
    );
    let skipped = answer["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{answer}");
    assert_eq!(skipped[0]["index"], 2);
    assert!(
        skipped[0]["problem"]
            .as_str()
            .unwrap()
            .contains("@timestamp"),
        "{answer}"
    );
    assert_eq!(skipped[1]["index"], 3);
    assert!(
        skipped[1]["problem"]
            .as_str()
            .unwrap()
            .contains("host.name"),
        "{answer}"
    );
    assert_eq!(answer["vectors"], json!([]));
    // Asked again (by the admin): the same answer — the models did not learn the question.
    assert_eq!(score(&server, &t.admin, &asked).await, answer);

    // The request's shape.
    for (body, slug) in [
        (
            json!({"events": [], "vectors": []}),
            "invalid-score-request",
        ),
        (json!({}), "invalid-score-request"),
        (json!({"events": {}}), "invalid-body"),
        (json!({"evnets": []}), "invalid-body"),
    ] {
        let r = call(
            &server,
            "POST",
            "/api/v1/anomaly/score",
            &t.analyst,
            Some(&body),
        )
        .await;
        problem(&r, 422, slug);
    }
    let many = json!({"vectors": vec![[0.0]; 10_001]});
    let r = call(
        &server,
        "POST",
        "/api/v1/anomaly/score",
        &t.analyst,
        Some(&many),
    )
    .await;
    let p = problem(&r, 413, "too-many-items");
    assert!(p["detail"].as_str().unwrap().contains("10001"), "{p}");
    let many = json!({"events": vec![json!({}); 10_001]});
    let r = call(
        &server,
        "POST",
        "/api/v1/anomaly/score",
        &t.analyst,
        Some(&many),
    )
    .await;
    problem(&r, 413, "too-many-items");

    // Vectors: scored by the forest once one is trained (enough host-hours), else 409.
    let width = dozor_anomaly::Detector::host_hour_feature_names().len();
    let vectors = json!({"vectors": [vec![0.0; width], vec![9.0; width], [1.0, 2.0]]});
    let r = call(
        &server,
        "POST",
        "/api/v1/anomaly/score",
        &t.analyst,
        Some(&vectors),
    )
    .await;
    let forest_rows = models
        .iter()
        .find(|m| m["model"] == "isolation_forest")
        .unwrap()["entities"]
        .as_u64()
        .unwrap();
    if r.status == 409 {
        let p = problem(&r, 409, "no-forest");
        assert!(p["detail"].as_str().unwrap().contains("host-hours"), "{p}");
        println!("no forest ({forest_rows} host-hours kept)");
    } else {
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        println!("forest on {forest_rows} host-hours");
        assert_eq!(v["scored"], 2, "{v}");
        assert_eq!(v["findings"], json!([]));
        let scored = v["vectors"].as_array().unwrap();
        assert_eq!(scored.len(), 2, "{v}");
        for (i, s) in scored.iter().enumerate() {
            assert_eq!(s["index"], i);
            let score = s["score"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&score), "{v}");
            assert_eq!(s["explanation"]["score"], s["score"]);
            let features = s["explanation"]["features"].as_array().unwrap();
            assert!(!features.is_empty() && features.len() <= 3, "{v}");
            assert!(features[0]["name"].is_string() && features[0]["text"].is_string());
        }
        assert_eq!(v["skipped"][0]["index"], 2, "the short vector: {v}");
    }

    // ---- a restart: the models and the read position come back, nothing is stored twice.
    // This server's job runs at start, then only when asked to train (its interval is an hour).
    let before = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
    let ids = |list: Vec<Value>| -> BTreeSet<String> {
        list.iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let stored_before = ids(anomalies(&server, &t.viewer, "").await);
    let events_before = store.count_events(None, None).await.unwrap();
    server.stop().await;

    let server = start(dir, &store, &[("DOZOR_ANOMALY_INTERVAL", "1h")]).await;
    let after = wait_for(
        "the run after the restart",
        Duration::from_secs(20),
        || async {
            let m = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
            (m["last_run"].is_string() && m["state"] == "scoring").then_some(m)
        },
    )
    .await;
    assert_eq!(
        after["trained_at"], before["trained_at"],
        "restored, not retrained: {after}"
    );
    assert_eq!(after["training_events"], seeded_count);
    assert!(
        after["model_events"].as_u64().unwrap() >= before["model_events"].as_u64().unwrap(),
        "{before} → {after}"
    );
    // (The run after the restart may read the anomaly events of the last run, which are not
    // behaviour: the position moves, nothing is learned or found.)
    assert!(
        after["read_up_to"].as_str() >= before["read_up_to"].as_str(),
        "{before} → {after}"
    );
    assert_eq!(after["findings"], before["findings"], "{after}");
    assert!(after["last_error"].is_null(), "{after}");
    // That run stored nothing again.
    assert_eq!(ids(anomalies(&server, &t.viewer, "").await), stored_before);
    assert_eq!(store.count_events(None, None).await.unwrap(), events_before);
    // The restored models know what they learned: the tool is no longer new on ws-01.
    let again =
        json!({"events": [process_start("ws-01", "user0", "mimikatz.exe", "cmd.exe", now_ms())]});
    assert_eq!(
        score(&server, &t.analyst, &again).await["findings"],
        json!([])
    );

    // ---- a training scores what arrived since the last run before learning it
    let at = now_ms();
    let late = event(
        process_start("ws-03", "user2", "rclone.exe", "cmd.exe", at),
        at,
        at,
        "ws-03",
    );
    store
        .insert_events(std::slice::from_ref(&late))
        .await
        .unwrap();
    // Older than the job's settling time (5 s) when the training starts.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let r = call(&server, "POST", "/api/v1/anomaly/train", &t.admin, None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let trained = wait_for("the training", Duration::from_secs(20), || async {
        let m = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
        (m["trained_at"] != after["trained_at"] && m["last_run"] != after["last_run"]).then_some(m)
    })
    .await;
    assert_eq!(
        trained["training_events"],
        seeded_count + 3,
        "the history and the three events scored, not the one that arrived since: {trained}"
    );
    let late_found = wait_for("the anomaly of ws-03", SCORING_WAIT, || async {
        let list = anomalies(&server, &t.viewer, "&kind=rare_process&entity=ws-03").await;
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(late_found.len(), 1, "{late_found:#?}");
    assert_eq!(
        late_found[0]["doc"]["anomaly"]["source_event"],
        late.id.to_string()
    );
    let now_stored = anomalies(&server, &t.viewer, "").await;
    for e in &now_stored {
        let id = e["id"].as_str().unwrap();
        assert!(
            stored_before.contains(id)
                || e["doc"]["anomaly"]["source_event"] == late.id.to_string(),
            "a new anomaly not of the new event: {e}"
        );
    }
    assert!(ids(now_stored).is_superset(&stored_before));
    server.stop().await;

    // ---- switched off
    let off_dir = tempfile::tempdir().expect("tempdir");
    let server = start(
        off_dir.path(),
        &store,
        &[("DOZOR_ANOMALY_ENABLED", "false")],
    )
    .await;
    let m = get(&server, "/api/v1/anomaly/models", &t.viewer).await;
    assert_eq!(m["state"], "disabled", "{m}");
    assert_eq!(m["enabled"], false);
    assert!(m["trained_at"].is_null(), "{m}");
    let r = call(&server, "POST", "/api/v1/anomaly/train", &t.admin, None).await;
    problem(&r, 409, "anomaly-off");
    server.stop().await;
    assert!(
        !off_dir.path().join("anomaly").exists(),
        "a disabled job writes no state"
    );
    println!("scenario took {:?}", clock.elapsed());
}

// ---------------------------------------------------------------- backends

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
        dir.path().join("store"),
    )))
    .await
    .expect("sqlite store");
    scenario(store.clone(), dir.path()).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(url) = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()) else {
        println!("skipped: {PG_ENV} is not set");
        return;
    };
    let schema = format!("dozor_anomaly_{}", Uuid::new_v4().simple());
    let mut config = PgConfig::new(&url);
    config.schema = Some(schema.clone());
    config.max_connections = 4;
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&config).await.expect("postgres store"));
    let dir = tempfile::tempdir().expect("tempdir");
    // The schema is dropped whatever the scenario does; its panic is raised afterwards.
    let result = tokio::spawn({
        let store = store.clone();
        let path = dir.path().to_owned();
        async move { scenario(store, &path).await }
    })
    .await;
    store.close().await;
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url");
    let mut conn = options.connect().await.expect("connect for cleanup");
    sqlx::query(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .expect("drop the test schema");
    let _ = conn.close().await;
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
