//! Approvals: the engine's [`Approver`] over the store, the decision operation the API, the
//! dashboard and the CLI share, and destructive commands sent directly (which become an
//! approval request first).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dozor_model::{Approval, ApprovalStatus, NewApproval};
use dozor_playbook::{ApprovalDecision, ApprovalRequest, Approver};
use dozor_store::{ApprovalDecisionOutcome, NewAgentCommand, Store, now_ms};
use serde_json::{Value, json};

use super::signals::SIGNALS;
use crate::config::ResponseConfig;
use crate::ops::{OpError, audited};

/// How often a waiting step re-reads its approval besides being woken.
const POLL: Duration = Duration::from_secs(1);
/// Longest comment kept with a decision, characters.
pub const MAX_COMMENT_CHARS: usize = 2000;

/// The engine's approver: a row in the store that a human decides (or that expires).
pub struct StoreApprover {
    store: Arc<dyn Store>,
    timeout: Duration,
    other_approver: bool,
}

impl StoreApprover {
    pub fn new(store: Arc<dyn Store>, config: &ResponseConfig) -> StoreApprover {
        StoreApprover {
            store,
            timeout: config.approval_timeout,
            other_approver: config.other_approver,
        }
    }
}

#[async_trait]
impl Approver for StoreApprover {
    async fn decide(&self, request: ApprovalRequest) -> ApprovalDecision {
        let expires_at = now_ms() + i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX / 2);
        let requested_by = request
            .requested_by
            .clone()
            .unwrap_or_else(|| "trigger".to_owned());
        let approval = match self
            .store
            .create_approval(&NewApproval {
                run_id: Some(request.run_id.clone()),
                playbook: Some(request.playbook.clone()),
                action: request.module.clone(),
                target: request.args.clone(),
                reason: request.reason.clone(),
                requested_by: requested_by.clone(),
                other_approver: self.other_approver,
                expires_at,
            })
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(
                    run_id = request.run_id,
                    "cannot record an approval request: {e}"
                );
                return ApprovalDecision::Rejected {
                    by: "dozor".into(),
                    comment: Some(format!("the approval request could not be recorded: {e}")),
                };
            }
        };
        crate::audit::append_audit(
            self.store.as_ref(),
            &requested_by,
            "approval.requested",
            format!("approval:{}", approval.id),
            json!({"run_id": request.run_id, "playbook": request.playbook, "task": request.task, "action": request.module, "reason": request.reason}),
        )
        .await;
        tracing::warn!(
            approval_id = approval.id,
            action = approval.action,
            reason = approval.reason,
            "approval needed: a playbook step waits for an operator's decision"
        );
        wait_for_decision(self.store.as_ref(), &approval.id).await
    }
}

/// Waits until the approval is decided or expires.
async fn wait_for_decision(store: &dyn Store, id: &str) -> ApprovalDecision {
    loop {
        let woken = SIGNALS.decisions.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match store.get_approval(id).await {
            Ok(Some(a)) => match a.status {
                ApprovalStatus::Approved => {
                    return ApprovalDecision::Approved {
                        by: a.decided_by.unwrap_or_default(),
                        comment: a.comment,
                    };
                }
                ApprovalStatus::Rejected => {
                    return ApprovalDecision::Rejected {
                        by: a.decided_by.unwrap_or_default(),
                        comment: a.comment,
                    };
                }
                ApprovalStatus::Expired => return ApprovalDecision::Expired,
                ApprovalStatus::Pending if a.expires_at <= now_ms() => {
                    expire_due(store, now_ms()).await;
                    continue;
                }
                ApprovalStatus::Pending => {}
            },
            Ok(None) => return ApprovalDecision::Expired,
            Err(e) => tracing::warn!(approval_id = id, "reading an approval: {e}"),
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Expires the approvals whose time is up (audited `approval.expired`).
pub async fn expire_due(store: &dyn Store, now: i64) {
    match store.expire_approvals(now).await {
        Ok(expired) => {
            for a in &expired {
                crate::audit::append_audit(
                    store,
                    "dozor",
                    "approval.expired",
                    format!("approval:{}", a.id),
                    json!({"action": a.action, "run_id": a.run_id}),
                )
                .await;
            }
            if !expired.is_empty() {
                SIGNALS.decided();
            }
        }
        Err(e) => tracing::warn!("expiring approvals: {e}"),
    }
}

/// Decides an approval as `actor` (audited `approval.approved` / `approval.rejected`). An
/// approved direct command is queued for its agent. Refused: an approval already decided or
/// expired (409 `already-decided`), the requester deciding their own request when
/// `other_approver` is set (403).
pub async fn decide(
    store: &dyn Store,
    actor: &str,
    id: &str,
    approve: bool,
    comment: Option<&str>,
) -> Result<Approval, OpError> {
    let comment = crate::ops::non_empty(comment);
    if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS || c.contains('\0')) {
        return Err(OpError::invalid(
            "comment",
            format!("comment: at most {MAX_COMMENT_CHARS} characters, no NUL"),
        ));
    }
    let current = store
        .get_approval(id)
        .await?
        .ok_or_else(|| OpError::NotFound(format!("approval {id}")))?;
    if current.other_approver && current.requested_by == actor {
        return Err(OpError::Forbidden(format!(
            "{actor} asked for this action and may not approve or reject it: another person must (response.other_approver)"
        )));
    }
    let status = if approve {
        ApprovalStatus::Approved
    } else {
        ApprovalStatus::Rejected
    };
    let decided = match store.decide_approval(id, status, actor, comment).await? {
        ApprovalDecisionOutcome::Decided(a) => a,
        ApprovalDecisionOutcome::AlreadyDecided(a) => {
            SIGNALS.decided();
            return Err(OpError::Refused {
                slug: "already-decided",
                message: format!(
                    "approval {id} is {} already{}",
                    a.status.as_str(),
                    a.decided_by
                        .as_deref()
                        .map(|by| format!(" (by {by})"))
                        .unwrap_or_default()
                ),
            });
        }
        ApprovalDecisionOutcome::Unknown => {
            return Err(OpError::NotFound(format!("approval {id}")));
        }
    };
    SIGNALS.decided();
    let action = if approve {
        "approval.approved"
    } else {
        "approval.rejected"
    };
    audited(
        store,
        actor,
        action,
        format!("approval:{id}"),
        json!({"action": decided.action, "run_id": decided.run_id, "comment": comment, "requested_by": decided.requested_by}),
    )
    .await?;
    if approve && decided.run_id.is_none() {
        return queue_approved_command(store, decided).await;
    }
    Ok(decided)
}

/// A direct command's approval was given: the command goes to its agent.
async fn queue_approved_command(
    store: &dyn Store,
    approval: Approval,
) -> Result<Approval, OpError> {
    let target = &approval.target;
    let (Some(agent_id), Some(kind)) = (
        target.get("agent_id").and_then(Value::as_str),
        target.get("kind").and_then(Value::as_str),
    ) else {
        return Ok(approval);
    };
    let args = target.get("args").cloned().unwrap_or_else(|| json!({}));
    let command = store
        .create_command(&NewAgentCommand {
            agent_id: agent_id.to_owned(),
            kind: kind.to_owned(),
            args,
            requested_by: approval.requested_by.clone(),
        })
        .await
        .map_err(|e| match e {
            dozor_store::StoreError::NotFound(_) => OpError::Refused {
                slug: "agent-revoked",
                message: format!(
                    "approval {} is recorded, but agent {agent_id} is revoked or gone: no command was sent",
                    approval.id
                ),
            },
            other => other.into(),
        })?;
    SIGNALS.command_queued(agent_id);
    store.set_approval_command(&approval.id, command.id).await?;
    audited(
        store,
        &approval.requested_by,
        "agent.command",
        format!("agent:{agent_id}"),
        json!({"command_id": command.id, "kind": kind, "approval_id": approval.id, "approved_by": approval.decided_by}),
    )
    .await?;
    Ok(Approval {
        command_id: Some(command.id.to_string()),
        ..approval
    })
}

/// Records a direct destructive command as an approval request (audited
/// `approval.requested`); it is queued when approved.
pub async fn request_command(
    store: &dyn Store,
    config: &ResponseConfig,
    actor: &str,
    agent_id: &str,
    kind: &str,
    args: &Value,
    reason: &str,
) -> Result<Approval, OpError> {
    let timeout = i64::try_from(config.approval_timeout.as_millis()).unwrap_or(i64::MAX / 2);
    let reason = if reason.trim().is_empty() {
        format!("{kind} on agent {agent_id}")
    } else {
        reason.trim().to_owned()
    };
    let approval = store
        .create_approval(&NewApproval {
            run_id: None,
            playbook: None,
            action: kind.to_owned(),
            target: json!({"agent_id": agent_id, "kind": kind, "args": args}),
            reason,
            requested_by: actor.to_owned(),
            other_approver: config.other_approver,
            expires_at: now_ms() + timeout,
        })
        .await?;
    audited(
        store,
        actor,
        "approval.requested",
        format!("approval:{}", approval.id),
        json!({"action": kind, "agent_id": agent_id, "args": args}),
    )
    .await?;
    Ok(approval)
}
