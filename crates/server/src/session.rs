//! Operator sign-in for the web dashboard: the login form, session cookies, CSRF tokens and
//! login throttling.
//!
//! - A session is a random 256-bit secret in the `dozor_session` cookie (HttpOnly,
//!   SameSite=Strict, Secure under TLS, Path=/); the store keeps only its SHA-256, the user
//!   and a per-session CSRF token. Sessions end after [`SESSION_LIFETIME`], at logout, when
//!   the password changes or the user is disabled.
//! - Every state-changing request made with the cookie must carry the session's CSRF token:
//!   forms as the `csrf` field, scripts as the `X-CSRF-Token` header. The login form itself is
//!   protected with a double-submit token (`dozor_login` cookie = form field).
//! - Sign-ins are throttled (`login_throttle`): at most a few password checks run at once
//!   (more → 429 at once), an attempt counts before its password is checked, and failures
//!   lock a user name *from one address* after [`FREE_FAILURES`] (30 s, doubling up to
//!   15 min) and an address after 20 (any user names). User names longer than
//!   [`MAX_USERNAME_BYTES`] are refused before anything else (400).
//! - Bearer tokens keep working for the JSON API; a request with a bearer token is judged by
//!   the token alone.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dozor_store::{NewSession, now_ms};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Identity, Role};
use crate::digest::{hex, random_bytes, sha256};
use crate::problem::Problem;
use crate::state::ApiState;
use crate::state::AppState;
use crate::state::ConnectionInfo;

pub(crate) const SESSION_COOKIE: &str = "dozor_session";
const LOGIN_COOKIE: &str = "dozor_login";
const LANG_COOKIE: &str = "dozor_lang";
/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Failed logins allowed before throttling starts.
pub use crate::login_throttle::{FREE_FAILURES, LoginThrottle};
/// Longest user name a sign-in may give (longer ones are never looked up nor logged).
pub const MAX_USERNAME_BYTES: usize = 256;

/// The stored form of a session secret.
fn secret_hash(secret: &str) -> Vec<u8> {
    sha256(secret.as_bytes()).to_vec()
}

/// Compares without an early exit on the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    set_cookie_at("/", name, value, max_age, secure)
}

/// A `Set-Cookie` value for `path`: HttpOnly, SameSite=Strict, Secure under TLS.
pub(crate) fn set_cookie_at(
    path: &str,
    name: &str,
    value: &str,
    max_age: Duration,
    secure: bool,
) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The page language: the user's setting, else the one picked on the login page (the
/// `dozor_lang` cookie), else the browser's Accept-Language.
pub(crate) fn language(setting: Option<&str>, headers: &HeaderMap) -> dozor_ui::Lang {
    setting
        .and_then(dozor_ui::Lang::from_code)
        .or_else(|| cookie(headers, LANG_COOKIE).and_then(dozor_ui::Lang::from_code))
        .unwrap_or_else(|| {
            dozor_ui::Lang::from_accept_language(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        })
}

fn api_of(state: &AppState) -> Result<Arc<ApiState>, Problem> {
    state.api.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("this server has no store attached")
    })
}

/// The operator signed in with a session cookie.
#[derive(Clone)]
pub struct WebUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// The user's language setting (`None`: the browser's).
    pub language: Option<String>,
    /// The language of this request's pages.
    pub lang: dozor_ui::Lang,
    /// The session's CSRF token, for forms and scripts.
    pub csrf: String,
    pub api: Arc<ApiState>,
}

impl std::fmt::Debug for WebUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl WebUser {
    pub fn identity(&self) -> Identity {
        Identity::operator(self.username.clone(), self.role)
    }

    /// Has this user the right `need` (`crate::auth` READ / TRIAGE / ADMIN)?
    pub fn may(&self, need: u8) -> bool {
        crate::auth::permits(self.role, need)
    }

    /// The form's (or header's) CSRF token must be this session's.
    // The error is the response sent as it is; boxing it would buy nothing.
    #[allow(clippy::result_large_err)]
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), Response> {
        match presented {
            Some(p) if same(p, &self.csrf) => Ok(()),
            _ => Err(Problem::forbidden(
                "the form's security token is missing or stale: reload the page and try again",
            )
            .into_response()),
        }
    }
}

/// The session of a request's cookie: the session and its user, or `None`.
async fn session_of(
    api: &ApiState,
    headers: &HeaderMap,
) -> Result<Option<(dozor_store::Session, dozor_store::User)>, Problem> {
    let Some(secret) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    api.store
        .find_session(&secret_hash(secret))
        .await
        .map_err(|e| {
            tracing::warn!("session lookup failed: {e}");
            Problem::unavailable(
                "auth-unavailable",
                "sessions can't be checked right now",
                Duration::from_secs(5),
            )
        })
}

impl FromRequestParts<Arc<AppState>> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let api = api_of(state).map_err(IntoResponse::into_response)?;
        let found = session_of(&api, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some((session, user)) = found else {
            return Err(to_login(parts));
        };
        let Some(role) = Role::of_operator(user.role) else {
            return Err(to_login(parts));
        };
        let lang = language(user.language.as_deref(), &parts.headers);
        Ok(WebUser {
            id: user.id,
            username: user.username,
            role,
            language: user.language,
            lang,
            csrf: session.csrf_token,
            api,
        })
    }
}

/// Where a request without a session goes: the login page, coming back afterwards.
fn to_login(parts: &Parts) -> Response {
    if parts.method == Method::GET {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/ui/");
        Redirect::to(&format!("/login?next={}", encode(next))).into_response()
    } else {
        Problem::unauthorized("sign in first", false).into_response()
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only our own pages are places to go back to after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.contains("//") && !n.contains('\\') => n.to_owned(),
        _ => "/ui/".to_owned(),
    }
}

/// The operator of a session cookie, for the JSON API. Requests other than GET and HEAD
/// must carry the session's CSRF token in `X-CSRF-Token`.
pub(crate) async fn cookie_identity(
    state: &AppState,
    parts: &Parts,
) -> Result<Option<Identity>, Problem> {
    let Some(api) = state.api.as_ref() else {
        return Ok(None);
    };
    let Some((session, user)) = session_of(api, &parts.headers).await? else {
        return Ok(None);
    };
    let Some(role) = Role::of_operator(user.role) else {
        return Ok(None);
    };
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let presented = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        if !presented.is_some_and(|p| same(p, &session.csrf_token)) {
            return Err(Problem::forbidden(
                "a request made with the session cookie needs the session's X-CSRF-Token header",
            ));
        }
    }
    Ok(Some(Identity::operator(user.username, role)))
}

// ---------------------------------------------------------------- routes

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    /// `en` or `ru`: the language picked on the login page (remembered in a cookie).
    lang: Option<String>,
}

fn login_response(
    state: &AppState,
    status: StatusCode,
    lang: dozor_ui::Lang,
    error: Option<dozor_ui::LoginError>,
    username: &str,
    next: &str,
) -> Response {
    let token = hex(&random_bytes::<32>());
    let html = dozor_ui::login(lang, error, username, &token, next);
    let mut response = (status, axum::response::Html(html)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, &token, Duration::from_secs(3600), state.tls),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn login_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<LoginQuery>,
) -> Response {
    // Already signed in: straight on.
    if let Ok(api) = api_of(&state)
        && let Ok(Some(_)) = session_of(&api, &headers).await
    {
        return Redirect::to(&safe_next(query.next.as_deref())).into_response();
    }
    let picked = query.lang.as_deref().and_then(dozor_ui::Lang::from_code);
    let lang = picked.unwrap_or_else(|| language(None, &headers));
    let mut response = login_response(
        &state,
        StatusCode::OK,
        lang,
        None,
        "",
        &safe_next(query.next.as_deref()),
    );
    if let Some(lang) = picked {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(
                LANG_COOKIE,
                lang.code(),
                Duration::from_secs(365 * 86_400),
                state.tls,
            ),
        );
    }
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// Sign-in events are recorded against the user; a failed write is logged, never a refusal.
async fn audit(api: &ApiState, actor: &str, action: &str, details: serde_json::Value) {
    let target = format!("user:{actor}");
    crate::audit::append_audit(api.store.as_ref(), actor, action, target, details).await;
}

async fn login(
    State(state): State<Arc<AppState>>,
    connection: Option<axum::extract::Extension<ConnectionInfo>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = language(None, &headers);
    let next = safe_next(form.next.as_deref());
    let api = match api_of(&state) {
        Ok(a) => a,
        Err(p) => return p.into_response(),
    };
    let address = connection
        .map(|c| c.peer.ip().to_string())
        .unwrap_or_default();
    let username = form.username.trim();
    if username.len() > MAX_USERNAME_BYTES {
        // Not echoed, not looked up, not logged: it can't be a user's.
        return login_response(
            &state,
            StatusCode::BAD_REQUEST,
            lang,
            Some(dozor_ui::LoginError::Invalid),
            "",
            &next,
        );
    }
    let username = username.to_owned();
    let key = username.to_lowercase();
    let answer =
        |status, error| login_response(&state, status, lang, Some(error), &username, &next);
    let wait_answer = |wait: Duration| {
        let secs = wait.as_secs().max(1);
        let mut response = answer(
            StatusCode::TOO_MANY_REQUESTS,
            dozor_ui::LoginError::Throttled(secs),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    };
    if !cookie(&headers, LOGIN_COOKIE).is_some_and(|c| same(c, &form.csrf)) {
        return answer(StatusCode::FORBIDDEN, dozor_ui::LoginError::Expired);
    }
    // Bounded password checks: none free → try again in a second, nothing counted.
    let Some(permit) = state.login_throttle.hashing_permit() else {
        return wait_answer(Duration::from_secs(1));
    };
    // Counted as a failure before the password is checked; forgiven if it was right.
    if let Err(wait) = state.login_throttle.attempt(&key, &address) {
        return wait_answer(wait);
    }
    let found = match api.store.find_user(&username).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("login: user lookup failed: {e}");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                dozor_ui::LoginError::Unavailable,
            );
        }
    };
    let (user, phc) = match found {
        Some((user, phc)) if user.disabled_at.is_none() => (Some(user), phc),
        _ => (None, crate::password::dummy_hash().to_owned()),
    };
    let password = form.password;
    let matches = tokio::task::spawn_blocking(move || {
        let matches = crate::password::verify(&password, &phc);
        drop(permit);
        matches
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        audit(
            &api,
            &username,
            "login.failed",
            json!({ "address": address }),
        )
        .await;
        return answer(StatusCode::UNAUTHORIZED, dozor_ui::LoginError::Invalid);
    };
    state.login_throttle.succeeded(&key, &address);
    let secret = hex(&random_bytes::<32>());
    let session = NewSession {
        user_id: user.id,
        secret_hash: secret_hash(&secret),
        csrf_token: hex(&random_bytes::<32>()),
        expires_at: now_ms() + SESSION_LIFETIME.as_millis() as i64,
        ip: (!address.is_empty()).then(|| address.clone()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    };
    if let Err(e) = api.store.create_session(&session).await {
        tracing::warn!("login: creating the session failed: {e}");
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            dozor_ui::LoginError::Unavailable,
        );
    }
    let _ = api.store.record_login(user.id, now_ms()).await;
    audit(&api, &user.username, "login", json!({ "address": address })).await;
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &secret, SESSION_LIFETIME, state.tls),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_COOKIE, "", Duration::ZERO, state.tls),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = user.check_csrf(Some(&form.csrf)) {
        return r;
    }
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        let _ = user.api.store.delete_session(&secret_hash(secret)).await;
    }
    audit(&user.api, &user.username, "logout", json!({})).await;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Duration::ZERO, state.tls),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; dozor_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn next_stays_on_our_pages() {
        assert_eq!(
            safe_next(Some("/ui/alerts?status=new")),
            "/ui/alerts?status=new"
        );
        assert_eq!(safe_next(Some("https://evil.example/")), "/ui/");
        assert_eq!(safe_next(Some("/ui//evil.example")), "/ui/");
        assert_eq!(safe_next(None), "/ui/");
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
