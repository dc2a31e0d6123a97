//! The operator REST API under `/api/v1/` and the live alert stream.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/v1/events` | viewer+ | search events (query language, time range, agent, cursor) |
//! | `GET /api/v1/events/histogram` | viewer+ | events per time bucket |
//! | `GET /api/v1/events/{id}` | viewer+ | one event |
//! | `GET /api/v1/alerts` | viewer+ | list alerts (status, level, rule, agent, assignee, cursor) |
//! | `GET /api/v1/alerts/stream` | viewer+ | Server-Sent Events: `alert` for every alert opened or updated |
//! | `GET /api/v1/alerts/{id}` | viewer+ | an alert with its comments, status history and events |
//! | `POST /api/v1/alerts/{id}/status` | analyst+ | workflow step (audited) |
//! | `POST /api/v1/alerts/{id}/assignee` | analyst+ | assign / unassign (audited) |
//! | `POST /api/v1/alerts/{id}/comments` | analyst+ | comment (audited) |
//! | `GET /api/v1/rules` | viewer+ | rules with state and hit counts |
//! | `GET /api/v1/rules/{id}` | viewer+ | one rule with its YAML |
//! | `POST /api/v1/rules/{id}/enabled` | admin | enable / disable (audited) |
//! | `POST /api/v1/rules/reload` | admin | re-read the rule directories (audited) |
//! | `POST /api/v1/rules/test` | analyst+ | run a rule given as YAML over stored events |
//! | `GET /api/v1/stats` | viewer+ | counts for dashboards |
//! | `GET /api/v1/agents` | viewer+ | the agent registry with each agent's status |
//! | `GET /api/v1/agents/stream` | viewer+ | Server-Sent Events: `agent` at every heartbeat and when an agent goes offline |
//! | `GET /api/v1/agents/{id}` | viewer+ | one agent with its last heartbeat |
//! | `POST /api/v1/agents/{id}/revoke` | admin | refuse the agent's certificate from now on (audited) |
//! | `POST /api/v1/agents/enroll` | enrollment token | CSR in, client certificate out |
//! | `POST /api/v1/agents/heartbeat` | agent certificate | health and resource usage; the answer carries the agent's commands |
//! | `GET /api/v1/yara/rules` | viewer+ | the server's YARA rule files, each with its rule count or compile error, and the rules version |
//! | `GET /api/v1/yara/rules/{name}` | viewer+ | one rule file's text |
//! | `PUT /api/v1/yara/rules/{name}` | admin | create or replace a rule file (text/plain); 422 with yara-x's error when it does not compile (audited) |
//! | `DELETE /api/v1/yara/rules/{name}` | admin | delete a rule file (audited) |
//! | `GET /api/v1/agents/yara-rules` | agent certificate | the rule files that compile, for agents to run |
//! | `POST /api/v1/samples?path=&sha256=` | agent certificate | upload a file sample: stored once by SHA-256, scanned, findings raise alerts |
//! | `HEAD /api/v1/samples/{sha256}` | agent or viewer+ | 200 if the server has the sample, 404 if not |
//! | `GET /api/v1/samples` | analyst+ | samples, newest first |
//! | `GET /api/v1/samples/{sha256}` | analyst+ | one sample's metadata and last verdict (never its bytes) |
//! | `POST /api/v1/agents/{id}/commands` | analyst+ | queue a command for the agent (`scan_path`; audited) |
//! | `GET /api/v1/agents/{id}/commands` | viewer+ | the agent's commands, newest first |
//! | `GET /api/v1/commands/{id}` | viewer+ | one command with its result |
//! | `POST /api/v1/agents/commands/{id}/result` | agent certificate | the agent reports a command's outcome (audited) |
//!
//! Every route needs a bearer token (401 without, 403 for a role that may not: agents may
//! only send events); errors are [`Problem`](crate::Problem) documents. The API reaches the rest
//! of Dozor through [`ApiState`]: the store, the rule catalog ([`RuleCatalog`]), the alert
//! notices of the pipeline and, for `/metrics`, the pipeline counters.

mod access;
pub(crate) mod agents;
mod alerts;
pub(crate) mod commands;
pub(crate) mod doc;
mod events;
mod metrics;
mod rules;
pub(crate) mod samples;
pub(crate) mod scan_doc;
mod stats;
mod stream;
mod types;
pub(crate) mod yara;

use std::sync::Arc;

use axum::routing::{MethodRouter, get, post};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::sink::BoxFuture;

pub use metrics::PipelineCollector;

/// Does `role` have the right `need` (READ 0, TRIAGE 1, ADMIN 2)? The web pages use the same
/// rights as the API.
pub(crate) fn access_permits(role: crate::auth::Role, need: u8) -> bool {
    access::permits(role, need)
}
pub use types::*;

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
/// [`ReloadReport::from_reports`] do the conversions).
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
    /// Counts a rule set's load reports.
    pub fn from_reports(reports: &[dozor_sigma::RuleReport]) -> ReloadReport {
        use dozor_sigma::Outcome;
        let mut out = ReloadReport {
            documents: reports.len(),
            ..ReloadReport::default()
        };
        for r in reports {
            let why = match &r.outcome {
                Outcome::Active => {
                    out.active += 1;
                    None
                }
                Outcome::Unrouted(_) => {
                    out.unrouted += 1;
                    None
                }
                Outcome::Unsupported(why) => {
                    out.unsupported += 1;
                    Some(why)
                }
                Outcome::Invalid(why) => {
                    out.invalid += 1;
                    Some(why)
                }
            };
            if let Some(why) = why
                && out.problems.len() < MAX_RELOAD_PROBLEMS
            {
                out.problems.push(format!("{}: {why}", r.path.display()));
            }
        }
        out
    }
}

// ---------------------------------------------------------------- routes

pub(crate) const EVENTS: &str = "/api/v1/events";
pub(crate) const EVENTS_HISTOGRAM: &str = "/api/v1/events/histogram";
pub(crate) const EVENT: &str = "/api/v1/events/{id}";
pub(crate) const ALERTS: &str = "/api/v1/alerts";
pub(crate) const ALERTS_STREAM: &str = "/api/v1/alerts/stream";
pub(crate) const ALERT: &str = "/api/v1/alerts/{id}";
pub(crate) const ALERT_STATUS: &str = "/api/v1/alerts/{id}/status";
pub(crate) const ALERT_ASSIGNEE: &str = "/api/v1/alerts/{id}/assignee";
pub(crate) const ALERT_COMMENTS: &str = "/api/v1/alerts/{id}/comments";
pub(crate) const RULES: &str = "/api/v1/rules";
pub(crate) const RULES_RELOAD: &str = "/api/v1/rules/reload";
pub(crate) const RULES_TEST: &str = "/api/v1/rules/test";
pub(crate) const RULE: &str = "/api/v1/rules/{id}";
pub(crate) const RULE_ENABLED: &str = "/api/v1/rules/{id}/enabled";
pub(crate) const STATS: &str = "/api/v1/stats";
pub(crate) const AGENTS: &str = "/api/v1/agents";
pub(crate) const AGENTS_STREAM: &str = "/api/v1/agents/stream";
pub(crate) const AGENT: &str = "/api/v1/agents/{id}";
pub(crate) const AGENT_REVOKE: &str = "/api/v1/agents/{id}/revoke";
pub(crate) use agents::{ENROLL as AGENT_ENROLL, HEARTBEAT as AGENT_HEARTBEAT};
pub(crate) use samples::{SAMPLE, SAMPLES};
pub(crate) use yara::{AGENT_YARA_RULES, YARA_RULE, YARA_RULES};
pub(crate) const AGENT_COMMANDS: &str = "/api/v1/agents/{id}/commands";
pub(crate) const AGENT_COMMAND_RESULT: &str = "/api/v1/agents/commands/{id}/result";
pub(crate) const COMMAND: &str = "/api/v1/commands/{id}";

/// The handler of an API route in [`crate::ROUTES`].
pub(crate) fn route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (method, path) {
        ("GET", EVENTS) => get(events::search),
        ("GET", EVENTS_HISTOGRAM) => get(events::histogram),
        ("GET", EVENT) => get(events::one),
        ("GET", ALERTS) => get(alerts::list),
        ("GET", ALERTS_STREAM) => get(stream::alerts),
        ("GET", ALERT) => get(alerts::one),
        ("POST", ALERT_STATUS) => post(alerts::set_status).layer(body_limit()),
        ("POST", ALERT_ASSIGNEE) => post(alerts::set_assignee).layer(body_limit()),
        ("POST", ALERT_COMMENTS) => post(alerts::comment).layer(body_limit()),
        ("GET", RULES) => get(rules::list),
        ("POST", RULES_RELOAD) => post(rules::reload),
        ("POST", RULES_TEST) => post(rules::test).layer(body_limit()),
        ("GET", RULE) => get(rules::one),
        ("POST", RULE_ENABLED) => post(rules::set_enabled).layer(body_limit()),
        ("GET", STATS) => get(stats::stats),
        ("GET", AGENTS) => get(agents::list),
        ("GET", AGENTS_STREAM) => get(stream::agents),
        ("GET", AGENT) => get(agents::one),
        ("POST", AGENT_REVOKE) => post(agents::revoke).layer(body_limit()),
        ("POST", AGENT_ENROLL) => post(agents::enroll).layer(body_limit()),
        ("POST", AGENT_HEARTBEAT) => post(agents::heartbeat).layer(body_limit()),
        ("POST", AGENT_COMMANDS) => post(commands::create).layer(body_limit()),
        ("GET", AGENT_COMMANDS) => get(commands::list),
        ("GET", COMMAND) => get(commands::one),
        ("POST", AGENT_COMMAND_RESULT) => {
            post(commands::result).layer(commands::result_body_limit())
        }
        _ => return scan_route(method, path),
    })
}

/// The file scanning routes (YARA rules, samples).
fn scan_route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    use axum::routing::{delete, head, put};
    Some(match (method, path) {
        ("GET", YARA_RULES) => get(yara::list),
        ("GET", YARA_RULE) => get(yara::one),
        // The body limit (1 MiB) is applied by the handler, with a problem naming it.
        ("PUT", YARA_RULE) => put(yara::put),
        ("DELETE", YARA_RULE) => delete(yara::delete),
        ("GET", AGENT_YARA_RULES) => get(yara::for_agents),
        // Streamed to a file with the `scan.max_sample_bytes` limit, not buffered.
        ("POST", SAMPLES) => {
            post(samples::upload).layer(axum::extract::DefaultBodyLimit::disable())
        }
        ("GET", SAMPLES) => get(samples::list),
        ("GET", SAMPLE) => get(samples::one),
        ("HEAD", SAMPLE) => head(samples::exists),
        _ => return None,
    })
}

/// Appends to the audit log; `false` (and the entry in the server log) when the log can't
/// be written.
pub(crate) async fn append_audit(
    store: &dyn dozor_store::Store,
    actor: &str,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> bool {
    let entry = dozor_store::NewAuditEntry {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: Some(target),
        details,
    };
    match store.append_audit(&entry).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(
                ?entry,
                "audit log write failed after the change was made: {e}"
            );
            false
        }
    }
}

/// Appends to the audit log. The change it records is already made: if the log can't be
/// written the caller gets a 500 that says so (and the server log has the entry).
pub(crate) async fn audit(
    api: &ApiState,
    actor: &str,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> Result<(), crate::Problem> {
    match append_audit(api.store.as_ref(), actor, action, target, details).await {
        true => Ok(()),
        false => Err(crate::Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "audit-failed",
            "Audit log unavailable",
        )
        .detail("the change was made but could not be written to the audit log")
        .with("applied", true)),
    }
}

fn body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(access::MAX_JSON_BODY)
}

/// The pipeline counters on `/metrics` (OpenMetrics text, `# EOF` last), when the API state
/// has them.
pub(crate) fn append_pipeline_metrics(api: Option<&ApiState>, text: &mut String) {
    if let Some(stats) = api.and_then(|a| a.pipeline_stats.clone()) {
        metrics::append(stats, text);
    }
}
