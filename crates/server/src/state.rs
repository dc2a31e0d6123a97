//! The state every request handler shares, and the interfaces through which the server
//! reaches the rest of Dozor (the API's store and rule catalog, readiness checks). Below every
//! handler module: nothing here imports a handler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};

use crate::auth::TokenVerifier;
use crate::boxed::BoxFuture;
use crate::config::{Limits, ProcessRole};
use crate::metrics::Metrics;
use crate::schema::EventValidator;
use crate::sink::IngestSink;

/// EVTX / XML uploads decoded at once; more wait their turn.
pub const EVTX_DECODERS: usize = 2;

/// Something `/readyz` checks besides the sink (the store, the rule set, ...).
pub trait ReadinessCheck: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// State shared by every request.
pub struct AppState {
    pub limits: Limits,
    pub role: ProcessRole,
    pub sink: Arc<dyn IngestSink>,
    pub tokens: Arc<dyn TokenVerifier>,
    pub validator: Arc<EventValidator>,
    pub metrics: Metrics,
    pub ca_pem: Arc<str>,
    pub tmp_dir: PathBuf,
    pub evtx_permits: Arc<Semaphore>,
    /// Disk space of EVTX uploads under way (limits.evtx_scratch_bytes).
    pub evtx_scratch: Arc<crate::disk_quota::DiskQuota>,
    /// Bytes of ingest bodies being parsed at once (limits.ingest_parse_bytes).
    pub parse_permits: Arc<Semaphore>,
    pub readiness: Vec<Arc<dyn ReadinessCheck>>,
    /// False until the server accepts connections and again once it is shutting down.
    pub accepting: Arc<AtomicBool>,
    pub openapi: Arc<str>,
    /// The operator API (`/api/v1/events`, alerts, rules, stats); `None` answers 503.
    pub api: Option<Arc<ApiState>>,
    /// Enrollment, agent certificates and heartbeats; `None` (no TLS or no store) answers 503.
    pub agents: Option<Arc<crate::agents::AgentRegistry>>,
    /// Serving HTTPS (cookies get the Secure flag).
    pub tls: bool,
    /// Failed logins per user name and address.
    pub login_throttle: crate::login_throttle::LoginThrottle,
    /// Turns true when the server starts shutting down (ends live streams).
    pub closing: watch::Receiver<bool>,
    /// Sample scanning and the YARA rules (`None` on worker-only processes).
    pub scan: Option<Arc<crate::scan::ScanService>>,
    /// Playbooks, approvals and response actions (`None` without the API's store).
    pub response: Option<Arc<crate::response::ResponseService>>,
    /// Threat-intelligence sources, indicators and matches (`None` without the API's store).
    pub intel: Option<Arc<crate::intel::IntelService>>,
    /// Vulnerability results, scans, inventories and scan jobs (`None` without the API's
    /// store).
    pub vulns: Option<Arc<crate::vulns::VulnService>>,
    /// Behavioural analytics: the models, their training and scoring job (`None` without the
    /// API's store).
    pub anomaly: Option<Arc<crate::anomaly::AnomalyService>>,
}

/// Facts about the connection a request came on, in the request's extensions.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    /// The client's certificate chain, when it presented one issued by the built-in CA
    /// (agents after enrollment).
    pub client_certificates: Vec<CertificateDer<'static>>,
}

/// What the API needs from the rest of Dozor. Put it in [`crate::Services::api`]; without it
/// the routes below answer 503 `api-not-configured`.
pub struct ApiState {
    /// Events, alerts, rule state, audit log.
    pub store: Arc<dyn dozor_store::Store>,
    /// The loaded rules.
    pub rules: Arc<dyn RuleCatalog>,
    /// Alerts opened or updated by the pipeline; `GET /api/v1/alerts/stream` subscribes.
    pub notices: tokio::sync::broadcast::Sender<dozor_pipeline::AlertNotice>,
    /// The pipeline's counters: exported on `/metrics` and in `/api/v1/stats` when set.
    pub pipeline_stats: Option<Arc<dozor_pipeline::PipelineStats>>,
    /// Agent status changes (heartbeats, going offline); `GET /api/v1/agents/stream`
    /// subscribes.
    pub agent_notices: tokio::sync::broadcast::Sender<crate::agents::AgentNotice>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("backend", &self.store.backend())
            .field("receivers", &self.notices.receiver_count())
            .field("pipeline_stats", &self.pipeline_stats.is_some())
            .finish_non_exhaustive()
    }
}

/// The rules the pipeline runs, as the API sees them (implemented over the loaded
/// `dozor_sigma::Detector`; [`RuleInfo::from_meta`], [`RuleInfo::from_report`] and
/// [`ReloadReport::from_rules`] do the conversions).
pub trait RuleCatalog: Send + Sync + 'static {
    /// Every rule document: detections, correlations and filters, including the ones that
    /// could not be used (their `outcome` says why).
    fn list(&self) -> Vec<RuleInfo>;
    /// The source text of the rule with this [`RuleInfo::id`].
    fn yaml(&self, id: &str) -> Option<String>;
    /// Re-reads the rule directories and swaps the rule set in.
    fn reload(&self) -> BoxFuture<'_, Result<ReloadReport, String>>;
    /// Indices into `events` of the events the rule given as YAML matches; `Err` says why the
    /// rule can't be used. CPU-bound: the API calls it on a blocking thread.
    fn test(&self, rule_yaml: &str, events: Vec<serde_json::Value>) -> Result<Vec<usize>, String>;
}

/// One rule document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleInfo {
    /// The id its detections and alerts carry: the rule's `id`, or its title when it has none.
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `informational`, `low`, `medium`, `high` or `critical`; absent when the document could
    /// not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// `stable`, `test`, `experimental`, `deprecated` or `unsupported`; absent when the
    /// document could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The file it was read from.
    pub path: String,
    #[serde(default)]
    pub logsource: RuleLogSource,
    /// `detection`, `correlation` or `filter`.
    pub kind: String,
    /// `active` (runs), `unrouted` (no event source matches its logsource), `unsupported` or
    /// `invalid`.
    pub outcome: String,
    /// Why it is not active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rule's `logsource`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleLogSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// What a reload found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReloadReport {
    /// Rule documents read.
    pub documents: usize,
    pub active: usize,
    pub unrouted: usize,
    pub unsupported: usize,
    pub invalid: usize,
    /// `path: reason` of documents that can't be used (at most 100).
    #[serde(default)]
    pub problems: Vec<String>,
}

/// Most `problems` a [`ReloadReport`] carries.
const MAX_RELOAD_PROBLEMS: usize = 100;

fn outcome_parts(outcome: &dozor_sigma::Outcome) -> (&'static str, Option<String>) {
    use dozor_sigma::Outcome;
    match outcome {
        Outcome::Active => ("active", None),
        Outcome::Unrouted(r) => ("unrouted", Some(r.clone())),
        Outcome::Unsupported(r) => ("unsupported", Some(r.clone())),
        Outcome::Invalid(r) => ("invalid", Some(r.clone())),
    }
}

fn kind_name(kind: dozor_sigma::RuleKind) -> &'static str {
    match kind {
        dozor_sigma::RuleKind::Detection => "detection",
        dozor_sigma::RuleKind::Correlation => "correlation",
        dozor_sigma::RuleKind::Filter => "filter",
    }
}

impl RuleInfo {
    /// A rule that was parsed (whatever became of it).
    pub fn from_meta(
        meta: &dozor_sigma::RuleMeta,
        kind: dozor_sigma::RuleKind,
        outcome: &dozor_sigma::Outcome,
    ) -> RuleInfo {
        let (outcome, reason) = outcome_parts(outcome);
        RuleInfo {
            id: if meta.id.is_empty() {
                meta.title.clone()
            } else {
                meta.id.clone()
            },
            title: meta.title.clone(),
            description: meta.description.clone(),
            level: Some(meta.level.to_string()),
            status: Some(meta.status.to_string()),
            tags: meta.tags.clone(),
            author: meta.author.clone(),
            path: meta.path.display().to_string(),
            logsource: RuleLogSource {
                product: meta.logsource.product.clone(),
                category: meta.logsource.category.clone(),
                service: meta.logsource.service.clone(),
            },
            kind: kind_name(kind).to_owned(),
            outcome: outcome.to_owned(),
            reason,
        }
    }

    /// A document known only from its load report (e.g. one that is not valid Sigma).
    pub fn from_report(report: &dozor_sigma::RuleReport) -> RuleInfo {
        let (outcome, reason) = outcome_parts(&report.outcome);
        let id = if report.id.is_empty() {
            report.title.clone()
        } else {
            report.id.clone()
        };
        RuleInfo {
            id: if id.is_empty() {
                report.path.display().to_string()
            } else {
                id
            },
            title: report.title.clone(),
            description: String::new(),
            level: None,
            status: None,
            tags: Vec::new(),
            author: String::new(),
            path: report.path.display().to_string(),
            logsource: RuleLogSource::default(),
            kind: kind_name(report.kind).to_owned(),
            outcome: outcome.to_owned(),
            reason,
        }
    }
}

impl ReloadReport {
    /// Counts a rule set's documents by outcome.
    pub fn from_rules(rules: &[RuleInfo]) -> ReloadReport {
        let mut out = ReloadReport {
            documents: rules.len(),
            ..ReloadReport::default()
        };
        for r in rules {
            match r.outcome.as_str() {
                "active" => out.active += 1,
                "unrouted" => out.unrouted += 1,
                "unsupported" => out.unsupported += 1,
                _ => out.invalid += 1,
            }
            if matches!(r.outcome.as_str(), "unsupported" | "invalid")
                && out.problems.len() < MAX_RELOAD_PROBLEMS
            {
                let why = r.reason.as_deref().unwrap_or("no reason given");
                out.problems.push(format!("{}: {why}", r.path));
            }
        }
        out
    }
}
