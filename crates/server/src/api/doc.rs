//! OpenAPI descriptions of the `/api/v1/` operator routes, merged into the server's document
//! by [`crate::openapi::document`].

#![allow(dead_code)] // the functions below only carry `#[utoipa::path]` descriptions

use utoipa::OpenApi;

use super::agents::{AgentList, AgentView, RevokeRequest};
use super::commands::{
    CommandList, CommandRequest, CommandResultAnswer, CommandResultRequest, CommandView,
    ScanPathArgs,
};
use super::types::{
    Alert, AlertDetail, AlertPage, AssigneeRequest, Comment, CommentRequest, EnabledRequest,
    EventPage, Histogram, HistogramBucket, PipelineCounts, Rule, RuleCounts, RuleDetail, RuleList,
    RuleTestRequest, RuleTestResult, Stats, StatusChange, StatusRequest, StoredEvent, StreamNotice,
};
use crate::agents::{
    AgentNotice, AgentStatus, CommandDelivery, DuplicateAgent, EnrollRequest, EnrollResponse,
    HeartbeatRequest, HeartbeatResponse,
};
use crate::problem::ProblemDocument as Problem;
use crate::state::{ReloadReport, RuleInfo, RuleLogSource};

#[derive(OpenApi)]
#[openapi(
    paths(
        events, event, histogram, alerts, alert, alert_stream, alert_status, alert_assignee,
        alert_comments, rules, rule, rule_enabled, rules_reload, rules_test, stats, agents, agent,
        agent_revoke, agent_enroll, agent_heartbeat, agent_stream, agent_command_create,
        agent_command_list, command, agent_command_result
    ),
    components(schemas(
        StoredEvent, EventPage, Histogram, HistogramBucket, Alert, AlertPage, AlertDetail, Comment,
        StatusChange, StatusRequest, AssigneeRequest, CommentRequest, Rule, RuleInfo,
        RuleLogSource, RuleList, RuleDetail, EnabledRequest, ReloadReport, RuleTestRequest,
        RuleTestResult, Stats, RuleCounts, PipelineCounts, StreamNotice, AgentView, AgentList,
        RevokeRequest, AgentStatus, EnrollRequest, EnrollResponse, DuplicateAgent,
        HeartbeatRequest, HeartbeatResponse, AgentNotice, CommandDelivery, CommandRequest,
        ScanPathArgs, CommandView, CommandList, CommandResultRequest, CommandResultAnswer
    )),
    tags(
        (name = "events", description = "Stored events: search, histogram. Every route needs a viewer, analyst or admin token."),
        (name = "alerts", description = "Alerts and their workflow; the live stream. Changes need an analyst or admin token and are audited."),
        (name = "rules", description = "Sigma rules: state, enable/disable and reload (admin), test (analyst+)."),
        (name = "stats", description = "Counts for dashboards."),
        (name = "agents", description = "Agent enrollment (token + CSR), heartbeats (agent certificate) and the registry (operators).")
    )
)]
pub(crate) struct ApiV1Doc;

#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    description = "Searches stored events, newest first. `q` is the Dozor query language: `field:value` \
(case-insensitive, `*` wildcards, `field:*` exists, `field:>N` `>=` `<` `<=`), quoted values, free text, \
`AND` `OR` `NOT` and parentheses, e.g. `process.name:powershell.exe AND NOT user.name:SYSTEM`. \
A query that does not parse is a 400 `invalid-query` problem with the `column` of the error. \
Times (`from`, `to`) are milliseconds since the epoch, RFC 3339, `now` or `now-<duration>` (`now-15m`).",
    params(
        ("q" = Option<String>, Query, description = "Query language filter"),
        ("from" = Option<String>, Query, description = "Event time ≥ from"),
        ("to" = Option<String>, Query, description = "Event time < to"),
        ("agent" = Option<String>, Query, description = "Only events sent by this agent"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "Bad parameter, query (`column` says where) or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn events() {}

#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "event.id (UUID)")),
    responses(
        (status = 200, description = "The event", body = StoredEvent),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn event() {}

#[utoipa::path(get, path = "/api/v1/events/histogram", tag = "events",
    description = "Events per time bucket over [from, to) (default: the last 24 hours), every bucket present. \
`from` is rounded down to a multiple of the interval. Without `interval`, one of 1s, 5s, 10s, 30s, 1m, 5m, \
10m, 15m, 30m, 1h, 3h, 6h, 12h, 1d, 7d, 30d is chosen to give at most 120 buckets.",
    params(
        ("q" = Option<String>, Query, description = "Query language filter"),
        ("from" = Option<String>, Query, description = "Start (default: to - 24h)"),
        ("to" = Option<String>, Query, description = "End (default: now)"),
        ("agent" = Option<String>, Query, description = "Only events sent by this agent"),
        ("interval" = Option<String>, Query, description = "Bucket width: 30s, 5m, 1h, 1d (a number is seconds); at most 10000 buckets"),
    ),
    responses(
        (status = 200, description = "The buckets", body = Histogram),
        (status = 400, description = "Bad parameter or query", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn histogram() {}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    description = "Alerts, newest `last_seen` first.",
    params(
        ("status" = Option<String>, Query, description = "new, acknowledged, resolved, false_positive; repeat or separate with commas"),
        ("min_level" = Option<String>, Query, description = "informational, low, medium, high, critical"),
        ("rule" = Option<String>, Query, description = "Rule id"),
        ("agent" = Option<String>, Query, description = "Agent id"),
        ("assignee" = Option<String>, Query, description = "Assignee"),
        ("from" = Option<String>, Query, description = "last_seen ≥ from"),
        ("to" = Option<String>, Query, description = "last_seen < to"),
        ("limit" = Option<u32>, Query, description = "Page size, 1-1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "One page of alerts", body = AlertPage),
        (status = 400, description = "Bad parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn alerts() {}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert, its comments, status history and matched events", body = AlertDetail),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn alert() {}

#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "alerts",
    description = "Server-Sent Events: `event: alert` with an AlertNotice (JSON) as data each time the pipeline \
opens or updates an alert; `event: lagged` with `{\"skipped\": n}` when this client fell behind (re-read the \
alert list); a `: connected` comment first and keep-alive comments every 15 s. The stream ends when the server \
shuts down.",
    params(
        ("min_level" = Option<String>, Query, description = "Only alerts of this level and above"),
        ("rule" = Option<String>, Query, description = "Only this rule"),
        ("agent" = Option<String>, Query, description = "Only this agent"),
    ),
    responses(
        (status = 200, description = "The event stream; each `alert` event's data is an AlertNotice", body = String, content_type = "text/event-stream"),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn alert_stream() {}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/status", tag = "alerts",
    description = "Moves the alert through the workflow: new → acknowledged → resolved / false_positive; new may \
close at once, acknowledged may go back to new, a closed alert may be reopened (→ new). Any other change is a \
409 `invalid-transition` problem with `from`, `to` and the `allowed` targets. The change and its comment go to \
the status history and the audit log (analyst or admin).",
    params(("id" = i64, Path, description = "Alert id")),
    request_body(content = StatusRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert after the change", body = Alert),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The workflow does not allow this change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status or a member missing", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn alert_status() {}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/assignee", tag = "alerts",
    description = "Assigns the alert (`null` or empty unassigns); audited (analyst or admin).",
    params(("id" = i64, Path, description = "Alert id")),
    request_body(content = AssigneeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert after the change", body = Alert),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member missing or too long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn alert_assignee() {}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/comments", tag = "alerts",
    description = "Comments on the alert as the caller; audited (analyst or admin).",
    params(("id" = i64, Path, description = "Alert id")),
    request_body(content = CommentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The comment", body = Comment),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alert", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty or longer than 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn alert_comments() {}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules",
    description = "Every rule document with its load outcome, whether it is enabled and its hit count.",
    responses(
        (status = 200, description = "The rules", body = RuleList),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn rules() {}

#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules",
    params(("id" = String, Path, description = "Rule id (its title when it has no id)")),
    responses(
        (status = 200, description = "The rule with its YAML", body = RuleDetail),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn rule() {}

#[utoipa::path(post, path = "/api/v1/rules/{id}/enabled", tag = "rules",
    description = "Enables or disables a rule (admin, audited). Pipeline workers pick the change up within seconds.",
    params(("id" = String, Path, description = "Rule id")),
    request_body(content = EnabledRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rule after the change", body = Rule),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`enabled` missing or not a boolean", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn rule_enabled() {}

#[utoipa::path(post, path = "/api/v1/rules/reload", tag = "rules",
    description = "Re-reads the rule directories (admin, audited).",
    responses(
        (status = 200, description = "What was loaded", body = ReloadReport),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin credential", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "The rules could not be reloaded (the previous set stays)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn rules_reload() {}

#[utoipa::path(post, path = "/api/v1/rules/test", tag = "rules",
    description = "Runs a Sigma rule given as YAML over the newest stored events that match `query` (default: all; \
`limit` events, default 1000, at most 10000) and returns the ids of the events it matches (analyst or admin). \
Nothing is stored.",
    request_body(content = RuleTestRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The matching events", body = RuleTestResult),
        (status = 400, description = "Not JSON, or `query` does not parse (`column` says where)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The rule can't be used (`invalid-rule`), or a member is missing or out of range", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn rules_test() {}

#[utoipa::path(get, path = "/api/v1/stats", tag = "stats",
    responses(
        (status = 200, description = "Counts of events, alerts and rules (and the pipeline's counters when this process runs it)", body = Stats),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn stats() {}

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    description = "Every enrolled agent with its status: online, degraded (silent longer than agents.degraded_after \
or reporting a problem), offline (silent longer than agents.offline_after) or revoked.",
    responses(
        (status = 200, description = "The agents and counts per status", body = AgentList),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn agents() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}", tag = "agents",
    params(("id" = String, Path, description = "Agent id")),
    responses(
        (status = 200, description = "The agent with its last heartbeat (resources, spool, collectors)", body = AgentView),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn agent() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/revoke", tag = "agents",
    description = "Revokes an agent (admin, audited): its certificate is refused from then on, for events and \
heartbeats alike. Revoking a revoked agent changes nothing.",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = Option<RevokeRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "The agent after the change", body = AgentView),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn agent_revoke() {}

#[utoipa::path(post, path = "/api/v1/agents/enroll", tag = "agents",
    description = "Enrolls an agent: an enrollment token (`dozor tokens create --expires 24h --uses 10`) and a \
PKCS#10 CSR in; a new agent id and a client certificate signed by the server's CA out. Without a token, an \
enrolled agent presenting its current certificate renews it (same id). Other agents with the same hostname are \
listed in `duplicates` (and revoked with `replace_duplicates`). Audited.",
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Enrolled", body = EnrollResponse),
        (status = 400, description = "Not JSON, or the CSR can't be used", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The token is unknown, expired, revoked or used up; or the certificate is not an agent's current one", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member is missing or mistyped", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Enrollment needs TLS and a store", body = Problem, content_type = "application/problem+json"),
    ))]
fn agent_enroll() {}

#[utoipa::path(post, path = "/api/v1/agents/heartbeat", tag = "agents",
    description = "An agent's heartbeat: facts, health problems, resource usage, spool and collector state. \
The answer tells the agent when to send the next one.",
    request_body(content = HeartbeatRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = HeartbeatResponse),
        (status = 401, description = "No, or not a current agent's, client certificate", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A member is missing or mistyped", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Enrollment needs TLS and a store", body = Problem, content_type = "application/problem+json"),
    ),
    security(("agent_certificate" = [])))]
fn agent_heartbeat() {}

#[utoipa::path(get, path = "/api/v1/agents/stream", tag = "agents",
    description = "Server-Sent Events: `event: agent` with an AgentNotice (JSON) at every heartbeat and when an \
agent goes offline; `event: lagged` with `{\"skipped\": n}` when this subscriber fell behind; keep-alive comments \
every 15 s. Browsers signed in to the dashboard use their session cookie.",
    responses(
        (status = 200, description = "The stream", content_type = "text/event-stream", body = AgentNotice),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn agent_stream() {}

#[utoipa::path(post, path = "/api/v1/agents/{id}/commands", tag = "agents",
    description = "Queues a command for the agent (analyst or admin; audited as `agent.command`). The only kind \
is `scan_path`: `{\"kind\": \"scan_path\", \"args\": {\"path\": \"/abs/path\", \"recursive\": true}}` — an absolute \
path (`/…` or `C:\\…`), no NUL, at most 4096 characters; `recursive` defaults to true. The agent's next heartbeat \
answer carries it (`commands`); without a result it is handed out again after `agents.command_redeliver_after`, \
at most `agents.command_max_attempts` times, then it expires. A rejected body is a 422 `invalid-body` problem \
whose `field` (`kind`, `args.path`, …) and `pointer` say which member is wrong. At most 20 commands of an agent \
may wait for a result (409 `too-many-commands`).",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = CommandRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued; `Location` is the command's URL", body = CommandView,
            headers(("Location" = String, description = "/api/v1/commands/{id}"))),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent is revoked (`agent-revoked`) or has too many commands waiting (`too-many-commands`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown kind, or a member missing or invalid (`field`, `pointer`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn agent_command_create() {}

#[utoipa::path(get, path = "/api/v1/agents/{id}/commands", tag = "agents",
    description = "The agent's commands, newest first, without their `result` (`summary` has its counts).",
    params(
        ("id" = String, Path, description = "Agent id"),
        ("limit" = Option<u32>, Query, description = "How many, 1-200 (default 50)"),
    ),
    responses(
        (status = 200, description = "The commands", body = CommandList),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn agent_command_list() {}

#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "agents",
    description = "One command with its status and, once the agent reported it, its `result` or `error` \
(poll it to wait for a scan).",
    params(("id" = String, Path, description = "Command id (UUID)")),
    responses(
        (status = 200, description = "The command", body = CommandView),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such command", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn command() {}

#[utoipa::path(post, path = "/api/v1/agents/commands/{id}/result", tag = "agents",
    description = "An agent reports the outcome of one of its commands (client certificate only; audited as \
`agent.command.result`): `{\"status\": \"done\" | \"failed\", \"result\": {…}, \"error\": \"…\"}`. `result` is at most \
1 MiB of JSON (413 beyond it); `error` is cut to 8 KiB; other members are ignored. Only the first result counts: \
a second one changes nothing and is answered `{\"recorded\": false}` — either way the agent is done with the \
command. A late result of an expired command is still recorded.",
    params(("id" = String, Path, description = "Command id (UUID), as in the heartbeat answer")),
    request_body(content = CommandResultRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded, or the command had its result already", body = CommandResultAnswer),
        (status = 400, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No, or not a current agent's, client certificate", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The agent has no such command (another agent's count as unknown)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The result is larger than 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`status` is not done or failed, or `result` is not an object (`field` says which)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Enrollment needs TLS and a store", body = Problem, content_type = "application/problem+json"),
    ),
    security(("agent_certificate" = [])))]
fn agent_command_result() {}
