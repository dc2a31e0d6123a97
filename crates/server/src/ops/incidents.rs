//! Incidents: every change (open, edit, group alerts, tasks, notes, observables) made once
//! for the API, the dashboard and the CLI — the store call, then its audit entry. The
//! incident's own history (in the store) is the case's timeline; the audit log is the
//! server-wide record of who changed what.

use dozor_store::{
    Incident, IncidentNote, IncidentPatch, IncidentTask, NewIncident, NewObservable, Observable,
    Store, StoreError,
};
use serde_json::{Value, json};

use super::{OpError, audited};

/// A store error of an incident change: a conflict (an alert in another incident, an
/// observable noted twice) is refused with the reason, the rest as usual.
fn refused(e: StoreError) -> OpError {
    match e {
        StoreError::Conflict(what) => OpError::Refused {
            slug: "conflict",
            message: format!("{what} already exists"),
        },
        StoreError::InvalidArgument(why) => OpError::invalid("incident", why),
        // A missing alert is a fault of the body (422), not a missing incident (404).
        StoreError::NotFound(what) if what.starts_with("alert ") => {
            OpError::invalid("alert_ids", format!("no {what}"))
        }
        other => other.into(),
    }
}

async fn audit(
    store: &dyn Store,
    actor: &str,
    action: &str,
    id: i64,
    details: Value,
) -> Result<(), OpError> {
    audited(store, actor, action, format!("incident:{id}"), details).await
}

/// Opens an incident, grouping its alerts (audited).
pub async fn create(store: &dyn Store, actor: &str, n: &NewIncident) -> Result<Incident, OpError> {
    let made = store.create_incident(n, actor).await.map_err(refused)?;
    let details = json!({"title": made.title, "severity": made.severity, "alert_ids": n.alert_ids});
    audit(store, actor, "incident.create", made.id, details).await?;
    Ok(made)
}

/// Changes an incident's title, description, severity, status or owner (audited).
pub async fn update(
    store: &dyn Store,
    actor: &str,
    id: i64,
    patch: &IncidentPatch,
) -> Result<Incident, OpError> {
    let after = store
        .update_incident(id, patch, actor)
        .await
        .map_err(refused)?;
    if !patch.is_empty() {
        let details = serde_json::to_value(patch).unwrap_or(Value::Null);
        audit(store, actor, "incident.update", id, details).await?;
    }
    Ok(after)
}

/// Groups alerts into an incident (audited); the ids added now.
pub async fn add_alerts(
    store: &dyn Store,
    actor: &str,
    id: i64,
    alert_ids: &[i64],
) -> Result<Vec<i64>, OpError> {
    let added = store
        .add_incident_alerts(id, alert_ids, actor)
        .await
        .map_err(refused)?;
    audit(
        store,
        actor,
        "incident.alerts_add",
        id,
        json!({"added": added}),
    )
    .await?;
    Ok(added)
}

/// Takes an alert out of an incident (audited).
pub async fn remove_alert(
    store: &dyn Store,
    actor: &str,
    id: i64,
    alert_id: i64,
) -> Result<(), OpError> {
    if !store
        .remove_incident_alert(id, alert_id, actor)
        .await
        .map_err(refused)?
    {
        return Err(OpError::NotFound(format!(
            "alert {alert_id} in incident {id}"
        )));
    }
    audit(
        store,
        actor,
        "incident.alert_remove",
        id,
        json!({"alert_id": alert_id}),
    )
    .await
}

/// Adds a task (audited).
pub async fn add_task(
    store: &dyn Store,
    actor: &str,
    id: i64,
    title: &str,
) -> Result<IncidentTask, OpError> {
    let task = store
        .add_incident_task(id, title, actor)
        .await
        .map_err(refused)?;
    audit(
        store,
        actor,
        "incident.task_add",
        id,
        json!({"task": task.title}),
    )
    .await?;
    Ok(task)
}

/// Ticks a task off or reopens it (audited).
pub async fn set_task(
    store: &dyn Store,
    actor: &str,
    id: i64,
    task_id: i64,
    done: bool,
) -> Result<IncidentTask, OpError> {
    let task = store
        .set_incident_task(id, task_id, done, actor)
        .await
        .map_err(refused)?;
    let details = json!({"task_id": task_id, "task": task.title, "done": done});
    audit(store, actor, "incident.task_set", id, details).await?;
    Ok(task)
}

/// Adds a note (audited).
pub async fn add_note(
    store: &dyn Store,
    actor: &str,
    id: i64,
    body: &str,
) -> Result<IncidentNote, OpError> {
    let note = store
        .add_incident_note(id, body, actor)
        .await
        .map_err(refused)?;
    audit(
        store,
        actor,
        "incident.note_add",
        id,
        json!({"note_id": note.id}),
    )
    .await?;
    Ok(note)
}

/// Adds an observable (audited).
pub async fn add_observable(
    store: &dyn Store,
    actor: &str,
    id: i64,
    o: &NewObservable,
) -> Result<Observable, OpError> {
    let added = store
        .add_incident_observable(id, o, actor)
        .await
        .map_err(refused)?;
    let details = json!({"kind": added.kind, "value": added.value});
    audit(store, actor, "incident.observable_add", id, details).await?;
    Ok(added)
}

/// Removes an observable (audited).
pub async fn remove_observable(
    store: &dyn Store,
    actor: &str,
    id: i64,
    observable_id: i64,
) -> Result<Observable, OpError> {
    let gone = store
        .remove_incident_observable(id, observable_id, actor)
        .await
        .map_err(refused)?
        .ok_or_else(|| OpError::NotFound(format!("observable {observable_id} of incident {id}")))?;
    let details = json!({"kind": gone.kind, "value": gone.value});
    audit(store, actor, "incident.observable_remove", id, details).await?;
    Ok(gone)
}
