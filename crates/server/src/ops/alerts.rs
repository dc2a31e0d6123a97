//! The alert workflow: status changes (one alert or many), assignment, comments.

use dozor_store::{Alert, AlertStatus, Comment, Store, StoreError};
use serde_json::json;

use super::{OpError, audited};

/// Longest comment or status note, bytes (the store's limit too).
pub const MAX_NOTE: usize = 64 * 1024;
/// Longest assignee, bytes.
pub const MAX_ASSIGNEE: usize = 200;
/// Most alerts one bulk change takes.
pub const MAX_BULK: usize = 1000;

fn check_note(note: Option<&str>, field: &'static str) -> Result<(), OpError> {
    if note.is_some_and(|n| n.len() > MAX_NOTE) {
        return Err(OpError::invalid(
            field,
            format!("{field} is longer than 64 KiB"),
        ));
    }
    Ok(())
}

async fn existing(store: &dyn Store, id: i64) -> Result<Alert, OpError> {
    store
        .get_alert(id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("alert {id}")))
}

/// Moves an alert to `to` with an optional note (trimmed, at most [`MAX_NOTE`] bytes).
pub async fn set_status(
    store: &dyn Store,
    actor: &str,
    id: i64,
    to: AlertStatus,
    note: Option<&str>,
) -> Result<Alert, OpError> {
    let note = super::non_empty(note);
    check_note(note, "comment")?;
    let before = existing(store, id).await?;
    let alert = store.set_alert_status(id, to, actor, note).await?;
    audited(
        store,
        actor,
        "alert.status",
        format!("alert:{id}"),
        json!({"from": before.status, "to": alert.status, "comment": note}),
    )
    .await?;
    Ok(alert)
}

/// What a bulk status change did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BulkOutcome {
    pub changed: usize,
    /// Unknown alerts and ones whose status can't go to the target (changed by someone else
    /// meanwhile, or already there).
    pub skipped: usize,
}

/// Moves many alerts (at most [`MAX_BULK`], duplicates ignored) to `to`; each change is
/// audited with `"bulk": true`.
pub async fn bulk_set_status(
    store: &dyn Store,
    actor: &str,
    ids: &[i64],
    to: AlertStatus,
    note: Option<&str>,
) -> Result<BulkOutcome, OpError> {
    let note = super::non_empty(note);
    check_note(note, "note")?;
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(OpError::Missing("id"));
    }
    ids.truncate(MAX_BULK);
    let mut outcome = BulkOutcome::default();
    for id in ids {
        let Some(before) = store.get_alert(id).await? else {
            outcome.skipped += 1;
            continue;
        };
        if !before.status.can_change_to(to) {
            outcome.skipped += 1;
            continue;
        }
        match store.set_alert_status(id, to, actor, note).await {
            Ok(alert) => {
                audited(
                    store,
                    actor,
                    "alert.status",
                    format!("alert:{id}"),
                    json!({"from": before.status, "to": alert.status, "comment": note, "bulk": true}),
                )
                .await?;
                outcome.changed += 1;
            }
            // changed by someone else meanwhile
            Err(StoreError::InvalidTransition { .. } | StoreError::NotFound(_)) => {
                outcome.skipped += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(outcome)
}

/// Sets (trimmed, at most [`MAX_ASSIGNEE`] characters, no control characters) or clears (`None`
/// or empty) an alert's assignee.
pub async fn assign(
    store: &dyn Store,
    actor: &str,
    id: i64,
    assignee: Option<&str>,
) -> Result<Alert, OpError> {
    let assignee = super::non_empty(assignee);
    if assignee.is_some_and(|a| a.chars().count() > MAX_ASSIGNEE || a.chars().any(char::is_control))
    {
        return Err(OpError::invalid(
            "assignee",
            "assignee must be at most 200 characters without control characters",
        ));
    }
    let before = existing(store, id).await?;
    let alert = store.assign_alert(id, assignee).await?;
    audited(
        store,
        actor,
        "alert.assign",
        format!("alert:{id}"),
        json!({"from": before.assignee, "to": alert.assignee}),
    )
    .await?;
    Ok(alert)
}

/// Adds a comment (not blank, at most [`MAX_NOTE`] bytes, kept as written).
pub async fn comment(
    store: &dyn Store,
    actor: &str,
    id: i64,
    text: &str,
) -> Result<Comment, OpError> {
    if text.trim().is_empty() {
        return Err(OpError::Missing("text"));
    }
    check_note(Some(text), "text")?;
    let comment = store.add_comment(id, actor, text).await?;
    audited(
        store,
        actor,
        "alert.comment",
        format!("alert:{id}"),
        json!({"comment_id": comment.id}),
    )
    .await?;
    Ok(comment)
}
