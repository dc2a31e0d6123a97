//! Incidents (issue 16): written once for both drivers, called by the [`Store`](crate::Store)
//! methods of the same names in `store.rs`. Every change writes a row of the incident's
//! history in the same transaction, so the case's trail is never missing a step.

use super::playbooks::{RUN_COLS, run};
use super::row::{ALERT_COLS, Row, alert, parsed};
use super::{Driver, On, SqlStore, Tx, sql};
use crate::error::{Result, StoreError};
use crate::types::*;

const INCIDENT_COLS: &str = "i.id, i.title, i.description, i.severity, i.status, i.owner, \
    i.created_by, i.created_at, i.updated_at, i.closed_at, \
    (SELECT count(*) FROM incident_alerts ia WHERE ia.incident_id = i.id) AS alert_count, \
    (SELECT count(*) FROM incident_tasks t WHERE t.incident_id = i.id) AS tasks_total, \
    (SELECT count(*) FROM incident_tasks t WHERE t.incident_id = i.id AND t.done) AS tasks_done";
const TASK_COLS: &str = "id, title, done, created_by, created_at, done_by, done_at";
const NOTE_COLS: &str = "id, author, body, created_at";
const OBSERVABLE_COLS: &str = "id, kind, value, note, added_by, added_at";
const CHANGE_COLS: &str = "id, actor, action, detail, created_at";

/// Playbook runs shown on an incident at most.
const MAX_INCIDENT_RUNS: i64 = 100;
/// Suggestions listed at most, and alerts per suggestion.
const MAX_SUGGESTIONS: i64 = 20;
const MAX_SUGGESTED_ALERTS: i64 = 100;

fn incident<R: Row>(r: &R) -> Result<Incident> {
    Ok(Incident {
        id: r.get("id")?,
        title: r.get("title")?,
        description: r.get("description")?,
        severity: parsed(r, "severity", "incident severity")?,
        status: parsed(r, "status", "incident status")?,
        owner: r.get("owner")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        closed_at: r.get("closed_at")?,
        alert_count: r.get("alert_count")?,
        tasks_total: r.get("tasks_total")?,
        tasks_done: r.get("tasks_done")?,
    })
}

fn task<R: Row>(r: &R) -> Result<IncidentTask> {
    Ok(IncidentTask {
        id: r.get("id")?,
        title: r.get("title")?,
        done: r.get("done")?,
        created_by: r.get("created_by")?,
        created_at: r.get("created_at")?,
        done_by: r.get("done_by")?,
        done_at: r.get("done_at")?,
    })
}

fn note<R: Row>(r: &R) -> Result<IncidentNote> {
    Ok(IncidentNote {
        id: r.get("id")?,
        author: r.get("author")?,
        body: r.get("body")?,
        created_at: r.get("created_at")?,
    })
}

fn observable<R: Row>(r: &R) -> Result<Observable> {
    Ok(Observable {
        id: r.get("id")?,
        kind: parsed(r, "kind", "observable kind")?,
        value: r.get("value")?,
        note: r.get("note")?,
        added_by: r.get("added_by")?,
        added_at: r.get("added_at")?,
    })
}

fn change<R: Row>(r: &R) -> Result<IncidentChange> {
    Ok(IncidentChange {
        id: r.get("id")?,
        actor: r.get("actor")?,
        action: r.get("action")?,
        detail: r.get("detail")?,
        created_at: r.get("created_at")?,
    })
}

fn invalid(problem: Option<String>) -> Result<()> {
    problem.map_or(Ok(()), |p| Err(StoreError::InvalidArgument(p)))
}

fn no_incident(id: i64) -> StoreError {
    StoreError::NotFound(format!("incident {id}"))
}

impl<D: Driver> SqlStore<D> {
    async fn history(
        &self,
        tx: &mut Tx<D>,
        incident: i64,
        actor: &str,
        action: &str,
        detail: &str,
        now: i64,
    ) -> Result<()> {
        let st = sql!(
            "INSERT INTO incident_history (incident_id, actor, action, detail, created_at) \
             VALUES (?, ?, ?, ?, ?)",
            incident,
            actor,
            action,
            detail,
            now
        );
        self.exec(On::Tx(tx), st).await?;
        Ok(())
    }

    /// Marks the incident changed; `NotFound` when there is none.
    async fn touch_incident(&self, tx: &mut Tx<D>, id: i64, now: i64) -> Result<()> {
        let st = sql!("UPDATE incidents SET updated_at = ? WHERE id = ?", now, id);
        if self.exec(On::Tx(tx), st).await? == 0 {
            return Err(no_incident(id));
        }
        Ok(())
    }

    /// Groups alerts into the incident; the ids of those added now (ones already in it are
    /// skipped; one in another incident or missing fails the whole call).
    async fn link_alerts(
        &self,
        tx: &mut Tx<D>,
        id: i64,
        alert_ids: &[i64],
        actor: &str,
        now: i64,
    ) -> Result<Vec<i64>> {
        let mut added = Vec::new();
        for &a in alert_ids {
            let exists = sql!("SELECT count(*) AS n FROM alerts WHERE id = ?", a);
            if self.count(On::Tx(&mut *tx), exists).await? == 0 {
                return Err(StoreError::NotFound(format!("alert {a}")));
            }
            let st = sql!(
                "SELECT incident_id FROM incident_alerts WHERE alert_id = ?",
                a
            );
            let owner: Option<i64> = self
                .find(On::Tx(&mut *tx), st, |r| r.get("incident_id"))
                .await?;
            match owner {
                Some(other) if other == id => continue,
                Some(other) => {
                    return Err(StoreError::Conflict(format!(
                        "alert {a} in incident {other}"
                    )));
                }
                None => {}
            }
            let st = sql!(
                "INSERT INTO incident_alerts (alert_id, incident_id, added_by, added_at) \
                 VALUES (?, ?, ?, ?)",
                a,
                id,
                actor,
                now
            );
            self.exec(On::Tx(&mut *tx), st).await?;
            if !added.contains(&a) {
                added.push(a);
            }
        }
        if !added.is_empty() {
            let list: Vec<String> = added.iter().map(|a| format!("#{a}")).collect();
            self.history(tx, id, actor, "alerts_added", &list.join(", "), now)
                .await?;
        }
        Ok(added)
    }

    pub(super) async fn incident_create(&self, n: &NewIncident, actor: &str) -> Result<Incident> {
        invalid(new_incident_problem(n))?;
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        let severity = match n.severity {
            Some(s) => s,
            None => self.highest_severity(&mut tx, &n.alert_ids).await?,
        };
        let owner = n.owner.as_deref().map(str::trim).filter(|o| !o.is_empty());
        let st = sql!(
            "INSERT INTO incidents (title, description, severity, status, owner, created_by, \
             created_at, updated_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?) RETURNING id",
            n.title.trim(),
            n.description.trim(),
            severity.as_str(),
            owner,
            actor,
            now,
            now
        );
        let id: i64 = self.one(On::Tx(&mut tx), st, |r| r.get("id")).await?;
        self.history(&mut tx, id, actor, "created", n.title.trim(), now)
            .await?;
        self.link_alerts(&mut tx, id, &n.alert_ids, actor, now)
            .await?;
        let created = self.incident_in(&mut tx, id).await?;
        tx.commit().await?;
        created.ok_or_else(|| no_incident(id))
    }

    async fn highest_severity(&self, tx: &mut Tx<D>, alerts: &[i64]) -> Result<IncidentSeverity> {
        let mut best = IncidentSeverity::Low;
        for &a in alerts {
            let st = sql!("SELECT level FROM alerts WHERE id = ?", a);
            if let Some(level) = self
                .find(On::Tx(&mut *tx), st, |r| {
                    parsed::<Level>(r, "level", "alert level")
                })
                .await?
            {
                best = best.max(IncidentSeverity::of_level(level));
            }
        }
        Ok(best)
    }

    async fn incident_in(&self, tx: &mut Tx<D>, id: i64) -> Result<Option<Incident>> {
        let st = sql!("SELECT {INCIDENT_COLS} FROM incidents i WHERE i.id = ?", id);
        self.find(On::Tx(tx), st, incident).await
    }

    pub(super) async fn incident_list(&self, q: &IncidentQuery) -> Result<Vec<Incident>> {
        let limit = i64::from(clamp_limit(q.limit));
        let statuses: Vec<String> = q.statuses.iter().map(|s| s.as_str().to_owned()).collect();
        let all = statuses.is_empty();
        // One statement for every filter: a status list as text, matched with instr/strpos
        // would differ per dialect, so statuses are OR-ed from a fixed set of four.
        let has = |s: IncidentStatus| all || q.statuses.contains(&s);
        let st = sql!(
            "SELECT {INCIDENT_COLS} FROM incidents i \
             WHERE ((i.status = 'open' AND ?) OR (i.status = 'in_progress' AND ?) \
                 OR (i.status = 'contained' AND ?) OR (i.status = 'closed' AND ?)) \
               AND (? IS NULL OR i.owner = ?) \
             ORDER BY i.updated_at DESC, i.id DESC LIMIT ?",
            has(IncidentStatus::Open),
            has(IncidentStatus::InProgress),
            has(IncidentStatus::Contained),
            has(IncidentStatus::Closed),
            q.owner.clone(),
            q.owner.clone(),
            limit
        );
        self.list(On::Read, st, incident).await
    }

    pub(super) async fn incident_detail(&self, id: i64) -> Result<Option<IncidentDetail>> {
        let st = sql!("SELECT {INCIDENT_COLS} FROM incidents i WHERE i.id = ?", id);
        let Some(incident) = self.find(On::Read, st, incident).await? else {
            return Ok(None);
        };
        let alerts = sql!(
            "SELECT {ALERT_COLS} FROM alerts WHERE id IN \
             (SELECT alert_id FROM incident_alerts WHERE incident_id = ?) \
             ORDER BY first_seen, id",
            id
        );
        let tasks = sql!(
            "SELECT {TASK_COLS} FROM incident_tasks WHERE incident_id = ? ORDER BY id",
            id
        );
        let notes = sql!(
            "SELECT {NOTE_COLS} FROM incident_notes WHERE incident_id = ? ORDER BY id",
            id
        );
        let observables = sql!(
            "SELECT {OBSERVABLE_COLS} FROM incident_observables WHERE incident_id = ? \
             ORDER BY kind, value",
            id
        );
        let history = sql!(
            "SELECT {CHANGE_COLS} FROM incident_history WHERE incident_id = ? ORDER BY id",
            id
        );
        let runs = sql!(
            "SELECT {RUN_COLS} FROM playbook_runs WHERE alert_id IN \
             (SELECT alert_id FROM incident_alerts WHERE incident_id = ?) \
             ORDER BY started_at DESC, id DESC LIMIT ?",
            id,
            MAX_INCIDENT_RUNS
        );
        Ok(Some(IncidentDetail {
            incident,
            alerts: self.list(On::Read, alerts, alert).await?,
            tasks: self.list(On::Read, tasks, task).await?,
            notes: self.list(On::Read, notes, note).await?,
            observables: self.list(On::Read, observables, observable).await?,
            history: self.list(On::Read, history, change).await?,
            playbook_runs: self.list(On::Read, runs, run).await?,
        }))
    }

    pub(super) async fn incident_update(
        &self,
        id: i64,
        p: &IncidentPatch,
        actor: &str,
    ) -> Result<Incident> {
        invalid(incident_patch_problem(p))?;
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        let Some(before) = self.incident_in(&mut tx, id).await? else {
            return Err(no_incident(id));
        };
        if p.is_empty() {
            return Ok(before);
        }
        if let Some(t) = p.title.as_deref().map(str::trim)
            && t != before.title
        {
            let st = sql!("UPDATE incidents SET title = ? WHERE id = ?", t, id);
            self.exec(On::Tx(&mut tx), st).await?;
            let detail = format!("{} → {t}", before.title);
            self.history(&mut tx, id, actor, "title", &detail, now)
                .await?;
        }
        if let Some(d) = p.description.as_deref().map(str::trim)
            && d != before.description
        {
            let st = sql!("UPDATE incidents SET description = ? WHERE id = ?", d, id);
            self.exec(On::Tx(&mut tx), st).await?;
            self.history(&mut tx, id, actor, "description", "", now)
                .await?;
        }
        if let Some(s) = p.severity
            && s != before.severity
        {
            let st = sql!(
                "UPDATE incidents SET severity = ? WHERE id = ?",
                s.as_str(),
                id
            );
            self.exec(On::Tx(&mut tx), st).await?;
            let detail = format!("{} → {}", before.severity, s);
            self.history(&mut tx, id, actor, "severity", &detail, now)
                .await?;
        }
        if let Some(s) = p.status
            && s != before.status
        {
            let closed_at = (s == IncidentStatus::Closed).then_some(now);
            let st = sql!(
                "UPDATE incidents SET status = ?, closed_at = ? WHERE id = ?",
                s.as_str(),
                closed_at,
                id
            );
            self.exec(On::Tx(&mut tx), st).await?;
            let detail = format!("{} → {}", before.status, s);
            self.history(&mut tx, id, actor, "status", &detail, now)
                .await?;
        }
        if let Some(o) = p.owner.as_deref().map(str::trim) {
            let owner = (!o.is_empty()).then_some(o);
            if owner != before.owner.as_deref() {
                let st = sql!("UPDATE incidents SET owner = ? WHERE id = ?", owner, id);
                self.exec(On::Tx(&mut tx), st).await?;
                let detail = format!(
                    "{} → {}",
                    before.owner.as_deref().unwrap_or("—"),
                    owner.unwrap_or("—")
                );
                self.history(&mut tx, id, actor, "owner", &detail, now)
                    .await?;
            }
        }
        self.touch_incident(&mut tx, id, now).await?;
        let after = self.incident_in(&mut tx, id).await?;
        tx.commit().await?;
        after.ok_or_else(|| no_incident(id))
    }

    pub(super) async fn incident_add_alerts(
        &self,
        id: i64,
        alert_ids: &[i64],
        actor: &str,
    ) -> Result<Vec<i64>> {
        if alert_ids.is_empty() {
            return Err(StoreError::InvalidArgument("no alerts given".into()));
        }
        if alert_ids.len() > MAX_INCIDENT_ALERTS_PER_CALL {
            return Err(StoreError::InvalidArgument(format!(
                "more than {MAX_INCIDENT_ALERTS_PER_CALL} alerts in one request"
            )));
        }
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let added = self.link_alerts(&mut tx, id, alert_ids, actor, now).await?;
        tx.commit().await?;
        Ok(added)
    }

    pub(super) async fn incident_remove_alert(
        &self,
        id: i64,
        alert_id: i64,
        actor: &str,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let st = sql!(
            "DELETE FROM incident_alerts WHERE incident_id = ? AND alert_id = ?",
            id,
            alert_id
        );
        let removed = self.exec(On::Tx(&mut tx), st).await? > 0;
        if removed {
            let detail = format!("#{alert_id}");
            self.history(&mut tx, id, actor, "alert_removed", &detail, now)
                .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    pub(super) async fn incident_add_task(
        &self,
        id: i64,
        title: &str,
        actor: &str,
    ) -> Result<IncidentTask> {
        invalid(incident_text_problem("task", title, MAX_INCIDENT_TASK))?;
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let st = sql!(
            "INSERT INTO incident_tasks (incident_id, title, done, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING {TASK_COLS}",
            id,
            title.trim(),
            false,
            actor,
            now
        );
        let t = self.one(On::Tx(&mut tx), st, task).await?;
        self.history(&mut tx, id, actor, "task_added", &t.title, now)
            .await?;
        tx.commit().await?;
        Ok(t)
    }

    pub(super) async fn incident_set_task(
        &self,
        id: i64,
        task_id: i64,
        done: bool,
        actor: &str,
    ) -> Result<IncidentTask> {
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let (by, at) = if done {
            (Some(actor), Some(now))
        } else {
            (None, None)
        };
        let st = sql!(
            "UPDATE incident_tasks SET done = ?, done_by = ?, done_at = ? \
             WHERE id = ? AND incident_id = ? RETURNING {TASK_COLS}",
            done,
            by,
            at,
            task_id,
            id
        );
        let Some(t) = self.find(On::Tx(&mut tx), st, task).await? else {
            return Err(StoreError::NotFound(format!(
                "task {task_id} of incident {id}"
            )));
        };
        let action = if done { "task_done" } else { "task_reopened" };
        self.history(&mut tx, id, actor, action, &t.title, now)
            .await?;
        tx.commit().await?;
        Ok(t)
    }

    pub(super) async fn incident_add_note(
        &self,
        id: i64,
        body: &str,
        actor: &str,
    ) -> Result<IncidentNote> {
        invalid(incident_text_problem("note", body, MAX_INCIDENT_TEXT))?;
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let st = sql!(
            "INSERT INTO incident_notes (incident_id, author, body, created_at) \
             VALUES (?, ?, ?, ?) RETURNING {NOTE_COLS}",
            id,
            actor,
            body.trim(),
            now
        );
        let n = self.one(On::Tx(&mut tx), st, note).await?;
        tx.commit().await?;
        Ok(n)
    }

    pub(super) async fn incident_add_observable(
        &self,
        id: i64,
        o: &NewObservable,
        actor: &str,
    ) -> Result<Observable> {
        invalid(o.kind.problem(&o.value))?;
        if o.note.chars().count() > MAX_INCIDENT_TEXT {
            return Err(StoreError::InvalidArgument(format!(
                "observable note is longer than {MAX_INCIDENT_TEXT} characters"
            )));
        }
        // Hashes and host names compare without letter case; keep one spelling.
        let value = match o.kind {
            ObservableKind::Hash | ObservableKind::Domain => o.value.trim().to_ascii_lowercase(),
            _ => o.value.trim().to_owned(),
        };
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let dup = sql!(
            "SELECT count(*) AS n FROM incident_observables \
             WHERE incident_id = ? AND kind = ? AND value = ?",
            id,
            o.kind.as_str(),
            value.as_str()
        );
        if self.count(On::Tx(&mut tx), dup).await? > 0 {
            return Err(StoreError::Conflict(format!(
                "observable {} {value:?} on incident {id}",
                o.kind
            )));
        }
        let st = sql!(
            "INSERT INTO incident_observables (incident_id, kind, value, note, added_by, \
             added_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {OBSERVABLE_COLS}",
            id,
            o.kind.as_str(),
            value.as_str(),
            o.note.trim(),
            actor,
            now
        );
        let added = self.one(On::Tx(&mut tx), st, observable).await?;
        let detail = format!("{} {}", added.kind, added.value);
        self.history(&mut tx, id, actor, "observable_added", &detail, now)
            .await?;
        tx.commit().await?;
        Ok(added)
    }

    pub(super) async fn incident_remove_observable(
        &self,
        id: i64,
        observable_id: i64,
        actor: &str,
    ) -> Result<Option<Observable>> {
        let now = now_ms();
        let mut tx = self.0.begin().await?;
        self.touch_incident(&mut tx, id, now).await?;
        let st = sql!(
            "DELETE FROM incident_observables WHERE id = ? AND incident_id = ? \
             RETURNING {OBSERVABLE_COLS}",
            observable_id,
            id
        );
        let removed = self.find(On::Tx(&mut tx), st, observable).await?;
        if let Some(o) = &removed {
            let detail = format!("{} {}", o.kind, o.value);
            self.history(&mut tx, id, actor, "observable_removed", &detail, now)
                .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    pub(super) async fn incident_of(&self, alert_id: i64) -> Result<Option<i64>> {
        let st = sql!(
            "SELECT incident_id FROM incident_alerts WHERE alert_id = ?",
            alert_id
        );
        self.find(On::Read, st, |r| r.get("incident_id")).await
    }

    pub(super) async fn incident_suggestions(&self, since: i64) -> Result<Vec<IncidentSuggestion>> {
        let groups = sql!(
            "SELECT a.host AS host, count(*) AS n, min(a.first_seen) AS first_seen, \
             max(a.last_seen) AS last_seen FROM alerts a \
             WHERE a.status IN ('new', 'acknowledged') AND a.host IS NOT NULL \
               AND a.updated_at >= ? \
               AND NOT EXISTS (SELECT 1 FROM incident_alerts ia WHERE ia.alert_id = a.id) \
             GROUP BY a.host HAVING count(*) >= 2 ORDER BY n DESC, host LIMIT ?",
            since,
            MAX_SUGGESTIONS
        );
        let groups: Vec<(String, i64, i64, i64)> = self
            .list(On::Read, groups, |r| {
                Ok((
                    r.get("host")?,
                    r.get("n")?,
                    r.get("first_seen")?,
                    r.get("last_seen")?,
                ))
            })
            .await?;
        let mut out = Vec::with_capacity(groups.len());
        for (host, n, first_seen, last_seen) in groups {
            // `host_key` first: its index (alerts_host) finds the host's alerts, where `host`
            // alone would read every open alert once per suggestion.
            let st = sql!(
                "SELECT a.id AS id, a.level AS level FROM alerts a \
                 WHERE a.host_key = ? AND a.host = ? AND a.status IN ('new', 'acknowledged') \
                   AND a.updated_at >= ? \
                   AND NOT EXISTS (SELECT 1 FROM incident_alerts ia WHERE ia.alert_id = a.id) \
                 ORDER BY a.first_seen, a.id LIMIT ?",
                host_key(&host),
                host.as_str(),
                since,
                MAX_SUGGESTED_ALERTS
            );
            let rows: Vec<(i64, Level)> = self
                .list(On::Read, st, |r| {
                    Ok((r.get("id")?, parsed(r, "level", "alert level")?))
                })
                .await?;
            let level = rows
                .iter()
                .map(|(_, l)| *l)
                .max()
                .unwrap_or(Level::Informational);
            out.push(IncidentSuggestion {
                host,
                alert_ids: rows.into_iter().map(|(id, _)| id).collect(),
                alert_count: n,
                level,
                first_seen,
                last_seen,
            });
        }
        Ok(out)
    }
}
