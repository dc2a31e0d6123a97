//! Scanning on the agent: new and modified files in watched paths and the executables of new
//! processes go through the hash lists, YARA (local rules plus the server's managed rules) and
//! clamd; detections become `file.*` / `threat.*` events in the normal event stream.
//!
//! One thread does all scanning, so its CPU use is easy to bound: after each scan it sleeps in
//! proportion to how long the scan took (`cpu_budget_percent` of one core, wall time, which also
//! covers the time clamd spends on the file). Verdicts are cached by SHA-256, so a binary that
//! starts a thousand times is scanned once. The queue is bounded: when scanning falls behind,
//! new requests are dropped and counted, never allowed to grow memory or stall the collectors.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use dozor_collect::{CollectorState, Health, Shutdown};
use dozor_model::CommandStatus;
use dozor_model::api::CommandResultRequest;
use dozor_scan::{
    ClamdAddress, ClamdClient, EventContext, FileReport, FileScanner, Finding, HashLists,
    ScanOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The component name in the agent's health (and the server's `degraded` reasons).
const HEALTH_NAME: &str = "scan";
/// How often clamd is pinged while it is down.
const CLAMD_RETRY: Duration = Duration::from_secs(30);
/// A scan-path command's error on an agent that has nothing to detect with.
const NOTHING_TO_DETECT_WITH: &str = "nothing was checked: this agent has no scanning engine that can detect anything (no YARA rules, local or from the server; no clamd socket; no known-bad hash list) — set [scan] yara_rules_dir, clamd or known_bad in the agent's configuration, or add YARA rules on the server (server_rules = true)";

/// Most detections and errors kept in a command's result.
const RESULT_DETECTIONS: usize = 1000;
const RESULT_ERRORS: usize = 100;
/// Most files one scan-path command walks.
const COMMAND_MAX_FILES: u64 = 2_000_000;

/// `[scan]` in the agent's configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanConfig {
    /// Scan at all (file changes, process starts, scan-path commands).
    pub enabled: bool,
    /// Scan files the FIM collector reports created, modified or renamed.
    pub on_file_change: bool,
    /// Scan the executable of every new process (cached by SHA-256).
    pub on_process_start: bool,
    /// Local YARA rules (*.yar, *.yara, recursive) next to the server's managed ones.
    pub yara_rules_dir: Option<PathBuf>,
    /// Fetch and use the YARA rules managed on the server.
    pub server_rules: bool,
    /// clamd to use: `unix:/run/clamav/clamd.ctl` or `tcp:127.0.0.1:3310`; none = no ClamAV.
    pub clamd: Option<String>,
    /// Known-bad and known-good hash lists (one SHA-256 / SHA-1 / MD5 per line).
    pub known_bad: Vec<PathBuf>,
    pub known_good: Vec<PathBuf>,
    /// Larger files are not scanned.
    pub max_file_bytes: u64,
    /// Time limit of one YARA scan (seconds).
    pub yara_timeout_secs: u64,
    /// Share of one CPU core scanning may use on average (1..=100).
    pub cpu_budget_percent: u32,
    /// Put the scanned file's hashes in scan events (off keeps them on the host).
    pub upload_hashes: bool,
    /// Send files to the server for its own scan: `off`, `detected` (files something matched)
    /// or `unknown` (every scanned file not on the known-good list and new to the server).
    pub upload_samples: String,
    /// Larger files are never uploaded.
    pub max_sample_bytes: u64,
    /// Verdicts remembered by SHA-256.
    pub cache_entries: usize,
    /// Files waiting to be scanned; beyond it requests are dropped (counted).
    pub queue: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            on_file_change: true,
            on_process_start: true,
            yara_rules_dir: None,
            server_rules: true,
            clamd: None,
            known_bad: Vec::new(),
            known_good: Vec::new(),
            max_file_bytes: 32 << 20,
            yara_timeout_secs: 10,
            cpu_budget_percent: 10,
            upload_hashes: true,
            upload_samples: "off".to_owned(),
            max_sample_bytes: 16 << 20,
            cache_entries: 8192,
            queue: 1024,
        }
    }
}

impl ScanConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(1..=100).contains(&self.cpu_budget_percent) {
            anyhow::bail!("scan.cpu_budget_percent must be 1..=100");
        }
        if !matches!(self.upload_samples.as_str(), "off" | "detected" | "unknown") {
            anyhow::bail!("scan.upload_samples must be \"off\", \"detected\" or \"unknown\"");
        }
        if let Some(a) = &self.clamd {
            a.parse::<ClamdAddress>()
                .map_err(|e| anyhow::anyhow!("scan.clamd: {e}"))?;
        }
        if self.max_file_bytes == 0 || self.queue == 0 || self.yara_timeout_secs == 0 {
            anyhow::bail!("scan.max_file_bytes, scan.queue and scan.yara_timeout_secs must be > 0");
        }
        Ok(())
    }
}

/// Something to scan.
#[derive(Debug, Clone)]
pub enum Request {
    /// A file from the FIM collector (`trigger = file`) or a new process's executable
    /// (`trigger = process`).
    File {
        path: PathBuf,
        trigger: &'static str,
        sha256: Option<String>,
        process: Option<Value>,
        /// Where to read the bytes when not at `path` (`/proc/<pid>/exe` of a deleted binary).
        read_from: Option<PathBuf>,
    },
    /// An operator's scan-path command.
    Command {
        id: String,
        path: PathBuf,
        recursive: bool,
    },
}

/// Counters shown in heartbeats.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub queued: AtomicU64,
    pub dropped: AtomicU64,
    pub scanned: AtomicU64,
    pub bytes: AtomicU64,
    pub cache_hits: AtomicU64,
    pub skipped: AtomicU64,
    pub detections: AtomicU64,
    pub engine_errors: AtomicU64,
    pub commands: AtomicU64,
    pub samples_uploaded: AtomicU64,
    /// Wall time spent scanning, and sleeping to keep within the budget.
    pub busy_ms: AtomicU64,
    pub throttled_ms: AtomicU64,
    /// CPU time of the scanning thread itself.
    pub cpu_ms: AtomicU64,
    rules: Mutex<Value>,
}

impl ScanStats {
    pub fn json(&self) -> Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "queued": get(&self.queued),
            "dropped": get(&self.dropped),
            "scanned": get(&self.scanned),
            "bytes": get(&self.bytes),
            "cache_hits": get(&self.cache_hits),
            "skipped": get(&self.skipped),
            "detections": get(&self.detections),
            "engine_errors": get(&self.engine_errors),
            "commands": get(&self.commands),
            "samples_uploaded": get(&self.samples_uploaded),
            "busy_ms": get(&self.busy_ms),
            "throttled_ms": get(&self.throttled_ms),
            "cpu_ms": get(&self.cpu_ms),
            "rules": self.rules.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        })
    }
}

/// The spooler's view: offers every collected event; the ones worth scanning are queued.
#[derive(Clone)]
pub struct ScanTap {
    tx: Sender<Request>,
    /// Paths queued and not yet scanned (a file modified 50 times in a burst is queued once).
    pending: Arc<Mutex<HashSet<PathBuf>>>,
    stats: Arc<ScanStats>,
    on_file: bool,
    on_process: bool,
}

impl ScanTap {
    /// Queues the file behind `event` when it is a created/modified/renamed regular file or a
    /// started process. Never blocks.
    pub fn offer(&self, event: &Value) {
        let Some(request) = self.request_for(event) else {
            return;
        };
        let Request::File { path, .. } = &request else {
            return;
        };
        let path = path.clone();
        {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if !pending.insert(path.clone()) {
                return;
            }
        }
        match self.tx.try_send(request) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&path);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn request_for(&self, event: &Value) -> Option<Request> {
        let action = event.pointer("/event/action").and_then(Value::as_str)?;
        match action {
            "created" | "modified" | "renamed" if self.on_file => {
                if event.pointer("/file/type").and_then(Value::as_str) != Some("file") {
                    return None;
                }
                // A short-lived file is gone by the time it is reported: there is nothing to
                // read (its SHA-256, taken while it existed, is matched on the server).
                if event
                    .pointer("/dozor/file/short_lived")
                    .and_then(Value::as_bool)
                    == Some(true)
                {
                    return None;
                }
                let path = event.pointer("/file/path").and_then(Value::as_str)?;
                Some(Request::File {
                    path: PathBuf::from(path),
                    trigger: "file",
                    sha256: event
                        .pointer("/file/hash/sha256")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    process: None,
                    read_from: None,
                })
            }
            "started" if self.on_process => {
                let process = event.get("process")?;
                let exe = process.get("executable").and_then(Value::as_str)?;
                if exe.is_empty() {
                    return None;
                }
                let deleted = event
                    .pointer("/dozor/process/executable_deleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                // A binary deleted after it started can still be read through /proc.
                let read_from = (cfg!(target_os = "linux") && deleted)
                    .then(|| process.get("pid").and_then(Value::as_u64))
                    .flatten()
                    .map(|pid| PathBuf::from(format!("/proc/{pid}/exe")));
                Some(Request::File {
                    path: PathBuf::from(exe),
                    trigger: "process",
                    sha256: process
                        .pointer("/hash/sha256")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    process: Some(json!({
                        "pid": process.get("pid"),
                        "name": process.get("name"),
                        "executable": exe,
                        "command_line": process.get("command_line"),
                        "parent": process.get("parent"),
                        "user": process.get("user"),
                        "hash": process.get("hash"),
                    })),
                    read_from,
                })
            }
            _ => None,
        }
    }
}

/// What the scanner needs from the rest of the agent.
pub struct ScannerContext {
    pub config: ScanConfig,
    /// Detection events go here (the spooler's channel).
    pub events: Sender<Value>,
    pub shutdown: Shutdown,
    pub health: Health,
    /// Where the server's rules are cached for restarts without the server.
    pub state_dir: PathBuf,
    /// Talks to the server (rules, samples, command results).
    pub server: Arc<dyn ServerLink>,
}

/// The scanner's calls to the server, behind a trait so the scanning is testable alone.
pub trait ServerLink: Send + Sync {
    /// `GET /api/v1/agents/yara-rules` → `{version, files: [{name, source}]}`.
    fn yara_rules(&self) -> anyhow::Result<Value>;
    /// `HEAD /api/v1/samples/{sha256}` → whether the server has it.
    fn has_sample(&self, sha256: &str) -> anyhow::Result<bool>;
    /// `POST /api/v1/samples?path=…&sha256=…` with the file's bytes.
    fn upload_sample(&self, path: &Path, read_from: &Path, sha256: &str) -> anyhow::Result<()>;
    /// As `upload_sample`, returning the server's answer (`collect_file` reports it).
    fn upload_sample_answer(
        &self,
        path: &Path,
        read_from: &Path,
        sha256: &str,
    ) -> anyhow::Result<Value> {
        self.upload_sample(path, read_from, sha256)?;
        Ok(serde_json::json!({"uploaded": true}))
    }
    /// `POST /api/v1/agents/commands/{id}/result`.
    fn command_result(&self, id: &str, body: &CommandResultRequest) -> anyhow::Result<()>;
}

/// Handles the heartbeat thread uses.
#[derive(Clone)]
pub struct ScannerHandle {
    pub tap: ScanTap,
    commands: Sender<Request>,
    wanted_rules: Arc<Mutex<Option<String>>>,
    pub stats: Arc<ScanStats>,
}

impl ScannerHandle {
    /// Queues a command from the server; `false` when the queue is full (the server offers
    /// it again later).
    pub fn command(&self, id: String, path: PathBuf, recursive: bool) -> bool {
        self.commands
            .try_send(Request::Command {
                id,
                path,
                recursive,
            })
            .is_ok()
    }

    /// The server announced its managed rules' version.
    pub fn server_rules_version(&self, version: &str) {
        *self
            .wanted_rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(version.to_owned());
    }
}

/// Starts the scanning thread.
pub fn start(ctx: ScannerContext) -> anyhow::Result<(ScannerHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = bounded(ctx.config.queue);
    let (commands_tx, commands_rx) = bounded(16);
    let stats = Arc::new(ScanStats::default());
    let pending = Arc::new(Mutex::new(HashSet::new()));
    let wanted_rules = Arc::new(Mutex::new(None));
    let handle = ScannerHandle {
        tap: ScanTap {
            tx,
            pending: pending.clone(),
            stats: stats.clone(),
            on_file: ctx.config.on_file_change,
            on_process: ctx.config.on_process_start,
        },
        commands: commands_tx,
        wanted_rules: wanted_rules.clone(),
        stats: stats.clone(),
    };
    let join = std::thread::Builder::new()
        .name("scanner".to_owned())
        .spawn(move || {
            let mut worker = Worker::new(ctx, stats, pending, wanted_rules);
            worker.run(&rx, &commands_rx);
        })?;
    Ok((handle, join))
}

/// A cached verdict: the findings of a file with this SHA-256 under these rules.
struct Cached {
    findings: Vec<Finding>,
    rules_generation: u64,
}

struct Worker {
    ctx: ScannerContext,
    stats: Arc<ScanStats>,
    pending: Arc<Mutex<HashSet<PathBuf>>>,
    wanted_rules: Arc<Mutex<Option<String>>>,
    scanner: FileScanner,
    server_rules_version: Option<String>,
    rules_generation: u64,
    cache: HashMap<String, Cached>,
    cache_order: VecDeque<String>,
    clamd_down_since: Option<Instant>,
    last_clamd_try: Instant,
    rules_problem: Option<String>,
    thread_cpu: Option<cpu_time::ThreadTime>,
}

impl Worker {
    fn new(
        ctx: ScannerContext,
        stats: Arc<ScanStats>,
        pending: Arc<Mutex<HashSet<PathBuf>>>,
        wanted_rules: Arc<Mutex<Option<String>>>,
    ) -> Worker {
        let mut w = Worker {
            scanner: FileScanner::default(),
            server_rules_version: None,
            rules_generation: 0,
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            clamd_down_since: None,
            last_clamd_try: Instant::now(),
            rules_problem: None,
            thread_cpu: None,
            ctx,
            stats,
            pending,
            wanted_rules,
        };
        let cached = w.cached_server_rules();
        w.rebuild(cached.as_ref());
        w.check_clamd();
        w
    }

    fn run(&mut self, requests: &Receiver<Request>, commands: &Receiver<Request>) {
        self.thread_cpu = Some(cpu_time::ThreadTime::now());
        while !self.ctx.shutdown.is_triggered() {
            self.refresh_server_rules();
            if self.clamd_down_since.is_some() && self.last_clamd_try.elapsed() >= CLAMD_RETRY {
                self.check_clamd();
            }
            let request = crossbeam_channel::select! {
                recv(commands) -> r => r.ok(),
                recv(requests) -> r => r.ok(),
                default(Duration::from_millis(500)) => None,
            };
            let Some(request) = request else { continue };
            match request {
                Request::File {
                    path,
                    trigger,
                    sha256,
                    process,
                    read_from,
                } => {
                    self.pending
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&path);
                    self.scan_one(&path, trigger, sha256, process, read_from);
                }
                Request::Command {
                    id,
                    path,
                    recursive,
                } => self.run_command(&id, &path, recursive),
            }
            if let Some(t) = &self.thread_cpu {
                self.stats.cpu_ms.store(
                    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
            }
        }
    }

    /// Sleeps long enough after `busy` of scanning to stay within the CPU budget.
    fn throttle(&self, busy: Duration) {
        self.stats.busy_ms.fetch_add(
            u64::try_from(busy.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let percent = f64::from(self.ctx.config.cpu_budget_percent.clamp(1, 100));
        let pause = busy.mul_f64(100.0 / percent - 1.0);
        if pause > Duration::ZERO {
            self.stats.throttled_ms.fetch_add(
                u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            self.ctx.shutdown.wait_timeout(pause);
        }
    }

    fn scan_one(
        &mut self,
        path: &Path,
        trigger: &'static str,
        sha256: Option<String>,
        process: Option<Value>,
        read_from: Option<PathBuf>,
    ) {
        if let Some(sha) = &sha256
            && let Some(hit) = self.cache.get(sha)
            && hit.rules_generation == self.rules_generation
        {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            if !hit.findings.is_empty() {
                let findings = hit.findings.clone();
                let report = FileReport {
                    path: path.to_owned(),
                    hashes: None,
                    findings,
                    errors: Vec::new(),
                    skipped: None,
                    engines: self.scanner.engines(),
                    duration: Duration::ZERO,
                };
                let mut events = self.events_of(&report, trigger, None, process.as_ref());
                for e in &mut events {
                    e["dozor"]["scan"]["cached"] = json!(true);
                    if self.ctx.config.upload_hashes {
                        e["file"]["hash"] = json!({ "sha256": sha });
                    }
                }
                self.emit(events);
            }
            return;
        }
        let started = Instant::now();
        let mut report = self.scanner.scan_file(read_from.as_deref().unwrap_or(path));
        report.path = path.to_owned();
        self.account(&report);
        if let Some(sha) = report.sha256().map(str::to_owned)
            && report.errors.is_empty()
        {
            self.remember(sha, report.findings.clone());
        }
        let events = self.events_of(&report, trigger, None, process.as_ref());
        self.emit(events);
        self.maybe_upload(&report, read_from.as_deref().unwrap_or(path));
        self.throttle(started.elapsed());
    }

    fn remember(&mut self, sha: String, findings: Vec<Finding>) {
        let cap = self.ctx.config.cache_entries.max(1);
        if !self.cache.contains_key(&sha) {
            self.cache_order.push_back(sha.clone());
        }
        self.cache.insert(
            sha,
            Cached {
                findings,
                rules_generation: self.rules_generation,
            },
        );
        while self.cache.len() > cap {
            match self.cache_order.pop_front() {
                Some(old) => {
                    self.cache.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Counters and health after one scan.
    fn account(&mut self, report: &FileReport) {
        let s = &self.stats;
        if report.skipped.is_some() {
            s.skipped.fetch_add(1, Ordering::Relaxed);
        } else {
            s.scanned.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(h) = &report.hashes {
            s.bytes.fetch_add(h.size, Ordering::Relaxed);
        }
        s.detections
            .fetch_add(report.findings.len() as u64, Ordering::Relaxed);
        s.engine_errors
            .fetch_add(report.errors.len() as u64, Ordering::Relaxed);
        if let Some(down) = report.errors.iter().find(|e| e.unavailable) {
            if self.clamd_down_since.is_none() {
                self.clamd_down_since = Some(Instant::now());
            }
            self.last_clamd_try = Instant::now();
            self.set_health(Some(down.message.clone()));
        } else if self.clamd_down_since.is_some()
            && report.engines.contains(&dozor_scan::clamd::ENGINE)
            && report.skipped.is_none()
        {
            self.clamd_down_since = None;
            self.set_health(None);
        }
    }

    /// Pings clamd (at start and while it is down) so the status recovers without a scan.
    fn check_clamd(&mut self) {
        self.last_clamd_try = Instant::now();
        let Some(client) = self.scanner.clamd() else {
            self.set_health(None);
            return;
        };
        match client.ping() {
            Ok(()) => {
                self.clamd_down_since = None;
                self.set_health(None);
            }
            Err(e) => {
                if self.clamd_down_since.is_none() {
                    self.clamd_down_since = Some(Instant::now());
                }
                self.set_health(Some(format!("{e}; files are scanned without ClamAV")));
            }
        }
    }

    fn set_health(&self, clamd_problem: Option<String>) {
        let clamd_problem = clamd_problem.or_else(|| {
            self.clamd_down_since
                .is_some()
                .then(|| "clamd unavailable".to_owned())
        });
        let problems: Vec<String> = clamd_problem
            .into_iter()
            .chain(self.rules_problem.clone())
            .collect();
        if problems.is_empty() {
            self.ctx
                .health
                .set(HEALTH_NAME, CollectorState::Running, None);
        } else {
            self.ctx.health.set(
                HEALTH_NAME,
                CollectorState::Degraded,
                Some(problems.join("; ")),
            );
        }
    }

    fn events_of(
        &self,
        report: &FileReport,
        trigger: &str,
        command_id: Option<&str>,
        process: Option<&Value>,
    ) -> Vec<Value> {
        let mut process = process.cloned();
        if !self.ctx.config.upload_hashes
            && let Some(p) = process.as_mut().and_then(Value::as_object_mut)
        {
            p.remove("hash");
        }
        let ctx = EventContext {
            provider: "dozor-agent",
            trigger,
            include_hashes: self.ctx.config.upload_hashes,
            command_id,
            process: process.as_ref(),
        };
        dozor_scan::finding_events(report, &ctx)
    }

    fn emit(&self, events: Vec<Value>) {
        for e in events {
            // The spooler drains this channel continuously; a long wait means it is stopping.
            if self
                .ctx
                .events
                .send_timeout(e, Duration::from_secs(5))
                .is_err()
            {
                tracing::warn!("scan event not delivered to the spooler (stopping?)");
            }
        }
    }

    fn maybe_upload(&self, report: &FileReport, read_from: &Path) {
        let mode = self.ctx.config.upload_samples.as_str();
        let Some(hashes) = &report.hashes else { return };
        let wanted = match mode {
            "detected" => !report.findings.is_empty(),
            "unknown" => !hashes.known_good,
            _ => false,
        };
        if !wanted || hashes.size > self.ctx.config.max_sample_bytes {
            return;
        }
        let result = self
            .ctx
            .server
            .has_sample(&hashes.sha256)
            .and_then(|known| {
                if known {
                    Ok(false)
                } else {
                    self.ctx
                        .server
                        .upload_sample(&report.path, read_from, &hashes.sha256)
                        .map(|()| true)
                }
            });
        match result {
            Ok(true) => {
                self.stats.samples_uploaded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(path = %report.path.display(), sha256 = %hashes.sha256, "sample uploaded");
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(path = %report.path.display(), "sample upload: {e:#}"),
        }
    }

    fn run_command(&mut self, id: &str, path: &Path, recursive: bool) {
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        tracing::info!(command = id, path = %path.display(), recursive, "scan-path command");
        let started = Instant::now();
        if !self.scanner.can_detect() {
            // "Done · 0 detections" would read as "clean".
            let body = CommandResultRequest {
                status: CommandStatus::Failed,
                error: Some(NOTHING_TO_DETECT_WITH.to_owned()),
                result: Some(json!({
                    "path": path.to_string_lossy(),
                    "recursive": recursive,
                    "files_scanned": 0,
                    "checked": false,
                    "engines": self.scanner.engines(),
                })),
            };
            if let Err(e) = self.ctx.server.command_result(id, &body) {
                tracing::warn!(command = id, "sending the command result: {e:#}");
            }
            return;
        }
        let mut summary = CommandSummary::default();
        let mut stopped = false;
        let mut stack = vec![path.to_owned()];
        let mut first = true;
        while let Some(p) = stack.pop() {
            if self.ctx.shutdown.is_triggered() {
                stopped = true;
                break;
            }
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) => {
                    summary.error(format!("{}: {e}", p.display()));
                    continue;
                }
            };
            if meta.is_dir() {
                if !first && !recursive {
                    continue;
                }
                match std::fs::read_dir(&p) {
                    Ok(entries) => {
                        let mut children: Vec<PathBuf> =
                            entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                        children.sort_unstable_by(|a, b| b.cmp(a));
                        stack.extend(children);
                    }
                    Err(e) => summary.error(format!("{}: {e}", p.display())),
                }
            } else if meta.is_file() {
                if summary.files_scanned + summary.files_skipped >= COMMAND_MAX_FILES {
                    summary.error(format!("stopped after {COMMAND_MAX_FILES} files"));
                    break;
                }
                let t = Instant::now();
                let report = self.scanner.scan_file(&p);
                self.account(&report);
                summary.add(&report);
                let events = self.events_of(&report, "command", Some(id), None);
                self.emit(events);
                self.maybe_upload(&report, &p);
                self.throttle(t.elapsed());
            }
            first = false;
        }
        let (status, error) = if stopped {
            (
                CommandStatus::Failed,
                Some("the agent stopped during the scan".to_owned()),
            )
        } else if summary.files_scanned == 0
            && summary.files_skipped == 0
            && !summary.errors.is_empty()
        {
            (CommandStatus::Failed, summary.errors.first().cloned())
        } else {
            (CommandStatus::Done, None)
        };
        let body = CommandResultRequest {
            status,
            error,
            result: Some(json!({
                "path": path.to_string_lossy(),
                "recursive": recursive,
                "files_scanned": summary.files_scanned,
                "files_skipped": summary.files_skipped,
                "bytes": summary.bytes,
                "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "engines": self.scanner.engines(),
                "detections": summary.detections,
                "detections_total": summary.detections_total,
                "errors": summary.errors,
                "errors_total": summary.errors_total,
            })),
        };
        if let Err(e) = self.ctx.server.command_result(id, &body) {
            tracing::warn!(command = id, "sending the command result: {e:#}");
        }
    }

    // ---------------------------------------------------------------- rules

    fn server_rules_file(&self) -> PathBuf {
        self.ctx.state_dir.join("server-yara-rules.json")
    }

    fn cached_server_rules(&self) -> Option<Value> {
        if !self.ctx.config.server_rules {
            return None;
        }
        let text = std::fs::read_to_string(self.server_rules_file()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Fetches the server's rules when it announced a version other than ours.
    fn refresh_server_rules(&mut self) {
        if !self.ctx.config.server_rules {
            return;
        }
        let wanted = self
            .wanted_rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(wanted) = wanted else { return };
        if self.server_rules_version.as_deref() == Some(wanted.as_str()) {
            return;
        }
        match self.ctx.server.yara_rules() {
            Ok(doc) => {
                let _ = std::fs::create_dir_all(&self.ctx.state_dir);
                let file = self.server_rules_file();
                let tmp = file.with_extension("json.tmp");
                if let Err(e) = std::fs::write(&tmp, doc.to_string())
                    .and_then(|()| std::fs::rename(&tmp, &file))
                {
                    tracing::warn!("caching the server's YARA rules in {}: {e}", file.display());
                }
                self.rebuild(Some(&doc));
                // Even when the fetched version differs (changed meanwhile), it is what we run;
                // the next heartbeat announces the newer one.
                if self.server_rules_version.is_none() {
                    self.server_rules_version = Some(wanted);
                }
            }
            Err(e) => {
                tracing::warn!("fetching the server's YARA rules: {e:#}");
                // Try again at the next announcement, not in a tight loop.
                *self
                    .wanted_rules
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
            }
        }
    }

    /// Builds the engines from the configuration, the local rules and the server's rules.
    fn rebuild(&mut self, server_rules: Option<&Value>) {
        let c = &self.ctx.config;
        let mut problems = Vec::new();
        let mut lists = HashLists::default();
        for (paths, list) in [
            (&c.known_bad, &mut lists.known_bad),
            (&c.known_good, &mut lists.known_good),
        ] {
            for p in paths {
                match list.load_into(p) {
                    Ok(bad_lines) => {
                        for l in bad_lines.iter().take(5) {
                            tracing::warn!("hash list {l}");
                        }
                        if !bad_lines.is_empty() {
                            problems.push(format!(
                                "{}: {} unreadable lines",
                                p.display(),
                                bad_lines.len()
                            ));
                        }
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
        let mut scanner = FileScanner::new(ScanOptions {
            max_file_bytes: c.max_file_bytes,
            yara_timeout: Duration::from_secs(c.yara_timeout_secs),
            skip_known_good: true,
        })
        .with_hash_lists(lists);
        if let Some(address) = c
            .clamd
            .as_deref()
            .and_then(|a| a.parse::<ClamdAddress>().ok())
        {
            scanner = scanner.with_clamd(
                ClamdClient::new(address)
                    .with_connect_timeout(Duration::from_secs(3))
                    .with_read_timeout(Duration::from_secs(60)),
            );
        }
        let server_version = server_rules
            .and_then(|d| d.get("version"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let rules_info = self.add_yara(&mut scanner, server_rules, &mut problems);
        *self
            .stats
            .rules
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = json!({
            "server_version": server_version,
            "engines": scanner.engines(),
            "yara": rules_info,
        });
        self.scanner = scanner;
        self.server_rules_version = server_version;
        self.rules_generation += 1;
        self.rules_problem = (!problems.is_empty()).then(|| problems.join("; "));
        self.set_health(None);
    }

    #[cfg(feature = "yara")]
    fn add_yara(
        &self,
        scanner: &mut FileScanner,
        server_rules: Option<&Value>,
        problems: &mut Vec<String>,
    ) -> Value {
        let mut sources: Vec<(String, String)> = Vec::new();
        if let Some(dir) = &self.ctx.config.yara_rules_dir {
            match local_rule_files(dir) {
                Ok(files) => sources.extend(files),
                Err(e) => problems.push(format!("YARA rules dir {}: {e}", dir.display())),
            }
        }
        if let Some(files) = server_rules
            .and_then(|d| d.get("files"))
            .and_then(Value::as_array)
        {
            for f in files {
                if let (Some(name), Some(source)) = (
                    f.get("name").and_then(Value::as_str),
                    f.get("source").and_then(Value::as_str),
                ) {
                    // The server's namespace, so the agent's and the server's verdicts on the
                    // same rule raise the same alert rule id.
                    let namespace = match f.get("namespace").and_then(Value::as_str) {
                        Some(ns) => ns.to_owned(),
                        None => format!(
                            "server/{}",
                            name.trim_end_matches(".yara").trim_end_matches(".yar")
                        ),
                    };
                    sources.push((namespace, source.to_owned()));
                }
            }
        }
        if sources.is_empty() {
            return json!({ "files": 0, "rules": 0 });
        }
        let load = dozor_scan::yara::YaraRules::compile_sources(&sources);
        for e in &load.errors {
            tracing::error!(
                "YARA rule file {} does not compile: {}",
                e.path.display(),
                e.message
            );
        }
        if !load.errors.is_empty() {
            problems.push(format!(
                "{} YARA rule file(s) do not compile (first: {}: {})",
                load.errors.len(),
                load.errors[0].path.display(),
                load.errors[0].message.lines().next().unwrap_or("")
            ));
        }
        let info = json!({
            "files": load.files_loaded,
            "rules": load.rules.rule_count(),
            "errors": load.errors.iter().map(|e| format!("{}: {}", e.path.display(), e.message)).collect::<Vec<_>>(),
        });
        tracing::info!(
            files = load.files_loaded,
            rules = load.rules.rule_count(),
            failed = load.errors.len(),
            "YARA rules loaded"
        );
        *scanner = std::mem::take(scanner).with_yara(load.rules);
        info
    }

    #[cfg(not(feature = "yara"))]
    fn add_yara(
        &self,
        _scanner: &mut FileScanner,
        server_rules: Option<&Value>,
        problems: &mut Vec<String>,
    ) -> Value {
        if self.ctx.config.yara_rules_dir.is_some() || server_rules.is_some() {
            problems.push("this agent was built without YARA (feature `yara`)".to_owned());
        }
        json!({ "files": 0, "rules": 0 })
    }
}

/// `*.yar` / `*.yara` under `dir` (recursive, sorted), named by their path relative to `dir`.
#[cfg(feature = "yara")]
fn local_rule_files(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yar" | "yara")
                )
            {
                let text = match std::fs::read(&path) {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => {
                        tracing::error!("reading YARA rule file {}: {e}", path.display());
                        continue;
                    }
                };
                let rel = path.strip_prefix(dir).unwrap_or(&path).with_extension("");
                let name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((format!("local/{name}"), text));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What a scan-path command found, kept small for the result.
#[derive(Default)]
struct CommandSummary {
    files_scanned: u64,
    files_skipped: u64,
    bytes: u64,
    detections: Vec<Value>,
    detections_total: u64,
    errors: Vec<String>,
    errors_total: u64,
}

impl CommandSummary {
    fn error(&mut self, message: String) {
        self.errors_total += 1;
        if self.errors.len() < RESULT_ERRORS {
            self.errors.push(message);
        }
    }

    fn add(&mut self, report: &FileReport) {
        match &report.skipped {
            Some(why) => {
                self.files_skipped += 1;
                if report.hashes.is_none() {
                    self.error(format!("{}: {why}", report.path.display()));
                }
            }
            None => self.files_scanned += 1,
        }
        if let Some(h) = &report.hashes {
            self.bytes += h.size;
        }
        for e in &report.errors {
            self.error(format!("{}: {}", report.path.display(), e.message));
        }
        for f in &report.findings {
            self.detections_total += 1;
            if self.detections.len() < RESULT_DETECTIONS {
                self.detections.push(json!({
                    "path": report.path.to_string_lossy(),
                    "sha256": report.sha256(),
                    "engine": f.engine,
                    "name": f.qualified_name(),
                    "severity": f.severity.as_str(),
                    "verdict": f.verdict.as_str(),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that serves fixed rules and records what it was sent.
    #[derive(Default)]
    struct FakeServer {
        rules: Mutex<Value>,
        known: Mutex<HashSet<String>>,
        uploads: Mutex<Vec<(PathBuf, String)>>,
        results: Mutex<Vec<(String, Value)>>,
    }

    impl ServerLink for FakeServer {
        fn yara_rules(&self) -> anyhow::Result<Value> {
            Ok(self.rules.lock().unwrap().clone())
        }
        fn has_sample(&self, sha256: &str) -> anyhow::Result<bool> {
            Ok(self.known.lock().unwrap().contains(sha256))
        }
        fn upload_sample(&self, path: &Path, _: &Path, sha256: &str) -> anyhow::Result<()> {
            self.known.lock().unwrap().insert(sha256.to_owned());
            self.uploads
                .lock()
                .unwrap()
                .push((path.to_owned(), sha256.to_owned()));
            Ok(())
        }
        fn command_result(&self, id: &str, body: &CommandResultRequest) -> anyhow::Result<()> {
            self.results
                .lock()
                .unwrap()
                .push((id.to_owned(), serde_json::to_value(body).unwrap()));
            Ok(())
        }
    }

    struct Running {
        handle: ScannerHandle,
        join: Option<std::thread::JoinHandle<()>>,
        events: Receiver<Value>,
        shutdown: Shutdown,
        health: Health,
        server: Arc<FakeServer>,
        dir: tempfile::TempDir,
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.shutdown.trigger();
            if let Some(j) = self.join.take() {
                let _ = j.join();
            }
        }
    }

    fn start_with(config: impl FnOnce(&mut ScanConfig, &Path)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let mut c = ScanConfig::default();
        config(&mut c, dir.path());
        c.validate().unwrap();
        let (tx, rx) = bounded(1000);
        let shutdown = Shutdown::new();
        let health = Health::default();
        let server = Arc::new(FakeServer::default());
        let (handle, join) = start(ScannerContext {
            config: c,
            events: tx,
            shutdown: shutdown.clone(),
            health: health.clone(),
            state_dir: dir.path().join("state"),
            server: server.clone(),
        })
        .unwrap();
        Running {
            handle,
            join: Some(join),
            events: rx,
            shutdown,
            health,
            server,
            dir,
        }
    }

    fn fim_event(path: &Path) -> Value {
        json!({
            "event": {"action": "created", "category": ["file"]},
            "file": {"path": path.to_string_lossy(), "type": "file"},
        })
    }

    fn wait_for(mut ok: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn known_bad_file_becomes_an_event_and_a_clean_one_does_not() {
        let r = start_with(|c, dir| {
            let list = dir.join("bad.txt");
            let sha =
                dozor_scan::Digests::of_bytes(b"evil payload", dozor_scan::DigestSet::SHA256_ONLY)
                    .sha256_hex();
            std::fs::write(&list, format!("{sha} test dropper\n")).unwrap();
            c.known_bad = vec![list];
            c.upload_samples = "detected".into();
        });
        let clean = r.dir.path().join("clean.txt");
        std::fs::write(&clean, b"nothing to see").unwrap();
        let evil = r.dir.path().join("evil.bin");
        std::fs::write(&evil, b"evil payload").unwrap();
        r.handle.tap.offer(&fim_event(&clean));
        r.handle.tap.offer(&fim_event(&evil));
        let event = r.events.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(event["file"]["path"], evil.to_string_lossy().as_ref());
        assert_eq!(event["threat"]["engine"], "hashlist");
        assert_eq!(event["threat"]["signature"], "test dropper");
        assert_eq!(event["threat"]["severity"], "critical");
        assert_eq!(event["dozor"]["scan"]["trigger"], "file");
        assert!(event["file"]["hash"]["sha256"].is_string());
        assert!(
            r.events.recv_timeout(Duration::from_millis(300)).is_err(),
            "clean file: no event"
        );
        assert!(
            wait_for(|| r.server.uploads.lock().unwrap().len() == 1),
            "detected sample uploaded"
        );
        assert_eq!(r.handle.stats.scanned.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn process_executables_are_cached_by_hash() {
        let r = start_with(|c, dir| {
            let list = dir.join("bad.txt");
            let sha = dozor_scan::Digests::of_bytes(b"MZ evil", dozor_scan::DigestSet::SHA256_ONLY)
                .sha256_hex();
            std::fs::write(&list, format!("{sha}\n")).unwrap();
            c.known_bad = vec![list];
            c.upload_hashes = false;
        });
        let exe = r.dir.path().join("evil");
        std::fs::write(&exe, b"MZ evil").unwrap();
        let sha = dozor_scan::Digests::of_bytes(b"MZ evil", dozor_scan::DigestSet::SHA256_ONLY)
            .sha256_hex();
        for pid in [100, 101, 102] {
            r.handle.tap.offer(&json!({
                "event": {"action": "started"},
                "process": {"pid": pid, "executable": exe.to_string_lossy(), "hash": {"sha256": sha}},
            }));
            let e = r.events.recv_timeout(Duration::from_secs(20)).unwrap();
            assert_eq!(e["process"]["pid"], pid);
            assert_eq!(e["dozor"]["scan"]["trigger"], "process");
            assert!(e["file"].get("hash").is_none(), "upload_hashes = false");
            assert!(e["process"].get("hash").is_none(), "upload_hashes = false");
        }
        assert_eq!(r.handle.stats.scanned.load(Ordering::Relaxed), 1);
        assert_eq!(r.handle.stats.cache_hits.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn clamd_down_is_a_degraded_status_and_scanning_goes_on() {
        let r = start_with(|c, dir| {
            c.clamd = Some(format!("unix:{}", dir.join("missing.sock").display()));
        });
        assert!(
            wait_for(|| r
                .health
                .problems()
                .iter()
                .any(|p| p.contains("cannot connect"))),
            "{:?}",
            r.health.problems()
        );
        let f = r.dir.path().join("f.txt");
        std::fs::write(&f, b"data").unwrap();
        r.handle.tap.offer(&fim_event(&f));
        assert!(wait_for(|| r
            .handle
            .stats
            .engine_errors
            .load(Ordering::Relaxed)
            == 1));
        assert_eq!(r.handle.stats.scanned.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn queue_overflow_drops_and_counts() {
        let r = start_with(|c, _| {
            c.queue = 1;
            c.cpu_budget_percent = 1;
        });
        for i in 0..50 {
            let f = r.dir.path().join(format!("f{i}"));
            std::fs::write(&f, vec![b'x'; 200_000]).unwrap();
            r.handle.tap.offer(&fim_event(&f));
        }
        assert!(r.handle.stats.dropped.load(Ordering::Relaxed) > 0);
        // A directory or a non-file event is never queued.
        let before = r.handle.stats.queued.load(Ordering::Relaxed);
        r.handle.tap.offer(
            &json!({"event": {"action": "created"}, "file": {"path": "/tmp", "type": "dir"}}),
        );
        r.handle.tap.offer(
            &json!({"event": {"action": "deleted"}, "file": {"path": "/x", "type": "file"}}),
        );
        // Nor a short-lived file: it is gone already.
        let mut gone = fim_event(&r.dir.path().join("dropper.exe"));
        gone["dozor"] = json!({"file": {"short_lived": true}});
        r.handle.tap.offer(&gone);
        assert_eq!(r.handle.stats.queued.load(Ordering::Relaxed), before);
    }

    #[test]
    fn the_budget_throttles_scanning() {
        let r = start_with(|c, _| c.cpu_budget_percent = 20);
        for i in 0..20 {
            let f = r.dir.path().join(format!("big{i}"));
            std::fs::write(&f, vec![i as u8; 4 << 20]).unwrap();
            r.handle.tap.offer(&fim_event(&f));
        }
        assert!(wait_for(
            || r.handle.stats.scanned.load(Ordering::Relaxed) >= 5
        ));
        let busy = r.handle.stats.busy_ms.load(Ordering::Relaxed) as f64;
        let throttled = r.handle.stats.throttled_ms.load(Ordering::Relaxed) as f64;
        // 20 %: four times as long asleep as busy (the last scan's pause may still be running).
        assert!(
            throttled >= busy * 2.0,
            "busy {busy} ms, throttled {throttled} ms"
        );
    }

    /// An agent with no engine said "Done · 0 detections" for an EICAR file.
    #[test]
    fn a_scan_path_command_with_nothing_to_detect_with_says_nothing_was_checked() {
        let r = start_with(|c, _| c.server_rules = false);
        let tree = r.dir.path().join("tree");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::write(
            tree.join("eicar.com"),
            b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR",
        )
        .unwrap();
        assert!(r.handle.command("cmd-0".into(), tree, true));
        assert!(wait_for(|| !r.server.results.lock().unwrap().is_empty()));
        let (id, body) = r.server.results.lock().unwrap()[0].clone();
        assert_eq!(id, "cmd-0");
        assert_eq!(body["status"], "failed", "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("nothing was checked"),
            "{body}"
        );
        assert_eq!(body["result"]["checked"], false, "{body}");
    }

    #[cfg(feature = "yara")]
    #[test]
    fn server_rules_and_a_scan_path_command() {
        let r = start_with(|c, dir| {
            let local = dir.join("rules");
            std::fs::create_dir_all(&local).unwrap();
            std::fs::write(local.join("broken.yar"), "rule broken { condition: nope }").unwrap();
            std::fs::write(
                local.join("local.yar"),
                "rule local_marker { meta: severity = \"medium\" strings: $a = \"LOCAL-MARKER\" condition: $a }",
            )
            .unwrap();
            c.yara_rules_dir = Some(local);
        });
        *r.server.rules.lock().unwrap() = json!({
            "version": "v1",
            "files": [{"name": "team.yar", "source": "rule server_marker : apt { meta: score = 95 strings: $a = \"SERVER-MARKER\" condition: $a }"}],
        });
        r.handle.server_rules_version("v1");
        assert!(wait_for(
            || r.handle.stats.json()["rules"]["server_version"] == "v1"
        ));
        assert!(
            r.health.problems().iter().any(|p| p.contains("broken")),
            "{:?}",
            r.health.problems()
        );
        let tree = r.dir.path().join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("a.txt"), b"xx SERVER-MARKER xx").unwrap();
        std::fs::write(tree.join("sub/b.txt"), b"LOCAL-MARKER").unwrap();
        std::fs::write(tree.join("c.txt"), b"clean").unwrap();
        assert!(r.handle.command("cmd-1".into(), tree.clone(), true));
        assert!(wait_for(|| !r.server.results.lock().unwrap().is_empty()));
        let (id, body) = r.server.results.lock().unwrap()[0].clone();
        assert_eq!(id, "cmd-1");
        assert_eq!(body["status"], "done");
        let result = &body["result"];
        assert_eq!(result["files_scanned"], 3, "{result}");
        assert_eq!(result["detections_total"], 2, "{result}");
        let names: Vec<&str> = result["detections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"server/team.server_marker"), "{names:?}");
        assert!(names.contains(&"local/local.local_marker"), "{names:?}");
        let events: Vec<Value> = r.events.try_iter().collect();
        assert_eq!(events.len(), 2);
        let server_hit = events
            .iter()
            .find(|e| e["threat"]["rule"]["name"] == "server_marker")
            .unwrap();
        assert_eq!(server_hit["threat"]["severity"], "critical");
        assert_eq!(server_hit["dozor"]["scan"]["command_id"], "cmd-1");
        assert!(
            r.dir.path().join("state/server-yara-rules.json").exists(),
            "cached for restarts"
        );

        // Non-recursive: only the top level.
        assert!(r.handle.command("cmd-2".into(), tree.clone(), false));
        assert!(wait_for(|| r.server.results.lock().unwrap().len() == 2));
        let (_, body) = r.server.results.lock().unwrap()[1].clone();
        assert_eq!(body["result"]["files_scanned"], 2, "{body}");
        // A missing path fails with the reason.
        assert!(r.handle.command("cmd-3".into(), tree.join("nope"), true));
        assert!(wait_for(|| r.server.results.lock().unwrap().len() == 3));
        let (_, body) = r.server.results.lock().unwrap()[2].clone();
        assert_eq!(body["status"], "failed");
        assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");
    }
}
