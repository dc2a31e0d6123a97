//! The dashboard's form actions (POST): role check, CSRF check, the change, an audit entry,
//! `303 See Other` back with a flash key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_store::{AlertStatus, NewToken, NewUser, Role, StoreError, now_ms};
use serde_json::json;

use super::common::{ADMIN, Posted, READ, TRIAGE, error, page_ctx, require, see_other};
use super::pages::{alert_id, profile_view};
use crate::session::WebUser;
use crate::state::AppState;

/// Most alerts one bulk change takes.
const MAX_BULK: usize = 1000;
/// Longest note or comment, bytes (as the API).
const MAX_NOTE: usize = 64 * 1024;
/// Longest assignee, bytes (as the API).
const MAX_ASSIGNEE: usize = 200;
/// Longest token name, characters.
const MAX_TOKEN_NAME: usize = 200;

type Done = Result<Response, Response>;

fn done(r: Done) -> Response {
    r.unwrap_or_else(|e| e)
}

fn failed(user: &WebUser) -> impl Fn(StoreError) -> Response + '_ {
    move |e| super::common::store_failed(user.lang, e)
}

/// The change is made; if the audit log can't take it, say so (the server log has the entry).
async fn audit(
    user: &WebUser,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> Result<(), Response> {
    crate::api::audit(&user.api, &user.username, action, target, details)
        .await
        .map_err(|_| error(user.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed"))
}

fn not_found(user: &WebUser) -> Response {
    error(user.lang, StatusCode::NOT_FOUND, "error.not_found")
}

// ---------------------------------------------------------------- alerts

/// `POST /ui/alerts/bulk`: `id` (repeated), `status`, `note`, `return_to`.
pub(crate) async fn bulk_status(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Response {
    done(async {
        require(&user, TRIAGE)?;
        let form = Posted::check(&user, &body)?;
        let back = form.return_to("/ui/alerts");
        let Some(to) = form.get("status").and_then(|s| s.parse::<AlertStatus>().ok()) else {
            return Ok(see_other(&state, &back, "error.invalid_transition"));
        };
        let mut ids: Vec<i64> = form.all("id").filter_map(alert_id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(see_other(&state, &back, "error.bulk_none"));
        }
        ids.truncate(MAX_BULK);
        let note = form.get("note").filter(|n| n.len() <= MAX_NOTE);
        let store = user.api.store.as_ref();
        let mut skipped = 0;
        for id in ids {
            let Some(before) = store.get_alert(id).await.map_err(failed(&user))? else {
                skipped += 1;
                continue;
            };
            if !before.status.can_change_to(to) {
                skipped += 1;
                continue;
            }
            match store.set_alert_status(id, to, &user.username, note).await {
                Ok(alert) => {
                    audit(
                        &user,
                        "alert.status",
                        format!("alert:{id}"),
                        json!({"from": before.status, "to": alert.status, "comment": note, "bulk": true}),
                    )
                    .await?;
                }
                // changed by someone else meanwhile
                Err(StoreError::InvalidTransition { .. } | StoreError::NotFound(_)) => skipped += 1,
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            }
        }
        Ok(see_other(
            &state,
            &back,
            if skipped > 0 {
                "error.bulk_partial"
            } else {
                "flash.bulk_changed"
            },
        ))
    }
    .await)
}

/// `POST /ui/alerts/{id}/status`: `status`, `note`.
pub(crate) async fn alert_status(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, TRIAGE)?;
            let form = Posted::check(&user, &body)?;
            let id = alert_id(&id).ok_or_else(|| not_found(&user))?;
            let back = format!("/ui/alerts/{id}");
            let store = user.api.store.as_ref();
            let before = store
                .get_alert(id)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            let Some(to) = form
                .get("status")
                .and_then(|s| s.parse::<AlertStatus>().ok())
            else {
                return Ok(see_other(&state, &back, "error.invalid_transition"));
            };
            let note = form.get("note");
            if note.is_some_and(|n| n.len() > MAX_NOTE) {
                return Ok(see_other(&state, &back, "error.failed"));
            }
            match store.set_alert_status(id, to, &user.username, note).await {
                Ok(alert) => {
                    audit(
                        &user,
                        "alert.status",
                        format!("alert:{id}"),
                        json!({"from": before.status, "to": alert.status, "comment": note}),
                    )
                    .await?;
                    Ok(see_other(&state, &back, "flash.status_changed"))
                }
                Err(StoreError::InvalidTransition { .. }) => {
                    Ok(see_other(&state, &back, "error.invalid_transition"))
                }
                Err(StoreError::NotFound(_)) => Err(not_found(&user)),
                Err(e) => Err(super::common::store_failed(user.lang, e)),
            }
        }
        .await,
    )
}

/// `POST /ui/alerts/{id}/assignee`: `assignee` (empty unassigns) or `assignee_me`.
pub(crate) async fn alert_assignee(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, TRIAGE)?;
            let form = Posted::check(&user, &body)?;
            let id = alert_id(&id).ok_or_else(|| not_found(&user))?;
            let back = format!("/ui/alerts/{id}");
            let assignee = if form.get("assignee_me").is_some() {
                Some(user.username.as_str())
            } else {
                form.get("assignee")
            };
            if assignee.is_some_and(|a| a.len() > MAX_ASSIGNEE || a.chars().any(char::is_control)) {
                return Ok(see_other(&state, &back, "error.failed"));
            }
            let store = user.api.store.as_ref();
            let before = store
                .get_alert(id)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            let alert = store
                .assign_alert(id, assignee)
                .await
                .map_err(failed(&user))?;
            audit(
                &user,
                "alert.assign",
                format!("alert:{id}"),
                json!({"from": before.assignee, "to": alert.assignee}),
            )
            .await?;
            Ok(see_other(&state, &back, "flash.assigned"))
        }
        .await,
    )
}

/// `POST /ui/alerts/{id}/comments`: `text`.
pub(crate) async fn alert_comment(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, TRIAGE)?;
            let form = Posted::check(&user, &body)?;
            let id = alert_id(&id).ok_or_else(|| not_found(&user))?;
            let back = format!("/ui/alerts/{id}");
            let text = form.raw("text");
            if text.trim().is_empty() {
                return Ok(see_other(&state, &back, "error.comment_empty"));
            }
            if text.len() > MAX_NOTE {
                return Ok(see_other(&state, &back, "error.failed"));
            }
            let comment = match user.api.store.add_comment(id, &user.username, text).await {
                Ok(c) => c,
                Err(StoreError::NotFound(_)) => return Err(not_found(&user)),
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            };
            audit(
                &user,
                "alert.comment",
                format!("alert:{id}"),
                json!({"comment_id": comment.id}),
            )
            .await?;
            Ok(see_other(&state, &back, "flash.comment_added"))
        }
        .await,
    )
}

// ---------------------------------------------------------------- rules

/// `POST /ui/rules/{id}/enabled` (admins): `enabled` (`true`/`false`), `return_to`.
pub(crate) async fn rule_enabled(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            let form = Posted::check(&user, &body)?;
            let info = user
                .api
                .rules
                .list()
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| not_found(&user))?;
            let enabled = match form.get("enabled") {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(error(user.lang, StatusCode::BAD_REQUEST, "error.400")),
            };
            let back = form.return_to(&format!("/ui/rules/{}", dozor_ui::url::segment(&id)));
            let store = user.api.store.as_ref();
            let before = store.rule_state(&id).await.map_err(failed(&user))?;
            store
                .set_rule_enabled(&id, enabled)
                .await
                .map_err(failed(&user))?;
            audit(
                &user,
                if enabled {
                    "rule.enable"
                } else {
                    "rule.disable"
                },
                format!("rule:{id}"),
                json!({
                    "enabled": enabled,
                    "was_enabled": before.is_none_or(|s| s.enabled),
                    "title": info.title,
                }),
            )
            .await?;
            Ok(see_other(
                &state,
                &back,
                if enabled {
                    "flash.rule_enabled"
                } else {
                    "flash.rule_disabled"
                },
            ))
        }
        .await,
    )
}

// ---------------------------------------------------------------- agents

/// `POST /ui/agents/{id}/commands` (analysts, admins): `path`, `recursive` (checkbox, `1`).
/// Queues a `scan_path` command through the API's own checks and audit
/// (`crate::api::commands::request`).
pub(crate) async fn agent_scan(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, TRIAGE)?;
            let form = Posted::check(&user, &body)?;
            let back = format!("/ui/agents/{}", dozor_ui::url::segment(&id));
            let Some(path) = form.get("path") else {
                return Ok(see_other(&state, &back, "error.scan_path"));
            };
            let request = json!({
                "kind": "scan_path",
                "args": {"path": path, "recursive": form.get("recursive").is_some()},
            });
            match crate::api::commands::request(&user.api, &user.username, &id, &request).await {
                Ok(_) => Ok(see_other(&state, &back, "flash.scan_requested")),
                Err(p) => match p.slug() {
                    "not-found" => Err(not_found(&user)),
                    "invalid-body" => Ok(see_other(&state, &back, "error.scan_path")),
                    "agent-revoked" => Ok(see_other(&state, &back, "error.agent_revoked")),
                    "too-many-commands" => Ok(see_other(&state, &back, "error.too_many_commands")),
                    // the command is queued but the audit log failed: say so, as the API does
                    "audit-failed" => Err(error(
                        user.lang,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "error.failed",
                    )),
                    _ => Ok(see_other(&state, &back, "error.failed")),
                },
            }
        }
        .await,
    )
}

// ---------------------------------------------------------------- users (admins)

fn operator_role(text: Option<&str>) -> Option<Role> {
    text.and_then(|r| r.parse::<Role>().ok())
        .filter(|r| r.is_operator_role())
}

async fn hash(password: String) -> Result<String, crate::password::PasswordError> {
    tokio::task::spawn_blocking(move || crate::password::hash(&password))
        .await
        .unwrap_or(Err(crate::password::PasswordError::TooShort))
}

/// The users page with a password shown once.
async fn users_with_secret(
    user: &WebUser,
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    name: String,
    secret: String,
) -> Done {
    let mut ctx = page_ctx(user, uri, headers);
    ctx.path_and_query = "/ui/users".to_owned();
    let view = dozor_ui::UsersView {
        users: user.api.store.list_users().await.map_err(failed(user))?,
        new_password: Some(dozor_ui::OneTimeSecret { name, secret }),
    };
    Ok(super::common::page(
        state,
        &ctx,
        dozor_ui::users(&ctx, &view),
    ))
}

/// `POST /ui/users` (admins): `username`, `role`, `password` (empty: one is generated and
/// shown once).
pub(crate) async fn user_create(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            let form = Posted::check(&user, &body)?;
            let back = "/ui/users";
            let Some(role) = operator_role(form.get("role")) else {
                return Ok(see_other(&state, back, "error.failed"));
            };
            let username = form.get("username").unwrap_or("").to_owned();
            let typed = form.raw("password");
            let generated = typed.is_empty();
            let password = if generated {
                crate::password::generate()
            } else {
                typed.to_owned()
            };
            let Ok(password_hash) = hash(password.clone()).await else {
                return Ok(see_other(&state, back, "error.password_weak"));
            };
            let created = match user
                .api
                .store
                .create_user(&NewUser {
                    username,
                    password_hash,
                    role,
                    language: None,
                    created_by: user.username.clone(),
                })
                .await
            {
                Ok(u) => u,
                Err(StoreError::Conflict(_)) => {
                    return Ok(see_other(&state, back, "error.username_taken"));
                }
                Err(StoreError::InvalidArgument(_)) => {
                    return Ok(see_other(&state, back, "error.username_invalid"));
                }
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            };
            audit(
                &user,
                "user.create",
                format!("user:{}", created.username),
                json!({ "role": role.as_str() }),
            )
            .await?;
            if generated {
                users_with_secret(&user, &state, &uri, &headers, created.username, password).await
            } else {
                Ok(see_other(&state, back, "flash.user_created"))
            }
        }
        .await,
    )
}

/// The target of a user action: an existing user other than oneself.
async fn other_user(
    user: &WebUser,
    id: &str,
) -> Result<Result<dozor_store::User, &'static str>, Response> {
    let id: i64 = id.parse().map_err(|_| not_found(user))?;
    let target = user
        .api
        .store
        .get_user(id)
        .await
        .map_err(failed(user))?
        .ok_or_else(|| not_found(user))?;
    Ok(if target.id == user.id {
        Err("error.self")
    } else {
        Ok(target)
    })
}

/// `POST /ui/users/{id}/role` (admins): `role`.
pub(crate) async fn user_role(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            let form = Posted::check(&user, &body)?;
            let back = "/ui/users";
            let target = match other_user(&user, &id).await? {
                Ok(t) => t,
                Err(key) => return Ok(see_other(&state, back, key)),
            };
            let Some(role) = operator_role(form.get("role")) else {
                return Ok(see_other(&state, back, "error.failed"));
            };
            match user.api.store.set_user_role(target.id, role).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(not_found(&user)),
                Err(StoreError::InvalidArgument(_)) => {
                    return Ok(see_other(&state, back, "error.last_admin"));
                }
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            }
            audit(
                &user,
                "user.role",
                format!("user:{}", target.username),
                json!({ "from": target.role.as_str(), "to": role.as_str() }),
            )
            .await?;
            Ok(see_other(&state, back, "flash.role_changed"))
        }
        .await,
    )
}

/// `POST /ui/users/{id}/disabled` (admins): `disabled` (`true`/`false`).
pub(crate) async fn user_disabled(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            let form = Posted::check(&user, &body)?;
            let back = "/ui/users";
            let target = match other_user(&user, &id).await? {
                Ok(t) => t,
                Err(key) => return Ok(see_other(&state, back, key)),
            };
            let disabled = match form.get("disabled") {
                Some("true") => true,
                Some("false") => false,
                _ => return Err(error(user.lang, StatusCode::BAD_REQUEST, "error.400")),
            };
            match user.api.store.set_user_disabled(target.id, disabled).await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(not_found(&user)),
                Err(StoreError::InvalidArgument(_)) => {
                    return Ok(see_other(&state, back, "error.last_admin"));
                }
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            }
            audit(
                &user,
                if disabled {
                    "user.disable"
                } else {
                    "user.enable"
                },
                format!("user:{}", target.username),
                json!({}),
            )
            .await?;
            Ok(see_other(
                &state,
                back,
                if disabled {
                    "flash.user_disabled"
                } else {
                    "flash.user_enabled"
                },
            ))
        }
        .await,
    )
}

/// `POST /ui/users/{id}/password` (admins): sets a generated password, shown once; the
/// user's sessions end.
pub(crate) async fn user_password(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            Posted::check(&user, &body)?;
            let id: i64 = id.parse().map_err(|_| not_found(&user))?;
            let target = user
                .api
                .store
                .get_user(id)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            let password = crate::password::generate();
            let Ok(password_hash) = hash(password.clone()).await else {
                return Err(error(
                    user.lang,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "error.failed",
                ));
            };
            user.api
                .store
                .set_user_password(target.id, &password_hash)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            audit(
                &user,
                "user.password",
                format!("user:{}", target.username),
                json!({}),
            )
            .await?;
            if target.id == user.id {
                // one's own sessions ended with it
                return Ok(see_other(&state, "/login", "flash.password_reset"));
            }
            users_with_secret(&user, &state, &uri, &headers, target.username, password).await
        }
        .await,
    )
}

// ---------------------------------------------------------------- profile (everyone)

/// `POST /ui/profile/language`: `language` (`auto`, `en`, `ru`), `return_to`.
pub(crate) async fn profile_language(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let form = Posted::check(&user, &body)?;
            let language = match form.get("language") {
                Some("auto") | None => None,
                Some(code) => match dozor_ui::Lang::from_code(code) {
                    Some(l) => Some(l.code()),
                    None => return Err(error(user.lang, StatusCode::BAD_REQUEST, "error.400")),
                },
            };
            user.api
                .store
                .set_user_language(user.id, language)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            audit(
                &user,
                "user.language",
                format!("user:{}", user.username),
                json!({ "from": user.language, "to": language }),
            )
            .await?;
            Ok(see_other(
                &state,
                &form.return_to("/ui/profile"),
                "flash.language_saved",
            ))
        }
        .await,
    )
}

/// `POST /ui/profile/password`: `current`, `new`, `confirm`. Every session of the user ends
/// (this one too): the answer goes to the sign-in page.
pub(crate) async fn profile_password(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let form = Posted::check(&user, &body)?;
            let back = "/ui/profile";
            let (current, new) = (form.raw("current").to_owned(), form.raw("new").to_owned());
            if new != form.raw("confirm") {
                return Ok(see_other(&state, back, "error.password_mismatch"));
            }
            let Some((_, phc)) = user
                .api
                .store
                .find_user(&user.username)
                .await
                .map_err(failed(&user))?
            else {
                return Err(not_found(&user));
            };
            let matches =
                tokio::task::spawn_blocking(move || crate::password::verify(&current, &phc))
                    .await
                    .unwrap_or(false);
            if !matches {
                return Ok(see_other(&state, back, "error.password_wrong"));
            }
            let Ok(password_hash) = hash(new).await else {
                return Ok(see_other(&state, back, "error.password_weak"));
            };
            user.api
                .store
                .set_user_password(user.id, &password_hash)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| not_found(&user))?;
            audit(
                &user,
                "user.password",
                format!("user:{}", user.username),
                json!({ "own": true }),
            )
            .await?;
            Ok(see_other(&state, "/login", "flash.password_changed"))
        }
        .await,
    )
}

/// `POST /ui/profile/tokens`: `name`, `role` (at most the user's), `expires` (`30`, `90`,
/// `365` days or `never`). The secret is shown once, on the page this answers with.
pub(crate) async fn token_create(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let form = Posted::check(&user, &body)?;
            let back = "/ui/profile";
            let name = form.get("name").unwrap_or("");
            if name.is_empty()
                || name.chars().count() > MAX_TOKEN_NAME
                || name.chars().any(char::is_control)
            {
                return Ok(see_other(&state, back, "error.token_name"));
            }
            let own = super::common::store_role(user.role);
            let Some(role) =
                operator_role(form.get("role")).filter(|r| r.privilege() <= own.privilege())
            else {
                return Err(error(user.lang, StatusCode::FORBIDDEN, "error.forbidden"));
            };
            let expires_at = match form.get("expires") {
                Some("never") => None,
                Some(days) => match days.parse::<i64>() {
                    Ok(d @ 1..=3650) => Some(now_ms() + d * 86_400_000),
                    _ => return Err(error(user.lang, StatusCode::BAD_REQUEST, "error.400")),
                },
                None => Some(now_ms() + 90 * 86_400_000),
            };
            let created = match user
                .api
                .store
                .create_token(&NewToken {
                    name: name.to_owned(),
                    role,
                    expires_at,
                    owner: Some(user.id),
                })
                .await
            {
                Ok(c) => c,
                Err(StoreError::InvalidArgument(_)) => {
                    return Ok(see_other(&state, back, "error.token_name"));
                }
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            };
            audit(
                &user,
                "token.create",
                format!("token:{}", created.info.id),
                json!({"name": created.info.name, "role": role.as_str(), "expires_at": expires_at}),
            )
            .await?;
            let mut ctx = page_ctx(&user, &uri, &headers);
            ctx.path_and_query = back.to_owned();
            let view = profile_view(
                &user,
                Some(dozor_ui::OneTimeSecret {
                    name: created.info.name,
                    secret: created.secret,
                }),
            )
            .await?;
            Ok(super::common::page(
                &state,
                &ctx,
                dozor_ui::profile(&ctx, &view),
            ))
        }
        .await,
    )
}

/// `POST /ui/profile/tokens/{id}/revoke`: one of the user's own tokens.
pub(crate) async fn token_revoke(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            Posted::check(&user, &body)?;
            let id: i64 = id.parse().map_err(|_| not_found(&user))?;
            if !user
                .api
                .store
                .revoke_user_token(user.id, id)
                .await
                .map_err(failed(&user))?
            {
                return Ok(see_other(&state, "/ui/profile", "error.not_found"));
            }
            audit(&user, "token.revoke", format!("token:{id}"), json!({})).await?;
            Ok(see_other(&state, "/ui/profile", "flash.token_revoked"))
        }
        .await,
    )
}
