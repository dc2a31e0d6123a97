//! Alerts: their level and triage status, the alert record, its comments and history.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::named;

/// Most matched event ids one alert keeps (the first ones seen).
pub const MAX_ALERT_EVENT_IDS: usize = 100;

/// How serious an alert is: the level of the Sigma rule (or the mapped scan severity) that
/// raised it. Ordered lowest first, so `level >= Level::High` filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// The stored (and serialized) name.
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

named!(Level, "level");

/// Alert triage status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// The stored (and serialized) name.
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

named!(AlertStatus, "alert status");

/// An alert: repeated detections of one rule on one agent, folded together. The API sends it
/// as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    /// Alert id.
    pub id: i64,
    /// Rule id.
    pub rule_id: String,
    /// Rule title (as of the first detection).
    pub rule_title: String,
    /// Rule level (as of the first detection).
    pub level: Level,
    /// Rule tags (as of the first detection; ATT&CK: `attack.t1059.001`, ...).
    pub tags: Vec<String>,
    /// Agent.
    pub agent_id: Option<String>,
    /// The host the matched events came from (`host.name`, as the first event spelled it);
    /// `None` when the events named none.
    #[serde(default)]
    pub host: Option<String>,
    /// Earliest matched event time, ms.
    pub first_seen: i64,
    /// Latest matched event time, ms.
    pub last_seen: i64,
    /// Number of detections folded in.
    pub count: i64,
    /// The first [`MAX_ALERT_EVENT_IDS`] matched event ids.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub event_ids: Vec<Uuid>,
    /// Triage status.
    pub status: AlertStatus,
    /// Who works on it.
    pub assignee: Option<String>,
    /// Created, ms (wall clock): when the rule first fired, which for uploaded old logs can be
    /// years after the events.
    pub created_at: i64,
    /// Last changed, ms (wall clock).
    pub updated_at: i64,
}

/// Whether a detection opened an alert or folded into an open one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertChange {
    /// A new alert was opened.
    Created,
    /// An open alert absorbed the detection.
    Updated,
}

impl AlertChange {
    /// Both changes.
    pub const ALL: [AlertChange; 2] = [AlertChange::Created, AlertChange::Updated];

    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChange::Created => "created",
            AlertChange::Updated => "updated",
        }
    }
}

named!(AlertChange, "alert change");

/// Which of an alert's times a listing filters and sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertTime {
    /// When the matched events happened (`last_seen`).
    #[default]
    Event,
    /// When Dozor detected them (`created_at`): fresh detections on uploaded old logs.
    Detected,
}

impl AlertTime {
    /// Every value.
    pub const ALL: [AlertTime; 2] = [AlertTime::Event, AlertTime::Detected];

    /// As in URLs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertTime::Event => "event",
            AlertTime::Detected => "detected",
        }
    }
}

named!(AlertTime, "alert time");

/// Alert listing filter; newest first by [`AlertQuery::time`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertQuery {
    /// Only these statuses (empty = all).
    pub statuses: Vec<AlertStatus>,
    /// Only this level and above.
    pub min_level: Option<Level>,
    /// Only this rule.
    pub rule_id: Option<String>,
    /// Only rules with this id, or whose title contains this (any letter case): what a
    /// person types into a filter.
    pub rule_text: Option<String>,
    /// Only this agent.
    pub agent_id: Option<String>,
    /// Only this host (`host.name`, any letter case).
    pub host: Option<String>,
    /// Only alerts with this tag or a tag under it (`attack.t1059` also finds
    /// `attack.t1059.001`), any letter case.
    pub tag: Option<String>,
    /// Only this assignee.
    pub assignee: Option<String>,
    /// Which time `from`, `to` and the order use.
    pub time: AlertTime,
    /// `time >= from`, ms.
    pub from: Option<i64>,
    /// `time < to`, ms.
    pub to: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (see [`crate::EventQuery::limit`]).
    pub limit: u32,
}

/// One page of alerts, newest `last_seen` first; `GET /api/v1/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertPage {
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// Cursor of the next page, `None` on the last page.
    pub next_cursor: Option<String>,
}

/// A comment on an alert, as stored (the API calls `body` `text`: see
/// [`crate::api::Comment`]).
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

/// One step of an alert's status history, as stored (the API's form is
/// [`crate::api::StatusChange`]).
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
