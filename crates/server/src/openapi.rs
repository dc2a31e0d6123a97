//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.
//!
//! Each operation is described by a `#[utoipa::path]` attribute on its handler (here the
//! meta endpoints in `app.rs` and ingest; the operator API in [`crate::api`]); error
//! responses are the types of [`crate::problem_responses`], response bodies the handlers' own
//! types ([`IngestReport`], [`Problem`], ...), so the document follows them. Each attribute
//! names its `operation_id`: handler names repeat (`list`, `one`) and clients generate code
//! from the ids, so they stay put when a handler is renamed. The event schema
//! is the one in `crates/event/schemas/event.json`, moved into `components.schemas` (`Event`,
//! `Event_<def>`) so that the document stands alone. A test checks that it describes exactly
//! the routes in [`crate::app::ROUTES`].

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
    paths(
        crate::app::healthz,
        crate::app::readyz,
        crate::app::metrics_text,
        crate::app::ca_pem,
        crate::app::event_schema,
        crate::app::openapi,
        crate::ingest::ingest_handler,
        crate::ingest::evtx_handler,
    ),
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

/// The whole document as JSON.
pub fn document() -> Value {
    let mut api = ApiDoc::openapi();
    api.merge(crate::api::doc::ApiV1Doc::openapi());
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
        content.insert(
            dozor_wire::CONTENT_TYPE.into(),
            json!({"schema": {"type": "string", "contentMediaType": dozor_wire::CONTENT_TYPE,
                "description": "A protobuf dozor.wire.v1.EventBatch (crates/wire/proto/batch.proto): the same Event documents, carried losslessly"}}),
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
    for (path, event, notice) in [
        ("/api/v1/alerts/stream", "alert", "AlertNotice"),
        ("/api/v1/agents/stream", "agent", "AgentNotice"),
    ] {
        let pointer = format!(
            "/paths/{}/get/responses/200/content/text~1event-stream",
            path.replace('/', "~1")
        );
        if let Some(content) = doc.pointer_mut(&pointer) {
            *content = json!({"schema": sse_event(event, notice)});
        }
    }
    empty_counts_as_absent(&mut doc);
    doc
}

/// Every query and header parameter takes the empty string as "absent" (`Params::get`,
/// `body::content_encoding`): an enum parameter lists `""` too, or a schema-driven client
/// would rightly expect `min_level=` to be refused. (utoipa can't name `""` in a derived enum.)
fn empty_counts_as_absent(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|ops| ops.values_mut());
    for operation in operations {
        let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for parameter in parameters {
            if !matches!(parameter["in"].as_str(), Some("query" | "header")) {
                continue;
            }
            // `get_mut`, not indexing: `value["enum"]` on a `&mut` would insert a null.
            let Some(schema) = parameter.get_mut("schema") else {
                continue;
            };
            let schema = match schema.get_mut("items") {
                Some(items) => items,
                None => schema,
            };
            if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut)
                && !values.iter().any(|v| v == "")
            {
                values.insert(0, json!(""));
            }
        }
    }
}

/// One Server-Sent Event of a stream (as `event` and `data` fields; comments are not events):
/// `event` with a `notice` as JSON data, or `lagged` with the number of notices skipped.
fn sse_event(event: &str, notice: &str) -> Value {
    let data = |schema: Value| json!({"type": "string", "contentMediaType": "application/json", "contentSchema": schema});
    json!({
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": event},
                    "data": data(json!({"$ref": format!("#/components/schemas/{notice}")})),
                },
            },
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": "lagged"},
                    "data": data(json!({
                        "type": "object",
                        "required": ["skipped"],
                        "properties": {"skipped": {"type": "integer", "minimum": 1}},
                    })),
                },
            },
        ]
    })
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

/// The names of the parameters `P` describes, in order: a handler's tests compare them with
/// the names it accepts.
#[cfg(test)]
pub(crate) fn query_parameter_names<P: utoipa::IntoParams>() -> Vec<String> {
    P::into_params(|| None)
        .into_iter()
        .map(|parameter| parameter.name)
        .collect()
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
    fn every_operation_has_its_id_path_parameters_success_and_problem_errors() {
        let doc = document();
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let what = format!("{method} {path}");
                let id = operation["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{what}: operationId {id} twice");
                let parameters = operation["parameters"].as_array().cloned();
                for name in path
                    .split('{')
                    .skip(1)
                    .filter_map(|rest| rest.split_once('}'))
                    .map(|(name, _)| name)
                {
                    assert!(
                        parameters
                            .iter()
                            .flatten()
                            .any(|p| p["name"] == name && p["in"] == "path"),
                        "{what}: path parameter {name} undocumented"
                    );
                }
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|status| status.starts_with('2')),
                    "{what}: no success response"
                );
                // Errors are problem documents everywhere (a HEAD answer has no body at all).
                for (status, response) in responses {
                    let Some(content) = response.get("content") else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        let content = content.as_object().unwrap();
                        assert_eq!(
                            content.keys().collect::<Vec<_>>(),
                            [crate::problem::PROBLEM_JSON],
                            "{what} {status}"
                        );
                        assert_eq!(
                            content[crate::problem::PROBLEM_JSON]["schema"]["$ref"],
                            "#/components/schemas/Problem",
                            "{what} {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn enum_parameters_take_the_empty_string_and_every_enum_is_a_list() {
        let doc = document();
        fn check(v: &Value, at: &str) {
            match v {
                Value::Object(o) => {
                    if let Some(e) = o.get("enum") {
                        assert!(e.is_array(), "enum at {at} is {e}");
                    }
                    for (k, v) in o {
                        check(v, &format!("{at}/{k}"));
                    }
                }
                Value::Array(a) => a.iter().for_each(|v| check(v, at)),
                _ => {}
            }
        }
        check(&doc, "");
        let params = doc["paths"]["/api/v1/alerts"]["get"]["parameters"]
            .as_array()
            .expect("parameters");
        let min_level = params
            .iter()
            .find(|p| p["name"] == "min_level")
            .expect("min_level");
        assert_eq!(min_level["schema"]["enum"][0], "");
        let status = params
            .iter()
            .find(|p| p["name"] == "status")
            .expect("status");
        assert_eq!(status["schema"]["items"]["enum"][0], "");
        assert!(min_level["schema"].get("items").is_none());
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
