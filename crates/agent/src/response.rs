//! The response commands (issue 13): one dispatcher for the commands of the long poll and of
//! heartbeat answers, the actions behind it (through `dozor-respond`), the isolation's resume
//! and auto-release at agent start, and the isolation report of heartbeats.
//!
//! **Once per command id.** Delivery is at least once (a command arrives by the long poll and
//! again in a heartbeat answer; a lost result makes the server offer it again). The dispatcher
//! runs each id once: ids queued or running are skipped, and the last
//! [`FINISHED_KEEP`] finished commands are kept with their results in
//! `<state dir>/response-commands.json` (0600) — a command offered again after it finished,
//! even after an agent restart, is not run again; its stored result is sent again. A command
//! is recorded as `running` before it starts: one that was running when the agent stopped is
//! reported `failed` ("interrupted") instead of being run a second time.
//!
//! **Off the delivery threads.** Commands run one at a time on the `response` worker thread,
//! which drives `dozor-respond`'s async API with a current-thread tokio runtime.

use std::collections::{HashSet, VecDeque};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use dozor_model::CommandStatus;
use dozor_model::api::{CommandDelivery, CommandResultRequest};
use dozor_model::response::{
    self as r, BlockIpArgs, CollectFileArgs, FileArgs, IsolateHostArgs, IsolationReport,
    KillProcessArgs, ReleaseHostArgs, RestoreFileArgs, check_command_args,
};
use dozor_respond::quarantine::Vault;
use dozor_respond::{IsolateCommand, IsolationSpec, Isolator, ResumeOutcome, SelfCheck, TcpProbe};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::scanner::ServerLink;

/// The finished commands' file in the state directory.
pub const FINISHED_FILE: &str = "response-commands.json";
/// How many finished commands are remembered.
pub const FINISHED_KEEP: usize = 1000;
/// Default self-check timeout of `isolate_host`: short enough that a host the isolation cut
/// off from the server is rolled back within 10 s of the rules being applied (the response
/// bar), long enough for a loaded server to accept one new connection.
const DEFAULT_CHECK_SECS: u64 = 8;
/// Longest self-check a command may ask for.
const MAX_CHECK_SECS: u64 = 600;

/// The firewall backend of this platform.
#[cfg(windows)]
pub type Backend = dozor_respond::netsh::NetshBackend;
#[cfg(not(windows))]
pub type Backend = dozor_respond::nft::NftBackend;

#[cfg(windows)]
type Blocker = dozor_respond::block::NetshBlocker;
#[cfg(not(windows))]
type Blocker = dozor_respond::block::NftBlocker;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A command as remembered: `running`, `done` or `failed`, with what was reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub id: String,
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub result: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub at_unix_ms: i64,
}

impl Finished {
    fn request(&self) -> CommandResultRequest {
        let done = self.status == "done";
        CommandResultRequest {
            status: if done {
                CommandStatus::Done
            } else {
                CommandStatus::Failed
            },
            result: Some(if self.result.is_null() {
                json!({})
            } else {
                self.result.clone()
            }),
            error: if done { None } else { self.error.clone() },
        }
    }
}

/// The persisted list of the last [`FINISHED_KEEP`] commands.
#[derive(Debug)]
pub struct FinishedLog {
    path: PathBuf,
    entries: VecDeque<Finished>,
}

impl FinishedLog {
    /// Reads the file (missing or unreadable: empty, with a warning). Commands recorded as
    /// `running` were interrupted by a stop: they become `failed` and are never run again.
    pub fn load(path: PathBuf) -> Self {
        let mut entries: VecDeque<Finished> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), "unreadable finished-commands file, starting empty: {e}");
                VecDeque::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => VecDeque::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the finished-commands file: {e}");
                VecDeque::new()
            }
        };
        let mut changed = false;
        for e in entries.iter_mut().filter(|e| e.status == "running") {
            e.status = "failed".into();
            e.error =
                Some("the agent stopped while running this command; it is not run again".into());
            changed = true;
        }
        let log = Self { path, entries };
        if changed && let Err(e) = log.save() {
            tracing::warn!("{e:#}");
        }
        log
    }

    pub fn get(&self, id: &str) -> Option<&Finished> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Records (replacing the entry of the same id), keeps the newest [`FINISHED_KEEP`], saves.
    pub fn put(&mut self, entry: Finished) -> Result<()> {
        self.entries.retain(|e| e.id != entry.id);
        self.entries.push_back(entry);
        while self.entries.len() > FINISHED_KEEP {
            self.entries.pop_front();
        }
        self.save()
    }

    /// Removes a command that never started.
    pub fn forget(&mut self, id: &str) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        if self.entries.len() == before {
            return Ok(());
        }
        self.save()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.entries)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&bytes)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Runs one validated command; `Ok` is the `done` result, `Err` the `failed` reason.
pub trait Executor: Send + Sync + 'static {
    /// Called once on the worker thread before the first command (isolation resume).
    fn start(&self) {}
    fn execute(&self, id: &str, kind: &str, args: &Value) -> std::result::Result<Value, String>;
}

/// Where results go (`POST /api/v1/agents/commands/{id}/result`).
pub trait ResultSink: Send + Sync + 'static {
    fn send_result(&self, id: &str, body: &CommandResultRequest) -> Result<()>;
}

struct Book {
    log: FinishedLog,
    in_flight: HashSet<String>,
}

/// Runs each response command id once, on its worker thread.
pub struct Dispatcher {
    book: Mutex<Book>,
    queue: Sender<CommandDelivery>,
    sink: Arc<dyn ResultSink>,
}

impl Dispatcher {
    /// Loads the finished commands from `state_dir` and starts the worker thread, which calls
    /// `executor.start()` first and ends when `stop` turns true.
    pub fn start(
        state_dir: &Path,
        sink: Arc<dyn ResultSink>,
        executor: Arc<dyn Executor>,
        stop: Arc<AtomicBool>,
    ) -> Result<(Arc<Dispatcher>, JoinHandle<()>)> {
        let log = FinishedLog::load(state_dir.join(FINISHED_FILE));
        let (tx, rx) = unbounded();
        let dispatcher = Arc::new(Dispatcher {
            book: Mutex::new(Book {
                log,
                in_flight: HashSet::new(),
            }),
            queue: tx,
            sink,
        });
        let worker = {
            let d = dispatcher.clone();
            std::thread::Builder::new()
                .name("response".into())
                .spawn(move || d.work(&rx, executor.as_ref(), &stop))
                .context("starting the response thread")?
        };
        Ok((dispatcher, worker))
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a delivered command: skipped when queued or running, answered with the stored
    /// result when finished, refused when its arguments are wrong, queued otherwise.
    pub fn offer(&self, c: &CommandDelivery) {
        let id = c.id.to_string();
        let again = {
            let mut book = self.book();
            if book.in_flight.contains(&id) {
                return;
            }
            match book.log.get(&id) {
                Some(done) => Some(done.clone()),
                None => {
                    if let Err(why) = check_command_args(&c.kind, &c.args) {
                        drop(book);
                        self.finish(&id, &c.kind, Err(why));
                        return;
                    }
                    // Recorded before it runs: a crash mid-way must not make it run twice.
                    let running = Finished {
                        id: id.clone(),
                        kind: c.kind.clone(),
                        status: "running".into(),
                        result: Value::Null,
                        error: None,
                        at_unix_ms: now_ms(),
                    };
                    if let Err(e) = book.log.put(running) {
                        tracing::warn!(command = %id, "{e:#}");
                    }
                    book.in_flight.insert(id.clone());
                    None
                }
            }
        };
        match again {
            Some(done) => {
                tracing::info!(command = %id, kind = %c.kind, "offered again after it finished; sending its result again");
                self.send(&id, &done.request());
            }
            None => {
                tracing::info!(command = %id, kind = %c.kind, "response command queued");
                let _ = self.queue.send(c.clone());
            }
        }
    }

    fn work(&self, rx: &Receiver<CommandDelivery>, executor: &dyn Executor, stop: &AtomicBool) {
        executor.start();
        while !stop.load(Ordering::SeqCst) {
            let c = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(c) => c,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let id = c.id.to_string();
            let started = Instant::now();
            let outcome = executor.execute(&id, &c.kind, &c.args);
            match &outcome {
                Ok(_) => {
                    tracing::info!(command = %id, kind = %c.kind, took = ?started.elapsed(), "response command done")
                }
                Err(why) => {
                    tracing::warn!(command = %id, kind = %c.kind, "response command failed: {why}")
                }
            }
            self.finish(&id, &c.kind, outcome);
        }
        // Queued but never started: forget them, so they run when offered after the restart.
        let mut book = self.book();
        while let Ok(c) = rx.try_recv() {
            let id = c.id.to_string();
            book.in_flight.remove(&id);
            if let Err(e) = book.log.forget(&id) {
                tracing::warn!(command = %id, "{e:#}");
            }
        }
    }

    fn finish(&self, id: &str, kind: &str, outcome: std::result::Result<Value, String>) {
        let entry = match outcome {
            Ok(result) => Finished {
                id: id.to_owned(),
                kind: kind.to_owned(),
                status: "done".into(),
                result,
                error: None,
                at_unix_ms: now_ms(),
            },
            Err(why) => Finished {
                id: id.to_owned(),
                kind: kind.to_owned(),
                status: "failed".into(),
                result: json!({}),
                error: Some(why),
                at_unix_ms: now_ms(),
            },
        };
        let body = entry.request();
        {
            let mut book = self.book();
            if let Err(e) = book.log.put(entry) {
                tracing::warn!(command = %id, "{e:#}");
            }
            book.in_flight.remove(id);
        }
        self.send(id, &body);
    }

    fn send(&self, id: &str, body: &CommandResultRequest) {
        if let Err(e) = self.sink.send_result(id, body) {
            // The server offers the command again; its stored result is sent then.
            tracing::warn!(command = %id, "sending the command result: {e:#}");
        }
    }
}

/// The agent's `[response]` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseConfig {
    /// Run response commands. `false` refuses them all (`failed`), except `release_host`,
    /// which always works so a host can be released.
    pub enabled: bool,
    /// Keep a long poll open for commands (`GET /api/v1/agents/commands/next`); without it
    /// commands arrive with heartbeats only.
    pub long_poll: bool,
    /// Seconds a long poll waits on the server.
    pub long_poll_wait_secs: u64,
    /// The quarantine vault (default `<state_dir>/quarantine`).
    pub quarantine_dir: Option<PathBuf>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            long_poll: true,
            long_poll_wait_secs: 25,
            quarantine_dir: None,
        }
    }
}

impl ResponseConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=300).contains(&self.long_poll_wait_secs) {
            anyhow::bail!("response.long_poll_wait_secs must be 1..=300");
        }
        Ok(())
    }
}

/// Host and port of the agent's server URL (`https://host:port`; the port defaults to 443).
pub fn server_host_port(server: &str) -> Result<(String, u16)> {
    let uri: ureq::http::Uri = server
        .parse()
        .with_context(|| format!("server URL {server:?}"))?;
    let host = uri
        .host()
        .with_context(|| format!("server URL {server:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    Ok((host, port))
}

/// The isolation a heartbeat reports (`null` when not isolated).
pub fn isolation_report(isolator: &Isolator<Backend>) -> Value {
    match isolator.state() {
        Ok(Some(s)) => json!(IsolationReport {
            phase: match s.phase {
                dozor_respond::IsolationPhase::Applying => "applying".into(),
                dozor_respond::IsolationPhase::Isolated => "isolated".into(),
            },
            command_id: s.command_id,
            since_unix_ms: s.since_unix_ms,
            auto_release_at_unix_ms: s.auto_release_at_unix_ms,
        }),
        Ok(None) => Value::Null,
        Err(e) => {
            tracing::warn!("isolation state: {e}");
            Value::Null
        }
    }
}

/// A current-thread runtime for `dozor-respond`'s async API.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the response runtime")
}

/// Releases a timed isolation when it is due (also one recorded before a restart): checks every
/// few seconds, on its own thread, until `stop`.
pub fn start_auto_release(
    isolator: Arc<Isolator<Backend>>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>> {
    let rt = runtime()?;
    std::thread::Builder::new()
        .name("auto-release".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // The timer must be made inside the runtime: build it in the async block.
                match rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(2), isolator.release_when_due()).await
                }) {
                    Ok(Ok(Some(state))) => {
                        tracing::warn!(command_id = %state.command_id, "timed isolation ended: host released")
                    }
                    Ok(Ok(None)) => std::thread::sleep(Duration::from_secs(1)),
                    Ok(Err(e)) => {
                        tracing::error!("auto-release: {e}");
                        std::thread::sleep(Duration::from_secs(5));
                    }
                    // Still waiting: look at `stop`, then wait again.
                    Err(_) => {}
                }
            }
        })
        .context("starting the auto-release thread")
}

/// The real actions.
pub struct Actions {
    enabled: bool,
    server_host: String,
    server_port: u16,
    state_dir: PathBuf,
    isolator: Arc<Isolator<Backend>>,
    vault: std::result::Result<Vault, String>,
    blocker: Blocker,
    link: Arc<dyn ServerLink>,
    rt: tokio::runtime::Runtime,
}

/// The isolator of the agent's state directory.
pub fn isolator(state_dir: &Path) -> Isolator<Backend> {
    #[cfg(windows)]
    let backend = Backend::new(state_dir.join("isolation-backup.wfw"));
    #[cfg(not(windows))]
    let backend = Backend::new();
    Isolator::new(backend, state_dir)
}

impl Actions {
    pub fn new(
        config: &ResponseConfig,
        server: &str,
        state_dir: &Path,
        isolator: Arc<Isolator<Backend>>,
        link: Arc<dyn ServerLink>,
    ) -> Result<Self> {
        let (server_host, server_port) = server_host_port(server)?;
        let vault_dir = config
            .quarantine_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("quarantine"));
        let mut protected = vec![state_dir.to_owned()];
        if let Ok(exe) = std::env::current_exe() {
            protected.push(exe);
        }
        let vault = Vault::open(&vault_dir)
            .map(|v| v.protect(protected))
            .map_err(|e| e.to_string());
        if let Err(e) = &vault {
            tracing::warn!("quarantine unavailable: {e}");
        }
        Ok(Self {
            enabled: config.enabled,
            server_host,
            server_port,
            state_dir: state_dir.to_owned(),
            isolator,
            vault,
            blocker: Blocker::new(),
            link,
            rt: runtime()?,
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(args: &Value) -> std::result::Result<T, String> {
        T::deserialize(args).map_err(|e| e.to_string())
    }

    fn vault(&self) -> std::result::Result<&Vault, String> {
        self.vault
            .as_ref()
            .map_err(|e| format!("quarantine unavailable: {e}"))
    }

    fn isolate(&self, id: &str, a: IsolateHostArgs) -> std::result::Result<Value, String> {
        let started = Instant::now();
        let dns = if a.allow_dns {
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            dozor_respond::resolvers_from_resolv_conf(&text)
                .into_iter()
                .map(|ip| ip.to_string())
                .collect()
        } else {
            Vec::new()
        };
        let spec = IsolationSpec {
            server_host: self.server_host.clone(),
            server_ports: vec![self.server_port],
            dns,
            dhcp: a.allow_dhcp,
            hosts: a.allow_hosts.clone(),
        };
        let check = SelfCheck {
            timeout: Duration::from_secs(
                a.check_timeout_secs
                    .unwrap_or(DEFAULT_CHECK_SECS)
                    .clamp(1, MAX_CHECK_SECS),
            ),
            ..SelfCheck::default()
        };
        let state = self
            .rt
            .block_on(async {
                let policy = dozor_respond::resolve_policy(&spec).await?;
                let probe = TcpProbe::for_policy(&policy, self.server_port);
                self.isolator
                    .isolate_with_check(
                        IsolateCommand {
                            command_id: id.to_owned(),
                            policy,
                            release_after: a.release_after_secs.map(Duration::from_secs),
                        },
                        &probe,
                        check,
                    )
                    .await
            })
            .map_err(|e| e.to_string())?;
        tracing::warn!(command = id, reason = %a.reason, "host isolated");
        Ok(json!({
            "phase": "isolated",
            "since_unix_ms": state.since_unix_ms,
            "auto_release_at_unix_ms": state.auto_release_at_unix_ms,
            "policy": state.policy,
            "rules": ruleset_summary(&state.policy),
            "took_ms": started.elapsed().as_millis() as u64,
        }))
    }

    fn release(&self, a: ReleaseHostArgs) -> std::result::Result<Value, String> {
        let started = Instant::now();
        let was = self
            .rt
            .block_on(self.isolator.release())
            .map_err(|e| e.to_string())?;
        tracing::warn!(reason = %a.reason, "host released");
        Ok(json!({
            "released": was.is_some(),
            "was_isolated_by": was.map(|s| s.command_id),
            "took_ms": started.elapsed().as_millis() as u64,
        }))
    }

    /// The server's addresses: never blocked.
    fn server_addresses(&self) -> Vec<std::net::IpAddr> {
        use std::net::ToSocketAddrs;
        match (self.server_host.as_str(), self.server_port).to_socket_addrs() {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            Err(e) => {
                tracing::warn!(
                    "cannot resolve the server {}: {e}; block_ip cannot protect it",
                    self.server_host
                );
                Vec::new()
            }
        }
    }

    fn block(&self, a: BlockIpArgs, block: bool) -> std::result::Result<Value, String> {
        let protected = if block {
            self.server_addresses()
        } else {
            Vec::new()
        };
        let cidrs = dozor_respond::block::parse_addresses(&a.addresses, &protected)
            .map_err(|e| e.to_string())?;
        let timeout = a.timeout_secs.map(Duration::from_secs);
        self.rt
            .block_on(async {
                if block {
                    self.blocker.block(&cidrs, timeout).await
                } else {
                    self.blocker.unblock(&cidrs).await
                }
            })
            .map_err(|e| e.to_string())?;
        let list: Vec<String> = cidrs.iter().map(|c| c.to_string()).collect();
        Ok(if block {
            json!({"blocked": list, "timeout_secs": a.timeout_secs})
        } else {
            json!({"unblocked": list})
        })
    }

    fn collect(&self, id: &str, a: CollectFileArgs) -> std::result::Result<Value, String> {
        let max = a
            .max_bytes
            .unwrap_or(r::COLLECT_FILE_MAX_BYTES)
            .min(r::COLLECT_FILE_MAX_BYTES);
        let path = Path::new(&a.path);
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", a.path))?;
        if !meta.is_file() {
            return Err(format!("{} is not a regular file", a.path));
        }
        if meta.len() > max {
            return Err(format!(
                "{} is {} bytes, more than max_bytes {max}",
                a.path,
                meta.len()
            ));
        }
        // A private copy: the upload sends exactly the bytes that were hashed.
        let dir = self.state_dir.join("collect");
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let copy = dir.join(format!("{id}.part"));
        let result = (|| {
            let (sha256, size) = copy_hashed(path, &copy, max)?;
            let already = self.link.has_sample(&sha256).unwrap_or(false);
            let answer = if already {
                json!({"already_stored": true})
            } else {
                self.link
                    .upload_sample_answer(path, &copy, &sha256)
                    .map_err(|e| format!("uploading: {e:#}"))?
            };
            Ok(json!({"path": a.path, "sha256": sha256, "size": size, "server": answer}))
        })();
        let _ = std::fs::remove_file(&copy);
        result
    }
}

/// Copies at most `max` bytes of `from` to `to` (0600), hashing; a file that grew beyond
/// `max` meanwhile is refused.
fn copy_hashed(from: &Path, to: &Path, max: u64) -> std::result::Result<(String, u64), String> {
    let mut src = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut dst = options
        .open(to)
        .map_err(|e| format!("{}: {e}", to.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = src
            .read(&mut buf)
            .map_err(|e| format!("reading {}: {e}", from.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > max {
            return Err(format!(
                "{} grew beyond max_bytes {max} while being read",
                from.display()
            ));
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(|e| format!("writing {}: {e}", to.display()))?;
    }
    dst.flush().map_err(|e| e.to_string())?;
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// How many rules the isolation put in place, by direction (a summary for the result).
fn ruleset_summary(policy: &dozor_respond::IsolationPolicy) -> Value {
    #[cfg(not(windows))]
    {
        let text = dozor_respond::nft::isolation_ruleset(policy);
        let rules = text
            .lines()
            .filter(|l| l.trim_end().ends_with("accept") && !l.contains("policy"))
            .count();
        json!({"backend": "nftables", "table": dozor_respond::nft::TABLE, "accept_rules": rules})
    }
    #[cfg(windows)]
    {
        json!({"backend": "windows-firewall", "commands": dozor_respond::netsh::isolation_commands(policy).len()})
    }
}

/// `kill_process`: through `dozor-respond` (Linux), through `dozor-agent-windows` (Windows).
#[cfg(not(windows))]
fn kill(a: KillProcessArgs) -> std::result::Result<Value, String> {
    let outcome = dozor_respond::process::kill_process(
        a.pid,
        a.start_time_ms,
        r::KILL_START_TIME_TOLERANCE_MS,
    )
    .map_err(|e| e.to_string())?;
    serde_json::to_value(outcome).map_err(|e| e.to_string())
}

#[cfg(windows)]
fn kill(a: KillProcessArgs) -> std::result::Result<Value, String> {
    dozor_respond::process::check_killable(a.pid).map_err(|e| e.to_string())?;
    if a.pid == 4 {
        return Err("refused: pid 4 is the Windows kernel (System); never killed".into());
    }
    let k =
        dozor_agent_windows::process::kill(a.pid, a.start_time_ms, r::KILL_START_TIME_TOLERANCE_MS)
            .map_err(|e| e.to_string())?;
    tracing::info!(pid = k.pid, name = %k.name, "process killed");
    Ok(json!({
        "pid": k.pid,
        "name": k.name,
        "exe": k.exe,
        "start_time_ms": k.start_time_ms,
        "killed": true,
    }))
}

impl Executor for Actions {
    fn start(&self) {
        let probe = match self.isolator.state() {
            Ok(Some(s)) => TcpProbe::for_policy(&s.policy, self.server_port),
            Ok(None) => return,
            Err(e) => {
                tracing::error!("isolation state unreadable, not resumed: {e}");
                return;
            }
        };
        match self.rt.block_on(self.isolator.resume(&probe)) {
            Ok(ResumeOutcome::NotIsolated) => {}
            Ok(ResumeOutcome::Reapplied(s)) => {
                tracing::warn!(command_id = %s.command_id, "host isolation re-applied after a restart")
            }
            Ok(ResumeOutcome::Expired(s)) => {
                tracing::warn!(command_id = %s.command_id, "isolation expired while the agent was stopped: released")
            }
            Ok(ResumeOutcome::Interrupted(s)) => {
                tracing::warn!(command_id = %s.command_id, "an isolation interrupted before its self-check was rolled back")
            }
            Err(e) => tracing::error!("resuming the isolation: {e}"),
        }
    }

    fn execute(&self, id: &str, kind: &str, args: &Value) -> std::result::Result<Value, String> {
        if !self.enabled && kind != r::RELEASE_HOST {
            return Err(
                "response actions are disabled on this agent (response.enabled = false)".into(),
            );
        }
        match kind {
            r::ISOLATE_HOST => self.isolate(id, Self::parse(args)?),
            r::RELEASE_HOST => self.release(Self::parse(args)?),
            r::KILL_PROCESS => kill(Self::parse(args)?),
            r::QUARANTINE_FILE => {
                let a: FileArgs = Self::parse(args)?;
                let record = self
                    .vault()?
                    .quarantine(Path::new(&a.path))
                    .map_err(|e| e.to_string())?;
                serde_json::to_value(record).map_err(|e| e.to_string())
            }
            r::RESTORE_FILE => {
                let a: RestoreFileArgs = Self::parse(args)?;
                let record = self
                    .vault()?
                    .restore(&a.quarantine_id, a.overwrite)
                    .map_err(|e| e.to_string())?;
                Ok(json!({"restored": true, "record": record}))
            }
            r::DELETE_FILE => {
                let a: FileArgs = Self::parse(args)?;
                let deleted = self
                    .vault()?
                    .delete(Path::new(&a.path))
                    .map_err(|e| e.to_string())?;
                serde_json::to_value(deleted).map_err(|e| e.to_string())
            }
            r::BLOCK_IP => self.block(Self::parse(args)?, true),
            r::UNBLOCK_IP => self.block(Self::parse(args)?, false),
            r::COLLECT_FILE => self.collect(id, Self::parse(args)?),
            other => Err(format!(
                "this agent does not know the command kind {other:?}"
            )),
        }
    }
}

/// What one long poll brought.
#[derive(Debug, PartialEq)]
pub enum Poll {
    Commands(Vec<CommandDelivery>),
    /// 404/405: the server has no long-poll endpoint (older server).
    Unsupported,
    /// Try again after a backoff; why.
    Failed(String),
}

/// One `GET …/commands/next?wait_secs=N` with `client` (whose request timeout must exceed the
/// wait, and which does not turn HTTP statuses into errors, as the agent's clients).
pub fn poll_once(client: &ureq::Agent, server: &str, wait_secs: u64) -> Poll {
    let url = format!("{server}/api/v1/agents/commands/next");
    let mut response = match client
        .get(&url)
        .query("wait_secs", wait_secs.to_string())
        .call()
    {
        Ok(r) => r,
        Err(e) => return Poll::Failed(format!("GET {url}: {e}")),
    };
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_string()
        .unwrap_or_default();
    match status {
        200 => match serde_json::from_str::<r::CommandBatch>(&text) {
            Ok(batch) => Poll::Commands(batch.commands),
            Err(e) => Poll::Failed(format!("long poll answer not understood: {e}")),
        },
        204 => Poll::Commands(Vec::new()),
        404 | 405 => Poll::Unsupported,
        _ => Poll::Failed(crate::identity::problem_text(status, &text)),
    }
}

/// Backoff of the long poll after `failures` failures in a row: 1 s doubling to 30 s.
pub fn poll_backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(30))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Sink(Mutex<Vec<(String, CommandResultRequest)>>);
    impl ResultSink for Sink {
        fn send_result(&self, id: &str, body: &CommandResultRequest) -> Result<()> {
            self.0.lock().unwrap().push((id.to_owned(), body.clone()));
            Ok(())
        }
    }
    impl Sink {
        fn results(&self) -> Vec<(String, CommandResultRequest)> {
            self.0.lock().unwrap().clone()
        }
    }

    /// Counts runs; `kill_process` takes 300 ms (to overlap deliveries).
    #[derive(Default)]
    struct Counting(AtomicUsize);
    impl Executor for Counting {
        fn execute(
            &self,
            _id: &str,
            kind: &str,
            _args: &Value,
        ) -> std::result::Result<Value, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            Ok(json!({"ran": kind}))
        }
    }

    fn command(id: uuid::Uuid, kind: &str, args: Value) -> CommandDelivery {
        CommandDelivery {
            id,
            kind: kind.into(),
            args,
        }
    }

    fn wait_for(sink: &Sink, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.results().len() < n {
            assert!(Instant::now() < deadline, "no result: {:?}", sink.results());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_same_id_delivered_twice_runs_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Sink::default());
        let exec = Arc::new(Counting::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(dir.path(), sink.clone(), exec.clone(), stop.clone()).unwrap();
        let kill = command(
            uuid::Uuid::new_v4(),
            r::KILL_PROCESS,
            json!({"pid": 4242, "start_time_ms": 1}),
        );
        // Heartbeat and long poll deliver it at about the same time, then again after it ended.
        d.offer(&kill);
        d.offer(&kill);
        wait_for(&sink, 1);
        d.offer(&kill);
        wait_for(&sink, 2);
        assert_eq!(exec.0.load(Ordering::SeqCst), 1, "ran once");
        let results = sink.results();
        assert_eq!(results[0], results[1], "the stored result is sent again");
        assert_eq!(results[0].1.status, CommandStatus::Done);
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();

        // Restart: the finished id is remembered, the file is private.
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(dir.path(), sink.clone(), exec.clone(), stop.clone()).unwrap();
        d.offer(&kill);
        wait_for(&sink, 3);
        assert_eq!(
            exec.0.load(Ordering::SeqCst),
            1,
            "not run again after a restart"
        );
        assert_eq!(sink.results()[2].1.status, CommandStatus::Done);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FINISHED_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
    }

    #[test]
    fn unknown_kinds_and_bad_arguments_fail_with_the_reason_without_running() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Sink::default());
        let exec = Arc::new(Counting::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(dir.path(), sink.clone(), exec.clone(), stop.clone()).unwrap();
        d.offer(&command(uuid::Uuid::new_v4(), "format_disk", json!({})));
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::QUARANTINE_FILE,
            json!({"path": "relative/x"}),
        ));
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::KILL_PROCESS,
            json!({"pid": 1, "start_time_ms": 5, "signal": 15}),
        ));
        wait_for(&sink, 3);
        let r = sink.results();
        assert!(r.iter().all(|(_, b)| b.status == CommandStatus::Failed));
        let errors: Vec<&str> = r.iter().map(|(_, b)| b.error.as_deref().unwrap()).collect();
        assert!(errors[0].contains("unknown command kind"), "{errors:?}");
        assert!(errors[1].contains("must be absolute"), "{errors:?}");
        assert!(errors[2].contains("signal"), "{errors:?}");
        assert_eq!(exec.0.load(Ordering::SeqCst), 0);
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
    }

    #[test]
    fn a_command_running_when_the_agent_stopped_is_failed_not_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::new_v4();
        let mut log = FinishedLog::load(dir.path().join(FINISHED_FILE));
        log.put(Finished {
            id: id.to_string(),
            kind: r::DELETE_FILE.into(),
            status: "running".into(),
            result: Value::Null,
            error: None,
            at_unix_ms: 1,
        })
        .unwrap();
        let sink = Arc::new(Sink::default());
        let exec = Arc::new(Counting::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(dir.path(), sink.clone(), exec.clone(), stop.clone()).unwrap();
        d.offer(&command(id, r::DELETE_FILE, json!({"path": "/tmp/x"})));
        wait_for(&sink, 1);
        assert_eq!(exec.0.load(Ordering::SeqCst), 0);
        let (_, body) = &sink.results()[0];
        assert_eq!(body.status, CommandStatus::Failed);
        assert!(
            body.error
                .as_deref()
                .unwrap()
                .contains("stopped while running")
        );
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
    }

    #[test]
    fn commands_queued_but_not_started_at_stop_run_after_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Sink::default());
        let exec = Arc::new(Counting::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(dir.path(), sink.clone(), exec.clone(), stop.clone()).unwrap();
        let args = json!({"pid": 4242, "start_time_ms": 1});
        let first = command(uuid::Uuid::new_v4(), r::KILL_PROCESS, args.clone());
        let second = command(uuid::Uuid::new_v4(), r::KILL_PROCESS, args);
        d.offer(&first);
        d.offer(&second);
        // Stop while the first runs (300 ms): the second never starts.
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
        assert_eq!(exec.0.load(Ordering::SeqCst), 1);

        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(dir.path(), sink.clone(), exec.clone(), stop.clone()).unwrap();
        d.offer(&second);
        d.offer(&first);
        wait_for(&sink, 3);
        assert_eq!(
            exec.0.load(Ordering::SeqCst),
            2,
            "the second ran now, the first not again"
        );
        assert!(
            sink.results()
                .iter()
                .all(|(_, b)| b.status == CommandStatus::Done)
        );
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
    }

    #[test]
    fn the_finished_log_keeps_the_newest_thousand() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = FinishedLog::load(dir.path().join(FINISHED_FILE));
        for i in 0..(FINISHED_KEEP + 5) {
            log.entries.push_back(Finished {
                id: i.to_string(),
                kind: "k".into(),
                status: "done".into(),
                result: Value::Null,
                error: None,
                at_unix_ms: 0,
            });
        }
        log.put(Finished {
            id: "last".into(),
            kind: "k".into(),
            status: "done".into(),
            result: Value::Null,
            error: None,
            at_unix_ms: 0,
        })
        .unwrap();
        let again = FinishedLog::load(dir.path().join(FINISHED_FILE));
        assert_eq!(again.len(), FINISHED_KEEP);
        assert!(again.get("0").is_none() && again.get("last").is_some());
    }

    #[test]
    fn server_urls_give_host_and_port() {
        assert_eq!(
            server_host_port("https://dozor.example:8443").unwrap(),
            ("dozor.example".into(), 8443)
        );
        assert_eq!(
            server_host_port("https://[2001:db8::1]").unwrap(),
            ("2001:db8::1".into(), 443)
        );
        assert!(server_host_port("not a url").is_err());
    }

    #[test]
    fn long_poll_backoff_runs_from_one_to_thirty_seconds() {
        assert_eq!(poll_backoff(1), Duration::from_secs(1));
        assert_eq!(poll_backoff(2), Duration::from_secs(2));
        assert_eq!(poll_backoff(5), Duration::from_secs(16));
        assert_eq!(poll_backoff(6), Duration::from_secs(30));
        assert_eq!(poll_backoff(60), Duration::from_secs(30));
    }

    /// A one-shot HTTP server answering each connection with the next canned response;
    /// returns its base URL and the request lines it saw.
    fn canned_server(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                seen2.lock().unwrap().push(line.trim().to_owned());
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                }
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, seen)
    }

    #[test]
    fn the_long_poll_client_reads_batches_empty_answers_and_old_servers() {
        let id = uuid::Uuid::new_v4();
        let batch: &'static str = Box::leak(
            json!({"commands": [{"id": id, "kind": "kill_process", "args": {"pid": 7, "start_time_ms": 9}}]})
                .to_string()
                .into_boxed_str(),
        );
        let (url, seen) = canned_server(vec![
            (200, batch),
            (200, r#"{"commands": []}"#),
            (204, ""),
            (404, r#"{"title": "Not Found"}"#),
            (503, r#"{"title": "busy"}"#),
            (200, "not json"),
        ]);
        let client: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        match poll_once(&client, &url, 25) {
            Poll::Commands(c) => {
                assert_eq!(c.len(), 1);
                assert_eq!((c[0].id, c[0].kind.as_str()), (id, "kill_process"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(poll_once(&client, &url, 25), Poll::Commands(vec![]));
        assert_eq!(poll_once(&client, &url, 25), Poll::Commands(vec![]));
        assert_eq!(poll_once(&client, &url, 25), Poll::Unsupported);
        assert!(matches!(poll_once(&client, &url, 25), Poll::Failed(w) if w.contains("503")));
        assert!(
            matches!(poll_once(&client, &url, 25), Poll::Failed(w) if w.contains("not understood"))
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            "GET /api/v1/agents/commands/next?wait_secs=25 HTTP/1.1"
        );
    }

    /// The server side of the real actions: samples kept in memory.
    #[derive(Default)]
    struct Samples(Mutex<Vec<(String, Vec<u8>)>>);
    impl ServerLink for Samples {
        fn yara_rules(&self) -> Result<Value> {
            Ok(json!({}))
        }
        fn has_sample(&self, sha256: &str) -> Result<bool> {
            Ok(self.0.lock().unwrap().iter().any(|(s, _)| s == sha256))
        }
        fn upload_sample(&self, _path: &Path, read_from: &Path, sha256: &str) -> Result<()> {
            let bytes = std::fs::read(read_from)?;
            self.0.lock().unwrap().push((sha256.to_owned(), bytes));
            Ok(())
        }
        fn command_result(&self, _id: &str, _body: &CommandResultRequest) -> Result<()> {
            Ok(())
        }
    }

    #[cfg(target_os = "linux")]
    /// Regression: the timer was built outside the runtime and the thread panicked at start.
    #[test]
    fn the_auto_release_thread_runs_and_stops_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let timer = start_auto_release(Arc::new(isolator(dir.path())), stop.clone()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(!timer.is_finished(), "the auto-release thread ended early");
        stop.store(true, Ordering::SeqCst);
        timer.join().expect("the auto-release thread panicked");
    }

    #[test]
    fn the_real_actions_behind_the_dispatcher() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let samples = Arc::new(Samples::default());
        let actions = Actions::new(
            &ResponseConfig::default(),
            "https://127.0.0.1:8443",
            &state,
            Arc::new(isolator(&state)),
            samples.clone(),
        )
        .unwrap();
        let sink = Arc::new(Sink::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker) =
            Dispatcher::start(&state, sink.clone(), Arc::new(actions), stop.clone()).unwrap();

        // quarantine_file twice (heartbeat + poll): quarantined once, same record both times.
        let target = dir.path().join("dropper.bin");
        std::fs::write(&target, b"MZ evil").unwrap();
        let q = command(
            uuid::Uuid::new_v4(),
            r::QUARANTINE_FILE,
            json!({"path": target.to_str().unwrap(), "reason": "test"}),
        );
        d.offer(&q);
        d.offer(&q);
        wait_for(&sink, 1);
        d.offer(&q);
        wait_for(&sink, 2);
        let results = sink.results();
        assert_eq!(results[0].1.status, CommandStatus::Done, "{results:?}");
        assert_eq!(results[0], results[1]);
        let record = results[0].1.result.clone().unwrap();
        let qid = record["quarantine_id"].as_str().unwrap().to_owned();
        assert!(!target.exists());
        let vault_files = std::fs::read_dir(state.join("quarantine")).unwrap().count();
        assert_eq!(vault_files, 2, "one .bin and one .json");

        // restore_file puts it back.
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::RESTORE_FILE,
            json!({"quarantine_id": qid}),
        ));
        wait_for(&sink, 3);
        assert_eq!(sink.results()[2].1.status, CommandStatus::Done);
        assert_eq!(std::fs::read(&target).unwrap(), b"MZ evil");

        // collect_file uploads exactly the bytes it hashed.
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::COLLECT_FILE,
            json!({"path": target.to_str().unwrap()}),
        ));
        wait_for(&sink, 4);
        let collected = sink.results()[3].1.result.clone().unwrap();
        assert_eq!(collected["size"], 7);
        let uploaded = samples.0.lock().unwrap().clone();
        assert_eq!(uploaded.len(), 1);
        assert_eq!(uploaded[0].0, collected["sha256"].as_str().unwrap());
        assert_eq!(uploaded[0].1, b"MZ evil");
        // Too large for its max_bytes: failed with the reason.
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::COLLECT_FILE,
            json!({"path": target.to_str().unwrap(), "max_bytes": 3}),
        ));
        wait_for(&sink, 5);
        assert!(
            sink.results()[4]
                .1
                .error
                .as_deref()
                .unwrap()
                .contains("max_bytes")
        );

        // kill_process with a wrong start time: failed, alive; with the right one: killed.
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let starttime = dozor_respond::process::parse_proc_stat(&stat)
            .unwrap()
            .starttime;
        let btime: u64 = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let ticks = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap();
        let ticks: u64 = String::from_utf8_lossy(&ticks.stdout)
            .trim()
            .parse()
            .unwrap();
        let started = dozor_respond::process::start_time_ms(btime, starttime, ticks);
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::KILL_PROCESS,
            json!({"pid": pid, "start_time_ms": started - 10_000}),
        ));
        wait_for(&sink, 6);
        assert!(
            sink.results()[5]
                .1
                .error
                .as_deref()
                .unwrap()
                .contains("not killed")
        );
        assert!(child.try_wait().unwrap().is_none());
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::KILL_PROCESS,
            json!({"pid": pid, "start_time_ms": started}),
        ));
        wait_for(&sink, 7);
        let killed = sink.results()[6].1.result.clone().unwrap();
        assert_eq!(killed["killed"], true, "{killed}");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(9));

        // Not isolated: the heartbeat reports null.
        assert_eq!(isolation_report(&isolator(&state)), Value::Null);
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
    }

    /// Root with `ip` and `nft`, or why not.
    #[cfg(target_os = "linux")]
    fn netns_prerequisites() -> Option<String> {
        if !rustix_root() {
            return Some("not root".into());
        }
        for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
            let ok = std::process::Command::new(tool)
                .arg(arg)
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return Some(format!("`{tool}` is not installed"));
            }
        }
        None
    }

    #[cfg(target_os = "linux")]
    fn rustix_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    }

    #[cfg(target_os = "linux")]
    struct Netns(String);
    #[cfg(target_os = "linux")]
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    #[cfg(target_os = "linux")]
    impl Netns {
        fn nft(&self, args: &[&str]) -> (bool, String) {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &self.0, "nft"])
                .args(args)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        }
        fn isolator(&self, state: &Path) -> Isolator<Backend> {
            Isolator::new(
                Backend::with_command(vec![
                    "ip".into(),
                    "netns".into(),
                    "exec".into(),
                    self.0.clone(),
                    "nft".into(),
                ]),
                state,
            )
        }
    }

    /// isolate_host / release_host through the dispatcher, with the firewall changes inside a
    /// network namespace the test creates (the server: a listener of this test on 127.0.0.1):
    /// the result, the heartbeat report, resume after a "reboot", release, and a rollback.
    #[cfg(target_os = "linux")]
    #[test]
    fn isolate_and_release_through_the_dispatcher_in_a_namespace() {
        if let Some(why) = netns_prerequisites() {
            eprintln!("SKIPPED: {why}");
            return;
        }
        let ns = Netns(format!("dza-{:05x}", std::process::id() & 0xf_ffff));
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns.0])
            .output();
        assert!(
            std::process::Command::new("ip")
                .args(["netns", "add", &ns.0])
                .status()
                .unwrap()
                .success()
        );
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://127.0.0.1:{}", server.local_addr().unwrap().port());
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_path_buf();
        let start = |url: &str, sink: Arc<Sink>, stop: Arc<AtomicBool>| {
            let iso = Arc::new(ns.isolator(&state));
            let actions = Actions::new(
                &ResponseConfig::default(),
                url,
                &state,
                iso.clone(),
                Arc::new(Samples::default()),
            )
            .unwrap();
            let (d, w) = Dispatcher::start(&state, sink, Arc::new(actions), stop).unwrap();
            (d, w, iso)
        };

        let sink = Arc::new(Sink::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker, iso) = start(&url, sink.clone(), stop.clone());
        let id = uuid::Uuid::new_v4();
        d.offer(&command(
            id,
            r::ISOLATE_HOST,
            json!({"reason": "test", "allow_dns": false, "allow_hosts": ["10.9.0.0/16"],
                   "release_after_secs": 3600, "check_timeout_secs": 5}),
        ));
        wait_for(&sink, 1);
        let (_, body) = &sink.results()[0];
        assert_eq!(body.status, CommandStatus::Done, "{body:?}");
        let result = body.result.clone().unwrap();
        assert_eq!(result["phase"], "isolated");
        assert_eq!(result["policy"]["server"], json!(["127.0.0.1"]));
        assert!(result["took_ms"].is_u64() && result["auto_release_at_unix_ms"].is_u64());
        let (present, table) = ns.nft(&["list", "table", "inet", "dozor_isolation"]);
        assert!(present && table.contains("10.9.0.0/16"), "{table}");
        let report = isolation_report(&iso);
        assert_eq!(report["command_id"], id.to_string());
        assert_eq!(report["phase"], "isolated");
        assert!(report["auto_release_at_unix_ms"].is_u64());
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();

        // "Reboot": the kernel ruleset is gone; the next start re-applies the recorded one.
        assert!(ns.nft(&["delete", "table", "inet", "dozor_isolation"]).0);
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker, iso) = start(&url, sink.clone(), stop.clone());
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ns.nft(&["list", "table", "inet", "dozor_isolation"]).0 {
            assert!(Instant::now() < deadline, "the isolation was not resumed");
            std::thread::sleep(Duration::from_millis(100));
        }
        d.offer(&command(uuid::Uuid::new_v4(), r::RELEASE_HOST, json!({})));
        wait_for(&sink, 2);
        let (_, body) = &sink.results()[1];
        assert_eq!(body.status, CommandStatus::Done, "{body:?}");
        assert_eq!(body.result.as_ref().unwrap()["released"], true);
        assert!(!ns.nft(&["list", "table", "inet", "dozor_isolation"]).0);
        assert_eq!(isolation_report(&iso), Value::Null);
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();

        // A server that does not answer: rolled back, failed with the reason.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("https://127.0.0.1:{}", l.local_addr().unwrap().port())
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (d, worker, iso) = start(&closed, sink.clone(), stop.clone());
        d.offer(&command(
            uuid::Uuid::new_v4(),
            r::ISOLATE_HOST,
            json!({"allow_dns": false, "check_timeout_secs": 1}),
        ));
        wait_for(&sink, 3);
        let (_, body) = &sink.results()[2];
        assert_eq!(body.status, CommandStatus::Failed);
        assert!(
            body.error.as_deref().unwrap().contains("rolled back"),
            "{body:?}"
        );
        assert!(!ns.nft(&["list", "table", "inet", "dozor_isolation"]).0);
        assert_eq!(isolation_report(&iso), Value::Null);
        stop.store(true, Ordering::SeqCst);
        worker.join().unwrap();
        drop(server);
    }
}
