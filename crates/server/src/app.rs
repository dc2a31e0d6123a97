//! The HTTP application: shared state, the router (the operator API's handlers are in
//! [`crate::api`]), and the small endpoints (health,
//! readiness, metrics, CA certificate, event schema, OpenAPI document).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::auth::READ;
use crate::config::ProcessRole;
use crate::ingest::{self, EVTX_PATH, INGEST_PATH};
use crate::metrics::{self, OPENMETRICS_TEXT};
use crate::problem::Problem;
use crate::problem_responses::{Forbidden, Unauthorized, problem_response};
use crate::schema::EVENT_SCHEMA_JSON;
pub use crate::state::{AppState, EVTX_DECODERS, ReadinessCheck};

/// How long one readiness check may take.
const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A route: method, path, and whether a process of a role serves it.
pub type Route = (&'static str, &'static str, fn(ProcessRole) -> bool);

/// Every route. The OpenAPI document must describe exactly these (a test checks it).
pub const ROUTES: &[Route] = &[
    ("GET", "/healthz", |_| true),
    ("GET", "/readyz", |_| true),
    ("GET", "/metrics", |_| true),
    ("GET", "/api/v1/ca.pem", |r| r != ProcessRole::Worker),
    ("GET", "/api/v1/schema/event.json", |r| {
        r != ProcessRole::Worker
    }),
    ("GET", "/api/v1/openapi.json", |r| r != ProcessRole::Worker),
    ("POST", INGEST_PATH, ProcessRole::runs_ingest),
    ("POST", EVTX_PATH, ProcessRole::runs_ingest),
    ("GET", api::EVENTS, ProcessRole::runs_api),
    ("GET", api::EVENTS_HISTOGRAM, ProcessRole::runs_api),
    ("GET", api::EVENT, ProcessRole::runs_api),
    // Event export and saved searches.
    ("GET", api::EVENTS_EXPORT, ProcessRole::runs_api),
    ("GET", api::SAVED_SEARCHES, ProcessRole::runs_api),
    ("POST", api::SAVED_SEARCHES, ProcessRole::runs_api),
    ("GET", api::SAVED_SEARCH, ProcessRole::runs_api),
    ("PUT", api::SAVED_SEARCH, ProcessRole::runs_api),
    ("DELETE", api::SAVED_SEARCH, ProcessRole::runs_api),
    ("GET", api::ALERTS, ProcessRole::runs_api),
    ("GET", api::ALERTS_STREAM, ProcessRole::runs_api),
    ("GET", api::ALERT, ProcessRole::runs_api),
    ("GET", api::ALERTS_EXPORT, ProcessRole::runs_api),
    ("POST", api::ALERT_STATUS, ProcessRole::runs_api),
    ("POST", api::ALERT_ASSIGNEE, ProcessRole::runs_api),
    ("POST", api::ALERT_COMMENTS, ProcessRole::runs_api),
    ("GET", api::RULES, ProcessRole::runs_api),
    ("POST", api::RULES_RELOAD, ProcessRole::runs_api),
    ("POST", api::RULES_TEST, ProcessRole::runs_api),
    ("GET", api::RULE, ProcessRole::runs_api),
    ("POST", api::RULE_ENABLED, ProcessRole::runs_api),
    ("GET", api::STATS, ProcessRole::runs_api),
    ("GET", api::AGENTS, ProcessRole::runs_api),
    ("GET", api::AGENTS_STREAM, ProcessRole::runs_api),
    ("GET", api::AGENT, ProcessRole::runs_api),
    ("GET", api::EXCEPTIONS, ProcessRole::runs_api),
    ("POST", api::EXCEPTIONS, ProcessRole::runs_api),
    ("DELETE", api::EXCEPTION, ProcessRole::runs_api),
    ("GET", api::HOSTS, ProcessRole::runs_api),
    ("GET", api::HOST, ProcessRole::runs_api),
    // Incidents (cases).
    ("GET", api::INCIDENTS, ProcessRole::runs_api),
    ("POST", api::INCIDENTS, ProcessRole::runs_api),
    ("GET", api::INCIDENT_SUGGESTIONS, ProcessRole::runs_api),
    ("GET", api::INCIDENT, ProcessRole::runs_api),
    ("PATCH", api::INCIDENT, ProcessRole::runs_api),
    ("POST", api::INCIDENT_ALERTS, ProcessRole::runs_api),
    ("DELETE", api::INCIDENT_ALERT, ProcessRole::runs_api),
    ("POST", api::INCIDENT_TASKS, ProcessRole::runs_api),
    ("PATCH", api::INCIDENT_TASK, ProcessRole::runs_api),
    ("POST", api::INCIDENT_NOTES, ProcessRole::runs_api),
    ("POST", api::INCIDENT_OBSERVABLES, ProcessRole::runs_api),
    ("DELETE", api::INCIDENT_OBSERVABLE, ProcessRole::runs_api),
    ("POST", api::AGENT_REVOKE, ProcessRole::runs_api),
    ("POST", api::AGENT_ENROLL, ProcessRole::runs_ingest),
    ("POST", api::AGENT_HEARTBEAT, ProcessRole::runs_ingest),
    ("POST", api::AGENT_COMMANDS, ProcessRole::runs_api),
    ("GET", api::AGENT_COMMANDS, ProcessRole::runs_api),
    ("GET", api::COMMAND, ProcessRole::runs_api),
    ("POST", api::AGENT_COMMAND_RESULT, ProcessRole::runs_ingest),
    ("GET", api::COMMANDS_NEXT, ProcessRole::runs_ingest),
    ("POST", api::AGENT_ACTIONS, ProcessRole::runs_api),
    // Response: playbooks, runs, approvals.
    ("GET", api::PLAYBOOKS, ProcessRole::runs_api),
    ("GET", api::PLAYBOOK, ProcessRole::runs_api),
    ("PUT", api::PLAYBOOK, ProcessRole::runs_api),
    ("DELETE", api::PLAYBOOK, ProcessRole::runs_api),
    ("POST", api::PLAYBOOK_ENABLED, ProcessRole::runs_api),
    ("POST", api::PLAYBOOK_RUN, ProcessRole::runs_api),
    ("GET", api::RUNS, ProcessRole::runs_api),
    ("GET", api::RUN, ProcessRole::runs_api),
    ("GET", api::APPROVALS, ProcessRole::runs_api),
    ("GET", api::APPROVAL, ProcessRole::runs_api),
    ("POST", api::APPROVE, ProcessRole::runs_api),
    ("POST", api::REJECT, ProcessRole::runs_api),
    // File scanning: YARA rules (operators), rules and samples (agents).
    ("GET", api::YARA_RULES, ProcessRole::runs_api),
    ("GET", api::YARA_RULE, ProcessRole::runs_api),
    ("PUT", api::YARA_RULE, ProcessRole::runs_api),
    ("DELETE", api::YARA_RULE, ProcessRole::runs_api),
    ("GET", api::AGENT_YARA_RULES, ProcessRole::runs_ingest),
    ("POST", api::SAMPLES, ProcessRole::runs_ingest),
    ("GET", api::SAMPLES, ProcessRole::runs_api),
    ("GET", api::SAMPLE, ProcessRole::runs_api),
    ("HEAD", api::SAMPLE, |r| r != ProcessRole::Worker),
    // Threat intelligence: indicators, sources, matches.
    ("GET", api::INTEL_IOCS, ProcessRole::runs_api),
    ("POST", api::INTEL_IOCS, ProcessRole::runs_api),
    ("GET", api::INTEL_IOC, ProcessRole::runs_api),
    ("POST", api::INTEL_IOC_ENABLED, ProcessRole::runs_api),
    ("GET", api::INTEL_SOURCES, ProcessRole::runs_api),
    ("PUT", api::INTEL_SOURCE, ProcessRole::runs_api),
    ("DELETE", api::INTEL_SOURCE, ProcessRole::runs_api),
    ("POST", api::INTEL_SOURCE_SYNC, ProcessRole::runs_api),
    ("GET", api::INTEL_MATCHES, ProcessRole::runs_api),
    // Threat intelligence exchange: import, STIX export, the MISP feed of Dozor's own.
    ("POST", api::INTEL_IMPORT, ProcessRole::runs_api),
    ("GET", api::INTEL_EXPORT_STIX, ProcessRole::runs_api),
    ("GET", api::INTEL_FEED_MANIFEST, ProcessRole::runs_api),
    ("GET", api::INTEL_FEED_HASHES, ProcessRole::runs_api),
    ("GET", api::INTEL_FEED_EVENT, ProcessRole::runs_api),
    // Vulnerabilities: results, import, export, scans, advisories, inventories.
    ("GET", api::VULNS, ProcessRole::runs_api),
    ("GET", api::VULNS_SUMMARY, ProcessRole::runs_api),
    ("GET", api::VULNS_EXPORT, ProcessRole::runs_api),
    ("POST", api::VULNS_IMPORT, ProcessRole::runs_api),
    ("GET", api::VULN_SCANS, ProcessRole::runs_api),
    ("GET", api::VULN_ADVISORIES, ProcessRole::runs_api),
    ("POST", api::VULN_ADVISORIES_RELOAD, ProcessRole::runs_api),
    ("GET", api::VULN, ProcessRole::runs_api),
    ("POST", api::VULN_STATUS, ProcessRole::runs_api),
    ("GET", api::AGENT_INVENTORY, ProcessRole::runs_api),
    (
        "POST",
        api::AGENT_INVENTORY_REPORT,
        ProcessRole::runs_ingest,
    ),
    // Behavioural analytics.
    ("GET", api::ANOMALY_MODELS, ProcessRole::runs_api),
    ("POST", api::ANOMALY_TRAIN, ProcessRole::runs_api),
    ("POST", api::ANOMALY_SCORE, ProcessRole::runs_api),
    ("GET", api::ANOMALIES, ProcessRole::runs_api),
    // gvmd scan jobs.
    ("GET", api::vuln_jobs::JOBS, ProcessRole::runs_api),
    ("GET", api::vuln_jobs::JOB, ProcessRole::runs_api),
    ("PUT", api::vuln_jobs::JOB, ProcessRole::runs_api),
    ("DELETE", api::vuln_jobs::JOB, ProcessRole::runs_api),
    ("POST", api::vuln_jobs::JOB_START, ProcessRole::runs_api),
    ("POST", api::vuln_jobs::JOB_STOP, ProcessRole::runs_api),
];

/// `GET /healthz`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up and answering.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// Each check's result (`ok` or why not). `clamd` (when `scan.clamd` is set) is `ok` or
    /// `degraded: why` and never makes the server unready.
    pub checks: BTreeMap<String, String>,
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let role = state.role;
    let mut router = Router::new();
    for (method, path, served) in ROUTES {
        if !served(role) {
            continue;
        }
        let route = match (*method, *path) {
            ("GET", "/healthz") => get(healthz),
            ("GET", "/readyz") => get(readyz),
            ("GET", "/metrics") => get(metrics_text),
            ("GET", "/api/v1/ca.pem") => get(ca_pem),
            ("GET", "/api/v1/schema/event.json") => get(event_schema),
            ("GET", "/api/v1/openapi.json") => get(openapi),
            ("POST", INGEST_PATH) => post(ingest::ingest_handler),
            ("POST", EVTX_PATH) => post(ingest::evtx_handler),
            (method, path) => match api::route(method, path) {
                Some(route) => route,
                None => continue,
            },
        };
        router = router.route(path, route);
    }
    // The web dashboard: sign-in (and, on the API roles, the pages).
    if role.runs_api() {
        router = router
            .merge(crate::session::router())
            .merge(crate::ui::router());
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track_latency,
        ))
        .layer(middleware::map_response_with_state(
            state.tls,
            security_headers,
        ))
        .layer(middleware::from_fn(crate::unread_body::drain_after_refusal))
        .with_state(state)
}

/// `Strict-Transport-Security` sent on every answer over TLS (never over plain HTTP, where
/// browsers ignore it and it would only mislead): a year, this host only.
pub(crate) const HSTS: &str = "max-age=31536000";

async fn security_headers(State(tls): State<bool>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    // Pages load only our own styles and scripts, are never framed, and leak no URLs.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(uri.path())
}

async fn method_not_allowed(uri: Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
    )
    .detail(format!("{} does not accept this method", uri.path()))
    .instance(uri.path())
}

#[utoipa::path(get, path = "/healthz", tag = "meta", operation_id = "healthz",
    summary = "Liveness",
    responses((status = 200, description = "The process is up", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

problem_response! {
    NotReady = 503, "Not ready (starting, shutting down, queue full or unreachable); `checks` says why";
}

#[utoipa::path(get, path = "/readyz", tag = "meta", operation_id = "readyz",
    summary = "Readiness, check by check",
    responses(
        (status = 200, description = "Ready to take traffic", body = Readiness),
        NotReady,
    ))]
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let mut checks = BTreeMap::new();
    let mut ready = true;
    if !state.accepting.load(Ordering::SeqCst) {
        ready = false;
        checks.insert("server".to_owned(), "starting or shutting down".to_owned());
    }
    let sink = tokio::time::timeout(READY_CHECK_TIMEOUT, state.sink.ready()).await;
    let mut record = |name: &str, result: Result<Result<(), String>, _>| {
        let text = match result {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(why)) => why,
            Err(_) => "timed out".to_owned(),
        };
        ready &= text == "ok";
        checks.insert(name.to_owned(), text);
    };
    record("queue", sink);
    for check in &state.readiness {
        let result = tokio::time::timeout(READY_CHECK_TIMEOUT, check.check()).await;
        record(check.name(), result);
    }
    // Reported, never a reason to be unready: samples are scanned without clamd meanwhile.
    if let Some(scan) = &state.scan
        && let Some(clamd) = scan.clamd_readiness().await
    {
        checks.insert("clamd".to_owned(), clamd);
    }
    if ready {
        Json(Readiness {
            status: "ready".into(),
            checks,
        })
        .into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready")
            .detail("a readiness check failed")
            .with("checks", checks)
            .instance("/readyz")
            .into_response()
    }
}

/// `GET /metrics`: for operators (any role; Prometheus sends a viewer's token with
/// `authorization` in its scrape config) — the counts say a lot about what is watched.
#[utoipa::path(get, path = "/metrics", tag = "meta", operation_id = "metrics",
    summary = "Prometheus/OpenMetrics text",
    description = "Prometheus/OpenMetrics text for operators: any viewer, analyst or admin token (set it as the \
scrape config's `authorization`).",
    responses(
        (status = 200, description = "Prometheus/OpenMetrics text exposition",
            body = String, content_type = OPENMETRICS_TEXT),
        Unauthorized,
        Forbidden<READ>,
    ),
    security(("bearer" = [])))]
pub(crate) async fn metrics_text(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    match crate::auth::authenticate(state.tokens.as_ref(), &headers).await {
        Ok(identity) if identity.role != crate::auth::Role::Agent => {}
        Ok(_) => {
            return Problem::forbidden("agent credentials may only send events").into_response();
        }
        Err(problem) => return problem.into_response(),
    }
    if let Some(depth) = state.sink.queue_depth() {
        state.metrics.set_queue_depth(depth);
    }
    let mut text = state.metrics.render();
    api::append_pipeline_metrics(state.api.as_deref(), &mut text);
    ([(header::CONTENT_TYPE, OPENMETRICS_TEXT)], text).into_response()
}

#[utoipa::path(get, path = "/api/v1/ca.pem", tag = "meta", operation_id = "ca_pem",
    summary = "The built-in CA's certificate",
    responses((status = 200, description = "The certificate of the server's built-in CA (PEM), for clients to pin",
        body = String, content_type = "application/x-pem-file")))]
pub(crate) async fn ca_pem(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.ca_pem.to_string(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/schema/event.json", tag = "meta", operation_id = "event_schema",
    summary = "The event JSON Schema",
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of a normalized event",
        body = Object, content_type = "application/schema+json")))]
pub(crate) async fn event_schema() -> Response {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        EVENT_SCHEMA_JSON,
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi_json",
    summary = "This OpenAPI document",
    responses((status = 200, description = "This document", body = Object)))]
pub(crate) async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.to_string(),
    )
        .into_response()
}
