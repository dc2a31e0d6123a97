//! The web dashboard's pages and form actions under `/ui/` (the sign-in, sessions and CSRF
//! tokens are `crate::session`'s; the HTML is `dozor_ui`'s).
//!
//! Every page needs a session ([`WebUser`]: no session → redirect to `/login`); pages and
//! actions have the JSON API's rights (viewer < analyst < admin): viewers read, analysts
//! triage alerts, admins also switch rules and manage users. Every POST is checked for the
//! session's CSRF token, every change is written to the audit log, and a POST answers
//! `303 See Other` back to a page, with a flash message (a catalog key) in a short-lived
//! cookie — except where a secret must be shown once (a new token, a generated password):
//! then the page is the answer itself (it is never cached: `Cache-Control: no-store`).
//!
//! Queries stay bounded for big stores: lists are paged by the store's cursors, the overview
//! reads at most [`OVERVIEW_ALERT_SCAN`] alerts of the last 24 h, histograms have at most 120
//! buckets, and the event search's field sidebar is computed from the shown page only.

// Until `crate::app::router` merges `router()` the routes are unreachable from the binary.
// Refusals are responses (error pages, redirects), as in axum handlers generally.
#![allow(clippy::result_large_err)]

mod actions;
mod pages;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dozor_store::now_ms;

use crate::app::AppState;
use crate::auth::Role;
use crate::session::WebUser;

/// Rights, as in `crate::api::access`: reading, triage, administration.
pub(crate) const READ: u8 = 0;
pub(crate) const TRIAGE: u8 = 1;
pub(crate) const ADMIN: u8 = 2;

/// Most alerts of the last 24 h the overview reads for its chart and top rules.
pub(crate) const OVERVIEW_ALERT_SCAN: usize = 5_000;
/// Largest form body read.
const MAX_FORM_BYTES: usize = 256 * 1024;
/// The flash message cookie (a catalog key, shown once on the next page).
const FLASH_COOKIE: &str = "dozor_flash";

/// The dashboard's routes. Mount with `router.merge(crate::ui::router())` on the roles that
/// serve the API.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/overview", get(pages::overview))
        .route("/ui/alerts", get(pages::alerts))
        .route("/ui/alerts/bulk", post(actions::bulk_status))
        .route("/ui/alerts/{id}", get(pages::alert))
        .route("/ui/alerts/{id}/status", post(actions::alert_status))
        .route("/ui/alerts/{id}/assignee", post(actions::alert_assignee))
        .route("/ui/alerts/{id}/comments", post(actions::alert_comment))
        .route("/ui/events", get(pages::events))
        .route("/ui/agents", get(pages::agents))
        .route("/ui/agents/{id}", get(pages::agent))
        .route("/ui/agents/{id}/commands", post(actions::agent_scan))
        .route("/ui/rules", get(pages::rules))
        .route("/ui/rules/{id}", get(pages::rule))
        .route("/ui/rules/{id}/enabled", post(actions::rule_enabled))
        .route("/ui/users", get(pages::users).post(actions::user_create))
        .route("/ui/users/{id}/role", post(actions::user_role))
        .route("/ui/users/{id}/disabled", post(actions::user_disabled))
        .route("/ui/users/{id}/password", post(actions::user_password))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/profile", get(pages::profile))
        .route("/ui/profile/language", post(actions::profile_language))
        .route("/ui/profile/password", post(actions::profile_password))
        .route("/ui/profile/tokens", post(actions::token_create))
        .route(
            "/ui/profile/tokens/{id}/revoke",
            post(actions::token_revoke),
        )
        .route(dozor_ui::CSS_PATH, get(css))
        .route(dozor_ui::JS_PATH, get(js))
        .route("/ui/{*rest}", get(pages::not_found))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

/// The store's role of a session's user (pages show forms by it).
pub(crate) fn store_role(role: Role) -> dozor_store::Role {
    match role {
        Role::Admin => dozor_store::Role::Admin,
        Role::Analyst => dozor_store::Role::Analyst,
        Role::Viewer | Role::Agent => dozor_store::Role::Viewer,
    }
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

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // the URL carries the content's hash (`?v=`), so it may be kept for long
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", dozor_ui::APP_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", dozor_ui::APP_JS)
}

#[cfg(test)]
mod unit {
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
