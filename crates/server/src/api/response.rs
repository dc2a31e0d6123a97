//! Response routes (issue 13): playbooks, their runs, approvals, response actions on agents,
//! and the agents' long poll for commands.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_model::api::CommandView;
use dozor_model::response::CommandBatch;
use dozor_model::{
    ActionAnswer, ActionRequest, Approval, ApprovalList, ApprovalStatus, DecisionRequest, PlayView,
    PlaybookEnabledRequest, PlaybookError, PlaybookList, PlaybookRun, PlaybookRunDetail,
    PlaybookRunList, PlaybookRunQuery, PlaybookRunRequest, PlaybookRunStatus, PlaybookView,
    StoredPlaybook,
};
use dozor_playbook::Playbook;
use dozor_store::now_ms;
use serde_json::{Value, json};

use super::access::{ADMIN, Caller, JsonBody, Params, PathId, READ, TRIAGE, bad_param, not_found};
use crate::ops::audited;
use crate::problem::Problem;
use crate::problem_responses::{
    AgentsNotConfigured, ApiNotConfigured, BadParameter, Forbidden, InvalidBody, JsonTooLarge,
    NoAgentCertificate, NotJson, NotJsonMediaType, Unauthorized, problem_response,
};
use crate::response::approvals;
use crate::response::{LoadedPlaybook, ManualRun, ResponseService};
use crate::state::{AppState, ConnectionInfo};

pub(crate) const PLAYBOOKS: &str = "/api/v1/playbooks";
pub(crate) const PLAYBOOK: &str = "/api/v1/playbooks/{name}";
pub(crate) const PLAYBOOK_ENABLED: &str = "/api/v1/playbooks/{name}/enabled";
pub(crate) const PLAYBOOK_RUN: &str = "/api/v1/playbooks/{name}/run";
pub(crate) const RUNS: &str = "/api/v1/playbook-runs";
pub(crate) const RUN: &str = "/api/v1/playbook-runs/{id}";
pub(crate) const APPROVALS: &str = "/api/v1/approvals";
pub(crate) const APPROVAL: &str = "/api/v1/approvals/{id}";
pub(crate) const APPROVE: &str = "/api/v1/approvals/{id}/approve";
pub(crate) const REJECT: &str = "/api/v1/approvals/{id}/reject";
pub(crate) const AGENT_ACTIONS: &str = "/api/v1/agents/{id}/actions";
pub(crate) const COMMANDS_NEXT: &str = "/api/v1/agents/commands/next";

/// Longest long poll an agent may ask for, seconds.
pub(crate) const MAX_WAIT_SECS: u64 = 55;
/// How often a long poll re-reads the store besides being woken (another process may have
/// queued the command).
const POLL: Duration = Duration::from_secs(1);

problem_response! {
    ResponseNotConfigured = 503, "The API (a store) is not configured on this server";
    NoSuchPlaybook = 404, "No such playbook";
    NoSuchRun = 404, "No such playbook run";
    NoSuchApproval = 404, "No such approval";
    PlaybookRefused = 409, "A file playbook can't be changed through the API (`file-playbook`), the playbook does not parse (`playbook-invalid`) or has no play that may run by hand (`not-manual`)";
    AlreadyDecided = 409, "The approval was decided or expired before (`already-decided`)";
    NotYourDecision = 403, "The requester may not decide their own request (`response.other_approver`) or the role may not";
    InvalidPlaybook = 422, "The YAML does not parse, names an unknown module or key, or has a bad template (`file`, `line`, `column`, `reason`)";
    PlaybookTooLarge = 413, "Larger than 256 KiB";
    NotYaml = 415, "Not application/yaml or text/plain";
    InvalidAction = 422, "Unknown kind or invalid arguments (`field`)";
    ActionRefused = 409, "The agent is revoked or has too many commands waiting";
    NoSuchTarget = 404, "No such alert or agent";
}

fn service(state: &AppState) -> Result<&Arc<ResponseService>, Problem> {
    state.response.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("response is not configured: this server has no store attached")
    })
}

fn play_triggers(play: &dozor_playbook::Play) -> Vec<String> {
    let Some(t) = &play.trigger else {
        return vec!["manual".into()];
    };
    let mut out = Vec::new();
    if t.manual {
        out.push("manual".into());
    }
    if let Some(a) = &t.alert {
        let mut parts = vec![format!(
            "on {}",
            a.on.iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join("/")
        )];
        if let Some(level) = a.level {
            parts.push(format!("level ≥ {level}"));
        }
        for (name, list) in [
            ("rule", &a.rule_id),
            ("tags", &a.tags),
            ("agent", &a.agent),
            ("host", &a.host),
        ] {
            if !list.is_empty() {
                parts.push(format!("{name} {}", list.join("|")));
            }
        }
        if !a.status.is_empty() {
            parts.push(format!(
                "status {}",
                a.status
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("|")
            ));
        }
        out.push(format!("alert: {}", parts.join(", ")));
    }
    if let Some(s) = &t.schedule {
        out.push(format!(
            "schedule: {}",
            match s {
                dozor_playbook::Schedule::Every(d) => format!("every {}s", d.as_secs()),
                dozor_playbook::Schedule::Cron(c) => format!("{c:?}"),
            }
        ));
    }
    out
}

fn view(loaded: &LoadedPlaybook, with_source: bool) -> PlaybookView {
    let (plays, error) = match &loaded.parsed {
        Ok(p) => (plays(p), None),
        Err(e) => (
            Vec::new(),
            Some(PlaybookError {
                file: e.file.clone(),
                line: e.line,
                column: e.column,
                reason: e.reason.clone(),
            }),
        ),
    };
    PlaybookView {
        name: loaded.stored.name.clone(),
        origin: loaded.stored.origin.clone(),
        enabled: loaded.stored.enabled,
        updated_at: loaded.stored.updated_at,
        updated_by: loaded.stored.updated_by.clone(),
        error,
        manual: !loaded.manual_plays().is_empty(),
        plays,
        source: with_source.then(|| loaded.stored.source.clone()),
    }
}

fn plays(p: &Playbook) -> Vec<PlayView> {
    p.plays
        .iter()
        .map(|play| PlayView {
            name: play.name.clone(),
            tasks: play.tasks.len(),
            triggers: play_triggers(play),
        })
        .collect()
}

fn loaded(service: &ResponseService, name: &str) -> Result<LoadedPlaybook, Problem> {
    service
        .playbook(name)
        .ok_or_else(|| not_found(&format!("playbook {name}")))
}

/// `GET /api/v1/playbooks`.
#[utoipa::path(get, path = PLAYBOOKS, tag = "response", operation_id = "playbook_list",
    summary = "Playbooks",
    description = "Every playbook (from the playbook directory and made through the API) with its plays, what \
starts each, whether triggers may start it (`enabled`) and, for one that does not parse, `error` with the file, \
line, column and reason.",
    responses(
        (status = 200, description = "By name", body = PlaybookList),
        Unauthorized,
        Forbidden<READ>,
        ResponseNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<PlaybookList>, Problem> {
    let service = service(&state)?;
    Ok(Json(PlaybookList {
        playbooks: service.playbooks().iter().map(|p| view(p, false)).collect(),
    }))
}

/// `GET /api/v1/playbooks/{name}`.
#[utoipa::path(get, path = PLAYBOOK, tag = "response", operation_id = "playbook",
    summary = "One playbook with its YAML",
    params(("name" = String, Path, description = "Playbook name")),
    responses(
        (status = 200, description = "The playbook and its `source`", body = PlaybookView),
        Unauthorized,
        Forbidden<READ>,
        NoSuchPlaybook,
        ResponseNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<Json<PlaybookView>, Problem> {
    let service = service(&state)?;
    Ok(Json(view(&loaded(service, &name.0)?, true)))
}

/// Largest playbook text accepted, bytes.
const MAX_PLAYBOOK_UPLOAD: usize = dozor_store::MAX_PLAYBOOK_BYTES;

async fn yaml_text(headers: &HeaderMap, body: Body) -> Result<String, Problem> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim().to_owned();
        if ![
            "application/yaml",
            "application/x-yaml",
            "text/yaml",
            "text/x-yaml",
            "text/plain",
        ]
        .contains(&essence.as_str())
        {
            return Err(Problem::unsupported_media_type(format!(
                "send the playbook as application/yaml or text/plain, not {essence:?}"
            ))
            .with("supported_types", ["application/yaml", "text/plain"]));
        }
    }
    let too_large = || {
        Problem::too_large(
            "playbook",
            MAX_PLAYBOOK_UPLOAD as u64,
            format!("a playbook may have at most {MAX_PLAYBOOK_UPLOAD} bytes"),
        )
    };
    let bytes = axum::body::to_bytes(body, MAX_PLAYBOOK_UPLOAD)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Problem::bad_request("unreadable-body", inner.to_string())
            }
        })?;
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-playbook",
            "Invalid playbook",
        )
        .detail(format!("the playbook is not UTF-8 ({e})"))
    })
}

/// `PUT /api/v1/playbooks/{name}`.
#[utoipa::path(put, path = PLAYBOOK, tag = "response", operation_id = "playbook_put",
    summary = "Create or replace a playbook",
    description = "Creates or replaces a playbook made through the API (admin, audited as `playbook.put`). The YAML \
is parsed first against this server's modules: one that does not parse, names an unknown module or key, or has a \
template with a syntax error is answered 422 `invalid-playbook` with `file`, `line`, `column` and `reason`, and is \
not stored. Playbooks from the playbook directory are changed in their file (409 `file-playbook`).",
    params(("name" = String, Path, description = "1 to 128 of A-Z a-z 0-9 _ . -, not starting with .",
        max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    request_body(description = "The playbook, YAML, at most 256 KiB", content(("application/yaml"), ("text/plain"))),
    responses(
        (status = 200, description = "Stored", body = PlaybookView),
        BadParameter,
        Unauthorized,
        Forbidden<ADMIN>,
        PlaybookRefused,
        PlaybookTooLarge,
        NotYaml,
        InvalidPlaybook,
        ResponseNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn put(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PlaybookView>, Problem> {
    let service = service(&state)?;
    let name = name.0;
    dozor_store::check_playbook_name(&name).map_err(|e| bad_param("name", e.to_string()))?;
    if service
        .playbook(&name)
        .is_some_and(|p| p.stored.origin == "file")
    {
        return Err(
            Problem::new(StatusCode::CONFLICT, "file-playbook", "Refused").detail(format!(
                "playbook {name} comes from the playbook directory: change its file"
            )),
        );
    }
    let text = yaml_text(&headers, body).await?;
    if let Err(e) = service.parse(&name, &text) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-playbook",
            "Invalid playbook",
        )
        .detail(e.to_string())
        .with("file", &e.file)
        .with("line", e.line)
        .with("column", e.column)
        .with("reason", &e.reason));
    }
    let enabled = service.playbook(&name).is_none_or(|p| p.stored.enabled);
    let store = service.store().as_ref();
    store
        .put_playbook(&StoredPlaybook {
            name: name.clone(),
            source: text.clone(),
            origin: "api".into(),
            enabled,
            updated_at: now_ms(),
            updated_by: caller.identity.subject.clone(),
        })
        .await
        .map_err(crate::ops::store_problem)?;
    service.reload().await.map_err(crate::ops::store_problem)?;
    audited(
        store,
        &caller.identity.subject,
        "playbook.put",
        format!("playbook:{name}"),
        json!({"bytes": text.len()}),
    )
    .await?;
    Ok(Json(view(&loaded(service, &name)?, true)))
}

/// `DELETE /api/v1/playbooks/{name}`.
#[utoipa::path(delete, path = PLAYBOOK, tag = "response", operation_id = "playbook_delete",
    summary = "Delete a playbook",
    description = "Deletes a playbook made through the API (admin, audited as `playbook.delete`); its runs stay. \
File playbooks are deleted by removing their file (409 `file-playbook`).",
    params(("name" = String, Path, description = "Playbook name")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchPlaybook,
        PlaybookRefused,
        ResponseNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<StatusCode, Problem> {
    let service = service(&state)?;
    let found = loaded(service, &name.0)?;
    if found.stored.origin == "file" {
        return Err(
            Problem::new(StatusCode::CONFLICT, "file-playbook", "Refused").detail(format!(
                "playbook {} comes from the playbook directory: remove its file",
                name.0
            )),
        );
    }
    let store = service.store().as_ref();
    store
        .delete_playbook(&name.0)
        .await
        .map_err(crate::ops::store_problem)?;
    service.reload().await.map_err(crate::ops::store_problem)?;
    audited(
        store,
        &caller.identity.subject,
        "playbook.delete",
        format!("playbook:{}", name.0),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/playbooks/{name}/enabled`.
#[utoipa::path(post, path = PLAYBOOK_ENABLED, tag = "response", operation_id = "playbook_enabled",
    summary = "Enable or disable a playbook's triggers",
    description = "Turns a playbook's triggers (alerts, schedules) on or off (admin, audited as \
`playbook.enabled`). A manual run is possible either way.",
    params(("name" = String, Path, description = "Playbook name")),
    request_body(content = PlaybookEnabledRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The playbook after the change", body = PlaybookView),
        NotJson,
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchPlaybook,
        InvalidBody,
        JsonTooLarge,
        NotJsonMediaType,
        ResponseNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn set_enabled(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
    JsonBody(body): JsonBody<PlaybookEnabledRequest>,
) -> Result<Json<PlaybookView>, Problem> {
    let service = service(&state)?;
    loaded(service, &name.0)?;
    let store = service.store().as_ref();
    store
        .set_playbook_enabled(&name.0, body.enabled, &caller.identity.subject)
        .await
        .map_err(crate::ops::store_problem)?
        .ok_or_else(|| not_found(&format!("playbook {}", name.0)))?;
    service.reload().await.map_err(crate::ops::store_problem)?;
    audited(
        store,
        &caller.identity.subject,
        "playbook.enabled",
        format!("playbook:{}", name.0),
        json!({"enabled": body.enabled}),
    )
    .await?;
    Ok(Json(view(&loaded(service, &name.0)?, false)))
}

/// `POST /api/v1/playbooks/{name}/run`.
#[utoipa::path(post, path = PLAYBOOK_RUN, tag = "response", operation_id = "playbook_run_start",
    summary = "Run a playbook by hand",
    description = "Starts the playbook's plays that may be run by hand (`trigger.manual: true`, or no trigger) on an \
alert and/or an agent (analyst or admin, audited as `playbook.run`). The run is stored and answered at once \
(`running`); follow it with `GET /api/v1/playbook-runs/{id}`. Destructive steps wait for an approval \
(`GET /api/v1/approvals`). `dry_run` templates and checks every step without calling any module.",
    params(("name" = String, Path, description = "Playbook name")),
    request_body(content = PlaybookRunRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Started; `Location` is the run", body = PlaybookRun,
            headers(("Location" = String, description = "/api/v1/playbook-runs/{id}"))),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchTarget,
        PlaybookRefused,
        InvalidBody,
        JsonTooLarge,
        NotJsonMediaType,
        ResponseNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn run(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    name: PathId,
    JsonBody(body): JsonBody<PlaybookRunRequest>,
) -> Result<Response, Problem> {
    let service = service(&state)?;
    let run = service
        .run_manual(ManualRun {
            playbook: name.0.clone(),
            requested_by: caller.identity.subject.clone(),
            alert_id: body.alert_id,
            agent_id: body.agent_id.filter(|a| !a.trim().is_empty()),
            vars: body.vars.unwrap_or_default(),
            dry_run: body.dry_run,
        })
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        [(
            header::LOCATION,
            format!("/api/v1/playbook-runs/{}", run.id),
        )],
        Json(run),
    )
        .into_response())
}

/// The query of `GET /api/v1/playbook-runs`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct RunParameters {
    /// Of this playbook
    #[param(nullable = false)]
    playbook: Option<String>,
    /// On this alert
    #[param(nullable = false)]
    alert_id: Option<i64>,
    /// On this agent
    #[param(nullable = false)]
    agent_id: Option<String>,
    /// running, succeeded or failed (empty: any)
    #[param(nullable = false)]
    status: Option<PlaybookRunStatus>,
    /// How many, 1-500 (default 50)
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /api/v1/playbook-runs`.
#[utoipa::path(get, path = RUNS, tag = "response", operation_id = "playbook_run_list",
    summary = "Playbook runs",
    description = "Runs, newest first, optionally of one playbook, alert, agent or status.",
    params(RunParameters),
    responses(
        (status = 200, description = "Newest first", body = PlaybookRunList),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn runs(
    caller: Caller<READ>,
    params: Params,
) -> Result<Json<PlaybookRunList>, Problem> {
    params.only(&["playbook", "alert_id", "agent_id", "status", "limit"])?;
    let alert_id = match params.get("alert_id")? {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| bad_param("alert_id", format!("{v:?} is not an alert id")))?,
        ),
    };
    let status = match params.get("status")? {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<PlaybookRunStatus>()
                .map_err(|_| bad_param("status", format!("{v:?}: running, succeeded or failed")))?,
        ),
    };
    let query = PlaybookRunQuery {
        playbook: params.string("playbook")?.filter(|p| !p.is_empty()),
        alert_id,
        agent_id: params.string("agent_id")?.filter(|p| !p.is_empty()),
        status,
        limit: params.limit(50, 500)?,
    };
    let runs = caller
        .api
        .store
        .list_playbook_runs(&query)
        .await
        .map_err(crate::ops::store_problem)?;
    Ok(Json(PlaybookRunList { runs }))
}

/// `GET /api/v1/playbook-runs/{id}`.
#[utoipa::path(get, path = RUN, tag = "response", operation_id = "playbook_run_detail",
    summary = "One run with its steps",
    description = "A run with each step's templated input, output, error, attempts, approval and timings \
(secrets redacted), and the run's approvals.",
    params(("id" = String, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = PlaybookRunDetail),
        Unauthorized,
        Forbidden<READ>,
        NoSuchRun,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn run_detail(
    caller: Caller<READ>,
    id: PathId,
) -> Result<Json<PlaybookRunDetail>, Problem> {
    let store = caller.api.store.as_ref();
    let run = store
        .get_playbook_run(&id.0)
        .await
        .map_err(crate::ops::store_problem)?
        .ok_or_else(|| not_found(&format!("playbook run {}", id.0)))?;
    let steps = store
        .playbook_steps(&id.0)
        .await
        .map_err(crate::ops::store_problem)?;
    let approvals = store
        .run_approvals(&id.0)
        .await
        .map_err(crate::ops::store_problem)?;
    Ok(Json(PlaybookRunDetail {
        run,
        steps,
        approvals,
    }))
}

/// The query of `GET /api/v1/approvals`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ApprovalParameters {
    /// pending, approved, rejected or expired (empty: any)
    #[param(nullable = false)]
    status: Option<ApprovalStatus>,
    /// How many, 1-500 (default 100)
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// `GET /api/v1/approvals`.
#[utoipa::path(get, path = APPROVALS, tag = "response", operation_id = "approval_list",
    summary = "Approval requests",
    description = "The approvals inbox: requests for a human decision before destructive actions, newest first.",
    params(ApprovalParameters),
    responses(
        (status = 200, description = "Newest first", body = ApprovalList),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn approval_list(
    caller: Caller<READ>,
    params: Params,
) -> Result<Json<ApprovalList>, Problem> {
    params.only(&["status", "limit"])?;
    let status = match params.get("status")? {
        None | Some("") => None,
        Some(v) => Some(v.parse::<ApprovalStatus>().map_err(|_| {
            bad_param(
                "status",
                format!("{v:?}: pending, approved, rejected or expired"),
            )
        })?),
    };
    let store = caller.api.store.as_ref();
    approvals::expire_due(store, now_ms()).await;
    let approvals = store
        .list_approvals(status, params.limit(100, 500)?)
        .await
        .map_err(crate::ops::store_problem)?;
    Ok(Json(ApprovalList { approvals }))
}

/// `GET /api/v1/approvals/{id}`.
#[utoipa::path(get, path = APPROVAL, tag = "response", operation_id = "approval",
    summary = "One approval request",
    params(("id" = String, Path, description = "Approval id")),
    responses(
        (status = 200, description = "The approval", body = Approval),
        Unauthorized,
        Forbidden<READ>,
        NoSuchApproval,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn approval(caller: Caller<READ>, id: PathId) -> Result<Json<Approval>, Problem> {
    let store = caller.api.store.as_ref();
    approvals::expire_due(store, now_ms()).await;
    store
        .get_approval(&id.0)
        .await
        .map_err(crate::ops::store_problem)?
        .map(Json)
        .ok_or_else(|| not_found(&format!("approval {}", id.0)))
}

async fn decide(
    caller: Caller<TRIAGE>,
    id: PathId,
    body: DecisionRequest,
    approve: bool,
) -> Result<Json<Approval>, Problem> {
    let store = caller.api.store.as_ref();
    approvals::expire_due(store, now_ms()).await;
    let decided = approvals::decide(
        store,
        &caller.identity.subject,
        &id.0,
        approve,
        body.comment.as_deref(),
    )
    .await?;
    Ok(Json(decided))
}

/// `POST /api/v1/approvals/{id}/approve`.
#[utoipa::path(post, path = APPROVE, tag = "response", operation_id = "approval_approve",
    summary = "Approve",
    description = "Approves a pending request (analyst or admin, audited as `approval.approved`): the waiting \
playbook step runs, or the direct command is queued for its agent (`command_id`). Only the first decision counts \
(409 `already-decided`); an expired request can't be approved. With `response.other_approver` the requester may \
not decide it (403).",
    params(("id" = String, Path, description = "Approval id")),
    request_body(content = DecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Approved", body = Approval),
        NotJson,
        Unauthorized,
        NotYourDecision,
        NoSuchApproval,
        AlreadyDecided,
        InvalidBody,
        JsonTooLarge,
        NotJsonMediaType,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn approve(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(body): JsonBody<DecisionRequest>,
) -> Result<Json<Approval>, Problem> {
    decide(caller, id, body, true).await
}

/// `POST /api/v1/approvals/{id}/reject`.
#[utoipa::path(post, path = REJECT, tag = "response", operation_id = "approval_reject",
    summary = "Reject",
    description = "Rejects a pending request (analyst or admin, audited as `approval.rejected`): the waiting step \
fails with the reason (its `rescue` runs); a direct command is not sent.",
    params(("id" = String, Path, description = "Approval id")),
    request_body(content = DecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Rejected", body = Approval),
        NotJson,
        Unauthorized,
        NotYourDecision,
        NoSuchApproval,
        AlreadyDecided,
        InvalidBody,
        JsonTooLarge,
        NotJsonMediaType,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn reject(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(body): JsonBody<DecisionRequest>,
) -> Result<Json<Approval>, Problem> {
    decide(caller, id, body, false).await
}

/// `POST /api/v1/agents/{id}/actions`.
#[utoipa::path(post, path = AGENT_ACTIONS, tag = "response", operation_id = "agent_action",
    summary = "A response action on an agent",
    description = "Asks an agent to act (analyst or admin): `isolate_host`, `release_host`, `kill_process`, \
`quarantine_file`, `restore_file`, `delete_file`, `block_ip`, `unblock_ip`, `collect_file`, `scan_path`. Destructive \
kinds (isolate, kill, quarantine, delete, block) become an approval request (audited `approval.requested`; the \
command is queued when an operator approves it) unless `response.direct_commands_need_approval` is off; the others \
are queued at once (audited `agent.command`). An online agent receives a queued command within about a second.",
    params(("id" = String, Path, description = "Agent id")),
    request_body(content = ActionRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Waiting for approval (`approval`) or queued (`command`)", body = ActionAnswer),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchTarget,
        ActionRefused,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidAction,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn action(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    id: PathId,
    JsonBody(body): JsonBody<ActionRequest>,
) -> Result<Response, Problem> {
    let agent_id = id.0;
    let args = Value::Object(body.args.unwrap_or_default());
    let kind = body.kind;
    if !dozor_model::response::COMMAND_KINDS.contains(&kind.as_str()) {
        return Err(crate::ops::OpError::invalid(
            "kind",
            format!(
                "unknown kind {:?} (known: {})",
                kind.chars().take(64).collect::<String>(),
                dozor_model::response::COMMAND_KINDS.join(", ")
            ),
        )
        .into());
    }
    if let Err(why) = dozor_model::response::check_command_args(&kind, &args) {
        return Err(crate::ops::OpError::invalid("args", why).into());
    }
    let reason = body.reason.unwrap_or_default();
    if reason.chars().count() > 2000 {
        return Err(crate::ops::OpError::invalid("reason", "at most 2000 characters").into());
    }
    let store = caller.api.store.as_ref();
    let agent = store
        .get_agent(&agent_id)
        .await
        .map_err(crate::ops::store_problem)?
        .ok_or_else(|| not_found(&format!("agent {agent_id}")))?;
    if agent.revoked_at.is_some() {
        return Err(
            Problem::new(StatusCode::CONFLICT, "agent-revoked", "Agent revoked")
                .detail(format!("agent {agent_id} is revoked: it takes no commands")),
        );
    }
    let answer = if super::commands::is_destructive(&kind)
        && super::commands::approvals_required(&state)
    {
        let config = service(&state)?.config().clone();
        let approval = approvals::request_command(
            store,
            &config,
            &caller.identity.subject,
            &agent_id,
            &kind,
            &args,
            &reason,
        )
        .await?;
        ActionAnswer {
            approval: Some(approval),
            command: None,
        }
    } else {
        let command =
            super::commands::queue(&caller.api, &caller.identity.subject, &agent_id, kind, args)
                .await?;
        ActionAnswer {
            approval: None,
            command: Some(CommandView::new(command, true)),
        }
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// The query of `GET /api/v1/agents/commands/next`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct NextParameters {
    /// Seconds to wait for a command when none is ready, 0-55 (default 25)
    #[param(nullable = false, minimum = 0, maximum = 55)]
    wait_secs: Option<u64>,
}

/// `GET /api/v1/agents/commands/next`: the agent's long poll.
#[utoipa::path(get, path = COMMANDS_NEXT, tag = "agents", operation_id = "agent_commands_next",
    summary = "An agent waits for its commands",
    description = "Client certificate only. Answers at once with the agent's commands that are ready (as a heartbeat \
answer would: each is marked delivered), or waits up to `wait_secs` for one to be queued and answers as soon as it \
is (an empty list when none came). Delivery stays at least once: run each command id once.",
    params(NextParameters),
    responses(
        (status = 200, description = "Ready commands, oldest first (maybe none)", body = CommandBatch),
        BadParameter,
        NoAgentCertificate,
        AgentsNotConfigured,
    ),
    security(("agent_certificate" = [])))]
pub(crate) async fn next(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    params: Params,
) -> Result<Json<CommandBatch>, Problem> {
    params.only(&["wait_secs"])?;
    let wait = match params.get("wait_secs")? {
        None | Some("") => 25,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|w| *w <= MAX_WAIT_SECS)
            .ok_or_else(|| {
                bad_param("wait_secs", format!("{v:?}: 0 to {MAX_WAIT_SECS} seconds"))
            })?,
    };
    let registry = super::agents::registry(&state)?;
    let certs = connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default();
    let Some(identity) = registry.identify(&certs).await.map_err(Problem::from)? else {
        return Err(Problem::unauthorized(
            "the command long poll needs the agent's client certificate (dozor-agent enroll)",
            false,
        ));
    };
    let signal = crate::response::signals::SIGNALS.agent(&identity.subject);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let mut closing = state.closing.clone();
    loop {
        let woken = signal.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let commands = registry.deliver_commands(&identity.subject).await;
        if !commands.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(CommandBatch { commands }));
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = closing.changed() => return Ok(Json(CommandBatch { commands: Vec::new() })),
        }
    }
}
