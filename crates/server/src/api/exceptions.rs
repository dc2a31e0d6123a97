//! Alert exception routes: list (viewers), add and remove (analysts and admins, audited).

use axum::Json;
use axum::http::StatusCode;
use dozor_store::{AlertException, NewException};

use super::access::{Caller, JsonBody, PathId, READ, TRIAGE, not_found, store_problem};
use crate::ops;
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, Forbidden, JsonTooLarge, NotJson, NotJsonMediaType, Unauthorized,
    problem_response,
};

pub(crate) const EXCEPTIONS: &str = "/api/v1/exceptions";
pub(crate) const EXCEPTION: &str = "/api/v1/exceptions/{id}";

problem_response! {
    /// The `{id}` names no exception.
    NoSuchException = 404, "No such exception";
    InvalidException = 422, "A member missing, no condition, a bad field name, no reason or an expiry in the past";
}

#[utoipa::path(get, path = EXCEPTIONS, tag = "alerts", operation_id = "exceptions",
    summary = "List alert exceptions",
    description = "Every alert exception, newest first, with how many matches each has suppressed.",
    responses(
        (status = 200, description = "The exceptions", body = Vec<AlertException>),
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(caller: Caller<READ>) -> Result<Json<Vec<AlertException>>, Problem> {
    let list = caller
        .api
        .store
        .list_exceptions()
        .await
        .map_err(store_problem)?;
    Ok(Json(list))
}

#[utoipa::path(post, path = EXCEPTIONS, tag = "alerts", operation_id = "exception_add",
    summary = "Add an alert exception",
    description = "From now on the rule's matches on events that hold every condition (field equals value, \
any letter case) are counted on the exception instead of alerted, until it expires or is removed. \
Audited (analyst or admin).",
    request_body(content = NewException, content_type = "application/json"),
    responses(
        (status = 201, description = "The exception", body = AlertException),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidException,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add(
    caller: Caller<TRIAGE>,
    JsonBody(request): JsonBody<NewException>,
) -> Result<(StatusCode, Json<AlertException>), Problem> {
    let made = ops::exceptions::add(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        &request,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(delete, path = EXCEPTION, tag = "alerts", operation_id = "exception_remove",
    summary = "Remove an alert exception",
    description = "The rule's matches alert again from now on. Audited (analyst or admin).",
    params(("id" = i64, Path, description = "Exception id")),
    responses(
        (status = 200, description = "The exception as it was", body = AlertException),
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchException,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn remove(
    caller: Caller<TRIAGE>,
    id: PathId,
) -> Result<Json<AlertException>, Problem> {
    let id =
        id.0.parse::<i64>()
            .map_err(|_| not_found(&format!("exception {}", id.0)))?;
    let gone =
        ops::exceptions::remove(caller.api.store.as_ref(), &caller.identity.subject, id).await?;
    Ok(Json(gone))
}
