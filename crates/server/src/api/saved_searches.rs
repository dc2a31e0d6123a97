//! Saved event searches: list and read (viewers: their own and the shared ones), save (analysts
//! and admins), change and delete (the owner or an admin); every change audited.

use axum::Json;
use axum::http::StatusCode;
use dozor_store::{NewSavedSearch, SavedSearch, SavedSearchChange};

use super::access::{Caller, JsonBody, PathId, READ, TRIAGE, not_found, store_problem};
use crate::auth::Role;
use crate::ops;
use crate::ops::saved_searches::Asker;
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, Forbidden, JsonTooLarge, NotJson, NotJsonMediaType, Unauthorized,
    problem_response,
};

pub(crate) const SAVED_SEARCHES: &str = "/api/v1/saved-searches";
pub(crate) const SAVED_SEARCH: &str = "/api/v1/saved-searches/{id}";

problem_response! {
    /// The `{id}` names no saved search the caller may see.
    NoSuchSavedSearch = 404, "No such saved search (or not one the caller may see)";
    InvalidSavedSearch = 422, "A bad name (1-120 characters), a query over 8 KiB, an unknown time range or column";
    SavedSearchNameTaken = 409, "The owner has a saved search of this name already";
    NotTheOwner = 403, "Not the caller's search (only its owner or an admin changes it), or not an analyst or admin";
}

fn asker<const NEED: u8>(caller: &Caller<NEED>) -> Asker<'_> {
    Asker {
        name: &caller.identity.subject,
        admin: caller.identity.role == Role::Admin,
    }
}

fn search_id(id: &PathId) -> Result<i64, Problem> {
    id.0.parse::<i64>()
        .map_err(|_| not_found(&format!("saved search {}", id.0)))
}

#[utoipa::path(get, path = SAVED_SEARCHES, tag = "events", operation_id = "saved_searches",
    summary = "List saved searches",
    description = "The caller's own saved searches and the shared ones, by name.",
    responses(
        (status = 200, description = "The saved searches", body = Vec<SavedSearch>),
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(caller: Caller<READ>) -> Result<Json<Vec<SavedSearch>>, Problem> {
    let list = caller
        .api
        .store
        .list_saved_searches(Some(&caller.identity.subject))
        .await
        .map_err(store_problem)?;
    Ok(Json(list))
}

#[utoipa::path(get, path = SAVED_SEARCH, tag = "events", operation_id = "saved_search",
    summary = "One saved search",
    params(("id" = i64, Path, description = "Saved search id")),
    responses(
        (status = 200, description = "The saved search", body = SavedSearch),
        Unauthorized,
        Forbidden<READ>,
        NoSuchSavedSearch,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(caller: Caller<READ>, id: PathId) -> Result<Json<SavedSearch>, Problem> {
    let id = search_id(&id)?;
    let found = ops::saved_searches::visible(caller.api.store.as_ref(), asker(&caller), id).await?;
    Ok(Json(found))
}

#[utoipa::path(post, path = SAVED_SEARCHES, tag = "events", operation_id = "saved_search_add",
    summary = "Save a search",
    description = "Saves a query with its time range, agent and columns under a name, owned by the caller \
(shared: every operator sees it). At most 200 per owner. Audited (analyst or admin).",
    request_body(content = NewSavedSearch, content_type = "application/json"),
    responses(
        (status = 201, description = "The saved search", body = SavedSearch),
        NotJson,
        Unauthorized,
        Forbidden<TRIAGE>,
        SavedSearchNameTaken,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidSavedSearch,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add(
    caller: Caller<TRIAGE>,
    JsonBody(request): JsonBody<NewSavedSearch>,
) -> Result<(StatusCode, Json<SavedSearch>), Problem> {
    let made =
        ops::saved_searches::create(caller.api.store.as_ref(), asker(&caller), &request).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

#[utoipa::path(put, path = SAVED_SEARCH, tag = "events", operation_id = "saved_search_change",
    summary = "Change a saved search",
    description = "Replaces the members given (name, query, params, shared) and keeps the others. Only its \
owner or an admin. Audited with the search before and after.",
    params(("id" = i64, Path, description = "Saved search id")),
    request_body(content = SavedSearchChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The saved search", body = SavedSearch),
        NotJson,
        Unauthorized,
        NotTheOwner,
        NoSuchSavedSearch,
        SavedSearchNameTaken,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidSavedSearch,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn change(
    caller: Caller<TRIAGE>,
    id: PathId,
    JsonBody(request): JsonBody<SavedSearchChange>,
) -> Result<Json<SavedSearch>, Problem> {
    let id = search_id(&id)?;
    let changed =
        ops::saved_searches::update(caller.api.store.as_ref(), asker(&caller), id, &request)
            .await?;
    Ok(Json(changed))
}

#[utoipa::path(delete, path = SAVED_SEARCH, tag = "events", operation_id = "saved_search_remove",
    summary = "Delete a saved search",
    description = "Only its owner or an admin. Audited with what it was.",
    params(("id" = i64, Path, description = "Saved search id")),
    responses(
        (status = 200, description = "The saved search as it was", body = SavedSearch),
        Unauthorized,
        NotTheOwner,
        NoSuchSavedSearch,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn remove(
    caller: Caller<TRIAGE>,
    id: PathId,
) -> Result<Json<SavedSearch>, Problem> {
    let id = search_id(&id)?;
    let gone = ops::saved_searches::delete(caller.api.store.as_ref(), asker(&caller), id).await?;
    Ok(Json(gone))
}
