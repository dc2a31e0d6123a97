//! The real `dozor server` and the real `dozor-agent` on this machine (127.0.0.1, ephemeral
//! port, temp directories): enrollment, a process / file / socket / auth line the test makes
//! arriving as events, a 30 s server outage with every event stored exactly once, offline
//! detection, revocation, and forged or expired credentials refused; an agent sending
//! protobuf batches.

#![cfg(target_os = "linux")]

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn agent_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let auth_log = dir.path().join("auth.log");
    std::fs::write(&auth_log, "").unwrap();
    let port = free_port();
    // Offline only after 2 minutes here, so the 30 s outage below raises no alert.
    let env = [
        ("DOZOR_AGENT_HEARTBEAT_INTERVAL", "1s"),
        ("DOZOR_AGENT_DEGRADED_AFTER", "5s"),
        ("DOZOR_AGENT_OFFLINE_AFTER", "120s"),
    ];
    // A Linux Sigma rule on the agent's process events (routed by the built-in mapping:
    // product linux + process_creation → host.os.type, event.category, ECS field names).
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("e2e.yml"),
        "title: E2E sleeper\nid: 5b7c2f4e-0000-4000-8000-0000000000e2\nlevel: medium\n\
         logsource: {product: linux, category: process_creation}\n\
         detection:\n  sel:\n    Image|endswith: '/sleep'\n    CommandLine|contains: ' 3.'\n  condition: sel\n",
    )
    .unwrap();
    let server = start_server(&data, port, &env);
    let admin = server
        .token
        .clone()
        .expect("the first start prints an admin token");
    let url = server.url.clone();
    let ca = data.join("pki").join("ca.crt.pem");
    let config = write_config(dir.path(), &watched, &auth_log);

    // --- enrollment: bad tokens are refused with a reason, a good one works once per use.
    let (code, _, err) = dozor(
        &["tokens", "create", "--expires", "1h", "--uses", "0"],
        &data,
    );
    assert_ne!(code, 0, "--uses 0 is refused: {err}");
    let expiring = enrollment_token(&data, &["--expires", "1s", "--uses", "5"]);
    let token = enrollment_token(&data, &["--expires", "24h", "--uses", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    let enroll = |token: &str| {
        agent_cmd(&config)
            .args(["enroll", "--server", &url, "--token", token, "--ca-file"])
            .arg(&ca)
            .output()
            .expect("enroll")
    };
    let out = enroll(&expiring);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expired"), "{err}");
    let out = enroll("dze_forged0000000000000000000000000000000000000");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid"));
    // A wrong CA pin is refused before anything is sent.
    let out = agent_cmd(&config)
        .args(["enroll", "--server", &url, "--token", &token, "--ca-sha256"])
        .arg("00".repeat(32))
        .output()
        .expect("enroll");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to enroll"));
    let out = enroll(&token);
    assert_succeeded(&out, "enroll");
    let out2 = enroll(&token);
    assert!(!out2.status.success(), "enrolled hosts need --force");
    let identity_dir = dir.path().join("state").join("identity");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(identity_dir.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the private key is 0600");
    }
    let agent_id = enrolled_agent_id(&config);

    // --- the agent runs and shows up online.
    let agent = start_agent(&config, &dir.path().join("agent-1.log"));
    wait_for("the agent to be online", Duration::from_secs(30), || {
        let a = api(&url, &ca, &admin, &format!("/api/v1/agents/{agent_id}"));
        (a["status"] == "online" && a["last_heartbeat"]["resources"].is_object()).then_some(())
    });

    // --- a process the test starts: command line and parent.
    let marker = format!("3.{}", std::process::id());
    let mut sleeper = Command::new("/bin/sleep").arg(&marker).spawn().unwrap();
    let proc_event = wait_for("the process start event", Duration::from_secs(30), || {
        events(
            &url,
            &ca,
            &admin,
            &agent_id,
            &format!("event.category:process AND event.type:start AND process.args:{marker}"),
        )
        .into_iter()
        .next()
    });
    let doc = &proc_event["doc"];
    assert_eq!(
        doc["process"]["command_line"],
        format!("/bin/sleep {marker}")
    );
    assert_eq!(doc["process"]["parent"]["pid"], std::process::id());
    assert_eq!(doc["process"]["pid"], sleeper.id());
    assert_eq!(doc["agent"]["id"], agent_id);
    assert_eq!(doc["event"]["agent_id_status"], "verified");
    let exe = std::fs::canonicalize("/bin/sleep").unwrap();
    assert_eq!(
        doc["process"]["hash"]["sha256"],
        sha256_hex(&std::fs::read(&exe).unwrap())
    );
    let _ = sleeper.wait();
    // ... and the server's pipeline turned it into an alert of that rule on this agent.
    let alert = wait_for("the Sigma alert", Duration::from_secs(30), || {
        api(
            &url,
            &ca,
            &admin,
            "/api/v1/alerts?rule=5b7c2f4e-0000-4000-8000-0000000000e2",
        )["alerts"]
            .as_array()
            .and_then(|a| a.first().cloned())
    });
    assert_eq!(alert["agent_id"], agent_id);
    assert!(
        alert["event_ids"]
            .as_array()
            .is_some_and(|ids| ids.contains(&proc_event["id"])),
        "{alert}"
    );

    // --- a file written in the watched directory, with its hash.
    let content = format!("dozor e2e {}\n", std::process::id());
    let file = watched.join("note.txt");
    std::fs::write(&file, &content).unwrap();
    let file_event = wait_for("the file event", Duration::from_secs(30), || {
        events(
            &url,
            &ca,
            &admin,
            &agent_id,
            "event.category:file AND file.name:note.txt",
        )
        .into_iter()
        .find(|e| e["doc"]["file"]["hash"]["sha256"].is_string())
    });
    assert_eq!(
        file_event["doc"]["file"]["hash"]["sha256"],
        sha256_hex(content.as_bytes())
    );
    assert_eq!(
        file_event["doc"]["file"]["path"],
        file.display().to_string()
    );

    // --- a listening socket the test opens, with its owner.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen_port = listener.local_addr().unwrap().port();
    let socket_event = wait_for(
        "the listening socket event",
        Duration::from_secs(30),
        || {
            events(
                &url,
                &ca,
                &admin,
                &agent_id,
                &format!(
                    "event.category:network AND process.pid:{}",
                    std::process::id()
                ),
            )
            .into_iter()
            .find(|e| e["doc"]["source"]["port"] == listen_port)
        },
    );
    eprintln!("listening socket event: {}", socket_event["doc"]);
    assert_eq!(socket_event["doc"]["event"]["action"], "listening");
    assert_eq!(socket_event["doc"]["process"]["pid"], std::process::id());
    drop(listener);

    // --- an sshd line in the auth log.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&auth_log)
            .unwrap();
        writeln!(
            f,
            "{} e2e-host sshd[4242]: Failed password for invalid user mallory from 203.0.113.9 port 50022 ssh2",
            chrono::Local::now().format("%b %e %H:%M:%S")
        )
        .unwrap();
    }
    let auth_event = wait_for("the auth event", Duration::from_secs(30), || {
        events(
            &url,
            &ca,
            &admin,
            &agent_id,
            "event.category:authentication AND user.name:mallory",
        )
        .into_iter()
        .next()
    });
    assert_eq!(auth_event["doc"]["event"]["outcome"], "failure");
    assert_eq!(auth_event["doc"]["source"]["ip"], "203.0.113.9");

    // --- the server is stopped for 30 s; what happens meanwhile arrives exactly once.
    server.stop();
    let outage_files = 30;
    for i in 0..outage_files {
        std::fs::write(watched.join(format!("outage-{i}.txt")), format!("{i}")).unwrap();
        let _ = Command::new("/bin/true").status();
        std::thread::sleep(Duration::from_secs(1));
    }
    let spooled = status(&config)["status"]["spool_records"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        spooled > 0,
        "events wait in the spool while the server is down"
    );
    let server = start_server(&data, port, &env);
    wait_for("the spool to drain", Duration::from_secs(60), || {
        let s = status(&config);
        (s["status"]["spool_records"] == 0 && s["status"]["events_sent"].as_u64() > Some(0))
            .then_some(())
    });
    for i in 0..outage_files {
        let name = format!("outage-{i}.txt");
        let found = events(
            &url,
            &ca,
            &admin,
            &agent_id,
            &format!("event.category:file AND file.name:{name} AND event.action:created"),
        );
        assert_eq!(found.len(), 1, "{name}: {found:?}");
    }
    // Stop the agent so the counts stand still, then compare: every event the agent spooled
    // is stored once.
    agent.stop();
    let s = status(&config);
    assert_eq!(s["status"]["spool_records"], 0, "{s}");
    assert_eq!(s["status"]["events_rejected"], 0, "{s}");
    assert_eq!(s["status"]["spool_dropped_records"], 0, "{s}");
    let spooled = s["status"]["events_spooled"].as_u64().unwrap();
    let stored = events(
        &url,
        &ca,
        &admin,
        &agent_id,
        "NOT event.action:agent-offline",
    );
    let mut ids: Vec<&str> = stored.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), stored.len(), "no event is stored twice");
    assert_eq!(
        stored.len() as u64,
        spooled,
        "every event the agent spooled is stored exactly once"
    );
    eprintln!(
        "outage: {} events spooled by the agent, {} stored, {} batches, {} failed sends",
        spooled,
        stored.len(),
        s["status"]["batches_sent"],
        s["status"]["send_failures"]
    );

    // --- with the agent's own certificate, an event that claims another agent is rejected
    // (and the valid one next to it kept).
    let cert = identity_dir.join("cert.pem");
    let key = identity_dir.join("key.pem");
    let body = format!(
        r#"{{"@timestamp":"2026-11-21T10:00:00Z","event":{{"id":"{}","kind":"event","category":["host"],"type":["info"]}}}}"#,
        uuid::Uuid::now_v7()
    );
    let cert_args = |body: &str| {
        vec![
            "--cert".to_owned(),
            cert.display().to_string(),
            "--key".to_owned(),
            key.display().to_string(),
            "-H".to_owned(),
            "Content-Type: application/x-ndjson".to_owned(),
            "--data-binary".to_owned(),
            body.to_owned(),
        ]
    };
    let spoofed = format!(
        r#"{{"@timestamp":"2026-11-21T10:00:00Z","event":{{"id":"{}","kind":"event","category":["host"],"type":["info"]}},"agent":{{"id":"someone-else"}}}}"#,
        uuid::Uuid::now_v7()
    );
    let args = cert_args(&format!("{body}\n{spoofed}\n"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status_code, text) = curl(&url, &ca, &args, "/api/v1/ingest");
    assert_eq!(status_code, 202, "{text}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["accepted"], 1, "{report}");
    assert_eq!(report["rejected"][0]["index"], 1, "{report}");
    assert!(report.to_string().contains("/agent/id"), "{report}");

    // --- revocation: the certificate is refused from then on.
    let (code, _, err) = {
        let out = Command::new(dozor_bin())
            .args([
                "agents", "revoke", &agent_id, "--reason", "e2e", "--server", &url, "--token",
                &admin, "--ca",
            ])
            .arg(&ca)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "agents revoke: {err}");
    let args = cert_args(&body);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status_code, text) = curl(&url, &ca, &args, "/api/v1/ingest");
    assert_eq!(
        status_code, 401,
        "a revoked agent's events are refused: {text}"
    );
    assert!(text.contains("revoked"), "{text}");
    let agent = start_agent(&config, &dir.path().join("agent-2.log"));
    wait_for(
        "the agent to see the refusal",
        Duration::from_secs(30),
        || (status(&config)["status"]["certificate_refused"] == true).then_some(()),
    );
    agent.stop();

    // --- a forged certificate (same agent id, not issued by the server's CA) is refused.
    let forged_dir = dir.path().join("forged");
    std::fs::create_dir_all(&forged_dir).unwrap();
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, agent_id.as_str());
    let forged = params.self_signed(&key_pair).unwrap();
    std::fs::write(forged_dir.join("cert.pem"), forged.pem()).unwrap();
    std::fs::write(forged_dir.join("key.pem"), key_pair.serialize_pem()).unwrap();
    let (status_code, text) = curl(
        &url,
        &ca,
        &[
            "--cert",
            &forged_dir.join("cert.pem").display().to_string(),
            "--key",
            &forged_dir.join("key.pem").display().to_string(),
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &body,
        ],
        "/api/v1/ingest",
    );
    assert!(
        status_code == 0 || status_code == 401,
        "a forged certificate gets no further than the TLS handshake: {status_code} {text}"
    );
    // Without any certificate or token: 401.
    let (status_code, _) = curl(
        &url,
        &ca,
        &[
            "-H",
            "Content-Type: application/x-ndjson",
            "--data-binary",
            &body,
        ],
        "/api/v1/ingest",
    );
    assert_eq!(status_code, 401);
    server.stop();
}

#[test]
fn an_agent_that_goes_silent_raises_one_offline_alert() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let auth_log = dir.path().join("auth.log");
    std::fs::write(&auth_log, "").unwrap();
    let port = free_port();
    let env = [
        ("DOZOR_AGENT_HEARTBEAT_INTERVAL", "1s"),
        ("DOZOR_AGENT_DEGRADED_AFTER", "2s"),
        ("DOZOR_AGENT_OFFLINE_AFTER", "4s"),
    ];
    let server = start_server(&data, port, &env);
    let admin = server.token.clone().expect("admin token");
    let url = server.url.clone();
    let ca = data.join("pki").join("ca.crt.pem");
    let config = write_config(dir.path(), &watched, &auth_log);
    let agent_id = enroll_with_new_token(&config, &data, &url, &ca);
    let agent = start_agent(&config, &dir.path().join("agent.log"));
    wait_online(&url, &ca, &admin, &agent_id, "online");
    agent.stop();
    let alert = wait_for("the offline alert", Duration::from_secs(30), || {
        let page = api(&url, &ca, &admin, "/api/v1/alerts?rule=dozor-agent-offline");
        page["alerts"].as_array().and_then(|a| a.first().cloned())
    });
    assert_eq!(alert["agent_id"], agent_id);
    assert_eq!(alert["level"], "high");
    let a = api(&url, &ca, &admin, &format!("/api/v1/agents/{agent_id}"));
    assert_eq!(a["status"], "offline");
    // Still silent: no second alert, no second event.
    std::thread::sleep(Duration::from_secs(6));
    let page = api(&url, &ca, &admin, "/api/v1/alerts?rule=dozor-agent-offline");
    assert_eq!(page["alerts"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["alerts"][0]["count"], 1, "{page}");
    // Back: online again.
    let agent = start_agent(&config, &dir.path().join("agent-2.log"));
    wait_online(&url, &ca, &admin, &agent_id, "online again");
    agent.stop();
    let list = api(&url, &ca, &admin, "/api/v1/agents");
    assert_eq!(list["agents"].as_array().map(Vec::len), Some(1));

    // Renewal (no token): same id, a new certificate; the old one is refused from then on.
    let identity_dir = dir.path().join("state").join("identity");
    let old_cert = std::fs::read(identity_dir.join("cert.pem")).unwrap();
    let old_key = std::fs::read(identity_dir.join("key.pem")).unwrap();
    let out = agent_cmd(&config).arg("enroll").output().unwrap();
    assert_succeeded(&out, "renewal");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("renewed agent {agent_id}")));
    assert_eq!(status(&config)["identity"]["agent_id"], agent_id);
    let old = dir.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("cert.pem"), &old_cert).unwrap();
    std::fs::write(old.join("key.pem"), &old_key).unwrap();
    let (code, text) = curl(
        &url,
        &ca,
        &[
            "--cert",
            &old.join("cert.pem").display().to_string(),
            "--key",
            &old.join("key.pem").display().to_string(),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"facts":{"hostname":"x","os_type":"linux","agent_version":"0","ips":[]}}"#,
        ],
        "/api/v1/agents/heartbeat",
    );
    assert_eq!(code, 401, "the replaced certificate is refused: {text}");

    // Re-enrollment of the same host with a token needs --force; --replace revokes the old id.
    let token2 = enrollment_token(&data, &["--expires", "1h", "--uses", "1"]);
    let again = |extra: &[&str]| {
        agent_cmd(&config)
            .args(["enroll", "--server", &url, "--token", &token2, "--ca-file"])
            .arg(&ca)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = again(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already enrolled"));
    let out = again(&["--force", "--replace"]);
    assert_succeeded(&out, "re-enrollment with --replace");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(revoked)"));
    let new_id = enrolled_agent_id(&config);
    assert_ne!(new_id, agent_id);
    let list = api(&url, &ca, &admin, "/api/v1/agents");
    assert_eq!(list["agents"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["revoked"], 1, "{list}");
    let old_agent = api(&url, &ca, &admin, &format!("/api/v1/agents/{agent_id}"));
    assert_eq!(old_agent["status"], "revoked");
    // The operator's view: `dozor agents list` and `show`.
    let cli = |args: &[&str]| {
        let out = Command::new(dozor_bin())
            .args(args)
            .args(["--server", &url, "--token", &admin, "--ca"])
            .arg(&ca)
            .output()
            .unwrap();
        assert_succeeded(&out, "dozor agents");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (table, summary) = cli(&["agents", "list"]);
    assert!(
        table.contains(&agent_id) && table.contains(&new_id),
        "{table}"
    );
    assert!(table.contains("revoked"), "{table}");
    assert!(summary.contains("2 agents"), "{summary}");
    let (detail, _) = cli(&["agents", "show", &agent_id]);
    assert!(detail.contains("revoked by"), "{detail}");
    // The heartbeat is read into words and units, not raw floats or blanks.
    let line = |label: &str| {
        detail
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in {detail}"))
            .to_owned()
    };
    assert!(line("cpu ").trim_end().ends_with(" %"), "{detail}");
    assert!(line("memory ").contains(" of "), "{detail}");
    assert!(line("spool queued ").contains("records"), "{detail}");
    server.stop();
}

/// `transport.format = "protobuf"`: the agent's events arrive as the same documents, and the
/// server counts the batches it read as protobuf (none as NDJSON).
#[test]
fn an_agent_sending_protobuf_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let auth_log = dir.path().join("auth.log");
    std::fs::write(&auth_log, "").unwrap();
    let server = start_server(
        &data,
        free_port(),
        &[("DOZOR_AGENT_HEARTBEAT_INTERVAL", "1s")],
    );
    let admin = server.token.clone().expect("admin token");
    let url = server.url.clone();
    let ca = data.join("pki").join("ca.crt.pem");
    let config = write_config(dir.path(), &watched, &auth_log);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[transport]\n", "[transport]\nformat = \"protobuf\"\n"),
    )
    .unwrap();
    let agent_id = enroll_with_new_token(&config, &data, &url, &ca);
    let agent = start_agent(&config, &dir.path().join("agent.log"));
    // Online first: processes already running at the collector's start are its baseline.
    wait_online(&url, &ca, &admin, &agent_id, "online");

    let marker = format!("7.{}", std::process::id());
    let mut sleeper = Command::new("/bin/sleep").arg(&marker).spawn().unwrap();
    let event = wait_for("the process start event", Duration::from_secs(30), || {
        events(
            &url,
            &ca,
            &admin,
            &agent_id,
            &format!("event.category:process AND event.type:start AND process.args:{marker}"),
        )
        .into_iter()
        .next()
    });
    let doc = &event["doc"];
    assert_eq!(
        doc["process"]["command_line"],
        format!("/bin/sleep {marker}")
    );
    assert_eq!(doc["process"]["pid"], sleeper.id());
    assert_eq!(doc["process"]["parent"]["pid"], std::process::id());
    assert_eq!(doc["agent"]["id"], agent_id);
    assert_eq!(doc["event"]["agent_id_status"], "verified");
    assert!(
        doc["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{doc}"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    let (code, metrics) = curl(
        &url,
        &ca,
        &["-H", &format!("Authorization: Bearer {admin}")],
        "/metrics",
    );
    assert_eq!(code, 200, "{metrics}");
    let read = |format: &str| -> u64 {
        let prefix = format!("dozor_ingest_batches_read_total{{format=\"{format}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap_or(0))
    };
    assert!(read("protobuf") > 0, "{metrics}");
    assert_eq!(read("ndjson"), 0, "{metrics}");
    assert_eq!(status(&config)["status"]["events_rejected"], 0);
    agent.stop();
}
