//! The dashboard's threat-intelligence pages and forms (issue 14): the indicator search with
//! the form to add one by hand, one indicator (enable/disable), the sources with "Sync now",
//! and the recent matches. The changes, their checks and audit entries are the JSON API's
//! (`crate::api::intel`): the forms make the same calls, the pages read the same views (the
//! sources with their secrets as `***`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_model::{
    AlertQuery, IntelMatch, IntelMatchQuery, IocEnabledRequest, IocQuery, IocView, ManualIocRequest,
};
use dozor_store::{Alert, Store, StoreError, now_ms};
use dozor_ui::{
    IntelMatchesParams, IntelMatchesView, IntelParams, IntelSourcesView, IntelView, IocDetailView,
    MatchView,
};

use super::common::{FormAction, READ, TRIAGE, error, page, page_ctx, see_other};
use super::common::{done, failed, not_found, pairs};
use super::response::caller;
use crate::api::access::{JsonBody, PathId};
use crate::intel::MANUAL_SOURCE;
use crate::problem::Problem;
use crate::session::WebUser;
use crate::state::AppState;

/// Matches shown on an indicator's page (the API's detail gives as many).
const IOC_MATCHES: usize = 100;
/// Alerts read per (rule, agent) to find the alert of a match.
const ALERT_SCAN: u32 = 200;
/// Most (rule, agent) pairs one page looks up alerts for; the rest link to the alert list.
const ALERT_LOOKUPS: usize = 25;
/// Longest text filter, characters (the API's limits).
const MAX_FILTER: usize = 4096;

/// The answer to an API call that failed on a page: not found, or the store's failure.
fn problem_page(user: &WebUser, p: &Problem) -> Response {
    match p.slug() {
        "not-found" | "invalid-parameter" => not_found(user),
        slug => {
            tracing::error!("ui: intel: {slug}");
            error(user.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed")
        }
    }
}

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_FILTER).collect())
}

async fn agent_names(store: &dyn Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| (a.id, a.facts.hostname))
        .collect())
}

/// The rule id of an indicator's alerts, as the pipeline names it: `dozor-intel/<its first
/// source>/<kind>`.
fn rule_id(sources: &[dozor_model::IocSourceRef], kind: &str) -> String {
    format!(
        "dozor-intel/{}/{kind}",
        sources.first().map_or("unknown", |s| s.name.as_str())
    )
}

/// The matches with the alerts they raised: for each alerted match, the alert of the
/// indicator's rule on the match's agent that holds the event, or whose time span covers it
/// (an alert keeps only its first event ids). Bounded: at most [`ALERT_LOOKUPS`] alert
/// listings of [`ALERT_SCAN`] alerts; `rules` gives the rule id of known indicators.
async fn with_alerts(
    store: &dyn Store,
    matches: Vec<IntelMatch>,
    mut rules: HashMap<i64, String>,
) -> Result<Vec<MatchView>, StoreError> {
    for m in &matches {
        if m.alerted && !rules.contains_key(&m.ioc_id) {
            let rule = match store.get_ioc(m.ioc_id).await? {
                Some(ioc) => rule_id(&ioc.sources, &ioc.kind),
                None => String::new(),
            };
            rules.insert(m.ioc_id, rule);
        }
    }
    let mut alerts: HashMap<(String, Option<String>), Vec<Alert>> = HashMap::new();
    let mut out = Vec::with_capacity(matches.len());
    for m in matches {
        let rule = rules.get(&m.ioc_id).filter(|r| !r.is_empty()).cloned();
        let mut alert_id = None;
        if let (true, Some(rule)) = (m.alerted, &rule) {
            let key = (rule.clone(), m.agent_id.clone());
            if !alerts.contains_key(&key) && alerts.len() < ALERT_LOOKUPS {
                let page = store
                    .list_alerts(&AlertQuery {
                        rule_id: Some(rule.clone()),
                        agent_id: m.agent_id.clone(),
                        limit: ALERT_SCAN,
                        ..AlertQuery::default()
                    })
                    .await?;
                alerts.insert(key.clone(), page.alerts);
            }
            if let Some(list) = alerts.get(&key) {
                let event = uuid::Uuid::parse_str(&m.event_id).ok();
                alert_id = list
                    .iter()
                    .find(|a| event.is_some_and(|e| a.event_ids.contains(&e)))
                    .or_else(|| {
                        list.iter()
                            .find(|a| a.first_seen <= m.event_ts && m.event_ts <= a.last_seen)
                    })
                    .map(|a| a.id);
            }
        }
        out.push(MatchView {
            matched: m,
            alert_id,
            rule_id: rule,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- pages

/// `GET /ui/intel`: the indicator search (`q`, `kind`, `source`, `tag`, `active`, `cursor`),
/// in id order with the store's keyset cursor, and the form to add one (analysts+).
pub(crate) async fn iocs(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let params = IntelParams::parse(&pairs(q));
            let Some(service) = state.intel.as_ref() else {
                let view = IntelView {
                    params,
                    ..IntelView::default()
                };
                return Ok(page(&state, &ctx, dozor_ui::intel(&ctx, &view)));
            };
            let store = service.store().as_ref();
            let now = now_ms();
            let mut error = None;
            let after_id = match params.cursor.as_deref().map(str::parse::<i64>) {
                None => 0,
                Some(Ok(c)) if c >= 0 => c,
                Some(_) => {
                    error = Some("error.bad_cursor".to_owned());
                    0
                }
            };
            let filter = IocQuery {
                kind: nonempty(&params.kind),
                contains: nonempty(&params.q),
                source: nonempty(&params.source),
                tag: nonempty(&params.tag),
                active_at: params.active.then_some(now),
                ..IocQuery::default()
            };
            let limit = IntelParams::PAGE_SIZE;
            let list = store
                .list_iocs(&IocQuery {
                    after_id: Some(after_id),
                    limit,
                    ..filter.clone()
                })
                .await
                .map_err(failed(&user))?;
            let total = store.count_iocs(&filter).await.map_err(failed(&user))?;
            let next_cursor = (list.len() == limit as usize)
                .then(|| list.last().map(|i| i.id.to_string()))
                .flatten();
            let mut sources: Vec<String> = store
                .list_intel_sources()
                .await
                .map_err(failed(&user))?
                .into_iter()
                .map(|s| s.name)
                .collect();
            if !sources.iter().any(|s| s == MANUAL_SOURCE) {
                sources.push(MANUAL_SOURCE.to_owned());
            }
            let view = IntelView {
                params,
                iocs: list.into_iter().map(|i| IocView::of(i, now)).collect(),
                total,
                next_cursor,
                sources,
                available: true,
                error,
            };
            Ok(page(&state, &ctx, dozor_ui::intel(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/intel/iocs/{id}`: one indicator (the API's detail) with its matches and the
/// alerts they raised.
pub(crate) async fn ioc(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            if state.intel.is_none() {
                return Err(not_found(&user));
            }
            let detail =
                crate::api::intel::one(caller::<READ>(&user), State(state.clone()), PathId(id))
                    .await
                    .map_err(|p| problem_page(&user, &p))?
                    .0;
            let store = user.api.store.as_ref();
            let i = &detail.ioc.ioc;
            let rules = [(i.id, rule_id(&i.sources, &i.kind))].into_iter().collect();
            let mut matches = detail.matches;
            matches.truncate(IOC_MATCHES);
            let view = IocDetailView {
                matches: with_alerts(store, matches, rules)
                    .await
                    .map_err(failed(&user))?,
                agent_names: agent_names(store).await.map_err(failed(&user))?,
                ioc: detail.ioc,
            };
            Ok(page(&state, &ctx, dozor_ui::ioc_detail(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/intel/sources`: every source with its last sync, settings without secrets.
pub(crate) async fn sources(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = page_ctx(&user, &uri, &headers);
    let view = match state.intel {
        None => IntelSourcesView::default(),
        Some(_) => {
            match crate::api::intel::sources(caller::<READ>(&user), State(state.clone())).await {
                Ok(list) => IntelSourcesView {
                    sources: list.0.sources,
                    available: true,
                },
                Err(p) => return problem_page(&user, &p),
            }
        }
    };
    page(&state, &ctx, dozor_ui::intel_sources(&ctx, &view))
}

/// `GET /ui/intel/matches`: recent matches, newest first (`ioc`, `cursor`).
pub(crate) async fn matches(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    done(
        async {
            let ctx = page_ctx(&user, &uri, &headers);
            let params = IntelMatchesParams::parse(&pairs(q));
            let Some(service) = state.intel.as_ref() else {
                let view = IntelMatchesView {
                    params,
                    ..IntelMatchesView::default()
                };
                return Ok(page(&state, &ctx, dozor_ui::intel_matches(&ctx, &view)));
            };
            let store = service.store().as_ref();
            let mut error = None;
            let before_id = match params.cursor.as_deref().map(str::parse::<i64>) {
                None => None,
                Some(Ok(c)) if c > 0 => Some(c),
                Some(_) => {
                    error = Some("error.bad_cursor".to_owned());
                    None
                }
            };
            let limit = IntelMatchesParams::PAGE_SIZE;
            let list = store
                .list_intel_matches(&IntelMatchQuery {
                    ioc_id: params.ioc,
                    before_id,
                    limit,
                    ..IntelMatchQuery::default()
                })
                .await
                .map_err(failed(&user))?;
            let next_cursor = (list.len() == limit as usize)
                .then(|| list.last().map(|m| m.id.to_string()))
                .flatten();
            let view = IntelMatchesView {
                matches: with_alerts(store, list, HashMap::new())
                    .await
                    .map_err(failed(&user))?,
                params,
                next_cursor,
                agent_names: agent_names(store).await.map_err(failed(&user))?,
                available: true,
                error,
            };
            Ok(page(&state, &ctx, dozor_ui::intel_matches(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- forms

/// The flash key of a refused intelligence change, or the error page of one the user can't
/// fix.
fn refusal(user: &WebUser, state: &AppState, back: &str, p: &Problem) -> Response {
    let flash = match p.slug() {
        "not-found" | "invalid-parameter" => return not_found(user),
        "invalid-ioc" | "invalid-body" => "error.ioc_invalid",
        "invalid-source" => "error.source_invalid",
        "sync-busy" => "error.intel_busy",
        "api-not-configured" => "error.intel_off",
        slug => {
            tracing::error!("ui: intel: {slug}");
            return error(user.lang, StatusCode::INTERNAL_SERVER_ERROR, "error.failed");
        }
    };
    see_other(state, back, flash)
}

/// The manual indicator a form asks for: `kind`, `value`, `expires_in_days` (empty: never),
/// `confidence` (empty: none), `tags` (comma-separated), `comment`, `to_ids` (checkbox).
/// `None` when a number does not read.
fn manual_request(form: &super::common::Posted) -> Option<ManualIocRequest> {
    let number = |name: &str| -> Result<Option<u32>, ()> {
        form.get(name)
            .map(|v| v.parse::<u32>().map_err(|_| ()))
            .transpose()
    };
    let confidence = number("confidence")
        .ok()?
        .map(|c| u8::try_from(c).unwrap_or(u8::MAX));
    Some(ManualIocRequest {
        kind: form.get("kind").unwrap_or("").to_owned(),
        value: form.get("value").unwrap_or("").to_owned(),
        tags: form
            .get("tags")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        confidence,
        to_ids: Some(form.get("to_ids").is_some()),
        expires_in_days: number("expires_in_days").ok()?,
        comment: form.get("comment").map(str::to_owned),
    })
}

/// `POST /ui/intel/iocs` (analysts, admins): adds an indicator by hand as the API's
/// `POST /api/v1/intel/iocs` does (normalized, merged, warninglists, retro-hunt, audited
/// `intel.ioc.add`) and shows it.
pub(crate) async fn add(
    State(state): State<Arc<AppState>>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let back = action.form.return_to("/ui/intel");
    if state.intel.is_none() {
        return see_other(&state, &back, "error.intel_off");
    }
    let Some(request) = manual_request(&action.form) else {
        return see_other(&state, &back, "error.ioc_invalid");
    };
    if request.value.is_empty() {
        return see_other(&state, &back, "error.ioc_invalid");
    }
    match crate::api::intel::add(
        caller::<TRIAGE>(user),
        State(state.clone()),
        JsonBody(request),
    )
    .await
    {
        Ok((_, view)) => see_other(
            &state,
            &format!("/ui/intel/iocs/{}", view.0.ioc.id),
            "flash.ioc_added",
        ),
        Err(p) => refusal(user, &state, &back, &p),
    }
}

/// `POST /ui/intel/iocs/{id}/enabled` (analysts, admins): `enabled` (`true`/`false`),
/// `return_to`. As the API's (audited `intel.ioc.enabled`; the matchers follow at once).
pub(crate) async fn ioc_enabled(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let enabled = match action.form.get("enabled") {
        Some("true") => true,
        Some("false") => false,
        _ => return error(user.lang, StatusCode::BAD_REQUEST, "error.400"),
    };
    let back = action
        .form
        .return_to(&format!("/ui/intel/iocs/{}", dozor_ui::url::segment(&id)));
    if state.intel.is_none() {
        return see_other(&state, &back, "error.intel_off");
    }
    match crate::api::intel::set_enabled(
        caller::<TRIAGE>(user),
        State(state.clone()),
        PathId(id),
        JsonBody(IocEnabledRequest { enabled }),
    )
    .await
    {
        Ok(_) if enabled => see_other(&state, &back, "flash.ioc_enabled"),
        Ok(_) => see_other(&state, &back, "flash.ioc_disabled"),
        Err(p) => refusal(user, &state, &back, &p),
    }
}

/// `POST /ui/intel/sources/{name}/sync` (analysts, admins): one sync now, as the API's
/// (audited `intel.source.sync`); back to the sources, where the outcome is recorded, with
/// a message that says how it went.
pub(crate) async fn sync(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let back = action.form.return_to("/ui/intel/sources");
    if state.intel.is_none() {
        return see_other(&state, &back, "error.intel_off");
    }
    match crate::api::intel::sync(caller::<TRIAGE>(user), State(state.clone()), PathId(name)).await
    {
        Ok(status) => see_other(
            &state,
            &back,
            match status.0.status.as_str() {
                "ok" => "flash.intel_synced",
                "partial" => "flash.intel_sync_partial",
                _ => "error.intel_sync_failed",
            },
        ),
        Err(p) => refusal(user, &state, &back, &p),
    }
}
