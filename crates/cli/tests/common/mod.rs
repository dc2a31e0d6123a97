//! What the CLI's end-to-end tests share: a real `dozor server` on 127.0.0.1 with a temporary
//! data directory, its CA, and ingest with curl.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub url: String,
    pub token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dozor server` and waits for its listening line and the first-start admin token.
// The child is waited for by `Server`'s Drop, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn start_server(data: &Path, rules: &Path, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dozor"))
        .arg("server")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .env("DOZOR_RULES_DIRS", rules)
        .env("DOZOR_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dozor server");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end so the server never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
            let _ = child.kill();
            panic!("dozor server did not start");
        };
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("dzt_")) {
            token = Some(t.to_owned());
        }
        if let Some(url) = line.strip_prefix("dozor server listening on ") {
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return Server {
                child,
                url: url.trim().to_owned(),
                token: token.expect("first start prints an admin token"),
            };
        }
    }
}

pub fn fetch_ca(url: &str, dir: &Path) -> PathBuf {
    // The CA is public; fetching it unverified once is how a client bootstraps pinning.
    let out = Command::new("curl")
        .arg("-sk")
        .arg(format!("{url}/api/v1/ca.pem"))
        .output()
        .expect("curl");
    assert!(out.stdout.starts_with(b"-----BEGIN CERTIFICATE-----"));
    let path = dir.join("ca.pem");
    std::fs::write(&path, &out.stdout).expect("write ca");
    path
}

/// Sends NDJSON events with curl (the CA pinned), as an agent or importer would.
pub fn ingest(s: &Server, ca: &Path, events: &[String]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("events.ndjson");
    std::fs::write(&body, events.join("\n")).expect("write events");
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(["-H", &format!("Authorization: Bearer {}", s.token)])
        .args(["-H", "Content-Type: application/x-ndjson", "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(format!("{}/api/v1/ingest", s.url))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("202"), "ingest: {text}");
}

/// What a `dozor` run printed.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The real `dozor` binary run against a server, with its CA and a private home directory.
pub struct Ctx<'a> {
    pub server: &'a Server,
    pub ca: PathBuf,
    pub home: PathBuf,
}

impl Ctx<'_> {
    pub fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_dozor"))
            .env_remove("DOZOR_SERVER")
            .env_remove("DOZOR_TOKEN")
            .env_remove("DOZOR_CA")
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .stdin(Stdio::null())
            .args(args)
            .args([
                "--server",
                &self.server.url,
                "--token",
                &self.server.token,
                "--ca",
            ])
            .arg(&self.ca)
            .output()
            .expect("run dozor");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects exit code 0.
    pub fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(
            out.code, 0,
            "dozor {args:?}: {}\n{}",
            out.stdout, out.stderr
        );
        out
    }

    /// `PUT` with curl as the admin (for settings the CLI has no command for).
    pub fn put(&self, path: &str, body: &serde_json::Value) {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(&self.ca)
            .args(["-X", "PUT", "-H"])
            .arg(format!("Authorization: Bearer {}", self.server.token))
            .args(["-H", "Content-Type: application/json", "--data-binary"])
            .arg(body.to_string())
            .arg(format!("{}{path}", self.server.url))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "PUT {path}");
    }
}

/// The value of `key` in `key  value` output.
pub fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| {
        l.strip_prefix(key)
            .filter(|rest| rest.starts_with("  "))
            .map(str::trim)
    })
}

/// ../shared (or DOZOR_SHARED_DIR): `None`, with a message, when it is absent and the
/// variable unset; a set variable naming a missing directory fails (CI sets it).
pub fn shared_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DOZOR_SHARED_DIR") {
        let p = PathBuf::from(dir);
        assert!(
            p.is_dir(),
            "DOZOR_SHARED_DIR={} does not exist",
            p.display()
        );
        return Some(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if p.is_dir() {
        Some(p)
    } else {
        println!("skipped: ../shared not found and DOZOR_SHARED_DIR unset");
        None
    }
}
