//! `GET /api/v1/rules`, `/api/v1/rules/{id}`, and enable/disable, reload, test.

use std::collections::HashMap;

use axum::Json;
use axum::http::StatusCode;
use dozor_store::{EventQuery, MAX_PAGE_LIMIT, RuleState};
use serde_json::json;

use super::access::{ADMIN, Caller, JsonBody, PathId, READ, TRIAGE, store_problem};
use super::types::{EnabledRequest, Rule, RuleDetail, RuleList, RuleTestRequest, RuleTestResult};
use crate::ops::audited;
use crate::problem::Problem;
use crate::problem_responses::{
    ApiNotConfigured, Forbidden, JsonTooLarge, NotJson, NotJsonMediaType, Unauthorized,
    problem_response,
};
use crate::state::{ApiState, ReloadReport, RuleInfo};

/// Events a rule test runs over by default, and at most.
const TEST_EVENTS_DEFAULT: u32 = 1000;
const TEST_EVENTS_MAX: u32 = 10_000;
/// Largest rule a test takes.
const MAX_RULE_BYTES: usize = 256 * 1024;

problem_response! {
    NoSuchRule = 404, "No such rule";
    InvalidEnabledBody = 422, "`enabled` missing or not a boolean";
    ReloadFailed = 500, "The rules could not be reloaded (the previous set stays)";
    BadTestBody = 400, "Not JSON, or `query` does not parse (`column` says where)";
    UnusableTestRule = 422, "The rule can't be used (`invalid-rule`), or a member is missing or out of range";
}

fn rule(info: RuleInfo, state: Option<&RuleState>) -> Rule {
    Rule {
        info,
        enabled: state.is_none_or(|s| s.enabled),
        hit_count: state.map_or(0, |s| s.hit_count),
        last_hit: state.and_then(|s| s.last_hit),
    }
}

fn find(api: &ApiState, id: &str) -> Result<RuleInfo, Problem> {
    Ok(crate::ops::rules::find(api, id)?)
}

#[utoipa::path(get, path = super::RULES, tag = "rules", operation_id = "rules",
    summary = "Rules with state and hit counts",
    description = "Every rule document with its load outcome, whether it is enabled and its hit count.",
    responses(
        (status = 200, description = "The rules", body = RuleList),
        Unauthorized,
        Forbidden<READ>,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(caller: Caller<READ>) -> Result<Json<RuleList>, Problem> {
    let states: HashMap<String, RuleState> = caller
        .api
        .store
        .list_rule_states()
        .await
        .map_err(store_problem)?
        .into_iter()
        .map(|s| (s.rule_id.clone(), s))
        .collect();
    let rules = caller
        .api
        .rules
        .list()
        .into_iter()
        .map(|info| {
            let state = states.get(&info.id);
            rule(info, state)
        })
        .collect();
    Ok(Json(RuleList { rules }))
}

#[utoipa::path(get, path = super::RULE, tag = "rules", operation_id = "rule",
    summary = "One rule with its YAML",
    params(("id" = String, Path, description = "Rule id (its title when it has no id)")),
    responses(
        (status = 200, description = "The rule with its YAML", body = RuleDetail),
        Unauthorized,
        Forbidden<READ>,
        NoSuchRule,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn one(caller: Caller<READ>, id: PathId) -> Result<Json<RuleDetail>, Problem> {
    let info = find(&caller.api, &id.0)?;
    let state = caller
        .api
        .store
        .rule_state(&id.0)
        .await
        .map_err(store_problem)?;
    let yaml = caller.api.rules.yaml(&id.0);
    Ok(Json(RuleDetail {
        rule: rule(info, state.as_ref()),
        yaml,
    }))
}

#[utoipa::path(post, path = super::RULE_ENABLED, tag = "rules", operation_id = "rule_enabled",
    summary = "Enable or disable a rule",
    description = "Enables or disables a rule (admin, audited). Pipeline workers pick the change up within seconds.",
    params(("id" = String, Path, description = "Rule id")),
    request_body(content = EnabledRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rule after the change", body = Rule),
        NotJson,
        Unauthorized,
        Forbidden<ADMIN>,
        NoSuchRule,
        JsonTooLarge,
        NotJsonMediaType,
        InvalidEnabledBody,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn set_enabled(
    caller: Caller<ADMIN>,
    id: PathId,
    JsonBody(request): JsonBody<EnabledRequest>,
) -> Result<Json<Rule>, Problem> {
    let (info, state) = crate::ops::rules::set_enabled(
        &caller.api,
        &caller.identity.subject,
        &id.0,
        request.enabled,
    )
    .await?;
    Ok(Json(rule(info, Some(&state))))
}

#[utoipa::path(post, path = super::RULES_RELOAD, tag = "rules", operation_id = "rules_reload",
    summary = "Re-read the rule directories",
    description = "Re-reads the rule directories (admin, audited).",
    responses(
        (status = 200, description = "What was loaded", body = ReloadReport),
        Unauthorized,
        Forbidden<ADMIN>,
        ReloadFailed,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn reload(caller: Caller<ADMIN>) -> Result<Json<ReloadReport>, Problem> {
    let result = caller.api.rules.reload().await;
    let details = match &result {
        Ok(report) => json!({"ok": true, "report": report}),
        Err(why) => json!({"ok": false, "error": why}),
    };
    audited(
        caller.api.store.as_ref(),
        &caller.identity.subject,
        "rules.reload",
        "rules".to_owned(),
        details,
    )
    .await?;
    match result {
        Ok(report) => Ok(Json(report)),
        Err(why) => Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload-failed",
            "Rules not reloaded",
        )
        .detail(why)),
    }
}

#[utoipa::path(post, path = super::RULES_TEST, tag = "rules", operation_id = "rules_test",
    summary = "Run a rule given as YAML over stored events",
    description = "Runs a Sigma rule given as YAML over the newest stored events that match `query` (default: all; \
`limit` events, default 1000, at most 10000) and returns the ids of the events it matches (analyst or admin). \
Nothing is stored.",
    request_body(content = RuleTestRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The matching events", body = RuleTestResult),
        BadTestBody,
        Unauthorized,
        Forbidden<TRIAGE>,
        JsonTooLarge,
        NotJsonMediaType,
        UnusableTestRule,
        ApiNotConfigured,
    ),
    security(("bearer" = [])))]
pub(crate) async fn test(
    caller: Caller<TRIAGE>,
    JsonBody(request): JsonBody<RuleTestRequest>,
) -> Result<Json<RuleTestResult>, Problem> {
    let invalid = |detail: String| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            "Invalid request body",
        )
        .detail(detail)
    };
    if request.rule.trim().is_empty() {
        return Err(invalid("rule is empty".into()));
    }
    if request.rule.len() > MAX_RULE_BYTES {
        return Err(invalid(format!(
            "rule is longer than {} KiB",
            MAX_RULE_BYTES / 1024
        )));
    }
    let want = match request.limit {
        None => TEST_EVENTS_DEFAULT,
        Some(n) if (1..=TEST_EVENTS_MAX).contains(&n) => n,
        Some(_) => {
            return Err(invalid(format!(
                "limit must be from 1 to {TEST_EVENTS_MAX}"
            )));
        }
    };
    let mut query = EventQuery {
        query: request.query.filter(|q| !q.trim().is_empty()),
        ..EventQuery::default()
    };
    let mut ids = Vec::new();
    let mut docs = Vec::new();
    loop {
        let left = want - u32::try_from(ids.len()).unwrap_or(want);
        if left == 0 {
            break;
        }
        query.limit = left.min(MAX_PAGE_LIMIT);
        let page = caller
            .api
            .store
            .search_events(&query)
            .await
            .map_err(store_problem)?;
        for event in page.events {
            ids.push(event.id);
            docs.push(event.doc);
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    let tested = docs.len();
    let catalog = caller.api.rules.clone();
    let yaml = request.rule;
    let matched = tokio::task::spawn_blocking(move || catalog.test(&yaml, docs))
        .await
        .map_err(|e| Problem::internal(format!("rule test failed: {e}")))?
        .map_err(|why| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-rule",
                "The rule can't be used",
            )
            .detail(why)
        })?;
    let mut hit = vec![false; tested];
    for i in matched {
        if let Some(h) = hit.get_mut(i) {
            *h = true;
        }
    }
    let event_ids: Vec<_> = ids
        .into_iter()
        .zip(hit)
        .filter_map(|(id, h)| h.then_some(id))
        .collect();
    Ok(Json(RuleTestResult {
        tested,
        matched: event_ids.len(),
        event_ids,
    }))
}
