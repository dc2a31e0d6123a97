//! The dashboard's vulnerability pages and form (issue 15): the overview (counts by level,
//! the trend over recent scans, the worst hosts and CVEs, the filtered result list with
//! keyset paging), one result with the analyst's decision (accept the risk, false positive,
//! reopen), a host (its results beside its agent's alerts and software inventory) and a CVE
//! (the hosts it affects). They read the store's `vuln_scan_result` records; the decision is
//! the store's `set_vuln_status`, audited `vuln.status`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use dozor_model::{AlertQuery, VulnQuery, VulnStatus, VulnStatusRequest, VulnSummary};
use dozor_store::{Store, StoreError, now_ms};
use dozor_ui::{VulnCveView, VulnDetailView, VulnHostView, VulnParams, VulnsView};
use serde_json::json;

use super::common::{
    FormAction, READ, TRIAGE, form_fields, html, page, page_ctx, require, see_other,
};
use super::common::{done, failed, not_found};
use crate::ops::OpError;
use crate::session::WebUser;
use crate::state::AppState;

/// Hosts and CVEs the overview lists as the worst.
const TOP: u32 = 10;
/// Hosts a CVE's page lists.
const CVE_HOSTS: u32 = 200;
/// Scans the trend chart reads.
const TREND_SCANS: u32 = 30;
/// Alerts of a host's agent shown beside its results.
const HOST_ALERTS: u32 = 20;
/// Longest text filter, characters.
const MAX_FILTER: usize = 4096;
/// A day, ms.
const DAY_MS: i64 = 86_400_000;

fn nonempty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.chars().take(MAX_FILTER).collect())
}

/// A result id of a path (positive).
fn vuln_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|id| *id > 0)
}

async fn agent_names(store: &dyn Store) -> Result<HashMap<String, String>, StoreError> {
    Ok(store
        .list_agents()
        .await?
        .into_iter()
        .map(|a| (a.id, a.facts.hostname))
        .collect())
}

/// The store's query of the list's filters (without paging).
fn query_of(p: &VulnParams) -> VulnQuery {
    VulnQuery {
        host: nonempty(&p.host),
        agent_id: nonempty(&p.agent),
        cve: nonempty(&p.cve).map(|c| c.to_ascii_uppercase()),
        levels: nonempty(&p.level).into_iter().collect(),
        statuses: p.status.parse::<VulnStatus>().ok().into_iter().collect(),
        source: nonempty(&p.source),
        contains: nonempty(&p.q),
        ..VulnQuery::default()
    }
}

// ---------------------------------------------------------------- pages

/// `GET /ui/vulns`: counts by level and status of what the filters (`host`, `agent`, `cve`,
/// `level`, `status`, `source`, `q`) select, the trend over the recent scans, the worst hosts
/// and CVEs, and one page of results, most severe first (`after`: the keyset of the last
/// row shown).
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
            let params = VulnParams::parse(&form_fields(q.unwrap_or_default().as_bytes()));
            let store = user.api.store.as_ref();
            let mut error = None;
            let after = match params.after.as_deref().map(VulnParams::parse_keyset) {
                None => None,
                Some(Some(k)) => Some(k),
                Some(None) => {
                    error = Some("error.bad_cursor".to_owned());
                    None
                }
            };
            let filter = query_of(&params);
            let limit = VulnParams::PAGE_SIZE;
            let results = store
                .list_vulns(&VulnQuery {
                    after,
                    limit,
                    ..filter.clone()
                })
                .await
                .map_err(failed(&user))?;
            let summary = store
                .vuln_summary(&filter, TOP)
                .await
                .map_err(failed(&user))?;
            let total = store.count_vulns(&filter).await.map_err(failed(&user))?;
            let source = nonempty(&params.source);
            let scans = store
                .list_vuln_scans(source.as_deref(), TREND_SCANS)
                .await
                .map_err(failed(&user))?;
            let next_after = (results.len() == limit as usize)
                .then(|| results.last().map(|r| VulnParams::keyset(r.severity, r.id)))
                .flatten();
            let jobs = store.list_vuln_scan_jobs().await.map_err(failed(&user))?;
            let view = VulnsView {
                params,
                summary,
                scans,
                jobs,
                results,
                total,
                next_after,
                agent_names: agent_names(store).await.map_err(failed(&user))?,
                error,
            };
            Ok(page(&state, &ctx, dozor_ui::vulns(&ctx, &view)))
        }
        .await,
    )
}

/// The page of one result (`error`: why a change was just refused).
async fn detail_page(
    user: &WebUser,
    id: i64,
    ctx: &dozor_ui::PageCtx,
    error: Option<String>,
) -> Result<String, Response> {
    let store = user.api.store.as_ref();
    let vuln = store
        .get_vuln(id)
        .await
        .map_err(failed(user))?
        .ok_or_else(|| not_found(user))?;
    let agent_name = match &vuln.agent_id {
        Some(agent) => store
            .get_agent(agent)
            .await
            .map_err(failed(user))?
            .map(|a| a.facts.hostname),
        None => None,
    };
    let view = VulnDetailView {
        vuln,
        agent_name,
        error,
    };
    Ok(dozor_ui::vuln_detail(ctx, &view))
}

/// `GET /ui/vulns/{id}`: one result, with the decision forms (analysts+).
pub(crate) async fn one(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let id = vuln_id(&id).ok_or_else(|| not_found(&user))?;
            let body = detail_page(&user, id, &ctx, None).await?;
            Ok(page(&state, &ctx, body))
        }
        .await,
    )
}

/// `GET /ui/vulns/hosts/{host}`: a host's results (most severe first, at most
/// [`VulnHostView::LIMIT`]) with its counts; when they name its agent, that agent's recent
/// alerts and its software inventory.
pub(crate) async fn host(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(host): Path<String>,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let store = user.api.store.as_ref();
            let filter = VulnQuery {
                host: Some(host.clone()),
                ..VulnQuery::default()
            };
            let results = store
                .list_vulns(&VulnQuery {
                    limit: VulnHostView::LIMIT,
                    ..filter.clone()
                })
                .await
                .map_err(failed(&user))?;
            if results.is_empty() {
                return Err(not_found(&user));
            }
            let summary: VulnSummary = store
                .vuln_summary(&filter, 1)
                .await
                .map_err(failed(&user))?;
            let agent_id = results.iter().find_map(|r| r.agent_id.clone());
            let (agent, alerts, inventory) = match agent_id {
                None => (None, Vec::new(), None),
                Some(id) => {
                    let name = store
                        .get_agent(&id)
                        .await
                        .map_err(failed(&user))?
                        .map(|a| a.facts.hostname);
                    let alerts = store
                        .list_alerts(&AlertQuery {
                            agent_id: Some(id.clone()),
                            limit: HOST_ALERTS,
                            ..AlertQuery::default()
                        })
                        .await
                        .map_err(failed(&user))?
                        .alerts;
                    let inventory = store
                        .get_agent_inventory(&id)
                        .await
                        .map_err(failed(&user))?;
                    (Some((id, name)), alerts, inventory)
                }
            };
            let view = VulnHostView {
                host,
                summary,
                results,
                agent,
                alerts,
                inventory,
            };
            Ok(page(&state, &ctx, dozor_ui::vuln_host(&ctx, &view)))
        }
        .await,
    )
}

/// `GET /ui/vulns/cves/{cve}`: the hosts a CVE affects, worst first, and its results.
pub(crate) async fn cve(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    Path(cve): Path<String>,
) -> Response {
    done(
        async {
            require(&user, READ)?;
            let ctx = page_ctx(&user, &uri, &headers);
            let store = user.api.store.as_ref();
            let cve = cve.trim().to_ascii_uppercase();
            let filter = VulnQuery {
                cve: Some(cve.clone()),
                ..VulnQuery::default()
            };
            let results = store
                .list_vulns(&VulnQuery {
                    limit: VulnHostView::LIMIT,
                    ..filter.clone()
                })
                .await
                .map_err(failed(&user))?;
            if results.is_empty() {
                return Err(not_found(&user));
            }
            let summary = store
                .vuln_summary(&filter, CVE_HOSTS)
                .await
                .map_err(failed(&user))?;
            let view = VulnCveView {
                cve,
                summary,
                results,
                agent_names: agent_names(store).await.map_err(failed(&user))?,
            };
            Ok(page(&state, &ctx, dozor_ui::vuln_cve(&ctx, &view)))
        }
        .await,
    )
}

// ---------------------------------------------------------------- the decision

/// The end of an acceptance as typed: a date alone means the end of that day (UTC), anything
/// else the dashboard's time formats. `Err` when it does not read.
fn until_of(text: Option<&str>, now: i64) -> Result<Option<i64>, ()> {
    let Some(text) = text else {
        return Ok(None);
    };
    let at = dozor_ui::format::parse_time(text, now).ok_or(())?;
    let date_only = text.len() == 10 && (text.as_bytes()[4] == b'-' || text.as_bytes()[2] == b'.');
    Ok(Some(if date_only { at + DAY_MS } else { at }))
}

/// `POST /ui/vulns/{id}/status` (analysts, admins): `status` (`accepted`, `false_positive`,
/// `open`), `reason` (required for the first two), `until` (an acceptance's last day,
/// optional). The store's `set_vuln_status`, audited `vuln.status`; back to the result with a
/// flash message. What the store refuses (no reason, an expiry in the past, `fixed`) is shown
/// on the result's page in its own words (400).
pub(crate) async fn set_status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    action: FormAction<TRIAGE>,
) -> Response {
    let user = &action.user;
    let Some(id) = vuln_id(&id) else {
        return not_found(user);
    };
    let back = format!("/ui/vulns/{id}");
    let Some(status) = action
        .form
        .get("status")
        .and_then(|s| s.parse::<VulnStatus>().ok())
    else {
        return see_other(&state, &back, "error.vuln_status");
    };
    let now = now_ms();
    let until = match status {
        VulnStatus::Accepted => match until_of(action.form.get("until"), now) {
            Ok(u) => u,
            Err(()) => return see_other(&state, &back, "error.bad_time"),
        },
        _ => None,
    };
    let request = VulnStatusRequest {
        status,
        reason: action.form.get("reason").map(str::to_owned),
        until,
    };
    let store = user.api.store.as_ref();
    let before = match store.get_vuln(id).await {
        Ok(Some(v)) => v,
        Ok(None) => return not_found(user),
        Err(e) => return action.failed(&state, &back, OpError::from(e)),
    };
    let changed = match store
        .set_vuln_status(id, &request, &user.username, now)
        .await
    {
        Ok(Some(v)) => v,
        Ok(None) => return not_found(user),
        Err(StoreError::InvalidArgument(why)) => {
            let uri: Uri = back.parse().unwrap_or_default();
            let ctx = page_ctx(user, &uri, &HeaderMap::new());
            return match detail_page(user, id, &ctx, Some(why)).await {
                Ok(body) => html(&state, StatusCode::BAD_REQUEST, false, body),
                Err(r) => r,
            };
        }
        Err(e) => return action.failed(&state, &back, OpError::from(e)),
    };
    let audited = crate::ops::audited(
        store,
        &user.username,
        "vuln.status",
        format!("vuln:{id}"),
        // as the API's `POST /api/v1/vulns/{id}/status` writes it, with the status before
        json!({
            "status": changed.status.as_str(),
            "from": before.status.as_str(),
            "reason": changed.status_reason,
            "until": changed.status_until,
            "host": changed.host,
            "oid": changed.nvt_oid,
        }),
    )
    .await;
    match audited {
        Ok(()) => see_other(
            &state,
            &back,
            match changed.status {
                VulnStatus::Accepted => "flash.vuln_accepted",
                VulnStatus::FalsePositive => "flash.vuln_false_positive",
                _ => "flash.vuln_reopened",
            },
        ),
        Err(e) => action.failed(&state, &back, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptance_ends() {
        let day = dozor_ui::format::parse_time("2030-01-02", 0).unwrap();
        assert_eq!(until_of(Some("2030-01-02"), 0), Ok(Some(day + DAY_MS)));
        assert_eq!(until_of(Some("02.01.2030"), 0), Ok(Some(day + DAY_MS)));
        assert_eq!(
            until_of(Some("2030-01-02 12:00"), 0),
            Ok(Some(day + DAY_MS / 2))
        );
        assert_eq!(until_of(None, 0), Ok(None));
        assert_eq!(until_of(Some("soon"), 0), Err(()));
    }
}
