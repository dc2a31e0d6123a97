//! Request plumbing shared by the API handlers: the authenticated caller and its rights,
//! query parameters, path ids, JSON bodies, and store errors as problems.
//!
//! The caller extractor comes first in every handler, so a request without a valid
//! credential gets 401 (and one the role may not make 403) before anything else about it is
//! looked at.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

pub(crate) use crate::auth::{ADMIN, READ, TRIAGE, permits};
use crate::auth::{Identity, Role, authenticate};
pub(crate) use crate::ops::{not_found, store_problem};
use crate::problem::Problem;
use crate::state::ApiState;
use crate::state::AppState;

fn need_name(need: u8) -> &'static str {
    match need {
        READ => "a viewer, analyst or admin",
        TRIAGE => "an analyst or admin",
        _ => "an admin",
    }
}

/// The authenticated caller, who has the right `NEED`, and the API's state.
pub(crate) struct Caller<const NEED: u8> {
    pub identity: Identity,
    pub api: Arc<ApiState>,
    /// The credential as presented (its `Authorization` and `Cookie` headers), for a
    /// long-lived answer (a stream) to check again later.
    pub credential: HeaderMap,
}

/// Who the request's credential says the caller is: a browser's session cookie stands in for
/// a bearer token (never both: a request with an Authorization header is judged by the token
/// alone).
pub(crate) async fn identify(state: &AppState, parts: &Parts) -> Result<Identity, Problem> {
    let by_cookie = if parts.headers.contains_key(header::AUTHORIZATION) {
        None
    } else {
        crate::session::cookie_identity(state, parts).await?
    };
    match by_cookie {
        Some(identity) => Ok(identity),
        None => authenticate(state.tokens.as_ref(), &parts.headers).await,
    }
}

/// The headers that carry a credential, copied from `headers`.
fn credential_headers(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [header::AUTHORIZATION, header::COOKIE] {
        for value in headers.get_all(&name) {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// Is the credential a caller presented (see [`Caller::credential`]) still that caller's, with
/// the right `need`? Asked again by long-lived answers: a token revoked, a user disabled, a
/// session ended (logout, password change) all make it `false`, and so does a credential that
/// can't be checked now.
pub(crate) async fn still_valid(
    state: &AppState,
    credential: &HeaderMap,
    identity: &Identity,
    need: u8,
) -> bool {
    let mut request = axum::http::Request::new(());
    *request.headers_mut() = credential.clone();
    let (parts, ()) = request.into_parts();
    identify(state, &parts)
        .await
        .is_ok_and(|now| now.subject == identity.subject && permits(now.role, need))
}

impl<const NEED: u8> FromRequestParts<Arc<AppState>> for Caller<NEED> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Problem> {
        let path = parts.uri.path().to_owned();
        let identity = identify(state, parts)
            .await
            .map_err(|p| p.instance(path.clone()))?;
        if !permits(identity.role, NEED) {
            let what = match identity.role {
                Role::Agent => "agent credentials may only send events".to_owned(),
                _ => format!(
                    "this needs {} credential; {:?} is {}",
                    need_name(NEED),
                    identity.subject,
                    role_name(identity.role)
                ),
            };
            return Err(Problem::forbidden(what).instance(path));
        }
        let Some(api) = state.api.clone() else {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api-not-configured",
                "Service unavailable",
            )
            .detail("api not configured: this server has no store or rules attached")
            .instance(path));
        };
        Ok(Caller {
            identity,
            api,
            credential: credential_headers(&parts.headers),
        })
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "an agent",
        Role::Admin => "an admin",
        Role::Analyst => "an analyst",
        Role::Viewer => "a viewer",
    }
}

/// `400 invalid-parameter` naming the parameter.
pub(crate) fn bad_param(name: &str, detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-parameter",
        "Invalid parameter",
    )
    .detail(detail)
    .with("parameter", name)
}

/// The query string's parameters, in order (repeats kept).
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| {
                Problem::bad_request("invalid-parameter", e.body_text()).instance(parts.uri.path())
            })
    }
}

impl Params {
    /// Refuses parameters this route doesn't know (a typo should not silently widen a search).
    pub fn only(&self, known: &[&str]) -> Result<(), Problem> {
        match self.0.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            None => Ok(()),
            Some((k, _)) => Err(bad_param(
                k,
                format!("unknown parameter {k:?} (known: {})", known.join(", ")),
            )),
        }
    }

    /// A single-valued parameter; empty counts as absent, a repeat is an error.
    pub fn get(&self, name: &str) -> Result<Option<&str>, Problem> {
        Ok(self.given(name)?.filter(|v| !v.is_empty()))
    }

    /// A single-valued parameter whose document gives a pattern or format: given empty, it is
    /// a value (and refused by its parser), not absent.
    pub fn given(&self, name: &str) -> Result<Option<&str>, Problem> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name {
                if found.is_some() {
                    return Err(bad_param(name, format!("{name} is given more than once")));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.map(str::trim))
    }

    /// A parameter that may repeat or list values separated by commas.
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// These parameters without the ones named (an export reads `limit` itself).
    pub fn without(&self, names: &[&str]) -> Params {
        Params(
            self.0
                .iter()
                .filter(|(k, _)| !names.contains(&k.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Every parameter as given, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn string(&self, name: &str) -> Result<Option<String>, Problem> {
        Ok(self.get(name)?.map(str::to_owned))
    }

    /// [`Params::string`] of at most `max` characters — characters, as the document's
    /// `maxLength` counts them (17 four-byte characters are within a `maxLength` of 64).
    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>, Problem> {
        match self.string(name)? {
            Some(v) if v.chars().count() > max => {
                Err(bad_param(name, format!("{name}: at most {max} characters")))
            }
            v => Ok(v),
        }
    }

    /// A time: milliseconds since the Unix epoch, RFC 3339, `now` or `now-<duration>`
    /// (`now-15m`, `now-24h`, `now-7d`).
    pub fn time(&self, name: &str, now: i64) -> Result<Option<i64>, Problem> {
        self.get(name)?
            .map(|v| {
                let time = parse_time(v, now).ok_or_else(|| {
                    bad_param(
                        name,
                        format!(
                            "{name}: {v:?} is not a time (milliseconds since the epoch, RFC 3339, `now` or `now-<duration>` such as now-15m)"
                        ),
                    )
                })?;
                if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&time) {
                    return Err(bad_param(
                        name,
                        format!(
                            "{name}: {v:?} is outside the years 1 to 9999 ({MIN_TIME_MS} to {MAX_TIME_MS} ms since the epoch)"
                        ),
                    ));
                }
                Ok(time)
            })
            .transpose()
    }

    /// `limit`: 1..=max, default `default`.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, Problem> {
        self.count("limit", default, max)
    }

    /// A count parameter from 1 to `max`, `default` when absent.
    pub fn count(&self, name: &str, default: u32, max: u32) -> Result<u32, Problem> {
        match self.get(name)? {
            None => Ok(default),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad_param(
                    name,
                    format!("{name} must be a whole number from 1 to {max}"),
                )),
            },
        }
    }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in milliseconds since the epoch: times
/// outside are refused, so spans and bucket arithmetic can't overflow.
pub(crate) const MIN_TIME_MS: i64 = -62_135_596_800_000;
pub(crate) const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the epoch, RFC 3339, `now`, `now-<duration>`.
pub(crate) fn parse_time(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    if text == "now" {
        return Some(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let secs = crate::config::parse_duration_secs(ago)?;
        let ms = i64::try_from(secs).ok()?.checked_mul(1000)?;
        return now.checked_sub(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The `{id}` of the path.
pub(crate) struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(e) => {
                Err(Problem::bad_request("invalid-parameter", e.body_text())
                    .instance(parts.uri.path()))
            }
        }
    }
}

/// The two ids of a nested path (`/incidents/{id}/tasks/{task_id}`).
pub(crate) struct PathIds(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(Path((a, b))) => Ok(PathIds(a, b)),
            Err(e) => {
                Err(Problem::bad_request("invalid-parameter", e.body_text())
                    .instance(parts.uri.path()))
            }
        }
    }
}

impl PathId {
    /// An alert id; anything else is a 404 (no such alert).
    pub fn alert_id(&self) -> Result<i64, Problem> {
        self.0
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| not_found(&format!("alert {}", self.0)))
    }
}

/// A level and those above it (aliases such as `info` and any case are taken too); empty:
/// any level.
// Describes the query only: never built. `openapi::document` adds `""` to the enum.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum LevelName {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

/// An alert status; empty: any.
// Describes the query only: never built. `openapi::document` adds `""` to the enum.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum StatusName {
    New,
    Acknowledged,
    Resolved,
    FalsePositive,
}

/// Largest JSON body the API reads.
pub(crate) const MAX_JSON_BODY: usize = 1024 * 1024;

/// A JSON request body, with problems for a wrong media type, too large a body, bad JSON
/// (line and column) and missing or mistyped members.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let path = request.uri().path().to_owned();
        if let Some(ct) = request.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(Problem::unsupported_media_type(format!(
                    "send application/json, not {essence:?}"
                ))
                .with("supported_types", ["application/json"])
                .instance(path));
            }
        }
        // `api::route` sets the body limit of these routes to MAX_JSON_BODY.
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::too_large(
                    "api.max_json_body",
                    MAX_JSON_BODY as u64,
                    "the JSON body is too large",
                )
            } else {
                Problem::bad_request("unreadable-body", e.body_text())
            }
            .instance(path.clone())
        })?;
        // Every request body of the API is a JSON object; serde alone would also read a struct
        // from an array (`[null, null]`), so a well-formed body of another type is refused here.
        if bytes.trim_ascii_start().first() != Some(&b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok()
        {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            )
            .detail("the body must be a JSON object")
            .instance(path));
        }
        serde_json::from_slice::<T>(&bytes)
            .map(JsonBody)
            .map_err(|e| {
                use serde_json::error::Category;
                match e.classify() {
                    Category::Data => Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-body",
                        "Invalid request body",
                    )
                    .detail(e.to_string()),
                    _ => {
                        Problem::bad_request("malformed-json", format!("the body is not JSON: {e}"))
                            .with("line", e.line())
                            .with("column", e.column())
                    }
                }
                .instance(path.clone())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_rights() {
        for need in [READ, TRIAGE, ADMIN] {
            assert!(!permits(Role::Agent, need));
            assert!(permits(Role::Admin, need));
        }
        assert!(permits(Role::Viewer, READ));
        assert!(!permits(Role::Viewer, TRIAGE));
        assert!(permits(Role::Analyst, TRIAGE));
        assert!(!permits(Role::Analyst, ADMIN));
    }

    #[test]
    fn times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("123", now), Some(123));
        assert_eq!(parse_time("now", now), Some(now));
        assert_eq!(parse_time("now-15m", now), Some(now - 900_000));
        assert_eq!(parse_time("now-1d", now), Some(now - 86_400_000));
        assert_eq!(
            parse_time("2026-05-01T12:00:00.123Z", now),
            Some(1_777_636_800_123)
        );
        assert_eq!(parse_time("yesterday", now), None);
        assert_eq!(parse_time("now-5x", now), None);
    }

    #[test]
    fn params() {
        let p = Params(vec![
            ("status".into(), "new,acknowledged".into()),
            ("status".into(), "resolved".into()),
            ("q".into(), " ".into()),
            ("limit".into(), "5000".into()),
        ]);
        assert_eq!(p.list("status"), ["new", "acknowledged", "resolved"]);
        assert_eq!(p.get("q").unwrap(), None);
        assert_eq!(p.get("status").unwrap_err().status, 400);
        assert_eq!(p.limit(100, 1000).unwrap_err().status, 400);
        assert_eq!(
            p.only(&["status", "q"]).unwrap_err().slug(),
            "invalid-parameter"
        );
        assert!(p.only(&["status", "q", "limit"]).is_ok());
    }
}
