//! Threat-intelligence exchange (issue 14) over real HTTPS with a real SQLite store:
//!
//! - `POST /api/v1/intel/import`: every STIX 2.x example of `../shared/intel/stix2-examples`
//!   and the MISP files of `../shared/fixtures/misp` (event, feed event, index listing, MISP's
//!   STIX), CSV and freetext — the counts, the sniffed format and every problem reported
//!   while the good items beside it are stored; the refusals (empty, wrong format, bad
//!   parameters, a viewer).
//! - `GET /api/v1/intel/export/stix` and the MISP feed of Dozor's own indicators: exported
//!   and read back into a fresh server (STIX by import, the feed as a `misp_feed` source
//!   synced from its feeds directory) with the same values; the feed's event uuid is stable.
//! - The agents' hash rule: a sha256 indicator reaches `GET /api/v1/agents/yara-rules` as
//!   `dozor-intel-hashes.yar`, its version is the heartbeat's, the served rule detects the
//!   file; disabling the indicator takes the file away again; the API can't change it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, NoRules, Response, api_token, enroll_agent, pinned_connector, test_env};
use dozor_server::{ApiState, MemorySink, Server, ServerError, Services};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{IocQuery, NewIntelMatch, NewIoc, Role, Store, StoreConfig};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
}

impl Harness {
    async fn start() -> Harness {
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
        let config = common::config(&data_dir, test_env(&[])).unwrap();
        let services = Services::new(
            Arc::new(MemorySink::new(1000)),
            Arc::new(dozor_server::StoreTokens(store.clone())),
        )
        .with_api(Arc::new(ApiState {
            store: store.clone(),
            rules: Arc::new(NoRules),
            notices: tokio::sync::broadcast::channel(64).0,
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

    async fn get(&self, path: &str, token: &str) -> Response {
        self.call("GET", path, token, None, Vec::new()).await
    }

    async fn import(&self, query: &str, bytes: &[u8]) -> Response {
        self.call(
            "POST",
            &format!("/api/v1/intel/import{query}"),
            &self.analyst,
            Some("application/octet-stream"),
            bytes.to_vec(),
        )
        .await
    }

    async fn json(&self, method: &str, path: &str, token: &str, body: Value) -> Response {
        self.call(
            method,
            path,
            token,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// `(kind, value)` of every stored indicator of `source` (every one without).
    async fn values(&self, source: Option<&str>) -> BTreeSet<(String, String)> {
        self.store
            .list_iocs(&IocQuery {
                source: source.map(str::to_owned),
                after_id: Some(0),
                limit: 10_000,
                ..IocQuery::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|i| (i.kind, i.value))
            .collect()
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.handle.take().unwrap())
            .await
            .expect("server stopped in time")
            .unwrap()
            .unwrap();
    }
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

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intel_import_reads_stix_misp_csv_and_freetext_and_reports_problems() {
    let h = Harness::start().await;

    // Refusals first.
    problem(
        &h.call(
            "POST",
            "/api/v1/intel/import",
            &h.viewer,
            Some("text/plain"),
            b"198.51.100.1".to_vec(),
        )
        .await,
        403,
        "forbidden",
    );
    problem(&h.import("", b" \n").await, 422, "invalid-import");
    let p = problem(
        &h.import("", b"{\"hello\": 1}").await,
        422,
        "invalid-import",
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("neither a STIX bundle"),
        "{p}"
    );
    problem(
        &h.import("?format=stix", b"1.2.3.4,x\n").await,
        422,
        "invalid-import",
    );
    let p = problem(
        &h.import("?format=yaml", b"x").await,
        400,
        "invalid-parameter",
    );
    assert_eq!(p["parameter"], "format");
    problem(
        &h.import("?source=.hidden", b"x").await,
        400,
        "invalid-parameter",
    );
    problem(&h.import("?sauce=x", b"x").await, 400, "invalid-parameter");
    assert!(h.values(None).await.is_empty(), "refusals stored nothing");

    // CSV (sniffed) and freetext: the default source name, bad lines reported.
    let r = ok(&h
        .import(
            "",
            b"# a list\n198.51.100.7,scanner\nnot an ioc,x\nevil.example,c2\n",
        )
        .await);
    assert_eq!(
        (
            r["source"].as_str(),
            r["format"].as_str(),
            r["added"].as_u64()
        ),
        (Some("import"), Some("csv"), Some(2))
    );
    assert_eq!(
        (r["status"].as_str(), r["skipped"].as_u64()),
        (Some("partial"), Some(1))
    );
    assert!(
        r["skipped_examples"][0]
            .as_str()
            .unwrap()
            .starts_with("line 3:"),
        "{r}"
    );
    let r = ok(&h
        .import(
            "?source=notes&format=freetext",
            b"seen hxxp://evil[.]example/x today\n",
        )
        .await);
    assert_eq!(
        (r["format"].as_str(), r["added"].as_u64()),
        (Some("freetext"), Some(1))
    );
    let audit = h
        .store
        .list_audit(&dozor_store::AuditQuery::default())
        .await
        .unwrap();
    let imports: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "intel.import")
        .collect();
    assert_eq!(imports.len(), 2);
    assert_eq!(imports[0].actor, "bob-analyst");

    let Some(shared) = common::shared_dir() else {
        eprintln!("skipped the shared STIX/MISP files: ../shared is absent");
        h.stop().await;
        return;
    };

    // Every STIX example: the indicators the parser gives are stored, every problem is
    // reported (5 over the 8 files: 2 × MATCHES, 2 × AND, one bad OR branch).
    let mut files = Vec::new();
    json_files(&shared.join("intel/stix2-examples/examples"), &mut files);
    files.sort();
    assert_eq!(files.len(), 8);
    let mut want = BTreeSet::new();
    let mut skipped = 0;
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let batch = dozor_intel_sources::stix::parse_bundle("x", &bytes, "stix-examples").unwrap();
        want.extend(
            batch
                .iocs
                .iter()
                .map(|i| (i.kind.to_string(), i.value.clone())),
        );
        let r = ok(&h.import("?source=stix-examples", &bytes).await);
        assert_eq!(r["format"], "stix", "{}", file.display());
        assert_eq!(
            r["skipped"].as_u64(),
            Some(batch.skipped.len() as u64),
            "{r}"
        );
        assert_eq!(
            r["skipped_examples"].as_array().unwrap().len(),
            batch.skipped.len(),
            "{r}"
        );
        skipped += batch.skipped.len();
    }
    assert_eq!(skipped, 5);
    assert_eq!(h.values(Some("stix-examples")).await, want);
    assert!(want.contains(&("ip".to_owned(), "10.0.0.0".to_owned())));

    // MISP: the feed event (5 indicators, 4 attributes that are no indicators ignored), the
    // bare event (the url; its text ignored), an events/index listing (nothing; reported),
    // MISP's STIX. Ignored types leave the status `ok`.
    let misp = shared.join("fixtures/misp");
    let cases = [
        ("57c4445b-c548-4654-af0b-4be3950d210f.json", "misp", 5, 0, 4),
        ("misp_event.json", "misp", 1, 0, 1),
        ("search_index_result.json", "misp", 0, 1, 0),
        ("stix2.json", "stix", 1, 0, 0),
    ];
    for (name, format, added, skipped, ignored) in cases {
        let r = ok(&h
            .import(
                "?source=misp-files",
                &std::fs::read(misp.join(name)).unwrap(),
            )
            .await);
        assert_eq!(r["format"], format, "{name}: {r}");
        assert_eq!(r["added"].as_u64(), Some(added), "{name}: {r}");
        assert_eq!(r["skipped"].as_u64(), Some(skipped), "{name}: {r}");
        assert_eq!(r["ignored"].as_u64(), Some(ignored), "{name}: {r}");
        let status = if skipped == 0 { "ok" } else { "partial" };
        assert_eq!(r["status"], status, "{name}: {r}");
    }
    let stored = h.values(Some("misp-files")).await;
    assert!(stored.contains(&(
        "url".into(),
        "http://fake.website.com/malware/is/here".into()
    )));
    assert!(
        stored.contains(&("filename".into(), "3z4wng9603it23y.exe".into()))
            || stored
                .iter()
                .any(|(k, v)| k == "filename" && v.eq_ignore_ascii_case("3Z4wnG9603it23y.exe"))
    );
    // The same file again changes nothing.
    let again = ok(&h
        .import(
            "?source=misp-files",
            &std::fs::read(misp.join("misp_event.json")).unwrap(),
        )
        .await);
    assert_eq!(
        (again["added"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(1))
    );
    h.stop().await;
}

/// Records a match of indicator `id` (a sighting).
async fn sight(store: &dyn Store, id: i64, event: &str) {
    store
        .record_intel_matches(
            &[NewIntelMatch {
                ioc_id: id,
                event_id: event.into(),
                field: "destination.ip".into(),
                observed: "x".into(),
                agent_id: Some("agent-1".into()),
                event_ts: 1_764_900_000_000,
                retro: false,
                alerted: true,
                sighting: "none".into(),
            }],
            dozor_store::now_ms(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intel_exports_read_back_into_a_fresh_server() {
    let h = Harness::start().await;
    let manual = [
        ("domain", "c2.evil-example.net"),
        ("ip", "203.0.113.9"),
        ("url", "http://evil-example.net/drop"),
        (
            "sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        ("md5", "098f6bcd4621d373cade4e832627b4f6"),
        ("email", "boss@evil-example.net"),
        ("filename", "invoice.exe"),
        ("imphash", "f34d5f2d4577ed6d9ceec516c1f5a744"),
    ];
    for (kind, value) in manual {
        let r = h
            .json(
                "POST",
                "/api/v1/intel/iocs",
                &h.analyst,
                json!({"kind": kind, "value": value, "tags": ["tlp:green", "campaign-x"],
                       "confidence": 80}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    // A feed's indicators: one matched (so Dozor's own), one not.
    let feed = |v: &str| NewIoc {
        kind: "ip".into(),
        value: v.into(),
        misp_type: Some("ip-dst".into()),
        to_ids: true,
        tags: vec![],
        confidence: None,
        first_seen: None,
        last_seen: None,
        expires: None,
        object_ids: vec![],
        warninglists: vec![],
    };
    let report = h
        .store
        .upsert_iocs(
            "some-feed",
            &[feed("198.51.100.50"), feed("198.51.100.51")],
            1,
        )
        .await
        .unwrap();
    sight(h.store.as_ref(), report.added_ids[0], "e-1").await;
    sight(h.store.as_ref(), report.added_ids[0], "e-2").await;

    // STIX: everything but the imphash (no STIX pattern), reported in the headers.
    let r = h.get("/api/v1/intel/export/stix", &h.viewer).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .starts_with("application/stix+json")
    );
    assert_eq!(r.header("x-dozor-exported"), "9");
    assert_eq!(r.header("x-dozor-skipped"), "1");
    assert_eq!(r.header("x-dozor-truncated"), "false");
    assert!(
        r.header("x-dozor-skipped-examples")
            .starts_with("imphash:f34d5f2d")
    );
    let bundle = r.text();
    let doc: Value = serde_json::from_str(&bundle).unwrap();
    assert_eq!(doc["type"], "bundle");
    // Filters: one kind.
    let r = h
        .get(
            "/api/v1/intel/export/stix?kind=domain&active=true",
            &h.viewer,
        )
        .await;
    assert_eq!(r.header("x-dozor-exported"), "1");
    problem(
        &h.get("/api/v1/intel/export/stix?kind=nope", &h.viewer)
            .await,
        400,
        "invalid-parameter",
    );

    // The MISP feed: the manual indicators and the matched one, with its sightings.
    let manifest = ok(&h
        .get("/api/v1/intel/export/misp-feed/manifest.json", &h.viewer)
        .await);
    let uuids: Vec<&String> = manifest.as_object().unwrap().keys().collect();
    assert_eq!(uuids.len(), 1);
    let uuid = uuids[0].clone();
    assert_eq!(
        uuid,
        dozor_server::intel::exchange::feed_event_uuid(&h.ca_pem)
    );
    let event = ok(&h
        .get(
            &format!("/api/v1/intel/export/misp-feed/{uuid}.json"),
            &h.viewer,
        )
        .await);
    let attrs = event["Event"]["Attribute"].as_array().unwrap();
    assert_eq!(attrs.len(), 9, "8 manual + 1 matched: {event}");
    let sighted = attrs
        .iter()
        .find(|a| a["value"] == "198.51.100.50")
        .unwrap();
    assert_eq!(
        sighted["Sighting"].as_array().map(Vec::len),
        Some(2),
        "{sighted}"
    );
    assert!(
        !attrs.iter().any(|a| a["value"] == "198.51.100.51"),
        "not matched: not own"
    );
    let hashes = h
        .get("/api/v1/intel/export/misp-feed/hashes.csv", &h.viewer)
        .await;
    assert_eq!(hashes.status, 200);
    assert_eq!(hashes.header("content-type"), "text/csv");
    let hashes = hashes.text();
    assert_eq!(hashes.lines().count(), 9);
    assert!(hashes.lines().all(|l| l.ends_with(&format!(",{uuid}"))));
    // Stable: the same event again (same uuid and timestamp).
    let again = ok(&h
        .get("/api/v1/intel/export/misp-feed/manifest.json", &h.viewer)
        .await);
    assert_eq!(again, manifest);
    problem(
        &h.get(
            "/api/v1/intel/export/misp-feed/00000000-0000-4000-8000-000000000000.json",
            &h.viewer,
        )
        .await,
        404,
        "not-found",
    );
    problem(
        &h.get(
            "/api/v1/intel/export/misp-feed/manifest.json",
            "no-such-token",
        )
        .await,
        401,
        "unauthorized",
    );
    let own: BTreeSet<(String, String)> = manual
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("ip".to_owned(), "198.51.100.50".to_owned())])
        .collect();

    // Read back into a fresh server: the bundle by import, the feed as a synced source.
    let fresh = Harness::start().await;
    let r = ok(&fresh
        .call(
            "POST",
            "/api/v1/intel/import?source=from-stix",
            &fresh.admin,
            Some("application/stix+json"),
            bundle.into_bytes(),
        )
        .await);
    assert_eq!(
        (
            r["format"].as_str(),
            r["added"].as_u64(),
            r["skipped"].as_u64()
        ),
        (Some("stix"), Some(9), Some(0))
    );
    let mut no_imphash = h.values(None).await;
    no_imphash.retain(|(k, _)| k != "imphash");
    assert_eq!(no_imphash.len(), 9);
    assert_eq!(fresh.values(Some("from-stix")).await, no_imphash);
    let tags: Vec<String> = fresh
        .store
        .find_ioc("domain", "c2.evil-example.net")
        .await
        .unwrap()
        .unwrap()
        .tags;
    assert!(
        tags.contains(&"tlp:green".to_owned()) && tags.contains(&"campaign-x".to_owned()),
        "{tags:?}"
    );

    let dir = fresh.data_dir.join("intel-feeds/dozor-peer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    std::fs::write(dir.join(format!("{uuid}.json")), event.to_string()).unwrap();
    std::fs::write(dir.join("hashes.csv"), &hashes).unwrap();
    let r = fresh
        .json(
            "PUT",
            "/api/v1/intel/sources/dozor-peer",
            &fresh.admin,
            json!({"spec": {"kind": "misp_feed", "location": "dozor-peer"}, "interval_secs": 0}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = ok(&fresh
        .json(
            "POST",
            "/api/v1/intel/sources/dozor-peer/sync",
            &fresh.analyst,
            json!({}),
        )
        .await);
    // The imphash is new (STIX could not carry it); the rest came with the bundle.
    assert_eq!(
        (r["status"].as_str(), r["added"].as_u64()),
        (Some("ok"), Some(1)),
        "{r}"
    );
    assert_eq!(
        r["updated"].as_u64(),
        Some(8),
        "known from the STIX import: {r}"
    );
    assert_eq!(fresh.values(Some("dozor-peer")).await, own);
    let ioc = fresh
        .store
        .find_ioc("md5", "098f6bcd4621d373cade4e832627b4f6")
        .await
        .unwrap()
        .unwrap();
    assert!(ioc.sources.iter().any(|s| {
        s.name == "dozor-peer"
            && s.object_ids
                .iter()
                .any(|o| o == &format!("misp-event:{uuid}"))
    }));
    fresh.stop().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intel_hash_indicators_reach_the_agents_yara_rule() {
    let h = Harness::start().await;
    let client = h.client();
    let (_, agent) = enroll_agent(
        h.store.as_ref(),
        &client,
        &h.ca_pem,
        json!({"hostname": "ws-intel-1", "os_type": "linux", "os_name": null, "os_version": null,
               "arch": null, "agent_version": "0.1.0", "ips": []}),
    )
    .await;
    let rules = |agent: &Client| {
        let agent = agent.clone();
        async move {
            let r = agent
                .send("GET", "/api/v1/agents/yara-rules", &[], Vec::new())
                .await
                .unwrap();
            ok(&r)
        }
    };
    let empty = rules(&agent).await;
    assert_eq!(empty["files"], json!([]));

    let payload = b"MZ... a dropper Dozor's intelligence knows".to_vec();
    let sha256: String = ring::digest::digest(&ring::digest::SHA256, &payload)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let r = h
        .json(
            "POST",
            "/api/v1/intel/iocs",
            &h.analyst,
            json!({"kind": "sha256", "value": sha256.to_uppercase()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    // Not for detection: not in the rule.
    h.json(
        "POST",
        "/api/v1/intel/iocs",
        &h.analyst,
        json!({"kind": "md5", "value": "098f6bcd4621d373cade4e832627b4f6", "to_ids": false}),
    )
    .await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let served = loop {
        let doc = rules(&agent).await;
        let file = doc["files"]
            .as_array()
            .and_then(|files| files.iter().find(|f| f["name"] == "dozor-intel-hashes.yar"))
            .cloned();
        if let Some(file) = file {
            break (doc["version"].as_str().unwrap().to_owned(), file);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the hash rule"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (version, file) = served;
    assert_eq!(file["namespace"], "server/dozor-intel-hashes");
    let source = file["source"].as_str().unwrap();
    assert!(source.contains(&sha256), "{source}");
    assert!(
        !source.contains("098f6bcd4621d373cade4e832627b4f6"),
        "to_ids off: {source}"
    );
    // Operators see it beside their rule files; the API does not change it.
    let list = ok(&h.get("/api/v1/yara/rules", &h.viewer).await);
    assert_eq!(list["version"], version.as_str());
    assert_eq!(list["rules"][0]["name"], "dozor-intel-hashes.yar");
    assert!(list["rules"][0]["error"].is_null(), "{list}");
    problem(
        &h.call(
            "PUT",
            "/api/v1/yara/rules/dozor-intel-hashes.yar",
            &h.admin,
            Some("text/plain"),
            b"rule x { condition: false }".to_vec(),
        )
        .await,
        409,
        "conflict",
    );
    problem(
        &h.call(
            "DELETE",
            "/api/v1/yara/rules/dozor-intel-hashes.yar",
            &h.admin,
            None,
            Vec::new(),
        )
        .await,
        409,
        "conflict",
    );

    // The agent compiles what it is served, in the namespace given: the file is found.
    let load = dozor_scan::yara::YaraRules::compile_sources(&[(
        file["namespace"].as_str().unwrap().to_owned(),
        source.to_owned(),
    )]);
    assert!(load.errors.is_empty(), "{:?}", load.errors);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoice.pdf.exe");
    std::fs::write(&path, &payload).unwrap();
    let report = dozor_scan::FileScanner::default()
        .with_yara(load.rules)
        .scan_file(&path);
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(
        report.findings[0].rule_id(),
        "dozor-scan/yara/server/dozor-intel-hashes.sha256_0001"
    );

    // Disabled: the rule goes, and with it the version agents are told.
    let r = h
        .json(
            "POST",
            &format!("/api/v1/intel/iocs/{id}/enabled"),
            &h.analyst,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let doc = rules(&agent).await;
        if doc["files"].as_array().is_some_and(Vec::is_empty) {
            break doc;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the hash rule to go"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(after["version"].as_str(), Some(version.as_str()));
    assert_eq!(after["version"], empty["version"]);
    h.stop().await;
}
