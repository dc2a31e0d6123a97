//! The audit log writers: every change an operator or agent makes is recorded through here
//! (API handlers, dashboard actions, sign-in, the agent registry).

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

/// Appends to the audit log. The change it records is already made: if the log can't be
/// written the caller gets a 500 that says so (and the server log has the entry).
pub(crate) async fn audit(
    api: &(impl AuditLog + ?Sized),
    actor: &str,
    action: &str,
    target: String,
    details: serde_json::Value,
) -> Result<(), crate::Problem> {
    match append_audit(api.audit_store(), actor, action, target, details).await {
        true => Ok(()),
        false => Err(crate::Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "audit-failed",
            "Audit log unavailable",
        )
        .detail("the change was made but could not be written to the audit log")
        .with("applied", true)),
    }
}

/// What can be audited through: the API's state (and an `Arc` of it).
pub(crate) trait AuditLog {
    fn audit_store(&self) -> &dyn dozor_store::Store;
}

impl<T: AuditLog + ?Sized> AuditLog for std::sync::Arc<T> {
    fn audit_store(&self) -> &dyn dozor_store::Store {
        (**self).audit_store()
    }
}
