//! Agent registry changes made by operators.

use dozor_store::{Agent, Store};
use serde_json::json;

use super::{OpError, audited};
use crate::agents::AgentRegistry;

/// Revokes an agent: its certificate is refused from now on (the registry forgets it at
/// once). Revoking a revoked agent changes nothing and is not audited again. Returns the
/// agent as it is now.
pub async fn revoke(
    store: &dyn Store,
    registry: Option<&AgentRegistry>,
    actor: &str,
    id: &str,
    reason: Option<&str>,
) -> Result<Agent, OpError> {
    let revoked = store.revoke_agent(id, actor).await?;
    let agent = store
        .get_agent(id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("agent {id}")))?;
    if let Some(registry) = registry {
        registry.forget(id);
    }
    if revoked {
        audited(
            store,
            actor,
            "agent.revoke",
            format!("agent:{id}"),
            json!({ "reason": reason, "hostname": agent.facts.hostname }),
        )
        .await?;
    }
    Ok(agent)
}
