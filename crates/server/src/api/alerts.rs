//! `GET /api/v1/alerts`, `/api/v1/alerts/{id}` and the workflow: status, assignee, comments.
//! Every change is appended to the audit log with the caller as actor.

use axum::Json;
use axum::http::StatusCode;
use dozor_store::{AlertQuery, AlertStatus, DEFAULT_PAGE_LIMIT, Level, MAX_PAGE_LIMIT, now_ms};

use super::access::{
    Caller, JsonBody, Params, PathId, READ, TRIAGE, bad_param, not_found, store_problem,
};
use super::types::{
    Alert, AlertDetail, AlertPage, AssigneeRequest, Comment, CommentRequest, StatusRequest,
};
use crate::ops;
use crate::problem::Problem;

pub(crate) async fn list(caller: Caller<READ>, params: Params) -> Result<Json<AlertPage>, Problem> {
    params.only(&[
        "status",
        "min_level",
        "rule",
        "agent",
        "assignee",
        "from",
        "to",
        "limit",
        "cursor",
    ])?;
    let statuses = params
        .list("status")
        .into_iter()
        .map(|s| {
            s.parse::<AlertStatus>().map_err(|_| {
                bad_param(
                    "status",
                    format!("status: unknown {s:?} (new, acknowledged, resolved, false_positive)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let min_level = params
        .get("min_level")?
        .map(|l| {
            l.parse::<Level>().map_err(|_| {
                bad_param(
                    "min_level",
                    format!(
                        "min_level: unknown {l:?} (informational, low, medium, high, critical)"
                    ),
                )
            })
        })
        .transpose()?;
    let now = now_ms();
    let query = AlertQuery {
        statuses,
        min_level,
        rule_id: params.string("rule")?,
        agent_id: params.string("agent")?,
        assignee: params.string("assignee")?,
        from: params.time("from", now)?,
        to: params.time("to", now)?,
        cursor: params.string("cursor")?,
        limit: params.limit(DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT)?,
    };
    let page = caller
        .api
        .store
        .list_alerts(&query)
        .await
        .map_err(store_problem)?;
    Ok(Json(AlertPage {
        alerts: page.alerts.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn get_alert(
    caller_store: &dyn dozor_store::Store,
    id: i64,
) -> Result<dozor_store::Alert, Problem> {
    caller_store
        .get_alert(id)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("alert {id}")))
}

pub(crate) async fn one(caller: Caller<READ>, id: PathId) -> Result<Json<AlertDetail>, Problem> {
    let id = id.alert_id()?;
    let store = caller.api.store.as_ref();
    let alert = get_alert(store, id).await?;
    let comments = store.comments(id).await.map_err(store_problem)?;
    let history = store.status_history(id).await.map_err(store_problem)?;
    let mut events = Vec::with_capacity(alert.event_ids.len());
    let mut missing_events = Vec::new();
    for event_id in &alert.event_ids {
        match store.get_event(*event_id).await.map_err(store_problem)? {
            Some(e) => events.push(e.into()),
            None => missing_events.push(*event_id),
        }
    }
    Ok(Json(AlertDetail {
        alert: alert.into(),
        comments: comments.into_iter().map(Into::into).collect(),
        history: history.into_iter().map(Into::into).collect(),
        events,
        missing_events,
    }))
}

pub(crate) async fn set_status(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<StatusRequest>,
) -> Result<Json<Alert>, Problem> {
    let id = id.alert_id()?;
    let alert = ops::alerts::set_status(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        id,
        request.status,
        request.comment.as_deref(),
    )
    .await?;
    Ok(Json(alert.into()))
}

pub(crate) async fn set_assignee(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<AssigneeRequest>,
) -> Result<Json<Alert>, Problem> {
    let id = id.alert_id()?;
    let alert = ops::alerts::assign(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        id,
        request.assignee.as_deref(),
    )
    .await?;
    Ok(Json(alert.into()))
}

pub(crate) async fn comment(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<CommentRequest>,
) -> Result<(StatusCode, Json<Comment>), Problem> {
    let id = id.alert_id()?;
    let comment = ops::alerts::comment(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        id,
        &request.text,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(comment.into())))
}
