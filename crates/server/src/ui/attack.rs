//! `GET /ui/attack`: the ATT&CK matrix. The period's alerts are read once, newest first by
//! the chosen time (detection time unless `by=event`), at most
//! [`OVERVIEW_ALERT_SCAN`] of them like the overview; rule coverage comes from the rule
//! catalog in memory (active rules not switched off) — no other query.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use dozor_model::AlertQuery;
use dozor_store::{Store, StoreError};
use dozor_ui::{AttackParams, AttackView};

use super::common::{OVERVIEW_ALERT_SCAN, READ, form_fields, page, page_ctx, require};
use crate::session::WebUser;
use crate::state::AppState;

/// Alerts read per store page.
const SCAN_PAGE: u32 = 1000;

/// Counts the period's alerts and the enabled rules by technique.
async fn attack_view(
    store: &dyn Store,
    rules: &[crate::api::RuleInfo],
    params: AttackParams,
    now: i64,
) -> Result<AttackView, StoreError> {
    let mut view = AttackView {
        params,
        ..AttackView::default()
    };
    let disabled: HashSet<String> = store
        .list_rule_states()
        .await?
        .into_iter()
        .filter(|s| !s.enabled)
        .map(|s| s.rule_id)
        .collect();
    for r in rules
        .iter()
        .filter(|r| r.outcome == "active" && !disabled.contains(&r.id))
    {
        view.rules.add(&r.tags);
    }
    let mut query = AlertQuery {
        time: params.by,
        from: params.from(now),
        limit: SCAN_PAGE,
        ..AlertQuery::default()
    };
    let mut scanned = 0;
    loop {
        let page = store.list_alerts(&query).await?;
        scanned += page.alerts.len();
        for a in &page.alerts {
            view.alerts.add(&a.tags);
        }
        match page.next_cursor {
            Some(c) if scanned < OVERVIEW_ALERT_SCAN => query.cursor = Some(c),
            Some(_) => {
                view.truncated = true;
                break;
            }
            None => break,
        }
    }
    Ok(view)
}

/// `GET /ui/attack`: tactics × techniques, coloured by the period's alerts and marked by
/// the enabled rules that detect each technique.
pub(crate) async fn matrix(
    user: WebUser,
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(refused) = require(&user, READ) {
        return refused;
    }
    let ctx = page_ctx(&user, &uri, &headers);
    let params = AttackParams::parse(&form_fields(q.unwrap_or_default().as_bytes()));
    let rules = user.api.rules.list();
    match attack_view(user.api.store.as_ref(), &rules, params, ctx.now).await {
        Ok(view) => page(&state, &ctx, dozor_ui::attack_matrix(&ctx, &view)),
        Err(e) => super::common::store_failed(user.lang, e),
    }
}
