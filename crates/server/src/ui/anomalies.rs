//! The anomalies page (`GET /ui/anomalies`: the findings of the behavioural models with their
//! explanations, a chart per kind, the models' state) and its admin form
//! (`POST /ui/anomalies/train`, the API's own operation, audited).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_store::{EventQuery, HistogramQuery, now_ms};
use dozor_ui::{ANOMALY_KINDS, AnomaliesView, AnomalyModelsView, Range};

use super::common::{
    ADMIN, FormAction, READ, done, error, failed, form_fields, page, page_ctx, require, see_other,
};
use crate::api::anomaly::anomaly_query;
use crate::session::WebUser;
use crate::state::AppState;

const LIST: &str = "/ui/anomalies";
/// Anomalies one page lists.
const PAGE_SIZE: u32 = 50;

fn parse_rfc3339(text: &Option<String>) -> Option<i64> {
    text.as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}

fn models_view(state: &AppState) -> AnomalyModelsView {
    let Some(service) = &state.anomaly else {
        return AnomalyModelsView {
            state: "disabled".into(),
            ..Default::default()
        };
    };
    let s = service.status();
    AnomalyModelsView {
        trained_at: parse_rfc3339(&s.trained_at),
        training_first: parse_rfc3339(&s.training_first_event),
        training_last: parse_rfc3339(&s.training_last_event),
        next_training: parse_rfc3339(&s.next_training),
        last_run: parse_rfc3339(&s.last_run),
        state: s.state,
        lookback_days: s.lookback_days,
        alert_score: s.alert_score,
        training_events: s.training_events,
        scored_events: s.scored_events,
        findings: s.findings,
        alerts: s.alerts,
        last_error: s.last_error,
        models: s
            .models
            .into_iter()
            .map(|m| (m.name, m.model, m.entity_field, m.entities))
            .collect(),
    }
}

/// `GET /ui/anomalies?kind=&entity=&range=&cursor=`.
pub(crate) async fn list(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let fields = form_fields(q.unwrap_or_default().as_bytes());
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let kind = Some(field("kind")).filter(|k| ANOMALY_KINDS.contains(&k.as_str()));
            let entity = Some(field("entity")).filter(|e| !e.is_empty());
            let range = Range::from_code(&field("range"))
                .filter(|r| *r != Range::Custom)
                .unwrap_or(Range::Days7);
            let cursor = Some(field("cursor")).filter(|c| !c.is_empty());
            let to = now_ms();
            let from = range.span_ms().map(|span| to - span);
            let store = user.api.store.as_ref();
            let page_of = store
                .search_events(&EventQuery {
                    from,
                    to: Some(to),
                    agent_id: None,
                    query: Some(anomaly_query(kind.as_deref(), entity.as_deref())),
                    cursor,
                    limit: PAGE_SIZE,
                })
                .await
                .map_err(failed(&user))?;
            // One count per kind over the window: the chart.
            let span_from = match from {
                Some(f) => f,
                None => store
                    .event_span(None, Some(&anomaly_query(None, None)), Some(to))
                    .await
                    .map_err(failed(&user))?
                    .map_or(to - 1, |(lo, _)| lo),
            };
            let mut per_kind = Vec::new();
            for k in ANOMALY_KINDS {
                let buckets = store
                    .event_histogram(&HistogramQuery {
                        from: span_from,
                        to,
                        bucket_ms: (to - span_from).max(1),
                        agent_id: None,
                        query: Some(anomaly_query(Some(k), entity.as_deref())),
                        received: false,
                    })
                    .await
                    .map_err(failed(&user))?;
                let n: u64 = buckets.iter().map(|b| b.count).sum();
                if n > 0 {
                    per_kind.push(((*k).to_owned(), n));
                }
            }
            let view = AnomaliesView {
                kind: kind.unwrap_or_default(),
                entity: entity.unwrap_or_default(),
                range,
                from,
                to,
                anomalies: page_of.events,
                next_cursor: page_of.next_cursor,
                per_kind,
                models: models_view(&state),
            };
            Ok(page(&state, &ctx, dozor_ui::anomalies(&ctx, &view)))
        }
        .await,
    )
}

/// `POST /ui/anomalies/train` (admin): the models learn the look-back window again.
pub(crate) async fn train(
    State(state): State<Arc<AppState>>,
    action: FormAction<ADMIN>,
) -> Response {
    let Some(service) = &state.anomaly else {
        return error(
            action.user.lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error.failed",
        );
    };
    match crate::ops::anomaly::request_training(service, &action.user.username).await {
        Ok(()) => see_other(&state, LIST, "flash.anomaly_training"),
        Err(e) => action.failed(&state, LIST, e),
    }
}
