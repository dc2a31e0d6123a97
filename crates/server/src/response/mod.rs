//! Response (issue 13): playbooks run by `dozor-playbook`'s engine with Dozor's modules
//! (alert actions, agent commands, notifications), approvals that wait for a human, and the
//! triggers that start runs (alerts, schedules, manual requests).
//!
//! - Playbooks come from `response.playbooks_dir` (origin `file`: read-only through the API,
//!   created with the base playbooks when missing) and from the API (origin `api`); all are in
//!   the store, parsed once and kept here.
//! - Every run is stored before it starts; each step as it ends; the end is audited.
//! - Approvals are rows in the store: a waiting step re-reads its row when this process decides
//!   one and at least every second (another process may decide it).
//! - Alert triggers fire in the processes that run pipeline workers (they see the alert
//!   notices); manual runs where the API is; schedules in the `all` and `worker` roles.

pub mod approvals;
mod modules;
mod notify;
pub mod signals;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dozor_model::{
    Alert, AlertChange, NewPlaybookRun, PlaybookRun, PlaybookRunStatus, StoredPlaybook,
};
use dozor_playbook::{
    Engine, ParseError, Playbook, Registry, RunInput, RunRecord, RunRecorder, RunStatus, Schedule,
    StepRecord, StepStatus,
};
use dozor_store::{Store, now_ms};
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, watch};

use crate::config::{NotifyConfig, ResponseConfig};
use crate::ops::OpError;

/// Runs at once in this process; more wait for a place.
const MAX_CONCURRENT_RUNS: usize = 64;
/// An alert updated again within this time does not start the same playbook again.
const UPDATE_COOLDOWN: Duration = Duration::from_secs(60);
/// Events of the alert given to a run (`events` in templates).
const RUN_EVENTS: usize = 20;

/// A playbook as loaded: the stored row and its parse.
#[derive(Debug, Clone)]
pub struct LoadedPlaybook {
    pub stored: StoredPlaybook,
    pub parsed: Result<Arc<Playbook>, ParseError>,
}

impl LoadedPlaybook {
    /// Indices of the plays a manual run may run: plays with `manual: true` or no trigger.
    pub fn manual_plays(&self) -> Vec<usize> {
        match &self.parsed {
            Ok(p) => p
                .plays
                .iter()
                .enumerate()
                .filter(|(_, play)| play.trigger.as_ref().is_none_or(|t| t.manual))
                .map(|(i, _)| i)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A manual run request.
#[derive(Debug, Clone, Default)]
pub struct ManualRun {
    pub playbook: String,
    pub requested_by: String,
    pub alert_id: Option<i64>,
    pub agent_id: Option<String>,
    pub vars: Map<String, Value>,
    pub dry_run: bool,
}

/// The response service of one server process.
pub struct ResponseService {
    store: Arc<dyn Store>,
    engine: Engine,
    config: ResponseConfig,
    base_url: String,
    secrets: Map<String, Value>,
    playbooks: RwLock<BTreeMap<String, LoadedPlaybook>>,
    runs: Arc<Semaphore>,
    /// (playbook, alert id) → when an `updated` change last started it.
    recent_updates: Mutex<HashMap<(String, i64), Instant>>,
    /// (playbook, play index) → when the schedule last started it (ms).
    last_scheduled: Mutex<HashMap<(String, usize), i64>>,
    notifier: Arc<notify::Notifier>,
}

impl std::fmt::Debug for ResponseService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseService")
            .field("playbooks_dir", &self.config.playbooks_dir)
            .finish_non_exhaustive()
    }
}

/// Why the response service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ResponseSetupError {
    #[error("playbook directory {}: {source}", path.display())]
    Dir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] dozor_store::StoreError),
}

impl ResponseService {
    /// Loads the playbooks (directory into the store, then every stored one parsed).
    pub async fn start(
        store: Arc<dyn Store>,
        config: ResponseConfig,
        notify: NotifyConfig,
        base_url: String,
    ) -> Result<Arc<ResponseService>, ResponseSetupError> {
        let mut registry = Registry::new();
        let base_url = if config.public_url.is_empty() {
            base_url
        } else {
            config.public_url.clone()
        };
        let notifier = notify::notifier(&notify);
        modules::register(&mut registry, store.clone(), &config, notifier.clone());
        let approver = Arc::new(approvals::StoreApprover::new(store.clone(), &config));
        let recorder = Arc::new(StoreRecorder {
            store: store.clone(),
        });
        let service = Arc::new(ResponseService {
            engine: Engine::new(registry, approver, recorder),
            store,
            base_url,
            secrets: Map::new(),
            playbooks: RwLock::new(BTreeMap::new()),
            notifier,
            runs: Arc::new(Semaphore::new(MAX_CONCURRENT_RUNS)),
            recent_updates: Mutex::new(HashMap::new()),
            last_scheduled: Mutex::new(HashMap::new()),
            config,
        });
        service.sync_directory().await?;
        service.reload().await?;
        Ok(service)
    }

    /// The configuration.
    pub fn config(&self) -> &ResponseConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Marks runs left `running` by a stopped server failed, and expires their approvals. Only
    /// for a process that runs every role (with several processes, another one may own them).
    pub async fn interrupt_leftovers(&self) {
        match self
            .store
            .interrupt_playbook_runs("interrupted: the server stopped during the run")
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(runs = n, "playbook runs interrupted by a server stop"),
            Err(e) => tracing::warn!("marking interrupted playbook runs: {e}"),
        }
        if let Ok(pending) = self
            .store
            .list_approvals(Some(dozor_model::ApprovalStatus::Pending), 500)
            .await
        {
            for a in pending.into_iter().filter(|a| a.run_id.is_some()) {
                let _ = self
                    .store
                    .decide_approval(
                        &a.id,
                        dozor_model::ApprovalStatus::Expired,
                        "dozor",
                        Some("the waiting run was interrupted by a server stop"),
                    )
                    .await;
            }
        }
    }

    /// Writes the base playbooks into a missing directory, then mirrors the directory's
    /// `*.yml`/`*.yaml` files into the store (origin `file`, keeping each one's enabled flag)
    /// and drops stored file playbooks whose file is gone.
    pub async fn sync_directory(&self) -> Result<(), ResponseSetupError> {
        let dir = self.config.playbooks_dir.clone();
        let files = tokio::task::spawn_blocking(move || read_playbook_dir(&dir))
            .await
            .map_err(|e| ResponseSetupError::Dir {
                path: self.config.playbooks_dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        let stored = self.store.list_playbooks().await?;
        for (name, source) in &files {
            let existing = stored.iter().find(|p| &p.name == name);
            if let Some(p) = existing
                && p.origin == "api"
            {
                tracing::warn!(
                    playbook = name,
                    "a file in the playbook directory has the name of a playbook made through the API; the file is ignored"
                );
                continue;
            }
            if existing.is_some_and(|p| &p.source == source) {
                continue;
            }
            self.store
                .put_playbook(&StoredPlaybook {
                    name: name.clone(),
                    source: source.clone(),
                    origin: "file".into(),
                    enabled: existing.is_none_or(|p| p.enabled),
                    updated_at: now_ms(),
                    updated_by: "file".into(),
                })
                .await?;
        }
        for p in stored.iter().filter(|p| p.origin == "file") {
            if !files.contains_key(&p.name) {
                self.store.delete_playbook(&p.name).await?;
            }
        }
        Ok(())
    }

    /// Re-reads every stored playbook and parses it.
    pub async fn reload(&self) -> Result<(), dozor_store::StoreError> {
        let stored = self.store.list_playbooks().await?;
        let mut loaded = BTreeMap::new();
        for p in stored {
            let parsed = self.parse(&p.name, &p.source);
            if let Err(e) = &parsed {
                tracing::warn!(playbook = p.name, "playbook does not parse: {e}");
            }
            loaded.insert(p.name.clone(), LoadedPlaybook { stored: p, parsed });
        }
        *self.playbooks.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(())
    }

    /// Parses a playbook's text against this server's modules.
    pub fn parse(&self, name: &str, text: &str) -> Result<Arc<Playbook>, ParseError> {
        dozor_playbook::parse(&format!("{name}.yml"), text, self.engine.catalog()).map(Arc::new)
    }

    /// Every playbook as loaded.
    pub fn playbooks(&self) -> Vec<LoadedPlaybook> {
        self.playbooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// One playbook as loaded.
    pub fn playbook(&self, name: &str) -> Option<LoadedPlaybook> {
        self.playbooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Starts a manual run: checks the playbook, the alert and the agent, stores the run and
    /// runs it in the background. The stored run (`running`).
    pub async fn run_manual(self: &Arc<Self>, req: ManualRun) -> Result<PlaybookRun, OpError> {
        let loaded = self
            .playbook(&req.playbook)
            .ok_or_else(|| OpError::NotFound(format!("playbook {}", req.playbook)))?;
        let playbook = loaded.parsed.clone().map_err(|e| OpError::Refused {
            slug: "playbook-invalid",
            message: format!("playbook {} does not parse: {e}", req.playbook),
        })?;
        let plays = loaded.manual_plays();
        if plays.is_empty() {
            return Err(OpError::Refused {
                slug: "not-manual",
                message: format!(
                    "playbook {} has no play that may be run by hand (trigger.manual: true)",
                    req.playbook
                ),
            });
        }
        let alert = match req.alert_id {
            Some(id) => Some(
                self.store
                    .get_alert(id)
                    .await?
                    .ok_or_else(|| OpError::NotFound(format!("alert {id}")))?,
            ),
            None => None,
        };
        let agent_id = req
            .agent_id
            .clone()
            .or_else(|| alert.as_ref().and_then(|a| a.agent_id.clone()));
        let agent = match &agent_id {
            Some(id) => {
                let agent = self.store.get_agent(id).await?;
                if agent.is_none() && req.agent_id.is_some() {
                    return Err(OpError::NotFound(format!("agent {id}")));
                }
                agent
            }
            None => None,
        };
        let run = self
            .store_run(
                "manual",
                &req.playbook,
                &req.requested_by,
                alert.as_ref(),
                agent_id.as_deref(),
                &req.vars,
                req.dry_run,
            )
            .await?;
        crate::ops::audited(
            self.store.as_ref(),
            &req.requested_by,
            "playbook.run",
            format!("playbook:{}", req.playbook),
            json!({"run_id": run.id, "alert_id": req.alert_id, "agent_id": agent_id, "dry_run": req.dry_run}),
        )
        .await?;
        let input = self
            .input(
                &run,
                alert,
                agent,
                req.vars,
                Some(req.requested_by),
                Some(plays),
            )
            .await;
        self.spawn_run(playbook, input);
        Ok(run)
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_run(
        &self,
        trigger: &str,
        playbook: &str,
        requested_by: &str,
        alert: Option<&Alert>,
        agent_id: Option<&str>,
        vars: &Map<String, Value>,
        dry_run: bool,
    ) -> Result<PlaybookRun, dozor_store::StoreError> {
        self.store
            .create_playbook_run(&NewPlaybookRun {
                id: uuid::Uuid::now_v7().to_string(),
                playbook: playbook.to_owned(),
                trigger: trigger.to_owned(),
                alert_id: alert.map(|a| a.id),
                agent_id: agent_id.map(str::to_owned),
                requested_by: requested_by.to_owned(),
                dry_run,
                vars: Value::Object(vars.clone()),
            })
            .await
    }

    async fn input(
        &self,
        run: &PlaybookRun,
        alert: Option<Alert>,
        agent: Option<dozor_model::Agent>,
        vars: Map<String, Value>,
        requested_by: Option<String>,
        plays: Option<Vec<usize>>,
    ) -> RunInput {
        let mut events = Vec::new();
        if let Some(a) = &alert {
            for id in a.event_ids.iter().take(RUN_EVENTS) {
                if let Ok(Some(e)) = self.store.get_event(*id).await {
                    events.push(e.doc);
                }
            }
        }
        RunInput {
            run_id: run.id.clone(),
            trigger: run.trigger.clone(),
            requested_by,
            alert,
            events,
            agent,
            extra_vars: vars,
            secrets: self.secrets.clone(),
            base_url: self.base_url.clone(),
            dry_run: run.dry_run,
            plays,
        }
    }

    fn spawn_run(self: &Arc<Self>, playbook: Arc<Playbook>, input: RunInput) {
        let service = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = service.runs.clone().acquire_owned().await else {
                return;
            };
            let record = service.engine.run(&playbook, &input).await;
            tracing::info!(
                run_id = record.run_id,
                playbook = record.playbook,
                status = ?record.status,
                steps = record.steps.len(),
                "playbook run ended"
            );
        });
    }

    /// Starts the playbooks whose alert trigger matches this change.
    pub async fn on_alert(self: &Arc<Self>, change: AlertChange, alert: &Alert) {
        let candidates: Vec<(LoadedPlaybook, Arc<Playbook>)> = self
            .playbooks()
            .into_iter()
            .filter(|p| p.stored.enabled)
            .filter_map(|p| p.parsed.clone().ok().map(|parsed| (p, parsed)))
            .collect();
        if candidates.is_empty() {
            return;
        }
        let mut agent: Option<Option<dozor_model::Agent>> = None;
        for (loaded, playbook) in candidates {
            let needs_host = playbook.plays.iter().any(|p| {
                p.trigger
                    .as_ref()
                    .and_then(|t| t.alert.as_ref())
                    .is_some_and(|a| !a.host.is_empty())
            });
            if needs_host && agent.is_none() {
                agent = Some(match &alert.agent_id {
                    Some(id) => self.store.get_agent(id).await.ok().flatten(),
                    None => None,
                });
            }
            let host = agent
                .as_ref()
                .and_then(|a| a.as_ref())
                .map(|a| a.facts.hostname.clone());
            let plays: Vec<usize> = playbook
                .plays
                .iter()
                .enumerate()
                .filter(|(_, play)| {
                    play.trigger
                        .as_ref()
                        .and_then(|t| t.alert.as_ref())
                        .is_some_and(|t| t.matches(change, alert, host.as_deref()))
                })
                .map(|(i, _)| i)
                .collect();
            if plays.is_empty() {
                continue;
            }
            if change == AlertChange::Updated {
                let mut recent = self
                    .recent_updates
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                recent.retain(|_, at| at.elapsed() < UPDATE_COOLDOWN);
                let key = (loaded.stored.name.clone(), alert.id);
                if recent.contains_key(&key) {
                    continue;
                }
                recent.insert(key, Instant::now());
            }
            let run = match self
                .store_run(
                    "alert",
                    &loaded.stored.name,
                    "trigger",
                    Some(alert),
                    alert.agent_id.as_deref(),
                    &Map::new(),
                    false,
                )
                .await
            {
                Ok(run) => run,
                Err(e) => {
                    tracing::error!(
                        playbook = loaded.stored.name,
                        "cannot record a playbook run: {e}"
                    );
                    continue;
                }
            };
            crate::audit::append_audit(
                self.store.as_ref(),
                "trigger",
                "playbook.run",
                format!("playbook:{}", loaded.stored.name),
                json!({"run_id": run.id, "alert_id": alert.id, "change": change}),
            )
            .await;
            let agent = match &alert.agent_id {
                Some(id) => self.store.get_agent(id).await.ok().flatten(),
                None => None,
            };
            let input = self
                .input(
                    &run,
                    Some(alert.clone()),
                    agent,
                    Map::new(),
                    None,
                    Some(plays),
                )
                .await;
            self.spawn_run(playbook, input);
        }
    }

    /// Tells the approvers about the approval requests nobody told them about yet (each once,
    /// whichever process claims it).
    pub async fn tell_approvers(&self) {
        let c = &self.config;
        if c.approvers_email.is_empty()
            && c.approvers_telegram_chat.is_empty()
            && c.approvers_webhook.is_empty()
        {
            return;
        }
        let claimed = match self.store.claim_approvals_to_notify(now_ms()).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!("claiming approvals to notify: {e}");
                return;
            }
        };
        let inbox = format!("{}/ui/approvals", self.base_url);
        for approval in claimed {
            let failures = self.notifier.tell_approvers(c, &approval, &inbox).await;
            if failures.is_empty() {
                tracing::info!(approval_id = approval.id, "approvers told");
            } else {
                tracing::warn!(
                    approval_id = approval.id,
                    ?failures,
                    "telling the approvers failed"
                );
                crate::audit::append_audit(
                    self.store.as_ref(),
                    "dozor",
                    "approval.notify_failed",
                    format!("approval:{}", approval.id),
                    json!({"failures": failures}),
                )
                .await;
            }
        }
    }

    /// Starts the scheduled plays that are due at `now` (ms).
    pub async fn on_tick(self: &Arc<Self>, now: i64) {
        use chrono::{Datelike, Timelike};
        let Some(at) = chrono::DateTime::from_timestamp_millis(now) else {
            return;
        };
        for loaded in self.playbooks().into_iter().filter(|p| p.stored.enabled) {
            let Ok(playbook) = loaded.parsed.clone() else {
                continue;
            };
            let mut due = Vec::new();
            for (i, play) in playbook.plays.iter().enumerate() {
                let Some(schedule) = play.trigger.as_ref().and_then(|t| t.schedule.as_ref()) else {
                    continue;
                };
                let key = (loaded.stored.name.clone(), i);
                let mut last = self
                    .last_scheduled
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                let previous = last.get(&key).copied();
                let is_due = match schedule {
                    Schedule::Every(every) => previous.is_none_or(|p| {
                        now - p >= i64::try_from(every.as_millis()).unwrap_or(i64::MAX)
                    }),
                    Schedule::Cron(cron) => {
                        cron.matches(
                            at.minute(),
                            at.hour(),
                            at.day(),
                            at.month(),
                            at.weekday().num_days_from_sunday(),
                        ) && previous.is_none_or(|p| now / 60_000 != p / 60_000)
                    }
                };
                if is_due {
                    last.insert(key, now);
                    due.push(i);
                }
            }
            if due.is_empty() {
                continue;
            }
            let run = match self
                .store_run(
                    "schedule",
                    &loaded.stored.name,
                    "schedule",
                    None,
                    None,
                    &Map::new(),
                    false,
                )
                .await
            {
                Ok(run) => run,
                Err(e) => {
                    tracing::error!(
                        playbook = loaded.stored.name,
                        "cannot record a playbook run: {e}"
                    );
                    continue;
                }
            };
            let input = self
                .input(&run, None, None, Map::new(), None, Some(due))
                .await;
            self.spawn_run(playbook, input);
        }
    }
}

/// Reads `*.yml` / `*.yaml` in the directory (creating it with the base playbooks when it
/// does not exist): name → text.
fn read_playbook_dir(dir: &Path) -> Result<BTreeMap<String, String>, ResponseSetupError> {
    let err = |source| ResponseSetupError::Dir {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(err)?;
        for (name, text) in dozor_playbook::BASE_PLAYBOOKS {
            std::fs::write(dir.join(format!("{name}.yml")), text).map_err(err)?;
        }
    }
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !matches!(ext, "yml" | "yaml") || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if dozor_store::check_playbook_name(name).is_err() {
            tracing::warn!(file = %path.display(), "playbook file name not usable; skipped");
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) if text.len() <= dozor_store::MAX_PLAYBOOK_BYTES => {
                files.insert(name.to_owned(), text);
            }
            Ok(_) => tracing::warn!(file = %path.display(), "playbook file too large; skipped"),
            Err(e) => tracing::warn!(file = %path.display(), "cannot read playbook file: {e}"),
        }
    }
    Ok(files)
}

/// Stores runs and steps as they happen, and audits each run's end.
struct StoreRecorder {
    store: Arc<dyn Store>,
}

#[async_trait]
impl RunRecorder for StoreRecorder {
    async fn step(&self, step: &StepRecord) {
        let status = match step.status {
            StepStatus::Ok => "ok",
            StepStatus::Failed => "failed",
            StepStatus::Ignored => "ignored",
            StepStatus::Skipped => "skipped",
            StepStatus::DryRun => "dry_run",
        };
        let record = serde_json::to_value(step).unwrap_or(Value::Null);
        let seq = u32::try_from(step.seq).unwrap_or(u32::MAX);
        if let Err(e) = self
            .store
            .add_playbook_step(&step.run_id, seq, status, &record)
            .await
        {
            tracing::error!(run_id = step.run_id, "cannot store a playbook step: {e}");
        }
    }

    async fn run_finished(&self, run: &RunRecord) {
        let status = match run.status {
            RunStatus::Succeeded => PlaybookRunStatus::Succeeded,
            RunStatus::Failed => PlaybookRunStatus::Failed,
        };
        if let Err(e) = self
            .store
            .finish_playbook_run(&run.run_id, status, run.error.as_deref())
            .await
        {
            tracing::error!(
                run_id = run.run_id,
                "cannot store a playbook run's end: {e}"
            );
        }
        // Audited as whoever started the run ("trigger", "schedule" or a person).
        let actor = match self.store.get_playbook_run(&run.run_id).await {
            Ok(Some(r)) => r.requested_by,
            _ => "dozor".to_owned(),
        };
        crate::audit::append_audit(
            self.store.as_ref(),
            &actor,
            "playbook.run.finished",
            format!("playbook-run:{}", run.run_id),
            json!({"playbook": run.playbook, "status": status, "error": run.error, "steps": run.steps.len(), "dry_run": run.dry_run}),
        )
        .await;
    }
}

/// The background work of the response service: alert triggers (from the pipeline's
/// notices), schedules (every 30 s) and approval expiry, until `stop`.
pub async fn run_triggers(
    service: Arc<ResponseService>,
    notices: tokio::sync::broadcast::Receiver<dozor_pipeline::AlertNotice>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut approvers = tokio::time::interval(Duration::from_secs(1));
    approvers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut notices = Some(notices);
    loop {
        let mut closed = false;
        tokio::select! {
            notice = async {
                match notices.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match notice {
                Ok(n) => service.on_alert(n.change, &n.alert).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::error!(missed, "playbook triggers fell behind the alert notices; some alerts started no playbook");
                }
                // No pipeline in this process: schedules and expiry only.
                Err(tokio::sync::broadcast::error::RecvError::Closed) => closed = true,
            },
            _ = approvers.tick() => service.tell_approvers().await,
            _ = tick.tick() => {
                let now = now_ms();
                service.on_tick(now).await;
                approvals::expire_due(service.store.as_ref(), now).await;
            }
            _ = stop.changed() => return,
        }
        if closed {
            notices = None;
        }
    }
}
