//! The bodies of the HTTP API (`/api/v1`) where they are not a stored record as it is: the
//! agent-facing messages (enrollment, heartbeat, commands) and the operator views (an agent
//! with its status, a command with its result counts, an alert with its comments and
//! history). Records the API sends unchanged ([`crate::Alert`], [`crate::AlertPage`],
//! [`crate::StoredEvent`], [`crate::EventPage`]) are not repeated here.
//!
//! Field names and order are those the server writes, so `dozor events|alerts|agents` and
//! `dozor-agent` read them with serde instead of looking up JSON paths. Free-form documents
//! (a command's `args` and `result`, a heartbeat's resources) stay [`Value`]s.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    Agent, AgentCommand, AgentFacts, AgentStatus, Alert, AlertChange, AlertStatus, CommandStatus,
    StoredEvent,
};

// ------------------------------------------------------------------ alerts

/// A comment on an alert (`body` of the stored [`crate::Comment`] is `text` here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comment {
    /// Comment id.
    pub id: i64,
    /// Alert id.
    pub alert_id: i64,
    /// Who wrote it.
    pub author: String,
    /// The comment.
    pub text: String,
    /// When, ms.
    pub created_at: i64,
}

impl From<crate::Comment> for Comment {
    fn from(c: crate::Comment) -> Self {
        Comment {
            id: c.id,
            alert_id: c.alert_id,
            author: c.author,
            text: c.body,
            created_at: c.created_at,
        }
    }
}

/// One step of an alert's status history (the stored [`crate::StatusChange`] without its row
/// ids; its `note` is `comment` here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusChange {
    /// Who changed it.
    pub actor: String,
    /// Old status.
    pub from: AlertStatus,
    /// New status.
    pub to: AlertStatus,
    /// The comment given with the change.
    pub comment: Option<String>,
    /// When, ms.
    pub changed_at: i64,
}

impl From<crate::StatusChange> for StatusChange {
    fn from(c: crate::StatusChange) -> Self {
        StatusChange {
            actor: c.actor,
            from: c.from,
            to: c.to,
            comment: c.note,
            changed_at: c.changed_at,
        }
    }
}

/// `GET /api/v1/alerts/{id}`: an alert with everything about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertDetail {
    /// The alert.
    pub alert: Alert,
    /// Oldest first.
    pub comments: Vec<Comment>,
    /// Oldest first.
    pub history: Vec<StatusChange>,
    /// The matched events still stored (of `alert.event_ids`), in that order.
    pub events: Vec<StoredEvent>,
    /// Matched event ids no longer stored (retention).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub missing_events: Vec<Uuid>,
}

/// The data of an `alert` event on `GET /api/v1/alerts/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertNotice {
    /// Opened or folded into.
    pub change: AlertChange,
    /// The alert after the change.
    pub alert: Alert,
}

/// `POST /api/v1/alerts/{id}/status`: new → acknowledged → resolved / false_positive; new may
/// close at once, acknowledged may go back to new, a closed alert may be reopened (→ new).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// Where to move it (see [`AlertStatus::can_change_to`]).
    pub status: AlertStatus,
    /// Why; kept in the status history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `POST /api/v1/alerts/{id}/assignee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AssigneeRequest {
    /// Who works on it (at most 200 characters, no control characters); `None` (or empty)
    /// unassigns.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub assignee: Option<String>,
}

/// `POST /api/v1/alerts/{id}/comments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// At most 64 KiB; not only white space.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, pattern = r"\S"))]
    pub text: String,
}

// ------------------------------------------------------------------ agents (operators)

/// An agent as the API shows it: its facts flattened, its status, and (in the single-agent
/// view only) its last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// `linux`, `windows`, ...
    pub os_type: String,
    /// Distribution / product name.
    pub os_name: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// CPU architecture.
    pub arch: Option<String>,
    /// The agent's own version.
    pub agent_version: String,
    /// The host's IP addresses.
    pub ips: Vec<String>,
    /// Status now.
    pub status: AgentStatus,
    /// Last heartbeat or event, ms.
    pub last_seen: i64,
    /// First enrollment, ms.
    pub enrolled_at: i64,
    /// Last re-enrollment, ms.
    pub reenrolled_at: Option<i64>,
    /// The current certificate's `notAfter`, ms.
    pub certificate_not_after: i64,
    /// Problems the agent reported in its last heartbeat.
    pub health: Vec<String>,
    /// Marked offline since, ms.
    pub offline_since: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// The host's isolation as its last heartbeat reported it (none: not isolated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<crate::response::IsolationReport>,
    /// The last heartbeat as sent (resources, spool, collectors); single-agent view only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub last_heartbeat: Option<Value>,
}

impl AgentView {
    /// The view of a record with its status; `with_heartbeat` keeps the last heartbeat.
    pub fn new(agent: Agent, status: AgentStatus, with_heartbeat: bool) -> AgentView {
        AgentView {
            status,
            hostname: agent.facts.hostname,
            os_type: agent.facts.os_type,
            os_name: agent.facts.os_name,
            os_version: agent.facts.os_version,
            arch: agent.facts.arch,
            agent_version: agent.facts.agent_version,
            ips: agent.facts.ips,
            id: agent.id,
            last_seen: agent.last_seen,
            enrolled_at: agent.enrolled_at,
            reenrolled_at: agent.reenrolled_at,
            certificate_not_after: agent.cert_not_after,
            health: agent.health,
            offline_since: agent.offline_since,
            revoked_at: agent.revoked_at,
            revoked_by: agent.revoked_by,
            isolation: crate::response::IsolationReport::of_heartbeat(
                agent.last_heartbeat.as_ref(),
            ),
            last_heartbeat: agent.last_heartbeat.filter(|_| with_heartbeat),
        }
    }
}

/// `GET /api/v1/agents`: every agent and the count per status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentList {
    /// By host name.
    pub agents: Vec<AgentView>,
    /// Agents online.
    pub online: usize,
    /// Agents degraded.
    pub degraded: usize,
    /// Agents offline.
    pub offline: usize,
    /// Agents revoked.
    pub revoked: usize,
}

/// `POST /api/v1/agents/{id}/revoke`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why (kept in the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

// ------------------------------------------------------------------ commands

/// The command kind that scans a path on the agent's host.
pub const SCAN_PATH: &str = "scan_path";

/// `POST /api/v1/agents/{id}/commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// What to do: [`SCAN_PATH`].
    #[cfg_attr(feature = "openapi", schema(value_type = CommandKind))]
    pub kind: String,
    /// The kind's arguments.
    pub args: ScanPathArgs,
}

/// The arguments of a `scan_path` command (what the server stores as the command's `args`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ScanPathArgs {
    /// An absolute path on the agent's host: `/…` (Unix) or `C:\…` (Windows); no NUL, at most
    /// 4096 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 4096, pattern = r"^(/|[A-Za-z]:[\\/])[^\x00]*$")
    )]
    pub path: String,
    /// Scan the directory's subdirectories too (default true).
    #[serde(default = "scan_recursively")]
    pub recursive: bool,
}

/// The documented values of [`CommandRequest::kind`]: describes the body in the API document
/// only (the server checks the kind it gets against its own list).
#[cfg(feature = "openapi")]
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// [`SCAN_PATH`].
    ScanPath,
}

fn scan_recursively() -> bool {
    true
}

/// A command for an agent as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandView {
    /// Command id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: Uuid,
    /// The agent that is to run it.
    pub agent_id: String,
    /// What to do: [`SCAN_PATH`].
    pub kind: String,
    /// Its arguments.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub args: Value,
    /// Where it stands.
    pub status: CommandStatus,
    /// The user or token name that asked.
    pub requested_by: String,
    /// Created, ms.
    pub created_at: i64,
    /// Last handed to the agent (in a heartbeat answer), ms.
    pub delivered_at: Option<i64>,
    /// How often it was handed to the agent.
    pub attempts: u32,
    /// The result arrived, or the command expired, ms.
    pub finished_at: Option<i64>,
    /// What the agent reported; only in `GET /api/v1/commands/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// The result's counts ([`result_summary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub summary: Option<Value>,
    /// Why it failed, as the agent reported it.
    pub error: Option<String>,
}

impl CommandView {
    /// The view of a stored command; `with_result` keeps the whole result (else only its
    /// counts are shown).
    pub fn new(c: AgentCommand, with_result: bool) -> CommandView {
        CommandView {
            id: c.id,
            summary: result_summary(c.result.as_ref()),
            result: c.result.filter(|_| with_result),
            agent_id: c.agent_id,
            kind: c.kind,
            args: c.args,
            status: c.status,
            requested_by: c.requested_by,
            created_at: c.created_at,
            delivered_at: c.delivered_at,
            attempts: c.attempts,
            finished_at: c.finished_at,
            error: c.error,
        }
    }
}

/// The counts of a command's result: the numbers it has (`files_scanned`, `files_skipped`,
/// `bytes`, `duration_ms`) and the lengths of its lists (`detections`, `errors`); `None`
/// when it has none of them.
pub fn result_summary(result: Option<&Value>) -> Option<Value> {
    let result = result?.as_object()?;
    let mut out = Map::new();
    for key in ["files_scanned", "files_skipped", "bytes", "duration_ms"] {
        if let Some(n) = result.get(key).filter(|v| v.is_number()) {
            out.insert(key.to_owned(), n.clone());
        }
    }
    for key in ["detections", "errors"] {
        if let Some(list) = result.get(key).and_then(Value::as_array) {
            out.insert(key.to_owned(), Value::from(list.len()));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// `GET /api/v1/agents/{id}/commands`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandList {
    /// Newest first; without `result` (see `summary`).
    pub commands: Vec<CommandView>,
}

/// `POST /api/v1/agents/commands/{id}/result`: what an agent reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResultRequest {
    /// `done` (it ran; `result` says what it found) or `failed` (`error` says why).
    pub status: CommandStatus,
    /// What it found, at most [`crate::MAX_COMMAND_RESULT_BYTES`] of JSON.
    #[serde(default)]
    pub result: Option<Value>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// The answer to a result report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandResultAnswer {
    /// False when the command had its result already (the first one is kept).
    pub recorded: bool,
}

// ------------------------------------------------------------------ agents (their own calls)

/// `POST /api/v1/agents/enroll`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// An enrollment token (`dze_…`); none to renew with the current certificate.
    #[serde(default)]
    pub token: Option<String>,
    /// PKCS#10 certificate signing request, PEM, made with the agent's own new key.
    pub csr_pem: String,
    /// What the agent says about its host.
    pub facts: AgentFacts,
    /// Revoke other agents enrolled with the same hostname (a reinstalled host): allowed
    /// when the token was created to replace it or the request presents the old agent's
    /// certificate; otherwise the server answers 409 `duplicate-hostname`.
    #[serde(default)]
    pub replace_duplicates: bool,
}

/// Another agent with the same hostname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateAgent {
    /// Its id.
    pub id: String,
    /// Last heard from, ms.
    pub last_seen: i64,
    /// True when this enrollment revoked it.
    pub revoked: bool,
}

/// The answer to an enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// The agent's id (the CN of its certificate).
    pub agent_id: String,
    /// The client certificate, PEM, signed by the server's CA.
    pub certificate_pem: String,
    /// The CA certificate to pin, PEM.
    pub ca_pem: String,
    /// Certificate expiry, ms.
    pub certificate_not_after: i64,
    /// True when an enrolled agent renewed its certificate (same id).
    pub renewed: bool,
    /// Seconds between heartbeats.
    pub heartbeat_interval_secs: u64,
    /// Other unrevoked agents with the same hostname.
    pub duplicates: Vec<DuplicateAgent>,
}

/// `POST /api/v1/agents/heartbeat`: facts and health; everything else (resources, spool,
/// collectors, …) is kept as the agent's last heartbeat document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    /// What the agent says about its host now.
    pub facts: AgentFacts,
    /// Problems it reports (empty = healthy).
    #[serde(default)]
    pub health: Vec<String>,
    /// The rest of the document, as the agent reports it.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    /// The agent's id.
    pub agent_id: String,
    /// Its status as the server sees it.
    pub status: AgentStatus,
    /// When to send the next heartbeat.
    pub heartbeat_interval_secs: u64,
    /// The server's clock, ms.
    pub server_time: i64,
    /// The presented certificate's expiry, ms; renew when a third of its validity is left.
    pub certificate_not_after: i64,
    /// The version of the server's YARA rules; an agent with another version fetches them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yara_rules_version: Option<String>,
    /// Commands to run, each id once (one without a result is handed out again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandDelivery>,
}

/// A command in a heartbeat answer or a long poll's batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandDelivery {
    /// Command id; the result is reported under it.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: Uuid,
    /// What to do: one of [`crate::response::COMMAND_KINDS`].
    pub kind: String,
    /// Its arguments (`scan_path`: [`ScanPathArgs`]; the others: [`crate::response`]).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub args: Value,
}

impl From<AgentCommand> for CommandDelivery {
    fn from(c: AgentCommand) -> CommandDelivery {
        CommandDelivery {
            id: c.id,
            kind: c.kind,
            args: c.args,
        }
    }
}
