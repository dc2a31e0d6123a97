//! Threat-intelligence exchange routes (issue 14): a document imported whole (MISP, STIX,
//! CSV, freetext), the indicators exported as a STIX 2.1 bundle, and Dozor's own indicators
//! and sightings as a MISP feed (`manifest.json`, `<uuid>.json`, `hashes.csv`) that a MISP
//! instance adds as a feed with this URL and an `Authorization: Bearer <viewer token>`
//! header.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_intel::IocKind;
use dozor_intel_sources::document::Format;
use dozor_intel_sources::export::{MispFeedFiles, stix_bundle};
use dozor_model::IntelImportReport;
use dozor_store::{IocQuery, now_ms};
use serde_json::json;

use super::access::{Caller, Params, PathId, READ, TRIAGE, bad_param, not_found};
use crate::intel::IntelService;
use crate::intel::exchange::{ImportError, MAX_EXPORT, collect_iocs, ioc_of};
use crate::ops::{audited, store_problem};
use crate::problem::Problem;
use crate::problem_responses::{BadParameter, Forbidden, Unauthorized, problem_response};
use crate::state::AppState;

pub(crate) const IMPORT: &str = "/api/v1/intel/import";
pub(crate) const EXPORT_STIX: &str = "/api/v1/intel/export/stix";
pub(crate) const FEED_MANIFEST: &str = "/api/v1/intel/export/misp-feed/manifest.json";
pub(crate) const FEED_HASHES: &str = "/api/v1/intel/export/misp-feed/hashes.csv";
pub(crate) const FEED_EVENT: &str = "/api/v1/intel/export/misp-feed/{file}";

/// Largest document `POST /api/v1/intel/import` reads.
pub(crate) const MAX_IMPORT_BYTES: usize = 64 << 20;
/// The source name of imports that name none.
const DEFAULT_IMPORT_SOURCE: &str = "import";
/// Longest source name, bytes (as `PUT /api/v1/intel/sources/{name}` takes).
const MAX_SOURCE_NAME: usize = 128;
/// Longest tag in a filter, characters.
const MAX_TAG_FILTER: usize = 256;
/// The media type of STIX 2.1 content (as TAXII 2.1 serves it).
const STIX_JSON: &str = "application/stix+json;version=2.1";
/// Skipped indicators named in `X-Dozor-Skipped-Examples`.
const SKIPPED_HEADER_EXAMPLES: usize = 20;

problem_response! {
    IntelNotConfigured = 503, "The API (a store) is not configured on this server";
    ImportTooLarge = 413, "Larger than 64 MiB (`limit_name` intel.max_import_bytes)";
    InvalidImport = 422, "Empty, not a document of the `format` given, or (`auto`) JSON that is neither STIX nor MISP (`detail` says where)";
    NoSuchFeedFile = 404, "No such file in the feed (the manifest lists the event)";
}

// The same as api::intel's (kept apart so the two route files change independently).
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

/// A source name as `PUT /api/v1/intel/sources/{name}` takes it.
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
            "source",
            format!("{name:?}: 1 to {MAX_SOURCE_NAME} of A-Z a-z 0-9 _ . -, not starting with ."),
        ))
    }
}

fn invalid_import(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-import",
        "Invalid document",
    )
    .detail(detail)
}

/// The document formats of `format` (`auto`: sniffed).
// Describes the query only: never built. `openapi::document` adds `""` to the enum.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum ImportFormat {
    Auto,
    Misp,
    Stix,
    Csv,
    Freetext,
}

/// The query parameters of `POST /api/v1/intel/import`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct ImportParameters {
    /// The source the indicators are stored under (default `import`): 1 to 128 of
    /// A-Z a-z 0-9 _ . -, not starting with .
    #[param(
        nullable = false,
        max_length = 128,
        pattern = r"^([A-Za-z0-9_-][A-Za-z0-9_.-]*)?$"
    )]
    source: Option<String>,
    /// The document's format; `auto` (default) tells it from the content
    #[param(nullable = false, inline)]
    format: Option<ImportFormat>,
}

/// Reads the body: at most [`MAX_IMPORT_BYTES`] (a larger `Content-Length` is refused before
/// a byte is read; a longer body while reading).
async fn import_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Problem> {
    let too_large = || {
        Problem::too_large(
            "intel.max_import_bytes",
            MAX_IMPORT_BYTES as u64,
            format!("an imported document may have at most {MAX_IMPORT_BYTES} bytes"),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_IMPORT_BYTES as u64)
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_IMPORT_BYTES)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Problem::bad_request("unreadable-body", inner.to_string())
            }
        })?;
    Ok(bytes.to_vec())
}

/// `POST /api/v1/intel/import`.
#[utoipa::path(post, path = IMPORT, tag = "intel", operation_id = "intel_import",
    summary = "Import a document of indicators",
    description = "Reads one document — a MISP event (`{\"Event\": …}` or the bare event, as a feed's \
`<uuid>.json` or PyMISP writes it), a list of events, an `events/restSearch` or `attributes/restSearch` \
answer; a STIX 2.x bundle; a CSV list (the value in the first column, its kind guessed, `#` comments); or \
freetext (every indicator on every line, defanged forms too) — and stores its indicators under `source` \
(default `import`) the way a sync does: checked against the warninglists, merged per (kind, value) with \
the other sources', matched by the pipeline within seconds and looked for in stored events (retro-hunt). \
Analyst or admin, audited as `intel.import`. `format=auto` (default) tells STIX and MISP JSON by their \
shape; other JSON is refused (422); text whose first line starts with an indicator and a comma is CSV, \
other text freetext. What could not be imported (unsupported STIX patterns, values that are no valid \
indicator, lines without one) is counted in `skipped` with the first 100 as `object: reason` and the \
rest is stored (`status: partial`). MISP attributes that are not indicators (`link`, `comment`, `text` \
…) and deleted ones are counted in `ignored` by reason and leave the status `ok`. At most 64 MiB.",
    params(ImportParameters),
    request_body(description = "The document's bytes (any media type; at most 64 MiB)",
        content(("application/octet-stream"), ("application/json"), ("text/plain"), ("text/csv"))),
    responses(
        (status = 200, description = "Stored: counts and what was skipped, and why", body = IntelImportReport),
        BadParameter,
        Unauthorized,
        Forbidden<TRIAGE>,
        ImportTooLarge,
        InvalidImport,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn import(
    caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<IntelImportReport>, Problem> {
    params.only(&["source", "format"])?;
    let source = params
        .get("source")?
        .unwrap_or(DEFAULT_IMPORT_SOURCE)
        .to_owned();
    check_source_name(&source)?;
    let format = match params.get("format")? {
        None | Some("auto") => None,
        Some(name) => Some(Format::from_name(name).ok_or_else(|| {
            bad_param(
                "format",
                format!("{name:?}: one of auto, misp, stix, csv, freetext"),
            )
        })?),
    };
    let service = service(&state)?;
    let bytes = import_body(&headers, body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_import("the document is empty"));
    }
    let size = bytes.len() as u64;
    let imported = service
        .import(&source, format, "the uploaded document", bytes)
        .await
        .map_err(|e| match e {
            ImportError::Document(e) => invalid_import(e.to_string()),
            ImportError::Intel(crate::intel::IntelError::Store(e)) => store_problem(e),
            ImportError::Intel(e) => Problem::internal(e.to_string()),
        })?;
    let result = imported.status;
    audited(
        service.store().as_ref(),
        &caller.identity.subject,
        "intel.import",
        format!("intel-source:{source}"),
        json!({"format": imported.format.as_str(), "bytes": size, "added": result.added,
            "updated": result.updated, "unchanged": result.unchanged, "skipped": result.skipped,
            "ignored": result.ignored, "warninglisted": result.warninglisted}),
    )
    .await?;
    Ok(Json(IntelImportReport {
        source,
        format: imported.format.as_str().to_owned(),
        bytes: size,
        result,
    }))
}

/// The query parameters of `GET /api/v1/intel/export/stix`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct StixParameters {
    /// Only this kind (`ip`, `cidr`, `domain`, `hostname`, `url`, `md5`, `sha1`, `sha256`,
    /// `sha512`, `imphash`, `filename`, `email`, `registry_key`, `user_agent`, `ja3`)
    #[param(nullable = false, inline)]
    kind: Option<KindName>,
    /// Given by this source
    #[param(nullable = false, max_length = 128)]
    source: Option<String>,
    /// Carrying this tag
    #[param(nullable = false, max_length = 256)]
    tag: Option<String>,
    /// The value contains this (case-insensitive)
    #[param(nullable = false, max_length = 4096)]
    q: Option<String>,
    /// Only active (enabled, not expired) indicators (`true`) or every one (default)
    #[param(nullable = false)]
    active: Option<bool>,
}

/// An indicator kind.
// Describes the query only: never built. `openapi::document` adds `""` to the enum.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum KindName {
    Ip,
    Cidr,
    Domain,
    Hostname,
    Url,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    Imphash,
    Filename,
    Email,
    RegistryKey,
    UserAgent,
    Ja3,
}

fn header_value(text: &str) -> HeaderValue {
    // Values are indicator kinds and hex digests; anything else is left out, not escaped.
    let safe: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect();
    HeaderValue::from_str(&safe).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `GET /api/v1/intel/export/stix`.
#[utoipa::path(get, path = EXPORT_STIX, tag = "intel", operation_id = "intel_export_stix",
    summary = "The indicators as a STIX 2.1 bundle",
    description = "A STIX 2.1 bundle of the stored indicators chosen by the filters (the same as \
`GET /api/v1/intel/iocs`), in id order, at most 100,000: one `indicator` each with a `[… = '…']` pattern, \
`valid_from`/`valid_until`, `confidence`, tags as `labels` and TLP tags as the standard TLP markings, \
and ids stable across exports (UUID v5 of kind and value), so a consumer sees updates, not new objects. \
Kinds STIX patterns can't express (`imphash`, `ja3`) are left out and counted in `X-Dozor-Skipped`; \
`X-Dozor-Truncated: true` says the filters chose more than 100,000.",
    params(StixParameters),
    responses(
        (status = 200, description = "The bundle", body = Object, content_type = "application/stix+json",
            headers(
                ("X-Dozor-Exported" = u64, description = "Indicators in the bundle"),
                ("X-Dozor-Skipped" = u64, description = "Indicators left out (no STIX pattern for their kind)"),
                ("X-Dozor-Skipped-Examples" = String, description = "The first 20 left out, `kind:value`, comma-separated"),
                ("X-Dozor-Truncated" = bool, description = "The filters chose more than 100,000 indicators"),
            )),
        BadParameter,
        Unauthorized,
        Forbidden<READ>,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn export_stix(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Response, Problem> {
    params.only(&["kind", "source", "tag", "q", "active"])?;
    let kind = match params.get("kind")? {
        None => None,
        Some(k) => Some(IocKind::from_name(k).ok_or_else(|| {
            bad_param(
                "kind",
                format!(
                    "{k:?}: one of ip, cidr, domain, hostname, url, md5, sha1, sha256, sha512, imphash, filename, email, registry_key, user_agent, ja3"
                ),
            )
        })?),
    };
    let active = match params.get("active")? {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(bad_param("active", format!("{other:?}: true or false"))),
    };
    let query = IocQuery {
        kind: kind.map(|k| k.as_str().to_owned()),
        contains: params.text("q", dozor_store::MAX_IOC_VALUE)?,
        source: params.text("source", MAX_SOURCE_NAME)?,
        tag: params.text("tag", MAX_TAG_FILTER)?,
        active_at: active.then(now_ms),
        ..IocQuery::default()
    };
    let service = service(&state)?;
    let (stored, truncated) = collect_iocs(service.store().as_ref(), &query, MAX_EXPORT)
        .await
        .map_err(store_problem)?;
    let (bundle, skipped, exported) = tokio::task::spawn_blocking(move || {
        let iocs: Vec<_> = stored.iter().filter_map(ioc_of).collect();
        let (bundle, skipped) = stix_bundle(&iocs, "Dozor");
        let exported = iocs.len() - skipped.len();
        (serde_json::to_vec(&bundle), skipped, exported)
    })
    .await
    .map_err(|e| Problem::internal(format!("export task failed: {e}")))?;
    let bundle = bundle.map_err(|e| Problem::internal(e.to_string()))?;
    let examples: Vec<&str> = skipped
        .iter()
        .take(SKIPPED_HEADER_EXAMPLES)
        .map(|s| s.object.as_str())
        .collect();
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(STIX_JSON))],
        bundle,
    )
        .into_response();
    let h = response.headers_mut();
    h.insert("x-dozor-exported", HeaderValue::from(exported as u64));
    h.insert("x-dozor-skipped", HeaderValue::from(skipped.len() as u64));
    h.insert(
        "x-dozor-skipped-examples",
        header_value(&examples.join(", ")),
    );
    h.insert(
        "x-dozor-truncated",
        HeaderValue::from_static(if truncated { "true" } else { "false" }),
    );
    Ok(response)
}

/// Dozor's own feed (the installation is told by the server's CA certificate, which it keeps).
async fn own_feed(state: &AppState) -> Result<MispFeedFiles, Problem> {
    service(state)?
        .own_feed(&state.ca_pem)
        .await
        .map_err(store_problem)
}

const FEED_DESCRIPTION: &str = "Dozor's own indicators — the ones added by hand (source `manual`) and every \
one that matched an event — with their sightings (the matches, newest 100 each), as one MISP event in MISP's \
feed format. A MISP instance adds it as a feed (`Settings → Feeds → Add feed`, input source network, URL \
`https://<server>/api/v1/intel/export/misp-feed`, headers `Authorization: Bearer <a viewer's token>`). The \
event's uuid is stable for this server (derived from its CA certificate) and its timestamp moves only when an \
indicator or a sighting does, so MISP updates one event instead of adding new ones.";

/// `GET /api/v1/intel/export/misp-feed/manifest.json`.
#[utoipa::path(get, path = FEED_MANIFEST, tag = "intel", operation_id = "intel_feed_manifest",
    summary = "MISP feed of Dozor's own indicators: the manifest",
    description = FEED_DESCRIPTION,
    responses(
        (status = 200, description = "Event uuid → `{info, date, timestamp, Orgc, Tag, …}`", body = Object),
        Unauthorized,
        Forbidden<READ>,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn feed_manifest(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Response, Problem> {
    let feed = own_feed(&state).await?;
    Ok(Json(feed.manifest).into_response())
}

/// `GET /api/v1/intel/export/misp-feed/hashes.csv`.
#[utoipa::path(get, path = FEED_HASHES, tag = "intel", operation_id = "intel_feed_hashes",
    summary = "MISP feed of Dozor's own indicators: hashes.csv",
    description = "`md5 of an attribute value,event uuid` per line, for MISP's feed caching and correlation.",
    responses(
        (status = 200, description = "The lines", body = String, content_type = "text/csv"),
        Unauthorized,
        Forbidden<READ>,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn feed_hashes(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Response, Problem> {
    let feed = own_feed(&state).await?;
    let mut csv = String::with_capacity(feed.hashes.len() * 70);
    for (hash, uuid) in &feed.hashes {
        csv.push_str(hash);
        csv.push(',');
        csv.push_str(uuid);
        csv.push('\n');
    }
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"))],
        csv,
    )
        .into_response())
}

/// `GET /api/v1/intel/export/misp-feed/{file}`.
#[utoipa::path(get, path = FEED_EVENT, tag = "intel", operation_id = "intel_feed_event",
    summary = "MISP feed of Dozor's own indicators: one event",
    description = "The event the manifest lists, `{\"Event\": {…, \"Attribute\": [{…, \"Sighting\": […]}]}}`.",
    params(("file" = String, Path, description = "`<event uuid>.json`, as the manifest lists it",
        max_length = 64, pattern = r"^[0-9a-f-]{36}\.json$")),
    responses(
        (status = 200, description = "The event", body = Object),
        Unauthorized,
        Forbidden<READ>,
        NoSuchFeedFile,
        IntelNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn feed_event(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    file: PathId,
) -> Result<Response, Problem> {
    let missing = || not_found(&format!("feed file {:?}", file.0));
    let uuid = file.0.strip_suffix(".json").ok_or_else(missing)?;
    // Checked before the store is read: only this server's event exists.
    if uuid != crate::intel::exchange::feed_event_uuid(&state.ca_pem) {
        service(&state)?;
        return Err(missing());
    }
    let feed = own_feed(&state).await?;
    let event = feed
        .events
        .into_iter()
        .find(|(u, _)| u == uuid)
        .map(|(_, e)| e)
        .ok_or_else(missing)?;
    Ok(Json(event).into_response())
}
