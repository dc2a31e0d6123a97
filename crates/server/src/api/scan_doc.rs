//! OpenAPI descriptions of the file scanning routes (YARA rules, samples), merged into the
//! server's document by [`crate::openapi::document`].

#![allow(dead_code)] // the functions below only carry `#[utoipa::path]` descriptions

use utoipa::OpenApi;

use super::samples::{SampleList, SampleUpload, SampleView};
use super::yara::{AgentRuleFile, AgentYaraRules, YaraRuleChange, YaraRuleInfo, YaraRuleList};
use crate::problem::ProblemDocument as Problem;

#[derive(OpenApi)]
#[openapi(
    paths(
        yara_rules, yara_rule, yara_rule_put, yara_rule_delete, agent_yara_rules, sample_upload,
        sample_exists, samples, sample
    ),
    components(schemas(
        YaraRuleInfo, YaraRuleList, YaraRuleChange, AgentRuleFile, AgentYaraRules, SampleUpload,
        SampleView, SampleList
    )),
    tags(
        (name = "scanning", description = "YARA rules managed on the server and served to agents; file samples uploaded by agents, scanned by the server's engines (hash lists, YARA, clamd)")
    )
)]
pub(crate) struct ScanDoc;

#[utoipa::path(get, path = "/api/v1/yara/rules", tag = "scanning",
    description = "The server's YARA rule files: each with its size, modification time (ms), rule count and, when it \
does not compile, yara-x's error (file, line, column). `version` is what agents are told in heartbeat answers \
(`yara_rules_version`): a SHA-256 over the names and contents of the files that compile. Files of the directory \
that can't be used at all are listed in `errors`.",
    responses(
        (status = 200, description = "The rule files", body = YaraRuleList),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn yara_rules() {}

#[utoipa::path(get, path = "/api/v1/yara/rules/{name}", tag = "scanning",
    params(("name" = String, Path, description = "Rule file name, e.g. team.yar")),
    responses(
        (status = 200, description = "The file's text (also of a file that does not compile)", body = String, content_type = "text/plain; charset=utf-8"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule file", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn yara_rule() {}

#[utoipa::path(put, path = "/api/v1/yara/rules/{name}", tag = "scanning",
    description = "Creates or replaces a rule file (admin, audited as `yara.rule.put`). The text is compiled first: \
one that does not compile is answered 422 `invalid-rule` with yara-x's error in `detail` and `line` / `column`, \
and is not stored. A good one is written atomically, the rule set is recompiled and swapped in, and agents learn \
the new version with their next heartbeat. Its rules live in the YARA namespace `server/<name without \
extension>`: alerts of a rule `R` have the rule id `dozor-scan/yara/server/<stem>.R`.",
    params(("name" = String, Path, description = "1 to 100 of A-Z a-z 0-9 _ . -, ending in .yar or .yara")),
    request_body(description = "The rule text, UTF-8, at most 1 MiB", content(("text/plain"))),
    responses(
        (status = 200, description = "Stored; the new rules version", body = YaraRuleChange),
        (status = 400, description = "Not a valid file name", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another file has the same name without its extension (a.yar / a.yara)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 1 MiB (`limit_name` yara.max_rule_bytes)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not text/plain", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Does not compile (`detail`: yara-x's error; `line`, `column`) or is not UTF-8", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn yara_rule_put() {}

#[utoipa::path(delete, path = "/api/v1/yara/rules/{name}", tag = "scanning",
    description = "Deletes a rule file (admin, audited as `yara.rule.delete`); the rule set is recompiled.",
    params(("name" = String, Path, description = "Rule file name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule file", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn yara_rule_delete() {}

#[utoipa::path(get, path = "/api/v1/agents/yara-rules", tag = "scanning",
    description = "The server's rule files that compile, for agents to run: compile each `source` in its \
`namespace`. `version` equals `yara_rules_version` of heartbeat answers. Answered with `ETag` (the version); a \
matching `If-None-Match` gets 304.",
    responses(
        (status = 200, description = "The rules", body = AgentYaraRules),
        (status = 304, description = "Unchanged since the version in If-None-Match"),
        (status = 401, description = "No, or not a current agent's, client certificate", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Agents need TLS and a store", body = Problem, content_type = "application/problem+json"),
    ),
    security(("agent_certificate" = [])))]
fn agent_yara_rules() {}

#[utoipa::path(post, path = "/api/v1/samples", tag = "scanning",
    description = "An agent uploads a file: the raw bytes as application/octet-stream (optionally gzip- or \
zstd-compressed), streamed to disk with a running SHA-256 and the `scan.max_sample_bytes` limit. The content is \
kept once as `<samples_dir>/<sha256>` (mode 0600; never served back). It is scanned with the server's engines \
(hash lists, YARA, clamd); each finding becomes an event (`event.module` dozor-scan, `event.provider` \
dozor-server, `dozor.scan.trigger` sample, the agent's `agent.*` and `host.name`) that goes through the normal \
ingest path, where the pipeline stores it and raises an alert (rule id `dozor-scan/<engine>/...`, level from the \
finding's severity). An engine that can't answer (clamd down) is listed in `errors`; the others' findings count.",
    params(
        ("path" = String, Query, description = "The file's path on the agent's host"),
        ("sha256" = Option<String>, Query, description = "The SHA-256 the agent computed; a body with another one is refused (422)"),
        ("Content-Encoding" = Option<String>, Header, description = "gzip, zstd or identity"),
    ),
    request_body(description = "The file's bytes", content(("application/octet-stream"))),
    responses(
        (status = 200, description = "Stored and scanned", body = SampleUpload),
        (status = 400, description = "`path` missing or too long, `sha256` malformed, corrupt compression", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an agent, or the server does not accept samples (scan.samples = false)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than scan.max_sample_bytes (`limit_name`, `limit`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/octet-stream, or an unsupported Content-Encoding", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The body's SHA-256 is not the one in the query (`expected`, `actual`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The event queue is full: upload again after Retry-After (the sample is kept and not stored twice)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("agent_certificate" = [])))]
fn sample_upload() {}

#[utoipa::path(head, path = "/api/v1/samples/{sha256}", tag = "scanning",
    description = "Whether the server has the sample, so agents skip uploading it again. For agents (client \
certificate) and operators (any role). No body.",
    params(("sha256" = String, Path, description = "SHA-256, hex")),
    responses(
        (status = 200, description = "The server has it"),
        (status = 404, description = "It does not"),
        (status = 401, description = "No credential"),
    ),
    security(("agent_certificate" = []), ("bearer" = [])))]
fn sample_exists() {}

#[utoipa::path(get, path = "/api/v1/samples", tag = "scanning",
    description = "Uploaded samples, newest upload first (analyst or admin).",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "The samples", body = SampleList),
        (status = 400, description = "A bad parameter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn samples() {}

#[utoipa::path(get, path = "/api/v1/samples/{sha256}", tag = "scanning",
    description = "One sample's metadata and last verdict (analyst or admin). The bytes are never served.",
    params(("sha256" = String, Path, description = "SHA-256, hex")),
    responses(
        (status = 200, description = "The sample", body = SampleView),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer or agent credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sample", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The API is not configured on this server", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn sample() {}
