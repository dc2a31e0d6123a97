//! Playbooks, their runs and steps, and approvals (issue 13), as stored and as the API shows
//! them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::named;

/// A playbook as stored: its YAML text and whether triggers may start it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredPlaybook {
    /// Its name (the file name without `.yml` for a file in the playbook directory).
    pub name: String,
    /// The YAML text.
    pub source: String,
    /// `file` (from the playbook directory: edit the file) or `api` (managed through the
    /// API).
    pub origin: String,
    /// Triggers (alerts, schedules) start it only when enabled; a manual run is allowed
    /// either way.
    pub enabled: bool,
    /// Last changed, ms.
    pub updated_at: i64,
    /// Who changed it last (`file` for the directory).
    pub updated_by: String,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlaybookRunStatus {
    /// Steps are being run (or waiting for an approval).
    Running,
    /// Every play ended without an unhandled failure.
    Succeeded,
    /// A step failed and nothing rescued it, or the run was interrupted.
    Failed,
}

impl PlaybookRunStatus {
    /// All statuses.
    pub const ALL: [PlaybookRunStatus; 3] = [
        PlaybookRunStatus::Running,
        PlaybookRunStatus::Succeeded,
        PlaybookRunStatus::Failed,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaybookRunStatus::Running => "running",
            PlaybookRunStatus::Succeeded => "succeeded",
            PlaybookRunStatus::Failed => "failed",
        }
    }
}

named!(PlaybookRunStatus, "playbook run status");

/// A playbook run as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookRun {
    /// Run id (UUID v7 text).
    pub id: String,
    /// The playbook's name.
    pub playbook: String,
    /// `alert`, `manual` or `schedule`.
    pub trigger: String,
    /// The alert it ran on.
    pub alert_id: Option<i64>,
    /// The agent it ran on.
    pub agent_id: Option<String>,
    /// Who started it (a user, a token, or `trigger` for an automatic run).
    pub requested_by: String,
    /// Templated and checked only; no module was called.
    pub dry_run: bool,
    /// Where it stands.
    pub status: PlaybookRunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// The extra variables it was given.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub vars: Value,
    /// Started, ms.
    pub started_at: i64,
    /// Ended, ms.
    pub finished_at: Option<i64>,
    /// Steps recorded so far.
    pub steps: u32,
}

/// A new run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPlaybookRun {
    /// Run id (UUID v7 text).
    pub id: String,
    /// The playbook's name.
    pub playbook: String,
    /// `alert`, `manual` or `schedule`.
    pub trigger: String,
    /// The alert it runs on.
    pub alert_id: Option<i64>,
    /// The agent it runs on.
    pub agent_id: Option<String>,
    /// Who started it.
    pub requested_by: String,
    /// Template and check only.
    pub dry_run: bool,
    /// Extra variables.
    pub vars: Value,
}

/// A recorded step (the engine's step record, redacted, as JSON) with its run and number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookStep {
    /// The run.
    pub run_id: String,
    /// 0, 1, … in the order the steps ended.
    pub seq: u32,
    /// `ok`, `failed`, `ignored`, `skipped` or `dry_run`.
    pub status: String,
    /// The whole record: play, path, task, module, item, input, output, error, attempts,
    /// approval, times (secrets redacted).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub record: Value,
}

/// Which runs to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaybookRunQuery {
    /// Of this playbook.
    pub playbook: Option<String>,
    /// On this alert.
    pub alert_id: Option<i64>,
    /// On this agent.
    pub agent_id: Option<String>,
    /// In this status.
    pub status: Option<PlaybookRunStatus>,
    /// Most rows (1–500).
    pub limit: u32,
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Go ahead.
    Approved,
    /// Do not.
    Rejected,
    /// Nobody decided in time (or the server stopped while it waited).
    Expired,
}

impl ApprovalStatus {
    /// All statuses.
    pub const ALL: [ApprovalStatus; 4] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }
}

named!(ApprovalStatus, "approval status");

/// A request for a human decision before a destructive action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    /// Approval id (UUID v7 text).
    pub id: String,
    /// The playbook run that waits for it (none for a direct command).
    pub run_id: Option<String>,
    /// The playbook (none for a direct command).
    pub playbook: Option<String>,
    /// The action: a module (`agent.isolate_host`, `approve`) or a command kind.
    pub action: String,
    /// What it acts on (the action's arguments, secrets redacted; a direct command:
    /// `{agent_id, kind, args}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub target: Value,
    /// Why.
    pub reason: String,
    /// Who asked (a user, a token, or `trigger`).
    pub requested_by: String,
    /// The requester may not decide it themselves.
    pub other_approver: bool,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Asked, ms.
    pub created_at: i64,
    /// Expires then, ms.
    pub expires_at: i64,
    /// Decided (or expired), ms.
    pub decided_at: Option<i64>,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Their comment.
    pub comment: Option<String>,
    /// The command an approved direct command became.
    pub command_id: Option<String>,
}

/// A new approval request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    /// The waiting run.
    pub run_id: Option<String>,
    /// Its playbook.
    pub playbook: Option<String>,
    /// The action.
    pub action: String,
    /// What it acts on.
    pub target: Value,
    /// Why.
    pub reason: String,
    /// Who asked.
    pub requested_by: String,
    /// The requester may not decide it.
    pub other_approver: bool,
    /// Expires then, ms.
    pub expires_at: i64,
}

// ------------------------------------------------------------------ API bodies

/// A playbook as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookView {
    /// Its name.
    pub name: String,
    /// `file` (the playbook directory) or `api`.
    pub origin: String,
    /// Triggers may start it.
    pub enabled: bool,
    /// Last changed, ms.
    pub updated_at: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// Why it does not parse (it never runs then): file, line, column, reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PlaybookError>,
    /// Its plays and what starts each.
    pub plays: Vec<PlayView>,
    /// Some play may be run by hand.
    pub manual: bool,
    /// The YAML text (only for one playbook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Where and why a playbook does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookError {
    /// The file name.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

/// A play and its triggers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlayView {
    /// The play's name.
    pub name: String,
    /// Tasks at its top level.
    pub tasks: usize,
    /// What starts it: `manual`, `alert: …`, `schedule: …` (none: only by hand).
    pub triggers: Vec<String>,
}

/// `GET /api/v1/playbooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookList {
    /// By name.
    pub playbooks: Vec<PlaybookView>,
}

/// `POST /api/v1/playbooks/{name}/enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlaybookEnabledRequest {
    /// Whether triggers may start it.
    pub enabled: bool,
}

/// `POST /api/v1/playbooks/{name}/run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlaybookRunRequest {
    /// Run on this alert (`alert` in templates; its agent becomes `agent`).
    #[serde(default)]
    pub alert_id: Option<i64>,
    /// Run on this agent (`agent` in templates).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub agent_id: Option<String>,
    /// Variables that override the plays' own.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub vars: Option<serde_json::Map<String, Value>>,
    /// Template and check only: no module is called, no approval asked.
    #[serde(default)]
    pub dry_run: bool,
}

/// `GET /api/v1/playbook-runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookRunList {
    /// Newest first.
    pub runs: Vec<PlaybookRun>,
}

/// `GET /api/v1/playbook-runs/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlaybookRunDetail {
    /// The run.
    pub run: PlaybookRun,
    /// Its steps in order.
    pub steps: Vec<PlaybookStep>,
    /// Its approvals.
    pub approvals: Vec<Approval>,
}

/// `GET /api/v1/approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalList {
    /// Newest first.
    pub approvals: Vec<Approval>,
}

/// `POST /api/v1/approvals/{id}/approve` and `/reject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why (kept with the decision and audited).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub comment: Option<String>,
}

/// `POST /api/v1/agents/{id}/actions`: a response action on an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// A command kind ([`crate::response::COMMAND_KINDS`]).
    pub kind: String,
    /// Its arguments ([`crate::response`]).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub args: Option<serde_json::Map<String, Value>>,
    /// Why (shown to the approvers).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 2000))]
    pub reason: Option<String>,
}

/// The answer to an action: the approval it waits for (destructive kinds), or the command
/// queued at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActionAnswer {
    /// The approval request (the command is queued when it is approved).
    pub approval: Option<Approval>,
    /// The command queued.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub command: Option<crate::api::CommandView>,
}
