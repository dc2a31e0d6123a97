//! Alert exceptions: add and remove (audited), shared by the API, the dashboard and the CLI.

use dozor_store::{AlertException, NewException, Store, exception_problem};
use serde_json::json;

use super::{OpError, audited};

/// Adds an exception as `actor` (validated, audited).
pub async fn add(
    store: &dyn Store,
    actor: &str,
    exception: &NewException,
) -> Result<AlertException, OpError> {
    if let Some(why) = exception_problem(exception) {
        return Err(OpError::invalid("exception", why));
    }
    let made = store.add_exception(exception, actor).await?;
    audited(
        store,
        actor,
        "exception.add",
        format!("exception:{}", made.id),
        json!({
            "rule_id": made.rule_id,
            "conditions": made.conditions,
            "reason": made.reason,
            "expires_at": made.expires_at,
        }),
    )
    .await?;
    Ok(made)
}

/// Removes an exception as `actor` (audited with what it had suppressed).
pub async fn remove(store: &dyn Store, actor: &str, id: i64) -> Result<AlertException, OpError> {
    let gone = store
        .delete_exception(id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("exception {id}")))?;
    audited(
        store,
        actor,
        "exception.remove",
        format!("exception:{id}"),
        json!({
            "rule_id": gone.rule_id,
            "conditions": gone.conditions,
            "suppressed": gone.suppressed,
        }),
    )
    .await?;
    Ok(gone)
}
