//! Behavioural analytics in the server (issue 17): the per-entity models of `dozor-anomaly`
//! learn from the events the server stores and score what arrives next.
//!
//! - **Training** ([`AnomalyService::train`]): a fresh [`Detector`] learns every stored event of
//!   the look-back window (`anomaly.lookback_days`) up to the read position in event-time order,
//!   then replaces the live one; what arrived after the last run is scored next, not learned
//!   unseen. It runs on the first start, every `anomaly.retrain` (so behaviour that stopped ages
//!   out of the baseline) and on demand (`POST /api/v1/anomaly/train`).
//! - **Scoring** (a periodic job, every `anomaly.interval`): the events stored since the last
//!   run, followed by arrival (`received_at`, late uploads included) and scored in event-time
//!   order within a page; the models learn them as they go. Each finding becomes an *anomaly
//!   event* (`event.module: dozor-anomaly`, `event.action: anomaly-detected`, the explanation
//!   under `anomaly.*`, its id derived from the finding so a replay stores nothing twice) and,
//!   at `anomaly.alert_score` or above, a detection of `dozor-anomaly-<kind>` folded into alerts
//!   like the pipeline's. Entities alert only after their warm-up (the models' minimum
//!   observations and days).
//! - **State** survives restarts: the models (with open hourly counts) and the read position
//!   are written after every run to `<data_dir>/anomaly/` — a numbered model file first, then
//!   `state.json` naming it (an atomic rename), so a crash leaves the previous pair whole.
//!
//! Scoring is out of the ingest path on purpose: the pipeline's throughput does not depend on
//! it, and the hourly count models need closed hours anyway.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use dozor_anomaly::{Activity, Detector, Finding, ModelFile};
use dozor_model::Level;
use dozor_store::{Detection, EventScan, NewEvent, ScanOrder, Store, StoredEvent, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, watch};
use uuid::Uuid;

/// Events read per page.
const PAGE: u32 = 2_000;
/// Events younger than this (by arrival) wait for the next run: a batch still being committed
/// with an earlier `received_at` is not skipped.
const SETTLE_MS: i64 = 5_000;
/// The read position and models are saved at least every this many pages of a long run.
const SAVE_EVERY_PAGES: usize = 50;
/// The forest's seed: the same stored events train the same forest.
const FOREST_SEED: u64 = 17;
/// Hosts whose agent id is remembered (for the alerts of hourly findings).
const MAX_REMEMBERED_HOSTS: usize = 100_000;

/// The `[anomaly]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyConfig {
    /// Off: no training, no scoring, the API says so.
    pub enabled: bool,
    /// How often new events are scored.
    pub interval: Duration,
    /// Days of stored events a training learns.
    pub lookback_days: u32,
    /// How often the models are trained again from the look-back window.
    pub retrain: Duration,
    /// Findings scoring this or more raise an alert; `None`: anomaly events only.
    pub alert_score: Option<f64>,
    /// The level of those alerts.
    pub alert_level: Level,
    /// The share of one core a backlog is scored with (1-100; 100: no pauses).
    pub cpu_percent: u32,
    /// Where the models and the read position are kept.
    pub state_dir: PathBuf,
}

// `alert_score` is never NaN (parsed from 0 to 1), so equality is total.
impl Eq for AnomalyConfig {}

impl AnomalyConfig {
    /// The defaults with the state under `data_dir`.
    pub fn defaults_for(data_dir: &Path) -> Self {
        AnomalyConfig {
            enabled: true,
            interval: Duration::from_secs(60),
            lookback_days: 14,
            retrain: Duration::from_secs(24 * 3600),
            alert_score: Some(DEFAULT_ALERT_SCORE),
            alert_level: Level::Medium,
            cpu_percent: 20,
            state_dir: data_dir.join("anomaly"),
        }
    }
}

/// Every finding the models report is already past their own alert threshold (0.95 for
/// rarity and hours, a tail probability of 1e-4 for counts): at this default each one alerts,
/// which is what the evaluation's false-alert rate measures.
pub const DEFAULT_ALERT_SCORE: f64 = 0.95;

/// The finding kinds scored per closed hour: their contributing events are a host's hour,
/// not one event.
const HOURLY_KINDS: &[&str] = &[
    "volume_spike",
    "failed_logon_burst",
    "unusual_host_activity",
];

/// What the job has done, for `GET /api/v1/anomaly/models` and the dashboard.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnomalyStatus {
    /// `anomaly.enabled`.
    pub enabled: bool,
    /// `disabled`, `starting`, `training` or `scoring`.
    pub state: String,
    /// `anomaly.lookback_days`.
    pub lookback_days: u32,
    /// `anomaly.alert_score` (absent: findings do not alert).
    pub alert_score: Option<f64>,
    /// When the models were last trained (RFC 3339).
    pub trained_at: Option<String>,
    /// Events that training learned, and their first and last time.
    pub training_events: u64,
    pub training_first_event: Option<String>,
    pub training_last_event: Option<String>,
    /// The next scheduled training.
    pub next_training: Option<String>,
    /// Events learned or scored by the live models, and the span they cover.
    pub model_events: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    /// Since the last training: events scored, findings, alerts raised.
    pub scored_events: u64,
    pub findings: u64,
    pub alerts: u64,
    /// Events are read up to this arrival time (RFC 3339).
    pub read_up_to: Option<String>,
    /// The end of the last run, and what went wrong in it.
    pub last_run: Option<String>,
    pub last_error: Option<String>,
    /// Each model with the number of entities it has a baseline of.
    pub models: Vec<ModelStatus>,
    /// The host-hour features of the isolation forest, in the order
    /// `POST /api/v1/anomaly/score` takes `vectors`.
    pub forest_features: Vec<String>,
    /// Whether the forest is trained (it needs 256 host-hours).
    pub forest_trained: bool,
}

/// One model of the live set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelStatus {
    /// Its finding kind (`rare_process`, `unusual_logon_hour`, ...).
    pub name: String,
    /// `rare_value`, `unusual_hour`, `count_burst` or `isolation_forest`.
    pub model: String,
    /// The entity field (`host.name`, `user.name`, `host.name|process.name`).
    pub entity_field: String,
    /// Entities with a baseline.
    pub entities: usize,
}

/// The part of the state saved beside the models.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SavedState {
    /// The model file of this state (`models-<generation>.dam`).
    generation: u64,
    /// The last event read: (received_at, id).
    read_after: Option<(i64, Uuid)>,
    trained_at: Option<i64>,
    training_events: u64,
    training_first: Option<i64>,
    training_last: Option<i64>,
    scored_events: u64,
    findings: u64,
    alerts: u64,
}

/// What went wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyError {
    #[error("store: {0}")]
    Store(#[from] dozor_store::StoreError),
    #[error("model state in {path}: {reason}")]
    State { path: String, reason: String },
    #[error("behavioural analytics is off (anomaly.enabled = false)")]
    Disabled,
}

/// The models, the job's position and its counters.
pub struct AnomalyService {
    store: Arc<dyn Store>,
    config: AnomalyConfig,
    alert_window: Duration,
    notices: broadcast::Sender<dozor_pipeline::AlertNotice>,
    detector: RwLock<Detector>,
    saved: Mutex<SavedState>,
    /// `starting`, `training`, `scoring`.
    phase: Mutex<&'static str>,
    last_run: Mutex<(Option<i64>, Option<String>)>,
    train_requested: Notify,
    /// Host → the agent that last sent events of it.
    agents: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for AnomalyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnomalyService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn rfc3339_s(secs: i64) -> Option<String> {
    secs.checked_mul(1000).and_then(rfc3339_ms)
}

/// Events Dozor made itself (anomaly findings, vulnerability alerts) are not behaviour.
fn is_own(doc: &Value) -> bool {
    doc.pointer("/event/module")
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("dozor-"))
}

impl AnomalyService {
    pub fn new(
        store: Arc<dyn Store>,
        config: AnomalyConfig,
        alert_window: Duration,
        notices: broadcast::Sender<dozor_pipeline::AlertNotice>,
    ) -> Arc<Self> {
        Arc::new(AnomalyService {
            store,
            config,
            alert_window,
            notices,
            detector: RwLock::new(Detector::new()),
            saved: Mutex::new(SavedState::default()),
            phase: Mutex::new("starting"),
            last_run: Mutex::new((None, None)),
            train_requested: Notify::new(),
            agents: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &AnomalyConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Asks the job to train again now (it answers at once; training runs in the job).
    pub fn request_training(&self) -> Result<(), AnomalyError> {
        if !self.config.enabled {
            return Err(AnomalyError::Disabled);
        }
        self.train_requested.notify_one();
        Ok(())
    }

    /// The findings these events would raise now, without the models learning them.
    pub fn score_only(&self, activity: &Activity, time: i64) -> Vec<Finding> {
        read(&self.detector).score_only(activity, time)
    }

    /// Runs `f` on the live models (read-only).
    pub fn with_detector<T>(&self, f: impl FnOnce(&Detector) -> T) -> T {
        f(&read(&self.detector))
    }

    pub fn status(&self) -> AnomalyStatus {
        let saved = lock(&self.saved).clone();
        let (last_run, last_error) = lock(&self.last_run).clone();
        let detector = read(&self.detector);
        AnomalyStatus {
            enabled: self.config.enabled,
            state: if self.config.enabled {
                (*lock(&self.phase)).to_owned()
            } else {
                "disabled".into()
            },
            lookback_days: self.config.lookback_days,
            alert_score: self.config.alert_score,
            trained_at: saved.trained_at.and_then(rfc3339_ms),
            training_events: saved.training_events,
            training_first_event: saved.training_first.and_then(rfc3339_s),
            training_last_event: saved.training_last.and_then(rfc3339_s),
            next_training: saved
                .trained_at
                .map(|t| t + self.config.retrain.as_millis() as i64)
                .and_then(rfc3339_ms),
            model_events: detector.events,
            first_event: detector.first_time.and_then(rfc3339_s),
            last_event: detector.last_time.and_then(rfc3339_s),
            scored_events: saved.scored_events,
            findings: saved.findings,
            alerts: saved.alerts,
            read_up_to: saved.read_after.and_then(|(at, _)| rfc3339_ms(at)),
            last_run: last_run.and_then(rfc3339_ms),
            last_error,
            forest_features: Detector::host_hour_feature_names()
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
            forest_trained: detector.forest().is_some(),
            models: detector
                .summary()
                .into_iter()
                .map(|m| ModelStatus {
                    name: m.name,
                    model: m.model,
                    entity_field: m.entity_field,
                    entities: m.entities,
                })
                .collect(),
        }
    }

    // ------------------------------------------------------------ state on disk

    fn state_file(&self) -> PathBuf {
        self.config.state_dir.join("state.json")
    }

    fn model_file(&self, generation: u64) -> PathBuf {
        self.config
            .state_dir
            .join(format!("models-{generation}.dam"))
    }

    fn state_error(path: &Path, reason: impl ToString) -> AnomalyError {
        AnomalyError::State {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Loads the saved models and position; `Ok(false)` when there are none yet.
    fn restore(&self) -> Result<bool, AnomalyError> {
        let path = self.state_file();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Self::state_error(&path, e)),
        };
        let saved: SavedState =
            serde_json::from_slice(&text).map_err(|e| Self::state_error(&path, e))?;
        let model_path = self.model_file(saved.generation);
        let bytes = std::fs::read(&model_path).map_err(|e| Self::state_error(&model_path, e))?;
        let detector = ModelFile::from_bytes(&bytes)
            .and_then(|f| Detector::from_model_file(&f))
            .map_err(|e| Self::state_error(&model_path, e))?;
        *write(&self.detector) = detector;
        *lock(&self.saved) = saved;
        Ok(true)
    }

    /// Writes the models under a new generation, then the state naming it, then removes the
    /// previous generation.
    fn save(&self) -> Result<(), AnomalyError> {
        let dir = &self.config.state_dir;
        std::fs::create_dir_all(dir).map_err(|e| Self::state_error(dir, e))?;
        let mut saved = lock(&self.saved).clone();
        let previous = saved.generation;
        saved.generation += 1;
        let bytes = read(&self.detector)
            .to_model_file()
            .to_bytes()
            .map_err(|e| Self::state_error(dir, e))?;
        let model_path = self.model_file(saved.generation);
        write_atomically(&model_path, &bytes).map_err(|e| Self::state_error(&model_path, e))?;
        let state_path = self.state_file();
        let text = serde_json::to_vec_pretty(&saved).map_err(|e| Self::state_error(dir, e))?;
        write_atomically(&state_path, &text).map_err(|e| Self::state_error(&state_path, e))?;
        lock(&self.saved).generation = saved.generation;
        let _ = std::fs::remove_file(self.model_file(previous));
        Ok(())
    }

    // ------------------------------------------------------------ training

    /// Learns the look-back window from scratch and swaps the new models in. It learns the
    /// events the job has read so far and leaves the read position where it is, so the events
    /// that arrived since the last run are scored next (by the new models) rather than learned
    /// without ever being scored; the first training learns up to a few seconds ago.
    pub async fn train(&self) -> Result<(), AnomalyError> {
        *lock(&self.phase) = "training";
        let started = std::time::Instant::now();
        let cutoff = now_ms() - SETTLE_MS;
        let learn_up_to = lock(&self.saved)
            .read_after
            .unwrap_or((cutoff - 1, Uuid::max()));
        let from = cutoff - i64::from(self.config.lookback_days) * 86_400_000;
        let mut detector = Detector::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .scan_events(&EventScan {
                    order: ScanOrder::Time,
                    after,
                    from: Some(from),
                    before: None,
                    limit: PAGE,
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.ts, last.id));
            let full = page.len() as u32 == PAGE;
            for event in &page {
                // What the job has not read yet is scored, not learned.
                if (event.received_at, event.id) > learn_up_to || is_own(&event.doc) {
                    continue;
                }
                if let Some(activity) = Activity::of(&event.doc) {
                    detector.event(&activity, event.ts.div_euclid(1000), false);
                }
            }
            if !full {
                break;
            }
            tokio::task::yield_now().await;
        }
        match detector.train_forest(FOREST_SEED) {
            Ok(true) => {}
            Ok(false) => tracing::info!("too few host-hours for the isolation forest yet"),
            Err(e) => tracing::warn!(error = %e, "the isolation forest could not be trained"),
        }
        let training = (detector.events, detector.first_time, detector.last_time);
        *write(&self.detector) = detector;
        {
            let mut saved = lock(&self.saved);
            saved.read_after = Some(learn_up_to);
            saved.trained_at = Some(now_ms());
            (
                saved.training_events,
                saved.training_first,
                saved.training_last,
            ) = training;
            saved.scored_events = 0;
            saved.findings = 0;
            saved.alerts = 0;
        }
        self.save()?;
        tracing::info!(
            events = training.0,
            lookback_days = self.config.lookback_days,
            seconds = started.elapsed().as_secs_f64(),
            "anomaly models trained"
        );
        Ok(())
    }

    fn training_due(&self) -> bool {
        match lock(&self.saved).trained_at {
            None => true,
            Some(t) => now_ms() - t >= self.config.retrain.as_millis() as i64,
        }
    }

    // ------------------------------------------------------------ scoring

    /// Scores every event stored since the last run (up to a few seconds ago); the number of
    /// events scored and of findings.
    pub async fn score_new(
        &self,
        closing: &watch::Receiver<bool>,
    ) -> Result<(u64, u64), AnomalyError> {
        *lock(&self.phase) = "scoring";
        let before = now_ms() - SETTLE_MS;
        let mut scored = 0u64;
        let mut found = 0u64;
        let mut pages = 0usize;
        loop {
            let page_started = std::time::Instant::now();
            let after = lock(&self.saved).read_after;
            let page = self
                .store
                .scan_events(&EventScan {
                    order: ScanOrder::Received,
                    after,
                    from: None,
                    before: Some(before),
                    limit: PAGE,
                })
                .await?;
            let Some(last) = page.last() else { break };
            let position = (last.received_at, last.id);
            let full = page.len() as u32 == PAGE;
            let (events, detections, page_scored) = self.score_page(page);
            if !events.is_empty() {
                let batch = match self
                    .store
                    .store_batch(&events, &detections, self.alert_window)
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        // The models learned a page whose findings were not stored: go back
                        // to the saved models so the page is learned once when it is re-read.
                        if let Err(restore) = self.restore() {
                            tracing::error!(error = %restore, "anomaly models could not be restored");
                        }
                        return Err(e.into());
                    }
                };
                for outcome in batch.alerts {
                    let _ = self.notices.send(dozor_pipeline::AlertNotice {
                        change: outcome.change,
                        alert: outcome.alert,
                    });
                }
            }
            {
                let mut saved = lock(&self.saved);
                saved.read_after = Some(position);
                saved.findings += events.len() as u64;
                saved.alerts += detections.len() as u64;
            }
            scored += page_scored;
            found += events.len() as u64;
            pages += 1;
            if pages.is_multiple_of(SAVE_EVERY_PAGES) {
                self.save()?;
            }
            if !full || *closing.borrow() {
                break;
            }
            // A backlog is worked off within `anomaly.cpu_percent` of one core: the pipeline
            // ingesting at full speed beside it keeps its throughput.
            let percent = f64::from(self.config.cpu_percent.clamp(1, 100));
            let pause = page_started.elapsed().mul_f64((100.0 - percent) / percent);
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
        }
        Ok((scored, found))
    }

    /// Scores one page (in event-time order) and turns its findings into anomaly events and
    /// detections.
    fn score_page(&self, mut page: Vec<StoredEvent>) -> (Vec<NewEvent>, Vec<Detection>, u64) {
        page.sort_by_key(|e| (e.ts, e.id));
        let now = now_ms();
        let mut events = Vec::new();
        let mut detections = Vec::new();
        let mut scored = 0u64;
        {
            let mut detector = write(&self.detector);
            let mut agents = lock(&self.agents);
            for event in &page {
                if is_own(&event.doc) {
                    continue;
                }
                let Some(activity) = Activity::of(&event.doc) else {
                    continue;
                };
                scored += 1;
                let host = dozor_store::event_host(&event.doc).map(str::to_ascii_lowercase);
                if let (Some(host), Some(agent)) = (&host, &event.agent_id)
                    && (agents.len() < MAX_REMEMBERED_HOSTS || agents.contains_key(host))
                    && agents.get(host) != Some(agent)
                {
                    agents.insert(host.clone(), agent.clone());
                }
                for finding in detector.event(&activity, event.ts.div_euclid(1000), true) {
                    let hourly = HOURLY_KINDS.contains(&finding.kind.as_str());
                    let (source, agent_id, host) = if hourly {
                        (
                            None,
                            agents.get(&finding.entity).cloned(),
                            Some(finding.entity.clone()),
                        )
                    } else {
                        (Some(event), event.agent_id.clone(), host.clone())
                    };
                    let new = anomaly_event(&finding, source, host.as_deref(), agent_id, now);
                    if let Some(min) = self.config.alert_score
                        && finding.score >= min
                    {
                        detections.push(detection(&finding, &new, &self.config.alert_level));
                    }
                    events.push(new);
                }
            }
        }
        lock(&self.saved).scored_events += scored;
        (events, detections, scored)
    }

    fn finish_run(&self, error: Option<String>) {
        *lock(&self.last_run) = (Some(now_ms()), error);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The title of a kind's alerts.
pub fn kind_title(kind: &str) -> &'static str {
    match kind {
        "rare_process" => "Anomaly: a process never seen on this host",
        "rare_parent_child" => "Anomaly: a parent-child process pair never seen on this host",
        "rare_logon_source" => "Anomaly: logon from a source unusual for the user",
        "unusual_logon_hour" => "Anomaly: logon at an hour unusual for the user",
        "failed_logon_burst" => "Anomaly: burst of failed logons",
        "new_destination" => "Anomaly: a process connected to a destination new for it",
        "new_listening_port" => "Anomaly: a new listening port",
        "volume_spike" => "Anomaly: event volume spike",
        "unusual_host_activity" => "Anomaly: unusual activity of a host",
        _ => "Anomaly",
    }
}

/// ATT&CK tags of a kind, where the behaviour points at a tactic.
fn kind_tags(kind: &str) -> &'static [&'static str] {
    match kind {
        "rare_process" => &["attack.execution"],
        "rare_parent_child" => &["attack.execution", "attack.t1059"],
        "rare_logon_source" | "unusual_logon_hour" => &["attack.initial_access", "attack.t1078"],
        "failed_logon_burst" => &["attack.credential_access", "attack.t1110"],
        "new_destination" => &["attack.command_and_control"],
        "new_listening_port" => &["attack.command_and_control", "attack.t1571"],
        _ => &[],
    }
}

/// A value quoted for the query language, which escapes `"` only inside quotes: a backslash
/// is itself (a user named `CORP\ivan`).
pub(crate) fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\\\""))
}

/// The event search that shows a finding's contributing events.
pub fn contributing_query(finding: &Finding) -> String {
    match finding.kind.as_str() {
        "failed_logon_burst" => format!(
            "host.name:{} AND (event.outcome:failure OR event.code:4625)",
            quoted(&finding.entity)
        ),
        _ if HOURLY_KINDS.contains(&finding.kind.as_str()) => {
            format!("host.name:{}", quoted(&finding.entity))
        }
        _ => format!("{}:{}", finding.entity_field, quoted(&finding.entity)),
    }
}

/// The anomaly event of a finding: the explanation under `anomaly.*`, the triggering event
/// linked (or, for an hourly finding, the hour and the query of its events).
fn anomaly_event(
    finding: &Finding,
    source: Option<&StoredEvent>,
    host: Option<&str>,
    agent_id: Option<String>,
    now: i64,
) -> NewEvent {
    let ts = source.map_or(finding.time.saturating_mul(1000), |e| e.ts);
    let mut anomaly = json!({
        "kind": finding.kind,
        "score": (finding.score * 10_000.0).round() / 10_000.0,
        "entity_field": finding.entity_field,
        "entity": finding.entity,
        "observed": finding.observed,
        "expected": finding.expected,
        "features": finding.features,
        "details": finding.details,
        "baseline": {
            "first_seen": rfc3339_s(finding.baseline.first_seen),
            "last_seen": rfc3339_s(finding.baseline.last_seen),
            "observations": finding.baseline.observations,
            "distinct_days": finding.baseline.distinct_days,
        },
        "events_query": contributing_query(finding),
    });
    match source {
        Some(e) => anomaly["source_event"] = json!(e.id),
        None => {
            anomaly["window"] = json!({
                "from": rfc3339_s(finding.time),
                "to": rfc3339_s(finding.time + 3600),
            })
        }
    }
    let mut doc = json!({
        "@timestamp": rfc3339_ms(ts),
        "event": {
            "kind": "event",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "action": "anomaly-detected",
            "module": "dozor-anomaly",
            "dataset": format!("anomaly.{}", finding.kind),
            "reason": finding.message,
            "risk_score": (finding.score * 100.0).round(),
        },
        "message": finding.message,
        "anomaly": anomaly,
    });
    if let Some(host) = host {
        doc["host"] = json!({ "name": host });
    }
    if finding.entity_field == "user.name" {
        doc["user"] = json!({ "name": finding.entity });
    }
    NewEvent {
        // The same finding is the same event, however often its page is read again.
        id: Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!(
                "dozor-anomaly:{}:{}:{}:{}:{}",
                finding.kind,
                finding.entity,
                finding.time,
                finding.observed,
                source.map(|e| e.id.to_string()).unwrap_or_default()
            )
            .as_bytes(),
        ),
        ts,
        received_at: now,
        agent_id,
        doc,
    }
}

fn detection(finding: &Finding, event: &NewEvent, level: &Level) -> Detection {
    let mut tags = vec!["anomaly".to_owned(), format!("anomaly.{}", finding.kind)];
    tags.extend(kind_tags(&finding.kind).iter().map(|t| (*t).to_owned()));
    Detection {
        rule_id: format!("dozor-anomaly-{}", finding.kind.replace('_', "-")),
        rule_title: kind_title(&finding.kind).to_owned(),
        level: *level,
        tags,
        agent_id: event.agent_id.clone(),
        host: dozor_store::event_host(&event.doc).map(str::to_owned),
        event_id: event.id,
        ts: event.ts,
    }
}

/// The job: restore or train, then score every `anomaly.interval`, train again when due or
/// asked, save after every run.
pub async fn run_background(service: Arc<AnomalyService>, mut closing: watch::Receiver<bool>) {
    if !service.config.enabled {
        return;
    }
    match service.restore() {
        Ok(true) => tracing::info!("anomaly models restored"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "anomaly models could not be restored; training anew"),
    }
    let mut tick = tokio::time::interval(service.config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the first run is the one below.
    tick.tick().await;
    let mut requested = false;
    loop {
        if *closing.borrow() {
            return;
        }
        let mut error = None;
        if (requested || service.training_due())
            && let Err(e) = service.train().await
        {
            tracing::warn!(error = %e, "anomaly training failed");
            error = Some(e.to_string());
        }
        if error.is_none() {
            match service.score_new(&closing).await {
                Ok(_) => {
                    if let Err(e) = service.save() {
                        tracing::warn!(error = %e, "anomaly state could not be saved");
                        error = Some(e.to_string());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "anomaly scoring failed");
                    error = Some(e.to_string());
                }
            }
        }
        service.finish_run(error);
        tokio::select! {
            _ = tick.tick() => requested = false,
            _ = service.train_requested.notified() => requested = true,
            _ = closing.changed() => return,
        }
    }
}
