//! The operator REST API under `/api/v1/` and the live alert stream.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/v1/events` | viewer+ | search events (query language, time range, agent, cursor) |
//! | `GET /api/v1/events/histogram` | viewer+ | events per time bucket |
//! | `GET /api/v1/events/{id}` | viewer+ | one event |
//! | `GET /api/v1/events/export?format=csv\|ndjson&columns=&limit=` | viewer+ | the search's events as CSV or NDJSON, streamed, at most `limit` (100k; ≤ 1M) rows (audited) |
//! | `GET`/`POST /api/v1/saved-searches`, `GET`/`PUT`/`DELETE …/{id}` | viewer+, analyst+ | saved event searches: own and shared ones; changes by the owner or an admin (audited) |
//! | `GET /api/v1/alerts` | viewer+ | list alerts (status, level, rule, agent, assignee, cursor) |
//! | `GET /api/v1/alerts/stream` | viewer+ | Server-Sent Events: `alert` for every alert opened or updated |
//! | `GET /api/v1/alerts/{id}` | viewer+ | an alert with its comments, status history and events |
//! | `GET /api/v1/alerts/export?format=csv\|ndjson&limit=` | viewer+ | the listing's alerts as CSV or NDJSON, streamed, bounded (audited) |
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
//! | `GET /api/v1/agents/commands/next?wait_secs=` | agent certificate | long poll: the agent's commands as soon as one is queued |
//! | `POST /api/v1/agents/{id}/actions` | analyst+ | a response action (isolate, kill, quarantine, block, collect…); destructive ones wait for an approval |
//! | `GET /api/v1/playbooks`, `GET /api/v1/playbooks/{name}` | viewer+ | playbooks with their plays, triggers, parse errors and YAML |
//! | `PUT`/`DELETE /api/v1/playbooks/{name}` | admin | create, replace, delete an API playbook (parsed first; audited) |
//! | `POST /api/v1/playbooks/{name}/enabled` | admin | turn its triggers on/off (audited) |
//! | `POST /api/v1/playbooks/{name}/run` | analyst+ | run by hand on an alert / agent, or dry-run (audited) |
//! | `GET /api/v1/playbook-runs`, `GET /api/v1/playbook-runs/{id}` | viewer+ | runs; one run with its steps and approvals |
//! | `GET /api/v1/approvals`, `GET /api/v1/approvals/{id}` | viewer+ | the approvals inbox |
//! | `POST /api/v1/approvals/{id}/approve`, `/reject` | analyst+ | decide (audited; first decision wins) |
//! | `POST /api/v1/intel/import?source=&format=` | analyst+ | a MISP / STIX / CSV / freetext document's indicators stored as a sync stores them (audited) |
//! | `GET /api/v1/intel/export/stix` | viewer+ | the chosen indicators as a STIX 2.1 bundle |
//! | `GET /api/v1/intel/export/misp-feed/{manifest.json,hashes.csv,<uuid>.json}` | viewer+ | Dozor's own indicators and sightings as a MISP feed |
//! | `GET /api/v1/vulns` | viewer+ | `vuln_scan_result` records, most severe first (host, agent, CVE, OID, level, status, source, text filters; cursor) |
//! | `GET /api/v1/vulns/{id}` | viewer+ | one result |
//! | `POST /api/v1/vulns/{id}/status` | analyst+ | accept the risk (reason, expiry), false positive, reopen (audited) |
//! | `GET /api/v1/vulns/summary` | viewer+ | counts by level and status, worst hosts and CVEs |
//! | `GET /api/v1/vulns/export?format=json\|csv` | viewer+ | the selected results as JSON or CSV |
//! | `POST /api/v1/vulns/import` | analyst+ | an OpenVAS/GMP XML report, stored whole or refused (audited) |
//! | `GET /api/v1/vulns/scans` | viewer+ | scans and what each changed |
//! | `GET /api/v1/vulns/advisories`, `POST …/reload` | viewer+, admin | the OSV advisories inventories are matched against |
//! | `GET /api/v1/agents/{id}/inventory` | viewer+ | an agent's software inventory |
//! | `POST /api/v1/agents/inventory` | agent certificate | an agent reports its installed software |
//! | `GET /api/v1/vulns/jobs`, `GET/PUT/DELETE …/jobs/{name}`, `POST …/{name}/start\|stop` | viewer+, admin, analyst+ | gvmd scan jobs: settings (password `***`), state, start and stop (audited) |
//!
//! Every route needs a bearer token (401 without, 403 for a role that may not: agents may
//! only send events); errors are [`Problem`](crate::Problem) documents. The API reaches the rest
//! of Dozor through [`ApiState`]: the store, the rule catalog ([`RuleCatalog`]), the alert
//! notices of the pipeline and, for `/metrics`, the pipeline counters.

pub(crate) mod access;
pub(crate) mod agents;
mod alerts;
pub(crate) mod anomaly;
pub(crate) mod commands;
pub(crate) mod doc;
mod events;
mod exceptions;
mod export;
mod hosts;
mod incidents;
pub(crate) mod intel;
pub(crate) mod intel_exchange;
mod metrics;
pub(crate) mod response;
mod rules;
pub(crate) mod samples;
mod saved_searches;
mod stats;
mod stream;
mod types;
pub(crate) mod vuln_jobs;
pub(crate) mod vulns;
pub(crate) mod yara;

use std::sync::Arc;

use axum::routing::{MethodRouter, get, post};

use crate::state::AppState;

pub use metrics::PipelineCollector;

pub use types::*;

pub use crate::state::{ApiState, ReloadReport, RuleCatalog, RuleInfo, RuleLogSource};

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
pub(crate) use exceptions::{EXCEPTION, EXCEPTIONS};
pub(crate) use export::{ALERTS_EXPORT, EVENTS_EXPORT};
pub(crate) use hosts::{HOST, HOSTS};
pub(crate) use incidents::{
    INCIDENT, INCIDENT_ALERT, INCIDENT_ALERTS, INCIDENT_NOTES, INCIDENT_OBSERVABLE,
    INCIDENT_OBSERVABLES, INCIDENT_SUGGESTIONS, INCIDENT_TASK, INCIDENT_TASKS, INCIDENTS,
};
pub(crate) use samples::{SAMPLE, SAMPLES};
pub(crate) use saved_searches::{SAVED_SEARCH, SAVED_SEARCHES};
pub(crate) use yara::{AGENT_YARA_RULES, YARA_RULE, YARA_RULES};
pub(crate) const AGENT_COMMANDS: &str = "/api/v1/agents/{id}/commands";
pub(crate) const AGENT_COMMAND_RESULT: &str = "/api/v1/agents/commands/{id}/result";
pub(crate) const COMMAND: &str = "/api/v1/commands/{id}";
pub(crate) use anomaly::{
    ANOMALIES, MODELS as ANOMALY_MODELS, SCORE as ANOMALY_SCORE, TRAIN as ANOMALY_TRAIN,
};
pub(crate) use intel::{
    IOC as INTEL_IOC, IOC_ENABLED as INTEL_IOC_ENABLED, IOCS as INTEL_IOCS,
    MATCHES as INTEL_MATCHES, SOURCE as INTEL_SOURCE, SOURCE_SYNC as INTEL_SOURCE_SYNC,
    SOURCES as INTEL_SOURCES,
};
pub(crate) use intel_exchange::{
    EXPORT_STIX as INTEL_EXPORT_STIX, FEED_EVENT as INTEL_FEED_EVENT,
    FEED_HASHES as INTEL_FEED_HASHES, FEED_MANIFEST as INTEL_FEED_MANIFEST, IMPORT as INTEL_IMPORT,
};
pub(crate) use response::{
    AGENT_ACTIONS, APPROVAL, APPROVALS, APPROVE, COMMANDS_NEXT, PLAYBOOK, PLAYBOOK_ENABLED,
    PLAYBOOK_RUN, PLAYBOOKS, REJECT, RUN, RUNS,
};
pub(crate) use vulns::{
    ADVISORIES as VULN_ADVISORIES, ADVISORIES_RELOAD as VULN_ADVISORIES_RELOAD, AGENT_INVENTORY,
    INVENTORY_REPORT as AGENT_INVENTORY_REPORT, VULN, VULN_SCANS, VULN_STATUS, VULNS, VULNS_EXPORT,
    VULNS_IMPORT, VULNS_SUMMARY,
};

/// The handler of an API route in [`crate::ROUTES`].
pub(crate) fn route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (method, path) {
        ("GET", EVENTS) => get(events::search),
        ("GET", EVENTS_HISTOGRAM) => get(events::histogram),
        ("GET", EVENT) => get(events::one),
        ("GET", EVENTS_EXPORT) => get(export::events),
        ("GET", SAVED_SEARCHES) => get(saved_searches::list),
        ("POST", SAVED_SEARCHES) => post(saved_searches::add).layer(body_limit()),
        ("GET", SAVED_SEARCH) => get(saved_searches::one),
        ("PUT", SAVED_SEARCH) => axum::routing::put(saved_searches::change).layer(body_limit()),
        ("DELETE", SAVED_SEARCH) => axum::routing::delete(saved_searches::remove),
        ("GET", ALERTS) => get(alerts::list),
        ("GET", ALERTS_STREAM) => get(stream::alerts),
        ("GET", ALERT) => get(alerts::one),
        ("GET", ALERTS_EXPORT) => get(export::alerts),
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
        ("GET", EXCEPTIONS) => get(exceptions::list),
        ("POST", EXCEPTIONS) => post(exceptions::add).layer(body_limit()),
        ("DELETE", EXCEPTION) => axum::routing::delete(exceptions::remove),
        ("GET", HOSTS) => get(hosts::list),
        ("GET", HOST) => get(hosts::one),
        ("GET", INCIDENTS) => get(incidents::list),
        ("POST", INCIDENTS) => post(incidents::create).layer(body_limit()),
        ("GET", INCIDENT_SUGGESTIONS) => get(incidents::suggestions),
        ("GET", INCIDENT) => get(incidents::one),
        ("PATCH", INCIDENT) => axum::routing::patch(incidents::update).layer(body_limit()),
        ("POST", INCIDENT_ALERTS) => post(incidents::add_alerts).layer(body_limit()),
        ("DELETE", INCIDENT_ALERT) => axum::routing::delete(incidents::remove_alert),
        ("POST", INCIDENT_TASKS) => post(incidents::add_task).layer(body_limit()),
        ("PATCH", INCIDENT_TASK) => axum::routing::patch(incidents::set_task).layer(body_limit()),
        ("POST", INCIDENT_NOTES) => post(incidents::add_note).layer(body_limit()),
        ("POST", INCIDENT_OBSERVABLES) => post(incidents::add_observable).layer(body_limit()),
        ("DELETE", INCIDENT_OBSERVABLE) => axum::routing::delete(incidents::remove_observable),
        ("POST", AGENT_REVOKE) => post(agents::revoke).layer(body_limit()),
        ("POST", AGENT_ENROLL) => post(agents::enroll).layer(body_limit()),
        ("POST", AGENT_HEARTBEAT) => post(agents::heartbeat).layer(body_limit()),
        ("POST", AGENT_COMMANDS) => post(commands::create).layer(body_limit()),
        ("GET", AGENT_COMMANDS) => get(commands::list),
        ("GET", COMMAND) => get(commands::one),
        ("POST", AGENT_COMMAND_RESULT) => {
            post(commands::result).layer(commands::result_body_limit())
        }
        _ => return response_route(method, path),
    })
}

/// The response routes (playbooks, runs, approvals, actions, the agents' long poll).
fn response_route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    use axum::routing::{delete, put};
    Some(match (method, path) {
        ("GET", PLAYBOOKS) => get(response::list),
        ("GET", PLAYBOOK) => get(response::one),
        // The body limit (256 KiB) is applied by the handler, with a problem naming it.
        ("PUT", PLAYBOOK) => put(response::put),
        ("DELETE", PLAYBOOK) => delete(response::delete),
        ("POST", PLAYBOOK_ENABLED) => post(response::set_enabled).layer(body_limit()),
        ("POST", PLAYBOOK_RUN) => post(response::run).layer(body_limit()),
        ("GET", RUNS) => get(response::runs),
        ("GET", RUN) => get(response::run_detail),
        ("GET", APPROVALS) => get(response::approval_list),
        ("GET", APPROVAL) => get(response::approval),
        ("POST", APPROVE) => post(response::approve).layer(body_limit()),
        ("POST", REJECT) => post(response::reject).layer(body_limit()),
        ("POST", AGENT_ACTIONS) => post(response::action).layer(body_limit()),
        ("GET", COMMANDS_NEXT) => get(response::next),
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
        _ => return intel_route(method, path),
    })
}

/// The threat-intelligence routes.
fn intel_route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    use axum::routing::{delete, put};
    Some(match (method, path) {
        ("GET", INTEL_IOCS) => get(intel::list),
        ("POST", INTEL_IOCS) => post(intel::add).layer(body_limit()),
        ("GET", INTEL_IOC) => get(intel::one),
        ("POST", INTEL_IOC_ENABLED) => post(intel::set_enabled).layer(body_limit()),
        ("GET", INTEL_SOURCES) => get(intel::sources),
        ("PUT", INTEL_SOURCE) => put(intel::put_source).layer(body_limit()),
        ("DELETE", INTEL_SOURCE) => delete(intel::delete_source),
        ("POST", INTEL_SOURCE_SYNC) => post(intel::sync),
        ("GET", INTEL_MATCHES) => get(intel::matches),
        // The 64 MiB limit is applied by the handler, with a problem naming it.
        ("POST", INTEL_IMPORT) => {
            post(intel_exchange::import).layer(axum::extract::DefaultBodyLimit::disable())
        }
        ("GET", INTEL_EXPORT_STIX) => get(intel_exchange::export_stix),
        ("GET", INTEL_FEED_MANIFEST) => get(intel_exchange::feed_manifest),
        ("GET", INTEL_FEED_HASHES) => get(intel_exchange::feed_hashes),
        ("GET", INTEL_FEED_EVENT) => get(intel_exchange::feed_event),
        ("GET", ANOMALY_MODELS) => get(anomaly::models),
        ("POST", ANOMALY_TRAIN) => post(anomaly::train),
        // Up to 10,000 events of up to a few KiB each.
        ("POST", ANOMALY_SCORE) => {
            post(anomaly::score).layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        }
        ("GET", ANOMALIES) => get(anomaly::list),
        _ => return vuln_route(method, path),
    })
}

/// The vulnerability routes.
fn vuln_route(method: &str, path: &str) -> Option<MethodRouter<Arc<AppState>>> {
    Some(match (method, path) {
        ("GET", VULNS) => get(vulns::list),
        ("GET", VULNS_SUMMARY) => get(vulns::summary),
        ("GET", VULNS_EXPORT) => get(vulns::export),
        // The 256 MiB limit is applied by the handler, with a problem naming it.
        ("POST", VULNS_IMPORT) => {
            post(vulns::import).layer(axum::extract::DefaultBodyLimit::disable())
        }
        ("GET", VULN_SCANS) => get(vulns::scans),
        ("GET", VULN_ADVISORIES) => get(vulns::advisories),
        ("POST", VULN_ADVISORIES_RELOAD) => post(vulns::reload_advisories),
        ("GET", VULN) => get(vulns::one),
        ("POST", VULN_STATUS) => post(vulns::set_status).layer(body_limit()),
        ("GET", AGENT_INVENTORY) => get(vulns::agent_inventory),
        ("POST", AGENT_INVENTORY_REPORT) => post(vulns::report_inventory).layer(
            axum::extract::DefaultBodyLimit::max(vulns::MAX_INVENTORY_BODY),
        ),
        _ => return vuln_jobs::route(method, path),
    })
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
