//! Threat intelligence (issue 14): sources synced into the store, the indicator snapshot the
//! pipeline matches with, retro-hunts over stored events, and sightings sent back to MISP.
//!
//! ```text
//! schedule / API / CLI ─► sync(source) ─► dozor-intel-sources ─► warninglists ─► store.upsert_iocs
//!                                                                                   │
//!            refresher (every process with workers) ◄── store changed ◄─────────────┤
//!                 └─► IntelSnapshot ─► IntelHandle ─► pipeline workers               │
//!                                                                                   ▼
//!                                       retro-hunt: new indicators × stored events ─► matches, alerts
//! matches with a pending sighting ─► MISP sightings/add (every few seconds)
//! ```
//!
//! [`exchange`]: documents imported whole, STIX and MISP feed exports; [`hash_rules`]: the
//! agents' YARA rule of known-bad hashes.

pub mod exchange;
pub mod hash_rules;
mod retro;
mod snapshot;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dozor_intel::{Ioc, IocKind, Warninglists};
use dozor_intel_sources::{SourceConfig, SourceSpec, SyncBatch};
use dozor_store::{IntelSource, IntelSyncStatus, NewIoc, Store, StoreError, now_ms};
use serde_json::Value;
use tokio::sync::{Notify, broadcast, watch};

pub use snapshot::{load_snapshot, refresher};

use crate::config::IntelConfig;

/// Wakes the snapshot refreshers of this process at once after indicators changed here
/// (process-wide: every server in a test process rebuilds, which is harmless).
pub static CHANGED: std::sync::LazyLock<Notify> = std::sync::LazyLock::new(Notify::new);

/// Sightings that could not be sent are retried for this many days after their match.
const SIGHTING_RETRY_DAYS: i64 = 7;
/// How many skipped objects a sync status keeps as examples.
const SKIPPED_EXAMPLES: usize = 100;
/// The source name of indicators added by hand.
pub const MANUAL_SOURCE: &str = "manual";

/// Why an intelligence operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IntelError {
    #[error("no intelligence source named {0:?}")]
    NoSuchSource(String),
    #[error("source {name}: {reason}")]
    BadSpec { name: String, reason: String },
    #[error("source {0} is syncing already")]
    Busy(String),
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The intelligence side of a server process with the API.
pub struct IntelService {
    store: Arc<dyn Store>,
    config: IntelConfig,
    warninglists: Arc<Warninglists>,
    syncing: Mutex<HashSet<String>>,
    alert_window: Duration,
    notices: broadcast::Sender<dozor_pipeline::AlertNotice>,
}

impl std::fmt::Debug for IntelService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntelService")
            .field("config", &self.config)
            .field("warninglists", &self.warninglists.len())
            .finish_non_exhaustive()
    }
}

/// Loads the MISP warninglists below `dir`: every `list.json` (the repository's
/// `lists/<name>/list.json`) or other `*.json` file. A list that does not load is logged with
/// its file and the reason; the others load.
pub fn load_warninglists(dir: &Path) -> Warninglists {
    let mut files = Vec::new();
    collect_json(dir, 0, &mut files);
    files.sort();
    let texts: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .filter_map(|p| match std::fs::read(&p) {
            Ok(bytes) => Some((p.display().to_string(), bytes)),
            Err(e) => {
                tracing::warn!("warninglist {}: {e}", p.display());
                None
            }
        })
        .collect();
    let (lists, errors) = Warninglists::load(texts.iter().map(|(o, b)| (o.as_str(), b.as_slice())));
    for e in errors {
        tracing::warn!("{e}");
    }
    tracing::info!(lists = lists.len(), dir = %dir.display(), "warninglists loaded");
    lists
}

fn collect_json(dir: &Path, depth: u32, out: &mut Vec<std::path::PathBuf>) {
    if depth > 3 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_json(&path, depth + 1, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

/// A stored source's settings as `dozor-intel-sources` reads them (the name is the stored
/// one). Unknown keys, a missing `kind` or bad values are [`IntelError::BadSpec`].
pub fn parse_spec(name: &str, spec: &Value) -> Result<SourceSpec, IntelError> {
    let mut spec = spec.clone();
    if let Some(obj) = spec.as_object_mut() {
        obj.insert("name".into(), Value::String(name.to_owned()));
    } else {
        return Err(IntelError::BadSpec {
            name: name.into(),
            reason: "the settings must be a JSON object with a `kind`".into(),
        });
    }
    serde_json::from_value(spec).map_err(|e| IntelError::BadSpec {
        name: name.into(),
        reason: e.to_string(),
    })
}

/// A source's local path must be below `feeds_dir` (both resolved: no `..` or link leads
/// out); URLs are not checked here.
pub fn check_location(spec: &SourceSpec, feeds_dir: &Path) -> Result<(), IntelError> {
    let location = match &spec.config {
        SourceConfig::MispFeed { location }
        | SourceConfig::StixBundle { location }
        | SourceConfig::Csv { location, .. }
        | SourceConfig::Freetext { location, .. } => location,
        SourceConfig::MispRest { .. } | SourceConfig::Taxii { .. } => return Ok(()),
    };
    if location.starts_with("https://") || location.starts_with("http://") {
        return Ok(());
    }
    let refuse = |why: String| IntelError::BadSpec {
        name: spec.name.clone(),
        reason: why,
    };
    let root = feeds_dir.canonicalize().map_err(|e| {
        refuse(format!(
            "local sources must lie below intel.feeds_dir ({}), which can't be read: {e}",
            feeds_dir.display()
        ))
    })?;
    let path = Path::new(location);
    let path = if path.is_relative() {
        root.join(path)
    } else {
        path.to_path_buf()
    };
    let resolved = path
        .canonicalize()
        .map_err(|e| refuse(format!("location {location}: {e}")))?;
    if resolved.starts_with(&root) {
        Ok(())
    } else {
        Err(refuse(format!(
            "location {location} is not below intel.feeds_dir ({}): copy the feed there",
            root.display()
        )))
    }
}

/// A relative local location is below `feeds_dir` (as [`check_location`] checked it), not
/// below the process's working directory.
pub fn resolve_location(spec: &mut SourceSpec, feeds_dir: &Path) {
    if let SourceConfig::MispFeed { location }
    | SourceConfig::StixBundle { location }
    | SourceConfig::Csv { location, .. }
    | SourceConfig::Freetext { location, .. } = &mut spec.config
        && !location.starts_with("https://")
        && !location.starts_with("http://")
        && Path::new(location.as_str()).is_relative()
    {
        *location = feeds_dir.join(&*location).display().to_string();
    }
}

/// The settings with their secrets (`key`, `password`, `token`) shown as `***`.
pub fn redact_spec(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if let Some(obj) = spec.as_object_mut() {
        for key in ["key", "password", "token"] {
            if let Some(v) = obj.get_mut(key)
                && v.is_string()
            {
                *v = Value::String("***".into());
            }
        }
    }
    spec
}

/// Whether a source is a MISP server (sightings go back to it).
pub fn is_misp_rest(spec: &Value) -> bool {
    spec.get("kind").and_then(Value::as_str) == Some("misp_rest")
}

/// The store's form of an indicator, with its warninglist hits.
pub fn new_ioc(ioc: &Ioc, source: &str, warninglists: &Warninglists) -> NewIoc {
    let hits = warninglists
        .hits(
            ioc.misp_type.as_deref().unwrap_or(ioc.kind.as_str()),
            &ioc.value,
        )
        .into_iter()
        .map(str::to_owned)
        .collect();
    NewIoc {
        kind: ioc.kind.as_str().to_owned(),
        value: ioc.value.clone(),
        misp_type: ioc.misp_type.clone(),
        to_ids: ioc.to_ids,
        tags: ioc.tags.clone(),
        confidence: ioc.confidence,
        first_seen: ioc.first_seen,
        last_seen: ioc.last_seen,
        expires: ioc.expires,
        object_ids: ioc
            .sources
            .iter()
            .filter(|s| s.name == source || ioc.sources.len() == 1)
            .flat_map(|s| s.object_ids.iter().cloned())
            .collect(),
        warninglists: hits,
    }
}

/// A manual indicator: kind, raw value, context.
#[derive(Debug, Clone)]
pub struct ManualIoc {
    pub kind: IocKind,
    pub value: String,
    pub tags: Vec<String>,
    pub confidence: Option<u8>,
    pub to_ids: bool,
    pub expires: Option<i64>,
    pub comment: Option<String>,
}

/// One source's sync under way: released when dropped, so a sync whose request was
/// cancelled (the client went away) does not leave its source busy for good.
struct SyncClaim<'a> {
    syncing: &'a Mutex<HashSet<String>>,
    name: String,
}

impl<'a> SyncClaim<'a> {
    fn take(syncing: &'a Mutex<HashSet<String>>, name: &str) -> Result<Self, IntelError> {
        if !syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned())
        {
            return Err(IntelError::Busy(name.into()));
        }
        Ok(SyncClaim {
            syncing,
            name: name.to_owned(),
        })
    }
}

impl Drop for SyncClaim<'_> {
    fn drop(&mut self) {
        self.syncing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

impl IntelService {
    /// The service (warninglists read from `config.warninglists_dir`).
    pub fn new(
        store: Arc<dyn Store>,
        config: IntelConfig,
        alert_window: Duration,
        notices: broadcast::Sender<dozor_pipeline::AlertNotice>,
    ) -> Arc<IntelService> {
        let warninglists = Arc::new(match &config.warninglists_dir {
            Some(dir) => load_warninglists(dir),
            None => Warninglists::default(),
        });
        Arc::new(IntelService {
            store,
            config,
            warninglists,
            syncing: Mutex::new(HashSet::new()),
            alert_window,
            notices,
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn config(&self) -> &IntelConfig {
        &self.config
    }

    pub fn warninglists(&self) -> &Warninglists {
        &self.warninglists
    }

    /// Runs one sync of a stored source now: fetch from its cursor, store, retro-hunt, and
    /// record the outcome (a failure too). At most one sync per source at a time.
    pub async fn sync(&self, name: &str) -> Result<IntelSyncStatus, IntelError> {
        let source = self
            .store
            .get_intel_source(name)
            .await?
            .ok_or_else(|| IntelError::NoSuchSource(name.into()))?;
        let mut spec = parse_spec(name, &source.spec)?;
        check_location(&spec, &self.config.feeds_dir)?;
        resolve_location(&mut spec, &self.config.feeds_dir);
        let _claim = SyncClaim::take(&self.syncing, name)?;
        self.sync_locked(&source, &spec).await
    }

    async fn sync_locked(
        &self,
        source: &IntelSource,
        spec: &SourceSpec,
    ) -> Result<IntelSyncStatus, IntelError> {
        let started_at = now_ms();
        let fetched = spec.sync(source.cursor.as_deref()).await;
        let (status, cursor) = match fetched {
            Ok(batch) => {
                let cursor = batch.cursor.clone();
                let status = self
                    .store_batch(&source.name, batch, started_at, source.last_sync.as_ref())
                    .await?;
                (status, cursor)
            }
            Err(e) => (
                IntelSyncStatus {
                    started_at,
                    finished_at: now_ms(),
                    status: "failed".into(),
                    error: Some(e.to_string()),
                    ..IntelSyncStatus::default()
                },
                None,
            ),
        };
        match &status.error {
            Some(e) => tracing::warn!(source = %source.name, "intel sync failed: {e}"),
            None => tracing::info!(
                source = %source.name,
                added = status.added,
                updated = status.updated,
                skipped = status.skipped,
                ignored = status.ignored,
                retro_matches = status.retro_matches,
                took_ms = status.finished_at - status.started_at,
                "intel source synced"
            ),
        }
        self.store
            .record_intel_sync(&source.name, &status, cursor.as_deref())
            .await?;
        Ok(status)
    }

    /// Stores one batch of a source (a sync or an import) and retro-hunts its new indicators.
    pub async fn store_batch(
        &self,
        source: &str,
        batch: SyncBatch,
        started_at: i64,
        previous: Option<&IntelSyncStatus>,
    ) -> Result<IntelSyncStatus, IntelError> {
        let now = now_ms();
        let mut batch = batch;
        // The store refuses a whole batch with a value it can't hold: those are reported
        // instead and the rest is stored.
        let (kept, long): (Vec<Ioc>, Vec<Ioc>) =
            std::mem::take(&mut batch.iocs).into_iter().partition(|i| {
                i.value.len() <= dozor_store::MAX_IOC_VALUE
                    && !i.value.trim().is_empty()
                    && !i.value.contains('\0')
            });
        batch.iocs = kept;
        for ioc in long {
            batch.skipped.push(dozor_intel_sources::Skipped {
                object: ioc
                    .sources
                    .iter()
                    .flat_map(|s| s.object_ids.first())
                    .next()
                    .cloned()
                    .unwrap_or_else(|| ioc.kind.as_str().to_owned()),
                reason: format!(
                    "{} value of {} bytes: empty, with NUL or longer than the {} the store keeps",
                    ioc.kind,
                    ioc.value.len(),
                    dozor_store::MAX_IOC_VALUE
                ),
            });
        }
        let iocs: Vec<NewIoc> = batch
            .iocs
            .iter()
            .map(|i| new_ioc(i, source, &self.warninglists))
            .collect();
        let warninglisted = iocs.iter().filter(|i| !i.warninglists.is_empty()).count() as u64;
        let report = self.store.upsert_iocs(source, &iocs, now).await?;
        let expired = match previous {
            Some(p) => {
                self.store
                    .count_expired_iocs(source, p.finished_at, now)
                    .await?
            }
            None => 0,
        };
        CHANGED.notify_waiters();
        let retro_matches = if report.added_ids.is_empty() || self.config.retro_hunt_days == 0 {
            0
        } else {
            match self.retro_hunt(&report.added_ids).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(source, "retro-hunt failed: {e}");
                    0
                }
            }
        };
        let skipped = batch.skipped.len() as u64;
        Ok(IntelSyncStatus {
            started_at,
            finished_at: now_ms(),
            status: if skipped == 0 { "ok" } else { "partial" }.into(),
            added: report.added,
            updated: report.updated,
            unchanged: report.unchanged,
            expired,
            skipped,
            skipped_examples: batch
                .skipped
                .iter()
                .take(SKIPPED_EXAMPLES)
                .map(|s| format!("{}: {}", s.object, s.reason))
                .collect(),
            ignored: batch.ignored_total(),
            ignored_reasons: std::mem::take(&mut batch.ignored),
            warninglisted,
            retro_matches,
            error: None,
        })
    }

    /// Adds indicators by hand (source `manual`).
    pub async fn add_manual(&self, iocs: &[ManualIoc]) -> Result<IntelSyncStatus, IntelError> {
        let mut batch = SyncBatch::default();
        for m in iocs {
            let mut ioc =
                Ioc::new(m.kind, &m.value).map_err(|e| IntelError::Invalid(e.to_string()))?;
            ioc.tags = m.tags.clone();
            ioc.confidence = m.confidence;
            ioc.to_ids = m.to_ids;
            ioc.expires = m.expires;
            ioc.sources = vec![dozor_intel::IocSource {
                name: MANUAL_SOURCE.into(),
                object_ids: m.comment.iter().map(|c| format!("comment: {c}")).collect(),
            }];
            batch.iocs.push(ioc);
        }
        self.store_batch(MANUAL_SOURCE, batch, now_ms(), None).await
    }

    /// The sources whose schedule is due at `now`.
    async fn due_sources(&self, now: i64) -> Vec<String> {
        match self.store.list_intel_sources().await {
            Ok(sources) => sources
                .into_iter()
                .filter(|s| s.enabled && s.interval_secs > 0)
                .filter(|s| {
                    s.last_sync.as_ref().is_none_or(|l| {
                        l.finished_at + (s.interval_secs as i64).saturating_mul(1000) <= now
                    })
                })
                .map(|s| s.name)
                .collect(),
            Err(e) => {
                tracing::warn!("listing intel sources: {e}");
                Vec::new()
            }
        }
    }

    /// The misp_rest sources (by name) with their client settings.
    async fn misp_sources(&self) -> Vec<(String, SourceSpec)> {
        match self.store.list_intel_sources().await {
            Ok(sources) => sources
                .into_iter()
                .filter(|s| is_misp_rest(&s.spec))
                .filter_map(|s| parse_spec(&s.name, &s.spec).ok().map(|p| (s.name, p)))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Sends the pending sightings to their MISP servers; how many went.
    pub async fn push_sightings(&self) -> Result<usize, IntelError> {
        let pending = self.store.pending_sightings(200).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let servers = self.misp_sources().await;
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut none = Vec::new();
        // A server that failed once this round is not asked again until the retry: one
        // timeout per unreachable MISP, not one per match.
        let mut down: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for m in pending {
            let Some(ioc) = self.store.get_ioc(m.ioc_id).await? else {
                none.push(m.id);
                continue;
            };
            let mut delivered = false;
            let mut tried = false;
            for src in &ioc.sources {
                let Some((server, spec)) = servers.iter().find(|(n, _)| *n == src.name) else {
                    continue;
                };
                let SourceConfig::MispRest { url, key, .. } = &spec.config else {
                    continue;
                };
                tried = true;
                if down.contains(server.as_str()) {
                    continue;
                }
                let client = match dozor_intel_sources::misp::MispClient::new(
                    url,
                    &key.0,
                    &spec.http.settings(),
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(source = %src.name, "sighting: {e}");
                        continue;
                    }
                };
                let timestamp = m.event_ts / 1000;
                let sighting = match src
                    .object_ids
                    .iter()
                    .find_map(|o| o.strip_prefix("misp-attribute:"))
                {
                    Some(uuid) => {
                        dozor_intel_sources::misp::Sighting::of_attribute(uuid, timestamp)
                    }
                    None => dozor_intel_sources::misp::Sighting::of_value(&ioc.value, timestamp),
                };
                match client.add_sighting(&sighting).await {
                    Ok(()) => delivered = true,
                    Err(e) => {
                        tracing::warn!(source = %src.name, ioc = %ioc.value, "sighting not sent (tried again later): {e}");
                        down.insert(server.as_str());
                    }
                }
            }
            if delivered {
                sent.push(m.id);
            } else if tried {
                failed.push(m.id);
            } else {
                none.push(m.id);
            }
        }
        for (ids, status) in [(&sent, "sent"), (&failed, "failed"), (&none, "none")] {
            if !ids.is_empty() {
                self.store.set_sighting_status(ids, status).await?;
            }
        }
        Ok(sent.len())
    }

    /// Makes the failed sightings of the last [`SIGHTING_RETRY_DAYS`] days pending again; how
    /// many.
    pub async fn retry_failed_sightings(&self) -> Result<u64, IntelError> {
        let since = now_ms() - SIGHTING_RETRY_DAYS * 86_400_000;
        let n = self.store.requeue_failed_sightings(since).await?;
        if n > 0 {
            tracing::info!(sightings = n, "failed sightings queued again");
        }
        Ok(n)
    }
}

/// The background work of the intelligence side: scheduled syncs (checked every 10 s) and
/// sightings (every 5 s), until `stop`.
pub async fn run_background(service: Arc<IntelService>, mut stop: watch::Receiver<bool>) {
    let mut sync_tick = tokio::time::interval(Duration::from_secs(10));
    let mut sighting_tick = tokio::time::interval(Duration::from_secs(5));
    let retry_every = service.config.sighting_retry;
    let mut retry_tick =
        tokio::time::interval_at(tokio::time::Instant::now() + retry_every, retry_every);
    loop {
        tokio::select! {
            _ = sync_tick.tick() => {
                for name in service.due_sources(now_ms()).await {
                    let s = service.clone();
                    // Each source on its own task: a slow feed does not hold up the others.
                    tokio::spawn(async move {
                        if let Err(e) = s.sync(&name).await && !matches!(e, IntelError::Busy(_)) {
                            tracing::warn!(source = %name, "scheduled intel sync: {e}");
                        }
                    });
                }
            }
            _ = sighting_tick.tick() => {
                if service.config.sightings
                    && let Err(e) = service.push_sightings().await
                {
                    tracing::warn!("sightings: {e}");
                }
            }
            _ = retry_tick.tick() => {
                if service.config.sightings
                    && let Err(e) = service.retry_failed_sightings().await
                {
                    tracing::warn!("sighting retry: {e}");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
