//! What the pages take: the common context, one view model per page (built by the server from
//! store types), and the query parameters of the list pages (parsed and written back here, so
//! links and handlers agree on the names).

use std::collections::{BTreeMap, HashMap};

/// An agent's status (computed by the server from its thresholds): the model's, re-exported
/// so `dozor_ui::AgentStatus` keeps naming it.
pub use dozor_model::AgentStatus;
use dozor_model::{
    Agent, AgentCommand, Alert, AlertStatus, AlertTime, Approval, ApprovalStatus, AuditEntry,
    Comment, HistogramBucket, Host, IntelMatch, IntelSource, IocView, Level, PlaybookRun,
    PlaybookRunStatus, PlaybookStep, PlaybookView, Role, StatusChange, StoredEvent, TokenInfo,
    User,
};
use dozor_model::{
    AgentInventory, StoredVuln, VULN_LEVELS, VULN_SOURCES, VulnScan, VulnScanJob, VulnStatus,
    VulnSummary,
};

use crate::i18n::Lang;
use crate::url::Query;

/// Name of the hidden CSRF field in every POST form.
pub const CSRF_FIELD: &str = "csrf";
/// Name of the hidden field that says where to go back after a POST (a local path).
pub const RETURN_FIELD: &str = "return_to";

/// The catalog keys the server may pass as [`PageCtx::flash`] after a POST (`flash.*` are
/// shown as success, `error.*` as failure) or as a view's `error`.
pub const FLASH_KEYS: &[&str] = &[
    "flash.anomaly_training",
    "flash.status_changed",
    "flash.bulk_changed",
    "flash.comment_added",
    "flash.assigned",
    "flash.rule_enabled",
    "flash.rule_disabled",
    "flash.user_created",
    "flash.role_changed",
    "flash.user_disabled",
    "flash.user_enabled",
    "flash.password_reset",
    "flash.password_changed",
    "flash.language_saved",
    "flash.token_created",
    "flash.token_revoked",
    "flash.scan_requested",
    "flash.playbook_enabled",
    "flash.playbook_disabled",
    "flash.run_started",
    "flash.approved",
    "flash.rejected",
    "flash.isolation_requested",
    "flash.isolation_queued",
    "flash.release_requested",
    "flash.exception_added",
    "flash.exception_removed",
    "flash.search_saved",
    "flash.search_renamed",
    "flash.search_deleted",
    "error.search_name_taken",
    "error.search_invalid",
    "flash.incident_created",
    "flash.incident_updated",
    "flash.incident_alerts_added",
    "flash.incident_alert_removed",
    "flash.incident_task_added",
    "flash.incident_task_set",
    "flash.incident_note_added",
    "flash.incident_observable_added",
    "flash.incident_observable_removed",
    "error.incident_no_alerts",
    "error.incident_number",
    "error.incident_conflict",
    "error.incident_invalid",
    "error.exception_no_condition",
    "error.csrf",
    "error.forbidden",
    "error.not_found",
    "error.invalid_transition",
    "error.bulk_none",
    "error.bulk_partial",
    "error.comment_empty",
    "error.bad_cursor",
    "error.bad_time",
    "error.password_mismatch",
    "error.password_wrong",
    "error.password_weak",
    "error.username_taken",
    "error.username_invalid",
    "error.last_admin",
    "error.self",
    "error.token_name",
    "error.scan_path",
    "error.agent_revoked",
    "error.too_many_commands",
    "error.failed",
    "error.already_decided",
    "error.own_request",
    "error.playbook_not_manual",
    "error.playbook_invalid",
    "error.playbook_missing",
    "error.response_off",
    "error.bad_alert_id",
    "error.bad_action",
    "flash.ioc_added",
    "flash.ioc_enabled",
    "flash.ioc_disabled",
    "flash.intel_synced",
    "flash.intel_sync_partial",
    "error.intel_sync_failed",
    "error.intel_busy",
    "error.intel_off",
    "error.ioc_invalid",
    "error.source_invalid",
    "flash.vuln_accepted",
    "flash.vuln_false_positive",
    "flash.vuln_reopened",
    "error.vuln_status",
];

/// What every signed-in page needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCtx {
    /// The language to render in.
    pub lang: Lang,
    /// The signed-in user.
    pub username: String,
    /// Their role (viewer < analyst < admin); forms the role may not use are not shown.
    pub role: Role,
    /// The session's CSRF token, put in every POST form.
    pub csrf_token: String,
    /// The request's path and query (active navigation, "come back here" after a POST).
    pub path_and_query: String,
    /// A catalog key of a message to show once (`flash.*` success, `error.*` failure);
    /// unknown keys are not shown.
    pub flash: Option<String>,
    /// Now, ms since the epoch (relative times, the default time ranges).
    pub now: i64,
}

/// A preset time range of the list pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Range {
    /// The last 15 minutes.
    Min15,
    /// The last hour.
    Hour1,
    /// The last 24 hours.
    #[default]
    Hours24,
    /// The last 7 days.
    Days7,
    /// The last 30 days.
    Days30,
    /// No lower bound.
    All,
    /// `from` / `to` as typed.
    Custom,
}

impl Range {
    /// Every range, in the order the selector shows them.
    pub const ALL: [Range; 7] = [
        Range::Min15,
        Range::Hour1,
        Range::Hours24,
        Range::Days7,
        Range::Days30,
        Range::All,
        Range::Custom,
    ];

    /// The parameter value.
    pub fn code(self) -> &'static str {
        match self {
            Range::Min15 => "15m",
            Range::Hour1 => "1h",
            Range::Hours24 => "24h",
            Range::Days7 => "7d",
            Range::Days30 => "30d",
            Range::All => "all",
            Range::Custom => "custom",
        }
    }

    /// Parses a parameter value.
    pub fn from_code(code: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Its length, ms (`None` for all time and custom).
    pub fn span_ms(self) -> Option<i64> {
        Some(match self {
            Range::Min15 => 15 * 60_000,
            Range::Hour1 => 3_600_000,
            Range::Hours24 => 86_400_000,
            Range::Days7 => 7 * 86_400_000,
            Range::Days30 => 30 * 86_400_000,
            Range::All | Range::Custom => return None,
        })
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Range::Min15 => "range.15m",
            Range::Hour1 => "range.1h",
            Range::Hours24 => "range.24h",
            Range::Days7 => "range.7d",
            Range::Days30 => "range.30d",
            Range::All => "range.all",
            Range::Custom => "range.custom",
        }
    }
}

/// A time range as the list pages take it: a preset, or `from`/`to` as the user typed them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// The preset (or `Custom`).
    pub range: Range,
    /// Custom start as typed (ms, `now-2h`, `2026-11-21 14:00`, `21.11.2026 14:00`, RFC 3339).
    pub from: String,
    /// Custom end as typed.
    pub to: String,
}

impl TimeRange {
    /// `[from, to)` in ms for `now`; `Err(field)` names a custom bound that could not be read.
    pub fn bounds(&self, now: i64) -> Result<(Option<i64>, Option<i64>), &'static str> {
        match self.range {
            Range::Custom => {
                let from = match self.from.trim() {
                    "" => None,
                    t => Some(crate::format::parse_time(t, now).ok_or("from")?),
                };
                let to = match self.to.trim() {
                    "" => None,
                    t => Some(crate::format::parse_time(t, now).ok_or("to")?),
                };
                Ok((from, to))
            }
            Range::All => Ok((None, None)),
            r => Ok((r.span_ms().map(|s| now - s), None)),
        }
    }

    fn parse(pairs: &[(String, String)], default: Range) -> TimeRange {
        let range = param(pairs, "range")
            .and_then(Range::from_code)
            .unwrap_or(default);
        TimeRange {
            range,
            from: param(pairs, "from").unwrap_or("").to_owned(),
            to: param(pairs, "to").unwrap_or("").to_owned(),
        }
    }

    fn write(&self, q: &mut Query, default: Range) {
        if self.range != default {
            q.push("range", self.range.code());
        }
        if self.range == Range::Custom {
            q.push("from", &self.from);
            q.push("to", &self.to);
        }
    }
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn params<'a>(pairs: &'a [(String, String)], name: &str) -> impl Iterator<Item = &'a str> {
    let name = name.to_owned();
    pairs
        .iter()
        .filter(move |(k, _)| *k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

// ------------------------------------------------------------------ overview

/// Alerts of one hour, per level.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LevelBucket {
    /// Bucket start, ms.
    pub start: i64,
    /// Counts in [`Level::ALL`] order (informational … critical).
    pub counts: [u64; 5],
}

/// A rule among the most frequent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRule {
    /// Rule id.
    pub rule_id: String,
    /// Rule title.
    pub title: String,
    /// Level.
    pub level: Level,
    /// Alerts in the period.
    pub alerts: u64,
    /// Detections folded into them.
    pub detections: u64,
}

/// Agents per status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AgentCounts {
    /// Online.
    pub online: u64,
    /// Degraded.
    pub degraded: u64,
    /// Offline.
    pub offline: u64,
    /// Revoked.
    pub revoked: u64,
}

/// Rules per state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleCounts {
    /// Every rule document.
    pub total: u64,
    /// Running.
    pub active_enabled: u64,
    /// Switched off by an admin.
    pub disabled: u64,
    /// Unrouted, unsupported or invalid.
    pub not_active: u64,
}

/// The overview page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OverviewView {
    /// Alerts per hour and level over the last 24 h (by `last_seen`), oldest first.
    pub alerts_per_hour: Vec<LevelBucket>,
    /// Open alerts per level.
    pub open_by_level: BTreeMap<Level, u64>,
    /// Alerts per status.
    pub alerts_by_status: BTreeMap<AlertStatus, u64>,
    /// Most frequent rules of the last 24 h.
    pub top_rules: Vec<TopRule>,
    /// Agents per status.
    pub agents: AgentCounts,
    /// Events per bucket (ingest rate), oldest first.
    pub ingest: Vec<HistogramBucket>,
    /// Width of an ingest bucket, ms.
    pub ingest_bucket_ms: i64,
    /// All stored events.
    pub events_total: u64,
    /// Events of the last 24 h.
    pub events_last_24h: u64,
    /// Rule counts.
    pub rules: RuleCounts,
}

// ------------------------------------------------------------------ alerts

/// What the alert list sorts by (within the shown page; the store pages by last seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Last seen.
    #[default]
    Time,
    /// Level.
    Level,
    /// Detections.
    Count,
    /// Rule title.
    Rule,
}

impl SortKey {
    /// The parameter value.
    pub fn code(self) -> &'static str {
        match self {
            SortKey::Time => "time",
            SortKey::Level => "level",
            SortKey::Count => "count",
            SortKey::Rule => "rule",
        }
    }

    fn from_code(code: &str) -> Option<SortKey> {
        [SortKey::Time, SortKey::Level, SortKey::Count, SortKey::Rule]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// The alert list's parameters: `status` (repeats), `min_level`, `rule`, `agent`, `host`,
/// `tag`, `assignee`, `range`/`from`/`to`, `sort`, `dir`, `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertsParams {
    /// Statuses shown (empty = all).
    pub statuses: Vec<AlertStatus>,
    /// Lowest level shown.
    pub min_level: Option<Level>,
    /// Rule id or words of its title.
    pub rule: String,
    /// Agent id or host name of an agent.
    pub agent: String,
    /// Host name (`host.name` of the events).
    pub host: String,
    /// A tag, or one above the alerts' tags (`attack.t1059` finds `attack.t1059.001` too).
    pub tag: String,
    /// Assignee.
    pub assignee: String,
    /// Which time the range and the order use: event time or detection time.
    pub by: AlertTime,
    /// Within this range of [`AlertsParams::by`].
    pub time: TimeRange,
    /// Sort column.
    pub sort: SortKey,
    /// Ascending instead of descending.
    pub asc: bool,
    /// Page cursor.
    pub cursor: Option<String>,
}

impl AlertsParams {
    /// The default time range of the alert list.
    // Every open alert by default, however old its events (imported logs): the queue is
    // the work, not a time window.
    pub const DEFAULT_RANGE: Range = Range::All;

    /// Reads the query string's pairs (unknown names and bad values are ignored; with no
    /// status given the open statuses are shown).
    pub fn parse(pairs: &[(String, String)]) -> AlertsParams {
        let mut statuses: Vec<AlertStatus> = params(pairs, "status")
            .filter_map(|s| s.parse().ok())
            .collect();
        statuses.sort();
        statuses.dedup();
        if statuses.is_empty() && param(pairs, "status_any").is_none() {
            statuses = vec![AlertStatus::New, AlertStatus::Acknowledged];
        }
        AlertsParams {
            statuses,
            min_level: param(pairs, "min_level").and_then(|l| l.parse().ok()),
            rule: param(pairs, "rule").unwrap_or("").to_owned(),
            agent: param(pairs, "agent").unwrap_or("").to_owned(),
            host: param(pairs, "host").unwrap_or("").to_owned(),
            tag: param(pairs, "tag").unwrap_or("").to_owned(),
            assignee: param(pairs, "assignee").unwrap_or("").to_owned(),
            by: param(pairs, "by")
                .and_then(|b| b.parse().ok())
                .unwrap_or_default(),
            time: TimeRange::parse(pairs, Self::DEFAULT_RANGE),
            sort: param(pairs, "sort")
                .and_then(SortKey::from_code)
                .unwrap_or_default(),
            asc: param(pairs, "dir") == Some("asc"),
            cursor: param(pairs, "cursor").map(str::to_owned),
        }
    }

    /// The filter part of the query string (no sort, no cursor).
    pub fn filter_query(&self) -> Query {
        let mut q = Query::new();
        if self.statuses.is_empty() {
            q.push("status_any", "1");
        }
        for s in &self.statuses {
            q.push("status", s.as_str());
        }
        q.push_opt("min_level", self.min_level.map(|l| l.as_str()));
        q.push("rule", &self.rule);
        q.push("agent", &self.agent);
        q.push("host", &self.host);
        q.push("tag", &self.tag);
        q.push("assignee", &self.assignee);
        if self.by != AlertTime::default() {
            q.push("by", self.by.as_str());
        }
        self.time.write(&mut q, Self::DEFAULT_RANGE);
        q
    }

    /// The whole query string (filters, sort, cursor).
    pub fn query(&self) -> Query {
        let mut q = self.filter_query();
        if self.sort != SortKey::Time {
            q.push("sort", self.sort.code());
        }
        if self.asc {
            q.push("dir", "asc");
        }
        q.push_opt("cursor", self.cursor.as_deref());
        q
    }

    /// Sorts a page of alerts as asked (stable; ties keep the store's newest-first order).
    pub fn sort_page(&self, alerts: &mut [Alert]) {
        use std::cmp::Reverse;
        match self.sort {
            SortKey::Time => alerts.sort_by_key(|a| {
                Reverse(match self.by {
                    AlertTime::Event => a.last_seen,
                    AlertTime::Detected => a.created_at,
                })
            }),
            SortKey::Level => alerts.sort_by_key(|a| Reverse(a.level)),
            SortKey::Count => alerts.sort_by_key(|a| Reverse(a.count)),
            SortKey::Rule => alerts.sort_by_cached_key(|a| Reverse(a.rule_title.to_lowercase())),
        }
        if self.asc {
            alerts.reverse();
        }
    }
}

/// The alert list page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertsView {
    /// The parameters the page was asked with.
    pub params: AlertsParams,
    /// One page of alerts, as the store returned it (the page sorts it).
    pub alerts: Vec<Alert>,
    /// Agent id → host name, for display.
    pub agent_names: HashMap<String, String>,
    /// The store's cursor of the next page.
    pub next_cursor: Option<String>,
    /// How many alerts match the filters in all (every page).
    pub total: u64,
    /// A catalog key of a problem with the parameters (e.g. `error.bad_cursor`).
    pub error: Option<String>,
}

/// A rule as the pages show it (the server fills it from its rule catalog and the store's
/// rule state).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleRow {
    /// Id its alerts carry.
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Level, when the document could be read.
    pub level: Option<Level>,
    /// Sigma status (`stable`, `test`, `experimental`, `deprecated`, `unsupported`).
    pub status: Option<String>,
    /// `detection`, `correlation` or `filter`.
    pub kind: String,
    /// `active`, `unrouted`, `unsupported` or `invalid`.
    pub outcome: String,
    /// Why it is not active.
    pub reason: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Author.
    pub author: String,
    /// File.
    pub path: String,
    /// Logsource product.
    pub product: Option<String>,
    /// Logsource category.
    pub category: Option<String>,
    /// Logsource service.
    pub service: Option<String>,
    /// Runs (not switched off).
    pub enabled: bool,
    /// Detections recorded.
    pub hit_count: i64,
    /// Latest detection, ms.
    pub last_hit: Option<i64>,
}

/// One alert with everything around it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDetailView {
    /// The alert.
    pub alert: Alert,
    /// Its rule, if the catalog still has it.
    pub rule: Option<RuleRow>,
    /// The agent's host name.
    pub agent_name: Option<String>,
    /// The matched events still stored (oldest first or as the store gave them).
    pub events: Vec<StoredEvent>,
    /// Matched events no longer stored.
    pub missing_events: usize,
    /// Comments, oldest first.
    pub comments: Vec<Comment>,
    /// Status changes, oldest first.
    pub history: Vec<StatusChange>,
    /// User names offered for assignment (empty: a free text field).
    pub assignees: Vec<String>,
    /// The response part: playbooks to run on it, its runs.
    pub response: ResponsePanel,
    /// The process tree of its first event that names a process.
    pub process_tree: Option<dozor_model::process_tree::ProcessTree>,
    /// The incident it is grouped into.
    pub incident: Option<i64>,
}

// ------------------------------------------------------------------ events

/// The event search's parameters: `q`, `range`/`from`/`to`, `agent`, `cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsParams {
    /// Query-language text.
    pub q: String,
    /// Time range.
    pub time: TimeRange,
    /// Agent id.
    pub agent: String,
    /// Page cursor.
    pub cursor: Option<String>,
    /// Extra columns of the results table (`cols`, repeated or comma-separated), each one of
    /// [`dozor_model::EVENT_COLUMNS`]; empty: the default table.
    pub cols: Vec<String>,
}

impl EventsParams {
    /// The default time range of the event search.
    pub const DEFAULT_RANGE: Range = Range::Hours24;

    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> EventsParams {
        EventsParams {
            q: pairs
                .iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default(),
            time: TimeRange::parse(pairs, Self::DEFAULT_RANGE),
            agent: param(pairs, "agent").unwrap_or("").to_owned(),
            cursor: param(pairs, "cursor").map(str::to_owned),
            cols: event_columns(params(pairs, "cols")),
        }
    }

    /// The query string without the cursor.
    pub fn filter_query(&self) -> Query {
        let mut q = Query::new();
        q.push("q", &self.q);
        self.time.write(&mut q, Self::DEFAULT_RANGE);
        q.push("agent", &self.agent);
        q.push("cols", self.cols.join(","));
        q
    }

    /// The events page of a saved search: its query, time range, agent and columns.
    pub fn of_saved(s: &dozor_model::SavedSearch) -> EventsParams {
        let p = &s.params;
        let range = p
            .range
            .as_deref()
            .and_then(Range::from_code)
            .unwrap_or(Self::DEFAULT_RANGE);
        EventsParams {
            q: s.query.clone(),
            time: TimeRange {
                range,
                from: p.from.clone().unwrap_or_default(),
                to: p.to.clone().unwrap_or_default(),
            },
            agent: p.agent.clone().unwrap_or_default(),
            cursor: None,
            cols: event_columns(p.columns.iter().map(String::as_str)),
        }
    }

    /// What a saved search keeps of these parameters.
    pub fn saved_params(&self) -> dozor_model::SavedSearchParams {
        let custom = self.time.range == Range::Custom;
        let typed = |t: &str| (custom && !t.trim().is_empty()).then(|| t.trim().to_owned());
        dozor_model::SavedSearchParams {
            range: (self.time.range != Self::DEFAULT_RANGE)
                .then(|| self.time.range.code().to_owned()),
            from: typed(&self.time.from),
            to: typed(&self.time.to),
            agent: (!self.agent.trim().is_empty()).then(|| self.agent.trim().to_owned()),
            columns: self.cols.clone(),
        }
    }
}

/// The known event columns among `names`, in the order given, without repeats.
fn event_columns<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if dozor_model::EVENT_COLUMNS.contains(&n) && !out.iter().any(|o| o == n) {
            out.push(n.to_owned());
        }
    }
    out
}

/// A query that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryProblem {
    /// 1-based character column, when known.
    pub column: Option<usize>,
    /// What is wrong (the store's words).
    pub message: String,
}

/// The event search page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventsView {
    /// The parameters.
    pub params: EventsParams,
    /// A query the store refused.
    pub query_error: Option<QueryProblem>,
    /// A catalog key of another problem (bad time, bad cursor).
    pub error: Option<String>,
    /// Events per bucket over the range (with the query), oldest first.
    pub histogram: Vec<HistogramBucket>,
    /// Bucket width, ms.
    pub bucket_ms: i64,
    /// One page of events, newest first.
    pub events: Vec<StoredEvent>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
    /// Agent id → host name.
    pub agent_names: HashMap<String, String>,
}

// ------------------------------------------------------------------ agents

/// An agent and its status.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRow {
    /// The registry record.
    pub agent: Agent,
    /// Its status now.
    pub status: AgentStatus,
}

/// The agent list's parameters: `q` (host name, id, IP, OS, version) and `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentsParams {
    /// Text filter.
    pub q: String,
    /// Only agents with this status.
    pub status: Option<AgentStatus>,
}

impl AgentsParams {
    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> AgentsParams {
        AgentsParams {
            q: param(pairs, "q").unwrap_or("").to_owned(),
            status: param(pairs, "status").and_then(|s| s.parse().ok()),
        }
    }
}

/// The agent list page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentsView {
    /// Every agent (the page filters them by the parameters).
    pub agents: Vec<AgentRow>,
    /// The parameters.
    pub params: AgentsParams,
}

/// One agent's page.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDetailView {
    /// The agent.
    pub agent: AgentRow,
    /// Its latest alerts.
    pub recent_alerts: Vec<Alert>,
    /// Its latest events.
    pub recent_events: Vec<StoredEvent>,
    /// Its latest commands (on-demand scans, response actions), newest first.
    pub commands: Vec<AgentCommand>,
    /// The response part: playbooks to run on it, its runs, its pending approvals.
    pub response: ResponsePanel,
}

/// The anomalies page: the behavioural models' status and the anomaly events they raised.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnomaliesView {
    /// The `kind` filter as given (empty: every kind).
    pub kind: String,
    /// The `entity` filter as given.
    pub entity: String,
    /// The `range` filter.
    pub range: Range,
    /// Start of the window listed, ms (`None`: all time).
    pub from: Option<i64>,
    /// End of the window listed, ms.
    pub to: i64,
    /// Anomaly events (`event.action: anomaly-detected`), newest first.
    pub anomalies: Vec<dozor_model::StoredEvent>,
    /// `next_cursor` of the list, for "older".
    pub next_cursor: Option<String>,
    /// Anomalies per kind in the window (kind, count), for the chart.
    pub per_kind: Vec<(String, u64)>,
    /// The models.
    pub models: AnomalyModelsView,
}

/// The state of the behavioural models (`GET /api/v1/anomaly/models`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnomalyModelsView {
    /// `disabled`, `starting`, `training` or `scoring`.
    pub state: String,
    /// Days a training learns.
    pub lookback_days: u32,
    /// Findings at this score alert (`None`: events only).
    pub alert_score: Option<f64>,
    /// When the models were last trained, ms.
    pub trained_at: Option<i64>,
    /// Events the last training learned.
    pub training_events: u64,
    /// First event time of the training, ms.
    pub training_first: Option<i64>,
    /// Last event time of the training, ms.
    pub training_last: Option<i64>,
    /// The next scheduled training, ms.
    pub next_training: Option<i64>,
    /// Events scored since the training.
    pub scored_events: u64,
    /// Findings since the training.
    pub findings: u64,
    /// Alerts since the training.
    pub alerts: u64,
    /// End of the last run, ms.
    pub last_run: Option<i64>,
    /// What went wrong in the last run.
    pub last_error: Option<String>,
    /// (kind, model, entity field, entities).
    pub models: Vec<(String, String, String, usize)>,
}

/// The saved searches page: the user's own and the shared ones.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SavedSearchesView {
    /// By name.
    pub searches: Vec<dozor_model::SavedSearch>,
}

/// The alert exceptions page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExceptionsView {
    /// Every exception, newest first.
    pub exceptions: Vec<dozor_model::AlertException>,
    /// Rule id → title, for display.
    pub rule_titles: HashMap<String, String>,
}

/// The incident list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncidentsView {
    /// Which incidents: `active` (not closed, the default), `closed` or `all`.
    pub show: String,
    /// The incidents, most recently changed first.
    pub incidents: Vec<dozor_model::Incident>,
    /// Open alerts of one host in no incident yet: incidents worth opening.
    pub suggestions: Vec<dozor_model::IncidentSuggestion>,
}

/// One incident's page.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentPageView {
    /// The incident with its alerts, tasks, notes, observables, history and runs.
    pub detail: dozor_model::IncidentDetail,
    /// User names offered as owners (empty: a free text field).
    pub owners: Vec<String>,
}

/// The host list: every host Dozor has events of.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostsView {
    /// Name filter as typed.
    pub search: String,
    /// The hosts, most recently active first.
    pub hosts: Vec<Host>,
    /// Agent id → host name, for the agent column.
    pub agent_names: HashMap<String, String>,
    /// Whether the list stopped at its size limit.
    pub truncated: bool,
}

/// One host: its facts, its alerts and its latest events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostDetailView {
    /// The host.
    pub host: Host,
    /// Its agent, when one of the agents sends its events.
    pub agent: Option<Agent>,
    /// Its latest alerts, newest event time first.
    pub alerts: Vec<Alert>,
    /// Its latest events, newest first.
    pub events: Vec<StoredEvent>,
    /// Events per hour over the last days of its activity, for the timeline chart.
    pub timeline: Vec<HistogramBucket>,
    /// Its open vulnerabilities (scans of its address or name, its agent's inventory), most
    /// severe first.
    pub vulns: Vec<dozor_model::StoredVuln>,
}

/// What the alert and agent pages show of the response: the "Run playbook" form's choices,
/// the latest runs on the alert or agent, the approvals that wait for a decision about it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResponsePanel {
    /// Whether the server runs playbooks at all (no form without it).
    pub available: bool,
    /// Names of the playbooks with a play that may be run by hand.
    pub manual_playbooks: Vec<String>,
    /// Latest runs, newest first.
    pub runs: Vec<PlaybookRun>,
    /// Pending approvals about this alert or agent.
    pub pending: Vec<Approval>,
}

// ------------------------------------------------------------------ rules

/// The rule list's parameters: `q` (text), `outcome`, `page` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RulesParams {
    /// Text filter over id, title, tags, path.
    pub q: String,
    /// Only this outcome (`active`, `unrouted`, `unsupported`, `invalid`) or `disabled`.
    pub outcome: String,
    /// Page number, from 1.
    pub page: usize,
}

impl RulesParams {
    /// Rules per page.
    pub const PAGE_SIZE: usize = 100;

    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> RulesParams {
        RulesParams {
            q: param(pairs, "q").unwrap_or("").to_owned(),
            outcome: param(pairs, "outcome").unwrap_or("").to_owned(),
            page: param(pairs, "page")
                .and_then(|p| p.parse().ok())
                .filter(|p| *p >= 1)
                .unwrap_or(1),
        }
    }

    pub(crate) fn query(&self) -> Query {
        let mut q = Query::new();
        q.push("q", &self.q);
        q.push("outcome", &self.outcome);
        q
    }
}

/// The rule list page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RulesView {
    /// Every rule (the page filters and pages).
    pub rules: Vec<RuleRow>,
    /// The parameters.
    pub params: RulesParams,
}

/// One rule's page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleDetailView {
    /// The rule.
    pub rule: RuleRow,
    /// Its source.
    pub yaml: Option<String>,
    /// Its latest alerts.
    pub recent_alerts: Vec<Alert>,
}

// ------------------------------------------------------------------ response

/// The playbook list page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlaybooksView {
    /// Every playbook, by name (as the API shows them, without the YAML).
    pub playbooks: Vec<PlaybookView>,
    /// Whether the server runs playbooks at all.
    pub available: bool,
}

/// One playbook's page.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookDetailView {
    /// The playbook with its YAML (`source`).
    pub playbook: PlaybookView,
    /// Its latest runs, newest first.
    pub runs: Vec<PlaybookRun>,
}

/// The run list's parameters: `playbook`, `status`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunsParams {
    /// Only runs of this playbook (empty: any).
    pub playbook: String,
    /// Only runs in this status.
    pub status: Option<PlaybookRunStatus>,
    /// Only runs on this agent (empty: any).
    pub agent: String,
    /// Only runs on this alert.
    pub alert: Option<i64>,
}

impl RunsParams {
    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> RunsParams {
        RunsParams {
            playbook: param(pairs, "playbook").unwrap_or("").trim().to_owned(),
            status: param(pairs, "status").and_then(|s| s.parse().ok()),
            agent: param(pairs, "agent").unwrap_or("").trim().to_owned(),
            alert: param(pairs, "alert")
                .and_then(|s| s.trim().parse().ok())
                .filter(|id| *id > 0),
        }
    }
}

/// The run list page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunsView {
    /// Runs, newest first.
    pub runs: Vec<PlaybookRun>,
    /// The parameters.
    pub params: RunsParams,
    /// Playbook names for the filter.
    pub playbooks: Vec<String>,
}

/// One run's page.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetailView {
    /// The run.
    pub run: PlaybookRun,
    /// Its steps in order.
    pub steps: Vec<PlaybookStep>,
    /// Its approvals.
    pub approvals: Vec<Approval>,
    /// The alert's rule title, when it ran on an alert that is still stored.
    pub alert_title: Option<String>,
    /// The agent's host name, when it ran on a known agent.
    pub agent_name: Option<String>,
}

/// The approvals inbox's parameters: `status` (default: pending first, then the rest).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApprovalsParams {
    /// Only approvals in this status.
    pub status: Option<ApprovalStatus>,
}

impl ApprovalsParams {
    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> ApprovalsParams {
        ApprovalsParams {
            status: param(pairs, "status").and_then(|s| s.parse().ok()),
        }
    }
}

/// The approvals inbox.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApprovalsView {
    /// Approvals: the page shows pending ones first, then newest first.
    pub approvals: Vec<Approval>,
    /// The parameters.
    pub params: ApprovalsParams,
    /// Agent id → host name, for targets.
    pub agent_names: HashMap<String, String>,
}

// ------------------------------------------------------------------ intelligence

/// The indicator kinds (`dozor-intel`'s names), in the order the pages offer them.
pub const IOC_KINDS: [&str; 15] = [
    "ip",
    "cidr",
    "domain",
    "hostname",
    "url",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "imphash",
    "filename",
    "email",
    "registry_key",
    "user_agent",
    "ja3",
];

/// The indicator search's parameters: `q` (the value contains), `kind`, `source`, `tag`,
/// `active` (`1`: only enabled, unexpired ones), `cursor` (the store's keyset cursor: ids
/// above it, in id order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntelParams {
    /// The value contains this (case-insensitive).
    pub q: String,
    /// One of [`IOC_KINDS`] (empty: any; an unknown kind is ignored).
    pub kind: String,
    /// Given by this source.
    pub source: String,
    /// Carrying this tag.
    pub tag: String,
    /// Only active indicators (enabled, not expired).
    pub active: bool,
    /// Page cursor.
    pub cursor: Option<String>,
}

impl IntelParams {
    /// Indicators per page.
    pub const PAGE_SIZE: u32 = 100;

    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> IntelParams {
        IntelParams {
            q: param(pairs, "q").unwrap_or("").to_owned(),
            kind: param(pairs, "kind")
                .filter(|k| IOC_KINDS.contains(k))
                .unwrap_or("")
                .to_owned(),
            source: param(pairs, "source").unwrap_or("").to_owned(),
            tag: param(pairs, "tag").unwrap_or("").to_owned(),
            active: matches!(param(pairs, "active"), Some("1" | "true")),
            cursor: param(pairs, "cursor").map(str::to_owned),
        }
    }

    /// The query string without the cursor.
    pub fn filter_query(&self) -> Query {
        let mut q = Query::new();
        q.push("q", &self.q);
        q.push("kind", &self.kind);
        q.push("source", &self.source);
        q.push("tag", &self.tag);
        if self.active {
            q.push("active", "1");
        }
        q
    }
}

/// The indicator search page (with the form to add one by hand).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntelView {
    /// The parameters.
    pub params: IntelParams,
    /// One page of indicators, in id order (as the store pages them).
    pub iocs: Vec<IocView>,
    /// How many indicators match the filters (all pages).
    pub total: u64,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
    /// Source names for the filter (the configured ones and `manual`).
    pub sources: Vec<String>,
    /// Whether the server has threat intelligence at all.
    pub available: bool,
    /// A catalog key of a problem with the parameters (`error.bad_cursor`).
    pub error: Option<String>,
}

/// A recorded match with what the server found about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchView {
    /// The match.
    pub matched: IntelMatch,
    /// The alert it raised, when found.
    pub alert_id: Option<i64>,
    /// The rule id of the indicator's alerts (`dozor-intel/<source>/<kind>`), when known: a
    /// link to them when the alert itself was not found.
    pub rule_id: Option<String>,
}

/// One indicator's page.
#[derive(Debug, Clone, PartialEq)]
pub struct IocDetailView {
    /// The indicator (decay score and activity at the answer's time).
    pub ioc: IocView,
    /// Its latest matches, newest first.
    pub matches: Vec<MatchView>,
    /// Agent id → host name.
    pub agent_names: HashMap<String, String>,
}

/// The intelligence sources page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntelSourcesView {
    /// Every source by name, secrets shown as `***`.
    pub sources: Vec<IntelSource>,
    /// Whether the server has threat intelligence at all.
    pub available: bool,
}

/// The match list's parameters: `ioc` (an indicator id), `cursor` (ids below it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntelMatchesParams {
    /// Only this indicator's matches.
    pub ioc: Option<i64>,
    /// Page cursor.
    pub cursor: Option<String>,
}

impl IntelMatchesParams {
    /// Matches per page.
    pub const PAGE_SIZE: u32 = 100;

    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> IntelMatchesParams {
        IntelMatchesParams {
            ioc: param(pairs, "ioc")
                .and_then(|s| s.parse().ok())
                .filter(|id| *id > 0),
            cursor: param(pairs, "cursor").map(str::to_owned),
        }
    }

    /// The query string without the cursor.
    pub fn filter_query(&self) -> Query {
        let mut q = Query::new();
        q.push_opt("ioc", self.ioc.map(|i| i.to_string()));
        q
    }
}

/// The recent matches page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntelMatchesView {
    /// The parameters.
    pub params: IntelMatchesParams,
    /// One page, newest first.
    pub matches: Vec<MatchView>,
    /// Cursor of the next (older) page.
    pub next_cursor: Option<String>,
    /// Agent id → host name.
    pub agent_names: HashMap<String, String>,
    /// Whether the server has threat intelligence at all.
    pub available: bool,
    /// A catalog key of a problem with the parameters (`error.bad_cursor`).
    pub error: Option<String>,
}

// ------------------------------------------------------------------ vulnerabilities

/// The vulnerability list's parameters: `host`, `agent`, `cve`, `level`, `status`, `source`,
/// `q` (name, host, OID or CVE contains), `after` (the keyset of the last row shown:
/// `<severity>_<id>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VulnParams {
    /// Host as written (exact).
    pub host: String,
    /// Agent id.
    pub agent: String,
    /// A CVE id.
    pub cve: String,
    /// One of `dozor_model::VULN_LEVELS` (empty: any; an unknown one is ignored).
    pub level: String,
    /// One of the statuses' names (empty: any; an unknown one is ignored).
    pub status: String,
    /// `openvas` or `inventory` (empty: any).
    pub source: String,
    /// Text the name, host, OID or CVE contains.
    pub q: String,
    /// Keyset of the last row of the previous page.
    pub after: Option<String>,
}

impl VulnParams {
    /// Results per page.
    pub const PAGE_SIZE: u32 = 50;

    /// Reads the query string's pairs.
    pub fn parse(pairs: &[(String, String)]) -> VulnParams {
        let one_of = |name: &str, allowed: &[&str]| {
            param(pairs, name)
                .filter(|v| allowed.contains(v))
                .unwrap_or("")
                .to_owned()
        };
        let statuses: Vec<&str> = VulnStatus::ALL.iter().map(|s| s.as_str()).collect();
        VulnParams {
            host: param(pairs, "host").unwrap_or("").to_owned(),
            agent: param(pairs, "agent").unwrap_or("").to_owned(),
            cve: param(pairs, "cve").unwrap_or("").to_owned(),
            level: one_of("level", &VULN_LEVELS),
            status: one_of("status", &statuses),
            source: one_of("source", &VULN_SOURCES),
            q: param(pairs, "q").unwrap_or("").to_owned(),
            after: param(pairs, "after").map(str::to_owned),
        }
    }

    /// The keyset a row gives the next page's link.
    pub fn keyset(severity: f64, id: i64) -> String {
        format!("{severity}_{id}")
    }

    /// Reads a keyset (`None`: not one).
    pub fn parse_keyset(text: &str) -> Option<(f64, i64)> {
        let (severity, id) = text.rsplit_once('_')?;
        let severity: f64 = severity.parse().ok()?;
        let id: i64 = id.parse().ok()?;
        (severity.is_finite() && id > 0).then_some((severity, id))
    }

    /// The query string without `after`.
    pub fn filter_query(&self) -> Query {
        let mut q = Query::new();
        q.push("host", &self.host);
        q.push("agent", &self.agent);
        q.push("cve", &self.cve);
        q.push("level", &self.level);
        q.push("status", &self.status);
        q.push("source", &self.source);
        q.push("q", &self.q);
        q
    }
}

/// The vulnerabilities overview: counts, the trend over recent scans, the worst hosts and
/// CVEs, and one page of the filtered results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VulnsView {
    /// The parameters.
    pub params: VulnParams,
    /// Counts of what the filters select, with the worst hosts and CVEs.
    pub summary: VulnSummary,
    /// Recent scans, newest first (the trend chart).
    pub scans: Vec<VulnScan>,
    /// The gvmd scan jobs with their state.
    pub jobs: Vec<VulnScanJob>,
    /// One page of results, most severe first.
    pub results: Vec<StoredVuln>,
    /// How many results match the filters (all pages).
    pub total: u64,
    /// Keyset of the next page.
    pub next_after: Option<String>,
    /// Agent id → host name.
    pub agent_names: HashMap<String, String>,
    /// A catalog key of a problem with the parameters (`error.bad_cursor`).
    pub error: Option<String>,
}

/// One result's page.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnDetailView {
    /// The result.
    pub vuln: StoredVuln,
    /// The host name of its agent, when known.
    pub agent_name: Option<String>,
    /// Why the last change was refused (the store's words), shown above the forms.
    pub error: Option<String>,
}

/// A host's page: its results, its agent's recent alerts and software inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnHostView {
    /// The host as written.
    pub host: String,
    /// Its counts.
    pub summary: VulnSummary,
    /// Its results, most severe first (at most one page of [`VulnHostView::LIMIT`]).
    pub results: Vec<StoredVuln>,
    /// The agent on the host (from its results), with its host name when enrolled.
    pub agent: Option<(String, Option<String>)>,
    /// The agent's recent alerts, newest first.
    pub alerts: Vec<Alert>,
    /// The agent's software inventory, when it reported one.
    pub inventory: Option<AgentInventory>,
}

impl VulnHostView {
    /// Most results a host or CVE page lists (the list page has the rest).
    pub const LIMIT: u32 = 500;
}

/// A CVE's page: the hosts it affects and its results.
#[derive(Debug, Clone, PartialEq)]
pub struct VulnCveView {
    /// The CVE id.
    pub cve: String,
    /// Its counts, with the hosts it affects, worst first.
    pub summary: VulnSummary,
    /// Its results, most severe first (at most [`VulnHostView::LIMIT`]).
    pub results: Vec<StoredVuln>,
    /// Agent id → host name.
    pub agent_names: HashMap<String, String>,
}

// ------------------------------------------------------------------ admin, profile

/// A secret shown once (a new user's password, a reset password, a new API token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeSecret {
    /// Whose (user name or token name).
    pub name: String,
    /// The secret.
    pub secret: String,
}

/// The users page (admins).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsersView {
    /// Every account.
    pub users: Vec<User>,
    /// A password just set by the server, shown once.
    pub new_password: Option<OneTimeSecret>,
}

/// The audit log page (admins): `actor`, `action`, `before` parameters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditView {
    /// Entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Actor filter.
    pub actor: String,
    /// Action filter.
    pub action: String,
    /// `before` of the next (older) page.
    pub next_before: Option<i64>,
    /// Whether this is not the newest page.
    pub paged: bool,
}

/// The profile page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfileView {
    /// Stored preference; `None` = follow the browser.
    pub language: Option<Lang>,
    /// The user's API tokens.
    pub tokens: Vec<TokenInfo>,
    /// A token just created, shown once.
    pub new_token: Option<OneTimeSecret>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn alert_params_round_trip() {
        let p = AlertsParams::parse(&pairs(&[
            ("status", "resolved,new"),
            ("min_level", "high"),
            ("rule", "r 1"),
            ("range", "custom"),
            ("from", "now-2h"),
            ("sort", "count"),
            ("dir", "asc"),
            ("cursor", "abc"),
            ("junk", "x"),
        ]));
        assert_eq!(p.statuses, [AlertStatus::New, AlertStatus::Resolved]);
        assert_eq!(p.min_level, Some(Level::High));
        assert_eq!(p.sort, SortKey::Count);
        assert!(p.asc);
        let url = p.query().url("/ui/alerts");
        let back: Vec<(String, String)> = url
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_owned(), decode(v))
            })
            .collect();
        assert_eq!(AlertsParams::parse(&back), p);
        let d = AlertsParams::parse(&[]);
        assert_eq!(d.statuses, [AlertStatus::New, AlertStatus::Acknowledged]);
        assert_eq!(d.time.range, Range::All);
        let any = AlertsParams::parse(&pairs(&[("status_any", "1")]));
        assert!(any.statuses.is_empty());
        assert!(
            any.filter_query()
                .url("/ui/alerts")
                .contains("status_any=1")
        );
    }

    fn decode(v: &str) -> String {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ranges() {
        let now = 1_000_000_000_000;
        let t = TimeRange {
            range: Range::Hour1,
            ..TimeRange::default()
        };
        assert_eq!(t.bounds(now), Ok((Some(now - 3_600_000), None)));
        let c = TimeRange {
            range: Range::Custom,
            from: "now-15m".into(),
            to: "bogus".into(),
        };
        assert_eq!(c.bounds(now), Err("to"));
        let all = TimeRange {
            range: Range::All,
            ..TimeRange::default()
        };
        assert_eq!(all.bounds(now), Ok((None, None)));
    }

    #[test]
    fn sorting() {
        let mk = |id, level, count, title: &str, last_seen| Alert {
            id,
            rule_id: "r".into(),
            rule_title: title.into(),
            level,
            tags: vec![],
            agent_id: None,
            host: None,
            first_seen: 0,
            last_seen,
            count,
            event_ids: vec![],
            status: AlertStatus::New,
            assignee: None,
            created_at: 0,
            updated_at: 0,
        };
        let mut a = vec![
            mk(1, Level::Low, 5, "b", 3),
            mk(2, Level::Critical, 1, "a", 2),
            mk(3, Level::Medium, 9, "C", 1),
        ];
        let mut p = AlertsParams {
            sort: SortKey::Level,
            ..AlertsParams::default()
        };
        p.sort_page(&mut a);
        assert_eq!(a.iter().map(|x| x.id).collect::<Vec<_>>(), [2, 3, 1]);
        p.sort = SortKey::Count;
        p.asc = true;
        p.sort_page(&mut a);
        assert_eq!(a.iter().map(|x| x.id).collect::<Vec<_>>(), [2, 1, 3]);
        p.sort = SortKey::Rule;
        p.sort_page(&mut a);
        assert_eq!(a.iter().map(|x| x.id).collect::<Vec<_>>(), [2, 1, 3]);
    }
}
