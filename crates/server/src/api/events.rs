//! `GET /api/v1/events`, `/api/v1/events/{id}`, `/api/v1/events/histogram`.

use axum::Json;
use dozor_store::{DEFAULT_PAGE_LIMIT, EventQuery, HistogramQuery, MAX_HISTOGRAM_BUCKETS, now_ms};
use uuid::Uuid;

use super::access::{Caller, Params, PathId, READ, bad_param, not_found, store_problem};
use super::types::{EventPage, Histogram, HistogramBucket, StoredEvent};
use crate::problem::Problem;
use crate::problem_responses::{ApiNotConfigured, Forbidden, Unauthorized, problem_response};

const DAY_MS: i64 = 86_400_000;
/// Buckets an automatic interval aims at (at most).
const AUTO_BUCKETS: i64 = 120;
/// Intervals chosen automatically, seconds.
const AUTO_INTERVALS: &[i64] = &[
    1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000,
];

/// The query parameters of `GET /api/v1/events`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct SearchParameters {
    /// Query language filter
    #[param(nullable = false)]
    q: Option<String>,
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
    /// Only events sent by this agent
    #[param(nullable = false)]
    agent: Option<String>,
    /// Page size, 1-1000 (default 100)
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[param(nullable = false)]
    cursor: Option<String>,
}

/// The names in [`SearchParameters`]: any other is refused.
const SEARCH_PARAMETERS: &[&str] = &["q", "from", "to", "agent", "limit", "cursor"];

problem_response! {
    BadSearch = 400, "Bad parameter, query (`column` says where) or cursor";
    NoSuchEvent = 404, "No such event";
    BadHistogram = 400, "Bad parameter or query";
}

#[utoipa::path(get, path = super::EVENTS, tag = "events", operation_id = "events",
    summary = "Search events",
    description = "Searches stored events, newest first. `q` is the Dozor query language: `field:value` \
(case-insensitive, `*` wildcards, `field:*` exists, `field:>N` `>=` `<` `<=`), quoted values, free text \
(matches where a word of the event's values starts with it: `power` finds `PowerShell.exe`; `*shell` searches \
for a substring anywhere, slowly), `AND` `OR` `NOT` and parentheses, e.g. `process.name:powershell.exe AND NOT user.name:SYSTEM`. \
A query that does not parse is a 400 `invalid-query` problem with the `column` of the error. \
Times (`from`, `to`) are milliseconds since the epoch, RFC 3339, `now` or `now-<duration>` (`now-15m`).",
    params(SearchParameters),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        BadSearch,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn search(
    caller: Caller<READ>,
    params: Params,
) -> Result<Json<EventPage>, Problem> {
    params.only(SEARCH_PARAMETERS)?;
    let now = now_ms();
    let query = EventQuery {
        from: params.time("from", now)?,
        to: params.time("to", now)?,
        agent_id: params.string("agent")?,
        query: params.string("q")?,
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

#[utoipa::path(get, path = super::EVENT, tag = "events", operation_id = "event",
    summary = "One event",
    params(("id" = String, Path, description = "event.id (UUID)")),
    responses(
        (status = 200, description = "The event", body = StoredEvent),
        Unauthorized,
        Forbidden<READ>,
        NoSuchEvent,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(caller: Caller<READ>, id: PathId) -> Result<Json<StoredEvent>, Problem> {
    let what = || not_found(&format!("event {}", id.0));
    let uuid = Uuid::parse_str(&id.0).map_err(|_| what())?;
    match caller.api.store.get_event(uuid).await {
        Ok(Some(event)) => Ok(Json(event)),
        Ok(None) => Err(what()),
        Err(e) => Err(store_problem(e)),
    }
}

/// The query parameters of `GET /api/v1/events/histogram`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
// Describes the query only (`Params` reads it): the fields are never read.
#[allow(dead_code)]
struct HistogramParameters {
    /// Query language filter
    #[param(nullable = false)]
    q: Option<String>,
    /// Start (default: to - 24h)
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    from: Option<String>,
    /// End (default: now)
    #[param(
        nullable = false,
        pattern = r"^(|-?[0-9]{1,15}|now|now-[0-9]{1,9}(s|m|min|h|d)?|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))$"
    )]
    to: Option<String>,
    /// Only events sent by this agent
    #[param(nullable = false)]
    agent: Option<String>,
    /// Bucket width: 30s, 5m, 1h, 1d (a number is seconds); at most 10000 buckets
    #[param(nullable = false, pattern = r"^(|[1-9][0-9]{0,8}(s|m|min|h|d)?)$")]
    interval: Option<String>,
}

/// The names in [`HistogramParameters`]: any other is refused.
const HISTOGRAM_PARAMETERS: &[&str] = &["q", "from", "to", "agent", "interval"];

#[utoipa::path(get, path = super::EVENTS_HISTOGRAM, tag = "events", operation_id = "histogram",
    summary = "Events per time bucket",
    description = "Events per time bucket over [from, to) (default: the last 24 hours), every bucket present. \
`from` is rounded down to a multiple of the interval. Without `interval`, one of 1s, 5s, 10s, 30s, 1m, 5m, \
10m, 15m, 30m, 1h, 3h, 6h, 12h, 1d, 7d, 30d is chosen to give at most 120 buckets.",
    params(HistogramParameters),
    responses(
        (status = 200, description = "The buckets", body = Histogram),
        BadHistogram,
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn histogram(
    caller: Caller<READ>,
    params: Params,
) -> Result<Json<Histogram>, Problem> {
    params.only(HISTOGRAM_PARAMETERS)?;
    let now = now_ms();
    let to = params.time("to", now)?.unwrap_or(now);
    let from = params
        .time("from", now)?
        .unwrap_or(to.saturating_sub(DAY_MS));
    if from >= to {
        return Err(bad_param("from", "from must be before to"));
    }
    let span = to - from;
    let interval_ms = match params.get("interval")? {
        Some(text) => crate::config::parse_duration_secs(text)
            .and_then(|s| i64::try_from(s).ok())
            .and_then(|s| s.checked_mul(1000))
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                bad_param(
                    "interval",
                    format!(
                        "interval: {text:?} is not a duration (30s, 5m, 1h, 1d; a number is seconds)"
                    ),
                )
            })?,
        None => auto_interval(span),
    };
    let start = from.div_euclid(interval_ms) * interval_ms;
    let buckets = div_ceil(to - start, interval_ms);
    if buckets > MAX_HISTOGRAM_BUCKETS {
        return Err(bad_param(
            "interval",
            format!(
                "{buckets} buckets of {}s: at most {MAX_HISTOGRAM_BUCKETS}; take a longer interval",
                interval_ms / 1000
            ),
        ));
    }
    let query = HistogramQuery {
        from: start,
        to,
        bucket_ms: interval_ms,
        agent_id: params.string("agent")?,
        query: params.string("q")?,
        received: false,
    };
    let buckets = caller
        .api
        .store
        .event_histogram(&query)
        .await
        .map_err(store_problem)?;
    Ok(Json(Histogram {
        from: start,
        to,
        interval_ms,
        total: buckets.iter().map(|b| b.count).sum(),
        buckets: buckets
            .into_iter()
            .map(|b| HistogramBucket {
                start: b.start,
                count: b.count,
            })
            .collect(),
    }))
}

/// `a / b` rounded up, for `a >= 0`, `b > 0`.
fn div_ceil(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// The shortest of [`AUTO_INTERVALS`] giving at most [`AUTO_BUCKETS`] buckets.
fn auto_interval(span_ms: i64) -> i64 {
    AUTO_INTERVALS
        .iter()
        .map(|s| s * 1000)
        .find(|ms| div_ceil(span_ms, *ms) <= AUTO_BUCKETS)
        .unwrap_or_else(|| {
            // Longer than 120 × 30 days: whole days, as few as fit.
            div_ceil(div_ceil(span_ms, AUTO_BUCKETS), DAY_MS) * DAY_MS
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_parameters_are_the_accepted_ones() {
        use crate::openapi::query_parameter_names as names;
        assert_eq!(names::<SearchParameters>(), SEARCH_PARAMETERS);
        assert_eq!(names::<HistogramParameters>(), HISTOGRAM_PARAMETERS);
    }

    #[test]
    fn automatic_intervals() {
        assert_eq!(auto_interval(60_000), 1000);
        assert_eq!(auto_interval(DAY_MS), 900_000);
        assert_eq!(auto_interval(7 * DAY_MS), 3 * 3_600_000);
        let huge = 100 * 365 * DAY_MS;
        let i = auto_interval(huge);
        assert!(div_ceil(huge, i) <= AUTO_BUCKETS && i % DAY_MS == 0);
    }
}
