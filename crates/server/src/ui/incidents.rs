//! The dashboard's incident pages and forms: the list with suggestions, one incident, and
//! the changes (open from alerts, edit, group and take out alerts, tasks, notes,
//! observables) — each the same `ops::incidents` call the JSON API makes, so limits and
//! audit entries are one.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use dozor_store::{
    IncidentPatch, IncidentQuery, IncidentSeverity, IncidentStatus, NewIncident, NewObservable,
    ObservableKind, Store, StoreError,
};

use super::common::{FormAction, TRIAGE, form_fields, page, page_ctx, see_other};
use super::common::{done, failed, not_found};
use crate::ops::{self, OpError};
use crate::session::WebUser;
use crate::state::AppState;

/// Suggestions look at alerts changed in this window.
const SUGGESTION_WINDOW_MS: i64 = 7 * 86_400_000;
/// Incidents listed on one page.
const LIST_LIMIT: u32 = 500;

fn positive(text: &str) -> Option<i64> {
    text.trim()
        .trim_start_matches('#')
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// `GET /ui/incidents?show=active|closed|all`.
pub(crate) async fn list(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let show = form_fields(q.unwrap_or_default().as_bytes())
                .into_iter()
                .find(|(k, _)| k == "show")
                .map(|(_, v)| v)
                .filter(|v| matches!(v.as_str(), "closed" | "all"))
                .unwrap_or_else(|| "active".to_owned());
            let statuses = match show.as_str() {
                "closed" => vec![IncidentStatus::Closed],
                "all" => vec![],
                _ => vec![
                    IncidentStatus::Open,
                    IncidentStatus::InProgress,
                    IncidentStatus::Contained,
                ],
            };
            let store = user.api.store.as_ref();
            let query = IncidentQuery {
                statuses,
                owner: None,
                limit: LIST_LIMIT,
            };
            let incidents = store.list_incidents(&query).await.map_err(failed(&user))?;
            let suggestions = store
                .suggest_incidents(ctx.now - SUGGESTION_WINDOW_MS)
                .await
                .map_err(failed(&user))?;
            let view = dozor_ui::IncidentsView {
                show,
                incidents,
                suggestions,
            };
            Ok(page(&state, &ctx, dozor_ui::incidents(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/incidents/{id}`.
pub(crate) async fn one(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let Some(id) = positive(&id) else {
                return Err(not_found(&user));
            };
            let store = user.api.store.as_ref();
            let Some(detail) = store.get_incident(id).await.map_err(failed(&user))? else {
                return Err(not_found(&user));
            };
            let owners =
                super::common::triage_users(store.list_users().await.map_err(failed(&user))?);
            let view = dozor_ui::IncidentPageView { detail, owners };
            Ok(page(&state, &ctx, dozor_ui::incident_detail(&ctx, &view)))
        }
        .await,
    )
}

/// The alert ids of a form: `id` (repeated: the alert list's checkboxes) and `ids` (typed,
/// separated by commas or spaces).
fn posted_alerts(action: &FormAction<TRIAGE>) -> Vec<i64> {
    let mut ids: Vec<i64> = action.form.all("id").filter_map(positive).collect();
    if let Some(typed) = action.form.get("ids") {
        ids.extend(
            typed
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter_map(positive),
        );
    }
    ids.dedup();
    ids
}

/// `POST /ui/incidents`: `title`, `severity`, `description`, `id` (alerts, repeated). Without
/// a title, one is made from the alerts ("3 alerts on WS-7").
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let back = action.form.return_to("/ui/incidents");
    let alert_ids = posted_alerts(&action);
    let store = user.api.store.as_ref();
    let title = match action.form.get("title") {
        Some(t) => t.to_owned(),
        None if alert_ids.is_empty() => {
            return see_other(&state, &back, "error.incident_no_alerts");
        }
        None => match default_title(store, &alert_ids).await {
            Ok(t) => t,
            Err(e) => return super::common::store_failed(user.lang, e),
        },
    };
    let n = NewIncident {
        title,
        description: action.form.raw("description").to_owned(),
        severity: action
            .form
            .get("severity")
            .and_then(|s| s.parse::<IncidentSeverity>().ok()),
        owner: Some(user.username.clone()),
        alert_ids,
    };
    match ops::incidents::create(store, &user.username, &n).await {
        Ok(made) => see_other(
            &state,
            &format!("/ui/incidents/{}", made.id),
            "flash.incident_created",
        ),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// "Rule title" for one alert, "N alerts on HOST" for several of one host, "N alerts".
async fn default_title(store: &dyn Store, ids: &[i64]) -> Result<String, StoreError> {
    let mut hosts = Vec::new();
    let mut first_title = None;
    for id in ids.iter().take(50) {
        if let Some(a) = store.get_alert(*id).await? {
            first_title.get_or_insert(a.rule_title);
            if let Some(h) = a.host
                && !hosts.contains(&h)
            {
                hosts.push(h);
            }
        }
    }
    Ok(match (ids.len(), hosts.as_slice(), first_title) {
        (1, _, Some(t)) => t,
        (n, [h], _) => format!("{n} alerts on {h}"),
        (n, _, _) => format!("{n} alerts"),
    })
}

/// `POST /ui/incidents/add-alerts`: `incident`, `id` (repeated) or `ids`.
pub(crate) async fn add_alerts(
    State(state): State<Arc<AppState>>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let back = action.form.return_to("/ui/alerts");
    let Some(incident) = action.form.get("incident").and_then(positive) else {
        return see_other(&state, &back, "error.incident_number");
    };
    let ids = posted_alerts(&action);
    if ids.is_empty() {
        return see_other(&state, &back, "error.incident_no_alerts");
    }
    let store = user.api.store.as_ref();
    match ops::incidents::add_alerts(store, &user.username, incident, &ids).await {
        Ok(_) => see_other(
            &state,
            &format!("/ui/incidents/{incident}"),
            "flash.incident_alerts_added",
        ),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// The incident of an incident page form's path (`/ui/incidents/{id}/…`) and its page.
fn incident_page(id: &str) -> Option<(i64, String)> {
    positive(id).map(|id| (id, format!("/ui/incidents/{id}")))
}

/// Back to the incident's page with `flash`, or with what went wrong.
fn finish<T>(
    state: &AppState,
    action: &FormAction<TRIAGE>,
    back: &str,
    flash: &str,
    done: Result<T, OpError>,
) -> Response {
    match done {
        Ok(_) => see_other(state, back, flash),
        Err(e) => action.failed(state, back, e),
    }
}

/// The second id of a nested form path (an alert, task or observable of the incident).
fn nested(what: &str, id: &str) -> Result<i64, OpError> {
    positive(id).ok_or_else(|| OpError::NotFound(format!("{what} {id}")))
}

/// `POST /ui/incidents/{id}/update`: `title`, `status`, `severity`, `owner`, `description`.
pub(crate) async fn update(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let (user, form) = (&action.user, &action.form);
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let patch = IncidentPatch {
        title: form.get("title").map(str::to_owned),
        description: Some(form.raw("description").to_owned()),
        severity: form.get("severity").and_then(|s| s.parse().ok()),
        status: form.get("status").and_then(|s| s.parse().ok()),
        owner: Some(form.raw("owner").to_owned()),
    };
    let done = ops::incidents::update(user.api.store.as_ref(), &user.username, id, &patch).await;
    finish(&state, &action, &back, "flash.incident_updated", done)
}

/// `POST /ui/incidents/{id}/alerts/{alert_id}/remove`.
pub(crate) async fn remove_alert(
    State(state): State<Arc<AppState>>,
    Path((id, alert)): Path<(String, String)>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let done = match nested("alert", &alert) {
        Ok(a) => ops::incidents::remove_alert(user.api.store.as_ref(), &user.username, id, a).await,
        Err(e) => Err(e),
    };
    finish(&state, &action, &back, "flash.incident_alert_removed", done)
}

/// `POST /ui/incidents/{id}/tasks`: `title`.
pub(crate) async fn add_task(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let title = action.form.raw("title");
    let done = ops::incidents::add_task(user.api.store.as_ref(), &user.username, id, title).await;
    finish(&state, &action, &back, "flash.incident_task_added", done)
}

/// `POST /ui/incidents/{id}/tasks/{task_id}`: `done` (`true`/`false`).
pub(crate) async fn set_task(
    State(state): State<Arc<AppState>>,
    Path((id, task)): Path<(String, String)>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let tick = action.form.get("done") == Some("true");
    let store = user.api.store.as_ref();
    let done = match nested("task", &task) {
        Ok(t) => ops::incidents::set_task(store, &user.username, id, t, tick).await,
        Err(e) => Err(e),
    };
    finish(&state, &action, &back, "flash.incident_task_set", done)
}

/// `POST /ui/incidents/{id}/notes`: `body`.
pub(crate) async fn add_note(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let body = action.form.raw("body");
    let done = ops::incidents::add_note(user.api.store.as_ref(), &user.username, id, body).await;
    finish(&state, &action, &back, "flash.incident_note_added", done)
}

/// `POST /ui/incidents/{id}/observables`: `kind`, `value`, `note`.
pub(crate) async fn add_observable(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let (user, form) = (&action.user, &action.form);
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let done = match form
        .get("kind")
        .and_then(|k| k.parse::<ObservableKind>().ok())
    {
        Some(kind) => {
            let o = NewObservable {
                kind,
                value: form.raw("value").to_owned(),
                note: form.raw("note").to_owned(),
            };
            ops::incidents::add_observable(user.api.store.as_ref(), &user.username, id, &o).await
        }
        None => Err(OpError::invalid("incident", "no such observable kind")),
    };
    finish(
        &state,
        &action,
        &back,
        "flash.incident_observable_added",
        done,
    )
}

/// `POST /ui/incidents/{id}/observables/{observable_id}/delete`.
pub(crate) async fn remove_observable(
    State(state): State<Arc<AppState>>,
    Path((id, observable)): Path<(String, String)>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = incident_page(&id) else {
        return not_found(user);
    };
    let store = user.api.store.as_ref();
    let done = match nested("observable", &observable) {
        Ok(o) => ops::incidents::remove_observable(store, &user.username, id, o).await,
        Err(e) => Err(e),
    };
    finish(
        &state,
        &action,
        &back,
        "flash.incident_observable_removed",
        done,
    )
}

#[cfg(test)]
mod tests {
    use super::positive;

    #[test]
    fn incident_numbers() {
        assert_eq!(positive(" #12 "), Some(12));
        assert_eq!(positive("0"), None);
        assert_eq!(positive("-3"), None);
        assert_eq!(positive("x"), None);
    }
}
