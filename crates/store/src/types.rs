//! Values the store takes and returns.
//!
//! The shapes other crates share (levels, statuses, roles, alerts, agents, commands, events,
//! their queries and pages) are `dozor-model`'s, re-exported here so `crate::types::X` and
//! `dozor_store::X` keep naming them. Defined here is what only the store's callers hand in
//! or get back: inputs (`New*`, `Detection`), batch, purge and stats reports, sessions and
//! enrollment tokens.
//!
//! All times are milliseconds since the Unix epoch (UTC) as `i64`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use dozor_model::*;

pub(crate) fn clamp_limit(limit: u32) -> u32 {
    if limit == 0 {
        DEFAULT_PAGE_LIMIT
    } else {
        limit.min(MAX_PAGE_LIMIT)
    }
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

// ---------------------------------------------------------------- events

/// Which clock orders an [`EventScan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOrder {
    /// The events' own time (`ts`): a model learning a look-back window in time order.
    Time,
    /// When the server stored them (`received_at`): a job following what arrives, late
    /// uploads included.
    Received,
}

/// A forward walk over stored events, oldest first, for background jobs
/// ([`crate::Store::scan_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventScan {
    /// The clock the walk follows.
    pub order: ScanOrder,
    /// Only events after this (time of `order`, id), exclusive: the last event of the
    /// previous page.
    pub after: Option<(i64, Uuid)>,
    /// Only events at or after this time of `order`, ms.
    pub from: Option<i64>,
    /// Only events before this time of `order`, ms (exclusive).
    pub before: Option<i64>,
    /// Page size, at most [`MAX_SCAN_PAGE`].
    pub limit: u32,
}

/// Largest page [`crate::Store::scan_events`] returns.
pub const MAX_SCAN_PAGE: u32 = 10_000;

/// A normalized event to store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// `event.id`: the idempotency key.
    pub id: Uuid,
    /// Event time (`@timestamp`), ms.
    pub ts: i64,
    /// When the server received it, ms.
    pub received_at: i64,
    /// The agent the credential belongs to; `None` for API-token ingest.
    pub agent_id: Option<String>,
    /// The full normalized event (ECS-style nested object). `event.kind`, `event.category`,
    /// `event.action` and `event.code` are copied from it into indexed columns.
    pub doc: Value,
}

/// Outcome of an idempotent event insert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertReport {
    /// Events stored now.
    pub inserted: usize,
    /// Events whose id was already stored (or repeated within the batch); not stored again.
    pub duplicates: usize,
}

// ---------------------------------------------------------------- alerts

/// A rule matched an event: what the detection stage hands to the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detection {
    /// Rule id (must not be empty).
    pub rule_id: String,
    /// Rule title.
    pub rule_title: String,
    /// Rule level.
    pub level: Level,
    /// Rule tags (ATT&CK: `attack.t1059.001`, ...).
    pub tags: Vec<String>,
    /// Agent of the matched event.
    pub agent_id: Option<String>,
    /// The matched event's host ([`event_host`] of its document); alerts are kept apart per
    /// host.
    pub host: Option<String>,
    /// The matched event's id.
    pub event_id: Uuid,
    /// The matched event's time, ms.
    pub ts: i64,
}

/// Result of recording a detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectionOutcome {
    /// Created or updated.
    pub change: AlertChange,
    /// The alert after the change.
    pub alert: Alert,
}

// ---------------------------------------------------------------- batch

/// Outcome of [`crate::Store::store_batch`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReport {
    /// Events stored now.
    pub inserted: usize,
    /// Events already stored (or repeated in the batch).
    pub duplicates: usize,
    /// Detections recorded into alerts.
    pub detections_recorded: usize,
    /// Detections skipped: their event was a duplicate (so they were recorded when it was first
    /// stored), it is not in this batch, or the same rule/event pair came twice.
    pub detections_skipped: usize,
    /// Detections an alert exception covered: counted on the exception, not alerted.
    #[serde(default)]
    pub detections_suppressed: usize,
    /// Alerts opened by this batch.
    pub alerts_created: usize,
    /// Alerts (opened earlier) that absorbed detections of this batch.
    pub alerts_updated: usize,
    /// Every alert the batch touched, in order of first touch, in its final state;
    /// `change` is `Created` if the batch opened it.
    pub alerts: Vec<DetectionOutcome>,
}

// ---------------------------------------------------------------- tokens

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    /// Human name.
    pub name: String,
    /// Role. A token owned by a user never does more than its owner's current role allows
    /// (see [`crate::Store::verify_token`]).
    pub role: Role,
    /// Expiry, ms; `None` = never.
    pub expires_at: Option<i64>,
    /// The user (id) the token belongs to; `None` = a service token of no user. An unknown
    /// user is [`crate::StoreError::NotFound`].
    #[serde(default)]
    pub owner: Option<i64>,
}

/// A freshly created token: the only time the plaintext secret exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The stored token.
    pub info: TokenInfo,
    /// The secret to hand to the user once (`dzt_` + 43 base64url characters).
    pub secret: String,
}

// ---------------------------------------------------------------- users and sessions

/// An operator account to create.
///
/// The user name is trimmed and must be 1..=64 characters of letters and digits (any script,
/// e.g. Cyrillic), `.`, `_`, `-` and `@`; it is unique case-insensitively (Unicode lower case).
/// The store never sees a password: `password_hash` is the PHC string the server made (e.g.
/// `$argon2id$v=19$…`; it must start with `$` and be printable ASCII, at most 1,024 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    /// Login name (case kept for display, compared case-insensitively).
    pub username: String,
    /// PHC string of the password hash.
    pub password_hash: String,
    /// Admin, analyst or viewer (agent-ingest is refused).
    pub role: Role,
    /// Interface language: `None` (the browser's), `"en"` or `"ru"`.
    pub language: Option<String>,
    /// Who created it (user name, `bootstrap`, `cli`, ...).
    pub created_by: String,
}

/// A web session to create (after a successful login).
///
/// `secret_hash` must be 32 bytes; `csrf_token` 1..=256 bytes of printable ASCII. `ip` and
/// `user_agent` are kept for display and cut to 128 and 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    /// The user.
    pub user_id: i64,
    /// SHA-256 of the cookie secret (made by the server; the secret itself is never stored).
    pub secret_hash: Vec<u8>,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Expiry, ms.
    pub expires_at: i64,
    /// Client address at login.
    pub ip: Option<String>,
    /// Client `User-Agent` at login.
    pub user_agent: Option<String>,
}

/// A web session (never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Session id.
    pub id: i64,
    /// The user.
    pub user_id: i64,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Created, ms.
    pub created_at: i64,
    /// Expiry, ms.
    pub expires_at: i64,
    /// Last request seen, ms (updated at most once a minute).
    pub last_seen_at: i64,
    /// Client address at login.
    pub ip: Option<String>,
    /// Client `User-Agent` at login.
    pub user_agent: Option<String>,
}

// ---------------------------------------------------------------- enrollment tokens

/// An agent enrollment token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEnrollmentToken {
    /// Human name (1..200 bytes, like API token names).
    pub name: String,
    /// Expiry, ms; `None` = never.
    pub expires_at: Option<i64>,
    /// How many enrollments it allows; `None` = unlimited, `Some(0)` is refused.
    pub max_uses: Option<u32>,
    /// Who created it (user or token name).
    pub created_by: String,
    /// Which enrolled agents an enrollment with it may replace (revoke) when the agent asks
    /// to (`replace_duplicates`): `None` = none (the default), [`REPLACE_ANY_HOSTNAME`] = any,
    /// otherwise the one hostname (compared case-insensitively; at most 255 bytes).
    #[serde(default)]
    pub may_replace: Option<String>,
}

/// [`NewEnrollmentToken::may_replace`] for "any hostname".
pub const REPLACE_ANY_HOSTNAME: &str = "*";

/// An enrollment token as stored (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentTokenInfo {
    /// Token id.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// Created, ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Expiry, ms.
    pub expires_at: Option<i64>,
    /// Allowed enrollments; `None` = unlimited.
    pub max_uses: Option<u32>,
    /// Successful enrollments so far.
    pub uses: u32,
    /// Last successful enrollment, ms.
    pub last_used_at: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// Which agents an enrollment with it may replace: `None` = none, `*` = any, otherwise
    /// the one hostname, lower-cased.
    #[serde(default)]
    pub may_replace: Option<String>,
}

impl EnrollmentTokenInfo {
    /// May an enrollment with this token replace an agent enrolled as `hostname`?
    pub fn allows_replacing(&self, hostname: &str) -> bool {
        self.may_replace.as_deref().is_some_and(|allowed| {
            allowed == REPLACE_ANY_HOSTNAME || allowed == crate::common::hostname_key(hostname)
        })
    }
}

/// A freshly created enrollment token: the only time the plaintext secret exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedEnrollmentToken {
    /// The stored token.
    pub info: EnrollmentTokenInfo,
    /// The secret to hand to the installer once (`dze_` + 43 base64url characters).
    pub secret: String,
}

/// Why a presented enrollment token was not accepted (for a clear error to the agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentRefusal {
    /// No such token (or not shaped like one).
    #[error("unknown enrollment token")]
    Unknown,
    /// Past its expiry.
    #[error("enrollment token has expired")]
    Expired,
    /// Revoked by an administrator.
    #[error("enrollment token has been revoked")]
    Revoked,
    /// All its uses are spent.
    #[error("enrollment token has no uses left")]
    UsedUp,
}

// ---------------------------------------------------------------- agents

/// A newly enrolled agent to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAgent {
    /// Agent id, made by the server (e.g. a UUID); 1..128 bytes.
    pub id: String,
    /// What the agent reported.
    pub facts: AgentFacts,
    /// SHA-256 of the DER client certificate, 64 hex digits (stored lower-case).
    pub cert_sha256: String,
    /// The certificate's `notAfter`, ms.
    pub cert_not_after: i64,
    /// How it enrolled: `token:<id>` or `reenroll`.
    pub enrolled_by: String,
}

// ---------------------------------------------------------------- agent commands

/// A command for an agent to create.
///
/// The store refuses (`InvalidArgument`) a blank `kind` or one over 64 bytes, a blank
/// `requested_by` or one over 256 bytes, and `args` whose JSON is over
/// [`MAX_COMMAND_ARGS_BYTES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAgentCommand {
    /// The agent that is to run it.
    pub agent_id: String,
    /// What to do: `scan_path`, ...
    pub kind: String,
    /// Its arguments (a JSON object).
    pub args: Value,
    /// Who asked (user or token name).
    pub requested_by: String,
}

/// What [`crate::Store::finish_command`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandFinish {
    /// The result is recorded; the command as it is now.
    Recorded(AgentCommand),
    /// The command already had its result (`done` or `failed`): nothing changed; the command
    /// with the result recorded first.
    AlreadyFinished(AgentCommand),
    /// No such command of this agent (another agent's commands count as unknown).
    Unknown,
}

// ---------------------------------------------------------------- audit

/// An audit record to append.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// Who (user name, token name, `system`).
    pub actor: String,
    /// What (`alert.status`, `token.create`, ...).
    pub action: String,
    /// On what (`alert:42`, ...).
    pub target: Option<String>,
    /// Details (any JSON; `null` is stored as `{}`).
    pub details: Value,
}

// ---------------------------------------------------------------- retention & stats

/// What [`crate::Store::purge_before`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// Events with `ts` before the cutoff.
    pub events: u64,
    /// Closed (resolved / false positive) alerts with `last_seen` before the cutoff, with their
    /// comments and history.
    pub alerts: u64,
}

/// Counts for the API and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// All stored events.
    pub events_total: u64,
    /// Alerts per status (every status present, zero included).
    pub alerts_by_status: BTreeMap<AlertStatus, u64>,
    /// Open alerts per level (every level present, zero included).
    pub open_alerts_by_level: BTreeMap<Level, u64>,
}

impl StoreStats {
    pub(crate) fn empty(events_total: u64) -> Self {
        StoreStats {
            events_total,
            alerts_by_status: AlertStatus::ALL.iter().map(|s| (*s, 0)).collect(),
            open_alerts_by_level: Level::ALL.iter().map(|l| (*l, 0)).collect(),
        }
    }
}

/// What [`crate::Store::decide_approval`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalDecisionOutcome {
    /// This call decided it (the approval after the change).
    Decided(Approval),
    /// It was decided (or had expired) before; as it stands.
    AlreadyDecided(Approval),
    /// No such approval.
    Unknown,
}
