//! `GET /api/v1/stats`: counts for dashboards.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use axum::Json;
use dozor_store::now_ms;

use super::access::{Caller, READ, store_problem};
use super::types::{PipelineCounts, RuleCounts, Stats};
use crate::problem::Problem;
use crate::problem_responses::{ApiNotConfigured, Forbidden, Unauthorized};

#[utoipa::path(get, path = super::STATS, tag = "stats", operation_id = "stats",
    summary = "Counts for dashboards",
    responses(
        (status = 200, description = "Counts of events, alerts and rules (and the pipeline's counters when this process runs it)", body = Stats),
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn stats(caller: Caller<READ>) -> Result<Json<Stats>, Problem> {
    let store = caller.api.store.as_ref();
    let counts = store.stats().await.map_err(store_problem)?;
    let last_day = store
        .count_events(Some(now_ms() - 86_400_000), None)
        .await
        .map_err(store_problem)?;
    let disabled: HashSet<String> = store
        .list_rule_states()
        .await
        .map_err(store_problem)?
        .into_iter()
        .filter(|s| !s.enabled)
        .map(|s| s.rule_id)
        .collect();
    let rules = caller.api.rules.list();
    let rule_counts = RuleCounts {
        total: rules.len(),
        active_enabled: rules
            .iter()
            .filter(|r| r.outcome == "active" && !disabled.contains(&r.id))
            .count(),
        disabled: rules.iter().filter(|r| disabled.contains(&r.id)).count(),
        not_active: rules.iter().filter(|r| r.outcome != "active").count(),
    };
    let pipeline = caller
        .api
        .pipeline_stats
        .as_deref()
        .map(|p| PipelineCounts {
            events_processed: p.events.load(Ordering::Relaxed),
            events_stored: p.stored.load(Ordering::Relaxed),
            events_duplicate: p.duplicates.load(Ordering::Relaxed),
            detections: p.detections.load(Ordering::Relaxed),
            alerts_created: p.alerts_created.load(Ordering::Relaxed),
            alerts_updated: p.alerts_updated.load(Ordering::Relaxed),
        });
    Ok(Json(Stats {
        events_total: counts.events_total,
        events_last_24h: last_day,
        alerts_by_status: counts
            .alerts_by_status
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), n))
            .collect(),
        open_alerts_by_level: counts
            .open_alerts_by_level
            .into_iter()
            .map(|(l, n)| (l.as_str().to_owned(), n))
            .collect(),
        rules: rule_counts,
        pipeline,
    }))
}
