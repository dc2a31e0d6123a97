//! The audit log writers: every change an operator or agent makes is recorded through here
//! (operations in `ops`, sign-in, the agent registry). `ops::audited` is the form that
//! fails the request when the log can't take the entry.

/// Appends to the audit log; `false` (and the entry in the server log) when the log can't
/// be written.
pub(crate) async fn append_audit(
    store: &dyn dozor_store::Store,
    actor: &str,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> bool {
    let entry = dozor_store::NewAuditEntry {
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: Some(target),
        details,
    };
    match store.append_audit(&entry).await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(
                ?entry,
                "audit log write failed after the change was made: {e}"
            );
            false
        }
    }
}
