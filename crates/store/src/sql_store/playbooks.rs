//! Playbooks, runs, steps and approvals (issue 13): written once for both drivers, called by
//! the [`Store`](crate::Store) methods of the same names in `store.rs`.

use serde_json::Value;
use uuid::Uuid;

use super::row::{Row, parsed};
use super::{Driver, On, SqlStore, json, sql};
use crate::common::{check_text, corrupt, stored_u32};
use crate::error::{Result, StoreError};
use crate::query::sql::{Param, SqlBuilder};
use crate::types::*;

pub(crate) const PLAYBOOK_COLS: &str = "name, source, origin, enabled, updated_at, updated_by";
pub(crate) const RUN_COLS: &str = "id, playbook, trigger, alert_id, agent_id, requested_by, \
    dry_run, status, error, vars, started_at, finished_at, steps";
pub(crate) const APPROVAL_COLS: &str = "id, run_id, playbook, action, target, reason, \
    requested_by, other_approver, status, created_at, expires_at, decided_at, decided_by, \
    comment, command_id";

/// Longest playbook text, bytes.
pub const MAX_PLAYBOOK_BYTES: usize = 256 * 1024;
/// Longest playbook name, bytes.
pub const MAX_PLAYBOOK_NAME: usize = 128;

fn playbook<R: Row>(r: &R) -> Result<StoredPlaybook> {
    Ok(StoredPlaybook {
        name: r.get("name")?,
        source: r.get("source")?,
        origin: r.get("origin")?,
        enabled: r.get("enabled")?,
        updated_at: r.get("updated_at")?,
        updated_by: r.get("updated_by")?,
    })
}

pub(super) fn run<R: Row>(r: &R) -> Result<PlaybookRun> {
    Ok(PlaybookRun {
        id: r.get("id")?,
        playbook: r.get("playbook")?,
        trigger: r.get("trigger")?,
        alert_id: r.get("alert_id")?,
        agent_id: r.get("agent_id")?,
        requested_by: r.get("requested_by")?,
        dry_run: r.get("dry_run")?,
        status: parsed(r, "status", "playbook run status")?,
        error: r.get("error")?,
        vars: r
            .json("vars")?
            .unwrap_or_else(|| Value::Object(Default::default())),
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        steps: stored_u32("playbook run steps", r.get("steps")?)?,
    })
}

fn step<R: Row>(r: &R) -> Result<PlaybookStep> {
    Ok(PlaybookStep {
        run_id: r.get("run_id")?,
        seq: stored_u32("playbook step seq", r.get("seq")?)?,
        status: r.get("status")?,
        record: r
            .json("record")?
            .ok_or_else(|| corrupt("playbook step", "NULL"))?,
    })
}

fn approval<R: Row>(r: &R) -> Result<Approval> {
    Ok(Approval {
        id: r.get("id")?,
        run_id: r.get("run_id")?,
        playbook: r.get("playbook")?,
        action: r.get("action")?,
        target: r
            .json("target")?
            .unwrap_or_else(|| Value::Object(Default::default())),
        reason: r.get("reason")?,
        requested_by: r.get("requested_by")?,
        other_approver: r.get("other_approver")?,
        status: parsed(r, "status", "approval status")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        decided_at: r.get("decided_at")?,
        decided_by: r.get("decided_by")?,
        comment: r.get("comment")?,
        command_id: r.get("command_id")?,
    })
}

/// A playbook name: letters, digits, `-`, `_`, `.`, not starting with `.`.
pub fn check_playbook_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PLAYBOOK_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidArgument(format!(
            "playbook name {name:?}: 1–{MAX_PLAYBOOK_NAME} letters, digits, '-', '_' or '.', not starting with '.'"
        )))
    }
}

impl<D: Driver> SqlStore<D> {
    pub(super) async fn put_playbook_row(&self, p: &StoredPlaybook) -> Result<StoredPlaybook> {
        check_playbook_name(&p.name)?;
        if p.source.len() > MAX_PLAYBOOK_BYTES {
            return Err(StoreError::InvalidArgument(format!(
                "playbook {}: longer than {MAX_PLAYBOOK_BYTES} bytes",
                p.name
            )));
        }
        check_text("playbook origin", &p.origin, true, 16)?;
        check_text("updated_by", &p.updated_by, true, 256)?;
        let st = sql!(
            "INSERT INTO playbooks (name, source, origin, enabled, updated_at, updated_by) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET source = excluded.source, \
             origin = excluded.origin, enabled = excluded.enabled, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             RETURNING {PLAYBOOK_COLS}",
            &p.name,
            &p.source,
            &p.origin,
            p.enabled,
            p.updated_at,
            &p.updated_by
        );
        self.one(On::Write, st, playbook).await
    }

    pub(super) async fn playbook_row(&self, name: &str) -> Result<Option<StoredPlaybook>> {
        let st = sql!("SELECT {PLAYBOOK_COLS} FROM playbooks WHERE name = ?", name);
        self.find(On::Read, st, playbook).await
    }

    pub(super) async fn playbook_rows(&self) -> Result<Vec<StoredPlaybook>> {
        let st = sql!("SELECT {PLAYBOOK_COLS} FROM playbooks ORDER BY name");
        self.list(On::Read, st, playbook).await
    }

    pub(super) async fn playbook_enabled(
        &self,
        name: &str,
        enabled: bool,
        by: &str,
    ) -> Result<Option<StoredPlaybook>> {
        let st = sql!(
            "UPDATE playbooks SET enabled = ?, updated_at = ?, updated_by = ? WHERE name = ? \
             RETURNING {PLAYBOOK_COLS}",
            enabled,
            now_ms(),
            by,
            name
        );
        self.find(On::Write, st, playbook).await
    }

    pub(super) async fn playbook_delete(&self, name: &str) -> Result<bool> {
        let st = sql!("DELETE FROM playbooks WHERE name = ?", name);
        Ok(self.exec(On::Write, st).await? > 0)
    }

    pub(super) async fn run_insert(&self, r: &NewPlaybookRun) -> Result<PlaybookRun> {
        if !matches!(r.trigger.as_str(), "alert" | "manual" | "schedule") {
            return Err(StoreError::InvalidArgument(format!(
                "run trigger {:?}: alert, manual or schedule",
                r.trigger
            )));
        }
        check_text("requested_by", &r.requested_by, true, 256)?;
        let vars = if r.vars.is_object() {
            r.vars.clone()
        } else {
            Value::Object(Default::default())
        };
        let st = sql!(
            "INSERT INTO playbook_runs (id, playbook, trigger, alert_id, agent_id, requested_by, \
             dry_run, status, vars, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) \
             RETURNING {RUN_COLS}",
            &r.id,
            &r.playbook,
            &r.trigger,
            r.alert_id,
            &r.agent_id,
            &r.requested_by,
            r.dry_run,
            json(vars),
            now_ms()
        );
        self.one(On::Write, st, run).await
    }

    pub(super) async fn step_insert(
        &self,
        run_id: &str,
        seq: u32,
        status: &str,
        record: &Value,
    ) -> Result<()> {
        let mut tx = self.0.begin().await?;
        let st = sql!(
            "INSERT INTO playbook_steps (run_id, seq, status, record) VALUES (?, ?, ?, ?) \
             ON CONFLICT (run_id, seq) DO NOTHING",
            run_id,
            i64::from(seq),
            status,
            json(record.clone())
        );
        let added = self.exec(On::Tx(&mut tx), st).await?;
        let st = sql!(
            "UPDATE playbook_runs SET steps = steps + ? WHERE id = ?",
            added as i64,
            run_id
        );
        self.exec(On::Tx(&mut tx), st).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn run_finish(
        &self,
        run_id: &str,
        status: PlaybookRunStatus,
        error: Option<&str>,
    ) -> Result<Option<PlaybookRun>> {
        let st = sql!(
            "UPDATE playbook_runs SET status = ?, error = ?, finished_at = ? \
             WHERE id = ? AND status = 'running' RETURNING {RUN_COLS}",
            status.as_str(),
            error,
            now_ms(),
            run_id
        );
        self.find(On::Write, st, run).await
    }

    pub(super) async fn runs_interrupt(&self, why: &str) -> Result<u64> {
        let st = sql!(
            "UPDATE playbook_runs SET status = 'failed', error = ?, finished_at = ? \
             WHERE status = 'running'",
            why,
            now_ms()
        );
        self.exec(On::Write, st).await
    }

    pub(super) async fn run_row(&self, id: &str) -> Result<Option<PlaybookRun>> {
        let st = sql!("SELECT {RUN_COLS} FROM playbook_runs WHERE id = ?", id);
        self.find(On::Read, st, run).await
    }

    pub(super) async fn run_rows(&self, q: &PlaybookRunQuery) -> Result<Vec<PlaybookRun>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ")
            .push(RUN_COLS)
            .push(" FROM playbook_runs WHERE 1 = 1");
        if let Some(p) = &q.playbook {
            b.push(" AND playbook = ").push_bind(Param::Text(p.clone()));
        }
        if let Some(a) = q.alert_id {
            b.push(" AND alert_id = ").push_bind(Param::Int(a));
        }
        if let Some(a) = &q.agent_id {
            b.push(" AND agent_id = ").push_bind(Param::Text(a.clone()));
        }
        if let Some(s) = q.status {
            b.push(" AND status = ")
                .push_bind(Param::Text(s.as_str().to_owned()));
        }
        b.push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(q.limit.clamp(1, 500))));
        self.list(On::Read, super::Stmt::built(b), run).await
    }

    pub(super) async fn step_rows(&self, run_id: &str) -> Result<Vec<PlaybookStep>> {
        let st = sql!(
            "SELECT run_id, seq, status, record FROM playbook_steps WHERE run_id = ? ORDER BY seq",
            run_id
        );
        self.list(On::Read, st, step).await
    }

    pub(super) async fn approval_insert(&self, a: &NewApproval) -> Result<Approval> {
        check_text("approval action", &a.action, true, 128)?;
        check_text("requested_by", &a.requested_by, true, 256)?;
        let reason: String = a.reason.chars().take(2000).collect();
        let now = now_ms();
        let st = sql!(
            "INSERT INTO approvals (id, run_id, playbook, action, target, reason, requested_by, \
             other_approver, status, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING {APPROVAL_COLS}",
            Uuid::now_v7().to_string(),
            &a.run_id,
            &a.playbook,
            &a.action,
            json(a.target.clone()),
            reason,
            &a.requested_by,
            a.other_approver,
            now,
            a.expires_at.max(now)
        );
        self.one(On::Write, st, approval).await
    }

    pub(super) async fn approval_row(&self, id: &str) -> Result<Option<Approval>> {
        let st = sql!("SELECT {APPROVAL_COLS} FROM approvals WHERE id = ?", id);
        // On the writer: a waiter polls it right after a decision.
        self.find(On::Write, st, approval).await
    }

    pub(super) async fn approval_rows(
        &self,
        status: Option<ApprovalStatus>,
        limit: u32,
    ) -> Result<Vec<Approval>> {
        let mut b = SqlBuilder::new(D::DIALECT);
        b.push("SELECT ")
            .push(APPROVAL_COLS)
            .push(" FROM approvals WHERE 1 = 1");
        if let Some(s) = status {
            b.push(" AND status = ")
                .push_bind(Param::Text(s.as_str().to_owned()));
        }
        b.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(Param::Int(i64::from(limit.clamp(1, 500))));
        self.list(On::Read, super::Stmt::built(b), approval).await
    }

    pub(super) async fn run_approval_rows(&self, run_id: &str) -> Result<Vec<Approval>> {
        let st = sql!(
            "SELECT {APPROVAL_COLS} FROM approvals WHERE run_id = ? ORDER BY created_at, id",
            run_id
        );
        self.list(On::Read, st, approval).await
    }

    pub(super) async fn approval_decide(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &str,
        comment: Option<&str>,
    ) -> Result<ApprovalDecisionOutcome> {
        if status == ApprovalStatus::Pending {
            return Err(StoreError::InvalidArgument(
                "an approval is decided approved, rejected or expired".into(),
            ));
        }
        check_text("decided_by", by, true, 256)?;
        let comment = comment.map(|c| c.chars().take(2000).collect::<String>());
        let now = now_ms();
        // One statement: exactly one decision wins; an expired request can't be approved.
        let st = sql!(
            "UPDATE approvals SET status = CASE WHEN expires_at <= ? THEN 'expired' ELSE ? END, \
             decided_at = ?, decided_by = CASE WHEN expires_at <= ? THEN NULL ELSE ? END, \
             comment = CASE WHEN expires_at <= ? THEN NULL ELSE ? END \
             WHERE id = ? AND status = 'pending' RETURNING {APPROVAL_COLS}",
            now,
            status.as_str(),
            now,
            now,
            by,
            now,
            comment,
            id
        );
        if let Some(a) = self.find(On::Write, st, approval).await? {
            return Ok(if a.status == status {
                ApprovalDecisionOutcome::Decided(a)
            } else {
                ApprovalDecisionOutcome::AlreadyDecided(a)
            });
        }
        Ok(match self.approval_row(id).await? {
            Some(a) => ApprovalDecisionOutcome::AlreadyDecided(a),
            None => ApprovalDecisionOutcome::Unknown,
        })
    }

    pub(super) async fn approvals_expire(&self, now: i64) -> Result<Vec<Approval>> {
        let st = sql!(
            "UPDATE approvals SET status = 'expired', decided_at = ? \
             WHERE status = 'pending' AND expires_at <= ? RETURNING {APPROVAL_COLS}",
            now,
            now
        );
        self.list(On::Write, st, approval).await
    }

    pub(super) async fn approvals_to_notify(&self, now: i64) -> Result<Vec<Approval>> {
        // One statement: each pending approval is claimed by exactly one caller.
        let st = sql!(
            "UPDATE approvals SET notified_at = ? WHERE id IN (SELECT id FROM approvals \
               WHERE status = 'pending' AND notified_at IS NULL ORDER BY id \
               FOR UPDATE SKIP LOCKED) AND notified_at IS NULL RETURNING {APPROVAL_COLS}",
            now
        );
        self.list(On::Write, st, approval).await
    }

    pub(super) async fn approval_command(&self, id: &str, command_id: Uuid) -> Result<()> {
        let st = sql!(
            "UPDATE approvals SET command_id = ? WHERE id = ?",
            command_id.to_string(),
            id
        );
        self.exec(On::Write, st).await?;
        Ok(())
    }
}
