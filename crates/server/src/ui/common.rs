//! What the dashboard's pages and actions share: the page context, HTML and redirect
//! answers with flash messages, error pages, role checks and posted forms.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use dozor_store::{StoreError, now_ms};

use crate::auth::Role;
use crate::ops::OpError;
use crate::session::WebUser;
use crate::state::AppState;

pub(crate) use crate::auth::{ADMIN, READ, TRIAGE};

/// Most alerts of the last 24 h the overview reads for its chart and top rules.
pub(crate) const OVERVIEW_ALERT_SCAN: usize = 5_000;
/// The flash message cookie (a catalog key, shown once on the next page).
const FLASH_COOKIE: &str = "dozor_flash";

/// The store's role of a session's user (pages show forms by it).
pub(crate) fn store_role(role: Role) -> dozor_store::Role {
    role.operator().unwrap_or(dozor_store::Role::Viewer)
}

/// The flash key of the request's cookie, if it is one the dashboard knows.
fn flash_of(headers: &HeaderMap) -> Option<String> {
    crate::session::cookie(headers, FLASH_COOKIE)
        .filter(|k| dozor_ui::FLASH_KEYS.contains(k))
        .map(str::to_owned)
}

/// The common context of a page for this user and request.
pub(crate) fn page_ctx(user: &WebUser, uri: &Uri, headers: &HeaderMap) -> dozor_ui::PageCtx {
    dozor_ui::PageCtx {
        lang: user.lang,
        username: user.username.clone(),
        role: store_role(user.role),
        csrf_token: user.csrf.clone(),
        path_and_query: uri
            .path_and_query()
            .map_or("/ui/", |p| p.as_str())
            .to_owned(),
        flash: flash_of(headers),
        now: now_ms(),
    }
}

fn flash_cookie(key: &str, max_age: u32, secure: bool) -> HeaderValue {
    crate::session::set_cookie_at(
        "/ui",
        FLASH_COOKIE,
        key,
        std::time::Duration::from_secs(u64::from(max_age)),
        secure,
    )
}

/// An HTML page; clears the flash cookie the page has just shown.
pub(crate) fn html(
    state: &AppState,
    status: StatusCode,
    ctx_flash: bool,
    body: String,
) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    if ctx_flash {
        response
            .headers_mut()
            .append(header::SET_COOKIE, flash_cookie("", 0, state.tls));
    }
    response
}

/// A signed-in page: status 200, the flash cookie cleared if it was shown.
pub(crate) fn page(state: &AppState, ctx: &dozor_ui::PageCtx, body: String) -> Response {
    html(state, StatusCode::OK, ctx.flash.is_some(), body)
}

/// `303 See Other` to a local page with a flash message.
pub(crate) fn see_other(state: &AppState, to: &str, flash: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, flash_cookie(flash, 60, state.tls));
    response
}

/// An error page in the user's language (`message`: a catalog key or plain text).
pub(crate) fn error(lang: dozor_ui::Lang, status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        dozor_ui::error_page(lang, status.as_u16(), message),
    )
        .into_response()
}

/// 403 for a role below the page's or action's right.
pub(crate) fn require(user: &WebUser, need: u8) -> Result<(), Response> {
    if user.may(need) {
        Ok(())
    } else {
        Err(error(user.lang, StatusCode::FORBIDDEN, "error.forbidden"))
    }
}

/// A store failure: logged, answered with a page that says so without details.
pub(crate) fn store_failed(lang: dozor_ui::Lang, e: dozor_store::StoreError) -> Response {
    tracing::error!("ui: store: {e}");
    error(lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed")
}

/// Where to go back after a POST: a `return_to` under `/ui/`, else `fallback`.
pub(crate) fn back_to(return_to: Option<&str>, fallback: &str) -> String {
    match return_to {
        Some(to)
            if (to == "/ui" || to.starts_with("/ui/"))
                && !to.contains("//")
                && !to.contains('\\')
                && !to.chars().any(char::is_control) =>
        {
            to.to_owned()
        }
        _ => fallback.to_owned(),
    }
}

/// The fields of an `application/x-www-form-urlencoded` body, in order (repeats kept).
pub(crate) fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &[u8]) -> String {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < text.len() => {
                    let hex = std::str::from_utf8(&text[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (decode(&pair[..eq]), decode(&pair[eq + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// A posted form: its fields, with the CSRF token already checked.
pub(crate) struct Posted(Vec<(String, String)>);

impl Posted {
    /// Reads the body and checks the session's CSRF token (`csrf` field).
    pub(crate) fn check(user: &WebUser, body: &[u8]) -> Result<Posted, Response> {
        let fields = form_fields(body);
        let token = fields
            .iter()
            .find(|(k, _)| k == dozor_ui::CSRF_FIELD)
            .map(|(_, v)| v.as_str());
        if user.check_csrf(token).is_err() {
            return Err(error(user.lang, StatusCode::FORBIDDEN, "error.csrf"));
        }
        Ok(Posted(fields))
    }

    /// A single field, trimmed; empty counts as absent.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A field as sent (not trimmed; absent = empty).
    pub(crate) fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field.
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    pub(crate) fn return_to(&self, fallback: &str) -> String {
        back_to(self.get(dozor_ui::RETURN_FIELD), fallback)
    }
}

/// A dashboard form POST: the signed-in user, who has the right `NEED`, and the posted form
/// with the session's CSRF token checked — in that order, so a request without a session is
/// sent to sign in, a role below `NEED` gets 403 and a forged form 403, before anything else
/// is looked at. A handler that takes it is its change and nothing else.
pub(crate) struct FormAction<const NEED: u8> {
    pub user: WebUser,
    pub form: Posted,
}

impl<const NEED: u8> FromRequest<Arc<AppState>> for FormAction<NEED> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let user = WebUser::from_request_parts(&mut parts, state).await?;
        require(&user, NEED)?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = Posted::check(&user, &body)?;
        Ok(FormAction { user, form })
    }
}

impl<const NEED: u8> FormAction<NEED> {
    /// The answer to an operation that failed: what the user can fix goes back to `back`
    /// with a flash message; what they can't is an error page.
    pub(crate) fn failed(&self, state: &AppState, back: &str, e: OpError) -> Response {
        let lang = self.user.lang;
        let flash = match &e {
            OpError::NotFound(_) => return error(lang, StatusCode::NOT_FOUND, "error.not_found"),
            OpError::Forbidden(_) => {
                return error(lang, StatusCode::FORBIDDEN, "error.forbidden");
            }
            OpError::AuditFailed => {
                return error(lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed");
            }
            OpError::Missing("text") => "error.comment_empty",
            OpError::Missing("id") => "error.bulk_none",
            OpError::Invalid {
                field: "password", ..
            } => "error.password_weak",
            OpError::Invalid {
                field: "username", ..
            } => "error.username_invalid",
            OpError::Invalid { field: "name", .. } => "error.token_name",
            OpError::Invalid {
                field: "saved_search",
                ..
            } => "error.search_invalid",
            OpError::Invalid {
                field: "incident", ..
            } => "error.incident_invalid",
            OpError::Refused { slug, .. } => match *slug {
                "username-taken" => "error.username_taken",
                "last-admin" => "error.last_admin",
                "self" => "error.self",
                "password-wrong" => "error.password_wrong",
                "name-taken" => "error.search_name_taken",
                "conflict" => "error.incident_conflict",
                _ => "error.failed",
            },
            OpError::Store(StoreError::InvalidTransition { .. }) => "error.invalid_transition",
            OpError::Missing(_) | OpError::Invalid { .. } => "error.failed",
            OpError::Store(_) => {
                tracing::error!("ui: {e}");
                return error(lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed");
            }
        };
        see_other(state, back, flash)
    }
}

/// The enabled analysts and admins: who may be assigned an alert or own an incident.
pub(crate) fn triage_users(users: Vec<dozor_store::User>) -> Vec<String> {
    users
        .into_iter()
        .filter(|u| {
            u.disabled_at.is_none()
                && matches!(
                    u.role,
                    dozor_store::Role::Admin | dozor_store::Role::Analyst
                )
        })
        .map(|u| u.username)
        .collect()
}

/// A page handler's result: the page, or the error page / redirect that replaces it.
pub(crate) type Page = Result<Response, Response>;

/// The response of a page handler, whichever way it went.
pub(crate) fn done(r: Page) -> Response {
    r.unwrap_or_else(|e| e)
}

/// A store failure as the error page of `user`'s language.
pub(crate) fn failed(user: &WebUser) -> impl Fn(dozor_store::StoreError) -> Response + '_ {
    move |e| store_failed(user.lang, e)
}

/// The "not found" page.
pub(crate) fn not_found(user: &WebUser) -> Response {
    error(user.lang, StatusCode::NOT_FOUND, "error.not_found")
}

/// The pairs of a query string.
pub(crate) fn pairs(query: Option<String>) -> Vec<(String, String)> {
    form_fields(query.unwrap_or_default().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let f = form_fields(b"csrf=ab&id=1&id=2&note=a+b%20c%2B&empty&bad=%zz&x=%4");
        assert_eq!(f[0], ("csrf".into(), "ab".into()));
        assert_eq!(f[1], ("id".into(), "1".into()));
        assert_eq!(f[3], ("note".into(), "a b c+".into()));
        assert_eq!(f[4], ("empty".into(), String::new()));
        assert_eq!(f[5], ("bad".into(), "%zz".into()));
        assert_eq!(f[6], ("x".into(), "%4".into()));
        let ru = form_fields("text=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82".as_bytes());
        assert_eq!(ru[0].1, "привет");
    }

    #[test]
    fn return_targets() {
        assert_eq!(back_to(Some("/ui/alerts?x=1"), "/ui/"), "/ui/alerts?x=1");
        assert_eq!(back_to(Some("//evil.example/ui/"), "/ui/"), "/ui/");
        assert_eq!(back_to(Some("https://evil.example/"), "/ui/"), "/ui/");
        assert_eq!(back_to(Some("/ui/\\evil"), "/ui/"), "/ui/");
        assert_eq!(back_to(Some("/api/v1/alerts"), "/ui/"), "/ui/");
        assert_eq!(back_to(None, "/ui/x"), "/ui/x");
    }
}
