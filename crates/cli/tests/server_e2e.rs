//! `dozor server` as real processes on 127.0.0.1 with temp data dirs: HTTPS ingest with
//! tokens, detection into aggregated alerts, rejections; and `kill -9` of a pipeline worker
//! mid-stream on the Redis and NATS buses — no accepted event lost, none stored twice.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use dozor_store::{AlertQuery, StoreConfig, sqlite::SqliteConfig};

const RULE: &str = "title: Whoami
id: 7c1d0a4c-0000-4000-8000-000000000001
level: high
tags: [attack.discovery, attack.t1033]
logsource: {product: windows, category: process_creation}
detection:
    sel:
        Image|endswith: '\\whoami.exe'
    condition: sel
";

struct Proc {
    child: Child,
    base_url: String,
    token: Option<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dozor server` and waits for its listening line (and the first-start token).
// The child is waited for by `Proc`'s Drop, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn start(data_dir: &Path, rules: &Path, extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dozor"));
    cmd.arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("DOZOR_RULES_DIRS", rules)
        .env("DOZOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn dozor server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("dozor server did not start")
            });
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dzt_")) {
            token = Some(t.to_owned());
        }
        if let Some(url) = line.strip_prefix("dozor server listening on ") {
            // Keep draining stderr (into a log beside the data dir) so the server never blocks.
            let log = data_dir.with_file_name(format!("server-{}.log", child.id()));
            std::thread::spawn(move || {
                use std::io::Write;
                let mut f = std::fs::File::create(log).ok();
                while let Ok(line) = rx.recv() {
                    if let Some(f) = f.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                }
            });
            return Proc {
                child,
                base_url: url.trim().to_owned(),
                token,
            };
        }
    }
}

/// curl with the server's CA pinned; returns (status, body).
fn curl(
    p: &Proc,
    ca: &Path,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> (u16, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(["-X", method]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    if let Some((content_type, bytes)) = body {
        let f = dir.path().join("body");
        std::fs::write(&f, bytes).expect("write body");
        cmd.args(["-H", &format!("Content-Type: {content_type}")])
            .arg("--data-binary")
            .arg(format!("@{}", f.display()));
    }
    let out = cmd
        .arg(format!("{}{path}", p.base_url))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn fetch_ca(p: &Proc, dir: &Path) -> PathBuf {
    // The CA is public; fetching it without verification is how a client bootstraps pinning.
    let out = Command::new("curl")
        .args(["-sk"])
        .arg(format!("{}/api/v1/ca.pem", p.base_url))
        .output()
        .expect("curl");
    assert!(
        out.status.success() && out.stdout.starts_with(b"-----BEGIN CERTIFICATE-----"),
        "CA served"
    );
    let path = dir.join("ca.pem");
    std::fs::write(&path, &out.stdout).expect("write ca");
    path
}

fn event(n: u64, image: &str) -> serde_json::Value {
    serde_json::json!({
        "@timestamp": "2026-04-17T05:24:53.000Z",
        "event": {"id": format!("01900000-0000-7000-8000-{n:012}"), "kind": "event", "category": ["process"], "type": ["start"]},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1, "provider_name": "Microsoft-Windows-Sysmon",
                   "computer": "pc1", "event_data": {"Image": image, "CommandLine": "x"}},
    })
}

fn ndjson(events: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend(serde_json::to_vec(e).expect("json"));
        out.push(b'\n');
    }
    out
}

fn rules_dir(dir: &Path) -> PathBuf {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    std::fs::write(rules.join("whoami.yml"), RULE).expect("rule");
    rules
}

async fn open_store(data: &Path) -> std::sync::Arc<dyn dozor_store::Store> {
    dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(data)))
        .await
        .expect("open store")
}

async fn wait_for_events(data: &Path, want: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    let store = open_store(data).await;
    loop {
        let n = store.count_events(None, None).await.expect("count");
        if n >= want || Instant::now() > deadline {
            store.close().await;
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_server_ingests_detects_and_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = rules_dir(dir.path());
    let server = start(&data, &rules, &[], &[]);
    let token = server
        .token
        .clone()
        .expect("first start prints an admin token");
    let ca = fetch_ca(&server, dir.path());

    let events = vec![
        event(1, "C:\\Windows\\System32\\whoami.exe"),
        event(2, "C:\\Windows\\notepad.exe"),
        event(3, "C:\\Windows\\System32\\whoami.exe"),
    ];
    let (code, body) = curl(
        &server,
        &ca,
        Some(&token),
        "POST",
        "/api/v1/ingest",
        Some(("application/x-ndjson", &ndjson(&events))),
    );
    assert_eq!(code, 202, "{body}");
    assert!(body.contains("\"accepted\":3"), "{body}");
    // The same events again: accepted by ingest, stored once.
    let (code, _) = curl(
        &server,
        &ca,
        Some(&token),
        "POST",
        "/api/v1/ingest",
        Some(("application/x-ndjson", &ndjson(&events))),
    );
    assert_eq!(code, 202);
    // A schema violation next to a valid event: the valid one is kept, the error says where.
    let mut bad = event(4, "C:\\x.exe");
    bad["event"]["id"] = serde_json::json!("not-a-uuid");
    let mixed = ndjson(&[bad, event(5, "C:\\Windows\\System32\\whoami.exe")]);
    let (code, body) = curl(
        &server,
        &ca,
        Some(&token),
        "POST",
        "/api/v1/ingest",
        Some(("application/x-ndjson", &mixed)),
    );
    assert_eq!(code, 202, "{body}");
    assert!(
        body.contains("\"accepted\":1") && body.contains("/event/id"),
        "{body}"
    );
    // Credentials.
    let (code, _) = curl(
        &server,
        &ca,
        None,
        "POST",
        "/api/v1/ingest",
        Some(("application/x-ndjson", &ndjson(&events))),
    );
    assert_eq!(code, 401);
    let (code, _) = curl(
        &server,
        &ca,
        Some("dzt_wrong"),
        "POST",
        "/api/v1/ingest",
        Some(("application/x-ndjson", &ndjson(&events))),
    );
    assert_eq!(code, 401);

    assert_eq!(
        wait_for_events(&data, 4, Duration::from_secs(30)).await,
        4,
        "3 + 1 distinct events stored"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = open_store(&data).await;
    let alerts = store
        .list_alerts(&AlertQuery::default())
        .await
        .expect("alerts");
    assert_eq!(alerts.alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts.alerts[0].count, 3,
        "three whoami events, each counted once"
    );
    assert_eq!(alerts.alerts[0].rule_title, "Whoami");
    store.close().await;
}

/// Sends `batches` × `per_batch` events (every 10th a whoami), killing the worker with
/// SIGKILL after a third of them and starting it again; then checks exactly-once storage.
async fn crash_test(bus_url: &str, bus_name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = rules_dir(dir.path());
    let env = [
        ("DOZOR_BUS", bus_url),
        ("DOZOR_BUS_NAME", bus_name),
        ("DOZOR_BUS_REDELIVERY_SECS", "2"),
    ];
    let ingest = start(&data, &rules, &["--role", "ingest"], &env);
    let token = ingest.token.clone().expect("token");
    let ca = fetch_ca(&ingest, dir.path());
    let worker_args = ["--role", "worker", "--consumer", "crash-test-worker"];
    let mut worker = Some(start(&data, &rules, &worker_args, &env));

    let (batches, per_batch) = (30u64, 200u64);
    for b in 0..batches {
        let events: Vec<_> = (0..per_batch)
            .map(|i| {
                let n = b * per_batch + i;
                event(
                    n,
                    if n % 10 == 0 {
                        "C:\\Windows\\System32\\whoami.exe"
                    } else {
                        "C:\\Windows\\notepad.exe"
                    },
                )
            })
            .collect();
        let (code, body) = curl(
            &ingest,
            &ca,
            Some(&token),
            "POST",
            "/api/v1/ingest",
            Some(("application/x-ndjson", &ndjson(&events))),
        );
        assert_eq!(code, 202, "{body}");
        if b == batches / 3 {
            // SIGKILL: no chance to ack or flush anything.
            if let Some(mut w) = worker.take() {
                w.child.kill().expect("kill -9");
                let _ = w.child.wait();
            }
        }
        if b == batches / 2 {
            worker = Some(start(&data, &rules, &worker_args, &env));
        }
    }
    let total = batches * per_batch;
    let stored = wait_for_events(&data, total, Duration::from_secs(90)).await;
    if stored != total {
        for e in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            if e.file_name().to_string_lossy().ends_with(".log") {
                println!(
                    "== {}\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                );
            }
        }
    }
    assert_eq!(stored, total, "every accepted event stored");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let store = open_store(&data).await;
    assert_eq!(
        store.count_events(None, None).await.expect("count"),
        total,
        "nothing stored twice"
    );
    let alerts = store
        .list_alerts(&AlertQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("alerts");
    let detections: i64 = alerts.alerts.iter().map(|a| a.count).sum();
    assert_eq!(
        detections as u64,
        total / 10,
        "each matching event counted once in alerts"
    );
    store.close().await;
    drop(worker);
    drop(ingest);
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_killed_mid_stream_on_redis_loses_and_duplicates_nothing() {
    let Ok(url) = std::env::var("DOZOR_TEST_REDIS_URL") else {
        println!("skipped: DOZOR_TEST_REDIS_URL not set");
        return;
    };
    let name = format!("dozor-e2e-{}", std::process::id());
    crash_test(&url, &name).await;
    // Clean up the stream and its group.
    let _ = Command::new("redis-cli")
        .args(["-u", &url, "DEL", &format!("{name}:ingest")])
        .output();
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_killed_mid_stream_on_nats_loses_and_duplicates_nothing() {
    let Ok(url) = std::env::var("DOZOR_TEST_NATS_URL") else {
        println!("skipped: DOZOR_TEST_NATS_URL not set");
        return;
    };
    let name = format!("dozor_e2e_{}", std::process::id());
    crash_test(&url, &name).await;
    if let Ok(client) = async_nats::connect(&url).await {
        let js = async_nats::jetstream::new(client);
        let _ = js
            .delete_stream(format!("{}_INGEST", name.to_ascii_uppercase()))
            .await;
    }
}

#[test]
fn tokens_command_creates_lists_and_revokes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dozor"))
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, secret, _) = run(&[
        "tokens",
        "create",
        "--name",
        "soc-viewer",
        "--role",
        "viewer",
        "--expires",
        "24h",
    ]);
    assert_eq!(code, Some(0));
    assert!(secret.trim().starts_with("dzt_"), "{secret}");
    let (code, list, _) = run(&["tokens", "list"]);
    assert_eq!(code, Some(0));
    assert!(
        list.contains("soc-viewer") && list.contains("viewer") && !list.contains(secret.trim()),
        "{list}"
    );
    let id = list.split_whitespace().next().expect("id");
    let (code, _, err) = run(&["tokens", "revoke", id]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(&["tokens", "revoke", "999"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no token with id 999"), "{err}");
    let (code, _, err) = run(&["tokens", "create", "--name", "x", "--role", "root"]);
    assert_eq!(code, Some(2), "an unknown role is refused: {err}");

    // Enrollment tokens are safe by default (one use within 24 h); more only when asked.
    let (code, secret, err) = run(&["tokens", "create", "--name", "default-enroll"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(secret.trim().starts_with("dze_"), "{secret}");
    assert!(
        err.contains("uses: 1") && err.contains("--ca-sha256"),
        "the defaults and how to pin are shown: {err}"
    );
    let (code, _, err) = run(&[
        "tokens",
        "create",
        "--name",
        "fleet",
        "--uses",
        "unlimited",
        "--expires",
        "never",
        "--may-replace",
        "any",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("may replace an agent of any hostname"),
        "{err}"
    );
    let (_, list, _) = run(&["tokens", "list"]);
    let row = |name: &str| {
        list.lines()
            .find(|l| l.split('\t').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {list}"))
            .to_owned()
    };
    let default = row("default-enroll");
    assert!(
        default.contains("\t0/1") && !default.contains("never"),
        "expires within a day, one use: {default}"
    );
    let expires = default.split('\t').nth(3).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    let in_hours = (expires.timestamp() - chrono::Utc::now().timestamp()) / 3600;
    assert!((23..=24).contains(&in_hours), "{default}");
    let fleet = row("fleet");
    assert!(
        fleet.contains("never") && fleet.contains("0/unlimited"),
        "{fleet}"
    );
    let (code, _, err) = run(&["tokens", "create", "--uses", "0"]);
    assert_eq!(code, Some(2), "--uses 0 is refused: {err}");
    let (code, _, err) = run(&["tokens", "create", "--role", "viewer", "--may-replace", "h"]);
    assert_eq!(
        code,
        Some(2),
        "--may-replace is for enrollment tokens: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_answers_503_with_retry_after_and_loses_nothing() {
    let Ok(url) = std::env::var("DOZOR_TEST_REDIS_URL") else {
        println!("skipped: DOZOR_TEST_REDIS_URL not set");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = rules_dir(dir.path());
    let name = format!("dozor-e2e-full-{}", std::process::id());
    // An ingest process with no worker behind it and room for 3 batches.
    let env = [
        ("DOZOR_BUS", url.as_str()),
        ("DOZOR_BUS_NAME", name.as_str()),
        ("DOZOR_QUEUE_CAPACITY", "3"),
        ("DOZOR_MAX_BATCH_EVENTS", "1"),
    ];
    let ingest = start(&data, &rules, &["--role", "ingest"], &env);
    let token = ingest.token.clone().expect("token");
    let ca = fetch_ca(&ingest, dir.path());
    let mut codes = Vec::new();
    for n in 0..5u64 {
        let body = ndjson(&[event(9000 + n, "C:\\Windows\\notepad.exe")]);
        let (code, body) = curl(
            &ingest,
            &ca,
            Some(&token),
            "POST",
            "/api/v1/ingest",
            Some(("application/x-ndjson", &body)),
        );
        if code == 503 {
            assert!(
                body.contains("queue") || body.contains("full"),
                "the refusal says why: {body}"
            );
        }
        codes.push(code);
    }
    assert_eq!(
        codes,
        vec![202, 202, 202, 503, 503],
        "three batches fit, then back-pressure"
    );
    // Retry-After is set on the refusal.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(&ca)
        .args([
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/x-ndjson",
        ])
        .arg("--data-binary")
        .arg(String::from_utf8(ndjson(&[event(9100, "C:\\x.exe")])).expect("utf8"))
        .arg(format!("{}/api/v1/ingest", ingest.base_url))
        .output()
        .expect("curl");
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        headers.contains(" 503") && headers.contains("retry-after:"),
        "{headers}"
    );
    // A worker drains the three accepted batches: exactly those are stored.
    let worker = start(
        &data,
        &rules,
        &["--role", "worker", "--consumer", "full-test"],
        &env,
    );
    assert_eq!(wait_for_events(&data, 3, Duration::from_secs(30)).await, 3);
    drop(worker);
    drop(ingest);
    let _ = Command::new("redis-cli")
        .args(["-u", &url, "DEL", &format!("{name}:ingest")])
        .output();
}

/// Modes of the data directory and the database files, as `(name, mode)`.
#[cfg(unix)]
fn private_modes(data: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut modes = vec![(
        "data".to_owned(),
        std::fs::metadata(data).unwrap().permissions().mode() & 0o777,
    )];
    for name in ["dozor.db", "dozor.db-wal", "dozor.db-shm"] {
        let path = data.join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            modes.push((name.to_owned(), meta.permissions().mode() & 0o777));
        }
    }
    modes
}

#[cfg(unix)]
#[test]
fn data_directory_and_database_are_private_on_every_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = rules_dir(dir.path());
    // A directory that already exists with the usual umask's mode.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = start(&data, &rules, &[], &[]);
    let modes = private_modes(&data);
    assert_eq!(modes.len(), 4, "{modes:?}");
    assert!(
        modes
            .iter()
            .all(|(name, mode)| *mode == if name == "data" { 0o700 } else { 0o600 }),
        "{modes:?}"
    );
    drop(server);
    // Loosened between two starts (an older version, a restore from backup): fixed again.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["dozor.db", "dozor.db-wal", "dozor.db-shm"] {
        let path = data.join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let _server = start(&data, &rules, &[], &[]);
    let modes = private_modes(&data);
    assert!(
        modes
            .iter()
            .all(|(name, mode)| *mode == if name == "data" { 0o700 } else { 0o600 }),
        "{modes:?}"
    );
}
