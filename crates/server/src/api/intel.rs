//! Threat-intelligence routes (issue 14): indicators (the retrieval endpoint, manual ones,
//! enable/disable), sources (settings, sync now, status) and matches.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dozor_intel::IocKind;
use dozor_model::{
    IntelMatchList, IntelMatchQuery, IntelSource, IntelSourceList, IntelSourceRequest,
    IntelSyncStatus, IocDetail, IocEnabledRequest, IocPage, IocQuery, IocView, ManualIocRequest,
};
use dozor_store::{MAX_IOC_PAGE, now_ms};
use serde_json::json;

use super::access::{ADMIN, Caller, JsonBody, Params, PathId, READ, TRIAGE, bad_param, not_found};
use crate::intel::{IntelError, IntelService, ManualIoc, check_location, parse_spec, redact_spec};
use crate::ops::{audited, store_problem};
use crate::problem::Problem;
use crate::problem_responses::{
    BadParameter, Forbidden, InvalidBody, JsonTooLarge, NotJson, NotJsonMediaType, Unauthorized,
    problem_response,
};
use crate::state::AppState;

pub(crate) const IOCS: &str = "/api/v1/intel/iocs";
pub(crate) const IOC: &str = "/api/v1/intel/iocs/{id}";
pub(crate) const IOC_ENABLED: &str = "/api/v1/intel/iocs/{id}/enabled";
pub(crate) const SOURCES: &str = "/api/v1/intel/sources";
pub(crate) const SOURCE: &str = "/api/v1/intel/sources/{name}";
pub(crate) const SOURCE_SYNC: &str = "/api/v1/intel/sources/{name}/sync";
pub(crate) const MATCHES: &str = "/api/v1/intel/matches";

/// Longest source name, bytes.
const MAX_SOURCE_NAME: usize = 128;
/// Longest tag in a filter, characters.
const MAX_TAG_FILTER: usize = 256;

problem_response! {
    IntelNotConfigured = 503, "The API (a store) is not configured on this server";
    NoSuchIoc = 404, "No such indicator";
    NoSuchSource = 404, "No such intelligence source";
    InvalidIoc = 422, "Unknown kind or a value that is not a valid indicator of it (`reason`)";
    InvalidSource = 422, "Settings that do not parse (`reason`: unknown key, missing `kind`, bad value)";
    SyncBusy = 409, "The source is syncing already (`sync-busy`)";
}

fn service(state: &AppState) -> Result<&Arc<IntelService>, Problem> {
    state.intel.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("threat intelligence is not configured: this server has no store attached")
    })
}

fn intel_problem(e: IntelError) -> Problem {
    match e {
        IntelError::NoSuchSource(name) => not_found(&format!("intelligence source {name}")),
        IntelError::BadSpec { reason, .. } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-source",
            "Invalid source settings",
        )
        .detail(reason.clone())
        .with("reason", reason),
        IntelError::Busy(name) => Problem::new(StatusCode::CONFLICT, "sync-busy", "Busy")
            .detail(format!("source {name} is syncing already")),
        IntelError::Invalid(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-ioc",
            "Invalid indicator",
        )
        .detail(reason.clone())
        .with("reason", reason),
        IntelError::Store(e) => store_problem(e),
    }
}

fn ioc_id(path: &PathId) -> Result<i64, Problem> {
    path.0
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| bad_param("id", format!("{:?}: an indicator id (1 or more)", path.0)))
}

fn check_source_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SOURCE_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad_param(
            "name",
            format!("{name:?}: 1 to {MAX_SOURCE_NAME} of A-Z a-z 0-9 _ . -, not starting with ."),
        ))
    }
}

fn redacted(mut source: IntelSource) -> IntelSource {
    source.spec = redact_spec(&source.spec);
    source
}

/// The query parameters of `GET /api/v1/intel/iocs`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct IocParameters {
    /// Only this kind (`ip`, `cidr`, `domain`, `hostname`, `url`, `md5`, `sha1`, `sha256`,
    /// `sha512`, `imphash`, `filename`, `email`, `registry_key`, `user_agent`, `ja3`)
    #[param(nullable = false)]
    kind: Option<String>,
    /// The value contains this (case-insensitive)
    #[param(nullable = false, max_length = 4096)]
    q: Option<String>,
    /// Given by this source
    #[param(nullable = false, max_length = 128)]
    source: Option<String>,
    /// Carrying this tag
    #[param(nullable = false, max_length = 256)]
    tag: Option<String>,
    /// Only active (enabled, not expired) indicators (`true`) or every one (default)
    #[param(nullable = false)]
    active: Option<bool>,
    /// Changed at or after this time (RFC 3339, ms since the epoch, or `now-15m`)
    #[param(nullable = false)]
    since: Option<String>,
    /// `next_cursor` of the previous page
    #[param(nullable = false, pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// 1 to 10000, default 1000
    #[param(nullable = false, minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

const IOC_PARAMETERS: &[&str] = &[
    "kind", "q", "source", "tag", "active", "since", "cursor", "limit",
];

fn parse_bool(name: &str, value: &str) -> Result<bool, Problem> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(bad_param(name, format!("{other:?}: true or false"))),
    }
}

fn parse_kind(value: &str) -> Result<IocKind, Problem> {
    IocKind::from_name(value).ok_or_else(|| {
        bad_param(
            "kind",
            format!(
                "{value:?}: one of ip, cidr, domain, hostname, url, md5, sha1, sha256, sha512, imphash, filename, email, registry_key, user_agent, ja3"
            ),
        )
    })
}

/// `GET /api/v1/intel/iocs`.
#[utoipa::path(get, path = IOCS, tag = "intel", operation_id = "intel_ioc_list",
    summary = "Indicators (the retrieval endpoint)",
    description = "Stored indicators in id order, with keyset paging (`cursor`): the endpoint from which other \
processes and integrations retrieve Dozor's IOCs, incrementally with `since` (changed at or after). Each has its \
sources with their object ids (MISP event/attribute uuids, STIX ids), tags, `to_ids`, first/last seen, expiry, \
warninglist hits, sightings and its `decay_score` and `active` at the answer's time.",
    params(IocParameters),
    responses(
        (status = 200, description = "One page", body = IocPage),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Json<IocPage>, Problem> {
    params.only(IOC_PARAMETERS)?;
    let service = service(&state)?;
    let now = now_ms();
    let limit = params.limit(1000, MAX_IOC_PAGE)?;
    let kind = params.get("kind")?.map(parse_kind).transpose()?;
    let after_id =
        match params.given("cursor")? {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|c| *c >= 0).ok_or_else(|| {
                bad_param("cursor", "the cursor was not produced by this listing")
            })?,
        };
    let active = params
        .get("active")?
        .map(|v| parse_bool("active", v))
        .transpose()?
        .unwrap_or(false);
    let query = IocQuery {
        kind: kind.map(|k| k.as_str().to_owned()),
        contains: params.text("q", dozor_store::MAX_IOC_VALUE)?,
        source: params.text("source", MAX_SOURCE_NAME)?,
        tag: params.text("tag", MAX_TAG_FILTER)?,
        active_at: active.then_some(now),
        updated_since: params.time("since", now)?,
        after_id: Some(after_id),
        limit,
        ..IocQuery::default()
    };
    let iocs = service
        .store()
        .list_iocs(&query)
        .await
        .map_err(store_problem)?;
    let next_cursor = (iocs.len() == limit as usize)
        .then(|| iocs.last().map(|i| i.id.to_string()))
        .flatten();
    Ok(Json(IocPage {
        iocs: iocs.into_iter().map(|i| IocView::of(i, now)).collect(),
        next_cursor,
    }))
}

/// `GET /api/v1/intel/iocs/{id}`.
#[utoipa::path(get, path = IOC, tag = "intel", operation_id = "intel_ioc",
    summary = "One indicator with its latest matches",
    params(("id" = i64, Path, description = "Indicator id", minimum = 1)),
    responses(
        (status = 200, description = "The indicator", body = IocDetail),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        NoSuchIoc,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    id: PathId,
) -> Result<Json<IocDetail>, Problem> {
    let id = ioc_id(&id)?;
    let service = service(&state)?;
    let store = service.store();
    let ioc = store
        .get_ioc(id)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("indicator {id}")))?;
    let matches = store
        .list_intel_matches(&IntelMatchQuery {
            ioc_id: Some(id),
            limit: 100,
            ..IntelMatchQuery::default()
        })
        .await
        .map_err(store_problem)?;
    Ok(Json(IocDetail {
        ioc: IocView::of(ioc, now_ms()),
        matches,
    }))
}

/// `POST /api/v1/intel/iocs`.
#[utoipa::path(post, path = IOCS, tag = "intel", operation_id = "intel_ioc_add",
    summary = "Add an indicator by hand",
    description = "Adds an indicator with the source `manual` (analyst, audited as `intel.ioc.add`): normalized \
like every source's, merged with the same indicator from other sources, checked against the warninglists, \
matched by the pipeline within seconds and looked for in stored events (retro-hunt).",
    request_body = ManualIocRequest,
    responses(
        (status = 201, description = "Stored", body = IocView),
        Unauthorized,
        Forbidden<TRIAGE>,
        JsonTooLarge,
        NotJsonMediaType,
        NotJson,
        InvalidIoc,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn add(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<ManualIocRequest>,
) -> Result<(StatusCode, Json<IocView>), Problem> {
    let service = service(&state)?;
    let invalid = |reason: String| intel_problem(IntelError::Invalid(reason));
    let kind = IocKind::from_name(&body.kind)
        .ok_or_else(|| invalid(format!("unknown kind {:?}", body.kind)))?;
    if body.confidence.is_some_and(|c| c > 100) {
        return Err(invalid("confidence is 0 to 100".into()));
    }
    if body.tags.len() > 64 || body.tags.iter().any(|t| t.is_empty() || t.len() > 256) {
        return Err(invalid("at most 64 tags of 1 to 256 bytes".into()));
    }
    if body.comment.as_ref().is_some_and(|c| c.len() > 1024) {
        return Err(invalid("the comment has at most 1024 bytes".into()));
    }
    let now = now_ms();
    let manual = ManualIoc {
        kind,
        value: body.value.clone(),
        tags: body.tags.clone(),
        confidence: body.confidence,
        to_ids: body.to_ids.unwrap_or(true),
        expires: body
            .expires_in_days
            .map(|d| now + i64::from(d.min(36_500)) * 86_400_000),
        comment: body.comment.clone(),
    };
    let normalized =
        dozor_intel::Ioc::new(kind, &body.value).map_err(|e| invalid(e.to_string()))?;
    service
        .add_manual(std::slice::from_ref(&manual))
        .await
        .map_err(intel_problem)?;
    let stored = service
        .store()
        .find_ioc(normalized.kind.as_str(), &normalized.value)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found("the indicator just stored"))?;
    audited(
        service.store().as_ref(),
        &caller.identity.subject,
        "intel.ioc.add",
        format!("ioc:{}", stored.id),
        json!({"kind": stored.kind, "value": stored.value, "expires": stored.expires}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(IocView::of(stored, now_ms()))))
}

/// `POST /api/v1/intel/iocs/{id}/enabled`.
#[utoipa::path(post, path = IOC_ENABLED, tag = "intel", operation_id = "intel_ioc_enabled",
    summary = "Enable or disable an indicator",
    description = "A disabled indicator is kept (and shown) but not matched (analyst, audited as \
`intel.ioc.enabled`); the pipeline's matcher follows within seconds.",
    params(("id" = i64, Path, description = "Indicator id", minimum = 1)),
    request_body = IocEnabledRequest,
    responses(
        (status = 200, description = "Changed", body = IocView),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchIoc,
        InvalidBody,
        JsonTooLarge,
        NotJsonMediaType,
        NotJson,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn set_enabled(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    id: PathId,
    JsonBody(body): JsonBody<IocEnabledRequest>,
) -> Result<Json<IocView>, Problem> {
    let id = ioc_id(&id)?;
    let service = service(&state)?;
    let now = now_ms();
    let ioc = service
        .store()
        .set_ioc_enabled(id, body.enabled, now)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| not_found(&format!("indicator {id}")))?;
    crate::intel::CHANGED.notify_waiters();
    audited(
        service.store().as_ref(),
        &caller.identity.subject,
        "intel.ioc.enabled",
        format!("ioc:{id}"),
        json!({"enabled": body.enabled}),
    )
    .await?;
    Ok(Json(IocView::of(ioc, now)))
}

/// `GET /api/v1/intel/sources`.
#[utoipa::path(get, path = SOURCES, tag = "intel", operation_id = "intel_source_list",
    summary = "Intelligence sources with their last sync",
    description = "Every source by name: its settings (secrets as `***`), schedule, cursor and the last sync's \
outcome (`ok`, `partial` with the skipped objects and why, or `failed` with the error; counts added, updated, \
expired, warninglisted and retro-hunt matches).",
    responses(
        (status = 200, description = "By name", body = IntelSourceList),
        Unauthorized,
        Forbidden<READ>,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn sources(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<IntelSourceList>, Problem> {
    let service = service(&state)?;
    let sources = service
        .store()
        .list_intel_sources()
        .await
        .map_err(store_problem)?;
    Ok(Json(IntelSourceList {
        sources: sources.into_iter().map(redacted).collect(),
    }))
}

/// `PUT /api/v1/intel/sources/{name}`.
#[utoipa::path(put, path = SOURCE, tag = "intel", operation_id = "intel_source_put",
    summary = "Create or change a source",
    description = "Stores a source's settings (admin, audited as `intel.source.put` without its secrets). The \
settings are parsed first: an unknown key, a missing `kind` or a bad value is a 422 `invalid-source` naming it; \
a local file or directory must lie below `intel.feeds_dir` (422 otherwise). \
A `key`, `password` or `token` given as `***` keeps the stored one. Its cursor and last sync are kept.",
    params(("name" = String, Path, description = "1 to 128 of A-Z a-z 0-9 _ . -, not starting with .",
        max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    request_body = IntelSourceRequest,
    responses(
        (status = 200, description = "Stored (secrets as `***`)", body = IntelSource),
        BadParameter,
        Unauthorized,
        Forbidden<ADMIN>,
        JsonTooLarge,
        NotJsonMediaType,
        NotJson,
        InvalidSource,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn put_source(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
    JsonBody(body): JsonBody<IntelSourceRequest>,
) -> Result<Json<IntelSource>, Problem> {
    let name = name.0;
    check_source_name(&name)?;
    let service = service(&state)?;
    let store = service.store();
    let previous = store.get_intel_source(&name).await.map_err(store_problem)?;
    let mut spec = body.spec;
    // `***` (as the API shows secrets) keeps the stored secret.
    if let (Some(obj), Some(prev)) = (
        spec.as_object_mut(),
        previous.as_ref().and_then(|p| p.spec.as_object()),
    ) {
        for key in ["key", "password", "token"] {
            if obj.get(key).and_then(|v| v.as_str()) == Some("***")
                && let Some(old) = prev.get(key)
            {
                obj.insert(key.into(), old.clone());
            }
        }
    }
    if let Some(obj) = spec.as_object_mut() {
        obj.remove("name");
    }
    let parsed = parse_spec(&name, &spec).map_err(intel_problem)?;
    check_location(&parsed, &service.config().feeds_dir).map_err(intel_problem)?;
    let interval_secs = body.interval_secs.unwrap_or(3600);
    if interval_secs != 0 && !(60..=604_800).contains(&interval_secs) {
        return Err(intel_problem(IntelError::BadSpec {
            name: name.clone(),
            reason: format!("interval_secs {interval_secs}: 0 or 60 to 604800"),
        }));
    }
    let stored = store
        .put_intel_source(&IntelSource {
            name: name.clone(),
            spec,
            enabled: body.enabled.unwrap_or(true),
            interval_secs,
            cursor: None,
            last_sync: None,
            updated_at: now_ms(),
            updated_by: caller.identity.subject.clone(),
        })
        .await
        .map_err(store_problem)?;
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "intel.source.put",
        format!("intel-source:{name}"),
        json!({"spec": redact_spec(&stored.spec), "enabled": stored.enabled, "interval_secs": stored.interval_secs}),
    )
    .await?;
    Ok(Json(redacted(stored)))
}

/// `DELETE /api/v1/intel/sources/{name}`.
#[utoipa::path(delete, path = SOURCE, tag = "intel", operation_id = "intel_source_delete",
    summary = "Delete a source",
    description = "Deletes a source's settings (admin, audited as `intel.source.delete`); the indicators it gave \
stay (disable or let them expire).",
    params(("name" = String, Path, description = "Source name", max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    responses(
        (status = 204, description = "Deleted"),
        BadParameter,
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchSource,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete_source(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<StatusCode, Problem> {
    check_source_name(&name.0)?;
    let service = service(&state)?;
    let store = service.store();
    if !store
        .delete_intel_source(&name.0)
        .await
        .map_err(store_problem)?
    {
        return Err(not_found(&format!("intelligence source {}", name.0)));
    }
    audited(
        store.as_ref(),
        &caller.identity.subject,
        "intel.source.delete",
        format!("intel-source:{}", name.0),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/intel/sources/{name}/sync`.
#[utoipa::path(post, path = SOURCE_SYNC, tag = "intel", operation_id = "intel_source_sync",
    summary = "Sync a source now",
    description = "Runs one incremental sync of the source from its cursor (analyst, audited as \
`intel.source.sync`) and answers with its outcome when it is done: a source that can't be reached or refuses \
the credentials gives `status: failed` with the error (and keeps its cursor); objects it could not import are \
counted in `skipped` with examples and the rest is stored. New indicators are looked for in stored events \
(`retro_matches`).",
    params(("name" = String, Path, description = "Source name", max_length = 128, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")),
    responses(
        (status = 200, description = "The sync's outcome", body = IntelSyncStatus),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchSource,
        SyncBusy,
        InvalidSource,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn sync(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<Json<IntelSyncStatus>, Problem> {
    check_source_name(&name.0)?;
    let service = service(&state)?;
    let status = service.sync(&name.0).await.map_err(intel_problem)?;
    audited(
        service.store().as_ref(),
        &caller.identity.subject,
        "intel.source.sync",
        format!("intel-source:{}", name.0),
        json!({"status": status.status, "added": status.added, "updated": status.updated,
            "skipped": status.skipped, "ignored": status.ignored, "error": status.error}),
    )
    .await?;
    Ok(Json(status))
}

/// The query parameters of `GET /api/v1/intel/matches`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct MatchParameters {
    /// Only this indicator's
    #[param(nullable = false, minimum = 1)]
    ioc_id: Option<i64>,
    /// Only this event's (`event.id`)
    #[param(nullable = false, format = "uuid")]
    event_id: Option<String>,
    /// `next_cursor` of the previous page
    #[param(nullable = false, pattern = r"^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// 1 to 1000, default 100
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

const MATCH_PARAMETERS: &[&str] = &["ioc_id", "event_id", "cursor", "limit"];

/// `GET /api/v1/intel/matches`.
#[utoipa::path(get, path = MATCHES, tag = "intel", operation_id = "intel_match_list",
    summary = "Indicator matches, newest first",
    description = "What matched what: the indicator, the event and its field, the observed value, whether it \
raised an alert (`alerted`: false when the indicator is not for detection or is warninglisted), whether a \
retro-hunt found it, and the sighting sent back to MISP (`none`, `pending`, `sent`, `failed`).",
    params(MatchParameters),
    responses(
        (status = 200, description = "One page", body = IntelMatchList),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn matches(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Json<IntelMatchList>, Problem> {
    params.only(MATCH_PARAMETERS)?;
    let service = service(&state)?;
    let limit = params.limit(100, 1000)?;
    let ioc_id = match params.get("ioc_id")? {
        None | Some("") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad_param("ioc_id", format!("{v:?}: an indicator id")))?,
        ),
    };
    let event_ids = match params.given("event_id")? {
        None => Vec::new(),
        Some(v) => vec![
            uuid::Uuid::parse_str(v)
                .map_err(|_| bad_param("event_id", format!("{v:?}: an event id (UUID)")))?
                .to_string(),
        ],
    };
    let before_id =
        match params.given("cursor")? {
            None => None,
            Some(c) => Some(c.parse::<i64>().ok().filter(|c| *c > 0).ok_or_else(|| {
                bad_param("cursor", "the cursor was not produced by this listing")
            })?),
        };
    let matches = service
        .store()
        .list_intel_matches(&IntelMatchQuery {
            ioc_id,
            event_ids,
            before_id,
            limit,
        })
        .await
        .map_err(store_problem)?;
    let next_cursor = (matches.len() == limit as usize)
        .then(|| matches.last().map(|m| m.id.to_string()))
        .flatten();
    Ok(Json(IntelMatchList {
        matches,
        next_cursor,
    }))
}
