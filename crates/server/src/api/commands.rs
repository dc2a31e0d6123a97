//! Commands from the server to agents (issue 6), first kind `scan_path`: an operator asks an
//! agent to scan a path on demand.
//!
//! - `POST /api/v1/agents/{id}/commands` (analyst+, audited `agent.command`) queues one;
//! - the agent's next heartbeat answer carries it (`commands`, see
//!   [`crate::agents::HeartbeatResponse`]); without a result it is handed out again after
//!   `agents.command_redeliver_after`, at most `agents.command_max_attempts` times, then it
//!   expires;
//! - the agent reports the outcome with `POST /api/v1/agents/commands/{id}/result` (its client
//!   certificate only, its own commands only, once; audited `agent.command.result`);
//! - `GET /api/v1/agents/{id}/commands` and `GET /api/v1/commands/{id}` (viewer+) show them.
//!
//! The dashboard's "Scan path" form goes through [`request`] as the API does.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_store::{AgentCommand, CommandStatus, NewAgentCommand};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::access::{Caller, JsonBody, Params, PathId, READ, TRIAGE, not_found, store_problem};
use super::agents::NoSuchAgent;
use crate::problem::Problem;
use crate::problem_responses::{
    AgentsNotConfigured, ApiNotConfigured, BadParameter, Forbidden, JsonTooLarge,
    NoAgentCertificate, NotJson, NotJsonMediaType, Unauthorized, problem_response,
};
use crate::state::ApiState;
use crate::state::AppState;
use crate::state::ConnectionInfo;

/// The command kinds the server knows.
pub const KINDS: &[&str] = dozor_model::response::COMMAND_KINDS;
/// Longest `args.path` of a `scan_path` command, characters.
pub const MAX_PATH_CHARS: usize = 4096;
/// Most unfinished (pending or delivered) commands one agent may have.
pub const MAX_OPEN_COMMANDS: usize = 20;
/// Largest `result` an agent may report (its JSON text), bytes.
pub const MAX_RESULT_BYTES: usize = dozor_store::MAX_COMMAND_RESULT_BYTES;
/// Largest body of a result report: the result, an error text and some room.
const MAX_RESULT_BODY: usize = MAX_RESULT_BYTES + 256 * 1024;
/// Longest `error` kept of a result report, bytes (longer ones are cut).
const MAX_ERROR_BYTES: usize = 8 * 1024;
/// Default and largest page of `GET /api/v1/agents/{id}/commands`.
const LIST_DEFAULT: u32 = 50;
// (each row is read with its result, up to 1 MiB: the page stays small)
const LIST_MAX: u32 = 200;

pub use dozor_store::api::{
    CommandList, CommandRequest, CommandResultAnswer, CommandView, ScanPathArgs,
};

/// How a command ended, as its agent reports it.
// Describes the body only: never built (the handler reads `status` as text).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ResultStatusName {
    Done,
    Failed,
}

/// `POST /api/v1/agents/commands/{id}/result`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandResultRequest {
    /// `done` (it ran; `result` says what it found) or `failed` (it could not run; `error`
    /// says why).
    #[schema(value_type = ResultStatusName)]
    pub status: String,
    /// What it found, at most 1 MiB of JSON. `scan_path`: `files_scanned`, `files_skipped`,
    /// `bytes`, `duration_ms`, `detections` [{path, engine, name, severity, verdict}],
    /// `errors` [text].
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// Why it failed (cut to 8 KiB).
    #[serde(default)]
    pub error: Option<String>,
}

/// `422 invalid-body` naming the member (`field`: dotted, `pointer`: RFC 6901).
fn invalid(field: &str, detail: impl Into<String>) -> Problem {
    let pointer = if field.is_empty() {
        String::new()
    } else {
        format!(
            "/{}",
            field
                .replace('~', "~0")
                .replace('/', "~1")
                .replace('.', "/")
        )
    };
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
        "Invalid request body",
    )
    .detail(detail)
    .with("field", field)
    .with("pointer", pointer)
}

/// Is this an absolute path of a Unix (`/…`) or Windows (`C:\…`, `C:/…`) host?
pub(crate) fn is_absolute_path(path: &str) -> bool {
    let b = path.as_bytes();
    path.starts_with('/')
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}

/// Checks a `scan_path` command's arguments; the normalized arguments.
fn scan_path_args(args: &Map<String, Value>) -> Result<Value, Problem> {
    if let Some(k) = args
        .keys()
        .find(|k| !["path", "recursive"].contains(&k.as_str()))
    {
        return Err(invalid(
            &format!("args.{k}"),
            format!("scan_path takes path and recursive, not {k:?}"),
        ));
    }
    let path = match args.get("path") {
        None | Some(Value::Null) => return Err(invalid("args.path", "args.path is missing")),
        Some(Value::String(p)) => p,
        Some(_) => return Err(invalid("args.path", "args.path must be a string")),
    };
    if path.is_empty() {
        return Err(invalid("args.path", "args.path is empty"));
    }
    if path.contains('\0') {
        return Err(invalid("args.path", "args.path contains a NUL character"));
    }
    let chars = path.chars().count();
    if chars > MAX_PATH_CHARS {
        return Err(invalid(
            "args.path",
            format!("args.path has {chars} characters; at most {MAX_PATH_CHARS}"),
        )
        .with("limit", MAX_PATH_CHARS));
    }
    if !is_absolute_path(path) {
        return Err(invalid(
            "args.path",
            format!(
                "args.path must be absolute: /… on Unix or C:\\… on Windows, not {:?}",
                path.chars().take(80).collect::<String>()
            ),
        ));
    }
    let recursive = match args.get("recursive") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(invalid(
                "args.recursive",
                "args.recursive must be true or false",
            ));
        }
    };
    Ok(json!({ "path": path, "recursive": recursive }))
}

/// Checks a command request body: (kind, normalized args).
fn parse_request(body: &Value) -> Result<(String, Value), Problem> {
    let Some(body) = body.as_object() else {
        return Err(invalid("", "the body must be a JSON object"));
    };
    if let Some(k) = body
        .keys()
        .find(|k| !["kind", "args"].contains(&k.as_str()))
    {
        return Err(invalid(
            k,
            format!("unknown member {k:?} (known: kind, args)"),
        ));
    }
    let kind = match body.get("kind") {
        None | Some(Value::Null) => return Err(invalid("kind", "kind is missing")),
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err(invalid("kind", "kind must be a string")),
    };
    let empty = Map::new();
    let args = match body.get("args") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(a)) => a,
        Some(_) => return Err(invalid("args", "args must be a JSON object")),
    };
    match kind {
        "scan_path" => Ok((kind.to_owned(), scan_path_args(args)?)),
        other if KINDS.contains(&other) => {
            let args = Value::Object(args.clone());
            dozor_model::response::check_command_args(other, &args)
                .map_err(|why| invalid("args", format!("{other}: {why}")))?;
            Ok((other.to_owned(), args))
        }
        other => Err(invalid(
            "kind",
            format!(
                "unknown command kind {:?} (known: {})",
                other.chars().take(64).collect::<String>(),
                KINDS.join(", ")
            ),
        )
        .with("known_kinds", KINDS)),
    }
}

/// Do destructive commands sent directly wait for an approval on this server?
pub(crate) fn approvals_required(state: &AppState) -> bool {
    state
        .response
        .as_ref()
        .is_none_or(|r| r.config().direct_commands_need_approval)
}

/// Is this kind destructive (isolate, kill, quarantine, delete, block)?
pub(crate) fn is_destructive(kind: &str) -> bool {
    dozor_model::response::DESTRUCTIVE_COMMAND_KINDS.contains(&kind)
}

/// Queues a command for an agent as `actor` (an operator with the triage right) and audits it
/// (`agent.command`): the API route and the dashboard's form both come here.
pub(crate) async fn request(
    api: &ApiState,
    actor: &str,
    agent_id: &str,
    body: &Value,
    approvals_required: bool,
) -> Result<AgentCommand, Problem> {
    let (kind, args) = parse_request(body)?;
    if approvals_required && is_destructive(&kind) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "approval-required",
            "Approval required",
        )
        .detail(format!(
            "{kind} is destructive and needs an approval (response.direct_commands_need_approval): ask with POST /api/v1/agents/{agent_id}/actions"
        )));
    }
    queue(api, actor, agent_id, kind, args).await
}

/// Queues a checked command for an agent and audits it (`agent.command`).
pub(crate) async fn queue(
    api: &ApiState,
    actor: &str,
    agent_id: &str,
    kind: String,
    args: Value,
) -> Result<AgentCommand, Problem> {
    let store = api.store.as_ref();
    let agent = store
        .get_agent(agent_id)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("agent {agent_id}")))?;
    let revoked = || {
        Problem::new(StatusCode::CONFLICT, "agent-revoked", "Agent revoked")
            .detail(format!("agent {agent_id} is revoked: it takes no commands"))
    };
    if agent.revoked_at.is_some() {
        return Err(revoked());
    }
    let open = store
        .count_open_commands(agent_id)
        .await
        .map_err(store_problem)?;
    if open >= MAX_OPEN_COMMANDS as u64 {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too-many-commands",
            "Too many commands",
        )
        .detail(format!(
            "agent {agent_id} has {open} commands waiting for a result; at most {MAX_OPEN_COMMANDS} (they finish or expire after agents.command_max_attempts deliveries)"
        ))
        .with("limit", MAX_OPEN_COMMANDS));
    }
    let command = store
        .create_command(&NewAgentCommand {
            agent_id: agent_id.to_owned(),
            kind,
            args,
            requested_by: actor.to_owned(),
        })
        .await
        .map_err(|e| match e {
            // revoked since the check above
            dozor_store::StoreError::NotFound(_) => revoked(),
            other => store_problem(other),
        })?;
    tracing::info!(
        agent_id,
        command_id = %command.id,
        kind = command.kind,
        actor,
        "command queued"
    );
    crate::response::signals::SIGNALS.command_queued(agent_id);
    crate::ops::audited(
        api.store.as_ref(),
        actor,
        "agent.command",
        format!("agent:{agent_id}"),
        json!({
            "command_id": command.id,
            "kind": command.kind,
            "args": command.args,
            "hostname": agent.facts.hostname,
        }),
    )
    .await?;
    Ok(command)
}

problem_response! {
    CommandRefused = 409, "The agent is revoked (`agent-revoked`) or has too many commands waiting (`too-many-commands`)";
    InvalidCommand = 422, "Unknown kind, or a member missing or invalid (`field`, `pointer`)";
    NoSuchCommand = 404, "No such command";
    NotTheAgentsCommand = 404, "The agent has no such command (another agent's count as unknown)";
    ResultTooLarge = 413, "The result is larger than 1 MiB";
    InvalidResult = 422, "`status` is not done or failed, or `result` is not an object (`field` says which)";
}

/// `POST /api/v1/agents/{id}/commands` → 202 with the command.
#[utoipa::path(post, path = super::AGENT_COMMANDS, tag = "agents", operation_id = "agent_command_create",
    summary = "Queue a command for the agent",
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
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchAgent,
        CommandRefused,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidCommand,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, Problem> {
    let instance = format!("/api/v1/agents/{}/commands", id.0);
    let command = request(
        &caller.api,
        &caller.identity.subject,
        &id.0,
        &body,
        approvals_required(&state),
    )
    .await
    .map_err(|p| p.instance(instance))?;
    let location = format!("/api/v1/commands/{}", command.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(CommandView::new(command, true)),
    )
        .into_response())
}

/// The query parameters of `GET /api/v1/agents/{id}/commands`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct ListParameters {
    /// How many, 1-200 (default 50)
    #[param(nullable = false, minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// The names in [`ListParameters`]: any other is refused.
const LIST_PARAMETERS: &[&str] = &["limit"];

/// `GET /api/v1/agents/{id}/commands?limit=N`: newest first.
#[utoipa::path(get, path = super::AGENT_COMMANDS, tag = "agents", operation_id = "agent_command_list",
    summary = "The agent's commands",
    description = "The agent's commands, newest first, without their `result` (`summary` has its counts).",
    params(
        ("id" = String, Path, description = "Agent id"),
        ListParameters,
    ),
    responses(
        (status = 200, description = "The commands", body = CommandList),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        NoSuchAgent,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    caller: Caller<READ>,
    id: PathId,
    params: Params,
) -> Result<Json<CommandList>, Problem> {
    let instance = format!("/api/v1/agents/{}/commands", id.0);
    let at = |p: Problem| p.instance(instance.clone());
    params.only(LIST_PARAMETERS).map_err(at)?;
    let limit = params.limit(LIST_DEFAULT, LIST_MAX).map_err(at)?;
    let store = caller.api.store.as_ref();
    if store
        .get_agent(&id.0)
        .await
        .map_err(store_problem)?
        .is_none()
    {
        return Err(at(not_found(&format!("agent {}", id.0))));
    }
    let commands = store
        .list_agent_commands(&id.0, limit)
        .await
        .map_err(store_problem)?;
    Ok(Json(CommandList {
        commands: commands
            .into_iter()
            .map(|c| CommandView::new(c, false))
            .collect(),
    }))
}

/// `GET /api/v1/commands/{id}`: one command with its result.
#[utoipa::path(get, path = super::COMMAND, tag = "agents", operation_id = "command",
    summary = "One command with its result",
    description = "One command with its status and, once the agent reported it, its `result` or `error` \
(poll it to wait for a scan).",
    params(("id" = String, Path, description = "Command id (UUID)")),
    responses(
        (status = 200, description = "The command", body = CommandView),
        Unauthorized,
        Forbidden<READ>,
        NoSuchCommand,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(caller: Caller<READ>, id: PathId) -> Result<Json<CommandView>, Problem> {
    let missing =
        || not_found(&format!("command {}", id.0)).instance(format!("/api/v1/commands/{}", id.0));
    let uuid = Uuid::parse_str(&id.0).map_err(|_| missing())?;
    let command = caller
        .api
        .store
        .get_command(uuid)
        .await
        .map_err(store_problem)?
        .ok_or_else(missing)?;
    Ok(Json(CommandView::new(command, true)))
}

/// `POST /api/v1/agents/commands/{id}/result`: only with the client certificate of the agent
/// the command is for.
#[utoipa::path(post, path = super::AGENT_COMMAND_RESULT, tag = "agents", operation_id = "agent_command_result",
    summary = "An agent reports a command's outcome",
    description = "An agent reports the outcome of one of its commands (client certificate only; audited as \
`agent.command.result`): `{\"status\": \"done\" | \"failed\", \"result\": {…}, \"error\": \"…\"}`. `result` is at most \
1 MiB of JSON (413 beyond it); `error` is cut to 8 KiB; other members are ignored. Only the first result counts: \
a second one changes nothing and is answered `{\"recorded\": false}` — either way the agent is done with the \
command. A late result of an expired command is still recorded.",
    params(("id" = String, Path, description = "Command id (UUID), as in the heartbeat answer")),
    request_body(content = CommandResultRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded, or the command had its result already", body = CommandResultAnswer),
        NotJson,
        NoAgentCertificate,
        NotTheAgentsCommand,
        ResultTooLarge,
        NotJsonMediaType,
        InvalidResult,
        AgentsNotConfigured,
    ),
    security(("agent_certificate" = [])))]
pub(crate) async fn result(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    id: PathId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CommandResultAnswer>, Problem> {
    let instance = format!("/api/v1/agents/commands/{}/result", id.0);
    let at = |p: Problem| p.instance(instance.clone());
    let registry = super::agents::registry(&state).map_err(at)?;
    let certs = connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default();
    let Some(identity) = registry.identify(&certs).await.map_err(|e| at(e.into()))? else {
        return Err(at(Problem::unauthorized(
            "command results need the agent's client certificate (dozor-agent enroll)",
            false,
        )));
    };
    let unknown = || {
        at(
            Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!(
                "agent {} has no command {}",
                identity.subject, id.0
            )),
        )
    };
    let uuid = Uuid::parse_str(&id.0).map_err(|_| unknown())?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(at(Problem::unsupported_media_type(format!(
                "send application/json, not {essence:?}"
            ))
            .with("supported_types", ["application/json"])));
        }
    }
    let bytes = body.map_err(|e| {
        at(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::too_large(
                "result",
                MAX_RESULT_BYTES as u64,
                "the result report is too large: the result may be at most 1 MiB of JSON",
            )
        } else {
            Problem::bad_request("unreadable-body", e.body_text())
        })
    })?;
    let report: Value = serde_json::from_slice(&bytes).map_err(|e| {
        at(
            Problem::bad_request("malformed-json", format!("the body is not JSON: {e}"))
                .with("line", e.line())
                .with("column", e.column()),
        )
    })?;
    let Some(report) = report.as_object() else {
        return Err(at(invalid("", "the body must be a JSON object")));
    };
    let status = match report.get("status") {
        None | Some(Value::Null) => return Err(at(invalid("status", "status is missing"))),
        Some(Value::String(s)) if s == "done" => CommandStatus::Done,
        Some(Value::String(s)) if s == "failed" => CommandStatus::Failed,
        Some(other) => {
            return Err(at(invalid(
                "status",
                format!(
                    "status must be \"done\" or \"failed\", not {}",
                    other.to_string().chars().take(40).collect::<String>()
                ),
            )));
        }
    };
    let result = match report.get("result") {
        None | Some(Value::Null) => None,
        Some(r @ Value::Object(_)) => Some(r),
        Some(_) => return Err(at(invalid("result", "result must be a JSON object"))),
    };
    if let Some(r) = result {
        let size = serde_json::to_vec(r).map_or(usize::MAX, |v| v.len());
        if size > MAX_RESULT_BYTES {
            return Err(at(Problem::too_large(
                "result",
                MAX_RESULT_BYTES as u64,
                format!("result is {size} bytes of JSON; at most {MAX_RESULT_BYTES}"),
            )));
        }
    }
    let error = match report.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) => Some(cut(e, MAX_ERROR_BYTES)).filter(|e| !e.is_empty()),
        Some(_) => return Err(at(invalid("error", "error must be a string"))),
    };
    let recorded = registry
        .finish_command(&identity, uuid, status, result, error)
        .await
        .map_err(|e| at(e.into()))?;
    crate::response::signals::SIGNALS.result_recorded();
    Ok(Json(CommandResultAnswer { recorded }))
}
/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(crate) fn result_body_limit() -> axum::extract::DefaultBodyLimit {
    axum::extract::DefaultBodyLimit::max(MAX_RESULT_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_parameters_are_the_accepted_ones() {
        let names = crate::openapi::query_parameter_names::<ListParameters>();
        assert_eq!(names, LIST_PARAMETERS);
    }

    #[test]
    fn absolute_paths() {
        for ok in ["/", "/var/www", "C:\\", "c:\\Users\\x", "D:/data", "/a b/ü"] {
            assert!(is_absolute_path(ok), "{ok}");
        }
        for bad in [
            "",
            "var",
            "./x",
            "~/x",
            "C:",
            "C:x",
            "\\\\server\\share",
            "1:\\x",
            " /x",
            "ü:\\x",
        ] {
            assert!(!is_absolute_path(bad), "{bad}");
        }
    }

    #[test]
    fn requests_name_the_field() {
        let field = |body: Value| {
            parse_request(&body).unwrap_err().extensions["field"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(field(json!({"args": {"path": "/x"}})), "kind");
        assert_eq!(field(json!({"kind": 1, "args": {"path": "/x"}})), "kind");
        assert_eq!(field(json!({"kind": "rm_rf", "args": {}})), "kind");
        assert_eq!(field(json!({"kind": "scan_path", "args": []})), "args");
        assert_eq!(field(json!({"kind": "scan_path"})), "args.path");
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": "x"}})),
            "args.path"
        );
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": "/a\u{0}b"}})),
            "args.path"
        );
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": format!("/{}", "a".repeat(4096))}})),
            "args.path"
        );
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": "/x", "recursive": "yes"}})),
            "args.recursive"
        );
        // null is not a boolean (the document says boolean; absent means true).
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": "/x", "recursive": null}})),
            "args.recursive"
        );
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": "/x", "depth": 2}})),
            "args.depth"
        );
        assert_eq!(
            field(json!({"kind": "scan_path", "args": {"path": "/x"}, "x": 1})),
            "x"
        );
        let p = parse_request(&json!({"kind": "scan_path", "args": {"path": "/x"}, "x": 1}))
            .unwrap_err();
        assert_eq!(p.extensions["pointer"], "/x");
        let p = parse_request(&json!({"kind": "scan_path", "args": {"path": 1}})).unwrap_err();
        assert_eq!(
            (p.status, p.extensions["pointer"].as_str()),
            (422, Some("/args/path"))
        );

        let (kind, args) =
            parse_request(&json!({"kind": "scan_path", "args": {"path": "C:\\Temp"}})).unwrap();
        assert_eq!(kind, "scan_path");
        assert_eq!(args, json!({"path": "C:\\Temp", "recursive": true}));
        let path = format!("/{}", "ж".repeat(4095));
        let (_, args) = parse_request(
            &json!({"kind": "scan_path", "args": {"path": path, "recursive": false}}),
        )
        .unwrap();
        assert_eq!(args["recursive"], false);
    }
}
