//! YARA rules: operators read and (admins) change the server's rule files; agents fetch the
//! rules that compile. See [`crate::scan`] for the directory, namespaces and the version.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::access::{ADMIN, Caller, PathId, READ, bad_param, not_found};
use crate::ops::audited;
use crate::problem::Problem;
use crate::problem_responses::{Forbidden, NoAgentCertificate, Unauthorized, problem_response};
use crate::scan::{MAX_RULE_UPLOAD_BYTES, RuleChangeError, ScanService, valid_rule_name};
use crate::state::AppState;
use crate::state::ConnectionInfo;

pub(crate) const YARA_RULES: &str = "/api/v1/yara/rules";
pub(crate) const YARA_RULE: &str = "/api/v1/yara/rules/{name}";
pub(crate) const AGENT_YARA_RULES: &str = "/api/v1/agents/yara-rules";

/// One rule file.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct YaraRuleInfo {
    /// File name (`[A-Za-z0-9_.-]`, `.yar` or `.yara`).
    pub name: String,
    /// Its YARA namespace, `server/<name without extension>`: alerts of its rules have the
    /// rule id `dozor-scan/yara/<namespace>.<rule>`.
    pub namespace: String,
    /// Bytes.
    pub size: u64,
    /// Last modification, ms since the epoch.
    pub modified: i64,
    /// Rules in it (0 when it does not compile).
    pub rule_count: usize,
    /// Why the file is not used: yara-x's error naming the file, line and column.
    pub error: Option<String>,
}

/// `GET /api/v1/yara/rules`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct YaraRuleList {
    /// The rules version agents are told in heartbeat answers: SHA-256 over the files that
    /// compile.
    pub version: String,
    /// Rules in use (all files that compile).
    pub rule_count: usize,
    /// Every rule file, by name, the ones that do not compile included.
    pub rules: Vec<YaraRuleInfo>,
    /// Files of the directory that can't be used at all (`name: why`), e.g. names the API
    /// can't manage or symbolic links.
    pub errors: Vec<String>,
}

/// The answer to a rule change.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct YaraRuleChange {
    pub name: String,
    /// The rules version after the change.
    pub version: String,
    /// Rules in the file.
    pub rule_count: usize,
    /// The file is new.
    pub created: bool,
}

/// One file of `GET /api/v1/agents/yara-rules`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentRuleFile {
    /// File name on the server.
    pub name: String,
    /// The namespace to compile it in (`server/<name without extension>`), so that alerts
    /// have the same rule ids wherever the rule matched.
    pub namespace: String,
    /// The rule text.
    pub source: String,
}

/// `GET /api/v1/agents/yara-rules`: the server's rules that compile.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentYaraRules {
    /// The same version as `yara_rules_version` in heartbeat answers.
    pub version: String,
    pub files: Vec<AgentRuleFile>,
}

problem_response! {
    /// `api-not-configured` (no store) or `scan-not-configured` (no scanning in this process).
    ScanNotConfigured = 503, "The API or file scanning is not configured on this server";
    NoSuchRuleFile = 404, "No such rule file";
    BadRuleFileName = 400, "Not a valid file name";
    RuleFileConflict = 409, "Another file has the same name without its extension (a.yar / a.yara), or the name is the file generated from threat intelligence (dozor-intel-hashes.yar)";
    GeneratedRuleFile = 409, "The file generated from threat intelligence (dozor-intel-hashes.yar) is not changed through the API";
    RuleFileTooLarge = 413, "Larger than 1 MiB (`limit_name` yara.max_rule_bytes)";
    NotText = 415, "Not text/plain";
    InvalidRuleFile = 422, "Does not compile (`detail`: yara-x's error; `line`, `column`) or is not UTF-8";
    AgentRulesUnavailable = 503, "Agents need TLS and a store (and file scanning set up in this process)";
}

pub(crate) fn service(state: &AppState) -> Result<&Arc<ScanService>, Problem> {
    state.scan.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "scan-not-configured",
            "Service unavailable",
        )
        .detail("file scanning is not set up in this server process")
    })
}

#[utoipa::path(get, path = YARA_RULES, tag = "scanning", operation_id = "yara_rules",
    summary = "The server's YARA rule files and the rules version",
    description = "The server's YARA rule files: each with its size, modification time (ms), rule count and, when it \
does not compile, yara-x's error (file, line, column). `version` is what agents are told in heartbeat answers \
(`yara_rules_version`): a SHA-256 over the names and contents of the files that compile. Files of the directory \
that can't be used at all are listed in `errors`.",
    responses(
        (status = 200, description = "The rule files", body = YaraRuleList),
        Unauthorized,
        Forbidden<READ>,
        ScanNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<YaraRuleList>, Problem> {
    let set = service(&state)?.rules();
    Ok(Json(YaraRuleList {
        version: set.version.clone(),
        rule_count: set.rule_count,
        rules: set
            .files
            .iter()
            .map(|f| YaraRuleInfo {
                name: f.name.clone(),
                namespace: f.namespace.clone(),
                size: f.size,
                modified: f.modified,
                rule_count: f.rule_count,
                error: f.error.clone(),
            })
            .collect(),
        errors: set.problems.clone(),
    }))
}

/// The rule file's text (also of a file that does not compile, so it can be fixed).
#[utoipa::path(get, path = YARA_RULE, tag = "scanning", operation_id = "yara_rule",
    summary = "One rule file's text",
    params(("name" = String, Path, description = "Rule file name, e.g. team.yar")),
    responses(
        (status = 200, description = "The file's text (also of a file that does not compile)", body = String, content_type = "text/plain; charset=utf-8"),
        Unauthorized,
        Forbidden<READ>,
        NoSuchRuleFile,
        ScanNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<Response, Problem> {
    let set = service(&state)?.rules();
    let file = set
        .file(&name.0)
        .ok_or_else(|| not_found(&format!("YARA rule file {:?}", name.0)))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        file.source.to_string(),
    )
        .into_response())
}

/// Reads a rule text body: text/plain (or no Content-Type), UTF-8, at most
/// [`MAX_RULE_UPLOAD_BYTES`].
async fn rule_text(headers: &HeaderMap, body: Body) -> Result<String, Problem> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim().to_owned();
        if !["text/plain", "text/x-yara", "application/octet-stream"].contains(&essence.as_str()) {
            return Err(Problem::unsupported_media_type(format!(
                "send the rule text as text/plain, not {essence:?}"
            ))
            .with("supported_types", ["text/plain"]));
        }
    }
    let too_large = || {
        Problem::too_large(
            "yara.max_rule_bytes",
            MAX_RULE_UPLOAD_BYTES as u64,
            format!("a rule file may have at most {MAX_RULE_UPLOAD_BYTES} bytes"),
        )
    };
    if headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_RULE_UPLOAD_BYTES as u64)
    {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_RULE_UPLOAD_BYTES)
        .await
        .map_err(|e| {
            let inner = e.into_inner();
            if inner.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Problem::bad_request("unreadable-body", inner.to_string())
            }
        })?;
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-rule",
            "Invalid YARA rule",
        )
        .detail(format!("the rule text is not UTF-8 ({e})"))
    })
}

/// Creates or replaces a rule file: compiled first, stored only when it compiles (audited).
#[utoipa::path(put, path = YARA_RULE, tag = "scanning", operation_id = "yara_rule_put",
    summary = "Create or replace a rule file",
    description = "Creates or replaces a rule file (admin, audited as `yara.rule.put`). The text is compiled first: \
one that does not compile is answered 422 `invalid-rule` with yara-x's error in `detail` and `line` / `column`, \
and is not stored. A good one is written atomically, the rule set is recompiled and swapped in, and agents learn \
the new version with their next heartbeat. Its rules live in the YARA namespace `server/<name without \
extension>`: alerts of a rule `R` have the rule id `dozor-scan/yara/server/<stem>.R`.",
    params(("name" = String, Path, description = "1 to 100 of A-Z a-z 0-9 _ . -, ending in .yar or .yara",
        max_length = 100, pattern = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*\.[yY][aA][rR][aA]?$")),
    request_body(description = "The rule text, UTF-8, at most 1 MiB", content(("text/plain"))),
    responses(
        (status = 200, description = "Stored; the new rules version", body = YaraRuleChange),
        BadRuleFileName,
        Unauthorized,
        Forbidden<ADMIN>,
        RuleFileConflict,
        RuleFileTooLarge,
        NotText,
        InvalidRuleFile,
        ScanNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn put(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<YaraRuleChange>, Problem> {
    let service = service(&state)?;
    let name = name.0;
    if !valid_rule_name(&name) {
        return Err(bad_param(
            "name",
            format!(
                "{name:?} is not a rule file name: 1 to 100 of A-Z a-z 0-9 _ . - ending in .yar or .yara"
            ),
        ));
    }
    generated_file(&name)?;
    let text = rule_text(&headers, body).await?;
    let size = text.len();
    let change = service
        .put_rule(&name, text)
        .await
        .map_err(|e| change_problem(&name, e))?;
    audited(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        "yara.rule.put",
        format!("yara-rule:{name}"),
        json!({
            "created": change.created,
            "size": size,
            "sha256": change.sha256,
            "rule_count": change.rule_count,
            "version": change.version,
        }),
    )
    .await?;
    tracing::info!(
        actor = caller.identity.subject,
        file = name,
        version = change.version,
        "YARA rule file written"
    );
    Ok(Json(YaraRuleChange {
        name,
        version: change.version,
        rule_count: change.rule_count,
        created: change.created,
    }))
}

/// Deletes a rule file (audited).
#[utoipa::path(delete, path = YARA_RULE, tag = "scanning", operation_id = "yara_rule_delete",
    summary = "Delete a rule file",
    description = "Deletes a rule file (admin, audited as `yara.rule.delete`); the rule set is recompiled. The file \
generated from threat intelligence (`dozor-intel-hashes.yar`) is refused with 409.",
    params(("name" = String, Path, description = "Rule file name")),
    responses(
        (status = 204, description = "Deleted"),
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchRuleFile,
        GeneratedRuleFile,
        ScanNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
    name: PathId,
) -> Result<StatusCode, Problem> {
    let service = service(&state)?;
    let name = name.0;
    if !valid_rule_name(&name) {
        return Err(not_found(&format!("YARA rule file {name:?}")));
    }
    generated_file(&name)?;
    let change = service
        .delete_rule(&name)
        .await
        .map_err(|e| change_problem(&name, e))?;
    audited(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        "yara.rule.delete",
        format!("yara-rule:{name}"),
        json!({ "version": change.version }),
    )
    .await?;
    tracing::info!(
        actor = caller.identity.subject,
        file = name,
        version = change.version,
        "YARA rule file deleted"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The rule file generated from threat intelligence (and any name it would clash with) is
/// not the API's to change: 409.
fn generated_file(name: &str) -> Result<(), Problem> {
    let generated = crate::intel::hash_rules::RULE_FILE;
    if crate::scan::namespace_of(name).eq_ignore_ascii_case(&crate::scan::namespace_of(generated)) {
        return Err(
            Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(format!(
                "{generated} is generated from the threat-intelligence hash indicators and \
                 rewritten when they change: disable an indicator instead"
            )),
        );
    }
    Ok(())
}

fn change_problem(name: &str, e: RuleChangeError) -> Problem {
    match e {
        RuleChangeError::Invalid {
            message,
            line,
            column,
        } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-rule",
            "Invalid YARA rule",
        )
        .detail(message)
        .with("name", name)
        .with("line", line)
        .with("column", column),
        RuleChangeError::Conflict(why) => {
            Problem::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(why)
        }
        RuleChangeError::NotFound(_) => not_found(&format!("YARA rule file {name:?}")),
        RuleChangeError::Io(why) => {
            tracing::error!("YARA rule change: {why}");
            Problem::internal(why)
        }
    }
}

/// `GET /api/v1/agents/yara-rules`: only with an agent's client certificate. Answers `ETag`
/// (the version) and 304 to a matching `If-None-Match`.
#[utoipa::path(get, path = AGENT_YARA_RULES, tag = "scanning", operation_id = "agent_yara_rules",
    summary = "The rule files that compile, for agents",
    description = "The server's rule files that compile, for agents to run: compile each `source` in its \
`namespace`. `version` equals `yara_rules_version` of heartbeat answers. Answered with `ETag` (the version); a \
matching `If-None-Match` gets 304.",
    responses(
        (status = 200, description = "The rules", body = AgentYaraRules),
        (status = 304, description = "Unchanged since the version in If-None-Match"),
        NoAgentCertificate,
        AgentRulesUnavailable,
    ),
    security(("agent_certificate" = [])))]
pub(crate) async fn for_agents(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let registry = super::agents::registry(&state).map_err(|p| p.instance(AGENT_YARA_RULES))?;
    let certs = connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default();
    if registry
        .identify(&certs)
        .await
        .map_err(|e| Problem::from(e).instance(AGENT_YARA_RULES))?
        .is_none()
    {
        return Err(Problem::unauthorized(
            "the rules are served to agents with their client certificate (dozor-agent enroll)",
            false,
        )
        .instance(AGENT_YARA_RULES));
    }
    let set = service(&state)?.rules();
    let etag = format!("\"{}\"", set.version);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if cached {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let doc = AgentYaraRules {
        version: set.version.clone(),
        files: set
            .good_files()
            .map(|f| AgentRuleFile {
                name: f.name.clone(),
                namespace: f.namespace.clone(),
                source: f.source.to_string(),
            })
            .collect(),
    };
    Ok(([(header::ETAG, etag)], Json(doc)).into_response())
}
