//! The `/api/v1/` operator and agent routes of the OpenAPI document, merged into the
//! server's document by [`crate::openapi::document`]. Each operation is described by the
//! `#[utoipa::path]` attribute on its handler; this lists the handlers, the schemas and the
//! tags.

use utoipa::OpenApi;

use super::agents::{AgentList, AgentView, RevokeRequest};
use super::commands::{
    CommandList, CommandRequest, CommandResultAnswer, CommandResultRequest, CommandView,
    ScanPathArgs,
};
use super::samples::{SampleList, SampleUpload, SampleView};
use super::types::{
    Alert, AlertDetail, AlertNotice, AlertPage, AssigneeRequest, Comment, CommentRequest,
    EnabledRequest, EventPage, Histogram, HistogramBucket, PipelineCounts, Rule, RuleCounts,
    RuleDetail, RuleList, RuleTestRequest, RuleTestResult, Stats, StatusChange, StatusRequest,
    StoredEvent,
};
use super::yara::{AgentRuleFile, AgentYaraRules, YaraRuleChange, YaraRuleInfo, YaraRuleList};
use super::{
    agents, alerts, commands, events, exceptions, hosts, incidents, intel, intel_exchange,
    response, rules, samples, stats, stream, vuln_jobs, vulns, yara,
};
use super::{anomaly, export, saved_searches};
use crate::agents::{
    AgentNotice, AgentStatus, CommandDelivery, DuplicateAgent, EnrollRequest, EnrollResponse,
    HeartbeatRequest, HeartbeatResponse,
};
use crate::state::{ReloadReport, RuleInfo, RuleLogSource};

#[derive(OpenApi)]
#[openapi(
    paths(
        events::search, events::one, events::histogram,
        export::events, export::alerts,
        saved_searches::list, saved_searches::one, saved_searches::add, saved_searches::change,
        saved_searches::remove,
        alerts::list, alerts::one, stream::alerts, alerts::set_status, alerts::set_assignee,
        alerts::comment,
        rules::list, rules::one, rules::set_enabled, rules::reload, rules::test,
        stats::stats,
        agents::list, agents::one, agents::revoke, agents::enroll, agents::heartbeat,
        stream::agents,
        hosts::list, hosts::one,
        exceptions::list, exceptions::add, exceptions::remove,
        incidents::list, incidents::suggestions, incidents::create, incidents::one,
        incidents::update, incidents::add_alerts, incidents::remove_alert, incidents::add_task,
        incidents::set_task, incidents::add_note, incidents::add_observable,
        incidents::remove_observable,
        commands::create, commands::list, commands::one, commands::result,
        yara::list, yara::one, yara::put, yara::delete, yara::for_agents,
        samples::upload, samples::exists, samples::list, samples::one,
        response::list, response::one, response::put, response::delete, response::set_enabled,
        response::run, response::runs, response::run_detail, response::approval_list,
        response::approval, response::approve, response::reject, response::action,
        response::next,
        intel::list, intel::one, intel::add, intel::set_enabled, intel::sources,
        intel::put_source, intel::delete_source, intel::sync, intel::matches,
        intel_exchange::import, intel_exchange::export_stix, intel_exchange::feed_manifest,
        intel_exchange::feed_hashes, intel_exchange::feed_event,
        vulns::list, vulns::one, vulns::set_status, vulns::summary, vulns::export, vulns::import,
        vulns::scans, vulns::advisories, vulns::reload_advisories, vulns::agent_inventory,
        vulns::report_inventory,
        vuln_jobs::list, vuln_jobs::one, vuln_jobs::put_job, vuln_jobs::delete_job,
        vuln_jobs::start, vuln_jobs::stop,
        anomaly::models, anomaly::train, anomaly::score, anomaly::list,
    ),
    components(schemas(
        crate::anomaly::AnomalyStatus, crate::anomaly::ModelStatus, anomaly::TrainAnswer,
        anomaly::ScoreRequest, anomaly::ScoreAnswer, anomaly::ScoredFinding, anomaly::ScoredVector,
        anomaly::Skipped,
        dozor_model::Host, dozor_model::AlertTime, dozor_model::AlertException,
        dozor_model::NewException, dozor_model::ExceptionCondition,
        dozor_model::Incident, dozor_model::IncidentDetail, dozor_model::IncidentPatch,
        dozor_model::NewIncident, dozor_model::IncidentSeverity, dozor_model::IncidentStatus,
        dozor_model::IncidentTask, dozor_model::IncidentNote, dozor_model::Observable,
        dozor_model::NewObservable, dozor_model::ObservableKind, dozor_model::IncidentChange,
        dozor_model::IncidentSuggestion, dozor_model::TimelineEntry, incidents::IncidentView,
        incidents::AlertIdsRequest, incidents::AlertIdsAnswer, incidents::TaskRequest,
        incidents::TaskDoneRequest, incidents::NoteRequest,
        StoredEvent, EventPage, Histogram, HistogramBucket, Alert, AlertPage, AlertDetail, Comment,
        StatusChange, StatusRequest, AssigneeRequest, CommentRequest, Rule, RuleInfo,
        RuleLogSource, RuleList, RuleDetail, EnabledRequest, ReloadReport, RuleTestRequest,
        RuleTestResult, Stats, RuleCounts, PipelineCounts, AlertNotice, AgentView, AgentList,
        RevokeRequest, AgentStatus, EnrollRequest, EnrollResponse, DuplicateAgent,
        HeartbeatRequest, HeartbeatResponse, AgentNotice, CommandDelivery, CommandRequest,
        ScanPathArgs, CommandView, CommandList, CommandResultRequest, CommandResultAnswer,
        YaraRuleInfo, YaraRuleList, YaraRuleChange, AgentRuleFile, AgentYaraRules, SampleUpload,
        SampleView, SampleList,
        dozor_model::SavedSearch, dozor_model::NewSavedSearch, dozor_model::SavedSearchChange,
        dozor_model::SavedSearchParams,
        dozor_model::PlaybookView, dozor_model::PlaybookError, dozor_model::PlayView,
        dozor_model::PlaybookList, dozor_model::PlaybookEnabledRequest,
        dozor_model::PlaybookRunRequest, dozor_model::PlaybookRun, dozor_model::PlaybookRunStatus,
        dozor_model::PlaybookRunList, dozor_model::PlaybookRunDetail, dozor_model::PlaybookStep,
        dozor_model::Approval, dozor_model::ApprovalStatus, dozor_model::ApprovalList,
        dozor_model::DecisionRequest, dozor_model::ActionRequest, dozor_model::ActionAnswer,
        dozor_model::response::CommandBatch, dozor_model::api::CommandDelivery,
        dozor_model::StoredIoc, dozor_model::IocSourceRef, dozor_model::IocView,
        dozor_model::IocPage, dozor_model::IocDetail, dozor_model::ManualIocRequest,
        dozor_model::IocEnabledRequest, dozor_model::IntelSource, dozor_model::IntelSyncStatus,
        dozor_model::IntelSourceRequest, dozor_model::IntelSourceList, dozor_model::IntelMatch,
        dozor_model::IntelMatchList, dozor_model::IntelImportReport,
        dozor_model::StoredVuln, dozor_model::VulnStatus, dozor_model::VulnStatusRequest,
        dozor_model::VulnSummary, dozor_model::VulnHostSummary, dozor_model::VulnCveSummary,
        dozor_model::VulnScan, dozor_model::VulnScanCounts, dozor_model::AgentInventory,
        vulns::VulnPage, vulns::VulnImportReport, vulns::VulnScanList, vulns::InventoryAnswer,
        vulns::InventoryReport, vulns::InventoryShape, vulns::OsShape, vulns::PackageShape, vulns::EcosystemShape, crate::vulns::AdvisoryStatus,
        vuln_jobs::VulnJobRequest, vuln_jobs::VulnJobView, vuln_jobs::VulnJobList,
        crate::vulns::jobs::JobSpec, crate::vulns::jobs::JobTargets, crate::vulns::jobs::GmpSpec,
        crate::vulns::jobs::JobState
    )),
    tags(
        (name = "events", description = "Stored events: search, histogram. Every route needs a viewer, analyst or admin token."),
        (name = "alerts", description = "Alerts and their workflow; the live stream. Changes need an analyst or admin token and are audited."),
        (name = "rules", description = "Sigma rules: state, enable/disable and reload (admin), test (analyst+)."),
        (name = "stats", description = "Counts for dashboards."),
        (name = "agents", description = "Agent enrollment (token + CSR), heartbeats (agent certificate) and the registry (operators)."),
        (name = "incidents", description = "Incidents (cases): alerts grouped into one investigation with an owner, status, severity, tasks, notes, observables, the playbook runs of its alerts and a merged timeline. Changes need an analyst or admin token and are audited."),
        (name = "hosts", description = "Every host Dozor has events of (agents' and uploaded logs' `host.name`), with its activity and open alerts."),
        (name = "response", description = "Playbooks and their runs, approvals, response actions on agents (isolate, kill, quarantine, block, collect). Changes need an analyst or admin token (playbook edits: admin) and are audited."),
        (name = "intel", description = "Threat intelligence: indicators (the retrieval endpoint, manual ones), sources (MISP, MISP feeds, STIX, TAXII, CSV and freetext lists) with their sync status, matches. Changes need an analyst or admin token (sources: admin) and are audited."),
        (name = "anomaly", description = "Behavioural analytics: per-entity models (rare process, parent-child pair, logon source, logon hour, failed-logon burst, new destination, new listening port, event volume) and an isolation forest over host-hours, trained on stored events; their status, training on demand (admin), scoring of events or vectors (analyst+), and the anomaly events they raised."),
        (name = "vulns", description = "Vulnerability management: `vuln_scan_result` records from OpenVAS/Greenbone reports and agents' software inventories matched against OSV advisories; import, export, summary, trends, an analyst's decisions (accepted risk, false positive), audited."),
        (name = "scanning", description = "YARA rules managed on the server and served to agents; file samples uploaded by agents, scanned by the server's engines (hash lists, YARA, clamd)")
    )
)]
pub(crate) struct ApiV1Doc;
