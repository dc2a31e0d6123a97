//! The dashboard's GET pages: read the store (bounded queries), build the view, render.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_store::{
    AlertQuery, AuditQuery, EventQuery, HistogramQuery, Level, RuleState, Store, StoreError,
};
use dozor_ui::{
    AgentCounts, AgentDetailView, AgentRow, AgentStatus, AgentsParams, AgentsView, AlertDetailView,
    AlertsParams, AlertsView, AuditView, EventsParams, EventsView, LevelBucket, OverviewView,
    ProfileView, QueryProblem, RuleCounts, RuleDetailView, RuleRow, RulesParams, RulesView,
    TopRule, UsersView,
};

use super::common::{ADMIN, OVERVIEW_ALERT_SCAN, READ, error, page, page_ctx, require};
use super::common::{done, failed, pairs};
use crate::api::RuleInfo;
use crate::session::WebUser;
use crate::state::AppState;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Rows per page of the alert list and the event search.
pub(crate) const PAGE_ROWS: u32 = 100;
/// Commands (on-demand scans) shown on an agent's page.
const AGENT_COMMANDS_SHOWN: u32 = 20;
/// Histogram buckets the event search aims at (at most).
const HISTOGRAM_BUCKETS: i64 = 120;
/// Bucket widths the event histogram picks from, seconds.
const INTERVALS: &[i64] = &[
    1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000,
];
/// The histogram of an unbounded ("all time") search covers this much.
const ALL_TIME_HISTOGRAM_MS: i64 = 30 * DAY_MS;

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// The dashboard's status of an agent (the API's rules and thresholds).
pub(crate) use crate::api::agents::status_of as agent_status;

async fn agent_names(store: &dyn Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| (a.id, a.facts.hostname))
        .collect())
}

pub(crate) fn rule_row(info: RuleInfo, state: Option<&RuleState>) -> RuleRow {
    RuleRow {
        level: info.level.as_deref().and_then(|l| l.parse::<Level>().ok()),
        id: info.id,
        title: info.title,
        description: info.description,
        status: info.status,
        kind: info.kind,
        outcome: info.outcome,
        reason: info.reason,
        tags: info.tags,
        author: info.author,
        path: info.path,
        product: info.logsource.product,
        category: info.logsource.category,
        service: info.logsource.service,
        enabled: state.is_none_or(|s| s.enabled),
        hit_count: state.map_or(0, |s| s.hit_count),
        last_hit: state.and_then(|s| s.last_hit),
    }
}

// ---------------------------------------------------------------- overview

async fn overview_view(
    state: &AppState,
    user: &WebUser,
    now: i64,
) -> Result<OverviewView, StoreError> {
    let store = user.api.store.as_ref();
    let first_hour = now.div_euclid(HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
    let ingest_bucket = 15 * 60_000;
    let ingest_from = now.div_euclid(ingest_bucket) * ingest_bucket - 95 * ingest_bucket;
    let histogram = HistogramQuery {
        from: ingest_from,
        to: ingest_from + 96 * ingest_bucket,
        bucket_ms: ingest_bucket,
        agent_id: None,
        query: None,
        // Ingest is about arrival: uploaded years-old logs count when they come in.
        received: true,
    };
    let (stats, last_day, states, agents, ingest) = tokio::join!(
        store.stats(),
        store.count_received(now - DAY_MS),
        store.list_rule_states(),
        store.list_agents(),
        store.event_histogram(&histogram),
    );
    let (stats, states, agents) = (stats?, states?, agents?);

    let mut counts = AgentCounts::default();
    for a in &agents {
        match agent_status(state, a, now) {
            AgentStatus::Online => counts.online += 1,
            AgentStatus::Degraded => counts.degraded += 1,
            AgentStatus::Offline => counts.offline += 1,
            AgentStatus::Revoked => counts.revoked += 1,
        }
    }

    let disabled: std::collections::HashSet<&str> = states
        .iter()
        .filter(|s| !s.enabled)
        .map(|s| s.rule_id.as_str())
        .collect();
    let rules = user.api.rules.list();
    let rule_counts = RuleCounts {
        total: rules.len() as u64,
        active_enabled: rules
            .iter()
            .filter(|r| r.outcome == "active" && !disabled.contains(r.id.as_str()))
            .count() as u64,
        disabled: rules
            .iter()
            .filter(|r| disabled.contains(r.id.as_str()))
            .count() as u64,
        not_active: rules.iter().filter(|r| r.outcome != "active").count() as u64,
    };

    // alerts raised in the last 24 h by hour and level (by detection time: fresh detections
    // on uploaded old logs are today's work), and the rules behind them
    let mut buckets: Vec<LevelBucket> = (0..24)
        .map(|i| LevelBucket {
            start: first_hour + i * HOUR_MS,
            counts: [0; 5],
        })
        .collect();
    let mut top: HashMap<String, TopRule> = HashMap::new();
    let mut query = AlertQuery {
        from: Some(first_hour),
        time: dozor_model::AlertTime::Detected,
        limit: 1000,
        ..AlertQuery::default()
    };
    let mut scanned = 0;
    loop {
        let page = store.list_alerts(&query).await?;
        scanned += page.alerts.len();
        for a in page.alerts {
            let i = (a.created_at - first_hour).div_euclid(HOUR_MS).clamp(0, 23) as usize;
            let l = Level::ALL.iter().position(|x| *x == a.level).unwrap_or(0);
            buckets[i].counts[l] += 1;
            let entry = top.entry(a.rule_id.clone()).or_insert_with(|| TopRule {
                rule_id: a.rule_id.clone(),
                title: a.rule_title.clone(),
                level: a.level,
                alerts: 0,
                detections: 0,
            });
            entry.alerts += 1;
            entry.detections += u64::try_from(a.count).unwrap_or(0);
        }
        match page.next_cursor {
            Some(c) if scanned < OVERVIEW_ALERT_SCAN => query.cursor = Some(c),
            _ => break,
        }
    }
    let mut top_rules: Vec<TopRule> = top.into_values().collect();
    top_rules.sort_by(|a, b| {
        b.alerts
            .cmp(&a.alerts)
            .then(b.detections.cmp(&a.detections))
            .then_with(|| a.title.cmp(&b.title))
    });
    top_rules.truncate(10);

    Ok(OverviewView {
        alerts_per_hour: buckets,
        open_by_level: stats.open_alerts_by_level,
        alerts_by_status: stats.alerts_by_status,
        top_rules,
        agents: counts,
        ingest: ingest?,
        ingest_bucket_ms: ingest_bucket,
        events_total: stats.events_total,
        events_last_24h: last_day?,
        rules: rule_counts,
    })
}

/// `GET /ui/`: the overview.
pub(crate) async fn overview(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = page_ctx(&user, &uri, &headers);
    match overview_view(&state, &user, ctx.now).await {
        Ok(v) => page(&state, &ctx, dozor_ui::overview(&ctx, &v)),
        Err(e) => super::common::store_failed(user.lang, e),
    }
}

// ---------------------------------------------------------------- alerts

/// `GET /ui/alerts`: the alert list (filters, sort within the page, cursor paging).
pub(crate) async fn alerts(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let mut params = AlertsParams::parse(&pairs(q));
            let mut problem = None;
            let (from, to) = params.time.bounds(ctx.now).unwrap_or_else(|_| {
                problem = Some("error.bad_time");
                (None, None)
            });
            let store = user.api.store.as_ref();
            let agent_names = agent_names(store).await.map_err(failed(&user))?;
            // People type what they see: a host name for the agent, title words for the rule.
            let agent_id = nonempty(&params.agent).map(|typed| {
                let key = typed.trim().to_lowercase();
                agent_names
                    .iter()
                    .find(|(id, host)| **id == typed || host.to_lowercase() == key)
                    .map_or(typed, |(id, _)| id.clone())
            });
            let mut query = AlertQuery {
                statuses: params.statuses.clone(),
                min_level: params.min_level,
                rule_text: nonempty(&params.rule),
                agent_id,
                host: nonempty(&params.host),
                tag: nonempty(&params.tag),
                assignee: nonempty(&params.assignee),
                time: params.by,
                from,
                to,
                cursor: params.cursor.clone(),
                limit: PAGE_ROWS,
                ..AlertQuery::default()
            };
            let page_of = match store.list_alerts(&query).await {
                Err(StoreError::InvalidCursor) => {
                    problem = Some("error.bad_cursor");
                    query.cursor = None;
                    params.cursor = None;
                    store.list_alerts(&query).await
                }
                other => other,
            }
            .map_err(failed(&user))?;
            let total = store.count_alerts(&query).await.map_err(failed(&user))?;
            let view = AlertsView {
                params,
                alerts: page_of.alerts,
                agent_names,
                next_cursor: page_of.next_cursor,
                total,
                error: problem.map(str::to_owned),
            };
            Ok(page(&state, &ctx, dozor_ui::alerts(&ctx, &view)))
        }
        .await,
    )
}

pub(crate) fn alert_id(text: &str) -> Option<i64> {
    text.parse::<i64>().ok().filter(|id| *id > 0)
}

/// `GET /ui/alerts/{id}`: one alert with its events, comments and history.
pub(crate) async fn alert(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let store = user.api.store.as_ref();
            let not_found = || error(user.lang, StatusCode::NOT_FOUND, "error.not_found");
            let id = alert_id(&id).ok_or_else(not_found)?;
            let alert = store
                .get_alert(id)
                .await
                .map_err(failed(&user))?
                .ok_or_else(not_found)?;
            let (comments, history, users) = tokio::join!(
                store.comments(id),
                store.status_history(id),
                store.list_users()
            );
            let mut events = Vec::with_capacity(alert.event_ids.len());
            let mut missing = 0;
            for event_id in &alert.event_ids {
                match store.get_event(*event_id).await.map_err(failed(&user))? {
                    Some(e) => events.push(e),
                    None => missing += 1,
                }
            }
            let agent_name = match &alert.agent_id {
                Some(a) => store
                    .get_agent(a)
                    .await
                    .map_err(failed(&user))?
                    .map(|a| a.facts.hostname),
                None => None,
            };
            let rule = user
                .api
                .rules
                .list()
                .into_iter()
                .find(|r| r.id == alert.rule_id)
                .map(|info| rule_row(info, None));
            let assignees = super::common::triage_users(users.map_err(failed(&user))?);
            // A tree that can't be built (a search timing out) leaves the page without it.
            let process_tree = crate::process_tree::build(store, &events)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(alert = id, "process tree: {e}");
                    None
                });
            let incident = store.incident_of_alert(id).await.map_err(failed(&user))?;
            let view = AlertDetailView {
                alert,
                rule,
                agent_name,
                process_tree,
                incident,
                events,
                missing_events: missing,
                comments: comments.map_err(failed(&user))?,
                history: history.map_err(failed(&user))?,
                assignees,
                response: super::response::panel(&state, store, Some(id), None)
                    .await
                    .map_err(failed(&user))?,
            };
            Ok(page(&state, &ctx, dozor_ui::alert_detail(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- events

fn auto_interval(span_ms: i64) -> i64 {
    INTERVALS
        .iter()
        .map(|s| s * 1000)
        .find(|ms| (span_ms + ms - 1) / ms <= HISTOGRAM_BUCKETS)
        .unwrap_or_else(|| {
            let per = (span_ms + HISTOGRAM_BUCKETS - 1) / HISTOGRAM_BUCKETS;
            (per + DAY_MS - 1) / DAY_MS * DAY_MS
        })
}

/// `GET /ui/events`: search with the query language, histogram, field sidebar.
pub(crate) async fn events(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let mut params = EventsParams::parse(&pairs(q));
            let mut problem = None;
            let now = ctx.now;
            let (from, to) = params.time.bounds(now).unwrap_or_else(|_| {
                problem = Some("error.bad_time");
                (Some(now - DAY_MS), None)
            });
            let store = user.api.store.as_ref();
            // "All time" or no start: the chart spans the matching events themselves
            // (uploaded logs may be years old), not a fixed window before now.
            let span = match from {
                Some(_) => None,
                None => store
                    .event_span(
                        nonempty(&params.agent).as_deref(),
                        nonempty(&params.q).as_deref(),
                        to,
                    )
                    .await
                    .unwrap_or(None),
            };
            let hist_to = to
                .unwrap_or_else(|| span.map_or(now, |(_, hi)| hi.saturating_add(1)))
                .max(from.map_or(i64::MIN, |f| f + 1000));
            let hist_from = from
                .or(span.map(|(lo, _)| lo))
                .unwrap_or(hist_to - ALL_TIME_HISTOGRAM_MS)
                .min(hist_to - 1000);
            let bucket = auto_interval((hist_to - hist_from).max(1000));
            let histogram = HistogramQuery {
                from: hist_from.div_euclid(bucket) * bucket,
                to: hist_to,
                bucket_ms: bucket,
                agent_id: nonempty(&params.agent),
                query: nonempty(&params.q),
                received: false,
            };
            let mut search = EventQuery {
                from,
                to,
                agent_id: nonempty(&params.agent),
                query: nonempty(&params.q),
                cursor: params.cursor.clone(),
                limit: PAGE_ROWS,
            };
            let (found, counted) = tokio::join!(
                store.search_events(&search),
                store.event_histogram(&histogram)
            );
            let found = match found {
                Err(StoreError::InvalidCursor) => {
                    problem = Some("error.bad_cursor");
                    search.cursor = None;
                    params.cursor = None;
                    store.search_events(&search).await
                }
                other => other,
            };
            let mut view = EventsView {
                bucket_ms: bucket,
                agent_names: agent_names(store).await.map_err(failed(&user))?,
                ..EventsView::default()
            };
            match found {
                Ok(p) => {
                    view.events = p.events;
                    view.next_cursor = p.next_cursor;
                }
                Err(StoreError::Query(e)) => {
                    view.query_error = Some(QueryProblem {
                        column: Some(e.column),
                        message: e.message,
                    });
                }
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            }
            match counted {
                Ok(h) => view.histogram = h,
                Err(StoreError::Query(_)) => {}
                Err(e) => return Err(super::common::store_failed(user.lang, e)),
            }
            view.params = params;
            view.error = problem.map(str::to_owned);
            Ok(page(&state, &ctx, dozor_ui::events(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- agents

/// `GET /ui/agents`: the registry with live status dots.
pub(crate) async fn agents(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let list = user.api.store.list_agents().await.map_err(failed(&user))?;
            let view = AgentsView {
                agents: list
                    .into_iter()
                    .map(|agent| AgentRow {
                        status: agent_status(&state, &agent, ctx.now),
                        agent,
                    })
                    .collect(),
                params: AgentsParams::parse(&pairs(q)),
            };
            Ok(page(&state, &ctx, dozor_ui::agents(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/exceptions`: every alert exception with what it has suppressed.
pub(crate) async fn exceptions(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let exceptions = user
                .api
                .store
                .list_exceptions()
                .await
                .map_err(failed(&user))?;
            let rule_titles = user
                .api
                .rules
                .list()
                .into_iter()
                .map(|r| (r.id, r.title))
                .collect();
            let view = dozor_ui::ExceptionsView {
                exceptions,
                rule_titles,
            };
            Ok(page(&state, &ctx, dozor_ui::exceptions(&ctx, &view)))
        }
        .await,
    )
}

/// Hosts listed at most (most recently active first; the name filter finds the others).
const HOSTS_SHOWN: u32 = 1000;
/// Days of a host's activity chart, ending at its last event.
const HOST_TIMELINE_DAYS: i64 = 14;

/// `GET /ui/hosts`: every host Dozor has events of.
pub(crate) async fn hosts(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let search = pairs(q)
                .into_iter()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            let store = user.api.store.as_ref();
            let query = dozor_store::HostQuery {
                search: nonempty(&search),
                limit: HOSTS_SHOWN,
            };
            let (hosts, agent_names) = tokio::join!(store.list_hosts(&query), agent_names(store));
            let hosts = hosts.map_err(failed(&user))?;
            let view = dozor_ui::HostsView {
                search,
                truncated: hosts.len() >= HOSTS_SHOWN as usize,
                hosts,
                agent_names: agent_names.map_err(failed(&user))?,
            };
            Ok(page(&state, &ctx, dozor_ui::hosts(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/hosts/{name}`: one host, its activity, alerts and latest events.
/// Open vulnerabilities shown on a host's page at most.
const HOST_VULNS: u32 = 10;

/// A host's open vulnerabilities: its agent's (inventory, and scans linked to the agent) and
/// those of scans that name it (address or host name, any letter case), most severe first.
async fn host_vulns(
    store: &dyn dozor_store::Store,
    host: &dozor_store::Host,
) -> Result<Vec<dozor_store::StoredVuln>, dozor_store::StoreError> {
    // Results of other hosts whose names contain this one are read and dropped: a page of
    // them is enough to fill the panel.
    const CANDIDATES: u32 = 200;
    let open = |q: dozor_store::VulnQuery| dozor_store::VulnQuery {
        statuses: vec![dozor_store::VulnStatus::Open],
        limit: CANDIDATES,
        ..q
    };
    let named = |v: &dozor_store::StoredVuln| {
        v.host.eq_ignore_ascii_case(&host.name)
            || v.hostname
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&host.name))
    };
    let mut found: Vec<_> = store
        .list_vulns(&open(dozor_store::VulnQuery {
            contains: Some(host.name.clone()),
            ..Default::default()
        }))
        .await?
        .into_iter()
        .filter(named)
        .collect();
    if let Some(agent) = &host.agent_id {
        let of_agent = store
            .list_vulns(&open(dozor_store::VulnQuery {
                agent_id: Some(agent.clone()),
                ..Default::default()
            }))
            .await?;
        for v in of_agent {
            if !found.iter().any(|f| f.id == v.id) {
                found.push(v);
            }
        }
    }
    found.sort_by(|a, b| b.severity.total_cmp(&a.severity).then(a.id.cmp(&b.id)));
    found.truncate(HOST_VULNS as usize);
    Ok(found)
}

pub(crate) async fn host(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let store = user.api.store.as_ref();
            let host = store
                .get_host(&name)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| error(user.lang, StatusCode::NOT_FOUND, "error.not_found"))?;
            let by_host = dozor_ui::url::add_term("", "host.name", &host.name);
            let alerts = AlertQuery {
                host: Some(host.name.clone()),
                limit: 20,
                ..AlertQuery::default()
            };
            // The host's latest activity, not the wall clock: uploaded logs may be years old.
            let end = host.last_seen.div_euclid(DAY_MS) * DAY_MS + DAY_MS;
            let start = end - HOST_TIMELINE_DAYS * DAY_MS;
            let events = EventQuery {
                query: Some(by_host.clone()),
                from: Some(start),
                limit: 30,
                ..EventQuery::default()
            };
            let histogram = HistogramQuery {
                from: start,
                to: end,
                bucket_ms: DAY_MS,
                agent_id: None,
                query: Some(by_host),
                received: false,
            };
            let (alerts, events, timeline) = tokio::join!(
                store.list_alerts(&alerts),
                store.search_events(&events),
                store.event_histogram(&histogram),
            );
            let agent = match &host.agent_id {
                Some(id) => store.get_agent(id).await.map_err(failed(&user))?,
                None => None,
            };
            let vulns = host_vulns(store, &host).await.map_err(failed(&user))?;
            let view = dozor_ui::HostDetailView {
                vulns,
                agent,
                alerts: alerts.map_err(failed(&user))?.alerts,
                events: events.map_err(failed(&user))?.events,
                timeline: timeline.map_err(failed(&user))?,
                host,
            };
            Ok(page(&state, &ctx, dozor_ui::host_detail(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/agents/{id}`: one agent, its resources, recent alerts and events.
pub(crate) async fn agent(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let store = user.api.store.as_ref();
            let agent = store
                .get_agent(&id)
                .await
                .map_err(failed(&user))?
                .ok_or_else(|| error(user.lang, StatusCode::NOT_FOUND, "error.not_found"))?;
            let alerts = AlertQuery {
                agent_id: Some(id.clone()),
                limit: 20,
                ..AlertQuery::default()
            };
            let events = EventQuery {
                agent_id: Some(id.clone()),
                limit: 50,
                ..EventQuery::default()
            };
            let (alerts, events, commands) = tokio::join!(
                store.list_alerts(&alerts),
                store.search_events(&events),
                store.list_agent_commands(&id, AGENT_COMMANDS_SHOWN),
            );
            let view = AgentDetailView {
                agent: AgentRow {
                    status: agent_status(&state, &agent, ctx.now),
                    agent,
                },
                recent_alerts: alerts.map_err(failed(&user))?.alerts,
                recent_events: events.map_err(failed(&user))?.events,
                commands: commands.map_err(failed(&user))?,
                response: super::response::panel(&state, store, None, Some(&id))
                    .await
                    .map_err(failed(&user))?,
            };
            Ok(page(&state, &ctx, dozor_ui::agent_detail(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- rules

/// `GET /ui/rules`: every rule document with its state (filtered and paged by the page).
pub(crate) async fn rules(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let states: HashMap<String, RuleState> = user
                .api
                .store
                .list_rule_states()
                .await
                .map_err(failed(&user))?
                .into_iter()
                .map(|s| (s.rule_id.clone(), s))
                .collect();
            let rules = user
                .api
                .rules
                .list()
                .into_iter()
                .map(|info| {
                    let s = states.get(&info.id);
                    rule_row(info, s)
                })
                .collect();
            let view = RulesView {
                rules,
                params: RulesParams::parse(&pairs(q)),
            };
            Ok(page(&state, &ctx, dozor_ui::rules(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/rules/{id}`: one rule with its YAML and recent alerts.
pub(crate) async fn rule(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let info = user
                .api
                .rules
                .list()
                .into_iter()
                .find(|r| r.id == id)
                .ok_or_else(|| error(user.lang, StatusCode::NOT_FOUND, "error.not_found"))?;
            let store = user.api.store.as_ref();
            let alerts = AlertQuery {
                rule_id: Some(id.clone()),
                limit: 20,
                ..AlertQuery::default()
            };
            let (rule_state, alerts) =
                tokio::join!(store.rule_state(&id), store.list_alerts(&alerts));
            let view = RuleDetailView {
                rule: rule_row(info, rule_state.map_err(failed(&user))?.as_ref()),
                yaml: user.api.rules.yaml(&id),
                recent_alerts: alerts.map_err(failed(&user))?.alerts,
            };
            Ok(page(&state, &ctx, dozor_ui::rule_detail(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- admin, profile

/// `GET /ui/users` (admins).
pub(crate) async fn users(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let view = UsersView {
                users: user.api.store.list_users().await.map_err(failed(&user))?,
                new_password: None,
            };
            Ok(page(&state, &ctx, dozor_ui::users(&ctx, &view)))
        }
        .await,
    )
}

/// Rows per audit log page.
const AUDIT_ROWS: u32 = 100;

/// `GET /ui/audit` (admins): `actor`, `action`, `before`.
pub(crate) async fn audit(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            require(&user, ADMIN)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let fields = pairs(q);
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default()
            };
            let (actor, action) = (get("actor"), get("action"));
            let before = get("before").parse::<i64>().ok();
            let entries = user
                .api
                .store
                .list_audit(&AuditQuery {
                    actor: nonempty(&actor),
                    action: nonempty(&action),
                    before_id: before,
                    limit: AUDIT_ROWS,
                    ..AuditQuery::default()
                })
                .await
                .map_err(failed(&user))?;
            let next_before = (entries.len() == AUDIT_ROWS as usize)
                .then(|| entries.last().map(|e| e.id))
                .flatten();
            let view = AuditView {
                entries,
                actor,
                action,
                next_before,
                paged: before.is_some(),
            };
            Ok(page(&state, &ctx, dozor_ui::audit(&ctx, &view)))
        }
        .await,
    )
}

/// The profile view of a user (tokens listed from the store).
pub(crate) async fn profile_view(
    user: &WebUser,
    new_token: Option<dozor_ui::OneTimeSecret>,
) -> Result<ProfileView, Response> {
    Ok(ProfileView {
        language: user.language.as_deref().and_then(dozor_ui::Lang::from_code),
        tokens: user
            .api
            .store
            .list_user_tokens(user.id)
            .await
            .map_err(failed(user))?,
        new_token,
    })
}

/// `GET /ui/profile`: language, password, personal API tokens.
pub(crate) async fn profile(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let view = profile_view(&user, None).await?;
            Ok(page(&state, &ctx, dozor_ui::profile(&ctx, &view)))
        }
        .await,
    )
}

/// Any other path under `/ui/`: a 404 page (after the session check).
pub(crate) async fn not_found(user: WebUser) -> Response {
    error(user.lang, StatusCode::NOT_FOUND, "error.not_found")
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(auto_interval(DAY_MS), 900_000);
        assert_eq!(auto_interval(3_600_000), 30_000);
        assert_eq!(auto_interval(30 * DAY_MS), 6 * HOUR_MS);
        let huge = 10 * 365 * DAY_MS;
        let i = auto_interval(huge);
        assert!(huge / i <= HISTOGRAM_BUCKETS && i % DAY_MS == 0);
    }
}
