//! `GET /api/v1/alerts`, `/api/v1/alerts/{id}` and the workflow: status, assignee, comments.
//! Every change is appended to the audit log with the caller as actor.

use axum::Json;
use axum::http::StatusCode;
use dozor_store::{AlertQuery, AlertStatus, DEFAULT_PAGE_LIMIT, Level, MAX_PAGE_LIMIT, now_ms};

use super::access::{
    Caller, JsonBody, LevelName, Params, PathId, READ, StatusName, TRIAGE, bad_param, not_found,
    store_problem,
};
use super::types::{
    Alert, AlertDetail, AlertPage, AssigneeRequest, Comment, CommentRequest, StatusRequest,
};
use crate::ops;
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, BadParameterOrCursor, Forbidden, JsonTooLarge, NotJson, NotJsonMediaType,
    Unauthorized, problem_response,
};

/// The query parameters of `GET /api/v1/alerts`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct ListParameters {
    /// new, acknowledged, resolved, false_positive; repeat or separate with commas
    #[param(nullable = false, inline, style = Form, explode)]
    status: Option<Vec<StatusName>>,
    /// informational, low, medium, high, critical
    #[param(nullable = false, inline)]
    min_level: Option<LevelName>,
    /// Rule id
    #[param(nullable = false)]
    rule: Option<String>,
    /// Agent id
    #[param(nullable = false)]
    agent: Option<String>,
    /// Host (`host.name` of the matched events, any letter case)
    #[param(nullable = false)]
    host: Option<String>,
    /// A tag, or a tag above the alerts' (`attack.t1059` also finds `attack.t1059.001`); any
    /// letter case
    #[param(nullable = false)]
    tag: Option<String>,
    /// Assignee
    #[param(nullable = false)]
    assignee: Option<String>,
    /// Which time `from`, `to` and the order use: `event` (the matched events' `last_seen`,
    /// the default) or `detected` (when Dozor raised the alert, `created_at`)
    #[param(nullable = false, inline)]
    time: Option<dozor_model::AlertTime>,
    /// time ≥ from
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    from: Option<String>,
    /// time < to
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    to: Option<String>,
    /// Page size, 1-1000 (default 100)
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(nullable = false)]
    cursor: Option<String>,
}

/// The names in [`ListParameters`]: any other is refused.
const LIST_PARAMETERS: &[&str] = &[
    "status",
    "min_level",
    "rule",
    "agent",
    "host",
    "tag",
    "assignee",
    "time",
    "from",
    "to",
    "limit",
    "cursor",
];

problem_response! {
    /// The `{id}` names no alert (or is not an alert id at all).
    NoSuchAlert = 404, "No such alert";
    InvalidTransition = 409, "The workflow does not allow this change";
    InvalidStatusBody = 422, "Unknown status or a member missing";
    InvalidAssigneeBody = 422, "A member missing or too long";
    InvalidComment = 422, "Empty or longer than 64 KiB";
}

#[utoipa::path(get, path = super::ALERTS, tag = "alerts", operation_id = "alerts",
    summary = "List alerts",
    description = "Alerts, newest first by `time` (event time unless `time=detected`).",
    params(ListParameters),
    responses(
        (status = 200, description = "One page of alerts", body = AlertPage),
        BadParameterOrCursor,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(caller: Caller<READ>, params: Params) -> Result<Json<AlertPage>, Problem> {
    params.only(LIST_PARAMETERS)?;
    let query = alert_query(&params)?;
    let page = caller
        .api
        .store
        .list_alerts(&query)
        .await
        .map_err(store_problem)?;
    Ok(Json(page))
}

/// The alert filters, time, cursor and limit of a listing's parameters (also the export's).
pub(super) fn alert_query(params: &Params) -> Result<AlertQuery, Problem> {
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
    let time = params
        .get("time")?
        .map(|t| {
            t.parse::<dozor_model::AlertTime>()
                .map_err(|_| bad_param("time", format!("time: unknown {t:?} (event, detected)")))
        })
        .transpose()?
        .unwrap_or_default();
    let now = now_ms();
    Ok(AlertQuery {
        statuses,
        min_level,
        rule_id: params.string("rule")?,
        rule_text: None,
        agent_id: params.string("agent")?,
        host: params.string("host")?,
        tag: params.string("tag")?,
        assignee: params.string("assignee")?,
        time,
        from: params.time("from", now)?,
        to: params.time("to", now)?,
        cursor: params.string("cursor")?,
        limit: params.limit(DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT)?,
    })
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

#[utoipa::path(get, path = super::ALERT, tag = "alerts", operation_id = "alert",
    summary = "One alert with its comments, status history and events",
    params(("id" = i64, Path, description = "Alert id")),
    responses(
        (status = 200, description = "The alert, its comments, status history and matched events", body = AlertDetail),
        Unauthorized,
        Forbidden<READ>,
        NoSuchAlert,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
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
            Some(e) => events.push(e),
            None => missing_events.push(*event_id),
        }
    }
    Ok(Json(AlertDetail {
        alert,
        comments: comments.into_iter().map(Into::into).collect(),
        history: history.into_iter().map(Into::into).collect(),
        events,
        missing_events,
    }))
}

#[utoipa::path(post, path = super::ALERT_STATUS, tag = "alerts", operation_id = "alert_status",
    summary = "Move the alert through the workflow",
    description = "Moves the alert through the workflow: new → acknowledged → resolved / false_positive; new may \
close at once, acknowledged may go back to new, a closed alert may be reopened (→ new). Any other change is a \
409 `invalid-transition` problem with `from`, `to` and the `allowed` targets. The change and its comment go to \
the status history and the audit log (analyst or admin).",
    params(("id" = i64, Path, description = "Alert id")),
    request_body(content = StatusRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert after the change", body = Alert),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchAlert,
        InvalidTransition,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidStatusBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
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
    Ok(Json(alert))
}

#[utoipa::path(post, path = super::ALERT_ASSIGNEE, tag = "alerts", operation_id = "alert_assignee",
    summary = "Assign or unassign the alert",
    description = "Assigns the alert (`null` or empty unassigns); audited (analyst or admin).",
    params(("id" = i64, Path, description = "Alert id")),
    request_body(content = AssigneeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alert after the change", body = Alert),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchAlert,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidAssigneeBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
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
    Ok(Json(alert))
}

#[utoipa::path(post, path = super::ALERT_COMMENTS, tag = "alerts", operation_id = "alert_comments",
    summary = "Comment on the alert",
    description = "Comments on the alert as the caller; audited (analyst or admin).",
    params(("id" = i64, Path, description = "Alert id")),
    request_body(content = CommentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The comment", body = Comment),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchAlert,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidComment,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_parameters_are_the_accepted_ones() {
        let names = crate::openapi::query_parameter_names::<ListParameters>();
        assert_eq!(names, LIST_PARAMETERS);
    }
}
