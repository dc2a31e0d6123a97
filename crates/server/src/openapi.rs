//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.
//!
//! Operations are described with utoipa; response types are the handlers' own types
//! ([`IngestReport`], [`Problem`], ...), so the document follows them. The event schema is the
//! one in `crates/event/schemas/event.json`, moved into `components.schemas` (`Event`,
//! `Event_<def>`) so that the document stands alone. A test checks that it describes exactly
//! the routes in [`crate::app::ROUTES`].

#![allow(dead_code)] // the functions below only carry `#[utoipa::path]` descriptions

use serde_json::{Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::app::{Health, Readiness};
use crate::ingest::{IngestReport, Rejection};
use crate::problem::ProblemDocument as Problem;
use crate::schema::EVENT_SCHEMA_JSON;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dozor API",
        description = "Dozor: self-hosted security monitoring. Errors are application/problem+json (RFC 9457) everywhere.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(healthz, readyz, metrics, ca_pem, event_schema, openapi_json, ingest, ingest_evtx),
    components(schemas(IngestReport, Rejection, Problem, Health, Readiness)),
    modifiers(&BearerAuth),
    tags(
        (name = "ingest", description = "Events from agents and other collectors"),
        (name = "meta", description = "Health, metrics, trust anchors and documents")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "agent_certificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "The client certificate the built-in CA issued to the agent at enrollment"
                        .into(),
                ),
                extensions: None,
                deprecated: None,
            },
        );
    }
}

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The process is up", body = Health)))]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "meta",
    responses(
        (status = 200, description = "Ready to take traffic", body = Readiness),
        (status = 503, description = "Not ready (starting, shutting down, queue full or unreachable); `checks` says why",
            body = Problem, content_type = "application/problem+json")))]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "meta",
    description = "Prometheus/OpenMetrics text for operators: any viewer, analyst or admin token (set it as the \
scrape config's `authorization`).",
    responses(
        (status = 200, description = "Prometheus/OpenMetrics text exposition",
            body = String, content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent credential", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
fn metrics() {}

#[utoipa::path(get, path = "/api/v1/ca.pem", tag = "meta",
    responses((status = 200, description = "The certificate of the server's built-in CA (PEM), for clients to pin",
        body = String, content_type = "application/x-pem-file")))]
fn ca_pem() {}

#[utoipa::path(get, path = "/api/v1/schema/event.json", tag = "meta",
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of a normalized event",
        body = Object, content_type = "application/schema+json")))]
fn event_schema() {}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", body = Object)))]
fn openapi_json() {}

#[utoipa::path(post, path = "/api/v1/ingest", tag = "ingest",
    description = "Send a batch of normalized events (see the Event schema): a JSON array (or one object) as \
application/json, or one event per line as application/x-ndjson. The body may be gzip- or zstd-compressed \
(Content-Encoding). Each event is validated alone: valid events are queued even when others are rejected, \
and the answer is 202 with a report (rejected events are listed with their index, a JSON pointer and a \
message, and should not be sent again). agent.id is set from the credential; an event that names another \
agent is rejected. event.id is the idempotency key: sending a batch again is safe. Agents authenticate with \
their client certificate (mTLS); operators importing other collectors' events with an admin bearer token.",
    request_body(description = "The events", content(("application/json"), ("application/x-ndjson"))),
    params(
        ("Content-Encoding" = Option<String>, Header, description = "gzip, zstd or identity"),
    ),
    responses(
        (status = 202, description = "The batch was read; the report says what was queued, what was a duplicate and what was rejected", body = IngestReport),
        (status = 400, description = "The body is not JSON (line and column given), not a batch, or its compression is corrupt",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not send events", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body (as sent or decompressed) or the batch exceeds a limit; `limit_name` and `limit` say which",
            body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The queue is full or unavailable: send the batch again after Retry-After seconds",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before sending again"))),
    ),
    security(("bearer" = []), ("agent_certificate" = [])))]
fn ingest() {}

#[utoipa::path(post, path = "/api/v1/ingest/evtx", tag = "ingest",
    description = "Upload a Windows event log: an EVTX file (application/octet-stream) or Windows event XML \
(application/xml; one <Event> or many). Optionally gzip- or zstd-compressed. Records are converted to \
normalized events (winlog.* with the native EventData, plus ECS fields); event.id is a UUIDv5 of computer, \
channel and record id, so uploading the same file again reports duplicates instead of storing twice. \
Records that can't be decoded are listed in `rejected` with their index and location.",
    request_body(description = "The log", content(("application/octet-stream"), ("application/xml"))),
    responses(
        (status = 202, description = "The file was read", body = IngestReport),
        (status = 400, description = "Not an EVTX file / XML, or corrupt compression", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or an invalid bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The credential may not send events", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The upload exceeds limits.max_evtx_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The queue filled up: upload again after Retry-After seconds (already queued records come back as duplicates)",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("bearer" = [])))]
fn ingest_evtx() {}

/// The whole document as JSON.
pub fn document() -> Value {
    let mut api = ApiDoc::openapi();
    api.merge(crate::api::doc::ApiV1Doc::openapi());
    api.merge(crate::api::scan_doc::ScanDoc::openapi());
    let mut doc = serde_json::to_value(api).unwrap_or_else(|_| json!({}));
    let mut event: Value = serde_json::from_str(EVENT_SCHEMA_JSON).unwrap_or_else(|_| json!({}));
    let defs = event
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .and_then(|d| match d {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .unwrap_or_default();
    if let Some(o) = event.as_object_mut() {
        o.remove("$schema");
        o.remove("$id");
    }
    rewrite_refs(&mut event);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (name, mut def) in defs {
            rewrite_refs(&mut def);
            schemas.insert(format!("Event_{name}"), def);
        }
        schemas.insert("Event".into(), event);
    }
    let batch = json!({
        "oneOf": [
            {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            {"$ref": "#/components/schemas/Event"}
        ]
    });
    if let Some(content) = doc
        .pointer_mut("/paths/~1api~1v1~1ingest/post/requestBody/content")
        .and_then(Value::as_object_mut)
    {
        content.insert("application/json".into(), json!({"schema": batch}));
        content.insert(
            "application/x-ndjson".into(),
            json!({"schema": {"type": "string", "description": "One Event object (JSON) per line"}}),
        );
    }
    if let Some(content) = doc
        .pointer_mut("/paths/~1api~1v1~1ingest~1evtx/post/requestBody/content")
        .and_then(Value::as_object_mut)
    {
        content.insert(
            "application/octet-stream".into(),
            json!({"schema": {"type": "string", "contentMediaType": "application/octet-stream", "description": "An EVTX file"}}),
        );
        content.insert(
            "application/xml".into(),
            json!({"schema": {"type": "string", "description": "Windows event XML"}}),
        );
    }
    doc
}

/// `#/$defs/x` → `#/components/schemas/Event_x`, everywhere in `value`.
fn rewrite_refs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = item
                    && let Some(name) = target.strip_prefix("#/$defs/")
                {
                    *target = format!("#/components/schemas/Event_{name}");
                } else {
                    rewrite_refs(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::ROUTES;

    #[test]
    fn documents_exactly_the_routes() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                documented.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p, _)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }

    #[test]
    fn refs_resolve_and_the_event_schema_is_inside() {
        let doc = document();
        let text = doc.to_string();
        assert!(!text.contains("#/$defs/"));
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(refs.len() > 20);
        for r in refs {
            let pointer = r.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
        }
        assert!(doc["components"]["schemas"]["Event"]["properties"]["winlog"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(
            doc["paths"]["/api/v1/ingest"]["post"]["responses"]["503"]["headers"]["Retry-After"]
                .is_object()
        );
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, item) in m {
                    if k == "$ref" {
                        out.push(item.as_str().unwrap().to_owned());
                    } else {
                        collect_refs(item, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|i| collect_refs(i, out)),
            _ => {}
        }
    }
}
