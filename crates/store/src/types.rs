//! Values the store takes and returns.
//!
//! All times are milliseconds since the Unix epoch (UTC) as `i64`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::StoreError;

/// Most matched event ids one alert keeps (the first ones seen).
pub const MAX_ALERT_EVENT_IDS: usize = 100;
/// Default page size of searches and listings.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Largest page size of searches and listings.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Most buckets one histogram may have.
pub const MAX_HISTOGRAM_BUCKETS: i64 = 10_000;

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

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// `event.id`.
    pub id: Uuid,
    /// Event time, ms.
    pub ts: i64,
    /// Receive time, ms.
    pub received_at: i64,
    /// Agent id from the credential.
    pub agent_id: Option<String>,
    /// The normalized event document.
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

/// An event search: filters, query language, keyset pagination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Inclusive lower bound of the event time, ms.
    pub from: Option<i64>,
    /// Exclusive upper bound of the event time, ms.
    pub to: Option<i64>,
    /// Only events of this agent (the credential's agent id column).
    pub agent_id: Option<String>,
    /// A query in the Dozor query language (see the crate README); empty = everything.
    pub query: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size; 0 = [`DEFAULT_PAGE_LIMIT`], capped at [`MAX_PAGE_LIMIT`].
    pub limit: u32,
}

/// One page of events, newest first (ts desc, id desc).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// Opaque cursor of the next page, `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Events per time bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramQuery {
    /// Inclusive start, ms; the first bucket starts here.
    pub from: i64,
    /// Exclusive end, ms.
    pub to: i64,
    /// Bucket width, ms (> 0; at most [`MAX_HISTOGRAM_BUCKETS`] buckets).
    pub bucket_ms: i64,
    /// Only events of this agent.
    pub agent_id: Option<String>,
    /// Optional query-language filter.
    pub query: Option<String>,
}

/// One histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBucket {
    /// Bucket start, ms.
    pub start: i64,
    /// Events in `[start, start + bucket_ms)`.
    pub count: u64,
}

// ---------------------------------------------------------------- alerts

/// Sigma rule level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// informational
    Informational,
    /// low
    Low,
    /// medium
    Medium,
    /// high
    High,
    /// critical
    Critical,
}

impl Level {
    /// All levels, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

/// Alert triage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Not looked at yet. Open: repeats fold into it.
    New,
    /// Someone is on it. Open: repeats fold into it.
    Acknowledged,
    /// Closed: handled.
    Resolved,
    /// Closed: not a real threat.
    FalsePositive,
}

impl AlertStatus {
    /// All statuses.
    pub const ALL: [AlertStatus; 4] = [
        AlertStatus::New,
        AlertStatus::Acknowledged,
        AlertStatus::Resolved,
        AlertStatus::FalsePositive,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::New => "new",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
            AlertStatus::FalsePositive => "false_positive",
        }
    }

    /// Open alerts absorb repeated detections; closed ones never change by themselves.
    pub fn is_open(self) -> bool {
        matches!(self, AlertStatus::New | AlertStatus::Acknowledged)
    }

    /// The workflow: new → acknowledged → resolved / false_positive; new may close at once;
    /// acknowledged may go back to new; a closed alert may be reopened (→ new).
    pub fn can_change_to(self, to: AlertStatus) -> bool {
        use AlertStatus::*;
        matches!(
            (self, to),
            (New, Acknowledged | Resolved | FalsePositive)
                | (Acknowledged, New | Resolved | FalsePositive)
                | (Resolved | FalsePositive, New)
        )
    }
}

/// API token role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Triage and hunt.
    Analyst,
    /// Read only.
    Viewer,
    /// May only send events.
    AgentIngest,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::AgentIngest => "agent-ingest",
        }
    }

    /// Whether an operator account may have this role (admin, analyst, viewer — not
    /// agent-ingest).
    pub fn is_operator_role(self) -> bool {
        !matches!(self, Role::AgentIngest)
    }

    /// How much the role may do: admin 3 > analyst 2 > viewer 1 > agent-ingest 0 (which may
    /// only send events, so it counts as the least).
    pub fn privilege(self) -> u8 {
        match self {
            Role::Admin => 3,
            Role::Analyst => 2,
            Role::Viewer => 1,
            Role::AgentIngest => 0,
        }
    }

    /// The lower of this role and `ceiling` (by [`Role::privilege`]): what a token of this role
    /// owned by a user with role `ceiling` may do.
    pub fn capped_by(self, ceiling: Role) -> Role {
        if ceiling.privilege() < self.privilege() {
            ceiling
        } else {
            self
        }
    }
}

macro_rules! str_enum {
    ($t:ty, $what:literal, [$($v:expr),*]) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                [$($v),*]
                    .into_iter()
                    .find(|v: &$t| v.as_str() == s)
                    .ok_or_else(|| StoreError::InvalidArgument(format!("unknown {} {:?}", $what, s)))
            }
        }
    };
}
str_enum!(
    Level,
    "level",
    [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical
    ]
);
str_enum!(
    AlertStatus,
    "alert status",
    [
        AlertStatus::New,
        AlertStatus::Acknowledged,
        AlertStatus::Resolved,
        AlertStatus::FalsePositive
    ]
);
str_enum!(
    Role,
    "role",
    [Role::Admin, Role::Analyst, Role::Viewer, Role::AgentIngest]
);

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
    /// The matched event's id.
    pub event_id: Uuid,
    /// The matched event's time, ms.
    pub ts: i64,
}

/// An alert: repeated detections of one rule on one agent, folded together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Alert id.
    pub id: i64,
    /// Rule id.
    pub rule_id: String,
    /// Rule title (as of the first detection).
    pub rule_title: String,
    /// Rule level (as of the first detection).
    pub level: Level,
    /// Rule tags (as of the first detection).
    pub tags: Vec<String>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Earliest matched event time, ms.
    pub first_seen: i64,
    /// Latest matched event time, ms.
    pub last_seen: i64,
    /// Number of detections folded in.
    pub count: i64,
    /// The first [`MAX_ALERT_EVENT_IDS`] matched event ids.
    pub event_ids: Vec<Uuid>,
    /// Triage status.
    pub status: AlertStatus,
    /// Who works on it.
    pub assignee: Option<String>,
    /// Created, ms (wall clock).
    pub created_at: i64,
    /// Last changed, ms (wall clock).
    pub updated_at: i64,
}

/// Whether a detection opened an alert or folded into an open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertChange {
    /// A new alert was opened.
    Created,
    /// An open alert absorbed the detection.
    Updated,
}

/// Result of recording a detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectionOutcome {
    /// Created or updated.
    pub change: AlertChange,
    /// The alert after the change.
    pub alert: Alert,
}

/// Alert listing filter; newest `last_seen` first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertQuery {
    /// Only these statuses (empty = all).
    pub statuses: Vec<AlertStatus>,
    /// Only this level and above.
    pub min_level: Option<Level>,
    /// Only this rule.
    pub rule_id: Option<String>,
    /// Only this agent.
    pub agent_id: Option<String>,
    /// Only this assignee.
    pub assignee: Option<String>,
    /// `last_seen >= from`, ms.
    pub from: Option<i64>,
    /// `last_seen < to`, ms.
    pub to: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (see [`EventQuery::limit`]).
    pub limit: u32,
}

/// One page of alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertPage {
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A comment on an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Comment id.
    pub id: i64,
    /// Alert id.
    pub alert_id: i64,
    /// Who wrote it.
    pub author: String,
    /// Text.
    pub body: String,
    /// When, ms.
    pub created_at: i64,
}

/// One step of an alert's status history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// Row id.
    pub id: i64,
    /// Alert id.
    pub alert_id: i64,
    /// Who changed it.
    pub actor: String,
    /// Old status.
    pub from: AlertStatus,
    /// New status.
    pub to: AlertStatus,
    /// Optional reason.
    pub note: Option<String>,
    /// When, ms.
    pub changed_at: i64,
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
    /// Alerts opened by this batch.
    pub alerts_created: usize,
    /// Alerts (opened earlier) that absorbed detections of this batch.
    pub alerts_updated: usize,
    /// Every alert the batch touched, in order of first touch, in its final state;
    /// `change` is `Created` if the batch opened it.
    pub alerts: Vec<DetectionOutcome>,
}

// ---------------------------------------------------------------- rules

/// Per-rule state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    /// Rule id.
    pub rule_id: String,
    /// Whether the rule runs.
    pub enabled: bool,
    /// Detections recorded.
    pub hit_count: i64,
    /// Event time of the latest detection, ms.
    pub last_hit: Option<i64>,
    /// Last changed, ms.
    pub updated_at: i64,
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

/// A token as stored (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token id.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created, ms.
    pub created_at: i64,
    /// Expiry, ms.
    pub expires_at: Option<i64>,
    /// Last successful verification, ms (updated at most once a minute).
    pub last_used_at: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// The user the token belongs to, if any.
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

/// Longest user name, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;
/// The interface languages a user may choose.
pub const USER_LANGUAGES: [&str; 2] = ["en", "ru"];

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

/// An operator account (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// User id.
    pub id: i64,
    /// Login name as created (trimmed).
    pub username: String,
    /// Admin, analyst or viewer.
    pub role: Role,
    /// Interface language (`"en"`, `"ru"`), `None` = the browser's.
    pub language: Option<String>,
    /// Created, ms.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Last change of role, password, language or disabled state, ms.
    pub updated_at: i64,
    /// Last successful login, ms.
    pub last_login_at: Option<i64>,
    /// Disabled since, ms; a disabled user has no sessions and its tokens do not verify.
    pub disabled_at: Option<i64>,
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
}

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

/// What an agent says about itself (at enrollment and in every heartbeat).
///
/// The store refuses (`InvalidArgument`) a blank `hostname`, `os_type` or `agent_version`,
/// a hostname over 255 bytes, `os_type`/`agent_version` over 64 bytes, the optional texts over
/// 255 bytes, more than 1,024 IPs or an IP text over 64 bytes.
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
    /// Set by [`crate::Store::mark_agents_offline`], cleared by the next heartbeat or ingest.
    pub offline_since: Option<i64>,
    /// Revoked, ms.
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

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

// ---------------------------------------------------------------- agent commands

/// Largest `result` of a command (its JSON text), bytes.
pub const MAX_COMMAND_RESULT_BYTES: usize = 1024 * 1024;
/// Largest `args` of a command (its JSON text), bytes.
pub const MAX_COMMAND_ARGS_BYTES: usize = 64 * 1024;
/// Longest `error` of a command, bytes.
pub const MAX_COMMAND_ERROR_BYTES: usize = 64 * 1024;

/// Where a command to an agent stands.
///
/// `pending` → `delivered` (in a heartbeat answer; again after the redelivery delay) →
/// `done` / `failed` (reported by the agent) or `expired` (delivered the most times without a
/// result). `done` and `failed` are final; an expired command still takes a late result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

    /// The stored name.
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

str_enum!(
    CommandStatus,
    "command status",
    [
        CommandStatus::Pending,
        CommandStatus::Delivered,
        CommandStatus::Done,
        CommandStatus::Failed,
        CommandStatus::Expired
    ]
);

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

/// A command for an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentCommand {
    /// Command id (UUID v7, made by the store).
    pub id: Uuid,
    /// The agent that is to run it.
    pub agent_id: String,
    /// What to do.
    pub kind: String,
    /// Its arguments.
    pub args: Value,
    /// Where it stands.
    pub status: CommandStatus,
    /// Who asked.
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

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number.
    pub id: i64,
    /// When, ms.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// Details.
    pub details: Value,
}

/// Audit listing filter; newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// `at >= from`.
    pub from: Option<i64>,
    /// `at < to`.
    pub to: Option<i64>,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only records with `id < before_id` (pagination: pass the last id seen).
    pub before_id: Option<i64>,
    /// Page size.
    pub limit: u32,
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
