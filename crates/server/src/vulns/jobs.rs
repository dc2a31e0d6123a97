//! Scan jobs: what Dozor asks gvmd to scan over GMP, and when (issue 15, deliverable 2).
//!
//! A job is a [`JobSpec`] stored with the store's `vuln_scan_job` records (settings, `enabled`,
//! and a [`JobState`] the runner keeps). [`run_jobs`] looks at the jobs every 30 s (and at once
//! when one is started by hand, [`CHANGED`]); a job runs when its `interval_secs` have passed
//! since its last start, or when an analyst starts it. One run:
//!
//! 1. `starting`: the targets are resolved now (CIDRs and hosts as given, enrolled agents by id
//!    or host-name pattern to their current non-loopback addresses), then over one GMP
//!    connection: authenticate, check the GMP version, create the target and the task — once:
//!    their ids stay in the state and are used again while the hosts, port list, scan config
//!    and scanner are the same (gvmd can't change a used target's hosts, so a change makes new
//!    ones) — and start the task.
//! 2. `running`: `get_tasks` is polled (1 s, then doubling up to 30 s) into `progress`; a
//!    gvmd that can't be reached meanwhile is noted in `error` and polled again.
//! 3. `fetching`: on `Done` the report is fetched with the widened filter
//!    ([`dozor_gmp::ReportFilter::default`]) and recorded by
//!    [`VulnService::record_report`] (origin `gmp`, by `scan-job:<name>`): results stored whole,
//!    fixed ones marked, alerts raised. `done` keeps the scan id and its counts.
//!
//! `Stopped` in gvmd ends the run as `stopped`, `Interrupted` as `failed`. Any failure
//! (authentication, an unsupported version, gvmd busy or unreachable, an unknown scan config…)
//! ends it as `failed` with `error` and `error_at`; the job runs again at its next due time.
//! The state lives in the store, so a server restarted mid-scan picks the task up where it was
//! and keeps polling.
//!
//! Agents have no tags: they are chosen by id (`targets.agents`) or by host-name glob
//! (`targets.agent_hostnames`, `*` and `?`, case-insensitive).
//!
//! One process runs the jobs of a store: state changes are serialised within the process
//! ([`STATE_LOCK`]), not across processes.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use dozor_gmp::{
    Endpoint, GmpClient, GmpConfig, GmpError, ReportFilter, TargetSpec, TaskSpec, TlsTrust,
};
use dozor_model::{VulnScanCounts, VulnScanJob};
use dozor_store::{Store, StoreError, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{Mutex, Notify, watch};

use super::VulnService;

/// Woken when a job is saved, started or stopped by hand: the runner looks at once.
pub static CHANGED: Notify = Notify::const_new();

/// Serialises read-modify-write of job states within this process (the runner's steps and
/// the API's start/stop), so a stop by hand is never overwritten by a poll that was under way.
static STATE_LOCK: Mutex<()> = Mutex::const_new(());

/// How often the runner looks for due jobs.
const TICK: Duration = Duration::from_secs(30);
/// The longest pause between two polls of a running task.
const MAX_POLL: Duration = Duration::from_secs(30);
/// Fetch attempts before a report that gvmd can't hand over fails the run.
const MAX_FETCH_ATTEMPTS: u32 = 20;
/// Shortest schedule: gvmd scans take hours, and each run makes a report.
pub const MIN_INTERVAL_SECS: u64 = 3600;
/// Longest schedule (a year).
pub const MAX_INTERVAL_SECS: u64 = 366 * 86_400;
/// Most entries in `targets` and `exclude` together.
const MAX_ENTRIES: usize = 4096;
/// Longest text value (names, paths, patterns).
const MAX_TEXT: usize = 1024;

pub const DEFAULT_PORT_LIST: &str = "All IANA assigned TCP";
pub const DEFAULT_SCAN_CONFIG: &str = "Full and fast";
pub const DEFAULT_SCANNER: &str = "OpenVAS Default";
pub const DEFAULT_GMP_PORT: u16 = 9390;
/// How the API shows a stored password (and, sent back, keeps it).
pub const REDACTED: &str = "***";

/// What to scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobTargets {
    /// Networks, e.g. `10.0.0.0/24`, `2001:db8::/64`.
    #[serde(default)]
    pub cidrs: Vec<String>,
    /// Addresses or DNS names.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Enrolled agents by id: their non-loopback addresses at run time.
    #[serde(default)]
    pub agents: Vec<String>,
    /// Enrolled agents whose host name matches one of these globs (`*`, `?`;
    /// case-insensitive): their non-loopback addresses at run time.
    #[serde(default)]
    pub agent_hostnames: Vec<String>,
}

/// How to reach gvmd: its Unix socket, or its TLS listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GmpSpec {
    /// gvmd's Unix socket, e.g. `/run/gvmd/gvmd.sock` (instead of `host`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// gvmd's TLS listener (instead of `socket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Its port (9390).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The name its certificate carries, when not `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM file of the CA that signed gvmd's certificate (`gvm-manage-certs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem_file: Option<String>,
    /// SHA-256 (hex) of gvmd's certificate's public key (SPKI); alone it replaces the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_sha256: Option<String>,
}

/// A scan job's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// At least one entry in one of the lists.
    pub targets: JobTargets,
    /// Addresses, CIDRs or names left out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// gvmd port list by name.
    #[serde(default = "default_port_list")]
    #[schema(default = "All IANA assigned TCP")]
    pub port_list: String,
    /// gvmd scan config by name.
    #[serde(default = "default_scan_config")]
    #[schema(default = "Full and fast")]
    pub scan_config: String,
    /// gvmd scanner by name.
    #[serde(default = "default_scanner")]
    #[schema(default = "OpenVAS Default")]
    pub scanner: String,
    /// Seconds between runs (from one start to the next); 0: by hand only; else at least 3600.
    #[serde(default)]
    pub interval_secs: u64,
    /// How to reach gvmd.
    pub gmp: GmpSpec,
    /// gvmd user.
    pub username: String,
    /// Its password: stored, shown as `***`; `***` sent back keeps the stored one.
    pub password: String,
}

fn default_port_list() -> String {
    DEFAULT_PORT_LIST.into()
}
fn default_scan_config() -> String {
    DEFAULT_SCAN_CONFIG.into()
}
fn default_scanner() -> String {
    DEFAULT_SCANNER.into()
}

/// A spec that can't be used: `field` names it (`targets.cidrs[2]`, `gmp.ca_pem_file`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    pub field: String,
    pub reason: String,
}

fn spec_error(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Refuses keys an object should not have.
fn only_keys(obj: &Map<String, Value>, prefix: &str, known: &[&str]) -> Result<(), SpecError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(spec_error(
            format!("{prefix}{unknown}"),
            format!("unknown field (known: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// One member deserialised, its error naming it.
fn member<T: serde::de::DeserializeOwned>(
    obj: &Map<String, Value>,
    prefix: &str,
    key: &str,
) -> Result<Option<T>, SpecError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| spec_error(format!("{prefix}{key}"), e.to_string())),
    }
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, SpecError> {
    v.as_object()
        .ok_or_else(|| spec_error(field, "must be a JSON object"))
}

/// Reads and checks a spec as the API receives it; every error names its field.
pub fn parse_spec(spec: &Value) -> Result<JobSpec, SpecError> {
    let obj = object(spec, "spec")?;
    only_keys(
        obj,
        "",
        &[
            "targets",
            "exclude",
            "port_list",
            "scan_config",
            "scanner",
            "interval_secs",
            "gmp",
            "username",
            "password",
        ],
    )?;
    let targets_value = obj.get("targets").ok_or_else(|| {
        spec_error(
            "targets",
            "missing: give cidrs, hosts, agents or agent_hostnames",
        )
    })?;
    let targets_obj = object(targets_value, "targets")?;
    only_keys(
        targets_obj,
        "targets.",
        &["cidrs", "hosts", "agents", "agent_hostnames"],
    )?;
    let targets = JobTargets {
        cidrs: member(targets_obj, "targets.", "cidrs")?.unwrap_or_default(),
        hosts: member(targets_obj, "targets.", "hosts")?.unwrap_or_default(),
        agents: member(targets_obj, "targets.", "agents")?.unwrap_or_default(),
        agent_hostnames: member(targets_obj, "targets.", "agent_hostnames")?.unwrap_or_default(),
    };
    let gmp_value = obj.get("gmp").ok_or_else(|| {
        spec_error(
            "gmp",
            "missing: {\"socket\": path} or {\"host\", \"port\", …}",
        )
    })?;
    let gmp_obj = object(gmp_value, "gmp")?;
    only_keys(
        gmp_obj,
        "gmp.",
        &[
            "socket",
            "host",
            "port",
            "server_name",
            "ca_pem_file",
            "pin_sha256",
        ],
    )?;
    let gmp = GmpSpec {
        socket: member(gmp_obj, "gmp.", "socket")?,
        host: member(gmp_obj, "gmp.", "host")?,
        port: member(gmp_obj, "gmp.", "port")?,
        server_name: member(gmp_obj, "gmp.", "server_name")?,
        ca_pem_file: member(gmp_obj, "gmp.", "ca_pem_file")?,
        pin_sha256: member(gmp_obj, "gmp.", "pin_sha256")?,
    };
    let spec = JobSpec {
        targets,
        exclude: member(obj, "", "exclude")?.unwrap_or_default(),
        port_list: member(obj, "", "port_list")?.unwrap_or_else(default_port_list),
        scan_config: member(obj, "", "scan_config")?.unwrap_or_else(default_scan_config),
        scanner: member(obj, "", "scanner")?.unwrap_or_else(default_scanner),
        interval_secs: member(obj, "", "interval_secs")?.unwrap_or(0),
        gmp,
        username: member(obj, "", "username")?
            .ok_or_else(|| spec_error("username", "missing: the gvmd user"))?,
        password: member(obj, "", "password")?
            .ok_or_else(|| spec_error("password", "missing: the gvmd user's password"))?,
    };
    validate(&spec)?;
    Ok(spec)
}

fn check_text(field: &str, value: &str) -> Result<(), SpecError> {
    if value.trim().is_empty() {
        return Err(spec_error(field, "must not be empty"));
    }
    if value.len() > MAX_TEXT {
        return Err(spec_error(field, format!("at most {MAX_TEXT} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(spec_error(field, "must not contain control characters"));
    }
    Ok(())
}

/// An address or CIDR (`a.b.c.d/n`, `x::/n`).
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = text.trim().split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

/// A DNS name gvmd can resolve: labels of letters, digits, `-` and `_`.
fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.trim_end_matches('.').split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn check_host(field: &str, text: &str) -> Result<(), SpecError> {
    let t = text.trim();
    if t.parse::<IpAddr>().is_ok() || is_dns_name(t) {
        Ok(())
    } else {
        Err(spec_error(
            field,
            format!("{text:?} is neither an IP address nor a host name"),
        ))
    }
}

/// The checks beyond the shape.
pub fn validate(spec: &JobSpec) -> Result<(), SpecError> {
    let t = &spec.targets;
    if t.cidrs.is_empty()
        && t.hosts.is_empty()
        && t.agents.is_empty()
        && t.agent_hostnames.is_empty()
    {
        return Err(spec_error(
            "targets",
            "nothing to scan: give at least one of cidrs, hosts, agents, agent_hostnames",
        ));
    }
    let entries = t.cidrs.len()
        + t.hosts.len()
        + t.agents.len()
        + t.agent_hostnames.len()
        + spec.exclude.len();
    if entries > MAX_ENTRIES {
        return Err(spec_error(
            "targets",
            format!("{entries} entries: at most {MAX_ENTRIES} in targets and exclude together"),
        ));
    }
    for (i, c) in t.cidrs.iter().enumerate() {
        if parse_cidr(c).is_none() {
            return Err(spec_error(
                format!("targets.cidrs[{i}]"),
                format!("{c:?} is not a CIDR (address/prefix, e.g. 10.0.0.0/24)"),
            ));
        }
    }
    for (i, h) in t.hosts.iter().enumerate() {
        check_host(&format!("targets.hosts[{i}]"), h)?;
    }
    for (i, a) in t.agents.iter().enumerate() {
        check_text(&format!("targets.agents[{i}]"), a)?;
    }
    for (i, p) in t.agent_hostnames.iter().enumerate() {
        check_text(&format!("targets.agent_hostnames[{i}]"), p)?;
    }
    for (i, x) in spec.exclude.iter().enumerate() {
        if parse_cidr(x).is_none() {
            check_host(&format!("exclude[{i}]"), x).map_err(|e| SpecError {
                reason: format!("{x:?} is neither an address, a CIDR nor a host name"),
                ..e
            })?;
        }
    }
    check_text("port_list", &spec.port_list)?;
    check_text("scan_config", &spec.scan_config)?;
    check_text("scanner", &spec.scanner)?;
    if spec.interval_secs != 0
        && !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&spec.interval_secs)
    {
        return Err(spec_error(
            "interval_secs",
            format!(
                "{}: 0 (by hand only) or {MIN_INTERVAL_SECS} to {MAX_INTERVAL_SECS}",
                spec.interval_secs
            ),
        ));
    }
    check_text("username", &spec.username)?;
    if spec.password.is_empty() {
        return Err(spec_error("password", "must not be empty"));
    }
    let g = &spec.gmp;
    match (&g.socket, &g.host) {
        (Some(_), Some(_)) => {
            return Err(spec_error("gmp", "either socket or host, not both"));
        }
        (None, None) => {
            return Err(spec_error(
                "gmp",
                "give socket (gvmd's Unix socket) or host (its TLS listener)",
            ));
        }
        (Some(socket), None) => {
            check_text("gmp.socket", socket)?;
            if !Path::new(socket).is_absolute() {
                return Err(spec_error("gmp.socket", "must be an absolute path"));
            }
            for (name, set) in [
                ("port", g.port.is_some()),
                ("server_name", g.server_name.is_some()),
                ("ca_pem_file", g.ca_pem_file.is_some()),
                ("pin_sha256", g.pin_sha256.is_some()),
            ] {
                if set {
                    return Err(spec_error(
                        format!("gmp.{name}"),
                        "only for a TLS endpoint (host), not with socket",
                    ));
                }
            }
        }
        (None, Some(host)) => {
            check_host("gmp.host", host)?;
            if g.port == Some(0) {
                return Err(spec_error("gmp.port", "1 to 65535"));
            }
            if let Some(name) = &g.server_name {
                check_host("gmp.server_name", name)?;
            }
            if g.ca_pem_file.is_none() && g.pin_sha256.is_none() {
                return Err(spec_error(
                    "gmp.ca_pem_file",
                    "a TLS endpoint needs ca_pem_file (gvmd's CA) or pin_sha256 (its key's \
                     SHA-256): gvmd's certificate is never from a public CA",
                ));
            }
            if let Some(file) = &g.ca_pem_file {
                check_text("gmp.ca_pem_file", file)?;
                if !Path::new(file).is_absolute() {
                    return Err(spec_error("gmp.ca_pem_file", "must be an absolute path"));
                }
            }
            if let Some(pin) = &g.pin_sha256
                && parse_pin(pin).is_none()
            {
                return Err(spec_error(
                    "gmp.pin_sha256",
                    "64 hex digits (colons allowed): SHA-256 of the certificate's public key",
                ));
            }
        }
    }
    Ok(())
}

fn parse_pin(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// The stored settings with the password shown as `***`.
pub fn redact_spec(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(v) = spec.get_mut("password")
        && v.is_string()
    {
        *v = Value::String(REDACTED.into());
    }
    spec
}

/// `*` any run of characters, `?` one; case-insensitive.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matching with one backtrack point: linear-ish, no recursion on input.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A job's state as the runner keeps it (the store's `state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct JobState {
    /// `idle`, `starting`, `running`, `fetching`, `done`, `failed` or `stopped`.
    pub status: String,
    /// Percent, while gvmd runs the task.
    pub progress: Option<i32>,
    /// gvmd's own word for the task (`Queued`, `Running`, `Done`…).
    pub gmp_status: Option<String>,
    /// gvmd's task id (kept between runs).
    pub task_id: Option<String>,
    /// gvmd's target id (kept between runs).
    pub target_id: Option<String>,
    /// The report of the current or last run.
    pub report_id: Option<String>,
    /// Addresses and networks the current or last run was given.
    pub hosts: Vec<String>,
    /// When the current or last run started, ms.
    pub last_started: Option<i64>,
    /// When the last run ended (done, failed, stopped), ms.
    pub last_finished: Option<i64>,
    /// The stored scan of the last finished run (`GET /api/v1/vulns/scans`).
    pub last_scan_id: Option<i64>,
    /// What that scan changed.
    pub last_counts: Option<VulnScanCounts>,
    /// Why the last run failed, or what is going wrong now.
    pub error: Option<String>,
    /// When, ms.
    pub error_at: Option<i64>,
    /// Who started the current or last run (`schedule` or the operator).
    pub started_by: Option<String>,
    /// Fingerprint of the hosts, exclusions and port list `target_id` was made for.
    pub target_key: Option<String>,
    /// Fingerprint of the target, scan config and scanner `task_id` was made for.
    pub task_key: Option<String>,
    /// Report fetch attempts that failed in this run.
    pub fetch_attempts: u32,
}

pub const IDLE: &str = "idle";
pub const STARTING: &str = "starting";
pub const RUNNING: &str = "running";
pub const FETCHING: &str = "fetching";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const STOPPED: &str = "stopped";

impl JobState {
    /// The state stored in a job (`idle` when it has none yet).
    pub fn of(job: &VulnScanJob) -> JobState {
        let mut state: JobState = serde_json::from_value(job.state.clone()).unwrap_or_default();
        if state.status.is_empty() {
            state.status = IDLE.into();
        }
        state
    }

    /// Starting, running or fetching: a run is under way.
    pub fn in_flight(&self) -> bool {
        matches!(self.status.as_str(), STARTING | RUNNING | FETCHING)
    }

    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn fail(&mut self, error: String, now: i64) {
        self.status = FAILED.into();
        self.error = Some(error);
        self.error_at = Some(now);
        self.last_finished = Some(now);
        self.progress = None;
    }

    fn note_error(&mut self, error: String, now: i64) {
        self.error = Some(error);
        self.error_at = Some(now);
    }
}

/// When a job runs next on its schedule (ms); none when it runs by hand only or is off.
pub fn next_run(job: &VulnScanJob, state: &JobState) -> Option<i64> {
    let spec: JobSpec = serde_json::from_value(job.spec.clone()).ok()?;
    if !job.enabled || spec.interval_secs == 0 {
        return None;
    }
    let interval = i64::try_from(spec.interval_secs).ok()?.saturating_mul(1000);
    Some(match state.last_started {
        Some(started) => started.saturating_add(interval),
        // Never run: at the runner's next look.
        None => job.updated_at,
    })
}

/// What went wrong with a start or stop asked for by hand.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no scan job {0}")]
    NoSuchJob(String),
    #[error("scan job {0} is disabled: enable it first")]
    Disabled(String),
    #[error("scan job {0} is {1} already")]
    Running(String, String),
    #[error("scan job {0} has no scan under way")]
    NotRunning(String),
    #[error("gvmd: {0}")]
    Gmp(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads a job's state, lets `change` alter it (returning false leaves it), stores it.
/// Returns the state after, or `None` when the job no longer exists.
async fn update_state(
    store: &dyn Store,
    name: &str,
    change: impl FnOnce(&mut JobState) -> bool,
) -> Result<Option<JobState>, StoreError> {
    let _one = STATE_LOCK.lock().await;
    let Some(job) = store.get_vuln_scan_job(name).await? else {
        return Ok(None);
    };
    let mut state = JobState::of(&job);
    if change(&mut state) {
        store
            .set_vuln_scan_job_state(name, &state.to_value())
            .await?;
    }
    Ok(Some(state))
}

/// Starts a job by hand: it becomes `starting`, and the runner takes it up at once.
pub async fn request_start(store: &dyn Store, name: &str, by: &str) -> Result<JobState, JobError> {
    let job = store
        .get_vuln_scan_job(name)
        .await?
        .ok_or_else(|| JobError::NoSuchJob(name.into()))?;
    if !job.enabled {
        return Err(JobError::Disabled(name.into()));
    }
    let mut refused = None;
    let state = update_state(store, name, |s| {
        if s.in_flight() {
            refused = Some(s.status.clone());
            return false;
        }
        s.status = STARTING.into();
        s.progress = None;
        s.gmp_status = None;
        s.error = None;
        s.error_at = None;
        s.started_by = Some(by.into());
        true
    })
    .await?
    .ok_or_else(|| JobError::NoSuchJob(name.into()))?;
    if let Some(status) = refused {
        return Err(JobError::Running(name.into(), status));
    }
    CHANGED.notify_one();
    Ok(state)
}

/// Stops a job's scan: `stop_task` in gvmd when the task runs there, then `stopped`.
pub async fn stop(store: &dyn Store, name: &str) -> Result<JobState, JobError> {
    let job = store
        .get_vuln_scan_job(name)
        .await?
        .ok_or_else(|| JobError::NoSuchJob(name.into()))?;
    let state = JobState::of(&job);
    match state.status.as_str() {
        RUNNING => {
            let spec: JobSpec = serde_json::from_value(job.spec.clone())
                .map_err(|e| JobError::Gmp(format!("the stored settings don't parse: {e}")))?;
            let Some(task_id) = state.task_id.clone() else {
                return Err(JobError::NotRunning(name.into()));
            };
            let mut client = connect(&spec)
                .await
                .map_err(|e| JobError::Gmp(e.to_string()))?;
            client
                .stop_task(&task_id)
                .await
                .map_err(|e| JobError::Gmp(e.to_string()))?;
        }
        // Not in gvmd yet: the runner stops what it starts when it sees this.
        STARTING => {}
        _ => return Err(JobError::NotRunning(name.into())),
    }
    let now = now_ms();
    let state = update_state(store, name, |s| {
        if !s.in_flight() {
            return false;
        }
        s.status = STOPPED.into();
        s.last_finished = Some(now);
        true
    })
    .await?
    .ok_or_else(|| JobError::NoSuchJob(name.into()))?;
    Ok(state)
}

/// Connects to gvmd as the spec says, authenticates and checks the GMP version.
async fn connect(spec: &JobSpec) -> Result<GmpClient, GmpError> {
    let endpoint = match (&spec.gmp.socket, &spec.gmp.host) {
        (Some(socket), _) => Endpoint::Unix(socket.into()),
        (None, Some(host)) => {
            let ca_pem = match &spec.gmp.ca_pem_file {
                Some(file) => Some(tokio::fs::read(file).await.map_err(|e| {
                    GmpError::Tls(format!("gmp.ca_pem_file {file} can't be read: {e}"))
                })?),
                None => None,
            };
            Endpoint::Tls {
                host: host.clone(),
                port: spec.gmp.port.unwrap_or(DEFAULT_GMP_PORT),
                server_name: spec.gmp.server_name.clone(),
                trust: TlsTrust {
                    ca_pem,
                    pins_spki_sha256: spec
                        .gmp
                        .pin_sha256
                        .as_deref()
                        .and_then(parse_pin)
                        .into_iter()
                        .collect(),
                },
            }
        }
        (None, None) => {
            return Err(GmpError::InvalidInput {
                field: "gmp",
                reason: "neither socket nor host".into(),
            });
        }
    };
    let mut client = GmpClient::connect(&GmpConfig::new(endpoint)).await?;
    client.authenticate(&spec.username, &spec.password).await?;
    client.get_version().await?;
    Ok(client)
}

/// Failures worth trying again soon while a scan is under way (gvmd restarting, busy).
fn is_transient(e: &GmpError) -> bool {
    matches!(
        e,
        GmpError::Connect { .. }
            | GmpError::ConnectTimeout { .. }
            | GmpError::Timeout { .. }
            | GmpError::Busy { .. }
            | GmpError::Closed { .. }
            | GmpError::Broken
            | GmpError::Io { .. }
            | GmpError::Server { .. }
    )
}

/// The addresses a run scans: CIDRs and hosts as given, agents' current addresses.
async fn resolve_hosts(store: &dyn Store, targets: &JobTargets) -> Result<Vec<String>, StoreError> {
    let mut hosts: BTreeSet<String> = targets
        .cidrs
        .iter()
        .chain(&targets.hosts)
        .map(|h| h.trim().to_owned())
        .collect();
    if !targets.agents.is_empty() || !targets.agent_hostnames.is_empty() {
        for agent in store.list_agents().await? {
            if agent.revoked_at.is_some() {
                continue;
            }
            let chosen = targets.agents.iter().any(|id| id.trim() == agent.id)
                || targets
                    .agent_hostnames
                    .iter()
                    .any(|p| glob_matches(p.trim(), &agent.facts.hostname));
            if !chosen {
                continue;
            }
            for ip in &agent.facts.ips {
                // An agent may report an address with its prefix (`10.0.0.5/24`).
                let ip = ip.split('/').next().unwrap_or_default();
                if let Ok(ip) = ip.trim().parse::<IpAddr>()
                    && !ip.is_loopback()
                    && !ip.is_unspecified()
                    && !super::is_link_local(&ip)
                {
                    hosts.insert(ip.to_string());
                }
            }
        }
    }
    Ok(hosts.into_iter().collect())
}

fn fingerprint(parts: &[&str]) -> String {
    crate::digest::hex(&crate::digest::sha256(parts.join("\n\u{1f}").as_bytes()))
}

/// Runs the scan jobs until the server closes (spawned beside [`super::run_background`]).
pub async fn run_jobs(service: Arc<VulnService>, mut closing: watch::Receiver<bool>) {
    let active: Arc<StdMutex<HashSet<String>>> = Arc::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = CHANGED.notified() => {}
            _ = closing.changed() => {}
        }
        if *closing.borrow() {
            return;
        }
        if let Err(e) = look(&service, &active, &closing).await {
            tracing::warn!(error = %e, "scan jobs: reading the jobs failed");
        }
    }
}

/// Starts the due jobs and takes up runs under way that no task follows (after a restart).
async fn look(
    service: &Arc<VulnService>,
    active: &Arc<StdMutex<HashSet<String>>>,
    closing: &watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let store = service.store();
    let now = now_ms();
    for job in store.list_vuln_scan_jobs().await? {
        if active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&job.name)
        {
            continue;
        }
        let state = JobState::of(&job);
        if !state.in_flight() {
            let due = next_run(&job, &state).is_some_and(|at| at <= now);
            if !due {
                continue;
            }
            let claimed = update_state(store.as_ref(), &job.name, |s| {
                if s.in_flight() {
                    return false;
                }
                s.status = STARTING.into();
                s.progress = None;
                s.gmp_status = None;
                s.error = None;
                s.error_at = None;
                s.started_by = Some("schedule".into());
                true
            })
            .await?;
            if claimed.is_none() {
                continue;
            }
        }
        active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job.name.clone());
        let service = service.clone();
        let active = active.clone();
        let closing = closing.clone();
        let name = job.name.clone();
        tokio::spawn(async move {
            follow(&service, &name, closing).await;
            active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&name);
        });
    }
    Ok(())
}

/// What one step of a run asks for next.
enum Next {
    /// Take the next step now.
    Now,
    /// Poll again after a pause.
    Later,
    /// The run is over (or the job is gone).
    Stop,
}

/// Follows one job's run from its stored state until it is over or the server closes.
async fn follow(service: &Arc<VulnService>, name: &str, mut closing: watch::Receiver<bool>) {
    let mut pause = Duration::from_secs(1);
    loop {
        let current = step(service, name);
        let next = tokio::select! {
            next = current => next,
            // Dropped mid-step: the state says where the run is; a restart goes on from there.
            _ = closing.changed() => return,
        };
        match next {
            Ok(Next::Now) => {}
            Ok(Next::Later) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = closing.changed() => return,
                }
                pause = (pause * 2).min(MAX_POLL);
            }
            Ok(Next::Stop) => return,
            Err(e) => {
                tracing::warn!(job = name, error = %e, "scan job: the store failed; trying again later");
                return;
            }
        }
        if *closing.borrow() {
            return;
        }
    }
}

async fn step(service: &Arc<VulnService>, name: &str) -> Result<Next, StoreError> {
    let store = service.store();
    let Some(job) = store.get_vuln_scan_job(name).await? else {
        return Ok(Next::Stop);
    };
    let state = JobState::of(&job);
    let spec: JobSpec = match serde_json::from_value(job.spec.clone()) {
        Ok(spec) => spec,
        Err(e) => {
            let now = now_ms();
            update_state(store.as_ref(), name, |s| {
                s.fail(format!("the stored settings don't parse: {e}"), now);
                true
            })
            .await?;
            return Ok(Next::Stop);
        }
    };
    match state.status.as_str() {
        STARTING => start(service, name, &spec, &state).await,
        RUNNING => poll(store.as_ref(), name, &spec, &state).await,
        FETCHING => fetch(service, name, &spec, &state).await,
        _ => Ok(Next::Stop),
    }
}

/// `starting` → `running`: resolve, connect, target and task (once), start.
async fn start(
    service: &Arc<VulnService>,
    name: &str,
    spec: &JobSpec,
    state: &JobState,
) -> Result<Next, StoreError> {
    let store = service.store().as_ref();
    let started = now_ms();
    let mut still_starting = false;
    update_state(store, name, |s| {
        if s.status != STARTING {
            return false;
        }
        still_starting = true;
        s.last_started = Some(started);
        s.report_id = None;
        s.fetch_attempts = 0;
        true
    })
    .await?;
    if !still_starting {
        return Ok(Next::Stop);
    }
    let hosts = resolve_hosts(store, &spec.targets).await?;
    if hosts.is_empty() {
        let now = now_ms();
        update_state(store, name, |s| {
            if s.status != STARTING {
                return false;
            }
            s.fail(
                "no host to scan: the chosen agents are unknown, revoked or report no usable address"
                    .into(),
                now,
            );
            true
        })
        .await?;
        return Ok(Next::Stop);
    }
    tracing::info!(job = name, hosts = hosts.len(), "scan job starting");
    match start_in_gvmd(store, name, spec, state, &hosts).await {
        Ok(Started { task_id, report_id }) => {
            let mut stopped_meanwhile = false;
            update_state(store, name, |s| {
                if s.status != STARTING {
                    stopped_meanwhile = true;
                    return false;
                }
                s.status = RUNNING.into();
                s.progress = Some(0);
                s.report_id = report_id;
                s.hosts = hosts;
                true
            })
            .await?;
            if stopped_meanwhile {
                // Stopped by hand while gvmd was being asked: stop what was just started.
                if let Ok(mut client) = connect(spec).await
                    && let Err(e) = client.stop_task(&task_id).await
                {
                    tracing::warn!(job = name, error = %e, "scan job: stopping the task failed");
                }
                return Ok(Next::Stop);
            }
            Ok(Next::Later)
        }
        Err(e) => {
            let now = now_ms();
            let forget = matches!(&e, GmpError::Request { status: 404, .. });
            tracing::warn!(job = name, error = %e, "scan job could not start");
            update_state(store, name, |s| {
                if s.status != STARTING {
                    return false;
                }
                s.fail(e.to_string(), now);
                if forget {
                    // Deleted in gvmd: made again at the next run.
                    s.task_id = None;
                    s.task_key = None;
                    s.target_id = None;
                    s.target_key = None;
                }
                true
            })
            .await?;
            Ok(Next::Stop)
        }
    }
}

/// A task gvmd runs now, and the report it writes.
struct Started {
    task_id: String,
    report_id: Option<String>,
}

async fn start_in_gvmd(
    store: &dyn Store,
    name: &str,
    spec: &JobSpec,
    state: &JobState,
    hosts: &[String],
) -> Result<Started, GmpError> {
    let mut client = connect(spec).await?;
    let mut exclude: Vec<String> = spec.exclude.iter().map(|x| x.trim().to_owned()).collect();
    exclude.sort();
    let target_key = fingerprint(&[
        hosts.join(",").as_str(),
        exclude.join(",").as_str(),
        spec.port_list.as_str(),
    ]);
    let target_id = match (&state.target_id, &state.target_key) {
        (Some(id), Some(key)) if *key == target_key => id.clone(),
        _ => {
            let id = client
                .create_target(&TargetSpec {
                    // gvmd wants target names unique.
                    name: format!("dozor {name} {}", now_ms()),
                    hosts: hosts.to_vec(),
                    exclude_hosts: exclude,
                    port_list: spec.port_list.clone(),
                    comment: Some(format!("Dozor scan job {name}")),
                })
                .await?;
            let (id2, key) = (id.clone(), target_key.clone());
            remember(store, name, move |s| {
                s.target_id = Some(id2);
                s.target_key = Some(key);
                s.task_id = None;
                s.task_key = None;
            })
            .await;
            id
        }
    };
    let task_key = fingerprint(&[
        target_id.as_str(),
        spec.scan_config.as_str(),
        spec.scanner.as_str(),
    ]);
    let reused_task = match (&state.task_id, &state.task_key) {
        (Some(id), Some(key))
            if *key == task_key && state.target_id.as_deref() == Some(target_id.as_str()) =>
        {
            Some(id.clone())
        }
        _ => None,
    };
    let task_id = match reused_task {
        Some(id) => {
            // Started before a restart cut the run short: follow it instead of starting again.
            let task = client.get_task(&id).await?;
            if !task.is_finished() && task.status != "New" {
                return Ok(Started {
                    report_id: task.current_report_id,
                    task_id: id,
                });
            }
            id
        }
        None => {
            let id = client
                .create_task(&TaskSpec {
                    name: format!("dozor {name}"),
                    target_id: target_id.clone(),
                    scan_config: spec.scan_config.clone(),
                    scanner: spec.scanner.clone(),
                    comment: Some(format!("Dozor scan job {name}")),
                })
                .await?;
            let (id2, key) = (id.clone(), task_key.clone());
            remember(store, name, move |s| {
                s.task_id = Some(id2);
                s.task_key = Some(key);
            })
            .await;
            id
        }
    };
    let report_id = client.start_task(&task_id).await?;
    Ok(Started { task_id, report_id })
}

/// Keeps gvmd ids as soon as they exist, so a failure later doesn't make them again.
async fn remember(store: &dyn Store, name: &str, change: impl FnOnce(&mut JobState) + Send) {
    if let Err(e) = update_state(store, name, |s| {
        change(s);
        true
    })
    .await
    {
        tracing::warn!(job = name, error = %e, "scan job: keeping gvmd's ids failed");
    }
}

/// `running`: one `get_tasks`.
async fn poll(
    store: &dyn Store,
    name: &str,
    spec: &JobSpec,
    state: &JobState,
) -> Result<Next, StoreError> {
    let Some(task_id) = state.task_id.clone() else {
        let now = now_ms();
        update_state(store, name, |s| {
            s.fail("running without a gvmd task id".into(), now);
            true
        })
        .await?;
        return Ok(Next::Stop);
    };
    let polled = async {
        let mut client = connect(spec).await?;
        client.get_task(&task_id).await
    }
    .await;
    let now = now_ms();
    let mut next = Next::Later;
    update_state(store, name, |s| {
        // Stopped by hand, or started again meanwhile: this poll is stale.
        if s.status != RUNNING || s.task_id.as_deref() != Some(task_id.as_str()) {
            next = Next::Stop;
            return false;
        }
        match &polled {
            Ok(task) => {
                s.gmp_status = Some(task.status.clone());
                s.error = None;
                s.error_at = None;
                match task.status.as_str() {
                    "Done" => {
                        s.status = FETCHING.into();
                        s.progress = Some(100);
                        if let Some(id) = task
                            .last_report_id
                            .clone()
                            .or(task.current_report_id.clone())
                        {
                            s.report_id = Some(id);
                        }
                        next = Next::Now;
                    }
                    "Stopped" => {
                        s.status = STOPPED.into();
                        s.last_finished = Some(now);
                        next = Next::Stop;
                    }
                    "Interrupted" => {
                        s.fail(
                            "gvmd: the scan was interrupted (see gvmd's log)".into(),
                            now,
                        );
                        next = Next::Stop;
                    }
                    _ => {
                        if let Some(p) = task.progress.filter(|p| (0..=100).contains(p)) {
                            s.progress = Some(p);
                        }
                        if s.report_id.is_none() {
                            s.report_id = task.current_report_id.clone();
                        }
                    }
                }
            }
            Err(e) if is_transient(e) => s.note_error(e.to_string(), now),
            Err(e) => {
                s.fail(e.to_string(), now);
                next = Next::Stop;
            }
        }
        true
    })
    .await?;
    Ok(next)
}

/// `fetching`: the report, recorded.
async fn fetch(
    service: &Arc<VulnService>,
    name: &str,
    spec: &JobSpec,
    state: &JobState,
) -> Result<Next, StoreError> {
    let store = service.store().as_ref();
    let Some(report_id) = state.report_id.clone() else {
        let now = now_ms();
        update_state(store, name, |s| {
            s.fail("gvmd named no report for the finished task".into(), now);
            true
        })
        .await?;
        return Ok(Next::Stop);
    };
    let fetched = async {
        let mut client = connect(spec).await?;
        client
            .get_report(&report_id, &ReportFilter::default())
            .await
    }
    .await;
    let now = now_ms();
    let parsed = match fetched {
        Ok(parsed) => parsed,
        Err(e) => {
            let transient = is_transient(&e);
            let mut next = Next::Stop;
            update_state(store, name, |s| {
                if s.status != FETCHING {
                    return false;
                }
                s.fetch_attempts += 1;
                if transient && s.fetch_attempts < MAX_FETCH_ATTEMPTS {
                    s.note_error(format!("fetching report {report_id}: {e}"), now);
                    next = Next::Later;
                } else {
                    s.fail(format!("fetching report {report_id}: {e}"), now);
                }
                true
            })
            .await?;
            return Ok(next);
        }
    };
    let recorded = service
        .record_report(
            parsed,
            Some(name.to_owned()),
            "gmp",
            &format!("scan-job:{name}"),
        )
        .await
        .map(|(_, report)| report);
    let now = now_ms();
    update_state(store, name, |s| {
        if s.status != FETCHING {
            return false;
        }
        match &recorded {
            Ok(report) => {
                s.status = DONE.into();
                s.last_scan_id = Some(report.scan.id);
                s.last_counts = Some(report.scan.counts.clone());
                s.last_finished = Some(now);
                s.error = None;
                s.error_at = None;
            }
            Err(e) => s.fail(format!("recording report {report_id}: {e}"), now),
        }
        true
    })
    .await?;
    match &recorded {
        Ok(report) => tracing::info!(
            job = name,
            scan = report.scan.id,
            results = report.scan.counts.results,
            "scan job done: report recorded"
        ),
        Err(e) => tracing::warn!(job = name, error = %e, "scan job: recording the report failed"),
    }
    Ok(Next::Stop)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Value {
        json!({
            "targets": {"cidrs": ["10.0.0.0/24"]},
            "gmp": {"socket": "/run/gvmd/gvmd.sock"},
            "username": "admin",
            "password": "secret",
        })
    }

    #[test]
    fn a_minimal_spec_gets_the_defaults() {
        let spec = parse_spec(&base()).unwrap();
        assert_eq!(spec.port_list, DEFAULT_PORT_LIST);
        assert_eq!(spec.scan_config, DEFAULT_SCAN_CONFIG);
        assert_eq!(spec.scanner, DEFAULT_SCANNER);
        assert_eq!(spec.interval_secs, 0);
        // The stored form reads back with serde alone.
        let back: JobSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"targets": {}}), "targets"),
            (
                json!({"targets": {"cidrs": ["10.0.0.0/33"]}}),
                "targets.cidrs[0]",
            ),
            (
                json!({"targets": {"cidrs": ["10.0.0.0/24", "nope"]}}),
                "targets.cidrs[1]",
            ),
            (
                json!({"targets": {"hosts": ["bad host!"]}}),
                "targets.hosts[0]",
            ),
            (
                json!({"targets": {"cidrs": "10.0.0.0/24"}}),
                "targets.cidrs",
            ),
            (json!({"targets": {"tags": ["x"]}}), "targets.tags"),
            (json!({"colour": "red"}), "colour"),
            (json!({"interval_secs": 60}), "interval_secs"),
            (json!({"interval_secs": -1}), "interval_secs"),
            (json!({"exclude": ["x y"]}), "exclude[0]"),
            (
                json!({"gmp": {"host": "gvm.example", "port": 9390}}),
                "gmp.ca_pem_file",
            ),
            (
                json!({"gmp": {"host": "gvm.example", "pin_sha256": "abc"}}),
                "gmp.pin_sha256",
            ),
            (json!({"gmp": {"socket": "relative.sock"}}), "gmp.socket"),
            (json!({"gmp": {"socket": "/s", "host": "h"}}), "gmp"),
            (json!({"gmp": {"socket": "/s", "port": 1}}), "gmp.port"),
            (json!({"username": ""}), "username"),
            (json!({"password": ""}), "password"),
        ];
        for (patch, field) in cases {
            let mut spec = base();
            for (k, v) in patch.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let err = parse_spec(&spec).unwrap_err();
            assert_eq!(err.field, field, "{patch}: {err}");
        }
        let mut missing = base();
        missing.as_object_mut().unwrap().remove("password");
        assert_eq!(parse_spec(&missing).unwrap_err().field, "password");
    }

    #[test]
    fn a_tls_endpoint_with_a_ca_or_a_pin_is_accepted() {
        for gmp in [
            json!({"host": "gvm.example", "ca_pem_file": "/etc/gvm/ca.pem"}),
            json!({"host": "10.0.0.9", "port": 9391, "pin_sha256": "ab".repeat(32)}),
        ] {
            let mut spec = base();
            spec["gmp"] = gmp.clone();
            parse_spec(&spec).unwrap_or_else(|e| panic!("{gmp}: {e}"));
        }
    }

    #[test]
    fn the_password_is_redacted() {
        let shown = redact_spec(&base());
        assert_eq!(shown["password"], REDACTED);
        assert_eq!(shown["username"], "admin");
    }

    #[test]
    fn globs() {
        assert!(glob_matches("web-*", "WEB-01"));
        assert!(glob_matches("db?", "db1"));
        assert!(!glob_matches("db?", "db12"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*.lab.*", "x.lab.example"));
        assert!(!glob_matches("a*b", "acd"));
    }
}
