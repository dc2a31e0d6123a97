//! Saved searches on the dashboard: the list (`GET /ui/searches`), a re-run
//! (`GET /ui/searches/{id}/run`: records the run, then the events page with the search's
//! query, time range, agent and columns), and the forms that save (from the events page),
//! rename and delete one — the API's own operations, audited.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use dozor_store::{NewSavedSearch, SavedSearchChange, now_ms};
use dozor_ui::{EventsParams, SavedSearchesView};

use super::common::{FormAction, TRIAGE, error, page, page_ctx, see_other, store_failed};
use crate::auth::Role;
use crate::ops;
use crate::ops::saved_searches::Asker;
use crate::session::WebUser;
use crate::state::AppState;

const LIST: &str = "/ui/searches";

fn asker(user: &WebUser) -> Asker<'_> {
    Asker {
        name: &user.username,
        admin: user.role == Role::Admin,
    }
}

/// `GET /ui/searches`: the user's own and the shared searches.
pub(crate) async fn list(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = page_ctx(&user, &uri, &headers);
    match user
        .api
        .store
        .list_saved_searches(Some(&user.username))
        .await
    {
        Ok(searches) => page(
            &state,
            &ctx,
            dozor_ui::searches(&ctx, &SavedSearchesView { searches }),
        ),
        Err(e) => store_failed(user.lang, e),
    }
}

/// `GET /ui/searches/{id}/run`: records the re-run and opens the events page of the search.
pub(crate) async fn run(user: WebUser, Path(id): Path<String>) -> Response {
    let not_found = || error(user.lang, StatusCode::NOT_FOUND, "error.not_found");
    let Ok(id) = id.parse::<i64>() else {
        return not_found();
    };
    let store = user.api.store.as_ref();
    match ops::saved_searches::visible(store, asker(&user), id).await {
        Ok(found) => {
            // Bookkeeping only: a failure to record it does not stop the search.
            if let Err(e) = store.mark_saved_search_run(id, now_ms()).await {
                tracing::warn!("saved search {id}: recording the run failed: {e}");
            }
            let to = EventsParams::of_saved(&found)
                .filter_query()
                .url("/ui/events");
            Redirect::to(&to).into_response()
        }
        Err(ops::OpError::NotFound(_)) => not_found(),
        Err(e) => {
            tracing::error!("ui: {e}");
            error(user.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed")
        }
    }
}

/// `POST /ui/searches`: `name`, `shared` (checkbox `1`) and the events page's `q`, `range`,
/// `from`, `to`, `agent`, `cols`; back to the events page of the saved search.
pub(crate) async fn save(
    State(state): State<Arc<AppState>>,
    action: FormAction<TRIAGE>,
) -> Response {
    let f = &action.form;
    let pairs: Vec<(String, String)> = ["q", "range", "from", "to", "agent", "cols"]
        .into_iter()
        .map(|k| (k.to_owned(), f.raw(k).to_owned()))
        .collect();
    let params = EventsParams::parse(&pairs);
    let back = params.filter_query().url("/ui/events");
    let search = NewSavedSearch {
        name: f.raw("name").trim().to_owned(),
        query: params.q.clone(),
        params: params.saved_params(),
        shared: f.get("shared").is_some(),
    };
    let user = &action.user;
    match ops::saved_searches::create(user.api.store.as_ref(), asker(user), &search).await {
        Ok(_) => see_other(&state, &back, "flash.search_saved"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/searches/{id}/rename`: `name` (the owner or an admin).
pub(crate) async fn rename(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return error(user.lang, StatusCode::NOT_FOUND, "error.not_found");
    };
    let change = SavedSearchChange {
        name: Some(action.form.raw("name").trim().to_owned()),
        ..SavedSearchChange::default()
    };
    match ops::saved_searches::update(user.api.store.as_ref(), asker(user), id, &change).await {
        Ok(_) => see_other(&state, LIST, "flash.search_renamed"),
        Err(e) => action.failed(&state, LIST, e),
    }
}

/// `POST /ui/searches/{id}/delete` (the owner or an admin).
pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return error(user.lang, StatusCode::NOT_FOUND, "error.not_found");
    };
    match ops::saved_searches::delete(user.api.store.as_ref(), asker(user), id).await {
        Ok(_) => see_other(&state, LIST, "flash.search_deleted"),
        Err(e) => action.failed(&state, LIST, e),
    }
}
