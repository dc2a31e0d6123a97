//! Helpers shared by the end-to-end tests: the real `dozor server` and `dozor-agent` binaries
//! on 127.0.0.1 with temp directories, curl with the server's CA pinned, polling.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::Digest;

/// The `dozor` binary: built beside this package's binary by `cargo test --workspace`; built
/// here when this package's tests run alone.
pub fn dozor_bin() -> PathBuf {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_dozor-agent"));
    let dozor = agent.with_file_name("dozor");
    if !dozor.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "dozor-cli", "--bin", "dozor"])
            .status()
            .expect("cargo build dozor");
        assert!(status.success(), "building the dozor binary failed");
    }
    dozor
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A child process killed when dropped, stopped gracefully by [`Running::stop`].
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// SIGTERM, then wait (at most 30 s) for a successful exit.
    pub fn stop(mut self, what: &str) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                assert!(status.success(), "{what} exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what} did not stop within 30 s of SIGTERM");
    }
}

pub struct Server {
    pub process: Running,
    pub url: String,
    pub token: Option<String>,
}

impl Server {
    /// The server drains its queue into the store before it exits.
    pub fn stop(self) {
        self.process.stop("dozor server");
    }
}

// The child is waited for by `Running`'s Drop.
#[allow(clippy::zombie_processes)]
pub fn start_server(data: &Path, port: u16, env: &[(&str, &str)]) -> Server {
    let rules = data.with_file_name("rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    let mut cmd = Command::new(dozor_bin());
    cmd.arg("server")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("DOZOR_RULES_DIRS", &rules)
        .env("DOZOR_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn dozor server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    let log = data.with_file_name(format!("server-{}.log", child.id()));
    std::thread::spawn(move || {
        let mut f = std::fs::File::create(log).ok();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(f) = f.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let _ = tx.send(line);
        }
    });
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
            return Server {
                process: Running(child),
                url: url.trim().to_owned(),
                token,
            };
        }
    }
}

pub struct Agent(pub Running);

impl Agent {
    pub fn stop(self) {
        self.0.stop("dozor-agent");
    }
}

pub fn agent_cmd(config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dozor-agent"));
    cmd.arg("--config").arg(config);
    cmd
}

#[allow(clippy::zombie_processes)]
pub fn start_agent(config: &Path, log: &Path) -> Agent {
    let log = std::fs::File::create(log).expect("agent log");
    let child = agent_cmd(config)
        .arg("run")
        .env("DOZOR_AGENT_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn dozor-agent");
    Agent(Running(child))
}

/// curl with the server's CA pinned: (status, body).
pub fn curl(server: &str, ca: &Path, args: &[&str], path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(args)
        .arg(format!("{server}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

pub fn api(server: &str, ca: &Path, token: &str, path: &str) -> Value {
    let (status, body) = curl(
        server,
        ca,
        &["-H", &format!("Authorization: Bearer {token}")],
        path,
    );
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("json")
}

pub fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every stored event of an agent matching `q` (all pages).
pub fn events(server: &str, ca: &Path, token: &str, agent: &str, q: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/events?agent={agent}&limit=1000&q={}", encode(q));
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let page = api(server, ca, token, &path);
        out.extend(page["events"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn dozor(args: &[&str], data: &Path) -> (i32, String, String) {
    let out = Command::new(dozor_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("run dozor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn enrollment_token(data: &Path, extra: &[&str]) -> String {
    let mut args = vec!["tokens", "create"];
    args.extend_from_slice(extra);
    let (code, secret, err) = dozor(&args, data);
    assert_eq!(code, 0, "tokens create: {err}");
    assert!(secret.starts_with("dze_"), "{secret}");
    secret
}

/// Enrolls the agent of `config` with a new one-use token of the server in `data`, trusting
/// `ca`; its agent id.
pub fn enroll_with_new_token(config: &Path, data: &Path, url: &str, ca: &Path) -> String {
    let token = enrollment_token(data, &["--expires", "1h", "--uses", "1"]);
    let out = agent_cmd(config)
        .args(["enroll", "--server", url, "--token", &token, "--ca-file"])
        .arg(ca)
        .output()
        .unwrap();
    assert_succeeded(&out, "enroll");
    enrolled_agent_id(config)
}

/// Fails the test with the command's stderr when it did not exit 0.
pub fn assert_succeeded(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The agent id of the identity the agent of `config` holds (`dozor-agent status`).
pub fn enrolled_agent_id(config: &Path) -> String {
    status(config)["identity"]["agent_id"]
        .as_str()
        .expect("agent id")
        .to_owned()
}

/// Waits until the server lists `agent_id` as online.
pub fn wait_online(url: &str, ca: &Path, admin: &str, agent_id: &str, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        (api(url, ca, admin, &format!("/api/v1/agents/{agent_id}"))["status"] == "online")
            .then_some(())
    });
}

pub fn write_config(dir: &Path, watched: &Path, auth_log: &Path) -> PathBuf {
    write_config_with(dir, watched, auth_log, "")
}

/// The test configuration plus `extra` TOML at the end.
pub fn write_config_with(dir: &Path, watched: &Path, auth_log: &Path, extra: &str) -> PathBuf {
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_dir = "{state}"
log = "info"

[transport]
batch_max_delay_ms = 200
initial_backoff_ms = 200
max_backoff_secs = 2
heartbeat_interval_secs = 1

[collect]
level = "standard"

[collect.process]
poll_interval_ms = 200

[collect.network]
poll_interval_ms = 500

[collect.fim]
paths = ["{watched}"]
debounce_ms = 200

[collect.auth]
paths = ["{auth}"]
journald = false
{extra}
"#,
            state = dir.join("state").display(),
            watched = watched.display(),
            auth = auth_log.display(),
        ),
    )
    .expect("write agent config");
    config
}

pub fn status(config: &Path) -> Value {
    let out = agent_cmd(config)
        .args(["status", "--json"])
        .output()
        .expect("dozor-agent status");
    serde_json::from_slice(&out.stdout).expect("status json")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
