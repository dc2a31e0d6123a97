//! File samples: agents upload files (`POST /api/v1/samples`), the server keeps each content
//! once (`<samples_dir>/<sha256>`, mode 0600, never served back), scans it with its own
//! engines and sends the findings through the normal ingest path, where the pipeline stores
//! them and raises alerts. Operators list the samples and their last verdict.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dozor_scan::{EventContext, FileReport};
use dozor_store::{
    MAX_SAMPLE_PATH, NewSample, Sample, SampleCursor, SampleQuery, is_sha256_hex, now_ms,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::access::{Caller, Params, PathId, TRIAGE, bad_param, not_found, store_problem};
use super::yara::service;
use crate::auth::{Identity, Role, authenticate};
use crate::ingest::{IngestReport, body, now_text, prepare_event};
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, BadParameterOrCursor, Forbidden, Unauthorized, problem_response,
};
use crate::scan::UPLOAD_PREFIX;
use crate::state::AppState;
use crate::state::ConnectionInfo;

pub(crate) const SAMPLES: &str = "/api/v1/samples";
pub(crate) const SAMPLE: &str = "/api/v1/samples/{sha256}";

/// The answer to an upload: what the server's engines found.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SampleUpload {
    /// SHA-256 of the content (lower-case hex).
    pub sha256: String,
    /// Bytes.
    pub size: u64,
    /// The content was written now; `false`: the server had it already.
    pub stored_new: bool,
    /// How many times it was uploaded (this one included).
    pub uploads: u64,
    /// The engines that looked at it, in order (`hashlist`, `yara`, `clamav`).
    pub engines: Vec<String>,
    /// One per detection: `engine`, `name` (rule, signature or list entry), `namespace`,
    /// `verdict` (malicious / suspicious), `severity`, `tags`, `meta`, `detail` and the alert
    /// `rule_id` it raises.
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<Value>,
    /// Engines that could not answer: `engine`, `message` (clamd's address included),
    /// `unavailable` (the engine is down rather than this file unscannable).
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<Value>,
    /// Why the file was not scanned (known good, too large).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Finding events queued for the pipeline (they raise the alerts).
    pub events: usize,
    /// The YARA rules version the scan used.
    pub yara_rules_version: String,
}

/// A sample as operators see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SampleView {
    pub sha256: String,
    pub size: u64,
    /// First upload, ms since the epoch.
    pub first_seen: i64,
    /// Latest upload, ms.
    pub last_seen: i64,
    pub uploads: u64,
    pub first_agent_id: Option<String>,
    pub last_agent_id: Option<String>,
    /// The file's path on the host of the latest upload.
    pub last_path: String,
    /// The last scan: `scanned_at`, `engines`, `findings`, `errors`, `skipped`,
    /// `yara_rules_version`.
    #[schema(value_type = Option<Object>)]
    pub last_verdict: Option<Value>,
    /// When it was scanned last, ms.
    pub verdict_at: Option<i64>,
}

impl From<Sample> for SampleView {
    fn from(s: Sample) -> SampleView {
        SampleView {
            sha256: s.sha256,
            size: s.size,
            first_seen: s.first_seen,
            last_seen: s.last_seen,
            uploads: s.uploads,
            first_agent_id: s.first_agent_id,
            last_agent_id: s.last_agent_id,
            last_path: s.last_path,
            last_verdict: s.last_verdict,
            verdict_at: s.verdict_at,
        }
    }
}

/// `GET /api/v1/samples`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SampleList {
    /// Newest `last_seen` first.
    pub samples: Vec<SampleView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The uploading agent: its client certificate, or (like ingest) a bearer token of the agent
/// role. Operators can't upload.
async fn agent_identity(
    state: &AppState,
    headers: &HeaderMap,
    certs: &[rustls_pki_types::CertificateDer<'static>],
) -> Result<Identity, Problem> {
    if let Some(registry) = &state.agents
        && !certs.is_empty()
        && let Some(agent) = registry.identify(certs).await?
    {
        registry.touch(&agent.subject).await;
        return Ok(agent);
    }
    let identity = authenticate(state.tokens.as_ref(), headers).await?;
    if identity.role != Role::Agent {
        return Err(Problem::forbidden(
            "samples are uploaded by agents, with their client certificate",
        ));
    }
    Ok(identity)
}

fn certificates(
    connection: Option<Extension<ConnectionInfo>>,
) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default()
}

/// A temporary upload file that hashes what is written to it.
struct HashingFile {
    tmp: tempfile::NamedTempFile,
    digest: ring::digest::Context,
    size: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.digest.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// The query parameters of `POST /api/v1/samples`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct UploadParameters {
    /// The file's path on the agent's host (at most 4096 bytes, no NUL)
    #[param(max_length = 4096, pattern = r"^[^\x00]*\S[^\x00]*$")]
    path: String,
    /// The SHA-256 the agent computed; a body with another one is refused (422)
    #[param(nullable = false, pattern = r"^([0-9a-fA-F]{64})?$")]
    sha256: Option<String>,
}

/// The names in [`UploadParameters`]: any other is refused.
const UPLOAD_PARAMETERS: &[&str] = &["path", "sha256"];

/// The query parameters of `GET /api/v1/samples`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct ListParameters {
    /// 1 to 1000, default 100
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(nullable = false)]
    cursor: Option<String>,
}

/// The names in [`ListParameters`]: any other is refused.
const LIST_PARAMETERS: &[&str] = &["limit", "cursor"];

problem_response! {
    BadUpload = 400, "`path` missing or too long, `sha256` malformed, corrupt compression";
    NoAgentCredential = 401, "No agent credential";
    UploadForbidden = 403, "Not an agent, or the server does not accept samples (scan.samples = false)";
    SampleTooLarge = 413, "Larger than scan.max_sample_bytes (`limit_name`, `limit`)";
    NotOctetStream = 415, "Not application/octet-stream, or an unsupported Content-Encoding";
    DigestMismatch = 422, "The body's SHA-256 is not the one in the query (`expected`, `actual`)";
    UploadQueueFull = 503, "The event queue is full: upload again after Retry-After (the sample is kept and not stored twice)",
        retry_after = "Seconds to wait";
    NoSuchSample = 404, "No such sample";
}

/// `POST /api/v1/samples?path=…&sha256=…`.
#[utoipa::path(post, path = SAMPLES, tag = "scanning", operation_id = "sample_upload",
    summary = "Upload a file sample (agents)",
    description = "An agent uploads a file: the raw bytes as application/octet-stream (optionally gzip- or \
zstd-compressed), streamed to disk with a running SHA-256 and the `scan.max_sample_bytes` limit. The content is \
kept once as `<samples_dir>/<sha256>` (mode 0600; never served back). It is scanned with the server's engines \
(hash lists, YARA, clamd); each finding becomes an event (`event.module` dozor-scan, `event.provider` \
dozor-server, `dozor.scan.trigger` sample, the agent's `agent.*` and `host.name`) that goes through the normal \
ingest path, where the pipeline stores it and raises an alert (rule id `dozor-scan/<engine>/...`, level from the \
finding's severity). An engine that can't answer (clamd down) is listed in `errors`; the others' findings count.",
    params(
        UploadParameters,
        crate::ingest::body::ContentEncodingHeader,
    ),
    request_body(description = "The file's bytes", content(("application/octet-stream"))),
    responses(
        (status = 200, description = "Stored and scanned", body = SampleUpload),
        BadUpload,
        NoAgentCredential,
        UploadForbidden,
        SampleTooLarge,
        NotOctetStream,
        DigestMismatch,
        UploadQueueFull,
    ),
    security(("agent_certificate" = [])))]
pub(crate) async fn upload(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    params: Result<Params, Problem>,
    mut body: Body,
) -> Response {
    let certs = certificates(connection);
    let result = match prepare_upload(&state, &headers, &certs, params).await {
        Ok(upload) => receive_and_scan(&state, &headers, upload, body).await,
        Err(problem) => {
            body::linger(&mut body).await;
            Err(problem)
        }
    };
    match result {
        Ok(answer) => Json(answer).into_response(),
        Err(problem) => problem.instance(SAMPLES).into_response(),
    }
}

/// What an upload is, once the request was checked.
struct Upload {
    identity: Identity,
    path: String,
    expected: Option<String>,
    encoding: body::Encoding,
}

async fn prepare_upload(
    state: &AppState,
    headers: &HeaderMap,
    certs: &[rustls_pki_types::CertificateDer<'static>],
    params: Result<Params, Problem>,
) -> Result<Upload, Problem> {
    let identity = agent_identity(state, headers, certs).await?;
    let scan = service(state)?;
    if !scan.config().samples {
        return Err(Problem::forbidden(
            "this server does not accept samples (scan.samples = false)",
        )
        .with("reason", "samples-disabled"));
    }
    let params = params?;
    params.only(UPLOAD_PARAMETERS)?;
    let path = params
        .get("path")?
        .ok_or_else(|| bad_param("path", "path (the file's path on the host) is required"))?
        .to_owned();
    if path.len() > MAX_SAMPLE_PATH || path.contains('\0') {
        return Err(bad_param(
            "path",
            format!("path must have at most {MAX_SAMPLE_PATH} bytes and no NUL"),
        ));
    }
    let expected = match params.get("sha256")? {
        Some(s) if is_sha256_hex(s) => Some(s.to_ascii_lowercase()),
        Some(_) => return Err(bad_param("sha256", "sha256 must be 64 hex digits")),
        None => None,
    };
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim().to_owned();
        if essence != "application/octet-stream" {
            return Err(Problem::unsupported_media_type(format!(
                "send the file's bytes as application/octet-stream, not {essence:?}"
            ))
            .with("supported_types", ["application/octet-stream"]));
        }
    }
    let encoding = body::content_encoding(headers)?;
    Ok(Upload {
        identity,
        path,
        expected,
        encoding,
    })
}

/// Stores the temporary file as `<samples_dir>/<sha256>` (mode 0600) unless that exists.
fn keep(tmp: tempfile::NamedTempFile, target: &Path) -> io::Result<bool> {
    if target.exists() {
        return Ok(false);
    }
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    match tmp.persist_noclobber(target) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.error),
    }
}

async fn receive_and_scan(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    upload: Upload,
    body: Body,
) -> Result<SampleUpload, Problem> {
    let scan = service(state)?.clone();
    let Some(api) = state.api.clone() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("samples need the store: this server has none attached"));
    };
    let dir = scan.config().samples_dir.clone();
    let limit = scan.config().max_sample_bytes;
    let room = scan
        .samples_quota()
        .reserve(crate::disk_quota::upload_size(headers, limit))?;
    let spool_dir = dir.clone();
    let tmp = tokio::task::spawn_blocking(move || {
        tempfile::Builder::new()
            .prefix(UPLOAD_PREFIX)
            .suffix(".tmp")
            .tempfile_in(&spool_dir)
    })
    .await
    .map_err(|e| Problem::internal(format!("spool task failed: {e}")))?
    .map_err(|e| {
        tracing::error!(
            "cannot create a sample spool file in {}: {e}",
            dir.display()
        );
        Problem::internal("cannot create a sample spool file")
    })?;
    let writer = HashingFile {
        tmp,
        digest: ring::digest::Context::new(&ring::digest::SHA256),
        size: 0,
    };
    let writer = body::receive(body, headers, upload.encoding, limit, writer)
        .await
        .map_err(|e| e.into_problem("scan.max_sample_bytes"))?;
    let sha256 = crate::digest::hex(writer.digest.finish().as_ref());
    let size = writer.size;
    if let Some(expected) = &upload.expected
        && *expected != sha256
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sha256-mismatch",
            "SHA-256 mismatch",
        )
        .detail(format!(
            "the body's SHA-256 is {sha256}, not the {expected} the query names"
        ))
        .with("expected", expected)
        .with("actual", &sha256));
    }
    let target = dir.join(&sha256);
    let keep_target = target.clone();
    let tmp = writer.tmp;
    let stored_new = tokio::task::spawn_blocking(move || keep(tmp, &keep_target))
        .await
        .map_err(|e| Problem::internal(format!("store task failed: {e}")))?
        .map_err(|e| {
            tracing::error!("cannot store sample {sha256}: {e}");
            Problem::internal("cannot store the sample")
        })?;
    if stored_new {
        room.keep(size);
    }
    let agent_id = upload.identity.subject.clone();
    let received_at = chrono::Utc::now();
    let (sample, _first) = api
        .store
        .record_sample(&NewSample {
            sha256: sha256.clone(),
            size,
            agent_id: Some(agent_id.clone()),
            path: upload.path.clone(),
            at: received_at.timestamp_millis(),
        })
        .await
        .map_err(store_problem)?;
    tracing::info!(
        agent_id,
        sha256,
        size,
        stored_new,
        path = upload.path,
        "sample received"
    );

    let version = scan.version();
    let mut report = scan.scan_file(target).await.map_err(Problem::internal)?;
    report.path = PathBuf::from(&upload.path);
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_else(|_| json!({}));
            v["rule_id"] = json!(f.rule_id());
            v
        })
        .collect();
    let errors: Vec<Value> = report
        .errors
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or_else(|_| json!({})))
        .collect();
    let engines: Vec<String> = report.engines.iter().map(|e| (*e).to_owned()).collect();
    let verdict = json!({
        "scanned_at": now_ms(),
        "engines": engines,
        "findings": findings,
        "errors": errors,
        "skipped": report.skipped,
        "yara_rules_version": version,
    });
    if let Err(e) = api
        .store
        .set_sample_verdict(&sha256, &verdict, now_ms())
        .await
    {
        tracing::warn!(sha256, "recording the sample's verdict failed: {e}");
    }

    let agent = match api.store.get_agent(&agent_id).await {
        Ok(agent) => agent,
        Err(e) => {
            tracing::warn!(agent_id, "reading the agent for a sample's events: {e}");
            None
        }
    };
    let hostname = agent.as_ref().map(|a| a.facts.hostname.clone());
    let now = now_text(received_at);
    let mut events = Vec::new();
    for mut event in sample_events(&report, &agent_id, hostname.as_deref()) {
        event["event"]["id"] = json!(Uuid::now_v7().to_string());
        match prepare_event(event, &upload.identity, &state.validator, &now) {
            Ok(e) => events.push(e),
            Err(errors) => tracing::error!(sha256, ?errors, "a sample finding event is invalid"),
        }
    }
    let mut ingest = IngestReport::default();
    crate::ingest::submit(state, &upload.identity, received_at, events, &mut ingest).await?;
    Ok(SampleUpload {
        sha256,
        size,
        stored_new,
        uploads: sample.uploads,
        engines,
        findings,
        errors,
        skipped: report.skipped,
        events: ingest.accepted,
        yara_rules_version: version,
    })
}

/// The finding events of a sample's scan, with the uploading agent and its host.
fn sample_events(report: &FileReport, agent_id: &str, hostname: Option<&str>) -> Vec<Value> {
    let ctx = EventContext {
        provider: "dozor-server",
        trigger: "sample",
        include_hashes: true,
        command_id: None,
        process: None,
    };
    let path = report.path.to_string_lossy().into_owned();
    dozor_scan::finding_events(report, &ctx)
        .into_iter()
        .map(|mut event| {
            let mut agent = json!({ "id": agent_id });
            if let Some(h) = hostname {
                agent["name"] = json!(h);
                event["host"] = json!({ "name": h, "hostname": h });
            }
            event["agent"] = agent;
            windows_file_fields(&mut event, &path);
            event
        })
        .collect()
}

/// `file.name` / `directory` / `extension` of a Windows path (`C:\dir\evil.exe`), which the
/// server's own path type does not split.
fn windows_file_fields(event: &mut Value, path: &str) {
    if !path.contains('\\') || path.contains('/') {
        return;
    }
    let Some(file) = event.get_mut("file").and_then(Value::as_object_mut) else {
        return;
    };
    let (dir, name) = match path.rsplit_once('\\') {
        Some((d, n)) => (Some(d), n),
        None => (None, path),
    };
    file.insert("name".into(), json!(name));
    match dir.filter(|d| !d.is_empty()) {
        Some(d) => file.insert("directory".into(), json!(d)),
        None => file.remove("directory"),
    };
    match name.rsplit_once('.').filter(|(stem, _)| !stem.is_empty()) {
        Some((_, ext)) => file.insert("extension".into(), json!(ext)),
        None => file.remove("extension"),
    };
}

/// `HEAD /api/v1/samples/{sha256}`: 200 when the server has the sample, 404 when not. For
/// agents (client certificate) and operators (any role).
#[utoipa::path(head, path = SAMPLE, tag = "scanning", operation_id = "sample_exists",
    summary = "Whether the server has the sample",
    description = "Whether the server has the sample, so agents skip uploading it again. For agents (client \
certificate) and operators (any role). No body.",
    params(("sha256" = String, Path, description = "SHA-256, hex")),
    // A HEAD answer has no body: these are statuses only.
    responses(
        (status = 200, description = "The server has it"),
        (status = 404, description = "It does not"),
        (status = 401, description = "No credential"),
    ),
    security(("agent_certificate" = []), ("bearer" = [])))]
pub(crate) async fn exists(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    sha256: PathId,
) -> Response {
    let certs = certificates(connection);
    let known = async {
        let by_cert = match (&state.agents, certs.is_empty()) {
            (Some(registry), false) => registry.identify(&certs).await?,
            _ => None,
        };
        if by_cert.is_none() {
            authenticate(state.tokens.as_ref(), &headers).await?;
        }
        let Some(api) = &state.api else {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api-not-configured",
                "Service unavailable",
            ));
        };
        if !is_sha256_hex(&sha256.0) {
            return Ok(false);
        }
        Ok(api
            .store
            .get_sample(&sha256.0)
            .await
            .map_err(store_problem)?
            .is_some())
    };
    match known.await {
        Ok(true) => StatusCode::OK.into_response(),
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// `GET /api/v1/samples?limit=&cursor=` (analyst and admin).
#[utoipa::path(get, path = SAMPLES, tag = "scanning", operation_id = "samples",
    summary = "Samples, newest first",
    description = "Uploaded samples, newest upload first (analyst or admin).",
    params(ListParameters),
    responses(
        (status = 200, description = "The samples", body = SampleList),
        BadParameterOrCursor,
        Unauthorized,
        Forbidden<TRIAGE>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    caller: Caller<TRIAGE>,
    params: Params,
) -> Result<Json<SampleList>, Problem> {
    params.only(LIST_PARAMETERS)?;
    let limit = params.limit(100, 1000)?;
    let after = match params.get("cursor")? {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            Problem::new(StatusCode::BAD_REQUEST, "invalid-cursor", "Invalid cursor")
                .detail("the cursor was not produced by this listing")
        })?),
    };
    let samples = caller
        .api
        .store
        .list_samples(&SampleQuery { limit, after })
        .await
        .map_err(store_problem)?;
    let next_cursor = (samples.len() == limit as usize)
        .then(|| {
            samples
                .last()
                .map(|s| format!("{}-{}", s.last_seen, s.sha256))
        })
        .flatten();
    Ok(Json(SampleList {
        samples: samples.into_iter().map(SampleView::from).collect(),
        next_cursor,
    }))
}

fn parse_cursor(text: &str) -> Option<SampleCursor> {
    let (at, sha) = text.split_once('-')?;
    (is_sha256_hex(sha)).then_some(())?;
    Some(SampleCursor {
        last_seen: at.parse().ok()?,
        sha256: sha.to_ascii_lowercase(),
    })
}

/// `GET /api/v1/samples/{sha256}` (analyst and admin): metadata and the last verdict, never
/// the bytes.
#[utoipa::path(get, path = SAMPLE, tag = "scanning", operation_id = "sample",
    summary = "One sample's metadata and last verdict",
    description = "One sample's metadata and last verdict (analyst or admin). The bytes are never served.",
    params(("sha256" = String, Path, description = "SHA-256, hex")),
    responses(
        (status = 200, description = "The sample", body = SampleView),
        Unauthorized,
        Forbidden<TRIAGE>,
        NoSuchSample,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    caller: Caller<TRIAGE>,
    sha256: PathId,
) -> Result<Json<SampleView>, Problem> {
    caller
        .api
        .store
        .get_sample(&sha256.0)
        .await
        .map_err(store_problem)?
        .map(|s| Json(SampleView::from(s)))
        .ok_or_else(|| not_found(&format!("sample {}", sha256.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_parameters_are_the_accepted_ones() {
        use crate::openapi::query_parameter_names as names;
        assert_eq!(names::<UploadParameters>(), UPLOAD_PARAMETERS);
        assert_eq!(names::<ListParameters>(), LIST_PARAMETERS);
    }

    #[test]
    fn windows_paths_are_split() {
        let mut e = json!({"file": {"path": "C:\\Users\\bob\\evil.exe", "name": "C:\\Users\\bob\\evil.exe"}});
        windows_file_fields(&mut e, "C:\\Users\\bob\\evil.exe");
        assert_eq!(e["file"]["name"], "evil.exe");
        assert_eq!(e["file"]["directory"], "C:\\Users\\bob");
        assert_eq!(e["file"]["extension"], "exe");
        let mut e = json!({"file": {"path": "/tmp/a\\b", "name": "a\\b"}});
        windows_file_fields(&mut e, "/tmp/a\\b");
        assert_eq!(e["file"]["name"], "a\\b", "unix paths are left alone");
    }

    #[test]
    fn cursors() {
        let sha = "ab".repeat(32);
        let c = parse_cursor(&format!("123-{sha}")).unwrap();
        assert_eq!((c.last_seen, c.sha256.as_str()), (123, sha.as_str()));
        assert!(parse_cursor("x-y").is_none());
        assert!(parse_cursor("123").is_none());
    }
}
