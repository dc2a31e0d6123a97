//! What the API sends and takes. The records and views shared with the CLI and the agent are
//! `dozor_model`'s types (their schemas derived there, feature `openapi`); the ones only the
//! server sends are here. Times are milliseconds since the Unix epoch (UTC).

use std::collections::BTreeMap;

pub use dozor_model::api::{
    AlertDetail, AlertNotice, AssigneeRequest, Comment, CommentRequest, StatusChange, StatusRequest,
};
pub use dozor_model::{Alert, AlertPage, EventPage, HistogramBucket, StoredEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

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
