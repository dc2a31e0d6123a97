//! Dozor's shared shapes: the types the store keeps, the server's API sends and takes, the
//! `dozor` CLI reads and the agent exchanges with the server.
//!
//! - levels, statuses and roles with their stored names (`as_str`, `Display`, `FromStr`,
//!   serde) and their rules: [`AlertStatus::can_change_to`], [`Role::permits`],
//!   [`Role::capped_by`], [`Agent::status_at`], [`CommandStatus::is_final`];
//! - the records: [`StoredEvent`], [`Alert`], [`Comment`], [`StatusChange`], [`RuleState`],
//!   [`TokenInfo`], [`User`], [`Agent`], [`AgentFacts`], [`AgentHeartbeat`],
//!   [`AgentCommand`], [`AuditEntry`], with the queries and pages that list them;
//! - [`api`]: the HTTP API's bodies that are not a record as it is (agent messages, operator
//!   views).
//!
//! Plain data and pure functions: no I/O, no runtime, no database. All times are
//! milliseconds since the Unix epoch (UTC) as `i64`.

#![warn(missing_docs)]

mod access;
mod agent;
mod alert;
pub mod api;
mod audit;
mod error;
mod event;
mod exception;
mod host;
mod incident;
mod intel;
#[cfg(feature = "openapi")]
pub mod openapi;
mod playbook;
pub mod process_tree;
pub mod response;
mod rule;
mod saved_search;
mod vulns;

pub use access::{Access, MAX_USERNAME_CHARS, Role, TokenInfo, USER_LANGUAGES, User};
pub use agent::{
    Agent, AgentCommand, AgentFacts, AgentHeartbeat, AgentStatus, CommandStatus,
    MAX_COMMAND_ARGS_BYTES, MAX_COMMAND_ERROR_BYTES, MAX_COMMAND_RESULT_BYTES,
};
pub use alert::{
    Alert, AlertChange, AlertPage, AlertQuery, AlertStatus, AlertTime, Comment, Level,
    MAX_ALERT_EVENT_IDS, StatusChange,
};
pub use audit::{AuditEntry, AuditQuery};
pub use error::ParseError;
pub use event::{
    EventPage, EventQuery, HistogramBucket, HistogramQuery, MAX_HISTOGRAM_BUCKETS, StoredEvent,
};
pub use exception::{
    AlertException, ExceptionCondition, MAX_EXCEPTION_CONDITIONS, NewException, exception_matches,
    exception_problem,
};
pub use host::{Host, HostQuery, event_host, host_key};
pub use incident::{
    Incident, IncidentChange, IncidentDetail, IncidentNote, IncidentPatch, IncidentQuery,
    IncidentSeverity, IncidentStatus, IncidentSuggestion, IncidentTask,
    MAX_INCIDENT_ALERTS_PER_CALL, MAX_INCIDENT_OWNER, MAX_INCIDENT_TASK, MAX_INCIDENT_TEXT,
    MAX_INCIDENT_TITLE, MAX_OBSERVABLE_VALUE, NewIncident, NewObservable, Observable,
    ObservableKind, TimelineEntry, incident_patch_problem, incident_text_problem, integral_ids,
    new_incident_problem,
};
pub use intel::{
    IntelImportReport, IntelMatch, IntelMatchList, IntelMatchQuery, IntelSource, IntelSourceList,
    IntelSourceRequest, IntelSyncStatus, IocDetail, IocEnabledRequest, IocPage, IocQuery,
    IocSourceRef, IocUpsertReport, IocView, ManualIocRequest, NewIntelMatch, NewIoc, StoredIoc,
    decay_lifetime_days, decay_score,
};
pub use playbook::{
    ActionAnswer, ActionRequest, Approval, ApprovalList, ApprovalStatus, DecisionRequest,
    NewApproval, NewPlaybookRun, PlayView, PlaybookEnabledRequest, PlaybookError, PlaybookList,
    PlaybookRun, PlaybookRunDetail, PlaybookRunList, PlaybookRunQuery, PlaybookRunRequest,
    PlaybookRunStatus, PlaybookStep, PlaybookView, StoredPlaybook,
};
pub use rule::RuleState;
pub use saved_search::{
    EVENT_COLUMNS, MAX_SAVED_SEARCH_NAME, MAX_SAVED_SEARCH_QUERY, MAX_SAVED_SEARCHES_PER_OWNER,
    NewSavedSearch, SAVED_SEARCH_RANGES, SavedSearch, SavedSearchChange, SavedSearchParams,
    saved_search_change_problem, saved_search_name_problem, saved_search_params_problem,
    saved_search_problem, saved_search_query_problem,
};
pub use vulns::{
    AgentInventory, MAX_VULN_PAGE, NewVulnResult, NewVulnScan, StoredVuln, VULN_LEVELS,
    VULN_SOURCES, VulnCveSummary, VulnHostSummary, VulnQuery, VulnScan, VulnScanCounts,
    VulnScanJob, VulnScanReport, VulnStatus, VulnStatusRequest, VulnSummary,
};

/// Default page size of searches and listings.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest page size of searches and listings.
pub const MAX_PAGE_LIMIT: u32 = 1000;

#[cfg(test)]
mod tests;
