//! File scanning with real engines, end to end in one process: a real HTTPS server with a
//! SQLite store, an agent enrolled with a CSR and calling with its client certificate, the
//! in-process bus and a pipeline worker — so a sample's findings travel ingest → bus → worker
//! → store and come out as alerts.
//!
//! - YARA (yara-x): a rule written through the API (a broken one first: 422 naming the line),
//!   the version in heartbeat answers and the rules agents fetch, a sample upload, the alert
//!   `dozor-scan/yara/server/<file>.<rule>` at the level of the rule's `severity` meta.
//! - ClamAV: a real clamd (Debian `clamav-daemon`) on a private socket with a database this
//!   test writes (EICAR built at runtime): `dozor-scan/clamav/Eicar-Test-Signature.UNOFFICIAL`;
//!   with clamd stopped, uploads still answer (YARA and hash-list findings) with an error
//!   naming clamd's address, and `/readyz` reports clamd degraded but stays ready.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Client, NoRules, Response, api_token, enroll_agent, pinned_connector, test_env};
use dozor_pipeline::{PipelineOptions, PipelineStats, Worker};
use dozor_scan::testing::{TestClamd, eicar, find_clamd};
use dozor_server::{
    ApiState, BoxFuture, IngestBatch, IngestSink, Server, ServerError, Services, SinkError,
    SubmitOutcome,
};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{AlertQuery, Level, Role, Store, StoreConfig};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

// ---------------------------------------------------------------- harness

/// Ingest → the in-process bus (what `dozor server` does).
struct BusSink(Arc<dyn dozor_bus::Bus>);

impl IngestSink for BusSink {
    fn submit(&self, batch: IngestBatch) -> BoxFuture<'_, Result<SubmitOutcome, SinkError>> {
        Box::pin(async move {
            let events: Vec<&Value> = batch.events.iter().map(|e| &e.event).collect();
            let payload =
                serde_json::to_vec(&events).map_err(|e| SinkError::Unavailable(e.to_string()))?;
            self.0
                .publish(Bytes::from(payload))
                .await
                .map_err(|e| SinkError::Unavailable(e.to_string()))?;
            Ok(SubmitOutcome::default())
        })
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
    store: Arc<dyn Store>,
    admin: String,
    analyst: String,
    viewer: String,
    addr: std::net::SocketAddr,
    ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
    stop_worker: watch::Sender<bool>,
    worker: Option<JoinHandle<()>>,
}

impl Harness {
    async fn start(env: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
            dir.path().join("store"),
        )))
        .await
        .unwrap();
        let admin = api_token(store.as_ref(), "alice-admin", Role::Admin).await;
        let analyst = api_token(store.as_ref(), "bob-analyst", Role::Analyst).await;
        let viewer = api_token(store.as_ref(), "carol-viewer", Role::Viewer).await;

        let bus = dozor_bus::connect(&dozor_bus::BusConfig::Memory(dozor_bus::MemoryConfig {
            max_messages: 1000,
            max_bytes: 0,
            max_events: 0,
            visibility_timeout: Duration::from_secs(5),
        }))
        .await
        .unwrap();
        let (notices, _) = tokio::sync::broadcast::channel(64);
        let detector = dozor_sigma::Detector::build(
            dozor_sigma::RuleSet::default(),
            &dozor_sigma::EngineOptions::default(),
            &dozor_sigma::DetectorOptions::default(),
        )
        .0;
        let worker = Worker::new(
            bus.clone(),
            store.clone(),
            None,
            detector,
            PipelineOptions {
                receive_wait: Duration::from_millis(50),
                ..PipelineOptions::default()
            },
            notices.clone(),
            Arc::new(PipelineStats::default()),
        );
        let (stop_worker, stop_rx) = watch::channel(false);
        let worker = tokio::spawn(async move { worker.run(stop_rx).await });

        // Small samples so the limit is easy to reach (later entries win).
        let mut env_vars = vec![("DOZOR_SCAN_MAX_SAMPLE_BYTES".to_owned(), "64KiB".to_owned())];
        env_vars.extend(test_env(env));
        let config = common::config(&data_dir, env_vars).unwrap();
        let services = Services::new(
            Arc::new(BusSink(bus)),
            Arc::new(dozor_server::StoreTokens(store.clone())),
        )
        .with_api(Arc::new(ApiState {
            store: store.clone(),
            rules: Arc::new(NoRules),
            notices,
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
        Harness {
            _dir: dir,
            data_dir,
            store,
            admin,
            analyst,
            viewer,
            addr,
            ca_pem,
            shutdown: Some(tx),
            handle: Some(handle),
            stop_worker,
            worker: Some(worker),
        }
    }

    fn client(&self) -> Client {
        Client {
            addr: self.addr,
            tls: Some(pinned_connector(&self.ca_pem)),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct));
        }
        self.client()
            .send(method, path, &headers, body)
            .await
            .unwrap()
    }

    async fn put_rule(&self, name: &str, text: &str) -> Response {
        self.call(
            "PUT",
            &format!("/api/v1/yara/rules/{name}"),
            &self.admin,
            Some("text/plain"),
            text.as_bytes().to_vec(),
        )
        .await
    }

    /// Enrolls an agent with a CSR; returns a client presenting its certificate.
    async fn enroll(&self, hostname: &str) -> (Agent, String) {
        let facts = json!({"hostname": hostname, "os_type": "linux", "os_name": null,
                           "os_version": null, "arch": null, "agent_version": "0.1.0", "ips": []});
        let (id, client) =
            enroll_agent(self.store.as_ref(), &self.client(), &self.ca_pem, facts).await;
        (Agent(client), id)
    }

    /// Waits until the alerts include `rule_id`.
    async fn alert(&self, rule_id: &str) -> dozor_store::Alert {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let alerts = self
                .store
                .list_alerts(&AlertQuery {
                    rule_id: Some(rule_id.to_owned()),
                    ..AlertQuery::default()
                })
                .await
                .unwrap()
                .alerts;
            if let Some(a) = alerts.into_iter().next() {
                return a;
            }
            assert!(Instant::now() < deadline, "no alert {rule_id} within 20 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.handle.take().unwrap())
            .await
            .expect("server stopped in time")
            .unwrap()
            .unwrap();
        let _ = self.stop_worker.send(true);
        let _ = self.worker.take().unwrap().await;
    }
}

/// An enrolled agent's HTTPS client (it presents the agent's certificate).
struct Agent(Client);

impl Agent {
    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        self.0.send(method, path, headers, body).await.unwrap()
    }

    async fn upload(&self, path_on_host: &str, bytes: &[u8], sha256: Option<&str>) -> Response {
        let mut query = format!("/api/v1/samples?path={}", urlencode(path_on_host));
        if let Some(s) = sha256 {
            query.push_str(&format!("&sha256={s}"));
        }
        self.send(
            "POST",
            &query,
            &[("content-type", "application/octet-stream")],
            bytes.to_vec(),
        )
        .await
    }

    async fn heartbeat(&self, hostname: &str) -> Value {
        let r = self
            .send(
                "POST",
                "/api/v1/agents/heartbeat",
                &[("content-type", "application/json")],
                json!({"facts": {"hostname": hostname, "os_type": "linux", "os_name": null,
                                 "os_version": null, "arch": null, "agent_version": "0.1.0", "ips": []}})
                .to_string()
                .into_bytes(),
            )
            .await;
        ok(&r)
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ok(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn problem(r: &Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], format!("urn:dozor:problem:{slug}"), "{p}");
    p
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn finding<'a>(answer: &'a Value, engine: &str) -> Option<&'a Value> {
    answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["engine"] == engine)
}

const RULE_FILE: &str = "team.yar";

fn good_rule(marker: &str) -> String {
    format!(
        "rule Dozor_Test_Dropper : dropper\n{{\n  meta:\n    severity = \"medium\"\n    author = \"scan test\"\n  strings:\n    $m = \"{marker}\"\n  condition:\n    $m\n}}\n"
    )
}

// ---------------------------------------------------------------- YARA

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn yara_rules_through_the_api_and_a_sample_raise_an_alert() {
    let h = Harness::start(&[]).await;
    let marker = format!("dozor-scan-marker-{}", std::process::id());

    // An empty rule directory (created at start).
    assert!(h.data_dir.join("yara").is_dir());
    let empty = ok(&h
        .call("GET", "/api/v1/yara/rules", &h.viewer, None, Vec::new())
        .await);
    assert_eq!(empty["rules"], json!([]));

    // A rule that does not compile: 422 with yara-x's error naming the line; not stored.
    let broken = "rule Broken\n{\n  condition:\n    undefined_identifier\n}\n";
    let p = problem(&h.put_rule(RULE_FILE, broken).await, 422, "invalid-rule");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("team.yar:4:"), "{detail}");
    assert_eq!(p["line"], 4, "{p}");
    assert!(p["column"].as_u64().is_some(), "{p}");
    assert!(!h.data_dir.join("yara").join(RULE_FILE).exists());
    // Names and media types.
    problem(
        &h.put_rule("../x.yar", "rule X { condition: true }").await,
        404,
        "not-found",
    );
    problem(
        &h.put_rule("x.txt", "rule X { condition: true }").await,
        400,
        "invalid-parameter",
    );
    problem(
        &h.call(
            "PUT",
            "/api/v1/yara/rules/x.yar",
            &h.admin,
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await,
        415,
        "unsupported-media-type",
    );
    problem(
        &h.call(
            "PUT",
            "/api/v1/yara/rules/x.yar",
            &h.admin,
            Some("text/plain"),
            vec![b'/'; (1 << 20) + 1],
        )
        .await,
        413,
        "too-large",
    );
    // Only admins change rules.
    problem(
        &h.call(
            "PUT",
            "/api/v1/yara/rules/x.yar",
            &h.analyst,
            Some("text/plain"),
            b"rule X { condition: true }".to_vec(),
        )
        .await,
        403,
        "forbidden",
    );

    // A good rule: stored, compiled, a new version.
    let change = ok(&h.put_rule(RULE_FILE, &good_rule(&marker)).await);
    assert_eq!(change["created"], true);
    assert_eq!(change["rule_count"], 1);
    let version = change["version"].as_str().unwrap().to_owned();
    assert_eq!(version.len(), 64);
    let list = ok(&h
        .call("GET", "/api/v1/yara/rules", &h.viewer, None, Vec::new())
        .await);
    assert_eq!(list["version"], version);
    assert_eq!(list["rules"][0]["name"], RULE_FILE);
    assert_eq!(list["rules"][0]["namespace"], "server/team");
    assert_eq!(list["rules"][0]["rule_count"], 1);
    assert_eq!(list["rules"][0]["error"], Value::Null);
    let text = h
        .call(
            "GET",
            "/api/v1/yara/rules/team.yar",
            &h.viewer,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(text.status, 200);
    assert!(text.header("content-type").starts_with("text/plain"));
    assert_eq!(text.text(), good_rule(&marker));
    // Audited.
    let audit = h
        .store
        .list_audit(&dozor_store::AuditQuery {
            action: Some("yara.rule.put".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "alice-admin");
    assert_eq!(audit[0].target.as_deref(), Some("yara-rule:team.yar"));

    // An agent: the version in its heartbeat answer, the rules it fetches.
    let (agent, agent_id) = h.enroll("ws-scan-1").await;
    let hb = agent.heartbeat("ws-scan-1").await;
    assert_eq!(hb["yara_rules_version"], version, "{hb}");
    let r = agent
        .send("GET", "/api/v1/agents/yara-rules", &[], Vec::new())
        .await;
    let rules = ok(&r);
    assert_eq!(rules["version"], version);
    assert_eq!(
        rules["files"],
        json!([{"name": RULE_FILE, "namespace": "server/team", "source": good_rule(&marker)}])
    );
    let etag = r.header("etag").to_owned();
    assert_eq!(etag, format!("\"{version}\""));
    let r = agent
        .send(
            "GET",
            "/api/v1/agents/yara-rules",
            &[("if-none-match", &etag)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 304);
    // Operators' tokens are not agent certificates.
    problem(
        &h.call(
            "GET",
            "/api/v1/agents/yara-rules",
            &h.admin,
            None,
            Vec::new(),
        )
        .await,
        401,
        "unauthorized",
    );

    // A sample: unknown, uploaded, scanned, known.
    let mut sample = b"MZ\x90\x00 some dropper bytes ".to_vec();
    sample.extend_from_slice(marker.as_bytes());
    sample.extend_from_slice(b" trailing bytes\n");
    let sha = sha256_hex(&sample);
    let r = agent
        .send("HEAD", &format!("/api/v1/samples/{sha}"), &[], Vec::new())
        .await;
    assert_eq!(r.status, 404);
    let answer = ok(&agent
        .upload("/home/bob/Downloads/invoice.exe", &sample, Some(&sha))
        .await);
    assert_eq!(answer["sha256"], sha);
    assert_eq!(answer["size"], sample.len());
    assert_eq!(answer["stored_new"], true);
    assert_eq!(answer["engines"], json!(["hashlist", "yara"]));
    assert_eq!(answer["errors"], json!([]));
    assert_eq!(answer["events"], 1);
    assert_eq!(answer["yara_rules_version"], version);
    let f = finding(&answer, "yara").expect("a YARA finding");
    assert_eq!(f["name"], "Dozor_Test_Dropper");
    assert_eq!(f["namespace"], "server/team");
    assert_eq!(f["severity"], "medium");
    assert_eq!(f["verdict"], "suspicious");
    assert_eq!(
        f["rule_id"],
        "dozor-scan/yara/server/team.Dozor_Test_Dropper"
    );
    // Kept once, mode 0600.
    let stored = h.data_dir.join("samples").join(&sha);
    assert_eq!(std::fs::read(&stored).unwrap(), sample);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let r = agent
        .send("HEAD", &format!("/api/v1/samples/{sha}"), &[], Vec::new())
        .await;
    assert_eq!(r.status, 200);

    // The alert: the rule's id and its meta's level, on the uploading agent.
    let alert = h
        .alert("dozor-scan/yara/server/team.Dozor_Test_Dropper")
        .await;
    assert_eq!(alert.level, Level::Medium);
    assert_eq!(alert.agent_id.as_deref(), Some(agent_id.as_str()));
    assert!(
        alert.tags.contains(&"dropper".to_owned()),
        "{:?}",
        alert.tags
    );
    let event = h
        .store
        .get_event(alert.event_ids[0])
        .await
        .unwrap()
        .expect("the finding event is stored");
    assert_eq!(event.doc["event"]["provider"], "dozor-server");
    assert_eq!(event.doc["event"]["agent_id_status"], "verified");
    assert_eq!(event.doc["dozor"]["scan"]["trigger"], "sample");
    assert_eq!(event.doc["agent"]["id"], agent_id);
    assert_eq!(event.doc["host"]["name"], "ws-scan-1");
    assert_eq!(event.doc["file"]["path"], "/home/bob/Downloads/invoice.exe");
    assert_eq!(event.doc["file"]["hash"]["sha256"], sha);

    // The same content again: not stored twice, counted, the alert folds.
    let again = ok(&agent
        .upload("C:\\Users\\bob\\invoice.exe", &sample, None)
        .await);
    assert_eq!(again["stored_new"], false);
    assert_eq!(again["uploads"], 2);
    let deadline = Instant::now() + Duration::from_secs(20);
    while h
        .alert("dozor-scan/yara/server/team.Dozor_Test_Dropper")
        .await
        .count
        < 2
    {
        assert!(Instant::now() < deadline, "the second finding did not fold");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Operators: the listing and the last verdict (analyst and admin only), never the bytes.
    let list = ok(&h
        .call("GET", "/api/v1/samples", &h.analyst, None, Vec::new())
        .await);
    assert_eq!(list["samples"][0]["sha256"], sha);
    assert_eq!(list["samples"][0]["uploads"], 2);
    assert_eq!(list["samples"][0]["first_agent_id"], agent_id);
    assert_eq!(
        list["samples"][0]["last_path"],
        "C:\\Users\\bob\\invoice.exe"
    );
    let one = ok(&h
        .call(
            "GET",
            &format!("/api/v1/samples/{sha}"),
            &h.admin,
            None,
            Vec::new(),
        )
        .await);
    assert_eq!(
        one["last_verdict"]["findings"][0]["rule_id"],
        "dozor-scan/yara/server/team.Dozor_Test_Dropper"
    );
    assert!(
        !one.to_string().contains(&marker),
        "the sample's bytes are not served"
    );
    problem(
        &h.call("GET", "/api/v1/samples", &h.viewer, None, Vec::new())
            .await,
        403,
        "forbidden",
    );
    let r = h
        .call(
            "HEAD",
            &format!("/api/v1/samples/{sha}"),
            &h.viewer,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 200, "operators may ask too");

    // Refusals: a wrong sha256, too large, no path, not an agent, no credential.
    let p = problem(
        &agent.upload("/tmp/x", b"other bytes", Some(&sha)).await,
        422,
        "sha256-mismatch",
    );
    assert_eq!(p["expected"], sha);
    let p = problem(
        &agent.upload("/tmp/big", &vec![0u8; 65 * 1024], None).await,
        413,
        "too-large",
    );
    assert_eq!(p["limit_name"], "scan.max_sample_bytes");
    assert_eq!(p["limit"], 64 * 1024);
    problem(
        &agent
            .send(
                "POST",
                "/api/v1/samples",
                &[("content-type", "application/octet-stream")],
                b"x".to_vec(),
            )
            .await,
        400,
        "invalid-parameter",
    );
    problem(
        &h.call(
            "POST",
            "/api/v1/samples?path=/x",
            &h.admin,
            Some("application/octet-stream"),
            b"x".to_vec(),
        )
        .await,
        403,
        "forbidden",
    );
    problem(
        &h.client()
            .send("POST", "/api/v1/samples?path=/x", &[], b"x".to_vec())
            .await
            .unwrap(),
        401,
        "unauthorized",
    );

    // Deleting the rule: a new version, the next sample is clean.
    let r = h
        .call(
            "DELETE",
            "/api/v1/yara/rules/team.yar",
            &h.admin,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let hb = agent.heartbeat("ws-scan-1").await;
    assert_ne!(hb["yara_rules_version"], version);
    let mut other = sample.clone();
    other.push(b'!');
    let answer = ok(&agent.upload("/tmp/other", &other, None).await);
    assert_eq!(answer["findings"], json!([]));
    assert_eq!(answer["events"], 0);
    problem(
        &h.call(
            "DELETE",
            "/api/v1/yara/rules/team.yar",
            &h.admin,
            None,
            Vec::new(),
        )
        .await,
        404,
        "not-found",
    );

    // A rule file placed in the directory by other means is picked up (and a broken one is
    // listed with its error, the rest kept).
    std::fs::write(
        h.data_dir.join("yara").join("dropped.yar"),
        good_rule(&marker),
    )
    .unwrap();
    std::fs::write(h.data_dir.join("yara").join("broken.yara"), broken).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        let list = ok(&h
            .call("GET", "/api/v1/yara/rules", &h.viewer, None, Vec::new())
            .await);
        if list["rules"].as_array().unwrap().len() == 2 {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "the directory change was not picked up: {list}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(list["rules"][0]["name"], "broken.yara");
    assert!(
        list["rules"][0]["error"]
            .as_str()
            .unwrap()
            .contains("broken.yara:4:"),
        "{list}"
    );
    assert_eq!(list["rules"][1]["name"], "dropped.yar");
    assert_eq!(list["rule_count"], 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_can_be_switched_off() {
    let h = Harness::start(&[("DOZOR_SCAN_SAMPLES", "off")]).await;
    let (agent, _) = h.enroll("ws-scan-off").await;
    let p = problem(
        &agent.upload("/tmp/x", b"bytes", None).await,
        403,
        "forbidden",
    );
    assert!(
        p["detail"].as_str().unwrap().contains("scan.samples"),
        "{p}"
    );
    assert!(
        std::fs::read_dir(h.data_dir.join("samples"))
            .unwrap()
            .next()
            .is_none()
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_beyond_the_quota_are_refused_with_507() {
    let h = Harness::start(&[
        ("DOZOR_SCAN_SAMPLES_QUOTA", "1MiB"),
        ("DOZOR_SCAN_MAX_SAMPLE_BYTES", "1MiB"),
    ])
    .await;
    let (agent, _) = h.enroll("ws-quota").await;
    let first = vec![1u8; 700 << 10];
    let r = agent.upload("/tmp/first", &first, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let p = problem(
        &agent
            .upload("/tmp/second", &vec![2u8; 700 << 10], None)
            .await,
        507,
        "quota-exceeded",
    );
    assert_eq!(p["limit_name"], "scan.samples_quota");
    assert!(
        p["detail"].as_str().unwrap().contains("samples use 700"),
        "{p}"
    );
    h.stop().await;
}

// ---------------------------------------------------------------- ClamAV

/// A real clamd whose database knows EICAR (as an MD5 hash signature computed here).
fn start_clamd(binary: &Path) -> TestClamd {
    let eicar = eicar();
    let md5 = dozor_scan::Digests::of_bytes(&eicar, dozor_scan::DigestSet::ALL)
        .md5_hex()
        .unwrap();
    TestClamd::start(
        binary,
        &[(
            "dozor-test.hdb",
            format!("{md5}:{}:Eicar-Test-Signature\n", eicar.len()),
        )],
        "1M",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clamd_findings_raise_alerts_and_clamd_down_is_reported() {
    let Some(binary) = find_clamd() else {
        eprintln!(
            "SKIPPED clamd_findings_raise_alerts_and_clamd_down_is_reported: no clamd binary \
             (install clamav-daemon, or set DOZOR_TEST_CLAMD)"
        );
        return;
    };
    let mut clamd = start_clamd(&binary);
    let address = clamd.address_text();
    // A known-bad list with one file's SHA-256.
    let lists = tempfile::tempdir().unwrap();
    let listed = format!("known bad content {}\n", std::process::id()).into_bytes();
    let known_bad = lists.path().join("known-bad.txt");
    std::fs::write(
        &known_bad,
        format!("{} Dozor.Test.KnownBad\n", sha256_hex(&listed)),
    )
    .unwrap();
    let h = Harness::start(&[
        ("DOZOR_SCAN_CLAMD", &address),
        ("DOZOR_SCAN_KNOWN_BAD", &known_bad.display().to_string()),
    ])
    .await;
    let (agent, agent_id) = h.enroll("ws-scan-2").await;

    // clamd is up: ready, and the check says so.
    let ready = h.client().get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["clamd"], "ok");

    // EICAR: ClamAV's finding raises an alert at high.
    let answer = ok(&agent.upload("/tmp/eicar.com", &eicar(), None).await);
    assert_eq!(answer["engines"], json!(["hashlist", "clamav"]));
    let f = finding(&answer, "clamav").expect("a ClamAV finding");
    assert_eq!(f["name"], "Eicar-Test-Signature.UNOFFICIAL");
    assert_eq!(f["severity"], "high");
    assert!(f["detail"].as_str().unwrap().starts_with("ClamAV "), "{f}");
    let alert = h
        .alert("dozor-scan/clamav/Eicar-Test-Signature.UNOFFICIAL")
        .await;
    assert_eq!(alert.level, Level::High);
    assert_eq!(alert.agent_id.as_deref(), Some(agent_id.as_str()));

    // A YARA rule for the next samples.
    let marker = format!("dozor-clamd-down-marker-{}", std::process::id());
    ok(&h.put_rule(RULE_FILE, &good_rule(&marker)).await);

    // clamd stops: uploads still answer, with YARA and hash-list findings and an error
    // naming clamd's address; /readyz stays ready and reports clamd degraded.
    clamd.stop();
    let mut sample = b"payload ".to_vec();
    sample.extend_from_slice(marker.as_bytes());
    let answer = ok(&agent.upload("/tmp/dropper.bin", &sample, None).await);
    assert_eq!(answer["engines"], json!(["hashlist", "yara", "clamav"]));
    assert!(finding(&answer, "yara").is_some(), "{answer}");
    let errors = answer["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{answer}");
    assert_eq!(errors[0]["engine"], "clamav");
    assert_eq!(errors[0]["unavailable"], true);
    assert!(
        errors[0]["message"].as_str().unwrap().contains(&address),
        "{answer}"
    );
    h.alert("dozor-scan/yara/server/team.Dozor_Test_Dropper")
        .await;

    let answer = ok(&agent.upload("/tmp/listed.bin", &listed, None).await);
    let f = finding(&answer, "hashlist").expect("a hash-list finding");
    assert_eq!(f["name"], "Dozor.Test.KnownBad");
    assert_eq!(f["severity"], "critical");
    assert_eq!(answer["errors"][0]["engine"], "clamav");
    let alert = h.alert("dozor-scan/hashlist/Dozor.Test.KnownBad").await;
    assert_eq!(alert.level, Level::Critical);

    let ready = h.client().get("/readyz").await;
    assert_eq!(
        ready.status,
        200,
        "clamd down is no reason to be unready: {}",
        ready.text()
    );
    let check = ready.json()["checks"]["clamd"].as_str().unwrap().to_owned();
    assert!(check.starts_with("degraded: "), "{check}");
    assert!(check.contains(&address), "{check}");
    h.stop().await;
}
