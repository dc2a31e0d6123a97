//! Response (issue 13) end to end with the real binaries: `dozor server` in this machine's
//! network namespace, listening on a veth address; the real `dozor-agent` inside a network
//! namespace "host" (`ip netns exec`), enrolled with a token; a TCP listener on another address
//! of the root namespace stands for any other machine the host could reach.
//!
//! 1. The agent sees a process the test starts in the host (`/bin/sleep 600.<pid>`); a Sigma
//!    rule (`level: critical`, `tags: [dozor.quarantine]`) turns it into an alert, which starts
//!    the shipped `quarantine-host` playbook (the file of `crates/playbook/playbooks`, with a
//!    `webhook_url` set) and the shipped `notify-operator` (webhook too).
//! 2. Nothing happens until approved: the host still reaches "other", no command is queued,
//!    the approval is pending.
//! 3. A second analyst approves (`dozor playbooks approve`): the agent's nftables isolation is
//!    in the host's kernel within 5 s (the host no longer reaches "other", still reaches the
//!    server), the heartbeat reports it, and the signed webhook arrives.
//! 4. Approving "Wait for the release command" releases the host: "other" reachable again.
//! 5. A manual run whose approval is rejected does nothing: no command, no table, `rescue` ran.
//! 6. `dozor agents kill|quarantine|restore --wait` on the process and a file the test created
//!    (four eyes: the requester may not approve; the other analyst does).
//!
//! Timings are printed (`cargo test -p dozor-cli --test response_e2e -- --nocapture`).
//! Needs root, `ip`, `nft`, `bash` and `timeout`; without them the test prints why and passes
//! without checking anything. Network namespace and veth pair are deleted by a Drop guard,
//! also when an assertion fails.

#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The shipped base playbooks, as the server writes them on first start.
const QUARANTINE_HOST: &str = include_str!("../../playbook/playbooks/quarantine-host.yml");
const NOTIFY_OPERATOR: &str = include_str!("../../playbook/playbooks/notify-operator.yml");
const RULE_ID: &str = "5b7c2f4e-0000-4000-8000-0000000013e2";
const HOOK_SECRET: &str = "e2e-hook-secret-5c1f0b";

// ---------------------------------------------------------------------------------------------
// Prerequisites and the network lab

fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root (network namespaces and nft need root)".into());
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("nft", "--version"),
        ("bash", "--version"),
        ("timeout", "--version"),
    ] {
        let found = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    None
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace "host" and its veth pair to the root namespace, where the server listens on
/// `.1` and "other" on `.3`; the host is `.2`. Deleted on drop.
struct Lab {
    ns: String,
    root_link: String,
    server_ip: String,
    other_ip: String,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair; the second command is for a lab that
        // failed half-way.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ns])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_link])
            .stderr(Stdio::null())
            .status();
    }
}

impl Lab {
    fn new() -> Lab {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let id = format!("{:05x}", (std::process::id() ^ nanos) & 0xf_ffff);
        // 10.211.<16..=215>.0/24: two runs at once on one machine pick different subnets
        // unless their pids collide modulo 200.
        let net = 16 + std::process::id() % 200;
        let host_link = format!("dz{id}h");
        let lab = Lab {
            ns: format!("dzre-{id}-host"),
            root_link: format!("dz{id}r"),
            server_ip: format!("10.211.{net}.1"),
            other_ip: format!("10.211.{net}.3"),
        };
        run("ip", &["netns", "add", &lab.ns]);
        run("ip", &["-n", &lab.ns, "link", "set", "lo", "up"]);
        run(
            "ip",
            &[
                "link",
                "add",
                &lab.root_link,
                "type",
                "veth",
                "peer",
                "name",
                &host_link,
                "netns",
                &lab.ns,
            ],
        );
        for ip in [&lab.server_ip, &lab.other_ip] {
            run(
                "ip",
                &["addr", "add", &format!("{ip}/24"), "dev", &lab.root_link],
            );
        }
        run("ip", &["link", "set", &lab.root_link, "up"]);
        run(
            "ip",
            &[
                "-n",
                &lab.ns,
                "addr",
                "add",
                &format!("10.211.{net}.2/24"),
                "dev",
                &host_link,
            ],
        );
        run("ip", &["-n", &lab.ns, "link", "set", &host_link, "up"]);
        lab
    }

    /// `ip netns exec <host> program`.
    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// The host opens a TCP connection to `addr:port` within `timeout` seconds.
    fn reaches(&self, addr: &str, port: u16, timeout: &str) -> bool {
        self.exec("timeout")
            .args([
                timeout,
                "bash",
                "-c",
                "exec 3<>\"/dev/tcp/$0/$1\"",
                addr,
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The host reaches `addr:port`, allowing a few tries (a fresh veth drops the first SYN).
    fn settles(&self, addr: &str, port: u16) -> bool {
        (0..5).any(|_| self.reaches(addr, port, "3"))
    }

    /// Loads `text` with `nft -f -` in the host.
    fn nft_file(&self, text: &str) {
        let mut child = self
            .exec("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("nft input");
        assert!(child.wait().expect("nft").success(), "nft -f: {text}");
    }

    /// The agent's isolation table is in the host's kernel.
    fn isolation_table(&self) -> bool {
        self.exec("nft")
            .args(["list", "table", "inet", "dozor_isolation"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// Prints the end of the server's and the agent's logs when the test fails.
struct LogsOnFailure(PathBuf);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for name in ["server.log", "agent.log"] {
            let text = std::fs::read_to_string(self.0.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- the last lines of {name}:");
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{line}");
            }
        }
    }
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `dozor-agent` binary beside `dozor` (built here when it is missing: this package does
/// not depend on the agent's).
fn agent_bin() -> PathBuf {
    let dozor = PathBuf::from(env!("CARGO_BIN_EXE_dozor"));
    let agent = dozor.with_file_name("dozor-agent");
    if !agent.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "dozor-agent", "--bin", "dozor-agent"]);
        if dozor
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|p| p == "release")
        {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo build dozor-agent");
        assert!(status.success(), "building the dozor-agent binary failed");
    }
    agent
}

/// `dozor server` on `listen` (port 0: any), waiting for its listening line and first token.
// The child is waited for by `Running`'s Drop.
#[allow(clippy::zombie_processes)]
fn start_server(data: &Path, listen: &str, env: &[(&str, &str)]) -> (Running, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dozor"));
    cmd.arg("server")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", listen])
        .env("DOZOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn dozor server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let log = data.with_file_name("server.log");
    std::thread::spawn(move || {
        let mut f = std::fs::File::create(log).ok();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = f.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let _ = tx.send(line);
        }
    });
    let child = Running(child);
    let mut token = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("dozor server did not start"));
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dzt_")) {
            token = Some(t.to_owned());
        }
        if let Some(url) = line.strip_prefix("dozor server listening on ") {
            std::thread::spawn(move || while rx.recv().is_ok() {});
            let token = token.expect("the first start prints an admin token");
            return (child, url.trim().to_owned(), token);
        }
    }
}

/// An analyst's API token, made in the server's store.
fn analyst_token(data: &Path, name: &str) -> String {
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
                name: name.into(),
                role: dozor_store::Role::Analyst,
                expires_at: None,
                owner: None,
            })
            .await
            .expect("create token");
        store.close().await;
        created.secret
    })
}

fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP: the API with curl, the CLI, a webhook receiver

struct Api {
    url: String,
    ca: PathBuf,
    home: PathBuf,
}

impl Api {
    fn call(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(&self.ca)
            .args([
                "-X",
                method,
                "-H",
                &format!("Authorization: Bearer {token}"),
            ]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"])
                .arg(b.to_string());
        }
        let out = cmd
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        let code = code.trim().parse().unwrap_or(0);
        (
            code,
            serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
        )
    }

    fn get(&self, token: &str, path: &str) -> Value {
        let (code, body) = self.call(token, "GET", path, None);
        assert_eq!(code, 200, "GET {path}: {body}");
        body
    }

    /// `dozor ARGS --server URL --token TOKEN --ca CA --format json`, clean environment.
    fn cli(&self, token: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dozor"));
        cmd.env_remove("DOZOR_SERVER")
            .env_remove("DOZOR_TOKEN")
            .env_remove("DOZOR_CA")
            .env_remove("SSL_CERT_FILE")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .stdin(Stdio::null())
            .args(args)
            .args(["--server", &self.url, "--token", token, "--ca"])
            .arg(&self.ca)
            .args(["--format", "json"]);
        cmd
    }

    fn cli_ok(&self, token: &str, args: &[&str]) -> Value {
        let out = self.cli(token, args).output().expect("run dozor");
        assert!(
            out.status.success(),
            "dozor {args:?}: {}",
            output_text(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("dozor {args:?}: not JSON ({e}): {}", output_text(&out)))
    }

    /// The pending approvals matching `pred`, polled until there is one.
    fn pending_approval(&self, token: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for("a pending approval", Duration::from_secs(20), || {
            self.get(token, "/api/v1/approvals?status=pending")["approvals"]
                .as_array()
                .and_then(|a| a.iter().find(|a| pred(a)).cloned())
        })
    }

    fn commands(&self, token: &str, agent: &str) -> Vec<Value> {
        self.get(token, &format!("/api/v1/agents/{agent}/commands"))["commands"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// A playbook run, once it ended.
    fn finished_run(&self, token: &str, id: &str) -> Value {
        wait_for("the run to end", Duration::from_secs(20), || {
            let d = self.get(token, &format!("/api/v1/playbook-runs/{id}"));
            (d["run"]["status"] != "running").then_some(d)
        })
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Hit {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A webhook receiver on 127.0.0.1: every request (HTTP/1.1 with a Content-Length body) is
/// recorded with its arrival time and answered `200 {}`.
fn webhook_receiver() -> (SocketAddr, Arc<Mutex<Vec<Hit>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(Mutex::new(Vec::new()));
    let got = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let got = got.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                        }
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    got.lock().unwrap().push(Hit {
                        at: Instant::now(),
                        path,
                        headers,
                        body,
                    });
                    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
                    if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, hits)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 (RFC 2104) over SHA-256, to check the webhook's signature independently.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// `X-Dozor-Signature: sha256=<hex HMAC(secret, "<X-Dozor-Timestamp>.<body>")>`.
fn signature_ok(hit: &Hit) -> bool {
    let (Some(ts), Some(sig)) = (
        hit.header("x-dozor-timestamp"),
        hit.header("x-dozor-signature"),
    ) else {
        return false;
    };
    let mut message = ts.as_bytes().to_vec();
    message.push(b'.');
    message.extend_from_slice(&hit.body);
    sig == format!(
        "sha256={}",
        hex(&hmac_sha256(HOOK_SECRET.as_bytes(), &message))
    )
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------

#[test]
fn alert_to_approved_isolation_notification_release_kill_and_quarantine() {
    if let Some(reason) = missing_prerequisite() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let _logs = LogsOnFailure(dir.path().to_owned());
    let lab = Lab::new();

    // "other": any machine the host can reach before it is isolated.
    let other = TcpListener::bind((lab.other_ip.as_str(), 0)).expect("bind other");
    let other_port = other.local_addr().expect("addr").port();
    std::thread::spawn(move || for _ in other.incoming() {});
    let (hook_addr, hooks) = webhook_receiver();

    // The shipped playbooks with a webhook each; the rule that raises the quarantine trigger.
    let playbooks = dir.path().join("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(
        playbooks.join("quarantine-host.yml"),
        QUARANTINE_HOST.replace(
            "    webhook_url: \"\"",
            &format!("    webhook_url: \"http://{hook_addr}/quarantine\""),
        ),
    )
    .unwrap();
    std::fs::write(
        playbooks.join("notify-operator.yml"),
        NOTIFY_OPERATOR.replace(
            "    webhook_url: \"\"",
            &format!("    webhook_url: \"http://{hook_addr}/notify\""),
        ),
    )
    .unwrap();
    for (name, text) in [
        ("quarantine-host.yml", QUARANTINE_HOST),
        ("notify-operator.yml", NOTIFY_OPERATOR),
    ] {
        assert_ne!(
            std::fs::read_to_string(playbooks.join(name)).unwrap(),
            text,
            "{name}: its `webhook_url` variable was not found"
        );
    }
    let marker = format!("600.{}", std::process::id());
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(
        rules.join("quarantine-e2e.yml"),
        format!(
            "title: E2E sleeper to quarantine\nid: {RULE_ID}\nlevel: critical\n\
             tags: [dozor.quarantine]\n\
             logsource: {{product: linux, category: process_creation}}\n\
             detection:\n  sel:\n    Image|endswith: '/sleep'\n    CommandLine|contains: '{marker}'\n  \
             condition: sel\n"
        ),
    )
    .unwrap();

    // --- the server, on the lab's address.
    let data = dir.path().join("data");
    let (_server, url, admin) = start_server(
        &data,
        &format!("{}:0", lab.server_ip),
        &[
            ("DOZOR_RULES_DIRS", rules.to_str().unwrap()),
            ("DOZOR_TLS_HOSTNAMES", lab.server_ip.as_str()),
            ("DOZOR_AGENT_HEARTBEAT_INTERVAL", "1s"),
            ("DOZOR_RESPONSE_PLAYBOOKS_DIR", playbooks.to_str().unwrap()),
            ("DOZOR_RESPONSE_OTHER_APPROVER", "true"),
            ("DOZOR_NOTIFY_WEBHOOK_SECRET", HOOK_SECRET),
        ],
    );
    let server_port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"));
    let api = Api {
        url: url.clone(),
        ca: data.join("pki").join("ca.crt.pem"),
        home: dir.path().join("home"),
    };
    let alice = analyst_token(&data, "alice-analyst");
    let bob = analyst_token(&data, "bob-analyst");
    assert!(
        lab.settles(&lab.server_ip, server_port),
        "the host never reached the server"
    );
    assert!(
        lab.settles(&lab.other_ip, other_port),
        "the host never reached other"
    );
    let playbook_list = api.get(&admin, "/api/v1/playbooks");
    for name in ["quarantine-host", "notify-operator"] {
        let p = playbook_list["playbooks"]
            .as_array()
            .and_then(|l| l.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("{name} not loaded: {playbook_list}"));
        assert!(p["error"].is_null(), "{p}");
        assert_eq!(p["enabled"], true, "{p}");
    }

    // --- the agent, enrolled and running inside the host namespace.
    let state = dir.path().join("agent-state");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\nlog = \"info\"\n\n\
             [transport]\nbatch_max_delay_ms = 200\ninitial_backoff_ms = 200\nmax_backoff_secs = 2\n\
             heartbeat_interval_secs = 1\n\n\
             [collect]\nlevel = \"standard\"\n\n\
             [collect.process]\nmode = \"poll\"\npoll_interval_ms = 200\nhash = false\n\n\
             [collect.network]\nenabled = false\n\n[collect.fim]\nenabled = false\n\n\
             [collect.auth]\nenabled = false\n\n[scan]\nenabled = false\n",
            state.display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dozor"))
        .args(["tokens", "create", "--expires", "1h", "--uses", "1"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("dozor tokens create");
    assert!(out.status.success(), "tokens create: {}", output_text(&out));
    let enrollment = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let agent_bin = agent_bin();
    let out = lab
        .exec(&agent_bin)
        .arg("--config")
        .arg(&config)
        .args([
            "enroll",
            "--server",
            &url,
            "--token",
            &enrollment,
            "--ca-file",
        ])
        .arg(&api.ca)
        .output()
        .expect("dozor-agent enroll");
    assert!(out.status.success(), "enroll: {}", output_text(&out));
    let out = Command::new(&agent_bin)
        .arg("--config")
        .arg(&config)
        .args(["status", "--json"])
        .output()
        .expect("dozor-agent status");
    let status: Value = serde_json::from_slice(&out.stdout).expect("status json");
    let agent_id = status["identity"]["agent_id"]
        .as_str()
        .expect("agent id")
        .to_owned();
    let agent_log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let _agent = Running(
        lab.exec(&agent_bin)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("DOZOR_AGENT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(agent_log)
            .spawn()
            .expect("spawn dozor-agent"),
    );
    wait_for("the agent to be online", Duration::from_secs(30), || {
        let a = api.get(&admin, &format!("/api/v1/agents/{agent_id}"));
        (a["status"] == "online").then_some(())
    });
    // The process collector reports processes that start after its first snapshot: wait until
    // it sends anything (the test's own curl calls are processes too).
    wait_for("the agent's first event", Duration::from_secs(30), || {
        let e = api.get(&admin, &format!("/api/v1/events?agent={agent_id}&limit=1"));
        e["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
            .then_some(())
    });
    println!("lab, server and agent up after {}", secs(started.elapsed()));

    // --- 1. a process in the host → event → critical alert → quarantine-host starts.
    let mut sleeper = Running(
        lab.exec("/bin/sleep")
            .arg(&marker)
            .spawn()
            .expect("start the sleeper"),
    );
    let sleeper_pid = sleeper.0.id();
    let spawned = Instant::now();
    let alert = wait_for("the critical alert", Duration::from_secs(30), || {
        api.get(&admin, &format!("/api/v1/alerts?rule={RULE_ID}"))["alerts"]
            .as_array()
            .and_then(|a| a.first().cloned())
    });
    println!(
        "alert {} raised {} after the process started",
        alert["id"],
        secs(spawned.elapsed())
    );
    assert_eq!(alert["agent_id"], agent_id.as_str(), "{alert}");
    assert_eq!(alert["level"], "critical", "{alert}");
    let alert_id = alert["id"].as_i64().expect("alert id");
    let run = wait_for("the quarantine-host run", Duration::from_secs(20), || {
        api.get(&admin, "/api/v1/playbook-runs?playbook=quarantine-host")["runs"]
            .as_array()
            .and_then(|r| r.first().cloned())
    });
    assert_eq!(run["alert_id"], alert_id, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let isolate_approval = api.pending_approval(&alice, |a| a["run_id"] == run_id.as_str());
    assert_eq!(isolate_approval["action"], "approve", "{isolate_approval}");
    assert!(
        isolate_approval["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Isolate ") && r.contains(&agent_id)),
        "{isolate_approval}"
    );

    // --- 2. nothing happens until approved.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        lab.reaches(&lab.other_ip, other_port, "3"),
        "the host lost other before any approval"
    );
    assert!(!lab.isolation_table(), "isolated before any approval");
    assert!(
        api.commands(&admin, &agent_id).is_empty(),
        "a command was queued before any approval"
    );
    let detail = api.get(&admin, &format!("/api/v1/playbook-runs/{run_id}"));
    assert_eq!(detail["run"]["status"], "running", "{detail}");
    assert!(
        !hooks
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.path == "/quarantine"),
        "notified of an isolation before any approval"
    );

    // The alert reached the operators through notify-operator meanwhile (signed).
    let notified = wait_for("notify-operator's webhook", Duration::from_secs(10), || {
        let hooks = hooks.lock().unwrap();
        hooks.iter().find(|h| h.path == "/notify").map(|h| {
            assert!(signature_ok(h), "bad signature: {:?}", h.headers);
            h.json()
        })
    });
    assert_eq!(notified["alert_id"], alert_id, "{notified}");
    assert_eq!(notified["rule_id"], RULE_ID, "{notified}");

    // --- 3. approve (the second analyst, through the CLI): isolated within 5 s, notified.
    let approved_at = Instant::now();
    let decided = api.cli_ok(
        &bob,
        &[
            "playbooks",
            "approve",
            isolate_approval["id"].as_str().unwrap(),
            "--comment",
            "confirmed: isolate",
        ],
    );
    assert_eq!(decided["status"], "approved", "{decided}");
    assert_eq!(decided["decided_by"], "bob-analyst", "{decided}");
    wait_for(
        "the isolation table in the host",
        Duration::from_secs(5),
        || lab.isolation_table().then_some(()),
    );
    let applied_after = approved_at.elapsed();
    println!(
        "isolation applied {} after the approval",
        secs(applied_after)
    );
    assert!(applied_after < Duration::from_secs(5), "{applied_after:?}");
    let isolate = wait_for("the isolate_host result", Duration::from_secs(15), || {
        api.commands(&admin, &agent_id).into_iter().find(|c| {
            c["kind"] == "isolate_host" && c["status"] != "pending" && c["status"] != "delivered"
        })
    });
    let isolate = api.get(
        &admin,
        &format!("/api/v1/commands/{}", isolate["id"].as_str().unwrap()),
    );
    assert_eq!(isolate["status"], "done", "{isolate}");
    assert_eq!(isolate["result"]["phase"], "isolated", "{isolate}");
    println!(
        "agent: applied and verified the server reachable in {} ms (self-check included)",
        isolate["result"]["took_ms"]
    );
    assert!(
        isolate["result"]["took_ms"]
            .as_u64()
            .is_some_and(|ms| ms < 10_000),
        "{isolate}"
    );
    assert!(
        !lab.reaches(&lab.other_ip, other_port, "2"),
        "the isolated host still reaches other"
    );
    assert!(
        lab.reaches(&lab.server_ip, server_port, "3"),
        "the isolated host lost the server"
    );
    let isolate_command = isolate["id"].as_str().unwrap().to_owned();
    let agent_view = wait_for(
        "the heartbeat's isolation report",
        Duration::from_secs(10),
        || {
            let a = api.get(&admin, &format!("/api/v1/agents/{agent_id}"));
            (a["isolation"]["phase"] == "isolated").then_some(a)
        },
    );
    assert_eq!(
        agent_view["isolation"]["command_id"],
        isolate_command.as_str(),
        "{agent_view}"
    );
    assert_eq!(agent_view["status"], "online", "{agent_view}");
    let hit = wait_for(
        "the isolation notification",
        Duration::from_secs(10),
        || {
            let hooks = hooks.lock().unwrap();
            hooks.iter().find(|h| h.path == "/quarantine").map(|h| {
                assert!(signature_ok(h), "bad signature: {:?}", h.headers);
                (h.at, h.json())
            })
        },
    );
    println!(
        "isolation notification received {} after the approval",
        secs(hit.0.duration_since(approved_at))
    );
    assert_eq!(hit.1["event"], "host_isolated", "{}", hit.1);
    assert_eq!(hit.1["agent_id"], agent_id.as_str(), "{}", hit.1);
    assert!(
        hit.1["link"]
            .as_str()
            .is_some_and(|l| l.ends_with(&format!("/ui/alerts/{alert_id}"))),
        "{}",
        hit.1
    );

    // --- 4. the release order: approving it releases the host.
    let release_approval = api.pending_approval(&alice, |a| {
        a["run_id"] == run_id.as_str()
            && a["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("Release "))
    });
    assert!(lab.isolation_table(), "released before the release order");
    let release_at = Instant::now();
    api.cli_ok(
        &bob,
        &[
            "playbooks",
            "approve",
            release_approval["id"].as_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.isolation_table() {
        if Instant::now() > deadline {
            panic!(
                "not released 10 s after the release order\nrun: {}\ncommands: {:?}\nagent: {}",
                api.get(&admin, &format!("/api/v1/playbook-runs/{run_id}")),
                api.commands(&admin, &agent_id),
                api.get(&admin, &format!("/api/v1/agents/{agent_id}")),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "released {} after the release order",
        secs(release_at.elapsed())
    );
    assert!(
        lab.reaches(&lab.other_ip, other_port, "3"),
        "other unreachable after the release"
    );
    let detail = api.finished_run(&admin, &run_id);
    assert_eq!(detail["run"]["status"], "succeeded", "{detail}");
    let release = api
        .commands(&admin, &agent_id)
        .into_iter()
        .find(|c| c["kind"] == "release_host")
        .expect("a release_host command");
    assert_eq!(release["status"], "done", "{release}");
    wait_for(
        "the heartbeat without isolation",
        Duration::from_secs(10),
        || {
            api.get(&admin, &format!("/api/v1/agents/{agent_id}"))["isolation"]
                .is_null()
                .then_some(())
        },
    );

    // --- 5. a rejected approval does nothing.
    let manual = api.cli_ok(
        &alice,
        &["playbooks", "run", "quarantine-host", "--agent", &agent_id],
    );
    let manual_id = manual["id"].as_str().expect("run id").to_owned();
    let ask = api.pending_approval(&bob, |a| a["run_id"] == manual_id.as_str());
    assert_eq!(ask["requested_by"], "alice-analyst", "{ask}");
    // Four eyes: the requester may not decide.
    let out = api
        .cli(
            &alice,
            &["playbooks", "approve", ask["id"].as_str().unwrap()],
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the requester approved their own request: {}",
        output_text(&out)
    );
    let rejected = api.cli_ok(
        &bob,
        &[
            "playbooks",
            "reject",
            ask["id"].as_str().unwrap(),
            "--comment",
            "false positive",
        ],
    );
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    let detail = api.finished_run(&admin, &manual_id);
    assert_eq!(detail["run"]["status"], "failed", "{detail}");
    let tasks: Vec<&str> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["record"]["task"].as_str())
        .collect();
    assert!(
        tasks.contains(&"Report that the host was not isolated"),
        "rescue did not run: {detail}"
    );
    assert!(
        !tasks.contains(&"Isolate the host from everything but the Dozor server"),
        "the isolation step ran after a rejection: {detail}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let kinds: Vec<String> = api
        .commands(&admin, &agent_id)
        .iter()
        .map(|c| c["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "isolate_host").count(),
        1,
        "a command after the rejection: {kinds:?}"
    );
    assert!(!lab.isolation_table(), "isolated after a rejection");
    assert!(
        lab.reaches(&lab.other_ip, other_port, "3"),
        "other unreachable after a rejection"
    );

    // --- 6. kill the process the alert was about (pid + start time from its event).
    let alert_detail = api.get(&admin, &format!("/api/v1/alerts/{alert_id}"));
    let event = alert_detail["events"]
        .as_array()
        .and_then(|e| e.first())
        .expect("the alert's event")
        .clone();
    assert_eq!(event["doc"]["process"]["pid"], sleeper_pid, "{event}");
    let start_ms = chrono::DateTime::parse_from_rfc3339(
        event["doc"]["process"]["start"]
            .as_str()
            .expect("process.start"),
    )
    .expect("RFC 3339 start")
    .timestamp_millis();
    let pid = sleeper_pid.to_string();
    let start = start_ms.to_string();
    // Asked with the CLI (without --wait: see `approved_command`), approved by the other analyst.
    let asked = api.cli_ok(
        &alice,
        &[
            "agents",
            "kill",
            &agent_id,
            "--pid",
            &pid,
            "--start-time",
            &start,
            "--reason",
            "e2e",
        ],
    );
    assert!(asked["command"].is_null(), "kill without approval: {asked}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        sleeper.0.try_wait().unwrap().is_none(),
        "killed before the approval"
    );
    let kill_at = Instant::now();
    let killed = approved_command(&api, &alice, &bob, &asked["approval"]);
    assert_eq!(killed["status"], "done", "{killed}");
    assert_eq!(killed["result"]["killed"], true, "{killed}");
    let exit = wait_for("the sleeper to die", Duration::from_secs(5), || {
        sleeper.0.try_wait().unwrap()
    });
    assert_eq!(exit.signal(), Some(9), "{exit:?}");
    println!(
        "process killed {} after the approval",
        secs(kill_at.elapsed())
    );

    // --- quarantine a file the test made, then restore it.
    let files = dir.path().join("host-files");
    std::fs::create_dir_all(&files).unwrap();
    let dropper = files.join("dropper.sh");
    let content = format!("#!/bin/sh\necho dozor e2e {}\n", std::process::id());
    std::fs::write(&dropper, &content).unwrap();
    std::fs::set_permissions(&dropper, std::fs::Permissions::from_mode(0o750)).unwrap();
    let path = dropper.to_str().unwrap().to_owned();
    let asked = api.cli_ok(&alice, &["agents", "quarantine", &agent_id, &path]);
    assert!(
        asked["command"].is_null(),
        "quarantine without approval: {asked}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(dropper.exists(), "quarantined before the approval");
    let quarantined = approved_command(&api, &alice, &bob, &asked["approval"]);
    assert_eq!(quarantined["status"], "done", "{quarantined}");
    let record = &quarantined["result"];
    assert_eq!(
        record["sha256"],
        hex(&Sha256::digest(content.as_bytes())),
        "{record}"
    );
    assert_eq!(record["original_path"], path.as_str(), "{record}");
    assert!(!dropper.exists(), "the file is still in place");
    let qid = record["quarantine_id"].as_str().expect("quarantine id");
    // restore_file is not destructive: queued at once, followed by --wait.
    let restored = api.cli_ok(
        &alice,
        &["agents", "restore", &agent_id, qid, "--wait", "30"],
    );
    assert_eq!(restored["status"], "done", "{restored}");
    assert_eq!(std::fs::read_to_string(&dropper).unwrap(), content);
    assert_eq!(
        std::fs::metadata(&dropper).unwrap().permissions().mode() & 0o777,
        0o750
    );

    // --- 7. an isolation that cuts the host off the server rolls back by itself. Another table
    // drops new connections to the server (the long poll's open connection keeps working), so
    // the agent's self-check (a new connection) fails for its whole timeout — the agent's
    // default (8 s), as an operator's `dozor agents isolate` or `quarantine-host` gets it.
    let block = format!(
        "table inet e2e_block {{ chain output {{ type filter hook output priority filter - 20; \
         policy accept; ip daddr {} tcp dport {server_port} ct state new drop; }}; }}\n",
        lab.server_ip
    );
    lab.nft_file(&block);
    let (code, asked) = api.call(
        &alice,
        "POST",
        &format!("/api/v1/agents/{agent_id}/actions"),
        Some(&serde_json::json!({
            "kind": "isolate_host",
            "args": {},
            "reason": "e2e rollback"
        })),
    );
    assert_eq!(code, 202, "{asked}");
    let decided = api.cli_ok(
        &bob,
        &[
            "playbooks",
            "approve",
            asked["approval"]["id"].as_str().expect("an approval"),
        ],
    );
    let command = decided["command_id"]
        .as_str()
        .expect("a command")
        .to_owned();
    wait_for(
        "the isolation to be applied",
        Duration::from_secs(5),
        || lab.isolation_table().then_some(()),
    );
    let applied_at = Instant::now();
    wait_for("the rollback", Duration::from_secs(20), || {
        (!lab.isolation_table()).then_some(())
    });
    let rolled_back = applied_at.elapsed();
    lab.nft_file("table inet e2e_block\ndelete table inet e2e_block\n");
    println!(
        "isolation without the server rolled back {} after it was applied (default self-check timeout)",
        secs(rolled_back)
    );
    assert!(
        rolled_back < Duration::from_secs(10),
        "rolled back only after {rolled_back:?}"
    );
    let failed = wait_for("the failed isolation", Duration::from_secs(20), || {
        let c = api.get(&admin, &format!("/api/v1/commands/{command}"));
        matches!(c["status"].as_str(), Some("done" | "failed" | "expired")).then_some(c)
    });
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("rolled back")),
        "{failed}"
    );
    assert!(
        lab.reaches(&lab.other_ip, other_port, "3"),
        "other unreachable after the rollback"
    );

    println!("response end to end took {}", secs(started.elapsed()));
}

/// A direct action's approval (`requested_by` the requester): the requester may not approve
/// it (four eyes), the other analyst does with `dozor playbooks approve`, whose answer names the
/// queued command; the command once the agent reported it.
///
/// `dozor agents kill|quarantine --wait` is not used here: it reads the approval every 500 ms
/// and gives up ("the server queued no command") when it sees it approved before the server
/// recorded the command id (approvals::decide writes the decision, an audit entry, the command,
/// then the id, in separate statements).
fn approved_command(api: &Api, requester: &str, approver: &str, approval: &Value) -> Value {
    let id = approval["id"].as_str().expect("an approval id");
    assert_eq!(approval["status"], "pending", "{approval}");
    let out = api
        .cli(requester, &["playbooks", "approve", id])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the requester approved their own request: {}",
        output_text(&out)
    );
    let decided = api.cli_ok(approver, &["playbooks", "approve", id]);
    assert_eq!(decided["status"], "approved", "{decided}");
    let command = decided["command_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no command queued: {decided}"))
        .to_owned();
    wait_for("the command's result", Duration::from_secs(30), || {
        let c = api.get(approver, &format!("/api/v1/commands/{command}"));
        matches!(c["status"].as_str(), Some("done" | "failed" | "expired")).then_some(c)
    })
}
