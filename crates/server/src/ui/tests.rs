//! The dashboard's routes against a real SQLite store: sessions, rights, CSRF, the changes and
//! their audit entries, flash messages, every page for every role.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use dozor_model::VulnStatus;
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{
    AgentFacts, AlertQuery, AlertStatus, AuditQuery, Detection, Level, NewAgent, NewEvent,
    NewSession, NewUser, Role, Store, StoreConfig, now_ms,
};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::{Semaphore, broadcast, watch};
use tower::ServiceExt;
use uuid::Uuid;

use crate::sink::BoxFuture;
use crate::state::AppState;
use crate::state::{ApiState, RuleCatalog, RuleInfo};

struct Rules;

fn rule_info(id: &str, title: &str, level: &str) -> RuleInfo {
    RuleInfo {
        id: id.into(),
        title: title.into(),
        description: "Detects things".into(),
        level: Some(level.into()),
        status: Some("test".into()),
        tags: vec!["attack.execution".into(), "attack.t1059.001".into()],
        author: "tests".into(),
        path: format!("rules/{id}.yml"),
        logsource: Default::default(),
        kind: "detection".into(),
        outcome: "active".into(),
        reason: None,
    }
}

impl RuleCatalog for Rules {
    fn list(&self) -> Vec<RuleInfo> {
        vec![
            rule_info("r-ps", "Encoded PowerShell", "high"),
            rule_info("r/slash", "Rule with a slash", "low"),
        ]
    }

    fn yaml(&self, id: &str) -> Option<String> {
        Some(format!("title: {id}\n"))
    }

    fn reload(&self) -> BoxFuture<'_, Result<crate::api::ReloadReport, String>> {
        Box::pin(async { Err("not here".to_owned()) })
    }

    fn test(&self, _: &str, _: Vec<serde_json::Value>) -> Result<Vec<usize>, String> {
        Ok(Vec::new())
    }
}

struct Harness {
    router: Router,
    store: Arc<dyn Store>,
    anomaly: Arc<crate::anomaly::AnomalyService>,
    _closing: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

struct Session {
    cookie: String,
    csrf: String,
    user_id: i64,
}

const FAKE_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

async fn harness() -> Harness {
    harness_with(false).await
}

/// The harness, with the response service (playbooks from a fresh directory: the base ones;
/// another person must decide a request) when `response` is set.
async fn harness_with(response: bool) -> Harness {
    harness_full(response, false).await
}

/// The harness with the threat-intelligence service (feeds below `<dir>/intel-feeds`).
async fn harness_intel() -> Harness {
    harness_full(false, true).await
}

async fn harness_full(response: bool, intel: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
        dir.path().join("db"),
    )))
    .await
    .unwrap();
    let response = if response {
        let mut config = crate::config::ResponseConfig::defaults_for(dir.path());
        config.other_approver = true;
        Some(
            crate::response::ResponseService::start(
                store.clone(),
                config,
                crate::config::NotifyConfig::default(),
                "http://127.0.0.1:1".to_owned(),
            )
            .await
            .unwrap(),
        )
    } else {
        None
    };
    let (notices, _) = broadcast::channel(16);
    let (agent_notices, _) = broadcast::channel(16);
    let intel = intel.then(|| {
        crate::intel::IntelService::new(
            store.clone(),
            crate::config::IntelConfig::defaults_for(dir.path()),
            Duration::from_secs(300),
            notices.clone(),
        )
    });
    let anomaly = crate::anomaly::AnomalyService::new(
        store.clone(),
        crate::anomaly::AnomalyConfig::defaults_for(dir.path()),
        Duration::from_secs(300),
        notices.clone(),
    );
    let api = Arc::new(ApiState {
        store: store.clone(),
        rules: Arc::new(Rules),
        notices,
        pipeline_stats: None,
        agent_notices,
    });
    let (closing_tx, closing) = watch::channel(false);
    let state = Arc::new(AppState {
        limits: crate::config::Config::defaults().limits,
        role: crate::config::ProcessRole::All,
        sink: Arc::new(crate::sink::MemorySink::new(100)),
        tokens: Arc::new(crate::auth::StaticTokens::new()),
        validator: Arc::new(crate::schema::EventValidator::new().unwrap()),
        metrics: crate::metrics::Metrics::default(),
        ca_pem: Arc::from(""),
        tmp_dir: dir.path().join("tmp"),
        evtx_permits: Arc::new(Semaphore::new(1)),
        evtx_scratch: crate::disk_quota::DiskQuota::new(
            "limits.evtx_scratch_bytes",
            "EVTX uploads under way",
            &dir.path().join("tmp"),
            1 << 30,
        ),
        parse_permits: Arc::new(Semaphore::new(16 << 20)),
        readiness: Vec::new(),
        accepting: Arc::new(AtomicBool::new(true)),
        openapi: Arc::from("{}"),
        api: Some(api),
        agents: None,
        tls: false,
        login_throttle: Default::default(),
        closing,
        scan: None,
        response,
        intel,
        vulns: None,
        anomaly: Some(anomaly.clone()),
    });
    // The whole application: pages, sign-in and the JSON API.
    let router = crate::app::router(state);
    seed(store.as_ref()).await;
    Harness {
        router,
        store,
        anomaly,
        _closing: closing_tx,
        _dir: dir,
    }
}

async fn seed(store: &dyn Store) {
    let now = now_ms();
    store
        .insert_agent(&NewAgent {
            id: "agent-1".into(),
            facts: AgentFacts {
                hostname: "ws-01.corp".into(),
                os_type: "linux".into(),
                os_name: Some("Astra Linux".into()),
                os_version: Some("1.8".into()),
                arch: Some("x86_64".into()),
                agent_version: "0.1.0".into(),
                ips: vec!["10.0.0.5".into()],
            },
            cert_sha256: "ab".repeat(32),
            cert_not_after: now + 300 * 86_400_000,
            enrolled_by: "token:1".into(),
        })
        .await
        .unwrap();
    let mut events = Vec::new();
    let mut detections = Vec::new();
    for i in 0..30i64 {
        let id = Uuid::now_v7();
        let ts = now - i * 60_000;
        events.push(NewEvent {
            id,
            ts,
            received_at: ts,
            agent_id: Some("agent-1".into()),
            doc: json!({
                "event": {"kind": "event", "category": ["process"], "action": "start"},
                "host": {"name": "ws-01.corp"},
                "process": {"name": "powershell.exe", "command_line": format!("powershell -enc <script>{i}")},
                "user": {"name": "иванов"},
            }),
        });
        detections.push(Detection {
            rule_id: if i % 3 == 0 { "r/slash" } else { "r-ps" }.into(),
            rule_title: "Encoded PowerShell".into(),
            level: Level::High,
            tags: vec!["attack.execution".into()],
            // distinct agents make distinct alerts
            agent_id: Some(format!("agent-{}", i % 5)),
            host: Some("ws-01.corp".into()),
            event_id: id,
            ts,
        });
    }
    store
        .store_batch(&events, &detections, Duration::from_secs(300))
        .await
        .unwrap();
}

impl Harness {
    async fn login(&self, name: &str, role: Role) -> Session {
        let user = self
            .store
            .create_user(&NewUser {
                username: name.into(),
                password_hash: FAKE_PHC.into(),
                role,
                language: None,
                created_by: "tests".into(),
            })
            .await
            .unwrap();
        let secret: String = format!("{:032x}{:032x}", Uuid::new_v4().as_u128(), user.id);
        let csrf = format!("csrf-{name}");
        self.store
            .create_session(&NewSession {
                user_id: user.id,
                secret_hash: ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
                    .as_ref()
                    .to_vec(),
                csrf_token: csrf.clone(),
                expires_at: now_ms() + 3_600_000,
                ip: None,
                user_agent: None,
            })
            .await
            .unwrap();
        Session {
            cookie: format!("dozor_session={secret}"),
            csrf,
            user_id: user.id,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(
        &self,
        s: Option<&Session>,
        path: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut r = Request::get(path);
        if let Some(s) = s {
            r = r.header(header::COOKIE, &s.cookie);
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }

    async fn post(
        &self,
        s: Option<&Session>,
        path: &str,
        form: &str,
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut r =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(s) = s {
            r = r.header(header::COOKIE, &s.cookie);
        }
        self.send(r.body(Body::from(form.to_owned())).unwrap())
            .await
    }

    async fn first_alert(&self) -> dozor_store::Alert {
        self.store
            .list_alerts(&dozor_store::AlertQuery::default())
            .await
            .unwrap()
            .alerts
            .remove(0)
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.store
            .list_audit(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.action))
            .collect()
    }
}

fn location(h: &axum::http::HeaderMap) -> &str {
    h.get(header::LOCATION).unwrap().to_str().unwrap()
}

fn flash(h: &axum::http::HeaderMap) -> Option<String> {
    h.get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("dozor_flash="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

#[tokio::test]
async fn pages_need_a_session() {
    let h = harness().await;
    let (status, headers, _) = h.get(None, "/ui/alerts?status=new").await;
    assert!(status.is_redirection(), "{status}");
    assert!(location(&headers).starts_with("/login?next=/ui/alerts"));
    let (status, _, _) = h
        .post(None, "/ui/alerts/bulk", "csrf=x&id=1&status=resolved")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // a forged cookie is no session
    let forged = Session {
        cookie: format!("dozor_session={}", "a".repeat(64)),
        csrf: String::new(),
        user_id: 0,
    };
    let (status, _, _) = h.get(Some(&forged), "/ui/").await;
    assert!(status.is_redirection());
    // the assets need none and may be cached
    let (status, headers, body) = h.get(None, dozor_ui::CSS_PATH).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, dozor_ui::APP_CSS);
    assert!(
        headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let (_, headers, _) = h.get(None, dozor_ui::JS_PATH).await;
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

/// Logs uploaded today with events from 2019: their alerts are today's work.
#[tokio::test]
async fn old_logs_count_when_they_are_detected() {
    let h = harness().await;
    let now = now_ms();
    let old = 1_560_000_000_000; // June 2019
    let mut events = Vec::new();
    let mut detections = Vec::new();
    for i in 0..12i64 {
        let id = Uuid::now_v7();
        let ts = old + i * 3_600_000;
        events.push(NewEvent {
            id,
            ts,
            received_at: now,
            agent_id: None,
            doc: json!({"event": {"code": "4624"}, "host": {"name": "DC-2019"}}),
        });
        detections.push(Detection {
            rule_id: "r-old".into(),
            rule_title: "Logon From Old Logs".into(),
            level: Level::Medium,
            tags: vec![],
            agent_id: None,
            host: Some("DC-2019".into()),
            event_id: id,
            ts,
        });
    }
    h.store
        .store_batch(&events, &detections, Duration::from_secs(300))
        .await
        .unwrap();
    let s = h.login("reader", Role::Viewer).await;
    let (_, _, body) = h.get(Some(&s), "/ui/").await;
    assert!(
        body.contains("Logon From Old Logs"),
        "top rules of the last 24 h"
    );
    // 30 seeded events plus these 12, all received now.
    assert!(body.contains(">42<"), "events received in 24 h");
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?by=detected&range=24h").await;
    assert!(
        body.contains("Logon From Old Logs"),
        "listed by detection time"
    );
    assert!(body.contains("DC-2019"), "with their host");
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?range=24h").await;
    assert!(!body.contains("Logon From Old Logs"), "not by event time");
    // "All time" charts every event, however old, not the last 30 days.
    let (_, _, body) = h.get(Some(&s), "/ui/events?range=all").await;
    assert!(body.contains("42 events in range"), "all-time histogram");
    let (_, _, body) = h
        .get(Some(&s), "/ui/events?range=all&q=host.name%3ADC-2019")
        .await;
    assert!(body.contains("12 events in range"));
    // The sidebar's value already in the query takes it out again instead of adding it twice,
    // and every value can be excluded.
    assert!(
        body.contains("class=\"in-query\""),
        "the value in the query is marked"
    );
    assert!(
        !body.contains("DC-2019%20AND%20host.name%3ADC-2019"),
        "never added twice"
    );
    assert!(
        body.contains("NOT%20host.name") || body.contains("NOT+host.name"),
        "exclude link"
    );
}

#[tokio::test]
async fn every_page_for_every_role() {
    let h = harness().await;
    let alert = h.first_alert().await;
    for (name, role) in [
        ("v", Role::Viewer),
        ("a", Role::Analyst),
        ("adm", Role::Admin),
    ] {
        let s = h.login(name, role).await;
        let pages = [
            "/ui/".to_owned(),
            "/ui/alerts".to_owned(),
            "/ui/alerts?status_any=1&sort=count&dir=asc&range=all".to_owned(),
            format!("/ui/alerts/{}", alert.id),
            "/ui/events".to_owned(),
            "/ui/events?q=process.name%3Apowershell.exe&range=7d".to_owned(),
            "/ui/events?range=custom&from=now-2h&to=now".to_owned(),
            "/ui/agents".to_owned(),
            "/ui/agents/agent-1".to_owned(),
            "/ui/hosts".to_owned(),
            "/ui/hosts?q=WS-01".to_owned(),
            "/ui/hosts/WS-01.corp".to_owned(),
            "/ui/incidents".to_owned(),
            "/ui/incidents?show=all".to_owned(),
            "/ui/rules".to_owned(),
            "/ui/rules/r-ps".to_owned(),
            "/ui/rules/r%2Fslash".to_owned(),
            "/ui/profile".to_owned(),
        ];
        for path in &pages {
            let (status, headers, body) = h.get(Some(&s), path).await;
            assert_eq!(status, StatusCode::OK, "{role:?} {path}");
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
            assert!(body.contains("<html lang=\"en\">"), "{path}");
            assert!(!body.contains("<script>0"), "{path}: unescaped event data");
        }
        for path in ["/ui/users", "/ui/audit"] {
            let (status, _, _) = h.get(Some(&s), path).await;
            let want = if role == Role::Admin {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, want, "{role:?} {path}");
        }
        for path in [
            "/ui/alerts/999999",
            "/ui/alerts/x",
            "/ui/agents/nope",
            "/ui/hosts/nope",
            "/ui/rules/nope",
            "/ui/nothing/here",
        ] {
            let (status, _, body) = h.get(Some(&s), path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(body.contains("Page not found"));
        }
    }
    // the pages show the data
    let s = h.login("reader", Role::Viewer).await;
    let (_, _, body) = h.get(Some(&s), "/ui/agents").await;
    assert!(body.contains("ws-01.corp") && body.contains("data-agent-id=\"agent-1\""));
    let (_, _, body) = h.get(Some(&s), &format!("/ui/alerts/{}", alert.id)).await;
    assert!(body.contains("powershell -enc &#60;script&#62;"));
    let (_, _, body) = h.get(Some(&s), "/ui/events").await;
    assert!(body.contains("30 events in range"), "histogram total");
    // Hosts: the list, the page, the host on alerts and the pivots from an alert.
    let (_, _, body) = h.get(Some(&s), "/ui/hosts").await;
    assert!(body.contains("href=\"/ui/hosts/ws-01.corp\""), "host list");
    let (_, _, body) = h.get(Some(&s), "/ui/hosts/WS-01.CORP").await;
    assert!(body.contains("Encoded PowerShell"), "the host's alerts");
    assert!(body.contains("powershell -enc"), "the host's events");
    assert!(body.contains("<svg"), "activity chart");
    let (_, _, body) = h.get(Some(&s), &format!("/ui/alerts/{}", alert.id)).await;
    assert!(
        body.contains("href=\"/ui/hosts/ws-01.corp\""),
        "alert shows its host"
    );
    assert!(
        body.contains("This host ±15 min"),
        "pivot to the host's events"
    );
    assert!(body.contains("user.name%3A"), "pivot to the user's events");
    let (_, _, body) = h.get(Some(&s), "/ui/alerts").await;
    let open = h
        .store
        .count_alerts(&AlertQuery {
            statuses: vec![AlertStatus::New, AlertStatus::Acknowledged],
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    let heading = body
        .split("<h1>")
        .nth(1)
        .unwrap_or("")
        .chars()
        .take(120)
        .collect::<String>();
    assert!(
        heading.contains(&format!(">{open} alerts<")),
        "the heading counts every alert: {heading}"
    );
    // Filters take what people see: a host name for the agent, title words for the rule.
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?host=WS-01.CORP").await;
    assert!(body.contains(&format!(">{open} alerts<")));
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?rule=encoded+powershell").await;
    assert!(body.contains(&format!(">{open} alerts<")));
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?rule=no+such+rule").await;
    assert!(body.contains("No alerts match"));
    let of_agent = h
        .store
        .count_alerts(&AlertQuery {
            statuses: vec![AlertStatus::New, AlertStatus::Acknowledged],
            agent_id: Some("agent-1".into()),
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert!(of_agent > 0);
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?agent=WS-01.corp").await;
    let want = if of_agent == 1 {
        "1 alert<".to_owned()
    } else {
        format!(">{of_agent} alerts<")
    };
    assert!(body.contains(&want), "agent by its host name");
    let (_, _, body) = h.get(Some(&s), "/ui/").await;
    assert!(body.contains("Encoded PowerShell"), "top rules");
    assert!(body.matches("<svg").count() >= 4);
}

#[tokio::test]
async fn language_follows_the_user_then_the_browser() {
    let h = harness().await;
    let s = h.login("olga", Role::Viewer).await;
    let request = Request::get("/ui/")
        .header(header::COOKIE, &s.cookie)
        .header(header::ACCEPT_LANGUAGE, "ru-RU,ru;q=0.9,en;q=0.5")
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = h.send(request).await;
    assert!(body.contains("<html lang=\"ru\">") && body.contains("Обзор"));
    // the stored setting wins
    let (status, headers, _) = h
        .post(
            Some(&s),
            "/ui/profile/language",
            &format!("csrf={}&language=en&return_to=%2Fui%2Fevents", s.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/events");
    let request = Request::get("/ui/")
        .header(header::COOKIE, &s.cookie)
        .header(header::ACCEPT_LANGUAGE, "ru")
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = h.send(request).await;
    assert!(body.contains("<html lang=\"en\">"));
    let user = h.store.get_user(s.user_id).await.unwrap().unwrap();
    assert_eq!(user.language.as_deref(), Some("en"));
    assert!(
        h.audit_actions()
            .await
            .contains(&("olga".into(), "user.language".into()))
    );
    // back to automatic
    h.post(
        Some(&s),
        "/ui/profile/language",
        &format!("csrf={}&language=auto", s.csrf),
    )
    .await;
    assert_eq!(
        h.store.get_user(s.user_id).await.unwrap().unwrap().language,
        None
    );
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_the_right_role() {
    let h = harness().await;
    let alert = h.first_alert().await;
    let viewer = h.login("viewer", Role::Viewer).await;
    let analyst = h.login("analyst", Role::Analyst).await;
    let status_path = format!("/ui/alerts/{}/status", alert.id);
    // a viewer may not, whatever the token
    let (status, _, _) = h
        .post(
            Some(&viewer),
            &status_path,
            &format!("csrf={}&status=acknowledged", viewer.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // an analyst without, or with another session's token, may not either
    for form in [
        "status=acknowledged",
        "csrf=&status=acknowledged",
        "csrf=csrf-viewer&status=acknowledged",
    ] {
        let (status, _, body) = h.post(Some(&analyst), &status_path, form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form}");
        assert!(body.contains("The form has expired"));
    }
    // analysts may not switch rules, users are for admins
    for (path, form) in [
        ("/ui/rules/r-ps/enabled", "enabled=false"),
        ("/ui/users", "username=x&role=viewer"),
        ("/ui/users/1/role", "role=admin"),
        ("/ui/users/1/disabled", "disabled=true"),
        ("/ui/users/1/password", ""),
    ] {
        let (status, _, _) = h
            .post(
                Some(&analyst),
                path,
                &format!("csrf={}&{form}", analyst.csrf),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        h.store.get_alert(alert.id).await.unwrap().unwrap().status,
        alert.status
    );
    assert!(
        h.store
            .rule_state("r-ps")
            .await
            .unwrap()
            .is_none_or(|s| s.enabled)
    );
    assert!(
        h.audit_actions().await.is_empty(),
        "refused requests are not audited"
    );
}

#[tokio::test]
async fn the_api_takes_the_session_cookie_with_its_csrf_header() {
    let h = harness().await;
    let alert = h.first_alert().await;
    let viewer = h.login("viewer", Role::Viewer).await;
    let analyst = h.login("analyst", Role::Analyst).await;
    // reading: any signed-in role
    let (status, _, _) = h.get(Some(&viewer), "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = h.get(None, "/api/v1/alerts").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let path = format!("/api/v1/alerts/{}/status", alert.id);
    let change = |s: &Session, csrf: Option<&str>| {
        let mut r = Request::post(path.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &s.cookie);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.body(Body::from(r#"{"status":"acknowledged"}"#)).unwrap()
    };
    // a change with the cookie but without the session's CSRF header: refused
    let (status, _, body) = h.send(change(&analyst, None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = h.send(change(&analyst, Some("csrf-viewer"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // a viewer with its own token: still not its right
    let (status, _, _) = h.send(change(&viewer, Some(&viewer.csrf))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // the analyst with its token: done, and audited as that user
    let (status, _, body) = h.send(change(&analyst, Some(&analyst.csrf))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        h.audit_actions()
            .await
            .iter()
            .any(|(actor, action)| actor == "analyst" && action == "alert.status")
    );
    // the admin-only API stays closed to analysts' cookies too
    let (status, _, _) = h
        .send(
            Request::post("/api/v1/rules/reload")
                .header(header::COOKIE, &analyst.cookie)
                .header("x-csrf-token", &analyst.csrf)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_alert_workflow() {
    let h = harness().await;
    let alert = h.first_alert().await;
    let a = h.login("petrova", Role::Analyst).await;
    let base = format!("/ui/alerts/{}", alert.id);
    let (status, headers, _) = h
        .post(
            Some(&a),
            &format!("{base}/status"),
            &format!(
                "csrf={}&status=acknowledged&note=%D1%81%D0%BC%D0%BE%D1%82%D1%80%D1%8E",
                a.csrf
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), base);
    assert_eq!(flash(&headers).as_deref(), Some("flash.status_changed"));
    let after = h.store.get_alert(alert.id).await.unwrap().unwrap();
    assert_eq!(after.status, AlertStatus::Acknowledged);
    let history = h.store.status_history(alert.id).await.unwrap();
    assert_eq!(history[0].note.as_deref(), Some("смотрю"));
    assert_eq!(history[0].actor, "petrova");
    // a step the workflow does not allow
    let (_, headers, _) = h
        .post(
            Some(&a),
            &format!("{base}/status"),
            &format!("csrf={}&status=acknowledged", a.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.invalid_transition"));
    // the flash shows once on the next page, and the cookie is cleared
    let request = Request::get(&base)
        .header(
            header::COOKIE,
            format!("{}; dozor_flash=error.invalid_transition", a.cookie),
        )
        .body(Body::empty())
        .unwrap();
    let (_, headers, body) = h.send(request).await;
    assert!(body.contains("This status change is not allowed now."));
    assert_eq!(flash(&headers).as_deref(), Some(""));
    // an unknown flash key is not shown
    let request = Request::get(&base)
        .header(
            header::COOKIE,
            format!("{}; dozor_flash=%3Cscript%3E", a.cookie),
        )
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = h.send(request).await;
    assert!(!body.contains("class=\"flash"));
    // assign to me, then comment
    h.post(
        Some(&a),
        &format!("{base}/assignee"),
        &format!("csrf={}&assignee=&assignee_me=petrova", a.csrf),
    )
    .await;
    assert_eq!(
        h.store
            .get_alert(alert.id)
            .await
            .unwrap()
            .unwrap()
            .assignee
            .as_deref(),
        Some("petrova")
    );
    let (_, headers, _) = h
        .post(
            Some(&a),
            &format!("{base}/comments"),
            &format!("csrf={}&text=++", a.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.comment_empty"));
    h.post(
        Some(&a),
        &format!("{base}/comments"),
        &format!("csrf={}&text=%3Cb%3Ehi%3C%2Fb%3E", a.csrf),
    )
    .await;
    let comments = h.store.comments(alert.id).await.unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0].body, "<b>hi</b>");
    let (_, _, body) = h.get(Some(&a), &base).await;
    assert!(body.contains("&#60;b&#62;hi&#60;/b&#62;"));
    let actions = h.audit_actions().await;
    for action in ["alert.status", "alert.assign", "alert.comment"] {
        assert!(
            actions.contains(&("petrova".into(), action.into())),
            "{action}"
        );
    }
}

#[tokio::test]
async fn bulk_status_changes() {
    let h = harness().await;
    let alerts = h
        .store
        .list_alerts(&dozor_store::AlertQuery::default())
        .await
        .unwrap()
        .alerts;
    assert!(alerts.len() >= 3);
    let a = h.login("bulk", Role::Analyst).await;
    // nothing selected
    let (_, headers, _) = h
        .post(
            Some(&a),
            "/ui/alerts/bulk",
            &format!("csrf={}&status=resolved", a.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.bulk_none"));
    let ids: String = alerts[..2]
        .iter()
        .map(|x| format!("&id={}", x.id))
        .collect();
    let (status, headers, _) = h
        .post(
            Some(&a),
            "/ui/alerts/bulk",
            &format!(
                "csrf={}&status=resolved{ids}&return_to=%2Fui%2Falerts%3Fstatus%3Dnew",
                a.csrf
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/alerts?status=new");
    assert_eq!(flash(&headers).as_deref(), Some("flash.bulk_changed"));
    for x in &alerts[..2] {
        assert_eq!(
            h.store.get_alert(x.id).await.unwrap().unwrap().status,
            AlertStatus::Resolved
        );
    }
    // resolved → acknowledged is not allowed: partial; an open redirect is refused
    let ids: String = alerts[..3]
        .iter()
        .map(|x| format!("&id={}", x.id))
        .collect();
    let (_, headers, _) = h
        .post(
            Some(&a),
            "/ui/alerts/bulk",
            &format!(
                "csrf={}&status=acknowledged{ids}&return_to=%2F%2Fevil.example%2F",
                a.csrf
            ),
        )
        .await;
    assert_eq!(location(&headers), "/ui/alerts");
    assert_eq!(flash(&headers).as_deref(), Some("error.bulk_partial"));
    assert_eq!(
        h.store
            .get_alert(alerts[2].id)
            .await
            .unwrap()
            .unwrap()
            .status,
        AlertStatus::Acknowledged
    );
    let audited = h
        .audit_actions()
        .await
        .into_iter()
        .filter(|(_, a)| a == "alert.status")
        .count();
    assert_eq!(audited, 3);
}

#[tokio::test]
async fn admins_switch_rules_and_manage_users() {
    let h = harness().await;
    let admin = h.login("boss", Role::Admin).await;
    let (status, headers, _) = h
        .post(
            Some(&admin),
            "/ui/rules/r%2Fslash/enabled",
            &format!("csrf={}&enabled=false&return_to=%2Fui%2Frules", admin.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/rules");
    assert!(
        !h.store
            .rule_state("r/slash")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let (_, _, body) = h.get(Some(&admin), "/ui/rules?outcome=disabled").await;
    assert!(body.contains("Rule with a slash") && !body.contains("Encoded PowerShell"));
    let (status, _, _) = h
        .post(
            Some(&admin),
            "/ui/rules/nope/enabled",
            &format!("csrf={}&enabled=false", admin.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // a user with a typed password: created, no secret shown
    let (status, headers, _) = h
        .post(
            Some(&admin),
            "/ui/users",
            &format!(
                "csrf={}&username=nina&role=analyst&password=a-long-enough-password",
                admin.csrf
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.user_created"));
    let nina = h.store.find_user("nina").await.unwrap().unwrap().0;
    assert_eq!(nina.role, Role::Analyst);
    // the same name again
    let (_, headers, _) = h
        .post(
            Some(&admin),
            "/ui/users",
            &format!(
                "csrf={}&username=NINA&role=viewer&password=a-long-enough-password",
                admin.csrf
            ),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.username_taken"));
    // role, disable, reset (the new password is shown once, on the answer itself)
    h.post(
        Some(&admin),
        &format!("/ui/users/{}/role", nina.id),
        &format!("csrf={}&role=viewer", admin.csrf),
    )
    .await;
    h.post(
        Some(&admin),
        &format!("/ui/users/{}/disabled", nina.id),
        &format!("csrf={}&disabled=true", admin.csrf),
    )
    .await;
    let nina = h.store.get_user(nina.id).await.unwrap().unwrap();
    assert_eq!(nina.role, Role::Viewer);
    assert!(nina.disabled_at.is_some());
    let (status, _, body) = h
        .post(
            Some(&admin),
            &format!("/ui/users/{}/password", nina.id),
            &format!("csrf={}", admin.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("class=\"secret\""));
    // one's own account is not changed from the list
    let (_, headers, _) = h
        .post(
            Some(&admin),
            &format!("/ui/users/{}/disabled", admin.user_id),
            &format!("csrf={}&disabled=true", admin.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.self"));
    let actions = h.audit_actions().await;
    for action in [
        "rule.disable",
        "user.create",
        "user.role",
        "user.disable",
        "user.password",
    ] {
        assert!(
            actions.contains(&("boss".into(), action.into())),
            "{action}"
        );
    }
    let (_, _, body) = h.get(Some(&admin), "/ui/audit?action=user.role").await;
    assert!(body.contains("Role changed") && !body.contains("Rule switched off"));
}

#[tokio::test]
async fn personal_tokens() {
    let h = harness().await;
    let a = h.login("tok", Role::Analyst).await;
    // no more than one's own role
    let (status, _, _) = h
        .post(
            Some(&a),
            "/ui/profile/tokens",
            &format!("csrf={}&name=x&role=admin&expires=30", a.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = h
        .post(
            Some(&a),
            "/ui/profile/tokens",
            &format!("csrf={}&name=report+script&role=viewer&expires=30", a.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("dzt_"), "the secret is shown once");
    let tokens = h.store.list_user_tokens(a.user_id).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].name, "report script");
    assert!(tokens[0].expires_at.is_some());
    let (_, _, body) = h.get(Some(&a), "/ui/profile").await;
    assert!(!body.contains("dzt_") && body.contains("report script"));
    let (_, headers, _) = h
        .post(
            Some(&a),
            &format!("/ui/profile/tokens/{}/revoke", tokens[0].id),
            &format!("csrf={}", a.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("flash.token_revoked"));
    assert!(
        h.store.list_user_tokens(a.user_id).await.unwrap()[0]
            .revoked_at
            .is_some()
    );
    let actions = h.audit_actions().await;
    assert!(actions.contains(&("tok".into(), "token.create".into())));
    assert!(actions.contains(&("tok".into(), "token.revoke".into())));
}

#[tokio::test]
async fn analysts_request_scans_on_the_agent_page() {
    let h = harness().await;
    let viewer = h.login("viewer", Role::Viewer).await;
    let analyst = h.login("analyst", Role::Analyst).await;
    let form = "action=\"/ui/agents/agent-1/commands\"";
    // the form is for analysts (and admins), the table for everyone
    let (_, _, body) = h.get(Some(&analyst), "/ui/agents/agent-1").await;
    assert!(body.contains(form) && body.contains("name=\"path\""));
    assert!(body.contains("No scans were requested on this agent."));
    let (_, _, body) = h.get(Some(&viewer), "/ui/agents/agent-1").await;
    assert!(!body.contains(form) && !body.contains("name=\"path\""));
    assert!(body.contains("<h2>Commands</h2>"));

    // a viewer may not, whatever the token; an analyst needs the session's CSRF token
    let (status, _, _) = h
        .post(
            Some(&viewer),
            "/ui/agents/agent-1/commands",
            &format!("csrf={}&path=%2Fsrv&recursive=1", viewer.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/agents/agent-1/commands",
            "csrf=csrf-viewer&path=%2Fsrv",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        h.store
            .list_agent_commands("agent-1", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // a path that is not absolute: back to the page with the reason
    let (status, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/agents/agent-1/commands",
            &format!("csrf={}&path=srv%2Fwww&recursive=1", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/agents/agent-1");
    assert_eq!(flash(&headers).as_deref(), Some("error.scan_path"));

    // queued, audited as the API does it; the checkbox left out scans the directory alone
    let (status, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/agents/agent-1/commands",
            &format!("csrf={}&path=C%3A%5CUsers%5CPublic", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.scan_requested"));
    let commands = h.store.list_agent_commands("agent-1", 10).await.unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(
        commands[0].args,
        json!({"path": "C:\\Users\\Public", "recursive": false})
    );
    assert_eq!(commands[0].requested_by, "analyst");
    assert!(
        h.audit_actions()
            .await
            .contains(&("analyst".into(), "agent.command".into()))
    );
    let (_, _, body) = h.get(Some(&viewer), "/ui/agents/agent-1").await;
    assert!(body.contains("C:\\Users\\Public") && body.contains("cs-pending"));

    // unknown and revoked agents
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/agents/nope/commands",
            &format!("csrf={}&path=%2Fsrv", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    h.store.revoke_agent("agent-1", "admin").await.unwrap();
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/agents/agent-1/commands",
            &format!("csrf={}&path=%2Fsrv", analyst.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.agent_revoked"));
    let (_, _, body) = h.get(Some(&analyst), "/ui/agents/agent-1").await;
    assert!(!body.contains(form), "no form for a revoked agent");
}

#[tokio::test]
async fn search_errors_are_shown_on_the_page() {
    let h = harness().await;
    let s = h.login("hunter", Role::Viewer).await;
    let (status, _, body) = h.get(Some(&s), "/ui/events?q=process.name%3A").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Query error at column"), "{body}");
    let (_, _, body) = h.get(Some(&s), "/ui/events?cursor=garbage").await;
    assert!(body.contains("This page link is no longer valid"));
    let (_, _, body) = h
        .get(Some(&s), "/ui/events?range=custom&from=yesterday")
        .await;
    assert!(body.contains("The time could not be read"));
    let (_, _, body) = h.get(Some(&s), "/ui/alerts?cursor=garbage").await;
    assert!(body.contains("This page link is no longer valid"));
    // the sidebar offers the page's values
    let (_, _, body) = h.get(Some(&s), "/ui/events?q=host.name%3Aws-01.corp").await;
    assert!(body.contains("q=host.name%3Aws-01.corp%20AND%20process.name%3Apowershell.exe"));
}

/// Render times of the overview, alert list and event search with a big store (ignored by
/// default; `DOZOR_UI_BENCH_EVENTS`, default 1,000,000 events and 10,000 alerts):
/// `cargo test -p dozor-server --release --lib ui::tests::bench_pages -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_pages() {
    let total: usize = std::env::var("DOZOR_UI_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let h = harness().await;
    let now = now_ms();
    let span = 30 * 86_400_000i64;
    let started = std::time::Instant::now();
    let mut made = 0usize;
    while made < total {
        let n = 1000.min(total - made);
        let mut events = Vec::with_capacity(n);
        let mut detections = Vec::new();
        for k in 0..n {
            let i = made + k;
            let ts = now - (i as i64 * 7919) % span;
            let id = Uuid::from_u128(0xbe00_0000_0000 + i as u128);
            let agent = format!("agent-{}", i % 100);
            events.push(NewEvent {
                id,
                ts,
                received_at: ts,
                agent_id: Some(agent.clone()),
                doc: json!({
                    "event": {"kind": "event", "category": ["process"], "action": "start", "code": "4688"},
                    "host": {"name": format!("ws-{:03}.corp", i % 100)},
                    "user": {"name": if i.is_multiple_of(7) { "SYSTEM" } else { "ivanov" }},
                    "process": {"name": if i.is_multiple_of(11) { "powershell.exe" } else { "cmd.exe" },
                                "command_line": format!("cmd.exe /c echo {i} > C:\\Temp\\out-{i}.txt"),
                                "pid": i % 65536, "parent": {"name": "explorer.exe"}},
                    "source": {"ip": format!("10.{}.{}.{}", i % 7, i % 200, i % 250)},
                }),
            });
            // one detection per 100 events: 10,000 alerts over 100 rules x 100 agents
            if i.is_multiple_of(100) && i / 100 < 10_000 {
                let r = (i / 100) % 100;
                detections.push(Detection {
                    rule_id: format!("bench-{r}"),
                    rule_title: format!("Bench rule {r}"),
                    level: Level::ALL[r % 5],
                    tags: vec!["attack.execution".into()],
                    agent_id: Some(format!("a{}", i / 10_000)),
                    host: None,
                    event_id: id,
                    ts,
                });
            }
        }
        h.store
            .store_batch(&events, &detections, Duration::from_secs(1))
            .await
            .unwrap();
        made += n;
    }
    eprintln!("seeded {total} events in {:?}", started.elapsed());
    let s = h.login("bench", Role::Analyst).await;
    for path in [
        "/ui/",
        "/ui/alerts",
        "/ui/alerts?status_any=1&range=all",
        "/ui/events",
        "/ui/events?q=process.name%3Apowershell.exe+AND+NOT+user.name%3ASYSTEM",
        "/ui/attack?range=all",
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let t = std::time::Instant::now();
            let (status, _, body) = h.get(Some(&s), path).await;
            times.push(t.elapsed());
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(body.len() > 1000);
        }
        times.sort();
        eprintln!(
            "{path}: p50 {:?}, p95 {:?}, max {:?}",
            times[times.len() / 2],
            times[times.len() * 95 / 100],
            times[times.len() - 1]
        );
    }
}

// ---------------------------------------------------------------- response (issue 13)

/// POST actions of the forms on a page.
fn post_forms(body: &str) -> Vec<String> {
    body.split("<form method=\"post\" action=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

#[tokio::test]
async fn a_host_page_lists_the_open_vulnerabilities_of_the_host() {
    let h = harness().await;
    let s = h.login("v", Role::Viewer).await;
    let (_, _, body) = h.get(Some(&s), "/ui/hosts/WS-01.corp").await;
    assert!(body.contains("No open vulnerabilities"), "none yet");
    let finding = |oid: &str, severity: f64, level: &str| dozor_store::NewVulnResult {
        host: "WS-01.corp".into(),
        port: "445/tcp".into(),
        nvt_oid: oid.into(),
        name: format!("SMB finding {oid}"),
        severity,
        level: level.into(),
        cves: vec!["CVE-2017-0144".into()],
        ..Default::default()
    };
    let scan = dozor_store::NewVulnScan {
        source: "openvas".into(),
        origin: "import".into(),
        name: Some("weekly".into()),
        hosts: vec!["WS-01.corp".into()],
        by: "tester".into(),
        ..Default::default()
    };
    h.store
        .record_vuln_scan(
            &scan,
            &[
                finding("1.3.6.1.4.1.25623.1.0.1", 9.3, "critical"),
                finding("1.3.6.1.4.1.25623.1.0.2", 5.0, "medium"),
            ],
            dozor_store::now_ms(),
        )
        .await
        .unwrap();
    let (status, _, body) = h.get(Some(&s), "/ui/hosts/WS-01.corp").await;
    assert_eq!(status, StatusCode::OK);
    let panel = body.split("host-vulns").nth(1).unwrap_or_default();
    let (critical, medium) = (
        panel
            .find("1.3.6.1.4.1.25623.1.0.1")
            .unwrap_or_else(|| panic!("the critical one: {panel}")),
        panel
            .find("1.3.6.1.4.1.25623.1.0.2")
            .expect("the medium one"),
    );
    assert!(critical < medium, "most severe first");
    assert!(panel.contains("CVE-2017-0144"));
    assert!(
        panel.contains("href=\"/ui/vulns/hosts/WS-01.corp\""),
        "all of them"
    );
}

/// The anomalies page over the real models: a routine learned from five days of history,
/// then a process the host never ran, scored by the job's own code; the finding is listed with
/// its explanation and links, per role; admins (only) ask for a training.
#[tokio::test]
async fn anomalies_are_explained_and_admins_train_the_models() {
    let h = harness().await;
    let service = h.anomaly.clone();
    let day = 86_400_000;
    let t0 = dozor_store::now_ms();
    let start = |ts: i64, process: &str, parent: &str| dozor_store::NewEvent {
        id: uuid::Uuid::now_v7(),
        ts,
        received_at: ts.min(t0 - 60_000),
        agent_id: Some("agent-1".into()),
        doc: serde_json::json!({
            "@timestamp": chrono::DateTime::from_timestamp_millis(ts).unwrap().to_rfc3339(),
            "host": {"name": "ws-77"},
            "event": {"category": ["process"], "type": ["start"]},
            "process": {"name": process, "parent": {"name": parent}},
        }),
    };
    let mut history = Vec::new();
    for d in 1..=5 {
        for i in 0..6 {
            let ts = t0 - d * day + i * 600_000;
            history.push(start(ts, "svchost.exe", "services.exe"));
            history.push(start(ts + 1000, "chrome.exe", "explorer.exe"));
        }
    }
    h.store.insert_events(&history).await.unwrap();
    service.train().await.unwrap();
    // The harness's own events count too.
    assert!(service.status().training_events >= 60);
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Stored after the training (by arrival), before the scoring run.
    let mut odd = start(dozor_store::now_ms() - 6_000, "mimikatz.exe", "cmd.exe");
    odd.received_at = dozor_store::now_ms() - 5_010;
    let mut usual = start(odd.ts + 1, "chrome.exe", "explorer.exe");
    usual.received_at = odd.received_at;
    h.store.insert_events(&[odd.clone(), usual]).await.unwrap();
    let (_closing_tx, closing) = watch::channel(false);
    let (scored, found) = service.score_new(&closing).await.unwrap();
    assert!(scored >= 2, "{scored}");
    assert!(
        found >= 2,
        "a new process and a new parent-child pair: {found}"
    );
    for (name, role) in [
        ("v", Role::Viewer),
        ("a", Role::Analyst),
        ("adm", Role::Admin),
    ] {
        let s = h.login(name, role).await;
        let (status, _, body) = h.get(Some(&s), "/ui/anomalies").await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert!(body.contains("mimikatz.exe"), "{body}");
        assert!(body.contains("New process") && body.contains("New parent→child"));
        assert!(body.contains("href=\"/ui/hosts/ws-77\""), "the host page");
        assert!(
            body.contains(&format!("event.id%3A{}", odd.id)),
            "the triggering event"
        );
        assert!(body.contains("Findings by kind") && body.contains("<svg"));
        assert_eq!(
            body.contains("action=\"/ui/anomalies/train\""),
            role == Role::Admin,
            "{name}: the training form is the admin's"
        );
        let (_, _, filtered) = h
            .get(Some(&s), "/ui/anomalies?kind=volume_spike&range=30d")
            .await;
        assert!(!filtered.contains("mimikatz.exe"), "another kind");
    }
    let analyst = h.login("a2", Role::Analyst).await;
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/anomalies/train",
            &format!("csrf={}", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = h.login("adm2", Role::Admin).await;
    let (status, headers, _) = h
        .post(
            Some(&admin),
            "/ui/anomalies/train",
            &format!("csrf={}", admin.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.anomaly_training"));
    assert!(
        h.audit_actions()
            .await
            .iter()
            .any(|(actor, action)| actor == "adm2" && action == "anomaly.train")
    );
    let s = h.login("ru", Role::Viewer).await;
    let request = Request::get("/ui/anomalies")
        .header(header::COOKIE, &s.cookie)
        .header(header::ACCEPT_LANGUAGE, "ru")
        .body(Body::empty())
        .unwrap();
    let (_, _, body) = h.send(request).await;
    assert!(
        body.contains("Аномалии") && body.contains("Новый процесс"),
        "{body}"
    );
}

#[tokio::test]
async fn incidents_from_alerts_through_the_forms() {
    let h = harness().await;
    let alert = h.first_alert().await;
    let viewer = h.login("v", Role::Viewer).await;
    let (status, _, _) = h
        .post(
            Some(&viewer),
            "/ui/incidents",
            &format!("csrf={}&id={}", viewer.csrf, alert.id),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let s = h.login("a", Role::Analyst).await;
    // From the alert list's bulk bar: no title, so one is made from the alerts.
    let (status, headers, _) = h
        .post(
            Some(&s),
            "/ui/incidents",
            &format!("csrf={}&id={}&status=resolved&note=", s.csrf, alert.id),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.incident_created"));
    let page = location(&headers).to_owned();
    let id: i64 = page.trim_start_matches("/ui/incidents/").parse().unwrap();
    let detail = h.store.get_incident(id).await.unwrap().unwrap();
    assert_eq!(detail.incident.title, alert.rule_title);
    assert_eq!(detail.incident.owner.as_deref(), Some("a"));
    assert_eq!(detail.alerts[0].id, alert.id);
    assert_eq!(
        h.store.get_alert(alert.id).await.unwrap().unwrap().status,
        alert.status,
        "the bulk bar's status is not applied by this button"
    );
    // The same alert can't go into a second incident.
    let (_, headers, _) = h
        .post(
            Some(&s),
            "/ui/incidents",
            &format!("csrf={}&title=again&id={}", s.csrf, alert.id),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.incident_conflict"));
    for (path, form, want) in [
        (
            format!("{page}/update"),
            "title=Renamed&status=in_progress&severity=critical&owner=a&description=why",
            "flash.incident_updated",
        ),
        (
            format!("{page}/tasks"),
            "title=Isolate",
            "flash.incident_task_added",
        ),
        (
            format!("{page}/tasks/1"),
            "done=true",
            "flash.incident_task_set",
        ),
        (
            format!("{page}/notes"),
            "body=found+it",
            "flash.incident_note_added",
        ),
        (
            format!("{page}/observables"),
            "kind=hash&value=44D88612FEA8A8F36DE82E1278ABB02F&note=eicar",
            "flash.incident_observable_added",
        ),
        (
            format!("{page}/observables"),
            "kind=ip&value=not-an-ip",
            "error.incident_invalid",
        ),
    ] {
        let (status, headers, _) = h
            .post(Some(&s), &path, &format!("csrf={}&{form}", s.csrf))
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(flash(&headers).as_deref(), Some(want), "{path} {form}");
    }
    let (status, _, body) = h.get(Some(&s), &page).await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "Renamed",
        "Isolate",
        "found it",
        "44d88612fea8a8f36de82e1278abb02f",
    ] {
        assert!(body.contains(text), "{text} not on the page");
    }
    let (_, _, body) = h.get(Some(&s), &format!("/ui/alerts/{}", alert.id)).await;
    assert!(
        body.contains(&format!("href=\"{page}\"")),
        "the alert links its incident"
    );
    let (_, _, list) = h.get(Some(&viewer), "/ui/incidents").await;
    assert!(list.contains("Renamed"));
    assert!(
        !list.contains("action=\"/ui/incidents"),
        "viewers get no forms"
    );
    let actions: Vec<String> = h
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert!(
        actions.iter().any(|a| a == "incident.create"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "incident.observable_add"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn response_pages_for_every_role() {
    let h = harness_with(true).await;
    let alert = h.first_alert().await;
    for (name, role) in [
        ("v", Role::Viewer),
        ("a", Role::Analyst),
        ("adm", Role::Admin),
    ] {
        let s = h.login(name, role).await;
        for path in [
            "/ui/playbooks".to_owned(),
            "/ui/playbooks/quarantine-host".to_owned(),
            "/ui/playbooks/notify-operator".to_owned(),
            "/ui/playbook-runs".to_owned(),
            "/ui/playbook-runs?playbook=quarantine-host&status=failed".to_owned(),
            "/ui/approvals".to_owned(),
            "/ui/approvals?status=pending".to_owned(),
            format!("/ui/alerts/{}", alert.id),
            "/ui/agents/agent-1".to_owned(),
        ] {
            let (status, _, body) = h.get(Some(&s), &path).await;
            assert_eq!(status, StatusCode::OK, "{role:?} {path}");
            assert!(
                body.contains("href=\"/ui/playbooks\""),
                "{path}: navigation"
            );
            assert!(
                body.contains("href=\"/ui/approvals\""),
                "{path}: navigation"
            );
            let forms = post_forms(&body);
            let response_forms = forms
                .iter()
                .filter(|a| {
                    a.starts_with("/ui/playbook")
                        || a.starts_with("/ui/approvals")
                        || a.ends_with("/isolate")
                        || a.ends_with("/release")
                })
                .count();
            if role == Role::Viewer {
                assert_eq!(response_forms, 0, "a viewer sees a response form on {path}");
            }
            let switches = forms.iter().filter(|a| a.ends_with("/enabled")).count();
            if role != Role::Admin {
                assert_eq!(switches, 0, "{role:?} {path}");
            }
        }
        for path in ["/ui/playbooks/nope", "/ui/playbook-runs/nope"] {
            let (status, _, _) = h.get(Some(&s), path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    let admin = h.login("boss", Role::Admin).await;
    let (_, _, body) = h.get(Some(&admin), "/ui/playbooks").await;
    assert!(post_forms(&body).contains(&"/ui/playbooks/quarantine-host/enabled".to_owned()));
    let (_, _, body) = h.get(Some(&admin), "/ui/playbooks/quarantine-host").await;
    assert!(body.contains("<pre class=\"yaml\">") && body.contains("agent.isolate_host"));
    let analyst = h.login("runner", Role::Analyst).await;
    let (_, _, body) = h
        .get(Some(&analyst), &format!("/ui/alerts/{}", alert.id))
        .await;
    assert!(body.contains("<option value=\"quarantine-host\">"));
    assert!(body.contains(&format!("name=\"alert_id\" value=\"{}\"", alert.id)));
    let (_, _, body) = h.get(Some(&analyst), "/ui/agents/agent-1").await;
    assert!(post_forms(&body).contains(&"/ui/agents/agent-1/isolate".to_owned()));
    assert!(body.contains("Not isolated."));
    // without the response service the pages say so
    let plain = harness().await;
    let s = plain.login("v", Role::Viewer).await;
    let (status, _, body) = plain.get(Some(&s), "/ui/playbooks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Response is not configured on this server."));
}

#[tokio::test]
async fn playbooks_are_switched_by_admins_and_run_by_analysts() {
    let h = harness_with(true).await;
    let admin = h.login("boss", Role::Admin).await;
    let analyst = h.login("petrova", Role::Analyst).await;
    let path = "/ui/playbooks/quarantine-host/enabled";
    // the right role and the session's CSRF token, or nothing happens
    let (status, _, _) = h
        .post(
            Some(&analyst),
            path,
            &format!("csrf={}&enabled=false", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h
        .post(Some(&admin), path, "csrf=forged&enabled=false")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let enabled = |h: &Harness| {
        let store = h.store.clone();
        async move {
            store
                .list_playbooks()
                .await
                .unwrap()
                .into_iter()
                .find(|p| p.name == "quarantine-host")
                .unwrap()
                .enabled
        }
    };
    assert!(enabled(&h).await);
    let (status, headers, _) = h
        .post(
            Some(&admin),
            path,
            &format!(
                "csrf={}&enabled=false&return_to=%2Fui%2Fplaybooks",
                admin.csrf
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/playbooks");
    assert_eq!(flash(&headers).as_deref(), Some("flash.playbook_disabled"));
    assert!(!enabled(&h).await);
    assert!(
        h.audit_actions()
            .await
            .contains(&("boss".to_owned(), "playbook.enabled".to_owned()))
    );

    // a dry run on an alert, from its page: the run's page follows
    let alert = h.first_alert().await;
    let form = format!(
        "csrf={}&playbook=quarantine-host&alert_id={}&dry_run=1",
        analyst.csrf, alert.id
    );
    let (status, _, _) = h.post(Some(&analyst), "/ui/playbook-runs", "csrf=x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = h.post(Some(&analyst), "/ui/playbook-runs", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.run_started"));
    let run_page = location(&headers).to_owned();
    assert!(run_page.starts_with("/ui/playbook-runs/"), "{run_page}");
    let runs = h
        .store
        .list_playbook_runs(&dozor_model::PlaybookRunQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].dry_run && runs[0].alert_id == Some(alert.id));
    assert_eq!(runs[0].requested_by, "petrova");
    assert!(
        h.audit_actions()
            .await
            .contains(&("petrova".to_owned(), "playbook.run".to_owned()))
    );
    // the run shows its steps once they are recorded
    let mut body = String::new();
    for _ in 0..50 {
        let (status, _, b) = h.get(Some(&analyst), &run_page).await;
        assert_eq!(status, StatusCode::OK);
        body = b;
        if !body.contains("class=\"st rs-running\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(body.contains("Run of quarantine-host"), "{body}");
    assert!(body.contains("<tr data-step-status="));
    let (_, _, body) = h
        .get(Some(&analyst), &format!("/ui/alerts/{}", alert.id))
        .await;
    assert!(body.contains(&format!("href=\"{run_page}\"")));
    // a playbook that is not there, an alert that is not there
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/playbook-runs",
            &format!("csrf={}&playbook=nope&alert_id={}", analyst.csrf, alert.id),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.bad_alert_id"));
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/playbook-runs",
            &format!(
                "csrf={}&playbook=quarantine-host&alert_id=999999",
                analyst.csrf
            ),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.bad_alert_id"));
}

#[tokio::test]
async fn isolation_waits_for_another_persons_approval_from_the_inbox() {
    let h = harness_with(true).await;
    let viewer = h.login("watcher", Role::Viewer).await;
    let asker = h.login("petrova", Role::Analyst).await;
    let approver = h.login("ivanov", Role::Analyst).await;
    let isolate = "/ui/agents/agent-1/isolate";
    let form = |s: &Session| {
        format!(
            "csrf={}&reason=%D0%B7%D0%B0%D1%80%D0%B0%D0%B6%D1%91%D0%BD&allow_hosts=10.0.0.9%2C+backup.corp",
            s.csrf
        )
    };
    let (status, _, _) = h.post(Some(&viewer), isolate, &form(&viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h.post(Some(&asker), isolate, "csrf=forged&reason=x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = h.post(Some(&asker), isolate, &form(&asker)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/agents/agent-1");
    assert_eq!(
        flash(&headers).as_deref(),
        Some("flash.isolation_requested")
    );
    let pending = h
        .store
        .list_approvals(Some(dozor_model::ApprovalStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    let approval = &pending[0];
    assert_eq!(approval.action, "isolate_host");
    assert_eq!(approval.reason, "заражён");
    assert_eq!(
        approval.target["args"]["allow_hosts"],
        json!(["10.0.0.9", "backup.corp"])
    );
    // nothing was sent yet
    let commands = h.store.list_agent_commands("agent-1", 10).await.unwrap();
    assert!(commands.is_empty());
    // the agent page and the inbox show it; only analysts get the decision form
    let decide = format!("/ui/approvals/{}/decision", approval.id);
    let (_, _, body) = h.get(Some(&approver), "/ui/agents/agent-1").await;
    assert!(body.contains("Waiting for approval") && post_forms(&body).contains(&decide));
    let (_, _, body) = h.get(Some(&viewer), "/ui/approvals").await;
    assert!(body.contains("заражён") && !post_forms(&body).contains(&decide));
    let (_, _, body) = h.get(Some(&approver), "/ui/approvals").await;
    assert!(post_forms(&body).contains(&decide));
    assert!(body.contains("Another person than the requester must decide."));

    // the requester may not decide it; the viewer may not; a forged form does nothing
    let (status, headers, _) = h
        .post(
            Some(&asker),
            &decide,
            &format!("csrf={}&decision=approve", asker.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("error.own_request"));
    let (status, _, _) = h
        .post(
            Some(&viewer),
            &decide,
            &format!("csrf={}&decision=approve", viewer.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h
        .post(Some(&approver), &decide, "csrf=forged&decision=approve")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.store
            .get_approval(&approval.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        dozor_model::ApprovalStatus::Pending
    );

    // another analyst approves from the inbox: audited, the command goes to the agent
    let (status, headers, _) = h
        .post(
            Some(&approver),
            &decide,
            &format!(
                "csrf={}&decision=approve&comment=%D0%B4%D0%B0&return_to=%2Fui%2Fapprovals",
                approver.csrf
            ),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/approvals");
    assert_eq!(flash(&headers).as_deref(), Some("flash.approved"));
    let decided = h.store.get_approval(&approval.id).await.unwrap().unwrap();
    assert_eq!(decided.status, dozor_model::ApprovalStatus::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("ivanov"));
    assert_eq!(decided.comment.as_deref(), Some("да"));
    let audit = h.audit_actions().await;
    assert!(audit.contains(&("petrova".to_owned(), "approval.requested".to_owned())));
    assert!(audit.contains(&("ivanov".to_owned(), "approval.approved".to_owned())));
    let commands = h.store.list_agent_commands("agent-1", 10).await.unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].kind, "isolate_host");
    let (_, _, body) = h
        .get(Some(&approver), "/ui/approvals?status=approved")
        .await;
    assert!(body.contains("Approved by ivanov") && !post_forms(&body).contains(&decide));
    // a second decision is refused with a message
    let (_, headers, _) = h
        .post(
            Some(&approver),
            &decide,
            &format!("csrf={}&decision=reject", approver.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.already_decided"));

    // release is sent at once
    let (status, headers, _) = h
        .post(
            Some(&asker),
            "/ui/agents/agent-1/release",
            &format!("csrf={}&reason=ok", asker.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.release_requested"));
    let commands = h.store.list_agent_commands("agent-1", 10).await.unwrap();
    assert!(commands.iter().any(|c| c.kind == "release_host"));
    let (status, _, _) = h
        .post(
            Some(&asker),
            "/ui/agents/nope/release",
            &format!("csrf={}", asker.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn count(actions: &[(String, String)], actor: &str, action: &str) -> usize {
    actions
        .iter()
        .filter(|(a, x)| a == actor && x == action)
        .count()
}

#[tokio::test]
async fn intelligence_pages_for_every_role() {
    let h = harness_intel().await;
    for (name, role) in [
        ("v", Role::Viewer),
        ("a", Role::Analyst),
        ("adm", Role::Admin),
    ] {
        let s = h.login(name, role).await;
        for path in [
            "/ui/intel",
            "/ui/intel?q=x&kind=domain&source=manual&tag=t&active=1",
            "/ui/intel?cursor=junk",
            "/ui/intel/sources",
            "/ui/intel/matches",
            "/ui/intel/matches?ioc=5&cursor=junk",
        ] {
            let (status, _, body) = h.get(Some(&s), path).await;
            assert_eq!(status, StatusCode::OK, "{role:?} {path}");
            assert!(body.contains("href=\"/ui/intel\""), "{path}: navigation");
            let forms = post_forms(&body);
            if role == Role::Viewer {
                assert!(
                    !forms.iter().any(|a| a.starts_with("/ui/intel")),
                    "a viewer sees an intelligence form on {path}"
                );
            } else if path == "/ui/intel" {
                assert!(forms.contains(&"/ui/intel/iocs".to_owned()), "{role:?}");
            }
        }
        for path in ["/ui/intel/iocs/999", "/ui/intel/iocs/x"] {
            let (status, _, _) = h.get(Some(&s), path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    // a bad cursor is said on the page
    let s = h.login("reader", Role::Viewer).await;
    let (_, _, body) = h.get(Some(&s), "/ui/intel?cursor=junk").await;
    assert!(body.contains("flash-error"));
    // without the service the pages say so
    let plain = harness().await;
    let s = plain.login("v", Role::Viewer).await;
    for path in ["/ui/intel", "/ui/intel/sources", "/ui/intel/matches"] {
        let (status, _, body) = plain.get(Some(&s), path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Threat intelligence is not available on this server."));
    }
    let (status, _, _) = plain.get(Some(&s), "/ui/intel/iocs/1").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn analysts_add_and_switch_indicators() {
    let h = harness_intel().await;
    let viewer = h.login("viewer", Role::Viewer).await;
    let analyst = h.login("anna", Role::Analyst).await;
    let form = |csrf: &str| {
        format!(
            "csrf={csrf}&kind=domain&value=Evil-C2.Example&expires_in_days=30&confidence=80\
             &tags=tlp%3Aamber%2C+%3Cscript%3Ex%3C%2Fscript%3E&comment=seen+in+a+phish&to_ids=1"
        )
    };
    // a viewer may not, and a form without the session's token is refused
    let (status, _, _) = h
        .post(Some(&viewer), "/ui/intel/iocs", &form(&viewer.csrf))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = h
        .post(Some(&analyst), "/ui/intel/iocs", &form("forged"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("The form has expired."), "{body}");
    let (status, _, _) = h.post(None, "/ui/intel/iocs", &form("x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.store
            .count_iocs(&dozor_model::IocQuery::default())
            .await
            .unwrap(),
        0
    );

    // added: the indicator's page, the audit entry, found by the search
    let (status, headers, _) = h
        .post(Some(&analyst), "/ui/intel/iocs", &form(&analyst.csrf))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&headers).as_deref(), Some("flash.ioc_added"));
    let ioc = h
        .store
        .find_ioc("domain", "evil-c2.example")
        .await
        .unwrap()
        .expect("stored normalized");
    assert_eq!(location(&headers), format!("/ui/intel/iocs/{}", ioc.id));
    assert_eq!(ioc.confidence, Some(80));
    assert!(ioc.to_ids && ioc.expires.is_some());
    assert!(ioc.tags.contains(&"tlp:amber".to_owned()));
    assert_eq!(count(&h.audit_actions().await, "anna", "intel.ioc.add"), 1);
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel?q=EVIL-c2").await;
    assert!(body.contains(&format!("href=\"/ui/intel/iocs/{}\"", ioc.id)));
    assert!(body.contains("<code>evil-c2.example</code>"));
    assert!(body.contains("&#60;script&#62;x&#60;/script&#62;"));
    assert!(!body.contains("<script>x"));
    assert!(body.contains("1 indicator"));
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel?kind=ip").await;
    assert!(body.contains("No indicators match."));
    let page = format!("/ui/intel/iocs/{}", ioc.id);
    let (status, _, body) = h.get(Some(&analyst), &page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("data-source=\"manual\""));
    assert!(body.contains("<code>comment: seen in a phish</code>"));
    let enabled_action = format!("/ui/intel/iocs/{}/enabled", ioc.id);
    assert!(post_forms(&body).contains(&enabled_action));
    let (_, _, body) = h.get(Some(&viewer), &page).await;
    assert!(!post_forms(&body).contains(&enabled_action));

    // what is not an indicator of its kind (or a number out of range) comes back with a message
    for bad in [
        "kind=ip&value=not-an-address",
        "kind=nope&value=x",
        "kind=domain&value=ok.example&confidence=101",
        "kind=domain&value=ok.example&expires_in_days=soon",
        "kind=domain&value=",
    ] {
        let (status, headers, _) = h
            .post(
                Some(&analyst),
                "/ui/intel/iocs",
                &format!("csrf={}&{bad}", analyst.csrf),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{bad}");
        assert_eq!(location(&headers), "/ui/intel", "{bad}");
        assert_eq!(
            flash(&headers).as_deref(),
            Some("error.ioc_invalid"),
            "{bad}"
        );
    }
    assert_eq!(count(&h.audit_actions().await, "anna", "intel.ioc.add"), 1);

    // switched off: kept, shown as disabled, not among the active ones
    let (status, _, _) = h
        .post(
            Some(&viewer),
            &enabled_action,
            &format!("csrf={}&enabled=false", viewer.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h
        .post(Some(&analyst), &enabled_action, "csrf=forged&enabled=false")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(h.store.get_ioc(ioc.id).await.unwrap().unwrap().enabled);
    let (status, headers, _) = h
        .post(
            Some(&analyst),
            &enabled_action,
            &format!("csrf={}&enabled=false&return_to={page}", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), page);
    assert_eq!(flash(&headers).as_deref(), Some("flash.ioc_disabled"));
    assert!(!h.store.get_ioc(ioc.id).await.unwrap().unwrap().enabled);
    assert_eq!(
        count(&h.audit_actions().await, "anna", "intel.ioc.enabled"),
        1
    );
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel?active=1").await;
    assert!(body.contains("No indicators match."));
    let (_, _, body) = h.get(Some(&viewer), &page).await;
    assert!(body.contains("class=\"st is-disabled\""));
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/intel/iocs/999/enabled",
            &format!("csrf={}&enabled=true", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sources_are_synced_from_their_page() {
    let h = harness_intel().await;
    let feeds = h._dir.path().join("intel-feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let list = feeds.join("list.txt");
    std::fs::write(
        &list,
        "# bad hosts\nbad-one.example\nbad-two.example\n203.0.113.9\n",
    )
    .unwrap();
    let source = |name: &str, spec: serde_json::Value, interval_secs| dozor_model::IntelSource {
        name: name.into(),
        spec,
        enabled: true,
        interval_secs,
        cursor: None,
        last_sync: None,
        updated_at: now_ms(),
        updated_by: "tests".into(),
    };
    h.store
        .put_intel_source(&source(
            "local-list",
            json!({"kind": "freetext", "location": list.to_string_lossy(), "add_tags": ["tlp:green"]}),
            0,
        ))
        .await
        .unwrap();
    h.store
        .put_intel_source(&source(
            "misp-main",
            json!({"kind": "misp_rest", "url": "https://127.0.0.1:1", "key": "s3cret-misp-key"}),
            3600,
        ))
        .await
        .unwrap();
    let viewer = h.login("viewer", Role::Viewer).await;
    let analyst = h.login("anna", Role::Analyst).await;
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel/sources").await;
    assert!(
        body.contains("data-source=\"local-list\"") && body.contains("data-source=\"misp-main\"")
    );
    assert!(!body.contains("s3cret-misp-key"), "a secret on the page");
    assert!(body.contains("&#34;key&#34;: &#34;***&#34;"));
    assert!(body.contains("Never synced.") && body.contains("every 1 h"));
    assert!(!post_forms(&body).iter().any(|a| a.ends_with("/sync")));
    let (_, _, body) = h.get(Some(&analyst), "/ui/intel/sources").await;
    assert!(post_forms(&body).contains(&"/ui/intel/sources/local-list/sync".to_owned()));

    let (status, _, _) = h
        .post(
            Some(&viewer),
            "/ui/intel/sources/local-list/sync",
            &format!("csrf={}", viewer.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/intel/sources/local-list/sync",
            "csrf=forged",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        h.store
            .get_intel_source("local-list")
            .await
            .unwrap()
            .unwrap()
            .last_sync
            .is_none()
    );

    // a sync that works: its counts on the page, its indicators in the search
    let (status, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/intel/sources/local-list/sync",
            &format!("csrf={}", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/ui/intel/sources");
    assert_eq!(flash(&headers).as_deref(), Some("flash.intel_synced"));
    assert_eq!(
        count(&h.audit_actions().await, "anna", "intel.source.sync"),
        1
    );
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel/sources").await;
    assert!(body.contains("class=\"st sy-ok\""), "{body}");
    assert!(body.contains("added 3 · updated 0"), "{body}");
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel?source=local-list").await;
    assert!(body.contains("bad-one.example") && body.contains("203.0.113.9"));
    assert!(body.contains("3 indicators"));
    let (_, _, body) = h
        .get(Some(&viewer), "/ui/intel?tag=tlp%3Agreen&kind=ip")
        .await;
    assert!(body.contains("1 indicator") && body.contains("203.0.113.9"));

    // a sync that fails: the message, and the error on the page
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/intel/sources/misp-main/sync",
            &format!("csrf={}", analyst.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("error.intel_sync_failed"));
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel/sources").await;
    assert!(body.contains("class=\"st sy-failed\""));
    assert!(body.contains("class=\"warn-text sync-error\""));
    assert!(!body.contains("s3cret-misp-key"));
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/intel/sources/nope/sync",
            &format!("csrf={}", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn matches_link_their_alert_event_and_indicator() {
    let h = harness_intel().await;
    let analyst = h.login("anna", Role::Analyst).await;
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            "/ui/intel/iocs",
            &format!(
                "csrf={}&kind=domain&value=c2.example&confidence=90&to_ids=1",
                analyst.csrf
            ),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("flash.ioc_added"));
    let ioc = h
        .store
        .find_ioc("domain", "c2.example")
        .await
        .unwrap()
        .unwrap();
    // an event the pipeline matched: enriched, recorded, alerted on
    let event_id = Uuid::now_v7();
    let ts = now_ms() - 5_000;
    let doc = json!({
        "event": {"id": event_id.to_string(), "kind": "event", "category": ["network"]},
        "dns": {"question": {"name": "c2.example"}},
        "threat": {"enrichments": [{
            "indicator": {"type": "domain-name", "url": {"domain": "c2.example"},
                "confidence": "High", "marking": {"tlp": "RED"}, "provider": "manual"},
            "matched": {"atomic": "c2.example", "field": "dns.question.name",
                "id": ioc.id.to_string(), "type": "indicator_match_rule"},
            "feed": {"name": "manual"},
            "dozor": {"ioc_id": ioc.id, "sources": ["manual"], "tags": [], "to_ids": true,
                "warninglists": []},
        }]},
    });
    h.store
        .store_batch(
            &[NewEvent {
                id: event_id,
                ts,
                received_at: ts,
                agent_id: Some("agent-1".into()),
                doc,
            }],
            &[Detection {
                rule_id: "dozor-intel/manual/domain".into(),
                rule_title: "Threat intelligence: domain c2.example".into(),
                level: Level::High,
                tags: vec![],
                agent_id: Some("agent-1".into()),
                host: None,
                event_id,
                ts,
            }],
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    h.store
        .record_intel_matches(
            &[dozor_model::NewIntelMatch {
                ioc_id: ioc.id,
                event_id: event_id.to_string(),
                field: "dns.question.name".into(),
                observed: "c2.example".into(),
                agent_id: Some("agent-1".into()),
                event_ts: ts,
                retro: false,
                alerted: true,
                sighting: "none".into(),
            }],
            now_ms(),
        )
        .await
        .unwrap();
    let alert = h
        .store
        .list_alerts(&dozor_store::AlertQuery {
            rule_id: Some("dozor-intel/manual/domain".into()),
            ..dozor_store::AlertQuery::default()
        })
        .await
        .unwrap()
        .alerts
        .remove(0);

    let viewer = h.login("viewer", Role::Viewer).await;
    for page in [
        "/ui/intel/matches".to_owned(),
        format!("/ui/intel/matches?ioc={}", ioc.id),
        format!("/ui/intel/iocs/{}", ioc.id),
    ] {
        let (status, _, body) = h.get(Some(&viewer), &page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(
            body.matches("<tr data-match-alerted=\"true\"").count(),
            1,
            "{page}"
        );
        assert!(
            body.contains(&format!(
                "href=\"/ui/alerts/{}\">#{}</a>",
                alert.id, alert.id
            )),
            "{page}: the alert"
        );
        assert!(
            body.contains("href=\"/ui/agents/agent-1\">ws-01.corp</a>"),
            "{page}"
        );
    }
    // the event link finds the event
    let (_, _, body) = h.get(Some(&viewer), "/ui/intel/matches").await;
    assert!(body.contains(&format!("href=\"/ui/intel/iocs/{}\"", ioc.id)));
    let start = body.find("href=\"/ui/events?").expect("an event link") + "href=\"".len();
    let link = body[start..start + body[start..].find('"').unwrap()].replace("&#38;", "&");
    let (status, _, events) = h.get(Some(&viewer), &link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(events.contains("1 event in range"), "{link}");
    // the alert shows the indicator's context with a link to it
    let (_, _, body) = h
        .get(Some(&viewer), &format!("/ui/alerts/{}", alert.id))
        .await;
    assert!(body.contains("id=\"threat-intel\""));
    assert!(body.contains(&format!("href=\"/ui/intel/iocs/{}\"", ioc.id)));
    assert!(body.contains("class=\"tlp tlp-red\">TLP:RED"));
    assert!(body.contains("<code>dns.question.name</code>"));
    // and in Russian
    let (_, _, body) = h
        .send(
            Request::get(format!("/ui/alerts/{}", alert.id))
                .header(header::COOKIE, &viewer.cookie)
                .header(header::ACCEPT_LANGUAGE, "ru")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(body.contains("Данные разведки угроз") && body.contains("Высокая"));
}

// ---------------------------------------------------------------- vulnerabilities (issue 15)

fn vuln_result(
    host: &str,
    port: &str,
    oid: &str,
    severity: f64,
    cves: &[&str],
    agent: Option<&str>,
) -> dozor_model::NewVulnResult {
    let level = match severity {
        s if s >= 9.0 => "critical",
        s if s >= 7.0 => "high",
        s if s >= 4.0 => "medium",
        s if s > 0.0 => "low",
        _ => "log",
    };
    dozor_model::NewVulnResult {
        host: host.into(),
        hostname: agent.map(|_| "ws-01.corp".to_owned()),
        agent_id: agent.map(str::to_owned),
        port: port.into(),
        nvt_oid: oid.into(),
        name: format!("finding {oid} <script>x</script>"),
        cvss_base: Some(severity),
        severity,
        level: level.into(),
        cves: cves.iter().map(|c| c.to_string()).collect(),
        ..dozor_model::NewVulnResult::default()
    }
}

fn vuln_scan(source: &str, hosts: &[&str], at: i64) -> dozor_model::NewVulnScan {
    dozor_model::NewVulnScan {
        source: source.into(),
        origin: "import".into(),
        report_id: None,
        name: Some(format!("{source} scan")),
        started_at: Some(at - 1000),
        finished_at: Some(at),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        by: "tests".into(),
    }
}

/// Five results on two hosts from two scans, an inventory for agent-1: on 10.0.0.5 (agent-1)
/// a critical one with CVE-2024-3094 and everything filled in, a high one with CVE-2023-1111
/// and, from the inventory, a high one for openssl; on 10.0.0.7 (no agent) a medium one with
/// CVE-2023-1111 and a low one. Returns the critical result's id.
async fn seed_vulns(store: &dyn Store) -> i64 {
    let now = now_ms();
    let mut critical = vuln_result(
        "10.0.0.5",
        "22/tcp",
        "1.3.6.1.4.1.25623.1.0.1",
        9.8,
        &["CVE-2024-3094"],
        Some("agent-1"),
    );
    critical.cvss_vector_v3 = Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H".into());
    critical.cvss_vector_v2 = Some("AV:N/AC:L/Au:N/C:C/I:C/A:C".into());
    critical.epss_score = Some(0.9712);
    critical.epss_percentile = Some(0.998);
    critical.qod = Some(80);
    critical.solution_type = Some("VendorFix".into());
    critical.solution = Some("Update xz-utils to 5.6.2.".into());
    critical.details = json!({"summary": "Backdoored liblzma", "insight": "malicious build"});
    let scan = store
        .record_vuln_scan(
            &vuln_scan("openvas", &["10.0.0.5", "10.0.0.7"], now - 2 * 86_400_000),
            &[
                critical,
                vuln_result(
                    "10.0.0.5",
                    "443/tcp",
                    "1.3.6.1.4.1.25623.1.0.2",
                    7.5,
                    &["CVE-2023-1111"],
                    Some("agent-1"),
                ),
                vuln_result(
                    "10.0.0.7",
                    "80/tcp",
                    "1.3.6.1.4.1.25623.1.0.3",
                    5.0,
                    &["CVE-2023-1111"],
                    None,
                ),
                vuln_result(
                    "10.0.0.7",
                    "general/tcp",
                    "1.3.6.1.4.1.25623.1.0.4",
                    2.1,
                    &[],
                    None,
                ),
            ],
            now,
        )
        .await
        .unwrap();
    assert_eq!(scan.scan.counts.results, 4);
    let mut openssl = vuln_result(
        "10.0.0.5",
        "package/Debian/openssl",
        "DSA-5678-1",
        7.1,
        &["CVE-2024-5535"],
        Some("agent-1"),
    );
    openssl.name = "openssl: DSA-5678-1".into();
    store
        .record_vuln_scan(
            &vuln_scan("inventory", &["10.0.0.5"], now - 86_400_000),
            &[openssl],
            now,
        )
        .await
        .unwrap();
    store
        .put_agent_inventory(&dozor_model::AgentInventory {
            agent_id: "agent-1".into(),
            fingerprint: "f".repeat(64),
            os: json!({"pretty_name": "Astra Linux 1.8", "id": "astra"}),
            packages: json!([
                {"name": "openssl", "version": "3.0.11"},
                {"name": "xz-utils", "version": "5.6.0"},
                {"name": "bash", "version": "5.2"},
            ]),
            package_count: 3,
            reported_at: now - 3_600_000,
        })
        .await
        .unwrap();
    store
        .list_vulns(&dozor_model::VulnQuery {
            levels: vec!["critical".into()],
            limit: 1,
            ..dozor_model::VulnQuery::default()
        })
        .await
        .unwrap()[0]
        .id
}

/// The results a page lists (rows of the results table).
fn vuln_rows(body: &str) -> usize {
    body.matches("<tr data-vuln-status=").count()
}

fn level_card(level_class: &str, label: &str, n: u64) -> String {
    format!(
        "data-level-count=\"{level_class}\"><span class=\"card-label\">{label}</span><span class=\"card-value\">{n}</span>"
    )
}

#[tokio::test]
async fn vulnerability_pages_count_filter_and_page() {
    let h = harness().await;
    let critical = seed_vulns(h.store.as_ref()).await;
    let viewer = h.login("v", Role::Viewer).await;
    let (status, _, body) = h.get(Some(&viewer), "/ui/vulns").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("No scan jobs"), "no jobs yet");
    h.store
        .put_vuln_scan_job(&dozor_model::VulnScanJob {
            name: "weekly-dmz".into(),
            spec: serde_json::json!({}),
            enabled: true,
            state: serde_json::json!({}),
            updated_at: 1,
            updated_by: "admin".into(),
        })
        .await
        .unwrap();
    h.store
        .set_vuln_scan_job_state(
            "weekly-dmz",
            &serde_json::json!({"status": "running", "progress": 37}),
        )
        .await
        .unwrap();
    let (_, _, with_job) = h.get(Some(&viewer), "/ui/vulns").await;
    assert!(
        with_job.contains("data-job=\"weekly-dmz\""),
        "the job is listed"
    );
    assert!(
        with_job.contains("Scanning") && with_job.contains("37 %"),
        "its state"
    );
    assert!(
        body.contains("href=\"/ui/vulns\" class=\"active\""),
        "navigation"
    );
    assert!(body.contains("5 results"), "the total");
    for (class, label, n) in [
        ("lv-critical", "Critical", 1),
        ("lv-high", "High", 2),
        ("lv-medium", "Medium", 1),
        ("lv-low", "Low", 1),
        ("lv-fp", "False positive", 0),
    ] {
        assert!(body.contains(&level_card(class, label, n)), "{label} {n}");
    }
    assert!(
        body.contains("<svg class=\"chart hbars\""),
        "the level chart"
    );
    assert!(
        body.contains("<svg class=\"chart bars\""),
        "the trend chart"
    );
    assert!(body.contains("openvas scan · "), "a scan in the trend");
    assert!(
        body.contains("href=\"/ui/vulns/hosts/10.0.0.5\""),
        "worst hosts"
    );
    assert!(
        body.contains("href=\"/ui/vulns/cves/CVE-2023-1111\""),
        "worst CVEs"
    );
    assert_eq!(vuln_rows(&body), 5);
    // most severe first
    let first = body.find("1.3.6.1.4.1.25623.1.0.1 &#60;script").unwrap();
    let last = body.find("1.3.6.1.4.1.25623.1.0.4 &#60;script").unwrap();
    assert!(first < last);
    assert!(!body.contains("<script>x"), "names are escaped");
    assert!(
        !post_forms(&body).iter().any(|a| a.starts_with("/ui/vulns")),
        "no forms on the list"
    );

    // the filters narrow the list and the counts
    for (query, rows) in [
        ("level=critical", 1),
        ("level=high", 2),
        ("host=10.0.0.7", 2),
        ("agent=agent-1", 3),
        ("cve=cve-2023-1111", 2),
        ("source=inventory", 1),
        ("q=openssl", 1),
        ("status=open", 5),
        ("status=accepted", 0),
        ("host=10.0.0.5&level=high", 2),
        ("host=10.0.0.5&level=high&source=openvas", 1),
    ] {
        let (status, _, body) = h.get(Some(&viewer), &format!("/ui/vulns?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
        assert_eq!(vuln_rows(&body), rows, "{query}");
        if rows == 0 {
            assert!(body.contains("No results."), "{query}");
        }
    }
    let (_, _, body) = h.get(Some(&viewer), "/ui/vulns?host=10.0.0.7").await;
    assert!(body.contains("2 results"));
    assert!(body.contains(&level_card("lv-critical", "Critical", 0)));
    assert!(body.contains(&level_card("lv-medium", "Medium", 1)));
    // the level cards keep the other filters
    assert!(body.contains("href=\"/ui/vulns?host=10.0.0.7&#38;level=medium\""));
    let (_, _, body) = h.get(Some(&viewer), "/ui/vulns?after=junk").await;
    assert!(body.contains("flash-error"), "a bad keyset is said");

    // one result: everything in it
    let (status, _, body) = h.get(Some(&viewer), &format!("/ui/vulns/{critical}")).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
        "AV:N/AC:L/Au:N/C:C/I:C/A:C",
        "97.12%",
        "99.80%",
        "VendorFix",
        "Update xz-utils to 5.6.2.",
        "Backdoored liblzma",
        "<code>insight</code>",
        "href=\"/ui/vulns/cves/CVE-2024-3094\"",
        "href=\"/ui/agents/agent-1\"",
        "<code>22/tcp</code>",
    ] {
        assert!(body.contains(shown), "{shown}");
    }
    for path in ["/ui/vulns/999999", "/ui/vulns/x", "/ui/vulns/-1"] {
        let (status, _, _) = h.get(Some(&viewer), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // a host with an agent: its results beside the agent's alerts and inventory
    let (status, _, body) = h.get(Some(&viewer), "/ui/vulns/hosts/10.0.0.5").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vuln_rows(&body), 3);
    assert!(body.contains("3 results"));
    assert!(
        body.contains("The host&#39;s recent alerts") || body.contains("The host's recent alerts")
    );
    let alerts = h
        .store
        .list_alerts(&dozor_store::AlertQuery {
            agent_id: Some("agent-1".into()),
            ..dozor_store::AlertQuery::default()
        })
        .await
        .unwrap()
        .alerts;
    assert!(!alerts.is_empty());
    for a in &alerts {
        assert!(
            body.contains(&format!("href=\"/ui/alerts/{}\"", a.id)),
            "alert {}",
            a.id
        );
    }
    assert!(body.contains("href=\"/ui/alerts?status_any=1&#38;agent=agent-1\""));
    assert!(body.contains("3 packages"));
    assert!(body.contains("Astra Linux 1.8"));
    // a host without one: no alerts panel
    let (status, _, body) = h.get(Some(&viewer), "/ui/vulns/hosts/10.0.0.7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vuln_rows(&body), 2);
    assert!(!body.contains("recent alerts"));
    assert!(body.contains("No enrolled agent is known on this host."));
    let (status, _, _) = h.get(Some(&viewer), "/ui/vulns/hosts/10.9.9.9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // a CVE: the hosts it affects
    let (status, _, body) = h.get(Some(&viewer), "/ui/vulns/cves/cve-2023-1111").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("2 hosts"));
    assert!(body.contains("href=\"/ui/vulns/hosts/10.0.0.5\""));
    assert!(body.contains("href=\"/ui/vulns/hosts/10.0.0.7\""));
    assert_eq!(vuln_rows(&body), 2);
    let (status, _, _) = h.get(Some(&viewer), "/ui/vulns/cves/CVE-1999-0001").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // keyset paging: 60 results make two pages, no row twice
    let many = harness().await;
    let results: Vec<_> = (0..60)
        .map(|i| {
            vuln_result(
                "10.1.0.1",
                &format!("{}/tcp", 1000 + i),
                "1.3.6.1.9",
                f64::from(i % 10),
                &[],
                None,
            )
        })
        .collect();
    many.store
        .record_vuln_scan(
            &vuln_scan("openvas", &["10.1.0.1"], now_ms()),
            &results,
            now_ms(),
        )
        .await
        .unwrap();
    let s = many.login("v", Role::Viewer).await;
    let (_, _, page1) = many.get(Some(&s), "/ui/vulns?host=10.1.0.1").await;
    assert_eq!(vuln_rows(&page1), 50);
    let next = page1
        .split("<a href=\"")
        .filter_map(|p| p.split_once('"'))
        .find(|(_, rest)| rest.starts_with(" rel=\"next\""))
        .map(|(href, _)| href.replace("&#38;", "&"))
        .expect("a next page link");
    assert!(next.starts_with("/ui/vulns?host=10.1.0.1&after="), "{next}");
    let (status, _, page2) = many.get(Some(&s), &next).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vuln_rows(&page2), 10);
    assert!(!page2.contains("rel=\"next\""));
    assert!(page2.contains("First page"));
    let ports = |body: &str| -> Vec<String> {
        body.split("<td><code class=\"small\">")
            .skip(1)
            .map(|p| p[..p.find('<').unwrap()].to_owned())
            .collect()
    };
    let mut all = ports(&page1);
    all.extend(ports(&page2));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 60, "every result once");
}

#[tokio::test]
async fn analysts_accept_mark_and_reopen_vulnerabilities() {
    let h = harness().await;
    let id = seed_vulns(h.store.as_ref()).await;
    let viewer = h.login("viewer", Role::Viewer).await;
    let analyst = h.login("anna", Role::Analyst).await;
    let page = format!("/ui/vulns/{id}");
    let action = format!("/ui/vulns/{id}/status");
    let status_of = || async { h.store.get_vuln(id).await.unwrap().unwrap() };

    // the forms are the analyst's
    let (_, _, body) = h.get(Some(&viewer), &page).await;
    assert!(!post_forms(&body).contains(&action));
    let (_, _, body) = h.get(Some(&analyst), &page).await;
    assert_eq!(
        post_forms(&body).iter().filter(|a| **a == action).count(),
        2
    );

    // a viewer may not; a form without the session's token is refused
    let accept = |csrf: &str| {
        format!("csrf={csrf}&status=accepted&reason=Compensating+control&until=2099-12-31")
    };
    let (status, _, _) = h.post(Some(&viewer), &action, &accept(&viewer.csrf)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = h.post(Some(&analyst), &action, &accept("forged")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("The form has expired."));
    let (status, _, _) = h
        .post(Some(&analyst), &action, "status=accepted&reason=x")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = h.post(None, &action, &accept("x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of().await.status, VulnStatus::Open);
    assert_eq!(count(&h.audit_actions().await, "viewer", "vuln.status"), 0);
    assert_eq!(count(&h.audit_actions().await, "anna", "vuln.status"), 0);

    // what the store refuses is shown in its words, nothing changes
    for (form, says) in [
        ("status=accepted&reason=", "a reason is required"),
        ("status=false_positive", "a reason is required"),
        (
            "status=accepted&reason=x&until=2001-01-01",
            "would already have ended",
        ),
        ("status=fixed", "a later scan of the host decides that"),
    ] {
        let (status, _, body) = h
            .post(
                Some(&analyst),
                &action,
                &format!("csrf={}&{form}", analyst.csrf),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form}");
        assert!(body.contains(says), "{form}: {says}");
        assert!(body.contains("The change was refused:"), "{form}");
    }
    for (form, key) in [
        ("status=closed&reason=x", "error.vuln_status"),
        ("status=accepted&reason=x&until=soon", "error.bad_time"),
    ] {
        let (status, headers, _) = h
            .post(
                Some(&analyst),
                &action,
                &format!("csrf={}&{form}", analyst.csrf),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{form}");
        assert_eq!(location(&headers), page);
        assert_eq!(flash(&headers).as_deref(), Some(key), "{form}");
    }
    assert_eq!(status_of().await.status, VulnStatus::Open);
    assert_eq!(count(&h.audit_actions().await, "anna", "vuln.status"), 0);

    // accepted until the end of a day
    let (status, headers, _) = h
        .post(Some(&analyst), &action, &accept(&analyst.csrf))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), page);
    assert_eq!(flash(&headers).as_deref(), Some("flash.vuln_accepted"));
    let v = status_of().await;
    assert_eq!(v.status, VulnStatus::Accepted);
    assert_eq!(v.status_reason.as_deref(), Some("Compensating control"));
    assert_eq!(v.status_by.as_deref(), Some("anna"));
    let end = dozor_ui::format::parse_time("2100-01-01", 0).unwrap();
    assert_eq!(v.status_until, Some(end));
    let audit = h
        .store
        .list_audit(&AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "vuln.status")
        .expect("audited");
    assert_eq!(entry.actor, "anna");
    assert_eq!(entry.target.as_deref(), Some(format!("vuln:{id}").as_str()));
    assert_eq!(entry.details["from"], "open");
    assert_eq!(entry.details["status"], "accepted");
    assert_eq!(entry.details["reason"], "Compensating control");
    let (_, _, body) = h.get(Some(&viewer), "/ui/vulns?status=accepted").await;
    assert_eq!(vuln_rows(&body), 1);
    let (_, _, body) = h.get(Some(&analyst), &page).await;
    assert!(body.contains("Compensating control"));
    assert_eq!(
        post_forms(&body).iter().filter(|a| **a == action).count(),
        3,
        "reopen too"
    );

    // reopened, then a false positive
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            &action,
            &format!("csrf={}&status=open", analyst.csrf),
        )
        .await;
    assert_eq!(flash(&headers).as_deref(), Some("flash.vuln_reopened"));
    assert_eq!(status_of().await.status, VulnStatus::Open);
    let (_, headers, _) = h
        .post(
            Some(&analyst),
            &action,
            &format!(
                "csrf={}&status=false_positive&reason=Patched+backport",
                analyst.csrf
            ),
        )
        .await;
    assert_eq!(
        flash(&headers).as_deref(),
        Some("flash.vuln_false_positive")
    );
    assert_eq!(status_of().await.status, VulnStatus::FalsePositive);
    assert_eq!(count(&h.audit_actions().await, "anna", "vuln.status"), 3);
    let (status, _, _) = h
        .post(
            Some(&analyst),
            "/ui/vulns/999999/status",
            &format!("csrf={}&status=open", analyst.csrf),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn vulnerability_pages_in_russian() {
    let h = harness().await;
    let id = seed_vulns(h.store.as_ref()).await;
    let s = h.login("olga", Role::Analyst).await;
    for (path, texts) in [
        (
            "/ui/vulns".to_owned(),
            vec![
                "<title>Уязвимости",
                ">Уязвимости</a>",
                "5 результатов",
                "Критический",
                "Результаты по уровню опасности",
                "Последние сканирования",
                "Самые уязвимые хосты",
                "Самые опасные CVE",
                "Открыта",
                "Сканирование OpenVAS",
            ],
        ),
        (
            format!("/ui/vulns/{id}"),
            vec![
                "Принять риск",
                "Отметить как ложное срабатывание",
                "Обоснование",
                "Рекомендации по устранению",
                "97,12\u{a0}%",
            ],
        ),
        (
            "/ui/vulns/hosts/10.0.0.5".to_owned(),
            vec![
                "Хост 10.0.0.5",
                "Последние алерты по хосту",
                "3 пакета",
                "Установленные пакеты",
            ],
        ),
        (
            "/ui/vulns/cves/CVE-2023-1111".to_owned(),
            vec!["CVE-2023-1111: затронутые хосты", "2 хоста"],
        ),
    ] {
        let request = Request::get(&path)
            .header(header::COOKIE, &s.cookie)
            .header(header::ACCEPT_LANGUAGE, "ru-RU,ru;q=0.9")
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = h.send(request).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("<html lang=\"ru\">"), "{path}");
        for t in texts {
            assert!(body.contains(t), "{path}: {t}");
        }
        for english in [
            "Most vulnerable hosts",
            "Accept the risk",
            "Recent scans",
            "Risk accepted",
        ] {
            assert!(!body.contains(english), "{path}: {english}");
        }
    }
}

/// The ATT&CK matrix counts the period's alerts per technique (sub-techniques rolled in),
/// marks the techniques the enabled rules cover, and links a cell to its alerts, which the
/// alert list filters by tag.
#[tokio::test]
async fn attack_matrix_counts_alerts_and_links_the_alert_list_by_tag() {
    let h = harness().await;
    let now = now_ms();
    let old = 1_560_000_000_000; // June 2019: detected now, events years old
    let mut events = Vec::new();
    let mut detections = Vec::new();
    let cases: [(&str, &[&str], i64); 5] = [
        ("ps-1", &["attack.execution", "attack.t1059.001"], now),
        ("ps-2", &["attack.execution", "attack.t1059.001"], now),
        ("ps-3", &["attack.t1059.001", "attack.T1059"], now),
        ("shell-1", &["attack.t1059"], now),
        (
            "lsass-1",
            &["attack.credential-access", "attack.t1003.001"],
            old,
        ),
    ];
    for (host, tags, ts) in cases {
        let id = Uuid::now_v7();
        events.push(NewEvent {
            id,
            ts,
            received_at: now,
            agent_id: None,
            doc: json!({"event": {"code": "1"}, "host": {"name": host}}),
        });
        detections.push(Detection {
            rule_id: format!("r-{host}"),
            rule_title: format!("Technique rule {host}"),
            level: Level::High,
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            agent_id: None,
            host: Some(host.into()),
            event_id: id,
            ts,
        });
    }
    h.store
        .store_batch(&events, &detections, Duration::from_secs(300))
        .await
        .unwrap();
    let s = h.login("reader", Role::Viewer).await;

    // Detection time, the last 7 days (the defaults): T1059 has 4 alerts (one of them tagged
    // with the technique and its sub-technique counts once) and both harness rules.
    let (status, _, body) = h.get(Some(&s), "/ui/attack").await;
    assert_eq!(status, StatusCode::OK);
    let cell = |body: &str, id: &str| -> String {
        let at = body
            .find(&format!("data-technique=\"{id}\""))
            .unwrap_or_else(|| panic!("no cell {id}"));
        let start = body[..at].rfind("<li").unwrap();
        let end = at + body[at..].find("</li>\n").unwrap();
        body[start..end].to_owned()
    };
    let t1059 = cell(&body, "T1059");
    assert!(t1059.contains("class=\"tech heat-2 covered\""), "{t1059}");
    assert!(t1059.contains("4 alerts"), "{t1059}");
    assert!(t1059.contains("2 rules"), "{t1059}");
    let link = "/ui/alerts?status_any=1&#38;tag=attack.t1059&#38;by=detected&#38;range=7d";
    assert!(t1059.contains(&format!("href=\"{link}\"")), "{t1059}");
    // the sub-technique on its own: 3 alerts, both rules
    assert!(t1059.contains("tag=attack.t1059.001&#38;"), "{t1059}");
    assert!(t1059.contains("3 alerts · 2 rules"), "{t1059}");
    // T1003: the alert of old logs, detected now; no rule carries it
    let t1003 = cell(&body, "T1003");
    assert!(t1003.contains("class=\"tech heat-1 uncovered\""), "{t1003}");
    assert!(
        t1003.contains("1 alert") && t1003.contains("no rules"),
        "{t1003}"
    );
    // the harness's own alerts carry a tactic only: counted, not in a cell
    assert!(cell(&body, "T1595").contains("class=\"tech heat-0 uncovered\""));
    assert!(body.contains("<a href=\"/ui/attack\" class=\"active\" aria-current=\"page\">"));

    // By event time over the last 24 h the 2019 events are out.
    let (_, _, body) = h.get(Some(&s), "/ui/attack?range=24h&by=event").await;
    assert!(cell(&body, "T1003").contains("heat-0"));
    assert!(
        cell(&body, "T1059")
            .contains("href=\"/ui/alerts?status_any=1&#38;tag=attack.t1059&#38;range=24h\"")
    );
    // All time by event time: back in.
    let (_, _, body) = h.get(Some(&s), "/ui/attack?range=all&by=event").await;
    assert!(cell(&body, "T1003").contains("heat-1"));

    // A switched-off rule no longer covers its technique.
    h.store.set_rule_enabled("r-ps", false).await.unwrap();
    let (_, _, body) = h.get(Some(&s), "/ui/attack").await;
    assert!(cell(&body, "T1059").contains("1 rule<"), "one rule left");

    // The cell's link: the alert list filtered by the tag, sub-techniques included.
    let (status, _, body) = h.get(Some(&s), &link.replace("&#38;", "&")).await;
    assert_eq!(status, StatusCode::OK);
    for host in ["ps-1", "ps-2", "ps-3", "shell-1"] {
        assert!(body.contains(&format!("Technique rule {host}")), "{host}");
    }
    assert!(!body.contains("Technique rule lsass-1"));
    assert!(
        !body.contains("Encoded PowerShell"),
        "alerts without the tag"
    );
    assert!(body.contains("4 alerts"), "the count says so");
    assert!(
        body.contains("name=\"tag\" value=\"attack.t1059\""),
        "the filter shows"
    );
    // a sub-technique finds only its own; letter case does not matter
    let (_, _, body) = h
        .get(
            Some(&s),
            "/ui/alerts?status_any=1&tag=attack.t1059.001&range=all",
        )
        .await;
    assert!(body.contains("Technique rule ps-3"));
    assert!(!body.contains("Technique rule shell-1"));
    let (_, _, body) = h
        .get(
            Some(&s),
            "/ui/alerts?status_any=1&tag=ATTACK.T1003&range=all",
        )
        .await;
    assert!(body.contains("Technique rule lsass-1"));
    assert!(!body.contains("Technique rule ps-1"));
    // a tag is not a prefix of another tag's text: `attack.t105` finds nothing
    let (_, _, body) = h
        .get(
            Some(&s),
            "/ui/alerts?status_any=1&tag=attack.t105&range=all",
        )
        .await;
    assert!(!body.contains("Technique rule"));
}
