//! The dashboard's form actions (POST). Each takes a [`FormAction`] (session, role, CSRF
//! token already checked), calls one operation of [`crate::ops`] (which checks the input,
//! makes the change and writes the audit entry) and answers `303 See Other` back with a
//! flash key, or the page that shows a secret once.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_store::{AlertStatus, Role, now_ms};
use serde_json::json;

use super::common::not_found;
use super::common::{ADMIN, FormAction, READ, TRIAGE, error, page, page_ctx, see_other};
use super::pages::{alert_id, profile_view};
use crate::ops;
use crate::session::WebUser;
use crate::state::AppState;

fn bad_request(user: &WebUser) -> Response {
    error(user.lang, StatusCode::BAD_REQUEST, "error.400")
}

/// `true`/`false` of a field; anything else is a malformed form.
fn flag<const N: u8>(action: &FormAction<N>, name: &str) -> Result<bool, Response> {
    match action.form.get(name) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(bad_request(&action.user)),
    }
}

fn either(r: Result<Response, Response>) -> Response {
    r.unwrap_or_else(|e| e)
}

// ---------------------------------------------------------------- alerts

/// The posted `status`, if it is a known one.
fn posted_status<const N: u8>(action: &FormAction<N>) -> Option<AlertStatus> {
    action.form.get("status").and_then(|s| s.parse().ok())
}

/// The alert a form acts on (its id in the path) and its page to go back to.
fn alert_page(id: &str) -> Option<(i64, String)> {
    alert_id(id).map(|id| (id, format!("/ui/alerts/{id}")))
}

/// `POST /ui/alerts/bulk`: `id` (repeated), `status`, `note`, `return_to`.
pub(crate) async fn bulk_status(
    State(state): State<Arc<AppState>>,
    action: FormAction<TRIAGE>,
) -> Response {
    let back = action.form.return_to("/ui/alerts");
    let Some(to) = posted_status(&action) else {
        return see_other(&state, &back, "error.invalid_transition");
    };
    let ids: Vec<i64> = action.form.all("id").filter_map(alert_id).collect();
    let user = &action.user;
    let store = user.api.store.as_ref();
    match ops::alerts::bulk_set_status(store, &user.username, &ids, to, action.form.get("note"))
        .await
    {
        Ok(done) if done.skipped > 0 => see_other(&state, &back, "error.bulk_partial"),
        Ok(_) => see_other(&state, &back, "flash.bulk_changed"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/alerts/{id}/status`: `status`, `note`.
pub(crate) async fn alert_status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = alert_page(&id) else {
        return not_found(user);
    };
    let Some(to) = posted_status(&action) else {
        return see_other(&state, &back, "error.invalid_transition");
    };
    let store = user.api.store.as_ref();
    match ops::alerts::set_status(store, &user.username, id, to, action.form.get("note")).await {
        Ok(_) => see_other(&state, &back, "flash.status_changed"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/alerts/{id}/assignee`: `assignee` (empty unassigns) or `assignee_me`.
pub(crate) async fn alert_assignee(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = alert_page(&id) else {
        return not_found(user);
    };
    let assignee = if action.form.get("assignee_me").is_some() {
        Some(user.username.as_str())
    } else {
        action.form.get("assignee")
    };
    let store = user.api.store.as_ref();
    match ops::alerts::assign(store, &user.username, id, assignee).await {
        Ok(_) => see_other(&state, &back, "flash.assigned"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/alerts/{id}/exception`: `cond` (repeated, `field=value`), `reason`, `days`
/// (0: never expires). The exception is for the alert's rule.
pub(crate) async fn alert_exception(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = alert_page(&id) else {
        return not_found(user);
    };
    let store = user.api.store.as_ref();
    let alert = match store.get_alert(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return not_found(user),
        Err(e) => return super::common::store_failed(user.lang, e),
    };
    let conditions: Vec<dozor_store::ExceptionCondition> = action
        .form
        .all("cond")
        .filter_map(|c| c.split_once('='))
        .map(|(field, value)| dozor_store::ExceptionCondition {
            field: field.to_owned(),
            value: value.to_owned(),
        })
        .collect();
    if conditions.is_empty() {
        return see_other(&state, &back, "error.exception_no_condition");
    }
    let days: i64 = action
        .form
        .get("days")
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let exception = dozor_store::NewException {
        rule_id: alert.rule_id,
        conditions,
        reason: action.form.raw("reason").to_owned(),
        expires_at: (days > 0).then(|| now_ms() + days.min(3650) * 86_400_000),
    };
    match ops::exceptions::add(store, &user.username, &exception).await {
        Ok(_) => see_other(&state, "/ui/exceptions", "flash.exception_added"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/exceptions/{id}/delete`.
pub(crate) async fn exception_delete(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return not_found(user);
    };
    match ops::exceptions::remove(user.api.store.as_ref(), &user.username, id).await {
        Ok(_) => see_other(&state, "/ui/exceptions", "flash.exception_removed"),
        Err(e) => action.failed(&state, "/ui/exceptions", e),
    }
}

/// `POST /ui/alerts/{id}/comments`: `text`.
pub(crate) async fn alert_comment(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some((id, back)) = alert_page(&id) else {
        return not_found(user);
    };
    let store = user.api.store.as_ref();
    match ops::alerts::comment(store, &user.username, id, action.form.raw("text")).await {
        Ok(_) => see_other(&state, &back, "flash.comment_added"),
        Err(e) => action.failed(&state, &back, e),
    }
}

// ---------------------------------------------------------------- rules

/// `POST /ui/rules/{id}/enabled` (admins): `enabled` (`true`/`false`), `return_to`.
pub(crate) async fn rule_enabled(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<ADMIN>,
) -> Response {
    let enabled = match flag(&action, "enabled") {
        Ok(e) => e,
        Err(r) => return r,
    };
    let back = action
        .form
        .return_to(&format!("/ui/rules/{}", dozor_ui::url::segment(&id)));
    let user = &action.user;
    match ops::rules::set_enabled(&user.api, &user.username, &id, enabled).await {
        Ok(_) if enabled => see_other(&state, &back, "flash.rule_enabled"),
        Ok(_) => see_other(&state, &back, "flash.rule_disabled"),
        Err(e) => action.failed(&state, &back, e),
    }
}

// ---------------------------------------------------------------- agents

/// `POST /ui/agents/{id}/commands` (analysts, admins): `path`, `recursive` (checkbox, `1`).
/// Queues a `scan_path` command through the API's own checks and audit
/// (`crate::api::commands::request`).
pub(crate) async fn agent_scan(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let back = format!("/ui/agents/{}", dozor_ui::url::segment(&id));
    let Some(path) = action.form.get("path") else {
        return see_other(&state, &back, "error.scan_path");
    };
    let request = json!({
        "kind": "scan_path",
        "args": {"path": path, "recursive": action.form.get("recursive").is_some()},
    });
    match crate::api::commands::request(&user.api, &user.username, &id, &request, true).await {
        Ok(_) => see_other(&state, &back, "flash.scan_requested"),
        Err(p) => match p.slug() {
            "not-found" => not_found(user),
            "invalid-body" => see_other(&state, &back, "error.scan_path"),
            "agent-revoked" => see_other(&state, &back, "error.agent_revoked"),
            "too-many-commands" => see_other(&state, &back, "error.too_many_commands"),
            // the command is queued but the audit log failed: say so, as the API does
            "audit-failed" => error(user.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed"),
            _ => see_other(&state, &back, "error.failed"),
        },
    }
}

// ---------------------------------------------------------------- users (admins)

fn operator_role(text: Option<&str>) -> Option<Role> {
    text.and_then(|r| ops::users::operator_role(r).ok())
}

/// The users page with a password shown once.
async fn users_with_secret(
    user: &WebUser,
    state: &AppState,
    (uri, headers): (&Uri, &HeaderMap),
    name: String,
    secret: String,
) -> Response {
    let mut ctx = page_ctx(user, uri, headers);
    ctx.path_and_query = "/ui/users".to_owned();
    let users = match user.api.store.list_users().await {
        Ok(u) => u,
        Err(e) => return super::common::store_failed(user.lang, e),
    };
    let view = dozor_ui::UsersView {
        users,
        new_password: Some(dozor_ui::OneTimeSecret { name, secret }),
    };
    page(state, &ctx, dozor_ui::users(&ctx, &view))
}

/// `POST /ui/users` (admins): `username`, `role`, `password` (empty: one is generated and
/// shown once).
pub(crate) async fn user_create(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    action: FormAction<ADMIN>,
) -> Response {
    let back = "/ui/users";
    let Some(role) = operator_role(action.form.get("role")) else {
        return see_other(&state, back, "error.failed");
    };
    let user = &action.user;
    let typed = action.form.raw("password");
    let password = (!typed.is_empty()).then(|| typed.to_owned());
    let username = action.form.get("username").unwrap_or("");
    let store = user.api.store.as_ref();
    match ops::users::create(store, &user.username, username, role, password, None).await {
        Ok((created, Some(generated))) => {
            users_with_secret(user, &state, (&uri, &headers), created.username, generated).await
        }
        Ok((_, None)) => see_other(&state, back, "flash.user_created"),
        Err(e) => action.failed(&state, back, e),
    }
}

/// `POST /ui/users/{id}/role` (admins): `role`.
pub(crate) async fn user_role(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<ADMIN>,
) -> Response {
    let back = "/ui/users";
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return not_found(user);
    };
    let Some(role) = operator_role(action.form.get("role")) else {
        return see_other(&state, back, "error.failed");
    };
    let store = user.api.store.as_ref();
    match ops::users::set_role(store, &user.username, Some(user.id), id, role).await {
        Ok(_) => see_other(&state, back, "flash.role_changed"),
        Err(e) => action.failed(&state, back, e),
    }
}

/// `POST /ui/users/{id}/disabled` (admins): `disabled` (`true`/`false`).
pub(crate) async fn user_disabled(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<ADMIN>,
) -> Response {
    let back = "/ui/users";
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return not_found(user);
    };
    let disabled = match flag(&action, "disabled") {
        Ok(d) => d,
        Err(r) => return r,
    };
    let store = user.api.store.as_ref();
    match ops::users::set_disabled(store, &user.username, Some(user.id), id, disabled).await {
        Ok(_) if disabled => see_other(&state, back, "flash.user_disabled"),
        Ok(_) => see_other(&state, back, "flash.user_enabled"),
        Err(e) => action.failed(&state, back, e),
    }
}

/// `POST /ui/users/{id}/password` (admins): sets a generated password, shown once; the
/// user's sessions end.
pub(crate) async fn user_password(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    action: FormAction<ADMIN>,
) -> Response {
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return not_found(user);
    };
    let store = user.api.store.as_ref();
    match ops::users::reset_password(store, &user.username, id, None).await {
        // one's own sessions ended with it
        Ok((target, _)) if target.id == user.id => {
            see_other(&state, "/login", "flash.password_reset")
        }
        Ok((target, Some(generated))) => {
            users_with_secret(user, &state, (&uri, &headers), target.username, generated).await
        }
        Ok((_, None)) => see_other(&state, "/ui/users", "flash.password_reset"),
        Err(e) => action.failed(&state, "/ui/users", e),
    }
}

// ---------------------------------------------------------------- profile (everyone)

/// `POST /ui/profile/language`: `language` (`auto`, `en`, `ru`), `return_to`.
pub(crate) async fn profile_language(
    State(state): State<Arc<AppState>>,
    action: FormAction<READ>,
) -> Response {
    let user = &action.user;
    let language = match action.form.get("language") {
        Some("auto") | None => None,
        Some(code) => match dozor_ui::Lang::from_code(code) {
            Some(l) => Some(l.code()),
            None => return bad_request(user),
        },
    };
    let back = action.form.return_to("/ui/profile");
    let store = user.api.store.as_ref();
    let who = (user.id, user.username.as_str());
    match ops::users::set_language(store, who, user.language.as_deref(), language).await {
        Ok(_) => see_other(&state, &back, "flash.language_saved"),
        Err(e) => action.failed(&state, &back, e),
    }
}

/// `POST /ui/profile/password`: `current`, `new`, `confirm`. Every session of the user ends
/// (this one too): the answer goes to the sign-in page.
pub(crate) async fn profile_password(
    State(state): State<Arc<AppState>>,
    action: FormAction<READ>,
) -> Response {
    let back = "/ui/profile";
    let form = &action.form;
    if form.raw("new") != form.raw("confirm") {
        return see_other(&state, back, "error.password_mismatch");
    }
    let user = &action.user;
    let (current, new) = (form.raw("current").to_owned(), form.raw("new").to_owned());
    let store = user.api.store.as_ref();
    match ops::users::change_own_password(store, &user.username, current, new).await {
        Ok(_) => see_other(&state, "/login", "flash.password_changed"),
        Err(e) => action.failed(&state, back, e),
    }
}

/// `POST /ui/profile/tokens`: `name`, `role` (at most the user's), `expires` (`30`, `90`,
/// `365` days or `never`). The secret is shown once, on the page this answers with.
pub(crate) async fn token_create(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    action: FormAction<READ>,
) -> Response {
    let back = "/ui/profile";
    let user = &action.user;
    let Some(role) = operator_role(action.form.get("role")) else {
        return error(user.lang, StatusCode::FORBIDDEN, "error.forbidden");
    };
    let expires_at = match action.form.get("expires") {
        Some("never") => None,
        Some(days) => match days.parse::<i64>() {
            Ok(d @ 1..=3650) => Some(now_ms() + d * 86_400_000),
            _ => return bad_request(user),
        },
        None => Some(now_ms() + 90 * 86_400_000),
    };
    let owner = (
        user.id,
        user.username.as_str(),
        super::common::store_role(user.role),
    );
    let name = action.form.get("name").unwrap_or("");
    let store = user.api.store.as_ref();
    let created = match ops::tokens::create_personal(store, owner, name, role, expires_at).await {
        Ok(c) => c,
        Err(e) => return action.failed(&state, back, e),
    };
    let mut ctx = page_ctx(user, &uri, &headers);
    ctx.path_and_query = back.to_owned();
    let secret = dozor_ui::OneTimeSecret {
        name: created.info.name,
        secret: created.secret,
    };
    either(
        profile_view(user, Some(secret))
            .await
            .map(|view| page(&state, &ctx, dozor_ui::profile(&ctx, &view))),
    )
}

/// `POST /ui/profile/tokens/{id}/revoke`: one of the user's own tokens.
pub(crate) async fn token_revoke(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<READ>,
) -> Response {
    let back = "/ui/profile";
    let user = &action.user;
    let Ok(id) = id.parse::<i64>() else {
        return not_found(user);
    };
    let store = user.api.store.as_ref();
    match ops::tokens::revoke_own(store, (user.id, &user.username), id).await {
        Ok(()) => see_other(&state, back, "flash.token_revoked"),
        // another user's token or none: say so on the profile page
        Err(ops::OpError::NotFound(_)) => see_other(&state, back, "error.not_found"),
        Err(e) => action.failed(&state, back, e),
    }
}
