//! Agents: what they say about themselves, their record and status, and the commands the
//! server hands them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::named;

/// Largest `result` of a command (its JSON text), bytes.
pub const MAX_COMMAND_RESULT_BYTES: usize = 1024 * 1024;
/// Largest `args` of a command (its JSON text), bytes.
pub const MAX_COMMAND_ARGS_BYTES: usize = 64 * 1024;
/// Longest `error` of a command, bytes.
pub const MAX_COMMAND_ERROR_BYTES: usize = 64 * 1024;

/// What an agent says about itself (at enrollment and in every heartbeat).
///
/// The store refuses a blank `hostname`, `os_type` or `agent_version`, a hostname over 255
/// bytes, `os_type`/`agent_version` over 64 bytes, the optional texts over 255 bytes, more
/// than 1,024 IPs or an IP text over 64 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFacts {
    /// Host name as the agent reports it (case kept; looked up case-insensitively).
    pub hostname: String,
    /// `linux`, `windows`, ...
    pub os_type: String,
    /// Distribution / product name, e.g. `Ubuntu`, `Windows Server 2022 Standard`.
    pub os_name: Option<String>,
    /// OS version, e.g. `22.04`, `10.0.20348`.
    pub os_version: Option<String>,
    /// CPU architecture, e.g. `x86_64`.
    pub arch: Option<String>,
    /// The agent's own version.
    pub agent_version: String,
    /// The host's IP addresses, as text.
    pub ips: Vec<String>,
}

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// What the agent last reported (enrollment, re-enrollment or heartbeat).
    pub facts: AgentFacts,
    /// First enrollment, ms.
    pub enrolled_at: i64,
    /// How it enrolled: `token:<id>` or `reenroll`.
    pub enrolled_by: String,
    /// SHA-256 (lower-case hex) of the current client certificate.
    pub cert_sha256: String,
    /// The current certificate's `notAfter`, ms.
    pub cert_not_after: i64,
    /// Last re-enrollment (certificate replaced), ms.
    pub reenrolled_at: Option<i64>,
    /// Latest heartbeat or event time, ms; `enrolled_at` until the first heartbeat/ingest.
    pub last_seen: i64,
    /// The last heartbeat document (resources, spool, collectors), as sent.
    pub last_heartbeat: Option<Value>,
    /// Problems the agent reported in its last heartbeat (empty = healthy).
    pub health: Vec<String>,
    /// Set when the offline watch finds it silent, cleared by the next heartbeat or ingest.
    pub offline_since: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

impl Agent {
    /// Its status at `now` (ms) with the server's thresholds: revoked; else offline when
    /// marked so or silent for `offline_after`; else degraded when silent for
    /// `degraded_after` or reporting a problem; else online.
    pub fn status_at(
        &self,
        now: i64,
        degraded_after: Duration,
        offline_after: Duration,
    ) -> AgentStatus {
        if self.revoked_at.is_some() {
            return AgentStatus::Revoked;
        }
        // A last_seen ahead of `now` (another server's clock) counts as no silence.
        let silent = u128::try_from(now.saturating_sub(self.last_seen)).unwrap_or(0);
        if self.offline_since.is_some() || silent >= offline_after.as_millis() {
            AgentStatus::Offline
        } else if silent >= degraded_after.as_millis() || !self.health.is_empty() {
            AgentStatus::Degraded
        } else {
            AgentStatus::Online
        }
    }
}

/// An agent's status, derived from its record and the server's thresholds
/// ([`Agent::status_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AgentStatus {
    /// Heard from recently and reporting no problem.
    Online,
    /// Silent for a while, or reporting a problem.
    Degraded,
    /// Silent too long.
    Offline,
    /// Its certificate is refused.
    Revoked,
}

impl AgentStatus {
    /// All statuses.
    pub const ALL: [AgentStatus; 4] = [
        AgentStatus::Online,
        AgentStatus::Degraded,
        AgentStatus::Offline,
        AgentStatus::Revoked,
    ];

    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Degraded => "degraded",
            AgentStatus::Offline => "offline",
            AgentStatus::Revoked => "revoked",
        }
    }
}

named!(AgentStatus, "agent status");

/// One heartbeat of an agent.
///
/// `health` may hold at most 256 entries of at most 1,024 bytes each. A `null` `doc` clears
/// [`Agent::last_heartbeat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentHeartbeat {
    /// What the agent reports about itself now.
    pub facts: AgentFacts,
    /// Problems it reports (empty = healthy).
    pub health: Vec<String>,
    /// The whole heartbeat document, kept as sent.
    pub doc: Value,
    /// When it arrived, ms.
    pub at: i64,
}

/// Where a command to an agent stands.
///
/// `pending` → `delivered` (in a heartbeat answer; again after the redelivery delay) →
/// `done` / `failed` (reported by the agent) or `expired` (delivered the most times without a
/// result). `done` and `failed` are final; an expired command still takes a late result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Waiting for the agent's next heartbeat.
    Pending,
    /// Handed to the agent; no result yet.
    Delivered,
    /// The agent ran it.
    Done,
    /// The agent could not run it (`error` says why).
    Failed,
    /// Delivered the most times without a result.
    Expired,
}

impl CommandStatus {
    /// All statuses.
    pub const ALL: [CommandStatus; 5] = [
        CommandStatus::Pending,
        CommandStatus::Delivered,
        CommandStatus::Done,
        CommandStatus::Failed,
        CommandStatus::Expired,
    ];

    /// The stored (and serialized) name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Delivered => "delivered",
            CommandStatus::Done => "done",
            CommandStatus::Failed => "failed",
            CommandStatus::Expired => "expired",
        }
    }

    /// Nothing more happens to it by itself (done, failed or expired).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CommandStatus::Done | CommandStatus::Failed | CommandStatus::Expired
        )
    }
}

named!(CommandStatus, "command status");

/// A command for an agent, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCommand {
    /// Command id (UUID v7, made by the store).
    pub id: Uuid,
    /// The agent that is to run it.
    pub agent_id: String,
    /// What to do: `scan_path`, ...
    pub kind: String,
    /// Its arguments (a JSON object; `scan_path`: [`crate::api::ScanPathArgs`]).
    pub args: Value,
    /// Where it stands.
    pub status: CommandStatus,
    /// Who asked (user or token name).
    pub requested_by: String,
    /// Created, ms.
    pub created_at: i64,
    /// Last handed to the agent, ms.
    pub delivered_at: Option<i64>,
    /// How often it was handed to the agent.
    pub attempts: u32,
    /// The result arrived (or it expired), ms.
    pub finished_at: Option<i64>,
    /// What the agent reported.
    pub result: Option<Value>,
    /// Why it failed, as the agent reported it.
    pub error: Option<String>,
}
