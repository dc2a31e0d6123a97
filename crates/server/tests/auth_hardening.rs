//! Credentials under attack, against a real server on 127.0.0.1 (TLS, SQLite store, the
//! store's tokens and sessions): agent takeover by enrollment, login floods and lockouts,
//! streams outliving their credential, CSRs that spend tokens, HSTS.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{
    Client, NoRules, Running, TestServer, api_token, enroll_agent, pinned_connector, test_env,
};
use dozor_pipeline::AlertNotice;
use dozor_server::{ApiState, MemorySink, Services, StoreTokens};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{
    AuditQuery, EnrollmentTokenInfo, Level, NewEnrollmentToken, NewSession, NewUser, Role, Store,
    StoreConfig, User, now_ms,
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::sync::broadcast;

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    notices: broadcast::Sender<AlertNotice>,
    server: Running,
}

impl Env {
    async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
            dir.path().join("store"),
        )))
        .await
        .unwrap();
        let (notices, _) = broadcast::channel(64);
        let config = common::config(dir.path(), test_env(&[])).unwrap();
        let services = Services::new(
            Arc::new(MemorySink::new(1000)),
            Arc::new(StoreTokens(store.clone())),
        )
        .with_api(Arc::new(ApiState {
            store: store.clone(),
            rules: Arc::new(NoRules),
            notices: notices.clone(),
            pipeline_stats: None,
            agent_notices: broadcast::channel(16).0,
        }));
        Env {
            _dir: dir,
            store,
            notices,
            server: Running::start(config, services).await,
        }
    }

    fn client(&self) -> Client {
        self.server.client()
    }

    async fn stop(self) {
        tokio::time::timeout(Duration::from_secs(15), self.server.stop())
            .await
            .expect("server stopped in time");
    }

    async fn enrollment_token(&self, name: &str, may_replace: Option<&str>) -> (String, i64) {
        let created = self
            .store
            .create_enrollment_token(&NewEnrollmentToken {
                name: name.into(),
                expires_at: Some(now_ms() + 3_600_000),
                max_uses: Some(1),
                created_by: "tests".into(),
                may_replace: may_replace.map(str::to_owned),
            })
            .await
            .unwrap();
        (created.secret, created.info.id)
    }

    async fn token_info(&self, id: i64) -> EnrollmentTokenInfo {
        self.store
            .list_enrollment_tokens()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.id == id)
            .unwrap()
    }

    async fn user(&self, name: &str, password: &str) -> User {
        self.store
            .create_user(&NewUser {
                username: name.into(),
                password_hash: dozor_server::password::hash(password).unwrap(),
                // Not an administrator: the last one may not be disabled.
                role: Role::Viewer,
                language: None,
                created_by: "tests".into(),
            })
            .await
            .unwrap()
    }

    /// A session of `user` made as a sign-in makes one: the cookie header and its CSRF token.
    async fn session(&self, user: &User) -> (String, String) {
        let secret = dozor_server::digest::hex(&dozor_server::digest::random_bytes::<32>());
        let csrf = format!("csrf-{}", user.username);
        self.store
            .create_session(&NewSession {
                user_id: user.id,
                secret_hash: dozor_server::digest::sha256(secret.as_bytes()).to_vec(),
                csrf_token: csrf.clone(),
                expires_at: now_ms() + 3_600_000,
                ip: None,
                user_agent: None,
            })
            .await
            .unwrap();
        (format!("dozor_session={secret}"), csrf)
    }
}

fn facts(hostname: &str) -> Value {
    json!({"hostname": hostname, "os_type": "linux", "agent_version": "1.0.0", "ips": []})
}

fn csr(hostname: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

async fn enroll(
    client: &Client,
    token: &str,
    csr_pem: &str,
    hostname: &str,
    replace: bool,
) -> common::Response {
    let body = json!({
        "token": token,
        "csr_pem": csr_pem,
        "facts": facts(hostname),
        "replace_duplicates": replace,
    });
    client
        .send(
            "POST",
            "/api/v1/agents/enroll",
            &[("content-type", "application/json")],
            body.to_string().into_bytes(),
        )
        .await
        .unwrap()
}

fn slug(r: &common::Response) -> String {
    r.json()["type"]
        .as_str()
        .unwrap_or("")
        .replace("urn:dozor:problem:", "")
}

// ---------------------------------------------------------------- agent takeover

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrollment_token_holder_cannot_evict_another_host() {
    let env = Env::start().await;
    let mut alerts = env.notices.subscribe();
    let (old_id, _) = enroll_agent(
        env.store.as_ref(),
        &env.client(),
        &env.server.ca_pem,
        facts("ws-01.corp"),
    )
    .await;

    // An ordinary token asking to replace: refused, nothing revoked, the token not spent.
    let (plain, plain_id) = env.enrollment_token("plain", None).await;
    let r = enroll(&env.client(), &plain, &csr("x"), "WS-01.CORP", true).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(slug(&r), "duplicate-hostname");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains(&old_id) && detail.contains("--may-replace"),
        "{detail}"
    );
    let old = env.store.get_agent(&old_id).await.unwrap().unwrap();
    assert!(
        old.revoked_at.is_none(),
        "the other host keeps its identity"
    );
    assert_eq!(env.token_info(plain_id).await.uses, 0);

    // A token an administrator made to replace this hostname may.
    let (allowed, allowed_id) = env.enrollment_token("reinstall", Some("ws-01.corp")).await;
    let r = enroll(&env.client(), &allowed, &csr("x"), "WS-01.corp", true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let new_id = answer["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(answer["duplicates"][0]["id"], old_id.as_str());
    assert_eq!(answer["duplicates"][0]["revoked"], true);
    let old = env.store.get_agent(&old_id).await.unwrap().unwrap();
    assert!(old.revoked_at.is_some());

    // ... and the eviction is an alert (stored and streamed) and an audit entry.
    let page = env
        .store
        .list_alerts(&dozor_store::AlertQuery::default())
        .await
        .unwrap();
    let alert = page
        .alerts
        .iter()
        .find(|a| a.rule_id == "dozor-agent-replaced")
        .expect("an agent-replaced alert");
    assert_eq!(alert.level, Level::High);
    assert_eq!(alert.rule_title, "Agent replaced by a new enrollment");
    assert_eq!(alert.agent_id.as_deref(), Some(old_id.as_str()));
    let event = env
        .store
        .get_event(alert.event_ids[0])
        .await
        .unwrap()
        .expect("the alert's event");
    let doc = serde_json::to_value(&event).unwrap();
    let text = doc.to_string();
    for needle in [
        old_id.as_str(),
        new_id.as_str(),
        "ws-01.corp",
        "127.0.0.1",
        &format!("\"enrollment_token_id\":\"{allowed_id}\""),
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let streamed = tokio::time::timeout(Duration::from_secs(5), alerts.recv())
        .await
        .expect("an alert notice")
        .unwrap();
    assert_eq!(streamed.alert.rule_id, "dozor-agent-replaced");
    let audit = env
        .store
        .list_audit(&AuditQuery {
            action: Some("agent.revoke".into()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let entry = audit
        .iter()
        .find(|e| e.target.as_deref() == Some(&format!("agent:{old_id}")))
        .expect("the revocation is audited");
    assert_eq!(entry.details["token_id"], allowed_id);
    assert_eq!(entry.details["replaced_by"], new_id.as_str());
    assert_eq!(entry.details["address"], "127.0.0.1");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_agents_own_certificate_proves_it_may_be_replaced() {
    let env = Env::start().await;
    let (old_id, old_client) = enroll_agent(
        env.store.as_ref(),
        &env.client(),
        &env.server.ca_pem,
        facts("db-07"),
    )
    .await;
    // A plain token, but the request presents the old agent's current certificate.
    let (plain, _) = env.enrollment_token("plain", None).await;
    let r = enroll(&old_client, &plain, &csr("db-07"), "db-07", true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["duplicates"][0]["revoked"], true);
    let old = env.store.get_agent(&old_id).await.unwrap().unwrap();
    assert!(old.revoked_at.is_some());
    let page = env
        .store
        .list_alerts(&dozor_store::AlertQuery::default())
        .await
        .unwrap();
    assert!(
        page.alerts
            .iter()
            .any(|a| a.rule_id == "dozor-agent-replaced"),
        "every eviction is an alert"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_csr_does_not_spend_the_token() {
    let env = Env::start().await;
    let (token, id) = env.enrollment_token("one use", None).await;
    let good = csr("h1");
    // A signature that does not verify: one base64 character of the last full line changed.
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let last_full = lines.len() - 3;
    let flipped: String = lines[last_full]
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (10, 'A') => 'B',
            (10, _) => 'A',
            _ => c,
        })
        .collect();
    lines[last_full] = flipped;
    let forged = lines.join("\n");
    for bad in [
        "not a CSR",
        forged.as_str(),
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ] {
        let r = enroll(&env.client(), &token, bad, "h1", false).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(slug(&r), "invalid-csr");
        assert_eq!(env.token_info(id).await.uses, 0, "a bad CSR spent a use");
    }
    let r = enroll(&env.client(), &token, &good, "h1", false).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(env.token_info(id).await.uses, 1);
    env.stop().await;
}

// ---------------------------------------------------------------- login

fn form(user: &str, password: &str) -> Vec<u8> {
    format!("username={user}&password={password}&csrf=t").into_bytes()
}

async fn login_from(env: &Env, from: &str, user: &str, password: &str) -> common::Response {
    let from: IpAddr = from.parse().unwrap();
    env.client()
        .send_from(
            from,
            "POST",
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", "dozor_login=t"),
            ],
            form(user, password),
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_logins_are_bounded_and_refused_at_once() {
    let env = Env::start().await;
    let env = Arc::new(env);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move {
                login_from(&env, "127.0.0.1", &format!("nobody{i}"), "wrong-password-1").await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), "1", "busy: try again in a second");
        }
        statuses.push(r.status);
    }
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    let busy = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        busy > 0,
        "16 parallel password checks all ran: {statuses:?}"
    );
    // The refused ones were not counted as failures: every name may still try.
    Arc::try_unwrap(env).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_out_address_does_not_lock_out_the_user_elsewhere() {
    let env = Env::start().await;
    env.user("root-admin", "correct-horse-battery").await;
    for _ in 0..dozor_server::session::FREE_FAILURES {
        let r = login_from(&env, "127.0.0.2", "root-admin", "guess-guess-guess").await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = login_from(&env, "127.0.0.2", "root-admin", "guess-guess-guess").await;
    assert_eq!(r.status, 429, "the guessing address is throttled");
    assert!(r.header("retry-after").parse::<u64>().unwrap() >= 1);
    // The real administrator, from another address, signs in.
    let r = login_from(&env, "127.0.0.3", "root-admin", "correct-horse-battery").await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.header("set-cookie").contains("dozor_session="));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_user_names_are_refused_and_never_logged() {
    let env = Env::start().await;
    let audit_len = |env: &Env| {
        let store = env.store.clone();
        async move {
            let entries = store
                .list_audit(&AuditQuery {
                    limit: 1000,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            (
                entries.len(),
                serde_json::to_string(&entries).unwrap().len(),
            )
        }
    };
    let (before, _) = audit_len(&env).await;
    for len in [257, 300_000] {
        let name = "a".repeat(len);
        let r = login_from(&env, "127.0.0.1", &name, "whatever-password").await;
        assert!(r.status == 400 || r.status == 413, "{len}: {}", r.status);
        assert!(!r.text().contains(&name), "the name is not echoed");
    }
    assert_eq!(audit_len(&env).await.0, before, "nothing logged for them");
    // A name at the limit is an ordinary failure: one bounded entry.
    let name = "b".repeat(dozor_server::session::MAX_USERNAME_BYTES);
    let r = login_from(&env, "127.0.0.1", &name, "whatever-password").await;
    assert_eq!(r.status, 401);
    let (after, bytes) = audit_len(&env).await;
    assert_eq!(after, before + 1);
    assert!(bytes < 4096, "the audit entry stays small: {bytes} bytes");
    env.stop().await;
}

// ---------------------------------------------------------------- streams

async fn open_stream(env: &Env, path: &str, header: (&str, &str)) -> Incoming {
    let tcp = tokio::net::TcpStream::connect(env.server.addr)
        .await
        .unwrap();
    let tls = pinned_connector(&env.server.ca_pem)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get(path)
        .header("host", format!("localhost:{}", env.server.addr.port()))
        .header("accept", "text/event-stream")
        .header(header.0, header.1)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let mut body = response.into_body();
    // The greeting first: the stream is open.
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("greeting")
        .expect("a frame")
        .unwrap();
    assert!(String::from_utf8_lossy(frame.data_ref().unwrap()).contains(": connected"));
    body
}

/// Reads until the stream ends; fails if it is still open after `within`.
async fn ends_within(body: &mut Incoming, within: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => panic!("{what}: the stream is still open after {within:?}"),
            Ok(None | Some(Err(_))) => return,
            Ok(Some(Ok(_))) => {}
        }
    }
}

const STREAM_END: Duration = Duration::from_secs(6);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_when_their_credential_does() {
    let env = Env::start().await;

    // A revoked token.
    let token = api_token(env.store.as_ref(), "stream-viewer", Role::Viewer).await;
    let bearer = format!("Bearer {token}");
    let mut alerts = open_stream(&env, "/api/v1/alerts/stream", ("authorization", &bearer)).await;
    let mut agents = open_stream(&env, "/api/v1/agents/stream", ("authorization", &bearer)).await;
    let id = env
        .store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "stream-viewer")
        .unwrap()
        .id;
    assert!(env.store.revoke_token(id).await.unwrap());
    ends_within(&mut alerts, STREAM_END, "token revoked (alerts)").await;
    ends_within(&mut agents, STREAM_END, "token revoked (agents)").await;

    // A disabled user.
    let user = env.user("olga", "correct-horse-battery").await;
    let (cookie, _) = env.session(&user).await;
    let mut stream = open_stream(&env, "/api/v1/alerts/stream", ("cookie", &cookie)).await;
    env.store.set_user_disabled(user.id, true).await.unwrap();
    ends_within(&mut stream, STREAM_END, "user disabled").await;

    // Signed out.
    let user = env.user("petr", "correct-horse-battery").await;
    let (cookie, csrf) = env.session(&user).await;
    let mut stream = open_stream(&env, "/api/v1/agents/stream", ("cookie", &cookie)).await;
    let r = env
        .client()
        .send(
            "POST",
            "/logout",
            &[
                ("cookie", &cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            format!("csrf={csrf}").into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    ends_within(&mut stream, STREAM_END, "logged out").await;

    // The password changed.
    let user = env.user("ivan", "correct-horse-battery").await;
    let (cookie, _) = env.session(&user).await;
    let mut stream = open_stream(&env, "/api/v1/alerts/stream", ("cookie", &cookie)).await;
    let hash = dozor_server::password::hash("another-long-password").unwrap();
    env.store.set_user_password(user.id, &hash).await.unwrap();
    ends_within(&mut stream, STREAM_END, "password changed").await;

    // A valid credential keeps its stream open past a few checks.
    let token = api_token(env.store.as_ref(), "steady", Role::Viewer).await;
    let mut steady = open_stream(
        &env,
        "/api/v1/alerts/stream",
        ("authorization", &format!("Bearer {token}")),
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), steady.frame())
            .await
            .is_err(),
        "a valid credential's stream stays open"
    );
    env.stop().await;
}

// ---------------------------------------------------------------- HSTS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_on_every_tls_answer_and_never_on_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let client = server.client();
    for path in ["/healthz", "/no/such/page", "/api/v1/alerts", "/login"] {
        let r = client.get(path).await;
        assert_eq!(
            r.header("strict-transport-security"),
            "max-age=31536000",
            "{path} ({})",
            r.status
        );
    }
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[("DOZOR_TLS", "off")])).await;
    let r = server.client().get("/healthz").await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("strict-transport-security").is_none());
    server.stop().await;
}
