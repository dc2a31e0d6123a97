//! gvmd scan jobs (issue 15) over real HTTPS with a real SQLite store.
//!
//! gvmd is not packaged on this machine (nor in CI), so a GMP-speaking test server stands in
//! for it: a tokio `UnixListener` on a socket in the test's temporary directory that reads each
//! command as one XML document (GMP has no framing), answers with gvmd's response shapes and
//! status codes, and serves the recorded OpenVAS fixture `../shared/fixtures/openvas/
//! many_vuln.xml` for `get_reports`. It records every command so the test can check what the
//! runner sent (resolved hosts, the widened report filter, that the target and task are made
//! once).
//!
//! - A job is stored (password shown as `***`, kept when `***` is sent back), started by hand,
//!   followed through `running` to `done`; every result of the fixture is stored, the job's
//!   state names the scan. A second run uses the same gvmd target and task. A run is stopped.
//! - A wrong password ends the run `failed` with "authentication failed".
//! - Settings that can't be used are 422 naming the member (a TLS endpoint without a CA or pin).

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, NoRules, Response, api_token, enroll_agent, pinned_connector, test_env};
use dozor_server::{ApiState, MemorySink, Server, ServerError, Services};
use dozor_store::sqlite::SqliteConfig;
use dozor_store::{Role, Store, StoreConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

// ------------------------------------------------------------------ the stand-in for gvmd

const GVM_USER: &str = "dozor";
const GVM_PASSWORD: &str = "s3cret&<pass>";
const REPORT_ID: &str = "report-many";

/// One command as the fake gvmd read it.
#[derive(Debug, Clone)]
struct Command {
    name: String,
    raw: String,
}

impl Command {
    /// The text of `<tag>…</tag>`, unescaped.
    fn text(&self, tag: &str) -> Option<String> {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let start = self.raw.find(&open)? + open.len();
        let end = start + self.raw[start..].find(&close)?;
        Some(unescape(&self.raw[start..end]))
    }

    /// The value of `attr="…"` on `<element …>`, unescaped.
    fn attr(&self, element: &str, attr: &str) -> Option<String> {
        let tag_start = self.raw.find(&format!("<{element} "))?;
        let tag = &self.raw[tag_start..tag_start + self.raw[tag_start..].find('>')?];
        let key = format!("{attr}=\"");
        let start = tag.find(&key)? + key.len();
        let end = start + tag[start..].find('"')?;
        Some(unescape(&tag[start..end]))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The length of the first complete command in `bytes` and the command; `None` while
/// incomplete. The client writes each command as one element with escaped values, so the end
/// is the first tag's `/>` or the root's closing tag.
fn parse_command(bytes: &[u8]) -> Option<(usize, Command)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find('<')?;
    let first_tag_end = start + text[start..].find('>')?;
    let name: String = text[start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let end = if text[..first_tag_end].ends_with('/') {
        first_tag_end + 1
    } else {
        let close = format!("</{name}>");
        first_tag_end + text[first_tag_end..].find(&close)? + close.len()
    };
    Some((
        end,
        Command {
            name,
            raw: text[start..end].to_owned(),
        },
    ))
}

#[derive(Debug, Default)]
struct Gvmd {
    commands: Vec<Command>,
    /// `get_tasks` answers since the last `start_task`.
    polls: usize,
    /// The task runs (started, not yet done or stopped).
    active: bool,
    /// The last run was stopped.
    stopped: bool,
    /// Keep the task running whatever is polled.
    hold: bool,
    targets: usize,
    tasks: usize,
    report_xml: String,
}

type Shared = Arc<Mutex<Gvmd>>;

struct FakeGvmd {
    socket: PathBuf,
    state: Shared,
}

impl FakeGvmd {
    fn start(dir: &Path, report_xml: String) -> FakeGvmd {
        let socket = dir.join("gvmd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let state: Shared = Arc::new(Mutex::new(Gvmd {
            report_xml,
            ..Gvmd::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FakeGvmd { socket, state }
    }

    fn commands(&self, name: &str) -> Vec<Command> {
        self.state
            .lock()
            .unwrap()
            .commands
            .iter()
            .filter(|c| c.name == name)
            .cloned()
            .collect()
    }
}

fn answer(command: &Command, state: &Shared, authenticated: &mut bool) -> String {
    let mut s = state.lock().unwrap();
    s.commands.push(command.clone());
    let name = command.name.as_str();
    let response = format!("{name}_response");
    let ok =
        |body: &str| format!(r#"<{response} status="200" status_text="OK">{body}</{response}>"#);
    match name {
        "get_version" => return ok("<version>22.5</version>"),
        "authenticate" => {
            if command.text("username").as_deref() == Some(GVM_USER)
                && command.text("password").as_deref() == Some(GVM_PASSWORD)
            {
                *authenticated = true;
                return ok("<role>Admin</role>");
            }
            return format!(r#"<{response} status="400" status_text="Authentication failed"/>"#);
        }
        _ if !*authenticated => {
            return r#"<gmp_response status="401" status_text="Authenticate first"/>"#.to_owned();
        }
        _ => {}
    }
    match name {
        "get_port_lists" => ok(
            r#"<port_list id="pl-tcp"><name>All IANA assigned TCP</name></port_list><port_list id="pl-all"><name>All TCP and Nmap top 100 UDP</name></port_list>"#,
        ),
        "get_configs" => ok(r#"<config id="cfg-ff"><name>Full and fast</name></config>"#),
        "get_scanners" => ok(r#"<scanner id="sc-ov"><name>OpenVAS Default</name></scanner>"#),
        "create_target" if command.attr("port_list", "id").as_deref() == Some("pl-tcp") => {
            s.targets += 1;
            format!(
                r#"<{response} status="201" status_text="OK, resource created" id="target-{}"/>"#,
                s.targets
            )
        }
        "create_task"
            if command.attr("config", "id").as_deref() == Some("cfg-ff")
                && command.attr("scanner", "id").as_deref() == Some("sc-ov") =>
        {
            s.tasks += 1;
            format!(
                r#"<{response} status="201" status_text="OK, resource created" id="task-{}"/>"#,
                s.tasks
            )
        }
        "start_task" => {
            s.polls = 0;
            s.active = true;
            s.stopped = false;
            format!(
                r#"<{response} status="202" status_text="OK, request submitted"><report_id>{REPORT_ID}</report_id></{response}>"#
            )
        }
        "stop_task" => {
            s.hold = false;
            s.active = false;
            s.stopped = true;
            format!(r#"<{response} status="202" status_text="OK, request submitted"/>"#)
        }
        "get_tasks" => {
            let id = command.attr("get_tasks", "task_id").unwrap_or_default();
            let (status, progress) = if !s.active {
                (if s.stopped { "Stopped" } else { "Done" }, -1)
            } else if s.hold {
                ("Running", 10)
            } else {
                s.polls += 1;
                match s.polls {
                    1 => ("Running", 30),
                    2 => ("Running", 70),
                    _ => {
                        s.active = false;
                        ("Done", -1)
                    }
                }
            };
            ok(&format!(
                r#"<task id="{id}"><name>dozor</name><status>{status}</status><progress>{progress}</progress><current_report><report id="{REPORT_ID}"/></current_report><last_report><report id="{REPORT_ID}"/></last_report></task>"#
            ))
        }
        "get_reports" if command.attr("get_reports", "report_id").as_deref() == Some(REPORT_ID) => {
            let xml = &s.report_xml;
            let body = match xml.find("?>") {
                Some(end) if xml.starts_with("<?xml") => &xml[end + 2..],
                _ => &xml[..],
            };
            ok(body)
        }
        _ => format!(r#"<{response} status="400" status_text="Bogus command"/>"#),
    }
}

async fn serve(mut stream: tokio::net::UnixStream, state: Shared) {
    let mut pending = Vec::new();
    let mut authenticated = false;
    loop {
        let command = loop {
            if let Some((end, command)) = parse_command(&pending) {
                pending.drain(..end);
                break command;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
        };
        let response = answer(&command, &state, &mut authenticated);
        // Pieces: the client must assemble an answer across reads.
        for piece in response.as_bytes().chunks(4000) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
        }
        let _ = stream.flush().await;
    }
}

// ------------------------------------------------------------------ the Dozor server

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    admin: String,
    analyst: String,
    viewer: String,
    addr: std::net::SocketAddr,
    ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), ServerError>>>,
}

/// A Dozor server with the API on `store`, its data directory in `dir`.
async fn serve_dozor(
    dir: &Path,
    store: &Arc<dyn Store>,
) -> (
    std::net::SocketAddr,
    String,
    oneshot::Sender<()>,
    JoinHandle<Result<(), ServerError>>,
) {
    let config = common::config(&dir.join("data"), test_env(&[])).unwrap();
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
    (addr, ca_pem, tx, handle)
}

impl Harness {
    async fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = dozor_store::open(&StoreConfig::Sqlite(SqliteConfig::new(
            dir.path().join("store"),
        )))
        .await
        .unwrap();
        let admin = api_token(store.as_ref(), "alice-admin", Role::Admin).await;
        let analyst = api_token(store.as_ref(), "bob-analyst", Role::Analyst).await;
        let viewer = api_token(store.as_ref(), "carol-viewer", Role::Viewer).await;
        let (addr, ca_pem, tx, handle) = serve_dozor(dir.path(), &store).await;
        Harness {
            dir,
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

    /// Stops the server and starts another on the same store and data directory.
    async fn restart(&mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.handle.take().unwrap())
            .await
            .expect("server stopped in time")
            .unwrap()
            .unwrap();
        let (addr, ca_pem, tx, handle) = serve_dozor(self.dir.path(), &self.store).await;
        self.addr = addr;
        self.ca_pem = ca_pem;
        self.shutdown = Some(tx);
        self.handle = Some(handle);
    }

    fn client(&self) -> Client {
        Client {
            addr: self.addr,
            tls: Some(pinned_connector(&self.ca_pem)),
        }
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.client()
            .send(method, path, &headers, body)
            .await
            .unwrap()
    }

    /// The job's state once `done`, `failed` or `stopped` (or what `until` waits for).
    async fn wait_for(&self, name: &str, until: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let job = ok(&self
                .call(
                    "GET",
                    &format!("/api/v1/vulns/jobs/{name}"),
                    &self.viewer,
                    None,
                )
                .await);
            if until(&job["state"]) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {name} never got there: {job}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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
    assert!(
        r.status == 200 || r.status == 202,
        "{}: {}",
        r.status,
        r.text()
    );
    r.json()
}

fn problem(r: &Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["type"], format!("urn:dozor:problem:{slug}"), "{p}");
    p
}

fn fixture() -> Option<PathBuf> {
    let path = common::shared_dir()?.join("fixtures/openvas/many_vuln.xml");
    path.is_file().then_some(path)
}

fn finished(state: &Value) -> bool {
    matches!(
        state["status"].as_str(),
        Some("done" | "failed" | "stopped")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_scans_through_gvmd_and_its_report_is_stored() {
    let Some(fixture) = fixture() else {
        eprintln!("skipped: ../shared not found");
        return;
    };
    let parsed = dozor_gmp::parse_report_file(&fixture).unwrap();
    let distinct: HashSet<_> = parsed.results.iter().map(|r| r.dedup_key()).collect();
    assert!(!distinct.is_empty());

    let mut h = Harness::start().await;
    let gvmd = FakeGvmd::start(h.dir.path(), std::fs::read_to_string(&fixture).unwrap());
    // An enrolled agent chosen by host-name pattern: its loopback address is not scanned.
    let (_agent_id, _) = enroll_agent(
        h.store.as_ref(),
        &h.client(),
        &h.ca_pem,
        json!({"hostname": "WEB-01", "os_type": "linux", "os_name": null, "os_version": null,
               "arch": null, "agent_version": "0.1.0", "ips": ["127.0.0.1", "10.0.101.2"]}),
    )
    .await;

    let spec = json!({
        "targets": {"cidrs": ["192.168.1.0/24"], "agent_hostnames": ["web-*"]},
        "exclude": ["192.168.1.1"],
        "gmp": {"socket": gvmd.socket.display().to_string()},
        "username": GVM_USER,
        "password": GVM_PASSWORD,
    });
    // Admins only.
    problem(
        &h.call(
            "PUT",
            "/api/v1/vulns/jobs/weekly",
            &h.analyst,
            Some(json!({"spec": spec})),
        )
        .await,
        403,
        "forbidden",
    );
    let stored = ok(&h
        .call(
            "PUT",
            "/api/v1/vulns/jobs/weekly",
            &h.admin,
            Some(json!({"spec": spec})),
        )
        .await);
    assert_eq!(stored["spec"]["password"], "***", "{stored}");
    assert_eq!(stored["spec"]["port_list"], "All IANA assigned TCP");
    assert_eq!(stored["state"]["status"], "idle");
    assert_eq!(stored["next_run"], Value::Null, "by hand only");
    let listed = ok(&h.call("GET", "/api/v1/vulns/jobs", &h.viewer, None).await);
    assert_eq!(listed["jobs"][0]["name"], "weekly");
    assert_eq!(listed["jobs"][0]["spec"]["password"], "***");
    assert!(!listed.to_string().contains(GVM_PASSWORD));

    // `***` sent back keeps the stored password.
    let mut again = spec.clone();
    again["password"] = json!("***");
    ok(&h
        .call(
            "PUT",
            "/api/v1/vulns/jobs/weekly",
            &h.admin,
            Some(json!({"spec": again})),
        )
        .await);
    let raw = h.store.get_vuln_scan_job("weekly").await.unwrap().unwrap();
    assert_eq!(raw.spec["password"], GVM_PASSWORD);

    // Viewers can't start; analysts can.
    problem(
        &h.call("POST", "/api/v1/vulns/jobs/weekly/start", &h.viewer, None)
            .await,
        403,
        "forbidden",
    );
    let started = h
        .call("POST", "/api/v1/vulns/jobs/weekly/start", &h.analyst, None)
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    assert_eq!(started.json()["state"]["status"], "starting");

    let job = h
        .wait_for("weekly", |s| {
            if s["status"] == "running" {
                assert!(s["progress"].as_i64().is_some(), "{s}");
            }
            finished(s)
        })
        .await;
    let state = &job["state"];
    assert_eq!(state["status"], "done", "{job}");
    assert_eq!(state["error"], Value::Null, "{job}");
    assert_eq!(state["progress"], 100);
    assert_eq!(state["report_id"], REPORT_ID);
    assert!(state["task_id"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(state["target_id"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(state["last_started"].as_i64().unwrap() <= state["last_finished"].as_i64().unwrap());
    assert_eq!(state["started_by"], "bob-analyst");
    let scan_id = state["last_scan_id"].as_i64().expect("scan id");
    assert_eq!(
        state["last_counts"]["results"].as_u64(),
        Some(distinct.len() as u64),
        "{job}"
    );

    // What gvmd was asked: hosts resolved now (the agent's address, not its loopback), the
    // exclusion, the port list by name, the widened report filter.
    let target = &gvmd.commands("create_target")[0];
    let hosts = target.text("hosts").unwrap();
    let hosts: HashSet<&str> = hosts.split(',').collect();
    assert_eq!(
        hosts,
        HashSet::from(["10.0.101.2", "192.168.1.0/24"]),
        "{}",
        target.raw
    );
    assert_eq!(target.text("exclude_hosts").as_deref(), Some("192.168.1.1"));
    let fetch = &gvmd.commands("get_reports")[0];
    let filter = fetch.attr("get_reports", "filter").unwrap();
    for term in ["min_qod=30", "levels=chmlg", "rows=-1", "apply_overrides=1"] {
        assert!(filter.contains(term), "{filter}");
    }
    assert!(gvmd.commands("get_tasks").len() >= 3);

    // Every result of the report is stored, in the scan the job names.
    let vulns = ok(&h
        .call(
            "GET",
            "/api/v1/vulns?limit=5000&source=openvas",
            &h.viewer,
            None,
        )
        .await);
    let rows = vulns["vulns"].as_array().unwrap();
    assert_eq!(rows.len(), distinct.len(), "{vulns}");
    let mut stored_keys: Vec<String> = rows
        .iter()
        .map(|v| format!("{} {} {}", v["host"], v["port"], v["nvt_oid"]))
        .collect();
    stored_keys.sort();
    stored_keys.dedup();
    assert_eq!(stored_keys.len(), distinct.len());
    let scans = ok(&h.call("GET", "/api/v1/vulns/scans", &h.viewer, None).await);
    let scan = &scans["scans"][0];
    assert_eq!(scan["id"].as_i64(), Some(scan_id), "{scans}");
    assert_eq!(scan["origin"], "gmp");
    assert_eq!(scan["name"], "weekly");
    assert_eq!(scan["recorded_by"], "scan-job:weekly");

    // A second run uses the same target and task; stopped by hand while it runs.
    gvmd.state.lock().unwrap().hold = true;
    let started = h
        .call("POST", "/api/v1/vulns/jobs/weekly/start", &h.analyst, None)
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let running = h
        .wait_for("weekly", |s| {
            s["status"] == "running" && s["progress"] == 10
        })
        .await;
    assert_eq!(running["state"]["task_id"], state["task_id"]);
    problem(
        &h.call("POST", "/api/v1/vulns/jobs/weekly/start", &h.analyst, None)
            .await,
        409,
        "job-running",
    );
    let stopped = ok(&h
        .call("POST", "/api/v1/vulns/jobs/weekly/stop", &h.analyst, None)
        .await);
    assert_eq!(stopped["state"]["status"], "stopped", "{stopped}");
    assert_eq!(gvmd.commands("stop_task").len(), 1);
    assert_eq!(gvmd.commands("create_target").len(), 1, "target made once");
    assert_eq!(gvmd.commands("create_task").len(), 1, "task made once");
    assert_eq!(gvmd.commands("start_task").len(), 2);
    problem(
        &h.call("POST", "/api/v1/vulns/jobs/weekly/stop", &h.analyst, None)
            .await,
        409,
        "job-not-running",
    );

    // A server restarted while gvmd runs the task picks the run up from the stored state.
    gvmd.state.lock().unwrap().hold = true;
    let started = h
        .call("POST", "/api/v1/vulns/jobs/weekly/start", &h.analyst, None)
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    h.wait_for("weekly", |s| {
        s["status"] == "running" && s["progress"] == 10
    })
    .await;
    h.restart().await;
    let polls_before = gvmd.commands("get_tasks").len();
    gvmd.state.lock().unwrap().hold = false;
    let job = h.wait_for("weekly", finished).await;
    assert_eq!(job["state"]["status"], "done", "{job}");
    assert!(gvmd.commands("get_tasks").len() > polls_before);
    assert_eq!(gvmd.commands("start_task").len(), 3, "not started again");
    assert_eq!(gvmd.commands("get_reports").len(), 2);

    // Each change is audited.
    let audit = h
        .store
        .list_audit(&dozor_model::AuditQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in ["vuln.job.put", "vuln.job.start", "vuln.job.stop"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let delete = h
        .call("DELETE", "/api/v1/vulns/jobs/weekly", &h.admin, None)
        .await;
    assert_eq!(delete.status, 204, "{}", delete.text());
    problem(
        &h.call("GET", "/api/v1/vulns/jobs/weekly", &h.viewer, None)
            .await,
        404,
        "not-found",
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_run_and_bad_settings_are_refused() {
    let h = Harness::start().await;
    let gvmd = FakeGvmd::start(h.dir.path(), String::new());
    let socket = gvmd.socket.display().to_string();
    let spec = json!({
        "targets": {"hosts": ["10.0.0.5"]},
        "gmp": {"socket": socket},
        "username": GVM_USER,
        "password": "not the password",
    });
    ok(&h
        .call(
            "PUT",
            "/api/v1/vulns/jobs/lab",
            &h.admin,
            Some(json!({"spec": spec})),
        )
        .await);
    let started = h
        .call("POST", "/api/v1/vulns/jobs/lab/start", &h.analyst, None)
        .await;
    assert_eq!(started.status, 202, "{}", started.text());
    let job = h.wait_for("lab", finished).await;
    let state = &job["state"];
    assert_eq!(state["status"], "failed", "{job}");
    let error = state["error"].as_str().unwrap_or_default();
    assert!(error.contains("authentication failed"), "{job}");
    assert!(state["error_at"].as_i64().is_some(), "{job}");
    assert_eq!(gvmd.commands("create_target").len(), 0);

    // A TLS endpoint needs a CA file or a pin.
    let mut tls = spec.clone();
    tls["gmp"] = json!({"host": "gvm.example.org", "port": 9390});
    let p = problem(
        &h.call(
            "PUT",
            "/api/v1/vulns/jobs/tls",
            &h.admin,
            Some(json!({"spec": tls})),
        )
        .await,
        422,
        "invalid-job",
    );
    assert_eq!(p["field"], "gmp.ca_pem_file", "{p}");
    // With a pin it is accepted.
    tls["gmp"]["pin_sha256"] = json!("ab".repeat(32));
    ok(&h
        .call(
            "PUT",
            "/api/v1/vulns/jobs/tls",
            &h.admin,
            Some(json!({"spec": tls})),
        )
        .await);

    // More refusals, each naming the member.
    for (patch, field) in [
        (json!({"targets": {}}), "targets"),
        (
            json!({"targets": {"cidrs": ["10.0.0.0/99"]}}),
            "targets.cidrs[0]",
        ),
        (json!({"targets": {"tags": ["dmz"]}}), "targets.tags"),
        (json!({"interval_secs": 600}), "interval_secs"),
        (json!({"password": "***"}), "password"),
    ] {
        let mut bad = spec.clone();
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let p = problem(
            &h.call(
                "PUT",
                "/api/v1/vulns/jobs/new-job",
                &h.admin,
                Some(json!({"spec": bad})),
            )
            .await,
            422,
            "invalid-job",
        );
        assert_eq!(p["field"], field, "{patch}: {p}");
    }
    problem(
        &h.call(
            "PUT",
            "/api/v1/vulns/jobs/.hidden",
            &h.admin,
            Some(json!({"spec": spec})),
        )
        .await,
        400,
        "invalid-parameter",
    );
    // A disabled job is not started by hand.
    ok(&h
        .call(
            "PUT",
            "/api/v1/vulns/jobs/lab",
            &h.admin,
            Some(json!({"spec": spec, "enabled": false})),
        )
        .await);
    problem(
        &h.call("POST", "/api/v1/vulns/jobs/lab/start", &h.analyst, None)
            .await,
        409,
        "job-disabled",
    );
    h.stop().await;
}
