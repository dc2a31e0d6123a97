//! The dashboard's response pages and forms (issue 13): playbooks, their runs, the approvals
//! inbox, the "Run playbook" form of the alert and agent pages, and "Isolate" / "Release" on
//! an agent. The checks, changes and audit entries are the JSON API's
//! (`crate::api::response`, `crate::response`): the pages read the same views, the forms make
//! the same calls.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_model::{ApprovalStatus, PlaybookRunQuery};
use dozor_store::{Store, StoreError, now_ms};
use dozor_ui::{
    ApprovalsParams, ApprovalsView, PlaybookDetailView, PlaybooksView, ResponsePanel,
    RunDetailView, RunsParams, RunsView,
};
use serde_json::{Value, json};

use super::common::{ADMIN, FormAction, READ, TRIAGE, error, page, page_ctx, see_other};
use super::common::{done, failed, not_found, pairs};
use crate::api::access::{Caller, PathId};
use crate::ops::OpError;
use crate::response::{ManualRun, ResponseService, approvals};
use crate::session::WebUser;
use crate::state::AppState;

/// Runs listed on a playbook's, an alert's and an agent's page.
const RUNS_SHOWN: u32 = 20;
/// Runs on the run list.
const RUN_LIST_ROWS: u32 = 200;
/// Approvals the inbox reads.
const APPROVAL_ROWS: u32 = 300;

fn service(state: &AppState) -> Option<&Arc<ResponseService>> {
    state.response.as_ref()
}

/// The API's caller for this signed-in user (the pages read the API's own views).
pub(super) fn caller<const NEED: u8>(user: &WebUser) -> Caller<NEED> {
    Caller {
        identity: user.identity(),
        api: user.api.clone(),
        credential: HeaderMap::new(),
    }
}

async fn agent_names(store: &dyn Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| (a.id, a.facts.hostname))
        .collect())
}

/// What the alert and agent pages show of the response: the playbooks one may run by hand,
/// the latest runs on the alert or agent, and (for an agent) its pending approvals.
pub(crate) async fn panel(
    state: &AppState,
    store: &dyn Store,
    alert_id: Option<i64>,
    agent_id: Option<&str>,
) -> Result<ResponsePanel, StoreError> {
    let runs = store
        .list_playbook_runs(&PlaybookRunQuery {
            alert_id,
            agent_id: agent_id.map(str::to_owned),
            limit: RUNS_SHOWN,
            ..PlaybookRunQuery::default()
        })
        .await?;
    let pending = match agent_id {
        Some(id) => store
            .list_approvals(Some(ApprovalStatus::Pending), APPROVAL_ROWS)
            .await?
            .into_iter()
            .filter(|a| a.target.get("agent_id").and_then(Value::as_str) == Some(id))
            .collect(),
        None => Vec::new(),
    };
    let (available, manual_playbooks) = match service(state) {
        Some(s) => (
            true,
            s.playbooks()
                .into_iter()
                .filter(|p| !p.manual_plays().is_empty())
                .map(|p| p.stored.name)
                .collect(),
        ),
        None => (false, Vec::new()),
    };
    Ok(ResponsePanel {
        available,
        manual_playbooks,
        runs,
        pending,
    })
}

// ---------------------------------------------------------------- pages

/// `GET /ui/playbooks`: every playbook with its plays, triggers and parse error.
pub(crate) async fn playbooks(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = page_ctx(&user, &uri, &headers);
    let view = match service(&state) {
        None => PlaybooksView::default(),
        Some(_) => {
            match crate::api::response::list(caller::<READ>(&user), State(state.clone())).await {
                Ok(list) => PlaybooksView {
                    playbooks: list.0.playbooks,
                    available: true,
                },
                Err(p) => {
                    tracing::error!("ui: playbooks: {}", p.slug());
                    return error(user.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed");
                }
            }
        }
    };
    page(&state, &ctx, dozor_ui::playbooks(&ctx, &view))
}

/// `GET /ui/playbooks/{name}`: one playbook, its YAML and recent runs.
pub(crate) async fn playbook(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            if service(&state).is_none() {
                return Err(not_found(&user));
            }
            let playbook = crate::api::response::one(
                caller::<READ>(&user),
                State(state.clone()),
                PathId(name.clone()),
            )
            .await
            .map_err(|_| not_found(&user))?
            .0;
            let runs = user
                .api
                .store
                .list_playbook_runs(&PlaybookRunQuery {
                    playbook: Some(name),
                    limit: RUNS_SHOWN,
                    ..PlaybookRunQuery::default()
                })
                .await
                .map_err(failed(&user))?;
            let view = PlaybookDetailView { playbook, runs };
            Ok(page(&state, &ctx, dozor_ui::playbook_detail(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/playbook-runs`: recent runs; `playbook`, `status`, `agent`, `alert` filters.
pub(crate) async fn runs(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let params = RunsParams::parse(&pairs(q));
            let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
            let runs = user
                .api
                .store
                .list_playbook_runs(&PlaybookRunQuery {
                    playbook: nonempty(&params.playbook),
                    alert_id: params.alert,
                    agent_id: nonempty(&params.agent),
                    status: params.status,
                    limit: RUN_LIST_ROWS,
                })
                .await
                .map_err(failed(&user))?;
            let playbooks = service(&state)
                .map(|s| s.playbooks().into_iter().map(|p| p.stored.name).collect())
                .unwrap_or_default();
            let view = RunsView {
                runs,
                params,
                playbooks,
            };
            Ok(page(&state, &ctx, dozor_ui::playbook_runs(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/playbook-runs/{id}`: one run with its steps and approvals.
pub(crate) async fn run(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let store = user.api.store.as_ref();
            approvals::expire_due(store, now_ms()).await;
            let run = store
                .get_playbook_run(&id)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            let steps = store.playbook_steps(&id).await.map_err(failed(&user))?;
            let approvals = store
                .list_approvals(None, 500)
                .await
                .map_err(failed(&user))?
                .into_iter()
                .filter(|a| a.run_id.as_deref() == Some(id.as_str()))
                .collect();
            let alert_title = match run.alert_id {
                Some(a) => store
                    .get_alert(a)
                    .await
                    .map_err(failed(&user))?
                    .map(|a| a.rule_title),
                None => None,
            };
            let agent_name = match &run.agent_id {
                Some(a) => store
                    .get_agent(a)
                    .await
                    .map_err(failed(&user))?
                    .map(|a| a.facts.hostname),
                None => None,
            };
            let view = RunDetailView {
                run,
                steps,
                approvals,
                alert_title,
                agent_name,
            };
            Ok(page(&state, &ctx, dozor_ui::playbook_run(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/approvals`: the inbox (`status` filter; pending first).
pub(crate) async fn approvals_page(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let params = ApprovalsParams::parse(&pairs(q));
            let store = user.api.store.as_ref();
            approvals::expire_due(store, now_ms()).await;
            let list = store
                .list_approvals(params.status, APPROVAL_ROWS)
                .await
                .map_err(failed(&user))?;
            let view = ApprovalsView {
                approvals: list,
                params,
                agent_names: agent_names(store).await.map_err(failed(&user))?,
            };
            Ok(page(&state, &ctx, dozor_ui::approvals(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- forms

/// The flash key of a refused response operation, or the error page of one the user can't
/// fix.
fn refusal<const N: u8>(
    action: &FormAction<N>,
    state: &AppState,
    back: &str,
    e: OpError,
) -> Response {
    let flash = match &e {
        OpError::NotFound(_) => "error.bad_alert_id",
        OpError::Forbidden(_) => "error.own_request",
        OpError::Refused { slug, .. } => match *slug {
            "already-decided" => "error.already_decided",
            "not-manual" => "error.playbook_not_manual",
            "playbook-invalid" => "error.playbook_invalid",
            "agent-revoked" => "error.agent_revoked",
            _ => "error.failed",
        },
        OpError::Invalid { .. } | OpError::Missing(_) => "error.bad_action",
        _ => return action.failed(state, back, e),
    };
    see_other(state, back, flash)
}

/// `POST /ui/playbooks/{name}/enabled` (admins): `enabled` (`true`/`false`), `return_to`.
/// As the API's: the store, a reload, the audit entry `playbook.enabled`.
pub(crate) async fn playbook_enabled(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    action: FormAction<ADMIN>,
) -> Response {
    let user = &action.user;
    let enabled = match action.form.get("enabled") {
        Some("true") => true,
        Some("false") => false,
        _ => return error(user.lang, StatusCode::BAD_REQUEST, "error.400"),
    };
    let back = action
        .form
        .return_to(&format!("/ui/playbooks/{}", dozor_ui::url::segment(&name)));
    let Some(service) = service(&state) else {
        return see_other(&state, &back, "error.response_off");
    };
    if service.playbook(&name).is_none() {
        return not_found(user);
    }
    let store = service.store().as_ref();
    let changed = async {
        store
            .set_playbook_enabled(&name, enabled, &user.username)
            .await?
            .ok_or_else(|| OpError::NotFound(format!("playbook {name}")))?;
        service.reload().await?;
        crate::ops::audited(
            store,
            &user.username,
            "playbook.enabled",
            format!("playbook:{name}"),
            json!({"enabled": enabled}),
        )
        .await
    };
    match changed.await {
        Ok(_) if enabled => see_other(&state, &back, "flash.playbook_enabled"),
        Ok(_) => see_other(&state, &back, "flash.playbook_disabled"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/playbook-runs` (analysts, admins): `playbook`, `alert_id`, `agent_id`, `dry_run`
/// (checkbox), `return_to`. Starts a manual run (audited `playbook.run`) and shows it.
pub(crate) async fn start_run(
    State(state): State<Arc<AppState>>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let form = &action.form;
    let alert_id = form.get("alert_id");
    let agent_id = form.get("agent_id");
    let back = match (alert_id, agent_id, form.get("playbook")) {
        (Some(id), _, _) if id.parse::<i64>().is_ok() => format!("/ui/alerts/{id}"),
        (_, Some(id), _) => format!("/ui/agents/{}", dozor_ui::url::segment(id)),
        (_, _, Some(p)) => format!("/ui/playbooks/{}", dozor_ui::url::segment(p)),
        _ => "/ui/playbooks".to_owned(),
    };
    let back = form.return_to(&back);
    let Some(service) = service(&state) else {
        return see_other(&state, &back, "error.response_off");
    };
    let Some(playbook) = form.get("playbook") else {
        return see_other(&state, &back, "error.playbook_missing");
    };
    let alert_id = match alert_id.map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) if id > 0 => Some(id),
        Some(_) => return see_other(&state, &back, "error.bad_alert_id"),
    };
    let request = ManualRun {
        playbook: playbook.to_owned(),
        requested_by: user.username.clone(),
        alert_id,
        agent_id: agent_id.map(str::to_owned),
        vars: serde_json::Map::new(),
        dry_run: form.get("dry_run").is_some(),
    };
    match service.run_manual(request).await {
        Ok(run) => see_other(
            &state,
            &format!("/ui/playbook-runs/{}", dozor_ui::url::segment(&run.id)),
            "flash.run_started",
        ),
        Err(e) => refusal(&action, &state, &back, e),
    }
}

/// `POST /ui/approvals/{id}/decision` (analysts, admins): `decision` (`approve`/`reject`),
/// `comment`, `return_to`. As the API's (`crate::response::approvals::decide`, audited);
/// a decided or expired request and a requester deciding their own (when another person
/// must) come back with a message.
pub(crate) async fn decide(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let approve = match action.form.get("decision") {
        Some("approve") => true,
        Some("reject") => false,
        _ => return error(user.lang, StatusCode::BAD_REQUEST, "error.400"),
    };
    let back = action.form.return_to("/ui/approvals");
    let store = user.api.store.as_ref();
    approvals::expire_due(store, now_ms()).await;
    match approvals::decide(
        store,
        &user.username,
        &id,
        approve,
        action.form.get("comment"),
    )
    .await
    {
        Ok(_) if approve => see_other(&state, &back, "flash.approved"),
        Ok(_) => see_other(&state, &back, "flash.rejected"),
        Err(OpError::NotFound(_)) => not_found(user),
        Err(e) => refusal(&action, &state, &back, e),
    }
}

/// An agent action as the API's `POST /api/v1/agents/{id}/actions`: a destructive kind
/// becomes an approval request (unless configured otherwise), the others are queued at once.
/// `Ok(true)`: it waits for an approval.
async fn agent_action(
    state: &AppState,
    user: &WebUser,
    agent_id: &str,
    kind: &str,
    args: Value,
    reason: &str,
) -> Result<bool, &'static str> {
    if dozor_model::response::check_command_args(kind, &args).is_err() {
        return Err("error.bad_action");
    }
    let store = user.api.store.as_ref();
    let agent = match store.get_agent(agent_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Err("error.not_found"),
        Err(e) => {
            tracing::error!("ui: agent action: {e}");
            return Err("error.failed");
        }
    };
    if agent.revoked_at.is_some() {
        return Err("error.agent_revoked");
    }
    if crate::api::commands::is_destructive(kind) && crate::api::commands::approvals_required(state)
    {
        let Some(service) = service(state) else {
            return Err("error.response_off");
        };
        approvals::request_command(
            store,
            service.config(),
            &user.username,
            agent_id,
            kind,
            &args,
            reason,
        )
        .await
        .map_err(|e| match e {
            OpError::Invalid { .. } | OpError::Missing(_) => "error.bad_action",
            _ => "error.failed",
        })?;
        Ok(true)
    } else {
        crate::api::commands::queue(&user.api, &user.username, agent_id, kind.to_owned(), args)
            .await
            .map_err(|p| match p.slug() {
                "agent-revoked" => "error.agent_revoked",
                "too-many-commands" => "error.too_many_commands",
                "not-found" => "error.not_found",
                _ => "error.failed",
            })?;
        Ok(false)
    }
}

/// `POST /ui/agents/{id}/isolate` (analysts, admins): `reason`, `allow_hosts` (comma- or
/// space-separated). Asks for an approval (audited `approval.requested`) unless direct
/// commands need none; then it is queued.
pub(crate) async fn isolate(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let back = format!("/ui/agents/{}", dozor_ui::url::segment(&id));
    let reason = action.form.get("reason").unwrap_or("");
    if reason.chars().count() > 2000 {
        return see_other(&state, &back, "error.bad_action");
    }
    let allow_hosts: Vec<&str> = action
        .form
        .get("allow_hosts")
        .unwrap_or("")
        .split([',', ' ', '\n', ';'])
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let args = json!({"reason": reason, "allow_hosts": allow_hosts});
    match agent_action(&state, &action.user, &id, "isolate_host", args, reason).await {
        Ok(true) => see_other(&state, &back, "flash.isolation_requested"),
        Ok(false) => see_other(&state, &back, "flash.isolation_queued"),
        Err("error.not_found") => not_found(&action.user),
        Err(key) => see_other(&state, &back, key),
    }
}

/// `POST /ui/agents/{id}/release` (analysts, admins): `reason`. Queued at once (audited
/// `agent.command`).
pub(crate) async fn release(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let back = format!("/ui/agents/{}", dozor_ui::url::segment(&id));
    let reason = action.form.get("reason").unwrap_or("");
    if reason.chars().count() > 2000 {
        return see_other(&state, &back, "error.bad_action");
    }
    let args = json!({"reason": reason});
    match agent_action(&state, &action.user, &id, "release_host", args, reason).await {
        Ok(true) => see_other(&state, &back, "flash.isolation_requested"),
        Ok(false) => see_other(&state, &back, "flash.release_requested"),
        Err("error.not_found") => not_found(&action.user),
        Err(key) => see_other(&state, &back, key),
    }
}
