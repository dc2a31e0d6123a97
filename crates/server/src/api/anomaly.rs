//! Behavioural analytics: `GET /api/v1/anomaly/models`, `POST /api/v1/anomaly/train`,
//! `POST /api/v1/anomaly/score`, `GET /api/v1/anomalies`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use dozor_anomaly::{Activity, Finding};
use dozor_store::{DEFAULT_PAGE_LIMIT, EventQuery, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::{ADMIN, Caller, JsonBody, Params, READ, TRIAGE, bad_param, store_problem};
use super::types::EventPage;
use crate::anomaly::{AnomalyService, AnomalyStatus};
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, Forbidden, NotJson, NotJsonMediaType, Unauthorized, problem_response,
};
use crate::state::AppState;

pub(crate) const MODELS: &str = "/api/v1/anomaly/models";
pub(crate) const TRAIN: &str = "/api/v1/anomaly/train";
pub(crate) const SCORE: &str = "/api/v1/anomaly/score";
pub(crate) const ANOMALIES: &str = "/api/v1/anomalies";

/// Events or vectors one scoring request may carry.
pub(crate) const MAX_SCORE_ITEMS: usize = 10_000;

/// The finding kinds, as `GET /api/v1/anomalies?kind=` takes them (the dashboard's list).
pub(crate) use dozor_ui::ANOMALY_KINDS as KINDS;

problem_response! {
    AnomalyOff = 409, "Behavioural analytics is off (`anomaly.enabled = false`)";
    BadScoreRequest = 422, "The body is not `{\"events\": [...]}` or `{\"vectors\": [[...]]}` (`detail` says what)";
    TooManyItems = 413, "More than 10,000 events or vectors";
    NoForest = 409, "No isolation forest is trained yet (`no-forest`: too few host-hours in the look-back window), or behavioural analytics is off (`anomaly-off`)";
    BadAnomalyQuery = 400, "Bad parameter (`detail` names it)";
}

fn service(state: &AppState) -> Result<&Arc<AnomalyService>, Problem> {
    state.anomaly.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api-not-configured",
            "Service unavailable",
        )
        .detail("behavioural analytics needs a store: this server has none attached")
    })
}

#[utoipa::path(get, path = MODELS, tag = "anomaly", operation_id = "anomaly_models",
    summary = "The anomaly models: state, training window, counts",
    description = "What the behavioural analytics job has done: its state (`disabled`, `starting`, `training`, \
`scoring`), the last training (when, how many events, their span) and the next one, the events scored, \
findings and alerts since, how far the stored events are read, the last run's error, and each model with the \
number of entities (hosts, users, host+process pairs) it has a baseline of.",
    responses(
        (status = 200, description = "The models' status", body = AnomalyStatus),
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn models(
    _caller: Caller<READ>,
    State(state): State<Arc<AppState>>,
) -> Result<Json<AnomalyStatus>, Problem> {
    Ok(Json(service(&state)?.status()))
}

/// Answer of `POST /api/v1/anomaly/train`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrainAnswer {
    /// Always `requested`: the job trains at once; `GET /api/v1/anomaly/models` shows when
    /// it is done (`trained_at`).
    pub status: String,
    /// The look-back window it learns, days.
    pub lookback_days: u32,
}

#[utoipa::path(post, path = TRAIN, tag = "anomaly", operation_id = "anomaly_train",
    summary = "Train the anomaly models again now",
    description = "Asks the job to learn the look-back window (`anomaly.lookback_days`) from scratch and swap \
the new models in (admin, audited as `anomaly.train`). It answers at once; training runs in the job.",
    responses(
        (status = 202, description = "Training requested", body = TrainAnswer),
        Unauthorized,
        Forbidden<ADMIN>,
        AnomalyOff,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn train(
    caller: Caller<ADMIN>,
    State(state): State<Arc<AppState>>,
) -> Result<(StatusCode, Json<TrainAnswer>), Problem> {
    let service = service(&state)?;
    crate::ops::anomaly::request_training(service, &caller.identity.subject).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TrainAnswer {
            status: "requested".into(),
            lookback_days: service.config().lookback_days,
        }),
    ))
}

/// Body of `POST /api/v1/anomaly/score`: normalized events, or feature vectors for the
/// isolation forest (one of the two).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// Normalized (ECS-style) events, each with `@timestamp` and `host.name`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub events: Option<Vec<serde_json::Map<String, Value>>>,
    /// Host-hour feature vectors in the forest's feature order (`forest_features` of
    /// `GET /api/v1/anomaly/models`).
    #[serde(default)]
    pub vectors: Option<Vec<Vec<f64>>>,
}

/// One finding of a scored event.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoredFinding {
    /// Index of the event in the request.
    pub index: usize,
    /// What is unusual, with its explanation.
    #[schema(value_type = Object)]
    pub finding: Value,
}

/// One scored vector.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoredVector {
    pub index: usize,
    /// Isolation score, 0..1 (about 0.5 and below is normal).
    pub score: f64,
    /// The features that made it unusual, with their usual range.
    #[schema(value_type = Object)]
    pub explanation: Value,
}

/// An event or vector that could not be scored.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Skipped {
    pub index: usize,
    pub problem: String,
}

/// Answer of `POST /api/v1/anomaly/score`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScoreAnswer {
    /// Events or vectors scored.
    pub scored: usize,
    /// Findings of the events (none for an event the models find usual).
    pub findings: Vec<ScoredFinding>,
    /// Scores of the vectors.
    pub vectors: Vec<ScoredVector>,
    /// What could not be scored, and why.
    pub skipped: Vec<Skipped>,
}

fn score_problem(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-score-request",
        "Invalid scoring request",
    )
    .detail(detail)
}

fn event_time(doc: &Value) -> Option<i64> {
    let text = doc.get("@timestamp")?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

#[utoipa::path(post, path = SCORE, tag = "anomaly", operation_id = "anomaly_score",
    summary = "Score events or feature vectors against the live models",
    description = "Scores normalized events (`{\"events\": [...]}`) with the per-entity models, or host-hour \
feature vectors (`{\"vectors\": [[...]]}`) with the isolation forest, and explains each finding (what was \
observed, what is usual, the baseline). The models do not learn what they are asked about. At most 10,000 \
items; an event without an RFC 3339 `@timestamp` or a `host.name` is listed under `skipped`.",
    request_body = ScoreRequest,
    responses(
        (status = 200, description = "Scores and explanations", body = ScoreAnswer),
        BadScoreRequest,
        TooManyItems,
        NoForest,
        NotJson,
        NotJsonMediaType,
        Unauthorized,
        Forbidden<TRIAGE>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn score(
    _caller: Caller<TRIAGE>,
    State(state): State<Arc<AppState>>,
    JsonBody(request): JsonBody<ScoreRequest>,
) -> Result<Json<ScoreAnswer>, Problem> {
    let service = service(&state)?.clone();
    if !service.config().enabled {
        // Empty models would answer "nothing unusual": say they are off instead.
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "anomaly-off",
            "Behavioural analytics is off",
        )
        .detail("set anomaly.enabled = true and restart the server"));
    }
    let items = match (&request.events, &request.vectors) {
        (Some(events), None) => events.len(),
        (None, Some(vectors)) => vectors.len(),
        _ => return Err(score_problem("give either `events` or `vectors`, not both")),
    };
    if items > MAX_SCORE_ITEMS {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-many-items",
            "Too many items",
        )
        .detail(format!(
            "{items} items; at most {MAX_SCORE_ITEMS} per request"
        )));
    }
    // Scoring is CPU work: off the async threads.
    let answer = tokio::task::spawn_blocking(move || match request {
        ScoreRequest {
            events: Some(events),
            ..
        } => Ok(score_events(
            &service,
            &events.into_iter().map(Value::Object).collect::<Vec<_>>(),
        )),
        ScoreRequest {
            vectors: Some(vectors),
            ..
        } => score_vectors(&service, &vectors),
        _ => Ok(ScoreAnswer::default()),
    })
    .await
    .map_err(|e| Problem::internal(format!("scoring failed: {e}")))??;
    Ok(Json(answer))
}

fn score_events(service: &AnomalyService, events: &[Value]) -> ScoreAnswer {
    let mut answer = ScoreAnswer::default();
    for (index, doc) in events.iter().enumerate() {
        let (Some(time), Some(activity)) = (event_time(doc), Activity::of(doc)) else {
            answer.skipped.push(Skipped {
                index,
                problem: if event_time(doc).is_none() {
                    "no RFC 3339 `@timestamp`".into()
                } else {
                    "no `host.name`".into()
                },
            });
            continue;
        };
        answer.scored += 1;
        for finding in service.score_only(&activity, time) {
            answer.findings.push(ScoredFinding {
                index,
                finding: finding_json(&finding),
            });
        }
    }
    answer
}

fn finding_json(finding: &Finding) -> Value {
    let mut value = serde_json::to_value(finding).unwrap_or(Value::Null);
    value["events_query"] = json!(crate::anomaly::contributing_query(finding));
    value
}

fn score_vectors(service: &AnomalyService, vectors: &[Vec<f64>]) -> Result<ScoreAnswer, Problem> {
    service.with_detector(|detector| {
        let Some(forest) = detector.forest() else {
            return Err(Problem::new(StatusCode::CONFLICT, "no-forest", "No forest trained")
                .detail("the isolation forest is trained once the look-back window holds enough host-hours (256); train again later"));
        };
        let mut answer = ScoreAnswer::default();
        for (index, row) in vectors.iter().enumerate() {
            match forest.explain(row, 3) {
                Ok(explanation) => {
                    answer.scored += 1;
                    answer.vectors.push(ScoredVector {
                        index,
                        score: explanation.score,
                        explanation: serde_json::to_value(&explanation).unwrap_or(Value::Null),
                    });
                }
                Err(e) => answer.skipped.push(Skipped {
                    index,
                    problem: e.to_string(),
                }),
            }
        }
        Ok(answer)
    })
}

/// The query parameters of `GET /api/v1/anomalies`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct AnomalyParameters {
    /// Only this kind (`rare_process`, `rare_parent_child`, `rare_logon_source`, `unusual_logon_hour`,
    /// `failed_logon_burst`, `new_destination`, `new_listening_port`, `volume_spike`, `unusual_host_activity`)
    #[param(
        nullable = false,
        pattern = r"^(|rare_process|rare_parent_child|rare_logon_source|unusual_logon_hour|failed_logon_burst|new_destination|new_listening_port|volume_spike|unusual_host_activity)$"
    )]
    kind: Option<String>,
    /// Only this entity (a host or user name; `*` wildcards)
    #[param(nullable = false)]
    entity: Option<String>,
    /// Event time ≥ from
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    from: Option<String>,
    /// Event time < to
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    to: Option<String>,
    /// Page size, 1-1000 (default 100)
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(nullable = false)]
    cursor: Option<String>,
}

const ANOMALY_PARAMETERS: &[&str] = &["kind", "entity", "from", "to", "limit", "cursor"];

/// The event query of an anomaly list: every anomaly event, of one kind and entity.
pub(crate) fn anomaly_query(kind: Option<&str>, entity: Option<&str>) -> String {
    let mut q = String::from("event.action:anomaly-detected");
    if let Some(kind) = kind {
        q.push_str(&format!(" AND event.dataset:anomaly.{kind}"));
    }
    if let Some(entity) = entity {
        q.push_str(&format!(
            " AND anomaly.entity:{}",
            crate::anomaly::quoted(entity)
        ));
    }
    q
}

#[utoipa::path(get, path = ANOMALIES, tag = "anomaly", operation_id = "anomalies",
    summary = "Anomaly events, newest first",
    description = "The findings of the behavioural analytics job, stored as events (`event.action: \
anomaly-detected`): each with `anomaly.kind`, `score`, `entity`, `observed`, `expected`, `baseline`, the \
`features` that made it unusual, `message`, and the triggering event (`anomaly.source_event`) or, for an \
hourly finding, the hour (`anomaly.window`) and the event search that shows it (`anomaly.events_query`).",
    params(AnomalyParameters),
    responses(
        (status = 200, description = "One page of anomaly events", body = EventPage),
        BadAnomalyQuery,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(caller: Caller<READ>, params: Params) -> Result<Json<EventPage>, Problem> {
    params.only(ANOMALY_PARAMETERS)?;
    let kind = params.string("kind")?.filter(|k| !k.is_empty());
    if let Some(kind) = &kind
        && !KINDS.contains(&kind.as_str())
    {
        return Err(bad_param(
            "kind",
            format!("{kind:?}: one of {}", KINDS.join(", ")),
        ));
    }
    let entity = params.string("entity")?.filter(|e| !e.is_empty());
    let now = now_ms();
    let query = EventQuery {
        from: params.time("from", now)?,
        to: params.time("to", now)?,
        agent_id: None,
        query: Some(anomaly_query(kind.as_deref(), entity.as_deref())),
        cursor: params.string("cursor")?,
        limit: params.limit(DEFAULT_PAGE_LIMIT, dozor_store::MAX_PAGE_LIMIT)?,
    };
    let page = caller
        .api
        .store
        .search_events(&query)
        .await
        .map_err(store_problem)?;
    Ok(Json(page))
}
