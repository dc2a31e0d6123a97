//! Switching rules on and off.

use dozor_store::RuleState;
use serde_json::json;

use super::{OpError, audited};
use crate::state::{ApiState, RuleInfo};

/// The rule with this id in the loaded catalog.
pub fn find(api: &ApiState, id: &str) -> Result<RuleInfo, OpError> {
    api.rules
        .list()
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| OpError::NotFound(format!("rule {id}")))
}

/// Enables or disables a loaded rule; returns it with its new state.
pub async fn set_enabled(
    api: &ApiState,
    actor: &str,
    id: &str,
    enabled: bool,
) -> Result<(RuleInfo, RuleState), OpError> {
    let info = find(api, id)?;
    let store = api.store.as_ref();
    let before = store.rule_state(id).await?;
    let state = store.set_rule_enabled(id, enabled).await?;
    audited(
        store,
        actor,
        if enabled {
            "rule.enable"
        } else {
            "rule.disable"
        },
        format!("rule:{id}"),
        json!({
            "enabled": enabled,
            "was_enabled": before.is_none_or(|s| s.enabled),
            "title": info.title,
        }),
    )
    .await?;
    Ok((info, state))
}
