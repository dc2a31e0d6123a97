//! The server over real sockets: HTTPS with a client that pins the server's CA.

mod common;

use std::io::Write;

use common::*;
use serde_json::{Value, json};

fn event(id: &str) -> Value {
    json!({
        "@timestamp": "2026-05-01T12:00:00.123Z",
        "event": {"id": id, "kind": "event", "category": ["process"], "type": ["start"]},
        "host": {"name": "ws1"},
        "process": {"pid": 42, "executable": "/usr/bin/curl", "command_line": "curl x",
                    "parent": {"pid": 1, "executable": "/sbin/init"}}
    })
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn problem(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["status"], status);
    assert!(
        p["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:dozor:problem:")
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_pinned_ca_and_public_documents() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    assert!(server.tls);
    let client = server.client();

    let r = client.get("/healthz").await;
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let r = client.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["checks"]["queue"], "ok");

    let r = client.get("/api/v1/ca.pem").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), server.ca_pem);
    assert_eq!(
        r.text(),
        std::fs::read_to_string(dir.path().join("pki/ca.crt.pem")).unwrap()
    );
    assert!(r.text().starts_with("-----BEGIN CERTIFICATE-----"));

    let r = client.get("/api/v1/schema/event.json").await;
    assert_eq!(r.header("content-type"), "application/schema+json");
    assert_eq!(
        r.json()["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let r = client.get("/api/v1/openapi.json").await;
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/ingest"]["post"].is_object());

    let r = client.get("/nope").await;
    problem(&r, 404);
    let r = client.get("/api/v1/ingest").await;
    problem(&r, 405);
    assert_eq!(r.header("x-content-type-options"), "nosniff");

    // The same server name over 127.0.0.1 is in the certificate too, and nothing else is
    // trusted: a client without the CA fails the handshake.
    let untrusting = Client {
        addr: server.addr,
        tls: Some(connector_with_roots(rustls::RootCertStore::empty())),
    };
    let e = untrusting
        .send("GET", "/healthz", &[], vec![])
        .await
        .unwrap_err();
    assert!(e.starts_with("tls:"), "{e}");

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = Client {
        addr: server.addr,
        tls: None,
    };
    match plain.send("GET", "/healthz", &[], vec![]).await {
        Err(_) => {}
        Ok(r) => panic!("plain HTTP was answered: {} {}", r.status, r.text()),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_events_are_accepted_beside_invalid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let client = server.client();
    let first = new_id();
    let mut bad_id = event("not-a-uuid");
    bad_id["source"] = json!({"ip": "10.0.0.1", "port": 99999});
    let mut spoof = event(&new_id());
    spoof["agent"] = json!({"id": "agent-2"});
    let mut own = event(&new_id());
    own["agent"] = json!({"id": AGENT_ID, "version": "0.1.0"});
    let batch = json!([event(&first), bad_id, spoof, own, event(&first), 7]);
    let r = client
        .post(
            "/api/v1/ingest",
            "application/json",
            batch.to_string().into_bytes(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let report = r.json();
    assert_eq!(report["received"], 6);
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["rejected_events"], 3);
    let rejected = report["rejected"].as_array().unwrap();
    let at = |i: u64| -> Vec<&str> {
        rejected
            .iter()
            .filter(|r| r["index"] == i)
            .map(|r| r["pointer"].as_str().unwrap())
            .collect()
    };
    let mut one = at(1);
    one.sort();
    assert_eq!(one, vec!["/event/id", "/source/port"]);
    assert_eq!(at(2), vec!["/agent/id"]);
    assert_eq!(at(5), vec![""]);
    assert!(
        rejected.iter().any(|r| r["message"]
            .as_str()
            .unwrap()
            .contains("an agent may only send its own events")),
        "{rejected:?}"
    );

    let queued = server.sink.drain();
    assert_eq!(queued.len(), 2);
    for e in &queued {
        assert_eq!(e.event["agent"]["id"], AGENT_ID);
        assert!(e.event["event"]["ingested"].is_string());
    }
    assert_eq!(queued[0].id.to_string(), first);
    assert_eq!(queued[0].event["event"]["agent_id_status"], "missing");
    assert_eq!(queued[1].event["event"]["agent_id_status"], "verified");

    // The same events again: duplicates (the sink remembers their ids).
    let r = client
        .post(
            "/api/v1/ingest",
            "application/json",
            json!([event(&first)]).to_string().into_bytes(),
        )
        .await;
    assert_eq!(
        (r.json()["accepted"].clone(), r.json()["duplicates"].clone()),
        (json!(0), json!(1))
    );

    // Metrics count all of it.
    let m = client.metrics().await;
    assert!(
        m.header("content-type")
            .starts_with("application/openmetrics-text")
    );
    let text = m.text();
    for needle in [
        "dozor_ingest_events_accepted_total 2",
        "dozor_ingest_events_rejected_total 3",
        "dozor_ingest_events_duplicate_total 2",
        "dozor_queue_depth 0",
        "dozor_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/ingest\",status=\"202\"} 2",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_and_encodings() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let client = server.client();

    // Not JSON: 400 saying where.
    let r = client
        .post(
            "/api/v1/ingest",
            "application/json",
            b"[{\"a\": 1},\n {\"b\" 2}]".to_vec(),
        )
        .await;
    let p = problem(&r, 400);
    assert_eq!(
        (p["line"].clone(), p["column"].clone()),
        (json!(2), json!(7))
    );
    assert!(
        p["detail"].as_str().unwrap().contains("line 2, column 7"),
        "{p}"
    );

    // NDJSON: the bad line alone is rejected.
    let ndjson = format!("{}\n\n{{oops\n{}\n", event(&new_id()), event(&new_id()));
    let r = client
        .post(
            "/api/v1/ingest",
            "application/x-ndjson",
            ndjson.into_bytes(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let report = r.json();
    assert_eq!(
        (
            report["accepted"].clone(),
            report["rejected_events"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(report["rejected"][0]["index"], 1);
    assert!(
        report["rejected"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 3, column")
    );

    // gzip and zstd bodies.
    let token = format!("Bearer {AGENT_TOKEN}");
    for encoding in ["gzip", "zstd"] {
        let body = json!([event(&new_id()), event(&new_id())]).to_string();
        let data = match encoding {
            "gzip" => gzip(body.as_bytes()),
            _ => zstd::stream::encode_all(body.as_bytes(), 3).unwrap(),
        };
        let r = client
            .send(
                "POST",
                "/api/v1/ingest",
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", encoding),
                    ("authorization", &token),
                ],
                data,
            )
            .await
            .unwrap();
        assert_eq!(r.status, 202, "{encoding}: {}", r.text());
        assert_eq!(r.json()["accepted"], 2, "{encoding}");
    }

    // Corrupt compression, unknown encodings and types.
    let r = client
        .send(
            "POST",
            "/api/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("authorization", &token),
            ],
            b"this is not gzip".to_vec(),
        )
        .await
        .unwrap();
    problem(&r, 400);
    let r = client
        .send(
            "POST",
            "/api/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "br"),
                ("authorization", &token),
            ],
            b"[]".to_vec(),
        )
        .await
        .unwrap();
    problem(&r, 415);
    let r = client
        .post("/api/v1/ingest", "text/plain", b"[]".to_vec())
        .await;
    problem(&r, 415);
    let r = client
        .post("/api/v1/ingest", "application/json", b"42".to_vec())
        .await;
    problem(&r, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_413_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let client = server.client();
    let token = format!("Bearer {AGENT_TOKEN}");

    // A body over 64 KiB.
    let mut big = vec![b' '; 100 * 1024];
    big[0] = b'[';
    big[100 * 1024 - 1] = b']';
    let r = client.post("/api/v1/ingest", "application/json", big).await;
    let p = problem(&r, 413);
    assert_eq!(p["limit_name"], "limits.max_body_bytes");
    assert_eq!(p["limit"], 65536);
    assert!(p["detail"].as_str().unwrap().contains("64 KiB"), "{p}");

    // A gzip bomb: 16 MiB of zeros in ~16 KiB, stopped at 64 KiB of output.
    let bomb = gzip(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let r = client
        .send(
            "POST",
            "/api/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("authorization", &token),
            ],
            bomb,
        )
        .await
        .unwrap();
    let p = problem(&r, 413);
    assert_eq!(p["limit_name"], "limits.max_body_bytes");
    assert!(
        p["detail"].as_str().unwrap().contains("decompressed"),
        "{p}"
    );

    // A batch over 100 events.
    let batch: Vec<Value> = (0..101).map(|_| json!({})).collect();
    let r = client
        .post(
            "/api/v1/ingest",
            "application/json",
            json!(batch).to_string().into_bytes(),
        )
        .await;
    let p = problem(&r, 413);
    assert_eq!(p["limit_name"], "limits.max_batch_events");
    assert_eq!(p["limit"], 100);

    // The server is fine afterwards.
    assert_eq!(client.get("/healthz").await.status, 200);
    let m = client.metrics().await.text();
    assert!(
        m.contains("dozor_ingest_requests_refused_total{reason=\"too-large\"} 3"),
        "{m}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_back_pressure() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let client = server.client();
    let body = json!([event(&new_id())]).to_string().into_bytes();

    let r = client
        .send(
            "POST",
            "/api/v1/ingest",
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await
        .unwrap();
    problem(&r, 401);
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"dozor\"");
    let r = client
        .send(
            "POST",
            "/api/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer wrong"),
            ],
            body.clone(),
        )
        .await
        .unwrap();
    problem(&r, 401);
    assert!(r.header("www-authenticate").contains("invalid_token"));
    let r = client
        .send(
            "POST",
            "/api/v1/ingest",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {VIEWER_TOKEN}")),
            ],
            body.clone(),
        )
        .await
        .unwrap();
    problem(&r, 403);
    assert!(server.sink.is_empty());

    // The queue is full: 503 with Retry-After, and nothing is taken.
    server.sink.set_full(true);
    let r = client
        .post("/api/v1/ingest", "application/json", body.clone())
        .await;
    let p = problem(&r, 503);
    assert_eq!(r.header("retry-after"), "5");
    assert_eq!(p["retry_after"], 5);
    assert_eq!(p["type"], "urn:dozor:problem:queue-full");
    let r = client.get("/readyz").await;
    problem(&r, 503);
    server.sink.set_full(false);
    let r = client
        .post("/api/v1/ingest", "application/json", body)
        .await;
    assert_eq!(r.json()["accepted"], 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evtx_upload_is_idempotent() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared not found");
        return;
    };
    let evtx = std::fs::read(shared.join("datasets/evtx-samples/security.evtx")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let client = server.client();

    let r = client
        .post(
            "/api/v1/ingest/evtx",
            "application/octet-stream",
            evtx.clone(),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let report = r.json();
    assert_eq!(report["received"], 2261, "{report}");
    assert_eq!(report["accepted"], 2261, "{report}");
    assert_eq!(report["rejected"], json!([]));
    let queued = server.sink.drain();
    assert_eq!(queued.len(), 2261);
    let logon = queued
        .iter()
        .find(|e| e.event["winlog"]["event_id"] == 4624)
        .unwrap();
    assert_eq!(logon.event["winlog"]["channel"], "Security");
    assert_eq!(logon.event["agent"]["id"], AGENT_ID);
    assert!(logon.event["winlog"]["event_data"]["TargetUserName"].is_string());
    assert_eq!(logon.event["event"]["category"], json!(["authentication"]));
    let expected = dozor_server::winlog::windows_event_id(
        logon.event["winlog"]["computer"].as_str().unwrap(),
        "Security",
        logon.event["winlog"]["record_id"].as_u64().unwrap(),
    );
    assert_eq!(logon.id, expected);

    // Again, gzip-compressed: every record is a duplicate.
    let r = client
        .send(
            "POST",
            "/api/v1/ingest/evtx",
            &[
                ("content-type", "application/octet-stream"),
                ("content-encoding", "gzip"),
                ("authorization", &format!("Bearer {AGENT_TOKEN}")),
            ],
            gzip(&evtx),
        )
        .await
        .unwrap();
    let report = r.json();
    assert_eq!(
        (report["accepted"].clone(), report["duplicates"].clone()),
        (json!(0), json!(2261)),
        "{report}"
    );

    // Windows event XML, and something that is neither.
    let xml = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>
<Provider Name="Microsoft-Windows-Sysmon"/><EventID>1</EventID><TimeCreated SystemTime="2024-01-01T00:00:00.000Z"/>
<EventRecordID>77</EventRecordID><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>pc1</Computer></System>
<EventData><Data Name="Image">C:\Windows\System32\cmd.exe</Data><Data Name="CommandLine">cmd /c whoami</Data>
<Data Name="ParentImage">C:\Windows\explorer.exe</Data><Data Name="User">CORP\bob</Data></EventData></Event>"#;
    let r = client
        .post(
            "/api/v1/ingest/evtx",
            "application/xml",
            xml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(r.json()["accepted"], 1, "{}", r.text());
    let e = &server.sink.drain()[0].event;
    assert_eq!(e["process"]["executable"], "C:\\Windows\\System32\\cmd.exe");
    assert_eq!(e["process"]["command_line"], "cmd /c whoami");
    assert_eq!(
        e["process"]["parent"]["executable"],
        "C:\\Windows\\explorer.exe"
    );
    assert_eq!(e["user"]["name"], "bob");
    assert_eq!(
        e["winlog"]["event_data"]["Image"],
        "C:\\Windows\\System32\\cmd.exe"
    );
    let r = client
        .post(
            "/api/v1/ingest/evtx",
            "application/octet-stream",
            b"MZ not a log".to_vec(),
        )
        .await;
    problem(&r, 400);

    // The spool directory is clean afterwards (the upload's file is removed when its
    // decoder task ends, which may be just after the answer).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_evtx_records_are_reported_by_index() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared not found");
        return;
    };
    let evtx =
        std::fs::read(shared.join("datasets/evtx-samples/sample-with-zero-data-size-event.evtx"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let r = server
        .client()
        .post("/api/v1/ingest/evtx", "application/octet-stream", evtx)
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let report = r.json();
    let accepted = report["accepted"].as_u64().unwrap();
    let rejected = report["rejected_events"].as_u64().unwrap();
    assert!(accepted > 0, "{report}");
    assert_eq!(report["received"].as_u64().unwrap(), accepted + rejected);
    for r in report["rejected"].as_array().unwrap() {
        assert!(r["index"].is_u64());
        assert!(!r["message"].as_str().unwrap().contains(".spool"), "{r}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_persist_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let first_ca = server.ca_pem.clone();
    let pki = dir.path().join("pki");
    let server_key = std::fs::read(pki.join("server.key.pem")).unwrap();
    server.stop().await;

    let server = TestServer::start(dir.path(), test_env(&[])).await;
    assert_eq!(server.ca_pem, first_ca);
    assert_eq!(
        std::fs::read(pki.join("server.key.pem")).unwrap(),
        server_key
    );
    // A client that pinned the CA the first time still connects.
    let client = Client {
        addr: server.addr,
        tls: Some(pinned_connector(&first_ca)),
    };
    assert_eq!(client.get("/healthz").await.status, 200);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["ca.key.pem", "server.key.pem"] {
            let mode = std::fs::metadata(pki.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    server.stop().await;

    // A new hostname: same CA, new server certificate.
    let server = TestServer::start(
        dir.path(),
        test_env(&[("DOZOR_TLS_HOSTNAMES", "dozor.example")]),
    )
    .await;
    assert_eq!(server.ca_pem, first_ca);
    assert_ne!(
        std::fs::read(pki.join("server.key.pem")).unwrap(),
        server_key
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[("DOZOR_TLS", "off")])).await;
    assert!(!server.tls);
    let client = server.client();
    assert!(client.tls.is_none());
    let r = client.get("/healthz").await;
    assert_eq!(r.status, 200);
    // The CA exists all the same (for agent enrollment) and is served.
    assert_eq!(client.get("/api/v1/ca.pem").await.text(), server.ca_pem);
    server.stop().await;

    // The --insecure-plain-http flag does the same; without any of them it is HTTPS.
    let args = dozor_server::ServerArgs {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_owned()),
        insecure_plain_http: true,
        ..Default::default()
    };
    let config = dozor_server::Config::load(&args, Vec::new()).unwrap();
    assert!(!config.tls.enabled);
    assert!(common::config(dir.path(), Vec::new()).unwrap().tls.enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_choose_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let env = test_env(&[
        ("DOZOR_ROLE", "worker"),
        ("DOZOR_BUS", "redis://127.0.0.1:6379"),
    ]);
    let server = TestServer::start(dir.path(), env).await;
    let client = server.client();
    assert_eq!(client.get("/healthz").await.status, 200);
    let r = client
        .post("/api/v1/ingest", "application/json", b"[]".to_vec())
        .await;
    problem(&r, 404);
    problem(&client.get("/api/v1/ca.pem").await, 404);
    server.stop().await;

    let e = common::config(dir.path(), vec![("DOZOR_ROLE".into(), "api".into())]).unwrap_err();
    assert_eq!(e.key(), Some("role"));
    assert!(
        e.to_string().contains("environment variable DOZOR_ROLE"),
        "{e}"
    );
}

/// Every record of every sample log converts to an event that passes the schema.
#[test]
fn every_sample_record_converts_to_a_valid_event() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared not found");
        return;
    };
    let validator = dozor_server::schema::EventValidator::new().unwrap();
    let mut converted = 0;
    for entry in std::fs::read_dir(shared.join("datasets/evtx-samples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("evtx") {
            continue;
        }
        let Ok(events) = dozor_decode::read_path(&path, &dozor_decode::ReadOptions::default())
        else {
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let damaged = name.contains("bad") || name.contains("zero");
        for flat in events.flatten() {
            // Damaged samples have records without a time; those are rejected, not converted.
            let event = match dozor_server::winlog::to_event(&flat) {
                Ok(event) => event,
                Err(_) if damaged => continue,
                Err(e) => panic!("{name}: {e}: {flat:?}"),
            };
            let errors = validator.validate(&event);
            assert!(
                errors.is_empty(),
                "{}: {errors:?}\n{event:#}",
                path.display()
            );
            converted += 1;
        }
    }
    assert!(converted > 5000, "{converted}");
}

/// A request refused before its body is read (here: no credential) still gets its answer:
/// the server reads and drops the rest of the body (bounded) instead of closing the
/// connection under a client that is still sending, which the client saw as a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_refusal_reaches_a_client_still_sending_its_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), test_env(&[])).await;
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = pinned_connector(&server.ca_pem)
        .connect(name, tcp)
        .await
        .unwrap();
    // The operator API refuses before reading (ingest reads the body itself).
    let body = vec![b' '; 70_000];
    let head = format!(
        "POST /api/v1/rules/test HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    // The 401 is decided from the head alone; the body comes after it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tls.write_all(&body)
        .await
        .expect("the server still takes the body");
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("the answer, not a reset");
        assert!(n > 0, "connection closed without an answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    // 401 (no credential), or 503 where this test server has no operator API.
    assert!(
        text.starts_with("HTTP/1.1 401") || text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
    server.stop().await;
}
