//! `POST /api/v1/ingest` and `POST /api/v1/ingest/evtx`.
//!
//! A batch that could be read is answered `202 Accepted` with an [`IngestReport`]: the valid
//! events were queued, the invalid ones are listed in `rejected` (index in the batch, JSON
//! pointer into the event, message), duplicates are counted. A bad event never makes the
//! good ones of its batch disappear, and the sender should not send rejected events again.
//! Errors that concern the whole request are `application/problem+json`: 400 (not JSON, with
//! line and column), 401, 403, 413 (names the limit), 415, 503 with `Retry-After` (queue full).

pub mod body;
pub mod evtx;
pub mod parse;

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::{Identity, Role, authenticate};
use crate::problem::Problem;
use crate::problem_responses::{Unauthorized, problem_response};
use crate::schema::{EventValidator, FieldError};
use crate::sink::{IngestBatch, IngestEvent, SinkError};
use crate::state::AppState;
use crate::state::ConnectionInfo;

pub const INGEST_PATH: &str = "/api/v1/ingest";
pub const EVTX_PATH: &str = "/api/v1/ingest/evtx";

pub mod report;
pub use report::{IngestReport, MAX_REJECTIONS, Rejection};

/// Events of a request after validation, before the sink.
#[derive(Debug, Default)]
pub struct Prepared {
    pub received: usize,
    pub events: Vec<IngestEvent>,
    pub rejected: Vec<Rejection>,
    pub rejected_events: usize,
    pub duplicates_in_batch: usize,
    seen: HashSet<Uuid>,
}

impl Prepared {
    /// Validates one event and keeps it, or records why not.
    pub fn push(
        &mut self,
        index: usize,
        value: Value,
        sender: &Identity,
        validator: &EventValidator,
        now: &str,
    ) {
        self.received += 1;
        match prepare_event(value, sender, validator, now) {
            Ok(event) => {
                if self.seen.insert(event.id) {
                    self.events.push(event);
                } else {
                    self.duplicates_in_batch += 1;
                }
            }
            Err(errors) => self.reject_all(index, errors),
        }
    }

    /// Records an event that could not even be read.
    pub fn push_unreadable(&mut self, index: usize, message: String) {
        self.push_refused(index, String::new(), message);
    }

    /// Records an event refused before it was built; `pointer` says where in it.
    pub fn push_refused(&mut self, index: usize, pointer: String, message: String) {
        self.received += 1;
        self.reject_all(index, vec![FieldError { pointer, message }]);
    }

    fn reject_all(&mut self, index: usize, errors: Vec<FieldError>) {
        self.rejected_events += 1;
        let room = MAX_REJECTIONS.saturating_sub(self.rejected.len());
        self.rejected
            .extend(errors.into_iter().take(room).map(|e| Rejection {
                index,
                pointer: e.pointer,
                message: e.message,
            }));
    }
}

/// Checks the sender against `agent.id`, stamps the server's fields and validates.
pub fn prepare_event(
    mut value: Value,
    sender: &Identity,
    validator: &EventValidator,
    now: &str,
) -> Result<IngestEvent, Vec<FieldError>> {
    let Some(doc) = value.as_object_mut() else {
        return Err(vec![FieldError {
            pointer: String::new(),
            message: "an event must be a JSON object".into(),
        }]);
    };
    let status = match sender.agent_id() {
        Some(agent_id) => {
            let claimed = doc.get("agent").and_then(|a| a.get("id"));
            match claimed {
                Some(Value::String(claimed)) if claimed == agent_id => "verified",
                Some(claimed) => {
                    return Err(vec![FieldError {
                        pointer: "/agent/id".into(),
                        message: format!(
                            "agent.id {} is not the sending agent ({agent_id:?}): an agent may only send its own events",
                            crate::schema::truncate(claimed.to_string(), 80)
                        ),
                    }]);
                }
                None => {
                    match doc
                        .entry("agent")
                        .or_insert_with(|| Value::Object(Map::new()))
                    {
                        Value::Object(agent) => {
                            agent.insert("id".into(), Value::String(agent_id.to_owned()));
                        }
                        _ => {
                            return Err(vec![FieldError {
                                pointer: "/agent".into(),
                                message: "agent must be an object".into(),
                            }]);
                        }
                    }
                    "missing"
                }
            }
        }
        None => "auth_metadata_missing",
    };
    if let Some(Value::Object(event)) = doc.get_mut("event") {
        event.insert("agent_id_status".into(), Value::String(status.into()));
        event.insert("ingested".into(), Value::String(now.to_owned()));
    }
    let errors = validator.validate(&value);
    if !errors.is_empty() {
        return Err(errors);
    }
    let id = value
        .pointer("/event/id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| {
            vec![FieldError {
                pointer: "/event/id".into(),
                message: "event.id is not a UUID".into(),
            }]
        })?;
    Ok(IngestEvent { id, event: value })
}

/// The current time as `event.ingested` text.
pub fn now_text(now: chrono::DateTime<chrono::Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Which roles may send events: agents (their own events) and admins (imports).
/// The sender of an ingest request, if its credential may send events. On refusal the body
/// is read and dropped first, so the client sees the answer rather than a reset connection.
///
/// An agent is known by its client certificate (checked against the agent registry); anyone
/// else by a bearer token.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    client_certificates: &[CertificateDer<'static>],
    body: &mut Body,
) -> Result<Identity, Problem> {
    let by_certificate = match (&state.agents, client_certificates.is_empty()) {
        (Some(registry), false) => match registry.identify(client_certificates).await {
            Ok(Some(agent)) => {
                registry.touch(&agent.subject).await;
                Some(Ok(agent))
            }
            Ok(None) => None,
            Err(e) => Some(Err(Problem::from(e))),
        },
        _ => None,
    };
    let checked = match by_certificate {
        Some(result) => result,
        None => match authenticate(state.tokens.as_ref(), headers).await {
            Ok(sender) => may_ingest(&sender).map(|()| sender),
            Err(p) => Err(p),
        },
    };
    if checked.is_err() {
        body::linger(body).await;
    }
    checked
}

fn may_ingest(identity: &Identity) -> Result<(), Problem> {
    match identity.role {
        Role::Agent | Role::Admin => Ok(()),
        Role::Analyst | Role::Viewer => Err(Problem::forbidden(format!(
            "{} has the {:?} role; sending events needs an agent or admin credential",
            identity.subject, identity.role
        ))),
    }
}

problem_response! {
    /// A viewer's or analyst's token: events come from agents and admins.
    MayNotSendEvents = 403, "The credential may not send events";
    UnsupportedEncoding = 415, "Unsupported Content-Type or Content-Encoding";
    NotABatch = 400, "The body is not JSON (line and column given) or protobuf, not a batch, or its compression is corrupt";
    BatchTooLarge = 413, "The body (as sent or decompressed) or the batch exceeds a limit; `limit_name` and `limit` say which";
    QueueFull = 503, "The queue is full or unavailable: send the batch again after Retry-After seconds",
        retry_after = "Seconds to wait before sending again";
    NotEvtx = 400, "Not an EVTX file / XML, or corrupt compression";
    EvtxTooLarge = 413, "The upload exceeds limits.max_evtx_bytes";
    EvtxQueueFull = 503, "The queue filled up: upload again after Retry-After seconds (already queued records come back as duplicates)",
        retry_after = "Seconds to wait";
}

// The request body's schemas (a batch of `Event`s) are filled in by `openapi::document`: the
// event schema is a JSON Schema file, not a Rust type.
#[utoipa::path(post, path = INGEST_PATH, tag = "ingest", operation_id = "ingest",
    summary = "Send a batch of events",
    description = "Send a batch of normalized events (see the Event schema): a JSON array (or one object) as \
application/json, one event per line as application/x-ndjson, or a protobuf EventBatch \
(crates/wire/proto/batch.proto) as application/x-protobuf, which carries the same documents. The body may be gzip- or zstd-compressed \
(Content-Encoding). Each event is validated alone: valid events are queued even when others are rejected, \
and the answer is 202 with a report (rejected events are listed with their index, a JSON pointer and a \
message, and should not be sent again). agent.id is set from the credential; an event that names another \
agent is rejected. event.id is the idempotency key: sending a batch again is safe. Agents authenticate with \
their client certificate (mTLS); operators importing other collectors' events with an admin bearer token.",
    request_body(description = "The events", content(("application/json"), ("application/x-ndjson"), ("application/x-protobuf"))),
    params(
        crate::ingest::body::ContentEncodingHeader,
    ),
    responses(
        (status = 202, description = "The batch was read; the report says what was queued, what was a duplicate and what was rejected", body = IngestReport),
        NotABatch,
        Unauthorized,
        MayNotSendEvents,
        BatchTooLarge,
        UnsupportedEncoding,
        QueueFull,
    ),
    security(("bearer" = []), ("agent_certificate" = [])))]
pub(crate) async fn ingest_handler(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let certs = client_certificates(connection);
    respond(
        &state,
        INGEST_PATH,
        ingest(&state, &headers, &certs, body).await,
    )
}

#[utoipa::path(post, path = EVTX_PATH, tag = "ingest", operation_id = "ingest_evtx",
    summary = "Upload a Windows event log",
    description = "Upload a Windows event log: an EVTX file (application/octet-stream) or Windows event XML \
(application/xml; one <Event> or many). Optionally gzip- or zstd-compressed. Records are converted to \
normalized events (winlog.* with the native EventData, plus ECS fields); event.id is a UUIDv5 of computer, \
channel and record id, so uploading the same file again reports duplicates instead of storing twice. \
Records that can't be decoded are listed in `rejected` with their index and location.",
    request_body(description = "The log", content(("application/octet-stream"), ("application/xml"))),
    params(
        crate::ingest::body::ContentEncodingHeader,
    ),
    responses(
        (status = 202, description = "The file was read", body = IngestReport),
        NotEvtx,
        Unauthorized,
        MayNotSendEvents,
        EvtxTooLarge,
        UnsupportedEncoding,
        EvtxQueueFull,
    ),
    security(("bearer" = []), ("agent_certificate" = [])))]
pub(crate) async fn evtx_handler(
    State(state): State<Arc<AppState>>,
    connection: Option<Extension<ConnectionInfo>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let certs = client_certificates(connection);
    respond(
        &state,
        EVTX_PATH,
        evtx::ingest_evtx(&state, &headers, &certs, body).await,
    )
}

fn client_certificates(
    connection: Option<Extension<ConnectionInfo>>,
) -> Vec<CertificateDer<'static>> {
    connection
        .map(|Extension(c)| c.client_certificates)
        .unwrap_or_default()
}

fn respond(state: &AppState, path: &str, result: Result<IngestReport, Problem>) -> Response {
    match result {
        Ok(report) => {
            state.metrics.record_report(&report);
            (StatusCode::ACCEPTED, Json(report)).into_response()
        }
        Err(problem) => {
            state.metrics.record_refused(problem.slug());
            problem.instance(path).into_response()
        }
    }
}

async fn ingest(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    client_certificates: &[CertificateDer<'static>],
    mut body: Body,
) -> Result<IngestReport, Problem> {
    let sender = authorize(state, headers, client_certificates, &mut body).await?;
    let format = parse::batch_format(headers)?;
    let encoding = body::content_encoding(headers)?;
    let limit = state.limits.max_body_bytes;
    let bytes = body::receive(body, headers, encoding, limit, Vec::new())
        .await
        .map_err(|e| e.into_problem("limits.max_body_bytes"))?;
    // Parsed events take several times their size in memory: parses wait their turn for a
    // share of limits.ingest_parse_bytes, held until the events have gone to the sink.
    let _parse_permit = state
        .parse_permits
        .clone()
        .acquire_many_owned(parse_weight(bytes.len(), state.limits.ingest_parse_bytes))
        .await
        .map_err(|_| Problem::internal("the server is shutting down"))?;
    let validator = state.validator.clone();
    let max_events = state.limits.max_batch_events;
    let received_at = chrono::Utc::now();
    let sender_for_task = sender.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let items = parse::parse_batch(&bytes, format, max_events).map_err(|e| e.into_problem())?;
        drop(bytes);
        let now = now_text(received_at);
        let mut prepared = Prepared::default();
        for (index, item) in items.into_iter().enumerate() {
            match item {
                parse::Item::Value(value) => {
                    prepared.push(index, value, &sender_for_task, &validator, &now)
                }
                parse::Item::Malformed { pointer, message } => {
                    prepared.push_refused(index, pointer, message)
                }
            }
        }
        Ok::<_, Problem>(prepared)
    })
    .await
    .map_err(|e| Problem::internal(format!("validation task failed: {e}")))??;
    state.metrics.record_batch_format(format.name());
    let mut report = IngestReport {
        received: prepared.received,
        duplicates: prepared.duplicates_in_batch,
        ..IngestReport::default()
    };
    report.add_rejections(prepared.rejected_events, prepared.rejected);
    submit(state, &sender, received_at, prepared.events, &mut report).await?;
    Ok(report)
}

/// The permits of [`AppState::parse_permits`] a body of `len` bytes takes: its size, but never
/// more than the whole budget (so one body of any accepted size can always be parsed).
pub(crate) fn parse_weight(len: usize, budget: u64) -> u32 {
    (len as u64)
        .clamp(1, parse_capacity(budget) as u64)
        .try_into()
        .unwrap_or(u32::MAX)
}

/// The capacity of [`AppState::parse_permits`] for a budget of `budget` bytes.
pub fn parse_capacity(budget: u64) -> usize {
    budget.clamp(1, u64::from(u32::MAX)) as usize
}

/// Hands validated events to the sink, counting what it accepted.
pub(crate) async fn submit(
    state: &AppState,
    sender: &Identity,
    received_at: chrono::DateTime<chrono::Utc>,
    events: Vec<IngestEvent>,
    report: &mut IngestReport,
) -> Result<(), Problem> {
    if events.is_empty() {
        return Ok(());
    }
    let count = events.len();
    let batch = IngestBatch {
        sender: sender.clone(),
        received_at,
        events,
    };
    match state.sink.submit(batch).await {
        Ok(outcome) => {
            let duplicates = outcome.duplicates.len().min(count);
            report.accepted += count - duplicates;
            report.duplicates += duplicates;
            Ok(())
        }
        Err(SinkError::Full { retry_after }) => Err(Problem::unavailable(
            "queue-full",
            "the event queue is full; send this batch again later",
            retry_after,
        )),
        Err(e @ SinkError::Unavailable(_)) => {
            tracing::warn!("ingest: {e}");
            Err(Problem::unavailable(
                "queue-unavailable",
                "the event queue is unavailable; send this batch again later",
                std::time::Duration::from_secs(5),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str) -> Value {
        json!({"@timestamp": "2026-01-01T00:00:00Z",
               "event": {"id": id, "kind": "event", "category": ["host"]}})
    }

    const ID: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

    #[test]
    fn agent_identity_is_enforced() {
        let v = EventValidator::new().unwrap();
        let agent = Identity::agent("a1");
        let ok = prepare_event(event(ID), &agent, &v, "2026-01-01T00:00:01.000Z").unwrap();
        assert_eq!(ok.event["agent"]["id"], "a1");
        assert_eq!(ok.event["event"]["agent_id_status"], "missing");
        assert_eq!(ok.event["event"]["ingested"], "2026-01-01T00:00:01.000Z");

        let mut own = event(ID);
        own["agent"] = json!({"id": "a1", "name": "ws"});
        let ok = prepare_event(own, &agent, &v, "2026-01-01T00:00:01Z").unwrap();
        assert_eq!(ok.event["event"]["agent_id_status"], "verified");

        let mut spoof = event(ID);
        spoof["agent"] = json!({"id": "a2"});
        let e = prepare_event(spoof, &agent, &v, "x").unwrap_err();
        assert_eq!(e[0].pointer, "/agent/id");

        let mut weird = event(ID);
        weird["agent"] = json!({"id": 5});
        assert_eq!(
            prepare_event(weird, &agent, &v, "x").unwrap_err()[0].pointer,
            "/agent/id"
        );

        let admin = Identity::operator("root", Role::Admin);
        let mut imported = event(ID);
        imported["agent"] = json!({"id": "a9"});
        let ok = prepare_event(imported, &admin, &v, "2026-01-01T00:00:01Z").unwrap();
        assert_eq!(ok.event["agent"]["id"], "a9");
        assert_eq!(
            ok.event["event"]["agent_id_status"],
            "auth_metadata_missing"
        );

        assert!(prepare_event(json!([1]), &agent, &v, "x").is_err());
    }

    #[test]
    fn duplicates_within_a_batch_are_counted() {
        let v = EventValidator::new().unwrap();
        let agent = Identity::agent("a1");
        let mut p = Prepared::default();
        p.push(0, event(ID), &agent, &v, "2026-01-01T00:00:01Z");
        p.push(1, event(ID), &agent, &v, "2026-01-01T00:00:01Z");
        p.push(2, json!({}), &agent, &v, "2026-01-01T00:00:01Z");
        assert_eq!(
            (p.received, p.events.len(), p.duplicates_in_batch),
            (3, 1, 1)
        );
        assert_eq!(p.rejected_events, 1);
        assert!(p.rejected.iter().all(|r| r.index == 2));
    }
}
