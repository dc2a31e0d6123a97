//! What the API sends and takes. These are the API's own types (converted from the store's),
//! so the OpenAPI document is generated from exactly what is serialized. Times are
//! milliseconds since the Unix epoch (UTC).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::{Ref, RefOr, Schema};
use uuid::Uuid;

fn enum_schema(description: &str, values: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

pub(crate) fn level_schema() -> Object {
    enum_schema(
        "Sigma rule level",
        &dozor_store::Level::ALL.map(|l| l.as_str()),
    )
}

pub(crate) fn status_schema() -> Object {
    enum_schema(
        "Alert status",
        &dozor_store::AlertStatus::ALL.map(|s| s.as_str()),
    )
}

fn event_doc_schema() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("Event"))
}

/// A stored event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StoredEvent {
    /// `event.id`.
    #[schema(value_type = String, format = "uuid")]
    pub id: Uuid,
    /// Event time (`@timestamp`), ms.
    pub ts: i64,
    /// When the server received it, ms.
    pub received_at: i64,
    /// The agent whose credential sent it.
    pub agent_id: Option<String>,
    /// The normalized event.
    #[schema(schema_with = event_doc_schema)]
    pub doc: Value,
}

impl From<dozor_store::StoredEvent> for StoredEvent {
    fn from(e: dozor_store::StoredEvent) -> Self {
        StoredEvent {
            id: e.id,
            ts: e.ts,
            received_at: e.received_at,
            agent_id: e.agent_id,
            doc: e.doc,
        }
    }
}

/// One page of a search, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Events per time bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Histogram {
    /// Start of the first bucket, ms (`from` rounded down to a multiple of the interval).
    pub from: i64,
    /// Exclusive end, ms.
    pub to: i64,
    /// Bucket width, ms.
    pub interval_ms: i64,
    /// Events in all buckets.
    pub total: u64,
    /// Every bucket of the range, empty ones included.
    pub buckets: Vec<HistogramBucket>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistogramBucket {
    /// Bucket start, ms.
    pub start: i64,
    pub count: u64,
}

/// An alert: repeated detections of one rule on one agent, folded together.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub rule_id: String,
    pub rule_title: String,
    #[schema(schema_with = level_schema)]
    pub level: dozor_store::Level,
    /// Rule tags (ATT&CK: `attack.t1059.001`, ...).
    pub tags: Vec<String>,
    pub agent_id: Option<String>,
    /// Earliest matched event time, ms.
    pub first_seen: i64,
    /// Latest matched event time, ms.
    pub last_seen: i64,
    /// Detections folded in.
    pub count: i64,
    /// The first 100 matched event ids.
    #[schema(value_type = Vec<String>)]
    pub event_ids: Vec<Uuid>,
    #[schema(schema_with = status_schema)]
    pub status: dozor_store::AlertStatus,
    pub assignee: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<dozor_store::Alert> for Alert {
    fn from(a: dozor_store::Alert) -> Self {
        Alert {
            id: a.id,
            rule_id: a.rule_id,
            rule_title: a.rule_title,
            level: a.level,
            tags: a.tags,
            agent_id: a.agent_id,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            count: a.count,
            event_ids: a.event_ids,
            status: a.status,
            assignee: a.assignee,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// One page of alerts, newest `last_seen` first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A comment on an alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Comment {
    pub id: i64,
    pub alert_id: i64,
    pub author: String,
    pub text: String,
    pub created_at: i64,
}

impl From<dozor_store::Comment> for Comment {
    fn from(c: dozor_store::Comment) -> Self {
        Comment {
            id: c.id,
            alert_id: c.alert_id,
            author: c.author,
            text: c.body,
            created_at: c.created_at,
        }
    }
}

/// One step of an alert's status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusChange {
    pub actor: String,
    #[schema(schema_with = status_schema)]
    pub from: dozor_store::AlertStatus,
    #[schema(schema_with = status_schema)]
    pub to: dozor_store::AlertStatus,
    /// The comment given with the change.
    pub comment: Option<String>,
    pub changed_at: i64,
}

impl From<dozor_store::StatusChange> for StatusChange {
    fn from(c: dozor_store::StatusChange) -> Self {
        StatusChange {
            actor: c.actor,
            from: c.from,
            to: c.to,
            comment: c.note,
            changed_at: c.changed_at,
        }
    }
}

/// An alert with everything about it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertDetail {
    pub alert: Alert,
    /// Oldest first.
    pub comments: Vec<Comment>,
    /// Oldest first.
    pub history: Vec<StatusChange>,
    /// The matched events still stored (of `alert.event_ids`), in that order.
    pub events: Vec<StoredEvent>,
    /// Matched event ids no longer stored (retention).
    #[schema(value_type = Vec<String>)]
    pub missing_events: Vec<Uuid>,
}

/// `POST /api/v1/alerts/{id}/status`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// new → acknowledged → resolved / false_positive; new may close at once, acknowledged
    /// may go back to new, a closed alert may be reopened (→ new).
    #[schema(schema_with = status_schema)]
    pub status: dozor_store::AlertStatus,
    /// Why; kept in the status history.
    #[serde(default)]
    pub comment: Option<String>,
}

/// `POST /api/v1/alerts/{id}/assignee`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssigneeRequest {
    /// Who works on it (at most 200 characters, no control characters); `null` or empty to
    /// unassign.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub assignee: Option<String>,
}

/// `POST /api/v1/alerts/{id}/comments`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    /// At most 64 KiB; not only white space.
    #[schema(min_length = 1, pattern = r"\S")]
    pub text: String,
}

/// A rule with its state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    #[serde(flatten)]
    pub info: crate::state::RuleInfo,
    /// Whether the pipeline runs it (default true).
    pub enabled: bool,
    /// Detections recorded.
    pub hit_count: i64,
    /// Event time of the latest detection, ms.
    pub last_hit: Option<i64>,
}

/// `GET /api/v1/rules`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<Rule>,
}

/// `GET /api/v1/rules/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleDetail {
    #[serde(flatten)]
    pub rule: Rule,
    /// The rule's source text.
    pub yaml: Option<String>,
}

/// `POST /api/v1/rules/{id}/enabled`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnabledRequest {
    pub enabled: bool,
}

/// `POST /api/v1/rules/test`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTestRequest {
    /// One Sigma rule (YAML).
    #[schema(min_length = 1, pattern = r"\S")]
    pub rule: String,
    /// Which stored events to test it on (query language); default: all.
    #[serde(default)]
    pub query: Option<String>,
    /// How many of the newest matching events (default 1000, at most 10000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
}

/// What a rule test found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleTestResult {
    /// Events the rule ran over.
    pub tested: usize,
    /// How many it matched.
    pub matched: usize,
    /// The ids of the events it matched, newest first.
    #[schema(value_type = Vec<String>)]
    pub event_ids: Vec<Uuid>,
}

/// `GET /api/v1/stats`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// Stored events.
    pub events_total: u64,
    /// Events with an event time in the last 24 hours.
    pub events_last_24h: u64,
    /// Alerts per status (every status present).
    pub alerts_by_status: BTreeMap<String, u64>,
    /// Open (new or acknowledged) alerts per level (every level present).
    pub open_alerts_by_level: BTreeMap<String, u64>,
    pub rules: RuleCounts,
    /// The pipeline of this process, when it runs one.
    pub pipeline: Option<PipelineCounts>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleCounts {
    /// Rule documents loaded.
    pub total: usize,
    /// Active (running) rules not disabled.
    pub active_enabled: usize,
    /// Rules switched off.
    pub disabled: usize,
    /// Documents that can't run (unrouted, unsupported, invalid).
    pub not_active: usize,
}

/// The pipeline counters since the process started.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PipelineCounts {
    pub events_processed: u64,
    pub events_stored: u64,
    pub events_duplicate: u64,
    pub detections: u64,
    pub alerts_created: u64,
    pub alerts_updated: u64,
}

/// The data of an `alert` event on `GET /api/v1/alerts/stream`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AlertNotice)]
pub struct StreamNotice {
    /// `created` or `updated`.
    pub change: String,
    pub alert: Alert,
}
