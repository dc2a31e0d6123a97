//! Incident routes: list, read (with the merged timeline) and suggestions (viewers); open,
//! edit, group alerts, tasks, notes and observables (analysts and admins, audited).

use axum::Json;
use axum::http::StatusCode;
use dozor_store::{
    Incident, IncidentDetail, IncidentNote, IncidentPatch, IncidentQuery, IncidentStatus,
    IncidentSuggestion, IncidentTask, NewIncident, NewObservable, Observable, TimelineEntry,
    now_ms,
};
use serde::{Deserialize, Serialize};

use super::access::{
    Caller, JsonBody, Params, PathId, PathIds, READ, TRIAGE, bad_param, not_found, store_problem,
};
use crate::ops;
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, BadParameter, Forbidden, InvalidBody, JsonTooLarge, NotJson,
    NotJsonMediaType, Unauthorized, problem_response,
};

pub(crate) const INCIDENTS: &str = "/api/v1/incidents";
pub(crate) const INCIDENT_SUGGESTIONS: &str = "/api/v1/incidents/suggestions";
pub(crate) const INCIDENT: &str = "/api/v1/incidents/{id}";
pub(crate) const INCIDENT_ALERTS: &str = "/api/v1/incidents/{id}/alerts";
pub(crate) const INCIDENT_ALERT: &str = "/api/v1/incidents/{id}/alerts/{alert_id}";
pub(crate) const INCIDENT_TASKS: &str = "/api/v1/incidents/{id}/tasks";
pub(crate) const INCIDENT_TASK: &str = "/api/v1/incidents/{id}/tasks/{task_id}";
pub(crate) const INCIDENT_NOTES: &str = "/api/v1/incidents/{id}/notes";
pub(crate) const INCIDENT_OBSERVABLES: &str = "/api/v1/incidents/{id}/observables";
pub(crate) const INCIDENT_OBSERVABLE: &str = "/api/v1/incidents/{id}/observables/{observable_id}";

problem_response! {
    /// The path names no incident (or no such alert, task or observable of it).
    NoSuchIncident = 404, "No such incident (or no such alert, task or observable of it)";
    /// An alert already in another incident, an observable noted twice.
    IncidentConflict = 409, "An alert is in another incident already, or the observable is noted already";
}

/// An incident with everything in it and its merged timeline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IncidentView {
    #[serde(flatten)]
    detail: IncidentDetail,
    /// Alerts (first and latest event), notes, changes and playbook runs, oldest first.
    timeline: Vec<TimelineEntry>,
}

/// Alerts to group into an incident.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertIdsRequest {
    /// Alert ids (1 to 1000).
    #[schema(min_items = 1, max_items = 1000)]
    #[serde(deserialize_with = "dozor_model::integral_ids")]
    alert_ids: Vec<i64>,
}

/// The alerts grouped now (ones already in the incident are left out).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AlertIdsAnswer {
    added: Vec<i64>,
}

/// A task to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskRequest {
    /// What to do.
    #[schema(pattern = r"\S", min_length = 1, max_length = 500)]
    title: String,
}

/// A task ticked off or reopened.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskDoneRequest {
    done: bool,
}

/// A note to add.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoteRequest {
    /// The text.
    #[schema(pattern = r"\S", min_length = 1, max_length = 20000)]
    body: String,
}

/// The query of `GET /api/v1/incidents`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct IncidentListParameters {
    /// Only these statuses (comma-separated: open, in_progress, contained, closed)
    #[param(
        nullable = false,
        pattern = r"^(|(open|in_progress|contained|closed)(,(open|in_progress|contained|closed))*)$"
    )]
    status: Option<String>,
    /// Only incidents of this owner
    #[param(nullable = false)]
    owner: Option<String>,
    /// How many at most, 1-1000 (default 100)
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The query of `GET /api/v1/incidents/suggestions`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct SuggestionParameters {
    /// Alerts changed since (ms, RFC 3339 or now-<duration>; default now-7d)
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    since: Option<String>,
}

fn id_of(what: &str, text: &str) -> Result<i64, Problem> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| not_found(&format!("{what} {text}")))
}

#[utoipa::path(get, path = INCIDENTS, tag = "incidents", operation_id = "incidents",
    summary = "List incidents",
    description = "Incidents, most recently changed first, with their alert and task counts.",
    params(IncidentListParameters),
    responses(
        (status = 200, description = "The incidents", body = Vec<Incident>),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    caller: Caller<READ>,
    params: Params,
) -> Result<Json<Vec<Incident>>, Problem> {
    params.only(&["status", "owner", "limit"])?;
    let statuses = params
        .list("status")
        .into_iter()
        .map(|s| {
            s.parse::<IncidentStatus>()
                .map_err(|e| bad_param("status", e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let query = IncidentQuery {
        statuses,
        owner: params.string("owner")?,
        limit: params.limit(100, 1000)?,
    };
    let list = caller
        .api
        .store
        .list_incidents(&query)
        .await
        .map_err(store_problem)?;
    Ok(Json(list))
}

#[utoipa::path(get, path = INCIDENT_SUGGESTIONS, tag = "incidents",
    operation_id = "incident_suggestions",
    summary = "Suggested incidents",
    description = "Open alerts in no incident, changed since `since`, grouped per host where a host has \
two or more: incidents worth opening.",
    params(SuggestionParameters),
    responses(
        (status = 200, description = "The suggestions, largest first", body = Vec<IncidentSuggestion>),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn suggestions(
    caller: Caller<READ>,
    params: Params,
) -> Result<Json<Vec<IncidentSuggestion>>, Problem> {
    params.only(&["since"])?;
    let now = now_ms();
    let since = params.time("since", now)?.unwrap_or(now - 7 * 86_400_000);
    let list = caller
        .api
        .store
        .suggest_incidents(since)
        .await
        .map_err(store_problem)?;
    Ok(Json(list))
}

#[utoipa::path(post, path = INCIDENTS, tag = "incidents", operation_id = "incident_create",
    summary = "Open an incident",
    description = "Opens an incident, grouping `alert_ids` into it at once (an alert belongs to one \
incident at most). Without a severity it takes the highest level of its alerts. Audited (analyst or admin).",
    request_body(content = NewIncident, content_type = "application/json"),
    responses(
        (status = 201, description = "The incident", body = Incident),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        IncidentConflict,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    caller: Caller<TRIAGE>,
    JsonBody(request): JsonBody<NewIncident>,
) -> Result<(StatusCode, Json<Incident>), Problem> {
    let made = ops::incidents::create(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        &request,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(get, path = INCIDENT, tag = "incidents", operation_id = "incident",
    summary = "One incident",
    description = "The incident with its alerts, tasks, notes, observables, history, the playbook runs \
of its alerts and the merged timeline of all of them.",
    params(("id" = i64, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = IncidentView),
        Unauthorized,
        Forbidden<READ>,
        NoSuchIncident,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(caller: Caller<READ>, id: PathId) -> Result<Json<IncidentView>, Problem> {
    let id = id_of("incident", &id.0)?;
    let detail = caller
        .api
        .store
        .get_incident(id)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("incident {id}")))?;
    let timeline = detail.timeline();
    Ok(Json(IncidentView { detail, timeline }))
}

#[utoipa::path(patch, path = INCIDENT, tag = "incidents", operation_id = "incident_update",
    summary = "Change an incident",
    description = "Changes the title, description, severity, status or owner (an empty owner clears it); \
each change is written to the incident's history. Audited (analyst or admin).",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = IncidentPatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The incident after the change", body = Incident),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn update(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(patch): JsonBody<IncidentPatch>,
) -> Result<Json<Incident>, Problem> {
    let id = id_of("incident", &id.0)?;
    let store = caller.api.store.as_ref();
    let after = ops::incidents::update(store, &caller.identity.subject, id, &patch).await?;
    Ok(Json(after))
}

#[utoipa::path(post, path = INCIDENT_ALERTS, tag = "incidents", operation_id = "incident_alerts_add",
    summary = "Group alerts into an incident",
    description = "Adds alerts to the incident; ones already in it are skipped, one in another incident \
refuses the whole request (409). Audited (analyst or admin).",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = AlertIdsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The alerts added now", body = AlertIdsAnswer),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        IncidentConflict,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add_alerts(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<AlertIdsRequest>,
) -> Result<Json<AlertIdsAnswer>, Problem> {
    let id = id_of("incident", &id.0)?;
    let store = caller.api.store.as_ref();
    let added =
        ops::incidents::add_alerts(store, &caller.identity.subject, id, &request.alert_ids).await?;
    Ok(Json(AlertIdsAnswer { added }))
}

#[utoipa::path(delete, path = INCIDENT_ALERT, tag = "incidents",
    operation_id = "incident_alert_remove",
    summary = "Take an alert out of an incident",
    description = "Audited (analyst or admin).",
    params(
        ("id" = i64, Path, description = "Incident id"),
        ("alert_id" = i64, Path, description = "Alert id"),
    ),
    responses(
        (status = 204, description = "Taken out"),
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn remove_alert(
    caller: Caller<TRIAGE>,
    ids: PathIds,
) -> Result<StatusCode, Problem> {
    let id = id_of("incident", &ids.0)?;
    let alert_id = id_of("alert", &ids.1)?;
    let store = caller.api.store.as_ref();
    ops::incidents::remove_alert(store, &caller.identity.subject, id, alert_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = INCIDENT_TASKS, tag = "incidents", operation_id = "incident_task_add",
    summary = "Add a task to an incident",
    description = "Audited (analyst or admin).",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = TaskRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The task", body = IncidentTask),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add_task(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<TaskRequest>,
) -> Result<(StatusCode, Json<IncidentTask>), Problem> {
    let id = id_of("incident", &id.0)?;
    let store = caller.api.store.as_ref();
    let task =
        ops::incidents::add_task(store, &caller.identity.subject, id, &request.title).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

#[utoipa::path(patch, path = INCIDENT_TASK, tag = "incidents", operation_id = "incident_task_set",
    summary = "Tick a task off or reopen it",
    description = "Audited (analyst or admin).",
    params(
        ("id" = i64, Path, description = "Incident id"),
        ("task_id" = i64, Path, description = "Task id"),
    ),
    request_body(content = TaskDoneRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The task", body = IncidentTask),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn set_task(
    caller: Caller<TRIAGE>,
    ids: PathIds,
    JsonBody(request): JsonBody<TaskDoneRequest>,
) -> Result<Json<IncidentTask>, Problem> {
    let id = id_of("incident", &ids.0)?;
    let task_id = id_of("task", &ids.1)?;
    let store = caller.api.store.as_ref();
    let task = ops::incidents::set_task(store, &caller.identity.subject, id, task_id, request.done)
        .await?;
    Ok(Json(task))
}

#[utoipa::path(post, path = INCIDENT_NOTES, tag = "incidents", operation_id = "incident_note_add",
    summary = "Add a note to an incident",
    description = "Audited (analyst or admin).",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = NoteRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The note", body = IncidentNote),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add_note(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<NoteRequest>,
) -> Result<(StatusCode, Json<IncidentNote>), Problem> {
    let id = id_of("incident", &id.0)?;
    let store = caller.api.store.as_ref();
    let note = ops::incidents::add_note(store, &caller.identity.subject, id, &request.body).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

#[utoipa::path(post, path = INCIDENT_OBSERVABLES, tag = "incidents",
    operation_id = "incident_observable_add",
    summary = "Add an observable to an incident",
    description = "The value is checked against its kind (an IP parses, a hash is 32, 40 or 64 hex \
digits, a domain has labels, a URL a scheme); the same kind and value twice is refused (409). Audited.",
    params(("id" = i64, Path, description = "Incident id")),
    request_body(content = NewObservable, content_type = "application/json"),
    responses(
        (status = 201, description = "The observable", body = Observable),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        IncidentConflict,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add_observable(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<NewObservable>,
) -> Result<(StatusCode, Json<Observable>), Problem> {
    let id = id_of("incident", &id.0)?;
    let store = caller.api.store.as_ref();
    let added =
        ops::incidents::add_observable(store, &caller.identity.subject, id, &request).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

#[utoipa::path(delete, path = INCIDENT_OBSERVABLE, tag = "incidents",
    operation_id = "incident_observable_remove",
    summary = "Remove an observable from an incident",
    description = "Audited (analyst or admin).",
    params(
        ("id" = i64, Path, description = "Incident id"),
        ("observable_id" = i64, Path, description = "Observable id"),
    ),
    responses(
        (status = 200, description = "The observable as it was", body = Observable),
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIncident,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn remove_observable(
    caller: Caller<TRIAGE>,
    ids: PathIds,
) -> Result<Json<Observable>, Problem> {
    let id = id_of("incident", &ids.0)?;
    let observable_id = id_of("observable", &ids.1)?;
    let store = caller.api.store.as_ref();
    let gone =
        ops::incidents::remove_observable(store, &caller.identity.subject, id, observable_id)
            .await?;
    Ok(Json(gone))
}
