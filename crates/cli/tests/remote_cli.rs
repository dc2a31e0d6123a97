//! `dozor events`, `dozor alerts` and the remote `dozor rules` commands, as the real binary
//! against a real `dozor server` on 127.0.0.1 (temporary data directory, one rule): search,
//! alert triage, rule switches and tests, table vs JSON output, the live alert stream, and
//! the errors a user meets first (bad token, a viewer's token, no CA, no server).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Server, fetch_ca, ingest, start_server};

const RULE_ID: &str = "7c1d0a4c-0000-4000-8000-000000000001";
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
const WHOAMI: &str = "C:\\Windows\\System32\\whoami.exe";
const NOTEPAD: &str = "C:\\Windows\\notepad.exe";

fn event(n: u64, image: &str) -> String {
    serde_json::json!({
        "@timestamp": format!("2026-04-17T05:24:{:02}.000Z", n % 60),
        "event": {"id": format!("01900000-0000-7000-8000-{n:012}"), "kind": "event",
                  "category": ["process"], "type": ["start"]},
        "host": {"name": "pc1"},
        "process": {"executable": image, "command_line": format!("{image} /all")},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": 1,
                   "provider_name": "Microsoft-Windows-Sysmon", "computer": "pc1",
                   "event_data": {"Image": image, "CommandLine": "x"}},
    })
    .to_string()
}

/// A viewer's token, made in the server's store.
///
/// `dozor tokens create --role viewer` can't be used: its `--role` (the token's role) clashes
/// with the `--role` of the server options it flattens, and clap refuses the command.
fn viewer_token(data: &Path) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = dozor_store::open(&dozor_store::StoreConfig::Sqlite(
            dozor_store::sqlite::SqliteConfig::new(data),
        ))
        .await
        .expect("open store");
        let created = store
            .create_token(&dozor_store::NewToken {
                name: "v".into(),
                role: dozor_store::Role::Viewer,
                expires_at: None,
                owner: None,
            })
            .await
            .expect("create token");
        store.close().await;
        created.secret
    })
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// The binary with a clean environment: no DOZOR_* connection variables, no user config.
fn cli(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dozor"));
    cmd.env_remove("DOZOR_SERVER")
        .env_remove("DOZOR_TOKEN")
        .env_remove("DOZOR_CA")
        .env_remove("SSL_CERT_FILE")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .stdin(Stdio::null());
    cmd
}

fn run(mut cmd: Command) -> Out {
    let out = cmd.output().expect("run dozor");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Everything a test needs to call the server.
struct Ctx<'a> {
    server: &'a Server,
    ca: PathBuf,
    home: PathBuf,
}

impl Ctx<'_> {
    /// `dozor ARGS --server URL --token TOKEN --ca CA`.
    fn as_token(&self, token: &str, args: &[&str]) -> Out {
        let mut cmd = cli(&self.home);
        cmd.args(args)
            .args(["--server", &self.server.url, "--token", token, "--ca"])
            .arg(&self.ca);
        run(cmd)
    }

    /// As the admin; the command must succeed.
    fn ok(&self, args: &[&str]) -> Out {
        let out = self.as_token(&self.server.token, args);
        assert_eq!(
            out.code, 0,
            "dozor {args:?}: {}\n{}",
            out.stdout, out.stderr
        );
        out
    }

    /// As the admin; the command must fail with exit code 2.
    fn fails(&self, args: &[&str]) -> Out {
        let out = self.as_token(&self.server.token, args);
        assert_eq!(
            out.code, 2,
            "dozor {args:?}: {}\n{}",
            out.stdout, out.stderr
        );
        out
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn events_alerts_and_rules_against_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let rule_file = rules.join("whoami.yml");
    std::fs::write(&rule_file, RULE).expect("rule");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let server = start_server(&data, &rules, &[]);
    let ca = fetch_ca(&server.url, dir.path());
    let ctx = Ctx {
        server: &server,
        ca: ca.clone(),
        home: home.clone(),
    };

    ingest(
        &server,
        &ca,
        &[event(1, WHOAMI), event(2, NOTEPAD), event(3, WHOAMI)],
    );
    // The pipeline stores the events and opens one alert for the two whoami runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert_id = loop {
        let out = ctx.ok(&["alerts", "list", "--format", "json"]);
        let alerts = out.json()["alerts"].as_array().cloned().unwrap_or_default();
        if let Some(a) = alerts.first()
            && a["count"] == 2
        {
            break a["id"].as_i64().expect("alert id");
        }
        assert!(Instant::now() < deadline, "no alert: {}", out.stdout);
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = alert_id.to_string();

    // ---- events search: table (aligned, RFC 3339 UTC) and JSON.
    let out = ctx.ok(&["events", "search", "process.executable:*whoami.exe"]);
    let rows = lines(&out.stdout);
    assert_eq!(rows.len(), 3, "header + 2 events:\n{}", out.stdout);
    assert!(
        rows[0].starts_with("TIME  ") && rows[0].contains("  ID  "),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("2026-04-17T05:24:03Z  01900000-0000-7000-8000-000000000003  pc1"),
        "newest first, UTC times: {}",
        rows[1]
    );
    assert!(rows[1].contains(WHOAMI), "{}", rows[1]);
    let id_column = rows[0].find("ID").expect("ID column");
    assert!(
        rows.iter()
            .skip(1)
            .all(|r| r[id_column..].starts_with("0190")),
        "columns aligned:\n{}",
        out.stdout
    );
    // A query in several words, with a quoted value holding backslashes.
    let out = ctx.ok(&[
        "events",
        "search",
        "--format",
        "json",
        "host.name:pc1",
        "AND",
        r#"process.executable:"C:\Windows\notepad.exe""#,
    ]);
    let page = out.json();
    assert_eq!(page["events"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(
        page["events"][0]["doc"]["process"]["executable"], NOTEPAD,
        "the API's JSON, documents included"
    );
    assert!(
        out.stdout.contains("\n  \"events\": ["),
        "pretty: {}",
        out.stdout
    );
    // Pages: one event a page, then every page with --all.
    let out = ctx.ok(&["events", "search", "--limit", "1"]);
    assert_eq!(lines(&out.stdout).len(), 2);
    assert!(out.stderr.contains("--all"), "{}", out.stderr);
    let out = ctx.ok(&[
        "events", "search", "--limit", "1", "--all", "--format", "json",
    ]);
    let page = out.json();
    assert_eq!(page["events"].as_array().map(Vec::len), Some(3), "{page}");
    assert!(page["next_cursor"].is_null());
    let out = ctx.ok(&[
        "events",
        "search",
        "--from",
        "2026-04-17T05:24:02Z",
        "--to",
        "now",
    ]);
    assert_eq!(lines(&out.stdout).len(), 3, "{}", out.stdout);
    // A query that does not parse: the problem's title and detail, exit 2.
    let out = ctx.fails(&["events", "search", "process.name:"]);
    assert!(
        out.stderr
            .starts_with("error: Invalid query: query error at column"),
        "{}",
        out.stderr
    );
    // One event.
    let out = ctx.ok(&["events", "get", "01900000-0000-7000-8000-000000000002"]);
    assert!(
        out.stdout.contains("time      2026-04-17T05:24:02Z"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("process.executable") && l.ends_with(NOTEPAD)),
        "{}",
        out.stdout
    );
    let out = ctx.fails(&["events", "get", "01900000-0000-7000-8000-000000000009"]);
    assert!(
        out.stderr.starts_with("error: Not found: "),
        "{}",
        out.stderr
    );

    // ---- alerts: list, ack, comment, assign, show, resolve.
    let out = ctx.ok(&[
        "alerts",
        "list",
        "--status",
        "new,ack",
        "--min-level",
        "high",
    ]);
    let rows = lines(&out.stdout);
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    assert!(
        rows[0].starts_with("ID  STATUS  LEVEL  COUNT  LAST SEEN"),
        "{}",
        rows[0]
    );
    for cell in [
        id.as_str(),
        "new",
        "high",
        "2",
        "2026-04-17T05:24:03Z",
        "Whoami",
    ] {
        assert!(
            rows[1].split("  ").any(|c| c.trim() == cell),
            "{cell} in {}",
            rows[1]
        );
    }
    let out = ctx.ok(&["alerts", "ack", &id, "--comment", "on it"]);
    assert!(
        lines(&out.stdout)[1].contains("acknowledged"),
        "{}",
        out.stdout
    );
    let out = ctx.ok(&["alerts", "comment", &id, "looks", "like", "recon"]);
    assert!(
        out.stdout.contains("initial-admin  looks like recon"),
        "{}",
        out.stdout
    );
    let out = ctx.ok(&["alerts", "assign", &id, "alice", "--format", "json"]);
    assert_eq!(out.json()["assignee"], "alice");
    let out = ctx.ok(&["alerts", "show", &id]);
    for want in [
        "status      acknowledged",
        "assignee    alice",
        "tags        attack.discovery, attack.t1033",
        "comments: 1",
        "looks like recon",
        "history: 1",
        "new   acknowledged  on it",
        "events: 2",
        "01900000-0000-7000-8000-000000000001",
    ] {
        assert!(out.stdout.contains(want), "{want:?} in:\n{}", out.stdout);
    }
    let out = ctx.ok(&[
        "alerts", "resolve", &id, "-c", "reimaged", "--format", "json",
    ]);
    assert_eq!(out.json()["status"], "resolved");
    // Resolved alerts can only be reopened: the 409 says so.
    let out = ctx.fails(&["alerts", "ack", &id]);
    assert!(
        out.stderr.starts_with(&format!(
            "error: Invalid status change: alert {id} can't go from resolved to acknowledged"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("it may go to: new"), "{}", out.stderr);
    let out = ctx.ok(&["alerts", "show", &id, "--format", "json"]);
    let detail = out.json();
    assert_eq!(detail["comments"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(detail["history"][1]["comment"], "reimaged");
    assert_eq!(detail["events"].as_array().map(Vec::len), Some(2));
    let out = ctx.ok(&["alerts", "list", "--status", "new"]);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("no alerts match"), "{}", out.stderr);
    let out = ctx.fails(&["alerts", "show", "99"]);
    assert!(
        out.stderr.starts_with("error: Not found: no alert 99"),
        "{}",
        out.stderr
    );

    // ---- rules: list, disable, enable, show, test, reload.
    let out = ctx.ok(&["rules", "list"]);
    let rows = lines(&out.stdout);
    assert!(rows[0].starts_with("ID  "), "{}", rows[0]);
    assert!(
        rows[1].starts_with(RULE_ID) && rows[1].contains("active") && rows[1].ends_with("Whoami"),
        "{}",
        rows[1]
    );
    let enabled_column = rows[0].find("ENABLED").expect("ENABLED");
    assert!(
        rows[1][enabled_column..].starts_with("yes"),
        "{}",
        out.stdout
    );
    let out = ctx.ok(&["rules", "disable", RULE_ID]);
    assert!(
        lines(&out.stdout)[1][enabled_column..].starts_with("no "),
        "{}",
        out.stdout
    );
    let out = ctx.ok(&["rules", "list", "--format", "json"]);
    assert_eq!(out.json()["rules"][0]["enabled"], false);
    let out = ctx.ok(&["rules", "enable", RULE_ID, "--format", "json"]);
    assert_eq!(out.json()["enabled"], true);
    let out = ctx.ok(&["rules", "show", RULE_ID]);
    assert!(
        out.stdout
            .starts_with(&format!("# rule {RULE_ID}: Whoami\n")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with(RULE),
        "the source YAML:\n{}",
        out.stdout
    );
    let out = ctx.ok(&["rules", "show", RULE_ID, "--format", "json"]);
    assert_eq!(out.json()["yaml"], RULE);
    let out = ctx.fails(&["rules", "show", "no such rule"]);
    assert!(
        out.stderr.starts_with("error: Not found: "),
        "{}",
        out.stderr
    );
    let rule_path = rule_file.to_str().expect("utf-8 path");
    let out = ctx.ok(&["rules", "test", rule_path, "--query", "host.name:pc1"]);
    let rows = lines(&out.stdout);
    assert_eq!(rows[0], "matched 2 of 3 events tested", "{}", out.stdout);
    assert_eq!(
        rows[1..],
        [
            "01900000-0000-7000-8000-000000000003",
            "01900000-0000-7000-8000-000000000001"
        ]
    );
    let out = ctx.ok(&[
        "rules", "test", rule_path, "--limit", "1", "--format", "json",
    ]);
    assert_eq!(out.json()["tested"], 1);
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "title: x\ndetection: {}\n").expect("write");
    let out = ctx.fails(&["rules", "test", bad.to_str().expect("utf-8")]);
    assert!(
        out.stderr.starts_with("error: The rule can't be used: "),
        "{}",
        out.stderr
    );
    let out = ctx.ok(&["rules", "reload"]);
    assert!(
        out.stdout.contains("documents    1\nactive       1\n"),
        "{}",
        out.stdout
    );
    // `rules lint` still works on local files.
    let out = run({
        let mut c = cli(&home);
        c.args(["rules", "lint"]).arg(&rules);
        c
    });
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // ---- credentials.
    let out = ctx.as_token("dzt_wrong", &["alerts", "list"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: Authentication required: the token is not valid"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--token or DOZOR_TOKEN"),
        "{}",
        out.stderr
    );
    let viewer = viewer_token(&data);
    let out = ctx.as_token(&viewer, &["alerts", "list"]);
    assert_eq!(out.code, 0, "a viewer reads: {}", out.stderr);
    let out = ctx.as_token(&viewer, &["alerts", "reopen", &id]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.starts_with(
            "error: Forbidden: this needs an analyst or admin credential; \"v\" is a viewer"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: the token's role"),
        "{}",
        out.stderr
    );
    let out = ctx.as_token(&viewer, &["rules", "disable", RULE_ID]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("this needs an admin credential"),
        "{}",
        out.stderr
    );

    // ---- TLS: no CA for a loopback https server is an error that says how to get it.
    let out = run({
        let mut c = cli(&home);
        c.args([
            "alerts",
            "list",
            "--server",
            &server.url,
            "--token",
            &server.token,
        ]);
        c
    });
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains(&format!("curl -k {}/api/v1/ca.pem > ca.pem", server.url)),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    let out = run({
        let mut c = cli(&home);
        c.args(["alerts", "list", "--server", &server.url, "--ca", rule_path])
            .env("DOZOR_TOKEN", &server.token);
        c
    });
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("holds no PEM certificate"),
        "{}",
        out.stderr
    );
    // --insecure works, loudly.
    let out = run({
        let mut c = cli(&home);
        c.args(["alerts", "list", "--insecure", "--server", &server.url])
            .env("DOZOR_TOKEN", &server.token);
        c
    });
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("NOT verified"), "{}", out.stderr);

    // ---- the config file: server, token and a CA path relative to it.
    let config_dir = home.join(".config").join("dozor");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    std::fs::copy(&ca, config_dir.join("server-ca.pem")).expect("copy ca");
    let config = config_dir.join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "server = \"{}\"\ntoken = \"{}\"\nca = \"server-ca.pem\"\n",
            server.url, server.token
        ),
    )
    .expect("write config");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let out = run({
        let mut c = cli(&home);
        c.args(["alerts", "list", "--format", "json"]);
        c
    });
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(out.json()["alerts"][0]["id"], alert_id);
    std::fs::remove_file(&config).expect("rm config");

    // ---- watch: each alert as it arrives (JSON: one object per line).
    let mut watch = cli(&home)
        .args(["alerts", "watch", "--format", "json", "--min-level", "high"])
        .args(["--server", &server.url, "--token", &server.token, "--ca"])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn watch");
    let mut stderr = BufReader::new(watch.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("read stderr");
    assert!(first.starts_with("watching alerts on "), "{first}");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The first alert is resolved, so a new detection opens a new alert.
    ingest(&server, &ca, &[event(4, WHOAMI)]);
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = watch.kill();
    let _ = watch.wait();
    let line = line.expect("an alert notice within 30 s");
    let notice: Value = serde_json::from_str(&line).expect("one JSON object per line");
    assert_eq!(notice["change"], "created", "{notice}");
    assert_eq!(notice["alert"]["rule_id"], RULE_ID);
    assert_ne!(notice["alert"]["id"], alert_id);

    // ---- incidents: open from the alert, work it, read it back.
    let out = ctx.ok(&[
        "incidents",
        "create",
        "--title",
        "whoami on pc1",
        "--alert",
        &id,
        "--format",
        "json",
    ]);
    let incident = out.json();
    assert_eq!(
        incident["severity"], "high",
        "from the alert's level: {incident}"
    );
    let number = incident["id"].as_i64().expect("incident id").to_string();
    let out = ctx.fails(&["incidents", "create", "--title", "again", "--alert", &id]);
    assert!(
        out.stderr
            .contains(&format!("alert {id} in incident {number}")),
        "{}",
        out.stderr
    );
    ctx.ok(&[
        "incidents",
        "update",
        &number,
        "--status",
        "in_progress",
        "--owner",
        "ann",
    ]);
    ctx.ok(&["incidents", "task", &number, "Collect the triage package"]);
    let out = ctx.ok(&["incidents", "task", &number, "--done", "1"]);
    assert!(out.stdout.starts_with("[x] 1 Collect"), "{}", out.stdout);
    ctx.ok(&["incidents", "note", &number, "whoami right after logon"]);
    ctx.ok(&[
        "incidents",
        "observable",
        &number,
        "host",
        "pc1",
        "--note",
        "patient zero",
    ]);
    let out = ctx.fails(&["incidents", "observable", &number, "ip", "pc1"]);
    assert!(out.stderr.contains("not a valid ip"), "{}", out.stderr);
    let out = ctx.ok(&["incidents", "show", &number]);
    for text in [
        "whoami on pc1",
        "in_progress",
        "ann",
        "[x]",
        "patient zero",
        "TIMELINE",
        "whoami right after logon",
    ] {
        assert!(out.stdout.contains(text), "{text} missing:\n{}", out.stdout);
    }
    let out = ctx.ok(&["incidents", "list", "--status", "in_progress"]);
    assert_eq!(lines(&out.stdout).len(), 2, "{}", out.stdout);
    assert!(
        out.stdout.contains("1/1"),
        "tasks done/total: {}",
        out.stdout
    );
    let out = ctx.ok(&["incidents", "list", "--status", "closed"]);
    assert!(out.stderr.contains("no incidents"), "{}", out.stderr);
    ctx.ok(&["incidents", "remove-alert", &number, &id]);

    // ---- saved searches and export.
    ctx.ok(&[
        "searches",
        "save",
        "whoami runs",
        "process.executable:*whoami.exe",
        "--range",
        "all",
        "--columns",
        "host.name,process.command_line",
        "--shared",
    ]);
    let out = ctx.fails(&["searches", "save", "bad", "x", "--range", "3d"]);
    assert!(out.stderr.contains("params.range"), "{}", out.stderr);
    let out = ctx.ok(&["searches", "list"]);
    assert!(
        out.stdout.contains("whoami runs") && out.stdout.contains("all"),
        "{}",
        out.stdout
    );
    let out = ctx.ok(&["searches", "run", "whoami runs", "--format", "json"]);
    let events = out.json()["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        events.len(),
        3,
        "all time: the 3 whoami runs: {}",
        out.stdout
    );
    let csv = dir.path().join("whoami.csv");
    let out = ctx.ok(&[
        "events",
        "export",
        "process.executable:*whoami.exe",
        "--columns",
        "host.name",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(out.stderr.contains("bytes written"), "{}", out.stderr);
    let text = std::fs::read_to_string(&csv).expect("the export");
    assert_eq!(lines(&text).len(), 4, "header + 3 rows:\n{text}");
    assert!(lines(&text)[0].contains("host.name"), "{text}");
    let out = ctx.ok(&["events", "export", "--ndjson", "--limit", "1"]);
    assert!(out.stderr.contains("more events matched"), "{}", out.stderr);
    assert_eq!(
        lines(&out.stdout).len(),
        2,
        "one event and the truncation line"
    );
    ctx.ok(&["searches", "delete", "whoami runs"]);
    let out = ctx.fails(&["searches", "run", "whoami runs"]);
    assert!(out.stderr.contains("no saved search"), "{}", out.stderr);
    let out = ctx.ok(&["incidents", "show", &number, "--format", "json"]);
    assert_eq!(out.json()["incident"]["alert_count"], 0);
}

/// Runs `f` on the server's store (a second connection to its SQLite database).
fn with_store<T>(data: &Path, f: impl AsyncFnOnce(&dyn dozor_store::Store) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = dozor_store::open(&dozor_store::StoreConfig::Sqlite(
            dozor_store::sqlite::SqliteConfig::new(data),
        ))
        .await
        .expect("open store");
        let out = f(store.as_ref()).await;
        store.close().await;
        out
    })
}

#[test]
fn agents_scan_and_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    std::fs::write(rules.join("whoami.yml"), RULE).expect("rule");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("mkdir");
    let server = start_server(&data, &rules, &[]);
    let ca = fetch_ca(&server.url, dir.path());
    let ctx = Ctx {
        server: &server,
        ca: ca.clone(),
        home: home.clone(),
    };
    // An enrolled agent, as enrollment leaves it in the registry.
    with_store(&data, async |store| {
        store
            .insert_agent(&dozor_store::NewAgent {
                id: "agent-web".into(),
                facts: dozor_store::AgentFacts {
                    hostname: "web-01".into(),
                    os_type: "linux".into(),
                    agent_version: "0.1.0".into(),
                    ..Default::default()
                },
                cert_sha256: "ab".repeat(32),
                cert_not_after: i64::MAX / 2,
                enrolled_by: "token:1".into(),
            })
            .await
            .expect("insert agent");
    });

    // Queued: the command id on stdout, a note on stderr.
    let out = ctx.ok(&["agents", "scan", "agent-web", "/srv/www"]);
    let first = out.stdout.trim().to_owned();
    assert_eq!(first.len(), 36, "{}", out.stdout);
    assert!(out.stderr.contains("next heartbeat"), "{}", out.stderr);
    let out = ctx.ok(&["agents", "commands", "agent-web"]);
    let rows = lines(&out.stdout);
    assert!(
        rows[0].starts_with("ID") && rows[0].contains("REQUESTED BY"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains(&first) && rows[1].contains("pending") && rows[1].contains("/srv/www"),
        "{}",
        rows[1]
    );

    // Refusals name the problem: a relative path, an unknown agent, a viewer's token.
    let out = ctx.fails(&["agents", "scan", "agent-web", "srv/www"]);
    assert!(
        out.stderr.contains("args.path must be absolute"),
        "{}",
        out.stderr
    );
    let out = ctx.fails(&["agents", "scan", "nope", "/srv"]);
    assert!(out.stderr.contains("no agent nope"), "{}", out.stderr);
    let viewer = viewer_token(&data);
    let out = ctx.as_token(&viewer, &["agents", "scan", "agent-web", "/srv"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("asks agents to scan"), "{}", out.stderr);
    let out = ctx.as_token(
        &viewer,
        &["agents", "commands", "agent-web", "--format", "json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["commands"].as_array().map(Vec::len), Some(1));

    // --wait runs out while nobody answers: exit 2, and the command keeps going.
    let out = ctx.fails(&[
        "agents",
        "scan",
        "agent-web",
        "/tmp",
        "--no-recursive",
        "--wait",
        "3",
    ]);
    assert!(
        out.stderr.contains("is still pending after 3 s"),
        "{}",
        out.stderr
    );

    // --wait follows the command while the agent (here: the store, as the heartbeat and the
    // result route would) takes it and reports two detections: exit 1, the report on stdout.
    let mut cmd = cli(&home);
    cmd.args(["agents", "scan", "agent-web", "C:\\Users", "--wait", "60"])
        .args(["--server", &server.url, "--token", &server.token, "--ca"])
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn dozor");
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = serde_json::json!({
        "files_scanned": 1203, "files_skipped": 4, "bytes": 73400320, "duration_ms": 5120,
        "detections": [
            {"path": "C:\\Users\\x\\eicar.com", "engine": "clamav",
             "name": "Eicar-Test-Signature", "severity": "medium", "verdict": "malicious"},
            {"path": "C:\\Users\\x\\shell.aspx", "engine": "yara", "name": "aspx_webshell",
             "severity": "high", "verdict": "malicious"},
        ],
        "errors": ["C:\\Users\\Default: access denied"],
    });
    loop {
        let done = with_store(&data, async |store| {
            let all = store.list_agent_commands("agent-web", 100).await.unwrap();
            let Some(c) = all.iter().find(|c| c.args["path"] == "C:\\Users") else {
                return false;
            };
            let taken = store
                .take_for_delivery(
                    "agent-web",
                    dozor_store::now_ms(),
                    Duration::from_secs(600),
                    3,
                )
                .await
                .unwrap();
            assert!(taken.iter().any(|t| t.id == c.id));
            // let the CLI see it delivered before the result comes
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let finish = store
                .finish_command(
                    c.id,
                    "agent-web",
                    dozor_store::CommandStatus::Done,
                    Some(&result),
                    None,
                )
                .await
                .unwrap();
            assert!(matches!(finish, dozor_store::CommandFinish::Recorded(_)));
            true
        });
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "the CLI queued no command");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("delivered to the agent"), "{stderr}");
    assert!(stdout.contains("files scanned  1203"), "{stdout}");
    assert!(stdout.contains("2 detections:"), "{stdout}");
    let detection = stdout
        .lines()
        .find(|l| l.contains("aspx_webshell"))
        .expect("the detection row");
    assert!(
        detection.starts_with("high")
            && detection.contains("yara")
            && detection.contains("shell.aspx"),
        "{detection}"
    );
    assert!(
        stdout.contains("1 errors:") && stdout.contains("access denied"),
        "{stdout}"
    );

    // The listing shows the states and the counts.
    let out = ctx.ok(&["agents", "commands", "agent-web"]);
    let done = lines(&out.stdout)
        .into_iter()
        .find(|l| l.contains("C:\\Users"))
        .expect("the scan's row")
        .to_owned();
    assert!(
        done.contains("done") && done.contains("1203 files, 2 detections, 1 error"),
        "{done}"
    );
    let out = ctx.ok(&[
        "agents",
        "commands",
        "agent-web",
        "--format",
        "json",
        "--limit",
        "2",
    ]);
    let listed = out.json();
    let commands = listed["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 2);
    assert_eq!(commands[0]["summary"]["detections"], 2);
    assert_eq!(
        commands[1]["args"],
        serde_json::json!({"path": "/tmp", "recursive": false})
    );
}

#[test]
fn connection_problems_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    // No token anywhere.
    let out = run({
        let mut c = cli(home);
        c.args(["events", "search"]);
        c
    });
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: no API token: pass --token or set DOZOR_TOKEN"),
        "{}",
        out.stderr
    );
    // The default server is https on loopback: without a CA, the error says how to fetch it.
    let out = run({
        let mut c = cli(home);
        c.args(["alerts", "list"]).env("DOZOR_TOKEN", "dzt_x");
        c
    });
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("curl -k https://127.0.0.1:8443/api/v1/ca.pem > ca.pem"),
        "{}",
        out.stderr
    );
    // Nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let out = run({
        let mut c = cli(home);
        c.args(["rules", "list", "--insecure", "--server"])
            .arg(format!("https://127.0.0.1:{port}"))
            .env("DOZOR_TOKEN", "dzt_x");
        c
    });
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("connection refused"), "{}", out.stderr);
    let out = run({
        let mut c = cli(home);
        c.args(["alerts", "list", "--server", "ftp://x", "--token", "t"]);
        c
    });
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("http:// or https:// URL"),
        "{}",
        out.stderr
    );
    // --help documents the exit codes.
    for args in [
        &["events", "search", "--help"][..],
        &["alerts", "ack", "--help"],
        &["rules", "test", "--help"],
    ] {
        let out = run({
            let mut c = cli(home);
            c.args(args).env("DOZOR_TOKEN", "dzt_secret");
            c
        });
        assert_eq!(out.code, 0);
        assert!(
            out.stdout.contains("Exit codes: 0 = done; 2 = error"),
            "{args:?}"
        );
        assert!(
            !out.stdout.contains("dzt_secret"),
            "no token values in help"
        );
    }
}
