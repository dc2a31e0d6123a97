//! `dozor-agent run`: collectors → channel → spooler (ids, agent/host fields, disk spool) →
//! sender (batches, zstd, mutual TLS, retries) — plus heartbeats and the status file.
//!
//! Every event is on disk before it is sent and removed from the disk only after the server
//! accepted its batch, so a server outage, a network failure or an agent crash loses nothing
//! that reached the spool; the server stores each event id once, so a batch sent twice (the
//! answer was lost) is stored once.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use dozor_model::CommandStatus;
use dozor_model::api::{
    CommandDelivery, CommandResultRequest, HeartbeatRequest, HeartbeatResponse, SCAN_PATH,
    ScanPathArgs,
};
use dozor_spool::{FsyncPolicy, RecordId, Spool};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::config::{AgentConfig, WireFormat};
use crate::identity::{Identity, agent_facts, post_json, problem_text};

/// Events waiting between the collectors and the spooler.
const CHANNEL_CAPACITY: usize = 10_000;
/// The spooler writes a chunk at least this often while events arrive.
const CHUNK_EVERY: Duration = Duration::from_millis(200);
/// How often the status file is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// Counters shared by the agent's threads (and written to the status file).
#[derive(Debug, Default)]
pub struct Counters {
    pub events_collected: AtomicU64,
    pub events_spooled: AtomicU64,
    pub events_sent: AtomicU64,
    pub events_rejected: AtomicU64,
    pub batches_sent: AtomicU64,
    pub send_failures: AtomicU64,
    pub last_success_at: AtomicI64,
    pub last_heartbeat_at: AtomicI64,
    pub last_error: Mutex<Option<String>>,
    /// The server refuses this agent's certificate (revoked or replaced).
    pub refused: AtomicBool,
}

impl Counters {
    fn error(&self, message: String) {
        tracing::warn!("{message}");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }
    fn clear_error(&self) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The status file (`status.json` in the state directory) that `dozor-agent status` reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusFile {
    pub pid: u32,
    pub version: String,
    pub agent_id: String,
    pub server: String,
    pub started_at: i64,
    pub updated_at: i64,
    pub stopped: bool,
    pub events_collected: u64,
    pub events_spooled: u64,
    pub events_sent: u64,
    pub events_rejected: u64,
    pub batches_sent: u64,
    pub send_failures: u64,
    pub spool_records: u64,
    pub spool_bytes: u64,
    pub spool_dropped_records: u64,
    pub spool_dropped_bytes: u64,
    pub last_success_at: Option<i64>,
    pub last_heartbeat_at: Option<i64>,
    pub last_error: Option<String>,
    pub certificate_refused: bool,
    pub collectors: Value,
    /// The scanner's counters (absent when scanning is off, and in files of older agents).
    #[serde(default)]
    pub scan: Value,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn nonzero(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

/// Sets `key` in `object` when absent.
fn set_default(object: &mut Map<String, Value>, key: &str, value: Value) {
    object.entry(key.to_owned()).or_insert(value);
}

/// Adds what the agent knows to a collector's event: `event.id` (UUIDv7) when the collector
/// set none, `agent.*` and `host.*`.
pub fn stamp(mut event: Value, agent_id: &str, host: &Value) -> Value {
    let Some(object) = event.as_object_mut() else {
        return event;
    };
    let ev = object
        .entry("event")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(ev) = ev.as_object_mut() {
        set_default(ev, "id", Value::String(uuid::Uuid::now_v7().to_string()));
    }
    object.insert(
        "agent".to_owned(),
        json!({
            "id": agent_id,
            "type": "dozor",
            "version": env!("CARGO_PKG_VERSION"),
            "name": host["hostname"],
        }),
    );
    let h = object
        .entry("host")
        .or_insert_with(|| Value::Object(Map::new()));
    if let (Some(h), Some(defaults)) = (h.as_object_mut(), host.as_object()) {
        for (k, v) in defaults {
            match (h.get_mut(k), v) {
                (Some(Value::Object(mine)), Value::Object(theirs)) => {
                    for (k2, v2) in theirs {
                        set_default(mine, k2, v2.clone());
                    }
                }
                (Some(_), _) => {}
                (None, v) => {
                    h.insert(k.clone(), v.clone());
                }
            }
        }
    }
    event
}

/// `host.*` as the agent stamps it on every event (facts that could not be read are left out).
pub fn host_fields(facts: &dozor_collect::HostFacts) -> Value {
    let mut os = Map::new();
    os.insert("type".into(), json!(facts.os_type));
    os.insert(
        "family".into(),
        json!(if facts.os_type == "windows" {
            "windows"
        } else {
            "linux"
        }),
    );
    for (key, value) in [
        ("name", &facts.os_name),
        ("version", &facts.os_version),
        ("platform", &facts.os_platform),
        ("full", &facts.os_full),
        ("kernel", &facts.kernel),
    ] {
        if !value.is_empty() {
            os.insert(key.into(), json!(value));
        }
    }
    let mut host = json!({
        "name": facts.hostname,
        "hostname": facts.hostname,
        "os": os,
    });
    if !facts.arch.is_empty() {
        host["architecture"] = json!(facts.arch);
    }
    if !facts.ips.is_empty() {
        host["ip"] = json!(facts.ips);
    }
    host
}

struct Shared {
    config: AgentConfig,
    /// Agent id and server (they never change while the agent runs).
    identity: Identity,
    /// The credentials in use: replaced when the certificate is renewed, which bumps
    /// `generation` so the sender rebuilds its client.
    current: Mutex<Identity>,
    generation: AtomicU64,
    counters: Counters,
    spool: Mutex<Spool>,
    /// Wakes the sender when a full batch is waiting.
    wake: (Sender<()>, Receiver<()>),
    stop: Arc<AtomicBool>,
    /// The spooler wrote its last chunk (set after `stop`): the sender's final round.
    spooler_done: AtomicBool,
    health: dozor_collect::Health,
    started_at: i64,
    /// The scanning thread's handles (absent when `scan.enabled = false`).
    scanner: OnceLock<crate::scanner::ScannerHandle>,
    /// `scan_path` commands the scanner took and has not finished.
    accepted_scans: Mutex<std::collections::HashSet<String>>,
    /// The response commands' dispatcher and the isolator (the heartbeat reports it).
    responder: OnceLock<Responder>,
}

struct Responder {
    dispatcher: Arc<crate::response::Dispatcher>,
    isolator: Arc<dozor_respond::Isolator<crate::response::Backend>>,
}

impl Shared {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// An HTTP client with the current client certificate.
    fn client(&self, request_timeout: Duration) -> Result<ureq::Agent> {
        let t = &self.config.transport;
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .client(Duration::from_secs(t.connect_timeout_secs), request_timeout)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Runs the agent until `stop` turns true.
pub fn run(config: AgentConfig, stop: Arc<AtomicBool>) -> Result<()> {
    let identity = Identity::load(&config.identity_dir())?;
    let spool = Spool::open(
        config.spool_dir(),
        dozor_spool::SpoolConfig {
            max_bytes: config.spool.max_bytes,
            segment_bytes: config.spool.segment_bytes,
            fsync: if config.spool.fsync == "always" {
                FsyncPolicy::EveryAppend
            } else {
                FsyncPolicy::Never
            },
        },
    )
    .with_context(|| format!("opening the spool in {}", config.spool_dir().display()))?;
    if !spool.is_empty() {
        tracing::info!(
            records = spool.len(),
            bytes = spool.bytes(),
            "spool holds events from before the restart; sending them first"
        );
    }
    let facts = dozor_collect::host_facts();
    let host = host_fields(&facts);
    tracing::info!(
        agent_id = identity.record.agent_id,
        server = identity.record.server,
        "dozor-agent starting"
    );
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        spool: Mutex::new(spool),
        wake: bounded(1),
        stop: stop.clone(),
        spooler_done: AtomicBool::new(false),
        health: dozor_collect::Health::default(),
        started_at: now_ms(),
        current: Mutex::new(identity.clone()),
        generation: AtomicU64::new(0),
        scanner: OnceLock::new(),
        accepted_scans: Mutex::new(std::collections::HashSet::new()),
        responder: OnceLock::new(),
        identity,
        config,
    });

    let (events_tx, events_rx) = bounded::<Value>(CHANNEL_CAPACITY);
    let shutdown = dozor_collect::Shutdown::new();
    std::fs::create_dir_all(shared.config.collector_state_dir())
        .with_context(|| format!("creating {}", shared.config.collector_state_dir().display()))?;
    let collectors = dozor_collect::start(
        &shared.config.collect,
        dozor_collect::CollectorContext {
            sender: events_tx.clone(),
            shutdown: shutdown.clone(),
            state_dir: shared.config.collector_state_dir(),
            health: shared.health.clone(),
        },
    )
    .context("starting the collectors")?;
    #[cfg(windows)]
    let eventlog = crate::windows::start_eventlog(
        &shared.config,
        events_tx.clone(),
        shutdown.clone(),
        shared.health.clone(),
    );
    let scanner = if shared.config.scan.enabled {
        let (handle, join) = crate::scanner::start(crate::scanner::ScannerContext {
            config: shared.config.scan.clone(),
            events: events_tx.clone(),
            shutdown: shutdown.clone(),
            health: shared.health.clone(),
            state_dir: shared.config.scan_state_dir(),
            server: Arc::new(HttpLink {
                shared: shared.clone(),
            }),
        })
        .context("starting the scanner")?;
        let _ = shared.scanner.set(handle);
        Some(join)
    } else {
        None
    };
    drop(events_tx);

    let mut response_threads = start_response(&shared)?;

    let spooler = {
        let shared = shared.clone();
        let host = host.clone();
        spawn("spooler", move || {
            spooler(&shared, &events_rx, &host);
            shared.spooler_done.store(true, Ordering::SeqCst);
            let _ = shared.wake.0.try_send(());
        })?
    };
    let sender = {
        let shared = shared.clone();
        spawn("sender", move || sender(&shared))?
    };
    let heartbeat = {
        let shared = shared.clone();
        spawn("heartbeat", move || heartbeat(&shared, &facts))?
    };
    let inventory = if shared.config.inventory.enabled {
        let shared = shared.clone();
        Some(spawn("inventory", move || report_inventory(&shared))?)
    } else {
        None
    };

    while !stop.load(Ordering::SeqCst) {
        write_status(&shared, false);
        let deadline = Instant::now() + STATUS_EVERY;
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    tracing::info!("stopping: collectors first, then the spool is flushed");
    shutdown.trigger();
    for c in collectors {
        let _ = c.join();
    }
    if let Some(s) = scanner {
        let _ = s.join();
    }
    #[cfg(windows)]
    if let Some(e) = eventlog {
        let _ = e.join();
    }
    // The spooler ends when every collector has dropped its sender and the channel is empty.
    let _ = spooler.join();
    let _ = shared.wake.0.try_send(());
    let _ = sender.join();
    let _ = heartbeat.join();
    if let Some(i) = inventory {
        let _ = i.join();
    }
    // The long poll may be inside a request for up to its wait: not joined.
    for t in response_threads.drain(..) {
        let _ = t.join();
    }
    if let Err(e) = shared.spool().flush() {
        tracing::error!("flushing the spool: {e}");
    }
    write_status(&shared, true);
    Ok(())
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .with_context(|| format!("starting the {name} thread"))
}

/// Starts the response side: the dispatcher's worker (which resumes a recorded isolation
/// first), the auto-release timer and, unless disabled, the long poll (detached). Returns the
/// threads to join at stop.
fn start_response(shared: &Arc<Shared>) -> Result<Vec<JoinHandle<()>>> {
    let state_dir = shared.config.state_dir.clone();
    let isolator = Arc::new(crate::response::isolator(&state_dir));
    let link = Arc::new(HttpLink {
        shared: shared.clone(),
    });
    let actions = crate::response::Actions::new(
        &shared.config.response,
        &shared.identity.record.server,
        &state_dir,
        isolator.clone(),
        link.clone(),
    )?;
    let (dispatcher, worker) = crate::response::Dispatcher::start(
        &state_dir,
        link,
        Arc::new(actions),
        shared.stop.clone(),
    )?;
    let timer = crate::response::start_auto_release(isolator.clone(), shared.stop.clone())?;
    let _ = shared.responder.set(Responder {
        dispatcher,
        isolator,
    });
    if shared.config.response.long_poll {
        let shared = shared.clone();
        // Detached: a poll in flight ends by itself within its wait.
        let _ = spawn("long-poll", move || long_poll(&shared))?;
    }
    Ok(vec![worker, timer])
}

/// Keeps `GET /api/v1/agents/commands/next` open and hands what it brings to the same
/// dispatcher as heartbeat answers. Backs off 1 s → 30 s on errors; an older server without
/// the endpoint (404/405) is logged once and asked again every 10 minutes, commands coming
/// with heartbeats meanwhile.
fn long_poll(shared: &Shared) {
    use crate::response::{Poll, poll_backoff, poll_once};
    let wait = shared.config.response.long_poll_wait_secs;
    let request_timeout = Duration::from_secs(wait + 15);
    let mut generation = shared.generation.load(Ordering::SeqCst);
    let mut client = match shared.client(request_timeout) {
        Ok(c) => c,
        Err(e) => {
            shared.counters.error(format!("TLS client: {e:#}"));
            return;
        }
    };
    let mut failures = 0u32;
    let mut told_unsupported = false;
    while !shared.stopping() {
        let now_generation = shared.generation.load(Ordering::SeqCst);
        if now_generation != generation
            && let Ok(renewed) = shared.client(request_timeout)
        {
            client = renewed;
            generation = now_generation;
        }
        match poll_once(&client, &shared.identity.record.server, wait) {
            Poll::Commands(commands) => {
                failures = 0;
                told_unsupported = false;
                if !commands.is_empty() {
                    tracing::debug!(count = commands.len(), "commands from the long poll");
                    take_commands(shared, &commands);
                }
            }
            Poll::Unsupported => {
                if !told_unsupported {
                    tracing::info!(
                        "the server has no long-poll endpoint; commands arrive with heartbeats"
                    );
                    told_unsupported = true;
                }
                sleep_unless_stopped(shared, Duration::from_secs(600));
            }
            Poll::Failed(why) => {
                failures = failures.saturating_add(1);
                tracing::debug!(failures, "long poll: {why}");
                sleep_unless_stopped(shared, poll_backoff(failures));
            }
        }
    }
}

/// Collects events into chunks (NDJSON, at most one batch worth) and appends each chunk to
/// the spool as one record.
fn spooler(shared: &Shared, events: &Receiver<Value>, host: &Value) {
    let agent_id = shared.identity.record.agent_id.clone();
    let max = shared.config.transport.batch_max_events;
    let mut chunk: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut in_chunk = 0usize;
    let mut chunk_started = Instant::now();
    loop {
        let timeout = if in_chunk == 0 {
            Duration::from_millis(500)
        } else {
            CHUNK_EVERY.saturating_sub(chunk_started.elapsed())
        };
        let disconnected = match events.recv_timeout(timeout) {
            Ok(event) => {
                shared
                    .counters
                    .events_collected
                    .fetch_add(1, Ordering::Relaxed);
                if in_chunk == 0 {
                    chunk_started = Instant::now();
                }
                if let Some(scanner) = shared.scanner.get() {
                    scanner.tap.offer(&event);
                }
                let event = stamp(event, &agent_id, host);
                if serde_json::to_writer(&mut chunk, &event).is_ok() {
                    chunk.push(b'\n');
                    in_chunk += 1;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let due = in_chunk > 0 && (in_chunk >= max || chunk_started.elapsed() >= CHUNK_EVERY);
        if due || (disconnected && in_chunk > 0) {
            let mut spool = shared.spool();
            match spool.append(&chunk) {
                Ok(_) => {
                    shared
                        .counters
                        .events_spooled
                        .fetch_add(in_chunk as u64, Ordering::Relaxed);
                }
                Err(e) => shared
                    .counters
                    .error(format!("spool write failed, {in_chunk} events lost: {e}")),
            }
            let waiting = spool.len();
            drop(spool);
            chunk.clear();
            in_chunk = 0;
            if waiting as usize * 4 >= max.max(4) || disconnected {
                let _ = shared.wake.0.try_send(());
            }
        }
        if disconnected {
            return;
        }
    }
}

/// Outcome of one send.
enum Sent {
    /// The server took the batch (some events may have been rejected as invalid).
    Accepted { rejected: u64 },
    /// Try again later (network, 5xx, 503/429 with Retry-After) — and why.
    Retry {
        after: Option<Duration>,
        why: String,
    },
    /// The batch is too large for the server: send fewer records.
    TooLarge,
    /// The server will never take this batch (malformed): drop it.
    Bad(String),
    /// The certificate is refused.
    Refused(String),
    /// The server doesn't read protobuf batches (415, an older server): send NDJSON instead.
    ProtobufUnsupported,
}

/// The body of a batch of spooled NDJSON lines in `format`, and its `Content-Type`. Lines that
/// can't travel as protobuf (not JSON objects: a damaged spool) send the batch as NDJSON, so
/// the server reports each bad line and takes the rest.
fn batch_body(ndjson: &[u8], format: WireFormat) -> (std::borrow::Cow<'_, [u8]>, &'static str) {
    const NDJSON: &str = "application/x-ndjson";
    if format == WireFormat::Json {
        return (ndjson.into(), NDJSON);
    }
    let documents: Option<Vec<Value>> = ndjson
        .split(|b| *b == b'\n')
        .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .map(|line| serde_json::from_slice(line).ok())
        .collect();
    match documents.map(dozor_wire::encode_batch) {
        Some(Ok(body)) => (body.into(), dozor_wire::CONTENT_TYPE),
        _ => {
            tracing::warn!("a spooled line is not a JSON object; this batch goes as NDJSON");
            (ndjson.into(), NDJSON)
        }
    }
}

fn post_batch(
    client: &ureq::Agent,
    url: &str,
    ndjson: &[u8],
    format: WireFormat,
    zstd_level: i32,
) -> Sent {
    let (body, content_type) = batch_body(ndjson, format);
    let (payload, encoding) = if zstd_level > 0 {
        match zstd::bulk::compress(&body, zstd_level) {
            Ok(c) => (c, Some("zstd")),
            Err(_) => (body.into_owned(), None),
        }
    } else {
        (body.into_owned(), None)
    };
    let mut request = client.post(url).header("Content-Type", content_type);
    if let Some(e) = encoding {
        request = request.header("Content-Encoding", e);
    }
    let mut response = match request.send(payload.as_slice()) {
        Ok(r) => r,
        Err(e) => {
            return Sent::Retry {
                after: None,
                why: format!("sending to {url}: {e}"),
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_string()
        .unwrap_or_default();
    match status {
        200..=299 => {
            let report: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let rejected = report["rejected"].as_array().map_or(0, |r| {
                for item in r.iter().take(5) {
                    tracing::warn!("the server rejected an event: {item}");
                }
                r.len() as u64
            });
            Sent::Accepted { rejected }
        }
        401 | 403 => Sent::Refused(problem_text(status, &text)),
        413 => Sent::TooLarge,
        415 if content_type == dozor_wire::CONTENT_TYPE => Sent::ProtobufUnsupported,
        408 | 429 | 500..=599 => Sent::Retry {
            after: retry_after,
            why: format!("server busy: {}", problem_text(status, &text)),
        },
        _ => Sent::Bad(problem_text(status, &text)),
    }
}

/// Exponential backoff with ±50 % jitter.
fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let base = initial
        .saturating_mul(1u32 << attempt.min(16))
        .min(max)
        .as_millis() as u64;
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let jitter = u64::from_le_bytes(r) % (base.max(2));
    Duration::from_millis(base / 2 + jitter)
}

fn sleep_unless_stopped(shared: &Shared, d: Duration) {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline && !shared.stopping() {
        std::thread::sleep(Duration::from_millis(50).min(deadline - Instant::now()));
    }
}

/// Sends spooled chunks in batches; acknowledges them in the spool once the server took them.
fn sender(shared: &Shared) {
    let t = &shared.config.transport;
    let request_timeout = Duration::from_secs(t.request_timeout_secs);
    let mut generation = shared.generation.load(Ordering::SeqCst);
    let mut client = match shared.client(request_timeout) {
        Ok(c) => c,
        Err(e) => {
            shared.counters.error(format!("TLS client: {e:#}"));
            return;
        }
    };
    let url = format!("{}/api/v1/ingest", shared.identity.record.server);
    let mut attempt = 0u32;
    let mut records_per_batch = 64usize;
    let mut format = t.format;
    loop {
        // Wait for a full batch or the batch delay.
        let _ = shared.wake.1.recv_timeout(t.batch_max_delay());
        // A renewed certificate: connect with it from now on.
        let now_generation = shared.generation.load(Ordering::SeqCst);
        if now_generation != generation
            && let Ok(renewed) = shared.client(request_timeout)
        {
            client = renewed;
            generation = now_generation;
        }
        // After the spooler's last chunk, one final round sends what the server will take.
        let stopping = shared.spooler_done.load(Ordering::SeqCst);
        loop {
            let records = match shared.spool().peek(records_per_batch) {
                Ok(r) => r,
                Err(e) => {
                    shared.counters.error(format!("spool read failed: {e}"));
                    break;
                }
            };
            if records.is_empty() {
                break;
            }
            let mut body = Vec::new();
            let mut events = 0u64;
            let mut last = RecordId(0);
            for (id, payload) in &records {
                let n = payload.iter().filter(|&&b| b == b'\n').count();
                if events > 0 && events as usize + n > t.batch_max_events {
                    break;
                }
                body.extend_from_slice(payload);
                events += n as u64;
                last = *id;
            }
            match post_batch(&client, &url, &body, format, t.zstd_level) {
                Sent::Accepted { rejected } => {
                    if let Err(e) = shared.spool().ack(last) {
                        shared.counters.error(format!("spool ack failed: {e}"));
                    }
                    let c = &shared.counters;
                    c.events_sent
                        .fetch_add(events - rejected, Ordering::Relaxed);
                    c.events_rejected.fetch_add(rejected, Ordering::Relaxed);
                    c.batches_sent.fetch_add(1, Ordering::Relaxed);
                    c.last_success_at.store(now_ms(), Ordering::Relaxed);
                    if attempt > 0 || c.refused.swap(false, Ordering::Relaxed) {
                        tracing::info!("the server takes events again");
                        c.clear_error();
                    }
                    attempt = 0;
                    records_per_batch = (records_per_batch * 2).min(64);
                }
                Sent::ProtobufUnsupported => {
                    // Nothing is dropped: the same batch goes again, as NDJSON.
                    tracing::warn!(
                        "the server does not read protobuf batches (415); sending NDJSON until the agent restarts"
                    );
                    format = WireFormat::Json;
                }
                Sent::TooLarge if records_per_batch > 1 => {
                    records_per_batch /= 2;
                }
                Sent::TooLarge => {
                    shared.counters.error(format!(
                        "the server refuses a single chunk of {events} events as too large; dropping it (lower transport.batch_max_events)"
                    ));
                    let _ = shared.spool().ack(last);
                }
                Sent::Bad(why) => {
                    shared.counters.error(format!(
                        "the server refused a batch of {events} events for good: {why}"
                    ));
                    shared
                        .counters
                        .events_rejected
                        .fetch_add(events, Ordering::Relaxed);
                    let _ = shared.spool().ack(last);
                }
                Sent::Refused(why) => {
                    shared.counters.refused.store(true, Ordering::Relaxed);
                    shared
                        .counters
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                    shared.counters.error(format!(
                        "the server refuses this agent's certificate ({why}); events stay in the spool"
                    ));
                    if stopping {
                        return;
                    }
                    sleep_unless_stopped(shared, Duration::from_secs(t.max_backoff_secs));
                }
                Sent::Retry { after, why } => {
                    shared
                        .counters
                        .send_failures
                        .fetch_add(1, Ordering::Relaxed);
                    shared.counters.error(why);
                    if stopping {
                        return;
                    }
                    let wait = after.unwrap_or_else(|| {
                        backoff(
                            attempt,
                            Duration::from_millis(t.initial_backoff_ms),
                            Duration::from_secs(t.max_backoff_secs),
                        )
                    });
                    attempt = attempt.saturating_add(1);
                    sleep_unless_stopped(shared, wait);
                }
            }
            if !stopping && shared.spooler_done.load(Ordering::SeqCst) {
                break;
            }
        }
        if stopping {
            return;
        }
    }
}

fn spool_json(stats: &dozor_spool::SpoolStats) -> Value {
    json!({
        "queued_records": stats.records,
        "queued_bytes": stats.bytes,
        "disk_bytes": stats.disk_bytes,
        "dropped_records": stats.dropped_records,
        "dropped_bytes": stats.dropped_bytes,
        "corrupt_skipped": stats.corrupt_skipped,
    })
}

/// Problems worth showing on the server as `degraded`.
fn problems(shared: &Shared, stats: &dozor_spool::SpoolStats) -> Vec<String> {
    let mut out = shared.health.problems();
    if stats.dropped_records > 0 {
        out.push(format!(
            "spool full: {} chunks ({} bytes) of the oldest events were dropped",
            stats.dropped_records, stats.dropped_bytes
        ));
    }
    if stats.bytes > shared.config.spool.max_bytes / 2 {
        out.push(format!(
            "spool more than half full ({} of {} bytes)",
            stats.bytes, shared.config.spool.max_bytes
        ));
    }
    out
}

fn heartbeat(shared: &Shared, facts: &dozor_collect::HostFacts) {
    let t = &shared.config.transport;
    let request_timeout = Duration::from_secs(t.request_timeout_secs.min(30));
    let mut client = match shared.client(request_timeout) {
        Ok(c) => c,
        Err(e) => {
            shared.counters.error(format!("TLS client: {e:#}"));
            return;
        }
    };
    let url = format!("{}/api/v1/agents/heartbeat", shared.identity.record.server);
    let sampler = dozor_collect::ResourceSampler::new();
    // The global CPU load from the kernel's counters, not sysinfo's PDH (which Wine lacks).
    #[cfg(windows)]
    let sampler = sampler.with_cpu_times(|| {
        dozor_agent_windows::cpu::system_times().map(|t| dozor_collect::CpuTimes {
            idle: t.idle,
            total: t.total,
        })
    });
    let mut sampler = sampler;
    let mut interval = Duration::from_secs(t.heartbeat_interval_secs);
    let mut facts = facts.clone();
    let mut beats = 0u64;
    while !shared.stopping() {
        if beats > 0 && beats.is_multiple_of(20) {
            facts = dozor_collect::host_facts();
        }
        beats += 1;
        let stats = shared.spool().stats();
        let c = &shared.counters;
        let body = HeartbeatRequest {
            facts: agent_facts(&facts),
            health: problems(shared, &stats),
            // Kept by the server as the agent's last heartbeat document.
            rest: Map::from_iter([
                ("resources".to_owned(), json!(sampler.sample(5))),
                ("spool".to_owned(), spool_json(&stats)),
                (
                    "transport".to_owned(),
                    json!({
                        "events_collected": c.events_collected.load(Ordering::Relaxed),
                        "events_sent": c.events_sent.load(Ordering::Relaxed),
                        "events_rejected": c.events_rejected.load(Ordering::Relaxed),
                        "batches_sent": c.batches_sent.load(Ordering::Relaxed),
                        "send_failures": c.send_failures.load(Ordering::Relaxed),
                        "last_error": *c.last_error.lock().unwrap_or_else(|p| p.into_inner()),
                    }),
                ),
                ("collectors".to_owned(), json!(shared.health.snapshot())),
                (
                    "scan".to_owned(),
                    json!(shared.scanner.get().map(|s| s.stats.json())),
                ),
                (
                    "isolation".to_owned(),
                    shared.responder.get().map_or(Value::Null, |r| {
                        crate::response::isolation_report(&r.isolator)
                    }),
                ),
            ]),
        };
        match post_json(&client, &url, &body, 1 << 20) {
            Ok((status, text)) => {
                if status == 200 {
                    c.last_heartbeat_at.store(now_ms(), Ordering::Relaxed);
                    match serde_json::from_str::<HeartbeatResponse>(&text) {
                        Ok(answer) => {
                            interval =
                                Duration::from_secs(answer.heartbeat_interval_secs.clamp(1, 3600));
                            if let Some(renewed) =
                                renew_if_due(shared, answer.certificate_not_after)
                            {
                                client = renewed;
                            }
                            if let (Some(s), Some(v)) =
                                (shared.scanner.get(), &answer.yara_rules_version)
                            {
                                s.server_rules_version(v);
                            }
                            take_commands(shared, &answer.commands);
                        }
                        Err(e) => tracing::warn!("heartbeat answer not understood: {e}"),
                    }
                } else if status == 401 || status == 403 {
                    c.refused.store(true, Ordering::Relaxed);
                    c.error(format!(
                        "heartbeat refused: {}",
                        problem_text(status, &text)
                    ));
                } else {
                    tracing::debug!("heartbeat: {}", problem_text(status, &text));
                }
            }
            Err(e) => tracing::debug!("heartbeat: {e}"),
        }
        sleep_unless_stopped(shared, interval);
    }
}

/// A serialized inventory report and what the log says about it.
struct PendingInventory {
    fingerprint: String,
    packages: usize,
    body: Vec<u8>,
}

/// Reads the software inventory at start and every `inventory.interval_secs`, and sends it to
/// the server when its fingerprint differs from the last one acknowledged (the decisions:
/// `inventory::ReportPlanner`). Reading happens on this thread, so a slow package database
/// (rpm is given up to two minutes) holds up nothing else; failed sends are retried with a
/// backoff starting at the heartbeat interval and warned about once per streak.
fn report_inventory(shared: &Shared) {
    use crate::inventory::{
        AfterSend, InventoryReport, ReportPlanner, SendOutcome, Step, log_parse_problems,
        post_report,
    };
    let t = &shared.config.transport;
    let request_timeout = Duration::from_secs(t.request_timeout_secs);
    let mut generation = shared.generation.load(Ordering::SeqCst);
    let mut client = match shared.client(request_timeout) {
        Ok(c) => c,
        Err(e) => {
            shared.counters.error(format!("TLS client: {e:#}"));
            return;
        }
    };
    let server = shared.identity.record.server.clone();
    let mut planner = ReportPlanner::new(
        shared.config.inventory.interval(),
        Duration::from_secs(t.heartbeat_interval_secs),
        Instant::now(),
    );
    // The serialized report waiting to be (re)sent.
    let mut pending: Option<PendingInventory> = None;
    while !shared.stopping() {
        match planner.next_step(Instant::now()) {
            Step::Wait(d) => sleep_unless_stopped(shared, d),
            Step::Collect => match dozor_inventory::collect_local_inventory() {
                Ok((inventory, problems)) => {
                    log_parse_problems(&problems);
                    let fingerprint = inventory.fingerprint();
                    if !planner.collected(&fingerprint, Instant::now()) {
                        tracing::debug!(fingerprint, "software inventory unchanged; not sent");
                        pending = None;
                        continue;
                    }
                    let report = InventoryReport {
                        fingerprint: &fingerprint,
                        inventory: &inventory,
                        problems: problems.len(),
                    };
                    match serde_json::to_vec(&report) {
                        Ok(body) => {
                            pending = Some(PendingInventory {
                                packages: inventory.packages.len(),
                                fingerprint,
                                body,
                            })
                        }
                        Err(e) => {
                            tracing::warn!("software inventory not serializable: {e}");
                            planner.collection_failed(Instant::now());
                            pending = None;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "reading the software inventory failed: {e}; trying again in {} s",
                        shared.config.inventory.interval_secs
                    );
                    planner.collection_failed(Instant::now());
                }
            },
            Step::Send => {
                let Some(PendingInventory {
                    fingerprint,
                    packages,
                    body,
                }) = &pending
                else {
                    // The planner and this loop agree on what is pending; a report that could
                    // not be built waits for the next collection.
                    planner.collection_failed(Instant::now());
                    continue;
                };
                // A renewed certificate: present it from now on.
                let now_generation = shared.generation.load(Ordering::SeqCst);
                if now_generation != generation
                    && let Ok(renewed) = shared.client(request_timeout)
                {
                    client = renewed;
                    generation = now_generation;
                }
                let outcome = post_report(&client, &server, body);
                let jitter = |d: Duration| backoff(0, d, d);
                match planner.sent(&outcome, Instant::now(), jitter) {
                    AfterSend::Delivered { failures_before } => {
                        let answer = match &outcome {
                            SendOutcome::Acknowledged(answer) => answer.clone(),
                            _ => None,
                        };
                        tracing::info!(
                            packages,
                            fingerprint,
                            stored = answer.as_ref().map(|a| a.stored),
                            findings = answer.as_ref().map(|a| a.findings),
                            failures_before,
                            "software inventory reported"
                        );
                        pending = None;
                    }
                    AfterSend::Retry { first, retry_in } => {
                        let why = match &outcome {
                            SendOutcome::Refused(why) | SendOutcome::Failed(why) => why.as_str(),
                            _ => "",
                        };
                        if let SendOutcome::Refused(why) = &outcome {
                            // As the heartbeat does: the certificate is refused (revoked?).
                            shared.counters.refused.store(true, Ordering::Relaxed);
                            if first {
                                shared
                                    .counters
                                    .error(format!("inventory report refused: {why}"));
                            }
                        } else if first {
                            tracing::warn!(
                                retry_in_secs = retry_in.as_secs(),
                                "sending the software inventory failed: {why}; retrying with backoff"
                            );
                        }
                        if !first {
                            tracing::debug!(
                                failures = planner.failures(),
                                retry_in_secs = retry_in.as_secs(),
                                "software inventory still not sent: {why}"
                            );
                        }
                    }
                    AfterSend::Unsupported { first } => {
                        if first {
                            tracing::info!(
                                "the server has no inventory endpoint (404); asking again at the next inventory interval"
                            );
                        }
                        pending = None;
                    }
                    AfterSend::Rejected => {
                        if let SendOutcome::Rejected(why) = &outcome {
                            tracing::warn!(
                                "the server refused the software inventory: {why}; trying again at the next inventory interval"
                            );
                        }
                        pending = None;
                    }
                }
            }
        }
    }
}

/// Hands delivered commands (of a heartbeat answer or the long poll) to the scanner
/// (`scan_path`) or the response dispatcher (the others); each id runs once.
fn take_commands(shared: &Shared, commands: &[CommandDelivery]) {
    let scanner = shared.scanner.get();
    for c in commands {
        let id_text = c.id.to_string();
        let id = id_text.as_str();
        let refuse = |why: String| {
            tracing::warn!(command = id, "{why}");
            let body = CommandResultRequest {
                status: CommandStatus::Failed,
                result: Some(json!({})),
                error: Some(why),
            };
            if let Err(e) = (HttpLink { shared }).post_result(id, &body) {
                tracing::warn!(command = id, "sending the command result: {e:#}");
            }
        };
        match (c.kind.as_str(), scanner) {
            (SCAN_PATH, Some(s)) => {
                let mut accepted = shared
                    .accepted_scans
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if accepted.contains(id) {
                    // Offered again while still running here: the result follows when it ends.
                    continue;
                }
                let args = match ScanPathArgs::deserialize(&c.args) {
                    Ok(args) => args,
                    Err(e) => {
                        drop(accepted);
                        refuse(format!("scan_path arguments not understood: {e}"));
                        continue;
                    }
                };
                if s.command(id.to_owned(), args.path.into(), args.recursive) {
                    accepted.insert(id.to_owned());
                } else {
                    tracing::warn!(command = id, "scanner busy; the server will offer it again");
                }
            }
            (SCAN_PATH, None) => {
                refuse("scanning is disabled on this agent (scan.enabled = false)".to_owned())
            }
            (_, _) => match shared.responder.get() {
                Some(r) => r.dispatcher.offer(c),
                None => refuse("response commands are not available yet".to_owned()),
            },
        }
    }
}

/// The scanner's calls to the server, over the agent's mutual-TLS client.
struct HttpLink<S: std::ops::Deref<Target = Shared>> {
    shared: S,
}

impl<S: std::ops::Deref<Target = Shared>> HttpLink<S> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.identity.record.server)
    }

    fn client(&self) -> Result<ureq::Agent> {
        let t = &self.shared.config.transport;
        self.shared
            .client(Duration::from_secs(t.request_timeout_secs))
    }

    fn post_result(&self, id: &str, body: &CommandResultRequest) -> Result<()> {
        let url = self.url(&format!("/api/v1/agents/commands/{id}/result"));
        let (status, text) = post_json(&self.client()?, &url, body, 1 << 20)?;
        if status >= 300 {
            anyhow::bail!("{}", problem_text(status, &text));
        }
        Ok(())
    }
}

impl<S: std::ops::Deref<Target = Shared> + Send + Sync + 'static> crate::response::ResultSink
    for HttpLink<S>
{
    fn send_result(&self, id: &str, body: &CommandResultRequest) -> Result<()> {
        self.post_result(id, body)
    }
}

impl<S: std::ops::Deref<Target = Shared>> HttpLink<S> {
    /// `POST /api/v1/samples`; the server's answer (JSON, or its text).
    fn post_sample(
        &self,
        path: &std::path::Path,
        read_from: &std::path::Path,
        sha256: &str,
    ) -> Result<Value> {
        let file = std::fs::File::open(read_from)
            .with_context(|| format!("opening {}", read_from.display()))?;
        let mut response = self
            .client()?
            .post(&self.url("/api/v1/samples"))
            .query("path", path.to_string_lossy())
            .query("sha256", sha256)
            .header("Content-Type", "application/octet-stream")
            .send(file)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        if status >= 300 {
            anyhow::bail!("{}", problem_text(status, &text));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl<S: std::ops::Deref<Target = Shared> + Send + Sync> crate::scanner::ServerLink for HttpLink<S> {
    fn yara_rules(&self) -> Result<Value> {
        let mut response = self
            .client()?
            .get(&self.url("/api/v1/agents/yara-rules"))
            .call()?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()?;
        if status != 200 {
            anyhow::bail!("{}", problem_text(status, &text));
        }
        Ok(serde_json::from_str(&text)?)
    }

    fn has_sample(&self, sha256: &str) -> Result<bool> {
        let response = self
            .client()?
            .head(&self.url(&format!("/api/v1/samples/{sha256}")))
            .call()?;
        match response.status().as_u16() {
            200 | 204 => Ok(true),
            404 => Ok(false),
            other => anyhow::bail!("HEAD /api/v1/samples: HTTP {other}"),
        }
    }

    fn upload_sample(
        &self,
        path: &std::path::Path,
        read_from: &std::path::Path,
        sha256: &str,
    ) -> Result<()> {
        self.post_sample(path, read_from, sha256).map(drop)
    }

    fn upload_sample_answer(
        &self,
        path: &std::path::Path,
        read_from: &std::path::Path,
        sha256: &str,
    ) -> Result<Value> {
        self.post_sample(path, read_from, sha256)
    }

    fn command_result(&self, id: &str, body: &CommandResultRequest) -> Result<()> {
        self.post_result(id, body)
    }
}

/// Is a certificate valid from `issued` to `not_after` due for renewal at `now` (a third of
/// its validity, at most 30 days, left)?
fn renewal_due(issued: i64, not_after: i64, now: i64) -> bool {
    let validity = (not_after - issued).max(0);
    let margin = (validity / 3).min(30 * 86_400_000);
    not_after > 0 && now >= not_after - margin
}

/// Renews the certificate (same agent id) when the expiry a heartbeat answer gives
/// (`not_after`, ms) says it is due; returns a client with the new one. A failure is logged
/// and tried again at the next heartbeat.
fn renew_if_due(shared: &Shared, not_after: i64) -> Option<ureq::Agent> {
    let issued = shared
        .current
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record
        .enrolled_at;
    if !renewal_due(issued, not_after, now_ms()) {
        return None;
    }
    let options = crate::identity::EnrollOptions {
        server: shared.identity.record.server.clone(),
        token: None,
        trust: crate::identity::CaTrust::FirstUse,
        replace_duplicates: false,
        timeout: Duration::from_secs(shared.config.transport.connect_timeout_secs.max(10)),
    };
    match crate::identity::enroll(&shared.config.identity_dir(), &options) {
        Ok((renewed, _)) => {
            tracing::info!(
                not_after = renewed.record.certificate_not_after,
                "client certificate renewed"
            );
            *shared.current.lock().unwrap_or_else(|p| p.into_inner()) = renewed;
            shared.generation.fetch_add(1, Ordering::SeqCst);
            shared
                .client(Duration::from_secs(
                    shared.config.transport.request_timeout_secs.min(30),
                ))
                .ok()
        }
        Err(e) => {
            shared
                .counters
                .error(format!("renewing the client certificate failed: {e:#}"));
            None
        }
    }
}

fn write_status(shared: &Shared, stopped: bool) {
    let stats = shared.spool().stats();
    let c = &shared.counters;
    let status = StatusFile {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        agent_id: shared.identity.record.agent_id.clone(),
        server: shared.identity.record.server.clone(),
        started_at: shared.started_at,
        updated_at: now_ms(),
        stopped,
        events_collected: c.events_collected.load(Ordering::Relaxed),
        events_spooled: c.events_spooled.load(Ordering::Relaxed),
        events_sent: c.events_sent.load(Ordering::Relaxed),
        events_rejected: c.events_rejected.load(Ordering::Relaxed),
        batches_sent: c.batches_sent.load(Ordering::Relaxed),
        send_failures: c.send_failures.load(Ordering::Relaxed),
        spool_records: stats.records,
        spool_bytes: stats.bytes,
        spool_dropped_records: stats.dropped_records,
        spool_dropped_bytes: stats.dropped_bytes,
        last_success_at: nonzero(c.last_success_at.load(Ordering::Relaxed)),
        last_heartbeat_at: nonzero(c.last_heartbeat_at.load(Ordering::Relaxed)),
        last_error: c
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        certificate_refused: c.refused.load(Ordering::Relaxed),
        collectors: serde_json::to_value(shared.health.snapshot()).unwrap_or(Value::Null),
        scan: shared
            .scanner
            .get()
            .map(|s| s.stats.json())
            .unwrap_or(Value::Null),
    };
    let path = shared.config.status_file();
    let tmp = path.with_extension("json.tmp");
    if let Ok(text) = serde_json::to_vec_pretty(&status)
        && std::fs::write(&tmp, text).is_ok()
    {
        let _ = std::fs::rename(&tmp, &path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A protobuf body carries the spooled documents; a line that isn't a JSON object sends
    /// the batch as NDJSON, unchanged.
    #[test]
    fn batch_bodies_in_each_format() {
        let ndjson = b"{\"a\":1,\"process\":{\"pid\":4}}\n\n{\"b\":[\"x\"]}\n";
        let (body, content_type) = batch_body(ndjson, WireFormat::Json);
        assert_eq!(
            (&*body, content_type),
            (&ndjson[..], "application/x-ndjson")
        );
        let (body, content_type) = batch_body(ndjson, WireFormat::Protobuf);
        assert_eq!(content_type, dozor_wire::CONTENT_TYPE);
        let documents: Vec<Value> = dozor_wire::decode_batch(&body)
            .unwrap()
            .into_iter()
            .map(|e| dozor_wire::event_from_proto(e).unwrap())
            .collect();
        assert_eq!(
            documents,
            vec![json!({"a": 1, "process": {"pid": 4}}), json!({"b": ["x"]})]
        );
        let damaged = b"{\"a\":1}\nnot json\n";
        let (body, content_type) = batch_body(damaged, WireFormat::Protobuf);
        assert_eq!(
            (&*body, content_type),
            (&damaged[..], "application/x-ndjson")
        );
    }

    /// A server that answers each request by its Content-Type: 415 for protobuf, 202 for NDJSON.
    fn server_without_protobuf() -> (String, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v1/ingest", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream);
                let (mut content_type, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end().to_ascii_lowercase();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("content-type:") {
                        content_type = v.trim().to_owned();
                    }
                    if let Some(v) = line.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let answer = if content_type == dozor_wire::CONTENT_TYPE {
                    "HTTP/1.1 415 Unsupported Media Type\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
                } else {
                    "HTTP/1.1 202 Accepted\r\ncontent-length: 15\r\nconnection: close\r\n\r\n{\"rejected\":[]}"
                };
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
                seen.push(content_type);
            }
            seen
        });
        (url, handle)
    }

    /// An older server refuses protobuf with 415: that is not a bad batch to drop, it is a
    /// reason to send NDJSON.
    #[test]
    fn a_server_without_protobuf_is_not_a_reason_to_drop_the_batch() {
        let (url, server) = server_without_protobuf();
        let client: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let ndjson = b"{\"a\":1}\n";
        assert!(matches!(
            post_batch(&client, &url, ndjson, WireFormat::Protobuf, 3),
            Sent::ProtobufUnsupported
        ));
        assert!(matches!(
            post_batch(&client, &url, ndjson, WireFormat::Json, 3),
            Sent::Accepted { rejected: 0 }
        ));
        assert_eq!(
            server.join().unwrap(),
            [dozor_wire::CONTENT_TYPE, "application/x-ndjson"]
        );
    }

    #[test]
    fn stamping_adds_id_agent_and_host_without_overwriting() {
        let host =
            json!({"name": "h1", "hostname": "h1", "os": {"type": "linux", "family": "linux"}});
        let e = stamp(
            json!({"event": {"kind": "event"}, "host": {"os": {"type": "windows"}}}),
            "a1",
            &host,
        );
        let id = e["event"]["id"].as_str().unwrap();
        assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
        assert_eq!(e["agent"]["id"], "a1");
        assert_eq!(e["host"]["name"], "h1");
        assert_eq!(
            e["host"]["os"]["type"], "windows",
            "the collector's value wins"
        );
        assert_eq!(e["host"]["os"]["family"], "linux");
        let kept = stamp(json!({"event": {"id": "x"}}), "a1", &host);
        assert_eq!(kept["event"]["id"], "x");
    }

    #[test]
    fn renewal_is_due_in_the_last_third_at_most_30_days() {
        let day = 86_400_000;
        // one year: due in the last 30 days
        assert!(!renewal_due(0, 365 * day, 300 * day));
        assert!(renewal_due(0, 365 * day, 336 * day));
        // three days: due in the last day
        assert!(!renewal_due(0, 3 * day, 2 * day - 1));
        assert!(renewal_due(0, 3 * day, 2 * day));
        assert!(!renewal_due(0, 0, 5), "unknown expiry: never");
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let i = Duration::from_millis(100);
        let m = Duration::from_secs(10);
        for attempt in 0..20 {
            let b = backoff(attempt, i, m);
            let base = (100u64 << attempt.min(16)).min(10_000);
            assert!(
                b.as_millis() as u64 >= base / 2 && (b.as_millis() as u64) < base / 2 + base.max(2)
            );
        }
    }
}
